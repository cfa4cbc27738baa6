//! Payments: card payments for checkouts. A checkout authorizes the order's amount on a card
//! under the order id, then captures it when the order is confirmed, voids it when the checkout
//! fails, or refunds it once captured. The card provider sits behind [`provider::CardProvider`];
//! nubo ships a simulated one. Only the card's last four digits and brand are ever stored.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod payments;
pub mod provider;
pub mod routes;
pub mod store;

use nubo_contracts::payments::{PaymentCaptured, PaymentRefunded};
use nubo_platform::events::Event;
use nubo_platform::storage::Migrations;
use nubo_platform::{Context, Parts, ServiceDescription, sqlx};

use crate::config::{Config, PROVIDER_FAILURE_RATE, PROVIDER_LATENCY_MS, PROVIDER_TIMEOUT_MS};
use crate::provider::Provider;

pub use routes::openapi;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "payments",
    migrations: Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    },
    publishes: &[PaymentCaptured::SUBJECT, PaymentRefunded::SUBJECT],
    consumes: &[],
    env: &[
        (
            PROVIDER_LATENCY_MS,
            "how long the simulated card provider takes to answer, in milliseconds",
            "50",
        ),
        (
            PROVIDER_FAILURE_RATE,
            "the fraction of simulated card provider calls that fail transiently, 0.0 to 1.0",
            "0",
        ),
        (
            PROVIDER_TIMEOUT_MS,
            "how long payments waits for the card provider before answering 503, in milliseconds",
            "2000",
        ),
    ],
    check_env: Some(|env, _mode| Config::from_env(env).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    seed: None,
    cache_holds_data: false,
    knobs: &provider::KNOBS,
};

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let config = Config::from_context(&ctx)?;
    let provider = Provider::from_config(&config, ctx.ops.switches());
    Ok(Parts {
        router: routes::router(ctx, provider),
        consumers: vec![],
        tasks: vec![],
    })
}
