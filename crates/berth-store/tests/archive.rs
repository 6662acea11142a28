//! docker load / docker save / OCI layout import-export against the busybox fixture, real
//! skopeo and a private dockerd, and hostile archives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_store::archive::{self, Loaded};
use berth_store::image::{self, DOCKER_LAYER_TAR, DOCKER_MANIFEST, OCI_MANIFEST};
use berth_store::store::Store;
use berth_store::{gc, Digest, Error};
use berth_tests::image::{busybox_layer_tar, host_oci_arch};
use berth_tests::{is_root, oci_image_layout, sha256_hex, ImageLayout};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

const BUSYBOX: &str = "docker.io/library/busybox:latest";

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

/// Tar up a directory tree (relative names, deterministic order).
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// The fixture layout with index.json's ref name set to `ref_name`.
fn fixture(dir: &Path, ref_name: &str) -> ImageLayout {
    let layout = oci_image_layout(dir);
    let p = dir.join("index.json");
    let mut ix: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    ix["manifests"][0]["annotations"][image::ANNOTATION_REF_NAME] = json!(ref_name);
    std::fs::write(&p, serde_json::to_vec(&ix).unwrap()).unwrap();
    layout
}

fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    // Bypasses tar-rs's own path checks so hostile names can be written.
    let mut h = tar::Header::new_gnu();
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn file_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, name, data).unwrap();
}

fn assert_verified(store: &Store, digest: &Digest) {
    let mut data = Vec::new();
    store
        .content
        .open_blob(digest)
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(Digest::of(&data), *digest, "stored blob does not verify");
}

fn assert_fixture_image(store: &Store, layout: &ImageLayout, manifest: &Digest) {
    let rec = store
        .db()
        .unwrap()
        .image(manifest)
        .unwrap()
        .expect("image record");
    assert_eq!(rec.config, d(&layout.config_digest));
    assert_eq!(rec.media_type, OCI_MANIFEST);
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].digest, d(&layout.layer_digest));
    assert_eq!(rec.layers[0].diff_id, d(&layout.diff_id));
    assert_eq!(rec.layers[0].size, layout.layer_size);
    assert_eq!(rec.platform.os, "linux");
    assert_eq!(rec.platform.architecture, host_oci_arch());
    for b in [rec.manifest, rec.config, rec.layers[0].digest] {
        assert_verified(store, &b);
    }
}

#[test]
fn load_oci_layout_tar_plain_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = fixture(&tmp.path().join("img"), "busybox:latest");
    let tarball = tar_dir(&layout.dir);

    let store = Store::open(&tmp.path().join("store")).unwrap();
    let loaded = archive::load(&store, tarball.as_slice()).unwrap();
    let m = d(&layout.manifest_digest);
    assert_eq!(
        loaded,
        vec![Loaded {
            name: Some(BUSYBOX.into()),
            manifest: m
        }]
    );
    assert_eq!(store.db().unwrap().resolve_tag(BUSYBOX).unwrap(), Some(m));
    assert_fixture_image(&store, &layout, &m);
    // The lease is gone: GC keeps the image's blobs because the image references them.
    let report = gc::collect(&store).unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert!(store.content.exists(&d(&layout.layer_digest)));

    // Same archive gzip'd, into a fresh store; a bare "latest" ref name loads untagged.
    let layout2 = fixture(&tmp.path().join("img2"), "latest");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_dir(&layout2.dir)).unwrap();
    let store2 = Store::open(&tmp.path().join("store2")).unwrap();
    let loaded = archive::load(&store2, gz.finish().unwrap().as_slice()).unwrap();
    assert_eq!(
        loaded,
        vec![Loaded {
            name: None,
            manifest: m
        }]
    );
    assert!(store2.db().unwrap().tags().unwrap().is_empty());
    assert_fixture_image(&store2, &layout2, &m);
}

