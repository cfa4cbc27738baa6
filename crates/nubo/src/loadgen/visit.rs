//! One iteration of the load: a visit to the shop through its public API, each request timed
//! and recorded under its operation. A shopper who gets an error leaves: the visit ends there.
//!
//! In the open model the first request of a visit is timed from the visit's intended start, not
//! from when it was sent: a generator that falls behind, or a shop that makes the visits before
//! wait, shows up as latency instead of quietly sending less (coordinated omission).

use std::time::Duration;

use rand::Rng as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::accounts::Account;
use super::catalog::{Catalog, PER_PAGE};
use super::scenario::Visit;
use super::stats::{Op, Stats};
use crate::shop::Shop;
use std::sync::Arc;

/// What every visit needs.
pub struct Ctx {
    pub shop: Shop,
    pub stats: Arc<Stats>,
    pub catalog: Catalog,
    /// No checkout is asked again, and no order followed, past this.
    pub give_up: Instant,
}

/// When a visit's next request counts from: its intended start for the first one (open
/// model), the moment it is sent for the others.
struct Clock {
    intended: Option<Instant>,
}

impl Clock {
    fn start(&mut self) -> Instant {
        self.intended.take().unwrap_or_else(Instant::now)
    }
}

/// What kind of failure a request without an answer had: a timeout, a refused connection, or
/// what the innermost cause says (an I/O error's kind, hyper's "connection closed before message
/// completed"), so that errors group by cause without a line per request.
pub fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timeout".to_owned();
    }
    if e.is_connect() {
        return "cannot connect".to_owned();
    }
    let mut innermost: &dyn std::error::Error = e;
    while let Some(cause) = innermost.source() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind().to_string();
        }
        innermost = cause;
    }
    let said = innermost.to_string();
    if said.len() > 60 || std::ptr::addr_eq(innermost, e) {
        return if e.is_body() {
            "broken body"
        } else {
            "transport"
        }
        .to_owned();
    }
    said
}

const CARD: &str = "4242424242424242";

fn settled(order: &Value) -> bool {
    matches!(order["state"].as_str(), Some("completed" | "cancelled"))
}

impl Ctx {
    /// Runs `visit`, as `account` for those that need one, timed from `intended` if given.
    pub async fn visit(
        &self,
        visit: Visit,
        account: Option<&Account>,
        intended: Option<Instant>,
        rng: &mut StdRng,
    ) {
        let clock = &mut Clock { intended };
        match (visit, account) {
            (Visit::Browse, _) => self.browse(clock, rng).await,
            (Visit::Search, _) => self.search(clock, rng).await,
            (Visit::Cart, Some(account)) => self.cart(clock, account, rng).await,
            (Visit::Checkout, Some(account)) => self.checkout(clock, account, rng).await,
            (Visit::Cart | Visit::Checkout, None) => {
                debug_assert!(
                    false,
                    "accounts are prepared for every visit that needs one"
                );
                None
            }
        };
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.shop.http.get(self.shop.api(path))
    }

