//! The service-to-service HTTP client: how one nubo service calls another.
//!
//! A [`ServiceClient`] is bound to one target service and owns everything that makes such a call
//! safe to make: a pooled connection, a deadline per attempt, the caller's trace context, retries
//! of replayable requests only (jittered exponential backoff, a bound, and a budget so retries
//! cannot multiply the load on a target that is already struggling), and a circuit breaker that
//! fails calls fast while the target is down and lets one probe through after a cooldown. Every
//! attempt is counted in the `nubo_client_*` metrics of the calling service. [`Call`] makes a
//! typed call on top of it.

mod call;

pub use call::{Call, CallError};

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rand::Rng;
use tower::retry::budget::{Budget, TpsBudget};
use tracing::Instrument;

/// The header that makes a non-idempotent request safe to replay: the target de-duplicates on it.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The longest `Retry-After` a call waits for. A target asking for more is better answered by
/// giving its response to the caller now than by holding the caller's own request open.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(2);

/// How long a retry-budget deposit counts. Ten seconds smooths bursts without remembering the
/// traffic of a minute ago.
const RETRY_BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Idle pooled connections are closed after this, before a target's own idle timeout (the
/// server's header timeout, 5 s by default) would close them under a request being sent.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// The pooled HTTP/1 client over TCP, with TLS for `https://` targets.
type Transport = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<Bytes>,
>;

