//! Berth's VM as the app's engine: the engine mode (native berthd, or berthd inside the VM;
//! on macOS/Windows always the VM), the VM's resources in Settings, its console log, and the
//! lifecycle the engine's Start/Stop (buttons and tray) run in VM mode.
//!
//! The mode and the resources of a VM not created yet live in the app's settings file,
//! `$BERTH_DESKTOP_SETTINGS`, else `$XDG_CONFIG_HOME/berth/desktop.json`, else
//! `~/.config/berth/desktop.json`. The VM itself is `berth_vm::Vm` over its state directory:
//! `$BERTH_VM_STATE_DIR`, else `~/.berth/vm`. A VM the app creates serves its engine socket at
//! `$BERTH_VM_SOCKET`, else `~/.berth/berth.sock`. The accelerator is `BERTH_VM_ACCEL` (read
//! by berth-vm), else the VM's config, else the platform's hypervisor.

use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{EngineMode, EngineStatus, VmProgress, VmResources, VmSettings};
use berth_vm::{Vm, VmConfig, VmState};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tauri::State;

/// The largest data disk the app offers (16 TiB).
const MAX_DISK_GIB: u32 = 16 * 1024;
/// The smallest memory the app offers: berthd and a container or two need it.
const MIN_MEMORY_MIB: u32 = 512;
/// At most this many console lines per `vm_logs` call.
const MAX_LOG_LINES: u32 = 5000;

/// The app's own settings file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Stored {
    engine_mode: EngineMode,
    /// The resources of a VM not created yet (Start creates it with these).
    vm: Option<StoredVm>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredVm {
    cpus: u32,
    memory_mib: u32,
    disk_gib: u32,
    disk_path: Option<PathBuf>,
}

/// The VM side of the engine: where it lives, and the app's settings for it.
#[derive(Debug)]
pub struct VmEngine {
    vm: Vm,
    settings_path: PathBuf,
    socket_override: Option<PathBuf>,
    forced: bool,
    stored: std::sync::Mutex<Stored>,
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn vm_err(e: berth_vm::Error) -> berth_desktop_dto::AppError {
    match e {
        berth_vm::Error::Running(m) | berth_vm::Error::NotRunning(m) => error::invalid(m),
        other => error::system(other.to_string()),
    }
}

/// Runs blocking VM work (qemu-img, process waits, agent pings) off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_vm::Result<T> + Send + 'static,
) -> Res<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| error::system(format!("the VM task failed: {e}")))?
        .map_err(vm_err)
}

/// The last step the guest's init logged, without the console's noise before it.
pub fn last_init_step(console: &str) -> Option<String> {
    console.lines().rev().find_map(|l| {
        let at = l.find("berth-init:")?;
        let step = l[at..].trim();
        (!step.is_empty()).then(|| step.to_string())
    })
}

/// The engine mode a page sends (`native` or `vm`).
pub fn parse_mode(mode: &str) -> Res<EngineMode> {
    match mode.trim().to_ascii_lowercase().as_str() {
        "native" => Ok(EngineMode::Native),
        "vm" => Ok(EngineMode::Vm),
        other => Err(error::invalid(format!(
            "unknown engine mode \"{other}\": use \"native\" (berthd on this host) or \"vm\" (Berth's VM)"
        ))),
    }
}

/// Checks Apply's values; the disk path is `None` for the state directory's default.
pub fn validate_resources(
    r: &VmResources,
    host_memory_mib: u64,
) -> Res<(u32, u32, u32, Option<PathBuf>)> {
    if r.cpus == 0 || r.cpus > 255 {
        return Err(error::invalid(format!(
            "CPUs = {}: give the VM 1 to 255 virtual CPUs",
            r.cpus
        )));
    }
    if r.memory_mib < MIN_MEMORY_MIB {
        return Err(error::invalid(format!(
            "Memory = {} MiB: give the VM at least {MIN_MEMORY_MIB} MiB",
            r.memory_mib
        )));
    }
    if host_memory_mib > 0 && u64::from(r.memory_mib) > host_memory_mib {
        return Err(error::invalid(format!(
            "Memory = {} MiB is more than this machine has ({host_memory_mib} MiB): give the VM less",
            r.memory_mib
        )));
    }
    if r.disk_gib == 0 || r.disk_gib > MAX_DISK_GIB {
        return Err(error::invalid(format!(
            "Disk size = {} GiB: give the data disk 1 to {MAX_DISK_GIB} GiB (it is sparse: it takes only what the VM writes)",
            r.disk_gib
        )));
    }
    let path = r.disk_path.trim();
    let disk = if path.is_empty() {
        None
    } else {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(error::invalid(format!(
                "Disk location \"{path}\": give an absolute path to the disk file, e.g. /home/me/berth/data.qcow2"
            )));
        }
        if path.contains(',') {
            return Err(error::invalid(format!(
                "Disk location \"{path}\": the path holds a comma, which qemu's drive option cannot carry; choose another"
            )));
        }
        if p.is_dir() {
            return Err(error::invalid(format!(
                "Disk location \"{path}\" is a folder: give the disk file's path in it, e.g. {}",
                p.join("data.qcow2").display()
            )));
        }
        Some(p.to_path_buf())
    };
    Ok((r.cpus, r.memory_mib, r.disk_gib, disk))
}

