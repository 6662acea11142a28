//! What the desktop app's Tauri commands take and return, and what their channels carry.
//!
//! These types are the one definition of the app's IPC contract: `cargo test -p
//! berth-desktop-dto` writes their TypeScript twins to `ui/src/lib/bindings/` (ts-rs; the
//! directory is set by `TS_RS_EXPORT_DIR` in `.cargo/config.toml`), and CI fails when the
//! committed bindings differ from what the Rust types generate.
//!
//! Numbers that can pass 2^53 in theory (byte counts, timestamps) are still `number` on the
//! TypeScript side: sizes and Unix seconds stay far below it in practice.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// Why a command failed, as the front end sees it: a stable `code` to branch on and the
/// engine's (or our) message to show.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    /// berthd's socket does not answer: the UI offers Start.
    EngineUnreachable,
    /// The engine says 404 (no such container, image, volume, network).
    NotFound,
    /// The engine says 409 (name in use, image in use, container running...).
    Conflict,
    /// The engine or the app refused the input (400, a malformed field).
    InvalidInput,
    /// Anything else the engine reported (500...).
    Engine,
    /// Starting/stopping the engine or editing its config failed (permissions, files).
    System,
    /// The stream or session named does not exist (already closed).
    NoSuchSession,
    /// A Kubernetes API server could not be reached or refused a request, or a rollout
    /// failed (the message then carries the failing pods' events and last log lines).
    Kubernetes,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

// ---------------------------------------------------------------- engine

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EngineState {
    Running,
    Starting,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct EngineStatus {
    pub state: EngineState,
    /// The socket the app talks to, e.g. `unix:///run/berth/berth.sock`.
    pub host: String,
    /// The engine's version when running.
    pub version: Option<String>,
    /// Why it is stopped or what went wrong starting it, for the user.
    pub message: Option<String>,
    /// Whether this app can start the engine here (a berthd binary, and root, pkexec or a
    /// systemd unit).
    pub can_start: bool,
    pub containers_running: u32,
    /// Set when the engine is Berth's VM (absent: the native engine on this host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub vm: Option<VmProgress>,
}

/// Which engine the app drives: berthd on this host, or berthd inside Berth's VM.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EngineMode {
    #[default]
    Native,
    Vm,
}

/// The VM's side of the engine status: its state and, while it boots, how far it got.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct VmProgress {
    /// `not_created`, `stopped`, `starting`, `running` or `stopping`.
    pub state: String,
    /// While starting: ms since the VM was launched.
    #[ts(type = "number | null")]
    pub elapsed_ms: Option<u64>,
    /// While starting: the last step the guest's init logged (`berth-init: ...`).
    pub step: Option<String>,
    /// When running: the guest's own boot-to-ready time.
    #[ts(type = "number | null")]
    pub boot_ms: Option<u64>,
    /// The accelerator in use (`kvm`, `hvf`, `whpx`, `tcg`) when it runs.
    pub accel: Option<String>,
}

/// The Settings page's engine section: the mode, the VM's resources and its state.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct VmSettings {
    pub mode: EngineMode,
    /// The mode cannot be changed here (macOS/Windows: the VM is the only engine).
    pub mode_forced: bool,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
    /// Where the data disk is (or will be created).
    pub disk_path: String,
    /// The VM's state directory (config, console log).
    pub state_dir: String,
    /// The engine socket the VM serves on this host.
    pub socket: String,
    /// `auto`, or the accelerator forced by `BERTH_VM_ACCEL` or the VM's config.
    pub accel: String,
    /// Where `accel` comes from: `auto`, `env` (BERTH_VM_ACCEL) or `config`.
    pub accel_source: String,
    /// Whether the VM (its disk and config) exists.
    pub created: bool,
    /// The VM's state now (`not_created`, `stopped`, `starting`, `running`).
    pub state: String,
    /// Why the VM cannot start here, if it cannot (no image, no qemu).
    pub problem: Option<String>,
    /// The host's CPU count and memory, to bound the inputs.
    pub host_cpus: u32,
    #[ts(type = "number")]
    pub host_memory_mib: u64,
}

/// Apply in Settings: the VM's CPUs, memory, disk size and disk location.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct VmResources {
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
    /// Empty: `data.qcow2` in the state directory.
    pub disk_path: String,
}

