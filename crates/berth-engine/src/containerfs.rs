//! File operations on a container's file system: `docker cp` both ways (`GET`/`HEAD`/`PUT
//! /containers/{id}/archive`), `docker export` and `docker diff`.
//!
//! A container path is resolved the way the container sees it — symlinks (absolute ones
//! relative to the container's `/`), `..` that stops at `/`, and volumes and bind mounts
//! (reached through their host directories) — but every step is an fd operation inside one
//! tree: the merged root or a mount's host directory, opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` and `O_NOFOLLOW`. A symlink in the
//! container can therefore never lead to the host's files, even one that a running container
//! swaps in while we walk.
//!
//! Tar output is written by hand (ustar headers, GNU long-name records) so names are exactly
//! Docker's (`dir/...`, or `./...` for `path/.`); extraction goes through berth-store's
//! hardened extractor in plain mode with a resolver that knows the container's mounts.

use crate::fsops;
use crate::images::{Error, Result};
use berth_store::unpack::{self, ApplyOptions, DirResolver, Resolver};
use rustix::fs::{self as rfs, FileType, OFlags, Stat};
use rustix::io::Errno;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The most symlinks followed while resolving one path (Linux's limit).
const MAX_LINKS: usize = 40;

/// `X-Docker-Container-Path-Stat`, as Docker's `PathStat`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    #[serde(rename = "Kind")]
    pub kind: u8,
}

/// Go's `os.FileMode` for a `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    match FileType::from_raw_mode(st_mode) {
        FileType::Directory => m |= 1 << 31,
        FileType::Symlink => m |= 1 << 27,
        FileType::Fifo => m |= 1 << 25,
        FileType::Socket => m |= 1 << 24,
        FileType::BlockDevice => m |= 1 << 26,
        FileType::CharacterDevice => m |= (1 << 26) | (1 << 21),
        _ => {}
    }
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

fn mtime_of(st: &Stat) -> String {
    let d = std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
    berth_time::format(d)
}

/// `path` split into its components (empty ones dropped; `.` and `..` kept).
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

fn join(canon: &str, name: &str) -> String {
    if canon == "/" {
        format!("/{name}")
    } else {
        format!("{canon}/{name}")
    }
}

/// Where a canonical container path lives: in the root or in a mount's tree.
struct Located<'a> {
    fd: BorrowedFd<'a>,
    /// Relative to `fd` ("" for the tree's top).
    rel: String,
}

/// A container's file system as the container sees it: the merged root plus its volume and
/// bind-mount directories (each an fd).
pub struct ContainerFs {
    root: OwnedFd,
    /// (cleaned destination, host directory), longest destination first.
    mounts: Vec<(String, OwnedFd)>,
    /// Nothing may be written to the root tree (`ReadonlyRootfs`).
    root_read_only: bool,
    /// Destinations of read-only mounts (cleaned).
    read_only: Vec<String>,
}

/// What a path resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The container path with every symlink and `..` resolved.
    pub canonical: String,
    pub exists: bool,
}

impl ContainerFs {
    /// `root`: the merged root; `mounts`: (destination, host path) of directory volumes and
    /// binds (file binds are skipped: the root's placeholder is what file operations see).
    pub fn open(root: &Path, mounts: &[(String, PathBuf)]) -> Result<ContainerFs> {
        let rootfd = fsops::open_dir(root)
            .map_err(|e| Error::internal(format!("container root {}: {e}", root.display())))?;
        let mut ms = Vec::new();
        for (dst, host) in mounts {
            let dst = crate::containers::mounts::clean(dst);
            if dst == "/" {
                continue;
            }
            match fsops::open_dir(host) {
                Ok(fd) => ms.push((dst, fd)),
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
                Err(e) => {
                    return Err(Error::internal(format!(
                        "mount source {} for {dst}: {e}",
                        host.display()
                    )))
                }
            }
        }
        ms.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
        Ok(ContainerFs {
            root: rootfd,
            mounts: ms,
            root_read_only: false,
            read_only: Vec::new(),
        })
    }

    /// Mark the root (`ReadonlyRootfs`) and mounts (by destination) read-only: extraction
    /// refuses to write there, as Docker does.
    pub fn set_read_only(&mut self, root: bool, mounts: Vec<String>) {
        self.root_read_only = root;
        self.read_only = mounts
            .iter()
            .map(|m| crate::containers::mounts::clean(m))
            .collect();
    }

    /// Whether the tree holding canonical path `canon` is read-only; the message says why.
    fn read_only_reason(&self, canon: &str) -> Option<&'static str> {
        let owner = self.mounts.iter().find(|(d, _)| {
            canon == d
                || canon
                    .strip_prefix(d.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        });
        match owner {
            Some((d, _)) if self.read_only.contains(d) => {
                Some("mounted volume is marked read-only")
            }
            Some(_) => None,
            None if self.root_read_only => Some("container rootfs is marked read-only"),
            None => None,
        }
    }

