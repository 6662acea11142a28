//! The per-container monitor end to end (root): real busybox containers through
//! berth-runtime and berth-monitor. Build both first:
//! `cargo build -p berth-runtime -p berth-monitor`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_engine::monitor::{self, LogStream, MonitorOpts, Status};
use berth_tests::{busybox_bundle, require_root, runtime_bin, unique_id, Bundle};

fn monitor_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("berth-monitor");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "berth-monitor not built under {}: cargo build -p berth-monitor",
        target.display()
    );
}

struct Env {
    dir: tempfile::TempDir,
    id: String,
}

impl Env {
    fn new(name: &str) -> Option<Env> {
        if !require_root(name) {
            return None;
        }
        Some(Env {
            dir: tempfile::tempdir().unwrap(),
            id: unique_id("mon"),
        })
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("rt")
    }
    fn opts(&self, b: &Bundle) -> MonitorOpts {
        MonitorOpts {
            monitor_bin: monitor_bin(),
            runtime: runtime_bin(),
            runtime_root: self.root(),
            bundle: b.dir.clone(),
            id: self.id.clone(),
            state_dir: self.state(),
            tty: false,
            stdin: false,
            stdin_once: false,
            log_max_size: 0,
            log_max_files: 1,
            console_size: None,
        }
    }
    fn wait_exit(&self, timeout: Duration) -> Status {
        let deadline = Instant::now() + timeout;
        loop {
            let s = monitor::status(&self.state());
            if matches!(s, Status::Exited { .. }) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn runtime_has_container(&self) -> bool {
        self.root().join(&self.id).exists()
    }
    fn logs(&self) -> Vec<(LogStream, String)> {
        monitor::read_logs(&self.state(), false)
            .unwrap()
            .map(|r| r.unwrap())
            .map(|r| (r.stream, r.line))
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new(runtime_bin())
            .arg("--root")
            .arg(self.root())
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn proc_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn exit_code_and_both_streams_logged_then_deleted() {
    let Some(env) = Env::new("exit_code_and_both_streams_logged_then_deleted") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let h = monitor::spawn(&env.opts(&b)).unwrap();
    assert!(h.pid > 0 && h.monitor_pid > 0);
    let st = env.wait_exit(Duration::from_secs(10));
    let Status::Exited {
        code,
        finished_at,
        oom,
    } = st
    else {
        panic!("not exited: {st:?}")
    };
    assert_eq!(code, 3);
    assert!(!oom);
    assert!(
        finished_at.ends_with('Z') && finished_at.len() == 30,
        "{finished_at}"
    );
    let logs = env.logs();
    assert!(
        logs.contains(&(LogStream::Stdout, "out\n".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&(LogStream::Stderr, "err\n".into())),
        "{logs:?}"
    );
    assert!(!env.runtime_has_container(), "runtime state left behind");
    let raw = std::fs::read_to_string(env.state().join("container-json.log")).unwrap();
    assert!(
        raw.starts_with("{\"log\":\""),
        "docker json-file format: {raw}"
    );
}

#[test]
fn create_failure_is_reported_with_the_runtime_error() {
    let Some(env) = Env::new("create_failure_is_reported_with_the_runtime_error") else {
        return;
    };
    let b = busybox_bundle(&["/does-not-exist"]);
    let err = monitor::spawn(&env.opts(&b)).unwrap_err().to_string();
    assert!(
        err.contains(&env.id) && err.contains("does-not-exist"),
        "{err}"
    );
    assert!(env.state().join("failed.json").exists());
    assert_eq!(monitor::status(&env.state()), Status::Unknown);
    assert!(!env.runtime_has_container());
}

#[test]
fn survives_the_death_of_its_spawner_and_reaps_later() {
    let Some(env) = Env::new("survives_the_death_of_its_spawner_and_reaps_later") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "echo up; exec sleep 1000"]);
    let o = env.opts(&b);
    // The spawner: a shell that runs the monitor, then waits until we SIGKILL it.
    let report = env.dir.path().join("report");
    let mut spawner = Command::new("sh")
        .arg("-c")
        .arg("\"$@\" > \"$REPORT\"; exec sleep 1000")
        .arg("sh")
        .arg(&o.monitor_bin)
        .args(["--runtime"])
        .arg(&o.runtime)
        .arg("--runtime-root")
        .arg(&o.runtime_root)
        .arg("--bundle")
        .arg(&o.bundle)
        .args(["--id", &o.id, "--state-dir"])
        .arg(&o.state_dir)
        .env("REPORT", &report)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&report)
        .unwrap_or_default()
        .starts_with("started")
    {
        assert!(Instant::now() < deadline, "monitor never reported");
        std::thread::sleep(Duration::from_millis(20));
    }
    spawner.kill().unwrap();
    spawner.wait().unwrap();

    let Status::Running { pid, monitor_pid } = monitor::status(&env.state()) else {
        panic!("not running after the spawner died")
    };
    assert!(proc_alive(pid) && proc_alive(monitor_pid));
    let st = std::fs::read_to_string(format!("/proc/{monitor_pid}/status")).unwrap();
    let ppid = st.lines().find(|l| l.starts_with("PPid:")).unwrap();
    assert_ne!(
        ppid.split_whitespace().nth(1).unwrap(),
        std::process::id().to_string()
    );
    let cppid = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        cppid.lines().any(|l| l == format!("PPid:\t{monitor_pid}")),
        "the init is the monitor's child: {cppid}"
    );
    std::thread::sleep(Duration::from_millis(300)); // idle
    let rss = st_rss(monitor_pid);
    println!("berth-monitor idle VmRSS: {rss} kB");
    eprintln!("berth-monitor idle VmRSS: {rss} kB");

    // A follower sees "up" and ends when the container exits.
    let state = env.state();
    let follower = std::thread::spawn(move || {
        monitor::read_logs(&state, true)
            .unwrap()
            .map(|r| r.unwrap().line)
            .collect::<Vec<_>>()
    });
    let kill = Command::new(runtime_bin())
        .arg("--root")
        .arg(env.root())
        .args(["kill", &env.id, "KILL"])
        .status()
        .unwrap();
    assert!(kill.success());
    let st = env.wait_exit(Duration::from_secs(10));
    assert!(matches!(st, Status::Exited { code: 137, .. }), "{st:?}");
    assert!(!env.runtime_has_container());
    assert_eq!(follower.join().unwrap(), vec!["up\n".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_alive(monitor_pid) {
        assert!(Instant::now() < deadline, "monitor did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn st_field(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn st_rss(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn log_rotation_keeps_order() {
    let Some(env) = Env::new("log_rotation_keeps_order") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "for i in $(seq 1 300); do echo line$i; done"]);
    let mut o = env.opts(&b);
    o.log_max_size = 4000;
    o.log_max_files = 3;
    monitor::spawn(&o).unwrap();
    assert!(matches!(
        env.wait_exit(Duration::from_secs(10)),
        Status::Exited { code: 0, .. }
    ));
    assert!(env.state().join("container-json.log.1").exists());
    assert!(env.state().join("container-json.log.2").exists());
    assert!(!env.state().join("container-json.log.3").exists());
    for f in [
        "container-json.log",
        "container-json.log.1",
        "container-json.log.2",
    ] {
        let len = std::fs::metadata(env.state().join(f)).unwrap().len();
        assert!(len <= 4000, "{f}: {len} bytes");
    }
    let nums: Vec<u32> = env
        .logs()
        .iter()
        .map(|(_, l)| l.trim_end().strip_prefix("line").unwrap().parse().unwrap())
        .collect();
    assert_eq!(*nums.last().unwrap(), 300);
    assert!(nums.len() > 50 && nums.len() < 300, "{}", nums.len());
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
}

#[test]
fn tty_output_is_logged() {
    let Some(env) = Env::new("tty_output_is_logged") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "echo hello; exit 5"]);
    b.edit(|s| s["process"]["terminal"] = true.into());
    let mut o = env.opts(&b);
    o.tty = true;
    monitor::spawn(&o).unwrap();
    let st = env.wait_exit(Duration::from_secs(10));
    assert!(matches!(st, Status::Exited { code: 5, .. }), "{st:?}");
    let logs = env.logs();
    assert!(
        logs.iter()
            .any(|(s, l)| *s == LogStream::Stdout && l.starts_with("hello")),
        "{logs:?}"
    );
    assert!(!env.runtime_has_container());
}

fn wait_log(env: &Env, want: &str, timeout: Duration) -> Vec<(LogStream, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        let logs = env.logs();
        if logs.iter().any(|(_, l)| l.contains(want)) || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stdin_from_attach_socket_reaches_the_container() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let Some(env) = Env::new("stdin_from_attach_socket_reaches_the_container") else {
        return;
    };
    let b = busybox_bundle(&["cat"]);
    let mut o = env.opts(&b);
    o.stdin = true;
    monitor::spawn(&o).unwrap();
    let sock = env.state().join("attach.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "attach.sock mode {mode:o}");
    let mut s = monitor::attach_stdin(&env.state()).unwrap();
    s.write_all(b"hello from stdin\n").unwrap();
    let logs = wait_log(&env, "hello from stdin", Duration::from_secs(10));
    assert!(
        logs.contains(&(LogStream::Stdout, "hello from stdin\n".into())),
        "{logs:?}"
    );
    // Without stdin-once a detach keeps stdin open: a second client still reaches cat.
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(
        monitor::status(&env.state()),
        Status::Running { .. }
    ));
    let mut s2 = monitor::attach_stdin(&env.state()).unwrap();
    s2.write_all(b"second client\n").unwrap();
    let logs = wait_log(&env, "second client", Duration::from_secs(10));
    assert!(
        logs.contains(&(LogStream::Stdout, "second client\n".into())),
        "{logs:?}"
    );
    // A big write is not lost (back-pressure through the monitor's fixed buffer).
    let big: String = (0..4000).map(|i| format!("l{i}\n")).collect();
    s2.write_all(big.as_bytes()).unwrap();
    let logs = wait_log(&env, "l3999\n", Duration::from_secs(10));
    assert!(
        logs.iter().any(|(_, l)| l == "l3999\n"),
        "last line missing"
    );
    // Idle with a client attached: the monitor's own memory stays small (the stdin buffer
    // is one fixed 16 KiB allocation).
    std::thread::sleep(Duration::from_millis(200));
    let Status::Running { monitor_pid, .. } = monitor::status(&env.state()) else {
        panic!("not running")
    };
    let anon = st_field(monitor_pid, "RssAnon:");
    let rss = st_field(monitor_pid, "VmRSS:");
    eprintln!("berth-monitor --stdin idle: VmRSS {rss} kB, RssAnon {anon} kB");
    assert!(anon <= 512, "monitor RssAnon {anon} kB");
    let kill = Command::new(runtime_bin())
        .arg("--root")
        .arg(env.root())
        .args(["kill", &env.id, "KILL"])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(matches!(
        env.wait_exit(Duration::from_secs(10)),
        Status::Exited { .. }
    ));
    assert!(!sock.exists(), "attach.sock left behind");
    assert!(monitor::attach_stdin(&env.state()).is_err());
}

#[test]
fn stdin_once_closes_stdin_when_the_client_leaves() {
    use std::io::Write;
    let Some(env) = Env::new("stdin_once_closes_stdin_when_the_client_leaves") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "cat; echo cat-done; exit 4"]);
    let mut o = env.opts(&b);
    o.stdin = true;
    o.stdin_once = true;
    monitor::spawn(&o).unwrap();
    let mut s = monitor::attach_stdin(&env.state()).unwrap();
    s.write_all(b"once\n").unwrap();
    drop(s);
    let st = env.wait_exit(Duration::from_secs(10));
    assert!(matches!(st, Status::Exited { code: 4, .. }), "{st:?}");
    let lines: Vec<String> = env.logs().into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, vec!["once\n".to_string(), "cat-done\n".to_string()]);
}