/// One engine event (`/events`), as the stores use it to refresh.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct EngineEvent {
    /// `container`, `image`, `volume`, `network`, or `engine` for the app's own
    /// connected/disconnected notices.
    pub kind: String,
    /// `start`, `die`, `destroy`, `pull`, `tag`, `create`, `connect`, ...
    pub action: String,
    /// The object's id (container/image/network id, volume name).
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Unix time in nanoseconds / 1e6 (milliseconds).
    #[ts(type = "number")]
    pub time_ms: i64,
}

// ---------------------------------------------------------------- containers

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct PortBinding {
    /// Host address the port is published on (`0.0.0.0`, `::`, `127.0.0.1`); empty if not
    /// published.
    pub host_ip: String,
    pub host_port: Option<u16>,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ContainerRow {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    #[ts(type = "number")]
    pub created: i64,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `dead`, `removing`.
    pub state: String,
    /// Docker's status text: `Up 3 minutes`, `Exited (0) 2 hours ago`.
    pub status: String,
    pub ports: Vec<PortBinding>,
    /// `com.docker.compose.project`, when labelled.
    pub project: Option<String>,
    /// `com.docker.compose.service`, when labelled.
    pub service: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub networks: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ContainerAction {
    Start,
    Stop,
    Restart,
    Pause,
    Unpause,
    Kill,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct MountInfo {
    /// `bind`, `volume`, `tmpfs`.
    pub kind: String,
    /// Host path or volume name.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct NetworkAttachment {
    pub network: String,
    pub ip_address: String,
    pub gateway: String,
    pub mac_address: String,
    pub aliases: Vec<String>,
}

/// A container's inspect, readable fields plus the engine's JSON as it sent it.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub state: String,
    pub status: String,
    pub exit_code: i32,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339, empty when never started.
    pub started_at: String,
    pub finished_at: String,
    pub path: String,
    pub args: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub restart_policy: String,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<MountInfo>,
    pub networks: Vec<NetworkAttachment>,
    pub labels: BTreeMap<String, String>,
    /// The engine's inspect JSON, byte for byte.
    pub raw: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct PortSpec {
    /// Empty: all addresses.
    pub host_ip: String,
    /// None: the engine picks a free port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct VolumeSpec {
    /// A host path (starts with `/`) for a bind, else a volume name (created if missing);
    /// empty for an anonymous volume.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// The Run dialog: `docker run -d` by clicking.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct RunRequest {
    pub image: String,
    /// Empty: the engine picks a name.
    pub name: String,
    pub ports: Vec<PortSpec>,
    pub volumes: Vec<VolumeSpec>,
    /// `KEY=value` lines.
    pub env: Vec<String>,
    /// Empty: the default bridge.
    pub network: String,
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub restart: String,
    /// Empty: the image's command. Split like a shell would (quotes respected).
    pub command: String,
    pub auto_remove: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct LogChunk {
    /// `stdout` or `stderr` (`tty` for a container with a terminal).
    pub stream: String,
    /// One line, without its newline; with `timestamps`, the RFC 3339 time is split off.
    pub line: String,
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct LogOptions {
    pub follow: bool,
    /// None: all lines.
    pub tail: Option<u32>,
    pub timestamps: bool,
}

/// One stats sample, computed like `docker stats`.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct StatsSample {
    pub id: String,
    /// Unix milliseconds.
    #[ts(type = "number")]
    pub time_ms: i64,
    pub cpu_percent: f64,
    #[ts(type = "number")]
    pub memory_usage: u64,
    #[ts(type = "number")]
    pub memory_limit: u64,
    #[ts(type = "number")]
    pub net_rx: u64,
    #[ts(type = "number")]
    pub net_tx: u64,
    #[ts(type = "number")]
    pub block_read: u64,
    #[ts(type = "number")]
    pub block_write: u64,
    #[ts(type = "number")]
    pub pids: u64,
}

/// What an exec terminal session sends to the page.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum ExecEvent {
    /// Output bytes, base64 (a terminal's output is not always valid UTF-8 per chunk).
    Data {
        data: String,
    },
    /// The process ended.
    Exit {
        code: Option<i64>,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ExecRequest {
    pub container: String,
    /// Empty: the first of `/bin/bash`, `/bin/sh` the image has.
    pub command: Vec<String>,
    pub cols: u16,
    pub rows: u16,
}

// ---------------------------------------------------------------- images

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ImageRow {
    /// `sha256:…`.
    pub id: String,
    /// `<none>` for an untagged image.
    pub repository: String,
    pub tag: String,
    pub digests: Vec<String>,
    #[ts(type = "number")]
    pub size: i64,
    /// Unix seconds.
    #[ts(type = "number")]
    pub created: i64,
    /// Containers (any state) using this image.
    pub containers: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct HistoryRow {
    pub id: String,
    #[ts(type = "number")]
    pub created: i64,
    pub created_by: String,
    #[ts(type = "number")]
    pub size: i64,
    pub comment: String,
    pub tags: Vec<String>,
}

/// A pull/push progress message, per layer as the engine sends them.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum ProgressEvent {
    /// A status line without a layer (`Pulling from library/app`, `Digest: …`).
    Status {
        message: String,
    },
    /// A layer's state: `Pulling fs layer`, `Downloading`, `Extracting`, `Pull complete`,
    /// `Pushing`, `Pushed`, `Already exists`...
    Layer {
        id: String,
        status: String,
        #[ts(type = "number | null")]
        current: Option<u64>,
        #[ts(type = "number | null")]
        total: Option<u64>,
    },
    /// The pull or push ended well.
    Done {
        message: String,
    },
    Error {
        message: String,
    },
}

/// The Build dialog: `docker build` of a local folder.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct BuildRequest {
    /// The build context: an existing folder on this machine (absolute path).
    pub context_dir: String,
    /// The Dockerfile, relative to `context_dir`; empty: `Dockerfile`.
    pub dockerfile: String,
    /// `name[:tag]` references to give the image (none: an untagged image).
    pub tags: Vec<String>,
    /// `--build-arg KEY=value`, in order.
    pub build_args: Vec<(String, String)>,
    /// The stage to build (`--target`); empty: the last one.
    pub target: String,
    pub no_cache: bool,
    /// Pull newer base images first.
    pub pull: bool,
}

/// What a build's channel carries, parsed from the engine's JSON messages (Docker's classic
/// builder protocol).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum BuildEvent {
    /// The context was packed and is being sent.
    Context {
        files: u32,
        #[ts(type = "number")]
        bytes: u64,
    },
    /// `Step 2/5 : RUN make`.
    Step { n: u32, total: u32, text: String },
    /// ` ---> Using cache`: the current step was served from the build cache.
    Cached,
    /// ` ---> Running in abc123`: the current step runs in a container.
    Running { container: String },
    /// Output of the current step (one line, without its newline).
    Output { text: String },
    /// ` ---> 1a2b3c4d5e6f`: the current step made this image.
    StepDone { id: String },
    /// A base image's pull progress (`FROM` of an image not here, or `pull`).
    Pull { event: ProgressEvent },
    /// `Successfully built …`, `Successfully tagged …` and other status lines.
    Status { message: String },
    /// The build ended well: the image's id (`sha256:…`) and its tags.
    Done { id: String, tags: Vec<String> },
    /// The build failed. For a Dockerfile error, where: `file:line`, the quoted source line
    /// and the 1-based column of the problem, and the engine's suggestion (`WORKDIR`).
    Failed {
        message: String,
        file: Option<String>,
        line: Option<u32>,
        column: Option<u32>,
        source_line: Option<String>,
        suggestion: Option<String>,
    },
}

/// One level of the folder browser of the Build dialog.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct DirListing {
    /// The folder listed (absolute, normalised).
    pub path: String,
    /// Its parent; None at `/`.
    pub parent: Option<String>,
    /// Sub-folders, sorted by name (hidden ones left out).
    pub dirs: Vec<String>,
    /// Whether the folder has a file named `Dockerfile`.
    pub has_dockerfile: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    #[ts(type = "number")]
    pub space_reclaimed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct LoginRequest {
    /// `host[:port]`; empty for Docker Hub.
    pub server: String,
    pub username: String,
    pub password: String,
}

// ---------------------------------------------------------------- volumes, networks

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    /// RFC 3339.
    pub created: String,
    /// Bytes, when the engine measured it (`/system/df`).
    #[ts(type = "number | null")]
    pub size: Option<i64>,
    /// Names of the containers (any state) that mount it.
    pub used_by: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct NetworkMember {
    pub id: String,
    pub name: String,
    /// Without the prefix length.
    pub ipv4: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct NetworkRow {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    /// RFC 3339.
    pub created: String,
    pub containers: Vec<NetworkMember>,
    /// `bridge`, `host`, `none`: the engine's own, which cannot be removed.
    pub builtin: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct NetworkCreate {
    pub name: String,
    /// CIDR, empty: the engine picks one.
    pub subnet: String,
    /// Empty: the subnet's first address.
    pub gateway: String,
    pub internal: bool,
}

// ---------------------------------------------------------------- registry settings

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct Mirror {
    /// `https://mirror.example:5000` or `http://127.0.0.1:5001`.
    pub url: String,
    /// Whether the mirror may decide what a tag means (docker.io's `registry-mirrors` do).
    pub resolve_tags: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct RegistryMirrors {
    /// `docker.io` or `host[:port]`.
    pub registry: String,
    /// Tried in this order, before the registry itself.
    pub mirrors: Vec<Mirror>,
}

/// The registry part of berthd's daemon.json, as the Settings panel edits it.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct RegistrySettings {
    /// The daemon.json this reads and writes.
    pub config_path: String,
    pub registries: Vec<RegistryMirrors>,
    /// `host[:port]` or CIDR: plain HTTP allowed, certificates not checked.
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct SaveReport {
    pub config_path: String,
    /// Whether a running engine was told to reload (SIGHUP).
    pub reloaded: bool,
    pub message: String,
}

/// What the Test button found at one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ProbeResult {
    pub url: String,
    /// `/v2/` answered like a registry (200, or 401 with a challenge).
    pub ok: bool,
    /// HTTP status of `GET /v2/`.
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// `https` or `http`.
    pub scheme: String,
    /// For https: `verified` or why the certificate was refused.
    pub tls: Option<String>,
    /// `none`, `bearer (realm …)`, `basic`.
    pub auth: String,
    /// The registry's API version header, when sent.
    pub api_version: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ServedBlob {
    pub digest: String,
    /// The endpoint (mirror or registry base URL) that served it.
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct SkippedEndpoint {
    pub endpoint: String,
    pub reason: String,
}

/// One pull the engine made, with where each blob came from.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct PullRecord {
    pub reference: String,
    pub digest: String,
    /// Unix milliseconds.
    #[ts(type = "number")]
    pub time_ms: i64,
    pub blobs: Vec<ServedBlob>,
    pub skipped: Vec<SkippedEndpoint>,
}

// ---------------------------------------------------------------- system

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct DiskUsage {
    #[ts(type = "number")]
    pub images: i64,
    #[ts(type = "number")]
    pub containers: i64,
    #[ts(type = "number")]
    pub volumes: i64,
}

// ---------------------------------------------------------------- compose

/// A compose project the engine knows (`docker compose ls -a`): its containers carry the
/// compose labels, whoever started them (this app, `berth compose`, docker compose).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeProjectSummary {
    pub name: String,
    /// `running(2), exited(1)`.
    pub status: String,
    /// The files it was started from (absolute paths, as labelled).
    pub config_files: Vec<String>,
    pub working_dir: String,
    pub running: u32,
    pub total: u32,
}

/// Which compose project a command works on: its files (absolute paths; one folder is
/// also accepted, holding a compose.yaml), an optional name (`-p`), and environment
/// overrides (the `.env` editor's values), which win over `.env` and the app's environment.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeTarget {
    pub files: Vec<String>,
    pub project_name: Option<String>,
    pub environment: BTreeMap<String, String>,
}

/// One service as the files declare it.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeServiceInfo {
    pub name: String,
    /// None: built from `build.context` only.
    pub image: Option<String>,
    /// Whether it has a `build:` section (Rebuild makes sense).
    pub build: bool,
    /// Declared ports, `8080:80/tcp`, `127.0.0.1:5432:5432/tcp`, `9000/tcp`.
    pub ports: Vec<String>,
    pub replicas: u32,
    pub depends_on: Vec<String>,
}

/// One `KEY=value` of a `.env` file.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
}

/// A project's `.env` file (the one next to the first compose file).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct EnvFile {
    /// Where it is or would be.
    pub path: String,
    pub exists: bool,
    pub entries: Vec<EnvEntry>,
}

/// A compose project read from its files.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeProjectInfo {
    pub name: String,
    pub working_dir: String,
    /// The files read, in merge order (absolute).
    pub files: Vec<String>,
    /// Enabled services, by name.
    pub services: Vec<ComposeServiceInfo>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub env: EnvFile,
    /// The loader's warnings (ignored keys, unset variables).
    pub warnings: Vec<String>,
}

