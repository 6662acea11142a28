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

/// `sha256:<hex>` of the manifest (or index) the registry serves for `image`: the digest a
/// RepoDigest must name.
fn registry_digest(image: &str) -> String {
    use sha2::Digest as _;
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect {image}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    format!("sha256:{:x}", sha2::Sha256::digest(&o.stdout))
}

/// The image's `RepoDigests`, as inspect reports them.
fn repo_digests(d: &Berthd, image: &str) -> Vec<String> {
    let out = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        image,
    ]);
    serde_json::from_str(out.trim()).unwrap()
}

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
    let served = registry_digest(&image);
    assert!(out.contains(&format!("Digest: {served}")), "{out}");
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
    assert_eq!(digests.trim(), served, "{digests}");

    // inspect, by name and by short ID
    let inspect = d.ok(&["image", "inspect", &image]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let img = &v[0];
    let id = img["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with(&format!("sha256:{short_id}")), "{id}");
    assert_eq!(img["RepoTags"][0], image.as_str());
    assert_eq!(
        img["RepoDigests"],
        serde_json::json!([format!("{repo}@{served}")])
    );
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
    let pushed_digest = registry_digest(&pushed);
    assert!(
        out.contains(&format!("v2: digest: {pushed_digest}")),
        "{out}"
    );
    let pushed_repo = format!("{}/test/pushed", reg.host());
    assert_eq!(
        repo_digests(&d, &image),
        [
            format!("{repo}@{served}"),
            format!("{pushed_repo}@{pushed_digest}")
        ]
    );
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{pushed}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The repository's last tag takes its digest along (Docker's rule).
    let out = d.ok(&["rmi", &pushed]);
    assert!(out.contains(&format!("Untagged: {pushed}")), "{out}");
    assert!(
        out.contains(&format!("Untagged: {pushed_repo}@{pushed_digest}")),
        "{out}"
    );
    assert_eq!(repo_digests(&d, &image), [format!("{repo}@{served}")]);

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
    assert!(out.contains(&format!("Untagged: {repo}@{served}")), "{out}");
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
    // A loaded image came from no registry: no RepoDigests, and no lookup by repo@digest.
    assert!(repo_digests(&d, &image).is_empty());
    let err = d.fails(&["image", "inspect", &format!("{repo}@{served}")]);
    assert!(err.contains("No such image"), "{err}");

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

/// `docker build` with the classic builder, asserting success.
fn build(d: &Berthd, args: &[&str]) {
    let o = d
        .docker_cmd(&["build"])
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker build {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// RepoDigests name only what a registry has: a pull records the digest it served, a push the
/// digest it accepted; a build or a tag records none; `repo@digest` resolves only as recorded.
#[test]
fn repo_digests_are_what_the_registry_has() {
    if !require_root("repo_digests_are_what_the_registry_has") {
        return;
    }
    let (reg, _layout) = registry_with_busybox();
    let d = Berthd::start();
    let h = reg.host();

    // Pulled: repo@<the digest the registry serves>, also by digest.
    let src = format!("{h}/test/busybox:latest");
    d.ok(&["pull", &src]);
    let served = registry_digest(&src);
    let src_digest = format!("{h}/test/busybox@{served}");
    assert_eq!(repo_digests(&d, &src), vec![src_digest.clone()]);
    let out = d.ok(&["pull", &src_digest]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {src_digest}")),
        "{out}"
    );
    let src_id = d.ok(&["image", "inspect", "--format", "{{.Id}}", &src]);
    let by_digest = d.ok(&["image", "inspect", "--format", "{{.Id}}", &src_digest]);
    assert_eq!(by_digest, src_id);

    // Built: none, also in the list.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {src}\nCOPY hello.txt /hello.txt\nLABEL built=yes\n"),
    )
    .unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello\n").unwrap();
    build(&d, &["-t", "built:1", ctx.path().to_str().unwrap()]);
    assert!(repo_digests(&d, "built:1").is_empty());
    let list = d.ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Digest}}",
        "built",
    ]);
    assert_eq!(list.trim(), "built:1 <none>");

    // Tagged into a registry repository: still none.
    let x = format!("{h}/test/x:1");
    d.ok(&["tag", "built:1", &x]);
    assert!(repo_digests(&d, &x).is_empty());

    // Pushed: repo@<what the registry now serves>, the digest the push printed.
    let out = d.ok(&["push", &x]);
    let pushed = registry_digest(&x);
    assert!(
        out.contains(&format!("1: digest: {pushed} size: ")),
        "{out}"
    );
    let x_digest = format!("{h}/test/x@{pushed}");
    assert_eq!(repo_digests(&d, "built:1"), vec![x_digest.clone()]);

    // Tagged into another repository: that one gets none; `repo@digest` of a repository the
    // digest was never recorded for is no name of the image.
    let y = format!("{h}/test/y:1");
    d.ok(&["tag", &x, &y]);
    assert_eq!(repo_digests(&d, &y), vec![x_digest.clone()]);
    let rows = d.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Digest}}",
    ]);
    let mut rows: Vec<&str> = rows.lines().collect();
    rows.sort();
    let mut want = vec![
        "built:1 <none>".to_string(),
        format!("{h}/test/busybox:latest {served}"),
        format!("{h}/test/x:1 {pushed}"),
        format!("{h}/test/y:1 <none>"),
    ];
    want.sort();
    assert_eq!(rows, want);
    let built_id = d.ok(&["image", "inspect", "--format", "{{.Id}}", "built:1"]);
    let by_digest = d.ok(&["image", "inspect", "--format", "{{.Id}}", &x_digest]);
    assert_eq!(by_digest, built_id);
    let err = d.fails(&["image", "inspect", &format!("{h}/test/y@{pushed}")]);
    assert!(err.contains("No such image"), "{err}");

    // rmi: a repository without digests untags only its tag; the repository's last tag takes
    // its recorded digest along; the image stays while built:1 names it.
    let out = d.ok(&["rmi", &y]);
    assert_eq!(out.trim(), format!("Untagged: {y}"));
    let out = d.ok(&["rmi", &x]);
    assert_eq!(
        out.trim(),
        format!("Untagged: {x}\nUntagged: {x_digest}"),
        "{out}"
    );
    assert!(repo_digests(&d, "built:1").is_empty());
    let err = d.fails(&["image", "inspect", &x_digest]);
    assert!(err.contains("No such image"), "{err}");

    // The pulled image's last tag: its recorded digest is untagged, then the image deleted.
    d.ok(&["rmi", "built:1"]);
    let out = d.ok(&["rmi", &src]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("Untagged: {src}").as_str(),
            format!("Untagged: {src_digest}").as_str()
        ],
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("Deleted: {}", src_id.trim())),
        "{out}"
    );

    // Pulled by digest only: a RepoDigest and no tag; rmi by that digest removes it all.
    d.ok(&["pull", &src_digest]);
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["image", "inspect", &src_digest])).unwrap();
    assert_eq!(v[0]["RepoTags"], serde_json::json!([]));
    assert_eq!(v[0]["RepoDigests"], serde_json::json!([src_digest.clone()]));
    let list = d.ok(&["images", "--format", "{{.Repository}} {{.Tag}}"]);
    assert_eq!(list.trim(), format!("{h}/test/busybox <none>"));
    let out = d.ok(&["rmi", &src_digest]);
    assert!(
        out.starts_with(&format!("Untagged: {src_digest}\nDeleted: ")),
        "{out}"
    );
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
}
