//! Inventory: stock per SKU and reservations for checkouts in progress. A checkout holds stock
//! under its order id, then commits it (the units leave) or releases it (they are available
//! again); a held reservation nobody settles is released when it expires. Available stock
//! (on hand minus reserved) never goes below zero, also when checkouts race for the last unit:
//! every change is one conditional UPDATE that the stock row itself decides.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
mod events;
pub mod reservations;
pub mod routes;
pub mod store;

use nubo_contracts::catalog::ProductChanged;
use nubo_contracts::inventory::StockReleased;
use nubo_platform::events::Event;
use nubo_platform::events::consumer::Consumer;
use nubo_platform::storage::Migrations;
use nubo_platform::{Consumes, Context, Parts, ServiceDescription, Task, sqlx};

use crate::config::{Config, EXPIRY_SWEEP_MS, INITIAL_STOCK};

pub use routes::openapi;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "inventory",
    migrations: Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    },
    publishes: &[StockReleased::SUBJECT],
    consumes: &[Consumes {
        durable: PRODUCTS_CONSUMER,
        subject: ProductChanged::SUBJECT,
    }],
    env: &[
        (
            EXPIRY_SWEEP_MS,
            "how often held reservations past their expiry are released, in milliseconds",
            "1000",
        ),
        (
            INITIAL_STOCK,
            "units on hand a product gets when the catalog first announces it",
            "0",
        ),
    ],
    check_env: Some(|env, _mode| Config::from_env(env).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    // Demo stock arrives through NUBO_INVENTORY_INITIAL_STOCK as the catalog seeds products.
    seed: None,
    cache_holds_data: false,
    knobs: &[],
};

/// The durable name of the consumer that gives new products their stock.
pub const PRODUCTS_CONSUMER: &str = "inventory-products";

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let config = Config::from_context(&ctx)?;
    let sweeper = ctx.clone();
    Ok(Parts {
        router: routes::router(ctx),
        consumers: vec![Consumer::new(
            PRODUCTS_CONSUMER,
            ProductChanged::SUBJECT,
            events::StockNewProducts {
                initial_stock: config.initial_stock,
            },
        )],
        tasks: vec![Task::new("inventory-reservation-expiry", move |token| {
            reservations::expire_reservations(sweeper, config.expiry_sweep, token)
        })],
    })
}
