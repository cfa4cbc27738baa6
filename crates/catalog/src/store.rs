//! The catalog's SQL, written once for SQLite and PostgreSQL.

use nubo_contracts::Money;
use nubo_contracts::catalog::{ProductChange, ProductChanged};
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};

use crate::domain::{CategoryInfo, Product, ProductRef, ValidCategory, ValidProduct, image_path};

pub(crate) const COLUMNS: &str = "id, sku, name, description, price_minor, currency, category, image_url, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ProductRow {
    id: Uuid,
    sku: String,
    name: String,
    description: String,
    price_minor: i64,
    currency: String,
    category: String,
    image_url: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProductRow> for Product {
    fn from(r: ProductRow) -> Self {
        Product {
            id: r.id,
            image: image_path(&r.sku, r.version),
            sku: r.sku,
            name: r.name,
            description: r.description,
            price: Money {
                amount_minor: r.price_minor,
                currency: r.currency,
            },
            category: r.category,
            image_url: r.image_url,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl Product {
    pub fn changed(&self, change: ProductChange) -> ProductChanged {
        ProductChanged {
            product_id: self.id,
            sku: self.sku.clone(),
            name: self.name.clone(),
            price: self.price.clone(),
            category: self.category.clone(),
            version: self.version,
            change,
        }
    }
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(Into::into))
}

/// The product with exactly this SKU (SKUs are unique), if there is one.
pub async fn by_sku(db: &Db, sku: &str) -> Result<Option<Product>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE sku = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql)).bind(sku).fetch_optional(pool).await)?;
    Ok(row.map(Into::into))
}

/// The product a path names, by id or SKU.
pub async fn find(db: &Db, product: &ProductRef) -> Result<Option<Product>, sqlx::Error> {
    match product {
        ProductRef::Id(id) => get(db, *id).await,
        ProductRef::Sku(sku) => by_sku(db, sku.as_str()).await,
    }
}

/// One page of products, by name, optionally in one category; and how many match in all.
pub async fn list(
    db: &Db,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Product>, i64), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM products WHERE (CAST($1 AS TEXT) IS NULL OR category = $1) ORDER BY name, id LIMIT $2 OFFSET $3"
    );
    let count_sql =
        "SELECT COUNT(*) FROM products WHERE (CAST($1 AS TEXT) IS NULL OR category = $1)";
    let category = category.map(str::to_owned);
    let (rows, total) = with_db!(db, pool => {
        let rows = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql))
            .bind(&category)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql).bind(&category).fetch_one(pool).await?;
        (rows, total)
    });
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// A category with how many products it has.
#[derive(Debug, sqlx::FromRow)]
pub struct CategorySummary {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub products: i64,
}

/// Every category, empty ones too, with how many products each has.
pub async fn categories(db: &Db) -> Result<Vec<CategorySummary>, sqlx::Error> {
    let sql = "SELECT c.slug, c.name, c.description, COUNT(p.id) AS products \
               FROM categories c LEFT JOIN products p ON p.category = c.slug \
               GROUP BY c.slug, c.name, c.description ORDER BY c.slug";
    with_db!(db, pool => sqlx::query_as::<_, CategorySummary>(sql).fetch_all(pool).await)
}

/// Why a category write was refused.
#[derive(Debug)]
pub enum CategoryError {
    SlugTaken,
    NotFound,
    InUse,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for CategoryError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // PostgreSQL's foreign key: a product arrived in the category as it was deleted.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self::InUse,
            _ => Self::Database(e),
        }
    }
}

