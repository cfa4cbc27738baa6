//! The in-process event bus of embedded mode: JetStream's contract (durable named consumers,
//! at-least-once delivery, redelivery after `ack_wait`, nak with delay, delivery counts, dedupe
//! on the event id, late consumers replaying history) kept in one SQLite file, so neither a
//! published event nor an ack is lost when the process crashes.
//!
//! The file holds three tables: `messages` is the stream (every event once, in publish order,
//! unique on its id); `consumers` names each durable consumer and its subject filter; and
//! `deliveries` holds one row per message a consumer has not yet acked, with its attempt count
//! and the time it may next be handed out. Publishing inserts the message and a delivery row for
//! each matching consumer; creating a consumer back-fills rows for every matching message, both
//! under SQLite's write lock so no message falls between the two. Fetching claims due rows by
//! pushing their `visible_at` one `ack_wait` ahead; ack and term delete the row; nak moves
//! `visible_at` to the requested delay. Waiting fetchers are woken by a [`Notify`] on publish and
//! nak, and otherwise sleep until the next row falls due, so delivery is not polled.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Envelope;
use super::bus::{BusError, Delivery, DeliveryHandle, SubscriptionSpec};

/// Created at every open; `IF NOT EXISTS` makes that idempotent, and the schema is small and
/// private to this file, so it needs no migrator.
const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        envelope TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS consumers (
        name TEXT PRIMARY KEY,
        filter TEXT NOT NULL,
        max_deliver INTEGER
    )",
    "CREATE TABLE IF NOT EXISTS deliveries (
        consumer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        PRIMARY KEY (consumer, seq)
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (consumer, visible_at)",
];

/// `subject` passes `filter`: equal, or below the prefix of a filter ending in `>` (NATS's rule
/// for the filters `SubscriptionSpec` allows). Written once in SQL so publish fan-out and
/// consumer back-fill cannot disagree; both queries name their columns `subject` and `filter`.
macro_rules! subject_matches_filter {
    () => {
        "(filter = subject OR (substr(filter, -1) = '>' \
          AND length(subject) > length(filter) - 1 \
          AND substr(subject, 1, length(filter) - 1) = substr(filter, 1, length(filter) - 1)))"
    };
}

/// Upper bound on one sleep of a waiting fetcher, so that writes the [`Notify`] cannot see (a
/// second `EmbeddedBus` opened on the same file) are still picked up.
const MAX_IDLE_SLEEP: Duration = Duration::from_secs(1);

/// Handle on the bus file. Cheap to clone; clones share the pool and the wake-ups.
#[derive(Clone)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    /// Woken on publish, nak and consumer creation: whatever makes a delivery due sooner.
    due: Notify,
}

