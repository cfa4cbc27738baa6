//! The mail outbox: the [`Outbox`] of emails, whose courier talks SMTP. It sends `pending`
//! emails, retries the ones that fail with growing delays, and marks an email `failed` (keeping
//! the last error) once it has had its attempts; see [`crate::outbox`] for how replicas share
//! the work.
//!
//! SMTP itself is at least once: a crash between the server accepting an email and the row being
//! marked `sent` means the email is sent again. Every email carries a stable `Message-ID`
//! derived from its id, so a mail system that de-duplicates on it shows it once.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use nubo_platform::async_trait::async_trait;
use nubo_platform::storage::Db;
use nubo_platform::tokio;
use nubo_platform::tokio_util::sync::CancellationToken;

use crate::config::{Config, SMTP_TIMEOUT, Smtp};
use crate::domain::Channel;
use crate::metrics::NotificationMetrics;
use crate::outbox::{Courier, LEASE, Outbox, SendError};
use crate::store::Claimed;

/// The longest one send may take, connection included.
const SEND_DEADLINE: Duration = Duration::from_secs(45);

const _: () = assert!(SMTP_TIMEOUT.as_secs() < SEND_DEADLINE.as_secs());
const _: () = assert!(SEND_DEADLINE.as_secs() < LEASE.as_secs());

/// The emails' outbox. Cheap to clone.
#[derive(Clone)]
pub struct Mailer(Outbox);

impl Mailer {
    pub fn new(smtp: &Smtp, config: &Config, metrics: NotificationMetrics) -> anyhow::Result<Self> {
        let courier = SmtpCourier {
            transport: smtp.transport(config.send_concurrency)?,
            from: config.from.clone(),
        };
        Ok(Self(Outbox::new(
            Arc::new(courier),
            config.send_attempts,
            config.send_concurrency as usize,
            metrics,
        )))
    }

    /// Sends due emails until `token` is cancelled.
    pub async fn run(self, db: Db, token: CancellationToken) {
        self.0.run(db, token).await
    }
}

/// Takes emails to the SMTP server, over reused sessions.
struct SmtpCourier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Courier for SmtpCourier {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn deliver(&self, claimed: &Claimed) -> Result<Option<String>, SendError> {
        let to: Mailbox = claimed.recipient.parse().map_err(|e| {
            SendError::Permanent(format!("the recipient is not an email address: {e}"))
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
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
        match tokio::time::timeout(SEND_DEADLINE, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(None),
            Ok(Err(e)) => Err(SendError::Transient(smtp_error(&e))),
            Err(_) => Err(SendError::Transient(format!(
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
