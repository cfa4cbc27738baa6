//! Sessions: the token pair a login or a refresh hands out, and the refresh-token families
//! behind them.
//!
//! A refresh token is 32 random bytes, base64url, stored only as its SHA-256, and good for one
//! use: refreshing marks it used and issues the next token of the same family. A used token
//! presented again means two parties hold it, the owner and a thief, and nobody can tell which
//! is which, so the whole family is revoked and both must log in again.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nubo_platform::chrono::{DateTime, TimeDelta, Utc};
use nubo_platform::config::Secret;
use nubo_platform::storage::Db;
use nubo_platform::uuid::Uuid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Lifetimes;
use crate::domain::User;
use crate::keys::KeyRing;
use crate::store;
use crate::tokens::{self, Claims};

/// What a login or a refresh answers.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: u64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPair([redacted])")
    }
}

/// A refresh token as a client presents it: 43 base64url characters (32 bytes). Never printed.
pub struct RefreshToken(Secret);

impl RefreshToken {
    const BYTES: usize = 32;

    pub fn parse(raw: Secret) -> Result<Self, String> {
        match URL_SAFE_NO_PAD.decode(raw.expose()) {
            Ok(bytes) if bytes.len() == Self::BYTES => Ok(Self(raw)),
            _ => Err("must be a refresh token as login or refresh returned it".into()),
        }
    }

    fn generate() -> (String, [u8; 32]) {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; Self::BYTES]>());
        let hash = Self::hash_of(&token);
        (token, hash)
    }

    /// What the database keeps: a leaked table yields no usable token.
    fn hash(&self) -> [u8; 32] {
        Self::hash_of(self.0.expose())
    }

    fn hash_of(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// Why a refresh was refused. The client is told the same for each.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown, expired or revoked refresh token")]
    Invalid,
    #[error("a used refresh token came back; its family is revoked")]
    Reused { family: Uuid, user: Uuid },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<nubo_platform::sqlx::Error> for RefreshError {
    fn from(e: nubo_platform::sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// Issues and refreshes token pairs. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    db: Db,
    keys: KeyRing,
    lifetimes: Lifetimes,
}

impl Sessions {
    pub fn new(db: Db, keys: KeyRing, lifetimes: Lifetimes) -> Self {
        Self {
            db,
            keys,
            lifetimes,
        }
    }

    /// An access token for `user`, signed with the key that signs now.
    pub fn access_token(&self, user: &User, now: DateTime<Utc>) -> anyhow::Result<String> {
        let (kid, key) = self
            .keys
            .signer(now)
            .ok_or_else(|| anyhow::anyhow!("no signing key is active"))?;
        let mut claims = Claims::new(
            user.id,
            user.roles(),
            now.timestamp(),
            secs(self.lifetimes.access_token),
        );
        claims.email = Some(user.email.as_str().to_owned());
        Ok(tokens::sign(&claims, &kid, &key)?)
    }

    /// A new session for `user`, who just proved who they are: a new refresh-token family.
    pub async fn start(&self, user: &User) -> anyhow::Result<TokenPair> {
        let mut tx = self.db.begin().await?;
        let now = nubo_platform::clock::now();
        let refresh = self
            .issue_refresh(&mut tx, Uuid::new_v4(), user.id, now)
            .await?;
        tx.commit().await?;
        self.pair(user, refresh, now)
    }

    /// The next pair of the session `presented` belongs to; `presented` is used up.
    pub async fn refresh(&self, presented: &RefreshToken) -> Result<TokenPair, RefreshError> {
        let hash = presented.hash();
        let now = nubo_platform::clock::now();
        let mut tx = self.db.begin().await?;
        let Some(token) = store::refresh_token(&mut tx, &hash).await? else {
            return Err(RefreshError::Invalid);
        };
        if token.revoked_at.is_some() {
            return Err(RefreshError::Invalid);
        }
        // `use_refresh_token` is the arbiter: of two refreshes racing with one token, the
        // loser finds it used, exactly as a thief replaying it later would.
        if token.used_at.is_some() || !store::use_refresh_token(&mut tx, &hash, now).await? {
            store::revoke_family(&mut tx, token.family_id, now).await?;
            tx.commit().await?;
            return Err(RefreshError::Reused {
                family: token.family_id,
                user: token.user_id,
            });
        }
        if token.expires_at <= now {
            return Err(RefreshError::Invalid);
        }
        let refresh = self
            .issue_refresh(&mut tx, token.family_id, token.user_id, now)
            .await?;
        tx.commit().await?;
        // Read after the commit: roles may have changed since the session began.
        let user = store::user_by_id(&self.db, token.user_id)
            .await?
            .ok_or(RefreshError::Invalid)?;
        Ok(self.pair(&user, refresh, now)?)
    }

    /// Ends the session `presented` belongs to, whatever state it is in.
    pub async fn end(&self, presented: &RefreshToken) -> Result<(), nubo_platform::sqlx::Error> {
        store::revoke_family_of(&self.db, &presented.hash(), nubo_platform::clock::now()).await
    }

    async fn issue_refresh(
        &self,
        tx: &mut nubo_platform::Tx,
        family: Uuid,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, nubo_platform::sqlx::Error> {
        let (token, hash) = RefreshToken::generate();
        let expires_at = now + TimeDelta::seconds(secs(self.lifetimes.refresh_token));
        store::insert_refresh_token(tx, &hash, family, user, now, expires_at).await?;
        Ok(token)
    }

    fn pair(&self, user: &User, refresh: String, now: DateTime<Utc>) -> anyhow::Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.access_token(user, now)?,
            token_type: "Bearer".into(),
            expires_in: self.lifetimes.access_token.as_secs(),
            refresh_token: refresh,
            refresh_expires_in: self.lifetimes.refresh_token.as_secs(),
        })
    }

    /// The background task: hourly, deletes refresh tokens that expired a day ago or more
    /// (kept that long so a late replay still finds its family).
    pub async fn purge_expired(self, token: nubo_platform::tokio_util::sync::CancellationToken) {
        loop {
            let before = nubo_platform::clock::now() - TimeDelta::days(1);
            match store::purge_refresh_tokens(&self.db, before).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted expired refresh tokens"),
                Err(e) => tracing::warn!(error = %e, "cannot delete expired refresh tokens"),
            }
            nubo_platform::tokio::select! {
                _ = token.cancelled() => return,
                _ = nubo_platform::tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        }
    }
}

/// Our lifetimes are bounded by configuration far below `i64::MAX` seconds.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_has_32_random_bytes_and_parses_back() {
        let (token, hash) = RefreshToken::generate();
        assert_eq!(token.len(), 43);
        let parsed = RefreshToken::parse(Secret::new(token.clone())).unwrap();
        assert_eq!(parsed.hash(), hash);
        assert_ne!(RefreshToken::generate().0, token);
        assert!(!format!("{parsed:?}").contains(&token));
    }

    #[test]
    fn a_malformed_refresh_token_is_refused() {
        for bad in ["", "short", &"a".repeat(44), &"!".repeat(43)] {
            assert!(RefreshToken::parse(Secret::new(bad)).is_err(), "{bad:?}");
        }
    }
}
