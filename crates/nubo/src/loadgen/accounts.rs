//! The shoppers' customer accounts, prepared before the clock starts: signed up and logged in,
//! a few at a time, so that the run measures shopping and not argon2. The shop limits sign-ups
//! and logins per client address, and the load generator is one address: when it says 429, the
//! run stops with the variables to raise on the shop under test. During a long run each
//! account's access token is renewed with its refresh token before it expires.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::bail;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::stats::{Op, Stats};
use crate::shop::Shop;

/// Sign-ups and logins in flight at once while preparing: each costs the shop an argon2 hash,
/// and more at once would only queue in identity (or be answered 503 when its wait runs out).
const PREPARING_AT_ONCE: usize = 8;

pub struct Account {
    tokens: RwLock<Tokens>,
}

struct Tokens {
    access: String,
    refresh: String,
    /// When to renew: halfway through the access token's life.
    renew_at: Instant,
}

impl Tokens {
    fn from_answer(body: &Value) -> Option<Self> {
        let lives = body["expires_in"].as_u64().unwrap_or(900);
        Some(Self {
            access: body["access_token"].as_str()?.to_owned(),
            refresh: body["refresh_token"].as_str()?.to_owned(),
            renew_at: Instant::now() + Duration::from_secs(lives / 2),
        })
    }
}

impl Account {
    pub fn bearer(&self) -> String {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .access
            .clone()
    }
}

/// What to tell the user when the shop refuses one more sign-up or login from this address.
fn limited(what: &str, count: usize, detail: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "the shop refused to {what} (429: {}). It counts sign-ups (an hour) and logins (a \
         minute) per client address, and every shopper comes from this one: this run needs \
         {count} of each, on top of earlier runs. Start the shop under test with \
         NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR=1000000 and \
         NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE=1000 (both default to 20), and \
         NUBO_GATEWAY_RATE_LIMIT_RPS=1000000 so that the run measures the shop rather than its \
         limits; or prepare fewer accounts (--shoppers, --accounts)",
        detail.as_str().unwrap_or("rate limited")
    )
}

