//! `nubo audit`: reads every service's store (the SQLite files of an embedded shop, or the
//! PostgreSQL schemas of a distributed one) and checks the invariants the checkout promises: no
//! order left half-done, stock exact, one capture per paid order and a refund for each cancelled
//! one, one email per event that asks for one, every outbox drained, no dead letter. It prints a
//! report and fails naming every record that breaks one.

mod checks;
mod facts;

use std::path::PathBuf;

use anyhow::Context as _;
use nubo_platform::chrono::{TimeDelta, Utc};
use nubo_platform::config::DATABASE_URL;
use nubo_platform::{Db, ServiceDescription};

pub use checks::Audit;
use facts::Facts;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Read the PostgreSQL named by NUBO_DATABASE_URL (each service's schema) instead of the
    /// SQLite files under --data-dir.
    #[arg(long)]
    pub distributed: bool,
    /// Where an embedded shop keeps its SQLite files.
    #[arg(long, env = "NUBO_DATA_DIR", default_value = "nubo-data")]
    pub data_dir: PathBuf,
    /// Orders that changed in the last SECS seconds are still moving and not judged, nor are
    /// events written since. The default is orders' NUBO_ORDERS_STUCK_AFTER_SECS default; after
    /// a shop has been quiet a while, 0 judges everything.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub grace: u32,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let audit = audit(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&audit)?);
    } else {
        print!("{}", report(&audit, &args));
    }
    match audit.breaches() {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} record{} break{} the shop's invariants",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" }
        ),
    }
}

/// Where the stores are.
pub enum Source {
    /// The SQLite files of an embedded shop.
    Embedded(PathBuf),
    /// The PostgreSQL of a distributed shop (a schema per service).
    Postgres(String),
}

impl AuditArgs {
    fn source(&self) -> anyhow::Result<Source> {
        if self.distributed {
            let url = std::env::var(DATABASE_URL)
                .with_context(|| format!("{DATABASE_URL} is required with --distributed"))?;
            Ok(Source::Postgres(url))
        } else {
            Ok(Source::Embedded(self.data_dir.clone()))
        }
    }
}

async fn audit(args: &AuditArgs) -> anyhow::Result<Audit> {
    audit_of(&args.source()?, args.grace).await
}

/// Reads every store and judges it; orders changed in the last `grace` seconds are not judged.
pub async fn audit_of(source: &Source, grace: u32) -> anyhow::Result<Audit> {
    let mut facts = Facts {
        now: Utc::now(),
        ..Facts::default()
    };
    for desc in crate::SERVICES.iter().filter(|d| has_store(d)) {
        let db = open(desc, source).await?;
        let read = read(desc, &db, &mut facts).await;
        db.close().await;
        read.with_context(|| format!("cannot read {}'s store", desc.name))?;
    }
    Ok(checks::audit(&facts, TimeDelta::seconds(i64::from(grace))))
}

fn has_store(desc: &ServiceDescription) -> bool {
    desc.migrations.sqlite.iter().next().is_some()
}

async fn open(desc: &ServiceDescription, source: &Source) -> anyhow::Result<Db> {
    let data_dir = match source {
        Source::Postgres(url) => return Db::connect_postgres(url, desc.name, 1),
        Source::Embedded(dir) => dir,
    };
    let file = data_dir.join(format!("{}.db", desc.name));
    if !file.exists() {
        anyhow::bail!(
            "{} has no store at {}: is --data-dir where the shop ran (nubo up --data-dir)?",
            desc.name,
            file.display()
        );
    }
    Db::open_sqlite(data_dir, desc.name, 1).await
}

async fn read(
    desc: &'static ServiceDescription,
    db: &Db,
    facts: &mut Facts,
) -> Result<(), sqlx::Error> {
    if desc.name == nubo_orders::SERVICE.name {
        facts::orders(db, facts).await?;
    } else if desc.name == nubo_inventory::SERVICE.name {
        facts::inventory(db, facts).await?;
    } else if desc.name == nubo_payments::SERVICE.name {
        facts::payments(db, facts).await?;
    } else if desc.name == nubo_notifications::SERVICE.name {
        facts::notifications(db, facts).await?;
    }
    facts::platform(desc.name, db, facts).await
}

/// How many breaches of one invariant the text report lists.
const LISTED: usize = 20;

/// The report for a terminal: what was looked at, one line per invariant, then each breach.
fn report(audit: &Audit, args: &AuditArgs) -> String {
    let source = if args.distributed {
        format!("the PostgreSQL of {DATABASE_URL}")
    } else {
        format!("the SQLite files in {}", args.data_dir.display())
    };
    format!(
        "nubo audit of {source}, at {}\n{}",
        audit.at.format("%Y-%m-%d %H:%M:%S UTC"),
        table(audit)
    )
}

/// The orders' summary, one line per invariant, then each breach.
pub fn table(audit: &Audit) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let total: usize = audit.orders_by_state.values().sum();
    let states: Vec<String> = audit
        .orders_by_state
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let _ = writeln!(
        out,
        "orders: {total} ({}); {} changed in the last {} s and are not judged\n",
        if states.is_empty() {
            "none".to_owned()
        } else {
            states.join(", ")
        },
        audit.not_judged,
        audit.grace_secs
    );
    let width = audit
        .verdicts
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "{:width$}  {:>8}  result", "invariant", "checked");
    for v in &audit.verdicts {
        let result = match v.breaches.len() {
            0 => "ok".to_owned(),
            n => format!("BROKEN by {n}"),
        };
        let _ = writeln!(out, "{:width$}  {:>8}  {result}", v.name, v.checked);
    }
    for v in audit.verdicts.iter().filter(|v| !v.breaches.is_empty()) {
        let _ = writeln!(out, "\n{}: {}", v.name, v.rule);
        for b in v.breaches.iter().take(LISTED) {
            let _ = writeln!(out, "  {}: {}", b.record, b.detail);
        }
        if v.breaches.len() > LISTED {
            let _ = writeln!(
                out,
                "  ... and {} more (--json lists every one)",
                v.breaches.len() - LISTED
            );
        }
    }
    out
}
