//! The content-addressed blob store.
//!
//! Layout under the content root (`<data>/content`):
//!
//! ```text
//! blobs/sha256/<hex>      verified blobs, mode 0444, never written in place
//! ingest/<hex>.lock       per-digest writer lock (flock), removed by whoever holds it
//! ingest/<hex>.partial    the data being written for <hex>; only the lock holder touches it
//! ```
//!
//! A blob reaches `blobs/` only through [`Ingest::commit`]: the temp file is fsynced, its size
//! and sha256 checked against what the caller expected, chmodded 0444, renamed into place and
//! the directory fsynced. A crash at any point leaves at most a `.partial` (and a `.lock`) in
//! `ingest/`, which [`ContentStore::open`] removes once no live writer holds its lock.
//!
//! Writers of the same digest are serialised by `flock(2)` on `ingest/<hex>.lock` (which works
//! between threads as well as processes because every writer opens its own file
//! description). The lock file is unlinked by its holder before it is released, so a waiter
//! that wakes up on an unlinked lock notices (inode mismatch) and takes a fresh one.

use crate::digest::Hasher;
use crate::{Digest, Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tracing::{debug, warn};

const LOCK_SUFFIX: &str = ".lock";
const PARTIAL_SUFFIX: &str = ".partial";

/// The blob store rooted at `<data>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Open (creating if needed) the store at `root`, and remove the leftovers of writers that
    /// died mid-ingest.
    pub fn open(root: &Path) -> Result<ContentStore> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for dir in [&blobs, &ingest] {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let store = ContentStore {
            root: root.to_path_buf(),
            blobs,
            ingest,
        };
        store.clean_stale_ingests()?;
        Ok(store)
    }

    /// The content root this store was opened at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `d` lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        fs::symlink_metadata(self.path(d))
            .map(|m| m.is_file())
            .unwrap_or(false)
    }

    /// The size in bytes of the blob `d`.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        match fs::symlink_metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(d)),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Open the blob `d` for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    not_found(d)
                } else {
                    Error::io(p, e)
                }
            })
    }

    /// Read a small blob (a manifest, an index, a config) whole; a blob larger than `max`
    /// bytes is refused with [`Error::Limit`] without being read.
    pub fn read_limited(&self, d: &Digest, max: u64) -> Result<Vec<u8>> {
        let f = self.open_blob(d)?;
        let p = self.path(d);
        let len = f.metadata().map_err(|e| Error::io(&p, e))?.len();
        let too_big = |n: u64| {
            Error::Limit(format!(
                "blob {d} is {n} bytes, over the {max}-byte limit for documents read into memory"
            ))
        };
        if len > max {
            return Err(too_big(len));
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        f.take(max.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&p, e))?;
        if buf.len() as u64 > max {
            return Err(too_big(buf.len() as u64));
        }
        Ok(buf)
    }

    /// Store `data`. With `expected`, the data must hash to it (else [`Error::Verification`]
    /// and nothing is stored). Returns the digest; storing a blob that exists is a no-op.
    pub fn put(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let actual = Digest::of(data);
        if let Some(exp) = expected {
            if *exp != actual {
                return Err(Error::Verification(format!(
                    "content does not match its digest: expected {exp}, got {actual} ({} bytes)",
                    data.len()
                )));
            }
        }
        match self.ingest(&actual, Some(data.len() as u64))? {
            None => Ok(actual),
            Some(mut ing) => {
                ing.write_all(data)
                    .map_err(|e| Error::io(ing.partial.clone(), e))?;
                ing.commit()
            }
        }
    }

    /// Store a blob whose digest is not known in advance (a layer being made): `write` fills
    /// an unnamed temporary file (`O_TMPFILE` in `ingest/`, so a crash leaves nothing behind)
    /// while it is hashed; then, under the digest's writer lock, the file is fsynced, made
    /// 0444 and linked into `blobs/`. Returns the digest and size. The digest is computed over
    /// exactly the bytes stored, so the blob is verified by construction. If the blob already
    /// exists the new copy is dropped.
    pub fn put_stream(
        &self,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(Digest, u64)> {
        self.put_stream_protected(write, |_| Ok(()))
    }

    /// [`ContentStore::put_stream`], calling `protect(digest)` (e.g. adding the digest to a
    /// lease) while the digest's writer lock is held, before the blob becomes visible — so a
    /// garbage collection never sees the new blob unprotected.
    pub fn put_stream_protected(
        &self,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
        protect: impl FnOnce(&Digest) -> Result<()>,
    ) -> Result<(Digest, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(&self.ingest)
            .map_err(|e| Error::io(&self.ingest, e))?;
        let mut hw = HashingWriter {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hasher: Hasher::new(),
        };
        write(&mut hw).map_err(|e| Error::io(&self.ingest, e))?;
        let HashingWriter { inner, hasher } = hw;
        let file = inner
            .into_inner()
            .map_err(|e| Error::io(&self.ingest, e.into_error()))?;
        let size = hasher.len();
        let digest = hasher.finish();
        let _lock = LockFile::acquire(&self.lock_path(&digest), true)?;
        protect(&digest)?;
        if self.exists(&digest) {
            return Ok((digest, size));
        }
        file.sync_all().map_err(|e| Error::io(&self.ingest, e))?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(|e| Error::io(&self.ingest, e))?;
        let dest = self.path(&digest);
        let src = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let dst = std::ffi::CString::new(dest.as_os_str().as_encoded_bytes())
            .map_err(|e| Error::Internal(e.to_string()))?;
        // SAFETY: both paths are valid NUL-terminated strings.
        let r = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                src.as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(Error::io(dest, e));
            }
        }
        fsync_dir(&self.blobs)?;
        debug!(digest = %digest, size, "blob committed from a stream");
        Ok((digest, size))
    }

    /// Begin writing the blob `expected`. `Ok(None)` means it already exists. Otherwise the
    /// caller gets an exclusive [`Ingest`]; a concurrent writer of the same digest (thread or
    /// process) blocks here until the first one commits (then gets `Ok(None)`) or aborts (then
    /// gets the ingest). `size`, when known, is enforced on write and on commit.
    pub fn ingest(&self, expected: &Digest, size: Option<u64>) -> Result<Option<Ingest>> {
        if self.exists(expected) {
            return Ok(None);
        }
        let lock = match LockFile::acquire(&self.lock_path(expected), true)? {
            Some(l) => l,
            None => {
                return Err(Error::Internal(format!(
                    "blocking lock for {expected} returned would-block"
                )))
            }
        };
        if self.exists(expected) {
            debug!(digest = %expected, "blob committed by another writer while we waited");
            return Ok(None);
        }
        let partial = self
            .ingest
            .join(format!("{}{PARTIAL_SUFFIX}", expected.hex()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&partial)
            .map_err(|e| Error::io(&partial, e))?;
        debug!(digest = %expected, ?size, "ingest started");
        Ok(Some(Ingest {
            file: Some(file),
            partial,
            blobs: self.blobs.clone(),
            expected: *expected,
            size,
            hasher: Some(Hasher::new()),
            lock: Some(lock),
        }))
    }

    /// Remove the blob `d`. Waits for a writer of `d` to finish first. Removing a blob that
    /// does not exist is not an error.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let _lock = LockFile::acquire(&self.lock_path(d), true)?;
        self.remove_blob_file(d).map(|_| ())
    }

    /// For GC: remove `d` unless someone is writing it right now. Returns the bytes freed, or
    /// `None` if the blob was busy or already gone.
    pub(crate) fn delete_unless_busy(&self, d: &Digest) -> Result<Option<u64>> {
        match LockFile::acquire(&self.lock_path(d), false)? {
            None => Ok(None),
            Some(_lock) => self.remove_blob_file(d),
        }
    }

    fn remove_blob_file(&self, d: &Digest) -> Result<Option<u64>> {
        let p = self.path(d);
        let size = match fs::symlink_metadata(&p) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(p, e)),
        };
        match fs::remove_file(&p) {
            Ok(()) => {
                debug!(digest = %d, size, "blob removed");
                Ok(Some(size))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Every blob in the store. Files whose names are not digests are skipped with a warning.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(|e| Error::io(&self.blobs, e))? {
            let entry = entry.map_err(|e| Error::io(&self.blobs, e))?;
            let name = entry.file_name();
            let parsed = name
                .to_str()
                .and_then(|n| Digest::parse(&format!("sha256:{n}")).ok());
            match parsed {
                Some(d) => out.push(d),
                None => warn!(
                    path = %entry.path().display(),
                    "ignoring a file in the blob directory whose name is not a sha256 digest; remove it by hand"
                ),
            }
        }
        out.sort();
        Ok(out)
    }

    /// Digests someone (this or another process) is writing right now, i.e. whose ingest lock
    /// is held. GC treats them as roots.
    pub fn ingests_in_progress(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for (d, lock_path) in self.ingest_entries(LOCK_SUFFIX)? {
            // Probe with a shared lock on our own descriptor; never unlink from here.
            let f = match File::open(&lock_path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(lock_path, e)),
            };
            match flock(&f, libc::LOCK_SH | libc::LOCK_NB) {
                Ok(true) => {} // nobody holds it; dropped (unlocked) on close
                Ok(false) => out.push(d),
                Err(e) => return Err(Error::io(lock_path, e)),
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// `(digest, path)` of the files in `ingest/` ending with `suffix`.
    fn ingest_entries(&self, suffix: &str) -> Result<Vec<(Digest, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.ingest).map_err(|e| Error::io(&self.ingest, e))? {
            let entry = entry.map_err(|e| Error::io(&self.ingest, e))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
                continue;
            };
            if let Ok(d) = Digest::parse(&format!("sha256:{hex}")) {
                out.push((d, entry.path()));
            }
        }
        Ok(out)
    }

    /// Remove `.partial` files and `.lock` files no live writer holds (left by a crash).
    fn clean_stale_ingests(&self) -> Result<()> {
        let mut digests: Vec<Digest> = self
            .ingest_entries(PARTIAL_SUFFIX)?
            .into_iter()
            .chain(self.ingest_entries(LOCK_SUFFIX)?)
            .map(|(d, _)| d)
            .collect();
        digests.sort();
        digests.dedup();
        for d in digests {
            // Non-blocking: a live writer keeps its files.
            if let Some(_lock) = LockFile::acquire(&self.lock_path(&d), false)? {
                let partial = self.ingest.join(format!("{}{PARTIAL_SUFFIX}", d.hex()));
                match fs::remove_file(&partial) {
                    Ok(()) => warn!(digest = %d, "removed an interrupted ingest left by a crash"),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(partial, e)),
                }
            }
        }
        Ok(())
    }

    fn lock_path(&self, d: &Digest) -> PathBuf {
        self.ingest.join(format!("{}{LOCK_SUFFIX}", d.hex()))
    }
}

