//! The catalog: products with SKU, name, description, price, category and image; categories an
//! admin manages; paged lists filtered by category; ranked full-text search; admin create and
//! update, each publishing `ProductChanged` through the outbox; reads served from the cache and
//! marked for HTTP caches; product images (an admin's photo at a few widths, or an illustration
//! drawn for the product); and a price history built from its own events.
#![forbid(unsafe_code)]

mod cached;
pub mod domain;
mod events;
pub mod images;
pub mod routes;
pub mod search;
mod seed;
#[doc(hidden)]
pub use seed::coffees as demo_coffees;
pub mod store;

use nubo_contracts::catalog::ProductChanged;
use nubo_platform::events::Event;
use nubo_platform::events::consumer::Consumer;
use nubo_platform::storage::Migrations;
use nubo_platform::{Consumes, Context, Parts, ServiceDescription, sqlx};

pub use routes::openapi;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "catalog",
    migrations: Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    },
    publishes: &[ProductChanged::SUBJECT],
    consumes: &[Consumes {
        durable: PRICE_HISTORY_CONSUMER,
        subject: ProductChanged::SUBJECT,
    }],
    env: &[],
    check_env: None,
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    seed: Some(|ctx| Box::pin(seed::demo_products(ctx))),
    cache_holds_data: false,
    knobs: &[],
};

/// The durable name of the consumer that records prices.
pub const PRICE_HISTORY_CONSUMER: &str = "catalog-price-history";

/// The consumer that records every price a product has had.
pub fn price_history_consumer() -> Consumer {
    Consumer::new(
        PRICE_HISTORY_CONSUMER,
        ProductChanged::SUBJECT,
        events::RecordPrice,
    )
}

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    Ok(Parts {
        router: routes::router(ctx.clone()),
        consumers: vec![price_history_consumer()],
        tasks: vec![],
    })
}
