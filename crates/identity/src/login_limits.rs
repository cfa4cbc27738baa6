//! Login and sign-up rate limits, counted in the platform cache so every replica shares them
//! (memory when embedded, Redis when distributed).
//!
//! Sign-ups: each client address may make a configured number an hour (20 by default: a
//! household or an office behind one address, and the shop's own load generator, which signs
//! its shoppers up through one gateway). Every sign-up with valid input counts, taken email or
//! not, so the limit also bounds the hashing an address can cause and how fast it can learn
//! which emails have accounts.
//!
//! A lockout must not be a weapon: if failures from anywhere locked an account, anyone could
//! lock anyone out. So failures lock the address they come from, never the account, and an
//! address that has not failed at an account is never refused it:
//!
//! 1. Per client address: at most 20 login attempts a minute (`NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE`),
//!    whatever the accounts.
//! 2. Per account and address: 5 failed attempts in 15 minutes lock that address out of that
//!    account (the right password too) until the window passes. The owner elsewhere is not.
//! 3. Per account, a progressive back-off against guessing from many addresses: failures from
//!    every address are counted over a day. From the 10th on, the account is under attack, and
//!    an address it does not know gets one failed attempt at it, then is locked out of it for
//!    30 minutes, doubling with every 10 more failures the account has seen, up to a day. The
//!    addresses the owner signed in from in the last 30 days keep the ordinary 5 in 15 minutes,
//!    so a typo at home during an attack costs no more than before.
//!
//! Guessing stays bounded: each address gets at most 5 guesses at an account per 15 minutes,
//! and once the account is under attack, one per lock, which soon lasts a day. An attacker then
//! needs a fresh address for every guess, and one address still makes at most 20 a minute over
//! all accounts. Bounding it further would mean refusing an address that has never failed,
//! which is exactly what cannot tell the owner on a new network from the attacker's next
//! address: the owner must always get a try.
//!
//! An attempt is counted against its address before its password is checked, so a burst of
//! concurrent guesses cannot all slip in under the limit; a successful login then clears that
//! address's count and remembers the address. It does not clear the account's failures: an
//! attack goes on whether or not the owner signs in. Each window starts at its first attempt
//! (a sliding start, not the wall clock's minute), and its end is kept alongside so a refusal
//! can say when to retry. When the cache fails the limits let logins through: argon2 still
//! makes each guess slow, and a login outage would hurt more than a short gap in throttling.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nubo_platform::cache::Cache;
use sha2::{Digest, Sha256};

use crate::domain::Email;

/// A refusal: try again in this many seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Attempts an address may fail at one account in [`ADDRESS_WINDOW`] (one more is refused).
const PER_ADDRESS: i64 = 5;
const ADDRESS_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures of an account from all addresses, over [`FAILURES_WINDOW`], that put it under
/// attack.
const UNDER_ATTACK: i64 = 10;
const FAILURES_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The lock of an address the account does not know, when the account is under attack: this
/// long at first, doubling with every [`UNDER_ATTACK`] more failures, at most [`LONGEST_LOCK`].
const FIRST_LOCK: Duration = Duration::from_secs(30 * 60);
const LONGEST_LOCK: Duration = Duration::from_secs(24 * 3600);
/// How long an address the owner signed in from stays known to the account.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Counts a sign-up from `client`, which may make `per_hour`.
pub async fn signup_attempt(cache: &Cache, client: &str, per_hour: u64) -> Result<(), Limited> {
    let limit = i64::try_from(per_hour).unwrap_or(i64::MAX);
    hit(
        cache,
        &format!("identity:signup:client:{client}"),
        limit,
        HOUR,
    )
    .await
}

/// Counts a login attempt from `client`, which may make `per_minute` over all accounts.
pub async fn client_attempt(cache: &Cache, client: &str, per_minute: u64) -> Result<(), Limited> {
    let limit = i64::try_from(per_minute).unwrap_or(i64::MAX);
    hit(
        cache,
        &format!("identity:login:client:{client}"),
        limit,
        MINUTE,
    )
    .await
}

