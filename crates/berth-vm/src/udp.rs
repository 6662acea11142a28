//! UDP published ports: the host binds the same `host_ip:port` as a UDP socket, and every host
//! peer (client address and port) gets its own tunnel through the guest agent, an agent
//! `UDP <port>` pipe that carries datagrams as frames (a 2-byte big-endian length, then that
//! many bytes) both ways. In the guest the agent sends each datagram from its own socket to
//! `127.0.0.1:<port>` (where berthd's UDP proxy listens) and frames back whatever comes from
//! there; on the host the replies leave the listener's socket for that peer, so the client sees
//! them come from the address it sent to.
//!
//! Bounds: a datagram holds at most [`MAX_DATAGRAM`] bytes (the most an IPv4 UDP datagram
//! carries; larger ones are dropped), a listener keeps at most [`UdpLimits::max_peers`] tunnels
//! (datagrams of further peers are dropped until one closes), each tunnel queues at most
//! [`UdpLimits::queue`] datagrams while the guest catches up (the rest are dropped, as UDP may),
//! and a tunnel closes after [`UdpLimits::idle`] without a datagram either way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::agent::{tokio_client, Endpoint};
use crate::forward::Published;
use crate::{Error, Result};

/// The largest datagram a tunnel carries: 65,535 less the IPv4 and UDP headers.
pub const MAX_DATAGRAM: usize = 65_507;
/// A tunnel without a datagram either way for this long closes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Tunnels (host peers) one listener keeps at once.
pub const MAX_PEERS: usize = 256;
/// Datagrams queued for one tunnel while it connects or the guest catches up.
pub const PEER_QUEUE: usize = 64;

/// One datagram as a frame: its length (2 bytes, big-endian), then its bytes.
pub fn encode_frame(datagram: &[u8]) -> Result<Vec<u8>> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(Error::Other(format!(
            "a {}-byte datagram is over the {MAX_DATAGRAM}-byte limit of a UDP forward",
            datagram.len()
        )));
    }
    let len = u16::try_from(datagram.len())
        .map_err(|_| Error::Other(format!("datagram of {} bytes", datagram.len())))?;
    let mut out = Vec::with_capacity(2 + datagram.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(datagram);
    Ok(out)
}

/// Splits a tunnel's byte stream back into datagrams (frames may arrive in any pieces).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Adds bytes and returns every datagram now complete. A frame longer than
    /// [`MAX_DATAGRAM`] is an error: the other side does not speak this framing.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        while let [hi, lo, ..] = self.buf[at..] {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len > MAX_DATAGRAM {
                return Err(Error::Other(format!(
                    "the guest agent sent a {len}-byte UDP frame (at most {MAX_DATAGRAM})"
                )));
            }
            if self.buf.len() - at - 2 < len {
                break;
            }
            out.push(self.buf[at + 2..at + 2 + len].to_vec());
            at += 2 + len;
        }
        self.buf.drain(..at);
        Ok(out)
    }

    /// Bytes of an incomplete frame held back.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The bounds of one UDP listener (the defaults are the constants above; tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpLimits {
    pub idle: Duration,
    pub max_peers: usize,
    pub queue: usize,
}

impl Default for UdpLimits {
    fn default() -> Self {
        UdpLimits {
            idle: IDLE_TIMEOUT,
            max_peers: MAX_PEERS,
            queue: PEER_QUEUE,
        }
    }
}

fn log(msg: impl std::fmt::Display) {
    crate::serve::log(msg);
}

