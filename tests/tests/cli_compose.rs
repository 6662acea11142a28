//! `berth compose` (docker compose v2's command line) against real berthd daemons, with
//! projects of busybox services: a web service that asks a db service by name on every
//! request and publishes a host port; health- and completion-gated start order; scaling;
//! convergence (only what changed is recreated); interop with Debian's docker-compose 1.29 in
//! both directions; load errors that name the file, line, column and key; `config`, `run`,
//! `exec`, the lifecycle commands, `ls` and `build`.
//!
//! The engine's view is checked with the docker CLI (`docker ps/inspect/network/volume`) on
//! the same daemon, not with `berth compose` itself. Tests that need a daemon need root and
//! print `skipped:` otherwise; the load/config tests need no daemon (they point `-H` at a
//! socket that does not exist, so they also show that loading never dials the engine).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth_bin, berth_cmd};
use berth_tests::services::free_port;
use berth_tests::{find_in_path, unique_id};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A compose command that hangs this long fails the test (a hung engine must not hang CI).
const TIMEOUT: Duration = Duration::from_secs(180);

/// Run `c` with stdin closed, both pipes drained, killed after [`TIMEOUT`].
fn run_timed(mut c: Command, what: &str) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung for {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One compose project in its own directory under the daemon's temp dir.
struct Proj<'a> {
    d: &'a Berthd,
    dir: PathBuf,
    name: String,
}

impl<'a> Proj<'a> {
    /// `<tmp>/<name>/compose.yaml` holding `yaml`; commands get `-p <name>`.
    fn new(d: &'a Berthd, name: &str, yaml: &str) -> Proj<'a> {
        let dir = d.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = Proj {
            d,
            dir,
            name: name.to_string(),
        };
        p.write(yaml);
        p
    }

    fn write(&self, yaml: &str) {
        std::fs::write(self.dir.join("compose.yaml"), yaml).unwrap();
    }

    /// `berth -H <sock> compose -p <name> args` in the project's directory.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = berth_cmd(self.d, &["compose", "-p", &self.name]);
        c.args(args).current_dir(&self.dir);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_timed(self.cmd(args), &format!("berth compose {args:?}"))
    }

    /// Asserting success: stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth compose -p {} {args:?} failed ({}):\nstdout: {}\nstderr: {}\nberthd log (tail):\n{}",
            self.name,
            o.status,
            out(&o),
            err(&o),
            tail(&self.d.log(), 40)
        );
        out(&o)
    }

    /// Asserting failure (non-zero exit): the output.
    fn fails(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "berth compose -p {} {args:?} should have failed:\nstdout: {}\nstderr: {}",
            self.name,
            out(&o),
            err(&o)
        );
        o
    }

    /// The engine's containers of this project (`docker ps -a` by label): name -> (id, state).
    fn containers(&self) -> BTreeMap<String, (String, String)> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        self.d
            .ok(&[
                "ps",
                "-a",
                "--no-trunc",
                "--filter",
                &filter,
                "--format",
                "{{.Names}} {{.ID}} {{.State}}",
            ])
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (n, id, st) = (w.next()?, w.next()?, w.next()?);
                Some((n.to_string(), (id.to_string(), st.to_string())))
            })
            .collect()
    }

    fn names(&self) -> BTreeSet<String> {
        self.containers().into_keys().collect()
    }

    fn inspect(&self, container: &str) -> Value {
        let v: Value = serde_json::from_str(&self.d.ok(&["inspect", container])).unwrap();
        v[0].clone()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `GET path` on 127.0.0.1:port: the body, or None while nothing answers well.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    if !text.starts_with("HTTP/1.") || !text.contains(" 200 ") {
        return None;
    }
    // A CGI's own header block may end in a bare "\n\n" (busybox httpd passes it through).
    text.split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .map(|(_, b)| b.to_string())
}

/// Poll `GET path` until the body contains `want` (30 s).
fn wait_body(d: &Berthd, port: u16, path: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_get(port, path);
        if let Some(b) = last.as_deref().filter(|b| b.contains(want)) {
            return b.to_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "127.0.0.1:{port}{path} did not answer with {want:?}: last {last:?}\nberthd log (tail):\n{}",
        tail(&d.log(), 40)
    );
}

/// `ps --format json` / `ls --format json`: docker compose prints either one JSON array or
/// one object per line (v2.21+); both are accepted.
fn json_rows(text: &str) -> Vec<Value> {
    let t = text.trim();
    if t.is_empty() {
        return Vec::new();
    }
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<Value>>(t)
            .unwrap_or_else(|e| panic!("not a JSON array ({e}): {t}"));
    }
    t.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Nanoseconds since the epoch of an RFC 3339 UTC time (`2024-05-01T10:00:00.123456789Z`).
