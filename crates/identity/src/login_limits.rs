//! Login rate limits, counted in the platform cache so every replica shares them (memory when
//! embedded, Redis when distributed).
//!
//! Per client address: at most 20 login attempts a minute. Per account: at most 5 failed
//! logins in 15 minutes; after that every attempt is refused, the right password too, until the
//! window passes. An account's attempt is counted before its password is checked, so a burst
//! of concurrent guesses cannot all slip in under the limit; a successful login then clears the
//! count. Each window starts at its first attempt (a sliding start, not the wall clock's
//! minute), and its start is kept alongside so a refusal can say when to retry. When the cache
//! fails the limits let logins through: argon2 still makes each guess slow, and a login outage
//! would hurt more than a short gap in throttling.

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

/// A fixed window of `length` allowing `limit` hits, counted per subject.
struct Window {
    name: &'static str,
    limit: i64,
    length: Duration,
}

const PER_CLIENT: Window = Window {
    name: "client",
    limit: 20,
    length: Duration::from_secs(60),
};

const PER_ACCOUNT: Window = Window {
    name: "account",
    limit: 5,
    length: Duration::from_secs(15 * 60),
};

impl Window {
    fn key(&self, subject: &str) -> String {
        format!("identity:login:{}:{subject}", self.name)
    }

    /// Counts one hit; refuses it if the window already had its `limit`.
    async fn hit(&self, cache: &Cache, subject: &str) -> Result<(), Limited> {
        let key = self.key(subject);
        let since = format!("{key}:since");
        let now = nubo_platform::clock::now().timestamp();
        let hits = match cache.incr(&key, self.length).await {
            Ok(hits) => hits,
            Err(e) => {
                tracing::warn!(error = %e, window = self.name, "login rate limit unavailable; letting the attempt through");
                return Ok(());
            }
        };
        if hits == 1 {
            let _ = cache.set(&since, now.to_string().into(), self.length).await;
        }
        if hits <= self.limit {
            return Ok(());
        }
        let length = i64::try_from(self.length.as_secs()).unwrap_or(i64::MAX);
        let started = match cache.get(&since).await {
            Ok(Some(bytes)) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<i64>().ok()),
            _ => None,
        };
        let left = started.map_or(length, |started| started + length - now);
        Err(Limited {
            retry_after_secs: u64::try_from(left.clamp(1, length)).unwrap_or(1),
        })
    }

    async fn clear(&self, cache: &Cache, subject: &str) {
        let key = self.key(subject);
        let cleared = cache.delete(&key).await;
        let _ = cache.delete(&format!("{key}:since")).await;
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "cannot clear a login rate limit");
        }
    }
}

/// The cache key's subject for an account: a hash, so no email sits in the cache in clear.
fn account(email: &Email) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(email.as_str().as_bytes()))
}

/// Counts a login attempt from `client`.
pub async fn client_attempt(cache: &Cache, client: &str) -> Result<(), Limited> {
    PER_CLIENT.hit(cache, client).await
}

/// Counts a login attempt for `email`, before its password is checked.
pub async fn account_attempt(cache: &Cache, email: &Email) -> Result<(), Limited> {
    PER_ACCOUNT.hit(cache, &account(email)).await
}

/// The account's owner logged in: their earlier failures no longer count.
pub async fn account_succeeded(cache: &Cache, email: &Email) {
    PER_ACCOUNT.clear(cache, &account(email)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sixth_attempt_in_a_window_is_refused_until_it_passes() {
        let cache = Cache::memory(100);
        let email = Email::parse("ada@example.com").unwrap();
        for _ in 0..5 {
            assert_eq!(account_attempt(&cache, &email).await, Ok(()));
        }
        let refused = account_attempt(&cache, &email).await.unwrap_err();
        assert!(
            (890..=900).contains(&refused.retry_after_secs),
            "{refused:?}"
        );
        // Another account is not affected.
        let other = Email::parse("grace@example.com").unwrap();
        assert_eq!(account_attempt(&cache, &other).await, Ok(()));
    }

    #[tokio::test]
    async fn a_success_clears_the_count() {
        let cache = Cache::memory(100);
        let email = Email::parse("ada@example.com").unwrap();
        for _ in 0..5 {
            account_attempt(&cache, &email).await.unwrap();
        }
        account_succeeded(&cache, &email).await;
        assert_eq!(account_attempt(&cache, &email).await, Ok(()));
    }
}
