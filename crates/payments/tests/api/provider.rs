//! A card provider that is slow, silent or failing: the checkout gets a 503 it can retry, and
//! the payment is as it was.

use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use nubo_platform::uuid::Uuid;

use crate::helpers::{GOOD_CARD, assert_problem, json, start, start_with};

both_modes!(
    a_provider_that_never_answers_leaves_no_authorized_payment,
    a_provider_that_always_fails_gets_503s_and_nothing_changes,
    a_flaky_provider_succeeds_on_retry,
);

async fn a_provider_that_never_answers_leaves_no_authorized_payment(mode: TestMode) {
    let shop = start(mode).await;
    let id = Uuid::now_v7();
    let response = shop.authorize(id, 500, "4000000000000119").await;
    assert!(response.headers().contains_key("retry-after"));
    let problem = assert_problem(response, 503).await;
    assert_eq!(problem["detail"], "payment provider did not answer");
    assert_eq!(shop.stored_state(id).await, None, "nothing recorded");
    assert_problem(shop.payment(id).await, 404).await;
    // A retry with another card for the same order goes through.
    assert_eq!(
        json(shop.authorize(id, 500, GOOD_CARD).await, 201).await["state"],
        "authorized"
    );
    shop.shutdown().await;
}

async fn a_provider_that_always_fails_gets_503s_and_nothing_changes(mode: TestMode) {
    let shop = start_with(mode, &[("NUBO_PAYMENTS_PROVIDER_FAILURE_RATE", "1.0")]).await;
    let id = Uuid::now_v7();
    for _ in 0..3 {
        let response = shop.authorize(id, 500, GOOD_CARD).await;
        assert_eq!(response.headers()["retry-after"], "1");
        assert_problem(response, 503).await;
    }
    assert_eq!(shop.payments_count().await, 0, "nothing recorded");
    shop.shutdown().await;
}

async fn a_flaky_provider_succeeds_on_retry(mode: TestMode) {
    // Half of all calls fail; a saga that retries gets through, and every failure leaves the
    // payment as it was.
    let shop = start_with(mode, &[("NUBO_PAYMENTS_PROVIDER_FAILURE_RATE", "0.5")]).await;
    let id = Uuid::now_v7();
    let mut failures = 0;
    let authorized = loop {
        let response = shop.authorize(id, 800, GOOD_CARD).await;
        if response.status() == 201 {
            break json(response, 201).await;
        }
        assert_problem(response, 503).await;
        assert_eq!(shop.stored_state(id).await, None);
        failures += 1;
        assert!(
            failures < 60,
            "no success in 60 tries at a failure rate of 0.5"
        );
    };
    assert_eq!(authorized["state"], "authorized");
    for (step, state) in [("capture", "captured"), ("refund", "refunded")] {
        let before = shop.stored_state(id).await;
        loop {
            let response = shop.step(id, step).await;
            if response.status() == 200 {
                assert_eq!(json(response, 200).await["state"], state);
                break;
            }
            assert_problem(response, 503).await;
            assert_eq!(
                shop.stored_state(id).await,
                before,
                "unchanged by a failed {step}"
            );
            failures += 1;
            assert!(failures < 120, "too many failures");
        }
    }
    assert_eq!(shop.captured_events().await.len(), 1);
    assert_eq!(shop.refunded_events().await.len(), 1);
    shop.shutdown().await;
}
