//! `berth context …` against docker's context store: the create/ls/use/show/inspect/rm round
//! trip, the real docker CLI reading contexts berth wrote (and the other way round), `berth
//! ps` reaching the engine a context names while `-H`/`DOCKER_HOST` still win, and the
//! errors for bad names and missing contexts.
//!
//! Every test has its own DOCKER_CONFIG and HOME (temp directories): the caller's contexts,
//! current context and DOCKER_HOST/BERTH_HOST/DOCKER_CONTEXT never leak in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth_bin, titles};
use berth_tests::require_root;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A private docker config directory (also HOME, so `~/.docker` and `~/.berth` are in it).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("berth-ctx-")
                .tempdir()
                .unwrap(),
        }
    }

    fn cfg(&self) -> &Path {
        self.dir.path()
    }

    fn isolate(&self, c: &mut Command) {
        c.env("DOCKER_CONFIG", self.cfg())
            .env("HOME", self.cfg())
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
    }

    /// `berth args` with `extra` environment variables.
    fn berth_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut c = Command::new(berth_bin());
        self.isolate(&mut c);
        c.envs(extra.iter().copied()).args(args);
        c.output().expect("run berth")
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.berth_env(args, &[])
    }

    fn berth_ok(&self, args: &[&str]) -> String {
        ok(&format!("berth {args:?}"), self.berth(args))
    }

    /// The real docker CLI on the same config directory (`--config`, as users pass it).
    fn docker(&self, args: &[&str]) -> Output {
        let mut c = Command::new("docker");
        self.isolate(&mut c);
        c.env_remove("DOCKER_CONFIG")
            .arg("--config")
            .arg(self.cfg())
            .args(args);
        c.output()
            .expect("run the docker CLI (it is /usr/local/bin/docker on the CI machine)")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        ok(&format!("docker {args:?}"), self.docker(args))
    }

    fn config_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.cfg().join("config.json")).unwrap())
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Asserts exit code 1 and that stderr holds `want`; the stderr.
fn fails(what: &str, o: Output, want: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit code\nstdout: {}\nstderr: {err}",
        text(&o.stdout)
    );
    assert!(err.contains(want), "{what}: stderr {err:?} lacks {want:?}");
    err
}

/// The table row whose first column is `name` (with or without docker's " *").
fn row<'a>(table: &'a str, name: &str) -> Option<&'a str> {
    table.lines().skip(1).find(|l| {
        let first = l.split("   ").next().unwrap_or_default().trim();
        first == name || first == format!("{name} *")
    })
}

