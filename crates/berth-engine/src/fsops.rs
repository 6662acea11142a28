//! File-system helpers that never follow a symlink out of the tree they work on: every path
//! inside a container root is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
//! from the root's fd, and everything below that is reached one `*at` call at a time with
//! `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`. Used to populate volumes from an image and by
//! `docker cp`, `export` and `diff`.

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps,
};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Open `path` (absolute or relative, taken relative to `root`) inside `root`: `..` and
/// symlinks, absolute or relative, are resolved as if `root` were `/`.
pub fn open_in_root(root: BorrowedFd, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    loop {
        match rfs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Open a directory by path on the host (the trusted part: a data root, a container root).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Open `name` in `dir` as a directory without following a symlink.
pub fn open_subdir(dir: BorrowedFd, name: &OsStr) -> io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// The names in a directory (without `.` and `..`), sorted so results are stable.
pub fn list(dir: BorrowedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for ent in rfs::Dir::read_from(dir)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    out.sort();
    Ok(out)
}

pub fn lstat_at(dir: BorrowedFd, name: &OsStr) -> io::Result<Stat> {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io::Error::from)
}

pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn ctx(e: io::Error, what: &str, path: &[u8]) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", String::from_utf8_lossy(path)),
    )
}

fn times_of(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Copy the contents of `src` into `dst` (an existing directory): files, directories,
/// symlinks (as links, never followed), FIFOs and (as root) device nodes, with modes, owners
/// and times; hard links inside the tree stay hard links. `dst` itself takes `src`'s mode,
/// owner and times. Sockets are skipped.
pub fn copy_tree(src: BorrowedFd, dst: BorrowedFd) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, dst, b"", &mut links)?;
    let st = rfs::fstat(src)?;
    apply_meta_fd(dst, &st)
}

fn apply_meta_fd(fd: BorrowedFd, st: &Stat) -> io::Result<()> {
    if rustix::process::geteuid().is_root() {
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw_unchecked(st.st_uid)),
            Some(rfs::Gid::from_raw_unchecked(st.st_gid)),
        )?;
    }
    rfs::fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    rfs::futimens(fd, &times_of(st))?;
    Ok(())
}

