//! Signing up and proving who one is. Neither the answer nor its timing tells whether an
//! email has an account: an unknown email is checked against a decoy hash, as slowly as a
//! known one.

use std::sync::Arc;

use nubo_platform::storage::Db;

use crate::domain::{Email, Password, Role, User};
use crate::passwords::{self, HashPermit};
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

/// Creates an account with `role`, hashing its password with `permit`.
pub async fn sign_up(
    db: &Db,
    permit: HashPermit,
    email: &Email,
    password: Password,
    role: Role,
) -> Result<User, SignupError> {
    let hash = permit.hash(password).await?;
    Ok(store::insert_user(db, email, &hash, role).await?)
}

/// The account `email` names if `password` is its password, checked with `permit`.
pub async fn authenticate(
    db: &Db,
    permit: HashPermit,
    decoy: &Arc<str>,
    email: &Email,
    password: Password,
) -> anyhow::Result<Option<User>> {
    match store::user_by_email(db, email).await? {
        Some((user, hash)) => Ok(permit.verify(password, hash.into()).await?.then_some(user)),
        None => {
            permit.verify(password, decoy.clone()).await?;
            Ok(None)
        }
    }
}

/// Creates an account outside any request (an operator's admin, the demo accounts, tests'
/// accounts): one hash at a time, however long the wait.
pub async fn create(
    db: &Db,
    email: &Email,
    password: Password,
    role: Role,
) -> Result<User, SignupError> {
    let permit = passwords::HashPool::one_at_a_time()
        .permit()
        .await
        .map_err(anyhow::Error::from)?;
    sign_up(db, permit, email, password, role).await
}