/// One container of a compose project (`docker compose ps -a`).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    /// The replica number (`web-2` is 2).
    pub number: u32,
    pub image: String,
    pub command: String,
    /// `running`, `exited`, `created`, `paused`, `restarting`.
    pub state: String,
    /// `Up 3 seconds (healthy)`, `Exited (0) 2 minutes ago`.
    pub status: String,
    /// `healthy`, `unhealthy`, `starting`; None without a healthcheck.
    pub health: Option<String>,
    #[ts(type = "number")]
    pub exit_code: i64,
    pub ports: Vec<PortBinding>,
    /// Unix seconds.
    #[ts(type = "number")]
    pub created: i64,
}

/// Up: `docker compose up -d [--build] [--no-deps] [--force-recreate] [services...]`.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeUpRequest {
    pub target: ComposeTarget,
    /// Empty: every enabled service.
    pub services: Vec<String>,
    pub build: bool,
    pub no_deps: bool,
    pub force_recreate: bool,
}

/// Down: `docker compose down [-v] [--remove-orphans]`.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeDownRequest {
    pub target: ComposeTarget,
    /// Also remove the project's named volumes.
    pub volumes: bool,
    pub remove_orphans: bool,
}

/// What an Up/Down/Restart reports as it goes (berth-compose's progress events).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum ComposeEvent {
    /// A network, volume, container or image changing state: `resource` is `Network`,
    /// `Volume`, `Container` or `Image`; `status` `Creating`, `Created`, `Starting`,
    /// `Started`, `Healthy`, `Stopping`, `Removed`...; `done` when it reached its end state.
    Resource {
        resource: String,
        name: String,
        status: String,
        done: bool,
    },
    /// A line of a service's image build.
    Build {
        service: String,
        line: String,
    },
    /// A service's image pull progress.
    Pull {
        service: String,
        status: String,
    },
    Warning {
        message: String,
    },
}

