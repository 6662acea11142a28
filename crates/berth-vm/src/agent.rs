//! The guest agent's line protocol (docs/vm.md): one request line, one answer line, then (API,
//! CONNECT) a raw byte pipe, or (UDP) length-prefixed datagrams both ways (see [`crate::udp`]).
//! Each request travels on a stream of its own over the VM's control channel, a virtio-serial
//! port (see [`berth_vm_init::mux`]) that only `berth-vm serve` holds. Other host processes
//! reach the agent through the socket serve keeps for them, `<state dir>/agent.sock` (0600 in
//! the 0700 state directory): no port on any network, no token.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// The answer to `PING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// Milliseconds since the guest kernel started.
    pub uptime_ms: u64,
    /// berthd answers `_ping` inside the guest.
    pub berthd_ready: bool,
}

/// Parses `OK <ms> <yes|no>`.
pub fn parse_pong(line: &str) -> Result<Pong> {
    let bad = || Error::Other(format!("the guest agent answered PING with {line:?}"));
    let mut w = line.split_whitespace();
    if w.next() != Some("OK") {
        return Err(bad());
    }
    let uptime_ms = w.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let berthd_ready = match w.next() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(bad()),
    };
    Ok(Pong {
        uptime_ms,
        berthd_ready,
    })
}

/// Checks an answer line: `OK...` passes, `ERR <why>` becomes the error.
pub fn check_ok(request: &str, line: &str) -> Result<()> {
    let l = line.trim_end();
    if l == "OK" || l.starts_with("OK ") {
        return Ok(());
    }
    let why = l.strip_prefix("ERR ").unwrap_or(l);
    Err(Error::Other(format!(
        "the guest agent refused {}: {}",
        request.trim(),
        if why.is_empty() {
            "the connection closed"
        } else {
            why
        }
    )))
}

/// Reads one `\n`-terminated line, a byte at a time (nothing after it is consumed).
fn read_line_sync(s: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b)? {
            0 => break,
            _ if b[0] == b'\n' => break,
            _ => line.push(b[0]),
        }
        if line.len() > 4096 {
            return Err(std::io::Error::other("agent answer line too long"));
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The agent socket of a VM state directory.
pub fn agent_socket(state_dir: &Path) -> PathBuf {
    state_dir.join("agent.sock")
}

/// A blocking client of the agent, through `berth-vm serve`'s agent socket.
#[derive(Debug, Clone)]
pub struct Agent {
    pub socket: PathBuf,
    pub timeout: Duration,
}

/// Where requests go: the agent socket (any host process), or straight onto the control
/// channel (inside `berth-vm serve`, which holds it).
#[derive(Debug, Clone)]
pub enum Endpoint {
    Socket(PathBuf),
    Channel(crate::channel::Channel),
}

/// The request line as sent.
fn line(req: &str) -> String {
    format!("{}\n", req.trim_end())
}

impl Agent {
    pub fn new(socket: impl Into<PathBuf>) -> Agent {
        Agent {
            socket: socket.into(),
            timeout: Duration::from_secs(3),
        }
    }

    /// Sends one request and returns the stream after its answer line, and that line.
    pub fn request(&self, req: &str) -> Result<(UnixStream, String)> {
        let sock = &self.socket;
        let timeout = self.timeout;
        let unreachable = |e: std::io::Error| {
            let why = match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    format!("no answer within {timeout:?} (still booting?)")
                }
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    format!("{e} (is the VM started? `berth vm start`)")
                }
                _ => e.to_string(),
            };
            Error::Other(format!(
                "the guest agent at {} did not answer {}: {why}",
                sock.display(),
                req.trim()
            ))
        };
        let mut s = UnixStream::connect(sock).map_err(unreachable)?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(unreachable)?;
        s.set_write_timeout(Some(self.timeout))
            .map_err(unreachable)?;
        s.write_all(line(req).as_bytes()).map_err(unreachable)?;
        let line = read_line_sync(&mut s).map_err(unreachable)?;
        if line.is_empty() {
            return Err(Error::Other(format!(
                "the guest agent at {} closed the connection without answering {} (still booting?)",
                sock.display(),
                req.trim()
            )));
        }
        s.set_read_timeout(None).map_err(unreachable)?;
        s.set_write_timeout(None).map_err(unreachable)?;
        Ok((s, line))
    }

    pub fn ping(&self) -> Result<Pong> {
        let (_, line) = self.request("PING")?;
        parse_pong(&line)
    }

    /// Asks the guest to stop berthd, unmount the data disk and power off.
    pub fn shutdown(&self) -> Result<()> {
        let (_, line) = self.request("SHUTDOWN")?;
        check_ok("SHUTDOWN", &line)
    }

    /// A byte pipe to the guest's engine socket.
    pub fn api(&self) -> Result<UnixStream> {
        let (s, line) = self.request("API")?;
        check_ok("API", &line)?;
        Ok(s)
    }

    /// A byte pipe to `127.0.0.1:<port>` in the guest.
    pub fn connect(&self, port: u16) -> Result<UnixStream> {
        let req = format!("CONNECT {port}");
        let (s, line) = self.request(&req)?;
        check_ok(&req, &line)?;
        Ok(s)
    }
}

