//! Container lifecycle on the runtime side: create, start, run, exec, kill, pause, resume,
//! delete. Each operation loads the state, checks the status allows it, acts, and saves.
//!
//! Process model: the runtime (single-threaded) makes the init either with one clone(2)
//! carrying all new namespace flags, or — when namespaces must be joined by path, a user
//! namespace needs its maps, or a time namespace its offsets — through a short-lived stage-1
//! child that joins/unshares and then clones the init with CLONE_PARENT, so the init is
//! always our child. The init runs the runtime's code (see `init`) until its last step, an
//! exec through a sealed in-memory stub (see `execstub`), and talks to us over a socketpair.

use crate::cgroups::Cgroup;
use crate::init::{self, InitConfig, Mode};
use crate::ipc::{self, FromInit, ToInit};
use crate::state::{self, Container, Status};
use crate::{hooks, spec, Error, Result};
use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Options shared by create and run.
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    /// `run --detach`: nobody will hold the terminal, so one needs --console-socket.
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
}

/// Options for exec.
#[derive(Debug, Default, Clone)]
pub struct ExecOpts {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub detach: bool,
}

const NS_ORDER: [(LinuxNamespaceType, &str, libc::c_int); 8] = [
    (LinuxNamespaceType::User, "user", libc::CLONE_NEWUSER),
    (LinuxNamespaceType::Ipc, "ipc", libc::CLONE_NEWIPC),
    (LinuxNamespaceType::Uts, "uts", libc::CLONE_NEWUTS),
    (LinuxNamespaceType::Network, "net", libc::CLONE_NEWNET),
    (LinuxNamespaceType::Pid, "pid", libc::CLONE_NEWPID),
    (LinuxNamespaceType::Time, "time", libc::CLONE_NEWTIME),
    (LinuxNamespaceType::Cgroup, "cgroup", libc::CLONE_NEWCGROUP),
    (LinuxNamespaceType::Mount, "mnt", libc::CLONE_NEWNS),
];

/// Raw clone(2) without a new stack: fork semantics plus namespace flags.
fn raw_clone(flags: libc::c_int) -> Result<libc::pid_t> {
    // SAFETY: clone with a null stack behaves like fork; we are single-threaded.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(Error::last_os(format!(
            "clone (creating the container's namespaces, flags {flags:#x})"
        )));
    }
    Ok(pid as libc::pid_t)
}

struct Namespaces {
    /// New namespaces to create.
    clone_flags: libc::c_int,
    /// Existing namespaces to join: (flag, opened fd).
    join: Vec<(libc::c_int, OwnedFd)>,
}

fn namespaces_of(spec: &Spec) -> Result<Namespaces> {
    let mut ns = Namespaces {
        clone_flags: 0,
        join: Vec::new(),
    };
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (t, _, flag) in NS_ORDER {
        if let Some(n) = list.iter().find(|n| n.typ() == t) {
            match n.path() {
                None => ns.clone_flags |= flag,
                Some(p) => {
                    let fd = std::fs::File::open(p).map_err(|e| {
                        Error::sys(format!("opening namespace {} to join it", p.display()), e)
                    })?;
                    ns.join.push((flag, fd.into()));
                }
            }
        }
    }
    Ok(ns)
}

fn setns(fd: RawFd, flag: libc::c_int, what: &str) -> Result<()> {
    // SAFETY: setns on an fd we own.
    if unsafe { libc::setns(fd, flag) } != 0 {
        return Err(Error::last_os(format!("joining {what} namespace")));
    }
    Ok(())
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = match spec.linux() {
        Some(l) => l,
        None => return Ok(()),
    };
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let gid = fmt(linux.gid_mappings());
    let uid = fmt(linux.uid_mappings());
    for (file, data) in [("gid_map", gid), ("uid_map", uid)] {
        let p = format!("/proc/{pid}/{file}");
        std::fs::write(&p, data.as_bytes())
            .map_err(|e| Error::sys(format!("writing {p} ({})", data.trim()), e))?;
    }
    Ok(())
}

fn write_timens_offsets(spec: &Spec) -> Result<()> {
    let offsets = match spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) {
        Some(o) => o,
        None => return Ok(()),
    };
    let mut s = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(Error::InvalidConfig {
                    file: "config.json".into(),
                    field: format!("linux.timeOffsets.{other}"),
                    problem: "only monotonic and boottime can be offset".into(),
                })
            }
        };
        s.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", s)
        .map_err(|e| Error::sys("writing /proc/self/timens_offsets", e))
}

/// Environment variable carrying stage 1's channel fd into a re-exec'd stage 1.
pub const STAGE1_FD_ENV: &str = "_BERTH_STAGE1_FD";

