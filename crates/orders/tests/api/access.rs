use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use serde_json::{Value, json};

use crate::helpers::*;

both_modes!(
    customers_reach_only_their_own_orders_and_carts,
    bad_tokens_are_refused_at_the_gateway,
    admins_see_every_order_and_can_cancel_one_with_a_refund,
);

async fn customers_reach_only_their_own_orders_and_carts(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-ROOIBOS", "Rooibos", 600, 10).await;
    let alice = shop.customer("alice").await;
    let bob = shop.customer("bob").await;
    shop.add_to_cart(&bob, "TEA-ROOIBOS", 1).await;
    let order = shop.checked_out(&bob, &key(), GOOD_CARD).await;
    let id = order["order_id"].as_str().unwrap().to_owned();

    // Alice cannot read Bob's order (it is as absent as a missing one), nor find it listed.
    assert_problem(shop.order(&alice, &id).await, 404).await;
    let mine = json(
        shop.http
            .get(shop.api("/orders"))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(mine["items"].as_array().unwrap().is_empty());
    // Nor read or change Bob's cart: the only cart routes name no customer but admins'.
    let bobs_cart = shop
        .http
        .get(shop.api(&format!("/admin/carts/{}", bob.id)))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_problem(bobs_cart, 403).await;
    // Nor any admin route.
    for (method, path) in [
        ("GET", "/admin/orders".to_owned()),
        ("POST", format!("/admin/orders/{id}/cancel")),
        ("POST", "/admin/products".to_owned()),
        ("PUT", "/admin/inventory/TEA-ROOIBOS".to_owned()),
        ("GET", format!("/admin/payments/{id}")),
    ] {
        let request = shop
            .http
            .request(method.parse().unwrap(), shop.api(&path))
            .bearer_auth(&alice.token)
            .json(&json!({ "reason": "mine now", "on_hand": 0 }));
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    // Without a token, nothing of a customer's is reachable.
    for path in [
        "/orders".to_owned(),
        format!("/orders/{id}"),
        "/cart".to_owned(),
    ] {
        let response = shop.http.get(shop.api(&path)).send().await.unwrap();
        assert_problem(response, 401).await;
    }
    assert_eq!(shop.order(&bob, &id).await.status(), 200);
    shop.shutdown().await;
}

async fn bad_tokens_are_refused_at_the_gateway(mode: TestMode) {
    let shop = start(mode).await;
    let alice = shop.customer("alice").await;
    let parts: Vec<&str> = alice.token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let mut claims: nubo_identity::tokens::Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // Tampered: Alice's token made an admin's, the signature left as it was.
    let mut admin_claims = claims.clone();
    admin_claims.roles = vec![nubo_identity::domain::Role::Admin];
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin_claims).unwrap()),
        parts[2]
    );
    // Wrongly signed: a key of our own under identity's key id.
    let ours = nubo_identity::keys::KeyPair::generate().unwrap();
    let forged = nubo_identity::tokens::sign(&claims, &kid, &ours.encoding_key()).unwrap();
    // Expired: signed with identity's real key, an hour past its end.
    let db = shop.system.db("identity").await;
    let stored = nubo_identity::store::signing_keys(&db).await.unwrap();
    db.close().await;
    let real = stored.iter().find(|k| k.kid == kid).unwrap();
    let now = nubo_platform::clock::now().timestamp();
    claims.iat = now - 7200;
    claims.exp = now - 3600;
    let expired =
        nubo_identity::tokens::sign(&claims, &kid, &EncodingKey::from_ed_der(&real.private_key))
            .unwrap();

    for (what, token) in [
        ("tampered", tampered.as_str()),
        ("wrongly signed", &forged),
        ("expired", &expired),
        ("not a token", "not-a-jwt"),
    ] {
        for path in ["/orders", "/cart", "/admin/orders"] {
            let response = shop
                .http
                .get(shop.api(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{what} token on {path}");
        }
    }
    // The real one passes.
    let response = shop
        .http
        .get(shop.api("/orders"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    shop.shutdown().await;
}

async fn admins_see_every_order_and_can_cancel_one_with_a_refund(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-EARLGREY", "Earl Grey", 800, 5).await;
    let gina = shop.customer("gina").await;
    shop.add_to_cart(&gina, "TEA-EARLGREY", 2).await;
    let order = shop.checked_out(&gina, &key(), GOOD_CARD).await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(shop.settled(&gina, &id).await["state"], "completed");

    let all = json(
        shop.http
            .get(shop.api(&format!(
                "/admin/orders?user_id={}&status=confirmed",
                gina.id
            )))
            .bearer_auth(&shop.admin.token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(all["items"][0]["order_id"], id.as_str());

    let cancel = shop
        .http
        .post(shop.api(&format!("/admin/orders/{id}/cancel")))
        .bearer_auth(&shop.admin.token)
        .json(&json!({ "reason": "the tea was damaged in transit" }))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 202);
    let order = shop.settled(&gina, &id).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["refunded"], true);
    assert_eq!(
        order["cancel_reason"],
        "cancelled by the shop: the tea was damaged in transit"
    );
    assert_eq!(shop.payment(&id).await.unwrap()["state"], "refunded");
    // The two units had left the shop with the completed order; cancelled, they are back on
    // sale, and the order's log says so.
    assert_eq!(shop.available("TEA-EARLGREY").await, 5);
    let release = order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "release_stock")
        .expect("a release_stock step");
    assert_eq!(release["outcome"], "done");
    assert_eq!(
        release["detail"],
        "its units had left the shop and are back in stock"
    );
    assert_eq!(
        shop.events(
            "payments",
            <nubo_contracts::payments::PaymentRefunded as nubo_platform::events::Event>::SUBJECT
        )
        .await,
        1
    );
    // Gina hears of all of it: confirmed, cancelled with the reason, refunded.
    eventually("three emails are recorded", || async {
        shop.emails(&id).await.len() == 3
    })
    .await;
    let mut kinds: Vec<String> = shop
        .emails(&id)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["order_cancelled", "order_confirmed", "payment_refunded"]
    );
    shop.shutdown().await;
}
