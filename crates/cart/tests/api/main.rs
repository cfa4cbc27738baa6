//! The cart as customers, an admin and orders see it, in both modes.

mod cart;
mod helpers;
mod merge;
