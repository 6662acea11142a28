//! `berth-monitor`: one small process per container, like conmon or containerd-shim.
//!
//! ```text
//! berth-monitor --runtime PATH --runtime-root DIR --bundle DIR --id ID --state-dir DIR
//!               [--tty] [--stdin [--stdin-once]] [--log-max-size BYTES] [--log-max-files N]
//! ```
//!
//! It daemonises (fork, setsid, fork), becomes a child subreaper, creates the container with
//! `berth-runtime create` (pipes for stdout/stderr, or a console socket receiving the pty
//! master with `--tty`), starts it, reports `started <container-pid> <monitor-pid>` or
//! `failed <message>` on its original stdout (then closes it), copies the container's output
//! to `<state-dir>/container-json.log` in Docker's json-file format (with rotation), reaps
//! the container's init (orphaned to us when `create` exits), deletes the container and
//! writes `<state-dir>/exit.json`.
//!
//! With `--stdin` the container's stdin is a pipe (or the pty) fed from the monitor: bytes a
//! client writes to `<state-dir>/attach.sock` go to it; with `--stdin-once` it is closed
//! when the first client disconnects (Docker's `StdinOnce`). Without `--stdin` it is
//! /dev/null. The FIFO `<state-dir>/ctl` takes `resize <rows> <cols>\n` (TIOCSWINSZ on the
//! pty master with `--tty`). Files in the state dir:
//!
//! | file | written |
//! |---|---|
//! | `monitor.pid` | after daemonising: the monitor's pid |
//! | `container.pid` | by the runtime's `--pid-file` |
//! | `started` | after `start` succeeded: the container's pid |
//! | `failed.json` | `{"Error":"..."}` when create/start failed |
//! | `container-json.log[.N]` | the container's output |
//! | `exit.json` | `{"ExitCode":N,"FinishedAt":"...","OOMKilled":b}`, atomically, after `delete` |
//! | `runtime.log` | the runtime's `--log` (json) |
//! | `monitor.log` | the monitor's own stderr |
//! | `attach.sock` | with `--stdin`, while the container runs: the container's stdin (0600) |
//! | `ctl` | a FIFO, while the container runs: `resize <rows> <cols>` |

mod input;
mod log;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use log::{JsonLog, Stream};

type Result<T> = std::result::Result<T, String>;

struct Args {
    runtime: PathBuf,
    runtime_root: PathBuf,
    bundle: PathBuf,
    id: String,
    state_dir: PathBuf,
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    log_max_size: u64,
    log_max_files: u32,
    /// `--console-size ROWSxCOLS`: the pty's size before the process starts.
    console_size: Option<(u16, u16)>,
}

const USAGE: &str = "usage: berth-monitor --runtime PATH --runtime-root DIR --bundle DIR --id ID \
                     --state-dir DIR [--tty] [--stdin [--stdin-once]] [--log-max-size BYTES] [--log-max-files N] \
                     [--console-size ROWSxCOLS]";