fn unix_nanos(s: &str) -> i128 {
    let s = s.trim().trim_matches('"');
    let (date, time) = s
        .split_once('T')
        .unwrap_or_else(|| panic!("not RFC 3339: {s}"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let time = time
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("not UTC: {s}"));
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let nanos: i128 = format!("{frac:0<9}")[..9].parse().unwrap();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    i128::from(secs) * 1_000_000_000 + nanos
}

/// The lines of `logs` output that belong to `service` instance 1: docker compose prefixes
/// each line with the container's name (`<project>-web-1`, or `web-1` since v2.17), padding
/// and `|`. Returns the text after `| `.
fn log_lines(logs: &str, project: &str, service: &str) -> Vec<String> {
    let short = format!("{service}-1");
    let long = format!("{project}-{service}-1");
    logs.lines()
        .filter_map(|l| {
            let (prefix, text) = l.split_once('|')?;
            let p = prefix.trim();
            (p == short || p == long).then(|| text.strip_prefix(' ').unwrap_or(text).to_string())
        })
        .collect()
}

#[test]
fn unit_helpers() {
    assert_eq!(unix_nanos("1970-01-01T00:00:01Z"), 1_000_000_000);
    assert_eq!(
        unix_nanos("2024-03-01T00:00:00.5Z"),
        1_709_251_200_500_000_000
    );
    assert_eq!(
        log_lines(
            "shop-web-1  | a\nweb-1 | b\ndb-1  | c\nweb-10 | d",
            "shop",
            "web"
        ),
        vec!["a", "b"]
    );
    assert_eq!(json_rows("[{\"a\":1}]").len(), 1);
    assert_eq!(json_rows("{\"a\":1}\n{\"a\":2}\n").len(), 2);
}

/// web answers `/cgi-bin/q` by fetching `http://db:6379/value` (the db service, by name, on
/// the project network) at each request; db serves a file on the named volume `data`.
fn shop_yaml(port: u16, token: &str) -> String {
    format!(
        r#"services:
  db:
    image: busybox
    volumes:
      - data:/data
    command: ["sh", "-c", "[ -f /data/value ] || echo {token} > /data/value; echo db-ready; exec httpd -f -p 6379 -h /data"]
  web:
    image: busybox
    depends_on: [db]
    ports:
      - "127.0.0.1:{port}:8080"
    command: ["sh", "-c", "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho from-db: $$(wget -qO- http://db:6379/value)\\n' > /www/cgi-bin/q && chmod +x /www/cgi-bin/q && echo web-ready && exec httpd -f -p 8080 -h /www"]
volumes:
  data: {{}}
"#
    )
}

#[test]
fn two_services_by_name_ps_logs_down() {
    let Some(d) = Berthd::with_busybox("cli_compose_two_services_by_name_ps_logs_down") else {
        return;
    };
    let port = free_port();
    let token = unique_id("db-value");
    let p = Proj::new(&d, "shop", &shop_yaml(port, &token));
    p.ok(&["up", "-d"]);

    // The host port answers with what web got from db, by name, at request time.
    let body = wait_body(&d, port, "/cgi-bin/q", &token);
    assert!(body.contains(&format!("from-db: {token}")), "{body}");

    // Resources: names, labels, network, volume.
    assert_eq!(p.names(), set(&["shop-db-1", "shop-web-1"]));
    let cs = p.containers();
    for (svc, (id, state)) in [("db", &cs["shop-db-1"]), ("web", &cs["shop-web-1"])] {
        assert_eq!(state, "running", "{svc}");
        let c = p.inspect(id);
        let labels = &c["Config"]["Labels"];
        assert_eq!(labels["com.docker.compose.project"], "shop", "{svc}");
        assert_eq!(labels["com.docker.compose.service"], svc);
        assert_eq!(labels["com.docker.compose.container-number"], "1");
        assert_eq!(labels["com.docker.compose.oneoff"], "False");
        let hash = labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap_or("");
        assert!(
            hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "config-hash {hash:?}"
        );
        assert!(
            c["NetworkSettings"]["Networks"]["shop_default"].is_object(),
            "{svc} not on shop_default: {}",
            c["NetworkSettings"]["Networks"]
        );
    }
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|n| n == "shop_default"), "{nets}");
    let net = d.ok(&["network", "inspect", "shop_default"]);
    assert!(net.contains("com.docker.compose.network"), "{net}");
    let vols = d.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(vols.lines().any(|n| n == "shop_data"), "{vols}");

    // ps: the table, -q, --services, --format json.
    let ps = p.ok(&["ps"]);
    let head = ps.lines().next().unwrap_or_default();
    for col in ["NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"] {
        assert!(head.contains(col), "no {col} column: {ps}");
    }
    let web_row = ps.lines().find(|l| l.starts_with("shop-web-1")).unwrap();
    assert!(web_row.contains("Up"), "{ps}");
    assert!(
        web_row.contains(&format!("127.0.0.1:{port}->8080/tcp")),
        "{ps}"
    );
    assert!(ps.lines().any(|l| l.starts_with("shop-db-1")), "{ps}");
    let ids: Vec<(String, String)> = p.containers().into_values().collect();
    let q = p.ok(&["ps", "-q"]);
    assert_eq!(q.lines().count(), 2, "{q}");
    for line in q.lines() {
        assert!(line.len() >= 12, "{q}");
        assert!(
            ids.iter().any(|(id, _)| id.starts_with(line)),
            "{line} not an id: {ids:?}"
        );
    }
    let services: BTreeSet<String> = p
        .ok(&["ps", "--services"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(services, set(&["db", "web"]));
    let rows = json_rows(&p.ok(&["ps", "--format", "json"]));
    assert_eq!(rows.len(), 2, "{rows:?}");
    // docker compose's keys: ID, Name, Image, Command, Project, Service, State, Status,
    // Health, ExitCode, Publishers [{URL, TargetPort, PublishedPort, Protocol}].
    let web = rows
        .iter()
        .find(|r| r["Service"] == "web")
        .unwrap_or_else(|| {
            panic!("no row with \"Service\": \"web\" (docker compose's keys): {rows:?}")
        });
    assert_eq!(web["Name"], "shop-web-1");
    assert_eq!(web["State"], "running");
    assert_eq!(web["Project"], "shop");
    let publishers = web["Publishers"].as_array().unwrap();
    assert!(
        publishers
            .iter()
            .any(|pb| pb["PublishedPort"] == port && pb["TargetPort"] == 8080),
        "{web}"
    );

    // exec: change db's value; the next request shows it (web asks db every time).
    let fresh = unique_id("new-value");
    p.ok(&[
        "exec",
        "-T",
        "db",
        "sh",
        "-c",
        &format!("echo {fresh} > /data/value"),
    ]);
    wait_body(&d, port, "/cgi-bin/q", &fresh);

    // logs: per-service prefixes; one service; --tail; -t; --no-color.
    let logs = p.ok(&["logs", "--no-color"]);
    assert!(
        log_lines(&logs, "shop", "db")
            .iter()
            .any(|l| l == "db-ready"),
        "{logs}"
    );
    assert!(
        log_lines(&logs, "shop", "web")
            .iter()
            .any(|l| l == "web-ready"),
        "{logs}"
    );
    assert!(
        !logs.contains('\x1b'),
        "--no-color printed escapes: {logs:?}"
    );
    let web_only = p.ok(&["logs", "--no-color", "web"]);
    assert!(log_lines(&web_only, "shop", "db").is_empty(), "{web_only}");
    assert!(
        !log_lines(&web_only, "shop", "web").is_empty(),
        "{web_only}"
    );
    let stamped = p.ok(&["logs", "--no-color", "-t", "db"]);
    let first = log_lines(&stamped, "shop", "db");
    assert!(
        first
            .iter()
            .any(|l| l.starts_with("20") && l.ends_with("db-ready")),
        "-t: {stamped}"
    );
    let tailed = p.ok(&["logs", "--no-color", "--tail", "1", "db"]);
    assert_eq!(log_lines(&tailed, "shop", "db").len(), 1, "{tailed}");

    // down keeps the named volume: up again, db still has the value exec wrote.
    p.ok(&["down"]);
    assert!(p.names().is_empty(), "{:?}", p.names());
    let vols = d.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(
        vols.lines().any(|n| n == "shop_data"),
        "down removed the volume: {vols}"
    );
    p.ok(&["up", "-d"]);
    wait_body(&d, port, "/cgi-bin/q", &fresh);

    // down -v: containers, network and volume go.
    p.ok(&["down", "-v"]);
    assert!(p.names().is_empty(), "{:?}", p.names());
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n == "shop_default"), "{nets}");
    let vols = d.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(!vols.lines().any(|n| n == "shop_data"), "{vols}");
    assert!(http_get(port, "/cgi-bin/q").is_none(), "port still answers");
}

