//! Path resolution inside a root through file descriptors, and thin wrappers for the mount
//! system calls that have no wrapper in nix/libc.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// `RESOLVE_*` bits for openat2(2) (`<linux/openat2.h>`).
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Symlinks followed by hand while creating directories before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// `struct open_how` (libc's is non-exhaustive, so it cannot be built outside libc).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `struct mount_attr` for mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub(crate) fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("path {} contains a NUL byte", p.display())))
}

/// openat2(2) with the given resolve flags; `flags` always gets O_CLOEXEC.
pub(crate) fn openat2(
    dir: BorrowedFd,
    path: &Path,
    flags: libc::c_int,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            u64::from(mode)
        } else {
            0
        },
        resolve,
    };
    loop {
        // SAFETY: valid C string, a correctly sized open_how, a live dirfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename/mount raced the lookup (RESOLVE_IN_ROOT); retry.
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn explain_open_error(path: &Path, e: io::Error) -> Error {
    let what = match e.raw_os_error() {
        Some(libc::ELOOP) => format!(
            "resolving {} inside the container root: it goes through a magic link \
             (like /proc/self/fd/N) or too many symlinks; refusing",
            path.display()
        ),
        Some(libc::EXDEV) => format!(
            "resolving {} inside the container root: it would leave the root; refusing",
            path.display()
        ),
        _ => format!("resolving {} inside the container root", path.display()),
    };
    Error::sys(what, e)
}

/// Open `path` (absolute or relative, interpreted inside `root`) with
/// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): `..` and absolute symlinks stop at
/// `root`, and magic links (`/proc/self/fd/N`, `/proc/<pid>/root`) are refused with an error.
///
/// `flags == 0` returns an `O_PATH | O_CLOEXEC` fd. Any other value is used as the open flags
/// (O_CLOEXEC is always added): pass e.g. `O_PATH | O_DIRECTORY` to require a directory, or
/// `O_RDONLY | O_CLOEXEC` to read the file.
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: libc::c_int) -> Result<OwnedFd> {
    let flags = if flags == 0 { libc::O_PATH } else { flags };
    openat2(
        root,
        path,
        flags,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| explain_open_error(path, e))
}

/// Open a single component `name` of directory `dir` without following any symlink.
pub(crate) fn open_beneath_nofollow(
    dir: BorrowedFd,
    name: &Path,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    openat2(
        dir,
        name,
        flags | libc::O_NOFOLLOW,
        0,
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    )
}

fn open_dir_in_root(root: BorrowedFd, path: &Path) -> io::Result<OwnedFd> {
    openat2(
        root,
        path,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// The components of `path` as a queue of names (`.`/root dropped, `..` kept for the kernel).
fn components(path: &Path) -> std::collections::VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

pub(crate) fn fstatat_nofollow(dir: BorrowedFd, name: &OsStr) -> io::Result<libc::stat> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: valid pointers; the kernel fills `st` on success.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialised by a successful fstatat.
    Ok(unsafe { st.assume_init() })
}

pub(crate) fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: valid fd and pointer.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialised by a successful fstat.
    Ok(unsafe { st.assume_init() })
}

pub(crate) fn is_mode(st: &libc::stat, fmt: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == fmt
}

fn readlinkat(dir: BorrowedFd, name: &OsStr) -> io::Result<PathBuf> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

/// Create missing directories of `path` inside `root`, one component at a time through fds,
/// and return an `O_PATH` fd to the final directory.
///
/// Every lookup is an openat2(RESOLVE_IN_ROOT) from `root`, and every mkdirat(2) is made in a
/// directory fd obtained that way, so nothing is ever created outside the root. A dangling
/// symlink on the way (`/evil -> /tmp/x` where the root has no `/tmp/x`) is followed by hand,
/// inside the root: its target is created under the root, as the kernel would resolve it there.
pub fn mkdir_all_in_root(root: BorrowedFd, path: &Path, mode: u32) -> Result<OwnedFd> {
    let mut queue = components(path);
    let mut prefix = PathBuf::new();
    let mut cur = open_dir_in_root(root, Path::new("."))
        .map_err(|e| Error::sys("opening the container root", e))?;
    let mut links = 0usize;
    while let Some(name) = queue.pop_front() {
        let candidate = prefix.join(&name);
        match open_dir_in_root(root, &candidate) {
            Ok(fd) => {
                cur = fd;
                prefix = candidate;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && name != ".." => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(Error::sys(
                    format!(
                        "creating directory {} inside the container root: /{} is not a directory; \
                         fix the rootfs or the mount destination",
                        path.display(),
                        candidate.display()
                    ),
                    e,
                ))
            }
            Err(e) => return Err(explain_open_error(&candidate, e)),
        }
        let cname = CString::new(name.as_bytes()).map_err(|_| {
            Error::InvalidArgument(format!("path {} contains a NUL byte", path.display()))
        })?;
        // SAFETY: live dirfd, valid C string.
        let r = unsafe { libc::mkdirat(cur.as_raw_fd(), cname.as_ptr(), mode as libc::mode_t) };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(Error::sys(
                    format!(
                        "creating directory /{} inside the container root",
                        candidate.display()
                    ),
                    e,
                ));
            }
            // It exists but did not resolve: a dangling symlink. Follow it by hand, in root.
            let st = fstatat_nofollow(cur.as_fd(), &name).map_err(|e| {
                Error::sys(
                    format!("inspecting /{} in the container root", candidate.display()),
                    e,
                )
            })?;
            if !is_mode(&st, libc::S_IFLNK) {
                return Err(Error::Container(format!(
                    "creating directory {} inside the container root: /{} changed while it was \
                     being created; retry",
                    path.display(),
                    candidate.display()
                )));
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Error::sys(
                    format!(
                        "creating directory {} inside the container root",
                        path.display()
                    ),
                    io::Error::from_raw_os_error(libc::ELOOP),
                ));
            }
            let target = readlinkat(cur.as_fd(), &name).map_err(|e| {
                Error::sys(
                    format!(
                        "reading symlink /{} in the container root",
                        candidate.display()
                    ),
                    e,
                )
            })?;
            tracing::debug!(link = %candidate.display(), target = %target.display(), "following dangling symlink inside the root");
            let mut rest = components(&target);
            rest.extend(queue.drain(..));
            queue = rest;
            if target.is_absolute() {
                prefix = PathBuf::new();
                cur = open_dir_in_root(root, Path::new("."))
                    .map_err(|e| Error::sys("opening the container root", e))?;
            }
            continue;
        }
        cur = open_dir_in_root(root, &candidate).map_err(|e| explain_open_error(&candidate, e))?;
        prefix = candidate;
    }
    Ok(cur)
}

