//! Per-client rate limits: a fixed one-second window counted in the cache, so in distributed
//! mode every gateway replica counts against the same budget in Redis. When the cache fails the
//! gateway lets requests through rather than take the shop down with it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nubo_platform::Context;
use nubo_platform::Problem;
use nubo_platform::axum::extract::{ConnectInfo, Request, State};
use nubo_platform::axum::http::{HeaderName, HeaderValue, StatusCode};
use nubo_platform::axum::middleware::Next;
use nubo_platform::axum::response::{IntoResponse, Response};

use crate::{CLIENT_IP_HEADER, RATE_LIMIT_RPS};

#[derive(Clone)]
pub struct Limits {
    per_second: i64,
    client_ip_header: Option<HeaderName>,
}

impl Limits {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(env: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let per_second = match env.get(RATE_LIMIT_RPS) {
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    anyhow::anyhow!("{RATE_LIMIT_RPS}: {raw:?} is not a number from 1 to 1000000")
                })?,
            None => 100,
        };
        let client_ip_header = match env.get(CLIENT_IP_HEADER) {
            Some(raw) => Some(HeaderName::try_from(raw.as_str()).map_err(|_| {
                anyhow::anyhow!("{CLIENT_IP_HEADER}: {raw:?} is not a header name")
            })?),
            None => None,
        };
        Ok(Self {
            per_second,
            client_ip_header,
        })
    }

    /// Who is asking: the peer address, or the first address in the trusted proxy's header.
    fn client(&self, request: &Request, peer: Option<SocketAddr>) -> String {
        let forwarded = self.client_ip_header.as_ref().and_then(|name| {
            let value = request.headers().get(name)?.to_str().ok()?;
            value.split(',').next()?.trim().parse::<IpAddr>().ok()
        });
        forwarded
            .or(peer.map(|p| p.ip()))
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

/// The client a request came from, as the rate limit saw it; forwarded as `x-forwarded-for`.
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

pub async fn enforce(
    State((ctx, limits)): State<(Context, Limits)>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = limits.client(&request, peer);
    request
        .extensions_mut()
        .insert(ClientAddress(client.clone()));
    let second = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let key = format!("gateway:rate:{client}:{second}");
    let used = match ctx.cache.incr(&key, Duration::from_secs(2)).await {
        Ok(n) => n,
        Err(e) => {
            nubo_platform::tracing::warn!(error = %e, "rate limit counter unavailable; letting the request through");
            return next.run(request).await;
        }
    };
    let remaining = (limits.per_second - used).max(0);
    let mut response = if used > limits.per_second {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("more than {} requests per second", limits.per_second),
        )
        .with_kind("rate-limited")
        .retry_after(1)
        .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("ratelimit-limit"),
        HeaderValue::from(limits.per_second),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-remaining"),
        HeaderValue::from(remaining),
    );
    response
}
