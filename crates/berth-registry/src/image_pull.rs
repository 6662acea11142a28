//! A pull end to end, into Berth's store: download every blob (verified, through the mirrors)
//! under a lease, record the image, unpack its layers into snapshots, and only then record
//! `repo@<digest the registry served>` and set the tag — so a name never points at an image
//! that is not completely there, and a GC running meanwhile never removes what the pull
//! needs.

use crate::store_sink::StoreSink;
use crate::{Client, Error, Progress, PullResult, Result};
use berth_store::image;
use berth_store::meta::ImageRecord;
use berth_store::reference::Reference;
use berth_store::snapshot::{chain_ids, unpack_layers, Snapshots};
use berth_store::store::Store;
use berth_store::unpack::{Compression, Limits};
use berth_store::Digest;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What a pull left in the store.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub record: ImageRecord,
    /// Layer chain ids, bottom first (the snapshots an overlay mount stacks).
    pub chain_ids: Vec<Digest>,
    /// The tag set (normalised), if the reference had one.
    pub tag: Option<String>,
    pub result: PullResult,
}

/// How long a crashed pull can keep its blobs from GC.
const PULL_LEASE: Duration = Duration::from_secs(6 * 3600);

/// Pull `r` for `platform` into `store`, unpack it, record its repository digest, tag it.
pub async fn pull_image(
    client: &Client,
    store: &Arc<Store>,
    r: &Reference,
    platform: &crate::Platform,
    limits: Limits,
    progress: UnboundedSender<Progress>,
) -> Result<Pulled> {
    let sink = StoreSink::with_limits(Arc::clone(store), PULL_LEASE, limits.clone())?
        .with_progress(progress.clone());
    let result = client.pull(r, platform, &sink, progress.clone()).await?;
    let r = r.clone();
    let res = result.clone();
    let (record, chains, tag) =
        tokio::task::spawn_blocking(move || finish(&sink, &r, &res, &limits, &progress))
            .await
            .map_err(|e| Error::Internal(format!("pull worker: {e}")))??;
    Ok(Pulled {
        record,
        chain_ids: chains,
        tag,
        result,
    })
}

/// The blocking half: record, unpack, tag.
fn finish(
    sink: &StoreSink,
    r: &Reference,
    res: &PullResult,
    limits: &Limits,
    progress: &UnboundedSender<Progress>,
) -> Result<(ImageRecord, Vec<Digest>, Option<String>)> {
    // Layers unpacked while downloading are done when their workers are.
    sink.finish_eager();
    let store = sink.store();
    let lease = sink.lease();
    if let Some((ix, bytes)) = &res.index {
        lease.add(ix)?;
        store.content.put(bytes, Some(ix))?;
    }
    let had_record = store.db()?.image(&res.manifest_digest)?.is_some();
    let record = image::store_image(
        store,
        lease,
        &res.manifest_bytes,
        Some(&res.manifest_media_type),
        res.index.as_ref().map(|(d, _)| *d),
    )?;
    // What the registry served: the index for a multi-platform image, else the manifest.
    let served = res.index.as_ref().map_or(res.manifest_digest, |(d, _)| *d);
    match unpack_and_tag(sink, r, &record, &served, limits, progress) {
        Ok((chains, tag)) => Ok((record, chains, tag)),
        Err(e) => {
            // No half-pulled image stays behind: a record this pull created goes again (its
            // blobs are then unreferenced and GC reclaims them once the lease is gone).
            if !had_record {
                if let Ok(mut db) = store.db() {
                    if let Err(e2) = db.delete_image(&record.manifest) {
                        tracing::warn!(
                            "removing the record of failed pull {}: {e2}",
                            record.manifest
                        );
                    }
                }
            }
            Err(e)
        }
    }
}

fn unpack_and_tag(
    sink: &StoreSink,
    r: &Reference,
    record: &ImageRecord,
    served: &Digest,
    limits: &Limits,
    progress: &UnboundedSender<Progress>,
) -> Result<(Vec<Digest>, Option<String>)> {
    let store = sink.store();
    let lease = sink.lease();
    let diff_ids: Vec<Digest> = record.layers.iter().map(|l| l.diff_id).collect();
    let chains = chain_ids(&diff_ids);
    for c in &chains {
        lease.add(c)?;
    }
    let layers = record
        .layers
        .iter()
        .map(|l| Ok((Compression::from_media_type(&l.media_type)?, l.diff_id)))
        .collect::<berth_store::Result<Vec<_>>>()?;
    let snaps = Snapshots::open(&store.snapshots_dir())?;
    let unpacked = unpack_layers(
        &snaps,
        &layers,
        |i| {
            let l = &record.layers[i];
            let _ = progress.send(Progress::Extracting { digest: l.digest });
            Ok(Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                store.content.open_blob(&l.digest)?,
            )))
        },
        limits,
    )?;
    {
        let mut db = store.db()?;
        for (i, c) in unpacked.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| &unpacked[p]);
            db.put_layer(c, &record.layers[i].diff_id, parent, record.layers[i].size)?;
        }
    }
    for l in &record.layers {
        let _ = progress.send(Progress::Extracted { digest: l.digest });
    }
    // Last: the names now point at a complete image — `repo@<served digest>` (the image's
    // RepoDigest: the registry has it by that digest), then the tag.
    store
        .db()?
        .put_repo_digest(&r.repository(), served, &record.manifest)?;
    let tag = match &r.tag {
        Some(_) => {
            let name = r.name_with_tag();
            store.db()?.set_tag(&name, &record.manifest)?;
            Some(name)
        }
        None => None,
    };
    Ok((unpacked, tag))
}
