//! `berth run`/`create` flags (checked inside the container or through `docker inspect` on
//! the same engine), interactive sessions under a real pty (`script`), detach keys,
//! `start -a -i`, `attach`, `exec` exit codes and signal proxying.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth, berth_bin, berth_cmd, berth_ok};
use berth_tests::suite::wait_until;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn daemon(test: &str) -> Option<Berthd> {
    Berthd::with_busybox(test)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `docker inspect -f '{{json <path>}}' name` as JSON.
fn inspect(d: &Berthd, name: &str, path: &str) -> serde_json::Value {
    let out = d.ok(&["inspect", "-f", &format!("{{{{json {path}}}}}"), name]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{path}: {e}: {out}"))
}

fn running(d: &Berthd, name: &str) -> bool {
    d.ok(&["inspect", "-f", "{{.State.Running}}", name]).trim() == "true"
}

/// Single-quote for sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The berth command line for `sh -c` (inside `script`).
fn berth_line(d: &Berthd, args: &[&str]) -> String {
    let mut v = vec![
        q(&berth_bin().display().to_string()),
        "-H".into(),
        q(&format!("unix://{}", d.sock.display())),
    ];
    v.extend(args.iter().map(|a| q(a)));
    v.join(" ")
}

/// Run `sh -c script` inside a fresh pty (util-linux `script`); `input` is written to the
/// terminal at the given delays. Returns (exit code, everything the terminal showed).
fn in_pty(script: &str, input: &[(u64, &[u8])], timeout: Duration) -> (Option<i32>, String) {
    let mut child = Command::new("script")
        .args(["-qfec", script, "/dev/null"])
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let mut stdin = child.stdin.take().unwrap();
    for (delay_ms, bytes) in input {
        std::thread::sleep(Duration::from_millis(*delay_ms));
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }
    let code = wait_child(&mut child, timeout);
    drop(stdin);
    let shown = text(&reader.join().unwrap());
    (code, shown)
}

/// Wait for `child` (killed after `timeout`: None).
fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// berth with `input` on its stdin.
fn berth_stdin(d: &Berthd, args: &[&str], input: &[u8]) -> Output {
    let mut child = berth_cmd(d, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn create_flags_reach_the_engine_config() {
    let Some(d) = daemon("create_flags_reach_the_engine_config") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(
        &env_file,
        "# a comment\n\nFROM_FILE=one two\nEMPTY=\n  SPACED=x\nFROM_HOST\nNOT_SET_ANYWHERE_XYZ\n",
    )
    .unwrap();
    let label_file = dir.path().join("labels");
    std::fs::write(&label_file, "# labels\nteam=core\n").unwrap();
    let out = berth_cmd(
        &d,
        &[
            "create",
            "--name",
            "cfg",
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "1.5",
            "-c",
            "512",
            "--pids-limit",
            "100",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "CHOWN",
            "--read-only",
            "--init",
            "-h",
            "myhost",
            "--add-host",
            "db:10.0.0.5",
            "--dns",
            "1.1.1.1",
            "--ulimit",
            "nofile=1024:2048",
            "--security-opt",
            "no-new-privileges",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "5",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--health-timeout",
            "1m30s",
            "--health-retries",
            "4",
            "--health-start-period",
            "500ms",
            "--tmpfs",
            "/scratch:size=1m",
            "--mount",
            "type=tmpfs,dst=/t2,tmpfs-size=2m",
            "--mount",
            "type=volume,src=vol1,target=/data,ro",
            "--expose",
            "7000-7001/udp",
            "-l",
            "a=b",
            "--label-file",
            label_file.to_str().unwrap(),
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "--restart",
            "on-failure:2",
            "--entrypoint",
            "",
            "busybox",
            "sleep",
            "1",
        ],
    )
    .env("FROM_HOST", "from-env")
    .env_remove("NOT_SET_ANYWHERE_XYZ")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "create prints the full ID: {id:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", "cfg"]).trim(), id);

    let hc = inspect(&d, "cfg", ".HostConfig");
    assert_eq!(hc["Memory"], 64 << 20, "{hc}");
    assert_eq!(hc["MemorySwap"], 128 << 20);
    assert_eq!(hc["NanoCpus"], 1_500_000_000_i64);
    assert_eq!(hc["CpuShares"], 512);
    assert_eq!(hc["PidsLimit"], 100);
    assert_eq!(hc["CapAdd"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(hc["CapDrop"], serde_json::json!(["CHOWN"]));
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["Init"], true);
    assert_eq!(hc["ExtraHosts"], serde_json::json!(["db:10.0.0.5"]));
    assert_eq!(hc["Dns"], serde_json::json!(["1.1.1.1"]));
    assert_eq!(hc["Ulimits"][0]["Name"], "nofile");
    assert_eq!(hc["Ulimits"][0]["Soft"], 1024);
    assert_eq!(hc["Ulimits"][0]["Hard"], 2048);
    assert_eq!(hc["SecurityOpt"], serde_json::json!(["no-new-privileges"]));
    assert_eq!(hc["Tmpfs"]["/scratch"], "size=1m");
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 2);
    let mounts = hc["Mounts"].as_array().expect("HostConfig.Mounts");
    assert_eq!(mounts.len(), 2, "{hc}");
    assert_eq!(mounts[0]["Type"], "tmpfs");
    assert_eq!(mounts[0]["Target"], "/t2");
    assert_eq!(mounts[0]["TmpfsOptions"]["SizeBytes"], 2 << 20);
    assert_eq!(mounts[1]["Type"], "volume");
    assert_eq!(mounts[1]["Source"], "vol1");
    assert_eq!(mounts[1]["ReadOnly"], true);

    let cfg = inspect(&d, "cfg", ".Config");
    assert_eq!(cfg["Hostname"], "myhost");
    assert_eq!(cfg["User"], "1000");
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    assert_eq!(cfg["StopTimeout"], 5);
    assert_eq!(cfg["Cmd"], serde_json::json!(["sleep", "1"]));
    assert!(
        cfg["Entrypoint"].is_null() || cfg["Entrypoint"] == serde_json::json!([]),
        "--entrypoint '' clears it: {}",
        cfg["Entrypoint"]
    );
    assert_eq!(cfg["Labels"]["a"], "b");
    assert_eq!(cfg["Labels"]["team"], "core");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    for want in [
        "FROM_FILE=one two",
        "EMPTY=",
        "SPACED=x",
        "FROM_HOST=from-env",
        "X=1",
    ] {
        assert!(env.iter().any(|e| e == want), "{want} missing from {env:?}");
    }
    assert!(
        !env.iter().any(|e| e.starts_with("NOT_SET_ANYWHERE_XYZ")),
        "{env:?}"
    );
    let exposed = cfg["ExposedPorts"].as_object().expect("ExposedPorts");
    assert!(
        exposed.contains_key("7000/udp") && exposed.contains_key("7001/udp"),
        "{exposed:?}"
    );
    let hc = &cfg["Healthcheck"];
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "true"]));
    assert_eq!(hc["Interval"], 5_000_000_000_i64);
    assert_eq!(hc["Timeout"], 90_000_000_000_i64);
    assert_eq!(hc["Retries"], 4);
    assert_eq!(hc["StartPeriod"], 500_000_000);

    // --privileged and --no-healthcheck on another container; never started.
    berth_ok(
        &d,
        &[
            "create",
            "--name",
            "priv",
            "--privileged",
            "--no-healthcheck",
            "busybox",
        ],
    );
    assert_eq!(inspect(&d, "priv", ".HostConfig.Privileged"), true);
    assert_eq!(
        inspect(&d, "priv", ".Config.Healthcheck.Test"),
        serde_json::json!(["NONE"])
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "priv"]).trim(),
        "created"
    );
}

