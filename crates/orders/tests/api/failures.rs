use std::time::Duration;

use nubo_contracts::payments::PaymentCaptured;
use nubo_platform::both_modes;
use nubo_platform::events::Event;
use nubo_platform::testing::TestMode;
use serde_json::Value;

use crate::helpers::*;

both_modes!(
    a_checkout_waits_for_payments_to_come_back,
    a_checkout_is_cancelled_when_payments_stays_down,
    a_saga_cut_off_by_a_restart_of_orders_finishes,
    a_stop_lets_an_authorization_in_flight_finish,
    a_crashed_replicas_saga_is_resumed_once_its_lease_runs_out,
    a_stopping_replica_gives_up_only_the_leases_of_unfinished_sagas,
);

/// Waits until the order is in `state` (a middle state the test wants to act in).
async fn reaches(shop: &Shop, user: &User, id: &str, state: &str) {
    eventually(&format!("order {id} reaches {state}"), || async {
        let order: Value = shop.order(user, id).await.json().await.unwrap();
        order["state"] == state
    })
    .await;
}

/// Waits until the order has recorded a failed attempt at `step`, which it tries again.
async fn retries(shop: &Shop, user: &User, id: &str, step: &str) {
    let retrying = format!("{step}:retrying");
    eventually(&format!("order {id} retries {step}"), || async {
        let order: Value = shop.order(user, id).await.json().await.unwrap();
        steps(&order).contains(&retrying)
    })
    .await;
}

