//! Checkouts holding, committing and releasing stock, racing each other and the clock.

use futures::future::join_all;
use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use nubo_platform::uuid::Uuid;
use serde_json::Value;

use crate::helpers::{assert_problem, eventually, json, start, start_with};

both_modes!(
    twenty_checkouts_race_for_five_units_and_exactly_five_win,
    a_reservation_holds_every_line_or_none,
    the_same_reservation_sent_twice_holds_stock_once,
    commit_and_release_are_idempotent_and_exclusive,
    a_release_that_overtakes_its_reserve_wins,
    an_unsettled_reservation_expires_and_its_stock_comes_back,
);

async fn twenty_checkouts_race_for_five_units_and_exactly_five_win(mode: TestMode) {
    let shop = start(mode).await;
    shop.create_product("LAST-UNITS").await;
    eventually("the product has its 5 units", || async {
        shop.stock_row("LAST-UNITS").await == Some((5, 0))
    })
    .await;

    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let statuses: Vec<u16> = join_all(ids.iter().map(|id| async {
        shop.reserve(*id, &[("LAST-UNITS", 1)], 60)
            .await
            .status()
            .as_u16()
    }))
    .await;
    let won: Vec<Uuid> = ids
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| **s == 201)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(won.len(), 5, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(shop.available("LAST-UNITS").await, 0);
    assert_eq!(shop.stock_row("LAST-UNITS").await, Some((5, 5)));

    // The winners pay: the units leave the shop, and nothing is left to sell.
    for id in &won {
        assert_eq!(shop.commit(*id).await.status(), 200);
    }
    assert_eq!(shop.stock_row("LAST-UNITS").await, Some((0, 0)));
    let late = shop.reserve(Uuid::now_v7(), &[("LAST-UNITS", 1)], 60).await;
    assert_problem(late, 409).await;
    shop.shutdown().await;
}

async fn a_reservation_holds_every_line_or_none(mode: TestMode) {
    let shop = start(mode).await;
    shop.stock("TEA-A", 5).await;
    shop.stock("TEA-B", 1).await;
    let id = Uuid::now_v7();
    let short = shop.reserve(id, &[("TEA-A", 2), ("TEA-B", 2)], 60).await;
    let problem = assert_problem(short, 409).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "lines[1].quantity");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("TEA-B"),
        "{problem}"
    );
    assert_eq!(shop.stock_row("TEA-A").await, Some((5, 0)), "nothing held");
    assert_eq!(shop.stock_row("TEA-B").await, Some((1, 0)));
    assert_problem(shop.reservation(id).await, 404).await;

    // The shopper lowers the quantity and tries again with the same id.
    let held = json(
        shop.reserve(id, &[("TEA-B", 1), ("TEA-A", 2)], 60).await,
        201,
    )
    .await;
    assert_eq!(held["state"], "held");
    assert_eq!(held["lines"][0]["sku"], "TEA-A");
    assert_eq!(shop.stock_row("TEA-A").await, Some((5, 2)));
    assert_eq!(shop.stock_row("TEA-B").await, Some((1, 1)));
    shop.shutdown().await;
}

