//! The drift guard: the Kubernetes manifests under deploy/kubernetes must agree with the code.
//! They are generated from the service descriptions, and this test checks them from the
//! outside too, so a hand edit or a generator bug is caught: every variable a manifest sets is
//! one the service reads, ports and probe paths are what the running service serves, every call
//! the code makes has its NetworkPolicy edge (and no other service may call in), KEDA scales on
//! consumers that exist, and pods get time to shut down gracefully.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn nubo() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nubo"));
    for (name, _) in std::env::vars() {
        if name.starts_with("NUBO_") {
            command.env_remove(name);
        }
    }
    command
}

fn services() -> Vec<Value> {
    let output = nubo().arg("services").output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every object of every YAML file under `dir`.
fn objects(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for document in serde_yaml_ng::Deserializer::from_str(&text) {
                let value = Value::deserialize(document).unwrap();
                if !value.is_null() {
                    out.push(value);
                }
            }
        }
    }
    out
}

fn base() -> Vec<Value> {
    objects(&root().join("deploy/kubernetes/base"))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn strs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_committed_manifests_are_what_the_code_generates() {
    let output = nubo()
        .args(["manifests", "--check", "--dir"])
        .arg(root().join("deploy/kubernetes"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_variable_a_manifest_sets_is_one_its_service_reads() {
    let objects = base();
    let config = find(&objects, "ConfigMap", "nubo-config").expect("the shared ConfigMap");
    let shared: Vec<String> = config["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut known: BTreeSet<String> = nubo_platform::config::PLATFORM_VARIABLES
        .iter()
        .map(|v| v.0.to_owned())
        .collect();
    known.extend(
        nubo_platform::config::SERVICES
            .iter()
            .map(|s| nubo_platform::config::url_variable(s.name)),
    );
    for service in services() {
        let name = service["name"].as_str().unwrap();
        let mut reads = known.clone();
        reads.extend(
            service["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_owned()),
        );
        let deployment = find(&objects, "Deployment", name)
            .unwrap_or_else(|| panic!("no Deployment for {name}"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let mut set: Vec<String> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect();
        if container["envFrom"][0]["configMapRef"]["name"] == "nubo-config" {
            set.extend(shared.iter().cloned());
        }
        for var in set {
            assert!(
                reads.contains(&var),
                "{name}'s manifest sets {var}, which {name} does not read"
            );
        }
    }
}

#[test]
fn ports_and_probe_paths_are_what_the_running_service_serves() {
    let objects = base();
    for service in services() {
        let name = service["name"].as_str().unwrap();
        let port = service["port"].as_u64().unwrap();
        // Where the service serves its probes and metrics: its port, or (the gateway) its own.
        let ops_port = service["ops_port"].as_u64();
        let probes_port = service["probes"]["port"].as_u64().unwrap();
        assert_eq!(probes_port, ops_port.unwrap_or(port), "{name}");
        let deployment = find(&objects, "Deployment", name).unwrap();
        let pod = &deployment["spec"]["template"];
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["ports"][0]["containerPort"], port, "{name}");
        let named_port = |port_name: &str| {
            container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == port_name)
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{name} has no container port named {port_name}"))
        };
        let svc =
            find(&objects, "Service", name).unwrap_or_else(|| panic!("no Service for {name}"));
        assert_eq!(svc["spec"]["ports"][0]["port"], port, "{name}");
        assert_eq!(
            pod["metadata"]["annotations"]["prometheus.io/port"],
            probes_port.to_string(),
            "{name}"
        );

        let mut paths: Vec<String> = Vec::new();
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &container[probe]["httpGet"];
            assert_eq!(
                named_port(get["port"].as_str().unwrap()),
                probes_port,
                "{name}'s {probe} probes where its probes are"
            );
            paths.push(get["path"].as_str().unwrap().to_owned());
        }
        paths.push(
            pod["metadata"]["annotations"]["prometheus.io/path"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        // Ask the service itself: run it and request every path a manifest names, where it says.
        let free = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let local = free();
        let data = tempfile::tempdir().unwrap();
        let mut command = nubo();
        command
            .args(["serve", name])
            .env("NUBO_MODE", "embedded")
            .env("NUBO_DATA_DIR", data.path())
            .env("NUBO_HTTP_ADDR", format!("127.0.0.1:{local}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut probed = local;
        if ops_port.is_some() {
            probed = free();
            command.env("NUBO_OPS_ADDR", format!("127.0.0.1:{probed}"));
        }
        let mut child = command.spawn().unwrap();
        let url = format!("http://127.0.0.1:{probed}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{url}/startupz"))
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "{name} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        for path in paths {
            let status = reqwest::blocking::get(format!("{url}{path}"))
                .unwrap()
                .status();
            assert_eq!(
                status, 200,
                "{name} answers {status} on {path}, which its manifest probes"
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The service names a NetworkPolicy rule's peers select.
fn peers(rules: &Value, direction: &str) -> Vec<(BTreeSet<String>, BTreeSet<u64>)> {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| {
            let names = rule[direction]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|peer| peer.get("namespaceSelector").is_none())
                .filter_map(|peer| {
                    peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect();
            let ports = rule["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_u64())
                .collect();
            (names, ports)
        })
        .collect()
}

#[test]
fn every_call_in_the_code_has_its_network_policy_edges_and_no_others() {
    let objects = base();
    let services = services();
    assert!(
        find(&objects, "NetworkPolicy", "default-deny").is_some(),
        "everything not allowed is denied"
    );
    let port_of = |name: &str| {
        services.iter().find(|s| s["name"] == name).unwrap()["port"]
            .as_u64()
            .unwrap()
    };
    for service in &services {
        let name = service["name"].as_str().unwrap();
        let policy = find(&objects, "NetworkPolicy", name)
            .unwrap_or_else(|| panic!("no NetworkPolicy for {name}"));
        let egress = peers(&policy["spec"]["egress"], "to");
        for callee in strs(&service["calls"]) {
            assert!(
                egress
                    .iter()
                    .any(|(names, ports)| names.contains(&callee)
                        && ports.contains(&port_of(&callee))),
                "{name} calls {callee} but may not reach it"
            );
            let theirs = find(&objects, "NetworkPolicy", &callee).unwrap();
            assert!(
                peers(&theirs["spec"]["ingress"], "from").iter().any(|(names, ports)| names.contains(name) && ports.contains(&port_of(&callee))),
                "{callee} does not accept {name}'s calls"
            );
        }
        // Exactly the edges: only declared callers may call in, and it calls only its callees.
        let callers: BTreeSet<String> = services
            .iter()
            .filter(|s| strs(&s["calls"]).iter().any(|c| c == name))
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        let shop: BTreeSet<String> = services
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        for (names, _) in peers(&policy["spec"]["ingress"], "from") {
            for peer in names.intersection(&shop) {
                assert!(
                    callers.contains(peer),
                    "{name} accepts calls from {peer}, which never calls it"
                );
            }
        }
        let callees: BTreeSet<String> = strs(&service["calls"]).into_iter().collect();
        for (names, _) in egress {
            for peer in names.intersection(&shop) {
                assert!(
                    callees.contains(peer),
                    "{name} may reach {peer}, which it never calls"
                );
            }
        }
    }
}

#[test]
fn keda_scales_only_on_consumers_that_exist() {
    let services = services();
    let mut all = base();
    for overlay in ["dev", "prod"] {
        all.extend(objects(
            &root().join(format!("deploy/kubernetes/overlays/{overlay}/patches")),
        ));
    }
    for scaler in all.iter().filter(|o| o["kind"] == "ScaledObject") {
        let name = scaler["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
        let service = services
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("KEDA scales unknown {name}"));
        let durables: Vec<&str> = service["consumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["durable"].as_str().unwrap())
            .collect();
        for trigger in scaler["spec"]["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "nats-jetstream")
        {
            let consumer = trigger["metadata"]["consumer"].as_str().unwrap();
            assert!(
                durables.contains(&consumer),
                "{name} has no consumer {consumer}"
            );
        }
    }
}

#[test]
fn pods_have_time_to_drain_before_they_are_killed() {
    let objects = base();
    let config = find(&objects, "ConfigMap", "nubo-config").unwrap();
    let shutdown: u64 = config["data"]["NUBO_SHUTDOWN_TIMEOUT_SECS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for service in services() {
        let name = service["name"].as_str().unwrap();
        let pod = &find(&objects, "Deployment", name).unwrap()["spec"]["template"]["spec"];
        let pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap();
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            pre_stop + shutdown < grace,
            "{name}: {pre_stop} s pause + {shutdown} s drain must end before {grace} s"
        );
    }
}

#[test]
fn redis_keeps_the_carts_on_a_volume_through_a_restart() {
    // Carts live in Redis: a pod that keeps nothing empties every cart when it restarts.
    let base = base();
    let config = find(&base, "ConfigMap", "redis-config").expect("redis-config");
    let conf = config["data"]["redis.conf"].as_str().unwrap();
    for line in ["appendonly yes", "dir /data", "maxmemory-policy noeviction"] {
        assert!(conf.lines().any(|l| l == line), "{line} in {conf}");
    }
    let redis = find(&base, "StatefulSet", "redis").expect("Redis runs as a StatefulSet");
    let claims = redis["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert!(claims.iter().any(|c| c["metadata"]["name"] == "data"));
    let mounts = &redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "data" && m["mountPath"] == "/data"),
        "{mounts}"
    );
    assert!(find(&base, "Deployment", "redis").is_none());
}
