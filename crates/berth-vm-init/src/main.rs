//! berth-vm-init: `/init` of the Berth VM (PID 1).
//!
//! Boot: mount the API filesystems, make `/` a real mount (so the runtime's pivot_root works on
//! the initramfs root), load modules, bring up the network, start the agent, format/check and
//! mount the data disk, mount the host shares (9p or virtiofs), start berthd; then reap zombies forever, restart
//! berthd if it dies, and power off cleanly on `SHUTDOWN` (or SIGTERM/SIGINT/SIGPWR).
//! Every step is logged on the console as `berth-init: <what> (<ms> ms)`; nothing panics.

use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use berth_vm_init::cmdline::{self, BootConfig, Transport};
use berth_vm_init::disk::{self, FsckOutcome};
use berth_vm_init::request::{self, Request};
use berth_vm_init::{
    http, modules, mux, BERTHD_SOCKET, CONTROL_PORT_NAME, DAEMON_JSON, DATA_ROOT,
    DEFAULT_DAEMON_JSON, EXEC_ROOT, MODULE_ORDER_FILE,
};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const GUEST_ADDR: &str = "10.0.2.15/24";
const GATEWAY: &str = "10.0.2.2";
const DNS: &str = "10.0.2.3";

// ---------------------------------------------------------------------------------------------
// Console logging

static CONSOLE: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One line on the console (stderr is /dev/console), written in one call so threads don't mix.
fn log(msg: &str) {
    let _g = lock(&CONSOLE);
    let line = format!("berth-init: {msg}\n");
    let _ = io::stderr().write_all(line.as_bytes());
}

fn log_prefixed(prefix: &str, msg: &str) {
    let _g = lock(&CONSOLE);
    let line = format!("{prefix}{msg}\n");
    let _ = io::stderr().write_all(line.as_bytes());
}

/// Milliseconds since the kernel started (CLOCK_BOOTTIME).
fn boot_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if r != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Run a step, log `<what> (<ms> ms)` or `FAILED: <what>: <error> (<ms> ms)`. `f` returns the
/// text to log on success (so it can say what it found).
fn step<T>(what: &str, f: impl FnOnce() -> Result<(T, String), String>) -> Result<T, String> {
    let t = Instant::now();
    match f() {
        Ok((v, done)) => {
            let done = if done.is_empty() {
                what.to_string()
            } else {
                done
            };
            log(&format!("{done} ({} ms)", t.elapsed().as_millis()));
            Ok(v)
        }
        Err(e) => {
            log(&format!(
                "FAILED: {what}: {e} ({} ms)",
                t.elapsed().as_millis()
            ));
            Err(format!("{what}: {e}"))
        }
    }
}

/// A fatal failure: say why, give the console a moment, power off.
fn fatal(why: &str) -> ! {
    log(&format!("fatal: {why}"));
    log("powering off (the VM cannot work without this step; see the lines above)");
    power_off_now();
}

fn power_off_now() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Only reached if reboot() failed (not PID 1 / no CAP_SYS_BOOT).
    std::process::exit(1);
}

// ---------------------------------------------------------------------------------------------
// Boot steps

fn mkdir(p: &str) -> Result<(), String> {
    fs::create_dir_all(p).map_err(|e| format!("creating {p}: {e}"))
}

fn mount_fs(
    src: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mkdir(target)?;
    mount(Some(src), target, Some(fstype), flags, data)
        .map_err(|e| format!("mount -t {fstype} {src} {target}: {e}"))
}

fn mount_api_filesystems() -> Result<((), String), String> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", "/proc", "proc", nosuid_nodev_noexec, None)?;
    mount_fs("sysfs", "/sys", "sysfs", nosuid_nodev_noexec, None)?;
    // devtmpfs may already be mounted by the kernel (CONFIG_DEVTMPFS_MOUNT only applies to
    // disk roots, but be tolerant).
    if let Err(e) = mount_fs(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    ) {
        if !Path::new("/dev/null").exists() {
            return Err(e);
        }
    }
    fix_console_fds();
    mount_fs(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("gid=5,mode=0620,ptmxmode=0666"),
    )?;
    mount_fs(
        "shm",
        "/dev/shm",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    mount_fs(
        "tmpfs",
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )?;
    mount_fs(
        "tmpfs",
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    mount_fs(
        "cgroup2",
        "/sys/fs/cgroup",
        "cgroup2",
        nosuid_nodev_noexec,
        Some("nsdelegate"),
    )?;
    for (l, t) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ] {
        let _ = std::os::unix::fs::symlink(l, t);
    }
    Ok((
        (),
        "mounted /proc /sys /dev /dev/pts /dev/shm /run /tmp and cgroup2 at /sys/fs/cgroup".into(),
    ))
}

