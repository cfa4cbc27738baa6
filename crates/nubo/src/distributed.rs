//! `nubo up --distributed`: every service as its own child process (`nubo serve <service>`)
//! against the PostgreSQL, NATS and Redis named in the environment. A child that exits on its own
//! is restarted with backoff; Ctrl-C or SIGTERM stops every child with SIGTERM and waits for it.
//!
//! A service may run several replicas (`--replicas orders=2`): each listens on a private port
//! and the service's own port is a TCP balancer in front of them, as a Kubernetes Service is, so
//! callers never know. Each service may have settings of its own (`--set payments:NAME=VALUE`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nubo_platform::config::{self, Env, Mode, Settings};
use nubo_platform::tls::authority::Authority;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::balancer::{Toxics, balance};
use crate::{SERVICES, UpArgs, ops_port_of, port_of, ports};

/// The most replicas one service may have.
const MAX_REPLICAS: usize = 8;

/// `SERVICE=N`: how many replicas of a service to run.
#[derive(Clone, Debug)]
pub struct Replicas(pub &'static str, pub usize);

impl std::str::FromStr for Replicas {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, n) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not SERVICE=N (e.g. orders=2)"))?;
        let desc = known_service(name)?;
        let n: usize = n
            .parse()
            .ok()
            .filter(|n| (1..=MAX_REPLICAS).contains(n))
            .ok_or_else(|| format!("`{n}` is not a replica count from 1 to {MAX_REPLICAS}"))?;
        Ok(Self(desc.name, n))
    }
}

/// `SERVICE:NAME=VALUE`: a setting for one service only.
#[derive(Clone, Debug)]
pub struct ServiceSetting(pub &'static str, pub String, pub String);

impl std::str::FromStr for ServiceSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, assignment) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not SERVICE:NAME=VALUE (e.g. payments:NUBO_PAYMENTS_PROVIDER_FAILURE_RATE=0.2)")
        })?;
        let desc = known_service(name)?;
        let (variable, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("`{assignment}` is not NAME=VALUE"))?;
        let own = desc.env.iter().any(|v| v.0 == variable);
        let platform = config::PLATFORM_VARIABLES.iter().any(|v| v.0 == variable);
        if !own && !platform {
            return Err(format!(
                "{variable} is not a setting of {} (`nubo services` lists each service's)",
                desc.name
            ));
        }
        Ok(Self(desc.name, variable.to_owned(), value.to_owned()))
    }
}

fn known_service(name: &str) -> Result<&'static nubo_platform::ServiceDescription, String> {
    SERVICES
        .iter()
        .copied()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = SERVICES.iter().map(|d| d.name).collect();
            format!(
                "no service is called `{name}`; there are {}",
                names.join(", ")
            )
        })
}

/// One running process of a service.
#[allow(
    dead_code,
    reason = "nubo chaos, next, signals replicas and reads their probes"
)]
#[derive(Clone, Debug)]
pub struct Replica {
    pub service: &'static str,
    pub index: usize,
    /// Its own port: probes and metrics answer here, whatever the balancer does.
    pub port: u16,
    pub ops_port: Option<u16>,
    /// The process id while it runs.
    pub pid: Arc<Mutex<Option<u32>>>,
}

#[allow(
    dead_code,
    reason = "nubo chaos, next, signals replicas and reads their probes"
)]
impl Replica {
    /// Where its probes are (plain HTTP).
    pub fn probes(&self) -> String {
        format!("http://127.0.0.1:{}", self.ops_port.unwrap_or(self.port))
    }

    pub fn name(&self) -> String {
        format!("{}-{}", self.service, self.index)
    }

    /// Sends `signal` to its process, if it runs; whether it did.
    pub fn signal(&self, signal: Signal) -> bool {
        let pid = *self.pid.lock().unwrap_or_else(|e| e.into_inner());
        pid.and_then(|p| i32::try_from(p).ok())
            .is_some_and(|p| kill(Pid::from_raw(p), signal).is_ok())
    }
}

/// A running distributed shop: its replicas and their balancers' faults.
pub struct Fleet {
    pub replicas: Vec<Replica>,
    /// The faults each balanced service's balancer can inject between it and its callers.
    pub toxics: BTreeMap<&'static str, Arc<Toxics>>,
    token: CancellationToken,
    tasks: JoinSet<()>,
}

