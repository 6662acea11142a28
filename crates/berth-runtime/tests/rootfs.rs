//! Tests of the rootfs module: mount options (no root), fd-based resolution (no root), and
//! full prepare/enter/finish runs in forked children with their own mount namespace (root).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_runtime::rootfs::{
    self, check_sysctl, mkdir_all_in_root, open_in_root, parse_mount_options,
};
use nix::sched::CloneFlags;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            println!("skipped: needs root (mount namespaces, mknod)");
            return;
        }
    };
}

/// A fresh directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "berth-rootfs-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tiny rootfs: busybox, /bin/sh, and the usual empty directories.
fn make_rootfs(base: &Path) -> PathBuf {
    let root = base.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    fs::write(root.join("etc/marker"), "berth-rootfs").unwrap();
    root
}

fn spec(json: &str) -> oci_spec::runtime::Spec {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test spec: {e}\n{json}"))
}

/// Run `f` in a forked child after unshare(`flags`); the child's Ok/Err text comes back
/// through a pipe.
fn in_child(
    flags: CloneFlags,
    f: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only runs this test's code and leaves with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                nix::sched::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
                f()
            }))
            .unwrap_or_else(|_| Err("child panicked".into()));
            let msg = match res {
                Ok(m) => format!("OK\n{m}"),
                Err(m) => format!("ERR\n{m}"),
            };
            let mut w = fs::File::from(w);
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut out = String::new();
            fs::File::from(r).read_to_string(&mut out).unwrap();
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert!(
                matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)),
                "child: {status:?}: {out}"
            );
            match out.split_once('\n') {
                Some(("OK", m)) => Ok(m.to_string()),
                Some(("ERR", m)) => Err(m.to_string()),
                _ => panic!("child sent garbage: {out:?}"),
            }
        }
    }
}

#[derive(Debug)]
struct MountEntry {
    point: String,
    opts: String,
    fstype: String,
    super_opts: String,
}

