//! The JSON of the catalog's two most read answers, as its handlers produce them:
//!
//! - `catalog/product_page_json`: a page of 20 products (`routes::ProductPage`, the default
//!   `per_page`) turned into the response `GET /api/v1/products` sends, through the same
//!   `nubo_platform::error::Json` the handler returns;
//! - `catalog/product_json`: one product (`domain::Product`) as `GET /api/v1/products/{id}`
//!   answers it;
//! - `catalog/product_page_from_cache`: the cache hit that comes before the first, the page read
//!   back from the cache (`Cache::get_json`, the in-memory cache of embedded mode).
//!
//! Browsing is most of a shop's traffic, and a page served from the cache costs little more than
//! decoding it and encoding it again, so the JSON is most of what catalog spends on it. The
//! products are the demo catalog's coffees (a name, a sentence of description, a price, two
//! image URLs).

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use nubo_catalog::domain::Product;
use nubo_catalog::routes::ProductPage;
use nubo_contracts::Money;
use nubo_platform::axum::response::IntoResponse;
use nubo_platform::cache::Cache;
use nubo_platform::chrono::{TimeZone, Utc};
use nubo_platform::error::Json;
use nubo_platform::uuid::Uuid;

/// The default `per_page` of the product list.
const PER_PAGE: u32 = 20;

fn product(n: usize) -> Product {
    let coffees = nubo_catalog::demo_coffees();
    let (name, description, cents) = coffees[n % coffees.len()];
    let sku = format!("COF-{:03}", n + 1);
    let created = Utc
        .with_ymd_and_hms(2026, 3, 14, 9, 26, 53)
        .single()
        .expect("a valid date");
    Product {
        id: Uuid::now_v7(),
        image: nubo_catalog::domain::image_path(&sku, 3),
        image_url: format!("https://images.nubo.example/products/{sku}.jpg"),
        sku,
        name: name.to_owned(),
        description: description.to_owned(),
        price: Money::parse(cents, "EUR").expect("a valid price"),
        category: "coffee".to_owned(),
        version: 3,
        created_at: created,
        updated_at: created + nubo_platform::chrono::Duration::days(12),
    }
}

fn first_page() -> ProductPage {
    ProductPage {
        items: (0..PER_PAGE as usize).map(product).collect(),
        page: 1,
        per_page: PER_PAGE,
        total: 137,
    }
}

fn json(c: &mut Criterion) {
    let items = first_page().items;
    let one = product(0);
    let mut group = c.benchmark_group("catalog");
    // The handler owns the value it answers with: each run gets its own copy, made untimed.
    group.bench_function("product_page_json", |b| {
        b.iter_batched(
            || {
                Json(ProductPage {
                    items: items.clone(),
                    page: 1,
                    per_page: PER_PAGE,
                    total: 137,
                })
            },
            IntoResponse::into_response,
            BatchSize::SmallInput,
        );
    });
    group.bench_function("product_json", |b| {
        b.iter_batched(
            || Json(one.clone()),
            IntoResponse::into_response,
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Embedded mode's cache, holding the page under a key like `cached::list`'s.
    let cache = Cache::memory(100_000);
    let key = "catalog:products:1:*:1:20";
    runtime
        .block_on(cache.set_json(key, &first_page(), Duration::from_secs(3600)))
        .expect("the page cached");
    let cache = &cache;
    let mut group = c.benchmark_group("catalog");
    group.bench_function("product_page_from_cache", |b| {
        b.to_async(&runtime).iter(|| async move {
            cache
                .get_json::<ProductPage>(key)
                .await
                .expect("the cache answers")
                .expect("a hit")
        });
    });
    group.finish();
}

criterion_group!(benches, json, cache_hit);
criterion_main!(benches);
