//! What an access token is, and the tokens `/me` refuses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use nubo_identity::domain::Role;
use nubo_identity::keys::KeyPair;
use nubo_identity::tokens::{self, Claims};
use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use nubo_platform::uuid::Uuid;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, CUSTOMER, Client, assert_problem, claims_of, kid_of, kids, now_secs, start, stored_keys,
};

both_modes!(
    an_access_token_verifies_against_the_published_jwks,
    forged_tampered_and_expired_tokens_are_refused,
    only_an_admin_may_rotate_the_signing_key,
);

async fn an_access_token_verifies_against_the_published_jwks(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let pair = client.log_in_ok(CUSTOMER.0, CUSTOMER.1).await;
    let token = pair["access_token"].as_str().unwrap();

    // Both addresses serve the same document, cacheable for five minutes.
    let well_known = client
        .http
        .get(format!("{}/.well-known/jwks.json", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(well_known.headers()["cache-control"], "public, max-age=300");
    let well_known: Value = well_known.json().await.unwrap();
    let under_api: Value = client
        .http
        .get(format!("{}/api/v1/identity/jwks.json", client.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(well_known, under_api);
    let key = &well_known["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwks = client.jwks().await;
    assert_eq!(kids(&jwks), [header.kid.clone().unwrap()]);

    // Verified the way any other service would: the JWK its kid names.
    let jwk = jwks.find(&header.kid.unwrap()).unwrap();
    let decoded = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &tokens::validation(),
    )
    .unwrap()
    .claims;
    assert_eq!(decoded["iss"], "nubo-identity");
    assert_eq!(decoded["aud"], "nubo");
    assert_eq!(decoded["roles"], json!(["customer"]));
    assert_eq!(
        decoded["exp"].as_i64().unwrap() - decoded["iat"].as_i64().unwrap(),
        900
    );
    assert!((decoded["iat"].as_i64().unwrap() - now_secs()).abs() < 60);
    Uuid::parse_str(decoded["jti"].as_str().unwrap()).unwrap();
    let me: Value = client.me(token).await.json().await.unwrap();
    assert_eq!(decoded["sub"], me["user_id"]);
    // The crate's own check agrees.
    let claims = tokens::verify_with_jwks(token, &jwks).unwrap();
    assert_eq!(claims.roles, [Role::Customer]);
    system.shutdown().await;
}

async fn forged_tampered_and_expired_tokens_are_refused(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let token = client.access_token(CUSTOMER).await;
    let claims: Claims = serde_json::from_value(claims_of(&token)).unwrap();
    let kid = kid_of(&token);

    // Tampered: the payload claims admin, the signature is the original one.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = claims_of(&token);
    payload["roles"] = json!(["admin"]);
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");
    // Signed by another key that claims to be identity's.
    let impostor = KeyPair::generate().unwrap();
    let forged = tokens::sign(&claims, &kid, &impostor.encoding_key()).unwrap();
    // Unsigned.
    let header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let unsigned = format!("{header}.{}.", parts[1]);
    // Signed with identity's real key, but long expired: taken from its database.
    let stored = stored_keys(&system).await;
    let real = EncodingKey::from_ed_der(&stored[0].private_key);
    let mut old = claims.clone();
    old.iat = now_secs() - 7200;
    old.exp = now_secs() - 3600;
    let expired = tokens::sign(&old, &stored[0].kid, &real).unwrap();
    // The same path with current times is accepted, so it is the expiry that is refused.
    let fresh = Claims::new(claims.sub, claims.roles.clone(), now_secs(), 60);
    let fresh = tokens::sign(&fresh, &stored[0].kid, &real).unwrap();
    assert_eq!(client.me(&fresh).await.status(), 200);
    // Right key and times, but meant for another audience.
    let mut elsewhere = Claims::new(claims.sub, claims.roles.clone(), now_secs(), 60);
    elsewhere.aud = "somewhere-else".into();
    let elsewhere = tokens::sign(&elsewhere, &stored[0].kid, &real).unwrap();

    for (what, bad) in [
        ("tampered", tampered.as_str()),
        ("forged", &forged),
        ("unsigned", &unsigned),
        ("expired", &expired),
        ("for another audience", &elsewhere),
        ("garbage", "not.a.token"),
    ] {
        let response = client.me(bad).await;
        assert_eq!(response.status(), 401, "a {what} token was not refused");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        assert_problem(response, 401).await;
    }
    let anonymous = client
        .http
        .get(format!("{}/api/v1/identity/me", client.base))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401).await;
    system.shutdown().await;
}

async fn only_an_admin_may_rotate_the_signing_key(mode: TestMode) {
    let system = start(mode).await;
    let client = Client::of(&system);
    let customer = client.access_token(CUSTOMER).await;
    let refused = assert_problem(client.rotate(&customer).await, 403).await;
    assert!(refused["detail"].as_str().unwrap().contains("admin"));
    let anonymous = client
        .http
        .post(format!("{}/api/v1/admin/identity/keys/rotate", client.base))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401).await;
    assert_eq!(client.jwks().await.keys.len(), 1, "nothing rotated");
    let admin = client.access_token(ADMIN).await;
    assert_eq!(client.rotate(&admin).await.status(), 200);
    system.shutdown().await;
}
