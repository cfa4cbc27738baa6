//! Orders' SQL, written once for SQLite and PostgreSQL: placing an order, moving it and
//! recording its steps, and reading orders back; `running` holds the SQL of who runs which
//! saga. A saga moves an order with one conditional UPDATE naming the state it leaves, so of two
//! replicas (or a saga and an admin) racing on one order exactly one moves it; the other reads it
//! again and carries on from there.

use nubo_contracts::Money;
use nubo_contracts::orders::{Address, Contact, Order, OrderLine, OrderShipping, OrderStep};
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};

use crate::delivery;
use crate::domain::State;
use crate::words;

mod running;

pub use running::{lease, open_counts, orphans, release_leases};

/// An order about to be placed.
pub struct NewOrder<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub idempotency_key: &'a str,
    pub fingerprint: &'a str,
    /// The short number customers quote; unique, so a clash places nothing (pick another).
    pub number: &'a str,
    pub contact: &'a Contact,
    pub shipping: &'a OrderShipping,
    pub lines: &'a [OrderLine],
    /// The lines and the shipping.
    pub total: &'a Money,
    /// The replica that placed it runs its saga first.
    pub lease_owner: Uuid,
    pub lease_until: DateTime<Utc>,
}

/// Inserts the order and its lines; false (and nothing written) if the customer placed an order
/// under this idempotency key before, or another order has this number.
pub async fn insert(
    tx: &mut Tx,
    new: &NewOrder<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO orders (id, user_id, idempotency_key, fingerprint, email, state, \
               total_minor, currency, lease_owner, lease_until, created_at, updated_at, number, \
               phone, shipping_option, shipping_minor, ship_name, ship_line1, ship_line2, \
               ship_city, ship_postal_code, ship_country) \
               VALUES ($1, $2, $3, $4, $5, 'placed', $6, $7, $8, $9, $10, $10, $11, $12, $13, \
               $14, $15, $16, $17, $18, $19, $20) \
               ON CONFLICT DO NOTHING";
    let address = new.shipping.address.as_ref();
    let part = |f: fn(&Address) -> &String| address.map(|a| f(a).clone());
    let inserted = with_tx!(tx, conn => sqlx::query(sql)
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.idempotency_key)
        .bind(new.fingerprint)
        .bind(&new.contact.email)
        .bind(new.total.amount_minor)
        .bind(&new.total.currency)
        .bind(new.lease_owner)
        .bind(new.lease_until)
        .bind(now)
        .bind(new.number)
        .bind(&new.contact.phone)
        .bind(&new.shipping.option)
        .bind(new.shipping.price.amount_minor)
        .bind(part(|a| &a.name))
        .bind(part(|a| &a.line1))
        .bind(part(|a| &a.line2))
        .bind(part(|a| &a.city))
        .bind(part(|a| &a.postal_code))
        .bind(part(|a| &a.country))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    if inserted == 0 {
        return Ok(false);
    }
    let sql = "INSERT INTO order_lines \
               (order_id, position, sku, name, quantity, unit_price_minor, currency) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    for (position, line) in new.lines.iter().enumerate() {
        let position = position as i32;
        with_tx!(tx, conn => sqlx::query(sql)
            .bind(new.id)
            .bind(position)
            .bind(&line.sku)
            .bind(&line.name)
            .bind(line.quantity)
            .bind(line.unit_price.amount_minor)
            .bind(&line.unit_price.currency)
            .execute(conn)
            .await
            .map(|_| ()))?;
    }
    Ok(true)
}

/// The order a customer placed under `key`, with what identifies the request that placed it.
pub async fn find_by_key(
    db: &Db,
    user_id: Uuid,
    key: &str,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let sql = "SELECT id, fingerprint FROM orders WHERE user_id = $1 AND idempotency_key = $2";
    with_db!(db, pool => sqlx::query_as::<_, (Uuid, String)>(sql)
        .bind(user_id)
        .bind(key)
        .fetch_optional(pool)
        .await)
}

/// Moves an order from `from` to `to`; false if it was not in `from` (someone moved it first).
/// A cancel reason, when given, is recorded with the move.
pub async fn transition(
    tx: &mut Tx,
    id: Uuid,
    from: State,
    to: State,
    cancel_reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE orders SET state = $3, cancel_reason = COALESCE($4, cancel_reason), \
               attempts = 0, updated_at = $5 WHERE id = $1 AND state = $2";
    let moved = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(cancel_reason)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(moved == 1)
}

