pub use nubo_platform::testing::{assert_problem, eventually};

use nubo_identity::domain::Role;
use nubo_identity::testing::{add_account, signed_in};
use nubo_platform::axum::http::Method;
use nubo_platform::storage::Db;
use nubo_platform::testing::{Answer, Answered, TestClient, TestMode, TestSystem};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@inventory.test";
pub const CUSTOMER_EMAIL: &str = "customer@inventory.test";

/// identity, catalog and inventory (new products get 5 units), with an admin and a customer.
pub async fn start(mode: TestMode) -> Shop {
    start_with(mode, &[]).await
}

/// Like [`start`], with more of inventory's variables.
pub async fn start_with(mode: TestMode, env: &[(&str, &str)]) -> Shop {
    let services = [
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_inventory::SERVICE,
    ];
    let mut all_env = vec![("NUBO_INVENTORY_INITIAL_STOCK", "5")];
    all_env.extend_from_slice(env);
    let system = TestSystem::start_with(mode, &services, |_| {}, &all_env).await;
    add_account(&system, CUSTOMER_EMAIL, Role::Customer).await;
    let [admin] = signed_in(&system, [(ADMIN_EMAIL, Role::Admin)]).await;
    // Products live in categories the catalog knows; the tests' products are tea.
    let category = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/categories", system.url("catalog")))
        .bearer_auth(&admin.token)
        .json(&json!({ "slug": "tea", "name": "Tea", "description": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(category.status(), 201);
    Shop {
        inventory: system.url("inventory"),
        catalog: system.url("catalog"),
        db: system.db("inventory").await,
        http: reqwest::Client::new(),
        orders: system.client_as("orders", "inventory"),
        admin_token: admin.token,
        system,
    }
}

/// Signs in through identity and returns the access token.
pub async fn sign_in(system: &TestSystem, email: &str) -> String {
    nubo_identity::testing::sign_in(system, email).await.token
}

pub struct Shop {
    pub system: TestSystem,
    pub inventory: String,
    pub catalog: String,
    /// inventory's own database, as an operator's shell would open it.
    pub db: Db,
    pub http: reqwest::Client,
    /// Inventory as orders calls it: the only caller its internal routes admit.
    pub orders: TestClient,
    pub admin_token: String,
}

impl Shop {
    pub async fn create_product(&self, sku: &str) {
        let response = self
            .http
            .post(format!("{}/api/v1/admin/products", self.catalog))
            .bearer_auth(&self.admin_token)
            .json(&json!({
                "sku": sku,
                "name": format!("Product {sku}"),
                "price": { "amount_minor": 450, "currency": "EUR" },
                "category": "tea",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    pub async fn set_stock_as(
        &self,
        token: Option<&str>,
        sku: &str,
        body: Value,
    ) -> reqwest::Response {
        let request = self
            .http
            .put(format!("{}/api/v1/admin/inventory/{sku}", self.inventory))
            .json(&body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// Sets `on_hand` of `sku` as the admin, creating its stock row if needed.
    pub async fn stock(&self, sku: &str, on_hand: i64) {
        let response = self
            .set_stock_as(Some(&self.admin_token), sku, json!({ "on_hand": on_hand }))
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn availability(&self, sku: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/inventory/{sku}", self.inventory))
            .send()
            .await
            .unwrap()
    }

    pub async fn available(&self, sku: &str) -> i64 {
        let response = self.availability(sku).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["available"].as_i64().unwrap()
    }

    /// `(on_hand, reserved)` straight from the stock table.
    pub async fn stock_row(&self, sku: &str) -> Option<(i64, i64)> {
        let sql = "SELECT on_hand, reserved FROM stock WHERE sku = $1";
        with_db!(&self.db, pool => sqlx::query_as::<_, (i64, i64)>(sql).bind(sku).fetch_optional(pool).await)
            .unwrap()
    }

    pub async fn reserve_raw(&self, body: &Value) -> Answer {
        self.orders.post("/internal/v1/reservations", body).await
    }

    pub async fn reserve(&self, id: Uuid, lines: &[(&str, i64)], ttl_secs: i64) -> Answer {
        self.reserve_raw(&reservation(id, lines, ttl_secs)).await
    }

    pub async fn commit(&self, id: Uuid) -> Answer {
        let path = format!("/internal/v1/reservations/{id}/commit");
        self.orders.send(Method::POST, &path, None).await
    }

    pub async fn release(&self, id: Uuid, reason: &str) -> Answer {
        let path = format!("/internal/v1/reservations/{id}/release");
        self.orders.post(&path, &json!({ "reason": reason })).await
    }

    pub async fn reservation(&self, id: Uuid) -> Answer {
        let path = format!("/internal/v1/reservations/{id}");
        self.orders.get(&path).await
    }

    /// The `StockReleased` payloads in inventory's outbox, oldest first.
    pub async fn released_events(&self) -> Vec<Value> {
        let sql = "SELECT envelope FROM nubo_outbox WHERE subject = 'inventory.stock_released.v1' ORDER BY seq";
        let rows =
            with_db!(&self.db, pool => sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await)
                .unwrap();
        rows.iter()
            .map(|e| serde_json::from_str::<Value>(e).unwrap()["payload"].clone())
            .collect()
    }

    pub async fn shutdown(self) {
        self.db.close().await;
        self.system.shutdown().await;
    }
}

pub fn reservation(id: Uuid, lines: &[(&str, i64)], ttl_secs: i64) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(sku, quantity)| json!({ "sku": sku, "quantity": quantity }))
        .collect();
    json!({ "reservation_id": id, "lines": lines, "ttl_secs": ttl_secs })
}

pub async fn json(response: impl Answered, status: u16) -> Value {
    let response = response.into_answer().await;
    assert_eq!(response.status(), status, "{response:?}");
    response.json().await.unwrap()
}
