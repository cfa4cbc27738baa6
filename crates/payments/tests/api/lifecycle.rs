//! A checkout's payment from authorization to capture, void or refund, with retries and races.

use futures::future::join_all;
use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use nubo_platform::uuid::Uuid;

use crate::helpers::{GOOD_CARD, assert_problem, json, start};

both_modes!(
    a_paid_order_is_authorized_captured_and_refunded,
    a_declined_card_tells_the_customer_why,
    the_same_payment_sent_twice_is_authorized_once,
    a_voided_payment_cannot_be_captured_nor_a_captured_one_voided,
    ten_concurrent_captures_take_the_money_once,
    a_payment_its_authorizer_left_pending_is_voided_once_it_is_stale,
    only_an_admin_looks_payments_up,
);

async fn a_paid_order_is_authorized_captured_and_refunded(mode: TestMode) {
    let shop = start(mode).await;
    let id = Uuid::now_v7();
    let response = shop.authorize(id, 4500, GOOD_CARD).await;
    assert_eq!(
        response.headers()["location"],
        format!("/internal/v1/payments/{id}")
    );
    let authorized = json(response, 201).await;
    assert_eq!(authorized["state"], "authorized");
    assert_eq!(authorized["payment_id"], id.to_string());
    assert_eq!(authorized["amount"]["amount_minor"], 4500);
    assert_eq!(authorized["amount"]["currency"], "EUR");
    assert_eq!(authorized["card_last4"], "4242");
    assert_eq!(authorized["card_brand"], "visa");
    assert!(authorized.get("decline_reason").is_none(), "{authorized}");
    assert!(shop.captured_events().await.is_empty(), "nothing taken yet");

    for _ in 0..2 {
        let captured = json(shop.step(id, "capture").await, 200).await;
        assert_eq!(captured["state"], "captured");
    }
    let events = shop.captured_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payment_id"], id.to_string());
    assert_eq!(events[0]["amount"]["amount_minor"], 4500);
    assert_eq!(events[0]["amount"]["currency"], "EUR");

    // The customer returns the goods.
    for _ in 0..2 {
        let refunded = json(shop.step(id, "refund").await, 200).await;
        assert_eq!(refunded["state"], "refunded");
    }
    let events = shop.refunded_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payment_id"], id.to_string());
    assert_eq!(events[0]["amount"]["amount_minor"], 4500);
    let stored = json(shop.payment(id).await, 200).await;
    assert_eq!(stored["state"], "refunded");
    assert_problem(shop.step(id, "capture").await, 409).await;
    assert_problem(shop.step(Uuid::now_v7(), "capture").await, 404).await;
    assert_problem(shop.payment(Uuid::now_v7()).await, 404).await;
    shop.shutdown().await;
}

async fn a_declined_card_tells_the_customer_why(mode: TestMode) {
    let shop = start(mode).await;
    for (card, reason) in [
        ("4000000000000002", "the card was declined"),
        ("4000000000009995", "insufficient funds"),
    ] {
        let id = Uuid::now_v7();
        let declined = json(shop.authorize(id, 1200, card).await, 201).await;
        assert_eq!(declined["state"], "declined", "{card}");
        assert_eq!(declined["decline_reason"], reason);
        assert_eq!(declined["card_last4"], &card[12..]);
        // Asking again gives the same answer, and a declined payment cannot be captured.
        let again = json(shop.authorize(id, 1200, card).await, 200).await;
        assert_eq!(again, declined);
        let refused = assert_problem(shop.step(id, "capture").await, 409).await;
        assert!(
            refused["detail"].as_str().unwrap().contains("declined"),
            "{refused}"
        );
    }
    assert!(shop.captured_events().await.is_empty());
    shop.shutdown().await;
}

