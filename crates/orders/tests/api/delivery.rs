//! A checkout a real shop has: how to reach the customer, where the order goes and what that
//! costs, and the short number the customer quotes.

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use serde_json::{Value, json};

use crate::helpers::*;

both_modes!(
    a_shipped_order_costs_its_delivery_and_is_found_by_its_number,
    bad_delivery_details_are_named_and_order_nothing,
);

fn details(card: &str, option: &str, postal_code: &str, phone: &str) -> Value {
    let mut body = card_body(card);
    body["contact"] = json!({ "email": "ada@example.com", "phone": phone });
    body["shipping"] = json!({
        "option": option,
        "address": { "name": "Ada Lovelace", "line1": "Unter den Linden 1", "line2": "",
                     "city": "Berlin", "postal_code": postal_code, "country": "DE" },
    });
    body
}

async fn place(shop: &Shop, user: &User, body: &Value) -> reqwest::Response {
    shop.http
        .post(shop.api("/checkout"))
        .bearer_auth(&user.token)
        .header("idempotency-key", key())
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn a_shipped_order_costs_its_delivery_and_is_found_by_its_number(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-ASSAM", "Assam", 1250, 10).await;
    let ada = shop.customer("ada").await;

    let options = json(
        shop.http
            .get(shop.api("/checkout/shipping-options"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(options["options"][0]["id"], "standard");
    assert!(
        options["countries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "DE")
    );

    shop.add_to_cart(&ada, "TEA-ASSAM", 2).await;
    let answer = place(
        &shop,
        &ada,
        &details(GOOD_CARD, "standard", "10115", "+49 151 2345 6789"),
    )
    .await;
    let status = answer.status().as_u16();
    let placed = json(answer, if status == 202 { 202 } else { 201 }).await;
    let number = placed["number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("NB-") && number.len() == 11, "{number}");

    let order = shop.settled(&ada, &number).await;
    assert_eq!(order["order_id"], placed["order_id"]);
    assert_eq!(order["status"], "confirmed");
    // 25.00 of tea is under the 50.00 from which standard delivery is free.
    assert_eq!(order["items_total"]["amount_minor"], 2500);
    assert_eq!(order["shipping"]["price"]["amount_minor"], 490);
    assert_eq!(order["total"]["amount_minor"], 2990);
    assert_eq!(order["shipping"]["address"]["city"], "Berlin");
    assert_eq!(
        order["contact"],
        json!({ "email": "ada@example.com", "phone": "+4915123456789" })
    );
    assert_eq!(
        order["message"],
        "Your order is confirmed and will be sent to Ada Lovelace, Berlin."
    );
    assert_eq!(order["slow"], false);
    // What was charged is the total with its delivery.
    let payment = shop
        .payment(order["order_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(payment["amount"]["amount_minor"], 2990, "{payment:#}");

    // Another customer cannot find it by its number either.
    let eve = shop.customer("eve").await;
    assert_eq!(shop.order(&eve, &number).await.status(), 404);
    assert_eq!(shop.order(&ada, "NB-00000000").await.status(), 404);

    // A declined card: the customer reads their bank's answer, not a service's.
    shop.add_to_cart(&ada, "TEA-ASSAM", 1).await;
    let answer = place(&shop, &ada, &details(DECLINED_CARD, "express", "10115", "")).await;
    let declined = json(answer, 201).await;
    let declined = shop
        .settled(&ada, declined["number"].as_str().unwrap())
        .await;
    assert_eq!(declined["status"], "cancelled");
    let message = declined["message"].as_str().unwrap();
    assert!(
        message.starts_with("Your order was cancelled: your card was declined"),
        "{message}"
    );
    assert!(
        !message.contains("payments") && !message.contains("_"),
        "{message}"
    );
    assert_eq!(declined["contact"]["phone"], Value::Null);
    shop.shutdown().await;
}

async fn bad_delivery_details_are_named_and_order_nothing(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-ASSAM", "Assam", 1250, 10).await;
    let ada = shop.customer("ada").await;
    shop.add_to_cart(&ada, "TEA-ASSAM", 1).await;

    let mut bad = details(GOOD_CARD, "standard", "1011", "0151 2345");
    bad["contact"]["email"] = json!("not an address");
    bad["shipping"]["address"]["name"] = json!("  ");
    let problem = json(place(&shop, &ada, &bad).await, 422).await;
    assert_eq!(
        problem_fields(&problem),
        [
            "contact.email",
            "contact.phone",
            "shipping.address.name",
            "shipping.address.postal_code"
        ]
    );
    // A mistyped card and a bad postal code are named together.
    let problem = json(
        place(&shop, &ada, &details("not a card", "standard", "1011", "")).await,
        422,
    )
    .await;
    assert_eq!(
        problem_fields(&problem),
        ["card.number", "shipping.address.postal_code"]
    );
    let problem = json(
        place(&shop, &ada, &details(GOOD_CARD, "drone", "10115", "")).await,
        422,
    )
    .await;
    assert_eq!(problem_fields(&problem), ["shipping.option"]);
    let mut elsewhere = details(GOOD_CARD, "standard", "10115", "");
    elsewhere["shipping"]["address"]["country"] = json!("ZZ");
    let problem = json(place(&shop, &ada, &elsewhere).await, 422).await;
    assert_eq!(problem_fields(&problem), ["shipping.address.country"]);
    let mut unknown = details(GOOD_CARD, "standard", "10115", "");
    unknown["shipping"]["address"]["planet"] = json!("Mars");
    let status = place(&shop, &ada, &unknown).await.status().as_u16();
    assert!([400, 422].contains(&status), "{status}");

    assert_eq!(shop.orders_stored().await, 0);
    assert_eq!(shop.cart(&ada).await["lines"].as_array().unwrap().len(), 1);
    shop.shutdown().await;
}
