//! Health probes: `/livez`, `/startupz` and `/readyz`.
//!
//! Start-up is a latch: each init step takes a [`Hold`] and the service has started once every
//! hold is released (migrations ran, connections are up). Ready means started, not draining for
//! shutdown, and every dependency check (database, bus, cache) answering now.

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
    checks: std::sync::RwLock<Vec<(&'static str, CheckFn)>>,
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

    /// Adds a dependency check run by every `/readyz`.
    pub fn add_check<F, Fut>(&self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let check: CheckFn = Arc::new(move || Box::pin(check()));
        self.inner
            .checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, check));
    }

    /// Runs every check concurrently, each bounded by a short timeout.
    pub async fn check(&self) -> Vec<(&'static str, bool)> {
        let checks = self
            .inner
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let service = self.inner.service.clone();
        futures::future::join_all(checks.into_iter().map(|(name, check)| {
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
                (name, ok)
            }
        }))
        .await
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
    let status = if !health.started() {
        "starting"
    } else if health.draining() {
        "draining"
    } else {
        ""
    };
    if !status.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": status })),
        )
            .into_response();
    }
    let results = health.check().await;
    let ready = results.iter().all(|(_, ok)| *ok);
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, ok)| (name.to_owned(), json!(if ok { "ok" } else { "failing" })))
        .collect();
    let (code, status) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (
        code,
        axum::Json(json!({ "status": status, "checks": checks })),
    )
        .into_response()
}
