//! Notifications' SQL, written once for SQLite and PostgreSQL: the orders it knows of, the
//! messages it wrote (emails and text messages), and the claims of the outboxes.
//!
//! A message row is inserted under its event id and channel (unique together), so one event can
//! never make two emails or two texts. Each channel's outbox works on its own `pending` rows with conditional UPDATEs only: a claim moves the row's
//! `next_attempt_at` one lease ahead and counts the attempt, and it succeeds only if the row was
//! still due, so of two replicas that saw the same due row exactly one claims it (PostgreSQL
//! re-checks the WHERE clause after waiting for the other's row lock; SQLite has one writer).
//! The attempt number a claim returns fences the outcome: a sender whose lease ran out and whose
//! row was claimed again cannot overwrite the newer attempt's result.
//!
//! Times compare as values on PostgreSQL and as RFC 3339 text on SQLite, which orders correctly
//! because sqlx writes every `DateTime<Utc>` with the same `+00:00` offset.

use nubo_contracts::Money;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};

use crate::domain::{Channel, Kind, Message, Notification, Status};
use crate::emails::KnownOrder;

/// Remembers who to write to about an order; the first event that names the order wins (every
/// order event carries the same customer, email and total), but a number fills in for none.
pub async fn remember_order(
    tx: &mut Tx,
    order: &KnownOrder,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO notification_orders \
               (order_id, user_id, email, total_minor, currency, learned_at, number) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) \
               ON CONFLICT (order_id) DO UPDATE SET number = excluded.number \
               WHERE notification_orders.number = '' AND excluded.number <> ''";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(order.order_id)
        .bind(order.user_id)
        .bind(&order.email)
        .bind(order.total.amount_minor)
        .bind(&order.total.currency)
        .bind(now)
        .bind(&order.number)
        .execute(conn)
        .await
        .map(|_| ()))
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    number: String,
    user_id: Uuid,
    email: String,
    total_minor: i64,
    currency: String,
}

pub async fn known_order(tx: &mut Tx, order_id: Uuid) -> Result<Option<KnownOrder>, sqlx::Error> {
    let sql = "SELECT order_id, number, user_id, email, total_minor, currency \
               FROM notification_orders WHERE order_id = $1";
    let row = with_tx!(tx, conn => sqlx::query_as::<_, OrderRow>(sql)
        .bind(order_id)
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(|row| KnownOrder {
        order_id: row.order_id,
        number: row.number,
        user_id: row.user_id,
        email: row.email,
        total: Money {
            amount_minor: row.total_minor,
            currency: row.currency,
        },
    }))
}

/// Stores the message written for `event_id` with its first status: `pending` if it is to be
/// sent, due at once, or `recorded` if there is nothing to send it with (an email without an SMTP
/// server). False if that event had its message on that channel already (left untouched).
pub async fn record_message(
    tx: &mut Tx,
    id: Uuid,
    event_id: Uuid,
    message: &Message,
    status: Status,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let next_attempt_at = (status == Status::Pending).then_some(now);
    let sql = "INSERT INTO notifications \
               (id, event_id, channel, kind, order_id, user_id, recipient, subject, body, status, \
                attempts, next_attempt_at, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12) \
               ON CONFLICT (event_id, channel) DO NOTHING";
    let inserted = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(event_id)
        .bind(message.channel.as_str())
        .bind(message.kind.as_str())
        .bind(message.order_id)
        .bind(message.user_id)
        .bind(&message.to)
        .bind(&message.subject)
        .bind(&message.body)
        .bind(status.as_str())
        .bind(next_attempt_at)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    event_id: Uuid,
    channel: String,
    kind: String,
    order_id: Uuid,
    user_id: Uuid,
    recipient: String,
    subject: String,
    body: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    provider_id: Option<String>,
}

const MESSAGE_COLUMNS: &str = "id, event_id, channel, kind, order_id, user_id, recipient, \
                               subject, body, status, attempts, last_error, created_at, sent_at, \
                               provider_id";

impl TryFrom<MessageRow> for Notification {
    type Error = sqlx::Error;

    fn try_from(row: MessageRow) -> Result<Self, Self::Error> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        Ok(Notification {
            id: row.id,
            event_id: row.event_id,
            channel: row.channel.parse::<Channel>().map_err(decode)?,
            kind: row.kind.parse::<Kind>().map_err(decode)?,
            order_id: row.order_id,
            user_id: row.user_id,
            to: row.recipient,
            subject: row.subject,
            body: row.body,
            status: row.status.parse::<Status>().map_err(decode)?,
            attempts: row.attempts.try_into().unwrap_or(0),
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
            provider_id: row.provider_id,
        })
    }
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Notification>, sqlx::Error> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM notifications WHERE id = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    row.map(Notification::try_from).transpose()
}

