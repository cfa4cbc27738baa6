//! Password hashing with argon2id at the `argon2` crate's defaults, OWASP's recommendation
//! (19 MiB of memory, 2 passes, 1 lane), stored as a PHC string that carries its own
//! parameters, so stronger settings later still verify old hashes. Hashing is deliberately
//! slow and CPU-bound, so it runs on the blocking pool, never on an async worker.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use nubo_platform::config::Secret;
use nubo_platform::tokio::task::spawn_blocking;

use crate::domain::Password;

/// The PHC string of a new salted hash of `password`.
pub async fn hash(password: Password) -> anyhow::Result<String> {
    spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await
    .context("the hashing task did not finish")?
}

/// Whether `password` matches the PHC string `hash`. A hash that does not parse is an error,
/// not a mismatch: it means the stored data is damaged.
pub async fn verify(password: Password, hash: Arc<str>) -> anyhow::Result<bool> {
    spawn_blocking(move || {
        match Argon2::default().verify_password(password.expose().as_bytes(), &*hash) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(anyhow::anyhow!("argon2 verification failed: {e}")),
        }
    })
    .await
    .context("the verification task did not finish")?
}

/// A hash of a random password nobody knows. A login for an unknown email is verified against
/// it, so it takes as long as one for a known email and timing does not tell which emails
/// have accounts.
pub async fn decoy() -> anyhow::Result<Arc<str>> {
    let random = Secret::new(nubo_platform::uuid::Uuid::new_v4().to_string());
    let password = Password::presented(random).map_err(anyhow::Error::msg)?;
    Ok(hash(password).await?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(raw: &str) -> Password {
        Password::parse(Secret::new(raw)).unwrap()
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_at_owasp_parameters_and_verifies_only_its_password() {
        let hash: Arc<str> = hash(password("correct horse battery"))
            .await
            .unwrap()
            .into();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify(password("correct horse battery"), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify(password("correct horse battery!"), hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_damaged_hash_is_an_error_not_a_mismatch() {
        assert!(
            verify(password("correct horse battery"), "nonsense".into())
                .await
                .is_err()
        );
    }
}
