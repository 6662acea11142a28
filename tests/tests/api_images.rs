//! The image half of the Docker Engine API, driven by the real docker CLI (and raw HTTP for
//! error shapes) against berthd on a temp data root and socket. Images come from a loopback
//! `docker-registry`; nothing is pulled from the internet.
//!
//! berthd is found as `$BERTHD`, else `$CARGO_TARGET_DIR/{debug,release}/berthd`, else
//! `<workspace>/target/{debug,release}/berthd` (run `cargo build -p berthd` first).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::{berthd_bin, message, Berthd};
use berth_tests::services::Registry;
use berth_tests::{oci_image_layout, require_root};

use std::process::Command;

fn registry_with_busybox() -> (Registry, tempfile::TempDir) {
    let reg = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    reg.push_layout(&layout.dir, "test/busybox:latest");
    (reg, layout_dir)
}

#[test]
fn version_and_info() {
    if !require_root("version_and_info") {
        return;
    }
    let d = Berthd::start();
    let v = d.ok(&["version"]);
    assert!(v.contains("Client:"), "{v}");
    assert!(v.contains("Server: Berth Engine"), "{v}");
    assert!(v.contains("API version:      1.45"), "{v}");
    let f = d.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
    ]);
    assert_eq!(f.trim(), "1.45 1.24");
    let o = d.docker(&["info"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "docker info: {out}\n{err}");
    assert!(
        !err.to_lowercase().contains("error"),
        "docker info stderr: {err}"
    );
    assert!(out.contains("Storage Driver: overlay2"), "{out}");
    assert!(
        out.contains(&format!(
            "Docker Root Dir: {}",
            d.dir.path().join("data").display()
        )),
        "{out}"
    );
    let i = d.ok(&["info", "--format", "{{.OSType}} {{.Images}} {{.NCPU}}"]);
    assert!(i.starts_with("linux 0 "), "{i}");
}

#[test]
fn config_mirrors_show_in_info_and_bad_config_fails() {
    if !require_root("config_mirrors_show_in_info_and_bad_config_fails") {
        return;
    }
    let d = Berthd::start_with_config(Some(
        r#"{"registry-mirrors": ["http://127.0.0.1:9/"], "unknown-key": 1, "log-level": "info"}"#,
    ));
    let out = d.ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert!(out.contains("http://127.0.0.1:9/"), "{out}");
    drop(d);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, "{not json").unwrap();
    let o = Command::new(berthd_bin())
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("-H")
        .arg(format!("unix://{}", dir.path().join("s.sock").display()))
        .arg("--config-file")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("daemon.json is not valid JSON"), "{err}");

    let o = Command::new(berthd_bin())
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("-H")
        .arg("tcp://0.0.0.0:2375")
        .arg("--config-file")
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refusing"), "{err}");
}

#[test]
fn docker_cli_image_lifecycle() {
    if !require_root("docker_cli_image_lifecycle") {
        return;
    }
    let (reg, _layout) = registry_with_busybox();
    let d = Berthd::start();
    let image = format!("{}/test/busybox:latest", reg.host());
    let repo = format!("{}/test/busybox", reg.host());

    // pull
    let out = d.ok(&["pull", &image]);
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    let again = d.ok(&["pull", &image]);
    assert!(again.contains("Status: Image is up to date"), "{again}");

    // images
    let list = d.ok(&["images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"]);
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("{repo} latest ")))
        .unwrap_or_else(|| panic!("{image} not listed:\n{list}"));
    let short_id = line.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(short_id.len(), 12, "{line}");
    let digests = d.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert!(digests.trim().starts_with("sha256:"), "{digests}");

    // inspect, by name and by short ID
    let inspect = d.ok(&["image", "inspect", &image]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let img = &v[0];
    let id = img["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with(&format!("sha256:{short_id}")), "{id}");
    assert_eq!(img["RepoTags"][0], image.as_str());
    assert!(img["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{repo}@sha256:")));
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert!(img["Config"]["Env"][0]
        .as_str()
        .unwrap()
        .starts_with("PATH="));
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(img["Size"].as_u64().unwrap() > 0);
    let by_id = d.ok(&["image", "inspect", "--format", "{{.Id}}", &short_id]);
    assert_eq!(by_id.trim(), id);
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &image,
    ]);
    assert!(hist.contains("berth-tests busybox fixture"), "{hist}");

    // tag
    d.ok(&["tag", &image, "mybox:v1"]);
    let tags = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(tags.lines().any(|l| l == "mybox:v1"), "{tags}");
    let o = d.docker(&["tag", &image, "Bad:Name"]);
    assert!(!o.status.success());

    // push a new name to the registry; it is there (skopeo reads it back)
    let pushed = format!("{}/test/pushed:v2", reg.host());
    d.ok(&["tag", &image, &pushed]);
    let out = d.ok(&["push", &pushed]);
    assert!(out.contains("v2: digest: sha256:"), "{out}");
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{pushed}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = d.ok(&["rmi", &pushed]);
    assert!(out.contains(&format!("Untagged: {pushed}")), "{out}");

    // rmi by ID with two repositories: conflict; then untag, then delete
    let o = d.docker(&["rmi", &short_id]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("conflict") && err.contains("must be forced"),
        "{err}"
    );
    let out = d.ok(&["rmi", "mybox:v1"]);
    assert!(out.contains("Untagged: mybox:v1"), "{out}");
    assert!(!out.contains("Deleted:"), "{out}");

    // save, rmi (deleted), load
    let tar = d.dir.path().join("busybox.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), &image]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 1000);
    let out = d.ok(&["rmi", &image]);
    assert!(out.contains(&format!("Untagged: {image}")), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    let list = d.ok(&["images", "-q"]);
    assert!(list.trim().is_empty(), "{list}");
    let o = d.docker(&["image", "inspect", &image]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No such image"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {image}")), "{out}");
    let by_id = d.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(by_id.trim(), id);

    // unknown tag: non-zero exit naming the reference
    let missing = format!("{repo}:nope");
    let o = d.docker(&["pull", &missing]);
    assert!(!o.status.success(), "pulling {missing} succeeded");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(all.contains(&missing), "{all}");

    // prune: untag leaves a dangling image, prune removes it
    d.ok(&["tag", &image, "other:1"]);
    d.ok(&["rmi", &image]);
    let out = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.trim(), "other:1");
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("deleted: {id}")), "{out}");
    let list = d.ok(&["images", "-q"]);
    assert!(list.trim().is_empty(), "{list}");
    let info = d.ok(&["info", "--format", "{{.Images}}"]);
    assert_eq!(info.trim(), "0");
}

