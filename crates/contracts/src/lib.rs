//! What crosses a service boundary. Evolution is add-only: a new optional field is fine, a
//! changed or removed one is a new versioned subject.
#![forbid(unsafe_code)]

pub mod card;
pub mod cart;
pub mod catalog;
pub mod inventory;
pub mod money;
pub mod orders;
pub mod payments;
pub mod sku;

pub use money::Money;
pub use sku::Sku;
