//! Cgroups v1 and v2: create, limit, account, freeze and remove a container's cgroup.
//!
//! # Layout detection
//! [`Layout::detect`] runs `statfs(2)` on `/sys/fs/cgroup`: `CGROUP2_SUPER_MAGIC` means the host
//! is fully unified ([`Layout::V2`]); anything else (a tmpfs holding per-controller mounts, in
//! legacy or hybrid mode) is [`Layout::V1`], and resources go to the v1 controller hierarchies.
//! In hybrid mode the v2 hierarchy at `/sys/fs/cgroup/unified` usually has no controllers and is
//! not used for resources. On v1, [`Cgroup::resolve`] finds the hierarchies in
//! `/proc/self/mountinfo` (fstype `cgroup`, controllers from the super options; named
//! hierarchies such as `name=systemd` are skipped); [`Cgroup::resolve_at`] instead treats each
//! directory under the given root as one hierarchy named after its controllers (`cpu,cpuacct`),
//! skipping symlinks, `unified` and `systemd`.
//!
//! # Path mapping
//! `linux.cgroupsPath` becomes one path relative to every hierarchy root (see
//! [`map_cgroups_path`]): `/a/b` and `a/b` both mean `<root>/a/b`; no path means `/berth/<id>`;
//! systemd style `slice:prefix:name` is mapped to the cgroupfs path systemd would use,
//! `/<slice expanded>/<prefix>-<name>.scope` (`a-b.slice` expands to `a.slice/a-b.slice`),
//! without talking to systemd. `..` components are rejected. The resolved [`Cgroup`] is
//! serialisable so later commands reopen it from the container's state without re-detecting.
//!
//! # v1 and v2 differences
//! - Directories: v1 creates the path in every controller hierarchy; v2 has one directory, and
//!   [`Cgroup::create`] enables every available controller in each ancestor's
//!   `cgroup.subtree_control` (never in the leaf, which holds processes).
//! - cpuset (v1): `cpuset.cpus`/`cpuset.mems` start empty and a process cannot join until they
//!   are set, so `create` copies the parent's values into each new level.
//! - Memory: v1 `memory.limit_in_bytes` / `memory.soft_limit_in_bytes` /
//!   `memory.memsw.limit_in_bytes` (only when swap accounting exists; written in the order
//!   that keeps memsw >= limit); v2 `memory.max` / `memory.low` / `memory.swap.max` (= OCI swap
//!   minus limit, since OCI swap means memory+swap). swappiness and disableOOMKiller are v1 only.
//! - CPU: v1 `cpu.shares`, `cpu.cfs_period_us`, `cpu.cfs_quota_us`; v2 `cpu.weight`
//!   (`1 + ((shares-2)*9999)/262142`) and `cpu.max` (`"<quota|max> <period>"`).
//! - Devices: v1 writes `devices.deny a` then each rule to `devices.allow`/`devices.deny` in
//!   spec order (v1 cannot express partial access on an `a` rule: it is treated as full); v2
//!   has no device files, so a `BPF_PROG_TYPE_CGROUP_DEVICE` program is generated from the
//!   rules, loaded and attached to the cgroup directory with `BPF_F_ALLOW_MULTI`, replacing
//!   earlier ones attached there.
//! - Freezing: v1 `freezer.state` (`FROZEN`/`THAWED`, waiting out `FREEZING`); v2
//!   `cgroup.freeze`, waiting for `frozen 1` in `cgroup.events`.
//! - Killing: v2 writes `cgroup.kill` for SIGKILL when the kernel has it; otherwise (and on v1)
//!   freeze, signal every process, thaw, so nothing forks past the signal.
//! - `linux.resources.unified` (key → value written verbatim) is v2 only; on v1 it is an error.
//!
//! [`Cgroup::destroy`] removes the container's directory (and any children it made) in every
//! hierarchy, retrying `EBUSY` for about a second while processes exit. Parents such as
//! `/berth` are shared between containers and are left in place: removing them could race
//! with another container's `create`.

mod devices;
mod fs;
mod path;
mod stats;
mod v1;
mod v2;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

pub use devices::{
    bpf_program, check_v1_expressible, docker_default_rules, load_program,
    parse_rules as parse_device_rules, BpfInsn, DevKind, DeviceRule,
};
pub use path::map_cgroups_path;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};
pub use v2::{blkio_weight_to_io, shares_to_weight, swap_max};