/// Binds `p` (a UDP port) on the host and forwards it to the guest's `p.port`. Aborting the
/// returned task closes the socket and every tunnel.
pub async fn open_udp_forward(
    p: Published,
    agent: Endpoint,
    limits: UdpLimits,
) -> std::io::Result<JoinHandle<()>> {
    let sock = Arc::new(UdpSocket::bind(SocketAddr::new(p.host_ip, p.port)).await?);
    Ok(tokio::spawn(async move {
        // Owned by this task: when it is aborted (the container stopped) the tunnels go too.
        let mut tunnels = JoinSet::new();
        let mut peers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut buf = vec![0u8; 64 * 1024];
        let (mut too_big, mut too_many) = (0u64, 0u64);
        loop {
            let (n, peer) = match sock.recv_from(&mut buf).await {
                Ok(v) => v,
                Err(e) => {
                    log(format!("{p}: receiving: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            while tunnels.try_join_next().is_some() {}
            if n > MAX_DATAGRAM {
                too_big += 1;
                if too_big == 1 || too_big.is_multiple_of(1000) {
                    log(format!(
                        "{p}: dropped a {n}-byte datagram from {peer} (at most {MAX_DATAGRAM}; {too_big} so far)"
                    ));
                }
                continue;
            }
            let mut datagram = buf[..n].to_vec();
            if let Some(tx) = peers.get(&peer) {
                match tx.try_send(datagram) {
                    // Full: the tunnel is behind; UDP may lose this one.
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                    // The tunnel closed (idle, or the guest hung up): open a new one.
                    Err(mpsc::error::TrySendError::Closed(d)) => {
                        peers.remove(&peer);
                        datagram = d;
                    }
                }
            }
            peers.retain(|_, tx| !tx.is_closed());
            if peers.len() >= limits.max_peers {
                too_many += 1;
                if too_many == 1 || too_many.is_multiple_of(1000) {
                    log(format!(
                        "{p}: dropped a datagram from {peer}: {} peers already have tunnels \
                         (idle ones close after {:?}; {too_many} dropped so far)",
                        peers.len(),
                        limits.idle
                    ));
                }
                continue;
            }
            let (tx, rx) = mpsc::channel(limits.queue.max(1));
            let _ = tx.try_send(datagram);
            peers.insert(peer, tx);
            tunnels.spawn(tunnel(
                p,
                peer,
                agent.clone(),
                Arc::clone(&sock),
                rx,
                limits.idle,
            ));
        }
    }))
}

/// One host peer's tunnel: datagrams from `rx` go to the guest, the guest's replies go to
/// `peer` from the listener's socket. Ends when idle, when the guest closes, or when the
/// listener drops `rx`'s sender.
async fn tunnel(
    p: Published,
    peer: SocketAddr,
    agent: Endpoint,
    sock: Arc<UdpSocket>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    idle: Duration,
) {
    let stream = match tokio_client::udp(&agent, p.port).await {
        Ok(s) => s,
        Err(e) => {
            log(format!("{p}: a tunnel for {peer}: {e}"));
            return;
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut dec = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::sleep(idle);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            d = rx.recv() => {
                let Some(d) = d else { return };
                let frame = match encode_frame(&d) {
                    Ok(f) => f,
                    Err(_) => continue,
                };
                if let Err(e) = wr.write_all(&frame).await {
                    log(format!("{p}: the tunnel for {peer}: {e}"));
                    return;
                }
            }
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        log(format!("{p}: the tunnel for {peer}: {e}"));
                        return;
                    }
                };
                let datagrams = match dec.feed(&buf[..n]) {
                    Ok(d) => d,
                    Err(e) => {
                        log(format!("{p}: the tunnel for {peer}: {e}"));
                        return;
                    }
                };
                for d in datagrams {
                    if let Err(e) = sock.send_to(&d, peer).await {
                        log(format!("{p}: replying to {peer}: {e}"));
                    }
                }
            }
            () = &mut deadline => return,
        }
        deadline.as_mut().reset(tokio::time::Instant::now() + idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_any_pieces() {
        let datagrams: Vec<Vec<u8>> = vec![
            b"hello".to_vec(),
            Vec::new(),
            vec![7u8; 300],
            vec![0xab; MAX_DATAGRAM],
        ];
        let mut stream = Vec::new();
        for d in &datagrams {
            stream.extend(encode_frame(d).unwrap());
        }
        assert_eq!(&stream[..7], b"\x00\x05hello");
        assert_eq!(&stream[7..9], b"\x00\x00");
        assert_eq!(&stream[9..11], &300u16.to_be_bytes());
        // Fed a byte at a time, in 1000-byte pieces, or whole: the same datagrams.
        for piece in [1, 3, 1000, stream.len()] {
            let mut dec = FrameDecoder::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(piece) {
                got.extend(dec.feed(chunk).unwrap());
            }
            assert_eq!(got, datagrams, "pieces of {piece}");
            assert_eq!(dec.pending(), 0);
        }
        // A partial frame is held back until the rest arrives.
        let mut dec = FrameDecoder::default();
        assert!(dec.feed(b"\x00\x03ab").unwrap().is_empty());
        assert_eq!(dec.pending(), 4);
        assert_eq!(dec.feed(b"c\x00").unwrap(), [b"abc".to_vec()]);
        assert_eq!(dec.pending(), 1);
    }

    #[test]
    fn oversized_datagrams_and_frames_are_refused() {
        let e = encode_frame(&vec![0u8; MAX_DATAGRAM + 1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("65508-byte datagram") && e.contains("65507"),
            "{e}"
        );
        let mut dec = FrameDecoder::default();
        let e = dec.feed(&[0xff, 0xff, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("65535-byte UDP frame"), "{e}");
    }
}
