//! Where `COPY`/`ADD` read from: the build context, kept as the tar the client sent (spooled
//! to one file and indexed — never extracted, so a context of many small files costs one file
//! write instead of one file creation each), or an image's root file system (by fd).
//!
//! Both are a [`Tree`]: paths are resolved inside the tree, symlinks followed only within it
//! (an absolute or `..`-climbing link target is taken relative to the tree's root, as
//! `openat2(RESOLVE_IN_ROOT)` does for the fd tree), so no source can lead outside.

use crate::fsops;
use rustix::fs::{FileType, OFlags};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Symlinks followed while resolving one path before giving up (Linux's limit).
const MAX_LINKS: usize = 40;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
    /// Devices, FIFOs, sockets: never copied.
    Other,
}

/// A path in a tree, as `lstat` would describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    pub size: u64,
    pub mtime: i64,
}

/// A tree copy sources are read from.
pub trait Tree {
    /// Resolves `rel` inside the tree (every symlink followed, within the tree) to its
    /// canonical path (no leading `/`; `""` is the root) and node.
    fn resolve(&self, rel: &str) -> io::Result<(String, Node)>;
    /// The entries of the directory at canonical path `dir`, sorted by name, not followed.
    fn children(&self, dir: &str) -> io::Result<Vec<(String, Node)>>;
    /// The content of the regular file at canonical path `path`.
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>>;
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Splits a path into its components, `.` and empty ones dropped.
fn components(p: &str) -> impl DoubleEndedIterator<Item = &str> {
    p.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Resolution shared by both trees: `lstat(path)` gives a node (not following).
fn resolve_with(rel: &str, lstat: &dyn Fn(&str) -> io::Result<Node>) -> io::Result<(String, Node)> {
    let mut todo: VecDeque<String> = components(rel).map(str::to_string).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    let mut node = lstat("")?;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            node = lstat(&cur.join("/"))?;
            continue;
        }
        let mut cand = cur.clone();
        cand.push(c);
        let path = cand.join("/");
        let n = lstat(&path)?;
        match &n.kind {
            Kind::Symlink(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                if target.starts_with('/') {
                    cur.clear();
                }
                for t in components(target).rev() {
                    todo.push_front(t.to_string());
                }
                node = lstat(&cur.join("/"))?;
            }
            Kind::Dir => {
                cur = cand;
                node = n;
            }
            _ if todo.is_empty() => {
                cur = cand;
                node = n;
            }
            _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }
    Ok((cur.join("/"), node))
}

// ---------------------------------------------------------------- a directory, by fd

/// A directory tree on the host (an image's mounted root), reached by fd.
pub struct FdTree {
    root: OwnedFd,
}

impl FdTree {
    pub fn open(path: &Path) -> io::Result<FdTree> {
        Ok(FdTree {
            root: fsops::open_dir(path)?,
        })
    }

    fn lstat(&self, path: &str) -> io::Result<Node> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None if path.is_empty() => {
                let st = rustix::fs::fstat(&self.root)?;
                return Ok(node_of(&st, None));
            }
            None => ("", path),
        };
        // The parent is a canonical directory path (no symlinks), opened without following.
        let dfd = fsops::open_in_root(
            self.root.as_fd(),
            if dir.is_empty() { "." } else { dir },
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        )?;
        let st = fsops::lstat_at(dfd.as_fd(), OsStr::new(name))?;
        let target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            let t = rustix::fs::readlinkat(&dfd, name, Vec::new())?;
            Some(String::from_utf8_lossy(t.as_bytes()).into_owned())
        } else {
            None
        };
        Ok(node_of(&st, target))
    }
}

fn node_of(st: &rustix::fs::Stat, link: Option<String>) -> Node {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink(link.unwrap_or_default()),
        _ => Kind::Other,
    };
    Node {
        kind,
        mode: st.st_mode & 0o7777,
        size: st.st_size.max(0) as u64,
        mtime: st.st_mtime,
    }
}

impl Tree for FdTree {
    fn resolve(&self, rel: &str) -> io::Result<(String, Node)> {
        resolve_with(rel, &|p| self.lstat(p))
    }

    fn children(&self, dir: &str) -> io::Result<Vec<(String, Node)>> {
        let dfd = fsops::open_in_root(
            self.root.as_fd(),
            if dir.is_empty() { "." } else { dir },
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        )?;
        let mut out = Vec::new();
        for name in fsops::list(dfd.as_fd())? {
            let n = OsStr::from_bytes(&name);
            let st = match fsops::lstat_at(dfd.as_fd(), n) {
                Ok(st) => st,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                let t = rustix::fs::readlinkat(&dfd, n, Vec::new())?;
                Some(String::from_utf8_lossy(t.as_bytes()).into_owned())
            } else {
                None
            };
            out.push((
                String::from_utf8_lossy(&name).into_owned(),
                node_of(&st, target),
            ));
        }
        Ok(out)
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let fd = fsops::open_in_root(self.root.as_fd(), path, OFlags::RDONLY | OFlags::NOFOLLOW)?;
        Ok(Box::new(File::from(fd)))
    }
}

