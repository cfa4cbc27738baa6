//! The mail outbox: a background task that sends `pending` emails over SMTP, retries the ones
//! that fail with growing delays, and marks an email `failed` (keeping the last error) once it
//! has had its attempts.
//!
//! Any number of replicas run it over the same table. A replica takes an email by claiming it
//! (a conditional UPDATE that moves its next attempt one lease ahead), so two replicas never
//! send the same email at the same time; a replica that dies mid-send leaves the claim to run
//! out, and another sends the email then.
//!
//! SMTP itself is at least once: a crash (or a lost claim) between the server accepting an email
//! and the row being marked `sent` means the email is sent again. Every email carries a stable
//! `Message-ID` derived from its id, so a mail system that de-duplicates on it shows it once.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use nubo_platform::chrono::{DateTime, TimeDelta, Utc};
use nubo_platform::futures::{StreamExt, stream};
use nubo_platform::storage::Db;
use nubo_platform::tokio;
use nubo_platform::tokio_util::sync::CancellationToken;
use rand::Rng;

use crate::config::{Config, SMTP_TIMEOUT, Smtp};
use crate::metrics::{Delivery, NotificationMetrics};
use crate::store::{self, Claimed};

/// How often the outbox looks for due emails when it found none.
const POLL: Duration = Duration::from_millis(500);
/// Emails looked at per look; each is claimed right before it is sent, so one waiting for a
/// free sender never holds a claim.
const BATCH: i64 = 64;
/// The longest one send may take, connection included.
const SEND_DEADLINE: Duration = Duration::from_secs(45);
/// How long a claim holds: longer than any send, so only a dead replica's claim runs out.
const LEASE: Duration = Duration::from_secs(120);
/// Waits between attempts double from this...
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// ...up to this.
const MAX_RETRY: Duration = Duration::from_secs(600);

const _: () = assert!(SMTP_TIMEOUT.as_secs() < SEND_DEADLINE.as_secs());
const _: () = assert!(SEND_DEADLINE.as_secs() < LEASE.as_secs());

/// What the outbox needs to send. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    max_attempts: i32,
    /// Emails in flight at once.
    concurrency: usize,
    metrics: NotificationMetrics,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The email itself is unsendable (a recipient that is not an address): no retry can help.
    #[error("{0}")]
    Unsendable(String),
    /// The server or the network failed: worth another try.
    #[error("{0}")]
    Smtp(String),
}

impl Mailer {
    pub fn new(smtp: &Smtp, config: &Config, metrics: NotificationMetrics) -> anyhow::Result<Self> {
        Ok(Self {
            transport: smtp.transport(config.send_concurrency)?,
            from: config.from.clone(),
            max_attempts: i32::try_from(config.send_attempts).unwrap_or(i32::MAX),
            concurrency: config.send_concurrency as usize,
            metrics,
        })
    }

    /// Sends due emails until `token` is cancelled.
    pub async fn run(self, db: Db, token: CancellationToken) {
        loop {
            let claimed = match self.send_due(&db, &token).await {
                Ok(n) => n,
                Err(e) => {
                    // The database is away; the health check says so, and we try again.
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "mail outbox cannot read its table"
                    );
                    0
                }
            };
            // A full batch means more may be due at once.
            if claimed < BATCH {
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
        let due = store::due(db, nubo_platform::clock::now(), BATCH).await?;
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
        let result = self.send(claimed).await;
        let now = nubo_platform::clock::now();
        let (outcome, settled) = match &result {
            Ok(()) => (Delivery::Sent, store::mark_sent(db, claimed, now).await?),
            Err(SendError::Unsendable(e)) => (
                Delivery::Failed,
                store::mark_unsent(db, claimed, e, None).await?,
            ),
            Err(SendError::Smtp(e)) if claimed.attempts >= self.max_attempts => (
                Delivery::Failed,
                store::mark_unsent(db, claimed, e, None).await?,
            ),
            Err(SendError::Smtp(e)) => {
                let retry_at = after(now, retry_delay(claimed.attempts));
                (
                    Delivery::Retry,
                    store::mark_unsent(db, claimed, e, Some(retry_at)).await?,
                )
            }
        };
        let error = result.as_ref().err().map(ToString::to_string);
        self.metrics
            .delivery(outcome, claimed.id, claimed.attempts, error.as_deref());
        if !settled {
            tracing::warn!(
                email_id = %claimed.id,
                attempt = claimed.attempts,
                "claim ran out before the attempt ended; the newer attempt decides"
            );
        }
        Ok(())
    }

    async fn send(&self, claimed: &Claimed) -> Result<(), SendError> {
        let to: Mailbox = claimed.recipient.parse().map_err(|e| {
            SendError::Unsendable(format!("the recipient is not an email address: {e}"))
        })?;
        let message = Message::builder()
            .message_id(Some(format!(
                "<{}@{}>",
                claimed.id,
                self.from.email.domain()
            )))
            .from(self.from.clone())
            .to(to)
            .subject(claimed.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(claimed.body.clone())
            .map_err(|e| SendError::Unsendable(format!("cannot build the email: {e}")))?;
        match tokio::time::timeout(SEND_DEADLINE, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(SendError::Smtp(smtp_error(&e))),
            Err(_) => Err(SendError::Smtp(format!(
                "the SMTP server did not take the email within {}s",
                SEND_DEADLINE.as_secs()
            ))),
        }
    }
}

/// lettre's error with its causes ("network error: Connection refused (os error 111)"), which
/// never include the server URL or its credentials.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The wait after failed attempt `attempt` (1 for the first): 1 s, 2 s, 4 s, ... at most
/// 10 minutes, less up to a fifth at random, so emails that failed together (a mail server
/// outage) do not all come back in the same instant.
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
