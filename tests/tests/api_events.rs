//! `GET /events` and `GET /system/df` driven by the real docker CLI (and raw HTTP) against
//! berthd. Images come from a loopback `docker-registry`; nothing leaves the machine.
//!
//! berthd is found as `$BERTHD`, else `$CARGO_TARGET_DIR/{debug,release}/berthd`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::{message, Berthd};
use berth_tests::services::Registry;
use berth_tests::{oci_image_layout, require_root};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The JSON lines of a raw (chunked) events answer.
fn event_lines(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn cli_since_until_shows_network_events() {
    if !require_root("cli_since_until_shows_network_events") {
        return;
    }
    let d = Berthd::start();
    let id = d.ok(&["network", "create", "ev1"]).trim().to_string();
    d.ok(&["network", "rm", "ev1"]);
    let until = (now() + 2).to_string();
    let started = Instant::now();
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=network",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}",
    ]);
    // The stream ends at `until`.
    assert!(started.elapsed() < Duration::from_secs(10));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        [
            format!("network create {id} ev1 bridge"),
            format!("network destroy {id} ev1 bridge")
        ],
        "{out}"
    );
    // A filter that matches nothing, and the event filter.
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=volume",
    ]);
    assert_eq!(out.trim(), "");
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=destroy",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(out.trim(), "destroy");
}

