//! The words of notifications: which messages there are (emails and text messages), who a text
//! message can go to, and where a message is on its way out.

use std::fmt;
use std::str::FromStr;

use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::uuid::Uuid;
use serde::{Deserialize, Serialize};

/// One message as admins see it: what was written to whom, by email or text message, about
/// which order, and how its delivery went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    /// The event it answers; one message per event and channel, however often the event is
    /// delivered.
    pub event_id: Uuid,
    /// How it reaches the customer: `email` or `sms`.
    pub channel: Channel,
    pub kind: Kind,
    pub order_id: Uuid,
    pub user_id: Uuid,
    /// An email address, or a mobile number (E.164) for a text message.
    pub to: String,
    /// Empty for a text message.
    pub subject: String,
    pub body: String,
    pub status: Status,
    /// Deliveries tried so far (to the SMTP server or the SMS gateway).
    pub attempts: u32,
    /// Why the last try failed, as the SMTP client or server or the SMS gateway put it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// The SMS gateway's id of a sent text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// A message ready to be stored and sent: an email, or a text message (which has no subject).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub channel: Channel,
    pub kind: Kind,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// How a message reaches the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Self::Email, Self::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// A mobile number in E.164 form: `+`, a country code and the subscriber number, 7 to 15 digits
/// in all, the first not 0 (`+4915123456789`). Spaces, dashes and brackets people write between
/// the digits are dropped; anything else is refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Phone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "must be a mobile number in E.164 form, like +4915123456789";
        let digits = s
            .trim()
            .strip_prefix('+')
            .ok_or_else(|| FORM.to_owned())?
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect::<String>();
        let well_formed = (7..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if well_formed {
            Ok(Self(format!("+{digits}")))
        } else {
            Err(FORM.to_owned())
        }
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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

impl FromStr for Channel {
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

impl fmt::Display for Channel {
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
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
        }
        assert_eq!(
            "shipped".parse::<Status>().unwrap_err(),
            "must be one of recorded, pending, sent, failed"
        );
        assert!("ORDER_CONFIRMED".parse::<Kind>().is_err());
    }

    #[test]
    fn mobile_numbers_are_taken_in_e164_form_only() {
        for (written, kept) in [
            ("+4915123456789", "+4915123456789"),
            (" +49 151 2345-6789 ", "+4915123456789"),
            ("+1 (415) 555-0100", "+14155550100"),
            ("+3581234567", "+3581234567"),
        ] {
            assert_eq!(
                written.parse::<Phone>().unwrap().as_str(),
                kept,
                "{written}"
            );
        }
        for bad in [
            "",
            "4915123456789",
            "0049151234567",
            "+0151234567",
            "+49",
            "+491512345678901234",
            "+49 151 abc",
            "+49.151.2345",
            "++4915123456789",
        ] {
            assert!(bad.parse::<Phone>().is_err(), "{bad}");
        }
    }
}
