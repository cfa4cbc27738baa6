//! A client of a running shop's public API, through its gateway: what the load generator and
//! the chaos run's shoppers and operator call.

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Shop {
    pub http: reqwest::Client,
    /// The gateway's URL, without a trailing slash.
    pub base: String,
}

impl Shop {
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Logs in: the access token.
    pub async fn log_in(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(self.api("/identity/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await?;
        let body = answer(response, &format!("log in as {email}")).await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token in the login answer")
    }

    /// Signs a customer up: whether the account is new (false: it existed already).
    pub async fn sign_up(&self, email: &str, password: &str) -> anyhow::Result<bool> {
        let response = self
            .http
            .post(self.api("/identity/signup"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await?;
        let status = response.status();
        if status == StatusCode::CONFLICT {
            return Ok(false);
        }
        answer(response, &format!("sign up {email}")).await?;
        Ok(true)
    }

    /// The SKUs of the first `n` products of the catalog.
    pub async fn skus(&self, n: u32) -> anyhow::Result<Vec<String>> {
        let page: Value = self
            .http
            .get(self.api(&format!("/products?per_page={n}")))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let skus: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["sku"].as_str().map(str::to_owned))
            .collect();
        if skus.is_empty() {
            bail!("the catalog is empty: seed it (nubo up does) or create products first");
        }
        Ok(skus)
    }

    /// Sets the units on hand of `sku` (as an admin).
    pub async fn set_stock(&self, admin: &str, sku: &str, on_hand: i64) -> anyhow::Result<()> {
        let response = self
            .http
            .put(self.api(&format!("/admin/inventory/{sku}")))
            .bearer_auth(admin)
            .json(&json!({ "on_hand": on_hand }))
            .send()
            .await?;
        answer(response, &format!("set the stock of {sku}")).await?;
        Ok(())
    }

    /// The units of `sku` that can still be bought (on hand, less those held by checkouts).
    pub async fn available(&self, sku: &str) -> anyhow::Result<i64> {
        let response = self
            .http
            .get(self.api(&format!("/inventory/{sku}")))
            .send()
            .await?;
        let body = answer(response, &format!("the stock of {sku}")).await?;
        body["available"]
            .as_i64()
            .with_context(|| format!("no availability for {sku}"))
    }
}

/// The JSON body of a successful answer; otherwise an error naming `what` was asked, the status
/// and the problem's detail.
async fn answer(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: {status} {}", body["detail"]);
    }
    Ok(body)
}
