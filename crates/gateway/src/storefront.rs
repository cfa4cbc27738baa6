//! The storefront: a single-page shop (browse, search, account, cart, checkout, my orders) in
//! plain HTML, CSS and script over the public API on the same origin, served by the gateway so
//! `nubo up` has something to open in a browser. The three files are compiled in; there is no
//! build step and nothing is fetched from anywhere else, so the page works offline.

use http::{HeaderValue, header};
use nubo_platform::axum::Router;
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::get;

/// Only this origin's own files, and calls to its own API: no inline script or style, no
/// framing, no form posted elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page and its two assets, none behind a token or a rate limit.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(page))
        .route("/storefront.js", get(script))
        .route("/storefront.css", get(style))
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", include_str!("storefront.html"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("storefront.js"),
    )
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("storefront.css"))
}

pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // A new binary serves new files: revalidate rather than run a stale script.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