/// How one service calls one other service.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of one attempt: connect, send, and read the whole response.
    pub timeout: Duration,
    /// Retries after the first attempt of a replayable request.
    pub max_retries: u32,
    /// Consecutive failures (connect error, timeout, 5xx) that open the circuit.
    pub breaker_failure_threshold: u32,
    /// How long an open circuit refuses calls before letting one probe through.
    pub breaker_cooldown: Duration,
    /// Retries may add at most this fraction to the calls made (0.2: one retry per five calls).
    pub retry_budget_ratio: f32,
    /// Retries allowed per second whatever the traffic, so a quiet client can still retry.
    pub retry_budget_min_per_sec: u32,
    /// First backoff ceiling; it doubles with each retry up to `backoff_max`, and the actual
    /// delay is drawn uniformly below it ("full jitter"), so retrying callers do not move in step.
    pub backoff_base: Duration,
    /// Longest backoff between two attempts.
    pub backoff_max: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            max_retries: 2,
            breaker_failure_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
            retry_budget_ratio: 0.2,
            retry_budget_min_per_sec: 10,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// Why a call to another service gave no usable answer. Each message names the target.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("call to {target} refused locally: its circuit is open after repeated failures")]
    CircuitOpen { target: String },
    #[error("call to {target} timed out")]
    Timeout { target: String },
    #[error("cannot connect to {target}")]
    Connect {
        target: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The connection failed after it was made (reset, closed mid-response).
    #[error("call to {target} failed in transit")]
    Transport {
        target: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("{target} answered {status}")]
    Status {
        target: String,
        status: StatusCode,
        body: Bytes,
    },
    #[error("cannot decode the response of {target}")]
    Decode {
        target: String,
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be built (a bad path, an absolute URI); it was never sent.
    #[error("invalid request to {target}")]
    Request {
        target: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl ClientError {
    /// The service the failed call was addressed to.
    pub fn target(&self) -> &str {
        match self {
            Self::CircuitOpen { target }
            | Self::Timeout { target }
            | Self::Connect { target, .. }
            | Self::Transport { target, .. }
            | Self::Status { target, .. }
            | Self::Decode { target, .. }
            | Self::Request { target, .. } => target,
        }
    }

    /// The metric label of an attempt that ended in this error.
    fn outcome(&self) -> &'static str {
        match self {
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect_error",
            Self::Transport { .. } => "transport_error",
            Self::Status { .. } => "status",
            Self::Decode { .. } => "decode_error",
            Self::Request { .. } => "invalid_request",
        }
    }
}

// ----- metrics -----

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    target: String,
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s, like the server side, so both ends of a call read on the same scale.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The metrics of every client of one service. Cheap to clone; register once per service.
#[derive(Clone, Debug)]
pub struct ClientMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<TargetLabels, Histogram, fn() -> Histogram>,
    retries: Family<TargetLabels, Counter>,
    circuit_state: Family<TargetLabels, Gauge>,
}

impl ClientMetrics {
    /// Registers the client metrics. The names carry no `nubo_` of their own: the service's
    /// registry is created with that prefix, which yields `nubo_client_requests_total` and so on.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            retries: Family::default(),
            circuit_state: Family::default(),
        };
        registry.register(
            "client_requests",
            "Attempts of calls to other services, by target, method and outcome (status code, timeout, connect_error, circuit_open, ...)",
            metrics.requests.clone(),
        );
        registry.register(
            "client_request_duration_seconds",
            "Time of one attempt of a call to another service",
            metrics.duration.clone(),
        );
        registry.register(
            "client_retries",
            "Retries of calls to other services",
            metrics.retries.clone(),
        );
        registry.register(
            "client_circuit_state",
            "Circuit breaker per target service: 0 closed, 1 half-open, 2 open",
            metrics.circuit_state.clone(),
        );
        metrics
    }

    fn count(&self, target: &str, method: &Method, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                target: target.to_owned(),
                method: method.as_str().to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

// ----- retry policy -----

/// When and how soon a failed call is tried again: only replayable requests, only for failures
/// that another attempt may cure, at most `max_retries` times, after a jittered exponential
/// backoff (or the target's `Retry-After`), and only while the retry budget has tokens.
struct RetryPolicy {
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    /// Finagle's budget, as tower implements it: each call deposits, each retry withdraws.
    budget: TpsBudget,
}

impl RetryPolicy {
    fn new(config: &ClientConfig) -> Self {
        // TpsBudget asserts its bounds; clamp here so a bad setting cannot panic a service.
        let ratio = if config.retry_budget_ratio.is_finite() {
            config.retry_budget_ratio.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        let min_per_sec = config.retry_budget_min_per_sec.min(1_000_000);
        Self {
            max_retries: config.max_retries,
            backoff_base: config.backoff_base,
            backoff_max: config.backoff_max.max(config.backoff_base),
            budget: TpsBudget::new(RETRY_BUDGET_WINDOW, min_per_sec, ratio),
        }
    }

    /// A request can be sent twice without harm if its method says so, or if it carries an
    /// idempotency key the target de-duplicates on.
    fn is_replayable(method: &Method, headers: &HeaderMap) -> bool {
        matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        ) || headers.contains_key(IDEMPOTENCY_KEY)
    }

    /// How long to wait before retry number `retries_done + 1`, or `None` to give the outcome to
    /// the caller. Does not consult the budget: that is the last check, made only when a retry
    /// would otherwise happen, so that refusals do not spend tokens.
    fn delay_before_retry(
        &self,
        retries_done: u32,
        outcome: &Result<http::Response<Bytes>, ClientError>,
    ) -> Option<Duration> {
        if retries_done >= self.max_retries {
            return None;
        }
        match outcome {
            Err(
                ClientError::Timeout { .. }
                | ClientError::Connect { .. }
                | ClientError::Transport { .. },
            ) => Some(self.backoff(retries_done)),
            Ok(response) if is_retryable_status(response.status()) => {
                match retry_after(response.headers()) {
                    Some(wait) if wait > RETRY_AFTER_MAX => None,
                    Some(wait) => Some(wait),
                    None => Some(self.backoff(retries_done)),
                }
            }
            _ => None,
        }
    }

    /// Full jitter: uniform in `[0, min(max, base * 2^retry)]`.
    fn backoff(&self, retries_done: u32) -> Duration {
        let ceiling = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retries_done))
            .min(self.backoff_max);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=micros))
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// `Retry-After` in delta-seconds, the form nubo's services send. The HTTP-date form is ignored
/// (the backoff applies), which is the safe reading of a header we cannot interpret.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

// ----- circuit breaker -----

#[derive(Debug, Clone, Copy)]
enum BreakerState {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everything else is refused until it settles.
    HalfOpen,
}

impl BreakerState {
    fn gauge_value(self) -> i64 {
        match self {
            Self::Closed { .. } => 0,
            Self::HalfOpen => 1,
            Self::Open { .. } => 2,
        }
    }
}

/// One target's circuit breaker: opens after `threshold` consecutive failures, refuses calls for
/// `cooldown`, then lets a single probe decide whether to close again or stay open.
struct CircuitBreaker {
    target: String,
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
    gauge: Gauge,
}