/// The async side, for `berth-vm serve`.
pub mod tokio_client {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    use super::{check_ok, line, Endpoint};
    use crate::{Error, Result};

    /// A fresh stream to the agent: a connection to the agent socket, or a new stream of the
    /// control channel.
    pub async fn stream(ep: &Endpoint) -> std::io::Result<UnixStream> {
        match ep {
            Endpoint::Socket(p) => UnixStream::connect(p).await,
            Endpoint::Channel(c) => c.open().await,
        }
    }

    /// Sends `req`, checks the `OK` answer and returns the stream (now a byte pipe).
    pub async fn open(ep: &Endpoint, req: &str) -> Result<UnixStream> {
        let err =
            |e: std::io::Error| Error::Other(format!("the guest agent ({}): {e}", req.trim()));
        let mut s = stream(ep).await.map_err(err)?;
        s.write_all(line(req).as_bytes()).await.map_err(err)?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            let n = s.read(&mut b).await.map_err(err)?;
            if n == 0 || b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
            if line.len() > 4096 {
                return Err(Error::Other("the guest agent: answer too long".into()));
            }
        }
        check_ok(req, &String::from_utf8_lossy(&line))?;
        Ok(s)
    }

    pub async fn api(ep: &Endpoint) -> Result<UnixStream> {
        open(ep, "API").await
    }

    pub async fn connect(ep: &Endpoint, guest_port: u16) -> Result<UnixStream> {
        open(ep, &format!("CONNECT {guest_port}")).await
    }

    /// A datagram tunnel to `127.0.0.1:<guest_port>` (UDP) in the guest: write datagrams with
    /// [`crate::udp::encode_frame`], read the replies with [`crate::udp::FrameDecoder`].
    pub async fn udp(ep: &Endpoint, guest_port: u16) -> Result<UnixStream> {
        open(ep, &format!("UDP {guest_port}")).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// A fake agent on a unix socket: answers by the request line, then echoes five bytes for
    /// API/CONNECT 80.
    fn fake_agent(dir: &Path) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let path = dir.join("agent.sock");
        let l = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for conn in l.incoming().take(5) {
                let s = conn.unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let req = line.trim().to_string();
                seen.push(req.clone());
                match req.as_str() {
                    "PING" => w.write_all(b"OK 1234 yes\n").unwrap(),
                    "SHUTDOWN" | "API" | "CONNECT 80" => w.write_all(b"OK\n").unwrap(),
                    _ => w.write_all(b"ERR nothing listens on 81\n").unwrap(),
                }
                if req == "API" || req == "CONNECT 80" {
                    let mut buf = [0u8; 5];
                    r.read_exact(&mut buf).unwrap();
                    w.write_all(&buf).unwrap();
                }
            }
            seen
        });
        (path, t)
    }

    #[test]
    fn client_against_a_fake_agent() {
        let dir = tempfile::tempdir().unwrap();
        let (sock, t) = fake_agent(dir.path());
        let a = Agent::new(&sock);
        assert_eq!(
            a.ping().unwrap(),
            Pong {
                uptime_ms: 1234,
                berthd_ready: true
            }
        );
        let mut s = a.api().unwrap();
        s.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
        let mut s = a.connect(80).unwrap();
        s.write_all(b"port!").unwrap();
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"port!");
        let e = a.connect(81).unwrap_err().to_string();
        assert!(
            e.contains("CONNECT 81") && e.contains("nothing listens on 81"),
            "{e}"
        );
        a.shutdown().unwrap();
        assert_eq!(
            t.join().unwrap(),
            ["PING", "API", "CONNECT 80", "CONNECT 81", "SHUTDOWN"]
        );
    }

    #[test]
    fn async_client_against_a_fake_agent() {
        let dir = tempfile::tempdir().unwrap();
        let (sock, t) = fake_agent(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // The fake answers PING first; take that turn with the blocking client.
            Agent::new(&sock).ping().unwrap();
            let ep = Endpoint::Socket(sock.clone());
            let mut s = tokio_client::api(&ep).await.unwrap();
            s.write_all(b"abcde").await.unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"abcde");
            let mut s = tokio_client::connect(&ep, 80).await.unwrap();
            s.write_all(b"vwxyz").await.unwrap();
            s.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"vwxyz");
            let e = tokio_client::connect(&ep, 81).await.unwrap_err();
            assert!(e.to_string().contains("nothing listens"), "{e}");
            Agent::new(&sock).shutdown().unwrap();
        });
        t.join().unwrap();
    }

    #[test]
    fn pong_parsing() {
        assert_eq!(
            parse_pong("OK 5 no").unwrap(),
            Pong {
                uptime_ms: 5,
                berthd_ready: false
            }
        );
        for bad in ["", "ERR x", "OK", "OK x yes", "OK 5 maybe"] {
            assert!(parse_pong(bad).is_err(), "{bad:?}");
        }
        assert!(check_ok("API", "OK").is_ok());
        assert!(check_ok("API", "")
            .unwrap_err()
            .to_string()
            .contains("closed"));
    }

    #[test]
    fn unreachable_agent_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Agent::new(dir.path().join("agent.sock"))
            .ping()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did not answer PING") && e.contains("berth vm start"),
            "{e}"
        );
    }
}
