//! The catalog's events and the product view other services read.

use nubo_platform::events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;

/// A product was created or changed. Carries the whole new state, so a consumer never needs to
/// call back to learn it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductChanged {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub category: String,
    /// Increases by one with every change; lets a consumer ignore an older state arriving late.
    pub version: i64,
    pub change: ProductChange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductChange {
    Created,
    Updated,
}

impl Event for ProductChanged {
    const SUBJECT: &'static str = "catalog.product_changed.v1";
}
