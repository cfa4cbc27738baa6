//! Signing keys as an operator sees them: rotation without a token in flight failing, replicas
//! that agree, and races between replicas that add one key, not two.

use std::time::Duration;

use nubo_identity::config::Lifetimes;
use nubo_identity::domain::Role;
use nubo_identity::keys::KeyRing;
use nubo_identity::tokens::{self, Claims};
use nubo_platform::chrono::{DateTime, TimeDelta, Utc};
use nubo_platform::testing::TestMode;
use nubo_platform::{both_modes, sqlx, with_db};
use serde_json::Value;

use crate::helpers::{
    ADMIN, CUSTOMER, Client, PUBLISH_AT_ONCE, Replica, eventually, kid_of, kids, start_with_env,
    stored_keys,
};

both_modes!(
    after_a_rotation_old_tokens_still_verify_and_new_ones_carry_the_new_key,
    a_new_key_signs_only_after_the_publish_delay,
    two_replicas_over_one_database_agree_on_the_keys,
    replicas_racing_add_one_key_not_two,
    a_bad_setting_stops_identity_with_a_message_naming_it,
    twenty_rotations_in_a_row_add_one_waiting_key_and_a_token_from_before_still_verifies,
    a_month_of_daily_rotations_keeps_two_keys_published_and_three_stored,
);

const RELOAD_EVERY_SECOND: (&str, &str) = ("NUBO_IDENTITY_KEY_RELOAD_SECS", "1");

async fn after_a_rotation_old_tokens_still_verify_and_new_ones_carry_the_new_key(mode: TestMode) {
    let system = start_with_env(mode, &[PUBLISH_AT_ONCE]).await;
    let client = Client::of(&system);
    let admin = client.access_token(ADMIN).await;
    let before = client.access_token(CUSTOMER).await;
    let old_kid = kid_of(&before);

    let response = client.rotate(&admin).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    // Both published, newest first; the token signed before still verifies, there and here.
    let jwks = client.jwks().await;
    assert_eq!(kids(&jwks), [new_kid.clone(), old_kid.clone()]);
    nubo_identity::tokens::verify_with_jwks(&before, &jwks).unwrap();
    assert_eq!(client.me(&before).await.status(), 200);
    assert_eq!(client.me(&admin).await.status(), 200);

    // With no publish delay, the next token is signed with the new key.
    let after = client.access_token(CUSTOMER).await;
    assert_eq!(kid_of(&after), new_kid);
    nubo_identity::tokens::verify_with_jwks(&after, &jwks).unwrap();
    assert_eq!(client.me(&after).await.status(), 200);

    let stored = stored_keys(&system).await;
    assert_eq!(stored.len(), 2);
    assert!(stored[0].retired_at.is_none());
    assert!(
        stored[1].retired_at.is_some(),
        "the old key stopped signing"
    );
    system.shutdown().await;
}

async fn a_new_key_signs_only_after_the_publish_delay(mode: TestMode) {
    // The default delay: five minutes.
    let system = start_with_env(mode, &[]).await;
    let client = Client::of(&system);
    let admin = client.access_token(ADMIN).await;
    let old_kid = kid_of(&admin);
    let rotated: Value = client.rotate(&admin).await.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap();
    let created: nubo_platform::chrono::DateTime<nubo_platform::chrono::Utc> =
        serde_json::from_value(rotated["created_at"].clone()).unwrap();
    let activated: nubo_platform::chrono::DateTime<nubo_platform::chrono::Utc> =
        serde_json::from_value(rotated["activated_at"].clone()).unwrap();
    assert_eq!((activated - created).num_seconds(), 300);

    // Published at once, so verifiers learn it before they meet it...
    assert_eq!(kids(&client.jwks().await), [new_kid, old_kid.as_str()]);
    // ...but tokens are still signed with the old key until then.
    let token = client.access_token(CUSTOMER).await;
    assert_eq!(kid_of(&token), old_kid);
    system.shutdown().await;
}

