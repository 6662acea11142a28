//! The `berth` CLI against berthd: `run` in the foreground (output, exit codes, `--rm`,
//! missing commands), detached containers through `ps`/`logs`/`stop`/`start`/`rm`, and the
//! `images`/`volume ls`/`network ls` tables compared with the docker CLI's on the same engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth, berth_bin, berth_ok, titles};
use berth_tests::oci_image_layout;
use berth_tests::require_root;
use berth_tests::services::{free_port, Registry};
use berth_tests::suite::wait_until;
use std::process::{Command, Stdio};
use std::time::Duration;

fn daemon(test: &str) -> Option<Berthd> {
    Berthd::with_busybox(test)
}

fn rows(out: &str) -> usize {
    out.lines().count().saturating_sub(1)
}

/// Same titles, same header line and same number of rows as docker's table.
fn same_table(what: &str, ours: &str, docker: &str) {
    assert_eq!(
        titles(ours),
        titles(docker),
        "{what}: titles\nberth:\n{ours}\ndocker:\n{docker}"
    );
    assert_eq!(
        rows(ours),
        rows(docker),
        "{what}: row count\nberth:\n{ours}\ndocker:\n{docker}"
    );
}

#[test]
fn run_foreground_output_exit_codes_and_rm() {
    let Some(d) = daemon("run_foreground_output_exit_codes_and_rm") else {
        return;
    };
    let o = berth(&d, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");

    // stdout and stderr stay apart; the container's exit code is berth's.
    let o = berth(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");

    let o = berth(&d, &["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));

    // Flags after the image are the command's; -e/-w/-u reach the container.
    let out = berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "-e",
            "GREETING=hello",
            "-w",
            "/tmp",
            "-u",
            "1234",
            "busybox",
            "sh",
            "-c",
            "echo $GREETING $(pwd) $(id -u)",
        ],
    );
    assert_eq!(out, "hello /tmp 1234\n");

    // A command that does not exist: docker's 127 and the engine's reason on one line.
    let o = berth(&d, &["run", "--rm", "busybox", "/no/such/command"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(127), "stderr: {err}");
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // An engine error (a name taken) is exit 125 with the engine's message.
    berth_ok(&d, &["run", "--name", "taken", "busybox", "true"]);
    let o = berth(&d, &["run", "--name", "taken", "busybox", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "stderr: {err}");
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    assert!(err.contains("taken"), "{err}");

    // -v: an anonymous volume and a named one.
    let out = berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "/anon",
            "-v",
            "named:/data",
            "busybox",
            "sh",
            "-c",
            "test -d /anon && echo x > /data/f && echo ok",
        ],
    );
    assert_eq!(out, "ok\n");
    assert!(d.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "named"));

    // --rm left nothing behind: only "taken" remains.
    let all = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "taken");
}

