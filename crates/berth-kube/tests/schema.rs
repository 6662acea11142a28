//! The generated manifests against the official Kubernetes OpenAPI-derived JSON schemas
//! (PyPI `kubernetes-validate`, strict: unknown fields are errors), for Kubernetes 1.33.
//!
//! The validator is installed by `.ci/setup` into /opt/berth-kube-validate;
//! `BERTH_KUBE_VALIDATE` names another binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

mod common;

use berth_compose::model::{FileObject, FileRef, FileSource, Service, ServiceNetwork};
use berth_compose::Project;
use berth_kube::generate::ServiceType;
use berth_kube::{generate, yaml, GenerateOptions, Object};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const KUBE_VERSION: &str = "1.33.0";
const SETUP: &str = "bash .ci/setup (it installs kubernetes-validate==1.37.0 into \
                     /opt/berth-kube-validate)";

fn validator() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_KUBE_VALIDATE") {
        return PathBuf::from(p);
    }
    let default = PathBuf::from("/opt/berth-kube-validate/bin/kubernetes-validate");
    if default.is_file() {
        return default;
    }
    let on_path = Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return PathBuf::from("kubernetes-validate");
    }
    panic!(
        "kubernetes-validate is not installed ({} not found, none on PATH): run {SETUP}",
        default.display()
    );
}

/// Runs the validator on `files`: (success, combined output).
fn validate(files: &[PathBuf]) -> (bool, String) {
    let bin = validator();
    let out = Command::new(&bin)
        .args(["--strict", "-k", KUBE_VERSION])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; install it with {SETUP}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes the objects one per file and as one stream, validates both, and checks every object
/// was reported as passing.
fn assert_valid(what: &str, objects: &[Object]) {
    assert!(!objects.is_empty(), "{what}: no objects");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = yaml::write_dir(objects, dir.path()).expect("write_dir");
    assert_eq!(files.len(), objects.len(), "{what}: one file per object");
    let stream = dir.path().join("all.yaml");
    std::fs::write(&stream, yaml::to_stream(objects)).expect("write stream");
    files.push(stream);

    let (ok, out) = validate(&files);
    assert!(
        ok,
        "{what}: kubernetes-validate rejected the manifests:\n{out}"
    );
    assert!(
        !out.contains("ERROR") && !out.to_lowercase().contains("did not validate"),
        "{what}: errors reported:\n{out}"
    );
    // Every object is checked twice (its own file and the stream), not skipped.
    let passed = out.matches(" passed for resource ").count();
    assert_eq!(
        passed,
        objects.len() * 2,
        "{what}: expected every object to pass validation:\n{out}"
    );
}

fn option_sets() -> Vec<(&'static str, GenerateOptions)> {
    vec![
        ("defaults", GenerateOptions::default()),
        (
            "nodeport+namespace",
            GenerateOptions {
                namespace: Some("berth-test".into()),
                service_type: ServiceType::NodePort,
                ..Default::default()
            },
        ),
        (
            "loadbalancer+storage",
            GenerateOptions {
                namespace: Some("lb".into()),
                service_type: ServiceType::LoadBalancer,
                storage_class: Some("fast-ssd".into()),
                volume_size: Some("5Gi".into()),
                images: BTreeMap::from([(
                    "app".to_string(),
                    "registry.example/shop-app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string(),
                )]),
            },
        ),
    ]
}

#[test]
fn every_fixture_passes_the_kubernetes_schemas() {
    let fixtures = common::fixtures();
    assert!(
        fixtures.len() >= 3,
        "expected the fixture projects under tests/fixtures/kube, found {fixtures:?}"
    );
    for name in fixtures {
        let project = common::load(&name);
        for (label, opts) in option_sets() {
            let m = generate(&project, &opts)
                .unwrap_or_else(|e| panic!("{name} ({label}): generate: {e}"));
            assert_valid(&format!("{name} ({label})"), &m.objects);
        }
    }
}

/// configs and secrets built directly (every source kind), whatever the loader supports.
#[test]
fn configs_and_secrets_pass_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("app.conf");
    std::fs::write(&conf, "listen = 8080\n").expect("write");
    let bin = dir.path().join("blob.bin");
    std::fs::write(&bin, [0xffu8, 0xfe, 0x00, 0x01]).expect("write");

    let fo = |name: &str, source: FileSource| FileObject {
        name: name.to_string(),
        source,
        labels: BTreeMap::new(),
    };
    let fr = |source: &str, target: &str, mode: Option<u32>| FileRef {
        source: source.to_string(),
        target: target.to_string(),
        uid: None,
        gid: None,
        mode,
    };
    let svc = Service {
        name: "app".into(),
        image: Some("example/app:1".into()),
        replicas: 2,
        expose: vec!["8080".into()],
        networks: BTreeMap::from([("default".to_string(), ServiceNetwork::default())]),
        configs: vec![
            fr("app_conf", "/etc/app/app.conf", Some(0o440)),
            fr("blob", "/data/blob.bin", None),
            fr("motd", "/etc/motd", None),
            fr("shared", "/etc/shared.conf", None),
        ],
        secrets: vec![
            fr("db_password", "/run/secrets/db_password", Some(0o400)),
            fr("token", "/run/secrets/token", None),
            fr("cloud", "/run/secrets/cloud", None),
        ],
        ..Default::default()
    };
    let project = Project {
        name: "files".into(),
        working_dir: dir.path().to_path_buf(),
        files: vec![],
        services: BTreeMap::from([("app".to_string(), svc)]),
        disabled: BTreeMap::new(),
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        configs: BTreeMap::from([
            (
                "app_conf".to_string(),
                fo("files_app_conf", FileSource::File(conf)),
            ),
            ("blob".to_string(), fo("files_blob", FileSource::File(bin))),
            (
                "motd".to_string(),
                fo("files_motd", FileSource::Content("hi\n".into())),
            ),
            (
                "shared".to_string(),
                fo("shared-conf", FileSource::External(true)),
            ),
        ]),
        secrets: BTreeMap::from([
            (
                "db_password".to_string(),
                fo(
                    "files_db_password",
                    FileSource::Environment {
                        var: "DB_PASSWORD".into(),
                        value: Some("hunter2".into()),
                    },
                ),
            ),
            (
                "token".to_string(),
                fo("files_token", FileSource::Content("t".into())),
            ),
            (
                "cloud".to_string(),
                fo("cloud-creds", FileSource::External(true)),
            ),
        ]),
        warnings: vec![],
    };
    let m = generate(&project, &GenerateOptions::default()).expect("generate");
    let kinds: Vec<(&str, &str)> = m.objects.iter().map(|o| (o.kind(), o.name())).collect();
    assert!(kinds.contains(&("ConfigMap", "files-blob")), "{kinds:?}");
    assert!(
        kinds.contains(&("Secret", "files-db-password")),
        "{kinds:?}"
    );
    assert_valid("built configs+secrets", &m.objects);
}

