//! The process's recent log lines, kept in memory for the ops console: a bounded window (by
//! count and by bytes), so logs can be read with no log store installed. Every line the
//! configured filter lets through goes in, whatever the terminal shows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::bounded::{Bounded, Kept};
use super::{JsonFields, PROCESS, SpanTags};

/// At most this many lines are kept ...
pub const WINDOW_LINES: usize = 5_000;
/// ... and at most about this many bytes of them.
pub const WINDOW_BYTES: usize = 3 << 20;
/// A field longer than this is cut, so one huge line cannot push the others out.
const FIELD_CHARS: usize = 2_000;

/// One log line as the console shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    /// Its place in the window of the process that wrote it: later lines have larger numbers.
    pub seq: u64,
    pub time: String,
    pub level: String,
    pub service: String,
    pub target: String,
    pub message: String,
    pub trace_id: Option<String>,
    pub fields: Map<String, Value>,
}

impl Kept for LogLine {
    /// Roughly what the allocator holds for it (see the span window's `size`).
    fn size(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len) + 320)
            .sum();
        1024 + self.time.len()
            + self.service.len()
            + self.target.len()
            + self.message.len()
            + fields
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

static WINDOW: Bounded<LogLine> = Bounded::new(WINDOW_LINES, WINDOW_BYTES);

fn push(line: LogLine) {
    WINDOW.push([line]);
}

/// Lines after `after` that `keep` accepts, oldest first, at most `limit` of them (the newest).
pub fn recent(after: u64, limit: usize, keep: impl Fn(&LogLine) -> bool) -> Vec<LogLine> {
    WINDOW.recent(after, limit, keep)
}

/// The window's size now: lines and approximate bytes.
pub fn usage() -> (usize, usize) {
    WINDOW.usage()
}

/// Puts every event it sees into the window.
pub(super) struct WindowLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for WindowLayer {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let tags = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<SpanTags>().cloned())
            .unwrap_or_default();
        let mut fields = JsonFields(Map::new());
        event.record(&mut fields);
        let mut fields = fields.0;
        for value in fields.values_mut() {
            if let Value::String(s) = value
                && s.len() > FIELD_CHARS
            {
                let mut end = FIELD_CHARS;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push('…');
            }
        }
        let message = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        // A line outside any service's span may name its service itself (`started`, `stopped`).
        let named = match fields.get("service") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        push(LogLine {
            seq: 0,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            level: event.metadata().level().as_str().to_owned(),
            service: tags
                .service
                .or(named)
                .or_else(|| PROCESS.get().cloned())
                .unwrap_or_default(),
            target: event.metadata().target().to_owned(),
            message,
            trace_id: tags.trace_id,
            fields,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(service: &str, message: &str) -> LogLine {
        LogLine {
            seq: 0,
            time: String::new(),
            level: "INFO".into(),
            service: service.into(),
            target: "t".into(),
            message: message.into(),
            trace_id: None,
            fields: Map::new(),
        }
    }

    #[test]
    fn the_window_keeps_the_newest_lines_within_its_bounds() {
        for i in 0..WINDOW_LINES + 10 {
            push(line("window-test", &format!("line {i}")));
        }
        let (count, bytes) = usage();
        assert!(
            count <= WINDOW_LINES && bytes <= WINDOW_BYTES,
            "{count} {bytes}"
        );
        let mine = recent(0, 3, |l| l.service == "window-test");
        let last = format!("line {}", WINDOW_LINES + 9);
        assert_eq!(mine.len(), 3);
        assert_eq!(mine[2].message, last);
        assert!(mine[0].seq < mine[2].seq);
        assert!(recent(mine[2].seq, 10, |_| true).is_empty());
    }
}
