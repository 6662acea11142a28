//! `berth_compose::Compose::logs` in watch mode (what the desktop app's Compose page reads):
//! a container that is created but not yet started when the log opens, one created later,
//! and one that stops and starts again all show up in the one stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_compose::ops::{Compose, LogLine, LogOptions};
use berth_tests::berthd::Berthd;
use berth_tests::require_root;
use bollard::{ClientVersion, Docker};
use futures_util::{Stream, StreamExt};
use std::time::Duration;

fn client(d: &Berthd) -> Docker {
    Docker::connect_with_unix(
        d.sock.to_str().unwrap(),
        60,
        &ClientVersion {
            major_version: 1,
            minor_version: 45,
        },
    )
    .unwrap()
}

/// `docker create` of a container of project `watchp`, service `svc`, replica `n`.
fn create(d: &Berthd, svc: &str, n: u32, script: &str) -> String {
    let name = format!("watchp-{svc}-{n}");
    d.ok(&[
        "create",
        "--name",
        &name,
        "--label",
        "com.docker.compose.project=watchp",
        "--label",
        &format!("com.docker.compose.service={svc}"),
        "--label",
        &format!("com.docker.compose.container-number={n}"),
        "--label",
        "com.docker.compose.oneoff=False",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    name
}

/// Reads lines until one from `container` holds `text`; panics after 30 s, listing what came.
async fn expect_line(
    stream: &mut (impl Stream<Item = Result<LogLine, berth_compose::ops::Error>> + Unpin),
    container: &str,
    text: &str,
    seen: &mut Vec<String>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let line = match next {
            Ok(Some(Ok(l))) => l,
            Ok(Some(Err(e))) => panic!("log stream error: {e}"),
            Ok(None) => {
                panic!("the log stream ended waiting for {container}: {text}; saw {seen:?}")
            }
            Err(_) => panic!("no {container}: {text} within 30 s; saw {seen:?}"),
        };
        if line.ended {
            seen.push(format!("{} (ended)", line.container));
            continue;
        }
        seen.push(format!("{}: {}", line.container, line.text));
        if line.container == container && line.text == text {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_follows_containers_started_after_the_log_opened() {
    if !require_root("watch_follows_containers_started_after_the_log_opened") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let compose = Compose::new(client(&d));
    let web = create(&d, "web", 1, "echo web-first-run; exec sleep 300");
    let opts = LogOptions {
        follow: true,
        watch: true,
        ..Default::default()
    };
    let mut stream = compose.logs("watchp", &opts).await.unwrap();
    let mut seen = Vec::new();
    // Created, not started, when the log opened: its reader ends at once; the start brings
    // it back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.ok(&["start", &web]);
    expect_line(&mut stream, &web, "web-first-run", &mut seen).await;
    // A container the log never listed.
    let db = create(&d, "db", 1, "echo db-ready; exec sleep 300");
    d.ok(&["start", &db]);
    expect_line(&mut stream, &db, "db-ready", &mut seen).await;
    // Stopped and started again: the new run's lines, once.
    d.ok(&["stop", "-t", "1", &web]);
    d.ok(&["start", &web]);
    expect_line(&mut stream, &web, "web-first-run", &mut seen).await;
    let runs = seen
        .iter()
        .filter(|l| l.as_str() == format!("{web}: web-first-run"))
        .count();
    assert_eq!(runs, 2, "each run's line once: {seen:?}");
    // Without watch, a created container's reader ends and nothing brings it back.
    let late = create(&d, "late", 1, "echo late-line; exec sleep 300");
    let plain = LogOptions {
        follow: true,
        services: vec!["late".into()],
        ..Default::default()
    };
    let mut stream2 = compose.logs("watchp", &plain).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stream2.next())
        .await
        .expect("a created container's log ends at once")
        .unwrap()
        .unwrap();
    assert!(first.ended, "{first:?}");
    d.ok(&["rm", "-f", &web, &db, &late]);
}