#[test]
fn cli_live_stream_json() {
    if !require_root("cli_live_stream_json") {
        return;
    }
    let d = Berthd::start();
    let mut child = d
        .docker_cmd(&["events", "--format", "{{json .}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Wait until the daemon has the listener (info counts them).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = d.ok(&["info", "--format", "{{.NEventsListener}}"]);
        if n.trim() == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "no events listener: {n}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = d.ok(&["network", "create", "live1"]).trim().to_string();
    let line = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    d.ok(&["network", "rm", "live1"]);
    let line = line.expect("no event line from `docker events`");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["Type"], "network", "{line}");
    assert_eq!(v["Action"], "create", "{line}");
    assert_eq!(v["Actor"]["ID"], id.as_str(), "{line}");
    assert_eq!(v["Actor"]["Attributes"]["name"], "live1", "{line}");
    assert_eq!(v["scope"], "local", "{line}");
    let t = v["time"].as_i64().unwrap();
    let tn = v["timeNano"].as_i64().unwrap();
    assert!((t - now() as i64).abs() < 60, "{line}");
    assert_eq!(tn / 1_000_000_000, t, "{line}");
}

#[test]
fn raw_filters_and_errors() {
    if !require_root("raw_filters_and_errors") {
        return;
    }
    let d = Berthd::start();
    d.ok(&["network", "create", "--label", "tier=db", "f1"]);
    d.ok(&["network", "create", "f2"]);
    d.ok(&["network", "rm", "f1", "f2"]);
    let until = now() + 1;
    let get = |filters: &str| {
        let path = format!(
            "/v1.45/events?since=0&until={until}&filters={}",
            filters
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('[', "%5B")
                .replace(']', "%5D")
                .replace(':', "%3A")
                .replace(',', "%2C")
                .replace('=', "%3D")
        );
        let (s, b) = d.raw("GET", &path, b"");
        assert_eq!(s, 200, "{b}");
        event_lines(&b)
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["Action"].as_str().unwrap(),
                    e["Actor"]["Attributes"]["name"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        get(r#"{"type":["network"]}"#),
        ["create f1", "create f2", "destroy f1", "destroy f2"]
    );
    assert_eq!(get(r#"{"network":["f2"]}"#), ["create f2", "destroy f2"]);
    assert_eq!(
        get(r#"{"event":["destroy"],"network":["f1"]}"#),
        ["destroy f1"]
    );
    assert_eq!(get(r#"{"label":["tier=db"]}"#), Vec::<String>::new());
    assert_eq!(get(r#"{"container":["f1"]}"#), Vec::<String>::new());
    assert_eq!(
        get(r#"{"scope":["local"],"event":["create"]}"#),
        ["create f1", "create f2"]
    );

    let (s, b) = d.raw(
        "GET",
        "/v1.45/events?filters=%7B%22colour%22%3A%5B%22x%22%5D%7D",
        b"",
    );
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("invalid filter 'colour'"), "{b}");
    let (s, b) = d.raw("GET", "/v1.45/events?since=yesterday", b"");
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("invalid since"), "{b}");
    let (s, b) = d.raw("GET", "/v1.45/events?since=20&until=10", b"");
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("before since"), "{b}");
}

#[test]
fn image_events_and_system_df() {
    if !require_root("image_events_and_system_df") {
        return;
    }
    let reg = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    reg.push_layout(&layout.dir, "test/busybox:latest");
    let d = Berthd::start();
    let image = format!("{}/test/busybox:latest", reg.host());

    // Empty daemon: the table prints, with zero images.
    let out = d.ok(&["system", "df"]);
    assert!(out.contains("TYPE") && out.contains("RECLAIMABLE"), "{out}");
    assert!(out.contains("Images"), "{out}");
    assert!(out.contains("Local Volumes"), "{out}");
    assert!(out.contains("Build Cache"), "{out}");

    d.ok(&["pull", &image]);
    let id = d.ok(&["image", "inspect", &image, "--format", "{{.Id}}"]);
    let id = id.trim().to_string();
    d.ok(&["tag", &image, "extra:1"]);
    d.ok(&["rmi", "extra:1"]);

    let json = d.ok(&["system", "df", "--format", "{{json .}}"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let images = rows.iter().find(|r| r["Type"] == "Images").unwrap();
    assert_eq!(images["TotalCount"], "1", "{json}");
    assert_eq!(images["Active"], "0", "{json}");
    assert_ne!(images["Size"], "0B", "{json}");
    let verbose = d.ok(&["system", "df", "-v"]);
    assert!(verbose.contains("test/busybox"), "{verbose}");
    assert!(verbose.contains("SHARED SIZE"), "{verbose}");
    let (s, b) = d.raw("GET", "/v1.45/system/df", b"");
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(v["LayersSize"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(v["Images"][0]["Id"], id.as_str(), "{b}");
    assert_eq!(v["Images"][0]["SharedSize"], 0, "{b}");
    assert_eq!(v["Images"][0]["Containers"], 0, "{b}");
    assert_eq!(v["BuildCache"], serde_json::json!([]), "{b}");
    let (s, b) = d.raw("GET", "/v1.45/system/df?type=image", b"");
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(
        v.get("Containers").is_none() && v.get("Images").is_some(),
        "{b}"
    );
    let (s, b) = d.raw("GET", "/v1.45/system/df?type=disks", b"");
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("\"disks\""), "{b}");

    // The image events, in order.
    let until = (now() + 1).to_string();
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        [
            format!("pull {image} {image}"),
            format!("tag {id} extra:1"),
            format!("untag {id} {id}"),
        ],
        "{out}"
    );
    // The legacy fields of image events.
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=tag",
        "--format",
        "{{json .}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["status"], "tag", "{out}");
    assert_eq!(v["id"], id.as_str(), "{out}");
    // Filter by image name.
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "image=extra",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(out.trim(), "tag", "{out}");
}

#[test]
fn container_events_info_counts_and_df() {
    if !require_root("container_events_info_counts_and_df") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let id = d
        .ok(&[
            "run", "-d", "--name", "ev-c", "--label", "app=x", "busybox", "sh", "-c", "exit 3",
        ])
        .trim()
        .to_string();
    let code = d.ok(&["wait", "ev-c"]);
    assert_eq!(code.trim(), "3");
    let running = d
        .ok(&["run", "-d", "--name", "ev-r", "busybox", "sleep", "300"])
        .trim()
        .to_string();

    let until = (now() + 1).to_string();
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=ev-c",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.exitCode}}",
    ]);
    let actions: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    for want in ["create", "start", "die"] {
        assert!(actions.contains(&want), "no {want} in {out}");
    }
    let die = out.lines().find(|l| l.contains(" die ")).unwrap();
    assert_eq!(die, format!("container die {id} 3"), "{out}");
    // Legacy fields and labels on the JSON, and the label and image filters.
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=die",
        "--filter",
        "label=app=x",
        "--filter",
        "image=busybox",
        "--format",
        "{{json .}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["status"], "die", "{out}");
    assert_eq!(v["id"], id.as_str(), "{out}");
    // The image as the user named it, like Docker.
    assert_eq!(v["from"], "busybox", "{out}");
    assert_eq!(v["Actor"]["Attributes"]["name"], "ev-c", "{out}");
    // By ID prefix, only that container's events.
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        &format!("container={}", &running[..12]),
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert!(!out.is_empty() && out.lines().all(|l| l == "ev-r"), "{out}");

    // info counts them.
    let counts = d.ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}",
    ]);
    assert_eq!(counts.trim(), "2 1 0 1");

    // df: both containers, the image used by two of them.
    let (s, b) = d.raw("GET", "/v1.45/system/df", b"");
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["Containers"].as_array().unwrap().len(), 2, "{b}");
    assert_eq!(v["Images"][0]["Containers"], 2, "{b}");
    let json = d.ok(&["system", "df", "--format", "{{json .}}"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let c = rows.iter().find(|r| r["Type"] == "Containers").unwrap();
    assert_eq!(c["TotalCount"], "2", "{json}");
    assert_eq!(c["Active"], "1", "{json}");
    let i = rows.iter().find(|r| r["Type"] == "Images").unwrap();
    assert_eq!(i["Active"], "1", "{json}");
    let verbose = d.ok(&["system", "df", "-v"]);
    assert!(
        verbose.contains("ev-c") && verbose.contains("ev-r"),
        "{verbose}"
    );
    d.ok(&["rm", "-f", "ev-c", "ev-r"]);
}

#[test]
fn health_status_events_match_by_prefix() {
    if !require_root("health_status_events_match_by_prefix") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "300",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = d.ok(&["inspect", "-f", "{{.State.Health.Status}}", "hc"]);
        if s.trim() == "healthy" {
            break;
        }
        assert!(Instant::now() < deadline, "never healthy: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let until = (now() + 1).to_string();
    // `health_status` alone matches `health_status: healthy`; other actions stay out.
    let out = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let got: Vec<&str> = out.lines().collect();
    assert!(!got.is_empty(), "no health_status events");
    assert!(
        got.iter().all(|l| *l == "health_status: healthy hc"),
        "{out}"
    );
    let exact = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=health_status: unhealthy",
    ]);
    assert_eq!(exact.trim(), "", "{exact}");
    d.ok(&["rm", "-f", "hc"]);
}