/// Counts an attempt at `email` from `client`, before its password is checked: refused if the
/// address has used up what the account allows it now.
pub async fn account_attempt(cache: &Cache, email: &Email, client: &str) -> Result<(), Limited> {
    let account = Account::of(email);
    let failures = read_count(cache, &account.failures()).await;
    let (limit, window) = if failures < UNDER_ATTACK || account.knows(cache, client).await {
        (PER_ADDRESS, ADDRESS_WINDOW)
    } else {
        (1, lock(failures))
    };
    hit(cache, &account.from(client), limit, window).await
}

/// A wrong password for `email`: one more failure of the account. True if it is the one that
/// put the account under attack.
pub async fn account_failed(cache: &Cache, email: &Email) -> bool {
    let account = Account::of(email);
    match cache.incr(&account.failures(), FAILURES_WINDOW).await {
        Ok(failures) => failures == UNDER_ATTACK,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count a failed login; the account back-off misses it");
            false
        }
    }
}

/// The owner logged in from `client`: that address's earlier failures no longer count, and the
/// account knows the address from now on.
pub async fn account_succeeded(cache: &Cache, email: &Email, client: &str) {
    let account = Account::of(email);
    let key = account.from(client);
    let cleared = cache.delete(&key).await;
    let _ = cache.delete(&until(&key)).await;
    let known = cache
        .set(&account.known(client), "1".into(), KNOWN_FOR)
        .await;
    if let Err(e) = cleared.and(known) {
        tracing::warn!(error = %e, "cannot record a successful login in the rate limits");
    }
}

/// How long an address the account does not know is locked out after its failure, once the
/// account has seen `failures`.
fn lock(failures: i64) -> Duration {
    let doublings = (failures.saturating_sub(UNDER_ATTACK) / UNDER_ATTACK).clamp(0, 16) as u32;
    FIRST_LOCK.saturating_mul(1 << doublings).min(LONGEST_LOCK)
}

/// An account's keys in the cache: a hash of its email, so no email sits there in clear.
struct Account(String);

impl Account {
    fn of(email: &Email) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(email.as_str().as_bytes())))
    }

    /// The attempts at the account from `client`.
    fn from(&self, client: &str) -> String {
        format!("identity:login:account:{}:from:{client}", self.0)
    }

    /// The account's failures from every address.
    fn failures(&self) -> String {
        format!("identity:login:account:{}:failures", self.0)
    }

    /// Present while `client` is an address the owner signed in from.
    fn known(&self, client: &str) -> String {
        format!("identity:login:account:{}:known:{client}", self.0)
    }

    /// Whether the owner signed in from `client` lately. A cache that cannot tell says yes: the
    /// limits fail open.
    async fn knows(&self, cache: &Cache, client: &str) -> bool {
        cache
            .get(&self.known(client))
            .await
            .map_or(true, |known| known.is_some())
    }
}

/// Where the end of the window counted at `key` is kept (Unix seconds).
fn until(key: &str) -> String {
    format!("{key}:until")
}

/// The counter at `key`, 0 if absent or unreadable (the limits fail open).
async fn read_count(cache: &Cache, key: &str) -> i64 {
    match cache.get(key).await {
        // Counters and times are decimal text; anything else counts as nothing.
        Ok(Some(bytes)) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(0),
        Ok(None) => 0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a login rate limit; letting the attempt through");
            0
        }
    }
}

