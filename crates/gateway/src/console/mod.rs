//! The ops console at `/ops`: the service map with each service's health and live RED numbers,
//! their recent log lines, and the fault switches, for the shop's admins. The page and its two
//! assets are compiled in like the storefront's; its data comes from the admin routes below,
//! which fan out to every service's own snapshot and switch routes ([`nubo_platform::ops`]).

mod board;
mod prom;
mod traces;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use nubo_platform::auth::{Admin, bearer};
use nubo_platform::axum::extract::{FromRef, State};
use nubo_platform::axum::http::HeaderMap;
use nubo_platform::axum::response::Response;
use nubo_platform::axum::routing::get;
use nubo_platform::axum::{self, Router};
use nubo_platform::error::{Json, Path, Query};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::ops::{AuditEntry, FAULTS_PATH, FaultSettings, operator};
use nubo_platform::serde_json::{Value, json};
use nubo_platform::telemetry::window::LogLine;
use nubo_platform::{ApiError, Context, Problem, tokio};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use watch::Watch;

/// Every service the console shows: the gateway and each it calls.
pub static SERVICES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    std::iter::once(crate::SERVICE.name)
        .chain(crate::SERVICE.calls().iter().copied())
        .collect()
});

#[derive(Clone)]
pub struct Console {
    ctx: Context,
    watch: Arc<tokio::sync::Mutex<Watch>>,
}

impl FromRef<Console> for Context {
    fn from_ref(console: &Console) -> Self {
        console.ctx.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "ops", description = "The ops console's data and fault switches, for admins")),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The admin API's routes, each registered with its documented operation.
fn documented() -> OpenApiRouter<Console> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(overview))
        .routes(routes!(logs))
        .routes(routes!(traces::list))
        .routes(routes!(traces::one))
        .routes(routes!(board::board))
        .routes(routes!(set_faults))
        .routes(routes!(restore_all))
}

/// The gateway's part of the public API's document: the console's admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

/// The admin API under `/api/v1/admin/ops`, for the router's token-checked, rate-limited part.
pub fn api(ctx: Context) -> Router {
    let console = Console {
        ctx,
        watch: Arc::default(),
    };
    let (router, _) = documented().split_for_parts();
    router.with_state(console)
}

/// The page, whatever view its path names, and its two assets.
pub fn pages() -> Router {
    Router::new()
        .route("/ops", get(page))
        .route("/ops/", get(page))
        .route("/ops/{*view}", get(page))
        .route("/ops/ops.css", get(style))
        .route("/ops/ops.js", get(|| script(include_str!("ops.js"))))
        .route(
            "/ops/ops-map.js",
            get(|| script(include_str!("ops-map.js"))),
        )
        .route(
            "/ops/ops-logs.js",
            get(|| script(include_str!("ops-logs.js"))),
        )
        .route(
            "/ops/ops-traces.js",
            get(|| script(include_str!("ops-traces.js"))),
        )
        .route(
            "/ops/ops-faults.js",
            get(|| script(include_str!("ops-faults.js"))),
        )
        .route(
            "/ops/ops-board.js",
            get(|| script(include_str!("ops-board.js"))),
        )
}

/// The storefront's policy, and images from `data:` URLs for the map's icons.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn page() -> Response {
    asset("text/html; charset=utf-8", include_str!("ops.html"))
}

