//! `berth-vm serve` against a fake guest agent (a unix-socket server speaking the agent
//! protocol, with a fake engine behind `API`; for the serve binary, behind a fake qemu control
//! socket running the guest's end of the stream multiplexer): the engine socket is spliced, published ports (TCP and UDP) open
//! and close on the host as container events arrive, UDP peers get tunnels of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::broadcast;

#[derive(Default)]
struct Engine {
    /// id -> (published host port on 127.0.0.1, running, "tcp" or "udp")
    containers: Vec<(String, u16, bool, &'static str)>,
    /// `UDP <port>` tunnels the fake agent opened, and those that ended.
    udp_opened: usize,
    udp_closed: usize,
}

fn list_json(e: &Engine) -> Value {
    Value::Array(
        e.containers
            .iter()
            .filter(|c| c.2)
            .map(|(id, port, _, proto)| {
                json!({"Id": id, "State": "running", "Ports": [
                    {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": port, "Type": proto}]})
            })
            .collect(),
    )
}

fn inspect_json(e: &Engine, id: &str) -> Option<Value> {
    e.containers
        .iter()
        .find(|c| c.0 == id)
        .map(|(id, port, running, proto)| {
            json!({"Id": id, "State": {"Running": running}, "NetworkSettings": {"Ports": {
            format!("80/{proto}"): [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]}}})
        })
}

async fn respond(w: &mut tokio::net::unix::OwnedWriteHalf, status: u16, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(head.as_bytes()).await;
    let _ = w.write_all(body.as_bytes()).await;
}

/// The fake agent on `<dir>/fake-agent.sock`: returns that path and the events sender.
async fn fake_agent(
    engine: Arc<Mutex<Engine>>,
    dir: &std::path::Path,
) -> (std::path::PathBuf, broadcast::Sender<Value>) {
    let path = dir.join("fake-agent.sock");
    let l = UnixListener::bind(&path).unwrap();
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
                let req = line.trim().to_string();
                if req == "PING" {
                    w.write_all(b"OK 4321 yes\n").await.unwrap();
                    return;
                }
                if let Some(p) = req.strip_prefix("CONNECT ") {
                    w.write_all(b"OK\n").await.unwrap();
                    w.write_all(format!("guest:{p}\n").as_bytes())
                        .await
                        .unwrap();
                    return;
                }
                // A UDP tunnel: each frame (2-byte big-endian length, then the datagram) comes
                // back as a frame prefixed `guest:<port>:`.
                if let Some(p) = req.strip_prefix("UDP ") {
                    engine.lock().unwrap().udp_opened += 1;
                    w.write_all(b"OK\n").await.unwrap();
                    loop {
                        let mut h = [0u8; 2];
                        if r.read_exact(&mut h).await.is_err() {
                            break;
                        }
                        let mut d = vec![0u8; usize::from(u16::from_be_bytes(h))];
                        if r.read_exact(&mut d).await.is_err() {
                            break;
                        }
                        let mut reply = format!("guest:{p}:").into_bytes();
                        reply.extend_from_slice(&d);
                        let mut frame = (reply.len() as u16).to_be_bytes().to_vec();
                        frame.extend_from_slice(&reply);
                        if w.write_all(&frame).await.is_err() {
                            break;
                        }
                    }
                    engine.lock().unwrap().udp_closed += 1;
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
    (path, tx)
}

/// A fake qemu: listens on `control` like qemu's `-chardev socket,server=on` and runs the
/// guest's end of the multiplexer over the one connection, each stream spliced to the fake
/// agent. Returns the count of streams the guest end accepted.
fn fake_qemu(
    control: &std::path::Path,
    agent: std::path::PathBuf,
) -> Arc<std::sync::atomic::AtomicUsize> {
    let l = std::os::unix::net::UnixListener::bind(control).unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = count.clone();
    let mut listener = Some(l);
    berth_vm_init::mux::Mux::acceptor(
        move || match listener.take() {
            Some(l) => {
                let (s, _) = l.accept()?;
                Ok((s.try_clone()?, s))
            }
            None => {
                std::thread::sleep(Duration::from_secs(3600));
                Err(std::io::Error::other("one connection only"))
            }
        },
        move |stream| {
            c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Ok(to_agent) = std::os::unix::net::UnixStream::connect(&agent) else {
                return;
            };
            let (mut a_r, mut a_w) = (stream.try_clone().unwrap(), to_agent.try_clone().unwrap());
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut a_r, &mut a_w);
                let _ = a_w.shutdown(std::net::Shutdown::Write);
            });
            let (mut b_r, mut b_w) = (to_agent, stream);
            let _ = std::io::copy(&mut b_r, &mut b_w);
            let _ = b_w.shutdown(std::net::Shutdown::Write);
            let _ = up.join();
        },
        |_| {},
    );
    count
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

/// A port free for both TCP and UDP on 127.0.0.1.
fn free_port_both() -> u16 {
    loop {
        let p = free_port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// What the host's UDP port answers `msg` from `client`, if anything within a second.
fn ask_udp(client: &UdpSocket, port: u16, msg: &str) -> Option<String> {
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    client.send_to(msg.as_bytes(), ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 2048];
    let (n, from) = client.recv_from(&mut buf).ok()?;
    // The reply comes from the address the client sent to.
    assert_eq!(from, ([127, 0, 0, 1], port).into());
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn udp_client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
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
        containers: vec![("pre".into(), p_pre, true, "tcp")],
        ..Engine::default()
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent, events) = rt.block_on(fake_agent(engine.clone(), dir.path()));
    let sock = dir.path().join("sub").join("berth.sock");
    rt.block_on(async {
        let l = berth_vm::serve::bind_engine_socket(&sock).unwrap();
        let ep = berth_vm::agent::Endpoint::Socket(agent);
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
        .push(("web".into(), p_web, true, "tcp"));
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

fn start_following(
    engine: &Arc<Mutex<Engine>>,
    dir: &std::path::Path,
) -> (tokio::runtime::Runtime, broadcast::Sender<Value>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (agent, events) = rt.block_on(fake_agent(engine.clone(), dir));
    rt.spawn(berth_vm::serve::follow_ports(
        berth_vm::agent::Endpoint::Socket(agent),
    ));
    (rt, events)
}

#[test]
fn udp_ports_follow_events_with_a_tunnel_per_peer() {
    // 53/tcp and 53/udp of one number are two listeners, of two containers here.
    let port = free_port_both();
    let engine = Arc::new(Mutex::new(Engine {
        containers: vec![
            ("web".into(), port, true, "tcp"),
            ("dns".into(), port, true, "udp"),
        ],
        ..Engine::default()
    }));
    let dir = tempfile::tempdir().unwrap();
    let (rt, events) = start_following(&engine, dir.path());
    let expect = |msg: &str| Some(format!("guest:{port}:{msg}"));
    let (a, b) = (udp_client(), udp_client());
    wait_for("the running container's UDP port", || {
        ask_udp(&a, port, "a1") == expect("a1")
    });
    assert_eq!(answer(port), Some(format!("guest:{port}")));
    // Another peer gets its own tunnel; the first peer keeps its own.
    assert_eq!(ask_udp(&b, port, "b1"), expect("b1"));
    assert_eq!(ask_udp(&a, port, "a2"), expect("a2"));
    assert_eq!(ask_udp(&b, port, ""), expect(""));
    let big = "x".repeat(1500);
    assert_eq!(ask_udp(&a, port, &big), expect(&big));
    assert_eq!(engine.lock().unwrap().udp_opened, 2);

    // die closes the UDP socket and its tunnels; the TCP listener of the same number stays.
    engine.lock().unwrap().containers[1].2 = false;
    let ev = |action: &str, id: &str| json!({"Type": "container", "Action": action, "id": id, "Actor": {"ID": id}});
    events.send(ev("die", "dns")).unwrap();
    wait_for("the UDP port to close on the host", || {
        UdpSocket::bind(("127.0.0.1", port)).is_ok()
    });
    wait_for("the tunnels to close", || {
        engine.lock().unwrap().udp_closed == 2
    });
    assert_eq!(answer(port), Some(format!("guest:{port}")));
    // Started again: forwarded again, through a new tunnel.
    engine.lock().unwrap().containers[1].2 = true;
    events.send(ev("start", "dns")).unwrap();
    wait_for("the restarted container's UDP port", || {
        ask_udp(&a, port, "again") == expect("again")
    });
    assert_eq!(engine.lock().unwrap().udp_opened, 3);
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn udp_tunnels_close_when_idle_and_peers_are_bounded() {
    let engine = Arc::new(Mutex::new(Engine::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent, _events) = rt.block_on(fake_agent(engine.clone(), dir.path()));
    let port = free_port_both();
    let p = berth_vm::forward::Published {
        host_ip: "127.0.0.1".parse().unwrap(),
        port,
        proto: berth_vm::forward::Proto::Udp,
    };
    let limits = berth_vm::udp::UdpLimits {
        idle: Duration::from_millis(1500),
        max_peers: 1,
        queue: 8,
    };
    let ep = berth_vm::agent::Endpoint::Socket(agent);
    let listener = rt
        .block_on(berth_vm::udp::open_udp_forward(p, ep, limits))
        .unwrap();
    let expect = |msg: &str| Some(format!("guest:{port}:{msg}"));
    let (a, b) = (udp_client(), udp_client());
    assert_eq!(ask_udp(&a, port, "a"), expect("a"));
    // One peer at most: b's datagram is dropped while a's tunnel lives.
    assert_eq!(ask_udp(&b, port, "b"), None);
    assert_eq!(engine.lock().unwrap().udp_opened, 1);
    // a's tunnel closes once idle; then b gets one.
    wait_for("the idle tunnel to close", || {
        engine.lock().unwrap().udp_closed == 1
    });
    assert_eq!(ask_udp(&b, port, "b2"), expect("b2"));
    assert_eq!(engine.lock().unwrap().udp_opened, 2);
    // Traffic keeps a tunnel open past the idle time.
    for i in 0..4 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(ask_udp(&b, port, &i.to_string()), expect(&i.to_string()));
    }
    assert_eq!(engine.lock().unwrap().udp_opened, 2);
    // Aborting the listener (the container stopped) frees the port and ends the tunnel.
    listener.abort();
    wait_for("the port to be free", || {
        UdpSocket::bind(("127.0.0.1", port)).is_ok()
    });
    wait_for("the tunnel to end", || {
        engine.lock().unwrap().udp_closed == 2
    });
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
    let dir = tempfile::tempdir().unwrap();
    let (agent, _events) = rt.block_on(fake_agent(engine, dir.path()));
    let sock = dir.path().join("berth.sock");
    std::fs::write(
        dir.path().join("run.json"),
        json!({"accel": "tcg", "started_unix_ms": 0, "socket": sock}).to_string(),
    )
    .unwrap();
    let guest_streams = fake_qemu(&dir.path().join("control.sock"), agent);
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
    // The engine socket reaches the fake engine through a stream of the control channel.
    assert!(ping_over(&sock).starts_with("HTTP/1.1 200"));
    // The agent socket, private to its owner, relays the line protocol the same way.
    let agent_sock = dir.path().join("agent.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&agent_sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "agent.sock mode {mode:o}");
    let pong = berth_vm::agent::Agent::new(&agent_sock).ping().unwrap();
    assert_eq!(pong.uptime_ms, 4321);
    assert!(guest_streams.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("serve to exit", || unsafe { libc::kill(pid, 0) } != 0);
    assert!(!sock.exists(), "the socket is removed on exit");
    assert!(!agent_sock.exists(), "the agent socket is removed on exit");
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
