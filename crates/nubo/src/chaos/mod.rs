//! `nubo chaos`: the shop distributed, on a PostgreSQL, NATS, Redis and SMTP server of its own,
//! with two orders replicas; shoppers checking out all along; faults on a seeded schedule
//! (crashes and stops of every service, restarts of every server, a failing card provider,
//! operators cancelling orders mid-checkout and after payment); then recovery, and
//! `nubo audit` over every store. It writes a report and fails if any invariant broke.

mod faults;
mod load;
pub(crate) mod servers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::audit::{self, Audit, Source};
use crate::distributed::{Fleet, Plan, Replica, Replicas};
use crate::{SERVICES, UpArgs, ports};
use faults::Fault;
use servers::Server;

#[derive(clap::Args)]
pub struct ChaosArgs {
    /// How long the shoppers shop and the faults come, in seconds.
    #[arg(long, default_value_t = 180)]
    pub seconds: u64,
    /// How many faults, spread over the run; every kind comes as often as the others.
    #[arg(long, default_value_t = 48)]
    pub faults: usize,
    /// The seed of the schedule: the same seed gives the same faults at the same times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shoppers checking out at once.
    #[arg(long, default_value_t = 8)]
    pub shoppers: usize,
    /// Replicas of a service (orders=2 unless given); repeatable.
    #[arg(long, value_name = "SERVICE=N")]
    pub replicas: Vec<Replicas>,
    /// The gateway's port; the services, their replicas and the servers take ports above it.
    #[arg(long, default_value_t = 28080)]
    pub port: u16,
    /// How long the shop may take to recover after the last fault, in seconds.
    #[arg(long, default_value_t = 240)]
    pub recovery: u64,
    /// Where the servers' data and every process's log go (default: a new directory under
    /// the system's temporary directory, removed after a green run).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the report, as Markdown, to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// What a run did and found.
#[derive(Serialize)]
pub struct Report {
    pub seed: u64,
    pub seconds: u64,
    pub shoppers: usize,
    pub replicas: BTreeMap<&'static str, usize>,
    pub faults_by_kind: BTreeMap<&'static str, usize>,
    pub faults: Vec<(f64, &'static str, String)>,
    pub checkouts: load::Tally,
    /// From the end of the faults until every replica was ready and the audit green.
    pub recovered_after_secs: Option<f64>,
    /// The longest each service had no ready replica.
    pub longest_unready_secs: BTreeMap<&'static str, f64>,
    pub audit: Audit,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let kept = args.dir.is_some();
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("nubo-chaos-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    println!(
        "nubo chaos: seed {}, {} faults over {} s, {} shoppers; data and logs in {}",
        args.seed,
        args.faults,
        args.seconds,
        args.shoppers,
        dir.display()
    );

    // The shop's ports, then the servers' above every replica's.
    let mut replicas = args.replicas.clone();
    if !replicas.iter().any(|r| r.0 == nubo_orders::SERVICE.name) {
        replicas.push(Replicas(nubo_orders::SERVICE.name, 2));
    }
    // Every service sits behind a balancer (a fault proxy) on private ports.
    let extra: usize = SERVICES.len() * 2 + replicas.iter().map(|r| r.1 * 2).sum::<usize>();
    let top = ports(args.port)
        .iter()
        .map(|(_, p)| *p)
        .max()
        .unwrap_or(args.port);
    let base = top + u16::try_from(extra).unwrap_or(64) + 2;
    let mut postgres = Server::postgres(&dir, base).await?;
    let mut nats = Server::nats(&dir, base + 1).await?;
    let mut redis = Server::redis(&dir, base + 2).await?;
    let smtp = Server::smtp(&dir, base + 3).await?;
    println!(
        "servers: PostgreSQL {}, NATS {}, Redis {} (append-only), SMTP {}",
        postgres.port, nats.port, redis.port, smtp.port
    );

    let mut shared = BTreeMap::new();
    for (name, value) in [
        ("NUBO_DATABASE_URL", postgres.url()),
        ("NUBO_NATS_URL", nats.url()),
        ("NUBO_REDIS_URL", redis.url()),
        ("NUBO_NOTIFICATIONS_SMTP_URL", smtp.url()),
        ("NUBO_LOG_FORMAT", "json".to_owned()),
        // One load generator at one address: the per-client limits are not under test.
        ("NUBO_GATEWAY_RATE_LIMIT_RPS", "100000".to_owned()),
        (
            "NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR",
            "100000".to_owned(),
        ),
        ("NUBO_INVENTORY_INITIAL_STOCK", "100000".to_owned()),
        // Checkouts answer 202 at once and shoppers follow their orders; the card provider
        // takes a moment, so operators' cancels land mid-checkout.
        ("NUBO_ORDERS_CHECKOUT_WAIT_MS", "1".to_owned()),
        (
            "NUBO_PAYMENTS_PROVIDER_LATENCY_MS",
            PROVIDER_LATENCY_MS.to_string(),
        ),
    ] {
        shared.insert(name.to_owned(), value);
    }
    let fleet = Fleet::start(Plan {
        up: UpArgs {
            distributed: true,
            data_dir: dir.join("data"),
            port: args.port,
            no_seed: false,
            replicas: replicas.clone(),
            set: Vec::new(),
        },
        replicas: replicas.clone(),
        settings: Vec::new(),
        shared,
        logs: Some(logs.clone()),
        fronted: true,
        // What this machine's environment says is not the chaos shop's business.
        isolated: true,
    })
    .await?;
    let outcome = drive(&args, &fleet, &mut postgres, &mut nats, &mut redis).await;
    fleet.stop().await;
    for server in [&mut postgres, &mut nats, &mut redis] {
        let _ = server.stop(false).await;
    }
    let mut smtp = smtp;
    let _ = smtp.stop(false).await;
    let mut report = outcome?;
    report.replicas = replicas.iter().map(|r| (r.0, r.1)).collect();

    let text = markdown(&report, &args);
    println!("\n{text}");
    if let Some(file) = &args.report {
        std::fs::write(file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let breaches = report.audit.breaches();
    if breaches > 0 || report.recovered_after_secs.is_none() {
        anyhow::bail!(
            "the shop did not come through: {breaches} broken records; data and logs kept in {}",
            dir.display()
        );
    }
    if !kept {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Waits for the shop, loads it while the faults come, then waits for it to recover and audits.
async fn drive(
    args: &ChaosArgs,
    fleet: &Fleet,
    postgres: &mut Server,
    nats: &mut Server,
    redis: &mut Server,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let shop = load::Shop::new(&format!("http://127.0.0.1:{}", args.port), http);
    let ready_by = Instant::now() + Duration::from_secs(120);
    while !all_ready(&fleet.replicas).await {
        anyhow::ensure!(
            Instant::now() < ready_by,
            "the shop did not become ready in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let skus = shop.skus(20).await?;
    let password = "chaos-shopper-password".to_owned();
    for n in 0..args.shoppers {
        // An account of an earlier run on the same --dir is as good as a new one.
        shop.sign_up(&format!("chaos-shopper-{n}@nubo.example"), &password)
            .await?;
    }
    let mut admin = shop.log_in(ADMIN.0, ADMIN.1).await?;
    println!("the shop is ready; {} shoppers start", args.shoppers);

    let start = Instant::now();
    let until = start + Duration::from_secs(args.seconds);
    let settle_by = until + Duration::from_secs(args.recovery);
    let tally = Arc::new(Mutex::new(load::Tally::default()));
    let recent: load::Recent = Arc::default();
    let mut shoppers = JoinSet::new();
    for n in 0..args.shoppers {
        shoppers.spawn(load::shopper(
            shop.clone(),
            n,
            password.clone(),
            skus.clone(),
            until,
            settle_by,
            tally.clone(),
            recent.clone(),
        ));
    }
    let watch = Watch::start(fleet.replicas.clone());

    let mut rng = faults::seeded(args.seed);
    let plan = faults::schedule(&mut rng, args.seconds, args.faults);
    let mut done = Vec::new();
    let mut background = JoinSet::new();
    for (at, fault) in plan {
        tokio::time::sleep_until(start + at).await;
        let what = match fault {
            Fault::Kill | Fault::Stop => {
                let replica = faults::pick(&mut rng, &fleet.replicas).expect("replicas");
                let pid = *replica.pid.lock().unwrap_or_else(|e| e.into_inner());
                if replica.signal(faults::signal(fault)) {
                    format!("{} (pid {})", replica.name(), pid.unwrap_or_default())
                } else {
                    format!("{} (not running: restarting)", replica.name())
                }
            }
            Fault::Postgres | Fault::Nats | Fault::Redis => {
                let server = match fault {
                    Fault::Postgres => &mut *postgres,
                    Fault::Nats => &mut *nats,
                    _ => &mut *redis,
                };
                let hard = rng.random_bool(0.5);
                let outage = Duration::from_millis(rng.random_range(200..3000));
                server.stop(hard).await?;
                tokio::time::sleep(outage).await;
                server.start().await?;
                format!(
                    "{} {} and down for {} ms",
                    if hard { "crashed" } else { "stopped" },
                    server.name,
                    outage.as_millis()
                )
            }
            Fault::Provider => {
                // The console's switch, as an operator flips it: every payments replica takes
                // it up within a second, without a restart.
                let on = json!({ "knobs": {
                    "provider_failure_rate": 0.5, "provider_latency_ms": 1500
                } });
                let mut answer = shop.switch(&admin, "payments", &on).await;
                if answer == Ok(StatusCode::UNAUTHORIZED) {
                    admin = shop.log_in(ADMIN.0, ADMIN.1).await?;
                    answer = shop.switch(&admin, "payments", &on).await;
                }
                let shop = shop.clone();
                let token = admin.clone();
                background.spawn(async move {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    // Off again, retried through whatever else the run is doing.
                    for _ in 0..60 {
                        if shop.switch(&token, "payments", &json!({})).await == Ok(StatusCode::OK) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    eprintln!("chaos: the card provider's switch could not be turned off");
                });
                format!(
                    "payments' card provider fails half its calls, 1.5 s slow, for 10 s \
                     (console switch: {})",
                    match answer {
                        Ok(status) => status.to_string(),
                        Err(e) => e,
                    }
                )
            }
            Fault::Network => {
                let services: Vec<&&str> = fleet.toxics.keys().collect();
                let service = **faults::pick(&mut rng, &services).expect("services");
                let latency = Duration::from_millis(rng.random_range(100..600));
                let toxics = fleet.toxics[service].clone();
                toxics.set(latency, 100, 100);
                background.spawn(async move {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    toxics.clear();
                });
                format!(
                    "between {service} and its callers: +{} ms, 10% of connections refused, \
                     10% of answers lost, for 10 s",
                    latency.as_millis()
                )
            }
            Fault::Cancel => {
                // The newest order in flight (reserving or authorizing), one in flight a little
                // longer (authorized, being captured) and the latest completed one.
                let chosen = {
                    let recent = recent.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now();
                    let newest = recent
                        .in_flight
                        .iter()
                        .max_by_key(|(_, at)| **at)
                        .map(|(id, _)| id.clone());
                    let capturing = recent
                        .in_flight
                        .iter()
                        .filter(|(_, at)| now - **at >= Duration::from_millis(CAPTURING_AFTER_MS))
                        .max_by_key(|(_, at)| **at)
                        .map(|(id, _)| id.clone());
                    let mut chosen = vec![newest, capturing, recent.completed.back().cloned()];
                    chosen.dedup();
                    chosen
                };
                let mut said = Vec::new();
                for order in chosen.into_iter().flatten() {
                    let mut answer = shop.cancel(&admin, &order).await;
                    // Access tokens expire (15 minutes by default): sign in again.
                    if answer == Ok(reqwest::StatusCode::UNAUTHORIZED)
                        && let Ok(token) = shop.log_in(ADMIN.0, ADMIN.1).await
                    {
                        admin = token;
                        answer = shop.cancel(&admin, &order).await;
                    }
                    said.push(match answer {
                        Ok(status) if status.is_success() => format!("{order} taken"),
                        Ok(status) => format!("{order} refused ({})", status.as_u16()),
                        Err(why) => format!("{order} unanswered ({why})"),
                    });
                }
                format!("cancel {}", said.join(", "))
            }
        };
        let secs = (Instant::now() - start).as_secs_f64();
        println!("  {secs:>7.1} s  {:<9} {what}", fault.name());
        done.push((Duration::from_secs_f64(secs), fault, what));
    }
    tokio::time::sleep_until(until).await;
    while background.join_next().await.is_some() {}
    println!("faults over; waiting for the shoppers' last orders and the shop's recovery");
    let faults_over = Instant::now();
    while shoppers.join_next().await.is_some() {}

    // Recovered: every replica ready, and the audit green (sagas, emails and outboxes retry
    // with backoff, so give them time).
    let mut audit_result;
    let recovered = loop {
        audit_result = if all_ready(&fleet.replicas).await {
            Some(audit::audit_of(&Source::Postgres(postgres.url()), 0).await)
        } else {
            None
        };
        if let Some(Ok(a)) = &audit_result
            && a.breaches() == 0
        {
            break Some((Instant::now() - faults_over).as_secs_f64());
        }
        if Instant::now() > settle_by {
            break None;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let longest_unready_secs = watch.stop().await;
    let audit = match audit_result {
        Some(result) => result?,
        None => audit::audit_of(&Source::Postgres(postgres.url()), 0).await?,
    };
    let checkouts = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Report {
        seed: args.seed,
        seconds: args.seconds,
        shoppers: args.shoppers,
        replicas: BTreeMap::new(),
        faults_by_kind: faults::by_kind(&done),
        faults: done
            .iter()
            .map(|(at, f, what)| (at.as_secs_f64(), f.name(), what.clone()))
            .collect(),
        checkouts,
        recovered_after_secs: recovered,
        longest_unready_secs,
        audit,
    })
}

/// The demo admin `nubo up` seeds, who cancels orders.
const ADMIN: (&str, &str) = ("admin@nubo.example", "nubo-admin-demo");
/// The card provider's latency outside its faults: an authorization, then a capture, each
/// take this long.
const PROVIDER_LATENCY_MS: u64 = 200;
/// How old an order is when its authorization is done and its capture under way.
const CAPTURING_AFTER_MS: u64 = PROVIDER_LATENCY_MS + 50;

async fn ready(client: &reqwest::Client, replica: &Replica) -> bool {
    client
        .get(format!("{}/readyz", replica.probes()))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

pub(crate) async fn all_ready(replicas: &[Replica]) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    for replica in replicas {
        if !ready(&client, replica).await {
            return false;
        }
    }
    true
}

/// Samples every replica's readiness twice a second and keeps, per service, the longest time
/// none of its replicas was ready.
struct Watch {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<BTreeMap<&'static str, f64>>,
}

impl Watch {
    fn start(replicas: Vec<Replica>) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .expect("an HTTP client");
            let mut since: BTreeMap<&'static str, Option<Instant>> = BTreeMap::new();
            let mut longest: BTreeMap<&'static str, f64> =
                SERVICES.iter().map(|d| (d.name, 0.0)).collect();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {}
                }
                for desc in SERVICES {
                    let mut up = false;
                    for replica in replicas.iter().filter(|r| r.service == desc.name) {
                        if ready(&client, replica).await {
                            up = true;
                            break;
                        }
                    }
                    let now = Instant::now();
                    let entry = since.entry(desc.name).or_default();
                    match (up, *entry) {
                        (true, _) => *entry = None,
                        (false, None) => *entry = Some(now),
                        (false, Some(from)) => {
                            let secs = (now - from).as_secs_f64();
                            let l = longest.entry(desc.name).or_default();
                            *l = l.max(secs);
                        }
                    }
                }
            }
            longest
        });
        Self { stop, task }
    }

    async fn stop(self) -> BTreeMap<&'static str, f64> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// The report as Markdown: what ran, what was done to it, what the shoppers saw, and the audit.
fn markdown(r: &Report, args: &ChaosArgs) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "## nubo chaos: seed {}\n", r.seed);
    let replicas: Vec<String> = r.replicas.iter().map(|(s, n)| format!("{s}={n}")).collect();
    let _ = writeln!(
        out,
        "{} s of load by {} shoppers against the distributed shop ({}), on its own PostgreSQL, \
         NATS, Redis (append-only) and SMTP server. Reproduce with \
         `nubo chaos --seed {} --seconds {} --faults {} --shoppers {}`.\n",
        r.seconds,
        r.shoppers,
        if replicas.is_empty() {
            "one replica each".to_owned()
        } else {
            format!("replicas: {}", replicas.join(", "))
        },
        r.seed,
        r.seconds,
        args.faults,
        r.shoppers
    );
    let total: usize = r.faults_by_kind.values().sum();
    let kinds: Vec<String> = r
        .faults_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(out, "**Faults:** {total} ({})\n", kinds.join(", "));
    let c = &r.checkouts;
    let _ = writeln!(out, "| checkouts | count |\n|---|---|");
    for (name, n) in [
        ("attempted", c.attempted),
        ("acknowledged (an order id came back)", c.acknowledged),
        (
            "asked again with the same key after a lost answer",
            c.asked_again,
        ),
        ("completed", c.completed),
        ("cancelled", c.cancelled),
        ("no answer by the end", c.unanswered),
        ("not settled by the end", c.unsettled),
    ] {
        let _ = writeln!(out, "| {name} | {n} |");
    }
    let _ = writeln!(
        out,
        "| cancelled after capture, refunded | {} |\n| cancelled after authorization, hold voided | {} |\n",
        r.audit.refunded, r.audit.voided
    );
    if !c.errors.is_empty() {
        let errors: Vec<String> = c.errors.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let _ = writeln!(
            out,
            "Calls that failed and were retried: {}.\n",
            errors.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "**Recovered** {} after the last fault.\n",
        match r.recovered_after_secs {
            Some(s) => format!("{s:.1} s"),
            None => "NOT within the recovery window".to_owned(),
        }
    );
    let unready: Vec<String> = r
        .longest_unready_secs
        .iter()
        .map(|(s, secs)| format!("{s} {secs:.1} s"))
        .collect();
    let _ = writeln!(
        out,
        "**Longest a service had no ready replica:** {}.\n",
        unready.join(", ")
    );
    let _ = writeln!(out, "**Audit** (`nubo audit --grace 0`):\n\n```");
    let _ = write!(out, "{}", audit::table(&r.audit));
    let _ = writeln!(out, "```");
    out
}
