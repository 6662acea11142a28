//! Compose benchmark, in one run, interleaved, same project: `compose up -d` then
//! `compose down -v` of a 5-service busybox project (one network, two services publishing a
//! port on 127.0.0.1, one named volume, a dependency chain), with
//!
//! - `berth compose` against berthd (the product),
//! - Debian's `docker-compose` 1.29 against berthd (the engine alone, the peer's client),
//! - Debian's `docker-compose` 1.29 against a private dockerd (Debian's docker.io, temp data
//!   root, exec root, pidfile and socket, `--iptables=false`, its own bridge and address pool).
//!
//! The services trap SIGTERM, so `down` measures a real stop, not the 10 s kill timeout.
//! After every `up` (outside the timing) each engine must have 5 running containers and both
//! published ports must answer; after every `down` nothing of the project may be left.
//!
//! BENCH_RUNS (default 10) cycles per client after one warm-up cycle each; the median wall
//! time of `up -d`, `down -v` and both, and the ratio to docker-compose > dockerd (target for
//! berth compose: <= 0.25x). Figures also go to `target/bench-compose.txt`.
//!
//! Run as root: `bash .ci/bench-compose` (builds release binaries first). berthd and berth are
//! taken from `$BERTHD`/`$BERTH` or the target dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bench::{check, env_or, median, timed, Bridge};
use berth_tests::berthd::Berthd;
use berth_tests::cli::berth_cmd;
use berth_tests::require_root;
use berth_tests::services::{free_port, Dockerd};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET: f64 = 0.25;
const PROJECT: &str = "bench";
const SERVICES: usize = 5;

/// The project: db (named volume) <- api (port) <- web (port); cache <- worker.
fn project_yaml(web_port: u16, api_port: u16) -> String {
    // `sh` as PID 1 with a TERM trap: the service stops when asked.
    let serve = |msg: &str| {
        format!(
            "[\"sh\", \"-c\", \"trap 'exit 0' TERM; mkdir -p /www; echo {msg} > /www/index.html; httpd -f -p 80 -h /www & wait\"]"
        )
    };
    let idle = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 600 & wait\"]";
    format!(
        r#"version: "3.8"
services:
  db:
    image: busybox:latest
    command: {idle}
    volumes:
      - data:/data
  cache:
    image: busybox:latest
    command: {idle}
  api:
    image: busybox:latest
    command: {api}
    depends_on: [db]
    ports:
      - "127.0.0.1:{api_port}:80"
  web:
    image: busybox:latest
    command: {web}
    depends_on: [api]
    ports:
      - "127.0.0.1:{web_port}:80"
  worker:
    image: busybox:latest
    command: {idle}
    depends_on: [cache]
volumes:
  data: {{}}
"#,
        api = serve("api-ok"),
        web = serve("web-ok"),
    )
}

fn http_ok(port: u16, want: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.contains(want)
}

/// The daemon a client talks to.
enum Daemon<'a> {
    Berth(&'a Berthd),
    Docker(&'a Dockerd),
}

/// One client/engine pair: the project's directory (its own ports) and how to run compose.
struct Client<'a> {
    name: &'static str,
    daemon: Daemon<'a>,
    /// `berth compose` instead of `docker-compose`.
    berth: bool,
    dir: PathBuf,
    ports: (u16, u16),
    up: Vec<f64>,
    down: Vec<f64>,
}

impl<'a> Client<'a> {
    fn new(name: &'static str, daemon: Daemon<'a>, berth: bool, root: &Path) -> Client<'a> {
        let dir = root.join(name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let ports = (free_port(), free_port());
        std::fs::write(
            dir.join("docker-compose.yml"),
            project_yaml(ports.0, ports.1),
        )
        .unwrap();
        Client {
            name,
            daemon,
            berth,
            dir,
            ports,
            up: Vec::new(),
            down: Vec::new(),
        }
    }

    fn compose(&self, args: &[&str]) -> Command {
        let mut c = match (&self.daemon, self.berth) {
            (Daemon::Berth(b), true) => berth_cmd(b, &["compose", "-p", PROJECT]),
            (Daemon::Berth(b), false) => {
                let mut c = Command::new("docker-compose");
                c.env("DOCKER_HOST", format!("unix://{}", b.sock.display()))
                    .env("DOCKER_CONFIG", b.dir.path().join("docker-config"))
                    .args(["-p", PROJECT]);
                c
            }
            (Daemon::Docker(d), _) => {
                let mut c = Command::new("docker-compose");
                c.env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
                    .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
                    .args(["-p", PROJECT]);
                c
            }
        };
        c.env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> String {
        let mut c = match self.daemon {
            Daemon::Berth(b) => b.docker_cmd(args),
            Daemon::Docker(d) => d.docker(args),
        };
        let o = c.stdin(Stdio::null()).output().unwrap();
        check(&format!("docker {args:?} ({})", self.name), &o);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn running(&self) -> usize {
        self.docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={PROJECT}"),
        ])
        .lines()
        .count()
    }