/// One line of a project's merged logs.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeLogLine {
    pub service: String,
    /// The container's name.
    pub container: String,
    pub number: u32,
    pub stderr: bool,
    /// One line, without its newline.
    pub text: String,
}

// ---------------------------------------------------------------- kubernetes

/// One context of a kubeconfig.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeContext {
    pub name: String,
    pub cluster: String,
    /// Its namespace, when it sets one (else `default` is used).
    pub namespace: Option<String>,
    /// The cluster's API server URL, when the kubeconfig defines the cluster.
    pub server: Option<String>,
}

/// The kubeconfig the app found (`kube_contexts`): `$KUBECONFIG` (a `:`-list, merged), else
/// `~/.kube/config`, or the file the user chose.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeContexts {
    /// Where it was read from (a path, or the `KUBECONFIG` list); None when no file exists.
    pub kubeconfig: Option<String>,
    /// The files looked for, in order (for the "no kubeconfig" message).
    pub searched: Vec<String>,
    /// Its `current-context`.
    pub current: Option<String>,
    pub contexts: Vec<KubeContext>,
}

/// How the Services of published ports are exposed on the cluster.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq, Default)]
#[ts(export)]
pub enum KubeServiceType {
    #[default]
    #[serde(rename = "ClusterIP")]
    ClusterIp,
    NodePort,
    LoadBalancer,
}

