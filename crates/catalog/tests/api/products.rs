//! Browsing and editing the catalog.

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use serde_json::{Value, json};

use crate::helpers::{Admin, CUSTOMER_EMAIL, assert_problem, product, sign_in, start};

both_modes!(
    an_admin_adds_a_product_and_shoppers_find_it,
    shoppers_page_through_a_category,
    an_edit_is_seen_at_once_despite_the_cache,
    bad_product_input_is_refused_and_nothing_is_written,
    admin_routes_need_an_admin,
    a_malformed_or_unknown_id_gets_a_clear_problem,
    the_cart_reads_a_product_by_its_exact_sku,
    shoppers_read_a_product_by_its_sku,
    catalog_reads_carry_an_etag_and_a_304_saves_the_body,
);

async fn an_admin_adds_a_product_and_shoppers_find_it(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let response = admin.create(&product("TEA-100", 450)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/products/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["version"], 1);

    let fetched: Value = admin.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, created);
    let list: Value = admin.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["sku"], "TEA-100");
    assert_eq!(
        list["items"][0]["price"],
        json!({ "amount_minor": 450, "currency": "EUR" })
    );
    let categories: Value = admin.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(
        categories,
        json!([
            { "category": "coffee", "name": "Coffee", "description": "All things coffee.", "products": 0 },
            { "category": "tea", "name": "Tea", "description": "All things tea.", "products": 1 },
        ])
    );
    system.shutdown().await;
}

async fn shoppers_page_through_a_category(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    for n in 0..5 {
        admin
            .create_ok(&product(&format!("TEA-{n:03}"), 100 + n))
            .await;
    }
    let mut coffee = product("COF-001", 900);
    coffee["category"] = json!("coffee");
    admin.create_ok(&coffee).await;

    let page1: Value = admin
        .get("/api/v1/products?category=tea&per_page=2")
        .await
        .json()
        .await
        .unwrap();
    let page3: Value = admin
        .get("/api/v1/products?category=tea&per_page=2&page=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page1["total"], 5);
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert_eq!(page3["items"].as_array().unwrap().len(), 1);
    assert_eq!(page1["items"][0]["sku"], "TEA-000");
    assert_eq!(page3["items"][0]["sku"], "TEA-004");
    let coffee_page: Value = admin
        .get("/api/v1/products?category=coffee")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(coffee_page["total"], 1);
    let past_the_end: Value = admin
        .get("/api/v1/products?page=50")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(past_the_end["items"], json!([]));
    assert_eq!(past_the_end["total"], 6);
    system.shutdown().await;
}

async fn an_edit_is_seen_at_once_despite_the_cache(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-200", 500)).await;
    let id = created["id"].as_str().unwrap();
    // Read twice so both the product and the list are cached.
    for _ in 0..2 {
        admin.get(&format!("/api/v1/products/{id}")).await;
        admin.get("/api/v1/products").await;
    }
    let mut changed = product("TEA-200", 650);
    changed["name"] = json!("Renamed tea");
    let response = admin.update(id, &changed).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["version"], 2);

    let fetched: Value = admin
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["name"], "Renamed tea");
    assert_eq!(fetched["price"]["amount_minor"], 650);
    let list: Value = admin.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(list["items"][0]["name"], "Renamed tea");
    system.shutdown().await;
}

async fn bad_product_input_is_refused_and_nothing_is_written(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let mut bad = product("tea 1", -5);
    bad["category"] = json!("Tea!");
    bad["price"]["currency"] = json!("euro");
    let body = assert_problem(admin.create(&bad).await, 422).await;
    assert_eq!(problem_fields(&body), ["sku", "price", "category"]);

    let malformed = admin
        .http
        .post(format!("{}/api/v1/admin/products", admin.base))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{\"sku\": \"TEA-1\",")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400).await;

    let mut unknown_field = product("TEA-001", 100);
    unknown_field["colour"] = json!("green");
    assert_problem(admin.create(&unknown_field).await, 422).await;

    admin.create_ok(&product("TEA-001", 100)).await;
    let duplicate = assert_problem(admin.create(&product("TEA-001", 200)).await, 409).await;
    assert!(duplicate["detail"].as_str().unwrap().contains("SKU"));

    let too_many = admin.get("/api/v1/products?per_page=1000").await;
    assert_problem(too_many, 422).await;
    let not_a_number = admin.get("/api/v1/products?page=first").await;
    assert_problem(not_a_number, 400).await;

    let list: Value = admin.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(list["total"], 1, "only the one valid product exists");
    assert_eq!(list["items"][0]["price"]["amount_minor"], 100);
    system.shutdown().await;
}

async fn admin_routes_need_an_admin(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let url = format!("{}/api/v1/admin/products", admin.base);
    let post = |token: Option<String>| {
        let request = admin.http.post(&url).json(&product("TEA-300", 100));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let anonymous = post(None).send().await.unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"nubo\""
    );
    assert_problem(anonymous, 401).await;
    assert_problem(post(Some("not.a.token".into())).send().await.unwrap(), 401).await;
    // A valid token whose payload was changed to claim more than it was given.
    let customer = sign_in(&system, CUSTOMER_EMAIL).await;
    let forged = forge_roles(&customer);
    assert_problem(post(Some(forged)).send().await.unwrap(), 401).await;
    let body = assert_problem(post(Some(customer)).send().await.unwrap(), 403).await;
    assert_eq!(body["detail"], "this route is for admins");
    let list: Value = admin.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(list["total"], 0, "nothing was written");
    assert_eq!(
        admin.create(&product("TEA-300", 100)).await.status(),
        201,
        "an admin may"
    );
    system.shutdown().await;
}

