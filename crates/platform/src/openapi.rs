//! What every service's part of the public OpenAPI document shares: the bearer-token security
//! scheme, the [`Problem`] schema, and one way for an operation to say which problems it answers
//! with, each as `application/problem+json`.
//!
//! An operation lists its problems by status next to its success response:
//! `responses((status = 200, body = Product), problems::NotFound, problems::Invalid)`.
//! A service's `#[derive(OpenApi)]` adds `modifiers(&nubo_platform::openapi::Shared)`.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::error::{FieldError, PROBLEM_JSON, Problem};

/// The name of the security scheme: an access token from identity, as `Authorization: Bearer`.
/// Operations that need one say `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// Adds the bearer scheme and the problem schemas to a document.
pub struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/v1/identity/login` (EdDSA JWT, \
                         verified against `/.well-known/jwks.json`).",
                    ))
                    .build(),
            ),
        );
        for (name, schema) in [
            (Problem::name(), Problem::schema()),
            (FieldError::name(), FieldError::schema()),
        ] {
            components.schemas.insert(name.into_owned(), schema);
        }
    }
}

/// One problem response: `status` with a [`Problem`] body as `application/problem+json`.
pub fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build()
}

/// The problem responses an operation may list, one type per status.
pub mod problems {
    use super::*;

    macro_rules! problems {
        ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)*) => {$(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([(
                        $status.to_string(),
                        RefOr::T(problem_response($description)),
                    )])
                }
            }
        )*};
    }

    problems! {
        /// 400: a malformed body, path or query (not JSON, a parameter that does not parse).
        BadRequest = 400, "The request is malformed: the body is not JSON of the expected shape, or a path or query parameter does not parse.";
        /// 401: no valid bearer token (the answer carries `WWW-Authenticate`).
        Unauthorized = 401, "No valid bearer access token was presented.";
        /// 403: a valid token whose account lacks the role.
        Forbidden = 403, "The token is valid but its account lacks the role this needs.";
        /// 404: the thing named in the path does not exist.
        NotFound = 404, "What the path names does not exist.";
        /// 409: the request conflicts with the current state.
        Conflict = 409, "The request conflicts with the current state.";
        /// 422: fields that fail validation, each listed in `errors`.
        Invalid = 422, "Fields fail validation; `errors` lists each with why.";
        /// 429: too many attempts (answers carry `Retry-After`).
        TooManyRequests = 429, "Too many requests; try again after `Retry-After` seconds.";
        /// 500: a failure on the server's side; the trace id is worth quoting.
        Internal = 500, "Something failed on the server's side; quote the `x-trace-id` header when reporting it.";
        /// 503: a dependency cannot answer right now (answers carry `Retry-After`).
        Unavailable = 503, "A service this needs cannot answer right now; try again after `Retry-After` seconds.";
    }
}

#[cfg(test)]
mod tests {
    use utoipa::IntoResponses;

    use super::problems;

    #[test]
    fn a_listed_problem_is_problem_json() {
        let responses = problems::NotFound::responses();
        let json = serde_json::to_value(&responses["404"]).unwrap();
        assert_eq!(
            json["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
}
