//! `berth-vm serve` against a fake guest agent (a TCP server speaking the agent protocol, with a
//! fake engine behind `API`): the engine socket is spliced, published ports open and close on
//! the host as container events arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

#[derive(Default)]
struct Engine {
    /// id -> (published host port on 127.0.0.1, running)
    containers: Vec<(String, u16, bool)>,
}

fn list_json(e: &Engine) -> Value {
    Value::Array(
        e.containers
            .iter()
            .filter(|c| c.2)
            .map(|(id, port, _)| {
                json!({"Id": id, "State": "running", "Ports": [
                    {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": port, "Type": "tcp"}]})
            })
            .collect(),
    )
}

fn inspect_json(e: &Engine, id: &str) -> Option<Value> {
    e.containers
        .iter()
        .find(|c| c.0 == id)
        .map(|(id, port, running)| {
            json!({"Id": id, "State": {"Running": running}, "NetworkSettings": {"Ports": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]}}})
        })
}

async fn respond(w: &mut tokio::net::tcp::OwnedWriteHalf, status: u16, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(head.as_bytes()).await;
    let _ = w.write_all(body.as_bytes()).await;
}

/// The fake agent: returns its port and the events sender.
async fn fake_agent(engine: Arc<Mutex<Engine>>) -> (u16, broadcast::Sender<Value>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, _) = broadcast::channel::<Value>(16);
    let tx2 = tx.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let engine = engine.clone();
            let mut events = tx2.subscribe();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                // The host must send the token first.
                let Some(req) = line.trim().strip_prefix("tok ") else {
                    w.write_all(b"ERR unauthorized: wrong or missing token\n")
                        .await
                        .unwrap();
                    return;
                };
                let req = req.to_string();
                if let Some(p) = req.strip_prefix("CONNECT ") {
                    w.write_all(b"OK\n").await.unwrap();
                    w.write_all(format!("guest:{p}\n").as_bytes())
                        .await
                        .unwrap();
                    return;
                }
                assert_eq!(req, "API");
                w.write_all(b"OK\n").await.unwrap();
                let mut reqline = String::new();
                r.read_line(&mut reqline).await.unwrap();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).await.unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = reqline.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.starts_with("/events") {
                    assert!(path.contains("filters="), "{path}");
                    w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                        .await
                        .unwrap();
                    while let Ok(ev) = events.recv().await {
                        let mut body = serde_json::to_vec(&ev).unwrap();
                        body.push(b'\n');
                        // Split each event over two chunks, as a stream may.
                        let (a, b) = body.split_at(body.len() / 2);
                        for part in [a, b] {
                            let chunk = format!("{:x}\r\n", part.len());
                            if w.write_all(chunk.as_bytes()).await.is_err()
                                || w.write_all(part).await.is_err()
                                || w.write_all(b"\r\n").await.is_err()
                            {
                                return;
                            }
                        }
                    }
                } else if path == "/containers/json" {
                    let body = list_json(&engine.lock().unwrap()).to_string();
                    respond(&mut w, 200, &body).await;
                } else if let Some(id) = path
                    .strip_prefix("/containers/")
                    .and_then(|p| p.strip_suffix("/json"))
                {
                    let found = inspect_json(&engine.lock().unwrap(), id);
                    match found {
                        Some(v) => respond(&mut w, 200, &v.to_string()).await,
                        None => respond(&mut w, 404, "{\"message\":\"no such container\"}").await,
                    }
                } else if path == "/_ping" {
                    w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                        .await
                        .unwrap();
                    // Keep the pipe open like a real engine until the client closes.
                    let mut rest = Vec::new();
                    let _ = r.read_to_end(&mut rest).await;
                }
            });
        }
    });
    (port, tx)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the host's port answers: `guest:<port>`, or None when nothing listens.
fn answer(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.trim().to_string())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn ping_over(sock: &std::path::Path) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while !got.ends_with(b"OK") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "engine socket closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn ports_follow_events_and_the_engine_socket_splices() {
    let (p_pre, p_web) = (free_port(), free_port());
    let engine = Arc::new(Mutex::new(Engine {
        containers: vec![("pre".into(), p_pre, true)],
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (agent_port, events) = rt.block_on(fake_agent(engine.clone()));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sub").join("berth.sock");
    rt.block_on(async {
        let l = berth_vm::serve::bind_engine_socket(&sock).unwrap();
        let ep = berth_vm::agent::Endpoint {
            port: agent_port,
            token: "tok".into(),
        };
        tokio::spawn(berth_vm::serve::serve_engine_socket(l, ep.clone()));
        tokio::spawn(berth_vm::serve::follow_ports(ep));
    });
    // The engine socket answers through the agent's API pipe.
    let resp = ping_over(&sock);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // A container running before the subscription is forwarded after the reconcile.
    wait_for("the pre-existing container's port", || {
        answer(p_pre).as_deref() == Some(&format!("guest:{p_pre}"))
    });
    assert_eq!(answer(p_web), None);
    // A start event opens the new container's port.
    engine
        .lock()
        .unwrap()
        .containers
        .push(("web".into(), p_web, true));
    let ev = |action: &str, id: &str| json!({"Type": "container", "Action": action, "status": action, "id": id, "Actor": {"ID": id, "Attributes": {}}});
    events.send(ev("exec_start: sh", "web")).unwrap();
    events.send(ev("start", "web")).unwrap();
    wait_for("the started container's port", || {
        answer(p_web).as_deref() == Some(&format!("guest:{p_web}"))
    });
    // die closes it; the other stays.
    engine.lock().unwrap().containers[1].2 = false;
    events.send(ev("die", "web")).unwrap();
    wait_for("the dead container's port to close", || {
        answer(p_web).is_none()
    });
    assert_eq!(answer(p_pre), Some(format!("guest:{p_pre}")));
    // A stale socket file is replaced; a live one is refused.
    let e = berth_vm::serve::bind_engine_socket(&sock)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already serves"), "{e}");
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn serve_binary_detaches_writes_its_pid_and_stops_on_sigterm() {
    let engine = Arc::new(Mutex::new(Engine::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (agent_port, _events) = rt.block_on(fake_agent(engine));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("berth.sock");
    std::fs::write(dir.path().join("agent.token"), "tok").unwrap();
    std::fs::write(
        dir.path().join("run.json"),
        json!({"agent_port": agent_port, "accel": "tcg", "started_unix_ms": 0, "socket": sock})
            .to_string(),
    )
    .unwrap();
    let t0 = Instant::now();
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_berth-vm"))
        .args(["--state-dir"])
        .arg(dir.path())
        .args(["serve", "--detach"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(t0.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(dir.path().join("serve.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ping_over(&sock).starts_with("HTTP/1.1 200"));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("serve to exit", || unsafe { libc::kill(pid, 0) } != 0);
    assert!(!sock.exists(), "the socket is removed on exit");
    assert!(!dir.path().join("serve.pid").exists());
    // Without run.json it fails, and says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-vm"))
        .args(["--state-dir"])
        .arg(dir.path().join("nothing"))
        .args(["serve", "--detach"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
