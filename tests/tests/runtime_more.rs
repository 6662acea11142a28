//! More root end-to-end tests of the OCI runtime under test (see runtime.rs):
//! user, joined and time namespaces, `--no-pivot`, sysctl, oomScoreAdj,
//! `kill --all`, `events --stats`, exec with a tty / a process file /
//! `--detach`, Docker's default seccomp profile, `run --detach` + `list`,
//! `--log-format json`, the memory limit seen without a cgroup namespace, and
//! cleanup after a failing hook.
//!
//! Assertions guarded by `rt.is_berth()` cover Berth-specific behaviour;
//! structural checks run for every runtime (`BERTH_RUNTIME=runc`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_tests::suite::{
    assert_nothing_left, cgroup_procs, console_socket_receiver, describe, pid_dead, read_pty,
    run_ok, run_with, setup, text, wait_for_file, wait_until,
};
use berth_tests::{busybox_bundle, unique_id, Bundle, Runtime};
use serde_json::{json, Value};

const SECS: Duration = Duration::from_secs(10);

/// A host temp dir anyone may write to, bind-mounted rw at `dest` in the container.
fn bind_tmp_dir(b: &Bundle, dest: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("berth-bind-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let src = d.path().to_string_lossy().into_owned();
    b.edit(|s| {
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": dest, "type": "bind", "source": src, "options": ["rbind", "rw"]
        }))
    });
    d
}

/// Removes the namespace of type `ty` from the spec.
fn drop_namespace(s: &mut Value, ty: &str) {
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != ty);
}

/// The container's init pid from `state`.
fn init_pid(rt: &Runtime, id: &str) -> i64 {
    let st = rt.state(id);
    st["pid"]
        .as_i64()
        .filter(|p| *p > 0)
        .unwrap_or_else(|| panic!("no pid in state: {st}"))
}

/// Fields of the first line of a /proc/<pid>/{uid,gid}_map.
fn map_fields(map: &str) -> Vec<u64> {
    map.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect()
}

// ------------------------------------------------------------ namespaces

#[test]
fn user_namespace_with_mappings() {
    let Some(rt) = setup("user_namespace_with_mappings") else {
        return;
    };
    let b = busybox_bundle(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; touch /data/by-init; \
         echo init-done; exec sleep 100",
    ]);
    // Host uid 100000 must be able to reach the rootfs through the bundle dir,
    // and cannot create a mount point in the host-root-owned rootfs.
    std::fs::set_permissions(&b.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    let data = bind_tmp_dir(&b, "/data");
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    let id = unique_id("userns");
    rt.create_and_start(&id, &b);
    assert!(
        wait_until(SECS, || rt.container_output(&id).0.contains("init-done")),
        "init did not finish: {:?}",
        rt.container_output(&id)
    );
    let (out, err) = rt.container_output(&id);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "uid inside: {out:?} {err:?}");
    assert_eq!(map_fields(lines[1]), [0, 100000, 65536], "uid_map: {out:?}");
    assert_eq!(map_fields(lines[2]), [0, 100000, 65536], "gid_map: {out:?}");
    // Seen from the host, the init runs as uid 100000 and its files belong to it.
    let pid = init_pid(&rt, &id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "init's host uid: {uid_line}"
    );
    let f = std::fs::metadata(data.path().join("by-init")).expect("file made inside");
    assert_eq!((f.uid(), f.gid()), (100000, 100000), "owner on the host");

    // exec joins the user namespace: uid 0 inside, same mapping, host uid 100000.
    let o = rt.exec(
        &id,
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; touch /data/by-exec",
        ],
    );
    assert!(o.status.success(), "{}", describe(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "{}", describe(&o));
    assert_eq!(
        map_fields(lines.get(1).copied().unwrap_or_default()),
        [0, 100000, 65536]
    );
    let f = std::fs::metadata(data.path().join("by-exec")).expect("file made by exec");
    assert_eq!(f.uid(), 100000, "exec'd file owner on the host");

    let d = rt.delete(&id, true);
    assert!(d.status.success(), "{}", describe(&d));
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn join_namespaces_by_path() {
    let Some(rt) = setup("join_namespaces_by_path") else {
        return;
    };
    let a = busybox_bundle(&["sleep", "100"]);
    a.edit(|s| s["hostname"] = json!("aaa"));
    let ida = unique_id("joina");
    rt.create_and_start(&ida, &a);
    let apid = init_pid(&rt, &ida);
    let host_ns = |pid: &str, ns: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let a_net = host_ns(&apid.to_string(), "net");
    let a_uts = host_ns(&apid.to_string(), "uts");
    assert_ne!(a_net, host_ns("self", "net"), "A has no netns of its own");

    let b = busybox_bundle(&[
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts; \
         readlink /proc/self/ns/ipc",
    ]);
    b.edit(|s| {
        // A joined UTS namespace keeps its hostname: B must not set one.
        s.as_object_mut().unwrap().remove("hostname");
        for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
            match n["type"].as_str() {
                Some("network") => n["path"] = json!(format!("/proc/{apid}/ns/net")),
                Some("uts") => n["path"] = json!(format!("/proc/{apid}/ns/uts")),
                _ => {}
            }
        }
    });
    let out = run_ok(&rt, &b, "joinb");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!(lines[0], "aaa", "B's hostname: {out:?}");
    assert_eq!(lines[1], a_net, "B's netns");
    assert_eq!(lines[2], a_uts, "B's uts ns");
    // Namespaces not joined are still B's own.
    assert_ne!(
        lines[3],
        host_ns(&apid.to_string(), "ipc"),
        "B joined A's ipc ns"
    );
    // A is untouched.
    let o = rt.exec(&ida, &["hostname"]);
    assert_eq!(text(&o.stdout).trim(), "aaa", "{}", describe(&o));
    assert_eq!(rt.status(&ida).as_deref(), Some("running"));
}

