//! Content store: verification, permissions, exclusive ingest, crash recovery.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_store::content::ContentStore;
use berth_store::{Digest, Error};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn ingest_dir_entries(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn put_read_list_and_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(&tmp.path().join("content")).unwrap();
    let data = b"{\"schemaVersion\":2}";
    let d = cs.put(data, None).unwrap();
    assert_eq!(d, Digest::of(data));
    assert!(cs.exists(&d));
    assert_eq!(cs.size(&d).unwrap(), data.len() as u64);
    assert_eq!(
        cs.path(&d),
        tmp.path().join("content/blobs/sha256").join(d.hex())
    );
    let mode = std::fs::metadata(cs.path(&d)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    assert_eq!(cs.read_limited(&d, 1024).unwrap(), data);
    assert!(matches!(cs.read_limited(&d, 5), Err(Error::Limit(_))));
    // storing again is a no-op
    assert_eq!(cs.put(data, Some(&d)).unwrap(), d);
    assert_eq!(cs.list().unwrap(), vec![d]);

    // junk names in blobs/ are ignored
    std::fs::write(tmp.path().join("content/blobs/sha256/not-a-digest"), b"x").unwrap();
    assert_eq!(cs.list().unwrap(), vec![d]);

    cs.delete(&d).unwrap();
    assert!(!cs.exists(&d));
    cs.delete(&d).unwrap(); // idempotent
    let err = cs.open_blob(&d).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    assert!(err.to_string().contains(&d.to_string()), "{err}");
    assert!(matches!(cs.size(&d), Err(Error::NotFound(_))));
    assert!(ingest_dir_entries(cs.root()).is_empty());
}

#[test]
fn wrong_digest_is_refused_and_nothing_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("content");
    let cs = ContentStore::open(&root).unwrap();
    let claimed = Digest::of(b"the real thing");
    let mut ing = cs.ingest(&claimed, Some(8)).unwrap().unwrap();
    ing.write_all(b"tampered").unwrap();
    assert_eq!(ing.written(), 8);
    let err = ing.commit().unwrap_err();
    assert!(matches!(err, Error::Verification(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&claimed.to_string()), "{msg}");
    assert!(msg.contains(&Digest::of(b"tampered").to_string()), "{msg}");
    assert!(!cs.exists(&claimed));
    assert!(cs.list().unwrap().is_empty());
    assert!(
        ingest_dir_entries(&root).is_empty(),
        "{:?}",
        ingest_dir_entries(&root)
    );

    // put with a wrong expected digest
    let err = cs.put(b"other", Some(&claimed)).unwrap_err();
    assert!(matches!(err, Error::Verification(_)));
    assert!(cs.list().unwrap().is_empty());

    // the right content still goes in afterwards
    assert_eq!(cs.put(b"the real thing", Some(&claimed)).unwrap(), claimed);
}

#[test]
fn truncated_and_overlong_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("content");
    let cs = ContentStore::open(&root).unwrap();
    let data = b"0123456789";
    let d = Digest::of(data);

    let mut ing = cs.ingest(&d, Some(10)).unwrap().unwrap();
    ing.write_all(&data[..5]).unwrap();
    let err = ing.commit().unwrap_err();
    assert!(matches!(err, Error::Verification(_)), "{err}");
    assert!(
        err.to_string().contains("expected 10 bytes, got 5"),
        "{err}"
    );
    assert!(!cs.exists(&d));

    let mut ing = cs.ingest(&d, Some(4)).unwrap().unwrap();
    ing.write_all(b"0123").unwrap();
    let err = ing.write_all(b"4").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(ing.written(), 4);
    drop(ing); // Drop aborts
    assert!(!cs.exists(&d));
    assert!(ingest_dir_entries(&root).is_empty());

    // unknown size: digest alone decides
    let mut ing = cs.ingest(&d, None).unwrap().unwrap();
    ing.write_all(data).unwrap();
    assert_eq!(ing.commit().unwrap(), d);
    assert!(cs.exists(&d));
    assert!(cs.ingest(&d, None).unwrap().is_none());
}