fn mountinfo() -> Vec<MountEntry> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            let a: Vec<&str> = a.split(' ').collect();
            let b: Vec<&str> = b.split(' ').collect();
            Some(MountEntry {
                point: a.get(4)?.to_string(),
                opts: a.get(5)?.to_string(),
                fstype: b.first()?.to_string(),
                super_opts: b.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The topmost mount at `point`.
fn top_mount<'a>(m: &'a [MountEntry], point: &str) -> Result<&'a MountEntry, String> {
    m.iter()
        .rev()
        .find(|e| e.point == point)
        .ok_or_else(|| format!("no mount at {point} in {m:#?}"))
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn fs_type(p: &Path) -> Option<nix::sys::statfs::FsType> {
    nix::sys::statfs::statfs(p)
        .ok()
        .map(|s| s.filesystem_type())
}

// ---------------------------------------------------------------- no root needed

#[test]
fn parse_options_public_api() {
    let o = parse_mount_options(&[
        "nosuid".into(),
        "ro".into(),
        "mode=755".into(),
        "rbind".into(),
    ])
    .unwrap();
    assert!(o.is_bind());
    assert!(o
        .flags
        .contains(nix::mount::MsFlags::MS_RDONLY | nix::mount::MsFlags::MS_NOSUID));
    assert_eq!(o.data_string(), "mode=755");
    let e = parse_mount_options(&["rw=1".into()]).unwrap_err();
    assert!(
        matches!(e, berth_runtime::Error::InvalidConfig { .. }),
        "{e:?}"
    );
    assert!(parse_mount_options(&[String::new()]).is_err());
}

#[test]
fn sysctl_keys_are_checked() {
    assert_eq!(
        check_sysctl("net.ipv4.ip_forward", true, false).unwrap(),
        Path::new("net/ipv4/ip_forward")
    );
    assert_eq!(
        check_sysctl("kernel.shmmax", false, true).unwrap(),
        Path::new("kernel/shmmax")
    );
    assert!(check_sysctl("fs.mqueue.queues_max", false, true).is_ok());
    let e = check_sysctl("net.ipv4.ip_forward", false, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("net.ipv4.ip_forward") && e.contains("network namespace"),
        "{e}"
    );
    let e = check_sysctl("kernel.shmmax", true, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("kernel.shmmax") && e.contains("IPC namespace"),
        "{e}"
    );
    let e = check_sysctl("vm.swappiness", true, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vm.swappiness"), "{e}");
    assert!(check_sysctl("kernel.hostname", true, true).is_err());
    for bad in [
        "net..ipv4",
        "net.ipv4/../../x",
        "net/ipv4",
        ".net",
        "net.",
        "",
        "net.a b",
        "net.../x",
    ] {
        assert!(check_sysctl(bad, true, true).is_err(), "{bad:?} accepted");
    }
}

fn open_dir(p: &Path) -> OwnedFd {
    fs::File::open(p).unwrap().into()
}

#[test]
fn open_in_root_refuses_magic_links() {
    let root = open_dir(Path::new("/"));
    let f = fs::File::open("/etc/hostname")
        .or_else(|_| fs::File::open("/etc/passwd"))
        .unwrap();
    let p = format!("/proc/self/fd/{}", f.as_raw_fd());
    let e = open_in_root(root.as_fd(), Path::new(&p), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("magic link"), "{e}");
    assert!(open_in_root(root.as_fd(), Path::new("/proc/self/exe"), 0).is_err());
    assert!(open_in_root(root.as_fd(), Path::new("/proc/self/cwd/etc"), 0).is_err());
    // A normal path still works.
    assert!(open_in_root(root.as_fd(), Path::new("/proc/self/status"), 0).is_ok());
}

#[test]
fn open_in_root_stays_inside_root() {
    let t = TempDir::new("openin");
    let r = t.path().join("root");
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/passwd"), "inner").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", r.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd", r.join("rel")).unwrap();
    let root = open_dir(&r);
    for p in [
        "../../../../etc/passwd",
        "/abs",
        "rel",
        "/etc/../../etc/passwd",
    ] {
        let fd =
            open_in_root(root.as_fd(), Path::new(p), libc::O_RDONLY | libc::O_CLOEXEC).unwrap();
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s).unwrap();
        assert_eq!(s, "inner", "{p} escaped the root");
    }
    // flags == 0 gives an O_PATH fd: reading it fails with EBADF.
    let fd = open_in_root(root.as_fd(), Path::new("/etc/passwd"), 0).unwrap();
    assert_eq!(
        errno_of(fs::File::from(fd).read(&mut [0u8; 4])),
        Some(libc::EBADF)
    );
}

#[test]
fn mkdir_all_in_root_never_leaves_root() {
    let t = TempDir::new("mkdirall");
    let canary = TempDir::new("host-canary-dir");
    let r = t.path().join("root");
    fs::create_dir_all(&r).unwrap();
    std::os::unix::fs::symlink(canary.path(), r.join("evil")).unwrap();
    std::os::unix::fs::symlink("/", r.join("slash")).unwrap();
    let root = open_dir(&r);
    mkdir_all_in_root(root.as_fd(), Path::new("/evil/a/b"), 0o755).unwrap();
    mkdir_all_in_root(root.as_fd(), Path::new("../../x/../y/z"), 0o755).unwrap();
    mkdir_all_in_root(root.as_fd(), Path::new("/slash/tmp/w"), 0o755).unwrap();
    assert_eq!(
        fs::read_dir(canary.path()).unwrap().count(),
        0,
        "host canary dir was written to"
    );
    let inside = r.join(canary.path().strip_prefix("/").unwrap());
    assert!(
        inside.join("a/b").is_dir(),
        "dangling symlink target not created inside the root"
    );
    assert!(r.join("y/z").is_dir());
    assert!(r.join("tmp/w").is_dir());
    // The fd returned is the final directory.
    let fd = mkdir_all_in_root(root.as_fd(), Path::new("/y/z"), 0o755).unwrap();
    let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    assert_eq!(link, r.join("y/z"));
    // A file in the way is a clear error.
    fs::write(r.join("file"), "").unwrap();
    let e = mkdir_all_in_root(root.as_fd(), Path::new("/file/sub"), 0o755)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/file") && e.contains("not a directory"), "{e}");
}

// ---------------------------------------------------------------- root

#[test]
fn full_prepare_enter_finish() {
    require_root!();
    let t = TempDir::new("full");
    let rootfs = make_rootfs(t.path());
    fs::write(rootfs.join("etc/secret"), "top-secret").unwrap();
    fs::create_dir_all(rootfs.join("etc/secretdir")).unwrap();
    fs::write(rootfs.join("etc/secretdir/key"), "k").unwrap();
    let hostdir = t.path().join("hostdata");
    fs::create_dir_all(&hostdir).unwrap();
    fs::write(hostdir.join("data.txt"), "host-data").unwrap();
    let hostfile = t.path().join("hostfile.txt");
    fs::write(&hostfile, "file-data").unwrap();

    let s = spec(&format!(
        r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs","readonly":true}},
        "mounts":[
          {{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]}},
          {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}},
          {{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]}},
          {{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]}},
          {{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}},
          {{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}},
          {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}},
          {{"destination":"/data","type":"bind","source":"{hostdir}","options":["rbind","ro","rprivate"]}},
          {{"destination":"/etc/hostfile","source":"{hostfile}","options":["bind","ro"]}}
        ],
        "linux":{{
          "namespaces":[{{"type":"mount"}},{{"type":"network"}},{{"type":"ipc"}}],
          "devices":[{{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":416,"uid":0,"gid":0}}],
          "sysctl":{{"net.ipv4.ip_forward":"1"}},
          "maskedPaths":["/proc/kcore","/proc/keys","/etc/secret","/etc/secretdir","/proc/does-not-exist"],
          "readonlyPaths":["/proc/sys","/proc/sysrq-trigger","/proc/bus"]
        }}}}"#,
        hostdir = hostdir.display(),
        hostfile = hostfile.display()
    ));
    let before: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(String::from)
        .collect();

    let res = in_child(
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC,
        || {
            rootfs::prepare(&s, &rootfs, false).map_err(|e| format!("prepare: {e}"))?;
            rootfs::enter(&rootfs, false).map_err(|e| format!("enter: {e}"))?;
            rootfs::finish(&s, true, true).map_err(|e| format!("finish: {e}"))?;
            let mut done = Vec::new();

            check(
                std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
                "cwd is not /",
            )?;
            check(
                fs::read_to_string("/etc/marker").ok().as_deref() == Some("berth-rootfs"),
                "not inside the rootfs",
            )?;
            check(
                fs::symlink_metadata("/bin/sh")
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false),
                "/bin/sh",
            )?;
            done.push("root");

            let m = mountinfo();
            let root = top_mount(&m, "/")?;
            check(has_opt(&root.opts, "ro"), format!("/ not ro: {root:?}"))?;
            let proc = top_mount(&m, "/proc")?;
            check(
                proc.fstype == "proc"
                    && ["nosuid", "nodev", "noexec"]
                        .iter()
                        .all(|o| has_opt(&proc.opts, o)),
                format!("{proc:?}"),
            )?;
            let dev = top_mount(&m, "/dev")?;
            check(
                dev.fstype == "tmpfs"
                    && has_opt(&dev.super_opts, "mode=755")
                    && has_opt(&dev.super_opts, "size=65536k"),
                format!("{dev:?}"),
            )?;
            check(top_mount(&m, "/dev/pts")?.fstype == "devpts", "devpts")?;
            let shm = top_mount(&m, "/dev/shm")?;
            check(
                shm.fstype == "tmpfs"
                    && has_opt(&shm.super_opts, "size=65536k")
                    && has_opt(&shm.opts, "noexec"),
                format!("{shm:?}"),
            )?;
            // tmpfs leaves its default mode=1777 out of mountinfo; check the directory instead.
            let shm_mode = fs::metadata("/dev/shm")
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0);
            check(shm_mode == 0o1777, format!("/dev/shm mode {shm_mode:o}"))?;
            check(top_mount(&m, "/dev/mqueue")?.fstype == "mqueue", "mqueue")?;
            let sys = top_mount(&m, "/sys")?;
            check(
                sys.fstype == "sysfs" && has_opt(&sys.opts, "ro"),
                format!("{sys:?}"),
            )?;
            check(
                has_opt(&top_mount(&m, "/sys/fs/cgroup")?.opts, "ro"),
                "cgroup not ro",
            )?;
            check(has_opt(&top_mount(&m, "/data")?.opts, "ro"), "/data not ro")?;
            check(
                has_opt(&top_mount(&m, "/etc/hostfile")?.opts, "ro"),
                "/etc/hostfile not ro",
            )?;
            check(
                has_opt(&top_mount(&m, "/proc/sys")?.opts, "ro"),
                "/proc/sys not ro",
            )?;
            check(
                has_opt(&top_mount(&m, "/proc/sys")?.opts, "nosuid"),
                "/proc/sys lost nosuid",
            )?;
            check(
                has_opt(&top_mount(&m, "/proc/bus")?.opts, "ro"),
                "/proc/bus not ro",
            )?;
            top_mount(&m, "/proc/keys")?;
            done.push("mountinfo");

            let null = fs::metadata("/dev/null").map_err(|e| e.to_string())?;
            check(
                null.file_type().is_char_device() && null.rdev() == libc::makedev(1, 3),
                "/dev/null is not 1:3",
            )?;
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .and_then(|mut f| f.write_all(b"x"))
                .map_err(|e| format!("write /dev/null: {e}"))?;
            let mut z = [1u8; 8];
            fs::File::open("/dev/zero")
                .and_then(|mut f| f.read_exact(&mut z))
                .map_err(|e| e.to_string())?;
            check(z == [0u8; 8], "/dev/zero")?;
            let fuse = fs::metadata("/dev/fuse").map_err(|e| format!("/dev/fuse: {e}"))?;
            check(
                fuse.rdev() == libc::makedev(10, 229)
                    && fuse.permissions().mode() & 0o7777 == 0o640,
                format!("/dev/fuse {:o}", fuse.permissions().mode()),
            )?;
            for d in [
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
            ] {
                check(
                    fs::metadata(d)
                        .map(|m| m.file_type().is_char_device())
                        .unwrap_or(false),
                    format!("{d} missing"),
                )?;
            }
            check(
                fs::read_link("/dev/ptmx").ok().as_deref() == Some(Path::new("pts/ptmx")),
                "/dev/ptmx",
            )?;
            check(
                fs::read_link("/dev/fd").ok().as_deref() == Some(Path::new("/proc/self/fd")),
                "/dev/fd",
            )?;
            check(
                fs::read_link("/dev/stderr").ok().as_deref() == Some(Path::new("/proc/self/fd/2")),
                "/dev/stderr",
            )?;
            done.push("devices");

            // /proc/kcore may not exist on this kernel (then it is skipped); /proc/keys does.
            for p in ["/proc/kcore", "/proc/keys"] {
                if Path::new(p).exists() {
                    check(
                        fs::read(p).map(|v| v.is_empty()).unwrap_or(false),
                        format!("{p} not masked"),
                    )?;
                }
            }
            check(
                fs::metadata("/proc/keys")
                    .map(|m| m.file_type().is_char_device())
                    .unwrap_or(false),
                "/proc/keys not /dev/null",
            )?;
            check(
                fs::read_to_string("/etc/secret").ok().as_deref() == Some(""),
                "/etc/secret not masked",
            )?;
            check(
                fs::read_dir("/etc/secretdir").map(|d| d.count()).ok() == Some(0),
                "/etc/secretdir not masked",
            )?;
            check(
                errno_of(fs::write("/etc/secretdir/new", "x")) == Some(libc::EROFS),
                "masked dir writable",
            )?;
            done.push("masked");

            if Path::new("/proc/sysrq-trigger").exists() {
                check(
                    errno_of(fs::write("/proc/sysrq-trigger", "h")) == Some(libc::EROFS),
                    "sysrq-trigger writable",
                )?;
            }
            check(
                errno_of(
                    fs::OpenOptions::new()
                        .write(true)
                        .open("/proc/sys/kernel/domainname"),
                ) == Some(libc::EROFS),
                "/proc/sys writable",
            )?;
            check(
                fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                    .ok()
                    .as_deref()
                    == Some("1\n"),
                "sysctl not applied",
            )?;
            check(
                errno_of(fs::write("/data/new.txt", "x")) == Some(libc::EROFS),
                "ro bind writable",
            )?;
            check(
                fs::read_to_string("/data/data.txt").ok().as_deref() == Some("host-data"),
                "bind content",
            )?;
            check(
                fs::read_to_string("/etc/hostfile").ok().as_deref() == Some("file-data"),
                "file bind content",
            )?;
            check(
                errno_of(fs::write("/etc/hostfile", "x")) == Some(libc::EROFS),
                "ro file bind writable",
            )?;
            check(
                errno_of(fs::write("/newfile", "x")) == Some(libc::EROFS),
                "root not read-only",
            )?;
            fs::write("/dev/shm/ok", "x").map_err(|e| format!("/dev/shm not writable: {e}"))?;
            done.push("readonly");
            Ok(done.join(","))
        },
    );
    assert_eq!(
        res,
        Ok("root,mountinfo,devices,masked,readonly".to_string())
    );

    let after: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let base = t.path().to_string_lossy().to_string();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        new.iter().all(|l| !l.contains(&base)),
        "container mounts leaked to the host: {new:#?}"
    );
    for l in &new {
        let point = l.split(' ').nth(4).unwrap_or("");
        assert!(
            ![
                "/proc",
                "/dev",
                "/sys",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/data"
            ]
            .contains(&point),
            "leaked: {l}"
        );
    }
    assert!(
        after.iter().all(|l| !l.contains(&base)),
        "host mountinfo mentions the rootfs"
    );
    assert_eq!(
        fs::read_dir(&hostdir).unwrap().count(),
        1,
        "host bind source modified"
    );
    assert_eq!(
        fs::read_to_string(hostdir.join("data.txt")).unwrap(),
        "host-data"
    );
}

