//! Identity as a customer, an admin and an operator see it, in both modes.

mod accounts;
mod hashing;
mod helpers;
mod keys;
mod limits;
mod tokens;