impl CircuitBreaker {
    fn new(target: &str, config: &ClientConfig, gauge: Gauge) -> Self {
        gauge.set(0);
        Self {
            target: target.to_owned(),
            threshold: config.breaker_failure_threshold.max(1),
            cooldown: config.breaker_cooldown,
            state: Mutex::new(BreakerState::Closed {
                consecutive_failures: 0,
            }),
            gauge,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BreakerState> {
        // The state is a plain value that every path leaves consistent, so a panic elsewhere
        // while holding the lock does not make it wrong.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, state: &mut BreakerState, next: BreakerState) {
        *state = next;
        self.gauge.set(next.gauge_value());
    }

    /// Asks to send one attempt. `None` means the circuit is open: fail fast.
    fn admit(&self) -> Option<BreakerPermit<'_>> {
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Some(BreakerPermit::new(self, false)),
            BreakerState::Open { until } if Instant::now() >= until => {
                tracing::info!(target_service = %self.target, "circuit half-open: sending a probe");
                self.set(&mut state, BreakerState::HalfOpen);
                Some(BreakerPermit::new(self, true))
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => None,
        }
    }

    fn settle(&self, probe: bool, healthy: bool) {
        let mut state = self.lock();
        match (*state, probe, healthy) {
            (BreakerState::HalfOpen, true, true) => {
                tracing::info!(target_service = %self.target, "circuit closed: probe succeeded");
                self.set(
                    &mut state,
                    BreakerState::Closed {
                        consecutive_failures: 0,
                    },
                );
            }
            (BreakerState::HalfOpen, true, false) => {
                tracing::warn!(
                    target_service = %self.target,
                    cooldown_ms = self.cooldown.as_millis() as u64,
                    "circuit re-opened: probe failed"
                );
                self.set(
                    &mut state,
                    BreakerState::Open {
                        until: Instant::now() + self.cooldown,
                    },
                );
            }
            (BreakerState::Closed { .. }, _, true) => {
                *state = BreakerState::Closed {
                    consecutive_failures: 0,
                };
            }
            (
                BreakerState::Closed {
                    consecutive_failures,
                },
                _,
                false,
            ) => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= self.threshold {
                    tracing::warn!(
                        target_service = %self.target,
                        consecutive_failures = failures,
                        cooldown_ms = self.cooldown.as_millis() as u64,
                        "circuit opened: failing calls fast"
                    );
                    self.set(
                        &mut state,
                        BreakerState::Open {
                            until: Instant::now() + self.cooldown,
                        },
                    );
                } else {
                    *state = BreakerState::Closed {
                        consecutive_failures: failures,
                    };
                }
            }
            // The late outcome of an attempt admitted before the circuit changed state: the
            // probe alone decides what happens next.
            _ => {}
        }
    }

    /// A probe that ended without a verdict (cancelled, or never sent): re-open with the
    /// cooldown already over, so the next call probes instead of the circuit hanging half-open.
    fn abandon_probe(&self) {
        let mut state = self.lock();
        if let BreakerState::HalfOpen = *state {
            self.set(
                &mut state,
                BreakerState::Open {
                    until: Instant::now(),
                },
            );
        }
    }
}

/// The right to send one attempt. Settle it with the attempt's outcome; dropping it unsettled
/// (the caller's future was cancelled) frees a half-open circuit for the next probe.
struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl<'a> BreakerPermit<'a> {
    fn new(breaker: &'a CircuitBreaker, probe: bool) -> Self {
        Self {
            breaker,
            probe,
            settled: false,
        }
    }

    /// Records an attempt's outcome. 4xx answers are healthy: the target is up and said no.
    fn settle(mut self, outcome: &Result<http::Response<Bytes>, ClientError>) {
        let healthy = match outcome {
            Ok(response) => !response.status().is_server_error(),
            Err(
                ClientError::Timeout { .. }
                | ClientError::Connect { .. }
                | ClientError::Transport { .. },
            ) => false,
            // Nothing reached the target: no verdict on its health.
            Err(_) => return,
        };
        self.settled = true;
        self.breaker.settle(self.probe, healthy);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.abandon_probe();
        }
    }
}

