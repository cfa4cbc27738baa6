//! The stored widths of uploaded photos, written once for SQLite and PostgreSQL.

use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};

use super::photo::Variant;

/// A stored width as served.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredVariant {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The narrowest stored width of the product's photo at least `width` wide, else its widest;
/// `None` when it has no photo.
pub async fn variant(
    db: &Db,
    product_id: Uuid,
    width: u32,
) -> Result<Option<StoredVariant>, sqlx::Error> {
    let sql = "SELECT content_type, bytes FROM product_images WHERE product_id = $1 \
               ORDER BY CASE WHEN width >= $2 THEN 0 ELSE 1 END, \
               CASE WHEN width >= $2 THEN width ELSE -width END LIMIT 1";
    with_db!(db, pool => sqlx::query_as::<_, StoredVariant>(sql)
        .bind(product_id)
        .bind(i64::from(width))
        .fetch_optional(pool)
        .await)
}

/// Replaces the product's photo, if it had one, with `variants`.
pub async fn replace(
    tx: &mut Tx,
    product_id: Uuid,
    variants: &[Variant],
) -> Result<(), sqlx::Error> {
    remove(tx, product_id).await?;
    let sql = "INSERT INTO product_images (product_id, width, height, content_type, bytes) \
               VALUES ($1, $2, $3, $4, $5)";
    for v in variants {
        with_tx!(tx, conn => sqlx::query(sql)
            .bind(product_id)
            .bind(i64::from(v.width))
            .bind(i64::from(v.height))
            .bind(v.content_type)
            .bind(&v.bytes)
            .execute(conn)
            .await
            .map(|_| ()))?;
    }
    Ok(())
}

/// Removes the product's photo; returns how many widths it had.
pub async fn remove(tx: &mut Tx, product_id: Uuid) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM product_images WHERE product_id = $1";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(product_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
}
