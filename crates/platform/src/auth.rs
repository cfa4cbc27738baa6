//! Authorization of admin routes.
//!
//! Until identity issues tokens with roles, an admin is whoever presents the operator's
//! `NUBO_ADMIN_TOKEN` as a bearer token; with no token configured, admin routes are closed.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::Context;
use crate::error::ApiError;

/// Proof that the request came from an admin; put it first among a handler's arguments.
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    Context: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = Context::from_ref(state);
        let Some(expected) = &ctx.settings.admin_token else {
            return Err(ApiError::Forbidden(
                "admin routes are disabled: NUBO_ADMIN_TOKEN is not set".into(),
            ));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("an admin bearer token is required".into()))?;
        if constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
            Ok(Self)
        } else {
            Err(ApiError::Forbidden(
                "this token is not an admin token".into(),
            ))
        }
    }
}

/// Compares without returning early, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
