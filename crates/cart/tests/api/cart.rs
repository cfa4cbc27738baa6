use std::time::Duration;

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use serde_json::json;

use crate::helpers::{assert_problem, json, lines, start, start_with};

both_modes!(
    a_customer_fills_changes_and_empties_a_cart_priced_by_the_catalog,
    a_completed_order_takes_only_what_it_bought_and_only_once,
    a_price_changed_in_the_catalog_shows_at_once,
    each_customer_sees_only_their_own_cart,
    concurrent_adds_are_all_counted,
    bad_input_is_refused_and_leaves_the_cart_unchanged,
    an_idle_cart_expires,
);

fn sku(tag: &str) -> String {
    format!("TEA-{tag}")
}

async fn a_customer_fills_changes_and_empties_a_cart_priced_by_the_catalog(mode: TestMode) {
    let shop = start(mode).await;
    let alice = &shop.alice;
    shop.create_product("TEA-100", 450).await;
    shop.create_product("TEA-200", 300).await;

    let empty = shop.cart_of(alice).await;
    assert_eq!(empty["user_id"], alice.1.as_str());
    assert_eq!(empty["lines"], json!([]));
    assert_eq!(
        empty["total"],
        json!({ "amount_minor": 0, "currency": "EUR" })
    );

    json(
        shop.add(alice, json!({ "sku": "TEA-100", "quantity": 2 }))
            .await,
        200,
    )
    .await;
    let cart = json(
        shop.add(alice, json!({ "sku": "TEA-100", "quantity": 1 }))
            .await,
        200,
    )
    .await;
    assert_eq!(lines(&cart), [("TEA-100".to_owned(), 3)]);
    let cart = json(
        shop.set(alice, "TEA-200", json!({ "quantity": 4 })).await,
        200,
    )
    .await;
    assert_eq!(
        cart["lines"],
        json!([
            {
                "sku": "TEA-100", "quantity": 3, "available": true, "name": "Product TEA-100",
                "unit_price": { "amount_minor": 450, "currency": "EUR" },
                "line_total": { "amount_minor": 1350, "currency": "EUR" },
            },
            {
                "sku": "TEA-200", "quantity": 4, "available": true, "name": "Product TEA-200",
                "unit_price": { "amount_minor": 300, "currency": "EUR" },
                "line_total": { "amount_minor": 1200, "currency": "EUR" },
            },
        ])
    );
    assert_eq!(
        cart["total"],
        json!({ "amount_minor": 2550, "currency": "EUR" })
    );

    let cart = json(
        shop.set(alice, "TEA-100", json!({ "quantity": 1 })).await,
        200,
    )
    .await;
    assert_eq!(cart["total"]["amount_minor"], 1650);
    let cart = json(shop.remove(alice, "TEA-200").await, 200).await;
    assert_eq!(lines(&cart), [("TEA-100".to_owned(), 1)]);
    assert_eq!(cart["total"]["amount_minor"], 450);
    assert_eq!(cart, shop.cart_of(alice).await);

    let cleared = shop
        .http
        .delete(format!("{}/api/v1/cart", shop.cart))
        .bearer_auth(&alice.0)
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(shop.cart_of(alice).await["lines"], json!([]));

    shop.shutdown().await;
}

