//! Cart: one cart per customer, kept in the platform cache (memory in embedded mode, Redis in
//! distributed mode) as a hash of SKU to quantity. Every change is one atomic hash operation, so
//! concurrent adds never lose a unit, and every write restarts the cart's idle timer: a cart
//! nobody touches for `NUBO_CART_IDLE_TTL_SECS` is forgotten. Names and prices are never stored;
//! they are read from the catalog whenever a cart is shown, so a price change shows at once.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
mod merge;
pub mod routes;

use nubo_platform::storage::Migrations;
use nubo_platform::{Context, Parts, ServiceDescription};

use crate::config::{CURRENCY, Config, IDLE_TTL_SECS};

pub use routes::openapi;

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "cart",
    // The cart lives in the cache; the database holds only the platform's tables.
    migrations: Migrations::NONE,
    publishes: &[],
    consumes: &[],
    env: &[
        (
            IDLE_TTL_SECS,
            "seconds without a change after which a cart is forgotten",
            "604800",
        ),
        (
            CURRENCY,
            "the currency an empty cart's total is shown in",
            "EUR",
        ),
    ],
    check_env: Some(|env, _mode| Config::from_env(env).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    seed: None,
    cache_holds_data: true,
    knobs: &[],
};

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let config = Config::from_context(&ctx)?;
    Ok(Parts {
        router: routes::router(ctx, config),
        ..Parts::default()
    })
}