/// Stage 1's instructions: join and unshare namespaces, then clone the init. Serialisable,
/// because when the init must not be a copy of the host binary stage 1 is re-exec'd from a
/// sealed copy of the runtime and receives this over its channel (fd numbers stay valid
/// across that exec).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Stage1 {
    cfg: InitConfig,
    /// (CLONE_NEW* flag, fd of the namespace to join).
    join: Vec<(libc::c_int, RawFd)>,
    clone_flags: libc::c_int,
    join_cgroup: Option<Cgroup>,
    stub_fd: RawFd,
}

/// Stage 1's body. Never returns: reports the init's pid (or an error) and exits.
fn stage1_main(st: Stage1, mut chan: UnixStream) -> ! {
    let new_user = st.clone_flags & libc::CLONE_NEWUSER != 0;
    let new_time = st.clone_flags & libc::CLONE_NEWTIME != 0;
    let r = (|| -> Result<libc::pid_t> {
        if let Some(cg) = &st.join_cgroup {
            cg.join_self()?;
        }
        // Join the user namespace first: it owns the others.
        for (flag, fd) in st.join.iter().filter(|(f, _)| *f == libc::CLONE_NEWUSER) {
            setns(*fd, *flag, "user")?;
        }
        for (flag, fd) in st.join.iter().filter(|(f, _)| *f != libc::CLONE_NEWUSER) {
            let name = NS_ORDER
                .iter()
                .find(|(_, _, f)| f == flag)
                .map(|(_, n, _)| *n)
                .unwrap_or("a");
            setns(*fd, *flag, name)?;
        }
        for (_, fd) in &st.join {
            // SAFETY: closing fds we were handed and no longer need.
            unsafe { libc::close(*fd) };
        }
        if new_user {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .map_err(|e| Error::sys("unshare(CLONE_NEWUSER)", e))?;
            ipc::send(&mut chan, &FromInit::MapIds(std::process::id() as i32))?;
            match ipc::recv::<ToInit>(&mut chan)? {
                Some(ToInit::Continue) => {}
                _ => return Err(Error::Container("uid/gid mapping failed".into())),
            }
        }
        let rest = st.clone_flags & !libc::CLONE_NEWUSER;
        if rest != 0 {
            // SAFETY: unshare with namespace flags.
            if unsafe { libc::unshare(rest) } != 0 {
                return Err(Error::last_os(format!("unshare (flags {rest:#x})")));
            }
        }
        if new_time {
            write_timens_offsets(&st.cfg.spec)?;
        }
        let pid = raw_clone(libc::CLONE_PARENT)?;
        if pid == 0 {
            match chan.try_clone() {
                Ok(c) => init::child_main(st.cfg, c, st.stub_fd),
                // SAFETY: leave the forked child.
                Err(_) => unsafe { libc::_exit(1) },
            }
        }
        Ok(pid)
    })();
    let code = match r {
        Ok(pid) => {
            let _ = ipc::send(&mut chan, &FromInit::Pid(pid));
            0
        }
        Err(e) => {
            let _ = ipc::send(&mut chan, &FromInit::Error(e.to_string()));
            1
        }
    };
    // SAFETY: leave without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

/// Entry point of a re-exec'd stage 1 (`berth-runtime stage1`, from a sealed memfd).
pub fn stage1_entry() -> ! {
    let fd: RawFd = match std::env::var(STAGE1_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(fd) => fd,
        None => {
            eprintln!("berth-runtime stage1: internal to the runtime");
            std::process::exit(2);
        }
    };
    std::env::remove_var(STAGE1_FD_ENV);
    // SAFETY: the runtime handed us this fd.
    let mut chan = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let st: Stage1 = match ipc::recv(&mut chan) {
        Ok(Some(st)) => st,
        Ok(None) => std::process::exit(1),
        Err(e) => {
            let _ = ipc::send(&mut chan, &FromInit::Error(e.to_string()));
            std::process::exit(1);
        }
    };
    // Everything handed over across the exec goes back to close-on-exec.
    let mut fds: Vec<RawFd> = vec![fd, st.stub_fd];
    fds.extend(st.join.iter().map(|(_, f)| *f));
    fds.extend(st.cfg.fifo_fd);
    fds.extend(st.cfg.console_fd);
    fds.extend(st.cfg.seccomp_listener_fd);
    for f in fds {
        let _ = ipc::set_cloexec(f, true);
    }
    stage1_main(st, chan)
}

/// Start the init: returns (pid, channel). `exec_into`: the container (and its spec) whose
/// namespaces and cgroup an exec joins.
fn spawn_init(
    spec: &Spec,
    cfg: InitConfig,
    stub: &OwnedFd,
    exec_into: Option<(&Container, &Spec)>,
    min_fd: RawFd,
) -> Result<(libc::pid_t, UnixStream)> {
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::sys("socketpair for the init channel", e))?;
    let mut ours = ipc::raise_fd(ours, min_fd)?;
    let theirs = ipc::raise_fd(theirs, min_fd)?;
    let ours_fd = ours.as_raw_fd();
    let ns = match exec_into {
        None => namespaces_of(spec)?,
        Some((c, cspec)) => exec_namespaces(c, cspec)?,
    };
    let new_user = ns.clone_flags & libc::CLONE_NEWUSER != 0;
    let new_time = ns.clone_flags & libc::CLONE_NEWTIME != 0;
    // Without a fresh pid namespace the init is visible to other processes from birth: it
    // must not be a copy of the host binary, so stage 1 re-execs from a sealed copy.
    let sealed = ns.clone_flags & libc::CLONE_NEWPID == 0;
    if ns.join.is_empty() && !new_user && !new_time && !sealed {
        // One clone does it all.
        let pid = raw_clone(ns.clone_flags)?;
        if pid == 0 {
            // SAFETY: closing the parent's end in the child.
            unsafe { libc::close(ours_fd) };
            init::child_main(cfg, theirs, stub.as_raw_fd());
        }
        drop(theirs);
        return Ok((pid, ours));
    }
    let plan = Stage1 {
        cfg,
        join: ns.join.iter().map(|(f, fd)| (*f, fd.as_raw_fd())).collect(),
        clone_flags: ns.clone_flags,
        join_cgroup: exec_into.map(|(c, _)| c.cgroup.clone()),
        stub_fd: stub.as_raw_fd(),
    };
    let runtime_copy = if sealed {
        Some(ipc::raise_fd(crate::execstub::sealed_runtime()?, min_fd)?)
    } else {
        None
    };
    let mut plan = Some(plan);
    let stage1 = raw_clone(0)?;
    if stage1 == 0 {
        // SAFETY: closing the parent's end in the child.
        unsafe { libc::close(ours_fd) };
        let Some(plan) = plan.take() else {
            // SAFETY: leave the forked child.
            unsafe { libc::_exit(1) }
        };
        match &runtime_copy {
            None => stage1_main(plan, theirs),
            Some(copy) => reexec_stage1(copy, &plan, &theirs),
        }
    }
    drop(theirs);
    let result = (|| -> Result<libc::pid_t> {
        if runtime_copy.is_some() {
            if let Some(plan) = &plan {
                ipc::send(&mut ours, plan)?;
            }
        }
        loop {
            match ipc::recv::<FromInit>(&mut ours)? {
                Some(FromInit::MapIds(p)) => {
                    let r = write_id_maps(p, spec);
                    let reply = match &r {
                        Ok(()) => ToInit::Continue,
                        Err(e) => ToInit::Abort(e.to_string()),
                    };
                    ipc::send(&mut ours, &reply)?;
                    r?;
                }
                Some(FromInit::Pid(p)) => return Ok(p),
                Some(FromInit::Error(e)) => return Err(Error::Container(e)),
                Some(other) => {
                    return Err(Error::Container(format!(
                        "unexpected {other:?} from stage 1"
                    )))
                }
                None => return Err(Error::Container("stage 1 exited without an init".into())),
            }
        }
    })();
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(stage1), None);
    Ok((result?, ours))
}