fn enter_without_prepare(no_pivot: bool) {
    let t = TempDir::new(if no_pivot { "nopivot" } else { "pivot" });
    let rootfs = make_rootfs(t.path());
    let base = t.path().to_path_buf();
    let res = in_child(CloneFlags::CLONE_NEWNS, || {
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_PRIVATE | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("rprivate: {e}"))?;
        let rs = rootfs.to_string_lossy().to_string();
        check(
            !mountinfo().iter().any(|e| e.point == rs),
            "rootfs already a mount point",
        )?;
        rootfs::enter(&rootfs, no_pivot).map_err(|e| format!("enter: {e}"))?;
        check(
            std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
            "cwd is not /",
        )?;
        check(
            fs::read_to_string("/etc/marker").ok().as_deref() == Some("berth-rootfs"),
            "not in the rootfs",
        )?;
        check(!base.exists(), "host paths still reachable")?;
        check(fs::metadata("/bin/busybox").is_ok(), "busybox")?;
        Ok("entered".into())
    });
    assert_eq!(res, Ok("entered".to_string()));
}

#[test]
fn enter_no_pivot_from_plain_directory() {
    require_root!();
    enter_without_prepare(true);
}

#[test]
fn enter_pivot_from_plain_directory() {
    require_root!();
    enter_without_prepare(false);
}

