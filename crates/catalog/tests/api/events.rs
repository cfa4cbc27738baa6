//! A product change reaches its consumer through the outbox exactly once in effect, whatever
//! crashes in between.

use std::time::Duration;

use nubo_contracts::catalog::ProductChange;
use nubo_platform::both_modes;
use nubo_platform::events::consumer::{ConsumerRuntime, Outcome};
use nubo_platform::events::relay::Relay;
use nubo_platform::events::{Envelope, outbox};
use nubo_platform::metrics::Metrics;
use nubo_platform::storage::Db;
use nubo_platform::testing::{TestMode, TestSystem};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db};

use crate::helpers::{Admin, product, start_with};

both_modes!(
    a_change_published_twice_by_a_crashed_relay_is_recorded_once,
    a_change_handled_but_never_acknowledged_is_not_handled_again,
    a_poison_event_is_dead_lettered_and_later_events_still_flow,
);

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    // Generous: shared CI machines are noisy, and a slow pass is not a failure.
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn consumer_lag(system: &TestSystem) -> u64 {
    system
        .bus()
        .await
        .pending(nubo_catalog::PRICE_HISTORY_CONSUMER)
        .await
        .unwrap()
}

async fn a_change_published_twice_by_a_crashed_relay_is_recorded_once(mode: TestMode) {
    let mut system = start_with(mode, |_| {}).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-500", 300)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    admin.wait_for_history(&id, 1).await;

    system.stop("catalog").await.unwrap();
    // What a relay that crashed after publishing but before marking leaves behind.
    let db = system.db("catalog").await;
    with_db!(&db, pool => sqlx::query("UPDATE nubo_outbox SET published_at = NULL").execute(pool).await.map(|_| ()))
        .unwrap();
    assert_eq!(outbox::backlog(&db).await.unwrap(), 1);
    system.restart("catalog").await;

    eventually("the relay has published the backlog again", || async {
        outbox::backlog(&db).await.unwrap() == 0
    })
    .await;
    eventually("the consumer has caught up", || async {
        consumer_lag(&system).await == 0
    })
    .await;
    assert_eq!(
        admin.price_history(&id).await.len(),
        1,
        "the change is recorded once"
    );

    let response = admin.update(&id, &product("TEA-500", 350)).await;
    assert_eq!(response.status(), 200);
    let history = admin.wait_for_history(&id, 2).await;
    let prices: Vec<i64> = history
        .iter()
        .map(|p| p["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(prices, [300, 350]);
    system.shutdown().await;
}

async fn a_change_handled_but_never_acknowledged_is_not_handled_again(mode: TestMode) {
    let mut system = start_with(mode, |s| s.event_ack_wait = Duration::from_secs(1)).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-600", 300)).await;
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    admin.wait_for_history(&id.to_string(), 1).await;
    system.stop("catalog").await.unwrap();

    // While catalog is down, an operator's change is committed with its event, and relayed.
    let db = system.db("catalog").await;
    let bus = system.bus().await;
    change_price(&db, id, 420).await;
    let relay = Relay::new(
        db.clone(),
        bus.clone(),
        Duration::from_secs(1),
        Metrics::new("catalog").events_published.clone(),
    );
    assert_eq!(relay.publish_pending().await.unwrap(), 1);

    // A consumer handles it, commits, and dies before its ack reaches the bus.
    let runtime = ConsumerRuntime {
        consumer: nubo_catalog::price_history_consumer(),
        db: db.clone(),
        bus: bus.clone(),
        max_attempts: 5,
        ack_wait: Duration::from_secs(1),
        metrics: Metrics::new("catalog"),
    };
    let mut subscription = bus.subscribe(&runtime.spec()).await.unwrap();
    let deliveries = subscription
        .fetch(10, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        runtime
            .process(&deliveries[0].envelope, deliveries[0].attempt)
            .await,
        Outcome::Handled
    );
    drop(deliveries);
    drop(subscription);
    assert_eq!(admin_history_len(&db, id).await, 2);

    // Back up: the bus redelivers the unacknowledged event; the consumer knows it already.
    system.restart("catalog").await;
    eventually("the redelivery was recognised as a duplicate", || async {
        system
            .metric(
                "catalog",
                "nubo_events_handled_total",
                &["outcome=\"duplicate\""],
            )
            .await
            >= Some(1.0)
    })
    .await;
    eventually("the consumer has caught up", || async {
        consumer_lag(&system).await == 0
    })
    .await;
    let history = admin.price_history(&id.to_string()).await;
    let prices: Vec<i64> = history
        .iter()
        .map(|p| p["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(prices, [300, 420], "each change recorded exactly once");
    system.shutdown().await;
}

async fn a_poison_event_is_dead_lettered_and_later_events_still_flow(mode: TestMode) {
    // A delivery NATS hands to a pull request just as it expires is counted as delivered but
    // never seen, and comes back only after ack_wait: an extra attempt, later. A short ack_wait
    // keeps that within the test's patience; the count may then be past the last attempt.
    let system = start_with(mode, |s| {
        s.event_max_attempts = 3;
        s.event_ack_wait = Duration::from_secs(2);
    })
    .await;
    let admin = Admin::of(&system).await;
    // A producer bug: the right subject, a payload no consumer can read.
    let poison = Envelope {
        id: Uuid::now_v7(),
        subject: "catalog.product_changed.v1".into(),
        source: "catalog".into(),
        occurred_at: nubo_platform::chrono::Utc::now(),
        traceparent: None,
        payload: serde_json::json!({ "surprise": true }),
    };
    system.bus().await.publish(&poison).await.unwrap();
    let created = admin.create_ok(&product("TEA-700", 300)).await;
    admin
        .wait_for_history(created["id"].as_str().unwrap(), 1)
        .await;

    let db = system.db("catalog").await;
    eventually("the poison event is dead-lettered", || async {
        dead_letters(&db)
            .await
            .iter()
            .any(|(event, attempts)| *event == poison.id && *attempts >= 3)
    })
    .await;
    assert!(
        system
            .metric(
                "catalog",
                "nubo_events_handled_total",
                &["outcome=\"dead_lettered\""]
            )
            .await
            >= Some(1.0)
    );
    system.shutdown().await;
}

async fn change_price(db: &Db, id: Uuid, cents: i64) {
    let input: nubo_catalog::domain::ProductInput =
        serde_json::from_value(product("TEA-600", cents)).expect("valid input");
    let valid = input.validate().expect("valid product");
    let mut tx = db.begin().await.unwrap();
    let changed = nubo_catalog::store::update(&mut tx, id, &valid)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    outbox::enqueue(&mut tx, "catalog", &changed.changed(ProductChange::Updated))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn admin_history_len(db: &Db, id: Uuid) -> usize {
    nubo_catalog::store::price_history(db, id)
        .await
        .unwrap()
        .len()
}

async fn dead_letters(db: &Db) -> Vec<(Uuid, i64)> {
    let sql = "SELECT event_id, attempts FROM nubo_dead_letters";
    with_db!(db, pool => sqlx::query_as::<_, (Uuid, i64)>(sql).fetch_all(pool).await).unwrap()
}
