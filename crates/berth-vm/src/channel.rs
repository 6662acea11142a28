//! The host's end of the VM's control channel: qemu serves the guest's virtio-serial port
//! `berth.control` on `<state dir>/control.sock`; `berth-vm serve` connects to it (qemu takes
//! one client at a time), runs the stream multiplexer ([`berth_vm_init::mux`]) over it, and
//! reconnects when it drops (qemu restarted, serve restarted). Every agent request is a new
//! stream of it.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_vm_init::mux::Mux;

/// How long opening a stream waits for the guest to answer (a booting guest opens its port a
/// few seconds after qemu starts; TCG is slow).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// The control socket of a state directory.
pub fn control_socket(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}

/// The current session of the control channel, shared by every task of `serve`.
#[derive(Clone, Default)]
pub struct Channel {
    current: Arc<Mutex<Option<Mux>>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Channel")
    }
}

impl Channel {
    fn mux(&self) -> Option<Mux> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|m| !m.is_ended())
    }

    fn set(&self, m: Mux) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(m);
    }

    /// Connects to `path` and keeps connecting whenever the channel ends, on a thread of its
    /// own, for as long as the process lives.
    pub fn connect_forever(&self, path: PathBuf) {
        let ch = self.clone();
        std::thread::spawn(move || {
            let mut said = false;
            loop {
                match UnixStream::connect(&path).and_then(|s| Ok((s.try_clone()?, s))) {
                    Ok((r, w)) => {
                        crate::serve::log(format!("control channel {} connected", path.display()));
                        said = false;
                        let m = Mux::opener(r, w, |msg| crate::serve::log(msg));
                        ch.set(m.clone());
                        m.wait_ended();
                        crate::serve::log("control channel closed (reconnecting)");
                    }
                    Err(e) => {
                        if !said {
                            crate::serve::log(format!(
                                "control channel {}: {e} (retrying until qemu serves it)",
                                path.display()
                            ));
                            said = true;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }

    /// Uses an already connected channel (tests).
    pub fn over(r: UnixStream, w: UnixStream) -> Channel {
        let ch = Channel::default();
        ch.set(Mux::opener(r, w, |msg| crate::serve::log(msg)));
        ch
    }

    /// A new stream, waiting up to `timeout` for a connected, answering guest.
    pub fn open_blocking(&self, timeout: Duration) -> std::io::Result<UnixStream> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.mux() {
                Some(m) => match m.open(left) {
                    Ok(s) => return Ok(s),
                    // The session ended while waiting: a reconnect may follow.
                    Err(_) if m.is_ended() && !left.is_zero() => {}
                    Err(e) => return Err(e),
                },
                None if left.is_zero() => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotConnected,
                        "the VM's control channel is not connected (is qemu running?)",
                    ))
                }
                None => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Channel::open_blocking`] for async callers.
    pub async fn open(&self) -> std::io::Result<tokio::net::UnixStream> {
        let ch = self.clone();
        let s = tokio::task::spawn_blocking(move || ch.open_blocking(OPEN_TIMEOUT))
            .await
            .map_err(std::io::Error::other)??;
        s.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(s)
    }
}
