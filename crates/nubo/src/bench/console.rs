//! What the ops console costs the shop: the embedded checkout's peak with an admin watching
//! (every poll the console page makes: overview, logs, traces and the checkout board, every 2 s)
//! against nobody watching, in alternating rounds (off, on, on, off, ...), medians compared;
//! then how full the console's windows are and what the process holds in memory.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Shop;
use super::checkout::loadgen;
use crate::fuzz::{resident_kib, status_kib};

#[derive(Clone, Debug, Serialize)]
pub struct ConsoleCost {
    /// Each round: whether the console was watched, and the peak's orders per second.
    pub rounds: Vec<(bool, f64)>,
    pub unwatched_orders_per_second: f64,
    pub watched_orders_per_second: f64,
    /// Requests the watcher sent, and how many failed.
    pub console_requests: u64,
    pub console_failures: u64,
    /// The overview's `windows` after the runs.
    pub windows: Value,
    pub rss_kib: u64,
    pub rss_anon_kib: u64,
}

pub async fn measure(
    port: u16,
    work: &Path,
    shoppers: u32,
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<ConsoleCost> {
    let (mut shop, _) = Shop::start(
        port,
        &work.join("console"),
        &[
            ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", "0"),
            ("NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR", "1000000"),
            ("NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE", "1000000"),
            // As a user runs it, so the log window fills as theirs does.
            ("NUBO_LOG", "info"),
        ],
    )
    .await?;
    let target = format!("http://127.0.0.1:{port}");
    let shoppers = shoppers.to_string();
    let load = ["--shoppers", shoppers.as_str()];
    eprintln!("console: warming up");
    loadgen(&target, &load, 3, "warm-up".into()).await?;
    let mut runs = Vec::new();
    let (mut requests, mut failures) = (0, 0);
    for round in 0..rounds.max(1) * 2 {
        // off, on, on, off, off, on, ...: neither setting always goes first.
        let watched = (round % 4 == 1) || (round % 4 == 2);
        let stop = CancellationToken::new();
        let watcher = watched.then(|| tokio::spawn(watch(target.clone(), stop.clone())));
        let described = format!(
            "{shoppers} shoppers, console {}",
            if watched { "watched" } else { "closed" }
        );
        let run = loadgen(&target, &load, seconds, described).await?;
        stop.cancel();
        if let Some(w) = watcher {
            let (sent, failed) = w.await??;
            requests += sent;
            failures += failed;
        }
        eprintln!(
            "console: {:.1} orders/s (watched: {watched})",
            run.orders_per_second
        );
        runs.push((watched, run.orders_per_second));
    }
    let token = sign_in(&target).await?;
    let overview: Value = reqwest::Client::new()
        .get(format!("{target}/api/v1/admin/ops/overview"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let pid = shop.pid();
    let cost = ConsoleCost {
        unwatched_orders_per_second: median(&runs, false),
        watched_orders_per_second: median(&runs, true),
        rounds: runs,
        console_requests: requests,
        console_failures: failures,
        windows: overview["windows"].clone(),
        rss_kib: resident_kib(pid).unwrap_or(0),
        rss_anon_kib: status_kib(pid, "RssAnon:").unwrap_or(0),
    };
    shop.stop().await;
    Ok(cost)
}

fn median(runs: &[(bool, f64)], watched: bool) -> f64 {
    let mut rates: Vec<f64> = runs
        .iter()
        .filter(|(w, _)| *w == watched)
        .map(|(_, r)| *r)
        .collect();
    rates.sort_by(f64::total_cmp);
    match rates.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => rates[n / 2],
        n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    }
}

async fn sign_in(target: &str) -> anyhow::Result<String> {
    let (email, password) = crate::embedded::DEMO_ADMIN;
    let answer: Value = reqwest::Client::new()
        .post(format!("{target}/api/v1/identity/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the demo admin's sign-in gave no token"))
}

/// The console page's polls, every 2 s, until `stop`: requests sent and failed.
async fn watch(target: String, stop: CancellationToken) -> anyhow::Result<(u64, u64)> {
    let token = sign_in(&target).await?;
    let http = reqwest::Client::new();
    let (mut sent, mut failed) = (0, 0);
    let mut next_log = 0u64;
    while !stop.is_cancelled() {
        for path in [
            "overview".to_owned(),
            format!("logs?after={next_log}&limit=500"),
            "traces?limit=50".to_owned(),
            "checkouts".to_owned(),
        ] {
            sent += 1;
            match http
                .get(format!("{target}/api/v1/admin/ops/{path}"))
                .bearer_auth(&token)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    if path.starts_with("logs")
                        && let Ok(body) = r.json::<Value>().await
                    {
                        next_log = body["next"].as_u64().unwrap_or(next_log);
                    }
                }
                _ => failed += 1,
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    Ok((sent, failed))
}

/// The report's section.
pub fn section(c: &ConsoleCost, seconds: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let ratio = c.watched_orders_per_second / c.unwatched_orders_per_second;
    let _ = writeln!(
        out,
        "The embedded shop's checkout peak (`nubo loadgen --scenario checkout-heavy`, closed loop, \
         {seconds} s per round, provider latency 0, `NUBO_LOG=info`) with an admin watching the \
         ops console (the page's four polls every 2 s) and with nobody watching, rounds \
         alternated; medians.\n"
    );
    let _ = writeln!(out, "| console | orders/s (median) | rounds |");
    let _ = writeln!(out, "|---|---:|---|");
    for watched in [false, true] {
        let rounds: Vec<String> = c
            .rounds
            .iter()
            .filter(|(w, _)| *w == watched)
            .map(|(_, r)| format!("{r:.1}"))
            .collect();
        let median = if watched {
            c.watched_orders_per_second
        } else {
            c.unwatched_orders_per_second
        };
        let _ = writeln!(
            out,
            "| {} | {median:.1} | {} |",
            if watched { "watched" } else { "closed" },
            rounds.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\nWatched ÷ closed: **{ratio:.3}** ({} console requests, {} failed).\n",
        c.console_requests, c.console_failures
    );
    let w = &c.windows;
    let mib = |v: &Value| v.as_f64().unwrap_or(f64::NAN) / (1024.0 * 1024.0);
    let _ = writeln!(
        out,
        "After the runs the process's log window held {} of {} lines ({:.1} MiB counted), its \
         span window {} of {} spans ({:.1} MiB counted), and the console's merged copies {} log \
         lines and {} spans in {} traces. The whole shop: {:.1} MiB resident, {:.1} MiB of it \
         anonymous (heap).",
        w["process_logs"]["lines"],
        w["process_logs"]["max_lines"],
        mib(&w["process_logs"]["bytes"]),
        w["process_spans"]["spans"],
        w["process_spans"]["max_spans"],
        mib(&w["process_spans"]["bytes"]),
        w["console"]["log_lines"],
        w["console"]["spans"],
        w["console"]["traces"],
        c.rss_kib as f64 / 1024.0,
        c.rss_anon_kib as f64 / 1024.0,
    );
    out
}
