//! Inventory's internal API (called by orders, never routed by the gateway) and its events.
//!
//! A checkout reserves stock under an id it chooses (the order id), then commits the reservation
//! when payment succeeds or releases it when the checkout fails. Every call is idempotent on that
//! id, so a saga may retry any step; a release that lands before its reserve leaves a tombstone,
//! and the late reserve is refused.

use nubo_platform::Context;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::client::{Call, CallError, ServiceClient};
use nubo_platform::events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST` here with [`ReserveStock`].
pub const RESERVATIONS_PATH: &str = "/internal/v1/reservations";

/// `GET` a reservation: `/internal/v1/reservations/{id}`.
pub fn reservation_path(id: Uuid) -> String {
    format!("{RESERVATIONS_PATH}/{id}")
}

/// `POST` (no body) to turn held stock into sold stock.
pub fn commit_path(id: Uuid) -> String {
    format!("{RESERVATIONS_PATH}/{id}/commit")
}

/// `POST` with [`ReleaseStock`] to give held stock back.
pub fn release_path(id: Uuid) -> String {
    format!("{RESERVATIONS_PATH}/{id}/release")
}

/// One SKU and how many units of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLine {
    pub sku: String,
    /// 1 to 1000.
    pub quantity: i64,
}

/// Holds stock for a checkout, all lines or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveStock {
    /// Chosen by the caller (the order id); the same id again never reserves twice.
    pub reservation_id: Uuid,
    /// At least one line, each SKU once.
    pub lines: Vec<StockLine>,
    /// How long the stock is held unless committed, 1 to 3600 seconds.
    pub ttl_secs: i64,
}

/// Gives held stock back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseStock {
    /// Why, for the event and the record: `payment_declined`, `cancelled`, ... (1 to 200 chars).
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Stock is set aside until `expires_at`.
    Held,
    /// The units left the shop: on hand went down.
    Committed,
    /// The units are available again: released by the caller or by expiry, or returned after
    /// they were committed (see [`Reservation::returned`]).
    Released,
}

/// A reservation as inventory answers every reservation call with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub state: ReservationState,
    /// Empty for a release that arrived before any reserve (a tombstone).
    pub lines: Vec<StockLine>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// When it was committed or released.
    pub settled_at: Option<DateTime<Utc>>,
    /// Why it was released (`expired` when its time ran out); `returned: <reason>` when the
    /// units had been committed and came back on hand because the order was cancelled.
    pub release_reason: Option<String>,
}

/// How a [`Reservation::release_reason`] of committed stock that came back begins.
pub const RETURNED: &str = "returned: ";

impl Reservation {
    /// Whether its units had left the shop and came back on hand (a cancelled order's return).
    pub fn returned(&self) -> bool {
        self.release_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(RETURNED))
    }
}

/// Held stock was given back: by the caller, or because the reservation expired
/// (`reason == "expired"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleased {
    pub reservation_id: Uuid,
    pub lines: Vec<StockLine>,
    pub reason: String,
}

/// The reason the expiry sweep gives.
pub const EXPIRED: &str = "expired";

impl Event for StockReleased {
    const SUBJECT: &'static str = "inventory.stock_released.v1";
}

/// Inventory's internal API, as orders calls it. Every call is idempotent on the reservation id.
#[derive(Clone)]
pub struct InventoryClient(ServiceClient);

impl InventoryClient {
    pub const SERVICE: &'static str = "inventory";

    /// The client of a service that declared inventory in its `calls`.
    pub fn of(ctx: &Context) -> Self {
        Self(ctx.client(Self::SERVICE).clone())
    }

    /// Holds the lines' stock, all or none (refused when some line has too little).
    pub async fn reserve(&self, request: &ReserveStock) -> Result<Reservation, CallError> {
        let call = Call::post(RESERVATIONS_PATH)
            .json(request)
            .idempotent_on(request.reservation_id);
        self.0.call(call).await
    }

    pub async fn reservation(&self, id: Uuid) -> Result<Reservation, CallError> {
        self.0.call(Call::get(reservation_path(id))).await
    }

    /// Turns held stock into sold stock.
    pub async fn commit(&self, id: Uuid) -> Result<Reservation, CallError> {
        self.0
            .call(Call::post(commit_path(id)).idempotent_on(id))
            .await
    }

    /// Gives held stock back (refused once committed).
    pub async fn release(&self, id: Uuid, why: &ReleaseStock) -> Result<Reservation, CallError> {
        let call = Call::post(release_path(id)).json(why).idempotent_on(id);
        self.0.call(call).await
    }
}