/// Counts one hit at `key` in a window of `length` that starts at the window's first hit, and
/// refuses it if the window already had its `limit`.
async fn hit(cache: &Cache, key: &str, limit: i64, length: Duration) -> Result<(), Limited> {
    let now = nubo_platform::clock::now().timestamp();
    let length_secs = i64::try_from(length.as_secs()).unwrap_or(i64::MAX);
    let hits = match cache.incr(key, length).await {
        Ok(hits) => hits,
        Err(e) => {
            tracing::warn!(error = %e, "login rate limit unavailable; letting the attempt through");
            return Ok(());
        }
    };
    if hits == 1 {
        let end = now.saturating_add(length_secs);
        let _ = cache.set(&until(key), end.to_string().into(), length).await;
    }
    if hits <= limit {
        return Ok(());
    }
    let left = read_count(cache, &until(key))
        .await
        .checked_sub(now)
        .filter(|left| *left > 0)
        .unwrap_or(length_secs);
    Err(Limited {
        retry_after_secs: u64::try_from(left.clamp(1, length_secs)).unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    /// `n` attempts at `email` from `client`, each a failure.
    async fn fail(cache: &Cache, email: &Email, client: &str, n: usize) {
        for _ in 0..n {
            account_attempt(cache, email, client).await.unwrap();
            account_failed(cache, email).await;
        }
    }

    #[tokio::test]
    async fn the_sixth_attempt_from_one_address_is_refused_there_only() {
        let cache = Cache::memory(100);
        let ada = email("ada@example.com");
        fail(&cache, &ada, "198.51.100.1", 5).await;
        let refused = account_attempt(&cache, &ada, "198.51.100.1")
            .await
            .unwrap_err();
        assert!(
            (890..=900).contains(&refused.retry_after_secs),
            "{refused:?}"
        );
        // Another address, and another account from the same address, are not affected.
        assert_eq!(account_attempt(&cache, &ada, "198.51.100.2").await, Ok(()));
        let grace = email("grace@example.com");
        assert_eq!(
            account_attempt(&cache, &grace, "198.51.100.1").await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_success_clears_the_address_count_but_not_the_account_failures() {
        let cache = Cache::memory(100);
        let ada = email("ada@example.com");
        fail(&cache, &ada, "198.51.100.1", 4).await;
        account_attempt(&cache, &ada, "198.51.100.1").await.unwrap();
        account_succeeded(&cache, &ada, "198.51.100.1").await;
        for _ in 0..5 {
            assert_eq!(account_attempt(&cache, &ada, "198.51.100.1").await, Ok(()));
        }
        let failures = read_count(&cache, &Account::of(&ada).failures()).await;
        assert_eq!(failures, 4);
    }

    #[tokio::test]
    async fn under_attack_an_unknown_address_gets_one_failure_and_a_known_one_keeps_five() {
        let cache = Cache::memory(1000);
        let ada = email("ada@example.com");
        account_attempt(&cache, &ada, "192.0.2.1").await.unwrap();
        account_succeeded(&cache, &ada, "192.0.2.1").await;
        for n in 1..=10 {
            fail(&cache, &ada, &format!("203.0.113.{n}"), 1).await;
        }
        // A fresh address still gets its try...
        fail(&cache, &ada, "198.51.100.1", 1).await;
        // ...and after one failure, a lock longer than the ordinary window.
        let refused = account_attempt(&cache, &ada, "198.51.100.1")
            .await
            .unwrap_err();
        assert!(
            (1790..=1800).contains(&refused.retry_after_secs),
            "{refused:?}"
        );
        // The owner's own address still gets five.
        fail(&cache, &ada, "192.0.2.1", 5).await;
        assert!(account_attempt(&cache, &ada, "192.0.2.1").await.is_err());
    }

    #[test]
    fn the_lock_doubles_every_ten_failures_up_to_a_day() {
        let minutes = |failures| lock(failures).as_secs() / 60;
        assert_eq!(minutes(10), 30);
        assert_eq!(minutes(19), 30);
        assert_eq!(minutes(20), 60);
        assert_eq!(minutes(30), 120);
        assert_eq!(minutes(60), 16 * 60);
        assert_eq!(minutes(70), 24 * 60);
        assert_eq!(minutes(i64::MAX), 24 * 60);
    }

    #[tokio::test]
    async fn one_address_gets_its_sign_ups_an_hour() {
        let cache = Cache::memory(100);
        for _ in 0..3 {
            assert_eq!(signup_attempt(&cache, "203.0.113.7", 3).await, Ok(()));
        }
        let refused = signup_attempt(&cache, "203.0.113.7", 3).await.unwrap_err();
        assert!(
            (3590..=3600).contains(&refused.retry_after_secs),
            "{refused:?}"
        );
        assert_eq!(signup_attempt(&cache, "203.0.113.8", 3).await, Ok(()));
    }

    #[tokio::test]
    async fn one_address_gets_twenty_attempts_a_minute() {
        let cache = Cache::memory(100);
        for _ in 0..20 {
            assert_eq!(client_attempt(&cache, "203.0.113.7", 20).await, Ok(()));
        }
        let refused = client_attempt(&cache, "203.0.113.7", 20).await.unwrap_err();
        assert!((1..=60).contains(&refused.retry_after_secs), "{refused:?}");
        assert_eq!(client_attempt(&cache, "203.0.113.8", 20).await, Ok(()));
    }
}