fn parse_args() -> Result<Args> {
    let mut runtime = None;
    let mut runtime_root = None;
    let mut bundle = None;
    let mut id = None;
    let mut state_dir = None;
    let mut tty = false;
    let mut stdin = false;
    let mut stdin_once = false;
    let mut log_max_size = 0u64;
    let mut log_max_files = 1u32;
    let mut console_size = None;
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy().into_owned();
        match a.as_str() {
            "--tty" => tty = true,
            "--stdin" => stdin = true,
            "--stdin-once" => stdin_once = true,
            _ => {}
        }
        if matches!(a.as_str(), "--tty" | "--stdin" | "--stdin-once") {
            continue;
        }
        if a == "--help" || a == "-h" {
            return Err(USAGE.into());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))?;
        let num = |v: &std::ffi::OsStr| -> Result<u64> {
            v.to_string_lossy()
                .parse::<u64>()
                .map_err(|e| format!("{a}: {e}"))
        };
        match a.as_str() {
            "--runtime" => runtime = Some(PathBuf::from(v)),
            "--runtime-root" => runtime_root = Some(PathBuf::from(v)),
            "--bundle" => bundle = Some(PathBuf::from(v)),
            "--id" => id = Some(v.to_string_lossy().into_owned()),
            "--state-dir" => state_dir = Some(PathBuf::from(v)),
            "--log-max-size" => log_max_size = num(&v)?,
            "--console-size" => {
                let v = v.to_string_lossy();
                let size = v
                    .split_once('x')
                    .and_then(|(r, c)| Some((r.parse::<u16>().ok()?, c.parse::<u16>().ok()?)))
                    .filter(|(r, c)| *r > 0 && *c > 0)
                    .ok_or_else(|| {
                        format!("--console-size {v:?}: expected ROWSxCOLS, e.g. 24x80")
                    })?;
                console_size = Some(size);
            }
            "--log-max-files" => {
                log_max_files = u32::try_from(num(&v)?)
                    .map_err(|_| "--log-max-files: too large".to_string())?
                    .max(1)
            }
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
    }
    let abs = |p: Option<PathBuf>, name: &str| -> Result<PathBuf> {
        let p = p.ok_or_else(|| format!("{name} is required\n{USAGE}"))?;
        if p.is_absolute() {
            Ok(p)
        } else {
            std::env::current_dir()
                .map(|d| d.join(&p))
                .map_err(|e| format!("current dir: {e}"))
        }
    };
    let id = id.ok_or_else(|| format!("--id is required\n{USAGE}"))?;
    if id.is_empty() || id.contains('/') {
        return Err(format!("--id {id:?}: must be non-empty without '/'"));
    }
    if stdin_once && !stdin {
        return Err("--stdin-once needs --stdin".into());
    }
    Ok(Args {
        runtime: abs(runtime, "--runtime")?,
        runtime_root: abs(runtime_root, "--runtime-root")?,
        bundle: abs(bundle, "--bundle")?,
        id,
        state_dir: abs(state_dir, "--state-dir")?,
        tty,
        stdin,
        stdin_once,
        log_max_size,
        log_max_files,
        console_size,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = fs::create_dir_all(&args.state_dir) {
        eprintln!(
            "berth-monitor: container {}: state dir {}: {e}",
            args.id,
            args.state_dir.display()
        );
        std::process::exit(1);
    }
    if let Err(e) = daemonise(&args) {
        eprintln!("berth-monitor: container {}: {e}", args.id);
        std::process::exit(1);
    }
    // From here on we are the daemon: stderr is monitor.log, stdout is the report pipe.
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-monitor: container {}: {e}", args.id);
            1
        }
    };
    std::process::exit(code);
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// fork; the parent waits for the intermediate and exits 0. The intermediate setsid()s, forks
/// and exits. The grandchild (returned into) is in its own session, not the caller's child.
fn daemonise(args: &Args) -> Result<()> {
    let log_path = args.state_dir.join("monitor.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    // SAFETY: single-threaded at this point; fork is async-signal-safe here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", errno()));
    }
    if pid > 0 {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let ok = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
        std::process::exit(if ok { 0 } else { 1 });
    }
    // SAFETY: plain syscalls in the (single-threaded) child.
    unsafe {
        if libc::setsid() < 0 {
            libc::_exit(1);
        }
        let pid = libc::fork();
        if pid < 0 {
            libc::_exit(1);
        }
        if pid > 0 {
            libc::_exit(0);
        }
    }
    let null = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    // SAFETY: dup2 onto the standard fds we own.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(log.as_raw_fd(), 2);
    }
    let _ = std::env::set_current_dir("/");
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_CHILD_SUBREAPER: {}", errno()));
    }
    let pidfile = args.state_dir.join("monitor.pid");
    // SAFETY: getpid never fails.
    let me = unsafe { libc::getpid() };
    write_atomic(&pidfile, format!("{me}\n").as_bytes())?;
    Ok(())
}

/// Writes `s` to our original stdout (the engine's pipe), then points stdout at /dev/null so
/// the engine sees EOF.
fn report(s: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto fd 1, which we own.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let res = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    res.map_err(|e| format!("{}: {e}", path.display()))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid 2-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", errno()));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn runtime_cmd(args: &Args) -> Command {
    let mut c = Command::new(&args.runtime);
    c.arg("--root")
        .arg(&args.runtime_root)
        .arg("--log")
        .arg(args.state_dir.join("runtime.log"))
        .arg("--log-format")
        .arg("json");
    c
}

