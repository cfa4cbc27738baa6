//! The overlays: `dev` (namespace `nubo-dev`, one replica of everything, images tagged
//! `latest`) and `prod` (namespace `nubo`, three replicas spread across zones and nodes,
//! PostgreSQL with three instances, images pinned to this release).

use nubo_platform::ServiceDescription;
use serde_json::{Value, json};

use super::{Files, deployment_of, infra, workloads, yaml};

struct Overlay {
    name: &'static str,
    namespace: &'static str,
    tag: String,
    replicas: u32,
    max_replicas: u32,
    postgres_instances: u32,
}

fn overlays() -> [Overlay; 2] {
    [
        Overlay {
            name: "dev",
            namespace: "nubo-dev",
            tag: "latest".into(),
            replicas: 1,
            max_replicas: 2,
            postgres_instances: 1,
        },
        Overlay {
            name: "prod",
            namespace: "nubo",
            tag: env!("CARGO_PKG_VERSION").into(),
            replicas: 3,
            max_replicas: 10,
            postgres_instances: 3,
        },
    ]
}

fn namespace(o: &Overlay) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": o.namespace,
            "labels": {
                // Every pod here must meet the restricted Pod Security Standard.
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
            // Mesh every pod when Linkerd is installed (with its CNI plugin under the
            // restricted standard): mutual TLS between all services, no code change.
            "annotations": { "linkerd.io/inject": "enabled" },
        },
    })
}

fn spread(name: &str) -> Value {
    let selector = json!({ "matchLabels": { "app.kubernetes.io/name": name } });
    json!([
        { "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector },
        { "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector },
    ])
}

pub fn all(services: &[&'static ServiceDescription]) -> anyhow::Result<Files> {
    let mut files = Files::new();
    for o in overlays() {
        let dir = format!("overlays/{}", o.name);
        let mut patches: Vec<(String, Value)> = Vec::new();
        for desc in services {
            let d = deployment_of(desc)?;
            let mut template_spec = json!({});
            if o.replicas > 1 {
                template_spec["topologySpreadConstraints"] = spread(desc.name);
            }
            patches.push((
                format!("deployment-{}.yaml", desc.name),
                json!({
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": { "name": desc.name },
                    "spec": { "replicas": o.replicas, "template": { "spec": template_spec } },
                }),
            ));
            match d.scale_on_consumer_lag {
                None => patches.push((
                    format!("hpa-{}.yaml", desc.name),
                    json!({
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "metadata": { "name": desc.name },
                        "spec": { "minReplicas": o.replicas, "maxReplicas": o.max_replicas },
                    }),
                )),
                Some(lag) => {
                    let mut scaler = infra::scaler(desc, lag, o.namespace);
                    scaler["spec"]["minReplicaCount"] = json!(o.replicas);
                    scaler["spec"]["maxReplicaCount"] = json!(o.max_replicas);
                    patches.push((format!("scaledobject-{}.yaml", desc.name), scaler));
                }
            }
        }
        patches.push((
            "postgres.yaml".into(),
            json!({
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Cluster",
                "metadata": { "name": "nubo-db" },
                "spec": { "instances": o.postgres_instances },
            }),
        ));
        let images: Vec<Value> = services
            .iter()
            .map(|d| json!({ "name": workloads::image(d.name), "newTag": o.tag }))
            .collect();
        let kustomization = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": o.namespace,
            // `bases` and `patchesStrategicMerge` are what kustomize v2 (Debian's kubectl, which CI
            // renders with) understands; kustomize v5 still reads them, with a deprecation note.
            "bases": ["../../base"],
            "resources": ["namespace.yaml"],
            "images": images,
            "patchesStrategicMerge": patches.iter().map(|(name, _)| format!("patches/{name}")).collect::<Vec<_>>(),
        });
        files.insert(format!("{dir}/kustomization.yaml"), yaml(&[kustomization]));
        files.insert(format!("{dir}/namespace.yaml"), yaml(&[namespace(&o)]));
        for (name, patch) in patches {
            files.insert(format!("{dir}/patches/{name}"), yaml(&[patch]));
        }
    }
    Ok(files)
}
