//! The servers nubo stands on, as manifests: PostgreSQL (a CloudNativePG `Cluster`), NATS with
//! JetStream (three clustered replicas), Redis (carts and cache entries, append-only on a volume), and the KEDA scalers
//! of services that scale on their consumers' lag.

use nubo_platform::ServiceDescription;
use serde_json::{Value, json};

use super::deployment_of;

fn labels(name: &str) -> Value {
    json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "nubo" })
}

fn restricted(user: u32) -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
    })
}

/// One PostgreSQL cluster; each service uses its own schema in database `nubo`. The operator
/// writes secret `nubo-db-app`, whose `uri` the services read as `NUBO_DATABASE_URL`.
pub fn postgres() -> Vec<Value> {
    vec![json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": { "name": "nubo-db", "labels": labels("postgres") },
        "spec": {
            "instances": 1,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4",
            "bootstrap": { "initdb": { "database": "nubo", "owner": "nubo" } },
            "postgresql": { "parameters": { "max_connections": "200" } },
            "storage": { "size": "2Gi" },
            "resources": {
                "requests": { "cpu": "250m", "memory": "256Mi" },
                "limits": { "memory": "512Mi" },
            },
        },
    })]
}

const NATS_CONF: &str = "port: 4222
http_port: 8222
server_name: $POD_NAME
lame_duck_duration: 20s
jetstream {
  store_dir: /data/jetstream
  max_memory_store: 64MB
  max_file_store: 2GB
}
cluster {
  name: nubo
  port: 6222
  routes: [
    nats://nats-0.nats-headless:6222
    nats://nats-1.nats-headless:6222
    nats://nats-2.nats-headless:6222
  ]
}
";

/// NATS with JetStream, three servers in one cluster so the stream keeps three copies
/// (`NUBO_NATS_REPLICAS=3`) and survives losing one.
pub fn nats() -> Vec<Value> {
    let ports = json!([
        { "name": "client", "port": 4222, "targetPort": "client" },
        { "name": "cluster", "port": 6222, "targetPort": "cluster" },
        { "name": "monitor", "port": 8222, "targetPort": "monitor" },
    ]);
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "nats-config", "labels": labels("nats") },
            "data": { "nats.conf": NATS_CONF },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": "nats-headless", "labels": labels("nats") },
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": { "app.kubernetes.io/name": "nats" },
                "ports": ports,
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": "nats", "labels": labels("nats") },
            "spec": {
                "selector": { "app.kubernetes.io/name": "nats" },
                "ports": [
                    { "name": "client", "port": 4222, "targetPort": "client", "appProtocol": "tcp" },
                    { "name": "monitor", "port": 8222, "targetPort": "monitor" },
                ],
            },
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": { "name": "nats", "labels": labels("nats") },
            "spec": {
                "serviceName": "nats-headless",
                "replicas": 3,
                "podManagementPolicy": "Parallel",
                "selector": { "matchLabels": { "app.kubernetes.io/name": "nats" } },
                "template": {
                    "metadata": {
                        "labels": labels("nats"),
                        "annotations": { "prometheus.io/scrape": "false" },
                    },
                    "spec": {
                        "automountServiceAccountToken": false,
                        "terminationGracePeriodSeconds": 60,
                        "securityContext": restricted(1000),
                        "containers": [{
                            "name": "nats",
                            "image": "nats:2.10.22-alpine",
                            "args": ["--config", "/etc/nats/nats.conf"],
                            "env": [{ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }],
                            "ports": [
                                { "name": "client", "containerPort": 4222 },
                                { "name": "cluster", "containerPort": 6222 },
                                { "name": "monitor", "containerPort": 8222 },
                            ],
                            "startupProbe": { "httpGet": { "path": "/healthz", "port": "monitor" }, "periodSeconds": 5, "failureThreshold": 60 },
                            "livenessProbe": { "httpGet": { "path": "/healthz?js-enabled-only=true", "port": "monitor" }, "periodSeconds": 30 },
                            "readinessProbe": { "httpGet": { "path": "/healthz?js-server-only=true", "port": "monitor" }, "periodSeconds": 10 },
                            "resources": {
                                "requests": { "cpu": "100m", "memory": "128Mi" },
                                "limits": { "memory": "512Mi" },
                            },
                            "securityContext": container_security(),
                            "volumeMounts": [
                                { "name": "config", "mountPath": "/etc/nats" },
                                { "name": "data", "mountPath": "/data" },
                            ],
                        }],
                        "volumes": [{ "name": "config", "configMap": { "name": "nats-config" } }],
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": { "name": "data" },
                    "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "2Gi" } } },
                }],
            },
        }),
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": { "name": "nats", "labels": labels("nats") },
            "spec": { "maxUnavailable": 1, "selector": { "matchLabels": { "app.kubernetes.io/name": "nats" } } },
        }),
    ]
}

