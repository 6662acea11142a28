//! The resolved compose model: what the loader produces after merging the files, applying
//! interpolation, `env_file`s and profiles, and checking every key. Everything downstream
//! (the planner, `config`, the desktop app) reads only these types.
//!
//! Serialising a [`Project`] gives the canonical form `berth compose config` prints, and the
//! per-service config hash is taken over a service's serialised form (see
//! [`Service::config_hash`]).

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A compose project, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// The project name: `-p`, else `COMPOSE_PROJECT_NAME`, else top-level `name:`, else the
    /// directory of the first file; normalised as docker compose does (lower case, only
    /// `[a-z0-9_-]`, starting with a letter or digit).
    pub name: String,
    /// The directory relative paths are resolved against (the first file's directory, or
    /// `--project-directory`).
    #[serde(skip)]
    pub working_dir: PathBuf,
    /// The files read, in merge order.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
    /// The services enabled by the active profiles, by name.
    pub services: BTreeMap<String, Service>,
    /// Services left out because none of their profiles is active (kept so `up svc` can name
    /// one explicitly, as docker compose allows).
    #[serde(skip)]
    pub disabled: BTreeMap<String, Service>,
    /// Top-level networks by their key. Always holds `default` unless every service uses
    /// `network_mode`.
    pub networks: BTreeMap<String, Network>,
    /// Top-level named volumes by their key.
    pub volumes: BTreeMap<String, Volume>,
    /// Top-level `configs:` by their key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
    /// Top-level `secrets:` by their key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    /// Warnings met while loading (keys Berth reads but ignores, unused variables with no
    /// default...). Printed once by the caller, never fatal.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Service {
    #[serde(skip)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// `command:`; a string is split like a shell would (quotes honoured), as compose does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `env_file`s first (in order), then `environment:` over them. `None`: the variable is
    /// named without a value and the host has none either (left out of the container).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, Option<String>>,
    /// The `env_file`s read, in order, with the variables each one set (already merged into
    /// `environment`; kept so a Kubernetes export can turn them into ConfigMaps).
    #[serde(skip)]
    pub env_files: Vec<EnvFile>,
    /// `configs:` the service mounts (top-level keys, with targets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileRef>,
    /// `secrets:` the service mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Container ports, `"80"`, `"8000-8010"`, `"53/udp"`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// `tmpfs:` paths (`/run` or `/run:size=64m`), string or list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// The networks the service joins, by top-level key. Empty when `network_mode` is set;
    /// otherwise `{default: {}}` when the file names none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// `network_mode:` (`host`, `none`, `bridge`, `service:NAME`, `container:NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `no`, `always`, `on-failure`, `on-failure:N`, `unless-stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// `deploy.replicas` (default 1; `--scale` overrides at `up`).
    pub replicas: u32,
    #[serde(skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `host:ip` entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `stop_grace_period`, in seconds (compose durations like `1m30s` parsed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<u64>,
    /// `pull_policy`: `always`, `never`, `missing` (default), `build`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
}

/// One `env_file` entry after reading it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Its variables, in file order, after interpolation (`None`: named without a value and
    /// unset in the environment).
    pub vars: Vec<(String, Option<String>)>,
}

/// A top-level `configs:` or `secrets:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileObject {
    /// `name:` if given, else `<project>_<key>`; external: `name:` or the key.
    pub name: String,
    #[serde(flatten)]
    pub source: FileSource,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Where a config's or secret's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// `file:`, an absolute path on the host.
    File(PathBuf),
    /// `environment: VAR`: the variable's value when the project was loaded (process
    /// environment over `.env`; the loader refuses an unset one, so it is always `Some`).
    /// The value is never serialised.
    Environment {
        #[serde(rename = "environment")]
        var: String,
        #[serde(skip)]
        value: Option<String>,
    },
    /// `content:` (configs only), after interpolation.
    Content(String),
    /// `external: true`: made outside the project (the engine or cluster has it).
    External(bool),
}

/// A service's `configs:`/`secrets:` entry, long form after parsing either syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// The top-level key.
    pub source: String,
    /// Path in the container: as given (a relative secret target goes under `/run/secrets/`),
    /// else `/run/secrets/<source>` for secrets and `/<source>` for configs.
    pub target: String,
    /// Owner, a numeric ID (checked by the loader; default 0). Ignored for a file-backed
    /// entry, which is bind-mounted as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Group, a numeric ID (default 0); ignored for a file-backed entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// File mode (default 0444); ignored for a file-backed entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// `build:` — a string is the context alone.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Build {
    /// Absolute path of the context directory.
    pub context: PathBuf,
    /// Relative to the context (default `Dockerfile`).
    pub dockerfile: String,
    /// Build args; `None`: named without a value (taken from the environment if set there).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// One published port, in long form after parsing either syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Container port (a single port; ranges are expanded by the loader).
    pub target: u16,
    /// Host port; `None` = an ephemeral one. Ranges are expanded by the loader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<u16>,
    /// Host IP to bind (`""` = all).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// One entry of `volumes:` on a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// Volume: the top-level key (or `None` for an anonymous volume). Bind: the absolute host
    /// path (relative paths and `~` resolved by the loader). Tmpfs: `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path inside the container.
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Bind only: create the host path when missing (compose's default for short syntax).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create_host_path: bool,
    /// Tmpfs only: size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<i64>,
    /// Volume only: `volume.nocopy`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

/// A service's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub condition: Condition,
    /// `required: false` lets `up` go on when the dependency is not in the project.
    pub required: bool,
    /// `restart: true`: restart this service when the dependency is recreated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

/// `healthcheck:`; durations in nanoseconds as the Engine API takes them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` (a string becomes CMD-SHELL), or `["NONE"]`
    /// (`disable: true`).
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// `deploy.resources.limits`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Limits {
    /// CPUs (`0.5`), as NanoCpus / 1e9.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Bytes (`512m`, `1g` parsed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none() && self.pids.is_none()
    }
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Network {
    /// The engine-side name: `name:` if given, else `<project>_<key>`; for `external`, `name:`
    /// or the key itself.
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// `ipam.config[].subnet` (and gateway), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Subnet>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub subnet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// A top-level volume.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Volume {
    /// Engine-side name: `name:` if given, else `<project>_<key>`; external: `name:` or key.
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Service {
    /// docker compose's `com.docker.compose.config-hash`: sha256 (hex) over the service's
    /// canonical JSON form, so any change to what the container is made from changes it, and
    /// a change to `deploy.replicas` alone (how many, not what) does not.
    pub fn config_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut s = self.clone();
        s.replicas = 1;
        let json = serde_json::to_vec(&s).unwrap_or_default();
        let d = Sha256::digest(&json);
        d.iter().map(|b| format!("{b:02x}")).collect()
    }
}
