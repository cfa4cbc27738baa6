//! The HTTP server every service runs: one tower stack, assembled here and only here, and a
//! graceful shutdown.
//!
//! Outer to inner, with why each layer sits where it does:
//! 1. `rescue`: any error response an inner layer or axum wrote as plain text (unknown route,
//!    wrong method, body too large) becomes problem+json, so every error a client sees has one
//!    shape.
//! 2. request id: set `x-request-id` if the client sent none, and echo it, before anything logs.
//! 3. probes and `/metrics` branch off here: under load shedding a probe must still answer, and
//!    scrapes should not count as traffic. A service at the public edge (the gateway) serves them
//!    on a port of their own instead ([`ops`]), never on the port the internet reaches.
//! 4. `observe`: the request's span (continuing the caller's trace), RED metrics and in-flight
//!    gauge; outside the layers below so shed, timed-out and panicked requests are counted too.
//! 5. the request body, read whole (up to the body limit, within the request deadline, at most
//!    as many at once as the concurrency limit) before anything else may answer: a client still
//!    sending its body when a layer answers early (an abnormal path, a bad token, an unknown
//!    route, a wrong method) would otherwise have the connection closed under it and never see
//!    the answer. Oversized bodies are refused here with 413.
//! 6. the path's normal form ([`path`]): a path that could mean two things is refused before any
//!    router reads it, and the refusal is counted like any other answer.
//! 7. internal routes (`/internal/...`) admit only a service that proved who it is with a
//!    client certificate ([`crate::tls::Peer`]) and that the call graph lets call this one
//!    (401 without a certificate, 403 for any other service, with a log line naming it).
//! 8. the operator's fault switches ([`crate::ops::faults`]): after the checks above, so an
//!    injected failure looks to callers and metrics like the service's own.
//! 9. panic to 500: a bug in one handler answers 500 instead of dropping the connection.
//! 10. load shedding over a concurrency limit: past the limit, answer 503 with `Retry-After` at
//!     once rather than queue without bound.
//! 11. timeout: a handler past its deadline is dropped and answered 503.
//!
//! Connections are accepted in [`listen`]: header and idle timeouts, bounded connections.

mod listen;
pub mod path;

pub use listen::{ConnectionLimits, Serving, raise_open_file_limit, serve};

use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;

use crate::error::{PROBLEM_JSON, Problem};
use crate::health::Health;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::tls::Peer;

pub const REQUEST_ID: &str = "x-request-id";
pub const TRACE_ID: &str = "x-trace-id";

/// What the stack needs to know about the service it serves.
#[derive(Clone)]
pub struct StackConfig {
    pub service: &'static str,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub concurrency_limit: usize,
    pub faults: crate::ops::Faults,
}

/// Prepares a service's own router: labels responses with the route that matched (so metrics
/// are by route, not raw path) and answers unknown routes with a problem.
pub fn label_routes(router: Router) -> Router {
    router
        .route_layer(middleware::from_fn(remember_route))
        .fallback(unknown_route)
}

/// Wraps a service's router in the platform's stack and, unless `probes` is false (they are
/// served by [`ops`] on a port of their own), adds `/livez`, `/readyz`, `/startupz` and
/// `/metrics`.
pub fn stack(
    app: Router,
    config: &StackConfig,
    health: &Health,
    metrics: &Metrics,
    probes: bool,
) -> Router {
    let app = app.layer(DefaultBodyLimit::max(config.body_limit_bytes));
    let guarded = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            (config.service, metrics.clone()),
            observe,
        ))
        .layer(middleware::from_fn_with_state(
            BodyReading::new(config),
            read_body,
        ))
        .layer(middleware::from_fn(path::refuse_abnormal))
        .layer(middleware::from_fn_with_state(
            config.service,
            admit_internal,
        ))
        .layer(middleware::from_fn_with_state(
            config.faults.clone(),
            crate::ops::faults::inject,
        ))
        .layer(CatchPanicLayer::custom(panic_to_problem))
        .layer(HandleErrorLayer::new(overload_to_problem))
        .load_shed()
        .concurrency_limit(config.concurrency_limit)
        .timeout(config.request_timeout)
        .service(app);
    let router = if probes {
        probe_routes(health, metrics)
    } else {
        Router::new()
    };
    outer(router.fallback_service(guarded))
}

/// What reading request bodies is bounded by: their size, their time, and how many at once.
#[derive(Clone)]
struct BodyReading {
    limit: usize,
    deadline: Duration,
    at_once: std::sync::Arc<tokio::sync::Semaphore>,
}

impl BodyReading {
    fn new(config: &StackConfig) -> Self {
        Self {
            limit: config.body_limit_bytes,
            deadline: config.request_timeout,
            at_once: std::sync::Arc::new(tokio::sync::Semaphore::new(config.concurrency_limit)),
        }
    }
}

/// Reads the request body whole before anything else may answer (see the module's list, 5).
async fn read_body(State(reading): State<BodyReading>, request: Request, next: Next) -> Response {
    let limit = reading.limit;
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(request).await;
    }
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the {limit} bytes this service accepts"),
        )
        .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    // As many bodies in memory at once as requests may be in flight; past that, shed.
    let Ok(permit) = reading.at_once.clone().try_acquire_owned() else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is overloaded; retry shortly",
        )
        .retry_after(1)
        .into_response();
    };
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(reading.deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            drop(permit);
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(e)) if over_limit(&e) => too_large(),
        Ok(Err(_)) => Problem::new(
            StatusCode::BAD_REQUEST,
            "the request body could not be read to its end",
        )
        .into_response(),
        Err(_) => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )
        .into_response(),
    }
}

