//! The container service proper. Every container has a record (in memory and in
//! `containers.db`), a directory `<data-root>/containers/<id>/` (overlay `upper`, `work`,
//! `rootfs` mountpoint, `config.json`, `hosts`, `resolv.conf`, `hostname`, and the monitor's
//! `state/` with the json-file log), and, while it runs, one berth-monitor process. The
//! engine learns of an exit through a pidfd on the monitor, so a restarted engine re-attaches
//! to running containers by their monitor pid.

use super::config::{ContainerConfig, CreateBody, HostConfig, NetworkingConfig};
use super::db::Db;
use super::mounts::MountRequest;
use super::spec::{MountKind, MountSpec, NetNs};
use super::{human, names, ContainerOptions, ExecTarget, RootfsGuard};
use crate::events::Events;
use crate::images::{Error, ImageService, Result};
use crate::monitor::{self, LogStream};
use crate::network::{Networks, Protocol};
use crate::volumes::Volumes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// A container's persisted record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// `Config.Image` as the client gave it.
    pub image: String,
    /// The image ID (config digest).
    pub image_id: String,
    pub manifest: String,
    pub lowerdirs: Vec<PathBuf>,
    pub config: ContainerConfig,
    pub host: HostConfig,
    pub networking: NetworkingConfig,
    pub mounts: Vec<MountRecord>,
    pub state: RunState,
    pub restart_count: u32,
}

/// A mount with its volume name settled (anonymous volumes get theirs at create).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountRecord {
    pub request: MountRequest,
    pub anonymous: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    pub pid: i32,
    pub monitor_pid: i32,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub error: String,
    /// Stopped by the user: restart policies leave it alone (`unless-stopped` also across
    /// engine restarts).
    pub manually_stopped: bool,
    /// Healthcheck results while a check is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

impl RunState {
    fn running(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused")
    }
}

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = Error;
    fn from_str(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!(
                "invalid condition: \"{other}\": use not-running, next-exit or removed"
            ))),
        }
    }
}

/// `GET /containers/{id}/logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// Last N lines (None: all).
    pub tail: Option<usize>,
    /// Unix seconds (fractional), inclusive.
    pub since: Option<f64>,
    pub until: Option<f64>,
}

/// What waiters watch: bumped on every exit and on removal.
#[derive(Debug, Clone, Default)]
struct Gen {
    exits: u64,
    code: i64,
    removed: bool,
}

struct Ctr {
    id: String,
    rec: Mutex<Record>,
    /// Serialises lifecycle operations (start, stop, remove, ...).
    op: Arc<tokio::sync::Mutex<()>>,
    tx: watch::Sender<Gen>,
    mounted: AtomicBool,
    /// Consecutive quick restarts (for the back-off).
    restarts_in_row: AtomicU32,
    /// Held while an exit is recorded and its resources released: a start or a removal
    /// takes it first, so it never races the release of the previous run.
    exit_lock: Arc<tokio::sync::Mutex<()>>,
    started: Mutex<Option<Instant>>,
    /// Attached output streams still delivering this run's output: `--rm` waits for them
    /// before it removes the container (and its log), so a short run's output is not lost.
    streams: Arc<AtomicUsize>,
}

/// Counts one attached output stream while it lives.
struct StreamGuard(Arc<AtomicUsize>);

impl StreamGuard {
    fn new(n: &Arc<AtomicUsize>) -> StreamGuard {
        n.fetch_add(1, Ordering::SeqCst);
        StreamGuard(Arc::clone(n))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ctr {
    fn rec(&self) -> std::sync::MutexGuard<'_, Record> {
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Inner {
    opts: ContainerOptions,
    images: ImageService,
    volumes: Arc<Volumes>,
    networks: Arc<Mutex<Networks>>,
    events: Events,
    db: Mutex<Db>,
    map: RwLock<HashMap<String, Arc<Ctr>>>,
    runtime_bin: PathBuf,
    monitor_bin: PathBuf,
    runtime_root: PathBuf,
    init_bin: Option<PathBuf>,
    shutting_down: AtomicBool,
}

/// The container service. Cheap to clone.
#[derive(Clone)]
pub struct ContainerService {
    inner: Arc<Inner>,
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::internal(format!("{what}: {e}"))
}

fn no_such(id: &str) -> Error {
    Error::not_found(format!("No such container: {id}"))
}

/// Signal names and numbers as Docker takes them (`KILL`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            return Err(Error::invalid(format!(
                "invalid signal: {s}: use a name like SIGTERM or a number"
            )))
        }
    };
    Ok(n)
}

/// `5000/tcp` → (5000, 5000, tcp); `7000-7002/udp` → a range.
fn parse_port_key(k: &str) -> Result<(u16, u16, Protocol)> {
    let bad = || {
        Error::invalid(format!(
            "invalid port specification: \"{k}\": use PORT[-PORT][/tcp|/udp]"
        ))
    };
    let (ports, proto) = match k.split_once('/') {
        Some((p, "tcp")) | Some((p, "")) => (p, Protocol::Tcp),
        Some((p, "udp")) => (p, Protocol::Udp),
        Some((_, other)) => {
            return Err(Error::invalid(format!(
                "invalid proto: \"{other}\" in port {k}: use tcp or udp"
            )))
        }
        None => (k, Protocol::Tcp),
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b, proto))
}

/// Host port spec: "" / "0" → ephemeral; "8080"; "8000-8010".
fn parse_host_ports(s: &str, n: u16) -> Result<Vec<u16>> {
    if s.is_empty() || s == "0" {
        return Ok(vec![0; n as usize]);
    }
    let bad = || {
        Error::invalid(format!(
            "invalid host port \"{s}\": use a number 1-65535 or a range like 8000-8010"
        ))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let a = a.parse::<u16>().map_err(|_| bad())?;
            let b = b.parse::<u16>().map_err(|_| bad())?;
            if a == 0 || b < a {
                return Err(bad());
            }
            if n == 1 {
                // Docker picks one free port from the range; we take the first.
                return Ok(vec![a]);
            }
            if b - a + 1 != n {
                return Err(Error::invalid(format!(
                    "host port range {s} does not match the container port range ({n} ports)"
                )));
            }
            Ok((a..=b).collect())
        }
        None => {
            let p = s.parse::<u16>().map_err(|_| bad())?;
            if p == 0 {
                return Err(bad());
            }
            Ok((0..n).map(|i| p.saturating_add(i)).collect())
        }
    }
}

/// One port to publish.
#[derive(Debug, Clone, PartialEq)]
struct Publish {
    host_ip: Ipv4Addr,
    host_port: u16,
    container_port: u16,
    proto: Protocol,
}

