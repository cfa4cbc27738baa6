//! What the ops console reads from each service and the switches it flips there. Every service
//! serves two admin routes, through the gateway's console only: a snapshot of itself (identity,
//! health, metrics text, its recent log lines, its switches and their audit trail) and its fault
//! switches. They are public admin routes, not internal ones: the console acts for a signed-in
//! admin, whose token each service checks itself, and the gateway never calls internal routes.

pub mod faults;
pub mod otlp;
pub mod shared;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use axum::http::StatusCode;

use crate::auth::Admin;
use crate::cache::Cache;
use crate::error::Problem;
use crate::error::{ApiError, Json, Query};
use crate::health::{Health, Need};
use crate::metrics::Metrics;
use crate::service::{Consumes, Context, ServiceDescription};
use crate::telemetry::spans::{self, SpanRecord};
use crate::telemetry::window::{self, LogLine};

pub use faults::{FaultSettings, Faults, Knob};

pub const SNAPSHOT_PATH: &str = "/api/v1/admin/ops/snapshot";
pub const FAULTS_PATH: &str = "/api/v1/admin/ops/faults";
/// Lines one snapshot carries at most; the console asks again for the rest.
const SNAPSHOT_LINES: usize = 1_000;
/// Spans one snapshot carries at most.
const SNAPSHOT_SPANS: usize = 5_000;
/// Switches remembered per replica.
const AUDIT_ENTRIES: usize = 50;

pub use shared::FOLLOW_EVERY;

/// One health check's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub required: bool,
}

/// Who flipped a switch, when, and to what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub who: String,
    pub service: String,
    pub what: String,
}

