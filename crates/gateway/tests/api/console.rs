//! The ops console as an operator meets it, in a real Chromium: sign in, the map with every
//! service ready, a service's charts, the logs, a fault switch flipped and restored, and a
//! customer refused; on a laptop and on a phone. Every page is saved as a screenshot (in
//! `target/tmp/ops-screenshots/`) and checked with axe-core for serious or critical violations.
//!
//! axe-core comes from the npm registry (`.ci/run` installs it and sets `NUBO_TEST_AXE` to its
//! `axe.min.js`); without it the test fails and says how to get it.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use nubo_identity::domain::Role;
use nubo_identity::testing::{PASSWORD, add_account};
use nubo_platform::testing::{TestMode, TestSystem};
use serde_json::{Value, json};

use crate::browser::{Chromedriver, PATIENCE, click, type_into, until_text};
use crate::storefront;

const ADMIN: &str = "admin@console.test";
const CUSTOMER: &str = "customer@console.test";

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core: run by .ci/run"]
async fn an_admin_watches_the_shop_breaks_payments_for_a_shopper_restores_it_and_a_customer_is_refused()
 {
    let axe = crate::browser::axe_core();
    let driver = Chromedriver::start();
    let system = start_shop().await;
    let ops = format!("{}/ops", system.url("gateway"));
    let browser = driver.browser().await;

    // Anonymous: the sign-in form.
    browser.goto(&ops).await.unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#signin #email"))
        .await
        .unwrap();
    look(&browser, &axe, "sign-in").await;
    type_into(&browser, "#email", ADMIN).await;
    type_into(&browser, "#password", PASSWORD).await;
    click(&browser, "#signin button[type=submit]").await;

    // Every service on the map, ready.
    until(
        &browser,
        "every service is ready on the map",
        |b| async move { count(&b, "#map g.node[data-status=ready]").await == 8 },
    )
    .await;
    until_text(&browser, "#services", "notifications").await;
    look(&browser, &axe, "map").await;

    // A customer's checkout elsewhere shows up as traffic on the map: gateway to orders.
    checkout_as_customer(&system).await;
    until(
        &browser,
        "the map labels gateway to orders with a rate",
        |b| async move { label_of(&b, "gateway", "orders").await.contains("/s") },
    )
    .await;

    // The checkout's trace: found in the list, opened as a waterfall across the services it
    // crossed, with its log lines.
    browser.goto(&format!("{ops}/traces")).await.unwrap();
    until_text(&browser, "#traces", "POST /api/v1/checkout").await;
    look(&browser, &axe, "traces").await;
    let opened: Value = browser
        .execute(
            "const row = [...document.querySelectorAll('#traces tr[data-trace]')]
               .find(r => r.textContent.includes('POST /api/v1/checkout'));
             return row ? row.dataset.trace : null;",
            vec![],
        )
        .await
        .unwrap();
    let trace = opened
        .as_str()
        .expect("a checkout trace in the list")
        .to_owned();
    browser
        .goto(&format!("{ops}/traces/{trace}"))
        .await
        .unwrap();
    for service in ["gateway", "orders", "inventory", "payments", "cart"] {
        until_text(&browser, "#waterfall", service).await;
    }
    until(
        &browser,
        "the trace's log lines are shown",
        |b| async move { count(&b, "#trace-logs tr").await > 1 },
    )
    .await;
    look(&browser, &axe, "trace").await;

    // One service's page, with its charts.
    browser
        .goto(&format!("{ops}/services/payments"))
        .await
        .unwrap();
    until_text(&browser, "#service-title", "payments").await;
    until(&browser, "payments' charts are drawn", |b| async move {
        count(&b, "figure.chart[data-metric]").await >= 4
    })
    .await;
    look(&browser, &axe, "service-payments").await;

    // The card provider fails everything: switched on in the payments form, audited.
    browser.goto(&format!("{ops}/faults")).await.unwrap();
    let knob = "form.faults[data-service=payments] input[name='knob:provider_failure_rate']";
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(knob))
        .await
        .unwrap();
    type_into(&browser, knob, "1").await;
    click(
        &browser,
        "form.faults[data-service=payments] button[type=submit]",
    )
    .await;
    until_text(&browser, "#audit", "provider_failure_rate 1").await;
    until_text(&browser, "#audit", ADMIN).await;
    look(&browser, &axe, "faults").await;

    // A shopper, in a browser of their own, pays: the order waits on the card.
    let shopper = driver.browser().await;
    let shop = system.url("gateway");
    shopper.goto(&format!("{shop}/account")).await.unwrap();
    type_into(&shopper, "#login-email", CUSTOMER).await;
    type_into(&shopper, "#login-password", PASSWORD).await;
    click(&shopper, "#log-in button[type=submit]").await;
    until_text(&shopper, "#who", CUSTOMER).await;
    shopper
        .goto(&format!("{shop}/products/TEA-OPS"))
        .await
        .unwrap();
    click(&shopper, "#add-to-cart").await;
    until_text(&shopper, "#cart-link", "(1)").await;
    storefront::pay(&shopper, &shop, "4242 4242 4242 4242").await;
    storefront::until_status(&shopper, "pending").await;
    until_text(&shopper, "#order-message", "longer than usual").await;

    // The board shows it waiting on authorize_payment, and the map shows orders' calls to
    // payments failing.
    browser.goto(&format!("{ops}/checkouts")).await.unwrap();
    until_text(&browser, "#board-attention", "authorize_payment").await;
    look(&browser, &axe, "checkouts").await;
    browser.goto(&ops).await.unwrap();
    until(
        &browser,
        "the map shows orders' calls to payments failing",
        |b| async move {
            let label = label_of(&b, "orders", "payments").await;
            label.contains('%') && !label.contains(" 0% ") && !label.contains("· 0%")
        },
    )
    .await;
    look(&browser, &axe, "map-failing").await;

    // Past the payment deadline the checkout gives up; restore all, and the order ends
    // cancelled, in words for the shopper.
    system.clock().advance(Duration::from_secs(61));
    browser.goto(&format!("{ops}/faults")).await.unwrap();
    click(&browser, "#restore-all").await;
    until_text(&browser, "#audit", "off").await;
    // The order page follows the order by itself.
    storefront::until_status(&shopper, "cancelled").await;
    let restored = api(&system, ADMIN, "/admin/ops/overview").await;
    let payments = restored["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "payments")
        .unwrap();
    assert_eq!(payments["faults"]["knobs"], json!({}), "{payments:#}");

    // The cancelled checkout left the cart as it was; paying again is confirmed.
    until_text(&shopper, "#cart-link", "(1)").await;
    storefront::pay(&shopper, &shop, "4242 4242 4242 4242").await;
    storefront::until_status(&shopper, "confirmed").await;
    shopper.close().await.unwrap();

    // The switch is in the logs, live.
    browser.goto(&format!("{ops}/logs")).await.unwrap();
    until_text(&browser, "#logs", "fault switches set by an operator").await;
    look(&browser, &axe, "logs").await;

    // On a phone: nothing scrolls sideways.
    browser.set_window_size(390, 844).await.unwrap();
    for view in [
        "",
        "/logs",
        "/faults",
        "/services/orders",
        "/traces",
        "/checkouts",
    ] {
        browser.goto(&format!("{ops}{view}")).await.unwrap();
        until(&browser, "the view is drawn", |b| async move {
            count(&b, "main h2").await > 0
        })
        .await;
        let wide: Value = browser
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            wide.as_i64().unwrap() <= 0,
            "{view} scrolls sideways by {wide}px"
        );
        look(&browser, &axe, &format!("phone{}", view.replace('/', "-"))).await;
    }
    browser.close().await.unwrap();

    // A customer signs in and is refused, in words.
    let customer = driver.browser().await;
    customer.goto(&ops).await.unwrap();
    customer
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#signin #email"))
        .await
        .unwrap();
    type_into(&customer, "#email", CUSTOMER).await;
    type_into(&customer, "#password", PASSWORD).await;
    click(&customer, "#signin button[type=submit]").await;
    until_text(&customer, "#denied", "for the shop's administrators").await;
    look(&customer, &axe, "denied").await;
    customer.close().await.unwrap();
    system.shutdown().await;
}

