//! Snapshots: chain IDs, unpacking an image's layers (the busybox OCI layout fixture),
//! verification of diff IDs, and crash/failure safety of the temp area.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use berth_store::snapshot::{chain_ids, unpack_layers, Snapshots};
use berth_store::unpack::{Compression, Limits};
use berth_store::{Digest, Error};

/// A one-file tar (ustar, built by hand).
fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn reader(data: Vec<u8>) -> Box<dyn Read + Send> {
    Box::new(std::io::Cursor::new(data))
}

/// Unfinished snapshots in tmp/ (their `.lock` files, which a crash leaves too, counted with them).
fn tmp_entries(root: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

#[test]
fn chain_ids_follow_the_image_spec() {
    let a = Digest::of(b"layer a");
    let b = Digest::of(b"layer b");
    let c = Digest::of(b"layer c");
    let ids = chain_ids(&[a, b, c]);
    assert_eq!(ids[0], a);
    let ab = Digest::of(format!("{a} {b}").as_bytes());
    assert_eq!(ids[1], ab);
    assert_eq!(ids[2], Digest::of(format!("{ab} {c}").as_bytes()));
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn busybox_fixture_unpacks_into_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = berth_tests::image::oci_image_layout(&tmp.path().join("layout"));
    let blob = std::fs::read(layout.blob_path(&layout.layer_digest)).unwrap();
    let diff_id = Digest::parse(&layout.diff_id).unwrap();
    let snaps = Snapshots::open(&tmp.path().join("snapshots")).unwrap();
    let comp = Compression::from_media_type(berth_tests::image::MEDIA_LAYER_GZIP).unwrap();
    let opened = Cell::new(0);
    let open = |i: usize| {
        assert_eq!(i, 0);
        opened.set(opened.get() + 1);
        Ok(reader(blob.clone()))
    };
    let chain = unpack_layers(&snaps, &[(comp, diff_id)], open, &Limits::default()).unwrap();
    assert_eq!(chain, vec![diff_id]);
    assert!(snaps.exists(&diff_id));
    let busybox = snaps.fs_path(&diff_id).join("bin/busybox");
    let m = std::fs::metadata(&busybox).unwrap();
    assert!(m.is_file() && m.len() > 0, "bin/busybox missing or empty");
    assert_eq!(snaps.list().unwrap(), vec![diff_id]);
    assert_eq!(
        snaps.lowerdirs(&chain).unwrap(),
        vec![snaps.fs_path(&diff_id)]
    );
    assert!(tmp_entries(&tmp.path().join("snapshots")).is_empty());

    // A second unpack finds the chain and doesn't open the layer again.
    let open2 = |_: usize| -> berth_store::Result<Box<dyn Read + Send>> {
        panic!("layer reopened although its snapshot exists")
    };
    unpack_layers(&snaps, &[(comp, diff_id)], open2, &Limits::default()).unwrap();
    assert_eq!(opened.get(), 1);
}

#[test]
fn multi_layer_chain_and_lowerdirs_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("snapshots");
    let snaps = Snapshots::open(&root).unwrap();
    let l0 = one_file_tar("a", b"zero");
    let l1 = one_file_tar("b", b"one");
    let layers = [
        (Compression::Gzip, Digest::of(&l0)),
        (Compression::None, Digest::of(&l1)),
    ];
    let blobs = [gzip(&l0), l1.clone()];
    let chain = unpack_layers(
        &snaps,
        &layers,
        |i| Ok(reader(blobs[i].clone())),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(chain, chain_ids(&[layers[0].1, layers[1].1]));
    let lower = snaps.lowerdirs(&chain).unwrap();
    assert_eq!(
        lower,
        vec![snaps.fs_path(&chain[1]), snaps.fs_path(&chain[0])]
    );
    assert_eq!(std::fs::read(lower[0].join("b")).unwrap(), b"one");
    assert_eq!(std::fs::read(lower[1].join("a")).unwrap(), b"zero");
    let mut want = chain.clone();
    want.sort_by_key(|d| d.hex());
    assert_eq!(snaps.list().unwrap(), want);

    snaps.remove(&chain[1]).unwrap();
    assert!(!snaps.exists(&chain[1]));
    assert!(matches!(snaps.lowerdirs(&chain), Err(Error::NotFound(_))));
    assert!(matches!(snaps.remove(&chain[1]), Err(Error::NotFound(_))));
    assert!(tmp_entries(&root).is_empty());
}

#[test]
fn diff_id_mismatch_is_never_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("snapshots");
    let snaps = Snapshots::open(&root).unwrap();
    let tar = one_file_tar("a", b"real");
    let claimed = Digest::of(b"something else");
    let r = unpack_layers(
        &snaps,
        &[(Compression::None, claimed)],
        |_| Ok(reader(tar.clone())),
        &Limits::default(),
    );
    match r {
        Err(Error::Verification(m)) => {
            assert!(
                m.contains("layer 0") && m.contains(&claimed.to_string()),
                "{m}"
            )
        }
        other => panic!("expected a verification error, got {other:?}"),
    }
    assert!(!snaps.exists(&claimed));
    assert!(snaps.list().unwrap().is_empty());
    assert!(tmp_entries(&root).is_empty(), "temp snapshot left behind");
}