async fn the_same_payment_sent_twice_is_authorized_once(mode: TestMode) {
    let shop = start(mode).await;
    let id = Uuid::now_v7();
    let first = json(shop.authorize(id, 999, GOOD_CARD).await, 201).await;
    let again = json(shop.authorize(id, 999, GOOD_CARD).await, 200).await;
    assert_eq!(
        first, again,
        "the stored payment, the provider not asked again"
    );
    let different = assert_problem(shop.authorize(id, 1000, GOOD_CARD).await, 409).await;
    assert!(
        different["detail"].as_str().unwrap().contains("amount"),
        "{different}"
    );

    // A retrying client and its original request, arriving together.
    let racing = Uuid::now_v7();
    let answers: Vec<(u16, String)> = join_all((0..8).map(|_| async {
        let response = shop.authorize(racing, 2500, GOOD_CARD).await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, body["created_at"].to_string())
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
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
    assert!(answers.iter().all(|(_, created)| *created == answers[0].1));
    assert_eq!(shop.payments_count().await, 2);
    assert_eq!(
        shop.stored_state(racing).await.as_deref(),
        Some("authorized")
    );
    shop.shutdown().await;
}

async fn a_voided_payment_cannot_be_captured_nor_a_captured_one_voided(mode: TestMode) {
    let shop = start(mode).await;
    let cancelled = Uuid::now_v7();
    assert_eq!(
        shop.authorize(cancelled, 300, GOOD_CARD).await.status(),
        201
    );
    for _ in 0..2 {
        assert_eq!(
            json(shop.step(cancelled, "void").await, 200).await["state"],
            "voided"
        );
    }
    let refused = assert_problem(shop.step(cancelled, "capture").await, 409).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("voided"),
        "{refused}"
    );
    assert_problem(shop.step(cancelled, "refund").await, 409).await;

    let paid = Uuid::now_v7();
    assert_eq!(shop.authorize(paid, 300, GOOD_CARD).await.status(), 201);
    let not_yet = assert_problem(shop.step(paid, "refund").await, 409).await;
    assert!(
        not_yet["detail"]
            .as_str()
            .unwrap()
            .contains("void it instead"),
        "{not_yet}"
    );
    assert_eq!(
        json(shop.step(paid, "capture").await, 200).await["state"],
        "captured"
    );
    let refused = assert_problem(shop.step(paid, "void").await, 409).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("refund it instead"),
        "{refused}"
    );
    assert_eq!(shop.stored_state(paid).await.as_deref(), Some("captured"));
    assert_eq!(
        shop.stored_state(cancelled).await.as_deref(),
        Some("voided")
    );
    assert_eq!(shop.captured_events().await.len(), 1);
    shop.shutdown().await;
}

async fn ten_concurrent_captures_take_the_money_once(mode: TestMode) {
    let shop = start(mode).await;
    let id = Uuid::now_v7();
    assert_eq!(shop.authorize(id, 7700, GOOD_CARD).await.status(), 201);
    let statuses: Vec<u16> =
        join_all((0..10).map(|_| async { shop.step(id, "capture").await.status().as_u16() })).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let events = shop.captured_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payment_id"], id.to_string());
    shop.shutdown().await;
}

/// A pending row as an authorizer leaves it when it dies mid-call (a crash, a lost database),
/// last touched `age` ago.
async fn abandoned(shop: &crate::helpers::Shop, age: nubo_platform::chrono::TimeDelta) -> Uuid {
    let id = Uuid::now_v7();
    let at = nubo_platform::chrono::Utc::now() - age;
    let sql = "INSERT INTO payments (id, state, amount_minor, currency, card_last4, card_brand, \
               created_at, updated_at) VALUES ($1, 'pending', 900, 'EUR', '4242', 'visa', $2, $2)";
    nubo_platform::with_db!(&shop.db, pool => nubo_platform::sqlx::query(sql)
        .bind(id)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();
    id
}

async fn a_payment_its_authorizer_left_pending_is_voided_once_it_is_stale(mode: TestMode) {
    // A chaos run found it: orders' replica died holding the card, payments' authorizer died
    // mid-call; nobody would ever settle the row, so the checkout could not be undone.
    use nubo_platform::chrono::TimeDelta;
    let shop = start(mode).await;
    // Still within the provider's deadline: its authorizer may yet answer.
    let fresh = abandoned(&shop, TimeDelta::zero()).await;
    let busy = assert_problem(shop.step(fresh, "void").await, 503).await;
    assert!(
        busy["detail"]
            .as_str()
            .unwrap()
            .contains("being authorized"),
        "{busy}"
    );
    assert_eq!(shop.stored_state(fresh).await.as_deref(), Some("pending"));
    // Long past it: the void goes through, once, and nothing can capture it after.
    let stale = abandoned(&shop, TimeDelta::minutes(5)).await;
    for _ in 0..2 {
        assert_eq!(
            json(shop.step(stale, "void").await, 200).await["state"],
            "voided"
        );
    }
    assert_problem(shop.step(stale, "capture").await, 409).await;
    assert_eq!(shop.stored_state(stale).await.as_deref(), Some("voided"));
    // A capture of an abandoned payment is still refused: only an undo may settle it.
    let other = abandoned(&shop, TimeDelta::minutes(5)).await;
    assert_problem(shop.step(other, "capture").await, 503).await;
    shop.shutdown().await;
}

async fn only_an_admin_looks_payments_up(mode: TestMode) {
    let shop = start(mode).await;
    let id = Uuid::now_v7();
    let authorized = json(shop.authorize(id, 100, GOOD_CARD).await, 201).await;
    let seen = json(shop.admin_payment(Some(&shop.admin_token), id).await, 200).await;
    assert_eq!(seen, authorized);
    assert_problem(shop.admin_payment(None, id).await, 401).await;
    assert_problem(shop.admin_payment(Some("not-a-token"), id).await, 401).await;
    assert_problem(
        shop.admin_payment(Some(&shop.admin_token), Uuid::now_v7())
            .await,
        404,
    )
    .await;
    shop.shutdown().await;
}
