//! Small helpers the benchmarks share: medians, timed commands, environment knobs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::process::{Command, Output, Stdio};

use crate::bundle::Bundle;
use std::time::Instant;

/// `$name` as a number, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

/// Run `c` to completion with stdin closed; (wall milliseconds, output).
pub fn timed(mut c: Command) -> (f64, Output) {
    let t = Instant::now();
    let o = c.stdin(Stdio::null()).output().unwrap();
    (t.elapsed().as_secs_f64() * 1000.0, o)
}

/// Fail the benchmark when a step it measures failed.
pub fn check(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The floor the engine benchmarks compare with: a bare `crun run` of the busybox bundle
/// running `true`. None when crun is not installed.
pub struct CrunFloor {
    crun: std::path::PathBuf,
    bundle: Bundle,
    root: tempfile::TempDir,
}

impl CrunFloor {
    pub fn new() -> Option<CrunFloor> {
        let crun = crate::find_in_path("crun")?;
        // crun 1.8 refuses a v2 hierarchy holding hugetlb; this moves it to v1 if needed.
        let _ = crate::fix_hybrid_hugetlb();
        let bundle = crate::busybox_bundle(&["true"]);
        // crun 1.8 takes runtime-spec 1.1.
        bundle.edit(|s| s["ociVersion"] = serde_json::json!("1.1.0"));
        let root = tempfile::tempdir().unwrap();
        Some(CrunFloor { crun, bundle, root })
    }

    /// One `crun run` of the bundle under a fresh container id.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.crun);
        c.arg("--root")
            .arg(self.root.path())
            .args(["run", "--bundle"])
            .arg(&self.bundle.dir)
            .arg(crate::unique_id("bench-crun"));
        c
    }
}

/// A bridge for a private dockerd (`--bridge=<it>`), so its containers get a veth like
/// berthd's do, without touching docker0: `<prefix><pid>` with `cidr` on it. Deleted on drop.
pub struct Bridge(pub String);

impl Bridge {
    pub fn create(prefix: &str, cidr: &str) -> Bridge {
        let name = format!("{prefix}{}", std::process::id() % 100_000);
        let _ = Command::new("ip")
            .args(["link", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        for args in [
            vec!["link", "add", "name", &name, "type", "bridge"],
            vec!["addr", "add", cidr, "dev", &name],
            vec!["link", "set", &name, "up"],
        ] {
            let o = Command::new("ip")
                .args(&args)
                .output()
                .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
            check(&format!("ip {}", args.join(" ")), &o);
        }
        Bridge(name)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
