//! The servers a chaos run owns, so it may kill and restart them: a PostgreSQL cluster, a NATS
//! server with JetStream and a Redis with append-only persistence, each from the machine's own
//! binaries (Debian's packages), on private loopback ports, with their data under the run's
//! directory; and a real SMTP server for notifications (Debian's aiosmtpd).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// One server the run started.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    kind: Kind,
}

enum Kind {
    /// Started and stopped with `pg_ctl`, as the `postgres` user when the run is root.
    Postgres {
        bin: PathBuf,
        as_postgres: bool,
    },
    Nats,
    Redis,
    Smtp,
}

impl Server {
    pub async fn postgres(root: &Path, port: u16) -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let as_postgres = nix::unistd::geteuid().is_root();
        // PostgreSQL refuses to run as root; the data directory is then the postgres user's,
        // in a directory anyone may write to.
        let home = root.join("postgres");
        std::fs::create_dir_all(&home)?;
        if as_postgres {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o1777))?;
        }
        let mut server = Self {
            name: "postgresql",
            port,
            dir: home.join("data"),
            child: None,
            kind: Kind::Postgres { bin, as_postgres },
        };
        let data = server.dir.display().to_string();
        server
            .pg(&[
                "initdb",
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .await
            .context("initdb failed")?;
        server.start().await?;
        Ok(server)
    }

    pub async fn nats(root: &Path, port: u16) -> anyhow::Result<Self> {
        let mut server = Self {
            name: "nats",
            port,
            dir: root.join("nats"),
            child: None,
            kind: Kind::Nats,
        };
        std::fs::create_dir_all(&server.dir)?;
        server.start().await?;
        Ok(server)
    }

    pub async fn redis(root: &Path, port: u16) -> anyhow::Result<Self> {
        let mut server = Self {
            name: "redis",
            port,
            dir: root.join("redis"),
            child: None,
            kind: Kind::Redis,
        };
        std::fs::create_dir_all(&server.dir)?;
        server.start().await?;
        Ok(server)
    }

    pub async fn smtp(root: &Path, port: u16) -> anyhow::Result<Self> {
        let mut server = Self {
            name: "smtp",
            port,
            dir: root.join("smtp"),
            child: None,
            kind: Kind::Smtp,
        };
        std::fs::create_dir_all(&server.dir)?;
        server.start().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        match self.kind {
            Kind::Postgres { .. } => {
                format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
            }
            Kind::Nats => format!("nats://127.0.0.1:{}", self.port),
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
            Kind::Smtp => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    /// One of PostgreSQL's programs (pgbench, psql) of the same version as this server.
    pub fn pg_program(&self, name: &str) -> Option<PathBuf> {
        match &self.kind {
            Kind::Postgres { bin, .. } => Some(bin.join(name)).filter(|p| p.is_file()),
            _ => None,
        }
    }

    /// Starts it and waits until its port takes connections.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let log_path = self.dir.with_extension("log");
        let log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
        };
        let spawned = match &self.kind {
            Kind::Postgres { .. } => {
                let options = format!(
                    "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                     -c fsync=on -c shared_buffers=64MB"
                );
                let log = log_path.display().to_string();
                self.pg(&["pg_ctl", "-D", &dir, "-o", &options, "-l", &log, "-w", "start"])
                    .await?;
                None
            }
            Kind::Nats => Some(
                Command::new(find("nats-server")?)
                    .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd", &dir])
                    .stdout(Stdio::null())
                    .stderr(log()?)
                    .kill_on_drop(true)
                    .spawn()?,
            ),
            Kind::Redis => Some(
                Command::new(find("redis-server")?)
                    .args(["--bind", "127.0.0.1", "--port", &port, "--dir", &dir])
                    // Carts are data: every write goes to the append-only file, synced each
                    // second, so a restart keeps them.
                    .args(["--appendonly", "yes", "--appendfsync", "everysec"])
                    .args(["--save", "", "--protected-mode", "no"])
                    .stdout(log()?)
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()?,
            ),
            Kind::Smtp => Some(
                Command::new("/usr/bin/python3")
                    .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                    .stdout(Stdio::null())
                    .stderr(log()?)
                    .kill_on_drop(true)
                    .spawn()
                    .context("an SMTP server for notifications: /usr/bin/python3 -m aiosmtpd (apt-get install python3-aiosmtpd)")?,
            ),
        };
        self.child = spawned;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited at start ({status}); see {}",
                    self.name,
                    self.dir.with_extension("log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} does not listen on 127.0.0.1:{}", self.name, self.port)
    }

    /// Stops it: a crash with `hard` (SIGKILL, or PostgreSQL's immediate stop), else a clean stop.
    pub async fn stop(&mut self, hard: bool) -> anyhow::Result<()> {
        if let Kind::Postgres { .. } = self.kind {
            let dir = self.dir.display().to_string();
            let mode = if hard { "immediate" } else { "fast" };
            return self
                .pg(&["pg_ctl", "-D", &dir, "-m", mode, "-w", "stop"])
                .await;
        }
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let signal = if hard {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                };
                let _ = kill(Pid::from_raw(pid), signal);
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        Ok(())
    }

    /// Runs one of PostgreSQL's programs, as the postgres user if need be.
    async fn pg(&self, args: &[&str]) -> anyhow::Result<()> {
        let Kind::Postgres { bin, as_postgres } = &self.kind else {
            unreachable!("only PostgreSQL has pg programs");
        };
        let program = bin.join(args[0]);
        let mut command = if *as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {}", program.display()))?;
        if !out.status.success() {
            bail!(
                "{} {}: {}{}",
                args[0],
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// Where PostgreSQL's server programs are: on the PATH, or in Debian's versioned directory.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    if let Ok(pg_ctl) = find("pg_ctl") {
        let real = std::fs::canonicalize(&pg_ctl).unwrap_or(pg_ctl);
        if let Some(dir) = real.parent() {
            return Ok(dir.to_path_buf());
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().context(
        "PostgreSQL's server programs (pg_ctl, initdb) are not installed: apt-get install postgresql",
    )
}

/// A program on the PATH, or in the sbin directories Debian puts servers in.
fn find(program: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("{program} is not installed (Debian's package provides it)"))
}
