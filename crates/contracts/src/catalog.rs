//! The catalog's events and the product view other services read.

use nubo_platform::Context;
use nubo_platform::client::{Call, CallError, ServiceClient};
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

/// A product as another service needs it: what it is called and what it costs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedProduct {
    pub sku: String,
    pub name: String,
    pub price: Money,
}

#[derive(Deserialize)]
struct SearchPage {
    items: Vec<PricedProduct>,
}

/// The catalog's public reads, as the cart calls them.
#[derive(Clone)]
pub struct CatalogClient(ServiceClient);

impl CatalogClient {
    pub const SERVICE: &'static str = "catalog";

    /// The client of a service that declared catalog in its `calls`.
    pub fn of(ctx: &Context) -> Self {
        Self(ctx.client(Self::SERVICE).clone())
    }

    /// The product with exactly this SKU, if the catalog has it: one read by its unique SKU.
    /// A catalog older than that route (a rolling upgrade) answers 404, and is asked through
    /// its search, which indexes SKUs.
    pub async fn product_with_sku(
        &self,
        sku: &crate::Sku,
    ) -> Result<Option<PricedProduct>, CallError> {
        // A SKU is upper-case letters, digits and dashes: nothing in it needs escaping.
        let exact = format!("/internal/v1/products/by-sku/{}", sku.as_str());
        let page: SearchPage = match self.0.call(Call::get(exact)).await {
            Err(CallError::NotFound { .. }) => {
                let path = format!("/api/v1/products/search?q={}&per_page=100", sku.as_str());
                self.0.call(Call::get(path)).await?
            }
            answer => answer?,
        };
        Ok(page.items.into_iter().find(|p| p.sku == sku.as_str()))
    }
}
