//! The ops console as an operator uses it, through the gateway's admin API: every service seen
//! ready, a payment failure switched on (the next checkout is cancelled and the map shows the
//! errors), "restore all", and the shop back to confirming orders; customers are refused.

use std::time::Duration;

use nubo_platform::both_modes;
use nubo_platform::testing::TestMode;
use serde_json::{Value, json};

use crate::helpers::*;

both_modes!(an_operator_breaks_payments_from_the_console_and_restores_the_shop,);

const SERVICES: [&str; 8] = [
    "gateway",
    "identity",
    "catalog",
    "cart",
    "inventory",
    "orders",
    "payments",
    "notifications",
];

async fn console(shop: &Shop, token: Option<&str>, path: &str) -> reqwest::Response {
    let request = shop.http.get(shop.api(&format!("/admin/ops{path}")));
    let request = match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    };
    request.send().await.unwrap()
}

/// The overview once the console has looked twice, so rates exist.
async fn overview(shop: &Shop) -> Value {
    tokio::time::sleep(Duration::from_millis(1600)).await;
    json(
        console(shop, Some(&shop.admin.token), "/overview").await,
        200,
    )
    .await
}

/// A console route's answer, some time after the last look.
async fn overview_of(shop: &Shop, path: &str) -> Value {
    tokio::time::sleep(Duration::from_millis(500)).await;
    json(console(shop, Some(&shop.admin.token), path).await, 200).await
}

