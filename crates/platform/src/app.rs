//! Runs a [`ServiceDescription`]: binds its port, serves probes at once, then connects its
//! storage, bus and cache, migrates, builds its routes, starts its relay, consumers and tasks, and
//! only then reports started. One path for `nubo up`, `nubo serve` and the tests.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use crate::auth::{KeySource, Verifier};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::{self, Backing, Settings};
use crate::error::Problem;
use crate::events::consumer::ConsumerRuntime;
use crate::events::relay::Relay;
use crate::events::{Bus, outbox};
use crate::health::{Health, Hold, Need};
use crate::metrics::{Metrics, PoolLabels};
use crate::server::{self, Serving, StackConfig};
use crate::service::{Context, Handles, ServiceDescription};
use crate::storage::Db;
use crate::tls::ServiceIdentity;
use crate::tls::authority::Authority;

/// How a service finds the rest of the system.
#[derive(Clone, Default)]
pub struct Wiring {
    /// Base URL of every service it may call, by name.
    pub service_urls: BTreeMap<String, String>,
    /// Embedded mode: the bus every service in the process shares. Opened per service if absent.
    pub embedded_bus: Option<Bus>,
}

/// A service bound to its port, not yet running.
pub struct Application {
    desc: &'static ServiceDescription,
    settings: Arc<Settings>,
    env: BTreeMap<String, String>,
    listener: TcpListener,
    /// The probes' and `/metrics`' own port, when they are kept off the service's port.
    ops_listener: Option<TcpListener>,
    /// Who it is to the other services: its certificate, key and CA.
    identity: ServiceIdentity,
    health: Health,
    metrics: Metrics,
    /// Released once start-up finished: the service counts as starting from the moment it binds.
    starting: Hold,
    /// The service's time: the system's unless [`Application::with_clock`] gives it another.
    clock: Clock,
}

