//! Pull end to end into Berth's store, with images pushed by our own push code to a loopback
//! `docker-registry`: a multi-layer image mixing gzip and zstd layers with whiteouts and an
//! opaque directory, and an index with two platforms. Checks the store (record, tag, blobs,
//! layer records), the snapshots and, as root, the merged overlay view.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_registry::image_pull::pull_image;
use berth_registry::{Client, DirSource, Platform, Reference, RegistryConfig};
use berth_store::store::Store;
use berth_store::unpack::Limits;
use berth_store::{gc, Digest};
use berth_tests::services::Registry;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

fn put(root: &Path, data: &[u8]) -> (Digest, u64) {
    let d = Digest::of(data);
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(root.join("blobs/sha256").join(d.hex()), data).unwrap();
    (d, data.len() as u64)
}

/// A layer tar from (path, content) entries; `None` content makes a directory.
fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, path, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Write an image (layers given as (media type, compressed, uncompressed)) into `root`;
/// returns the manifest bytes.
fn image(root: &Path, arch: &str, layers: &[(&str, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::of(&l.2).to_string())
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap();
    let (cd, cs) = put(root, &config);
    let descs: Vec<_> = layers
        .iter()
        .map(|(mt, blob, _)| {
            let (d, s) = put(root, blob);
            json!({"mediaType": mt, "digest": d.to_string(), "size": s})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
        "layers": descs
    }))
    .unwrap();
    put(root, &manifest);
    manifest
}

