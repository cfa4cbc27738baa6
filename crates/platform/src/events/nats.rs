//! The event bus of distributed mode: NATS JetStream, one file-backed stream per namespace
//! (`<namespace>.>`), durable pull consumers with explicit acks.
//!
//! Written for nats-server 2.9: one `filter_subject` per consumer, no KV, nothing from 2.10+.
//! Publishing awaits the stream's PubAck and sets `Nats-Msg-Id` to the event id, so a relay that
//! publishes again after a crash is de-duplicated within the stream's 2-minute window. Acks, naks
//! and terms are double acks (the server confirms them), so an ack the caller saw succeed cannot
//! be lost on the way and cause a redelivery.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::pull::{self, Batch};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, StorageType, Stream};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;

use super::Envelope;
use super::bus::{BoxError, BusError, Delivery, DeliveryHandle, SubscriptionSpec};

/// How long the stream remembers a `Nats-Msg-Id` to drop a re-publish of the same event.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long a no-wait pull may take to answer before the fetch gives up on it; the server
/// answers at once when it is reachable.
const NO_WAIT_PULL_TIMEOUT: Duration = Duration::from_secs(5);

/// Handle on the namespace's stream. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: Stream,
    namespace: String,
}

impl NatsBus {
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, BusError> {
        Self::connect_with_replicas(url, namespace, 1).await
    }

    /// Like [`NatsBus::connect`]; a stream created now keeps `replicas` copies of every event
    /// (3 in a three-node NATS cluster). An existing stream keeps the replicas it has.
    pub async fn connect_with_replicas(
        url: &str,
        namespace: &str,
        replicas: usize,
    ) -> Result<Self, BusError> {
        if namespace.is_empty()
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(BusError::InvalidNamespace {
                namespace: namespace.to_owned(),
            });
        }
        let client = async_nats::ConnectOptions::new()
            .name(format!("nubo-{namespace}"))
            .connect(url)
            .await
            .map_err(|cause| BusError::Connect {
                url: url.to_owned(),
                cause: Box::new(cause),
            })?;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_or_create_stream(stream::Config {
                name: stream_name(namespace),
                subjects: vec![format!("{namespace}.>")],
                storage: StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(nats_error("stream creation"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                js,
                stream,
                namespace: namespace.to_owned(),
            }),
        })
    }

    pub async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let subject = format!("{}.{}", self.inner.namespace, envelope.subject);
        let payload = serde_json::to_vec(envelope)?;
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(envelope.id.to_string());
        let ack = self
            .inner
            .js
            .send_publish(subject, publish)
            .await
            .map_err(nats_error("publish"))?
            .await
            .map_err(nats_error("publish ack"))?;
        if ack.duplicate {
            tracing::debug!(event_id = %envelope.id, "duplicate publish ignored by the stream");
        }
        Ok(())
    }

    pub async fn subscribe(&self, spec: &SubscriptionSpec) -> Result<NatsSubscription, BusError> {
        let filter_subject = format!("{}.{}", self.inner.namespace, spec.subject);
        let max_deliver = spec.max_deliver.map_or(-1, i64::from);
        let config = pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        let mut consumer: PullConsumer = self
            .inner
            .stream
            .get_or_create_consumer(&spec.durable, config.clone())
            .await
            .map_err(nats_error("consumer creation"))?;
        let existing = &consumer.cached_info().config;
        if existing.filter_subject != filter_subject {
            // Reported without the namespace, as the services spell subjects.
            let prefix = format!("{}.", self.inner.namespace);
            let existing = &existing.filter_subject;
            return Err(BusError::ConsumerConflict {
                durable: spec.durable.clone(),
                existing: existing
                    .strip_prefix(&prefix)
                    .unwrap_or(existing)
                    .to_owned(),
                requested: spec.subject.clone(),
            });
        }
        if existing.ack_wait != spec.ack_wait || existing.max_deliver != max_deliver {
            // Both are editable on a durable consumer; creating it again with the new values
            // updates it in place and keeps its position and pending acks.
            tracing::info!(
                durable = %spec.durable,
                ack_wait = ?spec.ack_wait,
                max_deliver,
                "updating durable consumer"
            );
            consumer = self
                .inner
                .stream
                .create_consumer(config)
                .await
                .map_err(nats_error("consumer update"))?;
        }
        Ok(NatsSubscription {
            consumer: Box::new(consumer),
        })
    }

    pub async fn ping(&self) -> Result<(), BusError> {
        match self.inner.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(BusError::Disconnected {
                state: state.to_string(),
            }),
        }
    }

    pub async fn pending(&self, durable: &str) -> Result<u64, BusError> {
        match self.inner.stream.consumer_info(durable).await {
            Ok(info) => {
                let ack_pending = u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
                Ok(info.num_pending.saturating_add(ack_pending))
            }
            Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => Ok(0),
            Err(err) => Err(nats_error("consumer info")(err)),
        }
    }
}

