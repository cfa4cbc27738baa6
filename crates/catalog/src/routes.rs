//! The catalog's HTTP API: thin handlers that extract, authorize, call the store and map errors.
//! Public reads answer with an `ETag` and `Cache-Control` ([`http_cache`]), and a `304` to a
//! matching `If-None-Match`; admin routes and errors are never cached.

mod categories;
mod images;

use std::collections::BTreeMap;

use nubo_contracts::catalog::ProductChange;
use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::{StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::{self, Router};
use nubo_platform::error::{FieldError, Json, Path, Query};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context, OrNotFound, Problem, http_cache};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{Category, Product, ProductInput, ProductRef, SearchTerms};
use crate::store::{self, PricePoint, WriteError};
use crate::{cached, search};

pub fn router(ctx: Context) -> Router {
    let (router, _) = public_routes().split_for_parts();
    router
        .route(
            "/internal/v1/products/by-sku/{sku}",
            axum::routing::get(product_by_sku),
        )
        .with_state(ctx)
}

/// What the cart prices a line with: the product with exactly this SKU, as a page of none or
/// one, the shape of a search's answer (so a caller can fall back to the search of a catalog
/// that predates this route). An unknown SKU is an empty page, not a 404: a 404 here means the
/// route itself is missing.
async fn product_by_sku(
    State(ctx): State<Context>,
    Path(sku): Path<String>,
) -> Result<Json<ProductPage>, ApiError> {
    let sku = nubo_contracts::Sku::parse(&sku).map_err(|m| ApiError::invalid("sku", m))?;
    let items: Vec<Product> = store::by_sku(&ctx.db, sku.as_str())
        .await?
        .into_iter()
        .collect();
    Ok(Json(ProductPage {
        total: items.len() as i64,
        items,
        page: 1,
        per_page: 1,
    }))
}

/// The catalog's part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "catalog", description = "Products, categories, prices and search")),
    modifiers(&Shared)
)]
struct ApiDoc;

/// How long shoppers' browsers and shared caches may reuse a list, a search or the categories.
const LIST_MAX_AGE: u32 = 60;
/// How long they may reuse one product.
const PRODUCT_MAX_AGE: u32 = 300;

/// Every route, each registered with its documented operation so neither can go without the
/// other; public reads grouped by how long their answers may be reused.
fn public_routes() -> OpenApiRouter<Context> {
    let lists = OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(search_products))
        .routes(routes!(price_history))
        .routes(routes!(categories::list_categories))
        .route_layer(http_cache::public(LIST_MAX_AGE));
    let product = OpenApiRouter::new()
        .routes(routes!(get_product))
        .route_layer(http_cache::public(PRODUCT_MAX_AGE));
    // The handler sets a day and `immutable` itself when the URL carries the current version.
    let image = OpenApiRouter::new()
        .routes(routes!(images::product_image))
        .route_layer(http_cache::public(images::UNVERSIONED_MAX_AGE));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(lists)
        .merge(product)
        .merge(image)
        .routes(routes!(create_product))
        .routes(routes!(update_product))
        .routes(routes!(
            images::put_product_image,
            images::delete_product_image
        ))
        .routes(routes!(categories::create_category))
        .routes(routes!(
            categories::update_category,
            categories::delete_category
        ))
}

/// 304 in the document: the request's `If-None-Match` names the answer's current `ETag`.
pub struct NotModified;

impl utoipa::IntoResponses for NotModified {
    fn responses() -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
    {
        let response = utoipa::openapi::ResponseBuilder::new()
            .description(
                "Not modified: `If-None-Match` names the current `ETag`. No body; the same \
                 `ETag` and `Cache-Control`.",
            )
            .build();
        BTreeMap::from([("304".to_owned(), utoipa::openapi::RefOr::T(response))])
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only products of this category (its slug).
    #[param(pattern = "^[a-z0-9-]{1,40}$")]
    pub category: Option<String>,
    /// 1 to 100000.
    #[serde(default = "first_page")]
    #[param(default = 1, minimum = 1, maximum = 100000)]
    pub page: u32,
    /// 1 to 100.
    #[serde(default = "default_per_page")]
    #[param(default = 20, minimum = 1, maximum = 100)]
    pub per_page: u32,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    20
}

/// One page of products and how many there are in all.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

/// List products by name, optionally of one category.
#[utoipa::path(
    get,
    path = "/api/v1/products",
    tag = "catalog",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        NotModified,
        problems::BadRequest,
        problems::Invalid,
        problems::Internal,
    )
)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to look for in SKU, name and description; the last one may be a prefix.
    #[serde(default)]
    #[param(required = true, min_length = 1, max_length = 200)]
    pub q: String,
    /// Only products of this category (its slug).
    #[param(pattern = "^[a-z0-9-]{1,40}$")]
    pub category: Option<String>,
    /// 1 to 100000.
    #[serde(default = "first_page")]
    #[param(default = 1, minimum = 1, maximum = 100000)]
    pub page: u32,
    /// 1 to 100.
    #[serde(default = "default_per_page")]
    #[param(default = 20, minimum = 1, maximum = 100)]
    pub per_page: u32,
}

/// Search products, best match first.
#[utoipa::path(
    get,
    path = "/api/v1/products/search",
    tag = "catalog",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of matching products", body = ProductPage),
        NotModified,
        problems::BadRequest,
        problems::Invalid,
        problems::Internal,
    )
)]
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

/// One product, by its id or its SKU.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}",
    tag = "catalog",
    params(("id" = String, Path, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Z0-9][A-Z0-9-]{2,31})$", 
        description = "The product's id (a UUID, 36 characters) or its SKU (3 to 32 upper-case \
            letters, digits and dashes, e.g. `TEA-001`)")),
    responses(
        (status = 200, description = "The product", body = Product),
        NotModified,
        problems::BadRequest,
        problems::NotFound,
        problems::Internal,
    )
)]
async fn get_product(
    State(ctx): State<Context>,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    let product = ProductRef::parse(&id).map_err(ApiError::BadRequest)?;
    Ok(Json(
        cached::find(&ctx, &product).await.or_not_found("product")?,
    ))
}

/// Every price a product has had, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}/price-history",
    tag = "catalog",
    params(("id" = Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The product's prices", body = Vec<PricePoint>),
        NotModified,
        problems::BadRequest,
        problems::NotFound,
        problems::Internal,
    )
)]
async fn price_history(
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<PricePoint>>, ApiError> {
    store::get(&ctx.db, id).await.or_not_found("product")?;
    Ok(Json(store::price_history(&ctx.db, id).await?))
}

/// Create a product (admins).
#[utoipa::path(
    post,
    path = "/api/v1/admin/products",
    tag = "catalog",
    request_body = ProductInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Product,
            headers(("location" = String, description = "The product's URL"))),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Conflict,
        problems::Invalid,
        problems::Internal,
    )
)]
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

/// Replace a product (admins).
#[utoipa::path(
    put,
    path = "/api/v1/admin/products/{id}",
    tag = "catalog",
    params(("id" = Uuid, Path, description = "The product's id")),
    request_body = ProductInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The product as it is now", body = Product),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Conflict,
        problems::Invalid,
        problems::Internal,
    )
)]
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
        WriteError::UnknownCategory => {
            let mut problem = Problem::new(
                StatusCode::CONFLICT,
                "the product's category does not exist; create it first",
            )
            .with_kind("unknown-category");
            problem.errors = vec![FieldError {
                field: "category".into(),
                message: "no such category".into(),
            }];
            problem.into()
        }
        WriteError::Database(e) => e.into(),
    }
}
