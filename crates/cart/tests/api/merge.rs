//! A guest's cart, kept in their browser, brought into the account they sign in to.

use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use serde_json::json;

use crate::helpers::{json, lines, start};

both_modes!(
    a_guest_cart_joins_the_account_cart_once_however_often_it_is_sent,
    a_bad_merge_is_refused_whole,
);

async fn a_guest_cart_joins_the_account_cart_once_however_often_it_is_sent(mode: TestMode) {
    let shop = start(mode).await;
    let alice = &shop.alice;
    shop.create_product("TEA-100", 450).await;
    shop.create_product("TEA-200", 300).await;
    json(
        shop.add(alice, json!({ "sku": "TEA-100", "quantity": 3 }))
            .await,
        200,
    )
    .await;

    // The guest had 1 of TEA-100 (less than the account holds), 2 of TEA-200 (twice, as a
    // browser might send it), and a product the catalog no longer sells.
    let guest = json!({ "lines": [
        { "sku": "TEA-100", "quantity": 1 },
        { "sku": "TEA-200", "quantity": 2 },
        { "sku": "TEA-200", "quantity": 1 },
        { "sku": "GONE-001", "quantity": 5 },
    ] });
    let merged = json(shop.merge(Some(alice), guest.clone()).await, 200).await;
    let expected = [("TEA-100".to_owned(), 3), ("TEA-200".to_owned(), 2)];
    assert_eq!(lines(&merged), expected);
    assert_eq!(merged["total"]["amount_minor"], 3 * 450 + 2 * 300);

    // The answer was lost and the browser sends it again: nothing doubles.
    let again = json(shop.merge(Some(alice), guest).await, 200).await;
    assert_eq!(lines(&again), expected);

    // Another customer's cart is untouched.
    assert_eq!(lines(&shop.cart_of(&shop.bob).await), []);
    shop.shutdown().await;
}

async fn a_bad_merge_is_refused_whole(mode: TestMode) {
    let shop = start(mode).await;
    let alice = &shop.alice;
    shop.create_product("TEA-100", 450).await;

    let answer = shop
        .merge(
            None,
            json!({ "lines": [{ "sku": "TEA-100", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(answer.status(), 401);
    for (body, field) in [
        (json!({ "lines": [] }), "lines"),
        (
            json!({ "lines": [{ "sku": "TEA-100", "quantity": 1 }, { "sku": "bad sku", "quantity": 1 }] }),
            "sku",
        ),
        (
            json!({ "lines": [{ "sku": "TEA-100", "quantity": 1001 }] }),
            "quantity",
        ),
    ] {
        let problem = json(shop.merge(Some(alice), body).await, 422).await;
        let fields = problem_fields(&problem);
        assert!(fields.iter().any(|f| f == field), "{fields:?}");
    }
    let too_many: Vec<_> = (0..101)
        .map(|i| json!({ "sku": format!("TEA-{i:03}"), "quantity": 1 }))
        .collect();
    assert_eq!(
        shop.merge(Some(alice), json!({ "lines": too_many }))
            .await
            .status(),
        422
    );
    // Nothing of the refused merges was written.
    assert_eq!(lines(&shop.cart_of(alice).await), []);
    shop.shutdown().await;
}
