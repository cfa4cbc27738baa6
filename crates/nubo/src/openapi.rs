//! The public API's OpenAPI document, assembled where the services are composed: every
//! service's part (generated from its handlers) merged, with what the gateway answers itself on
//! any route added to every operation. `nubo openapi` writes it where the gateway serves it from
//! (`crates/gateway/openapi.json`); a test fails when the two differ.

use std::path::Path;

use nubo_platform::ServiceDescription;
use nubo_platform::openapi::{Shared, problem_response};
use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, RefOr, ServerBuilder};

/// Where the gateway serves the document from, relative to the repository's root.
pub const FILE: &str = "crates/gateway/openapi.json";

/// Writes the document to `file`, or with `check` compares it with what is there and fails if
/// they differ.
pub fn run(services: &[&ServiceDescription], file: &Path, check: bool) -> anyhow::Result<()> {
    let text = text(services);
    if check {
        let committed = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        anyhow::ensure!(
            committed == text,
            "{} is not what the handlers document; run `nubo openapi` and commit it",
            file.display()
        );
        println!("{} matches the code", file.display());
    } else {
        std::fs::write(file, &text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        println!("wrote {}", file.display());
    }
    Ok(())
}

/// The document as the gateway serves it: pretty JSON, so a change to the API reads as a diff.
pub fn text(services: &[&ServiceDescription]) -> String {
    let mut text = document(services)
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// The whole document: the services' parts merged, with the gateway's own problems added to
/// every operation that does not already list the same status.
pub fn document(services: &[&ServiceDescription]) -> OpenApi {
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
    for part in services.iter().filter_map(|s| s.openapi) {
        doc.merge(part());
    }
    Shared.modify(&mut doc);
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            let responses = &mut operation.responses.responses;
            for (status, description) in nubo_gateway::openapi::GATEWAY_PROBLEMS {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(problem_response(description)));
            }
            // Every body is JSON, and the platform's extractor says so for any other.
            if operation.request_body.is_some() {
                responses.entry("415".to_owned()).or_insert_with(|| {
                    RefOr::T(problem_response(
                        "The body is not sent as `Content-Type: application/json`.",
                    ))
                });
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::SERVICES;

    fn parts() -> Vec<utoipa::openapi::OpenApi> {
        SERVICES
            .iter()
            .filter_map(|s| s.openapi)
            .map(|part| part())
            .collect()
    }

    #[test]
    fn services_never_give_one_schema_name_two_shapes() {
        let mut seen = BTreeMap::new();
        for part in parts() {
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
        for part in parts() {
            // A service's part is titled with its crate's name, `nubo-<service>`.
            let service = part.info.title.trim_start_matches("nubo-");
            for path in part.paths.paths.keys() {
                assert_eq!(
                    nubo_gateway::routes::owner(path),
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
        let parts: usize = parts().iter().map(count).sum();
        assert_eq!(
            count(&super::document(SERVICES)),
            parts,
            "two services share a path"
        );
    }

    #[test]
    fn the_document_the_gateway_serves_is_what_the_handlers_document() {
        assert!(
            super::text(SERVICES) == nubo_gateway::openapi::DOCUMENT,
            "{} is stale: run `cargo run -- openapi` and commit it",
            super::FILE
        );
    }
}