/// If the kernel could not open /dev/console for us (no node in the initramfs), do it now.
fn fix_console_fds() {
    // SAFETY: fcntl(F_GETFD) on a plain fd number only queries it.
    let bad = unsafe { libc::fcntl(2, libc::F_GETFD) } == -1;
    if !bad {
        return;
    }
    if let Ok(c) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        use std::os::fd::IntoRawFd;
        let fd = c.into_raw_fd();
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which are unused at this point.
            unsafe { libc::dup2(fd, target) };
        }
        if fd > 2 {
            // SAFETY: fd is ours and no longer needed.
            unsafe { libc::close(fd) };
        }
    }
}

/// The initramfs root is the kernel's `rootfs`, which pivot_root refuses to leave. Bind it onto
/// a directory and move that mount over `/`: the root is then an ordinary mount with a parent,
/// and the runtime's pivot_root into container roots works (no copy, no --no-pivot).
fn make_root_a_mount() -> Result<((), String), String> {
    let st = nix::sys::statfs::statfs("/").map_err(|e| format!("statfs /: {e}"))?;
    let ramfs = st.filesystem_type() == nix::sys::statfs::FsType(0x8584_58f6_u32 as _)
        || st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC;
    if !ramfs {
        return Ok(((), "root is not an initramfs; leaving it as it is".into()));
    }
    let tmp = "/.berth-root";
    mkdir(tmp)?;
    mount(Some("/"), tmp, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| format!("bind-mounting / on {tmp}: {e}"))?;
    std::env::set_current_dir(tmp).map_err(|e| format!("chdir {tmp}: {e}"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("moving {tmp} onto /: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot into the new root mount: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    let _ = fs::remove_dir(tmp);
    Ok((
        (),
        "made / a mount of its own (pivot_root works for containers)".into(),
    ))
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn load_modules() -> Result<((), String), String> {
    let dir = PathBuf::from("/lib/modules").join(kernel_release());
    let list = dir.join(MODULE_ORDER_FILE);
    let text = match fs::read_to_string(&list) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(((), format!("no {} (modules built in?)", list.display())))
        }
        Err(e) => return Err(format!("reading {}: {e}", list.display())),
    };
    let order = modules::parse_order(&text).map_err(|e| format!("{}: {e}", list.display()))?;
    let mut loaded = 0;
    let mut skipped = 0;
    let mut failed = Vec::new();
    let params = CString::default();
    for rel in &order {
        let path = dir.join(rel);
        let res = fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                nix::kmod::finit_module(f.as_fd(), &params, nix::kmod::ModuleInitFlags::empty())
                    .or_else(|e| {
                        if e == nix::errno::Errno::EEXIST {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| e.to_string())
            });
        match res {
            Ok(()) => loaded += 1,
            // ENODEV: hardware-specific (crc32c_intel without SSE4.2, e.g. under TCG).
            Err(e) if e.ends_with("ENODEV: No such device") => skipped += 1,
            Err(e) => failed.push(format!("{}: {e}", modules::module_name(rel))),
        }
    }
    if !failed.is_empty() {
        log(&format!(
            "modules that failed to load: {}",
            failed.join("; ")
        ));
    }
    Ok((
        (),
        format!(
            "loaded {loaded}/{} kernel modules ({skipped} not for this hardware)",
            order.len()
        ),
    ))
}

fn wait_for(path: &str, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if Path::new(path).exists() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    Path::new(path).exists()
}

/// Children start with an empty signal mask: PID 1 blocks SIGTERM/SIGINT/SIGPWR/SIGUSR2 for
/// its sigwait thread, and a mask survives exec (std does not reset it).
fn clean_sigmask(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls pthread_sigmask, which is
    // async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            SigSet::empty()
                .thread_set_mask()
                .map_err(|e| io::Error::from_raw_os_error(e as i32))
        })
    }
}

