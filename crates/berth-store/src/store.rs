//! The store as a whole: blobs, metadata and the snapshot directory under one data root, and
//! leases that keep in-flight work safe from GC.
//!
//! ```text
//! <root>/content/       ContentStore (blobs/sha256, ingest)
//! <root>/metadata.db    Db (SQLite, WAL)
//! <root>/snapshots/     unpacked layers, one directory per chain id hex (owned by snapshot.rs)
//! ```
//!
//! Protocol for writers (pulls, loads, builds): take a [`Lease`], add every digest and chain id
//! you are going to rely on to it *before* checking whether it exists or starting to write it,
//! record the image (and tag it), then drop the lease. GC holds the database lock for its whole
//! run, so a resource added to a lease is either seen by that GC run or added after it ended.

use crate::content::ContentStore;
use crate::meta::Db;
use crate::{Digest, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::warn;

/// Blobs, metadata and snapshots under one data root.
#[derive(Debug)]
pub struct Store {
    pub content: ContentStore,
    pub db: Mutex<Db>,
    root: PathBuf,
}

impl Store {
    /// Open (creating if needed) the store under `data_root`.
    pub fn open(data_root: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_root).map_err(|e| Error::io(data_root, e))?;
        let content = ContentStore::open(&data_root.join("content"))?;
        let db = Db::open(&data_root.join("metadata.db"))?;
        let snapshots = data_root.join("snapshots");
        std::fs::create_dir_all(&snapshots).map_err(|e| Error::io(&snapshots, e))?;
        Ok(Store {
            content,
            db: Mutex::new(db),
            root: data_root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where unpacked layers live (`<root>/snapshots`).
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Lock the metadata database. A poisoned lock (a panic while holding it) is an error,
    /// not a panic: SQLite transactions roll back on drop, so the data itself is consistent.
    pub fn db(&self) -> Result<MutexGuard<'_, Db>> {
        self.db
            .lock()
            .map_err(|_| Error::Internal("the metadata database lock is poisoned (an earlier operation panicked); restart berth".into()))
    }

    /// Take a lease that expires after `ttl` unless dropped earlier. Everything added to it
    /// survives GC while it lives.
    pub fn lease(&self, ttl: Duration) -> Result<Lease<'_>> {
        let id = self.new_lease_id(ttl)?;
        Ok(Lease {
            store: StoreRef::Borrowed(self),
            id,
        })
    }

    /// The same, for work that outlives a borrow (an async pull): the lease keeps the store.
    pub fn lease_owned(self: &Arc<Store>, ttl: Duration) -> Result<Lease<'static>> {
        let id = self.new_lease_id(ttl)?;
        Ok(Lease {
            store: StoreRef::Owned(Arc::clone(self)),
            id,
        })
    }

    fn new_lease_id(&self, ttl: Duration) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!(
            "lease-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.db()?.lease_create(&id, ttl)?;
        Ok(id)
    }
}

#[derive(Debug)]
enum StoreRef<'a> {
    Borrowed(&'a Store),
    Owned(Arc<Store>),
}

impl std::ops::Deref for StoreRef<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        match self {
            StoreRef::Borrowed(s) => s,
            StoreRef::Owned(s) => s,
        }
    }
}

/// A lease on store resources; deleted when dropped.
#[derive(Debug)]
pub struct Lease<'a> {
    store: StoreRef<'a>,
    id: String,
}

impl Lease<'_> {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Protect a blob digest or a layer chain id. Call this before checking for or writing it.
    pub fn add(&self, resource: &Digest) -> Result<()> {
        self.store.db()?.lease_add(&self.id, resource)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let res = self.store.db().and_then(|mut db| db.lease_delete(&self.id));
        if let Err(e) = res {
            warn!(lease = %self.id, error = %e, "could not delete lease; it will expire on its own");
        }
    }
}
