//! The transactional outbox: events are rows written in the same transaction as the change they
//! describe, so a change and its event are committed together or not at all.

use uuid::Uuid;

use super::{Envelope, Event};
use crate::storage::{Db, Tx};
use crate::with_tx;

/// Records `event` in the outbox of the transaction's database; it is published after commit.
pub async fn enqueue<E: Event>(tx: &mut Tx, source: &str, event: &E) -> anyhow::Result<Uuid> {
    let envelope = Envelope::new(source, event)?;
    enqueue_envelope(tx, &envelope).await?;
    Ok(envelope.id)
}

pub async fn enqueue_envelope(tx: &mut Tx, envelope: &Envelope) -> anyhow::Result<()> {
    let json = serde_json::to_string(envelope)?;
    let sql = "INSERT INTO nubo_outbox (id, subject, envelope, created_at) VALUES ($1, $2, $3, $4)";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(envelope.id)
        .bind(&envelope.subject)
        .bind(&json)
        .bind(crate::clock::now())
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A row of the outbox still to be published.
#[derive(Debug, sqlx::FromRow)]
pub struct Pending {
    pub seq: i64,
    pub envelope: String,
}

/// The oldest unpublished events, in the order they were written.
pub async fn unpublished(db: &Db, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let sql =
        "SELECT seq, envelope FROM nubo_outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1";
    crate::with_db!(db, pool => sqlx::query_as::<_, Pending>(sql).bind(limit).fetch_all(pool).await)
}

pub async fn mark_published(db: &Db, seqs: &[i64]) -> Result<(), sqlx::Error> {
    let now = crate::clock::now();
    let sql = "UPDATE nubo_outbox SET published_at = $1 WHERE seq = $2";
    for seq in seqs {
        crate::with_db!(db, pool => sqlx::query(sql).bind(now).bind(*seq).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// How many events wait to be published: the outbox backlog gauge.
pub async fn backlog(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM nubo_outbox WHERE published_at IS NULL";
    crate::with_db!(db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
}

/// Deletes published rows older than `keep`, so the outbox does not grow forever.
pub async fn prune(db: &Db, keep: chrono::Duration) -> Result<u64, sqlx::Error> {
    let cutoff = crate::clock::now() - keep;
    let sql = "DELETE FROM nubo_outbox WHERE published_at IS NOT NULL AND published_at < $1";
    let done = crate::with_db!(db, pool => sqlx::query(sql).bind(cutoff).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done)
}
