//! The agent's requests: one line from the host, one line back (and the `UDP` tunnel that may
//! follow, std sockets only, so it runs on any host's tests too). Each request is a stream of
//! the control channel ([`crate::mux`]), which only the host's `berth-vm serve` holds: the
//! agent listens on no network, so no container and no other host user can reach it.
//!
//! ```text
//! PING\n          -> OK <ms since the kernel started> <berthd-ready: yes|no>\n
//! API\n           -> OK\n, then a byte pipe to unix:///run/berth/berth.sock
//! CONNECT <port>\n -> OK\n, then a byte pipe to 127.0.0.1:<port>  (or ERR <why>\n)
//! UDP <port>\n    -> OK\n, then datagrams both ways as frames (2-byte big-endian length, then
//!                    the bytes): each frame from the host is sent to 127.0.0.1:<port> (UDP)
//!                    from one socket of this tunnel, each datagram back becomes a frame
//! SHUTDOWN\n      -> OK\n, then berthd is stopped, the data disk unmounted, power off
//! anything else   -> ERR unknown request\n
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest request line accepted (bytes, without the newline).
pub const MAX_LINE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Ping,
    Api,
    Connect(u16),
    Udp(u16),
    Shutdown,
}

/// The largest datagram a `UDP` tunnel carries (65,535 less the IPv4 and UDP headers); the host
/// never sends a longer frame, and a longer one ends the tunnel.
pub const MAX_DATAGRAM: usize = 65_507;

/// One datagram as a `UDP` tunnel frame: its length (2 bytes, big-endian), then its bytes.
/// `None` when it is longer than [`MAX_DATAGRAM`].
pub fn udp_frame(datagram: &[u8]) -> Option<Vec<u8>> {
    if datagram.len() > MAX_DATAGRAM {
        return None;
    }
    let len = u16::try_from(datagram.len()).ok()?;
    let mut out = Vec::with_capacity(2 + datagram.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(datagram);
    Some(out)
}

/// The length a frame header announces, if it is within [`MAX_DATAGRAM`].
pub fn udp_frame_len(header: [u8; 2]) -> Result<usize, String> {
    let len = usize::from(u16::from_be_bytes(header));
    if len > MAX_DATAGRAM {
        return Err(format!(
            "a {len}-byte UDP frame (at most {MAX_DATAGRAM}): the host does not speak the UDP framing"
        ));
    }
    Ok(len)
}

/// Parse one request line (a trailing `\n` or `\r\n` is allowed). The
/// error is the text that follows `ERR ` in the answer.
pub fn parse(line: &str) -> Result<Request, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut words = line.split(' ');
    let verb = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    match (verb, rest.as_slice()) {
        ("PING", []) => Ok(Request::Ping),
        ("API", []) => Ok(Request::Api),
        ("SHUTDOWN", []) => Ok(Request::Shutdown),
        ("CONNECT", [port]) => port_arg("CONNECT", "TCP", port).map(Request::Connect),
        ("UDP", [port]) => port_arg("UDP", "UDP", port).map(Request::Udp),
        ("CONNECT" | "UDP", _) => Err(format!("{verb} takes exactly one argument, the port")),
        _ => Err("unknown request".to_string()),
    }
}

fn port_arg(verb: &str, proto: &str, port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "bad port \"{port}\": {verb} takes a {proto} port number 1-65535"
        )),
    }
}

/// How often a UDP tunnel's receiving side looks whether the host has closed the tunnel.
const UDP_POLL: Duration = Duration::from_millis(500);

/// A UDP socket of one tunnel alone, on 127.0.0.1, connected to 127.0.0.1:<port> (berthd's
/// UDP proxy for a published port listens there): only that port's datagrams reach it.
pub fn udp_socket(port: u16) -> io::Result<UdpSocket> {
    let u = UdpSocket::bind(("127.0.0.1", 0))?;
    u.connect(("127.0.0.1", port))?;
    u.set_read_timeout(Some(UDP_POLL))?;
    Ok(u)
}

