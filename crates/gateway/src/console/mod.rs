//! The ops console at `/ops`: the service map with each service's health and live RED numbers,
//! their recent log lines, and the fault switches, for the shop's admins. The page and its two
//! assets are compiled in like the storefront's; its data comes from the admin routes below,
//! which fan out to every service's own snapshot and switch routes ([`nubo_platform::ops`]).

mod board;
mod logs;
mod overview;
mod prom;
mod switches;
mod traces;
mod watch;

use std::sync::Arc;

use http::{HeaderValue, header};
use nubo_platform::auth::bearer;
use nubo_platform::axum::extract::FromRef;
use nubo_platform::axum::http::HeaderMap;
use nubo_platform::axum::response::Response;
use nubo_platform::axum::routing::get;
use nubo_platform::axum::{self, Router};
use nubo_platform::openapi::Shared;
use nubo_platform::{Context, tokio};
use utoipa::OpenApi;
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
        .routes(routes!(overview::overview))
        .routes(routes!(logs::logs))
        .routes(routes!(traces::list))
        .routes(routes!(traces::one))
        .routes(routes!(board::board))
        .routes(routes!(switches::set_faults))
        .routes(routes!(switches::restore_all))
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

/// Sends `request` to `service` through the console's own client, with the watching admin's
/// token: every service authorizes the console's calls itself.
async fn as_admin(
    ctx: &Context,
    service: &str,
    mut request: http::Request<bytes::Bytes>,
    token: &str,
) -> Result<http::Response<bytes::Bytes>, String> {
    let client = ctx
        .console_client(service)
        .ok_or_else(|| format!("the gateway has no client for {service}"))?;
    if let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) {
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
    }
    client.send(request).await.map_err(|e| e.to_string())
}

fn token(headers: &HeaderMap) -> &str {
    bearer(headers).unwrap_or_default()
}
