//! What notifications counts, each outcome recorded by one call that logs it and bumps its
//! counter, so the logs and the metrics cannot disagree: messages written, by kind, and delivery
//! attempts, by outcome, for emails and text messages apart. A rise of `retry` is a mail server
//! or SMS provider in trouble; any `failed` is a customer who did not hear from the shop.
//!
//! Emails: `nubo_notifications_messages_total{kind}` and `nubo_notifications_sent_total{outcome}`
//! (`sent`, `retry`, `failed`). Text messages: `nubo_notifications_sms_messages_total{kind}` and
//! `nubo_notifications_sms_sent_total{outcome}`. Apart, so the email series (and the alerts on
//! them) mean what they always meant.

use nubo_platform::metrics::Metrics;
use nubo_platform::uuid::Uuid;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::domain::{Channel, Kind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// How one delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Failed; it is tried again later.
    Retry,
    /// Failed for the last allowed time, or can never succeed (a bad address or number).
    Failed,
}

/// One channel's counters.
#[derive(Clone)]
struct Counters {
    messages: Family<KindLabels, Counter>,
    sent: Family<OutcomeLabels, Counter>,
}

impl Counters {
    fn register(metrics: &Metrics, prefix: &str, what: &str, kinds: &[Kind]) -> Self {
        let messages = Family::<KindLabels, Counter>::default();
        metrics.register(
            &format!("{prefix}_messages"),
            &format!("{what} written, by kind (one per event)"),
            messages.clone(),
        );
        let sent = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            &format!("{prefix}_sent"),
            &format!("{what}: delivery attempts, by outcome"),
            sent.clone(),
        );
        // Every series exists from the start, so a rate over them is defined before the first
        // message and alerts on `failed` need no `absent()`.
        for kind in kinds {
            let _ = messages.get_or_create(&KindLabels {
                kind: kind.as_str(),
            });
        }
        for outcome in ["sent", "retry", "failed"] {
            let _ = sent.get_or_create(&OutcomeLabels { outcome });
        }
        Self { messages, sent }
    }
}

/// Notifications' own counters, registered with the service's metrics. Cheap to clone.
#[derive(Clone)]
pub struct NotificationMetrics {
    email: Counters,
    sms: Counters,
}

impl NotificationMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            email: Counters::register(metrics, "notifications", "Emails", &Kind::ALL),
            sms: Counters::register(
                metrics,
                "notifications_sms",
                "Text messages",
                &[Kind::OrderConfirmed, Kind::OrderCancelled],
            ),
        }
    }

    fn of(&self, channel: Channel) -> &Counters {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
        }
    }

    /// A message was written for an event. Called just before the handler's transaction commits;
    /// a commit that then fails is retried and counted again, which errs on the side of one more.
    pub fn written(&self, channel: Channel, kind: Kind, message: Uuid, event: Uuid) {
        let channel_name = channel.as_str();
        tracing::info!(
            message_id = %message,
            %event,
            channel = channel_name,
            kind = kind.as_str(),
            "message written"
        );
        self.of(channel)
            .messages
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// A delivery attempt of `message` ended. Recipients are not logged: they are personal data,
    /// and the message id leads to them for whoever may see them.
    pub fn delivery(
        &self,
        channel: Channel,
        outcome: Delivery,
        message: Uuid,
        attempt: i32,
        error: Option<&str>,
    ) {
        let channel_name = channel.as_str();
        let label = match outcome {
            Delivery::Sent => {
                tracing::info!(message_id = %message, channel = channel_name, attempt, "message sent");
                "sent"
            }
            Delivery::Retry => {
                tracing::warn!(
                    message_id = %message,
                    channel = channel_name,
                    attempt,
                    error,
                    "message not sent; will retry"
                );
                "retry"
            }
            Delivery::Failed => {
                tracing::error!(
                    message_id = %message,
                    channel = channel_name,
                    attempt,
                    error,
                    "message not sent; giving up"
                );
                "failed"
            }
        };
        self.of(channel)
            .sent
            .get_or_create(&OutcomeLabels { outcome: label })
            .inc();
    }
}