/// In the forked stage-1 child: exec the sealed runtime copy as `berth-runtime stage1`,
/// keeping the fds the plan names open across the exec. Never returns.
fn reexec_stage1(copy: &OwnedFd, plan: &Stage1, chan: &UnixStream) -> ! {
    let mut keep: Vec<RawFd> = vec![chan.as_raw_fd(), plan.stub_fd];
    keep.extend(plan.join.iter().map(|(_, f)| *f));
    keep.extend(plan.cfg.fifo_fd);
    keep.extend(plan.cfg.console_fd);
    keep.extend(plan.cfg.seccomp_listener_fd);
    for f in keep {
        // SAFETY: clearing FD_CLOEXEC on our own copies of these fds.
        unsafe { libc::fcntl(f, libc::F_SETFD, 0) };
    }
    let env =
        std::ffi::CString::new(format!("{STAGE1_FD_ENV}={}", chan.as_raw_fd())).unwrap_or_default();
    let argv = [
        c"berth-runtime".as_ptr(),
        c"stage1".as_ptr(),
        std::ptr::null(),
    ];
    let envp = [env.as_ptr(), std::ptr::null()];
    // SAFETY: NUL-terminated arrays of live C strings; returns only on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    let msg = format!(
        "exec of the sealed runtime copy failed: {}",
        std::io::Error::last_os_error()
    );
    if let Ok(mut c) = chan.try_clone() {
        let _ = ipc::send(&mut c, &FromInit::Error(msg));
    }
    // SAFETY: leave the forked child.
    unsafe { libc::_exit(127) }
}

