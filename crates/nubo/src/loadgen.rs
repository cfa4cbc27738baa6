//! `nubo loadgen`: shoppers checking out against a running shop, through its gateway, as fast as
//! they can for a while; then a report of throughput and latency, and a check of the invariants
//! (every unit sold is accounted for, none oversold, no saga left unfinished).
//!
//! Each virtual shopper is a customer account of its own that loops: add a product to the cart,
//! check out with a new `Idempotency-Key`, follow a 202 until the order is confirmed or cancelled.
//! A checkout whose answer was lost is asked again under the same key, never counted twice.
//! Setup signs in as an admin to give the products it buys ample stock, so the run measures the
//! checkout, not running out; with `--stock` low the run measures racing for the last units.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::shop::Shop;

#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The gateway of the shop under load.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Shoppers checking out at once (each a customer account; at most 20 per minute can log in
    /// from one address).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub shoppers: u32,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// How many products (the first of the catalog) the shoppers buy from.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub products: u32,
    /// Units on hand each product gets before the run.
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: i64,
    /// An admin account of the shop (the demo one by default).
    #[arg(long, default_value = "admin@nubo.example")]
    pub admin_email: String,
    #[arg(long, default_value = "nubo-admin-demo")]
    pub admin_password: String,
    /// The report as JSON on standard output instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What one shopper saw.