#[test]
fn time_namespace_offsets() {
    let Some(rt) = setup("time_namespace_offsets") else {
        return;
    };
    let b = busybox_bundle(&[
        "sh",
        "-c",
        "cat /proc/self/timens_offsets; cat /proc/uptime",
    ]);
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        // /proc/uptime follows CLOCK_BOOTTIME, so shift both clocks.
        s["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": 86400, "nanosecs": 0},
            "boottime": {"secs": 86400, "nanosecs": 0}
        });
    });
    let host_uptime = || -> f64 {
        std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = host_uptime();
    let id = unique_id("timens");
    let o = rt.run(&id, &b);
    if !o.status.success() && !rt.is_berth() {
        println!(
            "note: {} does not support time namespaces: {}",
            rt.name(),
            describe(&o)
        );
        assert_nothing_left(&rt, &id, &b);
        return;
    }
    assert!(o.status.success(), "{}", describe(&o));
    let out = text(&o.stdout);
    let offset = |clock: &str| -> Vec<i64> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(clock))
            .unwrap_or_else(|| panic!("no {clock} line: {out:?}"))
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap())
            .collect()
    };
    assert_eq!(offset("monotonic"), [86400, 0], "{out:?}");
    assert_eq!(offset("boottime"), [86400, 0], "{out:?}");
    let inside: f64 = out
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no uptime: {out:?}"));
    assert!(
        inside > 86400.0 && inside >= before + 86400.0 - 1.0,
        "uptime inside {inside}, host {before}"
    );
    assert!(host_uptime() < before + 60.0, "host clock moved");
}

// ------------------------------------------------------------- rootfs etc.

#[test]
fn no_pivot_run() {
    let Some(rt) = setup("no_pivot_run") else {
        return;
    };
    let b = busybox_bundle(&[
        "sh",
        "-c",
        "echo $$; head -1 /etc/passwd; ls /; test -e /work && echo host-visible; true",
    ]);
    std::fs::write(b.rootfs().join("marker-no-pivot"), "x").unwrap();
    let id = unique_id("nopivot");
    let o = run_with(&rt, &id, &b, &["--no-pivot"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"1"), "{out:?}");
    assert_eq!(
        lines.get(1),
        Some(&"root:x:0:0:root:/root:/bin/sh"),
        "{out:?}"
    );
    assert!(out.lines().any(|l| l == "marker-no-pivot"), "{out:?}");
    assert!(!out.contains("host-visible"), "{out:?}");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn sysctl_namespaced_key_applies() {
    let Some(rt) = setup("sysctl_namespaced_key_applies") else {
        return;
    };
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    // The container asks for the opposite of the host's value.
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let b = busybox_bundle(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    b.edit(|s| s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want}));
    assert_eq!(run_ok(&rt, &b, "sysctl").trim(), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before,
        "host's ip_forward changed"
    );
}