/// Run a helper program to completion (only during boot, before the reaper starts).
fn run(cmd: &mut Command, what: &str) -> Result<std::process::ExitStatus, String> {
    clean_sigmask(cmd)
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string()
        + String::from_utf8_lossy(&out.stdout).trim();
    if !out.status.success() && !text.is_empty() {
        for l in text.lines().take(20) {
            log(&format!("  {what}: {l}"));
        }
    }
    Ok(out.status)
}

fn setup_network() -> Result<((), String), String> {
    let _ = nix::unistd::sethostname("berth-vm");
    let _ = fs::write("/etc/hostname", "berth-vm\n");
    let _ = fs::write(
        "/etc/hosts",
        "127.0.0.1\tlocalhost berth-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    let _ = fs::write("/etc/resolv.conf", format!("nameserver {DNS}\n"));
    let have_eth0 = wait_for("/sys/class/net/eth0", Duration::from_secs(3));
    let mut script = String::from("link set lo up\n");
    if have_eth0 {
        script.push_str(&format!(
            "link set eth0 up\naddr add {GUEST_ADDR} dev eth0\nroute add default via {GATEWAY} dev eth0\n"
        ));
    }
    let mut child = clean_sigmask(&mut Command::new("ip"))
        .args(["-batch", "-"])
        .env("PATH", PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("writing to ip -batch: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip -batch failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if !have_eth0 {
        let mut present: Vec<String> = fs::read_dir("/sys/class/net")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        present.sort();
        return Err(format!(
            "no eth0 after 3 s (interfaces: {}); is a virtio-net device attached \
             (-device virtio-net-pci,netdev=n0)?",
            present.join(", ")
        ));
    }
    Ok((
        (),
        format!("network up: lo, eth0 {GUEST_ADDR} via {GATEWAY}, DNS {DNS}"),
    ))
}

fn mount_data_disk(dev: &Path) -> Result<((), String), String> {
    let devs = dev.to_string_lossy().to_string();
    if !wait_for(&devs, Duration::from_secs(5)) {
        return Err(format!(
            "{devs} does not exist after 5 s (is the virtio-blk data disk attached?)"
        ));
    }
    let mut head = vec![0u8; disk::PROBE_BYTES];
    let n = fs::File::open(dev)
        .and_then(|mut f| {
            let mut got = 0;
            while got < head.len() {
                let n = f.read(&mut head[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            Ok(got)
        })
        .map_err(|e| format!("reading {devs}: {e}"))?;
    let mut what;
    if !disk::has_ext_superblock(&head[..n]) {
        let t = Instant::now();
        let st = run(
            Command::new("mkfs.ext4").args([
                "-q",
                "-F",
                "-L",
                "berth-data",
                "-E",
                "lazy_itable_init=1,lazy_journal_init=1",
                &devs,
            ]),
            "mkfs.ext4",
        )?;
        if !st.success() {
            return Err(format!("mkfs.ext4 {devs} failed ({st})"));
        }
        what = format!(
            "formatted {devs} as ext4 (first boot, {} ms); ",
            t.elapsed().as_millis()
        );
    } else {
        let t = Instant::now();
        let st = run(Command::new("e2fsck").args(["-p", &devs]), "e2fsck")?;
        let outcome = disk::fsck_outcome(st.code());
        what = match outcome {
            FsckOutcome::Clean => {
                format!("checked {devs}: clean ({} ms); ", t.elapsed().as_millis())
            }
            FsckOutcome::Corrected => format!(
                "checked {devs}: errors corrected ({} ms); ",
                t.elapsed().as_millis()
            ),
            FsckOutcome::Uncorrected | FsckOutcome::Failed => {
                log(&format!(
                    "e2fsck -p {devs} could not repair it ({st}); trying e2fsck -y"
                ));
                let st = run(Command::new("e2fsck").args(["-y", &devs]), "e2fsck")?;
                format!(
                    "repaired {devs} with e2fsck -y ({st}, {} ms); ",
                    t.elapsed().as_millis()
                )
            }
        };
    }
    // The host may have grown the disk (berth vm resize --disk): grow the filesystem to it,
    // offline, before mounting (a no-op when it already fills the disk).
    let t = Instant::now();
    match run(Command::new("resize2fs").arg(&devs), "resize2fs") {
        Ok(st) if st.success() => {
            what.push_str(&format!("resize2fs ({} ms); ", t.elapsed().as_millis()))
        }
        Ok(st) => log(&format!(
            "resize2fs {devs} failed ({st}); the filesystem keeps its size"
        )),
        Err(e) => log(&format!("resize2fs: {e}")),
    }
    mkdir(DATA_ROOT)?;
    let t = Instant::now();
    mount(
        Some(dev),
        DATA_ROOT,
        Some("ext4"),
        MsFlags::MS_NOATIME,
        Some("noinit_itable,discard"),
    )
    .map_err(|e| format!("mount -t ext4 {devs} {DATA_ROOT}: {e}"))?;
    what.push_str(&format!(
        "mounted data disk {devs} (ext4) at {DATA_ROOT} ({} ms)",
        t.elapsed().as_millis()
    ));
    // The step's own timing is appended by step(); keep the message self-contained.
    Ok(((), what))
}

fn data_on_tmpfs() -> Result<((), String), String> {
    mount_fs(
        "tmpfs",
        DATA_ROOT,
        "tmpfs",
        MsFlags::empty(),
        Some("mode=0711"),
    )?;
    Ok((
        (),
        format!(
            "no berth.data= on the kernel command line: {DATA_ROOT} is a tmpfs (nothing persists)"
        ),
    ))
}

fn mount_shares(cfg: &BootConfig) {
    for s in &cfg.shares {
        let mp = s.mount_point.to_string_lossy().to_string();
        let fstype = s.transport.fstype();
        let _ = step(&format!("mount {fstype} share {} at {mp}", s.tag), || {
            match s.transport {
                Transport::Virtiofs => mount_fs(&s.tag, &mp, "virtiofs", MsFlags::empty(), None)
                    .map_err(|e| {
                        format!(
                            "{e} (is -device vhost-user-fs-pci,tag={} given to qemu, with \
                             virtiofsd running?)",
                            s.tag
                        )
                    })?,
                Transport::NineP => mount_fs(
                    &s.tag,
                    &mp,
                    "9p",
                    MsFlags::empty(),
                    Some("trans=virtio,version=9p2000.L,msize=512000,cache=mmap,access=client"),
                )
                .or_else(|_| {
                    // Older kernels/qemu: no access=client; retry with the contract's options only.
                    mount(
                        Some(s.tag.as_str()),
                        mp.as_str(),
                        Some("9p"),
                        MsFlags::empty(),
                        Some("trans=virtio,version=9p2000.L,msize=512000,cache=mmap"),
                    )
                    .map_err(|e| {
                        format!(
                            "mount -t 9p {} {mp}: {e} (is -virtfs ...,mount_tag={} given to qemu?)",
                            s.tag, s.tag
                        )
                    })
                })?,
            }
            Ok(((), format!("mounted {fstype} share {} at {mp}", s.tag)))
        });
    }
}

fn write_default_daemon_json() -> Result<((), String), String> {
    if Path::new(DAEMON_JSON).exists() {
        return Ok(((), format!("{DAEMON_JSON} present")));
    }
    fs::write(DAEMON_JSON, DEFAULT_DAEMON_JSON)
        .map_err(|e| format!("writing {DAEMON_JSON}: {e}"))?;
    Ok(((), format!("wrote default {DAEMON_JSON}")))
}

/// `berth.mirror=` / `berth.insecure=` into daemon.json (other keys kept).
fn registry_settings(cfg: &BootConfig) -> Result<((), String), String> {
    let text =
        fs::read_to_string(DAEMON_JSON).map_err(|e| format!("reading {DAEMON_JSON}: {e}"))?;
    let Some(new) = cmdline::apply_registry_settings(&text, cfg) else {
        return Err(format!(
            "{DAEMON_JSON} is not a JSON object; the registry settings from the command line were not applied"
        ));
    };
    fs::write(DAEMON_JSON, new).map_err(|e| format!("writing {DAEMON_JSON}: {e}"))?;
    Ok((
        (),
        format!(
            "mirrors {:?}, insecure registries {:?}",
            cfg.mirrors.clone().unwrap_or_default(),
            cfg.insecure.clone().unwrap_or_default()
        ),
    ))
}

// ---------------------------------------------------------------------------------------------
// berthd supervision and shutdown

#[derive(Default)]
struct State {
    berthd: Option<Pid>,
    berthd_started: Option<Instant>,
    ready: bool,
    shutting_down: bool,
    /// Bumped on every berthd exit (the shutdown waits on it).
    exits: u64,
    restarts: u32,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    log_level: Option<String>,
}

fn spawn_berthd(shared: &Arc<Shared>, st: &mut State) {
    let mut cmd = Command::new("/usr/bin/berthd");
    cmd.args([
        "--data-root",
        DATA_ROOT,
        "--exec-root",
        EXEC_ROOT,
        "-H",
        &format!("unix://{BERTHD_SOCKET}"),
        "--config-file",
        DAEMON_JSON,
    ]);
    if let Some(l) = &shared.log_level {
        cmd.args(["--log-level", l]);
    }
    clean_sigmask(&mut cmd)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        // Plain log lines on the serial console (no ANSI colours).
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match cmd.spawn() {
        Ok(mut child) => {
            let pid = Pid::from_raw(child.id() as i32);
            forward_output(&mut child);
            st.berthd = Some(pid);
            st.berthd_started = Some(Instant::now());
            st.ready = false;
            log(&format!("started berthd (pid {pid})"));
            let sh = Arc::clone(shared);
            thread::spawn(move || wait_ready(sh, pid));
            // The Child is dropped without wait(): PID 1's reaper collects it.
        }
        Err(e) => {
            log(&format!(
                "FAILED: starting /usr/bin/berthd: {e}; retrying in 5 s"
            ));
            st.berthd = None;
            let sh = Arc::clone(shared);
            thread::spawn(move || {
                thread::sleep(Duration::from_secs(5));
                let mut st = lock(&sh.state);
                if !st.shutting_down && st.berthd.is_none() {
                    spawn_berthd(&sh, &mut st);
                }
            });
        }
    }
}

/// berthd's stdout/stderr go to the console prefixed `berthd: `.
fn forward_output(child: &mut Child) {
    if let Some(out) = child.stdout.take() {
        thread::spawn(move || forward_lines(out));
    }
    if let Some(err) = child.stderr.take() {
        thread::spawn(move || forward_lines(err));
    }
}

fn forward_lines(r: impl Read) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let s = String::from_utf8_lossy(&buf);
                log_prefixed("berthd: ", s.trim_end());
            }
        }
    }
}

fn ping_berthd() -> bool {
    let Ok(mut s) = UnixStream::connect(BERTHD_SOCKET) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(http::PING_REQUEST).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        if buf[..got].contains(&b'\n') {
            break;
        }
    }
    http::is_ok_response(&buf[..got])
}

