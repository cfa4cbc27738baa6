//! The public API's OpenAPI 3.1 document, served at `GET /api/openapi.json` without a token and
//! outside the rate limit. Each service generates its own part from its handlers (where every
//! public route is registered together with its documented operation); `nubo openapi` merges
//! them where the services are composed, adds what the gateway answers itself on any route
//! ([`GATEWAY_PROBLEMS`]), and writes `crates/gateway/openapi.json`, which the gateway serves. A
//! test fails when that file and the code disagree, so the gateway depends on no service crate
//! and its document still cannot drift from the handlers.

use nubo_platform::axum::http::header;
use nubo_platform::axum::response::{IntoResponse, Response};

pub const PATH: &str = "/api/openapi.json";

/// The document as `nubo openapi` generated it from the services' handlers.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// What the gateway itself may answer on any route, before or instead of the service behind.
pub const GATEWAY_PROBLEMS: &[(u16, &str)] = &[
    (
        400,
        "The path is not in normal form (dot segments, encoded or doubled slashes, backslashes, \
         semicolons, control characters, needless or double percent-encoding, invalid UTF-8).",
    ),
    (
        401,
        "A bearer token was sent and is not valid (the gateway checks every token it sees).",
    ),
    (
        429,
        "More requests per second than this client may send; try again after `Retry-After` seconds.",
    ),
    (
        502,
        "The service behind this route answered something the gateway cannot pass on.",
    ),
    (
        503,
        "The service behind this route is unavailable or could not be reached; try again after \
         `Retry-After` seconds.",
    ),
    (
        504,
        "The service behind this route did not answer in time; try again after `Retry-After` \
         seconds.",
    ),
];

pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
