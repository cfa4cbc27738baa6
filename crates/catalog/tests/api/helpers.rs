use std::time::Duration;

use nubo_identity::domain::Role;
use nubo_identity::testing::add_account;
use nubo_platform::testing::{TestMode, TestSystem};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@catalog.test";
pub const CUSTOMER_EMAIL: &str = "customer@catalog.test";

pub async fn start(mode: TestMode) -> TestSystem {
    start_with(mode, |_| {}).await
}

/// identity and catalog, with an admin and a customer account.
pub async fn start_with(
    mode: TestMode,
    tweak: impl Fn(&mut nubo_platform::config::Settings),
) -> TestSystem {
    let services = [&nubo_identity::SERVICE, &nubo_catalog::SERVICE];
    let system = TestSystem::start_with(mode, &services, tweak, &[]).await;
    add_account(&system, ADMIN_EMAIL, Role::Admin).await;
    add_account(&system, CUSTOMER_EMAIL, Role::Customer).await;
    let catalog = system.db("catalog").await;
    for (slug, name) in STARTING_CATEGORIES {
        add_category(&catalog, slug, name).await;
    }
    system
}

/// The categories the shop starts with in tests; products must be in one that exists.
pub const STARTING_CATEGORIES: [(&str, &str); 2] = [("tea", "Tea"), ("coffee", "Coffee")];

/// What an operator's script would do: a category straight into the store.
pub async fn add_category(db: &nubo_platform::storage::Db, slug: &str, name: &str) {
    let input = nubo_catalog::domain::CategoryInput {
        slug: slug.into(),
        name: name.into(),
        description: format!("All things {slug}."),
    };
    let valid = input.validate().expect("valid category");
    let mut tx = db.begin().await.unwrap();
    nubo_catalog::store::insert_category(&mut tx, &valid)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    tx.commit().await.unwrap();
}

/// Signs in through identity and returns the access token.
pub async fn sign_in(system: &TestSystem, email: &str) -> String {
    nubo_identity::testing::sign_in(system, email).await.token
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
    pub token: String,
}

impl Admin {
    pub async fn of(system: &TestSystem) -> Self {
        let token = sign_in(system, ADMIN_EMAIL).await;
        Self {
            base: system.url("catalog"),
            http: reqwest::Client::new(),
            token,
        }
    }

    pub async fn create(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/admin/products", self.base))
            .bearer_auth(&self.token)
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
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` as the product's photo, declared as `content_type`.
    pub async fn put_image(
        &self,
        id: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/admin/products/{id}/image", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Sends `method` to an admin route, as this admin.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.unwrap()
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
