//! The `nubo` command: runs the whole shop in one process (`up`), one service (`serve`), or
//! every service as its own process against real servers (`up --distributed`); migrates
//! databases; describes the services.
#![forbid(unsafe_code)]

mod audit;
mod balancer;
mod bench;
mod chaos;
mod distributed;
mod embedded;
mod fuzz;
mod loadgen;
mod manifests;
mod openapi;
mod shop;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nubo_platform::ServiceDescription;

/// Every service of the shop, in start order.
pub const SERVICES: &[&ServiceDescription] = &[
    &nubo_identity::SERVICE,
    &nubo_catalog::SERVICE,
    &nubo_inventory::SERVICE,
    &nubo_payments::SERVICE,
    &nubo_cart::SERVICE,
    &nubo_orders::SERVICE,
    &nubo_notifications::SERVICE,
    &nubo_gateway::SERVICE,
];

#[derive(Parser)]
#[command(
    name = "nubo",
    version,
    about = "A cloud-native commerce platform you can run in one command"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service (the default command). Embedded unless --distributed.
    Up(UpArgs),
    /// Run one service in distributed mode, configured from the environment.
    Serve {
        /// The service to run.
        #[arg(value_parser = service_names())]
        service: String,
    },
    /// Run database migrations of every service (or the ones named) and exit.
    Migrate {
        /// Only these services.
        #[arg(value_parser = service_names())]
        services: Vec<String>,
    },
    /// Create an admin account in identity's database (the first admin of a shop without demo
    /// data). The password is read from standard input, one line, so it stays out of shell
    /// history and process listings.
    CreateAdmin {
        /// The admin's email address.
        #[arg(long)]
        email: String,
    },
    /// Issue service certificates from a CA kept in a directory (created there if missing):
    /// `<dir>/<service>/{tls.crt,tls.key,ca.crt}`, what NUBO_TLS_DIR names for `nubo serve`.
    Certs {
        /// Where the CA is kept and the certificates are written.
        #[arg(long, default_value = "nubo-data/tls")]
        dir: PathBuf,
        /// Only these services (default: every service).
        services: Vec<String>,
    },
    /// Describe every service as JSON: port, events, calls, environment.
    Services,
    /// Check the shop's invariants in every service's store (stock exact, one capture per paid
    /// order, a refund for each cancelled one, one email per event, outboxes drained, no dead
    /// letters) and name every record that breaks one; fails if any does.
    Audit(audit::AuditArgs),
    /// Run the shop distributed on servers of its own, load it, inject faults on a seeded
    /// schedule (crashes, stops, server restarts, a failing card provider, operators' cancels),
    /// then audit every store; fails if any invariant broke.
    Chaos(chaos::ChaosArgs),
    /// Send hostile and malformed requests to a running shop's gateway and check that every
    /// one gets a clear answer (no 500; a 503 always with Retry-After); reports the resident
    /// memory of --pid before and after.
    Fuzz(fuzz::FuzzArgs),
    /// Load a running shop through its gateway (browse, search, cart, checkout; N shoppers or an
    /// arrival rate), then report latency percentiles and errors per operation, and whether
    /// every unit sold is accounted for.
    Loadgen(loadgen::LoadArgs),
    /// Measure the shop side by side on this machine (one product read directly, through
    /// nginx, through the gateway, against a bare hyper server; the shop's footprint) and
    /// write the figures into BENCHMARKS.md. Needs wrk and nginx.
    Bench(bench::BenchArgs),
    /// Write the public API's OpenAPI document, merged from every service's handlers, where the
    /// gateway serves it from.
    Openapi {
        /// Where to write it.
        #[arg(long, default_value = openapi::FILE)]
        file: PathBuf,
        /// Compare with what is there instead of writing; fail if it differs.
        #[arg(long)]
        check: bool,
    },
    /// Write the Kubernetes manifests under deploy/kubernetes from the service descriptions.
    Manifests {
        /// Where to write them.
        #[arg(long, default_value = "deploy/kubernetes")]
        dir: PathBuf,
        /// Compare with what is there instead of writing; fail if anything differs.
        #[arg(long)]
        check: bool,
    },
}

