//! `token_check/verify`: checking a signed-in shopper's access token, as the gateway does for
//! every request that carries one (`authenticate::caller`), and each service again in its
//! `Caller` and `Admin` extractors.
//!
//! This is `nubo_platform::auth::Verifier::verify` with identity's key already in its cache, the
//! state it is in for all but the first request after a start or a key rotation: decode the
//! header, look the key up, check the Ed25519 signature and the claims. The token is a real one,
//! signed by identity's own code (`keys::KeyPair`, `tokens::sign`) with the claims identity puts
//! in it, and the verifier gets identity's JWKS as identity publishes it. A signed-in request
//! pays this at least twice (gateway and service), so it sits on most of the shop's traffic.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use nubo_identity::domain::Role;
use nubo_identity::keys::KeyPair;
use nubo_identity::tokens::{self, Claims, Jwks};
use nubo_platform::auth::{KeySource, Verifier};
use nubo_platform::uuid::Uuid;

/// identity's default access token lifetime (`NUBO_IDENTITY_ACCESS_TOKEN_TTL_SECS`).
const TTL_SECS: i64 = 900;

/// An access token as identity issues it at login, and a verifier holding identity's JWKS.
fn signed_in() -> (String, Verifier) {
    let key = KeyPair::generate().expect("an Ed25519 key");
    let now = nubo_platform::chrono::Utc::now().timestamp();
    let mut claims = Claims::new(Uuid::now_v7(), vec![Role::Customer], now, TTL_SECS);
    claims.email = Some("ada@example.com".to_owned());
    let token = tokens::sign(&claims, &key.kid, &key.encoding_key()).expect("a signed token");
    // The JWKS document exactly as identity serves it, read the way a verifier fetches it.
    let jwks = serde_json::to_value(Jwks {
        keys: vec![key.jwk()],
    })
    .expect("the JWKS as JSON");
    let verifier = Verifier::new(KeySource::Local(Arc::new(move || {
        serde_json::from_value(jwks.clone()).expect("identity's JWKS")
    })));
    (token, verifier)
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (token, verifier) = signed_in();
    // The first check fetches the keys; every later one finds them cached.
    let claims = runtime
        .block_on(verifier.verify(&token))
        .expect("identity's token verifies");
    assert_eq!(claims.roles, ["customer"]);

    let (verifier, token) = (&verifier, token.as_str());
    let mut group = c.benchmark_group("token_check");
    group.bench_function("verify", |b| {
        b.to_async(&runtime).iter(|| verifier.verify(token));
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