async fn script(body: &'static str) -> Response {
    asset("text/javascript; charset=utf-8", body)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("ops.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = crate::storefront::asset(content_type, body);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn token(headers: &HeaderMap) -> &str {
    bearer(headers).unwrap_or_default()
}

/// Every service's status, checks, switches and numbers over the last five minutes, the call
/// graph's edges and event flows with their traffic, the audit trail, and the windows' fill.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ops/overview",
    tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The shop as the console sees it", body = Value),
        problems::Unauthorized,
        problems::Forbidden,
    )
)]
async fn overview(
    _admin: Admin,
    State(console): State<Console>,
    headers: HeaderMap,
) -> Json<Value> {
    watch::refresh(&console.ctx, &console.watch, token(&headers)).await;
    let w = console.watch.lock().await;
    let mut services = Vec::new();
    let mut edges = Vec::new();
    let mut audit: Vec<AuditEntry> = Vec::new();
    let mut subjects: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in SERVICES.iter() {
        let Some(seen) = w.services.get(name) else {
            continue;
        };
        let s = seen.snapshot.as_ref();
        let status = match (&seen.unreachable, s) {
            (Some(_), _) | (None, None) => "unreachable",
            (None, Some(s)) if s.status == "not ready" => "not_ready",
            (None, Some(s)) => s.status.as_str(),
        };
        let now = seen.series.back();
        if let Some(s) = s {
            audit.extend(s.audit.iter().cloned());
            for c in &s.consumes {
                subjects.entry(c.subject.clone()).or_default().push(name);
            }
        }
        services.push(json!({
            "name": name,
            "instance": s.map(|s| s.instance.as_str()),
            "version": s.map(|s| s.version.as_str()),
            "started_at": s.map(|s| s.started_at),
            "uptime_seconds": s.map(|s| (s.taken_at - s.started_at).num_seconds()),
            "status": status,
            "replicas": s.map_or(&[][..], |s| &s.replicas),
            "error": seen.unreachable,
            "checks": s.map(|s| &s.checks),
            "calls": s.map_or(&[][..], |s| &s.calls),
            "publishes": s.map_or(&[][..], |s| &s.publishes),
            "consumes": s.map_or(&[][..], |s| &s.consumes),
            "faults": s.map(|s| &s.faults),
            "knobs": s.map_or(&[][..], |s| &s.knobs),
            "now": now.map(|p| json!({
                "rps": p.rps, "error_rate": p.error_rate, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms,
                "in_flight": p.in_flight, "pool_open": p.pool_open, "pool_idle": p.pool_idle,
                "outbox_backlog": p.outbox_backlog, "consumer_lag": p.consumer_lag,
                "breakers": w.breakers(name),
            })),
            "series": seen.series,
        }));
        if let Some(s) = s {
            for target in &s.calls {
                let flow = seen.flows.get(target).cloned().unwrap_or_default();
                edges.push(json!({
                    "from": name, "to": target, "kind": "http",
                    "rps": flow.rps, "error_rate": flow.error_rate, "p99_ms": flow.p99_ms,
                }));
            }
        }
    }
    // Event flows: from whoever publishes a subject to whoever consumes it.
    for name in SERVICES.iter() {
        let Some(s) = w.services.get(name).and_then(|s| s.snapshot.as_ref()) else {
            continue;
        };
        for published in &s.publishes {
            for (pattern, consumers) in &subjects {
                if subject_matches(pattern, published) {
                    for consumer in consumers {
                        edges.push(json!({
                            "from": name, "to": consumer, "kind": "event", "subject": published,
                        }));
                    }
                }
            }
        }
    }
    audit.sort_by_key(|a| std::cmp::Reverse(a.at));
    audit.truncate(100);
    let (lines, line_bytes) = nubo_platform::telemetry::window::usage();
    let (spans, span_bytes) = nubo_platform::telemetry::spans::usage();
    let (traces, kept_spans) = w.traces.usage();
    // What the windows hold now: this process's (every service's, embedded), and the
    // console's merged copies.
    let windows = json!({
        "process_logs": { "lines": lines, "bytes": line_bytes,
            "max_lines": nubo_platform::telemetry::window::WINDOW_LINES,
            "max_bytes": nubo_platform::telemetry::window::WINDOW_BYTES },
        "process_spans": { "spans": spans, "bytes": span_bytes,
            "max_spans": nubo_platform::telemetry::spans::WINDOW_SPANS,
            "max_bytes": nubo_platform::telemetry::spans::WINDOW_BYTES },
        "console": { "log_lines": w.logs.len(), "max_log_lines": watch::LOG_LINES,
            "traces": traces, "spans": kept_spans, "max_spans": traces::MAX_SPANS },
    });
    Json(json!({
        "windows": windows,
        "mode": match console.ctx.settings.mode() {
            nubo_platform::config::Mode::Embedded => "embedded",
            nubo_platform::config::Mode::Distributed => "distributed",
        },
        "sampled_every_seconds": 2,
        "services": services,
        "edges": edges,
        "audit": audit,
    }))
}

/// NATS subject matching: `*` is one token, `>` the rest.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogQuery {
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
enum Level {
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
async fn logs(
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
async fn set_faults(
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
async fn restore_all(
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
    let client = ctx
        .console_client(name)
        .ok_or_else(|| anyhow::anyhow!("the gateway has no client for {name}"))?;
    let body = nubo_platform::serde_json::to_vec(settings).map_err(ApiError::internal)?;
    let mut request = http::Request::put(FAULTS_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .map_err(ApiError::internal)?;
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let unreachable = |why: String| {
        ApiError::from(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{name} could not be reached to set its switches ({why}); retry shortly"),
            )
            .retry_after(1),
        )
    };
    let response = client
        .send(request)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
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
