//! The SMS provider notifications talks to, behind [`SmsGateway`]: it takes one text message and
//! answers with its own id for it, or says why not, and whether trying again can help.
//!
//! Every message carries an idempotency key (the id of the message's row, the same on every
//! attempt), which a real provider (and the simulated one) takes to accept a message once however
//! often it is sent: a retry after a lost answer, or after a sender that crashed between the
//! provider's answer and marking the row sent, answers with the first message's id and texts
//! nobody twice. [`Gateway`] puts a deadline around every call.

use std::sync::Arc;
use std::time::Duration;

use nubo_platform::async_trait::async_trait;

use crate::domain::Phone;

/// One text message for the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sms {
    /// The same for every attempt at one message; a provider accepts a key once.
    pub idempotency_key: String,
    pub to: Phone,
    pub body: String,
}

/// The provider's id of an accepted message (what its delivery reports and support name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderId(pub String);

/// Why the provider did not take a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// The provider is unavailable, slow or overloaded, or its answer was lost: the same message
    /// may go through later (under the same key, it is accepted at most once).
    #[error("{0}")]
    Transient(String),
    /// The provider refuses this message (a number it cannot reach, a key reused for another
    /// message): no retry can help.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait SmsGateway: Send + Sync {
    /// Hands `message` to the provider. Called again with the same message (and key) after a
    /// transient error, or by another replica after a crash.
    async fn send(&self, message: &Sms) -> Result<ProviderId, SmsError>;
}

/// A gateway behind a deadline: one that hangs is a transient error, never a sender that hangs
/// with it.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<dyn SmsGateway>,
    pub deadline: Duration,
}

impl Gateway {
    pub fn new(inner: Arc<dyn SmsGateway>, deadline: Duration) -> Self {
        Self { inner, deadline }
    }

    pub async fn send(&self, message: &Sms) -> Result<ProviderId, SmsError> {
        nubo_platform::tokio::time::timeout(self.deadline, self.inner.send(message))
            .await
            .map_err(|_| {
                SmsError::Transient(format!(
                    "the SMS gateway did not answer within {}s",
                    self.deadline.as_secs_f64()
                ))
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hanging;

    #[async_trait]
    impl SmsGateway for Hanging {
        async fn send(&self, _message: &Sms) -> Result<ProviderId, SmsError> {
            nubo_platform::tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(ProviderId("never".into()))
        }
    }

    #[tokio::test]
    async fn a_gateway_that_never_answers_is_a_transient_error_at_the_deadline() {
        let gateway = Gateway::new(Arc::new(Hanging), Duration::from_millis(50));
        let message = Sms {
            idempotency_key: "k".into(),
            to: "+4915123456789".parse().unwrap(),
            body: "hello".into(),
        };
        let started = std::time::Instant::now();
        let error = gateway.send(&message).await.unwrap_err();
        assert!(matches!(error, SmsError::Transient(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