fn layered_image(root: &Path, arch: &str) -> Vec<u8> {
    let l0 = tar_of(&[
        ("etc", None),
        ("etc/keep", Some(b"keep\n")),
        ("etc/gone", Some(b"gone\n")),
        ("data", None),
        ("data/old", Some(b"old\n")),
    ]);
    let l1 = tar_of(&[
        ("etc/.wh.gone", Some(b"")),
        ("data/.wh..wh..opq", Some(b"")),
        ("data/new", Some(b"new\n")),
    ]);
    let l2 = tar_of(&[("app", None), ("app/hello", Some(b"hello from zstd\n"))]);
    let z2 = zstd::encode_all(&l2[..], 3).unwrap();
    image(
        root,
        arch,
        &[
            ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(&l0), l0),
            ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(&l1), l1),
            ("application/vnd.oci.image.layer.v1.tar+zstd", z2, l2),
        ],
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn pushed_multilayer_image_pulls_into_the_store_and_unpacks() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let manifest = layered_image(src.path(), &Platform::host().architecture);
    let client = Client::new(RegistryConfig::default()).unwrap();
    let r = Reference::parse_normalized(&format!("{}/test/layered:v1", reg.host())).unwrap();
    let rt = rt();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let pushed = rt
        .block_on(client.push(
            &r,
            &DirSource::new(src.path()),
            &manifest,
            "application/vnd.oci.image.manifest.v1+json",
            tx,
        ))
        .unwrap();
    assert_eq!(pushed, Digest::of(&manifest));

    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(data.path()).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pulled = rt
        .block_on(pull_image(
            &client,
            &store,
            &r,
            &Platform::host(),
            Limits::default(),
            tx,
        ))
        .unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(
            serde_json::to_value(&e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for want in ["resolved", "downloading", "done", "extracting", "extracted"] {
        assert!(
            events.iter().any(|e| e == want),
            "no {want} event in {events:?}"
        );
    }
    assert_eq!(pulled.record.manifest, Digest::of(&manifest));
    assert_eq!(pulled.record.layers.len(), 3);
    assert_eq!(pulled.chain_ids.len(), 3);
    assert_eq!(pulled.tag.as_deref(), Some(r.name_with_tag().as_str()));
    assert_eq!(
        store.db().unwrap().resolve_tag(&r.name_with_tag()).unwrap(),
        Some(pulled.record.manifest)
    );
    // The RepoDigest: the repository at the manifest digest the registry served.
    let recorded: Vec<(String, Digest)> = store
        .db()
        .unwrap()
        .repo_digests_of(&pulled.record.manifest)
        .unwrap()
        .into_iter()
        .map(|rd| (rd.repo, rd.digest))
        .collect();
    assert_eq!(recorded, vec![(r.repository(), Digest::of(&manifest))]);
    for l in &pulled.record.layers {
        assert!(
            store.content.exists(&l.digest),
            "layer blob {} missing",
            l.digest
        );
    }
    for c in &pulled.chain_ids {
        assert!(store.db().unwrap().layer_exists(c).unwrap());
    }
    // The snapshots hold each layer's own content, whiteouts translated.
    let snaps = berth_store::snapshot::Snapshots::open(&store.snapshots_dir()).unwrap();
    let top = snaps.fs_path(&pulled.chain_ids[2]);
    assert_eq!(
        std::fs::read(top.join("app/hello")).unwrap(),
        b"hello from zstd\n"
    );
    let base = snaps.fs_path(&pulled.chain_ids[0]);
    assert_eq!(std::fs::read(base.join("etc/gone")).unwrap(), b"gone\n");
    // GC keeps everything a tagged image needs.
    let rep = gc::collect(&store).unwrap();
    assert_eq!(rep.blobs_removed, 0, "{rep:?}");
    assert!(rep.layers_removed.is_empty(), "{rep:?}");

    // As root: the overlay of the three snapshots is the image's filesystem.
    if berth_tests::is_root() {
        let lower = snaps.lowerdirs(&pulled.chain_ids).unwrap();
        let mnt = tempfile::tempdir().unwrap();
        let opts = format!(
            "lowerdir={}",
            lower
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        nix::mount::mount(
            Some("overlay"),
            mnt.path(),
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(opts.as_str()),
        )
        .unwrap();
        let m = mnt.path();
        let keep = std::fs::read(m.join("etc/keep"));
        let gone = m.join("etc/gone").exists();
        let old = m.join("data/old").exists();
        let new = std::fs::read(m.join("data/new"));
        let hello = std::fs::read(m.join("app/hello"));
        nix::mount::umount(m).unwrap();
        assert_eq!(keep.unwrap(), b"keep\n");
        assert!(!gone, "whiteout did not hide etc/gone");
        assert!(!old, "opaque dir did not hide data/old");
        assert_eq!(new.unwrap(), b"new\n");
        assert_eq!(hello.unwrap(), b"hello from zstd\n");
    } else {
        eprintln!("skipped: overlay check needs root");
    }

    // A second pull finds everything present and changes nothing.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let again = rt
        .block_on(pull_image(
            &client,
            &store,
            &r,
            &Platform::host(),
            Limits::default(),
            tx,
        ))
        .unwrap();
    assert_eq!(again.chain_ids, pulled.chain_ids);
}

#[test]
fn two_platform_index_selects_the_requested_platform() {
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    let host = Platform::host();
    let other = if host.architecture == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let m_host = layered_image(src.path(), &host.architecture);
    let l_other = tar_of(&[("only-on-other", Some(b"other\n"))]);
    let m_other = image(
        src.path(),
        other,
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            gzip(&l_other),
            l_other.clone(),
        )],
    );
    let desc = |m: &[u8], arch: &str| {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": Digest::of(m).to_string(), "size": m.len(),
               "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc(&m_host, &host.architecture), desc(&m_other, other)]
    }))
    .unwrap();
    let client = Client::new(RegistryConfig::default()).unwrap();
    let r = Reference::parse_normalized(&format!("{}/test/multi:v1", reg.host())).unwrap();
    let rt = rt();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    rt.block_on(client.push(
        &r,
        &DirSource::new(src.path()),
        &index,
        "application/vnd.oci.image.index.v1+json",
        tx,
    ))
    .unwrap();

    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(data.path()).unwrap());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let p = rt
        .block_on(pull_image(
            &client,
            &store,
            &r,
            &host,
            Limits::default(),
            tx,
        ))
        .unwrap();
    assert_eq!(p.record.manifest, Digest::of(&m_host));
    assert_eq!(p.record.index, Some(Digest::of(&index)));
    assert!(store.content.exists(&Digest::of(&index)), "index blob kept");
    // A multi-platform pull records the index digest (what the registry has the tag as).
    assert_eq!(
        store
            .db()
            .unwrap()
            .resolve_repo_digest(&r.repository(), &Digest::of(&index))
            .unwrap(),
        Some(p.record.manifest)
    );
    assert_eq!(
        store
            .db()
            .unwrap()
            .resolve_repo_digest(&r.repository(), &p.record.manifest)
            .unwrap(),
        None
    );

    let want: Platform = format!("linux/{other}").parse().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let data2 = tempfile::tempdir().unwrap();
    let store2 = Arc::new(Store::open(data2.path()).unwrap());
    let q = rt
        .block_on(pull_image(
            &client,
            &store2,
            &r,
            &want,
            Limits::default(),
            tx,
        ))
        .unwrap();
    assert_eq!(q.record.manifest, Digest::of(&m_other));
    assert_eq!(q.record.platform.architecture, other);
    let snaps = berth_store::snapshot::Snapshots::open(&store2.snapshots_dir()).unwrap();
    assert_eq!(
        std::fs::read(snaps.fs_path(&q.chain_ids[0]).join("only-on-other")).unwrap(),
        b"other\n"
    );

    // A platform the index does not have: the error lists what it has.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let e = rt
        .block_on(pull_image(
            &client,
            &store2,
            &r,
            &"linux/s390x".parse().unwrap(),
            Limits::default(),
            tx,
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("s390x") && e.contains(other), "{e}");
}

