//! Inventory's SQL, written once for SQLite and PostgreSQL. Every change to stock is one
//! conditional UPDATE whose WHERE clause is the rule it enforces, so concurrent writers on either
//! backend can never take `available` below zero: the row decides, not a value read earlier.

use nubo_contracts::inventory::{Reservation, ReservationState, StockLine};
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};
use utoipa::ToSchema;

/// A SKU's stock as an admin sees it.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow, ToSchema,
)]
pub struct StockLevel {
    pub sku: String,
    /// Units in the warehouse, reserved ones included.
    pub on_hand: i64,
    /// Units held for checkouts in progress.
    pub reserved: i64,
    /// `on_hand - reserved`: what shoppers can still buy.
    pub available: i64,
}

const STOCK_COLUMNS: &str = "sku, on_hand, reserved, on_hand - reserved AS available";

pub async fn stock(db: &Db, sku: &str) -> Result<Option<StockLevel>, sqlx::Error> {
    let sql = format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku = $1");
    with_db!(db, pool => sqlx::query_as::<_, StockLevel>(sqlx::AssertSqlSafe(sql)).bind(sku).fetch_optional(pool).await)
}

/// Sets what is on hand, creating the SKU's row if needed; `None` when more than `on_hand` is
/// reserved (the row is left as it was).
pub async fn set_on_hand(
    tx: &mut Tx,
    sku: &str,
    on_hand: i64,
) -> Result<Option<StockLevel>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO stock (sku, on_hand, reserved, updated_at) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at \
         WHERE stock.reserved <= excluded.on_hand RETURNING {STOCK_COLUMNS}"
    );
    with_tx!(tx, conn => sqlx::query_as::<_, StockLevel>(sqlx::AssertSqlSafe(sql))
        .bind(sku)
        .bind(on_hand)
        .bind(nubo_platform::clock::now())
        .fetch_optional(conn)
        .await)
}

/// Gives a SKU its first stock; a SKU that has a row already keeps it.
pub async fn ensure_stock(tx: &mut Tx, sku: &str, on_hand: i64) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO stock (sku, on_hand, reserved, updated_at) VALUES ($1, $2, 0, $3) \
               ON CONFLICT (sku) DO NOTHING";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(sku)
        .bind(on_hand)
        .bind(nubo_platform::clock::now())
        .execute(conn)
        .await
        .map(|_| ()))
}

/// Sets `quantity` units aside if that many are available; false if not (or no such SKU).
pub async fn hold(tx: &mut Tx, sku: &str, quantity: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE stock SET reserved = reserved + $2, updated_at = $3 \
               WHERE sku = $1 AND on_hand - reserved >= $2";
    stock_update(tx, sql, sku, quantity).await
}

/// Gives held units back.
pub async fn unhold(tx: &mut Tx, sku: &str, quantity: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE stock SET reserved = reserved - $2, updated_at = $3 \
               WHERE sku = $1 AND reserved >= $2";
    stock_update(tx, sql, sku, quantity).await
}

/// Units that had left the shop come back (a cancelled order's return): on hand goes up.
pub async fn restock(tx: &mut Tx, sku: &str, quantity: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE stock SET on_hand = on_hand + $2, updated_at = $3 WHERE sku = $1";
    stock_update(tx, sql, sku, quantity).await
}

/// Held units leave the shop: both on hand and reserved go down.
pub async fn ship(tx: &mut Tx, sku: &str, quantity: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE stock SET on_hand = on_hand - $2, reserved = reserved - $2, updated_at = $3 \
               WHERE sku = $1 AND reserved >= $2 AND on_hand >= $2";
    stock_update(tx, sql, sku, quantity).await
}