#[derive(clap::Args, Default)]
pub struct UpArgs {
    /// Run each service as its own process against the PostgreSQL, NATS and Redis named by
    /// NUBO_DATABASE_URL, NUBO_NATS_URL and NUBO_REDIS_URL.
    #[arg(long)]
    pub distributed: bool,
    /// Where the SQLite files live (embedded mode) and the CA that issues every service's
    /// certificate (both modes); created if missing.
    #[arg(long, env = "NUBO_DATA_DIR", default_value = "nubo-data")]
    pub data_dir: PathBuf,
    /// The gateway's port; the other services take the ports after it.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Do not seed demo data into empty stores.
    #[arg(long)]
    pub no_seed: bool,
    /// With --distributed: run N replicas of SERVICE behind a balancer on its port
    /// (e.g. orders=2); repeatable.
    #[arg(long, value_name = "SERVICE=N", requires = "distributed")]
    pub replicas: Vec<distributed::Replicas>,
    /// With --distributed: give one service a setting of its own
    /// (e.g. payments:NUBO_PAYMENTS_PROVIDER_FAILURE_RATE=0.2); repeatable.
    #[arg(long, value_name = "SERVICE:NAME=VALUE", requires = "distributed")]
    pub set: Vec<distributed::ServiceSetting>,
}

fn service_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(SERVICES.iter().map(|s| s.name))
}

pub fn service(name: &str) -> &'static ServiceDescription {
    SERVICES
        .iter()
        .copied()
        .find(|s| s.name == name)
        .unwrap_or_else(|| unreachable!("clap checked {name}"))
}

/// The port of `desc` when the gateway is on `gateway_port`.
pub fn port_of(desc: &ServiceDescription, gateway_port: u16) -> u16 {
    shifted(desc.default_port(), gateway_port)
}

/// The port of `desc`'s probes and metrics, if they have one of their own, when the gateway is
/// on `gateway_port`.
pub fn ops_port_of(desc: &ServiceDescription, gateway_port: u16) -> Option<u16> {
    desc.ops_port().map(|port| shifted(port, gateway_port))
}

/// Every port `nubo up` opens when the gateway is on `gateway_port`, with the service it is for.
pub fn ports(gateway_port: u16) -> Vec<(&'static str, u16)> {
    SERVICES
        .iter()
        .flat_map(|desc| {
            std::iter::once(port_of(desc, gateway_port))
                .chain(ops_port_of(desc, gateway_port))
                .map(|port| (desc.name, port))
        })
        .collect()
}

fn shifted(default_port: u16, gateway_port: u16) -> u16 {
    let offset = default_port.saturating_sub(nubo_gateway::SERVICE.default_port());
    gateway_port.saturating_add(offset)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nubo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Up(UpArgs::parse_default())) {
            Command::Up(args) if args.distributed => distributed::up(args).await,
            Command::Up(args) => embedded::up(args).await,
            Command::Serve { service: name } => nubo_platform::cli::serve(service(&name)).await,
            Command::Migrate { services } => migrate(services).await,
            Command::CreateAdmin { email } => create_admin(&email).await,
            Command::Manifests { dir, check } => manifests::run(SERVICES, &dir, check),
            Command::Openapi { file, check } => openapi::run(SERVICES, &file, check),
            Command::Loadgen(args) => loadgen::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Audit(args) => audit::run(args).await,
            Command::Chaos(args) => chaos::run(args).await,
            Command::Fuzz(args) => fuzz::run(args).await,
            Command::Certs { dir, services } => certs(&dir, &services),
            Command::Services => {
                println!("{}", serde_json::to_string_pretty(&describe())?);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nubo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl UpArgs {
    /// `nubo` with no command: `nubo up` with its defaults (and NUBO_DATA_DIR if set).
    fn parse_default() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            up: UpArgs,
        }
        Only::parse_from(["nubo"]).up
    }
}

