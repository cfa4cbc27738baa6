//! The public API's OpenAPI 3.1 document, served at `GET /api/openapi.json` without a token and
//! outside the rate limit. Each service generates its own part from its handlers
//! (`nubo_<service>::openapi`, where every public route is registered together with its
//! documented operation); the gateway merges them and adds what it answers itself on any route.

use std::sync::LazyLock;

use nubo_platform::axum::http::header;
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::openapi::{Shared, problem_response};
use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, RefOr, ServerBuilder};

pub const PATH: &str = "/api/openapi.json";

/// Every service's part of the document, in the order their tags are listed.
pub const SERVICES: &[fn() -> OpenApi] = &[
    nubo_identity::openapi,
    nubo_catalog::openapi,
    nubo_inventory::openapi,
    nubo_cart::openapi,
    nubo_payments::openapi,
    nubo_orders::openapi,
    nubo_notifications::openapi,
];

/// What the gateway itself may answer on any route, before or instead of the service behind.
const GATEWAY_PROBLEMS: &[(u16, &str)] = &[
    (
        401,
        "A bearer token was sent and is not valid (the gateway checks every token it sees).",
    ),
    (
        429,
        "More requests per second than this client may send; try again after `Retry-After` seconds.",
    ),
    (502, "The service behind this route failed to answer."),
    (
        503,
        "The service behind this route is unavailable; try again after `Retry-After` seconds.",
    ),
    (504, "The service behind this route did not answer in time."),
];

/// The whole document: the services' parts merged, with the gateway's own problems added to
/// every operation that does not already list the same status.
pub fn document() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("nubo")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "nubo's public API, through the gateway. JSON in and out; every error is \
                     `application/problem+json` (RFC 9457). Routes marked with the bearer scheme \
                     need an access token from `POST /api/v1/identity/login`.",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new().url("/").build()]))
        .build();
    for part in SERVICES {
        doc.merge(part());
    }
    Shared.modify(&mut doc);
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            let responses = &mut operation.responses.responses;
            for (status, description) in GATEWAY_PROBLEMS {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(problem_response(description)));
            }
        }
    }
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Built once: the document only changes with the code.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serializes")
});

pub async fn serve() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::SERVICES;

    #[test]
    fn services_never_give_one_schema_name_two_shapes() {
        let mut seen = BTreeMap::new();
        for part in SERVICES {
            let part = part();
            let title = part.info.title.clone();
            for (name, schema) in part.components.into_iter().flat_map(|c| c.schemas) {
                let json = serde_json::to_value(&schema).unwrap();
                if let Some((other, earlier)) = seen.insert(name.clone(), (title.clone(), json)) {
                    assert_eq!(
                        seen[&name].1, earlier,
                        "schema {name} differs between {other} and {title}; rename one (`#[schema(as = ...)]`)"
                    );
                }
            }
        }
    }

    #[test]
    fn the_gateway_routes_every_documented_path_to_the_service_documenting_it() {
        for part in SERVICES {
            let part = part();
            // A service's part is titled with its crate's name, `nubo-<service>`.
            let service = part.info.title.trim_start_matches("nubo-");
            for path in part.paths.paths.keys() {
                assert_eq!(
                    crate::routes::owner(path),
                    Some(service),
                    "{path}, documented by {service}"
                );
            }
        }
    }

    #[test]
    fn every_operation_of_every_service_is_in_the_document() {
        let count = |doc: &utoipa::openapi::OpenApi| {
            serde_json::to_value(&doc.paths)
                .unwrap()
                .as_object()
                .unwrap()
                .values()
                .map(|item| item.as_object().unwrap().len())
                .sum::<usize>()
        };
        let parts: usize = SERVICES.iter().map(|part| count(&part())).sum();
        assert_eq!(
            count(&super::document()),
            parts,
            "two services share a path"
        );
    }
}
