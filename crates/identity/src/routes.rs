//! Identity's HTTP API: thin handlers that extract, authorize, call the domain and map errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use nubo_platform::axum::extract::{ConnectInfo, FromRequestParts, State};
use nubo_platform::axum::http::request::Parts;
use nubo_platform::axum::http::{HeaderValue, StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::get;
use nubo_platform::axum::{self, Router};
use nubo_platform::config::Secret;
use nubo_platform::error::{Json, PROBLEM_JSON};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::tls::Peer;
use nubo_platform::{ApiError, Context, Problem};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{self, SignupError};
use crate::config::Config;
use crate::domain::{Credentials, NewAccount, Profile, Role};
use crate::keys::{KeyInfo, KeyRing};
use crate::login_limits::{self, Limited};
use crate::metrics::{IdentityMetrics, Login, Refresh, Signup};
use crate::passwords::{self, Busy, HashPool};
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
    /// Every password hash of this replica's requests takes a permit from here.
    hashes: HashPool,
    /// What an unknown email's password is checked against.
    decoy: Arc<str>,
}

impl Identity {
    pub async fn new(ctx: Context, keys: KeyRing, config: Config) -> anyhow::Result<Self> {
        let hashes = HashPool::new(config.password_hash_concurrency, config.password_hash_wait);
        Ok(Self {
            sessions: Sessions::new(ctx.db.clone(), keys.clone(), config.lifetimes()),
            decoy: passwords::decoy(hashes.permit().await?).await?,
            metrics: IdentityMetrics::register(&ctx.metrics, &hashes),
            hashes,
            ctx,
            keys,
            config,
        })
    }
}

pub fn router(state: Identity) -> Router {
    let (public, _) = public_routes().split_for_parts();
    // Where verifiers inside the cluster fetch the keys; the gateway does not route it.
    public
        .route(nubo_platform::auth::JWKS_PATH, get(jwks))
        .with_state(state)
}

/// Identity's part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "identity", description = "Accounts, sign-up and login, tokens and their keys")),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The routes under `/api/v1`, each registered with its documented operation so neither can go
/// without the other.
fn public_routes() -> OpenApiRouter<Identity> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(public_jwks))
        .routes(routes!(sign_up))
        .routes(routes!(log_in))
        .routes(routes!(refresh))
        .routes(routes!(log_out))
        .routes(routes!(me))
        .routes(routes!(rotate_keys))
}

/// The public keys access tokens are signed with (JWKS, RFC 7517).
#[utoipa::path(
    get,
    path = "/api/v1/identity/jwks.json",
    tag = "identity",
    responses(
        (status = 200, description = "Every key a valid token may be signed with; cacheable for 5 minutes",
            body = JwksSchema),
    )
)]
async fn public_jwks(state: State<Identity>) -> Response {
    jwks(state).await
}

async fn jwks(State(state): State<Identity>) -> Response {
    let jwks: Jwks = state.keys.jwks(nubo_platform::clock::now());
    // Verifiers may cache it this long; the default key publish delay is as long, so a new key
    // is in every verifier's copy before the first token signed with it.
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(jwks)).into_response()
}