/// The check can fail: an unknown field and a wrongly typed one are rejected.
#[test]
fn the_schema_check_rejects_invalid_objects() {
    let project = common::load("app-db");
    let m = generate(&project, &GenerateOptions::default()).expect("generate");
    let deployment = m.get("Deployment", "web").expect("the web Deployment");
    let good = yaml::to_document(deployment).expect("yaml");
    let dir = tempfile::tempdir().expect("temp dir");

    let unknown = good.replacen("  replicas: ", "  replicaz: ", 1);
    assert_ne!(unknown, good);
    let wrong_type = good.replacen("containerPort: 80\n", "containerPort: eighty\n", 1);
    assert_ne!(wrong_type, good);
    let ok_path = write(dir.path(), "good.yaml", &good);
    let (ok, out) = validate(&[ok_path]);
    assert!(ok, "the unmodified Deployment should pass:\n{out}");

    for (name, text, field) in [
        ("unknown-field.yaml", unknown, "replicaz"),
        ("wrong-type.yaml", wrong_type, "eighty"),
    ] {
        let path = write(dir.path(), name, &text);
        let (ok, out) = validate(&[path]);
        assert!(
            !ok,
            "{name}: the validator accepted an invalid object:\n{out}"
        );
        assert!(
            out.contains(field),
            "{name}: the error should name {field}:\n{out}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}
