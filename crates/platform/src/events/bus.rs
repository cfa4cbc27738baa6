//! The event bus every service publishes to and consumes from, whatever the mode: one [`Bus`]
//! value in front of the SQLite-backed in-process bus ([`super::embedded`]) and NATS JetStream
//! ([`super::nats`]).
//!
//! Both give the same contract, so service code and the consumer runtime are written once:
//! publishing returns only once the event is stored, and is de-duplicated on the envelope id;
//! consumers are durable and named, start from the first stored event when first created, and get
//! at-least-once delivery: a delivery that is not acked within the consumer's `ack_wait` comes back
//! with its attempt count raised, a nak brings it back after the requested delay, a term drops it.
//! That contract is told once, in the platform's `tests/api/bus.rs`, and run against both.

use std::path::Path;
use std::time::Duration;

use super::Envelope;
use super::embedded::{EmbeddedBus, EmbeddedDelivery, EmbeddedSubscription};
use super::nats::{NatsBus, NatsDelivery, NatsSubscription};

/// A boxed cause from a client library, kept whole for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A durable subscription's parameters.
#[derive(Clone, Debug)]
pub struct SubscriptionSpec {
    /// Durable consumer name, e.g. `catalog-cache-invalidation`: letters, digits, `-`, `_`.
    pub durable: String,
    /// Envelope subject filter: exact (`catalog.product_changed.v1`) or ending in `.>`
    /// (`catalog.>`, every subject below `catalog`).
    pub subject: String,
    /// An unacked delivery is redelivered after this.
    pub ack_wait: Duration,
    /// `None` = unlimited (the consumer runtime bounds attempts itself).
    pub max_deliver: Option<u32>,
}

impl SubscriptionSpec {
    /// Rejects names and filters that one of the two back ends would not accept, so a bad spec
    /// fails the same way in embedded mode as against NATS.
    pub(super) fn validate(&self) -> Result<(), BusError> {
        let invalid = |reason: String| {
            Err(BusError::InvalidSubscription {
                durable: self.durable.clone(),
                reason,
            })
        };
        if self.durable.is_empty()
            || !self
                .durable
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return invalid(
                "the durable name must be non-empty letters, digits, '-' or '_'".into(),
            );
        }
        if let Err(reason) = validate_filter(&self.subject) {
            return invalid(reason);
        }
        if self.ack_wait.is_zero() {
            return invalid("ack_wait must be positive".into());
        }
        if self.max_deliver == Some(0) {
            return invalid("max_deliver must be at least 1 (None for unlimited)".into());
        }
        Ok(())
    }
}

/// A filter is dot-separated non-empty tokens without wildcards, except a final `>`.
fn validate_filter(filter: &str) -> Result<(), String> {
    let tokens: Vec<&str> = filter.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        let valid = if *token == ">" {
            last
        } else {
            !token.is_empty()
                && !token.contains(['*', '>'])
                && !token.chars().any(char::is_whitespace)
        };
        if !valid {
            return Err(format!(
                "subject filter {filter:?} must be an exact subject or end in \".>\""
            ));
        }
    }
    Ok(())
}

/// What went wrong on the bus. Each message carries its whole cause chain (`a: b: c`) rather
/// than exposing it through `source()`, so the `error = %e` of a log line says everything and a
/// chain printer does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {}", Causes(&**cause))]
    Connect { url: String, cause: BoxError },
    #[error("NATS {op} failed: {}", Causes(&**cause))]
    Nats { op: &'static str, cause: BoxError },
    #[error("NATS connection is {state}")]
    Disconnected { state: String },
    #[error("invalid NATS namespace {namespace:?}: use letters, digits, '-' or '_'")]
    InvalidNamespace { namespace: String },
    #[error("cannot open the event store at {path}: {}", Causes(cause))]
    Open { path: String, cause: sqlx::Error },
    #[error("event store {op} failed: {}", Causes(cause))]
    Store {
        op: &'static str,
        cause: sqlx::Error,
    },
    #[error("event envelope could not be encoded or decoded: {0}")]
    Codec(serde_json::Error),
    #[error("invalid subscription {durable:?}: {reason}")]
    InvalidSubscription { durable: String, reason: String },
    #[error(
        "durable consumer {durable:?} already exists with subject filter {existing:?}, not \
         {requested:?}; a changed filter needs a new durable name"
    )]
    ConsumerConflict {
        durable: String,
        existing: String,
        requested: String,
    },
}

impl From<serde_json::Error> for BusError {
    fn from(cause: serde_json::Error) -> Self {
        BusError::Codec(cause)
    }
}

/// An error and its sources, joined with `: `. A cause that its parent already quotes at the end
/// of its own message (as async-nats errors do) is not repeated.
struct Causes<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            next = cause.source();
        }
        Ok(())
    }
}

/// The event bus of the running mode. Cheap to clone; clones share one connection or pool.
#[derive(Clone)]
pub enum Bus {
    Embedded(EmbeddedBus),
    Nats(NatsBus),
}

impl Bus {
    /// Opens (creating) the SQLite-backed in-process bus at `path` (a file, e.g.
    /// `<data_dir>/events.db`).
    pub async fn embedded(path: &Path) -> Result<Bus, BusError> {
        Ok(Bus::Embedded(EmbeddedBus::open(path).await?))
    }

    /// Connects to NATS and ensures the JetStream stream for `namespace` exists (stream name =
    /// namespace uppercased with `-` -> `_`, subjects `<namespace>.>`, file storage, duplicate
    /// window 2 minutes). Errors if the server is unreachable.
    pub async fn nats(url: &str, namespace: &str) -> Result<Bus, BusError> {
        Ok(Bus::Nats(NatsBus::connect(url, namespace).await?))
    }

