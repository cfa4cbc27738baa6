//! Stock as the catalog creates it and an admin counts it.

use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use serde_json::json;

use crate::helpers::{CUSTOMER_EMAIL, assert_problem, eventually, json, sign_in, start};

both_modes!(
    a_product_created_in_the_catalog_gets_its_initial_stock,
    an_admin_counts_stock_and_shoppers_see_what_is_available,
    only_an_admin_may_set_stock,
);

async fn a_product_created_in_the_catalog_gets_its_initial_stock(mode: TestMode) {
    let shop = start(mode).await;
    assert_problem(shop.availability("TEA-100").await, 404).await;
    shop.create_product("TEA-100").await;
    eventually("the new product has stock", || async {
        shop.availability("TEA-100").await.status() == 200
    })
    .await;
    assert_eq!(shop.available("TEA-100").await, 5);
    assert_eq!(shop.stock_row("TEA-100").await, Some((5, 0)));
    shop.shutdown().await;
}

async fn an_admin_counts_stock_and_shoppers_see_what_is_available(mode: TestMode) {
    let shop = start(mode).await;
    let admin = Some(shop.admin_token.as_str());
    let body = json(
        shop.set_stock_as(admin, "TEA-200", json!({ "on_hand": 12 }))
            .await,
        200,
    )
    .await;
    assert_eq!(
        body,
        json!({ "sku": "TEA-200", "on_hand": 12, "reserved": 0, "available": 12 })
    );
    let id = nubo_platform::uuid::Uuid::now_v7();
    assert_eq!(shop.reserve(id, &[("TEA-200", 4)], 60).await.status(), 201);
    assert_eq!(shop.available("TEA-200").await, 8);

    // Fewer on hand than checkouts hold: refused, nothing changes.
    let refused = shop
        .set_stock_as(admin, "TEA-200", json!({ "on_hand": 3 }))
        .await;
    let problem = assert_problem(refused, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("reserved"),
        "{problem}"
    );
    assert_eq!(shop.stock_row("TEA-200").await, Some((12, 4)));

    let body = json(
        shop.set_stock_as(admin, "TEA-200", json!({ "on_hand": 4 }))
            .await,
        200,
    )
    .await;
    assert_eq!(body["available"], 0);
    assert_eq!(shop.available("TEA-200").await, 0);
    shop.shutdown().await;
}

async fn only_an_admin_may_set_stock(mode: TestMode) {
    let shop = start(mode).await;
    let body = json!({ "on_hand": 7 });
    let anonymous = shop.set_stock_as(None, "TEA-300", body.clone()).await;
    assert_problem(anonymous, 401).await;
    let customer = sign_in(&shop.system, CUSTOMER_EMAIL).await;
    let forbidden = shop.set_stock_as(Some(&customer), "TEA-300", body).await;
    assert_problem(forbidden, 403).await;
    assert_eq!(shop.stock_row("TEA-300").await, None, "nothing was written");
    shop.shutdown().await;
}
