//! `berth-vm serve`: the long-lived host process of a running VM. It holds the VM's control
//! channel ([`crate::channel`]) and serves (1) the engine socket on the host, every connection
//! spliced to the guest's berthd through an agent `API` stream, (2) the agent socket
//! (`agent.sock`) for other host processes' requests (`PING`, `SHUTDOWN`), and (3) published ports: it follows the engine's container events, asks
//! which host ports each running container publishes and listens on the same address and port
//! on the host, forwarding each TCP connection through an agent `CONNECT <port>` pipe and each
//! UDP peer's datagrams through an agent `UDP <port>` tunnel ([`crate::udp`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::agent::{tokio_client, Endpoint};
use crate::channel::Channel;
use crate::forward::{self, Changes, EventAction, PortTable, Proto, Published};
use crate::http::{self, ChunkedDecoder, JsonSplitter};
use crate::vm::RunInfo;
use crate::{io_err, Error, Result};

pub(crate) fn log(msg: impl std::fmt::Display) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    eprintln!("{t} berth-vm serve: {msg}");
}

/// Reads `run.json` from the state directory.
pub fn run_info(state_dir: &Path) -> Result<RunInfo> {
    let p = state_dir.join("run.json");
    let text = std::fs::read_to_string(&p).map_err(io_err(format!(
        "reading {} (is the VM started?)",
        p.display()
    )))?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
}

/// Binds the engine socket (replacing a stale one; refusing a live one).
pub fn bind_engine_socket(path: &Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io_err(format!("creating {}", parent.display())))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Other(format!(
                "something already serves {}: stop it, or give this VM another socket",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(io_err(format!(
            "removing the stale socket {}",
            path.display()
        )))?;
    }
    UnixListener::bind(path).map_err(io_err(format!("listening on {}", path.display())))
}

