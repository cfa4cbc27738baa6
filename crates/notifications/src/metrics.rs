//! What notifications counts, each outcome recorded by one call that logs it and bumps its
//! counter, so the logs and the metrics cannot disagree: emails written, by kind, and SMTP
//! attempts, by outcome. A rise of `retry` is a mail server in trouble; any `failed` is a
//! customer who got no email.
//!
//! Exposed as `nubo_notifications_messages_total{kind}` and
//! `nubo_notifications_sent_total{outcome}` (`sent`, `retry`, `failed`).

use nubo_platform::metrics::Metrics;
use nubo_platform::uuid::Uuid;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::domain::Kind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// How one SMTP attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Failed; it is tried again later.
    Retry,
    /// Failed for the last allowed time, or can never succeed (a bad address).
    Failed,
}

/// Notifications' own counters, registered with the service's metrics. Cheap to clone.
#[derive(Clone)]
pub struct NotificationMetrics {
    messages: Family<KindLabels, Counter>,
    sent: Family<OutcomeLabels, Counter>,
}

impl NotificationMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let messages = Family::<KindLabels, Counter>::default();
        metrics.register(
            "notifications_messages",
            "Emails written, by kind (one per event)",
            messages.clone(),
        );
        let sent = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            "notifications_sent",
            "SMTP delivery attempts, by outcome",
            sent.clone(),
        );
        // Every series exists from the start, so a rate over them is defined before the first
        // email and alerts on `failed` need no `absent()`.
        for kind in Kind::ALL {
            let _ = messages.get_or_create(&KindLabels {
                kind: kind.as_str(),
            });
        }
        for outcome in ["sent", "retry", "failed"] {
            let _ = sent.get_or_create(&OutcomeLabels { outcome });
        }
        Self { messages, sent }
    }

    /// An email was written for an event. Called just before the handler's transaction commits;
    /// a commit that then fails is retried and counted again, which errs on the side of one more.
    pub fn written(&self, kind: Kind, message: Uuid, event: Uuid) {
        tracing::info!(email_id = %message, %event, kind = kind.as_str(), "email written");
        self.messages
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// An SMTP attempt of `message` ended. Recipients are not logged: they are personal data,
    /// and the message id leads to them for whoever may see them.
    pub fn delivery(&self, outcome: Delivery, message: Uuid, attempt: i32, error: Option<&str>) {
        let label = match outcome {
            Delivery::Sent => {
                tracing::info!(email_id = %message, attempt, "email sent");
                "sent"
            }
            Delivery::Retry => {
                tracing::warn!(email_id = %message, attempt, error, "email not sent; will retry");
                "retry"
            }
            Delivery::Failed => {
                tracing::error!(email_id = %message, attempt, error, "email not sent; giving up");
                "failed"
            }
        };
        self.sent
            .get_or_create(&OutcomeLabels { outcome: label })
            .inc();
    }
}
