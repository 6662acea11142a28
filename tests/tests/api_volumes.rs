//! Volumes through the Docker Engine API, driven by the real docker CLI (and raw HTTP for error
//! shapes) against berthd on a temp data root and socket.
//!
//! berthd is found as `$BERTHD`, else `$CARGO_TARGET_DIR/{debug,release}/berthd`, else
//! `<workspace>/target/{debug,release}/berthd` (run `cargo build -p berthd` first).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::{message, Berthd};
use berth_tests::require_root;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn volume_create_inspect_ls_rm() {
    if !require_root("volume_create_inspect_ls_rm") {
        return;
    }
    let d = Berthd::start();
    assert_eq!(
        d.ok(&["volume", "create", "--label", "app=web", "--label", "tier", "data1"])
            .trim(),
        "data1"
    );
    // Idempotent, like Docker.
    assert_eq!(d.ok(&["volume", "create", "data1"]).trim(), "data1");
    let v = json(&d.ok(&["volume", "inspect", "data1"]));
    let v = &v[0];
    assert_eq!(v["Name"], "data1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["app"], "web");
    assert_eq!(v["Labels"]["tier"], "");
    let mp = v["Mountpoint"].as_str().unwrap();
    assert_eq!(
        std::path::Path::new(mp),
        d.data_root().join("volumes/data1/_data")
    );
    assert!(std::path::Path::new(mp).is_dir());
    let created = v["CreatedAt"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert!(d.data_root().join("volumes/metadata.db").is_file());

    // An unnamed volume gets a 64-hex name.
    let anon = d.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    assert!(anon.bytes().all(|b| b.is_ascii_hexdigit()));

    d.ok(&["volume", "create", "--label", "app=db", "other"]);
    let all = d.ok(&["volume", "ls", "-q"]);
    assert_eq!(lines(&all), lines(&format!("{anon}\ndata1\nother")));
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "label=app=web"])
            .trim(),
        "data1"
    );
    assert_eq!(
        lines(&d.ok(&["volume", "ls", "-q", "--filter", "label=app"])),
        ["data1", "other"]
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "name=oth"]).trim(),
        "other"
    );
    assert_eq!(
        lines(&d.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])).len(),
        3
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "driver=nfs"])
            .trim(),
        ""
    );
    let e = d.fails(&["volume", "ls", "--filter", "bogus=1"]);
    assert!(e.contains("invalid filter 'bogus'"), "{e}");

    // Survives a daemon restart (state in SQLite).
    drop(d.ok(&["volume", "rm", "other"]));
    let mut d = d;
    d.kill9();
    d.spawn();
    assert_eq!(
        lines(&d.ok(&["volume", "ls", "-q"])),
        lines(&format!("{anon}\ndata1"))
    );
    assert_eq!(
        json(&d.ok(&["volume", "inspect", "data1"]))[0]["Labels"]["app"],
        "web"
    );

    d.ok(&["volume", "rm", "data1", &anon]);
    assert!(!d.data_root().join("volumes/data1").exists());
    let e = d.fails(&["volume", "rm", "data1"]);
    assert!(e.contains("no such volume"), "{e}");
    d.ok(&["volume", "rm", "-f", "data1"]);
    let e = d.fails(&["volume", "inspect", "nope"]);
    assert!(e.contains("get nope: no such volume"), "{e}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
fn volume_errors_have_docker_shape() {
    if !require_root("volume_errors_have_docker_shape") {
        return;
    }
    let d = Berthd::start();
    let e = d.fails(&["volume", "create", "bad/name"]);
    assert!(
        e.contains("includes invalid characters for a local volume name")
            && e.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"),
        "{e}"
    );
    let e = d.fails(&["volume", "create", "-d", "nfs", "v1"]);
    assert!(e.contains("\"nfs\""), "{e}");
    let e = d.fails(&["volume", "create", "--opt", "size=1g", "v1"]);
    assert!(e.contains("invalid option: \"size\""), "{e}");
    let e = d.fails(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/no/such/host/dir",
        "v1",
    ]);
    assert!(e.contains("/no/such/host/dir"), "{e}");
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).trim(),
        "",
        "nothing half-made"
    );

    let (status, body) = d.raw("GET", "/v1.45/volumes/nope", b"");
    assert_eq!(status, 404);
    assert_eq!(message(&body), "get nope: no such volume");
    let (status, body) = d.raw("POST", "/v1.45/volumes/create", br#"{"Name":"a"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.raw("POST", "/v1.45/volumes/create", br#"{"Name": 5}"#);
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).starts_with("invalid JSON"), "{body}");
    let (status, body) = d.raw(
        "POST",
        "/v1.45/volumes/create",
        br#"{"Name":"ok1","Labels":null,"DriverOpts":null}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["Name"], "ok1");
    let (status, body) = d.raw("GET", "/v1.45/volumes", b"");
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["Warnings"], serde_json::json!([]));
    assert_eq!(v["Volumes"][0]["Name"], "ok1");
    let (status, _) = d.raw("DELETE", "/v1.45/volumes/ok1", b"");
    assert_eq!(status, 204);
}

#[test]
fn volume_prune() {
    if !require_root("volume_prune") {
        return;
    }
    let d = Berthd::start();
    d.ok(&["volume", "create", "--label", "keep=yes", "named1"]);
    d.ok(&["volume", "create", "named2"]);
    // An anonymous volume, as `docker run -v /data` makes one (label set by the engine).
    let (status, body) = d.raw(
        "POST",
        "/v1.45/volumes/create",
        br#"{"Labels":{"com.docker.volume.anonymous":""}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let anon = json(&body)["Name"].as_str().unwrap().to_string();
    std::fs::write(
        d.data_root().join(format!("volumes/{anon}/_data/f")),
        b"0123456789",
    )
    .unwrap();

    // API >= 1.42: only anonymous volumes by default.
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon), "{out}");
    assert!(out.contains("Total reclaimed space: 10B"), "{out}");
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])), ["named1", "named2"]);

    let (status, body) = d.raw(
        "POST",
        "/v1.45/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%2C%22label!%22%3A%5B%22keep%3Dyes%22%5D%7D",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["VolumesDeleted"], serde_json::json!(["named2"]));
    assert_eq!(v["SpaceReclaimed"], 0);

    let out = d.ok(&["volume", "prune", "-af", "--filter", "label=keep"]);
    assert!(out.contains("named1"), "{out}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
    let e = d.fails(&["volume", "prune", "-f", "--filter", "until=1h"]);
    assert!(e.contains("invalid filter 'until'"), "{e}");
}

#[test]
fn volume_driver_opts_tmpfs() {
    if !require_root("volume_driver_opts_tmpfs") {
        return;
    }
    let d = Berthd::start();
    d.ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=100m,uid=1000",
        "tv",
    ]);
    let v = json(&d.ok(&["volume", "inspect", "tv"]));
    assert_eq!(v[0]["Options"]["type"], "tmpfs");
    assert_eq!(v[0]["Options"]["device"], "tmpfs");
    assert_eq!(v[0]["Options"]["o"], "size=100m,uid=1000");
    // Mounted when a container first uses it (not at create), so nothing is mounted yet.
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!(" {mp} ")), "mounted at create");
    d.ok(&["volume", "rm", "tv"]);
    assert!(!std::path::Path::new(&mp).exists());

    let e = d.fails(&["volume", "create", "--opt", "type=tmpfs", "t2"]);
    assert!(e.contains("\"device\""), "{e}");
}
