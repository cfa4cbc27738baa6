//! The catalog as a shopper, an admin and an operator see it, in both modes.

mod categories;
mod events;
mod health;
mod helpers;
mod images;
mod products;
mod search;
