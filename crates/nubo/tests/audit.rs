//! `nubo audit` on a real embedded shop: green after checkouts that completed, were declined and
//! were cancelled by an admin after payment; then, with its stores corrupted on purpose, naming
//! each broken record and failing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

mod support;
use support::*;

fn audit(data: &Path, json: bool) -> (bool, String, String) {
    let mut command = nubo();
    command
        .args(["audit", "--grace", "0", "--data-dir"])
        .arg(data);
    if json {
        command.arg("--json");
    }
    let out = run_to_end(command);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every (invariant, record) the JSON report names.
fn breaches(report: &str) -> Vec<(String, String)> {
    let report: Value = serde_json::from_str(report).unwrap();
    let mut found = Vec::new();
    for verdict in report["verdicts"].as_array().unwrap() {
        for breach in verdict["breaches"].as_array().unwrap() {
            found.push((
                verdict["name"].as_str().unwrap().to_owned(),
                breach["record"].as_str().unwrap().to_owned(),
            ));
        }
    }
    found.sort();
    found
}

fn execute(data: &Path, service: &str, statements: &[String]) {
    let runtime = nubo_platform::tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = SqliteConnectOptions::new().filename(data.join(format!("{service}.db")));
        let mut conn = options.connect().await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        conn.close().await.unwrap();
    });
}

#[test]
fn nubo_audit_passes_a_sound_shop_and_names_every_broken_record() {
    let data = tempfile::tempdir().unwrap();
    let port = up_ports();
    let mut child = Running(
        nubo()
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&gateway_ops(port), &mut child);
    let shop = Shop::on(port);
    let customer = shop.log_in("customer@nubo.example", "nubo-customer-demo");
    let admin = shop.log_in("admin@nubo.example", "nubo-admin-demo");
    let page: Value = shop
        .http
        .get(shop.api("/products?per_page=2"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let skus: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    let (sold, untouched) = (skus[0], skus[1]);
    shop.stocked(sold);
    shop.stocked(untouched);

    let a = shop.buy(&customer, sold, GOOD_CARD);
    let b = shop.buy(&customer, sold, GOOD_CARD);
    let c = shop.buy(&customer, sold, GOOD_CARD);
    for order in [&a, &b, &c] {
        assert_eq!(order["state"], "completed", "{order}");
    }
    let declined = shop.buy(&customer, sold, DECLINED_CARD);
    assert_eq!(declined["state"], "cancelled", "{declined}");
    // An admin cancels a paid, shipped order: refunded, its unit back in stock.
    let c_id = c["order_id"].as_str().unwrap();
    let cancel = shop
        .http
        .post(shop.api(&format!("/admin/orders/{c_id}/cancel")))
        .bearer_auth(&admin)
        .json(&json!({ "reason": "the customer sent it back" }))
        .send()
        .unwrap();
    assert!(cancel.status().is_success(), "{}", cancel.text().unwrap());
    let c = shop.settled(&customer, c_id);
    assert_eq!(c["state"], "cancelled", "{c}");
    // The emails and events of the last order leave their outboxes.
    std::thread::sleep(Duration::from_secs(2));
    let status = terminate(&mut child);
    assert!(status.success(), "{status}");

    let (ok, text, stderr) = audit(data.path(), false);
    assert!(ok, "{text}\n{stderr}");
    assert!(!text.contains("BROKEN"), "{text}");
    assert!(
        text.contains("orders: 4 (2 cancelled, 2 completed)"),
        "{text}"
    );
    let (ok, report, _) = audit(data.path(), true);
    assert!(ok);
    assert_eq!(breaches(&report), vec![]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let checked = |name: &str| {
        report["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()["checked"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(checked("orders-settled"), 4);
    assert_eq!(checked("completed-orders-captured"), 2);
    assert_eq!(checked("cancelled-orders-not-charged"), 2);
    // a, b: confirmed; c: confirmed, cancelled, refunded; the declined one: cancelled.
    assert_eq!(checked("one-email-per-event"), 6);

    // Now break one promise of each kind.
    let stuck = uuid::Uuid::now_v7();
    let (a_id, b_id) = (
        a["order_id"].as_str().unwrap(),
        b["order_id"].as_str().unwrap(),
    );
    let hex = |id: &str| id.replace('-', "");
    execute(
        data.path(),
        "orders",
        &[format!(
            "INSERT INTO orders (id, user_id, idempotency_key, fingerprint, email, state, \
             total_minor, currency, created_at, updated_at) VALUES (x'{}', x'{}', 'k', '4242', \
             'x@nubo.example', 'authorized', 100, 'EUR', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            hex(&stuck.to_string()),
            hex(&stuck.to_string())
        )],
    );
    execute(
        data.path(),
        "payments",
        &[format!(
            "INSERT INTO nubo_outbox (id, subject, envelope, created_at, published_at) \
             SELECT x'{}', subject, envelope, created_at, published_at FROM nubo_outbox \
             WHERE subject = 'payments.payment_captured.v1' AND envelope LIKE '%{a_id}%'",
            hex(&uuid::Uuid::now_v7().to_string())
        )],
    );
    execute(
        data.path(),
        "inventory",
        &[
            "PRAGMA ignore_check_constraints = ON".to_owned(),
            format!("UPDATE stock SET on_hand = -2 WHERE sku = '{untouched}'"),
        ],
    );
    execute(
        data.path(),
        "notifications",
        &[format!(
            "DELETE FROM notifications WHERE order_id = x'{}' AND kind = 'order_confirmed'",
            hex(b_id)
        )],
    );

    let (ok, report, stderr) = audit(data.path(), true);
    assert!(!ok, "{report}");
    assert!(
        stderr.contains("4 records break the shop's invariants"),
        "{stderr}"
    );
    let mut expected = vec![
        ("orders-settled".to_owned(), format!("order {stuck}")),
        (
            "one-capture-per-order".to_owned(),
            format!("payment {a_id}"),
        ),
        (
            "stock-not-negative".to_owned(),
            format!("stock {untouched}"),
        ),
        ("one-email-per-event".to_owned(), format!("order {b_id}")),
    ];
    expected.sort();
    assert_eq!(breaches(&report), expected);
    let (_, text, _) = audit(data.path(), false);
    assert!(
        text.contains(&format!("order {stuck}: still authorized")),
        "{text}"
    );
    assert!(
        text.contains(&format!("payment {a_id}: captured 2 times")),
        "{text}"
    );
    assert!(
        text.contains(&format!("stock {untouched}: on hand -2")),
        "{text}"
    );
    assert!(
        text.contains(&format!("order {b_id}: no order_confirmed email")),
        "{text}"
    );
}
