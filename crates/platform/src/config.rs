//! Typed settings read from `NUBO_*` environment variables and validated before anything starts.
//!
//! Every variable the platform or a service reads is named by a constant here or in the service's
//! description, so a misspelt `NUBO_` variable is an error rather than a silently ignored setting.
//! Parsing collects every problem at once; the message names each offending variable.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::server::ConnectionLimits;

pub const MODE: &str = "NUBO_MODE";
pub const HTTP_ADDR: &str = "NUBO_HTTP_ADDR";
pub const OPS_ADDR: &str = "NUBO_OPS_ADDR";
pub const TLS_DIR: &str = "NUBO_TLS_DIR";
pub const TLS_TRUST_DOMAIN: &str = "NUBO_TLS_TRUST_DOMAIN";
pub const HTTP_HEADER_TIMEOUT_MS: &str = "NUBO_HTTP_HEADER_TIMEOUT_MS";
pub const HTTP_MAX_CONNECTIONS: &str = "NUBO_HTTP_MAX_CONNECTIONS";
pub const HTTP_MAX_CONNECTIONS_PER_CLIENT: &str = "NUBO_HTTP_MAX_CONNECTIONS_PER_CLIENT";
pub const DATA_DIR: &str = "NUBO_DATA_DIR";
pub const DATABASE_URL: &str = "NUBO_DATABASE_URL";
pub const DB_MAX_CONNECTIONS: &str = "NUBO_DB_MAX_CONNECTIONS";
pub const NATS_URL: &str = "NUBO_NATS_URL";
pub const NATS_REPLICAS: &str = "NUBO_NATS_REPLICAS";
pub const REDIS_URL: &str = "NUBO_REDIS_URL";
pub const NAMESPACE: &str = "NUBO_NAMESPACE";
pub const LOG: &str = "NUBO_LOG";
pub const LOG_FORMAT: &str = "NUBO_LOG_FORMAT";
pub const REQUEST_TIMEOUT_MS: &str = "NUBO_REQUEST_TIMEOUT_MS";
pub const BODY_LIMIT_BYTES: &str = "NUBO_BODY_LIMIT_BYTES";
pub const CONCURRENCY_LIMIT: &str = "NUBO_CONCURRENCY_LIMIT";
pub const SHUTDOWN_TIMEOUT_SECS: &str = "NUBO_SHUTDOWN_TIMEOUT_SECS";
pub const CLIENT_TIMEOUT_MS: &str = "NUBO_CLIENT_TIMEOUT_MS";
pub const CLIENT_MAX_RETRIES: &str = "NUBO_CLIENT_MAX_RETRIES";
pub const CACHE_TTL_SECS: &str = "NUBO_CACHE_TTL_SECS";
pub const SEED_DEMO_DATA: &str = "NUBO_SEED_DEMO_DATA";
pub const EVENT_MAX_ATTEMPTS: &str = "NUBO_EVENT_MAX_ATTEMPTS";
pub const EVENT_ACK_WAIT_MS: &str = "NUBO_EVENT_ACK_WAIT_MS";
pub const OUTBOX_POLL_MS: &str = "NUBO_OUTBOX_POLL_MS";

/// A service of the shop, where it listens and whom it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub name: &'static str,
    /// Its port unless told otherwise (`NUBO_HTTP_ADDR`); also its port in `nubo up`, shifted
    /// with `--port`.
    pub port: u16,
    /// A port of its own for its probes and `/metrics`, kept off `port` (the gateway's, whose
    /// port the internet reaches); `None` serves them on `port`.
    pub ops_port: Option<u16>,
    /// The services it calls over HTTP: the call graph, written once. A service's internal
    /// routes admit exactly the services that list it here, the edge excepted ([`EDGE`]).
    pub calls: &'static [&'static str],
}