#[test]
fn create_ls_use_show_inspect_rm_round_trip() {
    let e = Env::new();
    // config.json with keys berth must keep.
    let original = serde_json::json!({
        "auths": {"r.example.com": {"auth": "dTpw"}},
        "psFormat": "table {{.ID}}\t{{.Names}}",
        "detachKeys": "ctrl-x,x",
    });
    std::fs::write(e.cfg().join("config.json"), original.to_string()).unwrap();

    // Only the default context at first, and it is the current one.
    let ls = e.berth_ok(&["context", "ls"]);
    assert_eq!(
        titles(&ls),
        ["NAME", "DESCRIPTION", "DOCKER ENDPOINT", "ERROR"]
    );
    assert_eq!(ls.lines().count(), 2, "{ls}");
    assert!(
        row(&ls, "default").unwrap().starts_with("default *"),
        "{ls}"
    );
    assert_eq!(e.berth_ok(&["context", "show"]), "default\n");

    let o = e.berth(&[
        "context",
        "create",
        "dev-1",
        "--docker",
        "host=unix:///tmp/dev-1.sock",
        "--description",
        "the dev engine",
    ]);
    assert_eq!(ok("create", o.clone()), "dev-1\n");
    assert!(text(&o.stderr).contains("Successfully created context \"dev-1\""));
    e.berth_ok(&[
        "context",
        "create",
        "other.2",
        "--docker",
        "host=unix:///o.sock",
    ]);

    let ls = e.berth_ok(&["context", "ls"]);
    let dev = row(&ls, "dev-1").unwrap_or_else(|| panic!("no dev-1 row:\n{ls}"));
    assert!(dev.contains("the dev engine") && dev.contains("unix:///tmp/dev-1.sock"));
    assert!(!dev.contains('*'), "{ls}");
    assert_eq!(
        e.berth_ok(&["context", "ls", "-q"]),
        "default\ndev-1\nother.2\n"
    );

    // use: currentContext written, every other key kept.
    let o = e.berth(&["context", "use", "dev-1"]);
    assert_eq!(ok("use", o.clone()), "dev-1\n");
    assert!(text(&o.stderr).contains("Current context is now \"dev-1\""));
    let mut want = original.clone();
    want["currentContext"] = "dev-1".into();
    assert_eq!(e.config_json(), want);
    assert_eq!(e.berth_ok(&["context", "show"]), "dev-1\n");
    let ls = e.berth_ok(&["context", "ls"]);
    assert!(row(&ls, "dev-1").unwrap().starts_with("dev-1 *"), "{ls}");
    assert!(!row(&ls, "default").unwrap().contains('*'), "{ls}");

    // --format json: one object per line, docker's keys.
    let rows: Vec<Value> = e
        .berth_ok(&["context", "ls", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    let dev = rows.iter().find(|r| r["Name"] == "dev-1").unwrap();
    assert_eq!(dev["Current"], true);
    assert_eq!(dev["DockerEndpoint"], "unix:///tmp/dev-1.sock");
    assert_eq!(dev["Description"], "the dev engine");
    assert_eq!(
        rows.iter().filter(|r| r["Current"] == true).count(),
        1,
        "{rows:?}"
    );
    assert_eq!(
        e.berth_ok(&["context", "ls", "--format", "{{.Name}}:{{.Current}}"]),
        "default:false\ndev-1:true\nother.2:false\n"
    );

    // inspect: docker's shape; with no name, the current context.
    let v: Value = serde_json::from_str(&e.berth_ok(&["context", "inspect"])).unwrap();
    assert_eq!(v[0]["Name"], "dev-1");
    assert_eq!(v[0]["Metadata"]["Description"], "the dev engine");
    assert_eq!(
        v[0]["Endpoints"]["docker"]["Host"],
        "unix:///tmp/dev-1.sock"
    );
    assert_eq!(v[0]["Endpoints"]["docker"]["SkipTLSVerify"], false);
    let meta = v[0]["Storage"]["MetadataPath"].as_str().unwrap();
    assert!(Path::new(meta).join("meta.json").is_file(), "{meta}");
    assert_eq!(
        e.berth_ok(&[
            "context",
            "inspect",
            "other.2",
            "-f",
            "{{.Endpoints.docker.Host}}"
        ]),
        "unix:///o.sock\n"
    );

    // rm: the current context only with -f, which resets the current context.
    fails(
        "rm current",
        e.berth(&["context", "rm", "dev-1"]),
        "context \"dev-1\" is in use, set -f flag to force remove",
    );
    assert_eq!(e.berth_ok(&["context", "rm", "other.2"]), "other.2\n");
    assert_eq!(e.berth_ok(&["context", "rm", "-f", "dev-1"]), "dev-1\n");
    assert_eq!(
        e.config_json(),
        original,
        "currentContext gone, the rest kept"
    );
    assert_eq!(e.berth_ok(&["context", "show"]), "default\n");
    assert_eq!(e.berth_ok(&["context", "ls", "-q"]), "default\n");
    assert!(!Path::new(meta).exists());

    // A new config.json is private.
    let e2 = Env::new();
    e2.berth_ok(&["context", "create", "aa", "--docker", "host=unix:///a"]);
    e2.berth_ok(&["context", "use", "aa"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(e2.cfg().join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn docker_and_berth_share_the_store() {
    let e = Env::new();
    // berth writes, docker reads.
    e.berth_ok(&[
        "context",
        "create",
        "from-berth",
        "--docker",
        "host=unix:///run/x/berth.sock",
        "--description",
        "written by berth",
    ]);
    let ls = e.docker_ok(&["context", "ls"]);
    let r = row(&ls, "from-berth").unwrap_or_else(|| panic!("docker does not list it:\n{ls}"));
    assert!(
        r.contains("written by berth") && r.contains("unix:///run/x/berth.sock"),
        "{ls}"
    );
    assert_eq!(
        e.docker_ok(&[
            "context",
            "inspect",
            "from-berth",
            "--format",
            "{{.Endpoints.docker.Host}}"
        ]),
        "unix:///run/x/berth.sock\n"
    );
    e.berth_ok(&["context", "use", "from-berth"]);
    assert_eq!(e.docker_ok(&["context", "show"]), "from-berth\n");

    // docker writes, berth reads.
    e.docker_ok(&[
        "context",
        "create",
        "from-docker",
        "--docker",
        "host=unix:///tmp/s",
        "--description",
        "written by docker",
    ]);
    let ls = e.berth_ok(&["context", "ls"]);
    let r = row(&ls, "from-docker").unwrap_or_else(|| panic!("berth does not list it:\n{ls}"));
    assert!(
        r.contains("written by docker") && r.contains("unix:///tmp/s"),
        "{ls}"
    );
    assert!(row(&ls, "from-berth").unwrap().starts_with("from-berth *"));
    // The same inspect output, byte for byte, for both contexts.
    for name in ["from-docker", "from-berth"] {
        assert_eq!(
            e.berth_ok(&["context", "inspect", name]),
            e.docker_ok(&["context", "inspect", name]),
            "inspect {name}"
        );
    }
    // The same table and JSON rows for the stored contexts (the default's endpoint differs:
    // berth's socket, docker's).
    let ours = e.berth_ok(&["context", "ls"]);
    let theirs = e.docker_ok(&["context", "ls"]);
    assert_eq!(titles(&ours), titles(&theirs));
    let cells = |r: Option<&str>| -> Vec<String> {
        r.unwrap_or_default()
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    for name in ["from-berth", "from-docker"] {
        assert_eq!(
            cells(row(&ours, name)),
            cells(row(&theirs, name)),
            "\n{ours}\n{theirs}"
        );
    }
    let json_rows = |s: String| -> Vec<Value> {
        s.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["Name"] != "default")
            .collect()
    };
    assert_eq!(
        json_rows(e.berth_ok(&["context", "ls", "--format", "json"])),
        json_rows(e.docker_ok(&["context", "ls", "--format", "json"]))
    );

    // docker switches, berth follows; berth switches back to default, docker follows.
    e.docker_ok(&["context", "use", "from-docker"]);
    assert_eq!(e.berth_ok(&["context", "show"]), "from-docker\n");
    e.berth_ok(&["context", "use", "default"]);
    assert_eq!(e.docker_ok(&["context", "show"]), "default\n");
    // berth removes what docker created; docker no longer has it.
    e.berth_ok(&["context", "rm", "from-docker"]);
    let o = e.docker(&["context", "inspect", "from-docker"]);
    assert!(!o.status.success(), "docker still sees it");
}

#[test]
fn ps_follows_the_context_and_host_flags_win() {
    if !require_root("ps_follows_the_context_and_host_flags_win") {
        return;
    }
    let d = Berthd::start();
    let e = Env::new();
    let engine = format!("host=unix://{}", d.sock.display());
    e.berth_ok(&["context", "create", "engine", "--docker", &engine]);
    e.berth_ok(&[
        "context",
        "create",
        "nowhere",
        "--docker",
        "host=unix:///nonexistent/berth.sock",
    ]);
    let root = d.data_root().display().to_string();
    let info = ["info", "--format", "{{.DockerRootDir}}"];

    // DOCKER_CONTEXT names the engine: berth reaches that berthd.
    let ctx = [("DOCKER_CONTEXT", "engine")];
    let o = e.berth_env(&["ps"], &ctx);
    let out = ok("ps with DOCKER_CONTEXT", o);
    assert!(out.starts_with("CONTAINER ID"), "{out}");
    assert_eq!(ok("info", e.berth_env(&info, &ctx)).trim(), root);

    // The current context (berth context use) does too.
    e.berth_ok(&["context", "use", "engine"]);
    assert_eq!(ok("info via currentContext", e.berth(&info)).trim(), root);

    // DOCKER_CONTEXT beats currentContext.
    let err = fails(
        "ps with DOCKER_CONTEXT=nowhere",
        e.berth_env(&["ps"], &[("DOCKER_CONTEXT", "nowhere")]),
        "Cannot connect to the Berth engine at unix:///nonexistent/berth.sock",
    );
    assert!(!err.contains(&d.sock.display().to_string()), "{err}");

    // -H wins over the context; so do DOCKER_HOST and BERTH_HOST.
    e.berth_ok(&["context", "use", "nowhere"]);
    let h = format!("unix://{}", d.sock.display());
    let o = e.berth_env(
        &["-H", &h, "info", "--format", "{{.DockerRootDir}}"],
        &[("DOCKER_CONTEXT", "nowhere")],
    );
    assert_eq!(ok("-H over DOCKER_CONTEXT", o).trim(), root);
    for var in ["DOCKER_HOST", "BERTH_HOST"] {
        let o = e.berth_env(&info, &[(var, h.as_str()), ("DOCKER_CONTEXT", "nowhere")]);
        assert_eq!(ok(&format!("{var} over DOCKER_CONTEXT"), o).trim(), root);
    }
    // …and -H over a context pointing at the engine goes where -H says.
    fails(
        "-H nowhere",
        e.berth_env(
            &["-H", "unix:///nonexistent/other.sock", "ps"],
            &[("DOCKER_CONTEXT", "engine")],
        ),
        "unix:///nonexistent/other.sock",
    );
    // The default context shows -H's / DOCKER_HOST's endpoint and is the current one then.
    let ls = ok(
        "ls with DOCKER_HOST",
        e.berth_env(&["context", "ls"], &[("DOCKER_HOST", h.as_str())]),
    );
    let r = row(&ls, "default").unwrap();
    assert!(r.starts_with("default *") && r.contains(&h), "{ls}");
}

#[test]
fn bad_names_and_missing_contexts_are_clear_errors() {
    let e = Env::new();
    for bad in ["x", "a/b", "_ab", "é1"] {
        fails(
            &format!("create {bad}"),
            e.berth(&["context", "create", bad, "--docker", "host=unix:///s"]),
            "names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"",
        );
    }
    fails(
        "create default",
        e.berth(&["context", "create", "default", "--docker", "host=unix:///s"]),
        "\"default\" is a reserved context name",
    );
    e.berth_ok(&["context", "create", "taken", "--docker", "host=unix:///s"]);
    fails(
        "create taken",
        e.berth(&["context", "create", "taken", "--docker", "host=unix:///t"]),
        "context \"taken\" already exists",
    );
    // The first context is untouched by the refused create.
    assert_eq!(
        e.berth_ok(&[
            "context",
            "inspect",
            "taken",
            "-f",
            "{{.Endpoints.docker.Host}}"
        ]),
        "unix:///s\n"
    );
    fails(
        "create with a path, not a host",
        e.berth(&["context", "create", "pathy", "--docker", "host=/tmp/s"]),
        "scheme://address",
    );
    fails(
        "create with an unknown key",
        e.berth(&["context", "create", "keyed", "--docker", "foo=bar"]),
        "unrecognized config key \"foo\"",
    );

    // Missing contexts: use, inspect, rm, and as the engine of a command.
    fails(
        "use missing",
        e.berth(&["context", "use", "missing"]),
        "context \"missing\" does not exist",
    );
    assert!(
        !e.cfg().join("config.json").exists(),
        "a refused use writes nothing"
    );
    fails(
        "inspect missing",
        e.berth(&["context", "inspect", "missing"]),
        "context \"missing\" does not exist",
    );
    fails(
        "rm missing",
        e.berth(&["context", "rm", "missing"]),
        "context \"missing\" does not exist",
    );
    fails(
        "rm default",
        e.berth(&["context", "rm", "default"]),
        "cannot be removed",
    );
    let err = fails(
        "ps with an unknown DOCKER_CONTEXT",
        e.berth_env(&["ps"], &[("DOCKER_CONTEXT", "missing")]),
        "context \"missing\" (from DOCKER_CONTEXT) does not exist",
    );
    assert!(err.contains("unset DOCKER_CONTEXT"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // A currentContext docker left pointing at a removed context.
    std::fs::write(
        e.cfg().join("config.json"),
        r#"{"currentContext":"missing"}"#,
    )
    .unwrap();
    fails(
        "ps with a missing currentContext",
        e.berth(&["ps"]),
        "berth context use default",
    );
    // The way out works.
    e.berth_ok(&["context", "use", "default"]);
    assert_eq!(e.berth_ok(&["context", "show"]), "default\n");
    assert_eq!(e.config_json(), serde_json::json!({}));

    // A config.json that is not JSON: context use refuses to overwrite it.
    std::fs::write(e.cfg().join("config.json"), "{not json").unwrap();
    fails(
        "use with a broken config.json",
        e.berth(&["context", "use", "taken"]),
        "fix or remove the file",
    );
    assert_eq!(
        std::fs::read_to_string(e.cfg().join("config.json")).unwrap(),
        "{not json"
    );
}
