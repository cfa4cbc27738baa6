//! The gateway as a shopper and an operator see it: one entry point in front of catalog, in
//! both modes.

use std::time::Duration;

use nubo_platform::both_modes;
use nubo_platform::config::Secret;
use nubo_platform::testing::{TestMode, TestSystem, sample};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "gateway-test-admin";

async fn start(mode: TestMode, env: &[(&str, &str)]) -> TestSystem {
    TestSystem::start_with(
        mode,
        &[&nubo_catalog::SERVICE, &nubo_gateway::SERVICE],
        |s| {
            s.admin_token = Some(Secret::new(ADMIN_TOKEN));
            s.client_timeout = Duration::from_millis(500);
        },
        env,
    )
    .await
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

both_modes!(
    a_shopper_browses_and_an_admin_edits_through_the_gateway,
    a_trace_id_sent_to_the_gateway_reaches_catalog_and_comes_back,
    bad_requests_through_the_gateway_get_problems,
    a_client_over_its_rate_is_told_to_slow_down,
    a_downed_catalog_gets_a_clear_answer_not_a_hang,
    the_gateway_counts_what_it_proxies,
);

async fn a_shopper_browses_and_an_admin_edits_through_the_gateway(mode: TestMode) {
    let system = start(mode, &[]).await;
    let gateway = system.url("gateway");
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "sku": "COF-900", "name": "Gateway coffee", "price": { "amount_minor": 990, "currency": "EUR" },
            "category": "coffee",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page: Value = http
        .get(format!("{gateway}/api/v1/products?category=coffee"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], id.as_str());
    let one = http
        .get(format!("{gateway}/api/v1/products/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert!(one.headers().contains_key("x-request-id"));
    let storefront = http.get(format!("{gateway}/")).send().await.unwrap();
    assert!(storefront.text().await.unwrap().contains("nubo shop"));
    system.shutdown().await;
}

async fn a_trace_id_sent_to_the_gateway_reaches_catalog_and_comes_back(mode: TestMode) {
    let system = start(mode, &[]).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/products", system.url("gateway")))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The header is catalog's, carried back through the gateway: catalog continued the trace.
    assert_eq!(response.headers()["x-trace-id"], trace_id);
    system.shutdown().await;
}

async fn bad_requests_through_the_gateway_get_problems(mode: TestMode) {
    let system = start(mode, &[]).await;
    let gateway = system.url("gateway");
    let http = reqwest::Client::new();
    let unknown = problem(
        http.get(format!("{gateway}/api/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/nothing-here")
    );
    problem(
        http.get(format!("{gateway}/elsewhere"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let malformed = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;
    let huge = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"sku\": \"{}\"}}",
            "A".repeat(system.settings().body_limit_bytes + 1)
        ))
        .send()
        .await
        .unwrap();
    problem(huge, 413).await;
    system.shutdown().await;
}

async fn a_client_over_its_rate_is_told_to_slow_down(mode: TestMode) {
    let system = start(mode, &[(nubo_gateway::RATE_LIMIT_RPS, "3")]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/categories", system.url("gateway"));
    // Ten at once: at most three fit in a second's budget (six if the burst straddles two).
    let burst = (0..10).map(|_| http.get(&url).send());
    let responses: Vec<reqwest::Response> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let passed = responses.iter().filter(|r| r.status() == 200).count();
    assert!(passed <= 6, "{passed} of 10 passed a limit of 3 per second");
    let limited = responses.into_iter().find(|r| r.status() == 429);
    let limited = limited.expect("some request is rate limited");
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(limited.headers()["ratelimit-limit"], "3");
    problem(limited, 429).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        200,
        "the next second has a fresh budget"
    );
    system.shutdown().await;
}

async fn a_downed_catalog_gets_a_clear_answer_not_a_hang(mode: TestMode) {
    let mut system = start(mode, &[]).await;
    system.stop("catalog").await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/products", system.url("gateway"));
    let first = problem(http.get(&url).send().await.unwrap(), 502).await;
    assert!(first["detail"].as_str().unwrap().contains("catalog"));
    // After enough failures the breaker opens and the gateway answers at once.
    let mut open = None;
    for _ in 0..10 {
        let response = http.get(&url).send().await.unwrap();
        if response.status() == 503 {
            open = Some(response);
            break;
        }
    }
    let open = open.expect("the circuit to catalog opens");
    assert!(open.headers().contains_key("retry-after"));
    problem(open, 503).await;
    system.shutdown().await;
}

async fn the_gateway_counts_what_it_proxies(mode: TestMode) {
    let system = start(mode, &[]).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        http.get(format!("{}/api/v1/products", system.url("gateway")))
            .send()
            .await
            .unwrap();
    }
    let text = system.metrics("gateway").await;
    let proxied = sample(
        &text,
        "nubo_http_requests_total",
        &["route=\"/api/v1/{*path}\"", "status=\"200\""],
    );
    assert_eq!(proxied, Some(2.0), "{text}");
    assert!(text.contains("nubo_client_requests_total{"), "{text}");
    system.shutdown().await;
}
