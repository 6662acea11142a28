//! The engine as the app sees it: where berthd listens, whether it answers, and starting and
//! stopping it. The state lives in one `watch` channel that the tray, the status bar and
//! every `watch_engine` subscriber read; nothing polls a running engine (its `/events`
//! stream going quiet on disconnect is what tells us it stopped).

use crate::commands::vm::VmEngine;
use crate::error::{self, Res};
use berth_desktop_dto::{AppError, EngineEvent, EngineMode, EngineState, EngineStatus, VmProgress};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Mutex};
use tracing::{info, warn};

/// Where the engine is and how to start it; from the environment, with berthd's defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `unix:///run/berth/berth.sock` (`BERTH_HOST`, else `DOCKER_HOST` when it is a unix
    /// socket, else the default).
    pub host: String,
    pub socket: PathBuf,
    /// berthd's daemon.json (`BERTH_DAEMON_CONFIG`, default `/etc/berth/daemon.json`).
    pub daemon_config: PathBuf,
    /// `BERTH_DATA_ROOT` / `BERTH_EXEC_ROOT`: passed to a berthd the app starts.
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The berthd binary (`BERTH_BERTHD`, else next to this app, else on PATH).
    pub berthd: Option<PathBuf>,
}

impl EngineConfig {
    pub fn from_env() -> EngineConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let host = var("BERTH_HOST")
            .or_else(|| var("DOCKER_HOST").filter(|h| h.starts_with("unix://")))
            .unwrap_or_else(|| "unix:///run/berth/berth.sock".to_string());
        let socket = PathBuf::from(host.trim_start_matches("unix://"));
        let exec_root = var("BERTH_EXEC_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/berth"));
        EngineConfig {
            host,
            socket,
            daemon_config: var("BERTH_DAEMON_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/berth/daemon.json")),
            data_root: var("BERTH_DATA_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
            exec_root,
            berthd: var("BERTH_BERTHD").map(PathBuf::from).or_else(find_berthd),
        }
    }

    /// berthd writes its pid here (its default: `<exec-root>/berthd.pid`).
    pub fn pidfile(&self) -> PathBuf {
        self.exec_root.join("berthd.pid")
    }
}

/// berthd next to our own binary (a build tree, or an install), else on PATH.
fn find_berthd() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berthd")));
    let path = std::env::var_os("PATH").unwrap_or_default();
    beside
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join("berthd")))
        .chain(["/usr/local/bin/berthd", "/usr/bin/berthd"].map(PathBuf::from))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// How this app can start berthd, if at all.
#[derive(Debug, Clone, PartialEq)]
enum Launcher {
    /// We are root: run berthd ourselves.
    Direct(PathBuf),
    /// The installed systemd unit, through `systemctl` (polkit asks for a password).
    Systemd,
    /// `pkexec berthd …` (a graphical password prompt).
    Pkexec(PathBuf),
}

fn systemd_unit_installed() -> bool {
    [
        "/etc/systemd/system/berthd.service",
        "/lib/systemd/system/berthd.service",
        "/usr/lib/systemd/system/berthd.service",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| is_executable(&d.join(name)))
}

/// Which engine the app talks to now: the native one (`EngineConfig`'s socket) or the VM's.
#[derive(Debug, Clone)]
struct Target {
    mode: EngineMode,
    /// Leaked once per distinct address (there are two: the native and the VM's), so
    /// `host()` can hand out a plain `&str` while the target can change.
    host: &'static str,
    socket: PathBuf,
}

/// Shared handle on the engine: a bollard client, the state channel and the event fan-out.
pub struct Engine {
    /// The native engine's settings (the socket is the VM's while the mode is `vm`:
    /// see [`Engine::socket`]).
    pub config: EngineConfig,
    /// Berth's VM: the engine on macOS/Windows, an option ("isolated engine") on Linux.
    pub vm: VmEngine,
    target: std::sync::RwLock<Target>,
    /// Bumped on every mode switch: ends the old engine's event stream.
    generation: watch::Sender<u64>,
    /// The bollard client, made on first use: bollard refuses to make one while the socket
    /// file is missing, and the app must start (and offer Start) when the engine is down.
    /// Once made it connects per request, so it outlives engine restarts.
    docker: std::sync::Mutex<Option<Docker>>,
    status: watch::Sender<EngineStatus>,
    events: broadcast::Sender<EngineEvent>,
    /// A berthd this app started: a task waits on it, so it is reaped the moment it exits
    /// (a crashed engine left as a zombie would keep its pid "running" and its pid file
    /// would refuse every later start), and sets its exit status here.
    child: Mutex<Option<watch::Receiver<Option<String>>>>,
    /// Serialises start/stop.
    op: Mutex<()>,
    /// Wakes the connection loop (after a start, or on demand).
    wake: tokio::sync::Notify,
}

