//! The boundary between services, as a pod inside the cluster meets it: every internal route
//! answers only the services the call graph names, over mutual TLS, whatever else can reach
//! its port.

use nubo_platform::axum::http::{Method, StatusCode};
use nubo_platform::both_modes;
use nubo_platform::client::ClientError;
use nubo_platform::testing::{TestClient, TestMode, TestSystem, assert_problem};
use nubo_platform::tls::ServiceIdentity;
use nubo_platform::tls::authority::Authority;
use nubo_platform::uuid::Uuid;
use serde_json::{Value, json};

async fn start(mode: TestMode) -> TestSystem {
    crate::edge::start(mode, |_| {}).await
}

/// Every internal route of the shop: its service, method, path and a body it accepts.
fn internal_routes(id: Uuid, user: Uuid) -> Vec<(&'static str, Method, String, Option<Value>)> {
    let reservation = json!({
        "reservation_id": id, "lines": [{ "sku": "TEA-001", "quantity": 1 }], "ttl_secs": 60,
    });
    let payment = json!({
        "payment_id": id,
        "amount": { "amount_minor": 100, "currency": "EUR" },
        "card": { "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2040, "cvc": "123" },
    });
    let release = json!({ "reason": "order_cancelled" });
    let ordered = json!({ "lines": [{ "sku": "TEA-001", "quantity": 1 }] });
    let r = "/internal/v1/reservations";
    let p = "/internal/v1/payments";
    vec![
        ("inventory", Method::POST, r.to_owned(), Some(reservation)),
        ("inventory", Method::GET, format!("{r}/{id}"), None),
        ("inventory", Method::POST, format!("{r}/{id}/commit"), None),
        (
            "inventory",
            Method::POST,
            format!("{r}/{id}/release"),
            Some(release),
        ),
        ("payments", Method::POST, p.to_owned(), Some(payment)),
        ("payments", Method::GET, format!("{p}/{id}"), None),
        ("payments", Method::POST, format!("{p}/{id}/capture"), None),
        ("payments", Method::POST, format!("{p}/{id}/void"), None),
        ("payments", Method::POST, format!("{p}/{id}/refund"), None),
        (
            "cart",
            Method::GET,
            format!("/internal/v1/carts/{user}"),
            None,
        ),
        (
            "cart",
            Method::PUT,
            format!("/internal/v1/carts/{user}/orders/{id}"),
            Some(ordered),
        ),
        (
            "catalog",
            Method::GET,
            "/internal/v1/products/by-sku/TEA-001".to_owned(),
            None,
        ),
    ]
}

/// The service the call graph lets call `service`'s internal routes: orders runs the saga's
/// steps, the cart prices its lines from the catalog.
fn allowed_caller(service: &str) -> &'static str {
    if service == "catalog" {
        "cart"
    } else {
        "orders"
    }
}

both_modes!(
    every_internal_route_answers_only_the_services_the_call_graph_names,
    a_certificate_from_another_ca_or_for_another_service_gets_no_answer,
);

async fn every_internal_route_answers_only_the_services_the_call_graph_names(mode: TestMode) {
    let system = start(mode).await;
    let http = reqwest::Client::new();
    let (id, user) = (Uuid::now_v7(), Uuid::now_v7());
    for (service, method, path, body) in internal_routes(id, user) {
        let route = format!("{method} {path} on {service}");
        // Plain HTTP on the service's own port: no certificate, no internal route.
        let plain = http
            .request(method.clone(), format!("{}{path}", system.url(service)))
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(plain, 401).await;
        assert_eq!(
            problem["type"], "https://nubo.dev/problems/client-certificate-required",
            "{route}"
        );
        // TLS that checks the service but presents no certificate.
        let anonymous = system.client_without_certificate(service);
        let answer = anonymous.send(method.clone(), &path, body.as_ref()).await;
        assert_problem(answer, 401).await;
        // Certificates of the same CA for services the call graph does not let call this one:
        // a service of the shop, the edge itself, and a name that is no service at all.
        for caller in ["catalog", "gateway", "stranger"] {
            let answer = system
                .client_as(caller, service)
                .send(method.clone(), &path, body.as_ref())
                .await;
            let problem = assert_problem(answer, 403).await;
            assert_eq!(
                problem["detail"],
                format!("{caller} may not call the internal routes of {service}"),
                "{route}"
            );
        }
    }
    // The caller the call graph names is let through: each route answers for itself (the
    // refusals above never reached a handler, so nothing exists yet).
    let orders = |service| system.client_as("orders", service);
    let statuses: Vec<(String, StatusCode)> = {
        let mut all = Vec::new();
        for (service, method, path, body) in internal_routes(id, user) {
            let answer = system
                .client_as(allowed_caller(service), service)
                .send(method.clone(), &path, body.as_ref())
                .await;
            all.push((format!("{method} {path}"), answer.status()));
        }
        all
    };
    for (route, status) in &statuses {
        assert!(
            status.as_u16() != 401 && status.as_u16() != 403,
            "{route}: {status}"
        );
    }
    // The story as orders tells it: the payment authorized and then read back.
    let authorized = orders("payments")
        .get(&format!("/internal/v1/payments/{id}"))
        .await;
    assert_eq!(authorized.status(), 200, "{authorized:?}");
    let cart = orders("cart")
        .get(&format!("/internal/v1/carts/{user}"))
        .await;
    assert_eq!(cart.status(), 200, "{cart:?}");
    system.shutdown().await;
}

async fn a_certificate_from_another_ca_or_for_another_service_gets_no_answer(mode: TestMode) {
    let system = start(mode).await;
    let path = format!("/internal/v1/reservations/{}", Uuid::now_v7());
    // A certificate that names orders, from a CA the shop does not trust: the handshake fails.
    let elsewhere = tempfile_dir();
    let forged = Authority::open(&elsewhere)
        .unwrap()
        .ensure("orders", &system.settings().trust_domain)
        .unwrap();
    let forged = ServiceIdentity::load("orders", &system.settings().trust_domain, &forged).unwrap();
    let impostor = TestClient::new(
        "inventory",
        &system.internal_url("inventory"),
        forged.client_config("inventory"),
    );
    let error = impostor.error_of_get(&path).await;
    assert!(
        matches!(
            error,
            ClientError::Connect { .. } | ClientError::Transport { .. }
        ),
        "{error:?}"
    );
    // Orders calling what it believes is payments, but inventory answers: orders refuses the
    // answer, since inventory's certificate does not name payments.
    let misrouted = system.client_as_at("orders", "payments", &system.internal_url("inventory"));
    let error = misrouted.error_of_get(&path).await;
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
    // The real thing works.
    let answer = system.client_as("orders", "inventory").get(&path).await;
    assert_eq!(answer.status(), 404, "{answer:?}");
    std::fs::remove_dir_all(&elsewhere).ok();
    system.shutdown().await;
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nubo-other-ca-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
