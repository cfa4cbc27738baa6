//! Inventory as an admin, a checkout and an operator see it, in both modes.

mod helpers;
mod input;
mod reservations;
mod stock;