/// For exec: join every namespace the container has that differs from ours.
fn exec_namespaces(c: &Container, cspec: &Spec) -> Result<Namespaces> {
    let mut ns = Namespaces {
        clone_flags: 0,
        join: Vec::new(),
    };
    let list = cspec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (t, name, flag) in NS_ORDER {
        if !list.iter().any(|n| n.typ() == t) {
            continue;
        }
        let theirs = format!("/proc/{}/ns/{name}", c.pid);
        let mine = format!("/proc/self/ns/{name}");
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&mine)) {
            (Ok(a), Ok(b)) => {
                use std::os::unix::fs::MetadataExt;
                a.ino() == b.ino() && a.dev() == b.dev()
            }
            _ => false,
        };
        if same {
            continue;
        }
        let fd = std::fs::File::open(&theirs)
            .map_err(|e| Error::sys(format!("opening {theirs} to join it"), e))?;
        ns.join.push((flag, fd.into()));
    }
    // Join through stage 1 even if nothing differs, so the cgroup is joined before the clone.
    if ns.join.is_empty() {
        ns.clone_flags = 0;
        let fd = std::fs::File::open("/proc/self/ns/ipc")
            .map_err(|e| Error::sys("opening /proc/self/ns/ipc", e))?;
        ns.join.push((libc::CLONE_NEWIPC, fd.into()));
    }
    Ok(ns)
}

fn kill_pid(pid: i32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// The fds an init inherits besides its channel, all moved above `min_fd`: the console
/// socket (and our end of it when `run`/`exec` proxy the terminal themselves), the seccomp
/// agent's socket, and the sealed exec stub.
struct InitFds {
    console: Option<UnixStream>,
    console_ours: Option<UnixStream>,
    listener: Option<UnixStream>,
    stub: OwnedFd,
}

impl InitFds {
    fn open(
        terminal: bool,
        console_socket: Option<&Path>,
        spec: &Spec,
        min_fd: RawFd,
    ) -> Result<InitFds> {
        let (console, console_ours) = match (terminal, console_socket) {
            (false, _) => (None, None),
            (true, Some(p)) => (Some(ipc::raise_fd(connect_console(p)?, min_fd)?), None),
            (true, None) => {
                let (a, b) =
                    UnixStream::pair().map_err(|e| Error::sys("socketpair for the console", e))?;
                (Some(ipc::raise_fd(a, min_fd)?), Some(b))
            }
        };
        Ok(InitFds {
            console,
            console_ours,
            listener: connect_listener(spec, min_fd)?,
            stub: ipc::raise_fd(crate::execstub::sealed()?, min_fd)?,
        })
    }
}

/// Connect to `linux.seccomp.listenerPath` when the profile has SCMP_ACT_NOTIFY rules (the
/// path is on the host; the init sends the listener fd over this socket once it has one).
fn connect_listener(spec: &Spec, min_fd: RawFd) -> Result<Option<UnixStream>> {
    let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let Some(path) = s.listener_path() else {
        return Ok(None);
    };
    let sock = UnixStream::connect(path).map_err(|e| {
        Error::sys(
            format!(
                "connecting to linux.seccomp.listenerPath {} (is the seccomp agent listening?)",
                path.display()
            ),
            e,
        )
    })?;
    Ok(Some(ipc::raise_fd(sock, min_fd)?))
}

fn connect_console(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| {
        Error::sys(
            format!("connecting to --console-socket {}", path.display()),
            e,
        )
    })
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn owner() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// What `create` leaves for `run` to continue with.
pub struct Created {
    pub container: Container,
    pub chan: UnixStream,
    /// Our end of the console socket when `run` made its own (foreground terminal).
    pub console: Option<UnixStream>,
}

/// The spec's resources plus device-cgroup rules for the devices the runtime itself makes in
/// /dev (null, zero, full, random, urandom, tty, console, ptmx, pts) and the spec's
/// `linux.devices`, and mknod of any node (access still needs a rule). Appended after the
/// spec's own rules, like runc, so a default "deny all" does not break /dev.
pub fn effective_resources(spec: &Spec) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let linux = spec.linux().as_ref();
    let mut r = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    if rules.is_empty() {
        return r;
    }
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_string()));
        d
    };
    rules.push(rule(LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(LinuxDeviceType::B, None, None, "m"));
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule(LinuxDeviceType::C, Some(maj), Some(min), "rwm"));
    }
    rules.push(rule(LinuxDeviceType::C, Some(136), None, "rwm"));
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        rules.push(rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm"));
    }
    r.set_devices(Some(rules));
    r
}

