//! Orders' public API (the checkout and a customer's orders, through the gateway) and the events
//! a checkout publishes. The events carry what a consumer needs to act alone: notifications
//! writes to `email` without asking identity or orders anything.

use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::events::Event;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Money;
use crate::payments::Card;

/// `POST` a [`Checkout`] here with an `Idempotency-Key` header: the signed-in customer's cart
/// becomes an order. The same key again answers with the same order, never a second one.
pub const CHECKOUT_PATH: &str = "/api/v1/checkout";

/// The signed-in customer's orders, newest first: `GET`.
pub const MY_ORDERS_PATH: &str = "/api/v1/orders";

/// `GET` one order: `/api/v1/orders/{id}` (its customer or an admin).
pub fn order_path(id: Uuid) -> String {
    format!("{MY_ORDERS_PATH}/{id}")
}

/// Every customer's orders, for admins: `GET`, filtered by `?status=`.
pub const ADMIN_ORDERS_PATH: &str = "/api/v1/admin/orders";

/// `POST` a [`CancelOrder`] to cancel a confirmed order and refund it (admins only):
/// `/api/v1/admin/orders/{id}/cancel`.
pub fn admin_cancel_path(id: Uuid) -> String {
    format!("{ADMIN_ORDERS_PATH}/{id}/cancel")
}

/// The most characters an `Idempotency-Key` may have.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The shipping options and the countries the shop delivers to: `GET`, no token.
pub const SHIPPING_OPTIONS_PATH: &str = "/api/v1/checkout/shipping-options";

/// What the customer sends to check out: how to pay, how to reach them, and where the order
/// goes. What is bought is the cart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    pub card: Card,
    /// How to reach the customer about the order; without it, the account's email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// Where to deliver and how; without it, the order is collected at the shop (no cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Shipping>,
}

/// How to reach the customer about an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Where the order's emails go.
    #[schema(max_length = 254, example = "ada@example.com")]
    pub email: String,
    /// A mobile number for text messages about the order, international form (`+49 151
    /// 23456789`); spaces, dashes, dots and brackets are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32, example = "+49 151 23456789")]
    pub phone: Option<String>,
}

/// Where and how an order is delivered, as the customer asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shipping {
    /// The id of one of the shipping options (`standard`, `express`).
    #[schema(
        pattern = "^(standard|express)$",
        max_length = 32,
        example = "standard"
    )]
    pub option: String,
    pub address: Address,
}

/// A delivery address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Who receives it: 1 to 100 characters.
    #[schema(max_length = 100, example = "Ada Lovelace")]
    pub name: String,
    /// Street and number: 1 to 200 characters.
    #[schema(max_length = 200, example = "Unter den Linden 1")]
    pub line1: String,
    /// Flat, floor, company: at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub line2: String,
    #[schema(max_length = 100, example = "Berlin")]
    pub city: String,
    /// In the country's own form (`10115`, `1012 AB`, `SW1A 1AA`).
    #[schema(max_length = 12, example = "10115")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 code of a country the shop delivers to (`GET
    /// /api/v1/checkout/shipping-options` lists them).
    #[schema(
        pattern = "^(AT|BE|CH|DE|DK|ES|FI|FR|GB|IE|IT|LU|NL|NO|PL|PT|SE|US)$",
        max_length = 2,
        example = "DE"
    )]
    pub country: String,
}

/// A way to deliver an order and what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShippingOption {
    pub id: String,
    pub name: String,
    /// How long it takes, in words.
    pub days: String,
    pub price: Money,
    /// Free when the items cost at least this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_over: Option<Money>,
}

/// A country the shop delivers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Country {
    pub code: String,
    pub name: String,
}

/// The shipping options and the countries the shop delivers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShippingOptions {
    pub options: Vec<ShippingOption>,
    pub countries: Vec<Country>,
}