async fn a_completed_order_takes_only_what_it_bought_and_only_once(mode: TestMode) {
    let shop = start(mode).await;
    let alice = &shop.alice;
    for sku in ["TEA-110", "TEA-120", "TEA-130"] {
        shop.create_product(sku, 450).await;
    }
    json(
        shop.set(alice, "TEA-110", json!({ "quantity": 3 })).await,
        200,
    )
    .await;
    json(
        shop.set(alice, "TEA-120", json!({ "quantity": 1 })).await,
        200,
    )
    .await;
    // The order bought 2 of TEA-110 and 1 of TEA-120; while it ran, Alice raised TEA-110 to 3
    // and added TEA-130.
    json(
        shop.set(alice, "TEA-130", json!({ "quantity": 2 })).await,
        200,
    )
    .await;
    let order = "0e7c2f3a-3c1d-4f6b-9f57-5b0f3c6a7d10";
    let bought = json!({ "lines": [
        { "sku": "TEA-110", "quantity": 2 },
        { "sku": "TEA-120", "quantity": 1 },
    ] });
    let take = || async {
        let path = format!("/internal/v1/carts/{}/orders/{order}", alice.1);
        shop.orders.put(&path, &bought).await
    };
    assert_eq!(take().await.status(), 204);
    let left = [("TEA-110".to_owned(), 1), ("TEA-130".to_owned(), 2)];
    assert_eq!(lines(&shop.cart_of(alice).await), left);
    // Orders retries until it has an answer: a retry takes nothing more.
    assert_eq!(take().await.status(), 204);
    assert_eq!(lines(&shop.cart_of(alice).await), left);

    // A malformed take is refused, naming every bad field, and changes nothing.
    let path = format!(
        "/internal/v1/carts/{}/orders/8f0d6f0e-1111-4c4c-8a8a-000000000001",
        alice.1
    );
    let refused = shop
        .orders
        .put(
            &path,
            &json!({ "lines": [
                { "sku": "tea 110", "quantity": 1 },
                { "sku": "TEA-130", "quantity": 0 },
            ] }),
        )
        .await;
    let problem = assert_problem(refused, 422).await;
    assert_eq!(
        problem_fields(&problem),
        ["lines[0].sku", "lines[1].quantity"]
    );
    assert_eq!(lines(&shop.cart_of(alice).await), left);
    shop.shutdown().await;
}

async fn a_price_changed_in_the_catalog_shows_at_once(mode: TestMode) {
    let shop = start(mode).await;
    let id = shop.create_product(&sku("300"), 450).await;
    json(
        shop.set(&shop.alice, &sku("300"), json!({ "quantity": 2 }))
            .await,
        200,
    )
    .await;
    assert_eq!(
        shop.cart_of(&shop.alice).await["total"]["amount_minor"],
        900
    );

    shop.reprice(&id, &sku("300"), 500).await;
    let cart = shop.cart_of(&shop.alice).await;
    assert_eq!(cart["lines"][0]["unit_price"]["amount_minor"], 500);
    assert_eq!(cart["total"]["amount_minor"], 1000);
    // Orders read the same price at the same moment.
    let internal = json(shop.internal(&shop.alice.1).await, 200).await;
    assert_eq!(internal, cart);
    shop.shutdown().await;
}

