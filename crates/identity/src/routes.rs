//! Identity's HTTP API: thin handlers that extract, authorize, call the domain and map errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use nubo_platform::axum::Router;
use nubo_platform::axum::extract::{ConnectInfo, FromRequestParts, State};
use nubo_platform::axum::http::request::Parts;
use nubo_platform::axum::http::{HeaderValue, StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::{get, post};
use nubo_platform::config::Secret;
use nubo_platform::error::Json;
use nubo_platform::{ApiError, Context, Problem};
use serde::Deserialize;

use crate::accounts::{self, SignupError};
use crate::config::Config;
use crate::domain::{Credentials, Profile, Role};
use crate::keys::{KeyInfo, KeyRing};
use crate::login_limits::{self, Limited};
use crate::metrics::{IdentityMetrics, Login, Refresh};
use crate::passwords;
use crate::sessions::{RefreshError, RefreshToken, Sessions};
use crate::store;
use crate::tokens::{self, Claims, Jwks};

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    pub ctx: Context,
    pub keys: KeyRing,
    pub sessions: Sessions,
    pub config: Config,
    metrics: IdentityMetrics,
    /// What an unknown email's password is checked against.
    decoy: Arc<str>,
}

impl Identity {
    pub async fn new(ctx: Context, keys: KeyRing, config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            sessions: Sessions::new(ctx.db.clone(), keys.clone(), config.lifetimes()),
            decoy: passwords::decoy().await?,
            metrics: IdentityMetrics::register(&ctx.metrics),
            ctx,
            keys,
            config,
        })
    }
}

pub fn router(state: Identity) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/v1/identity/jwks.json", get(jwks))
        .route("/api/v1/identity/signup", post(sign_up))
        .route("/api/v1/identity/login", post(log_in))
        .route("/api/v1/identity/refresh", post(refresh))
        .route("/api/v1/identity/logout", post(log_out))
        .route("/api/v1/identity/me", get(me))
        .route("/api/v1/admin/identity/keys/rotate", post(rotate_keys))
        .with_state(state)
}

async fn jwks(State(state): State<Identity>) -> Response {
    let jwks: Jwks = state.keys.jwks(nubo_platform::clock::now());
    // Verifiers may cache it this long; the default key publish delay is as long, so a new key
    // is in every verifier's copy before the first token signed with it.
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(jwks)).into_response()
}

async fn sign_up(
    State(state): State<Identity>,
    Json(input): Json<Credentials>,
) -> Result<Response, ApiError> {
    let (email, password) = input.for_signup().map_err(ApiError::Invalid)?;
    let user = accounts::sign_up(&state.ctx.db, &email, password, Role::Customer)
        .await
        .map_err(|e| match e {
            SignupError::EmailTaken => {
                ApiError::Conflict("an account with this email already exists".into())
            }
            SignupError::Internal(e) => ApiError::Internal(e),
        })?;
    Ok((StatusCode::CREATED, Json(user.profile())).into_response())
}

async fn log_in(
    State(state): State<Identity>,
    client: ClientAddr,
    Json(input): Json<Credentials>,
) -> Result<Response, ApiError> {
    let (cache, metrics, client) = (&state.ctx.cache, &state.metrics, client.0.as_str());
    if let Err(limited) = login_limits::client_attempt(cache, client).await {
        metrics.login(Login::ClientLimited, client);
        return Err(too_many(
            limited,
            "too many login attempts from this address",
        ));
    }
    let (email, password) = input.for_login().map_err(ApiError::Invalid)?;
    if let Err(limited) = login_limits::account_attempt(cache, &email).await {
        metrics.login(Login::AccountLimited, client);
        return Err(too_many(limited, "too many failed logins for this account"));
    }
    let Some(user) = accounts::authenticate(&state.ctx.db, &state.decoy, &email, password).await?
    else {
        metrics.login(Login::WrongCredentials, client);
        // One message for an unknown email and a wrong password: no account enumeration.
        return Err(unauthorized("wrong email or password"));
    };
    login_limits::account_succeeded(cache, &email).await;
    let pair = state.sessions.start(&user).await?;
    metrics.login(Login::Succeeded, client);
    Ok(no_store(Json(pair)))
}