/// Records that money taken for the order was given back.
pub async fn mark_refunded(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "UPDATE orders SET refunded = TRUE WHERE id = $1";
    with_tx!(tx, conn => sqlx::query(sql).bind(id).execute(conn).await.map(|_| ()))
}

/// Appends a step to the order's history.
pub async fn record_step(
    tx: &mut Tx,
    id: Uuid,
    step: &str,
    outcome: &str,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO order_steps (order_id, step, outcome, detail, at) \
               VALUES ($1, $2, $3, $4, $5)";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(step)
        .bind(outcome)
        .bind(detail)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))
}

/// Counts a failed attempt at the order's current step; returns how many in a row there were.
pub async fn count_attempt(db: &Db, id: Uuid) -> Result<i32, sqlx::Error> {
    let sql = "UPDATE orders SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts";
    with_db!(db, pool => sqlx::query_scalar::<_, i32>(sql).bind(id).fetch_one(pool).await)
}

/// The order's saga state alone.
pub async fn state(db: &Db, id: Uuid) -> Result<Option<State>, sqlx::Error> {
    let sql = "SELECT state FROM orders WHERE id = $1";
    let state = with_db!(db, pool => sqlx::query_scalar::<_, String>(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    state.as_deref().map(parse_state).transpose()
}

fn parse_state(raw: &str) -> Result<State, sqlx::Error> {
    State::parse(raw)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown order state {raw:?}").into()))
}

/// Whether the order has recorded `step` as done.
pub async fn step_done(db: &Db, id: Uuid, step: &str) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM order_steps WHERE order_id = $1 AND step = $2 \
               AND outcome = 'done'";
    let count = with_db!(db, pool => sqlx::query_scalar::<_, i64>(sql)
        .bind(id)
        .bind(step)
        .fetch_one(pool)
        .await)?;
    Ok(count > 0)
}

/// The order with this number, if any.
pub async fn id_by_number(db: &Db, number: &str) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "SELECT id FROM orders WHERE number = $1";
    with_db!(db, pool => sqlx::query_scalar::<_, Uuid>(sql)
        .bind(number)
        .fetch_optional(pool)
        .await)
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    number: Option<String>,
    user_id: Uuid,
    email: String,
    phone: Option<String>,
    shipping_option: String,
    shipping_minor: i64,
    ship_name: Option<String>,
    ship_line1: Option<String>,
    ship_line2: Option<String>,
    ship_city: Option<String>,
    ship_postal_code: Option<String>,
    ship_country: Option<String>,
    state: String,
    total_minor: i64,
    currency: String,
    cancel_reason: Option<String>,
    refunded: bool,
    attempts: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    sku: String,
    name: String,
    quantity: i64,
    unit_price_minor: i64,
    currency: String,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    step: String,
    outcome: String,
    detail: Option<String>,
    at: DateTime<Utc>,
}

/// An order as the saga reads it: the public view plus what only orders needs.
#[derive(Clone, Debug)]
pub struct StoredOrder {
    pub order: Order,
    pub state: State,
    pub email: String,
    /// Failed attempts in a row at the current step.
    pub attempts: i32,
}

const ORDER_COLUMNS: &str = "id, number, user_id, email, phone, shipping_option, shipping_minor, \
                             ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, \
                             ship_country, state, total_minor, currency, cancel_reason, \
                             refunded, attempts, created_at, updated_at";

pub async fn get(db: &Db, id: Uuid) -> Result<Option<StoredOrder>, sqlx::Error> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    match row {
        Some(row) => Ok(Some(complete(db, row).await?)),
        None => Ok(None),
    }
}

