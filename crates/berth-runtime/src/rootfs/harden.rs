//! Steps after pivot_root: sysctls, masked paths, read-only paths, read-only root.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::fs::{self, open_in_root};
use super::options::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::{Error, Result};

/// sysctls that belong to the IPC namespace (besides the `fs.mqueue.` prefix).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn sysctl_err(key: &str, problem: String) -> Error {
    Error::InvalidConfig {
        file: "config.json".into(),
        field: format!("linux.sysctl[{key:?}]"),
        problem,
    }
}

/// Check a `linux.sysctl` key and return its path under /proc/sys (`net/ipv4/ip_forward`).
///
/// Only namespaced keys are allowed, as runc does: `net.*` with a new network namespace, the
/// IPC keys (`kernel.msg*`, `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`) with a new IPC
/// namespace. Anything else would change the host and is refused, as are keys that are not
/// plain dot-separated names (empty parts, `/`, `..`, spaces). Config validation can call this
/// early.
pub fn check_sysctl(key: &str, new_netns: bool, new_ipcns: bool) -> Result<PathBuf> {
    let well_formed = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'@' | b':')
                })
        });
    if !well_formed {
        return Err(sysctl_err(
            key,
            "not a valid sysctl name: use dot-separated names like net.ipv4.ip_forward (no \"/\", \"..\" or empty parts)".into(),
        ));
    }
    if key.starts_with("net.") {
        if !new_netns {
            return Err(sysctl_err(
                key,
                format!("sysctl {key:?} needs a new network namespace, but the container shares the host's; remove it or add a network namespace"),
            ));
        }
    } else if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        if !new_ipcns {
            return Err(sysctl_err(
                key,
                format!("sysctl {key:?} needs a new IPC namespace, but the container shares the host's; remove it or add an ipc namespace"),
            ));
        }
    } else {
        return Err(sysctl_err(
            key,
            format!("sysctl {key:?} is not in a separate kernel namespace; setting it would change the host; remove it"),
        ));
    }
    Ok(PathBuf::from(key.replace('.', "/")))
}

/// Open the container's /proc, requiring it to be the root of a procfs mount.
fn open_proc(root: BorrowedFd) -> Result<OwnedFd> {
    let proc = fs::open_beneath_nofollow(root, Path::new("proc"), libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| {
            Error::sys(
                "opening /proc in the container (it must be a directory, not a symlink)",
                e,
            )
        })?;
    let magic = fs::fs_magic(proc.as_fd()).map_err(|e| Error::sys("statfs /proc", e))?;
    let st = fs::fstat(proc.as_fd()).map_err(|e| Error::sys("stat /proc", e))?;
    if magic != libc::PROC_SUPER_MAGIC || st.st_ino != 1 {
        return Err(Error::Container(
            "/proc in the container is not a procfs mount; add a proc mount at /proc to the spec"
                .into(),
        ));
    }
    Ok(proc)
}

