//! `berth ps` and `--format` against berthd, compared with the docker CLI on the same engine:
//! the default table, `-a`/`-q`/`-s`/`-n`/`-l`/`--no-trunc`/`--filter`, Go templates,
//! `table` templates, `json`, `raw`, `.Label`; bad templates; and the CLI's top level
//! (unknown commands and flags, `--help`, completion scripts).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth, berth_bin};
use berth_tests::services::free_port;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

/// A daemon with three containers: `web` running (two labels, a published port, an exposed
/// one, a named volume), `done` exited (one label), `made` created.
fn daemon(test: &str) -> Option<Berthd> {
    let d = Berthd::with_busybox(test)?;
    let p = free_port();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "com.example.team=blue",
        "-l",
        "tier=web",
        "-p",
        &format!("127.0.0.1:{p}:80"),
        "--expose",
        "443",
        "-v",
        "data:/data",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    d.ok(&[
        "run",
        "--name",
        "done",
        "-l",
        "tier=batch",
        "busybox",
        "true",
    ]);
    d.ok(&["create", "--name", "made", "busybox", "sleep", "1"]);
    Some(d)
}

fn text(o: &Output) -> (String, String, Option<i32>) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

/// berth and docker print the same thing (stdout, stderr, success) for `args`. Times shown
/// ("5 seconds ago", "Up 5 seconds") can tick between the two runs: try a few times.
fn same(d: &Berthd, args: &[&str]) -> String {
    let mut last = None;
    for _ in 0..5 {
        let ours = text(&berth(d, args));
        let theirs = text(&d.docker(args));
        let success = (ours.2 == Some(0), theirs.2 == Some(0));
        if ours.0 == theirs.0 && ours.1 == theirs.1 && success.0 == success.1 {
            return ours.0;
        }
        last = Some((ours, theirs));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let (ours, theirs) = last.unwrap();
    panic!(
        "berth {args:?} differs from docker\n--- berth ({:?}):\n{}{}--- docker ({:?}):\n{}{}",
        ours.2, ours.0, ours.1, theirs.2, theirs.0, theirs.1
    );
}

#[test]
fn ps_tables_and_flags_match_docker() {
    let Some(d) = daemon("ps_tables_and_flags_match_docker") else {
        return;
    };
    let out = same(&d, &["ps"]);
    assert!(out.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{out}");
    assert_eq!(out.lines().count(), 2, "only web runs:\n{out}");
    assert!(out.contains("443/tcp, 127.0.0.1:"), "{out}");
    let out = same(&d, &["ps", "-a"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.contains("Exited (0)") && out.contains("Created"),
        "{out}"
    );
    let ids = same(&d, &["ps", "-q"]);
    assert_eq!(ids.lines().count(), 1);
    assert_eq!(ids.trim().len(), 12);
    assert_eq!(same(&d, &["ps", "-aq"]).lines().count(), 3);
    let out = same(&d, &["ps", "-s"]);
    assert!(out.lines().next().unwrap().ends_with("SIZE"), "{out}");
    // docker's size text: "0B", or "12kB (virtual 4.27MB)" when the engine knows the
    // image's size.
    let size = out.lines().nth(1).unwrap().rsplit("   ").next().unwrap();
    assert!(
        size.ends_with('B') && size.starts_with(char::is_numeric),
        "{out}"
    );
    same(&d, &["ps", "-a", "-s"]);
    let out = same(&d, &["ps", "-a", "--no-trunc"]);
    assert!(
        out.lines().nth(1).unwrap().split(' ').next().unwrap().len() == 64,
        "{out}"
    );
    assert_eq!(same(&d, &["ps", "-n", "2"]).lines().count(), 3);
    let out = same(&d, &["ps", "-l"]);
    assert!(out.lines().nth(1).unwrap().ends_with("made"), "{out}");
    same(&d, &["ps", "-aq", "--no-trunc"]);
    // Filters go to the engine.
    let out = same(&d, &["ps", "-a", "--filter", "status=exited"]);
    assert!(out.lines().nth(1).unwrap().ends_with("done"), "{out}");
    assert_eq!(out.lines().count(), 2);
    let out = same(
        &d,
        &["ps", "-a", "-f", "label=tier", "--format", "{{.Names}}"],
    );
    assert_eq!(out, "done\nweb\n");
    same(&d, &["ps", "-a", "--filter", "label=com.example.team=blue"]);
    same(&d, &["ps", "-a", "--filter", "name=we", "-q"]);
    let out = same(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "status=running",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}} {{.State}}",
        ],
    );
    assert_eq!(out, "made created\nweb running\n");
}

