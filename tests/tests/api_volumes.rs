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

// ---- Containers using volumes, docker cp / diff / export (need the container core). ----

fn daemon_with_busybox(test: &str) -> Option<Berthd> {
    if !require_root(test) {
        return None;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    Some(d)
}

#[test]
fn run_with_named_volume_populates_from_image_and_persists() {
    let Some(d) = daemon_with_busybox("run_with_named_volume_populates_from_image_and_persists")
    else {
        return;
    };
    d.ok(&["run", "--name", "p1", "-v", "pvol:/etc", "busybox", "true"]);
    let data = d.data_root().join("volumes/pvol/_data");
    let passwd = std::fs::read_to_string(data.join("passwd")).unwrap();
    assert!(passwd.contains("root:"), "{passwd}");
    // In use: refused with Docker's message naming the container.
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "p1"]).trim().to_string();
    let e = d.fails(&["volume", "rm", "pvol"]);
    assert!(
        e.contains(&format!("remove pvol: volume is in use - [{id}]")),
        "{e}"
    );
    let (status, body) = d.raw("DELETE", "/v1.45/volumes/pvol", b"");
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        lines(&d.ok(&["volume", "ls", "-q", "--filter", "dangling=false"])),
        ["pvol"]
    );
    d.ok(&["rm", "p1"]);
    // Still there after the container is gone, with what the container wrote.
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "pvol");
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "pvol:/x",
        "busybox",
        "sh",
        "-c",
        "echo kept > /x/mine; cat /x/passwd",
    ]);
    assert!(out.contains("root:"), "{out}");
    let out = d.ok(&["run", "--rm", "-v", "pvol:/y", "busybox", "cat", "/y/mine"]);
    assert_eq!(out.trim(), "kept");
    d.ok(&["volume", "rm", "pvol"]);
    assert!(!data.exists());
}

