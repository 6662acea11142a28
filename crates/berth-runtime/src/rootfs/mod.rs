//! The container root filesystem: mounts resolved inside the root by fd, devices,
//! pivot_root, sysctls, masked and read-only paths.
//!
//! # Order
//!
//! The container's init calls, in its new mount namespace:
//!
//! 1. [`prepare`] (before pivot_root, host paths still visible):
//!    1. make "/" recursively `rslave` (or the requested `linux.rootfsPropagation`, with
//!       `shared` downgraded to `slave` until [`finish`]) so that no mount made from here on
//!       propagates back to the host;
//!    2. bind the rootfs onto itself (`MS_BIND|MS_REC`) so it is a mount point (pivot_root and
//!       MS_MOVE need one);
//!    3. every `mounts[i]` in order (see below);
//!    4. /dev content: null, zero, full, random, urandom, tty and `linux.devices` (mknod, or a
//!       bind of the host node onto an empty file in a user namespace), /dev/ptmx -> pts/ptmx,
//!       /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr. Skipped when the spec bind-mounts
//!       something onto /dev (it would write into a host directory). Existing entries are left
//!       as they are (a bogus /dev/null is caught by [`finish`]); /dev/core is not created;
//!       /dev/console is the console code's job.
//! 2. [`enter`]: pivot_root into the rootfs and detach the old root, or with `no_pivot`
//!    (rootfs on initramfs) MS_MOVE it onto "/" and chroot. Afterwards cwd is "/".
//! 3. [`finish`]: `linux.sysctl`, `linux.maskedPaths`, `linux.readonlyPaths`,
//!    `root.readonly`, then the requested root propagation.
//!
//! # Security reasoning
//!
//! The rootfs comes from an image and is hostile: any path in it may be a symlink to a host
//! path (`/proc -> /x`, `/etc -> /`, `/dev/null -> /proc/sys/kernel/core_pattern`), and the
//! runc CVEs (2021-30465, 2025-31133, 2025-52565) come from checking a path by name and then
//! using it by name. So:
//!
//! - Every mount target is resolved with openat2(`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`)
//!   from an fd of the rootfs ([`open_in_root`]); `..` and absolute symlinks stop at the root.
//!   Missing directories are created one component at a time with mkdirat(2) in a directory
//!   fd resolved that way ([`mkdir_all_in_root`]). The mount is then made onto
//!   `/proc/self/fd/N` of the resolved `O_PATH` fd (the host's /proc, visible before
//!   pivot_root), so the kernel mounts onto exactly the inode we resolved.
//! - After a mount the old fd still points at the covered inode, so remounts (bind `ro`),
//!   `mount_setattr` attributes and propagation changes re-resolve the destination first.
//! - proc and sysfs refuse a destination whose last component is a symlink, check the opened
//!   target is a directory, and check that the kernel's name for it is under the rootfs.
//! - After pivot_root, the steps of [`finish`] use the fd-based mount API (open_tree,
//!   fsopen/fsmount, move_mount, mount_setattr) instead of `/proc/self/fd` paths, so they do
//!   not depend on the container's /proc being genuine. sysctls are written through an fd of
//!   /proc that must be the root of a procfs mount, with `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`.
//! - Masking binds the container's /dev/null only after fstat shows it is the character
//!   device 1:3 and not a symlink; otherwise finish fails rather than bind some other file.
//! - sysctl keys are plain dotted names (no `/`, `..`), and only namespaced keys are accepted.
//!
//! # Spec mounts
//!
//! Options are parsed by [`parse_mount_options`] (config validation calls
//! [`parse_spec_mount_options`] first, so a bad option fails before anything is created).
//! For each mount, in order:
//!
//! - bind mounts (`bind`/`rbind` option or type `bind`): the destination is a directory made
//!   with [`mkdir_all_in_root`] when the source is a directory, else an empty file created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` in its parent's fd. `MS_BIND` (`|MS_REC` for rbind), then a
//!   `MS_REMOUNT|MS_BIND` pass for ro/nosuid/nodev/noexec/atime flags (retried with the
//!   mount's locked flags on EPERM, for user namespaces);
//! - proc and sysfs: the symlink checks above, then mount(2);
//! - cgroup: see below; anything else (tmpfs, devpts, mqueue, ...): mount(2) with the flags
//!   and the data options joined by commas;
//! - then recursive attributes (`rro`, `rnosuid`, ...) with mount_setattr(AT_RECURSIVE), and
//!   each propagation option in its own mount(2) call.
//!
//! # cgroup mounts
//!
//! On a cgroup v2 host a `cgroup` mount is a fresh cgroup2 mount (its root is the container's
//! cgroup namespace root when it has one). On a v1 host (or if cgroup2 cannot be mounted) it
//! is a recursive bind of the host's /sys/fs/cgroup made read-only recursively when `ro` is
//! given; this exposes the host's hierarchy names read-only, as runc does without a cgroup
//! namespace.

