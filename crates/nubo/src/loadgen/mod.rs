//! `nubo loadgen`: shoppers visiting a running shop through its gateway for a while (browsing,
//! searching, filling carts, checking out), then a report of every operation's latency
//! percentiles and errors by kind, a time series a second, and a check that every unit sold
//! left the stock and nothing else did.
//!
//! Two load models: closed (`--shoppers N`, each visiting again once its last visit ended) and
//! open (`--rate`, `--ramp` or `--profile black-friday`: visits arriving on a schedule, their
//! latency measured from the intended start so that queueing cannot hide). Customer accounts
//! are prepared before the clock starts; the stock of the products bought is set through the
//! admin API so that the run measures the checkout, not running out (with `--stock` low it
//! measures racing for the last units). A checkout whose answer was lost is asked again under
//! the same Idempotency-Key and counted once.
//!
//! goose (Locust for Rust) was considered: it wants to own the process's command line and
//! reports, and has no open model measured from intended send times; the shop's own API client
//! and HdrHistogram do the job in less code than adapting it would take.

mod accounts;
mod args;
mod catalog;
mod model;
mod rate;
mod report;
mod scenario;
mod stats;
mod visit;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tokio::time::Instant;

use args::Load;
pub use args::LoadArgs;
use catalog::Catalog;
use report::Report;
use scenario::Mix;
use stats::Stats;
use visit::Ctx;

use crate::shop::Shop;

/// How long after the end of the run a checkout is still asked again, and its order followed.
const SETTLE: Duration = Duration::from_secs(30);

/// The gateway limits each client's requests; one load generator is one client.
const RATE_LIMITED: &str = "the gateway rate-limited the load generator (429): start the shop \
     with NUBO_GATEWAY_RATE_LIMIT_RPS=1000000 to measure the shop rather than the limit";

