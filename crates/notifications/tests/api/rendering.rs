//! Every event that concerns a customer writes one email to them, saying what happened in words
//! and money they can read, and naming the order by the number they quote.

use nubo_platform::both_modes;

use crate::helpers::*;

both_modes!(
    a_confirmed_order_gets_an_email_with_its_lines_and_total,
    a_cancelled_order_gets_an_email_with_the_reason,
    a_refund_gets_an_email_with_the_amount,
    a_placed_order_gets_no_email_of_its_own,
    an_order_without_a_number_is_named_by_its_id,
);

async fn a_confirmed_order_gets_an_email_with_its_lines_and_total(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("dana@example.org");

    let event = shop.publish(&order.confirmed()).await;

    let email = shop.email_for(order.order_id, event.id).await;
    assert_eq!(email["kind"], "order_confirmed");
    assert_eq!(email["to"], "dana@example.org");
    assert_eq!(email["user_id"], order.user_id.to_string());
    assert_eq!(email["channel"], "email");
    assert_eq!(
        email["subject"],
        format!("Your order {} is confirmed", order.number)
    );
    let body = email["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("Order: {}\n", order.number)),
        "{body}"
    );
    assert!(
        body.contains("  2 x Sencha green tea (TEA-SENCHA) at EUR 6.50 = EUR 13.00\n"),
        "{body}"
    );
    assert!(
        body.contains("  1 x Blue mug (MUG-BLUE) at EUR 8.40 = EUR 8.40\n"),
        "{body}"
    );
    assert!(body.contains("Total: EUR 21.40\n"), "{body}");
    let email = shop
        .email_in_status(email["id"].as_str().unwrap(), shop.delivered_status())
        .await;
    assert!(email["created_at"].is_string(), "{email}");
    assert_eq!(
        shop.metric(
            "nubo_notifications_messages_total",
            &[r#"kind="order_confirmed""#]
        )
        .await,
        1.0
    );
    shop.shutdown().await;
}

async fn a_cancelled_order_gets_an_email_with_the_reason(mode: TestMode) {
    let shop = start(mode).await;
    let paid = Order::new("erik@example.org");
    let unpaid = Order::new("fay@example.org");

    let refunded = shop
        .publish(&paid.cancelled("Blue mug is out of stock", true))
        .await;
    let not_charged = shop
        .publish(&unpaid.cancelled("Your card was declined", false))
        .await;

    let email = shop.email_for(paid.order_id, refunded.id).await;
    assert_eq!(email["kind"], "order_cancelled");
    assert_eq!(email["to"], "erik@example.org");
    assert_eq!(
        email["subject"],
        format!("Your order {} was cancelled", paid.number)
    );
    let body = email["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("your order {} was cancelled", paid.number)),
        "{body}"
    );
    assert!(body.contains("Why: Blue mug is out of stock\n"), "{body}");
    assert!(
        body.contains("The EUR 21.40 you paid goes back to your card"),
        "{body}"
    );

    let email = shop.email_for(unpaid.order_id, not_charged.id).await;
    assert_eq!(email["to"], "fay@example.org");
    let body = email["body"].as_str().unwrap();
    assert!(body.contains("Why: Your card was declined\n"), "{body}");
    assert!(body.contains("Nothing was charged to your card"), "{body}");
    shop.shutdown().await;
}

async fn a_refund_gets_an_email_with_the_amount(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("gus@example.org");
    shop.publish(&order.placed()).await;

    let mut refund = order.refunded();
    refund.amount = eur(1305);
    let event = shop.publish(&refund).await;

    let email = shop.email_for(order.order_id, event.id).await;
    assert_eq!(email["kind"], "payment_refunded");
    // A refund names only the order; the address comes from the order's own events.
    assert_eq!(email["to"], "gus@example.org");
    assert_eq!(email["user_id"], order.user_id.to_string());
    // So does the number the customer quotes.
    assert_eq!(
        email["subject"],
        format!("Your refund for order {}", order.number)
    );
    let body = email["body"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            "we refunded EUR 13.05 to your card for order {}.",
            order.number
        )),
        "{body}"
    );
    shop.shutdown().await;
}

async fn a_placed_order_gets_no_email_of_its_own(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("hana@example.org");

    shop.publish(&order.placed()).await;

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
    // The checkout may still fail: the customer hears from the shop once it is decided.
    assert_eq!(
        shop.emails_about(order.order_id).await,
        Vec::<serde_json::Value>::new()
    );
    shop.shutdown().await;
}

/// Events of orders placed before orders had numbers carry none: the email names the order by
/// its id, as it always did.
async fn an_order_without_a_number_is_named_by_its_id(mode: TestMode) {
    let shop = start(mode).await;
    let mut order = Order::new("ines@example.org");
    order.number = String::new();

    let confirmed = shop.publish(&order.confirmed()).await;
    shop.publish(&order.placed()).await;
    let refunded = shop.publish(&order.refunded()).await;

    let email = shop.email_for(order.order_id, confirmed.id).await;
    assert_eq!(
        email["subject"],
        format!("Your order {} is confirmed", order.order_id)
    );
    let body = email["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("Order: {}\n", order.order_id)),
        "{body}"
    );
    let email = shop.email_for(order.order_id, refunded.id).await;
    assert_eq!(
        email["subject"],
        format!("Your refund for order {}", order.order_id)
    );
    shop.shutdown().await;
}