#[test]
fn ps_formats_match_docker() {
    let Some(d) = daemon("ps_formats_match_docker") else {
        return;
    };
    let out = same(&d, &["ps", "-a", "--format", "{{.ID}}\t{{.Names}}"]);
    assert_eq!(out.lines().count(), 3);
    assert!(out
        .lines()
        .all(|l| l.len() == 12 + 1 + 4 || l.len() == 12 + 1 + 3));
    let out = same(
        &d,
        &["ps", "-a", "--format", "table {{.Names}}\t{{.Status}}"],
    );
    assert!(out.starts_with("NAMES     STATUS\n"), "{out}");
    assert_eq!(
        same(
            &d,
            &["ps", "-a", "--format", "{{.Label \"com.example.team\"}}"]
        ),
        "\n\nblue\n"
    );
    let out = same(
        &d,
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Label \"com.example.team\"}}\t{{.Names}}",
        ],
    );
    assert!(out.starts_with("team      NAMES\n"), "{out}");
    // Every placeholder, in a table.
    same(
        &d,
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedAt}}\t{{.Ports}}\t{{.State}}\
             \t{{.Size}}\t{{.Labels}}\t{{.Mounts}}\t{{.Networks}}\t{{.LocalVolumes}}\t{{.Platform}}",
        ],
    );
    // An empty last column.
    same(
        &d,
        &["ps", "-a", "--format", "table {{.Names}}\t{{.Ports}}"],
    );
    same(&d, &["ps", "-a", "--format", "raw"]);
    same(&d, &["ps", "-a", "-s", "--format", "raw"]);
    // -q wins over a custom format, with docker's warning.
    let out = same(&d, &["ps", "-a", "-q", "--format", "{{.Names}}"]);
    assert_eq!(out.lines().count(), 3);
    same(&d, &["ps", "-q", "--format", "raw"]);
    // Template functions on real rows.
    let out = same(
        &d,
        &[
            "ps",
            "-a",
            "--format",
            "{{if eq .State \"running\"}}{{.Names | upper}} up{{else}}{{.Names}} {{.State}}{{end}}\
             : {{join (split .Labels \",\") \" | \"}} {{len .Names}} {{printf \"%q|%-8s|\" .Names .State}}\
             {{- range $i, $p := split .Ports \", \"}} {{$i}}={{$p}}{{end}}",
        ],
    );
    assert!(
        out.contains("WEB up: com.example.team=blue | tier=web 3 \"web\"|running |"),
        "{out}"
    );
    same(
        &d,
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names | lower | title}} {{truncate .ID 5}} [{{pad .Ports 1 1}}] {{println .State}}",
        ],
    );

    // {{json .}} and json: same objects, with docker's keys; equal values where they don't
    // depend on the clock.
    for format in ["{{json .}}", "json"] {
        let args = ["ps", "-a", "--format", format];
        let ours: Vec<Value> = berth_ok_lines(&d, &args);
        let theirs: Vec<Value> = d
            .ok(&args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ours.len(), 3);
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(&theirs) {
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(o), keys(t), "{format}");
            for k in keys(o) {
                if k != "RunningFor" && k != "Status" {
                    assert_eq!(o[&k], t[&k], "{format}: {k}");
                }
            }
        }
    }
    // Byte-for-byte, including Go's escaping of "->" in a row.
    let out = same(&d, &["ps", "--format", "{{json .}}"]);
    assert!(out.contains("-\\u003e80/tcp"), "{out}");
    same(&d, &["ps", "--format", "{{json .Ports}}"]);
}