const fn service(name: &'static str, port: u16, calls: &'static [&'static str]) -> ServiceEntry {
    ServiceEntry {
        name,
        port,
        ops_port: None,
        calls,
    }
}

/// The public edge: it calls every service, but only their public routes; no internal route
/// admits it, so a request the internet sent can never reach one, however it is spelt.
pub const EDGE: &str = "gateway";

/// Every service of the shop, the one list of them: each crate's description, `nubo`'s
/// composition, the manifests and the default addresses all take names and ports from here. A
/// variable `NUBO_<SERVICE>_...` belongs to that service: a process running other services
/// ignores it instead of calling it unknown.
pub const SERVICES: &[ServiceEntry] = &[
    ServiceEntry {
        name: "gateway",
        port: 8080,
        ops_port: Some(8090),
        // identity also serves the keys tokens are checked with.
        calls: &[
            "cart",
            "catalog",
            "identity",
            "inventory",
            "notifications",
            "orders",
            "payments",
        ],
    },
    service("identity", 8081, &[]),
    // identity: the keys of customers' and admins' tokens.
    service("catalog", 8082, &["identity"]),
    // catalog: names and prices of what is in a cart.
    service("cart", 8083, &["identity", "catalog"]),
    service("inventory", 8084, &["identity"]),
    // The checkout saga's steps.
    service(
        "orders",
        8085,
        &["cart", "identity", "inventory", "payments"],
    ),
    service("payments", 8086, &["identity"]),
    service("notifications", 8087, &["identity"]),
];

/// Where `service` listens, if it is a service of the shop.
pub fn ports_of(service: &str) -> Option<&'static ServiceEntry> {
    SERVICES.iter().find(|s| s.name == service)
}

/// Whether `caller` may call `callee`'s internal routes: the call graph says it calls it, and
/// it is not the edge.
pub fn may_call_internal(caller: &str, callee: &str) -> bool {
    caller != EDGE && ports_of(caller).is_some_and(|c| c.calls.contains(&callee))
}

/// `NUBO_<SERVICE>_URL`, where a service is reached by the others.
pub fn url_variable(service: &str) -> String {
    format!("NUBO_{}_URL", service.to_uppercase())
}

/// Where a service is reached when `NUBO_<SERVICE>_URL` is unset: its Kubernetes Service name,
/// over mutual TLS.
pub fn default_url(service: &str) -> Option<String> {
    ports_of(service).map(|s| format!("https://{}:{}", s.name, s.port))
}