/// The `UDP <port>` tunnel after its `OK`: each frame from the host (`s`) is sent out of `u`
/// as one datagram, each datagram `u` receives goes back as one frame. Returns when the host
/// closes the tunnel (it does after a minute without traffic); an error when the host sent
/// something that is not a frame.
pub fn udp_tunnel(s: UnixStream, u: UdpSocket) -> Result<(), String> {
    let done = Arc::new(AtomicBool::new(false));
    let (mut from_host, to_port, flag) = (
        s.try_clone().map_err(|e| e.to_string())?,
        u.try_clone().map_err(|e| e.to_string())?,
        Arc::clone(&done),
    );
    let up = std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut result = Ok(());
        loop {
            let mut header = [0u8; 2];
            if from_host.read_exact(&mut header).is_err() {
                break;
            }
            let n = match udp_frame_len(header) {
                Ok(n) => n,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if from_host.read_exact(&mut buf[..n]).is_err() {
                break;
            }
            // Lost when nothing listens (an ICMP "port unreachable" for an earlier datagram
            // makes this send fail once): the host's client retries, as over any UDP path.
            let _ = to_port.send(&buf[..n]);
        }
        flag.store(true, Ordering::SeqCst);
        result
    });
    let mut to_host = s;
    let mut buf = vec![0u8; 64 * 1024];
    while !done.load(Ordering::SeqCst) {
        match u.recv(&mut buf) {
            Ok(n) => {
                let Some(frame) = udp_frame(&buf[..n]) else {
                    continue;
                };
                if to_host.write_all(&frame).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    // Ends the other side's read if the host is still there.
    let _ = to_host.shutdown(Shutdown::Both);
    up.join()
        .map_err(|_| "the tunnel's reading thread panicked".to_string())?
}

/// The answer to `PING`.
pub fn ping_answer(ms_since_boot: u64, berthd_ready: bool) -> String {
    format!(
        "OK {ms_since_boot} {}\n",
        if berthd_ready { "yes" } else { "no" }
    )
}

/// An `ERR` answer: one line, whatever `why` holds.
pub fn err_answer(why: &str) -> String {
    let one_line: String = why
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("ERR {one_line}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse("PING\n"), Ok(Request::Ping));
        assert_eq!(parse("PING\r\n"), Ok(Request::Ping));
        assert_eq!(parse("API"), Ok(Request::Api));
        assert_eq!(parse("SHUTDOWN\n"), Ok(Request::Shutdown));
        assert_eq!(parse("CONNECT 8080\n"), Ok(Request::Connect(8080)));
        assert_eq!(parse("CONNECT 65535"), Ok(Request::Connect(65535)));
        assert_eq!(parse("UDP 53\n"), Ok(Request::Udp(53)));
        assert_eq!(parse("UDP 65535\r\n"), Ok(Request::Udp(65535)));
    }

    #[test]
    fn bad_requests() {
        assert_eq!(parse("ping\n"), Err("unknown request".into()));
        assert_eq!(parse("\n"), Err("unknown request".into()));
        assert_eq!(parse("PING extra\n"), Err("unknown request".into()));
        assert_eq!(parse("GET / HTTP/1.1\r\n"), Err("unknown request".into()));
        assert!(parse("CONNECT 0").unwrap_err().contains("bad port \"0\""));
        assert!(parse("CONNECT 70000").unwrap_err().contains("1-65535"));
        assert!(parse("CONNECT http").unwrap_err().contains("bad port"));
        assert!(parse("CONNECT").unwrap_err().contains("exactly one"));
        assert!(parse("CONNECT 1 2").unwrap_err().contains("exactly one"));
        assert!(parse("CONNECT  80").is_err());
        assert_eq!(
            parse("UDP 0"),
            Err("bad port \"0\": UDP takes a UDP port number 1-65535".into())
        );
        assert!(parse("UDP 65536").unwrap_err().contains("UDP port number"));
        assert!(parse("UDP dns").unwrap_err().contains("bad port \"dns\""));
        assert_eq!(
            parse("UDP"),
            Err("UDP takes exactly one argument, the port".into())
        );
        assert!(parse("UDP 53 54").unwrap_err().contains("exactly one"));
        assert_eq!(parse("udp 53"), Err("unknown request".into()));
    }

    /// A UDP echo on 127.0.0.1 (`echo:` + the datagram) and its port.
    fn udp_echo() -> u16 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                s.send_to(&reply, from).unwrap();
            }
        });
        port
    }

    /// The host's end of a tunnel served by `udp_tunnel` on another thread.
    fn tunnel_to(port: u16) -> (UnixStream, std::thread::JoinHandle<Result<(), String>>) {
        let (host, guest) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || udp_tunnel(guest, udp_socket(port).unwrap()));
        host.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (host, t)
    }

    fn read_frame(s: &mut UnixStream) -> Vec<u8> {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).unwrap();
        let mut d = vec![0u8; udp_frame_len(h).unwrap()];
        s.read_exact(&mut d).unwrap();
        d
    }

    #[test]
    fn udp_tunnel_carries_datagrams_both_ways_until_the_host_closes() {
        let port = udp_echo();
        let (mut host, t) = tunnel_to(port);
        // Two frames in one write, then one split in two writes: one datagram each.
        let mut two = udp_frame(b"one").unwrap();
        two.extend(udp_frame(b"").unwrap());
        host.write_all(&two).unwrap();
        assert_eq!(read_frame(&mut host), b"echo:one");
        assert_eq!(read_frame(&mut host), b"echo:");
        let big = vec![b'z'; 20_000];
        let f = udp_frame(&big).unwrap();
        host.write_all(&f[..5]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        host.write_all(&f[5..]).unwrap();
        let mut want = b"echo:".to_vec();
        want.extend_from_slice(&big);
        assert_eq!(read_frame(&mut host), want);
        // The host closes its side: the tunnel ends, and closes the stream back.
        host.shutdown(Shutdown::Write).unwrap();
        assert_eq!(t.join().unwrap(), Ok(()));
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn udp_tunnel_survives_a_port_with_no_listener_and_ends_on_a_bad_frame() {
        // Nothing listens: the datagram is lost (ICMP port unreachable), the tunnel stays.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (mut host, t) = tunnel_to(port);
        host.write_all(&udp_frame(b"lost").unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        host.write_all(&udp_frame(b"lost too").unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!t.is_finished(), "the tunnel ended on an unreachable port");
        // A length over the limit is not this protocol: the tunnel ends and says why.
        host.write_all(&[0xff, 0xff]).unwrap();
        let e = t.join().unwrap().unwrap_err();
        assert!(e.contains("65535-byte UDP frame"), "{e}");
    }

    #[test]
    fn udp_frames() {
        assert_eq!(udp_frame(b"dns?").unwrap(), b"\x00\x04dns?");
        assert_eq!(udp_frame(b"").unwrap(), b"\x00\x00");
        let big = vec![1u8; MAX_DATAGRAM];
        let f = udp_frame(&big).unwrap();
        assert_eq!(f.len(), MAX_DATAGRAM + 2);
        assert_eq!(udp_frame_len([f[0], f[1]]), Ok(MAX_DATAGRAM));
        assert_eq!(udp_frame(&vec![1u8; MAX_DATAGRAM + 1]), None);
        assert_eq!(udp_frame_len([0, 0]), Ok(0));
        assert_eq!(udp_frame_len([1, 0]), Ok(256));
        assert!(udp_frame_len([0xff, 0xe4])
            .unwrap_err()
            .contains("65508-byte UDP frame"));
    }

    #[test]
    fn answers() {
        assert_eq!(ping_answer(1234, true), "OK 1234 yes\n");
        assert_eq!(ping_answer(0, false), "OK 0 no\n");
        assert_eq!(err_answer("a\nb"), "ERR a b\n");
    }
}
