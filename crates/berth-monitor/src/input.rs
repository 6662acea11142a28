//! The container's stdin (`--stdin`): clients connect to `<state-dir>/attach.sock` and what
//! they write goes to the container's stdin (a pipe, or the pty master with `--tty`); and the
//! control FIFO `<state-dir>/ctl`, which takes `resize <rows> <cols>\n` lines.
//!
//! Both are driven by the monitor's poll loop: [`Input::pollfds`] adds their fds, and
//! [`Input::handle`] acts on the events. The data path uses one fixed buffer: while it holds
//! bytes the container has not taken yet, clients are not read (back-pressure instead of
//! growing memory).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, String>;

const BUF: usize = 16 * 1024;

/// A unix-socket path for `path`, short enough for `sun_path` (108 bytes): long paths go
/// through `/proc/self/fd/<dir fd>/<name>`; the returned fd must stay open while it is used.
pub fn short_path(path: &Path) -> Result<(PathBuf, Option<OwnedFd>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("{}: not a file path", path.display()));
    };
    let d = File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fd = OwnedFd::from(d);
    let p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name);
    Ok((p, Some(fd)))
}

fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(format!(
                "fcntl O_NONBLOCK: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// A close-on-exec duplicate of `fd`.
pub fn dup(fd: RawFd) -> Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own; the new fd is owned by the returned File.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(format!("dup: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: n was just created.
    Ok(unsafe { File::from_raw_fd(n) })
}

/// The attach socket and the control FIFO.
pub struct Input {
    sock: PathBuf,
    ctl_path: PathBuf,
    listener: Option<UnixListener>,
    clients: Vec<UnixStream>,
    /// The container's stdin: the write end of its stdin pipe, or a dup of the pty master.
    target: Option<File>,
    once: bool,
    /// stdin-once: the first client has gone; close `target` once `buf` is flushed.
    closing: bool,
    buf: Vec<u8>,
    off: usize,
    len: usize,
    ctl: Option<File>,
    line: [u8; 64],
    line_len: usize,
    /// The pty master (a dup) for TIOCSWINSZ.
    master: Option<File>,
}

/// What [`Input::pollfds`] added, to find the events again in [`Input::handle`].
pub struct Slots {
    start: usize,
    listener: bool,
    ctl: bool,
    target: bool,
    clients: usize,
}

impl Input {
    /// Creates the control FIFO and, with `stdin`, the attach socket (mode 0600). Call
    /// before the container exists so clients can connect as soon as it is reported.
    pub fn new(state_dir: &Path, stdin: bool, once: bool) -> Result<Input> {
        let ctl_path = state_dir.join("ctl");
        let _ = fs::remove_file(&ctl_path);
        let c = std::ffi::CString::new(ctl_path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: NUL in path", ctl_path.display()))?;
        // SAFETY: c is a valid C string.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(format!(
                "{}: mkfifo: {}",
                ctl_path.display(),
                std::io::Error::last_os_error()
            ));
        }
        // Read-write so the FIFO never reports EOF when a writer goes away.
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&ctl_path)
            .map_err(|e| format!("{}: {e}", ctl_path.display()))?;
        let sock = state_dir.join("attach.sock");
        let mut listener = None;
        if stdin {
            let _ = fs::remove_file(&sock);
            let (p, _dir) = short_path(&sock)?;
            // SAFETY: umask is process-wide; the monitor is single-threaded.
            let old = unsafe { libc::umask(0o177) };
            let l = UnixListener::bind(&p);
            // SAFETY: restoring the previous mask.
            unsafe { libc::umask(old) };
            let l = l.map_err(|e| format!("{}: {e}", sock.display()))?;
            l.set_nonblocking(true)
                .map_err(|e| format!("{}: {e}", sock.display()))?;
            listener = Some(l);
        }
        Ok(Input {
            sock,
            ctl_path,
            listener,
            clients: Vec::new(),
            target: None,
            once,
            closing: false,
            buf: if stdin { vec![0; BUF] } else { Vec::new() },
            off: 0,
            len: 0,
            ctl: Some(ctl),
            line: [0; 64],
            line_len: 0,
            master: None,
        })
    }

    /// The pipe's write end (or a dup of the pty master) that feeds the container's stdin.
    pub fn set_target(&mut self, f: File) -> Result<()> {
        set_nonblocking(f.as_raw_fd())?;
        self.target = Some(f);
        Ok(())
    }

    /// The pty master (a dup) for resizes.
    pub fn set_master(&mut self, f: File) {
        self.master = Some(f);
    }

    /// The container has exited: stop taking input, remove the socket and the FIFO.
    pub fn shutdown(&mut self) {
        if self.listener.take().is_some() {
            let _ = fs::remove_file(&self.sock);
        }
        self.clients.clear();
        self.target = None;
        if self.ctl.take().is_some() {
            let _ = fs::remove_file(&self.ctl_path);
        }
        self.master = None;
    }

    pub fn pollfds(&self, pfds: &mut Vec<libc::pollfd>) -> Slots {
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let start = pfds.len();
        let pending = self.off < self.len;
        let mut s = Slots {
            start,
            listener: false,
            ctl: false,
            target: false,
            clients: 0,
        };
        if let Some(l) = &self.listener {
            pfds.push(pfd(l.as_raw_fd(), libc::POLLIN));
            s.listener = true;
        }
        if let Some(c) = &self.ctl {
            pfds.push(pfd(c.as_raw_fd(), libc::POLLIN));
            s.ctl = true;
        }
        if let (Some(t), true) = (&self.target, pending) {
            pfds.push(pfd(t.as_raw_fd(), libc::POLLOUT));
            s.target = true;
        }
        if !pending {
            for c in &self.clients {
                pfds.push(pfd(c.as_raw_fd(), libc::POLLIN));
            }
            s.clients = self.clients.len();
        }
        s
    }

    pub fn handle(&mut self, pfds: &[libc::pollfd], s: &Slots) {
        let mut i = s.start;
        if s.listener {
            if pfds[i].revents != 0 {
                self.accept();
            }
            i += 1;
        }
        if s.ctl {
            if pfds[i].revents != 0 {
                self.read_ctl();
            }
            i += 1;
        }
        if s.target {
            if pfds[i].revents != 0 {
                self.flush();
            }
            i += 1;
        }
        // Clients whose fds were polled are the first `s.clients` (accept appends).
        let mut gone = None;
        for k in 0..s.clients {
            if pfds[i + k].revents == 0 || self.off < self.len {
                continue;
            }
            match self.clients[k].read(&mut self.buf) {
                Ok(0) => {
                    gone.get_or_insert_with(Vec::new).push(k);
                }
                Ok(n) => {
                    if self.target.is_some() {
                        self.off = 0;
                        self.len = n;
                        self.flush();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(_) => {
                    gone.get_or_insert_with(Vec::new).push(k);
                }
            }
        }
        if let Some(gone) = gone {
            for k in gone.into_iter().rev() {
                self.clients.remove(k);
            }
            if self.once {
                self.closing = true;
                if self.listener.take().is_some() {
                    let _ = fs::remove_file(&self.sock);
                }
                self.clients.clear();
            }
        }
        if self.closing && self.off >= self.len {
            self.target = None;
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((c, _)) = l.accept() {
            if c.set_nonblocking(true).is_ok() {
                self.clients.push(c);
            }
        }
    }

    /// Writes what it can of the pending bytes; drops the target on a hard error (the
    /// container closed its stdin).
    fn flush(&mut self) {
        let Some(t) = &mut self.target else {
            self.off = self.len;
            return;
        };
        while self.off < self.len {
            match t.write(&self.buf[self.off..self.len]) {
                Ok(n) => self.off += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.target = None;
                    self.off = self.len;
                    return;
                }
            }
        }
        if self.closing {
            self.target = None;
        }
    }

    fn read_ctl(&mut self) {
        let Some(mut c) = self.ctl.take() else { return };
        let mut chunk = [0u8; 64];
        while let Ok(n) = c.read(&mut chunk) {
            if n == 0 {
                break;
            }
            for &b in &chunk[..n] {
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.line[..self.line_len]).into_owned();
                    self.line_len = 0;
                    self.command(line.trim());
                } else if self.line_len < self.line.len() {
                    self.line[self.line_len] = b;
                    self.line_len += 1;
                }
            }
        }
        self.ctl = Some(c);
    }

    fn command(&self, line: &str) {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some("resize"), Some(r), Some(c)) => {
                let (Ok(rows), Ok(cols)) = (r.parse::<u16>(), c.parse::<u16>()) else {
                    eprintln!("berth-monitor: ctl: bad resize {line:?}: want resize <rows> <cols>");
                    return;
                };
                if let Some(m) = &self.master {
                    if let Err(e) = resize(m.as_raw_fd(), rows, cols) {
                        eprintln!("berth-monitor: ctl: {e}");
                    }
                }
            }
            _ => eprintln!("berth-monitor: ctl: unknown command {line:?}"),
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// TIOCSWINSZ on a pty master.
pub fn resize(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(format!("TIOCSWINSZ: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
