pub use nubo_platform::testing::assert_problem;

use nubo_identity::domain::Role;
use nubo_identity::testing::{SignedIn, signed_in};
use nubo_platform::testing::{Answer, Answered, TestClient, TestMode, TestSystem};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@cart.test";
pub const ALICE_EMAIL: &str = "alice@cart.test";
pub const BOB_EMAIL: &str = "bob@cart.test";

/// identity, catalog and cart, with an admin and two customers, and a tea category.
pub async fn start(mode: TestMode) -> Shop {
    start_with(mode, &[]).await
}

pub async fn start_with(mode: TestMode, env: &[(&str, &str)]) -> Shop {
    let services = [
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_cart::SERVICE,
    ];
    let system = TestSystem::start_with(mode, &services, |_| {}, env).await;
    let [admin, alice, bob] = signed_in(
        &system,
        [
            (ADMIN_EMAIL, Role::Admin),
            (ALICE_EMAIL, Role::Customer),
            (BOB_EMAIL, Role::Customer),
        ],
    )
    .await
    .map(User::from);
    let category = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/categories", system.url("catalog")))
        .bearer_auth(&admin.0)
        .json(&json!({ "slug": "tea", "name": "Tea", "description": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(category.status(), 201);
    Shop {
        cart: system.url("cart"),
        catalog: system.url("catalog"),
        http: reqwest::Client::new(),
        orders: system.client_as("orders", "cart"),
        admin,
        alice,
        bob,
        system,
    }
}

/// A signed-in user: access token and user id.
pub struct User(pub String, pub String);

impl From<SignedIn> for User {
    fn from(user: SignedIn) -> Self {
        Self(user.token, user.user_id)
    }
}

pub struct Shop {
    pub system: TestSystem,
    pub cart: String,
    pub catalog: String,
    pub http: reqwest::Client,
    /// The cart as orders calls it: the only caller its internal routes admit.
    pub orders: TestClient,
    pub admin: User,
    pub alice: User,
    pub bob: User,
}

impl Shop {
    /// Creates `sku` priced `price_minor` EUR; returns its product id.
    pub async fn create_product(&self, sku: &str, price_minor: i64) -> String {
        let response = self
            .http
            .post(format!("{}/api/v1/admin/products", self.catalog))
            .bearer_auth(&self.admin.0)
            .json(&product(sku, price_minor))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn reprice(&self, id: &str, sku: &str, price_minor: i64) {
        let response = self
            .http
            .put(format!("{}/api/v1/admin/products/{id}", self.catalog))
            .bearer_auth(&self.admin.0)
            .json(&product(sku, price_minor))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn get(&self, token: Option<&str>) -> reqwest::Response {
        with(self.http.get(format!("{}/api/v1/cart", self.cart)), token)
            .send()
            .await
            .unwrap()
    }

    pub async fn cart_of(&self, user: &User) -> Value {
        json(self.get(Some(&user.0)).await, 200).await
    }

    pub async fn add(&self, user: &User, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/cart/lines", self.cart))
            .bearer_auth(&user.0)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn merge(&self, user: Option<&User>, body: Value) -> reqwest::Response {
        let request = self.http.post(format!("{}/api/v1/cart/merge", self.cart));
        with(request, user.map(|u| u.0.as_str()))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn set(&self, user: &User, sku: &str, body: Value) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/cart/lines/{sku}", self.cart))
            .bearer_auth(&user.0)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn remove(&self, user: &User, sku: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}/api/v1/cart/lines/{sku}", self.cart))
            .bearer_auth(&user.0)
            .send()
            .await
            .unwrap()
    }

    pub async fn internal(&self, user_id: &str) -> Answer {
        self.orders
            .get(&format!("/internal/v1/carts/{user_id}"))
            .await
    }

    pub async fn shutdown(self) {
        self.system.shutdown().await;
    }
}

fn with(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn product(sku: &str, price_minor: i64) -> Value {
    json!({
        "sku": sku,
        "name": format!("Product {sku}"),
        "price": { "amount_minor": price_minor, "currency": "EUR" },
        "category": "tea",
    })
}

pub async fn json(response: impl Answered, status: u16) -> Value {
    let response = response.into_answer().await;
    assert_eq!(response.status(), status, "{response:?}");
    response.json().await.unwrap()
}

/// `(sku, quantity)` of each line.
pub fn lines(cart: &Value) -> Vec<(String, i64)> {
    cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}
