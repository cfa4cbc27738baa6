//! What the console has seen: each service's latest snapshot, its numbers over the last five
//! minutes, and every service's recent log lines merged. It looks only while someone watches:
//! each admin request refreshes it, at most once per [`MIN_INTERVAL`], with that admin's token,
//! so an unwatched shop pays nothing and the services authorize every read themselves.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nubo_platform::Context;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::ops::{SNAPSHOT_PATH, Snapshot};
use nubo_platform::telemetry::window::LogLine;
use serde::Serialize;

use super::prom::{self, Totals, quantile_ms};
use nubo_platform::{futures, serde_json, tokio};

pub const MIN_INTERVAL: Duration = Duration::from_millis(1500);
/// Five minutes of points at the interval the page polls (2 s).
const POINTS: usize = 150;
/// Log lines kept, merged from every service.
pub const LOG_LINES: usize = 3_000;
/// How long one service may take to answer the console.
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(3);

/// One moment of one service, as charted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Point {
    pub t: f64,
    pub rps: Option<f64>,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub in_flight: f64,
    pub pool_open: f64,
    pub pool_idle: f64,
    pub outbox_backlog: f64,
    pub consumer_lag: f64,
}

/// The traffic of one edge of the call graph over the last interval.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Flow {
    pub rps: Option<f64>,
    pub error_rate: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Default)]
