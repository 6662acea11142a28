//! exec, stats and top through berthd, driven by the real docker CLI: `docker exec` with
//! output, exit codes, env, working dir, user, detach, piped stdin and a terminal;
//! `docker stats --no-stream`, `docker top`. The busybox image is loaded from a local OCI
//! layout; nothing is pulled.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::require_root;
use berth_tests::suite::wait_until;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn daemon_with_sleeper(test: &str) -> Option<Berthd> {
    if !require_root(test) {
        return None;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    Some(d)
}

#[test]
fn exec_output_exit_codes_env_workdir_user_detach() {
    let Some(d) = daemon_with_sleeper("exec_output_exit_codes_env_workdir_user_detach") else {
        return;
    };
    assert_eq!(d.ok(&["exec", "box", "echo", "hi"]), "hi\n");

    let o = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");

    assert_eq!(
        d.ok(&["exec", "-e", "FOO=bar", "box", "sh", "-c", "echo $FOO"]),
        "bar\n"
    );
    assert_eq!(d.ok(&["exec", "-w", "/tmp", "box", "pwd"]), "/tmp\n");
    assert_eq!(
        d.ok(&["exec", "-u", "nobody", "box", "id", "-un"]),
        "nobody\n"
    );
    assert_eq!(
        d.ok(&["exec", "-u", "1234:5678", "box", "id", "-u"]),
        "1234\n"
    );
    // Like Docker: the start error comes in the stream, the exit code is 126.
    let o = d.docker(&["exec", "-u", "ghost", "box", "true"]);
    assert_eq!(o.status.code(), Some(126), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("unable to find user ghost"),
        "{o:?}"
    );

    // -d: returns at once; the process runs on.
    d.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.2; echo done > /tmp/marker",
    ]);
    assert!(wait_until(Duration::from_secs(10), || {
        d.docker(&["exec", "box", "cat", "/tmp/marker"]).stdout == b"done\n"
    }));

    // A command that does not exist.
    let o = d.docker(&["exec", "box", "no-such-cmd"]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no-such-cmd"),
        "{o:?}"
    );
}

#[test]
fn exec_interactive_stdin_and_tty() {
    let Some(d) = daemon_with_sleeper("exec_interactive_stdin_and_tty") else {
        return;
    };
    // -i with stdin piped: cat echoes it and ends at EOF.
    let mut child = d
        .docker_cmd(&["exec", "-i", "box", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let w = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(data.as_bytes()).unwrap())
    };
    let o = child.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), data);

    // -it: the CLI needs a terminal of its own; `script` gives it one.
    let cfg = d.dir.path().join("docker-config");
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            "docker exec -it box sh -c 'tty; echo $TERM; exit 4'",
            "/dev/null",
        ])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", &cfg)
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text:?} {out:?}");
    assert!(text.contains("xterm"), "{text:?}");
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    // ctrl-p ctrl-q detaches the CLI; the process runs on.
    let mut child = std::process::Command::new("script")
        .args([
            "-qec",
            "docker exec -it box sh -c 'touch /tmp/started; sleep 5; touch /tmp/finished'",
            "/dev/null",
        ])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", &cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["exec", "box", "test", "-e", "/tmp/started"])
        .status
        .success()));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x10\x11").unwrap();
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the CLI did not detach: {out:?}"
    );
    assert!(d
        .docker(&["exec", "box", "test", "!", "-e", "/tmp/finished"])
        .status
        .success());
    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["exec", "box", "test", "-e", "/tmp/finished"])
        .status
        .success()));
}

#[test]
fn exec_into_stopped_or_missing_container_fails_like_docker() {
    let Some(d) = daemon_with_sleeper("exec_into_stopped_or_missing_container_fails_like_docker")
    else {
        return;
    };
    d.ok(&["create", "--name", "idle", "busybox", "true"]);
    let err = d.fails(&["exec", "idle", "true"]);
    assert!(err.contains("is not running"), "{err}");
    let err = d.fails(&["exec", "nope", "true"]);
    assert!(err.contains("No such container: nope"), "{err}");
    d.ok(&["pause", "box"]);
    let err = d.fails(&["exec", "box", "true"]);
    assert!(
        err.contains("is paused, unpause the container before exec"),
        "{err}"
    );
    d.ok(&["unpause", "box"]);
    assert_eq!(d.ok(&["exec", "box", "echo", "back"]), "back\n");
}