fn berth_ok_lines(d: &Berthd, args: &[&str]) -> Vec<Value> {
    let o = berth(d, args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn bad_templates_fail_with_one_line() {
    let Some(d) = daemon("bad_templates_fail_with_one_line") else {
        return;
    };
    for (format, msg) in [
        (
            "{{.Names",
            "failed to parse template: template: :1: unclosed action",
        ),
        (
            "{{nope .Names}}",
            "failed to parse template: template: :1: function \"nope\" not defined",
        ),
        (
            "{{if .Names}}x",
            "failed to parse template: template: :1: unexpected EOF",
        ),
        (
            "{{.Nope}}",
            "failed to execute template: template: :1:2: executing \"\" at <.Nope>: \
             can't evaluate field Nope",
        ),
    ] {
        let o = berth(&d, &["ps", "-a", "--format", format]);
        let (out, err, code) = text(&o);
        assert_eq!(code, Some(125), "{format}: {err}");
        assert_eq!(out, "", "{format}");
        assert_eq!(err.lines().count(), 1, "{format}: {err}");
        assert!(err.starts_with(msg), "{format}: {err}");
        // docker fails too, with the same words up to its Go type names.
        let theirs = d.docker(&["ps", "-a", "--format", format]);
        assert!(!theirs.status.success());
        let theirs = String::from_utf8_lossy(&theirs.stderr);
        assert!(theirs.starts_with(msg), "docker: {theirs}");
    }
    // A bad filter is refused with one line too.
    let (_, err, code) = text(&berth(&d, &["ps", "--filter", "bogus"]));
    assert_eq!(code, Some(125));
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn run(args: &[&str]) -> (String, String, Option<i32>) {
    let o = Command::new(berth_bin())
        .args(args)
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    text(&o)
}

#[test]
fn unknown_commands_and_flags_get_a_tip_and_docker_codes() {
    let Some(d) = daemon("unknown_commands_and_flags_get_a_tip_and_docker_codes") else {
        return;
    };
    // docker's codes: 1 for an unknown command, 125 for a bad flag.
    let (out, err, code) = text(&berth(&d, &["pss"]));
    assert_eq!(code, Some(1));
    assert_eq!(code, d.docker(&["pss"]).status.code());
    assert_eq!(out, "");
    // clap's tip names the close commands ('ps', and 'push' too).
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(lines[0], "berth: 'pss' is not a berth command.");
    assert!(
        lines[1].starts_with("tip: ") && lines[1].contains("'ps'"),
        "{err}"
    );
    assert_eq!(lines[2], "See 'berth --help'.");
    // docker refuses it too.
    assert!(!d.docker(&["pss"]).status.success());
    let (_, err, code) = text(&berth(&d, &["ps", "--al"]));
    assert_eq!(code, Some(125));
    assert_eq!(
        err,
        "unknown flag: --al\ntip: a similar argument exists: '--all'\nSee 'berth ps --help'.\n"
    );
    let docker = d.docker(&["ps", "--bogus"]);
    assert_eq!(docker.status.code(), Some(125));
    let (_, err, code) = text(&berth(&d, &["ps", "--bogus"]));
    assert_eq!(code, Some(125));
    assert!(
        String::from_utf8_lossy(&docker.stderr).starts_with(err.lines().next().unwrap()),
        "{err}"
    );
    let (_, err, code) = text(&berth(&d, &["volume", "lss"]));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("'lss' is not a berth volume command."),
        "{err}"
    );
    assert!(err.contains("'ls'"), "{err}");
    let (_, err, code) = text(&berth(&d, &["run"]));
    assert_eq!(code, Some(125));
    assert!(
        err.contains("<IMAGE>") && err.contains("See 'berth run --help'."),
        "{err}"
    );
}

#[test]
fn help_and_completion_scripts() {
    let (out, _, code) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Usage: berth") && out.contains("ps") && out.contains("completion"));
    let (out, _, code) = run(&[]);
    assert_eq!(code, Some(0), "bare berth shows its help");
    assert!(out.contains("Usage: berth"));
    for cmd in [
        &["ps", "--help"][..],
        &["run", "--help"],
        &["volume", "ls", "--help"],
        &["network", "--help"],
        &["system", "--help"],
        &["image", "ls", "--help"],
        &["completion", "--help"],
    ] {
        let (out, err, code) = run(cmd);
        assert_eq!(code, Some(0), "{cmd:?}: {err}");
        assert!(out.contains("Usage: berth"), "{cmd:?}: {out}");
    }
    let (out, _, _) = run(&["ps", "--help"]);
    for flag in [
        "--all",
        "--quiet",
        "--size",
        "--no-trunc",
        "--filter",
        "--format",
        "--last",
        "--latest",
    ] {
        assert!(out.contains(flag), "{flag} in ps --help:\n{out}");
    }

    // bash can load the script and then completes berth.
    let bin = berth_bin();
    let script = format!(
        "source <({} completion bash) && complete -p berth",
        bin.display()
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("-F _berth berth"));
    // ... and offers the subcommands.
    let script = format!(
        "source <({} completion bash) && COMP_WORDS=(berth p) COMP_CWORD=1 COMP_LINE='berth p' \
         COMP_POINT=7 && _berth berth p berth && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin.display()
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&o.stdout);
    assert!(words.lines().any(|w| w == "ps"), "{words}");
    assert!(words.lines().any(|w| w == "pull"), "{words}");
    let (out, _, code) = run(&["completion", "zsh"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("#compdef berth"));
    let (out, _, code) = run(&["completion", "fish"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("complete -c berth"));
    let (_, err, code) = run(&["completion", "tcsh"]);
    assert_eq!(code, Some(125));
    assert!(err.starts_with("invalid value 'tcsh'"), "{err}");
}
