//! What the audit reads: the rows of every service's store that its invariants are about, read
//! once, the same way from SQLite and PostgreSQL. The audit reads stores as an operator does;
//! no service is asked, so it works on a stopped shop as well as a running one.

use std::collections::BTreeMap;

use nubo_contracts::payments::PaymentCaptured;
use nubo_platform::Db;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::events::{Envelope, Event as _};
use nubo_platform::uuid::Uuid;
use nubo_platform::with_db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Order {
    pub id: Uuid,
    pub state: String,
    pub total_minor: i64,
    pub currency: String,
    pub refunded: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub owner: Uuid,
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Step {
    pub order_id: Uuid,
    pub step: String,
    pub outcome: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stock {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reservation {
    pub id: Uuid,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: Uuid,
    pub state: String,
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Email {
    pub order_id: Uuid,
    pub kind: String,
    pub status: String,
    pub last_error: Option<String>,
}

/// An event a service wrote to its outbox (subject and the id it is about, for the subjects the
/// audit counts).
#[derive(Debug, Clone)]
pub struct Unpublished {
    pub service: &'static str,
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    #[sqlx(skip)]
    pub service: &'static str,
    pub consumer: String,
    pub event_id: Uuid,
    pub subject: String,
    pub attempts: i64,
    pub error: String,
}

/// Everything the invariants look at.
#[derive(Debug, Default)]
pub struct Facts {
    pub now: DateTime<Utc>,
    pub orders: Vec<Order>,
    pub order_lines: Vec<Line>,
    pub steps: Vec<Step>,
    pub stock: Vec<Stock>,
    pub reservations: Vec<Reservation>,
    pub reservation_lines: Vec<Line>,
    pub payments: Vec<Payment>,
    /// How many `PaymentCaptured` events payments wrote per payment (outbox rows are kept
    /// seven days after they are published).
    pub captures: BTreeMap<Uuid, i64>,
    pub emails: Vec<Email>,
    pub unpublished: Vec<Unpublished>,
    pub dead_letters: Vec<DeadLetter>,
}

pub async fn orders(db: &Db, facts: &mut Facts) -> Result<(), sqlx::Error> {
    facts.orders = with_db!(db, pool => sqlx::query_as::<_, Order>(
        "SELECT id, state, total_minor, currency, refunded, updated_at FROM orders"
    ).fetch_all(pool).await)?;
    facts.order_lines = with_db!(db, pool => sqlx::query_as::<_, Line>(
        "SELECT order_id AS owner, sku, CAST(quantity AS BIGINT) AS quantity FROM order_lines"
    ).fetch_all(pool).await)?;
    facts.steps = with_db!(db, pool => sqlx::query_as::<_, Step>(
        "SELECT order_id, step, outcome FROM order_steps ORDER BY seq"
    ).fetch_all(pool).await)?;
    Ok(())
}

pub async fn inventory(db: &Db, facts: &mut Facts) -> Result<(), sqlx::Error> {
    facts.stock = with_db!(db, pool => sqlx::query_as::<_, Stock>(
        "SELECT sku, CAST(on_hand AS BIGINT) AS on_hand, CAST(reserved AS BIGINT) AS reserved FROM stock"
    ).fetch_all(pool).await)?;
    facts.reservations = with_db!(db, pool => sqlx::query_as::<_, Reservation>(
        "SELECT id, state, expires_at FROM reservations"
    ).fetch_all(pool).await)?;
    facts.reservation_lines = with_db!(db, pool => sqlx::query_as::<_, Line>(
        "SELECT reservation_id AS owner, sku, CAST(quantity AS BIGINT) AS quantity FROM reservation_lines"
    ).fetch_all(pool).await)?;
    Ok(())
}

pub async fn payments(db: &Db, facts: &mut Facts) -> Result<(), sqlx::Error> {
    facts.payments = with_db!(db, pool => sqlx::query_as::<_, Payment>(
        "SELECT id, state, CAST(amount_minor AS BIGINT) AS amount_minor, currency FROM payments"
    ).fetch_all(pool).await)?;
    // The event names its payment in the envelope's JSON: read here, not in SQL, which SQLite
    // and PostgreSQL spell differently.
    let envelopes: Vec<String> = with_db!(db, pool => sqlx::query_scalar::<_, String>(
        "SELECT envelope FROM nubo_outbox WHERE subject = $1"
    )
    .bind(PaymentCaptured::SUBJECT)
    .fetch_all(pool).await)?;
    for envelope in envelopes {
        let captured = serde_json::from_str::<Envelope>(&envelope)
            .ok()
            .and_then(|e| e.decode::<PaymentCaptured>().ok());
        if let Some(captured) = captured {
            *facts.captures.entry(captured.payment_id).or_default() += 1;
        }
    }
    Ok(())
}

pub async fn notifications(db: &Db, facts: &mut Facts) -> Result<(), sqlx::Error> {
    facts.emails = with_db!(db, pool => sqlx::query_as::<_, Email>(
        "SELECT order_id, kind, status, last_error FROM notifications WHERE channel = 'email'"
    ).fetch_all(pool).await)?;
    Ok(())
}

/// The platform's tables, in every service's store: its outbox backlog and dead letters.
pub async fn platform(
    service: &'static str,
    db: &Db,
    facts: &mut Facts,
) -> Result<(), sqlx::Error> {
    let (count, oldest): (i64, Option<DateTime<Utc>>) = with_db!(db, pool => sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM nubo_outbox WHERE published_at IS NULL"
    ).fetch_one(pool).await)?;
    facts.unpublished.push(Unpublished {
        service,
        count,
        oldest,
    });
    let mut dead = with_db!(db, pool => sqlx::query_as::<_, DeadLetter>(
        "SELECT consumer, event_id, subject, CAST(attempts AS BIGINT) AS attempts, error FROM nubo_dead_letters ORDER BY failed_at"
    ).fetch_all(pool).await)?;
    for letter in &mut dead {
        letter.service = service;
    }
    facts.dead_letters.extend(dead);
    Ok(())
}