fn over_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The router of an ops port: the probes and `/metrics`, and nothing else.
pub fn ops(health: &Health, metrics: &Metrics) -> Router {
    // The edge's ops port also takes OTLP traces for the ops console (never the public port).
    let otlp = Router::new()
        .route(
            crate::ops::otlp::PATH,
            axum::routing::post(crate::ops::otlp::receive),
        )
        .layer(DefaultBodyLimit::max(crate::ops::otlp::BODY_LIMIT));
    outer(
        probe_routes(health, metrics)
            .merge(otlp)
            .fallback(unknown_route),
    )
}

fn probe_routes(health: &Health, metrics: &Metrics) -> Router {
    Router::new()
        .merge(health.routes())
        .route("/metrics", get(metrics_text).with_state(metrics.clone()))
}

/// The layers every answer passes through, probes included.
fn outer(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::map_response(rescue))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}

#[derive(Clone)]
struct RouteTaken(String);

async fn remember_route(path: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let route = path.map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTaken(route));
    }
    response
}

async fn observe(
    State((service, metrics)): State<(&'static str, Metrics)>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http.request",
        service,
        method = %method,
        path = %request.uri().path(),
        request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or(""),
        status = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        // The signed-in caller's id, once a token names one: traces are searchable by user.
        user = tracing::field::Empty,
        otel.kind = "server",
    );
    let trace_id = crate::telemetry::continue_trace_from_headers(&span, request.headers());
    metrics.http_in_flight.inc();
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    metrics.http_in_flight.dec();
    let status = response.status();
    span.record("status", status.as_u16());
    let route = response
        .extensions()
        .get::<RouteTaken>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.clone(),
            status: status.as_u16(),
        })
        .inc();
    metrics
        .http_duration
        .get_or_create(&RouteLabels {
            method: method.to_string(),
            route,
        })
        .observe(started.elapsed().as_secs_f64());
    if status.is_server_error() {
        span.in_scope(|| tracing::warn!(status = status.as_u16(), "request failed"));
    }
    // A proxied response already carries the upstream's trace id, which is the same trace.
    if !response.headers().contains_key(TRACE_ID)
        && let Some(id) = trace_id.and_then(|t| HeaderValue::from_str(&t).ok())
    {
        response.headers_mut().insert(TRACE_ID, id);
    }
    response
}

/// Lets an internal call through only from a service the call graph lets call `callee`.
async fn admit_internal(
    State(callee): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !(path == "/internal" || path.starts_with("/internal/")) {
        return next.run(request).await;
    }
    match request.extensions().get::<Peer>() {
        Some(Peer::Service(caller)) if crate::config::may_call_internal(caller, callee) => {
            next.run(request).await
        }
        Some(Peer::Service(caller)) => {
            tracing::warn!(
                caller = %caller,
                callee,
                method = %request.method(),
                path,
                "refused an internal call from a service the call graph does not let call this one"
            );
            Problem::new(
                StatusCode::FORBIDDEN,
                format!("{caller} may not call the internal routes of {callee}"),
            )
            .with_kind("caller-not-allowed")
            .into_response()
        }
        _ => Problem::new(
            StatusCode::UNAUTHORIZED,
            "internal routes answer only nubo services, over mutual TLS with a client certificate",
        )
        .with_kind("client-certificate-required")
        .into_response(),
    }
}

async fn metrics_text(State(metrics): State<Metrics>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// What every route nobody serves answers: a 404 problem naming the method and path.
pub async fn unknown_route(request: Request) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

fn panic_to_problem(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "something went wrong on our side",
    )
    .into_response()
}

async fn overload_to_problem(error: tower::BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is at capacity; retry shortly",
        )
        .with_kind("overloaded")
        .retry_after(1)
        .into_response();
    }
    if error.is::<tower::timeout::error::Elapsed>() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took longer than this service allows",
        )
        .with_kind("timeout")
        .retry_after(1)
        .into_response();
    }
    tracing::error!(error = %error, "unhandled middleware error");
    Problem::status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// Turns error responses that are not already JSON into problem documents.
/// Marks an error answer that is a page for people (the storefront's "page not found"), which
/// the stack passes on as it is instead of turning it into a problem.
#[derive(Clone, Copy, Debug)]
pub struct ErrorPage;

async fn rescue(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<ErrorPage>().is_some()
    {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON) || ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this service accepts".to_owned()
        }
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "expected `Content-Type: application/json`".to_owned()
        }
        _ => String::new(),
    };
    let (parts, _) = response.into_parts();
    let mut problem = if detail.is_empty() {
        Problem::status(status)
    } else {
        Problem::new(status, detail)
    };
    if let Some(secs) = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
    {
        problem = problem.retry_after(secs);
    }
    let mut rescued = problem.into_response();
    for name in [header::ALLOW, header::HeaderName::from_static(REQUEST_ID)] {
        if let Some(value) = parts.headers.get(&name) {
            rescued.headers_mut().insert(name, value.clone());
        }
    }
    rescued
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
