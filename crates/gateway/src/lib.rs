//! The gateway: the single entry point on one port. It routes `/api/v1/...` to the service that
//! owns the path prefix, limits each client's request rate, checks bearer tokens against
//! identity's cached keys, adds the request id, and proxies
//! with the platform client (timeouts, retries of idempotent requests, circuit breakers, trace
//! propagation). It also serves the storefront page and the API's OpenAPI document.
#![forbid(unsafe_code)]

mod authenticate;
pub mod console;
pub mod openapi;
mod proxy;
mod rate_limit;
pub mod routes;
mod storefront;

use nubo_platform::storage::Migrations;
use nubo_platform::{Context, Parts, ServiceDescription};

pub const RATE_LIMIT_RPS: &str = "NUBO_GATEWAY_RATE_LIMIT_RPS";
pub const CLIENT_IP_HEADER: &str = "NUBO_GATEWAY_CLIENT_IP_HEADER";

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "gateway",
    migrations: Migrations::NONE,
    publishes: &[],
    consumes: &[],
    env: &[
        (
            RATE_LIMIT_RPS,
            "requests per second one client may send before getting 429",
            "100",
        ),
        (
            CLIENT_IP_HEADER,
            "header holding the client address when behind a trusted proxy (e.g. x-forwarded-for); unset uses the peer address",
            "unset",
        ),
        (
            storefront::DIR,
            "folder to serve the storefront's files from, read on every request (for editing them without a build); unset serves the compiled-in files",
            "unset",
        ),
    ],
    check_env: Some(|env, _mode| rate_limit::Limits::from_env(env).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(console::openapi),
    seed: None,
    cache_holds_data: false,
    knobs: &[],
};

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let limits = rate_limit::Limits::from_context(&ctx)?;
    Ok(Parts {
        router: routes::router(ctx, limits),
        ..Parts::default()
    })
}