/// Not ours, but read: the standard OpenTelemetry exporter endpoint.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Every platform variable, with what it means and its default, for `--help`, the README and the
/// deployment drift guard.
pub const PLATFORM_VARIABLES: &[(&str, &str, &str)] = &[
    (
        MODE,
        "`embedded` (SQLite, in-process bus, memory cache) or `distributed` (PostgreSQL, NATS, Redis)",
        "distributed for `serve`, embedded for `up`",
    ),
    (
        HTTP_ADDR,
        "address the service listens on",
        "0.0.0.0:<service port>",
    ),
    (
        OPS_ADDR,
        "address the probes and /metrics listen on, apart from the service's own port (the gateway keeps them off its public port)",
        "unset: the service's own port; gateway 0.0.0.0:8090",
    ),
    (
        TLS_DIR,
        "directory with this service's certificate (tls.crt), key (tls.key) and the CA of every service's (ca.crt), as a cert-manager Secret mounts them; re-read when they change",
        "required when distributed; embedded: <data dir>/tls/<service>, issued from a CA nubo creates there",
    ),
    (
        TLS_TRUST_DOMAIN,
        "trust domain of the SPIFFE ids (spiffe://<domain>/service/<name>) service certificates carry",
        "nubo.local",
    ),
    (
        HTTP_HEADER_TIMEOUT_MS,
        "how long a client may take to send a request's headers, and a kept-alive connection may stay idle, before it is closed",
        "5000",
    ),
    (
        HTTP_MAX_CONNECTIONS,
        "connections a listener keeps open at once; more are closed as they arrive",
        "8192",
    ),
    (
        HTTP_MAX_CONNECTIONS_PER_CLIENT,
        "connections one client address may keep open at once (0: no bound, e.g. behind a proxy that is the only client)",
        "512",
    ),
    (
        DATA_DIR,
        "embedded mode: directory holding one SQLite file per service",
        "./nubo-data",
    ),
    (
        DATABASE_URL,
        "distributed mode: PostgreSQL URL; each service uses its own schema",
        "required when distributed",
    ),
    (
        DB_MAX_CONNECTIONS,
        "connections in each service's database pool",
        "10",
    ),
    (
        NATS_URL,
        "distributed mode: NATS server with JetStream",
        "required when distributed",
    ),
    (
        NATS_REPLICAS,
        "copies JetStream keeps of every event when nubo creates the stream (3 in a 3-node cluster)",
        "1",
    ),
    (
        REDIS_URL,
        "distributed mode: Redis server for the cache",
        "required when distributed",
    ),
    (
        NAMESPACE,
        "prefix of NATS subjects, the JetStream stream and Redis keys; lets two shops share servers",
        "nubo",
    ),
    (LOG, "log filter (tracing `EnvFilter` syntax)", "info"),
    (
        LOG_FORMAT,
        "`json`, `pretty`, or `auto` (pretty on a terminal, JSON otherwise)",
        "auto",
    ),
    (
        REQUEST_TIMEOUT_MS,
        "deadline for handling one inbound request",
        "10000",
    ),
    (BODY_LIMIT_BYTES, "largest request body accepted", "262144"),
    (
        CONCURRENCY_LIMIT,
        "requests handled at once before new ones are shed with 503",
        "512",
    ),
    (
        SHUTDOWN_TIMEOUT_SECS,
        "how long in-flight work may finish after SIGTERM",
        "20",
    ),
    (
        CLIENT_TIMEOUT_MS,
        "deadline of one service-to-service call attempt",
        "3000",
    ),
    (
        CLIENT_MAX_RETRIES,
        "retries of an idempotent service-to-service call",
        "2",
    ),
    (CACHE_TTL_SECS, "lifetime of cached reads", "60"),
    (
        SEED_DEMO_DATA,
        "seed demo data into empty stores at start",
        "false (true for `up`)",
    ),
    (
        EVENT_MAX_ATTEMPTS,
        "deliveries of one event before it is dead-lettered",
        "5",
    ),
    (
        EVENT_ACK_WAIT_MS,
        "how long a delivered, unacknowledged event waits before redelivery",
        "30000",
    ),
    (
        OUTBOX_POLL_MS,
        "how often the outbox relay looks for unpublished events",
        "500",
    ),
];

/// What went wrong reading the environment: every bad variable, each with its reason.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<(String, String)>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for (name, why) in &self.0 {
            write!(f, "\n  {name}: {why}")?;
        }
        Ok(())
    }
}

/// A snapshot of the environment that records which variables were read and what failed.
pub struct Env {
    vars: BTreeMap<String, String>,
    errors: Vec<(String, String)>,
}

