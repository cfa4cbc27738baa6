use std::time::Duration;

use nubo_platform::testing::{TestMode, TestSystem};
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub async fn start(mode: TestMode) -> TestSystem {
    start_with(mode, |_| {}).await
}

pub async fn start_with(
    mode: TestMode,
    tweak: impl Fn(&mut nubo_platform::config::Settings),
) -> TestSystem {
    TestSystem::start_with(
        mode,
        &[&nubo_catalog::SERVICE],
        |s| {
            s.admin_token = Some(nubo_platform::config::Secret::new(ADMIN_TOKEN));
            tweak(s)
        },
        &[],
    )
    .await
}

pub fn product(sku: &str, cents: i64) -> Value {
    json!({
        "sku": sku,
        "name": format!("Product {sku}"),
        "description": "A fine thing.",
        "price": { "amount_minor": cents, "currency": "EUR" },
        "category": "tea",
    })
}

pub struct Admin {
    pub base: String,
    pub http: reqwest::Client,
}

impl Admin {
    pub fn of(system: &TestSystem) -> Self {
        Self {
            base: system.url("catalog"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn create(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/admin/products", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_ok(&self, body: &Value) -> Value {
        let response = self.create(body).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    pub async fn update(&self, id: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/admin/products/{id}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn price_history(&self, id: &str) -> Vec<Value> {
        let response = self
            .get(&format!("/api/v1/products/{id}/price-history"))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until the price history of `id` has `n` entries (events are asynchronous).
    pub async fn wait_for_history(&self, id: &str, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let history = self.price_history(id).await;
            if history.len() >= n {
                return history;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("price history of {id} never reached {n} entries");
    }
}

pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}