/// Which messages an admin asks for. Ids are UUIDv7, so they order by creation time; `before`
/// is the id of the last message of the previous page.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub order_id: Option<Uuid>,
    pub channel: Option<Channel>,
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    pub before: Option<Uuid>,
}

/// Up to `limit` messages matching `filter`, newest first.
pub async fn list(db: &Db, filter: &Filter, limit: u32) -> Result<Vec<Notification>, sqlx::Error> {
    // Only fixed fragments are joined; every value is bound.
    let mut conditions = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if filter.order_id.is_some() {
        conditions.push(format!("order_id = ${}", next()));
    }
    if filter.channel.is_some() {
        conditions.push(format!("channel = ${}", next()));
    }
    if filter.status.is_some() {
        conditions.push(format!("status = ${}", next()));
    }
    if filter.kind.is_some() {
        conditions.push(format!("kind = ${}", next()));
    }
    if filter.before.is_some() {
        conditions.push(format!("id < ${}", next()));
    }
    let limit_param = next();
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM notifications {where_clause} \
         ORDER BY id DESC LIMIT ${limit_param}"
    );
    let rows = with_db!(db, pool => {
        let mut query = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql));
        if let Some(order_id) = filter.order_id {
            query = query.bind(order_id);
        }
        if let Some(channel) = filter.channel {
            query = query.bind(channel.as_str());
        }
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(kind) = filter.kind {
            query = query.bind(kind.as_str());
        }
        if let Some(before) = filter.before {
            query = query.bind(before);
        }
        query.bind(i64::from(limit)).fetch_all(pool).await
    })?;
    rows.into_iter().map(Notification::try_from).collect()
}

/// Pending messages of `channel` whose next attempt is due, oldest first.
pub async fn due(
    db: &Db,
    channel: Channel,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = "SELECT id FROM notifications \
               WHERE channel = $3 AND status = 'pending' AND next_attempt_at <= $1 \
               ORDER BY next_attempt_at LIMIT $2";
    with_db!(db, pool => sqlx::query_scalar::<_, Uuid>(sql)
        .bind(now)
        .bind(limit)
        .bind(channel.as_str())
        .fetch_all(pool)
        .await)
}

/// A message this replica holds the lease of, for one attempt.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    /// This attempt's number (1 for the first); it fences the outcome.
    pub attempts: i32,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Claims a due pending message until `lease_until` and counts the attempt; `None` if it is not
/// due any more (another replica claimed it, or it was settled).
pub async fn claim(
    db: &Db,
    id: Uuid,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Claimed>, sqlx::Error> {
    let sql = "UPDATE notifications SET next_attempt_at = $3, attempts = attempts + 1 \
               WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
               RETURNING id, attempts, recipient, subject, body";
    with_db!(db, pool => sqlx::query_as::<_, Claimed>(sql)
        .bind(id)
        .bind(now)
        .bind(lease_until)
        .fetch_optional(pool)
        .await)
}

/// The far side took the message, and gave it `provider_id` if it says. False if the claim was
/// lost (the lease ran out and the row was claimed again, which then decides).
pub async fn mark_sent(
    db: &Db,
    claimed: &Claimed,
    now: DateTime<Utc>,
    provider_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE notifications SET status = 'sent', sent_at = $3, next_attempt_at = NULL, \
               last_error = NULL, provider_id = $4 \
               WHERE id = $1 AND status = 'pending' AND attempts = $2";
    let done = with_db!(db, pool => sqlx::query(sql)
        .bind(claimed.id)
        .bind(claimed.attempts)
        .bind(now)
        .bind(provider_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// The attempt failed: try again at `retry_at`, or give up (`failed`) when it is `None`.
pub async fn mark_unsent(
    db: &Db,
    claimed: &Claimed,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let status = match retry_at {
        Some(_) => Status::Pending,
        None => Status::Failed,
    };
    let sql = "UPDATE notifications SET status = $3, next_attempt_at = $4, last_error = $5 \
               WHERE id = $1 AND status = 'pending' AND attempts = $2";
    let done = with_db!(db, pool => sqlx::query(sql)
        .bind(claimed.id)
        .bind(claimed.attempts)
        .bind(status.as_str())
        .bind(retry_at)
        .bind(error)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}
