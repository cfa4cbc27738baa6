//! Token signing keys: creation, rotation without downtime, and each replica's view of them.
//!
//! Keys live in the database, so every replica signs with the same key and serves the same
//! JWKS. A new key is published at once but signs only after the publish delay, by which time
//! every verifier that caches the JWKS has fetched it; the key it replaces stays published
//! until every token it signed has expired (the access token lifetime, the verifiers' leeway
//! and a replica's reload interval after it stopped signing), then leaves the JWKS, and is
//! deleted a day later. Which key signs is a function of time alone (the newest one whose
//! `activated_at` has passed), so replicas switch together even between reloads. Two replicas
//! rotating at once cannot both add a key: a key's `generation` is unique, and the second
//! insert of a generation does nothing.
//!
//! The JWKS stays small however often rotations come: a rotation while the newest key still
//! waits to sign adds nothing (that key is already the next one, and has signed nothing), so a
//! new signer takes over at most once per publish delay. Published are then the signing key, at
//! most one waiting key, and the keys that stopped signing within the retention: with daily
//! rotation two keys, and at most 2 + retention / publish delay (6 at the defaults) however many
//! admins press rotate. With a publish delay of zero (tests, verifiers that do not cache) a
//! rotation signs at once, so only the retention bounds how long each rotation's key stays.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use nubo_platform::chrono::{DateTime, TimeDelta, Utc};
use nubo_platform::storage::Db;
use nubo_platform::tokio_util::sync::CancellationToken;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Lifetimes;
use crate::store::{self, KeyRow};
use crate::tokens::{Jwks, LEEWAY_SECS, PublicJwk};

/// Replicas reload keys at least this often, so a key stays published this much longer than
/// the last token it signed could live: a replica that has not yet seen a rotation may still
/// sign with the old key until its next reload.
const MAX_RELOAD: Duration = Duration::from_secs(30);

/// A fresh Ed25519 key pair, named by its RFC 7638 thumbprint.
pub struct KeyPair {
    pub kid: String,
    /// PKCS#8 DER, what `jsonwebtoken` signs with and the database stores.
    pkcs8: Vec<u8>,
    public: [u8; 32],
}

impl KeyPair {
    pub fn generate() -> anyhow::Result<Self> {
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let pkcs8 = signing
            .to_pkcs8_der()
            .context("cannot encode the new key as PKCS#8")?
            .as_bytes()
            .to_vec();
        let public = signing.verifying_key().to_bytes();
        Ok(Self {
            kid: thumbprint(&public),
            pkcs8,
            public,
        })
    }

    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_ed_der(&self.pkcs8)
    }

    pub fn jwk(&self) -> PublicJwk {
        PublicJwk::ed25519(&self.kid, URL_SAFE_NO_PAD.encode(self.public))
    }
}

/// RFC 7638: base64url of the SHA-256 of the key's required members in lexicographic order.
/// A kid that is a function of the key cannot name two different keys.
fn thumbprint(public: &[u8; 32]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A key as one replica holds it.
#[derive(Clone)]
struct Held {
    kid: String,
    generation: i64,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: PublicJwk,
    created_at: DateTime<Utc>,
    activated_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

impl Held {
    fn from_row(row: KeyRow) -> anyhow::Result<Self> {
        let public: [u8; 32] = row.public_key.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "signing key {} has a public key that is not 32 bytes",
                row.kid
            )
        })?;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(&row.private_key),
            // jsonwebtoken's Ed25519 "DER" decoding key is the raw public key.
            decoding: DecodingKey::from_ed_der(&public),
            jwk: PublicJwk::ed25519(&row.kid, URL_SAFE_NO_PAD.encode(public)),
            kid: row.kid,
            generation: row.generation,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
        })
    }
}

/// What an operator learns about a key.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub kid: String,
    pub generation: i64,
    /// Published in the JWKS from here.
    pub created_at: DateTime<Utc>,
    /// Signs tokens from here.
    pub activated_at: DateTime<Utc>,
}