/// Deploy to Kubernetes: the project's services as Deployments (images pinned by digest),
/// Services, PersistentVolumeClaims, ConfigMaps and Secrets, applied server-side.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeDeployRequest {
    pub target: ComposeTarget,
    /// The kubeconfig file (None: `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<String>,
    /// None: the kubeconfig's current context.
    pub context: Option<String>,
    /// A DNS-1123 label; None: the context's namespace, else `default`. Another namespace
    /// than the context's is created (applied) first.
    pub namespace: Option<String>,
    /// Push the images the project builds (or that have no registry digest) first, with
    /// the registry logins saved by the app.
    pub push: bool,
    pub service_type: KubeServiceType,
    /// How long to wait for every Deployment to become available.
    pub timeout_secs: u32,
}

/// An object applied to (or deleted from) a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeObject {
    /// `Deployment`, `Service`, `PersistentVolumeClaim`...
    pub kind: String,
    pub name: String,
    /// None for cluster-scoped objects (the Namespace).
    pub namespace: Option<String>,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeDeployResult {
    pub context: String,
    /// The API server URL.
    pub server: String,
    pub namespace: String,
    /// The image each service runs, pinned by digest, by service name.
    pub images: BTreeMap<String, String>,
    /// The objects applied, in order.
    pub applied: Vec<KubeObject>,
}

