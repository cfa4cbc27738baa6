//! The shoppers of a chaos run: each with an account prepared up front, adding to its cart and
//! checking out over and over through the gateway. A checkout whose answer was lost (a dropped
//! connection, a 5xx, a 429) is asked again with the same Idempotency-Key until the shop
//! answers, so it is never placed twice nor counted twice; every acknowledged order is followed
//! until it is completed or cancelled.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

pub use crate::shop::Shop;

const GOOD_CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000000002";

/// What the shoppers saw.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    /// Checkouts asked for (each with its own key).
    pub attempted: u64,
    /// Checkouts the shop answered with an order.
    pub acknowledged: u64,
    pub completed: u64,
    pub cancelled: u64,
    /// Checkouts whose answer was lost at least once, and asked again with the same key.
    pub asked_again: u64,
    /// Checkouts that had no answer, or orders not settled, by the end of the run.
    pub unanswered: u64,
    pub unsettled: u64,
    /// Failed calls by kind (`add to cart: 503`, `checkout: connection`), each retried.
    pub errors: BTreeMap<String, u64>,
}

/// Orders for the faults that cancel orders: those in flight (with when they were
/// acknowledged) and the latest completed.
#[derive(Default)]
pub struct Orders {
    pub in_flight: BTreeMap<String, Instant>,
    pub completed: VecDeque<String>,
}

pub type Recent = Arc<Mutex<Orders>>;

impl Shop {
    /// Sets `service`'s fault switches through the ops console's admin API, as an operator
    /// would: the answer's status, or why there was none.
    pub async fn switch(
        &self,
        admin: &str,
        service: &str,
        faults: &serde_json::Value,
    ) -> Result<StatusCode, String> {
        self.http
            .put(self.api(&format!("/admin/ops/faults/{service}")))
            .bearer_auth(admin)
            .json(faults)
            .send()
            .await
            .map(|r| r.status())
            .map_err(|e| transport(&e).to_owned())
    }

    /// Asks an admin's cancel of `order`: the answer's status, or why there was none.
    pub async fn cancel(&self, admin: &str, order: &str) -> Result<StatusCode, String> {
        self.http
            .post(self.api(&format!("/admin/orders/{order}/cancel")))
            .bearer_auth(admin)
            .json(&json!({ "reason": "chaos: an operator cancels it" }))
            .send()
            .await
            .map(|r| r.status())
            .map_err(|e| transport(&e).to_owned())
    }
}

