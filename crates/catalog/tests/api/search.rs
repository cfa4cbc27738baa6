//! Shoppers searching the catalog: what they type finds what they mean, best match first, and
//! nothing they type can break the query.

use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use serde_json::{Value, json};

use crate::helpers::{Admin, assert_problem, product, start};

both_modes!(
    a_shopper_finds_products_by_name_description_sku_and_prefix,
    a_name_match_ranks_above_a_description_match,
    hostile_queries_never_break_the_search,
);

fn item(sku: &str, name: &str, description: &str, category: &str) -> Value {
    let mut p = product(sku, 500);
    p["name"] = json!(name);
    p["description"] = json!(description);
    p["category"] = json!(category);
    p
}

fn search_url(admin: &Admin, query: &str) -> reqwest::Url {
    let url = format!("{}/api/v1/products/search", admin.base);
    reqwest::Url::parse_with_params(&url, &[("q", query)]).unwrap()
}

async fn search(admin: &Admin, query: &str) -> Value {
    let response = admin
        .http
        .get(search_url(admin, query))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "searching {query:?}");
    response.json().await.unwrap()
}

fn skus(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect()
}

async fn a_small_shop(admin: &Admin) {
    for p in [
        item("TEA-010", "Green tea", "Steamed leaves from Uji.", "tea"),
        item("COF-777", "Espresso Roast", "Dark and bold.", "coffee"),
        item(
            "COF-100",
            "Drip Coffee",
            "Brew it for green tea lovers too.",
            "coffee",
        ),
    ] {
        admin.create_ok(&p).await;
    }
}

async fn a_shopper_finds_products_by_name_description_sku_and_prefix(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    a_small_shop(&admin).await;

    let by_name = search(&admin, "espresso").await;
    assert_eq!(skus(&by_name), ["COF-777"]);
    assert_eq!(by_name["total"], 1);
    assert_eq!(by_name["page"], 1);
    assert_eq!(by_name["per_page"], 20);
    assert_eq!(by_name["items"][0]["name"], "Espresso Roast");
    assert_eq!(skus(&search(&admin, "Steamed").await), ["TEA-010"]);
    assert_eq!(skus(&search(&admin, "COF-777").await), ["COF-777"]);
    assert_eq!(skus(&search(&admin, "cof 777").await), ["COF-777"]);
    assert_eq!(skus(&search(&admin, "gree").await), ["TEA-010", "COF-100"]);
    assert_eq!(
        skus(&search(&admin, "green espresso").await),
        Vec::<&str>::new()
    );

    let in_coffee: Value = admin
        .get("/api/v1/products/search?q=green&category=coffee")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&in_coffee), ["COF-100"]);
    assert_eq!(in_coffee["total"], 1);
    let paged: Value = admin
        .get("/api/v1/products/search?q=green&per_page=1&page=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&paged), ["COF-100"]);
    assert_eq!(paged["total"], 2);

    // An edit is searchable at once: the index follows the product.
    let renamed = item("TEA-010", "Sencha", "Steamed leaves from Uji.", "tea");
    let id = search(&admin, "green").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(admin.update(&id, &renamed).await.status(), 200);
    assert_eq!(skus(&search(&admin, "green").await), ["COF-100"]);
    assert_eq!(skus(&search(&admin, "sencha").await), ["TEA-010"]);
    // The list with its category filter is unchanged by all this.
    let coffee: Value = admin
        .get("/api/v1/products?category=coffee")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(coffee["total"], 2);
    system.shutdown().await;
}

async fn a_name_match_ranks_above_a_description_match(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    // Created description-match first, and named to sort first, so neither order nor name wins.
    admin
        .create_ok(&item("COF-001", "A mug", "Good with matcha.", "coffee"))
        .await;
    admin
        .create_ok(&item("TEA-001", "Matcha", "Whisked green tea.", "tea"))
        .await;
    assert_eq!(
        skus(&search(&admin, "matcha").await),
        ["TEA-001", "COF-001"]
    );
    system.shutdown().await;
}

async fn hostile_queries_never_break_the_search(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    a_small_shop(&admin).await;
    let long = "x".repeat(500);
    for query in [
        "\"",
        "NEAR(",
        "NEAR(green tea)",
        "*",
        "' OR 1=1 --",
        "green\" OR \"",
        "name:green",
        "green & !tea | (",
        "tea:*",
        "\\",
        "   ",
        "ça fait",
        long.as_str(),
    ] {
        let response = admin
            .http
            .get(search_url(&admin, query))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status == 200 || status == 422, "{query:?} got {status}");
    }
    // Quotes are dropped, and operators are just words every result must contain.
    assert_eq!(
        skus(&search(&admin, "\"green\"").await),
        ["TEA-010", "COF-100"]
    );
    assert_eq!(search(&admin, "green\" OR \"tea").await["total"], 0);
    assert_eq!(search(&admin, "*").await["total"], 0);
    assert_eq!(search(&admin, "' OR 1=1 --").await["total"], 0);

    let missing = admin.get("/api/v1/products/search").await;
    assert_problem(missing, 422).await;
    let too_long = admin
        .get(&format!("/api/v1/products/search?q={long}"))
        .await;
    let body = assert_problem(too_long, 422).await;
    assert_eq!(body["errors"][0]["field"], "q");
    assert_problem(
        admin.get("/api/v1/products/search?q=tea&per_page=0").await,
        422,
    )
    .await;
    system.shutdown().await;
}
