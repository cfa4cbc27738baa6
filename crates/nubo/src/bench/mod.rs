//! `nubo bench`: the shop's figures measured side by side in one run, on this machine, and
//! written into BENCHMARKS.md.
//!
//! It starts an embedded shop of its own (this very binary, `nubo up`), nginx proxying to the
//! shop's catalog over the transport the gateway uses (mutual TLS, the gateway's own client
//! certificate, kept-alive upstream connections), and a minimal hyper server answering a fixed
//! body. wrk then reads the same product four ways, in rounds whose order rotates, so a noisy
//! neighbour hurts every target alike; the report quotes medians over the rounds and ratios
//! between targets of the same run. It also reports the shop's footprint (start to all-ready,
//! resident memory idle and after the load, the binary's size) and the checkout: `nubo loadgen`
//! against a fresh shop at its peak and at half of it, with the card provider instant and slow.

mod ceiling;
mod checkout;
mod console;
mod distributed;
mod nginx;
mod report;
mod shop;
mod surge;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::fuzz::resident_kib;
use nginx::Nginx;
use shop::Shop;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Seconds of load per target and round.
    #[arg(long, default_value_t = 8)]
    pub seconds: u64,
    /// Rounds; every figure is the median over them.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Keep-alive connections wrk holds open.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// First of the ports the bench's own shop, nginx and the ceiling server take.
    #[arg(long, default_value_t = 7300)]
    pub port: u16,
    /// The report to update (its `bench:http` section); created if missing.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub report: PathBuf,
    /// Print the figures as JSON on standard output too.
    #[arg(long)]
    pub json: bool,
    /// Seconds of each checkout run (two per provider latency); 0 skips the checkout.
    #[arg(long, default_value_t = 20)]
    pub checkout_seconds: u64,
    /// Shoppers of the closed checkout run that finds the peak.
    #[arg(long, default_value_t = 16)]
    pub shoppers: u32,
    /// Seconds of the black-friday run (needs the checkout runs); 0 skips it.
    #[arg(long, default_value_t = 120)]
    pub surge_seconds: u64,
    /// Measure the embedded shop only: no distributed checkout, per-service footprint or
    /// pgbench (those start a PostgreSQL, NATS, Redis and SMTP server of their own).
    #[arg(long)]
    pub embedded_only: bool,
    /// Pairs of checkout peaks with the ops console watched and closed (each `--checkout-seconds`
    /// long); 0 skips measuring the console's cost.
    #[arg(long, default_value_t = 2)]
    pub console_rounds: usize,
}

/// One way of reading the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The catalog's own port, no proxy.
    Direct,
    /// nginx, proxying to the catalog over mutual TLS.
    Nginx,
    /// nubo's gateway, proxying to the catalog over mutual TLS.
    Gateway,
    /// hyper answering a fixed body.
    Ceiling,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::Direct,
        Target::Nginx,
        Target::Gateway,
        Target::Ceiling,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "catalog, direct",
            Target::Nginx => "through nginx",
            Target::Gateway => "through nubo's gateway",
            Target::Ceiling => "hyper, fixed body",
        }
    }
}

/// Everything one bench run measured.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub machine: report::Machine,
    pub seconds: u64,
    pub rounds: usize,
    pub connections: u32,
    pub checkout_seconds: u64,
    /// Per target, every round's run.
    pub http: Vec<(Target, Vec<wrk::Run>)>,
    pub footprint: Footprint,
    /// At provider latency 0 and at its default.
    pub checkout: Vec<checkout::Checkout>,
    pub surge: Option<surge::Surge>,
    pub distributed: Option<distributed::Distributed>,
    pub console: Option<console::ConsoleCost>,
}

