//! The checkout measured on an embedded shop of the bench's own: `nubo loadgen` in a closed
//! loop finds the peak rate (shoppers checking out as fast as the shop answers), then an open
//! load at half that rate measures the latency a shop sees when it is busy but not saturated,
//! from each arrival's intended time (so queueing is not hidden). Once with the simulated card
//! provider answering at once, once with its default latency.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;

use super::Shop;
use crate::fuzz::resident_kib;

/// One loadgen run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Load {
    /// `16 shoppers` or `12.5 arrivals/s`.
    pub load: String,
    pub orders_per_second: f64,
    pub checkout_p50_ms: f64,
    pub checkout_p99_ms: f64,
    pub settled_p50_ms: f64,
    pub settled_p99_ms: f64,
    pub errors: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Checkout {
    pub provider_latency_ms: u64,
    pub peak: Load,
    pub half_peak: Load,
    /// CPU time of the whole shop per order during the peak run, in milliseconds.
    pub cpu_ms_per_order: f64,
    /// Resident memory of the shop after both runs, and its peak.
    pub rss_after_kib: u64,
    pub peak_rss_kib: u64,
}

/// Runs the peak and half-peak loads against a fresh shop whose provider answers after
/// `provider_latency_ms`.
pub async fn measure(
    port: u16,
    work: &Path,
    provider_latency_ms: u64,
    shoppers: u32,
    seconds: u64,
) -> anyhow::Result<Checkout> {
    let data = work.join(format!("checkout-{provider_latency_ms}"));
    let latency = provider_latency_ms.to_string();
    let (mut shop, _) = Shop::start(
        port,
        &data,
        &[
            ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", latency.as_str()),
            ("NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR", "1000000"),
            ("NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE", "1000000"),
        ],
    )
    .await?;
    let figures = loads(port, &[shop.pid()], provider_latency_ms, shoppers, seconds).await?;
    shop.stop().await;
    Ok(figures)
}

/// The peak and the half-peak load against the shop whose gateway is on `port`; CPU time and
/// memory are those of `pids`, the shop's processes, added up.
pub(super) async fn loads(
    port: u16,
    pids: &[u32],
    provider_latency_ms: u64,
    shoppers: u32,
    seconds: u64,
) -> anyhow::Result<Checkout> {
    let target = format!("http://127.0.0.1:{port}");
    let shoppers_arg = shoppers.to_string();
    let cpu_before = cpu_ms(pids);
    let peak = loadgen(
        &target,
        &["--shoppers", &shoppers_arg],
        seconds,
        format!("{shoppers} shoppers"),
    )
    .await?;
    let cpu = cpu_ms(pids) - cpu_before;
    let orders = peak.orders_per_second * seconds as f64;
    let cpu_ms_per_order = if orders > 0.0 { cpu / orders } else { f64::NAN };
    let half = (peak.orders_per_second / 2.0).max(0.5);
    let rate = format!("{half:.1}");
    let half_peak = loadgen(
        &target,
        &["--rate", &rate, "--accounts", &shoppers_arg],
        seconds,
        format!("{rate} arrivals/s"),
    )
    .await?;
    let sum = |kib: fn(u32) -> Option<u64>| pids.iter().filter_map(|p| kib(*p)).sum();
    Ok(Checkout {
        provider_latency_ms,
        peak,
        half_peak,
        cpu_ms_per_order,
        rss_after_kib: sum(resident_kib),
        peak_rss_kib: sum(super::peak_kib),
    })
}

pub(super) async fn loadgen(
    target: &str,
    load: &[&str],
    seconds: u64,
    described: String,
) -> anyhow::Result<Load> {
    eprintln!("checkout: {described} for {seconds} s");
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "loadgen",
            "--target",
            target,
            "--scenario",
            "checkout-heavy",
            "--json",
        ])
        .args(["--seconds", &seconds.to_string()])
        .args(load)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await?;
    if !out.status.success() {
        bail!("nubo loadgen {} failed ({})", load.join(" "), out.status);
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).context("nubo loadgen printed no JSON report")?;
    let operation = |name: &str| {
        report["operations"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["operation"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (checkout, settled) = (operation("checkout"), operation("checkout until settled"));
    let figure = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    Ok(Load {
        load: described,
        orders_per_second: figure(&report, "orders_per_second"),
        checkout_p50_ms: figure(&checkout, "p50_ms"),
        checkout_p99_ms: figure(&checkout, "p99_ms"),
        settled_p50_ms: figure(&settled, "p50_ms"),
        settled_p99_ms: figure(&settled, "p99_ms"),
        errors: report["errors"].as_u64().unwrap_or(0),
    })
}

/// CPU time `pids` have used (user and system), in milliseconds.
pub(super) fn cpu_ms(pids: &[u32]) -> f64 {
    pids.iter().map(|pid| cpu_ms_of(*pid)).sum()
}

/// CPU time `pid` has used, in milliseconds: /proc counts it in USER_HZ, 100 a second on Linux.
fn cpu_ms_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) * 10.0
}

/// The checkout table of the report.
pub fn table(shop: &str, runs: &[Checkout], seconds: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{shop}, `nubo loadgen --scenario checkout-heavy`, {seconds} s per run: first a \
         closed loop (the peak), then an open load at half the peak's order rate, latency from \
         each arrival's intended time. A checkout is the `POST /api/v1/checkout` answer (202); \
         \"until settled\" follows the order until it is completed or cancelled.\n"
    );
    let _ = writeln!(
        out,
        "| card provider latency | load | orders/s | checkout p50 | p99 | until settled p50 | p99 | errors |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        for load in [&run.peak, &run.half_peak] {
            let _ = writeln!(
                out,
                "| {} ms | {} | {:.1} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
                run.provider_latency_ms,
                load.load,
                load.orders_per_second,
                load.checkout_p50_ms,
                load.checkout_p99_ms,
                load.settled_p50_ms,
                load.settled_p99_ms,
                load.errors
            );
        }
    }
    let _ = writeln!(out);
    for run in runs {
        let _ = writeln!(
            out,
            "- resident memory after the checkout runs at provider latency {} ms: {:.1} MiB (peak {:.1} MiB)",
            run.provider_latency_ms,
            run.rss_after_kib as f64 / 1024.0,
            run.peak_rss_kib as f64 / 1024.0
        );
    }
    out
}
