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

use crate::domain::{
    Category, CategoryInfo, CategoryInput, CategoryUpdate, Product, ProductInput, SearchTerms,
};
use crate::store::{self, CategoryError, PricePoint, WriteError};
use crate::{cached, search};

pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/search", get(search_products))
        .route("/api/v1/products/{id}", get(get_product))
        .route("/api/v1/products/{id}/price-history", get(price_history))
        .route("/api/v1/categories", get(list_categories))
        .route("/api/v1/admin/products", post(create_product))
        .route("/api/v1/admin/products/{id}", put(update_product))
        .route("/api/v1/admin/categories", post(create_category))
        .route(
            "/api/v1/admin/categories/{slug}",
            put(update_category).delete(delete_category),
        )
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
    check_page(q.page, q.per_page, q.category.as_deref())?;
    Ok(Json(
        cached::list(&ctx, q.category.as_deref(), q.page, q.per_page).await?,
    ))
}

fn check_page(page: u32, per_page: u32, category: Option<&str>) -> Result<(), ApiError> {
    if page == 0 || page > 100_000 {
        return Err(ApiError::invalid("page", "must be between 1 and 100000"));
    }
    if per_page == 0 || per_page > 100 {
        return Err(ApiError::invalid("per_page", "must be between 1 and 100"));
    }
    if let Some(c) = category {
        Category::parse(c).map_err(|m| ApiError::invalid("category", m))?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    pub category: Option<String>,
    #[serde(default = "first_page")]
    pub page: u32,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
}

async fn search_products(
    State(ctx): State<Context>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let terms = SearchTerms::parse(&q.q).map_err(|m| ApiError::invalid("q", m))?;
    check_page(q.page, q.per_page, q.category.as_deref())?;
    let offset = i64::from(q.page - 1) * i64::from(q.per_page);
    let (items, total) = search::search(
        &ctx.db,
        &terms,
        q.category.as_deref(),
        i64::from(q.per_page),
        offset,
    )
    .await?;
    Ok(Json(ProductPage {
        items,
        page: q.page,
        per_page: q.per_page,
        total,
    }))
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
    pub name: String,
    pub description: String,
    pub products: i64,
}

async fn list_categories(State(ctx): State<Context>) -> Result<Json<Vec<CategoryCount>>, ApiError> {
    let categories = store::categories(&ctx.db).await?;
    Ok(Json(
        categories
            .into_iter()
            .map(|c| CategoryCount {
                category: c.slug,
                name: c.name,
                description: c.description,
                products: c.products,
            })
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

async fn create_category(
    _: Admin,
    State(ctx): State<Context>,
    Json(input): Json<CategoryInput>,
) -> Result<(StatusCode, Json<CategoryInfo>), ApiError> {
    let valid = input.validate().map_err(ApiError::Invalid)?;
    let mut tx = ctx.db.begin().await?;
    store::insert_category(&mut tx, &valid)
        .await
        .map_err(category_error)?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CategoryInfo {
            slug: valid.slug.as_str().to_owned(),
            name: valid.name,
            description: valid.description,
        }),
    ))
}

async fn update_category(
    _: Admin,
    State(ctx): State<Context>,
    Path(slug): Path<String>,
    Json(input): Json<CategoryUpdate>,
) -> Result<Json<CategoryInfo>, ApiError> {
    // A slug that cannot be valid names no category.
    let slug = Category::parse(&slug).map_err(|_| category_error(CategoryError::NotFound))?;
    let valid = input.validate(slug).map_err(ApiError::Invalid)?;
    let mut tx = ctx.db.begin().await?;
    let category = store::update_category(&mut tx, &valid)
        .await
        .map_err(category_error)?;
    tx.commit().await?;
    Ok(Json(category))
}

async fn delete_category(
    _: Admin,
    State(ctx): State<Context>,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = ctx.db.begin().await?;
    store::delete_category(&mut tx, &slug)
        .await
        .map_err(category_error)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn category_error(e: CategoryError) -> ApiError {
    match e {
        CategoryError::SlugTaken => ApiError::Conflict("a category with this slug exists".into()),
        CategoryError::NotFound => ApiError::NotFound("category not found".into()),
        CategoryError::InUse => {
            ApiError::Conflict("products are still in this category; move them first".into())
        }
        CategoryError::Database(e) => e.into(),
    }
}

fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::SkuTaken => ApiError::Conflict("another product already has this SKU".into()),
        WriteError::NotFound => ApiError::NotFound("product not found".into()),
        WriteError::UnknownCategory => ApiError::invalid("category", "no such category"),
        WriteError::Database(e) => e.into(),
    }
}
