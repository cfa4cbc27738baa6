//! Logs, traces and trace-context propagation.
//!
//! Logs are `tracing` events written as one JSON object per line (or human-readable on a
//! terminal); every line carries the service that wrote it and the trace id of the work it belongs
//! to, both taken from the enclosing span, so in embedded mode, where every service shares one
//! process, lines still say whose they are. Spans become OpenTelemetry spans; they are exported
//! over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and trace ids exist either way, so
//! logs and responses can quote them. W3C `traceparent` is read from every inbound request and
//! event and written on every outbound call and event.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::OnceLock;

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::filter::combinator::Or;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

mod bounded;
mod repeats;
pub mod spans;
pub mod window;
pub use repeats::Repeats;

/// Each place in the code may write this many warnings per [`REPEAT_WINDOW`]; the rest are
/// counted and reported once per window.
pub const REPEAT_BURST: u32 = 20;
pub const REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// How the process logs and traces.
pub struct TelemetryConfig<'a> {
    /// Name on lines logged outside any service's span, and the OpenTelemetry `service.name`.
    pub process: &'a str,
    pub filter: &'a str,
    pub format: LogFormat,
    pub otlp_endpoint: Option<&'a str>,
    /// Log only warnings and errors until [`TelemetryGuard::settle`]: routine start-up lines
    /// stay off a terminal where a banner is about to appear.
    pub quiet_start: bool,
}

/// Flushes exported spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    settle: Option<Box<dyn Fn() + Send + Sync>>,
}

impl TelemetryGuard {
    /// Ends a quiet start: from now on lines are logged as the configured filter says.
    pub fn settle(&self) {
        if let Some(settle) = &self.settle {
            settle();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("cannot flush traces: {e}");
        }
    }
}

static PROCESS: OnceLock<String> = OnceLock::new();

fn propagator() -> &'static TraceContextPropagator {
    static P: OnceLock<TraceContextPropagator> = OnceLock::new();
    P.get_or_init(TraceContextPropagator::new)
}

fn tracer_provider(
    process: &str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<SdkTracerProvider> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(process.to_owned())
        .build();
    // Every span also goes to the ops console's window, collector or not.
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(spans::WindowProcessor {
            process: process.to_owned(),
        });
    if otlp_endpoint.is_some() {
        // The exporter reads OTEL_EXPORTER_OTLP_* itself, as every OpenTelemetry SDK does.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Installs the process-wide subscriber. Call once, first thing in `main`.
pub fn init(config: TelemetryConfig<'_>) -> anyhow::Result<TelemetryGuard> {
    let _ = PROCESS.set(config.process.to_owned());
    let provider = tracer_provider(config.process, config.otlp_endpoint)?;
    let filter = EnvFilter::try_new(config.filter)
        .map_err(|e| anyhow::anyhow!("NUBO_LOG: invalid filter {:?}: {e}", config.filter))?;
    let (filter, reload) = if config.quiet_start {
        tracing_subscriber::reload::Layer::new(EnvFilter::new("warn"))
    } else {
        tracing_subscriber::reload::Layer::new(filter)
    };
    let settle: Option<Box<dyn Fn() + Send + Sync>> = config.quiet_start.then(|| {
        let configured = config.filter.to_owned();
        Box::new(move || {
            let _ = reload.reload(EnvFilter::new(&configured));
        }) as Box<dyn Fn() + Send + Sync>
    });
    let pretty = match config.format {
        LogFormat::Pretty => true,
        LogFormat::Json => false,
        LogFormat::Auto => std::io::stderr().is_terminal(),
    };
    let output = if pretty {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .event_format(JsonLines)
            .fmt_fields(NoSpanFields)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let repeats = Repeats::new(REPEAT_BURST, REPEAT_WINDOW);
    tracing_subscriber::registry()
        // One filter decides for both: the span tags and the OpenTelemetry spans cover the same
        // spans, and each filter costs every span a lookup.
        .with(
            ServiceAndTrace
                .and_then(otel_layer(&provider))
                .with_filter(spans_filter(config.filter)),
        )
        .with(output.with_filter(filter.and(repeats.clone())))
        // The console's window takes what the configured filter lets through, also during a
        // quiet start.
        .with(window::WindowLayer.with_filter(EnvFilter::new(config.filter)))
        .try_init()
        .map_err(|e| anyhow::anyhow!("telemetry already initialised: {e}"))?;
    repeats.report_every(REPEAT_WINDOW);
    Ok(TelemetryGuard { provider, settle })
}

/// What becomes an OpenTelemetry span or span event: nubo's own spans (all at `info`), warnings
/// and errors from anywhere, and whatever more `NUBO_LOG` asks for. Without it every `trace!` of
/// hyper, rustls and sqlx was built and attached to the request's span.
fn spans_filter<S>(configured: &str) -> Or<EnvFilter, EnvFilter, S> {
    EnvFilter::new(configured).or(EnvFilter::new("warn,nubo=info"))
}

/// Spans carry what their fields say and where in the code they began; the thread and busy/idle
/// timings are left out (an async request crosses threads, and timings cost every poll).
fn otel_layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("nubo"))
        .with_threads(false)
        .with_tracked_inactivity(false)
}

/// For tests: trace ids and propagation work as in production; lines are printed only when
/// `TEST_LOG` is set. Safe to call from every test.
pub fn init_for_tests() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = PROCESS.set("test".to_owned());
        let provider = match tracer_provider("test", None) {
            Ok(p) => p,
            Err(_) => return,
        };
        let otel = otel_layer(&provider);
        let output = std::env::var_os("TEST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_test_writer()
                .with_filter(EnvFilter::new(
                    std::env::var("TEST_LOG").unwrap_or_default(),
                ))
        });
        let _ = tracing_subscriber::registry()
            .with(ServiceAndTrace)
            .with(otel)
            .with(output)
            .with(window::WindowLayer.with_filter(EnvFilter::new("info")))
            .try_init();
        // Keep the provider alive for the whole test process.
        std::mem::forget(provider);
    });
}