/// What a distributed shop is started with.
pub struct Plan {
    pub up: UpArgs,
    pub replicas: Vec<Replicas>,
    pub settings: Vec<ServiceSetting>,
    /// Variables every child gets (on top of this process's environment).
    pub shared: BTreeMap<String, String>,
    /// Where each replica's output goes (`<dir>/<service>-<n>.log`) instead of this terminal.
    pub logs: Option<PathBuf>,
    /// Every service behind a balancer, even with one replica, so that faults can be put
    /// between it and its callers.
    pub fronted: bool,
    /// Children get no NUBO_ variable of this process's environment, only the plan's.
    pub isolated: bool,
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let plan = Plan {
        replicas: args.replicas.clone(),
        settings: args.set.clone(),
        up: args,
        shared: BTreeMap::new(),
        logs: None,
        fronted: false,
        isolated: false,
    };
    let port = plan.up.port;
    let fleet = Fleet::start(plan).await?;
    println!(
        "nubo (distributed) is starting: http://127.0.0.1:{port}/  (ops console: /ops)  Ctrl-C stops everything."
    );
    nubo_platform::server::shutdown_signal().await;
    fleet.stop().await;
    Ok(())
}

impl Fleet {
    pub async fn start(plan: Plan) -> anyhow::Result<Self> {
        let args = &plan.up;
        // Validate the shared settings here, so a bad variable is reported once, not by every
        // child.
        let inherited = std::env::vars().filter(|(name, _)| !(plan.isolated && is_nubo(name)));
        let mut env = Env::from_pairs(inherited.chain(plan.shared.clone()));
        let settings = Settings::read(&mut env, Mode::Distributed, args.port);
        env.finish()?;
        if settings.mode() != Mode::Distributed {
            anyhow::bail!("NUBO_MODE is embedded: `nubo up --distributed` needs distributed mode");
        }
        let count = |name: &str| {
            plan.replicas
                .iter()
                .rev()
                .find(|r| r.0 == name)
                .map_or(1, |r| r.1)
        };
        let balanced = |name: &str| plan.fronted || count(name) > 1;
        // Every port is free now, or nothing starts: a child that cannot bind its port would
        // otherwise be restarted for ever, each time with the same error.
        let mut taken = ports(args.port);
        let mut next_private = taken.iter().map(|(_, p)| *p).max().unwrap_or(args.port) + 1;
        let mut private = || {
            let port = next_private;
            next_private += 1;
            port
        };
        let mut replicas = Vec::new();
        for desc in SERVICES {
            let n = count(desc.name);
            for index in 0..n {
                let (port, ops_port) = if !balanced(desc.name) {
                    (port_of(desc, args.port), ops_port_of(desc, args.port))
                } else {
                    let port = private();
                    taken.push((desc.name, port));
                    let ops = ops_port_of(desc, args.port).map(|_| private());
                    if let Some(ops) = ops {
                        taken.push((desc.name, ops));
                    }
                    (port, ops)
                };
                replicas.push(Replica {
                    service: desc.name,
                    index,
                    port,
                    ops_port,
                    pid: Arc::new(Mutex::new(None)),
                });
            }
        }
        let last = taken.iter().map(|(_, port)| *port).max();
        for (name, port) in &taken {
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
        // Every service's identity, issued by a CA kept under the data directory (made on
        // first use); each child is told where its own is.
        let tls_root = args.data_dir.join("tls");
        let authority = Authority::open(&tls_root)
            .with_context(|| format!("cannot open the service CA in {}", tls_root.display()))?;
        let mut shared = plan.shared.clone();
        shared.insert(config::MODE.into(), "distributed".into());
        for desc in SERVICES {
            shared.insert(
                config::url_variable(desc.name),
                format!("https://127.0.0.1:{}", port_of(desc, args.port)),
            );
        }
        let given = |name: &str| {
            (!plan.isolated && std::env::var_os(name).is_some()) || shared.contains_key(name)
        };
        if !given(config::SEED_DEMO_DATA) {
            // Demo stock: every product the catalog seeds arrives in inventory with some units.
            if !args.no_seed && !given("NUBO_INVENTORY_INITIAL_STOCK") {
                shared.insert("NUBO_INVENTORY_INITIAL_STOCK".into(), "25".into());
            }
            shared.insert(config::SEED_DEMO_DATA.into(), (!args.no_seed).to_string());
        }
        let mut vars = BTreeMap::new();
        for desc in SERVICES {
            let mut own = shared.clone();
            let identity = authority.ensure(desc.name, &settings.trust_domain)?;
            own.insert(config::TLS_DIR.into(), identity.display().to_string());
            for ServiceSetting(_, name, value) in plan.settings.iter().filter(|s| s.0 == desc.name)
            {
                own.insert(name.clone(), value.clone());
            }
            vars.insert(desc.name, own);
        }
        let vars = Arc::new(Mutex::new(vars));

        let token = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut toxics = BTreeMap::new();
        for desc in SERVICES.iter().filter(|d| balanced(d.name)) {
            let mine: Vec<&Replica> = replicas.iter().filter(|r| r.service == desc.name).collect();
            let front = port_of(desc, args.port);
            let backs = mine.iter().map(|r| r.port).collect();
            let faults = Arc::new(Toxics::default());
            tasks.spawn(balance(front, backs, faults.clone(), token.clone()));
            toxics.insert(desc.name, faults);
            // Probes and metrics pass untouched.
            if let Some(front) = ops_port_of(desc, args.port) {
                let backs = mine.iter().filter_map(|r| r.ops_port).collect();
                tasks.spawn(balance(front, backs, Arc::default(), token.clone()));
            }
        }
        for replica in &replicas {
            tasks.spawn(supervise(
                exe.clone(),
                replica.clone(),
                vars.clone(),
                plan.isolated,
                plan.logs.clone(),
                token.clone(),
                settings.shutdown_timeout,
            ));
        }
        Ok(Self {
            replicas,
            toxics,
            token,
            tasks,
        })
    }

    /// Stops every replica (SIGTERM, then SIGKILL after its grace period) and waits.
    pub async fn stop(mut self) {
        self.token.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn is_nubo(name: &str) -> bool {
    name.starts_with("NUBO_")
}

/// Keeps one replica running until `token` is cancelled, started with its service's current
/// settings each time.
async fn supervise(
    exe: std::path::PathBuf,
    replica: Replica,
    vars: Arc<Mutex<BTreeMap<&'static str, BTreeMap<String, String>>>>,
    isolated: bool,
    logs: Option<PathBuf>,
    token: CancellationToken,
    grace: Duration,
) {
    let name = replica.name();
    let output = || -> (Stdio, Stdio) {
        let file = logs.as_ref().and_then(|dir| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{name}.log")))
                .ok()
        });
        match file.and_then(|f| Some((f.try_clone().ok()?, f))) {
            Some((out, err)) => (out.into(), err.into()),
            None => (Stdio::inherit(), Stdio::inherit()),
        }
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut own = vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(replica.service)
            .cloned()
            .unwrap_or_default();
        own.insert(
            config::HTTP_ADDR.into(),
            format!("127.0.0.1:{}", replica.port),
        );
        if let Some(port) = replica.ops_port {
            own.insert(config::OPS_ADDR.into(), format!("127.0.0.1:{port}"));
        }
        let (stdout, stderr) = output();
        let mut command = Command::new(&exe);
        if isolated {
            for (name, _) in std::env::vars().filter(|(name, _)| is_nubo(name)) {
                command.env_remove(name);
            }
        }
        let spawned = command
            .arg("serve")
            .arg(replica.service)
            .envs(&own)
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                eprintln!("nubo: cannot start {name}: {e}");
                return;
            }
        };
        *replica.pid.lock().unwrap_or_else(|e| e.into_inner()) = child.id();
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                *replica.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
                // Ran a good while, or stopped cleanly when asked (a restart to take up new
                // settings): not a crash loop; start the backoff again.
                let clean = status.as_ref().is_ok_and(|s| s.success());
                if clean || started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(500);
                }
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                eprintln!("nubo: {name} exited ({status}); restarting in {} ms", backoff.as_millis());
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                if !clean {
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
            _ = token.cancelled() => {
                stop(&name, &mut child, grace).await;
                *replica.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
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
