//! The SQL of running sagas: the lease in an order's row that says which replica runs its saga
//! (taken or renewed with the read of the order, in one statement), the leases a stopping
//! replica gives up, the orphans nobody holds a live lease on, and the counts behind the saga
//! gauges.

use nubo_contracts::orders::OrderLine;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::Db;
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db};

use super::{ORDER_COLUMNS, OrderRow, StoredOrder, assemble, read_lines};

/// Takes or renews `owner`'s lease on an unfinished order and reads the order, in one statement:
/// `None` when it is final or another replica's lease on it is still running. What the saga
/// needs of it: lines are read unless `lines` has them already (an order's lines never change
/// once placed), and steps are not read (`order.steps` is empty; see [`super::step_done`]).
pub async fn lease(
    db: &Db,
    id: Uuid,
    owner: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    lines: Option<&[OrderLine]>,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    let sql = format!(
        "UPDATE orders SET lease_owner = $2, lease_until = $4 \
         WHERE id = $1 AND state NOT IN ('completed', 'cancelled') \
         AND (lease_owner = $2 OR lease_until IS NULL OR lease_until < $3) \
         RETURNING {ORDER_COLUMNS}"
    );
    let row = with_db!(db, pool => sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(owner)
        .bind(now)
        .bind(until)
        .fetch_optional(pool)
        .await)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines = match lines {
        Some(lines) => lines.to_vec(),
        None => read_lines(db, id).await?,
    };
    assemble(row, lines, Vec::new()).map(Some)
}

/// Gives up `owner`'s leases (a replica stopping), so another resumes its sagas at once.
pub async fn release_leases(db: &Db, owner: Uuid) -> Result<u64, sqlx::Error> {
    // Finished orders keep their last owner: nothing takes them over, and rewriting them made a
    // stop touch every order the replica had ever run.
    let sql = "UPDATE orders SET lease_owner = NULL, lease_until = NULL \
               WHERE lease_owner = $1 AND state NOT IN ('completed', 'cancelled')";
    with_db!(db, pool => sqlx::query(sql)
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}

/// Unfinished orders nobody holds a live lease on: crashed or stopped replicas' sagas.
pub async fn orphans(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = "SELECT id FROM orders WHERE state NOT IN ('completed', 'cancelled') \
               AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at LIMIT $2";
    with_db!(db, pool => sqlx::query_scalar::<_, Uuid>(sql)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// Unfinished orders per state, and how many of them have not moved since `stuck_before`.
pub async fn open_counts(
    db: &Db,
    stuck_before: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let sql = "SELECT state, COUNT(*), \
               COALESCE(SUM(CASE WHEN updated_at < $1 THEN 1 ELSE 0 END), 0) \
               FROM orders WHERE state NOT IN ('completed', 'cancelled') GROUP BY state";
    with_db!(db, pool => sqlx::query_as::<_, (String, i64, i64)>(sql)
        .bind(stuck_before)
        .fetch_all(pool)
        .await)
}
