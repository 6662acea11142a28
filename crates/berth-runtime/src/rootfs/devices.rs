//! /dev content: default device nodes, linux.devices, and the standard symlinks.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};

use super::fs::{self, fd_path, mkdir_all_in_root};
use super::mounts::rel;
use crate::{Error, Result};

/// A device node to create: path inside the root, type bits, major, minor, mode, owner.
struct Node {
    path: PathBuf,
    kind: libc::mode_t,
    major: u32,
    minor: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    /// `linux.devices[i]` for error messages, or None for a default device.
    index: Option<usize>,
}

const DEFAULTS: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

fn invalid(i: usize, field: &str, problem: String) -> Error {
    Error::InvalidConfig {
        file: "config.json".into(),
        field: format!("linux.devices[{i}].{field}"),
        problem,
    }
}

fn spec_node(i: usize, d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(invalid(
                i,
                "type",
                "\"a\" is only valid in linux.resources.devices; use c, b, u or p".into(),
            ))
        }
    };
    let num = |v: i64, field: &str| {
        u32::try_from(v).map_err(|_| invalid(i, field, format!("{v} is not a valid device number")))
    };
    let path = d.path();
    if !path.starts_with("/dev/")
        || rel(path)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(invalid(
            i,
            "path",
            format!(
                "{}: device paths must be under /dev and must not contain \"..\"",
                path.display()
            ),
        ));
    }
    Ok(Node {
        path: path.clone(),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
        index: Some(i),
    })
}

/// Populate /dev inside the rootfs.
pub(crate) fn create_dev(
    root: BorrowedFd,
    spec: &Spec,
    in_userns: bool,
    has_devpts: bool,
) -> Result<()> {
    let spec_devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let mut nodes = Vec::new();
    for (i, d) in spec_devices.iter().enumerate() {
        nodes.push(spec_node(i, d)?);
    }
    for (p, major, minor) in DEFAULTS {
        if !nodes.iter().any(|n| n.path == Path::new(p)) {
            nodes.push(Node {
                path: p.into(),
                kind: libc::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
                index: None,
            });
        }
    }
    for n in &nodes {
        create_node(root, n, in_userns)?;
    }
    let dev = mkdir_all_in_root(root, Path::new("dev"), 0o755)?;
    if has_devpts {
        // A host-style /dev/ptmx node would bypass the container's devpts instance.
        match nix::unistd::unlinkat(dev.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::sys(
                    "removing /dev/ptmx before linking it to pts/ptmx",
                    io::Error::from(e),
                ))
            }
        }
    }
    let links: Vec<(&str, &str)> = std::iter::once(("ptmx", "pts/ptmx"))
        .chain(SYMLINKS)
        .collect();
    for (name, target) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => {
                tracing::debug!(name, "/dev entry already exists; left as is")
            }
            Err(e) => {
                return Err(Error::sys(
                    format!("creating symlink /dev/{name} -> {target}"),
                    io::Error::from(e),
                ))
            }
        }
    }
    Ok(())
}

fn create_node(root: BorrowedFd, n: &Node, in_userns: bool) -> Result<()> {
    let what = |s: &str| match n.index {
        Some(i) => format!("linux.devices[{i}] {}: {s}", n.path.display()),
        None => format!("{}: {s}", n.path.display()),
    };
    let rel_path = rel(&n.path);
    let (Some(parent), Some(name)) = (rel_path.parent(), rel_path.file_name()) else {
        return Err(Error::Container(what("device path has no file name")));
    };
    let dir = mkdir_all_in_root(root, parent, 0o755)?;
    let cname =
        CString::new(name.as_bytes()).map_err(|_| Error::Container(what("NUL byte in path")))?;
    if in_userns {
        // mknod is not allowed in a user namespace: bind-mount the host's node onto an empty file.
        let file = match fs::openat2(
            dir.as_fd(),
            Path::new(name),
            libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o000,
            0,
        ) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                tracing::debug!(path = %n.path.display(), "device path already exists in the rootfs; not replaced");
                return Ok(());
            }
            Err(e) => return Err(Error::sys(what("creating the bind-mount target"), e)),
        };
        return mount(
            Some(&n.path),
            &fd_path(file.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            Error::sys(
                what("bind-mounting the host device node"),
                io::Error::from(e),
            )
        });
    }
    let dev = libc::makedev(n.major, n.minor);
    // SAFETY: umask and mknodat on valid arguments; we are single-threaded.
    let (r, err) = unsafe {
        let old = libc::umask(0);
        let r = libc::mknodat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            n.kind | n.mode as libc::mode_t,
            dev,
        );
        let err = io::Error::last_os_error();
        libc::umask(old);
        (r, err)
    };
    if r != 0 {
        if err.raw_os_error() == Some(libc::EEXIST) {
            tracing::debug!(path = %n.path.display(), "device path already exists in the rootfs; not replaced");
            return Ok(());
        }
        return Err(Error::sys(what("mknod"), err));
    }
    // SAFETY: valid C string and dirfd; AT_SYMLINK_NOFOLLOW so a swapped-in symlink is not followed.
    if unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            n.uid,
            n.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(Error::sys(
            what(&format!("chown to {}:{}", n.uid, n.gid)),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_are_the_docker_set() {
        let names: Vec<_> = super::DEFAULTS.iter().map(|d| d.0).collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(super::DEFAULTS.contains(&("/dev/null", 1, 3)));
    }
}