/// Thread A ingests; thread B asks for the same digest while A holds it.
fn second_writer(commit_first: bool) -> Option<u64> {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(&tmp.path().join("content")).unwrap();
    let data = vec![7u8; 64 * 1024];
    let d = Digest::of(&data);
    let mut first = cs.ingest(&d, Some(data.len() as u64)).unwrap().unwrap();
    first.write_all(&data[..1000]).unwrap();
    assert_eq!(cs.ingests_in_progress().unwrap(), vec![d]);

    let (tx, rx) = mpsc::channel();
    let cs2 = cs.clone();
    let waiter = std::thread::spawn(move || {
        tx.send(()).unwrap();
        let got = cs2.ingest(&d, Some(64 * 1024)).unwrap();
        got.map(|mut ing| {
            ing.write_all(&vec![7u8; 64 * 1024]).unwrap();
            ing.commit().unwrap();
            1u64
        })
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "second writer must wait for the first"
    );
    if commit_first {
        first.write_all(&data[1000..]).unwrap();
        first.commit().unwrap();
    } else {
        first.abort();
    }
    let r = waiter.join().unwrap();
    assert!(cs.exists(&d));
    assert_eq!(cs.read_limited(&d, 1 << 20).unwrap(), data);
    assert!(cs.ingests_in_progress().unwrap().is_empty());
    r
}

#[test]
fn concurrent_ingest_of_one_digest_writes_once() {
    assert_eq!(
        second_writer(true),
        None,
        "second writer must see the committed blob"
    );
}

#[test]
fn concurrent_ingest_after_abort_takes_over() {
    assert_eq!(
        second_writer(false),
        Some(1),
        "second writer must get the ingest"
    );
}

const CHILD_ENV: &str = "BERTH_STORE_TEST_CHILD_ROOT";
const HALF: usize = 32 * 1024;

fn crash_data() -> Vec<u8> {
    (0..2 * HALF).map(|i| (i % 251) as u8).collect()
}

/// Helper run in a child process by `kill_9_mid_ingest`: writes half a blob, reports, waits
/// to be killed. In the normal test run (no env var) it checks nothing is set up and returns.
#[test]
fn child_half_ingest() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        assert!(std::env::var_os(CHILD_ENV).is_none());
        return;
    };
    let cs = ContentStore::open(Path::new(&root)).unwrap();
    let data = crash_data();
    let d = Digest::of(&data);
    let mut ing = cs.ingest(&d, Some(data.len() as u64)).unwrap().unwrap();
    ing.write_all(&data[..HALF]).unwrap();
    ing.flush().unwrap();
    // Straight to fd 1: println! would go to the test harness's capture.
    let mut out = std::io::stdout().lock();
    out.write_all(b"READY\n").unwrap();
    out.flush().unwrap();
    drop(out);
    std::thread::sleep(Duration::from_secs(30));
    // must never get here: the parent kills us
    std::process::exit(3);
}

#[test]
fn kill_9_mid_ingest_leaves_nothing_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("content");
    let data = crash_data();
    let d = Digest::of(&data);

    let mut child = spawn_half_writer(&root);
    // While the child lives: its ingest is visible as in progress (cross-process lock) and a
    // fresh open does not clean up its files.
    let cs = ContentStore::open(&root).unwrap();
    assert_eq!(cs.ingests_in_progress().unwrap(), vec![d]);
    assert!(ingest_dir_entries(&root).contains(&format!("{}.partial", d.hex())));
    assert!(!cs.exists(&d));

    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc_sigkill()));

    // Stale files remain until the next open, which removes them.
    assert!(!ingest_dir_entries(&root).is_empty());
    assert!(cs.ingests_in_progress().unwrap().is_empty());
    let cs = ContentStore::open(&root).unwrap();
    assert!(
        ingest_dir_entries(&root).is_empty(),
        "{:?}",
        ingest_dir_entries(&root)
    );
    assert!(!cs.exists(&d));
    assert!(cs.list().unwrap().is_empty());

    // A later ingest succeeds.
    let mut ing = cs.ingest(&d, Some(data.len() as u64)).unwrap().unwrap();
    ing.write_all(&data).unwrap();
    assert_eq!(ing.commit().unwrap(), d);
    assert_eq!(cs.read_limited(&d, 1 << 20).unwrap(), data);
}

