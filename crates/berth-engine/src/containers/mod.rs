//! The container service: create, start, stop, kill, pause, wait, remove, rename, list,
//! inspect, logs and attach, through berth-runtime and one berth-monitor per container, with
//! overlay root filesystems over the store's snapshots, networks, volumes and restart policies.

pub mod config;
pub mod mounts;
pub mod spec;

use crate::images::{Error, Result};
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
    /// Volumes and binds mounted into the container: (destination, host path).
    pub mounts: Vec<(String, PathBuf)>,
    unmount: bool,
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

/// The container service. Cheap to clone.
#[derive(Clone)]
pub struct ContainerService {}

impl ContainerService {
    /// Open the container database and reconcile with what is running: live containers are
    /// re-attached, dead ones get their exit recorded and their restart policy applied.
    pub async fn open(
        opts: ContainerOptions,
        images: crate::images::ImageService,
        volumes: std::sync::Arc<crate::volumes::Volumes>,
        networks: std::sync::Arc<std::sync::Mutex<crate::network::Networks>>,
        events: crate::events::Events,
    ) -> Result<ContainerService> {
        let _ = (opts, images, volumes, networks, events);
        Ok(ContainerService {})
    }

    /// Daemon shutdown: without live-restore, stop running containers.
    pub async fn shutdown(&self) {}

    /// Resolve a container by full ID, name (with or without leading `/`) or unique ID prefix.
    pub async fn exec_target(&self, id_or_name: &str) -> Result<ExecTarget> {
        Err(Error::not_found(format!("No such container: {id_or_name}")))
    }

    /// Mount (if needed) and lock the container's root filesystem for file operations.
    pub async fn rootfs_guard(&self, id_or_name: &str) -> Result<RootfsGuard> {
        Err(Error::not_found(format!("No such container: {id_or_name}")))
    }

    /// IDs of containers that mount volume `name`.
    pub async fn volume_users(&self, name: &str) -> Vec<String> {
        let _ = name;
        Vec::new()
    }

    /// Container ID → name (without `/`) for every container.
    pub async fn names(&self) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::new()
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect(
        &self,
        id_or_name: &str,
        network: &str,
        aliases: Vec<String>,
    ) -> Result<()> {
        let _ = (network, aliases);
        Err(Error::not_found(format!("No such container: {id_or_name}")))
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(&self, id_or_name: &str, network: &str, force: bool) -> Result<()> {
        let _ = (network, force);
        Err(Error::not_found(format!("No such container: {id_or_name}")))
    }

    /// (all, running, paused, stopped) counts for `info`.
    pub async fn counts(&self) -> (usize, usize, usize, usize) {
        (0, 0, 0, 0)
    }
}