// ---------------------------------------------------------------- the context, as a tar

#[derive(Debug, Clone)]
enum Data {
    /// Bytes at this offset of the spooled tar.
    At {
        offset: u64,
    },
    /// A hard link: the content of that (canonical) path.
    Link(String),
    /// A file outside the tar (an `ADD <url>` download).
    Host(PathBuf),
    None,
}

#[derive(Debug, Clone)]
struct Entry {
    node: Node,
    data: Data,
}

/// The build context as the client sent it: a tar spooled to one file, with an index of its
/// entries. Extracted to a directory only if a `RUN --mount=type=bind` needs one.
pub struct ContextTar {
    spool: File,
    spool_path: PathBuf,
    entries: HashMap<String, Entry>,
    children: HashMap<String, BTreeMap<String, ()>>,
    /// Files added after the fact (`ADD <url>` downloads): reachable by path, never listed.
    extra: RefCell<HashMap<String, Entry>>,
}

/// Copies what is read through to a writer (the spool).
struct Tee<R, W> {
    r: R,
    w: W,
    pos: u64,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Most entries a context may hold.
const MAX_ENTRIES: usize = 5_000_000;

/// A context entry's path, cleaned: no leading `/` or `./`, no `..` (refused).
fn clean_entry(p: &str) -> io::Result<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in components(p) {
        if c == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the build context holds {p:?}, which climbs out of it with \"..\""),
            ));
        }
        out.push(c);
    }
    Ok(out.join("/"))
}