#[test]
fn proc_symlink_destination_is_refused() {
    require_root!();
    let t = TempDir::new("procsym");
    let rootfs = make_rootfs(t.path());
    fs::remove_dir(rootfs.join("proc")).unwrap();
    fs::create_dir(rootfs.join("x")).unwrap();
    std::os::unix::fs::symlink("/x", rootfs.join("proc")).unwrap();
    let s = spec(
        r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"}]}"#,
    );
    let x = rootfs.join("x");
    let res = in_child(CloneFlags::CLONE_NEWNS, || {
        match rootfs::prepare(&s, &rootfs, false) {
            Ok(()) => Ok("prepare accepted /proc -> /x".into()),
            Err(e) => {
                check(
                    fs_type(&x) != Some(nix::sys::statfs::PROC_SUPER_MAGIC),
                    "proc mounted on /x anyway",
                )?;
                Err(e.to_string())
            }
        }
    });
    let e = res.unwrap_err();
    assert!(e.contains("/proc") && e.contains("symlink"), "{e}");
}

#[test]
fn mount_destinations_stay_inside_rootfs() {
    require_root!();
    let t = TempDir::new("escape");
    let canary = TempDir::new("host-canary-dir");
    let rootfs = make_rootfs(t.path());
    std::os::unix::fs::symlink(canary.path(), rootfs.join("evil")).unwrap();
    let escape = format!(
        "berth-escape-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let hostdir = t.path().join("hostdata");
    fs::create_dir_all(&hostdir).unwrap();
    let s = spec(&format!(
        r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},"mounts":[
          {{"destination":"/../../../../tmp/{escape}","type":"tmpfs","source":"tmpfs"}},
          {{"destination":"/evil/sub","type":"tmpfs","source":"tmpfs"}},
          {{"destination":"/evil/bound","type":"bind","source":"{h}","options":["bind"]}}]}}"#,
        h = hostdir.display()
    ));
    let inside_escape = rootfs.join("tmp").join(&escape);
    let inside_canary = rootfs.join(canary.path().strip_prefix("/").unwrap());
    let res = in_child(CloneFlags::CLONE_NEWNS, || {
        rootfs::prepare(&s, &rootfs, false).map_err(|e| format!("prepare: {e}"))?;
        let tmpfs = Some(nix::sys::statfs::TMPFS_MAGIC);
        check(
            fs_type(&inside_escape) == tmpfs,
            "escape mount not inside the rootfs",
        )?;
        check(
            fs_type(&inside_canary.join("sub")) == tmpfs,
            "symlinked mount not inside the rootfs",
        )?;
        check(
            !Path::new("/tmp").join(&escape).exists(),
            "mount escaped to the host /tmp",
        )?;
        check(
            fs::read_dir(canary.path()).map(|d| d.count()).ok() == Some(0),
            "host canary touched",
        )?;
        Ok("inside".into())
    });
    assert_eq!(res, Ok("inside".to_string()));
    assert!(!Path::new("/tmp").join(&escape).exists());
    assert_eq!(
        fs::read_dir(canary.path()).unwrap().count(),
        0,
        "host canary dir modified"
    );
    assert!(
        inside_escape.is_dir()
            && inside_canary.join("sub").is_dir()
            && inside_canary.join("bound").is_dir()
    );
}