fn skopeo_available() -> bool {
    Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn save_round_trips_and_skopeo_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = fixture(&tmp.path().join("img"), "busybox:latest");
    let store = Store::open(&tmp.path().join("store")).unwrap();
    archive::load(&store, tar_dir(&layout.dir).as_slice()).unwrap();
    let m = d(&layout.manifest_digest);

    let out = tmp.path().join("saved.tar");
    let f = std::fs::File::create(&out).unwrap();
    archive::save(&store, &[(m, vec![BUSYBOX.to_string()])], f).unwrap();

    // Unpack with tar-rs and check the layout by hand.
    let x = tmp.path().join("x");
    tar::Archive::new(std::fs::File::open(&out).unwrap())
        .unpack(&x)
        .unwrap();
    let read_json =
        |p: &str| -> Value { serde_json::from_slice(&std::fs::read(x.join(p)).unwrap()).unwrap() };
    assert_eq!(read_json("oci-layout")["imageLayoutVersion"], "1.0.0");
    let ix = read_json("index.json");
    let e = &ix["manifests"][0];
    assert_eq!(e["digest"], json!(layout.manifest_digest));
    assert_eq!(e["size"], json!(layout.manifest_size));
    assert_eq!(e["mediaType"], OCI_MANIFEST);
    assert_eq!(e["annotations"][image::ANNOTATION_CONTAINERD_NAME], BUSYBOX);
    assert_eq!(e["annotations"][image::ANNOTATION_REF_NAME], "latest");
    assert_eq!(e["platform"]["architecture"], host_oci_arch());
    let mj = read_json("manifest.json");
    assert_eq!(
        mj,
        json!([{
            "Config": format!("blobs/sha256/{}", &layout.config_digest[7..]),
            "RepoTags": ["busybox:latest"],
            "Layers": [format!("blobs/sha256/{}", &layout.layer_digest[7..])],
        }])
    );
    for dg in [
        &layout.manifest_digest,
        &layout.config_digest,
        &layout.layer_digest,
    ] {
        let data = std::fs::read(x.join("blobs/sha256").join(&dg[7..])).unwrap();
        assert_eq!(format!("sha256:{}", sha256_hex(&data)), *dg);
    }

    // Our own load of our own save: same image, same tag.
    let store2 = Store::open(&tmp.path().join("store2")).unwrap();
    let loaded = archive::load(&store2, std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(
        loaded,
        vec![Loaded {
            name: Some(BUSYBOX.into()),
            manifest: m
        }]
    );
    assert_fixture_image(&store2, &layout, &m);

    // export_oci_layout / import_oci_layout through a directory.
    let dir = tmp.path().join("exported");
    archive::export_oci_layout(&store, &[(m, vec![BUSYBOX.to_string()])], &dir).unwrap();
    assert!(archive::export_oci_layout(&store, &[(m, vec![])], &dir).is_err());
    let store3 = Store::open(&tmp.path().join("store3")).unwrap();
    let loaded = archive::import_oci_layout(&store3, &dir).unwrap();
    assert_eq!(loaded[0].name.as_deref(), Some(BUSYBOX));
    assert_fixture_image(&store3, &layout, &m);

    if !skopeo_available() {
        eprintln!("skopeo not installed: skipping skopeo inspect");
        return;
    }
    for src in [
        format!("oci-archive:{}", out.display()),
        format!("oci:{}", dir.display()),
    ] {
        let o = Command::new("skopeo")
            .args(["inspect", &src])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo inspect {src}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Digest"], json!(layout.manifest_digest), "{src}");
        assert_eq!(v["Layers"], json!([layout.layer_digest]), "{src}");
        assert_eq!(v["Architecture"], host_oci_arch(), "{src}");
    }
}

#[test]
fn docker_round_trip() {
    if !is_root() || Command::new("dockerd").arg("--version").output().is_err() {
        eprintln!("needs root and dockerd: skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = fixture(&tmp.path().join("img"), "busybox:latest");
    let store = Store::open(&tmp.path().join("store")).unwrap();
    archive::load(&store, tar_dir(&layout.dir).as_slice()).unwrap();
    let m = d(&layout.manifest_digest);
    let saved = tmp.path().join("saved.tar");
    archive::save(
        &store,
        &[(
            m,
            vec![BUSYBOX.into(), "docker.io/library/busybox:extra".into()],
        )],
        std::fs::File::create(&saved).unwrap(),
    )
    .unwrap();

    let dockerd = berth_tests::services::Dockerd::start();
    let o = dockerd
        .docker(&["load", "-i", saved.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "docker load: {stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("busybox:latest"), "{stdout}");
    for tag in ["busybox:latest", "busybox:extra"] {
        let o = dockerd
            .docker(&[
                "image",
                "inspect",
                "--format",
                "{{.Id}} {{json .RootFS.Layers}}",
                tag,
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "inspect {tag}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(&layout.diff_id), "{tag}: {s}");
        assert!(s.contains(&layout.config_digest), "{tag}: {s}");
    }

    // docker save (legacy or 25+ format, whatever this dockerd writes) → our load.
    let from_docker = tmp.path().join("from-docker.tar");
    let o = dockerd
        .docker(&[
            "save",
            "-o",
            from_docker.to_str().unwrap(),
            "busybox:latest",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker save: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let store2 = Store::open(&tmp.path().join("store2")).unwrap();
    let loaded = archive::load(&store2, std::fs::File::open(&from_docker).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    assert_eq!(loaded[0].name.as_deref(), Some(BUSYBOX));
    let tagged = store2.db().unwrap().resolve_tag(BUSYBOX).unwrap().unwrap();
    let rec = store2.db().unwrap().image(&tagged).unwrap().unwrap();
    assert_eq!(rec.config, d(&layout.config_digest));
    eprintln!(
        "docker save format: manifest {} layers {:?}",
        rec.media_type,
        rec.layers.iter().map(|l| &l.media_type).collect::<Vec<_>>()
    );
    let diffs: Vec<Digest> = rec.layers.iter().map(|l| l.diff_id).collect();
    assert_eq!(diffs, vec![d(&layout.diff_id)]);
    for l in &rec.layers {
        assert_verified(&store2, &l.digest);
    }
    assert_verified(&store2, &rec.config);
    assert_verified(&store2, &rec.manifest);
}

/// A legacy (pre-25) docker save: `<id>/layer.tar`, `<config hex>.json`, manifest.json,
/// repositories; the second image reuses the first one's layer through a symlink.
fn legacy_tar(layer2: &[u8]) -> (Vec<u8>, Vec<String>, Vec<String>) {
    let l1 = busybox_layer_tar();
    let diff1 = format!("sha256:{}", sha256_hex(&l1));
    let diff2 = format!("sha256:{}", sha256_hex(layer2));
    let cfg = |diffs: &[&str], cmd: &str| {
        serde_json::to_vec(&json!({
            "architecture": host_oci_arch(), "os": "linux",
            "config": {"Cmd": [cmd], "Env": null, "Labels": null},
            "rootfs": {"type": "layers", "diff_ids": diffs},
            "history": [{"created_by": "test"}]
        }))
        .unwrap()
    };
    let c1 = cfg(&[&diff1, &diff2], "sh");
    let c2 = cfg(&[&diff1], "true");
    let (h1, h2) = (sha256_hex(&c1), sha256_hex(&c2));
    let mut b = tar::Builder::new(Vec::new());
    file_entry(&mut b, "aaaa/layer.tar", &l1);
    file_entry(&mut b, "aaaa/json", b"{}");
    file_entry(&mut b, "aaaa/VERSION", b"1.0");
    file_entry(&mut b, "bbbb/layer.tar", layer2);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "cccc/layer.tar", "../aaaa/layer.tar")
        .unwrap();
    file_entry(&mut b, &format!("{h1}.json"), &c1);
    file_entry(&mut b, &format!("{h2}.json"), &c2);
    let mj = json!([
        {"Config": format!("{h1}.json"), "RepoTags": ["busybox:legacy"], "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]},
        {"Config": format!("{h2}.json"), "RepoTags": ["me/other:1"], "Layers": ["cccc/layer.tar"]}
    ]);
    file_entry(&mut b, "manifest.json", &serde_json::to_vec(&mj).unwrap());
    file_entry(&mut b, "repositories", b"{}");
    (
        b.into_inner().unwrap(),
        vec![format!("sha256:{h1}"), format!("sha256:{h2}")],
        vec![diff1, diff2],
    )
}

fn small_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    file_entry(&mut b, "etc/hello", b"hello\n");
    b.into_inner().unwrap()
}

#[test]
fn load_legacy_docker_save() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let (tarball, configs, diffs) = legacy_tar(&small_layer());
    let loaded = archive::load(&store, tarball.as_slice()).unwrap();
    let names: Vec<_> = loaded.iter().map(|l| l.name.clone().unwrap()).collect();
    assert_eq!(
        names,
        vec!["docker.io/library/busybox:legacy", "docker.io/me/other:1"]
    );
    let db = store.db().unwrap();
    let r1 = db
        .image(
            &db.resolve_tag("docker.io/library/busybox:legacy")
                .unwrap()
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(r1.media_type, DOCKER_MANIFEST);
    assert_eq!(r1.config, d(&configs[0]));
    assert_eq!(r1.layers.len(), 2);
    for (l, diff) in r1.layers.iter().zip(&diffs) {
        assert_eq!(l.media_type, DOCKER_LAYER_TAR);
        assert_eq!(l.digest, d(diff), "uncompressed layer: digest == diff_id");
        assert_eq!(l.diff_id, d(diff));
        assert_verified(&store, &l.digest);
    }
    // The synthesised manifest is a valid schema 2 manifest in the store.
    let mbytes = store.content.read_limited(&r1.manifest, 1 << 20).unwrap();
    match image::parse_manifest(&mbytes, None).unwrap() {
        image::Manifest::Image(m) => {
            assert_eq!(m.config.digest, r1.config);
            assert_eq!(m.layers.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let r2 = db
        .image(&db.resolve_tag("docker.io/me/other:1").unwrap().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        r2.layers[0].digest,
        d(&diffs[0]),
        "symlinked layer resolved"
    );
    drop(db);
    // The staging dir under the store root is gone.
    let leftovers: Vec<_> = std::fs::read_dir(store.root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".load-"))
        .collect();
    assert!(leftovers.is_empty());
}

fn assert_untouched(store: &Store) {
    let db = store.db().unwrap();
    assert!(db.tags().unwrap().is_empty(), "no tag after a failed load");
    assert!(
        db.images().unwrap().is_empty(),
        "no image after a failed load"
    );
}

#[test]
fn tampered_blob_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = fixture(&tmp.path().join("img"), "busybox:latest");
    // Replace the layer blob's content, keeping its name.
    let p = layout.blob_path(&layout.layer_digest);
    let mut data = std::fs::read(&p).unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&p, &data).unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = archive::load(&store, tar_dir(&layout.dir).as_slice()).unwrap_err();
    assert!(matches!(err, Error::Verification(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&layout.layer_digest), "{msg}");
    assert!(!store.content.exists(&d(&layout.layer_digest)));
    assert_untouched(&store);
}

#[test]
fn missing_layer_is_named_and_nothing_tagged() {
    let tmp = tempfile::tempdir().unwrap();
    // Legacy: manifest.json names a layer file the archive lacks.
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let (tarball, _, _) = legacy_tar(&small_layer());
    let mut a = tar::Archive::new(tarball.as_slice());
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("bbbb/layer.tar") {
            continue;
        }
        let h = e.header().clone();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        b.append(&h, buf.as_slice()).unwrap();
    }
    let err = archive::load(&store, b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains("bbbb/layer.tar"), "{err}");
    assert_untouched(&store);

    // OCI: the manifest's layer blob is absent from the archive.
    let layout = fixture(&tmp.path().join("img"), "busybox:latest");
    std::fs::remove_file(layout.blob_path(&layout.layer_digest)).unwrap();
    let err = archive::load(&store, tar_dir(&layout.dir).as_slice()).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains(&layout.layer_digest), "{err}");
    assert_untouched(&store);
    // And from a directory.
    let err = archive::import_oci_layout(&store, &layout.dir).unwrap_err();
    assert!(err.to_string().contains(&layout.layer_digest), "{err}");
    assert_untouched(&store);
}

#[test]
fn dotdot_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b");
    let store = Store::open(&root.join("store")).unwrap();
    let evil = b"evil".to_vec();
    let hex = sha256_hex(&evil);
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, &format!("../../../blobs/sha256/{hex}"), &evil);
    raw_entry(&mut b, "../../escape", &evil);
    let err = archive::load(&store, b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains(".."), "{err}");
    assert!(store.content.list().unwrap().is_empty(), "nothing in blobs");
    assert!(!tmp.path().join("escape").exists());
    assert!(!tmp.path().join("a/escape").exists());
    assert_untouched(&store);

    // A valid blob before the hostile entry: ingested, but no image, and GC removes it.
    let mut b = tar::Builder::new(Vec::new());
    file_entry(&mut b, &format!("blobs/sha256/{hex}"), &evil);
    raw_entry(&mut b, "blobs/../../x", &evil);
    let err = archive::load(&store, b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(err.to_string().contains("blobs/../../x"), "{err}");
    assert_untouched(&store);
    let report = gc::collect(&store).unwrap();
    assert_eq!(report.blobs_removed, 1);
    assert!(store.content.list().unwrap().is_empty());

    // Symlinks leaving the archive are refused too.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "aaaa/layer.tar", "../../../etc/passwd")
        .unwrap();
    let err = archive::load(&store, b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(err.to_string().contains("leaves the archive"), "{err}");
}

#[test]
fn oversized_manifest_and_garbage_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    file_entry(&mut b, "index.json", &vec![b' '; (4 << 20) + 1]);
    let err = archive::load(&store, b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
    assert!(err.to_string().contains("index.json"), "{err}");

    // An oversized manifest blob: ingested (it is a valid blob) but refused as a manifest.
    let layout = fixture(&tmp.path().join("img"), "busybox:latest");
    let big = {
        let mut v =
            b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}"
                .to_vec();
        v.extend(std::iter::repeat_n(b' ', 4 << 20));
        v
    };
    let bd = Digest::of(&big);
    std::fs::write(layout.dir.join("blobs/sha256").join(bd.hex()), &big).unwrap();
    let ix = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": bd.to_string(), "size": big.len(),
        "annotations": {image::ANNOTATION_REF_NAME: "busybox:latest"}}]});
    std::fs::write(layout.dir.join("index.json"), ix.to_string()).unwrap();
    let err = archive::load(&store, tar_dir(&layout.dir).as_slice()).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
    assert_untouched(&store);

    let err = archive::load(&store, &b"this is not a tarball at all"[..]).unwrap_err();
    assert_eq!(err.kind(), berth_store::ErrorKind::InvalidArgument, "{err}");
    let err = archive::load(&store, &b""[..]).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert_untouched(&store);
}

#[test]
fn nested_index_selects_the_host_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&tmp.path().join("img"));
    // A multi-platform index: a foreign platform whose blobs are absent, then the host's.
    let other = if host_oci_arch() == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let inner = json!({
        "schemaVersion": 2, "mediaType": image::OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": Digest::of(b"absent").to_string(), "size": 6,
             "platform": {"os": "linux", "architecture": other}},
            {"mediaType": OCI_MANIFEST, "digest": layout.manifest_digest, "size": layout.manifest_size,
             "platform": {"os": "linux", "architecture": host_oci_arch()}}
        ]
    });
    let inner_bytes = serde_json::to_vec(&inner).unwrap();
    let inner_digest = Digest::of(&inner_bytes);
    std::fs::write(
        layout.dir.join("blobs/sha256").join(inner_digest.hex()),
        &inner_bytes,
    )
    .unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": image::OCI_INDEX, "digest": inner_digest.to_string(), "size": inner_bytes.len(),
        "annotations": {image::ANNOTATION_CONTAINERD_NAME: "busybox:multi"}}]});
    std::fs::write(layout.dir.join("index.json"), top.to_string()).unwrap();

    let store = Store::open(&tmp.path().join("store")).unwrap();
    let loaded = archive::import_oci_layout(&store, &layout.dir).unwrap();
    let m = d(&layout.manifest_digest);
    assert_eq!(
        loaded,
        vec![Loaded {
            name: Some("docker.io/library/busybox:multi".into()),
            manifest: m
        }]
    );
    let rec = store.db().unwrap().image(&m).unwrap().unwrap();
    assert_eq!(rec.index, Some(inner_digest));
    assert_fixture_image(&store, &layout, &m);
    assert_verified(&store, &inner_digest);
    // GC keeps the index blob (the image record names it).
    gc::collect(&store).unwrap();
    assert!(store.content.exists(&inner_digest));
}