#[derive(Debug, Serialize)]
pub struct Footprint {
    /// From spawning `nubo up` to every service's readiness probe answering 200.
    pub start_to_ready_ms: u128,
    pub idle_rss_kib: u64,
    /// Resident memory after all the HTTP load, and its peak.
    pub loaded_rss_kib: u64,
    pub peak_rss_kib: u64,
    pub binary_bytes: u64,
    /// What an image built `FROM scratch` holds: the binary and the shared libraries it links
    /// (as `ldd` lists them), before the image's own few files.
    pub image_bytes: u64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "nubo bench: this is a debug build; figures of `cargo run --release -- bench` are the ones to quote"
        );
    }
    if args.rounds == 0 || args.seconds == 0 {
        bail!("--rounds and --seconds must be at least 1");
    }
    for tool in ["wrk", "nginx"] {
        if which(tool).is_none() {
            bail!("nubo bench needs {tool} (Debian's package `{tool}`; nginx as `nginx-light`)");
        }
    }
    let work = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();

    eprintln!("starting the shop under test on port {}", args.port);
    let (mut shop, start_to_ready) = Shop::start(args.port, &work.path().join("shop"), &[]).await?;
    let product = shop.a_product().await?;
    let path = format!("/api/v1/products/{product}");
    let idle_rss_kib = resident_kib(shop.pid()).unwrap_or(0);

    let catalog_port = crate::port_of(&nubo_catalog::SERVICE, args.port);
    let nginx_port = args.port + 30;
    let nginx = Nginx::start(work.path(), nginx_port, catalog_port).await?;
    let ceiling_port = args.port + 31;
    let body = reqwest::get(format!("http://127.0.0.1:{catalog_port}{path}"))
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    ceiling::serve(([127, 0, 0, 1], ceiling_port).into(), body, stop.clone()).await?;

    let url = |target: Target| {
        let port = match target {
            Target::Direct => catalog_port,
            Target::Nginx => nginx_port,
            Target::Gateway => args.port,
            Target::Ceiling => ceiling_port,
        };
        format!("http://127.0.0.1:{port}{path}")
    };
    let seconds = Duration::from_secs(args.seconds);
    eprintln!("warming up every target");
    for target in Target::ALL {
        let warm = wrk::run(&url(target), args.connections, Duration::from_secs(2)).await?;
        if warm.errors > 0 {
            bail!(
                "{} answered {} errors while warming up",
                target.label(),
                warm.errors
            );
        }
    }
    let mut http: Vec<(Target, Vec<wrk::Run>)> =
        Target::ALL.iter().map(|t| (*t, Vec::new())).collect();
    for round in 0..args.rounds {
        for i in 0..Target::ALL.len() {
            let target = Target::ALL[(i + round) % Target::ALL.len()];
            let run = wrk::run(&url(target), args.connections, seconds).await?;
            eprintln!(
                "round {}/{}: {:<24} {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
                round + 1,
                args.rounds,
                target.label(),
                run.requests_per_second,
                run.p50_ms,
                run.p99_ms,
                run.errors
            );
            let slot = http
                .iter_mut()
                .find(|(t, _)| *t == target)
                .expect("every target has a slot");
            slot.1.push(run);
        }
    }
    let (loaded_rss_kib, peak_rss_kib) = (
        resident_kib(shop.pid()).unwrap_or(0),
        peak_kib(shop.pid()).unwrap_or(0),
    );
    shop.stop().await;
    drop(nginx);
    let mut checkouts = Vec::new();
    if args.checkout_seconds > 0 {
        for latency in [0, 50] {
            checkouts.push(
                checkout::measure(
                    args.port,
                    work.path(),
                    latency,
                    args.shoppers,
                    args.checkout_seconds,
                )
                .await?,
            );
        }
    }
    let mut surge = None;
    if let Some(slow) = checkouts.last().filter(|_| args.surge_seconds > 0) {
        // From a fifth of the peak the closed loop found to twice it, and back.
        let base = (slow.peak.orders_per_second / 5.0).max(0.5);
        surge = Some(
            surge::measure(
                args.port,
                work.path(),
                base,
                slow.cpu_ms_per_order,
                args.surge_seconds,
            )
            .await?,
        );
    }
    let mut console = None;
    if args.checkout_seconds > 0 && args.console_rounds > 0 {
        console = Some(
            console::measure(
                args.port,
                work.path(),
                args.shoppers,
                args.checkout_seconds,
                args.console_rounds,
            )
            .await?,
        );
    }
    let mut distributed = None;
    if args.checkout_seconds > 0 && !args.embedded_only {
        distributed = Some(
            distributed::measure(
                args.port + 100,
                work.path(),
                args.shoppers,
                args.checkout_seconds,
            )
            .await?,
        );
    }
    let figures = Figures {
        machine: report::Machine::read(),
        seconds: args.seconds,
        rounds: args.rounds,
        connections: args.connections,
        checkout_seconds: args.checkout_seconds,
        http,
        footprint: Footprint {
            start_to_ready_ms: start_to_ready.as_millis(),
            idle_rss_kib,
            loaded_rss_kib,
            peak_rss_kib,
            binary_bytes: std::env::current_exe()?.metadata()?.len(),
            image_bytes: image_bytes().await?,
        },
        checkout: checkouts,
        surge,
        distributed,
        console,
    };
    report::write(&args.report, &figures)?;
    println!("{}", report::http_table(&figures));
    if !figures.checkout.is_empty() {
        println!(
            "{}",
            checkout::table("Embedded shop", &figures.checkout, args.checkout_seconds)
        );
    }
    if let Some(d) = &figures.distributed {
        println!("{}", distributed::section(d, args.checkout_seconds));
    }
    if let Some(c) = &figures.console {
        println!("{}", console::section(c, args.checkout_seconds));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    }
    eprintln!("wrote {}", args.report.display());
    Ok(())
}

/// The size of this binary and of every shared library it links, which is what an image built
/// `FROM scratch` for it must hold.
async fn image_bytes() -> anyhow::Result<u64> {
    let exe = std::env::current_exe()?;
    let out = tokio::process::Command::new("ldd")
        .arg(&exe)
        .output()
        .await
        .context("ldd (Debian's libc-bin) does not run")?;
    let libraries: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux... (0x...)`;
        // the vDSO has no file.
        .filter_map(|l| l.split("=>").last()?.split_whitespace().next())
        .filter(|path| path.starts_with('/'))
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    Ok(exe.metadata()?.len() + libraries)
}

/// Peak resident memory of `pid` (VmHWM), in KiB.
pub(crate) fn peak_kib(pid: u32) -> Option<u64> {
    crate::fuzz::status_kib(pid, "VmHWM:")
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file())
        .or_else(|| Some(Path::new("/usr/sbin").join(tool)).filter(|p| p.is_file()))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_image_holds_the_binary_and_the_libraries_it_links() {
        let binary = std::env::current_exe().unwrap().metadata().unwrap().len();
        let image = super::image_bytes().await.unwrap();
        // This test binary links at least the C library and the dynamic loader.
        assert!(image > binary + 100_000, "{image} against {binary}");
    }
}