/// A deploy's progress, in order (berth-kube's deploy events).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
#[ts(export)]
pub enum KubeEvent {
    /// Something in the project that does not cross to a cluster as written (a bind mount,
    /// host networking...): `key` is the compose key, like `services.web.volumes[0]`.
    Warning {
        service: Option<String>,
        key: String,
        message: String,
    },
    /// A push step of a service's image.
    Push {
        service: String,
        image: String,
        status: String,
    },
    /// A service's image, pinned by digest.
    Pinned {
        service: String,
        image: String,
        reference: String,
    },
    /// An object was applied.
    Applied {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
    /// A Deployment's rollout moved. Until `observed`, the controller has not seen the
    /// applied spec yet and the numbers are the previous rollout's.
    Progress {
        deployment: String,
        namespace: String,
        observed: bool,
        desired: i32,
        updated: i32,
        ready: i32,
        available: i32,
    },
    /// A Deployment rolled out: every replica updated and available.
    Available {
        deployment: String,
        namespace: String,
    },
    /// The rollout failed or timed out (the command then fails with the same report).
    RolloutFailed {
        /// One line.
        reason: String,
        /// The Deployments that did not become available.
        deployments: Vec<String>,
        /// Their failing pods: state, events and last log lines, one per line.
        report: String,
    },
}

/// Which project on which cluster (`kube_status`, `kube_delete`): objects are found by the
/// `app.kubernetes.io/part-of=<project>` label.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeProjectRequest {
    /// The compose project's name.
    pub project: String,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeDeploymentStatus {
    pub name: String,
    /// The compose service it runs.
    pub service: Option<String>,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub images: Vec<String>,
    /// Every replica updated and available.
    pub rolled_out: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubePort {
    pub name: Option<String>,
    pub port: i32,
    pub target_port: Option<String>,
    /// `TCP` or `UDP`.
    pub protocol: String,
    pub node_port: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeServiceStatus {
    pub name: String,
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    pub service_type: String,
    pub cluster_ip: Option<String>,
    /// Load balancer ingress addresses.
    pub external: Vec<String>,
    pub ports: Vec<KubePort>,
}

/// A PersistentVolumeClaim (a compose named volume).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeVolumeStatus {
    pub name: String,
    /// `Pending`, `Bound`, `Lost`.
    pub phase: String,
    /// Requested (or bound) size, like `1Gi`.
    pub size: Option<String>,
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubePodStatus {
    pub name: String,
    pub service: Option<String>,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// Ready containers, of `containers`.
    pub ready: u32,
    pub containers: u32,
    pub restarts: i32,
    /// Why a container is waiting or ended (`CrashLoopBackOff`, `ImagePullBackOff`...).
    pub reason: Option<String>,
}

/// The project's objects in one namespace of a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeStatus {
    pub project: String,
    pub context: String,
    pub server: String,
    pub namespace: String,
    pub deployments: Vec<KubeDeploymentStatus>,
    pub services: Vec<KubeServiceStatus>,
    pub volumes: Vec<KubeVolumeStatus>,
    pub pods: Vec<KubePodStatus>,
}

/// Delete the project from a cluster: its Deployments, Services, ConfigMaps and Secrets,
/// and its PersistentVolumeClaims only with `volumes`.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeDeleteRequest {
    pub project: String,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// Also delete its PersistentVolumeClaims (their data is lost).
    pub volumes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct KubeDeleteResult {
    pub deleted: Vec<KubeObject>,
    /// PersistentVolumeClaims left in place (`volumes: false`).
    pub kept: Vec<KubeObject>,
}