/// Signs up and logs in `count` new customers, `PREPARING_AT_ONCE` at a time.
pub async fn prepare(shop: &Shop, count: usize, run_id: &str) -> anyhow::Result<Vec<Arc<Account>>> {
    let password = format!("loadgen-{run_id}");
    let mut running = JoinSet::new();
    let mut accounts = Vec::with_capacity(count);
    let mut next = 0;
    let started = Instant::now();
    while accounts.len() < count {
        while next < count && running.len() < PREPARING_AT_ONCE {
            let (shop, password) = (shop.clone(), password.clone());
            let email = format!("loadgen-{}-{next}@nubo.example", &run_id[..8]);
            running.spawn(async move { customer(&shop, email, &password, count).await });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        accounts.push(Arc::new(done??));
        if accounts.len() % 100 == 0 {
            eprintln!(
                "loadgen: {} of {count} shopper accounts ready ({:.0} s)",
                accounts.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(accounts)
}

/// One new customer, signed up and logged in. A busy identity (503) is asked again.
async fn customer(
    shop: &Shop,
    email: String,
    password: &str,
    count: usize,
) -> anyhow::Result<Account> {
    let credentials = json!({ "email": email, "password": password });
    let signed_up = ask(shop, "/identity/signup", &credentials, "sign up", count).await?;
    if signed_up.0 == StatusCode::CONFLICT {
        bail!("sign up {email}: the account exists already");
    }
    let (_, body) = ask(shop, "/identity/login", &credentials, "log in", count).await?;
    let tokens = Tokens::from_answer(&body)
        .ok_or_else(|| anyhow::anyhow!("log in {email}: no tokens in the answer"))?;
    Ok(Account {
        tokens: RwLock::new(tokens),
    })
}

/// Posts `body` to `path` until the shop answers other than 503: the status and the body.
async fn ask(
    shop: &Shop,
    path: &str,
    body: &Value,
    what: &str,
    count: usize,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut pause = Duration::from_millis(200);
    for _ in 0..8 {
        let response = shop.http.post(shop.api(path)).json(body).send().await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                return Err(limited(
                    &format!("{what} one more shopper"),
                    count,
                    &answer["detail"],
                ));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            s if s.is_success() || s == StatusCode::CONFLICT => return Ok((status, answer)),
            s => bail!("{what} {}: {s} {}", body["email"], answer["detail"]),
        }
    }
    bail!("{what} {}: identity stayed busy (503)", body["email"])
}

/// Renews every account's access token before it expires; runs until aborted.
pub async fn keep_signed_in(shop: Shop, accounts: Vec<Arc<Account>>, stats: Arc<Stats>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        for account in &accounts {
            let (due, refresh) = {
                let tokens = account.tokens.read().unwrap_or_else(|e| e.into_inner());
                (tokens.renew_at <= Instant::now(), tokens.refresh.clone())
            };
            if !due {
                continue;
            }
            let sent = Instant::now();
            let answer = shop
                .http
                .post(shop.api("/identity/refresh"))
                .json(&json!({ "refresh_token": refresh }))
                .send()
                .await;
            let renewed = match answer {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                Ok(r) => {
                    stats.error(Op::RefreshToken, r.status().as_u16().to_string());
                    None
                }
                Err(e) => {
                    stats.error(Op::RefreshToken, super::visit::transport(&e));
                    None
                }
            };
            // One that failed is tried again on the next round; its access token may still hold.
            if let Some(tokens) = renewed.as_ref().and_then(Tokens::from_answer) {
                stats.ok(Op::RefreshToken, sent);
                *account.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens;
            }
        }
    }
}

/// The open model's accounts: an arrival that needs one takes the one that has waited longest
/// (round-robin while there are enough), so that no two running iterations share a cart.
pub struct Pool {
    free: Mutex<VecDeque<Arc<Account>>>,
    available: Semaphore,
}

/// An account taken from the pool, given back when dropped.
pub struct Lease<'a> {
    pool: &'a Pool,
    account: Option<Arc<Account>>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Account;
    fn deref(&self) -> &Account {
        self.account
            .as_ref()
            .expect("a lease holds its account until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(account) = self.account.take() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(account);
            self.pool.available.add_permits(1);
        }
    }
}

impl Pool {
    pub fn new(accounts: Vec<Arc<Account>>) -> Self {
        Self {
            available: Semaphore::new(accounts.len()),
            free: Mutex::new(accounts.into()),
        }
    }

    /// The next free account, waiting for one if every account is in use (the wait counts in
    /// the iteration's latency, measured from its intended start).
    pub async fn take(&self) -> Lease<'_> {
        self.available
            .acquire()
            .await
            .expect("the pool's semaphore is never closed")
            .forget();
        let account = self
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        Lease {
            pool: self,
            account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(email: &str) -> Arc<Account> {
        Arc::new(Account {
            tokens: RwLock::new(Tokens {
                access: email.to_owned(),
                refresh: String::new(),
                renew_at: Instant::now(),
            }),
        })
    }

    #[tokio::test]
    async fn arrivals_take_the_accounts_in_turn_and_never_share_one() {
        let pool = Pool::new(vec![account("a"), account("b")]);
        let first = pool.take().await;
        let second = pool.take().await;
        assert_eq!((first.bearer(), second.bearer()), ("a".into(), "b".into()));
        let third = tokio::time::timeout(Duration::from_millis(50), pool.take()).await;
        assert!(
            third.is_err(),
            "a third arrival waits while both are in use"
        );
        drop(first);
        let again = pool.take().await;
        assert_eq!(again.bearer(), "a", "given back, taken again");
        drop(second);
        assert_eq!(pool.take().await.bearer(), "b");
    }
}