/// Redis holds carts (a customer's data) beside cache entries: every write goes to an
/// append-only file on a persistent volume, synced each second, so a restarted or rescheduled
/// pod keeps every cart. Memory is bounded without eviction: past the limit writes fail (the
/// cart answers 503) rather than carts silently disappearing; cache entries expire by their TTL.
pub fn redis() -> Vec<Value> {
    vec![
        // A file, not arguments: `no` as a bare YAML word reads as false in YAML 1.1 tools.
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "redis-config", "labels": labels("redis") },
            "data": { "redis.conf": "dir /data\nsave \"\"\nappendonly yes\nappendfsync everysec\nmaxmemory 192mb\nmaxmemory-policy noeviction\n" },
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": { "name": "redis", "labels": labels("redis") },
            "spec": {
                "serviceName": "redis",
                "replicas": 1,
                "selector": { "matchLabels": { "app.kubernetes.io/name": "redis" } },
                "volumeClaimTemplates": [{
                    "metadata": { "name": "data", "labels": labels("redis") },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": { "requests": { "storage": "2Gi" } },
                    },
                }],
                "template": {
                    "metadata": { "labels": labels("redis") },
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": restricted(999),
                        "containers": [{
                            "name": "redis",
                            "image": "redis:7.2-alpine",
                            "args": ["/etc/redis/redis.conf"],
                            "ports": [{ "name": "redis", "containerPort": 6379 }],
                            "readinessProbe": { "exec": { "command": ["redis-cli", "ping"] }, "periodSeconds": 5 },
                            "livenessProbe": { "tcpSocket": { "port": "redis" }, "periodSeconds": 10 },
                            "resources": {
                                "requests": { "cpu": "50m", "memory": "256Mi" },
                                "limits": { "memory": "256Mi" },
                            },
                            "securityContext": container_security(),
                            "volumeMounts": [
                                { "name": "data", "mountPath": "/data" },
                                { "name": "config", "mountPath": "/etc/redis" },
                            ],
                        }],
                        "volumes": [
                            { "name": "config", "configMap": { "name": "redis-config" } },
                        ],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": "redis", "labels": labels("redis") },
            "spec": {
                "selector": { "app.kubernetes.io/name": "redis" },
                "ports": [{ "name": "redis", "port": 6379, "targetPort": "redis" }],
            },
        }),
    ]
}

/// The JetStream stream of a namespace, as the platform names it.
pub fn stream_name(namespace: &str) -> String {
    namespace.to_uppercase().replace('-', "_")
}

/// A KEDA ScaledObject for each service that scales on its consumers' lag (and CPU).
pub fn scalers(all: &[&'static ServiceDescription]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for desc in all {
        let Some(lag) = deployment_of(desc)?.scale_on_consumer_lag else {
            continue;
        };
        out.push(scaler(desc, lag, "nubo"));
    }
    Ok(out)
}

/// `k8s_namespace` is where NATS runs: KEDA's operator reaches it from its own namespace.
pub fn scaler(desc: &ServiceDescription, lag: u32, k8s_namespace: &str) -> Value {
    let mut triggers: Vec<Value> = desc
        .consumes
        .iter()
        .map(|c| {
            json!({
                "type": "nats-jetstream",
                "metadata": {
                    "natsServerMonitoringEndpoint": format!("nats.{k8s_namespace}.svc.cluster.local:8222"),
                    "account": "$G",
                    "stream": stream_name("nubo"),
                    "consumer": c.durable,
                    "lagThreshold": lag.to_string(),
                    "useHttps": "false",
                },
            })
        })
        .collect();
    triggers
        .push(json!({ "type": "cpu", "metricType": "Utilization", "metadata": { "value": "70" } }));
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": { "name": desc.name, "labels": { "app.kubernetes.io/name": desc.name, "app.kubernetes.io/part-of": "nubo" } },
        "spec": {
            "scaleTargetRef": { "name": desc.name },
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": triggers,
        },
    })
}

/// The shop's own CA in cert-manager: a self-signed root (kept in Secret `nubo-ca`) and the
/// Issuer that signs every service's certificate with it. Replace the root with your own PKI's
/// intermediate by pointing the `nubo-ca` Issuer at another Secret.
pub fn certificate_authority() -> Vec<Value> {
    let labels = json!({ "app.kubernetes.io/part-of": "nubo" });
    vec![
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": { "name": "nubo-selfsigned", "labels": labels },
            "spec": { "selfSigned": {} },
        }),
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": { "name": "nubo-ca", "labels": labels },
            "spec": {
                "isCA": true,
                "commonName": "nubo service CA",
                "secretName": "nubo-ca",
                "duration": "87600h",
                "privateKey": { "algorithm": "ECDSA", "size": 256 },
                "issuerRef": { "name": "nubo-selfsigned", "kind": "Issuer" },
            },
        }),
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": { "name": super::workloads::CA_ISSUER, "labels": labels },
            "spec": { "ca": { "secretName": "nubo-ca" } },
        }),
    ]
}