#[test]
fn healthy_dependency_gates_start() {
    let Some(d) = Berthd::with_busybox("cli_compose_healthy_dependency_gates_start") else {
        return;
    };
    // db turns healthy 3 s after it starts; web must not start before that.
    let p = Proj::new(
        &d,
        "gate",
        r#"services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 500ms
      timeout: 2s
      retries: 30
  web:
    image: busybox
    command: ["sleep", "600"]
    depends_on:
      db:
        condition: service_healthy
"#,
    );
    let t0 = Instant::now();
    p.ok(&["up", "-d"]);
    assert!(
        t0.elapsed() >= Duration::from_secs(3),
        "up -d returned after {:?}, before db could be healthy",
        t0.elapsed()
    );
    let db = p.inspect("gate-db-1");
    let web = p.inspect("gate-web-1");
    assert_eq!(
        db["State"]["Health"]["Status"], "healthy",
        "{}",
        db["State"]
    );
    assert_eq!(web["State"]["Running"], true, "{}", web["State"]);
    let db_started = unix_nanos(db["State"]["StartedAt"].as_str().unwrap());
    let web_started = unix_nanos(web["State"]["StartedAt"].as_str().unwrap());
    // (StartedAt is stamped a little after the process began: 2.5 s, not 3 s.)
    assert!(
        web_started - db_started >= 2_500_000_000,
        "web started {} ms after db, before db could be healthy",
        (web_started - db_started) / 1_000_000
    );
    // Against the health log: after the last failing probe ended, and not before the first
    // passing one ended.
    let log = db["State"]["Health"]["Log"].as_array().unwrap();
    let ends = |pass: bool| -> Vec<i128> {
        log.iter()
            .filter(|e| (e["ExitCode"] == 0) == pass)
            .map(|e| unix_nanos(e["End"].as_str().unwrap()))
            .collect()
    };
    if let Some(last_fail) = ends(false).into_iter().max() {
        assert!(
            web_started > last_fail,
            "web started before db's last failing probe"
        );
    }
    let first_pass = ends(true)
        .into_iter()
        .min()
        .expect("a passing probe in the log");
    assert!(
        web_started >= first_pass || log.len() >= 5,
        "web started before db's first passing probe ended: {log:?}"
    );
    // ps shows the health.
    let ps = p.ok(&["ps"]);
    let row = ps.lines().find(|l| l.starts_with("gate-db-1")).unwrap();
    assert!(row.contains("(healthy)"), "{ps}");
    p.ok(&["down"]);
    assert!(p.names().is_empty());
}

#[test]
fn completed_dependency_gates_start() {
    let Some(d) = Berthd::with_busybox("cli_compose_completed_dependency_gates_start") else {
        return;
    };
    // init writes a file on a shared volume then exits 0; app starts only after that and
    // reads the file. `$$` keeps `$VAR` for the container's shell.
    let yaml = |code: u8| {
        format!(
            r#"services:
  init:
    image: busybox
    command: ["sh", "-c", "sleep 2; echo seeded > /shared/flag; exit {code}"]
    volumes: [shared:/shared]
  app:
    image: busybox
    command: ["sh", "-c", "cat /shared/flag; exec sleep 600"]
    volumes: [shared:/shared]
    depends_on:
      init:
        condition: service_completed_successfully
volumes:
  shared: {{}}
"#
        )
    };
    let p = Proj::new(&d, "seed", &yaml(0));
    p.ok(&["up", "-d"]);
    let init = p.inspect("seed-init-1");
    let app = p.inspect("seed-app-1");
    assert_eq!(init["State"]["Status"], "exited");
    assert_eq!(init["State"]["ExitCode"], 0);
    assert_eq!(app["State"]["Running"], true);
    let finished = unix_nanos(init["State"]["FinishedAt"].as_str().unwrap());
    let started = unix_nanos(app["State"]["StartedAt"].as_str().unwrap());
    assert!(started >= finished, "app started before init finished");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = p.ok(&["logs", "--no-color", "app"]);
        if log_lines(&logs, "seed", "app")
            .iter()
            .any(|l| l == "seeded")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "app did not read init's file: {logs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // ps shows exited init only with -a.
    let ps = p.ok(&["ps"]);
    assert!(!ps.contains("seed-init-1"), "{ps}");
    assert!(p.ok(&["ps", "-a"]).contains("seed-init-1"));
    p.ok(&["down", "-v"]);

    // init fails: up fails naming it, and app is never started.
    p.write(&yaml(3));
    let o = p.fails(&["up", "-d"]);
    let e = err(&o);
    assert!(e.contains("init"), "{e}");
    let app = p.containers().get("seed-app-1").map(|(_, st)| st.clone());
    assert!(
        app.is_none() || app.as_deref() == Some("created"),
        "app {app:?} although init exited 3"
    );
    p.ok(&["down", "-v"]);
}

