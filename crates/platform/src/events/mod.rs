//! Events between services: the envelope, the transactional outbox, its relay, the bus it
//! publishes to, and the consumer runtime.
//!
//! A service never publishes directly. It writes an event into its outbox table in the same
//! transaction as the state change ([`outbox::enqueue`]); the [`relay`] publishes what is in the
//! outbox to the [`bus`] (in-process and SQLite-backed in embedded mode, NATS JetStream in
//! distributed mode) and marks it published. Delivery is therefore at least once; a consumer
//! records each handled event id in its own transaction ([`consumer`]), which makes handling
//! at most once in effect. Failed handling is retried with backoff a bounded number of times, then
//! the event is dead-lettered.

pub mod bus;
pub mod consumer;
pub mod embedded;
pub mod nats;
pub mod outbox;
pub mod relay;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use bus::{Bus, BusError, Delivery, Subscription, SubscriptionSpec};

/// A payload that crosses a service boundary as an event. `SUBJECT` is versioned
/// (`catalog.product_changed.v1`): a breaking change is a new subject, never an edit.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    const SUBJECT: &'static str;
}

/// What travels on the bus: the payload plus what every consumer needs to handle it once and to
/// continue the producer's trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; the bus de-duplicates on it and consumers record it as handled.
    pub id: Uuid,
    pub subject: String,
    /// The service that produced it.
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    /// W3C trace context of the change that produced the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub payload: serde_json::Value,
}

impl Envelope {
    pub fn new<E: Event>(source: &str, event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: Uuid::now_v7(),
            subject: E::SUBJECT.to_owned(),
            source: source.to_owned(),
            occurred_at: crate::clock::now(),
            traceparent: crate::telemetry::current_traceparent(),
            payload: serde_json::to_value(event)?,
        })
    }

    /// The payload as `E`, if the subject is `E`'s.
    pub fn decode<E: Event>(&self) -> Result<E, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }
}
