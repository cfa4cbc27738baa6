//! The storefront as a shopper meets it: a real Chromium, driven through chromedriver, in front
//! of the whole shop. Every check reads the page, and every wait polls the page: the browser runs
//! the script and the API calls exactly as a user's would. Every page is saved as a screenshot (in
//! `target/tmp/shop-screenshots/`), on a laptop (1366×900) and a phone (390×844), and checked
//! with axe-core for serious or critical violations; page weight and time to first render are
//! printed.
//!
//! Needs Debian's `chromium` and `chromium-driver` and axe-core (see `browser.rs`); without them
//! the test fails and says what to install; it never passes quietly.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use nubo_identity::domain::Role;
use nubo_identity::testing::{PASSWORD, add_account};
use nubo_platform::testing::{TestMode, TestSystem};
use serde_json::{Value, json};

use crate::browser::{Chromedriver, PATIENCE, axe_core, click, type_into, until_text};

const ADMIN: &str = "admin@storefront.test";
const SHOPPER: &str = "shopper@storefront.test";
const PHONE: &str = "+49 151 2345 6789";
const SCREENSHOTS: &str = "shop-screenshots";

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and axe-core: run by .ci/run"]
async fn a_guest_fills_a_cart_signs_up_checks_out_and_follows_the_order_live() {
    let axe = axe_core();
    let driver = Chromedriver::start();
    let system = start_shop().await;
    let shop = system.url("gateway");
    let browser = driver.browser().await;
    browser.set_window_size(1366, 900).await.unwrap();

    // Home: a hero, featured products with images, the categories.
    browser.goto(&format!("{shop}/")).await.unwrap();
    until_text(&browser, "#featured", "Gyokuro").await;
    assert!(count(&browser, ".hero").await == 1);
    report_weight(&browser, "home").await;
    look(&browser, &axe, "home").await;

    // A category, then a product's own page; as a guest, two products go into the cart.
    click(&browser, "#category-list a[href='/category/tea']").await;
    until_text(&browser, "h1", "Tea").await;
    until_text(&browser, "#pager", "Page 1 of 1 · 3 products").await;
    assert_eq!(
        attribute(&browser, "#category-list a[aria-current=page]", "href").await,
        "/category/tea"
    );
    look(&browser, &axe, "category").await;
    click(
        &browser,
        "article.product-card[data-sku=TEA-100] a.product-link",
    )
    .await;
    until_text(&browser, "h1", "Gyokuro").await;
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        "/products/TEA-100"
    );
    assert!(browser.title().await.unwrap().starts_with("Gyokuro"));
    until_text(&browser, "#product-price", "EUR 12.50").await;
    until_text(&browser, "#product-stock", "stock").await;
    until_text(&browser, "#related", "Sencha").await;
    let image = attribute(&browser, "img.product-image", "src").await;
    assert!(
        image.starts_with("/api/v1/products/TEA-100/image"),
        "{image}"
    );
    look(&browser, &axe, "product").await;
    click(&browser, "#add-to-cart").await;
    until_text(&browser, "#cart-link", "(1)").await;
    // Back goes to the category, as it would on any site.
    browser.back().await.unwrap();
    until_text(&browser, "#pager", "3 products").await;
    click(
        &browser,
        "article.product-card[data-sku=TEA-200] a.product-link",
    )
    .await;
    until_text(&browser, "h1", "Sencha").await;
    type_into(&browser, "#product-qty", "2").await;
    click(&browser, "#add-to-cart").await;
    until_text(&browser, "#cart-link", "(3)").await;

    // The guest's cart, kept over a reload; checking out asks them to sign up or in.
    click(&browser, "#cart-link").await;
    until_text(&browser, "#cart-total", "EUR 28.50").await;
    browser.refresh().await.unwrap();
    until_text(&browser, "#cart-total", "EUR 28.50").await;
    look(&browser, &axe, "cart-guest").await;
    click(&browser, "#to-checkout").await;
    until_text(&browser, "#sign-up", "Sign up").await;
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("next=")
    );
    look(&browser, &axe, "account").await;
    type_into(&browser, "#signup-email", SHOPPER).await;
    type_into(&browser, "#signup-password", PASSWORD).await;
    click(&browser, "#sign-up button[type=submit]").await;
    // Signed up is signed in, and the guest's cart came along.
    until_text(&browser, "#who", SHOPPER).await;
    until_text(&browser, "h1", "Checkout").await;
    until_text(&browser, "#cart-link", "(3)").await;

    // The checkout: contact, address, shipping with its cost, the card.
    assert_eq!(value(&browser, "#contact-email").await, SHOPPER);
    place_order(&browser, "4242 4242 4242 4242", true).await;
    until_text(&browser, "#checkout-shipping", "EUR 4.90").await;
    look(&browser, &axe, "checkout").await;
    click(&browser, "#place-order").await;
    let number = until_order_page(&browser).await;
    until_status(&browser, "confirmed").await;
    let message = until_text(&browser, "#order-message", "Ada Lovelace, Berlin").await;
    assert!(message.contains("confirmed"), "{message}");
    until_text(&browser, "#order-total", "EUR 33.40").await;
    until_text(&browser, "#order-address", "10115").await;
    look(&browser, &axe, "confirmation").await;
    until_text(&browser, "#cart-link", "(0)").await;

    // Deep links: the order and a product open after a reload.
    browser.refresh().await.unwrap();
    until_text(&browser, "#order-number", &number).await;
    browser
        .goto(&format!("{shop}/products/TEA-200"))
        .await
        .unwrap();
    until_text(&browser, "h1", "Sencha").await;

    // The confirmed order's text reached the SMS gateway, once.
    let texts = sms_received(&system, &number).await;
    assert_eq!(texts.len(), 1, "{texts:#?}");

    // A declined card: the reason in the customer's words.
    add_and_checkout(&browser, &shop, "4000 0000 0000 0002").await;
    until_order_page(&browser).await;
    until_status(&browser, "cancelled").await;
    let declined = until_text(&browser, "#order-message", "declined").await;
    for internal in ["payments", "authorize", "_", "503", "circuit"] {
        assert!(!declined.contains(internal), "{declined}");
    }
    look(&browser, &axe, "declined").await;

    // A slow card: progress is shown and the cart is locked until the bank answers.
    set_provider(
        &system,
        json!({ "knobs": { "provider_failure_rate": 1.0 } }),
    )
    .await;
    add_and_checkout(&browser, &shop, "4242 4242 4242 4242").await;
    until_order_page(&browser).await;
    until_status(&browser, "pending").await;
    until_visible(&browser, "#order-progress").await;
    until_text(&browser, "#order-message", "longer than usual").await;
    look(&browser, &axe, "slow").await;
    click(&browser, "#cart-link").await;
    until_visible(&browser, "#cart-locked").await;
    let editable = browser
        .execute(
            "return [...document.querySelectorAll('#cart-lines input.qty, #cart-lines button.remove')]
               .filter(e => !e.disabled).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        editable,
        json!(0),
        "the cart is locked while the order is pending"
    );
    look(&browser, &axe, "cart-locked").await;
    set_provider(&system, json!({})).await;
    browser.back().await.unwrap();
    until_status(&browser, "confirmed").await;

    // My orders: all three, each by its number.
    click(&browser, "#orders-link").await;
    until_text(&browser, "main", &number).await;
    assert_eq!(count(&browser, "article.order-card[data-number]").await, 3);
    look(&browser, &axe, "orders").await;

    // On a phone: no page scrolls sideways, and each passes axe-core.
    browser.set_window_size(390, 844).await.unwrap();
    let pages = [
        ("/", "#featured"),
        ("/category/tea", "#products"),
        ("/products/TEA-100", "#add-to-cart"),
        ("/search?q=sencha", "#products"),
        ("/orders", "article.order-card"),
        (&format!("/orders/{number}"), "#order-number"),
        ("/checkout", "h1"),
        ("/cart", "h1"),
        ("/no-such-page", "h1"),
    ];
    for (path, ready) in pages {
        browser.goto(&format!("{shop}{path}")).await.unwrap();
        until_visible(&browser, ready).await;
        let name = format!("phone{}", path.replace(['/', '?', '='], "-"));
        let wide = browser
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            wide.as_i64().unwrap() <= 0,
            "{path} scrolls sideways by {wide}px"
        );
        report_weight(&browser, &name).await;
        look(&browser, &axe, &name).await;
    }

    browser.close().await.unwrap();
    system.shutdown().await;
}