    fn leftovers(&self) -> String {
        let mut left = self.docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={PROJECT}"),
        ]);
        for l in self
            .docker(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
        {
            if l.starts_with(&format!("{PROJECT}_")) {
                left.push_str(l);
                left.push('\n');
            }
        }
        for l in self
            .docker(&["volume", "ls", "--format", "{{.Name}}"])
            .lines()
        {
            if l.starts_with(&format!("{PROJECT}_")) {
                left.push_str(l);
                left.push('\n');
            }
        }
        left
    }

    /// One `up -d` + `down -v` cycle, checked; the times are kept when `record`.
    fn cycle(&mut self, record: bool) {
        let (t_up, o) = timed(self.compose(&["up", "-d"]));
        check(&format!("compose up -d ({})", self.name), &o);
        let n = self.running();
        assert_eq!(n, SERVICES, "{}: {n} running after up -d", self.name);
        // httpd may need a moment after its container started.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(http_ok(self.ports.0, "web-ok") && http_ok(self.ports.1, "api-ok")) {
            assert!(
                Instant::now() < deadline,
                "{}: published ports do not answer",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (t_down, o) = timed(self.compose(&["down", "-v"]));
        check(&format!("compose down -v ({})", self.name), &o);
        let left = self.leftovers();
        assert!(
            left.trim().is_empty(),
            "{}: left after down -v:\n{left}",
            self.name
        );
        if record {
            self.up.push(t_up);
            self.down.push(t_down);
        }
    }

    fn total(&self) -> Vec<f64> {
        self.up.iter().zip(&self.down).map(|(u, d)| u + d).collect()
    }
}

fn out_file() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-compose.txt")
}

fn version(mut c: Command) -> String {
    c.output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn main() {
    if !require_root("bench compose") {
        return;
    }
    let runs = env_or("BENCH_RUNS", 10).max(1);
    let b = Berthd::start_with_config(Some(r#"{"log-level":"warn"}"#));
    b.load_busybox("busybox:latest");
    let bridge = Bridge::create("bcmp", "10.249.0.1/24");
    let d = Dockerd::start_with(&[
        &format!("--bridge={}", bridge.0),
        "--default-address-pool=base=10.248.0.0/16,size=24",
    ]);
    // The same image into dockerd: saved by berthd (docker format), loaded by dockerd.
    let tar = b.dir.path().join("busybox-docker.tar");
    b.ok(&["save", "-o", tar.to_str().unwrap(), "busybox:latest"]);
    check(
        "docker load (dockerd)",
        &d.docker(&["load", "-i", tar.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let work = tempfile::Builder::new()
        .prefix("berth-bench-compose-")
        .tempdir()
        .unwrap();
    let mut clients = vec![
        Client::new(
            "berth compose > berthd",
            Daemon::Berth(&b),
            true,
            work.path(),
        ),
        Client::new(
            "docker-compose > berthd",
            Daemon::Berth(&b),
            false,
            work.path(),
        ),
        Client::new(
            "docker-compose > dockerd",
            Daemon::Docker(&d),
            false,
            work.path(),
        ),
    ];
    for c in clients.iter_mut() {
        c.cycle(false);
    }
    for i in 0..runs {
        let n = clients.len();
        for k in 0..n {
            clients[(i + k) % n].cycle(true);
        }
        let line: Vec<String> = clients
            .iter()
            .map(|c| format!("{} {:.0}+{:.0} ms", c.name, c.up[i], c.down[i]))
            .collect();
        eprintln!("run {}/{runs}: {}", i + 1, line.join(", "));
    }

    let dc = version({
        let mut c = Command::new("docker-compose");
        c.arg("version").arg("--short");
        c
    });
    let server = version(d.docker(&["version", "--format", "{{.Server.Version}}"]));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "compose benchmark: berth compose ({}) > berthd vs docker-compose {dc} > berthd and > dockerd {server}, {} cores",
        berth_tests::cli::berth_bin().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        s,
        "{SERVICES} busybox services, 1 network, 2 published ports, 1 named volume; {runs} interleaved cycles, median wall ms (ratio to docker-compose > dockerd):"
    );
    let mut head = format!("  {:<10}", "step");
    for c in &clients {
        let _ = write!(head, " {:>26}", c.name);
    }
    let _ = writeln!(s, "{head}  target (first column)");
    type Pick = fn(&Client) -> Vec<f64>;
    let steps: [(&str, Pick); 3] = [
        ("up -d", |c| c.up.clone()),
        ("down -v", |c| c.down.clone()),
        ("up + down", |c| c.total()),
    ];
    for (name, pick) in steps {
        let base = median(&pick(&clients[clients.len() - 1]));
        let mut row = format!("  {name:<10}");
        for (i, c) in clients.iter().enumerate() {
            let m = median(&pick(c));
            if i + 1 == clients.len() {
                let _ = write!(row, " {:>26}", format!("{m:.1}"));
            } else {
                let _ = write!(row, " {:>26}", format!("{m:.1} ({:.2}x)", m / base));
            }
        }
        let first = median(&pick(&clients[0])) / base;
        let verdict = if first <= TARGET { "met" } else { "MISSED" };
        let _ = writeln!(s, "{row}  <= {TARGET}x {verdict}");
    }
    print!("{s}");
    let path = out_file();
    match std::fs::write(&path, &s) {
        Ok(()) => println!("written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
    drop(clients);
    drop(d);
    drop(bridge);
    drop(b);
    drop(work);
}
