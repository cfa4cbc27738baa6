//! The checkout measured on a distributed shop: every service its own process (`nubo up
//! --distributed`, the same binary), on a PostgreSQL, NATS, Redis and SMTP server the bench
//! starts for itself (the chaos run's, from the machine's Debian packages). The same peak and
//! half-peak loads as the embedded shop's, at both card provider latencies; each service's
//! resident memory idle, after the load and at its peak, and its CPU time per order; then
//! pgbench on the same PostgreSQL running one checkout's statements as fast as it can: the
//! database's ceiling, which the shop's order rate is held against.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::checkout::{self, Checkout};
use super::peak_kib;
use crate::UpArgs;
use crate::chaos::servers::Server;
use crate::distributed::{Fleet, Plan, Replica};
use crate::fuzz::resident_kib;

/// One checkout's statements, as the services send them (see the file's header).
const PGBENCH_SCRIPT: &str = include_str!("checkout.pgbench");

#[derive(Debug, Serialize)]
pub struct Distributed {
    /// From spawning the services to every one's readiness probe answering 200 (servers up).
    pub start_to_ready_ms: u128,
    /// At provider latency 0 and at its default.
    pub checkout: Vec<Checkout>,
    /// Per service, from the run at provider latency 0.
    pub services: Vec<Service>,
    pub pgbench: PgBench,
}

#[derive(Debug, Serialize)]
pub struct Service {
    pub name: &'static str,
    pub idle_rss_kib: u64,
    /// Of it, anonymous memory (heap and stacks; the rest is the binary's pages, which
    /// processes of the same binary share).
    pub idle_anon_kib: u64,
    /// After the peak and half-peak loads.
    pub loaded_rss_kib: u64,
    pub peak_rss_kib: u64,
    /// Its CPU time over the whole run (both loads) per order completed.
    pub cpu_ms_per_order: f64,
}

#[derive(Debug, Serialize)]
pub struct PgBench {
    pub clients: u32,
    pub seconds: u64,
    /// Transactions of the script (checkouts) per second.
    pub checkouts_per_second: f64,
    pub latency_average_ms: f64,
    pub statements: usize,
}

/// Starts the servers, measures the shop at each provider latency, then pgbench.
pub async fn measure(
    port: u16,
    work: &Path,
    shoppers: u32,
    seconds: u64,
) -> anyhow::Result<Distributed> {
    let root = work.join("distributed");
    std::fs::create_dir_all(&root)?;
    let base = port + 50;
    let mut postgres = Server::postgres(&root, base).await?;
    let mut nats = Server::nats(&root, base + 1).await?;
    let mut redis = Server::redis(&root, base + 2).await?;
    let mut smtp = Server::smtp(&root, base + 3).await?;
    let outcome = measure_on(
        port,
        &root,
        &postgres,
        &[&nats, &redis, &smtp],
        shoppers,
        seconds,
    )
    .await;
    for server in [&mut postgres, &mut nats, &mut redis, &mut smtp] {
        let _ = server.stop(false).await;
    }
    outcome
}

