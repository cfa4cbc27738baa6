//! Text messages: a short SMS beside the email when an order is confirmed or cancelled, for
//! customers who gave a mobile number at checkout.
//!
//! The texts are written with the emails, in the event's transaction and under the same
//! once-per-event rule (one row per event and channel), and sent by their own [`Outbox`], whose
//! courier hands them to an SMS provider behind [`gateway::SmsGateway`]. The provider is chosen
//! by `NUBO_NOTIFICATIONS_SMS_PROVIDER`; nubo ships [`simulated`], the far side that lives in the
//! process. Each text goes out under its row id as the idempotency key, so a resend (a lost
//! answer, a crashed sender) is received once.

pub mod gateway;
pub mod simulated;
pub mod texts;

use std::sync::Arc;
use std::time::Duration;

use nubo_platform::async_trait::async_trait;
use nubo_platform::ops::Faults;
use nubo_platform::storage::Db;
use nubo_platform::tokio_util::sync::CancellationToken;

use crate::config::{Config, SmsProvider};
use crate::domain::{Channel, Phone};
use crate::metrics::NotificationMetrics;
use crate::outbox::{Courier, LEASE, Outbox, SendError};
use crate::store::Claimed;
use gateway::{Gateway, Sms, SmsError};
use simulated::SimulatedGateway;

/// How long the provider may take to answer one message.
pub const GATEWAY_DEADLINE: Duration = Duration::from_secs(10);
/// Texts one replica sends at once.
const CONCURRENCY: usize = 8;

const _: () = assert!(GATEWAY_DEADLINE.as_secs() < LEASE.as_secs());

/// The provider `config` names, over notifications' database; the simulated one reads the
/// operator's switches in `faults`.
pub fn gateway(config: &Config, db: &Db, faults: Option<Faults>) -> Gateway {
    match config.sms_provider {
        SmsProvider::Simulated => Gateway::new(
            Arc::new(SimulatedGateway::new(db.clone(), faults)),
            GATEWAY_DEADLINE,
        ),
    }
}

/// The texts' outbox. Cheap to clone.
#[derive(Clone)]
pub struct Texter(Outbox);

impl Texter {
    pub fn new(gateway: Gateway, config: &Config, metrics: NotificationMetrics) -> Self {
        Self(Outbox::new(
            Arc::new(SmsCourier { gateway }),
            config.send_attempts,
            CONCURRENCY,
            metrics,
        ))
    }

    /// Sends due texts until `token` is cancelled.
    pub async fn run(self, db: Db, token: CancellationToken) {
        self.0.run(db, token).await
    }
}

struct SmsCourier {
    gateway: Gateway,
}

#[async_trait]
impl Courier for SmsCourier {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn deliver(&self, claimed: &Claimed) -> Result<Option<String>, SendError> {
        let to: Phone = claimed
            .recipient
            .parse()
            .map_err(|e| SendError::Permanent(format!("the recipient {e}")))?;
        let message = Sms {
            idempotency_key: claimed.id.to_string(),
            to,
            body: claimed.body.clone(),
        };
        match self.gateway.send(&message).await {
            Ok(id) => Ok(Some(id.0)),
            Err(SmsError::Transient(e)) => Err(SendError::Transient(e)),
            Err(SmsError::Permanent(e)) => Err(SendError::Permanent(e)),
        }
    }
}
