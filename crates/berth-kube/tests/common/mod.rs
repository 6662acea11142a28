//! Loading the compose projects under tests/fixtures/kube/.
#![allow(dead_code)]

use berth_compose::{LoadOptions, Project};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `tests/fixtures/kube/<name>` in the workspace.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/kube")
        .join(name)
}

/// Every fixture project's directory name.
pub fn fixtures() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kube");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("compose.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Loads a fixture with exactly `env` as the environment (so `${VAR:-default}` takes the
/// default unless `env` sets VAR).
pub fn load_with(name: &str, env: &[(&str, &str)]) -> Project {
    let dir = fixture_dir(name);
    let opts = LoadOptions {
        files: vec![dir.join("compose.yaml")],
        cwd: dir.clone(),
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    };
    berth_compose::load(&opts).unwrap_or_else(|e| panic!("loading fixture {name}: {e}"))
}

/// Loads a fixture with only the variables the fixtures need (`API_TOKEN`, for the
/// configs-secrets project's `environment:` secret).
pub fn load(name: &str) -> Project {
    load_with(name, &[("API_TOKEN", "t0ken-for-tests")])
}
