//! The `nubo` command as a newcomer and an operator use it: the real binary, started as a
//! process, stopped with signals.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

mod support;
use support::*;

#[test]
fn a_bad_variable_stops_start_up_with_a_message_naming_it() {
    let mut command = nubo();
    command
        .args(["serve", "catalog"])
        .env("NUBO_MODE", "embedded")
        .env("NUBO_DATA_DIR", tempfile::tempdir().unwrap().path())
        .env("NUBO_REQUEST_TIMEOUT_MS", "soon")
        .env("NUBO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()));
    let output = run_to_end(command);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NUBO_REQUEST_TIMEOUT_MS"), "{stderr}");
    assert!(stderr.contains("\"soon\""), "{stderr}");
    assert!(
        !stderr.contains("listening"),
        "no port was opened: {stderr}"
    );
}

#[test]
fn a_bad_service_variable_stops_start_up_before_any_port_opens() {
    let port = free_port();
    let mut command = nubo();
    command
        .args(["serve", "gateway"])
        .env("NUBO_MODE", "embedded")
        .env("NUBO_DATA_DIR", tempfile::tempdir().unwrap().path())
        .env("NUBO_GATEWAY_RATE_LIMIT_RPS", "lots")
        .env("NUBO_HTTP_ADDR", format!("127.0.0.1:{port}"));
    let output = run_to_end(command);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NUBO_GATEWAY_RATE_LIMIT_RPS"), "{stderr}");
    assert!(stderr.contains("\"lots\""), "{stderr}");
    assert!(
        !stderr.contains("listening"),
        "no port was opened: {stderr}"
    );
}

#[test]
fn notifications_without_a_mail_server_in_distributed_mode_stops_before_any_port_opens() {
    let mut command = nubo();
    command
        .args(["serve", "notifications"])
        .env("NUBO_MODE", "distributed")
        // Named but never reached: the settings are refused before anything connects.
        .env("NUBO_DATABASE_URL", "postgres://127.0.0.1:9/nubo")
        .env("NUBO_NATS_URL", "nats://127.0.0.1:9")
        .env("NUBO_REDIS_URL", "redis://127.0.0.1:9")
        .env("NUBO_NOTIFICATIONS_SEND_ATTEMPTS", "0")
        .env("NUBO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()));
    let output = run_to_end(command);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Both problems at once, each named.
    assert!(
        stderr.contains("NUBO_NOTIFICATIONS_SMTP_URL: is required in distributed mode"),
        "{stderr}"
    );
    assert!(
        stderr.contains("NUBO_NOTIFICATIONS_SEND_ATTEMPTS"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening"),
        "no port was opened: {stderr}"
    );
}

#[test]
fn nubo_up_distributed_with_a_port_taken_names_it_and_starts_nothing() {
    let port = up_ports();
    // Something else already listens where catalog would.
    let _taken = TcpListener::bind(("127.0.0.1", port + 2)).unwrap();
    let mut command = nubo();
    command
        .args(["up", "--distributed", "--port", &port.to_string()])
        // Named but never reached: the ports are checked before anything starts.
        .env("NUBO_DATABASE_URL", "postgres://127.0.0.1:9/nubo")
        .env("NUBO_NATS_URL", "nats://127.0.0.1:9")
        .env("NUBO_REDIS_URL", "redis://127.0.0.1:9")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Running(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "nubo up kept running with a port taken"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("catalog: cannot listen on 127.0.0.1:{}", port + 2)),
        "{stderr}"
    );
    assert!(stderr.contains("choose another --port"), "{stderr}");
    // Nothing was started, so nothing holds the other ports.
    for other in (port..port + 8).filter(|p| *p != port + 2) {
        assert!(TcpListener::bind(("127.0.0.1", other)).is_ok(), "{other}");
    }
}

#[test]
fn a_misspelt_variable_is_refused_with_a_suggestion() {
    let mut command = nubo();
    command
        .args(["up", "--port", &free_port().to_string()])
        .env("NUBO_REQUST_TIMEOUT_MS", "100");
    let output = run_to_end(command);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NUBO_REQUST_TIMEOUT_MS"), "{stderr}");
    assert!(
        stderr.contains("did you mean NUBO_REQUEST_TIMEOUT_MS"),
        "{stderr}"
    );
}

#[test]
fn distributed_mode_without_its_servers_names_what_is_missing() {
    let mut command = nubo();
    command.args(["serve", "gateway"]);
    let output = run_to_end(command);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in ["NUBO_DATABASE_URL", "NUBO_NATS_URL", "NUBO_REDIS_URL"] {
        assert!(stderr.contains(name), "{stderr}");
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["up", "--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
    ] {
        let mut command = nubo();
        command.args(&args);
        let output = run_to_end(command);
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn nubo_up_serves_the_seeded_shop_and_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    // The gateway's port; catalog takes the one two above it.
    let port = up_ports();
    let mut child = Running(
        nubo()
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // `nubo up` announces itself once every service has started.
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let stdout = stdout.clone();
        let mut pipe = child.stdout.take().unwrap();
        move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buffer) {
                if n == 0 {
                    break;
                }
                stdout
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stdout.lock().unwrap().contains("Ctrl-C stops everything") {
        assert!(child.try_wait().unwrap().is_none(), "nubo exited early");
        assert!(Instant::now() < deadline, "nubo up never announced itself");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gateway = format!("http://127.0.0.1:{port}");
    wait_ready(&gateway_ops(port), &mut child);
    wait_ready(&format!("http://127.0.0.1:{}", port + 2), &mut child);
    let page: Value = reqwest::blocking::get(format!("{gateway}/api/v1/products?per_page=100"))
        .unwrap()
        .json()
        .unwrap();
    assert!(page["total"].as_i64().unwrap() >= 60, "{page}");
    let categories: Value = reqwest::blocking::get(format!("{gateway}/api/v1/categories"))
        .unwrap()
        .json()
        .unwrap();
    assert!(categories.as_array().unwrap().len() >= 5, "{categories}");

    let status = terminate(&mut child);
    assert!(status.success(), "{status}");
    reader.join().unwrap();
    let stdout = stdout.lock().unwrap().clone();
    assert!(
        stdout.contains(&format!("Open http://127.0.0.1:{port}/")),
        "{stdout}"
    );
    assert!(stdout.contains("customer@nubo.example"), "{stdout}");
    assert!(data.path().join("catalog.db").exists());
}

#[test]
#[ignore = "needs PostgreSQL, NATS and Redis: run by .ci/run"]
fn nubo_serve_runs_a_service_against_real_servers_and_stops_cleanly_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database_url = runtime.block_on(nubo_platform::testing::fresh_postgres_database());
    let namespace = format!("cli{}", std::process::id());
    let migrate = run_to_end({
        let mut c = nubo();
        c.args(["migrate", "catalog"])
            .env("NUBO_DATABASE_URL", &database_url);
        c
    });
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("catalog: migrated (postgres)"));

    // Its identity, issued as an operator without cert-manager would: `nubo certs`.
    let tls = tempfile::tempdir().unwrap();
    let certs = run_to_end({
        let mut c = nubo();
        c.args(["certs", "--dir"]).arg(tls.path()).arg("catalog");
        c
    });
    assert!(
        certs.status.success(),
        "{}",
        String::from_utf8_lossy(&certs.stderr)
    );
    assert!(
        String::from_utf8_lossy(&certs.stdout).contains("spiffe://nubo.local/service/catalog"),
        "{}",
        String::from_utf8_lossy(&certs.stdout)
    );
    let port = free_port();
    let mut child = Running(
        nubo()
            .args(["serve", "catalog"])
            .env("NUBO_TLS_DIR", tls.path().join("catalog"))
            .env("NUBO_DATABASE_URL", &database_url)
            .env("NUBO_NATS_URL", nubo_platform::testing::nats_url())
            .env("NUBO_REDIS_URL", nubo_platform::testing::redis_url())
            .env("NUBO_NAMESPACE", &namespace)
            .env("NUBO_SEED_DEMO_DATA", "true")
            .env("NUBO_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, &mut child);
    let page: Value = reqwest::blocking::get(format!("{url}/api/v1/products"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["total"], 60);
    let status = terminate(&mut child);
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "logs are JSON lines: {stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l["service"].is_string() && l["timestamp"].is_string()),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "stopped" && l["service"] == "catalog"),
        "{stderr}"
    );
}

/// An OTLP/HTTP collector on loopback that keeps every trace export it receives.
fn start_collector() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = received.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let keep = keep.clone();
                    async move {
                        keep.lock().unwrap().push(body.to_vec());
                        (
                            [("content-type", "application/x-protobuf")],
                            Vec::<u8>::new(),
                        )
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (port, received)
}

#[test]
fn traces_are_exported_over_otlp_when_an_endpoint_is_set() {
    let (collector, received) = start_collector();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Running(
        nubo()
            .args(["serve", "catalog"])
            .env("NUBO_MODE", "embedded")
            .env("NUBO_DATA_DIR", data.path())
            .env("NUBO_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{collector}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, &mut child);
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let response = reqwest::blocking::Client::new()
        .get(format!("{url}/api/v1/products"))
        .header("traceparent", format!("00-{trace_id}-eee19b7ec3c1b174-01"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // Spans still buffered are flushed on the way out.
    assert!(terminate(&mut child).success());
    let exports = received.lock().unwrap().concat();
    let raw_trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(!exports.is_empty(), "the collector received no traces");
    assert!(
        exports.windows(16).any(|w| w == raw_trace_id.as_slice()),
        "the caller's trace was not exported"
    );
    assert!(
        exports.windows(7).any(|w| w == b"catalog"),
        "spans name their service"
    );
}

/// The PIDs of `parent`'s children (Linux): each thread lists the children it spawned.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
#[ignore = "needs PostgreSQL, NATS and Redis: run by .ci/run"]
fn nubo_up_distributed_restarts_a_crashed_service_and_stops_everything_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database_url = runtime.block_on(nubo_platform::testing::fresh_postgres_database());
    // notifications needs an SMTP server in distributed mode.
    let mail = runtime.block_on(nubo_notifications::testing::MailServer::start());
    let port = up_ports();
    let mut parent = Running(
        nubo()
            .args(["up", "--distributed", "--port", &port.to_string()])
            .env("NUBO_DATABASE_URL", &database_url)
            .env("NUBO_NOTIFICATIONS_SMTP_URL", mail.url())
            .env("NUBO_NATS_URL", nubo_platform::testing::nats_url())
            .env("NUBO_REDIS_URL", nubo_platform::testing::redis_url())
            .env("NUBO_NAMESPACE", format!("up{}", std::process::id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let gateway = format!("http://127.0.0.1:{port}");
    let catalog = format!("http://127.0.0.1:{}", port + 2);
    wait_ready(&gateway_ops(port), &mut parent);
    wait_ready(&catalog, &mut parent);
    let page: Value = reqwest::blocking::get(format!("{gateway}/api/v1/products"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["total"], 60);

    let children = children_of(parent.id());
    let services = nubo().arg("services").output().unwrap().stdout;
    let services = serde_json::from_slice::<Vec<Value>>(&services)
        .unwrap()
        .len();
    assert_eq!(children.len(), services, "one process per service");
    let crashed = *children
        .iter()
        .find(|pid| command_line(**pid).contains("serve catalog"))
        .unwrap();
    kill(Pid::from_raw(crashed as i32), Signal::SIGKILL).unwrap();
    // It comes back, as a new process, with its data intact.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let replaced = children_of(parent.id())
            .iter()
            .any(|pid| *pid != crashed && command_line(*pid).contains("serve catalog"));
        if replaced
            && reqwest::blocking::get(format!("{catalog}/readyz"))
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        {
            break;
        }
        assert!(Instant::now() < deadline, "catalog was not restarted");
        std::thread::sleep(Duration::from_millis(200));
    }
    let page: Value = reqwest::blocking::get(format!("{gateway}/api/v1/products"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        page["total"], 60,
        "seeding an already seeded store adds nothing"
    );

    let children = children_of(parent.id());
    assert!(terminate(&mut parent).success());
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} outlived nubo"
        );
    }
}

#[test]
fn replicas_and_settings_per_service_are_checked_before_anything_starts() {
    let refused = [
        (vec!["--replicas", "nope=2"], "no service is called `nope`"),
        (
            vec!["--replicas", "orders=0"],
            "not a replica count from 1 to 8",
        ),
        (vec!["--replicas", "orders"], "is not SERVICE=N"),
        (
            vec!["--set", "payments:NUBO_CART_IDLE_TTL_SECS=5"],
            "NUBO_CART_IDLE_TTL_SECS is not a setting of payments",
        ),
        (vec!["--set", "payments=1"], "is not SERVICE:NAME=VALUE"),
    ];
    for (args, message) in refused {
        let mut command = nubo();
        command.args(["up", "--distributed"]).args(&args);
        let out = run_to_end(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // Replicas are processes of a distributed shop; the embedded one has none.
    let mut command = nubo();
    command.args(["up", "--replicas", "orders=2"]);
    let out = run_to_end(command);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--distributed"),
        "{out:?}"
    );
}

#[test]
#[ignore = "needs PostgreSQL, NATS and Redis: run by .ci/run"]
fn nubo_up_distributed_balances_replicas_and_gives_one_service_its_own_settings() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database_url = runtime.block_on(nubo_platform::testing::fresh_postgres_database());
    let mail = runtime.block_on(nubo_notifications::testing::MailServer::start());
    let port = up_ports();
    // Extra replicas take ports above the shop's; a block free now for both.
    let port = (port..port + 2000)
        .step_by(40)
        .find(|p| (*p..*p + 40).all(|q| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok()))
        .unwrap();
    let mut parent = Running(
        nubo()
            .args(["up", "--distributed", "--port", &port.to_string()])
            .args(["--replicas", "orders=2"])
            // The card provider fails every call, in payments only.
            .args(["--set", "payments:NUBO_PAYMENTS_PROVIDER_FAILURE_RATE=1"])
            .env("NUBO_DATABASE_URL", &database_url)
            .env("NUBO_NOTIFICATIONS_SMTP_URL", mail.url())
            .env("NUBO_NATS_URL", nubo_platform::testing::nats_url())
            .env("NUBO_REDIS_URL", nubo_platform::testing::redis_url())
            .env("NUBO_NAMESPACE", format!("rep{}", std::process::id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&gateway_ops(port), &mut parent);
    let orders: Vec<u32> = children_of(parent.id())
        .into_iter()
        .filter(|pid| command_line(*pid).contains("serve orders"))
        .collect();
    assert_eq!(orders.len(), 2, "two orders processes");
    // The orders port answers for both.
    wait_ready(&format!("http://127.0.0.1:{}", port + 5), &mut parent);

    let shop = Shop::on(port);
    let customer = shop.log_in("customer@nubo.example", "nubo-customer-demo");
    let page: Value = shop
        .http
        .get(shop.api("/products?per_page=1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let sku = page["items"][0]["sku"].as_str().unwrap().to_owned();
    shop.stocked(&sku);
    // payments, and only payments, finds its provider down: the saga waits on it.
    let waits_on_payments = |order: &Value| {
        let id = order["order_id"].as_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let order = shop.order(&customer, id);
            let steps = order["steps"].as_array().unwrap();
            if steps
                .iter()
                .any(|s| s["step"] == "authorize_payment" && s["outcome"] == "retrying")
            {
                return;
            }
            assert!(Instant::now() < deadline, "{order}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    waits_on_payments(&shop.place(&customer, &sku, GOOD_CARD));
    // One orders replica dies; checkouts go on through the other.
    kill(Pid::from_raw(orders[0] as i32), Signal::SIGKILL).unwrap();
    for _ in 0..3 {
        waits_on_payments(&shop.place(&customer, &sku, GOOD_CARD));
    }
    let children = children_of(parent.id());
    assert!(terminate(&mut parent).success());
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} outlived nubo"
        );
    }
}

#[test]
fn on_a_terminal_nubo_up_prints_its_banner_before_any_routine_log_line() {
    // `script` (util-linux) gives nubo a terminal, as a newcomer's shell does.
    let data = tempfile::tempdir().unwrap();
    let port = up_ports();
    let inner = format!(
        "{} up --port {port} --data-dir {}",
        env!("CARGO_BIN_EXE_nubo"),
        data.path().display()
    );
    let mut script = Command::new("script");
    // None of the developer's (or CI's) NUBO_ settings: nubo refuses those it does not know.
    for (name, _) in std::env::vars() {
        if name.starts_with("NUBO_") {
            script.env_remove(name);
        }
    }
    let mut child = Running(
        script
            .args(["-qfec", &inner, "/dev/null"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux) runs"),
    );
    let mut pipe = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let seen = seen.clone();
        move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buffer) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.lock().unwrap().contains("Ctrl-C stops everything") {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "no banner ({exited:?}): {}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let screen = seen.lock().unwrap().clone();
    let before = &screen[..screen
        .find("nubo is up in")
        .expect("the banner's first line")];
    assert!(
        !before.contains("INFO"),
        "routine lines came before the banner:\n{before}"
    );
    // The banner's columns line up, the shop's URL first.
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("http://127.0.0.1:") && l.starts_with("  "))
        .collect();
    assert!(rows[0].trim_start().starts_with("shop API"), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.trim_start().starts_with("ops console") && r.contains("/ops")),
        "the banner names the ops console: {rows:?}"
    );
    let column = rows[0].find("http://").unwrap();
    assert!(
        rows.iter().all(|r| r.find("http://") == Some(column)),
        "{rows:#?}"
    );
    let _ = terminate(&mut child);
    drop(child);
    let _ = reader.join();
}