impl Application {
    /// Binds the service's port. `env` holds the service's own variables.
    pub async fn bind(
        desc: &'static ServiceDescription,
        settings: Settings,
        env: BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let identity = load_identity(desc, &settings)?;
        let listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("{}: cannot listen on {}", desc.name, settings.http_addr))?;
        let ops_listener = match settings.ops_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "{}: cannot listen on {addr} (probes and metrics)",
                    desc.name
                )
            })?),
            None => None,
        };
        let health = Health::new(desc.name);
        Ok(Self {
            desc,
            settings: Arc::new(settings),
            env,
            listener,
            ops_listener,
            identity,
            starting: health.hold(),
            health,
            metrics: Metrics::new(desc.name),
            clock: Clock::system(),
        })
    }

    /// Runs the service on `clock` instead of the system's (tests share one between services,
    /// to move time forward for all of them at once).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// A URL other processes on this machine can reach it at, over plain HTTP (probes, metrics,
    /// public routes).
    pub fn local_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The URL other services on this machine call it at: mutual TLS.
    pub fn internal_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port())
    }

    /// Where its probes and `/metrics` are served: its own URL unless they have a port of their
    /// own.
    pub fn ops_url(&self) -> String {
        match self.ops_listener.as_ref().and_then(|l| l.local_addr().ok()) {
            Some(addr) => format!("http://127.0.0.1:{}", addr.port()),
            None => self.local_url(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.desc.name
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains: not ready, in-flight requests finish,
    /// background work stops, all within the shutdown deadline. An error during start-up is
    /// returned after the server has stopped.
    pub async fn run_until_stopped(
        self,
        wiring: Wiring,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let Self {
            desc,
            settings,
            env,
            listener,
            ops_listener,
            identity,
            health,
            metrics,
            starting,
            clock,
        } = self;
        let local = shutdown.child_token();
        let slot: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
        let app = Router::new().fallback({
            let slot = slot.clone();
            move |request: Request| {
                let slot = slot.clone();
                async move { answer(slot.get().cloned(), request).await }
            }
        });
        let faults = crate::ops::Faults::default();
        let config = StackConfig {
            service: desc.name,
            faults: faults.clone(),
            request_timeout: settings.request_timeout,
            body_limit_bytes: settings.body_limit_bytes,
            concurrency_limit: settings.concurrency_limit,
        };
        let app = server::stack(app, &config, &health, &metrics, ops_listener.is_none());
        let plain = Serving {
            limits: settings.connection_limits,
            tls: None,
            metrics: metrics.clone(),
            health: health.clone(),
            deadline: settings.shutdown_timeout,
        };
        // Services take calls over mutual TLS on their port; the edge's port is the internet's,
        // which nubo's own CA means nothing to.
        let serving = Serving {
            tls: (desc.name != config::EDGE).then(|| identity.clone()),
            ..plain.clone()
        };
        let server = tokio::spawn(server::serve(
            listener,
            app,
            serving,
            local.clone().cancelled_owned(),
        ));
        // The ops port serves and closes with the service's.
        let ops = ops_listener.map(|listener| {
            tokio::spawn(server::serve(
                listener,
                server::ops(&health, &metrics),
                plain,
                local.clone().cancelled_owned(),
            ))
        });

        let mut background = JoinSet::new();
        let started = tokio::select! {
            started = start(desc, &settings, env, &wiring, &identity, &health, &metrics, &faults, clock, &local, &mut background)
                .instrument(tracing::info_span!("startup", service = desc.name)) => started,
            _ = local.cancelled() => Ok(None),
        };
        let db = match started {
            Ok(Some((router, db))) => {
                let _ = slot.set(server::label_routes(router));
                drop(starting);
                tracing::info!(service = desc.name, "started");
                local.cancelled().await;
                Some(db)
            }
            Ok(None) => None,
            Err(e) => {
                local.cancel();
                let _ = server.await;
                if let Some(ops) = ops {
                    let _ = ops.await;
                }
                return Err(e.context(format!("{} failed to start", desc.name)));
            }
        };
        // One deadline for the whole stop, counted from the moment it was asked for.
        let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
        let served = server.await.context("server task failed")?;
        if let Some(ops) = ops {
            ops.await.context("ops server task failed")??;
        }
        // Background work gets what is left of it.
        let drained = tokio::time::timeout_at(deadline, async {
            while background.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(service = desc.name, "background tasks did not stop in time");
            background.abort_all();
        }
        if let Some(db) = db {
            db.close().await;
        }
        tracing::info!(service = desc.name, "stopped");
        served.context("server failed")
    }
}

async fn answer(router: Option<Router>, request: Request) -> Response {
    match router {
        Some(router) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the service is starting")
            .retry_after(1)
            .into_response(),
    }
}

/// The service's identity: read from `NUBO_TLS_DIR`, or, embedded without one, issued under
/// the data directory by the CA kept there (created on first use).
fn load_identity(
    desc: &ServiceDescription,
    settings: &Settings,
) -> anyhow::Result<ServiceIdentity> {
    let dir = match (&settings.tls_dir, &settings.backing) {
        (Some(dir), _) => dir.clone(),
        (None, Backing::Embedded { data_dir }) => Authority::open(&data_dir.join("tls"))
            .and_then(|ca| ca.ensure(desc.name, &settings.trust_domain))
            .with_context(|| format!("{}: cannot issue its certificate", desc.name))?,
        (None, Backing::Distributed { .. }) => anyhow::bail!(
            "{}: {} is required in distributed mode",
            desc.name,
            config::TLS_DIR
        ),
    };
    ServiceIdentity::load(desc.name, &settings.trust_domain, &dir).with_context(|| {
        format!(
            "{}: its certificate in {} (set by {}) cannot be used",
            desc.name,
            dir.display(),
            config::TLS_DIR
        )
    })
}

/// Retries `connect` until it succeeds or the service is stopped.
async fn keep_trying<T, E, F, Fut>(
    what: &str,
    token: &CancellationToken,
    mut connect: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(250);
    loop {
        match connect().await {
            Ok(value) => return Some(value),
            Err(e) => tracing::warn!(error = %e, "{what} not reachable yet; retrying"),
        }
        tokio::select! {
            _ = token.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Everything between bind and started. `Ok(None)` if stopped before it finished.
#[allow(clippy::too_many_arguments)]
async fn start(
    desc: &'static ServiceDescription,
    settings: &Arc<Settings>,
    env: BTreeMap<String, String>,
    wiring: &Wiring,
    identity: &ServiceIdentity,
    health: &Health,
    metrics: &Metrics,
    faults: &crate::ops::Faults,
    clock: Clock,
    token: &CancellationToken,
    background: &mut JoinSet<()>,
) -> anyhow::Result<Option<(Router, Db)>> {
    let max = settings.db_max_connections;
    let (db, bus, cache) = match &settings.backing {
        Backing::Embedded { data_dir } => {
            let db = Db::open_sqlite(data_dir, desc.name, max).await?;
            let bus = match &wiring.embedded_bus {
                Some(bus) => bus.clone(),
                None => Bus::embedded(&data_dir.join("events.db")).await?,
            };
            (db, bus, Cache::memory(100_000))
        }
        Backing::Distributed {
            database_url,
            nats_url,
            redis_url,
        } => {
            let db = Db::connect_postgres(database_url, desc.name, max)?;
            let Some(()) = keep_trying("database", token, || db.ping()).await else {
                return Ok(None);
            };
            let ns = settings.namespace.as_str();
            let Some(bus) = keep_trying("NATS", token, || {
                Bus::nats_with_replicas(nats_url, ns, settings.nats_replicas)
            })
            .await
            else {
                return Ok(None);
            };
            let Some(cache) = keep_trying("Redis", token, || Cache::redis(redis_url, ns)).await
            else {
                return Ok(None);
            };
            (db, bus, cache)
        }
    };
    add_checks(health, desc, &db, &bus, &cache);
    db.migrate(desc.migrations).await?;

    let relay = Relay::new(
        db.clone(),
        bus.clone(),
        settings.outbox_poll,
        metrics.events_published.clone(),
    );
    let clients = Context::clients(desc, settings, metrics, &wiring.service_urls, identity)?;
    let console_clients = if desc.name == config::EDGE {
        let uncounted = Metrics::new("ops-console");
        Context::clients(desc, settings, &uncounted, &wiring.service_urls, identity)?
    } else {
        BTreeMap::new()
    };
    // A service that calls identity verifies tokens with identity's published keys.
    let verifier = Verifier::new(match clients.get("identity") {
        Some(identity) => KeySource::Remote(identity.clone()),
        None => KeySource::None,
    });
    let ops = crate::ops::Ops::new(
        desc,
        health.clone(),
        metrics.clone(),
        faults.clone(),
        cache.clone(),
        matches!(settings.backing, Backing::Embedded { .. }),
    );
    let ctx = Context::new(Handles {
        service: desc.name,
        settings: settings.clone(),
        db: db.clone(),
        cache,
        bus: bus.clone(),
        metrics: metrics.clone(),
        clock,
        verifier,
        env: Arc::new(env),
        ops: ops.clone(),
        clients: Arc::new(clients),
        console_clients: Arc::new(console_clients),
        relay: relay.waker(),
    });
    let parts = (desc.build)(ctx.clone()).await?;
    for consumer in &parts.consumers {
        let declared = desc
            .consumes
            .iter()
            .any(|c| c.durable == consumer.name && c.subject == consumer.subject);
        anyhow::ensure!(
            declared,
            "{} runs consumer {} of {} without declaring it in its description's `consumes`",
            desc.name,
            consumer.name,
            consumer.subject
        );
    }
    if settings.seed_demo_data
        && let Some(seed) = desc.seed
    {
        seed(ctx.clone())
            .await
            .context("seeding demo data failed")?;
    }

    background.spawn(relay.run(token.clone().cancelled_owned()));
    // The operator's fault switches, as set through any replica.
    background.spawn(ops.follow(token.clone()));
    // A renewed certificate is taken up without a restart.
    background.spawn(identity.clone().watch(token.clone()));
    let mut runtimes = Vec::new();
    for consumer in parts.consumers {
        let runtime = ConsumerRuntime {
            consumer,
            db: db.clone(),
            bus: bus.clone(),
            max_attempts: settings.event_max_attempts,
            ack_wait: settings.event_ack_wait,
            metrics: metrics.clone(),
        };
        runtimes.push(runtime.clone());
        background.spawn(runtime.run(token.clone().cancelled_owned()));
    }
    for task in parts.tasks {
        tracing::debug!(task = task.name, "starting background task");
        background.spawn((task.run)(token.clone()));
    }
    background.spawn(sample_gauges(
        db.clone(),
        metrics.clone(),
        runtimes,
        token.clone(),
    ));
    // The ops console's two routes, on every service.
    let router = parts.router.merge(crate::ops::routes(ctx));
    Ok(Some((router, db)))
}

/// What readiness checks: the database always, the cache where it holds the service's data; the
/// bus, and a cache that only speeds reads up, are reported without making the replica unready.
fn add_checks(health: &Health, desc: &ServiceDescription, db: &Db, bus: &Bus, cache: &Cache) {
    let db = db.clone();
    health.add_check("database", Need::Required, move || {
        let db = db.clone();
        async move { db.ping().await }
    });
    let bus = bus.clone();
    health.add_check("bus", Need::Reported, move || {
        let bus = bus.clone();
        async move { bus.ping().await.map_err(Into::into) }
    });
    let cache = cache.clone();
    let need = if desc.cache_holds_data {
        Need::Required
    } else {
        Need::Reported
    };
    health.add_check("cache", need, move || {
        let cache = cache.clone();
        async move { cache.ping().await.map_err(Into::into) }
    });
}

/// Keeps the pool, outbox and consumer-lag gauges current.
async fn sample_gauges(
    db: Db,
    metrics: Metrics,
    consumers: Vec<ConsumerRuntime>,
    token: CancellationToken,
) {
    loop {
        let (open, idle) = db.pool_usage();
        metrics
            .db_pool
            .get_or_create(&PoolLabels { state: "open" })
            .set(i64::from(open));
        metrics
            .db_pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(idle));
        if let Ok(backlog) = outbox::backlog(&db).await {
            metrics.outbox_backlog.set(backlog);
        }
        for consumer in &consumers {
            consumer.sample_lag().await;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
