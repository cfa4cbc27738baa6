//! What the tests of the `nubo` command share: the binary with a clean environment, free
//! ports, a running shop stopped by signals.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

pub fn nubo() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nubo"));
    // Start from a clean slate: none of the developer's NUBO_ settings leak into these tests.
    for (name, _) in std::env::vars() {
        if name.starts_with("NUBO_") {
            command.env_remove(name);
        }
    }
    command.env("NUBO_LOG_FORMAT", "json");
    command
}

pub fn run_to_end(mut command: Command) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("nubo starts");
    child.wait_with_output().expect("nubo ends")
}

/// `count` consecutive ports free now, for `nubo up` (the gateway on the first, each service on
/// its offset above it). Taken below the kernel's ephemeral range: a port next to one the kernel
/// handed out is likely the local port of some outgoing connection a moment later (PostgreSQL,
/// NATS, Redis clients), and a listener cannot bind it then.
pub fn free_ports(count: u16) -> u16 {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let ephemeral_start: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32768);
    // Spread over the range below, so tests running at once rarely try the same block.
    let low = 10_000u16;
    let span = ephemeral_start.saturating_sub(low + count).max(1);
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for attempt in 0..200u64 {
        let base = low + ((seed + attempt * 104_729) % u64::from(span)) as u16;
        let free = (base..base + count).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no {count} consecutive free ports below {ephemeral_start}");
}

/// Ports `nubo up` uses: the gateway's and one per service above it, and the gateway's probes'
/// port above those.
pub fn up_ports() -> u16 {
    let services = nubo().arg("services").output().unwrap().stdout;
    let services = serde_json::from_slice::<Vec<Value>>(&services).unwrap();
    let highest = services
        .iter()
        .flat_map(|s| [s["port"].as_u64(), s["ops_port"].as_u64()])
        .flatten()
        .max()
        .unwrap();
    let gateway = services
        .iter()
        .find(|s| s["name"] == "gateway")
        .and_then(|s| s["port"].as_u64())
        .unwrap();
    free_ports((highest - gateway + 1) as u16)
}

/// A started `nubo` that is stopped (SIGTERM, then SIGKILL) if the test ends without stopping it,
/// so a failed test leaves no services behind holding ports.
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A port free now, for a server the test starts.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the probes of a gateway on `port` are (`nubo up` keeps them off its public port).
pub fn gateway_ops(port: u16) -> String {
    format!("http://127.0.0.1:{}", port + 10)
}

pub fn wait_ready(url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("nubo exited early: {status}");
        }
        if reqwest::blocking::get(format!("{url}/readyz"))
            .map(|r| r.status() == 200)
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never became ready");
}

pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("nubo did not stop within 30 s of SIGTERM");
}

pub const GOOD_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = "4000000000000002";

pub struct Shop {
    pub http: reqwest::blocking::Client,
    pub base: String,
}

impl Shop {
    /// The shop whose gateway is on `port`.
    pub fn on(port: u16) -> Self {
        Self {
            http: reqwest::blocking::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Logs in, retrying while the shop is still starting.
    pub fn log_in(&self, email: &str, password: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .http
                .post(self.api("/identity/login"))
                .json(&json!({ "email": email, "password": password }))
                .send();
            if let Ok(r) = answer
                && r.status() == 200
            {
                let body: Value = r.json().unwrap();
                return body["access_token"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "cannot log in as {email}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until inventory keeps stock for `sku`: it gives a product its stock when the
    /// catalog's event about it arrives, which may be after every service is ready.
    pub fn stocked(&self, sku: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self.http.get(self.api(&format!("/inventory/{sku}"))).send();
            if let Ok(r) = answer
                && r.status() == 200
                && r.json::<Value>().unwrap()["available"].as_i64() > Some(0)
            {
                return;
            }
            assert!(Instant::now() < deadline, "{sku} never came in stock");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Buys one unit of `sku` and waits until the order is `completed` or `cancelled`.
    pub fn buy(&self, token: &str, sku: &str, card: &str) -> Value {
        let order = self.place(token, sku, card);
        self.settled(token, order["order_id"].as_str().unwrap())
    }

    /// Puts one unit of `sku` in the cart and checks out: the order as the checkout answered.
    pub fn place(&self, token: &str, sku: &str, card: &str) -> Value {
        let added = self
            .http
            .post(self.api("/cart/lines"))
            .bearer_auth(token)
            .json(&json!({ "sku": sku, "quantity": 1 }))
            .send()
            .unwrap();
        assert!(added.status().is_success(), "{}", added.text().unwrap());
        let card = json!({ "number": card, "expiry_month": 12, "expiry_year": 2035, "cvc": "123" });
        let answer = self
            .http
            .post(self.api("/checkout"))
            .bearer_auth(token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({ "card": card }))
            .send()
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.text().unwrap());
        answer.json().unwrap()
    }

    pub fn order(&self, token: &str, id: &str) -> Value {
        self.http
            .get(self.api(&format!("/orders/{id}")))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn settled(&self, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let order = self.order(token, id);
            if order["state"] == "completed" || order["state"] == "cancelled" {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} never settled: {order}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