async fn two_replicas_over_one_database_agree_on_the_keys(mode: TestMode) {
    let env = [PUBLISH_AT_ONCE, RELOAD_EVERY_SECOND];
    let system = start_with_env(mode, &env).await;
    let replica = Replica::start(&system, &env).await;
    let one = Client::of(&system);
    let two = Client::at(&system, &replica.url);

    // The second replica found the first one's key rather than making its own.
    let jwks = one.jwks().await;
    assert_eq!(kids(&jwks).len(), 1);
    assert_eq!(kids(&two.jwks().await), kids(&jwks));
    let from_one = one.access_token(CUSTOMER).await;
    let from_two = two.access_token(CUSTOMER).await;
    assert_eq!(kid_of(&from_one), kid_of(&from_two));
    assert_eq!(two.me(&from_one).await.status(), 200);
    assert_eq!(one.me(&from_two).await.status(), 200);

    // One replica rotates; the other picks the new key up on its next reload.
    let admin = one.access_token(ADMIN).await;
    let rotated: Value = one.rotate(&admin).await.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let expected = kids(&one.jwks().await);
    assert_eq!(expected.len(), 2);
    eventually("the second replica serving the new key", || async {
        kids(&two.jwks().await) == expected
    })
    .await;
    let after = two.access_token(CUSTOMER).await;
    assert_eq!(kid_of(&after), new_kid);
    assert_eq!(one.me(&after).await.status(), 200);
    assert_eq!(
        two.me(&from_one).await.status(),
        200,
        "old tokens still verify"
    );
    replica.stop().await;
    system.shutdown().await;
}

async fn replicas_racing_add_one_key_not_two(mode: TestMode) {
    let system = start_with_env(mode, &[]).await;
    let lifetimes = Lifetimes {
        access_token: Duration::from_secs(900),
        refresh_token: Duration::from_secs(3600),
        key_publish_delay: Duration::from_secs(0),
    };
    let mut rings = Vec::new();
    for _ in 0..6 {
        rings.push(KeyRing::new(system.db("identity").await, lifetimes));
    }
    // A first start of six replicas at once, on an empty key table.
    let db = system.db("identity").await;
    with_db!(&db, pool => sqlx::query("DELETE FROM signing_keys").execute(pool).await.map(|_| ()))
        .unwrap();
    let started = futures_join(rings.iter().map(|ring| ring.ensure_signing_key())).await;
    assert!(started.iter().all(Result::is_ok), "{started:?}");
    assert_eq!(stored_keys(&system).await.len(), 1);
    let first = rings[0].newest().unwrap();
    assert!(rings.iter().all(|r| r.newest().as_ref() == Some(&first)));

    // Six replicas finding the key due for rotation at once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = futures_join(
        rings
            .iter()
            .map(|ring| ring.rotate_if_due(Duration::from_secs(1), nubo_platform::clock::now())),
    )
    .await;
    let added: Vec<_> = rotated.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(added.len(), 1, "exactly one replica rotated: {added:?}");
    let stored = stored_keys(&system).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].kid, added[0].kid);
    assert_eq!(stored[0].generation, first.generation + 1);
    db.close().await;
    system.shutdown().await;
}

/// Runs futures concurrently on the test's runtime and collects their outputs in order.
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    nubo_platform::futures::future::join_all(futures).await
}

async fn a_bad_setting_stops_identity_with_a_message_naming_it(mode: TestMode) {
    let system = start_with_env(mode, &[]).await;
    let bad = Replica::spawn(&system, &[("NUBO_IDENTITY_ACCESS_TOKEN_TTL_SECS", "soon")]).await;
    let error = format!("{:#}", bad.outcome().await.unwrap_err());
    assert!(
        error.contains("NUBO_IDENTITY_ACCESS_TOKEN_TTL_SECS"),
        "{error}"
    );
    assert!(error.contains("soon"), "{error}");
    system.shutdown().await;
}