/// Connections the shop accepts from one client address by default; the load generator is one.
const CONNECTIONS_PER_CLIENT: usize = 512;
const TOO_MANY_CONNECTIONS: &str = "the shop accepts 512 connections from one client address \
     and resets the others: start it with NUBO_HTTP_MAX_CONNECTIONS_PER_CLIENT above the \
     shoppers (or --max-in-flight) of the run";

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let base = args::on_this_machine(&args.target, args.allow_remote)?;
    if args.mix != Mix::MIXED && args.scenario != scenario::Scenario::Mixed {
        bail!("--mix weighs the visits of --scenario mixed only");
    }
    let mix = Mix::of(args.scenario, &args.mix).map_err(|e| anyhow!("--mix: {e}"))?;
    let load = args.load();
    let at_once = match &load {
        Load::Closed { shoppers, .. } => *shoppers as usize,
        Load::Open { .. } => args.max_in_flight as usize,
    };
    if at_once > CONNECTIONS_PER_CLIENT {
        eprintln!(
            "loadgen: up to {at_once} connections at once; unless raised, {TOO_MANY_CONNECTIONS}"
        );
    }
    let http = reqwest::Client::builder()
        // Every shopper or running visit keeps its connection between requests.
        .pool_max_idle_per_host(at_once.max(64))
        .timeout(Duration::from_secs(30))
        .build()?;
    let shop = Shop::new(&base, http);
    let catalog = Catalog::read(&shop, args.products)
        .await
        .with_context(|| format!("cannot read the catalog of {base}"))?;

    // A run that checks out sets the stock first and checks it at the end.
    let mut before = BTreeMap::new();
    if mix.buys() {
        let admin = shop
            .log_in(&args.admin_email, &args.admin_password)
            .await
            .map_err(rate_limit_hint)
            .context("cannot sign in as the admin (--admin-email, --admin-password)")?;
        for sku in &catalog.skus {
            shop.set_stock(&admin, sku, args.stock).await?;
            let available = shop.available(sku).await.map_err(rate_limit_hint)?;
            before.insert(sku.clone(), available);
        }
    }
    let wanted = match &load {
        _ if !mix.needs_accounts() => 0,
        Load::Closed { shoppers, .. } => *shoppers as usize,
        Load::Open { .. } => args.accounts as usize,
    };
    if wanted > 0 {
        eprintln!("loadgen: preparing {wanted} shopper accounts");
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let accounts = accounts::prepare(&shop, wanted, &run_id).await?;

    let (curve, described) = match &load {
        Load::Closed { shoppers, think } if think.is_zero() => {
            (None, format!("{shoppers} shoppers, no think time"))
        }
        Load::Closed { shoppers, think } => (
            None,
            format!("{shoppers} shoppers, {} ms think time", think.as_millis()),
        ),
        Load::Open { curve, described } => (
            Some(curve.clone()),
            format!("{described}, {:.0} visits due", curve.total()),
        ),
    };
    let scenario = match args.scenario {
        scenario::Scenario::Mixed => format!("mixed ({mix})"),
        other => other.to_string(),
    };
    eprintln!(
        "loadgen: {scenario}, {described}, for {} s against {base}",
        args.seconds
    );
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let stats = Arc::new(Stats::new(started));
    let ctx = Arc::new(Ctx {
        shop: shop.clone(),
        stats: stats.clone(),
        catalog,
        give_up: until + SETTLE,
    });
    let keeper = tokio::spawn(accounts::keep_signed_in(
        shop.clone(),
        accounts.clone(),
        stats.clone(),
    ));
    let watcher = model::watch(stats.clone(), curve.clone());
    match load {
        Load::Closed { shoppers, think } => {
            let per_shopper: Vec<_> = (0..shoppers as usize)
                .map(|n| accounts.get(n).cloned())
                .collect();
            model::closed(ctx, mix, per_shopper, think, until, args.seed).await;
        }
        Load::Open { curve, .. } => {
            let pool = (!accounts.is_empty()).then(|| Arc::new(accounts::Pool::new(accounts)));
            let cap = args.max_in_flight as usize;
            model::open(ctx, mix, pool, curve, cap, args.seed).await;
        }
    }
    keeper.abort();
    watcher.abort();
    let _ = tokio::join!(keeper, watcher);
    let elapsed = started.elapsed().as_secs_f64();
    // The last, partial second goes into the time series, not onto the screen.
    model::progress(&stats, curve.as_ref());
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let tally = Arc::try_unwrap(stats)
        .map_err(|_| anyhow!("a shopper outlived the run"))?
        .finish();

    // Every unit sold left the stock, and nothing else did.
    let mut broken = Vec::new();
    for (sku, before) in &before {
        let after = shop.available(sku).await.map_err(rate_limit_hint)?;
        let sold = tally.sold.get(sku).copied().unwrap_or(0);
        let expected = before - sold;
        if after != expected || after < 0 {
            broken.push(format!(
                "{sku}: {after} available, expected {expected} ({before} before, {sold} sold)"
            ));
        }
    }
    let unfinished = tally.unanswered + tally.unsettled;
    let load = report::Load {
        model: if curve.is_some() { "open" } else { "closed" },
        described,
        shoppers: curve.is_none().then_some(args.shoppers.unwrap_or(8)),
        max_in_flight: curve.is_some().then_some(args.max_in_flight as usize),
    };
    let report = Report::new(base, scenario, load, elapsed, tally, broken.clone());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    let limited = report
        .operations
        .iter()
        .any(|op| op.errors_by_kind.keys().any(|kind| kind.starts_with("429")));
    if limited {
        eprintln!("loadgen: {RATE_LIMITED}");
    }
    let reset = report.operations.iter().any(|op| {
        op.errors_by_kind
            .keys()
            .any(|kind| kind == "connection reset")
    });
    if reset && at_once > CONNECTIONS_PER_CLIENT {
        eprintln!("loadgen: connections were reset; {TOO_MANY_CONNECTIONS}");
    }
    if !broken.is_empty() {
        let why = if unfinished > 0 {
            format!(" ({unfinished} checkouts were still unfinished when the run gave up on them)")
        } else {
            String::new()
        };
        bail!("stock and sales disagree{why}: {}", broken.join("; "));
    }
    Ok(())
}

/// Adds what to do about a 429 to an error that reports one (the admin's login, a stock read).
fn rate_limit_hint(e: anyhow::Error) -> anyhow::Error {
    if format!("{e:#}").contains("429") {
        e.context(
            "the shop answered 429: start it with NUBO_GATEWAY_RATE_LIMIT_RPS=1000000 and \
             NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE=1000 (and \
             NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR=1000000 for many shoppers)",
        )
    } else {
        e
    }
}
