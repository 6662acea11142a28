//! The guest agent's line protocol (docs/vm.md): one request line, one answer line, then (API,
//! CONNECT) a raw byte pipe, or (UDP) length-prefixed datagrams both ways (see [`crate::udp`]). Reached on host loopback through qemu's user-network hostfwd,
//! which any local user can connect to, so every request line starts with the VM's token
//! (`<token> PING`): a secret the host writes 0600 into the state directory and hands the
//! guest through qemu's fw_cfg, never on a command line.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
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

fn agent_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Reads one `\n`-terminated line, a byte at a time (nothing after it is consumed).
fn read_line_sync(s: &mut TcpStream) -> std::io::Result<String> {
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

/// A blocking client of the agent at `127.0.0.1:<port>`.
#[derive(Debug, Clone)]
pub struct Agent {
    pub port: u16,
    pub token: String,
    pub timeout: Duration,
}

/// Where the agent is and the token it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub token: String,
}

/// The request line as sent: the token, then the request.
fn line(token: &str, req: &str) -> String {
    format!("{token} {}\n", req.trim_end())
}

impl Agent {
    pub fn new(port: u16, token: impl Into<String>) -> Agent {
        Agent {
            port,
            token: token.into(),
            timeout: Duration::from_secs(3),
        }
    }

    /// Sends one request and returns the stream after its answer line, and that line.
    pub fn request(&self, req: &str) -> Result<(TcpStream, String)> {
        let addr = agent_addr(self.port);
        let timeout = self.timeout;
        let unreachable = |e: std::io::Error| {
            let why = match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    format!("no answer within {timeout:?} (still booting?)")
                }
                _ => e.to_string(),
            };
            Error::Other(format!(
                "the guest agent on {addr} did not answer {}: {why}",
                req.trim()
            ))
        };
        let mut s = TcpStream::connect_timeout(&addr, self.timeout).map_err(unreachable)?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(unreachable)?;
        s.set_nodelay(true).map_err(unreachable)?;
        s.write_all(line(&self.token, req).as_bytes())
            .map_err(unreachable)?;
        let line = read_line_sync(&mut s).map_err(unreachable)?;
        // qemu's hostfwd accepts even while nothing listens in the guest, then closes.
        if line.is_empty() {
            return Err(Error::Other(format!(
                "the guest agent on {addr} closed the connection without answering {} (still booting?)",
                req.trim()
            )));
        }
        s.set_read_timeout(None).map_err(unreachable)?;
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
    pub fn api(&self) -> Result<TcpStream> {
        let (s, line) = self.request("API")?;
        check_ok("API", &line)?;
        Ok(s)
    }

    /// A byte pipe to `127.0.0.1:<port>` in the guest.
    pub fn connect(&self, port: u16) -> Result<TcpStream> {
        let req = format!("CONNECT {port}");
        let (s, line) = self.request(&req)?;
        check_ok(&req, &line)?;
        Ok(s)
    }
}

/// The async side, for `berth-vm serve`.
pub mod tokio_client {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::{agent_addr, check_ok, line, Endpoint};
    use crate::{Error, Result};

    /// Sends `req`, checks the `OK` answer and returns the stream (now a byte pipe).
    pub async fn open(ep: &Endpoint, req: &str) -> Result<TcpStream> {
        let addr = agent_addr(ep.port);
        let err = |e: std::io::Error| {
            Error::Other(format!("the guest agent on {addr} ({}): {e}", req.trim()))
        };
        let mut s = TcpStream::connect(addr).await.map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
        s.write_all(line(&ep.token, req).as_bytes())
            .await
            .map_err(err)?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            let n = s.read(&mut b).await.map_err(err)?;
            if n == 0 || b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
            if line.len() > 4096 {
                return Err(Error::Other(format!(
                    "the guest agent on {addr}: answer too long"
                )));
            }
        }
        check_ok(req, &String::from_utf8_lossy(&line))?;
        Ok(s)
    }

    pub async fn api(ep: &Endpoint) -> Result<TcpStream> {
        open(ep, "API").await
    }

    pub async fn connect(ep: &Endpoint, guest_port: u16) -> Result<TcpStream> {
        open(ep, &format!("CONNECT {guest_port}")).await
    }

    /// A datagram tunnel to `127.0.0.1:<guest_port>` (UDP) in the guest: write datagrams with
    /// [`crate::udp::encode_frame`], read the replies with [`crate::udp::FrameDecoder`].
    pub async fn udp(ep: &Endpoint, guest_port: u16) -> Result<TcpStream> {
        open(ep, &format!("UDP {guest_port}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A fake agent: answers by the request line, then echoes bytes for API/CONNECT.
    fn fake_agent() -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for conn in l.incoming().take(5) {
                let s = conn.unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                // Every request carries the token; a wrong one is refused.
                let Some(req) = line.trim().strip_prefix("tok ") else {
                    w.write_all(b"ERR unauthorized: wrong or missing token\n")
                        .unwrap();
                    seen.push(format!("refused: {}", line.trim()));
                    continue;
                };
                let req = req.to_string();
                seen.push(req.clone());
                match req.as_str() {
                    "PING" => w.write_all(b"OK 1234 yes\n").unwrap(),
                    "SHUTDOWN" | "API" => w.write_all(b"OK\n").unwrap(),
                    "CONNECT 80" => w.write_all(b"OK\n").unwrap(),
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
        (port, t)
    }

    #[test]
    fn client_against_a_fake_agent() {
        let (port, t) = fake_agent();
        let a = Agent::new(port, "tok");
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
        let (port, t) = fake_agent();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // The fake answers PING first; take that turn with the blocking client.
            Agent::new(port, "tok").ping().unwrap();
            let ep = Endpoint {
                port,
                token: "tok".into(),
            };
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
            Agent::new(port, "tok").shutdown().unwrap();
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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Agent::new(port, "tok").ping().unwrap_err().to_string();
        assert!(e.contains("did not answer PING"), "{e}");
    }

    #[test]
    fn a_wrong_token_is_refused() {
        let (port, t) = fake_agent();
        let e = Agent::new(port, "nope").ping().unwrap_err().to_string();
        assert!(e.contains("unauthorized"), "{e}");
        // Let the fake's remaining turns end.
        let a = Agent::new(port, "tok");
        a.ping().unwrap();
        let _ = a.connect(81);
        let _ = a.connect(81);
        a.shutdown().unwrap();
        assert_eq!(t.join().unwrap()[0], "refused: nope PING");
    }
}
