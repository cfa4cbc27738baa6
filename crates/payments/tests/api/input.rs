//! Bad cards and amounts get a clear problem, and nothing is stored; a good card is stored as
//! its last four digits and brand, never its number.

use nubo_platform::axum::http::Method;
use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, problem_fields};
use nubo_platform::uuid::Uuid;
use serde_json::{Value, json};

use crate::helpers::{GOOD_CARD, assert_problem, authorization, json, start};

both_modes!(
    bad_cards_and_amounts_are_refused_field_by_field_and_nothing_is_stored,
    the_card_number_is_never_stored,
);

async fn bad_cards_and_amounts_are_refused_field_by_field_and_nothing_is_stored(mode: TestMode) {
    let shop = start(mode).await;
    let card = |key: &str, value: Value| {
        let mut body = authorization(Uuid::now_v7(), 1000, GOOD_CARD);
        body["card"][key] = value;
        body
    };
    let cases = [
        (card("number", json!("4242424242424241")), "card.number"),
        (card("number", json!("42424242")), "card.number"),
        (card("number", json!("4242-abcd-4242-4242")), "card.number"),
        (card("expiry_year", json!(2020)), "card.expiry_year"),
        (card("expiry_month", json!(13)), "card.expiry_month"),
        (card("cvc", json!("12")), "card.cvc"),
        (card("cvc", json!("12a")), "card.cvc"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(shop.authorize_raw(&body).await, 422).await;
        assert_eq!(problem_fields(&problem), [field], "{body}");
        // The problem names the field, never the number.
        assert!(!problem.to_string().contains("42424242"), "{problem}");
    }
    for amount_minor in [0, -100, 10_000_001, i64::MAX] {
        let response = shop
            .authorize(Uuid::now_v7(), amount_minor, GOOD_CARD)
            .await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(
            problem_fields(&problem),
            ["amount.amount_minor"],
            "{amount_minor}"
        );
    }
    for currency in ["eur", "EURO", ""] {
        let mut body = authorization(Uuid::now_v7(), 100, GOOD_CARD);
        body["amount"]["currency"] = json!(currency);
        let problem = assert_problem(shop.authorize_raw(&body).await, 422).await;
        assert_eq!(
            problem_fields(&problem),
            ["amount.currency"],
            "{currency:?}"
        );
    }
    let mut everything = authorization(Uuid::now_v7(), 0, "1234");
    everything["card"]["cvc"] = json!("1");
    let problem = assert_problem(shop.authorize_raw(&everything).await, 422).await;
    assert_eq!(
        problem_fields(&problem),
        ["amount.amount_minor", "card.number", "card.cvc"]
    );

    let mut bad_id = authorization(Uuid::now_v7(), 100, GOOD_CARD);
    bad_id["payment_id"] = json!("not-a-uuid");
    assert_problem(shop.authorize_raw(&bad_id).await, 422).await;
    let not_json = shop
        .orders
        .send_raw(
            Method::POST,
            "/internal/v1/payments",
            "application/json",
            "{\"amount\": [",
        )
        .await;
    assert_problem(not_json, 400).await;
    let bad_path = shop
        .orders
        .send(
            Method::POST,
            "/internal/v1/payments/not-a-uuid/capture",
            None,
        )
        .await;
    assert_problem(bad_path, 400).await;

    assert_eq!(shop.payments_count().await, 0, "nothing stored");
    shop.shutdown().await;
}

async fn the_card_number_is_never_stored(mode: TestMode) {
    let shop = start(mode).await;
    for number in [GOOD_CARD, "5555 5555 5555 4444", "4000000000000002"] {
        let id = Uuid::now_v7();
        let body = json(shop.authorize(id, 100, number).await, 201).await;
        assert!(!body.to_string().contains("555555555555"), "{body}");
        assert!(!body.to_string().contains("cvc"), "{body}");
    }
    let dump = shop.dump().await;
    assert!(
        dump.contains("4444") && dump.contains("mastercard"),
        "{dump}"
    );
    for secret in ["424242424242", "555555555555", "400000000000", "5555 5555"] {
        assert!(!dump.contains(secret), "{secret} in {dump}");
    }
    shop.shutdown().await;
}
