//! `orders/saga_step`: one step of the checkout saga, the `confirm` step, against orders' own
//! SQLite store with its real migrations.
//!
//! Every checkout takes six forward steps, and each is one pass of the runner: take or renew the
//! saga's lease while reading the order (`store::lease`, one `UPDATE ... RETURNING`), then, once
//! the step's service has answered, move the order in one transaction (`Checkouts::advance`:
//! `store::transition`, `store::record_step`, and for `confirm` the `OrderConfirmed` event into
//! the outbox). So a checkout costs six of these on orders' database, which is what limits how
//! many checkouts a replica's single SQLite writer can take. `confirm` is the step that calls no
//! other service and writes an event, so the pass measured here is the database's whole share
//! of a step and nothing else.
//!
//! `Checkouts` (and so `advance` and the steps) can only be built from a running service's
//! `Context`, which the platform alone creates; the bench makes the same calls, in the same
//! order and transaction, as `runner::pass` and `Checkouts::advance` do for this step. Each
//! timed pass gets a fresh order, placed, reserved and authorized outside the measurement.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nubo_contracts::Money;
use nubo_contracts::orders::{Contact, OrderConfirmed, OrderLine, OrderShipping};
use nubo_orders::config::Config;
use nubo_orders::domain::State;
use nubo_orders::store::{self, NewOrder};
use nubo_platform::chrono::{TimeDelta, Utc};
use nubo_platform::events::outbox;
use nubo_platform::storage::Db;
use nubo_platform::uuid::Uuid;

/// Three lines, a usual basket.
fn lines() -> Vec<OrderLine> {
    let eur = |amount_minor| Money::parse(amount_minor, "EUR").expect("a valid price");
    [
        ("TEA-001", "Sencha green tea", 2, 499),
        ("CUP-014", "Stoneware cup", 1, 1250),
        ("POT-003", "Cast iron teapot", 1, 3900),
    ]
    .into_iter()
    .map(|(sku, name, quantity, price)| OrderLine {
        sku: sku.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price: eur(price),
        line_total: eur(price * quantity),
    })
    .collect()
}

/// orders' store, and the replica that runs the sagas.
struct Orders {
    db: Db,
    owner: Uuid,
    /// How long a pass's lease runs: orders' default (`NUBO_ORDERS_LEASE_MS`).
    lease: TimeDelta,
    lines: Vec<OrderLine>,
    total: Money,
    _dir: tempfile::TempDir,
}

impl Orders {
    async fn open() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Db::open_sqlite(dir.path(), "orders", 10)
            .await
            .expect("orders' SQLite file");
        db.migrate(nubo_orders::SERVICE.migrations)
            .await
            .expect("orders' tables");
        let lines = lines();
        let total = Money::parse(lines.iter().map(|l| l.line_total.amount_minor).sum(), "EUR")
            .expect("a valid total");
        let config = Config::from_env(&BTreeMap::new()).expect("orders' defaults");
        Self {
            db,
            owner: Uuid::new_v4(),
            lease: TimeDelta::from_std(config.lease).expect("a lease of seconds"),
            lines,
            total,
            _dir: dir,
        }
    }

    /// An order whose stock is reserved and card authorized: next, `confirm`.
    async fn authorized_order(&self) -> Uuid {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let key = id.to_string();
        let mut tx = self.db.begin().await.expect("a write transaction");
        let contact = Contact {
            email: "ada@example.com".into(),
            phone: None,
        };
        let shipping = OrderShipping {
            option: "collect".into(),
            name: "Collect at the shop".into(),
            price: Money {
                amount_minor: 0,
                currency: "EUR".into(),
            },
            address: None,
        };
        let number = nubo_orders::domain::order_number();
        let new = NewOrder {
            id,
            user_id: Uuid::new_v4(),
            idempotency_key: &key,
            fingerprint: "4242:12/2030",
            number: &number,
            contact: &contact,
            shipping: &shipping,
            lines: &self.lines,
            total: &self.total,
            lease_owner: self.owner,
            lease_until: now + self.lease,
        };
        assert!(store::insert(&mut tx, &new, now).await.expect("placed"));
        store::record_step(&mut tx, id, "place", "done", None, now)
            .await
            .expect("a step");
        for (from, to, step) in [
            (State::Placed, State::Reserved, "reserve_stock"),
            (State::Reserved, State::Authorized, "authorize_payment"),
        ] {
            assert!(
                store::transition(&mut tx, id, from, to, None, now)
                    .await
                    .expect("moved")
            );
            store::record_step(&mut tx, id, step, "done", None, now)
                .await
                .expect("a step");
        }
        tx.commit().await.expect("commit the order");
        id
    }

    /// One pass of the runner on the order, taking the `confirm` step.
    async fn confirm_pass(&self, id: Uuid) {
        // runner::pass: the lease, read with the order; its lines are known from the first pass.
        let now = Utc::now();
        let order = store::lease(
            &self.db,
            id,
            self.owner,
            now,
            now + self.lease,
            Some(&self.lines),
        )
        .await
        .expect("the lease")
        .expect("the order is ours to run");
        assert_eq!(order.state, State::Authorized);
        // Checkouts::advance(order, Confirmed, "confirm", None).
        let mut tx = self.db.begin().await.expect("a write transaction");
        let now = Utc::now();
        let moved = store::transition(&mut tx, id, order.state, State::Confirmed, None, now)
            .await
            .expect("the move");
        assert!(moved, "nobody else moves the order");
        store::record_step(&mut tx, id, "confirm", "done", None, now)
            .await
            .expect("the step");
        let event = OrderConfirmed {
            order_id: id,
            number: order.order.number.clone(),
            user_id: order.order.user_id,
            email: order.email.clone(),
            phone: order.order.contact.phone.clone(),
            lines: order.order.lines.clone(),
            total: order.order.total.clone(),
        };
        outbox::enqueue(&mut tx, "orders", &event)
            .await
            .expect("the event");
        tx.commit().await.expect("commit the step");
    }
}

fn saga_step(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let orders = runtime.block_on(Orders::open());
    let orders = &orders;

    let mut group = c.benchmark_group("orders");
    group.bench_function("saga_step", |b| {
        b.to_async(&runtime).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let id = orders.authorized_order().await;
                let start = Instant::now();
                orders.confirm_pass(id).await;
                timed += start.elapsed();
            }
            timed
        });
    });
    group.finish();
}

criterion_group!(benches, saga_step);
criterion_main!(benches);
