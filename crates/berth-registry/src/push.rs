//! Push (not yet implemented beyond the source trait).

use berth_store::Digest;

/// Where pushed blobs come from.
pub trait BlobSource: Send + Sync {
    fn size(&self, d: &Digest) -> berth_store::Result<u64>;
    fn open(&self, d: &Digest) -> berth_store::Result<Box<dyn std::io::Read + Send>>;
}

/// Blobs in `<root>/blobs/sha256/<hex>` (an OCI layout or a [`crate::DirSink`] root).
#[derive(Debug, Clone)]
pub struct DirSource {
    pub root: std::path::PathBuf,
}

impl BlobSource for DirSource {
    fn size(&self, d: &Digest) -> berth_store::Result<u64> {
        let p = self.root.join("blobs/sha256").join(d.hex());
        Ok(std::fs::metadata(&p)
            .map_err(|e| berth_store::Error::io(&p, e))?
            .len())
    }
    fn open(&self, d: &Digest) -> berth_store::Result<Box<dyn std::io::Read + Send>> {
        let p = self.root.join("blobs/sha256").join(d.hex());
        Ok(Box::new(
            std::fs::File::open(&p).map_err(|e| berth_store::Error::io(&p, e))?,
        ))
    }
}