impl EmbeddedBus {
    /// Opens (creating) the bus file at `path` and its schema.
    pub async fn open(path: &Path) -> Result<Self, BusError> {
        let open_error = |cause| BusError::Open {
            path: path.display().to_string(),
            cause,
        };
        // WAL with synchronous=NORMAL: a committed transaction survives a process crash (only
        // an OS crash could lose the last ones), and readers never block the writer.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(open_error)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                due: Notify::new(),
            }),
        })
    }

    fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    pub async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let json = serde_json::to_string(envelope)?;
        let err = store_error("publish");
        // IMMEDIATE takes the write lock up front: the fan-out must see exactly the consumers
        // that exist when the message is stored (see `subscribe`).
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err)?;
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO messages (id, subject, envelope) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING RETURNING seq",
        )
        .bind(envelope.id)
        .bind(&envelope.subject)
        .bind(&json)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        let Some(seq) = seq else {
            tracing::debug!(event_id = %envelope.id, "duplicate publish ignored");
            return Ok(());
        };
        sqlx::query(concat!(
            "INSERT INTO deliveries (consumer, seq, attempts, visible_at)
             SELECT name, $1, 0, $2 FROM consumers, (SELECT $3 AS subject) WHERE ",
            subject_matches_filter!()
        ))
        .bind(seq)
        .bind(now_ms())
        .bind(&envelope.subject)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        self.inner.due.notify_waiters();
        Ok(())
    }

    pub async fn subscribe(
        &self,
        spec: &SubscriptionSpec,
    ) -> Result<EmbeddedSubscription, BusError> {
        let err = store_error("subscribe");
        let max_deliver = spec.max_deliver.map(i64::from);
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err)?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT filter FROM consumers WHERE name = $1")
                .bind(&spec.durable)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
        match existing {
            Some(filter) if filter != spec.subject => {
                return Err(BusError::ConsumerConflict {
                    durable: spec.durable.clone(),
                    existing: filter,
                    requested: spec.subject.clone(),
                });
            }
            Some(_) => {
                sqlx::query("UPDATE consumers SET max_deliver = $2 WHERE name = $1")
                    .bind(&spec.durable)
                    .bind(max_deliver)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO consumers (name, filter, max_deliver) VALUES ($1, $2, $3)",
                )
                .bind(&spec.durable)
                .bind(&spec.subject)
                .bind(max_deliver)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                // A new consumer starts from the beginning of the stream, like JetStream's
                // DeliverPolicy::All.
                let backfilled = sqlx::query(concat!(
                    "INSERT INTO deliveries (consumer, seq, attempts, visible_at)
                     SELECT $1, seq, 0, $2 FROM messages, (SELECT $3 AS filter) WHERE ",
                    subject_matches_filter!()
                ))
                .bind(&spec.durable)
                .bind(now_ms())
                .bind(&spec.subject)
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
                tracing::info!(
                    durable = %spec.durable,
                    filter = %spec.subject,
                    backfilled,
                    "created durable consumer"
                );
            }
        }
        tx.commit().await.map_err(err)?;
        self.inner.due.notify_waiters();
        Ok(EmbeddedSubscription {
            bus: self.clone(),
            durable: Arc::from(spec.durable.as_str()),
            ack_wait: spec.ack_wait,
            max_deliver,
        })
    }

    pub async fn ping(&self) -> Result<(), BusError> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(store_error("ping"))?;
        Ok(())
    }

    pub async fn pending(&self, durable: &str) -> Result<u64, BusError> {
        // Rows that used up max_deliver and whose last delivery expired are gone for JetStream;
        // here they linger until the next fetch removes them, so they are not counted.
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN consumers c ON c.name = d.consumer
             WHERE d.consumer = $1
               AND NOT (c.max_deliver IS NOT NULL AND d.attempts >= c.max_deliver
                        AND d.visible_at <= $2)",
        )
        .bind(durable)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
        .map_err(store_error("pending"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// A pulling handle on one durable consumer of the embedded bus.
pub struct EmbeddedSubscription {
    bus: EmbeddedBus,
    durable: Arc<str>,
    ack_wait: Duration,
    max_deliver: Option<i64>,
}

impl EmbeddedSubscription {
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking at the table, so a publish that lands between the look
            // and the sleep still wakes us.
            let mut woken = std::pin::pin!(self.bus.inner.due.notified());
            woken.as_mut().enable();

            let next_due = match self.claim(max).await? {
                Claim::Delivered(deliveries) => return Ok(deliveries),
                Claim::NothingDue { next_due_ms } => next_due_ms,
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut until = deadline.min(now + MAX_IDLE_SLEEP);
            if let Some(due_ms) = next_due {
                let in_ms = u64::try_from(due_ms.saturating_sub(now_ms())).unwrap_or(0);
                until = until.min(now + Duration::from_millis(in_ms));
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Hands out up to `max` due deliveries, oldest message first.
    async fn claim(&self, max: usize) -> Result<Claim, BusError> {
        let err = store_error("fetch");
        let pool = self.bus.pool();
        let now = now_ms();
        // A plain read first: idle fetchers are woken by every publish, and most of them have
        // nothing due, which should not cost a write transaction each.
        let next_due: Option<i64> =
            sqlx::query_scalar("SELECT MIN(visible_at) FROM deliveries WHERE consumer = $1")
                .bind(&*self.durable)
                .fetch_one(pool)
                .await
                .map_err(err)?;
        match next_due {
            Some(due) if due <= now => {}
            next_due_ms => return Ok(Claim::NothingDue { next_due_ms }),
        }

        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        if let Some(max_deliver) = self.max_deliver {
            // Out of attempts and not acked in time: dropped, as JetStream does at max_deliver.
            let dropped = sqlx::query(
                "DELETE FROM deliveries
                 WHERE consumer = $1 AND attempts >= $2 AND visible_at <= $3",
            )
            .bind(&*self.durable)
            .bind(max_deliver)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected();
            if dropped > 0 {
                tracing::warn!(
                    durable = %self.durable,
                    dropped,
                    max_deliver,
                    "deliveries dropped after reaching max_deliver"
                );
            }
        }
        let ack_wait_ms = i64::try_from(self.ack_wait.as_millis()).unwrap_or(i64::MAX);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let mut rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "UPDATE deliveries SET attempts = attempts + 1, visible_at = $2
             WHERE consumer = $1 AND seq IN (
                 SELECT seq FROM deliveries WHERE consumer = $1 AND visible_at <= $3
                 ORDER BY seq LIMIT $4)
             RETURNING seq, attempts,
                 (SELECT envelope FROM messages WHERE messages.seq = deliveries.seq)",
        )
        .bind(&*self.durable)
        .bind(now.saturating_add(ack_wait_ms))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;

        if rows.is_empty() {
            // What was due went to another subscription of this consumer or was dropped for
            // max_deliver: look again at once, which finds the next due time.
            return Ok(Claim::NothingDue {
                next_due_ms: Some(now),
            });
        }
        // RETURNING gives no order guarantee.
        rows.sort_unstable_by_key(|(seq, _, _)| *seq);
        let mut deliveries = Vec::with_capacity(rows.len());
        for (seq, attempts, json) in rows {
            let envelope: Envelope = serde_json::from_str(&json)?;
            let handle = EmbeddedDelivery {
                bus: self.bus.clone(),
                durable: Arc::clone(&self.durable),
                seq,
                attempts,
            };
            let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
            deliveries.push(Delivery::new(
                envelope,
                attempt,
                DeliveryHandle::Embedded(handle),
            ));
        }
        Ok(Claim::Delivered(deliveries))
    }
}

enum Claim {
    Delivered(Vec<Delivery>),
    NothingDue { next_due_ms: Option<i64> },
}

/// What settles one embedded delivery: the consumer, the message and which attempt it was.
pub struct EmbeddedDelivery {
    bus: EmbeddedBus,
    durable: Arc<str>,
    seq: i64,
    attempts: i64,
}

impl EmbeddedDelivery {
    pub(super) async fn ack(self) -> Result<(), BusError> {
        self.delete("ack").await
    }

    pub(super) async fn term(self) -> Result<(), BusError> {
        self.delete("term").await
    }

    /// Ack and term both end the delivery whichever attempt it came from: the work was done (or
    /// given up) even if the delivery had meanwhile expired and gone out again.
    async fn delete(self, op: &'static str) -> Result<(), BusError> {
        sqlx::query("DELETE FROM deliveries WHERE consumer = $1 AND seq = $2")
            .bind(&*self.durable)
            .bind(self.seq)
            .execute(self.bus.pool())
            .await
            .map_err(store_error(op))?;
        Ok(())
    }

    pub(super) async fn nak(self, delay: Duration) -> Result<(), BusError> {
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        // Only this attempt's nak counts: if it already expired and went out again, a late nak
        // must not postpone the newer delivery.
        let updated = sqlx::query(
            "UPDATE deliveries SET visible_at = $3
             WHERE consumer = $1 AND seq = $2 AND attempts = $4",
        )
        .bind(&*self.durable)
        .bind(self.seq)
        .bind(now_ms().saturating_add(delay_ms))
        .bind(self.attempts)
        .execute(self.bus.pool())
        .await
        .map_err(store_error("nak"))?
        .rows_affected();
        if updated == 0 {
            tracing::debug!(durable = %self.durable, seq = self.seq, "nak of a superseded delivery ignored");
        }
        // A waiting fetcher may be sleeping until a later due time than this one.
        self.bus.inner.due.notify_waiters();
        Ok(())
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn store_error(op: &'static str) -> impl Fn(sqlx::Error) -> BusError + Copy {
    move |cause| {
        let err = BusError::Store { op, cause };
        tracing::warn!(error = %err, "event store operation failed");
        err
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use serde_json::json;
    use uuid::Uuid;

    use super::super::Envelope;
    use super::super::bus::{Bus, BusError, SubscriptionSpec};

    const ACK_WAIT: Duration = Duration::from_millis(300);
    /// Generous bound for anything that should arrive; only ever reached when a test fails.
    const PATIENCE: Duration = Duration::from_secs(10);

    fn envelope(subject: &str, n: u32) -> Envelope {
        Envelope {
            id: Uuid::now_v7(),
            subject: subject.to_owned(),
            source: "test".to_owned(),
            occurred_at: chrono::Utc::now(),
            traceparent: None,
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

    async fn open(dir: &tempfile::TempDir) -> Bus {
        Bus::embedded(&dir.path().join("events.db"))
            .await
            .expect("open embedded bus")
    }

    #[tokio::test]
    async fn a_consumer_created_after_publishing_receives_the_whole_history_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
        let sent: Vec<Envelope> = (0..3).map(|n| envelope("orders.placed.v1", n)).collect();
        for e in &sent {
            bus.publish(e).await.unwrap();
        }

        let mut sub = bus
            .subscribe(&spec("late", "orders.placed.v1"))
            .await
            .unwrap();
        let got = sub.fetch(10, PATIENCE).await.unwrap();

        let envelopes: Vec<Envelope> = got.iter().map(|d| d.envelope.clone()).collect();
        assert_eq!(envelopes, sent);
        assert!(got.iter().all(|d| d.attempt == 1));
    }

    #[tokio::test]
    async fn an_event_published_while_a_consumer_waits_is_delivered_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
        let mut sub = bus.subscribe(&spec("waiter", "orders.>")).await.unwrap();
        let e = envelope("orders.placed.v1", 1);

        let waiting = tokio::spawn(async move { sub.fetch(5, PATIENCE).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        bus.publish(&e).await.unwrap();

        let got = waiting.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].envelope, e);
    }

    #[tokio::test]
    async fn publishing_the_same_envelope_twice_delivers_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
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
        assert_eq!(bus.pending("once").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_unacked_delivery_comes_back_after_ack_wait_even_to_a_new_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
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
    }

    #[tokio::test]
    async fn a_nak_brings_the_event_back_after_its_delay() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
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
        first.nak(Duration::from_millis(200)).await.unwrap();

        // Far sooner than ack_wait (60 s): only the nak's delay can bring it back.
        let second = sub.fetch(1, PATIENCE).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].envelope, e);
        assert_eq!(second[0].attempt, 2);
    }

    #[tokio::test]
    async fn acked_and_termed_deliveries_never_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
        let mut sub = bus.subscribe(&spec("settled", "orders.>")).await.unwrap();
        bus.publish(&envelope("orders.placed.v1", 1)).await.unwrap();
        bus.publish(&envelope("orders.placed.v1", 2)).await.unwrap();

        let mut got = sub.fetch(2, PATIENCE).await.unwrap();
        assert_eq!(got.len(), 2);
        got.pop().unwrap().term().await.unwrap();
        got.pop().unwrap().ack().await.unwrap();

        assert!(sub.fetch(10, ACK_WAIT * 3).await.unwrap().is_empty());
        assert_eq!(bus.pending("settled").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn events_deliveries_and_acks_survive_closing_and_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let acked = envelope("orders.placed.v1", 1);
        let in_flight = envelope("orders.placed.v1", 2);
        let unseen = envelope("orders.placed.v1", 3);
        {
            let bus = open(&dir).await;
            let mut sub = bus.subscribe(&spec("durable", "orders.>")).await.unwrap();
            bus.publish(&acked).await.unwrap();
            bus.publish(&in_flight).await.unwrap();
            let mut got = sub.fetch(2, PATIENCE).await.unwrap();
            assert_eq!(got.len(), 2);
            got.remove(0).ack().await.unwrap();
            // The process "crashes" with the second delivery unsettled.
            bus.publish(&unseen).await.unwrap();
        }

        let bus = open(&dir).await;
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
        // Re-publishing after the restart is still recognised as a duplicate.
        bus.publish(&acked).await.unwrap();
        assert_eq!(bus.pending("durable").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn two_consumers_with_different_names_each_get_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
        let mut a = bus
            .subscribe(&spec("notifications", "orders.>"))
            .await
            .unwrap();
        let mut b = bus.subscribe(&spec("analytics", "orders.>")).await.unwrap();
        let sent: Vec<Envelope> = (0..3).map(|n| envelope("orders.placed.v1", n)).collect();
        for e in &sent {
            bus.publish(e).await.unwrap();
        }

        for sub in [&mut a, &mut b] {
            let got = sub.fetch(10, PATIENCE).await.unwrap();
            let envelopes: Vec<Envelope> = got.iter().map(|d| d.envelope.clone()).collect();
            assert_eq!(envelopes, sent);
        }
    }

    #[tokio::test]
    async fn subscriptions_sharing_a_durable_name_split_the_work_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
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

    #[tokio::test]
    async fn a_filter_ending_in_gt_takes_a_whole_subtree_and_an_exact_one_only_its_subject() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
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
        // A consumer created afterwards is back-filled by the same rule.
        let mut late_tree = bus
            .subscribe(&spec("late-tree", "catalog.>"))
            .await
            .unwrap();

        let envelopes = |got: Vec<super::super::bus::Delivery>| -> Vec<Envelope> {
            got.into_iter().map(|d| d.envelope).collect()
        };
        let want_tree = vec![changed.clone(), priced.clone()];
        assert_eq!(
            envelopes(tree.fetch(10, PATIENCE).await.unwrap()),
            want_tree
        );
        assert_eq!(
            envelopes(late_tree.fetch(10, PATIENCE).await.unwrap()),
            want_tree
        );
        assert_eq!(
            envelopes(exact.fetch(10, PATIENCE).await.unwrap()),
            vec![changed]
        );
    }

    #[tokio::test]
    async fn pending_counts_what_a_consumer_has_not_acked_yet() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
        assert_eq!(bus.pending("nobody").await.unwrap(), 0);
        for n in 0..3 {
            bus.publish(&envelope("orders.placed.v1", n)).await.unwrap();
        }
        let mut sub = bus.subscribe(&spec("lagging", "orders.>")).await.unwrap();
        assert_eq!(bus.pending("lagging").await.unwrap(), 3);

        let mut got = sub.fetch(2, PATIENCE).await.unwrap();
        // Fetched but unacked still counts (ack-pending).
        assert_eq!(bus.pending("lagging").await.unwrap(), 3);
        got.pop().unwrap().ack().await.unwrap();
        assert_eq!(bus.pending("lagging").await.unwrap(), 2);
        bus.publish(&envelope("orders.placed.v1", 9)).await.unwrap();
        assert_eq!(bus.pending("lagging").await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_delivery_is_dropped_after_max_deliver_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
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
        assert_eq!(bus.pending("bounded").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_durable_name_cannot_be_reused_with_another_filter_or_a_bad_spec() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(&dir).await;
        bus.subscribe(&spec("named", "orders.>")).await.unwrap();

        let conflict = bus.subscribe(&spec("named", "payments.>")).await;
        assert!(matches!(conflict, Err(BusError::ConsumerConflict { .. })));
        let invalid = bus.subscribe(&spec("bad.name", "orders.>")).await;
        assert!(matches!(invalid, Err(BusError::InvalidSubscription { .. })));
        bus.ping().await.unwrap();
    }
}