/// Create a container. `wait_fifo`: hold the init until `start` (create) or let it exec as
/// soon as it is ready (run).
pub fn create(root: &Path, id: &str, opts: &CreateOpts, wait_fifo: bool) -> Result<Created> {
    state::check_id(id)?;
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| {
        Error::InvalidArgument(format!(
            "bundle {}: {e} (--bundle must name a directory holding config.json and the rootfs)",
            opts.bundle.display()
        ))
    })?;
    let spec = spec::load(&bundle)?;
    let rootfs = spec::rootfs_path(&spec, &bundle)?;
    let process = spec.process().as_ref().cloned().unwrap_or_default();
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && (wait_fifo || opts.detach) {
        return Err(Error::InvalidArgument(
            "process.terminal is true: pass --console-socket to receive the terminal".into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::InvalidArgument(
            "--console-socket needs process.terminal true in config.json".into(),
        ));
    }
    let cgroup = Cgroup::resolve(
        spec.linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .and_then(|p| p.to_str()),
        id,
    )?;
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let dir = state::dir_of(root, id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::ContainerExists(id.to_string()))
        }
        Err(e) => return Err(Error::io(&dir, e)),
    }
    // Held until the container is created (or this process dies): `delete` can tell a
    // create in progress from one that died half-way.
    let _lock = state::lock_dir(&dir, true)?;
    let new_flags = namespaces_of(&spec)?.clone_flags;
    let new_pidns = new_flags & libc::CLONE_NEWPID != 0;
    let new_userns = new_flags & libc::CLONE_NEWUSER != 0;
    let mut c = Container {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup,
        new_pidns,
        dir: dir.clone(),
    };
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: 0,
    };
    let spec_bytes =
        serde_json::to_vec(&spec).map_err(|e| Error::Container(format!("encoding config: {e}")))?;
    std::fs::write(dir.join(state::CONFIG_FILE), spec_bytes)
        .map_err(|e| Error::io(dir.join(state::CONFIG_FILE), e))?;
    c.save()?;

    if let Ok(pids) = c.cgroup.pids() {
        if !pids.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "cgroup {} already has processes ({} of them): give the container its own linux.cgroupsPath",
                c.cgroup.path(),
                pids.len()
            )));
        }
    }
    c.cgroup.create()?;
    guard.cgroup = Some(c.cgroup.clone());
    c.cgroup.apply(&effective_resources(&spec))?;
    let min_fd = 3 + opts.preserve_fds as RawFd;
    let fifo_fd = if wait_fifo {
        let fifo = c.fifo();
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::sys(format!("mkfifo {}", fifo.display()), e))?;
        // mkfifo honours the umask; the init may run as any user.
        std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
            .map_err(|e| Error::io(&fifo, e))?;
        let f = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("opening {}", fifo.display()), e))?;
        Some(ipc::raise_fd(f, min_fd)?)
    } else {
        None
    };
    let fds = InitFds::open(terminal, opts.console_socket.as_deref(), &spec, min_fd)?;
    let parent_hooks = spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    let cfg = InitConfig {
        mode: Mode::Create,
        id: id.to_string(),
        spec: spec.clone(),
        rootfs,
        no_pivot: opts.no_pivot,
        fifo_fd: fifo_fd.as_ref().map(|f| f.as_raw_fd()),
        console_fd: fds.console.as_ref().map(|f| f.as_raw_fd()),
        preserve_fds: opts.preserve_fds,
        parent_hooks,
        state: serde_json::Value::Null,
        // The init moves itself (cheaper for the kernel) unless a new user namespace keeps it
        // from writing the host's cgroup files.
        join_cgroup: (!new_userns).then(|| c.cgroup.clone()),
        seccomp_listener_fd: fds.listener.as_ref().map(|f| f.as_raw_fd()),
    };
    let (pid, mut chan) = spawn_init(&spec, cfg, &fds.stub, None, min_fd)?;
    guard.pid = pid;
    c.pid = pid;
    c.pid_start = state::proc_start_time(pid).map(|s| s.0).unwrap_or(0);
    if new_userns {
        c.cgroup.add_pid(pid)?;
    }
    ipc::send(&mut chan, &ToInit::Go(c.oci_state(Status::Created)))?;
    loop {
        match ipc::recv::<FromInit>(&mut chan)? {
            Some(FromInit::Hooks) => {
                let st = c.oci_state(Status::Creating);
                let hooks_ = spec.hooks().as_ref();
                let r = hooks::run_all("prestart", hooks_.and_then(|h| h.prestart().as_ref()), &st)
                    .and_then(|_| {
                        hooks::run_all(
                            "createRuntime",
                            hooks_.and_then(|h| h.create_runtime().as_ref()),
                            &st,
                        )
                    });
                let reply = match &r {
                    Ok(()) => ToInit::Continue,
                    Err(e) => ToInit::Abort(e.to_string()),
                };
                ipc::send(&mut chan, &reply)?;
                r?;
            }
            Some(FromInit::Ready) => break,
            Some(FromInit::Error(e)) => return Err(Error::Container(e)),
            Some(other) => return Err(Error::Container(format!("unexpected {other:?} from init"))),
            None => {
                return Err(Error::Container(format!(
                    "container init exited during setup ({})",
                    describe_exit(pid)
                )))
            }
        }
    }
    drop(fifo_fd);
    // Our copies of the init's fds go; we keep our end of a console we proxy ourselves.
    let InitFds { console_ours, .. } = fds;
    c.save()?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    guard.disarm();
    Ok(Created {
        container: c,
        chan,
        console: console_ours,
    })
}