fn libc_sigkill() -> i32 {
    9
}

#[test]
fn many_threads_one_digest_exactly_one_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(&tmp.path().join("content")).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let d = Digest::of(&data);
    let writers = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                if let Some(mut ing) = cs.ingest(&d, Some(data.len() as u64)).unwrap() {
                    writers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    for chunk in data.chunks(4096) {
                        ing.write_all(chunk).unwrap();
                    }
                    ing.commit().unwrap();
                }
                // whoever returns, the blob is there and complete
                assert_eq!(cs.size(&d).unwrap(), data.len() as u64);
            });
        }
    });
    assert_eq!(writers.into_inner(), 1);
    assert!(ingest_dir_entries(&tmp.path().join("content")).is_empty());
}

#[test]
fn streams_a_real_oci_layout_in() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = berth_tests::oci_image_layout(&tmp.path().join("layout"));
    let cs = ContentStore::open(&tmp.path().join("content")).unwrap();
    for (digest, size) in [
        (&layout.manifest_digest, layout.manifest_size),
        (&layout.config_digest, layout.config_size),
        (&layout.layer_digest, layout.layer_size),
    ] {
        let d = Digest::parse(digest).unwrap();
        let mut src = std::fs::File::open(layout.blob_path(digest)).unwrap();
        let mut ing = cs.ingest(&d, Some(size)).unwrap().unwrap();
        std::io::copy(&mut src, &mut ing).unwrap();
        assert_eq!(ing.commit().unwrap(), d);
        assert_eq!(cs.size(&d).unwrap(), size);
        assert_eq!(
            std::fs::read(cs.path(&d)).unwrap(),
            std::fs::read(layout.blob_path(digest)).unwrap()
        );
    }
    // The manifest is small enough to read whole; the layer is not, under a 1 KiB limit.
    let m = Digest::parse(&layout.manifest_digest).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&cs.read_limited(&m, 4 << 20).unwrap()).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], layout.layer_digest);
    let l = Digest::parse(&layout.layer_digest).unwrap();
    assert!(matches!(cs.read_limited(&l, 1024), Err(Error::Limit(_))));
    assert_eq!(cs.list().unwrap().len(), 3);
}

#[test]
fn another_process_waits_for_the_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("content");
    let data = crash_data();
    let d = Digest::of(&data);
    let mut child = spawn_half_writer(&root);
    let cs = ContentStore::open(&root).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let ing = cs.ingest(&d, Some(data.len() as u64)).unwrap();
            let mut ing = ing.expect("the killed writer did not commit: we must get the ingest");
            ing.write_all(&data).unwrap();
            ing.commit().unwrap()
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !waiter.is_finished(),
            "must wait while the other process writes"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(waiter.join().unwrap(), d);
    });
    assert_eq!(cs.read_limited(&d, 1 << 20).unwrap(), data);
    assert!(ingest_dir_entries(&root).is_empty());
}

/// Start `child_half_ingest` in a new process and wait until it has written half the blob.
fn spawn_half_writer(root: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_half_ingest",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("child exited before READY").unwrap();
        if line.trim_end().ends_with("READY") {
            break;
        }
    }
    child
}

#[test]
fn put_stream_stores_verified_blobs_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(&tmp.path().join("content")).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (d, size) = cs
        .put_stream(|w| {
            for chunk in data.chunks(4096) {
                w.write_all(chunk)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(d, Digest::of(&data));
    assert_eq!(size, data.len() as u64);
    assert_eq!(std::fs::read(cs.path(&d)).unwrap(), data);
    let mode = std::fs::metadata(cs.path(&d)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    // The same content again is a no-op; a failing writer stores nothing.
    assert_eq!(cs.put_stream(|w| w.write_all(&data)).unwrap().0, d);
    let err = cs.put_stream(|w| {
        w.write_all(b"half")?;
        Err(std::io::Error::other("source vanished"))
    });
    assert!(err.is_err());
    assert_eq!(cs.list().unwrap(), vec![d]);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("content/ingest"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
