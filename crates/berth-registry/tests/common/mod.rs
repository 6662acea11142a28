//! Test harness: real `docker-registry` processes on loopback, skopeo seeding, and tiny
//! in-test HTTP servers (a byte-flipping proxy, a bearer-token fake registry).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry serve` on 127.0.0.1, killed on drop.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn start(proxy_of: Option<&str>, htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(up) = proxy_of {
            cfg.push_str(&format!("proxy:\n  remoteurl: {up}\n"));
        }
        if let Some((user, pass)) = htpasswd {
            let hash = bcrypt::hash(pass, 4).unwrap();
            let p = dir.path().join("htpasswd");
            std::fs::write(&p, format!("{user}:{hash}\n")).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                p.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let reg = Registry { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(resp) = reqwest::get(format!("{}/v2/", reg.url())).await {
                let s = resp.status().as_u16();
                if s == 200 || s == 401 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "registry on port {port} did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reg
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The busybox fixture as an OCI layout.
pub fn fixture() -> (tempfile::TempDir, berth_tests::image::ImageLayout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = berth_tests::image::oci_image_layout(&dir.path().join("layout"));
    (dir, layout)
}

/// Push the fixture layout to `host/repo:tag` with skopeo.
pub fn seed(layout_dir: &Path, host: &str, repo: &str, creds: Option<(&str, &str)>) {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--quiet",
    ]);
    if let Some((u, p)) = creds {
        cmd.arg(format!("--dest-creds={u}:{p}"));
    }
    cmd.arg(format!("oci:{}:latest", layout_dir.display()))
        .arg(format!("docker://{host}/{repo}"));
    let out = cmd.output().expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A parsed HTTP/1.1 request head (bodies are read by Content-Length).
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Resp {
        self.body = b.into();
        self
    }
}

async fn read_head(s: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Some((buf, rest));
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn parse_head(head: &[u8]) -> Req {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Req {
        method,
        target,
        headers,
        body: Vec::new(),
    }
}

/// Serve HTTP on a fresh loopback port with `handler`, one request per connection.
pub async fn serve<F>(handler: F) -> u16
where
    F: Fn(Req) -> Resp + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_at(l, handler)
}

/// Serve HTTP on an already bound listener (so the handler can know its own port).
pub fn serve_at<F>(l: TcpListener, handler: F) -> u16
where
    F: Fn(Req) -> Resp + Send + Sync + 'static,
{
    let port = l.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let Some((head, mut rest)) = read_head(&mut s).await else {
                    return;
                };
                let mut req = parse_head(&head);
                let len: usize = req
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while rest.len() < len {
                    let mut tmp = vec![0u8; 65536];
                    let Ok(n) = s.read(&mut tmp).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    rest.extend_from_slice(&tmp[..n]);
                }
                req.body = rest;
                let head_only = req.method == "HEAD";
                let resp = handler(req);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                    resp.status,
                    resp.body.len()
                );
                for (k, v) in &resp.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                if !head_only {
                    bytes.extend_from_slice(&resp.body);
                }
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

/// A proxy in front of `upstream` (host:port) that flips the last byte of every successful
/// blob GET body. Counts the blob GETs it corrupted.
pub async fn corrupting_proxy(upstream: String) -> (u16, Arc<AtomicUsize>) {
    proxy(upstream, true).await
}

/// A proxy that forwards unchanged and counts blob GETs.
pub async fn counting_proxy(upstream: String) -> (u16, Arc<AtomicUsize>) {
    proxy(upstream, false).await
}

async fn proxy(upstream: String, flip: bool) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let corrupted = Arc::new(AtomicUsize::new(0));
    let c2 = corrupted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let corrupted = c2.clone();
            tokio::spawn(async move {
                let Some((head, rest)) = read_head(&mut s).await else {
                    return;
                };
                let req = parse_head(&head);
                let text = String::from_utf8_lossy(&head).to_string();
                let (first, others) = text.split_once("\r\n").unwrap_or((&text, ""));
                let others: String = others
                    .split("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .map(|l| format!("{l}\r\n"))
                    .collect();
                let new_head = format!(
                    "{first}\r\nConnection: close\r\n{}",
                    others.trim_end_matches("\r\n")
                );
                let Ok(mut up) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = up.write_all(format!("{new_head}\r\n\r\n").as_bytes()).await;
                let _ = up.write_all(&rest).await;
                let mut resp = Vec::new();
                let _ = up.read_to_end(&mut resp).await;
                let is_blob_get = req.method == "GET" && req.path().contains("/blobs/sha256:");
                if is_blob_get && resp.starts_with(b"HTTP/1.1 200") {
                    if !flip {
                        corrupted.fetch_add(1, Ordering::SeqCst);
                    } else if let Some(last) = resp.last_mut() {
                        *last ^= 0xff;
                        corrupted.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let _ = s.write_all(&resp).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, corrupted)
}

/// Files of an OCI layout by digest.
pub fn layout_blob(dir: &Path, digest: &str) -> Option<Vec<u8>> {
    let hex = digest.strip_prefix("sha256:")?;
    std::fs::read(dir.join("blobs/sha256").join(hex)).ok()
}

pub type Log = Arc<Mutex<Vec<Req>>>;

pub fn sink_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("store");
    (d, p)
}