    fn mount_at(&self, canon: &str) -> Option<BorrowedFd<'_>> {
        self.mounts
            .iter()
            .find(|(d, _)| d == canon)
            .map(|(_, fd)| fd.as_fd())
    }

    fn locate(&self, canon: &str) -> Located<'_> {
        for (d, fd) in &self.mounts {
            if canon == d {
                return Located {
                    fd: fd.as_fd(),
                    rel: String::new(),
                };
            }
            if let Some(rest) = canon.strip_prefix(d.as_str()) {
                if let Some(rest) = rest.strip_prefix('/') {
                    return Located {
                        fd: fd.as_fd(),
                        rel: rest.to_string(),
                    };
                }
            }
        }
        Located {
            fd: self.root.as_fd(),
            rel: canon.trim_start_matches('/').to_string(),
        }
    }

    /// The directory fd holding `canon`'s entry and the entry's name; `None` for the top of a
    /// tree (the root or a mount point).
    fn parent_of(&self, canon: &str) -> io::Result<Option<(OwnedFd, String)>> {
        let loc = self.locate(canon);
        if loc.rel.is_empty() {
            return Ok(None);
        }
        let (p, name) = match loc.rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", loc.rel.as_str()),
        };
        let pfd = fsops::open_in_root(loc.fd, p, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok(Some((pfd, name.to_string())))
    }

    /// lstat of a canonical path.
    pub fn lstat(&self, canon: &str) -> io::Result<Stat> {
        match self.parent_of(canon)? {
            None => Ok(rfs::fstat(self.locate(canon).fd)?),
            Some((pfd, name)) => fsops::lstat_at(pfd.as_fd(), OsStr::new(&name)),
        }
    }

    /// Open a canonical path (never following a final symlink).
    pub fn open_path(&self, canon: &str, flags: OFlags) -> io::Result<OwnedFd> {
        match self.parent_of(canon)? {
            None => Ok(self.locate(canon).fd.try_clone_to_owned()?),
            Some((pfd, name)) => Ok(rfs::openat(
                &pfd,
                name.as_str(),
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                rfs::Mode::empty(),
            )?),
        }
    }

    fn readlink(&self, canon: &str) -> io::Result<Vec<u8>> {
        let Some((pfd, name)) = self.parent_of(canon)? else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        Ok(rfs::readlinkat(&pfd, name.as_str(), Vec::new())?.into_bytes())
    }

    /// Resolve `path` as the container would: symlinks followed (the last one only when
    /// `follow_last`), `..` stopping at `/`, mounts crossed. A missing last component is
    /// fine (`exists: false`); a missing or non-directory intermediate one is an error.
    pub fn resolve(&self, path: &str, follow_last: bool) -> io::Result<Resolved> {
        let mut todo: VecDeque<String> = components(path).map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            let last = todo.iter().all(|t| t == ".");
            let mut cand = cur.clone();
            cand.push(c);
            let canon = format!("/{}", cand.join("/"));
            if self.mount_at(&canon).is_some() {
                cur = cand;
                continue;
            }
            match self.lstat(&canon) {
                Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Symlink if !last || follow_last || todo.iter().any(|t| t == ".") => {
                        links += 1;
                        if links > MAX_LINKS {
                            return Err(io::Error::from_raw_os_error(libc::ELOOP));
                        }
                        let target = self.readlink(&canon)?;
                        let target = String::from_utf8_lossy(&target).into_owned();
                        if target.starts_with('/') {
                            cur.clear();
                        }
                        for t in components(&target).rev() {
                            todo.push_front(t.to_string());
                        }
                    }
                    FileType::Directory => cur = cand,
                    _ if last => cur = cand,
                    _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                },
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && last => {
                    return Ok(Resolved {
                        canonical: canon,
                        exists: false,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Resolved {
            canonical: format!("/{}", cur.join("/")),
            exists: true,
        })
    }

    /// Docker's stat of a path: the last component not followed (a symlink reports itself,
    /// with `linkTarget` its fully resolved target). `Ok(None)` when it does not exist.
    pub fn stat_path(&self, path: &str) -> io::Result<Option<(PathStat, String)>> {
        let follow = path.ends_with('/') || path.ends_with("/.");
        let r = match self.resolve(path, follow) {
            Ok(r) if r.exists => r,
            Ok(_) => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let st = self.lstat(&r.canonical)?;
        let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            match self.resolve(&r.canonical, true) {
                Ok(t) => t.canonical,
                Err(_) => String::from_utf8_lossy(&self.readlink(&r.canonical)?).into_owned(),
            }
        } else {
            String::new()
        };
        let cleaned = crate::containers::mounts::clean(path);
        let name = if path.ends_with("/.") {
            ".".to_string()
        } else {
            cleaned
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("/")
                .to_string()
        };
        Ok(Some((
            PathStat {
                name,
                size: st.st_size,
                mode: go_mode(st.st_mode),
                mtime: mtime_of(&st),
                link_target,
            },
            r.canonical,
        )))
    }

    /// `GET /containers/{id}/archive?path=`: a tar of `path` (a directory with its own name
    /// as the top entry, or its contents as `./...` for `path/.`). Volumes and binds inside
    /// it are included. `Ok(None)` when the path does not exist.
    pub fn archive(&self, path: &str, w: &mut dyn Write) -> Result<Option<PathStat>> {
        let Some((stat, canon)) = self
            .stat_path(path)
            .map_err(|e| Error::internal(format!("{path}: {e}")))?
        else {
            return Ok(None);
        };
        let top = if path.ends_with("/.") {
            ".".to_string()
        } else {
            stat.name.clone()
        };
        let mut t = TarWriter::new(w);
        self.write_tree(&mut t, &canon, &top, true)
            .map_err(|e| Error::internal(format!("archiving {path}: {e}")))?;
        t.finish()
            .map_err(|e| Error::internal(format!("archiving {path}: {e}")))?;
        Ok(Some(stat))
    }

    /// `GET /containers/{id}/export`: the whole root file system (without volumes or binds,
    /// as Docker's export).
    pub fn export(&self, w: &mut dyn Write) -> Result<()> {
        let mut t = TarWriter::new(w);
        let top = fsops::list(self.root.as_fd())
            .map_err(|e| Error::internal(format!("exporting: {e}")))?;
        for name in top {
            let name = String::from_utf8_lossy(&name).into_owned();
            self.write_tree(&mut t, &join("/", &name), &name, false)
                .map_err(|e| Error::internal(format!("exporting /{name}: {e}")))?;
        }
        t.finish()
            .map_err(|e| Error::internal(format!("exporting: {e}")))
    }

    fn write_tree(
        &self,
        t: &mut TarWriter<'_>,
        canon: &str,
        name: &str,
        cross_mounts: bool,
    ) -> io::Result<()> {
        // Without mounts everything is in the root tree.
        let (st, fd_for_dir): (Stat, Option<OwnedFd>) = if !cross_mounts {
            let rel = canon.trim_start_matches('/');
            let (p, n) = rel.rsplit_once('/').unwrap_or(("", rel));
            let pfd =
                fsops::open_in_root(self.root.as_fd(), p, OFlags::RDONLY | OFlags::DIRECTORY)?;
            let st = fsops::lstat_at(pfd.as_fd(), OsStr::new(n))?;
            let dfd = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                Some(fsops::open_subdir(pfd.as_fd(), OsStr::new(n))?)
            } else {
                None
            };
            (st, dfd)
        } else {
            let st = self.lstat(canon)?;
            let dfd = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                Some(self.open_path(canon, OFlags::RDONLY | OFlags::DIRECTORY)?)
            } else {
                None
            };
            (st, dfd)
        };
        match (FileType::from_raw_mode(st.st_mode), fd_for_dir) {
            (FileType::Directory, Some(dfd)) => {
                t.entry(name, &st, EntryKind::Dir, None)?;
                for child in fsops::list(dfd.as_fd())? {
                    let child = String::from_utf8_lossy(&child).into_owned();
                    let cname = format!("{name}/{child}");
                    let ccanon = join(canon, &child);
                    if cross_mounts {
                        self.write_tree(t, &ccanon, &cname, true)?;
                    } else {
                        self.write_child(t, dfd.as_fd(), &child, &ccanon, &cname)?;
                    }
                }
                Ok(())
            }
            _ => {
                let (pfd, n) = if cross_mounts {
                    match self.parent_of(canon)? {
                        Some(p) => p,
                        None => return Ok(()),
                    }
                } else {
                    let rel = canon.trim_start_matches('/');
                    let (p, n) = rel.rsplit_once('/').unwrap_or(("", rel));
                    (
                        fsops::open_in_root(
                            self.root.as_fd(),
                            p,
                            OFlags::RDONLY | OFlags::DIRECTORY,
                        )?,
                        n.to_string(),
                    )
                };
                t.leaf(pfd.as_fd(), OsStr::new(&n), name, &st)
            }
        }
    }

    /// A child of a directory in the root tree (export): walked by fd, never re-resolved.
    fn write_child(
        &self,
        t: &mut TarWriter<'_>,
        dir: BorrowedFd,
        child: &str,
        canon: &str,
        name: &str,
    ) -> io::Result<()> {
        let st = match fsops::lstat_at(dir, OsStr::new(child)) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let dfd = fsops::open_subdir(dir, OsStr::new(child))?;
            t.entry(name, &st, EntryKind::Dir, None)?;
            for c in fsops::list(dfd.as_fd())? {
                let c = String::from_utf8_lossy(&c).into_owned();
                self.write_child(t, dfd.as_fd(), &c, &join(canon, &c), &format!("{name}/{c}"))?;
            }
            return Ok(());
        }
        t.leaf(dir, OsStr::new(child), name, &st)
    }

    /// `PUT /containers/{id}/archive?path=DIR`: extract a plain tar into `DIR` (which must be
    /// an existing directory). Entries are resolved inside the container, volumes and binds
    /// included; none can leave it.
    pub fn extract(&self, dir: &str, r: impl Read, no_overwrite_dir_non_dir: bool) -> Result<()> {
        let res = self
            .resolve(dir, true)
            .map_err(|e| Error::not_found(format!("{dir}: {e}")))?;
        if !res.exists {
            return Err(Error::not_found(format!("{dir}: no such directory")));
        }
        let st = self
            .lstat(&res.canonical)
            .map_err(|e| Error::internal(format!("{dir}: {e}")))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(Error::invalid(format!(
                "extraction point is not a directory: {dir}"
            )));
        }
        if let Some(why) = self.read_only_reason(&res.canonical) {
            return Err(Error::invalid(format!("cannot copy into {dir}: {why}")));
        }
        let base = self
            .open_path(&res.canonical, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| Error::internal(format!("{dir}: {e}")))?;
        let fs = Arc::new(ContainerFsRef {
            fs: self.dup()?,
            base: res.canonical.clone(),
        });
        let opts = ApplyOptions {
            plain: true,
            no_overwrite_dir_non_dir,
            resolver: Some(Resolver(fs)),
            ..ApplyOptions::default()
        };
        unpack::extract_into(r, base, Path::new(&res.canonical), &opts).map_err(|e| {
            let kind = e.kind();
            Error::new(kind, format!("extracting into {dir}: {e}"))
        })?;
        Ok(())
    }

    fn dup(&self) -> Result<ContainerFs> {
        let d = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| Error::internal(format!("dup: {e}")))
        };
        Ok(ContainerFs {
            root: d(&self.root)?,
            mounts: self
                .mounts
                .iter()
                .map(|(p, fd)| Ok((p.clone(), d(fd)?)))
                .collect::<Result<_>>()?,
            root_read_only: self.root_read_only,
            read_only: self.read_only.clone(),
        })
    }
}