/// The last `"msg"` of an error line of the runtime's json log, if any.
fn runtime_error(args: &Args) -> Option<String> {
    let text = fs::read_to_string(args.state_dir.join("runtime.log")).ok()?;
    let line = text.lines().rev().find(|l| l.contains("\"error\""))?;
    let start = line.find("\"msg\":\"")? + 7;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .unwrap_or('\u{fffd}'),
                    );
                }
                o => out.push(o),
            },
            o => out.push(o),
        }
    }
    Some(out)
}

fn fail(args: &Args, msg: &str) -> Result<()> {
    let msg = format!("container {}: {msg}", args.id);
    let json = format!("{{\"Error\":{}}}\n", log::json_str(&msg));
    let _ = write_atomic(&args.state_dir.join("failed.json"), json.as_bytes());
    report(&format!("failed {}\n", msg.replace('\n', " ")));
    Err(msg)
}

fn run_runtime(args: &Args, cmd: &mut Command, what: &str) -> std::result::Result<(), String> {
    let st = cmd
        .status()
        .map_err(|e| format!("running {}: {e}", args.runtime.display()))?;
    if st.success() {
        return Ok(());
    }
    let detail = runtime_error(args).unwrap_or_else(|| format!("exited with {st}"));
    Err(format!("berth-runtime {what}: {detail}"))
}

fn run(args: &Args) -> Result<()> {
    // Block the signals we handle through a signalfd. std::process::Command resets the mask
    // in its children, so neither the runtime nor the container inherits this.
    // SAFETY: sigset manipulation on a local set.
    let sigfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGHUP, libc::SIGINT, libc::SIGPIPE] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return fail(args, &format!("signalfd: {}", errno()));
        }
        OwnedFd::from_raw_fd(fd)
    };

    let pid_file = args.state_dir.join("container.pid");
    let _ = fs::remove_file(&pid_file);
    let mut create = runtime_cmd(args);
    create
        .arg("create")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    let mut input = match input::Input::new(&args.state_dir, args.stdin, args.stdin_once) {
        Ok(i) => i,
        Err(e) => return fail(args, &e),
    };
    // Output sources: (fd, stream).
    let mut sources: Vec<(File, Stream)> = Vec::new();
    let mut console: Option<(UnixListener, PathBuf)> = None;
    if args.tty {
        // A short path: sun_path is 108 bytes and state dirs can be long.
        // SAFETY: getpid never fails.
        let sock =
            std::env::temp_dir().join(format!("berth-mon-{}.sock", unsafe { libc::getpid() }));
        let _ = fs::remove_file(&sock);
        let l = match UnixListener::bind(&sock) {
            Ok(l) => l,
            Err(e) => return fail(args, &format!("console socket {}: {e}", sock.display())),
        };
        create.arg("--console-socket").arg(&sock);
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        console = Some((l, sock));
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        if args.stdin {
            let (in_r, in_w) = pipe()?;
            create.stdin(Stdio::from(in_r));
            if let Err(e) = input.set_target(File::from(in_w)) {
                return fail(args, &e);
            }
        } else {
            create.stdin(Stdio::null());
        }
        create.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        sources.push((File::from(out_r), Stream::Stdout));
        sources.push((File::from(err_r), Stream::Stderr));
    }
    create.arg(&args.id);
    let created = run_runtime(args, &mut create, "create");
    drop(create); // closes our copies of the write ends
    if let Some((_, sock)) = &console {
        let _ = fs::remove_file(sock);
    }
    if let Err(e) = created {
        return fail(args, &e);
    }
    if let Some((l, _)) = console.take() {
        match recv_console(&l) {
            Ok(master) => {
                if let Some((rows, cols)) = args.console_size {
                    if let Err(e) = input::resize(master.as_raw_fd(), rows, cols) {
                        eprintln!("berth-monitor: container {}: initial size: {e}", args.id);
                    }
                }
                let dups = input::dup(master.as_raw_fd()).and_then(|m| {
                    input.set_master(m);
                    if args.stdin {
                        input.set_target(input::dup(master.as_raw_fd())?)?;
                    }
                    Ok(())
                });
                if let Err(e) = dups {
                    force_delete(args);
                    return fail(args, &format!("pty master: {e}"));
                }
                sources.push((master, Stream::Stdout))
            }
            Err(e) => {
                force_delete(args);
                return fail(args, &format!("console socket: {e}"));
            }
        }
    }
    let pid: i32 = match fs::read_to_string(&pid_file)
        .map_err(|e| format!("{}: {e}", pid_file.display()))
        .and_then(|s| {
            s.trim()
                .parse()
                .map_err(|e| format!("{}: {e}", pid_file.display()))
        }) {
        Ok(p) => p,
        Err(e) => {
            force_delete(args);
            return fail(args, &e);
        }
    };
    let cgroup = memory_cgroup(pid);
    let oom_before = cgroup.as_ref().map(|c| oom_kills(c)).unwrap_or(0);

    let mut log = JsonLog::open(
        &args.state_dir.join("container-json.log"),
        args.log_max_size,
        args.log_max_files,
    )
    .map_err(|e| format!("container {}: {e}", args.id))?;

    let mut start = runtime_cmd(args);
    start
        .arg("start")
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Err(e) = run_runtime(args, &mut start, "start") {
        force_delete(args);
        return fail(args, &e);
    }
    let _ = write_atomic(
        &args.state_dir.join("started"),
        format!("{pid}\n").as_bytes(),
    );
    // SAFETY: getpid never fails.
    report(&format!("started {pid} {}\n", unsafe { libc::getpid() }));

    trim_resident();
    let status = pump(&sigfd, pid, &mut sources, &mut log, &mut input);
    input.shutdown();
    log.flush_partial();
    let oom = cgroup
        .as_ref()
        .map(|c| oom_kills(c) > oom_before)
        .unwrap_or(false);
    let finished = log::now_rfc3339();

    let mut del = runtime_cmd(args);
    del.arg("delete")
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Err(e) = run_runtime(args, &mut del, "delete") {
        eprintln!(
            "berth-monitor: container {}: {e}; retrying with --force",
            args.id
        );
        force_delete(args);
    }
    let json =
        format!("{{\"ExitCode\":{status},\"FinishedAt\":\"{finished}\",\"OOMKilled\":{oom}}}\n");
    write_atomic(&args.state_dir.join("exit.json"), json.as_bytes())
        .map_err(|e| format!("container {}: {e}", args.id))
}

