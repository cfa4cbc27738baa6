//! Identity's SQL, written once for SQLite and PostgreSQL: accounts, refresh tokens and
//! signing keys. Timestamps compared in SQL are all written by sqlx from `DateTime<Utc>`,
//! which SQLite keeps as RFC 3339 text in UTC; those compare correctly as text.

use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::storage::{Db, Tx};
use nubo_platform::uuid::Uuid;
use nubo_platform::{sqlx, with_db, with_tx};

use crate::domain::{Email, Role, User};

// ----- accounts -----

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl UserRow {
    /// The account and its password hash. A row that no longer parses is damaged data.
    fn into_user(self) -> Result<(User, String), sqlx::Error> {
        let damaged = |what: String| sqlx::Error::Decode(what.into());
        let email = Email::parse(&self.email)
            .map_err(|e| damaged(format!("user {}: stored email {e}", self.id)))?;
        let role = Role::parse(&self.role)
            .ok_or_else(|| damaged(format!("user {}: unknown role {:?}", self.id, self.role)))?;
        let user = User {
            id: self.id,
            email,
            role,
            created_at: self.created_at,
        };
        Ok((user, self.password_hash))
    }
}

const USER_COLUMNS: &str = "id, email, password_hash, role, created_at";

/// Why an account could not be stored.
#[derive(Debug)]
pub enum WriteError {
    EmailTaken,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::EmailTaken,
            _ => Self::Database(e),
        }
    }
}

pub async fn insert_user(
    db: &Db,
    email: &Email,
    password_hash: &str,
    role: Role,
) -> Result<User, WriteError> {
    let user = User {
        id: Uuid::now_v7(),
        email: email.clone(),
        role,
        created_at: nubo_platform::clock::now(),
    };
    let sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)");
    with_db!(db, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user.id)
        .bind(user.email.as_str())
        .bind(password_hash)
        .bind(user.role.as_str())
        .bind(user.created_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(user)
}

/// The account with `email` and its password hash.
pub async fn user_by_email(db: &Db, email: &Email) -> Result<Option<(User, String)>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
        .bind(email.as_str())
        .fetch_optional(pool)
        .await)?;
    row.map(UserRow::into_user).transpose()
}

pub async fn user_by_id(db: &Db, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    Ok(row
        .map(UserRow::into_user)
        .transpose()?
        .map(|(user, _)| user))
}

pub async fn count_users(db: &Db) -> Result<i64, sqlx::Error> {
    with_db!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users").fetch_one(pool).await)
}

// ----- refresh tokens -----

/// A refresh token as stored (its hash is the key it was found by).
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert_refresh_token(
    tx: &mut Tx,
    token_hash: &[u8],
    family_id: Uuid,
    user_id: Uuid,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5)";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(token_hash)
        .bind(family_id)
        .bind(user_id)
        .bind(issued_at)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|_| ()))
}

pub async fn refresh_token(
    tx: &mut Tx,
    token_hash: &[u8],
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    let sql = "SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens \
               WHERE token_hash = $1";
    with_tx!(tx, conn => sqlx::query_as::<_, RefreshTokenRow>(sql)
        .bind(token_hash)
        .fetch_optional(conn)
        .await)
}

/// Marks a live token used. False if it was used or revoked meanwhile: of two concurrent
/// refreshes with one token, exactly one gets true.
pub async fn use_refresh_token(
    tx: &mut Tx,
    token_hash: &[u8],
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE refresh_tokens SET used_at = $2 \
               WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL";
    let affected = with_tx!(tx, conn => sqlx::query(sql)
        .bind(token_hash)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(affected == 1)
}

/// Revokes every live token of the family.
pub async fn revoke_family(
    tx: &mut Tx,
    family_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql =
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(family_id)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ()))
}

/// Revokes every live token of the family the token with `token_hash` belongs to, if any.
pub async fn revoke_family_of(
    db: &Db,
    token_hash: &[u8],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family_id = \
               (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)";
    with_db!(db, pool => sqlx::query(sql)
        .bind(token_hash)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Deletes tokens that expired before `before`; returns how many.
pub async fn purge_refresh_tokens(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM refresh_tokens WHERE expires_at < $1";
    with_db!(db, pool => sqlx::query(sql)
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}

// ----- signing keys -----

/// A signing key as stored. Its `Debug` leaves out the private key.
#[derive(Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub generation: i64,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub activated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

const KEY_COLUMNS: &str =
    "kid, generation, private_key, public_key, created_at, activated_at, retired_at";

/// Every stored key, newest first.
pub async fn signing_keys(db: &Db) -> Result<Vec<KeyRow>, sqlx::Error> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY generation DESC");
    with_db!(db, pool => sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)
}

/// The newest key as a rotation reads it: when it was made and when it signs from.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct NewestKey {
    pub generation: i64,
    pub created_at: DateTime<Utc>,
    pub activated_at: DateTime<Utc>,
}

/// The newest key, read inside a rotation.
pub async fn newest_signing_key(tx: &mut Tx) -> Result<Option<NewestKey>, sqlx::Error> {
    let sql = "SELECT generation, created_at, activated_at FROM signing_keys \
               ORDER BY generation DESC LIMIT 1";
    with_tx!(tx, conn => sqlx::query_as::<_, NewestKey>(sql).fetch_optional(conn).await)
}

/// Adds a key unless its generation exists already; false if another replica got there first.
pub async fn insert_signing_key(tx: &mut Tx, key: &KeyRow) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    );
    let affected = with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&key.kid)
        .bind(key.generation)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .bind(key.activated_at)
        .bind(key.retired_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(affected == 1)
}

/// Every key still signing (or waiting to) stops at `at`, except `successor`.
pub async fn retire_signing_keys(
    tx: &mut Tx,
    successor: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE signing_keys SET retired_at = $2 WHERE retired_at IS NULL AND kid <> $1";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(successor)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ()))
}

/// Deletes keys retired before `before`; returns how many.
pub async fn delete_signing_keys_retired_before(
    db: &Db,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1";
    with_db!(db, pool => sqlx::query(sql)
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}
