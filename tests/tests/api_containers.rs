//! Containers through berthd, driven by the real docker CLI: the commands users start with
//! (`run -p 80:5000 -d`, `ps`, `rm`, `stop/start/restart`), logs, inspect, waits and exit
//! codes, restart policies, and `kill -9` of the engine with containers running. The busybox
//! image is loaded from a local OCI layout; nothing is pulled.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::{message, Berthd};
use berth_tests::services::free_port;
use berth_tests::suite::wait_until;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn daemon(test: &str) -> Option<Berthd> {
    Berthd::with_busybox(test)
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn state(d: &Berthd, c: &str) -> String {
    d.ok(&["inspect", "-f", "{{.State.Status}}", c])
        .trim()
        .to_string()
}

#[test]
fn run_detached_with_published_port_answers_on_loopback() {
    let Some(d) = daemon("run_detached_with_published_port_answers_on_loopback") else {
        return;
    };
    // The seed's command: `run -p 80:5000 -d my-image` — port 80 on the host reaches 5000.
    let host_port = if TcpStream::connect(("127.0.0.1", 80)).is_ok() {
        free_port()
    } else {
        80
    };
    let dir = d.dir.path().join("www");
    std::fs::create_dir_all(&dir).unwrap();
    let id = d
        .ok(&[
            "run",
            "-p",
            &format!("{host_port}:5000"),
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 5000 -h /www",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "run -d prints the full ID: {id}");
    let mut body = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            body = http_get(host_port, "/index.html");
            body.as_deref()
                .is_some_and(|b| b.contains("hello-from-berth"))
        }),
        "no answer on 127.0.0.1:{host_port}: {body:?}\n{}",
        d.log()
    );
    let ps = d.ok(&["ps"]);
    assert!(ps.contains("web"), "{ps}");
    assert!(
        ps.contains(&format!("0.0.0.0:{host_port}->5000/tcp")),
        "ps shows the published port: {ps}"
    );
    assert!(ps.contains(&id[..12]), "ps shows the short ID: {ps}");
    let port = d.ok(&["port", "web"]);
    assert!(
        port.contains(&format!("5000/tcp -> 0.0.0.0:{host_port}")),
        "{port}"
    );
    // Stopped: the port is released.
    d.ok(&["stop", "-t", "1", "web"]);
    assert!(
        wait_until(Duration::from_secs(5), || TcpStream::connect((
            "127.0.0.1",
            host_port
        ))
        .is_err()),
        "port still open after stop"
    );
    // Started again: published again.
    d.ok(&["start", "web"]);
    assert!(
        wait_until(Duration::from_secs(10), || http_get(
            host_port,
            "/index.html"
        )
        .is_some_and(|b| b.contains("hello-from-berth"))),
        "no answer after start"
    );
    d.ok(&["rm", "-f", "web"]);
}

#[test]
fn publish_all_and_ephemeral_ports() {
    let Some(d) = daemon("publish_all_and_ephemeral_ports") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "127.0.0.1::7000",
        "--expose",
        "7001",
        "-P",
        "busybox",
        "sh",
        "-c",
        "echo one > /i; httpd -p 7000 -h /; exec httpd -f -p 7001 -h /",
    ]);
    let out = d.ok(&["port", "pub"]);
    let mut ports = Vec::new();
    for line in out.lines() {
        let (cport, host) = line.split_once(" -> ").unwrap();
        let hp: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(hp, 0, "{line}");
        ports.push((cport.to_string(), host.to_string(), hp));
    }
    assert_eq!(ports.len(), 2, "{out}");
    let p7000 = ports.iter().find(|p| p.0 == "7000/tcp").unwrap();
    assert!(p7000.1.starts_with("127.0.0.1:"), "{out}");
    for (_, _, hp) in &ports {
        let hp = *hp;
        assert!(
            wait_until(Duration::from_secs(10), || http_get(hp, "/i")
                .is_some_and(|b| b.contains("one"))),
            "port {hp}: {out}"
        );
    }
}