#[test]
fn failing_layer_leaves_nothing_and_open_cleans_crash_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("snapshots");
    let snaps = Snapshots::open(&root).unwrap();
    let good = one_file_tar("a", b"good");
    let bad = gzip(&one_file_tar("b", &[1u8; 100_000]));
    let truncated = bad[..bad.len() / 2].to_vec();
    let layers = [
        (Compression::None, Digest::of(&good)),
        (
            Compression::Gzip,
            Digest::of(&one_file_tar("b", &[1u8; 100_000])),
        ),
    ];
    let blobs = [good.clone(), truncated];
    let r = unpack_layers(
        &snaps,
        &layers,
        |i| Ok(reader(blobs[i].clone())),
        &Limits::default(),
    );
    let e = r.unwrap_err();
    assert!(e.to_string().contains("layer 1"), "{e}");
    let chain = chain_ids(&[layers[0].1, layers[1].1]);
    assert!(
        snaps.exists(&chain[0]),
        "the good lower layer stays committed"
    );
    assert!(!snaps.exists(&chain[1]));
    assert_eq!(snaps.list().unwrap(), vec![chain[0]]);
    assert!(tmp_entries(&root).is_empty());

    // An unpack in progress (its Prepared alive) is left alone by `open`...
    let live = snaps.prepare().unwrap();
    Snapshots::open(&root).unwrap();
    assert!(live.dir().exists(), "open removed work in progress");
    drop(live);
    // ...but a crash mid-unpack (a child process that dies with its temp dir never dropped)
    // leaves a leftover that `open` removes.
    // SAFETY: the child only does file operations and then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = (|| -> Option<()> {
            let p = snaps.prepare().ok()?;
            std::fs::write(p.dir().join("partial"), b"x").ok()?;
            // A read-only dir with content (as layers have) must not block the cleanup.
            std::fs::create_dir(p.dir().join("ro")).ok()?;
            std::fs::write(p.dir().join("ro/f"), b"f").ok()?;
            std::fs::set_permissions(p.dir().join("ro"), std::fs::Permissions::from_mode(0o555))
                .ok()?;
            std::mem::forget(p);
            Some(())
        })()
        .map_or(1, |_| 0);
        // SAFETY: leave the forked child without running destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(status, 0, "child failed to prepare");
    assert_eq!(tmp_entries(&root).len(), 1);
    let snaps = Snapshots::open(&root).unwrap();
    assert!(tmp_entries(&root).is_empty(), "leftover not cleaned");
    let all: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().collect();
    assert!(all.is_empty(), "lock files left: {all:?}");
    assert_eq!(snaps.list().unwrap(), vec![chain[0]]);
}

#[test]
fn concurrent_commit_of_the_same_chain_keeps_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("snapshots");
    let snaps = Snapshots::open(&root).unwrap();
    let id = Digest::of(b"chain");
    let a = snaps.prepare().unwrap();
    let b = snaps.prepare().unwrap();
    std::fs::write(a.dir().join("who"), b"first").unwrap();
    std::fs::write(b.dir().join("who"), b"second").unwrap();
    snaps.commit(a, &id).unwrap();
    snaps.commit(b, &id).unwrap();
    assert_eq!(
        std::fs::read(snaps.fs_path(&id).join("who")).unwrap(),
        b"first"
    );
    assert!(tmp_entries(&root).is_empty());
}
