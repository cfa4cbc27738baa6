//! Repeated warnings, rate limited: a client looping against an open circuit once made one
//! warning 1.2 million times (725 MB). Each place in the code that warns may write a burst of
//! lines per window; what it writes beyond that is counted instead, and one line per place says
//! how many were dropped. Errors always show, and so do informational lines (one per order, say,
//! which are many under load but each about something else).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};

/// The target of the lines that report dropped repeats; they are never limited themselves.
pub const TARGET: &str = "nubo::log";

/// A per-layer filter that lets each callsite write `burst` warnings per `window`.
#[derive(Clone)]
pub struct Repeats {
    inner: Arc<Inner>,
}

struct Inner {
    burst: u32,
    window: Duration,
    places: Mutex<HashMap<Identifier, Place>>,
}

struct Place {
    metadata: &'static Metadata<'static>,
    window_start: Instant,
    written: u32,
    dropped: u64,
}

impl Repeats {
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                burst,
                window,
                places: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Writes one line for each place whose lines were dropped since the last report, saying
    /// how many and where from, and forgets places that have been quiet for a window.
    pub fn report(&self) {
        let dropped: Vec<(&'static Metadata<'static>, u64)> = {
            let mut places = self.inner.places.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let window = self.inner.window;
            let dropped = places
                .values_mut()
                .filter(|p| p.dropped > 0)
                .map(|p| (p.metadata, std::mem::take(&mut p.dropped)))
                .collect();
            places.retain(|_, p| now.duration_since(p.window_start) < window * 2);
            dropped
        };
        // Logged outside the lock: these lines pass through this filter too.
        for (metadata, count) in dropped {
            tracing::warn!(
                target: TARGET,
                dropped = count,
                from_target = metadata.target(),
                from_file = metadata.file().unwrap_or("?"),
                from_line = metadata.line().unwrap_or(0),
                "repeated log lines were dropped"
            );
        }
    }

    /// Reports dropped lines every `every` on a thread of its own, for the process's lifetime.
    pub fn report_every(&self, every: Duration) {
        let repeats = self.clone();
        let spawned = std::thread::Builder::new()
            .name("nubo-log-repeats".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    repeats.report();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the reporter of dropped log lines");
        }
    }

    fn admit(&self, metadata: &'static Metadata<'static>) -> bool {
        if *metadata.level() != Level::WARN || metadata.target() == TARGET {
            return true;
        }
        let mut places = self.inner.places.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let place = places.entry(metadata.callsite()).or_insert_with(|| Place {
            metadata,
            window_start: now,
            written: 0,
            dropped: 0,
        });
        if now.duration_since(place.window_start) >= self.inner.window {
            place.window_start = now;
            place.written = 0;
        }
        if place.written < self.inner.burst {
            place.written += 1;
            true
        } else {
            place.dropped += 1;
            false
        }
    }
}

impl<S: Subscriber> Filter<S> for Repeats {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        self.admit(event.metadata())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    use super::Repeats;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn a_warning_in_a_tight_loop_writes_a_burst_and_then_how_many_were_dropped() {
        let lines = Lines::default();
        let repeats = Repeats::new(10, Duration::from_secs(3600));
        let writer = lines.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(repeats.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..100_000 {
                tracing::warn!(attempt = i, "the circuit is open");
            }
            tracing::warn!("another warning, from another place");
            for _ in 0..30 {
                tracing::error!("errors always show");
                tracing::info!("so do informational lines");
            }
            repeats.report();
            // A second report has nothing new to say.
            repeats.report();
        });
        let text = lines.text();
        assert_eq!(text.matches("the circuit is open").count(), 10, "{text}");
        assert_eq!(text.matches("another warning").count(), 1);
        assert_eq!(text.matches("errors always show").count(), 30);
        assert_eq!(text.matches("so do informational lines").count(), 30);
        let reports: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("repeated log lines were dropped"))
            .collect();
        assert_eq!(reports.len(), 1, "{text}");
        assert!(reports[0].contains("dropped=99990"), "{}", reports[0]);
        assert!(reports[0].contains("repeats.rs"), "{}", reports[0]);
    }
}