#[test]
fn lifecycle_ps_inspect_rename_pause_wait_rm() {
    let Some(d) = daemon("lifecycle_ps_inspect_rename_pause_wait_rm") else {
        return;
    };
    d.ok(&[
        "create", "--name", "c1", "-l", "tier=web", "busybox", "sleep", "300",
    ]);
    assert_eq!(state(&d, "c1"), "created");
    let ps = d.ok(&["ps"]);
    assert!(!ps.contains("c1"), "a created container is not in ps: {ps}");
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("c1 Created"), "{ps}");
    d.ok(&["start", "c1"]);
    assert_eq!(state(&d, "c1"), "running");
    let pid: i32 = d
        .ok(&["inspect", "-f", "{{.State.Pid}}", "c1"])
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    let ps = d.ok(&[
        "ps",
        "--format",
        "{{.Names}}|{{.Status}}|{{.Command}}|{{.Image}}",
    ]);
    assert!(ps.contains("c1|Up "), "{ps}");
    assert!(ps.contains("\"sleep 300\"|busybox"), "{ps}");
    // Filters.
    assert!(
        d.ok(&["ps", "-q", "--filter", "label=tier=web"])
            .trim()
            .len()
            == 12
    );
    assert!(d
        .ok(&["ps", "-q", "--filter", "label=tier=db"])
        .trim()
        .is_empty());
    assert!(!d.ok(&["ps", "-q", "--filter", "name=c1"]).trim().is_empty());
    assert!(!d
        .ok(&["ps", "-q", "--filter", "ancestor=busybox"])
        .trim()
        .is_empty());
    assert!(!d
        .ok(&["ps", "-q", "--filter", "status=running"])
        .trim()
        .is_empty());
    assert!(d
        .ok(&["ps", "-q", "--filter", "status=exited"])
        .trim()
        .is_empty());
    let err = d.fails(&["ps", "--filter", "status=sleepy"]);
    assert!(err.contains("status=sleepy"), "{err}");
    // Name conflicts and removal of running containers are refused like Docker.
    let err = d.fails(&["create", "--name", "c1", "busybox", "true"]);
    assert!(err.contains("is already in use"), "{err}");
    let err = d.fails(&["rm", "c1"]);
    assert!(
        err.contains("stop the container before removing or force remove"),
        "{err}"
    );
    // Rename.
    d.ok(&["rename", "c1", "c2"]);
    assert_eq!(state(&d, "c2"), "running");
    let err = d.fails(&["container", "inspect", "c1"]);
    assert!(err.contains("No such"), "{err}");
    // Pause.
    d.ok(&["pause", "c2"]);
    assert_eq!(state(&d, "c2"), "paused");
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    d.ok(&["unpause", "c2"]);
    assert_eq!(state(&d, "c2"), "running");
    // Kill, wait gives the code.
    d.ok(&["kill", "c2"]);
    let code = d.ok(&["wait", "c2"]);
    assert_eq!(code.trim(), "137");
    assert_eq!(state(&d, "c2"), "exited");
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("c2 Exited (137)"), "{ps}");
    let err = d.fails(&["kill", "c2"]);
    assert!(err.contains("is not running"), "{err}");
    // Restart brings it back; rm -f removes a running container.
    d.ok(&["restart", "-t", "1", "c2"]);
    assert_eq!(state(&d, "c2"), "running");
    d.ok(&["rm", "-f", "c2"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(d.data_root().join("containers").to_str().unwrap()),
        "a mount of the removed container is left"
    );
    // Raw API: Docker's error shapes.
    let (st, body) = d.raw("POST", "/v1.45/containers/nope/start", b"");
    assert_eq!(st, 404);
    assert_eq!(message(&body), "No such container: nope");
    let (st, body) = d.raw("POST", "/v1.45/containers/create", b"{not json");
    assert_eq!(st, 400, "{body}");
    assert!(message(&body).contains("invalid JSON"), "{body}");
    let (st, body) = d.raw(
        "POST",
        "/v1.45/containers/create?name=bad%20name",
        br#"{"Image":"busybox"}"#,
    );
    assert_eq!(st, 400, "{body}");
    assert!(message(&body).contains("Invalid container name"), "{body}");
}

