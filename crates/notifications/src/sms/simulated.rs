//! The far side: a simulated SMS provider that lives in the process, for development, demos and
//! tests, as payments has its simulated card provider. Nothing here is notifications' own state:
//! it stands for a provider's systems, and keeps what it received in its own table
//! (`sms_gateway_messages`) the way a provider keeps its message log, which admins read back
//! through `GET /api/v1/admin/notifications/sms-gateway`.
//!
//! Like a real provider it honours idempotency keys: the first message under a key is accepted
//! and given a provider id; the same message under that key again gets the same id and is not
//! received twice; another message under a used key is refused. Operators can make it fail with
//! two switches ([`KNOBS`]): `sms_failure_rate` refuses calls before taking the message (the
//! provider is down), `sms_lost_answer_rate` takes the message and then loses the answer (the
//! case idempotency keys exist for: the sender must try again, and nobody gets two texts).

use nubo_platform::async_trait::async_trait;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::ops::{Faults, Knob};
use nubo_platform::storage::Db;
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db};
use serde::{Deserialize, Serialize};

use super::gateway::{ProviderId, Sms, SmsError, SmsGateway};
use crate::domain::Phone;

pub const FAILURE_RATE_KNOB: &str = "sms_failure_rate";
pub const LOST_ANSWER_RATE_KNOB: &str = "sms_lost_answer_rate";

/// The switches the ops console shows for notifications.
pub const KNOBS: [Knob; 2] = [
    Knob {
        name: FAILURE_RATE_KNOB,
        meaning: "the fraction of calls to the simulated SMS gateway it refuses (transiently), \
                  before taking the message",
        min: 0.0,
        max: 1.0,
        unit: "fraction",
    },
    Knob {
        name: LOST_ANSWER_RATE_KNOB,
        meaning: "the fraction of messages the simulated SMS gateway takes and then loses the \
                  answer to; the sender retries under the same key and nobody is texted twice",
        min: 0.0,
        max: 1.0,
        unit: "fraction",
    },
];

/// One message as the simulated provider received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReceivedSms {
    /// The provider's id of the message.
    pub provider_id: String,
    #[sqlx(rename = "recipient")]
    pub to: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
    /// The sender's idempotency key (notifications sends the id of the message's row).
    #[sqlx(rename = "idempotency_key")]
    pub key: String,
}

/// The simulated provider, over notifications' database (its table is its own).
#[derive(Clone)]
pub struct SimulatedGateway {
    db: Db,
    /// An operator's switches, read on every call.
    switches: Option<Faults>,
}

impl SimulatedGateway {
    pub fn new(db: Db, switches: Option<Faults>) -> Self {
        Self { db, switches }
    }

    fn knob(&self, name: &str) -> f64 {
        self.switches
            .as_ref()
            .and_then(|f| f.knob(name))
            .map_or(0.0, |rate| rate.clamp(0.0, 1.0))
    }
}

#[async_trait]
impl SmsGateway for SimulatedGateway {
    async fn send(&self, message: &Sms) -> Result<ProviderId, SmsError> {
        if rand::random_bool(self.knob(FAILURE_RATE_KNOB)) {
            return Err(SmsError::Transient(
                "the SMS gateway is unavailable (503); try again".into(),
            ));
        }
        let unavailable =
            |e: sqlx::Error| SmsError::Transient(format!("the SMS gateway failed: {e}"));
        let provider_id = format!("SM{}", Uuid::now_v7().simple());
        let now = nubo_platform::clock::now();
        accept(&self.db, message, &provider_id, now)
            .await
            .map_err(unavailable)?;
        let first = received_under(&self.db, &message.idempotency_key)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| SmsError::Transient("the SMS gateway lost the message".into()))?;
        if first.to != message.to.as_str() || first.body != message.body {
            return Err(SmsError::Permanent(format!(
                "the idempotency key {} was used for another message ({})",
                message.idempotency_key, first.provider_id
            )));
        }
        if rand::random_bool(self.knob(LOST_ANSWER_RATE_KNOB)) {
            return Err(SmsError::Transient(
                "the SMS gateway's answer was lost (connection reset)".into(),
            ));
        }
        Ok(ProviderId(first.provider_id))
    }
}

/// Keeps `message` under its key, unless the key was used already (the first message stays).
async fn accept(
    db: &Db,
    message: &Sms,
    provider_id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO sms_gateway_messages \
               (idempotency_key, provider_id, recipient, body, received_at) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING";
    with_db!(db, pool => sqlx::query(sql)
        .bind(&message.idempotency_key)
        .bind(provider_id)
        .bind(message.to.as_str())
        .bind(&message.body)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))
}

const COLUMNS: &str = "provider_id, recipient, body, received_at, idempotency_key";

async fn received_under(db: &Db, key: &str) -> Result<Option<ReceivedSms>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sms_gateway_messages WHERE idempotency_key = $1");
    with_db!(db, pool => sqlx::query_as::<_, ReceivedSms>(sqlx::AssertSqlSafe(sql))
        .bind(key)
        .fetch_optional(pool)
        .await)
}

/// What the provider received, newest first: for `to` only if given, at most `limit`.
pub async fn received(
    db: &Db,
    to: Option<&Phone>,
    limit: u32,
) -> Result<Vec<ReceivedSms>, sqlx::Error> {
    let (filter, limit_param) = match to {
        Some(_) => ("WHERE recipient = $1", "$2"),
        None => ("", "$1"),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM sms_gateway_messages {filter} \
         ORDER BY received_at DESC, provider_id DESC LIMIT {limit_param}"
    );
    with_db!(db, pool => {
        let mut query = sqlx::query_as::<_, ReceivedSms>(sqlx::AssertSqlSafe(sql));
        if let Some(to) = to {
            query = query.bind(to.as_str());
        }
        query.bind(i64::from(limit)).fetch_all(pool).await
    })
}
