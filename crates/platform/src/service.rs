//! The one value that says what a service is, and the handles it is given to run.
//!
//! A [`ServiceDescription`] names the service, its port, its migrations, the events it publishes
//! and consumes, the services it calls, the environment it reads, and how to build its router,
//! consumers and background tasks from a [`Context`]. `nubo up` runs all of them in one process,
//! `nubo serve <name>` runs one, tests run them on port 0, and deployment manifests can be checked
//! against the same values.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::Verifier;
use crate::cache::Cache;
use crate::client::{ClientConfig, ServiceClient};
use crate::config::{self, Mode, Settings};
use crate::events::consumer::Consumer;
use crate::events::{Bus, Event, outbox};
use crate::metrics::Metrics;
use crate::storage::{Db, Migrations, Tx};
use crate::tls::ServiceIdentity;

pub type BuildFn = fn(Context) -> BoxFuture<'static, anyhow::Result<Parts>>;
pub type SeedFn = fn(Context) -> BoxFuture<'static, anyhow::Result<()>>;
/// Checks a service's own variables (name to value, only those that are set) for the mode it is
/// starting in: a variable may be required in one mode only.
pub type CheckEnvFn = fn(&BTreeMap<String, String>, Mode) -> anyhow::Result<()>;

/// What a service is. Each service crate exports one as a `static`.
pub struct ServiceDescription {
    /// Its name in [`config::SERVICES`], which says where it listens.
    pub name: &'static str,
    pub migrations: Migrations,
    /// Subjects of the events it writes to its outbox.
    pub publishes: &'static [&'static str],
    /// Its durable subscriptions: consumer name and subject.
    pub consumes: &'static [Consumes],
    /// Its own environment variables: name, meaning, default.
    pub env: &'static [(&'static str, &'static str, &'static str)],
    /// Checks its own variables (the ones in `env` that are set), so a bad value stops the
    /// process before any port opens; the error names the variable.
    pub check_env: Option<CheckEnvFn>,
    pub build: BuildFn,
    /// Its part of the public API's OpenAPI document, generated from its handlers; `nubo`
    /// merges every part into the document the gateway serves.
    pub openapi: Option<fn() -> utoipa::openapi::OpenApi>,
    /// Demo data for an empty store, run when `NUBO_SEED_DEMO_DATA` is true.
    pub seed: Option<SeedFn>,
    /// Whether the cache holds this service's data (the cart keeps carts there), so that a
    /// replica cannot serve without it and is not ready while it is down. Everywhere else the
    /// cache only speeds things up or counts limits, and its outage is reported, not fatal.
    pub cache_holds_data: bool,
    /// Its own fault switches beyond the platform's, which the ops console shows and sets
    /// (payments: the simulated card provider's failure rate and latency).
    pub knobs: &'static [crate::ops::Knob],
}

/// One durable subscription a service declares: what KEDA scales on and what manifests allow.
#[derive(Clone, Copy, Debug)]
pub struct Consumes {
    /// The durable consumer's name, unique in the shop: `<service>-<purpose>`.
    pub durable: &'static str,
    pub subject: &'static str,
}

impl ServiceDescription {
    /// The port it listens on unless told otherwise (0, any port, for a service not in
    /// [`config::SERVICES`], such as a test's).
    pub fn default_port(&self) -> u16 {
        config::ports_of(self.name).map_or(0, |s| s.port)
    }

    /// The services it calls over HTTP, as the call graph in [`config::SERVICES`] says.
    pub fn calls(&self) -> &'static [&'static str] {
        config::ports_of(self.name).map_or(&[], |s| s.calls)
    }

    /// The port of its probes and `/metrics`, when they are kept off its own.
    pub fn ops_port(&self) -> Option<u16> {
        config::ports_of(self.name).and_then(|s| s.ops_port)
    }

    /// `NUBO_<NAME>_URL`: where other services reach this one.
    pub fn url_variable(&self) -> String {
        format!("NUBO_{}_URL", self.name.to_uppercase())
    }
}

