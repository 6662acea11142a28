//! Unpacked layers as overlay snapshots, keyed by chain ID.
//!
//! Layout under the snapshots root (`<data>/snapshots`):
//! - `<chain-id hex>/fs` — a committed snapshot: one layer's extracted content, with overlay
//!   whiteouts, used as an overlayfs lower dir;
//! - `tmp/<unique>/fs` — work in progress; committed with one `renameat2(RENAME_NOREPLACE)` of
//!   `tmp/<unique>` onto `<chain-id hex>`, so a snapshot is either wholly there or absent.
//!   Whatever is left in `tmp/` after a crash is removed by [`Snapshots::open`].

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::unpack::{apply_layer_parallel, apply_layer_with, ApplyOptions, Compression, Limits};
use crate::{Digest, Error, Result};

/// Chain IDs as the OCI image spec defines them: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))` over the digest strings.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => *d,
            Some(prev) => {
                let mut h = Sha256::new();
                h.update(prev.to_string().as_bytes());
                h.update(b" ");
                h.update(d.to_string().as_bytes());
                Digest::from_bytes(h.finalize().into())
            }
        };
        out.push(next);
    }
    out
}

/// The snapshots directory.
#[derive(Debug)]
pub struct Snapshots {
    root: PathBuf,
    tmp: PathBuf,
    durable: bool,
}

/// A temporary snapshot being filled. Dropped without [`Snapshots::commit`], it is removed.
#[derive(Debug)]
pub struct Prepared {
    top: PathBuf,
    fs: PathBuf,
    committed: bool,
    /// `tmp/<name>.lock`, flocked while this unpack lives, so [`Snapshots::open`] in another
    /// process (or thread) never removes work in progress.
    lock: Option<(PathBuf, fs::File)>,
}

/// Lock `<dir>.lock` without waiting; `None` if someone holds it.
fn try_lock(lock_path: &Path) -> Option<fs::File> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(f)
}

impl Prepared {
    /// The (empty, at first) directory to extract into.
    pub fn dir(&self) -> &Path {
        &self.fs
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = remove_all(&self.top) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %self.top.display(), error = %e, "removing a discarded snapshot");
                }
            }
        }
        if let Some((path, _file)) = self.lock.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// `remove_dir_all` that also copes with read-only directories an unprivileged unpack left
/// (mode 0555 dirs from the layer): on EACCES, real directories (never symlinks) under
/// `path` get u+rwx and removal is retried.
fn remove_all(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_dirs_writable(path);
            fs::remove_dir_all(path)
        }
        r => r,
    }
}

fn make_dirs_writable(path: &Path) {
    let Ok(m) = fs::symlink_metadata(path) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    let _ = rfs::chmod(path, Mode::from_raw_mode((m.mode() & 0o7777) | 0o700));
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            make_dirs_writable(&e.path());
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl Snapshots {
    /// Opens (creating if needed) the snapshots root and removes leftovers in `tmp/`.
    pub fn open(root: &Path) -> Result<Snapshots> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for ent in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
            let ent = ent.map_err(|e| Error::io(&tmp, e))?;
            let p = ent.path();
            if p.extension().is_some_and(|e| e == "lock") {
                continue;
            }
            // Someone is unpacking into it right now: leave it.
            let lock_path = p.with_extension("lock");
            let _held = match try_lock(&lock_path) {
                Some(f) => f,
                None => continue,
            };
            let _ = fs::remove_file(&lock_path);
            let ft = ent.file_type().map_err(|e| Error::io(&p, e))?;
            let r = if ft.is_dir() {
                remove_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.map_err(|e| Error::io(&p, e))?;
            tracing::debug!(leftover = %p.display(), "removed an unfinished snapshot");
        }
        Ok(Snapshots {
            root: root.to_path_buf(),
            tmp,
            durable: false,
        })
    }

    /// Sync each snapshot's filesystem before committing it (power-loss durability of layer
    /// contents, at the cost of flushing everything dirty on that filesystem).
    pub fn durable(mut self, on: bool) -> Snapshots {
        self.durable = on;
        self
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.fs_path(chain_id).is_dir()
    }

    /// `<root>/<chain-id hex>/fs`.
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex()).join("fs")
    }

    /// A fresh temporary snapshot directory.
    pub fn prepare(&self) -> Result<Prepared> {
        let top = self.tmp.join(unique_name());
        let lock_path = top.with_extension("lock");
        let lock = try_lock(&lock_path).ok_or_else(|| {
            Error::Internal(format!(
                "cannot lock {} for a new snapshot",
                lock_path.display()
            ))
        })?;
        fs::create_dir(&top).map_err(|e| Error::io(&top, e))?;
        let fs_dir = top.join("fs");
        let p = Prepared {
            top,
            fs: fs_dir,
            committed: false,
            lock: Some((lock_path, lock)),
        };
        rfs::mkdir(&p.fs, Mode::from_raw_mode(0o755)).map_err(|e| Error::io(&p.fs, e.into()))?;
        Ok(p)
    }

    /// Renames the snapshot into place (after syncing its filesystem, if [`Snapshots::durable`]).
    /// If a snapshot with this chain ID already exists (a concurrent unpack won), ours is
    /// discarded and this succeeds.
    ///
    /// The rename makes a snapshot all-or-nothing across a crash of the process; surviving a
    /// power loss with every file's data needs the sync, which flushes the whole filesystem —
    /// including other programs' writes — so it is off by default, as in Docker and containerd.
    pub fn commit(&self, mut p: Prepared, chain_id: &Digest) -> Result<()> {
        if self.durable {
            let dir = rfs::open(
                &p.top,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io(&p.top, e.into()))?;
            rfs::syncfs(&dir).map_err(|e| Error::io(&p.top, e.into()))?;
        }
        let target = self.root.join(chain_id.hex());
        match rfs::renameat_with(rfs::CWD, &p.top, rfs::CWD, &target, RenameFlags::NOREPLACE) {
            Ok(()) => {
                p.committed = true;
                let root = rfs::open(
                    &self.root,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::io(&self.root, e.into()))?;
                rfs::fsync(&root).map_err(|e| Error::io(&self.root, e.into()))?;
                Ok(())
            }
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => {
                tracing::debug!(chain_id = %chain_id, "snapshot already committed; discarding ours");
                Ok(()) // `p` is dropped and removed
            }
            Err(e) => Err(Error::io(&target, e.into())),
        }
    }

    /// Removes a committed snapshot (atomically moved into tmp/ first, then deleted).
    pub fn remove(&self, chain_id: &Digest) -> Result<()> {
        let target = self.root.join(chain_id.hex());
        let doomed = self.tmp.join(unique_name());
        match fs::rename(&target, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("snapshot {chain_id} not found")))
            }
            Err(e) => return Err(Error::io(&target, e)),
        }
        remove_all(&doomed).map_err(|e| Error::io(&doomed, e))
    }

    /// Chain IDs of the committed snapshots.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let ent = ent.map_err(|e| Error::io(&self.root, e))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                if ent.path().join("fs").is_dir() {
                    out.push(d);
                }
            }
        }
        out.sort_by_key(|d| d.hex());
        Ok(out)
    }

    /// The overlay lowerdir list (top layer first) for an image whose chain IDs are `chain`
    /// (bottom layer first). Every snapshot must exist.
    pub fn lowerdirs(&self, chain: &[Digest]) -> Result<Vec<PathBuf>> {
        chain
            .iter()
            .rev()
            .map(|c| {
                if self.exists(c) {
                    Ok(self.fs_path(c))
                } else {
                    Err(Error::NotFound(format!("snapshot {c} not found")))
                }
            })
            .collect()
    }
}

