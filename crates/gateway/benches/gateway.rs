//! The gateway's routing and proxying, which every request to the shop's API goes through:
//!
//! - `gateway/path_check`: the normal-form check of the request path
//!   (`nubo_platform::server::path::check`), run on every request by every service's server
//!   stack, the gateway's first, before any routing;
//! - `gateway/route_owner`: choosing the service that owns the path (`routes::owner`, the
//!   longest matching prefix of `ROUTES`), run on every proxied request;
//! - `gateway/proxy_product_page`: one whole request through a running gateway to catalog, an
//!   anonymous shopper's first page of products (served from catalog's cache): the client's
//!   HTTP/1.1 on loopback, the gateway's stack (path check, rate limit, a look for a bearer
//!   token, which `token_check/verify` measures when there is one, proxy), its mutual-TLS hop to
//!   catalog, catalog's own stack and handler, and back. The gateway's router cannot be called
//!   in memory from outside the platform (its `Context` is built only by a running
//!   application), so this runs both services in embedded mode with the test harness, as the
//!   gateway's tests do.
//!
//! The first two are nanoseconds against the third's fraction of a millisecond; they are here so
//! a regression in either shows up on its own rather than as noise in the whole request.

use criterion::{Criterion, criterion_group, criterion_main};
use nubo_gateway::routes;
use nubo_platform::server::path;
use nubo_platform::testing::{TestMode, TestSystem};

/// A product page's path, the most common kind a shopper sends.
const PRODUCT_PATH: &str = "/api/v1/products/0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
/// An admin path, which a shorter prefix (`products`) must not win.
const ADMIN_PATH: &str = "/api/v1/admin/products/0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";

fn routing(c: &mut Criterion) {
    assert_eq!(path::check(PRODUCT_PATH), Ok(()));
    assert_eq!(routes::owner(ADMIN_PATH), Some("catalog"));
    let mut group = c.benchmark_group("gateway");
    group.bench_function("path_check", |b| {
        b.iter(|| path::check(std::hint::black_box(PRODUCT_PATH)));
    });
    group.bench_function("route_owner", |b| {
        b.iter(|| routes::owner(std::hint::black_box(ADMIN_PATH)));
    });
    group.finish();
}

fn proxying(c: &mut Criterion) {
    // Two workers, as the services' tests run: the client, the gateway and catalog share them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let system = runtime.block_on(TestSystem::start_with(
        TestMode::Embedded,
        &[&nubo_catalog::SERVICE, &nubo_gateway::SERVICE],
        // The demo catalog, so the page holds the products a shopper would see.
        |settings| settings.seed_demo_data = true,
        // One client sends every request: it must not be held to a shopper's rate.
        &[(nubo_gateway::RATE_LIMIT_RPS, "1000000")],
    ));
    let url = format!("{}/api/v1/products?per_page=20", system.url("gateway"));
    let client = reqwest::Client::new();
    let (client, url) = (&client, url.as_str());
    let fetch = move || async move {
        let response = client.get(url).send().await.expect("the gateway answers");
        assert_eq!(response.status(), 200, "a page of products");
        response.bytes().await.expect("the page")
    };
    // The first request fills catalog's cache; a shopper's are served from it.
    let page = runtime.block_on(fetch());
    let page: serde_json::Value = serde_json::from_slice(&page).expect("JSON");
    assert!(
        !page["items"].as_array().expect("items").is_empty(),
        "the demo catalog has products"
    );

    let mut group = c.benchmark_group("gateway");
    group.bench_function("proxy_product_page", |b| {
        b.to_async(&runtime).iter(fetch);
    });
    group.finish();
    runtime.block_on(system.shutdown());
}

criterion_group!(benches, routing, proxying);
criterion_main!(benches);
