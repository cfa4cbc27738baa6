//! `nubo up --distributed`: every service as its own child process (`nubo serve <service>`)
//! against the PostgreSQL, NATS and Redis named in the environment. A child that exits on its own
//! is restarted with backoff; Ctrl-C or SIGTERM stops every child with SIGTERM and waits for it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nubo_platform::config::{self, Env, Mode, Settings};
use nubo_platform::tls::authority::Authority;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{SERVICES, UpArgs, ops_port_of, port_of, ports};

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    // Validate the shared settings here, so a bad variable is reported once, not by every child.
    let mut env = Env::from_process();
    let settings = Settings::read(&mut env, Mode::Distributed, args.port);
    env.finish()?;
    if settings.mode() != Mode::Distributed {
        anyhow::bail!("NUBO_MODE is embedded: `nubo up --distributed` needs distributed mode");
    }
    // Every service's port is free now, or nothing starts: a child that cannot bind its port
    // would otherwise be restarted for ever, each time with the same error.
    let ports = ports(args.port);
    let last = ports.iter().map(|(_, port)| *port).max();
    for (name, port) in &ports {
        std::net::TcpListener::bind(("127.0.0.1", *port)).with_context(|| {
            format!(
                "{name}: cannot listen on 127.0.0.1:{port}; `nubo up` uses ports {} to {}, \
                 choose another --port",
                args.port,
                last.unwrap_or(args.port)
            )
        })?;
    }
    let exe = std::env::current_exe().context("cannot find the nubo executable")?;
    // Every service's identity, issued by a CA kept under the data directory (made on first
    // use); each child is told where its own is.
    let tls_root = args.data_dir.join("tls");
    let authority = Authority::open(&tls_root)
        .with_context(|| format!("cannot open the service CA in {}", tls_root.display()))?;
    let mut shared: BTreeMap<String, String> = BTreeMap::new();
    shared.insert(config::MODE.into(), "distributed".into());
    for desc in SERVICES {
        shared.insert(
            config::url_variable(desc.name),
            format!("https://127.0.0.1:{}", port_of(desc, args.port)),
        );
    }
    if std::env::var_os(config::SEED_DEMO_DATA).is_none() {
        shared.insert(config::SEED_DEMO_DATA.into(), (!args.no_seed).to_string());
        // Demo stock: every product the catalog seeds arrives in inventory with some units.
        if !args.no_seed && std::env::var_os("NUBO_INVENTORY_INITIAL_STOCK").is_none() {
            shared.insert("NUBO_INVENTORY_INITIAL_STOCK".into(), "25".into());
        }
    }

    let token = CancellationToken::new();
    tokio::spawn({
        let token = token.clone();
        async move {
            nubo_platform::server::shutdown_signal().await;
            token.cancel();
        }
    });
    let mut supervisors = JoinSet::new();
    for desc in SERVICES {
        let mut vars = shared.clone();
        vars.insert(
            config::HTTP_ADDR.into(),
            format!("127.0.0.1:{}", port_of(desc, args.port)),
        );
        if let Some(port) = ops_port_of(desc, args.port) {
            vars.insert(config::OPS_ADDR.into(), format!("127.0.0.1:{port}"));
        }
        let identity = authority.ensure(desc.name, &settings.trust_domain)?;
        vars.insert(config::TLS_DIR.into(), identity.display().to_string());
        supervisors.spawn(supervise(
            exe.clone(),
            desc.name,
            vars,
            token.clone(),
            settings.shutdown_timeout,
        ));
    }
    println!(
        "nubo (distributed) is starting: http://127.0.0.1:{}/  Ctrl-C stops everything.",
        args.port
    );
    while supervisors.join_next().await.is_some() {}
    Ok(())
}

/// Keeps one service running until `token` is cancelled.
async fn supervise(
    exe: std::path::PathBuf,
    name: &'static str,
    vars: BTreeMap<String, String>,
    token: CancellationToken,
    grace: Duration,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let spawned = Command::new(&exe)
            .arg("serve")
            .arg(name)
            .envs(&vars)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                eprintln!("nubo: cannot start {name}: {e}");
                return;
            }
        };
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                // Ran a good while: a fresh crash, not a crash loop; start the backoff again.
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(500);
                }
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                eprintln!("nubo: {name} exited ({status}); restarting in {} ms", backoff.as_millis());
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            _ = token.cancelled() => {
                stop(name, &mut child, grace).await;
                return;
            }
        }
    }
}

/// SIGTERM, then SIGKILL if it has not exited within its grace period.
async fn stop(name: &str, child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(grace + Duration::from_secs(2), child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            eprintln!("nubo: {name} did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}