fn host_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// MemTotal in MiB (0: unknown).
fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn settings_path() -> PathBuf {
    if let Some(p) = env_path("BERTH_DESKTOP_SETTINGS") {
        return p;
    }
    let config = env_path("XDG_CONFIG_HOME")
        .or_else(|| berth_vm::config::home_dir().map(|h| h.join(".config")));
    config
        .unwrap_or_else(std::env::temp_dir)
        .join("berth")
        .join("desktop.json")
}

impl VmEngine {
    pub fn from_env() -> VmEngine {
        let dir = env_path("BERTH_VM_STATE_DIR")
            .or_else(|| berth_vm::config::default_state_dir().ok())
            .unwrap_or_else(|| std::env::temp_dir().join("berth-vm"));
        VmEngine::new(
            Vm::new(dir),
            settings_path(),
            env_path("BERTH_VM_SOCKET"),
            !cfg!(target_os = "linux"),
        )
    }

    fn new(vm: Vm, settings_path: PathBuf, socket: Option<PathBuf>, forced: bool) -> VmEngine {
        let stored = match std::fs::read_to_string(&settings_path) {
            Ok(t) => serde_json::from_str(&t).unwrap_or_else(|e| {
                tracing::warn!(
                    path = %settings_path.display(),
                    "the app's settings do not parse ({e}); using the defaults"
                );
                Stored::default()
            }),
            Err(_) => Stored::default(),
        };
        VmEngine {
            vm,
            settings_path,
            socket_override: socket,
            forced,
            stored: std::sync::Mutex::new(stored),
        }
    }