async fn stock_update(
    tx: &mut Tx,
    sql: &'static str,
    sku: &str,
    quantity: i64,
) -> Result<bool, sqlx::Error> {
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(sku)
        .bind(quantity)
        .bind(nubo_platform::clock::now())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// How many units of `sku` are available, inside a transaction; `None` for an unknown SKU.
pub async fn available(tx: &mut Tx, sku: &str) -> Result<Option<i64>, sqlx::Error> {
    let sql = "SELECT on_hand - reserved FROM stock WHERE sku = $1";
    with_tx!(tx, conn => sqlx::query_scalar::<_, i64>(sql).bind(sku).fetch_optional(conn).await)
}

/// Records a held reservation; false if one with this id exists already (left untouched).
pub async fn insert_reservation(
    tx: &mut Tx,
    id: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO reservations (id, state, expires_at, created_at) \
               VALUES ($1, 'held', $2, $3) ON CONFLICT (id) DO NOTHING";
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Records that `id` was released before it was ever reserved, so a late reserve is refused;
/// false if a reservation with this id exists already.
pub async fn insert_tombstone(
    tx: &mut Tx,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO reservations (id, state, expires_at, created_at, settled_at, release_reason) \
               VALUES ($1, 'released', $2, $2, $2, $3) ON CONFLICT (id) DO NOTHING";
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn insert_line(
    tx: &mut Tx,
    id: Uuid,
    sku: &str,
    quantity: i64,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO reservation_lines (reservation_id, sku, quantity) VALUES ($1, $2, $3)";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(sku)
        .bind(quantity)
        .execute(conn)
        .await
        .map(|_| ()))
}

/// Moves a held, unexpired reservation to committed; false if it was not in that state. The
/// WHERE clause decides between concurrent committers, releasers and expiry sweeps.
pub async fn mark_committed(
    tx: &mut Tx,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE reservations SET state = 'committed', settled_at = $2 \
               WHERE id = $1 AND state = 'held' AND expires_at > $2";
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Moves a reservation in state `from` (held, or committed for a return) to released; false if
/// it was not in that state.
pub async fn mark_released(
    tx: &mut Tx,
    id: Uuid,
    from: ReservationState,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = match from {
        ReservationState::Held => {
            "UPDATE reservations SET state = 'released', settled_at = $2, release_reason = $3 \
             WHERE id = $1 AND state = 'held'"
        }
        ReservationState::Committed => {
            "UPDATE reservations SET state = 'released', settled_at = $2, release_reason = $3 \
             WHERE id = $1 AND state = 'committed'"
        }
        ReservationState::Released => return Ok(false),
    };
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    id: Uuid,
    state: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    settled_at: Option<DateTime<Utc>>,
    release_reason: Option<String>,
}

const RESERVATION_SQL: &str = "SELECT id, state, expires_at, created_at, settled_at, release_reason \
                               FROM reservations WHERE id = $1";
const LINES_SQL: &str =
    "SELECT sku, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku";

fn reservation(row: ReservationRow, lines: Vec<(String, i64)>) -> Result<Reservation, sqlx::Error> {
    let state = match row.state.as_str() {
        "held" => ReservationState::Held,
        "committed" => ReservationState::Committed,
        "released" => ReservationState::Released,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown reservation state {other:?}").into(),
            ));
        }
    };
    Ok(Reservation {
        reservation_id: row.id,
        state,
        lines: lines
            .into_iter()
            .map(|(sku, quantity)| StockLine { sku, quantity })
            .collect(),
        expires_at: row.expires_at,
        created_at: row.created_at,
        settled_at: row.settled_at,
        release_reason: row.release_reason,
    })
}

/// A reservation with its lines (sorted by SKU), inside a transaction.
pub async fn load(tx: &mut Tx, id: Uuid) -> Result<Option<Reservation>, sqlx::Error> {
    let (row, lines) = with_tx!(tx, conn => {
        let row = sqlx::query_as::<_, ReservationRow>(RESERVATION_SQL).bind(id).fetch_optional(&mut *conn).await?;
        let lines = sqlx::query_as::<_, (String, i64)>(LINES_SQL).bind(id).fetch_all(&mut *conn).await?;
        (row, lines)
    });
    row.map(|row| reservation(row, lines)).transpose()
}

/// A reservation with its lines (sorted by SKU).
pub async fn get(db: &Db, id: Uuid) -> Result<Option<Reservation>, sqlx::Error> {
    let (row, lines) = with_db!(db, pool => {
        let row = sqlx::query_as::<_, ReservationRow>(RESERVATION_SQL).bind(id).fetch_optional(pool).await?;
        let lines = sqlx::query_as::<_, (String, i64)>(LINES_SQL).bind(id).fetch_all(pool).await?;
        (row, lines)
    });
    row.map(|row| reservation(row, lines)).transpose()
}

/// Held reservations whose time ran out before `now`, oldest first.
pub async fn expired_held(
    db: &Db,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = "SELECT id FROM reservations WHERE state = 'held' AND expires_at <= $1 \
               ORDER BY expires_at LIMIT $2";
    with_db!(db, pool => sqlx::query_scalar::<_, Uuid>(sql).bind(now).bind(limit).fetch_all(pool).await)
}

/// How many reservations hold stock now (the ops console's checkout board shows it).
pub async fn held_count(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM reservations WHERE state = 'held'";
    with_db!(db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
}