/// One shopper until `until`; it then follows its last order until `settle_by`.
#[allow(clippy::too_many_arguments, reason = "one shopper's whole brief")]
pub async fn shopper(
    shop: Shop,
    n: usize,
    password: String,
    skus: Vec<String>,
    until: Instant,
    settle_by: Instant,
    tally: Arc<Mutex<Tally>>,
    recent: Recent,
) {
    let email = format!("chaos-shopper-{n}@nubo.example");
    let mut token = None;
    let mut round = n;
    let count =
        |f: &(dyn Fn(&mut Tally) + Sync)| f(&mut tally.lock().unwrap_or_else(|e| e.into_inner()));
    let error = |what: String| {
        *tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .errors
            .entry(what)
            .or_default() += 1;
    };
    while Instant::now() < until {
        round += 1;
        let Some(bearer) = token.clone() else {
            match shop.log_in(&email, &password).await {
                Ok(t) => token = Some(t),
                Err(e) => {
                    error(format!("log in: {}", kind(&e)));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            continue;
        };
        let sku = &skus[round % skus.len()];
        let added = shop
            .http
            .post(shop.api("/cart/lines"))
            .bearer_auth(&bearer)
            .json(&json!({ "sku": sku, "quantity": round % 2 + 1 }))
            .send()
            .await;
        match added {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                if r.status() == StatusCode::UNAUTHORIZED {
                    token = None;
                }
                error(format!("add to cart: {}", r.status().as_u16()));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => {
                error(format!("add to cart: {}", transport(&e)));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        // One checkout in ten with a card the provider declines: the saga compensates.
        let card = if round.is_multiple_of(10) {
            DECLINED_CARD
        } else {
            GOOD_CARD
        };
        count(&|t| t.attempted += 1);
        let key = uuid::Uuid::new_v4().to_string();
        let Some(order) = checkout(
            &shop, &mut token, &email, &password, &key, card, settle_by, &error,
        )
        .await
        else {
            count(&|t| t.unanswered += 1);
            continue;
        };
        if order.asked_again {
            count(&|t| t.asked_again += 1);
        }
        let Some(id) = order.id else {
            continue;
        };
        count(&|t| t.acknowledged += 1);
        recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_flight
            .insert(id.clone(), Instant::now());
        let settled = follow(&shop, &mut token, &email, &password, &id, settle_by).await;
        {
            let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.in_flight.remove(&id);
            if settled.as_deref() == Some("completed") {
                recent.completed.push_back(id.clone());
                if recent.completed.len() > 64 {
                    recent.completed.pop_front();
                }
            }
        }
        match settled {
            Some(state) if state == "completed" => count(&|t| t.completed += 1),
            Some(_) => {
                count(&|t| t.cancelled += 1);
                // A cancelled checkout leaves the cart as it was; this shopper starts afresh.
                if let Some(bearer) = &token {
                    let _ = shop
                        .http
                        .delete(shop.api("/cart"))
                        .bearer_auth(bearer)
                        .send()
                        .await;
                }
            }
            None => count(&|t| t.unsettled += 1),
        }
    }
}

struct Answer {
    /// The order, or none when the shop refused the checkout for good (an empty cart, say).
    id: Option<String>,
    asked_again: bool,
}

/// Checks out under `key` until the shop answers for good, or `give_up` comes.
#[allow(
    clippy::too_many_arguments,
    reason = "the shopper's state it retries with"
)]
async fn checkout(
    shop: &Shop,
    token: &mut Option<String>,
    email: &str,
    password: &str,
    key: &str,
    card: &str,
    give_up: Instant,
    error: &(dyn Fn(String) + Sync),
) -> Option<Answer> {
    let body = json!({ "card": { "number": card, "expiry_month": 12, "expiry_year": 2035, "cvc": "123" } });
    let mut asked_again = false;
    let mut pause = Duration::from_millis(200);
    while Instant::now() < give_up {
        let Some(bearer) = bearer(shop, token, email, password).await else {
            tokio::time::sleep(pause).await;
            continue;
        };
        let answer = shop
            .http
            .post(shop.api("/checkout"))
            .bearer_auth(&bearer)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let order: Value = r.json().await.unwrap_or_default();
                if let Some(id) = order["order_id"].as_str() {
                    return Some(Answer {
                        id: Some(id.to_owned()),
                        asked_again,
                    });
                }
                error("checkout: an answer without an order id".to_owned());
            }
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => *token = None,
            Ok(r)
                if r.status().is_client_error() && r.status() != StatusCode::TOO_MANY_REQUESTS =>
            {
                // Refused for good (an empty cart after a lost answer is not possible: the
                // key finds the order first).
                error(format!("checkout: {}", r.status().as_u16()));
                return Some(Answer {
                    id: None,
                    asked_again,
                });
            }
            Ok(r) => error(format!("checkout: {}", r.status().as_u16())),
            Err(e) => error(format!("checkout: {}", transport(&e))),
        }
        asked_again = true;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    None
}

/// Follows the order until it is completed or cancelled: its final state, or none by `give_up`.
async fn follow(
    shop: &Shop,
    token: &mut Option<String>,
    email: &str,
    password: &str,
    id: &str,
    give_up: Instant,
) -> Option<String> {
    while Instant::now() < give_up {
        let Some(bearer) = bearer(shop, token, email, password).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let answer = shop
            .http
            .get(shop.api(&format!("/orders/{id}")))
            .bearer_auth(&bearer)
            .send()
            .await;
        if let Ok(r) = answer {
            if r.status() == StatusCode::UNAUTHORIZED {
                *token = None;
            } else if let Ok(order) = r.json::<Value>().await
                && let Some(state) = order["state"].as_str()
                && (state == "completed" || state == "cancelled")
            {
                return Some(state.to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The shopper's access token, logging in again when it has none (or it expired): none if the
/// log-in failed too.
async fn bearer(
    shop: &Shop,
    token: &mut Option<String>,
    email: &str,
    password: &str,
) -> Option<String> {
    if token.is_none() {
        *token = shop.log_in(email, password).await.ok();
    }
    token.clone()
}

fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection lost"
    }
}

fn kind(e: &anyhow::Error) -> String {
    match e.downcast_ref::<reqwest::Error>() {
        Some(e) => transport(e).to_owned(),
        None => e.to_string().chars().take(60).collect(),
    }
}