async fn the_same_reservation_sent_twice_holds_stock_once(mode: TestMode) {
    let shop = start(mode).await;
    shop.stock("TEA-C", 10).await;
    let id = Uuid::now_v7();
    let first = json(shop.reserve(id, &[("TEA-C", 2)], 60).await, 201).await;
    let again = json(shop.reserve(id, &[("TEA-C", 2)], 60).await, 200).await;
    assert_eq!(first, again);
    assert_eq!(shop.stock_row("TEA-C").await, Some((10, 2)));
    let different = shop.reserve(id, &[("TEA-C", 3)], 60).await;
    assert_problem(different, 409).await;

    // A retrying client and its original request, arriving together.
    let racing = Uuid::now_v7();
    let statuses: Vec<u16> = join_all((0..8).map(|_| async {
        shop.reserve(racing, &[("TEA-C", 3)], 60)
            .await
            .status()
            .as_u16()
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(shop.stock_row("TEA-C").await, Some((10, 5)));
    shop.shutdown().await;
}

async fn commit_and_release_are_idempotent_and_exclusive(mode: TestMode) {
    let shop = start(mode).await;
    shop.stock("TEA-D", 5).await;
    let paid = Uuid::now_v7();
    assert_eq!(shop.reserve(paid, &[("TEA-D", 2)], 60).await.status(), 201);
    for _ in 0..2 {
        let body = json(shop.commit(paid).await, 200).await;
        assert_eq!(body["state"], "committed");
        assert_eq!(shop.stock_row("TEA-D").await, Some((3, 0)));
    }
    // Releasing committed stock is a return: a completed order was cancelled and its units
    // come back on hand, once however often it is asked for.
    for _ in 0..2 {
        let body = json(shop.release(paid, "order_cancelled").await, 200).await;
        assert_eq!(body["state"], "released");
        assert_eq!(body["release_reason"], "returned: order_cancelled");
        assert_eq!(shop.stock_row("TEA-D").await, Some((5, 0)));
    }
    let refused = assert_problem(shop.commit(paid).await, 409).await;
    assert!(refused["detail"].as_str().unwrap().contains("released"));

    let declined = Uuid::now_v7();
    assert_eq!(
        shop.reserve(declined, &[("TEA-D", 1)], 60).await.status(),
        201
    );
    assert_eq!(shop.stock_row("TEA-D").await, Some((5, 1)));
    for _ in 0..2 {
        let body = json(shop.release(declined, "payment_declined").await, 200).await;
        assert_eq!(body["state"], "released");
        assert_eq!(body["release_reason"], "payment_declined");
        assert_eq!(shop.stock_row("TEA-D").await, Some((5, 0)));
    }
    let refused = assert_problem(shop.commit(declined).await, 409).await;
    assert!(refused["detail"].as_str().unwrap().contains("released"));
    assert_eq!(shop.stock_row("TEA-D").await, Some((5, 0)));
    assert_problem(shop.commit(Uuid::now_v7()).await, 404).await;

    // One event per release or return, however often it was asked for.
    let events = shop.released_events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["reservation_id"], paid.to_string());
    assert_eq!(events[0]["reason"], "returned: order_cancelled");
    assert_eq!(events[0]["lines"][0]["quantity"], 2);
    assert_eq!(events[1]["reservation_id"], declined.to_string());
    assert_eq!(events[1]["reason"], "payment_declined");
    assert_eq!(events[1]["lines"][0]["sku"], "TEA-D");
    assert_eq!(events[1]["lines"][0]["quantity"], 1);
    shop.shutdown().await;
}

async fn a_release_that_overtakes_its_reserve_wins(mode: TestMode) {
    let shop = start(mode).await;
    shop.stock("TEA-E", 5).await;
    let id = Uuid::now_v7();
    let released = json(shop.release(id, "checkout_timed_out").await, 200).await;
    assert_eq!(released["state"], "released");
    assert_eq!(released["lines"], Value::Array(vec![]));

    let late = assert_problem(shop.reserve(id, &[("TEA-E", 1)], 60).await, 409).await;
    assert!(
        late["detail"].as_str().unwrap().contains("released"),
        "{late}"
    );
    assert_eq!(shop.stock_row("TEA-E").await, Some((5, 0)), "nothing held");
    let stored = json(shop.reservation(id).await, 200).await;
    assert_eq!(stored["state"], "released");
    assert_eq!(
        json(shop.release(id, "again").await, 200).await["state"],
        "released"
    );
    shop.shutdown().await;
}

async fn an_unsettled_reservation_expires_and_its_stock_comes_back(mode: TestMode) {
    let shop = start_with(mode, &[("NUBO_INVENTORY_EXPIRY_SWEEP_MS", "100")]).await;
    shop.stock("TEA-F", 5).await;
    let id = Uuid::now_v7();
    assert_eq!(shop.reserve(id, &[("TEA-F", 3)], 1).await.status(), 201);
    assert_eq!(shop.available("TEA-F").await, 2);

    eventually("the expired reservation's stock is back", || async {
        shop.available("TEA-F").await == 5
    })
    .await;
    assert_eq!(shop.stock_row("TEA-F").await, Some((5, 0)));
    let stored = json(shop.reservation(id).await, 200).await;
    assert_eq!(stored["state"], "released");
    assert_eq!(stored["release_reason"], "expired");
    let late = assert_problem(shop.commit(id).await, 409).await;
    assert!(late["detail"].as_str().unwrap().contains("released"));

    let events = shop.released_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reservation_id"], id.to_string());
    assert_eq!(events[0]["reason"], "expired");
    shop.shutdown().await;
}