pub(crate) fn write_sysctls(
    root: BorrowedFd,
    sysctl: &[(String, String)],
    new_netns: bool,
    new_ipcns: bool,
) -> Result<()> {
    if sysctl.is_empty() {
        return Ok(());
    }
    let checked = sysctl
        .iter()
        .map(|(k, v)| check_sysctl(k, new_netns, new_ipcns).map(|p| (k, p, v)))
        .collect::<Result<Vec<_>>>()?;
    let proc = open_proc(root)?;
    let sys = fs::open_beneath_nofollow(
        proc.as_fd(),
        Path::new("sys"),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .map_err(|e| Error::sys("opening /proc/sys", e))?;
    for (key, rel, value) in checked {
        let fd = fs::open_beneath_nofollow(sys.as_fd(), &rel, libc::O_WRONLY).map_err(|e| {
            Error::sys(
                format!(
                    "linux.sysctl {key:?}: opening /proc/sys/{} (is the name right?)",
                    rel.display()
                ),
                e,
            )
        })?;
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .map_err(|e| Error::sys(format!("linux.sysctl {key:?}: writing {value:?}"), e))?;
        tracing::debug!(key = %key, value = %value, "sysctl set");
    }
    Ok(())
}

/// Open /dev/null in the container root and require it to be the character device 1:3, so a
/// hostile image cannot make us bind some other file (or a host file) over masked paths.
fn open_dev_null(root: BorrowedFd) -> Result<OwnedFd> {
    let fd = fs::open_beneath_nofollow(root, Path::new("dev/null"), libc::O_PATH).map_err(|e| {
        Error::sys(
            "opening /dev/null in the container to mask paths (it must exist and not be a symlink)",
            e,
        )
    })?;
    let st = fs::fstat(fd.as_fd()).map_err(|e| Error::sys("stat /dev/null", e))?;
    let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    if !fs::is_mode(&st, libc::S_IFCHR) || (maj, min) != (1, 3) {
        return Err(Error::Container(format!(
            "refusing to mask paths with the container's /dev/null: it is not the character device 1:3 \
             (mode {:o}, device {maj}:{min}); fix the image or mount a tmpfs on /dev",
            st.st_mode
        )));
    }
    Ok(fd)
}

pub(crate) fn mask_paths(root: BorrowedFd, paths: &[String]) -> Result<()> {
    let mut dev_null: Option<OwnedFd> = None;
    for (i, p) in paths.iter().enumerate() {
        let target = match open_in_root(root, Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Error::Sys { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ENOTDIR)
                ) =>
            {
                tracing::debug!(path = %p, "masked path does not exist; skipped");
                continue;
            }
            Err(e) => return Err(Error::Container(format!("linux.maskedPaths[{i}] {p}: {e}"))),
        };
        let st = fs::fstat(target.as_fd())
            .map_err(|e| Error::sys(format!("linux.maskedPaths[{i}]: stat {p}"), e))?;
        let what = format!("linux.maskedPaths[{i}]: masking {p}");
        let mnt = if fs::is_mode(&st, libc::S_IFDIR) {
            fs::new_detached_mount(
                c"tmpfs",
                &[(c"mode", c"0555")],
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            )
            .map_err(|e| Error::sys(format!("{what}: creating a read-only tmpfs"), e))?
        } else {
            if dev_null.is_none() {
                dev_null = Some(open_dev_null(root)?);
            }
            let Some(null) = dev_null.as_ref() else {
                continue;
            };
            fs::clone_tree(null.as_fd(), false)
                .map_err(|e| Error::sys(format!("{what}: cloning /dev/null"), e))?
        };
        fs::move_mount_onto(mnt.as_fd(), target.as_fd()).map_err(|e| Error::sys(what, e))?;
    }
    Ok(())
}

pub(crate) fn readonly_paths(root: BorrowedFd, paths: &[String]) -> Result<()> {
    for (i, p) in paths.iter().enumerate() {
        let target = match open_in_root(root, Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Error::Sys { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ENOTDIR)
                ) =>
            {
                tracing::debug!(path = %p, "read-only path does not exist; skipped");
                continue;
            }
            Err(e) => {
                return Err(Error::Container(format!(
                    "linux.readonlyPaths[{i}] {p}: {e}"
                )))
            }
        };
        let what = format!("linux.readonlyPaths[{i}]: making {p} read-only");
        // A recursive bind of the path onto itself; cloning keeps nosuid/nodev/noexec/atime,
        // mount_setattr only adds MOUNT_ATTR_RDONLY.
        let tree = fs::clone_tree(target.as_fd(), true)
            .map_err(|e| Error::sys(format!("{what}: open_tree"), e))?;
        fs::mount_setattr(tree.as_fd(), true, MOUNT_ATTR_RDONLY, 0)
            .map_err(|e| Error::sys(format!("{what}: mount_setattr"), e))?;
        fs::move_mount_onto(tree.as_fd(), target.as_fd()).map_err(|e| Error::sys(what, e))?;
    }
    Ok(())
}

/// Remount "/" read-only, keeping the flags it has.
pub(crate) fn readonly_root(root: BorrowedFd) -> Result<()> {
    let kept = fs::kept_mount_flags(root).map_err(|e| Error::sys("statvfs /", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | kept,
        None::<&str>,
    )
    .map_err(|e| {
        Error::sys(
            "root.readonly: remounting / read-only",
            std::io::Error::from(e),
        )
    })
}