pub struct Seen {
    /// The latest snapshot, without its log lines and spans.
    pub snapshot: Option<Snapshot>,
    /// Why the last look failed, if it did.
    pub unreachable: Option<String>,
    pub series: VecDeque<Point>,
    pub flows: BTreeMap<String, Flow>,
    last: Option<(Instant, Totals)>,
    /// Per replica: the last log line taken.
    logs_after: BTreeMap<String, u64>,
    /// Per replica: the last span taken.
    spans_after: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Watch {
    pub services: BTreeMap<&'static str, Seen>,
    /// Lines of every service, each numbered by the console (`seq`), oldest first.
    pub logs: VecDeque<LogLine>,
    pub traces: super::traces::Traces,
    next_seq: u64,
    looked: Option<Instant>,
}

impl Watch {
    pub fn fresh(&self) -> bool {
        self.looked.is_some_and(|at| at.elapsed() < MIN_INTERVAL)
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    fn take(&mut self, name: &'static str, result: Result<Snapshot, String>, at: Instant) {
        let seen = self.services.entry(name).or_default();
        let mut snapshot = match result {
            Ok(s) => s,
            Err(why) => {
                seen.unreachable = Some(why);
                return;
            }
        };
        seen.unreachable = None;
        let totals = prom::totals(&snapshot.metrics);
        let after = seen
            .logs_after
            .entry(snapshot.instance.clone())
            .or_insert(0);
        if let Some(last) = snapshot.logs.last() {
            *after = last.seq;
        }
        let lines = std::mem::take(&mut snapshot.logs);
        let spans = std::mem::take(&mut snapshot.spans);
        let spans_after = seen
            .spans_after
            .entry(snapshot.instance.clone())
            .or_insert(0);
        if let Some(last) = spans.last() {
            *spans_after = last.seq;
        }
        let mut point = Point {
            t: unix_seconds(snapshot.taken_at),
            in_flight: totals.in_flight,
            pool_open: totals.pool_open,
            pool_idle: totals.pool_idle,
            outbox_backlog: totals.outbox_backlog,
            consumer_lag: totals.consumer_lag,
            ..Point::default()
        };
        // Rates need two looks at the same replica; a restarted one starts over.
        if let Some((then, before)) = &seen.last
            && seen.snapshot.as_ref().map(|s| &s.instance) == Some(&snapshot.instance)
            && totals.requests >= before.requests
        {
            let secs = at.duration_since(*then).as_secs_f64().max(0.001);
            let (rps, error_rate) = rates(&totals, before, secs);
            point.rps = Some(rps);
            point.error_rate = error_rate;
            point.p50_ms = quantile_ms(&totals.buckets, &before.buckets, 0.5);
            point.p99_ms = quantile_ms(&totals.buckets, &before.buckets, 0.99);
            seen.flows = totals
                .calls
                .iter()
                .map(|(target, now)| {
                    let empty = Totals::default();
                    let was = before.calls.get(target).unwrap_or(&empty);
                    let (rps, error_rate) = rates(now, was, secs);
                    let flow = Flow {
                        rps: Some(rps),
                        error_rate,
                        p99_ms: quantile_ms(&now.buckets, &was.buckets, 0.99),
                    };
                    (target.clone(), flow)
                })
                .collect();
            seen.series.push_back(point);
            while seen.series.len() > POINTS {
                seen.series.pop_front();
            }
        }
        seen.last = Some((at, totals));
        seen.snapshot = Some(snapshot);
        self.traces.add(spans);
        for mut line in lines {
            self.next_seq += 1;
            line.seq = self.next_seq;
            self.logs.push_back(line);
        }
        while self.logs.len() > LOG_LINES {
            self.logs.pop_front();
        }
    }

    pub fn breakers(&self, name: &str) -> BTreeMap<String, &'static str> {
        let Some((_, totals)) = self.services.get(name).and_then(|s| s.last.as_ref()) else {
            return BTreeMap::new();
        };
        totals
            .breakers
            .iter()
            .map(|(target, state)| {
                let state = match *state as i64 {
                    0 => "closed",
                    1 => "half_open",
                    _ => "open",
                };
                (target.clone(), state)
            })
            .collect()
    }
}

fn rates(now: &Totals, before: &Totals, secs: f64) -> (f64, Option<f64>) {
    let requests = (now.requests - before.requests).max(0.0);
    let errors = (now.errors - before.errors).max(0.0);
    let error_rate = (requests > 0.0).then(|| errors / requests);
    (requests / secs, error_rate)
}

fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// Looks at every service, with `token` (the watching admin's), unless the last look is
/// recent; `watch` is locked only to read cursors and to record what came back.
pub async fn refresh(ctx: &Context, watch: &tokio::sync::Mutex<Watch>, token: &str) {
    let mut w = watch.lock().await;
    if w.fresh() {
        return;
    }
    let cursors: BTreeMap<&'static str, (u64, u64)> = super::SERVICES
        .iter()
        .map(|name| {
            let after = w
                .services
                .get(name)
                .and_then(|s| {
                    let instance = &s.snapshot.as_ref()?.instance;
                    Some((
                        s.logs_after.get(instance).copied().unwrap_or(0),
                        s.spans_after.get(instance).copied().unwrap_or(0),
                    ))
                })
                .unwrap_or((0, 0));
            (*name, after)
        })
        .collect();
    // Everyone waits for this one look rather than starting their own.
    let looks = cursors.into_iter().map(|(name, after)| async move {
        let at = Instant::now();
        (name, look(ctx, name, after, token).await, at)
    });
    let results = futures::future::join_all(looks).await;
    for (name, result, at) in results {
        w.take(name, result, at);
    }
    w.looked = Some(Instant::now());
}

async fn look(
    ctx: &Context,
    name: &'static str,
    (logs_after, spans_after): (u64, u64),
    token: &str,
) -> Result<Snapshot, String> {
    if name == crate::SERVICE.name {
        return Ok(ctx.ops.snapshot(logs_after, spans_after).await);
    }
    let request = http::Request::get(format!(
        "{SNAPSHOT_PATH}?logs_after={logs_after}&spans_after={spans_after}"
    ))
    .body(Bytes::new())
    .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(
        SNAPSHOT_DEADLINE,
        super::as_admin(ctx, name, request, token),
    )
    .await
    .map_err(|_| format!("{name} did not answer within {SNAPSHOT_DEADLINE:?}"))??;
    if !response.status().is_success() {
        return Err(format!("{name} answered {}", response.status()));
    }
    serde_json::from_slice(response.body()).map_err(|e| format!("{name}'s snapshot: {e}"))
}
