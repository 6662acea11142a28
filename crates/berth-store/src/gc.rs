//! Garbage collection: mark from roots, sweep blobs, and drop unreferenced layers.
//!
//! Roots:
//! - every image record (tagged, used by a container, or dangling: an image record promises its
//!   content exists; dangling images are removed explicitly by [`prune_dangling`]), which marks
//!   its manifest, config, layer blobs and the index it was selected from, and the chain ids of
//!   its layers;
//! - resources of unexpired leases (blob digests and chain ids);
//! - blobs being ingested right now (their ingest lock is held).
//!
//! Marked chain ids also mark their parents. The whole run holds the database lock, so leases
//! cannot change under it, and each unmarked blob is deleted under its ingest lock (skipped if
//! a writer holds it), so a blob being written is never removed.

use crate::meta::LayerRecord;
use crate::snapshot::{chain_ids, Snapshots};
use crate::store::Store;
use crate::{Digest, Result};
use std::collections::{HashMap, HashSet};
use tracing::{info, warn};

/// What a GC run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    /// Chain ids whose layer record (and snapshot) was removed, children before parents.
    pub layers_removed: Vec<Digest>,
}

/// Collect garbage, removing unreferenced snapshots through [`Snapshots::remove`].
pub fn collect(store: &Store) -> Result<GcReport> {
    let snaps = Snapshots::open(&store.snapshots_dir())?;
    collect_with(store, |chain| {
        if !snaps.exists(chain) {
            return Ok(());
        }
        snaps.remove(chain)
    })
}

/// Collect garbage; `remove_snapshot(chain_id)` removes an unreferenced layer's snapshot and
/// must succeed if it is already gone. Its record is deleted only after it succeeded.
pub fn collect_with(
    store: &Store,
    mut remove_snapshot: impl FnMut(&Digest) -> Result<()>,
) -> Result<GcReport> {
    let mut db = store.db()?;
    db.expire_leases()?;

    let mut blobs: HashSet<Digest> = HashSet::new();
    let mut chains: HashSet<Digest> = HashSet::new();
    for img in db.images()? {
        blobs.insert(img.manifest);
        blobs.insert(img.config);
        blobs.extend(img.index);
        blobs.extend(img.layers.iter().map(|l| l.digest));
        let diffs: Vec<Digest> = img.layers.iter().map(|l| l.diff_id).collect();
        chains.extend(chain_ids(&diffs));
    }
    for r in db.leased_resources()? {
        // A leased resource may be either kind; marking both is harmless.
        blobs.insert(r);
        chains.insert(r);
    }
    blobs.extend(store.content.ingests_in_progress()?);

    let layers = db.layers()?;
    let by_chain: HashMap<Digest, &LayerRecord> = layers.iter().map(|l| (l.chain_id, l)).collect();
    let mut stack: Vec<Digest> = chains.iter().copied().collect();
    while let Some(c) = stack.pop() {
        if let Some(parent) = by_chain.get(&c).and_then(|l| l.parent) {
            if chains.insert(parent) {
                stack.push(parent);
            }
        }
    }

    let mut report = GcReport::default();
    for d in store.content.list()? {
        if blobs.contains(&d) {
            continue;
        }
        match store.content.delete_unless_busy(&d) {
            Ok(Some(bytes)) => {
                report.blobs_removed += 1;
                report.bytes_freed += bytes;
            }
            Ok(None) => {}
            Err(e) => {
                warn!(digest = %d, error = %e, "gc: could not remove blob; will retry next run")
            }
        }
    }

    // Unmarked layers, deepest first so children go before their parents.
    let depth = |mut c: Digest| {
        let mut n = 0usize;
        while let Some(p) = by_chain.get(&c).and_then(|l| l.parent) {
            n += 1;
            c = p;
            if n > by_chain.len() {
                break; // a cycle would be corruption; stop counting
            }
        }
        n
    };
    let mut doomed: Vec<(usize, Digest)> = layers
        .iter()
        .filter(|l| !chains.contains(&l.chain_id))
        .map(|l| (depth(l.chain_id), l.chain_id))
        .collect();
    doomed.sort_by(|a, b| b.cmp(a));
    for (_, c) in doomed {
        if let Err(e) = remove_snapshot(&c) {
            warn!(chain_id = %c, error = %e, "gc: could not remove snapshot; will retry next run");
            continue;
        }
        match db.delete_layer(&c) {
            Ok(()) => report.layers_removed.push(c),
            Err(e) => {
                warn!(chain_id = %c, error = %e, "gc: could not delete layer record; will retry next run")
            }
        }
    }
    info!(
        blobs = report.blobs_removed,
        bytes = report.bytes_freed,
        layers = report.layers_removed.len(),
        "garbage collected"
    );
    Ok(report)
}

/// Remove dangling images: no tag, no container, and not held by a lease (an image being
/// pulled is recorded before it is tagged). Their content goes on the next [`collect`].
pub fn prune_dangling(store: &Store) -> Result<Vec<Digest>> {
    let mut db = store.db()?;
    let leased: HashSet<Digest> = db.leased_resources()?.into_iter().collect();
    let mut removed = Vec::new();
    for m in db.dangling_images()? {
        if leased.contains(&m) {
            continue;
        }
        db.delete_image(&m)?;
        removed.push(m);
    }
    if !removed.is_empty() {
        info!(count = removed.len(), "dangling images removed");
    }
    Ok(removed)
}
