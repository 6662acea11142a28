//! The engine's side of the per-container monitor (`berth-monitor`, crates/berth-monitor).
//!
//! [`spawn`] runs the monitor, which daemonises, creates and starts the container and
//! reports on its stdout (`started <pid> <monitor-pid>` or `failed <message>`). Everything
//! after that is in the container's state dir, so [`status`] and [`read_logs`] work after an
//! engine restart:
//!
//! | file | meaning |
//! |---|---|
//! | `monitor.pid`, `container.pid`, `started` | pids; `started` once `start` succeeded |
//! | `failed.json` | `{"Error":"..."}`: create or start failed |
//! | `container-json.log[.N]` | Docker json-file log, `.1` the newest rotated file |
//! | `exit.json` | `{"ExitCode":N,"FinishedAt":"...","OOMKilled":b}`, written after the runtime's `delete` |
//! | `attach.sock` | with [`MonitorOpts::stdin`], while running: the container's stdin ([`attach_stdin`]) |
//! | `ctl` | FIFO, while running: `resize <rows> <cols>` ([`resize`]) |

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Errors of this module; every message names the container or the file.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// How to start a monitor for one container.
#[derive(Debug, Clone, Default)]
pub struct MonitorOpts {
    /// The `berth-monitor` binary.
    pub monitor_bin: PathBuf,
    /// The `berth-runtime` binary.
    pub runtime: PathBuf,
    /// The runtime's `--root`.
    pub runtime_root: PathBuf,
    pub bundle: PathBuf,
    pub id: String,
    /// The container's state dir (created if missing).
    pub state_dir: PathBuf,
    /// The bundle has `process.terminal: true`: receive the pty master.
    pub tty: bool,
    /// The container was created with `OpenStdin`: its stdin is fed from `attach.sock`
    /// (else it is /dev/null).
    pub stdin: bool,
    /// Docker's `StdinOnce`: close the container's stdin when the first client detaches.
    /// Needs `stdin`.
    pub stdin_once: bool,
    /// Rotate the log at this size (0: never).
    pub log_max_size: u64,
    /// Files kept, the live one included (Docker's `max-file`).
    pub log_max_files: u32,
    /// With `tty`: the pty's (rows, cols) before the process starts (`HostConfig.ConsoleSize`).
    pub console_size: Option<(u16, u16)>,
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorHandle {
    /// The container's init, as seen from the host.
    pub pid: i32,
    pub monitor_pid: i32,
    pub state_dir: PathBuf,
}

/// Runs `berth-monitor` and waits until the container is started or failed to start.
pub fn spawn(opts: &MonitorOpts) -> Result<MonitorHandle> {
    let mut cmd = Command::new(&opts.monitor_bin);
    cmd.arg("--runtime")
        .arg(&opts.runtime)
        .arg("--runtime-root")
        .arg(&opts.runtime_root)
        .arg("--bundle")
        .arg(&opts.bundle)
        .arg("--id")
        .arg(&opts.id)
        .arg("--state-dir")
        .arg(&opts.state_dir)
        .arg("--log-max-size")
        .arg(opts.log_max_size.to_string())
        .arg("--log-max-files")
        .arg(opts.log_max_files.to_string());
    if opts.tty {
        cmd.arg("--tty");
        if let Some((rows, cols)) = opts.console_size {
            cmd.arg("--console-size").arg(format!("{rows}x{cols}"));
        }
    }
    if opts.stdin {
        cmd.arg("--stdin");
        if opts.stdin_once {
            cmd.arg("--stdin-once");
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ctx = |what: &str, e: &dyn fmt::Display| {
        Error(format!(
            "container {}: monitor {}: {what}: {e}",
            opts.id,
            opts.monitor_bin.display()
        ))
    };
    let mut child = cmd.spawn().map_err(|e| ctx("spawn", &e))?;
    // EOF comes when the daemonised monitor has reported (it then closes its stdout).
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)
            .map_err(|e| ctx("read report", &e))?;
    }
    let status = child.wait().map_err(|e| ctx("wait", &e))?;
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let line = out.lines().next().unwrap_or("");
    if let Some(rest) = line.strip_prefix("started ") {
        let mut it = rest.split_whitespace().map(str::parse::<i32>);
        if let (Some(Ok(pid)), Some(Ok(monitor_pid))) = (it.next(), it.next()) {
            return Ok(MonitorHandle {
                pid,
                monitor_pid,
                state_dir: opts.state_dir.clone(),
            });
        }
    }
    if let Some(msg) = line.strip_prefix("failed ") {
        return Err(Error(msg.to_string()));
    }
    Err(Error(format!(
        "container {}: monitor exited with {status} without reporting: {}",
        opts.id,
        err.trim()
    )))
}

/// Connects to the container's stdin (`<state-dir>/attach.sock`): bytes written to the
/// stream go to the container's stdin. Dropping (or shutting down) the stream detaches;
/// with `stdin_once` the first detach closes the container's stdin.
pub fn attach_stdin(state_dir: &Path) -> Result<UnixStream> {
    let sock = state_dir.join("attach.sock");
    let err = |e: &dyn fmt::Display| {
        Error(format!(
            "{}: cannot attach to the container's stdin: {e} (is the container running and \
             was it created with OpenStdin, e.g. `docker run -i`?)",
            sock.display()
        ))
    };
    // sun_path is 108 bytes; a long state dir is reached through /proc/self/fd.
    if sock.as_os_str().len() < 100 {
        return UnixStream::connect(&sock).map_err(|e| err(&e));
    }
    let dir = File::open(state_dir).map_err(|e| err(&e))?;
    use std::os::fd::AsRawFd;
    let p = format!("/proc/self/fd/{}/attach.sock", dir.as_raw_fd());
    UnixStream::connect(p).map_err(|e| err(&e))
}

/// Resizes the container's terminal (TIOCSWINSZ on the pty master held by the monitor).
/// A container without a tty ignores it.
pub fn resize(state_dir: &Path, rows: u16, cols: u16) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Err(Error(format!(
            "resize to {rows}x{cols}: height and width must both be at least 1"
        )));
    }
    let ctl = state_dir.join("ctl");
    // Non-blocking: ENXIO when no monitor holds the FIFO open (the container is not running).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&ctl)
        .map_err(|e| {
            Error(format!(
                "{}: cannot resize: {e} (is the container running?)",
                ctl.display()
            ))
        })?;
    f.write_all(format!("resize {rows} {cols}\n").as_bytes())
        .map_err(|e| Error(format!("{}: cannot resize: {e}", ctl.display())))
}

