//! `docker exec`: extra processes in a running container, run with `berth-runtime exec
//! --process <json>` as children of the engine (they do not survive an engine restart).
//!
//! [`ExecService::create`] records an exec; [`ExecService::start`] builds its process.json
//! from the container's spec (`<runtime-root>/<id>/config.json`) and config (User, Env,
//! WorkingDir) merged with the exec's, runs the runtime in the foreground (so the engine
//! learns the exit code) and returns once the process runs (its pid file exists), with the
//! process's stdio: the pty master (received over a console socket) or pipes. A waiter
//! thread records the exit code.

use crate::containers::ExecTarget;
use crate::images::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
    /// `[height, width]`.
    pub console_size: Option<Vec<u16>>,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StartConfig {
    pub detach: bool,
    pub tty: bool,
    pub console_size: Option<Vec<u16>>,
}

/// A started exec's stdio, for the caller to pump.
pub enum ExecIo {
    /// Detached: nothing to pump.
    Detached,
    /// The pty master (read and write).
    Tty(File),
    /// Pipes; `stdin` only when the exec attaches stdin.
    Pipes {
        stdin: Option<ChildStdin>,
        stdout: ChildStdout,
        stderr: ChildStderr,
    },
}

/// What [`ExecService::start`] hands back.
pub struct Started {
    pub io: ExecIo,
    /// Becomes `Some(exit code)` when the process has exited.
    pub done: tokio::sync::watch::Receiver<Option<i32>>,
    /// The byte sequence on stdin that detaches the client (Docker's detach keys; the
    /// default is ctrl-p,ctrl-q). Empty when stdin is not attached.
    pub detach_keys: Vec<u8>,
}

struct Exec {
    id: String,
    target: ExecTarget,
    cfg: ExecConfig,
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    master: Option<Arc<File>>,
    created: Instant,
}

/// The exec records. Cheap to clone.
#[derive(Clone)]
pub struct ExecService {
    dir: PathBuf,
    execs: Arc<Mutex<HashMap<String, Exec>>>,
}

/// Finished execs kept for inspection before the oldest are dropped.
const KEEP_FINISHED: usize = 256;

