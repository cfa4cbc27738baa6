//! Authentication and authorization of callers.
//!
//! identity signs short-lived access tokens (JWT, EdDSA) and publishes its public keys as a JWKS.
//! Every other service verifies tokens locally with a [`Verifier`] that caches that JWKS: no call
//! to identity per request. The cache refreshes every few minutes and at once (throttled) when a
//! token names a key it does not know yet, which is how a key rotation reaches every service
//! without downtime. Handlers then ask for a [`Caller`] (any signed-in user) or an [`Admin`]; the
//! gateway checks tokens too, but a service never relies on that alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Context;
use crate::client::{Call, ServiceClient};
use crate::error::Problem;

pub const ISSUER: &str = "nubo-identity";
pub const AUDIENCE: &str = "nubo";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_CUSTOMER: &str = "customer";

/// How old the cached keys may get before they are fetched again.
const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// How often an unknown key id may trigger a fetch: a flood of forged tokens must not become a
/// flood of calls to identity.
const UNKNOWN_KID_THROTTLE: Duration = Duration::from_secs(5);

/// What a verified access token says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: Uuid,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    #[serde(default)]
    pub jti: Option<Uuid>,
    /// The account's email address, for services that write to the customer (orders puts it on
    /// the order, so notifications knows where to send).
    #[serde(default)]
    pub email: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("sign in first: this route needs a bearer token")]
    Missing,
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    #[error("the keys that sign tokens cannot be fetched right now")]
    KeysUnavailable,
    #[error("this route is for admins")]
    NotAdmin,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, challenge) = match &self {
            Self::Missing => (StatusCode::UNAUTHORIZED, "Bearer realm=\"nubo\""),
            Self::Invalid(_) => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"nubo\", error=\"invalid_token\"",
            ),
            Self::KeysUnavailable => (StatusCode::SERVICE_UNAVAILABLE, ""),
            Self::NotAdmin => (
                StatusCode::FORBIDDEN,
                "Bearer realm=\"nubo\", error=\"insufficient_scope\"",
            ),
        };
        let mut problem = Problem::new(status, self.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            problem = problem.retry_after(1);
        }
        let mut response = problem.into_response();
        if !challenge.is_empty() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// Where the verifier gets its keys.
#[derive(Clone)]
pub enum KeySource {
    /// No identity service configured: every token is refused.
    None,
    /// identity's JWKS over HTTP.
    Remote(ServiceClient),
    /// identity itself: its own current key set.
    Local(Arc<dyn Fn() -> JwkSet + Send + Sync>),
}

struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Verifies access tokens against identity's published keys. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    source: Arc<std::sync::RwLock<KeySource>>,
    cache: Arc<RwLock<Cache>>,
}

impl Verifier {
    pub fn new(source: KeySource) -> Self {
        // jsonwebtoken needs its crypto back end chosen once per process; a second call is a no-op.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        Self {
            source: Arc::new(std::sync::RwLock::new(source)),
            cache: Arc::new(RwLock::new(Cache {
                keys: HashMap::new(),
                fetched: None,
                last_attempt: None,
            })),
        }
    }

    /// identity points its own verifier at its key set.
    pub fn use_source(&self, source: KeySource) {
        *self.source.write().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// The claims of a valid access token.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("tokens are signed with EdDSA".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched.is_some_and(|at| at.elapsed() < REFRESH_EVERY);
            if let Some(key) = cache.keys.get(kid)
                && fresh
            {
                return Ok(key.clone());
            }
        }
        let mut cache = self.cache.write().await;
        let may_fetch = cache
            .last_attempt
            .is_none_or(|at| at.elapsed() >= UNKNOWN_KID_THROTTLE)
            || cache.fetched.is_none_or(|at| at.elapsed() >= REFRESH_EVERY);
        if may_fetch {
            cache.last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch the JWKS; using the keys already known");
                    if cache.keys.is_empty() {
                        return Err(AuthError::KeysUnavailable);
                    }
                }
            }
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::Invalid("the token was not signed by a key of ours".into()))
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let source = self
            .source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let set = match source {
            KeySource::None => anyhow::bail!("no identity service is configured"),
            KeySource::Remote(client) => client.call::<JwkSet>(Call::get(JWKS_PATH)).await?,
            KeySource::Local(current) => current(),
        };
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                tracing::warn!("skipping a JWK without a key id or with an unusable key");
                continue;
            };
            keys.insert(kid, key);
        }
        Ok(keys)
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A signed-in caller: put it among a handler's arguments.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub roles: Vec<String>,
    /// From the token; absent only in tokens issued before identity put it there.
    pub email: Option<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }

    /// Whether the caller may act for `owner`: themselves, or an admin.
    pub fn may_act_for(&self, owner: Uuid) -> bool {
        self.user_id == owner || self.is_admin()
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Context: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(&parts.headers).ok_or(AuthError::Missing)?;
        let claims = Context::from_ref(state).verifier.verify(token).await?;
        let caller = Caller {
            user_id: claims.sub,
            roles: claims.roles,
            email: claims.email,
        };
        tracing::Span::current().record("user", tracing::field::display(caller.user_id));
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A signed-in admin: put it first among a handler's arguments.
#[derive(Clone, Debug)]
pub struct Admin(pub Caller);

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    Context: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Self(caller))
        } else {
            Err(AuthError::NotAdmin)
        }
    }
}
