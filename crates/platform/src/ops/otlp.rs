//! nubo's own OTLP/HTTP trace receiver, `POST /v1/traces` on the edge's ops port: spans from any
//! OpenTelemetry SDK or collector, as protobuf or JSON, go into the console's span window
//! ([`crate::telemetry::spans`]), so traces can be seen with no trace backend installed.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use prost::Message as _;
use serde_json::Value;

use crate::error::Problem;
use crate::telemetry::spans::{self, SpanEventRecord, SpanRecord, bounded};

pub const PATH: &str = "/v1/traces";
/// The largest export accepted, as collectors batch: 8 MiB.
pub const BODY_LIMIT: usize = 8 << 20;

/// Takes one export request; answers as OTLP/HTTP says (an empty success in the request's
/// encoding, 400 for a body that cannot be read, 415 for another content type).
pub async fn receive(headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (request, json) = match content_type.as_str() {
        "application/x-protobuf" => (
            ExportTraceServiceRequest::decode(body.as_ref()).map_err(|e| e.to_string()),
            false,
        ),
        "application/json" => (
            serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|e| e.to_string()),
            true,
        ),
        _ => {
            return Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "OTLP/HTTP takes application/x-protobuf or application/json",
            )
            .into_response();
        }
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("not an OTLP trace export: {e}"),
            )
            .into_response();
        }
    };
    spans::push(records(request));
    // ExportTraceServiceResponse with no partial success is an empty message in either encoding.
    if json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Bytes::new(),
        )
            .into_response()
    }
}

fn records(request: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        let resource_service = resource
            .get("service.name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let attributes = attributes(span.attributes);
                let service = attributes
                    .get("service")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| resource_service.clone());
                let (status, status_message) = match span.status {
                    Some(s) if s.code == OtlpStatus::Error as i32 => {
                        ("error", Some(s.message).filter(|m| !m.is_empty()))
                    }
                    Some(s) if s.code == OtlpStatus::Ok as i32 => ("ok", None),
                    _ => ("unset", None),
                };
                out.push(SpanRecord {
                    seq: 0,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty())
                        .then(|| hex(&span.parent_span_id)),
                    name: span.name,
                    service,
                    kind: match span.kind {
                        2 => "server",
                        3 => "client",
                        4 => "producer",
                        5 => "consumer",
                        _ => "internal",
                    }
                    .to_owned(),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    status: status.to_owned(),
                    status_message,
                    attributes,
                    events: span
                        .events
                        .into_iter()
                        .map(|e| SpanEventRecord {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano,
                            attributes: self::attributes(e.attributes),
                        })
                        .collect(),
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: Vec<KeyValue>) -> BTreeMap<String, Value> {
    list.into_iter()
        .map(|kv| (kv.key, bounded(value(kv.value))))
        .collect()
}

fn value(v: Option<AnyValue>) -> Value {
    match v.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => Value::String(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::from(i),
        Some(any_value::Value::DoubleValue(f)) => Value::from(f),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.into_iter().map(|v| value(Some(v))).collect())
        }
        Some(any_value::Value::KvlistValue(l)) => Value::Object(
            l.values
                .into_iter()
                .map(|kv| (kv.key, value(kv.value)))
                .collect(),
        ),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(&b)),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_otlp_json_export_lands_in_the_window() {
        let body = serde_json::json!({
            "resourceSpans": [{
                "resource": { "attributes": [
                    { "key": "service.name", "value": { "stringValue": "otlp-json-test" } }
                ] },
                "scopeSpans": [{ "spans": [{
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": "eee19b7ec3c1b174",
                    "parentSpanId": "",
                    "name": "GET /hello",
                    "kind": 2,
                    "startTimeUnixNano": "1544712660000000000",
                    "endTimeUnixNano": "1544712661000000000",
                    "attributes": [{ "key": "http.status", "value": { "intValue": "500" } }],
                    "status": { "code": 2, "message": "boom" }
                }] }]
            }]
        });
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let response = receive(headers, Bytes::from(body.to_string())).await;
        assert_eq!(response.status(), 200);
        let kept = spans::recent(0, spans::WINDOW_SPANS);
        let span = kept
            .iter()
            .find(|s| s.service.as_deref() == Some("otlp-json-test"))
            .expect("the span is in the window");
        assert_eq!(span.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(span.parent_span_id, None);
        assert_eq!(
            (span.kind.as_str(), span.status.as_str()),
            ("server", "error")
        );
        assert_eq!(span.status_message.as_deref(), Some("boom"));
        assert_eq!(span.attributes["http.status"], 500);
        assert_eq!(span.end_unix_nano - span.start_unix_nano, 1_000_000_000);
    }

    #[tokio::test]
    async fn a_protobuf_export_is_read_and_anything_else_refused() {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![7; 16],
                        span_id: vec![8; 8],
                        name: "protobuf-test".into(),
                        ..Span::default()
                    }],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        let response = receive(headers.clone(), Bytes::from(request.encode_to_vec())).await;
        assert_eq!(response.status(), 200);
        assert!(
            spans::recent(0, spans::WINDOW_SPANS)
                .iter()
                .any(|s| s.name == "protobuf-test" && s.trace_id == "07".repeat(16))
        );
        let garbage = receive(headers, Bytes::from_static(b"\xff\xff\xff")).await;
        assert_eq!(garbage.status(), 400);
        let mut text = HeaderMap::new();
        text.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(receive(text, Bytes::new()).await.status(), 415);
    }
}