    fn stored(&self) -> Stored {
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn save(&self, f: impl FnOnce(&mut Stored)) -> Res<()> {
        let mut guard = self.stored.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        f(&mut next);
        let text = serde_json::to_string_pretty(&next)
            .map_err(|e| error::system(format!("encoding the app's settings: {e}")))?;
        if let Some(dir) = self.settings_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| error::system(format!("Cannot create {}: {e}", dir.display())))?;
        }
        let tmp = self.settings_path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, &self.settings_path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                error::system(format!(
                    "Cannot write {}: {e}",
                    self.settings_path.display()
                ))
            })?;
        *guard = next;
        Ok(())
    }

    /// The mode the app starts in and switches with.
    pub fn mode(&self) -> EngineMode {
        if self.forced {
            EngineMode::Vm
        } else {
            self.stored().engine_mode
        }
    }

    /// macOS/Windows: the VM is the only engine.
    pub fn mode_forced(&self) -> bool {
        self.forced
    }

    pub fn save_mode(&self, mode: EngineMode) -> Res<()> {
        self.save(|s| s.engine_mode = mode)
    }

    /// The VM's config, or the one Start would create it with.
    fn config(&self) -> VmConfig {
        if let Ok(c) = self.vm.config() {
            return c;
        }
        let mut c = VmConfig::default();
        if let Some(v) = self.stored().vm {
            c.cpus = v.cpus;
            c.memory_mib = v.memory_mib;
            c.disk_gib = v.disk_gib;
            c.disk_path = v.disk_path;
        }
        c.socket = self.socket_override.clone();
        c
    }

    /// The engine socket the VM serves (or will).
    pub fn socket(&self) -> PathBuf {
        self.vm
            .socket_path(&self.config())
            .unwrap_or_else(|_| self.vm.state_dir().join("berth.sock"))
    }

    pub fn is_running(&self) -> bool {
        self.vm.is_running()
    }

    /// Why the VM cannot start here: no image, no qemu, no `berth-vm` program.
    pub fn problem(&self) -> Option<String> {
        let cfg = self.config();
        let arch = berth_vm::config::host_arch();
        let checks = [
            berth_vm::config::find_image_dir(cfg.image_dir.as_deref(), arch).map(|_| ()),
            berth_vm::qemu::find_qemu(cfg.qemu.as_deref(), arch).map(|_| ()),
            berth_vm::qemu::find_qemu_img().map(|_| ()),
            berth_vm::config::find_program("berth-vm", "BERTH_VM_BIN").map(|_| ()),
            berth_vm::qemu::choose_accel(cfg.accel).map(|_| ()),
        ];
        checks
            .into_iter()
            .find_map(|r| r.err())
            .map(|e| e.to_string())
    }

    /// The VM's state without asking the guest anything (cheap: files and pids).
    pub fn idle_progress(&self) -> VmProgress {
        let state = if !self.vm.exists() {
            "not_created"
        } else if self.vm.is_running() {
            "running"
        } else {
            "stopped"
        };
        VmProgress {
            state: state.into(),
            elapsed_ms: None,
            step: None,
            boot_ms: None,
            accel: self
                .vm
                .run_info()
                .filter(|_| state == "running")
                .map(|r| r.accel.to_string()),
        }
    }

    /// Creates the VM if there is none (with the settings' resources), then boots it.
    pub async fn launch(&self) -> Res<()> {
        let vm = self.vm.clone();
        let cfg = self.config();
        blocking(move || {
            if !vm.exists() {
                vm.create(cfg)?;
            }
            vm.start().map(|_| ())
        })
        .await
    }

    /// The VM's state with the boot's progress (asks the guest's agent: up to 2 s).
    pub async fn progress(&self) -> Res<VmProgress> {
        let vm = self.vm.clone();
        let st = blocking(move || vm.status()).await?;
        let console = std::fs::read_to_string(&st.console_log).unwrap_or_default();
        let accel = st.accel.map(|a| a.to_string());
        Ok(match st.state {
            VmState::NotCreated => VmProgress {
                state: "not_created".into(),
                elapsed_ms: None,
                step: None,
                boot_ms: None,
                accel,
            },
            VmState::Stopped => VmProgress {
                state: "stopped".into(),
                elapsed_ms: None,
                step: None,
                boot_ms: None,
                accel,
            },
            VmState::Starting { since_start_ms, .. } => VmProgress {
                state: "starting".into(),
                elapsed_ms: since_start_ms,
                step: last_init_step(&console),
                boot_ms: None,
                accel,
            },
            VmState::Running { boot_ms, .. } => VmProgress {
                state: "running".into(),
                elapsed_ms: None,
                step: None,
                boot_ms,
                accel,
            },
        })
    }

    /// The console's last `lines` lines ("" when there is none).
    /// The console's and qemu's last lines, for a VM that died while booting.
    pub async fn failure_report(&self, lines: usize) -> String {
        let vm = self.vm.clone();
        blocking(move || Ok(vm.failure_report(lines)))
            .await
            .unwrap_or_default()
    }

    /// Stops the VM (graceful, forced after 30 s); says how.
    pub async fn stop(&self) -> Res<String> {
        let vm = self.vm.clone();
        let how = blocking(move || vm.stop(Duration::from_secs(30))).await?;
        Ok(match how {
            berth_vm::StopOutcome::AlreadyStopped => "it was not running",
            berth_vm::StopOutcome::Graceful => "clean shutdown",
            berth_vm::StopOutcome::Forced => "forced after 30 s",
            berth_vm::StopOutcome::Killed => "killed",
        }
        .into())
    }

    /// How long Start waits for the VM's engine: `BERTH_VM_BOOT_TIMEOUT` seconds, else 300
    /// (qemu without a hypervisor boots in 10–20 s; a first boot formats the disk).
    pub fn boot_timeout(&self) -> Duration {
        let secs = std::env::var("BERTH_VM_BOOT_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(300);
        Duration::from_secs(secs)
    }

    /// The Settings section's view.
    async fn settings(&self, mode: EngineMode) -> Res<VmSettings> {
        let cfg = self.config();
        let created = self.vm.exists();
        let state = if created {
            self.progress().await?.state
        } else {
            "not_created".to_string()
        };
        let (accel, accel_source) = match std::env::var("BERTH_VM_ACCEL")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(v) => (v.trim().to_ascii_lowercase(), "env"),
            None => match cfg.accel {
                Some(a) => (a.to_string(), "config"),
                None => ("auto".to_string(), "auto"),
            },
        };
        Ok(VmSettings {
            mode,
            mode_forced: self.forced,
            cpus: cfg.cpus,
            memory_mib: cfg.memory_mib,
            disk_gib: cfg.disk_gib,
            disk_path: self.vm.disk_path(&cfg).display().to_string(),
            state_dir: self.vm.state_dir().display().to_string(),
            socket: self.socket().display().to_string(),
            accel,
            accel_source: accel_source.into(),
            created,
            state,
            problem: self.problem(),
            host_cpus: host_cpus(),
            host_memory_mib: host_memory_mib(),
        })
    }

    /// Apply: saved for a VM not created yet; `resize` for a stopped one; refused while it
    /// runs.
    async fn apply(&self, r: &VmResources) -> Res<()> {
        let (cpus, memory_mib, disk_gib, disk) = validate_resources(r, host_memory_mib())?;
        if !self.vm.exists() {
            let default_disk = self.vm.disk_path(&VmConfig::default());
            let disk_path = disk.filter(|d| *d != default_disk);
            return self.save(|s| {
                s.vm = Some(StoredVm {
                    cpus,
                    memory_mib,
                    disk_gib,
                    disk_path,
                })
            });
        }
        if self.vm.is_running() {
            return Err(error::invalid(
                "The VM is running: stop the engine first, then Apply (CPUs, memory and the disk change while the VM is off)",
            ));
        }
        let cfg = self.config();
        let current = self.vm.disk_path(&cfg);
        if let Some(d) = disk.filter(|d| *d != current) {
            return Err(error::invalid(format!(
                "The data disk is at {}; it cannot move to {} once the VM exists: delete the VM (its images and volumes go with it) to create it elsewhere",
                current.display(),
                d.display()
            )));
        }
        let vm = self.vm.clone();
        blocking(move || vm.resize(Some(cpus), Some(memory_mib), Some(disk_gib))).await?;
        Ok(())
    }
}

