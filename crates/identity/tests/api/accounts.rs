//! Signing up, logging in, staying logged in and logging out.

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, CUSTOMER, Client, assert_problem, claims_of, start};

both_modes!(
    a_customer_signs_up_logs_in_and_reads_their_profile,
    a_refreshed_session_refuses_its_old_token_and_a_replay_ends_it,
    logging_out_ends_the_session,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    an_email_can_hold_only_one_account,
    bad_signup_input_names_the_fields_and_creates_nothing,
    the_demo_accounts_are_seeded_with_their_roles,
);

const PASSWORD: &str = "correct horse battery";

async fn a_customer_signs_up_logs_in_and_reads_their_profile(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let profile = client.sign_up_ok("  Ada@Example.com ", PASSWORD).await;
    assert_eq!(profile["email"], "ada@example.com");
    assert_eq!(profile["roles"], json!(["customer"]));

    let response = client.log_in("ADA@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let pair: Value = response.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["refresh_expires_in"], 30 * 24 * 3600);
    assert!(pair["refresh_token"].as_str().unwrap().len() >= 43);

    let me = client.me(pair["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me, profile);
    system.shutdown().await;
}

async fn a_refreshed_session_refuses_its_old_token_and_a_replay_ends_it(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    client.sign_up_ok("ada@example.com", PASSWORD).await;
    let first = client.log_in_ok("ada@example.com", PASSWORD).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let response = client.refresh(first_refresh).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(client.me(access).await.status(), 200);

    // The first token was used up; presenting it again looks like theft, so the session ends:
    // the token that replaced it no longer works either.
    let replay = assert_problem(client.refresh(first_refresh).await, 401).await;
    assert!(replay["detail"].as_str().unwrap().contains("log in again"));
    assert_problem(client.refresh(second_refresh).await, 401).await;
    let reused = system
        .metric(
            "identity",
            "nubo_identity_refreshes_total",
            &[r#"outcome="reused""#],
        )
        .await;
    assert_eq!(reused, Some(1.0), "the replay is counted for the operator");

    // Another session of the same account is untouched.
    let other = client.log_in_ok("ada@example.com", PASSWORD).await;
    let other_refresh = other["refresh_token"].as_str().unwrap();
    assert_eq!(client.refresh(other_refresh).await.status(), 200);

    // A token that is not one at all is a validation problem, naming the field.
    let malformed = assert_problem(client.refresh("not-a-token").await, 422).await;
    assert_eq!(malformed["errors"][0]["field"], "refresh_token");
    system.shutdown().await;
}

async fn logging_out_ends_the_session(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let pair = client.log_in_ok(CUSTOMER.0, CUSTOMER.1).await;
    let refresh = pair["refresh_token"].as_str().unwrap();
    let response = client.log_out(refresh).await;
    assert_eq!(response.status(), 204);
    assert_problem(client.refresh(refresh).await, 401).await;
    // Logging out twice, or with a token nobody issued, is just as fine.
    assert_eq!(client.log_out(refresh).await.status(), 204);
    let unknown = "A".repeat(43);
    assert_eq!(client.log_out(&unknown).await.status(), 204);
    system.shutdown().await;
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    client.sign_up_ok("ada@example.com", PASSWORD).await;
    let wrong_password = client
        .log_in("ada@example.com", "incorrect horse battery")
        .await;
    let unknown_email = client.log_in("grace@example.com", PASSWORD).await;
    let wrong_password = assert_problem(wrong_password, 401).await;
    let unknown_email = assert_problem(unknown_email, 401).await;
    assert_eq!(wrong_password, unknown_email);
    assert_eq!(wrong_password["detail"], "wrong email or password");
    system.shutdown().await;
}

async fn an_email_can_hold_only_one_account(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    client.sign_up_ok("ada@example.com", PASSWORD).await;
    let again = client
        .sign_up("Ada@Example.com", "another long password")
        .await;
    let problem = assert_problem(again, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    // The first password still holds.
    client.log_in_ok("ada@example.com", PASSWORD).await;
    system.shutdown().await;
}

async fn bad_signup_input_names_the_fields_and_creates_nothing(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let body = assert_problem(client.sign_up("ada-at-example.com", "short").await, 422).await;
    assert_eq!(problem_fields(&body), ["email", "password"]);
    // The password is never echoed back.
    assert!(!body.to_string().contains("short\""), "{body}");

    let body = assert_problem(
        client.sign_up("ada@example.com", &"x".repeat(129)).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "password");
    let extra = client
        .post(
            "/api/v1/identity/signup",
            &json!({ "email": "ada@example.com", "password": PASSWORD, "roles": ["admin"] }),
        )
        .await;
    assert_problem(extra, 422).await;

    // None of them created the account.
    assert_problem(client.log_in("ada@example.com", PASSWORD).await, 401).await;
    client.sign_up_ok("ada@example.com", PASSWORD).await;
    system.shutdown().await;
}

async fn the_demo_accounts_are_seeded_with_their_roles(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let admin = client.access_token(ADMIN).await;
    assert_eq!(claims_of(&admin)["roles"], json!(["admin"]));
    let customer = client.access_token(CUSTOMER).await;
    assert_eq!(claims_of(&customer)["roles"], json!(["customer"]));
    let me: Value = client.me(&admin).await.json().await.unwrap();
    assert_eq!(me["email"], ADMIN.0);
    assert_eq!(me["roles"], json!(["admin"]));
    system.shutdown().await;
}
