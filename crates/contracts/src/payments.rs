//! Payments' internal API (called by orders, never routed by the gateway) and its events.
//!
//! A checkout authorizes a card payment under an id it chooses (the order id), then captures it
//! when the order is confirmed or voids it when the checkout fails; a captured payment can be
//! refunded in full. Every call is idempotent on that id, so a saga may retry any step. A
//! decline is an answer (201, state `declined`), not an error; a provider that cannot be reached
//! is a 503 with Retry-After, after which the payment is as it was.

use nubo_platform::Context;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::client::{Call, CallError, ServiceClient};
use nubo_platform::events::Event;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Money;

/// `POST` here with [`AuthorizePayment`].
pub const PAYMENTS_PATH: &str = "/internal/v1/payments";

/// `GET` a payment: `/internal/v1/payments/{id}`.
pub fn payment_path(id: Uuid) -> String {
    format!("{PAYMENTS_PATH}/{id}")
}

/// `POST` (no body) to take the authorized money.
pub fn capture_path(id: Uuid) -> String {
    format!("{PAYMENTS_PATH}/{id}/capture")
}

/// `POST` (no body) to let an authorization go without taking the money.
pub fn void_path(id: Uuid) -> String {
    format!("{PAYMENTS_PATH}/{id}/void")
}

/// `POST` (no body) to give a captured payment back in full.
pub fn refund_path(id: Uuid) -> String {
    format!("{PAYMENTS_PATH}/{id}/refund")
}

/// The card as the shopper typed it. Only payments ever sees it; it keeps the last four digits
/// and the brand, never the number or the CVC.
///
/// The schema holds what a card's fields must look like (a 422 otherwise); whether the card
/// itself is good (its check digit, whether it has expired or expires more than 20 years ahead)
/// is for the bank to say, and a checkout refuses a bad one with 402.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// 12 to 19 digits passing the Luhn check; spaces and dashes are ignored.
    #[schema(
        pattern = "^[ -]*([0-9][ -]*){12,19}$",
        example = "4242 4242 4242 4242"
    )]
    pub number: String,
    /// 1 to 12.
    #[schema(minimum = 1, maximum = 12)]
    #[serde(deserialize_with = "nubo_platform::error::whole")]
    pub expiry_month: u32,
    /// Four digits, e.g. 2030: not in the past, at most 20 years ahead.
    #[schema(minimum = 1000, maximum = 9999)]
    #[serde(deserialize_with = "nubo_platform::error::whole")]
    pub expiry_year: i32,
    /// 3 or 4 digits.
    #[schema(pattern = "^[0-9]{3,4}$")]
    pub cvc: String,
}

impl std::fmt::Debug for Card {
    // A card in a log line or a panic message shows only what payments stores.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits: String = self.number.chars().filter(char::is_ascii_digit).collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        f.debug_struct("Card")
            .field("number", &format_args!("**** {last4}"))
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .field("cvc", &format_args!("***"))
            .finish()
    }
}

/// Authorizes `amount` on `card`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizePayment {
    /// Chosen by the caller (the order id); the same id again never authorizes twice.
    pub payment_id: Uuid,
    /// 1 to 10 000 000 minor units.
    pub amount: Money,
    pub card: Card,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// The provider is being asked; a payment is in this state only for the length of that call.
    Pending,
    /// The money is held on the card.
    Authorized,
    /// The provider refused; `decline_reason` says why.
    Declined,
    /// The money was taken.
    Captured,
    /// The authorization was let go; nothing was taken.
    Voided,
    /// The captured money was given back in full.
    Refunded,
}

/// A payment as payments answers every payment call with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    pub payment_id: Uuid,
    pub state: PaymentState,
    pub amount: Money,
    pub card_last4: String,
    /// `visa`, `mastercard`, `amex`, `discover` or `unknown`.
    pub card_brand: String,
    /// For a declined payment, in words a customer can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The money of an order was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: Uuid,
    pub amount: Money,
}

impl Event for PaymentCaptured {
    const SUBJECT: &'static str = "payments.payment_captured.v1";
}

/// The money of an order was given back in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub amount: Money,
}

impl Event for PaymentRefunded {
    const SUBJECT: &'static str = "payments.payment_refunded.v1";
}

/// Payments' internal API, as orders calls it. Every call is idempotent on the payment id.
#[derive(Clone)]
pub struct PaymentsClient(ServiceClient);

impl PaymentsClient {
    pub const SERVICE: &'static str = "payments";

    /// The client of a service that declared payments in its `calls`.
    pub fn of(ctx: &Context) -> Self {
        Self(ctx.client(Self::SERVICE).clone())
    }

    /// Asks the card's issuer to hold the amount; a decline is an answer (state `declined`).
    pub async fn authorize(&self, request: &AuthorizePayment) -> Result<Payment, CallError> {
        let call = Call::post(PAYMENTS_PATH)
            .json(request)
            .idempotent_on(request.payment_id);
        self.0.call(call).await
    }

    /// Where the payment stands (not found: nothing was ever authorized under `id`).
    pub async fn payment(&self, id: Uuid) -> Result<Payment, CallError> {
        self.0.call(Call::get(payment_path(id))).await
    }

    pub async fn capture(&self, id: Uuid) -> Result<Payment, CallError> {
        self.0
            .call(Call::post(capture_path(id)).idempotent_on(id))
            .await
    }

    pub async fn void(&self, id: Uuid) -> Result<Payment, CallError> {
        self.0
            .call(Call::post(void_path(id)).idempotent_on(id))
            .await
    }

    pub async fn refund(&self, id: Uuid) -> Result<Payment, CallError> {
        self.0
            .call(Call::post(refund_path(id)).idempotent_on(id))
            .await
    }
}
