//! Health probes: `/livez`, `/startupz` and `/readyz`.
//!
//! Start-up is a latch: each init step takes a [`Hold`] and the service has started once every
//! hold is released (migrations ran, connections are up). Ready means this replica can do useful
//! work: started, not draining for shutdown, and every dependency it cannot serve without
//! answering now ([`Need::Required`]: its database, and the cache where the cache holds its
//! data). Other dependencies (the bus, a cache that only speeds reads up) are reported: while
//! one is down the answer is 200 `degraded`, so one Redis or NATS restart does not take every
//! service of the shop out of its load balancer at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use serde_json::json;

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    holds: AtomicUsize,
    draining: AtomicBool,
    checks: std::sync::RwLock<Vec<(&'static str, Need, CheckFn)>>,
}

/// Whether a failing check makes the replica unready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The replica cannot do useful work without it.
    Required,
    /// Reported in `/readyz` (status `degraded`), but the replica still serves: the outbox
    /// holds events while the bus is away, and a cache that only speeds things up is missed,
    /// not needed. Taking every replica out of service for it would stop the whole shop at once.
    Reported,
}

/// Keeps the service from counting as started until dropped.
pub struct Hold {
    inner: Arc<Inner>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.inner.holds.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Health {
    pub fn new(service: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                holds: AtomicUsize::new(0),
                draining: AtomicBool::new(false),
                checks: std::sync::RwLock::new(Vec::new()),
            }),
        }
    }

    pub fn hold(&self) -> Hold {
        self.inner.holds.fetch_add(1, Ordering::SeqCst);
        Hold {
            inner: self.inner.clone(),
        }
    }

    pub fn started(&self) -> bool {
        self.inner.holds.load(Ordering::SeqCst) == 0
    }

    /// From now on the service reports not ready, so load balancers stop sending it traffic.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Adds a dependency check run by every `/readyz`; `need` says whether its failing makes
    /// the replica unready.
    pub fn add_check<F, Fut>(&self, name: &'static str, need: Need, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let check: CheckFn = Arc::new(move || Box::pin(check()));
        self.inner
            .checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, need, check));
    }

    /// Runs every check concurrently, each bounded by a short timeout.
    pub async fn check(&self) -> Vec<(&'static str, Need, bool)> {
        let checks = self
            .inner
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let service = self.inner.service.clone();
        futures::future::join_all(checks.into_iter().map(|(name, need, check)| {
            let service = service.clone();
            async move {
                let ok = match tokio::time::timeout(Duration::from_secs(2), check()).await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::warn!(
                            service,
                            check = name,
                            error = format!("{e:#}"),
                            "readiness check failing"
                        );
                        false
                    }
                    Err(_) => {
                        tracing::warn!(service, check = name, "readiness check timed out");
                        false
                    }
                };
                (name, need, ok)
            }
        }))
        .await
    }

    /// What `/readyz` answers: starting, draining, ready, degraded (a reported dependency is
    /// down) or not ready (a required one is), with every check's result once started.
    pub async fn status(&self) -> (&'static str, Vec<(&'static str, Need, bool)>) {
        if !self.started() {
            return ("starting", Vec::new());
        }
        if self.draining() {
            return ("draining", Vec::new());
        }
        let results = self.check().await;
        let status = if results.iter().all(|(_, _, ok)| *ok) {
            "ready"
        } else if results
            .iter()
            .all(|(_, need, ok)| *ok || *need == Need::Reported)
        {
            "degraded"
        } else {
            "not ready"
        };
        (status, results)
    }

    pub fn routes(&self) -> Router {
        Router::new()
            .route(
                "/livez",
                get(|| async { axum::Json(json!({ "status": "alive" })) }),
            )
            .route("/startupz", get(startupz))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }
}

async fn startupz(State(health): State<Health>) -> Response {
    if health.started() {
        (StatusCode::OK, axum::Json(json!({ "status": "started" }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "starting" })),
        )
            .into_response()
    }
}

async fn readyz(State(health): State<Health>) -> Response {
    let (status, results) = health.status().await;
    if results.is_empty() && matches!(status, "starting" | "draining") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": status })),
        )
            .into_response();
    }
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, _, ok)| (name.to_owned(), json!(if ok { "ok" } else { "failing" })))
        .collect();
    let code = if status == "not ready" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        axum::Json(json!({ "status": status, "checks": checks })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::{Health, Need};

    async fn readyz(health: &Health) -> (u16, serde_json::Value) {
        let response = health
            .routes()
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_reported_dependency_that_is_down_leaves_the_replica_ready_but_degraded() {
        let health = Health::new("orders");
        health.add_check("database", Need::Required, || async { Ok(()) });
        health.add_check("bus", Need::Reported, || async {
            anyhow::bail!("NATS is restarting")
        });
        let (status, body) = readyz(&health).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["checks"]["bus"], "failing");
        assert_eq!(body["checks"]["database"], "ok");
    }

    #[tokio::test]
    async fn a_required_dependency_that_is_down_makes_the_replica_unready() {
        let health = Health::new("cart");
        health.add_check("database", Need::Required, || async { Ok(()) });
        health.add_check("cache", Need::Required, || async {
            anyhow::bail!("Redis is restarting")
        });
        let (status, body) = readyz(&health).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not ready");
        assert_eq!(body["checks"]["cache"], "failing");

        let all_up = Health::new("cart");
        all_up.add_check("cache", Need::Required, || async { Ok(()) });
        assert_eq!(readyz(&all_up).await.1["status"], "ready");
    }
}