/// Puts "layer <i> (diff id <d>)" in front of an error's message.
fn in_layer(e: Error, i: usize, diff_id: &Digest) -> Error {
    let ctx = format!("layer {i} (diff id {diff_id})");
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{ctx}: {m}")),
        Error::Limit(m) => Error::Limit(format!("{ctx}: {m}")),
        Error::Verification(m) => Error::Verification(format!("{ctx}: {m}")),
        Error::Internal(m) => Error::Internal(format!("{ctx}: {m}")),
        Error::NotFound(m) => Error::NotFound(format!("{ctx}: {m}")),
        Error::Io { path, source } => Error::Io {
            path: PathBuf::from(format!("{ctx}: {}", path.display())),
            source,
        },
        other => other,
    }
}

/// Unpacks an image's layers in order into snapshots, skipping chains that already exist.
/// `open_layer(i)` gives the compressed stream of layer `i`. Each layer's computed diff ID must
/// equal `layers[i].1` (from the image config), else [`Error::Verification`] naming the layer,
/// and the layer is not committed. Returns the chain IDs.
pub fn unpack_layers(
    snaps: &Snapshots,
    layers: &[(Compression, Digest)],
    mut open_layer: impl FnMut(usize) -> Result<Box<dyn Read + Send>>,
    limits: &Limits,
) -> Result<Vec<Digest>> {
    let diff_ids: Vec<Digest> = layers.iter().map(|(_, d)| *d).collect();
    let chain = chain_ids(&diff_ids);
    for (i, ((comp, diff_id), chain_id)) in layers.iter().zip(&chain).enumerate() {
        if snaps.exists(chain_id) {
            continue;
        }
        let r = open_layer(i).map_err(|e| in_layer(e, i, diff_id))?;
        unpack_layer(snaps, i, *comp, diff_id, chain_id, r, limits)?;
    }
    Ok(chain)
}

/// Unpack layer `i` (its compressed stream `r`) into the snapshot `chain_id`, checking its
/// diff id. Layers are independent directories, so different layers of one image may be
/// unpacked at the same time, in any order (a pull starts each as soon as its blob is in).
pub fn unpack_layer(
    snaps: &Snapshots,
    i: usize,
    comp: Compression,
    diff_id: &Digest,
    chain_id: &Digest,
    r: Box<dyn Read + Send>,
    limits: &Limits,
) -> Result<()> {
    if snaps.exists(chain_id) {
        return Ok(());
    }
    let opts = ApplyOptions {
        limits: limits.clone(),
        ..ApplyOptions::default()
    };
    let p = snaps.prepare()?;
    // Decompression on a helper thread pays off for compressed layers only.
    let applied = match comp {
        Compression::None => apply_layer_with(r, comp, p.dir(), &opts),
        _ => apply_layer_parallel(r, comp, p.dir(), &opts),
    }
    .map_err(|e| in_layer(e, i, diff_id))?;
    if applied.diff_id != *diff_id {
        return Err(Error::Verification(format!(
            "layer {i}: uncompressed content has diff id {}, but the image config says {diff_id}",
            applied.diff_id
        )));
    }
    snaps.commit(p, chain_id)
}
