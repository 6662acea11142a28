//! Berth's own engine features the desktop app relies on: berthd's pid file (how the app
//! stops the engine and sends it SIGHUP) and `GET /berth/pulls` (which endpoint — mirror or
//! registry — served each blob of a pull).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::{berthd_bin, Berthd};
use berth_tests::services::{free_port, Registry};
use berth_tests::{oci_image_layout, require_root};
use std::time::{Duration, Instant};

#[test]
fn pid_file_is_written_guards_the_exec_root_and_is_removed() {
    if !require_root("pid_file_is_written_guards_the_exec_root_and_is_removed") {
        return;
    }
    let mut d = Berthd::start();
    let pidfile = d.dir.path().join("run/berthd.pid");
    let text = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(text.trim(), d.pid().to_string());
    // A second berthd on the same exec root refuses to start, naming the file and the pid.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(berthd_bin())
        .arg("--data-root")
        .arg(other.path().join("data"))
        .arg("--exec-root")
        .arg(d.dir.path().join("run"))
        .arg("-H")
        .arg(format!("unix://{}", other.path().join("b.sock").display()))
        .arg("--config-file")
        .arg(other.path().join("none.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("berthd.pid") && err.contains(&d.pid().to_string()),
        "{err}"
    );
    // The running one is untouched, and removes its pid file on a clean stop.
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), text);
    unsafe { libc::kill(d.pid() as i32, libc::SIGTERM) };
    let child = d.child.as_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "berthd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pidfile.exists(), "pid file left behind");
    // A stale pid file (a dead pid) does not stop the next start.
    std::fs::write(&pidfile, "999999\n").unwrap();
    d.spawn();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        d.pid().to_string()
    );
}

#[test]
fn pulls_record_the_endpoint_that_served_each_blob() {
    if !require_root("pulls_record_the_endpoint_that_served_each_blob") {
        return;
    }
    // The mirror holds the image; the registry it mirrors is not even listening.
    let mirror = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    mirror.push_layout(&layout.dir, "team/app:v1");
    let upstream = format!("127.0.0.1:{}", free_port());
    let cfg = serde_json::json!({
        "registry-mirrors-by-host": {
            upstream.clone(): [format!("http://{}", mirror.host())]
        }
    });
    let d = Berthd::start_with_config(Some(&cfg.to_string()));
    let (s, body) = d.raw("GET", "/berth/pulls", b"");
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!([])
    );
    d.ok(&["pull", &format!("{upstream}/team/app:v1")]);
    let (s, body) = d.raw("GET", "/berth/pulls", b"");
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rec = &v[0];
    assert_eq!(
        rec["reference"],
        format!("{upstream}/team/app:v1"),
        "{body}"
    );
    assert!(
        rec["digest"].as_str().unwrap().starts_with("sha256:"),
        "{body}"
    );
    let blobs = rec["blobs"].as_array().unwrap();
    // manifest, config and the layer(s): every one from the mirror.
    assert!(blobs.len() >= 3, "{body}");
    for b in blobs {
        assert!(b[0].as_str().unwrap().starts_with("sha256:"), "{body}");
        assert!(
            b[1].as_str().unwrap().contains(&mirror.host()),
            "served by {} not the mirror: {body}",
            b[1]
        );
    }
    // A second pull of the same image downloads nothing new: the record says so.
    d.ok(&["pull", &format!("{upstream}/team/app:v1")]);
    let (_, body) = d.raw("GET", "/berth/pulls", b"");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{body}");
    assert!(
        v[0]["blobs"].as_array().unwrap().len() < blobs.len(),
        "{body}"
    );
}
