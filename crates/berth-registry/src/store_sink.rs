//! The registry client's `BlobSink` backed by Berth's content store: every blob a pull writes
//! goes through the store's verified ingest, and is added to a lease *before* it is checked or
//! written, so a garbage collection running during the pull never deletes what it needs.

use crate::sink::{BlobSink, BlobWriter};
use berth_store::content::Ingest;
use berth_store::image;
use berth_store::snapshot::{chain_ids, unpack_layer, Snapshots};
use berth_store::store::{Lease, Store};
use berth_store::unpack::{Compression, Limits};
use berth_store::Digest;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A pull's view of the store, holding a lease until dropped.
pub struct StoreSink {
    store: Arc<Store>,
    lease: Lease<'static>,
    limits: Limits,
    eager: OnceLock<Eager>,
    progress: Option<tokio::sync::mpsc::UnboundedSender<crate::Progress>>,
}

/// Layers unpacked while the rest of the image still downloads: as soon as a layer's blob is
/// in the store, a worker unpacks it into its snapshot (layers are independent directories,
/// so order does not matter). Purely an optimisation: the pull's final, sequential unpack
/// pass skips what is done and does (and reports) anything that failed here.
struct Eager {
    /// (blob digest, compression, diff id, chain id) per layer.
    layers: Vec<(Digest, Compression, Digest, Digest)>,
    queue: Mutex<Option<std::sync::mpsc::Sender<usize>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Unpack workers per pull (each also decompresses on a helper thread).
const EAGER_WORKERS: usize = 2;

impl StoreSink {
    /// Start a lease (`ttl` bounds how long a crashed pull can pin blobs).
    pub fn new(store: Arc<Store>, ttl: Duration) -> berth_store::Result<StoreSink> {
        Self::with_limits(store, ttl, Limits::default())
    }

    pub fn with_limits(
        store: Arc<Store>,
        ttl: Duration,
        limits: Limits,
    ) -> berth_store::Result<StoreSink> {
        let lease = store.lease_owned(ttl)?;
        Ok(StoreSink {
            store,
            lease,
            limits,
            eager: OnceLock::new(),
            progress: None,
        })
    }

    /// Report early unpacking (`Progress::Extracting`) on this channel.
    pub fn with_progress(
        mut self,
        progress: tokio::sync::mpsc::UnboundedSender<crate::Progress>,
    ) -> StoreSink {
        self.progress = Some(progress);
        self
    }

    /// Wait for the early unpacking to finish (blocking).
    pub fn finish_eager(&self) {
        if let Some(e) = self.eager.get() {
            if let Ok(mut q) = e.queue.lock() {
                q.take();
            }
            let workers = e.workers.lock().map(|mut w| std::mem::take(&mut *w));
            for w in workers.unwrap_or_default() {
                let _ = w.join();
            }
        }
    }

    fn plan(&self, manifest: &[u8], media_type: &str) -> berth_store::Result<Eager> {
        let m = match image::parse_manifest(manifest, Some(media_type))? {
            image::Manifest::Image(m) => m,
            image::Manifest::Index(_) => {
                return Err(berth_store::Error::Invalid("an index, not an image".into()))
            }
        };
        let cfg_bytes = self
            .store
            .content
            .read_limited(&m.config.digest, image::MAX_DOCUMENT)?;
        let cfg = image::ImageConfig::parse(&cfg_bytes, &m.config.digest.to_string())?;
        if cfg.rootfs.diff_ids.len() != m.layers.len() {
            return Err(berth_store::Error::Invalid("layer count mismatch".into()));
        }
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        let mut layers = Vec::with_capacity(chains.len());
        for ((l, diff), chain) in m.layers.iter().zip(&cfg.rootfs.diff_ids).zip(&chains) {
            self.lease.add(chain)?;
            layers.push((
                l.digest,
                Compression::from_media_type(&l.media_type)?,
                *diff,
                *chain,
            ));
        }
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let rx = Arc::new(Mutex::new(rx));
        let snaps = Arc::new(Snapshots::open(&self.store.snapshots_dir())?);
        let layers_arc = Arc::new(layers.clone());
        let mut workers = Vec::new();
        for _ in 0..EAGER_WORKERS {
            let (rx, snaps, layers, store, limits, progress) = (
                Arc::clone(&rx),
                Arc::clone(&snaps),
                Arc::clone(&layers_arc),
                Arc::clone(&self.store),
                self.limits.clone(),
                self.progress.clone(),
            );
            workers.push(std::thread::spawn(move || loop {
                let next = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(i) = next else { return };
                let (blob, comp, diff, chain) = layers[i];
                if let Some(p) = &progress {
                    let _ = p.send(crate::Progress::Extracting { digest: blob });
                }
                let res = store.content.open_blob(&blob).and_then(|f| {
                    let r = Box::new(std::io::BufReader::with_capacity(1 << 20, f));
                    unpack_layer(&snaps, i, comp, &diff, &chain, r, &limits)
                });
                if let Err(e) = res {
                    tracing::debug!("early unpack of layer {i} failed (retried at the end): {e}");
                }
            }));
        }
        Ok(Eager {
            layers,
            queue: Mutex::new(Some(tx)),
            workers: Mutex::new(workers),
        })
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

impl Drop for StoreSink {
    fn drop(&mut self) {
        self.finish_eager();
    }
}

impl BlobSink for StoreSink {
    /// The store's ingest verifies size and sha256 before a blob becomes visible.
    fn verifies(&self) -> bool {
        true
    }

    fn manifest_ready(&self, manifest: &[u8], media_type: &str) {
        match self.plan(manifest, media_type) {
            Ok(e) => {
                let _ = self.eager.set(e);
            }
            Err(e) => tracing::debug!("no early unpacking for this pull: {e}"),
        }
    }

    fn blob_ready(&self, d: &Digest) {
        if let Some(e) = self.eager.get() {
            if let Ok(q) = e.queue.lock() {
                if let Some(tx) = q.as_ref() {
                    for (i, l) in e.layers.iter().enumerate() {
                        if l.0 == *d {
                            let _ = tx.send(i);
                        }
                    }
                }
            }
        }
    }

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
