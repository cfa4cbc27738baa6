//! The whole shop for end-to-end stories: every service behind the gateway, an admin, a tea
//! category, and customers who sign up and log in as a shopper would.

use std::time::Duration;

use nubo_identity::domain::Role;
use nubo_identity::testing::{SignedIn, add_account, sign_in};
use nubo_notifications::testing::MailServer;
use nubo_platform::testing::{TestMode, TestSystem};
pub use nubo_platform::testing::{assert_problem, eventually};
use nubo_platform::uuid::Uuid;
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@orders.test";
pub use nubo_identity::testing::PASSWORD;
pub const GOOD_CARD: &str = "4242 4242 4242 4242";
pub const DECLINED_CARD: &str = "4000000000000002";

pub fn services() -> Vec<&'static nubo_platform::ServiceDescription> {
    vec![
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_inventory::SERVICE,
        &nubo_payments::SERVICE,
        &nubo_cart::SERVICE,
        &nubo_orders::SERVICE,
        &nubo_notifications::SERVICE,
        &nubo_gateway::SERVICE,
    ]
}

/// Settings every story shares: a gateway that does not rate-limit the test's bursts, and a
/// simulated card provider that answers at once.
const ENV: &[(&str, &str)] = &[
    ("NUBO_GATEWAY_RATE_LIMIT_RPS", "100000"),
    ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", "0"),
];

pub async fn start(mode: TestMode) -> Shop {
    start_with(mode, &[]).await
}

pub async fn start_with(mode: TestMode, env: &[(&str, &str)]) -> Shop {
    // Distributed, notifications sends over SMTP, to a real server; embedded it only records.
    let mail = match mode {
        TestMode::Distributed => Some(MailServer::start().await),
        TestMode::Embedded => None,
    };
    let smtp_url = mail.as_ref().map(MailServer::url);
    let env: Vec<(&str, &str)> = ENV
        .iter()
        .filter(|(name, _)| !env.iter().any(|(n, _)| n == name))
        .chain(env.iter())
        .copied()
        .chain(
            smtp_url
                .as_deref()
                .map(|url| ("NUBO_NOTIFICATIONS_SMTP_URL", url)),
        )
        .collect();
    let system = TestSystem::start_with(mode, &services(), |_| {}, &env).await;
    add_account(&system, ADMIN_EMAIL, Role::Admin).await;
    let admin = sign_in(&system, ADMIN_EMAIL).await.into();
    let shop = Shop {
        gateway: system.url("gateway"),
        http: reqwest::Client::new(),
        admin,
        system,
        mail,
    };
    let category = shop
        .http
        .post(shop.api("/admin/categories"))
        .bearer_auth(&shop.admin.token)
        .json(&json!({ "slug": "tea", "name": "Tea", "description": "Leaves and blends" }))
        .send()
        .await
        .unwrap();
    assert_eq!(category.status(), 201);
    shop
}

/// A signed-in user: access token and user id.
#[derive(Clone, Debug)]
pub struct User {
    pub token: String,
    pub id: String,
}

impl From<SignedIn> for User {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            token: signed_in.token,
            id: signed_in.user_id,
        }
    }
}

pub struct Shop {
    pub system: TestSystem,
    pub gateway: String,
    pub http: reqwest::Client,
    pub admin: User,
    /// The SMTP server notifications sends to (distributed mode).
    pub mail: Option<MailServer>,
}

