//! Admins look emails up: newest first, filtered by order, status and kind, a page at a time.
//! Nobody else sees them, and a query the API does not understand is answered with a problem.

use std::collections::HashSet;

use nubo_platform::both_modes;
use nubo_platform::uuid::Uuid;
use serde_json::Value;

use crate::helpers::*;

both_modes!(
    admins_filter_and_page_through_every_email,
    only_admins_see_emails,
    a_query_the_api_does_not_understand_is_a_problem,
);

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn admins_filter_and_page_through_every_email(mode: TestMode) {
    let shop = start(mode).await;
    // One order confirmed, then cancelled and refunded; four more only confirmed.
    let troubled = Order::new("lea@example.org");
    shop.publish(&troubled.placed()).await;
    let mut written = vec![
        (
            troubled.order_id,
            shop.publish(&troubled.confirmed()).await.id,
        ),
        (
            troubled.order_id,
            shop.publish(&troubled.cancelled("We could not ship it", true))
                .await
                .id,
        ),
        (
            troubled.order_id,
            shop.publish(&troubled.refunded()).await.id,
        ),
    ];
    for n in 0..4 {
        let order = Order::new(&format!("customer{n}@example.org"));
        written.push((order.order_id, shop.publish(&order.confirmed()).await.id));
    }
    let mut all = Vec::new();
    for (order_id, event_id) in &written {
        let email = shop.email_for(*order_id, *event_id).await;
        all.push(
            shop.email_in_status(email["id"].as_str().unwrap(), shop.delivered_status())
                .await,
        );
    }

    // Everything, newest first.
    let page = shop.list("").await;
    let listed = ids(&page);
    assert_eq!(listed.len(), 7);
    assert!(
        page.get("next_before").is_none(),
        "one page holds all: {page}"
    );
    let mut newest_first = listed.clone();
    newest_first.sort_by_key(|id| std::cmp::Reverse(id.parse::<Uuid>().unwrap()));
    assert_eq!(listed, newest_first);

    // By order: the three emails of the troubled order.
    let about = shop.list(&format!("?order_id={}", troubled.order_id)).await;
    let kinds: HashSet<String> = about["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        HashSet::from(["order_confirmed", "order_cancelled", "payment_refunded"].map(String::from))
    );

    // By kind, and kind with order.
    assert_eq!(ids(&shop.list("?kind=order_confirmed").await).len(), 5);
    assert_eq!(ids(&shop.list("?kind=payment_refunded").await).len(), 1);
    let query = format!("?kind=order_cancelled&order_id={}", troubled.order_id);
    assert_eq!(ids(&shop.list(&query).await).len(), 1);

    // By status: all delivered, none failed.
    let query = format!("?status={}", shop.delivered_status());
    assert_eq!(ids(&shop.list(&query).await).len(), 7);
    assert_eq!(ids(&shop.list("?status=failed").await).len(), 0);

    // Pages of three: 3 + 3 + 1, each following the one before, no email twice.
    let mut paged = Vec::new();
    let mut query = "?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = shop.list(&query).await;
        pages += 1;
        paged.extend(ids(&page));
        match page.get("next_before").and_then(Value::as_str) {
            Some(before) => query = format!("?limit=3&before={before}"),
            None => break,
        }
    }
    assert_eq!(paged, listed);
    assert_eq!(pages, 3);

    // Paging and filters together.
    let page = shop.list("?kind=order_confirmed&limit=4").await;
    let before = page["next_before"].as_str().unwrap();
    let rest = shop
        .list(&format!("?kind=order_confirmed&limit=4&before={before}"))
        .await;
    assert_eq!(ids(&rest).len(), 1);
    assert!(rest.get("next_before").is_none());

    // One by id: the same email the listing shows.
    let first = &page["items"][0];
    let response = shop
        .get_as(Some(&shop.admin_token), first["id"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), 200);
    let one: Value = response.json().await.unwrap();
    assert_eq!(&one, first);
    assert!(all.contains(&one));
    shop.shutdown().await;
}

async fn only_admins_see_emails(mode: TestMode) {
    let shop = start(mode).await;
    let order = Order::new("max@example.org");
    let event = shop.publish(&order.confirmed()).await;
    let email = shop.email_for(order.order_id, event.id).await;
    let id = email["id"].as_str().unwrap();

    assert_problem(shop.list_as(None, "").await, 401).await;
    assert_problem(shop.get_as(None, id).await, 401).await;
    assert_problem(shop.list_as(Some("not-a-token"), "").await, 401).await;
    assert_problem(shop.list_as(Some(&shop.customer_token), "").await, 403).await;
    assert_problem(shop.get_as(Some(&shop.customer_token), id).await, 403).await;
    shop.shutdown().await;
}

async fn a_query_the_api_does_not_understand_is_a_problem(mode: TestMode) {
    let shop = start(mode).await;
    let admin = Some(shop.admin_token.as_str());

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?status=shipped", "status"),
        ("?kind=order_shipped", "kind"),
    ] {
        let body = assert_problem(shop.list_as(admin, query).await, 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let body = assert_problem(shop.list_as(admin, "?status=lost&limit=0").await, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    for query in [
        "?limit=ten",
        "?limit=-1",
        "?order_id=42",
        "?before=yesterday",
        "?colour=blue",
    ] {
        assert_problem(shop.list_as(admin, query).await, 400).await;
    }
    assert_problem(shop.get_as(admin, "not-an-id").await, 400).await;
    let body = assert_problem(shop.get_as(admin, &Uuid::now_v7().to_string()).await, 404).await;
    assert_eq!(body["detail"], "notification not found");
    shop.shutdown().await;
}