fn wait_ready(shared: Arc<Shared>, pid: Pid) {
    let t = Instant::now();
    loop {
        {
            let st = lock(&shared.state);
            if st.berthd != Some(pid) || st.shutting_down {
                return;
            }
        }
        if ping_berthd() {
            let mut st = lock(&shared.state);
            if st.berthd == Some(pid) {
                st.ready = true;
                shared.changed.notify_all();
                log(&format!(
                    "berthd answers _ping ({} ms after start)",
                    t.elapsed().as_millis()
                ));
                log(&format!("ready {}", boot_ms()));
            }
            return;
        }
        thread::sleep(Duration::from_millis(
            if t.elapsed() < Duration::from_secs(5) {
                20
            } else {
                200
            },
        ));
    }
}

/// PID 1's loop: collect every child that exits; restart berthd when it dies unexpectedly.
fn reap_forever(shared: Arc<Shared>) -> ! {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(ws) => {
                let (pid, how) = match ws {
                    WaitStatus::Exited(p, c) => (p, format!("exit status {c}")),
                    WaitStatus::Signaled(p, s, _) => (p, format!("signal {s}")),
                    _ => continue,
                };
                let mut st = lock(&shared.state);
                if st.berthd != Some(pid) {
                    continue;
                }
                st.berthd = None;
                st.ready = false;
                st.exits += 1;
                shared.changed.notify_all();
                if st.shutting_down {
                    log(&format!("berthd stopped ({how})"));
                    continue;
                }
                let ran = st.berthd_started.map(|t| t.elapsed()).unwrap_or_default();
                if ran > Duration::from_secs(60) {
                    st.restarts = 0;
                }
                let delay = Duration::from_secs(1u64 << st.restarts.min(5));
                st.restarts += 1;
                log(&format!(
                    "berthd exited unexpectedly ({how}) after {} s; restarting in {} s",
                    ran.as_secs(),
                    delay.as_secs()
                ));
                let sh = Arc::clone(&shared);
                thread::spawn(move || {
                    thread::sleep(delay);
                    let mut st = lock(&sh.state);
                    if !st.shutting_down && st.berthd.is_none() {
                        spawn_berthd(&sh, &mut st);
                    }
                });
            }
            Err(nix::errno::Errno::ECHILD) => thread::sleep(Duration::from_millis(200)),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                log(&format!("waitpid: {e}"));
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

static SHUTDOWN_ONCE: Mutex<bool> = Mutex::new(false);

/// The SHUTDOWN sequence: stop berthd (SIGTERM, ≤ 10 s, then SIGKILL), stop everything else,
/// unmount shares and the data disk (read-only remount if busy), sync, power off.
fn shutdown(shared: &Arc<Shared>, why: &str) -> ! {
    {
        let mut once = lock(&SHUTDOWN_ONCE);
        if *once {
            // Another thread is already shutting down; let it finish.
            drop(once);
            loop {
                thread::sleep(Duration::from_secs(3600));
            }
        }
        *once = true;
    }
    let t0 = Instant::now();
    log(&format!("shutdown requested ({why})"));
    let (pid, exits) = {
        let mut st = lock(&shared.state);
        st.shutting_down = true;
        (st.berthd, st.exits)
    };
    if let Some(pid) = pid {
        let _ = kill(pid, Signal::SIGTERM);
        let st = lock(&shared.state);
        let (st, timeout) = shared
            .changed
            .wait_timeout_while(st, Duration::from_secs(10), |s| s.exits == exits)
            .unwrap_or_else(|p| p.into_inner());
        drop(st);
        if timeout.timed_out() {
            log("berthd did not stop within 10 s; sending SIGKILL");
            let _ = kill(pid, Signal::SIGKILL);
            let st = lock(&shared.state);
            let _ = shared
                .changed
                .wait_timeout_while(st, Duration::from_secs(3), |s| s.exits == exits);
        }
        log(&format!("berthd stopped ({} ms)", t0.elapsed().as_millis()));
    }
    // Containers and monitors may outlive berthd: stop every other process.
    let t = Instant::now();
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    thread::sleep(Duration::from_millis(300));
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    thread::sleep(Duration::from_millis(100));
    log(&format!(
        "stopped remaining processes ({} ms)",
        t.elapsed().as_millis()
    ));
    nix::unistd::sync();
    let t = Instant::now();
    let result = unmount_data();
    match result {
        Ok(msg) => log(&format!("{msg} ({} ms)", t.elapsed().as_millis())),
        Err(e) => log(&format!("FAILED: {e} ({} ms)", t.elapsed().as_millis())),
    }
    nix::unistd::sync();
    log(&format!(
        "powering off ({} ms after the request)",
        t0.elapsed().as_millis()
    ));
    power_off_now();
}

/// Mount points from /proc/self/mountinfo (field 5), unescaped.
fn mount_points() -> Vec<String> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .collect()
}

fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unmount_data() -> Result<String, String> {
    // Everything below the data root and the exec root (overlay roots, netns and shm binds),
    // deepest first, then the shares, then the data disk itself.
    let mut points: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| {
            m.starts_with(&format!("{DATA_ROOT}/")) || m.starts_with(&format!("{EXEC_ROOT}/"))
        })
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in &points {
        let _ = umount2(m.as_str(), MntFlags::MNT_DETACH);
    }
    for m in mount_points() {
        if m != DATA_ROOT
            && !m.starts_with("/proc")
            && !m.starts_with("/sys")
            && !m.starts_with("/dev")
            && m != "/"
            && m != "/run"
            && m != "/tmp"
            && m != EXEC_ROOT
        {
            let _ = umount2(m.as_str(), MntFlags::empty());
        }
    }
    if !mount_points().iter().any(|m| m == DATA_ROOT) {
        return Ok("nothing mounted at the data root".into());
    }
    match umount2(DATA_ROOT, MntFlags::empty()) {
        Ok(()) => Ok(format!("unmounted the data disk from {DATA_ROOT}")),
        Err(e) => {
            // Still busy: make it read-only so the journal is clean, then detach.
            let ro = mount(
                None::<&str>,
                DATA_ROOT,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            );
            let _ = umount2(DATA_ROOT, MntFlags::MNT_DETACH);
            match ro {
                Ok(()) => Ok(format!(
                    "data disk busy ({e}); remounted read-only and detached"
                )),
                Err(e2) => Err(format!(
                    "unmounting {DATA_ROOT}: {e}; read-only remount: {e2} (the next boot's fsck will repair it)"
                )),
            }
        }
    }
}

