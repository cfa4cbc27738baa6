//! The fault switches through the console: one service's, or every one off ("restore all").
//! The gateway sets its own; any other service's through that service's own route, with the
//! admin's token.

use bytes::Bytes;
use http::{StatusCode, header};
use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::HeaderMap;
use nubo_platform::error::Json;
use nubo_platform::error::Path;
use nubo_platform::openapi::problems;
use nubo_platform::ops::{FAULTS_PATH, FaultSettings, operator};
use nubo_platform::serde_json::{Value, json};
use nubo_platform::{ApiError, Context, Problem};

use super::{Console, SERVICES, token};

/// Sets one service's fault switches for every replica of it; the switches left out are off.
#[utoipa::path(
    put,
    path = "/api/v1/admin/ops/faults/{service}",
    tag = "ops",
    params(("service" = String, Path, description = "The service's name (gateway, identity, catalog, cart, inventory, orders, payments, notifications)")),
    request_body = FaultSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`service` and its `faults` as now set", body = Value),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Invalid,
        problems::Unavailable,
    )
)]
pub async fn set_faults(
    admin: Admin,
    State(console): State<Console>,
    headers: HeaderMap,
    Path(service): Path<String>,
    Json(settings): Json<FaultSettings>,
) -> Result<Json<Value>, ApiError> {
    let Some(name) = SERVICES.iter().find(|s| **s == service) else {
        return Err(ApiError::NotFound(format!(
            "no service is called {service}"
        )));
    };
    let faults = switch(&console.ctx, &admin, name, &settings, token(&headers)).await?;
    Ok(Json(json!({ "service": name, "faults": faults })))
}

/// Turns every switch of every service off ("restore all").
#[utoipa::path(
    delete,
    path = "/api/v1/admin/ops/faults",
    tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`restored`: every service whose switches are off", body = Value),
        problems::Unauthorized,
        problems::Forbidden,
        problems::Unavailable,
    )
)]
pub async fn restore_all(
    admin: Admin,
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let off = FaultSettings::default();
    let token = token(&headers);
    let tries = SERVICES
        .iter()
        .map(|name| async { (*name, switch(&console.ctx, &admin, name, &off, token).await) });
    let mut restored = Vec::new();
    let mut failed = Vec::new();
    for (name, result) in nubo_platform::futures::future::join_all(tries).await {
        match result {
            Ok(_) => restored.push(name),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    if !failed.is_empty() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "some switches could not be turned off; retry: {}",
                failed.join("; ")
            ),
        )
        .retry_after(1)
        .into());
    }
    Ok(Json(json!({ "restored": restored })))
}

/// Sets `name`'s switches: the gateway's here, any other's through its own route.
async fn switch(
    ctx: &Context,
    admin: &Admin,
    name: &str,
    settings: &FaultSettings,
    token: &str,
) -> Result<FaultSettings, ApiError> {
    if name == crate::SERVICE.name {
        ctx.ops
            .set_faults(&operator(admin), settings.clone())
            .await?;
        return Ok(ctx.ops.faults());
    }
    let body = nubo_platform::serde_json::to_vec(settings).map_err(ApiError::internal)?;
    let request = http::Request::put(FAULTS_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .map_err(ApiError::internal)?;
    let unreachable = |why: String| {
        ApiError::from(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{name} could not be reached to set its switches ({why}); retry shortly"),
            )
            .retry_after(1),
        )
    };
    let response = super::as_admin(ctx, name, request, token)
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if status.is_success() {
        return nubo_platform::serde_json::from_slice(response.body())
            .map_err(|e| unreachable(format!("unreadable answer: {e}")));
    }
    if status.is_client_error() {
        // The service's own refusal (a value out of range, a token it does not accept).
        let problem: Problem = nubo_platform::serde_json::from_slice(response.body())
            .unwrap_or_else(|_| Problem::status(status));
        return Err(problem.into());
    }
    Err(unreachable(format!("it answered {status}")))
}
