//! `probe`: a service with just the routes the platform tests need.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use nubo_platform::error::Json;
use nubo_platform::storage::Migrations;
use nubo_platform::{Parts, ServiceDescription};
use serde::{Deserialize, Serialize};

pub static PROBE: ServiceDescription = ServiceDescription {
    name: "probe",
    migrations: Migrations::NONE,
    publishes: &[],
    consumes: &[],
    env: &[],
    check_env: None,
    build: |_| {
        Box::pin(async {
            Ok(Parts {
                router: router(),
                ..Parts::default()
            })
        })
    },
    openapi: None,
    seed: None,
    cache_holds_data: false,
    knobs: &[],
};

#[derive(Serialize, Deserialize)]
pub struct Greeting {
    pub name: String,
}

fn router() -> Router {
    Router::new()
        .route(
            "/echo",
            post(|Json(g): Json<Greeting>| async move { Json(g) }),
        )
        .route(
            "/slow/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "done"
                },
            ),
        )
        .route(
            "/panic",
            get(|| async { panic!("a bug in a handler") as &'static str }),
        )
}
