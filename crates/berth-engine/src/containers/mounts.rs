//! A container's mounts from `HostConfig.Binds`, `HostConfig.Mounts`, `HostConfig.Tmpfs` and
//! the image's `Volumes`, parsed and validated as Docker does. (Filled in by the volumes
//! work.)

use super::config::HostConfig;
use crate::images::Result;
use std::collections::BTreeMap;

/// One requested mount, before host-side resolution.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MountRequest {
    Bind {
        source: String,
        destination: String,
        read_only: bool,
        propagation: String,
        /// `-v` creates a missing host directory; `--mount` refuses it.
        create_missing: bool,
    },
    Volume {
        /// `None`: anonymous (a fresh random name is chosen at create time).
        name: Option<String>,
        destination: String,
        read_only: bool,
        /// Do not copy the image's content at `destination` into a new volume.
        no_copy: bool,
        labels: BTreeMap<String, String>,
    },
    Tmpfs {
        destination: String,
        options: Vec<String>,
    },
}

/// Parse and validate every mount of a container; image volumes not covered by another mount
/// become anonymous volumes. Errors are `InvalidArgument` naming the offending entry.
pub fn parse(
    _host: &HostConfig,
    _image_volumes: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<MountRequest>> {
    Ok(Vec::new())
}
