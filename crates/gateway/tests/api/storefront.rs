//! The storefront as a shopper meets it: a real Chromium, driven through chromedriver, in front
//! of the whole shop. Every check reads the page, and every wait polls the page: the browser runs
//! the script and the API calls exactly as a user's would.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`;
//! `NUBO_TEST_CHROMIUM` and `NUBO_TEST_CHROMEDRIVER` point elsewhere). Without them the test
//! fails and says what to install; it never passes quietly.

use fantoccini::Locator;
use nubo_identity::domain::Role;
use nubo_identity::testing::{PASSWORD, add_account};
use nubo_platform::testing::{TestMode, TestSystem};
use serde_json::{Value, json};

use crate::browser::{Chromedriver, click, type_into, until_text};

const ADMIN: &str = "admin@storefront.test";
const SHOPPER: &str = "shopper@storefront.test";

#[tokio::test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
async fn a_shopper_buys_tea_in_the_storefront_and_a_declined_card_cancels_the_next_order() {
    let driver = Chromedriver::start();
    let system = start_shop().await;
    let gateway = system.url("gateway");
    let browser = driver.browser().await;
    browser.goto(&format!("{gateway}/")).await.unwrap();
    until_text(&browser, "#products", "Sencha").await;

    // Sign up, then log in with the new account.
    click(&browser, "header [data-view=account]").await;
    type_into(&browser, "#signup-email", SHOPPER).await;
    type_into(&browser, "#signup-password", PASSWORD).await;
    click(&browser, "#sign-up button[type=submit]").await;
    until_text(&browser, "#message", "is ready: log in").await;
    type_into(&browser, "#login-password", PASSWORD).await;
    click(&browser, "#log-in button[type=submit]").await;
    until_text(&browser, "#who", SHOPPER).await;

    // Search, and only the match is shown.
    type_into(&browser, "#q", "gyokuro").await;
    click(&browser, "#search button[type=submit]").await;
    until_text(&browser, "#shop-title", "gyokuro").await;
    let found = until_text(&browser, "#products", "Gyokuro").await;
    assert!(
        !found.contains("Sencha"),
        "the search shows only its match: {found}"
    );

    // Into the cart, two of them, and the cart's total is the API's.
    click(&browser, ".product[data-sku=TEA-100] button").await;
    until_text(&browser, "#cart-button", "Cart (1)").await;
    click(&browser, "#cart-button").await;
    until_text(&browser, "#cart-total", "Total: EUR 12.50").await;
    let quantity = browser.find(Locator::Css("#qty-TEA-100")).await.unwrap();
    quantity.clear().await.unwrap();
    quantity.send_keys("2").await.unwrap();
    click(&browser, "tr[data-sku=TEA-100] td:nth-child(3) button").await;
    until_text(&browser, "#cart-total", "Total: EUR 25.00").await;

    // Pay with the good card: confirmed, and the cart is empty.
    type_into(&browser, "#card-number", "4242 4242 4242 4242").await;
    click(&browser, "#pay").await;
    let outcome = until_text(&browser, "#outcome", "Order confirmed").await;
    assert!(outcome.contains("EUR 25.00"), "{outcome}");
    until_text(&browser, "#cart", "Your cart is empty.").await;
    until_text(&browser, "#cart-button", "Cart (0)").await;

    // My orders shows it, with its lines and the steps the checkout took.
    click(&browser, "header [data-view=orders]").await;
    let orders = until_text(&browser, "#orders", "confirmed").await;
    assert!(orders.contains("total EUR 25.00"), "{orders}");
    assert!(
        orders.contains("2 × Gyokuro (TEA-100): EUR 25.00"),
        "{orders}"
    );
    assert!(orders.contains("authorize_payment"), "{orders}");

    // Again, with an access token gone bad: the page refreshes it and the shopper never notices.
    browser
        .execute(
            "sessionStorage.setItem('nubo.access', 'expired.access.token');",
            vec![],
        )
        .await
        .unwrap();
    click(&browser, "header [data-view=shop]").await;
    click(&browser, ".product[data-sku=TEA-100] button").await;
    until_text(&browser, "#cart-button", "Cart (1)").await;
    click(&browser, "#cart-button").await;
    until_text(&browser, "#cart-total", "Total: EUR 12.50").await;
    // A mistyped card number is refused with the API's words for the field.
    type_into(&browser, "#card-number", "4242 4242 4242 4241").await;
    click(&browser, "#pay").await;
    until_text(
        &browser,
        "#message",
        "card.number: is not a valid card number",
    )
    .await;
    // The card the provider declines: the order is cancelled and says why.
    type_into(&browser, "#card-number", "4000000000000002").await;
    click(&browser, "#pay").await;
    let outcome = until_text(&browser, "#outcome", "Order cancelled").await;
    assert!(outcome.contains("declined"), "{outcome}");
    click(&browser, "header [data-view=orders]").await;
    let orders = until_text(&browser, "#orders", "cancelled").await;
    assert!(orders.contains("declined"), "{orders}");
    assert_eq!(
        browser
            .find_all(Locator::Css("#orders .order"))
            .await
            .unwrap()
            .len(),
        2,
        "two orders, one each"
    );

    // Log out: the session is gone from the page.
    click(&browser, "#log-out").await;
    until_text(&browser, "#message", "logged out").await;
    let tokens = browser
        .execute("return sessionStorage.getItem('nubo.access');", vec![])
        .await
        .unwrap();
    assert_eq!(tokens, Value::Null);

    browser.close().await.unwrap();
    system.shutdown().await;
}

/// The whole shop, embedded, with an admin's tea category and two teas in stock.
async fn start_shop() -> TestSystem {
    let services = [
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_inventory::SERVICE,
        &nubo_payments::SERVICE,
        &nubo_cart::SERVICE,
        &nubo_orders::SERVICE,
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
    let admin = super::sign_in(&system, ADMIN).await;
    let api = |path: &str| format!("{}/api/v1{path}", system.url("gateway"));
    let http = reqwest::Client::new();
    let calls = [
        (
            "POST",
            "/admin/categories".to_owned(),
            json!({ "slug": "tea", "name": "Tea", "description": "Leaves" }),
        ),
        (
            "POST",
            "/admin/products".to_owned(),
            tea("TEA-100", "Gyokuro", 1250),
        ),
        (
            "POST",
            "/admin/products".to_owned(),
            tea("TEA-200", "Sencha", 800),
        ),
        (
            "PUT",
            "/admin/inventory/TEA-100".to_owned(),
            json!({ "on_hand": 10 }),
        ),
        (
            "PUT",
            "/admin/inventory/TEA-200".to_owned(),
            json!({ "on_hand": 10 }),
        ),
    ];
    for (method, path, body) in calls {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = http
            .request(method, api(&path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            response.text().await.unwrap()
        );
    }
    // The page is served with its content type and a policy that allows no inline script.
    let page = http
        .get(api("/").replace("/api/v1/", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    let script = http
        .get(api("/").replace("/api/v1/", "/storefront.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    system
}

fn tea(sku: &str, name: &str, price_minor: i64) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "description": format!("{name}, loose leaf green tea"),
        "price": { "amount_minor": price_minor, "currency": "EUR" },
        "category": "tea",
    })
}
