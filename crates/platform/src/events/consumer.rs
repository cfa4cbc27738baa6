//! The consumer runtime: pulls deliveries of one durable subscription and hands each event to a
//! service's handler inside a transaction on the service's own database.
//!
//! The transaction also records the event id in `nubo_processed_events`; a redelivered event whose
//! id is already there is acknowledged without calling the handler again. So the bus may deliver
//! an event many times (a crash before the ack, a relay that published twice) and its effect
//! still happens once. A failing handler is retried with backoff up to the configured number of
//! attempts; then the event is written to `nubo_dead_letters` and never delivered again.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::{Bus, Delivery, Envelope, SubscriptionSpec};
use crate::metrics::{ConsumerLabels, Metrics, OutcomeLabels};
use crate::storage::{Db, Tx};
use crate::with_tx;

/// A service's reaction to an event. It runs inside `tx`; returning an error rolls it back.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()>;
}

/// One durable subscription of a service: a name unique in the system, the subject it wants and
/// what it does with each event.
#[derive(Clone)]
pub struct Consumer {
    pub name: String,
    pub subject: String,
    pub handler: Arc<dyn Handler>,
}

impl Consumer {
    pub fn new(name: impl Into<String>, subject: impl Into<String>, handler: impl Handler) -> Self {
        Self {
            name: name.into(),
            subject: subject.into(),
            handler: Arc::new(handler),
        }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    /// Already handled before: acknowledged, handler not called.
    Duplicate,
    /// Failed; delivered again after the delay.
    Retry(Duration),
    /// Failed for the last allowed time; moved to the dead letters.
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Duplicate => "duplicate",
            Self::Retry(_) => "retry",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

#[derive(Clone)]
pub struct ConsumerRuntime {
    pub consumer: Consumer,
    pub db: Db,
    pub bus: Bus,
    pub max_attempts: u32,
    pub ack_wait: Duration,
    pub metrics: Metrics,
}

impl ConsumerRuntime {
    pub fn spec(&self) -> SubscriptionSpec {
        SubscriptionSpec {
            durable: self.consumer.name.clone(),
            subject: self.consumer.subject.clone(),
            ack_wait: self.ack_wait,
            max_deliver: None,
        }
    }

    /// Handles one delivery without acknowledging it: the caller settles it according to the
    /// outcome. Tests use this to stand in for a consumer that dies before its ack.
    pub async fn process(&self, envelope: &Envelope, attempt: u32) -> Outcome {
        let span = tracing::info_span!(
            "event.handle",
            consumer = %self.consumer.name,
            subject = %envelope.subject,
            event_id = %envelope.id,
            attempt,
            trace_id = tracing::field::Empty,
        );
        crate::telemetry::continue_trace(&span, envelope.traceparent.as_deref());
        let outcome = async {
            match self.handle_once(envelope).await {
                Ok(true) => Outcome::Handled,
                Ok(false) => Outcome::Duplicate,
                Err(e) if attempt >= self.max_attempts => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "event failed for the last time; dead-lettering it"
                    );
                    match self.dead_letter(envelope, attempt, &e).await {
                        Ok(()) => Outcome::DeadLettered,
                        Err(dl) => {
                            tracing::error!(
                                error = format!("{dl:#}"),
                                "cannot dead-letter event; will retry"
                            );
                            Outcome::Retry(Duration::from_secs(30))
                        }
                    }
                }
                Err(e) => {
                    let delay = retry_delay(attempt);
                    tracing::warn!(
                        error = format!("{e:#}"),
                        ?delay,
                        "event handling failed; will retry"
                    );
                    Outcome::Retry(delay)
                }
            }
        }
        .instrument(span)
        .await;
        self.metrics
            .events_handled
            .get_or_create(&OutcomeLabels {
                consumer: self.consumer.name.clone(),
                outcome: outcome.label(),
            })
            .inc();
        outcome
    }

    /// Ok(true) if handled now, Ok(false) if it had been handled before.
    async fn handle_once(&self, envelope: &Envelope) -> anyhow::Result<bool> {
        let mut tx = self.db.begin().await?;
        let sql = "INSERT INTO nubo_processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
                   ON CONFLICT DO NOTHING";
        let inserted = with_tx!(&mut tx, conn => sqlx::query(sql)
            .bind(&self.consumer.name)
            .bind(envelope.id)
            .bind(crate::clock::now())
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.consumer.handler.handle(envelope, &mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn dead_letter(
        &self,
        envelope: &Envelope,
        attempts: u32,
        error: &anyhow::Error,
    ) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let sql = "INSERT INTO nubo_dead_letters (consumer, event_id, subject, envelope, attempts, error, failed_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
        with_tx!(&mut tx, conn => sqlx::query(sql)
            .bind(&self.consumer.name)
            .bind(envelope.id)
            .bind(&envelope.subject)
            .bind(serde_json::to_string(envelope)?)
            .bind(attempts as i64)
            .bind(format!("{error:#}"))
            .bind(crate::clock::now())
            .execute(conn)
            .await
            .map(|_| ()))?;
        tx.commit().await?;
        Ok(())
    }

    /// Settles a delivery according to its outcome.
    pub async fn settle(&self, delivery: Delivery, outcome: Outcome) {
        let settled = match outcome {
            Outcome::Handled | Outcome::Duplicate => delivery.ack().await,
            Outcome::Retry(delay) => delivery.nak(delay).await,
            Outcome::DeadLettered => delivery.term().await,
        };
        if let Err(e) = settled {
            // Not fatal: an unsettled delivery comes back after ack_wait and is a duplicate then.
            tracing::warn!(consumer = %self.consumer.name, error = %e, "cannot settle delivery");
        }
    }

    /// Pulls and handles deliveries until `stop` resolves, reconnecting with backoff while the
    /// bus fails.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(200);
        let spec = self.spec();
        'subscribe: loop {
            let mut subscription = tokio::select! {
                _ = &mut stop => return,
                s = self.bus.subscribe(&spec) => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(consumer = %self.consumer.name, error = %e, "cannot subscribe; retrying");
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue 'subscribe;
                    }
                },
            };
            backoff = Duration::from_millis(200);
            loop {
                let batch = tokio::select! {
                    _ = &mut stop => return,
                    b = subscription.fetch(16, Duration::from_secs(1)) => b,
                };
                match batch {
                    Ok(deliveries) => {
                        for delivery in deliveries {
                            let outcome = self.process(&delivery.envelope, delivery.attempt).await;
                            self.settle(delivery, outcome).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(consumer = %self.consumer.name, error = %e, "fetch failed; resubscribing");
                        tokio::time::sleep(backoff).await;
                        continue 'subscribe;
                    }
                }
            }
        }
    }

    /// Updates the lag gauge from the bus.
    pub async fn sample_lag(&self) {
        if let Ok(lag) = self.bus.pending(&self.consumer.name).await {
            self.metrics
                .consumer_lag
                .get_or_create(&ConsumerLabels {
                    consumer: self.consumer.name.clone(),
                })
                .set(lag as i64);
        }
    }
}

/// Exponential backoff between attempts: 1 s, 2 s, 4 s, ... at most 1 minute.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}
