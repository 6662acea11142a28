//! Many byte streams over one byte channel: the VM's control channel, a virtio-serial port that
//! qemu connects to a unix socket on the host (`<state dir>/control.sock`, 0600 in a 0700
//! directory). The host opens streams; the guest answers each one with the agent's line
//! protocol ([`crate::request`]). Both ends run this same code: std only, a thread per stream
//! direction, so it builds into the guest's static init and into the host's server alike.
//!
//! Frames: a 9-byte header — kind (1 byte), stream id (4 bytes, big-endian), payload length
//! (4 bytes, big-endian) — then the payload.
//!
//! | kind | payload | meaning |
//! |------|---------|---------|
//! | `HELLO` (0) | [`MAGIC`] + an 8-byte session nonce | start of a session; the guest answers with the same nonce |
//! | `OPEN` (1) | — | host → guest: a new stream with this id |
//! | `DATA` (2) | ≤ [`MAX_DATA`] bytes | bytes of the stream |
//! | `EOF` (3) | — | the sender will send no more bytes on the stream (a half close) |
//! | `RST` (4) | — | the stream is gone (its socket failed, or the other end did not know it) |
//! | `WINDOW` (5) | 4 bytes, big-endian | the receiver wrote that many more bytes out: the sender may send them |
//!
//! Flow control is per stream: a sender has [`WINDOW`] bytes of credit to start with and
//! gets credit back as the receiver delivers bytes to its local socket, so one slow reader
//! (a `docker logs -f` nobody reads) never stalls the other streams, and no side ever holds
//! more than a window per stream in memory. Nothing but one sender thread writes to the channel
//! and the channel's reader never blocks on a local socket, so neither end can wait on the
//! other in a cycle.
//!
//! Sessions: the channel outlives the processes at its ends (the host's server restarts while
//! the guest runs; a write cut off midway leaves half a frame in the channel). Each end starts
//! a session by discarding bytes until a `HELLO` frame (its header and magic are searched for,
//! byte by byte), and after any malformed frame. The host sends `HELLO` with a fresh nonce
//! (again each second until answered; qemu holds the bytes while the guest has not opened the
//! port yet); the guest, on a nonce it has not seen, drops every stream of the old session and
//! answers; the host opens streams once the answer with its nonce arrives.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The magic that opens a `HELLO` payload.
pub const MAGIC: [u8; 8] = *b"BERTHMX1";
/// Largest `DATA` payload sent.
pub const MAX_DATA: usize = 32 * 1024;
/// Largest payload accepted (anything longer is a malformed frame).
const MAX_PAYLOAD: u32 = 64 * 1024;
/// Per-stream credit, each way.
pub const WINDOW: u32 = 256 * 1024;
const HEADER: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Hello = 0,
    Open = 1,
    Data = 2,
    Eof = 3,
    Rst = 4,
    Window = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Hello,
            1 => Kind::Open,
            2 => Kind::Data,
            3 => Kind::Eof,
            4 => Kind::Rst,
            5 => Kind::Window,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub id: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: Kind, id: u32, payload: Vec<u8>) -> Frame {
        Frame { kind, id, payload }
    }

    pub fn hello(nonce: u64) -> Frame {
        let mut p = MAGIC.to_vec();
        p.extend_from_slice(&nonce.to_be_bytes());
        Frame::new(Kind::Hello, 0, p)
    }

    pub fn window(id: u32, n: u32) -> Frame {
        Frame::new(Kind::Window, id, n.to_be_bytes().to_vec())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.id.to_be_bytes());
        // Payloads are built here, never longer than MAX_PAYLOAD.
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// The nonce of a well-formed `HELLO`.
    pub fn hello_nonce(&self) -> Option<u64> {
        if self.kind != Kind::Hello || self.payload.len() != 16 || self.payload[..8] != MAGIC {
            return None;
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&self.payload[8..]);
        Some(u64::from_be_bytes(n))
    }

    fn window_credit(&self) -> Option<u32> {
        let b: [u8; 4] = self.payload.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }
}

/// The bytes every `HELLO` frame starts with: what a resynchronising reader looks for.
fn hello_prefix() -> [u8; HEADER + 8] {
    let mut p = [0u8; HEADER + 8];
    p[8] = 16;
    p[HEADER..].copy_from_slice(&MAGIC);
    p
}