fn masking_with_fake_dev_null(make_null: impl FnOnce(&Path)) {
    let t = TempDir::new("fakenull");
    let rootfs = make_rootfs(t.path());
    fs::write(rootfs.join("etc/secret"), "top-secret").unwrap();
    make_null(&rootfs.join("dev/null"));
    let s = spec(
        r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
        "linux":{"maskedPaths":["/etc/secret"]}}"#,
    );
    let res = in_child(CloneFlags::CLONE_NEWNS, || {
        rootfs::prepare(&s, &rootfs, false).map_err(|e| format!("prepare: {e}"))?;
        rootfs::enter(&rootfs, false).map_err(|e| format!("enter: {e}"))?;
        match rootfs::finish(&s, false, false) {
            Ok(()) => Ok("finish accepted a fake /dev/null".into()),
            Err(e) => {
                check(
                    fs::read_to_string("/etc/secret").ok().as_deref() == Some("top-secret"),
                    "secret replaced by something",
                )?;
                Err(e.to_string())
            }
        }
    });
    let e = res.unwrap_err();
    assert!(e.contains("/dev/null"), "{e}");
}

#[test]
fn masking_refuses_regular_file_dev_null() {
    require_root!();
    masking_with_fake_dev_null(|p| fs::write(p, "not a device").unwrap());
}