impl ExecService {
    /// `dir` holds each running exec's process.json, pid file, console socket and runtime
    /// log (e.g. `<exec-root>/execs`).
    pub fn new(dir: PathBuf) -> ExecService {
        ExecService {
            dir,
            execs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Exec>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an exec in `target` (from `ContainerService::exec_target`). 409 when the
    /// container is not running or paused, 400 without a command.
    pub fn create(&self, target: ExecTarget, cfg: ExecConfig) -> Result<String> {
        if !target.running {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                target.id
            )));
        }
        if target.paused {
            return Err(Error::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                target.id
            )));
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::invalid(
                "No exec command specified: set Cmd to the command to run, e.g. [\"sh\"]",
            ));
        }
        parse_detach_keys(&cfg.detach_keys)?;
        for kv in cfg.env.iter().flatten() {
            if kv.split('=').next().is_none_or(str::is_empty) {
                return Err(Error::invalid(format!(
                    "invalid environment variable {kv:?} in Env: use NAME=value"
                )));
            }
        }
        let id = crate::ids::new_id();
        let mut execs = self.lock();
        let finished: usize = execs.values().filter(|e| e.exit_code.is_some()).count();
        if finished > KEEP_FINISHED {
            let mut old: Vec<(Instant, String)> = execs
                .values()
                .filter(|e| e.exit_code.is_some())
                .map(|e| (e.created, e.id.clone()))
                .collect();
            old.sort();
            for (_, id) in old.into_iter().take(finished - KEEP_FINISHED) {
                execs.remove(&id);
            }
        }
        execs.insert(
            id.clone(),
            Exec {
                id: id.clone(),
                target,
                cfg,
                started: false,
                running: false,
                exit_code: None,
                pid: 0,
                master: None,
                created: Instant::now(),
            },
        );
        Ok(id)
    }

    fn no_such(id: &str) -> Error {
        Error::not_found(format!("No such exec instance: {id}"))
    }

    /// `GET /exec/{id}/json` in Docker's shape.
    pub fn inspect(&self, id: &str) -> Result<Value> {
        let execs = self.lock();
        let e = execs.get(id).ok_or_else(|| Self::no_such(id))?;
        let cmd = e.cfg.cmd.clone().unwrap_or_default();
        Ok(json!({
            "ID": e.id,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "ProcessConfig": {
                "tty": e.cfg.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": e.cfg.privileged,
                "user": e.cfg.user,
            },
            "OpenStdin": e.cfg.attach_stdin,
            "OpenStderr": e.cfg.attach_stderr,
            "OpenStdout": e.cfg.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.target.id,
            "DetachKeys": e.cfg.detach_keys,
            "Pid": e.pid,
        }))
    }

    /// Whether the exec was created with a tty (the start's stream is raw then).
    pub fn tty(&self, id: &str) -> Result<bool> {
        let execs = self.lock();
        Ok(execs.get(id).ok_or_else(|| Self::no_such(id))?.cfg.tty)
    }

    /// Before a start: the exec exists and was not started (409 otherwise). Returns its tty.
    pub fn startable(&self, id: &str) -> Result<bool> {
        let execs = self.lock();
        let e = execs.get(id).ok_or_else(|| Self::no_such(id))?;
        if e.started {
            return Err(Self::already(id));
        }
        Ok(e.cfg.tty)
    }

    fn already(id: &str) -> Error {
        Error::conflict(format!(
            "Exec command {id} has already been started: create a new exec"
        ))
    }

    /// `POST /exec/{id}/resize`.
    pub fn resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let master = {
            let execs = self.lock();
            let e = execs.get(id).ok_or_else(|| Self::no_such(id))?;
            if !e.running {
                return Err(Error::conflict(format!(
                    "exec {id} is not running: resize it while it runs"
                )));
            }
            e.master.clone()
        };
        match master {
            Some(m) => set_winsize(m.as_raw_fd(), height, width),
            // Docker ignores a resize of an exec without a tty.
            None => Ok(()),
        }
    }

    /// Runs the exec; blocks until the process runs (or failed to start). Call from a
    /// blocking context.
    pub fn start(&self, id: &str, sc: &StartConfig) -> Result<Started> {
        let (target, mut cfg) = {
            let mut execs = self.lock();
            let e = execs.get_mut(id).ok_or_else(|| Self::no_such(id))?;
            if e.started {
                return Err(Self::already(id));
            }
            e.started = true;
            e.running = true;
            (e.target.clone(), e.cfg.clone())
        };
        if sc.console_size.is_some() {
            cfg.console_size = sc.console_size.clone();
        }
        match self.run(id, &target, &cfg, sc.detach) {
            Ok(s) => Ok(s),
            Err(err) => {
                let mut execs = self.lock();
                if let Some(e) = execs.get_mut(id) {
                    e.running = false;
                    // Docker's codes for a command that cannot be run.
                    e.exit_code = Some(if err.message.contains("not found") {
                        127
                    } else {
                        126
                    });
                }
                Err(err)
            }
        }
    }

    fn run(&self, id: &str, t: &ExecTarget, cfg: &ExecConfig, detach: bool) -> Result<Started> {
        let dir = self.dir.join(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("{}: {e}", dir.display())))?;
        let cleanup = DirGuard(dir.clone());
        let process = process_json(t, cfg)?;
        let pfile = dir.join("process.json");
        std::fs::write(&pfile, serde_json::to_vec(&process).unwrap_or_default())
            .map_err(|e| Error::internal(format!("{}: {e}", pfile.display())))?;
        let pid_file = dir.join("pid");
        let log = dir.join("runtime.log");
        let mut cmd = Command::new(&t.runtime_bin);
        cmd.arg("--root")
            .arg(&t.runtime_root)
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json")
            .arg("exec")
            .arg("--process")
            .arg(&pfile)
            .arg("--pid-file")
            .arg(&pid_file);
        let mut console = None;
        if cfg.tty {
            // The runtime connects to this path, so it must fit in sun_path (108 bytes)
            // whatever the exec root is: a short name in the temp dir, like the monitor's.
            let sock = std::env::temp_dir().join(format!("berth-exec-{}.sock", &id[..16]));
            let _ = std::fs::remove_file(&sock);
            let l = UnixListener::bind(&sock)
                .map_err(|e| Error::internal(format!("{}: {e}", sock.display())))?;
            l.set_nonblocking(true)
                .map_err(|e| Error::internal(format!("{}: {e}", sock.display())))?;
            cmd.arg("--console-socket").arg(&sock);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            console = Some((l, SockGuard(sock)));
        } else if detach {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        } else {
            cmd.stdin(if cfg.attach_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        }
        cmd.arg(&t.id);
        let mut child = cmd.spawn().map_err(|e| {
            Error::internal(format!(
                "running {}: {e} (is berth-runtime installed next to berthd?)",
                t.runtime_bin.display()
            ))
        })?;
        let failed = |child: &mut std::process::Child| -> Error {
            let _ = child.kill();
            let _ = child.wait();
            let msg = runtime_error(&log).unwrap_or_else(|| "the runtime failed".into());
            Error::internal(format!("OCI runtime exec failed: {msg}"))
        };
        // The master arrives before the pid file is written.
        let mut master = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        if let Some((l, _)) = &console {
            loop {
                match l.accept() {
                    Ok((s, _)) => {
                        master = Some(recv_fd(s.as_raw_fd()).map_err(|e| {
                            let _ = failed(&mut child);
                            Error::internal(format!("exec {id}: console socket: {e}"))
                        })?);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        let _ = failed(&mut child);
                        return Err(Error::internal(format!("exec {id}: console socket: {e}")));
                    }
                }
                if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                    return Err(failed(&mut child));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let read_pid = || {
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        };
        let pid = loop {
            if let Some(p) = read_pid() {
                break p;
            }
            match child.try_wait() {
                // Exited: a failed start, unless the process was so quick that the pid file
                // appeared since the check above (std keeps the status for the waiter).
                Ok(Some(st)) => match read_pid() {
                    Some(p) => break p,
                    None => {
                        let msg =
                            runtime_error(&log).unwrap_or_else(|| format!("exited with {st}"));
                        return Err(Error::internal(format!("OCI runtime exec failed: {msg}")));
                    }
                },
                Ok(None) => {}
                Err(e) => return Err(Error::internal(format!("exec {id}: wait: {e}"))),
            }
            if Instant::now() > deadline {
                return Err(failed(&mut child));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let master = master.map(Arc::new);
        if let (Some(m), Some(cs)) = (&master, &cfg.console_size) {
            if let [h, w] = cs[..] {
                if h > 0 && w > 0 {
                    let _ = set_winsize(m.as_raw_fd(), h, w);
                }
            }
        }
        {
            let mut execs = self.lock();
            if let Some(e) = execs.get_mut(id) {
                e.pid = pid;
                e.master = master.clone();
            }
        }
        let io = if let Some(m) = &master {
            let f = m
                .try_clone()
                .map_err(|e| Error::internal(format!("exec {id}: dup pty master: {e}")))?;
            if detach {
                // Nobody reads the terminal: drain it so the process never blocks on output.
                std::thread::spawn(move || {
                    let mut f = f;
                    let mut buf = [0u8; 4096];
                    while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
                });
                ExecIo::Detached
            } else {
                ExecIo::Tty(f)
            }
        } else if detach {
            ExecIo::Detached
        } else {
            match (child.stdout.take(), child.stderr.take()) {
                (Some(stdout), Some(stderr)) => ExecIo::Pipes {
                    stdin: child.stdin.take(),
                    stdout,
                    stderr,
                },
                _ => return Err(Error::internal(format!("exec {id}: no stdio pipes"))),
            }
        };
        let (tx, rx) = tokio::sync::watch::channel(None);
        let svc = self.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let code = match child.wait() {
                Ok(st) => {
                    use std::os::unix::process::ExitStatusExt;
                    st.code()
                        .or_else(|| st.signal().map(|s| 128 + s))
                        .unwrap_or(-1)
                }
                Err(_) => -1,
            };
            {
                let mut execs = svc.lock();
                if let Some(e) = execs.get_mut(&id) {
                    e.running = false;
                    e.exit_code = Some(code);
                    e.master = None;
                }
            }
            drop(cleanup);
            let _ = tx.send(Some(code));
        });
        let detach_keys = if cfg.attach_stdin {
            parse_detach_keys(&cfg.detach_keys)?
        } else {
            Vec::new()
        };
        Ok(Started {
            io,
            done: rx,
            detach_keys,
        })
    }
}

/// Removes the console socket once the pty master has been received (or the start failed).
struct SockGuard(PathBuf);

impl Drop for SockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes an exec's scratch dir when the exec is over.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last error `"msg"` of the runtime's json log.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
}