async fn measure_on(
    port: u16,
    root: &Path,
    postgres: &Server,
    others: &[&Server; 3],
    shoppers: u32,
    seconds: u64,
) -> anyhow::Result<Distributed> {
    let [nats, redis, smtp] = others;
    let mut checkouts = Vec::new();
    let mut services = Vec::new();
    let mut start_to_ready_ms = 0;
    for latency in [0, 50] {
        let shared: BTreeMap<String, String> = [
            ("NUBO_DATABASE_URL", postgres.url()),
            ("NUBO_NATS_URL", nats.url()),
            ("NUBO_REDIS_URL", redis.url()),
            ("NUBO_NOTIFICATIONS_SMTP_URL", smtp.url()),
            ("NUBO_LOG", "warn".to_owned()),
            ("NUBO_GATEWAY_RATE_LIMIT_RPS", "1000000".to_owned()),
            (
                "NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR",
                "1000000".to_owned(),
            ),
            (
                "NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE",
                "1000000".to_owned(),
            ),
            ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", latency.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        eprintln!("distributed: starting the shop, card provider latency {latency} ms");
        let started = Instant::now();
        let fleet = Fleet::start(Plan {
            up: UpArgs {
                distributed: true,
                data_dir: root.join("data"),
                port,
                no_seed: false,
                replicas: Vec::new(),
                set: Vec::new(),
            },
            replicas: Vec::new(),
            settings: Vec::new(),
            shared,
            logs: Some(root.to_path_buf()),
            fronted: false,
            isolated: true,
        })
        .await?;
        let outcome = async {
            ready(&fleet.replicas).await?;
            if latency == 0 {
                start_to_ready_ms = started.elapsed().as_millis();
            }
            stocked(port).await?;
            let pids: Vec<(&'static str, u32)> = fleet
                .replicas
                .iter()
                .filter_map(|r| Some((r.service, (*r.pid.lock().ok()?)?)))
                .collect();
            let idle: Vec<(u64, u64)> = pids
                .iter()
                .map(|(_, p)| {
                    let kib = |field| crate::fuzz::status_kib(*p, field).unwrap_or(0);
                    (kib("VmRSS:"), kib("RssAnon:"))
                })
                .collect();
            let cpu_before: Vec<f64> = pids.iter().map(|(_, p)| checkout::cpu_ms(&[*p])).collect();
            let all: Vec<u32> = pids.iter().map(|(_, p)| *p).collect();
            let run = checkout::loads(port, &all, latency, shoppers, seconds).await?;
            if latency == 0 {
                let orders =
                    (run.peak.orders_per_second + run.half_peak.orders_per_second) * seconds as f64;
                for (i, (name, pid)) in pids.iter().enumerate() {
                    services.push(Service {
                        name,
                        idle_rss_kib: idle[i].0,
                        idle_anon_kib: idle[i].1,
                        loaded_rss_kib: resident_kib(*pid).unwrap_or(0),
                        peak_rss_kib: peak_kib(*pid).unwrap_or(0),
                        cpu_ms_per_order: (checkout::cpu_ms(&[*pid]) - cpu_before[i]) / orders,
                    });
                }
            }
            anyhow::Ok(run)
        }
        .await;
        fleet.stop().await;
        checkouts.push(outcome?);
    }
    let pgbench = pgbench(root, postgres, shoppers, seconds).await?;
    Ok(Distributed {
        start_to_ready_ms,
        checkout: checkouts,
        services,
        pgbench,
    })
}

/// Waits for every replica's readiness probe.
async fn ready(replicas: &[Replica]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !crate::chaos::all_ready(replicas).await {
        if Instant::now() > deadline {
            bail!("the distributed shop under test was not ready within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits until inventory keeps stock for the catalog's first product: it learns of products
/// from the catalog's events, which may come after every probe says ready.
async fn stocked(port: u16) -> anyhow::Result<()> {
    let shop = crate::shop::Shop::new(&format!("http://127.0.0.1:{port}"), reqwest::Client::new());
    let page: serde_json::Value = shop
        .http
        .get(shop.api("/products?per_page=1"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let sku = page["items"][0]["sku"]
        .as_str()
        .context("the distributed shop lists no product")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while shop.available(sku).await.is_err() {
        if Instant::now() > deadline {
            bail!("inventory kept no stock for {sku} a minute after the shop was ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// pgbench with `clients` connections running the checkout script for `seconds` against the
/// database the shop used (its schemas and the rows the runs left).
async fn pgbench(
    root: &Path,
    postgres: &Server,
    clients: u32,
    seconds: u64,
) -> anyhow::Result<PgBench> {
    let script = root.join("checkout.pgbench");
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    eprintln!("distributed: pgbench, {clients} clients, {seconds} s");
    let program = postgres
        .pg_program("pgbench")
        .context("pgbench is not installed beside PostgreSQL (Debian's postgresql package)")?;
    let out = tokio::process::Command::new(program)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &postgres.port.to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "-n",
            "-M",
            "prepared",
            "-j",
            "2",
            "-c",
            &clients.to_string(),
            "-T",
            &seconds.to_string(),
        ])
        .arg("-f")
        .arg(&script)
        .arg("postgres")
        .output()
        .await
        .context("pgbench does not run")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let figure = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    Ok(PgBench {
        clients,
        seconds,
        checkouts_per_second: figure("tps =").context("pgbench printed no tps")?,
        latency_average_ms: figure("latency average =").unwrap_or(f64::NAN),
        statements: PGBENCH_SCRIPT
            .lines()
            .filter(|l| !l.trim_start().starts_with("--") && l.trim_end().ends_with(';'))
            .count(),
    })
}

/// The distributed section of the report.
pub fn section(d: &Distributed, seconds: u64) -> String {
    use std::fmt::Write as _;
    let mut out = checkout::table(
        "Distributed shop (a process per service; PostgreSQL, NATS, Redis and SMTP servers of the bench's own)",
        &d.checkout,
        seconds,
    );
    let peak = d
        .checkout
        .first()
        .map_or(f64::NAN, |c| c.peak.orders_per_second);
    let half = d.checkout.first().map(|c| &c.half_peak);
    let p = &d.pgbench;
    let _ = writeln!(
        out,
        "\npgbench on the same PostgreSQL, {} clients for {} s, one checkout's {} statements a \
         transaction: **{:.0} checkouts/s** (average latency {:.1} ms). The shop's peak at provider \
         latency 0 is **{:.2}×** that ceiling (target ≥ 0.50); at half of it the checkout's p99 is \
         {:.1} ms (target < 50 ms).\n",
        p.clients,
        p.seconds,
        p.statements,
        p.checkouts_per_second,
        p.latency_average_ms,
        peak / p.checkouts_per_second,
        half.map_or(f64::NAN, |h| h.checkout_p99_ms),
    );
    let _ = writeln!(
        out,
        "| service | resident idle | of it heap | after the load | peak | CPU per order |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for s in &d.services {
        let _ = writeln!(
            out,
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.2} ms |",
            s.name,
            mib(s.idle_rss_kib),
            mib(s.idle_anon_kib),
            mib(s.loaded_rss_kib),
            mib(s.peak_rss_kib),
            s.cpu_ms_per_order
        );
    }
    let _ = writeln!(
        out,
        "\nHeap is `RssAnon`; the rest of the resident memory is the binary's pages, shared by \
         processes of one binary on one machine. CPU per order is each process's CPU time over \
         both runs at provider latency 0 divided by the orders; identity's is the run's sign-ups \
         and logins (argon2id), which the load generator does before its shoppers start.\n\n\
         Start to every service ready (servers already up): {} ms.",
        d.start_to_ready_ms
    );
    out
}
