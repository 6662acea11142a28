//! The container service: create, start, stop, kill, pause, wait, remove, rename, list,
//! inspect, logs and attach, through berth-runtime and one berth-monitor per container, with
//! overlay root filesystems over the store's snapshots, networks, volumes and restart policies.

pub mod config;
mod db;
mod health;
mod human;
pub mod mounts;
mod names;
mod service;
pub mod spec;

pub use service::{ContainerService, LogOptions, Record, RunState, WaitCondition};

use std::path::PathBuf;

/// What exec, stats and top need to reach a running container.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    /// The full container ID (also the runtime's container id).
    pub id: String,
    pub name: String,
    /// The `berth-runtime` binary and its `--root`.
    pub runtime_bin: PathBuf,
    pub runtime_root: PathBuf,
    /// The init's pid on the host (0 when not running).
    pub pid: i32,
    pub running: bool,
    pub paused: bool,
    /// The container's (merged) config: User, Env, WorkingDir, Tty.
    pub config: config::ContainerConfig,
}

/// The container's root filesystem mounted for file operations (`cp`, `export`, `changes`).
/// Unmounted on drop when it was mounted for this guard only.
pub struct RootfsGuard {
    /// The merged root.
    pub path: PathBuf,
    /// The overlay upper dir (the container's changes; whiteouts are char 0:0 devices).
    pub upper: PathBuf,
    /// The image's layer dirs, top first (the overlay's lowerdirs), from the container's
    /// record: what `changes` compares the upper dir with, whether or not the root is mounted.
    pub lowers: Vec<PathBuf>,
    /// Volumes and binds mounted into the container: (destination, host path).
    pub mounts: Vec<(String, PathBuf)>,
    pub(crate) unmount: bool,
    pub(crate) _lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if self.unmount {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Where the container service keeps things and finds its helpers.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    /// Containers live under `<data_root>/containers`, their database is
    /// `<data_root>/containers.db`.
    pub data_root: PathBuf,
    /// The runtime's state goes under `<exec_root>/runtime`.
    pub exec_root: PathBuf,
    /// Holds `berth-runtime` and `berth-monitor`.
    pub bin_dir: PathBuf,
    /// Keep containers running when the daemon shuts down (daemon.json `live-restore`).
    pub live_restore: bool,
}
