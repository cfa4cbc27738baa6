//! The cart's HTTP API: thin handlers that extract, authorize, change the stored lines and price
//! the result from the catalog.
//!
//! `/api/v1/cart...` is the signed-in customer's own cart (there is no way to name another's);
//! `/api/v1/admin/carts/{user_id}` lets an admin read anyone's; `/internal/v1/carts/{user_id}` is
//! for orders and is never routed by the gateway, which only proxies `/api/v1/...`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use nubo_contracts::cart::{AddLine, CartView, MAX_QUANTITY, SetQuantity};
use nubo_platform::auth::{Admin, Caller};
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::StatusCode;
use nubo_platform::axum::routing::{get, post, put};
use nubo_platform::axum::{Extension, Router};
use nubo_platform::client::ClientError;
use nubo_platform::error::{Json, Path};
use nubo_platform::futures::future::try_join_all;
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context};
use serde::Deserialize;

use crate::config::Config;
use crate::domain::{self, Priced};

pub fn router(ctx: Context, config: Config) -> Router {
    Router::new()
        .route("/api/v1/cart", get(my_cart).delete(clear_my_cart))
        .route("/api/v1/cart/lines", post(add_line))
        .route(
            "/api/v1/cart/lines/{sku}",
            put(set_line).delete(remove_line),
        )
        .route("/api/v1/admin/carts/{user_id}", get(any_cart))
        .route(
            "/internal/v1/carts/{user_id}",
            get(internal_cart).delete(clear_internal_cart),
        )
        .layer(Extension(Arc::new(config)))
        .with_state(ctx)
}

type Cfg = Extension<Arc<Config>>;

fn cart_key(user_id: Uuid) -> String {
    format!("cart:v1:{user_id}")
}

fn sku(raw: &str) -> Result<String, ApiError> {
    nubo_contracts::Sku::parse(raw)
        .map(|s| s.as_str().to_owned())
        .map_err(|m| ApiError::invalid("sku", m))
}

fn quantity(raw: i64) -> Result<i64, ApiError> {
    domain::quantity(raw).map_err(|m| ApiError::invalid("quantity", m))
}

async fn my_cart(
    caller: Caller,
    State(ctx): State<Context>,
    Extension(config): Cfg,
) -> Result<Json<CartView>, ApiError> {
    Ok(Json(priced_cart(&ctx, &config, caller.user_id).await?))
}

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

async fn clear_my_cart(caller: Caller, State(ctx): State<Context>) -> Result<StatusCode, ApiError> {
    clear(&ctx, caller.user_id).await
}

async fn clear_internal_cart(
    State(ctx): State<Context>,
    Path(user_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    clear(&ctx, user_id).await
}

async fn clear(ctx: &Context, user_id: Uuid) -> Result<StatusCode, ApiError> {
    ctx.cache
        .delete(&cart_key(user_id))
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

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
        return Err(ApiError::invalid(
            "quantity",
            format!("the line would hold more than {MAX_QUANTITY} units"),
        ));
    }
    Ok(Json(priced_cart(&ctx, &config, caller.user_id).await?))
}

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

/// The stored lines of `user_id`'s cart, priced with the catalog's products as they are now.
async fn priced_cart(ctx: &Context, config: &Config, user_id: Uuid) -> Result<CartView, ApiError> {
    let stored: BTreeMap<String, i64> = ctx
        .cache
        .hash_get_all(&cart_key(user_id))
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter_map(|(sku, value)| {
            let quantity = std::str::from_utf8(&value).ok()?.parse().ok()?;
            Some((sku, quantity))
        })
        .collect();
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
        .ok_or_else(|| ApiError::invalid("sku", format!("{sku} is not in the catalog")))
}

#[derive(Deserialize)]
struct SearchPage {
    items: Vec<Priced>,
}

/// The catalog's product with exactly this SKU, found through its search (which indexes SKUs).
async fn lookup(ctx: &Context, sku: &str) -> Result<Option<Priced>, ApiError> {
    // A SKU is upper-case letters, digits and dashes: nothing in it needs escaping.
    let path = format!("/api/v1/products/search?q={sku}&per_page=100");
    let page: SearchPage = ctx
        .client("catalog")
        .get_json(&path)
        .await
        .map_err(catalog_error)?;
    Ok(page.items.into_iter().find(|p| p.sku == sku))
}

fn catalog_error(e: ClientError) -> ApiError {
    match e {
        ClientError::CircuitOpen { .. }
        | ClientError::Timeout { .. }
        | ClientError::Connect { .. }
        | ClientError::Transport { .. } => {
            ApiError::Unavailable("the catalog cannot be reached; try again".into())
        }
        other => ApiError::internal(other),
    }
}
