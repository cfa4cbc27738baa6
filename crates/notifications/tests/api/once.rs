//! An event is delivered at least once and handled once: the same event twice writes one email,
//! and a refund that arrives before anything is known of its order waits for the order.

use nubo_notifications::events::Writer;
use nubo_notifications::metrics::NotificationMetrics;
use nubo_platform::both_modes;
use nubo_platform::events::consumer::{ConsumerRuntime, Outcome};
use nubo_platform::metrics::Metrics;

use crate::helpers::*;

both_modes!(
    the_same_event_twice_writes_one_email,
    a_refund_before_its_order_is_emailed_once_the_order_is_known,
);

async fn the_same_event_twice_writes_one_email(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("ivy@example.org");
    let envelope = shop.publish(&order.confirmed()).await;

    // A relay that published twice (it crashed before marking the event published).
    shop.publish_envelope(&envelope).await;
    // A later event on the same subject: once its email exists, the copy before it was seen.
    let later = Order::new("jon@example.org");
    let after = shop.publish(&later.confirmed()).await;
    shop.email_for(later.order_id, after.id).await;
    let first = shop.email_for(order.order_id, envelope.id).await;
    assert_eq!(shop.emails_about(order.order_id).await.len(), 1);

    // A consumer that handled it and died before its ack gets it again from the bus: stand in
    // for that redelivery by handing the envelope straight to the consumer.
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

    let emails = shop.emails_about(order.order_id).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["id"], first["id"]);
    assert_eq!(
        shop.metric(
            "nubo_notifications_messages_total",
            &[r#"kind="order_confirmed""#]
        )
        .await,
        2.0,
        "one email per order"
    );
    runtime.db.close().await;
    shop.shutdown().await;
}

async fn a_refund_before_its_order_is_emailed_once_the_order_is_known(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("kim@example.org");

    // The refund overtakes the order's events (they travel on other subjects).
    let refund = shop.publish(&order.refunded()).await;
    eventually("the refund was tried and put back", || async {
        shop.metric(
            "nubo_events_handled_total",
            &[
                r#"consumer="notifications-payments-refunded""#,
                r#"outcome="retry""#,
            ],
        )
        .await
            >= 1.0
    })
    .await;
    assert!(shop.emails_about(order.order_id).await.is_empty());

    shop.publish(&order.placed()).await;

    let email = shop.email_for(order.order_id, refund.id).await;
    assert_eq!(email["kind"], "payment_refunded");
    assert_eq!(email["to"], "kim@example.org");
    assert_eq!(shop.emails_about(order.order_id).await.len(), 1);
    shop.shutdown().await;
}
