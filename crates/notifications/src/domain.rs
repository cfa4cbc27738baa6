//! The words of notifications: which emails there are and where one is on its way out.

use std::fmt;
use std::str::FromStr;

use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::uuid::Uuid;
use serde::{Deserialize, Serialize};

/// One email as admins see it: what was written to whom about which order, and how its
/// delivery went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    /// The event it answers; one email per event, however often the event is delivered.
    pub event_id: Uuid,
    pub kind: Kind,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub status: Status,
    /// SMTP deliveries tried so far.
    pub attempts: u32,
    /// Why the last try failed, as the SMTP client or server put it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
}

/// Which email a message is; one per kind of event that writes to a customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    OrderConfirmed,
    OrderCancelled,
    PaymentRefunded,
}

impl Kind {
    pub const ALL: [Kind; 3] = [
        Self::OrderConfirmed,
        Self::OrderCancelled,
        Self::PaymentRefunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderConfirmed => "order_confirmed",
            Self::OrderCancelled => "order_cancelled",
            Self::PaymentRefunded => "payment_refunded",
        }
    }
}

/// Where a message is. `recorded` is final when no SMTP server is configured (embedded mode);
/// otherwise a message is `pending` until the mail outbox has `sent` it or given up (`failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Recorded,
    Pending,
    Sent,
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [Self::Recorded, Self::Pending, Self::Sent, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// The words a query string or a stored row may use, and nothing else.
fn parse_word<T: Copy>(all: &[T], name: fn(T) -> &'static str, s: &str) -> Result<T, String> {
    all.iter().copied().find(|v| name(*v) == s).ok_or_else(|| {
        let words: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        format!("must be one of {}", words.join(", "))
    })
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_word(&Self::ALL, Self::as_str, s)
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_word(&Self::ALL, Self::as_str, s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_strangers_are_refused() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert_eq!(
            "shipped".parse::<Status>().unwrap_err(),
            "must be one of recorded, pending, sent, failed"
        );
        assert!("ORDER_CONFIRMED".parse::<Kind>().is_err());
    }
}
