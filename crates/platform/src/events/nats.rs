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
    use std::collections::HashSet;
    use std::future::Future;
    use std::time::Duration;

    use serde_json::json;
    use uuid::Uuid;

    use super::super::Envelope;
    use super::super::bus::{Bus, BusError, Delivery, Subscription, SubscriptionSpec};

    const URL: &str = "nats://127.0.0.1:4222";
    const ACK_WAIT: Duration = Duration::from_millis(500);
    /// Generous bound for anything that should arrive; only ever reached when a test fails.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A bus on a namespace (and so a stream) of its own, deleted by [`delete_stream`].
    async fn bus() -> Bus {
        let namespace = format!("t{}", Uuid::new_v4().simple());
        Bus::nats(URL, &namespace).await.expect("connect to NATS")
    }

    async fn delete_stream(bus: Bus) {
        if let Bus::Nats(nats) = bus {
            nats.inner
                .js
                .delete_stream(&nats.inner.stream.cached_info().config.name)
                .await
                .expect("delete test stream");
        }
    }

    fn envelope(subject: &str, n: u32) -> Envelope {
        Envelope {
            id: Uuid::now_v7(),
            subject: subject.to_owned(),
            source: "test".to_owned(),
            occurred_at: chrono::Utc::now(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            payload: json!({ "n": n }),
        }
    }

    fn spec(durable: &str, subject: &str) -> SubscriptionSpec {
        SubscriptionSpec {
            durable: durable.to_owned(),
            subject: subject.to_owned(),
            ack_wait: ACK_WAIT,
            max_deliver: None,
        }
    }

    fn envelopes(got: Vec<Delivery>) -> Vec<Envelope> {
        got.into_iter().map(|d| d.envelope).collect()
    }

    /// Fetches and acks until `n` events have arrived.
    async fn take_acked(sub: &mut Subscription, n: usize) -> Vec<Envelope> {
        let mut got = Vec::new();
        while got.len() < n {
            let batch = sub.fetch(n - got.len(), PATIENCE).await.unwrap();
            assert!(!batch.is_empty(), "timed out after {got:?}");
            for delivery in batch {
                got.push(delivery.envelope.clone());
                delivery.ack().await.unwrap();
            }
        }
        got
    }

    /// The server updates consumer counters asynchronously to the calls that change them.
    async fn eventually<F, Fut>(want: u64, mut pending: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<u64, BusError>>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = pending().await.unwrap();
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pending stayed {got}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

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

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn a_consumer_created_after_publishing_receives_the_whole_history_in_order() {
        let bus = bus().await;
        bus.ping().await.unwrap();
        let sent: Vec<Envelope> = (0..3).map(|n| envelope("orders.placed.v1", n)).collect();
        for e in &sent {
            bus.publish(e).await.unwrap();
        }

        let mut sub = bus
            .subscribe(&spec("late", "orders.placed.v1"))
            .await
            .unwrap();
        let got = sub.fetch(10, PATIENCE).await.unwrap();

        assert!(got.iter().all(|d| d.attempt == 1));
        assert_eq!(envelopes(got), sent);
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn an_event_published_while_a_consumer_waits_is_delivered_to_it() {
        let bus = bus().await;
        let mut sub = bus.subscribe(&spec("waiter", "orders.>")).await.unwrap();
        let e = envelope("orders.placed.v1", 1);

        let waiting = tokio::spawn(async move { sub.fetch(5, PATIENCE).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        bus.publish(&e).await.unwrap();

        let got = waiting.await.unwrap().unwrap();
        assert_eq!(envelopes(got), vec![e]);
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn a_fetch_with_nothing_to_deliver_returns_empty_after_its_wait() {
        let bus = bus().await;
        let mut sub = bus.subscribe(&spec("idle", "orders.>")).await.unwrap();
        assert!(
            sub.fetch(10, Duration::from_millis(200))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(sub.fetch(10, Duration::ZERO).await.unwrap().is_empty());
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn publishing_the_same_envelope_twice_delivers_it_once() {
        let bus = bus().await;
        let mut sub = bus.subscribe(&spec("once", "payments.>")).await.unwrap();
        let e = envelope("payments.captured.v1", 1);
        bus.publish(&e).await.unwrap();
        bus.publish(&e).await.unwrap();

        let first = sub.fetch(10, PATIENCE).await.unwrap();
        assert_eq!(first.len(), 1);
        for d in first {
            d.ack().await.unwrap();
        }
        assert!(sub.fetch(10, ACK_WAIT * 2).await.unwrap().is_empty());
        eventually(0, || bus.pending("once")).await;
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn an_unacked_delivery_comes_back_after_ack_wait_even_to_a_new_subscription() {
        let bus = bus().await;
        let e = envelope("inventory.reserved.v1", 1);
        bus.publish(&e).await.unwrap();

        let mut sub = bus.subscribe(&spec("flaky", "inventory.>")).await.unwrap();
        let first = sub.fetch(1, PATIENCE).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempt, 1);
        // The handler dies: the delivery and its subscription are dropped unsettled.
        drop(first);
        drop(sub);

        let mut again = bus.subscribe(&spec("flaky", "inventory.>")).await.unwrap();
        let second = again.fetch(1, PATIENCE).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].envelope, e);
        assert_eq!(second[0].attempt, 2);
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn a_nak_brings_the_event_back_after_its_delay() {
        let bus = bus().await;
        let mut sub = bus
            .subscribe(&SubscriptionSpec {
                ack_wait: Duration::from_secs(60),
                ..spec("retrying", "orders.>")
            })
            .await
            .unwrap();
        let e = envelope("orders.placed.v1", 1);
        bus.publish(&e).await.unwrap();

        let first = sub.fetch(1, PATIENCE).await.unwrap().pop().unwrap();
        first.nak(Duration::from_millis(300)).await.unwrap();

        // Far sooner than ack_wait (60 s): only the nak's delay can bring it back.
        let second = sub.fetch(1, PATIENCE).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].envelope, e);
        assert_eq!(second[0].attempt, 2);
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn acked_and_termed_deliveries_never_come_back() {
        let bus = bus().await;
        let mut sub = bus.subscribe(&spec("settled", "orders.>")).await.unwrap();
        bus.publish(&envelope("orders.placed.v1", 1)).await.unwrap();
        bus.publish(&envelope("orders.placed.v1", 2)).await.unwrap();

        let mut got = sub.fetch(2, PATIENCE).await.unwrap();
        assert_eq!(got.len(), 2);
        got.pop().unwrap().term().await.unwrap();
        got.pop().unwrap().ack().await.unwrap();

        assert!(sub.fetch(10, ACK_WAIT * 3).await.unwrap().is_empty());
        eventually(0, || bus.pending("settled")).await;
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn two_consumers_with_different_names_each_get_every_event() {
        let bus = bus().await;
        let mut a = bus
            .subscribe(&spec("notifications", "orders.>"))
            .await
            .unwrap();
        let mut b = bus.subscribe(&spec("analytics", "orders.>")).await.unwrap();
        let sent: Vec<Envelope> = (0..3).map(|n| envelope("orders.placed.v1", n)).collect();
        for e in &sent {
            bus.publish(e).await.unwrap();
        }

        assert_eq!(take_acked(&mut a, sent.len()).await, sent);
        assert_eq!(take_acked(&mut b, sent.len()).await, sent);
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn subscriptions_sharing_a_durable_name_split_the_work_without_duplicates() {
        let bus = bus().await;
        let workers = spec("workers", "orders.>");
        let mut a = bus.subscribe(&workers).await.unwrap();
        let mut b = bus.subscribe(&workers).await.unwrap();
        for n in 0..20 {
            bus.publish(&envelope("orders.placed.v1", n)).await.unwrap();
        }

        let (got_a, got_b) = tokio::join!(a.fetch(10, PATIENCE), b.fetch(10, PATIENCE));
        let ids: Vec<Uuid> = got_a
            .unwrap()
            .iter()
            .chain(got_b.unwrap().iter())
            .map(|d| d.envelope.id)
            .collect();
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "an event went to both workers");
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn a_filter_ending_in_gt_takes_a_whole_subtree_and_an_exact_one_only_its_subject() {
        let bus = bus().await;
        let mut tree = bus.subscribe(&spec("tree", "catalog.>")).await.unwrap();
        let mut exact = bus
            .subscribe(&spec("exact", "catalog.product_changed.v1"))
            .await
            .unwrap();
        let changed = envelope("catalog.product_changed.v1", 1);
        let priced = envelope("catalog.price.changed.v1", 2);
        let unrelated = [
            envelope("catalogue.product_changed.v1", 3),
            envelope("catalog", 4),
            envelope("orders.placed.v1", 5),
        ];
        for e in [&changed, &priced].into_iter().chain(&unrelated) {
            bus.publish(e).await.unwrap();
        }
        let mut late_tree = bus
            .subscribe(&spec("late-tree", "catalog.>"))
            .await
            .unwrap();

        let want_tree = vec![changed.clone(), priced.clone()];
        assert_eq!(take_acked(&mut tree, 2).await, want_tree);
        assert_eq!(take_acked(&mut late_tree, 2).await, want_tree);
        assert_eq!(take_acked(&mut exact, 1).await, vec![changed]);
        // Nothing else is on its way to either kind of filter.
        assert!(
            tree.fetch(10, Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            exact
                .fetch(10, Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty()
        );
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn pending_counts_what_a_consumer_has_not_acked_yet() {
        let bus = bus().await;
        assert_eq!(bus.pending("nobody").await.unwrap(), 0);
        for n in 0..3 {
            bus.publish(&envelope("orders.placed.v1", n)).await.unwrap();
        }
        let mut sub = bus.subscribe(&spec("lagging", "orders.>")).await.unwrap();
        eventually(3, || bus.pending("lagging")).await;

        let mut got = sub.fetch(2, PATIENCE).await.unwrap();
        assert_eq!(got.len(), 2);
        // Fetched but unacked still counts (ack-pending).
        eventually(3, || bus.pending("lagging")).await;
        got.pop().unwrap().ack().await.unwrap();
        eventually(2, || bus.pending("lagging")).await;
        bus.publish(&envelope("orders.placed.v1", 9)).await.unwrap();
        eventually(3, || bus.pending("lagging")).await;
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn a_delivery_is_dropped_after_max_deliver_attempts() {
        let bus = bus().await;
        let bounded = SubscriptionSpec {
            max_deliver: Some(2),
            ..spec("bounded", "orders.>")
        };
        let mut sub = bus.subscribe(&bounded).await.unwrap();
        bus.publish(&envelope("orders.placed.v1", 1)).await.unwrap();

        for attempt in 1..=2 {
            let got = sub.fetch(1, PATIENCE).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].attempt, attempt);
        }
        assert!(sub.fetch(1, ACK_WAIT * 3).await.unwrap().is_empty());
        delete_stream(bus).await;
    }

    #[tokio::test]
    #[ignore = "needs NATS with JetStream: run by .ci/run"]
    async fn a_durable_consumer_keeps_its_filter_but_takes_a_new_ack_wait() {
        let bus = bus().await;
        bus.subscribe(&spec("named", "orders.>")).await.unwrap();

        let conflict = bus.subscribe(&spec("named", "payments.>")).await;
        assert!(matches!(conflict, Err(BusError::ConsumerConflict { .. })));
        let invalid = bus.subscribe(&spec("bad.name", "orders.>")).await;
        assert!(matches!(invalid, Err(BusError::InvalidSubscription { .. })));

        // A redeployed service with a longer ack_wait and a bound on attempts keeps its consumer.
        let e = envelope("orders.placed.v1", 1);
        bus.publish(&e).await.unwrap();
        let mut sub = bus
            .subscribe(&SubscriptionSpec {
                ack_wait: Duration::from_secs(30),
                max_deliver: Some(5),
                ..spec("named", "orders.>")
            })
            .await
            .unwrap();
        let got = sub.fetch(1, PATIENCE).await.unwrap();
        assert_eq!(envelopes(got), vec![e]);
        // With the new 30 s ack_wait, the unacked event is not back after the old one.
        assert!(sub.fetch(1, ACK_WAIT * 3).await.unwrap().is_empty());
        delete_stream(bus).await;
    }
}