pub type EngineRef = Arc<Engine>;

/// The message before the connection loop's first look.
const CONNECTING: &str = "Connecting…";

const API: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 45,
};

impl Engine {
    pub fn new(config: EngineConfig) -> Res<EngineRef> {
        Engine::with_vm(config, VmEngine::from_env())
    }

    pub fn with_vm(config: EngineConfig, vm: VmEngine) -> Res<EngineRef> {
        let target = target_for(&config, &vm, vm.mode());
        let (status, _) = watch::channel(EngineStatus {
            state: EngineState::Stopped,
            host: target.host.to_string(),
            version: None,
            message: Some(CONNECTING.into()),
            can_start: false,
            containers_running: 0,
            vm: None,
        });
        let (events, _) = broadcast::channel(1024);
        let e = Arc::new(Engine {
            config,
            vm,
            target: std::sync::RwLock::new(target),
            generation: watch::channel(0).0,
            docker: std::sync::Mutex::new(None),
            status,
            events,
            child: Mutex::new(None),
            op: Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        });
        let (can_start, vm) = (e.can_start(), e.vm_idle(false));
        e.status.send_modify(|s| {
            s.can_start = can_start;
            s.vm = vm;
        });
        Ok(e)
    }

    fn target(&self) -> Target {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Which engine the app drives now.
    pub fn mode(&self) -> EngineMode {
        self.target().mode
    }

    /// The socket of the engine the app drives now (the VM's in `vm` mode).
    pub fn socket(&self) -> PathBuf {
        self.target().socket
    }

    /// Whether Start can work: a way to launch berthd, or (VM mode) the VM's image and qemu.
    fn can_start(&self) -> bool {
        match self.mode() {
            EngineMode::Native => self.launcher().is_some(),
            EngineMode::Vm => self.vm.problem().is_none(),
        }
    }

    /// The VM part of the status while nothing is in flight (None in native mode).
    fn vm_idle(&self, running: bool) -> Option<VmProgress> {
        (self.mode() == EngineMode::Vm).then(|| {
            let mut p = self.vm.idle_progress();
            if running {
                p.state = "running".into();
            }
            p
        })
    }

    /// Switches between the native engine and the VM: saved in the app's settings, the
    /// client and the event stream move to the other socket (the pages reload when it
    /// answers). Leaving a running VM stops it.
    pub async fn set_mode(&self, mode: EngineMode) -> Res<EngineStatus> {
        let _op = self.op.lock().await;
        if mode != EngineMode::Vm && self.vm.mode_forced() {
            return Err(error::invalid(
                "On this system the engine always runs in Berth's VM: there is no native engine to switch to",
            ));
        }
        self.vm.save_mode(mode)?;
        if mode == self.mode() {
            return Ok(self.status());
        }
        if self.mode() == EngineMode::Vm && self.vm.is_running() {
            self.set(|s| {
                s.state = EngineState::Stopping;
                s.message = Some("Stopping the VM…".into());
            });
            self.vm.stop().await?;
        }
        let target = target_for(&self.config, &self.vm, mode);
        info!(host = target.host, ?mode, "engine mode switched");
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = target.clone();
        *self.docker.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.generation.send_modify(|g| *g += 1);
        let (can_start, vm) = (self.can_start(), self.vm_idle(false));
        self.status.send_modify(|s| {
            s.state = EngineState::Stopped;
            s.host = target.host.to_string();
            s.version = None;
            s.message = Some(CONNECTING.into());
            s.containers_running = 0;
            s.can_start = can_start;
            s.vm = vm;
        });
        self.wake.notify_one();
        Ok(self.wait_settled().await)
    }

    /// Waits briefly for the connection loop's first look at the (new) engine.
    async fn wait_settled(&self) -> EngineStatus {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            rx.wait_for(|s| s.message.as_deref() != Some(CONNECTING)),
        )
        .await;
        self.status()
    }