/// Make sure a non-directory exists at `path` inside `root` (creating an empty file with
/// O_CREAT|O_EXCL|O_NOFOLLOW in its parent's fd if missing) and return an `O_PATH` fd to it.
pub(crate) fn create_file_in_root(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match open_in_root(root, &path, libc::O_PATH) {
            Ok(fd) => return Ok(fd),
            Err(Error::Sys { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::Container(format!(
                "cannot create {} inside the container root: it has no file name",
                path.display()
            )));
        };
        let parent_fd = mkdir_all_in_root(root, parent, 0o755)?;
        match openat2(
            parent_fd.as_fd(),
            Path::new(name),
            libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o644,
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(_) => continue, // reopen by the loop as O_PATH
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let target = readlinkat(parent_fd.as_fd(), name).map_err(|e| {
                    Error::sys(
                        format!("inspecting {} in the container root", path.display()),
                        e,
                    )
                })?;
                path = parent.join(target);
            }
            Err(e) => {
                return Err(Error::sys(
                    format!("creating {} inside the container root", path.display()),
                    e,
                ))
            }
        }
    }
    Err(Error::sys(
        format!("creating {} inside the container root", path.display()),
        io::Error::from_raw_os_error(libc::ELOOP),
    ))
}

/// `/proc/self/fd/<N>` for an fd: the name through which mount(2) reaches exactly that inode.
pub(crate) fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH, optionally AT_RECURSIVE).
pub(crate) fn mount_setattr(
    fd: BorrowedFd,
    recursive: bool,
    set: u64,
    clear: u64,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: empty C string, correctly sized struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn new_fd(r: libc::c_long) -> io::Result<OwnedFd> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// open_tree(OPEN_TREE_CLONE): a detached copy of the mount at `fd` (recursive if asked).
pub(crate) fn clone_tree(fd: BorrowedFd, recursive: bool) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
    // SAFETY: empty C string, live fd.
    new_fd(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// move_mount(2) the detached mount `from` onto the inode `to` refers to.
pub(crate) fn move_mount_onto(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    // SAFETY: empty C strings, live fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new detached filesystem mount (fsopen/fsconfig/fsmount) with string options.
pub(crate) fn new_detached_mount(
    fstype: &CStr,
    opts: &[(&CStr, &CStr)],
    attrs: u64,
) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    let fs = new_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    for (k, v) in opts {
        // SAFETY: valid C strings, live fd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: live fd; null key/value for CMD_CREATE.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: live fd.
    new_fd(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// statx(2) says whether `fd` is the root of a mount.
pub(crate) fn is_mount_root(fd: BorrowedFd) -> io::Result<bool> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: valid pointers.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS,
            stx.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialised by a successful statx.
    let stx = unsafe { stx.assume_init() };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if stx.stx_attributes_mask & bit == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(stx.stx_attributes & bit != 0)
}

/// The filesystem magic of the filesystem `fd` is on (compare with `libc::*_SUPER_MAGIC`).
pub(crate) fn fs_magic(fd: BorrowedFd) -> io::Result<libc::c_long> {
    let mut sfs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: valid fd and pointer.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), sfs.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialised by a successful fstatfs.
    Ok(unsafe { sfs.assume_init() }.f_type)
}

/// Mount flags (`MS_*`) currently on the mount `fd` is on that a bind remount must keep.
pub(crate) fn kept_mount_flags(fd: BorrowedFd) -> io::Result<nix::mount::MsFlags> {
    use nix::mount::MsFlags as F;
    use nix::sys::statvfs::FsFlags as S;
    let st = nix::sys::statvfs::fstatvfs(fd).map_err(io::Error::from)?;
    let f = st.flags();
    let mut out = F::empty();
    for (s, m) in [
        (S::ST_RDONLY, F::MS_RDONLY),
        (S::ST_NOSUID, F::MS_NOSUID),
        (S::ST_NODEV, F::MS_NODEV),
        (S::ST_NOEXEC, F::MS_NOEXEC),
        (S::ST_NOATIME, F::MS_NOATIME),
        (S::ST_NODIRATIME, F::MS_NODIRATIME),
        (S::ST_RELATIME, F::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    Ok(out)
}