/// A file's content in a container, through `docker cp CTR:PATH -` (a tar on stdout).
fn cat(d: &Berthd, ctr: &str, path: &str) -> String {
    let o = d.docker(&["cp", &format!("{ctr}:{path}"), "-"]);
    assert!(
        o.status.success(),
        "docker cp {ctr}:{path} -: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut a = tar::Archive::new(&o.stdout[..]);
    let mut e = a.entries().unwrap().next().expect("an entry").unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    s
}

#[test]
fn cp_both_ways_and_no_escape_through_symlinks() {
    let Some(d) = daemon_with_busybox("cp_both_ways_and_no_escape_through_symlinks") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "-v",
        "cpvol:/data",
        "busybox",
        "sh",
        "-c",
        "ln -s / /escape; ln -s /etc /etclink; sleep 1000",
    ]);
    // Wait for the links.
    let mut ok = false;
    for _ in 0..100 {
        if d.docker(&["cp", "c1:/escape", "-"]).status.success() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ok, "the container did not create /escape");
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    std::fs::write(h.join("hello.txt"), b"hello from host").unwrap();
    std::fs::create_dir_all(h.join("tree/sub")).unwrap();
    std::fs::write(h.join("tree/sub/f"), b"deep").unwrap();
    std::os::unix::fs::symlink("sub/f", h.join("tree/link")).unwrap();

    // Host -> container, file and directory; back again.
    d.ok(&["cp", h.join("hello.txt").to_str().unwrap(), "c1:/tmp/"]);
    d.ok(&["cp", h.join("tree").to_str().unwrap(), "c1:/tmp/"]);
    let back = h.join("back");
    std::fs::create_dir(&back).unwrap();
    d.ok(&["cp", "c1:/tmp/hello.txt", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(back.join("hello.txt")).unwrap(),
        b"hello from host"
    );
    d.ok(&["cp", "c1:/tmp/tree", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(back.join("tree/sub/f")).unwrap(), b"deep");
    assert_eq!(
        std::fs::read_link(back.join("tree/link")).unwrap(),
        std::path::Path::new("sub/f")
    );
    // A container file comes out too.
    d.ok(&["cp", "c1:/etc/passwd", back.to_str().unwrap()]);
    assert!(std::fs::read_to_string(back.join("passwd"))
        .unwrap()
        .contains("root:"));

    // Through a container symlink to /: lands in the container's root, never the host's.
    let unique = format!("berth-cp-escape-{}.txt", std::process::id());
    std::fs::write(h.join(&unique), b"must stay in the container").unwrap();
    d.ok(&["cp", h.join(&unique).to_str().unwrap(), "c1:/escape/tmp/"]);
    assert!(
        !std::path::Path::new("/tmp").join(&unique).exists(),
        "docker cp wrote to the host's /tmp"
    );
    assert_eq!(
        cat(&d, "c1", &format!("/tmp/{unique}")),
        "must stay in the container"
    );
    // Into /etc through /etclink, and reading through /escape.
    d.ok(&["cp", h.join("hello.txt").to_str().unwrap(), "c1:/etclink/"]);
    assert_eq!(cat(&d, "c1", "/etc/hello.txt"), "hello from host");
    d.ok(&["cp", "c1:/escape/etc/hostname", back.to_str().unwrap()]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "c1"]).trim().to_string();
    assert!(
        id.starts_with(
            std::fs::read_to_string(back.join("hostname"))
                .unwrap()
                .trim()
        ),
        "the container's own /etc/hostname"
    );

    // Into the volume: the volume's directory on the host gets it.
    d.ok(&["cp", h.join("hello.txt").to_str().unwrap(), "c1:/data/"]);
    assert_eq!(
        std::fs::read(d.data_root().join("volumes/cpvol/_data/hello.txt")).unwrap(),
        b"hello from host"
    );

    // Errors in Docker's words.
    let e = d.fails(&["cp", "c1:/nope", back.to_str().unwrap()]);
    assert!(
        e.contains("Could not find the file /nope in container c1"),
        "{e}"
    );
    // The CLI stats the destination first; a missing directory is its own error, as with
    // Docker.
    let e = d.fails(&["cp", h.join("hello.txt").to_str().unwrap(), "c1:/nope/x/"]);
    assert!(e.contains("no such directory"), "{e}");
    // PUT straight into a missing directory: Docker's 404.
    let (status, body) = d.raw("PUT", "/v1.45/containers/c1/archive?path=/nope", b"");
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        message(&body),
        "Could not find the file /nope in container c1"
    );
    let (status, _) = d.raw("HEAD", "/v1.45/containers/c1/archive?path=/etc/passwd", b"");
    assert_eq!(status, 200);
}