/// What the state dir says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running {
        pid: i32,
        monitor_pid: i32,
    },
    Exited {
        code: i32,
        finished_at: String,
        oom: bool,
    },
    /// Not started, failed to start, or the monitor died without recording an exit.
    Unknown,
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `/proc/<pid>` is a live (non-zombie) process whose comm is `comm` (when given).
fn alive(pid: i32, comm: Option<&str>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let state = stat[close + 1..].trim_start().chars().next();
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    comm.is_none_or(|c| &stat[open + 1..close] == c)
}

/// The container's status from its state dir: works after an engine restart.
pub fn status(state_dir: &Path) -> Status {
    if let Ok(text) = std::fs::read_to_string(state_dir.join("exit.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            return Status::Exited {
                code: v["ExitCode"].as_i64().unwrap_or(-1) as i32,
                finished_at: v["FinishedAt"].as_str().unwrap_or("").to_string(),
                oom: v["OOMKilled"].as_bool().unwrap_or(false),
            };
        }
    }
    let (Some(monitor_pid), Some(pid)) = (
        read_pid(&state_dir.join("monitor.pid")),
        read_pid(&state_dir.join("started")),
    ) else {
        return Status::Unknown;
    };
    if alive(monitor_pid, Some("berth-monitor")) {
        return Status::Running { pid, monitor_pid };
    }
    // The monitor may have just written exit.json and exited.
    if let Ok(text) = std::fs::read_to_string(state_dir.join("exit.json")) {
        if !text.is_empty() {
            return status(state_dir);
        }
    }
    Status::Unknown
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One record of the json-file log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub stream: LogStream,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
    /// The output, with its trailing newline when it had one.
    pub line: String,
}

const LOG_NAME: &str = "container-json.log";

