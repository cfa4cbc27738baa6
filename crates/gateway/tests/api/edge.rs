//! The gateway as an attacker meets it: hostile spellings of paths, silent and slow clients,
//! floods of idle connections, and the operator's endpoints looked for on the public port.

use std::time::{Duration, Instant};

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, TestSystem, assert_problem};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every service with routes the gateway could be tricked into reaching, and the gateway.
pub async fn start(
    mode: TestMode,
    tweak: impl Fn(&mut nubo_platform::config::Settings),
) -> TestSystem {
    TestSystem::start_with(
        mode,
        &[
            &nubo_identity::SERVICE,
            &nubo_catalog::SERVICE,
            &nubo_cart::SERVICE,
            &nubo_inventory::SERVICE,
            &nubo_payments::SERVICE,
            &nubo_orders::SERVICE,
            &nubo_gateway::SERVICE,
        ],
        tweak,
        &[(nubo_gateway::RATE_LIMIT_RPS, "1000000")],
    )
    .await
}

fn address(system: &TestSystem) -> String {
    system.url("gateway")["http://".len()..].to_owned()
}

/// Sends one request exactly as written (no client library would leave `..` in a path) and
/// returns its status and body.
async fn raw(address: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let body = if method == "POST" { "{}" } else { "" };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: shop.example\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Ways to write "one segment up" and "then a slash", as attackers have written them against
/// one server or another: raw and percent-encoded dots, mixed case, double encoding, overlong
/// UTF-8, backslashes, semicolons, NUL, doubled and dot-slashes.
const SPELLINGS: &[(&str, &str)] = &[
    ("..", "/"),
    ("..", "%2f"),
    ("..", "%2F"),
    ("..", "%5c"),
    ("..", "%5C"),
    ("..", "\\"),
    ("..", "%252f"),
    ("..", "//"),
    ("..", "/./"),
    ("..;", "/"),
    ("..", ";/"),
    ("..", "%00/"),
    ("..", "%c0%af"),
    ("..", "%e0%80%af"),
    ("..", "%c1%9c"),
    ("%2e%2e", "/"),
    ("%2E%2E", "/"),
    ("%2e%2E", "%2f"),
    (".%2e", "/"),
    ("%2e.", "/"),
    (".%2E", "%2F"),
    ("%2E.", "%5c"),
    ("%252e%252e", "/"),
    ("%252E%252E", "%252F"),
    ("%25%32%65%25%32%65", "/"),
    ("%c0%ae%c0%ae", "/"),
    ("%C0%AE%C0%AE", "%C0%AF"),
    ("%e0%80%ae%e0%80%ae", "/"),
    ("%f0%80%80%ae%f0%80%80%ae", "/"),
    ("%uff0e%uff0e", "/"),
    ("%u002e%u002e", "%u2215"),
    ("..%00", "/"),
    (".%00.", "/"),
    ("%2e%2e%00", "/"),
    ("..%0d%0a", "/"),
    ("..%09", "/"),
    ("...", "/../"),
    ("....", "//"),
    (".", "/../"),
    ("%2e", "/%2e%2e/"),
    ("..%2f..", "%2f"),
    ("..\\..", "\\"),
    ("..;jsessionid=1", "/"),
    ("%3b..", "/"),
    ("..%3b", "/"),
];

/// Where an attacker wants to get to, from root.
fn targets(order_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("POST", format!("internal/v1/payments/{order_id}/refund")),
        ("GET", format!("internal/v1/carts/{order_id}")),
        ("POST", "internal/v1/reservations".to_owned()),
        (
            "POST",
            format!("internal/v1/reservations/{order_id}/commit"),
        ),
        ("GET", format!("api/v1/admin/payments/{order_id}")),
    ]
}

both_modes!(
    no_spelling_of_a_path_reaches_an_internal_route_or_another_service,
    the_operators_endpoints_are_not_on_the_public_port,
    a_slow_or_silent_client_is_cut_off,
    a_flood_of_idle_connections_from_one_client_does_not_stop_others,
);

