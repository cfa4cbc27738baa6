//! The console's recent traces: spans gathered from every process's window (and nubo's OTLP
//! receiver), grouped by trace, bounded; listed, searched and drawn as a waterfall.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use nubo_platform::serde_json::{Value, json};
use nubo_platform::telemetry::spans::SpanRecord;
use nubo_platform::telemetry::window::LogLine;

/// Spans kept across every trace; the oldest traces go first.
pub const MAX_SPANS: usize = 4_000;

#[derive(Default)]
pub struct Traces {
    by_id: HashMap<String, Vec<SpanRecord>>,
    /// Trace ids, oldest first.
    order: VecDeque<String>,
    spans: usize,
}

impl Traces {
    /// Adds spans, once each (processes that share a window send the same spans).
    pub fn add(&mut self, spans: Vec<SpanRecord>) {
        for span in spans {
            let trace = match self.by_id.get_mut(&span.trace_id) {
                Some(t) => t,
                None => {
                    self.order.push_back(span.trace_id.clone());
                    self.by_id.entry(span.trace_id.clone()).or_default()
                }
            };
            if trace.iter().any(|s| s.span_id == span.span_id) {
                continue;
            }
            trace.push(span);
            self.spans += 1;
        }
        while self.spans > MAX_SPANS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.by_id.remove(&oldest) {
                self.spans -= gone.len();
            }
        }
    }

    pub fn usage(&self) -> (usize, usize) {
        (self.by_id.len(), self.spans)
    }

    /// Summaries of the newest traces that `keep` accepts.
    pub fn list(
        &self,
        limit: usize,
        keep: impl Fn(&Summary, &[SpanRecord]) -> bool,
    ) -> Vec<Summary> {
        let mut out: Vec<Summary> = self
            .by_id
            .values()
            .map(|spans| (summary(spans), spans))
            .filter(|(s, spans)| keep(s, spans))
            .map(|(s, _)| s)
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.start));
        out.truncate(limit);
        out
    }

    /// One trace as the waterfall draws it, with `logs` (its log lines).
    pub fn detail(&self, trace_id: &str, logs: Vec<&LogLine>) -> Option<Value> {
        let spans = self.by_id.get(trace_id)?;
        let s = summary(spans);
        let services = resolved_services(spans);
        let mut sorted: Vec<&SpanRecord> = spans.iter().collect();
        sorted.sort_by_key(|sp| sp.start_unix_nano);
        let ms = |nanos: u64| nanos as f64 / 1e6;
        let spans: Vec<Value> = sorted
            .iter()
            .map(|sp| {
                json!({
                    "span_id": sp.span_id,
                    "parent_span_id": sp.parent_span_id,
                    "name": sp.name,
                    "service": services.get(&sp.span_id),
                    "kind": sp.kind,
                    "start_ms": ms(sp.start_unix_nano.saturating_sub(s.start)),
                    "duration_ms": ms(sp.end_unix_nano.saturating_sub(sp.start_unix_nano)),
                    "status": if failed(sp) { "error" } else { sp.status.as_str() },
                    "status_message": sp.status_message,
                    "attributes": sp.attributes,
                    "events": sp.events.iter().map(|e| json!({
                        "name": e.name,
                        "at_ms": ms(e.time_unix_nano.saturating_sub(s.start)),
                        "attributes": e.attributes,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Some(json!({
            "trace_id": trace_id,
            "root": s.root,
            "started_at": s.started_at(),
            "duration_ms": s.duration_ms(),
            "spans": spans,
            "logs": logs,
        }))
    }
}

/// What the list shows of one trace.
#[derive(Clone, Debug)]
pub struct Summary {
    pub trace_id: String,
    pub root: String,
    pub services: BTreeSet<String>,
    pub spans: usize,
    pub errors: usize,
    pub start: u64,
    pub end: u64,
}

impl Summary {
    pub fn duration_ms(&self) -> f64 {
        self.end.saturating_sub(self.start) as f64 / 1e6
    }

    pub fn started_at(&self) -> String {
        let secs = (self.start / 1_000_000_000) as i64;
        let nanos = (self.start % 1_000_000_000) as u32;
        nubo_platform::chrono::DateTime::from_timestamp(secs, nanos)
            .map(|t| t.to_rfc3339_opts(nubo_platform::chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "trace_id": self.trace_id,
            "root": self.root,
            "services": self.services,
            "spans": self.spans,
            "errors": self.errors,
            "started_at": self.started_at(),
            "duration_ms": self.duration_ms(),
            "status": if self.errors > 0 { "error" } else { "ok" },
        })
    }
}

/// A span that failed: its status says so, or it answered a 5xx.
fn failed(span: &SpanRecord) -> bool {
    span.status == "error"
        || span
            .attributes
            .get("status")
            .and_then(Value::as_u64)
            .is_some_and(|s| s >= 500)
}

fn summary(spans: &[SpanRecord]) -> Summary {
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let root = spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref().is_none_or(|p| !ids.contains(p)))
        .min_by_key(|s| s.start_unix_nano)
        .or_else(|| spans.iter().min_by_key(|s| s.start_unix_nano));
    let root_name = root
        .map(|s| {
            // A server span says what was asked of it.
            match (s.attributes.get("method"), s.attributes.get("path")) {
                (Some(Value::String(m)), Some(Value::String(p))) => format!("{m} {p}"),
                _ => s.name.clone(),
            }
        })
        .unwrap_or_default();
    Summary {
        trace_id: spans
            .first()
            .map(|s| s.trace_id.clone())
            .unwrap_or_default(),
        root: root_name,
        services: resolved_services(spans).into_values().collect(),
        spans: spans.len(),
        errors: spans.iter().filter(|s| failed(s)).count(),
        start: spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0),
        end: spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(0),
    }
}

/// Each span's service: its own when it names one of the shop's, else its parent's (a span
/// inside a request inherits the request's service), else what its process called itself.
fn resolved_services(spans: &[SpanRecord]) -> BTreeMap<String, String> {
    let by_id: HashMap<&str, &SpanRecord> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let known = |name: &str| super::SERVICES.contains(&name);
    spans
        .iter()
        .map(|span| {
            let mut at = Some(span);
            let mut hops = 0;
            let mut found = None;
            while let Some(s) = at {
                if let Some(name) = s.service.as_deref().filter(|n| known(n)) {
                    found = Some(name.to_owned());
                    break;
                }
                hops += 1;
                if hops > 64 {
                    break;
                }
                at = s
                    .parent_span_id
                    .as_deref()
                    .and_then(|p| by_id.get(p).copied());
            }
            let service = found
                .or_else(|| span.service.clone())
                .unwrap_or_else(|| "unknown".to_owned());
            (span.span_id.clone(), service)
        })
        .collect()
}

/// Whether any span attribute of the trace, or any field of its log lines, equals `value`.
pub fn mentions(spans: &[SpanRecord], logs: &[&LogLine], value: &str) -> bool {
    let is = |v: &Value| match v {
        Value::String(s) => s == value,
        Value::Number(n) => n.to_string() == value,
        _ => false,
    };
    spans.iter().any(|s| s.attributes.values().any(is))
        || logs.iter().any(|l| l.fields.values().any(is))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// Only this trace.
    trace_id: Option<String>,
    /// Only traces that mention this order (a span attribute or a log field equal to it).
    order_id: Option<String>,
    /// Only traces that mention this user (their id or email).
    user: Option<String>,
    /// Only traces that cross this service.
    service: Option<String>,
    /// Only traces with (error) or without (ok) a failed span.
    status: Option<TraceStatus>,
    /// Only traces at least this long, in milliseconds.
    #[param(minimum = 0, maximum = 3600000)]
    min_ms: Option<f64>,
    /// 1 to 200 (the newest that match).
    #[param(default = 50, minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceStatus {
    Ok,
    Error,
}

/// The newest traces in the console's window that match every filter given.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ops/traces",
    tag = "ops",
    params(TraceQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`traces`, newest first, and the window's fill", body = Value),
        nubo_platform::openapi::problems::BadRequest,
        nubo_platform::openapi::problems::Unauthorized,
        nubo_platform::openapi::problems::Forbidden,
        nubo_platform::openapi::problems::Invalid,
    )
)]
pub async fn list(
    _admin: nubo_platform::auth::Admin,
    axum_state: nubo_platform::axum::extract::State<super::Console>,
    headers: nubo_platform::axum::http::HeaderMap,
    nubo_platform::error::Query(query): nubo_platform::error::Query<TraceQuery>,
) -> Result<nubo_platform::error::Json<Value>, nubo_platform::ApiError> {
    use nubo_platform::ApiError;
    let console = axum_state.0;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 200"));
    }
    let status = query.status;
    if query
        .min_ms
        .is_some_and(|m| !(0.0..=3_600_000.0).contains(&m))
    {
        return Err(ApiError::invalid(
            "min_ms",
            "must be 0 to 3600000 milliseconds",
        ));
    }
    super::watch::refresh(&console.ctx, &console.watch, super::token(&headers)).await;
    let w = console.watch.lock().await;
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let (trace_id, order_id, user, service) = (
        text(&query.trace_id),
        text(&query.order_id),
        text(&query.user),
        text(&query.service),
    );
    let logs_of = |trace: &str| -> Vec<&LogLine> {
        w.logs
            .iter()
            .filter(|l| l.trace_id.as_deref() == Some(trace))
            .collect()
    };
    let found = w.traces.list(limit, |s, spans| {
        trace_id.as_deref().is_none_or(|t| s.trace_id == t)
            && service
                .as_deref()
                .is_none_or(|name| s.services.contains(name))
            && status.is_none_or(|st| (st == TraceStatus::Error) == (s.errors > 0))
            && query.min_ms.is_none_or(|m| s.duration_ms() >= m)
            && order_id
                .as_deref()
                .is_none_or(|o| mentions(spans, &logs_of(&s.trace_id), o))
            && user
                .as_deref()
                .is_none_or(|u| mentions(spans, &logs_of(&s.trace_id), u))
    });
    let (traces, spans) = w.traces.usage();
    Ok(nubo_platform::error::Json(json!({
        "traces": found.iter().map(Summary::to_json).collect::<Vec<_>>(),
        "window": { "traces": traces, "spans": spans, "max_spans": MAX_SPANS },
    })))
}

/// One trace: its spans, each with its service, timing, status and attributes, and the log
/// lines that carry its id.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ops/traces/{trace_id}",
    tag = "ops",
    params(("trace_id" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "The W3C trace id: 32 hexadecimal digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trace", body = Value),
        nubo_platform::openapi::problems::BadRequest,
        nubo_platform::openapi::problems::Unauthorized,
        nubo_platform::openapi::problems::Forbidden,
        nubo_platform::openapi::problems::NotFound,
        nubo_platform::openapi::problems::Invalid,
    )
)]
pub async fn one(
    _admin: nubo_platform::auth::Admin,
    axum_state: nubo_platform::axum::extract::State<super::Console>,
    headers: nubo_platform::axum::http::HeaderMap,
    nubo_platform::error::Path(trace_id): nubo_platform::error::Path<String>,
) -> Result<nubo_platform::error::Json<Value>, nubo_platform::ApiError> {
    let console = axum_state.0;
    let valid = trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(nubo_platform::ApiError::invalid(
            "trace_id",
            "must be 32 hexadecimal digits",
        ));
    }
    let trace_id = trace_id.to_ascii_lowercase();
    super::watch::refresh(&console.ctx, &console.watch, super::token(&headers)).await;
    let w = console.watch.lock().await;
    let logs: Vec<&LogLine> = w
        .logs
        .iter()
        .filter(|l| l.trace_id.as_deref() == Some(trace_id.as_str()))
        .collect();
    w.traces
        .detail(&trace_id, logs)
        .map(nubo_platform::error::Json)
        .ok_or_else(|| {
            nubo_platform::ApiError::NotFound(format!(
                "trace {trace_id} is not in the console's window (it keeps the newest {MAX_SPANS} spans)"
            ))
        })
}
