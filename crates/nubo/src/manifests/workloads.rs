//! Each service's ServiceAccount, Deployment, Service, HorizontalPodAutoscaler and
//! PodDisruptionBudget, and the ConfigMap they share.

use nubo_platform::ServiceDescription;
use nubo_platform::config;
use serde_json::{Value, json};

use super::{Deployment, GRACE_SECS, PRE_STOP_SECS, SHUTDOWN_SECS};

/// The image every service is built into: `deploy/container/Containerfile`, one per service.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/nubo-shop/nubo";
/// The secret CloudNativePG writes for the application user of cluster `nubo-db`.
pub const DATABASE_SECRET: &str = "nubo-db-app";
/// Where each pod finds its service identity (the Secret cert-manager keeps renewed).
pub const TLS_MOUNT: &str = "/var/run/nubo/tls";
/// The cert-manager Issuer of every service certificate: the shop's own CA (`tls.yaml`).
pub const CA_ISSUER: &str = "nubo-ca";

/// The Secret holding `service`'s certificate, key and CA.
pub fn identity_secret(service: &str) -> String {
    format!("{service}-identity")
}

pub fn image(service: &str) -> String {
    format!("{IMAGE_REPOSITORY}-{service}")
}

pub fn labels(service: &str) -> Value {
    json!({
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/component": "service",
        "app.kubernetes.io/part-of": "nubo",
    })
}

/// Settings every service reads, the same for all: the servers, the namespace, log format, the
/// shutdown deadline that `terminationGracePeriodSeconds` is derived from.
pub fn config() -> Vec<Value> {
    vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "nubo-config" },
        "data": {
            config::MODE: "distributed",
            config::NATS_URL: "nats://nats:4222",
            config::NATS_REPLICAS: "3",
            config::REDIS_URL: "redis://redis:6379",
            config::NAMESPACE: "nubo",
            config::LOG_FORMAT: "json",
            config::TLS_DIR: TLS_MOUNT,
            config::LOG: "info",
            config::SHUTDOWN_TIMEOUT_SECS: SHUTDOWN_SECS.to_string(),
        },
    })]
}

/// `port`: the name of the container port serving the probes.
fn probe(path: &str, port: &str, period: u32, failures: u32) -> Value {
    json!({
        "httpGet": { "path": path, "port": port },
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    })
}

fn env(desc: &ServiceDescription, d: &Deployment) -> Vec<Value> {
    let mut env = vec![json!({ "name": config::DATABASE_URL,
                "valueFrom": { "secretKeyRef": { "name": DATABASE_SECRET, "key": "uri" } } })];
    for (variable, secret, key) in d.secret_env {
        env.push(json!({ "name": variable,
                "valueFrom": { "secretKeyRef": { "name": secret, "key": key } } }));
    }
    for target in desc.calls() {
        if let Some(url) = config::default_url(target) {
            env.push(json!({ "name": config::url_variable(target), "value": url }));
        }
    }
    env
}

