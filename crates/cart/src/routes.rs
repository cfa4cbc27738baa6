//! The cart's HTTP API: thin handlers that extract, authorize, change the stored lines and price
//! the result from the catalog.
//!
//! `/api/v1/cart...` is the signed-in customer's own cart (there is no way to name another's);
//! `/api/v1/admin/carts/{user_id}` lets an admin read anyone's; `/internal/v1/carts/{user_id}`
//! and the paths under it are for orders and are never routed by the gateway, which only proxies
//! `/api/v1/...`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nubo_contracts::Sku;
use nubo_contracts::cart::{AddLine, CartView, MAX_QUANTITY, OrderedLines, SetQuantity};
use nubo_contracts::catalog::CatalogClient;
use nubo_platform::auth::{Admin, Caller};
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::StatusCode;
use nubo_platform::axum::routing::{get, put};
use nubo_platform::axum::{self, Extension, Router};
use nubo_platform::error::{FieldError, Json, Path};
use nubo_platform::futures::future::try_join_all;
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::domain::{self, Priced};

pub fn router(ctx: Context, config: Config) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public
        .route("/internal/v1/carts/{user_id}", get(internal_cart))
        .route(
            "/internal/v1/carts/{user_id}/orders/{order_id}",
            put(take_ordered_lines),
        )
        .layer(Extension(Arc::new(config)))
        .with_state(ctx)
}

/// The cart's part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "cart", description = "The signed-in customer's cart, priced from the catalog")),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The routes under `/api/v1`, each registered with its documented operation so neither can go
/// without the other.
fn public_routes() -> OpenApiRouter<Context> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(my_cart, clear_my_cart))
        .routes(routes!(add_line))
        .routes(routes!(crate::merge::merge))
        .routes(routes!(set_line, remove_line))
        .routes(routes!(any_cart))
}

pub(crate) type Cfg = Extension<Arc<Config>>;

/// How long the cart remembers that an order's lines were taken out, so that a late retry takes
/// nothing more. Orders retries within minutes; a day covers an orders outage as well, without
/// keeping a key per order forever.
const ORDER_REMEMBERED: Duration = Duration::from_secs(24 * 3600);

pub(crate) fn cart_key(user_id: Uuid) -> String {
    format!("cart:v1:{user_id}")
}

pub(crate) fn sku(raw: &str) -> Result<String, ApiError> {
    nubo_contracts::Sku::parse(raw)
        .map(|s| s.as_str().to_owned())
        .map_err(|m| ApiError::invalid("sku", m))
}

pub(crate) fn quantity(raw: i64) -> Result<i64, ApiError> {
    domain::quantity(raw).map_err(|m| ApiError::invalid("quantity", m))
}

/// The signed-in customer's cart, priced now.
#[utoipa::path(
    get,
    path = "/api/v1/cart",
    tag = "cart",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = CartView),
        problems::Unauthorized,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn my_cart(
    caller: Caller,
    State(ctx): State<Context>,
    Extension(config): Cfg,
) -> Result<Json<CartView>, ApiError> {
    Ok(Json(priced_cart(&ctx, &config, caller.user_id).await?))
}