/// Saves a screenshot of the page as `name` and fails on any serious or critical axe-core
/// violation.
async fn look(browser: &Client, axe: &str, name: &str) {
    crate::browser::look(browser, axe, "ops-screenshots", name).await;
}

async fn count(browser: &Client, css: &str) -> usize {
    browser
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |all| all.len())
}

async fn label_of(browser: &Client, from: &str, to: &str) -> String {
    let script = format!(
        "const l = document.querySelector('#map text.edge-label[data-from={from}][data-to={to}]');
         return l ? l.textContent : '';"
    );
    browser
        .execute(&script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn until<F, Fut>(browser: &Client, what: &str, check: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if check(browser.clone()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let error = match browser.find(Locator::Css("#error")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!("never saw: {what} (the error banner says {error:?})");
}

/// The whole shop, embedded, with an admin, a customer and a tea in stock.
async fn start_shop() -> TestSystem {
    let services = [
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_inventory::SERVICE,
        &nubo_payments::SERVICE,
        &nubo_cart::SERVICE,
        &nubo_orders::SERVICE,
        &nubo_notifications::SERVICE,
        &nubo_gateway::SERVICE,
    ];
    let system = TestSystem::start_with(
        TestMode::Embedded,
        &services,
        |_| {},
        &[
            ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", "0"),
            (nubo_gateway::RATE_LIMIT_RPS, "100000"),
        ],
    )
    .await;
    add_account(&system, ADMIN, Role::Admin).await;
    add_account(&system, CUSTOMER, Role::Customer).await;
    let admin = super::sign_in(&system, ADMIN).await;
    let http = reqwest::Client::new();
    let gateway = system.url("gateway");
    for (method, path, body) in [
        (
            "POST",
            "/admin/categories",
            json!({ "slug": "tea", "name": "Tea", "description": "Leaves" }),
        ),
        (
            "POST",
            "/admin/products",
            json!({
                "sku": "TEA-OPS", "name": "Hojicha", "description": "Roasted green tea",
                "price": { "amount_minor": 900, "currency": "EUR" }, "category": "tea",
            }),
        ),
        ("PUT", "/admin/inventory/TEA-OPS", json!({ "on_hand": 10 })),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = http
            .request(method, format!("{gateway}/api/v1{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    system
}

async fn checkout_as_customer(system: &TestSystem) {
    let token = super::sign_in(system, CUSTOMER).await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", system.url("gateway"));
    let added = http
        .post(api("/cart/lines"))
        .bearer_auth(&token)
        .json(&json!({ "sku": "TEA-OPS", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert!(
        added.status().is_success(),
        "{}",
        added.text().await.unwrap()
    );
    let order = http
        .post(api("/checkout"))
        .bearer_auth(&token)
        .header("idempotency-key", nubo_platform::uuid::Uuid::new_v4().to_string())
        .json(&json!({ "card": { "number": "4242 4242 4242 4242", "expiry_month": 12, "expiry_year": 2035, "cvc": "123" } }))
        .send()
        .await
        .unwrap();
    assert!(
        order.status().is_success(),
        "{}",
        order.text().await.unwrap()
    );
}

async fn api(system: &TestSystem, email: &str, path: &str) -> Value {
    let token = super::sign_in(system, email).await;
    reqwest::Client::new()
        .get(format!("{}/api/v1{path}", system.url("gateway")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
