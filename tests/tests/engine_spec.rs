//! Root end-to-end tests of the engine's container spec (`berth_engine::containers::spec`):
//! a `config.json` produced by `build` for a busybox rootfs runs under the real runtime, and
//! the confinement it asks for is what the container sees (capability sets, seccomp, no new
//! privileges, masked and read-only paths, the user from the image's /etc/passwd).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_engine::containers::config::{ContainerConfig, HostConfig};
use berth_engine::containers::spec::{build, MountKind, MountSpec, NetNs, SpecInput};
use berth_tests::suite::{assert_nothing_left, describe, setup, text};
use berth_tests::{busybox_bundle, unique_id, Bundle, Runtime};

/// A process holding a fresh network namespace for the container to join.
struct NetNsHolder(Child);

impl NetNsHolder {
    fn new() -> NetNsHolder {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "120"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn `unshare --net sleep` (util-linux)");
        let holder = NetNsHolder(child);
        // Wait until the sleep is in its own namespace.
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..200 {
            if std::fs::read_link(holder.path()).is_ok_and(|l| l != own) {
                return holder;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("unshare --net did not create a network namespace");
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.0.id()))
    }
}

impl Drop for NetNsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Write the spec `build` makes for `config`/`host` into the bundle, then run it and return
/// its stdout (asserting it exits 0).
fn run_spec(rt: &Runtime, b: &Bundle, config: &ContainerConfig, host: &HostConfig) -> String {
    run_spec_with(rt, b, config, host, &[], None)
}

/// [`run_spec`] with user mounts and an init binary.
fn run_spec_with(
    rt: &Runtime,
    b: &Bundle,
    config: &ContainerConfig,
    host: &HostConfig,
    mounts: &[MountSpec],
    init_path: Option<&Path>,
) -> String {
    let netns = NetNsHolder::new();
    let files = tempfile::tempdir().unwrap();
    let hosts = files.path().join("hosts");
    let resolv = files.path().join("resolv.conf");
    let hostname = files.path().join("hostname");
    std::fs::write(&hosts, "127.0.0.1\tlocalhost\n").unwrap();
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    std::fs::write(&hostname, "0123456789ab\n").unwrap();
    let rootfs = b.rootfs();
    let spec = build(&SpecInput {
        id: "0123456789abcdef0123456789abcdef",
        config,
        host,
        rootfs: &rootfs,
        mounts,
        netns: NetNs::Path(netns.path()),
        hosts_file: &hosts,
        resolv_conf: &resolv,
        hostname_file: &hostname,
        cgroups_path: b.cgroups_path.clone(),
        init_path,
    })
    .expect("build the spec");
    b.write_spec(&spec);
    let id = unique_id("espec");
    let o = rt.run(&id, b);
    assert!(o.status.success(), "run {id}: {}", describe(&o));
    assert_nothing_left(rt, &id, b);
    text(&o.stdout)
}

fn sh(script: &str) -> ContainerConfig {
    ContainerConfig {
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        ..Default::default()
    }
}

/// The value of `key:` in /proc/self/status output.
fn status_field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in output:\n{out}"))
}

/// A masked /proc file this host has (/proc/kcore needs CONFIG_PROC_KCORE, which some kernels
/// lack; the masking is then checked on another entry of the same list).
fn masked_probe_path() -> &'static str {
    ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("none of /proc/kcore, /proc/keys, /proc/timer_list exists on this host")
}

/// Prints /proc/self/status, whether the masked file is masked (a /dev/null bind mount is a
/// char device), whether /proc/sys is writable, the cwd, hostname and id.
fn probe() -> String {
    format!(
        "cat /proc/self/status; \
        if [ -c {m} ]; then echo masked=yes; else echo masked=no; fi; \
        if echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; then echo procsys=writable; else echo procsys=readonly; fi; \
        echo cwd=$(pwd); echo host=$(hostname); id",
        m = masked_probe_path()
    )
}

#[test]
fn default_spec_confines_like_docker() {
    let Some(rt) = setup("default_spec_confines_like_docker") else {
        return;
    };
    let b = busybox_bundle(&["true"]);
    let out = run_spec(&rt, &b, &sh(&probe()), &HostConfig::default());
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80425fb", "{out}");
    assert_eq!(status_field(&out, "CapEff"), "00000000a80425fb", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    assert!(out.contains("masked=yes"), "{out}");
    assert!(out.contains("procsys=readonly"), "{out}");
    assert!(out.contains("cwd=/\n"), "{out}");
    assert!(out.contains("host=0123456789ab"), "{out}");
    assert!(out.contains("uid=0"), "{out}");
}

#[test]
fn no_new_privileges_and_user_from_the_image() {
    let Some(rt) = setup("no_new_privileges_and_user_from_the_image") else {
        return;
    };
    let b = busybox_bundle(&["true"]);
    let root = b.rootfs();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("home/app")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\naudio:x:29:app\n",
    )
    .unwrap();
    let mut config = sh("cat /proc/self/status; id; echo home=$HOME; pwd");
    config.user = "app".into();
    config.working_dir = "/home/app".into();
    let host = HostConfig {
        security_opt: Some(vec!["no-new-privileges".into()]),
        group_add: Some(vec!["4242".into()]),
        ..Default::default()
    };
    let out = run_spec(&rt, &b, &config, &host);
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    // A non-root user keeps the bounding set but no effective capabilities.
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80425fb", "{out}");
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000", "{out}");
    let groups = status_field(&out, "Groups");
    let mut gids: Vec<&str> = groups.split_whitespace().collect();
    gids.sort();
    assert_eq!(gids, ["29", "4242"], "{out}");
    assert!(out.contains("uid=1000(app) gid=1000(app)"), "{out}");
    assert!(out.contains("home=/home/app"), "{out}");
    assert!(out.lines().any(|l| l == "/home/app"), "{out}");
}