fn copy_dir_contents(
    src: BorrowedFd,
    dst: BorrowedFd,
    dst_root: BorrowedFd,
    rel: &[u8],
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> io::Result<()> {
    let privileged = rustix::process::geteuid().is_root();
    for name in list(src)? {
        let cname = OsStr::from_bytes(&name);
        let mut path = rel.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let st = lstat_at(src, cname).map_err(|e| ctx(e, "stat", &path))?;
        let ft = file_type(&st);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = links.get(&key) {
                let (parent, fname) = match first.iter().rposition(|&b| b == b'/') {
                    Some(i) => (&first[..i], &first[i + 1..]),
                    None => (&b""[..], &first[..]),
                };
                let pfd = if parent.is_empty() {
                    dst_root.try_clone_to_owned()?
                } else {
                    open_in_root(
                        dst_root,
                        &String::from_utf8_lossy(parent),
                        OFlags::RDONLY | OFlags::DIRECTORY,
                    )?
                };
                rfs::linkat(&pfd, OsStr::from_bytes(fname), dst, cname, AtFlags::empty())
                    .map_err(|e| ctx(e.into(), "hard link", &path))?;
                continue;
            }
            links.insert(key, path.clone());
        }
        match ft {
            FileType::Directory => {
                rfs::mkdirat(dst, cname, Mode::from_raw_mode(0o700))
                    .map_err(|e| ctx(e.into(), "mkdir", &path))?;
                let s = open_subdir(src, cname).map_err(|e| ctx(e, "open", &path))?;
                let d = open_subdir(dst, cname).map_err(|e| ctx(e, "open", &path))?;
                copy_dir_contents(s.as_fd(), d.as_fd(), dst_root, &path, links)?;
                apply_meta_fd(d.as_fd(), &st).map_err(|e| ctx(e, "set metadata of", &path))?;
            }
            FileType::RegularFile => {
                let s = rfs::openat(
                    src,
                    cname,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ctx(e.into(), "open", &path))?;
                let d = rfs::openat(
                    dst,
                    cname,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| ctx(e.into(), "create", &path))?;
                let mut sf = File::from(s);
                let mut df = File::from(d);
                io::copy(&mut sf, &mut df).map_err(|e| ctx(e, "copy", &path))?;
                apply_meta_fd(df.as_fd(), &st).map_err(|e| ctx(e, "set metadata of", &path))?;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(src, cname, Vec::new())
                    .map_err(|e| ctx(e.into(), "readlink", &path))?;
                rfs::symlinkat(OsStr::from_bytes(target.as_bytes()), dst, cname)
                    .map_err(|e| ctx(e.into(), "symlink", &path))?;
                link_meta(dst, cname, &st, privileged)
                    .map_err(|e| ctx(e, "set metadata of", &path))?;
            }
            FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
                if ft != FileType::Fifo && !privileged {
                    continue;
                }
                rfs::mknodat(
                    dst,
                    cname,
                    ft,
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    st.st_rdev,
                )
                .map_err(|e| ctx(e.into(), "mknod", &path))?;
                link_meta(dst, cname, &st, privileged)
                    .map_err(|e| ctx(e, "set metadata of", &path))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Owner and times of a node that must not be opened (symlink, device, FIFO).
fn link_meta(dir: BorrowedFd, name: &OsStr, st: &Stat, privileged: bool) -> io::Result<()> {
    if privileged {
        rfs::chownat(
            dir,
            name,
            Some(rfs::Uid::from_raw_unchecked(st.st_uid)),
            Some(rfs::Gid::from_raw_unchecked(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    rfs::utimensat(dir, name, &times_of(st), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Remove everything inside `dir` (not `dir` itself), never following a symlink.
pub fn clear_dir(dir: BorrowedFd) -> io::Result<()> {
    for name in list(dir)? {
        let cname = OsStr::from_bytes(&name);
        let st = lstat_at(dir, cname)?;
        if file_type(&st) == FileType::Directory {
            let sub = open_subdir(dir, cname)?;
            clear_dir(sub.as_fd())?;
            rfs::unlinkat(dir, cname, AtFlags::REMOVEDIR)?;
        } else {
            rfs::unlinkat(dir, cname, AtFlags::empty())?;
        }
    }
    Ok(())
}

/// Bytes used by the regular files (and symlinks) under `dir`, each inode counted once, like
/// Docker's `du` for volumes. Does not cross into other file systems.
pub fn disk_usage(dir: BorrowedFd) -> io::Result<u64> {
    let dev = rfs::fstat(dir)?.st_dev;
    let mut seen = std::collections::HashSet::new();
    du_inner(dir, dev, &mut seen)
}

fn du_inner(
    dir: BorrowedFd,
    dev: u64,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) -> io::Result<u64> {
    let mut total = 0u64;
    for name in list(dir)? {
        let cname = OsStr::from_bytes(&name);
        let st = match lstat_at(dir, cname) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        match file_type(&st) {
            FileType::Directory if st.st_dev == dev => {
                if let Ok(sub) = open_subdir(dir, cname) {
                    total += du_inner(sub.as_fd(), dev, seen)?;
                }
            }
            FileType::RegularFile | FileType::Symlink => total += st.st_size as u64,
            _ => {}
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copy_tree_keeps_links_modes_and_times() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let dst = t.path().join("dst");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("sub/f"), b"hello").unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hl")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).unwrap();
        std::os::unix::fs::symlink("sub", src.join("rel")).unwrap();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        rfs::utimensat(rfs::CWD, src.join("sub/f"), &old, AtFlags::empty()).unwrap();
        let s = open_dir(&src).unwrap();
        let d = open_dir(&dst).unwrap();
        copy_tree(s.as_fd(), d.as_fd()).unwrap();
        assert_eq!(std::fs::read(dst.join("sub/f")).unwrap(), b"hello");
        let m = std::fs::metadata(dst.join("sub/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.mtime(), 1_000_000);
        assert_eq!(m.nlink(), 2);
        assert_eq!(
            m.ino(),
            std::fs::metadata(dst.join("hl")).unwrap().ino(),
            "hard link kept"
        );
        assert_eq!(
            std::fs::read_link(dst.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(std::fs::symlink_metadata(dst.join("abs"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_link(dst.join("rel")).unwrap(),
            Path::new("sub")
        );
        assert_eq!(disk_usage(d.as_fd()).unwrap(), 5 + 11 + 3);
        clear_dir(d.as_fd()).unwrap();
        assert!(list(d.as_fd()).unwrap().is_empty());
    }
}