use crate::{Error, Result};

/// Where cgroup hierarchies are mounted on a normal host.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// How long freeze waits for the kernel to report the cgroup frozen.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long destroy retries `EBUSY` while processes exit.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(1);

/// v1 controllers we know by name (anything else in a mount's options is a mount flag).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Environment variable naming a cgroup2 mount to use instead of the host's default layout.
pub const ROOT_ENV: &str = "BERTH_CGROUP2_ROOT";

/// Which hierarchy layout the host has.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Legacy or hybrid: one hierarchy per controller (or group of controllers).
    V1,
    /// Unified: a single cgroup2 hierarchy.
    V2,
}

impl Layout {
    /// Detect the layout of [`DEFAULT_ROOT`].
    pub fn detect() -> Result<Layout> {
        Self::detect_at(Path::new(DEFAULT_ROOT))
    }

    /// `statfs(root)`: cgroup2 => V2, anything else => V1.
    pub fn detect_at(root: &Path) -> Result<Layout> {
        let st = nix::sys::statfs::statfs(root).map_err(|e| {
            Error::sys(
                format!(
                    "cgroup: statfs {} to detect the cgroup layout (is cgroupfs mounted?)",
                    root.display()
                ),
                e,
            )
        })?;
        Ok(
            if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
                Layout::V2
            } else {
                Layout::V1
            },
        )
    }
}

/// One mounted hierarchy: for v1 a controller (or co-mounted group), for v2 the unified tree.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 controllers bound to this hierarchy; empty for v2.
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
}

/// A container's cgroup. Serialisable so the runtime can keep it in its state file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    layout: Layout,
    /// Path relative to each hierarchy's mount, starting with `/`, normalised.
    path: String,
    hierarchies: Vec<Hierarchy>,
}

/// `pids.max` value: 0 or negative means unlimited.
pub(crate) fn pids_value(limit: i64) -> String {
    if limit <= 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

/// Hugepage sizes become part of a file name: allow only `[0-9A-Za-z]`.
pub(crate) fn validate_page_size(s: &str) -> Result<()> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::InvalidArgument(format!(
            "linux.resources.hugepageLimits: page size {s:?} must look like \"2MB\" or \"1GB\""
        )));
    }
    Ok(())
}

