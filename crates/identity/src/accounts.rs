//! Signing up and proving who one is. Neither the answer nor its timing tells whether an
//! email has an account: an unknown email is checked against a decoy hash, as slowly as a
//! known one.

use std::sync::Arc;

use nubo_platform::storage::Db;

use crate::domain::{Email, Password, Role, User};
use crate::passwords;
use crate::store::{self, WriteError};

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("an account with this email exists")]
    EmailTaken,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<WriteError> for SignupError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::EmailTaken => Self::EmailTaken,
            WriteError::Database(e) => Self::Internal(e.into()),
        }
    }
}

/// Creates an account with `role`.
pub async fn sign_up(
    db: &Db,
    email: &Email,
    password: Password,
    role: Role,
) -> Result<User, SignupError> {
    let hash = passwords::hash(password).await?;
    Ok(store::insert_user(db, email, &hash, role).await?)
}

/// The account `email` names if `password` is its password.
pub async fn authenticate(
    db: &Db,
    decoy: &Arc<str>,
    email: &Email,
    password: Password,
) -> anyhow::Result<Option<User>> {
    match store::user_by_email(db, email).await? {
        Some((user, hash)) => Ok(passwords::verify(password, hash.into())
            .await?
            .then_some(user)),
        None => {
            passwords::verify(password, decoy.clone()).await?;
            Ok(None)
        }
    }
}
