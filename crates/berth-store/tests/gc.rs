//! GC: roots, leases protecting in-flight pulls, layer removal order, dangling images.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_store::gc::{collect, collect_with, prune_dangling};
use berth_store::meta::{ImageRecord, LayerRef, Platform};
use berth_store::snapshot::chain_ids;
use berth_store::store::Store;
use berth_store::Digest;
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// Put blobs for an image with `n` layers and record it; returns the record.
fn stored_image(store: &Store, name: &str, n: usize) -> ImageRecord {
    let c = &store.content;
    let config = c.put(format!("{name} config").as_bytes(), None).unwrap();
    let layers: Vec<LayerRef> = (0..n)
        .map(|i| {
            let data = format!("{name} layer {i}");
            LayerRef {
                digest: c.put(data.as_bytes(), None).unwrap(),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                size: data.len() as u64,
                diff_id: Digest::of(format!("{name} diff {i}").as_bytes()),
            }
        })
        .collect();
    let index = c.put(format!("{name} index").as_bytes(), None).unwrap();
    let manifest = c.put(format!("{name} manifest").as_bytes(), None).unwrap();
    let img = ImageRecord {
        manifest,
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config,
        layers,
        platform: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        },
        index: Some(index),
        created: None,
        size: 0,
    };
    store.db().unwrap().put_image(&img).unwrap();
    img
}

fn image_blobs(img: &ImageRecord) -> Vec<Digest> {
    let mut v = vec![img.manifest, img.config];
    v.extend(img.index);
    v.extend(img.layers.iter().map(|l| l.digest));
    v
}

fn record_layers(store: &Store, img: &ImageRecord) -> Vec<Digest> {
    let diffs: Vec<Digest> = img.layers.iter().map(|l| l.diff_id).collect();
    let chains = chain_ids(&diffs);
    let mut db = store.db().unwrap();
    for (i, c) in chains.iter().enumerate() {
        let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
        db.put_layer(c, &diffs[i], parent, 10).unwrap();
    }
    chains
}

#[test]
fn chain_ids_follow_the_oci_rule() {
    let a = Digest::of(b"a");
    let b = Digest::of(b"b");
    let chains = chain_ids(&[a, b]);
    assert_eq!(chains[0], a);
    assert_eq!(chains[1], Digest::of(format!("{a} {b}").as_bytes()));
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn gc_during_a_pull_keeps_what_the_pull_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let kept = stored_image(&store, "kept", 2);
    store
        .db()
        .unwrap()
        .set_tag("example.com/kept:1", &kept.manifest)
        .unwrap();
    let junk = store.content.put(b"unreferenced junk", None).unwrap();

    let config = b"pulled config".to_vec();
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let (config_d, layer_d) = (Digest::of(&config), Digest::of(&layer));

    let (to_gc, gc_may_run) = mpsc::channel::<()>();
    let (to_pull, gc_done) = mpsc::channel::<()>();
    let (store_ref, config_ref, layer_ref) = (&store, &config, &layer);
    std::thread::scope(|s| {
        let pull = s.spawn(move || {
            let lease = store_ref.lease(Duration::from_secs(600)).unwrap();
            lease.add(&config_d).unwrap();
            lease.add(&layer_d).unwrap();
            store_ref.content.put(config_ref, Some(&config_d)).unwrap();
            let mut ing = store_ref
                .content
                .ingest(&layer_d, Some(layer_ref.len() as u64))
                .unwrap()
                .unwrap();
            ing.write_all(&layer_ref[..50_000]).unwrap();
            to_gc.send(()).unwrap();
            gc_done.recv().unwrap();
            ing.write_all(&layer_ref[50_000..]).unwrap();
            ing.commit().unwrap();
            assert!(store_ref.content.exists(&config_d));
            assert!(store_ref.content.exists(&layer_d));
            // The pull stops here without recording an image, still holding its lease.
            lease
        });
        gc_may_run.recv().unwrap();
        let gc = s.spawn(|| collect(&store).unwrap());
        let report = gc.join().unwrap();
        assert_eq!(report.blobs_removed, 1, "{report:?}");
        assert_eq!(report.bytes_freed, b"unreferenced junk".len() as u64);
        assert!(!store.content.exists(&junk));
        assert!(store.content.exists(&config_d), "leased blob was collected");
        to_pull.send(()).unwrap();
        let lease = pull.join().unwrap();

        // Still leased: a GC now keeps both.
        let report = collect(&store).unwrap();
        assert_eq!(report.blobs_removed, 0, "{report:?}");
        assert!(store.content.exists(&layer_d) && store.content.exists(&config_d));
        drop(lease);
    });

    // Lease gone: they go; the tagged image stays whole.
    let report = collect(&store).unwrap();
    assert_eq!(report.blobs_removed, 2, "{report:?}");
    assert_eq!(report.bytes_freed, (config.len() + layer.len()) as u64);
    assert!(!store.content.exists(&config_d) && !store.content.exists(&layer_d));
    for b in image_blobs(&kept) {
        assert!(
            store.content.exists(&b),
            "{b} of a tagged image was collected"
        );
    }
}

