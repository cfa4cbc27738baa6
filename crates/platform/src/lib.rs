//! The cloud-native runtime every nubo service stands on: configuration, telemetry, health,
//! the HTTP server and client stacks, errors, storage, events and cache. Nothing here knows about
//! commerce; a service crate brings its domain and a [`service::ServiceDescription`], and
//! [`app::Application`] runs it.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod health;
pub mod http_cache;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use app::{Application, Wiring};
pub use error::{ApiError, OrNotFound, Problem};
pub use service::{Consumes, Context, Parts, ServiceDescription, Task};
pub use storage::{Db, Migrations, Tx};

/// Every nubo binary allocates with mimalloc: under load glibc's allocator spent a quarter of
/// the gateway's time in malloc and free, much of it waiting on its arena locks (BENCHMARKS.md).
/// Built without transparent huge pages (`no_thp`): with them the idle shop was 2 MiB pages
/// mostly empty, 125 MiB resident instead of 82.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Re-exported so service crates use the platform's versions.
pub use {async_trait, axum, chrono, futures, serde_json, sqlx, tokio, tokio_util, tracing, uuid};