/// SIGTERM/SIGINT/SIGPWR to PID 1 (ctrl-alt-del, `kill 1`) shut the VM down cleanly too.
fn signal_thread(shared: Arc<Shared>, set: SigSet) {
    thread::spawn(move || loop {
        match set.wait() {
            Ok(sig) => shutdown(&shared, &format!("signal {sig}")),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The agent

/// The control channel's port: the virtio-serial port named [`CONTROL_PORT_NAME`] (devtmpfs
/// makes `/dev/vportNpM`; there is no udev for the `/dev/virtio-ports/<name>` link).
fn find_control_port() -> Option<PathBuf> {
    let dir = fs::read_dir("/sys/class/virtio-ports").ok()?;
    for e in dir.flatten() {
        let name = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if name.trim() == CONTROL_PORT_NAME {
            return Some(Path::new("/dev").join(e.file_name()));
        }
    }
    None
}

fn agent(shared: Arc<Shared>) -> Result<((), String), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        if let Some(p) = find_control_port().filter(|p| p.exists()) {
            break p;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no virtio-serial port named {CONTROL_PORT_NAME} (the host starts qemu with \
                 -device virtserialport,name={CONTROL_PORT_NAME}; module virtio_console)"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    };
    let p2 = port.clone();
    mux::Mux::acceptor(
        move || {
            let f = fs::OpenOptions::new().read(true).write(true).open(&p2)?;
            Ok((mux::PortReader::new(f.try_clone()?), f))
        },
        move |s| {
            let sh = Arc::clone(&shared);
            if let Err(e) = serve(sh, s) {
                log(&format!("agent stream: {e}"));
            }
        },
        log,
    );
    Ok((
        (),
        format!("agent on the control channel {}", port.display()),
    ))
}

/// Read one request line byte by byte (nothing past the newline is consumed: it belongs to the
/// pipe that follows).
fn read_line(s: &mut UnixStream) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b)? {
            0 => return Ok(None),
            _ if b[0] == b'\n' => break,
            _ => {
                line.push(b[0]);
                if line.len() > request::MAX_LINE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request line too long",
                    ));
                }
            }
        }
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn serve(shared: Arc<Shared>, mut s: UnixStream) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let line = match read_line(&mut s) {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(()),
        Err(e) => {
            let _ = s.write_all(request::err_answer(&e.to_string()).as_bytes());
            return Ok(());
        }
    };
    s.set_read_timeout(None)?;
    match request::parse(&line) {
        Err(why) => s.write_all(request::err_answer(&why).as_bytes()),
        Ok(Request::Ping) => {
            let ready = lock(&shared.state).ready;
            s.write_all(request::ping_answer(boot_ms(), ready).as_bytes())
        }
        Ok(Request::Api) => match UnixStream::connect(BERTHD_SOCKET) {
            Ok(u) => {
                s.write_all(b"OK\n")?;
                splice(s, u)
            }
            Err(e) => s.write_all(
                request::err_answer(&format!("berthd is not answering on {BERTHD_SOCKET}: {e}"))
                    .as_bytes(),
            ),
        },
        Ok(Request::Connect(port)) => match TcpStream::connect(("127.0.0.1", port)) {
            Ok(t) => {
                let _ = t.set_nodelay(true);
                s.write_all(b"OK\n")?;
                splice(s, t)
            }
            Err(e) => s.write_all(
                request::err_answer(&format!("connecting to 127.0.0.1:{port} in the VM: {e}"))
                    .as_bytes(),
            ),
        },
        Ok(Request::Udp(port)) => match request::udp_socket(port) {
            Ok(u) => {
                s.write_all(b"OK\n")?;
                if let Err(e) = request::udp_tunnel(s, u) {
                    log(&format!("agent UDP tunnel to port {port}: {e}"));
                }
                Ok(())
            }
            Err(e) => s.write_all(
                request::err_answer(&format!(
                    "opening a UDP socket to 127.0.0.1:{port} in the VM: {e}"
                ))
                .as_bytes(),
            ),
        },
        Ok(Request::Shutdown) => {
            s.write_all(b"OK\n")?;
            let _ = s.flush();
            let _ = s.shutdown(Shutdown::Both);
            shutdown(&shared, "SHUTDOWN from the host")
        }
    }
}