#[test]
fn scale_up_and_down() {
    let Some(d) = Berthd::with_busybox("cli_compose_scale_up_and_down") else {
        return;
    };
    let p = Proj::new(
        &d,
        "farm",
        "services:\n  web:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n  cache:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n",
    );
    // A bad --scale value: one error naming it, nothing created.
    let o = p.fails(&["up", "-d", "--scale", "web=many"]);
    assert!(err(&o).contains("web=many"), "{}", err(&o));
    assert!(p.names().is_empty(), "{:?}", p.names());

    p.ok(&["up", "-d", "--scale", "web=3"]);
    assert_eq!(
        p.names(),
        set(&["farm-cache-1", "farm-web-1", "farm-web-2", "farm-web-3"])
    );
    for n in 1..=3 {
        let c = p.inspect(&format!("farm-web-{n}"));
        assert_eq!(c["State"]["Running"], true);
        assert_eq!(
            c["Config"]["Labels"]["com.docker.compose.container-number"],
            n.to_string()
        );
    }
    let rows = json_rows(&p.ok(&["ps", "--format", "json", "web"]));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let keep = p.containers()["farm-web-1"].0.clone();
    let cache = p.containers()["farm-cache-1"].0.clone();

    p.ok(&["up", "-d", "--scale", "web=1"]);
    assert_eq!(p.names(), set(&["farm-cache-1", "farm-web-1"]));
    assert_eq!(p.containers()["farm-web-1"].0, keep, "web-1 was recreated");
    assert_eq!(
        p.containers()["farm-cache-1"].0,
        cache,
        "cache was recreated"
    );

    // Scaling one service up does not touch the other.
    p.ok(&["up", "-d", "--scale", "web=2"]);
    assert_eq!(
        p.names(),
        set(&["farm-cache-1", "farm-web-1", "farm-web-2"])
    );
    p.ok(&["down"]);
    assert!(p.names().is_empty());
}

