//! The gateway as a shopper and an operator see it: one entry point in front of catalog, in
//! both modes.

mod boundary;
mod browser;
mod console;
mod edge;
mod openapi;
mod storefront;

use std::time::Duration;

use nubo_identity::domain::Role;
use nubo_identity::testing::{PASSWORD, add_account};
use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, TestSystem, assert_problem, sample};
use serde_json::{Value, json};

/// identity, catalog and the gateway in front, with an admin account; returns the admin's token,
/// got by signing in through the gateway.
async fn start(mode: TestMode, env: &[(&str, &str)]) -> (TestSystem, String) {
    let services = [
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_gateway::SERVICE,
    ];
    let system = TestSystem::start_with(
        mode,
        &services,
        // Short, so a downed catalog is found out quickly; long enough for a login's argon2 on a
        // busy machine.
        |s| s.client_timeout = Duration::from_millis(2000),
        env,
    )
    .await;
    add_account(&system, "admin@gateway.test", Role::Admin).await;
    let token = sign_in(&system, "admin@gateway.test").await;
    (system, token)
}

async fn sign_in(system: &TestSystem, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/identity/login", system.url("gateway")))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "sign in as {email} through the gateway"
    );
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

both_modes!(
    a_shopper_browses_and_an_admin_edits_through_the_gateway,
    tokens_are_checked_at_the_gateway_and_services_still_authorize,
    a_trace_id_sent_to_the_gateway_reaches_catalog_and_comes_back,
    bad_requests_through_the_gateway_get_problems,
    a_client_over_its_rate_is_told_to_slow_down,
    a_downed_catalog_gets_a_clear_answer_not_a_hang,
    the_gateway_counts_what_it_proxies,
);

async fn a_shopper_browses_and_an_admin_edits_through_the_gateway(mode: TestMode) {
    let (system, admin) = start(mode, &[]).await;
    let gateway = system.url("gateway");
    let http = reqwest::Client::new();
    let category = http
        .post(format!("{gateway}/api/v1/admin/categories"))
        .bearer_auth(&admin)
        .json(&json!({ "slug": "coffee", "name": "Coffee", "description": "Roasted beans" }))
        .send()
        .await
        .unwrap();
    assert_eq!(category.status(), 201);
    let created = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(&admin)
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
    let (system, _admin) = start(mode, &[]).await;
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
    let (system, admin) = start(mode, &[]).await;
    let gateway = system.url("gateway");
    let http = reqwest::Client::new();
    let unknown = assert_problem(
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
    assert_problem(
        http.get(format!("{gateway}/elsewhere"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let malformed = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400).await;
    let huge = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"sku\": \"{}\"}}",
            "A".repeat(system.settings().body_limit_bytes + 1)
        ))
        .send()
        .await
        .unwrap();
    assert_problem(huge, 413).await;
    system.shutdown().await;
}

async fn a_client_over_its_rate_is_told_to_slow_down(mode: TestMode) {
    let (system, _admin) = start(mode, &[(nubo_gateway::RATE_LIMIT_RPS, "3")]).await;
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
    assert_problem(limited, 429).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        200,
        "the next second has a fresh budget"
    );
    system.shutdown().await;
}

async fn a_downed_catalog_gets_a_clear_answer_not_a_hang(mode: TestMode) {
    let (mut system, _admin) = start(mode, &[]).await;
    system.stop("catalog").await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/products", system.url("gateway"));
    // A refused connection is a passing fault: 503, and when to try again.
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.headers()["retry-after"], "1");
    let first = assert_problem(first, 503).await;
    assert!(first["detail"].as_str().unwrap().contains("catalog"));
    assert_eq!(
        first["type"].as_str().unwrap().rsplit('/').next(),
        Some("upstream-unreachable")
    );
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
    assert_problem(open, 503).await;
    system.shutdown().await;
}

async fn the_gateway_counts_what_it_proxies(mode: TestMode) {
    let (system, _admin) = start(mode, &[]).await;
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
        &[
            "method=\"GET\"",
            "route=\"/api/v1/{*path}\"",
            "status=\"200\"",
        ],
    );
    assert_eq!(proxied, Some(2.0), "{text}");
    assert!(text.contains("nubo_client_requests_total{"), "{text}");
    system.shutdown().await;
}

async fn tokens_are_checked_at_the_gateway_and_services_still_authorize(mode: TestMode) {
    let (system, admin) = start(mode, &[]).await;
    let gateway = system.url("gateway");
    let http = reqwest::Client::new();
    // A shopper signs up and signs in through the gateway, and is who they say.
    let signup = http
        .post(format!("{gateway}/api/v1/identity/signup"))
        .json(&json!({ "email": "shopper@gateway.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let shopper = sign_in(&system, "shopper@gateway.test").await;
    let me: Value = http
        .get(format!("{gateway}/api/v1/identity/me"))
        .bearer_auth(&shopper)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "shopper@gateway.test");

    // A bad token stops at the gateway: catalog never sees the request.
    let before = system
        .metric(
            "catalog",
            "nubo_http_requests_total",
            &["route=\"/api/v1/products\""],
        )
        .await;
    let refused = http
        .get(format!("{gateway}/api/v1/products"))
        .bearer_auth("forged.token.here")
        .send()
        .await
        .unwrap();
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_problem(refused, 401).await;
    let after = system
        .metric(
            "catalog",
            "nubo_http_requests_total",
            &["route=\"/api/v1/products\""],
        )
        .await;
    assert_eq!(before, after, "catalog was not called");

    // A valid customer token passes the gateway, and catalog still refuses its admin route.
    let forbidden = http
        .post(format!("{gateway}/api/v1/admin/products"))
        .bearer_auth(&shopper)
        .json(&json!({ "sku": "TEA-1", "name": "x", "price": { "amount_minor": 1, "currency": "EUR" }, "category": "tea" }))
        .send()
        .await
        .unwrap();
    assert_problem(forbidden, 403).await;
    // Anonymous reads of public routes need no token.
    assert_eq!(
        http.get(format!("{gateway}/api/v1/products"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The admin's token works through the gateway for admin routes.
    let rotate = http
        .post(format!("{gateway}/api/v1/admin/identity/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(rotate.status(), 200);
    system.shutdown().await;
}
