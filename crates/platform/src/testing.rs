//! The test harness: runs services on port 0, in either mode, each test with fresh state.
//!
//! Embedded: SQLite files and the embedded bus in a temporary directory. Distributed: a fresh
//! PostgreSQL database, a unique NATS namespace and Redis key prefix per test, so tests run in
//! parallel against one set of servers. [`Proxy`] sits between a service and a server so a test
//! can cut the connection and restore it.
//!
//! Every test system has its own CA: each service gets a certificate naming it, services call
//! each other over mutual TLS as in production, and a test calls an internal route as a chosen
//! service with [`TestSystem::client_as`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, Wiring};
use crate::clock::Clock;
use crate::config::{Backing, Settings};
use crate::events::Bus;
use crate::service::ServiceDescription;

/// Which kind of servers a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMode {
    Embedded,
    Distributed,
}

/// Writes a test twice: once embedded, once distributed (ignored unless the servers are there,
/// which `.ci/run` makes sure of). `both_modes!(story)` expects `async fn story(mode: TestMode)`.
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name($crate::testing::TestMode::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL, NATS and Redis: run by .ci/run"]
            async fn distributed() {
                super::$name($crate::testing::TestMode::Distributed).await
            }
        }
    )*};
}

pub fn postgres_url() -> String {
    std::env::var("NUBO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("NUBO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("NUBO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh, empty PostgreSQL database; returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Executor;
    let admin = postgres_url();
    let name = format!("nubo_t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("PostgreSQL reachable for distributed tests");
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    pool.close().await;
    match admin.rfind('/') {
        Some(slash) => format!("{}/{name}", &admin[..slash]),
        None => panic!("NUBO_TEST_DATABASE_URL must end with a database name"),
    }
}

struct Running {
    desc: &'static ServiceDescription,
    settings: Settings,
    env: BTreeMap<String, String>,
    port: u16,
    token: CancellationToken,
    /// `None` once stopped.
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A set of services running for one test.
pub struct TestSystem {
    pub mode: TestMode,
    base: Settings,
    bus: Option<Bus>,
    /// Plain HTTP, as tests and curl reach a service.
    urls: BTreeMap<String, String>,
    /// Mutual TLS, as the services reach each other.
    internal_urls: BTreeMap<String, String>,
    /// Where each service's probes and metrics are, when not at its URL (the gateway's).
    ops_urls: BTreeMap<String, String>,
    /// The test's own CA: every service's identity, and any a test asks for, is issued here.
    tls_root: std::path::PathBuf,
    services: BTreeMap<&'static str, Running>,
    /// One clock for every service, restarted ones too.
    clock: Clock,
    _dir: tempfile::TempDir,
}

impl TestSystem {
    /// Starts `services` and waits until each is ready.
    pub async fn start(mode: TestMode, services: &[&'static ServiceDescription]) -> Self {
        Self::start_with(mode, services, |_| {}, &[]).await
    }

    /// Like [`TestSystem::start`], with settings adjusted by `tweak` first and services' own
    /// variables from `env` (given to whichever service declares them).
    pub async fn start_with(
        mode: TestMode,
        services: &[&'static ServiceDescription],
        tweak: impl Fn(&mut Settings),
        env: &[(&str, &str)],
    ) -> Self {
        crate::telemetry::init_for_tests();
        crate::server::raise_open_file_limit();
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut base = Settings::embedded(dir.path());
        base.shutdown_timeout = Duration::from_secs(5);
        base.outbox_poll = Duration::from_millis(100);
        // NATS can hand a delivery to a pull request just as it expires: counted as delivered,
        // never seen, and back only after ack_wait (30 s by default). Stories wait for events
        // with a bounded patience, so such a delivery must come back well within it.
        base.event_ack_wait = Duration::from_secs(5);
        if mode == TestMode::Distributed {
            base.backing = Backing::Distributed {
                database_url: fresh_postgres_database().await,
                nats_url: nats_url(),
                redis_url: redis_url(),
            };
            base.namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        }
        tweak(&mut base);
        let bus = match &base.backing {
            Backing::Embedded { data_dir } => Some(
                Bus::embedded(&data_dir.join("events.db"))
                    .await
                    .expect("embedded bus"),
            ),
            Backing::Distributed { .. } => None,
        };
        let mut system = Self {
            mode,
            base,
            bus,
            urls: BTreeMap::new(),
            internal_urls: BTreeMap::new(),
            ops_urls: BTreeMap::new(),
            tls_root: dir.path().join("tls"),
            services: BTreeMap::new(),
            clock: Clock::system(),
            _dir: dir,
        };
        // Bind every port first, so each service knows where the others are before it starts.
        let mut bound = Vec::new();
        for desc in services {
            let own: BTreeMap<String, String> = env
                .iter()
                .filter(|(name, _)| desc.env.iter().any(|(declared, _, _)| declared == name))
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            let app = Application::bind(desc, system.settings_of(desc), own.clone())
                .await
                .expect("bind");
            system.urls.insert(desc.name.to_owned(), app.local_url());
            system
                .internal_urls
                .insert(desc.name.to_owned(), app.internal_url());
            system.ops_urls.insert(desc.name.to_owned(), app.ops_url());
            bound.push((*desc, app, own));
        }
        // A service a test leaves out is down as far as the others can tell: its address is a
        // local port nothing listens on, so calls to it fail fast, as they would in production.
        for desc in services {
            for target in desc.calls() {
                if !system.internal_urls.contains_key(*target) {
                    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                    let port = closed.local_addr().expect("its address").port();
                    system
                        .internal_urls
                        .insert((*target).to_owned(), format!("https://127.0.0.1:{port}"));
                }
            }
        }
        for (desc, app, own) in bound {
            let settings = system.settings_of(desc);
            system.run(desc, app, settings, own);
        }
        for desc in services {
            system.wait_ready(desc.name).await;
        }
        system
    }

    /// A new connection pool to `service`'s own database, as an operator's shell would open.
    pub async fn db(&self, service: &str) -> crate::storage::Db {
        match &self.base.backing {
            Backing::Embedded { data_dir } => crate::storage::Db::open_sqlite(data_dir, service, 2)
                .await
                .expect("open SQLite"),
            Backing::Distributed { database_url, .. } => {
                crate::storage::Db::connect_postgres(database_url, service, 2)
                    .expect("PostgreSQL URL")
            }
        }
    }

    /// The bus the services use (a new connection to it in distributed mode).
    pub async fn bus(&self) -> Bus {
        match (&self.bus, &self.base.backing) {
            (Some(bus), _) => bus.clone(),
            (None, Backing::Distributed { nats_url, .. }) => {
                Bus::nats(nats_url, &self.base.namespace)
                    .await
                    .expect("NATS reachable")
            }
            (None, Backing::Embedded { .. }) => unreachable!("embedded systems always have a bus"),
        }
    }

    /// The clock every service reads: `system.clock().advance(..)` moves time forward for all
    /// of them at once.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The settings every service got.
    pub fn settings(&self) -> &Settings {
        &self.base
    }

    /// The settings `desc` starts with: the shared ones, its own certificate, and a port of its
    /// own for its probes if it keeps them apart. For a test that runs another replica.
    pub fn settings_of(&self, desc: &ServiceDescription) -> Settings {
        let mut settings = self.base.clone();
        if desc.ops_port().is_some() {
            settings.ops_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        settings.tls_dir = Some(self.identity_dir(desc.name));
        settings
    }

    /// The directory of `service`'s identity, issued by the test's CA if it has none yet.
    pub fn identity_dir(&self, service: &str) -> std::path::PathBuf {
        crate::tls::authority::Authority::open(&self.tls_root)
            .and_then(|ca| ca.ensure(service, &self.base.trust_domain))
            .unwrap_or_else(|e| panic!("issue {service}'s certificate: {e:#}"))
    }

    /// Where the services call `service`: mutual TLS.
    pub fn internal_url(&self, service: &str) -> String {
        self.internal_urls
            .get(service)
            .cloned()
            .unwrap_or_else(|| panic!("{service} is not running in this test"))
    }

    /// A client of `target` that presents `caller`'s certificate (issued by the test's CA for
    /// any name, a service of the shop or not), as `caller` would call it.
    pub fn client_as(&self, caller: &str, target: &str) -> TestClient {
        self.client_as_at(caller, target, &self.internal_url(target))
    }

    /// [`TestClient::client_as`] for a replica of `target` at `url` (`https://`).
    pub fn client_as_at(&self, caller: &str, target: &str, url: &str) -> TestClient {
        let identity = crate::tls::ServiceIdentity::load(
            caller,
            &self.base.trust_domain,
            &self.identity_dir(caller),
        )
        .expect("the caller's identity");
        TestClient::new(target, url, identity.client_config(target))
    }

    /// A client of `target` over TLS that checks `target`'s certificate but presents none.
    pub fn client_without_certificate(&self, target: &str) -> TestClient {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let ca = self.identity_dir(target).join(crate::tls::CA_FILE);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&ca).expect("the test CA") {
            roots
                .add(cert.expect("a CA certificate"))
                .expect("a usable CA");
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        TestClient::new(target, &self.internal_url(target), config)
    }

    fn run(
        &mut self,
        desc: &'static ServiceDescription,
        app: Application,
        settings: Settings,
        env: BTreeMap<String, String>,
    ) {
        let token = CancellationToken::new();
        let port = app.port();
        let wiring = Wiring {
            service_urls: self.internal_urls.clone(),
            embedded_bus: self.bus.clone(),
        };
        let app = app.with_clock(self.clock.clone());
        let handle = tokio::spawn(app.run_until_stopped(wiring, token.clone()));
        self.services.insert(
            desc.name,
            Running {
                desc,
                settings,
                env,
                port,
                token,
                handle: Some(handle),
            },
        );
    }

    pub fn url(&self, service: &str) -> String {
        self.urls
            .get(service)
            .cloned()
            .unwrap_or_else(|| panic!("{service} is not running in this test"))
    }

    /// Where `service`'s probes and `/metrics` are served.
    pub fn ops_url(&self, service: &str) -> String {
        self.ops_urls
            .get(service)
            .cloned()
            .unwrap_or_else(|| panic!("{service} is not running in this test"))
    }

    /// Waits until `/readyz` of `service` answers 200.
    pub async fn wait_ready(&self, service: &str) {
        let url = format!("{}/readyz", self.ops_url(service));
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{service} did not become ready");
    }

    /// `service`'s `/metrics` text.
    pub async fn metrics(&self, service: &str) -> String {
        let url = format!("{}/metrics", self.ops_url(service));
        reqwest::get(url)
            .await
            .expect("metrics reachable")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of the first sample of `metric` whose labels contain every one of `labels`
    /// (written as they appear, e.g. `outcome="duplicate"`), if there is one.
    pub async fn metric(&self, service: &str, metric: &str, labels: &[&str]) -> Option<f64> {
        sample(&self.metrics(service).await, metric, labels)
    }

    /// Stops `service` as SIGTERM would, and returns what its run returned (`Ok` if it was
    /// stopped already).
    pub async fn stop(&mut self, service: &str) -> anyhow::Result<()> {
        let running = self
            .services
            .get_mut(service)
            .unwrap_or_else(|| panic!("{service} is not part of this test"));
        running.token.cancel();
        match running.handle.take() {
            Some(handle) => handle.await.expect("service task"),
            None => Ok(()),
        }
    }

    /// Starts `service` again on the same port with the same state, as after a crash or deploy.
    pub async fn restart(&mut self, service: &str) {
        let _ = self.stop(service).await;
        let running = self.services.remove(service).expect("present");
        let mut settings = running.settings.clone();
        settings.http_addr = SocketAddr::from(([127, 0, 0, 1], running.port));
        if settings.ops_addr.is_some() {
            let ops: SocketAddr = self.ops_url(service)["http://".len()..]
                .parse()
                .expect("an ops address");
            settings.ops_addr = Some(ops);
        }
        // The port is in the ephemeral range: while it was closed an outgoing connection of any
        // process may have taken it as its own address. Such connections end; wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let app = loop {
            match Application::bind(running.desc, settings.clone(), running.env.clone()).await {
                Ok(app) => break app,
                Err(e) if std::time::Instant::now() < deadline && in_use(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("rebind {service}: {e:#}"),
            }
        };
        self.run(running.desc, app, settings, running.env);
        self.wait_ready(service).await;
    }

    /// Stops every service.
    pub async fn shutdown(mut self) {
        let names: Vec<&'static str> = self.services.keys().copied().collect();
        for name in names {
            let _ = self.stop(name).await;
        }
    }
}

/// A client a test calls a service's internal routes with: one attempt per call, no breaker,
/// every answer returned as it came.
pub struct TestClient(crate::client::ServiceClient);

impl TestClient {
    /// A client of `target` at `url` with its own TLS configuration.
    pub fn new(target: &str, url: &str, tls: rustls::ClientConfig) -> Self {
        let config = crate::client::ClientConfig {
            timeout: Duration::from_secs(30),
            max_retries: 0,
            breaker_failure_threshold: u32::MAX,
            ..crate::client::ClientConfig::default()
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = crate::client::ClientMetrics::register(&mut registry);
        Self(crate::client::ServiceClient::with_tls(
            target, url, config, &metrics, tls,
        ))
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(http::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(http::Method::DELETE, path, None).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.send(http::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.send(http::Method::PUT, path, Some(body)).await
    }

    /// `method` on `path`, with `body` as JSON if given.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        self.send_with(method, path, &[], body).await
    }

    /// [`TestClient::send`] with extra headers.
    pub async fn send_with(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                bytes::Bytes::from(serde_json::to_vec(body).expect("JSON"))
            }
            None => bytes::Bytes::new(),
        };
        let response = self
            .0
            .send(request.body(body).expect("a request"))
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        Answer(response)
    }

    /// `method` on `path` with `body` sent as it is, `content-type` as given.
    pub async fn send_raw(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> Answer {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(bytes::Bytes::from(body.to_owned()))
            .expect("a request");
        Answer(
            self.0
                .send(request)
                .await
                .unwrap_or_else(|e| panic!("{e:#}")),
        )
    }

    /// The error of a call that got no answer (a refused handshake, say).
    pub async fn error_of_get(&self, path: &str) -> crate::client::ClientError {
        let request = http::Request::get(path)
            .body(bytes::Bytes::new())
            .expect("a request");
        self.0
            .send(request)
            .await
            .expect_err("the call should get no answer")
    }
}

/// A service's answer to a [`TestClient`], read like a `reqwest::Response`.
pub struct Answer(http::Response<bytes::Bytes>);

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.0.status())
            .field("headers", self.0.headers())
            .field("body", &String::from_utf8_lossy(self.0.body()))
            .finish()
    }
}

impl Answer {
    pub fn status(&self) -> http::StatusCode {
        self.0.status()
    }

    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }

    pub async fn json<T: serde::de::DeserializeOwned>(self) -> serde_json::Result<T> {
        serde_json::from_slice(self.0.body())
    }

    pub async fn text(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.0.body().to_vec())
    }
}

/// What [`assert_problem`] reads: a `reqwest::Response` or a [`TestClient`]'s [`Answer`].
pub trait Answered: Send {
    fn into_answer(self) -> futures::future::BoxFuture<'static, Answer>;
}

impl Answered for Answer {
    fn into_answer(self) -> futures::future::BoxFuture<'static, Answer> {
        Box::pin(async move { self })
    }
}

impl Answered for reqwest::Response {
    fn into_answer(self) -> futures::future::BoxFuture<'static, Answer> {
        Box::pin(async move {
            let status = self.status();
            let headers = self.headers().clone();
            let body = self.bytes().await.expect("a response body");
            let mut response = http::Response::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Answer(response)
        })
    }
}

/// The value of the first sample of `metric` in an exposition `text` whose labels contain every
/// one of `labels`.
pub fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| labels.iter().all(|l| line.contains(l)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// A TCP proxy on loopback that a test can cut (dropping every connection and refusing new
/// ones) and restore: a network partition between a service and one of its servers.
#[derive(Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cut = Arc::new(cut);
        let proxy = Self {
            addr,
            open: open.clone(),
            cut: cut.clone(),
        };
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    /// A proxy in front of the server a URL like `scheme://user@host:port/path` names, and the
    /// same URL pointing at the proxy instead.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        let (scheme, rest) = url.split_once("://").expect("URL with a scheme");
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (format!("{user}@"), host),
            None => (String::new(), authority),
        };
        let target = tokio::net::lookup_host(host_port)
            .await
            .expect("resolve")
            .next()
            .expect("an address");
        let proxy = Self::start(target).await;
        let proxied = format!(
            "{scheme}://{userinfo}{}{}",
            proxy.addr,
            &rest[authority_end..]
        );
        (proxy, proxied)
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Waits until `check` holds: events, sweeps and relays are asynchronous. Generous, because
/// shared CI machines are noisy and a slow pass is not a failure.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The `field` of each entry of a validation problem's `errors`, in order.
pub fn problem_fields(problem: &serde_json::Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("a validation problem lists its errors")
        .iter()
        .map(|e| {
            e["field"]
                .as_str()
                .expect("each error names its field")
                .to_owned()
        })
        .collect()
}

/// Asserts `response` is a problem document with `status`, and returns its body.
pub async fn assert_problem(response: impl Answered, status: u16) -> serde_json::Value {
    let response = response.into_answer().await;
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some(crate::error::PROBLEM_JSON));
    let body: serde_json::Value = response.json().await.expect("a problem document");
    assert_eq!(body["status"], status);
    body
}

/// Whether `error` is, at its root, an address already in use.
fn in_use(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
    })
}
