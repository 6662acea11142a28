//! The interactive side of `run`/`start -a`/`attach`/`exec`: the local terminal (raw mode,
//! window size), docker's detach keys, and the session pump that joins the local stdio to an
//! attached container or exec.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    KillContainerOptions, ResizeContainerTTYOptions, ResizeExecOptions,
};
use futures_util::{Stream, StreamExt};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use crate::commands::{describe, write_log, Ctx, Failure, Res};
use crate::format::short_id;

fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

pub fn stdin_is_tty() -> bool {
    is_terminal(std::io::stdin().as_fd())
}

pub fn stdout_is_tty() -> bool {
    is_terminal(std::io::stdout().as_fd())
}

/// The local terminal in raw mode until dropped (every return and unwind restores it).
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Raw mode on stdin when it is a terminal; a no-op guard otherwise.
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        if !is_terminal(fd) {
            return RawMode { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(fd) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(fd, SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            let stdin = std::io::stdin();
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved);
        }
    }
}

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// The local terminal's size (rows, columns), from stdout or else stdin.
pub fn size() -> Option<(u16, u16)> {
    for fd in [1, 0] {
        let mut ws = nix::libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the winsize we pass; fds 0/1 stay open for the process.
        if unsafe { tiocgwinsz(fd, &mut ws) }.is_ok() && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// docker's `--detach-keys` syntax: comma-separated `ctrl-<x>` or single characters
/// (default `ctrl-p,ctrl-q`).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    if spec.is_empty() {
        return Ok(vec![16, 17]);
    }
    let bad = |k: &str| {
        format!(
            "invalid --detach-keys {spec:?}: {k:?} is not a key; use a comma-separated list of \
             a letter or ctrl-<letter|@|[|\\|]|^|_>, e.g. ctrl-p,ctrl-q"
        )
    };
    let mut out = Vec::new();
    for key in spec.split(',') {
        if let Some(c) = key.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad(key)),
            };
            out.push(b);
        } else if key.len() == 1 && key.is_ascii() {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(bad(key));
        }
    }
    Ok(out)
}

/// Watches input for the detach key sequence, across reads.
pub struct KeyScan {
    keys: Vec<u8>,
    matched: usize,
}

impl KeyScan {
    pub fn new(keys: Vec<u8>) -> KeyScan {
        KeyScan { keys, matched: 0 }
    }

    /// True once the whole sequence has been seen.
    pub fn feed(&mut self, input: &[u8]) -> bool {
        if self.keys.is_empty() {
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
                }
            } else {
                self.matched = usize::from(b == self.keys[0]);
            }
        }
        false
    }
}

/// Reads this process's stdin on a thread (the read blocks), chunk by chunk; the channel
/// closes at end of input.
fn spawn_stdin() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// What a resize goes to.
#[derive(Clone)]
pub enum Target {
    Container(String),
    Exec(String),
}

