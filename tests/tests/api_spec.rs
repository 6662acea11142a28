//! Root end-to-end tests of the container spec through berthd and the docker CLI: the
//! confinement flags of `docker run` (`--cap-add/--cap-drop`, `--privileged`, `--user`,
//! `--group-add`, `--security-opt`, `--init`, `--read-only`, `--ulimit`) reach the
//! container process as Docker's would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::berthd::Berthd;

fn daemon(test: &str) -> Option<Berthd> {
    Berthd::with_busybox(test)
}

/// The value of `key:` in /proc/self/status output.
fn status_field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in output:\n{out}"))
}

#[test]
fn docker_run_confinement_flags() {
    let Some(d) = daemon("docker_run_confinement_flags") else {
        return;
    };
    // Docker's defaults.
    let out = d.ok(&["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80425fb", "{out}");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");

    // --cap-drop ALL --cap-add kill, no-new-privileges, seccomp unconfined.
    let out = d.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "kill",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000020", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");

    // --privileged: no seccomp, CAP_SYS_ADMIN, /proc/sys writable.
    let out = d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/status; if echo 1 > /proc/sys/kernel/ns_last_pid; then echo procsys=writable; fi",
    ]);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    let bnd = u64::from_str_radix(status_field(&out, "CapBnd"), 16).unwrap();
    assert_ne!(bnd & (1 << 21), 0, "CAP_SYS_ADMIN missing: {out}");
    assert!(out.contains("procsys=writable"), "{out}");

    // --user with --group-add, --read-only, --ulimit, --init.
    let out = d.ok(&[
        "run",
        "--rm",
        "--init",
        "--user",
        "1000:1000",
        "--group-add",
        "4242",
        "--read-only",
        "--ulimit",
        "nofile=512:1024",
        "busybox",
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); id -u; id -G; \
         if touch /x 2>/dev/null; then echo root=writable; else echo root=readonly; fi; \
         echo nofile=$(ulimit -n):$(ulimit -Hn)",
    ]);
    assert!(out.contains("pid1=docker-init"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "1000", "{out}");
    assert_eq!(lines[2], "1000 4242", "{out}");
    assert!(out.contains("root=readonly"), "{out}");
    assert!(out.contains("nofile=512:1024"), "{out}");
}
