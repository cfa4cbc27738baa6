//! Payments as a checkout, an admin and an operator see them, in both modes.

mod helpers;
mod input;
mod lifecycle;
mod provider;
