//! Password checks as a shop's busiest minute meets them: a burst of logins takes turns on a
//! bounded number of hashers, and one that cannot get a turn in time hears 503, never 500.

use nubo_platform::both_modes;
use nubo_platform::futures::future::join_all;
use nubo_platform::testing::{Answer, TestMode};

use crate::helpers::{CUSTOMER, Client, PUBLISH_AT_ONCE, assert_problem, start_with_env};

both_modes!(
    a_burst_of_sixteen_logins_takes_turns_on_two_hashers_and_every_one_gets_in,
    logins_that_cannot_get_a_hasher_in_time_hear_503_with_retry_after,
);

/// Sixteen concurrent logins of the demo customer, each from an address of its own so that
/// no rate limit takes part.
async fn burst(client: &Client) -> Vec<Answer> {
    join_all((1..=16).map(|n| async move {
        let address = format!("192.0.2.{n}");
        client.log_in_from(&address, CUSTOMER.0, CUSTOMER.1).await
    }))
    .await
}

async fn a_burst_of_sixteen_logins_takes_turns_on_two_hashers_and_every_one_gets_in(
    mode: TestMode,
) {
    let system = start_with_env(
        mode,
        &[
            PUBLISH_AT_ONCE,
            ("NUBO_IDENTITY_PASSWORD_HASH_CONCURRENCY", "2"),
            // Patience enough for all sixteen, even on a slow machine.
            ("NUBO_IDENTITY_PASSWORD_HASH_WAIT_MS", "9000"),
        ],
    )
    .await;
    let client = Client::of(&system);
    for (n, response) in burst(&client).await.into_iter().enumerate() {
        assert_eq!(response.status(), 200, "login {n}");
    }
    let metric = |name: &'static str| {
        let system = &system;
        async move { system.metric("identity", name, &[]).await }
    };
    assert_eq!(
        metric("nubo_identity_password_hashes_running").await,
        Some(0.0)
    );
    assert_eq!(
        metric("nubo_identity_password_hashes_refused_total").await,
        Some(0.0)
    );
    system.shutdown().await;
}

async fn logins_that_cannot_get_a_hasher_in_time_hear_503_with_retry_after(mode: TestMode) {
    let system = start_with_env(
        mode,
        &[
            PUBLISH_AT_ONCE,
            ("NUBO_IDENTITY_PASSWORD_HASH_CONCURRENCY", "1"),
            ("NUBO_IDENTITY_PASSWORD_HASH_WAIT_MS", "1"),
        ],
    )
    .await;
    let client = Client::of(&system);
    let (mut signed_in, mut turned_away) = (0, 0);
    for response in burst(&client).await {
        match response.status().as_u16() {
            200 => signed_in += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                let problem = assert_problem(response, 503).await;
                assert_eq!(problem["type"], "https://nubo.dev/problems/overloaded");
                turned_away += 1;
            }
            other => panic!("a login in a burst answered {other}"),
        }
    }
    // One hasher, sixteen logins at once and a millisecond of patience: the first gets in,
    // most of the others cannot.
    assert!(signed_in >= 1, "{signed_in} signed in");
    assert!(turned_away >= 1, "{turned_away} turned away");
    let refused = system
        .metric(
            "identity",
            "nubo_identity_password_hashes_refused_total",
            &[],
        )
        .await;
    assert_eq!(refused, Some(f64::from(turned_away)));
    let busy = system
        .metric(
            "identity",
            "nubo_identity_logins_total",
            &["outcome=\"busy\""],
        )
        .await;
    assert_eq!(busy, Some(f64::from(turned_away)));
    // The burst over, the same customer signs in at once.
    client.log_in_ok(CUSTOMER.0, CUSTOMER.1).await;
    system.shutdown().await;
}