async fn a_checkout_waits_for_payments_to_come_back(mode: TestMode) {
    let mut shop = start(mode).await;
    shop.product("TEA-ASSAM", "Assam", 700, 4).await;
    let dave = shop.customer("dave").await;
    shop.add_to_cart(&dave, "TEA-ASSAM", 1).await;
    shop.system.stop("payments").await.unwrap();

    let response = shop.checkout(&dave, &key(), GOOD_CARD).await;
    let order = json(response, 202).await;
    assert_eq!(order["status"], "pending");
    let id = order["order_id"].as_str().unwrap().to_owned();
    // Held, waiting for the card: the stock is set aside meanwhile.
    reaches(&shop, &dave, &id, "reserved").await;
    assert_eq!(shop.available("TEA-ASSAM").await, 3);
    // Meanwhile Dave goes on shopping: one more Assam, and a Keemun.
    shop.product("TEA-KEEMUN", "Keemun", 900, 4).await;
    shop.add_to_cart(&dave, "TEA-ASSAM", 1).await;
    shop.add_to_cart(&dave, "TEA-KEEMUN", 2).await;
    retries(&shop, &dave, &id, "authorize_payment").await;

    shop.system.restart("payments").await;
    let order = shop.settled(&dave, &id).await;
    assert_eq!(order["state"], "completed", "{order:#}");
    assert_eq!(shop.payment(&id).await.unwrap()["state"], "captured");
    assert_eq!(shop.available("TEA-ASSAM").await, 3);
    assert_eq!(order["lines"].as_array().unwrap().len(), 1, "{order:#}");
    // The order took out what it bought and nothing Dave added while it ran.
    let cart = shop.cart(&dave).await;
    let left: Vec<(&str, i64)> = cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["sku"].as_str().unwrap(), l["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(left, [("TEA-ASSAM", 1), ("TEA-KEEMUN", 2)]);
    shop.shutdown().await;
}

async fn a_checkout_is_cancelled_when_payments_stays_down(mode: TestMode) {
    let mut shop = start(mode).await;
    shop.product("TEA-DARJ", "Darjeeling", 1100, 4).await;
    let erin = shop.customer("erin").await;
    shop.add_to_cart(&erin, "TEA-DARJ", 2).await;
    shop.system.stop("payments").await.unwrap();

    let order = json(shop.checkout(&erin, &key(), GOOD_CARD).await, 202).await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    // Within the payment deadline (a minute) the checkout keeps trying the card.
    retries(&shop, &erin, &id, "authorize_payment").await;
    assert_eq!(shop.available("TEA-DARJ").await, 2);
    // A minute passes. Past the deadline the checkout turns back: the stock goes back on sale at
    // once, but the order stays `cancelling` until payments can say whether a lost answer
    // authorized the card.
    shop.system.clock().advance(Duration::from_secs(61));
    reaches(&shop, &erin, &id, "compensating").await;
    eventually("the stock is back on sale", || async {
        shop.available("TEA-DARJ").await == 4
    })
    .await;
    let order: Value = shop.order(&erin, &id).await.json().await.unwrap();
    assert_eq!(order["status"], "cancelling");
    let reason = order["cancel_reason"].as_str().unwrap();
    assert!(
        reason.contains("could not complete the checkout in time"),
        "{reason}"
    );
    assert_eq!(shop.reservation(&id).await.unwrap()["state"], "released");
    // Five more minutes without payments: the operators' dashboard counts the saga as stuck.
    assert_eq!(stuck_sagas(&shop).await, 0.0);
    shop.system.clock().advance(Duration::from_secs(301));
    eventually("the saga counts as stuck", || async {
        stuck_sagas(&shop).await == 1.0
    })
    .await;

    shop.system.restart("payments").await;
    let order = shop.settled(&erin, &id).await;
    assert_eq!(order["state"], "cancelled");
    // Nothing was charged: payments has never heard of the order.
    assert!(shop.payment(&id).await.is_none());
    eventually("no saga counts as stuck any more", || async {
        stuck_sagas(&shop).await == 0.0
    })
    .await;
    shop.shutdown().await;
}

async fn a_saga_cut_off_by_a_restart_of_orders_finishes(mode: TestMode) {
    // The card provider takes longer than orders' stop allows, so orders stops with the
    // authorization in flight, and the restarted orders (which never saw the card) must learn
    // its fate from payments.
    let mut shop = start_with(
        mode,
        &[
            ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", "8000"),
            ("NUBO_PAYMENTS_PROVIDER_TIMEOUT_MS", "15000"),
            ("NUBO_ORDERS_CHECKOUT_WAIT_MS", "1"),
        ],
    )
    .await;
    shop.product("TEA-PUERH", "Shou Puerh", 2300, 2).await;
    let frank = shop.customer("frank").await;
    shop.add_to_cart(&frank, "TEA-PUERH", 1).await;

    let order = json(shop.checkout(&frank, &key(), GOOD_CARD).await, 202).await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    reaches(&shop, &frank, &id, "reserved").await;
    shop.system.restart("orders").await;

    let order = shop.settled(&frank, &id).await;
    match order["state"].as_str().unwrap() {
        "completed" => {
            assert_eq!(shop.payment(&id).await.unwrap()["state"], "captured");
            assert_eq!(shop.reservation(&id).await.unwrap()["state"], "committed");
            assert_eq!(shop.available("TEA-PUERH").await, 1);
            assert_eq!(shop.events("payments", PaymentCaptured::SUBJECT).await, 1);
        }
        "cancelled" => {
            let payment = shop.payment(&id).await;
            assert!(
                payment.is_none() || payment.as_ref().unwrap()["state"] != "captured",
                "{payment:?}"
            );
            assert_eq!(shop.available("TEA-PUERH").await, 2);
        }
        other => panic!("unexpected state {other}"),
    }
    eventually("no saga is left in progress", || async {
        let text = shop.system.metrics("orders").await;
        let open: f64 = text
            .lines()
            .filter(|l| l.starts_with("nubo_sagas_in_progress{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        open == 0.0
    })
    .await;
    shop.shutdown().await;
}

async fn a_stop_lets_an_authorization_in_flight_finish(mode: TestMode) {
    // The card provider answers in 2.5 s; the stop's deadline is 5 s in tests. A stop once gave
    // sagas 2 s, then dropped the card and the order with it.
    let mut shop = start_with(
        mode,
        &[
            ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", "2500"),
            ("NUBO_PAYMENTS_PROVIDER_TIMEOUT_MS", "10000"),
            ("NUBO_ORDERS_CHECKOUT_WAIT_MS", "1"),
        ],
    )
    .await;
    shop.product("TEA-HOJICHA", "Hojicha", 900, 2).await;
    let gil = shop.customer("gil").await;
    shop.add_to_cart(&gil, "TEA-HOJICHA", 1).await;
    let order = json(shop.checkout(&gil, &key(), GOOD_CARD).await, 202).await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    reaches(&shop, &gil, &id, "reserved").await;
    shop.system.stop("orders").await.unwrap();

    // The stopped replica saw the authorization through, and stopped at the next pause.
    let db = shop.system.db("orders").await;
    let order_id: nubo_platform::uuid::Uuid = id.parse().unwrap();
    let state =
        nubo_platform::with_db!(&db, pool => nubo_platform::sqlx::query_scalar::<_, String>(
        "SELECT state FROM orders WHERE id = $1"
    )
    .bind(order_id)
    .fetch_one(pool)
    .await)
        .unwrap();
    db.close().await;
    assert_eq!(state, "authorized");
    assert_eq!(shop.payment(&id).await.unwrap()["state"], "authorized");

    shop.system.restart("orders").await;
    let order = shop.settled(&gil, &id).await;
    assert_eq!(order["state"], "completed", "{order:#}");
    assert_eq!(shop.available("TEA-HOJICHA").await, 1);
    shop.shutdown().await;
}

async fn a_crashed_replicas_saga_is_resumed_once_its_lease_runs_out(mode: TestMode) {
    let mut shop = start(mode).await;
    shop.product("TEA-BANCHA", "Bancha", 500, 3).await;
    let ida = shop.customer("ida").await;
    shop.add_to_cart(&ida, "TEA-BANCHA", 2).await;
    // Payments is down, so the saga waits at `reserved` with the card only in orders' memory.
    shop.system.stop("payments").await.unwrap();
    let order = json(shop.checkout(&ida, &key(), GOOD_CARD).await, 202).await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    reaches(&shop, &ida, &id, "reserved").await;
    shop.system.stop("orders").await.unwrap();

    // What a replica that crashed leaves behind: its lease on the order, for half a minute yet,
    // and no card anywhere.
    let db = shop.system.db("orders").await;
    let until = shop.system.clock().now() + nubo_platform::chrono::TimeDelta::seconds(30);
    let crashed = nubo_platform::uuid::Uuid::new_v4();
    let order_id: nubo_platform::uuid::Uuid = id.parse().unwrap();
    nubo_platform::with_db!(&db, pool => nubo_platform::sqlx::query(
        "UPDATE orders SET lease_owner = $1, lease_until = $2 WHERE id = $3"
    )
    .bind(crashed)
    .bind(until)
    .bind(order_id)
    .execute(pool)
    .await
    .map(|_| ()))
    .unwrap();
    db.close().await;

    shop.system.restart("payments").await;
    shop.system.restart("orders").await;
    // The recovery sweep sees the unfinished saga, but leaves it be while the lease lives...
    eventually("a sweep has counted the unfinished saga", || async {
        sagas_in(&shop, "reserved").await == Some(1.0)
    })
    .await;
    let held: Value = shop.order(&ida, &id).await.json().await.unwrap();
    assert_eq!(held["state"], "reserved");
    // ...and resumes it once the lease has run out. Payments never saw the card, so nothing was
    // charged and the checkout is undone: the customer is told to check out again.
    shop.system.clock().advance(Duration::from_secs(31));
    let order = shop.settled(&ida, &id).await;
    assert_eq!(order["state"], "cancelled", "{order:#}");
    assert_eq!(
        order["cancel_reason"].as_str().unwrap(),
        nubo_orders::saga::INTERRUPTED
    );
    assert!(shop.payment(&id).await.is_none());
    assert_eq!(shop.available("TEA-BANCHA").await, 3);
    // The retry the customer is told to make works.
    let again = shop.checked_out(&ida, &key(), GOOD_CARD).await;
    assert_eq!(again["status"], "confirmed");
    shop.shutdown().await;
}

/// How many unfinished sagas have not moved for longer than `NUBO_ORDERS_STUCK_AFTER_SECS`.
async fn stuck_sagas(shop: &Shop) -> f64 {
    let stuck = shop.system.metric("orders", "nubo_sagas_stuck", &[]).await;
    stuck.expect("orders exports nubo_sagas_stuck")
}

/// How many unfinished sagas are in `state`, as orders last counted them (`None` before it has).
async fn sagas_in(shop: &Shop, state: &str) -> Option<f64> {
    let label = format!("state=\"{state}\"");
    shop.system
        .metric("orders", "nubo_sagas_in_progress", &[&label])
        .await
}

async fn a_stopping_replica_gives_up_only_the_leases_of_unfinished_sagas(mode: TestMode) {
    let mut shop = start(mode).await;
    shop.product("TEA-KUKICHA", "Kukicha", 700, 5).await;
    let jo = shop.customer("jo").await;
    shop.add_to_cart(&jo, "TEA-KUKICHA", 1).await;
    let done = shop.checked_out(&jo, &key(), GOOD_CARD).await;
    let done = done["order_id"].as_str().unwrap().to_owned();
    assert_eq!(shop.settled(&jo, &done).await["state"], "completed");
    // A second checkout waits at `reserved` while payments is down.
    shop.add_to_cart(&jo, "TEA-KUKICHA", 1).await;
    shop.system.stop("payments").await.unwrap();
    let open = json(shop.checkout(&jo, &key(), GOOD_CARD).await, 202).await;
    let open = open["order_id"].as_str().unwrap().to_owned();
    reaches(&shop, &jo, &open, "reserved").await;

    shop.system.stop("orders").await.unwrap();
    // The stop gave up the lease of the saga it could not finish, so another replica takes it
    // over at once; the finished order's row was left alone (a stop once rewrote every order
    // its replica had ever run).
    let db = shop.system.db("orders").await;
    let owner = |id: String| {
        let db = &db;
        async move {
            let id: nubo_platform::uuid::Uuid = id.parse().unwrap();
            nubo_platform::with_db!(db, pool => nubo_platform::sqlx::query_scalar::<_, Option<nubo_platform::uuid::Uuid>>(
                "SELECT lease_owner FROM orders WHERE id = $1"
            )
            .bind(id)
            .fetch_one(pool)
            .await)
            .unwrap()
        }
    };
    assert!(
        owner(open.clone()).await.is_none(),
        "the open saga's lease is given up"
    );
    assert!(
        owner(done.clone()).await.is_some(),
        "the finished order is not rewritten"
    );
    db.close().await;
    shop.system.restart("payments").await;
    shop.system.restart("orders").await;
    // The replica that resumes it has no card (only the stopped one held it in memory): the
    // checkout is undone, nothing charged.
    let resumed = shop.settled(&jo, &open).await;
    assert_eq!(resumed["state"], "cancelled", "{resumed:#}");
    assert_eq!(
        resumed["cancel_reason"].as_str().unwrap(),
        nubo_orders::saga::INTERRUPTED
    );
    shop.shutdown().await;
}