/// The extractor's view: paths relative to the extraction directory, resolved in the
/// container.
struct ContainerFsRef {
    fs: ContainerFs,
    base: String,
}

impl ContainerFsRef {
    fn full(&self, rel: &[u8]) -> String {
        let rel = String::from_utf8_lossy(rel);
        if rel.is_empty() {
            self.base.clone()
        } else {
            join(&self.base, &rel)
        }
    }
}

impl DirResolver for ContainerFsRef {
    fn open_dir(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        let r = self.fs.resolve(&self.full(rel), true)?;
        if !r.exists {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        if self.fs.read_only_reason(&r.canonical).is_some() {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        self.fs
            .open_path(&r.canonical, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    fn is_mount_point(&self, rel: &[u8]) -> bool {
        // The entry itself is not followed: a symlink named like a mount point is not one.
        let full = self.full(rel);
        let (parent, name) = full.rsplit_once('/').unwrap_or(("", &full));
        match self
            .fs
            .resolve(if parent.is_empty() { "/" } else { parent }, true)
        {
            Ok(p) => self.fs.mount_at(&join(&p.canonical, name)).is_some(),
            Err(_) => false,
        }
    }
}

enum EntryKind {
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
}

/// A minimal tar writer: ustar headers, GNU long-name/long-link records for long names.
struct TarWriter<'w> {
    w: &'w mut dyn Write,
    /// (dev, ino) → the first name written, for hard links.
    links: HashMap<(u64, u64), String>,
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    let b = s.as_bytes();
    if b.len() < field.len() {
        field[..b.len()].copy_from_slice(b);
        field[b.len()] = 0;
    } else {
        // Too large for octal: GNU base-256.
        field.fill(0);
        field[0] = 0x80;
        let bytes = v.to_be_bytes();
        let n = field.len().min(8);
        let len = field.len();
        field[len - n..].copy_from_slice(&bytes[8 - n..]);
    }
}

impl<'w> TarWriter<'w> {
    fn new(w: &'w mut dyn Write) -> Self {
        TarWriter {
            w,
            links: HashMap::new(),
        }
    }

    fn header(&mut self, name: &str, link: &str, st: &Stat, typ: u8, size: u64) -> io::Result<()> {
        if name.len() > 100 {
            self.long(b'L', name)?;
        }
        if link.len() > 100 {
            self.long(b'K', link)?;
        }
        let mut h = [0u8; 512];
        let nb = name.as_bytes();
        h[..nb.len().min(100)].copy_from_slice(&nb[..nb.len().min(100)]);
        octal(&mut h[100..108], (st.st_mode & 0o7777) as u64);
        octal(&mut h[108..116], st.st_uid as u64);
        octal(&mut h[116..124], st.st_gid as u64);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], st.st_mtime.max(0) as u64);
        h[156] = typ;
        let lb = link.as_bytes();
        h[157..157 + lb.len().min(100)].copy_from_slice(&lb[..lb.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        if typ == b'3' || typ == b'4' {
            octal(&mut h[329..337], rfs::major(st.st_rdev) as u64);
            octal(&mut h[337..345], rfs::minor(st.st_rdev) as u64);
        }
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.w.write_all(&h)
    }

    fn long(&mut self, typ: u8, value: &str) -> io::Result<()> {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        let mut h = [0u8; 512];
        h[..13].copy_from_slice(b"././@LongLink");
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 0);
        h[156] = typ;
        h[257..265].copy_from_slice(b"ustar  \0");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data)?;
        self.pad(data.len() as u64)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (512 - size % 512) % 512;
        self.w.write_all(&vec![0u8; rem as usize])
    }

    fn entry(
        &mut self,
        name: &str,
        st: &Stat,
        kind: EntryKind,
        link: Option<&str>,
    ) -> io::Result<()> {
        let (typ, name) = match kind {
            EntryKind::Dir => (b'5', format!("{name}/")),
            EntryKind::Symlink => (b'2', name.to_string()),
            EntryKind::HardLink => (b'1', name.to_string()),
            EntryKind::Char => (b'3', name.to_string()),
            EntryKind::Block => (b'4', name.to_string()),
            EntryKind::Fifo => (b'6', name.to_string()),
        };
        self.header(&name, link.unwrap_or(""), st, typ, 0)
    }

    /// A non-directory at `dir`/`n`, written as `name`.
    fn leaf(&mut self, dir: BorrowedFd, n: &OsStr, name: &str, st: &Stat) -> io::Result<()> {
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                return self.entry(name, st, EntryKind::HardLink, Some(&first));
            }
            self.links.insert(key, name.to_string());
        }
        match ft {
            FileType::RegularFile => {
                let fd = match rfs::openat(
                    dir,
                    n,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    rfs::Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let f = File::from(fd);
                let st = rfs::fstat(&f)?;
                let size = st.st_size.max(0) as u64;
                self.header(name, "", &st, b'0', size)?;
                // Exactly `size` bytes even if the file changes while we read it.
                let mut r = f.take(size).chain(io::repeat(0)).take(size);
                io::copy(&mut r, &mut self.w)?;
                self.pad(size)
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(dir, n, Vec::new())?;
                let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
                self.entry(name, st, EntryKind::Symlink, Some(&target))
            }
            FileType::CharacterDevice => self.entry(name, st, EntryKind::Char, None),
            FileType::BlockDevice => self.entry(name, st, EntryKind::Block, None),
            FileType::Fifo => self.entry(name, st, EntryKind::Fifo, None),
            // Sockets (and anything else) are not archived, as in Docker.
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.w.write_all(&[0u8; 1024])?;
        self.w.flush()
    }
}

/// `GET /containers/{id}/changes`: the container's changes from its overlay upper dir, as
/// Docker reports them: a whiteout (char 0:0) is Deleted (2); an entry that exists in a lower
/// layer is Modified (0) — a directory only when its mode, size or mtime differ; anything else
/// Added (1); an opaque directory is Deleted (its lower content is gone) and its children
/// Added. The parent of an added or deleted path is reported Modified once. Sorted by path.
///
/// `ignore`: paths the engine itself adds to every container (mount points: `/etc/hosts`,
/// `/etc/hostname`, `/etc/resolv.conf`, volume and bind destinations), which Docker keeps
/// in its init layer: not reported when added, and a directory holding one is reported
/// Modified only for a mode change or another child's change.
pub fn changes(upper: &Path, lowers: &[PathBuf], ignore: &[String]) -> Result<Vec<Change>> {
    let ufd = fsops::open_dir(upper)
        .map_err(|e| Error::internal(format!("container changes {}: {e}", upper.display())))?;
    let lfds: Vec<OwnedFd> = lowers
        .iter()
        .filter_map(|l| fsops::open_dir(l).ok())
        .collect();
    let mut out = Vec::new();
    let mut reported = std::collections::HashSet::new();
    let ignore: Vec<String> = ignore
        .iter()
        .map(|p| crate::containers::mounts::clean(p))
        .collect();
    walk_changes(ufd.as_fd(), "", &lfds, &ignore, &mut out, &mut reported)
        .map_err(|e| Error::internal(format!("container changes: {e}")))?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn lower_stat(lowers: &[OwnedFd], path: &str) -> Option<Stat> {
    let rel = path.trim_start_matches('/');
    let (p, n) = rel.rsplit_once('/').unwrap_or(("", rel));
    for l in lowers {
        let Ok(pfd) = fsops::open_in_root(l.as_fd(), p, OFlags::RDONLY | OFlags::DIRECTORY) else {
            continue;
        };
        if let Ok(st) = fsops::lstat_at(pfd.as_fd(), OsStr::new(n)) {
            return Some(st);
        }
    }
    None
}

fn walk_changes(
    dir: BorrowedFd,
    path: &str,
    lowers: &[OwnedFd],
    ignore: &[String],
    out: &mut Vec<Change>,
    reported: &mut std::collections::HashSet<String>,
) -> io::Result<()> {
    for name in fsops::list(dir)? {
        let n = OsStr::from_bytes(&name);
        let p = format!("{path}/{}", String::from_utf8_lossy(&name));
        let st = fsops::lstat_at(dir, n)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let whiteout = ft == FileType::CharacterDevice && st.st_rdev == 0;
        let mut descend = None;
        let opaque = if ft == FileType::Directory {
            let fd = fsops::open_subdir(dir, n)?;
            let mut buf = [0u8; 4];
            let o = matches!(rfs::fgetxattr(&fd, "trusted.overlay.opaque", &mut buf), Ok(1) if buf[0] == b'y');
            descend = Some(fd);
            o
        } else {
            false
        };
        let kind = if whiteout || opaque {
            Some(2)
        } else {
            match lower_stat(lowers, &p) {
                None if ignore.contains(&p) => continue,
                None => Some(1),
                Some(lst) => {
                    let holds_ignored = ignore.iter().any(|i| {
                        i.len() > p.len() && i.starts_with(&p) && i.as_bytes()[p.len()] == b'/'
                    });
                    let same_dir = ft == FileType::Directory
                        && FileType::from_raw_mode(lst.st_mode) == FileType::Directory
                        && lst.st_mode == st.st_mode
                        && (holds_ignored
                            || (lst.st_size == st.st_size
                                && lst.st_mtime == st.st_mtime
                                && lst.st_mtime_nsec == st.st_mtime_nsec));
                    (!same_dir).then_some(0)
                }
            }
        };
        if let Some(k) = kind {
            // The parent of an added or deleted path, unless already reported.
            if k != 0 && !path.is_empty() && reported.insert(path.to_string()) {
                out.push(Change {
                    path: path.to_string(),
                    kind: 0,
                });
            }
            if reported.insert(p.clone()) {
                out.push(Change {
                    path: p.clone(),
                    kind: k,
                });
            }
        }
        if let (Some(fd), false) = (descend, whiteout) {
            walk_changes(fd.as_fd(), &p, lowers, ignore, out, reported)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    /// Entries of a tar as (name, type, link or content).
    fn read_tar(data: &[u8]) -> Vec<(String, char, String)> {
        let mut a = tar::Archive::new(data);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let typ = e.header().entry_type().as_byte() as char;
            let extra = match typ {
                '2' | '1' => String::from_utf8_lossy(&e.link_name_bytes().unwrap()).into_owned(),
                _ => {
                    let mut s = String::new();
                    let _ = e.read_to_string(&mut s);
                    s
                }
            };
            out.push((name, typ, extra));
        }
        out
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    struct Fixture {
        _t: tempfile::TempDir,
        root: PathBuf,
        vol: PathBuf,
        host: PathBuf,
    }

    fn fixture() -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let vol = t.path().join("vol");
        let host = t.path().join("host");
        for d in [&root, &vol, &host] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), b"ctr\n").unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(vol.join("v.txt"), b"in volume").unwrap();
        std::fs::write(host.join("secret"), b"host secret").unwrap();
        // Symlinks that would escape if followed on the host.
        symlink("/", root.join("rootlink")).unwrap();
        symlink(&host, root.join("hostlink")).unwrap();
        symlink("../../../../../..", root.join("dotdot")).unwrap();
        symlink("/data", root.join("datalink")).unwrap();
        Fixture {
            _t: t,
            root,
            vol,
            host,
        }
    }

    fn fs(f: &Fixture) -> ContainerFs {
        ContainerFs::open(&f.root, &[("/data".into(), f.vol.clone())]).unwrap()
    }

    #[test]
    fn resolve_stays_inside() {
        let f = fixture();
        let c = fs(&f);
        let r = c.resolve("/rootlink/etc/hostname", true).unwrap();
        assert_eq!(r.canonical, "/etc/hostname");
        let r = c.resolve("/dotdot/etc", true).unwrap();
        assert_eq!(r.canonical, "/etc");
        // The host path inside the symlink is taken inside the container: it isn't there.
        assert!(c.resolve("/hostlink/secret", true).is_err());
        let r = c.resolve("/datalink/v.txt", true).unwrap();
        assert_eq!(r.canonical, "/data/v.txt");
        assert!(r.exists);
        assert!(!c.resolve("/etc/nope", true).unwrap().exists);
    }

    #[test]
    fn stat_and_archive() {
        let f = fixture();
        let c = fs(&f);
        let (st, _) = c.stat_path("/etc").unwrap().unwrap();
        assert_eq!(st.name, "etc");
        assert_eq!(st.mode & (1 << 31), 1 << 31);
        let (st, _) = c.stat_path("/datalink").unwrap().unwrap();
        assert_eq!(st.mode & (1 << 27), 1 << 27);
        assert_eq!(st.link_target, "/data");
        assert!(c.stat_path("/nope").unwrap().is_none());

        let mut out = Vec::new();
        c.archive("/etc", &mut out).unwrap().unwrap();
        assert_eq!(
            read_tar(&out),
            [
                ("etc/".to_string(), '5', String::new()),
                ("etc/hostname".to_string(), '0', "ctr\n".to_string())
            ]
        );
        // Contents only, with ./ names; the volume's content comes from the volume.
        let mut out = Vec::new();
        c.archive("/data/.", &mut out).unwrap().unwrap();
        assert_eq!(
            read_tar(&out),
            [
                ("./".to_string(), '5', String::new()),
                ("./v.txt".to_string(), '0', "in volume".to_string())
            ]
        );
        // A symlink is archived as itself.
        let mut out = Vec::new();
        c.archive("/hostlink", &mut out).unwrap().unwrap();
        let e = read_tar(&out);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1, '2');
        // Following one that points at the host stays in the container (not found).
        assert!(c.archive("/hostlink/", &mut Vec::new()).unwrap().is_none());
        // A long name survives.
        let long = "x".repeat(150);
        std::fs::write(f.root.join("etc").join(&long), b"l").unwrap();
        let mut out = Vec::new();
        c.archive("/etc", &mut out).unwrap().unwrap();
        assert!(read_tar(&out)
            .iter()
            .any(|(n, _, d)| n == &format!("etc/{long}") && d == "l"));
    }