/// How an order is delivered and what that cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderShipping {
    /// `standard`, `express`, or `collect` (picked up at the shop).
    pub option: String,
    pub name: String,
    pub price: Money,
    /// Absent when the order is collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Why an admin cancels a confirmed order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    /// 1 to 200 characters, not counting spaces around them; the customer reads it.
    #[schema(pattern = "^\\s*\\S([\\s\\S]*\\S)?\\s*$", max_length = 200)]
    pub reason: String,
}

/// Where an order is, as its customer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// The checkout is running: stock is being reserved or the card authorized.
    Pending,
    /// The order is accepted; the money is (or is being) taken and the stock leaves the shop.
    Confirmed,
    /// The order is being undone: its payment voided or refunded, its stock released.
    Cancelling,
    /// The checkout failed or was undone; `cancel_reason` says why, and nothing is charged
    /// (or what was charged is refunded).
    Cancelled,
}

/// One line of an order, priced when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// One recorded step of an order's checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderStep {
    /// `place`, `reserve_stock`, `authorize_payment`, `confirm`, `capture_payment`,
    /// `commit_stock`, `clear_cart`, `void_payment`, `refund_payment`, `release_stock`, `cancel`.
    pub step: String,
    /// `done`, `failed` (the checkout turns back) or `retrying` (a service did not answer).
    pub outcome: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// An order as its customer and admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub order_id: Uuid,
    /// The short number the customer quotes (`NB-7K3M9QX2`), unique like the id.
    pub number: String,
    pub user_id: Uuid,
    pub status: OrderStatus,
    /// Where the order is now, in one sentence for its customer.
    pub message: String,
    /// Whether a step is being tried again (a slow bank, a busy service): the customer is told
    /// it takes longer, and nothing is charged twice.
    pub slow: bool,
    /// The saga's own state: `placed`, `reserved`, `authorized`, `confirmed`, `captured`,
    /// `stock_committed`, `completed`, `compensating` or `cancelled`.
    pub state: String,
    pub lines: Vec<OrderLine>,
    /// What the lines cost.
    pub items_total: Money,
    /// The lines and the shipping: what is paid.
    pub total: Money,
    pub contact: Contact,
    pub shipping: OrderShipping,
    /// In words the customer can read, for a cancelled order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Whether money taken for this order was given back.
    pub refunded: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every step taken, oldest first.
    pub steps: Vec<OrderStep>,
}

/// A page of orders, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `?before=` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<DateTime<Utc>>,
}

/// A customer's cart became an order; the checkout has begun.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    /// The short number the customer quotes (`NB-7K3M9QX2`); empty in events of older orders.
    #[serde(default)]
    pub number: String,
    pub user_id: Uuid,
    /// Where to write to the customer about this order.
    pub email: String,
    /// The customer's mobile number (E.164, `+4915123456789`) if they gave one for text messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

impl Event for OrderPlaced {
    const SUBJECT: &'static str = "orders.order_placed.v1";
}

/// Stock is held and the card authorized: the order is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    /// The short number the customer quotes (`NB-7K3M9QX2`); empty in events of older orders.
    #[serde(default)]
    pub number: String,
    pub user_id: Uuid,
    pub email: String,
    /// The customer's mobile number (E.164, `+4915123456789`) if they gave one for text messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

impl Event for OrderConfirmed {
    const SUBJECT: &'static str = "orders.order_confirmed.v1";
}

/// The order ended cancelled: its stock is back and nothing stays charged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    /// The short number the customer quotes (`NB-7K3M9QX2`); empty in events of older orders.
    #[serde(default)]
    pub number: String,
    pub user_id: Uuid,
    pub email: String,
    /// The customer's mobile number (E.164, `+4915123456789`) if they gave one for text messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// In words the customer can read.
    pub reason: String,
    /// Whether captured money was refunded (a `PaymentRefunded` with the order id follows).
    pub refunded: bool,
    pub total: Money,
}

impl Event for OrderCancelled {
    const SUBJECT: &'static str = "orders.order_cancelled.v1";
}
