//! The runtime's cgroup v2 code, end to end, on whatever host runs the suite.
//!
//! CI machines are cgroup v1 hybrids: the v1 controllers are in use, but a cgroup2 hierarchy is
//! mounted at /sys/fs/cgroup/unified (without resource controllers). berth-runtime can be
//! pointed at a cgroup2 mount with `BERTH_CGROUP2_ROOT`, which exercises everything v2 does
//! without controllers: joining through `cgroup.procs`, the cgroup namespace, the eBPF device
//! filter, `cgroup.freeze`, `cgroup.kill`, stats and removal. Berth-only (runc has no such
//! switch).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use berth_tests::{busybox_bundle, require_root, unique_id, Runtime};
use serde_json::json;

/// The cgroup2 mount to use, or None (after printing why).
fn setup(test: &str) -> Option<(Runtime, PathBuf)> {
    if !require_root(test) {
        return None;
    }
    let rt = Runtime::new();
    if !rt.is_berth() {
        eprintln!("skipped: {test} drives berth-runtime's BERTH_CGROUP2_ROOT switch");
        return None;
    }
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| is_cgroup2(p));
    let Some(root) = root else {
        eprintln!("skipped: {test}: no cgroup2 mount on this host");
        return None;
    };
    // Every runtime command in this test binary uses it.
    std::env::set_var("BERTH_CGROUP2_ROOT", &root);
    Some((rt, root))
}

fn is_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?} stdout {:?} stderr {:?}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[test]
fn v2_cgroup_namespace_and_device_filter() {
    let Some((rt, root)) = setup("v2_cgroup_namespace_and_device_filter") else {
        return;
    };
    // 1:11 (/dev/kmsg) is neither in the spec's allow list nor among the devices the runtime
    // allows for itself: mknod is allowed ("c *:* m"), opening it must be refused by the eBPF
    // program (the host's v1 device cgroup allows everything for this process).
    let b = busybox_bundle(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup | grep '^0::'; \
         mknod /tmp/kmsg c 1 11 && echo mknod-ok; \
         head -c 1 /tmp/kmsg >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied; \
         echo x > /dev/null && echo null-ok",
    ]);
    let cg = b.cgroups_path.clone();
    let id = unique_id("v2dev");
    let out = ok(&rt.run(&id, &b));
    assert!(out.contains("0::/\n"), "cgroup namespace root: {out}");
    assert!(out.contains("mknod-ok"), "{out}");
    assert!(out.contains("kmsg-denied"), "device filter: {out}");
    assert!(out.contains("null-ok"), "{out}");
    let dir = root.join(cg.trim_start_matches('/'));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn v2_freeze_kill_stats_delete() {
    let Some((rt, root)) = setup("v2_freeze_kill_stats_delete") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    let dir = root.join(b.cgroups_path.trim_start_matches('/'));
    let id = unique_id("v2life");
    rt.create_and_start(&id, &b);
    assert!(dir.is_dir(), "{} not created", dir.display());
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().count() >= 1, "cgroup.procs: {procs:?}");

    ok(&rt.pause(&id));
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.contains("frozen 1"), "cgroup.events: {events}");
    ok(&rt.resume(&id));
    assert_eq!(rt.status(&id).as_deref(), Some("running"));

    let stats = ok(&rt.cmd(&["events", "--stats", &id]).output().unwrap());
    let v: serde_json::Value = serde_json::from_str(stats.trim()).unwrap();
    assert_eq!(v["type"], json!("stats"));
    assert!(
        v["data"]["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );

    // The three processes wait for a signal pid 1 alone would not pass on: kill --all
    // (cgroup.kill on v2) must reach every one.
    ok(&rt.cmd(&["kill", "--all", &id, "KILL"]).output().unwrap());
    assert!(rt.wait_status(&id, "stopped", Duration::from_secs(10)));
    ok(&rt.delete(&id, false));
    assert!(!dir.exists(), "{} left behind", dir.display());
}