/// When to add a key.
#[derive(Clone, Copy, Debug)]
enum Rotation {
    /// Only if there is no key at all: the first start.
    First,
    /// If the newest key is older than this.
    Due(Duration),
    /// Now: an admin asked.
    Forced,
}

/// One replica's view of the signing keys, reloaded from the database. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    lifetimes: Lifetimes,
    held: Arc<RwLock<Arc<Vec<Held>>>>,
}

impl KeyRing {
    pub fn new(db: Db, lifetimes: Lifetimes) -> Self {
        Self {
            db,
            lifetimes,
            held: Arc::default(),
        }
    }

    fn held(&self) -> Arc<Vec<Held>> {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads every key from the database.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let rows = store::signing_keys(&self.db).await?;
        let held = rows
            .into_iter()
            .map(Held::from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        *self.held.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(held);
        Ok(())
    }

    /// Creates and activates a key at once if there is none (first start), then loads them.
    pub async fn ensure_signing_key(&self) -> anyhow::Result<()> {
        self.add_key(Rotation::First, nubo_platform::clock::now())
            .await?;
        self.reload().await
    }

    /// Adds a key now; it signs after the publish delay. Returns the new key, or the one that
    /// is already waiting to sign (added by an earlier or a concurrent rotation).
    pub async fn rotate(&self) -> anyhow::Result<KeyInfo> {
        if let Some(added) = self
            .add_key(Rotation::Forced, nubo_platform::clock::now())
            .await?
        {
            return Ok(added);
        }
        self.reload().await?;
        self.newest()
            .context("a concurrent rotation left no key behind")
    }

    /// Adds a key if at `now` the newest is older than `every` and already signs. Returns it if
    /// this replica added it.
    pub async fn rotate_if_due(
        &self,
        every: Duration,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<KeyInfo>> {
        // Checked against what is loaded first, so a replica does not open a write
        // transaction every time it looks; the transaction checks again.
        let due = self
            .held()
            .first()
            .is_none_or(|newest| newest.created_at + delta(every) <= now);
        if !due {
            return Ok(None);
        }
        self.add_key(Rotation::Due(every), now).await
    }

    /// The newest key, which is the one signing or about to.
    pub fn newest(&self) -> Option<KeyInfo> {
        self.held().first().map(|k| KeyInfo {
            kid: k.kid.clone(),
            generation: k.generation,
            created_at: k.created_at,
            activated_at: k.activated_at,
        })
    }

    async fn add_key(
        &self,
        rotation: Rotation,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<KeyInfo>> {
        let mut tx = self.db.begin().await?;
        let newest = store::newest_signing_key(&mut tx).await?;
        let (generation, activated_at) = match (rotation, newest) {
            // Nothing can have been signed yet, so nothing waits for verifiers to learn it.
            (Rotation::First, None) => (1, now),
            (Rotation::First, Some(_)) => return Ok(None),
            (Rotation::Due(every), Some(newest)) if newest.created_at + delta(every) > now => {
                return Ok(None);
            }
            // The newest key has not signed yet: it is the next key already, and another one
            // would only be one more in the JWKS.
            (Rotation::Due(_) | Rotation::Forced, Some(newest)) if newest.activated_at > now => {
                return Ok(None);
            }
            (Rotation::Due(_) | Rotation::Forced, newest) => (
                newest.map_or(1, |newest| newest.generation + 1),
                now + delta(self.lifetimes.key_publish_delay),
            ),
        };
        let pair = KeyPair::generate()?;
        let row = KeyRow {
            kid: pair.kid.clone(),
            generation,
            private_key: pair.pkcs8.clone(),
            public_key: pair.public.to_vec(),
            created_at: now,
            activated_at,
            retired_at: None,
        };
        if !store::insert_signing_key(&mut tx, &row).await? {
            // Another replica added this generation first: theirs stands.
            tx.rollback().await?;
            return Ok(None);
        }
        // The keys before it sign until it takes over, and not after.
        store::retire_signing_keys(&mut tx, &row.kid, activated_at).await?;
        tx.commit().await?;
        tracing::info!(
            kid = %row.kid,
            generation,
            %activated_at,
            "added a token signing key"
        );
        self.reload().await?;
        Ok(Some(KeyInfo {
            kid: row.kid,
            generation,
            created_at: now,
            activated_at,
        }))
    }

    /// The key to sign with at `now`: the newest whose activation has passed.
    pub fn signer(&self, now: DateTime<Utc>) -> Option<(String, EncodingKey)> {
        self.held()
            .iter()
            .filter(|k| k.activated_at <= now)
            .max_by_key(|k| (k.activated_at, k.generation))
            .map(|k| (k.kid.clone(), k.encoding.clone()))
    }

    /// How long a key stays published after it stopped signing.
    fn retention(&self) -> TimeDelta {
        delta(self.lifetimes.access_token + Duration::from_secs(LEEWAY_SECS) + MAX_RELOAD)
    }

    fn published(&self, key: &Held, now: DateTime<Utc>) -> bool {
        key.retired_at
            .is_none_or(|retired| now < retired + self.retention())
    }

    /// Every key a currently valid token may be signed with, newest first.
    pub fn jwks(&self, now: DateTime<Utc>) -> Jwks {
        Jwks {
            keys: self
                .held()
                .iter()
                .filter(|k| self.published(k, now))
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// The public key `kid`, if it is published: exactly what a verifier using the JWKS trusts.
    pub fn decoding_key(&self, kid: &str, now: DateTime<Utc>) -> Option<DecodingKey> {
        self.held()
            .iter()
            .find(|k| k.kid == kid && self.published(k, now))
            .map(|k| k.decoding.clone())
    }

    /// Deletes the keys no longer published at `now`, a day after they left the JWKS: a
    /// replica configured with a longer token lifetime (a day at most) during a rollout still
    /// finds the keys its own tokens need.
    pub async fn delete_retired(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let before = now - self.retention() - TimeDelta::days(1);
        let deleted = store::delete_signing_keys_retired_before(&self.db, before).await?;
        if deleted > 0 {
            tracing::info!(deleted, "deleted retired token signing keys");
            self.reload().await?;
        }
        Ok(deleted)
    }

    /// The background task: every `reload`, rotate if the newest key is older than
    /// `rotation`, reload the keys other replicas may have added, drop expired ones.
    pub async fn maintain(self, rotation: Duration, reload: Duration, token: CancellationToken) {
        loop {
            nubo_platform::tokio::select! {
                _ = token.cancelled() => return,
                _ = nubo_platform::tokio::time::sleep(reload) => {}
            }
            // A failed round is retried at the next one; until then the keys loaded still serve.
            if let Err(e) = self.reload().await {
                tracing::warn!(error = format!("{e:#}"), "cannot reload token signing keys");
                continue;
            }
            let now = nubo_platform::clock::now();
            if let Err(e) = self.rotate_if_due(rotation, now).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot rotate the token signing key"
                );
            }
            if let Err(e) = self.delete_retired(now).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot delete retired signing keys"
                );
            }
        }
    }
}

/// A std duration as a chrono one; ours are all far below chrono's limit.
fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let public: [u8; 32] = x.try_into().unwrap();
        assert_eq!(
            thumbprint(&public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn a_generated_key_signs_what_its_jwk_verifies() {
        let pair = KeyPair::generate().unwrap();
        let claims = crate::tokens::Claims::new(
            nubo_platform::uuid::Uuid::new_v4(),
            vec![crate::domain::Role::Customer],
            jsonwebtoken::get_current_timestamp() as i64,
            60,
        );
        let token = crate::tokens::sign(&claims, &pair.kid, &pair.encoding_key()).unwrap();
        let jwks = Jwks {
            keys: vec![pair.jwk()],
        };
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(serde_json::to_value(jwks).unwrap()).unwrap();
        assert_eq!(
            crate::tokens::verify_with_jwks(&token, &jwks).unwrap(),
            claims
        );
    }
}