/// Any customer's cart, priced now (admins).
#[utoipa::path(
    get,
    path = "/api/v1/admin/carts/{user_id}",
    tag = "cart",
    params(("user_id" = Uuid, Path, description = "The customer's user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart (empty if the customer has none)", body = CartView),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn any_cart(
    _: Admin,
    State(ctx): State<Context>,
    Extension(config): Cfg,
    Path(user_id): Path<Uuid>,
) -> Result<Json<CartView>, ApiError> {
    Ok(Json(priced_cart(&ctx, &config, user_id).await?))
}

async fn internal_cart(
    State(ctx): State<Context>,
    Extension(config): Cfg,
    Path(user_id): Path<Uuid>,
) -> Result<Json<CartView>, ApiError> {
    Ok(Json(priced_cart(&ctx, &config, user_id).await?))
}

/// Empty the signed-in customer's cart.
#[utoipa::path(
    delete,
    path = "/api/v1/cart",
    tag = "cart",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The cart is empty"),
        problems::Unauthorized,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn clear_my_cart(caller: Caller, State(ctx): State<Context>) -> Result<StatusCode, ApiError> {
    clear(&ctx, caller.user_id).await
}

/// Takes a completed order's lines out of its customer's cart (for orders). Only what the order
/// bought leaves: a line added or raised while the checkout ran keeps the rest. Once per order:
/// orders retries this until it has an answer, and a retry whose first attempt did take (its
/// answer lost) takes nothing more.
async fn take_ordered_lines(
    State(ctx): State<Context>,
    Extension(config): Cfg,
    Path((user_id, order_id)): Path<(Uuid, Uuid)>,
    Json(ordered): Json<OrderedLines>,
) -> Result<StatusCode, ApiError> {
    let mut amounts = Vec::with_capacity(ordered.lines.len());
    let mut errors = Vec::new();
    for (i, line) in ordered.lines.iter().enumerate() {
        let sku = nubo_contracts::Sku::parse(&line.sku).map_err(|message| FieldError {
            field: format!("lines[{i}].sku"),
            message,
        });
        let quantity = domain::quantity(line.quantity).map_err(|message| FieldError {
            field: format!("lines[{i}].quantity"),
            message,
        });
        match (sku, quantity) {
            (Ok(sku), Ok(quantity)) => amounts.push((sku, quantity)),
            (sku, quantity) => errors.extend(sku.err().into_iter().chain(quantity.err())),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let amounts: Vec<(&str, i64)> = amounts.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    ctx.cache
        .hash_take_once(
            &cart_key(user_id),
            &amounts,
            &format!("cart:v1:ordered:{order_id}"),
            config.idle_ttl,
            ORDER_REMEMBERED,
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear(ctx: &Context, user_id: Uuid) -> Result<StatusCode, ApiError> {
    ctx.cache
        .delete(&cart_key(user_id))
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set how many units of a SKU the cart holds, adding the line if needed.
#[utoipa::path(
    put,
    path = "/api/v1/cart/lines/{sku}",
    tag = "cart",
    params(("sku" = String, Path, pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$", description = "The SKU, e.g. `TEA-001`")),
    request_body = SetQuantity,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart as it is now", body = CartView),
        problems::BadRequest,
        problems::Unauthorized,
        problems::NotFound,
        problems::Invalid,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn set_line(
    caller: Caller,
    State(ctx): State<Context>,
    Extension(config): Cfg,
    Path(raw): Path<String>,
    Json(input): Json<SetQuantity>,
) -> Result<Json<CartView>, ApiError> {
    let sku = sku(&raw)?;
    let quantity = quantity(input.quantity)?;
    require_in_catalog(&ctx, &sku).await?;
    ctx.cache
        .hash_set(
            &cart_key(caller.user_id),
            &sku,
            Bytes::from(quantity.to_string()),
            config.idle_ttl,
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(priced_cart(&ctx, &config, caller.user_id).await?))
}

/// Add units of a SKU to the cart.
#[utoipa::path(
    post,
    path = "/api/v1/cart/lines",
    tag = "cart",
    request_body = AddLine,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart as it is now", body = CartView),
        problems::BadRequest,
        problems::Unauthorized,
        problems::NotFound,
        problems::Conflict,
        problems::Invalid,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn add_line(
    caller: Caller,
    State(ctx): State<Context>,
    Extension(config): Cfg,
    Json(input): Json<AddLine>,
) -> Result<Json<CartView>, ApiError> {
    let sku = sku(&input.sku)?;
    let quantity = quantity(input.quantity)?;
    require_in_catalog(&ctx, &sku).await?;
    let key = cart_key(caller.user_id);
    let now = ctx
        .cache
        .hash_incr(&key, &sku, quantity, config.idle_ttl)
        .await
        .map_err(ApiError::internal)?;
    if now > MAX_QUANTITY {
        // Undo this add only: adds that raced with it keep theirs. A line this leaves at zero
        // is not shown.
        ctx.cache
            .hash_incr(&key, &sku, -quantity, config.idle_ttl)
            .await
            .map_err(ApiError::internal)?;
        return Err(ApiError::Conflict(format!(
            "the line would hold more than {MAX_QUANTITY} units"
        )));
    }
    Ok(Json(priced_cart(&ctx, &config, caller.user_id).await?))
}

/// Remove a SKU's line from the cart.
#[utoipa::path(
    delete,
    path = "/api/v1/cart/lines/{sku}",
    tag = "cart",
    params(("sku" = String, Path, pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$", description = "The SKU, e.g. `TEA-001`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart as it is now", body = CartView),
        problems::Unauthorized,
        problems::Invalid,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn remove_line(
    caller: Caller,
    State(ctx): State<Context>,
    Extension(config): Cfg,
    Path(raw): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let sku = sku(&raw)?;
    ctx.cache
        .hash_delete(&cart_key(caller.user_id), &sku, config.idle_ttl)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(priced_cart(&ctx, &config, caller.user_id).await?))
}

/// The quantity of each SKU in `user_id`'s cart as stored (a line left at zero included).
pub(crate) async fn stored_lines(
    ctx: &Context,
    user_id: Uuid,
) -> Result<BTreeMap<String, i64>, ApiError> {
    Ok(ctx
        .cache
        .hash_get_all(&cart_key(user_id))
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter_map(|(sku, value)| {
            let quantity = std::str::from_utf8(&value).ok()?.parse().ok()?;
            Some((sku, quantity))
        })
        .collect())
}

/// The stored lines of `user_id`'s cart, priced with the catalog's products as they are now.
pub(crate) async fn priced_cart(
    ctx: &Context,
    config: &Config,
    user_id: Uuid,
) -> Result<CartView, ApiError> {
    let stored = stored_lines(ctx, user_id).await?;
    let found = try_join_all(
        stored
            .iter()
            .filter(|(_, q)| **q > 0)
            .map(|(sku, _)| lookup(ctx, sku)),
    )
    .await?;
    let products = found
        .into_iter()
        .flatten()
        .map(|p| (p.sku.clone(), p))
        .collect();
    domain::price(user_id, &stored, &products, &config.currency)
        .map_err(|m| ApiError::internal(anyhow::anyhow!(m)))
}

async fn require_in_catalog(ctx: &Context, sku: &str) -> Result<Priced, ApiError> {
    lookup(ctx, sku)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the catalog has no product with SKU {sku}")))
}

/// The catalog's product with exactly this SKU, if it has one.
pub(crate) async fn lookup(ctx: &Context, sku: &str) -> Result<Option<Priced>, ApiError> {
    let Ok(sku) = Sku::parse(sku) else {
        return Ok(None);
    };
    let found = CatalogClient::of(ctx)
        .product_with_sku(&sku)
        .await
        .map_err(|e| match e {
            e if e.is_transient() => {
                tracing::warn!(error = %e, "cannot read the catalog");
                ApiError::Unavailable("the catalog cannot be reached; try again".into())
            }
            other => ApiError::internal(other),
        })?;
    Ok(found.map(|p| Priced {
        sku: p.sku,
        name: p.name,
        price: p.price,
    }))
}