#[test]
fn foreground_run_output_exit_codes_and_rm() {
    let Some(d) = daemon("foreground_run_output_exit_codes_and_rm") else {
        return;
    };
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("err"));
    assert!(
        wait_until(Duration::from_secs(5), || d
            .ok(&["ps", "-aq"])
            .trim()
            .is_empty()),
        "--rm container left: {}",
        d.ok(&["ps", "-a"])
    );
    // Env, workdir, user, hostname reach the process.
    let out = d.ok(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(out.trim(), "hi /tmp 1000:1000 box1");
    // A missing command is one clear error.
    let o = d.docker(&["run", "--rm", "busybox", "/no/such/binary"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/no/such/binary"), "{err}");
}

#[test]
fn logs_follow_tail_timestamps() {
    let Some(d) = daemon("logs_follow_tail_timestamps") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "logger",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; sleep 1; echo late; sleep 30",
    ]);
    assert!(wait_until(Duration::from_secs(10), || {
        d.ok(&["logs", "logger"]).contains("line5")
    }));
    let o = d.docker(&["logs", "logger"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("line1\nline2\n"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("oops"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("oops"));
    let tail = d.ok(&["logs", "--tail", "2", "logger"]);
    assert!(!tail.contains("line3"), "{tail}");
    let ts = d.ok(&["logs", "-t", "--tail", "3", "logger"]);
    assert!(
        ts.starts_with("20") && ts.contains("T") && ts.contains("Z "),
        "{ts}"
    );
    // -f follows new output until the container exits.
    let mut child = d
        .docker_cmd(&["logs", "-f", "logger"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let mut buf = [0u8; 256];
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end && !s.contains("late") {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        s
    });
    let got = reader.join().unwrap();
    assert!(got.contains("line1") && got.contains("late"), "{got}");
    d.ok(&["stop", "-t", "1", "logger"]);
    let st = child.wait().unwrap();
    assert!(st.success(), "logs -f ends when the container stops");
}

#[test]
fn restart_policies() {
    let Some(d) = daemon("restart_policies") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "onfail",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo run; sleep 0.3",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            d.ok(&[
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Status}}",
                "onfail",
            ])
            .trim()
                == "2 exited"
        }),
        "on-failure:2: {}",
        d.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "onfail"
        ])
    );
    assert_eq!(d.ok(&["logs", "onfail"]).matches("run").count(), 3);
    assert!(wait_until(Duration::from_secs(20), || {
        d.ok(&["inspect", "-f", "{{.RestartCount}}", "always"])
            .trim()
            .parse::<u32>()
            .unwrap()
            >= 2
    }));
    // A clean exit is not restarted by on-failure.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.ExitCode}}",
            "ok"
        ])
        .trim(),
        "0 0"
    );
    // A user stop holds: always does not restart it.
    d.ok(&["stop", "-t", "1", "always"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(state(&d, "always"), "exited");
    let err = d.fails(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert!(err.to_lowercase().contains("restart"), "{err}");
}

#[test]
fn engine_kill9_and_restart_keeps_containers() {
    let Some(mut d) = daemon("engine_kill9_and_restart_keeps_containers") else {
        return;
    };
    let port = free_port();
    d.ok(&[
        "run", "-d", "--name", "ticker", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sh",
        "-c",
        "echo up > /index.html; httpd -p 80 -h /; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 7",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "600",
    ]);
    assert!(wait_until(Duration::from_secs(10), || http_get(
        port,
        "/index.html"
    )
    .is_some_and(|b| b.contains("up"))));
    let pid_before = d.ok(&["inspect", "-f", "{{.State.Pid}}", "ticker"]);
    d.kill9();
    // The engine is gone; the containers are not.
    let pid: i32 = pid_before.trim().parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    std::thread::sleep(Duration::from_secs(3));
    d.spawn();
    assert_eq!(state(&d, "ticker"), "running");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Pid}}", "ticker"]),
        pid_before
    );
    // `short` exited while the engine was down: its code is recorded.
    assert!(wait_until(Duration::from_secs(5), || {
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short",
        ])
        .trim()
            == "exited 7"
    }));
    assert_eq!(state(&d, "keeper"), "running");
    // Logs still flow, the port still answers, and the container is manageable.
    let before = d.ok(&["logs", "ticker"]).lines().count();
    assert!(wait_until(Duration::from_secs(5), || d
        .ok(&["logs", "ticker"])
        .lines()
        .count()
        > before + 3));
    assert!(wait_until(Duration::from_secs(10), || http_get(
        port,
        "/index.html"
    )
    .is_some_and(|b| b.contains("up"))));
    d.ok(&["stop", "-t", "1", "ticker"]);
    assert_eq!(state(&d, "ticker"), "exited");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "ticker"])
            .trim(),
        "137"
    );
    d.ok(&["rm", "-f", "ticker", "short", "keeper"]);
}

