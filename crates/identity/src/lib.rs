//! Identity: accounts (email, argon2id password hash, role), sign-up and login, short-lived
//! EdDSA access tokens and single-use refresh tokens, and the signing keys behind them. Keys
//! live in the database so every replica signs with the same key and serves the same JWKS, and
//! they rotate on a schedule without a token in flight ever failing to verify.
#![forbid(unsafe_code)]

mod accounts;
pub mod config;
pub mod domain;
pub mod keys;
mod login_limits;
mod metrics;
mod passwords;
pub mod routes;
mod seed;
mod sessions;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

use nubo_platform::storage::Migrations;
use nubo_platform::{Context, Parts, ServiceDescription, Task, sqlx};

pub use routes::openapi;

use crate::config::{
    ACCESS_TOKEN_TTL_SECS, Config, KEY_PUBLISH_DELAY_SECS, KEY_RELOAD_SECS, KEY_ROTATION_HOURS,
    LOGINS_PER_ADDRESS_MINUTE, PASSWORD_HASH_CONCURRENCY, PASSWORD_HASH_WAIT_MS,
    REFRESH_TOKEN_TTL_SECS, SIGNUPS_PER_ADDRESS_HOUR,
};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "identity",
    migrations: Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    },
    publishes: &[],
    consumes: &[],
    env: &[
        (
            ACCESS_TOKEN_TTL_SECS,
            "lifetime of an access token, in seconds",
            "900",
        ),
        (
            REFRESH_TOKEN_TTL_SECS,
            "lifetime of a refresh token, in seconds",
            "2592000",
        ),
        (
            KEY_PUBLISH_DELAY_SECS,
            "how long a new signing key is published in the JWKS before tokens are signed with it, in seconds (longer than verifiers cache the JWKS)",
            "300",
        ),
        (
            KEY_ROTATION_HOURS,
            "how often the signing key rotates, in hours",
            "24",
        ),
        (
            KEY_RELOAD_SECS,
            "how often each replica reloads the signing keys from the database, in seconds",
            "30",
        ),
        (
            SIGNUPS_PER_ADDRESS_HOUR,
            "sign-ups one client address may make in an hour; more are answered 429 with Retry-After",
            "20",
        ),
        (
            LOGINS_PER_ADDRESS_MINUTE,
            "login attempts one client address may make in a minute, over all accounts; more are answered 429 with Retry-After",
            "20",
        ),
        (
            PASSWORD_HASH_CONCURRENCY,
            "how many password hashes (argon2id, about 19 MiB each) run at once; logins and sign-ups beyond it wait their turn",
            "the number of CPUs",
        ),
        (
            PASSWORD_HASH_WAIT_MS,
            "how long a login or sign-up waits for its turn to hash before it is answered 503 with Retry-After, in milliseconds",
            "1000",
        ),
    ],
    check_env: Some(|env, _mode| config::Config::from_env(env).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    seed: Some(|ctx| Box::pin(seed::demo_accounts(ctx))),
    cache_holds_data: false,
    knobs: &[],
};

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let config = Config::from_context(&ctx)?;
    let keys = keys::KeyRing::new(ctx.db.clone(), config.lifetimes());
    // A replica that cannot sign must not report ready: make sure a key exists before serving.
    keys.ensure_signing_key().await?;
    // The platform's own admin routes (the ops console's) check tokens with the context's
    // verifier: here that is this replica's key set, not a JWKS fetched from itself.
    let (ring, clock) = (keys.clone(), ctx.clock.clone());
    ctx.verifier
        .use_source(nubo_platform::auth::KeySource::Local(std::sync::Arc::new(
            move || {
                let jwks = nubo_platform::serde_json::to_value(ring.jwks(clock.now()));
                jwks.and_then(nubo_platform::serde_json::from_value)
                    .unwrap_or(jsonwebtoken::jwk::JwkSet { keys: Vec::new() })
            },
        )));
    let state = routes::Identity::new(ctx, keys.clone(), config).await?;
    let sessions = state.sessions.clone();
    Ok(Parts {
        router: routes::router(state),
        consumers: vec![],
        tasks: vec![
            Task::new("identity-signing-keys", move |token| {
                keys.maintain(config.key_rotation, config.key_reload, token)
            }),
            Task::new("identity-refresh-token-purge", move |token| {
                sessions.purge_expired(token)
            }),
        ],
    })
}

/// Creates an account directly in identity's database: how an operator makes the first admin of
/// a shop that seeds no demo accounts (`nubo create-admin`), and how tests make theirs.
pub async fn create_account(
    db: &nubo_platform::Db,
    email: &str,
    password: &str,
    role: domain::Role,
) -> anyhow::Result<nubo_platform::uuid::Uuid> {
    let email = domain::Email::parse(email).map_err(anyhow::Error::msg)?;
    let password = domain::Password::parse(nubo_platform::config::Secret::new(password))
        .map_err(anyhow::Error::msg)?;
    match accounts::create(db, &email, password, role).await {
        Ok(user) => Ok(user.id),
        Err(accounts::SignupError::EmailTaken) => {
            anyhow::bail!("an account with this email exists already")
        }
        Err(accounts::SignupError::Internal(e)) => Err(e),
    }
}