    /// Like [`Bus::nats`], creating the stream (if it does not exist yet) with `replicas` copies.
    pub async fn nats_with_replicas(
        url: &str,
        namespace: &str,
        replicas: usize,
    ) -> Result<Bus, BusError> {
        Ok(Bus::Nats(
            NatsBus::connect_with_replicas(url, namespace, replicas).await?,
        ))
    }

    /// Publishes durably: returns Ok only once the bus has stored the event. De-duplicated on
    /// `envelope.id`: publishing the same envelope twice stores and delivers it once.
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        match self {
            Bus::Embedded(bus) => bus.publish(envelope).await,
            Bus::Nats(bus) => bus.publish(envelope).await,
        }
    }

    /// Creates or reuses the durable consumer `spec.durable` (delivering everything from the start
    /// of the stream when first created, explicit ack) and returns a handle to pull from it.
    pub async fn subscribe(&self, spec: &SubscriptionSpec) -> Result<Subscription, BusError> {
        spec.validate()?;
        Ok(match self {
            Bus::Embedded(bus) => Subscription::Embedded(bus.subscribe(spec).await?),
            Bus::Nats(bus) => Subscription::Nats(bus.subscribe(spec).await?),
        })
    }

    /// Cheap liveness check of the bus, for readiness probes.
    pub async fn ping(&self) -> Result<(), BusError> {
        match self {
            Bus::Embedded(bus) => bus.ping().await,
            Bus::Nats(bus) => bus.ping().await,
        }
    }

    /// Consumer lag: messages of durable consumer `durable` not yet acked (pending +
    /// ack-pending). Ok(0) if the consumer does not exist yet.
    pub async fn pending(&self, durable: &str) -> Result<u64, BusError> {
        match self {
            Bus::Embedded(bus) => bus.pending(durable).await,
            Bus::Nats(bus) => bus.pending(durable).await,
        }
    }
}

/// A handle on a durable consumer to pull deliveries from. Dropping it loses nothing: what it
/// fetched and did not ack is redelivered after `ack_wait`.
pub enum Subscription {
    Embedded(EmbeddedSubscription),
    Nats(NatsSubscription),
}

impl Subscription {
    /// Waits up to `wait` for at most `max` deliveries; returns an empty Vec on timeout.
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        match self {
            Subscription::Embedded(sub) => sub.fetch(max, wait).await,
            Subscription::Nats(sub) => sub.fetch(max, wait).await,
        }
    }
}

/// One delivery of an event to a consumer; settle it with exactly one of [`Delivery::ack`],
/// [`Delivery::nak`] or [`Delivery::term`], or let it be redelivered after `ack_wait`.
pub struct Delivery {
    pub envelope: Envelope,
    /// 1 on first delivery.
    pub attempt: u32,
    handle: DeliveryHandle,
}

pub(super) enum DeliveryHandle {
    Embedded(EmbeddedDelivery),
    Nats(NatsDelivery),
}

impl Delivery {
    pub(super) fn new(envelope: Envelope, attempt: u32, handle: DeliveryHandle) -> Self {
        Self {
            envelope,
            attempt,
            handle,
        }
    }

    /// Handled: never redelivered.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.handle {
            DeliveryHandle::Embedded(handle) => handle.ack().await,
            DeliveryHandle::Nats(handle) => handle.ack().await,
        }
    }

    /// Not handled now: redelivered after `delay`.
    pub async fn nak(self, delay: Duration) -> Result<(), BusError> {
        match self.handle {
            DeliveryHandle::Embedded(handle) => handle.nak(delay).await,
            DeliveryHandle::Nats(handle) => handle.nak(delay).await,
        }
    }

    /// Never redelivered although not handled (the caller dead-letters it).
    pub async fn term(self) -> Result<(), BusError> {
        match self.handle {
            DeliveryHandle::Embedded(handle) => handle.term().await,
            DeliveryHandle::Nats(handle) => handle.term().await,
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(durable: &str, subject: &str) -> SubscriptionSpec {
        SubscriptionSpec {
            durable: durable.into(),
            subject: subject.into(),
            ack_wait: Duration::from_secs(1),
            max_deliver: None,
        }
    }

    /// Services use the bus from spawned tasks: its values and futures must be `Send`.
    #[allow(dead_code)] // checked by compiling it, never run
    fn everything_can_cross_tasks(bus: Bus, mut sub: Subscription, delivery: Delivery) {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Sync>(_: &T) {}
        sync(&bus);
        sync(&BusError::Disconnected {
            state: String::new(),
        });
        let work = async move {
            let spec = spec("a", "b");
            let _ = bus.subscribe(&spec).await;
            let _ = bus.ping().await;
            let _ = bus.pending("a").await;
            let _ = sub.fetch(1, Duration::ZERO).await;
            let envelope = delivery.envelope.clone();
            let _ = bus.publish(&envelope).await;
            let _ = delivery.nak(Duration::ZERO).await;
        };
        send(&work);
    }

    #[test]
    fn specs_that_either_back_end_would_reject_are_refused() {
        assert!(spec("orders-saga_1", "orders.>").validate().is_ok());
        assert!(spec("orders.saga", "orders.>").validate().is_err());
        assert!(spec("", "orders.>").validate().is_err());
        assert!(spec("a", "orders.*.v1").validate().is_err());
        assert!(spec("a", "orders.>.v1").validate().is_err());
        assert!(spec("a", "orders..v1").validate().is_err());
        assert!(spec("a", "").validate().is_err());
        let mut no_wait = spec("a", "x");
        no_wait.ack_wait = Duration::ZERO;
        assert!(no_wait.validate().is_err());
    }
}
