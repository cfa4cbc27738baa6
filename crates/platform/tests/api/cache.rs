//! The cache's contract, told once against [`Cache`] and run against both back ends: memory
//! (moka, embedded) and Redis (distributed). A service that caches reads, counts rate-limit windows
//! or keeps a cart in a hash relies on exactly these stories, whichever mode it runs in.
//!
//! Each story gets a cache of its own: a new memory cache, or a namespace of its own on the Redis
//! server. What only one back end has (the memory bound, Redis key names and namespaces, an
//! unreachable server) is tested next to it in `cache.rs`.

use std::time::Duration;

use bytes::Bytes;
use nubo_platform::both_modes;
use nubo_platform::cache::Cache;
use nubo_platform::testing::{TestMode, redis_url};
use uuid::Uuid;

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Product {
    sku: String,
    price_minor: i64,
}

both_modes!(
    a_stored_value_is_read_back_until_deleted,
    an_entry_disappears_after_its_ttl,
    json_round_trips_and_garbage_is_a_miss,
    a_counter_counts_then_restarts_after_its_window,
    incrementing_does_not_extend_the_window,
    concurrent_increments_are_all_counted,
    a_value_that_is_not_a_number_is_not_a_counter,
    a_hash_keeps_fields_until_they_are_deleted,
    every_hash_write_refreshes_its_ttl,
    a_take_happens_once_per_token_and_empties_lines_it_uses_up,
    concurrent_hash_updates_are_all_kept,
    a_hash_field_that_is_not_a_number_is_not_a_counter,
);

/// A cache of the story's own: a new one in memory, or a namespace of its own on Redis.
async fn fresh_cache(mode: TestMode) -> Cache {
    match mode {
        TestMode::Embedded => Cache::memory(1_000),
        TestMode::Distributed => {
            let namespace = format!("test-cache-{}", Uuid::new_v4().simple());
            Cache::redis(&redis_url(), &namespace)
                .await
                .expect("connect to Redis")
        }
    }
}

// A value: read back until it is replaced, deleted or its time is up.

async fn a_stored_value_is_read_back_until_deleted(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    assert_eq!(cache.get("product:TEA-1").await.unwrap(), None);
    // A second write replaces the first.
    for name in [&b"green tea"[..], b"black tea"] {
        let name = Bytes::from_static(name);
        cache
            .set("product:TEA-1", name.clone(), MINUTE)
            .await
            .unwrap();
        assert_eq!(cache.get("product:TEA-1").await.unwrap(), Some(name));
    }
    cache.delete("product:TEA-1").await.unwrap();
    assert_eq!(cache.get("product:TEA-1").await.unwrap(), None);
    // Deleting what is not there is not an error.
    cache.delete("product:TEA-1").await.unwrap();
    cache.ping().await.unwrap();
}

