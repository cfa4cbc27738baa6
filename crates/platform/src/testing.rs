//! The test harness: runs services on port 0, in either mode, each test with fresh state.
//!
//! Embedded: SQLite files and the embedded bus in a temporary directory. Distributed: a fresh
//! PostgreSQL database, a unique NATS namespace and Redis key prefix per test, so tests run in
//! parallel against one set of servers. [`Proxy`] sits between a service and a server so a test
//! can cut the connection and restore it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, Wiring};
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
    urls: BTreeMap<String, String>,
    /// Where each service's probes and metrics are, when not at its URL (the gateway's).
    ops_urls: BTreeMap<String, String>,
    services: BTreeMap<&'static str, Running>,
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
            ops_urls: BTreeMap::new(),
            services: BTreeMap::new(),
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
            system.ops_urls.insert(desc.name.to_owned(), app.ops_url());
            bound.push((*desc, app, own));
        }
        // A service a test leaves out is down as far as the others can tell: its address is a
        // local port nothing listens on, so calls to it fail fast, as they would in production.
        for desc in services {
            for target in desc.calls {
                if !system.urls.contains_key(*target) {
                    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                    let port = closed.local_addr().expect("its address").port();
                    system
                        .urls
                        .insert((*target).to_owned(), format!("http://127.0.0.1:{port}"));
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

    /// The settings every service got.
    pub fn settings(&self) -> &Settings {
        &self.base
    }

    /// The settings `desc` starts with: the shared ones, and a port of its own for its probes
    /// if it keeps them apart.
    fn settings_of(&self, desc: &ServiceDescription) -> Settings {
        let mut settings = self.base.clone();
        if desc.ops_port().is_some() {
            settings.ops_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        settings
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
            service_urls: self.urls.clone(),
            embedded_bus: self.bus.clone(),
        };
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
        let app = Application::bind(running.desc, settings.clone(), running.env.clone())
            .await
            .expect("rebind");
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
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
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