/// Opens a service's database from the environment. Needs only the database settings: a
/// migration job in a cluster has no business connecting to NATS or Redis.
async fn open_database(desc: &ServiceDescription) -> anyhow::Result<nubo_platform::Db> {
    use nubo_platform::Db;
    use nubo_platform::config::{self, Env, Mode};
    let mut env = Env::from_process();
    let mode = env.get(config::MODE, Mode::Distributed);
    let data_dir: PathBuf = env.get(config::DATA_DIR, PathBuf::from("nubo-data"));
    let database_url: Option<String> = match mode {
        Mode::Distributed => env.required(config::DATABASE_URL, "in distributed mode"),
        Mode::Embedded => None,
    };
    env.finish()?;
    match database_url {
        None => Db::open_sqlite(&data_dir, desc.name, 1).await,
        Some(url) => Db::connect_postgres(&url, desc.name, 1),
    }
}

/// Migrates each chosen service's database.
async fn migrate(names: Vec<String>) -> anyhow::Result<()> {
    let chosen: Vec<&'static ServiceDescription> = if names.is_empty() {
        SERVICES.to_vec()
    } else {
        names.iter().map(|n| service(n)).collect()
    };
    for desc in chosen {
        let db = open_database(desc).await?;
        db.migrate(desc.migrations).await?;
        db.close().await;
        println!("{}: migrated ({})", desc.name, db.backend());
    }
    Ok(())
}

async fn create_admin(email: &str) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let desc = &nubo_identity::SERVICE;
    let db = open_database(desc).await?;
    db.migrate(desc.migrations).await?;
    let id =
        nubo_identity::create_account(&db, email, password, nubo_identity::domain::Role::Admin)
            .await?;
    db.close().await;
    println!("admin {email} created (user id {id})");
    Ok(())
}

/// Issues each named service's (or every service's) certificate from the CA in `dir`.
fn certs(dir: &std::path::Path, names: &[String]) -> anyhow::Result<()> {
    use nubo_platform::config::{self, Env, TLS_TRUST_DOMAIN};
    let mut env = Env::from_process();
    let trust_domain: String = env.get(
        TLS_TRUST_DOMAIN,
        nubo_platform::tls::DEFAULT_TRUST_DOMAIN.to_owned(),
    );
    env.finish()?;
    let ca = nubo_platform::tls::authority::Authority::open(dir)?;
    let names: Vec<&str> = if names.is_empty() {
        config::SERVICES.iter().map(|s| s.name).collect()
    } else {
        names.iter().map(String::as_str).collect()
    };
    for name in names {
        let issued = ca.ensure(name, &trust_domain)?;
        println!(
            "{name}: {} ({})",
            issued.display(),
            nubo_platform::tls::spiffe_id(&trust_domain, name)
        );
    }
    Ok(())
}

fn describe() -> serde_json::Value {
    SERVICES
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "port": s.default_port(),
                "ops_port": s.ops_port(),
                "url_variable": s.url_variable(),
                "publishes": s.publishes,
                "consumes": s.consumes.iter().map(|c| serde_json::json!({
                    "durable": c.durable, "subject": c.subject,
                })).collect::<Vec<_>>(),
                "calls": s.calls(),
                "env": s.env.iter().map(|(name, meaning, default)| serde_json::json!({
                    "name": name, "meaning": meaning, "default": default,
                })).collect::<Vec<_>>(),
                "probes": {
                    "port": s.ops_port().unwrap_or(s.default_port()),
                    "liveness": "/livez", "readiness": "/readyz", "startup": "/startupz",
                },
                "metrics": "/metrics",
            })
        })
        .collect()
}
