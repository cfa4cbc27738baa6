//! Full-text search over products, ranked by relevance. The SQL cannot be shared: SQLite answers
//! from an FTS5 table kept in step with `products` by triggers, PostgreSQL from a generated
//! `tsvector` column with a GIN index (both in `migrations/*/..._search_and_categories.sql`).
//! Both weigh a word in the name or SKU above one in the description, and that above the category.
//! Results are not cached: queries are too varied for a page cache to hit often.

use nubo_platform::sqlx::{self, PgPool, SqlitePool};
use nubo_platform::storage::Db;

use crate::domain::{Product, SearchTerms};
use crate::store::{COLUMNS, ProductRow};

/// One page of the products matching every term, best first; and how many match in all.
pub async fn search(
    db: &Db,
    terms: &SearchTerms,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Product>, i64), sqlx::Error> {
    if terms.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let (rows, total) = match db {
        Db::Sqlite(pool) => search_sqlite(pool, terms, category, limit, offset).await?,
        Db::Postgres(pool) => search_postgres(pool, terms, category, limit, offset).await?,
    };
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// bm25 takes one weight per column in declaration order, the unindexed `product_id` first:
/// name 10, description 2, sku 5, category 1. Lower scores are better.
async fn search_sqlite(
    pool: &SqlitePool,
    terms: &SearchTerms,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ProductRow>, i64), sqlx::Error> {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let from = "FROM products_fts JOIN products p ON p.id = products_fts.product_id \
                WHERE products_fts MATCH $1 AND (CAST($2 AS TEXT) IS NULL OR p.category = $2)";
    let sql = format!(
        "SELECT {columns} {from} \
         ORDER BY bm25(products_fts, 0.0, 10.0, 2.0, 5.0, 1.0), p.name, p.id LIMIT $3 OFFSET $4"
    );
    let count_sql = format!("SELECT COUNT(*) {from}");
    let query = terms.to_fts5();
    let rows = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql))
        .bind(&query)
        .bind(category)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
        .bind(&query)
        .bind(category)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// Name and SKU carry weight A, description B, category C; `ts_rank` scores A highest.
async fn search_postgres(
    pool: &PgPool,
    terms: &SearchTerms,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ProductRow>, i64), sqlx::Error> {
    let from = "FROM products, to_tsquery('simple', $1) AS q \
                WHERE search @@ q AND (CAST($2 AS TEXT) IS NULL OR category = $2)";
    let sql = format!(
        "SELECT {COLUMNS} {from} ORDER BY ts_rank(search, q) DESC, name, id LIMIT $3 OFFSET $4"
    );
    let count_sql = format!("SELECT COUNT(*) {from}");
    let query = terms.to_tsquery();
    let rows = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql))
        .bind(&query)
        .bind(category)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
        .bind(&query)
        .bind(category)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