#[derive(Default)]
struct Tally {
    checkout_ms: Vec<f64>,
    settle_ms: Vec<f64>,
    cart_ms: Vec<f64>,
    outcomes: BTreeMap<String, u64>,
    /// Units of each SKU in orders that completed.
    sold: BTreeMap<String, i64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.checkout_ms.extend(other.checkout_ms);
        self.settle_ms.extend(other.settle_ms);
        self.cart_ms.extend(other.cart_ms);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, v) in other.sold {
            *self.sold.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn error(&mut self, what: impl Into<String>) {
        *self.errors.entry(what.into()).or_default() += 1;
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;
    let shop = Shop::new(&args.target, http);
    let admin = shop
        .log_in(&args.admin_email, &args.admin_password)
        .await
        .context("cannot sign in as the admin (--admin-email, --admin-password)")?;
    let skus = shop.skus(args.products).await?;
    let mut before = BTreeMap::new();
    for sku in &skus {
        shop.set_stock(&admin, sku, args.stock).await?;
        before.insert(sku.clone(), shop.available(sku).await?);
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut shoppers = Vec::new();
    for n in 0..args.shoppers {
        let email = format!("loadgen-{}-{n}@nubo.example", &run_id[..8]);
        let password = format!("loadgen-{run_id}");
        shoppers.push(shop.customer(&email, &password).await?);
    }
    eprintln!(
        "loadgen: {} shoppers buying {} products for {} s against {}",
        args.shoppers,
        skus.len(),
        args.seconds,
        shop.base
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (n, token) in shoppers.into_iter().enumerate() {
        let shop = shop.clone();
        let skus = skus.clone();
        tasks.spawn(async move { shop.shopper(n, token, skus, deadline).await });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.merge(done?);
    }
    let elapsed = started.elapsed().as_secs_f64();

    // Every unit sold left the stock, and nothing else did.
    let mut invariants = Vec::new();
    for sku in &skus {
        let after = shop.available(sku).await?;
        let sold = tally.sold.get(sku).copied().unwrap_or(0);
        let expected = before[sku] - sold;
        if after != expected || after < 0 {
            invariants.push(format!(
                "{sku}: {after} available, expected {expected} ({} before, {sold} sold)",
                before[sku]
            ));
        }
    }
    let report = report(&tally, elapsed, &invariants);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if tally
        .errors
        .keys()
        .any(|e| e.ends_with("429 Too Many Requests"))
    {
        eprintln!("loadgen: {RATE_LIMITED}");
    }
    if !invariants.is_empty() {
        bail!("stock and sales disagree: {}", invariants.join("; "));
    }
    Ok(())
}

/// The gateway limits each client's requests; one load generator is one client.
const RATE_LIMITED: &str = "the gateway rate-limited the load generator (429): start the shop \
     with NUBO_GATEWAY_RATE_LIMIT_RPS=100000 to measure the checkout rather than the limit";

fn percentiles(values: &mut [f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let i = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1;
        (values[i] * 10.0).round() / 10.0
    };
    json!({ "count": values.len(), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0) })
}

fn report(tally: &Tally, elapsed: f64, invariants: &[String]) -> Value {
    let mut checkout = tally.checkout_ms.clone();
    let mut settle = tally.settle_ms.clone();
    let mut cart = tally.cart_ms.clone();
    let orders: u64 = tally.outcomes.values().sum();
    json!({
        "seconds": (elapsed * 10.0).round() / 10.0,
        "orders": orders,
        "orders_per_second": ((orders as f64 / elapsed) * 10.0).round() / 10.0,
        "outcomes": tally.outcomes,
        "checkout_request": percentiles(&mut checkout),
        "checkout_to_settled": percentiles(&mut settle),
        "add_to_cart": percentiles(&mut cart),
        "errors": tally.errors,
        "units_sold": tally.sold.values().sum::<i64>(),
        "invariants": if invariants.is_empty() { json!("ok") } else { json!(invariants) },
    })
}

fn print_text(r: &Value) {
    println!(
        "{} orders in {} s: {} orders/s",
        r["orders"], r["seconds"], r["orders_per_second"]
    );
    println!("outcomes: {}", r["outcomes"]);
    for (name, key) in [
        ("POST /api/v1/checkout", "checkout_request"),
        ("checkout until settled", "checkout_to_settled"),
        ("POST /api/v1/cart/lines", "add_to_cart"),
    ] {
        let p = &r[key];
        if p.is_null() {
            continue;
        }
        println!(
            "{name:<26} n={:<6} p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
            p["count"], p["p50_ms"], p["p90_ms"], p["p99_ms"], p["max_ms"]
        );
    }
    if r["errors"].as_object().is_some_and(|e| !e.is_empty()) {
        println!("errors: {}", r["errors"]);
    }
    println!(
        "units sold: {}; stock accounted for: {}",
        r["units_sold"], r["invariants"]
    );
}

impl Shop {
    /// Signs a new customer up and logs them in: the access token.
    async fn customer(&self, email: &str, password: &str) -> anyhow::Result<String> {
        if !self.sign_up(email, password).await? {
            bail!("sign up {email}: the account exists already");
        }
        self.log_in(email, password).await
    }

    async fn set_stock(&self, admin: &str, sku: &str, on_hand: i64) -> anyhow::Result<()> {
        let response = self
            .http
            .put(self.api(&format!("/admin/inventory/{sku}")))
            .bearer_auth(admin)
            .json(&json!({ "on_hand": on_hand }))
            .send()
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            bail!("set the stock of {sku}: {status} {}", body["detail"]);
        }
        Ok(())
    }

    async fn available(&self, sku: &str) -> anyhow::Result<i64> {
        let response = self
            .http
            .get(self.api(&format!("/inventory/{sku}")))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            bail!("{RATE_LIMITED}");
        }
        let body: Value = response.error_for_status()?.json().await?;
        body["available"]
            .as_i64()
            .with_context(|| format!("no availability for {sku}"))
    }

    /// One shopper's loop until the deadline; a failed call is counted and the loop goes on.
    async fn shopper(
        &self,
        n: usize,
        token: String,
        skus: Vec<String>,
        deadline: Instant,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut round = n;
        while Instant::now() < deadline {
            round += 1;
            let sku = &skus[round % skus.len()];
            let quantity = (round % 3 + 1) as i64;
            let t = Instant::now();
            let added = self
                .http
                .post(self.api("/cart/lines"))
                .bearer_auth(&token)
                .json(&json!({ "sku": sku, "quantity": quantity }))
                .send()
                .await;
            match added {
                Ok(r) if r.status().is_success() => {
                    tally.cart_ms.push(t.elapsed().as_secs_f64() * 1000.0)
                }
                Ok(r) => {
                    tally.error(format!("add to cart: {}", r.status()));
                    continue;
                }
                Err(e) => {
                    tally.error(format!("add to cart: {}", kind(&e)));
                    continue;
                }
            }
            let key = uuid::Uuid::new_v4().to_string();
            let t = Instant::now();
            // An answer lost on the way (a dropped connection, a 5xx, a 429) is asked again with
            // the same key until the shop answers: the order is placed once and counted once.
            let give_up = deadline + Duration::from_secs(30);
            let mut pause = Duration::from_millis(100);
            let mut order: Option<Value> = None;
            while Instant::now() < give_up {
                let answer = self
                    .http
                    .post(self.api("/checkout"))
                    .bearer_auth(&token)
                    .header("idempotency-key", &key)
                    .json(&json!({ "card": { "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2035, "cvc": "123" } }))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => {
                        order = Some(r.json().await.unwrap_or_default());
                        break;
                    }
                    Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                        tally.error(format!("checkout: {}", r.status()));
                        break;
                    }
                    Ok(r) => tally.error(format!("checkout: {} (asked again)", r.status())),
                    Err(e) => tally.error(format!("checkout: {} (asked again)", kind(&e))),
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            tally.checkout_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let Some(mut order) = order else {
                continue;
            };
            // 202: follow the order until it is confirmed or cancelled.
            let id = order["order_id"].as_str().unwrap_or_default().to_owned();
            while order["status"] == "pending" || order["status"] == "cancelling" {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match self
                    .http
                    .get(self.api(&format!("/orders/{id}")))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(r) => order = r.json().await.unwrap_or_default(),
                    Err(e) => tally.error(format!("order: {}", kind(&e))),
                }
            }
            tally.settle_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let outcome = order["status"].as_str().unwrap_or("unknown").to_owned();
            if outcome == "confirmed" {
                for line in order["lines"].as_array().into_iter().flatten() {
                    if let (Some(sku), Some(q)) = (line["sku"].as_str(), line["quantity"].as_i64())
                    {
                        *tally.sold.entry(sku.to_owned()).or_default() += q;
                    }
                }
            }
            *tally.outcomes.entry(outcome).or_default() += 1;
        }
        tally
    }
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transport"
    }
}
