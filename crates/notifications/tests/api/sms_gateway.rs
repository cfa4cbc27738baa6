//! The simulated SMS gateway, the far side of the text messages: admins read back what it
//! received, and an operator can make it fail; a text waits out a gateway that is down and is
//! received once from a gateway that loses its answers.

use nubo_platform::both_modes;
use serde_json::{Value, json};

use crate::helpers::*;

both_modes!(
    only_admins_read_what_the_gateway_received,
    a_query_of_the_gateway_the_api_does_not_understand_is_a_problem,
    a_text_waits_out_a_gateway_that_is_down_or_loses_its_answers,
);

async fn only_admins_read_what_the_gateway_received(mode: TestMode) {
    let shop = start(mode).await;
    let query = "?to=%2B4915123456789";
    assert_problem(shop.sms_gateway_as(None, query).await, 401).await;
    assert_problem(shop.sms_gateway_as(Some("not-a-token"), query).await, 401).await;
    assert_problem(
        shop.sms_gateway_as(Some(&shop.customer_token), query).await,
        403,
    )
    .await;

    // Two customers, each texted once; each number sees its own.
    let ann = Order::with_phone("ann@example.org", "+4915100000001");
    let ben = Order::with_phone("ben@example.org", "+4915100000002");
    for order in [&ann, &ben] {
        let event = shop.publish(&order.confirmed()).await;
        let text = shop.text_for(order.order_id, event.id).await;
        shop.email_in_status(text["id"].as_str().unwrap(), "sent")
            .await;
    }
    let admin = Some(shop.admin_token.as_str());
    for (query, number) in [
        ("?to=%2B4915100000001", "+4915100000001"),
        // A `+` sent unencoded arrives as a space, and is read as the `+` it was meant to be.
        ("?to=+4915100000002", "+4915100000002"),
    ] {
        let response = shop.sms_gateway_as(admin, query).await;
        assert_eq!(response.status(), 200, "{query}");
        let page: Value = response.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{query}: {page}");
        assert_eq!(items[0]["to"], number);
        assert!(
            items[0]["provider_id"].as_str().unwrap().starts_with("SM"),
            "{page}"
        );
    }
    let everything: Value = shop
        .sms_gateway_as(admin, "?limit=10")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(everything["items"].as_array().unwrap().len(), 2);
    let newest_first: Value = shop
        .sms_gateway_as(admin, "?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(newest_first["items"][0]["to"], "+4915100000002");
    shop.shutdown().await;
}

async fn a_query_of_the_gateway_the_api_does_not_understand_is_a_problem(mode: TestMode) {
    let shop = start(mode).await;
    let admin = Some(shop.admin_token.as_str());
    for (query, field) in [
        ("?to=015112345678", "to"),
        ("?to=%2B49", "to"),
        ("?to=%2B49abc", "to"),
        ("?to=", "to"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
    ] {
        let body = assert_problem(shop.sms_gateway_as(admin, query).await, 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    for query in ["?limit=many", "?phone=%2B4915123456789"] {
        assert_problem(shop.sms_gateway_as(admin, query).await, 400).await;
    }
    shop.shutdown().await;
}

/// The gateway refuses every call for a while, then takes the text and loses every answer: the
/// sender keeps trying under the same key, and once answers come through the customer has had
/// one text.
async fn a_text_waits_out_a_gateway_that_is_down_or_loses_its_answers(mode: TestMode) {
    let shop = start(mode).await;
    shop.set_knobs(json!({ "sms_failure_rate": 1.0 })).await;
    let order = Order::with_phone("cleo@example.org", "+447700900123");

    let event = shop.publish(&order.confirmed()).await;

    let text = shop.text_for(order.order_id, event.id).await;
    let id = text["id"].as_str().unwrap().to_owned();
    let text_now = || async {
        let response = shop.get_as(Some(&shop.admin_token), &id).await;
        response.json::<Value>().await.unwrap()
    };
    eventually("the gateway refused the text", || async {
        text_now().await["attempts"].as_u64() >= Some(1)
    })
    .await;
    let waiting = text_now().await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert!(
        waiting["last_error"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{waiting}"
    );
    assert!(shop.texts_received("+447700900123").await.is_empty());

    shop.set_knobs(json!({ "sms_lost_answer_rate": 1.0 })).await;
    eventually("the gateway took the text and lost its answer", || async {
        let text = text_now().await;
        text["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("answer was lost"))
    })
    .await;
    assert_eq!(text_now().await["status"], "pending");
    assert_eq!(shop.texts_received("+447700900123").await.len(), 1);

    shop.set_knobs(json!({})).await;
    let sent = shop.email_in_status(&id, "sent").await;
    assert!(sent["attempts"].as_u64().unwrap() >= 3, "{sent}");
    assert!(sent.get("last_error").is_none(), "{sent}");
    let received = shop.texts_received("+447700900123").await;
    assert_eq!(received.len(), 1, "texted twice: {received:?}");
    assert_eq!(received[0]["provider_id"], sent["provider_id"]);
    assert!(
        shop.metric("nubo_notifications_sms_sent_total", &[r#"outcome="retry""#])
            .await
            >= 2.0
    );
    shop.shutdown().await;
}
