//! The API document as a client developer meets it: fetched from the gateway without a token, it
//! describes the API that is actually served. Every documented operation is tried through the
//! gateway, anonymously and as an admin, and must answer with a status it documents; a service
//! that serves a public route without documenting it fails the source check at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nubo_identity::domain::Role;
use nubo_identity::testing::add_account;
use nubo_platform::testing::{TestMode, TestSystem};
use reqwest::Method;
use serde_json::{Value, json};

use super::sign_in;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// Every service with public routes (each one in `nubo_gateway::openapi::SERVICES`), and the
/// gateway in front.
async fn start() -> (TestSystem, String) {
    let services = [
        &nubo_identity::SERVICE,
        &nubo_catalog::SERVICE,
        &nubo_inventory::SERVICE,
        &nubo_cart::SERVICE,
        &nubo_payments::SERVICE,
        &nubo_orders::SERVICE,
        &nubo_notifications::SERVICE,
        &nubo_gateway::SERVICE,
    ];
    let system = TestSystem::start_with(
        TestMode::Embedded,
        &services,
        |_| {},
        // Every operation is tried twice in a burst; the limit is not what this test is about.
        &[(nubo_gateway::RATE_LIMIT_RPS, "10000")],
    )
    .await;
    add_account(&system, "admin@openapi.test", Role::Admin).await;
    let admin = sign_in(&system, "admin@openapi.test").await;
    (system, admin)
}

/// (method, path template, operation) for every documented operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                all.push((method.to_string(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

#[tokio::test]
async fn the_api_document_describes_what_the_gateway_serves() {
    let (system, admin) = start().await;
    let gateway = system.url("gateway");
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{gateway}/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no token needed");
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "nubo");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");

    let operations = operations(&doc);
    assert!(operations.len() >= 20, "{} operations", operations.len());
    let mut ids = BTreeSet::new();
    for (method, path, operation) in &operations {
        let what = format!("{} {path}", method.to_uppercase());
        assert!(
            ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "{what}: operationId {} is used twice",
            operation["operationId"]
        );
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{what} has no tag"
        );
        assert!(
            path.starts_with("/api/v1/") && nubo_gateway::routes::owner(path).is_some(),
            "{what}: the gateway routes no prefix of it"
        );
        for (status, response) in operation["responses"].as_object().unwrap() {
            let content = response["content"].as_object();
            if status.starts_with('4') || status.starts_with('5') {
                let content = content.unwrap_or_else(|| panic!("{what} {status} has no body"));
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{what} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{what} {status}"
                );
            } else if let Some(content) = content {
                // A product's image is the one answer that is not JSON.
                let types: Vec<&String> = content.keys().collect();
                if path.ends_with("/image") && method == "get" {
                    assert!(
                        types.iter().all(|t| t.starts_with("image/")),
                        "{what} {status}"
                    );
                } else {
                    assert_eq!(types, ["application/json"], "{what} {status}");
                }
            }
        }
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains_key(scheme),
                    "{what}: unknown scheme {scheme}"
                );
            }
        }
    }

    // Every operation is served where the document says, and answers with statuses it documents:
    // 401 without a token exactly when it says it needs one.
    for (method, path, operation) in &operations {
        let what = format!("{} {path}", method.to_uppercase());
        let documented: BTreeSet<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let url = format!("{gateway}{}", example_path(path));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let request = |token: Option<&str>| {
            let mut request = http.request(method.clone(), &url);
            if operation.get("requestBody").is_some() {
                request = request.json(&json!({}));
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let anonymous = request(None).await.unwrap();
        let status = anonymous.status().as_u16();
        let body = anonymous.text().await.unwrap();
        assert!(
            status < 500,
            "{what} answered {status}: is its service in `start()`? {body}"
        );
        assert_eq!(
            status == 401,
            secured,
            "{what} answered {status} to no token"
        );
        assert!(
            documented.contains(&status),
            "{what}: {status} is not documented"
        );

        let as_admin = request(Some(&admin)).await.unwrap();
        let status = as_admin.status().as_u16();
        let body = as_admin.text().await.unwrap();
        assert!(status < 500, "{what} answered {status}: {body}");
        assert_ne!(status, 405, "{what} is not served: {body}");
        assert!(
            !(status == 404
                && (body.contains("no route for") || body.contains("no service serves"))),
            "{what} is not served: {body}"
        );
        assert!(
            documented.contains(&status),
            "{what}: {status} is not documented ({body})"
        );
    }
    system.shutdown().await;
}

/// A path template with its parameters filled by values that parse but name nothing.
fn example_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{id}" | "{user_id}" => nubo_platform::uuid::Uuid::new_v4().to_string(),
            "{sku}" => "NO-SUCH-SKU".to_owned(),
            "{slug}" => "no-such-category".to_owned(),
            "{service}" => "no-such-service".to_owned(),
            "{trace_id}" => "0".repeat(32),
            s if s.starts_with('{') => panic!("no example for {s} in {template}"),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Public routes are registered with `.routes(routes!(handler))`, which documents them; a
/// `.route(...)` on an `/api/` path would serve one the document does not know. Looks at every
/// crate's sources, so a new service is checked without being listed here.
#[test]
fn services_serve_no_public_route_that_is_not_documented() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with("gateway") || dir.ends_with("platform") {
            continue;
        }
        collect_rust_files(&dir.join("src"), &mut sources);
    }
    // `const NAME: &str = "/..."` anywhere, for routes given as a constant.
    let mut constants = BTreeMap::new();
    for text in sources.values() {
        for line in text.lines() {
            if let Some((name, value)) = line
                .trim_start()
                .trim_start_matches("pub ")
                .strip_prefix("const ")
                .and_then(|rest| rest.split_once(": &str = \""))
            {
                constants.insert(name.to_owned(), value.trim_end_matches("\";").to_owned());
            }
        }
    }
    let mut undocumented = Vec::new();
    for (file, text) in &sources {
        for call in text.split(".route(").skip(1) {
            let first = call.trim_start().split([',', ')']).next().unwrap().trim();
            let path = match first.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_owned(),
                None => {
                    let name = first.rsplit("::").next().unwrap();
                    constants.get(name).cloned().unwrap_or_default()
                }
            };
            if path.starts_with("/api/") {
                undocumented.push(format!("{}: {path}", file.display()));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "served with `.route(...)`, so missing from the API document; use \
         `.routes(routes!(handler))` with a `#[utoipa::path]` on the handler: {undocumented:#?}"
    );
}

fn collect_rust_files(dir: &Path, into: &mut BTreeMap<std::path::PathBuf, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.insert(path.clone(), std::fs::read_to_string(&path).unwrap());
        }
    }
}
