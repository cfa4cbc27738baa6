use nubo_identity::domain::Role;
use nubo_identity::testing::signed_in;
use nubo_platform::axum::http::Method;
use nubo_platform::chrono::Datelike;
use nubo_platform::storage::Db;
use nubo_platform::testing::{Answer, Answered, TestClient, TestMode, TestSystem};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@payments.test";
pub const GOOD_CARD: &str = "4242424242424242";

/// identity and payments (a quick simulated provider, a short deadline), with an admin.
pub async fn start(mode: TestMode) -> Shop {
    start_with(mode, &[]).await
}

/// Like [`start`], with more of payments' variables.
pub async fn start_with(mode: TestMode, env: &[(&str, &str)]) -> Shop {
    let services = [&nubo_identity::SERVICE, &nubo_payments::SERVICE];
    let mut all_env = vec![
        ("NUBO_PAYMENTS_PROVIDER_LATENCY_MS", "5"),
        ("NUBO_PAYMENTS_PROVIDER_TIMEOUT_MS", "300"),
    ];
    all_env.extend_from_slice(env);
    let system = TestSystem::start_with(mode, &services, |_| {}, &all_env).await;
    let [admin] = signed_in(&system, [(ADMIN_EMAIL, Role::Admin)]).await;
    Shop {
        payments: system.url("payments"),
        db: system.db("payments").await,
        http: reqwest::Client::new(),
        orders: system.client_as("orders", "payments"),
        admin_token: admin.token,
        system,
    }
}

pub struct Shop {
    pub system: TestSystem,
    pub payments: String,
    /// payments' own database, as an operator's shell would open it.
    pub db: Db,
    pub http: reqwest::Client,
    /// Payments as orders calls it: the only caller its internal routes admit.
    pub orders: TestClient,
    pub admin_token: String,
}

/// An authorization request for `amount_minor` EUR on `number`, good for three more years.
pub fn authorization(id: Uuid, amount_minor: i64, number: &str) -> Value {
    let expiry_year = nubo_platform::clock::now().year() + 3;
    json!({
        "payment_id": id,
        "amount": { "amount_minor": amount_minor, "currency": "EUR" },
        "card": { "number": number, "expiry_month": 12, "expiry_year": expiry_year, "cvc": "123" },
    })
}

impl Shop {
    pub async fn authorize_raw(&self, body: &Value) -> Answer {
        self.orders.post("/internal/v1/payments", body).await
    }

    pub async fn authorize(&self, id: Uuid, amount_minor: i64, number: &str) -> Answer {
        self.authorize_raw(&authorization(id, amount_minor, number))
            .await
    }

    /// `POST /internal/v1/payments/{id}/{step}` for capture, void and refund.
    pub async fn step(&self, id: Uuid, step: &str) -> Answer {
        let path = format!("/internal/v1/payments/{id}/{step}");
        self.orders.send(Method::POST, &path, None).await
    }

    pub async fn payment(&self, id: Uuid) -> Answer {
        self.orders
            .get(&format!("/internal/v1/payments/{id}"))
            .await
    }

    pub async fn admin_payment(&self, token: Option<&str>, id: Uuid) -> reqwest::Response {
        let request = self
            .http
            .get(format!("{}/api/v1/admin/payments/{id}", self.payments));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// The payloads of `subject` in payments' outbox, oldest first.
    pub async fn events(&self, subject: &str) -> Vec<Value> {
        let sql = "SELECT envelope FROM nubo_outbox WHERE subject = $1 ORDER BY seq";
        let rows = with_db!(&self.db, pool => sqlx::query_scalar::<_, String>(sql).bind(subject).fetch_all(pool).await)
            .unwrap();
        rows.iter()
            .map(|e| serde_json::from_str::<Value>(e).unwrap()["payload"].clone())
            .collect()
    }

    pub async fn captured_events(&self) -> Vec<Value> {
        self.events("payments.payment_captured.v1").await
    }

    pub async fn refunded_events(&self) -> Vec<Value> {
        self.events("payments.payment_refunded.v1").await
    }

    pub async fn payments_count(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM payments";
        with_db!(&self.db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await).unwrap()
    }

    /// `state` of `id` straight from the payments table.
    pub async fn stored_state(&self, id: Uuid) -> Option<String> {
        let sql = "SELECT state FROM payments WHERE id = $1";
        with_db!(&self.db, pool => sqlx::query_scalar::<_, String>(sql).bind(id).fetch_optional(pool).await)
            .unwrap()
    }

    /// Every text column of every payment row, joined: what an operator's dump would show.
    pub async fn dump(&self) -> String {
        let sql = "SELECT state || '|' || currency || '|' || card_last4 || '|' || card_brand || '|' \
                   || COALESCE(decline_reason, '') FROM payments";
        let rows =
            with_db!(&self.db, pool => sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await)
                .unwrap();
        rows.join("\n")
    }

    pub async fn shutdown(self) {
        self.db.close().await;
        self.system.shutdown().await;
    }
}

pub async fn assert_problem(response: impl Answered, status: u16) -> Value {
    let response = response.into_answer().await;
    assert_eq!(response.status(), status, "{response:?}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

pub async fn json(response: impl Answered, status: u16) -> Value {
    let response = response.into_answer().await;
    assert_eq!(response.status(), status, "{response:?}");
    response.json().await.unwrap()
}
