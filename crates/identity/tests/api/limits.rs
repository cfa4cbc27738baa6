//! Login throttling as an attacker guessing passwords meets it.

use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;

use crate::helpers::{CUSTOMER, Client, assert_problem, start};

both_modes!(
    the_sixth_failed_login_for_an_account_is_refused_even_with_the_right_password,
    one_address_gets_twenty_login_attempts_a_minute,
);

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn the_sixth_failed_login_for_an_account_is_refused_even_with_the_right_password(
    mode: TestMode,
) {
    let system = start(mode).await;
    let client = Client::of(&system);
    client
        .sign_up_ok("ada@example.com", "correct horse battery")
        .await;
    // Successes do not count against the owner.
    for _ in 0..6 {
        client
            .log_in_ok("ada@example.com", "correct horse battery")
            .await;
    }
    // Each guess from a different address, so only the account's limit applies.
    for n in 1..=5 {
        let guess = client
            .log_in_from(
                &format!("198.51.100.{n}"),
                "ada@example.com",
                "wrong guess #{n}",
            )
            .await;
        assert_problem(guess, 401).await;
    }
    let sixth = client
        .log_in_from("198.51.100.6", "ADA@example.com", "wrong guess #6")
        .await;
    assert_eq!(sixth.status(), 429);
    assert!((1..=900).contains(&retry_after(&sixth)));
    let body = assert_problem(sixth, 429).await;
    assert_eq!(body["type"], "https://nubo.dev/problems/rate-limited");
    let right = client
        .log_in_from("198.51.100.7", "ada@example.com", "correct horse battery")
        .await;
    assert_eq!(right.status(), 429, "locked until the window passes");
    let counted = |outcome: &'static str| {
        let system = &system;
        async move {
            let label = format!("outcome=\"{outcome}\"");
            system
                .metric("identity", "nubo_identity_logins_total", &[label.as_str()])
                .await
        }
    };
    assert_eq!(counted("wrong_credentials").await, Some(5.0));
    assert_eq!(counted("account_limited").await, Some(2.0));
    // Other accounts are not affected.
    client.log_in_ok(CUSTOMER.0, CUSTOMER.1).await;
    system.shutdown().await;
}

async fn one_address_gets_twenty_login_attempts_a_minute(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    // Unknown emails, each its own, so only the address's limit applies.
    for n in 1..=20 {
        let attempt = client
            .log_in_from(
                "203.0.113.7",
                &format!("guess{n}@example.com"),
                "some password",
            )
            .await;
        assert_eq!(attempt.status(), 401, "attempt {n}");
    }
    let refused = client
        .log_in_from("203.0.113.7", CUSTOMER.0, CUSTOMER.1)
        .await;
    assert_eq!(refused.status(), 429);
    assert!((1..=60).contains(&retry_after(&refused)));
    assert_problem(refused, 429).await;
    // Another address is still welcome.
    let other = client
        .log_in_from("203.0.113.8", CUSTOMER.0, CUSTOMER.1)
        .await;
    assert_eq!(other.status(), 200);
    system.shutdown().await;
}