/// Splits the channel's bytes into frames; between sessions and after a malformed frame it
/// discards bytes up to the next `HELLO`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    synced: bool,
    /// Bytes discarded while looking for a `HELLO` (for the log).
    pub skipped: u64,
}

impl Decoder {
    /// Forget any partial frame and look for the next `HELLO`.
    pub fn resync(&mut self) {
        self.buf.clear();
        self.synced = false;
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            if !self.synced {
                let pat = hello_prefix();
                match self.buf[at..].windows(pat.len()).position(|w| w == pat) {
                    Some(i) => {
                        self.skipped += i as u64;
                        at += i;
                        self.synced = true;
                    }
                    None => {
                        // Keep a tail that may be the start of the pattern.
                        let keep = (pat.len() - 1).min(self.buf.len() - at);
                        self.skipped += (self.buf.len() - at - keep) as u64;
                        at = self.buf.len() - keep;
                        break;
                    }
                }
            }
            let rest = &self.buf[at..];
            if rest.len() < HEADER {
                break;
            }
            let kind = Kind::from_u8(rest[0]);
            let id = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
            let len = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
            let Some(kind) = kind.filter(|_| len <= MAX_PAYLOAD) else {
                // Malformed: skip this byte and look for the next HELLO.
                self.synced = false;
                self.skipped += 1;
                at += 1;
                continue;
            };
            let end = HEADER + len as usize;
            if rest.len() < end {
                break;
            }
            out.push(Frame::new(kind, id, rest[HEADER..end].to_vec()));
            at += end;
        }
        self.buf.drain(..at);
        out
    }
}

/// Which end of the channel this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens streams (the host's server).
    Opener,
    /// Accepts them (the guest's init), handing each to the accept callback.
    Acceptor,
}

type AcceptFn = Box<dyn Fn(UnixStream) + Send + Sync>;
type LogFn = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct StreamState {
    /// Bytes we may still send.
    credit: u32,
    /// Received bytes not yet written to the local socket.
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    peer_eof: bool,
    dead: bool,
    /// The two pump threads still running.
    pumps: u8,
}

struct Stream {
    id: u32,
    local: UnixStream,
    st: Mutex<StreamState>,
    cond: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct Out {
    frames: VecDeque<Frame>,
    /// The channel's writer failed or the channel closed: nothing more goes out.
    closed: bool,
}

#[derive(Default)]
struct Session {
    /// Opener: our nonce. Acceptor: the nonce of the session being served.
    nonce: Option<u64>,
    /// Opener: the acceptor answered our nonce.
    ready: bool,
    /// The channel ended (opener only: the acceptor waits for the next host).
    ended: bool,
}

struct Inner {
    role: Role,
    accept: Option<AcceptFn>,
    log: LogFn,
    out: Mutex<Out>,
    out_cond: Condvar,
    streams: Mutex<HashMap<u32, Arc<Stream>>>,
    session: Mutex<Session>,
    session_cond: Condvar,
    next_id: AtomicU32,
}

/// One end of a multiplexed channel. Cloning shares it.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("role", &self.inner.role)
            .finish()
    }
}

fn nonce() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

impl Mux {
    /// The host's end over a connected channel (`reader` and `writer` are its two halves).
    /// It says `HELLO` at once; [`Mux::open`] works once the guest answered.
    pub fn opener<R, W>(reader: R, writer: W, log: impl Fn(&str) + Send + Sync + 'static) -> Mux
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let mux = Mux::new(Role::Opener, None, Box::new(log));
        let n = nonce();
        lock(&mux.inner.session).nonce = Some(n);
        mux.spawn_writer(writer);
        mux.spawn_reader(reader, false);
        // HELLO now and each second until answered (checked under the queue's lock, so no
        // HELLO can follow an OPEN of this session).
        let inner = Arc::clone(&mux.inner);
        thread::spawn(move || loop {
            {
                let s = lock(&inner.session);
                if s.ready || s.ended {
                    return;
                }
            }
            {
                let mut out = lock(&inner.out);
                if out.closed {
                    return;
                }
                if !lock(&inner.session).ready {
                    out.frames.push_back(Frame::hello(n));
                    inner.out_cond.notify_all();
                }
            }
            let s = lock(&inner.session);
            let _ = inner
                .session_cond
                .wait_timeout_while(s, Duration::from_secs(1), |s| !s.ready && !s.ended);
        });
        mux
    }