/// A service as its console sees it at one moment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub service: String,
    pub instance: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub taken_at: DateTime<Utc>,
    /// ready, degraded, not ready, starting or draining.
    pub status: String,
    /// Every replica of the service heard from lately (this one included).
    #[serde(default)]
    pub replicas: Vec<shared::ReplicaView>,
    pub checks: Vec<Check>,
    pub calls: Vec<String>,
    pub publishes: Vec<String>,
    pub consumes: Vec<ConsumesView>,
    pub knobs: Vec<KnobView>,
    pub faults: FaultSettings,
    pub audit: Vec<AuditEntry>,
    /// The service's `/metrics`, as Prometheus would scrape it.
    pub metrics: String,
    pub logs: Vec<LogLine>,
    /// Finished spans kept by this process after the cursor asked for.
    #[serde(default)]
    pub spans: Vec<SpanRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsumesView {
    pub durable: String,
    pub subject: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnobView {
    pub name: String,
    pub meaning: String,
    pub min: f64,
    pub max: f64,
    pub unit: String,
}

/// What a service's console routes work with.
#[derive(Clone)]
pub struct Ops(Arc<OpsInner>);

struct OpsInner {
    desc: &'static ServiceDescription,
    instance: String,
    started_at: DateTime<Utc>,
    health: Health,
    metrics: Metrics,
    faults: Faults,
    audit: Mutex<Vec<AuditEntry>>,
    /// Where the service's switches are kept for all its replicas.
    cache: Cache,
    /// Whether every service shares this process (and so its span window).
    embedded: bool,
}

impl Ops {
    pub fn new(
        desc: &'static ServiceDescription,
        health: Health,
        metrics: Metrics,
        faults: Faults,
        cache: Cache,
        embedded: bool,
    ) -> Self {
        Self(Arc::new(OpsInner {
            desc,
            instance: instance(),
            started_at: Utc::now(),
            health,
            metrics,
            faults,
            audit: Mutex::new(Vec::new()),
            cache,
            embedded,
        }))
    }

    /// The service now, with its log lines after `logs_after` and its process's spans after
    /// `spans_after`. Embedded, every service shares one window and the edge alone answers
    /// with it; otherwise each process answers with its own.
    pub async fn snapshot(&self, logs_after: u64, spans_after: u64) -> Snapshot {
        let o = &self.0;
        let desc = o.desc;
        let (status, results) = o.health.status().await;
        let own = |line: &LogLine| {
            line.service == desc.name
                // The gateway also shows the lines no service wrote (the process's own).
                || (desc.name == crate::config::EDGE
                    && crate::config::ports_of(&line.service).is_none())
        };
        Snapshot {
            service: desc.name.to_owned(),
            instance: o.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: o.started_at,
            taken_at: Utc::now(),
            status: status.to_owned(),
            replicas: shared::replicas(&o.cache, desc.name).await,
            checks: results
                .into_iter()
                .map(|(name, need, ok)| Check {
                    name: name.to_owned(),
                    ok,
                    required: need == Need::Required,
                })
                .collect(),
            calls: desc.calls().iter().map(|s| (*s).to_owned()).collect(),
            publishes: desc.publishes.iter().map(|s| (*s).to_owned()).collect(),
            consumes: desc.consumes.iter().map(view_of_consumes).collect(),
            knobs: desc
                .knobs
                .iter()
                .map(|k| KnobView {
                    name: k.name.to_owned(),
                    meaning: k.meaning.to_owned(),
                    min: k.min,
                    max: k.max,
                    unit: k.unit.to_owned(),
                })
                .collect(),
            faults: o.faults.get(),
            audit: o
                .audit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
            metrics: o.metrics.encode(),
            logs: window::recent(logs_after, SNAPSHOT_LINES, own),
            spans: if o.embedded && desc.name != crate::config::EDGE {
                Vec::new()
            } else {
                spans::recent(spans_after, SNAPSHOT_SPANS)
            },
        }
    }

    /// The service's switches, for its code to read its knobs from.
    pub fn switches(&self) -> Faults {
        self.0.faults.clone()
    }

    /// The switches as they are set now.
    pub fn faults(&self) -> FaultSettings {
        self.0.faults.get()
    }

    /// ready, degraded, not ready, starting or draining, as `/readyz` would answer now.
    pub async fn status(&self) -> String {
        self.0.health.status().await.0.to_owned()
    }

    /// Sets the service's switches for `who`, after checking them: stored for every replica
    /// (503 while the cache cannot take them), recorded in the audit trail, and logged.
    pub async fn set_faults(&self, who: &str, settings: FaultSettings) -> Result<(), ApiError> {
        let o = &self.0;
        settings.validate(o.desc.knobs)?;
        let what = settings.describe();
        let entry = AuditEntry {
            at: Utc::now(),
            who: who.to_owned(),
            service: o.desc.name.to_owned(),
            what: what.clone(),
        };
        let stored = shared::store(&o.cache, o.desc.name, settings, entry)
            .await
            .map_err(|e| {
                tracing::warn!(service = o.desc.name, error = %e, "cannot store fault switches");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the switches cannot be stored now (the cache does not answer); retry shortly",
                )
                .retry_after(1)
            })?;
        tracing::warn!(
            service = o.desc.name,
            operator = who,
            faults = %what,
            "fault switches set by an operator"
        );
        self.take_up(stored);
        Ok(())
    }

    /// Applies switches as stored.
    fn take_up(&self, shared: shared::Shared) {
        let o = &self.0;
        if o.faults.get() != shared.faults {
            tracing::info!(
                service = o.desc.name,
                faults = %shared.faults.describe(),
                "fault switches taken up"
            );
            o.faults.set(shared.faults);
        }
        *o.audit.lock().unwrap_or_else(|e| e.into_inner()) = shared.audit;
    }

    /// Keeps this replica's switches as the service's stored ones, until `token` is cancelled.
    pub async fn follow(self, token: tokio_util::sync::CancellationToken) {
        let cache = self.0.cache.clone();
        shared::follow(self, cache, token).await
    }
}

fn view_of_consumes(c: &Consumes) -> ConsumesView {
    ConsumesView {
        durable: c.durable.to_owned(),
        subject: c.subject.to_owned(),
    }
}

/// This replica's name: the pod's (Kubernetes sets `HOSTNAME` to it) or the machine's, and the
/// process id.
fn instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotQuery {
    #[serde(default)]
    logs_after: u64,
    #[serde(default)]
    spans_after: u64,
}

/// The two routes, for a service's router.
pub fn routes(ctx: Context) -> Router {
    Router::new()
        .route(SNAPSHOT_PATH, get(snapshot))
        .route(FAULTS_PATH, put(set_faults))
        .with_state(ctx)
}

/// How an admin is named in the audit trail: their email, else their id.
pub fn operator(admin: &Admin) -> String {
    let caller = &admin.0;
    caller
        .email
        .clone()
        .unwrap_or_else(|| caller.user_id.to_string())
}

async fn snapshot(
    _admin: Admin,
    State(ctx): State<Context>,
    Query(query): Query<SnapshotQuery>,
) -> Json<Snapshot> {
    Json(ctx.ops.snapshot(query.logs_after, query.spans_after).await)
}

async fn set_faults(
    admin: Admin,
    State(ctx): State<Context>,
    Json(settings): Json<FaultSettings>,
) -> Result<Json<FaultSettings>, ApiError> {
    ctx.ops.set_faults(&operator(&admin), settings).await?;
    Ok(Json(ctx.ops.faults()))
}