/// What a service's build returns: its routes, its event consumers and its background tasks.
#[derive(Default)]
pub struct Parts {
    pub router: Router,
    pub consumers: Vec<Consumer>,
    pub tasks: Vec<Task>,
}

/// A background task; it must return soon after its token is cancelled.
pub struct Task {
    pub name: &'static str,
    pub run: Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>,
}

impl Task {
    pub fn new<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Self {
            name,
            run: Box::new(move |token| Box::pin(run(token))),
        }
    }
}

/// The handles a service works with: its database, cache, bus, metrics, clients of the services
/// it calls, and its settings. Cheap to clone: the handles are shared, and a clone is one
/// reference count (every request clones it, often several times, on its way through).
#[derive(Clone)]
pub struct Context(Arc<Handles>);

impl Context {
    pub(crate) fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for Context {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// What a [`Context`] holds.
pub struct Handles {
    pub service: &'static str,
    pub settings: Arc<Settings>,
    pub db: Db,
    pub cache: Cache,
    pub bus: Bus,
    pub metrics: Metrics,
    /// The time, which a test can move forward: read it here rather than from the system.
    pub clock: crate::clock::Clock,
    /// Verifies access tokens against identity's keys (for the `Caller` and `Admin` extractors).
    pub verifier: Verifier,
    /// Its own settings from the environment (the names in its description's `env`).
    pub env: Arc<BTreeMap<String, String>>,
    /// What the ops console reads of this service (its snapshot) and the switches it flips
    /// there; a service reads its knobs through `ops.switches()`.
    pub ops: crate::ops::Ops,
    pub(crate) clients: Arc<BTreeMap<String, ServiceClient>>,
    /// The edge's second set of clients, for the ops console's own calls: their own breakers,
    /// and counted apart, so watching the shop does not show up as its traffic.
    pub(crate) console_clients: Arc<BTreeMap<String, ServiceClient>>,
    pub(crate) relay: Arc<Notify>,
}

impl Context {
    /// One client per service this one calls, each with its own breaker.
    pub(crate) fn clients(
        desc: &ServiceDescription,
        settings: &Settings,
        metrics: &Metrics,
        service_urls: &BTreeMap<String, String>,
        identity: &ServiceIdentity,
    ) -> anyhow::Result<BTreeMap<String, ServiceClient>> {
        let config = ClientConfig {
            timeout: settings.client_timeout,
            max_retries: settings.client_max_retries,
            ..ClientConfig::default()
        };
        desc.calls()
            .iter()
            .map(|target| {
                let url = service_urls.get(*target).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} calls {target}, but no URL for it is configured",
                        desc.name
                    )
                })?;
                anyhow::ensure!(
                    url.starts_with("https://"),
                    "{} calls {target} at {url}: calls between services are mutual TLS, use https://",
                    desc.name
                );
                let tls = identity.client_config(target);
                let client =
                    ServiceClient::with_tls(target, url, config.clone(), &metrics.client, tls);
                Ok(((*target).to_owned(), client))
            })
            .collect()
    }

    /// The client of a service this one declared in `calls`.
    pub fn client(&self, target: &str) -> &ServiceClient {
        self.clients.get(target).unwrap_or_else(|| {
            panic!(
                "{} calls {target} without declaring it in its description",
                self.service
            )
        })
    }

    /// The ops console's client of `target` (the edge only; see `console_clients`).
    pub fn console_client(&self, target: &str) -> Option<&ServiceClient> {
        self.console_clients.get(target)
    }

    /// Writes `event` to the outbox in `tx`; it is published once `tx` commits.
    pub async fn publish<E: Event>(&self, tx: &mut Tx, event: &E) -> anyhow::Result<Uuid> {
        outbox::enqueue(tx, self.service, event).await
    }

    /// Commits `tx` and wakes the outbox relay, so events it wrote leave at once.
    pub async fn commit(&self, tx: Tx) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        self.relay.notify_one();
        Ok(())
    }
}
