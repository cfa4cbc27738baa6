//! A payment left pending by an authorizer that died mid-call (found by `nubo chaos`): the
//! checkout it belongs to must still be undone.

use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use serde_json::Value;

use crate::helpers::*;

both_modes!(a_cancelled_checkout_whose_payment_was_left_pending_ends_voided);

async fn a_cancelled_checkout_whose_payment_was_left_pending_ends_voided(mode: TestMode) {
    let mut shop = start_with(mode, &[("NUBO_ORDERS_CHECKOUT_WAIT_MS", "1")]).await;
    shop.product("TEA-GABA", "Gaba Oolong", 1200, 3).await;
    let kim = shop.customer("kim").await;
    shop.add_to_cart(&kim, "TEA-GABA", 1).await;
    // Payments is down, so the saga waits to authorize.
    shop.system.stop("payments").await.unwrap();
    let order = json(shop.checkout(&kim, &key(), GOOD_CARD).await, 202).await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    eventually("the saga waits on payments", || async {
        let order: Value = shop.order(&kim, &id).await.json().await.unwrap();
        steps(&order).contains(&"authorize_payment:retrying".to_owned())
    })
    .await;
    // What an authorizer that died mid-call leaves: a pending row, untouched for minutes.
    let db = shop.system.db("payments").await;
    let order_id: nubo_platform::uuid::Uuid = id.parse().unwrap();
    let long_ago = nubo_platform::chrono::Utc::now() - nubo_platform::chrono::TimeDelta::minutes(5);
    nubo_platform::with_db!(&db, pool => nubo_platform::sqlx::query(
        "INSERT INTO payments (id, state, amount_minor, currency, card_last4, card_brand, \
         created_at, updated_at) VALUES ($1, 'pending', 1200, 'EUR', '4242', 'visa', $2, $2)"
    )
    .bind(order_id)
    .bind(long_ago)
    .execute(pool)
    .await
    .map(|_| ()))
    .unwrap();
    db.close().await;
    // An operator cancels it, and payments comes back.
    let cancelled = shop
        .http
        .post(shop.api(&format!("/admin/orders/{id}/cancel")))
        .bearer_auth(&shop.admin.token)
        .json(&serde_json::json!({ "reason": "the customer called" }))
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    shop.system.restart("payments").await;

    let order = shop.settled(&kim, &id).await;
    assert_eq!(order["state"], "cancelled", "{order:#}");
    assert!(
        steps(&order).contains(&"void_payment:done".to_owned()),
        "{order:#}"
    );
    assert_eq!(shop.payment(&id).await.unwrap()["state"], "voided");
    assert_eq!(shop.available("TEA-GABA").await, 3);
    shop.shutdown().await;
}