async fn view(app: &App) -> Res<VmSettings> {
    app.engine.vm.settings(app.engine.mode()).await
}

/// The Settings page's engine section.
#[tauri::command]
pub async fn vm_settings(app: State<'_, App>) -> Res<VmSettings> {
    view(&app).await
}

/// Switches the engine between `native` and `vm` (saved; the app reconnects at once).
#[tauri::command]
pub async fn engine_mode_set(app: State<'_, App>, mode: String) -> Res<EngineStatus> {
    let mode = parse_mode(&mode)?;
    app.engine.set_mode(mode).await
}

/// Apply: the VM's CPUs, memory, disk size and location.
#[tauri::command]
pub async fn vm_apply(app: State<'_, App>, resources: VmResources) -> Res<VmSettings> {
    app.engine.vm.apply(&resources).await?;
    view(&app).await
}

/// The last `lines` lines of the VM's serial console (default 200).
#[tauri::command]
pub async fn vm_logs(app: State<'_, App>, lines: Option<u32>) -> Res<String> {
    let n = lines.unwrap_or(200);
    if n == 0 || n > MAX_LOG_LINES {
        return Err(error::invalid(format!(
            "lines = {n}: ask for 1 to {MAX_LOG_LINES} console lines"
        )));
    }
    let vm = app.engine.vm.vm.clone();
    if !vm.console_log().exists() {
        return Ok(String::new());
    }
    blocking(move || vm.logs(usize::try_from(n).unwrap_or(200))).await
}

