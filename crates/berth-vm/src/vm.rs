//! The VM handle: lifecycle over a state directory.
//!
//! State directory layout: `config.json` (the [`VmConfig`]), `data.qcow2` (the data disk, unless
//! the config puts it elsewhere), `console.log` (the guest's serial console; the previous
//! boot's in `console.log.1`), `qemu.pid`, `qmp.sock`, `qemu.log` (qemu's own errors),
//! `run.json` (the running VM: accelerator, start time, engine socket), `control.sock` (qemu's
//! end of the control channel), `agent.sock` (serve's agent relay),
//! `serve.pid` and `serve.log` (the `berth-vm serve` process), and per virtiofs share
//! `vfs-<tag>.sock`, `vfs-<tag>.pid` and `vfs-<tag>.log` (its `virtiofsd`).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::agent::Agent;
use crate::config::{self, write_atomic, Accel, Share, VmConfig};
use crate::qemu::{self, PlannedShare, QemuPlan, SharePreference, ShareVia, VirtiofsdPlan};
use crate::{io_err, Error, Result};

/// What `run.json` records about the running VM (read by `berth-vm serve` too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub accel: Accel,
    /// When `start` launched qemu (ms since the Unix epoch).
    pub started_unix_ms: u64,
    /// The engine socket `serve` listens on.
    pub socket: PathBuf,
}

/// The VM's state, as `status` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum VmState {
    /// No `config.json` in the state directory.
    NotCreated,
    Stopped,
    /// qemu runs; the agent does not answer yet, or berthd is not ready.
    Starting {
        /// Since the guest kernel started, when the agent answers.
        uptime_ms: Option<u64>,
        /// Since `start` launched qemu.
        since_start_ms: Option<u64>,
    },
    Running {
        /// The guest's own boot-to-berthd-ready time (its `berth-init: ready <ms>` line).
        boot_ms: Option<u64>,
        uptime_ms: u64,
    },
}

/// `status()`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub state: VmState,
    pub qemu_pid: Option<u32>,
    pub serve_pid: Option<u32>,
    pub accel: Option<Accel>,
    pub socket: Option<PathBuf>,
    pub console_log: PathBuf,
}

/// How `stop` ended the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopOutcome {
    /// It was not running.
    AlreadyStopped,
    /// The guest shut down on the agent's SHUTDOWN (berthd stopped, disk unmounted).
    Graceful,
    /// qemu quit through QMP after the graceful timeout.
    Forced,
    /// qemu was SIGKILLed.
    Killed,
}

/// `wait_ready`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyInfo {
    /// From `start` launching qemu to berthd answering (host clock).
    pub since_start: Duration,
    /// The guest kernel's uptime when first seen ready.
    pub guest_uptime_ms: u64,
}

