//! Performing the spec's mounts inside the rootfs, every target resolved by fd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::fs::{self, create_file_in_root, fd_path, mkdir_all_in_root, open_in_root};
use super::options::{parse_mount_options, prefix_field, MountOptions};
use crate::{Error, Result};

fn invalid(i: usize, field: &str, problem: String) -> Error {
    Error::InvalidConfig {
        file: "config.json".into(),
        field: format!("mounts[{i}].{field}"),
        problem,
    }
}

/// `dest` made relative to the container root, with `.` removed (`..` kept: the kernel
/// resolves it inside the root).
pub(crate) fn rel(dest: &Path) -> PathBuf {
    dest.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// True if `dest` names the container root itself (`/`, `/.`, `/..`, ...), lexically.
fn is_root(dest: &Path) -> bool {
    dest.components()
        .all(|c| !matches!(c, Component::Normal(_)))
}

/// Mount `m` (the spec's `mounts[i]`) inside the rootfs whose mount root is `root`.
pub(crate) fn mount_one(
    root: BorrowedFd,
    rootfs: &Path,
    i: usize,
    m: &Mount,
    new_cgroupns: bool,
) -> Result<()> {
    let opts = parse_mount_options(m.options().as_deref().unwrap_or_default())
        .map_err(|e| prefix_field(e, &format!("mounts[{i}].")))?;
    let dest = m.destination();
    if dest.as_os_str().is_empty() {
        return Err(invalid(i, "destination", "empty destination".into()));
    }
    if is_root(dest) {
        return Err(invalid(
            i,
            "destination",
            format!(
                "{}: mounting over the container root is not supported; use root.path",
                dest.display()
            ),
        ));
    }
    if !dest.is_absolute() {
        tracing::debug!(destination = %dest.display(), "relative mount destination, resolved from the container root");
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let rel_dest = rel(dest);
    tracing::debug!(index = i, destination = %dest.display(), r#type = typ, "mounting");

    if opts.is_bind() || typ == "bind" {
        bind_mount(root, i, m, &rel_dest, &opts)?;
    } else {
        match typ {
            "" => {
                return Err(invalid(
                    i,
                    "type",
                    format!(
                        "mount {} has no type and is not a bind mount; set type or add \"bind\"",
                        dest.display()
                    ),
                ))
            }
            "proc" | "sysfs" => {
                let target = open_special_target(root, rootfs, i, &rel_dest, typ)?;
                fs_mount(i, m, typ, &target, &opts)?;
            }
            "cgroup" | "cgroup2" => cgroup_mount(root, i, &rel_dest, &opts, new_cgroupns)?,
            _ => {
                let target = mkdir_all_in_root(root, &rel_dest, 0o755)?;
                fs_mount(i, m, typ, &target, &opts)?;
            }
        }
    }
    let top = reopen(root, &rel_dest, i)?;
    apply_recursive_attrs(&top, i, &opts)?;
    apply_propagation(&top, i, &opts)
}

/// Re-resolve the destination after mounting: the old O_PATH fd still points at the covered
/// inode, a fresh lookup reaches the new mount on top.
fn reopen(root: BorrowedFd, rel_dest: &Path, i: usize) -> Result<OwnedFd> {
    open_in_root(root, rel_dest, libc::O_PATH).map_err(|e| {
        Error::Container(format!(
            "mounts[{i}]: reopening {} after mounting: {e}",
            rel_dest.display()
        ))
    })
}

/// mount(2) with an error naming `what` (which says the mount index and destination).
fn sys_mount(
    what: &str,
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(source, target, fstype, flags, data)
        .map_err(|e| Error::sys(format!("{what} (flags {flags:?})"), io::Error::from(e)))
}

/// A non-bind filesystem mount (proc, sysfs, tmpfs, devpts, mqueue, ...) onto `target`.
fn fs_mount(i: usize, m: &Mount, typ: &str, target: &OwnedFd, opts: &MountOptions) -> Result<()> {
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data_string();
    mount(
        Some(source.as_path()),
        &fd_path(target.as_fd()),
        Some(typ),
        opts.flags,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .map_err(|e| {
        if e == nix::errno::Errno::EINVAL && !data.is_empty() {
            Error::InvalidConfig {
                file: "config.json".into(),
                field: format!("mounts[{i}].options"),
                problem: format!(
                    "the kernel refused to mount {typ} on {} with \"{data}\" (EINVAL): \
                     remove or fix the option it does not know",
                    m.destination().display()
                ),
            }
        } else {
            Error::sys(
                format!(
                    "mounts[{i}]: mounting {typ} on {} (flags {:?})",
                    m.destination().display(),
                    opts.flags
                ),
                io::Error::from(e),
            )
        }
    })
}

/// proc and sysfs must land on a real directory of the rootfs: a symlink in the final
/// component (`/proc -> /x`) is refused, as a hostile image could otherwise redirect the
/// mount that later masking relies on.
fn open_special_target(
    root: BorrowedFd,
    rootfs: &Path,
    i: usize,
    rel_dest: &Path,
    typ: &str,
) -> Result<OwnedFd> {
    let shown = Path::new("/").join(rel_dest);
    let (parent, name) = match (rel_dest.parent(), rel_dest.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => {
            return Err(invalid(
                i,
                "destination",
                format!("{typ} destination {} has no final name", shown.display()),
            ))
        }
    };
    let parent_fd = mkdir_all_in_root(root, parent, 0o755)?;
    match fs::fstatat_nofollow(parent_fd.as_fd(), name) {
        Ok(st) if fs::is_mode(&st, libc::S_IFLNK) => {
            return Err(Error::Container(format!(
                "mounts[{i}]: {typ} destination {} is a symlink in the rootfs; refusing to mount {typ} \
                 through it (replace the symlink with a directory in the image)",
                shown.display()
            )))
        }
        Ok(st) if !fs::is_mode(&st, libc::S_IFDIR) => {
            return Err(Error::Container(format!(
                "mounts[{i}]: {typ} destination {} exists in the rootfs but is not a directory",
                shown.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            nix::sys::stat::mkdirat(
                parent_fd.as_fd(),
                name,
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            )
            .or_else(|e| if e == nix::errno::Errno::EEXIST { Ok(()) } else { Err(e) })
            .map_err(|e| Error::sys(format!("mounts[{i}]: creating {}", shown.display()), io::Error::from(e)))?;
        }
        Err(e) => return Err(Error::sys(format!("mounts[{i}]: inspecting {}", shown.display()), e)),
    }
    let fd = fs::open_beneath_nofollow(
        parent_fd.as_fd(),
        Path::new(name),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .map_err(|e| {
        Error::sys(
            format!(
                "mounts[{i}]: opening {typ} destination {} (symlinks refused)",
                shown.display()
            ),
            e,
        )
    })?;
    let st = fs::fstat(fd.as_fd())
        .map_err(|e| Error::sys(format!("mounts[{i}]: stat {}", shown.display()), e))?;
    if !fs::is_mode(&st, libc::S_IFDIR) {
        return Err(Error::Container(format!(
            "mounts[{i}]: {typ} destination {} is not a directory",
            shown.display()
        )));
    }
    // Belt and braces: the kernel's name for what we opened must be under the rootfs.
    let real = std::fs::read_link(fd_path(fd.as_fd())).map_err(|e| {
        Error::sys(
            format!("mounts[{i}]: reading the path of {}", shown.display()),
            e,
        )
    })?;
    if !real.starts_with(rootfs) {
        return Err(Error::Container(format!(
            "mounts[{i}]: {typ} destination {} resolved to {} outside the rootfs {}; refusing",
            shown.display(),
            real.display(),
            rootfs.display()
        )));
    }
    Ok(fd)
}

fn bind_mount(
    root: BorrowedFd,
    i: usize,
    m: &Mount,
    rel_dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let Some(source) = m.source() else {
        return Err(invalid(
            i,
            "source",
            "a bind mount needs a source path on the host".into(),
        ));
    };
    let meta = std::fs::metadata(source).map_err(|e| {
        Error::sys(
            format!(
                "mounts[{i}]: bind mount source {} (it must exist on the host)",
                source.display()
            ),
            e,
        )
    })?;
    let target = if meta.is_dir() {
        mkdir_all_in_root(root, rel_dest, 0o755)?
    } else {
        create_file_in_root(root, rel_dest)?
    };
    let mut flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    if opts.flags.contains(MsFlags::MS_REMOUNT) {
        flags = opts.flags;
    }
    sys_mount(
        &format!(
            "mounts[{i}]: bind-mounting {} on {}",
            source.display(),
            m.destination().display()
        ),
        Some(source),
        &fd_path(target.as_fd()),
        None,
        flags,
        None,
    )?;
    let extra = opts.bind_remount_flags();
    if !extra.is_empty() && !opts.flags.contains(MsFlags::MS_REMOUNT) {
        let top = reopen(root, rel_dest, i)?;
        let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra;
        let path = fd_path(top.as_fd());
        if let Err(e) = mount(None::<&str>, &path, None::<&str>, remount, None::<&str>) {
            if e != nix::errno::Errno::EPERM {
                return Err(Error::sys(
                    format!(
                        "mounts[{i}]: remounting bind mount {} with {extra:?}",
                        m.destination().display()
                    ),
                    io::Error::from(e),
                ));
            }
            // In a user namespace the flags the source already had are locked: keep them.
            let kept = fs::kept_mount_flags(top.as_fd()).map_err(|e| {
                Error::sys(
                    format!("mounts[{i}]: statvfs {}", m.destination().display()),
                    e,
                )
            })?;
            sys_mount(
                &format!(
                    "mounts[{i}]: remounting bind mount {} (keeping locked flags)",
                    m.destination().display()
                ),
                None,
                &path,
                None,
                remount | kept,
                None,
            )?;
        }
    }
    Ok(())
}

/// cgroup mounts. cgroup v2 host: a fresh cgroup2 mount (showing the container's cgroup
/// namespace root when it has one). cgroup v1 (or hybrid) host: a tmpfs holding one directory
/// per host hierarchy, each showing only the container's own cgroup — a fresh cgroup mount
/// when the container has its own cgroup namespace (its root is the container's cgroup), else
/// a bind of the container's cgroup directory. Either way software that reads its limits from
/// /sys/fs/cgroup/memory/memory.limit_in_bytes (JVMs, runtimes) sees the container's.
/// The whole tree is made read-only recursively when the options say `ro`.
fn cgroup_mount(
    root: BorrowedFd,
    i: usize,
    rel_dest: &Path,
    opts: &MountOptions,
    own_ns: bool,
) -> Result<()> {
    let host = Path::new("/sys/fs/cgroup");
    let target = mkdir_all_in_root(root, rel_dest, 0o755)?;
    let dest = Path::new("/").join(rel_dest);
    let host_fd = std::fs::File::open(host)
        .map_err(|e| Error::sys("opening the host's /sys/fs/cgroup", e))?;
    let v2 = fs::fs_magic(host_fd.as_fd()).map_err(|e| Error::sys("statfs /sys/fs/cgroup", e))?
        == libc::CGROUP2_SUPER_MAGIC;
    if v2 {
        let flags = opts.flags - MsFlags::MS_BIND - MsFlags::MS_REC;
        match mount(
            Some("cgroup2"),
            &fd_path(target.as_fd()),
            Some("cgroup2"),
            flags,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "mounting cgroup2 failed; bind-mounting the host's /sys/fs/cgroup instead")
            }
        }
    }
    cgroup_v1_tree(root, rel_dest, i, &dest, target.as_fd(), own_ns)?;
    let top = reopen(root, rel_dest, i)?;
    let mut set = 0;
    for (f, a) in [
        (MsFlags::MS_RDONLY, super::options::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, super::options::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, super::options::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, super::options::MOUNT_ATTR_NOEXEC),
    ] {
        if opts.flags.contains(f) {
            set |= a;
        }
    }
    if set != 0 {
        fs::mount_setattr(top.as_fd(), true, set, 0).map_err(|e| {
            Error::sys(
                format!(
                    "mounts[{i}]: making {} read-only/restricted recursively",
                    dest.display()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

fn apply_recursive_attrs(top: &OwnedFd, i: usize, opts: &MountOptions) -> Result<()> {
    if opts.recursive_set == 0 && opts.recursive_clear == 0 {
        return Ok(());
    }
    fs::mount_setattr(top.as_fd(), true, opts.recursive_set, opts.recursive_clear).map_err(|e| {
        Error::sys(format!("mounts[{i}]: applying recursive mount attributes (rro, rnosuid, ...) with mount_setattr"), e)
    })
}

fn apply_propagation(top: &OwnedFd, i: usize, opts: &MountOptions) -> Result<()> {
    let path = fd_path(top.as_fd());
    for &p in &opts.propagation {
        mount(None::<&str>, &path, None::<&str>, p, None::<&str>).map_err(|e| {
            Error::sys(
                format!("mounts[{i}]: setting propagation {p:?}"),
                io::Error::from(e),
            )
        })?;
    }
    Ok(())
}

/// True if the spec bind-mounts something onto /dev (then /dev content is not created: it
/// would be created in the host directory).
pub(crate) fn dev_is_bind_mounted(mounts: &[Mount]) -> bool {
    mounts.iter().any(|m| {
        rel(m.destination()) == Path::new("dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

/// True if the spec mounts devpts at /dev/pts.
pub(crate) fn has_devpts(mounts: &[Mount]) -> bool {
    mounts.iter().any(|m| {
        m.typ().as_deref() == Some("devpts") && rel(m.destination()) == Path::new("dev/pts")
    })
}

/// One cgroup hierarchy mounted on the host: mount point, filesystem type and the options
/// that select it (controllers or `name=`).
struct HostHierarchy {
    mount: PathBuf,
    fstype: String,
    select: Vec<String>,
}

fn host_hierarchies() -> Result<Vec<HostHierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::sys("reading /proc/self/mountinfo", e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mount = match pre.split(' ').nth(4) {
            Some(m) => PathBuf::from(m),
            None => continue,
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or_default().to_string();
        let superopts = post.nth(1).unwrap_or_default();
        if !mount.starts_with("/sys/fs/cgroup") || mount == Path::new("/sys/fs/cgroup") {
            continue;
        }
        let select = match fstype.as_str() {
            "cgroup" => superopts
                .split(',')
                .filter(|o| {
                    o.starts_with("name=")
                        || matches!(
                            *o,
                            "cpu"
                                | "cpuacct"
                                | "cpuset"
                                | "memory"
                                | "devices"
                                | "freezer"
                                | "net_cls"
                                | "net_prio"
                                | "blkio"
                                | "perf_event"
                                | "hugetlb"
                                | "pids"
                                | "rdma"
                                | "misc"
                        )
                })
                .map(String::from)
                .collect(),
            "cgroup2" => Vec::new(),
            _ => continue,
        };
        out.push(HostHierarchy {
            mount,
            fstype,
            select,
        });
    }
    Ok(out)
}

/// This process's cgroup path in the hierarchy selected by `select` (empty: cgroup v2), from
/// /proc/self/cgroup.
fn own_cgroup(select: &[String], table: &str) -> Option<PathBuf> {
    table.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let mine: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
        let same = if select.is_empty() {
            mine.is_empty()
        } else {
            mine.len() == select.len() && select.iter().all(|s| mine.contains(&s.as_str()))
        };
        same.then(|| PathBuf::from(path))
    })
}

fn cgroup_v1_tree(
    root: BorrowedFd,
    rel_dest: &Path,
    i: usize,
    dest: &Path,
    target: BorrowedFd,
    own_ns: bool,
) -> Result<()> {
    let what = |s: &str| format!("mounts[{i}]: {s} on {}", dest.display());
    sys_mount(
        &what("mounting a tmpfs for the cgroup hierarchies"),
        Some(Path::new("tmpfs")),
        &fd_path(target),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )?;
    // The tmpfs now covers `target`: walk to it again from the root.
    let top = reopen(root, rel_dest, i)?;
    let table = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Error::sys("reading /proc/self/cgroup", e))?;
    for h in host_hierarchies()? {
        let name = match h.mount.file_name() {
            Some(n) => PathBuf::from(n),
            None => continue,
        };
        let sub = mkdir_all_in_root(top.as_fd(), &name, 0o755)?;
        let sub_path = fd_path(sub.as_fd());
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if own_ns {
            let data = h.select.join(",");
            sys_mount(
                &what(&format!("mounting {} {}", h.fstype, name.display())),
                Some(Path::new("cgroup")),
                &sub_path,
                Some(&h.fstype),
                flags,
                (!data.is_empty()).then_some(data.as_str()),
            )?;
        } else {
            let own = match own_cgroup(&h.select, &table) {
                Some(p) => p,
                None => continue,
            };
            let src = h.mount.join(own.strip_prefix("/").unwrap_or(&own));
            sys_mount(
                &what(&format!("binding {}", src.display())),
                Some(&src),
                &sub_path,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
        // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name.
        if let Some(n) = name.to_str() {
            if n.contains(',') {
                for part in n.split(',') {
                    let _ = nix::unistd::symlinkat(n, top.as_fd(), part);
                }
            }
        }
    }
    Ok(())
}