#[test]
fn detached_ps_logs_stop_start_rm() {
    let Some(d) = daemon("detached_ps_logs_stop_start_rm") else {
        return;
    };
    let port = free_port();
    let publish = format!("{port}:80");
    let id = berth_ok(
        &d,
        &[
            "run", "-d", "--name", "web", "-p", &publish, "busybox", "httpd", "-f", "-p", "80",
            "-h", "/",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the full ID: {id:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id:?}");

    let ours = berth_ok(&d, &["ps"]);
    let docker = d.ok(&["ps"]);
    same_table("ps", &ours, &docker);
    let row = ours.lines().nth(1).expect("a ps row");
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("busybox"), "{row}");
    assert!(row.contains("\"httpd -f -p 80 -h /\""), "{row}");
    assert!(row.contains(&format!(":{port}->80/tcp")), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(row.trim_end().ends_with("web"), "{row}");
    // The same ID and image columns as docker's row.
    let docker_row = docker.lines().nth(1).expect("a docker ps row");
    assert_eq!(
        &row[..row.find("busybox").unwrap()],
        &docker_row[..docker_row.find("busybox").unwrap()]
    );

    assert_eq!(berth_ok(&d, &["ps", "-q"]), d.ok(&["ps", "-q"]));
    assert_eq!(berth_ok(&d, &["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(berth_ok(&d, &["ps", "-q", "--no-trunc"]).trim(), id);

    // A second container that writes and exits: logs, ps -a, -n, filters.
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "echo one; echo two >&2",
        ],
    );
    assert!(wait_until(Duration::from_secs(10), || {
        d.ok(&["inspect", "-f", "{{.State.Status}}", "talker"])
            .trim()
            == "exited"
    }));
    let o = berth(&d, &["logs", "talker"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "two\n");
    let o = berth(&d, &["logs", "--tail", "1", "-t", "talker"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains(" two"), "{o:?}");
    // --since/--until: a window before the run holds nothing, one after it everything; the
    // docker CLI agrees on the same engine.
    for (args, want_all) in [
        (vec!["logs", "--since", "1h", "talker"], true),
        (
            vec!["logs", "--until", "2000-01-01T00:00:00Z", "talker"],
            false,
        ),
        (vec!["logs", "--since", "2037-01-01", "talker"], false),
    ] {
        let o = berth(&d, &args);
        assert!(o.status.success(), "{args:?}: {o:?}");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(out == "one\n", want_all, "{args:?}: {out:?}");
        assert_eq!(out, d.ok(&args), "{args:?}");
    }
    let o = berth(&d, &["logs", "--since", "yesterday", "talker"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--since"),
        "{o:?}"
    );
    let ours = berth_ok(&d, &["ps", "-a"]);
    same_table("ps -a", &ours, &d.ok(&["ps", "-a"]));
    assert_eq!(rows(&ours), 2);
    assert_eq!(rows(&berth_ok(&d, &["ps", "-n", "1"])), 1);
    assert!(berth_ok(&d, &["ps", "-l"]).contains("talker"));
    let exited = berth_ok(&d, &["ps", "-a", "--filter", "status=exited", "-q"]);
    assert_eq!(
        exited,
        d.ok(&["ps", "-a", "--filter", "status=exited", "-q"])
    );
    assert_eq!(
        rows(&berth_ok(&d, &["ps", "-a", "--filter", "name=talker"])),
        1
    );

    // stop / start / restart / kill / rm -f.
    assert_eq!(berth_ok(&d, &["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(berth_ok(&d, &["ps", "-q"]), "");
    assert!(berth_ok(&d, &["ps", "-a", "--filter", "name=web"]).contains("Exited"));
    assert_eq!(berth_ok(&d, &["start", "web"]), "web\n");
    assert_eq!(berth_ok(&d, &["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(berth_ok(&d, &["restart", "-t", "1", "web"]), "web\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "running"
    );
    assert_eq!(berth_ok(&d, &["kill", "-s", "KILL", "web"]), "web\n");
    assert!(wait_until(Duration::from_secs(10), || {
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]).trim() == "exited"
    }));
    berth_ok(&d, &["start", "web"]);
    assert_eq!(
        berth_ok(&d, &["rm", "-f", "web", "talker"]),
        "web\ntalker\n"
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");

    // A missing container: the engine's message, exit 1 like docker.
    let o = berth(&d, &["stop", "nosuch"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn images_volumes_networks_match_docker() {
    let Some(d) = daemon("images_volumes_networks_match_docker") else {
        return;
    };
    berth_ok(&d, &["tag", "busybox", "busybox:other"]);
    let ours = berth_ok(&d, &["images"]);
    let docker = d.ok(&["images"]);
    same_table("images", &ours, &docker);
    assert_eq!(rows(&ours), 2);
    // The image rows hold nothing time-dependent but CREATED; size and ID as docker has them.
    let docker_size = d.ok(&["images", "--format", "{{.Size}}"]);
    for (line, size) in ours.lines().skip(1).zip(docker_size.lines()) {
        assert!(
            line.trim_end().ends_with(size),
            "{line} vs docker's size {size}"
        );
    }
    assert_eq!(berth_ok(&d, &["images", "-q"]), d.ok(&["images", "-q"]));
    let o = berth(&d, &["rmi", "busybox:other"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Untagged: busybox:other\n"
    );

    assert_eq!(berth_ok(&d, &["volume", "create", "data1"]), "data1\n");
    let ours = berth_ok(&d, &["volume", "ls"]);
    same_table("volume ls", &ours, &d.ok(&["volume", "ls"]));
    assert_eq!(ours.lines().next(), d.ok(&["volume", "ls"]).lines().next());
    assert!(ours.contains("local     data1"), "{ours}");
    assert_eq!(berth_ok(&d, &["volume", "rm", "data1"]), "data1\n");
    assert_eq!(rows(&berth_ok(&d, &["volume", "ls"])), 0);

    let net_id = berth_ok(&d, &["network", "create", "backend"]);
    assert_eq!(net_id.trim().len(), 64, "{net_id}");
    let ours = berth_ok(&d, &["network", "ls"]);
    let docker = d.ok(&["network", "ls"]);
    same_table("network ls", &ours, &docker);
    assert_eq!(ours, docker, "network ls holds nothing time-dependent");
    assert_eq!(berth_ok(&d, &["network", "rm", "backend"]), "backend\n");
    assert!(!berth_ok(&d, &["network", "ls"]).contains("backend"));

    // A missing image is pulled first; with no registry reachable the pull fails and says so.
    let o = berth(&d, &["run", "--rm", "localhost:1/nothing-here"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.starts_with("Unable to find image 'localhost:1/nothing-here' locally\n"),
        "{err}"
    );
    assert!(err.contains("Error response from daemon: "), "{err}");

    let v = berth_ok(&d, &["version"]);
    assert!(v.contains("API version:      1.45"), "{v}");
    let i = berth_ok(&d, &["info"]);
    assert!(i.contains(" Images: 1\n"), "{i}");
}

#[test]
fn unreachable_engine_is_one_line_and_1_or_125_for_run() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    let host = format!("unix://{}", sock.display());
    for (args, env) in [
        (vec!["-H", host.as_str(), "ps"], None),
        (vec!["images"], Some(("BERTH_HOST", host.as_str()))),
        (vec!["version"], Some(("DOCKER_HOST", host.as_str()))),
        (vec!["run", "busybox"], Some(("DOCKER_HOST", host.as_str()))),
    ] {
        let mut c = Command::new(berth_bin());
        c.env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .args(&args)
            .stdin(Stdio::null());
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // docker's codes: 125 from `run` (never mistaken for the container's), else 1.
        let want = if args.contains(&"run") { 125 } else { 1 };
        assert_eq!(o.status.code(), Some(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("Cannot connect to the Berth engine at {host}: ")),
            "{args:?}: {err}"
        );
        assert!(
            err.trim_end()
                .ends_with("Is berthd running? Start it with: sudo bash .ci/berth"),
            "{err}"
        );
    }
    // A socket path that exists but where nothing listens.
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(listener);
    let o = Command::new(berth_bin())
        .args(["-H", &host, "ps"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("Cannot connect to the Berth engine"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn pull_prints_plain_progress_and_run_pulls_missing_images() {
    if !require_root("pull_prints_plain_progress_and_run_pulls_missing_images") {
        return;
    }
    let reg = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    reg.push_layout(&layout.dir, "test/busybox:latest");
    let d = Berthd::start();
    let image = format!("{}/test/busybox", reg.host());

    let out = berth_ok(&d, &["pull", &image]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"Using default tag: latest"), "{out}");
    assert_eq!(
        lines.get(1),
        Some(&"latest: Pulling from test/busybox"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(": Pull complete")),
        "{out}"
    );
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {image}:latest").as_str()),
        "{out}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!("{image}:latest").as_str()),
        "{out}"
    );
    // Not a terminal: no progress bars or cursor movement.
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out}");
    let again = berth_ok(&d, &["pull", &format!("{image}:latest")]);
    assert!(again.contains("Status: Image is up to date"), "{again}");

    berth_ok(&d, &["rmi", &format!("{image}:latest")]);
    let o = berth(&d, &["run", "--rm", &image, "echo", "pulled"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with(&format!("Unable to find image '{image}' locally\n")),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pulled\n");
}
