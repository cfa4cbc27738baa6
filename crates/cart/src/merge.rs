//! Merging a guest's cart into the account they signed in to. A visitor's cart lives in their
//! browser until they sign in; then each of its lines is brought in so the line holds at least
//! the guest's quantity. Taking the larger quantity (not the sum) makes a merge safe to send
//! again after a lost answer, and a product added on both sides is not doubled.

use std::collections::BTreeMap;

use bytes::Bytes;
use nubo_contracts::cart::{CartView, MAX_MERGED_LINES, MAX_QUANTITY, MergeCart};
use nubo_platform::auth::Caller;
use nubo_platform::axum::extract::State;
use nubo_platform::error::Json;
use nubo_platform::openapi::problems;
use nubo_platform::{ApiError, Context};

use crate::routes::{Cfg, cart_key, lookup, priced_cart, quantity, sku, stored_lines};

/// Bring a guest's cart into the signed-in customer's.
#[utoipa::path(
    post,
    path = "/api/v1/cart/merge",
    tag = "cart",
    request_body = MergeCart,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart as it is now; SKUs the catalog no longer sells were left out", body = CartView),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Invalid,
        problems::Internal,
        problems::Unavailable,
    )
)]
pub(crate) async fn merge(
    caller: Caller,
    State(ctx): State<Context>,
    cfg: Cfg,
    Json(input): Json<MergeCart>,
) -> Result<Json<CartView>, ApiError> {
    let config = &cfg.0;
    if input.lines.is_empty() || input.lines.len() > MAX_MERGED_LINES {
        return Err(ApiError::invalid(
            "lines",
            format!("a merge brings 1 to {MAX_MERGED_LINES} lines"),
        ));
    }
    // Checked whole before anything is written; a SKU twice counts with its larger quantity.
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for line in &input.lines {
        let (sku, quantity) = (sku(&line.sku)?, quantity(line.quantity)?);
        let entry = wanted.entry(sku).or_default();
        *entry = (*entry).max(quantity);
    }
    let key = cart_key(caller.user_id);
    let held = stored_lines(&ctx, caller.user_id).await?;
    for (sku, quantity) in wanted {
        let short = quantity.min(MAX_QUANTITY) - held.get(&sku).copied().unwrap_or(0);
        if short <= 0 || lookup(&ctx, &sku).await?.is_none() {
            continue;
        }
        let now = ctx
            .cache
            .hash_incr(&key, &sku, short, config.idle_ttl)
            .await
            .map_err(ApiError::internal)?;
        if now > MAX_QUANTITY {
            // An add raced this merge: the line holds the most it may.
            ctx.cache
                .hash_set(
                    &key,
                    &sku,
                    Bytes::from(MAX_QUANTITY.to_string()),
                    config.idle_ttl,
                )
                .await
                .map_err(ApiError::internal)?;
        }
    }
    Ok(Json(priced_cart(&ctx, config, caller.user_id).await?))
}