/// Variables from literal pairs, in the form a service's `Config::from_env` reads them: for
/// tests, which spell out the environment they run in.
pub fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The raw value, if set and not empty.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parsed value, or `default` when the variable is unset.
    pub fn get<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.optional(name).unwrap_or(default)
    }

    /// A parsed value, or `None` when unset; a value that does not parse is recorded as an error.
    pub fn optional<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let raw = self.raw(name)?.to_owned();
        match raw.parse() {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(name, format!("cannot parse {raw:?}: {e}"));
                None
            }
        }
    }

    /// A value that must be present.
    pub fn required<T>(&mut self, name: &str, why: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        if self.raw(name).is_none() {
            self.fail(name, format!("is required {why}"));
            return None;
        }
        self.optional(name)
    }

    /// A positive integer bounded above, the shape of most of our limits.
    pub fn bounded(&mut self, name: &str, default: u64, max: u64) -> u64 {
        self.in_range(name, default, 1..=max)
    }

    /// A number within `range` (ends included), or `default` when unset: a limit that may be
    /// zero, one with a floor, a signed amount, a fraction. A value outside, NaN included, is
    /// recorded as an error (and `default` returned).
    pub fn in_range<T>(&mut self, name: &str, default: T, range: RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Debug,
        T::Err: fmt::Display,
    {
        let value = self.get(name, default);
        if range.contains(&value) {
            return value;
        }
        // Debug, so a fraction's ends read `0.0` and `1.0` rather than `0` and `1`.
        let (min, max) = (range.start(), range.end());
        self.fail(
            name,
            format!("must be between {min:?} and {max:?}, got {value:?}"),
        );
        default
    }

    pub fn fail(&mut self, name: &str, why: impl Into<String>) {
        self.errors.push((name.to_owned(), why.into()));
    }

    /// Every `NUBO_` variable that is set but not in `known`: almost always a typo. Variables of
    /// services in `others` (`NUBO_<SERVICE>_...`) are not this process's business and pass.
    pub fn reject_unknown(&mut self, known: &[&str], others: &[&str]) {
        let others: Vec<String> = others
            .iter()
            .map(|s| format!("NUBO_{}_", s.to_uppercase()))
            .collect();
        let unknown: Vec<String> = self
            .vars
            .keys()
            .filter(|k| k.starts_with("NUBO_") && !known.contains(&k.as_str()))
            .filter(|k| !others.iter().any(|prefix| k.starts_with(prefix.as_str())))
            .cloned()
            .collect();
        for name in unknown {
            let hint = known
                .iter()
                .min_by_key(|k| edit_distance(k, &name))
                .filter(|k| edit_distance(k, &name) <= 3)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            self.fail(&name, format!("is not a nubo setting{hint}"));
        }
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.errors))
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let old = row[j + 1];
            row[j + 1] = (old + 1).min(row[j] + 1).min(prev + usize::from(ca != *cb));
            prev = old;
        }
    }
    row[b.len()]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Distributed,
}

impl FromStr for Mode {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(Self::Embedded),
            "distributed" => Ok(Self::Distributed),
            _ => Err("expected `embedded` or `distributed`"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
    Auto,
}

impl FromStr for LogFormat {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            "auto" => Ok(Self::Auto),
            _ => Err("expected `json`, `pretty` or `auto`"),
        }
    }
}

/// Where a service keeps its state.
#[derive(Clone, Debug)]
pub enum Backing {
    /// SQLite files under `data_dir`, the in-process bus, the memory cache.
    Embedded { data_dir: PathBuf },
    /// PostgreSQL, NATS JetStream and Redis.
    Distributed {
        database_url: String,
        nats_url: String,
        redis_url: String,
    },
}

/// Settings shared by every service.
#[derive(Clone, Debug)]
pub struct Settings {
    pub backing: Backing,
    pub http_addr: SocketAddr,
    /// Where probes and `/metrics` are served when not on `http_addr`.
    pub ops_addr: Option<SocketAddr>,
    /// The directory of the service's certificate, key and CA; `None` (embedded only): issued
    /// under the data directory.
    pub tls_dir: Option<PathBuf>,
    pub trust_domain: String,
    pub connection_limits: ConnectionLimits,
    pub namespace: String,
    pub nats_replicas: usize,
    pub db_max_connections: u32,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub concurrency_limit: usize,
    pub shutdown_timeout: Duration,
    pub client_timeout: Duration,
    pub client_max_retries: u32,
    pub cache_ttl: Duration,
    pub seed_demo_data: bool,
    pub event_max_attempts: u32,
    pub event_ack_wait: Duration,
    pub outbox_poll: Duration,
    pub otlp_endpoint: Option<String>,
}