pub async fn resize(c: &Ctx, target: &Target) {
    let Some((h, w)) = size() else { return };
    let (h, w) = (i32::from(h), i32::from(w));
    // The process may not be up yet right after start: retry a little, like docker.
    for _ in 0..5 {
        let r = match target {
            Target::Container(id) => {
                c.docker
                    .resize_container_tty(id, ResizeContainerTTYOptions { h, w })
                    .await
            }
            Target::Exec(id) => c.docker.resize_exec(id, ResizeExecOptions { h, w }).await,
        };
        if r.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the local side joins an attached stream.
pub struct Session {
    /// The container/exec has a tty: raw mode (when stdin is ours and a terminal) and resizes.
    pub tty: bool,
    /// Forward this process's stdin.
    pub stdin: bool,
    /// The detach sequence (already passed to the engine too).
    pub detach_keys: Vec<u8>,
    /// docker's sig-proxy: pass signals sent to berth on to this container.
    pub proxy_to: Option<String>,
    /// Where window size changes go.
    pub resize: Option<Target>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The output ended (the process exited, or the engine closed the stream).
    Ended,
    /// The user typed the detach keys: the process runs on.
    Detached,
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

fn watch(kind: SignalKind, name: &str) -> Res<tokio::signal::unix::Signal> {
    signal(kind).map_err(|e| Failure::Usage(format!("cannot watch {name}: {e}")))
}

/// Pump output to stdout/stderr and stdin to the engine until the output ends or the user
/// detaches. Signals: proxied to the container with `proxy_to`; otherwise SIGINT/SIGTERM/
/// SIGHUP end the session (terminal restored) with 128+signal.
pub async fn pump(c: &Ctx, s: Session, mut output: Output, input: Input) -> Res<Outcome> {
    let _raw = (s.tty && s.stdin).then(RawMode::enable);
    let resizing = match &s.resize {
        Some(t) if s.tty && (stdout_is_tty() || stdin_is_tty()) => {
            resize(c, t).await;
            Some(t.clone())
        }
        _ => None,
    };
    let mut winch = watch(SignalKind::window_change(), "SIGWINCH")?;
    let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
    let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
    let mut hup = watch(SignalKind::hangup(), "SIGHUP")?;
    let mut quit = watch(SignalKind::quit(), "SIGQUIT")?;
    let mut stdin = s.stdin.then(spawn_stdin);
    let mut input = Some(input);
    let mut scan = KeyScan::new(s.detach_keys);
    let mut detached = false;
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let (sig, num) = tokio::select! {
            item = output.next() => match item {
                Some(Ok(out)) => {
                    write_log(out);
                    continue;
                }
                Some(Err(e)) => {
                    if detached {
                        break;
                    }
                    return Err(c.err(e));
                }
                None => break,
            },
            chunk = async {
                match stdin.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            },
                if stdin.is_some() && !detached =>
            {
                match chunk {
                    Some(bytes) => {
                        let hit = scan.feed(&bytes);
                        if let Some(w) = input.as_mut() {
                            // The engine sees the keys too and ends the attachment itself.
                            if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
                                input = None;
                            }
                        }
                        if hit {
                            detached = true;
                            grace = Some(Box::pin(tokio::time::sleep(Duration::from_secs(2))));
                        }
                    }
                    None => {
                        stdin = None;
                        if let Some(mut w) = input.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                }
                continue;
            }
            _ = async {
                match grace.as_mut() {
                    Some(g) => g.await,
                    None => std::future::pending().await,
                }
            }, if grace.is_some() => break,
            _ = winch.recv() => {
                if let Some(t) = &resizing {
                    resize(c, t).await;
                }
                continue;
            }
            _ = int.recv() => ("SIGINT", 2),
            _ = term.recv() => ("SIGTERM", 15),
            _ = hup.recv() => ("SIGHUP", 1),
            _ = quit.recv() => ("SIGQUIT", 3),
        };
        match &s.proxy_to {
            Some(id) => {
                let o = KillContainerOptions {
                    signal: sig.to_string(),
                };
                if let Err(e) = c.docker.kill_container(id, Some(o)).await {
                    eprintln!(
                        "berth: could not pass {sig} to {}: {}",
                        short_id(id),
                        describe(c, e)
                    );
                }
            }
            None => return Err(Failure::Exit(128 + num)),
        }
    }
    Ok(if detached {
        Outcome::Detached
    } else {
        Outcome::Ended
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 31]);
        let e = parse_detach_keys("ctrl-pp").unwrap_err();
        assert!(e.contains("\"ctrl-pp\""), "{e}");
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn key_scan_across_chunks() {
        let mut s = KeyScan::new(vec![16, 17]);
        assert!(!s.feed(b"abc\x10"));
        assert!(s.feed(b"\x11"));
        assert!(!s.feed(b"\x10x\x11"));
        assert!(s.feed(b"\x10\x10\x11"));
        assert!(!KeyScan::new(vec![]).feed(b"\x10\x11"));
    }
}
