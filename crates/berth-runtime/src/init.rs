//! The container's init: the process that becomes the container. It is started from a sealed
//! in-memory copy of the runtime binary (so `/proc/self/exe` inside the container never points
//! at the host binary), reads its instructions from the runtime over the init channel, builds
//! the container around itself and finally execs the user's process.

use crate::ipc::{self, FromInit, ToInit};
use crate::{caps, hooks, rootfs, seccomp, Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process, Spec};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// A new container: build the rootfs, then wait on the exec fifo (or not, for `run`).
    Create,
    /// A process joining an existing container's namespaces.
    Exec,
}

/// Everything the init needs, sent by the runtime right after the init starts.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    pub mode: Mode,
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    /// O_PATH fd of the exec fifo to block on until `start`; None: exec right away.
    pub fifo_fd: Option<RawFd>,
    /// Connected socket to send the pty master over (terminal mode).
    pub console_fd: Option<RawFd>,
    pub preserve_fds: u32,
    /// Ask the runtime to run prestart/createRuntime hooks once mounts exist.
    pub parent_hooks: bool,
    /// State document for hooks run from inside (createContainer, startContainer).
    pub state: serde_json::Value,
    /// Cgroup the init joins itself (when the runtime has not moved it there).
    pub join_cgroup: Option<crate::cgroups::Cgroup>,
    /// Connected socket to `linux.seccomp.listenerPath`, for the SCMP_ACT_NOTIFY listener fd.
    pub seccomp_listener_fd: Option<RawFd>,
}

/// Body of the container's init, in the child the runtime just cloned. Never returns: it
/// execs the user's process (through the sealed exec stub) or exits 1 after reporting why.
pub fn child_main(mut cfg: InitConfig, mut sock: UnixStream, stub: RawFd) -> ! {
    // Nothing in the container may ptrace us or open /proc/<pid>/exe (the host binary) while
    // we still run the runtime's code.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let err = match ipc::recv::<ToInit>(&mut sock) {
        Ok(Some(ToInit::Go(state))) => {
            cfg.state = state;
            match run(&cfg, &mut sock, stub) {
                Ok(never) => match never {},
                Err(e) => e,
            }
        }
        Ok(Some(ToInit::Abort(m))) => Error::Container(m),
        Ok(_) => Error::Container("runtime closed the init channel".into()),
        Err(e) => e,
    };
    let _ = ipc::send(&mut sock, &FromInit::Error(err.to_string()));
    // SAFETY: leave the forked child without running the runtime's destructors.
    unsafe { libc::_exit(1) }
}

enum Never {}