/// Binds `<state dir>/agent.sock` for other host processes' agent requests, mode 0600.
pub fn bind_agent_socket(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(io_err(format!("listening on {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("making {} private", path.display())))?;
    Ok(l)
}

/// Serves until SIGTERM/SIGINT. `on_ready` runs once the engine socket listens and
/// `serve.pid` is written.
pub async fn run(state_dir: PathBuf, on_ready: impl FnOnce()) -> Result<()> {
    let info = run_info(&state_dir)?;
    let listener = bind_engine_socket(&info.socket)?;
    let agent_path = crate::agent::agent_socket(&state_dir);
    let agent_listener = bind_agent_socket(&agent_path)?;
    let pidfile = state_dir.join("serve.pid");
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))
        .map_err(io_err(format!("writing {}", pidfile.display())))?;
    let control = crate::channel::control_socket(&state_dir);
    let channel = Channel::default();
    channel.connect_forever(control.clone());
    on_ready();
    log(format!(
        "engine socket {} and agent socket {} -> the VM's control channel {}",
        info.socket.display(),
        agent_path.display(),
        control.display()
    ));
    let agent = Endpoint::Channel(channel.clone());
    let engine = tokio::spawn(serve_engine_socket(listener, agent.clone()));
    let relay = tokio::spawn(serve_agent_socket(agent_listener, channel));
    let ports = tokio::spawn(follow_ports(agent));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_err("installing the SIGTERM handler"))?;
    tokio::select! {
        _ = term.recv() => log("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => log("SIGINT: stopping"),
    }
    engine.abort();
    relay.abort();
    ports.abort();
    let _ = std::fs::remove_file(&info.socket);
    let _ = std::fs::remove_file(&agent_path);
    if std::fs::read_to_string(&pidfile).is_ok_and(|p| p.trim() == std::process::id().to_string()) {
        let _ = std::fs::remove_file(&pidfile);
    }
    Ok(())
}

/// Accepts connections on `listener` forever, each handled by `handle` on a task of its own.
async fn accept_forever<F, Fut>(listener: UnixListener, what: &'static str, handle: F)
where
    F: Fn(UnixStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((c, _)) => {
                tokio::spawn(handle(c));
            }
            Err(e) => {
                log(format!("{what} accept: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Every connection to the agent socket becomes a stream of the control channel, carried
/// through unchanged (the client speaks the agent's line protocol). When no stream can be
/// opened the client reads `ERR <why>`.
pub async fn serve_agent_socket(listener: UnixListener, channel: Channel) {
    accept_forever(listener, "agent socket", |mut client| {
        let channel = channel.clone();
        async move {
            match channel.open().await {
                Ok(mut guest) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut guest).await;
                }
                Err(e) => {
                    use tokio::io::AsyncWriteExt;
                    let _ = client.write_all(format!("ERR {e}\n").as_bytes()).await;
                }
            }
        }
    })
    .await
}

/// Every connection to the host's engine socket becomes an agent `API` pipe.
pub async fn serve_engine_socket(listener: UnixListener, agent: Endpoint) {
    accept_forever(listener, "engine socket", |mut client| {
        let agent = agent.clone();
        async move {
            match tokio_client::api(&agent).await {
                Ok(mut guest) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut guest).await;
                }
                Err(e) => log(format!("engine connection: {e}")),
            }
        }
    })
    .await
}

/// One host listener forwarding to the guest's `port`: TCP here, UDP in [`crate::udp`] (with
/// the default bounds). Aborting the task closes the listener.
pub async fn open_forward(p: Published, agent: Endpoint) -> std::io::Result<JoinHandle<()>> {
    if p.proto == Proto::Udp {
        return crate::udp::open_udp_forward(p, agent, crate::udp::UdpLimits::default()).await;
    }
    let listener = TcpListener::bind(SocketAddr::new(p.host_ip, p.port)).await?;
    Ok(tokio::spawn(async move {
        loop {
            let mut client = match listener.accept().await {
                Ok((c, _)) => c,
                Err(e) => {
                    log(format!("{p}: accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let agent = agent.clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                match tokio_client::connect(&agent, p.port).await {
                    Ok(mut guest) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut guest).await;
                    }
                    Err(e) => log(format!("{p}: {e}")),
                }
            });
        }
    }))
}

/// The open host listeners.
#[derive(Default)]
pub struct Forwards {
    open: HashMap<Published, JoinHandle<()>>,
}

impl Forwards {
    pub async fn apply(&mut self, ch: Changes, agent: &Endpoint) {
        for p in ch.close {
            if let Some(h) = self.open.remove(&p) {
                h.abort();
                log(format!("closed {p}"));
            }
        }
        for p in ch.open {
            match open_forward(p, agent.clone()).await {
                Ok(h) => {
                    log(format!(
                        "forwarding {p} to the guest's port {}/{}",
                        p.port, p.proto
                    ));
                    self.open.insert(p, h);
                }
                Err(e) => log(format!(
                    "cannot listen on {p} on the host ({e}): that published port does not answer on the host"
                )),
            }
        }
    }

    pub fn listening(&self) -> Vec<Published> {
        self.open.keys().copied().collect()
    }
}

/// Follows the engine's events forever, reconnecting (and reconciling) when the stream ends.
pub async fn follow_ports(agent: Endpoint) {
    let mut table = PortTable::default();
    let mut fwd = Forwards::default();
    let mut failures = 0u32;
    loop {
        match follow_once(&agent, &mut table, &mut fwd).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                // Quiet while the guest boots; say it now and then.
                if failures == 1 || failures.is_multiple_of(60) {
                    log(format!("following the engine's events: {e} (retrying)"));
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn inspect(agent: &Endpoint, id: &str) -> Result<Vec<Published>> {
    let s = tokio_client::api(agent).await?;
    let c = http::get_json(s, &format!("/containers/{id}/json")).await?;
    Ok(forward::published_from_inspect(&c))
}

/// Subscribes to `/events`, reconciles with the running containers, then applies events until
/// the stream ends.
pub async fn follow_once(
    agent: &Endpoint,
    table: &mut PortTable,
    fwd: &mut Forwards,
) -> Result<()> {
    let mut events = tokio_client::api(agent).await?;
    let (head, rest) = http::send_get(&mut events, forward::EVENTS_PATH).await?;
    if head.status != 200 {
        return Err(Error::Other(format!("GET /events: status {}", head.status)));
    }
    let list = http::get_json(tokio_client::api(agent).await?, "/containers/json").await?;
    let ch = table.reconcile(forward::published_from_list(&list));
    fwd.apply(ch, agent).await;
    let mut dec = ChunkedDecoder::default();
    let mut split = JsonSplitter::default();
    let mut pending = rest;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let body = if head.chunked {
            dec.feed(&pending)?
        } else {
            std::mem::take(&mut pending)
        };
        for ev in split.feed(&body)? {
            let ch = match forward::event_action(&ev) {
                Some(EventAction::Started(id)) => {
                    let ports = inspect(agent, &id).await.unwrap_or_else(|e| {
                        log(format!("inspecting {id}: {e}"));
                        Vec::new()
                    });
                    table.set(&id, ports)
                }
                Some(EventAction::Stopped(id)) => table.remove(&id),
                None => continue,
            };
            fwd.apply(ch, agent).await;
        }
        if dec.is_done() {
            return Ok(());
        }
        let n = events
            .read(&mut buf)
            .await
            .map_err(|e| Error::Other(format!("reading the engine's events: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        pending = buf[..n].to_vec();
    }
}