/// Create a customer account.
#[utoipa::path(
    post,
    path = "/api/v1/identity/signup",
    tag = "identity",
    request_body = NewAccount,
    responses(
        (status = 201, description = "The new account", body = Profile),
        problems::BadRequest,
        problems::Conflict,
        problems::Invalid,
        problems::TooManyRequests,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn sign_up(
    State(state): State<Identity>,
    client: ClientAddr,
    Json(input): Json<Credentials>,
) -> Result<Response, ApiError> {
    let (metrics, client) = (&state.metrics, client.0.as_str());
    let (email, password) = input.for_signup().map_err(ApiError::Invalid)?;
    let per_hour = state.config.signups_per_address_hour;
    if let Err(limited) = login_limits::signup_attempt(&state.ctx.cache, client, per_hour).await {
        metrics.signup(Signup::Limited, client);
        return Err(too_many(limited, "too many sign-ups from this address"));
    }
    let permit = state.hashes.permit().await.map_err(|e| {
        metrics.signup(Signup::Busy, client);
        busy(e)
    })?;
    let signed_up =
        accounts::sign_up(&state.ctx.db, permit, &email, password, Role::Customer).await;
    let user = match signed_up {
        Ok(user) => user,
        Err(SignupError::EmailTaken) => {
            metrics.signup(Signup::EmailTaken, client);
            return Err(ApiError::Conflict(
                "an account with this email already exists".into(),
            ));
        }
        Err(SignupError::Internal(e)) => return Err(ApiError::Internal(e)),
    };
    metrics.signup(Signup::Created, client);
    Ok((StatusCode::CREATED, Json(user.profile())).into_response())
}

/// Log in with email and password: an access token and a refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/identity/login",
    tag = "identity",
    request_body = Credentials,
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`)", body = TokenPairSchema),
        problems::BadRequest,
        (status = 401, description = "Wrong email or password (one answer for both)",
            body = Problem, content_type = PROBLEM_JSON),
        problems::Invalid,
        problems::TooManyRequests,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn log_in(
    State(state): State<Identity>,
    client: ClientAddr,
    Json(input): Json<Credentials>,
) -> Result<Response, ApiError> {
    let (cache, metrics, client) = (&state.ctx.cache, &state.metrics, client.0.as_str());
    let per_minute = state.config.logins_per_address_minute;
    if let Err(limited) = login_limits::client_attempt(cache, client, per_minute).await {
        metrics.login(Login::ClientLimited, client);
        return Err(too_many(
            limited,
            "too many login attempts from this address",
        ));
    }
    let (email, password) = input.for_login().map_err(ApiError::Invalid)?;
    // A turn to hash first: an attempt that could not be checked must not count against the
    // account, or a busy replica would lock its owner out.
    let permit = state.hashes.permit().await.map_err(|e| {
        metrics.login(Login::Busy, client);
        busy(e)
    })?;
    if let Err(limited) = login_limits::account_attempt(cache, &email, client).await {
        metrics.login(Login::AccountLimited, client);
        return Err(too_many(
            limited,
            "too many failed logins for this account from this address",
        ));
    }
    let authenticated =
        accounts::authenticate(&state.ctx.db, permit, &state.decoy, &email, password).await?;
    let Some(user) = authenticated else {
        if login_limits::account_failed(cache, &email).await {
            metrics.account_under_attack();
        }
        metrics.login(Login::WrongCredentials, client);
        // One message for an unknown email and a wrong password: no account enumeration.
        return Err(unauthorized("wrong email or password"));
    };
    login_limits::account_succeeded(cache, &email, client).await;
    let pair = state.sessions.start(&user).await?;
    metrics.login(Login::Succeeded, client);
    Ok(no_store(Json(pair)))
}

/// A refresh token in a request body, wrapped as soon as it is read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefreshTokenInput)]
struct RefreshInput {
    /// As login or refresh returned it: 43 base64url characters (32 bytes).
    #[serde(deserialize_with = "crate::domain::secret")]
    #[schema(value_type = String, format = Password, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
    refresh_token: Secret,
}

impl RefreshInput {
    fn parse(self) -> Result<RefreshToken, ApiError> {
        RefreshToken::parse(self.refresh_token).map_err(|m| ApiError::invalid("refresh_token", m))
    }
}

/// Trade a refresh token for new tokens; the old refresh token is spent.
#[utoipa::path(
    post,
    path = "/api/v1/identity/refresh",
    tag = "identity",
    request_body = RefreshInput,
    responses(
        (status = 200, description = "New tokens (`Cache-Control: no-store`)", body = TokenPairSchema),
        problems::BadRequest,
        (status = 401, description = "The refresh token is not valid (spent, expired or unknown); log in again",
            body = Problem, content_type = PROBLEM_JSON),
        problems::Invalid,
        problems::Internal,
    )
)]
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

/// Log out: the refresh token and every one rotated from it stop working.
#[utoipa::path(
    post,
    path = "/api/v1/identity/logout",
    tag = "identity",
    request_body = RefreshInput,
    responses(
        (status = 204, description = "Logged out"),
        problems::BadRequest,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn log_out(
    State(state): State<Identity>,
    Json(input): Json<RefreshInput>,
) -> Result<StatusCode, ApiError> {
    state.sessions.end(&input.parse()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in account.
#[utoipa::path(
    get,
    path = "/api/v1/identity/me",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account of the token", body = Profile),
        problems::Unauthorized,
        problems::Internal,
    )
)]
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

/// Rotate the signing key now (admins): a new key is published, and signs once every verifier
/// can have seen it. While it waits, rotating again answers with it rather than adding another.
#[utoipa::path(
    post,
    path = "/api/v1/admin/identity/keys/rotate",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new key", body = KeyInfo),
        problems::Unauthorized,
        problems::Forbidden,
        problems::Internal,
    )
)]
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

/// Who is logging in or signing up: the first address of `x-forwarded-for` when the request came
/// from the gateway (its connection proved it with the gateway's certificate), else the peer's
/// address. Anyone else may write the header, so from anyone else it means nothing.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_edge = parts
            .extensions
            .get::<Peer>()
            .and_then(Peer::service)
            .is_some_and(|caller| caller == nubo_platform::config::EDGE);
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .filter(|_| from_edge)
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

/// Every hasher stayed busy: a transient fault, worth a retry in a second.
fn busy(_: Busy) -> ApiError {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many passwords are being checked right now; retry shortly",
    )
    .with_kind("overloaded")
    .retry_after(1)
    .into()
}

/// Tokens must not be cached by anything between here and the client (RFC 6749 5.1).
fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// The schema of [`crate::sessions::TokenPair`], which lives with the sessions; the test below
/// keeps the two in step.
#[derive(ToSchema)]
#[schema(as = TokenPair)]
#[allow(dead_code)]
struct TokenPairSchema {
    /// An EdDSA JWT for `Authorization: Bearer`.
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds the access token lives.
    expires_in: u64,
    /// Single use: a refresh answers with a new one.
    refresh_token: String,
    /// Seconds the refresh token lives.
    refresh_expires_in: u64,
}

/// The schema of [`Jwks`], which lives with the tokens; the test below keeps the two in step.
#[derive(ToSchema)]
#[schema(as = Jwks)]
#[allow(dead_code)]
struct JwksSchema {
    keys: Vec<PublicJwkSchema>,
}

/// One Ed25519 public key as a JWK (RFC 8037).
#[derive(ToSchema)]
#[schema(as = PublicJwk)]
#[allow(dead_code)]
struct PublicJwkSchema {
    /// `OKP`.
    kty: String,
    /// `Ed25519`.
    crv: String,
    /// The raw 32-byte public key, base64url without padding.
    x: String,
    kid: String,
    /// `EdDSA`.
    alg: String,
    /// `sig`.
    #[schema(rename = "use")]
    use_: String,
}

#[cfg(test)]
mod tests {
    use nubo_platform::serde_json::{self, Value};
    use utoipa::PartialSchema;

    use crate::sessions::TokenPair;
    use crate::tokens::{Jwks, PublicJwk};

    /// The property names a documented schema lists.
    fn documented<T: PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn served(value: impl serde::Serialize) -> Vec<String> {
        let Value::Object(fields) = serde_json::to_value(value).unwrap() else {
            panic!("not an object");
        };
        let mut names: Vec<String> = fields.keys().cloned().collect();
        names.sort();
        names
    }

    #[test]
    fn the_documented_token_and_key_schemas_match_what_is_served() {
        let pair = TokenPair {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            expires_in: 1,
            refresh_token: "r".into(),
            refresh_expires_in: 2,
        };
        assert_eq!(documented::<super::TokenPairSchema>(), served(&pair));
        let jwk = PublicJwk::ed25519("kid", "x".into());
        assert_eq!(documented::<super::PublicJwkSchema>(), served(&jwk));
        assert_eq!(
            documented::<super::JwksSchema>(),
            served(Jwks { keys: vec![jwk] })
        );
    }
}