/// A VM in a state directory.
#[derive(Debug, Clone)]
pub struct Vm {
    dir: PathBuf,
    serve_bin: Option<PathBuf>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The last `berth-init: ready <ms>` in a console log.
pub fn ready_ms_from_console(text: &str) -> Option<u64> {
    text.lines().rev().find_map(|l| {
        let rest = &l[l.find("berth-init: ready ")? + "berth-init: ready ".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Is `pid` a live process (not a zombie) whose command line mentions `marker`?
pub(crate) fn pid_alive(pid: u32, marker: &Path) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    if cfg!(target_os = "linux") {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
        if state == Some(Some('Z')) {
            return false;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        return cmdline.contains(&*marker.to_string_lossy());
    }
    true
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(p) = libc::pid_t::try_from(pid) {
        if p > 0 {
            // SAFETY: signalling a pid we recorded as ours (checked alive with its marker).
            unsafe { libc::kill(p, sig) };
        }
    }
}

fn wait_gone(pid: u32, marker: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !pid_alive(pid, marker) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a file (reads at most its last 256 KiB).
pub fn tail_file(path: &Path, lines: usize) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let len = f
        .metadata()
        .map_err(io_err(format!("reading {}", path.display())))?
        .len();
    let start = len.saturating_sub(256 * 1024);
    f.seek(SeekFrom::Start(start))
        .map_err(io_err(format!("reading {}", path.display())))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(io_err(format!("reading {}", path.display())))?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    Ok(all[from..].join("\n"))
}

/// Bytes a file really takes on disk (sparse files take less than their length).
fn allocated_bytes(path: &Path) -> Result<u64> {
    let m = std::fs::metadata(path).map_err(io_err(format!("reading {}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(m.blocks() * 512)
    }
    #[cfg(not(unix))]
    {
        Ok(m.len())
    }
}

impl Vm {
    /// A VM in `dir` (created or not).
    pub fn new(dir: impl Into<PathBuf>) -> Vm {
        Vm {
            dir: dir.into(),
            serve_bin: None,
        }
    }

    /// The VM in `~/.berth/vm`.
    pub fn default_location() -> Result<Vm> {
        Ok(Vm::new(config::default_state_dir()?))
    }

    /// The `berth-vm` program `start` runs as the host-side server; default: `BERTH_VM_BIN`,
    /// else next to this executable, else on PATH.
    pub fn with_serve_binary(mut self, bin: impl Into<PathBuf>) -> Vm {
        self.serve_bin = Some(bin.into());
        self
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.file("config.json")
    }

    pub fn console_log(&self) -> PathBuf {
        self.file("console.log")
    }

    pub fn exists(&self) -> bool {
        self.config_path().is_file()
    }

    pub fn config(&self) -> Result<VmConfig> {
        if !self.exists() {
            return Err(Error::NotCreated(self.dir.clone()));
        }
        VmConfig::load(&self.config_path())
    }

    pub fn disk_path(&self, cfg: &VmConfig) -> PathBuf {
        cfg.disk_path
            .clone()
            .unwrap_or_else(|| self.file("data.qcow2"))
    }

    /// The engine socket the host side serves.
    pub fn socket_path(&self, cfg: &VmConfig) -> Result<PathBuf> {
        match &cfg.socket {
            Some(s) => Ok(s.clone()),
            None => config::default_socket(),
        }
    }

    pub fn run_info(&self) -> Option<RunInfo> {
        let text = std::fs::read_to_string(self.file("run.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn qemu_pid(&self) -> Option<u32> {
        read_pid(&self.file("qemu.pid")).filter(|p| pid_alive(*p, &self.dir))
    }

    fn serve_pid(&self) -> Option<u32> {
        read_pid(&self.file("serve.pid")).filter(|p| pid_alive(*p, &self.dir))
    }

    pub fn is_running(&self) -> bool {
        self.qemu_pid().is_some()
    }

    /// Creates the state directory, the sparse qcow2 data disk and `config.json`.
    pub fn create(&self, cfg: VmConfig) -> Result<()> {
        cfg.validate()?;
        if self.exists() {
            return Err(Error::Other(format!(
                "a VM already exists in {}: delete it first, or resize it",
                self.dir.display()
            )));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(io_err(format!("creating {}", self.dir.display())))?;
        let disk = self.disk_path(&cfg);
        if disk.exists() {
            return Err(Error::Other(format!(
                "the data disk {} already exists: remove it or choose another disk_path",
                disk.display()
            )));
        }
        if let Some(parent) = disk.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        let size = format!("{}G", cfg.disk_gib);
        qemu::qemu_img(&[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-o".as_ref(),
            "lazy_refcounts=on".as_ref(),
            disk.as_os_str(),
            size.as_ref(),
        ])?;
        cfg.save(&self.config_path())
    }

    /// Boots the VM (daemonised qemu) and starts `berth-vm serve` for the engine socket and
    /// published ports. Returns once both processes are up; [`Vm::wait_ready`] waits for berthd.
    #[cfg(unix)]
    /// The agent of the running VM, through serve's agent socket.
    pub fn agent(&self) -> Agent {
        Agent::new(crate::agent::agent_socket(&self.dir))
    }

    pub fn start(&self) -> Result<RunInfo> {
        let cfg = self.config()?;
        cfg.validate()?;
        if let Some(pid) = self.qemu_pid() {
            // The guest runs but the host-side server died: start a new one, which takes the
            // control channel over (the guest drops the old session's streams).
            if let (None, Some(run)) = (self.serve_pid(), self.run_info()) {
                self.start_serve()?;
                return Ok(run);
            }
            return Err(Error::Running(format!(
                "the VM in {} is already running (qemu pid {pid})",
                self.dir.display()
            )));
        }
        self.stop_serve();
        self.clean_run_files();
        let arch = config::host_arch();
        let image = config::find_image_dir(cfg.image_dir.as_deref(), arch)?;
        let qemu_bin = qemu::find_qemu(cfg.qemu.as_deref(), arch)?;
        let accel = qemu::choose_accel(cfg.accel)?;
        let disk = self.disk_path(&cfg);
        if !disk.is_file() {
            return Err(Error::Other(format!(
                "the data disk {} is missing: delete the VM and create it again",
                disk.display()
            )));
        }
        let socket = self.socket_path(&cfg)?;
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Err(Error::Other(format!(
                "something already serves {}: stop it, or give this VM another socket",
                socket.display()
            )));
        }
        let console = self.console_log();
        if console.exists() {
            let _ = std::fs::rename(&console, self.file("console.log.1"));
        }
        // Only its owner may reach the sockets in here (the control channel's among them).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(format!("making {} private", self.dir.display())))?;
        }
        let run = RunInfo {
            accel,
            started_unix_ms: now_ms(),
            socket,
        };
        let run_json = serde_json::to_vec_pretty(&run)
            .map_err(|e| Error::Other(format!("encoding run.json: {e}")))?;
        write_atomic(&self.file("run.json"), &run_json)?;
        let (shares, share_notes) = match self.start_shares(&cfg.shares) {
            Ok(x) => x,
            Err(e) => {
                self.clean_run_files();
                return Err(e);
            }
        };
        let plan = QemuPlan {
            qemu: qemu_bin,
            arch: arch.to_string(),
            accel,
            cpus: cfg.cpus,
            memory_mib: cfg.memory_mib,
            kernel: image.join(format!("vmlinuz-{arch}")),
            initrd: image.join(format!("initramfs-{arch}.img")),
            disk,
            shares,
            control_socket: crate::channel::control_socket(&self.dir),
            free_page_reporting: std::env::var("BERTH_VM_FREE_PAGE_REPORTING")
                .map_or(true, |v| v != "0"),
            console_log: console,
            pidfile: self.file("qemu.pid"),
            qmp_socket: self.file("qmp.sock"),
            kernel_args: cfg.kernel_args.clone(),
            daemonize: true,
        };
        let qemu_log_path = self.file("qemu.log");
        let mut qemu_log = std::fs::File::create(&qemu_log_path)
            .map_err(io_err(format!("creating {}", qemu_log_path.display())))?;
        {
            use std::io::Write;
            for n in &share_notes {
                let _ = writeln!(qemu_log, "berth-vm: {n}");
            }
        }
        let status = plan
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(qemu_log)
            .status()
            .map_err(|e| {
                self.stop_virtiofsd();
                io_err(format!("running {}", plan.qemu.display()))(e)
            })?;
        if !status.success() {
            let log = std::fs::read_to_string(&qemu_log_path).unwrap_or_default();
            self.stop_virtiofsd();
            self.clean_run_files();
            return Err(Error::Other(format!(
                "qemu did not start ({status}): {} (command: {} {})",
                log.trim(),
                plan.qemu.display(),
                plan.args()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        }
        if self.qemu_pid().is_none() {
            self.stop_virtiofsd();
            return Err(Error::Other(format!(
                "qemu started but its pidfile {} names no live qemu; see {}",
                self.file("qemu.pid").display(),
                qemu_log_path.display()
            )));
        }
        if let Err(e) = self.start_serve() {
            let _ = self.force_stop_qemu();
            self.stop_virtiofsd();
            self.clean_run_files();
            return Err(e);
        }
        Ok(run)
    }

    /// Chooses each share's transport for this boot and starts a `virtiofsd` per virtiofs
    /// share (stale ones from an earlier boot are stopped first). virtiofs where a usable
    /// virtiofsd is found (it needs root), 9p otherwise; `BERTH_VM_SHARE=9p` forces 9p,
    /// `BERTH_VM_SHARE=virtiofs` makes any fallback an error. Returns the plan and one note
    /// per share (written to qemu.log).
    #[cfg(unix)]
    fn start_shares(&self, shares: &[Share]) -> Result<(Vec<PlannedShare>, Vec<String>)> {
        self.stop_virtiofsd();
        let pref = SharePreference::from_env()?;
        let mut notes = Vec::new();
        let all_9p = |why: &str, notes: &mut Vec<String>| {
            for s in shares {
                notes.push(format!("share {}: 9p ({why})", s.tag));
            }
            shares.iter().cloned().map(PlannedShare::nine_p).collect()
        };
        if shares.is_empty() {
            return Ok((Vec::new(), notes));
        }
        if pref == SharePreference::NineP {
            return Ok((all_9p("BERTH_VM_SHARE=9p", &mut notes), notes));
        }
        let found = match self.virtiofsd_available() {
            Ok(found) => found,
            Err(why) => {
                if pref == SharePreference::Virtiofs {
                    return Err(Error::Other(format!(
                        "BERTH_VM_SHARE=virtiofs, but {why}; unset BERTH_VM_SHARE to fall back to 9p"
                    )));
                }
                return Ok((all_9p(&why, &mut notes), notes));
            }
        };
        let mut planned = Vec::new();
        for s in shares {
            let v = VirtiofsdPlan {
                bin: found.0.clone(),
                kind: found.1,
                socket: self.file(&format!("vfs-{}.sock", s.tag)),
                source: s.host_path.clone(),
            };
            let started = match v.unusable() {
                Some(why) => Err(why),
                None => self.spawn_virtiofsd(&v, &s.tag).map_err(|e| e.to_string()),
            };
            match started {
                Ok(pid) => {
                    notes.push(format!(
                        "share {}: virtiofs ({} pid {pid}, socket {})",
                        s.tag,
                        v.bin.display(),
                        v.socket.display()
                    ));
                    planned.push(PlannedShare {
                        share: s.clone(),
                        via: ShareVia::Virtiofs { socket: v.socket },
                    });
                }
                Err(why) if pref == SharePreference::Virtiofs => {
                    self.stop_virtiofsd();
                    return Err(Error::Other(format!(
                        "BERTH_VM_SHARE=virtiofs, but share {} cannot use it: {why}",
                        s.tag
                    )));
                }
                Err(why) => {
                    notes.push(format!("share {}: 9p ({why})", s.tag));
                    planned.push(PlannedShare::nine_p(s.clone()));
                }
            }
        }
        Ok((planned, notes))
    }

    /// The virtiofsd to use, or why there is none usable.
    #[cfg(unix)]
    fn virtiofsd_available(&self) -> std::result::Result<(PathBuf, qemu::VirtiofsdKind), String> {
        if !cfg!(target_os = "linux") {
            return Err("virtiofsd runs on Linux hosts only".into());
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err(
                "virtiofsd needs root (it serves every uid and sandboxes itself in namespaces)"
                    .into(),
            );
        }
        let bin = qemu::find_virtiofsd().ok_or(
            "no virtiofsd found ($BERTH_VM_VIRTIOFSD, PATH, /usr/libexec/virtiofsd, \
             /usr/lib/qemu/virtiofsd; Debian: apt install virtiofsd or qemu-system-common)",
        )?;
        let kind = qemu::virtiofsd_kind(&bin).map_err(|e| e.to_string())?;
        Ok((bin, kind))
    }

    /// Starts one virtiofsd (its own process group, so it outlives a caller's ctrl-C and
    /// the caller itself, like the daemonised qemu) and waits for its socket.
    #[cfg(unix)]
    fn spawn_virtiofsd(&self, v: &VirtiofsdPlan, tag: &str) -> Result<u32> {
        use std::os::unix::process::CommandExt;
        let _ = std::fs::remove_file(&v.socket);
        let log_path = self.file(&format!("vfs-{tag}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(io_err(format!("creating {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let mut child = Command::new(&v.bin)
            .args(v.args())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(io_err(format!("running {}", v.bin.display())))?;
        let pid = child.id();
        let pid_path = self.file(&format!("vfs-{tag}.pid"));
        if let Err(e) = write_atomic(&pid_path, pid.to_string().as_bytes()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if v.socket.exists() {
                break;
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&pid_path);
                let what = match exited {
                    Some(st) => format!("exited ({st})"),
                    None => "did not create its socket within 10 s".to_string(),
                };
                return Err(Error::Other(format!(
                    "virtiofsd for share {tag} {what}: {}",
                    tail_file(&log_path, 5).unwrap_or_default().trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Reap it when it exits while this process still runs (else init does).
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(pid)
    }

    /// Stops every virtiofsd this state directory recorded (SIGTERM, then SIGKILL) and
    /// removes their pid files and sockets. They also exit on their own when qemu goes.
    fn stop_virtiofsd(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(tag) = name
                .strip_prefix("vfs-")
                .and_then(|n| n.strip_suffix(".pid"))
            else {
                continue;
            };
            if let Some(pid) = read_pid(&e.path()).filter(|p| pid_alive(*p, &self.dir)) {
                signal(pid, libc::SIGTERM);
                if !wait_gone(pid, &self.dir, Duration::from_secs(3)) {
                    signal(pid, libc::SIGKILL);
                    wait_gone(pid, &self.dir, Duration::from_secs(2));
                }
            }
            let _ = std::fs::remove_file(e.path());
            let _ = std::fs::remove_file(self.file(&format!("vfs-{tag}.sock")));
        }
    }

    #[cfg(unix)]
    fn start_serve(&self) -> Result<()> {
        let bin = match &self.serve_bin {
            Some(b) => b.clone(),
            None => config::find_program("berth-vm", "BERTH_VM_BIN")?,
        };
        let log_path = self.file("serve.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        // `serve --detach` forks; its parent exits once the child serves the socket.
        let status = Command::new(&bin)
            .arg("serve")
            .arg("--detach")
            .arg("--state-dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .status()
            .map_err(io_err(format!("running {}", bin.display())))?;
        if !status.success() || self.serve_pid().is_none() {
            let tail = tail_file(&log_path, 10).unwrap_or_default();
            return Err(Error::Other(format!(
                "the host-side server ({} serve) did not start ({status}): {tail}",
                bin.display()
            )));
        }
        Ok(())
    }

    fn clean_run_files(&self) {
        for f in [
            "qemu.pid",
            "qmp.sock",
            "control.sock",
            "agent.sock",
            // An older version's agent token (the agent used to listen on a TCP port).
            "agent.token",
            "run.json",
            "serve.pid",
        ] {
            let _ = std::fs::remove_file(self.file(f));
        }
    }

    /// Waits until berthd answers in the guest and the engine socket is served on the host.
    #[cfg(unix)]
    pub fn wait_ready(&self, timeout: Duration) -> Result<ReadyInfo> {
        let run = self.run_info().ok_or_else(|| {
            Error::NotRunning(format!(
                "the VM in {} is not running: start it first",
                self.dir.display()
            ))
        })?;
        let deadline = Instant::now() + timeout;
        let mut agent = self.agent();
        agent.timeout = Duration::from_secs(2);
        let mut last;
        loop {
            if self.qemu_pid().is_none() {
                return Err(Error::Other(format!(
                    "the VM stopped while booting (logs in {}):\n{}",
                    self.dir.display(),
                    self.failure_report(30)
                )));
            }
            match agent.ping() {
                Ok(p) if p.berthd_ready => {
                    if std::os::unix::net::UnixStream::connect(&run.socket).is_ok() {
                        let since_start =
                            Duration::from_millis(now_ms().saturating_sub(run.started_unix_ms));
                        return Ok(ReadyInfo {
                            since_start,
                            guest_uptime_ms: p.uptime_ms,
                        });
                    }
                    last = format!("the engine socket {} does not answer", run.socket.display());
                }
                Ok(p) => last = format!("guest up {} ms, berthd not ready", p.uptime_ms),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(Error::Other(format!(
                    "the VM was not ready within {:?} ({last}); console ({}):\n{}",
                    timeout,
                    self.console_log().display(),
                    self.logs(30).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn force_stop_qemu(&self) -> StopOutcome {
        let Some(pid) = self.qemu_pid() else {
            return StopOutcome::AlreadyStopped;
        };
        #[cfg(unix)]
        if qemu::qmp_quit(&self.file("qmp.sock"), Duration::from_secs(5)).is_ok()
            && wait_gone(pid, &self.dir, Duration::from_secs(10))
        {
            return StopOutcome::Forced;
        }
        signal(pid, libc::SIGKILL);
        wait_gone(pid, &self.dir, Duration::from_secs(5));
        StopOutcome::Killed
    }

    fn stop_serve(&self) {
        if let Some(pid) = self.serve_pid() {
            signal(pid, libc::SIGTERM);
            if !wait_gone(pid, &self.dir, Duration::from_secs(5)) {
                signal(pid, libc::SIGKILL);
                wait_gone(pid, &self.dir, Duration::from_secs(2));
            }
        }
        let _ = std::fs::remove_file(self.file("serve.pid"));
    }

    /// Stops the VM: SHUTDOWN through the agent (berthd stops, the disk is unmounted), up to
    /// `graceful` for qemu to exit; then QMP `quit`, then SIGKILL. The host-side server stops too.
    pub fn stop(&self, graceful: Duration) -> Result<StopOutcome> {
        let run = self.run_info();
        let outcome = match self.qemu_pid() {
            None => StopOutcome::AlreadyStopped,
            Some(pid) => {
                let asked = run
                    .as_ref()
                    .map(|_| self.agent().shutdown().is_ok())
                    .unwrap_or(false);
                if asked && wait_gone(pid, &self.dir, graceful) {
                    StopOutcome::Graceful
                } else {
                    self.force_stop_qemu()
                }
            }
        };
        self.stop_serve();
        self.stop_virtiofsd();
        if let Some(r) = run {
            #[cfg(unix)]
            if std::os::unix::net::UnixStream::connect(&r.socket).is_err() {
                let _ = std::fs::remove_file(&r.socket);
            }
        }
        self.clean_run_files();
        Ok(outcome)
    }

    /// Stopped, starting (with progress) or running (with the guest's boot time).
    pub fn status(&self) -> Result<Status> {
        let console_log = self.console_log();
        if !self.exists() {
            return Ok(Status {
                state: VmState::NotCreated,
                qemu_pid: None,
                serve_pid: None,
                accel: None,
                socket: None,
                console_log,
            });
        }
        let cfg = self.config()?;
        let qemu_pid = self.qemu_pid();
        let run = self.run_info().filter(|_| qemu_pid.is_some());
        let state = match (&run, qemu_pid) {
            (Some(r), Some(_)) => {
                let mut a = self.agent();
                a.timeout = Duration::from_secs(2);
                let pong = a.ping().ok();
                match pong {
                    Some(p) if p.berthd_ready => VmState::Running {
                        boot_ms: std::fs::read_to_string(&console_log)
                            .ok()
                            .and_then(|t| ready_ms_from_console(&t)),
                        uptime_ms: p.uptime_ms,
                    },
                    p => VmState::Starting {
                        uptime_ms: p.map(|p| p.uptime_ms),
                        since_start_ms: Some(now_ms().saturating_sub(r.started_unix_ms)),
                    },
                }
            }
            (None, Some(_)) => VmState::Starting {
                uptime_ms: None,
                since_start_ms: None,
            },
            _ => VmState::Stopped,
        };
        Ok(Status {
            state,
            qemu_pid,
            serve_pid: self.serve_pid(),
            accel: run.as_ref().map(|r| r.accel),
            socket: Some(match &run {
                Some(r) => r.socket.clone(),
                None => self.socket_path(&cfg)?,
            }),
            console_log,
        })
    }

    /// The last `lines` lines of the guest's serial console.
    pub fn logs(&self, lines: usize) -> Result<String> {
        tail_file(&self.console_log(), lines)
    }

    /// What to show when a VM died while booting: the end of the serial console, then the
    /// end of every non-empty qemu/virtiofsd log of this boot (qemu's own complaints — a
    /// vhost-user backend gone, a disk lock — never reach the console).
    pub fn failure_report(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut section = |title: String, body: String| {
            let body = body.trim_end();
            if !body.is_empty() {
                out.push_str(&format!("--- {title}\n{body}\n"));
            }
        };
        section(
            "console".into(),
            tail_file(&self.console_log(), lines).unwrap_or_default(),
        );
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                        n.is_some_and(|n| {
                            n == "qemu.log" || (n.starts_with("vfs-") && n.ends_with(".log"))
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        for p in logs {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            section(name, tail_file(&p, lines).unwrap_or_default());
        }
        if out.is_empty() {
            out.push_str("(the console and qemu's log are empty)\n");
        }
        out
    }

    /// Changes CPUs and memory (applied at the next start) and grows the data disk (only while
    /// stopped; the guest grows its filesystem at boot). Shrinking the disk is refused.
    pub fn resize(
        &self,
        cpus: Option<u32>,
        memory_mib: Option<u32>,
        disk_gib: Option<u32>,
    ) -> Result<VmConfig> {
        let mut cfg = self.config()?;
        if let Some(c) = cpus {
            cfg.cpus = c;
        }
        if let Some(m) = memory_mib {
            cfg.memory_mib = m;
        }
        if let Some(d) = disk_gib {
            let disk = self.disk_path(&cfg);
            let current = qemu::disk_virtual_size(&disk)?;
            let wanted = u64::from(d) << 30;
            if wanted < current {
                return Err(Error::Other(format!(
                    "the data disk is {} GiB; it can grow but not shrink to {d} GiB (compact it to give back unused space)",
                    current >> 30
                )));
            }
            if wanted > current {
                if self.is_running() {
                    return Err(Error::Running(
                        "the data disk can only grow while the VM is stopped: stop it first".into(),
                    ));
                }
                cfg.disk_gib = d;
                cfg.validate()?;
                let size = format!("{d}G");
                qemu::qemu_img(&[
                    "resize".as_ref(),
                    "-q".as_ref(),
                    disk.as_os_str(),
                    size.as_ref(),
                ])?;
            }
        }
        cfg.validate()?;
        cfg.save(&self.config_path())?;
        Ok(cfg)
    }

    /// Rewrites the data disk without the space the guest freed (VM stopped). Returns the
    /// bytes it took on the host before and after.
    pub fn compact(&self) -> Result<(u64, u64)> {
        let cfg = self.config()?;
        if self.is_running() {
            return Err(Error::Running(
                "the data disk can only be compacted while the VM is stopped: stop it first".into(),
            ));
        }
        let disk = self.disk_path(&cfg);
        let before = allocated_bytes(&disk)?;
        let tmp = disk.with_extension("compact.qcow2");
        let _ = std::fs::remove_file(&tmp);
        let r = qemu::qemu_img(&[
            "convert".as_ref(),
            "-q".as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            "-o".as_ref(),
            "lazy_refcounts=on".as_ref(),
            disk.as_os_str(),
            tmp.as_os_str(),
        ]);
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &disk).map_err(io_err(format!("replacing {}", disk.display())))?;
        Ok((before, allocated_bytes(&disk)?))
    }

    /// Stops the VM if it runs, then removes its disk and state directory.
    pub fn delete(&self) -> Result<()> {
        if !self.dir.exists() {
            return Ok(());
        }
        if let Ok(cfg) = self.config() {
            self.stop(Duration::from_secs(10))?;
            let disk = self.disk_path(&cfg);
            if disk.exists() {
                std::fs::remove_file(&disk)
                    .map_err(io_err(format!("removing {}", disk.display())))?;
            }
        }
        std::fs::remove_dir_all(&self.dir)
            .map_err(io_err(format!("removing {}", self.dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_from_the_console() {
        let log = "[    0.1] Linux version\nberth-init: mounting /var/lib/berth\nberth-init: ready 3456\nberth-init: ready 99 (restarted)\n";
        assert_eq!(ready_ms_from_console(log), Some(99));
        assert_eq!(ready_ms_from_console("berth-init: ready\n"), None);
        assert_eq!(ready_ms_from_console(""), None);
    }

    #[test]
    fn liveness_needs_the_marker() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        assert!(pid_alive(me, exe.parent().unwrap()));
        assert!(!pid_alive(me, Path::new("/no/such/state/dir")));
        assert!(!pid_alive(0, Path::new("/")));
        assert!(!pid_alive(u32::MAX, Path::new("/")));
    }

    #[test]
    fn lifecycle_without_qemu_running() {
        if qemu::find_qemu_img().is_err() {
            eprintln!("skipped: qemu-img is not installed");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let vm = Vm::new(d.path().join("vm"));
        assert_eq!(vm.status().unwrap().state, VmState::NotCreated);
        assert!(matches!(vm.config(), Err(Error::NotCreated(_))));
        let cfg = VmConfig {
            disk_gib: 2,
            shares: vec![],
            socket: Some(d.path().join("b.sock")),
            ..VmConfig::default()
        };
        vm.create(cfg.clone()).unwrap();
        let disk = vm.disk_path(&cfg);
        assert_eq!(qemu::disk_virtual_size(&disk).unwrap(), 2 << 30);
        // Sparse: a 2 GiB disk takes well under a MiB.
        assert!(allocated_bytes(&disk).unwrap() < 1 << 20);
        assert!(vm
            .create(cfg.clone())
            .unwrap_err()
            .to_string()
            .contains("already exists"));
        let st = vm.status().unwrap();
        assert_eq!(st.state, VmState::Stopped);
        assert_eq!(
            st.socket.as_deref(),
            Some(d.path().join("b.sock").as_path())
        );
        assert_eq!(
            vm.stop(Duration::from_secs(1)).unwrap(),
            StopOutcome::AlreadyStopped
        );
        // Resize: CPUs/memory saved; the disk grows, never shrinks.
        let c = vm.resize(Some(3), Some(1024), Some(3)).unwrap();
        assert_eq!((c.cpus, c.memory_mib, c.disk_gib), (3, 1024, 3));
        assert_eq!(qemu::disk_virtual_size(&disk).unwrap(), 3 << 30);
        let e = vm.resize(None, None, Some(1)).unwrap_err().to_string();
        assert!(e.contains("not shrink"), "{e}");
        assert!(vm.resize(Some(0), None, None).is_err());
        assert_eq!(vm.config().unwrap().cpus, 3);
        let (_before, after) = vm.compact().unwrap();
        assert!(after < 1 << 20, "{after}");
        assert_eq!(qemu::disk_virtual_size(&disk).unwrap(), 3 << 30);
        vm.delete().unwrap();
        assert!(!d.path().join("vm").exists());
    }
}
