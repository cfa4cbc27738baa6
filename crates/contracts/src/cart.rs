//! The cart's view of a customer's cart, as shoppers see it and as orders read it at checkout
//! (`GET /internal/v1/carts/{user_id}`, never routed by the gateway). Names and prices are read
//! from the catalog when the cart is shown, so a cart never carries a stale price.

use nubo_platform::Context;
use nubo_platform::client::{Call, CallError, ServiceClient};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Money;

/// The signed-in customer's own cart: `GET`, `DELETE`.
pub const MY_CART_PATH: &str = "/api/v1/cart";
/// `POST` an [`AddLine`] here to add units to a line.
pub const MY_LINES_PATH: &str = "/api/v1/cart/lines";

/// `PUT` a [`SetQuantity`] or `DELETE`: `/api/v1/cart/lines/{sku}`.
pub fn my_line_path(sku: &str) -> String {
    format!("{MY_LINES_PATH}/{sku}")
}

/// For orders: `GET` a customer's priced cart at checkout.
pub fn internal_cart_path(user_id: Uuid) -> String {
    format!("/internal/v1/carts/{user_id}")
}

/// For orders: `PUT` the [`OrderedLines`] of a completed order here to take them out of the
/// customer's cart, once per order however often it is sent.
pub fn internal_ordered_path(user_id: Uuid, order_id: Uuid) -> String {
    format!("/internal/v1/carts/{user_id}/orders/{order_id}")
}

/// What an order bought: these units leave the cart. A line the customer added or raised
/// while the checkout ran keeps what the order did not take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderedLines {
    pub lines: Vec<OrderedLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderedLine {
    pub sku: String,
    pub quantity: i64,
}

/// The most units of one SKU a line may hold.
pub const MAX_QUANTITY: i64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CartView {
    pub user_id: Uuid,
    /// Sorted by SKU.
    pub lines: Vec<CartLine>,
    /// The sum of the available lines' totals; zero in the shop's currency for an empty cart.
    pub total: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CartLine {
    pub sku: String,
    pub quantity: i64,
    /// False when the catalog no longer has the SKU: the line has no name or price and counts
    /// for nothing in the total.
    pub available: bool,
    pub name: Option<String>,
    pub unit_price: Option<Money>,
    pub line_total: Option<Money>,
}

/// Sets a line's quantity, 1 to [`MAX_QUANTITY`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "nubo_platform::error::whole")]
    pub quantity: i64,
}

/// Adds `quantity` (1 to [`MAX_QUANTITY`]) units to a line; the line may not exceed the maximum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLine {
    /// A SKU the catalog sells (404 otherwise).
    #[schema(pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$", example = "TEA-001")]
    pub sku: String,
    /// The line may not come to hold more than 1000 units (409 otherwise).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "nubo_platform::error::whole")]
    pub quantity: i64,
}

/// The most lines one merge may bring.
pub const MAX_MERGED_LINES: usize = 100;

/// A guest's cart, kept in their browser, brought into the account they signed in to: each
/// line ends holding at least the guest's quantity (the larger of the two), so sending the same
/// merge again changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeCart {
    /// 1 to 100 lines; SKUs the catalog no longer sells are left out.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<AddLine>,
}

/// The cart's internal API, as orders calls it.
#[derive(Clone)]
pub struct CartClient(ServiceClient);

impl CartClient {
    pub const SERVICE: &'static str = "cart";

    /// The client of a service that declared cart in its `calls`.
    pub fn of(ctx: &Context) -> Self {
        Self(ctx.client(Self::SERVICE).clone())
    }

    /// A customer's cart, priced from the catalog now.
    pub async fn cart(&self, user_id: Uuid) -> Result<CartView, CallError> {
        self.0.call(Call::get(internal_cart_path(user_id))).await
    }

    /// Takes a completed order's lines out of the customer's cart, once per order however often
    /// it is sent.
    pub async fn take_ordered(
        &self,
        user_id: Uuid,
        order_id: Uuid,
        lines: &OrderedLines,
    ) -> Result<(), CallError> {
        let call = Call::put(internal_ordered_path(user_id, order_id))
            .json(lines)
            .idempotent_on(order_id);
        self.0.call::<serde::de::IgnoredAny>(call).await.map(|_| ())
    }
}