async fn each_customer_sees_only_their_own_cart(mode: TestMode) {
    let shop = start(mode).await;
    shop.create_product("TEA-400", 450).await;
    json(
        shop.add(&shop.alice, json!({ "sku": "TEA-400", "quantity": 5 }))
            .await,
        200,
    )
    .await;

    let bobs = shop.cart_of(&shop.bob).await;
    assert_eq!(bobs["user_id"], shop.bob.1.as_str());
    assert_eq!(bobs["lines"], json!([]));

    let alices = json(shop.internal(&shop.alice.1).await, 200).await;
    assert_eq!(alices["user_id"], shop.alice.1.as_str());
    assert_eq!(lines(&alices), [("TEA-400".to_owned(), 5)]);

    // An admin may read anyone's cart; a customer may not use the admin route.
    let by_admin = shop
        .http
        .get(format!("{}/api/v1/admin/carts/{}", shop.cart, shop.alice.1))
        .bearer_auth(&shop.admin.0)
        .send()
        .await
        .unwrap();
    assert_eq!(
        lines(&json(by_admin, 200).await),
        [("TEA-400".to_owned(), 5)]
    );
    let by_bob = shop
        .http
        .get(format!("{}/api/v1/admin/carts/{}", shop.cart, shop.alice.1))
        .bearer_auth(&shop.bob.0)
        .send()
        .await
        .unwrap();
    assert_problem(by_bob, 403).await;

    assert_problem(shop.get(None).await, 401).await;
    let anonymous_add = shop
        .http
        .post(format!("{}/api/v1/cart/lines", shop.cart))
        .json(&json!({ "sku": "TEA-400", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous_add, 401).await;
    assert_problem(shop.get(Some("not-a-token")).await, 401).await;
    shop.shutdown().await;
}

async fn concurrent_adds_are_all_counted(mode: TestMode) {
    let shop = start(mode).await;
    shop.create_product("TEA-500", 450).await;
    let adds = (0..20).map(|_| async {
        shop.add(&shop.alice, json!({ "sku": "TEA-500", "quantity": 1 }))
            .await
            .status()
    });
    for status in nubo_platform::futures::future::join_all(adds).await {
        assert_eq!(status, 200);
    }
    let cart = shop.cart_of(&shop.alice).await;
    assert_eq!(lines(&cart), [("TEA-500".to_owned(), 20)]);
    assert_eq!(cart["total"]["amount_minor"], 9000);
    shop.shutdown().await;
}

async fn bad_input_is_refused_and_leaves_the_cart_unchanged(mode: TestMode) {
    let shop = start(mode).await;
    let alice = &shop.alice;
    shop.create_product("TEA-600", 450).await;
    json(
        shop.add(alice, json!({ "sku": "TEA-600", "quantity": 999 }))
            .await,
        200,
    )
    .await;
    let before = shop.cart_of(alice).await;

    for quantity in [0, -1, 1001] {
        let body = json!({ "sku": "TEA-600", "quantity": quantity });
        let problem = assert_problem(shop.add(alice, body).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], "quantity");
        let body = json!({ "quantity": quantity });
        assert_problem(shop.set(alice, "TEA-600", body).await, 422).await;
    }
    // 999 + 2 would pass the maximum of 1000 units a line holds: a well-formed request the
    // cart's state refuses.
    let over = json!({ "sku": "TEA-600", "quantity": 2 });
    assert_problem(shop.add(alice, over).await, 409).await;
    // A well-formed SKU the catalog does not sell names nothing.
    let unknown = assert_problem(
        shop.add(alice, json!({ "sku": "TEA-999", "quantity": 1 }))
            .await,
        404,
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("TEA-999"));
    assert_problem(
        shop.set(alice, "TEA-999", json!({ "quantity": 1 })).await,
        404,
    )
    .await;
    assert_problem(
        shop.set(alice, "tea-600", json!({ "quantity": 1 })).await,
        422,
    )
    .await;

    let malformed = shop
        .http
        .post(format!("{}/api/v1/cart/lines", shop.cart))
        .bearer_auth(&alice.0)
        .header("content-type", "application/json")
        .body("{\"sku\": \"TEA-600\", \"quantity\": ")
        .send()
        .await
        .unwrap();
    assert!(malformed.status().is_client_error());
    assert_problem(malformed, 400).await;
    let wrong_type = shop
        .add(alice, json!({ "sku": "TEA-600", "quantity": "two" }))
        .await;
    assert!(wrong_type.status().is_client_error());
    assert_eq!(
        wrong_type.headers()["content-type"],
        "application/problem+json"
    );

    assert_eq!(shop.cart_of(alice).await, before);
    json(
        shop.add(alice, json!({ "sku": "TEA-600", "quantity": 1 }))
            .await,
        200,
    )
    .await;
    assert_eq!(
        lines(&shop.cart_of(alice).await),
        [("TEA-600".to_owned(), 1000)]
    );
    shop.shutdown().await;
}

async fn an_idle_cart_expires(mode: TestMode) {
    let shop = start_with(mode, &[("NUBO_CART_IDLE_TTL_SECS", "1")]).await;
    shop.create_product("TEA-700", 450).await;
    json(
        shop.add(&shop.alice, json!({ "sku": "TEA-700", "quantity": 1 }))
            .await,
        200,
    )
    .await;
    assert_eq!(lines(&shop.cart_of(&shop.alice).await).len(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(shop.cart_of(&shop.alice).await["lines"], json!([]));
    assert_eq!(
        json(shop.internal(&shop.alice.1).await, 200).await["lines"],
        json!([])
    );
    shop.shutdown().await;
}
