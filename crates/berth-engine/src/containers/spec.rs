//! The OCI runtime spec for a container: Docker's default confinement, the process from the
//! image config and the create body, mounts, namespaces and cgroup resources.
//! (Filled in by the spec work; see the module's interface below.)

use super::config::{ContainerConfig, HostConfig};
use crate::images::{Error, Result};
use std::path::{Path, PathBuf};

/// The container's network namespace.
#[derive(Debug, Clone)]
pub enum NetNs {
    /// `--network host`: no network namespace.
    Host,
    /// Join this namespace (a bind-mounted netns file).
    Path(PathBuf),
}

/// A mount resolved on the host side (volumes are bind mounts of their `_data`).
#[derive(Debug, Clone, PartialEq)]
pub struct MountSpec {
    /// Absolute path in the container.
    pub destination: String,
    pub kind: MountKind,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MountKind {
    /// A bind mount of an absolute host path. `propagation`: `""` (rprivate), `private`,
    /// `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    Bind {
        source: PathBuf,
        propagation: String,
        recursive: bool,
    },
    /// A tmpfs; `options` as Docker takes them (`size=64m,mode=1777,...`).
    Tmpfs { options: Vec<String> },
}

/// Everything the spec is built from.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// The container's config, already merged with the image's defaults
    /// ([`merge_image_config`]).
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// The mounted root filesystem (overlay merged dir).
    pub rootfs: &'a Path,
    pub mounts: &'a [MountSpec],
    pub netns: NetNs,
    /// Host files bind-mounted over /etc/hosts, /etc/resolv.conf, /etc/hostname.
    pub hosts_file: &'a Path,
    pub resolv_conf: &'a Path,
    pub hostname_file: &'a Path,
    /// The runtime's `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// A static init to run as pid 1 (`--init`), bind-mounted at /sbin/docker-init.
    pub init_path: Option<&'a Path>,
}

/// Fill the container's config from the image's as Docker does (Env merged by key, Cmd and
/// Entrypoint rules, WorkingDir, User, ExposedPorts, Volumes, StopSignal, Healthcheck, ...).
pub fn merge_image_config(
    _config: &mut ContainerConfig,
    _image: &berth_store::image::ContainerConfig,
) {
}

/// The runtime spec (`config.json`) for the container.
pub fn build(_input: &SpecInput<'_>) -> Result<serde_json::Value> {
    Err(Error::internal("spec generation is not implemented yet"))
}
