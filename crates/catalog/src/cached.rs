//! Cached reads. A product is cached by id; pages of the list, and products read by SKU (a write
//! may change a SKU), are cached under a generation number that every write bumps, so one write
//! invalidates all of them at once without scanning keys. The cache is an optimisation only:
//! when it fails, reads go to the database.

use std::time::Duration;

use nubo_platform::Context;
use nubo_platform::uuid::Uuid;

use crate::domain::{Product, ProductRef};
use crate::routes::ProductPage;
use crate::store;

const GENERATION: &str = "catalog:products:generation";
/// The generation counter outlives any cached page.
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

fn product_key(id: Uuid) -> String {
    format!("catalog:product:{id}")
}

pub async fn get(ctx: &Context, id: Uuid) -> Result<Option<Product>, nubo_platform::sqlx::Error> {
    let key = product_key(id);
    if let Ok(Some(p)) = ctx.cache.get_json::<Product>(&key).await {
        return Ok(Some(p));
    }
    let product = store::get(&ctx.db, id).await?;
    if let Some(p) = &product {
        let _ = ctx.cache.set_json(&key, p, ctx.settings.cache_ttl).await;
    }
    Ok(product)
}

/// The product a path names, by id or SKU.
pub async fn find(
    ctx: &Context,
    product: &ProductRef,
) -> Result<Option<Product>, nubo_platform::sqlx::Error> {
    let sku = match product {
        ProductRef::Id(id) => return get(ctx, *id).await,
        ProductRef::Sku(sku) => sku.as_str(),
    };
    let key = generation(ctx)
        .await
        .map(|g| format!("catalog:products:{g}:sku:{sku}"));
    if let Some(key) = &key
        && let Ok(Some(p)) = ctx.cache.get_json::<Product>(key).await
    {
        return Ok(Some(p));
    }
    let found = store::by_sku(&ctx.db, sku).await?;
    match (&key, &found) {
        (Some(key), Some(p)) => {
            let _ = ctx.cache.set_json(key, p, ctx.settings.cache_ttl).await;
        }
        // No generation yet: start one, so the next read can be cached.
        (None, _) => {
            let _ = ctx.cache.incr(GENERATION, GENERATION_TTL).await;
        }
        (Some(_), None) => {}
    }
    Ok(found)
}

/// The current generation of cached pages, if the cache has one.
async fn generation(ctx: &Context) -> Option<String> {
    ctx.cache
        .get(GENERATION)
        .await
        .ok()
        .flatten()
        .map(|g| String::from_utf8_lossy(&g).into_owned())
}

pub async fn list(
    ctx: &Context,
    category: Option<&str>,
    page: u32,
    per_page: u32,
) -> Result<ProductPage, nubo_platform::sqlx::Error> {
    let key = generation(ctx).await.map(|g| {
        format!(
            "catalog:products:{g}:{}:{page}:{per_page}",
            category.unwrap_or("*")
        )
    });
    if let Some(key) = &key
        && let Ok(Some(cached)) = ctx.cache.get_json::<ProductPage>(key).await
    {
        return Ok(cached);
    }
    let offset = i64::from(page - 1) * i64::from(per_page);
    let (items, total) = store::list(&ctx.db, category, i64::from(per_page), offset).await?;
    let result = ProductPage {
        items,
        page,
        per_page,
        total,
    };
    match key {
        Some(key) => {
            let _ = ctx
                .cache
                .set_json(&key, &result, ctx.settings.cache_ttl)
                .await;
        }
        // No generation yet: start one, so the next read can be cached.
        None => {
            let _ = ctx.cache.incr(GENERATION, GENERATION_TTL).await;
        }
    }
    Ok(result)
}

/// Called after a committed write.
pub async fn invalidate(ctx: &Context, id: Uuid) {
    let deleted = ctx.cache.delete(&product_key(id)).await;
    let bumped = ctx.cache.incr(GENERATION, GENERATION_TTL).await;
    if let Some(e) = deleted
        .err()
        .map(|e| e.to_string())
        .or(bumped.err().map(|e| e.to_string()))
    {
        tracing_warn(&e);
    }
}

fn tracing_warn(error: &str) {
    nubo_platform::tracing::warn!(
        error,
        "cache invalidation failed; cached reads may be stale until they expire"
    );
}
