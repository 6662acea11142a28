//! The runtime ↔ container-init channel: length-prefixed JSON messages over a unix stream
//! socketpair, plus fd passing (SCM_RIGHTS) for the console.

use crate::{Error, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Messages from the init side to the runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// Stage 1 made the init process (host pid).
    Pid(i32),
    /// Stage 1 unshared a user namespace and needs its uid/gid maps written.
    MapIds(i32),
    /// The namespaces and mounts exist: run prestart and createRuntime hooks now.
    Hooks,
    /// Everything is set up; the init waits for `start` (or execs right away).
    Ready,
    /// Setup failed; the message says what and why.
    Error(String),
}

/// Messages from the runtime to the init side.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    /// Start (the init is in its cgroup); carries the state document for in-container hooks.
    Go(serde_json::Value),
    Continue,
    Abort(String),
}

const MAX_MSG: usize = 64 << 20;

pub fn send<T: Serialize>(sock: &mut UnixStream, msg: &T) -> Result<()> {
    let data = serde_json::to_vec(msg).map_err(|e| Error::Container(format!("encode: {e}")))?;
    let mut buf = Vec::with_capacity(data.len() + 4);
    buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
    buf.extend_from_slice(&data);
    sock.write_all(&buf)
        .map_err(|e| Error::sys("writing to the container init channel", e))
}

/// Receive one message; `Ok(None)` on a clean end of stream (the peer exec'd or exited).
pub fn recv<T: DeserializeOwned>(sock: &mut UnixStream) -> Result<Option<T>> {
    let mut len = [0u8; 4];
    match sock.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::sys("reading from the container init channel", e)),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_MSG {
        return Err(Error::Container(format!(
            "init channel message of {len} bytes"
        )));
    }
    let mut data = vec![0u8; len];
    sock.read_exact(&mut data)
        .map_err(|e| Error::sys("reading from the container init channel", e))?;
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| Error::Container(format!("init channel: bad message: {e}")))
}

/// Send `fd` over a unix socket with a short text payload (the pty's name).
pub fn send_fd(sock: RawFd, name: &str, fd: RawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::sys("sending the console fd over --console-socket", e))?;
    Ok(())
}

/// Receive one fd sent with [`send_fd`].
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| Error::sys("receiving the console fd", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("receiving the console fd", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Container(
        "console socket message carried no fd".into(),
    ))
}

/// Move `fd` to a number >= `min` (close-on-exec), so it cannot collide with the fds the
/// caller asked to pass into the container with --preserve-fds.
pub fn raise_fd<F: AsRawFd + FromRawFd>(fd: F, min: RawFd) -> Result<F> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(Error::last_os("fcntl(F_DUPFD_CLOEXEC)"));
    }
    drop(fd);
    // SAFETY: n is a fresh fd we own.
    Ok(unsafe { F::from_raw_fd(n) })
}

pub fn set_cloexec(fd: RawFd, on: bool) -> Result<()> {
    // SAFETY: fcntl on an fd number.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
    if r < 0 {
        return Err(Error::last_os(format!("fcntl(F_SETFD) on fd {fd}")));
    }
    Ok(())
}