mod devices;
mod fs;
mod harden;
mod mounts;
mod options;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

pub use fs::{mkdir_all_in_root, open_in_root};
pub use harden::check_sysctl;
pub use options::{parse_mount_options, parse_spec_mount_options, MountOptions};

use crate::{Error, Result};

/// The requested `linux.rootfsPropagation`, or None if unset/empty.
fn requested_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(None);
    };
    use MsFlags as F;
    let f = match p.as_str() {
        "" => return Ok(None),
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        other => {
            return Err(Error::InvalidConfig {
                file: "config.json".into(),
                field: "linux.rootfsPropagation".into(),
                problem: format!(
                    "{other:?} is not a propagation type; use shared, slave, private, unbindable or their r-prefixed forms"
                ),
            })
        }
    };
    Ok(Some(f))
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let c = fs::cstr(path)?;
    // SAFETY: valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::io(path, io::Error::last_os_error()));
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

fn bind_self(rootfs: &Path) -> Result<()> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        Error::sys(
            format!("bind-mounting the rootfs {} onto itself", rootfs.display()),
            io::Error::from(e),
        )
    })
}

/// In the container's new mount namespace, before pivot_root. `rootfs` is the absolute host
/// path of the bundle's root. See the module docs for the steps.
pub fn prepare(spec: &Spec, rootfs: &Path, in_userns: bool) -> Result<()> {
    let new_cgroupns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|v| {
            v.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup && n.path().is_none()
            })
        });
    if !rootfs.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "rootfs path {} must be absolute",
            rootfs.display()
        )));
    }
    // Validate everything that can be validated before touching anything.
    parse_spec_mount_options(spec)?;
    let requested = requested_propagation(spec)?;

    // 1. Nothing may propagate back to the host: shared is downgraded to slave until finish().
    let first = match requested {
        Some(f) if !f.contains(MsFlags::MS_SHARED) => f | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, first, None::<&str>).map_err(|e| {
        Error::sys(
            format!("setting propagation {first:?} on / in the container's mount namespace"),
            io::Error::from(e),
        )
    })?;

    // 2. The rootfs becomes a mount point.
    bind_self(rootfs)?;
    let root = open_dir(rootfs)?;
    // The kernel's name for the rootfs, for the "is it inside" check of proc/sysfs targets.
    let canonical = std::fs::canonicalize(rootfs).map_err(|e| Error::io(rootfs, e))?;

    // 3. Spec mounts, in order.
    let spec_mounts = spec.mounts().clone().unwrap_or_default();
    for (i, m) in spec_mounts.iter().enumerate() {
        mounts::mount_one(root.as_fd(), &canonical, i, m, new_cgroupns)?;
    }

    // 4. /dev content.
    if mounts::dev_is_bind_mounted(&spec_mounts) {
        tracing::info!("/dev is bind-mounted from the host; not creating device nodes");
    } else {
        devices::create_dev(
            root.as_fd(),
            spec,
            in_userns,
            mounts::has_devpts(&spec_mounts),
        )?;
    }
    Ok(())
}

