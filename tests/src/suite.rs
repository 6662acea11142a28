//! Helpers shared by the root runtime suites (`tests/tests/runtime*.rs`):
//! setup, output formatting, leftover checks, fd passing, console sockets.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bundle::Bundle;
use crate::host::{cgroup_leftovers, fix_hybrid_hugetlb, host_mounts_mentioning, require_root};
use crate::runtime::{exit_code, Runtime};

/// The runtime under test, or None (after printing why) when not root.
pub fn setup(test: &str) -> Option<Runtime> {
    if !require_root(test) {
        return None;
    }
    let rt = Runtime::new();
    if rt.name() == "crun" && fix_hybrid_hugetlb() {
        println!("note: mounted hugetlb as cgroup v1 so crun accepts this hybrid host");
    }
    Some(rt)
}

/// Lossy UTF-8.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code, stdout and stderr of a finished command, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit={} stdout={:?} stderr={:?}",
        exit_code(&o.status),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// `run` the bundle, assert exit 0, return stdout.
pub fn run_ok(rt: &Runtime, b: &Bundle, prefix: &str) -> String {
    let id = crate::host::unique_id(prefix);
    let o = rt.run(&id, b);
    assert!(o.status.success(), "run {id}: {}", describe(&o));
    text(&o.stdout)
}

/// `run [extra...] --bundle <dir> <id>` in the foreground, output captured.
pub fn run_with(rt: &Runtime, id: &str, b: &Bundle, extra: &[&str]) -> Output {
    rt.track(id);
    let dir = b.dir.to_string_lossy().into_owned();
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", &dir, id]);
    rt.cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn runtime run")
}

/// After the container is gone: no state, no state dir, no cgroup, no host mount.
pub fn assert_nothing_left(rt: &Runtime, id: &str, b: &Bundle) {
    assert!(rt.try_state(id).is_err(), "state {id} still succeeds");
    assert!(
        rt.state_leftovers(id).is_empty(),
        "state dir left under --root: {:?}",
        rt.state_leftovers(id)
    );
    let cg = cgroup_leftovers(&b.cgroups_path);
    assert!(cg.is_empty(), "cgroup dirs left: {cg:?}");
    let m = host_mounts_mentioning(&b.dir);
    assert!(m.is_empty(), "host mounts left: {m:?}");
}

/// Makes `src` available as fd `target` in the spawned child (not CLOEXEC).
pub fn pass_fd(cmd: &mut Command, src: RawFd, target: RawFd) {
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if src == target {
                let flags = libc::fcntl(target, libc::F_GETFD);
                if flags < 0 || libc::fcntl(target, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(src, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Polls until `p` exists or `timeout` passes.
pub fn wait_for_file(p: &Path, timeout: Duration) -> bool {
    wait_until(timeout, || p.exists())
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Listens on `sock` (a path that must not exist) and returns a thread that
/// accepts one connection (within 20 s) and receives one fd over SCM_RIGHTS:
/// the pty master a runtime sends for `--console-socket`.
pub fn console_socket_receiver(sock: &Path) -> JoinHandle<Option<File>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::IoSliceMut;

    let listener = UnixListener::bind(sock).expect("bind console socket");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    std::thread::spawn(move || -> Option<File> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return None,
            }
        };
        stream.set_nonblocking(false).ok()?;
        let mut buf = [0u8; 1024];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .ok()?;
        for c in msg.cmsgs().ok()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the fd was just received and is owned by nobody else.
                return fds
                    .first()
                    .map(|&fd| unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            }
        }
        None
    })
}

/// Reads a pty master until `done(output so far)` holds after a quiet poll,
/// the slave side is closed (EIO) or `timeout` passes.
pub fn read_pty(
    master: &mut File,
    timeout: Duration,
    mut done: impl FnMut(&str) -> bool,
) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        if n <= 0 {
            if done(&text(&out)) {
                break;
            }
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO once the slave side is closed
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    text(&out)
}

/// The pids listed in `cgroup.procs` of the first hierarchy (pids, memory,
/// then the unified mount) holding `cgroups_path`; None if none does.
pub fn cgroup_procs(cgroups_path: &str) -> Option<Vec<i32>> {
    let rel = cgroups_path.trim_start_matches('/');
    ["pids", "memory", "freezer", "unified", ""]
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(rel))
        .find(|d| d.join("cgroup.procs").exists())
        .map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
}

/// True when `pid` no longer runs: gone, or a zombie waiting to be reaped.
pub fn pid_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}
