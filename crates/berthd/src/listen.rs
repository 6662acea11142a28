//! Listeners: a unix socket (mode 0660, group `berth` when it exists) or a loopback TCP
//! address. Anything else is refused: the API is root-equivalent and has no TLS yet.

use crate::api;
use anyhow::{bail, Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tracing::{debug, warn};

#[derive(Debug, Clone)]
pub enum Addr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

pub enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, SocketAddr),
}

impl Listener {
    pub fn describe(&self) -> String {
        match self {
            Listener::Unix(_, p) => format!("unix://{}", p.display()),
            Listener::Tcp(_, a) => format!("tcp://{a}"),
        }
    }
}

/// `unix:///path` or `tcp://127.0.0.1:port` (`localhost` and `[::1]` too).
pub fn parse_host(h: &str) -> Result<Addr> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() || !p.starts_with('/') {
            bail!("-H {h}: a unix socket address needs an absolute path, like unix:///run/berth/berth.sock");
        }
        return Ok(Addr::Unix(PathBuf::from(p)));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        let addr: SocketAddr = match a.strip_prefix("localhost:") {
            Some(port) => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port.parse()
                    .with_context(|| format!("-H {h}: \"{port}\" is not a port"))?,
            ),
            None => a
                .parse()
                .with_context(|| format!("-H {h}: expected tcp://<ip>:<port>"))?,
        };
        if !addr.ip().is_loopback() {
            bail!(
                "-H {h}: refusing to serve the API on a non-loopback TCP address without TLS; \
                 use a unix socket or 127.0.0.1"
            );
        }
        return Ok(Addr::Tcp(addr));
    }
    bail!("-H {h}: unsupported address; use unix:///path or tcp://127.0.0.1:<port>")
}

pub async fn bind(a: &Addr) -> Result<Listener> {
    match a {
        Addr::Tcp(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on tcp://{addr}"))?;
            Ok(Listener::Tcp(l, *addr))
        }
        Addr::Unix(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            if path.exists() {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    bail!(
                        "{} is in use by another daemon; stop it or choose another -H",
                        path.display()
                    );
                }
                std::fs::remove_file(path)
                    .with_context(|| format!("removing the stale socket {}", path.display()))?;
            }
            let l = UnixListener::bind(path)
                .with_context(|| format!("listening on unix://{}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .with_context(|| format!("chmod 0660 {}", path.display()))?;
            match nix::unistd::Group::from_name("berth") {
                Ok(Some(g)) => {
                    if let Err(e) = nix::unistd::chown(path.as_path(), None, Some(g.gid)) {
                        warn!(socket = %path.display(), "chown to group berth: {e}");
                    }
                }
                Ok(None) => debug!("no group named berth: the socket stays root-only"),
                Err(e) => warn!("looking up group berth: {e}"),
            }
            Ok(Listener::Unix(l, path.clone()))
        }
    }
}

pub fn cleanup(a: &Addr) {
    if let Addr::Unix(p) = a {
        let _ = std::fs::remove_file(p);
    }
}

pub async fn serve(l: Listener, state: Arc<api::State>) {
    loop {
        let accepted = match &l {
            Listener::Unix(u, _) => u.accept().await.map(|(s, _)| Conn::Unix(s)),
            Listener::Tcp(t, _) => t.accept().await.map(|(s, _)| Conn::Tcp(s)),
        };
        let conn = match accepted {
            Ok(c) => c,
            Err(e) => {
                warn!("accept on {}: {e}", l.describe());
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = service_fn(move |req| api::handle(Arc::clone(&state), req));
            let res = match conn {
                Conn::Unix(s) => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .with_upgrades()
                        .await
                }
                Conn::Tcp(s) => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .with_upgrades()
                        .await
                }
            };
            if let Err(e) = res {
                debug!("connection: {e}");
            }
        });
    }
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}
