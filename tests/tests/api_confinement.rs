//! Docker's default confinement for containers run through berthd (../shared/SECURITY.md,
//! "Docker's defaults"), what `--privileged`, `--cap-add/--cap-drop`, `--security-opt`,
//! `--read-only` change, and resource limits landing in the container's cgroup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;

fn daemon(test: &str) -> Option<Berthd> {
    Berthd::with_busybox(test)
}

/// `Key:\tvalue` from /proc/self/status inside a container run with `args`.
fn status_fields(d: &Berthd, args: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["busybox", "cat", "/proc/self/status"]);
    d.ok(&full)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn default_confinement() {
    let Some(d) = daemon("default_confinement") else {
        return;
    };
    let st = status_fields(&d, &[]);
    assert_eq!(
        st["CapInh"], "0000000000000000",
        "inheritable caps must be empty"
    );
    assert_eq!(st["CapAmb"], "0000000000000000");
    assert_eq!(
        st["CapBnd"], "00000000a80425fb",
        "Docker's 14 default capabilities"
    );
    assert_eq!(st["CapEff"], "00000000a80425fb");
    assert_eq!(st["Seccomp"], "2", "the default seccomp profile is loaded");
    // Masked and read-only paths, read-only /sys, no access to host devices.
    let out = d.ok(&[
        "run", "--rm", "busybox", "sh", "-c",
        "for p in /proc/kcore /proc/keys /proc/timer_list; do [ -e $p ] && { stat -c '%t:%T' $p; break; }; done; \
         (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys-writable || echo sys-ro; \
         touch /sys/x 2>/dev/null && echo sysfs-writable || echo sysfs-ro; \
         mknod /tmp/disk b 8 0 && (head -c1 /tmp/disk >/dev/null 2>&1 && echo dev-open || echo dev-denied); \
         ls /sys/firmware 2>/dev/null | wc -l; \
         unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-denied",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "1:3",
        "/proc/kcore is masked with /dev/null: {out}"
    );
    assert_eq!(lines[1], "sys-ro", "{out}");
    assert_eq!(lines[2], "sysfs-ro", "{out}");
    assert_eq!(
        lines[3], "dev-denied",
        "the device cgroup denies a block device: {out}"
    );
    assert_eq!(lines[4], "0", "/sys/firmware is masked: {out}");
    assert_eq!(lines[5], "unshare-denied", "no CAP_SYS_ADMIN: {out}");
}

#[test]
fn privileged_and_security_options() {
    let Some(d) = daemon("privileged_and_security_options") else {
        return;
    };
    let st = status_fields(&d, &["--privileged"]);
    assert_eq!(st["Seccomp"], "0", "--privileged has no seccomp filter");
    assert_ne!(st["CapBnd"], "00000000a80425fb");
    assert!(
        u64::from_str_radix(&st["CapEff"], 16).unwrap() & (1 << 21) != 0,
        "--privileged has CAP_SYS_ADMIN: {}",
        st["CapEff"]
    );
    let st = status_fields(&d, &["--cap-drop", "ALL", "--cap-add", "net_admin"]);
    assert_eq!(
        st["CapEff"], "0000000000001000",
        "only CAP_NET_ADMIN (bit 12)"
    );
    let st = status_fields(&d, &["--cap-drop", "CHOWN"]);
    assert_eq!(st["CapEff"], "00000000a80425fa");
    let st = status_fields(&d, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(st["Seccomp"], "0");
    let st = status_fields(&d, &["--security-opt", "no-new-privileges"]);
    assert_eq!(st["NoNewPrivs"], "1");
    let st = status_fields(&d, &["-u", "1000:1000"]);
    assert!(st["Uid"].starts_with("1000"), "{}", st["Uid"]);
    let err = d.fails(&["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"]);
    assert!(err.contains("NOT_A_CAP"), "{err}");
    let err = d.fails(&[
        "run",
        "--rm",
        "--security-opt",
        "bogus=1",
        "busybox",
        "true",
    ]);
    assert!(err.contains("bogus"), "{err}");
    // --read-only: the root is read-only, a tmpfs is writable.
    let out = d.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/run:size=1m",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /run/x && echo tmpfs-rw",
    ]);
    assert_eq!(out, "root-ro\ntmpfs-rw\n");
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let Some(d) = daemon("resource_limits_reach_the_cgroup") else {
        return;
    };
    let id = d
        .ok(&[
            "run",
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "10",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &id]);
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let path_of = |ctrl: &str| -> Option<String> {
        cg.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == ctrl)
                .then(|| path.to_string())
        })
    };
    let read = |ctrl: &str, file: &str| -> String {
        if let Some(p) = path_of(ctrl) {
            let v1 = format!("/sys/fs/cgroup/{ctrl}{p}/{file}");
            if let Ok(v) = std::fs::read_to_string(&v1) {
                return v.trim().to_string();
            }
        }
        panic!("no {ctrl} cgroup file {file} for the container: {cg}");
    };
    if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("pids", "pids.max"), "10");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
    } else {
        let p = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let r = |f: &str| {
            std::fs::read_to_string(format!("/sys/fs/cgroup{p}/{f}"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(r("memory.max"), "67108864");
        assert_eq!(r("pids.max"), "10");
        assert!(r("cpu.max").starts_with("50000 "));
    }
    // The pids limit holds inside: the twelfth background process cannot be forked.
    let o = d.docker(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; echo all-forked",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.contains("all-forked") || text.contains("can't fork"),
        "12 processes started under --pids-limit 10: {text}"
    );
    d.ok(&["rm", "-f", &id]);
}