    #[test]
    fn export_has_everything_but_mounts() {
        let f = fixture();
        std::fs::write(f.root.join("data/under-mount"), b"x").unwrap();
        let c = fs(&f);
        let mut out = Vec::new();
        c.export(&mut out).unwrap();
        let names: Vec<String> = read_tar(&out).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&"etc/hostname".to_string()), "{names:?}");
        assert!(names.contains(&"data/under-mount".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("v.txt")), "{names:?}");
        assert!(names.contains(&"rootlink".to_string()));
    }

    #[test]
    fn extract_cannot_escape() {
        let f = fixture();
        let c = fs(&f);
        // Through a container symlink to /: lands in the container root.
        c.extract("/rootlink", &tar_of(&[("a.txt", b"A")])[..], false)
            .unwrap();
        assert_eq!(std::fs::read(f.root.join("a.txt")).unwrap(), b"A");
        // Through a symlink to a host path: not a directory in the container.
        let e = c
            .extract("/hostlink", &tar_of(&[("secret", b"pwned")])[..], false)
            .unwrap_err();
        assert_eq!(e.kind(), berth_store::ErrorKind::NotFound, "{e}");
        assert_eq!(
            std::fs::read(f.host.join("secret")).unwrap(),
            b"host secret"
        );
        // Entries through symlinks inside the container stay inside: a link to a host path
        // is dangling in the container (an error, nothing written), `..` stops at `/`.
        assert!(c
            .extract("/", &tar_of(&[("hostlink/secret", b"pwned")])[..], false)
            .is_err());
        assert_eq!(
            std::fs::read(f.host.join("secret")).unwrap(),
            b"host secret"
        );
        c.extract("/", &tar_of(&[("dotdot/etc/x", b"X")])[..], false)
            .unwrap();
        assert_eq!(std::fs::read(f.root.join("etc/x")).unwrap(), b"X");
        // Into a volume: the volume's directory gets it, through the mount or a link to it.
        c.extract("/data", &tar_of(&[("new.txt", b"N")])[..], false)
            .unwrap();
        assert_eq!(std::fs::read(f.vol.join("new.txt")).unwrap(), b"N");
        c.extract(
            "/",
            &tar_of(&[("datalink/n2", b"2"), ("data/n3", b"3")])[..],
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(f.vol.join("n2")).unwrap(), b"2");
        assert_eq!(std::fs::read(f.vol.join("n3")).unwrap(), b"3");
        // A mount point can't be replaced by a file.
        assert!(c
            .extract("/", &tar_of(&[("data", b"x")])[..], false)
            .is_err());
        // .wh. names are plain files here.
        c.extract("/etc", &tar_of(&[(".wh.hostname", b"w")])[..], false)
            .unwrap();
        assert_eq!(
            std::fs::read(f.root.join("etc/.wh.hostname")).unwrap(),
            b"w"
        );
        // noOverwriteDirNonDir.
        let e = c
            .extract("/", &tar_of(&[("etc", b"x")])[..], true)
            .unwrap_err();
        assert!(e.message.contains("cannot overwrite directory"), "{e}");
        assert!(f.root.join("etc/hostname").exists());
        // A hostile archive: a symlink to / then a file through it, `..`, a hard link whose
        // target goes through a symlink to the host.
        let unique = format!("berth-containerfs-{}.txt", std::process::id());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "evil", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("evil/{unique}"), &b"e"[..])
            .unwrap();
        let evil = b.into_inner().unwrap();
        c.extract("/etc", &evil[..], false).unwrap();
        assert!(
            !Path::new("/").join(&unique).exists(),
            "wrote to the host's /"
        );
        assert_eq!(std::fs::read(f.root.join(&unique)).unwrap(), b"e");
        let mut raw = tar_of(&[("x", b"x")]);
        // tar-rs refuses to write `..`: patch the name in the header (and its checksum).
        raw[..4].copy_from_slice(b"../x");
        let mut hdr = tar::Header::new_old();
        hdr.as_mut_bytes().copy_from_slice(&raw[..512]);
        hdr.set_cksum();
        raw[..512].copy_from_slice(hdr.as_bytes());
        assert!(c.extract("/etc", &raw[..], false).is_err());
        assert!(!f.root.join("x").exists());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o644);
        b.append_link(&mut h, "hl", "hostlink/secret").unwrap();
        let hl = b.into_inner().unwrap();
        assert!(c.extract("/", &hl[..], false).is_err());
        assert_eq!(std::fs::metadata(f.host.join("secret")).unwrap().nlink(), 1);
        // Read-only mounts and roots refuse writes, also for entries that lead into them.
        let mut ro = fs(&f);
        ro.set_read_only(false, vec!["/data/".into()]);
        let e = ro
            .extract("/data", &tar_of(&[("ro.txt", b"r")])[..], false)
            .unwrap_err();
        assert!(
            e.message.contains("mounted volume is marked read-only"),
            "{e}"
        );
        assert!(ro
            .extract("/", &tar_of(&[("data/ro.txt", b"r")])[..], false)
            .is_err());
        assert!(!f.vol.join("ro.txt").exists());
        ro.set_read_only(true, vec![]);
        let e = ro
            .extract("/etc", &tar_of(&[("ro.txt", b"r")])[..], false)
            .unwrap_err();
        assert!(
            e.message.contains("container rootfs is marked read-only"),
            "{e}"
        );
        // Not a directory.
        let e = c
            .extract("/etc/hostname", &tar_of(&[("y", b"y")])[..], false)
            .unwrap_err();
        assert!(e.message.contains("not a directory"), "{e}");
    }

    #[test]
    fn changes_like_docker() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        for d in ["etc", "usr/bin", "var"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), b"root").unwrap();
        std::fs::write(lower.join("usr/bin/tool"), b"t").unwrap();
        let old = rfs::Timestamps {
            last_access: rfs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: rfs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        for d in ["etc", "usr/bin", "usr", "var"] {
            rfs::utimensat(rfs::CWD, lower.join(d), &old, rfs::AtFlags::empty()).unwrap();
        }
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), b"root2").unwrap();
        std::fs::create_dir_all(upper.join("tmp/new")).unwrap();
        std::fs::write(upper.join("tmp/new/f"), b"f").unwrap();
        let root = rustix::process::geteuid().is_root();
        if root {
            std::fs::create_dir_all(upper.join("usr/bin")).unwrap();
            rfs::mknodat(
                rfs::CWD,
                upper.join("usr/bin/tool"),
                FileType::CharacterDevice,
                rfs::Mode::empty(),
                rfs::makedev(0, 0),
            )
            .unwrap();
        }
        // Engine-made mount points are not changes; /var holds one only.
        std::fs::create_dir_all(upper.join("var")).unwrap();
        std::fs::write(upper.join("var/hosts"), b"").unwrap();
        std::fs::create_dir_all(upper.join("vol/mnt")).unwrap();
        let ignore = ["/var/hosts".to_string(), "/vol/mnt".to_string()];
        let c = changes(&upper, &[lower], &ignore).unwrap();
        let got: Vec<(&str, u8)> = c.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        let mut want = vec![
            ("/etc", 0),
            ("/etc/passwd", 0),
            ("/tmp", 1),
            ("/tmp/new", 1),
            ("/tmp/new/f", 1),
            // Not an engine mount point itself: /vol is the container's.
            ("/vol", 1),
        ];
        if root {
            want.extend([("/usr", 0), ("/usr/bin", 0), ("/usr/bin/tool", 2)]);
        }
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_mode(0o100644), 0o644);
    }
}