#[test]
fn masking_refuses_symlinked_dev_null() {
    require_root!();
    let canary = TempDir::new("canary-file");
    let f = canary.path().join("core_pattern");
    fs::write(&f, "canary").unwrap();
    let target = f.clone();
    masking_with_fake_dev_null(move |p| std::os::unix::fs::symlink(&target, p).unwrap());
    assert_eq!(fs::read_to_string(&f).unwrap(), "canary");
}

/// The optional fields (`shared:N`, `master:N`) of the topmost mount at `point`.
fn propagation_tags(point: &str) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .rev()
        .filter_map(|l| {
            let (a, _) = l.split_once(" - ")?;
            let a: Vec<&str> = a.split(' ').collect();
            (a.get(4) == Some(&point)).then(|| a.get(6..).map(|t| t.join(" ")).unwrap_or_default())
        })
        .next()
}

#[test]
fn userns_devices_are_bind_mounted_host_nodes() {
    require_root!();
    let t = TempDir::new("userns-dev");
    let rootfs = make_rootfs(t.path());
    let s = spec(
        r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}]}"#,
    );
    let res = in_child(CloneFlags::CLONE_NEWNS, || {
        // in_userns=true takes the bind path even though we are real root here.
        rootfs::prepare(&s, &rootfs, true).map_err(|e| format!("prepare: {e}"))?;
        let null = rootfs.join("dev/null");
        let md = fs::metadata(&null).map_err(|e| e.to_string())?;
        check(
            md.file_type().is_char_device() && md.rdev() == libc::makedev(1, 3),
            "/dev/null is not the host's 1:3",
        )?;
        let point = null.to_string_lossy().to_string();
        check(
            mountinfo().iter().any(|e| e.point == point),
            "/dev/null is not a bind mount",
        )?;
        Ok("bound".into())
    });
    assert_eq!(res, Ok("bound".to_string()));
}