#[test]
fn privileged_spec_runs_unconfined() {
    let Some(rt) = setup("privileged_spec_runs_unconfined") else {
        return;
    };
    let b = busybox_bundle(&["true"]);
    let host = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let out = run_spec(&rt, &b, &sh(&probe()), &host);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000", "{out}");
    // Every capability the kernel knows (up to the 41 the spec can name), less any the engine
    // itself lacks (this test process stands in for the engine).
    let bnd = u64::from_str_radix(status_field(&out, "CapBnd"), 16).unwrap();
    let last = berth_runtime::caps::last_cap().min(40);
    let known = (1u64 << (last + 1)) - 1;
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own_bnd = u64::from_str_radix(status_field(&own, "CapBnd"), 16).unwrap();
    assert_eq!(bnd, known & own_bnd, "{out}");
    assert_ne!(bnd & (1 << 21), 0, "CAP_SYS_ADMIN missing: {out}");
    assert!(out.contains("masked=no"), "{out}");
    assert!(out.contains("procsys=writable"), "{out}");
}

#[test]
fn seccomp_unconfined_and_readonly_rootfs() {
    let Some(rt) = setup("seccomp_unconfined_and_readonly_rootfs") else {
        return;
    };
    let b = busybox_bundle(&["true"]);
    let host = HostConfig {
        security_opt: Some(vec!["seccomp=unconfined".into()]),
        readonly_rootfs: true,
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(vec!["kill".into()]),
        ..Default::default()
    };
    let config = sh("cat /proc/self/status; \
        if touch /newfile 2>/dev/null; then echo root=writable; else echo root=readonly; fi; \
        if echo x > /etc/hosts 2>/dev/null; then echo hosts=writable; else echo hosts=readonly; fi; \
        if touch /dev/shm/x; then echo shm=writable; fi");
    let out = run_spec(&rt, &b, &config, &host);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000020", "{out}");
    assert!(out.contains("root=readonly"), "{out}");
    assert!(out.contains("hosts=readonly"), "{out}");
    assert!(out.contains("shm=writable"), "{out}");
}

#[test]
fn mounts_resources_and_init() {
    let Some(rt) = setup("mounts_resources_and_init") else {
        return;
    };
    let tini = Path::new("/usr/bin/tini-static");
    assert!(
        tini.is_file(),
        "{} is missing; install Debian's tini package (.ci/setup does)",
        tini.display()
    );
    let b = busybox_bundle(&["true"]);
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("hello"), "from the host\n").unwrap();
    // The read-only bind holds the tmpfs's mountpoint; the tmpfs is listed first but must
    // be mounted after its parent (or it would be hidden under the bind).
    std::fs::create_dir(shared.path().join("inner")).unwrap();
    let mounts = [
        MountSpec {
            destination: "/data/inner".into(),
            kind: MountKind::Tmpfs {
                options: vec!["size=1m".into(), "mode=1777".into()],
            },
            read_only: false,
        },
        MountSpec {
            destination: "/data".into(),
            kind: MountKind::Bind {
                source: shared.path().to_path_buf(),
                propagation: String::new(),
                recursive: true,
            },
            read_only: true,
        },
    ];
    let host = HostConfig {
        init: Some(true),
        memory: 64 << 20,
        nano_cpus: 500_000_000,
        pids_limit: Some(50),
        ulimits: Some(vec![berth_engine::containers::config::Ulimit {
            name: "nofile".into(),
            soft: 512,
            hard: 1024,
        }]),
        ..Default::default()
    };
    let config = sh("echo pid1=$(cat /proc/1/comm); cat /data/hello; \
        if touch /data/x 2>/dev/null; then echo data=writable; else echo data=readonly; fi; \
        touch /data/inner/y && echo inner=writable; \
        grep ' /data/inner ' /proc/self/mounts; \
        echo nofile=$(ulimit -n):$(ulimit -Hn); \
        echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null); \
        echo pids=$(cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null)");
    let out = run_spec_with(&rt, &b, &config, &host, &mounts, Some(tini));
    assert!(out.contains("pid1=docker-init"), "{out}");
    assert!(out.contains("from the host"), "{out}");
    assert!(out.contains("data=readonly"), "{out}");
    assert!(out.contains("inner=writable"), "{out}");
    let inner = out
        .lines()
        .find(|l| l.contains(" /data/inner "))
        .unwrap_or_else(|| panic!("no /data/inner mount: {out}"));
    for opt in ["nosuid", "nodev", "noexec", "size=1024k"] {
        assert!(inner.contains(opt), "{opt} missing: {inner}");
    }
    assert!(out.contains("nofile=512:1024"), "{out}");
    assert!(out.contains("mem=67108864\n"), "{out}");
    assert!(out.contains("pids=50\n"), "{out}");
}