/// Receives one fd over SCM_RIGHTS.
fn recv_fd(sock: RawFd) -> std::io::Result<File> {
    // The runtime sends right after connecting; wait for it without spinning forever.
    let mut pfd = libc::pollfd {
        fd: sock,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, 10_000) };
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer references a live local buffer.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
                return Ok(File::from_raw_fd(fd));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Err(std::io::Error::other("no fd received"))
}

/// TIOCSWINSZ.
pub fn set_winsize(fd: RawFd, height: u16, width: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(Error::internal(format!(
            "resize the exec's terminal: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Every capability name; an exec with `Privileged` gets all of them (the runtime leaves out
/// those the kernel does not know).
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's detach keys: comma-separated `a`..`z` style single characters or `ctrl-<x>`
/// (`x` in a-z, `@`, `[`, `\\`, `]`, `^`, `_`). Empty: the default ctrl-p,ctrl-q.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let s = if s.is_empty() { "ctrl-p,ctrl-q" } else { s };
    let bad = || {
        Error::invalid(format!(
            "Invalid detach keys ({s}) provided: use a comma-separated list of single \
             characters or ctrl-<value> (a-z, @, [, \\, ], ^, _), e.g. ctrl-p,ctrl-q"
        ))
    };
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let &[b] = c.as_bytes() else {
                return Err(bad());
            };
            out.push(match b {
                b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(bad()),
            });
        } else {
            let &[b] = k.as_bytes() else {
                return Err(bad());
            };
            if !b.is_ascii_graphic() {
                return Err(bad());
            }
            out.push(b);
        }
    }
    Ok(out)
}

/// Merges `extra` into `base`: a `NAME=value` replaces `NAME`'s entry.
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for kv in extra {
        let key = kv.split('=').next().unwrap_or("");
        out.retain(|x| x.split('=').next() != Some(key));
        out.push(kv.clone());
    }
    out
}

