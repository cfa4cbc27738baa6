use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use serde_json::{Value, json};

use crate::helpers::*;

both_modes!(bad_input_gets_a_problem_and_changes_nothing);

async fn bad_input_gets_a_problem_and_changes_nothing(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-HOJICHA", "Hojicha", 950, 5).await;
    let hana = shop.customer("hana").await;

    // An empty cart cannot be checked out: the request is good, the cart's state refuses it.
    let empty = assert_problem(shop.checkout(&hana, &key(), GOOD_CARD).await, 409).await;
    assert!(
        empty["type"].as_str().unwrap().ends_with("empty-cart"),
        "{empty:#}"
    );

    // Quantities out of range and unknown SKUs never reach the cart.
    for body in [
        json!({ "sku": "TEA-HOJICHA", "quantity": -1 }),
        json!({ "sku": "TEA-HOJICHA", "quantity": 0 }),
        json!({ "sku": "TEA-HOJICHA", "quantity": 1_000_000_000_000i64 }),
        json!({ "sku": "TEA-NOPE", "quantity": 1 }),
        json!({ "sku": "not a sku!", "quantity": 1 }),
    ] {
        let response = shop
            .http
            .post(shop.api("/cart/lines"))
            .bearer_auth(&hana.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!([404, 422].contains(&status), "{body}: {status}");
        assert_problem(response, status).await;
    }
    assert!(
        shop.cart(&hana).await["lines"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    shop.add_to_cart(&hana, "TEA-HOJICHA", 2).await;

    let checkout = |headers: Vec<(&'static str, String)>, body: Value| {
        let mut request = shop
            .http
            .post(shop.api("/checkout"))
            .bearer_auth(&hana.token);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.json(&body).send()
    };
    // No idempotency key, or a bad one.
    let missing = checkout(vec![], card_body(GOOD_CARD)).await.unwrap();
    let problem = assert_problem(missing, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    for bad in ["".to_owned(), "k".repeat(201), "two words".to_owned()] {
        let response = checkout(vec![("idempotency-key", bad.clone())], card_body(GOOD_CARD))
            .await
            .unwrap();
        assert_problem(response, 400).await;
    }
    // A card that fails its checks, every bad field named at once.
    let bad_card = checkout(
        vec![("idempotency-key", key())],
        json!({ "card": { "number": "4242424242424241", "expiry_month": 13, "expiry_year": 2035, "cvc": "1" } }),
    )
    .await
    .unwrap();
    let problem = assert_problem(bad_card, 422).await;
    assert_eq!(problem_fields(&problem), ["card.expiry_month", "card.cvc"]);
    // A well-formed card that cannot pay (its check digit, its expiry) is refused with 402,
    // naming the field, before anything is ordered.
    for (card, field) in [
        (
            json!({ "number": "4242424242424241", "expiry_month": 1, "expiry_year": 2035, "cvc": "123" }),
            "card.number",
        ),
        (
            json!({ "number": GOOD_CARD, "expiry_month": 1, "expiry_year": 2001, "cvc": "123" }),
            "card.expiry_year",
        ),
    ] {
        let refused = checkout(vec![("idempotency-key", key())], json!({ "card": card }))
            .await
            .unwrap();
        let problem = assert_problem(refused, 402).await;
        assert!(
            problem["type"].as_str().unwrap().ends_with("card-refused"),
            "{problem:#}"
        );
        assert_eq!(problem_fields(&problem), [field]);
    }
    // Not the expected shape.
    for body in [
        json!({}),
        json!({ "card": "4242" }),
        json!({ "card": { "number": GOOD_CARD }, "extra": 1 }),
    ] {
        let response = checkout(vec![("idempotency-key", key())], body.clone())
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!([400, 422].contains(&status), "{body}: {status}");
        assert_problem(response, status).await;
    }
    // Malformed order ids and query values.
    assert_problem(shop.order(&hana, "not-a-uuid").await, 400).await;
    for query in ["limit=0", "limit=101", "status=lost", "before=yesterday"] {
        let response = shop
            .http
            .get(shop.api(&format!("/orders?{query}")))
            .bearer_auth(&hana.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!([400, 422].contains(&status), "{query}: {status}");
        assert_problem(response, status).await;
    }

    // None of it placed an order, held stock or emptied the cart.
    assert_eq!(shop.orders_stored().await, 0);
    assert_eq!(shop.available("TEA-HOJICHA").await, 5);
    assert_eq!(shop.cart(&hana).await["lines"][0]["quantity"], 2);

    // And the shop still works for the same customer.
    let order = shop.checked_out(&hana, &key(), GOOD_CARD).await;
    assert_eq!(order["status"], "confirmed");
    shop.shutdown().await;
}