/// Which orders a listing shows.
pub struct Listing {
    /// One customer's, or everyone's.
    pub user_id: Option<Uuid>,
    /// Only orders in these saga states (any, when empty).
    pub states: Vec<&'static str>,
    /// Only orders created before this.
    pub before: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Orders newest first.
pub async fn list(db: &Db, listing: &Listing) -> Result<Vec<StoredOrder>, sqlx::Error> {
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE 1 = 1");
    let mut n = 0;
    let mut param = || {
        n += 1;
        format!("${n}")
    };
    if listing.user_id.is_some() {
        sql += &format!(" AND user_id = {}", param());
    }
    if let Some(before) = listing.before.as_ref().map(|_| param()) {
        sql += &format!(" AND created_at < {before}");
    }
    if !listing.states.is_empty() {
        let placeholders: Vec<String> = listing.states.iter().map(|_| param()).collect();
        sql += &format!(" AND state IN ({})", placeholders.join(", "));
    }
    sql += &format!(" ORDER BY created_at DESC, id DESC LIMIT {}", param());
    let rows = with_db!(db, pool => {
        let mut query = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql));
        if let Some(user_id) = listing.user_id {
            query = query.bind(user_id);
        }
        if let Some(before) = listing.before {
            query = query.bind(before);
        }
        for state in &listing.states {
            query = query.bind(*state);
        }
        query.bind(listing.limit).fetch_all(pool).await
    })?;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        orders.push(complete(db, row).await?);
    }
    Ok(orders)
}

/// An order row with its lines and steps.
async fn complete(db: &Db, row: OrderRow) -> Result<StoredOrder, sqlx::Error> {
    let lines = read_lines(db, row.id).await?;
    let steps_sql = "SELECT step, outcome, detail, at FROM order_steps \
                     WHERE order_id = $1 ORDER BY seq";
    let steps = with_db!(db, pool => sqlx::query_as::<_, StepRow>(steps_sql)
        .bind(row.id)
        .fetch_all(pool)
        .await)?;
    let steps = steps
        .into_iter()
        .map(|s| OrderStep {
            step: s.step,
            outcome: s.outcome,
            detail: s.detail,
            at: s.at,
        })
        .collect();
    assemble(row, lines, steps)
}

async fn read_lines(db: &Db, id: Uuid) -> Result<Vec<OrderLine>, sqlx::Error> {
    let lines_sql = "SELECT sku, name, quantity, unit_price_minor, currency FROM order_lines \
                     WHERE order_id = $1 ORDER BY position";
    let lines = with_db!(db, pool => sqlx::query_as::<_, LineRow>(lines_sql)
        .bind(id)
        .fetch_all(pool)
        .await)?;
    Ok(lines
        .into_iter()
        .map(|l| {
            let unit_price = Money {
                amount_minor: l.unit_price_minor,
                currency: l.currency,
            };
            OrderLine {
                line_total: Money {
                    amount_minor: l.unit_price_minor * l.quantity,
                    currency: unit_price.currency.clone(),
                },
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
                unit_price,
            }
        })
        .collect())
}

fn assemble(
    row: OrderRow,
    lines: Vec<OrderLine>,
    steps: Vec<OrderStep>,
) -> Result<StoredOrder, sqlx::Error> {
    let state = parse_state(&row.state)?;
    let money = |amount_minor| Money {
        amount_minor,
        currency: row.currency.clone(),
    };
    let address = match (
        row.ship_name,
        row.ship_line1,
        row.ship_city,
        row.ship_country,
    ) {
        (Some(name), Some(line1), Some(city), Some(country)) => Some(Address {
            name,
            line1,
            line2: row.ship_line2.unwrap_or_default(),
            city,
            postal_code: row.ship_postal_code.unwrap_or_default(),
            country,
        }),
        _ => None,
    };
    let shipping = OrderShipping {
        name: delivery::name(&row.shipping_option).to_owned(),
        option: row.shipping_option,
        price: money(row.shipping_minor),
        address,
    };
    let message = words::message(
        state,
        row.attempts,
        &shipping,
        row.cancel_reason.as_deref(),
        row.refunded,
    );
    Ok(StoredOrder {
        order: Order {
            order_id: row.id,
            number: row.number.unwrap_or_default(),
            user_id: row.user_id,
            status: state.status(),
            message,
            slow: words::slow(state, row.attempts),
            state: state.as_str().to_owned(),
            lines,
            items_total: money(row.total_minor - row.shipping_minor),
            total: money(row.total_minor),
            contact: Contact {
                email: row.email.clone(),
                phone: row.phone.clone(),
            },
            shipping,
            cancel_reason: row.cancel_reason,
            refunded: row.refunded,
            created_at: row.created_at,
            updated_at: row.updated_at,
            steps,
        },
        state,
        email: row.email,
        attempts: row.attempts,
    })
}