// ----- the client -----

/// A client of one target service. Cheap to clone; make one per target and share it, so the
/// connection pool, the retry budget and the circuit breaker see all of the calls.
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    base_url: String,
    http: Transport,
    timeout: Duration,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
    metrics: ClientMetrics,
    duration: Histogram,
    retries: Counter,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("target", &self.inner.target)
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    /// A client of `target` (a service name such as `"catalog"`) at `base_url`, over plain
    /// HTTP: for tests and tools. Services call each other with [`ServiceClient::with_tls`].
    pub fn new(
        target: &str,
        base_url: &str,
        config: ClientConfig,
        metrics: &ClientMetrics,
    ) -> Self {
        // No roots and no certificate: an `https://` target fails its handshake.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Self::with_tls(target, base_url, config, metrics, tls)
    }

    /// A client of `target` at `base_url` whose `https://` connections use `tls`: for a
    /// service, [`crate::tls::ServiceIdentity::client_config`], mutual TLS that accepts only
    /// `target`'s certificate.
    pub fn with_tls(
        target: &str,
        base_url: &str,
        config: ClientConfig,
        metrics: &ClientMetrics,
        tls: rustls::ClientConfig,
    ) -> Self {
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(config.timeout));
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        // hyper's client never follows redirects: a service answers for itself, and following
        // one could replay a POST somewhere else.
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector);
        let labels = TargetLabels {
            target: target.to_owned(),
        };
        let gauge = metrics.circuit_state.get_or_create(&labels).clone();
        Self {
            inner: Arc::new(Inner {
                target: target.to_owned(),
                base_url: base_url.trim_end_matches('/').to_owned(),
                http,
                timeout: config.timeout,
                retry: RetryPolicy::new(&config),
                breaker: CircuitBreaker::new(target, &config, gauge),
                metrics: metrics.clone(),
                duration: metrics.duration.get_or_create(&labels).clone(),
                retries: metrics.retries.get_or_create(&labels).clone(),
            }),
        }
    }

    pub fn target(&self) -> &str {
        &self.inner.target
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Sends `request`, whose URI is a path (and query) relative to the base URL, and returns
    /// the target's response whatever its status. Replayable requests (GET, HEAD, OPTIONS, PUT,
    /// DELETE, or any carrying `Idempotency-Key`) are retried on connect errors, timeouts, broken
    /// connections, 429, 502, 503 and 504, within the bound and the budget. While the target's
    /// circuit is open the call fails at once with [`ClientError::CircuitOpen`].
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, ClientError> {
        let inner = &self.inner;
        let (mut parts, body) = request.into_parts();
        let url = self.url_for(&parts.uri)?;
        // These describe a connection and a body framing, not the request: a caller that built
        // its request from the one it received must not pass its own client's on. reqwest sets
        // them for the connection it uses.
        for hop_by_hop in [
            http::header::HOST,
            http::header::CONNECTION,
            http::header::CONTENT_LENGTH,
            http::header::TRANSFER_ENCODING,
        ] {
            parts.headers.remove(hop_by_hop);
        }
        let replayable = RetryPolicy::is_replayable(&parts.method, &parts.headers);
        // Every call earns the budget a fraction of a retry, replayable or not: the budget caps
        // retries as a share of all the traffic to this target.
        inner.retry.budget.deposit();

        let mut retries_done = 0;
        let mut last: Option<Result<http::Response<Bytes>, ClientError>> = None;
        loop {
            let Some(permit) = inner.breaker.admit() else {
                inner
                    .metrics
                    .count(&inner.target, &parts.method, "circuit_open");
                // A retry refused by a circuit that opened meanwhile: the caller learns more
                // from the last real answer than from "circuit open".
                return last.unwrap_or_else(|| {
                    Err(ClientError::CircuitOpen {
                        target: inner.target.clone(),
                    })
                });
            };
            let outcome = self
                .attempt(&parts.method, &url, &parts.headers, &body, retries_done)
                .await;
            permit.settle(&outcome);

            let delay = if replayable {
                inner.retry.delay_before_retry(retries_done, &outcome)
            } else {
                None
            };
            let Some(delay) = delay else {
                return outcome;
            };
            if !inner.retry.budget.withdraw() {
                tracing::debug!(target_service = %inner.target, "retry budget exhausted; not retrying");
                return outcome;
            }
            inner.retries.inc();
            retries_done += 1;
            tracing::debug!(
                target_service = %inner.target,
                retry = retries_done,
                delay_ms = delay.as_millis() as u64,
                "retrying call"
            );
            last = Some(outcome);
            tokio::time::sleep(delay).await;
        }
    }

    fn url_for(&self, uri: &http::Uri) -> Result<http::Uri, ClientError> {
        // An absolute URI would silently bypass the target this client is bound to.
        if uri.scheme().is_some() || uri.authority().is_some() {
            return Err(self.invalid_request(format!(
                "{uri} is absolute; pass a path relative to the base URL"
            )));
        }
        // The path goes as it is: no dot segment is resolved, nothing is re-encoded, so the
        // target routes exactly what the caller authorized.
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{}{path}", self.inner.base_url)
            .parse()
            .map_err(|e| self.invalid_request(e))
    }

    fn invalid_request(&self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> ClientError {
        ClientError::Request {
            target: self.inner.target.clone(),
            source: source.into(),
        }
    }

    /// One attempt under its own deadline and client span, counted and timed.
    async fn attempt(
        &self,
        method: &Method,
        url: &http::Uri,
        headers: &HeaderMap,
        body: &Bytes,
        retries_done: u32,
    ) -> Result<http::Response<Bytes>, ClientError> {
        let inner = &self.inner;
        let span = tracing::info_span!(
            "client request",
            otel.kind = "client",
            target_service = %inner.target,
            http.request.method = %method,
            url.path = url.path(),
            retry = retries_done,
            http.response.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        let outcome = async {
            let mut headers = headers.clone();
            // Inside the attempt's span, so the target's span is a child of this attempt.
            crate::telemetry::inject_trace_headers(&mut headers);
            let mut request = http::Request::new(http_body_util::Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = url.clone();
            *request.headers_mut() = headers;
            // One deadline over sending and reading the whole body: a target that answers
            // headers fast and then stalls is as slow as one that never answers.
            match tokio::time::timeout(inner.timeout, read_response(&inner.http, request)).await {
                Err(_elapsed) => Err(ClientError::Timeout {
                    target: inner.target.clone(),
                }),
                Ok(result) => result.map_err(|e| self.classify(e)),
            }
        }
        .instrument(span.clone())
        .await;
        inner.duration.observe(started.elapsed().as_secs_f64());
        match &outcome {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", status.as_u16());
                inner.metrics.count(&inner.target, method, status.as_str());
            }
            Err(e) => inner.metrics.count(&inner.target, method, e.outcome()),
        }
        outcome
    }

    fn classify(&self, error: Failed) -> ClientError {
        let target = self.inner.target.clone();
        match error {
            Failed::Send(e) if e.is_connect() => ClientError::Connect {
                target,
                source: e.into(),
            },
            Failed::Send(e) => ClientError::Transport {
                target,
                source: e.into(),
            },
            Failed::Read(e) => ClientError::Transport {
                target,
                source: e.into(),
            },
        }
    }
}

/// How an attempt failed below HTTP.
enum Failed {
    /// Connecting, the TLS handshake, or sending (the request may not have been read).
    Send(hyper_util::client::legacy::Error),
    /// Reading the response body.
    Read(hyper::Error),
}

/// Sends a request and reads the whole response into an `http::Response<Bytes>`.
async fn read_response(
    http: &Transport,
    request: http::Request<http_body_util::Full<Bytes>>,
) -> Result<http::Response<Bytes>, Failed> {
    use http_body_util::BodyExt as _;
    let response = http.request(request).await.map_err(Failed::Send)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(Failed::Read)?.to_bytes();
    Ok(http::Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::HeaderMap as AxumHeaders;
    use axum::routing::{any, get};

    use super::*;

    /// Serves `router` on a fresh loopback port and returns its base URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    /// Quick to fail, quick to back off, with a budget that never gets in the way.
    fn fast_config() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(2),
            max_retries: 3,
            breaker_failure_threshold: 100,
            breaker_cooldown: Duration::from_millis(200),
            retry_budget_ratio: 1.0,
            retry_budget_min_per_sec: 100,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
        }
    }

    fn client(base_url: &str, config: ClientConfig) -> (ServiceClient, Registry) {
        let mut registry = Registry::with_prefix("nubo");
        let metrics = ClientMetrics::register(&mut registry);
        (
            ServiceClient::new("catalog", base_url, config, &metrics),
            registry,
        )
    }

    fn encode(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    /// A route that answers 503 to its first `failures` hits, then `ok`, counting every hit.
    fn failing_first(
        failures: usize,
        ok: StatusCode,
    ) -> (axum::routing::MethodRouter, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let route = any(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < failures {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned())
                } else {
                    (ok, r#"{"sku":"TEA-1","stock":7}"#.to_owned())
                }
            }
        });
        (route, hits)
    }

    fn get_request(path: &str) -> http::Request<Bytes> {
        http::Request::get(path).body(Bytes::new()).unwrap()
    }

    fn post(path: &str) -> http::request::Builder {
        http::Request::post(path).header(http::header::CONTENT_TYPE, "application/json")
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Stock {
        sku: String,
        stock: u32,
    }

    #[tokio::test]
    async fn a_read_that_meets_a_busy_catalog_is_retried_until_it_succeeds() {
        let (route, hits) = failing_first(2, StatusCode::OK);
        let base = serve(Router::new().route("/stock/TEA-1", route)).await;
        let (client, registry) = client(&base, fast_config());

        let stock: Stock = client.call(Call::get("/stock/TEA-1")).await.unwrap();

        assert_eq!(
            stock,
            Stock {
                sku: "TEA-1".into(),
                stock: 7
            }
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        let text = encode(&registry);
        assert!(
            text.contains(
                r#"nubo_client_requests_total{target="catalog",method="GET",outcome="503"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"nubo_client_requests_total{target="catalog",method="GET",outcome="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"nubo_client_retries_total{target="catalog"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"nubo_client_request_duration_seconds_count{target="catalog"} 3"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_post_without_idempotency_key_is_sent_once_even_on_503() {
        let (route, hits) = failing_first(1, StatusCode::CREATED);
        let base = serve(Router::new().route("/orders", route)).await;
        let (client, _registry) = client(&base, fast_config());

        let response = client
            .send(post("/orders").body(Bytes::from_static(b"{}")).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.body().as_ref(), b"busy");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_post_with_idempotency_key_is_retried() {
        let (route, hits) = failing_first(2, StatusCode::CREATED);
        let base = serve(Router::new().route("/orders", route)).await;
        let (client, _registry) = client(&base, fast_config());

        let response = client
            .send(
                post("/orders")
                    .header("Idempotency-Key", "checkout-42")
                    .body(Bytes::from_static(b"{}"))
                    .unwrap(),
            )
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_request_id_and_query_reach_the_target_unchanged() {
        let route = get(|headers: AxumHeaders, uri: axum::http::Uri| async move {
            let id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            let mut response = axum::response::Response::new(axum::body::Body::from(format!(
                "{id} {}",
                uri.query().unwrap_or("")
            )));
            response
                .headers_mut()
                .insert("x-served-by", http::HeaderValue::from_static("catalog-1"));
            response
        });
        // The base URL may carry a path prefix and a trailing slash.
        let base = serve(Router::new().route("/api/products", route)).await;
        let (client, _registry) = client(&format!("{base}/api/"), fast_config());

        let response = client
            .send(
                http::Request::get("/products?q=tea&page=2")
                    .header("x-request-id", "req-7f3a")
                    // Headers of the caller's own inbound connection, which must not leak.
                    .header("host", "shop.example")
                    .header("content-length", "999")
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-served-by"], "catalog-1");
        assert_eq!(response.body().as_ref(), b"req-7f3a q=tea&page=2");
    }

    #[tokio::test]
    async fn a_target_that_does_not_answer_in_time_is_a_timeout() {
        let route = get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "too late"
        });
        let base = serve(Router::new().route("/slow", route)).await;
        let config = ClientConfig {
            timeout: Duration::from_millis(100),
            max_retries: 1,
            ..fast_config()
        };
        let (client, registry) = client(&base, config);

        let error = client.send(get_request("/slow")).await.unwrap_err();

        assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
        assert_eq!(error.to_string(), "call to catalog timed out");
        let text = encode(&registry);
        assert!(
            text.contains(
                r#"nubo_client_requests_total{target="catalog",method="GET",outcome="timeout"} 2"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_target_nobody_listens_on_is_a_connect_error() {
        // Bind and drop to get a port that is very likely closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (client, _registry) = client(&format!("http://{addr}"), fast_config());

        let error = client.send(get_request("/stock/TEA-1")).await.unwrap_err();

        assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
        assert_eq!(error.target(), "catalog");
    }

    #[tokio::test]
    async fn the_breaker_opens_fails_fast_then_probes_and_closes() {
        let healthy = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (h, c) = (healthy.clone(), hits.clone());
        let route = get(move || {
            let (healthy, hits) = (h.clone(), c.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                if healthy.load(Ordering::SeqCst) {
                    StatusCode::OK
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        });
        let base = serve(Router::new().route("/health", route)).await;
        let config = ClientConfig {
            max_retries: 0,
            breaker_failure_threshold: 3,
            breaker_cooldown: Duration::from_millis(200),
            ..fast_config()
        };
        let (client, registry) = client(&base, config);
        let call = || client.send(http::Request::get("/health").body(Bytes::new()).unwrap());
        let circuit = |registry: &Registry| {
            let text = encode(registry);
            let line = text
                .lines()
                .find(|l| l.starts_with("nubo_client_circuit_state{"))
                .unwrap()
                .to_owned();
            line.rsplit(' ').next().unwrap().to_owned()
        };
        assert_eq!(circuit(&registry), "0");

        for _ in 0..3 {
            let response = call().await.unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
        assert_eq!(circuit(&registry), "2");

        // Open: calls fail fast and nothing reaches the target.
        for _ in 0..5 {
            let error = call().await.unwrap_err();
            assert!(
                matches!(error, ClientError::CircuitOpen { .. }),
                "{error:?}"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        // After the cooldown one probe goes through; it fails, so the circuit re-opens at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            call().await.unwrap().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        assert!(matches!(call().await, Err(ClientError::CircuitOpen { .. })));
        assert_eq!(hits.load(Ordering::SeqCst), 4);

        // The target recovers; the next probe succeeds and closes the circuit.
        healthy.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(call().await.unwrap().status(), StatusCode::OK);
        assert_eq!(circuit(&registry), "0");
        for _ in 0..3 {
            assert_eq!(call().await.unwrap().status(), StatusCode::OK);
        }
        assert_eq!(hits.load(Ordering::SeqCst), 8);
        let text = encode(&registry);
        assert!(
            text.contains(
                r#"nubo_client_requests_total{target="catalog",method="GET",outcome="circuit_open"} 6"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn client_errors_do_not_open_the_breaker() {
        let route = get(|| async { StatusCode::NOT_FOUND });
        let base = serve(Router::new().route("/missing", route)).await;
        let config = ClientConfig {
            breaker_failure_threshold: 2,
            ..fast_config()
        };
        let (client, _registry) = client(&base, config);

        for _ in 0..5 {
            let error = client
                .call::<Stock>(Call::get("/missing"))
                .await
                .unwrap_err();
            assert!(matches!(error, CallError::NotFound { .. }), "{error:?}");
        }
    }

    #[tokio::test]
    async fn an_exhausted_retry_budget_stops_retries() {
        let (route, hits) = failing_first(usize::MAX, StatusCode::OK);
        let base = serve(Router::new().route("/stock", route)).await;
        // No share of traffic, a floor of 1 retry/s: 10 retries over the budget's 10 s window.
        let config = ClientConfig {
            max_retries: 3,
            retry_budget_ratio: 0.0,
            retry_budget_min_per_sec: 1,
            ..fast_config()
        };
        let (client, registry) = client(&base, config);
        let call = || client.send(http::Request::get("/stock").body(Bytes::new()).unwrap());

        // 3 + 3 + 3 + 1 retries spend the 10 tokens; the fifth call gets no retry at all.
        for _ in 0..5 {
            let response = call().await.unwrap();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        }

        assert_eq!(hits.load(Ordering::SeqCst), 5 + 10);
        let text = encode(&registry);
        assert!(
            text.contains(r#"nubo_client_retries_total{target="catalog"} 10"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn retry_after_is_honoured_or_answered_when_too_long() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let route = get(move |headers: AxumHeaders| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let wait = headers
                    .get("x-test-wait")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                if n == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", wait)]).into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }
        });
        use axum::response::IntoResponse;
        let base = serve(Router::new().route("/limited", route)).await;
        let (client, _registry) = client(&base, fast_config());
        let call = |wait: &'static str| {
            client.send(
                http::Request::get("/limited")
                    .header("x-test-wait", wait)
                    .body(Bytes::new())
                    .unwrap(),
            )
        };

        // A short Retry-After is waited out and the call succeeds.
        assert_eq!(call("0").await.unwrap().status(), StatusCode::OK);
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        // A Retry-After longer than the cap goes back to the caller instead.
        hits.store(0, Ordering::SeqCst);
        let response = call("120").await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "120");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_absolute_uri_is_refused_before_sending() {
        let (client, _registry) = client("http://127.0.0.1:9", fast_config());

        let error = client
            .send(
                http::Request::get("http://elsewhere.example/steal")
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await
            .unwrap_err();

        assert!(matches!(error, ClientError::Request { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_typed_call_sorts_answers_into_what_the_caller_can_act_on() {
        let router = Router::new()
            .route(
                "/stock/{sku}",
                get(|axum::extract::Path(sku): axum::extract::Path<String>| async move {
                    match sku.as_str() {
                        "TEA-1" => (StatusCode::OK, r#"{"sku":"TEA-1","stock":7}"#).into_response(),
                        "GONE" => StatusCode::NOT_FOUND.into_response(),
                        "BUSY" => StatusCode::TOO_MANY_REQUESTS.into_response(),
                        "BROKEN" => (StatusCode::OK, "not json").into_response(),
                        _ => (
                            StatusCode::CONFLICT,
                            [("content-type", "application/problem+json")],
                            r#"{"type":"https://nubo.dev/problems/conflict","title":"Conflict","status":409,"detail":"not enough stock","errors":[{"field":"quantity","message":"only 2 left"}]}"#,
                        )
                            .into_response(),
                    }
                }),
            )
            .route(
                "/echo",
                axum::routing::post(|headers: AxumHeaders, body: String| async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned();
                    axum::Json(serde_json::json!({ "key": key, "body": body }))
                }),
            )
            .route("/nothing", axum::routing::post(|| async { StatusCode::NO_CONTENT }));
        use axum::response::IntoResponse;
        let base = serve(router).await;
        let config = ClientConfig {
            max_retries: 0,
            ..fast_config()
        };
        let (client, _registry) = client(&base, config);

        let stock: Stock = client.call(Call::get("/stock/TEA-1")).await.unwrap();
        assert_eq!(stock.stock, 7);
        let gone = client.call::<Stock>(Call::get("/stock/GONE")).await;
        assert_eq!(
            gone,
            Err(CallError::NotFound {
                service: "catalog".into()
            })
        );
        let refused = client
            .call::<Stock>(Call::get("/stock/FEW"))
            .await
            .unwrap_err();
        let CallError::Refused { problem, .. } = &refused else {
            panic!("{refused:?}");
        };
        assert_eq!(problem.status, 409);
        assert_eq!(problem.reason(), "not enough stock: only 2 left");
        assert!(!refused.is_transient());
        for transient in ["BUSY", "BROKEN"] {
            let error = client
                .call::<Stock>(Call::get(format!("/stock/{transient}")))
                .await
                .unwrap_err();
            assert!(error.is_transient(), "{transient}: {error:?}");
        }
        let echoed: serde_json::Value = client
            .call(
                Call::post("/echo")
                    .json(&serde_json::json!({ "n": 1 }))
                    .idempotent_on("order-42"),
            )
            .await
            .unwrap();
        assert_eq!(echoed["key"], "order-42");
        assert_eq!(echoed["body"], r#"{"n":1}"#);
        let (): () = client.call(Call::post("/nothing")).await.unwrap();
        let unreachable = client_at_closed_port().call::<()>(Call::get("/x")).await;
        assert!(matches!(unreachable, Err(CallError::Unavailable(_))));
    }

    fn client_at_closed_port() -> ServiceClient {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        client(&format!("http://{addr}"), fast_config()).0
    }
}
