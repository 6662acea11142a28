//! Metadata database: schema, images, tags, repository digests, layers, leases, containers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_store::meta::{Db, ImageRecord, LayerRef, Platform, RepoDigest};
use berth_store::{Digest, Error};
use std::time::Duration;

fn d(s: &str) -> Digest {
    Digest::of(s.as_bytes())
}

fn image(name: &str, layers: usize) -> ImageRecord {
    ImageRecord {
        manifest: d(&format!("{name}-manifest")),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config: d(&format!("{name}-config")),
        layers: (0..layers)
            .map(|i| LayerRef {
                digest: d(&format!("{name}-layer{i}")),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 100 + i as u64,
                diff_id: d(&format!("{name}-diff{i}")),
            })
            .collect(),
        platform: Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v7".into()),
        },
        index: Some(d(&format!("{name}-index"))),
        created: Some("2024-01-02T03:04:05Z".into()),
        size: 12345,
    }
}

#[test]
fn schema_is_versioned_wal_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sub/metadata.db");
    let img = image("a", 2);
    {
        let mut db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), 3);
        db.put_image(&img).unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), 3);
    assert_eq!(db.image(&img.manifest).unwrap(), Some(img));
    assert!(tmp.path().join("sub/metadata.db-wal").exists());
    drop(db);

    // A database from a newer Berth is refused, not downgraded.
    {
        let c = bump_user_version(&path);
        assert!(c);
    }
    let err = Db::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Set user_version to 99 by editing the SQLite file header.
fn bump_user_version(path: &std::path::Path) -> bool {
    // Checkpoint happened on close (last connection), so the header in the main file is
    // authoritative: user_version is the big-endian u32 at offset 60.
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(60)).unwrap();
    f.write_all(&99u32.to_be_bytes()).unwrap();
    true
}

#[test]
fn images_round_trip_and_put_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(&tmp.path().join("m.db")).unwrap();
    let a = image("a", 3);
    let mut b = image("b", 0);
    b.index = None;
    b.created = None;
    b.platform.variant = None;
    db.put_image(&a).unwrap();
    db.put_image(&a).unwrap();
    db.put_image(&b).unwrap();
    assert_eq!(db.image(&a.manifest).unwrap().unwrap(), a);
    assert_eq!(db.image(&b.manifest).unwrap().unwrap(), b);
    let mut all = db.images().unwrap();
    all.sort_by_key(|i| i.manifest);
    let mut want = vec![a.clone(), b.clone()];
    want.sort_by_key(|i| i.manifest);
    assert_eq!(all, want);

    // re-putting with fewer layers replaces them (layer order kept)
    let mut a2 = a.clone();
    a2.layers.truncate(1);
    db.put_image(&a2).unwrap();
    assert_eq!(db.image(&a.manifest).unwrap().unwrap().layers, a2.layers);
    assert_eq!(db.image(&d("nope")).unwrap(), None);
}

#[test]
fn tags_and_delete_image_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(&tmp.path().join("m.db")).unwrap();
    let a = image("a", 1);
    let b = image("b", 1);
    db.put_image(&a).unwrap();
    db.put_image(&b).unwrap();

    let err = db
        .set_tag("docker.io/library/x:latest", &d("missing"))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    db.set_tag("docker.io/library/busybox:latest", &a.manifest)
        .unwrap();
    db.set_tag("docker.io/library/busybox:1", &a.manifest)
        .unwrap();
    assert_eq!(
        db.resolve_tag("docker.io/library/busybox:latest").unwrap(),
        Some(a.manifest)
    );
    // moving a tag
    db.set_tag("docker.io/library/busybox:latest", &b.manifest)
        .unwrap();
    assert_eq!(
        db.resolve_tag("docker.io/library/busybox:latest").unwrap(),
        Some(b.manifest)
    );
    assert_eq!(
        db.tags().unwrap(),
        vec![
            ("docker.io/library/busybox:1".to_string(), a.manifest),
            ("docker.io/library/busybox:latest".to_string(), b.manifest),
        ]
    );

    let err = db.delete_image(&a.manifest).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(
        err.to_string().contains("docker.io/library/busybox:1"),
        "{err}"
    );
    assert!(db.remove_tag("docker.io/library/busybox:1").unwrap());
    assert!(!db.remove_tag("docker.io/library/busybox:1").unwrap());
    assert_eq!(db.resolve_tag("docker.io/library/busybox:1").unwrap(), None);

    // containers pin images too
    db.put_container("c1", &a.manifest).unwrap();
    assert_eq!(
        db.containers().unwrap(),
        vec![("c1".to_string(), a.manifest)]
    );
    let err = db.delete_image(&a.manifest).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert!(err.to_string().contains("c1"), "{err}");
    assert!(db.dangling_images().unwrap().is_empty());
    assert!(db.remove_container("c1").unwrap());
    assert_eq!(db.dangling_images().unwrap(), vec![a.manifest]);

    db.delete_image(&a.manifest).unwrap();
    assert_eq!(db.image(&a.manifest).unwrap(), None);
    assert!(matches!(
        db.delete_image(&a.manifest),
        Err(Error::NotFound(_))
    ));
    // b is untouched
    assert_eq!(db.image(&b.manifest).unwrap().unwrap(), b);
}

