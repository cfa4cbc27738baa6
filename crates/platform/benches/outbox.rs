//! `outbox/relay_batch_100`: the outbox relay publishing one full batch (100 events, its
//! `BATCH`) from a service's SQLite outbox to the embedded bus, and marking them published.
//!
//! Every write that changes state in nubo (a placed order, a reserved stock line, a product
//! update) leaves an event in its service's outbox, and the relay is the only way out: its
//! throughput bounds how fast events reach their consumers under load, so it is the hot path of
//! the whole event pipeline. This measures `Relay::publish_pending` as `nubo up` runs it: the
//! service's own SQLite file with the platform's migrations, the embedded bus in its own file
//! with one durable consumer of the subject (so each publish also fans out a delivery row). The
//! 100 events are written to the outbox before each timed run, outside the measurement.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nubo_platform::events::relay::Relay;
use nubo_platform::events::{Bus, Event, SubscriptionSpec, outbox};
use nubo_platform::storage::{Db, Migrations};
use nubo_platform::uuid::Uuid;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};

/// The relay's batch: `relay::BATCH`.
const EVENTS: usize = 100;

/// A payload of the shape and size of orders' `OrderPlaced` (the platform cannot depend on
/// `nubo-contracts`, which depends on it): an order of three lines.
#[derive(Serialize, Deserialize)]
struct OrderPlaced {
    order_id: Uuid,
    user_id: Uuid,
    email: String,
    lines: Vec<Line>,
    total: Money,
}

#[derive(Serialize, Deserialize)]
struct Line {
    sku: String,
    name: String,
    quantity: i64,
    unit_price: Money,
    line_total: Money,
}

#[derive(Clone, Serialize, Deserialize)]
struct Money {
    amount_minor: i64,
    currency: String,
}

impl Event for OrderPlaced {
    const SUBJECT: &'static str = "orders.order_placed.v1";
}

fn order() -> OrderPlaced {
    let eur = |amount_minor| Money {
        amount_minor,
        currency: "EUR".to_owned(),
    };
    let lines = [
        ("TEA-001", "Sencha green tea", 2, 499),
        ("CUP-014", "Stoneware cup", 1, 1250),
        ("POT-003", "Cast iron teapot", 1, 3900),
    ]
    .into_iter()
    .map(|(sku, name, quantity, price)| Line {
        sku: sku.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price: eur(price),
        line_total: eur(price * quantity),
    })
    .collect::<Vec<_>>();
    let total = eur(lines.iter().map(|l| l.line_total.amount_minor).sum());
    OrderPlaced {
        order_id: Uuid::now_v7(),
        user_id: Uuid::new_v4(),
        email: "ada@example.com".to_owned(),
        lines,
        total,
    }
}

/// A service's outbox and the embedded bus, as `nubo up` opens them.
struct Pipeline {
    db: Db,
    relay: Relay,
    _dir: tempfile::TempDir,
}

impl Pipeline {
    async fn open() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Db::open_sqlite(dir.path(), "orders", 10)
            .await
            .expect("the service's SQLite file");
        db.migrate(Migrations::NONE)
            .await
            .expect("the platform's tables");
        let bus = Bus::embedded(&dir.path().join("events.db"))
            .await
            .expect("the embedded bus");
        // A consumer of the subject, as notifications is of orders' events: publishing fans out
        // a delivery row for it. Nobody fetches, so the relay's side alone is measured.
        bus.subscribe(&SubscriptionSpec {
            durable: "bench-order-placed".to_owned(),
            subject: OrderPlaced::SUBJECT.to_owned(),
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
        })
        .await
        .expect("a durable consumer");
        let relay = Relay::new(db.clone(), bus, Duration::from_secs(1), Counter::default());
        Self {
            db,
            relay,
            _dir: dir,
        }
    }

    /// Writes a batch of events to the outbox in one transaction, as a burst of checkouts would.
    async fn enqueue_batch(&self) {
        let mut tx = self.db.begin().await.expect("a write transaction");
        for _ in 0..EVENTS {
            outbox::enqueue(&mut tx, "orders", &order())
                .await
                .expect("an outbox row");
        }
        tx.commit().await.expect("commit the outbox rows");
    }
}

fn relay_batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let pipeline = runtime.block_on(Pipeline::open());
    let pipeline = &pipeline;

    let mut group = c.benchmark_group("outbox");
    // A batch takes milliseconds: fewer, longer samples than the default.
    group.sample_size(30);
    group.bench_function("relay_batch_100", |b| {
        b.to_async(&runtime).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                pipeline.enqueue_batch().await;
                let start = Instant::now();
                let published = pipeline.relay.publish_pending().await.expect("relayed");
                timed += start.elapsed();
                assert_eq!(published, EVENTS, "one whole batch went out");
            }
            timed
        });
    });
    group.finish();
}

criterion_group!(benches, relay_batch);
criterion_main!(benches);