#[test]
fn without_stdin_the_container_reads_dev_null() {
    let Some(env) = Env::new("without_stdin_the_container_reads_dev_null") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "cat; echo eof"]);
    monitor::spawn(&env.opts(&b)).unwrap();
    let st = env.wait_exit(Duration::from_secs(10));
    assert!(matches!(st, Status::Exited { code: 0, .. }), "{st:?}");
    assert!(!env.state().join("attach.sock").exists());
    assert_eq!(env.logs(), vec![(LogStream::Stdout, "eof\n".to_string())]);
}

#[test]
fn resize_changes_the_tty_size() {
    use std::io::Write;
    let Some(env) = Env::new("resize_changes_the_tty_size") else {
        return;
    };
    let b = busybox_bundle(&["sh", "-c", "read x; stty size; read y; stty size"]);
    b.edit(|s| s["process"]["terminal"] = true.into());
    let mut o = env.opts(&b);
    o.tty = true;
    o.stdin = true;
    monitor::spawn(&o).unwrap();
    let mut s = monitor::attach_stdin(&env.state()).unwrap();
    monitor::resize(&env.state(), 33, 77).unwrap();
    s.write_all(b"go\n").unwrap();
    let logs = wait_log(&env, "33 77", Duration::from_secs(10));
    assert!(logs.iter().any(|(_, l)| l.contains("33 77")), "{logs:?}");
    monitor::resize(&env.state(), 50, 120).unwrap();
    s.write_all(b"again\n").unwrap();
    let st = env.wait_exit(Duration::from_secs(10));
    assert!(matches!(st, Status::Exited { code: 0, .. }), "{st:?}");
    let logs = env.logs();
    assert!(logs.iter().any(|(_, l)| l.contains("50 120")), "{logs:?}");
    let err = monitor::resize(&env.state(), 10, 10)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ctl") && err.contains("is the container running"),
        "{err}"
    );
    assert!(monitor::resize(&env.state(), 0, 10)
        .unwrap_err()
        .to_string()
        .contains("at least 1"));
}

#[test]
fn console_size_is_set_before_the_process_starts() {
    let Some(env) = Env::new("console_size_is_set_before_the_process_starts") else {
        return;
    };
    // No wait: the first thing the process does is ask for its size.
    let b = busybox_bundle(&["stty", "size"]);
    b.edit(|s| s["process"]["terminal"] = true.into());
    let mut o = env.opts(&b);
    o.tty = true;
    o.console_size = Some((33, 77));
    monitor::spawn(&o).unwrap();
    let st = env.wait_exit(Duration::from_secs(10));
    assert!(matches!(st, Status::Exited { code: 0, .. }), "{st:?}");
    let logs = env.logs();
    assert!(logs.iter().any(|(_, l)| l.contains("33 77")), "{logs:?}");
}