/// pivot_root into `rootfs` and detach the old root (umount2 MNT_DETACH), or with `no_pivot`
/// (for roots on initramfs/ramfs where pivot_root fails): MS_MOVE the rootfs onto "/" and
/// chroot("."). If `rootfs` is not a mount point it is first bind-mounted onto itself.
/// Afterwards cwd is "/".
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let mut newroot = open_dir(rootfs)?;
    let is_mount = fs::is_mount_root(newroot.as_fd()).map_err(|e| {
        Error::sys(
            format!("statx {} (is it a mount point?)", rootfs.display()),
            e,
        )
    })?;
    if !is_mount {
        bind_self(rootfs)?;
        newroot = open_dir(rootfs)?;
    }
    nix::unistd::fchdir(newroot.as_fd())
        .map_err(|e| Error::sys(format!("chdir {}", rootfs.display()), io::Error::from(e)))?;
    if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|e| {
            Error::sys(
                format!("moving the rootfs {} onto / (--no-pivot)", rootfs.display()),
                io::Error::from(e),
            )
        })?;
        nix::unistd::chroot(".")
            .map_err(|e| Error::sys("chroot into the rootfs", io::Error::from(e)))?;
    } else {
        let oldroot = open_dir(Path::new("/"))?;
        nix::unistd::pivot_root(".", ".").map_err(|e| {
            Error::sys(
                format!(
                    "pivot_root into {} (if the host root is on initramfs/ramfs, use --no-pivot)",
                    rootfs.display()
                ),
                io::Error::from(e),
            )
        })?;
        // The old root is now stacked on "/"; make sure its unmount cannot propagate, then drop it.
        nix::unistd::fchdir(oldroot.as_fd())
            .map_err(|e| Error::sys("chdir to the old root", io::Error::from(e)))?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::sys("making the old root rslave", io::Error::from(e)))?;
        umount2(".", MntFlags::MNT_DETACH)
            .map_err(|e| Error::sys("detaching the old root", io::Error::from(e)))?;
    }
    nix::unistd::chdir("/")
        .map_err(|e| Error::sys("chdir / in the container", io::Error::from(e)))?;
    let cwd = nix::unistd::getcwd()
        .map_err(|e| Error::sys("getcwd after entering the rootfs", io::Error::from(e)))?;
    if cwd != Path::new("/") {
        return Err(Error::Container(format!(
            "after entering the rootfs the working directory is {}, not /",
            cwd.display()
        )));
    }
    Ok(())
}

/// After [`enter`]: `linux.sysctl` (net.* only with `new_netns`, IPC keys only with
/// `new_ipcns`), `linux.maskedPaths`, `linux.readonlyPaths`, `root.readonly`, then the
/// requested `linux.rootfsPropagation` on "/".
pub fn finish(spec: &Spec, new_netns: bool, new_ipcns: bool) -> Result<()> {
    let root = open_dir(Path::new("/"))?;
    let linux = spec.linux().as_ref();
    let mut sysctl: Vec<(String, String)> = linux
        .and_then(|l| l.sysctl().clone())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    sysctl.sort();
    harden::write_sysctls(root.as_fd(), &sysctl, new_netns, new_ipcns)?;

    let masked = linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    harden::mask_paths(root.as_fd(), &masked)?;
    let readonly = linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default();
    harden::readonly_paths(root.as_fd(), &readonly)?;

    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        harden::readonly_root(root.as_fd())?;
    }
    if let Some(p) = requested_propagation(spec)? {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).map_err(|e| {
            Error::sys(
                format!("setting linux.rootfsPropagation {p:?} on /"),
                io::Error::from(e),
            )
        })?;
    }
    Ok(())
}