pub fn service(
    desc: &ServiceDescription,
    d: &Deployment,
    _all: &[&'static ServiceDescription],
) -> Vec<Value> {
    let name = desc.name;
    let port = desc.default_port();
    // The gateway keeps its probes and metrics off its public port, on a port of their own.
    let (probes, metrics_port) = match desc.ops_port() {
        Some(ops) => ("ops", ops),
        None => ("http", port),
    };
    let mut ports = vec![json!({ "name": "http", "containerPort": port, "protocol": "TCP" })];
    if let Some(ops) = desc.ops_port() {
        ports.push(json!({ "name": "ops", "containerPort": ops, "protocol": "TCP" }));
    }
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": labels(name) },
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            // Never fewer ready pods than wanted during a rollout.
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": metrics_port.to_string(),
                        "prometheus.io/path": "/metrics",
                        // Under Linkerd the proxy must not stop before the service has drained.
                        "config.alpha.linkerd.io/proxy-wait-before-exit-seconds": (PRE_STOP_SECS + SHUTDOWN_SECS).to_string(),
                    },
                },
                "spec": {
                    "serviceAccountName": name,
                    // Services never call the Kubernetes API.
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": GRACE_SECS,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        // Owns the mounted identity files, which are group-readable only.
                        "fsGroup": 65532,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "volumes": [{
                        "name": "identity",
                        "secret": { "secretName": identity_secret(name), "defaultMode": 0o440 },
                    }],
                    "containers": [{
                        "name": name,
                        "image": format!("{}:latest", image(name)),
                        "imagePullPolicy": "IfNotPresent",
                        "ports": ports,
                        "envFrom": [{ "configMapRef": { "name": "nubo-config" } }],
                        "env": env(desc, d),
                        // Renewals land in the mount; the service re-reads them (no subPath,
                        // which would freeze the files).
                        "volumeMounts": [{ "name": "identity", "mountPath": TLS_MOUNT, "readOnly": true }],
                        "startupProbe": probe("/startupz", probes, 2, 90),
                        "livenessProbe": probe("/livez", probes, 10, 3),
                        "readinessProbe": probe("/readyz", probes, 5, 2),
                        // Kubernetes' own sleep: the image has no shell. Endpoints drop the pod
                        // while it still serves, then SIGTERM starts the graceful shutdown.
                        "lifecycle": { "preStop": { "sleep": { "seconds": PRE_STOP_SECS } } },
                        "resources": {
                            "requests": { "cpu": format!("{}m", d.cpu_request_m), "memory": format!("{}Mi", d.memory_request_mi) },
                            "limits": { "cpu": format!("{}m", d.cpu_limit_m), "memory": format!("{}Mi", d.memory_limit_mi) },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                    }],
                },
            },
        },
    });
    let mut objects = vec![
        certificate(name),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": { "name": name, "labels": labels(name) },
            "automountServiceAccountToken": false,
        }),
        deployment,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": name, "labels": labels(name) },
            "spec": {
                "selector": { "app.kubernetes.io/name": name },
                "ports": [{ "name": "http", "port": port, "targetPort": "http", "protocol": "TCP", "appProtocol": "http" }],
            },
        }),
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": { "name": name, "labels": labels(name) },
            "spec": {
                "maxUnavailable": 1,
                "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            },
        }),
    ];
    // With KEDA, its ScaledObject owns the HPA; two HPAs on one Deployment would fight.
    if d.scale_on_consumer_lag.is_none() {
        objects.push(autoscaler(name, d));
    }
    objects
}

/// `service`'s identity, issued and renewed by cert-manager from the shop's CA: its SPIFFE id
/// (what nubo checks), its DNS names (for tools that check host names).
fn certificate(service: &str) -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": { "name": identity_secret(service), "labels": labels(service) },
        "spec": {
            "secretName": identity_secret(service),
            "issuerRef": { "name": CA_ISSUER, "kind": "Issuer" },
            "commonName": service,
            "uris": [nubo_platform::tls::spiffe_id(nubo_platform::tls::DEFAULT_TRUST_DOMAIN, service)],
            "dnsNames": [service, "localhost"],
            "usages": ["digital signature", "server auth", "client auth"],
            "privateKey": { "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always" },
            "duration": "2160h",
            "renewBefore": "720h",
        },
    })
}

fn autoscaler(name: &str, d: &Deployment) -> Value {
    let mut metrics = vec![json!({
        "type": "Resource",
        "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } },
    })];
    if let Some(rps) = d.scale_on_request_rate {
        // Served by prometheus-adapter from nubo_http_requests_total (deploy/prometheus-adapter).
        metrics.push(json!({
            "type": "Pods",
            "pods": {
                "metric": { "name": "nubo_http_requests_per_second" },
                "target": { "type": "AverageValue", "averageValue": rps.to_string() },
            },
        }));
    }
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "labels": labels(name) },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": metrics,
            "behavior": {
                // Scale down slowly: a burst that just ended often comes back.
                "scaleDown": { "stabilizationWindowSeconds": 300, "policies": [{ "type": "Pods", "value": 1, "periodSeconds": 60 }] },
            },
        },
    })
}