async fn no_spelling_of_a_path_reaches_an_internal_route_or_another_service(mode: TestMode) {
    let system = start(mode, |_| {}).await;
    let gateway = address(&system);
    let order_id = "0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
    let mut tried = 0;
    for (prefix, _owner) in nubo_gateway::routes::ROUTES {
        // Enough steps up to leave /api/v1/<prefix>/x for the root, and one more.
        let depth = 2 + prefix.split('/').count() + 2;
        for (up, slash) in SPELLINGS {
            let climb = format!("{up}{slash}").repeat(depth);
            for (method, target) in targets(order_id) {
                let path = format!("/api/v1/{prefix}/x/{climb}{target}");
                let (status, body) = raw(&gateway, method, &path).await;
                assert_eq!(status, 400, "{method} {path} answered {status}: {body}");
                // A refusal by the gateway itself; hyper refuses a few spellings even earlier.
                if let Ok(problem) = serde_json::from_str::<Value>(&body) {
                    assert_eq!(
                        problem["type"], "https://nubo.dev/problems/path-not-normal",
                        "{path}"
                    );
                }
                tried += 1;
            }
        }
    }
    // Mixed case, encoded first slash, smuggled prefixes: not traversals, still not routes.
    for path in [
        "/API/V1/../internal/v1/reservations",
        "/%2fapi/v1/products",
        "/api/v1/products%2f..%2f..%2f..%2finternal%2fv1%2freservations",
        "/api/v1/products/%2e%2e%2f%2e%2e%2f%2e%2e%2finternal/v1/reservations",
        "/internal/v1/reservations",
        "/Internal/v1/reservations",
        "/api/v1/internal/v1/reservations",
    ] {
        let (status, body) = raw(&gateway, "POST", path).await;
        // 401: the gateway has no internal route, and admits nobody to one anyway.
        assert!(
            matches!(status, 400 | 401 | 404),
            "{path} answered {status}: {body}"
        );
        tried += 1;
    }
    assert!(tried >= 40 * 15, "{tried} spellings tried");

    // What each service saw: nothing on an internal route, and nothing was proxied at all.
    for service in [
        "cart",
        "inventory",
        "payments",
        "catalog",
        "identity",
        "orders",
    ] {
        let text = system.metrics(service).await;
        let reached: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("nubo_http_requests_total{"))
            .collect();
        assert!(reached.is_empty(), "{service} was reached: {reached:?}");
    }
    let proxied = system
        .metric("gateway", "nubo_client_requests_total", &[])
        .await;
    assert_eq!(proxied, None, "the gateway called a service");
    system.shutdown().await;
}

async fn the_operators_endpoints_are_not_on_the_public_port(mode: TestMode) {
    let system = start(mode, |_| {}).await;
    let http = reqwest::Client::new();
    let public = system.url("gateway");
    let ops = system.ops_url("gateway");
    assert_ne!(public, ops);
    for path in ["/metrics", "/livez", "/readyz", "/startupz"] {
        let response = http.get(format!("{public}{path}")).send().await.unwrap();
        assert_problem(response, 404).await;
        let response = http.get(format!("{ops}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} on the ops port");
    }
    // The ops port serves nothing else.
    let response = http
        .get(format!("{ops}/api/v1/products"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 404).await;
    // Other services keep their probes on their own port, as before.
    let catalog = http
        .get(format!("{}/readyz", system.url("catalog")))
        .send()
        .await
        .unwrap();
    assert_eq!(catalog.status(), 200);
    system.shutdown().await;
}

/// Waits until the server closes `stream`, for at most `patience`; returns how long it took.
async fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + patience),
            stream.read(&mut buffer),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // A response (e.g. 408) before the close.
            Ok(Ok(_)) => {}
        }
    }
}

async fn a_slow_or_silent_client_is_cut_off(mode: TestMode) {
    let timeout = Duration::from_millis(800);
    let system = start(mode, |s| s.connection_limits.header_timeout = timeout).await;
    let gateway = address(&system);
    // Generous: the machine is shared; what matters is that the connection does not stay open.
    let patience = timeout * 10;

    // Silent: connects and never sends a byte.
    let mut silent = TcpStream::connect(&gateway).await.unwrap();
    assert!(
        closed_within(&mut silent, patience).await.is_some(),
        "a silent connection stayed open"
    );

    // Slow: sends a header line every 100 ms, never finishing its headers.
    let mut slow = TcpStream::connect(&gateway).await.unwrap();
    slow.write_all(b"GET /api/v1/products HTTP/1.1\r\nhost: shop\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    let mut buffer = [0u8; 1024];
    while !cut_off && started.elapsed() < patience {
        if slow.write_all(b"x-drip: 1\r\n").await.is_err() {
            cut_off = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => cut_off = true,
            _ => {}
        }
    }
    assert!(cut_off, "a client dripping its headers was never cut off");

    // Idle: one request answered, then nothing more on the kept-alive connection.
    let mut idle = TcpStream::connect(&gateway).await.unwrap();
    idle.write_all(b"GET /api/v1/categories HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 16];
    idle.read_exact(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(
        closed_within(&mut idle, patience).await.is_some(),
        "an idle kept-alive connection stayed open"
    );
    system.shutdown().await;
}

async fn a_flood_of_idle_connections_from_one_client_does_not_stop_others(mode: TestMode) {
    // Long enough that the flood is still there when the others are served.
    let system = start(mode, |s| {
        s.connection_limits.header_timeout = Duration::from_secs(30);
    })
    .await;
    let gateway: std::net::SocketAddr = address(&system).parse().unwrap();
    let mut flood = Vec::new();
    for _ in 0..1000 {
        // Connections beyond this client's share are closed by the server as they arrive; the
        // connect itself still succeeds (the kernel accepted it).
        if let Ok(stream) = TcpStream::connect(gateway).await {
            flood.push(stream);
        }
    }
    assert!(flood.len() >= 900, "{} connections opened", flood.len());

    // Another client (another loopback address) is served as if nothing happened.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for _ in 0..20 {
        let response = other
            .get(format!("{}/api/v1/categories", system.url("gateway")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // The flooding client was held to its share.
    let refused = system
        .metric(
            "gateway",
            "nubo_http_connections_refused_total",
            &["reason=\"client_full\""],
        )
        .await
        .unwrap_or(0.0);
    let share = system.settings().connection_limits.max_per_client;
    assert!(
        refused >= (1000 - share) as f64 * 0.9,
        "{refused} of the flood's connections were refused (share {share})"
    );
    drop(flood);
    system.shutdown().await;
}