    /// The guest's end: `channel` opens (and reopens) the port. Each stream the host opens is
    /// handed to `accept` on a thread of its own. Runs until the process ends; when the host
    /// goes away, the streams of its session are dropped and the next host is waited for.
    pub fn acceptor<C, R, W>(
        mut channel: C,
        accept: impl Fn(UnixStream) + Send + Sync + 'static,
        log: impl Fn(&str) + Send + Sync + 'static,
    ) -> Mux
    where
        C: FnMut() -> io::Result<(R, W)> + Send + 'static,
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let mux = Mux::new(Role::Acceptor, Some(Box::new(accept)), Box::new(log));
        let m = mux.clone();
        thread::spawn(move || {
            let mut said = false;
            loop {
                match channel() {
                    Ok((r, w)) => {
                        said = false;
                        {
                            let mut out = lock(&m.inner.out);
                            out.closed = false;
                            out.frames.clear();
                        }
                        let writer = m.spawn_writer(w);
                        m.read_loop(r, true);
                        m.reset_session();
                        {
                            let mut out = lock(&m.inner.out);
                            out.closed = true;
                            out.frames.clear();
                        }
                        m.inner.out_cond.notify_all();
                        let _ = writer.join();
                    }
                    Err(e) => {
                        if !said {
                            (m.inner.log)(&format!("control channel: {e} (retrying)"));
                            said = true;
                        }
                        thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        });
        mux
    }

    fn new(role: Role, accept: Option<AcceptFn>, log: LogFn) -> Mux {
        Mux {
            inner: Arc::new(Inner {
                role,
                accept,
                log,
                out: Mutex::new(Out::default()),
                out_cond: Condvar::new(),
                streams: Mutex::new(HashMap::new()),
                session: Mutex::new(Session::default()),
                session_cond: Condvar::new(),
                next_id: AtomicU32::new(1),
            }),
        }
    }

    /// Waits until the guest has answered (`false`: not within `timeout`, or the channel ended).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let s = lock(&self.inner.session);
        let (s, _) = self
            .inner
            .session_cond
            .wait_timeout_while(s, timeout, |s| !s.ready && !s.ended)
            .unwrap_or_else(|p| p.into_inner());
        s.ready && !s.ended
    }

    /// The channel has ended (opener: the guest or qemu went away).
    pub fn is_ended(&self) -> bool {
        lock(&self.inner.session).ended
    }

    /// Blocks until the channel ends.
    pub fn wait_ended(&self) {
        let mut s = lock(&self.inner.session);
        while !s.ended {
            s = self
                .inner
                .session_cond
                .wait(s)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// How many streams are open.
    pub fn streams(&self) -> usize {
        lock(&self.inner.streams).len()
    }

    /// A new stream to the other end: the returned socket is its local end (read, write,
    /// half-close with `shutdown(Write)`). Waits up to `ready_timeout` for the session.
    pub fn open(&self, ready_timeout: Duration) -> io::Result<UnixStream> {
        if self.inner.role != Role::Opener {
            return Err(io::Error::other("only the host opens streams"));
        }
        if !self.wait_ready(ready_timeout) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                if self.is_ended() {
                    "the VM's control channel closed (is the VM running?)"
                } else {
                    "the VM's control channel did not answer (still booting?)"
                },
            ));
        }
        let (ours, theirs) = UnixStream::pair()?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut out = lock(&self.inner.out);
            if out.closed {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the VM's control channel closed",
                ));
            }
            let s = self.add_stream(id, theirs)?;
            out.frames.push_back(Frame::new(Kind::Open, id, Vec::new()));
            self.inner.out_cond.notify_all();
            drop(out);
            self.spawn_pumps(s);
        }
        Ok(ours)
    }

    fn add_stream(&self, id: u32, local: UnixStream) -> io::Result<Arc<Stream>> {
        let s = Arc::new(Stream {
            id,
            local,
            st: Mutex::new(StreamState {
                credit: WINDOW,
                pumps: 2,
                ..StreamState::default()
            }),
            cond: Condvar::new(),
        });
        lock(&self.inner.streams).insert(id, Arc::clone(&s));
        Ok(s)
    }

    fn send(&self, f: Frame) {
        let mut out = lock(&self.inner.out);
        if out.closed {
            return;
        }
        out.frames.push_back(f);
        self.inner.out_cond.notify_all();
    }

    /// Marks a stream dead and wakes its pumps (they then exit).
    fn kill(&self, s: &Stream) {
        {
            let mut st = lock(&s.st);
            st.dead = true;
            st.queue.clear();
            st.queued = 0;
        }
        s.cond.notify_all();
        let _ = s.local.shutdown(Shutdown::Both);
    }

    /// Drops every stream (a new session, or the channel ended).
    fn reset_session(&self) {
        let all: Vec<Arc<Stream>> = lock(&self.inner.streams).drain().map(|(_, s)| s).collect();
        for s in all {
            self.kill(&s);
        }
    }

    fn spawn_writer<W: Write + Send + 'static>(&self, mut w: W) -> thread::JoinHandle<()> {
        let m = self.clone();
        thread::spawn(move || loop {
            let f = {
                let mut out = lock(&m.inner.out);
                loop {
                    if out.closed {
                        return;
                    }
                    if let Some(f) = out.frames.pop_front() {
                        break f;
                    }
                    out = m
                        .inner
                        .out_cond
                        .wait(out)
                        .unwrap_or_else(|p| p.into_inner());
                }
            };
            if let Err(e) = w.write_all(&f.encode()).and_then(|_| w.flush()) {
                (m.inner.log)(&format!("control channel: writing: {e}"));
                lock(&m.inner.out).closed = true;
                if m.inner.role == Role::Opener {
                    m.end();
                }
                return;
            }
        })
    }

    fn spawn_reader<R: Read + Send + 'static>(&self, r: R, acceptor: bool) {
        let m = self.clone();
        thread::spawn(move || {
            m.read_loop(r, acceptor);
            m.end();
        });
    }

    /// The opener's channel ended: everything stops.
    fn end(&self) {
        {
            let mut out = lock(&self.inner.out);
            out.closed = true;
            out.frames.clear();
        }
        self.inner.out_cond.notify_all();
        self.reset_session();
        lock(&self.inner.session).ended = true;
        self.inner.session_cond.notify_all();
    }

    fn read_loop<R: Read>(&self, mut r: R, acceptor: bool) {
        let mut dec = Decoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut skipped = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    (self.inner.log)(&format!("control channel: reading: {e}"));
                    return;
                }
            };
            for f in dec.feed(&buf[..n]) {
                self.handle(f, acceptor);
            }
            if dec.skipped != skipped {
                skipped = dec.skipped;
                // Expected once per session when a stale partial frame precedes HELLO.
                (self.inner.log)(&format!(
                    "control channel: skipped {skipped} bytes looking for a session start"
                ));
            }
        }
    }

    fn stream(&self, id: u32) -> Option<Arc<Stream>> {
        lock(&self.inner.streams).get(&id).cloned()
    }

    fn handle(&self, f: Frame, acceptor: bool) {
        match f.kind {
            Kind::Hello => {
                let Some(n) = f.hello_nonce() else { return };
                if acceptor {
                    let fresh = lock(&self.inner.session).nonce != Some(n);
                    if fresh {
                        self.reset_session();
                        lock(&self.inner.session).nonce = Some(n);
                    }
                    self.send(Frame::hello(n));
                } else {
                    let mut s = lock(&self.inner.session);
                    if s.nonce == Some(n) && !s.ready {
                        s.ready = true;
                        self.inner.session_cond.notify_all();
                    }
                }
            }
            Kind::Open => {
                if !acceptor || self.stream(f.id).is_some() {
                    self.send(Frame::new(Kind::Rst, f.id, Vec::new()));
                    return;
                }
                let (ours, theirs) = match UnixStream::pair() {
                    Ok(p) => p,
                    Err(e) => {
                        (self.inner.log)(&format!("control channel: socketpair: {e}"));
                        self.send(Frame::new(Kind::Rst, f.id, Vec::new()));
                        return;
                    }
                };
                let s = match self.add_stream(f.id, theirs) {
                    Ok(s) => s,
                    Err(_) => return,
                };
                self.spawn_pumps(s);
                let m = self.clone();
                thread::spawn(move || {
                    if let Some(accept) = &m.inner.accept {
                        accept(ours);
                    }
                });
            }
            Kind::Data => {
                let Some(s) = self.stream(f.id) else {
                    return;
                };
                let mut st = lock(&s.st);
                if st.dead || st.peer_eof {
                    return;
                }
                st.queued += f.payload.len();
                if st.queued > WINDOW as usize {
                    drop(st);
                    (self.inner.log)(&format!(
                        "control channel: stream {} overran its window",
                        f.id
                    ));
                    self.send(Frame::new(Kind::Rst, f.id, Vec::new()));
                    self.kill(&s);
                    return;
                }
                st.queue.push_back(f.payload);
                drop(st);
                s.cond.notify_all();
            }
            Kind::Eof => {
                if let Some(s) = self.stream(f.id) {
                    lock(&s.st).peer_eof = true;
                    s.cond.notify_all();
                }
            }
            Kind::Rst => {
                if let Some(s) = lock(&self.inner.streams).remove(&f.id) {
                    self.kill(&s);
                }
            }
            Kind::Window => {
                let (Some(s), Some(n)) = (self.stream(f.id), f.window_credit()) else {
                    return;
                };
                let mut st = lock(&s.st);
                st.credit = st.credit.saturating_add(n);
                drop(st);
                s.cond.notify_all();
            }
        }
    }

    fn spawn_pumps(&self, s: Arc<Stream>) {
        let (m, s2) = (self.clone(), Arc::clone(&s));
        thread::spawn(move || {
            m.pump_out(&s2);
            m.pump_done(&s2);
        });
        let m = self.clone();
        thread::spawn(move || {
            m.pump_in(&s);
            m.pump_done(&s);
        });
    }

    fn pump_done(&self, s: &Arc<Stream>) {
        let last = {
            let mut st = lock(&s.st);
            st.pumps -= 1;
            st.pumps == 0
        };
        if last {
            let mut streams = lock(&self.inner.streams);
            if streams.get(&s.id).is_some_and(|x| Arc::ptr_eq(x, s)) {
                streams.remove(&s.id);
            }
        }
    }

    /// Local socket → channel, within the credit.
    fn pump_out(&self, s: &Stream) {
        let mut buf = vec![0u8; MAX_DATA];
        let mut local = &s.local;
        loop {
            let room = {
                let mut st = lock(&s.st);
                while st.credit == 0 && !st.dead {
                    st = s.cond.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.dead {
                    return;
                }
                (st.credit as usize).min(MAX_DATA)
            };
            match local.read(&mut buf[..room]) {
                Ok(0) => {
                    if !lock(&s.st).dead {
                        self.send(Frame::new(Kind::Eof, s.id, Vec::new()));
                    }
                    return;
                }
                Ok(n) => {
                    let mut st = lock(&s.st);
                    if st.dead {
                        return;
                    }
                    // n ≤ room ≤ credit
                    st.credit -= n as u32;
                    drop(st);
                    self.send(Frame::new(Kind::Data, s.id, buf[..n].to_vec()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.abort(s);
                    return;
                }
            }
        }
    }

    /// Channel → local socket; credit goes back as bytes are written.
    fn pump_in(&self, s: &Stream) {
        let mut local = &s.local;
        loop {
            let chunk = {
                let mut st = lock(&s.st);
                loop {
                    if st.dead {
                        return;
                    }
                    if let Some(c) = st.queue.pop_front() {
                        break c;
                    }
                    if st.peer_eof {
                        drop(st);
                        let _ = s.local.shutdown(Shutdown::Write);
                        return;
                    }
                    st = s.cond.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            };
            if local.write_all(&chunk).is_err() {
                self.abort(s);
                return;
            }
            let mut st = lock(&s.st);
            st.queued = st.queued.saturating_sub(chunk.len());
            let dead = st.dead;
            drop(st);
            if !dead {
                // chunk.len() ≤ MAX_PAYLOAD
                self.send(Frame::window(s.id, chunk.len() as u32));
            }
        }
    }

    /// The local socket failed: the other end hears RST.
    fn abort(&self, s: &Stream) {
        let known = lock(&self.inner.streams).remove(&s.id).is_some();
        if known {
            self.send(Frame::new(Kind::Rst, s.id, Vec::new()));
        }
        self.kill(s);
    }
}

/// How long an acceptor waits between attempts when the channel has no host.
pub const REOPEN_PAUSE: Duration = Duration::from_millis(100);

/// Reads from a virtio-serial port, turning "no host connected" (a read of 0 bytes while
/// nothing is connected) into an end of this channel after the bytes already read.
pub struct PortReader<R> {
    inner: R,
    started: Instant,
}

impl<R: Read> PortReader<R> {
    pub fn new(inner: R) -> Self {
        PortReader {
            inner,
            started: Instant::now(),
        }
    }
}

impl<R: Read> Read for PortReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.started.elapsed() < REOPEN_PAUSE {
            // A port with no host reads 0 at once: pause so reopening does not spin.
            thread::sleep(REOPEN_PAUSE);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::BufRead;
    use std::sync::mpsc;

    #[test]
    fn frames_round_trip_and_resync() {
        let mut bytes = vec![7u8, 1, 2, 3]; // garbage before the session
        bytes.extend(Frame::hello(42).encode());
        bytes.extend(Frame::new(Kind::Open, 5, vec![]).encode());
        bytes.extend(Frame::new(Kind::Data, 5, b"hello".to_vec()).encode());
        bytes.extend(Frame::window(5, 1000).encode());
        let mut d = Decoder::default();
        let mut got = Vec::new();
        // Byte by byte: every split point must work.
        for b in &bytes {
            got.extend(d.feed(std::slice::from_ref(b)));
        }
        assert_eq!(d.skipped, 4);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].hello_nonce(), Some(42));
        assert_eq!(got[1], Frame::new(Kind::Open, 5, vec![]));
        assert_eq!(got[2].payload, b"hello");
        assert_eq!(got[3].window_credit(), Some(1000));
        // A malformed frame (unknown kind) drops everything up to the next HELLO.
        let mut bad = vec![9u8, 0, 0, 0, 1, 0, 0, 0, 0];
        bad.extend(Frame::new(Kind::Data, 5, b"lost".to_vec()).encode());
        bad.extend(Frame::hello(43).encode());
        bad.extend(Frame::new(Kind::Eof, 5, vec![]).encode());
        let got = d.feed(&bad);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].hello_nonce(), Some(43));
        assert_eq!(got[1].kind, Kind::Eof);
        // An oversized length is malformed too.
        let mut huge = vec![2u8, 0, 0, 0, 1];
        huge.extend((MAX_PAYLOAD + 1).to_be_bytes());
        assert!(d.feed(&huge).is_empty());
        assert!(d
            .feed(&Frame::new(Kind::Eof, 1, vec![]).encode())
            .is_empty());
        assert_eq!(d.feed(&Frame::hello(1).encode()).len(), 1);
    }

    /// A guest whose streams echo after a one-line greeting, over a socketpair "channel".
    fn pair() -> (Mux, Arc<Mutex<Vec<String>>>) {
        let (host_end, guest_end) = UnixStream::pair().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut once = Some(guest_end);
        let l2 = Arc::clone(&logs);
        Mux::acceptor(
            move || match once.take() {
                Some(g) => Ok((g.try_clone().unwrap(), g)),
                None => {
                    thread::sleep(Duration::from_secs(3600));
                    Err(io::Error::other("gone"))
                }
            },
            |s| {
                let mut r = io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut w = s;
                w.write_all(format!("OK {}", line).as_bytes()).unwrap();
                let _ = io::copy(&mut r, &mut w);
                let _ = w.shutdown(Shutdown::Write);
            },
            move |m| l2.lock().unwrap().push(m.to_string()),
        );
        let l3 = Arc::clone(&logs);
        let host = Mux::opener(host_end.try_clone().unwrap(), host_end, move |m| {
            l3.lock().unwrap().push(m.to_string())
        });
        (host, logs)
    }

    #[test]
    fn streams_are_independent_and_flow_controlled() {
        let (host, _logs) = pair();
        assert!(host.wait_ready(Duration::from_secs(5)));
        // A stream nobody reads: the guest echoes into it until the window fills.
        let mut stuck = host.open(Duration::from_secs(5)).unwrap();
        stuck.write_all(b"STUCK\n").unwrap();
        let big = vec![0xabu8; 32 * WINDOW as usize];
        let mut w = stuck.try_clone().unwrap();
        let writer = thread::spawn(move || {
            let _ = w.write_all(&big);
        });
        // Meanwhile many other streams carry a megabyte each way, concurrently.
        let (tx, rx) = mpsc::channel();
        for i in 0..8u8 {
            let mut s = host.open(Duration::from_secs(5)).unwrap();
            let tx = tx.clone();
            thread::spawn(move || {
                s.write_all(format!("S{i}\n").as_bytes()).unwrap();
                let payload: Vec<u8> = (0..1_000_000u32).map(|x| (x as u8) ^ i).collect();
                let mut w = s.try_clone().unwrap();
                let p2 = payload.clone();
                let t = thread::spawn(move || {
                    w.write_all(&p2).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                t.join().unwrap();
                let greeting = format!("OK S{i}\n");
                assert_eq!(&back[..greeting.len()], greeting.as_bytes());
                assert!(
                    back[greeting.len()..] == payload[..],
                    "stream {i} corrupted"
                );
                tx.send(i).unwrap();
            });
        }
        drop(tx);
        let mut done: Vec<u8> = rx.iter().collect();
        done.sort();
        assert_eq!(done, (0..8).collect::<Vec<_>>());
        // The stuck stream still holds a bounded amount and has not finished.
        assert!(!writer.is_finished());
        // Reading it now drains everything.
        stuck
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 65536];
        let want = "OK STUCK\n".len() + 32 * WINDOW as usize;
        while got < want {
            let n = stuck.read(&mut buf).unwrap();
            assert!(n > 0);
            got += n;
        }
        writer.join().unwrap();
        drop(stuck);
        let t = Instant::now();
        while host.streams() > 0 && t.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            host.streams(),
            0,
            "streams are removed once closed both ways"
        );
    }

    #[test]
    fn a_host_that_goes_away_ends_its_streams_and_a_new_host_gets_a_fresh_session() {
        // The guest's channel: first one host connection, then another.
        let (h1, g1) = UnixStream::pair().unwrap();
        let (h2, g2) = UnixStream::pair().unwrap();
        let mut conns = vec![g2, g1];
        let accepted = Arc::new(AtomicU32::new(0));
        let a2 = Arc::clone(&accepted);
        let guest = Mux::acceptor(
            move || match conns.pop() {
                Some(g) => Ok((g.try_clone().unwrap(), g)),
                None => {
                    thread::sleep(Duration::from_secs(3600));
                    Err(io::Error::other("gone"))
                }
            },
            move |mut s| {
                a2.fetch_add(1, Ordering::SeqCst);
                // Hold the stream open until the other side goes.
                let mut b = [0u8; 1];
                while s.read(&mut b).unwrap_or(0) > 0 {}
            },
            |_| {},
        );
        // The old host leaves a half-written frame behind.
        let host1 = Mux::opener(h1.try_clone().unwrap(), h1.try_clone().unwrap(), |_| {});
        let mut s1 = host1.open(Duration::from_secs(5)).unwrap();
        s1.write_all(b"x").unwrap();
        let t = Instant::now();
        while guest.streams() == 0 && t.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(guest.streams(), 1);
        (&h1).write_all(&[2u8, 0, 0]).unwrap();
        h1.shutdown(Shutdown::Both).unwrap();
        // The host's stream ends; the guest drops it.
        s1.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(s1.read(&mut b).unwrap_or(0), 0);
        let t = Instant::now();
        while guest.streams() > 0 && t.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(guest.streams(), 0);
        // A second host gets a working session.
        let host2 = Mux::opener(h2.try_clone().unwrap(), h2, |_| {});
        let mut s2 = host2.open(Duration::from_secs(5)).unwrap();
        s2.write_all(b"y").unwrap();
        let t = Instant::now();
        while accepted.load(Ordering::SeqCst) < 2 && t.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert!(host1.is_ended());
        assert!(!host2.is_ended());
    }

    #[test]
    fn open_fails_clearly_when_nobody_answers() {
        let (h, g) = UnixStream::pair().unwrap();
        let host = Mux::opener(h.try_clone().unwrap(), h, |_| {});
        let e = host.open(Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("did not answer"), "{e}");
        drop(g);
        host.wait_ended();
        let e = host.open(Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
    }
}
