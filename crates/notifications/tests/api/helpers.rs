pub use nubo_platform::testing::{TestMode, assert_problem, eventually};

use std::sync::Mutex;

use nubo_contracts::Money;
use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced};
use nubo_contracts::payments::PaymentRefunded;
use nubo_identity::domain::Role;
use nubo_identity::testing::signed_in;
use nubo_notifications::config::SMTP_URL;
use nubo_platform::events::{Bus, Envelope, Event};
use nubo_platform::testing::TestSystem;
use nubo_platform::uuid::Uuid;
use serde_json::Value;

use nubo_notifications::testing::MailServer;

pub const ADMIN_EMAIL: &str = "admin@notifications.test";
pub const CUSTOMER_EMAIL: &str = "carla@notifications.test";

/// identity and notifications, with an admin and a customer. Distributed mode always sends (it
/// refuses to start without a mail server), so there it gets a real one; in embedded mode it gets
/// none unless the test brings one, and emails are only recorded.
pub async fn start(mode: TestMode) -> Shop {
    match mode {
        TestMode::Embedded => start_with(mode, None, &[]).await,
        TestMode::Distributed => {
            let server = MailServer::start().await;
            start_with(mode, Some(server), &[]).await
        }
    }
}

/// Like [`start`], sending to `mail_server` if given, with more of notifications' variables.
pub async fn start_with(
    mode: TestMode,
    mail_server: Option<MailServer>,
    env: &[(&str, &str)],
) -> Shop {
    let services = [&nubo_identity::SERVICE, &nubo_notifications::SERVICE];
    let url = mail_server.as_ref().map(MailServer::url);
    let mut all_env: Vec<(&str, &str)> = env.to_vec();
    if let Some(url) = &url {
        all_env.push((SMTP_URL, url));
    }
    let system = TestSystem::start_with(mode, &services, |_| {}, &all_env).await;
    let [admin, customer] = signed_in(
        &system,
        [(ADMIN_EMAIL, Role::Admin), (CUSTOMER_EMAIL, Role::Customer)],
    )
    .await;
    Shop {
        notifications: system.url("notifications"),
        bus: system.bus().await,
        http: reqwest::Client::new(),
        admin_token: admin.token,
        customer_token: customer.token,
        mail_server,
        system,
    }
}

pub struct Shop {
    pub system: TestSystem,
    pub notifications: String,
    pub bus: Bus,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub customer_token: String,
    pub mail_server: Option<MailServer>,
}

impl Shop {
    /// Whether emails are sent (a mail server is configured) or only recorded.
    pub fn sends(&self) -> bool {
        self.mail_server.is_some()
    }

