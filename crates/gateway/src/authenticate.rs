//! Checks the bearer token of every request that carries one, locally against identity's cached
//! keys, before anything is proxied. A request without a token passes: public routes need none,
//! and the service behind decides. A request with a bad token stops here with 401. The caller's
//! identity travels on as `x-nubo-user-id` and `x-nubo-roles` for logs and services' convenience;
//! services still verify the token themselves.

use nubo_platform::Context;
use nubo_platform::auth::bearer;
use nubo_platform::axum::extract::{Request, State};
use nubo_platform::axum::http::HeaderValue;
use nubo_platform::axum::middleware::Next;
use nubo_platform::axum::response::{IntoResponse, Response};

pub const USER_ID: &str = "x-nubo-user-id";
pub const ROLES: &str = "x-nubo-roles";

pub async fn caller(State(ctx): State<Context>, mut request: Request, next: Next) -> Response {
    // These headers are the gateway's to set; a client's own are dropped.
    request.headers_mut().remove(USER_ID);
    request.headers_mut().remove(ROLES);
    if let Some(token) = bearer(request.headers()) {
        match ctx.verifier.verify(token).await {
            Ok(claims) => {
                nubo_platform::tracing::Span::current()
                    .record("user", nubo_platform::tracing::field::display(claims.sub));
                let headers = request.headers_mut();
                if let Ok(id) = HeaderValue::from_str(&claims.sub.to_string()) {
                    headers.insert(USER_ID, id);
                }
                if let Ok(roles) = HeaderValue::from_str(&claims.roles.join(",")) {
                    headers.insert(ROLES, roles);
                }
            }
            Err(refused) => return refused.into_response(),
        }
    }
    next.run(request).await
}
