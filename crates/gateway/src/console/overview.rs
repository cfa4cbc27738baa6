//! The overview: every service as the console last saw it, the call graph's edges and event
//! flows with their traffic, the audit trail, and how full the windows are.

use std::collections::BTreeMap;

use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::HeaderMap;
use nubo_platform::error::Json;
use nubo_platform::openapi::problems;
use nubo_platform::ops::AuditEntry;
use nubo_platform::serde_json::{Value, json};

use super::{Console, SERVICES, token, traces, watch};

/// Every service's status, checks, switches and numbers over the last five minutes, the call
/// graph's edges and event flows with their traffic, the audit trail, and the windows' fill.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ops/overview",
    tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The shop as the console sees it", body = Value),
        problems::Unauthorized,
        problems::Forbidden,
    )
)]
pub async fn overview(
    _admin: Admin,
    State(console): State<Console>,
    headers: HeaderMap,
) -> Json<Value> {
    watch::refresh(&console.ctx, &console.watch, token(&headers)).await;
    let w = console.watch.lock().await;
    let mut services = Vec::new();
    let mut edges = Vec::new();
    let mut audit: Vec<AuditEntry> = Vec::new();
    let mut subjects: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in SERVICES.iter() {
        let Some(seen) = w.services.get(name) else {
            continue;
        };
        let s = seen.snapshot.as_ref();
        let status = match (&seen.unreachable, s) {
            (Some(_), _) | (None, None) => "unreachable",
            (None, Some(s)) if s.status == "not ready" => "not_ready",
            (None, Some(s)) => s.status.as_str(),
        };
        let now = seen.series.back();
        if let Some(s) = s {
            audit.extend(s.audit.iter().cloned());
            for c in &s.consumes {
                subjects.entry(c.subject.clone()).or_default().push(name);
            }
        }
        services.push(json!({
            "name": name,
            "instance": s.map(|s| s.instance.as_str()),
            "version": s.map(|s| s.version.as_str()),
            "started_at": s.map(|s| s.started_at),
            "uptime_seconds": s.map(|s| (s.taken_at - s.started_at).num_seconds()),
            "status": status,
            "replicas": s.map_or(&[][..], |s| &s.replicas),
            "error": seen.unreachable,
            "checks": s.map(|s| &s.checks),
            "calls": s.map_or(&[][..], |s| &s.calls),
            "publishes": s.map_or(&[][..], |s| &s.publishes),
            "consumes": s.map_or(&[][..], |s| &s.consumes),
            "faults": s.map(|s| &s.faults),
            "knobs": s.map_or(&[][..], |s| &s.knobs),
            "now": now.map(|p| json!({
                "rps": p.rps, "error_rate": p.error_rate, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms,
                "in_flight": p.in_flight, "pool_open": p.pool_open, "pool_idle": p.pool_idle,
                "outbox_backlog": p.outbox_backlog, "consumer_lag": p.consumer_lag,
                "breakers": w.breakers(name),
            })),
            "series": seen.series,
        }));
        if let Some(s) = s {
            for target in &s.calls {
                let flow = seen.flows.get(target).cloned().unwrap_or_default();
                edges.push(json!({
                    "from": name, "to": target, "kind": "http",
                    "rps": flow.rps, "error_rate": flow.error_rate, "p99_ms": flow.p99_ms,
                }));
            }
        }
    }
    // Event flows: from whoever publishes a subject to whoever consumes it.
    for name in SERVICES.iter() {
        let Some(s) = w.services.get(name).and_then(|s| s.snapshot.as_ref()) else {
            continue;
        };
        for published in &s.publishes {
            for (pattern, consumers) in &subjects {
                if subject_matches(pattern, published) {
                    for consumer in consumers {
                        edges.push(json!({
                            "from": name, "to": consumer, "kind": "event", "subject": published,
                        }));
                    }
                }
            }
        }
    }
    audit.sort_by_key(|a| std::cmp::Reverse(a.at));
    audit.truncate(100);
    let (lines, line_bytes) = nubo_platform::telemetry::window::usage();
    let (spans, span_bytes) = nubo_platform::telemetry::spans::usage();
    let (traces, kept_spans) = w.traces.usage();
    // What the windows hold now: this process's (every service's, embedded), and the
    // console's merged copies.
    let windows = json!({
        "process_logs": { "lines": lines, "bytes": line_bytes,
            "max_lines": nubo_platform::telemetry::window::WINDOW_LINES,
            "max_bytes": nubo_platform::telemetry::window::WINDOW_BYTES },
        "process_spans": { "spans": spans, "bytes": span_bytes,
            "max_spans": nubo_platform::telemetry::spans::WINDOW_SPANS,
            "max_bytes": nubo_platform::telemetry::spans::WINDOW_BYTES },
        "console": { "log_lines": w.logs.len(), "max_log_lines": watch::LOG_LINES,
            "traces": traces, "spans": kept_spans, "max_spans": traces::MAX_SPANS },
    });
    Json(json!({
        "windows": windows,
        "mode": match console.ctx.settings.mode() {
            nubo_platform::config::Mode::Embedded => "embedded",
            nubo_platform::config::Mode::Distributed => "distributed",
        },
        "sampled_every_seconds": 2,
        "services": services,
        "edges": edges,
        "audit": audit,
    }))
}

/// NATS subject matching: `*` is one token, `>` the rest.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