/// A store on a full disk: both while downloading and while unpacking, the pull fails with an
/// error that names the cause, and leaves no blob half-written, no image record, no tag and
/// no snapshot.
#[test]
fn disk_full_leaves_the_store_consistent() {
    if !berth_tests::require_root("disk_full_leaves_the_store_consistent") {
        return;
    }
    let reg = Registry::start();
    let src = tempfile::tempdir().unwrap();
    // Unpack needs 6 MB; the compressed blob is a few KB.
    let big = vec![0u8; 6 << 20];
    let l = tar_of(&[("zeros", Some(&big[..]))]);
    let m_unpack = image(
        src.path(),
        &Platform::host().architecture,
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            gzip(&l),
            l.clone(),
        )],
    );
    // Download needs 6 MB: an incompressible layer.
    let mut noise = vec![0u8; 6 << 20];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let l2 = tar_of(&[("noise", Some(&noise[..]))]);
    let m_download = image(
        src.path(),
        &Platform::host().architecture,
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            gzip(&l2),
            l2.clone(),
        )],
    );
    let client = Client::new(RegistryConfig::default()).unwrap();
    let rt = rt();
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let r1 = Reference::parse_normalized(&format!("{}/test/unpackfull:v1", reg.host())).unwrap();
    let r2 = Reference::parse_normalized(&format!("{}/test/downloadfull:v1", reg.host())).unwrap();
    for (r, m) in [(&r1, &m_unpack), (&r2, &m_download)] {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        rt.block_on(client.push(r, &DirSource::new(src.path()), m, mt, tx))
            .unwrap();
    }

    let mnt = tempfile::tempdir().unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        mnt.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=3m"),
    )
    .unwrap();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _u = Unmount(mnt.path().to_path_buf());
    let store = Arc::new(Store::open(mnt.path()).unwrap());
    for r in [&r1, &r2] {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let e = rt
            .block_on(pull_image(
                &client,
                &store,
                r,
                &Platform::host(),
                Limits::default(),
                tx,
            ))
            .unwrap_err()
            .to_string();
        assert!(e.contains("No space left on device"), "{r}: {e}");
        let db = store.db().unwrap();
        assert!(
            db.resolve_tag(&r.name_with_tag()).unwrap().is_none(),
            "{r} tagged"
        );
        assert!(db.images().unwrap().is_empty(), "{r}: image record left");
    }
    let ingest: Vec<_> = std::fs::read_dir(mnt.path().join("content/ingest"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(ingest.is_empty(), "ingest leftovers: {ingest:?}");
    let snaps = berth_store::snapshot::Snapshots::open(&store.snapshots_dir()).unwrap();
    assert!(snaps.list().unwrap().is_empty(), "snapshot committed");
    let tmp: Vec<_> = std::fs::read_dir(store.snapshots_dir().join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "unpack leftovers");
    // What was downloaded is unreferenced now: GC takes it all back.
    gc::collect(&store).unwrap();
    assert!(store.content.list().unwrap().is_empty());
}
