//! Throttling as an attacker guessing passwords meets it, and as the owner of the account they
//! guess at does: the attacker is slowed down, the owner is never locked out. And sign-ups,
//! which one address makes a few of an hour, not thousands.

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, TestSystem};

use crate::helpers::{CUSTOMER, Client, assert_problem, start};

both_modes!(
    an_attacker_guessing_from_many_addresses_cannot_lock_the_owner_out,
    an_account_guessed_at_from_many_addresses_gives_each_new_one_a_single_guess_and_ever_longer_locks,
    one_address_gets_twenty_login_attempts_a_minute,
    an_address_claimed_by_anyone_but_the_gateway_means_nothing,
    one_address_signs_up_twenty_accounts_an_hour_then_is_told_when_to_come_back,
);

const ADA: &str = "ada@example.com";
const ADA_PASSWORD: &str = "correct horse battery";

fn retry_after(headers: &nubo_platform::axum::http::HeaderMap) -> u64 {
    headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// How many logins ended with `outcome`, as identity's metrics count them.
async fn logins(system: &TestSystem, outcome: &str) -> Option<f64> {
    let label = format!("outcome=\"{outcome}\"");
    system
        .metric("identity", "nubo_identity_logins_total", &[label.as_str()])
        .await
}

/// A wrong password for Ada from `ip`, answered 401.
async fn guess(client: &Client, ip: &str) {
    let guess = client.log_in_from(ip, ADA, "wrong guess").await;
    assert_problem(guess, 401).await;
}

async fn an_attacker_guessing_from_many_addresses_cannot_lock_the_owner_out(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    client.sign_up_ok(ADA, ADA_PASSWORD).await;
    // Successes do not count against the owner.
    for _ in 0..6 {
        client.log_in_ok(ADA, ADA_PASSWORD).await;
    }
    // Guesses from five addresses, one each...
    for n in 1..=5 {
        guess(&client, &format!("198.51.100.{n}")).await;
    }
    // ...and five from one address, whose sixth attempt is refused, the right password too.
    for _ in 0..5 {
        guess(&client, "203.0.113.9").await;
    }
    let sixth = client
        .log_in_from("203.0.113.9", "ADA@example.com", ADA_PASSWORD)
        .await;
    assert_eq!(sixth.status(), 429);
    assert!((1..=900).contains(&retry_after(sixth.headers())));
    let body = assert_problem(sixth, 429).await;
    assert_eq!(body["type"], "https://nubo.dev/problems/rate-limited");

    // Ada, from her own address, signs in at once.
    let ada = client.log_in_from("192.0.2.44", ADA, ADA_PASSWORD).await;
    assert_eq!(ada.status(), 200);
    assert_eq!(logins(&system, "wrong_credentials").await, Some(10.0));
    assert_eq!(logins(&system, "account_limited").await, Some(1.0));
    // The attacking address is locked out of Ada's account only.
    let other = client
        .log_in_from("203.0.113.9", CUSTOMER.0, CUSTOMER.1)
        .await;
    assert_eq!(other.status(), 200);
    system.shutdown().await;
}

async fn an_account_guessed_at_from_many_addresses_gives_each_new_one_a_single_guess_and_ever_longer_locks(
    mode: TestMode,
) {
    let system = start(mode).await;
    let client = Client::of(&system);
    client.sign_up_ok(ADA, ADA_PASSWORD).await;
    let home = "192.0.2.1";
    assert_eq!(
        client.log_in_from(home, ADA, ADA_PASSWORD).await.status(),
        200
    );
    // Ten guesses from ten addresses: the account is under attack.
    for n in 1..=10 {
        guess(&client, &format!("198.51.100.{n}")).await;
    }
    let attacked = system
        .metric("identity", "nubo_identity_accounts_under_attack_total", &[])
        .await;
    assert_eq!(attacked, Some(1.0));

    // A new address gets one guess, then a lock longer than the ordinary 15 minutes...
    guess(&client, "198.51.100.11").await;
    let locked = client.log_in_from("198.51.100.11", ADA, ADA_PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(
        (901..=1800).contains(&retry_after(locked.headers())),
        "{locked:?}"
    );
    assert_problem(locked, 429).await;
    // ...while Ada on a new network still gets in,
    let travelling = client.log_in_from("198.51.100.12", ADA, ADA_PASSWORD).await;
    assert_eq!(travelling.status(), 200);

    // and with every ten more guesses, the next new address is locked twice as long.
    for n in 21..=30 {
        guess(&client, &format!("198.51.100.{n}")).await;
    }
    guess(&client, "198.51.100.31").await;
    let locked = client
        .log_in_from("198.51.100.31", ADA, "wrong guess")
        .await;
    assert_eq!(locked.status(), 429);
    assert!(
        (1801..=3600).contains(&retry_after(locked.headers())),
        "{locked:?}"
    );

    // At home, where she signed in before, Ada still has her five tries for typos.
    for _ in 0..2 {
        assert_eq!(
            client
                .log_in_from(home, ADA, "correct horse batery")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        client.log_in_from(home, ADA, ADA_PASSWORD).await.status(),
        200
    );
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
    assert!((1..=60).contains(&retry_after(refused.headers())));
    assert_problem(refused, 429).await;
    // Another address is still welcome.
    let other = client
        .log_in_from("203.0.113.8", CUSTOMER.0, CUSTOMER.1)
        .await;
    assert_eq!(other.status(), 200);
    system.shutdown().await;
}

async fn an_address_claimed_by_anyone_but_the_gateway_means_nothing(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    // A client that calls identity directly and claims a new address each time is still one
    // address: its own.
    for n in 1..=20 {
        let attempt = client
            .http
            .post(format!("{}/api/v1/identity/login", client.base))
            .header("x-forwarded-for", format!("198.18.0.{n}"))
            .json(&serde_json::json!({ "email": format!("guess{n}@example.com"), "password": "some password" }))
            .send()
            .await
            .unwrap();
        assert_eq!(attempt.status(), 401, "attempt {n}");
    }
    let refused = client
        .http
        .post(format!("{}/api/v1/identity/login", client.base))
        .header("x-forwarded-for", "198.18.0.99")
        .json(&serde_json::json!({ "email": CUSTOMER.0, "password": CUSTOMER.1 }))
        .send()
        .await
        .unwrap();
    assert_problem(refused, 429).await;
    // A service other than the gateway is not believed either; the gateway is.
    let orders = system.client_as("orders", "identity");
    let claimed = orders
        .send_with(
            nubo_platform::axum::http::Method::POST,
            "/api/v1/identity/login",
            &[("x-forwarded-for", "198.18.1.1")],
            Some(&serde_json::json!({ "email": CUSTOMER.0, "password": CUSTOMER.1 })),
        )
        .await;
    assert_problem(claimed, 429).await;
    let forwarded = client
        .log_in_from("198.18.1.1", CUSTOMER.0, CUSTOMER.1)
        .await;
    assert_eq!(forwarded.status(), 200);
    system.shutdown().await;
}

async fn one_address_signs_up_twenty_accounts_an_hour_then_is_told_when_to_come_back(
    mode: TestMode,
) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let office = "203.0.113.50";
    // Bad input costs nothing and does not count.
    let bad = client.sign_up_from(office, "not an email", "short").await;
    assert_problem(bad, 422).await;
    for n in 1..=19 {
        let email = format!("colleague{n}@example.com");
        let response = client.sign_up_from(office, &email, ADA_PASSWORD).await;
        assert_eq!(response.status(), 201, "sign-up {n}");
    }
    // A taken email counts too: it is what someone probing for accounts would send.
    let taken = client
        .sign_up_from(office, "colleague1@example.com", ADA_PASSWORD)
        .await;
    assert_problem(taken, 409).await;
    let refused = client.sign_up_from(office, ADA, ADA_PASSWORD).await;
    assert_eq!(refused.status(), 429);
    assert!(
        (3590..=3600).contains(&retry_after(refused.headers())),
        "{refused:?}"
    );
    let body = assert_problem(refused, 429).await;
    assert_eq!(body["type"], "https://nubo.dev/problems/rate-limited");
    // Nothing was created; from home, Ada signs up and in.
    let nothing = client.log_in_from("192.0.2.7", ADA, ADA_PASSWORD).await;
    assert_problem(nothing, 401).await;
    let home = client.sign_up_from("192.0.2.7", ADA, ADA_PASSWORD).await;
    assert_eq!(home.status(), 201);
    client.log_in_ok(ADA, ADA_PASSWORD).await;
    let signups = |outcome: &'static str| {
        let system = &system;
        async move {
            let label = format!("outcome=\"{outcome}\"");
            system
                .metric("identity", "nubo_identity_signups_total", &[label.as_str()])
                .await
        }
    };
    assert_eq!(signups("created").await, Some(20.0));
    assert_eq!(signups("email_taken").await, Some(1.0));
    assert_eq!(signups("limited").await, Some(1.0));
    system.shutdown().await;
}
