//! The `berth` CLI's container inspection/maintenance commands, volumes, networks and system
//! commands against berthd, checked for the state they change and compared with the docker
//! CLI's output on the same engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth, berth_cmd, berth_ok, titles};
use berth_tests::services::free_port;
use std::io::Write;
use std::process::{Output, Stdio};

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn daemon(test: &str) -> Option<Berthd> {
    Berthd::with_busybox(test)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure: non-zero exit and exactly one line on stderr, which mentions `needle`.
fn one_line_failure(o: &Output, needle: &str) {
    let e = err(o);
    assert!(!o.status.success(), "should fail; stdout: {}", out(o));
    assert_eq!(e.trim_end().lines().count(), 1, "one line expected: {e}");
    assert!(e.contains(needle), "{needle:?} not in {e:?}");
}

/// `berth args` with `input` on stdin.
fn berth_stdin(d: &Berthd, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = berth_cmd(d, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

#[test]
fn pause_rename_wait_port_top_stats_inspect() {
    let Some(d) = daemon("cli_ops_pause_rename_wait_port_top_stats_inspect") else {
        return;
    };
    let tcp = format!("{}:80", free_port());
    let udp = format!("127.0.0.1:{}:53/udp", free_port());
    d.ok(&[
        "run", "-d", "--name", "web", "-p", &tcp, "-p", &udp, "busybox", "sleep", "1000",
    ]);
    let o = d.docker(&["run", "--name", "done", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));

    // pause / unpause: the engine's state follows.
    assert_eq!(berth_ok(&d, &["pause", "web"]), "web\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Paused}}", "web"]),
        "true\n"
    );
    assert!(d.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(berth_ok(&d, &["container", "unpause", "web"]), "web\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Paused}}", "web"]),
        "false\n"
    );
    one_line_failure(&berth(&d, &["pause", "nope"]), "nope");

    // rename
    assert_eq!(berth_ok(&d, &["rename", "web", "web2"]), "");
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", "web2"]), "/web2\n");
    one_line_failure(&berth(&d, &["rename", "nope", "other"]), "nope");

    // wait prints the exit code.
    assert_eq!(berth_ok(&d, &["wait", "done"]), "3\n");
    one_line_failure(&berth(&d, &["wait", "nope"]), "nope");

    // port: the same lines as docker's.
    let ours = berth_ok(&d, &["port", "web2"]);
    assert_eq!(ours, d.ok(&["port", "web2"]));
    assert_eq!(ours.lines().count(), 2, "{ours}");
    assert!(ours.contains("80/tcp -> 0.0.0.0:"), "{ours}");
    assert_eq!(
        berth_ok(&d, &["port", "web2", "80"]),
        d.ok(&["port", "web2", "80"])
    );
    assert_eq!(
        berth_ok(&d, &["port", "web2", "53/udp"]),
        d.ok(&["port", "web2", "53/udp"])
    );
    let o = berth(&d, &["port", "web2", "81"]);
    one_line_failure(&o, "81");
    assert_eq!(err(&o), d.fails(&["port", "web2", "81"]));

    // top: docker's titles and spacing (tabwriter minwidth 20), ps args passed on.
    let ours = berth_ok(&d, &["top", "web2"]);
    let theirs = d.ok(&["top", "web2"]);
    assert_eq!(ours.lines().next(), theirs.lines().next());
    assert!(ours.contains("sleep 1000"), "{ours}");
    let ours = berth_ok(&d, &["top", "web2", "-o", "pid,comm"]);
    assert_eq!(ours.lines().next(), Some("PID                 COMMAND"));
    assert!(ours.lines().nth(1).unwrap().ends_with("sleep"), "{ours}");
    one_line_failure(&berth(&d, &["top", "done"]), "not running");

    // stats: docker's titles, one row per running container.
    let ours = berth_ok(&d, &["stats", "--no-stream"]);
    let theirs = d.ok(&["stats", "--no-stream"]);
    assert_eq!(titles(&ours), titles(&theirs), "{ours}\n{theirs}");
    assert_eq!(ours.lines().count(), 2, "{ours}");
    assert!(ours.lines().nth(1).unwrap().contains("web2"), "{ours}");
    let ours = berth_ok(&d, &["stats", "--no-stream", "-a", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ours.lines().collect();
    names.sort();
    assert_eq!(names, ["done", "web2"]);
    let ours = berth_ok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.PIDs}}",
            "web2",
        ],
    );
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "web2"]);
    assert_eq!(ours, format!("{} 1\n", id.trim()));

    // Streaming stats (not a terminal): a fresh reading about every second until stopped.
    let mut child = berth_cmd(&d, &["stats", "--format", "{{.Name}} {{.PIDs}}", "web2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.unwrap_or_default())
            .collect::<Vec<_>>()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reader.join().unwrap(), ["web2 1", "web2 1"]);

    // inspect: the engine's JSON, indented like docker's; several targets make one array.
    for args in [
        vec!["inspect", "web2"],
        vec!["inspect", "busybox"],
        vec!["inspect", "web2", "busybox"],
        vec!["container", "inspect", "done"],
        vec!["inspect", "--type", "image", "busybox"],
        vec!["inspect", "-s", "done"],
    ] {
        assert_eq!(berth_ok(&d, &args), d.ok(&args), "{args:?}");
    }
    assert_eq!(
        berth_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Running}} {{.Name}}",
                "web2",
                "done"
            ]
        ),
        "true /web2\nfalse /done\n"
    );
    for args in [
        vec!["inspect", "nope"],
        vec!["container", "inspect", "nope"],
        vec!["inspect", "--type", "volume", "nope"],
    ] {
        let o = berth(&d, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(out(&o), "[]\n");
        assert_eq!(err(&o), d.fails(&args), "{args:?}");
    }
    // A found and a missing target: the found one is printed, the missing one reported.
    let o = berth(&d, &["inspect", "-f", "{{.Name}}", "web2", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(out(&o), "/web2\n");
    one_line_failure(&o, "No such object: nope");

    d.ok(&["rm", "-f", "web2", "done"]);
}

#[test]
fn cp_diff_export() {
    let Some(d) = daemon("cli_ops_cp_diff_export") else {
        return;
    };
    let o = d.docker(&[
        "run",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/f; mkdir /tmp/d; echo x > /tmp/d/y; rm /bin/true",
    ]);
    assert!(o.status.success(), "{}", err(&o));

    // diff: the same C/A/D lines as docker's.
    let ours = berth_ok(&d, &["diff", "box"]);
    let mut a: Vec<&str> = ours.lines().collect();
    let theirs = d.ok(&["diff", "box"]);
    let mut b: Vec<&str> = theirs.lines().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(a.contains(&"A /tmp/f"), "{ours}");
    assert!(a.contains(&"D /bin/true"), "{ours}");
    assert!(a.contains(&"C /tmp"), "{ours}");

    let host = tempfile::tempdir().unwrap();
    let h = |p: &str| host.path().join(p);
    let hs = |p: &str| h(p).to_string_lossy().into_owned();

    // container → host: a file to a new name, a directory to a new name and into a directory.
    let o = berth(&d, &["cp", "box:/tmp/f", &hs("f")]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        err(&o),
        "",
        "no progress output when stderr is not a terminal"
    );
    assert_eq!(std::fs::read_to_string(h("f")).unwrap(), "hi\n");
    berth_ok(&d, &["cp", "box:/tmp/d", &hs("newd")]);
    assert_eq!(std::fs::read_to_string(h("newd/y")).unwrap(), "x\n");
    std::fs::create_dir(h("into")).unwrap();
    berth_ok(&d, &["cp", "box:/tmp/d", &hs("into")]);
    assert_eq!(std::fs::read_to_string(h("into/d/y")).unwrap(), "x\n");

    // host → container, byte for byte (checked with docker's own cp).
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    std::fs::write(h("blob"), &data).unwrap();
    berth_ok(&d, &["cp", &hs("blob"), "box:/tmp/up"]);
    d.ok(&["cp", "box:/tmp/up", &hs("back")]);
    assert_eq!(std::fs::read(h("back")).unwrap(), data);
    // Into an existing directory, under its own name.
    berth_ok(&d, &["cp", &hs("blob"), "box:/tmp/d"]);
    berth_ok(&d, &["cp", "box:/tmp/d/blob", &hs("back2")]);
    assert_eq!(std::fs::read(h("back2")).unwrap(), data);
    // A directory to a new name.
    berth_ok(&d, &["cp", &hs("newd"), "box:/tmp/copied"]);
    d.ok(&["cp", "box:/tmp/copied/y", &hs("y2")]);
    assert_eq!(std::fs::read_to_string(h("y2")).unwrap(), "x\n");

    // `-` streams a tar: out to stdout, in from stdin.
    let o = berth(&d, &["cp", "box:/tmp/f", "-"]);
    assert!(o.status.success(), "{}", err(&o));
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["f"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut hdr = tar::Header::new_gnu();
    hdr.set_size(6);
    hdr.set_mode(0o644);
    hdr.set_cksum();
    b.append_data(&mut hdr, "streamed", &b"hello\n"[..])
        .unwrap();
    let t = b.into_inner().unwrap();
    let o = berth_stdin(&d, &["cp", "-", "box:/tmp"], &t);
    assert!(o.status.success(), "{}", err(&o));
    d.ok(&["cp", "box:/tmp/streamed", &hs("streamed")]);
    assert_eq!(std::fs::read_to_string(h("streamed")).unwrap(), "hello\n");

    one_line_failure(&berth(&d, &["cp", "nope:/tmp/f", &hs("x")]), "nope");
    one_line_failure(&berth(&d, &["cp", "box:/no/such", &hs("x")]), "no/such");
    one_line_failure(&berth(&d, &["cp", &hs("f"), &hs("g")]), "container");

    // export: a tar of the filesystem, to a file or a pipe.
    berth_ok(&d, &["export", "-o", &hs("fs.tar"), "box"]);
    let f = std::fs::File::open(h("fs.tar")).unwrap();
    let mut ar = tar::Archive::new(f);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "bin/busybox"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.trim_start_matches("./") == "tmp/f"));
    let o = berth(&d, &["container", "export", "box"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(o.stdout.len() > 500_000, "{} bytes", o.stdout.len());
    one_line_failure(&berth(&d, &["export", "nope"]), "nope");
}

#[test]
fn volumes_networks_and_prunes() {
    let Some(d) = daemon("cli_ops_volumes_networks_and_prunes") else {
        return;
    };
    // Volumes.
    assert_eq!(
        berth_ok(
            &d,
            &["volume", "create", "--label", "team=a", "-d", "local", "v1"]
        ),
        "v1\n"
    );
    assert_eq!(berth_ok(&d, &["volume", "create", "v2"]), "v2\n");
    let ours = berth_ok(&d, &["volume", "ls"]);
    assert_eq!(ours, d.ok(&["volume", "ls"]));
    assert_eq!(ours.lines().count(), 3, "{ours}");
    assert_eq!(berth_ok(&d, &["volume", "ls", "-q"]), "v1\nv2\n");
    assert_eq!(
        berth_ok(
            &d,
            &[
                "volume",
                "ls",
                "--filter",
                "label=team=a",
                "--format",
                "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}"
            ]
        ),
        "v1 local team=a local\n"
    );
    let fmt = "table {{.Name}}\t{{.Mountpoint}}";
    assert_eq!(
        berth_ok(&d, &["volume", "ls", "--format", fmt]),
        d.ok(&["volume", "ls", "--format", fmt])
    );
    assert_eq!(
        berth_ok(&d, &["volume", "inspect", "v1"]),
        d.ok(&["volume", "inspect", "v1"])
    );
    assert_eq!(
        berth_ok(
            &d,
            &[
                "volume",
                "inspect",
                "-f",
                "{{.Name}} {{.Labels.team}}",
                "v1"
            ]
        ),
        "v1 a\n"
    );
    one_line_failure(
        &berth(&d, &["volume", "ls", "--filter", "bogus=1"]),
        "bogus",
    );
    let o = berth(&d, &["volume", "inspect", "nope"]);
    assert_eq!(err(&o), d.fails(&["volume", "inspect", "nope"]));

    // Networks.
    let id = berth_ok(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.123.0.0/24",
            "--gateway",
            "10.123.0.1",
            "--ip-range",
            "10.123.0.128/25",
            "--label",
            "x=y",
            "--attachable",
            "n1",
        ],
    );
    assert_eq!(id.trim().len(), 64, "{id}");
    let cfg = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .IPAM.Config}} {{.Attachable}}",
        "n1",
    ]);
    assert!(cfg.contains("\"Gateway\":\"10.123.0.1\""), "{cfg}");
    assert!(cfg.contains("\"IPRange\":\"10.123.0.128/25\""), "{cfg}");
    assert!(cfg.trim_end().ends_with("true"), "{cfg}");
    berth_ok(&d, &["network", "create", "--internal", "n2"]);
    let ours = berth_ok(&d, &["network", "ls"]);
    assert_eq!(ours, d.ok(&["network", "ls"]));
    assert_eq!(
        berth_ok(
            &d,
            &["network", "ls", "--no-trunc", "-q", "--filter", "name=n1"]
        ),
        id
    );
    let fmt = "{{.Name}} {{.Driver}} {{.Internal}} {{.IPv6}} {{.Labels}}";
    assert_eq!(
        berth_ok(
            &d,
            &["network", "ls", "--filter", "name=n1", "--filter", "name=n2", "--format", fmt]
        ),
        "n1 bridge false false x=y\nn2 bridge true false \n"
    );
    let fmt = "table {{.ID}}\t{{.Name}}\t{{.Internal}}";
    assert_eq!(
        berth_ok(&d, &["network", "ls", "--format", fmt]),
        d.ok(&["network", "ls", "--format", fmt])
    );
    assert_eq!(
        berth_ok(&d, &["network", "inspect", "n1"]),
        d.ok(&["network", "inspect", "n1"])
    );
    one_line_failure(
        &berth(&d, &["network", "ls", "--filter", "bogus=1"]),
        "bogus",
    );

    // connect / disconnect change the container's networks.
    d.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    berth_ok(
        &d,
        &[
            "network",
            "connect",
            "--alias",
            "db",
            "--ip",
            "10.123.0.200",
            "n1",
            "c1",
        ],
    );
    let nets = d.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks.n1}}",
        "c1",
    ]);
    assert!(nets.contains("\"db\""), "{nets}");
    assert!(nets.contains("\"Gateway\":\"10.123.0.1\""), "{nets}");
    // The address asked for, outside the pool's --ip-range, in inspect and inside.
    assert!(nets.contains("\"IPAddress\":\"10.123.0.200\""), "{nets}");
    let inside = d.ok(&["exec", "c1", "ip", "-4", "addr"]);
    assert!(inside.contains("inet 10.123.0.200/24"), "{inside}");
    // An address in use, or outside the subnet, is refused with one line.
    d.ok(&["run", "-d", "--name", "c2", "busybox", "sleep", "1000"]);
    one_line_failure(
        &berth(
            &d,
            &["network", "connect", "--ip", "10.123.0.200", "n1", "c2"],
        ),
        "10.123.0.200",
    );
    one_line_failure(
        &berth(&d, &["network", "connect", "--ip", "10.9.9.9", "n1", "c2"]),
        "10.9.9.9",
    );
    d.ok(&["rm", "-f", "c2"]);
    berth_ok(&d, &["network", "disconnect", "-f", "n1", "c1"]);
    let nets = d.ok(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "c1"]);
    assert!(!nets.contains("\"n1\""), "{nets}");
    one_line_failure(&berth(&d, &["network", "connect", "nope", "c1"]), "nope");

    // rm
    assert_eq!(berth_ok(&d, &["network", "rm", "n2"]), "n2\n");
    assert_eq!(berth_ok(&d, &["volume", "rm", "-f", "v2"]), "v2\n");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "v1\n");
    one_line_failure(&berth(&d, &["network", "rm", "nope"]), "nope");

    // container prune: the prompt, a "no" keeps everything, -f removes the stopped one.
    d.ok(&["rm", "-f", "c1"]);
    let o = d.docker(&["run", "--name", "stopped", "busybox", "true"]);
    assert!(o.status.success());
    d.ok(&["run", "-d", "--name", "running", "busybox", "sleep", "1000"]);
    let o = berth_stdin(&d, &["container", "prune"], b"n\n");
    assert_eq!(
        out(&o),
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 2);
    let stopped = d.ok(&["inspect", "-f", "{{.Id}}", "stopped"]);
    let o = berth_stdin(&d, &["container", "prune"], b"y\n");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] \
             Deleted Containers:\n{}\n\nTotal reclaimed space: 0B\n",
            stopped.trim()
        )
    );
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "running\n");
    assert_eq!(
        berth_ok(&d, &["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );

    // volume prune -a: unused named volumes go; network prune: unused networks go.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "kept:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    let ours = berth_ok(&d, &["volume", "prune", "-f", "-a"]);
    assert_eq!(ours, "Deleted Volumes:\nv1\n\nTotal reclaimed space: 0B\n");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "kept\n");
    let o = berth_stdin(&d, &["network", "prune"], b"y\n");
    assert_eq!(
        out(&o),
        "WARNING! This will remove all custom networks not used by at least one container.\n\
         Are you sure you want to continue? [y/N] Deleted Networks:\nn1\n\n"
    );
    assert!(!d.ok(&["network", "ls"]).contains("n1"));
    one_line_failure(
        &berth(&d, &["volume", "prune", "-f", "--filter", "bogus=1"]),
        "bogus",
    );
    d.ok(&["rm", "-f", "running", "user"]);
}

#[test]
fn system_df_info_events_version_prune() {
    let Some(d) = daemon("cli_ops_system_df_info_events_version_prune") else {
        return;
    };
    let since = now_unix();
    let o = d.docker(&["run", "--name", "ev", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(o.status.code(), Some(2));
    d.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let until = now_unix();

    // events in a window: docker's line shape and the container's create/start/die.
    let (s, u) = (since.to_string(), until.to_string());
    let args = ["events", "--since", &s, "--until", &u];
    let ours = berth_ok(&d, &args);
    assert_eq!(ours, d.ok(&args));
    let ev = d.ok(&["inspect", "-f", "{{.Id}}", "ev"]);
    let ev = ev.trim();
    for action in ["create", "start", "die"] {
        let needle = format!(" container {action} {ev} (");
        assert!(ours.contains(&needle), "{needle} not in\n{ours}");
    }
    assert!(
        ours.contains("exitCode=2, image=busybox, name=ev)"),
        "{ours}"
    );
    let line = ours.lines().next().unwrap();
    assert_eq!(&line[10..11], "T");
    assert_eq!(&line[29..31], "Z ", "{line}");
    let args = [
        "system",
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ];
    assert_eq!(berth_ok(&d, &args), "die ev\n");
    let o = berth(&d, &["events", "--since", "yesterday", "--until", "0s"]);
    one_line_failure(&o, "--since");
    // A relative window: the events of the last minute, ending now.
    let recent = berth_ok(&d, &["events", "--since", "1m", "--until", "0s"]);
    assert!(recent.contains(&format!("container die {ev}")), "{recent}");

    // system df: docker's titles and rows.
    let ours = berth_ok(&d, &["system", "df"]);
    let theirs = d.ok(&["system", "df"]);
    assert_eq!(titles(&ours), titles(&theirs));
    assert_eq!(ours, theirs);
    let ours = berth_ok(
        &d,
        &[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ],
    );
    assert_eq!(
        ours,
        "Images 1 1\nContainers 2 1\nLocal Volumes 0 0\nBuild Cache 0 0\n"
    );
    let verbose = berth_ok(&d, &["system", "df", "-v"]);
    assert!(verbose.contains("Images space usage:"), "{verbose}");
    assert!(verbose.contains("Containers space usage:"), "{verbose}");

    // info: the counts, like docker's.
    let ours = berth_ok(&d, &["info"]);
    for line in [
        " Containers: 2",
        "  Running: 1",
        "  Paused: 0",
        "  Stopped: 1",
        " Images: 1",
    ] {
        assert!(ours.lines().any(|l| l == line), "{line:?} not in\n{ours}");
    }
    let f = "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.ServerVersion}}";
    assert_eq!(
        berth_ok(&d, &["system", "info", "--format", f]),
        d.ok(&["info", "--format", f])
    );

    // version --format
    let f = "{{.Server.Version}} {{.Server.APIVersion}}";
    assert_eq!(
        berth_ok(&d, &["version", "--format", f]),
        d.ok(&["version", "--format", f])
    );

    // system prune: the prompt, then stopped containers and unused networks go.
    d.ok(&["network", "create", "unused"]);
    let o = berth_stdin(&d, &["system", "prune"], b"n\n");
    assert_eq!(
        out(&o),
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 2);
    let ours = berth_ok(&d, &["system", "prune", "-f"]);
    assert!(
        ours.contains(&format!("Deleted Containers:\n{ev}\n")),
        "{ours}"
    );
    assert!(ours.contains("Deleted Networks:\nunused\n"), "{ours}");
    assert!(ours.ends_with("Total reclaimed space: 0B\n"), "{ours}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "up\n");
    assert!(!d.ok(&["network", "ls"]).contains("unused"));
    d.ok(&["rm", "-f", "up"]);
}
