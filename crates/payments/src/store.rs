//! Payments' SQL, written once for SQLite and PostgreSQL. Every change of state is one
//! conditional UPDATE whose WHERE clause names the state it leaves, so of two concurrent
//! captures (or a capture and a void) exactly one changes the row: the row decides.

use nubo_contracts::Money;
use nubo_contracts::payments::{Payment, PaymentState};
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};

pub fn state_name(state: PaymentState) -> &'static str {
    match state {
        PaymentState::Pending => "pending",
        PaymentState::Authorized => "authorized",
        PaymentState::Declined => "declined",
        PaymentState::Captured => "captured",
        PaymentState::Voided => "voided",
        PaymentState::Refunded => "refunded",
    }
}

fn parse_state(name: &str) -> Result<PaymentState, sqlx::Error> {
    Ok(match name {
        "pending" => PaymentState::Pending,
        "authorized" => PaymentState::Authorized,
        "declined" => PaymentState::Declined,
        "captured" => PaymentState::Captured,
        "voided" => PaymentState::Voided,
        "refunded" => PaymentState::Refunded,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown payment state {other:?}").into(),
            ));
        }
    })
}

/// A payment about to be authorized: what is stored before the provider is asked.
pub struct NewPayment<'a> {
    pub id: Uuid,
    pub amount: &'a Money,
    pub card_last4: &'a str,
    pub card_brand: &'a str,
}

/// Records a pending payment; false if one with this id exists already (left untouched).
pub async fn insert_pending(
    tx: &mut Tx,
    new: &NewPayment<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO payments \
               (id, state, amount_minor, currency, card_last4, card_brand, created_at, updated_at) \
               VALUES ($1, 'pending', $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING";
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(new.id)
        .bind(new.amount.amount_minor)
        .bind(&new.amount.currency)
        .bind(new.card_last4)
        .bind(new.card_brand)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Takes over a pending payment whose authorizer has not been heard of since `stale_before`
/// (it crashed mid-call); false if someone else settled or took it first.
pub async fn take_over_pending(
    db: &Db,
    id: Uuid,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE payments SET updated_at = $3 \
               WHERE id = $1 AND state = 'pending' AND updated_at < $2";
    let done = with_db!(db, pool => sqlx::query(sql)
        .bind(id)
        .bind(stale_before)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Voids a pending payment nobody has touched since `stale_before` (its authorizer is gone),
/// unless an authorization retry took it over meanwhile.
pub async fn void_stale_pending(
    db: &Db,
    id: Uuid,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE payments SET state = 'voided', updated_at = $3 \
               WHERE id = $1 AND state = 'pending' AND updated_at < $2";
    let done = with_db!(db, pool => sqlx::query(sql)
        .bind(id)
        .bind(stale_before)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Settles a pending payment with the provider's answer.
pub async fn settle_pending(
    db: &Db,
    id: Uuid,
    state: PaymentState,
    decline_reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE payments SET state = $2, decline_reason = $3, updated_at = $4 \
               WHERE id = $1 AND state = 'pending'";
    let done = with_db!(db, pool => sqlx::query(sql)
        .bind(id)
        .bind(state_name(state))
        .bind(decline_reason)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Forgets a pending payment the provider never answered for, so a retry starts afresh.
pub async fn delete_pending(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM payments WHERE id = $1 AND state = 'pending'";
    with_db!(db, pool => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()))
}

/// Moves a payment from `from` to `to`; false if it was not in `from` (someone else moved it).
pub async fn transition(
    tx: &mut Tx,
    id: Uuid,
    from: PaymentState,
    to: PaymentState,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE payments SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2";
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(state_name(from))
        .bind(state_name(to))
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: Uuid,
    state: String,
    amount_minor: i64,
    currency: String,
    card_last4: String,
    card_brand: String,
    decline_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const PAYMENT_SQL: &str = "SELECT id, state, amount_minor, currency, card_last4, card_brand, \
                           decline_reason, created_at, updated_at FROM payments WHERE id = $1";

impl TryFrom<PaymentRow> for Payment {
    type Error = sqlx::Error;

    fn try_from(row: PaymentRow) -> Result<Self, Self::Error> {
        Ok(Payment {
            payment_id: row.id,
            state: parse_state(&row.state)?,
            amount: Money {
                amount_minor: row.amount_minor,
                currency: row.currency,
            },
            card_last4: row.card_last4,
            card_brand: row.card_brand,
            decline_reason: row.decline_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A payment, inside a transaction.
pub async fn load(tx: &mut Tx, id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    let row = with_tx!(tx, conn => sqlx::query_as::<_, PaymentRow>(PAYMENT_SQL).bind(id).fetch_optional(conn).await)?;
    row.map(Payment::try_from).transpose()
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    let row = with_db!(db, pool => sqlx::query_as::<_, PaymentRow>(PAYMENT_SQL).bind(id).fetch_optional(pool).await)?;
    row.map(Payment::try_from).transpose()
}