#[test]
fn sysctl_host_wide_key_is_refused() {
    let Some(rt) = setup("sysctl_host_wide_key_is_refused") else {
        return;
    };
    let host_before = std::fs::read_to_string("/proc/sys/kernel/panic").unwrap();
    let b = busybox_bundle(&["true"]);
    b.edit(|s| s["linux"]["sysctl"] = json!({"kernel.panic": "17"}));
    let id = unique_id("sysctlbad");
    let c = rt.create(&id, &b);
    assert!(
        !c.status.success(),
        "kernel.panic accepted: {}",
        describe(&c)
    );
    if rt.is_berth() {
        let err = text(&c.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
        assert!(err.contains("kernel.panic"), "{err:?}");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/panic").unwrap(),
        host_before,
        "host's kernel.panic changed"
    );
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn oom_score_adj_applies() {
    let Some(rt) = setup("oom_score_adj_applies") else {
        return;
    };
    let b = busybox_bundle(&["cat", "/proc/self/oom_score_adj"]);
    b.edit(|s| s["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(run_ok(&rt, &b, "oom").trim(), "500");
}

// ---------------------------------------------------------- kill, events

#[test]
fn kill_all_without_pid_namespace() {
    let Some(rt) = setup("kill_all_without_pid_namespace") else {
        return;
    };
    // Without a pid namespace the sleeps outlive sh: only `kill --all` reaches them.
    let b = busybox_bundle(&[
        "sh",
        "-c",
        "sleep 100 & sleep 100 & sleep 100 & touch /tmp/ready; wait",
    ]);
    b.edit(|s| drop_namespace(s, "pid"));
    let id = unique_id("killall");
    rt.create_and_start(&id, &b);
    assert!(wait_for_file(&b.rootfs().join("tmp/ready"), SECS));
    let procs = cgroup_procs(&b.cgroups_path).expect("container cgroup on the host");
    assert!(procs.len() >= 4, "sh + 3 sleeps expected: {procs:?}");
    let k = rt.cmd(&["kill", "--all", &id, "KILL"]).output().unwrap();
    assert!(k.status.success(), "{}", describe(&k));
    assert!(
        wait_until(SECS, || procs.iter().all(|&p| pid_dead(p))),
        "survivors: {:?}",
        procs.iter().filter(|&&p| !pid_dead(p)).collect::<Vec<_>>()
    );
    assert!(
        wait_until(SECS, || cgroup_procs(&b.cgroups_path)
            .is_none_or(|p| p.is_empty())),
        "cgroup not empty: {:?}",
        cgroup_procs(&b.cgroups_path)
    );
    assert!(rt.wait_status(&id, "stopped", SECS), "{}", rt.state(&id));
    let d = rt.delete(&id, false);
    assert!(d.status.success(), "{}", describe(&d));
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn events_stats_one_json_line() {
    let Some(rt) = setup("events_stats_one_json_line") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "sleep 100 & sleep 100"]);
    b.edit(|s| s["linux"]["resources"]["memory"] = json!({"limit": 67108864}));
    let id = unique_id("events");
    rt.create_and_start(&id, &b);
    assert!(
        wait_until(SECS, || cgroup_procs(&b.cgroups_path)
            .is_some_and(|p| p.len() >= 2)),
        "the background sleep did not start"
    );
    let o = rt
        .cmd(&["events", "--stats", &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", describe(&o));
    let out = text(&o.stdout);
    assert_eq!(out.trim().lines().count(), 1, "one line: {out:?}");
    let ev: Value = serde_json::from_str(out.trim()).expect("JSON line");
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], json!(id), "{ev}");
    let usage = ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "memory usage: {ev}");
    assert_eq!(
        ev["data"]["memory"]["usage"]["limit"].as_u64(),
        Some(67108864),
        "memory limit: {ev}"
    );
    let pids = ev["data"]["pids"]["current"].as_u64().unwrap_or(0);
    assert!(pids >= 2, "pids.current: {ev}");
}

// ------------------------------------------------------------------ exec

/// `exec --tty --console-socket` (plus `--detach` if asked) of `tty` in
/// container `id`: the pty master arrives over the socket and `tty` inside
/// prints a /dev/pts/N path.
fn exec_tty(rt: &Runtime, id: &str, detach: bool) {
    let sockdir = tempfile::tempdir().unwrap();
    let sock = sockdir.path().join("console.sock");
    let receiver = console_socket_receiver(&sock);
    let sock_arg = sock.to_string_lossy().into_owned();
    let mut args = vec!["exec", "--tty", "--console-socket", &sock_arg];
    if detach {
        args.push("--detach");
    }
    args.extend_from_slice(&[id, "sh", "-c", "tty; echo exec-tty-done; sleep 0.3"]);
    let child = rt
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = receiver.join().unwrap();
    let Some(mut master) = master else {
        let o = child.wait_with_output().unwrap();
        panic!("no pty master over the console socket: {}", describe(&o));
    };
    let out = read_pty(&mut master, SECS, |o| o.contains("exec-tty-done"));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "detach={detach}: {}", describe(&o));
    let tty = out.lines().next().unwrap_or_default().trim();
    assert!(
        tty.strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
        "tty inside exec (detach={detach}): {out:?}"
    );
    assert!(out.contains("exec-tty-done"), "{out:?}");
}

#[test]
fn exec_tty_console_socket() {
    let Some(rt) = setup("exec_tty_console_socket") else {
        return;
    };
    let b = busybox_bundle(&["sleep", "100"]);
    let id = unique_id("exectty");
    rt.create_and_start(&id, &b);
    // runc only takes a console socket with --detach.
    exec_tty(&rt, &id, true);
    if rt.is_berth() {
        // berth also hands the master over while waiting for the process.
        exec_tty(&rt, &id, false);
    }
}

#[test]
fn exec_process_file_and_detach() {
    let Some(rt) = setup("exec_process_file_and_detach") else {
        return;
    };
    let b = busybox_bundle(&["sleep", "100"]);
    let id = unique_id("execproc");
    rt.create_and_start(&id, &b);
    let tmp = tempfile::tempdir().unwrap();
    let process = tmp.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::to_string(&json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sh", "-c", "id -u; id -g; pwd; echo \"$MARK\""],
            "env": ["PATH=/bin", "MARK=from-process-json"],
            "cwd": "/tmp"
        }))
        .unwrap(),
    )
    .unwrap();
    let p = process.to_string_lossy().into_owned();
    let o = rt
        .cmd(&["exec", "--process", &p, &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(
        text(&o.stdout),
        "1000\n1000\n/tmp\nfrom-process-json\n",
        "{}",
        describe(&o)
    );

    let pid_file = tmp.path().join("exec.pid");
    let pf = pid_file.to_string_lossy().into_owned();
    let o = rt
        .cmd(&["exec", "--detach", "--pid-file", &pf, &id, "sleep", "57"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(o.success(), "exec --detach failed: {o}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .expect("pid file holds a pid");
    // The pid may still be between the runtime's last step and the exec of sleep.
    let cmdline = || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .replace('\0', " ")
            .trim()
            .to_owned()
    };
    assert!(
        wait_until(SECS, || cmdline() == "sleep 57"),
        "pid {pid} runs {:?}",
        cmdline()
    );
    assert!(
        cgroup_procs(&b.cgroups_path).is_some_and(|p| p.contains(&pid)),
        "detached exec not in the container's cgroup"
    );
}

// --------------------------------------------------------------- seccomp

#[test]
fn docker_default_seccomp_profile() {
    let Some(rt) = setup("docker_default_seccomp_profile") else {
        return;
    };
    let script = "echo ok; unshare -U true; echo unshare=$?; \
                  ls /bin | grep -c . >/dev/null && mkdir /tmp/d && echo busybox-ok";
    let b = busybox_bundle(&["sh", "-c", script]);
    // Control: without seccomp the same unshare works, so a failure below is seccomp's.
    let id = unique_id("seccompctl");
    let o = rt.run(&id, &b);
    assert!(
        text(&o.stdout).contains("unshare=0"),
        "control run: {}",
        describe(&o)
    );
    std::fs::remove_dir(b.rootfs().join("tmp/d")).unwrap();

    let profile = serde_json::to_value(berth_runtime::seccomp::docker_default()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{profile}");
    b.edit(|s| s["linux"]["seccomp"] = profile);
    let id = unique_id("seccompdef");
    let o = rt.run(&id, &b);
    assert!(o.status.success(), "{}", describe(&o));
    let out = text(&o.stdout);
    assert_eq!(out.lines().next(), Some("ok"), "{}", describe(&o));
    let status: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("unshare="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_ne!(status, 0, "unshare -U allowed: {}", describe(&o));
    assert!(
        text(&o.stderr).contains("Operation not permitted"),
        "{}",
        describe(&o)
    );
    assert!(out.contains("busybox-ok"), "{}", describe(&o));
}

// -------------------------------------------------------------- lifecycle

#[test]
fn run_detach_list_json_and_pid_file() {
    let Some(rt) = setup("run_detach_list_json_and_pid_file") else {
        return;
    };
    let b = busybox_bundle(&["sleep", "100"]);
    let id = unique_id("detach");
    rt.track(&id);
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("run.pid");
    let pf = pid_file.to_string_lossy().into_owned();
    let dir = b.dir.to_string_lossy().into_owned();
    let st = rt
        .cmd(&["run", "--detach", "--pid-file", &pf, "--bundle", &dir, &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "run --detach: {st}");
    assert!(rt.wait_status(&id, "running", SECS), "{}", rt.state(&id));

    let l = rt.cmd(&["list", "--format", "json"]).output().unwrap();
    assert!(l.status.success(), "{}", describe(&l));
    let list: Value = serde_json::from_slice(&l.stdout).expect("list JSON");
    let entry = list
        .as_array()
        .expect("list is an array")
        .iter()
        .find(|e| e["id"] == json!(id))
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert_eq!(entry["status"], "running", "{entry}");

    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid in pid file");
    assert_eq!(init_pid(&rt, &id), pid);
    assert_eq!(entry["pid"].as_i64(), Some(pid), "{entry}");
    let d = rt.delete(&id, true);
    assert!(d.status.success(), "{}", describe(&d));
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn log_file_json_on_bad_config() {
    let Some(rt) = setup("log_file_json_on_bad_config") else {
        return;
    };
    let b = busybox_bundle(&["true"]);
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "foo"}))
    });
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("runtime.log");
    let lg = log.to_string_lossy().into_owned();
    let id = unique_id("log");
    rt.track(&id);
    let dir = b.dir.to_string_lossy().into_owned();
    let o = rt
        .cmd(&[
            "--log",
            &lg,
            "--log-format",
            "json",
            "create",
            "--bundle",
            &dir,
            &id,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", describe(&o));
    let content = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<Value> = content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let err = lines
        .iter()
        .find(|l| l["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in the log: {content:?}"));
    let msg = err["msg"].as_str().expect("msg is a string");
    if rt.is_berth() {
        assert!(
            msg.contains("namespaces"),
            "msg should name the field: {msg:?}"
        );
        assert!(err["time"].is_string(), "{err}");
    }
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn memory_limit_visible_without_cgroup_namespace() {
    let Some(rt) = setup("memory_limit_visible_without_cgroup_namespace") else {
        return;
    };
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        println!("skipped: no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory on this host");
        return;
    }
    let b = busybox_bundle(&["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    b.edit(|s| {
        drop_namespace(s, "cgroup");
        s["linux"]["resources"]["memory"] = json!({"limit": 41943040});
    });
    let id = unique_id("memvis");
    let o = rt.run(&id, &b);
    // runc 1.1 too binds the container's own cgroup directory there.
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(text(&o.stdout).trim(), "41943040", "{}", describe(&o));
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn failing_hook_cleans_up() {
    let Some(rt) = setup("failing_hook_cleans_up") else {
        return;
    };
    let b = busybox_bundle(&["true"]);
    b.edit(|s| s["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    let id = unique_id("hookfail");
    let c = rt.create(&id, &b);
    assert!(
        !c.status.success(),
        "create with a failing hook: {}",
        describe(&c)
    );
    if rt.is_berth() {
        let err = text(&c.stderr);
        assert!(
            err.contains("createRuntime") && err.contains("/bin/false"),
            "error should name the hook: {err:?}"
        );
    }
    assert_nothing_left(&rt, &id, &b);
}

/// CVE-2019-5736 with CAP_SYS_PTRACE: while `exec` sets up a process inside the container,
/// that process is visible in the container's pid namespace. A container holding
/// CAP_SYS_PTRACE (a common `--cap-add`) can open `/proc/<pid>/exe` of anything its caps
/// allow, dumpable or not. The runtime binary must never be what it finds there, so it can
/// never reopen it for writing once the runtime exits. Works on a private copy of the runtime
/// so a vulnerable runtime damages only the copy.
#[test]
fn runtime_binary_unreachable_during_exec_even_with_sys_ptrace() {
    let Some(rt0) = setup("runtime_binary_unreachable_during_exec_even_with_sys_ptrace") else {
        return;
    };
    let bindir = tempfile::tempdir().unwrap();
    let copy = bindir.path().join(rt0.bin.file_name().unwrap());
    std::fs::copy(&rt0.bin, &copy).unwrap();
    let before = berth_tests::sha256_file(&copy);
    let rt = Runtime::with_bin(&copy);

    // Until /tmp/stop appears: every /proc/<pid>/exe that resolves to the runtime copy is
    // held open and written through; each attempt is logged.
    let script = r#"
        while [ ! -e /tmp/stop ]; do
            for p in /proc/[0-9]*; do
                e=$(readlink $p/exe 2>/dev/null) || continue
                [ "$e" = "$COPY" ] || continue
                echo "hit $p" >> /tmp/log
                if exec 7< $p/exe 2>/dev/null; then
                    (echo '#!/bin/sh' >&7) 2>/dev/null; sleep 0.2
                    (printf pwned 1<> /proc/self/fd/7) 2>/dev/null && echo wrote >> /tmp/log
                    exec 7<&-
                fi
            done
        done
        touch /tmp/done
        sleep 1000
    "#;
    let b = busybox_bundle(&["sh", "-c", script]);
    let copy_s = copy.to_string_lossy().into_owned();
    b.edit(|s| {
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("COPY={copy_s}")));
        for set in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_PTRACE"));
        }
    });
    let id = unique_id("ptrace");
    rt.create_and_start(&id, &b);
    for _ in 0..40 {
        let o = rt.exec(&id, &["true"]);
        assert!(o.status.success(), "exec: {}", describe(&o));
    }
    let tmp = b.rootfs().join("tmp");
    std::fs::write(tmp.join("stop"), "").unwrap();
    assert!(wait_for_file(&tmp.join("done"), SECS), "racer did not stop");
    let log = std::fs::read_to_string(tmp.join("log")).unwrap_or_default();
    assert!(
        !log.contains("hit"),
        "the runtime binary was reachable as /proc/<pid>/exe from inside: {log}"
    );
    assert_eq!(
        berth_tests::sha256_file(&copy),
        before,
        "runtime binary changed"
    );
    let d = rt.delete(&id, true);
    assert!(d.status.success(), "{}", describe(&d));
}

/// SCMP_ACT_NOTIFY: the runtime hands the listener fd and the container process state to the
/// agent at `listenerPath`; the agent answers the container's syscall.
#[test]
fn seccomp_notify_reaches_the_agent() {
    let Some(rt) = setup("seccomp_notify_reaches_the_agent") else {
        return;
    };
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> (Value, i32) {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel just gave us this fd.
                fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
            }
        }
        let n = msg.bytes;
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let fd = fd.expect("no fd with the message");
        // Answer the first notified syscall with EROFS.
        // SAFETY: ioctls on the listener fd with zeroed kernel structs.
        let nr = unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            assert_eq!(
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req),
                0
            );
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            resp.error = -libc::EROFS;
            assert_eq!(
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp),
                0
            );
            req.data.nr
        };
        (state, nr)
    });
    let b = busybox_bundle(&["sh", "-c", "mkdir /tmp/notified; echo rc=$?"]);
    let sock_s = sock.to_string_lossy().into_owned();
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_s,
            "listenerMetadata": "meta-1",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let id = unique_id("notify");
    let o = rt.run(&id, &b);
    let out = text(&o.stdout) + &text(&o.stderr);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        out.contains("Read-only file system"),
        "agent's answer not seen: {out}"
    );
    assert!(out.contains("rc=1"), "{out}");
    assert!(!b.rootfs().join("tmp/notified").exists());
    let (state, nr) = agent.join().unwrap();
    assert!(
        nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32,
        "notified syscall {nr}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], json!("meta-1"), "{state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
}
