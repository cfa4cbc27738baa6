//! The outbox relay: publishes what services wrote to their outbox and marks it published.
//!
//! Publishing then marking is not atomic: a crash between the two publishes the event again on
//! restart. That is safe because the bus de-duplicates on the event id and consumers record what
//! they handled; what the relay must never do is mark an event it has not published.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use super::{Bus, Envelope, outbox};
use crate::storage::Db;

const BATCH: i64 = 100;

#[derive(Clone)]
pub struct Relay {
    db: Db,
    bus: Bus,
    poll: Duration,
    /// Rung after a commit that wrote to the outbox, so events go out at once instead of at the
    /// next poll.
    wake: Arc<Notify>,
    published: Counter,
}

impl Relay {
    pub fn new(db: Db, bus: Bus, poll: Duration, published: Counter) -> Self {
        Self {
            db,
            bus,
            poll,
            wake: Arc::new(Notify::new()),
            published,
        }
    }

    /// A handle to ring after committing an outbox write.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Publishes every pending event once; returns how many went out.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let batch = outbox::unpublished(&self.db, BATCH).await?;
            if batch.is_empty() {
                return Ok(total);
            }
            let mut published = Vec::with_capacity(batch.len());
            for row in &batch {
                let envelope: Envelope = serde_json::from_str(&row.envelope)?;
                // Stop at the first failure so events leave in the order they were written.
                if let Err(e) = self.bus.publish(&envelope).await {
                    outbox::mark_published(&self.db, &published).await?;
                    return Err(e.into());
                }
                published.push(row.seq);
                self.published.inc();
            }
            outbox::mark_published(&self.db, &published).await?;
            total += published.len();
        }
    }

    /// Runs until `stop` resolves: publishes on every wake-up and at least every poll interval,
    /// backing off while the bus or database is failing.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = self.poll;
        let mut last_prune = std::time::Instant::now();
        loop {
            let wait = match self.publish_pending().await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(published = n, "outbox relayed");
                    }
                    backoff = self.poll;
                    self.poll
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "outbox relay failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = std::time::Instant::now();
                if let Err(e) = outbox::prune(&self.db, chrono::Duration::days(7)).await {
                    tracing::warn!(error = %e, "outbox prune failed");
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
