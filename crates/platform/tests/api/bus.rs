//! The event bus's contract, told once against [`Bus`] and run against both back ends: the
//! SQLite-backed in-process bus (embedded) and NATS JetStream (distributed). Service code and the
//! consumer runtime rely on exactly these stories, whichever mode they run in.
//!
//! Each story gets an event store of its own ([`EventStore`]): a fresh SQLite file, or a fresh
//! namespace, and so a JetStream stream, on the NATS server. What only one back end has (failing
//! to connect to a NATS server) is tested next to it.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use nubo_platform::both_modes;
use nubo_platform::events::{Bus, BusError, Delivery, Envelope, Subscription, SubscriptionSpec};
use nubo_platform::testing::{TestMode, nats_url};
use serde_json::json;
use uuid::Uuid;

const ACK_WAIT: Duration = Duration::from_millis(500);
/// Generous bound for anything that should arrive; only ever reached when a story fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Where one story's events are kept, apart from every other story's.
enum EventStore {
    File(tempfile::TempDir),
    Stream { namespace: String },
}

impl EventStore {
    fn new(mode: TestMode) -> Self {
        match mode {
            TestMode::Embedded => Self::File(tempfile::tempdir().expect("temporary directory")),
            TestMode::Distributed => Self::Stream {
                namespace: format!("t{}", Uuid::new_v4().simple()),
            },
        }
    }

    /// A bus on this store. Opening it again is what a restarted process does.
    async fn open(&self) -> Bus {
        match self {
            Self::File(dir) => Bus::embedded(&dir.path().join("events.db"))
                .await
                .expect("open the embedded bus"),
            Self::Stream { namespace } => Bus::nats(&nats_url(), namespace)
                .await
                .expect("connect to NATS"),
        }
    }
}

impl Drop for EventStore {
    /// The NATS server keeps a stream after the story, also after one that failed: delete it.
    /// (A file goes with its directory.)
    fn drop(&mut self) {
        let Self::Stream { namespace } = self else {
            return;
        };
        // The stream is named after the namespace, upper-cased (see `Bus::nats`).
        let stream = namespace.to_uppercase();
        // Drop cannot await: a thread with a runtime of its own can.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = async_nats::connect(nats_url()).await?;
                async_nats::jetstream::new(client)
                    .delete_stream(stream)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(e)) = deleted {
            eprintln!("could not delete the NATS stream of namespace {namespace}: {e}");
        }
    }
}

fn envelope(subject: &str, n: u32) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        subject: subject.to_owned(),
        source: "test".to_owned(),
        occurred_at: nubo_platform::chrono::Utc::now(),
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

/// The next delivery, which must come within [`PATIENCE`].
async fn next_delivery(sub: &mut Subscription) -> Delivery {
    let mut got = sub.fetch(1, PATIENCE).await.unwrap();
    assert_eq!(got.len(), 1, "no delivery within {PATIENCE:?}");
    got.remove(0)
}

/// Fetches and acks until `n` events have arrived: a fetch may hand out fewer than are there.
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

/// Waits until the lag reads `want`: NATS updates consumer counters after the calls that change
/// them return.
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

both_modes!(
    a_consumer_created_after_publishing_receives_the_whole_history_in_order,
    an_event_published_while_a_consumer_waits_is_delivered_to_it,
    a_fetch_with_nothing_to_deliver_returns_empty_after_its_wait,
    publishing_the_same_envelope_twice_delivers_it_once,
    an_unacked_delivery_comes_back_after_ack_wait_even_to_a_new_subscription,
    a_nak_brings_the_event_back_after_its_delay,
    acked_and_termed_deliveries_never_come_back,
    events_deliveries_and_acks_survive_a_restart,
    two_consumers_with_different_names_each_get_every_event,
    subscriptions_sharing_a_durable_name_split_the_work_without_duplicates,
    a_filter_ending_in_gt_takes_a_whole_subtree_and_an_exact_one_only_its_subject,
    pending_counts_what_a_consumer_has_not_acked_yet,
    a_delivery_is_dropped_after_max_deliver_attempts,
    a_durable_consumer_keeps_its_filter_but_takes_a_new_ack_wait,
);

async fn a_consumer_created_after_publishing_receives_the_whole_history_in_order(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
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
}

