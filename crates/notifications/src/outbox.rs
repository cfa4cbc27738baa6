//! The outbox every channel sends from: a background task per channel that sends the `pending`
//! messages of its channel through a [`Courier`] (SMTP for emails, the SMS gateway for text
//! messages), retries the ones that fail transiently with growing delays, and marks a message
//! `failed` (keeping the last error) once it has had its attempts or can never be sent.
//!
//! Any number of replicas run it over the same table. A replica takes a message by claiming it
//! (a conditional UPDATE that moves its next attempt one lease ahead), so two replicas never
//! send the same message at the same time; a replica that dies mid-send leaves the claim to run
//! out, and another sends the message then.
//!
//! Sending is at least once: a crash (or a lost claim) between the far side accepting a message
//! and the row being marked `sent` means it is sent again. Every message goes out under a stable
//! id derived from its row id (an email's `Message-ID`, a text message's idempotency key), so a
//! far side that de-duplicates on it shows it once; the SMS gateway does.

use std::sync::Arc;
use std::time::Duration;

use nubo_platform::async_trait::async_trait;
use nubo_platform::chrono::{DateTime, TimeDelta, Utc};
use nubo_platform::futures::{StreamExt, stream};
use nubo_platform::storage::Db;
use nubo_platform::tokio;
use nubo_platform::tokio_util::sync::CancellationToken;
use rand::Rng;

use crate::domain::Channel;
use crate::metrics::{Delivery, NotificationMetrics};
use crate::store::{self, Claimed};

/// How often an outbox looks for due messages when it found none.
const POLL: Duration = Duration::from_millis(500);
/// Messages looked at per look; each is claimed right before it is sent, so one waiting for a
/// free sender never holds a claim.
const BATCH: i64 = 64;
/// How long a claim holds: longer than any send, so only a dead replica's claim runs out.
pub const LEASE: Duration = Duration::from_secs(120);
/// Waits between attempts double from this...
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// ...up to this.
const MAX_RETRY: Duration = Duration::from_secs(600);

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message itself is unsendable (a recipient that is not an address or a number), or
    /// the far side refused it for good: no retry can help.
    #[error("{0}")]
    Permanent(String),
    /// The far side or the network failed: worth another try.
    #[error("{0}")]
    Transient(String),
}

/// Takes one message of a channel to its far side.
#[async_trait]
pub trait Courier: Send + Sync {
    /// The channel whose messages it sends.
    fn channel(&self) -> Channel;
    /// Sends `message`; `Ok` with the far side's id of it, if it gives one. Must end within
    /// [`LEASE`], so only a dead replica's claim ever runs out.
    async fn deliver(&self, message: &Claimed) -> Result<Option<String>, SendError>;
}

/// One channel's outbox. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    courier: Arc<dyn Courier>,
    max_attempts: i32,
    /// Messages in flight at once.
    concurrency: usize,
    metrics: NotificationMetrics,
}

impl Outbox {
    pub fn new(
        courier: Arc<dyn Courier>,
        max_attempts: u32,
        concurrency: usize,
        metrics: NotificationMetrics,
    ) -> Self {
        Self {
            courier,
            max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
            concurrency: concurrency.max(1),
            metrics,
        }
    }

    /// Sends due messages until `token` is cancelled.
    pub async fn run(self, db: Db, token: CancellationToken) {
        loop {
            let looked = match self.send_due(&db, &token).await {
                Ok(n) => n,
                Err(e) => {
                    // The database is away; the health check says so, and we try again.
                    tracing::warn!(
                        error = format!("{e:#}"),
                        channel = self.courier.channel().as_str(),
                        "outbox cannot read its table"
                    );
                    0
                }
            };
            // A full batch means more may be due at once.
            if looked < BATCH {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(POLL) => {}
                }
            } else if token.is_cancelled() {
                return;
            }
        }
    }

    /// One look at the table: claims and sends what is due, up to `concurrency` at once.
    /// Returns how many it looked at.
    async fn send_due(&self, db: &Db, token: &CancellationToken) -> anyhow::Result<i64> {
        let channel = self.courier.channel();
        let due = store::due(db, channel, nubo_platform::clock::now(), BATCH).await?;
        let looked = due.len() as i64;
        let mut sends = stream::iter(due)
            .map(|id| async move {
                if token.is_cancelled() {
                    return Ok(());
                }
                let now = nubo_platform::clock::now();
                let Some(claimed) = store::claim(db, id, now, after(now, LEASE)).await? else {
                    // Another replica took it first.
                    return Ok(());
                };
                self.attempt(db, &claimed).await
            })
            .buffer_unordered(self.concurrency);
        // Every started send finishes and is recorded before the first error is returned.
        let mut first_error = None;
        while let Some(result) = sends.next().await {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(looked),
        }
    }

    async fn attempt(&self, db: &Db, claimed: &Claimed) -> anyhow::Result<()> {
        let result = self.courier.deliver(claimed).await;
        let now = nubo_platform::clock::now();
        let (outcome, settled) = match &result {
            Ok(provider_id) => (
                Delivery::Sent,
                store::mark_sent(db, claimed, now, provider_id.as_deref()).await?,
            ),
            Err(SendError::Permanent(e)) => (
                Delivery::Failed,
                store::mark_unsent(db, claimed, e, None).await?,
            ),
            Err(SendError::Transient(e)) if claimed.attempts >= self.max_attempts => (
                Delivery::Failed,
                store::mark_unsent(db, claimed, e, None).await?,
            ),
            Err(SendError::Transient(e)) => {
                let retry_at = after(now, retry_delay(claimed.attempts));
                (
                    Delivery::Retry,
                    store::mark_unsent(db, claimed, e, Some(retry_at)).await?,
                )
            }
        };
        let error = result.as_ref().err().map(ToString::to_string);
        self.metrics.delivery(
            self.courier.channel(),
            outcome,
            claimed.id,
            claimed.attempts,
            error.as_deref(),
        );
        if !settled {
            tracing::warn!(
                message_id = %claimed.id,
                attempt = claimed.attempts,
                "claim ran out before the attempt ended; the newer attempt decides"
            );
        }
        Ok(())
    }
}

/// The wait after failed attempt `attempt` (1 for the first): 1 s, 2 s, 4 s, ... at most
/// 10 minutes, less up to a fifth at random, so messages that failed together (an outage of
/// the far side) do not all come back in the same instant.
fn retry_delay(attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let full = FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY);
    let jitter = rand::rng().random_range(0.0..0.2);
    full.mul_f64(1.0 - jitter)
}

fn after(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_a_bound() {
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (8, 128), (11, 600), (40, 600)] {
            let delay = retry_delay(attempt);
            let full = Duration::from_secs(full);
            assert!(
                delay <= full && delay >= full.mul_f64(0.8),
                "{attempt}: {delay:?}"
            );
        }
    }
}
