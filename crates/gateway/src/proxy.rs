//! Forwarding a request to the service that owns its path, through the platform client.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use nubo_platform::axum::body::{Body, to_bytes};
use nubo_platform::axum::extract::{Request, State};
use nubo_platform::axum::http::{HeaderMap, HeaderValue, StatusCode};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::client::{ClientError, ServiceClient};
use nubo_platform::{ApiError, Context, Problem};

use crate::rate_limit::ClientAddress;
use crate::routes;

/// Headers that describe one hop, not the message, and so are never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

#[derive(Clone)]
pub struct Upstreams {
    clients: Arc<BTreeMap<&'static str, ServiceClient>>,
    body_limit: usize,
}

impl Upstreams {
    pub fn new(ctx: &Context) -> Self {
        let clients = crate::SERVICE
            .calls()
            .iter()
            .map(|name| (*name, ctx.client(name).clone()))
            .collect();
        Self {
            clients: Arc::new(clients),
            body_limit: ctx.settings.body_limit_bytes,
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

pub async fn forward(
    State(upstreams): State<Upstreams>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path().to_owned();
    // The gateway's own routes are answered before this; what reaches here is none of them.
    let Some(service) = routes::owner(&path).filter(|s| *s != crate::SERVICE.name) else {
        return Err(ApiError::NotFound(format!("no service serves {path}")));
    };
    let client = upstreams
        .clients
        .get(service)
        .ok_or_else(|| anyhow::anyhow!("no client for {service}"))?;
    let (parts, body) = request.into_parts();
    let body: Bytes = to_bytes(body, upstreams.body_limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the gateway accepts",
        )
    })?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or(&path);
    let mut upstream = http::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query)
        .body(body)
        .map_err(|e| ApiError::BadRequest(format!("cannot forward this request: {e}")))?;
    *upstream.headers_mut() = parts.headers;
    strip_hop_by_hop(upstream.headers_mut());
    // The client as the gateway saw it (or as its trusted proxy said), for identity's per-client
    // login limits; whatever the client claimed itself is replaced.
    if let Some(client) = parts.extensions.get::<ClientAddress>()
        && let Ok(value) = HeaderValue::from_str(&client.0)
    {
        upstream.headers_mut().insert("x-forwarded-for", value);
    }
    let response = client
        .send(upstream)
        .await
        .map_err(|e| unavailable(service, e))?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    Ok(out.into_response())
}

/// What a client of the gateway sees when the owner of its path cannot answer.
fn unavailable(service: &str, error: ClientError) -> ApiError {
    nubo_platform::tracing::warn!(upstream = service, error = %error, "upstream call failed");
    let problem = match error {
        ClientError::CircuitOpen { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{service} is unavailable; retry shortly"),
        )
        .with_kind("upstream-unavailable")
        .retry_after(5),
        // Refused or cut off on the way: a passing fault the client may retry.
        ClientError::Connect { .. } | ClientError::Transport { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{service} could not be reached; retry shortly"),
        )
        .with_kind("upstream-unreachable")
        .retry_after(1),
        ClientError::Timeout { .. } => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("{service} did not answer in time; retry shortly"),
        )
        .with_kind("upstream-timeout")
        .retry_after(1),
        _ => Problem::new(
            StatusCode::BAD_GATEWAY,
            format!("{service} failed to answer"),
        )
        .with_kind("upstream-failed"),
    };
    problem.into()
}
