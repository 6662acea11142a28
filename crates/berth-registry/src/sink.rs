//! Where pulled blobs go. The store implements [`BlobSink`]; [`DirSink`] is a small
//! directory-backed implementation (temp file → fsync → verify → rename).

use berth_store::digest::Hasher;
use berth_store::{Digest, Error as StoreError};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub trait BlobSink: Send + Sync {
    fn exists(&self, d: &Digest) -> bool;
    /// None: already present (or another pull just stored it). Called from a blocking context
    /// (spawn_blocking).
    fn begin(&self, d: &Digest, size: u64) -> berth_store::Result<Option<Box<dyn BlobWriter>>>;
    /// True if `BlobWriter::commit` itself checks the size and digest (and fails with
    /// `berth_store::Error::Verification` on a mismatch): the client then does not hash the
    /// stream a second time.
    fn verifies(&self) -> bool {
        false
    }
    /// The image manifest is resolved and its config blob is stored; layers come next.
    /// Must not block (called on the async runtime).
    fn manifest_ready(&self, _manifest: &[u8], _media_type: &str) {}
    /// A blob of the manifest is stored (downloaded now or already present). Must not block.
    fn blob_ready(&self, _d: &Digest) {}
}

/// A blob being written. Dropping it without `commit` discards the data.
pub trait BlobWriter: std::io::Write + Send {
    fn commit(self: Box<Self>) -> berth_store::Result<()>;
}

/// Blobs stored as `<root>/blobs/sha256/<hex>`, written through `<root>/ingest/`.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
}

static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

impl DirSink {
    pub fn new(root: impl Into<PathBuf>) -> berth_store::Result<DirSink> {
        let root = root.into();
        for d in [root.join("blobs/sha256"), root.join("ingest")] {
            std::fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        Ok(DirSink { root })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Read a stored blob.
    pub fn read(&self, d: &Digest) -> berth_store::Result<Vec<u8>> {
        let p = self.blob_path(d);
        std::fs::read(&p).map_err(|e| StoreError::io(&p, e))
    }
}

impl BlobSink for DirSink {
    fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    fn begin(&self, d: &Digest, size: u64) -> berth_store::Result<Option<Box<dyn BlobWriter>>> {
        if self.exists(d) {
            return Ok(None);
        }
        let seq = INGEST_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp =
            self.root
                .join("ingest")
                .join(format!("{}.{}.{seq}", d.hex(), std::process::id()));
        let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        Ok(Some(Box::new(DirWriter {
            file: Some(file),
            tmp,
            dest: self.blob_path(d),
            digest: *d,
            size,
            hasher: Hasher::new(),
            committed: false,
        })))
    }
}

struct DirWriter {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    digest: Digest,
    size: u64,
    hasher: Hasher,
    committed: bool,
}

impl Write for DirWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("blob writer already closed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter for DirWriter {
    fn commit(mut self: Box<Self>) -> berth_store::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| StoreError::Internal("blob writer committed twice".into()))?;
        file.sync_all().map_err(|e| StoreError::io(&self.tmp, e))?;
        drop(file);
        let got = std::mem::take(&mut self.hasher);
        let (n, d) = (got.len(), got.finish());
        if d != self.digest || n != self.size {
            return Err(StoreError::Verification(format!(
                "blob {}: wrote {n} bytes with digest {d}, expected {} bytes; data discarded",
                self.digest, self.size
            )));
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| StoreError::io(&self.dest, e))?;
        self.committed = true;
        if let Some(dir) = self.dest.parent() {
            if let Ok(f) = File::open(dir) {
                let _ = f.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_before_rename_and_discards_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink::new(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        let mut w = sink.begin(&d, 5).unwrap().unwrap();
        w.write_all(b"hellx").unwrap();
        assert!(w.commit().is_err());
        assert!(!sink.exists(&d));
        let w = sink.begin(&d, 5).unwrap().unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        let mut w = sink.begin(&d, 5).unwrap().unwrap();
        w.write_all(b"hello").unwrap();
        w.commit().unwrap();
        assert_eq!(sink.read(&d).unwrap(), b"hello");
        assert!(sink.begin(&d, 5).unwrap().is_none());
    }
}