/// Undo mountinfo's octal escapes (`\040` for space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The v1 controller hierarchies listed in a mountinfo text.
pub fn v1_hierarchies_from_mountinfo(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        let (Some(fstype), Some(_src), Some(opts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        if fstype != "cgroup" {
            continue;
        }
        let Some(mount) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mut controllers: Vec<String> = opts
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() {
            continue;
        }
        controllers.sort();
        if out.iter().any(|h| h.controllers == controllers) {
            continue; // the same hierarchy mounted twice
        }
        out.push(Hierarchy {
            controllers,
            mount: PathBuf::from(unescape_mountinfo(mount)),
        });
    }
    out
}

fn v1_hierarchies_from_dir(root: &Path) -> Result<Vec<Hierarchy>> {
    let rd = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(root, e))?;
        let ft = e.file_type().map_err(|err| Error::io(e.path(), err))?;
        if !ft.is_dir() {
            continue; // symlinks are aliases of co-mounted hierarchies
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "unified" || name == "systemd" || name.starts_with("name=") {
            continue;
        }
        let mut controllers: Vec<String> = name.split(',').map(str::to_string).collect();
        controllers.sort();
        out.push(Hierarchy {
            controllers,
            mount: e.path(),
        });
    }
    out.sort_by(|a, b| a.mount.cmp(&b.mount));
    if out.is_empty() {
        return Err(Error::Cgroup(format!(
            "{}: no cgroup v1 controller hierarchies found; mount them (e.g. /sys/fs/cgroup/memory) or use cgroup v2",
            root.display()
        )));
    }
    Ok(out)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

impl Cgroup {
    /// Resolve the container's cgroup on this host (layout detected from `/sys/fs/cgroup`).
    pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup> {
        // A cgroup2 mount to use instead of /sys/fs/cgroup: on a hybrid host, the unified
        // hierarchy (/sys/fs/cgroup/unified). Also how the v2 code is exercised on v1 hosts.
        if let Some(root) = std::env::var_os(ROOT_ENV) {
            let root = Path::new(&root);
            return match Layout::detect_at(root)? {
                Layout::V2 => Self::resolve_at(root, Layout::V2, cgroups_path, id),
                Layout::V1 => Err(Error::Cgroup(format!(
                    "{ROOT_ENV}={} is not a cgroup2 mount: point it at one (e.g. /sys/fs/cgroup/unified) or unset it",
                    root.display()
                ))),
            };
        }
        let root = Path::new(DEFAULT_ROOT);
        match Layout::detect_at(root)? {
            Layout::V2 => Self::resolve_at(root, Layout::V2, cgroups_path, id),
            Layout::V1 => {
                let path = map_cgroups_path(cgroups_path, id)?;
                let mi = "/proc/self/mountinfo";
                let text = std::fs::read_to_string(mi).map_err(|e| Error::io(mi, e))?;
                let hierarchies = v1_hierarchies_from_mountinfo(&text);
                if hierarchies.is_empty() {
                    return Err(Error::Cgroup(format!(
                        "{mi} lists no cgroup v1 controller hierarchies and {DEFAULT_ROOT} is not cgroup2: mount cgroups first"
                    )));
                }
                Ok(Cgroup {
                    layout: Layout::V1,
                    path,
                    hierarchies,
                })
            }
        }
    }

    /// Resolve against a given root and layout. For V1 the root holds one directory per
    /// hierarchy (`memory`, `cpu,cpuacct`, ...); for V2 the root is the unified hierarchy.
    pub fn resolve_at(
        root: &Path,
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Cgroup> {
        let path = map_cgroups_path(cgroups_path, id)?;
        let hierarchies = match layout {
            Layout::V2 => vec![Hierarchy {
                controllers: Vec::new(),
                mount: root.to_path_buf(),
            }],
            Layout::V1 => v1_hierarchies_from_dir(root)?,
        };
        Ok(Cgroup {
            layout,
            path,
            hierarchies,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The cgroup path relative to each hierarchy root (`/berth/<id>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    fn rel(&self) -> &str {
        self.path.trim_start_matches('/')
    }

    /// The cgroup's directory in every hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.mount.join(self.rel()))
            .collect()
    }

    /// The directory holding `controller`'s files: v2 always the one directory; v1 the
    /// hierarchy with that controller, if mounted.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        match self.layout {
            Layout::V2 => self.hierarchies.first().map(|h| h.mount.join(self.rel())),
            Layout::V1 => self
                .hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.mount.join(self.rel())),
        }
    }

    pub(crate) fn root_hint(&self) -> String {
        self.hierarchies
            .first()
            .and_then(|h| h.mount.parent())
            .map_or_else(|| DEFAULT_ROOT.to_string(), |p| p.display().to_string())
    }

    /// The directory whose `cgroup.procs` lists the container's processes.
    fn primary_dir(&self) -> Result<PathBuf> {
        for c in ["pids", "freezer", "memory", "cpu", "devices"] {
            if let Some(d) = self.dir(c) {
                return Ok(d);
            }
        }
        self.dirs()
            .into_iter()
            .next()
            .ok_or_else(|| Error::Cgroup(format!("cgroup {} has no hierarchies", self.path)))
    }

    /// Create the cgroup in every hierarchy (like `mkdir -p`; an existing directory is fine).
    pub fn create(&self) -> Result<()> {
        for h in &self.hierarchies {
            let cpuset = h.controllers.iter().any(|c| c == "cpuset");
            let mut cur = h.mount.clone();
            if !cur.is_dir() {
                return Err(Error::Cgroup(format!(
                    "{}: cgroup hierarchy is not mounted (directory missing)",
                    cur.display()
                )));
            }
            let comps: Vec<&str> = self.rel().split('/').collect();
            for comp in &comps {
                if self.layout == Layout::V2 {
                    enable_all_controllers(&cur);
                }
                let parent = cur.clone();
                cur.push(comp);
                match std::fs::create_dir(&cur) {
                    Ok(()) => tracing::debug!(dir = %cur.display(), "created cgroup"),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Error::sys(format!("cgroup: mkdir {}", cur.display()), e))
                    }
                }
                if cpuset {
                    init_cpuset(&parent, &cur)?;
                }
            }
        }
        Ok(())
    }

    /// Apply `linux.resources`.
    pub fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        match self.layout {
            Layout::V1 => v1::apply(self, r),
            Layout::V2 => {
                let d = self.dir("").ok_or_else(|| {
                    Error::Cgroup(format!("cgroup {} has no v2 hierarchy", self.path))
                })?;
                v2::apply(&d, r)
            }
        }
    }

    /// Move `pid` (a whole process) into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for d in self.dirs() {
            fs::write(&d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Move the calling process, which must be single-threaded, into the cgroup. On v1 it
    /// writes "0" (itself) to each hierarchy's `tasks` file: the one migration the kernel does
    /// without taking its threadgroup lock for writing. Any other write (`cgroup.procs`, or a
    /// pid other than our own) takes it, and the first writer waits for an RCU grace period:
    /// milliseconds on every container start. On v2 it writes "0" to `cgroup.procs`.
    pub fn join_self(&self) -> Result<()> {
        let file = match self.layout {
            Layout::V1 => "tasks",
            Layout::V2 => "cgroup.procs",
        };
        for d in self.dirs() {
            fs::write(&d, file, "0")?;
        }
        Ok(())
    }

    /// Processes in the cgroup and its descendants, sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        collect_pids(&self.primary_dir()?, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freezer_dir(&self) -> Result<PathBuf> {
        self.dir("freezer").ok_or_else(|| {
            Error::Cgroup(format!(
                "cannot freeze cgroup {}: the v1 freezer controller is not mounted",
                self.path
            ))
        })
    }

    /// Freeze every process in the cgroup and wait until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<()> {
        let start = Instant::now();
        match self.layout {
            Layout::V1 => {
                let d = self.freezer_dir()?;
                loop {
                    fs::write(&d, "freezer.state", "FROZEN")?;
                    let state = fs::read(&d, "freezer.state")?;
                    if state.trim() == "FROZEN" {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        let _ = fs::write(&d, "freezer.state", "THAWED");
                        return Err(Error::Cgroup(format!(
                            "{}: still {} after {:?}; a process may be stuck in uninterruptible sleep, try again",
                            d.join("freezer.state").display(),
                            state.trim(),
                            FREEZE_TIMEOUT
                        )));
                    }
                    sleep_ms(10);
                }
            }
            Layout::V2 => {
                let d = self.v2_dir()?;
                fs::write(&d, "cgroup.freeze", "1")?;
                loop {
                    if self.is_frozen()? {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        let _ = fs::write(&d, "cgroup.freeze", "0");
                        return Err(Error::Cgroup(format!(
                            "{}: not \"frozen 1\" after {:?}; try again",
                            d.join("cgroup.events").display(),
                            FREEZE_TIMEOUT
                        )));
                    }
                    sleep_ms(10);
                }
            }
        }
    }

    /// Resume the cgroup's processes.
    pub fn thaw(&self) -> Result<()> {
        match self.layout {
            Layout::V1 => fs::write(&self.freezer_dir()?, "freezer.state", "THAWED"),
            Layout::V2 => fs::write(&self.v2_dir()?, "cgroup.freeze", "0"),
        }
    }

    /// Whether the cgroup is (completely) frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.layout {
            Layout::V1 => Ok(fs::read(&self.freezer_dir()?, "freezer.state")?.trim() == "FROZEN"),
            Layout::V2 => {
                let d = self.v2_dir()?;
                match fs::read_opt(&d, "cgroup.events")? {
                    Some(ev) => Ok(fs::parse_flat_keyed(&ev).get("frozen") == Some(&1)),
                    None => Ok(fs::read(&d, "cgroup.freeze")?.trim() == "1"),
                }
            }
        }
    }

    fn v2_dir(&self) -> Result<PathBuf> {
        self.dir("")
            .ok_or_else(|| Error::Cgroup(format!("cgroup {} has no v2 hierarchy", self.path)))
    }

    /// Resource statistics.
    pub fn stats(&self) -> Result<Stats> {
        match self.layout {
            Layout::V2 => stats::v2_all(&self.v2_dir()?),
            Layout::V1 => {
                let mut s = Stats {
                    cpu: stats::v1_cpu(self.dir("cpuacct").as_deref(), self.dir("cpu").as_deref())?,
                    ..Default::default()
                };
                if let Some(d) = self.dir("memory") {
                    s.memory = stats::v1_memory(&d)?;
                }
                if let Some(d) = self.dir("pids") {
                    s.pids = stats::v1_pids(&d)?;
                }
                if let Some(d) = self.dir("blkio") {
                    s.blkio = stats::v1_blkio(&d)?;
                }
                if let Some(d) = self.dir("hugetlb") {
                    s.hugetlb = stats::v1_hugetlb(&d)?;
                }
                Ok(s)
            }
        }
    }

    /// Send `sig` to every process in the cgroup.
    pub fn kill_all(&self, sig: Signal) -> Result<()> {
        if self.layout == Layout::V2 && sig == Signal::SIGKILL {
            let d = self.v2_dir()?;
            if fs::exists(&d, "cgroup.kill") {
                return fs::write(&d, "cgroup.kill", "1");
            }
        }
        // Freeze first so nothing forks between listing and signalling. A cgroup that was
        // already frozen (a paused container) stays frozen, except for SIGKILL, which frozen
        // v1 tasks only act on once thawed.
        let was_frozen = self.is_frozen().unwrap_or(false);
        let frozen = match self.freeze() {
            Ok(()) => !was_frozen || sig == Signal::SIGKILL,
            Err(e) => {
                tracing::warn!(cgroup = %self.path, error = %e, "cannot freeze before signalling; signalling unfrozen");
                false
            }
        };
        let res = self.pids().and_then(|pids| {
            for pid in pids {
                match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        return Err(Error::sys(
                            format!("cgroup {}: kill({pid}, {sig})", self.path),
                            e,
                        ))
                    }
                }
            }
            Ok(())
        });
        if frozen {
            self.thaw()?;
        }
        res
    }

    /// Remove the cgroup (and any child cgroups) from every hierarchy.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for d in self.dirs() {
            if let Err(e) = remove_tree(&d) {
                tracing::warn!(dir = %d.display(), error = %e, "cannot remove cgroup");
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// v2: enable in `dir`'s `cgroup.subtree_control` every controller it has available.
fn enable_all_controllers(dir: &Path) {
    let avail = match fs::read_opt(dir, "cgroup.controllers") {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read available controllers");
            return;
        }
    };
    let enabled = fs::read_opt(dir, "cgroup.subtree_control")
        .ok()
        .flatten()
        .unwrap_or_default();
    for c in avail.split_whitespace() {
        if enabled.split_whitespace().any(|e| e == c) {
            continue;
        }
        if let Err(e) = fs::write(dir, "cgroup.subtree_control", &format!("+{c}")) {
            // Typically EBUSY: the cgroup holds processes itself. Limits needing this
            // controller will then fail in apply() with the missing file named.
            tracing::warn!(error = %e, "cannot enable cgroup controller {c}");
        }
    }
}

/// v1 cpuset: a new cgroup's cpus/mems are empty and no process can join until set.
fn init_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let Some(cur) = fs::read_opt(dir, f)? else {
            continue;
        };
        if !cur.trim().is_empty() {
            continue;
        }
        let Some(pv) = fs::read_opt(parent, f)? else {
            continue;
        };
        if pv.trim().is_empty() {
            return Err(Error::Cgroup(format!(
                "{}: empty, so {} cannot be initialised; set it on the parent cgroup",
                parent.join(f).display(),
                dir.join(f).display()
            )));
        }
        fs::write(dir, f, pv.trim())?;
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&procs) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => return Ok(()),
        Err(e) => return Err(Error::io(procs, e)),
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line
            .parse::<i32>()
            .map_err(|e| Error::Cgroup(format!("{}: bad pid {line:?}: {e}", procs.display())))?;
        out.push(pid);
    }
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// rmdir `dir` after its child directories, retrying EBUSY while processes exit.
fn remove_tree(dir: &Path) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    let start = Instant::now();
    // Processes leave a cgroup within microseconds of exiting: poll fast, then back off.
    let mut pause = Duration::from_micros(50);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => {
                tracing::debug!(dir = %dir.display(), "removed cgroup");
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < DESTROY_TIMEOUT =>
            {
                tracing::debug!(dir = %dir.display(), ?pause, "cgroup busy; retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Err(e) => {
                let mut left = Vec::new();
                let _ = collect_pids(dir, &mut left);
                let hint = if left.is_empty() {
                    String::new()
                } else {
                    format!(" (processes still inside: {left:?}; kill them first)")
                };
                return Err(Error::sys(
                    format!("cgroup: rmdir {}{hint}", dir.display()),
                    e,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parsing() {
        let mi = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:32 / /mnt/my\\040mem rw,relatime - cgroup cgroup rw,memory
";
        let h = v1_hierarchies_from_mountinfo(mi);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h[0].mount, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[1].controllers, vec!["memory"]);
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