/// The exec's OCI process: the container's spec process with the exec's command, env,
/// working dir, user and terminal.
fn process_json(t: &ExecTarget, cfg: &ExecConfig) -> Result<Value> {
    let spec_path = t.runtime_root.join(&t.id).join("config.json");
    let spec: Value = std::fs::read(&spec_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            Error::conflict(format!(
                "Container {} is not running (no runtime spec at {})",
                t.id,
                spec_path.display()
            ))
        })?;
    let mut p = spec["process"].clone();
    if !p.is_object() {
        p = json!({"cwd": "/", "user": {"uid": 0, "gid": 0}});
    }
    p["args"] = json!(cfg.cmd.clone().unwrap_or_default());
    p["terminal"] = json!(cfg.tty);
    if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    if let Some([h, w]) = cfg.console_size.as_deref() {
        if *h > 0 && *w > 0 {
            p["consoleSize"] = json!({"height": h, "width": w});
        }
    }
    let base_env: Vec<String> = if t.config.env.is_empty() {
        p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        t.config.env.clone()
    };
    let mut env = merge_env(&base_env, cfg.env.as_deref().unwrap_or_default());
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = json!(env);
    let cwd = if !cfg.working_dir.is_empty() {
        cfg.working_dir.clone()
    } else if !t.config.working_dir.is_empty() {
        t.config.working_dir.clone()
    } else {
        p["cwd"].as_str().unwrap_or("/").to_string()
    };
    if !cwd.starts_with('/') {
        return Err(Error::invalid(format!(
            "WorkingDir {cwd:?}: the working directory must be an absolute path"
        )));
    }
    p["cwd"] = json!(cwd);
    let user = if !cfg.user.is_empty() {
        &cfg.user
    } else {
        &t.config.user
    };
    if !user.is_empty() {
        let root = PathBuf::from(format!("/proc/{}/root", t.pid));
        let (uid, gid, gids) = resolve_user(&root, user)?;
        p["user"] = json!({"uid": uid, "gid": gid, "additionalGids": gids});
    }
    if cfg.privileged {
        let caps = json!(ALL_CAPS);
        p["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
        });
        if let Some(o) = p.as_object_mut() {
            o.remove("apparmorProfile");
            o.remove("selinuxLabel");
        }
    }
    Ok(p)
}