fn describe_exit(pid: i32) -> String {
    use nix::sys::wait::{waitpid, WaitStatus};
    match waitpid(nix::unistd::Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        _ => "status unknown".into(),
    }
}

/// Undo a half-made container: kill the init, remove the cgroup and the state dir.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pid: i32,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = 0;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.pid > 0 {
            kill_pid(self.pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all(Signal::SIGKILL);
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleanup: {e}");
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `start`: release a created container's init.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let _lock = state::lock_dir(&c.dir, true)?;
    let status = c.status();
    if status != Status::Created {
        return Err(Error::BadState {
            id: id.into(),
            status: status.to_string(),
            what: "only a created container can be started".into(),
        });
    }
    let fifo = c.fifo();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| Error::sys(format!("opening {}", fifo.display()), e))?;
    use std::os::unix::fs::OpenOptionsExt;
    let mut pfd = [libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    loop {
        // SAFETY: poll on one live fd.
        let n = unsafe { libc::poll(pfd.as_mut_ptr(), 1, 100) };
        if n > 0 {
            let mut b = [0u8; 1];
            use std::io::Read;
            match (&f).read(&mut b) {
                Ok(1) => break,
                // The init closed the fifo without the byte: it failed (or exited).
                Ok(_) => {
                    return Err(Error::Container(format!(
                        "container \"{id}\" init exited before it could start (see --log)"
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::sys("reading the exec fifo", e)),
            }
        } else if c.status() == Status::Stopped {
            return Err(Error::Container(format!(
                "container \"{id}\" init exited before it could start"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo);
    let spec = c.spec()?;
    hooks::run_all(
        "poststart",
        spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()),
        &c.oci_state(Status::Running),
    )
}

/// `kill`: signal the init, or with `all` every process in the container's cgroup.
pub fn kill(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    let c = load_in(
        root,
        id,
        &[Status::Created, Status::Running, Status::Paused],
        "there is no process to signal",
    )?;
    if all {
        return c.cgroup.kill_all(sig);
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid), sig)
        .map_err(|e| Error::sys(format!("kill({}, {sig})", c.pid), e))
}

/// Load a container and check its status is one of `allowed` (the guard in
/// load → check → act → save); `what` says what the operation needs.
fn load_in(root: &Path, id: &str, allowed: &[Status], what: &str) -> Result<Container> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !allowed.contains(&status) {
        return Err(Error::BadState {
            id: id.into(),
            status: status.to_string(),
            what: what.into(),
        });
    }
    Ok(c)
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    load_in(
        root,
        id,
        &[Status::Running],
        "only a running container can be paused",
    )?
    .cgroup
    .freeze()
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    load_in(
        root,
        id,
        &[Status::Paused],
        "only a paused container can be resumed",
    )?
    .cgroup
    .thaw()
}

fn wait_gone(c: &Container, timeout_ms: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    let mut pause = std::time::Duration::from_micros(100);
    while std::time::Instant::now() < deadline {
        if c.status() == Status::Stopped {
            return true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
    c.status() == Status::Stopped
}

/// `delete`: remove a stopped (or created) container; `force` kills a running one first.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(Error::ContainerNotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let _lock = match state::lock_dir(&c.dir, false)? {
        Some(l) => l,
        None if c.status() == Status::Creating => {
            return Err(Error::BadState {
                id: id.into(),
                status: "creating".into(),
                what: "another berth-runtime is creating it; try again when it is done".into(),
            })
        }
        None => state::lock_dir(&c.dir, true)?
            .ok_or_else(|| Error::Container(format!("cannot lock container \"{id}\"")))?,
    };
    let status = c.status();
    match status {
        // A create that died before the init existed: nothing to wait for.
        Status::Creating if c.pid <= 0 => return destroy(&c),
        Status::Stopped | Status::Creating => {}
        Status::Created => {
            kill_pid(c.pid, Signal::SIGKILL);
        }
        Status::Running | Status::Paused if force => {
            let _ = c.cgroup.kill_all(Signal::SIGKILL);
            kill_pid(c.pid, Signal::SIGKILL);
            if status == Status::Paused {
                let _ = c.cgroup.thaw();
            }
        }
        _ => {
            return Err(Error::BadState {
                id: id.into(),
                status: status.to_string(),
                what: "stop it first (kill) or use delete --force".into(),
            })
        }
    }
    if !wait_gone(&c, 5000) {
        return Err(Error::Container(format!(
            "container \"{id}\" init (pid {}) did not exit after SIGKILL",
            c.pid
        )));
    }
    destroy(&c)
}

/// Remove everything a stopped container still holds and run its poststop hooks.
fn destroy(c: &Container) -> Result<()> {
    // Processes left in the cgroup (no pid namespace, or a daemonised child) go too.
    if c.cgroup.pids().map(|p| !p.is_empty()).unwrap_or(false) {
        let _ = c.cgroup.kill_all(Signal::SIGKILL);
    }
    let spec = c.spec().ok();
    let hook_result = match &spec {
        Some(s) => hooks::run_all(
            "poststop",
            s.hooks().as_ref().and_then(|h| h.poststop().as_ref()),
            &c.oci_state(Status::Stopped),
        ),
        None => Ok(()),
    };
    c.cgroup.destroy()?;
    std::fs::remove_dir_all(&c.dir).map_err(|e| Error::io(&c.dir, e))?;
    if let Err(e) = hook_result {
        // Poststop failures are reported but do not keep the container around.
        tracing::warn!("{e}");
    }
    Ok(())
}

/// Process exit status → shell-style code.
pub fn exit_code(ws: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Wait for `pid` (our child) while forwarding signals to it and, in terminal mode, copying
/// between our stdio and the pty master. Returns the exit code.
pub fn supervise(pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("blocking signals", e))?;
    let sfd =
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))?;
    let child = nix::unistd::Pid::from_raw(pid);
    let saved_tty = if pty.is_some() { make_raw(0) } else { None };
    if let Some(p) = &pty {
        copy_winsize(0, p.as_raw_fd());
    }
    let mut stdin_open = pty.is_some();
    // False once the pty's slave side is closed: from then on only signals matter.
    let mut pty_live = pty.is_some();
    let code = 'outer: loop {
        // Reap first: SIGCHLD may have arrived before we blocked it.
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {}
            Ok(ws) => {
                if let Some(c) = exit_code(ws) {
                    break 'outer c;
                }
            }
            Err(nix::errno::Errno::ECHILD) => break 'outer 255,
            Err(e) => return Err(Error::sys("waitpid", e)),
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(p) = pty.as_ref().filter(|_| pty_live) {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: poll on live fds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    if let Some(p) = &pty {
                        copy_winsize(0, p.as_raw_fd());
                    }
                } else if sig != libc::SIGCHLD {
                    // SAFETY: forwarding a signal number the kernel gave us.
                    unsafe { libc::kill(pid, sig) };
                }
            }
        }
        if let Some(p) = pty.as_ref().filter(|_| pty_live) {
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0 && !copy_once(p.as_raw_fd(), 1)
            {
                // The slave side closed: all output is read; keep forwarding signals until
                // the process exits.
                pty_live = false;
                stdin_open = false;
                continue;
            }
            if stdin_open
                && fds.len() > 2
                && fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0
                && !copy_once(0, p.as_raw_fd())
            {
                stdin_open = false;
            }
        }
    };
    // The process may exit before we read all it wrote: drain what the pty still holds.
    if let Some(p) = &pty {
        // SAFETY: fcntl on our own fd.
        unsafe {
            let fl = libc::fcntl(p.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(p.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        while copy_once(p.as_raw_fd(), 1) {}
    }
    if let Some(t) = saved_tty {
        let _ = nix::sys::termios::tcsetattr(
            // SAFETY: fd 0 stays open for our lifetime.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(0) },
            nix::sys::termios::SetArg::TCSANOW,
            &t,
        );
    }
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    Ok(code)
}

fn copy_once(from: RawFd, to: RawFd) -> bool {
    let mut buf = [0u8; 16384];
    // SAFETY: read into a live buffer.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0usize;
    while off < n as usize {
        // SAFETY: write from a live buffer.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}

fn make_raw(fd: RawFd) -> Option<nix::sys::termios::Termios> {
    // SAFETY: fd 0 stays open for our lifetime.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let saved = nix::sys::termios::tcgetattr(b).ok()?;
    let mut raw = saved.clone();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
    Some(saved)
}

fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a live struct.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// `run`: create + start in one go. Foreground: wait, forward signals, delete, return the
/// exit code. Detached: return 0 once the process runs.
pub fn run(root: &Path, id: &str, opts: &CreateOpts, detach: bool) -> Result<i32> {
    let created = create(root, id, opts, false)?;
    let Created {
        container: c,
        mut chan,
        console,
    } = created;
    let pty = match console {
        Some(sock) => Some(ipc::recv_fd(sock.as_raw_fd())?),
        None => None,
    };
    // The channel closes when the init execs the user's process (close-on-exec).
    match ipc::recv::<FromInit>(&mut chan) {
        Ok(None) => {}
        Ok(Some(FromInit::Error(e))) => {
            let _ = delete(root, id, true);
            return Err(Error::Container(e));
        }
        Ok(Some(_)) | Err(_) => {}
    }
    let spec = c.spec()?;
    if let Err(e) = hooks::run_all(
        "poststart",
        spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()),
        &c.oci_state(Status::Running),
    ) {
        let _ = delete(root, id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = supervise(c.pid, pty)?;
    delete(root, id, true)?;
    Ok(code)
}

/// Build the process an exec runs: a --process file, or the container's process with
/// `args` (and the overrides) in place of its own.
pub fn exec_process(base: &Spec, file: Option<&Path>, args: &[String]) -> Result<Process> {
    if let Some(f) = file {
        let bytes = std::fs::read(f)
            .map_err(|e| Error::InvalidArgument(format!("--process {}: {e}", f.display())))?;
        let p: Process = spec::parse_json(&bytes, &f.display().to_string())?;
        spec::validate_process(&p, "process")?;
        return Ok(p);
    }
    if args.is_empty() {
        return Err(Error::InvalidArgument(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    let mut p = base.process().clone().unwrap_or_default();
    p.set_args(Some(args.to_vec()));
    p.set_terminal(Some(false));
    p.set_console_size(None);
    Ok(p)
}

/// `exec`: run `process` in a running container. Returns the exit code (foreground) or 0.
pub fn exec(root: &Path, id: &str, process: Process, opts: &ExecOpts) -> Result<i32> {
    let c = load_in(
        root,
        id,
        &[Status::Running],
        "exec needs a running container",
    )?;
    let cspec = c.spec()?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "--tty with --detach needs --console-socket".into(),
        ));
    }
    let mut spec = cspec.clone();
    spec.set_process(Some(process));
    let min_fd = 3 + opts.preserve_fds as RawFd;
    let fds = InitFds::open(terminal, opts.console_socket.as_deref(), &spec, min_fd)?;
    let cfg = InitConfig {
        mode: Mode::Exec,
        id: id.to_string(),
        spec: spec.clone(),
        rootfs: c.rootfs.clone(),
        no_pivot: false,
        fifo_fd: None,
        console_fd: fds.console.as_ref().map(|f| f.as_raw_fd()),
        preserve_fds: opts.preserve_fds,
        parent_hooks: false,
        state: serde_json::Value::Null,
        join_cgroup: None,
        seccomp_listener_fd: fds.listener.as_ref().map(|f| f.as_raw_fd()),
    };
    let (pid, mut chan) = spawn_init(&spec, cfg, &fds.stub, Some((&c, &cspec)), min_fd)?;
    let InitFds { console_ours, .. } = fds;
    let sent = ipc::send(&mut chan, &ToInit::Go(c.oci_state(Status::Running)));
    let fail = |e: Error| {
        kill_pid(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        e
    };
    sent.map_err(fail)?;
    let pty = match console_ours {
        Some(sock) => Some(ipc::recv_fd(sock.as_raw_fd()).map_err(fail)?),
        None => None,
    };
    loop {
        match ipc::recv::<FromInit>(&mut chan) {
            Ok(Some(FromInit::Ready)) => continue,
            Ok(Some(FromInit::Error(e))) => return Err(fail(Error::Container(e))),
            Ok(Some(other)) => {
                return Err(fail(Error::Container(format!(
                    "unexpected {other:?} from init"
                ))))
            }
            Ok(None) => break,
            Err(e) => return Err(fail(e)),
        }
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    supervise(pid, pty)
}

/// Pids in the container's cgroup.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    c.cgroup.pids()
}
