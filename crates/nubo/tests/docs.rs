//! The README and the service descriptions must not drift from the code: every variable nubo
//! reads is documented, and every service listens where the platform's port table says.

use std::process::Command;

use serde_json::Value;

fn services() -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_nubo"))
        .arg("services")
        .output()
        .unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_readme_documents_every_variable() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut names: Vec<String> = nubo_platform::config::PLATFORM_VARIABLES
        .iter()
        .map(|v| v.0.to_owned())
        .collect();
    for service in services() {
        for var in service["env"].as_array().unwrap() {
            names.push(var["name"].as_str().unwrap().to_owned());
        }
    }
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md does not document {name}"
        );
    }
}

#[test]
fn every_service_listens_on_its_port_in_the_platform_table() {
    for service in services() {
        let name = service["name"].as_str().unwrap();
        let expected = nubo_platform::config::ports_of(name).map(|s| s.port);
        assert_eq!(
            Some(service["port"].as_u64().unwrap() as u16),
            expected,
            "{name}"
        );
        for target in service["calls"].as_array().unwrap() {
            let target = target.as_str().unwrap();
            assert!(
                nubo_platform::config::default_url(target).is_some(),
                "{name} calls unknown {target}"
            );
        }
    }
}
