//! Debian's docker-compose (1.29, docker-py) brings up a two-service project against berthd:
//! a "db" service and a "web" service that reaches it by name on the project network and
//! publishes a port on the host. Then `ps`, `logs`, `down -v`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::services::free_port;
use berth_tests::{find_in_path, require_root};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn compose(d: &Berthd, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new("docker-compose")
        .current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .args(["-p", "shop"])
        .args(args)
        .output()
        .expect("run docker-compose")
}

fn ok(d: &Berthd, dir: &std::path::Path, args: &[&str]) -> String {
    let o = compose(d, dir, args);
    assert!(
        o.status.success(),
        "docker-compose {args:?} failed:\n{}\n{}\nberthd log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn docker_compose_two_services() {
    if !require_root("docker_compose_two_services") {
        return;
    }
    if find_in_path("docker-compose").is_none() {
        panic!(
            "docker-compose is not installed: run `bash .ci/setup` (Debian package docker-compose)"
        );
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let port = free_port();
    let dir = d.dir.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3.8"
services:
  db:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo db-ok > /www/index.html && exec httpd -f -p 8000 -h /www"]
    volumes:
      - data:/data
  web:
    image: busybox
    depends_on: [db]
    ports:
      - "127.0.0.1:{port}:80"
    environment:
      UPSTREAM: db
    command: ["sh", "-c", "mkdir -p /www; until wget -qO /www/index.html http://$$UPSTREAM:8000/; do sleep 0.2; done; echo fetched; exec httpd -f -p 80 -h /www"]
volumes:
  data: {{}}
"#
        ),
    )
    .unwrap();
    ok(&d, &dir, &["up", "-d"]);
    // web fetched db's page by name over the project network and serves it on the host.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_get(port);
        if last.as_deref().is_some_and(|b| b.contains("db-ok")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        last.as_deref().is_some_and(|b| b.contains("db-ok")),
        "web did not serve db's page on 127.0.0.1:{port}: {last:?}\n{}",
        d.log()
    );
    let ps = ok(&d, &dir, &["ps"]);
    assert!(
        ps.contains("shop_db_1") && ps.contains("shop_web_1"),
        "{ps}"
    );
    assert_eq!(ps.matches(" Up ").count(), 2, "{ps}");
    // The engine sees compose's labels and network.
    let labelled = d.ok(&[
        "ps",
        "--filter",
        "label=com.docker.compose.project=shop",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(labelled.lines().count(), 2, "{labelled}");
    assert!(d.ok(&["network", "ls"]).contains("shop_default"));
    assert!(d.ok(&["volume", "ls"]).contains("shop_data"));
    let logs = ok(&d, &dir, &["logs", "web"]);
    assert!(logs.contains("fetched"), "{logs}");
    // Up again converges: nothing recreated.
    let again = ok(&d, &dir, &["up", "-d"]);
    assert!(again.contains("is up-to-date"), "{again}");
    ok(&d, &dir, &["down", "-v"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(!d.ok(&["network", "ls"]).contains("shop_default"));
    assert!(!d.ok(&["volume", "ls"]).contains("shop_data"));
}
