//! `nubo up`: every service in this process, each on its own loopback port, talking HTTP to each
//! other as in production; SQLite files, the embedded bus and memory caches under one directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nubo_platform::app::{Application, Wiring};
use nubo_platform::cli::{known_variables, settings_for};
use nubo_platform::config::{self, Backing, Env, Mode};
use nubo_platform::events::Bus;
use nubo_platform::telemetry::{self, TelemetryConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{SERVICES, UpArgs, ops_port_of, port_of};

/// The demo accounts identity seeds: email and password.
const DEMO_CUSTOMER: (&str, &str) = ("customer@nubo.example", "nubo-customer-demo");
pub(crate) const DEMO_ADMIN: (&str, &str) = ("admin@nubo.example", "nubo-admin-demo");

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let clock = Instant::now();
    let mut env = Env::from_process();
    let seed = env
        .raw(config::SEED_DEMO_DATA)
        .is_none()
        .then_some(!args.no_seed);
    let mut planned = Vec::new();
    for desc in SERVICES {
        let nubo_platform::cli::ServiceEnvironment {
            mut settings, own, ..
        } = settings_for(&mut env, desc, Mode::Embedded);
        if settings.mode() != Mode::Embedded {
            anyhow::bail!("NUBO_MODE is distributed: run `nubo up --distributed` for that");
        }
        settings.backing = Backing::Embedded {
            data_dir: args.data_dir.clone(),
        };
        settings.http_addr = SocketAddr::from(([127, 0, 0, 1], port_of(desc, args.port)));
        settings.ops_addr =
            ops_port_of(desc, args.port).map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
        if let Some(seed) = seed {
            settings.seed_demo_data = seed;
        }
        let mut own = own;
        // Demo stock: every product the catalog seeds arrives in inventory with some units.
        if settings.seed_demo_data && desc.name == "inventory" {
            own.entry("NUBO_INVENTORY_INITIAL_STOCK".to_owned())
                .or_insert_with(|| "25".to_owned());
        }
        planned.push((*desc, settings, own));
    }
    let seeded = planned
        .iter()
        .any(|(_, settings, _)| settings.seed_demo_data);
    let known = known_variables(SERVICES);
    env.reject_unknown(&known.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    env.finish()?;

    let first = &planned[0].1;
    let telemetry = telemetry::init(TelemetryConfig {
        process: "nubo",
        filter: &first.log_filter,
        format: first.log_format,
        otlp_endpoint: first.otlp_endpoint.as_deref(),
        // On a terminal, with no NUBO_LOG of the user's, routine start-up lines would bury
        // the banner: only warnings and errors until it is printed.
        quiet_start: std::env::var_os(config::LOG).is_none()
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    })?;
    nubo_platform::server::raise_open_file_limit();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let bus = Bus::embedded(&args.data_dir.join("events.db")).await?;

    let mut apps = Vec::new();
    let mut urls = BTreeMap::new();
    let mut ops_urls = BTreeMap::new();
    for (desc, settings, own) in planned {
        let app = Application::bind(desc, settings, own).await?;
        urls.insert(desc.name.to_owned(), app.internal_url());
        ops_urls.insert(desc.name.to_owned(), app.ops_url());
        apps.push(app);
    }
    let token = CancellationToken::new();
    tokio::spawn({
        let token = token.clone();
        async move {
            nubo_platform::server::shutdown_signal().await;
            tracing::info!("shutdown requested");
            token.cancel();
        }
    });
    let healths: Vec<_> = apps.iter().map(|a| (a.name(), a.health())).collect();
    let mut running = JoinSet::new();
    for app in apps {
        let wiring = Wiring {
            service_urls: urls.clone(),
            embedded_bus: Some(bus.clone()),
        };
        running.spawn(app.run_until_stopped(wiring, token.clone()));
    }

    // Announce once every service has started, unless one fails first.
    let all_started = async {
        while !healths.iter().all(|(_, h)| h.started()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut failure = None;
    tokio::select! {
        _ = all_started => {
            announce(&ops_urls, args.port, clock, seeded);
            telemetry.settle();
        }
        Some(done) = running.join_next() => {
            failure = Some(flatten(done));
            token.cancel();
        }
        _ = token.cancelled() => {}
    }
    while let Some(done) = running.join_next().await {
        if let Err(e) = flatten(done) {
            token.cancel();
            failure.get_or_insert(Err(e));
        }
    }
    match failure {
        Some(Err(e)) => Err(e),
        _ => Ok(()),
    }
}

fn flatten(done: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    done.context("a service crashed")?
}

/// `ops_urls`: where each service's probes and metrics are.
fn announce(ops_urls: &BTreeMap<String, String>, port: u16, clock: Instant, seeded: bool) {
    let mut text = format!(
        "\nnubo is up in {} ms. Open http://127.0.0.1:{port}/\n\n",
        clock.elapsed().as_millis()
    );
    text.push_str(&format!(
        "  {:<14}http://127.0.0.1:{port}/api/v1/products\n",
        "shop API"
    ));
    text.push_str(&format!(
        "  {:<14}http://127.0.0.1:{port}/ops  (admins: map, logs, fault switches)\n",
        "ops console"
    ));
    for (name, url) in ops_urls {
        text.push_str(&format!("  {name:<14}{url}  (/readyz, /metrics)\n"));
    }
    if seeded {
        let (customer, admin) = (DEMO_CUSTOMER, DEMO_ADMIN);
        text.push_str("\n  demo accounts (seeded into an empty store):\n");
        text.push_str(&format!("    customer  {} / {}\n", customer.0, customer.1));
        text.push_str(&format!("    admin     {} / {}\n", admin.0, admin.1));
        text.push_str(&format!(
            "  sign in: POST http://127.0.0.1:{port}/api/v1/identity/login\n"
        ));
    }
    text.push_str("\nCtrl-C stops everything.\n");
    println!("{text}");
}