    /// Sends `request` as `op`: the answer's body (parsed if `json`, else null) when it
    /// succeeded, none (and an error of its kind recorded) when it did not.
    async fn fetch(
        &self,
        op: Op,
        clock: &mut Clock,
        request: RequestBuilder,
        json: bool,
    ) -> Option<Value> {
        let from = clock.start();
        let failure = match request.send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(body) => {
                    self.stats.ok(op, from);
                    return Some(if json {
                        serde_json::from_slice(&body).unwrap_or_default()
                    } else {
                        Value::Null
                    });
                }
                Err(e) => transport(&e),
            },
            Ok(r) => {
                let status = r.status().as_u16().to_string();
                // Read to the end so that the connection goes back to the pool.
                let _ = r.bytes().await;
                status
            }
            Err(e) => transport(&e),
        };
        self.stats.error(op, failure);
        None
    }

    /// A page of products, one to three product pages, and one time in three the categories
    /// and a page of one of them.
    async fn browse(&self, clock: &mut Clock, rng: &mut StdRng) -> Option<()> {
        let catalog = &self.catalog;
        let page = rng.random_range(1..=catalog.pages);
        let list = self.get(&format!("/products?page={page}&per_page={PER_PAGE}"));
        self.fetch(Op::ListProducts, clock, list, false).await?;
        for _ in 0..rng.random_range(1..=3) {
            let id = catalog.ids.choose(rng)?;
            let product = self.get(&format!("/products/{id}"));
            self.fetch(Op::ProductPage, clock, product, false).await?;
        }
        if rng.random_ratio(1, 3) {
            self.fetch(Op::Categories, clock, self.get("/categories"), false)
                .await?;
            let slug = catalog.categories.choose(rng)?;
            let list = self.get(&format!("/products?category={slug}&per_page={PER_PAGE}"));
            self.fetch(Op::CategoryPage, clock, list, false).await?;
        }
        Some(())
    }

    /// A word of a product's name (a quarter of the time only its first three letters, as
    /// typed so far), then one of the results.
    async fn search(&self, clock: &mut Clock, rng: &mut StdRng) -> Option<()> {
        let word = self.catalog.words.choose(rng).map_or("tea", String::as_str);
        let typed: String = if rng.random_ratio(1, 4) {
            word.chars().take(3).collect()
        } else {
            word.to_owned()
        };
        let mut url = reqwest::Url::parse(&self.shop.api("/products/search")).ok()?;
        url.query_pairs_mut().append_pair("q", &typed);
        let search = self.shop.http.get(url);
        let found = self.fetch(Op::Search, clock, search, true).await?;
        let ids: Vec<&str> = found["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str())
            .collect();
        if let Some(id) = ids.choose(rng) {
            let product = self.get(&format!("/products/{id}"));
            self.fetch(Op::ProductPage, clock, product, false).await?;
        }
        Some(())
    }

    /// Adds a line, reads the cart, removes the line: the cart is as it was.
    async fn cart(&self, clock: &mut Clock, account: &Account, rng: &mut StdRng) -> Option<()> {
        let sku = self.catalog.skus.choose(rng)?;
        let bearer = account.bearer();
        self.fetch(Op::AddToCart, clock, self.add(&bearer, sku, rng), false)
            .await?;
        let cart = self.get("/cart").bearer_auth(&bearer);
        self.fetch(Op::ReadCart, clock, cart, false).await?;
        let remove = self
            .shop
            .http
            .delete(self.shop.api(&format!("/cart/lines/{sku}")))
            .bearer_auth(&bearer);
        self.fetch(Op::RemoveFromCart, clock, remove, false).await?;
        Some(())
    }

    fn add(&self, bearer: &str, sku: &str, rng: &mut StdRng) -> RequestBuilder {
        let quantity: i64 = rng.random_range(1..=3);
        self.shop
            .http
            .post(self.shop.api("/cart/lines"))
            .bearer_auth(bearer)
            .json(&json!({ "sku": sku, "quantity": quantity }))
    }

    /// Adds to the cart, checks out under a new Idempotency-Key, follows the order until it
    /// is completed or cancelled, and counts what it sold.
    async fn checkout(&self, clock: &mut Clock, account: &Account, rng: &mut StdRng) -> Option<()> {
        let sku = self.catalog.skus.choose(rng)?;
        let add = self.add(&account.bearer(), sku, rng);
        self.fetch(Op::AddToCart, clock, add, false).await?;
        let key = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let order = self.place(account, &key, started).await?;
        self.follow(account, order, started).await
    }

    /// The checkout request under `key`. An answer lost on the way (a dropped connection, a
    /// 5xx, a 429) is asked again with the same key until the shop answers: the order is
    /// placed once and counted once, and each lost answer is one error of its kind.
    async fn place(&self, account: &Account, key: &str, started: Instant) -> Option<Value> {
        let body = json!({ "card": { "number": CARD, "expiry_month": 12, "expiry_year": 2035, "cvc": "123" } });
        let mut pause = Duration::from_millis(100);
        let mut asked_again = false;
        while Instant::now() < self.give_up {
            let answer = self
                .shop
                .http
                .post(self.shop.api("/checkout"))
                .bearer_auth(account.bearer())
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await;
            let lost = match answer {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(order) if order["order_id"].is_string() => {
                        self.stats.ok(Op::Checkout, started);
                        if asked_again {
                            self.stats.asked_again();
                        }
                        return Some(order);
                    }
                    _ => "an answer without an order".to_owned(),
                },
                Ok(r)
                    if r.status().is_client_error()
                        && r.status() != StatusCode::TOO_MANY_REQUESTS =>
                {
                    // Refused for good (an empty cart, say): nothing was ordered.
                    self.stats
                        .error(Op::Checkout, r.status().as_u16().to_string());
                    let _ = r.bytes().await;
                    return None;
                }
                Ok(r) => {
                    let status = r.status().as_u16().to_string();
                    let _ = r.bytes().await;
                    status
                }
                Err(e) => transport(&e),
            };
            self.stats
                .error(Op::Checkout, format!("{lost} (asked again)"));
            asked_again = true;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
        self.stats.unanswered();
        None
    }

    /// Looks at a 202's order until it is completed or cancelled.
    async fn follow(&self, account: &Account, mut order: Value, started: Instant) -> Option<()> {
        let id = order["order_id"].as_str().unwrap_or_default().to_owned();
        while !settled(&order) {
            if Instant::now() >= self.give_up {
                self.stats.unsettled();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let look = self
                .get(&format!("/orders/{id}"))
                .bearer_auth(account.bearer());
            let clock = &mut Clock { intended: None };
            if let Some(now) = self.fetch(Op::Order, clock, look, true).await {
                order = now;
            }
        }
        self.stats.ok(Op::CheckoutSettled, started);
        let sold: Vec<(String, i64)> = if order["state"] == "completed" {
            order["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| Some((l["sku"].as_str()?.to_owned(), l["quantity"].as_i64()?)))
                .collect()
        } else {
            Vec::new()
        };
        self.stats
            .order(order["status"].as_str().unwrap_or("unknown"), &sold);
        Some(())
    }
}