fn force_delete(args: &Args) {
    let _ = runtime_cmd(args)
        .arg("delete")
        .arg("--force")
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Copies output to the log until the init has exited and its output is drained (EOF on
/// every source, or 2 s after the exit). Returns the exit code (128+N for a signal).
fn pump(
    sigfd: &OwnedFd,
    pid: i32,
    sources: &mut Vec<(File, Stream)>,
    log: &mut JsonLog,
    input: &mut input::Input,
) -> i32 {
    let mut exit: Option<(i32, Instant)> = None;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // Reap first: the init may have exited before we got here.
        loop {
            let mut st = 0;
            // SAFETY: reaping any child (we are a subreaper).
            let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if r <= 0 {
                break;
            }
            if r == pid {
                let code = if libc::WIFEXITED(st) {
                    libc::WEXITSTATUS(st)
                } else if libc::WIFSIGNALED(st) {
                    128 + libc::WTERMSIG(st)
                } else {
                    continue;
                };
                exit = Some((code, Instant::now()));
                input.shutdown();
            }
        }
        if let Some((code, at)) = exit {
            if sources.is_empty() || at.elapsed() > Duration::from_secs(2) {
                return code;
            }
        }
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(sources.len() + 8);
        pfds.push(libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for (f, _) in sources.iter() {
            pfds.push(libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let slots = input.pollfds(&mut pfds);
        let timeout = if exit.is_some() { 100 } else { -1 };
        // SAFETY: pfds is a valid array of pollfd.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if errno().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("berth-monitor: poll: {}", errno());
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if pfds[0].revents != 0 {
            let mut si = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
            // SAFETY: reading into a buffer of the right size; the fd is non-blocking.
            while unsafe { libc::read(sigfd.as_raw_fd(), si.as_mut_ptr().cast(), si.len()) } > 0 {}
        }
        input.handle(&pfds, &slots);
        let mut closed = Vec::new();
        for (i, p) in pfds.iter().enumerate().skip(1).take(sources.len()) {
            if p.revents == 0 {
                continue;
            }
            let (f, stream) = &mut sources[i - 1];
            match f.read(&mut buf) {
                Ok(0) => closed.push(i - 1),
                Ok(n) => {
                    if let Err(e) = log.write(*stream, &buf[..n]) {
                        eprintln!("berth-monitor: {e}");
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                // EIO: the pty's slave side is closed.
                Err(_) => closed.push(i - 1),
            }
        }
        for i in closed.into_iter().rev() {
            sources.remove(i);
        }
    }
}

/// Accepts the runtime's connection (already queued: `create` has returned) and receives the
/// pty master over SCM_RIGHTS.
fn recv_console(l: &UnixListener) -> Result<File> {
    l.set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    let (s, _) = l
        .accept()
        .map_err(|e| format!("the runtime did not connect: {e}"))?;
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsg with one int; u64-aligned.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; all pointers reference live local buffers.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(format!("recvmsg: {}", errno()));
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
    Err("no fd received".into())
}

/// The container's memory-controller file holding its OOM kill count (cgroup v1
/// `memory.oom_control` or v2 `memory.events`), from `/proc/<pid>/cgroup`.
fn memory_cgroup(pid: i32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrls.split(',').any(|c| c == "memory") {
            let p = PathBuf::from(format!("/sys/fs/cgroup/memory{path}/memory.oom_control"));
            return p.exists().then_some(p);
        }
    }
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let p = PathBuf::from(format!("/sys/fs/cgroup{path}/memory.events"));
    p.exists().then_some(p)
}

fn oom_kills(file: &Path) -> u64 {
    let Ok(text) = fs::read_to_string(file) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Start-up is over and the monitor settles into its poll loop for the container's lifetime:
/// give back what start-up touched. File-backed mappings that hold no private (anonymous)
/// pages — code and read-only data of the binary and of libc — are dropped from our page
/// tables (their pages stay in the page cache, shared; the few the loop uses fault back in),
/// and freed heap goes back to the kernel. A mapping with any private page (relocated data,
/// written globals) is left alone, so nothing is lost.
fn trim_resident() {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let mut buf = vec![0u8; 64 * 1024];
    let Ok(mut f) = File::open("/proc/self/smaps") else {
        return;
    };
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let hex = |h: &[u8]| {
        std::str::from_utf8(h)
            .ok()
            .and_then(|t| usize::from_str_radix(t, 16).ok())
    };
    // (start, end, file-backed and not writable)
    let mut cur: Option<(usize, usize, bool)> = None;
    let mut drop_ranges: Vec<(usize, usize)> = Vec::new();
    for line in buf[..len].split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"Anonymous:") {
            let anon = rest
                .iter()
                .filter(|b| b.is_ascii_digit())
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if let Some((a, b, true)) = cur.take() {
                if anon == 0 {
                    drop_ranges.push((a, b));
                }
            }
            continue;
        }
        // A mapping header: "start-end perms offset dev inode path"
        let mut it = line.split(|b| *b == b' ').filter(|f| !f.is_empty());
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        let Some(dash) = range.iter().position(|b| *b == b'-') else {
            continue;
        };
        let (Some(a), Some(b)) = (hex(&range[..dash]), hex(&range[dash + 1..])) else {
            continue;
        };
        let path = it.nth(3);
        let candidate = perms.len() == 4
            && perms[1] == b'-'
            && perms[3] == b'p'
            && path.is_some_and(|p| p.first() == Some(&b'/'));
        cur = Some((a, b, candidate));
    }
    drop(buf);
    for (a, b) in drop_ranges {
        // SAFETY: a read-only private file mapping of our own with no private pages;
        // dropping its pages only makes the next access fault them back in from the file.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
    // SAFETY: as above.
    unsafe { libc::malloc_trim(0) };
}
