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