impl ContextTar {
    /// Reads the (uncompressed) tar `r` to its end, writing it to `spool` and indexing it.
    pub fn spool(r: impl Read, spool: &Path) -> io::Result<ContextTar> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(spool)?;
        let w = io::BufWriter::with_capacity(1 << 20, file.try_clone()?);
        let mut tee = Tee { r, w, pos: 0 };
        let mut entries: HashMap<String, Entry> = HashMap::new();
        let mut children: HashMap<String, BTreeMap<String, ()>> = HashMap::new();
        children.insert(String::new(), BTreeMap::new());
        {
            let mut a = tar::Archive::new(&mut tee);
            for e in a.entries()? {
                let e = e?;
                if entries.len() >= MAX_ENTRIES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the build context has more than {MAX_ENTRIES} entries"),
                    ));
                }
                let raw = e.path()?.to_string_lossy().into_owned();
                let path = clean_entry(&raw)?;
                if path.is_empty() {
                    continue;
                }
                let h = e.header();
                let mode = h.mode().unwrap_or(0o644) & 0o7777;
                let mtime = h.mtime().unwrap_or(0) as i64;
                let size = e.size();
                let (kind, data) = match h.entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => (
                        Kind::File,
                        Data::At {
                            offset: e.raw_file_position(),
                        },
                    ),
                    tar::EntryType::Directory => (Kind::Dir, Data::None),
                    tar::EntryType::Symlink => {
                        let t = e
                            .link_name()?
                            .map(|l| l.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        (Kind::Symlink(t), Data::None)
                    }
                    tar::EntryType::Link => {
                        let t = e
                            .link_name()?
                            .map(|l| l.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        (Kind::File, Data::Link(clean_entry(&t)?))
                    }
                    _ => (Kind::Other, Data::None),
                };
                // Parents that the tar does not list are directories.
                let mut parent = String::new();
                for c in path.split('/') {
                    let child = join(&parent, c);
                    children
                        .entry(parent.clone())
                        .or_default()
                        .insert(c.to_string(), ());
                    if child != path && !entries.contains_key(&child) {
                        entries.insert(
                            child.clone(),
                            Entry {
                                node: Node {
                                    kind: Kind::Dir,
                                    mode: 0o755,
                                    size: 0,
                                    mtime: 0,
                                },
                                data: Data::None,
                            },
                        );
                    }
                    parent = child;
                }
                if kind == Kind::Dir {
                    children.entry(path.clone()).or_default();
                }
                let size = if kind == Kind::File { size } else { 0 };
                entries.insert(
                    path,
                    Entry {
                        node: Node {
                            kind,
                            mode,
                            size,
                            mtime,
                        },
                        data,
                    },
                );
            }
        }
        // Whatever follows the end-of-archive marker is kept too (offsets stay valid).
        io::copy(&mut tee, &mut io::sink())?;
        tee.w.flush()?;
        Ok(ContextTar {
            spool: file,
            spool_path: spool.to_path_buf(),
            entries,
            children,
            extra: RefCell::new(HashMap::new()),
        })
    }

    fn entry(&self, path: &str) -> Option<Entry> {
        if path.is_empty() {
            return Some(Entry {
                node: Node {
                    kind: Kind::Dir,
                    mode: 0o755,
                    size: 0,
                    mtime: 0,
                },
                data: Data::None,
            });
        }
        self.entries
            .get(path)
            .cloned()
            .or_else(|| self.extra.borrow().get(path).cloned())
    }

    /// Makes a host file part of the tree at `path` (reachable by that path only).
    pub fn add_host_file(&self, path: &str, host: PathBuf) -> io::Result<()> {
        let size = std::fs::metadata(&host)?.len();
        let mut extra = self.extra.borrow_mut();
        let mut parent = String::new();
        for c in components(path)
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            parent = join(&parent, c);
            if !self.entries.contains_key(&parent) {
                extra.entry(parent.clone()).or_insert(Entry {
                    node: Node {
                        kind: Kind::Dir,
                        mode: 0o755,
                        size: 0,
                        mtime: 0,
                    },
                    data: Data::None,
                });
            }
        }
        extra.insert(
            path.to_string(),
            Entry {
                node: Node {
                    kind: Kind::File,
                    mode: 0o600,
                    size,
                    mtime: 0,
                },
                data: Data::Host(host),
            },
        );
        Ok(())
    }

    /// Extracts the context into `dir` (for a `RUN --mount=type=bind` of it), with the
    /// store's hardened extractor.
    pub fn extract_to(&self, dir: &Path) -> io::Result<()> {
        let f = File::open(&self.spool_path)?;
        let opts = berth_store::unpack::ApplyOptions {
            plain: true,
            ..Default::default()
        };
        berth_store::unpack::apply_layer_with(
            io::BufReader::with_capacity(1 << 20, f),
            berth_store::unpack::Compression::None,
            dir,
            &opts,
        )
        .map(|_| ())
        .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Number of indexed entries (directories included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads `len` bytes at `offset` of a file (positioned reads: many readers may share it).
struct At<'a> {
    f: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.f.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spooled build context is shorter than its index",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Tree for ContextTar {
    fn resolve(&self, rel: &str) -> io::Result<(String, Node)> {
        resolve_with(rel, &|p| {
            self.entry(p)
                .map(|e| e.node)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
        })
    }

    fn children(&self, dir: &str) -> io::Result<Vec<(String, Node)>> {
        let Some(names) = self.children.get(dir) else {
            return match self.entry(dir) {
                Some(e) if e.node.kind == Kind::Dir => Ok(Vec::new()),
                Some(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            };
        };
        Ok(names
            .keys()
            .filter_map(|n| {
                self.entries
                    .get(&join(dir, n))
                    .map(|e| (n.clone(), e.node.clone()))
            })
            .collect())
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let mut p = path.to_string();
        for _ in 0..MAX_LINKS {
            let e = self
                .entry(&p)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            if e.node.kind != Kind::File {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{path} is not a regular file"),
                ));
            }
            match e.data {
                Data::At { offset } => {
                    return Ok(Box::new(At {
                        f: &self.spool,
                        pos: offset,
                        end: offset + e.node.size,
                    }))
                }
                Data::Host(h) => return Ok(Box::new(File::open(h)?)),
                Data::Link(t) => p = t,
                Data::None => return Ok(Box::new(io::empty())),
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, typ, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*typ);
            h.set_mode(if *typ == tar::EntryType::Directory {
                0o755
            } else {
                0o640
            });
            match typ {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_size(0);
                    b.append_link(&mut h, path, body).unwrap();
                }
                _ => {
                    h.set_size(body.len() as u64);
                    b.append_data(&mut h, path, body.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn read(t: &ContextTar, p: &str) -> String {
        let (c, _) = t.resolve(p).unwrap();
        let mut s = String::new();
        t.open(&c).unwrap().read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn index_resolve_and_read() {
        use tar::EntryType::*;
        let data = tar_of(&[
            ("Dockerfile", Regular, "FROM scratch\n"),
            ("app/main.py", Regular, "print(1)\n"),
            ("app/lib", Directory, ""),
            ("link-to-app", Symlink, "app"),
            ("escape", Symlink, "../../../../etc"),
            ("abs", Symlink, "/app/main.py"),
            ("hard", Link, "app/main.py"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let t = ContextTar::spool(&data[..], &dir.path().join("ctx.tar")).unwrap();
        assert_eq!(read(&t, "Dockerfile"), "FROM scratch\n");
        assert_eq!(read(&t, "./link-to-app/main.py"), "print(1)\n");
        assert_eq!(read(&t, "abs"), "print(1)\n");
        assert_eq!(read(&t, "hard"), "print(1)\n");
        // A link climbing out resolves inside the context, where /etc does not exist.
        assert_eq!(
            t.resolve("escape").unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        let names: Vec<String> = t.children("").unwrap().into_iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            ["Dockerfile", "abs", "app", "escape", "hard", "link-to-app"]
        );
        let app: Vec<String> = t
            .children("app")
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(app, ["lib", "main.py"]);
        assert_eq!(t.resolve("app").unwrap().1.kind, Kind::Dir);
        let (_, n) = t.resolve("app/main.py").unwrap();
        assert_eq!((n.mode, n.size), (0o640, 9));
    }

    #[test]
    fn entries_climbing_out_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        // The tar crate refuses `..` in append_data; write the name by hand.
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../x.txt\0");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = ContextTar::spool(&data[..], &dir.path().join("ctx.tar"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("climbs out"), "{err}");
    }
}