#[test]
fn layers_need_parents_and_protect_children() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(&tmp.path().join("m.db")).unwrap();
    let (c1, c2) = (d("chain1"), d("chain2"));
    let err = db.put_layer(&c2, &d("diff2"), Some(&c1), 2).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    db.put_layer(&c1, &d("diff1"), None, 1).unwrap();
    db.put_layer(&c2, &d("diff2"), Some(&c1), 2).unwrap();
    db.put_layer(&c2, &d("diff2"), Some(&c1), 2).unwrap(); // idempotent
    assert!(matches!(
        db.put_layer(&c2, &d("other"), Some(&c1), 2),
        Err(Error::Conflict(_))
    ));
    assert!(db.layer_exists(&c1).unwrap() && db.layer_exists(&c2).unwrap());
    assert_eq!(db.layer(&c2).unwrap().unwrap().parent, Some(c1));
    assert_eq!(db.layers().unwrap().len(), 2);

    assert!(matches!(db.delete_layer(&c1), Err(Error::Conflict(_))));
    db.delete_layer(&c2).unwrap();
    db.delete_layer(&c1).unwrap();
    assert!(!db.layer_exists(&c1).unwrap());
    db.delete_layer(&c1).unwrap(); // idempotent
}

#[test]
fn leases_hold_resources_until_deleted_or_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(&tmp.path().join("m.db")).unwrap();
    db.lease_create("long", Duration::from_secs(3600)).unwrap();
    assert!(matches!(
        db.lease_create("long", Duration::from_secs(1)),
        Err(Error::Conflict(_))
    ));
    db.lease_create("short", Duration::from_millis(50)).unwrap();
    db.lease_add("long", &d("x")).unwrap();
    db.lease_add("long", &d("x")).unwrap();
    db.lease_add("short", &d("y")).unwrap();
    assert!(matches!(
        db.lease_add("missing", &d("z")),
        Err(Error::NotFound(_))
    ));
    let mut held = db.leased_resources().unwrap();
    held.sort();
    let mut want = vec![d("x"), d("y")];
    want.sort();
    assert_eq!(held, want);

    std::thread::sleep(Duration::from_millis(80));
    // expired leases stop counting even before they are removed
    assert_eq!(db.leased_resources().unwrap(), vec![d("x")]);
    assert_eq!(db.expire_leases().unwrap(), 1);
    assert_eq!(db.expire_leases().unwrap(), 0);
    assert!(matches!(
        db.lease_add("short", &d("z")),
        Err(Error::NotFound(_))
    ));

    db.lease_delete("long").unwrap();
    db.lease_delete("long").unwrap();
    assert!(db.leased_resources().unwrap().is_empty());
}

