//! The embedded shop a bench run measures: this very binary's `nubo up`, on ports of its own.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The shop under test: this binary's `nubo up`, rate limit out of the way (it would answer
/// wrk's one address with 429s), logging only warnings.
pub struct Shop {
    child: tokio::process::Child,
    port: u16,
}

impl Shop {
    pub async fn start(
        port: u16,
        data: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Self, Duration)> {
        let started = Instant::now();
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("NUBO_")) {
            command.env_remove(name);
        }
        let child = command
            .args(["up", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data)
            .env("NUBO_GATEWAY_RATE_LIMIT_RPS", "1000000")
            .env("NUBO_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let mut shop = Self { child, port };
        let http = reqwest::Client::new();
        // Each service's probes: on its ops port if it has one (the gateway), else on its own.
        let probes = crate::SERVICES
            .iter()
            .map(|desc| crate::ops_port_of(desc, port).unwrap_or(crate::port_of(desc, port)));
        let deadline = Instant::now() + Duration::from_secs(60);
        for ops in probes {
            loop {
                let ready = http
                    .get(format!("http://127.0.0.1:{ops}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                if let Some(status) = shop.child.try_wait()? {
                    bail!("the shop under test exited ({status}) before it was ready");
                }
                if Instant::now() > deadline {
                    bail!("the shop under test was not ready within a minute");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok((shop, started.elapsed()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub async fn a_product(&self) -> anyhow::Result<String> {
        let page: serde_json::Value = reqwest::get(format!(
            "http://127.0.0.1:{}/api/v1/products?per_page=1",
            self.port
        ))
        .await?
        .error_for_status()?
        .json()
        .await?;
        page["items"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .context("the shop under test lists no product")
    }

    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}