/// Every page path answers the shell; the assets it names are immutable at their version and
/// revalidated by `ETag` otherwise; text is compressed for a client that asks.
#[tokio::test]
async fn pages_and_assets_are_cacheable_compressed_and_strictly_confined() {
    let system = start_shop().await;
    let shop = system.url("gateway");
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{shop}{path}"));
    for path in [
        "/",
        "/category/tea",
        "/search?q=x",
        "/products/TEA-100",
        "/cart",
        "/checkout",
        "/account?next=/checkout",
        "/orders",
        "/orders/NB-7K3M9QX2",
    ] {
        let page = get(path).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let policy = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self';") && !policy.contains("unsafe"),
            "{policy}"
        );
        assert_eq!(page.headers()["cache-control"], "no-cache");
    }
    let shell = get("/").send().await.unwrap().text().await.unwrap();
    let script = shell
        .split('"')
        .find(|s| s.starts_with("/assets/shop.js?v="))
        .expect("the shell names its versioned script")
        .to_owned();
    assert!(!shell.contains("__V__"));

    let answer = get(&script)
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        answer.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(["gzip", "br"].contains(&answer.headers()["content-encoding"].to_str().unwrap()));
    // Compressed, it is another representation: its tag is weak, and still revalidates.
    let tag = answer.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = get(&script)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // An old version's URL is not promised forever.
    let old = get("/assets/shop.js?v=0000").send().await.unwrap();
    assert_eq!(old.headers()["cache-control"], "no-cache");
    assert_eq!(get("/assets/nope.js").send().await.unwrap().status(), 404);
    let escape = get("/assets/..%2Fmod.rs").send().await.unwrap().status();
    assert!([400, 404].contains(&escape.as_u16()), "{escape}");
    // A page that does not exist is the shop's "not found" page for a browser, a problem for
    // anything else; internal routes stay unreachable either way.
    let missing = get("/no-such-page")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let missing = get("/no-such-page").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let internal = get("/internal/v1/carts/0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(!internal.status().is_success(), "{}", internal.status());
    assert_ne!(
        internal.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let icon = get("/favicon.ico").send().await.unwrap();
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    // Catalog reads carry validators a CDN can use.
    let products = get("/api/v1/products").send().await.unwrap();
    assert!(
        products.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public")
    );
    let tag = products.headers()["etag"].to_str().unwrap().to_owned();
    let again = get("/api/v1/products")
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    system.shutdown().await;
}

/// Fills the checkout form; `details` fills the contact and address too (a returning
/// customer's browser may have them already).
async fn place_order(browser: &Client, card: &str, details: bool) {
    until_visible(browser, "#checkout-form").await;
    if details {
        type_into(browser, "#contact-phone", PHONE).await;
        type_into(browser, "#ship-name", "Ada Lovelace").await;
        type_into(browser, "#ship-line1", "Unter den Linden 1").await;
        type_into(browser, "#ship-city", "Berlin").await;
        type_into(browser, "#ship-postal", "10115").await;
        browser
            .find(Locator::Css("#ship-country option[value=DE]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click(browser, "input[name=shipping][value=standard]").await;
    }
    type_into(browser, "#card-number", card).await;
}

/// Adds a product from its page and checks out with `card`.
async fn add_and_checkout(browser: &Client, shop: &str, card: &str) {
    browser
        .goto(&format!("{shop}/products/TEA-300"))
        .await
        .unwrap();
    click(browser, "#add-to-cart").await;
    // (A cancelled order leaves the cart as it was: the count need not be 1.)
    until_text(browser, "#message", "Added Hojicha").await;
    pay(browser, shop, card).await;
}

/// Checks out the cart with `card`, filling in the details unless the form has them already.
pub(crate) async fn pay(browser: &Client, shop: &str, card: &str) {
    browser.goto(&format!("{shop}/checkout")).await.unwrap();
    until_visible(browser, "#checkout-form").await;
    place_order(browser, card, value(browser, "#ship-name").await.is_empty()).await;
    click(browser, "#place-order").await;
}

/// The order page's number, once the checkout has landed on it.
async fn until_order_page(browser: &Client) -> String {
    let number = until_text(browser, "#order-number", "NB-").await;
    let number = number
        .split_whitespace()
        .find(|w| w.starts_with("NB-"))
        .unwrap()
        .to_owned();
    assert_eq!(number.len(), 11, "{number}");
    let path = browser.current_url().await.unwrap().path().to_owned();
    assert_eq!(path, format!("/orders/{number}"));
    number
}

pub(crate) async fn until_status(browser: &Client, status: &str) {
    let css = format!("#order-status[data-status={status}]");
    let deadline = Instant::now() + PATIENCE * 3;
    while Instant::now() < deadline {
        if count(browser, &css).await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = attribute(browser, "#order-status", "data-status").await;
    panic!("the order never showed {status}; it shows {seen}");
}

async fn until_visible(browser: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && element.is_displayed().await.unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never became visible");
}

async fn count(browser: &Client, css: &str) -> usize {
    browser
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |all| all.len())
}

async fn attribute(browser: &Client, css: &str, name: &str) -> String {
    let element = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    element.attr(name).await.unwrap().unwrap_or_default()
}

async fn value(browser: &Client, css: &str) -> String {
    let element = browser.find(Locator::Css(css)).await.unwrap();
    element.prop("value").await.unwrap().unwrap_or_default()
}

async fn look(browser: &Client, axe: &str, name: &str) {
    crate::browser::look(browser, axe, SCREENSHOTS, name).await;
}

/// Prints what the page weighed on the wire (the document and everything it loaded) and when
/// it first rendered.
async fn report_weight(browser: &Client, name: &str) {
    let figures = browser
        .execute(
            "const nav = performance.getEntriesByType('navigation')[0];
             const all = [nav, ...performance.getEntriesByType('resource')].filter(Boolean);
             const paint = performance.getEntriesByName('first-contentful-paint')[0];
             return { bytes: all.reduce((n, e) => n + (e.transferSize || 0), 0),
                      decoded: all.reduce((n, e) => n + (e.decodedBodySize || 0), 0),
                      requests: all.length,
                      first_render_ms: paint ? Math.round(paint.startTime) : null };",
            vec![],
        )
        .await
        .unwrap();
    println!("page weight {name}: {figures}");
}

/// What the simulated SMS gateway received about the order `number`.
async fn sms_received(system: &TestSystem, number: &str) -> Vec<Value> {
    let admin = super::sign_in(system, ADMIN).await;
    let url = format!(
        "{}/api/v1/admin/notifications/sms-gateway?to=%2B4915123456789",
        system.url("gateway")
    );
    let http = reqwest::Client::new();
    let mut found = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let page: Value = http
            .get(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        found = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["body"].as_str().unwrap_or("").contains(number))
            .cloned()
            .collect();
        if !found.is_empty() {
            // Any second copy would have come by now.
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    found
}

/// Sets (or, with `{}`, clears) the payments service's switches, as an admin in the console.
async fn set_provider(system: &TestSystem, body: Value) {
    let admin = super::sign_in(system, ADMIN).await;
    let response = reqwest::Client::new()
        .put(format!(
            "{}/api/v1/admin/ops/faults/payments",
            system.url("gateway")
        ))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// The whole shop, embedded, with an admin's tea category and three teas in stock.
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
    let admin = super::sign_in(&system, ADMIN).await;
    let api = |path: &str| format!("{}/api/v1{path}", system.url("gateway"));
    let http = reqwest::Client::new();
    let mut calls = vec![(
        "POST",
        "/admin/categories".to_owned(),
        json!({ "slug": "tea", "name": "Tea", "description": "Leaves" }),
    )];
    for (sku, name, price) in [
        ("TEA-100", "Gyokuro", 1250),
        ("TEA-200", "Sencha", 800),
        ("TEA-300", "Hojicha", 900),
    ] {
        calls.push(("POST", "/admin/products".to_owned(), tea(sku, name, price)));
        calls.push((
            "PUT",
            format!("/admin/inventory/{sku}"),
            json!({ "on_hand": 20 }),
        ));
    }
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
