//! Cgroup tests: fake cgroupfs trees in a temp dir for both layouts (no root needed), and
//! root tests on this host's real v1 hierarchies and its v2 hierarchy (device eBPF filter).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_runtime::cgroups::{Cgroup, Layout};
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "berth-cgtest-{}-{name}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let p = PathBuf::from(p.to_string_lossy().replace([' ', '{', '}', ':', ','], "_"));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn put(dir: &Path, file: &str, content: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), content).unwrap();
}

fn get(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

// ---------------------------------------------------------------------------------------------
// Fake cgroupfs: v2
// ---------------------------------------------------------------------------------------------

fn fake_v2(name: &str) -> (TempDir, Cgroup, PathBuf) {
    let t = TempDir::new(name);
    put(&t.0, "cgroup.controllers", "memory\n");
    put(&t.0, "cgroup.subtree_control", "");
    let cg = Cgroup::resolve_at(&t.0, Layout::V2, Some("/berth/c1"), "c1").unwrap();
    cg.create().unwrap();
    let leaf = t.0.join("berth/c1");
    assert!(leaf.is_dir());
    for f in [
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "pids.max",
        "io.weight",
        "hugetlb.2MB.max",
        "cpuset.cpus",
        "cpuset.mems",
        "memory.oom.group",
        "cgroup.procs",
        "cgroup.freeze",
    ] {
        put(&leaf, f, "");
    }
    (t, cg, leaf)
}

#[test]
fn cgroup_fake_v2_create_enables_controllers() {
    let (t, cg, _leaf) = fake_v2("v2create");
    assert_eq!(cg.layout(), Layout::V2);
    assert_eq!(cg.path(), "/berth/c1");
    assert_eq!(get(&t.0, "cgroup.subtree_control"), "+memory");
    assert_eq!(cg.dirs(), vec![t.0.join("berth/c1")]);
}

#[test]
fn cgroup_fake_v2_apply_writes_expected_files() {
    let (_t, cg, leaf) = fake_v2("v2apply");
    cg.apply(&resources(
        r#"{"memory":{"limit":33554432,"reservation":16777216,"swap":67108864},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
            "pids":{"limit":5},
            "blockIO":{"weight":500},
            "hugepageLimits":[{"pageSize":"2MB","limit":2097152}],
            "unified":{"memory.oom.group":"1"}}"#,
    ))
    .unwrap();
    assert_eq!(get(&leaf, "memory.max"), "33554432");
    assert_eq!(get(&leaf, "memory.low"), "16777216");
    assert_eq!(get(&leaf, "memory.swap.max"), "33554432");
    assert_eq!(get(&leaf, "cpu.weight"), "39");
    assert_eq!(get(&leaf, "cpu.max"), "50000 100000");
    assert_eq!(get(&leaf, "pids.max"), "5");
    assert_eq!(get(&leaf, "io.weight"), "default 4950");
    assert_eq!(get(&leaf, "hugetlb.2MB.max"), "2097152");
    assert_eq!(get(&leaf, "cpuset.cpus"), "0");
    assert_eq!(get(&leaf, "memory.oom.group"), "1");

    // Unlimited values; a period-only update keeps the quota.
    cg.apply(&resources(
        r#"{"memory":{"limit":-1,"swap":-1},"pids":{"limit":0},"cpu":{"period":20000}}"#,
    ))
    .unwrap();
    assert_eq!(get(&leaf, "memory.max"), "max");
    assert_eq!(get(&leaf, "memory.swap.max"), "max");
    assert_eq!(get(&leaf, "pids.max"), "max");
    assert_eq!(get(&leaf, "cpu.max"), "50000 20000");
    cg.apply(&resources(r#"{"cpu":{"quota":-1},"pids":{"limit":-1}}"#))
        .unwrap();
    assert_eq!(get(&leaf, "cpu.max"), "max");
    assert_eq!(get(&leaf, "pids.max"), "max");
}

#[test]
fn cgroup_fake_v2_apply_errors() {
    let (_t, cg, leaf) = fake_v2("v2err");
    // Unified keys: no '/', file must exist.
    let e = cg
        .apply(&resources(r#"{"unified":{"../memory.max":"1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no '/'"), "{e}");
    let e = cg
        .apply(&resources(r#"{"unified":{"io.latency":"1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("io.latency") && e.contains("does not exist"),
        "{e}"
    );
    // Swap below the memory limit.
    assert!(cg
        .apply(&resources(r#"{"memory":{"limit":100,"swap":50}}"#))
        .is_err());
    // A failed write names the file and the value.
    fs::remove_file(leaf.join("pids.max")).unwrap();
    let e = cg
        .apply(&resources(r#"{"pids":{"limit":7}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pids.max") && e.contains("\"7\""), "{e}");
    // Bad hugepage size cannot become a path.
    assert!(cg
        .apply(&resources(
            r#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#
        ))
        .is_err());
}

#[test]
fn cgroup_fake_v2_stats_freeze_and_state_roundtrip() {
    let (_t, cg, leaf) = fake_v2("v2stats");
    put(
        &leaf,
        "cpu.stat",
        "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 40\n",
    );
    put(&leaf, "memory.current", "4096\n");
    put(&leaf, "memory.max", "max\n");
    put(&leaf, "memory.peak", "8192\n");
    put(
        &leaf,
        "memory.events",
        "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
    );
    put(&leaf, "memory.stat", "anon 1024\nfile 3072\n");
    put(&leaf, "memory.swap.current", "100\n");
    put(&leaf, "memory.swap.max", "1000\n");
    put(&leaf, "pids.current", "3\n");
    put(&leaf, "pids.max", "max\n");
    put(
        &leaf,
        "io.stat",
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 2_000_000);
    assert_eq!(s.cpu.usage.user, 1_500_000);
    assert_eq!(s.cpu.usage.kernel, 500_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 3);
    assert_eq!(s.cpu.throttling.throttled_time, 40_000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 2);
    assert_eq!(s.memory.cache, 3072);
    assert_eq!(s.memory.raw.get("anon"), Some(&1024));
    assert_eq!(s.memory.swap.usage, 4196);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.pids.limit, 0);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_service_bytes_recursive[1].value, 20);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["cpu"]["throttling"]["throttledPeriods"], 3);
    assert_eq!(json["memory"]["usage"]["usage"], 4096);

    // Without cgroup.events the requested state in cgroup.freeze is used.
    cg.freeze().unwrap();
    assert_eq!(get(&leaf, "cgroup.freeze"), "1");
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    // The state file form reopens the same cgroup.
    let saved = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&saved).unwrap();
    assert_eq!(back, cg);
    assert_eq!(back.stats().unwrap().pids.current, 3);
}

// ---------------------------------------------------------------------------------------------
// Fake cgroupfs: v1
// ---------------------------------------------------------------------------------------------

const V1_DIRS: &[&str] = &[
    "memory",
    "cpu,cpuacct",
    "cpuset",
    "pids",
    "devices",
    "freezer",
    "blkio",
];

fn fake_v1(name: &str) -> (TempDir, Cgroup) {
    let t = TempDir::new(name);
    for d in V1_DIRS {
        put(&t.0.join(d), "cgroup.procs", "");
    }
    // Non-controller entries that must be ignored.
    fs::create_dir_all(t.0.join("unified")).unwrap();
    fs::create_dir_all(t.0.join("systemd")).unwrap();
    std::os::unix::fs::symlink("cpu,cpuacct", t.0.join("cpu")).unwrap();
    // cpuset: the root has values, the levels below start empty (as the kernel does).
    put(&t.0.join("cpuset"), "cpuset.cpus", "0-1\n");
    put(&t.0.join("cpuset"), "cpuset.mems", "0\n");
    for lvl in ["cpuset/berth", "cpuset/berth/c1"] {
        put(&t.0.join(lvl), "cpuset.cpus", "\n");
        put(&t.0.join(lvl), "cpuset.mems", "\n");
    }
    let cg = Cgroup::resolve_at(&t.0, Layout::V1, None, "c1").unwrap();
    cg.create().unwrap();
    (t, cg)
}

#[test]
fn cgroup_fake_v1_resolve_and_create() {
    let (t, cg) = fake_v1("v1create");
    assert_eq!(cg.layout(), Layout::V1);
    assert_eq!(cg.path(), "/berth/c1");
    let mut dirs = cg.dirs();
    dirs.sort();
    let mut want: Vec<PathBuf> = V1_DIRS
        .iter()
        .map(|d| t.0.join(d).join("berth/c1"))
        .collect();
    want.sort();
    assert_eq!(dirs, want);
    for d in &dirs {
        assert!(d.is_dir(), "{}", d.display());
    }
    assert_eq!(cg.dir("cpuacct"), Some(t.0.join("cpu,cpuacct/berth/c1")));
    assert_eq!(cg.dir("net_cls"), None);
    // cpuset initialised from the parent at every level.
    assert_eq!(get(&t.0.join("cpuset/berth"), "cpuset.cpus"), "0-1");
    assert_eq!(get(&t.0.join("cpuset/berth/c1"), "cpuset.cpus"), "0-1");
    assert_eq!(get(&t.0.join("cpuset/berth/c1"), "cpuset.mems"), "0");
}

#[test]
fn cgroup_fake_v1_apply_writes_expected_files() {
    let (t, cg) = fake_v1("v1apply");
    let mem = t.0.join("memory/berth/c1");
    for f in [
        "memory.soft_limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
    ] {
        put(&mem, f, "");
    }
    put(&mem, "memory.limit_in_bytes", "9223372036854771712\n");
    let cpu = t.0.join("cpu,cpuacct/berth/c1");
    for f in ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"] {
        put(&cpu, f, "");
    }
    put(&t.0.join("pids/berth/c1"), "pids.max", "");
    put(&t.0.join("blkio/berth/c1"), "blkio.weight", "");
    let dev = t.0.join("devices/berth/c1");
    put(&dev, "devices.allow", "");
    put(&dev, "devices.deny", "");

    cg.apply(&resources(
        r#"{"memory":{"limit":33554432,"reservation":16777216,"swap":67108864,"swappiness":10,"disableOOMKiller":true},
            "cpu":{"shares":512,"quota":25000,"period":100000,"cpus":"1"},
            "pids":{"limit":5},
            "blockIO":{"weight":300},
            "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
    ))
    .unwrap();
    assert_eq!(get(&mem, "memory.limit_in_bytes"), "33554432");
    assert_eq!(get(&mem, "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(get(&mem, "memory.soft_limit_in_bytes"), "16777216");
    assert_eq!(get(&mem, "memory.swappiness"), "10");
    assert_eq!(get(&mem, "memory.oom_control"), "1");
    assert_eq!(get(&cpu, "cpu.shares"), "512");
    assert_eq!(get(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "25000");
    assert_eq!(get(&t.0.join("cpuset/berth/c1"), "cpuset.cpus"), "1");
    assert_eq!(get(&t.0.join("pids/berth/c1"), "pids.max"), "5");
    assert_eq!(get(&t.0.join("blkio/berth/c1"), "blkio.weight"), "300");
    // Each write truncates: the files hold the last line written.
    assert_eq!(get(&dev, "devices.deny"), "a *:* rwm");
    assert_eq!(get(&dev, "devices.allow"), "c 1:3 rwm");

    cg.apply(&resources(r#"{"pids":{"limit":-1},"cpu":{"quota":-1}}"#))
        .unwrap();
    assert_eq!(get(&t.0.join("pids/berth/c1"), "pids.max"), "max");
    assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "-1");

    // v1-only errors.
    let e = cg
        .apply(&resources(r#"{"unified":{"memory.high":"1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cgroup v2"), "{e}");
    assert!(cg
        .apply(&resources(r#"{"memory":{"swappiness":101}}"#))
        .is_err());
    let e = cg
        .apply(&resources(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("hugetlb"), "{e}");
}

#[test]
fn cgroup_fake_v1_stats_and_freeze() {
    let (t, cg) = fake_v1("v1stats");
    let mem = t.0.join("memory/berth/c1");
    put(&mem, "memory.usage_in_bytes", "1048576\n");
    put(&mem, "memory.max_usage_in_bytes", "2097152\n");
    put(&mem, "memory.limit_in_bytes", "33554432\n");
    put(&mem, "memory.failcnt", "4\n");
    put(&mem, "memory.memsw.usage_in_bytes", "1048576\n");
    put(&mem, "memory.memsw.limit_in_bytes", "67108864\n");
    put(
        &mem,
        "memory.stat",
        "cache 4096\nrss 8192\ntotal_rss 8192\n",
    );
    let cpu = t.0.join("cpu,cpuacct/berth/c1");
    put(&cpu, "cpuacct.usage", "123456789\n");
    put(&cpu, "cpuacct.usage_percpu", "100000000 23456789 \n");
    put(&cpu, "cpuacct.stat", "user 7\nsystem 3\n");
    put(
        &cpu,
        "cpu.stat",
        "nr_periods 5\nnr_throttled 2\nthrottled_time 999\n",
    );
    let pids = t.0.join("pids/berth/c1");
    put(&pids, "pids.current", "2\n");
    put(&pids, "pids.max", "5\n");
    put(
        &t.0.join("blkio/berth/c1"),
        "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 512\n8:0 Write 1024\n8:0 Total 1536\nTotal 1536\n",
    );
    let s = cg.stats().unwrap();
    assert_eq!(s.memory.usage.usage, 1_048_576);
    assert_eq!(s.memory.usage.max, 2_097_152);
    assert_eq!(s.memory.usage.limit, 33_554_432);
    assert_eq!(s.memory.usage.failcnt, 4);
    assert_eq!(s.memory.swap.limit, 67_108_864);
    assert_eq!(s.memory.cache, 4096);
    assert_eq!(s.memory.raw.get("rss"), Some(&8192));
    assert_eq!(s.cpu.usage.total, 123_456_789);
    assert_eq!(s.cpu.usage.percpu, vec![100_000_000, 23_456_789]);
    // cpuacct.stat is in USER_HZ ticks (100 on Linux).
    assert_eq!(s.cpu.usage.user, 70_000_000);
    assert_eq!(s.cpu.usage.kernel, 30_000_000);
    assert_eq!(s.cpu.throttling.periods, 5);
    assert_eq!(s.cpu.throttling.throttled_time, 999);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 5);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
    assert_eq!(s.blkio.io_service_bytes_recursive[0].op, "Read");

    put(&t.0.join("freezer/berth/c1"), "freezer.state", "THAWED\n");
    assert!(!cg.is_frozen().unwrap());
    cg.freeze().unwrap();
    assert_eq!(
        get(&t.0.join("freezer/berth/c1"), "freezer.state"),
        "FROZEN"
    );
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert_eq!(
        get(&t.0.join("freezer/berth/c1"), "freezer.state"),
        "THAWED"
    );

    put(&t.0.join("pids/berth/c1"), "cgroup.procs", "42\n7\n");
    put(&t.0.join("pids/berth/c1/sub"), "cgroup.procs", "99\n");
    assert_eq!(cg.pids().unwrap(), vec![7, 42, 99]);
}

#[test]
fn cgroup_resolve_rejects_escapes_and_maps_systemd() {
    let (t, _cg) = fake_v1("v1resolve");
    for bad in ["../escape", "/berth/../../etc", "/", "a/.."] {
        let e = Cgroup::resolve_at(&t.0, Layout::V1, Some(bad), "c1");
        assert!(e.is_err(), "{bad:?} accepted");
    }
    let cg = Cgroup::resolve_at(&t.0, Layout::V2, Some("user-1000.slice:berth:abc"), "c1").unwrap();
    assert_eq!(cg.path(), "/user.slice/user-1000.slice/berth-abc.scope");
    assert_eq!(
        cg.dirs(),
        vec![t.0.join("user.slice/user-1000.slice/berth-abc.scope")]
    );
    let cg = Cgroup::resolve_at(&t.0, Layout::V1, Some("relative/x"), "c1").unwrap();
    assert_eq!(cg.dir("memory"), Some(t.0.join("memory/relative/x")));
}

// ---------------------------------------------------------------------------------------------
// Root tests on the real hierarchies
// ---------------------------------------------------------------------------------------------

fn host_v1() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root");
    }
    match Layout::detect() {
        Ok(Layout::V1) => None,
        Ok(Layout::V2) => Some("host is cgroup v2 only"),
        Err(_) => Some("no /sys/fs/cgroup"),
    }
}

fn unique(name: &str) -> String {
    format!("/berth-test-{}-{name}", std::process::id())
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn proc_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

#[test]
fn cgroup_root_v1_lifecycle() {
    if let Some(why) = host_v1() {
        println!("skipped: {why}");
        return;
    }
    let path = unique("life");
    let cg = Cgroup::resolve(Some(&path), "life").unwrap();
    assert_eq!(cg.layout(), Layout::V1);
    cg.create().unwrap();
    let cleanup = Cleanup(cg.clone());
    cg.apply(&resources(
        r#"{"memory":{"limit":33554432},"pids":{"limit":5}}"#,
    ))
    .unwrap();
    let mem = cg.dir("memory").unwrap();
    assert_eq!(get(&mem, "memory.limit_in_bytes"), "33554432");
    assert_eq!(get(&cg.dir("pids").unwrap(), "pids.max"), "5");

    // A kernel rejection names the file and the value.
    let e = cg
        .apply(&resources(r#"{"cpu":{"cpus":"999"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cpuset.cpus") && e.contains("\"999\""), "{e}");

    // The shell joins the cgroup before exec'ing sleep, so sleep's memory is charged here.
    let mut child = Command::new("sh")
        .args(["-c", "read x; exec sleep 30"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    wait_until("sleep exec", || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    assert!(cg.pids().unwrap().contains(&pid));
    for d in cg.dirs() {
        assert!(
            get(&d, "cgroup.procs")
                .lines()
                .any(|l| l == pid.to_string()),
            "{pid} not in {}",
            d.display()
        );
    }

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert_eq!(get(&cg.dir("freezer").unwrap(), "freezer.state"), "FROZEN");
    let st = proc_state(pid);
    assert!(matches!(st, Some('D') | Some('S') | Some('T')), "{st:?}");
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    let s = cg.stats().unwrap();
    assert!(s.memory.usage.usage > 0, "{:?}", s.memory);
    assert_eq!(s.memory.usage.limit, 33_554_432);
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 5);
    assert!(!s.memory.raw.is_empty());

    cg.kill_all(Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    wait_until("cgroup empty", || cg.pids().is_ok_and(|p| p.is_empty()));

    cg.destroy().unwrap();
    for d in cg.dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // Destroying again is fine.
    cg.destroy().unwrap();
    drop(cleanup);
}

#[test]
fn cgroup_root_v1_devices_list() {
    if let Some(why) = host_v1() {
        println!("skipped: {why}");
        return;
    }
    let cg = Cgroup::resolve(Some(&unique("devlist")), "devlist").unwrap();
    if cg.dir("devices").is_none() {
        println!("skipped: no v1 devices controller");
        return;
    }
    cg.create().unwrap();
    let _cleanup = Cleanup(cg.clone());
    // deny all, allow 1:3 and 1:5, then deny write on 1:5 (a deny after an allow).
    cg.apply(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":5,"access":"w"}]}"#,
    ))
    .unwrap();
    let list = get(&cg.dir("devices").unwrap(), "devices.list");
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["c 1:3 rwm", "c 1:5 rm"]);
}

#[test]
fn cgroup_root_v1_pids_limit_stops_fork() {
    if let Some(why) = host_v1() {
        println!("skipped: {why}");
        return;
    }
    let cg = Cgroup::resolve(Some(&unique("pids")), "pids").unwrap();
    cg.create().unwrap();
    let _cleanup = Cleanup(cg.clone());
    cg.apply(&resources(r#"{"pids":{"limit":3}}"#)).unwrap();

    let (rd, wr) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only makes raw system calls (read, fork, pause, _exit).
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            use std::os::fd::AsRawFd;
            let mut b = [0u8; 1];
            // SAFETY: raw syscalls on valid fds/buffers in the forked child.
            unsafe {
                libc::close(wr.as_raw_fd());
                libc::read(rd.as_raw_fd(), b.as_mut_ptr().cast(), 1);
                let mut n = 0;
                loop {
                    let p = libc::fork();
                    if p == 0 {
                        libc::pause();
                        libc::_exit(0);
                    }
                    if p < 0 {
                        let e = *libc::__errno_location();
                        libc::_exit(if e == libc::EAGAIN { n } else { 100 + e });
                    }
                    n += 1;
                    if n > 10 {
                        libc::_exit(99);
                    }
                }
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(rd);
            cg.add_pid(child.as_raw()).unwrap();
            nix::unistd::write(&wr, b"g").unwrap();
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            cg.kill_all(Signal::SIGKILL).unwrap();
            wait_until("grandchildren gone", || {
                cg.pids().is_ok_and(|p| p.is_empty())
            });
            // The child itself plus two forks reach the limit of 3; the third fork fails.
            assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 2));
        }
    }
}

/// Removes the cgroup even when an assertion fails (kills what is left first).
struct Cleanup(Cgroup);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.kill_all(Signal::SIGKILL);
        let _ = self.0.destroy();
    }
}

const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn v2_hierarchy() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root");
    }
    if Path::new(UNIFIED).join("cgroup.procs").exists() {
        return None;
    }
    if Layout::detect().is_ok_and(|l| l == Layout::V2) {
        return None;
    }
    Some("no cgroup v2 hierarchy at /sys/fs/cgroup/unified")
}

fn v2_root() -> &'static str {
    if Path::new(UNIFIED).join("cgroup.procs").exists() {
        UNIFIED
    } else {
        "/sys/fs/cgroup"
    }
}

#[test]
fn cgroup_root_bpf_loads_docker_defaults() {
    if !is_root() {
        println!("skipped: needs root");
        return;
    }
    let rules = berth_runtime::cgroups::docker_default_rules();
    let prog = berth_runtime::cgroups::bpf_program(&rules);
    // The kernel verifier accepts it.
    assert!(berth_runtime::cgroups::load_program(&prog).is_ok());
}

#[test]
fn cgroup_root_v2_device_filter() {
    if let Some(why) = v2_hierarchy() {
        println!("skipped: {why}");
        return;
    }
    let root = Path::new(v2_root());
    let cg = Cgroup::resolve_at(root, Layout::V2, Some(&unique("dev")), "dev").unwrap();
    cg.create().unwrap();
    let _cleanup = Cleanup(cg.clone());
    // First a deny-everything program; the second apply must replace it (with
    // BPF_F_ALLOW_MULTI a stacked old program would still deny /dev/null).
    cg.apply(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"}]}"#,
    ))
    .unwrap();
    cg.apply(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":5,"access":"rwm"}]}"#,
    ))
    .unwrap();

    let null = std::ffi::CString::new("/dev/null").unwrap();
    let zero = std::ffi::CString::new("/dev/zero").unwrap();
    let (rd, wr) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only makes raw system calls (read, open, _exit).
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            use std::os::fd::AsRawFd;
            let mut b = [0u8; 1];
            // SAFETY: raw syscalls on valid fds, buffers and C strings in the forked child.
            unsafe {
                libc::close(wr.as_raw_fd());
                libc::read(rd.as_raw_fd(), b.as_mut_ptr().cast(), 1);
                if libc::open(null.as_ptr(), libc::O_RDWR) < 0 {
                    libc::_exit(1);
                }
                if libc::open(zero.as_ptr(), libc::O_RDONLY) >= 0 {
                    libc::_exit(2);
                }
                let e = *libc::__errno_location();
                libc::_exit(if e == libc::EPERM { 0 } else { 100 + e });
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(rd);
            cg.add_pid(child.as_raw()).unwrap();
            assert!(cg.pids().unwrap().contains(&child.as_raw()));
            nix::unistd::write(&wr, b"g").unwrap();
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(
                st,
                nix::sys::wait::WaitStatus::Exited(child, 0),
                "1 = /dev/null denied, 2 = /dev/zero allowed, 100+errno = wrong error"
            );
        }
    }
    // Outside the cgroup /dev/zero still opens: the filter is scoped to the cgroup.
    assert!(fs::File::open("/dev/zero").is_ok());
    wait_until("child gone", || cg.pids().is_ok_and(|p| p.is_empty()));
    cg.destroy().unwrap();
    assert!(!cg.dirs()[0].exists());
}

/// Spawn `sh -c 'read x; exec <cmd>'`, move it into the cgroup, let it exec.
fn spawn_in(cg: &Cgroup, cmd: &str, comm: &str) -> std::process::Child {
    let mut child = Command::new("sh")
        .args(["-c", &format!("read x; exec {cmd}")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    wait_until("exec", || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    });
    child
}

#[test]
fn cgroup_root_v1_kill_keeps_paused_cgroup_frozen() {
    if let Some(why) = host_v1() {
        println!("skipped: {why}");
        return;
    }
    let cg = Cgroup::resolve(Some(&unique("paused")), "paused").unwrap();
    cg.create().unwrap();
    let _cleanup = Cleanup(cg.clone());
    let mut child = spawn_in(&cg, "sleep 30", "sleep");
    cg.freeze().unwrap();
    cg.kill_all(Signal::SIGTERM).unwrap();
    // Still paused, and the process has not acted on the signal yet.
    assert!(cg.is_frozen().unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert!(child.try_wait().unwrap().is_none());
    cg.thaw().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
}

#[test]
fn cgroup_root_v1_memory_limit_below_usage_names_file() {
    if let Some(why) = host_v1() {
        println!("skipped: {why}");
        return;
    }
    if Command::new("python3").arg("-c").arg("").status().is_err() {
        println!("skipped: needs python3 to allocate memory");
        return;
    }
    let cg = Cgroup::resolve(Some(&unique("below")), "below").unwrap();
    cg.create().unwrap();
    let _cleanup = Cleanup(cg.clone());
    let mut child = spawn_in(
        &cg,
        "python3 -c 'import time; b = bytearray(24 << 20); time.sleep(30)'",
        "python3",
    );
    wait_until("24 MiB charged", || {
        cg.stats().is_ok_and(|s| s.memory.usage.usage > 20 << 20)
    });
    // No swap here: the kernel cannot reclaim anonymous memory and refuses the limit.
    let e = cg
        .apply(&resources(r#"{"memory":{"limit":1048576}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("memory.limit_in_bytes") && e.contains("\"1048576\""),
        "{e}"
    );
    cg.kill_all(Signal::SIGKILL).unwrap();
    child.wait().unwrap();
}