#[test]
fn raw_errors_have_dockers_shape() {
    if !require_root("raw_errors_have_dockers_shape") {
        return;
    }
    let d = Berthd::start();
    let (s, b) = d.raw("GET", "/_ping", b"");
    assert_eq!((s, b.as_str()), (200, "OK"));
    let (s, b) = d.raw("GET", "/v1.45/nothing/here", b"");
    assert_eq!(s, 404);
    assert_eq!(message(&b), "page not found");
    let (s, b) = d.raw("GET", "/v1.99/version", b"");
    assert_eq!(s, 400);
    assert!(message(&b).contains("too new"), "{b}");
    let (s, b) = d.raw(
        "POST",
        "/v1.45/images/create?fromImage=Not%20A%20Ref!&tag=x",
        b"",
    );
    assert_eq!(s, 400);
    assert!(message(&b).contains("invalid reference format"), "{b}");
    let (s, b) = d.raw("GET", "/v1.45/images/json?filters=%7Bnot-json", b"");
    assert_eq!(s, 400);
    assert!(message(&b).contains("invalid filter"), "{b}");
    let (s, b) = d.raw("POST", "/v1.45/images/prune?filters=%5B1%5D", b"{bad json");
    assert_eq!(s, 400);
    assert!(message(&b).contains("invalid filter"), "{b}");
    let (s, b) = d.raw("GET", "/v1.45/images/nosuch:latest/json", b"");
    assert_eq!(s, 404);
    assert_eq!(message(&b), "No such image: nosuch:latest");
    let (s, b) = d.raw("DELETE", "/v1.45/images/nosuch", b"");
    assert_eq!(s, 404);
    assert!(message(&b).contains("No such image"), "{b}");
    let (s, b) = d.raw(
        "POST",
        "/v1.45/images/load",
        b"this is not a tarball at all",
    );
    assert_eq!(s, 400, "{b}");
    assert!(!message(&b).is_empty());
    let (s, b) = d.raw("GET", "/v1.45/images/search?term=x", b"");
    assert_eq!(s, 501);
    assert!(message(&b).contains("not supported"), "{b}");
    // berthd is still fine
    let (s, _) = d.raw("GET", "/version", b"");
    assert_eq!(s, 200);
}

#[test]
fn sighup_reloads_mirrors() {
    if !require_root("sighup_reloads_mirrors") {
        return;
    }
    let d = Berthd::start_with_config(Some(r#"{"registry-mirrors": ["http://127.0.0.1:1/"]}"#));
    let info = d.ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert!(info.contains("127.0.0.1:1"), "{info}");
    let cfg = d.dir.path().join("daemon.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["registry-mirrors"] = serde_json::json!(["http://127.0.0.1:2/"]);
    std::fs::write(&cfg, v.to_string()).unwrap();
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    let mut info = String::new();
    for _ in 0..50 {
        info = d.ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
        if info.contains("127.0.0.1:2") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        info.contains("127.0.0.1:2") && !info.contains("127.0.0.1:1/"),
        "{info}"
    );
    // A broken file keeps the settings in force, and the daemon keeps running.
    std::fs::write(&cfg, "{broken").unwrap();
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let info = d.ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert!(info.contains("127.0.0.1:2"), "{info}");
    assert!(d.log().contains("keeping the old registry settings"));
}
