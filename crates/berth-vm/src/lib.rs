//! Berth's Linux VM, host side: the same berthd running in a small qemu guest (the macOS/Windows
//! path, and an "isolated engine" option on Linux).
//!
//! - [`Vm`] is a handle over a state directory (default `~/.berth/vm/`): `create`, `start`,
//!   `wait_ready`, `stop`, `status`, `logs`, `resize`, `compact`, `delete`.
//! - [`qemu`] builds the one qemu command line for every accelerator (kvm, hvf, whpx, tcg).
//! - [`agent`] speaks the guest agent's line protocol (PING, API, CONNECT, UDP, SHUTDOWN), one
//!   stream per request over the control channel (see `docs/vm.md`).
//! - [`channel`] is the host's end of that channel: a virtio-serial port qemu serves on a unix
//!   socket, multiplexed ([`berth_vm_init::mux`]).
//! - [`serve`] is the long-lived host process (`berth-vm serve`, started detached by
//!   [`Vm::start`]): the engine socket on the host (`~/.berth/berth.sock`) spliced to the
//!   guest's berthd, and published ports followed from the engine's events and forwarded.
//! - [`forward`] holds the pure port bookkeeping (events and inspect JSON to listeners).
//! - [`udp`] forwards published UDP ports: one agent `UDP <port>` tunnel per host peer.
//! - [`docker_context`] keeps the `berth-vm` docker context pointing at the engine socket.

pub mod agent;
pub mod channel;
pub mod config;
pub mod docker_context;
pub mod forward;
pub mod http;
pub mod qemu;
pub mod serve;
pub mod udp;
mod vm;

pub use config::{Accel, Share, VmConfig};
pub use vm::{ReadyInfo, Status, StopOutcome, Vm, VmState};

/// Errors of the VM host side: each says what failed and, where there is one, how to fix it.
#[derive(Debug)]
pub enum Error {
    /// No VM in this state directory: `create` one first.
    NotCreated(std::path::PathBuf),
    /// The operation needs a stopped VM.
    Running(String),
    /// The operation needs a running VM.
    NotRunning(String),
    /// An I/O error, with what was being done.
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Anything else (bad config, a tool that failed, a guest that did not answer).
    Other(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotCreated(dir) => write!(
                f,
                "no VM in {}: create it first (berth vm create, or Vm::create)",
                dir.display()
            ),
            Error::Running(m) | Error::NotRunning(m) | Error::Other(m) => f.write_str(m),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `map_err` helper: an I/O error with what was being done.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