async fn an_event_published_while_a_consumer_waits_is_delivered_to_it(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let mut sub = bus.subscribe(&spec("waiter", "orders.>")).await.unwrap();
    let e = envelope("orders.placed.v1", 1);

    let waiting = tokio::spawn(async move { sub.fetch(5, PATIENCE).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.publish(&e).await.unwrap();

    let got = waiting.await.unwrap().unwrap();
    assert_eq!(envelopes(got), vec![e]);
}

async fn a_fetch_with_nothing_to_deliver_returns_empty_after_its_wait(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let mut sub = bus.subscribe(&spec("idle", "orders.>")).await.unwrap();

    let waited = sub.fetch(10, Duration::from_millis(200)).await.unwrap();
    assert!(waited.is_empty());
    assert!(sub.fetch(10, Duration::ZERO).await.unwrap().is_empty());
}

async fn publishing_the_same_envelope_twice_delivers_it_once(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
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
}

async fn an_unacked_delivery_comes_back_after_ack_wait_even_to_a_new_subscription(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let e = envelope("inventory.reserved.v1", 1);
    bus.publish(&e).await.unwrap();

    let mut sub = bus.subscribe(&spec("flaky", "inventory.>")).await.unwrap();
    let first = next_delivery(&mut sub).await;
    assert_eq!(first.attempt, 1);
    // The handler dies: the delivery and its subscription are dropped unsettled.
    drop(first);
    drop(sub);

    let mut again = bus.subscribe(&spec("flaky", "inventory.>")).await.unwrap();
    let second = next_delivery(&mut again).await;
    assert_eq!((second.envelope, second.attempt), (e, 2));
}

async fn a_nak_brings_the_event_back_after_its_delay(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let mut sub = bus
        .subscribe(&SubscriptionSpec {
            ack_wait: Duration::from_secs(60),
            ..spec("retrying", "orders.>")
        })
        .await
        .unwrap();
    let e = envelope("orders.placed.v1", 1);
    bus.publish(&e).await.unwrap();

    let first = next_delivery(&mut sub).await;
    first.nak(Duration::from_millis(300)).await.unwrap();

    // Far sooner than ack_wait (60 s): only the nak's delay can bring it back.
    let second = next_delivery(&mut sub).await;
    assert_eq!((second.envelope, second.attempt), (e, 2));
}

async fn acked_and_termed_deliveries_never_come_back(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let mut sub = bus.subscribe(&spec("settled", "orders.>")).await.unwrap();
    bus.publish(&envelope("orders.placed.v1", 1)).await.unwrap();
    bus.publish(&envelope("orders.placed.v1", 2)).await.unwrap();

    let mut got = sub.fetch(2, PATIENCE).await.unwrap();
    assert_eq!(got.len(), 2);
    got.pop().unwrap().term().await.unwrap();
    got.pop().unwrap().ack().await.unwrap();

    assert!(sub.fetch(10, ACK_WAIT * 3).await.unwrap().is_empty());
    eventually(0, || bus.pending("settled")).await;
}

async fn events_deliveries_and_acks_survive_a_restart(mode: TestMode) {
    let store = EventStore::new(mode);
    let acked = envelope("orders.placed.v1", 1);
    let in_flight = envelope("orders.placed.v1", 2);
    let unseen = envelope("orders.placed.v1", 3);
    {
        let bus = store.open().await;
        let mut sub = bus.subscribe(&spec("durable", "orders.>")).await.unwrap();
        bus.publish(&acked).await.unwrap();
        bus.publish(&in_flight).await.unwrap();
        let mut got = sub.fetch(2, PATIENCE).await.unwrap();
        assert_eq!(got.len(), 2);
        got.remove(0).ack().await.unwrap();
        bus.publish(&unseen).await.unwrap();
        // The process "crashes" with the second delivery unsettled.
    }

    let bus = store.open().await;
    let mut sub = bus.subscribe(&spec("durable", "orders.>")).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let got = sub.fetch(10, PATIENCE).await.unwrap();
        assert!(!got.is_empty(), "timed out; got {seen:?}");
        for d in got {
            seen.push((d.envelope.clone(), d.attempt));
            d.ack().await.unwrap();
        }
    }
    seen.sort_by_key(|(e, _)| e.id);
    assert_eq!(seen, vec![(in_flight, 2), (unseen, 1)]);
    // Publishing again after the restart is still recognised as a duplicate.
    bus.publish(&acked).await.unwrap();
    eventually(0, || bus.pending("durable")).await;
}

async fn two_consumers_with_different_names_each_get_every_event(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let mut notifications = bus
        .subscribe(&spec("notifications", "orders.>"))
        .await
        .unwrap();
    let mut analytics = bus.subscribe(&spec("analytics", "orders.>")).await.unwrap();
    let sent: Vec<Envelope> = (0..3).map(|n| envelope("orders.placed.v1", n)).collect();
    for e in &sent {
        bus.publish(e).await.unwrap();
    }

    assert_eq!(take_acked(&mut notifications, sent.len()).await, sent);
    assert_eq!(take_acked(&mut analytics, sent.len()).await, sent);
}

async fn subscriptions_sharing_a_durable_name_split_the_work_without_duplicates(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
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
}

async fn a_filter_ending_in_gt_takes_a_whole_subtree_and_an_exact_one_only_its_subject(
    mode: TestMode,
) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
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
    // A consumer created afterwards gets its history by the same rule.
    let mut late_tree = bus
        .subscribe(&spec("late-tree", "catalog.>"))
        .await
        .unwrap();

    let want_tree = vec![changed.clone(), priced.clone()];
    assert_eq!(take_acked(&mut tree, 2).await, want_tree);
    assert_eq!(take_acked(&mut late_tree, 2).await, want_tree);
    assert_eq!(take_acked(&mut exact, 1).await, vec![changed]);
    // Nothing else is on its way to either kind of filter.
    let quiet = Duration::from_millis(300);
    assert!(tree.fetch(10, quiet).await.unwrap().is_empty());
    assert!(exact.fetch(10, quiet).await.unwrap().is_empty());
}

async fn pending_counts_what_a_consumer_has_not_acked_yet(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
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
}

async fn a_delivery_is_dropped_after_max_deliver_attempts(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
    let bounded = SubscriptionSpec {
        max_deliver: Some(2),
        ..spec("bounded", "orders.>")
    };
    let mut sub = bus.subscribe(&bounded).await.unwrap();
    bus.publish(&envelope("orders.placed.v1", 1)).await.unwrap();

    for attempt in 1..=2 {
        assert_eq!(next_delivery(&mut sub).await.attempt, attempt);
    }
    assert!(sub.fetch(1, ACK_WAIT * 3).await.unwrap().is_empty());
    eventually(0, || bus.pending("bounded")).await;
}

async fn a_durable_consumer_keeps_its_filter_but_takes_a_new_ack_wait(mode: TestMode) {
    let store = EventStore::new(mode);
    let bus = store.open().await;
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
    assert_eq!(next_delivery(&mut sub).await.envelope, e);
    // With the new 30 s ack_wait, the unacked event is not back after the old one.
    assert!(sub.fetch(1, ACK_WAIT * 3).await.unwrap().is_empty());
}