fn publish_plan(cfg: &ContainerConfig, host: &HostConfig) -> Result<Vec<Publish>> {
    let mut out = Vec::new();
    let mut bound = std::collections::BTreeSet::new();
    if let Some(pb) = &host.port_bindings {
        for (k, bindings) in pb {
            let (a, b, proto) = parse_port_key(k)?;
            let n = b - a + 1;
            let list = bindings.clone().unwrap_or_default();
            let list = if list.is_empty() {
                vec![Default::default()]
            } else {
                list
            };
            for bnd in list {
                let super::config::PortBinding { host_ip, host_port } = bnd;
                let ip = if host_ip.is_empty() {
                    Ipv4Addr::UNSPECIFIED
                } else {
                    host_ip.parse::<Ipv4Addr>().map_err(|_| {
                        Error::invalid(format!(
                            "invalid host IP \"{host_ip}\" for port {k}: use an IPv4 address"
                        ))
                    })?
                };
                let hosts = parse_host_ports(&host_port, n)?;
                for (i, hp) in hosts.into_iter().enumerate() {
                    let cp = a + i as u16;
                    bound.insert((cp, proto.to_string()));
                    out.push(Publish {
                        host_ip: ip,
                        host_port: hp,
                        container_port: cp,
                        proto,
                    });
                }
            }
        }
    }
    if host.publish_all_ports {
        if let Some(exposed) = &cfg.exposed_ports {
            for k in exposed.keys() {
                let (a, b, proto) = parse_port_key(k)?;
                for cp in a..=b {
                    if bound.insert((cp, proto.to_string())) {
                        out.push(Publish {
                            host_ip: Ipv4Addr::UNSPECIFIED,
                            host_port: 0,
                            container_port: cp,
                            proto,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The network a container's primary interface goes on, from `NetworkMode`.
enum NetMode {
    Bridge(String),
    Host,
    None,
    Container(String),
}

fn net_mode(host: &HostConfig) -> NetMode {
    match host.network_mode.as_str() {
        "" | "default" | "bridge" => NetMode::Bridge("bridge".into()),
        "host" => NetMode::Host,
        "none" => NetMode::None,
        m => match m.strip_prefix("container:") {
            Some(c) => NetMode::Container(c.to_string()),
            None => NetMode::Bridge(m.to_string()),
        },
    }
}

fn lock_nets(n: &Mutex<Networks>) -> std::sync::MutexGuard<'_, Networks> {
    n.lock().unwrap_or_else(|p| p.into_inner())
}

impl ContainerService {
    /// Open the container database and reconcile with what is running: live containers are
    /// re-attached, dead ones get their exit recorded and their restart policy applied.
    pub async fn open(
        opts: ContainerOptions,
        images: ImageService,
        volumes: Arc<Volumes>,
        networks: Arc<Mutex<Networks>>,
        events: Events,
    ) -> Result<ContainerService> {
        let runtime_bin = opts.bin_dir.join("berth-runtime");
        let monitor_bin = opts.bin_dir.join("berth-monitor");
        for b in [&runtime_bin, &monitor_bin] {
            if !b.is_file() {
                return Err(Error::internal(format!(
                    "{} is missing: install berth-runtime and berth-monitor next to berthd \
                     (or set BERTH_BIN_DIR)",
                    b.display()
                )));
            }
        }
        let init_bin = [
            opts.bin_dir.join("docker-init"),
            PathBuf::from("/usr/bin/tini-static"),
            PathBuf::from("/usr/libexec/docker/docker-init"),
        ]
        .into_iter()
        .find(|p| p.is_file());
        let runtime_root = opts.exec_root.join("runtime");
        std::fs::create_dir_all(&runtime_root)
            .map_err(io_err(format!("creating {}", runtime_root.display())))?;
        let cdir = opts.data_root.join("containers");
        std::fs::create_dir_all(&cdir).map_err(io_err(format!("creating {}", cdir.display())))?;
        let db = Db::open(&opts.data_root.join("containers.db"))?;
        let records = db.all()?;
        let inner = Arc::new(Inner {
            opts,
            images,
            volumes,
            networks,
            events,
            db: Mutex::new(db),
            map: RwLock::new(HashMap::new()),
            runtime_bin,
            monitor_bin,
            runtime_root,
            init_bin,
            shutting_down: AtomicBool::new(false),
        });
        let svc = ContainerService { inner };
        let mut to_start = Vec::new();
        for rec in records {
            let ctr = svc.insert_ctr(rec);
            let (running, policy, manual) = {
                let r = ctr.rec();
                (
                    r.state.running() || r.state.status == "restarting",
                    r.host.restart_policy.name.clone(),
                    r.state.manually_stopped,
                )
            };
            if running {
                let state_dir = svc.state_dir(&ctr.id);
                match monitor::status(&state_dir) {
                    monitor::Status::Running { monitor_pid, .. } => {
                        info!(container = %ctr.id, "re-attached to running container");
                        ctr.mounted.store(true, Ordering::SeqCst);
                        svc.watch_exit(Arc::clone(&ctr), monitor_pid);
                        continue;
                    }
                    _ => {
                        svc.handle_exit(Arc::clone(&ctr)).await;
                        continue;
                    }
                }
            }
            let retry_left = {
                let r = ctr.rec();
                policy == "on-failure"
                    && r.state.exit_code != 0
                    && (r.host.restart_policy.maximum_retry_count == 0
                        || (r.restart_count as i64) < r.host.restart_policy.maximum_retry_count)
            };
            if policy == "always" || (!manual && (policy == "unless-stopped" || retry_left)) {
                to_start.push(Arc::clone(&ctr));
            }
        }
        for ctr in to_start {
            let s = svc.clone();
            tokio::spawn(async move {
                let _g = ctr.op.lock().await;
                if let Err(e) = s.do_start(&ctr).await {
                    warn!(container = %ctr.id, "restart policy: start failed: {e}");
                }
            });
        }
        Ok(svc)
    }

    /// Daemon shutdown: without live-restore, stop running containers (their restart
    /// policies bring them back at the next engine start).
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        if self.inner.opts.live_restore {
            return;
        }
        let ctrs: Vec<Arc<Ctr>> = self.all_ctrs();
        let mut tasks = Vec::new();
        for c in ctrs {
            if !c.rec().state.running() {
                continue;
            }
            let s = self.clone();
            tasks.push(tokio::spawn(async move {
                let timeout = c.rec().config.stop_timeout.unwrap_or(10);
                let _ = s.stop_ctr(&c, None, timeout, false).await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    fn insert_ctr(&self, rec: Record) -> Arc<Ctr> {
        let (tx, _) = watch::channel(Gen {
            exits: 0,
            code: rec.state.exit_code,
            removed: false,
        });
        let ctr = Arc::new(Ctr {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: Arc::new(tokio::sync::Mutex::new(())),
            tx,
            mounted: AtomicBool::new(false),
            restarts_in_row: AtomicU32::new(0),
            exit_lock: Arc::new(tokio::sync::Mutex::new(())),
            started: Mutex::new(None),
            streams: Arc::new(AtomicUsize::new(0)),
        });
        self.inner
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ctr.id.clone(), Arc::clone(&ctr));
        ctr
    }

    fn all_ctrs(&self) -> Vec<Arc<Ctr>> {
        self.inner
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// By full ID, name (with or without `/`), or unique ID prefix.
    fn find(&self, key: &str) -> Result<Arc<Ctr>> {
        let map = self.inner.map.read().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(Arc::clone(c));
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.rec().name == name) {
            return Ok(Arc::clone(c));
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(no_such(key));
        }
        let mut found = map.values().filter(|c| c.id.starts_with(key));
        match (found.next(), found.next()) {
            (Some(c), None) => Ok(Arc::clone(c)),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(no_such(key)),
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.inner.opts.data_root.join("containers").join(id)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("state")
    }

    fn save(&self, ctr: &Ctr) -> Result<()> {
        let rec = ctr.rec().clone();
        self.inner
            .db
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(&rec)
    }

    fn emit(&self, ctr: &Ctr, action: &str, extra: &[(&str, String)]) {
        let (name, image, labels) = {
            let r = ctr.rec();
            (r.name.clone(), r.image.clone(), r.config.labels.clone())
        };
        let mut attrs: BTreeMap<String, String> = labels;
        attrs.insert("name".into(), name);
        attrs.insert("image".into(), image);
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.inner.events.emit("container", action, &ctr.id, attrs);
    }

    // ---------------------------------------------------------------- create

    /// `POST /containers/create`. Returns the new ID and warnings.
    pub async fn create(
        &self,
        mut body: CreateBody,
        name: Option<&str>,
    ) -> Result<(String, Vec<String>)> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !names::valid_name(n) {
                    return Err(Error::invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                Some(n.to_string())
            }
            None => None,
        };
        if body.config.image.is_empty() {
            return Err(Error::invalid(
                "no image given: set Config.Image (docker run IMAGE)",
            ));
        }
        let policy = &body.host_config.restart_policy;
        match policy.name.as_str() {
            "" | "no" | "always" | "unless-stopped" => {
                if policy.maximum_retry_count != 0 {
                    return Err(Error::invalid(format!(
                        "invalid restart policy: maximum retry count can only be used with \
                         'on-failure', not '{}'",
                        policy.name
                    )));
                }
            }
            "on-failure" => {
                if policy.maximum_retry_count < 0 {
                    return Err(Error::invalid(
                        "invalid restart policy: maximum retry count must be a positive number",
                    ));
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "invalid restart policy '{other}': use no, always, unless-stopped or \
                     on-failure[:max-retries]"
                )))
            }
        }
        if body.host_config.auto_remove && !matches!(policy.name.as_str(), "" | "no") {
            return Err(Error::invalid(
                "can't create 'AutoRemove' container with restart policy: use --rm or \
                 --restart, not both",
            ));
        }
        if let Some(sig) = &body.config.stop_signal {
            parse_signal(sig)?;
        }
        // Validate ports and the network before touching anything.
        publish_plan(&body.config, &body.host_config)?;
        let mode = net_mode(&body.host_config);
        // The docker CLI names the primary network's settings "default" (or by the mode).
        if let NetMode::Bridge(primary) = &mode {
            // The endpoints are the networks the container is on (the mode names the first);
            // connect and disconnect edit them, like Docker's.
            let eps = &mut body.networking_config.endpoints_config;
            let ep = eps.remove("default").unwrap_or_default();
            eps.entry(primary.clone()).or_insert(ep);
        } else {
            body.networking_config.endpoints_config.clear();
        }
        if body.host_config.network_mode == "default" {
            body.host_config.network_mode = "bridge".into();
        }
        {
            let nets = Arc::clone(&self.inner.networks);
            let mut wanted: Vec<String> = body
                .networking_config
                .endpoints_config
                .keys()
                .cloned()
                .collect();
            match &mode {
                NetMode::Bridge(n) => wanted.push(n.clone()),
                NetMode::Container(c) => {
                    self.find(c)?;
                }
                _ => {}
            }
            for n in wanted {
                let g = lock_nets(&nets);
                if let Err(e) = g.get(&n) {
                    let _ = e;
                    return Err(Error::not_found(format!("network {n} not found")));
                }
            }
        }
        let id = crate::ids::new_id();
        let img = self
            .inner
            .images
            .pin_for_container(&body.config.image, &id)
            .await?;
        let result = self.create_pinned(&mut body, name, &id, img).await;
        if result.is_err() {
            let _ = self.inner.images.unpin_container(&id).await;
        }
        result
    }

    async fn create_pinned(
        &self,
        body: &mut CreateBody,
        name: Option<String>,
        id: &str,
        img: crate::images::RunImage,
    ) -> Result<(String, Vec<String>)> {
        let mut config = body.config.clone();
        super::spec::merge_image_config(&mut config, &img.config);
        if let Some(h) = &config.healthcheck {
            super::health::validate(h).map_err(Error::invalid)?;
        }
        // Bad capabilities, security options, ulimits, ... are refused now, not at start.
        super::spec::validate(&config, &body.host_config)?;
        for entry in body.host_config.extra_hosts.iter().flatten() {
            let ok = entry.split_once([':', '=']).is_some_and(|(name, addr)| {
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                !name.is_empty()
                    && (addr == "host-gateway" || addr.parse::<std::net::IpAddr>().is_ok())
            });
            if !ok {
                return Err(Error::invalid(format!(
                    "invalid ExtraHosts entry {entry:?}: expected name:ip (or name:host-gateway), \
                     e.g. --add-host db:10.0.0.5"
                )));
            }
        }
        let image_volumes = config.volumes.clone().unwrap_or_default();
        let requests = super::mounts::parse(&body.host_config, &image_volumes)?;
        let mut mounts = Vec::new();
        for r in requests {
            match r {
                MountRequest::Volume {
                    name: None,
                    destination,
                    read_only,
                    no_copy,
                    labels,
                } => mounts.push(MountRecord {
                    request: MountRequest::Volume {
                        name: Some(crate::ids::random_hex(32)),
                        destination,
                        read_only,
                        no_copy,
                        labels,
                    },
                    anonymous: true,
                }),
                other => mounts.push(MountRecord {
                    request: other,
                    anonymous: false,
                }),
            }
        }
        // Volumes exist from create on, like Docker's.
        for m in &mounts {
            if let MountRequest::Volume { name: Some(n), .. } = &m.request {
                let v = Arc::clone(&self.inner.volumes);
                let (n2, anon) = (n.clone(), m.anonymous);
                let (_, created) = tokio::task::spawn_blocking(move || v.prepare(&n2, anon))
                    .await
                    .map_err(|e| Error::internal(format!("volume worker: {e}")))??;
                if created {
                    let attrs = BTreeMap::from([("driver".to_string(), "local".to_string())]);
                    self.inner.events.emit("volume", "create", n, attrs);
                }
            }
        }
        let mut rec = Record {
            id: id.to_string(),
            name: String::new(),
            created: berth_time::now(),
            image: body.config.image.clone(),
            image_id: img.id,
            manifest: img.manifest,
            lowerdirs: img.lowerdirs,
            config,
            host: body.host_config.clone(),
            networking: body.networking_config.clone(),
            mounts,
            state: RunState {
                status: "created".into(),
                ..Default::default()
            },
            restart_count: 0,
        };
        if rec.config.hostname.is_empty() {
            rec.config.hostname = id[..12].to_string();
        }
        let dir = self.dir(id);
        for sub in ["upper", "work", "rootfs", "state"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(io_err(format!("creating {}", dir.join(sub).display())))?;
        }
        let mut salt = 0;
        loop {
            rec.name = match &name {
                Some(n) => n.clone(),
                None => names::random_name(crate::ids::random_u64(), salt),
            };
            let r = self
                .inner
                .db
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(&rec);
            match r {
                Ok(()) => break,
                Err(e)
                    if name.is_none()
                        && salt < 50
                        && e.kind == berth_store::ErrorKind::Conflict =>
                {
                    salt += 1;
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            }
        }
        let ctr = self.insert_ctr(rec);
        self.emit(&ctr, "create", &[]);
        Ok((id.to_string(), Vec::new()))
    }

    // ---------------------------------------------------------------- start

    /// `POST /containers/{id}/start`. `Ok(false)`: it was already running (304).
    pub async fn start(&self, key: &str) -> Result<bool> {
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let status = ctr.rec().state.status.clone();
        match status.as_str() {
            "running" => return Ok(false),
            "paused" => {
                return Err(Error::conflict(format!(
                    "cannot start a paused container {key}, try unpause instead"
                )))
            }
            "removing" | "dead" => {
                return Err(Error::conflict(format!(
                    "container {key} is marked for removal and cannot be started"
                )))
            }
            _ => {}
        }
        ctr.rec().state.manually_stopped = false;
        ctr.restarts_in_row.store(0, Ordering::SeqCst);
        self.do_start(&ctr).await?;
        Ok(true)
    }

    /// Start with the op lock held.
    async fn do_start(&self, ctr: &Arc<Ctr>) -> Result<()> {
        // The previous run's release must be complete.
        drop(ctr.exit_lock.lock().await);
        let rec = ctr.rec().clone();
        // `container:<x>` joins another container's network namespace.
        let join_ns = match net_mode(&rec.host) {
            NetMode::Container(other) => {
                let o = self.find(&other)?;
                let (running, pid) = {
                    let r = o.rec();
                    (r.state.running(), r.state.pid)
                };
                if !running {
                    return Err(Error::conflict(format!(
                        "cannot join network of a non running container: {other}"
                    )));
                }
                Some(PathBuf::from(format!("/proc/{pid}/ns/net")))
            }
            _ => None,
        };
        let svc = self.clone();
        let c = Arc::clone(ctr);
        let res = tokio::task::spawn_blocking(move || svc.start_blocking(&c, &rec, join_ns))
            .await
            .map_err(|e| Error::internal(format!("start worker: {e}")))?;
        match res {
            Ok(h) => {
                {
                    let mut r = ctr.rec();
                    r.state.status = "running".into();
                    r.state.pid = h.pid;
                    r.state.monitor_pid = h.monitor_pid;
                    r.state.started_at = berth_time::now();
                    r.state.finished_at = "0001-01-01T00:00:00Z".into();
                    r.state.exit_code = 0;
                    r.state.oom_killed = false;
                    r.state.error.clear();
                }
                *ctr.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                let check =
                    ctr.rec().config.healthcheck.as_ref().and_then(|h| {
                        super::health::command(h).map(|c| (c, super::health::timing(h)))
                    });
                ctr.rec().state.health = check.as_ref().map(|_| super::health::Health {
                    status: "starting".into(),
                    ..Default::default()
                });
                self.save(ctr)?;
                self.emit(ctr, "start", &[]);
                self.watch_exit(Arc::clone(ctr), h.monitor_pid);
                if let Some((cmd, timing)) = check {
                    self.watch_health(Arc::clone(ctr), cmd, timing);
                }
                Ok(())
            }
            Err(e) => {
                // Docker's codes for a process that could not be started: 127 not found,
                // 126 not executable, 128 otherwise.
                let m = e.message.to_ascii_lowercase();
                let code = if m.contains("no such file") || m.contains("not found") {
                    127
                } else if m.contains("permission denied") || m.contains("exec format") {
                    126
                } else {
                    128
                };
                {
                    let mut r = ctr.rec();
                    r.state.error = e.message.clone();
                    if r.state.status != "exited" {
                        r.state.status = "created".into();
                    }
                    r.state.exit_code = code;
                }
                let _ = self.save(ctr);
                // Whoever waits for this run (docker run's attach and wait) gets its end.
                ctr.tx.send_modify(|g| {
                    g.exits += 1;
                    g.code = code;
                });
                // `--rm`: a container that could not start is removed too, like Docker's
                // (the caller holds the op lock, so the removal runs after it).
                if ctr.rec().host.auto_remove {
                    let svc = self.clone();
                    let id = ctr.id.clone();
                    tokio::spawn(async move {
                        if let Err(e) = svc.remove(&id, true, true).await {
                            debug!(container = %id, "auto-remove after a failed start: {e}");
                        }
                    });
                }
                Err(e)
            }
        }
    }

    fn overlay_mount(&self, ctr: &Ctr, rec: &Record) -> Result<PathBuf> {
        let dir = self.dir(&rec.id);
        let rootfs = dir.join("rootfs");
        if ctr.mounted.load(Ordering::SeqCst) {
            return Ok(rootfs);
        }
        let mut lowers: Vec<String> = rec
            .lowerdirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if lowers.is_empty() {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).map_err(io_err("creating the empty lower dir"))?;
            lowers.push(empty.display().to_string());
        }
        for l in &lowers {
            if l.contains(',') || l.contains(':') {
                return Err(Error::internal(format!(
                    "layer path {l} contains ',' or ':' which overlayfs cannot take; move the \
                     data root"
                )));
            }
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        if data.len() > 4000 {
            return Err(Error::internal(format!(
                "image {} has too many layers for one overlay mount ({} bytes of options); \
                 flatten it",
                rec.image,
                data.len()
            )));
        }
        nix::mount::mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| Error::internal(format!("mounting the root filesystem of {}: {e}", rec.id)))?;
        ctr.mounted.store(true, Ordering::SeqCst);
        Ok(rootfs)
    }

    /// Unmount the root filesystem (whoever mounted it: this engine or the one before a
    /// restart); not being mounted is fine.
    fn overlay_unmount(&self, ctr: &Ctr) {
        ctr.mounted.store(false, Ordering::SeqCst);
        let rootfs = self.dir(&ctr.id).join("rootfs");
        loop {
            match nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => continue, // stacked mounts: take them all
                Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
                Err(e) => {
                    warn!(container = %ctr.id, "unmounting the root filesystem: {e}");
                    break;
                }
            }
        }
    }

    fn start_blocking(
        &self,
        ctr: &Ctr,
        rec: &Record,
        join_ns: Option<PathBuf>,
    ) -> Result<monitor::MonitorHandle> {
        let mut undo_net = false;
        let r = self.start_steps(ctr, rec, join_ns, &mut undo_net);
        if r.is_err() {
            if undo_net {
                let mut n = lock_nets(&self.inner.networks);
                if let Err(e) = n.detach_all(&rec.id) {
                    warn!(container = %rec.id, "undoing the network setup: {e}");
                }
            }
            self.overlay_unmount(ctr);
        }
        r
    }

    fn start_steps(
        &self,
        ctr: &Ctr,
        rec: &Record,
        join_ns: Option<PathBuf>,
        undo_net: &mut bool,
    ) -> Result<monitor::MonitorHandle> {
        let id = &rec.id;
        let _ = self.dir(id);
        let t0 = Instant::now();
        let rootfs = self.overlay_mount(ctr, rec)?;
        let t_mount = t0.elapsed();
        // Networking.
        let short = id[..12].to_string();
        let aliases_for = |net: &str| -> Vec<String> {
            let mut a = vec![rec.name.clone(), short.clone()];
            if let Some(ep) = rec.networking.endpoints_config.get(net) {
                a.extend(ep.aliases.clone().unwrap_or_default());
            }
            if !rec.config.hostname.is_empty() && rec.config.hostname != short {
                a.push(rec.config.hostname.clone());
            }
            a.sort();
            a.dedup();
            a
        };
        let hostname = rec.config.hostname.clone();
        let mut gateway = None;
        let (netns, hosts, resolv) = match net_mode(&rec.host) {
            NetMode::Host => {
                let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                (NetNs::Host, hosts, resolv)
            }
            NetMode::Container(_) => {
                let p = join_ns.unwrap_or_default();
                (NetNs::Path(p), base_hosts(&hostname, &[]), String::new())
            }
            NetMode::None => {
                let mut n = lock_nets(&self.inner.networks);
                let p = n.attach_none(id).map_err(net_err)?;
                *undo_net = true;
                (NetNs::Path(p), base_hosts(&hostname, &[]), String::new())
            }
            NetMode::Bridge(mode_net) => {
                let eps = &rec.networking.endpoints_config;
                let primary = if eps.contains_key(&mode_net) {
                    Some(mode_net)
                } else {
                    eps.keys().next().cloned()
                };
                let mut n = lock_nets(&self.inner.networks);
                let Some(primary) = primary else {
                    // Disconnected from every network: loopback only.
                    let p = n.attach_none(id).map_err(net_err)?;
                    *undo_net = true;
                    return self.start_rest(
                        ctr,
                        rec,
                        rootfs,
                        NetNs::Path(p),
                        base_hosts(&hostname, &[]) + &extra_hosts(&rec.host, None),
                        String::new(),
                        t0,
                        t_mount,
                    );
                };
                let ep = n
                    .attach(
                        &primary,
                        id,
                        &aliases_for(&primary),
                        requested_ip(rec, &primary),
                    )
                    .map_err(net_err)?;
                *undo_net = true;
                let netns = ep.netns_path.clone();
                gateway = Some(ep.gateway);
                let mut ips = vec![ep.ip];
                for extra in eps.keys() {
                    if extra == &primary {
                        continue;
                    }
                    let ep = n
                        .connect(extra, id, &aliases_for(extra), requested_ip(rec, extra))
                        .map_err(net_err)?;
                    ips.push(ep.ip);
                }
                for p in publish_plan(&rec.config, &rec.host)? {
                    n.publish(id, p.host_ip, p.host_port, p.container_port, p.proto)
                        .map_err(net_err)?;
                }
                let resolv = n.resolv_conf(id);
                (NetNs::Path(netns), base_hosts(&hostname, &ips), resolv)
            }
        };
        let hosts = hosts + &extra_hosts(&rec.host, gateway);
        self.start_rest(ctr, rec, rootfs, netns, hosts, resolv, t0, t_mount)
    }

    /// The part of a start after networking: files, mounts, spec, monitor.
    #[allow(clippy::too_many_arguments)]
    fn start_rest(
        &self,
        _ctr: &Ctr,
        rec: &Record,
        rootfs: PathBuf,
        netns: NetNs,
        hosts: String,
        resolv: String,
        t0: Instant,
        t_mount: Duration,
    ) -> Result<monitor::MonitorHandle> {
        let id = &rec.id;
        let dir = self.dir(id);
        let hostname = rec.config.hostname.clone();
        let t_net = t0.elapsed();
        let resolv = if resolv.is_empty() {
            "nameserver 127.0.0.1\n".to_string()
        } else {
            resolv
        };
        let hosts_file = dir.join("hosts");
        let resolv_file = dir.join("resolv.conf");
        let hostname_file = dir.join("hostname");
        std::fs::write(&hosts_file, hosts).map_err(io_err("writing hosts"))?;
        std::fs::write(&resolv_file, resolv).map_err(io_err("writing resolv.conf"))?;
        std::fs::write(&hostname_file, format!("{hostname}\n"))
            .map_err(io_err("writing hostname"))?;
        // Mounts.
        let mut specs = Vec::new();
        for m in &rec.mounts {
            match &m.request {
                MountRequest::Bind {
                    source,
                    destination,
                    read_only,
                    propagation,
                    create_missing,
                } => {
                    let src = PathBuf::from(source);
                    if !src.exists() {
                        if *create_missing {
                            std::fs::create_dir_all(&src).map_err(|e| {
                                Error::invalid(format!(
                                    "error while creating mount source path '{source}': {e}"
                                ))
                            })?;
                        } else {
                            return Err(Error::invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does \
                                 not exist: {source}"
                            )));
                        }
                    }
                    specs.push(MountSpec {
                        destination: destination.clone(),
                        kind: MountKind::Bind {
                            source: src,
                            propagation: propagation.clone(),
                            recursive: true,
                        },
                        read_only: *read_only,
                    });
                }
                MountRequest::Volume {
                    name: Some(name),
                    destination,
                    read_only,
                    no_copy,
                    ..
                } => {
                    let (path, _created) = self.inner.volumes.prepare(name, m.anonymous)?;
                    if !no_copy {
                        self.inner.volumes.populate(name, &rootfs, destination)?;
                    }
                    specs.push(MountSpec {
                        destination: destination.clone(),
                        kind: MountKind::Bind {
                            source: path,
                            propagation: String::new(),
                            recursive: true,
                        },
                        read_only: *read_only,
                    });
                }
                MountRequest::Volume { name: None, .. } => {
                    return Err(Error::internal("anonymous volume without a name"))
                }
                MountRequest::Tmpfs {
                    destination,
                    options,
                } => specs.push(MountSpec {
                    destination: destination.clone(),
                    kind: MountKind::Tmpfs {
                        options: options.clone(),
                    },
                    read_only: false,
                }),
            }
        }
        let init = if rec.host.init == Some(true) {
            self.inner.init_bin.as_deref()
        } else {
            None
        };
        let input = super::spec::SpecInput {
            id,
            config: &rec.config,
            host: &rec.host,
            rootfs: &rootfs,
            mounts: &specs,
            netns,
            hosts_file: &hosts_file,
            resolv_conf: &resolv_file,
            hostname_file: &hostname_file,
            cgroups_path: format!("berth/{id}"),
            init_path: init,
        };
        let spec = super::spec::build(&input)?;
        let text = serde_json::to_vec_pretty(&spec)
            .map_err(|e| Error::internal(format!("encoding the runtime spec: {e}")))?;
        std::fs::write(dir.join("config.json"), text).map_err(io_err("writing config.json"))?;
        // A fresh run: the monitor's files of the last one go (the log stays).
        let state_dir = dir.join("state");
        for f in [
            "exit.json",
            "started",
            "failed.json",
            "monitor.pid",
            "container.pid",
        ] {
            let _ = std::fs::remove_file(state_dir.join(f));
        }
        let (max_size, max_files) = log_limits(&rec.host)?;
        let t_spec = t0.elapsed();
        let h = monitor::spawn(&monitor::MonitorOpts {
            monitor_bin: self.inner.monitor_bin.clone(),
            runtime: self.inner.runtime_bin.clone(),
            runtime_root: self.inner.runtime_root.clone(),
            bundle: dir.clone(),
            id: id.clone(),
            state_dir,
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            // Docker's rule: StdinOnce closes stdin when the first client goes, but not with a
            // tty (`run -it` then Ctrl-P Ctrl-Q leaves a shell a later `attach` types into).
            stdin_once: rec.config.stdin_once && !rec.config.tty,
            log_max_size: max_size,
            log_max_files: max_files,
            // The client's terminal size, so the first `stty size` is already right.
            console_size: rec
                .host
                .console_size
                .filter(|[h, w]| *h > 0 && *w > 0)
                .map(|[h, w]| (h.min(u16::MAX as u64) as u16, w.min(u16::MAX as u64) as u16)),
        })
        .map_err(|e| Error::invalid(runtime_message(&e.0)))?;
        debug!(
            container = %id,
            mount_ms = t_mount.as_secs_f64() * 1e3,
            network_ms = (t_net - t_mount).as_secs_f64() * 1e3,
            spec_ms = (t_spec - t_net).as_secs_f64() * 1e3,
            monitor_ms = (t0.elapsed() - t_spec).as_secs_f64() * 1e3,
            "started"
        );
        Ok(h)
    }

    /// Run the healthcheck until this run of the container ends.
    fn watch_health(&self, ctr: Arc<Ctr>, cmd: Vec<String>, t: super::health::Timing) {
        let svc = self.clone();
        let run = ctr.tx.borrow().exits;
        let started = Instant::now();
        tokio::spawn(async move {
            loop {
                let wait = if super::health::in_start_period(started, &t) {
                    t.start_interval.min(t.interval)
                } else {
                    t.interval
                };
                tokio::time::sleep(wait).await;
                let alive = {
                    let g = ctr.tx.borrow();
                    g.exits == run && !g.removed
                };
                if !alive || ctr.rec().state.status != "running" {
                    return;
                }
                let p = super::health::probe(
                    &svc.inner.runtime_bin,
                    &svc.inner.runtime_root,
                    &ctr.id,
                    &cmd,
                    t.timeout,
                )
                .await;
                if ctr.tx.borrow().exits != run {
                    return;
                }
                let in_start = super::health::in_start_period(started, &t);
                let changed = {
                    let mut r = ctr.rec();
                    let h = r.state.health.get_or_insert_with(Default::default);
                    let c = super::health::record(h, p, t.retries, in_start);
                    c.then(|| h.status.clone())
                };
                if let Some(status) = changed {
                    let _ = svc.save(&ctr);
                    svc.emit(&ctr, &format!("health_status: {status}"), &[]);
                }
            }
        });
    }

    /// Wait for the monitor to exit (pidfd), then record the exit.
    fn watch_exit(&self, ctr: Arc<Ctr>, monitor_pid: i32) {
        let svc = self.clone();
        tokio::spawn(async move {
            // SAFETY: pidfd_open has no memory arguments.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, monitor_pid, 0) };
            if fd >= 0 {
                // SAFETY: a new fd we own.
                let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
                // SAFETY: we own the fd and keep it open for the AsyncFd's lifetime.
                match unsafe { tokio::io::unix::AsyncFd::register(owned) } {
                    Ok(afd) => {
                        let _ = afd.readable().await;
                    }
                    Err(e) => {
                        warn!(container = %ctr.id, "watching the monitor: {e}; polling");
                        while monitor_alive(monitor_pid) {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
            svc.handle_exit(ctr).await;
        });
    }

    /// The monitor is gone: record the exit, release resources, apply the restart policy.
    async fn handle_exit(&self, ctr: Arc<Ctr>) {
        let state_dir = self.state_dir(&ctr.id);
        let exit_guard = Arc::clone(&ctr.exit_lock).lock_owned().await;
        let status = tokio::task::spawn_blocking(move || {
            // The monitor writes exit.json before it exits; give a racing reader a moment.
            let mut st = monitor::status(&state_dir);
            for _ in 0..20 {
                if !matches!(st, monitor::Status::Running { .. }) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                st = monitor::status(&state_dir);
            }
            st
        })
        .await
        .unwrap_or(monitor::Status::Unknown);
        let (code, finished, oom) = match status {
            monitor::Status::Exited {
                code,
                finished_at,
                oom,
            } => (code as i64, finished_at, oom),
            _ => (255, berth_time::now(), false),
        };
        let (policy, max, manual, auto_remove) = {
            let mut r = ctr.rec();
            r.state.status = "exited".into();
            r.state.pid = 0;
            r.state.monitor_pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = finished;
            r.state.oom_killed = oom;
            (
                r.host.restart_policy.name.clone(),
                r.host.restart_policy.maximum_retry_count,
                r.state.manually_stopped,
                r.host.auto_remove,
            )
        };
        if let Err(e) = self.save(&ctr) {
            warn!(container = %ctr.id, "recording the exit: {e}");
        }
        self.emit(&ctr, "die", &[("exitCode", code.to_string())]);
        ctr.tx.send_modify(|g| {
            g.exits += 1;
            g.code = code;
        });
        debug!(container = %ctr.id, code, "exited");
        // Waiters have their answer; now give back the network and the root mount.
        let svc = self.clone();
        let c = Arc::clone(&ctr);
        let _ = tokio::task::spawn_blocking(move || svc.release(&c)).await;
        drop(exit_guard);
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let restart = !manual
            && match policy.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => code != 0 && (max == 0 || (ctr.rec().restart_count as i64) < max),
                _ => false,
            };
        if restart {
            let ran = ctr
                .started
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|t| t.elapsed())
                .unwrap_or_default();
            let n = if ran > Duration::from_secs(10) {
                ctr.restarts_in_row.store(0, Ordering::SeqCst);
                0
            } else {
                ctr.restarts_in_row.fetch_add(1, Ordering::SeqCst)
            };
            let delay = Duration::from_millis(100u64 << n.min(10)).min(Duration::from_secs(60));
            ctr.rec().state.status = "restarting".into();
            let svc = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _g = ctr.op.lock().await;
                let go = {
                    let r = ctr.rec();
                    r.state.status == "restarting" && !r.state.manually_stopped
                };
                if !go || ctr.tx.borrow().removed {
                    if ctr.rec().state.status == "restarting" {
                        ctr.rec().state.status = "exited".into();
                    }
                    return;
                }
                ctr.rec().restart_count += 1;
                if let Err(e) = svc.do_start(&ctr).await {
                    warn!(container = %ctr.id, "restart policy: {e}");
                    ctr.rec().state.status = "exited".into();
                    let _ = svc.save(&ctr);
                }
            });
        } else if auto_remove {
            let svc = self.clone();
            let id = ctr.id.clone();
            let streams = Arc::clone(&ctr.streams);
            tokio::spawn(async move {
                // Attached clients get the whole output first (bounded: a stuck client
                // does not keep the container forever).
                let deadline = Instant::now() + Duration::from_secs(10);
                while streams.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if let Err(e) = svc.remove(&id, false, true).await {
                    if e.kind != berth_store::ErrorKind::NotFound {
                        warn!(container = %id, "auto-remove: {e}");
                    }
                }
            });
        }
    }

    /// Undo a run's resources: the network namespace and ports, the root mount.
    fn release(&self, ctr: &Ctr) {
        let t0 = Instant::now();
        {
            let mut n = lock_nets(&self.inner.networks);
            if n.endpoints(&ctr.id).is_empty() {
                // `none` mode or no network: detach_all still removes the namespace.
            }
            if let Err(e) = n.detach_all(&ctr.id) {
                debug!(container = %ctr.id, "network release: {e}");
            }
        }
        let t_net = t0.elapsed();
        self.overlay_unmount(ctr);
        debug!(
            container = %ctr.id,
            network_ms = t_net.as_secs_f64() * 1e3,
            unmount_ms = (t0.elapsed() - t_net).as_secs_f64() * 1e3,
            "released"
        );
    }

    // ---------------------------------------------------------------- stop, kill

    /// `POST /containers/{id}/stop`. `Ok(false)`: it was not running (304).
    pub async fn stop(
        &self,
        key: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<bool> {
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let t = timeout.or(ctr.rec().config.stop_timeout).unwrap_or(10);
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_signal(s)?),
            None => None,
        };
        self.stop_ctr(&ctr, sig, t, true).await
    }

    async fn stop_ctr(
        &self,
        ctr: &Arc<Ctr>,
        sig: Option<i32>,
        timeout: i64,
        manual: bool,
    ) -> Result<bool> {
        if manual {
            ctr.rec().state.manually_stopped = true;
            let _ = self.save(ctr);
        }
        let (status, pid) = {
            let r = ctr.rec();
            (r.state.status.clone(), r.state.pid)
        };
        if status == "restarting" {
            ctr.rec().state.status = "exited".into();
            return Ok(true);
        }
        if !matches!(status.as_str(), "running" | "paused") {
            return Ok(false);
        }
        let sig = match sig {
            Some(s) => s,
            None => match ctr.rec().config.stop_signal.as_deref() {
                Some(s) => parse_signal(s)?,
                None => libc::SIGTERM,
            },
        };
        let mut rx = ctr.tx.subscribe();
        let exits = rx.borrow().exits;
        if status == "paused" {
            let _ = self.runtime(&["resume", &ctr.id]).await;
        }
        self.emit(ctr, "kill", &[("signal", sig.to_string())]);
        signal_pid(pid, sig);
        let waited = tokio::time::timeout(
            Duration::from_secs(timeout.max(0) as u64),
            wait_exits(&mut rx, exits),
        )
        .await;
        if waited.is_err() {
            self.emit(ctr, "kill", &[("signal", libc::SIGKILL.to_string())]);
            signal_pid(pid, libc::SIGKILL);
            if tokio::time::timeout(Duration::from_secs(30), wait_exits(&mut rx, exits))
                .await
                .is_err()
            {
                return Err(Error::internal(format!(
                    "container {} did not exit after SIGKILL",
                    ctr.id
                )));
            }
        }
        self.emit(ctr, "stop", &[]);
        Ok(true)
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let ctr = self.find(key)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        let (running, pid) = {
            let r = ctr.rec();
            (r.state.running(), r.state.pid)
        };
        if !running {
            return Err(Error::conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                ctr.id
            )));
        }
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            ctr.rec().state.manually_stopped = true;
            let _ = self.save(&ctr);
        }
        self.emit(&ctr, "kill", &[("signal", sig.to_string())]);
        let mut rx = ctr.tx.subscribe();
        let exits = rx.borrow().exits;
        signal_pid(pid, sig);
        if sig == libc::SIGKILL {
            // Docker returns once the container is gone.
            let _ = tokio::time::timeout(Duration::from_secs(10), wait_exits(&mut rx, exits)).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        &self,
        key: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let t = timeout.or(ctr.rec().config.stop_timeout).unwrap_or(10);
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_signal(s)?),
            None => None,
        };
        self.stop_ctr(&ctr, sig, t, true).await?;
        ctr.rec().state.manually_stopped = false;
        ctr.rec().restart_count = 0;
        self.do_start(&ctr).await?;
        self.emit(&ctr, "restart", &[]);
        Ok(())
    }

    async fn runtime(&self, args: &[&str]) -> Result<()> {
        let out = tokio::process::Command::new(&self.inner.runtime_bin)
            .arg("--root")
            .arg(&self.inner.runtime_root)
            .args(args)
            .output()
            .await
            .map_err(io_err("running berth-runtime"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::internal(format!(
                "berth-runtime {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(&self, key: &str, pause: bool) -> Result<()> {
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let status = ctr.rec().state.status.clone();
        match (pause, status.as_str()) {
            (true, "running") => {
                self.runtime(&["pause", &ctr.id]).await?;
                ctr.rec().state.status = "paused".into();
                self.save(&ctr)?;
                self.emit(&ctr, "pause", &[]);
                Ok(())
            }
            (false, "paused") => {
                self.runtime(&["resume", &ctr.id]).await?;
                ctr.rec().state.status = "running".into();
                self.save(&ctr)?;
                self.emit(&ctr, "unpause", &[]);
                Ok(())
            }
            (true, "paused") => Err(Error::conflict(format!(
                "Container {} is already paused",
                ctr.id
            ))),
            (false, "running") => Err(Error::conflict(format!(
                "Container {} is not paused",
                ctr.id
            ))),
            _ => Err(Error::conflict(format!(
                "Container {} is not running",
                ctr.id
            ))),
        }
    }

    // ---------------------------------------------------------------- wait, remove, rename

    /// `POST /containers/{id}/wait`: resolves to the exit code. Subscribes before returning
    /// the future, so a wait issued before `start` sees the coming exit.
    pub fn wait(
        &self,
        key: &str,
        cond: WaitCondition,
    ) -> Result<impl std::future::Future<Output = i64> + Send + 'static> {
        let ctr = self.find(key)?;
        let mut rx = ctr.tx.subscribe();
        let (running, code) = {
            let r = ctr.rec();
            (
                r.state.running() || r.state.status == "restarting",
                r.state.exit_code,
            )
        };
        let start = rx.borrow().exits;
        Ok(async move {
            match cond {
                WaitCondition::NotRunning if !running => code,
                WaitCondition::NotRunning | WaitCondition::NextExit => loop {
                    if rx.borrow().exits > start {
                        return rx.borrow().code;
                    }
                    if rx.borrow().removed || rx.changed().await.is_err() {
                        return rx.borrow().code;
                    }
                },
                WaitCondition::Removed => loop {
                    if rx.borrow().removed {
                        return rx.borrow().code;
                    }
                    if rx.changed().await.is_err() {
                        return rx.borrow().code;
                    }
                },
            }
        })
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        if ctr.tx.borrow().removed {
            return Err(no_such(key));
        }
        let status = ctr.rec().state.status.clone();
        if matches!(status.as_str(), "running" | "paused" | "restarting") {
            if !force {
                let what = if status == "paused" {
                    "paused"
                } else {
                    "running"
                };
                return Err(Error::conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container \
                     before removing or force remove",
                    ctr.rec().name
                )));
            }
            ctr.rec().state.manually_stopped = true;
            if status == "restarting" {
                ctr.rec().state.status = "exited".into();
            } else {
                self.stop_ctr(&ctr, Some(libc::SIGKILL), 0, true).await?;
            }
        }
        drop(ctr.exit_lock.lock().await);
        ctr.rec().state.status = "removing".into();
        let svc = self.clone();
        let c = Arc::clone(&ctr);
        let rec = ctr.rec().clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            svc.release(&c);
            let dir = svc.dir(&c.id);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::internal(format!("removing {}: {e}", dir.display())));
                }
            }
            let _ = std::fs::remove_dir_all(svc.inner.runtime_root.join(&c.id));
            svc.inner
                .db
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .delete(&c.id)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("remove worker: {e}")))??;
        self.inner
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ctr.id);
        if let Err(e) = self.inner.images.unpin_container(&ctr.id).await {
            warn!(container = %ctr.id, "releasing the image: {e}");
        }
        if volumes {
            for m in &rec.mounts {
                if let (true, MountRequest::Volume { name: Some(n), .. }) =
                    (m.anonymous, &m.request)
                {
                    if self.volume_users(n).await.is_empty() {
                        let v = Arc::clone(&self.inner.volumes);
                        let n2 = n.clone();
                        let r = tokio::task::spawn_blocking(move || v.remove(&n2)).await;
                        if let Ok(Err(e)) = r {
                            warn!(volume = %n, "removing anonymous volume: {e}");
                        } else {
                            self.inner
                                .events
                                .emit("volume", "destroy", n, BTreeMap::new());
                        }
                    }
                }
            }
        }
        self.emit(&ctr, "destroy", &[]);
        ctr.tx.send_modify(|g| g.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename(&self, key: &str, new: &str) -> Result<()> {
        let new = new.strip_prefix('/').unwrap_or(new);
        if !names::valid_name(new) {
            return Err(Error::invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let old = ctr.rec().name.clone();
        if old == new {
            return Err(Error::invalid(format!(
                "Renaming a container with the same name as its current name: {new}"
            )));
        }
        if self.find(new).is_ok_and(|o| o.rec().name == new) {
            return Err(Error::conflict(format!(
                "Conflict. The container name \"/{new}\" is already in use. You have to remove \
                 (or rename) that container to be able to reuse that name."
            )));
        }
        ctr.rec().name = new.to_string();
        if let Err(e) = self.save(&ctr) {
            ctr.rec().name = old;
            return Err(e);
        }
        // Running containers are found by their new name at once.
        let nets = Arc::clone(&self.inner.networks);
        let (id, o, n) = (ctr.id.clone(), old.clone(), new.to_string());
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || lock_nets(&nets).rename_alias(&id, &o, &n)).await
        {
            warn!(container = %ctr.id, "renaming its DNS name: {e}");
        }
        self.emit(&ctr, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/prune`: removes stopped containers. Returns (IDs, bytes).
    pub async fn prune(&self, labels: &[String], until: Option<i64>) -> Result<(Vec<String>, u64)> {
        let mut gone = Vec::new();
        for c in self.all_ctrs() {
            let (stopped, lab, created) = {
                let r = c.rec();
                (
                    matches!(r.state.status.as_str(), "created" | "exited" | "dead"),
                    r.config.labels.clone(),
                    berth_time::parse_unix(&r.created).unwrap_or(0),
                )
            };
            if !stopped || !labels.iter().all(|l| label_match(&lab, l)) {
                continue;
            }
            if until.is_some_and(|u| created >= u) {
                continue;
            }
            if self.remove(&c.id, false, false).await.is_ok() {
                gone.push(c.id.clone());
            }
        }
        Ok((gone, 0))
    }

    // ---------------------------------------------------------------- list, inspect

    /// `GET /containers/json`.
    pub async fn list(
        &self,
        all: bool,
        limit: Option<usize>,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<Value>> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "status"
                    | "label"
                    | "name"
                    | "id"
                    | "ancestor"
                    | "network"
                    | "volume"
                    | "exited"
                    | "before"
                    | "since"
                    | "health"
                    | "is-task"
                    | "publish"
                    | "expose"
            ) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        for s in filters.get("status").into_iter().flatten() {
            if !matches!(
                s.as_str(),
                "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
            ) {
                return Err(Error::invalid(format!(
                    "invalid filter 'status={s}': use created, restarting, running, removing, \
                     paused, exited or dead"
                )));
            }
        }
        let mut ancestors = Vec::new();
        for a in filters.get("ancestor").into_iter().flatten() {
            ancestors.push(a.clone());
            if let Some(id) = self.inner.images.resolve_id(a).await {
                ancestors.push(id);
            }
        }
        let net_ids = self.net_ids();
        let now = unix_now();
        // Summaries are built under each record's lock; no record is copied.
        let mut ctrs = self.all_ctrs();
        let keys: HashMap<String, String> = ctrs
            .iter()
            .map(|c| (c.id.clone(), c.rec().created.clone()))
            .collect();
        ctrs.sort_by(|a, b| keys[&b.id].cmp(&keys[&a.id]).then(a.id.cmp(&b.id)));
        let explicit_status = filters.contains_key("status");
        let mut out = Vec::new();
        for c in &ctrs {
            let guard = c.rec();
            let r: &Record = &guard;
            let st = r.state.status.as_str();
            if !all && !explicit_status && !matches!(st, "running" | "paused" | "restarting") {
                continue;
            }
            if let Some(v) = filters.get("status") {
                if !v.iter().any(|s| s == st) {
                    continue;
                }
            }
            if let Some(v) = filters.get("id") {
                if !v.iter().any(|p| r.id.starts_with(p.as_str())) {
                    continue;
                }
            }
            if let Some(v) = filters.get("name") {
                if !v.iter().any(|p| name_match(&r.name, p)) {
                    continue;
                }
            }
            if let Some(v) = filters.get("label") {
                if !v.iter().all(|l| label_match(&r.config.labels, l)) {
                    continue;
                }
            }
            if filters.contains_key("ancestor")
                && !ancestors
                    .iter()
                    .any(|a| a == &r.image || a == &r.image_id || r.image_id.contains(a.as_str()))
            {
                continue;
            }
            if let Some(v) = filters.get("health") {
                let h = r
                    .state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str())
                    .unwrap_or("none");
                if !v.iter().any(|want| want == h) {
                    continue;
                }
            }
            if let Some(v) = filters.get("exited") {
                if st != "exited" || !v.iter().any(|c| c == &r.state.exit_code.to_string()) {
                    continue;
                }
            }
            if let Some(v) = filters.get("network") {
                let nets = networks_of(r);
                if !v.iter().any(|n| {
                    nets.iter().any(|m| {
                        m == n || net_ids.get(m).is_some_and(|id| id.starts_with(n.as_str()))
                    })
                }) {
                    continue;
                }
            }
            if let Some(v) = filters.get("volume") {
                if !v.iter().any(|want| {
                    r.mounts.iter().any(|m| match &m.request {
                        MountRequest::Volume {
                            name: Some(n),
                            destination,
                            ..
                        } => n == want || destination == want,
                        MountRequest::Bind {
                            source,
                            destination,
                            ..
                        } => source == want || destination == want,
                        MountRequest::Tmpfs { destination, .. } => destination == want,
                        _ => false,
                    })
                }) {
                    continue;
                }
            }
            out.push(self.summary(r, now, &net_ids));
            if limit.is_some_and(|l| l > 0 && out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn ports_json(&self, r: &Record) -> Vec<Value> {
        let mut ports = Vec::new();
        let mut published = std::collections::BTreeSet::new();
        if r.state.running() {
            let n = lock_nets(&self.inner.networks);
            for p in n.ports(&r.id) {
                published.insert((p.container_port, p.proto.to_string()));
                ports.push(json!({
                    "IP": p.host_ip.to_string(),
                    "PrivatePort": p.container_port,
                    "PublicPort": p.host_port,
                    "Type": p.proto.to_string(),
                }));
            }
        }
        if let Some(exp) = &r.config.exposed_ports {
            for k in exp.keys() {
                if let Ok((a, b, proto)) = parse_port_key(k) {
                    for p in a..=b {
                        if !published.contains(&(p, proto.to_string())) {
                            ports.push(json!({"PrivatePort": p, "Type": proto.to_string()}));
                        }
                    }
                }
            }
        }
        ports
    }

    fn summary(&self, r: &Record, now: i64, net_ids: &HashMap<String, String>) -> Value {
        let created = berth_time::parse_unix(&r.created).unwrap_or(0);
        json!({
            "Id": r.id,
            "Names": [format!("/{}", r.name)],
            "Image": r.image,
            "ImageID": r.image_id,
            "Command": command_line(&r.config),
            "Created": created,
            "Ports": self.ports_json(r),
            "Labels": r.config.labels,
            "State": r.state.status,
            "Status": status_text(&r.state, r.restart_count, now),
            "HostConfig": {"NetworkMode": if r.host.network_mode.is_empty() { "default" } else { r.host.network_mode.as_str() }},
            "NetworkSettings": {"Networks": compact(self.endpoints_json(r, net_ids))},
            "Mounts": mounts_json(r, &self.inner.opts.data_root),
        })
    }

    /// Network name → ID, for summaries and inspect.
    fn net_ids(&self) -> HashMap<String, String> {
        let n = lock_nets(&self.inner.networks);
        n.list().into_iter().map(|c| (c.name, c.id)).collect()
    }

    fn endpoints_json(&self, r: &Record, net_ids: &HashMap<String, String>) -> Value {
        let mut m = serde_json::Map::new();
        // Only a running container has endpoints: skip the network lock otherwise.
        let eps = if r.state.running() {
            lock_nets(&self.inner.networks).endpoints(&r.id)
        } else {
            Vec::new()
        };
        for name in networks_of(r) {
            let net_id = net_ids.get(&name).cloned().unwrap_or_default();
            let ep = eps.iter().find(|e| e.network == name);
            let aliases = r
                .networking
                .endpoints_config
                .get(&name)
                .and_then(|e| e.aliases.clone());
            m.insert(
                name.clone(),
                json!({
                    "IPAMConfig": null,
                    "Links": null,
                    "Aliases": aliases,
                    "NetworkID": net_id,
                    "EndpointID": ep.map(|e| format!("{}{}", &r.id[..32], &e.host_veth)).unwrap_or_default(),
                    "Gateway": ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
                    "IPAddress": ep.map(|e| e.ip.to_string()).unwrap_or_default(),
                    "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
                    "DriverOpts": null,
                    "DNSNames": if name == "bridge" { Value::Null } else { json!([r.name, &r.id[..12]]) },
                }),
            );
        }
        Value::Object(m)
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect(&self, key: &str) -> Result<Value> {
        let ctr = self.find(key)?;
        let r = ctr.rec().clone();
        let dir = self.dir(&r.id);
        let (path, args) = {
            let mut all: Vec<String> = r.config.entrypoint.clone().unwrap_or_default();
            all.extend(r.config.cmd.clone().unwrap_or_default());
            let mut it = all.into_iter();
            (it.next().unwrap_or_default(), it.collect::<Vec<_>>())
        };
        let st = &r.state;
        let ports = {
            let mut m = serde_json::Map::new();
            if let Some(exp) = &r.config.exposed_ports {
                for k in exp.keys() {
                    m.insert(k.clone(), Value::Null);
                }
            }
            if st.running() {
                let n = lock_nets(&self.inner.networks);
                for p in n.ports(&r.id) {
                    let k = format!("{}/{}", p.container_port, p.proto);
                    let e = m.entry(k).or_insert_with(|| json!([]));
                    if !e.is_array() {
                        *e = json!([]);
                    }
                    if let Some(a) = e.as_array_mut() {
                        a.push(json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}));
                    }
                }
            }
            Value::Object(m)
        };
        let endpoints = self.endpoints_json(&r, &self.net_ids());
        let primary = endpoints
            .as_object()
            .and_then(|m| m.values().next().cloned())
            .unwrap_or(Value::Null);
        let mut lower: Vec<String> = r
            .lowerdirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if lower.is_empty() {
            lower.push(dir.join("empty").display().to_string());
        }
        let sandbox = if st.running() && !matches!(net_mode(&r.host), NetMode::Host) {
            self.inner
                .opts
                .data_root
                .join("network/netns")
                .join(&r.id)
                .display()
                .to_string()
        } else {
            String::new()
        };
        let mut config = serde_json::to_value(&r.config).unwrap_or(Value::Null);
        config["Image"] = json!(r.image);
        let mut v = json!({
            "Id": r.id,
            "Created": r.created,
            "Path": path,
            "Args": args,
            "State": {
                "Status": st.status,
                "Running": st.running(),
                "Paused": st.status == "paused",
                "Restarting": st.status == "restarting",
                "OOMKilled": st.oom_killed,
                "Dead": st.status == "dead",
                "Pid": st.pid,
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": if st.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { st.started_at.as_str() },
                "FinishedAt": if st.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { st.finished_at.as_str() },
                "Health": st.health,
            },
            "Image": r.image_id,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": dir.join("state/container-json.log"),
            "Name": format!("/{}", r.name),
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": r.host,
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "LowerDir": lower.join(":"),
                    "UpperDir": dir.join("upper"),
                    "MergedDir": dir.join("rootfs"),
                    "WorkDir": dir.join("work"),
                }
            },
            "Mounts": mounts_json(&r, &self.inner.opts.data_root),
            "Config": config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": if sandbox.is_empty() { String::new() } else { r.id.clone() },
                "SandboxKey": sandbox,
                "HairpinMode": false,
                "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0,
                "Ports": ports,
                "SecondaryIPAddresses": null,
                "SecondaryIPv6Addresses": null,
                "EndpointID": primary["EndpointID"],
                "Gateway": primary["Gateway"],
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "IPAddress": primary["IPAddress"],
                "IPPrefixLen": primary["IPPrefixLen"],
                "IPv6Gateway": "",
                "MacAddress": primary["MacAddress"],
                "Networks": endpoints,
            },
        });
        if st.health.is_none() {
            if let Some(state) = v["State"].as_object_mut() {
                state.remove("Health");
            }
        }
        Ok(v)
    }

    // ---------------------------------------------------------------- logs, attach

    /// Whether the container has a tty (its output is raw, not multiplexed).
    pub fn tty(&self, key: &str) -> Result<bool> {
        Ok(self.find(key)?.rec().config.tty)
    }

    /// The container's full ID.
    pub fn resolve(&self, key: &str) -> Result<String> {
        Ok(self.find(key)?.id.clone())
    }

    /// `GET /containers/{id}/logs`: records sent into `tx` until done (or the receiver is
    /// dropped).
    pub fn logs(
        &self,
        key: &str,
        o: LogOptions,
        tx: mpsc::Sender<(LogStream, String, String)>,
    ) -> Result<()> {
        let ctr = self.find(key)?;
        let state_dir = self.state_dir(&ctr.id);
        let running = ctr.rec().state.running();
        let follow = o.follow && running;
        std::thread::spawn(move || {
            let reader = match monitor::read_logs(&state_dir, follow) {
                Ok(r) => r.poll_interval(Duration::from_millis(20)),
                Err(e) => {
                    warn!("reading logs: {e}");
                    return;
                }
            };
            let keep = |rec: &monitor::LogRecord| -> bool {
                let want = match rec.stream {
                    LogStream::Stdout => o.stdout,
                    LogStream::Stderr => o.stderr,
                };
                if !want {
                    return false;
                }
                if o.since.is_some() || o.until.is_some() {
                    let t = parse_time_f64(&rec.time).unwrap_or(0.0);
                    if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
                        return false;
                    }
                }
                true
            };
            let mut reader = reader;
            if let Some(n) = o.tail {
                // Read what exists, keep the last n, then go on following.
                let mut ring = std::collections::VecDeque::with_capacity(n.min(10_000));
                let existing = match monitor::read_logs(&state_dir, false) {
                    Ok(r) => r,
                    Err(_) => return,
                };
                let mut count = 0usize;
                for rec in existing.flatten() {
                    count += 1;
                    if !keep(&rec) {
                        continue;
                    }
                    if n == 0 {
                        continue;
                    }
                    if ring.len() == n {
                        ring.pop_front();
                    }
                    ring.push_back(rec);
                }
                for rec in ring {
                    if tx.blocking_send((rec.stream, rec.time, rec.line)).is_err() {
                        return;
                    }
                }
                if !follow {
                    return;
                }
                // Skip what was already considered.
                for _ in 0..count {
                    if reader.next().is_none() {
                        return;
                    }
                }
            }
            for rec in reader {
                let Ok(rec) = rec else { continue };
                if !keep(&rec) {
                    if o.until
                        .is_some_and(|u| parse_time_f64(&rec.time).unwrap_or(0.0) > u)
                    {
                        return;
                    }
                    continue;
                }
                if tx.blocking_send((rec.stream, rec.time, rec.line)).is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Attach's output: new output from now on (and the past log when `logs`), until the
    /// container exits. A container that is not running yet is waited for (attach comes
    /// before start in `docker run`).
    pub fn attach_output(
        &self,
        key: &str,
        logs: bool,
        stream: bool,
        tx: mpsc::Sender<(LogStream, String, String)>,
    ) -> Result<()> {
        let ctr = self.find(key)?;
        let state_dir = self.state_dir(&ctr.id);
        let mut rx = ctr.tx.subscribe();
        let since = unix_now_f64();
        let svc = self.clone();
        let c = Arc::clone(&ctr);
        self.emit(&ctr, "attach", &[]);
        let counted = StreamGuard::new(&ctr.streams);
        tokio::spawn(async move {
            let counted = counted;
            if logs {
                let o = LogOptions {
                    stdout: true,
                    stderr: true,
                    until: Some(since),
                    ..Default::default()
                };
                let (ltx, mut lrx) = mpsc::channel(64);
                if svc.logs(&c.id, o, ltx).is_ok() {
                    while let Some(item) = lrx.recv().await {
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if !stream {
                return;
            }
            // Wait until it runs (or is gone).
            let start_exits = rx.borrow().exits;
            loop {
                let running = {
                    let r = c.rec();
                    r.state.status == "running" || r.state.status == "paused"
                };
                if running {
                    break;
                }
                if rx.borrow().exits > start_exits {
                    // It ran and exited already (the log has its output), or it failed to
                    // start (nothing to stream).
                    if c.rec().state.status == "created" {
                        return;
                    }
                    break;
                }
                if rx.borrow().removed {
                    return;
                }
                if tokio::time::timeout(Duration::from_millis(50), rx.changed())
                    .await
                    .is_ok_and(|r| r.is_err())
                {
                    return;
                }
            }
            let sd = state_dir.clone();
            std::thread::spawn(move || {
                let _counted = counted;
                let Ok(reader) = monitor::read_logs(&sd, true) else {
                    return;
                };
                for rec in reader.poll_interval(Duration::from_millis(5)).flatten() {
                    if parse_time_f64(&rec.time).unwrap_or(f64::MAX) < since {
                        continue;
                    }
                    if tx.blocking_send((rec.stream, rec.time, rec.line)).is_err() {
                        return;
                    }
                }
            });
        });
        Ok(())
    }

    /// Monitor state dir of a container (for attach stdin and resize).
    pub fn monitor_dir(&self, key: &str) -> Result<PathBuf> {
        Ok(self.state_dir(&self.find(key)?.id))
    }

    // ---------------------------------------------------------------- for other services

    /// What exec, stats and top need.
    pub async fn exec_target(&self, key: &str) -> Result<ExecTarget> {
        let ctr = self.find(key)?;
        let r = ctr.rec().clone();
        Ok(ExecTarget {
            id: r.id.clone(),
            name: r.name.clone(),
            runtime_bin: self.inner.runtime_bin.clone(),
            runtime_root: self.inner.runtime_root.clone(),
            pid: r.state.pid,
            running: r.state.running(),
            paused: r.state.status == "paused",
            config: r.config,
        })
    }

    /// Mount (if needed) and lock the container's root filesystem for file operations.
    pub async fn rootfs_guard(&self, key: &str) -> Result<RootfsGuard> {
        let ctr = self.find(key)?;
        let lock = Arc::clone(&ctr.op).lock_owned().await;
        let rec = ctr.rec().clone();
        let was = ctr.mounted.load(Ordering::SeqCst);
        let svc = self.clone();
        let c = Arc::clone(&ctr);
        let r2 = rec.clone();
        let path = tokio::task::spawn_blocking(move || svc.overlay_mount(&c, &r2))
            .await
            .map_err(|e| Error::internal(format!("mount worker: {e}")))??;
        if !was {
            // The guard unmounts; the service must not think it is mounted.
            ctr.mounted.store(false, Ordering::SeqCst);
        }
        let mut mounts = Vec::new();
        for m in &rec.mounts {
            match &m.request {
                MountRequest::Bind {
                    source,
                    destination,
                    ..
                } => mounts.push((destination.clone(), PathBuf::from(source))),
                MountRequest::Volume {
                    name: Some(n),
                    destination,
                    ..
                } => {
                    if let Ok((p, _)) = self.inner.volumes.prepare(n, m.anonymous) {
                        mounts.push((destination.clone(), p));
                    }
                }
                _ => {}
            }
        }
        Ok(RootfsGuard {
            path,
            upper: self.dir(&rec.id).join("upper"),
            lowers: rec.lowerdirs.clone(),
            mounts,
            unmount: !was,
            _lock: Some(lock),
        })
    }

    /// IDs of containers that mount volume `name`.
    pub async fn volume_users(&self, name: &str) -> Vec<String> {
        self.all_ctrs()
            .iter()
            .filter(|c| {
                c.rec().mounts.iter().any(|m| {
                    matches!(&m.request, MountRequest::Volume { name: Some(n), .. } if n == name)
                })
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// Container ID → name (without `/`) for every container.
    pub async fn names(&self) -> BTreeMap<String, String> {
        self.all_ctrs()
            .iter()
            .map(|c| (c.id.clone(), c.rec().name.clone()))
            .collect()
    }

    /// Every container's record (for `system df` and the desktop).
    pub async fn records(&self) -> Vec<Record> {
        self.all_ctrs().iter().map(|c| c.rec().clone()).collect()
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect(
        &self,
        key: &str,
        network: &str,
        aliases: Vec<String>,
        ip: Option<std::net::Ipv4Addr>,
    ) -> Result<()> {
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let net_name = {
            let n = lock_nets(&self.inner.networks);
            n.get(network)
                .map_err(|_| Error::not_found(format!("network {network} not found")))?
                .name
        };
        if matches!(
            net_mode(&ctr.rec().host),
            NetMode::Host | NetMode::None | NetMode::Container(_)
        ) {
            return Err(Error::invalid(format!(
                "container {key} uses network mode {}: it cannot be connected to {network}",
                ctr.rec().host.network_mode
            )));
        }
        if networks_of(&ctr.rec()).contains(&net_name) {
            return Err(Error::conflict(format!(
                "endpoint with name {} already exists in network {net_name}",
                ctr.rec().name
            )));
        }
        if ctr.rec().state.running() {
            let (id, name, short) = {
                let r = ctr.rec();
                (r.id.clone(), r.name.clone(), r.id[..12].to_string())
            };
            let mut all = vec![name, short];
            all.extend(aliases.iter().cloned());
            let nets = Arc::clone(&self.inner.networks);
            let net2 = net_name.clone();
            tokio::task::spawn_blocking(move || {
                lock_nets(&nets).connect(&net2, &id, &all, ip).map(|_| ())
            })
            .await
            .map_err(|e| Error::internal(format!("network worker: {e}")))?
            .map_err(net_err)?;
        }
        {
            let mut r = ctr.rec();
            let ep = r
                .networking
                .endpoints_config
                .entry(net_name.clone())
                .or_default();
            ep.aliases = (!aliases.is_empty()).then_some(aliases);
            ep.ipam_config = ip.map(|ip| serde_json::json!({ "IPv4Address": ip.to_string() }));
        }
        self.save(&ctr)?;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(&self, key: &str, network: &str, force: bool) -> Result<()> {
        let _ = force;
        let ctr = self.find(key)?;
        let _g = ctr.op.lock().await;
        let net_name = {
            let n = lock_nets(&self.inner.networks);
            n.get(network)
                .map_err(|_| Error::not_found(format!("network {network} not found")))?
                .name
        };
        if !networks_of(&ctr.rec()).contains(&net_name) {
            return Err(Error::invalid(format!(
                "container {key} is not connected to network {net_name}"
            )));
        }
        if ctr.rec().state.running() {
            let nets = Arc::clone(&self.inner.networks);
            let (id, n2) = (ctr.id.clone(), net_name.clone());
            tokio::task::spawn_blocking(move || lock_nets(&nets).disconnect(&n2, &id))
                .await
                .map_err(|e| Error::internal(format!("network worker: {e}")))?
                .map_err(net_err)?;
        }
        ctr.rec().networking.endpoints_config.remove(&net_name);
        self.save(&ctr)?;
        Ok(())
    }

    /// (all, running, paused, stopped) counts for `info`.
    pub async fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for ctr in self.all_ctrs() {
            c.0 += 1;
            match ctr.rec().state.status.as_str() {
                "running" | "restarting" => c.1 += 1,
                "paused" => c.2 += 1,
                _ => c.3 += 1,
            }
        }
        c
    }
}

fn net_err(e: crate::network::NetworkError) -> Error {
    use crate::network::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => berth_store::ErrorKind::NotFound,
        K::Conflict => berth_store::ErrorKind::Conflict,
        K::InvalidArgument => berth_store::ErrorKind::InvalidArgument,
        _ => berth_store::ErrorKind::Internal,
    };
    Error::new(kind, e.to_string())
}

/// A runtime failure as Docker words it (the CLI shows it as is).
fn runtime_message(m: &str) -> String {
    // Go's error strings are lower case, and clients match on them (the docker CLI exits 127
    // on "no such file or directory", 126 on "permission denied").
    let m = m
        .replace("No such file or directory", "no such file or directory")
        .replace("Permission denied", "permission denied");
    format!("failed to create task for container: {m}")
}

fn log_limits(h: &HostConfig) -> Result<(u64, u32)> {
    let kind = h.log_config.kind.as_str();
    if !matches!(kind, "" | "json-file" | "local") {
        return Err(Error::invalid(format!(
            "logging driver \"{kind}\" is not supported: use json-file"
        )));
    }
    let size = match h.log_config.config.get("max-size") {
        None => 0,
        Some(s) => parse_size(s).ok_or_else(|| {
            Error::invalid(format!(
                "invalid log-opt max-size={s}: use a size like 10m or 1g"
            ))
        })?,
    };
    let files = match h.log_config.config.get("max-file") {
        None => 1,
        Some(s) => s.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Error::invalid(format!("invalid log-opt max-file={s}: use a number ≥ 1"))
        })?,
    };
    Ok((size, files))
}

/// `10m`, `1g`, `512k`, `100` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v >= 0.0).then_some((v * mul as f64) as u64)
}

fn base_hosts(hostname: &str, ips: &[Ipv4Addr]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for ip in ips {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// `--add-host` lines (`ExtraHosts`, "name:ip" or "name=ip"); `host-gateway` is the primary
/// network's gateway (the host, seen from the container). Names without a usable address
/// were refused at create.
fn extra_hosts(host: &HostConfig, gateway: Option<Ipv4Addr>) -> String {
    let mut out = String::new();
    for entry in host.extra_hosts.iter().flatten() {
        let Some((name, addr)) = entry.split_once([':', '=']) else {
            continue;
        };
        let addr = if addr == "host-gateway" {
            match gateway {
                Some(g) => g.to_string(),
                None => continue,
            }
        } else {
            addr.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        };
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    out
}

fn monitor_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn signal_pid(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, sig) };
    }
}

async fn wait_exits(rx: &mut watch::Receiver<Gen>, after: u64) {
    loop {
        if rx.borrow().exits > after || rx.borrow().removed {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// RFC 3339 with fractional seconds → unix seconds as f64.
fn parse_time_f64(s: &str) -> Option<f64> {
    let whole = berth_time::parse_unix(s)? as f64;
    let frac = s
        .find('.')
        .map(|i| {
            let digits: String = s[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            format!("0.{digits}").parse::<f64>().unwrap_or(0.0)
        })
        .unwrap_or(0.0);
    Some(whole + frac)
}

/// Drop null, empty-string and zero fields from each endpoint of a summary: `ps` with
/// thousands of containers decodes a third less JSON (clients default the missing fields,
/// as Docker's own `omitempty` fields are).
fn compact(mut networks: Value) -> Value {
    if let Some(m) = networks.as_object_mut() {
        for ep in m.values_mut() {
            if let Some(fields) = ep.as_object_mut() {
                fields.retain(|_, v| match v {
                    Value::Null => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Number(n) => n.as_u64() != Some(0),
                    _ => true,
                });
            }
        }
    }
    networks
}

fn command_line(c: &ContainerConfig) -> String {
    let mut all: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    all.extend(c.cmd.clone().unwrap_or_default());
    all.join(" ")
}

fn status_text(st: &RunState, restarts: u32, now: i64) -> String {
    let since = |t: &str| now - berth_time::parse_unix(t).unwrap_or(now);
    match st.status.as_str() {
        "running" => {
            let health = match st.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)",
                Some("healthy") => " (healthy)",
                Some("unhealthy") => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", human::duration(since(&st.started_at)))
        }
        "paused" => format!("Up {} (Paused)", human::duration(since(&st.started_at))),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human::duration(since(&st.finished_at))
        ),
        "exited" => {
            let _ = restarts;
            format!(
                "Exited ({}) {} ago",
                st.exit_code,
                human::duration(since(&st.finished_at))
            )
        }
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        _ => "Created".into(),
    }
}

fn networks_of(r: &Record) -> Vec<String> {
    match net_mode(&r.host) {
        NetMode::Bridge(_) => r.networking.endpoints_config.keys().cloned().collect(),
        NetMode::Host => vec!["host".into()],
        NetMode::None => vec!["none".into()],
        NetMode::Container(_) => Vec::new(),
    }
}

fn mounts_json(r: &Record, data_root: &Path) -> Vec<Value> {
    r.mounts
        .iter()
        .map(|m| match &m.request {
            MountRequest::Bind {
                source,
                destination,
                read_only,
                propagation,
                ..
            } => json!({
                "Type": "bind", "Source": source, "Destination": destination,
                "Mode": if *read_only { "ro" } else { "" }, "RW": !read_only,
                "Propagation": if propagation.is_empty() { "rprivate" } else { propagation.as_str() },
            }),
            MountRequest::Volume {
                name,
                destination,
                read_only,
                ..
            } => {
                let n = name.clone().unwrap_or_default();
                json!({
                    "Type": "volume", "Name": n,
                    "Source": data_root.join("volumes").join(&n).join("_data"),
                    "Destination": destination, "Driver": "local",
                    "Mode": if *read_only { "ro" } else { "z" }, "RW": !read_only, "Propagation": "",
                })
            }
            MountRequest::Tmpfs { destination, .. } => json!({
                "Type": "tmpfs", "Source": "", "Destination": destination,
                "Mode": "", "RW": true, "Propagation": "",
            }),
        })
        .collect()
}

fn label_match(labels: &BTreeMap<String, String>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f),
    }
}

/// Docker matches `name` filters as regular expressions; we take the common forms: a
/// substring, with optional `^` / `$` anchors (and a leading `/`).
fn name_match(name: &str, pat: &str) -> bool {
    let full = format!("/{name}");
    let (start, p) = match pat.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pat),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    let cands = [name, full.as_str()];
    cands.iter().any(|c| match (start, end) {
        (true, true) => *c == p,
        (true, false) => c.starts_with(p),
        (false, true) => c.ends_with(p),
        (false, false) => c.contains(p),
    })
}

/// The address `--ip` (EndpointSettings.IPAMConfig.IPv4Address) asks for on `network`.
fn requested_ip(rec: &Record, network: &str) -> Option<std::net::Ipv4Addr> {
    rec.networking
        .endpoints_config
        .get(network)?
        .ipam_config
        .as_ref()?
        .get("IPv4Address")?
        .as_str()
        .filter(|s| !s.is_empty())?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn port_plans() {
        let mut cfg = ContainerConfig::default();
        let mut host = HostConfig::default();
        let mut pb = BTreeMap::new();
        pb.insert(
            "5000/tcp".to_string(),
            Some(vec![super::super::config::PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "8080".into(),
            }]),
        );
        pb.insert(
            "7000-7001/udp".to_string(),
            Some(vec![super::super::config::PortBinding {
                host_ip: String::new(),
                host_port: "9000-9001".into(),
            }]),
        );
        host.port_bindings = Some(pb);
        let mut exp = BTreeMap::new();
        exp.insert("5000/tcp".to_string(), json!({}));
        exp.insert("6000/tcp".to_string(), json!({}));
        cfg.exposed_ports = Some(exp);
        host.publish_all_ports = true;
        let plan = publish_plan(&cfg, &host).unwrap();
        assert_eq!(plan.len(), 4, "{plan:?}");
        assert!(plan.contains(&Publish {
            host_ip: Ipv4Addr::new(127, 0, 0, 1),
            host_port: 8080,
            container_port: 5000,
            proto: Protocol::Tcp
        }));
        assert!(plan.contains(&Publish {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 9001,
            container_port: 7001,
            proto: Protocol::Udp
        }));
        assert!(plan.contains(&Publish {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 0,
            container_port: 6000,
            proto: Protocol::Tcp
        }));
        assert!(parse_port_key("80/sctp").is_err());
        assert!(parse_host_ports("x", 1).is_err());
        assert!(parse_host_ports("9000-9002", 2).is_err());
    }

    #[test]
    fn sizes_and_names() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        assert!(name_match("web", "web"));
        assert!(name_match("web-1", "^web"));
        assert!(name_match("web", "^/web$"));
        assert!(!name_match("web-1", "^web$"));
    }

    #[test]
    fn status_texts() {
        let now = 1_000_000;
        let st = RunState {
            status: "exited".into(),
            exit_code: 3,
            finished_at: berth_time::format(Duration::from_secs((now - 120) as u64)),
            ..Default::default()
        };
        assert_eq!(status_text(&st, 0, now), "Exited (3) 2 minutes ago");
        let st = RunState {
            status: "created".into(),
            ..Default::default()
        };
        assert_eq!(status_text(&st, 0, now), "Created");
    }
}