async fn twenty_rotations_in_a_row_add_one_waiting_key_and_a_token_from_before_still_verifies(
    mode: TestMode,
) {
    // The default publish delay: a new key waits five minutes before it signs.
    let system = start_with_env(mode, &[]).await;
    let client = Client::of(&system);
    let admin = client.access_token(ADMIN).await;
    let before = client.access_token(CUSTOMER).await;
    let signing = kid_of(&before);

    // An admin presses rotate twenty times: the first adds the next key, the others find it
    // waiting and answer with it.
    let mut answered = Vec::new();
    for _ in 0..20 {
        let response = client.rotate(&admin).await;
        assert_eq!(response.status(), 200);
        let key: Value = response.json().await.unwrap();
        answered.push(key["kid"].as_str().unwrap().to_owned());
    }
    let next = answered[0].clone();
    assert_ne!(next, signing);
    assert!(answered.iter().all(|kid| *kid == next), "{answered:?}");

    let jwks = client.jwks().await;
    assert_eq!(kids(&jwks), [next, signing]);
    assert_eq!(stored_keys(&system).await.len(), 2);
    // The token signed before the rotations verifies, here and against the JWKS.
    tokens::verify_with_jwks(&before, &jwks).unwrap();
    assert_eq!(client.me(&before).await.status(), 200);
    system.shutdown().await;
}

async fn a_month_of_daily_rotations_keeps_two_keys_published_and_three_stored(mode: TestMode) {
    let system = start_with_env(mode, &[]).await;
    let lifetimes = Lifetimes {
        access_token: Duration::from_secs(900),
        refresh_token: Duration::from_secs(30 * 24 * 3600),
        key_publish_delay: Duration::from_secs(300),
    };
    // A replica of our own, driven through thirty days by the clock we hand it.
    let ring = KeyRing::new(system.db("identity").await, lifetimes);
    ring.reload().await.unwrap();
    let day = TimeDelta::days(1);
    let start = nubo_platform::clock::now();
    let user = nubo_platform::uuid::Uuid::new_v4();
    let sign_at = |at: DateTime<Utc>| {
        let (kid, key) = ring.signer(at).expect("a key signs at every moment");
        let claims = Claims::new(user, vec![Role::Customer], at.timestamp(), 900);
        (kid.clone(), tokens::sign(&claims, &kid, &key).unwrap())
    };
    let verifies_at = |token: &str, at: DateTime<Utc>| {
        tokens::verify(token, |kid| ring.decoding_key(kid, at)).is_ok()
    };
    for n in 1..=30 {
        let now = start + day * n;
        let added = ring
            .rotate_if_due(Duration::from_secs(24 * 3600), now)
            .await
            .unwrap()
            .expect("a day on, the key is due");
        // The last token the old key signs, a second before the new one takes over...
        let last = added.activated_at - TimeDelta::seconds(1);
        let (old, token) = sign_at(last);
        assert_ne!(old, added.kid);
        assert_eq!(sign_at(added.activated_at).0, added.kid);
        // ...verifies until it expires, and its key leaves the JWKS soon after.
        let expires = last + TimeDelta::seconds(900);
        assert!(verifies_at(&token, expires), "day {n}");
        let gone = added.activated_at + TimeDelta::seconds(900 + 30 + 30);
        assert!(!verifies_at(&token, gone), "day {n}");
        assert!(!kids_at(&ring, gone).contains(&old), "day {n}");

        // What a replica's daily round leaves: the signing key and the next one published,
        // and the one before them still stored, for a day.
        ring.delete_retired(now).await.unwrap();
        assert!(
            kids_at(&ring, now).len() <= 2,
            "day {n}: {:?}",
            kids_at(&ring, now)
        );
        assert!(stored_keys(&system).await.len() <= 3, "day {n}");
    }
    assert_eq!(kids_at(&ring, start + day * 30).len(), 2);
    assert_eq!(stored_keys(&system).await.len(), 3);
    system.shutdown().await;
}

/// The kids `ring` publishes at `at`.
fn kids_at(ring: &KeyRing, at: DateTime<Utc>) -> Vec<String> {
    ring.jwks(at).keys.into_iter().map(|k| k.kid).collect()
}
