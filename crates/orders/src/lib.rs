//! Orders: the checkout and every customer's orders. A checkout turns the customer's cart into
//! an order and runs the saga that reserves its stock (inventory), authorizes and captures its
//! payment (payments) and takes its lines out of the cart (cart), or undoes what it did when a
//! step is refused; see [`saga`]. The same `Idempotency-Key` from a customer always answers with the same order.
#![forbid(unsafe_code)]

pub mod config;
pub mod delivery;
pub mod domain;
pub mod metrics;
pub mod placing;
pub mod routes;
pub mod saga;
pub mod store;
pub mod words;

use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderPlaced};
use nubo_platform::events::Event;
use nubo_platform::storage::Migrations;
use nubo_platform::{Context, Parts, ServiceDescription, Task, sqlx};

use crate::config::Config;
use crate::saga::Checkouts;

pub use routes::openapi;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "orders",
    migrations: Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    },
    publishes: &[
        OrderPlaced::SUBJECT,
        OrderConfirmed::SUBJECT,
        OrderCancelled::SUBJECT,
    ],
    consumes: &[],
    env: config::VARIABLES,
    check_env: Some(|env, _mode| Config::from_env(env).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    seed: None,
    cache_holds_data: false,
    knobs: &[],
};

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let config = Config::from_context(&ctx)?;
    let (checkouts, jobs) = Checkouts::new(ctx, config);
    let runner = checkouts.clone();
    Ok(Parts {
        router: routes::router(checkouts),
        consumers: vec![],
        tasks: vec![Task::new("orders-checkout-saga", move |token| {
            runner.run(jobs, token)
        })],
    })
}