trait Duplex: Read + Write + Send + Sized + 'static {
    fn dup(&self) -> io::Result<Self>;
    fn close_write(&self);
}

impl Duplex for TcpStream {
    fn dup(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Duplex for UnixStream {
    fn dup(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Copy both ways until both directions reach EOF; each EOF is passed on as a half close.
fn splice<B: Duplex>(a: UnixStream, b: B) -> io::Result<()> {
    let mut a2 = a.try_clone()?;
    let mut b2 = b.dup()?;
    let up = thread::spawn(move || {
        let _ = io::copy(&mut a2, &mut b2);
        b2.close_write();
    });
    let (mut a, mut b) = (a, b);
    let _ = io::copy(&mut b, &mut a);
    a.close_write();
    let _ = up.join();
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let is_pid1 = std::process::id() == 1;
    if !is_pid1 {
        eprintln!(
            "berth-vm-init: this is the Berth VM's /init and must run as PID 1 inside the VM \
             (build the image with packaging/vm/build.sh)"
        );
        std::process::exit(2);
    }
    std::env::set_var("PATH", PATH);
    // Signals PID 1 acts on are handled by one thread via sigwait; children get a clean mask
    // (std resets it on spawn).
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGPWR,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
    let _ = nix::sys::reboot::set_cad_enabled(false);

    log(&format!("starting ({} ms after the kernel)", boot_ms()));
    if let Err(e) = step("make / a mount", make_root_a_mount) {
        log(&format!(
            "containers may fail to start (pivot_root on the initramfs): {e}"
        ));
    }
    if let Err(e) = step("mount API filesystems", mount_api_filesystems) {
        fatal(&e);
    }
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let cfg = cmdline::parse(&cmdline);
    for w in &cfg.warnings {
        log(&format!("kernel command line: {w}"));
    }
    let _ = step("load kernel modules", load_modules);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
        log_level: cfg.log_level.clone(),
    });
    signal_thread(Arc::clone(&shared), set);
    if let Err(e) = step("network", setup_network) {
        fatal(&e);
    }
    if let Err(e) = step("agent", || agent(Arc::clone(&shared))) {
        fatal(&e);
    }
    let data = match &cfg.data {
        Some(dev) => step("data disk", || mount_data_disk(dev)),
        None => step("data root on tmpfs", data_on_tmpfs),
    };
    if let Err(e) = data {
        fatal(&e);
    }
    mount_shares(&cfg);
    let _ = step("daemon.json", write_default_daemon_json);
    if cfg.mirrors.is_some() || cfg.insecure.is_some() {
        let _ = step("registry settings", || registry_settings(&cfg));
    }
    let _ = mkdir(EXEC_ROOT);
    {
        let mut st = lock(&shared.state);
        spawn_berthd(&shared, &mut st);
    }
    reap_forever(shared);
}
