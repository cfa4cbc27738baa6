//! Accounts for tests (feature `testing`): how every service's tests get their admin and
//! customers. An account goes straight into identity's database, as `nubo create-admin` would
//! put it there; a user signs in through identity's login route, as a client does.

use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nubo_platform::testing::TestSystem;

use crate::domain::Role;
use crate::tokens::Claims;

/// Every test account's password.
pub const PASSWORD: &str = "correct horse battery";

/// A user who signed in: the access token to send as `Bearer`, and the account's id.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub token: String,
    pub user_id: String,
}

/// Adds an account with [`PASSWORD`] to identity's database.
pub async fn add_account(system: &TestSystem, email: &str, role: Role) {
    let db = system.db("identity").await;
    crate::create_account(&db, email, PASSWORD, role)
        .await
        .unwrap_or_else(|e| panic!("add the account {email}: {e:#}"));
    db.close().await;
}

/// Signs `email` in through identity's login route, as the gateway forwards a login.
pub async fn sign_in(system: &TestSystem, email: &str) -> SignedIn {
    // Identity allows 20 logins a minute per client address: a test that signs in more users
    // than that must not be refused, so each sign-in comes from an address of its own, which
    // identity believes only from the gateway.
    let address = next_client_address();
    let response = system
        .client_as(nubo_platform::config::EDGE, "identity")
        .send_with(
            nubo_platform::axum::http::Method::POST,
            "/api/v1/identity/login",
            &[("x-forwarded-for", &address)],
            Some(&serde_json::json!({ "email": email, "password": PASSWORD })),
        )
        .await;
    assert_eq!(response.status(), 200, "sign in as {email}");
    let body: serde_json::Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let user_id = claims(&token).sub.to_string();
    SignedIn { token, user_id }
}

/// Adds each account, then signs each in, in the order given.
pub async fn signed_in<const N: usize>(
    system: &TestSystem,
    accounts: [(&str, Role); N],
) -> [SignedIn; N] {
    for (email, role) in accounts {
        add_account(system, email, role).await;
    }
    let mut users = Vec::with_capacity(N);
    for (email, _) in accounts {
        users.push(sign_in(system, email).await);
    }
    users.try_into().expect("one user per account")
}

/// A private address not used before in this process (10.0.0.1, 10.0.0.2, ...).
fn next_client_address() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let [_, b, c, d] = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    format!("10.{b}.{c}.{d}")
}

/// What `token` claims, read without verifying it: identity has just issued it.
fn claims(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&json).expect("identity's claims")
}