#[test]
fn build_cache_entries_follow_their_images_and_are_not_dangling() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(&tmp.path().join("metadata.db")).unwrap();
    let step = image("step", 1);
    let other = image("other", 1);
    db.put_image(&step).unwrap();
    db.put_image(&other).unwrap();
    assert_eq!(db.build_cache("k1").unwrap(), None);
    db.put_build_cache("k1", &step.manifest).unwrap();
    assert_eq!(db.build_cache("k1").unwrap(), Some(step.manifest));
    // A cached step is not a dangling image (`image prune` leaves the cache alone).
    assert_eq!(db.dangling_images().unwrap(), vec![other.manifest]);
    assert_eq!(db.build_cache_images().unwrap(), vec![step.manifest]);
    // Removing the image drops its cache entry.
    db.delete_image(&step.manifest).unwrap();
    assert_eq!(db.build_cache("k1").unwrap(), None);
    db.put_image(&step).unwrap();
    db.put_build_cache("k1", &step.manifest).unwrap();
    assert_eq!(db.clear_build_cache().unwrap(), 1);
    assert_eq!(db.build_cache("k1").unwrap(), None);
}

#[test]
fn repo_digests_are_recorded_moved_and_go_with_their_image() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.db");
    let mut db = Db::open(&path).unwrap();
    let a = image("a", 1);
    let b = image("b", 1);
    db.put_image(&a).unwrap();
    db.put_image(&b).unwrap();
    let repo = "127.0.0.1:5000/x";
    let ix = d("a-index");

    // Nothing recorded: no image has a repository digest, a lookup finds nothing.
    assert!(db.repo_digests().unwrap().is_empty());
    assert!(db.repo_digests_of(&a.manifest).unwrap().is_empty());
    assert_eq!(db.resolve_repo_digest(repo, &ix).unwrap(), None);

    // Only stored images, only repository names.
    let err = db.put_repo_digest(repo, &ix, &d("missing")).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("not in the store"), "{err}");
    for bad in ["", "x@sha256:aa", "a b"] {
        let err = db.put_repo_digest(bad, &ix, &a.manifest).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad:?}: {err}");
    }

    db.put_repo_digest(repo, &ix, &a.manifest).unwrap();
    db.put_repo_digest(repo, &ix, &a.manifest).unwrap(); // idempotent
    db.put_repo_digest("docker.io/library/y", &a.manifest, &a.manifest)
        .unwrap();
    db.put_repo_digest(repo, &b.manifest, &b.manifest).unwrap();
    assert_eq!(db.resolve_repo_digest(repo, &ix).unwrap(), Some(a.manifest));
    // The same digest in another repository is another reference.
    assert_eq!(
        db.resolve_repo_digest("127.0.0.1:5000/z", &ix).unwrap(),
        None
    );
    let rd = |repo: &str, digest: Digest, image: Digest| RepoDigest {
        repo: repo.to_string(),
        digest,
        image,
    };
    let mut want_a = vec![
        rd(repo, ix, a.manifest),
        rd("docker.io/library/y", a.manifest, a.manifest),
    ];
    want_a.sort_by(|x, y| (&x.repo, x.digest).cmp(&(&y.repo, y.digest)));
    assert_eq!(db.repo_digests_of(&a.manifest).unwrap(), want_a);
    assert_eq!(db.repo_digests().unwrap().len(), 3);

    // A pull of the same index for another platform moves repo@index to that image.
    db.put_repo_digest(repo, &ix, &b.manifest).unwrap();
    assert_eq!(db.resolve_repo_digest(repo, &ix).unwrap(), Some(b.manifest));
    assert_eq!(db.repo_digests_of(&a.manifest).unwrap().len(), 1);

    // Re-storing the image keeps its digests; they survive a reopen.
    db.put_image(&b).unwrap();
    drop(db);
    let mut db = Db::open(&path).unwrap();
    assert_eq!(db.repo_digests_of(&b.manifest).unwrap().len(), 2);

    // A repository digest does not keep an image from being deleted (nor from being
    // dangling): deleting the image removes its records.
    assert!(db.dangling_images().unwrap().contains(&b.manifest));
    db.delete_image(&b.manifest).unwrap();
    assert!(db.repo_digests_of(&b.manifest).unwrap().is_empty());
    assert_eq!(db.resolve_repo_digest(repo, &ix).unwrap(), None);

    assert!(db
        .remove_repo_digest("docker.io/library/y", &a.manifest)
        .unwrap());
    assert!(!db
        .remove_repo_digest("docker.io/library/y", &a.manifest)
        .unwrap());
    assert!(db.repo_digests().unwrap().is_empty());
}