#[test]
fn diff_and_export() {
    let Some(d) = daemon_with_busybox("diff_and_export") else {
        return;
    };
    d.ok(&[
        "run",
        "--name",
        "c3",
        "busybox",
        "sh",
        "-c",
        "echo x > /tmp/new; rm /etc/group; mkdir -p /newdir/sub",
    ]);
    let diff = d.ok(&["diff", "c3"]);
    let got = lines(&diff);
    for want in [
        "C /etc",
        "D /etc/group",
        "A /tmp/new",
        "A /newdir",
        "A /newdir/sub",
    ] {
        assert!(
            got.iter().any(|l| l == want),
            "{want} missing from:\n{diff}"
        );
    }
    assert!(!got.iter().any(|l| l.contains("/etc/passwd")), "{diff}");
    // The engine's own mount points are not the container's changes; an untouched
    // container (with a volume) has none, as with Docker.
    assert!(!got.iter().any(|l| l.contains("/etc/hosts")), "{diff}");
    d.ok(&[
        "run",
        "--name",
        "c4",
        "-v",
        "dv:/tmp/data",
        "busybox",
        "true",
    ]);
    assert_eq!(d.ok(&["diff", "c4"]).trim(), "");

    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("c3.tar");
    d.ok(&["export", "-o", tarball.to_str().unwrap(), "c3"]);
    let f = std::fs::File::open(&tarball).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(f).entries().unwrap() {
        let e = e.unwrap();
        names.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
    }
    assert!(names.iter().any(|n| n == "tmp/new"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(names.iter().any(|n| n == "etc/passwd"), "{names:?}");
    assert!(!names.iter().any(|n| n == "etc/group"), "{names:?}");
}

#[test]
fn driver_opts_mount_when_a_container_uses_the_volume() {
    let Some(d) = daemon_with_busybox("driver_opts_mount_when_a_container_uses_the_volume") else {
        return;
    };
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=5m",
        "tv",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/mnt",
        "busybox",
        "sh",
        "-c",
        "grep ' /mnt ' /proc/mounts; echo hi > /mnt/f; df -k /mnt | tail -1",
    ]);
    assert!(out.contains("tmpfs /mnt tmpfs"), "{out}");
    assert!(out.contains(" 5120 "), "size=5m: {out}");
    d.ok(&["volume", "rm", "tv"]);
    assert!(!d.data_root().join("volumes/tv").exists());

    // o=bind: the host directory shows through; removing the volume keeps the host's files.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("keep.txt"), b"host file").unwrap();
    let dev = format!("device={}", host.path().display());
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &dev,
        "bv",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/mnt",
        "busybox",
        "cat",
        "/mnt/keep.txt",
    ]);
    assert_eq!(out, "host file");
    d.ok(&["volume", "rm", "bv"]);
    assert_eq!(
        std::fs::read(host.path().join("keep.txt")).unwrap(),
        b"host file",
        "volume rm deleted the bind device's content"
    );
}

#[test]
fn cp_into_read_only_mounts_is_refused() {
    let Some(d) = daemon_with_busybox("cp_into_read_only_mounts_is_refused") else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    let ro = host.path().join("ro");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(src.join("f.txt"), b"x").unwrap();
    d.ok(&[
        "create",
        "--name",
        "r1",
        "-v",
        &format!("{}:/ro:ro", ro.display()),
        "-v",
        "rwvol:/rw",
        "busybox",
        "true",
    ]);
    let f = src.join("f.txt");
    let e = d.fails(&["cp", f.to_str().unwrap(), "r1:/ro/"]);
    assert!(e.contains("mounted volume is marked read-only"), "{e}");
    assert!(!ro.join("f.txt").exists());
    d.ok(&["cp", f.to_str().unwrap(), "r1:/rw/"]);
    assert!(d.data_root().join("volumes/rwvol/_data/f.txt").exists());
    // A created (never started) container: its root is mounted just for the copy.
    d.ok(&["cp", f.to_str().unwrap(), "r1:/tmp/"]);
    assert_eq!(cat(&d, "r1", "/tmp/f.txt"), "x");
    d.ok(&["create", "--name", "r2", "--read-only", "busybox", "true"]);
    let e = d.fails(&["cp", f.to_str().unwrap(), "r2:/tmp/"]);
    assert!(e.contains("container rootfs is marked read-only"), "{e}");
}

#[test]
fn anonymous_volume_from_run_v_path() {
    let Some(d) = daemon_with_busybox("anonymous_volume_from_run_v_path") else {
        return;
    };
    d.ok(&["run", "--name", "a1", "-v", "/etc", "busybox", "true"]);
    let name = d
        .ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "a1"])
        .trim()
        .to_string();
    assert_eq!(name.len(), 64, "{name}");
    let v = json(&d.ok(&["volume", "inspect", &name]));
    assert_eq!(v[0]["Labels"]["com.docker.volume.anonymous"], "");
    // Populated from the image's /etc.
    assert!(d
        .data_root()
        .join(format!("volumes/{name}/_data/passwd"))
        .is_file());
    // In use: prune keeps it.
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(!out.contains(&name), "{out}");
    assert!(d.ok(&["volume", "ls", "-q"]).contains(&name));
    // Once the container is gone it is an unused anonymous volume: pruned by default.
    d.ok(&["rm", "a1"]);
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&name), "{out}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
}