async fn an_entry_disappears_after_its_ttl(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    cache
        .set(
            "short",
            Bytes::from_static(b"x"),
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    cache
        .set("long", Bytes::from_static(b"y"), MINUTE)
        .await
        .unwrap();
    assert!(cache.get("short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("short").await.unwrap(), None);
    assert!(cache.get("long").await.unwrap().is_some());
}

async fn json_round_trips_and_garbage_is_a_miss(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let tea = Product {
        sku: "TEA-1".into(),
        price_minor: 450,
    };
    cache.set_json("product:TEA-1", &tea, MINUTE).await.unwrap();
    assert_eq!(
        cache.get_json::<Product>("product:TEA-1").await.unwrap(),
        Some(tea)
    );
    assert_eq!(cache.get_json::<Product>("absent").await.unwrap(), None);

    cache
        .set("product:OLD", Bytes::from_static(b"{\"name\":1}"), MINUTE)
        .await
        .unwrap();
    assert_eq!(
        cache.get_json::<Product>("product:OLD").await.unwrap(),
        None
    );
}

// A counter: a fixed window, counted exactly however many count at once.

async fn a_counter_counts_then_restarts_after_its_window(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let window = Duration::from_millis(300);
    assert_eq!(cache.incr("rate:alice", window).await.unwrap(), 1);
    assert_eq!(cache.incr("rate:alice", window).await.unwrap(), 2);
    assert_eq!(cache.incr("rate:alice", window).await.unwrap(), 3);
    assert_eq!(
        cache.get("rate:alice").await.unwrap(),
        Some(Bytes::from_static(b"3"))
    );
    // Another user's window is separate.
    assert_eq!(cache.incr("rate:bob", window).await.unwrap(), 1);
    // Counts kept elsewhere are added in one go, to a fresh counter or a running one.
    assert_eq!(cache.incr_by("rate:carol", 5, window).await.unwrap(), 5);
    assert_eq!(cache.incr_by("rate:bob", 4, window).await.unwrap(), 5);

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cache.incr("rate:alice", window).await.unwrap(), 1);
}

async fn incrementing_does_not_extend_the_window(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let window = Duration::from_millis(400);
    assert_eq!(cache.incr("gen", window).await.unwrap(), 1);
    // Keep incrementing past the window's end; had each increment renewed the TTL, the
    // counter would never restart.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cache.incr("gen", window).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cache.incr("gen", window).await.unwrap(), 1);
}

async fn concurrent_increments_are_all_counted(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.incr("hits", MINUTE).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<i64>>());
    assert_eq!(
        cache.get("hits").await.unwrap(),
        Some(Bytes::from_static(b"20"))
    );
}

async fn a_value_that_is_not_a_number_is_not_a_counter(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    cache
        .set("name", Bytes::from_static(b"tea"), MINUTE)
        .await
        .unwrap();
    assert!(cache.incr("name", MINUTE).await.is_err());
    // A number written as a value counts on from there, as on Redis.
    cache
        .set("count", Bytes::from_static(b"41"), MINUTE)
        .await
        .unwrap();
    assert_eq!(cache.incr("count", MINUTE).await.unwrap(), 42);
}

// A hash: fields kept together, alive while written to, taken from once per token.

async fn a_hash_keeps_fields_until_they_are_deleted(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    assert!(cache.hash_get_all("cart:alice").await.unwrap().is_empty());
    cache
        .hash_set("cart:alice", "TEA-2", Bytes::from_static(b"3"), MINUTE)
        .await
        .unwrap();
    assert_eq!(
        cache
            .hash_incr("cart:alice", "TEA-1", 2, MINUTE)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        cache
            .hash_incr("cart:alice", "TEA-1", -1, MINUTE)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cache.hash_get_all("cart:alice").await.unwrap(),
        vec![
            ("TEA-1".to_owned(), Bytes::from_static(b"1")),
            ("TEA-2".to_owned(), Bytes::from_static(b"3")),
        ]
    );
    // Another key's hash is separate.
    assert!(cache.hash_get_all("cart:bob").await.unwrap().is_empty());
    cache
        .hash_delete("cart:alice", "TEA-2", MINUTE)
        .await
        .unwrap();
    cache
        .hash_delete("cart:alice", "NONE", MINUTE)
        .await
        .unwrap();
    cache
        .hash_delete("cart:bob", "TEA-1", MINUTE)
        .await
        .unwrap();
    assert_eq!(
        cache.hash_get_all("cart:alice").await.unwrap(),
        vec![("TEA-1".to_owned(), Bytes::from_static(b"1"))]
    );
    assert!(cache.hash_get_all("cart:bob").await.unwrap().is_empty());
    cache.delete("cart:alice").await.unwrap();
    assert!(cache.hash_get_all("cart:alice").await.unwrap().is_empty());
}

async fn every_hash_write_refreshes_its_ttl(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let ttl = Duration::from_millis(400);
    cache
        .hash_set("idle", "a", Bytes::from_static(b"1"), ttl)
        .await
        .unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        cache.hash_incr("idle", "a", 1, ttl).await.unwrap();
    }
    assert_eq!(
        cache.hash_get_all("idle").await.unwrap(),
        vec![("a".to_owned(), Bytes::from_static(b"7"))]
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(cache.hash_get_all("idle").await.unwrap().is_empty());
}

async fn a_take_happens_once_per_token_and_empties_lines_it_uses_up(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let cart = "cart:alice";
    for (sku, quantity) in [("TEA-1", 3), ("TEA-2", 1), ("TEA-3", 5)] {
        cache.hash_incr(cart, sku, quantity, MINUTE).await.unwrap();
    }
    let order = [("TEA-1", 2), ("TEA-2", 4), ("TEA-9", 1)];
    assert!(
        cache
            .hash_take_once(cart, &order, "taken:order-1", MINUTE, MINUTE)
            .await
            .unwrap()
    );
    let left = |fields: Vec<(String, Bytes)>| -> Vec<(String, String)> {
        fields
            .into_iter()
            .map(|(f, v)| (f, String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    };
    let expected = vec![
        ("TEA-1".to_owned(), "1".to_owned()),
        ("TEA-3".to_owned(), "5".to_owned()),
    ];
    assert_eq!(left(cache.hash_get_all(cart).await.unwrap()), expected);

    // The same token again, also at once from many callers, takes nothing more.
    let retries: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .hash_take_once(cart, &order, "taken:order-1", MINUTE, MINUTE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for retry in retries {
        assert!(!retry.await.unwrap());
    }
    assert_eq!(left(cache.hash_get_all(cart).await.unwrap()), expected);

    // Another token takes; a hash it empties is gone, and taking from no hash creates none.
    let rest = [("TEA-1", 1), ("TEA-3", 5)];
    assert!(
        cache
            .hash_take_once(cart, &rest, "taken:order-2", MINUTE, MINUTE)
            .await
            .unwrap()
    );
    assert!(cache.hash_get_all(cart).await.unwrap().is_empty());
    assert!(
        cache
            .hash_take_once("cart:nobody", &rest, "taken:order-3", MINUTE, MINUTE)
            .await
            .unwrap()
    );
    assert!(cache.hash_get_all("cart:nobody").await.unwrap().is_empty());
}

async fn concurrent_hash_updates_are_all_kept(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache.hash_incr("cart", "TEA-1", 1, MINUTE).await.unwrap();
                cache
                    .hash_set(
                        "cart",
                        &format!("SKU-{i:02}"),
                        Bytes::from_static(b"1"),
                        MINUTE,
                    )
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let all = cache.hash_get_all("cart").await.unwrap();
    assert_eq!(all.len(), 21);
    assert!(all.contains(&("TEA-1".to_owned(), Bytes::from_static(b"20"))));
}

async fn a_hash_field_that_is_not_a_number_is_not_a_counter(mode: TestMode) {
    let cache = fresh_cache(mode).await;
    cache
        .hash_set("h", "name", Bytes::from_static(b"tea"), MINUTE)
        .await
        .unwrap();
    assert!(cache.hash_incr("h", "name", 1, MINUTE).await.is_err());
    assert_eq!(
        cache.hash_get_all("h").await.unwrap(),
        vec![("name".to_owned(), Bytes::from_static(b"tea"))]
    );
}
