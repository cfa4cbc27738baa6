//! The catalog's HTTP API: thin handlers that extract, authorize, call the store and map errors.

use nubo_contracts::catalog::ProductChange;
use nubo_platform::auth::Admin;
use nubo_platform::axum::Router;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::{StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::{get, post, put};
use nubo_platform::error::{Json, Path, Query};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context, OrNotFound};
use serde::{Deserialize, Serialize};

use crate::cached;
use crate::domain::{Product, ProductInput};
use crate::store::{self, PricePoint, WriteError};

pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/{id}", get(get_product))
        .route("/api/v1/products/{id}/price-history", get(price_history))
        .route("/api/v1/categories", get(list_categories))
        .route("/api/v1/admin/products", post(create_product))
        .route("/api/v1/admin/products/{id}", put(update_product))
        .with_state(ctx)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub category: Option<String>,
    #[serde(default = "first_page")]
    pub page: u32,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    20
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

async fn list_products(
    State(ctx): State<Context>,
    Query(q): Query<ListQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    if q.page == 0 || q.page > 100_000 {
        return Err(ApiError::invalid("page", "must be between 1 and 100000"));
    }
    if q.per_page == 0 || q.per_page > 100 {
        return Err(ApiError::invalid("per_page", "must be between 1 and 100"));
    }
    if let Some(c) = &q.category {
        crate::domain::Category::parse(c).map_err(|m| ApiError::invalid("category", m))?;
    }
    Ok(Json(
        cached::list(&ctx, q.category.as_deref(), q.page, q.per_page).await?,
    ))
}

async fn get_product(
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(cached::get(&ctx, id).await.or_not_found("product")?))
}

async fn price_history(
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<PricePoint>>, ApiError> {
    store::get(&ctx.db, id).await.or_not_found("product")?;
    Ok(Json(store::price_history(&ctx.db, id).await?))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CategoryCount {
    pub category: String,
    pub products: i64,
}

async fn list_categories(State(ctx): State<Context>) -> Result<Json<Vec<CategoryCount>>, ApiError> {
    let categories = store::categories(&ctx.db).await?;
    Ok(Json(
        categories
            .into_iter()
            .map(|(category, products)| CategoryCount { category, products })
            .collect(),
    ))
}

async fn create_product(
    _: Admin,
    State(ctx): State<Context>,
    Json(input): Json<ProductInput>,
) -> Result<Response, ApiError> {
    let valid = input.validate().map_err(ApiError::Invalid)?;
    let mut tx = ctx.db.begin().await?;
    let product = store::insert(&mut tx, &valid).await.map_err(write_error)?;
    ctx.publish(&mut tx, &product.changed(ProductChange::Created))
        .await?;
    ctx.commit(tx).await?;
    cached::invalidate(&ctx, product.id).await;
    let location = format!("/api/v1/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(product),
    )
        .into_response())
}

async fn update_product(
    _: Admin,
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
    Json(input): Json<ProductInput>,
) -> Result<Json<Product>, ApiError> {
    let valid = input.validate().map_err(ApiError::Invalid)?;
    let mut tx = ctx.db.begin().await?;
    let product = store::update(&mut tx, id, &valid)
        .await
        .map_err(write_error)?;
    ctx.publish(&mut tx, &product.changed(ProductChange::Updated))
        .await?;
    ctx.commit(tx).await?;
    cached::invalidate(&ctx, product.id).await;
    Ok(Json(product))
}

fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::SkuTaken => ApiError::Conflict("another product already has this SKU".into()),
        WriteError::NotFound => ApiError::NotFound("product not found".into()),
        WriteError::Database(e) => e.into(),
    }
}
