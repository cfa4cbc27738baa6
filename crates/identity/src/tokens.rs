//! Access tokens: what they claim, how they are signed, and the one place they are verified.
//!
//! An access token is a JWT signed with Ed25519 (`alg` EdDSA), naming its key in `kid`. Anyone
//! holding the JWKS identity serves can verify one: [`verify_with_jwks`] does exactly what
//! identity itself does for `/me` and its admin route, so other crates' tests can use it too.

use std::sync::Once;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nubo_platform::uuid::Uuid;
use serde::{Deserialize, Serialize};

use crate::domain::Role;

pub const ISSUER: &str = "nubo-identity";
pub const AUDIENCE: &str = "nubo";
/// Clock difference tolerated between the signer and a verifier.
pub const LEEWAY_SECS: u64 = 30;

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The account's id.
    pub sub: Uuid,
    pub roles: Vec<Role>,
    pub iat: i64,
    pub exp: i64,
    /// This token's own id.
    pub jti: Uuid,
    /// The account's email address, so a service can write to the customer without asking
    /// identity (orders records it on the order for notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Claims {
    /// Claims for `user` with `roles`, issued at `iat` (Unix seconds) and living `ttl_secs`.
    pub fn new(user: Uuid, roles: Vec<Role>, iat: i64, ttl_secs: i64) -> Self {
        Self {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            roles,
            iat,
            exp: iat + ttl_secs,
            jti: Uuid::new_v4(),
            email: None,
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a token was refused. Callers answer 401 whatever it is; the reason is for the log.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token names no key, or a key that is not published")]
    UnknownKey,
    #[error("the token is malformed, forged or expired: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Selects the RustCrypto back end explicitly: if another crate in the build ever enables
/// jsonwebtoken's `aws_lc_rs` too, automatic selection would panic at the first signature.
fn use_rust_crypto() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is already installed, which is just as good.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

/// Signs `claims` with the key `kid`.
pub fn sign(
    claims: &Claims,
    kid: &str,
    key: &EncodingKey,
) -> Result<String, jsonwebtoken::errors::Error> {
    use_rust_crypto();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key)
}

/// What a valid access token must be: EdDSA only (no `none`, no HMAC with a public key as
/// secret), our issuer and audience, not expired, with a subject.
pub fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    validation
}

/// Verifies `token` against the key its header names, looked up with `key_for`.
pub fn verify(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<DecodingKey>,
) -> Result<Claims, TokenError> {
    use_rust_crypto();
    let header = jsonwebtoken::decode_header(token)?;
    let key = header
        .kid
        .as_deref()
        .and_then(key_for)
        .ok_or(TokenError::UnknownKey)?;
    Ok(jsonwebtoken::decode::<Claims>(token, &key, &validation())?.claims)
}

/// Verifies `token` against a JWKS as identity serves it.
pub fn verify_with_jwks(token: &str, jwks: &JwkSet) -> Result<Claims, TokenError> {
    verify(token, |kid| {
        jwks.find(kid)
            .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
    })
}

/// The JWKS document: every public key a currently valid token may be signed with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

/// One Ed25519 public key as a JWK (RFC 8037).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    /// The raw 32-byte public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

impl PublicJwk {
    pub fn ed25519(kid: &str, x: String) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            kid: kid.to_owned(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}
