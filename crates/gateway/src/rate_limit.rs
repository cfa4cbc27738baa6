//! Per-client rate limits: a fixed one-second window. Each gateway replica counts every
//! client's requests in memory and decides at once, with no call on the request's path. In
//! distributed mode the replicas add their counts up in Redis, in the background: a client's
//! count goes there on its first request of a second, then every [`SYNC_EVERY`] or every tenth
//! of its budget, whichever comes first, and what the other replicas counted comes back. So
//! every replica counts against the same budget, and a client can overrun it only by what other
//! replicas counted since they last added up (about a tenth of a second of its traffic). When
//! Redis fails the replica goes on with its own count rather than take the shop down with it.
//!
//! It used to be one Redis `INCR` per request: a round trip on every proxied request, which held
//! a distributed gateway to about 2,300 requests a second (deploy/kubernetes/RESOURCES.md).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nubo_platform::Context;
use nubo_platform::Problem;
use nubo_platform::axum::extract::{ConnectInfo, Request, State};
use nubo_platform::axum::http::{HeaderName, HeaderValue, StatusCode};
use nubo_platform::axum::middleware::Next;
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::config::Env;

use crate::{CLIENT_IP_HEADER, RATE_LIMIT_RPS};

/// How often at most a client's count is added up with the other replicas' while it keeps
/// sending (more often when it sends a tenth of its budget in less).
const SYNC_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Limits {
    per_second: i64,
    client_ip_header: Option<HeaderName>,
    windows: Arc<Mutex<Windows>>,
}

/// This replica's counts of the current second.
#[derive(Default)]
struct Windows {
    second: u64,
    clients: HashMap<String, Count>,
}

/// One client's requests in the current second.
#[derive(Default)]
struct Count {
    /// Counted by this replica.
    mine: i64,
    /// Of `mine`, what the shared count already holds (or is being added to it).
    synced: i64,
    /// What the other replicas had counted when this one last added up.
    others: i64,
    last_sync: Option<Instant>,
    syncing: bool,
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
            windows: Arc::default(),
        };
        env.finish()?;
        Ok(limits)
    }

    /// Counts a request of `client` in `second`: the client's requests in that second as far as
    /// this replica knows, over every replica; and, when `shared` and it is time, how much of
    /// this replica's count to add to the shared one.
    fn count(&self, client: &str, second: u64, shared: bool) -> (i64, Option<i64>) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.second != second {
            windows.second = second;
            windows.clients.clear();
        }
        let count = match windows.clients.get_mut(client) {
            Some(count) => count,
            None => windows.clients.entry(client.to_owned()).or_default(),
        };
        count.mine += 1;
        let used = count.mine + count.others;
        let batch = (self.per_second / 10).max(1);
        let due = shared
            && !count.syncing
            && (count.mine - count.synced >= batch
                || count.last_sync.is_none_or(|t| t.elapsed() >= SYNC_EVERY));
        if !due {
            return (used, None);
        }
        count.syncing = true;
        let delta = count.mine - count.synced;
        count.synced = count.mine;
        (used, Some(delta))
    }

    /// What adding `delta` to the shared count of `client` in `second` gave: the total over
    /// every replica, or `None` if it failed (the delta is then added with the next one).
    fn synced(&self, client: &str, second: u64, delta: i64, total: Option<i64>) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.second != second {
            return;
        }
        if let Some(count) = windows.clients.get_mut(client) {
            count.syncing = false;
            count.last_sync = Some(Instant::now());
            match total {
                Some(total) => count.others = (total - count.synced).max(0),
                None => count.synced -= delta,
            }
        }
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
    let (used, sync) = limits.count(&client, second, ctx.cache.is_shared());
    if let Some(delta) = sync {
        let limits = limits.clone();
        nubo_platform::tokio::spawn(async move {
            let key = format!("gateway:rate:{client}:{second}");
            let total = match ctx.cache.incr_by(&key, delta, Duration::from_secs(2)).await {
                Ok(total) => Some(total),
                Err(e) => {
                    nubo_platform::tracing::warn!(error = %e, "cannot add up the rate limit with the other gateway replicas; counting alone");
                    None
                }
            };
            limits.synced(&client, second, delta, total);
        });
    }
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
                // The storefront's folder: read where the routes are made.
                crate::storefront::DIR => "unset".to_owned(),
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
    fn a_replica_counts_alone_and_adds_up_with_the_others_now_and_then() {
        let limits = Limits::from_env(&vars(&[(RATE_LIMIT_RPS, "100")])).unwrap();
        // Alone (embedded): every request counted here, nothing to add up.
        for n in 1..=5 {
            assert_eq!(limits.count("a", 7, false), (n, None));
        }
        // A new second starts from nothing.
        assert_eq!(limits.count("a", 8, false), (1, None));

        // Shared: the first request of a client's second is added up at once.
        let limits = Limits::from_env(&vars(&[(RATE_LIMIT_RPS, "100")])).unwrap();
        assert_eq!(limits.count("b", 9, true), (1, Some(1)));
        // While that is under way, nothing more is sent.
        assert_eq!(limits.count("b", 9, true), (2, None));
        // The shared count says other replicas counted 40: they count against the budget.
        limits.synced("b", 9, 1, Some(41));
        assert_eq!(limits.count("b", 9, true).0, 43);
        // A tenth of the budget since the last sum sends it again, without waiting.
        let mut sent = None;
        for _ in 0..10 {
            if let (_, Some(delta)) = limits.count("b", 9, true) {
                sent = Some(delta);
                break;
            }
        }
        assert_eq!(sent, Some(10));
        // A failed sum is sent again with the next.
        limits.synced("b", 9, 10, None);
        std::thread::sleep(SYNC_EVERY);
        assert_eq!(limits.count("b", 9, true).1, Some(11));
        // A sum that comes back after its second has ended changes nothing.
        limits.synced("b", 8, 11, Some(1_000));
        assert!(limits.count("b", 9, true).0 < 100);
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