#[test]
fn root_propagation_is_applied_last() {
    require_root!();
    for (prop, want_shared) in [("rshared", true), ("rprivate", false)] {
        let t = TempDir::new("prop");
        let rootfs = make_rootfs(t.path());
        let s = spec(&format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},
            "mounts":[{{"destination":"/proc","type":"proc","source":"proc"}}],
            "linux":{{"rootfsPropagation":"{prop}"}}}}"#
        ));
        let res = in_child(CloneFlags::CLONE_NEWNS, || {
            rootfs::prepare(&s, &rootfs, false).map_err(|e| format!("prepare: {e}"))?;
            // Before finish nothing is shared, whatever was asked for.
            let rs = rootfs.to_string_lossy().to_string();
            let tags = propagation_tags(&rs).ok_or("rootfs is not a mount point")?;
            check(
                !tags.contains("shared:"),
                format!("rootfs shared before finish: {tags}"),
            )?;
            rootfs::enter(&rootfs, false).map_err(|e| format!("enter: {e}"))?;
            rootfs::finish(&s, false, false).map_err(|e| format!("finish: {e}"))?;
            propagation_tags("/").ok_or_else(|| "no / in mountinfo".to_string())
        });
        let tags = res.unwrap();
        assert_eq!(tags.contains("shared:"), want_shared, "{prop}: {tags:?}");
    }
}

#[test]
fn invalid_config_fails_before_any_mount() {
    require_root!();
    let t = TempDir::new("invalid");
    let rootfs = make_rootfs(t.path());
    for (json, field) in [
        (
            r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"linux":{"rootfsPropagation":"sideways"}}"#,
            "linux.rootfsPropagation",
        ),
        (
            r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"mounts":[
              {"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid","rw=1"]}]}"#,
            "mounts[0].options[1]",
        ),
    ] {
        let s = spec(json);
        let res = in_child(CloneFlags::CLONE_NEWNS, || {
            let before = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            let e = match rootfs::prepare(&s, &rootfs, false) {
                Ok(()) => return Ok("accepted".into()),
                Err(e) => e,
            };
            let after = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            check(before == after, "prepare changed mounts before failing")?;
            check(
                matches!(e, berth_runtime::Error::InvalidConfig { .. }),
                format!("not InvalidConfig: {e:?}"),
            )?;
            Err(e.to_string())
        });
        let e = res.unwrap_err();
        assert!(e.contains(field), "{e}");
    }
}
