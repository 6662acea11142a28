//! The registry client's `BlobSink` backed by Berth's content store: every blob a pull writes
//! goes through the store's verified ingest, and is added to a lease *before* it is checked or
//! written, so a garbage collection running during the pull never deletes what it needs.

use crate::sink::{BlobSink, BlobWriter};
use berth_store::content::Ingest;
use berth_store::store::{Lease, Store};
use berth_store::Digest;
use std::sync::Arc;
use std::time::Duration;

/// A pull's view of the store, holding a lease until dropped.
pub struct StoreSink {
    store: Arc<Store>,
    lease: Lease<'static>,
}

impl StoreSink {
    /// Start a lease (`ttl` bounds how long a crashed pull can pin blobs).
    pub fn new(store: Arc<Store>, ttl: Duration) -> berth_store::Result<StoreSink> {
        let lease = store.lease_owned(ttl)?;
        Ok(StoreSink { store, lease })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The pull's lease: everything added to it survives GC until the pull is done.
    pub fn lease(&self) -> &Lease<'static> {
        &self.lease
    }

    /// Keep `d` (a blob or a chain id) alive for as long as this pull lasts.
    pub fn hold(&self, d: &Digest) -> berth_store::Result<()> {
        self.lease.add(d)
    }
}

struct StoreWriter(Ingest);

impl std::io::Write for StoreWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl BlobWriter for StoreWriter {
    fn commit(self: Box<Self>) -> berth_store::Result<()> {
        self.0.commit().map(|_| ())
    }
}

impl BlobSink for StoreSink {
    fn exists(&self, d: &Digest) -> bool {
        // Hold it first: once we say it exists, GC must not take it away.
        self.hold(d).is_ok() && self.store.content.exists(d)
    }

    fn begin(&self, d: &Digest, size: u64) -> berth_store::Result<Option<Box<dyn BlobWriter>>> {
        self.hold(d)?;
        Ok(self
            .store
            .content
            .ingest(d, Some(size))?
            .map(|i| Box::new(StoreWriter(i)) as Box<dyn BlobWriter>))
    }
}

/// The store as a push source: blobs come from the content store.
pub struct StoreSource {
    pub store: Arc<Store>,
}

impl crate::BlobSource for StoreSource {
    fn size(&self, d: &Digest) -> berth_store::Result<u64> {
        self.store.content.size(d)
    }
    fn open(&self, d: &Digest) -> berth_store::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(self.store.content.open_blob(d)?))
    }
}