/// Deletes the VM: stops it (and the engine, in VM mode), removes its disk and state.
#[tauri::command]
pub async fn vm_delete(app: State<'_, App>) -> Res<VmSettings> {
    if app.engine.vm.is_running() {
        if app.engine.mode() == EngineMode::Vm {
            app.engine.stop().await?;
        } else {
            app.engine.vm.stop().await?;
        }
    }
    let vm = app.engine.vm.vm.clone();
    blocking(move || vm.delete()).await?;
    view(&app).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_desktop_dto::ErrorCode;

    fn res(cpus: u32, memory_mib: u32, disk_gib: u32, disk_path: &str) -> VmResources {
        VmResources {
            cpus,
            memory_mib,
            disk_gib,
            disk_path: disk_path.into(),
        }
    }

    #[test]
    fn resources_are_checked_with_the_field_named() {
        let ok = validate_resources(&res(2, 2048, 64, ""), 8192).unwrap();
        assert_eq!(ok, (2, 2048, 64, None));
        let ok = validate_resources(&res(4, 1024, 10, " /srv/berth/d.qcow2 "), 0).unwrap();
        assert_eq!(ok.3, Some(PathBuf::from("/srv/berth/d.qcow2")));
        let bad = |r: VmResources| {
            let e = validate_resources(&r, 8192).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput);
            e.message
        };
        assert!(bad(res(0, 2048, 64, "")).contains("CPUs = 0"));
        assert!(bad(res(256, 2048, 64, "")).contains("1 to 255"));
        assert!(bad(res(2, 256, 64, "")).contains("at least 512 MiB"));
        assert!(bad(res(2, 16384, 64, "")).contains("more than this machine has (8192 MiB)"));
        assert!(bad(res(2, 2048, 0, "")).contains("Disk size = 0 GiB"));
        assert!(bad(res(2, 2048, MAX_DISK_GIB + 1, "")).contains("1 to 16384 GiB"));
        assert!(bad(res(2, 2048, 64, "disk.qcow2")).contains("absolute path"));
        assert!(bad(res(2, 2048, 64, "/a,b/disk.qcow2")).contains("comma"));
        let dir = tempfile::tempdir().unwrap();
        let m = bad(res(2, 2048, 64, &dir.path().display().to_string()));
        assert!(m.contains("is a folder") && m.contains("data.qcow2"), "{m}");
    }

    #[test]
    fn modes_parse_and_others_are_refused() {
        assert_eq!(parse_mode("vm").unwrap(), EngineMode::Vm);
        assert_eq!(parse_mode(" Native ").unwrap(), EngineMode::Native);
        let e = parse_mode("docker").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("\"docker\"") && e.message.contains("\"vm\""));
    }

    #[test]
    fn the_last_init_step_is_the_progress() {
        let log = "[    1.2] Linux version\r\n\u{1b}[0mberth-init: modules (1200 ms)\nberthd: listening\nberth-init: data disk (3100 ms)\nsomething else\n";
        assert_eq!(
            last_init_step(log).as_deref(),
            Some("berth-init: data disk (3100 ms)")
        );
        assert_eq!(last_init_step("no init yet\n"), None);
    }

    #[test]
    fn settings_persist_and_feed_the_vm_config() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("cfg").join("desktop.json");
        let sock = d.path().join("b.sock");
        let e = VmEngine::new(
            Vm::new(d.path().join("vm")),
            path.clone(),
            Some(sock.clone()),
            false,
        );
        assert_eq!(e.mode(), EngineMode::Native);
        e.save_mode(EngineMode::Vm).unwrap();
        assert_eq!(e.socket(), sock);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(e.apply(&res(3, 1024, 8, ""))).unwrap();
        // A fresh handle reads what was saved.
        let again = VmEngine::new(
            Vm::new(d.path().join("vm")),
            path.clone(),
            Some(sock),
            false,
        );
        assert_eq!(again.mode(), EngineMode::Vm);
        let c = again.config();
        assert_eq!((c.cpus, c.memory_mib, c.disk_gib), (3, 1024, 8));
        let s = rt.block_on(again.settings(EngineMode::Vm)).unwrap();
        assert_eq!((s.created, s.state.as_str()), (false, "not_created"));
        assert!(s.disk_path.ends_with("data.qcow2"), "{}", s.disk_path);
        assert_eq!(again.idle_progress().state, "not_created");
        // A bad value is refused and nothing changes.
        assert!(rt.block_on(again.apply(&res(0, 1024, 8, ""))).is_err());
        assert_eq!(again.config().cpus, 3);
        // Forced (macOS/Windows): always the VM.
        std::fs::write(&path, r#"{"engine_mode":"native"}"#).unwrap();
        let forced = VmEngine::new(Vm::new(d.path().join("vm")), path, None, true);
        assert_eq!(forced.mode(), EngineMode::Vm);
    }
}