#[test]
fn convergence_recreates_only_what_changed() {
    let Some(d) = Berthd::with_busybox("cli_compose_convergence_recreates_only_what_changed")
    else {
        return;
    };
    let yaml = |greeting: &str| {
        format!(
            "services:\n  a:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n  b:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n    environment:\n      GREETING: {greeting}\n"
        )
    };
    let p = Proj::new(&d, "conv", &yaml("hello"));
    p.ok(&["up", "-d"]);
    let ids = |p: &Proj| -> (String, String) {
        let c = p.containers();
        (c["conv-a-1"].0.clone(), c["conv-b-1"].0.clone())
    };
    let (a1, b1) = ids(&p);
    let hash_b1 =
        p.inspect("conv-b-1")["Config"]["Labels"]["com.docker.compose.config-hash"].clone();

    // Unchanged: nothing recreated (or restarted).
    let started_a = p.inspect("conv-a-1")["State"]["StartedAt"].clone();
    p.ok(&["up", "-d"]);
    assert_eq!(
        ids(&p),
        (a1.clone(), b1.clone()),
        "unchanged up recreated something"
    );
    assert_eq!(p.inspect("conv-a-1")["State"]["StartedAt"], started_a);

    // b's environment changes: only b is recreated, under the same name, with the new value.
    p.write(&yaml("bonjour"));
    p.ok(&["up", "-d"]);
    let (a2, b2) = ids(&p);
    assert_eq!(a2, a1, "a was recreated though it did not change");
    assert_ne!(b2, b1, "b was not recreated though its environment changed");
    let b = p.inspect("conv-b-1");
    let env: Vec<&str> = b["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"GREETING=bonjour"), "{env:?}");
    assert_ne!(
        b["Config"]["Labels"]["com.docker.compose.config-hash"], hash_b1,
        "config-hash did not change"
    );
    assert_eq!(p.names(), set(&["conv-a-1", "conv-b-1"]));

    // --no-recreate/--force-recreate: everything is recreated when forced.
    p.ok(&["up", "-d", "--force-recreate"]);
    let (a3, b3) = ids(&p);
    assert_ne!(a3, a2);
    assert_ne!(b3, b2);

    // A service removed from the file is an orphan: kept without --remove-orphans, removed
    // with it.
    p.write("services:\n  a:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n");
    p.ok(&["up", "-d"]);
    assert!(
        p.names().contains("conv-b-1"),
        "orphan removed without --remove-orphans"
    );
    p.ok(&["up", "-d", "--remove-orphans"]);
    assert_eq!(p.names(), set(&["conv-a-1"]));
    assert_eq!(
        p.containers()["conv-a-1"].0,
        a3,
        "a recreated by --remove-orphans"
    );
    p.ok(&["down"]);
}

/// docker-compose 1.29 (Debian) against the same berthd, in `dir`.
fn compose_v1(d: &Berthd, dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new("docker-compose");
    c.current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .args(args);
    let o = run_timed(c, &format!("docker-compose {args:?}"));
    assert!(
        o.status.success(),
        "docker-compose {args:?} failed:\n{}\n{}\nberthd log (tail):\n{}",
        out(&o),
        err(&o),
        tail(&d.log(), 40)
    );
    format!("{}{}", out(&o), err(&o))
}

#[test]
fn interop_with_docker_compose_1_29() {
    let Some(d) = Berthd::with_busybox("cli_compose_interop_with_docker_compose_1_29") else {
        return;
    };
    if find_in_path("docker-compose").is_none() {
        panic!(
            "docker-compose is not installed: run `bash .ci/setup` (Debian package docker-compose)"
        );
    }
    let yaml = "version: \"3.8\"\nservices:\n  db:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n  web:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n    depends_on: [db]\n";

    // docker-compose 1.29 brings "legacy" up; berth compose sees it.
    let legacy = d.dir.path().join("legacy");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("docker-compose.yml"), yaml).unwrap();
    compose_v1(&d, &legacy, &["-p", "legacy", "up", "-d"]);
    let p = Proj {
        d: &d,
        dir: legacy.clone(),
        name: "legacy".into(),
    };
    let ls = p.ok(&["ls"]);
    let row = ls
        .lines()
        .find(|l| l.split_whitespace().next() == Some("legacy"))
        .unwrap_or_else(|| panic!("legacy not in ls:\n{ls}"));
    assert!(row.contains("running(2)"), "{ls}");
    let rows = json_rows(&p.ok(&["ls", "--format", "json"]));
    let row = rows.iter().find(|r| r["Name"] == "legacy").unwrap();
    assert!(
        row["ConfigFiles"]
            .as_str()
            .unwrap_or("")
            .contains("docker-compose.yml"),
        "{row}"
    );
    let ps = p.ok(&["ps"]);
    assert!(
        ps.contains("legacy_db_1") && ps.contains("legacy_web_1"),
        "{ps}"
    );
    let services: BTreeSet<String> = p
        .ok(&["ps", "--services"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(services, set(&["db", "web"]));
    // berth compose down takes 1.29's project apart too.
    p.ok(&["down"]);
    assert!(p.names().is_empty(), "{:?}", p.names());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n == "legacy_default"), "{nets}");

    // berth compose brings "modern" up; docker-compose 1.29 sees it and takes it down.
    let p = Proj::new(&d, "modern", yaml);
    std::fs::rename(p.dir.join("compose.yaml"), p.dir.join("docker-compose.yml")).unwrap();
    p.ok(&["up", "-d"]);
    let ours = p.names();
    assert_eq!(ours, set(&["modern-db-1", "modern-web-1"]));
    let ps = compose_v1(&d, &p.dir, &["-p", "modern", "ps"]);
    for n in &ours {
        assert!(
            ps.contains(n.as_str()),
            "docker-compose ps misses {n}:\n{ps}"
        );
    }
    assert_eq!(
        ps.lines()
            .filter(|l| l.split_whitespace().any(|w| w == "Up"))
            .count(),
        2,
        "{ps}"
    );
    compose_v1(&d, &p.dir, &["-p", "modern", "down"]);
    assert!(p.names().is_empty(), "{:?}", p.names());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n == "modern_default"), "{nets}");
}

/// `berth compose` with no engine behind it (loading must not need one).
fn offline(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(berth_bin());
    c.env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES")
        .args([
            "-H",
            "unix:///nonexistent/berth-compose-test.sock",
            "compose",
        ])
        .args(args)
        .current_dir(dir);
    run_timed(c, &format!("berth compose {args:?}"))
}