impl Shop {
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.gateway)
    }

    /// Signs a new customer up through the gateway and logs them in.
    pub async fn customer(&self, name: &str) -> User {
        let email = format!("{name}@orders.test");
        let response = self
            .http
            .post(self.api("/identity/signup"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "sign up {email}");
        sign_in(&self.system, &email).await.into()
    }

    /// A product of the tea category with `stock` units on hand.
    pub async fn product(&self, sku: &str, name: &str, price_minor: i64, stock: i64) {
        let response = self
            .http
            .post(self.api("/admin/products"))
            .bearer_auth(&self.admin.token)
            .json(&json!({
                "sku": sku,
                "name": name,
                "description": format!("{name}, loose leaf"),
                "price": { "amount_minor": price_minor, "currency": "EUR" },
                "category": "tea",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let response = self
            .http
            .put(self.api(&format!("/admin/inventory/{sku}")))
            .bearer_auth(&self.admin.token)
            .json(&json!({ "on_hand": stock }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn add_to_cart(&self, user: &User, sku: &str, quantity: i64) {
        let response = self
            .http
            .post(self.api("/cart/lines"))
            .bearer_auth(&user.token)
            .json(&json!({ "sku": sku, "quantity": quantity }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn cart(&self, user: &User) -> Value {
        let response = self
            .http
            .get(self.api("/cart"))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn checkout(&self, user: &User, key: &str, card: &str) -> reqwest::Response {
        self.http
            .post(self.api("/checkout"))
            .bearer_auth(&user.token)
            .header("idempotency-key", key)
            .json(&card_body(card))
            .send()
            .await
            .unwrap()
    }

    pub async fn order(&self, user: &User, id: &str) -> reqwest::Response {
        self.http
            .get(self.api(&format!("/orders/{id}")))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// Checks out and returns the order once its saga has finished: answered at once (201), or,
    /// on a machine slow enough that the checkout's wait ran out, pending (202) and then settled.
    pub async fn checked_out(&self, user: &User, key: &str, card: &str) -> Value {
        let response = self.checkout(user, key, card).await;
        let status = response.status().as_u16();
        let order = json(response, if status == 202 { 202 } else { 201 }).await;
        self.settled(user, order["order_id"].as_str().unwrap())
            .await
    }

    /// The order once it is completed or cancelled.
    pub async fn settled(&self, user: &User, id: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            let response = self.order(user, id).await;
            assert_eq!(response.status(), 200);
            last = response.json().await.unwrap();
            if matches!(last["state"].as_str(), Some("completed" | "cancelled")) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("order {id} did not settle: {last:#}");
    }

    /// Units of `sku` that can still be bought.
    pub async fn available(&self, sku: &str) -> i64 {
        let response = self
            .http
            .get(self.api(&format!("/inventory/{sku}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["available"].as_i64().unwrap()
    }

    /// The payment of an order as payments has it, if any.
    pub async fn payment(&self, order_id: &str) -> Option<Value> {
        let response = self
            .system
            .client_as("orders", "payments")
            .get(&format!("/internal/v1/payments/{order_id}"))
            .await;
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            404 => None,
            other => panic!("payments answered {other}"),
        }
    }

    /// The reservation of an order as inventory has it, if any.
    pub async fn reservation(&self, order_id: &str) -> Option<Value> {
        let response = self
            .system
            .client_as("orders", "inventory")
            .get(&format!("/internal/v1/reservations/{order_id}"))
            .await;
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            404 => None,
            other => panic!("inventory answered {other}"),
        }
    }

    /// How many events with `subject` a service wrote to its outbox.
    pub async fn events(&self, service: &str, subject: &str) -> i64 {
        self.count(
            service,
            "SELECT COUNT(*) FROM nubo_outbox WHERE subject = $1",
            &[subject],
        )
        .await
    }

    /// Orders the service stores, whatever their customer.
    pub async fn orders_stored(&self) -> i64 {
        self.count("orders", "SELECT COUNT(*) FROM orders", &[])
            .await
    }

    /// A count from a service's own database, as an operator's query would give it.
    async fn count(&self, service: &str, sql: &'static str, binds: &[&str]) -> i64 {
        let db = self.system.db(service).await;
        let count = nubo_platform::with_db!(&db, pool => {
            let mut query = nubo_platform::sqlx::query_scalar::<_, i64>(sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            query.fetch_one(pool).await
        })
        .unwrap();
        db.close().await;
        count
    }

    /// The emails notifications recorded about an order, as admins list them.
    pub async fn emails(&self, order_id: &str) -> Vec<Value> {
        let page = json(
            self.http
                .get(self.api(&format!(
                    "/admin/notifications?order_id={order_id}&channel=email"
                )))
                .bearer_auth(&self.admin.token)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        page["items"].as_array().unwrap().clone()
    }

    pub async fn shutdown(self) {
        self.system.shutdown().await;
    }
}

pub fn card_body(number: &str) -> Value {
    json!({ "card": { "number": number, "expiry_month": 12, "expiry_year": 2035, "cvc": "123" } })
}

pub fn key() -> String {
    Uuid::new_v4().to_string()
}

pub async fn json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The steps an order took, as `step:outcome`.
pub fn steps(order: &Value) -> Vec<String> {
    order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["step"].as_str().unwrap(),
                s["outcome"].as_str().unwrap()
            )
        })
        .collect()
}