#[test]
fn stats_and_top() {
    let Some(d) = daemon_with_sleeper("stats_and_top") else {
        return;
    };
    let out = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "box",
    ]);
    let mut f = out.split_whitespace();
    assert_eq!(f.next(), Some("box"), "{out}");
    let mem = f.next().unwrap();
    assert!(
        !mem.starts_with("0B") && mem.chars().next().unwrap().is_ascii_digit(),
        "memory usage should be non-zero: {out}"
    );
    assert_eq!(out.split_whitespace().last(), Some("1"), "{out}");

    // The raw API: one-shot, and the previous sample for stream=false.
    let (code, body) = d.raw("GET", "/containers/box/stats?stream=false", b"");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "/box");
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["memory_stats"]["limit"].as_u64().unwrap() > 0, "{v}");
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");
    assert!(v["networks"]["eth0"].is_object(), "{v}");

    let top = d.ok(&["top", "box"]);
    let mut lines = top.lines();
    assert!(lines.next().unwrap().contains("PID"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only the container's processes: {top}");
    assert!(rows[0].contains("sleep 1000"), "{top}");
    let top = d.ok(&["top", "box", "-o", "pid,comm"]);
    assert!(top.contains("sleep"), "{top}");

    // A stopped container: zeros, like Docker.
    d.ok(&["create", "--name", "idle", "busybox", "true"]);
    let (code, body) = d.raw("GET", "/containers/idle/stats?stream=false", b"");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    let err = d.fails(&["top", "idle"]);
    assert!(err.contains("is not running"), "{err}");
}

#[test]
fn exec_inspect_resize_and_streamed_stats_over_the_api() {
    let Some(d) = daemon_with_sleeper("exec_inspect_resize_and_streamed_stats_over_the_api") else {
        return;
    };
    let (code, body) = d.raw(
        "POST",
        "/containers/box/exec",
        br#"{"Tty":true,"Cmd":["sh","-c","sleep 1; stty size"],"User":"nobody"}"#,
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = d.raw("GET", &format!("/exec/{id}/json"), b"");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Running"], false);
    assert_eq!(v["ExitCode"], serde_json::Value::Null);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(v["ProcessConfig"]["arguments"][0], "-c");
    assert_eq!(v["ProcessConfig"]["user"], "nobody");
    assert_eq!(v["ProcessConfig"]["tty"], true);
    assert_eq!(v["ID"], id);
    assert_eq!(v["ContainerID"].as_str().unwrap().len(), 64);

    let (code, body) = d.raw(
        "POST",
        &format!("/exec/{id}/start"),
        br#"{"Detach":true,"Tty":true}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = d.raw("GET", &format!("/exec/{id}/json"), b"");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 200);
    assert_eq!(v["Running"], true, "{v}");
    assert!(v["Pid"].as_i64().unwrap() > 0, "{v}");
    let (code, _) = d.raw("POST", &format!("/exec/{id}/resize?h=30&w=100"), b"");
    assert_eq!(code, 200);
    let (code, body) = d.raw("POST", &format!("/exec/{id}/resize?h=x&w=100"), b"");
    assert_eq!(code, 400);
    assert!(body.contains("invalid resize h"), "{body}");
    let (code, body) = d.raw("POST", &format!("/exec/{id}/start"), b"{}");
    assert_eq!(code, 409, "{body}");
    assert!(wait_until(Duration::from_secs(10), || {
        let (_, body) = d.raw("GET", &format!("/exec/{id}/json"), b"");
        body.contains("\"ExitCode\":0") && body.contains("\"Running\":false")
    }));
    let (code, body) = d.raw("POST", "/containers/box/exec", br#"{"Cmd":[]}"#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.raw(
        "POST",
        "/containers/box/exec",
        br#"{"Cmd":["true"],"DetachKeys":"ctrl-pp"}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Invalid detach keys (ctrl-pp)"), "{body}");
    let (code, _) = d.raw("GET", "/exec/nope/json", b"");
    assert_eq!(code, 404);

    // Streamed stats: one reading a second until the container stops.
    d.ok(&["run", "-d", "--name", "short", "busybox", "sleep", "3"]);
    let (code, body) = d.raw("GET", "/containers/short/stats", b"");
    assert_eq!(code, 200);
    let n = body.matches("\"preread\"").count();
    assert!((2..=5).contains(&n), "{n} readings: {body}");
    let (code, body) = d.raw(
        "GET",
        "/containers/box/stats?stream=true&one-shot=true",
        b"",
    );
    assert_eq!(code, 400, "{body}");
}