/// Resolves `user[:group]` (names or numbers) against the container's /etc/passwd and
/// /etc/group under `root`. Returns (uid, gid, supplementary gids).
pub fn resolve_user(root: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    // name:x:uid:gid:...
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        let uid: u32 = f[2].parse().ok()?;
        let gid: u32 = f[3].parse().ok()?;
        (f[0] == u || u.parse::<u32>().ok() == Some(uid)).then(|| (f[0].to_string(), uid, gid))
    });
    let (name, uid, mut gid) = match (entry, u.parse::<u32>()) {
        (Some(e), _) => e,
        (None, Ok(n)) => (String::new(), n, 0),
        (None, Err(_)) => {
            return Err(Error::invalid(format!(
                "unable to find user {u}: no matching entries in passwd file; use a user that \
                 exists in the image or a numeric UID[:GID]"
            )))
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "unable to find group {g}: no matching entries in group file; use a \
                         group that exists in the image or a numeric GID"
                    ))
                })?,
        };
    }
    let mut gids = Vec::new();
    if !name.is_empty() {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !gids.contains(&n) {
                        gids.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, gids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 31]);
        let e = parse_detach_keys("ctrl-pp").unwrap_err();
        assert!(
            e.message.contains("Invalid detach keys (ctrl-pp)"),
            "{}",
            e.message
        );
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn env_merge_replaces_by_name() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let got = merge_env(&base, &["A=2".into(), "B=3".into()]);
        assert_eq!(got, vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn users_resolve_from_the_image() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:app,root\napp:x:1000:\nstaff:x:50:\n",
        )
        .unwrap();
        assert_eq!(
            resolve_user(d.path(), "app").unwrap(),
            (1000, 1000, vec![10])
        );
        assert_eq!(
            resolve_user(d.path(), "nobody").unwrap(),
            (65534, 65534, vec![])
        );
        assert_eq!(
            resolve_user(d.path(), "app:staff").unwrap(),
            (1000, 50, vec![10])
        );
        assert_eq!(
            resolve_user(d.path(), "1000").unwrap(),
            (1000, 1000, vec![10])
        );
        assert_eq!(resolve_user(d.path(), "4242:7").unwrap(), (4242, 7, vec![]));
        let e = resolve_user(d.path(), "ghost").unwrap_err();
        assert!(
            e.message.contains("unable to find user ghost"),
            "{}",
            e.message
        );
        let e = resolve_user(d.path(), "app:nogroup").unwrap_err();
        assert!(
            e.message.contains("unable to find group nogroup"),
            "{}",
            e.message
        );
    }
}