/// JetStream stream names may not contain `.`, `*`, `>`; by convention they are upper case.
fn stream_name(namespace: &str) -> String {
    namespace.to_uppercase().replace('-', "_")
}

/// A pulling handle on one durable consumer.
pub struct NatsSubscription {
    // Boxed, like the message below: they carry server-side info of ~1 kB and ~400 B.
    consumer: Box<PullConsumer>,
}

impl NatsSubscription {
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        // What is already there, at once.
        let mut deliveries = self.pull_available(max).await?;
        if !deliveries.is_empty() || wait.is_zero() {
            return Ok(deliveries);
        }
        // Nothing yet: wait for one. A waiting pull for the whole `max` would hold the reply
        // until `max` arrived or `wait` ran out, so the first event would wait for company.
        let batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(nats_error("fetch"))?;
        drain(batch, &mut deliveries, None).await?;
        // Then whatever came with it.
        if !deliveries.is_empty() && max > 1 {
            deliveries.extend(self.pull_available(max - 1).await?);
        }
        Ok(deliveries)
    }

    /// Up to `max` deliveries that are due now, without waiting for new ones.
    async fn pull_available(&self, max: usize) -> Result<Vec<Delivery>, BusError> {
        let batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(nats_error("fetch"))?;
        let mut deliveries = Vec::new();
        drain(batch, &mut deliveries, Some(NO_WAIT_PULL_TIMEOUT)).await?;
        Ok(deliveries)
    }
}

/// Reads a pull's replies to the end: stopping early would leave messages the server counts as
/// delivered to us, and they would come back only after `ack_wait`.
async fn drain(
    mut batch: Batch,
    into: &mut Vec<Delivery>,
    timeout: Option<Duration>,
) -> Result<(), BusError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, batch.next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!("NATS pull got no end-of-batch reply in time; giving up on it");
                    return Ok(());
                }
            },
            None => batch.next().await,
        };
        let message = match next {
            None => return Ok(()),
            Some(Ok(message)) => message,
            // Keep what arrived: it is ours until acked, and dropping it would only delay it.
            Some(Err(err)) if !into.is_empty() => {
                tracing::warn!(error = %err, "NATS pull ended with an error");
                return Ok(());
            }
            Some(Err(err)) => return Err(nats_error("fetch")(err)),
        };
        if let Some(delivery) = to_delivery(message).await? {
            into.push(delivery);
        }
    }
}

/// `None` for a message that is not an envelope: it can never be handled, so it is terminated
/// rather than redelivered forever.
async fn to_delivery(message: jetstream::Message) -> Result<Option<Delivery>, BusError> {
    let delivered = message
        .info()
        .map_err(nats_error("reading delivery info"))?
        .delivered;
    let attempt = u32::try_from(delivered).unwrap_or(u32::MAX).max(1);
    match serde_json::from_slice::<Envelope>(&message.payload) {
        Ok(envelope) => Ok(Some(Delivery::new(
            envelope,
            attempt,
            DeliveryHandle::Nats(NatsDelivery {
                message: Box::new(message),
            }),
        ))),
        Err(err) => {
            tracing::error!(
                subject = %message.subject,
                error = %err,
                "message on the event stream is not an envelope; terminating it"
            );
            message
                .double_ack_with(AckKind::Term)
                .await
                .map_err(nats_error("term"))?;
            Ok(None)
        }
    }
}

/// The JetStream message of one delivery, kept to settle it.
pub struct NatsDelivery {
    message: Box<jetstream::Message>,
}

impl NatsDelivery {
    pub(super) async fn ack(self) -> Result<(), BusError> {
        self.settle(AckKind::Ack, "ack").await
    }

    pub(super) async fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.settle(AckKind::Nak(Some(delay)), "nak").await
    }

    pub(super) async fn term(self) -> Result<(), BusError> {
        self.settle(AckKind::Term, "term").await
    }

    async fn settle(self, kind: AckKind, op: &'static str) -> Result<(), BusError> {
        self.message
            .double_ack_with(kind)
            .await
            .map_err(nats_error(op))
    }
}

fn nats_error<E>(op: &'static str) -> impl FnOnce(E) -> BusError
where
    E: Into<BoxError>,
{
    move |cause| {
        let err = BusError::Nats {
            op,
            cause: cause.into(),
        };
        tracing::warn!(error = %err, "NATS operation failed");
        err
    }
}

#[cfg(test)]
mod tests {
    // What both buses promise is told once, in the platform's tests/api/bus.rs, and run on each;
    // here is what only NATS has.

    use super::super::bus::{Bus, BusError};

    #[tokio::test]
    async fn connecting_to_an_unreachable_server_fails() {
        let Err(err) = Bus::nats("nats://127.0.0.1:1", "nubo").await else {
            panic!("connected to a closed port");
        };
        assert!(matches!(err, BusError::Connect { .. }));
        // The operator reading the log learns where and why.
        let message = err.to_string();
        assert!(message.starts_with("cannot connect to NATS at nats://127.0.0.1:1: "));
    }
}
