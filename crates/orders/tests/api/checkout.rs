use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderPlaced};
use nubo_contracts::payments::PaymentCaptured;
use nubo_platform::both_modes;
use nubo_platform::events::Event;
use nubo_platform::testing::TestMode;
use serde_json::Value;

use crate::helpers::*;

both_modes!(
    a_customer_finds_tea_and_buys_it,
    a_declined_card_cancels_the_order_and_gives_the_stock_back,
    one_idempotency_key_makes_one_order_also_concurrently,
    twenty_checkouts_for_five_units_confirm_exactly_five,
);

async fn a_customer_finds_tea_and_buys_it(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-JASMINE", "Jasmine Pearls", 1250, 10)
        .await;
    shop.product("TEA-SENCHA", "Sencha", 900, 10).await;
    let alice = shop.customer("alice").await;

    let found: Value = shop
        .http
        .get(shop.api("/products/search?q=jasmine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["sku"], "TEA-JASMINE", "{found:#}");
    shop.add_to_cart(&alice, "TEA-JASMINE", 2).await;
    shop.add_to_cart(&alice, "TEA-SENCHA", 1).await;

    let response = shop.checkout(&alice, &key(), GOOD_CARD).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let status = response.status().as_u16();
    let order: Value = response.json().await.unwrap();
    assert!(status == 201 || status == 202, "{status}: {order:#}");
    let id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/orders/{id}"));
    assert_eq!(order["total"]["amount_minor"], 3400);
    assert_eq!(order["lines"][0]["name"], "Jasmine Pearls");

    let order = shop.settled(&alice, &id).await;
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["state"], "completed");
    assert_eq!(
        steps(&order),
        [
            "place:done",
            "reserve_stock:done",
            "authorize_payment:done",
            "confirm:done",
            "capture_payment:done",
            "commit_stock:done",
            "clear_cart:done",
        ]
    );
    assert_eq!(shop.available("TEA-JASMINE").await, 8);
    assert_eq!(shop.available("TEA-SENCHA").await, 9);
    assert_eq!(shop.payment(&id).await.unwrap()["state"], "captured");
    assert_eq!(shop.reservation(&id).await.unwrap()["state"], "committed");
    assert!(
        shop.cart(&alice).await["lines"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let mine = json(
        shop.http
            .get(shop.api("/orders"))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["order_id"], id.as_str());
    assert_eq!(shop.events("orders", OrderPlaced::SUBJECT).await, 1);
    assert_eq!(shop.events("orders", OrderConfirmed::SUBJECT).await, 1);
    assert_eq!(shop.events("payments", PaymentCaptured::SUBJECT).await, 1);
    let confirmed = shop
        .system
        .metric("orders", "nubo_checkouts_total", &["outcome=\"confirmed\""])
        .await;
    assert_eq!(confirmed, Some(1.0));

    // The customer is told: an order-confirmed email, recorded once, and in distributed mode
    // delivered to the SMTP server.
    eventually("the order-confirmed email is recorded", || async {
        !shop.emails(&id).await.is_empty()
    })
    .await;
    let emails = shop.emails(&id).await;
    assert_eq!(emails.len(), 1, "{emails:#?}");
    assert_eq!(emails[0]["kind"], "order_confirmed");
    assert_eq!(emails[0]["to"], "alice@orders.test");
    assert!(
        emails[0]["body"]
            .as_str()
            .unwrap()
            .contains("Jasmine Pearls")
    );
    if let Some(mail) = &shop.mail {
        eventually("the email reaches the SMTP server", || async {
            !mail.mails().is_empty()
        })
        .await;
        let delivered = mail.mails();
        assert_eq!(delivered[0].header("to"), Some("alice@orders.test"));
        // The email names the order by the number the customer quotes.
        assert!(
            delivered[0]
                .body
                .contains(order["number"].as_str().unwrap())
        );
    }
    shop.shutdown().await;
}

async fn a_declined_card_cancels_the_order_and_gives_the_stock_back(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-OOLONG", "Milk Oolong", 1500, 3).await;
    let bob = shop.customer("bob").await;
    shop.add_to_cart(&bob, "TEA-OOLONG", 2).await;

    let response = shop.checkout(&bob, &key(), DECLINED_CARD).await;
    let order: Value = response.json().await.unwrap();
    let id = order["order_id"].as_str().unwrap().to_owned();
    let order = shop.settled(&bob, &id).await;
    assert_eq!(order["status"], "cancelled");
    let reason = order["cancel_reason"].as_str().unwrap();
    assert!(reason.starts_with("your card was declined"), "{reason}");
    assert_eq!(order["refunded"], false);
    assert_eq!(
        steps(&order),
        [
            "place:done",
            "reserve_stock:done",
            "authorize_payment:failed",
            "release_stock:done",
            "cancel:done",
        ]
    );
    assert_eq!(shop.available("TEA-OOLONG").await, 3);
    assert_eq!(shop.payment(&id).await.unwrap()["state"], "declined");
    assert_eq!(shop.reservation(&id).await.unwrap()["state"], "released");
    assert_eq!(shop.events("payments", PaymentCaptured::SUBJECT).await, 0);
    assert_eq!(shop.events("orders", OrderCancelled::SUBJECT).await, 1);
    eventually("the order-cancelled email is recorded", || async {
        !shop.emails(&id).await.is_empty()
    })
    .await;
    let email = &shop.emails(&id).await[0];
    assert_eq!(email["kind"], "order_cancelled");
    assert!(
        email["body"].as_str().unwrap().contains("declined"),
        "{email:#}"
    );
    // The cart is kept, so the customer can pay with another card.
    assert_eq!(shop.cart(&bob).await["lines"].as_array().unwrap().len(), 1);
    shop.shutdown().await;
}

async fn one_idempotency_key_makes_one_order_also_concurrently(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-MATCHA", "Ceremonial Matcha", 2900, 10)
        .await;
    let carol = shop.customer("carol").await;
    shop.add_to_cart(&carol, "TEA-MATCHA", 1).await;

    // Five at once with one key, then once more after it is done.
    let key = key();
    let answers =
        futures::future::join_all((0..5).map(|_| shop.checkout(&carol, &key, GOOD_CARD))).await;
    let mut ids = Vec::new();
    for response in answers {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!([200, 201, 202].contains(&status), "{status}: {body:#}");
        ids.push(body["order_id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one key, one order: {ids:?}");
    let order = shop.settled(&carol, &ids[0]).await;
    assert_eq!(order["state"], "completed");

    let again = json(shop.checkout(&carol, &key, GOOD_CARD).await, 200).await;
    assert_eq!(again["order_id"], ids[0].as_str());
    // The same key with another card is another request: refused, not a second order.
    let other = shop.checkout(&carol, &key, "5555 5555 5555 4444").await;
    let problem = assert_problem(other, 409).await;
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-reused")
    );

    assert_eq!(shop.orders_stored().await, 1);
    assert_eq!(shop.events("payments", PaymentCaptured::SUBJECT).await, 1);
    assert_eq!(shop.available("TEA-MATCHA").await, 9);
    shop.shutdown().await;
}

async fn twenty_checkouts_for_five_units_confirm_exactly_five(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-GYOKURO", "Gyokuro", 4200, 5).await;
    let mut customers = Vec::new();
    for n in 0..20 {
        let customer = shop.customer(&format!("buyer{n}")).await;
        shop.add_to_cart(&customer, "TEA-GYOKURO", 1).await;
        customers.push(customer);
    }
    let shop = &shop;
    let answers = futures::future::join_all(
        customers
            .iter()
            .map(|c| async move { (c, shop.checkout(c, &key(), GOOD_CARD).await) }),
    )
    .await;
    let mut confirmed = 0;
    let mut cancelled = 0;
    for (customer, response) in answers {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 201 || status == 202, "{status}: {body:#}");
        let order = shop
            .settled(customer, body["order_id"].as_str().unwrap())
            .await;
        match order["state"].as_str().unwrap() {
            "completed" => confirmed += 1,
            "cancelled" => {
                cancelled += 1;
                let reason = order["cancel_reason"].as_str().unwrap();
                assert!(reason.contains("could not be reserved"), "{reason}");
            }
            other => panic!("unexpected state {other}"),
        }
    }
    assert_eq!((confirmed, cancelled), (5, 15));
    assert_eq!(shop.available("TEA-GYOKURO").await, 0);
    assert_eq!(shop.events("payments", PaymentCaptured::SUBJECT).await, 5);
}
