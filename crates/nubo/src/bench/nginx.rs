//! nginx, the proxy nubo's gateway is held against, started with a configuration of the
//! bench's own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

/// nginx as Debian ships it (`worker_processes auto`), proxying to the catalog over mutual TLS
/// with the gateway's certificate and a pool of kept-alive upstream connections; no access log,
/// as the gateway writes none per request. It does not check the catalog's certificate: the
/// certificate names a SPIFFE id, which nginx cannot match (a check made once per connection,
/// and connections are kept).
pub struct Nginx {
    prefix: PathBuf,
}

impl Nginx {
    pub async fn start(work: &Path, port: u16, catalog_port: u16) -> anyhow::Result<Self> {
        let prefix = work.join("nginx");
        std::fs::create_dir_all(prefix.join("logs"))?;
        let tls = work.join("shop").join("tls");
        let config = format!(
            "worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  upstream catalog {{ server 127.0.0.1:{catalog_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass https://catalog;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_ssl_certificate {gateway}/tls.crt;
      proxy_ssl_certificate_key {gateway}/tls.key;
      proxy_ssl_session_reuse on;
    }}
  }}
}}
",
            prefix = prefix.display(),
            gateway = tls.join("gateway").display(),
        );
        let file = prefix.join("nginx.conf");
        std::fs::write(&file, config)?;
        let out = tokio::process::Command::new("nginx")
            .arg("-c")
            .arg(&file)
            .arg("-p")
            .arg(&prefix)
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "nginx did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let nginx = Self { prefix };
        let url = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(&url).await.is_err() {
            if Instant::now() > deadline {
                bail!("nginx does not answer on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.prefix.join("nginx.pid"));
        if let Ok(pid) = pid.unwrap_or_default().trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
        }
    }
}