fn run(cfg: &InitConfig, sock: &mut UnixStream, stub: RawFd) -> Result<Never> {
    let spec = &cfg.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Container("spec has no process".into()))?;
    let linux = spec.linux().as_ref();
    let new_ns = |t: LinuxNamespaceType| {
        linux
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|v| v.iter().any(|n| n.typ() == t && n.path().is_none()))
    };

    if let Some(cg) = &cfg.join_cgroup {
        cg.join_self()?;
    }
    if cfg.mode == Mode::Create {
        if new_ns(LinuxNamespaceType::User) {
            setresid(0, 0)?;
        }
        // The runtime put us in the container's cgroup already; a cgroup namespace made now
        // is rooted there.
        if new_ns(LinuxNamespaceType::Cgroup) {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| Error::sys("unshare(CLONE_NEWCGROUP)", e))?;
        }
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h)
                .map_err(|e| Error::sys(format!("setting hostname \"{h}\""), e))?;
        }
        if let Some(d) = spec.domainname() {
            set_domainname(d)?;
        }
        rootfs::prepare(spec, &cfg.rootfs, new_ns(LinuxNamespaceType::User))?;
        if cfg.parent_hooks {
            ipc::send(sock, &FromInit::Hooks)?;
            match ipc::recv::<ToInit>(sock)? {
                Some(ToInit::Continue) => {}
                Some(ToInit::Abort(m)) => return Err(Error::Container(m)),
                Some(ToInit::Go(_)) | None => {
                    return Err(Error::Container("runtime went away".into()))
                }
            }
        }
        let hooks = spec.hooks().as_ref();
        hooks::run_all(
            "createContainer",
            hooks.and_then(|h| h.create_container().as_ref()),
            &cfg.state,
        )?;
        rootfs::enter(&cfg.rootfs, cfg.no_pivot)?;
        rootfs::finish(
            spec,
            new_ns(LinuxNamespaceType::Network),
            new_ns(LinuxNamespaceType::Ipc),
        )?;
    }

    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| Error::sys(format!("setting oomScoreAdj {adj}"), e))?;
    }
    set_rlimits(process)?;
    if process.terminal().unwrap_or(false) {
        let sock_fd = cfg.console_fd.ok_or_else(|| {
            Error::InvalidArgument(
                "process.terminal is true but no --console-socket was given".into(),
            )
        })?;
        setup_console(sock_fd, process)?;
    }
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let args: Vec<String> = process.args().clone().unwrap_or_default();
    // cwd first: a relative argv[0] ("./app") is relative to it, as for execve.
    enter_cwd(process.cwd())?;
    let exe = find_executable(&args[0], &env)?;

    let nnp = process.no_new_privileges().unwrap_or(false);
    let filter = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some((seccomp::compile(s)?, s.flags().clone().unwrap_or_default())),
        None => None,
    };
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we have it.
    if !nnp {
        if let Some((prog, flags)) = &filter {
            let listener = seccomp::install(prog, flags)?;
            send_listener(cfg, listener)?;
        }
    }
    let masks = caps::Masks::from_spec(process.capabilities().as_ref());
    caps::drop_bounding(masks.bounding)?;
    switch_user(process)?;
    caps::apply(&masks)?;
    if nnp {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::last_os("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
    }
    if let Some(mask) = process.user().umask() {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }

    ipc::send(sock, &FromInit::Ready)?;
    // created → wait here until `start` opens the fifo.
    let fifo = cfg.fifo_fd.map(open_fifo).transpose()?;
    hooks::run_all(
        "startContainer",
        spec.hooks()
            .as_ref()
            .and_then(|h| h.start_container().as_ref()),
        &cfg.state,
    )?;
    if nnp {
        if let Some((prog, flags)) = &filter {
            let listener = seccomp::install(prog, flags)?;
            send_listener(cfg, listener)?;
        }
    }
    // Only stdio and the preserved fds survive the exec.
    let first = 3 + cfg.preserve_fds;
    // SAFETY: close_range marks the range close-on-exec; our channel to the runtime closes at
    // exec, which tells the runtime the exec happened.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(Error::last_os("close_range"));
    }
    // The process starts with no signal blocked or ignored, whatever the runtime inherited
    // (a supervisor's signalfd mask, Rust's ignored SIGPIPE): a shell's `trap ... INT` and
    // Ctrl-C must work as on any host.
    reset_signals();
    // Tell `start` we are about to exec: its poststart hooks run after this byte.
    if let Some(f) = fifo {
        use std::io::Write;
        (&f).write_all(&[0])
            .map_err(|e| Error::sys("writing the exec fifo", e))?;
    }
    // The stub's argv is [path, argv0, argv1, ...].
    let mut c_args: Vec<CString> = vec![cstr(exe.as_os_str().as_bytes())?];
    for a in &args {
        c_args.push(cstr(a.as_bytes())?);
    }
    let c_env: Vec<CString> = env
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_>>()?;
    let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = c_env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of live C strings; execveat returns only on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            stub,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(Error::last_os(format!("exec {}", exe.display())))
}

/// Unblock every signal and put every disposition back to the default (exec keeps ignored
/// signals and the mask; handlers are reset by exec anyway). The raw syscall, because libc
/// refuses to touch the signals it reserves (32, 33), which may be inherited ignored too.
fn reset_signals() {
    /// The kernel's `struct sigaction` (x86-64 layout; all zeros, so the arm64 layout without
    /// `restorer` reads the same values).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask/rt_sigaction read the local structs above (8-byte sigset).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
        for s in 1..=64 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    s,
                    &dfl as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
    }
}

/// Hand the seccomp notification fd to the agent at `listenerPath` with the container
/// process state, as the runtime spec describes (SCM_RIGHTS + JSON).
fn send_listener(cfg: &InitConfig, listener: Option<OwnedFd>) -> Result<()> {
    let (Some(fd), Some(sock)) = (listener, cfg.seccomp_listener_fd) else {
        return Ok(());
    };
    let metadata = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_metadata().clone())
        .unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": cfg.state["pid"],
        "metadata": metadata,
        "state": cfg.state,
    });
    ipc::send_fd(sock, &msg.to_string(), fd.as_raw_fd())?;
    // SAFETY: our copy of the agent socket is done with.
    unsafe { libc::close(sock) };
    Ok(())
}

fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| Error::InvalidArgument("argument contains a NUL byte".into()))
}

fn setresid(uid: u32, gid: u32) -> Result<()> {
    // SAFETY: plain syscalls.
    unsafe {
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(Error::last_os(format!("setresgid({gid})")));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(Error::last_os(format!("setresuid({uid})")));
        }
    }
    Ok(())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: pointer and length of a live buffer.
    let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if r != 0 {
        return Err(Error::last_os(format!("setting domainname \"{d}\"")));
    }
    Ok(())
}

fn switch_user(p: &Process) -> Result<()> {
    let u = p.user();
    let groups: Vec<libc::gid_t> = u.additional_gids().clone().unwrap_or_default();
    caps::keep_caps(true)?;
    // setgroups is refused in a user namespace whose setgroups file says "deny".
    // SAFETY: pointer and length of a live vector.
    let r = unsafe { libc::setgroups(groups.len(), groups.as_ptr()) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if !(groups.is_empty() && e.raw_os_error() == Some(libc::EPERM)) {
            return Err(Error::sys(format!("setgroups({groups:?})"), e));
        }
    }
    setresid(u.uid(), u.gid())?;
    caps::keep_caps(false)
}

fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let res = match r.typ() {
            PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
            PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
            PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
            PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
            PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
            PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
            PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
            PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
            PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
            PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
            PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
            PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
            PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
            PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
            PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
            PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
        };
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: pointer to a live struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(Error::last_os(format!(
                "setting rlimit {:?} to soft {} hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            )));
        }
    }
    Ok(())
}

/// Make a pty inside the container, send its master to the console socket and make the
/// slave our controlling terminal and stdio.
fn setup_console(sock_fd: RawFd, p: &Process) -> Result<()> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("opening /dev/ptmx in the container", e))?;
    nix::pty::grantpt(&master).map_err(|e| Error::sys("grantpt", e))?;
    nix::pty::unlockpt(&master).map_err(|e| Error::sys("unlockpt", e))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| Error::sys("ptsname", e))?;
    if let Some(sz) = p.console_size() {
        let ws = libc::winsize {
            ws_row: sz.height() as u16,
            ws_col: sz.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a live winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave_path = cstr(name.as_bytes())?;
    // SAFETY: open a path we just got from ptsname.
    let slave = unsafe { libc::open(slave_path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if slave < 0 {
        return Err(Error::last_os(format!("opening {name}")));
    }
    // SAFETY: slave is a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    ipc::send_fd(sock_fd, &name, master.as_raw_fd())?;
    drop(master);
    // SAFETY: plain syscalls on fds we own.
    unsafe {
        if libc::setsid() < 0 {
            return Err(Error::last_os("setsid"));
        }
        if libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) < 0 {
            return Err(Error::last_os("ioctl(TIOCSCTTY)"));
        }
        for target in 0..3 {
            if libc::dup2(slave.as_raw_fd(), target) < 0 {
                return Err(Error::last_os("dup2 onto stdio"));
            }
        }
    }
    // SAFETY: close our copy of the console socket; the runtime holds its end.
    unsafe { libc::close(sock_fd) };
    Ok(())
}

/// Find `arg0` the way execvp would, with the container's PATH, inside the container root
/// (we are already pivoted, so "/" is the container's root).
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> std::io::Result<()> {
        let c = CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: live CString and stat buffer.
        if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        // SAFETY: live CString.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) => Err(Error::Container(format!(
                "exec: \"{arg0}\": {e} (check process.args[0] and the image's files)"
            ))),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if check(&p).is_ok() {
            return Ok(p);
        }
    }
    Err(Error::Container(format!(
        "exec: \"{arg0}\": executable file not found in $PATH ({path})"
    )))
}

/// chdir into `cwd`, resolved inside the container root without following magic links, and
/// check the kernel agrees we are inside the root.
fn enter_cwd(cwd: &Path) -> Result<()> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("opening /", e))?;
    use std::os::fd::AsFd;
    let dir = rootfs::open_in_root(root.as_fd(), cwd, libc::O_DIRECTORY).map_err(|e| {
        Error::Container(format!(
            "process.cwd \"{}\": {e} (it must be a directory inside the container)",
            cwd.display()
        ))
    })?;
    // SAFETY: fchdir on a directory fd we own.
    if unsafe { libc::fchdir(dir.as_raw_fd()) } != 0 {
        return Err(Error::last_os(format!("chdir to {}", cwd.display())));
    }
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::Container(format!(
            "process.cwd \"{}\" is outside the container root",
            cwd.display()
        ))),
    }
}

/// Block until `start` opens the fifo for reading (through our O_PATH fd of it: the state
/// directory is not visible from inside the container).
fn open_fifo(fifo: RawFd) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    // /proc here is the container's: make sure it is a real procfs before trusting
    // /proc/self/fd, and that what we opened is our fifo.
    let proc_ok = nix::sys::statfs::statfs("/proc")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    if !proc_ok {
        return Err(Error::Container(
            "create needs procfs at /proc inside the container (add a proc mount to config.json mounts)".into(),
        ));
    }
    let mut want: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat into a live struct.
    if unsafe { libc::fstat(fifo, &mut want) } != 0 {
        return Err(Error::last_os("fstat of the exec fifo"));
    }
    let path = format!("/proc/self/fd/{fifo}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::sys("opening the exec fifo", e))?;
    let got = f
        .metadata()
        .map_err(|e| Error::sys("stat of the exec fifo", e))?;
    if got.dev() != want.st_dev as u64 || got.ino() != want.st_ino as u64 {
        return Err(Error::Container(
            "the exec fifo reopened through /proc/self/fd is not the runtime's fifo".into(),
        ));
    }
    // SAFETY: closing the O_PATH fd we were given.
    unsafe { libc::close(fifo) };
    Ok(f)
}