    /// The engine's client; `EngineUnreachable` while its socket does not exist yet.
    pub fn docker(&self) -> Res<Docker> {
        let mut slot = self.docker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = Docker::connect_with_unix(&self.socket().to_string_lossy(), 120, &API)
            .map_err(|e| error::engine(self.host(), e))?;
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Whether the engine answers `/_ping` now.
    async fn answers(&self) -> bool {
        match self.docker() {
            Ok(d) => matches!(
                tokio::time::timeout(Duration::from_secs(5), d.ping()).await,
                Ok(Ok(_))
            ),
            Err(_) => false,
        }
    }

    /// The address of the engine the app drives now (`unix://…`).
    pub fn host(&self) -> &str {
        self.target().host
    }

    pub fn status(&self) -> EngineStatus {
        self.status.borrow().clone()
    }

    pub fn subscribe_status(&self) -> watch::Receiver<EngineStatus> {
        self.status.subscribe()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    fn set(&self, f: impl FnOnce(&mut EngineStatus)) {
        self.status.send_if_modified(|s| {
            let before = s.clone();
            f(s);
            *s != before
        });
    }

    fn launcher(&self) -> Option<Launcher> {
        let bin = self.config.berthd.clone();
        if is_root() {
            return bin.map(Launcher::Direct);
        }
        if systemd_unit_installed() && on_path("systemctl") {
            return Some(Launcher::Systemd);
        }
        match bin {
            Some(b) if on_path("pkexec") => Some(Launcher::Pkexec(b)),
            _ => None,
        }
    }

    /// The connection loop: while the engine answers, hold its `/events` stream open and
    /// fan events out; when it stops answering, say so and retry every 2 s (a connect() to a
    /// missing socket: no measurable CPU). Runs for the life of the app.
    ///
    /// While `start()` or `stop()` runs (state starting/stopping) they own the state: the
    /// loop only moves starting → running when the engine answers, and never touches
    /// stopping.
    /// One quick look before the window opens, so the page's first status is the engine's
    /// real state rather than "connecting" (which would flash the engine-down page and reload
    /// every list when the connection loop catches up).
    pub async fn probe(&self) {
        let Ok(d) = self.docker() else { return };
        match tokio::time::timeout(Duration::from_secs(1), d.version()).await {
            Ok(Ok(v)) => self.set(|s| {
                s.state = EngineState::Running;
                s.version = v.version.clone();
                s.message = None;
            }),
            Ok(Err(e)) => {
                let msg = error::engine(self.host(), e).message;
                self.set(|s| {
                    s.state = EngineState::Stopped;
                    s.message = Some(msg);
                });
            }
            Err(_) => {}
        }
    }

    pub async fn run(self: Arc<Self>) {
        let mut reconnect = false;
        loop {
            let version = match self.docker() {
                Ok(d) => d.version().await.map_err(|e| error::engine(self.host(), e)),
                Err(e) => Err(e),
            };
            match version {
                Ok(v) => {
                    let mut stopping = false;
                    self.set(|s| {
                        if s.state == EngineState::Stopping {
                            stopping = true;
                            return;
                        }
                        s.state = EngineState::Running;
                        s.version = v.version.clone();
                        s.message = None;
                        if let Some(p) = s.vm.as_mut() {
                            p.state = "running".into();
                            p.elapsed_ms = None;
                            p.step = None;
                        }
                    });
                    if stopping {
                        // berthd still answers while stop() stops its containers.
                        self.pause(Duration::from_millis(200)).await;
                        continue;
                    }
                    self.refresh_running().await;
                    info!(host = %self.host(), "engine connected");
                    // Pages load their lists when they open; after a reconnect they must
                    // reload, since events were missed meanwhile.
                    if reconnect {
                        self.notice("connected");
                    }
                    reconnect = true;
                    let since = tokio::time::Instant::now();
                    self.follow_events().await;
                    info!(host = %self.host(), "engine event stream ended");
                    self.notice("disconnected");
                    if since.elapsed() < Duration::from_secs(2) {
                        // An engine that answers but ends its event stream at once is not
                        // retried in a tight loop (each round reloads every page).
                        self.pause(Duration::from_secs(2)).await;
                    }
                }
                Err(e) => {
                    self.set(|s| {
                        if matches!(s.state, EngineState::Starting | EngineState::Stopping) {
                            return;
                        }
                        // Already stopped with a reason (a failed start's log tail, stop()'s
                        // word): keep it rather than the generic "nothing answers".
                        if s.state == EngineState::Stopped
                            && s.message.as_deref().is_some_and(|m| m != CONNECTING)
                        {
                            return;
                        }
                        s.state = EngineState::Stopped;
                        s.version = None;
                        s.containers_running = 0;
                        s.message = Some(e.message);
                        s.vm = self.vm_idle(false);
                    });
                    self.pause(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Sleeps `d`, or less when start()/stop() wake the loop.
    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.wake.notified() => {}
        }
    }

    /// An app-made event (kind "engine") so every store reloads.
    fn notice(&self, action: &str) {
        let _ = self.events.send(EngineEvent {
            kind: "engine".into(),
            action: action.into(),
            id: String::new(),
            attributes: BTreeMap::new(),
            time_ms: now_ms(),
        });
    }

    /// An app-made event of `kind` (action "resync") so the stores of that kind reload.
    pub fn resync(&self, kind: &str) {
        let _ = self.events.send(EngineEvent {
            kind: kind.into(),
            action: "resync".into(),
            id: String::new(),
            attributes: BTreeMap::new(),
            time_ms: now_ms(),
        });
    }

    async fn follow_events(&self) {
        let Ok(docker) = self.docker() else { return };
        let mut stream = docker.events(None::<bollard::query_parameters::EventsOptions>);
        let mut switched = self.generation.subscribe();
        loop {
            // A mode switch ends this engine's stream: the loop reconnects to the other one.
            let item = tokio::select! {
                item = stream.next() => item,
                _ = switched.changed() => None,
            };
            let Some(item) = item else { break };
            let m = match item {
                Ok(m) => m,
                Err(e) => {
                    warn!(host = %self.host(), "engine event stream: {e}");
                    break;
                }
            };
            let kind = m
                .typ
                .map(|t| t.to_string())
                .unwrap_or_default()
                .to_lowercase();
            let actor = m.actor.unwrap_or_default();
            let ev = EngineEvent {
                kind: kind.clone(),
                action: m.action.unwrap_or_default(),
                id: actor.id.unwrap_or_default(),
                attributes: actor.attributes.unwrap_or_default().into_iter().collect(),
                time_ms: m
                    .time_nano
                    .map(|n| n / 1_000_000)
                    .or(m.time.map(|t| t.saturating_mul(1000)))
                    .unwrap_or_else(now_ms),
            };
            // Only what changes the running count (not exec_*, attach, resize...).
            if kind == "container"
                && matches!(
                    ev.action.as_str(),
                    "start" | "die" | "stop" | "kill" | "restart" | "pause" | "unpause" | "destroy"
                )
            {
                self.refresh_running().await;
            }
            let _ = self.events.send(ev);
        }
    }

    async fn refresh_running(&self) {
        let Ok(docker) = self.docker() else { return };
        let opts = bollard::query_parameters::ListContainersOptions {
            all: false,
            ..Default::default()
        };
        if let Ok(list) = docker.list_containers(Some(opts)).await {
            let n = u32::try_from(list.len()).unwrap_or(u32::MAX);
            self.set(|s| {
                if s.state != EngineState::Stopped {
                    s.containers_running = n;
                }
            });
        }
    }

    /// Starts berthd (directly when root, else through the systemd unit or pkexec) and
    /// waits until it answers.
    pub async fn start(&self) -> Res<EngineStatus> {
        let _op = self.op.lock().await;
        if self.answers().await {
            // Already up (started elsewhere, or the loop has not looked yet): let the loop
            // see it now rather than answer with a stale "stopped".
            return Ok(self.wait_running().await);
        }
        if self.mode() == EngineMode::Vm {
            return self.start_vm().await;
        }
        let Some(launcher) = self.launcher() else {
            return Err(error::system(format!(
                "Cannot start the engine here: {}",
                if self.config.berthd.is_none() {
                    "no berthd binary found (set BERTH_BERTHD, or install berth)".to_string()
                } else {
                    "not root, and neither the berthd systemd unit nor pkexec is installed"
                        .to_string()
                }
            )));
        };
        self.set(|s| {
            s.state = EngineState::Starting;
            s.message = Some("Starting the engine…".into());
        });
        let res = self.launch(launcher).await;
        if let Err(e) = &res {
            self.set(|s| {
                s.state = EngineState::Stopped;
                s.message = Some(e.message.clone());
            });
            return Err(e.clone());
        }
        // Wait for the socket to answer (berthd restores containers before it listens).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if self.answers().await {
                break;
            }
            if let Some(msg) = self.child_exited().await {
                self.set(|s| {
                    s.state = EngineState::Stopped;
                    s.message = Some(msg.clone());
                });
                return Err(error::system(msg));
            }
            if tokio::time::Instant::now() > deadline {
                let msg = format!(
                    "berthd did not answer at {} within 60 s; see {}",
                    self.config.host,
                    self.log_path().display()
                );
                self.set(|s| {
                    s.state = EngineState::Stopped;
                    s.message = Some(msg.clone());
                });
                return Err(error::system(msg));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(self.wait_running().await)
    }

    /// VM mode's Start: creates the VM if there is none (with the app's settings), boots it,
    /// and reports the boot's progress (the guest's `berth-init:` steps) until its engine
    /// answers on the host socket.
    async fn start_vm(&self) -> Res<EngineStatus> {
        self.set(|s| {
            s.state = EngineState::Starting;
            s.message = Some("launching".into());
            s.vm = Some(VmProgress {
                state: "starting".into(),
                elapsed_ms: Some(0),
                step: None,
                boot_ms: None,
                accel: None,
            });
        });
        let fail = |e: AppError| {
            self.set(|s| {
                s.state = EngineState::Stopped;
                s.message = Some(e.message.clone());
                s.vm = self.vm_idle(false);
            });
            Err(e)
        };
        if let Err(e) = self.vm.launch().await {
            return fail(e);
        }
        let timeout = self.vm.boot_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // The connection loop moves starting → running once the VM's socket answers
            // (through a TCG guest a request can take seconds: it has its own patience).
            if self.status().state == EngineState::Running {
                break;
            }
            match self.vm.progress().await {
                Ok(p) if p.state == "stopped" || p.state == "not_created" => {
                    let tail = self.vm.failure_report(8).await;
                    return fail(error::system(format!(
                        "the VM stopped while booting:\n{tail}"
                    )));
                }
                Ok(p) => {
                    if p.state == "running" {
                        // berthd is ready in the guest: have the loop look now.
                        self.wake.notify_one();
                    }
                    let secs = p.elapsed_ms.unwrap_or(0) / 1000;
                    self.set(|s| {
                        if s.state == EngineState::Starting {
                            if p.state != "running" {
                                s.message = Some(format!("booting, {secs} s"));
                            }
                            s.vm = Some(p);
                        }
                    });
                }
                Err(e) => warn!("VM status: {}", e.message),
            }
            if tokio::time::Instant::now() > deadline {
                let tail = self.vm.failure_report(8).await;
                let _ = self.vm.stop().await;
                return fail(error::system(format!(
                    "the VM's engine did not answer within {} s (stopped it):\n{tail}",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Ok(p) = self.vm.progress().await {
            self.set(|s| s.vm = Some(p));
        }
        Ok(self.wait_running().await)
    }

    /// VM mode's Stop: the guest shuts down cleanly (berthd stops its containers, the data
    /// disk is unmounted), forced after 30 s.
    async fn stop_vm(&self) -> Res<EngineStatus> {
        self.set(|s| {
            s.state = EngineState::Stopping;
            s.message = Some("Stopping the VM…".into());
            if let Some(p) = s.vm.as_mut() {
                p.state = "stopping".into();
            }
        });
        let res = self.vm.stop().await;
        let msg = match &res {
            Ok(how) => format!("Stopped. The VM is off ({how})."),
            Err(e) => e.message.clone(),
        };
        self.set(|s| {
            s.state = EngineState::Stopped;
            s.version = None;
            s.containers_running = 0;
            s.message = Some(msg);
            s.vm = self.vm_idle(false);
        });
        self.wake.notify_one();
        res.map(|_| self.status())
    }

    /// Wakes the connection loop, which flips the state to running when the engine answers,
    /// and waits for that briefly so the caller gets the new state.
    async fn wait_running(&self) -> EngineStatus {
        let mut rx = self.status.subscribe();
        self.wake.notify_one();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|s| s.state == EngineState::Running),
        )
        .await;
        self.status()
    }

    fn log_path(&self) -> PathBuf {
        self.config.exec_root.join("berthd.log")
    }

    async fn launch(&self, launcher: Launcher) -> Res<()> {
        let c = &self.config;
        let args = |cmd: &mut tokio::process::Command| {
            cmd.arg("--data-root")
                .arg(&c.data_root)
                .arg("--exec-root")
                .arg(&c.exec_root)
                .arg("-H")
                .arg(&c.host)
                .arg("--config-file")
                .arg(&c.daemon_config);
        };
        let (bin, direct) = match launcher {
            Launcher::Direct(bin) => (bin, true),
            Launcher::Pkexec(bin) => (bin, false),
            Launcher::Systemd => {
                info!("starting the engine through systemd");
                let out = tokio::process::Command::new("systemctl")
                    .args(["start", "berthd.service"])
                    .output()
                    .await
                    .map_err(|e| error::system(format!("Cannot run systemctl: {e}")))?;
                if !out.status.success() {
                    return Err(error::system(format!(
                        "systemctl start berthd.service failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                return Ok(());
            }
        };
        {
            {
                let _ = std::fs::create_dir_all(&c.exec_root);
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log_path())
                    .ok();
                let mut cmd = if direct {
                    tokio::process::Command::new(&bin)
                } else {
                    let mut p = tokio::process::Command::new("pkexec");
                    p.arg(&bin);
                    p
                };
                args(&mut cmd);
                #[cfg(target_os = "linux")]
                crate::speech::restore_for_tokio_child(&mut cmd);
                cmd.stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(match log {
                        Some(f) => std::process::Stdio::from(f),
                        None => std::process::Stdio::null(),
                    })
                    // Its own process group: a Ctrl-C or a crash of the app is not the
                    // engine's.
                    .process_group(0)
                    .kill_on_drop(false);
                info!(berthd = %bin.display(), direct, "starting the engine");
                let mut child = cmd
                    .spawn()
                    .map_err(|e| error::system(format!("Cannot run {}: {e}", bin.display())))?;
                let (tx, rx) = watch::channel(None);
                tauri::async_runtime::spawn(async move {
                    let status = match child.wait().await {
                        Ok(s) => s.to_string(),
                        Err(e) => format!("unknown status: {e}"),
                    };
                    info!(%status, "the berthd this app started exited");
                    let _ = tx.send(Some(status));
                });
                *self.child.lock().await = Some(rx);
                Ok(())
            }
        }
    }

    /// If the berthd we started has exited: why, with the end of its log.
    async fn child_exited(&self) -> Option<String> {
        let mut guard = self.child.lock().await;
        let status = guard.as_ref()?.borrow().clone()?;
        *guard = None;
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Some(format!(
            "berthd exited ({status}): {}",
            if tail.is_empty() {
                "no output".to_string()
            } else {
                tail.join(" | ")
            }
        ))
    }

    /// Stops the running containers gracefully (10 s each, in parallel), then berthd (SIGTERM
    /// to the pid in its pid file, or the systemd unit), and waits until it is gone.
    pub async fn stop(&self) -> Res<EngineStatus> {
        let _op = self.op.lock().await;
        if self.mode() == EngineMode::Vm {
            return self.stop_vm().await;
        }
        let docker = match self.docker() {
            Ok(d) if d.ping().await.is_ok() => d,
            // Not answering: let the loop say so now rather than answer with a stale state.
            _ => {
                let mut rx = self.status.subscribe();
                self.wake.notify_one();
                let _ = tokio::time::timeout(
                    Duration::from_secs(3),
                    rx.wait_for(|s| s.state == EngineState::Stopped),
                )
                .await;
                return Ok(self.status());
            }
        };
        self.set(|s| {
            s.state = EngineState::Stopping;
            s.message = Some("Stopping containers…".into());
        });
        let running = docker
            .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
            .await
            .unwrap_or_default();
        let stops = running.iter().filter_map(|c| c.id.clone()).map(|id| {
            let d = docker.clone();
            async move {
                let opts = bollard::query_parameters::StopContainerOptions {
                    t: Some(10),
                    signal: None,
                };
                if let Err(e) = d.stop_container(&id, Some(opts)).await {
                    warn!(container = %id, "stopping: {e}");
                }
            }
        });
        futures_util::future::join_all(stops).await;
        self.set(|s| s.message = Some("Stopping the engine…".into()));
        let back_to_running = |e: AppError| {
            // Still up: the loop (which leaves "stopping" alone) takes over again.
            self.set(|s| {
                s.state = EngineState::Running;
                s.message = None;
            });
            self.wake.notify_one();
            Err(e)
        };
        let pid = match self.signal_berthd().await {
            Ok(pid) => pid,
            Err(e) => return back_to_running(e),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while docker.ping().await.is_ok() {
            if tokio::time::Instant::now() > deadline {
                return back_to_running(error::system(format!(
                    "berthd is still answering 30 s after SIGTERM; see {}",
                    self.log_path().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The socket is gone; the process may still be cleaning up (a Start now would race
        // it for the pid file): reap our own child, then wait for the pid to go.
        let child = self.child.lock().await.take();
        if let Some(mut c) = child {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), c.wait_for(Option::is_some)).await;
        }
        if let Some(pid) = pid {
            let gone_by = tokio::time::Instant::now() + Duration::from_secs(10);
            while pid_alive(pid) && tokio::time::Instant::now() < gone_by {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.set(|s| {
            s.state = EngineState::Stopped;
            s.version = None;
            s.containers_running = 0;
            s.message = Some(format!("Stopped. Nothing answers at {}.", self.config.host));
        });
        self.wake.notify_one();
        Ok(self.status())
    }

    /// SIGTERM to the berthd of the pid file (its pid), else `systemctl stop` (None).
    async fn signal_berthd(&self) -> Res<Option<i32>> {
        let pidfile = self.config.pidfile();
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        let systemd = systemd_unit_installed() && on_path("systemctl");
        if let Some(pid) = pid {
            match crate::config::signal_berthd(pid, nix::sys::signal::Signal::SIGTERM) {
                Ok(()) => return Ok(Some(pid)),
                // Another user's berthd (the unit's, as root): systemd can stop it.
                Err(_) if systemd => {}
                Err(e) => return Err(e),
            }
        }
        if systemd {
            let out = tokio::process::Command::new("systemctl")
                .args(["stop", "berthd.service"])
                .output()
                .await
                .map_err(|e| error::system(format!("Cannot run systemctl: {e}")))?;
            return if out.status.success() {
                Ok(None)
            } else {
                Err(error::system(format!(
                    "systemctl stop berthd.service failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )))
            };
        }
        Err(error::system(format!(
            "Cannot stop the engine: no pid in {} (was berthd started with another --exec-root?)",
            pidfile.display()
        )))
    }
}

/// The address for `mode`: the native engine's, or the socket the VM serves.
fn target_for(config: &EngineConfig, vm: &VmEngine, mode: EngineMode) -> Target {
    static HOSTS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let socket = match mode {
        EngineMode::Native => config.socket.clone(),
        EngineMode::Vm => vm.socket(),
    };
    let host = match mode {
        EngineMode::Native => config.host.clone(),
        EngineMode::Vm => format!("unix://{}", socket.display()),
    };
    let mut hosts = HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let host = match hosts.iter().find(|h| **h == host) {
        Some(h) => *h,
        None => {
            let h: &'static str = Box::leak(host.into_boxed_str());
            hosts.push(h);
            h
        }
    };
    Target { mode, host, socket }
}

/// Whether `pid` is a live process (a zombie is not).
fn pid_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