#[test]
fn layers_go_children_first_unless_referenced_or_leased() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = stored_image(&store, "img", 2);
    let img_chains = record_layers(&store, &img);
    let orphan = stored_image(&store, "orphan", 3);
    let orphan_chains = record_layers(&store, &orphan);
    {
        let mut db = store.db().unwrap();
        db.delete_image(&orphan.manifest).unwrap();
        // a leased single layer that no image uses (e.g. being unpacked)
        db.put_layer(&Digest::of(b"leased chain"), &Digest::of(b"ld"), None, 1)
            .unwrap();
    }
    let lease = store.lease(Duration::from_secs(600)).unwrap();
    lease.add(&Digest::of(b"leased chain")).unwrap();

    let mut removed_calls = Vec::new();
    let report = collect_with(&store, |c| {
        removed_calls.push(*c);
        Ok(())
    })
    .unwrap();
    let mut want = orphan_chains.clone();
    want.reverse();
    assert_eq!(
        report.layers_removed, want,
        "children must go before parents"
    );
    assert_eq!(removed_calls, want);
    assert_eq!(report.blobs_removed, image_blobs(&orphan).len());
    let db = store.db().unwrap();
    for c in &img_chains {
        assert!(db.layer_exists(c).unwrap());
    }
    for c in &orphan_chains {
        assert!(!db.layer_exists(c).unwrap());
    }
    assert!(db.layer_exists(&Digest::of(b"leased chain")).unwrap());
    drop(db);
    for b in image_blobs(&img) {
        assert!(store.content.exists(&b));
    }
    drop(lease);
    let report = collect_with(&store, |_| Ok(())).unwrap();
    assert_eq!(report.layers_removed, vec![Digest::of(b"leased chain")]);
}

#[test]
fn failed_snapshot_removal_keeps_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let img = stored_image(&store, "x", 1);
    let chains = record_layers(&store, &img);
    store.db().unwrap().delete_image(&img.manifest).unwrap();
    let report = collect_with(&store, |c| {
        Err(berth_store::Error::Internal(format!("cannot remove {c}")))
    })
    .unwrap();
    assert!(report.layers_removed.is_empty());
    assert!(store.db().unwrap().layer_exists(&chains[0]).unwrap());
    let report = collect_with(&store, |_| Ok(())).unwrap();
    assert_eq!(report.layers_removed, chains);
}

#[test]
fn prune_dangling_then_collect_removes_untagged_images_and_snapshot_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tagged = stored_image(&store, "tagged", 1);
    let dangling = stored_image(&store, "dangling", 2);
    let pulling = stored_image(&store, "pulling", 1);
    let used = stored_image(&store, "used", 1);
    let dangling_chains = record_layers(&store, &dangling);
    for c in &dangling_chains {
        std::fs::create_dir_all(store.snapshots_dir().join(c.hex()).join("fs/etc")).unwrap();
    }
    {
        let mut db = store.db().unwrap();
        db.set_tag("example.com/tagged:latest", &tagged.manifest)
            .unwrap();
        db.put_container("ctr", &used.manifest).unwrap();
    }
    let lease = store.lease(Duration::from_secs(600)).unwrap();
    lease.add(&pulling.manifest).unwrap();

    // collect alone keeps dangling images whole: an image record promises its content
    let report = collect(&store).unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert!(report.layers_removed.is_empty());

    assert_eq!(prune_dangling(&store).unwrap(), vec![dangling.manifest]);
    let report = collect(&store).unwrap();
    assert_eq!(report.blobs_removed, image_blobs(&dangling).len());
    assert_eq!(report.layers_removed.len(), 2);
    for c in &dangling_chains {
        assert!(!store.snapshots_dir().join(c.hex()).exists());
    }
    for img in [&tagged, &pulling, &used] {
        assert!(store.db().unwrap().image(&img.manifest).unwrap().is_some());
        for b in image_blobs(img) {
            assert!(store.content.exists(&b));
        }
    }
    drop(lease);
    assert_eq!(prune_dangling(&store).unwrap(), vec![pulling.manifest]);
}