#[test]
fn healthchecks() {
    let Some(d) = daemon("healthchecks") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 100",
    ]);
    let health = |d: &Berthd| {
        d.ok(&["inspect", "-f", "{{.State.Health.Status}}", "hc"])
            .trim()
            .to_string()
    };
    assert_eq!(health(&d), "starting");
    assert!(d
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(health: starting)"));
    assert!(
        wait_until(Duration::from_secs(10), || health(&d) == "healthy"),
        "{}",
        health(&d)
    );
    assert!(
        d.ok(&["ps", "-q", "--filter", "health=healthy"])
            .trim()
            .len()
            == 12
    );
    assert!(
        wait_until(Duration::from_secs(10), || health(&d) == "unhealthy"),
        "{}",
        health(&d)
    );
    let log = d.ok(&["inspect", "-f", "{{json .State.Health}}", "hc"]);
    let v: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert!(v["FailingStreak"].as_i64().unwrap() >= 2, "{v}");
    assert!(v["Log"].as_array().unwrap().len() <= 5);
    // A container without a check has no Health at all.
    d.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "100"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .State.Health}}", "plain"])
            .trim(),
        "null"
    );
    let err = d.fails(&[
        "run",
        "--rm",
        "--health-interval",
        "5ns",
        "--health-cmd",
        "true",
        "busybox",
        "true",
    ]);
    assert!(err.to_lowercase().contains("interval"), "{err}");
}

#[test]
fn mounts_bind_volume_tmpfs() {
    let Some(d) = daemon("mounts_bind_volume_tmpfs") else {
        return;
    };
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from-host\n").unwrap();
    let hs = host.to_str().unwrap();
    // --mount: bind (read-only), named volume, tmpfs with a size.
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={hs},dst=/host,readonly"),
        "--mount",
        "type=volume,src=vol1,dst=/data",
        "--mount",
        "type=tmpfs,dst=/scratch,tmpfs-size=1048576",
        "busybox",
        "sh",
        "-c",
        "cat /host/in.txt; touch /host/x 2>/dev/null && echo bind-rw || echo bind-ro; \
         echo kept > /data/f; df -k /scratch | tail -1 | awk '{print $2}'; \
         grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from-host", "{out}");
    assert_eq!(lines[1], "bind-ro", "{out}");
    assert_eq!(lines[2], "1024", "tmpfs-size=1m: {out}");
    assert_eq!(lines[3], "tmpfs", "{out}");
    // The volume made for the container was announced like one made with `volume create`.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    assert!(ev.lines().any(|l| l == "create vol1"), "{ev}");
    // The named volume outlives the container.
    let out = d.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/f"]);
    assert_eq!(out, "kept\n");
    assert!(d.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "vol1"));
    // -v creates a missing host directory; --mount refuses a missing source.
    let missing = d.dir.path().join("made-by-v");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "touch",
        "/m/ok",
    ]);
    assert!(missing.join("ok").exists());
    let err = d.fails(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={}/nope,dst=/x", d.dir.path().display()),
        "busybox",
        "true",
    ]);
    assert!(err.contains("bind source path does not exist"), "{err}");
    // --tmpfs with options, and an anonymous volume removed with --rm.
    let out = d.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/run:size=64m,mode=1770",
        "busybox",
        "sh",
        "-c",
        "stat -c %a /run; grep ' /run ' /proc/mounts | grep -o 'size=[0-9a-z]*'",
    ]);
    assert_eq!(out, "1770\nsize=65536k\n");
    let before = d.ok(&["volume", "ls", "-q"]).lines().count();
    d.ok(&["run", "--rm", "-v", "/anon", "busybox", "touch", "/anon/x"]);
    assert!(wait_until(Duration::from_secs(5), || d
        .ok(&["volume", "ls", "-q"])
        .lines()
        .count()
        == before));
}

#[test]
fn system_prune_removes_stopped_containers_and_unused_networks() {
    let Some(d) = daemon("system_prune_removes_stopped_containers_and_unused_networks") else {
        return;
    };
    d.ok(&["run", "--name", "done1", "busybox", "true"]);
    d.ok(&["run", "-d", "--name", "alive", "busybox", "sleep", "300"]);
    d.ok(&["network", "create", "unused-net"]);
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !names.contains("done1") && names.contains("alive"),
        "{names}"
    );
    assert!(!d.ok(&["network", "ls"]).contains("unused-net"));
    // The image stays: a running container uses it.
    assert!(d.ok(&["images", "-q"]).lines().count() == 1);
}