/// The token with its payload's roles replaced by `admin`, signature untouched.
fn forge_roles(token: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    let payload = engine.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

async fn a_malformed_or_unknown_id_gets_a_clear_problem(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    assert_problem(admin.get("/api/v1/products/not-a-uuid").await, 400).await;
    let missing = admin
        .get("/api/v1/products/01a211dc-d363-71a9-b3b7-f1327e53f1ff")
        .await;
    let body = assert_problem(missing, 404).await;
    assert_eq!(body["detail"], "product not found");
    let update = admin
        .update("01a211dc-d363-71a9-b3b7-f1327e53f1ff", &product("TEA-1", 1))
        .await;
    assert_problem(update, 404).await;
    system.shutdown().await;
}

/// The cart prices a line by its SKU: exactly that product, not one whose SKU merely starts
/// the same or matches as search words; an unknown SKU is an empty page, a malformed one a 422
/// naming the field, as inventory's SKU routes answer.
async fn the_cart_reads_a_product_by_its_exact_sku(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    for (sku, cents) in [("TEA-010", 500), ("TEA-0101", 700), ("TEA-010-B", 900)] {
        admin.create_ok(&product(sku, cents)).await;
    }
    let cart = system.client_as("cart", "catalog");
    let by_sku = |sku: &str| format!("/internal/v1/products/by-sku/{sku}");
    let found = cart.get(&by_sku("TEA-010")).await;
    assert_eq!(found.status(), 200, "{found:?}");
    let page: Value = found.json().await.unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["sku"], "TEA-010");
    assert_eq!(page["items"][0]["price"]["amount_minor"], 500);

    let unknown: Value = cart.get(&by_sku("NOPE-404")).await.json().await.unwrap();
    assert_eq!(unknown["items"], json!([]), "{unknown}");
    for bad in ["tea-010", "T", "TEA%20010"] {
        let answer = cart.get(&by_sku(bad)).await;
        assert_eq!(answer.status(), 422, "{bad}: {answer:?}");
    }
    system.shutdown().await;
}

/// The storefront links products by SKU (`/products/TEA-001`) and reads them the same way.
async fn shoppers_read_a_product_by_its_sku(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-600", 300)).await;
    let id = created["id"].as_str().unwrap();
    let by_sku: Value = admin
        .get("/api/v1/products/TEA-600")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_sku, created);

    // Read by SKU (so cached), then the SKU changes: the old one is gone at once.
    let mut renamed = product("TEA-601", 300);
    renamed["name"] = json!("Renamed");
    assert_eq!(admin.update(id, &renamed).await.status(), 200);
    assert_problem(admin.get("/api/v1/products/TEA-600").await, 404).await;
    let new: Value = admin
        .get("/api/v1/products/TEA-601")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(new["id"], id);
    assert_eq!(new["name"], "Renamed");
    assert_eq!(new["image"], "/api/v1/products/TEA-601/image?v=2");

    let body = assert_problem(admin.get("/api/v1/products/tea-600").await, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("SKU"), "{body}");
    system.shutdown().await;
}

async fn catalog_reads_carry_an_etag_and_a_304_saves_the_body(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-700", 300)).await;
    let id = created["id"].as_str().unwrap();
    // An admin's write is never marked cacheable.
    let write = admin.update(id, &product("TEA-700", 300)).await;
    assert!(write.headers().get("etag").is_none());
    assert!(write.headers().get("cache-control").is_none());

    let reads = [
        ("/api/v1/products", "public, max-age=60"),
        ("/api/v1/products/search?q=tea", "public, max-age=60"),
        ("/api/v1/categories", "public, max-age=60"),
        ("/api/v1/products/TEA-700", "public, max-age=300"),
        (
            "/api/v1/products/TEA-700/image?v=2",
            "public, max-age=86400, immutable",
        ),
    ];
    for (path, cache_control) in reads {
        let first = admin.get(path).await;
        assert_eq!(first.status(), 200, "{path}");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() >= 34, "{path}: {etag}");
        assert_eq!(first.headers()["cache-control"], cache_control, "{path}");
        assert_eq!(first.headers()["vary"], "accept-encoding", "{path}");
        for condition in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
            let again = admin
                .http
                .get(format!("{}{path}", admin.base))
                .header("if-none-match", condition)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{path}");
            assert_eq!(again.headers()["etag"], etag.as_str());
            assert_eq!(again.headers()["cache-control"], cache_control);
            assert!(again.bytes().await.unwrap().is_empty());
        }
    }

    // A change gives a new tag, so the old one no longer saves the body.
    let before = admin.get("/api/v1/products/TEA-700").await;
    let old_tag = before.headers()["etag"].to_str().unwrap().to_owned();
    let mut changed = product("TEA-700", 350);
    changed["name"] = json!("Dearer tea");
    assert_eq!(admin.update(id, &changed).await.status(), 200);
    let after = admin
        .http
        .get(format!("{}/api/v1/products/TEA-700", admin.base))
        .header("if-none-match", &old_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_ne!(after.headers()["etag"], old_tag.as_str());

    // Errors are not cached.
    let missing = admin.get("/api/v1/products/NOPE-404").await;
    assert!(missing.headers().get("etag").is_none());
    assert!(missing.headers().get("cache-control").is_none());
    assert_problem(missing, 404).await;
    system.shutdown().await;
}