/// Reads a container's log: rotated files oldest first, then the live one. With `follow`,
/// waits for more (polling, see [`LogReader::poll_interval`]) until the container has exited and the log is
/// drained, following rotations.
pub fn read_logs(state_dir: &Path, follow: bool) -> Result<LogReader> {
    let live = state_dir.join(LOG_NAME);
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(state_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix(LOG_NAME)
                .and_then(|s| s.strip_prefix('.'))
                .and_then(|s| s.parse::<u32>().ok())
            {
                rotated.push((n, e.path()));
            }
        }
    }
    rotated.sort_by_key(|r| r.0);
    // Popped from the back: the highest number (oldest) first, the live file last.
    let mut queue = vec![live.clone()];
    queue.extend(rotated.into_iter().map(|(_, p)| p));
    Ok(LogReader {
        state_dir: state_dir.to_path_buf(),
        live,
        queue,
        cur: None,
        follow,
        poll: Duration::from_millis(50),
        pending: String::new(),
    })
}

/// Iterator over [`LogRecord`]s; see [`read_logs`].
pub struct LogReader {
    state_dir: PathBuf,
    live: PathBuf,
    queue: Vec<PathBuf>,
    cur: Option<(BufReader<File>, PathBuf, u64)>,
    follow: bool,
    poll: Duration,
    pending: String,
}

impl LogReader {
    /// How often `follow` polls (default 50 ms).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = d;
        self
    }

    fn parse(&self, path: &Path, line: &str) -> Result<LogRecord> {
        let bad = |what: &str| Error(format!("{}: bad log line ({what}): {line}", path.display()));
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let stream = match v["stream"].as_str() {
            Some("stdout") => LogStream::Stdout,
            Some("stderr") => LogStream::Stderr,
            _ => return Err(bad("stream")),
        };
        Ok(LogRecord {
            stream,
            time: v["time"].as_str().ok_or_else(|| bad("time"))?.to_string(),
            line: v["log"].as_str().ok_or_else(|| bad("log"))?.to_string(),
        })
    }

    /// The run is over: its exit is recorded, or the container (its state dir) is gone —
    /// `--rm` removes it right after the exit, possibly before a follower saw exit.json.
    fn exited(&self) -> bool {
        !self.state_dir.exists()
            || self.state_dir.join("exit.json").exists()
            || self.state_dir.join("failed.json").exists()
    }
}

impl Iterator for LogReader {
    type Item = Result<LogRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur.is_none() {
                let path = self.queue.pop()?;
                match File::open(&path) {
                    Ok(f) => {
                        let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                        self.cur = Some((BufReader::new(f), path, ino));
                    }
                    // A rotated file may have been rotated away; the live one may not exist yet.
                    Err(_) if path != self.live => continue,
                    Err(e) if !self.follow || self.exited() => {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            return None;
                        }
                        return Some(Err(Error(format!("{}: {e}", path.display()))));
                    }
                    Err(_) => {
                        std::thread::sleep(self.poll);
                        self.queue.push(path);
                        continue;
                    }
                }
            }
            let exited = self.exited();
            let Some((rd, path, ino)) = self.cur.as_mut() else {
                continue;
            };
            match rd.read_line(&mut self.pending) {
                Err(e) => {
                    let e = Error(format!("{}: {e}", path.display()));
                    self.cur = None;
                    return Some(Err(e));
                }
                Ok(_) if self.pending.ends_with('\n') => {
                    let line = std::mem::take(&mut self.pending);
                    let path = path.clone();
                    return Some(self.parse(&path, line.trim_end()));
                }
                Ok(_) => {
                    // EOF (maybe mid-line while the monitor writes).
                    let is_live = *path == self.live;
                    if !is_live || !self.follow {
                        self.cur = None;
                        if self.queue.is_empty() && !self.follow {
                            return None;
                        }
                        continue;
                    }
                    let rotated = std::fs::metadata(&self.live)
                        .map(|m| m.ino() != *ino)
                        .unwrap_or(false);
                    if rotated {
                        // The writer moved on: our file is complete; reopen the live one.
                        let live = self.live.clone();
                        self.cur = None;
                        self.queue.push(live);
                        continue;
                    }
                    if exited && self.pending.is_empty() {
                        // Recheck once: the last records may have landed just before exit.json.
                        match rd.read_line(&mut self.pending) {
                            Ok(0) | Err(_) => return None,
                            Ok(_) => continue,
                        }
                    }
                    std::thread::sleep(self.poll);
                }
            }
        }
    }
}