fn not_found(d: &Digest) -> Error {
    Error::NotFound(format!(
        "blob {d} is not in the content store; pull or load the image again"
    ))
}

/// Hashes what passes through to `inner`.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An exclusive writer of one blob. Dropping it without [`Ingest::commit`] aborts.
pub struct Ingest {
    file: Option<File>,
    partial: PathBuf,
    blobs: PathBuf,
    expected: Digest,
    size: Option<u64>,
    hasher: Option<Hasher>,
    lock: Option<LockFile>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("expected", &self.expected)
            .field("size", &self.size)
            .field("written", &self.written())
            .finish()
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (Some(file), Some(hasher)) = (self.file.as_mut(), self.hasher.as_mut()) else {
            return Err(io::Error::other("ingest already finished"));
        };
        if let Some(size) = self.size {
            if hasher.len().saturating_add(buf.len() as u64) > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is longer than its declared {size} bytes",
                        self.expected
                    ),
                ));
            }
        }
        let n = file.write(buf)?;
        hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Ingest {
    /// The digest this ingest must produce.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.as_ref().map_or(0, |h| h.len())
    }

    /// Verify and publish the blob: fsync, check size and digest, chmod 0444, rename into
    /// `blobs/`, fsync the directory. On a mismatch the data is discarded and
    /// [`Error::Verification`] names expected and actual digest and size.
    pub fn commit(mut self) -> Result<Digest> {
        let (Some(file), Some(hasher)) = (self.file.take(), self.hasher.take()) else {
            return Err(Error::Internal("ingest committed twice".into()));
        };
        let written = hasher.len();
        let actual = hasher.finish();
        let exp = self.expected;
        if let Some(size) = self.size {
            if written != size {
                return Err(Error::Verification(format!(
                    "blob {exp}: expected {size} bytes, got {written} (digest {actual}); the \
                     download was truncated or the source is corrupt, pull again"
                )));
            }
        }
        if actual != exp {
            return Err(Error::Verification(format!(
                "blob {exp}: content hashes to {actual} ({written} bytes); the source served \
                 wrong data, the blob was discarded"
            )));
        }
        file.sync_all().map_err(|e| Error::io(&self.partial, e))?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(|e| Error::io(&self.partial, e))?;
        drop(file);
        let dest = self.blobs.join(exp.hex());
        fs::rename(&self.partial, &dest).map_err(|e| Error::io(&dest, e))?;
        fsync_dir(&self.blobs)?;
        debug!(digest = %exp, size = written, "blob committed");
        // Drop releases the lock; the partial no longer exists.
        Ok(exp)
    }

    /// Discard what was written and release the digest for another writer.
    pub fn abort(self) {
        drop(self)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Not committed (or commit failed before the rename): remove the data.
            if let Err(e) = fs::remove_file(&self.partial) {
                if e.kind() != io::ErrorKind::NotFound {
                    warn!(path = %self.partial.display(), error = %e, "could not remove aborted ingest");
                }
            }
            debug!(digest = %self.expected, "ingest aborted");
        } else if self.hasher.is_none() {
            // commit() took the file; if it failed verification the partial is still there.
            let _ = fs::remove_file(&self.partial);
        }
        self.lock.take();
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// `flock` on `f`; `Ok(false)` when non-blocking and someone else holds it.
fn flock(f: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a valid, owned descriptor.
        let r = unsafe { libc::flock(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// An exclusive flock on `ingest/<hex>.lock`. Dropping it unlinks the file, then unlocks.
#[derive(Debug)]
struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Take the lock. `Ok(None)` only when `blocking` is false and someone holds it.
    fn acquire(path: &Path, blocking: bool) -> Result<Option<LockFile>> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            let op = if blocking {
                libc::LOCK_EX
            } else {
                libc::LOCK_EX | libc::LOCK_NB
            };
            if !flock(&file, op).map_err(|e| Error::io(path, e))? {
                return Ok(None);
            }
            // The previous holder may have unlinked the file we locked: then retry.
            let ours = file.metadata().map_err(|e| Error::io(path, e))?;
            match fs::symlink_metadata(path) {
                Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {
                    return Ok(Some(LockFile {
                        file,
                        path: path.to_path_buf(),
                    }))
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so nobody can lock this inode and believe it
        // is current; waiters on it re-open.
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!(path = %self.path.display(), error = %e, "could not remove ingest lock file");
            }
        }
        let _ = &self.file; // closed (and unlocked) when dropped
    }
}
