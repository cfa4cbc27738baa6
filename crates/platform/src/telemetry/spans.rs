//! The process's recently finished spans, kept in memory for the ops console: a bounded window,
//! fed by a span processor beside the OTLP exporter (so a configured collector still gets
//! everything) and by spans other programs send to nubo's OTLP receiver ([`crate::ops::otlp`]).
//! Tracing works with no collector at all.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bounded::{Bounded, Kept};

/// At most this many spans are kept ...
pub const WINDOW_SPANS: usize = 5_000;
/// ... and at most about this many bytes of them, as [`SpanRecord::size`] counts them (a bench
/// run found the allocator holding about that again for its maps and values).
pub const WINDOW_BYTES: usize = 6 << 20;
const VALUE_CHARS: usize = 1_000;

/// One finished span as the console shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Its place in the window of the process that kept it.
    pub seq: u64,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// The `service` attribute nubo's spans carry, else the resource's `service.name`.
    pub service: Option<String>,
    pub kind: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// ok, error or unset.
    pub status: String,
    pub status_message: Option<String>,
    pub attributes: BTreeMap<String, Value>,
    pub events: Vec<SpanEventRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpanEventRecord {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, Value>,
}

impl Kept for SpanRecord {
    /// Roughly what the allocator holds for it: each string's bytes and header, and each
    /// attribute's map node and value besides.
    fn size(&self) -> usize {
        let values = |m: &BTreeMap<String, Value>| -> usize {
            m.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len) + 320)
                .sum()
        };
        let events: usize = self
            .events
            .iter()
            .map(|e| 256 + e.name.len() + values(&e.attributes))
            .sum();
        1280 + self.name.len() + values(&self.attributes) + events
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

/// Cuts a long string value, so one span cannot push the others out.
pub fn bounded(value: Value) -> Value {
    match value {
        Value::String(mut s) if s.len() > VALUE_CHARS => {
            let mut end = VALUE_CHARS;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
            Value::String(s)
        }
        other => other,
    }
}

static WINDOW: Bounded<SpanRecord> = Bounded::new(WINDOW_SPANS, WINDOW_BYTES);

/// Adds finished spans to the window, evicting the oldest past its bounds.
pub fn push(records: impl IntoIterator<Item = SpanRecord>) {
    WINDOW.push(records);
}

/// Spans after `after`, oldest first, at most `limit` (the newest).
pub fn recent(after: u64, limit: usize) -> Vec<SpanRecord> {
    WINDOW.recent(after, limit, |_| true)
}

/// The window's size now: spans and approximate bytes.
pub fn usage() -> (usize, usize) {
    WINDOW.usage()
}

pub fn unix_nano(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
        .try_into()
        .unwrap_or(u64::MAX)
}

fn json_of(value: &opentelemetry::Value) -> Value {
    use opentelemetry::Value as V;
    bounded(match value {
        V::Bool(b) => Value::Bool(*b),
        V::I64(i) => Value::from(*i),
        V::F64(f) => Value::from(*f),
        other => Value::String(other.to_string()),
    })
}

fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

/// Keeps every span the process ends in the window.
#[derive(Debug)]
pub(super) struct WindowProcessor {
    /// The process's `service.name`, for spans that carry no `service` of their own.
    pub process: String,
}

impl SpanProcessor for WindowProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        // Where in nubo's source a span began (`code.*`) is long and the same for every
        // request: left out of the window, which keeps more spans for it.
        let attributes: BTreeMap<String, Value> = span
            .attributes
            .iter()
            .filter(|kv| !kv.key.as_str().starts_with("code."))
            .map(|kv| (kv.key.to_string(), json_of(&kv.value)))
            .collect();
        let service = attributes
            .get("service")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (status, status_message) = match &span.status {
            Status::Unset => ("unset", None),
            Status::Ok => ("ok", None),
            Status::Error { description } => ("error", Some(description.to_string())),
        };
        let parent = span.parent_span_id;
        push([SpanRecord {
            seq: 0,
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: (parent != opentelemetry::trace::SpanId::INVALID)
                .then(|| parent.to_string()),
            name: span.name.to_string(),
            service: service.or_else(|| Some(self.process.clone())),
            kind: kind_name(&span.span_kind).to_owned(),
            start_unix_nano: unix_nano(span.start_time),
            end_unix_nano: unix_nano(span.end_time),
            status: status.to_owned(),
            status_message,
            attributes,
            events: span
                .events
                .iter()
                .map(|e| SpanEventRecord {
                    name: e.name.to_string(),
                    time_unix_nano: unix_nano(e.timestamp),
                    attributes: e
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.to_string(), json_of(&kv.value)))
                        .collect(),
                })
                .collect(),
        }]);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
