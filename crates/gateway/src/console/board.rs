//! The checkout board: where the shop's checkouts are. Sagas by state and the stuck count (from
//! orders' gauges), checkouts by outcome, reservations holding stock, every outbox's backlog,
//! every subscription's lag and dead letters (from each service's latest scrape), and the
//! orders that need a look: unfinished ones, oldest first, with their last step and reason
//! (from orders' admin API, with the watching admin's token).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::HeaderMap;
use nubo_platform::chrono::Utc;
use nubo_platform::error::Json;
use nubo_platform::serde_json::{self, Value, json};
use nubo_platform::{ApiError, Context};

use super::prom::{label, samples};
use super::{Console, token};

/// An unfinished order that has not moved for this long is flagged.
const SLOW_AFTER: Duration = Duration::from_secs(60);
/// Unfinished orders shown per status.
const ATTENTION: usize = 50;

/// Where the shop's checkouts are: sagas by state, checkouts by outcome, stock held, outbox
/// backlogs, subscriptions' lag and dead letters, and the unfinished orders.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ops/checkouts",
    tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The checkout board", body = Value),
        nubo_platform::openapi::problems::Unauthorized,
        nubo_platform::openapi::problems::Forbidden,
    )
)]
pub async fn board(
    _admin: Admin,
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = token(&headers);
    super::watch::refresh(&console.ctx, &console.watch, token).await;
    let (pending, cancelling) = futures_pair(
        unfinished(&console.ctx, "pending", token),
        unfinished(&console.ctx, "cancelling", token),
    )
    .await;
    let w = console.watch.lock().await;
    let mut in_progress = BTreeMap::new();
    let mut checkouts = BTreeMap::new();
    let mut stuck = None;
    let mut held = None;
    let mut outbox = Vec::new();
    let mut consumers: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for (name, seen) in &w.services {
        let Some(snapshot) = &seen.snapshot else {
            continue;
        };
        let mut backlog = None;
        for (metric, labels, value) in samples(&snapshot.metrics) {
            let by = |key| label(&labels, key).unwrap_or("").to_owned();
            match metric {
                "nubo_sagas_in_progress" => {
                    in_progress.insert(by("state"), value);
                }
                "nubo_sagas_stuck" => stuck = Some(value),
                "nubo_checkouts_total" => {
                    checkouts.insert(by("outcome"), value);
                }
                "nubo_reservations_held" => held = Some(value),
                "nubo_outbox_backlog" => backlog = Some(value),
                "nubo_consumer_lag" => {
                    let c = consumers
                        .entry((name.to_string(), by("consumer")))
                        .or_default();
                    c.insert("lag".into(), value);
                }
                "nubo_events_handled_total" => {
                    let c = consumers
                        .entry((name.to_string(), by("consumer")))
                        .or_default();
                    *c.entry(by("outcome")).or_default() += value;
                }
                _ => {}
            }
        }
        if let Some(backlog) = backlog {
            outbox.push(json!({ "service": name, "backlog": backlog }));
        }
    }
    let consumers: Vec<Value> = consumers
        .into_iter()
        .map(|((service, consumer), counts)| {
            let n = |k: &str| counts.get(k).copied().unwrap_or(0.0);
            json!({
                "service": service, "consumer": consumer, "lag": n("lag"),
                "handled": n("handled"), "duplicates": n("duplicate"), "retried": n("retry"),
                "dead_lettered": n("dead_lettered"),
            })
        })
        .collect();
    let mut errors = Vec::new();
    let mut attention = Vec::new();
    for result in [pending, cancelling] {
        match result {
            Ok(orders) => attention.extend(orders),
            Err(e) => errors.push(e),
        }
    }
    attention.sort_by(|a, b| a["updated_at"].as_str().cmp(&b["updated_at"].as_str()));
    Ok(Json(json!({
        "sagas": { "in_progress": in_progress, "stuck": stuck },
        "checkouts": checkouts,
        "reservations_held": held,
        "outbox": outbox,
        "consumers": consumers,
        "attention": attention,
        "slow_after_seconds": SLOW_AFTER.as_secs(),
        "errors": errors,
    })))
}

async fn futures_pair<A, B>(
    a: impl std::future::Future<Output = A>,
    b: impl std::future::Future<Output = B>,
) -> (A, B) {
    nubo_platform::futures::future::join(a, b).await
}

/// Orders in `status`, each with its last step and whether it has stopped moving.
async fn unfinished(ctx: &Context, status: &str, token: &str) -> Result<Vec<Value>, String> {
    let request = http::Request::get(format!(
        "/api/v1/admin/orders?status={status}&limit={ATTENTION}"
    ))
    .body(Bytes::new())
    .map_err(|e| e.to_string())?;
    let response = super::as_admin(ctx, "orders", request, token)
        .await
        .map_err(|e| format!("orders could not be asked for {status} orders: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "orders answered {} for {status} orders",
            response.status()
        ));
    }
    let page: Value = serde_json::from_slice(response.body())
        .map_err(|e| format!("orders' page of {status} orders: {e}"))?;
    let now = Utc::now();
    Ok(page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|order| {
                    let last = order["steps"].as_array().and_then(|s| s.last()).cloned();
                    let moved = order["updated_at"]
                        .as_str()
                        .and_then(|t| t.parse::<nubo_platform::chrono::DateTime<Utc>>().ok());
                    let slow =
                        moved.is_some_and(|t| (now - t).to_std().unwrap_or_default() > SLOW_AFTER);
                    json!({
                        "order_id": order["order_id"],
                        "user_id": order["user_id"],
                        "status": order["status"],
                        "state": order["state"],
                        "total": order["total"],
                        "cancel_reason": order["cancel_reason"],
                        "created_at": order["created_at"],
                        "updated_at": order["updated_at"],
                        "last_step": last,
                        "slow": slow,
                    })
                })
                .collect()
        })
        .unwrap_or_default())
}