/// A value that must never reach a log: its `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Settings {
    /// Reads the platform's settings; `default_mode` and `default_port` come from how the process
    /// was started (`up` or `serve <service>`).
    pub fn read(env: &mut Env, default_mode: Mode, default_port: u16) -> Self {
        let mode = env.get(MODE, default_mode);
        let backing = match mode {
            Mode::Embedded => Backing::Embedded {
                data_dir: env.get(DATA_DIR, PathBuf::from("nubo-data")),
            },
            Mode::Distributed => {
                let why = "in distributed mode";
                Backing::Distributed {
                    database_url: env.required(DATABASE_URL, why).unwrap_or_default(),
                    nats_url: env.required(NATS_URL, why).unwrap_or_default(),
                    redis_url: env.required(REDIS_URL, why).unwrap_or_default(),
                }
            }
        };
        let namespace: String = env.get(NAMESPACE, "nubo".to_owned());
        if namespace.is_empty()
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            env.fail(NAMESPACE, "must be letters, digits, `_` or `-`");
        }
        let default_addr = SocketAddr::from(([0, 0, 0, 0], default_port));
        Self {
            backing,
            http_addr: env.get(HTTP_ADDR, default_addr),
            ops_addr: env
                .raw(OPS_ADDR)
                .is_some()
                .then(|| env.get(OPS_ADDR, default_addr)),
            tls_dir: env.raw(TLS_DIR).map(PathBuf::from),
            trust_domain: env.get(
                TLS_TRUST_DOMAIN,
                crate::tls::DEFAULT_TRUST_DOMAIN.to_owned(),
            ),
            connection_limits: ConnectionLimits {
                header_timeout: Duration::from_millis(env.bounded(
                    HTTP_HEADER_TIMEOUT_MS,
                    5_000,
                    600_000,
                )),
                max_connections: env.bounded(HTTP_MAX_CONNECTIONS, 8192, 1_000_000) as usize,
                max_per_client: env.get(HTTP_MAX_CONNECTIONS_PER_CLIENT, 512usize),
            },
            namespace,
            nats_replicas: env.bounded(NATS_REPLICAS, 1, 5) as usize,
            db_max_connections: env.bounded(DB_MAX_CONNECTIONS, 10, 1000) as u32,
            log_filter: env.get(LOG, "info".to_owned()),
            log_format: env.get(LOG_FORMAT, LogFormat::Auto),
            request_timeout: Duration::from_millis(env.bounded(
                REQUEST_TIMEOUT_MS,
                10_000,
                600_000,
            )),
            body_limit_bytes: env.bounded(BODY_LIMIT_BYTES, 256 * 1024, 64 << 20) as usize,
            concurrency_limit: env.bounded(CONCURRENCY_LIMIT, 512, 100_000) as usize,
            shutdown_timeout: Duration::from_secs(env.bounded(SHUTDOWN_TIMEOUT_SECS, 20, 3600)),
            client_timeout: Duration::from_millis(env.bounded(CLIENT_TIMEOUT_MS, 3_000, 600_000)),
            client_max_retries: env.get(CLIENT_MAX_RETRIES, 2u32).min(10),
            cache_ttl: Duration::from_secs(env.bounded(CACHE_TTL_SECS, 60, 86_400)),
            seed_demo_data: env.get(SEED_DEMO_DATA, false),
            event_max_attempts: env.bounded(EVENT_MAX_ATTEMPTS, 5, 1000) as u32,
            event_ack_wait: Duration::from_millis(env.bounded(
                EVENT_ACK_WAIT_MS,
                30_000,
                3_600_000,
            )),
            outbox_poll: Duration::from_millis(env.bounded(OUTBOX_POLL_MS, 500, 60_000)),
            otlp_endpoint: env.raw(OTLP_ENDPOINT).map(str::to_owned),
        }
    }

    pub fn mode(&self) -> Mode {
        match self.backing {
            Backing::Embedded { .. } => Mode::Embedded,
            Backing::Distributed { .. } => Mode::Distributed,
        }
    }

    /// Settings for tests and embedded runs: everything default, state under `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let mut env = Env::from_pairs([(DATA_DIR, data_dir.into().display().to_string())]);
        let mut settings = Self::read(&mut env, Mode::Embedded, 0);
        settings.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<&'static str> {
        PLATFORM_VARIABLES.iter().map(|v| v.0).collect()
    }

    #[test]
    fn a_value_that_does_not_parse_names_its_variable() {
        let mut env = Env::from_pairs([(REQUEST_TIMEOUT_MS, "soon")]);
        Settings::read(&mut env, Mode::Embedded, 8080);
        let err = env.finish().unwrap_err().to_string();
        assert!(err.contains("NUBO_REQUEST_TIMEOUT_MS"), "{err}");
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn distributed_mode_requires_its_servers() {
        let mut env = Env::from_pairs([(MODE, "distributed")]);
        Settings::read(&mut env, Mode::Embedded, 8080);
        let err = env.finish().unwrap_err().to_string();
        for name in [DATABASE_URL, NATS_URL, REDIS_URL] {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn a_misspelt_variable_is_refused_with_a_suggestion() {
        let mut env = Env::from_pairs([("NUBO_REQUST_TIMEOUT_MS", "100")]);
        Settings::read(&mut env, Mode::Embedded, 8080);
        env.reject_unknown(&known(), &[]);
        let err = env.finish().unwrap_err().to_string();
        assert!(err.contains("NUBO_REQUST_TIMEOUT_MS"), "{err}");
        assert!(
            err.contains("did you mean NUBO_REQUEST_TIMEOUT_MS"),
            "{err}"
        );
    }

    #[test]
    fn another_services_variables_are_not_unknown() {
        let mut env = Env::from_pairs([("NUBO_GATEWAY_RATE_LIMIT_RPS", "5")]);
        Settings::read(&mut env, Mode::Embedded, 8080);
        env.reject_unknown(&known(), &["gateway"]);
        env.finish().unwrap();
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s} {s:?}").contains("hunter2"));
    }

    #[test]
    fn limits_of_zero_are_refused() {
        let mut env = Env::from_pairs([(CONCURRENCY_LIMIT, "0")]);
        Settings::read(&mut env, Mode::Embedded, 8080);
        assert!(
            env.finish()
                .unwrap_err()
                .to_string()
                .contains(CONCURRENCY_LIMIT)
        );
    }

    #[test]
    fn a_number_outside_its_range_names_the_range_and_the_value() {
        let mut env = Env::from_pairs([("NUBO_X_SWEEP_MS", "9"), ("NUBO_X_RATE", "NaN")]);
        assert_eq!(env.in_range("NUBO_X_SWEEP_MS", 1000u64, 10..=60_000), 1000);
        assert_eq!(env.in_range("NUBO_X_RATE", 0.5f64, 0.0..=1.0), 0.5);
        assert_eq!(env.in_range("NUBO_X_UNSET", -3i64, -5..=5), -3);
        let err = env.finish().unwrap_err().to_string();
        assert!(
            err.contains("NUBO_X_SWEEP_MS: must be between 10 and 60000, got 9"),
            "{err}"
        );
        assert!(
            err.contains("NUBO_X_RATE: must be between 0.0 and 1.0, got NaN"),
            "{err}"
        );
    }

    #[test]
    fn the_ends_of_a_range_are_inside_it() {
        let mut env = Env::from_pairs([("NUBO_X_LATENCY_MS", "0"), ("NUBO_X_RATE", "1")]);
        assert_eq!(env.in_range("NUBO_X_LATENCY_MS", 50u64, 0..=10_000), 0);
        assert_eq!(env.in_range("NUBO_X_RATE", 0.0f64, 0.0..=1.0), 1.0);
        env.finish().unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        let mut env = Env::from_pairs::<[(&str, &str); 0], _, _>([]);
        let s = Settings::read(&mut env, Mode::Embedded, 8082);
        env.reject_unknown(&known(), &[]);
        env.finish().unwrap();
        assert_eq!(s.http_addr.port(), 8082);
        assert_eq!(s.mode(), Mode::Embedded);
    }
}