#[test]
fn run_flags_take_effect_inside_the_container() {
    let Some(d) = daemon("run_flags_take_effect_inside_the_container") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from-host\n").unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "FILE_VAR=file value\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/host,readonly",
        dir.path().display()
    );
    let script = "hostname; echo \"$FILE_VAR|$E\"; pwd; id -u; \
                  cat /host/hello.txt; \
                  touch /host/x 2>/dev/null && echo host-rw || echo host-ro; \
                  touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; \
                  touch /scratch/ok && echo scratch-rw; \
                  grep -c ' /scratch tmpfs' /proc/mounts; \
                  grep dbhost /etc/hosts; grep -c gw /etc/hosts";
    let out = berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "-h",
            "inner",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "E=cli",
            "-w",
            "/tmp",
            "-u",
            "65534",
            "--add-host",
            "dbhost:10.1.2.3",
            "--add-host",
            "gw:host-gateway",
            "--mount",
            &bind,
            "--read-only",
            "--tmpfs",
            "/scratch:mode=1777",
            "busybox",
            "sh",
            "-c",
            script,
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "inner",
            "file value|cli",
            "/tmp",
            "65534",
            "from-host",
            "host-ro",
            "root-ro",
            "scratch-rw",
            "1",
            "10.1.2.3\tdbhost",
            "1"
        ],
        "{out}"
    );

    // --entrypoint replaces the image's; "" clears it so the command runs alone.
    assert_eq!(
        berth_ok(
            &d,
            &["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]
        )
        .trim(),
        "a b"
    );
    assert_eq!(
        berth_ok(
            &d,
            &["run", "--rm", "--entrypoint", "", "busybox", "echo", "c"]
        )
        .trim(),
        "c"
    );
    // -a stdout only: stderr is not attached.
    let o = berth(
        &d,
        &[
            "run",
            "--rm",
            "-a",
            "stdout",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!(text(&o.stdout).trim(), "out");
    assert!(!text(&o.stderr).contains("err"), "{}", text(&o.stderr));
    // The container's exit code passes through; --rm removes it.
    let o = berth(
        &d,
        &[
            "run", "--rm", "--name", "ex", "busybox", "sh", "-c", "exit 6",
        ],
    );
    assert_eq!(o.status.code(), Some(6));
    assert!(
        !d.docker(&["inspect", "ex"]).status.success(),
        "--rm left ex"
    );
}

#[test]
fn publish_all_and_network_alias() {
    let Some(d) = daemon("publish_all_and_network_alias") else {
        return;
    };
    berth_ok(
        &d,
        &[
            "run", "-d", "--name", "pa", "-P", "--expose", "7000", "busybox", "sleep", "60",
        ],
    );
    assert_eq!(inspect(&d, "pa", ".HostConfig.PublishAllPorts"), true);
    let port = d.ok(&["port", "pa"]);
    assert!(
        port.lines().any(|l| l.starts_with("7000/tcp -> ")),
        "docker port: {port}"
    );
    let host_port: u16 = port
        .lines()
        .find(|l| l.starts_with("7000/tcp -> "))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no host port in {port}"));
    assert!(host_port > 0);

    d.ok(&["network", "create", "aliasnet"]);
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "srv",
            "--net",
            "aliasnet",
            "--network-alias",
            "webalias",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let aliases = inspect(&d, "srv", ".NetworkSettings.Networks.aliasnet.Aliases");
    assert!(
        aliases
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "webalias")),
        "{aliases}"
    );
    let o = berth(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "aliasnet",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "webalias",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "ping webalias: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("1 packets received"),
        "{}",
        text(&o.stdout)
    );
    d.ok(&["rm", "-f", "pa", "srv"]);
    d.ok(&["network", "rm", "aliasnet"]);
}