/// The W3C trace id (32 hex digits) of `span`.
pub fn trace_id(span: &Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Makes `span` a child of the remote `traceparent` if there is a valid one, and records the
/// resulting trace id in the span's `trace_id` field (which the span must declare as empty).
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        let mut headers = HeaderMap::new();
        if let Ok(value) = tp.parse() {
            headers.insert("traceparent", value);
        }
        continue_trace_from_headers(span, &headers);
    } else {
        record_trace_id(span);
    }
}

/// Like [`continue_trace`], reading `traceparent` from request headers; returns the trace id.
pub fn continue_trace_from_headers(span: &Span, headers: &HeaderMap) -> Option<String> {
    let parent = propagator().extract(&HeaderReader(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_trace_id(span)
}

fn record_trace_id(span: &Span) -> Option<String> {
    let id = trace_id(span)?;
    span.record("trace_id", id.as_str());
    Some(id)
}

/// Writes the current span's `traceparent` into outbound request headers.
pub fn inject_trace_headers(headers: &mut HeaderMap) {
    let context = Span::current().context();
    propagator().inject_context(&context, &mut HeaderWriter(headers));
}

/// The current span's `traceparent`, to carry on an event.
pub fn current_traceparent() -> Option<String> {
    let mut headers = HeaderMap::new();
    inject_trace_headers(&mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

struct HeaderReader<'a>(&'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderWriter<'a>(&'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(key.as_bytes()), value.parse())
        {
            self.0.insert(name, value);
        }
    }
}

/// The `service` and `trace_id` a span carries, itself or through its ancestors.
#[derive(Clone, Default)]
struct SpanTags {
    service: Option<String>,
    trace_id: Option<String>,
}

#[derive(Default)]
struct TagVisitor(SpanTags);

impl Visit for TagVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "service" => self.0.service = Some(value.to_owned()),
            "trace_id" => self.0.trace_id = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Keeps each span's [`SpanTags`], inherited from its parent, so formatting a line is a lookup.
struct ServiceAndTrace;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ServiceAndTrace {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let inherited = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanTags>().cloned())
            .unwrap_or_default();
        let mut visitor = TagVisitor(SpanTags::default());
        attrs.record(&mut visitor);
        let tags = SpanTags {
            service: visitor.0.service.or(inherited.service),
            trace_id: visitor.0.trace_id.or(inherited.trace_id),
        };
        span.extensions_mut().insert(tags);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = TagVisitor(SpanTags::default());
        values.record(&mut visitor);
        let mut ext = span.extensions_mut();
        if let Some(tags) = ext.get_mut::<SpanTags>() {
            if visitor.0.service.is_some() {
                tags.service = visitor.0.service;
            }
            if visitor.0.trace_id.is_some() {
                tags.trace_id = visitor.0.trace_id;
            }
        }
    }
}

/// The JSON lines take what they need of spans from [`SpanTags`]; the text of every span's
/// fields that the formatter would otherwise render for each new span is never read.
struct NoSpanFields;

impl<'writer> FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: Writer<'writer>,
        _fields: R,
    ) -> std::fmt::Result {
        Ok(())
    }
}

/// One JSON object per line: time, level, service, trace id, target, span, message and fields.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), event.metadata().level().as_str().into());
        let (tags, span_name) = ctx
            .lookup_current()
            .map(|s| {
                (
                    s.extensions()
                        .get::<SpanTags>()
                        .cloned()
                        .unwrap_or_default(),
                    Some(s.name()),
                )
            })
            .unwrap_or_default();
        let service = tags
            .service
            .or_else(|| PROCESS.get().cloned())
            .unwrap_or_default();
        line.insert("service".into(), service.into());
        if let Some(trace_id) = tags.trace_id {
            line.insert("trace_id".into(), trace_id.into());
        }
        line.insert("target".into(), event.metadata().target().into());
        if let Some(name) = span_name {
            line.insert("span".into(), name.into());
        }
        let mut fields = JsonFields(Map::new());
        event.record(&mut fields);
        line.extend(fields.0);
        let mut text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
        text.push('\n');
        writer.write_str(&text)
    }
}

struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.insert(field.name().into(), s.into());
    }
}