#[test]
fn rename_moves_the_dns_name() {
    let Some(d) = daemon("rename_moves_the_dns_name") else {
        return;
    };
    d.ok(&["network", "create", "ren"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "old-name",
        "--network",
        "ren",
        "busybox",
        "sleep",
        "300",
    ]);
    let ping = |name: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--network",
            "ren",
            "busybox",
            "ping",
            "-c1",
            "-W3",
            name,
        ])
        .status
        .success()
    };
    assert!(ping("old-name"));
    d.ok(&["rename", "old-name", "new-name"]);
    assert!(ping("new-name"), "the new name resolves at once");
    assert!(!ping("old-name"), "the old name no longer resolves");
    d.ok(&["rm", "-f", "new-name"]);
}

#[test]
fn run_interactive_stdin_and_detach_keys() {
    let Some(d) = daemon("run_interactive_stdin_and_detach_keys") else {
        return;
    };
    // -i without a tty: stdin reaches the container and its end closes it (StdinOnce).
    let mut child = d
        .docker_cmd(&["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line from stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line from stdin\ndone\n"
    );
    // -it under a terminal (script gives the CLI a pty): ctrl-p ctrl-q detaches the CLI and
    // the container runs on.
    let cfg = d.dir.path().join("docker-config");
    let mut child = std::process::Command::new("script")
        .args(["-qec", "docker run -it --name tty1 busybox sh", "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", &cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["inspect", "-f", "{{.State.Status}}", "tty1"])
        .status
        .success()
        && state(&d, "tty1") == "running"));
    std::thread::sleep(Duration::from_millis(500));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x10\x11").unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    let mut exited = false;
    while start.elapsed() < Duration::from_secs(5) {
        if child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(exited, "the CLI did not detach on ctrl-p ctrl-q");
    assert_eq!(
        state(&d, "tty1"),
        "running",
        "detaching left the container running"
    );
    d.ok(&["rm", "-f", "tty1"]);
}

#[test]
fn rmi_of_an_image_in_use() {
    let Some(d) = daemon("rmi_of_an_image_in_use") else {
        return;
    };
    d.ok(&["create", "--name", "user1", "busybox", "true"]);
    let err = d.fails(&["rmi", "busybox"]);
    assert!(
        err.contains("must force") && err.contains("is using its referenced image"),
        "{err}"
    );
    // Another name can go; forcing the last one untags but keeps the image for the container.
    d.ok(&["tag", "busybox", "other:1"]);
    d.ok(&["rmi", "other:1"]);
    let out = d.ok(&["rmi", "-f", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    // The container still runs from its image: `start -a` returns once `true` has exited (a
    // plain `start` returns while it may still run, and `rm` would then refuse it).
    d.ok(&["start", "-a", "user1"]);
    d.ok(&["rm", "user1"]);
}

/// `diff` right after a container exits, while the engine may be unmounting its root: the
/// changes come from the container's own layer list, so they are always the same.
#[test]
fn diff_right_after_exit_is_stable() {
    let Some(d) = daemon("diff_right_after_exit_is_stable") else {
        return;
    };
    for i in 0..15 {
        let name = format!("quick{i}");
        d.ok(&[
            "run",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "echo x > /tmp/f",
        ]);
        let out = d.ok(&["diff", &name]);
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(lines, ["A /tmp/f", "C /tmp"], "run {i}: {out}");
        d.ok(&["rm", &name]);
    }
}

/// `docker run --rm` of a short command under load: the output reaches the client every
/// time (the container, and its log, are removed only after attached streams delivered it).
#[test]
fn run_rm_output_is_never_lost_under_load() {
    let Some(d) = Berthd::with_busybox("run_rm_output_is_never_lost_under_load") else {
        return;
    };
    let d = std::sync::Arc::new(d);
    let workers: Vec<_> = (0..6)
        .map(|t| {
            let d = std::sync::Arc::clone(&d);
            std::thread::spawn(move || {
                let mut lost = Vec::new();
                for i in 0..25 {
                    let want = format!("out-{t}-{i}");
                    let o = d.docker(&["run", "--rm", "busybox", "echo", &want]);
                    let got = String::from_utf8_lossy(&o.stdout).into_owned();
                    if !o.status.success() || got.trim() != want {
                        lost.push(format!("{want}: {:?} {got:?}", o.status));
                    }
                }
                lost
            })
        })
        .collect();
    let lost: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(lost.is_empty(), "output lost: {lost:?}");
}
