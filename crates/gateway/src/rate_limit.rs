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
use nubo_platform::config::Env;

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

    pub fn from_env(vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut env = Env::from_pairs(vars.clone());
        let limits = Self {
            per_second: env.bounded(RATE_LIMIT_RPS, 100, 1_000_000) as i64,
            client_ip_header: env.optional(CLIENT_IP_HEADER),
        };
        env.finish()?;
        Ok(limits)
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

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_platform::config::vars;

    #[test]
    fn defaults_are_the_documented_ones() {
        let limits = Limits::from_env(&vars(&[])).unwrap();
        for (name, _, default) in crate::SERVICE.env {
            let value = match *name {
                RATE_LIMIT_RPS => limits.per_second.to_string(),
                CLIENT_IP_HEADER => limits
                    .client_ip_header
                    .as_ref()
                    .map_or("unset".to_owned(), ToString::to_string),
                other => panic!("{other} is not checked"),
            };
            assert_eq!(value, *default, "{name}");
        }
    }

    #[test]
    fn set_values_are_read() {
        let limits = Limits::from_env(&vars(&[
            (RATE_LIMIT_RPS, "1000000"),
            (CLIENT_IP_HEADER, "X-Forwarded-For"),
        ]))
        .unwrap();
        assert_eq!(limits.per_second, 1_000_000);
        assert_eq!(
            limits.client_ip_header,
            Some(HeaderName::from_static("x-forwarded-for"))
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (RATE_LIMIT_RPS, "0"),
            (RATE_LIMIT_RPS, "1000001"),
            (RATE_LIMIT_RPS, "-1"),
            (RATE_LIMIT_RPS, "lots"),
            (CLIENT_IP_HEADER, "not a header"),
        ] {
            let error = Limits::from_env(&vars(&[bad])).err().unwrap().to_string();
            assert!(error.contains(bad.0), "{bad:?}: {error}");
        }
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let error = Limits::from_env(&vars(&[(RATE_LIMIT_RPS, "0"), (CLIENT_IP_HEADER, "a b")]))
            .err()
            .unwrap()
            .to_string();
        for name in [RATE_LIMIT_RPS, CLIENT_IP_HEADER] {
            assert!(error.contains(name), "{error}");
        }
    }
}
