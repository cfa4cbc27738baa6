//! The merged recent log lines of every service, filtered.

use nubo_platform::ApiError;
use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::HeaderMap;
use nubo_platform::error::Json;
use nubo_platform::error::Query;
use nubo_platform::openapi::problems;
use nubo_platform::serde_json::{Value, json};
use nubo_platform::telemetry::window::LogLine;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Console, token, watch};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only this service's lines.
    service: Option<String>,
    /// The lowest level shown.
    level: Option<Level>,
    /// Only lines whose message or fields contain this text (any case).
    q: Option<String>,
    /// Only lines of this trace.
    trace_id: Option<String>,
    /// Only lines after this one: the previous answer's `next`.
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// 1 to 1000 (the newest that match).
    #[param(default = 200, minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

fn level_rank(level: &str) -> Option<u8> {
    match level.to_ascii_lowercase().as_str() {
        "error" => Some(0),
        "warn" => Some(1),
        "info" => Some(2),
        "debug" => Some(3),
        "trace" => Some(4),
        _ => None,
    }
}

/// The recent log lines of every service, oldest first, filtered.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ops/logs",
    tag = "ops",
    params(LogQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`lines` and `next`, the cursor for newer lines", body = Value),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Invalid,
    )
)]
pub async fn logs(
    _admin: Admin,
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let most = match query.level {
        Some(Level::Error) => 0,
        Some(Level::Warn) => 1,
        Some(Level::Info) => 2,
        Some(Level::Debug) => 3,
        Some(Level::Trace) | None => 4,
    };
    let limit = query.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 1000"));
    }
    let after = u64::try_from(query.after).map_err(|_| {
        ApiError::invalid(
            "after",
            "must be 0 or more: a `next` from an earlier answer",
        )
    })?;
    watch::refresh(&console.ctx, &console.watch, token(&headers)).await;
    let w = console.watch.lock().await;
    let text = query.q.as_deref().unwrap_or("").to_lowercase();
    let service = query.service.as_deref().filter(|s| !s.is_empty());
    let trace = query
        .trace_id
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let keep = |l: &LogLine| {
        service.is_none_or(|s| l.service == s)
            && level_rank(&l.level).is_some_and(|r| r <= most)
            && trace.is_none_or(|t| l.trace_id.as_deref() == Some(t))
            && (text.is_empty()
                || l.message.to_lowercase().contains(&text)
                || Value::Object(l.fields.clone())
                    .to_string()
                    .to_lowercase()
                    .contains(&text))
    };
    let mut lines: Vec<&LogLine> = w
        .logs
        .iter()
        .rev()
        .take_while(|l| l.seq > after)
        .filter(|l| keep(l))
        .take(limit)
        .collect();
    lines.reverse();
    Ok(Json(json!({ "lines": lines, "next": w.last_seq() })))
}
