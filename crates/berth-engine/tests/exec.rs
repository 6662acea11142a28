//! Exec end to end (root): a busybox container run by berth-monitor, and execs into it
//! through `ExecService` (the same calls berthd makes). Build the binaries first:
//! `cargo build -p berth-runtime -p berth-monitor`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_engine::containers::config::ContainerConfig;
use berth_engine::containers::ExecTarget;
use berth_engine::exec::{ExecConfig, ExecIo, ExecService, StartConfig, Started};
use berth_engine::monitor::{self, MonitorOpts};
use berth_tests::{busybox_bundle, require_root, runtime_bin, unique_id, Bundle};

fn monitor_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("berth-monitor");
        if p.is_file() {
            return p;
        }
    }
    panic!("berth-monitor not built: cargo build -p berth-monitor");
}

struct Ctr {
    dir: tempfile::TempDir,
    id: String,
    pid: i32,
    _b: Bundle,
}

impl Ctr {
    fn start(name: &str) -> Option<Ctr> {
        if !require_root(name) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let id = unique_id("exec");
        let b = busybox_bundle(&["sleep", "1000"]);
        let h = monitor::spawn(&MonitorOpts {
            monitor_bin: monitor_bin(),
            runtime: runtime_bin(),
            runtime_root: dir.path().join("rt"),
            bundle: b.dir.clone(),
            id: id.clone(),
            state_dir: dir.path().join("state"),
            ..MonitorOpts::default()
        })
        .unwrap();
        Some(Ctr {
            dir,
            id,
            pid: h.pid,
            _b: b,
        })
    }
    fn target(&self) -> ExecTarget {
        ExecTarget {
            id: self.id.clone(),
            name: "c".into(),
            runtime_bin: runtime_bin(),
            runtime_root: self.dir.path().join("rt"),
            pid: self.pid,
            running: true,
            paused: false,
            config: ContainerConfig {
                env: vec!["PATH=/bin".into(), "FROM_CONTAINER=1".into()],
                ..ContainerConfig::default()
            },
        }
    }
    fn svc(&self) -> ExecService {
        ExecService::new(self.dir.path().join("execs"))
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = Command::new(runtime_bin())
            .arg("--root")
            .arg(self.dir.path().join("rt"))
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn cfg(cmd: &[&str]) -> ExecConfig {
    ExecConfig {
        attach_stdout: true,
        attach_stderr: true,
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..ExecConfig::default()
    }
}

fn wait(mut s: Started) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(c) = *s.done.borrow_and_update() {
            return c;
        }
        assert!(std::time::Instant::now() < deadline, "exec did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs an attached, non-tty exec; returns (stdout, stderr, exit code).
fn run(svc: &ExecService, t: ExecTarget, c: ExecConfig, input: &[u8]) -> (String, String, i32) {
    let id = svc.create(t, c).unwrap();
    let mut s = svc.start(&id, &StartConfig::default()).unwrap();
    let ExecIo::Pipes {
        stdin,
        mut stdout,
        mut stderr,
    } = std::mem::replace(&mut s.io, ExecIo::Detached)
    else {
        panic!("not pipes")
    };
    if let Some(mut i) = stdin {
        i.write_all(input).unwrap();
    }
    let errs = std::thread::spawn(move || {
        let mut e = String::new();
        stderr.read_to_string(&mut e).unwrap();
        e
    });
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let code = wait(s);
    let v = svc.inspect(&id).unwrap();
    assert_eq!(v["ExitCode"], code);
    assert_eq!(v["Running"], false);
    assert!(v["Pid"].as_i64().unwrap() > 0, "{v}");
    (out, errs.join().unwrap(), code)
}

#[test]
fn exec_streams_exit_codes_env_cwd_user() {
    let Some(c) = Ctr::start("exec_streams_exit_codes_env_cwd_user") else {
        return;
    };
    let svc = c.svc();
    let (out, err, code) = run(
        &svc,
        c.target(),
        cfg(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        b"",
    );
    assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));

    let mut e = cfg(&["sh", "-c", "echo $FOO $FROM_CONTAINER; pwd; id -u; id -g"]);
    e.env = Some(vec!["FOO=bar".into()]);
    e.working_dir = "/tmp".into();
    e.user = "1234:5678".into();
    let (out, _, code) = run(&svc, c.target(), e, b"");
    assert_eq!(code, 0);
    assert_eq!(out, "bar 1\n/tmp\n1234\n5678\n");

    // A user name from the image's /etc/passwd.
    let mut e = cfg(&["id", "-un"]);
    e.user = "nobody".into();
    let (out, _, _) = run(&svc, c.target(), e, b"");
    assert_eq!(out, "nobody\n");

    // stdin attached: cat sees the bytes and EOF when stdin is closed.
    let mut e = cfg(&["cat"]);
    e.attach_stdin = true;
    let (out, _, code) = run(&svc, c.target(), e, b"piped in\n");
    assert_eq!((out.as_str(), code), ("piped in\n", 0));

    // A second start is refused.
    let id = svc.create(c.target(), cfg(&["true"])).unwrap();
    wait(svc.start(&id, &StartConfig::default()).unwrap());
    let e = svc.start(&id, &StartConfig::default()).err().unwrap();
    assert!(e.message.contains("already been started"), "{}", e.message);
}

#[test]
fn exec_tty_detach_and_errors() {
    let Some(c) = Ctr::start("exec_tty_detach_and_errors") else {
        return;
    };
    let svc = c.svc();
    // tty: output on the pty master, console size applied, resize works while it runs.
    let mut e = cfg(&["sh", "-c", "stty size; read x; stty size"]);
    e.tty = true;
    e.attach_stdin = true;
    e.console_size = Some(vec![20, 60]);
    let id = svc.create(c.target(), e).unwrap();
    assert!(svc.tty(&id).unwrap());
    let mut s = svc.start(&id, &StartConfig::default()).unwrap();
    let ExecIo::Tty(mut m) = std::mem::replace(&mut s.io, ExecIo::Detached) else {
        panic!("not a tty")
    };
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("20 60") {
        let n = m.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    svc.resize(&id, 30, 90).unwrap();
    m.write_all(b"go\n").unwrap();
    loop {
        match m.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break, // EIO: the slave side is closed
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("30 90"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(wait(s), 0);
    assert_eq!(svc.inspect(&id).unwrap()["ProcessConfig"]["tty"], true);

    // Detached: start returns once the process runs; it then finishes on its own.
    let id = svc
        .create(c.target(), cfg(&["sh", "-c", "sleep 0.3; exit 7"]))
        .unwrap();
    let s = svc
        .start(
            &id,
            &StartConfig {
                detach: true,
                ..StartConfig::default()
            },
        )
        .unwrap();
    assert!(matches!(s.io, ExecIo::Detached));
    assert_eq!(svc.inspect(&id).unwrap()["Running"], true);
    assert_eq!(wait(s), 7);

    // A command that does not exist: the start fails naming it.
    let id = svc.create(c.target(), cfg(&["no-such-cmd"])).unwrap();
    let e = svc.start(&id, &StartConfig::default()).err().unwrap();
    assert!(e.message.contains("no-such-cmd"), "{}", e.message);
    let code = svc.inspect(&id).unwrap()["ExitCode"].as_i64().unwrap();
    assert!(code == 126 || code == 127, "{code}");

    // Not running / paused / no command.
    let mut t = c.target();
    t.running = false;
    let e = svc.create(t, cfg(&["true"])).unwrap_err();
    assert_eq!(e.message, format!("Container {} is not running", c.id));
    let mut t = c.target();
    t.paused = true;
    let e = svc.create(t, cfg(&["true"])).unwrap_err();
    assert!(e
        .message
        .ends_with("is paused, unpause the container before exec"));
    let e = svc.create(c.target(), cfg(&[])).unwrap_err();
    assert!(e.message.contains("No exec command specified"));
    assert!(svc
        .inspect("nope")
        .unwrap_err()
        .message
        .contains("No such exec instance"));
}