fn offline_fails(dir: &Path, yaml: &str) -> String {
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    let o = offline(dir, &["config"]);
    assert!(
        !o.status.success(),
        "config should fail for:\n{yaml}\nstdout: {}",
        out(&o)
    );
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {}",
        o.status
    );
    let e = err(&o);
    assert!(!e.trim().is_empty(), "no message on stderr");
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// `file:LINE:COL` with LINE == `line` and a column number after it.
fn has_position(e: &str, file: &str, line: u32) -> bool {
    let needle = format!("{file}:{line}:");
    e.match_indices(&needle).any(|(i, _)| {
        e[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn load_errors_name_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // YAML syntax error on line 4.
    let e = offline_fails(
        dir,
        "services:\n  web:\n    image: busybox\n    command: a: b\n",
    );
    assert!(
        has_position(&e, "compose.yaml", 4),
        "no compose.yaml:4:<col> in {e}"
    );

    // A misspelt key: its path, and the key it probably is.
    let e = offline_fails(dir, "services:\n  web:\n    imgae: busybox\n");
    assert!(e.contains("services.web.imgae"), "{e}");
    assert!(e.to_lowercase().contains("did you mean"), "{e}");
    assert!(e.contains("image"), "{e}");
    assert!(
        has_position(&e, "compose.yaml", 3),
        "no compose.yaml:3:<col> in {e}"
    );

    // A dependency cycle names the services in it.
    let e = offline_fails(
        dir,
        "services:\n  alpha:\n    image: busybox\n    depends_on: [bravo]\n  bravo:\n    image: busybox\n    depends_on: [charlie]\n  charlie:\n    image: busybox\n    depends_on: [alpha]\n  delta:\n    image: busybox\n",
    );
    assert!(e.to_lowercase().contains("cycle"), "{e}");
    for s in ["alpha", "bravo", "charlie"] {
        assert!(e.contains(s), "{s} not named in {e}");
    }
    assert!(!e.contains("delta"), "delta is not in the cycle: {e}");

    // A dependency on a service that does not exist.
    let e = offline_fails(
        dir,
        "services:\n  web:\n    image: busybox\n    depends_on: [dbb]\n",
    );
    assert!(e.contains("dbb"), "{e}");

    // ${VAR:?message} with VAR unset prints the message.
    let e = offline_fails(
        dir,
        "services:\n  web:\n    image: \"busybox:${BERTH_TEST_UNSET_TAG:?set BERTH_TEST_UNSET_TAG to the tag}\"\n",
    );
    assert!(e.contains("set BERTH_TEST_UNSET_TAG to the tag"), "{e}");

    // A service with neither image nor build.
    let e = offline_fails(dir, "services:\n  web:\n    command: [\"true\"]\n");
    assert!(e.contains("web"), "{e}");
    assert!(e.contains("image") && e.contains("build"), "{e}");

    // No compose file at all: says which names it looked for.
    let empty = tempfile::tempdir().unwrap();
    let o = offline(empty.path(), &["config"]);
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("compose.yaml") || e.contains("docker-compose.yml"),
        "{e}"
    );

    // An unknown command is a usage error naming it.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n",
    )
    .unwrap();
    let o = offline(dir, &["frobnicate"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("frobnicate"), "{}", err(&o));
}

/// The value of `key` in a service's `environment`, whether printed as a map or a list.
fn env_value(svc: &serde_yaml::Value, key: &str) -> Option<String> {
    let env = &svc["environment"];
    if let Some(v) = env.get(key) {
        return v
            .as_str()
            .map(str::to_string)
            .or_else(|| serde_yaml::to_string(v).ok().map(|s| s.trim().to_string()));
    }
    env.as_sequence()?.iter().find_map(|e| {
        e.as_str()?
            .strip_prefix(&format!("{key}="))
            .map(str::to_string)
    })
}

#[test]
fn config_resolves_interpolation_profiles_and_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("My_App");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        r#"services:
  web:
    image: "busybox:${TAG:-latest}"
    environment:
      FROM_ENV_FILE: ${FROM_FILE}
      FROM_PROCESS: ${BERTH_TEST_FROM_PROCESS}
      DEFAULTED: ${BERTH_TEST_UNSET:-fallback}
      LITERAL: "cost $$5"
    ports:
      - "${WEB_PORT}:80"
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.override.yaml"),
        "services:\n  web:\n    environment:\n      OVERRIDDEN: \"yes\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".env"),
        "FROM_FILE=from-dot-env\nTAG=1.36\nWEB_PORT=8088\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("other.env"),
        "FROM_FILE=from-other-env\nWEB_PORT=9099\n",
    )
    .unwrap();

    let run = |args: &[&str]| -> String {
        let mut c = Command::new(berth_bin());
        c.env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("TAG")
            .env_remove("BERTH_TEST_UNSET")
            .env("BERTH_TEST_FROM_PROCESS", "from-process")
            .args([
                "-H",
                "unix:///nonexistent/berth-compose-test.sock",
                "compose",
            ])
            .args(args)
            .current_dir(&dir);
        let o = run_timed(c, &format!("berth compose {args:?}"));
        assert!(
            o.status.success(),
            "berth compose {args:?} failed: {}",
            err(&o)
        );
        out(&o)
    };
    let text = run(&["config"]);
    assert!(!text.contains("${"), "interpolation not applied:\n{text}");
    let m: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("config printed no YAML ({e}):\n{text}"));
    // The project name comes from the directory, normalised as docker compose does.
    assert_eq!(m["name"].as_str(), Some("my_app"), "{text}");
    let web = &m["services"]["web"];
    assert_eq!(web["image"].as_str(), Some("busybox:1.36"), "{text}");
    assert_eq!(
        env_value(web, "FROM_ENV_FILE").as_deref(),
        Some("from-dot-env")
    );
    assert_eq!(
        env_value(web, "FROM_PROCESS").as_deref(),
        Some("from-process")
    );
    assert_eq!(env_value(web, "DEFAULTED").as_deref(), Some("fallback"));
    // A literal `$$` is one `$` (docker compose prints it escaped again, `$$`, so the output
    // loads back the same: both are accepted).
    let literal = env_value(web, "LITERAL");
    assert!(
        matches!(literal.as_deref(), Some("cost $5") | Some("cost $$5")),
        "{literal:?}\n{text}"
    );
    // compose.override.yaml is merged in by default.
    assert_eq!(
        env_value(web, "OVERRIDDEN").as_deref(),
        Some("yes"),
        "{text}"
    );
    assert!(text.contains("8088"), "{text}");
    // The profiled service is not in the model unless its profile is on.
    assert!(m["services"].get("debug").is_none(), "{text}");

    // --services / --volumes / -q.
    let services: BTreeSet<String> = run(&["config", "--services"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(services, set(&["web"]));
    let services: BTreeSet<String> = run(&["--profile", "debug", "config", "--services"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(services, set(&["debug", "web"]));
    assert_eq!(run(&["config", "--volumes"]).trim(), "data");
    assert_eq!(run(&["config", "-q"]), "");

    // --env-file replaces .env; -p names the project; -f picks files (no override then).
    let text = run(&["--env-file", "other.env", "-p", "custom", "config"]);
    let m: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(m["name"].as_str(), Some("custom"));
    assert_eq!(
        env_value(&m["services"]["web"], "FROM_ENV_FILE").as_deref(),
        Some("from-other-env")
    );
    assert!(text.contains("9099"), "{text}");
    let text = run(&["-f", "compose.yaml", "config"]);
    let m: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        env_value(&m["services"]["web"], "OVERRIDDEN"),
        None,
        "{text}"
    );

    // --project-directory from elsewhere: .env and relative paths resolve there.
    let elsewhere = tmp.path();
    let mut c = Command::new(berth_bin());
    c.env_remove("DOCKER_HOST")
        .env_remove("TAG")
        .env("BERTH_TEST_FROM_PROCESS", "x")
        .args([
            "-H",
            "unix:///nonexistent/berth-compose-test.sock",
            "compose",
        ])
        .arg("--project-directory")
        .arg(&dir)
        .args(["config", "--services"])
        .current_dir(elsewhere);
    let o = run_timed(c, "berth compose --project-directory config");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "web");
}

#[test]
fn run_rm_exec_and_lifecycle() {
    let Some(d) = Berthd::with_busybox("cli_compose_run_rm_exec_and_lifecycle") else {
        return;
    };
    let p = Proj::new(
        &d,
        "life",
        r#"services:
  web:
    image: busybox
    command: ["sh", "-c", "i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 0.2; done"]
    environment:
      MODE: prod
  tool:
    image: busybox
    command: ["true"]
"#,
    );
    // run --rm: prints the command's output, leaves no container behind.
    let before = p.names();
    let o = p.run(&["run", "--rm", "-T", "tool", "echo", "hi"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "hi", "stdout: {:?}", out(&o));
    assert_eq!(p.names(), before, "run --rm left a container");
    // run -e overrides the environment; the exit status is the command's.
    let o = p.run(&[
        "run",
        "--rm",
        "-T",
        "-e",
        "MODE=test",
        "web",
        "sh",
        "-c",
        "echo $MODE; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));
    assert_eq!(out(&o).trim(), "test");
    // run without --rm leaves a one-off container, labelled as such.
    p.ok(&["run", "-T", "tool", "true"]);
    let oneoff: Vec<String> = p
        .names()
        .into_iter()
        .filter(|n| n.starts_with("life-tool-run-"))
        .collect();
    assert_eq!(oneoff.len(), 1, "{:?}", p.names());
    assert_eq!(
        p.inspect(&oneoff[0])["Config"]["Labels"]["com.docker.compose.oneoff"],
        "True"
    );
    d.ok(&["rm", &oneoff[0]]);

    p.ok(&["up", "-d", "web"]);
    assert!(!p.names().contains("life-tool-1"), "up web started tool");
    // exec: output and exit status.
    assert_eq!(p.ok(&["exec", "-T", "web", "echo", "hi"]).trim(), "hi");
    assert_eq!(
        p.ok(&["exec", "-T", "web", "sh", "-c", "echo $MODE"])
            .trim(),
        "prod"
    );
    let o = p.run(&["exec", "-T", "web", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    // exec into a service with no running container fails and says so.
    let o = p.fails(&["exec", "-T", "tool", "true"]);
    assert!(err(&o).contains("tool"), "{}", err(&o));

    // logs -f follows: lines written after it started arrive, then it is stopped.
    let mut child = p
        .cmd(&["logs", "-f", "--no-color", "--tail", "1", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.len() < 4 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.len() >= 4, "logs -f did not follow: {seen:?}");
    let ticks: Vec<u64> = log_lines(&seen.join("\n"), "life", "web")
        .iter()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1) && ticks.len() >= 4,
        "{seen:?}"
    );

    // stop / ps -a / ls -a / start / restart / rm.
    let ls = p.ok(&["ls", "-q"]);
    assert!(ls.lines().any(|l| l == "life"), "{ls}");
    p.ok(&["stop", "-t", "1"]);
    assert_eq!(p.containers()["life-web-1"].1, "exited");
    assert!(p.ok(&["ps", "-q"]).trim().is_empty());
    assert!(p.ok(&["ps", "-a"]).contains("life-web-1"));
    assert!(!p.ok(&["ls", "-q"]).lines().any(|l| l == "life"));
    let ls = p.ok(&["ls", "-a"]);
    let row = ls
        .lines()
        .find(|l| l.starts_with("life "))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(row.contains("exited(1)"), "{ls}");
    let id = p.containers()["life-web-1"].0.clone();
    p.ok(&["start"]);
    assert_eq!(p.containers()["life-web-1"], (id.clone(), "running".into()));
    let started = p.inspect("life-web-1")["State"]["StartedAt"].clone();
    p.ok(&["restart", "-t", "1", "web"]);
    let c = p.inspect("life-web-1");
    assert_eq!(c["Id"], id.as_str(), "restart recreated the container");
    assert_eq!(c["State"]["Running"], true);
    assert_ne!(c["State"]["StartedAt"], started, "restart did not restart");
    // rm refuses nothing here: -s stops first, -f skips the prompt.
    p.ok(&["rm", "-s", "-f", "web"]);
    assert!(p.names().is_empty(), "{:?}", p.names());
    p.ok(&["down"]);
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n == "life_default"), "{nets}");
}

#[test]
fn build_then_up() {
    let Some(d) = Berthd::with_busybox("cli_compose_build_then_up") else {
        return;
    };
    let p = Proj::new(
        &d,
        "made",
        r#"services:
  app:
    build:
      context: ./app
      args:
        FLAVOUR: vanilla
    image: made-app:dev
    command: ["sleep", "600"]
"#,
    );
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::write(
        p.dir.join("app/Dockerfile"),
        "FROM busybox\nARG FLAVOUR\nCOPY msg.txt /msg.txt\nRUN echo \"$FLAVOUR\" > /flavour\n",
    )
    .unwrap();
    std::fs::write(p.dir.join("app/msg.txt"), "first\n").unwrap();
    p.ok(&["build"]);
    let img = d.ok(&["image", "inspect", "-f", "{{.Id}}", "made-app:dev"]);
    assert!(img.starts_with("sha256:"), "{img}");
    p.ok(&["up", "-d"]);
    assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/msg.txt"]), "first\n");
    assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/flavour"]), "vanilla\n");
    // up --build rebuilds and, the image having changed, recreates the container.
    let before = p.containers()["made-app-1"].0.clone();
    std::fs::write(p.dir.join("app/msg.txt"), "second\n").unwrap();
    p.ok(&["up", "-d", "--build"]);
    assert_ne!(
        p.containers()["made-app-1"].0,
        before,
        "not recreated after rebuild"
    );
    assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/msg.txt"]), "second\n");
    // down --rmi all removes the service's image too (the base image stays).
    p.ok(&["down", "--rmi", "all"]);
    let o = d.docker(&["image", "inspect", "made-app:dev"]);
    assert!(!o.status.success(), "down --rmi all kept made-app:dev");
    assert!(d
        .docker(&["image", "inspect", "busybox:latest"])
        .status
        .success());
}

/// `configs:` and `secrets:`: a secret from a file (bind-mounted read-only), a secret from a
/// variable (the process's over `.env`'s) and a config from `content:` with a custom target,
/// owner and mode (both written into the container before it starts). A changed secret value
/// recreates the container without the value showing in any label or in `config`; an
/// external secret is refused by name before anything is made.
#[test]
fn configs_and_secrets_reach_the_container() {
    let Some(d) = Berthd::with_busybox("cli_compose_configs_and_secrets") else {
        return;
    };
    let p = Proj::new(
        &d,
        "vault",
        r#"services:
  app:
    image: busybox
    command: ["sleep", "600"]
    secrets:
      - db_password
      - api_token
    configs:
      - source: motd
        target: /etc/app/motd.txt
        uid: "1000"
        gid: "1000"
        mode: 0440
secrets:
  db_password:
    file: ./db_password.txt
  api_token:
    environment: API_TOKEN
configs:
  motd:
    content: "hello from ${GREETER}"
"#,
    );
    std::fs::write(p.dir.join("db_password.txt"), "hunter2\n").unwrap();
    std::fs::write(p.dir.join(".env"), "API_TOKEN=from-dotenv\nGREETER=berth\n").unwrap();
    let with_token = |token: &str, args: &[&str]| -> String {
        let mut c = p.cmd(args);
        c.env("API_TOKEN", token);
        let o = run_timed(c, &format!("berth compose {args:?}"));
        assert!(
            o.status.success(),
            "berth compose {args:?} failed:\nstdout: {}\nstderr: {}\nberthd log (tail):\n{}",
            out(&o),
            err(&o),
            tail(&d.log(), 40)
        );
        out(&o)
    };
    with_token("tok-1", &["up", "-d"]);
    let cat = |path: &str| p.ok(&["exec", "-T", "app", "cat", path]);
    assert_eq!(cat("/run/secrets/db_password"), "hunter2\n");
    assert_eq!(cat("/run/secrets/api_token"), "tok-1");
    assert_eq!(cat("/etc/app/motd.txt"), "hello from berth");
    // Mode and owner as asked (default 0444, root) — seen with the docker CLI too.
    let stat = |path: &str| d.ok(&["exec", "vault-app-1", "stat", "-c", "%a %u:%g", path]);
    assert_eq!(stat("/etc/app/motd.txt").trim(), "440 1000:1000");
    assert_eq!(stat("/run/secrets/api_token").trim(), "444 0:0");
    // The file-backed secret is the host file, mounted read-only.
    let c = p.inspect("vault-app-1");
    let m = c["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/run/secrets/db_password")
        .unwrap_or_else(|| panic!("no bind for the secret: {}", c["Mounts"]))
        .clone();
    assert_eq!(m["Type"], "bind");
    assert_eq!(m["RW"], false);
    let o = p.run(&[
        "exec",
        "-T",
        "app",
        "sh",
        "-c",
        "echo x > /run/secrets/db_password",
    ]);
    assert!(!o.status.success(), "the secret file was writable");

    // Same values: kept. A new secret value: recreated with it; no label carries it.
    let id = p.containers()["vault-app-1"].0.clone();
    with_token("tok-1", &["up", "-d"]);
    assert_eq!(
        p.containers()["vault-app-1"].0,
        id,
        "recreated without a change"
    );
    with_token("tok-2", &["up", "-d"]);
    assert_ne!(
        p.containers()["vault-app-1"].0,
        id,
        "a new secret value kept the container"
    );
    assert_eq!(cat("/run/secrets/api_token"), "tok-2");
    let labels = p.inspect("vault-app-1")["Config"]["Labels"].to_string();
    assert!(!labels.contains("tok-2"), "{labels}");
    // `config` names the variable, not its value.
    let cfg = with_token("tok-2", &["config"]);
    assert!(cfg.contains("environment: API_TOKEN"), "{cfg}");
    assert!(!cfg.contains("tok-2"), "{cfg}");
    // A one-off `run` container gets the written files too.
    let ran = with_token(
        "tok-3",
        &[
            "run",
            "--rm",
            "-T",
            "app",
            "cat",
            "/run/secrets/api_token",
            "/etc/app/motd.txt",
        ],
    );
    assert_eq!(ran, "tok-3hello from berth", "run --rm: {ran:?}");

    p.ok(&["down"]);
    assert!(p.names().is_empty(), "{:?}", p.names());

    // An external secret needs a swarm: refused, naming it, with nothing made.
    let x = Proj::new(
        &d,
        "vaultx",
        "services:\n  app:\n    image: busybox\n    secrets: [shared]\nsecrets:\n  shared:\n    external: true\n",
    );
    let o = x.fails(&["up", "-d"]);
    assert!(
        err(&o)
            .contains("external secrets need a swarm; berth compose cannot mount secrets.shared"),
        "{}",
        err(&o)
    );
    assert!(x.names().is_empty(), "{:?}", x.names());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n == "vaultx_default"), "{nets}");

    // A read-only root file system cannot take a written config: the error says where, and
    // the half-made container is removed.
    let ro = Proj::new(
        &d,
        "vaultro",
        "services:\n  app:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n    read_only: true\n    configs: [c]\nconfigs:\n  c:\n    content: hi\n",
    );
    let o = ro.fails(&["up", "-d"]);
    assert!(
        err(&o).contains("writing configs and secrets into container vaultro-app-1"),
        "{}",
        err(&o)
    );
    assert!(ro.names().is_empty(), "{:?}", ro.names());
    ro.ok(&["down"]);
}
