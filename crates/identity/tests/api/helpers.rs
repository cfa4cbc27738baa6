pub use nubo_platform::testing::{assert_problem, eventually};
use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use nubo_identity::store::{self, KeyRow};
use nubo_platform::app::{Application, Wiring};
use nubo_platform::axum::http::Method;
use nubo_platform::config::EDGE;
use nubo_platform::testing::{Answer, TestClient, TestMode, TestSystem};
use nubo_platform::tokio_util::sync::CancellationToken;
use serde_json::{Value, json};

pub const ADMIN: (&str, &str) = ("admin@nubo.example", "nubo-admin-demo");
pub const CUSTOMER: (&str, &str) = ("customer@nubo.example", "nubo-customer-demo");
pub const PUBLISH_AT_ONCE: (&str, &str) = ("NUBO_IDENTITY_KEY_PUBLISH_DELAY_SECS", "0");

/// Identity with the demo accounts seeded and `env` as its own variables.
pub async fn start_with_env(mode: TestMode, env: &[(&str, &str)]) -> TestSystem {
    TestSystem::start_with(
        mode,
        &[&nubo_identity::SERVICE],
        |s| s.seed_demo_data = true,
        env,
    )
    .await
}

/// Identity with the demo accounts, and new keys that sign at once.
pub async fn start(mode: TestMode) -> TestSystem {
    start_with_env(mode, &[PUBLISH_AT_ONCE]).await
}

/// A client of one identity replica.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    /// The same replica as the gateway calls it (mutual TLS): the only caller whose
    /// `x-forwarded-for` identity believes.
    gateway: TestClient,
}

impl Client {
    pub fn of(system: &TestSystem) -> Self {
        Self {
            base: system.url("identity"),
            http: reqwest::Client::new(),
            gateway: system.client_as(EDGE, "identity"),
        }
    }

    /// A client of another replica of `system`'s identity at `base` (plain HTTP).
    pub fn at(system: &TestSystem, base: &str) -> Self {
        let internal = base.replacen("http://", "https://", 1);
        Self {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            gateway: system.client_as_at(EDGE, "identity", &internal),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/v1/identity/signup",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs up from the client address `ip`, as the gateway forwards it.
    pub async fn sign_up_from(&self, ip: &str, email: &str, password: &str) -> Answer {
        self.gateway
            .send_with(
                Method::POST,
                "/api/v1/identity/signup",
                &[("x-forwarded-for", ip)],
                Some(&json!({ "email": email, "password": password })),
            )
            .await
    }

    pub async fn sign_up_ok(&self, email: &str, password: &str) -> Value {
        let response = self.sign_up(email, password).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    pub async fn log_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/v1/identity/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Logs in from the client address `ip`, as the gateway forwards it.
    pub async fn log_in_from(&self, ip: &str, email: &str, password: &str) -> Answer {
        self.gateway
            .send_with(
                Method::POST,
                "/api/v1/identity/login",
                &[("x-forwarded-for", &format!("{ip}, 10.0.0.1"))],
                Some(&json!({ "email": email, "password": password })),
            )
            .await
    }

    /// The token pair of a successful login.
    pub async fn log_in_ok(&self, email: &str, password: &str) -> Value {
        let response = self.log_in(email, password).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    pub async fn access_token(&self, (email, password): (&str, &str)) -> String {
        self.log_in_ok(email, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post(
            "/api/v1/identity/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn log_out(&self, refresh_token: &str) -> reqwest::Response {
        self.post(
            "/api/v1/identity/logout",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/identity/me", self.base))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn rotate(&self, access_token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/admin/identity/keys/rotate", self.base))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn jwks(&self) -> JwkSet {
        let response = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// The kids a JWKS holds, in its order.
pub fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

/// The kid in a token's header.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// A token's claims as JSON, read without verifying anything.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn now_secs() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// The signing keys in identity's database, newest first, as an operator's shell sees them.
pub async fn stored_keys(system: &TestSystem) -> Vec<KeyRow> {
    let db = system.db("identity").await;
    let keys = store::signing_keys(&db).await.unwrap();
    db.close().await;
    keys
}

/// A second identity replica over the same database, cache and bus as `system`'s.
pub struct Replica {
    pub url: String,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// Starts it without waiting for it to be ready.
    pub async fn spawn(system: &TestSystem, env: &[(&str, &str)]) -> Self {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let app = Application::bind(
            &nubo_identity::SERVICE,
            system.settings_of(&nubo_identity::SERVICE),
            env,
        )
        .await
        .unwrap();
        let url = app.local_url();
        let wiring = Wiring {
            service_urls: BTreeMap::new(),
            embedded_bus: match system.mode {
                TestMode::Embedded => Some(system.bus().await),
                TestMode::Distributed => None,
            },
        };
        let token = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(wiring, token.clone()));
        Self { url, token, handle }
    }

    pub async fn start(system: &TestSystem, env: &[(&str, &str)]) -> Self {
        let replica = Self::spawn(system, env).await;
        let ready = format!("{}/readyz", replica.url);
        eventually("the second replica becoming ready", || async {
            reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        replica
    }

    /// What its run returned once it stopped on its own (it failed to start).
    pub async fn outcome(self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("the replica stops on its own")
            .unwrap()
    }

    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.handle.await;
    }
}