async fn set_faults(shop: &Shop, service: &str, body: Value) -> reqwest::Response {
    shop.http
        .put(shop.api(&format!("/admin/ops/faults/{service}")))
        .bearer_auth(&shop.admin.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn service<'a>(overview: &'a Value, name: &str) -> &'a Value {
    overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not on the map: {overview:#}"))
}

async fn an_operator_breaks_payments_from_the_console_and_restores_the_shop(mode: TestMode) {
    let shop = start(mode).await;
    shop.product("TEA-OPS", "Hojicha", 900, 10).await;
    let erin = shop.customer("erin").await;

    // Every service is on the map, ready, with the call graph's edges and the event flows.
    let first = overview(&shop).await;
    for name in SERVICES {
        assert_eq!(
            service(&first, name)["status"],
            "ready",
            "{name}: {first:#}"
        );
        // Its roll call: the one replica this shop runs.
        let replicas = service(&first, name)["replicas"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(replicas.len(), 1, "{name}: {replicas:#?}");
        assert_eq!(replicas[0]["instance"], service(&first, name)["instance"]);
    }
    let edges = first["edges"].as_array().unwrap();
    let edge = |from: &str, to: &str, kind: &str| {
        edges
            .iter()
            .any(|e| e["from"] == from && e["to"] == to && e["kind"] == kind)
    };
    assert!(edge("gateway", "orders", "http"), "{edges:?}");
    assert!(edge("orders", "payments", "http"), "{edges:?}");
    assert!(edge("orders", "notifications", "event"), "{edges:?}");

    // A customer and a visitor are refused, with problems.
    assert_eq!(
        console(&shop, Some(&erin.token), "/overview")
            .await
            .status(),
        403
    );
    assert_eq!(console(&shop, None, "/overview").await.status(), 401);
    let admin_may = set_faults(&shop, "payments", json!({ "error_rate": 0.5 })).await;
    assert_eq!(admin_may.status(), 200, "an admin may");
    let customer = shop
        .http
        .delete(shop.api("/admin/ops/faults"))
        .bearer_auth(&erin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), 403);

    // Bad switches are refused, naming the field; nothing is changed by them.
    let bad = json(
        set_faults(
            &shop,
            "payments",
            json!({ "error_rate": 2, "knobs": { "nope": 1 } }),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["error_rate", "knobs.nope"], "{bad:#}");
    assert_eq!(
        set_faults(&shop, "warehouse", json!({})).await.status(),
        404
    );

    // The card provider fails every call: the checkout keeps trying, then gives up.
    let on = json(
        set_faults(
            &shop,
            "payments",
            json!({ "knobs": { "provider_failure_rate": 1.0 } }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(on["faults"]["knobs"]["provider_failure_rate"], 1.0);
    assert_eq!(
        on["faults"]["error_rate"], 0.0,
        "the new settings replace the old"
    );
    shop.add_to_cart(&erin, "TEA-OPS", 1).await;
    let response = shop.checkout(&erin, &key(), GOOD_CARD).await;
    let status = response.status().as_u16();
    let order = json(response, status).await;
    assert_eq!(status, 202, "the checkout cannot finish: {order:#}");
    let id = order["order_id"].as_str().unwrap().to_owned();

    // The map shows orders' calls to payments failing, and who switched what.
    let mut seen = Value::Null;
    for _ in 0..20 {
        seen = overview(&shop).await;
        let failing = seen["edges"].as_array().unwrap().iter().any(|e| {
            e["from"] == "orders"
                && e["to"] == "payments"
                && e["error_rate"].as_f64().is_some_and(|r| r > 0.0)
        });
        if failing {
            break;
        }
    }
    let payments = service(&seen, "payments");
    assert_eq!(payments["faults"]["knobs"]["provider_failure_rate"], 1.0);
    let audit = seen["audit"].as_array().unwrap();
    assert!(
        audit.iter().any(|a| a["service"] == "payments"
            && a["who"] == ADMIN_EMAIL
            && a["what"] == "provider_failure_rate 1"),
        "{audit:#?}"
    );
    assert!(
        seen["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "orders"
                && e["to"] == "payments"
                && e["error_rate"].as_f64().is_some_and(|r| r > 0.0)),
        "the map shows the failing calls: {seen:#}"
    );

    // The checkout board shows the order waiting, its last step, the stock it holds, and the
    // event plumbing.
    let board = overview_of(&shop, "/checkouts").await;
    let waiting = board["attention"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == id.as_str())
        .unwrap_or_else(|| panic!("the order is not on the board: {board:#}"));
    assert_eq!(waiting["status"], "pending");
    assert_eq!(
        waiting["last_step"]["step"], "authorize_payment",
        "{waiting:#}"
    );
    assert_eq!(waiting["last_step"]["outcome"], "retrying", "{waiting:#}");
    assert!(
        board["reservations_held"].as_f64().unwrap() >= 1.0,
        "{board:#}"
    );
    assert!(
        board["sagas"]["in_progress"]
            .as_object()
            .unwrap()
            .values()
            .any(|n| n.as_f64() > Some(0.0)),
        "{board:#}"
    );
    let consumers = board["consumers"].as_array().unwrap();
    assert!(
        consumers.iter().any(|c| c["service"] == "notifications"),
        "{consumers:#?}"
    );
    assert!(!board["outbox"].as_array().unwrap().is_empty(), "{board:#}");

    // Past the payment deadline the order is cancelled, in words for the customer.
    shop.system.clock().advance(Duration::from_secs(61));
    eventually("the order is cancelling", || async {
        let order: Value = shop.order(&erin, &id).await.json().await.unwrap();
        order["status"] == "cancelling" || order["status"] == "cancelled"
    })
    .await;

    // The switch is in the logs, with who set it; a level filter keeps only warnings and up.
    let logs = json(
        console(
            &shop,
            Some(&shop.admin.token),
            "/logs?q=fault%20switches&level=warn",
        )
        .await,
        200,
    )
    .await;
    let lines = logs["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["service"] == "payments" && l["fields"]["operator"] == ADMIN_EMAIL),
        "{logs:#}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"] == "WARN" || l["level"] == "ERROR")
    );
    let bad_level = console(&shop, Some(&shop.admin.token), "/logs?level=loud").await;
    assert_eq!(bad_level.status(), 400);
    let bad_cursor = console(&shop, Some(&shop.admin.token), "/logs?after=-1").await;
    assert_eq!(bad_cursor.status(), 422);

    // Restore all: every switch off, the stuck order settles, and the next checkout confirms.
    let restored = json(
        shop.http
            .delete(shop.api("/admin/ops/faults"))
            .bearer_auth(&shop.admin.token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        restored["restored"].as_array().unwrap().len(),
        SERVICES.len()
    );
    let cancelled = shop.settled(&erin, &id).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled:#}");
    assert!(
        shop.payment(&id)
            .await
            .is_none_or(|p| p["status"] != "captured")
    );
    shop.add_to_cart(&erin, "TEA-OPS", 1).await;
    let response = shop.checkout(&erin, &key(), GOOD_CARD).await;
    let trace = response.headers()["x-trace-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let status = response.status().as_u16();
    let order = json(response, status).await;
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let confirmed = shop.settled(&erin, &order_id).await;
    assert_eq!(confirmed["state"], "completed", "{confirmed:#}");

    // Its trace is found by the order's id, and crosses every service the checkout called,
    // with the log lines that carry its id.
    let mut found = Value::Null;
    for _ in 0..20 {
        found = overview_of(&shop, &format!("/traces?order_id={order_id}")).await;
        if found["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["trace_id"] == trace)
        {
            break;
        }
    }
    assert!(
        found["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["trace_id"] == trace),
        "{found:#}"
    );
    let by_user = overview_of(&shop, &format!("/traces?user={}", erin.id)).await;
    assert!(
        by_user["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["trace_id"] == trace),
        "the customer's checkout is found by their id: {by_user:#}"
    );
    let mut detail = Value::Null;
    for _ in 0..20 {
        detail = overview_of(&shop, &format!("/traces/{trace}")).await;
        let services: Vec<&str> = detail["spans"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["service"].as_str())
            .collect();
        if ["gateway", "orders", "inventory", "payments", "cart"]
            .iter()
            .all(|s| services.contains(s))
        {
            break;
        }
    }
    let services: Vec<&str> = detail["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    for service in ["gateway", "orders", "inventory", "payments", "cart"] {
        assert!(
            services.contains(&service),
            "no {service} span: {services:?}"
        );
    }
    assert!(!detail["logs"].as_array().unwrap().is_empty(), "{detail:#}");
    let missing = console(
        &shop,
        Some(&shop.admin.token),
        &format!("/traces/{}", "0".repeat(32)),
    )
    .await;
    assert_eq!(missing.status(), 404);
    let bad = console(&shop, Some(&shop.admin.token), "/traces/not-a-trace").await;
    assert_eq!(bad.status(), 422);
    let after = overview(&shop).await;
    assert!(
        !service(&after, "payments")["faults"]["knobs"]
            .as_object()
            .unwrap()
            .contains_key("provider_failure_rate")
    );
    shop.shutdown().await;
}