/// A refresh token in a request body, wrapped as soon as it is read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshInput {
    #[serde(deserialize_with = "crate::domain::secret")]
    refresh_token: Secret,
}

impl RefreshInput {
    fn parse(self) -> Result<RefreshToken, ApiError> {
        RefreshToken::parse(self.refresh_token).map_err(|m| ApiError::invalid("refresh_token", m))
    }
}

async fn refresh(
    State(state): State<Identity>,
    Json(input): Json<RefreshInput>,
) -> Result<Response, ApiError> {
    let presented = input.parse()?;
    let refused = match state.sessions.refresh(&presented).await {
        Ok(pair) => {
            state.metrics.refresh(Refresh::Rotated);
            return Ok(no_store(Json(pair)));
        }
        Err(RefreshError::Internal(e)) => return Err(ApiError::Internal(e)),
        Err(RefreshError::Invalid) => Refresh::Refused,
        Err(RefreshError::Reused { family, user }) => Refresh::Reused { family, user },
    };
    state.metrics.refresh(refused);
    // The same answer whether the token was never valid or was replayed.
    Err(unauthorized("the refresh token is not valid; log in again"))
}

async fn log_out(
    State(state): State<Identity>,
    Json(input): Json<RefreshInput>,
) -> Result<StatusCode, ApiError> {
    state.sessions.end(&input.parse()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(
    State(state): State<Identity>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Profile>, Response> {
    let user = store::user_by_id(&state.ctx.db, claims.sub)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        // A valid token of an account that no longer exists proves nothing.
        .ok_or_else(|| bearer_challenge("the account of this token no longer exists"))?;
    Ok(Json(user.profile()))
}

async fn rotate_keys(
    State(state): State<Identity>,
    Authenticated(claims): Authenticated,
) -> Result<Json<KeyInfo>, ApiError> {
    if !claims.has_role(Role::Admin) {
        return Err(ApiError::Forbidden(
            "rotating signing keys needs the admin role".into(),
        ));
    }
    let key = state.keys.rotate().await?;
    tracing::info!(user = %claims.sub, kid = %key.kid, "an admin rotated the signing key");
    Ok(Json(key))
}

/// The claims of a valid access token presented as `Authorization: Bearer`.
pub struct Authenticated(pub Claims);

impl FromRequestParts<Identity> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Identity) -> Result<Self, Response> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            // The scheme is case-insensitive (RFC 9110 11.1).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| bearer_challenge("a bearer access token is required"))?;
        let now = nubo_platform::clock::now();
        tokens::verify(token.trim(), |kid| state.keys.decoding_key(kid, now))
            .map(Self)
            .map_err(|e| {
                tracing::debug!(error = %e, "access token refused");
                bearer_challenge("the access token is not valid")
            })
    }
}

/// Who is logging in: the first address of `x-forwarded-for` (the gateway sets it), else the
/// peer. Only the gateway can reach identity in a deployment (NetworkPolicy), so the header is
/// trusted.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(
            forwarded
                .or(peer)
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        ))
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::Unauthorized(detail.to_owned())
}

/// A 401 that says how to authenticate (RFC 6750).
fn bearer_challenge(detail: &str) -> Response {
    let mut response = unauthorized(detail).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="nubo", error="invalid_token""#),
    );
    response
}

fn too_many(limited: Limited, detail: &str) -> ApiError {
    Problem::new(StatusCode::TOO_MANY_REQUESTS, detail)
        .with_kind("rate-limited")
        .retry_after(limited.retry_after_secs)
        .into()
}

/// Tokens must not be cached by anything between here and the client (RFC 6749 5.1).
fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}
