//! NetworkPolicies: deny everything, then allow exactly the edges the code has. A service
//! accepts calls only from the services whose descriptions say they call it, and reaches only
//! the services it calls plus its own servers (PostgreSQL, NATS, Redis); events flow through
//! NATS, so publishing and consuming are edges to NATS. The gateway alone accepts traffic from
//! outside.
//!
//! Port 4143 sits beside every service port because under Linkerd a meshed call arrives at the
//! peer's proxy on 4143, not at the service port; 4191 is the proxy's metrics port.

use nubo_platform::ServiceDescription;
use serde_json::{Value, json};

pub const LINKERD_INBOUND: u16 = 4143;
pub const LINKERD_ADMIN: u16 = 4191;

fn tcp(ports: &[u16]) -> Vec<Value> {
    ports
        .iter()
        .map(|p| json!({ "protocol": "TCP", "port": p }))
        .collect()
}

fn pods(name: &str) -> Value {
    json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/name": name } } })
}

fn namespace(name: &str) -> Value {
    json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": name } } })
}

fn nubo_services() -> Value {
    json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/component": "service", "app.kubernetes.io/part-of": "nubo" } } })
}

fn postgres_pods() -> Value {
    json!({ "podSelector": { "matchLabels": { "cnpg.io/cluster": "nubo-db" } } })
}

fn policy(name: &str, selector: Value, ingress: Vec<Value>, egress: Vec<Value>) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": name, "labels": { "app.kubernetes.io/part-of": "nubo" } },
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    })
}

/// Who calls `target`, by the descriptions.
pub fn callers(target: &str, all: &[&'static ServiceDescription]) -> Vec<&'static str> {
    all.iter()
        .filter(|d| d.calls().contains(&target))
        .map(|d| d.name)
        .collect()
}

fn port_of(name: &str, all: &[&'static ServiceDescription]) -> u16 {
    all.iter()
        .find(|d| d.name == name)
        .map(|d| d.default_port())
        .unwrap_or_else(|| panic!("a service calls {name}, which is not in the shop"))
}

pub fn policies(all: &[&'static ServiceDescription]) -> Vec<Value> {
    let mut out = vec![
        policy("default-deny", json!({}), vec![], vec![]),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": { "name": "allow-dns", "labels": { "app.kubernetes.io/part-of": "nubo" } },
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{
                    "to": [{
                        "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
                        "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
                    }],
                    "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
                }],
            },
        }),
    ];
    for desc in all {
        let port = desc.default_port();
        let mut ingress = Vec::new();
        let from = callers(desc.name, all);
        if !from.is_empty() {
            ingress.push(json!({
                "from": from.iter().map(|c| pods(c)).collect::<Vec<_>>(),
                "ports": tcp(&[port, LINKERD_INBOUND]),
            }));
        }
        if desc.name == "gateway" {
            // The edge: the ingress controller or load balancer, from wherever it runs.
            ingress.push(json!({ "ports": tcp(&[port, LINKERD_INBOUND]) }));
        }
        // Metrics are scraped where they are served: the gateway's ops port, else the service's.
        let metrics = desc.ops_port().unwrap_or(port);
        ingress.push(
            json!({ "from": [namespace("monitoring")], "ports": tcp(&[metrics, LINKERD_ADMIN]) }),
        );
        let mut egress: Vec<Value> = desc
            .calls()
            .iter()
            .map(|callee| json!({ "to": [pods(callee)], "ports": tcp(&[port_of(callee, all), LINKERD_INBOUND]) }))
            .collect();
        egress.extend([
            json!({ "to": [postgres_pods()], "ports": tcp(&[5432]) }),
            json!({ "to": [pods("nats")], "ports": tcp(&[4222]) }),
            json!({ "to": [pods("redis")], "ports": tcp(&[6379]) }),
            // Traces, when OTEL_EXPORTER_OTLP_ENDPOINT points at a collector.
            json!({ "to": [{ "namespaceSelector": {}, "podSelector": { "matchLabels": { "app.kubernetes.io/name": "opentelemetry-collector" } } }], "ports": tcp(&[4318]) }),
            // The Linkerd control plane (identity, destination, policy), when meshed.
            json!({ "to": [namespace("linkerd")] }),
        ]);
        // Servers outside the cluster it talks to (notifications' SMTP server).
        let outside = super::deployment_of(desc).map_or(&[][..], |d| d.external_egress);
        if !outside.is_empty() {
            egress.push(
                json!({ "to": [{ "ipBlock": { "cidr": "0.0.0.0/0" } }], "ports": tcp(outside) }),
            );
        }
        out.push(policy(
            desc.name,
            json!({ "matchLabels": { "app.kubernetes.io/name": desc.name } }),
            ingress,
            egress,
        ));
    }
    out.push(policy(
        "nats",
        json!({ "matchLabels": { "app.kubernetes.io/name": "nats" } }),
        vec![
            json!({ "from": [nubo_services()], "ports": tcp(&[4222, LINKERD_INBOUND]) }),
            json!({ "from": [pods("nats")], "ports": tcp(&[6222]) }),
            // KEDA reads consumer lag from the monitoring port; Prometheus scrapes it.
            json!({ "from": [namespace("keda"), namespace("monitoring")], "ports": tcp(&[8222]) }),
        ],
        vec![json!({ "to": [pods("nats")], "ports": tcp(&[6222]) })],
    ));
    out.push(policy(
        "redis",
        json!({ "matchLabels": { "app.kubernetes.io/name": "redis" } }),
        vec![json!({ "from": [nubo_services()], "ports": tcp(&[6379, LINKERD_INBOUND]) })],
        vec![],
    ));
    out.push(policy(
        "postgres",
        json!({ "matchLabels": { "cnpg.io/cluster": "nubo-db" } }),
        vec![
            json!({ "from": [nubo_services()], "ports": tcp(&[5432]) }),
            json!({ "from": [postgres_pods()], "ports": tcp(&[5432, 8000]) }),
            // The CloudNativePG operator checks each instance's status port.
            json!({ "from": [namespace("cnpg-system")], "ports": tcp(&[8000, 5432]) }),
            json!({ "from": [namespace("monitoring")], "ports": tcp(&[9187]) }),
        ],
        vec![
            json!({ "to": [postgres_pods()], "ports": tcp(&[5432, 8000]) }),
            // The instance manager talks to the Kubernetes API, whose address is the cluster's.
            json!({ "to": [{ "ipBlock": { "cidr": "0.0.0.0/0" } }], "ports": tcp(&[443, 6443]) }),
        ],
    ));
    out
}
