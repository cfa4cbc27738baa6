//! Prometheus metrics of one service: RED per route, in-flight requests, and the gauges its
//! platform parts need watched (database pool, outbox backlog, consumer lag).
//!
//! Each service has its own registry labelled with its name, so in embedded mode, where every
//! service shares one process, each `/metrics` still shows only its own service.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::client::ClientMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub consumer: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The metrics of one service. Cheap to clone: one reference count.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

impl std::ops::Deref for Metrics {
    type Target = Families;

    fn deref(&self) -> &Families {
        &self.0
    }
}

/// What [`Metrics`] holds: the registry and the families every service has.
pub struct Families {
    registry: Arc<Mutex<Registry>>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub http_in_flight: Gauge,
    pub http_connections: Gauge,
    pub http_connections_refused: Family<ConnectionLabels, Counter>,
    pub client: ClientMetrics,
    pub events_published: Counter,
    pub events_handled: Family<OutcomeLabels, Counter>,
    pub outbox_backlog: Gauge,
    pub consumer_lag: Family<ConsumerLabels, Gauge>,
    pub db_pool: Family<PoolLabels, Gauge>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "nubo",
            [("service".into(), service.to_owned().into())].into_iter(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests handled, by route and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled now",
            http_in_flight.clone(),
        );
        let http_connections = Gauge::default();
        registry.register(
            "http_connections",
            "HTTP connections open now",
            http_connections.clone(),
        );
        let http_connections_refused = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "http_connections_refused",
            "Connections closed at once because the listener (server_full) or the client (client_full) had as many open as allowed",
            http_connections_refused.clone(),
        );
        let client = ClientMetrics::register(&mut registry);
        let events_published = Counter::default();
        registry.register(
            "events_published",
            "Events the outbox relay published",
            events_published.clone(),
        );
        let events_handled = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "events_handled",
            "Event deliveries by consumer and outcome",
            events_handled.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Events written to the outbox and not yet published",
            outbox_backlog.clone(),
        );
        let consumer_lag = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "consumer_lag",
            "Events waiting for or being handled by a consumer",
            consumer_lag.clone(),
        );
        let db_pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            db_pool.clone(),
        );
        Self(Arc::new(Families {
            registry: Arc::new(Mutex::new(registry)),
            http_requests,
            http_duration,
            http_in_flight,
            http_connections,
            http_connections_refused,
            client,
            events_published,
            events_handled,
            outbox_backlog,
            consumer_lag,
            db_pool,
        }))
    }

    /// Registers a service's own metric (e.g. checkouts by outcome).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
