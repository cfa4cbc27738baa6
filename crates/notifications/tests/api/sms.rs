//! Customers who gave a mobile number at checkout get a text beside the email when their order is
//! confirmed or cancelled: one text per event, however often the event is delivered and however
//! often the sender hands it to the SMS gateway. Customers who gave none get the email only.

use nubo_notifications::events::Writer;
use nubo_notifications::metrics::NotificationMetrics;
use nubo_platform::both_modes;
use nubo_platform::events::consumer::{ConsumerRuntime, Outcome};
use nubo_platform::metrics::Metrics;
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db};

use crate::helpers::*;

both_modes!(
    a_confirmed_order_is_texted_once_however_often_its_event_comes,
    a_text_sent_again_after_a_crash_is_received_once,
    a_customer_without_a_mobile_number_gets_the_email_only,
    a_cancelled_order_is_texted_the_reason,
    a_text_to_a_number_that_is_not_one_fails_for_admins_to_see,
    admins_see_which_channel_each_message_took,
);

const MOBILE: &str = "+4915123456789";

/// Waits until the text `id` is `sent`, and returns it.
async fn sent_text(shop: &Shop, id: &str) -> serde_json::Value {
    shop.email_in_status(id, "sent").await
}

async fn a_confirmed_order_is_texted_once_however_often_its_event_comes(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::with_phone("lina@example.org", MOBILE);
    let envelope = shop.publish(&order.confirmed()).await;

    // A relay that published twice, then a consumer that handled it and died before its ack.
    shop.publish_envelope(&envelope).await;
    let later = Order::new("milo@example.org");
    let after = shop.publish(&later.confirmed()).await;
    shop.email_for(later.order_id, after.id).await;
    let metrics = Metrics::new("notifications");
    let writer = Writer {
        sending: shop.sends(),
        metrics: NotificationMetrics::register(&metrics),
    };
    let consumer = nubo_notifications::consumers(writer)
        .into_iter()
        .find(|c| c.name == nubo_notifications::ORDERS_CONFIRMED_CONSUMER)
        .unwrap();
    let settings = shop.system.settings();
    let runtime = ConsumerRuntime {
        consumer,
        db: shop.system.db("notifications").await,
        bus: shop.bus.clone(),
        max_attempts: settings.event_max_attempts,
        ack_wait: settings.event_ack_wait,
        metrics,
    };
    assert_eq!(runtime.process(&envelope, 2).await, Outcome::Duplicate);
    runtime.db.close().await;

    let text = shop.text_for(order.order_id, envelope.id).await;
    let text = sent_text(&shop, text["id"].as_str().unwrap()).await;
    assert_eq!(text["channel"], "sms");
    assert_eq!(text["kind"], "order_confirmed");
    assert_eq!(text["to"], MOBILE);
    assert_eq!(text["subject"], "");
    assert_eq!(text["attempts"], 1);
    let body = text["body"].as_str().unwrap();
    assert_eq!(
        body,
        format!(
            "nubo shop: order {} is confirmed, EUR 21.40. Thank you! We're getting it ready.",
            order.number
        )
    );
    assert!(body.chars().count() <= 160);

    // The gateway received it once, under the message's id, and named it as the row says.
    let received = shop.texts_received(MOBILE).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["key"], text["id"]);
    assert_eq!(received[0]["body"], body);
    assert_eq!(received[0]["to"], MOBILE);
    assert_eq!(received[0]["provider_id"], text["provider_id"]);
    assert!(received[0]["received_at"].is_string());
    assert_eq!(shop.messages_about(order.order_id, "sms").await.len(), 1);
    assert_eq!(shop.messages_about(order.order_id, "email").await.len(), 1);
    assert_eq!(
        shop.metric(
            "nubo_notifications_sms_messages_total",
            &[r#"kind="order_confirmed""#]
        )
        .await,
        1.0
    );
    assert_eq!(
        shop.metric("nubo_notifications_sms_sent_total", &[r#"outcome="sent""#])
            .await,
        1.0
    );
    shop.shutdown().await;
}

/// A sender that crashed after the gateway took the text, before it marked the text sent, leaves
/// the text to be sent again: under the same key, the gateway takes it once.
async fn a_text_sent_again_after_a_crash_is_received_once(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::with_phone("nell@example.org", MOBILE);
    let event = shop.publish(&order.confirmed()).await;
    let text = shop.text_for(order.order_id, event.id).await;
    let id = text["id"].as_str().unwrap().to_owned();
    let first = sent_text(&shop, &id).await;

    // Stand in for the crash: the row is pending and due again, as if never marked.
    let db = shop.system.db("notifications").await;
    let row: Uuid = id.parse().unwrap();
    let now = nubo_platform::clock::now();
    let sql = "UPDATE notifications SET status = 'pending', next_attempt_at = $2, sent_at = NULL, \
               provider_id = NULL WHERE id = $1";
    with_db!(&db, pool => sqlx::query(sql)
        .bind(row)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();

    eventually("the text is sent a second time", || async {
        let response = shop.get_as(Some(&shop.admin_token), &id).await;
        let text: serde_json::Value = response.json().await.unwrap();
        text["status"] == "sent" && text["attempts"] == 2
    })
    .await;
    let second = sent_text(&shop, &id).await;
    assert_eq!(second["provider_id"], first["provider_id"]);
    let received = shop.texts_received(MOBILE).await;
    assert_eq!(received.len(), 1, "received twice: {received:?}");

    // And a second replica that sends it at the same time as the first, straight to the far
    // side under the same key, gets the same answer; another text under that key is refused.
    use nubo_notifications::sms::gateway::{Sms, SmsError, SmsGateway};
    let gateway = nubo_notifications::sms::simulated::SimulatedGateway::new(db.clone(), None);
    let mut sms = Sms {
        idempotency_key: id.clone(),
        to: MOBILE.parse().unwrap(),
        body: first["body"].as_str().unwrap().to_owned(),
    };
    let answer = gateway.send(&sms).await.unwrap();
    assert_eq!(first["provider_id"], answer.0);
    sms.body.push_str(" (changed)");
    let refused = gateway.send(&sms).await.unwrap_err();
    assert!(matches!(refused, SmsError::Permanent(_)), "{refused:?}");
    assert_eq!(shop.texts_received(MOBILE).await.len(), 1);
    db.close().await;
    shop.shutdown().await;
}

async fn a_customer_without_a_mobile_number_gets_the_email_only(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("olga@example.org");
    let texted = Order::with_phone("pete@example.org", MOBILE);

    // A placed order is texted nothing, even with a mobile number: the checkout may still fail.
    shop.publish(&texted.placed()).await;
    let event = shop.publish(&order.confirmed()).await;
    let cancelled = shop.publish(&order.cancelled("Out of stock", false)).await;

    let email = shop.email_for(order.order_id, event.id).await;
    shop.email_in_status(email["id"].as_str().unwrap(), shop.delivered_status())
        .await;
    shop.email_for(order.order_id, cancelled.id).await;
    // The text would have been written with the email, in one transaction.
    assert_eq!(
        shop.messages_about(order.order_id, "sms").await,
        Vec::<serde_json::Value>::new()
    );
    eventually("the placement is handled", || async {
        shop.metric(
            "nubo_events_handled_total",
            &[
                r#"consumer="notifications-orders-placed""#,
                r#"outcome="handled""#,
            ],
        )
        .await
            == 1.0
    })
    .await;
    assert_eq!(
        shop.messages_about(texted.order_id, "sms").await,
        Vec::<serde_json::Value>::new()
    );
    let page = shop
        .sms_gateway_as(Some(&shop.admin_token), "")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
    assert_eq!(
        shop.metric(
            "nubo_notifications_sms_messages_total",
            &[r#"kind="order_confirmed""#]
        )
        .await,
        0.0
    );
    shop.shutdown().await;
}

async fn a_cancelled_order_is_texted_the_reason(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::with_phone("quin@example.org", "+33612345678");

    let event = shop
        .publish(&order.cancelled("Blue mug is out of stock", true))
        .await;

    let text = shop.text_for(order.order_id, event.id).await;
    assert_eq!(text["kind"], "order_cancelled");
    let text = sent_text(&shop, text["id"].as_str().unwrap()).await;
    let expected = format!(
        "nubo shop: order {} was cancelled: Blue mug is out of stock. The EUR 21.40 you paid \
         goes back to your card.",
        order.number
    );
    assert_eq!(text["body"], expected);
    let received = shop.texts_received("+33612345678").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["body"], expected);
    // The email says it too.
    let email = shop.email_for(order.order_id, event.id).await;
    assert!(
        email["body"]
            .as_str()
            .unwrap()
            .contains("Why: Blue mug is out of stock\n")
    );
    assert_eq!(
        shop.metric(
            "nubo_notifications_sms_messages_total",
            &[r#"kind="order_cancelled""#]
        )
        .await,
        1.0
    );
    shop.shutdown().await;
}

async fn a_text_to_a_number_that_is_not_one_fails_for_admins_to_see(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::with_phone("rosa@example.org", "0151 2345");

    let event = shop.publish(&order.confirmed()).await;

    let text = shop.text_for(order.order_id, event.id).await;
    let failed = shop
        .email_in_status(text["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(failed["attempts"], 1, "no retry can help: {failed}");
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains("E.164"), "{error}");
    assert!(failed.get("provider_id").is_none(), "{failed}");
    assert_eq!(
        shop.metric(
            "nubo_notifications_sms_sent_total",
            &[r#"outcome="failed""#]
        )
        .await,
        1.0
    );
    // The email is not held up by it.
    let email = shop.email_for(order.order_id, event.id).await;
    shop.email_in_status(email["id"].as_str().unwrap(), shop.delivered_status())
        .await;
    shop.shutdown().await;
}

async fn admins_see_which_channel_each_message_took(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::with_phone("sven@example.org", MOBILE);
    let event = shop.publish(&order.confirmed()).await;
    let text = shop.text_for(order.order_id, event.id).await;
    sent_text(&shop, text["id"].as_str().unwrap()).await;
    let email = shop.email_for(order.order_id, event.id).await;

    let all = shop.list(&format!("?order_id={}", order.order_id)).await;
    let mut channels: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    channels.sort();
    assert_eq!(channels, ["email", "sms"], "{all}");
    let texts = shop.list("?channel=sms").await;
    assert_eq!(texts["items"].as_array().unwrap().len(), 1);
    assert_eq!(texts["items"][0]["id"], text["id"]);
    assert_eq!(texts["items"][0]["to"], MOBILE);
    assert!(texts["items"][0]["provider_id"].is_string());
    let emails = shop.list("?channel=email&kind=order_confirmed").await;
    assert_eq!(emails["items"].as_array().unwrap().len(), 1);
    assert_eq!(emails["items"][0]["id"], email["id"]);
    assert!(emails["items"][0].get("provider_id").is_none());

    let admin = Some(shop.admin_token.as_str());
    let body = assert_problem(shop.list_as(admin, "?channel=fax").await, 422).await;
    assert_eq!(body["errors"][0]["field"], "channel", "{body}");
    assert_eq!(
        body["errors"][0]["message"], "must be one of email, sms",
        "{body}"
    );
    shop.shutdown().await;
}