/// Adds a category. `ON CONFLICT DO NOTHING` rather than a unique violation, which would abort
/// a PostgreSQL transaction the seed still wants to use.
pub async fn insert_category(tx: &mut Tx, c: &ValidCategory) -> Result<(), CategoryError> {
    let sql = "INSERT INTO categories (slug, name, description, created_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT DO NOTHING";
    let inserted = with_tx!(tx, conn => sqlx::query(sql)
        .bind(c.slug.as_str())
        .bind(&c.name)
        .bind(&c.description)
        .bind(nubo_platform::clock::now())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    if inserted == 0 {
        return Err(CategoryError::SlugTaken);
    }
    Ok(())
}

pub async fn update_category(
    tx: &mut Tx,
    c: &ValidCategory,
) -> Result<CategoryInfo, CategoryError> {
    let sql = "UPDATE categories SET name = $2, description = $3 WHERE slug = $1 \
               RETURNING slug, name, description";
    let row = with_tx!(tx, conn => sqlx::query_as::<_, (String, String, String)>(sql)
        .bind(c.slug.as_str())
        .bind(&c.name)
        .bind(&c.description)
        .fetch_optional(conn)
        .await)?;
    let (slug, name, description) = row.ok_or(CategoryError::NotFound)?;
    Ok(CategoryInfo {
        slug,
        name,
        description,
    })
}

/// Deletes a category no product uses. On SQLite the write transaction excludes every other
/// writer; on PostgreSQL the foreign key catches a product added concurrently.
pub async fn delete_category(tx: &mut Tx, slug: &str) -> Result<(), CategoryError> {
    let delete = "DELETE FROM categories WHERE slug = $1 \
                  AND NOT EXISTS (SELECT 1 FROM products WHERE category = $1)";
    let exists = "SELECT COUNT(*) FROM categories WHERE slug = $1";
    let (deleted, remaining) = with_tx!(tx, conn => {
        let deleted = sqlx::query(delete).bind(slug).execute(&mut *conn).await?.rows_affected();
        let remaining: i64 = sqlx::query_scalar(exists).bind(slug).fetch_one(&mut *conn).await?;
        (deleted, remaining)
    });
    match (deleted, remaining) {
        (0, 0) => Err(CategoryError::NotFound),
        (0, _) => Err(CategoryError::InUse),
        _ => Ok(()),
    }
}

/// Refuses a product write into a category that does not exist.
async fn require_category(tx: &mut Tx, slug: &str) -> Result<(), WriteError> {
    let sql = "SELECT COUNT(*) FROM categories WHERE slug = $1";
    let found: i64 =
        with_tx!(tx, conn => sqlx::query_scalar(sql).bind(slug).fetch_one(conn).await)?;
    if found == 0 {
        return Err(WriteError::UnknownCategory);
    }
    Ok(())
}

/// Why a write was refused.
#[derive(Debug)]
pub enum WriteError {
    SkuTaken,
    NotFound,
    UnknownCategory,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::SkuTaken,
            // PostgreSQL's foreign key: the category was deleted since it was checked.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self::UnknownCategory,
            _ => Self::Database(e),
        }
    }
}

pub async fn insert(tx: &mut Tx, p: &ValidProduct) -> Result<Product, WriteError> {
    require_category(tx, p.category.as_str()).await?;
    let now = nubo_platform::clock::now();
    let id = Uuid::now_v7();
    let product = Product {
        id,
        image: image_path(p.sku.as_str(), 1),
        sku: p.sku.as_str().to_owned(),
        name: p.name.clone(),
        description: p.description.clone(),
        price: p.price.clone(),
        category: p.category.as_str().to_owned(),
        image_url: p.image_url.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let sql = format!(
        "INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(product.id)
        .bind(&product.sku)
        .bind(&product.name)
        .bind(&product.description)
        .bind(product.price.amount_minor)
        .bind(&product.price.currency)
        .bind(&product.category)
        .bind(&product.image_url)
        .bind(product.version)
        .bind(product.created_at)
        .bind(product.updated_at)
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(product)
}

/// Replaces a product's fields and bumps its version.
pub async fn update(tx: &mut Tx, id: Uuid, p: &ValidProduct) -> Result<Product, WriteError> {
    require_category(tx, p.category.as_str()).await?;
    let sql = format!(
        "UPDATE products SET sku = $2, name = $3, description = $4, price_minor = $5, currency = $6, \
         category = $7, image_url = $8, version = version + 1, updated_at = $9 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = with_tx!(tx, conn => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(p.sku.as_str())
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.price.amount_minor)
        .bind(&p.price.currency)
        .bind(p.category.as_str())
        .bind(&p.image_url)
        .bind(nubo_platform::clock::now())
        .fetch_optional(conn)
        .await)?;
    row.map(Into::into).ok_or(WriteError::NotFound)
}

/// Bumps a product's version for a change made elsewhere (its image), with the time of it.
pub async fn touch(tx: &mut Tx, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
    let sql = format!(
        "UPDATE products SET version = version + 1, updated_at = $2 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = with_tx!(tx, conn => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(nubo_platform::clock::now())
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(Into::into))
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    with_db!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM products").fetch_one(pool).await)
}

/// Records a price from a `ProductChanged` event; a version already recorded is left alone.
pub async fn record_price(
    tx: &mut Tx,
    e: &ProductChanged,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO price_history (product_id, version, price_minor, currency, changed_at) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(e.product_id)
        .bind(e.version)
        .bind(e.price.amount_minor)
        .bind(&e.price.currency)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// One price a product has had, from the version that set it.
#[derive(Debug, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PricePoint {
    pub version: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub changed_at: DateTime<Utc>,
}

pub async fn price_history(db: &Db, id: Uuid) -> Result<Vec<PricePoint>, sqlx::Error> {
    let sql = "SELECT version, price_minor AS amount_minor, currency, changed_at FROM price_history \
               WHERE product_id = $1 ORDER BY version";
    with_db!(db, pool => sqlx::query_as::<_, PricePoint>(sql).bind(id).fetch_all(pool).await)
}
