//! Bad input gets a clear problem, and changes nothing.

use nubo_platform::axum::http::Method;
use nubo_platform::testing::{TestMode, problem_fields};
use nubo_platform::uuid::Uuid;
use nubo_platform::{both_modes, sqlx, with_db};
use serde_json::json;

use crate::helpers::{Shop, assert_problem, reservation, start};

both_modes!(
    a_bad_reservation_is_refused_field_by_field_and_nothing_is_held,
    malformed_ids_bodies_and_stock_counts_are_refused,
);

async fn reservations_count(shop: &Shop) -> i64 {
    let sql = "SELECT COUNT(*) FROM reservations";
    with_db!(&shop.db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await).unwrap()
}

async fn a_bad_reservation_is_refused_field_by_field_and_nothing_is_held(mode: TestMode) {
    let shop = start(mode).await;
    shop.stock("TEA-G", 5).await;
    for quantity in [0, -1, 100_000] {
        let response = shop
            .reserve(Uuid::now_v7(), &[("TEA-G", quantity)], 60)
            .await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(
            problem_fields(&problem),
            ["lines[0].quantity"],
            "{quantity}"
        );
    }
    let unknown = shop
        .reserve(Uuid::now_v7(), &[("TEA-G", 1), ("NO-SUCH-SKU", 1)], 60)
        .await;
    let problem = assert_problem(unknown, 422).await;
    assert_eq!(problem_fields(&problem), ["lines[1].sku"]);
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("NO-SUCH-SKU")
    );

    let empty = assert_problem(shop.reserve(Uuid::now_v7(), &[], 60).await, 422).await;
    assert_eq!(problem_fields(&empty), ["lines"]);
    let twice = shop
        .reserve(Uuid::now_v7(), &[("TEA-G", 1), ("TEA-G", 1)], 60)
        .await;
    assert_eq!(
        problem_fields(&assert_problem(twice, 422).await),
        ["lines[1].sku"]
    );
    for ttl in [0, 3601] {
        let response = shop.reserve(Uuid::now_v7(), &[("TEA-G", 1)], ttl).await;
        assert_eq!(
            problem_fields(&assert_problem(response, 422).await),
            ["ttl_secs"]
        );
    }

    let mut bad_id = reservation(Uuid::now_v7(), &[("TEA-G", 1)], 60);
    bad_id["reservation_id"] = json!("not-a-uuid");
    let problem = assert_problem(shop.reserve_raw(&bad_id).await, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("reservation_id"),
        "{problem}"
    );

    assert_eq!(shop.stock_row("TEA-G").await, Some((5, 0)), "nothing held");
    assert_eq!(reservations_count(&shop).await, 0, "nothing recorded");
    shop.shutdown().await;
}

async fn malformed_ids_bodies_and_stock_counts_are_refused(mode: TestMode) {
    let shop = start(mode).await;
    shop.stock("TEA-H", 5).await;
    let url = |path: &str| format!("/internal/v1/reservations/{path}");
    let commit = shop
        .orders
        .send(Method::POST, &url("not-a-uuid/commit"), None)
        .await;
    assert_problem(commit, 400).await;
    let get = shop.orders.get(&url("not-a-uuid")).await;
    assert_problem(get, 400).await;
    let no_reason = shop
        .orders
        .post(
            &url(&format!("{}/release", Uuid::now_v7())),
            &json!({ "reason": " " }),
        )
        .await;
    assert_eq!(
        problem_fields(&assert_problem(no_reason, 422).await),
        ["reason"]
    );
    let not_json = shop
        .orders
        .send_raw(
            Method::POST,
            "/internal/v1/reservations",
            "application/json",
            "{\"lines\": [",
        )
        .await;
    assert_problem(not_json, 400).await;

    let admin = Some(shop.admin_token.as_str());
    for on_hand in [-1, 1_000_001] {
        let response = shop
            .set_stock_as(admin, "TEA-H", json!({ "on_hand": on_hand }))
            .await;
        assert_eq!(
            problem_fields(&assert_problem(response, 422).await),
            ["on_hand"]
        );
    }
    let bad_sku = shop
        .set_stock_as(admin, "tea h", json!({ "on_hand": 1 }))
        .await;
    assert_eq!(problem_fields(&assert_problem(bad_sku, 422).await), ["sku"]);
    assert_problem(shop.availability("tea-h").await, 422).await;
    assert_problem(shop.availability("TEA-NONE").await, 404).await;

    assert_eq!(
        shop.stock_row("TEA-H").await,
        Some((5, 0)),
        "nothing changed"
    );
    assert_eq!(
        reservations_count(&shop).await,
        0,
        "no tombstone for a refused release"
    );
    shop.shutdown().await;
}