#[test]
fn stdin_run_i_start_a_i_and_attach() {
    let Some(d) = daemon("stdin_run_i_start_a_i_and_attach") else {
        return;
    };
    // run -i: piped stdin reaches the container, EOF ends it.
    let o = berth_stdin(&d, &["run", "-i", "--rm", "busybox", "cat"], b"hi\nthere\n");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "hi\nthere\n");
    // Without -i the container gets no stdin.
    let o = berth_stdin(&d, &["run", "--rm", "busybox", "cat"], b"dropped\n");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "");

    // create, then start -a: output and exit code.
    let id = berth_ok(
        &d,
        &[
            "create",
            "--name",
            "later",
            "busybox",
            "sh",
            "-c",
            "echo from-start; exit 3",
        ],
    );
    assert_eq!(id.trim().len(), 64);
    let o = berth(&d, &["start", "-a", "later"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "from-start\n");
    // create -i, then start -a -i with stdin.
    berth_ok(
        &d,
        &[
            "create",
            "-i",
            "--name",
            "cat",
            "busybox",
            "sh",
            "-c",
            "cat; exit 4",
        ],
    );
    let o = berth_stdin(&d, &["start", "-a", "-i", "cat"], b"piped\n");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "piped\n");
    // start -a on two containers is refused.
    let o = berth(&d, &["start", "-a", "later", "cat"]);
    assert_eq!(o.status.code(), Some(125));

    // attach: output of a running container and its exit code.
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "att",
            "busybox",
            "sh",
            "-c",
            "sleep 2; echo late; exit 5",
        ],
    );
    let o = berth(&d, &["attach", "--no-stdin", "att"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "late\n");
    let o = berth(&d, &["attach", "att"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o.stderr).contains("You cannot attach to a stopped container"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn interactive_terminal_resize_and_detach() {
    let Some(d) = daemon("interactive_terminal_resize_and_detach") else {
        return;
    };
    // run -it sees a terminal of the local size, and follows a resize.
    let run = berth_line(
        &d,
        &[
            "run",
            "-it",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "test -t 0 && echo TTY-IN; tty; stty size; sleep 4; stty size",
        ],
    );
    let script = format!("stty rows 33 cols 77; (sleep 3; stty rows 44 cols 88 </dev/tty) & {run}");
    let (code, shown) = in_pty(&script, &[], Duration::from_secs(60));
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("TTY-IN"), "{shown}");
    assert!(shown.contains("/dev/pts/"), "{shown}");
    assert!(shown.contains("33 77"), "initial size: {shown}");
    assert!(shown.contains("44 88"), "resize: {shown}");

    // Typed input reaches the shell; the exit code passes through.
    let run = berth_line(&d, &["run", "-it", "--rm", "busybox", "sh"]);
    let (code, shown) = in_pty(
        &run,
        &[(1500, b"echo typed-$((6*7))\r"), (500, b"exit 9\r")],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(9), "{shown}");
    assert!(shown.contains("typed-42"), "{shown}");

    // Ctrl-P Ctrl-Q detaches: berth exits 0, the container runs on.
    let run = berth_line(&d, &["run", "-it", "--name", "keep", "busybox", "sh"]);
    let (code, shown) = in_pty(&run, &[(1500, b"\x10\x11")], Duration::from_secs(30));
    assert_eq!(code, Some(0), "{shown}");
    assert!(running(&d, "keep"), "detach stopped the container");

    // attach, then detach with custom keys (without them berth would not return).
    // After the detach the shell still reads what a new client types (StdinOnce does not
    // close a tty's stdin), then the custom keys detach again.
    let att = berth_line(&d, &["attach", "--detach-keys", "ctrl-a,x", "keep"]);
    let (code, shown) = in_pty(
        &att,
        &[(1000, b"echo again-$((2*3))\r"), (1000, b"\x01x")],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("again-6"), "{shown}");
    assert!(running(&d, "keep"));

    // exec -it: a terminal, its size, and detach.
    let ex = berth_line(
        &d,
        &[
            "exec",
            "-it",
            "keep",
            "sh",
            "-c",
            "test -t 0 && echo EXEC-TTY; stty size",
        ],
    );
    let (code, shown) = in_pty(
        &format!("stty rows 21 cols 61; {ex}"),
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("EXEC-TTY"), "{shown}");
    assert!(shown.contains("21 61"), "{shown}");
    let ex = berth_line(&d, &["exec", "-it", "keep", "sh"]);
    let (code, shown) = in_pty(&ex, &[(1500, b"\x10\x11")], Duration::from_secs(30));
    assert_eq!(code, Some(0), "{shown}");
    assert!(running(&d, "keep"));
    d.ok(&["rm", "-f", "keep"]);
}

#[test]
fn exec_exit_codes_detach_and_options() {
    let Some(d) = daemon("exec_exit_codes_detach_and_options") else {
        return;
    };
    berth_ok(
        &d,
        &["run", "-d", "--name", "ex", "busybox", "sleep", "120"],
    );
    for (cmd, want) in [
        (vec!["true"], 0),
        (vec!["sh", "-c", "exit 3"], 3),
        (vec!["/etc"], 126),
        (vec!["no-such-command"], 127),
    ] {
        let mut args = vec!["exec", "ex"];
        args.extend(cmd.iter().copied());
        let ours = berth(&d, &args).status.code();
        let docker = d.docker(&args).status.code();
        assert_eq!(ours, Some(want), "berth exec {cmd:?}");
        assert_eq!(ours, docker, "berth vs docker exit code for {cmd:?}");
    }
    // Output and stdin.
    assert_eq!(berth_ok(&d, &["exec", "ex", "echo", "hello"]), "hello\n");
    let o = berth_stdin(&d, &["exec", "-i", "ex", "cat"], b"exec-in\n");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "exec-in\n");
    // -e, --env-file, -w, -u.
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# c\nEF=from-file\n").unwrap();
    let out = berth_ok(
        &d,
        &[
            "exec",
            "-e",
            "A=1",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/etc",
            "-u",
            "65534",
            "ex",
            "sh",
            "-c",
            "echo $A $EF; pwd; id -u",
        ],
    );
    assert_eq!(out, "1 from-file\n/etc\n65534\n");
    // -d returns at once; the command runs on.
    let t = Instant::now();
    let o = berth(
        &d,
        &["exec", "-d", "ex", "sh", "-c", "sleep 1; touch /tmp/done"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "");
    assert!(t.elapsed() < Duration::from_secs(1), "exec -d waited");
    assert!(wait_until(Duration::from_secs(10), || {
        berth(&d, &["exec", "ex", "test", "-f", "/tmp/done"])
            .status
            .success()
    }));
    // A missing container: the engine's message.
    let o = berth(&d, &["exec", "nope", "true"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("No such container"),
        "{}",
        text(&o.stderr)
    );
    d.ok(&["rm", "-f", "ex"]);
}

/// sig-proxy: a signal sent to an attached `berth run` reaches the container's process.
/// (SIGTERM: berthd's container processes start with SIGHUP/SIGINT/SIGPIPE/SIGCHLD blocked
/// (SigBlk 0x11003), so an `INT` trap never fires even for `docker kill -s INT`; berth
/// forwards SIGINT the same way.)
#[test]
fn signals_are_proxied_to_the_container() {
    let Some(d) = daemon("signals_are_proxied_to_the_container") else {
        return;
    };
    // Ctrl-C (SIGINT) and SIGTERM sent to berth reach the container's shell, whose trap
    // runs: the container starts with no signal blocked or ignored.
    for (sig, name) in [
        (nix::sys::signal::Signal::SIGINT, "INT"),
        (nix::sys::signal::Signal::SIGTERM, "TERM"),
    ] {
        let script =
            format!("trap 'echo got; exit 7' {name}; echo ready; while true; do sleep 1; done");
        let mut child = berth_cmd(
            &d,
            &[
                "run", "--rm", "--name", "sigc", "busybox", "sh", "-c", &script,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
        let code = wait_child(&mut child, Duration::from_secs(30));
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        assert_eq!(rest, ["got"], "{name}: exit {code:?}, stderr: {err}");
        assert_eq!(code, Some(7), "{name}");
    }
    // Nothing blocked or ignored in the container's init or in an exec'd process.
    let out = berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "grep",
            "-E",
            "^Sig(Blk|Ign)",
            "/proc/self/status",
        ],
    );
    assert_eq!(
        out,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    berth_ok(
        &d,
        &["run", "-d", "--name", "sigx", "busybox", "sleep", "600"],
    );
    let out = berth_ok(
        &d,
        &[
            "exec",
            "sigx",
            "grep",
            "-E",
            "^Sig(Blk|Ign)",
            "/proc/self/status",
        ],
    );
    assert_eq!(
        out,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

#[test]
fn bad_flag_values_exit_125_with_one_line() {
    let Some(d) = daemon("bad_flag_values_exit_125_with_one_line") else {
        return;
    };
    let cases: &[(&[&str], &str)] = &[
        (&["-m", "12x"], "--memory"),
        (&["--memory-swap", "lots", "-m", "1g"], "--memory-swap"),
        (&["--cpus", "two"], "--cpus"),
        (&["-c", "1.5"], "--cpu-shares"),
        (&["--pids-limit", "many"], "--pids-limit"),
        (&["--mount", "type=bind,target=/x,colour=red"], "colour"),
        (&["--mount", "type=disk,target=/x"], "disk"),
        (&["--mount", "type=volume,src=v"], "target"),
        (&["--ulimit", "nofile"], "--ulimit"),
        (&["--ulimit", "bogus=1"], "bogus"),
        (&["--add-host", "db"], "--add-host"),
        (&["--add-host", "db:not-an-ip"], "--add-host"),
        (&["--dns", "resolver"], "--dns"),
        (&["--health-interval", "5 seconds"], "--health-interval"),
        (&["--health-retries", "x"], "--health-retries"),
        (
            &["--no-healthcheck", "--health-cmd", "true"],
            "--no-healthcheck",
        ),
        (&["--stop-signal", "SIGNOPE"], "--stop-signal"),
        (&["--stop-timeout", "soon"], "--stop-timeout"),
        (&["--restart", "sometimes"], "--restart"),
        (&["--pull", "sometimes"], "--pull"),
        (&["-p", "80:http"], "-p"),
        (&["--expose", "port"], "--expose"),
        (&["-a", "stdbad"], "-a"),
        (&["--tmpfs", "relative"], "--tmpfs"),
        (&["--env-file", "/no/such/env-file"], "--env-file"),
        (&["--security-opt", "what"], "--security-opt"),
        (&["--network-alias", "x"], "--network-alias"),
        (&["-h", "bad_host!"], "--hostname"),
        (&["--detach-keys", "ctrl-pp"], "--detach-keys"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let o = berth(&d, &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} should name {needle}"
        );
    }
    // create validates the same way; nothing is created.
    let o = berth(&d, &["create", "--name", "nope", "--cpus", "x", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(!d.docker(&["inspect", "nope"]).status.success());
    assert_eq!(
        d.ok(&["ps", "-aq"]).trim(),
        "",
        "bad flags created containers"
    );
    // --help works for run (while -h is --hostname).
    let o = berth(&d, &["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("--hostname"));
}
