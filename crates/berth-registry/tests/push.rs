//! Push with our client to a real `docker-registry`, pull back, cross-check with skopeo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_registry::{
    Client, Digest, DirSink, DirSource, Platform, Progress, Reference, RegistryConfig,
};
use common::*;
use std::process::Command;

fn collect(mut rx: tokio::sync::mpsc::UnboundedReceiver<Progress>) -> Vec<Progress> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_monolithic_chunked_and_mounted_then_pull_back() {
    let (_f, layout) = fixture();
    let reg = Registry::start(None, None).await;
    let manifest = layout_blob(&layout.dir, &layout.manifest_digest).unwrap();
    let media = "application/vnd.oci.image.manifest.v1+json";
    let layer = Digest::parse(&layout.layer_digest).unwrap();

    // Monolithic upload.
    let c = Client::new(RegistryConfig::default()).unwrap();
    let r = Reference::parse_normalized(&format!("{}/pushed/mono:v1", reg.host())).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let src = DirSource::new(&layout.dir);
    let digest = c.push(&r, &src, &manifest, media, tx).await.unwrap();
    assert_eq!(digest.to_string(), layout.manifest_digest);
    let ev = collect(rx);
    assert!(
        ev.contains(&Progress::Done {
            digest: layer,
            endpoint: reg.url()
        }),
        "{ev:?}"
    );

    // Pushing again finds every blob present.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    c.push(&r, &src, &manifest, media, tx).await.unwrap();
    assert!(collect(rx).contains(&Progress::Exists { digest: layer }));

    // Chunked upload (chunks smaller than the layer).
    let cfg = RegistryConfig {
        push_chunk_size: layout.layer_size / 3 + 1,
        ..RegistryConfig::default()
    };
    assert!(
        layout.layer_size > 3,
        "the fixture layer spans several chunks"
    );
    let chunked = Client::new(cfg).unwrap();
    let r2 = Reference::parse_normalized(&format!("{}/pushed/chunked:v1", reg.host())).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    chunked.push(&r2, &src, &manifest, media, tx).await.unwrap();
    let ev = collect(rx);
    assert!(
        ev.iter()
            .filter(|e| matches!(e, Progress::Uploading { digest, .. } if *digest == layer))
            .count()
            >= 3,
        "layer uploaded in chunks: {ev:?}"
    );

    // Cross-repository mount from the first repository.
    let r3 = Reference::parse_normalized(&format!("{}/pushed/mounted:v1", reg.host())).unwrap();
    let mut msrc = DirSource::new(&layout.dir);
    msrc.mount_from = Some("pushed/mono".into());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    c.push(&r3, &msrc, &manifest, media, tx).await.unwrap();
    let ev = collect(rx);
    assert!(
        ev.contains(&Progress::Mounted {
            digest: layer,
            from: "pushed/mono".into()
        }),
        "{ev:?}"
    );

    // Pull each back by digest with our client: every blob verified and byte-identical.
    for repo in ["pushed/mono", "pushed/chunked", "pushed/mounted"] {
        let (_s, root) = sink_dir();
        let sink = DirSink::new(&root).unwrap();
        let pr = Reference::parse_normalized(&format!(
            "{}/{repo}@{}",
            reg.host(),
            layout.manifest_digest
        ))
        .unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let res = c.pull(&pr, &Platform::host(), &sink, tx).await.unwrap();
        assert_eq!(res.manifest_bytes, manifest, "{repo}");
        assert_eq!(
            sink.read(&layer).unwrap(),
            layout_blob(&layout.dir, &layout.layer_digest).unwrap(),
            "{repo}"
        );
    }

    // skopeo agrees on the tag's digest.
    for repo in ["pushed/mono:v1", "pushed/chunked:v1", "pushed/mounted:v1"] {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/{repo}", reg.host()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], layout.manifest_digest, "{repo}");
        assert_eq!(v["Layers"][0], layout.layer_digest, "{repo}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_refuses_corrupt_local_blobs_and_bad_media_types() {
    let (_f, layout) = fixture();
    let reg = Registry::start(None, None).await;
    let manifest = layout_blob(&layout.dir, &layout.manifest_digest).unwrap();
    let hex = layout.layer_digest.trim_start_matches("sha256:");
    let p = layout.dir.join("blobs/sha256").join(hex);
    let mut data = std::fs::read(&p).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&p, &data).unwrap();
    let c = Client::new(RegistryConfig::default()).unwrap();
    let r = Reference::parse_normalized(&format!("{}/pushed/bad:v1", reg.host())).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let e = c
        .push(
            &r,
            &DirSource::new(&layout.dir),
            &manifest,
            "application/vnd.oci.image.manifest.v1+json",
            tx.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, berth_registry::Error::Verification(_)), "{e}");
    assert!(e.to_string().contains(&layout.layer_digest), "{e}");
    // The registry never got the manifest.
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let res = c.pull(&r, &Platform::host(), &sink, tx.clone()).await;
    assert!(
        matches!(res, Err(berth_registry::Error::NotFound(_))),
        "{:?}",
        res.err()
    );

    let e = c
        .push(
            &r,
            &DirSource::new(&layout.dir),
            &manifest,
            "application/x-foo",
            tx,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, berth_registry::Error::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("application/x-foo"), "{e}");
}