    /// The status an email ends in when nothing goes wrong.
    pub fn delivered_status(&self) -> &'static str {
        if self.sends() { "sent" } else { "recorded" }
    }

    /// Publishes `event` as the service that owns it would, and returns its envelope.
    pub async fn publish<E: Event>(&self, event: &E) -> Envelope {
        let source = E::SUBJECT.split('.').next().unwrap();
        let envelope = Envelope::new(source, event).unwrap();
        self.publish_envelope(&envelope).await;
        envelope
    }

    pub async fn publish_envelope(&self, envelope: &Envelope) {
        self.bus.publish(envelope).await.unwrap();
    }

    /// `GET /api/v1/admin/notifications{query}` as `token`.
    pub async fn list_as(&self, token: Option<&str>, query: &str) -> reqwest::Response {
        let request = self.http.get(format!(
            "{}/api/v1/admin/notifications{query}",
            self.notifications
        ));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// The admin's page for `query`.
    pub async fn list(&self, query: &str) -> Value {
        let response = self.list_as(Some(&self.admin_token), query).await;
        assert_eq!(response.status(), 200, "list {query}");
        response.json().await.unwrap()
    }

    /// Every email about `order_id`, newest first.
    pub async fn emails_about(&self, order_id: Uuid) -> Vec<Value> {
        let page = self
            .list(&format!("?order_id={order_id}&channel=email"))
            .await;
        page["items"].as_array().unwrap().clone()
    }

    /// `GET /api/v1/admin/notifications/{id}` as `token`.
    pub async fn get_as(&self, token: Option<&str>, id: &str) -> reqwest::Response {
        let request = self.http.get(format!(
            "{}/api/v1/admin/notifications/{id}",
            self.notifications
        ));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// Waits for the email written for `event_id` and returns it.
    pub async fn email_for(&self, order_id: Uuid, event_id: Uuid) -> Value {
        let found = Mutex::new(Value::Null);
        let slot = &found;
        eventually(
            &format!("the email for event {event_id} is written"),
            move || async move {
                let emails = self.emails_about(order_id).await;
                let email = emails
                    .into_iter()
                    .find(|e| e["event_id"] == event_id.to_string());
                let done = email.is_some();
                *slot.lock().unwrap() = email.unwrap_or_default();
                done
            },
        )
        .await;
        found.into_inner().unwrap()
    }

    /// Waits until the email `id` has `status`, and returns it.
    pub async fn email_in_status(&self, id: &str, status: &str) -> Value {
        let found = Mutex::new(Value::Null);
        let slot = &found;
        eventually(&format!("email {id} is {status}"), move || async move {
            let response = self.get_as(Some(&self.admin_token), id).await;
            assert_eq!(response.status(), 200);
            let email: Value = response.json().await.unwrap();
            let done = email["status"] == status;
            *slot.lock().unwrap() = email;
            done
        })
        .await;
        found.into_inner().unwrap()
    }

    /// `GET /api/v1/admin/notifications/sms-gateway{query}` as `token`.
    pub async fn sms_gateway_as(&self, token: Option<&str>, query: &str) -> reqwest::Response {
        let request = self.http.get(format!(
            "{}/api/v1/admin/notifications/sms-gateway{query}",
            self.notifications
        ));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// What the simulated SMS gateway received for `phone`, newest first.
    pub async fn texts_received(&self, phone: &str) -> Vec<Value> {
        let query = format!("?to={}", phone.replace('+', "%2B"));
        let response = self.sms_gateway_as(Some(&self.admin_token), &query).await;
        assert_eq!(response.status(), 200, "sms-gateway {query}");
        let page: Value = response.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// The messages about `order_id` on `channel` (`email`, `sms`), newest first.
    pub async fn messages_about(&self, order_id: Uuid, channel: &str) -> Vec<Value> {
        let page = self
            .list(&format!("?order_id={order_id}&channel={channel}"))
            .await;
        page["items"].as_array().unwrap().clone()
    }

    /// Waits for the text message written for `event_id` and returns it.
    pub async fn text_for(&self, order_id: Uuid, event_id: Uuid) -> Value {
        let found = Mutex::new(Value::Null);
        let slot = &found;
        eventually(
            &format!("the text for event {event_id} is written"),
            move || async move {
                let texts = self.messages_about(order_id, "sms").await;
                let text = texts
                    .into_iter()
                    .find(|e| e["event_id"] == event_id.to_string());
                let done = text.is_some();
                *slot.lock().unwrap() = text.unwrap_or_default();
                done
            },
        )
        .await;
        found.into_inner().unwrap()
    }

    /// Sets notifications' own switches (`sms_failure_rate`, `sms_lost_answer_rate`), as an
    /// operator does from the console; the ones left out are off.
    pub async fn set_knobs(&self, knobs: Value) {
        let response = self
            .http
            .put(format!("{}/api/v1/admin/ops/faults", self.notifications))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({ "knobs": knobs }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn metric(&self, metric: &str, labels: &[&str]) -> f64 {
        self.system
            .metric("notifications", metric, labels)
            .await
            .unwrap_or(0.0)
    }

    pub async fn shutdown(self) {
        self.system.shutdown().await;
    }
}

pub fn eur(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".into(),
    }
}

/// An order of two teas and a mug, EUR 21.40 in all.
pub fn lines() -> Vec<OrderLine> {
    vec![
        OrderLine {
            sku: "TEA-SENCHA".into(),
            name: "Sencha green tea".into(),
            quantity: 2,
            unit_price: eur(650),
            line_total: eur(1300),
        },
        OrderLine {
            sku: "MUG-BLUE".into(),
            name: "Blue mug".into(),
            quantity: 1,
            unit_price: eur(840),
            line_total: eur(840),
        },
    ]
}

/// One customer's order, as its events tell it.
pub struct Order {
    pub order_id: Uuid,
    /// The number the customer quotes, `NB-` and eight letters and digits.
    pub number: String,
    pub user_id: Uuid,
    pub email: String,
    /// The mobile number given at checkout, if any.
    pub phone: Option<String>,
}

impl Order {
    /// An order of a customer who gave no mobile number.
    pub fn new(email: &str) -> Self {
        let random = Uuid::new_v4().simple().to_string().to_uppercase();
        Self {
            order_id: Uuid::now_v7(),
            number: format!("NB-{}", &random[..8]),
            user_id: Uuid::now_v7(),
            email: email.to_owned(),
            phone: None,
        }
    }

    /// An order of a customer who gave `phone` for text messages.
    pub fn with_phone(email: &str, phone: &str) -> Self {
        Self {
            phone: Some(phone.to_owned()),
            ..Self::new(email)
        }
    }

    pub fn placed(&self) -> OrderPlaced {
        OrderPlaced {
            order_id: self.order_id,
            number: self.number.clone(),
            user_id: self.user_id,
            email: self.email.clone(),
            phone: self.phone.clone(),
            lines: lines(),
            total: eur(2140),
        }
    }

    pub fn confirmed(&self) -> OrderConfirmed {
        OrderConfirmed {
            order_id: self.order_id,
            number: self.number.clone(),
            user_id: self.user_id,
            email: self.email.clone(),
            phone: self.phone.clone(),
            lines: lines(),
            total: eur(2140),
        }
    }

    pub fn cancelled(&self, reason: &str, refunded: bool) -> OrderCancelled {
        OrderCancelled {
            order_id: self.order_id,
            number: self.number.clone(),
            user_id: self.user_id,
            email: self.email.clone(),
            phone: self.phone.clone(),
            reason: reason.to_owned(),
            refunded,
            total: eur(2140),
        }
    }

    pub fn refunded(&self) -> PaymentRefunded {
        PaymentRefunded {
            payment_id: self.order_id,
            amount: eur(2140),
        }
    }
}
