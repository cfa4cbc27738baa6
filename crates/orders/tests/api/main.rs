//! End-to-end stories of the shop through the gateway, in both modes: the checkout and its
//! failures, who may see what, and bad input.

mod abandoned;
mod access;
mod checkout;
mod console;
mod delivery;
mod failures;
mod helpers;
mod input;
