//! The app+db fixture's YAML is pinned (tests/fixtures/kube/app-db/expected.yaml), and every
//! fixture's output is byte-identical across runs.
//!
//! After an intended change of output: `BERTH_UPDATE_GOLDEN=1 cargo test -p berth-kube
//! --test golden`, then review the diff of expected.yaml.

mod common;

use berth_kube::{generate, yaml, GenerateOptions};

#[test]
fn app_db_matches_golden_file() {
    let project = common::load("app-db");
    let m = generate(&project, &GenerateOptions::default()).expect("generate app-db");
    let got = yaml::to_stream(&m.objects);
    let path = common::fixture_dir("app-db").join("expected.yaml");
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden file");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (BERTH_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "output differs from {} from line {}:\n got: {:?}\nwant: {:?}\n(BERTH_UPDATE_GOLDEN=1 \
             rewrites it after an intended change)",
            path.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

#[test]
fn every_fixture_generates_identical_yaml_twice() {
    for name in common::fixtures() {
        let opts = GenerateOptions {
            namespace: Some("stable".into()),
            ..Default::default()
        };
        let a = generate(&common::load(&name), &opts).expect("generate");
        let b = generate(&common::load(&name), &opts).expect("generate");
        assert_eq!(a, b, "{name}: objects differ between runs");
        let (ya, yb) = (yaml::to_stream(&a.objects), yaml::to_stream(&b.objects));
        assert!(!ya.is_empty());
        assert_eq!(ya, yb, "{name}: YAML differs between runs");
        assert_eq!(
            a.warnings, b.warnings,
            "{name}: warnings differ between runs"
        );
    }
}
