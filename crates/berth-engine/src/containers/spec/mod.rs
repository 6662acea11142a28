//! The OCI runtime spec for a container: Docker's default confinement, the process from the
//! image config and the create body, mounts, namespaces and cgroup resources.
//!
//! [`merge_image_config`] runs once at create time; [`build`] runs at every start and returns
//! the bundle's `config.json` for berth-runtime. `build` reads only the container's
//! /etc/passwd and /etc/group (inside the rootfs, by fd), the host's cgroup type, kernel
//! version and hostname, and, for `--privileged` and `--device`, the host's device nodes.

mod merge;
mod seccomp;
pub mod user;

#[cfg(test)]
mod tests;

use super::config::{ContainerConfig, HostConfig};
use crate::images::{Error, Result};
use oci_spec::runtime::Capability;
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

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
///
/// - Env: the image's variables in its order, the container's value winning for a key both
///   set; the container's other variables appended.
/// - Entrypoint: the image's when the container gives none (`None`); `[]` or `[""]` (the CLI's
///   `--entrypoint ""`) clears it. Cmd: the image's only when the container gives neither a
///   Cmd nor an Entrypoint.
/// - WorkingDir, User, StopSignal, Shell, OnBuild: the container's if set, else the image's.
/// - Healthcheck: the container's, each unset field (Test `[]`, zero durations) taken from
///   the image's.
/// - ExposedPorts, Volumes: unioned. Labels: merged, the container's winning.
pub fn merge_image_config(
    config: &mut ContainerConfig,
    image: &berth_store::image::ContainerConfig,
) {
    merge::merge(config, image)
}

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The container paths masked (with /dev/null or an empty tmpfs) by default.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// The container paths made read-only by default.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// dockerd's default RLIMIT_NOFILE (soft and hard).
const DEFAULT_NOFILE: u64 = 1_048_576;

/// The default RLIMIT_NOFILE for a container: dockerd's 1048576, lowered to what the runtime
/// (which inherits the engine's limits and capabilities) can actually set: the kernel's
/// `fs.nr_open`, and, without CAP_SYS_RESOURCE (a sandboxed engine), the engine's own hard
/// limit. Asking for more would make every container start fail with EPERM.
fn default_nofile() -> u64 {
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_NOFILE);
    let mut limit = DEFAULT_NOFILE.min(nr_open);
    if !has_cap_sys_resource() {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the live struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) } == 0 {
            limit = limit.min(cur.rlim_max);
        }
    }
    limit
}

/// Does this process hold CAP_SYS_RESOURCE (bit 24 of CapEff)?
fn has_cap_sys_resource() -> bool {
    own_cap_set("CapEff").is_some_and(|eff| eff & (1 << 24) != 0)
}

/// One of this process's capability sets (`CapEff`, `CapBnd`, ...) from /proc/self/status.
fn own_cap_set(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Check, without a root filesystem, everything [`build`] would refuse in the create body:
/// SecurityOpt (including a seccomp profile's text), CapAdd/CapDrop, Ulimits, OomScoreAdj,
/// the namespace modes, resources, `--device` paths and WorkingDir. Docker refuses these at
/// create time (400); call this from create so a bad option never gets as far as a start.
/// What needs the rootfs (User, GroupAdd names) or start-time inputs (the init binary) is
/// checked by `build` only.
pub fn validate(config: &ContainerConfig, host: &HostConfig) -> Result<()> {
    let sec = SecurityOpts::parse(host.security_opt.as_deref().unwrap_or(&[]))?;
    let caps = if host.privileged {
        all_caps()
    } else {
        capabilities(
            host.cap_add.as_deref().unwrap_or(&[]),
            host.cap_drop.as_deref().unwrap_or(&[]),
        )?
    };
    if let SeccompOpt::Profile(text) = &sec.seccomp {
        if !host.privileged {
            seccomp::from_docker_profile(text, &caps)?;
        }
    }
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(Error::invalid(format!(
            "the working directory {:?} (Config.WorkingDir) is invalid: it must be an absolute path such as /app",
            config.working_dir
        )));
    }
    rlimits(host)?;
    check_oom_score_adj(host)?;
    check_modes(host)?;
    for d in host.devices.iter().flatten() {
        user_device(d)?;
    }
    resources(host, Vec::new())?;
    Ok(())
}

fn check_oom_score_adj(host: &HostConfig) -> Result<()> {
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(Error::invalid(format!(
            "HostConfig.OomScoreAdj {} is out of range; use a value from -1000 to 1000",
            host.oom_score_adj
        )));
    }
    Ok(())
}

/// CgroupnsMode, PidMode, IpcMode, UTSMode.
fn check_modes(host: &HostConfig) -> Result<()> {
    if !matches!(host.cgroupns_mode.as_str(), "" | "private" | "host") {
        return Err(Error::invalid(format!(
            "HostConfig.CgroupnsMode {:?} is not valid; use \"private\" or \"host\"",
            host.cgroupns_mode
        )));
    }
    if !matches!(host.pid_mode.as_str(), "" | "host") {
        return Err(unsupported_mode("PidMode", &host.pid_mode));
    }
    if !matches!(
        host.ipc_mode.as_str(),
        "" | "private" | "shareable" | "none" | "host"
    ) {
        return Err(unsupported_mode("IpcMode", &host.ipc_mode));
    }
    if !matches!(host.u_t_s_mode.as_str(), "" | "host") {
        return Err(unsupported_mode("UTSMode", &host.u_t_s_mode));
    }
    Ok(())
}

/// The runtime spec (`config.json`) for the container.
pub fn build(input: &SpecInput<'_>) -> Result<serde_json::Value> {
    let config = input.config;
    let host = input.host;
    let sec = SecurityOpts::parse(host.security_opt.as_deref().unwrap_or(&[]))?;

    // The process.
    let mut args: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    args.extend(config.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(Error::invalid(
            "no command specified: the image has no Cmd or Entrypoint and the container gives none; pass a command (docker run IMAGE COMMAND) or --entrypoint",
        ));
    }
    let init = host.init.unwrap_or(false);
    if init {
        if input.init_path.is_none() {
            return Err(Error::invalid(
                "--init was requested but no init binary is installed on this host; install tini (apt-get install tini, which provides /usr/bin/tini-static) or run without --init",
            ));
        }
        let mut with_init = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        with_init.extend(args);
        args = with_init;
    }
    let cwd = if config.working_dir.is_empty() {
        "/".to_string()
    } else if !config.working_dir.starts_with('/') {
        return Err(Error::invalid(format!(
            "the working directory {:?} (Config.WorkingDir) is invalid: it must be an absolute path such as /app",
            config.working_dir
        )));
    } else {
        clean_path(&config.working_dir)
    };

    let host_net = matches!(input.netns, NetNs::Host);
    let hostname = if !config.hostname.is_empty() {
        config.hostname.clone()
    } else if host_net || host.u_t_s_mode == "host" {
        host_hostname()
    } else {
        input.id.chars().take(12).collect()
    };

    let group_add = host.group_add.clone().unwrap_or_default();
    let user = user::resolve(input.rootfs, &config.user, &group_add)?;

    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if config.tty {
        env.push("TERM=xterm".into());
    }
    for e in &config.env {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        match env
            .iter_mut()
            .find(|x| x.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }

    let privileged = host.privileged;
    let caps = if privileged {
        all_caps()
    } else {
        capabilities(
            host.cap_add.as_deref().unwrap_or(&[]),
            host.cap_drop.as_deref().unwrap_or(&[]),
        )?
    };

    let mut process = json!({
        "terminal": config.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
            "inheritable": [],
            "ambient": []
        },
        "rlimits": rlimits(host)?,
        "noNewPrivileges": sec.no_new_privileges,
    });
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }
    check_oom_score_adj(host)?;
    process["oomScoreAdj"] = json!(host.oom_score_adj);

    // Namespaces.
    let cgroupns = match host.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        "" => host_is_cgroup2(),
        other => {
            return Err(Error::invalid(format!(
                "HostConfig.CgroupnsMode {other:?} is not valid; use \"private\" or \"host\""
            )))
        }
    };
    let mut namespaces = Vec::new();
    match host.pid_mode.as_str() {
        "" => namespaces.push(json!({"type": "pid"})),
        "host" => {}
        other => return Err(unsupported_mode("PidMode", other)),
    }
    match host.ipc_mode.as_str() {
        "" | "private" | "shareable" | "none" => namespaces.push(json!({"type": "ipc"})),
        "host" => {}
        other => return Err(unsupported_mode("IpcMode", other)),
    }
    let uts = !host_net && host.u_t_s_mode != "host";
    match host.u_t_s_mode.as_str() {
        "" | "host" => {}
        other => return Err(unsupported_mode("UTSMode", other)),
    }
    if uts {
        namespaces.push(json!({"type": "uts"}));
    }
    namespaces.push(json!({"type": "mount"}));
    if let NetNs::Path(p) = &input.netns {
        namespaces.push(json!({"type": "network", "path": p}));
    }
    if cgroupns {
        namespaces.push(json!({"type": "cgroup"}));
    }

    // Mounts.
    if init {
        if let Some(p) = input.init_path {
            check_host_path("the init binary", p)?;
        }
    }
    let mounts = mounts(input, privileged, cgroupns)?;

    // Devices.
    let mut devices: Vec<Value> = Vec::new();
    let mut cgroup_devices: Vec<Value> = vec![json!({"allow": false, "access": "rwm"})];
    if privileged {
        devices.extend(host_devices()?);
        cgroup_devices = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        cgroup_devices.extend(default_device_rules());
    }
    for d in host.devices.iter().flatten() {
        let (nodes, rules) = user_device(d)?;
        for n in nodes {
            let path = n["path"].clone();
            devices.retain(|x| x["path"] != path);
            devices.push(n);
        }
        if !privileged {
            cgroup_devices.extend(rules);
        }
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources(host, cgroup_devices)?,
    });
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    if let Some(s) = &host.sysctls {
        if !s.is_empty() {
            linux["sysctl"] = json!(s);
        }
    }
    if !privileged && !sec.unconfined_paths {
        let masked: Vec<String> = match &host.masked_paths {
            Some(p) => p.clone(),
            None => MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        };
        let readonly: Vec<String> = match &host.readonly_paths {
            Some(p) => p.clone(),
            None => READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        };
        linux["maskedPaths"] = json!(masked);
        linux["readonlyPaths"] = json!(readonly);
    }
    if !privileged {
        match &sec.seccomp {
            SeccompOpt::Default => {
                let profile = berth_runtime::seccomp::docker_default();
                linux["seccomp"] = serde_json::to_value(profile).map_err(|e| {
                    Error::internal(format!("cannot encode the default seccomp profile: {e}"))
                })?;
            }
            SeccompOpt::Unconfined => {}
            SeccompOpt::Profile(text) => {
                linux["seccomp"] = seccomp::from_docker_profile(text, &caps)?;
            }
        }
    }

    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": input.rootfs, "readonly": host.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if uts {
        spec["hostname"] = json!(hostname);
        if !config.domainname.is_empty() {
            spec["domainname"] = json!(config.domainname);
        }
    }
    Ok(spec)
}

fn unsupported_mode(field: &str, value: &str) -> Error {
    if value.starts_with("container:") {
        Error::invalid(format!(
            "HostConfig.{field} {value:?}: sharing another container's namespace is not supported by berth yet; use the default or \"host\""
        ))
    } else {
        Error::invalid(format!(
            "HostConfig.{field} {value:?} is not valid; use \"\" (private) or \"host\""
        ))
    }
}

/// The parsed `HostConfig.SecurityOpt`.
#[derive(Debug, Default)]
struct SecurityOpts {
    no_new_privileges: bool,
    seccomp: SeccompOpt,
    /// `systempaths=unconfined`: no masked or read-only paths.
    unconfined_paths: bool,
}

#[derive(Debug, Default)]
enum SeccompOpt {
    #[default]
    Default,
    Unconfined,
    /// The profile's JSON text.
    Profile(String),
}

impl SecurityOpts {
    fn parse(opts: &[String]) -> Result<SecurityOpts> {
        let mut out = SecurityOpts::default();
        for opt in opts {
            // Docker takes `key=value` and, deprecated, `key:value`.
            let (key, value) = match (opt.split_once('='), opt.split_once(':')) {
                (Some((k, v)), Some((k2, _))) if k.len() < k2.len() => (k, Some(v)),
                (_, Some((k, v))) => (k, Some(v)),
                (Some((k, v)), None) => (k, Some(v)),
                (None, None) => (opt.as_str(), None),
            };
            let bool_value = |v: Option<&str>| -> Result<bool> {
                match v {
                    None | Some("true") => Ok(true),
                    Some("false") => Ok(false),
                    Some(other) => Err(Error::invalid(format!(
                        "invalid --security-opt {opt:?}: {other:?} is not a boolean; use {key}=true or {key}=false"
                    ))),
                }
            };
            match key {
                "no-new-privileges" => out.no_new_privileges = bool_value(value)?,
                "seccomp" => {
                    out.seccomp = match value {
                        Some("unconfined") => SeccompOpt::Unconfined,
                        Some("builtin") | Some("") => SeccompOpt::Default,
                        Some(text) => SeccompOpt::Profile(text.to_string()),
                        None => {
                            return Err(Error::invalid(
                                "invalid --security-opt \"seccomp\": give seccomp=unconfined or seccomp=<profile.json>",
                            ))
                        }
                    }
                }
                "systempaths" => match value {
                    Some("unconfined") => out.unconfined_paths = true,
                    _ => {
                        return Err(Error::invalid(format!(
                            "invalid --security-opt {opt:?}: the only systempaths value is \"unconfined\""
                        )))
                    }
                },
                // No AppArmor or SELinux on berth's hosts: accepted so compose files and
                // scripts that set them still run, and not applied.
                "apparmor" | "label" => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "invalid --security-opt {opt:?}: unknown option {key:?}; berth supports no-new-privileges, seccomp=unconfined|<profile>, systempaths=unconfined, apparmor=..., label=..."
                    )))
                }
            }
        }
        Ok(out)
    }
}

fn cap_name(c: Capability) -> String {
    format!("CAP_{c}")
}

/// Every capability the running kernel knows (for `--privileged` and `--cap-add ALL`), less
/// those outside the engine's own bounding set: the runtime inherits that set and cannot
/// grant more (asking would fail every start with EPERM, e.g. in a sandboxed engine).
fn all_caps() -> Vec<String> {
    let last = berth_runtime::caps::last_cap();
    let bounding = own_cap_set("CapBnd").unwrap_or(u64::MAX);
    let mut all: Vec<Capability> = berth_runtime::caps::ALL
        .iter()
        .copied()
        .filter(|c| {
            let n = berth_runtime::caps::number(*c);
            n <= last && bounding & (1u64 << n) != 0
        })
        .collect();
    all.sort_by_key(|c| berth_runtime::caps::number(*c));
    all.into_iter().map(cap_name).collect()
}

/// `chown`, `CAP_CHOWN`, `Cap_Chown` → `CAP_CHOWN` (a known capability), `all` → `ALL`.
fn normalize_cap(name: &str, field: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if berth_runtime::caps::ALL
        .iter()
        .any(|c| cap_name(*c) == full)
    {
        Ok(full)
    } else {
        Err(Error::invalid(format!(
            "unknown capability {name:?} in HostConfig.{field}; use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL"
        )))
    }
}

/// Docker's default set with `--cap-add`/`--cap-drop` applied (moby's TweakCapabilities).
fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>> {
    let add: Vec<String> = add
        .iter()
        .map(|c| normalize_cap(c, "CapAdd"))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize_cap(c, "CapDrop"))
        .collect::<Result<_>>()?;
    let mut caps: Vec<String> = Vec::new();
    let push = |c: String, caps: &mut Vec<String>| {
        if !caps.contains(&c) {
            caps.push(c);
        }
    };
    if add.iter().any(|c| c == "ALL") {
        for c in all_caps() {
            if !drop.contains(&c) {
                push(c, &mut caps);
            }
        }
    } else if drop.iter().any(|c| c == "ALL") {
        for c in add {
            push(c, &mut caps);
        }
    } else {
        for c in berth_runtime::caps::DOCKER_DEFAULT
            .iter()
            .map(|c| cap_name(*c))
        {
            if !drop.contains(&c) {
                push(c, &mut caps);
            }
        }
        for c in add {
            push(c, &mut caps);
        }
    }
    Ok(caps)
}

/// `RLIMIT_NOFILE` at dockerd's default, then `HostConfig.Ulimits`.
fn rlimits(host: &HostConfig) -> Result<Vec<Value>> {
    const NAMES: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let nofile = default_nofile();
    let mut out: Vec<(String, u64, u64)> = vec![("RLIMIT_NOFILE".into(), nofile, nofile)];
    for u in host.ulimits.iter().flatten() {
        let name = u.name.to_ascii_lowercase();
        if !NAMES.contains(&name.as_str()) {
            return Err(Error::invalid(format!(
                "unknown ulimit {:?} in HostConfig.Ulimits; use one of {}",
                u.name,
                NAMES.join(", ")
            )));
        }
        // -1 is "unlimited" (RLIM_INFINITY), as Docker's uint64 conversion makes it.
        let conv = |v: i64, which: &str| -> Result<u64> {
            match v {
                -1 => Ok(u64::MAX),
                v if v >= 0 => Ok(v as u64),
                v => Err(Error::invalid(format!(
                    "ulimit {}: {which} limit {v} is negative; use a number, or -1 for unlimited",
                    u.name
                ))),
            }
        };
        let soft = conv(u.soft, "soft")?;
        let hard = conv(u.hard, "hard")?;
        if soft > hard {
            return Err(Error::invalid(format!(
                "ulimit {}: the soft limit {} is larger than the hard limit {}; use soft <= hard (--ulimit {}={}:{})",
                u.name, u.soft, u.hard, u.name, u.hard, u.hard
            )));
        }
        let kind = format!("RLIMIT_{}", name.to_ascii_uppercase());
        out.retain(|(k, _, _)| *k != kind);
        out.push((kind, soft, hard));
    }
    Ok(out
        .into_iter()
        .map(|(k, soft, hard)| json!({"type": k, "soft": soft, "hard": hard}))
        .collect())
}

/// Is the host's /sys/fs/cgroup a cgroup2 filesystem (a v2-only host)?
fn host_is_cgroup2() -> bool {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) => s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC,
        Err(_) => false,
    }
}

fn host_hostname() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `/a/./b//c/` → `/a/b/c` (lexically, `..` clamped at the root).
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

fn path_depth(p: &str) -> usize {
    let c = clean_path(p);
    if c == "/" {
        0
    } else {
        c.matches('/').count()
    }
}

fn check_host_path(what: &str, p: &Path) -> Result<()> {
    if !p.is_absolute() {
        return Err(Error::invalid(format!(
            "{what} {} is not an absolute host path",
            p.display()
        )));
    }
    Ok(())
}

fn validate_propagation(p: &str) -> Result<&str> {
    match p {
        "" => Ok("rprivate"),
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => Ok(p),
        other => Err(Error::invalid(format!(
            "invalid bind propagation {other:?}; use private, rprivate, shared, rshared, slave or rslave"
        ))),
    }
}

/// A flag option's opposite (`exec` ↔ `noexec`), for merging tmpfs options.
fn opposite(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "exec" => "noexec",
        "noexec" => "exec",
        "suid" => "nosuid",
        "nosuid" => "suid",
        "dev" => "nodev",
        "nodev" => "dev",
        "ro" => "rw",
        "rw" => "ro",
        "atime" => "noatime",
        "noatime" => "atime",
        "diratime" => "nodiratime",
        "nodiratime" => "diratime",
        "sync" => "async",
        "async" => "sync",
        _ => return None,
    })
}

/// Docker's tmpfs defaults (`noexec,nosuid,nodev`) with `given` applied on top: a later flag
/// replaces its opposite, a later `key=value` replaces an earlier value of the key.
fn tmpfs_options(given: &[String], read_only: bool) -> Vec<String> {
    let mut out: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    let apply = |o: &str, out: &mut Vec<String>| {
        let o = o.trim();
        if o.is_empty() {
            return;
        }
        if let Some((k, _)) = o.split_once('=') {
            out.retain(|x| x.split_once('=').map(|(xk, _)| xk) != Some(k));
        } else {
            if let Some(opp) = opposite(o) {
                out.retain(|x| x != opp);
            }
            out.retain(|x| x != o);
        }
        out.push(o.to_string());
    };
    for g in given {
        for o in g.split(',') {
            apply(o, &mut out);
        }
    }
    if read_only {
        apply("ro", &mut out);
    }
    out
}

fn mounts(input: &SpecInput<'_>, privileged: bool, cgroupns: bool) -> Result<Vec<Value>> {
    let host = input.host;
    let shm_size = if host.shm_size > 0 {
        host.shm_size
    } else if host.shm_size < 0 {
        return Err(Error::invalid(format!(
            "HostConfig.ShmSize {} is negative; give a size in bytes, or 0 for the default 64 MiB",
            host.shm_size
        )));
    } else {
        64 << 20
    };
    let sys_opts: Vec<&str> = if privileged {
        vec!["nosuid", "noexec", "nodev", "rw"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_ro = if privileged && cgroupns { "rw" } else { "ro" };
    let defaults = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", cgroup_ro]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ];

    let mut user: Vec<(String, Value)> = Vec::new();
    for m in input.mounts {
        if !m.destination.starts_with('/') {
            return Err(Error::invalid(format!(
                "mount destination {:?} is not an absolute path; give a container path such as /data",
                m.destination
            )));
        }
        let dest = clean_path(&m.destination);
        if dest == "/" {
            return Err(Error::invalid(
                "a mount cannot target / (the container's root); choose a directory such as /data",
            ));
        }
        if user.iter().any(|(d, _)| *d == dest) {
            return Err(Error::invalid(format!(
                "duplicate mount point {dest}: two mounts target it; remove one"
            )));
        }
        let v = match &m.kind {
            MountKind::Bind {
                source,
                propagation,
                recursive,
            } => {
                check_host_path("bind mount source", source)?;
                let mut opts = vec![if *recursive { "rbind" } else { "bind" }.to_string()];
                if m.read_only {
                    opts.push("ro".into());
                }
                opts.push(validate_propagation(propagation)?.to_string());
                json!({"destination": dest, "type": "bind", "source": source, "options": opts})
            }
            MountKind::Tmpfs { options } => json!({
                "destination": dest, "type": "tmpfs", "source": "tmpfs",
                "options": tmpfs_options(options, m.read_only)
            }),
        };
        user.push((dest, v));
    }
    // Parents before children (Docker sorts by the number of path components).
    user.sort_by_key(|(d, _)| path_depth(d));
    let user_targets = |d: &str| user.iter().any(|(u, _)| u == d);
    let dev_mounted = user_targets("/dev");

    let mut out: Vec<Value> = defaults
        .into_iter()
        .filter(|m| {
            let d = m["destination"].as_str().unwrap_or("");
            let replaced = user_targets(d) || (dev_mounted && d.starts_with("/dev/"));
            !replaced
        })
        .collect();
    out.extend(user.iter().map(|(_, v)| v.clone()));

    let ro = host.readonly_rootfs;
    for (dest, src) in [
        ("/etc/resolv.conf", input.resolv_conf),
        ("/etc/hostname", input.hostname_file),
        ("/etc/hosts", input.hosts_file),
    ] {
        if user_targets(dest) {
            continue;
        }
        check_host_path(dest, src)?;
        let mut opts = vec!["rbind", "rprivate"];
        if ro {
            opts.push("ro");
        }
        out.push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
    }
    if host.init.unwrap_or(false) {
        if let Some(p) = input.init_path {
            out.push(
                json!({"destination": "/sbin/docker-init", "type": "bind", "source": p,
                            "options": ["bind", "ro", "rprivate"]}),
            );
        }
    }
    Ok(out)
}

/// Docker's default device cgroup allow list (after "deny all").
fn default_device_rules() -> Vec<Value> {
    let c = |major: Option<i64>, minor: Option<i64>, access: &str| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access});
    vec![
        c(None, None, "m"),
        json!({"allow": true, "type": "b", "major": null, "minor": null, "access": "m"}),
        c(Some(1), Some(3), "rwm"), // null
        c(Some(1), Some(5), "rwm"), // zero
        c(Some(1), Some(7), "rwm"), // full
        c(Some(1), Some(8), "rwm"), // random
        c(Some(1), Some(9), "rwm"), // urandom
        c(Some(5), Some(0), "rwm"), // tty
        c(Some(5), Some(1), "rwm"), // console
        c(Some(5), Some(2), "rwm"), // ptmx
        c(Some(136), None, "rwm"),  // pts/*
    ]
}

/// A host device node as an OCI `linux.devices` entry at `container_path`, or `None` when
/// `meta` is not a char or block device.
fn device_entry(meta: &std::fs::Metadata, container_path: &str) -> Option<Value> {
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(json!({
        "path": container_path,
        "type": kind,
        "major": libc::major(rdev),
        "minor": libc::minor(rdev),
        "fileMode": meta.mode() & 0o777,
        "uid": meta.uid(),
        "gid": meta.gid(),
    }))
}

/// Every char and block device under the host's /dev (for `--privileged`), without
/// /dev/pts, /dev/shm, /dev/mqueue and the console, and without following symlinks.
fn host_devices() -> Result<Vec<Value>> {
    let mut out = Vec::new();
    walk_devices(Path::new("/dev"), &mut |p, meta| {
        let s = p.to_string_lossy();
        if s == "/dev/console" {
            return;
        }
        if let Some(d) = device_entry(meta, &s) {
            out.push(d);
        }
    })?;
    Ok(out)
}

fn walk_devices(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> Result<()> {
    const SKIP: &[&str] = &["pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev"];
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Error::internal(format!(
            "cannot list host devices in {}: {e}",
            dir.display()
        ))
    })?;
    for ent in rd.flatten() {
        let p = ent.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if dir == Path::new("/dev") && SKIP.iter().any(|s| ent.file_name() == *s) {
                continue;
            }
            walk_devices(&p, f)?;
        } else {
            f(&p, &meta);
        }
    }
    Ok(())
}

/// `--device HOST[:CONTAINER[:PERMS]]`: the node(s) and their cgroup rules. A directory adds
/// every device below it.
fn user_device(d: &super::config::DeviceMapping) -> Result<(Vec<Value>, Vec<Value>)> {
    let host_path = d.path_on_host.as_str();
    if !host_path.starts_with('/') {
        return Err(Error::invalid(format!(
            "device {host_path:?} (HostConfig.Devices) is not an absolute host path; use e.g. /dev/fuse"
        )));
    }
    let perms = if d.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        d.cgroup_permissions.as_str()
    };
    if perms.chars().any(|c| !"rwm".contains(c)) {
        return Err(Error::invalid(format!(
            "device {host_path}: permissions {perms:?} are invalid; use a combination of r, w and m"
        )));
    }
    let in_container = if d.path_in_container.is_empty() {
        host_path
    } else {
        d.path_in_container.as_str()
    };
    if !in_container.starts_with('/') {
        return Err(Error::invalid(format!(
            "device {host_path}: the container path {in_container:?} is not absolute"
        )));
    }
    let meta = std::fs::metadata(host_path).map_err(|e| {
        Error::invalid(format!(
            "error gathering device information while adding custom device {host_path:?}: {e}"
        ))
    })?;
    let mut nodes = Vec::new();
    if meta.is_dir() {
        walk_devices(Path::new(host_path), &mut |p, m| {
            let rel = p.strip_prefix(host_path).unwrap_or(p);
            let target = Path::new(in_container).join(rel);
            if let Some(n) = device_entry(m, &target.to_string_lossy()) {
                nodes.push(n);
            }
        })?;
    } else {
        match device_entry(&meta, in_container) {
            Some(n) => nodes.push(n),
            None => {
                return Err(Error::invalid(format!(
                    "error gathering device information while adding custom device {host_path:?}: not a device node"
                )))
            }
        }
    }
    let rules = nodes
        .iter()
        .map(|n| {
            json!({"allow": true, "type": n["type"], "major": n["major"], "minor": n["minor"],
                   "access": perms})
        })
        .collect();
    Ok((nodes, rules))
}

/// `linux.resources` from the HostConfig's resource fields.
fn resources(host: &HostConfig, devices: Vec<Value>) -> Result<Value> {
    let mut r = json!({"devices": devices});

    let mut memory = serde_json::Map::new();
    if host.memory < 0 {
        return Err(Error::invalid(format!(
            "HostConfig.Memory {} is negative; give a limit in bytes, or 0 for none",
            host.memory
        )));
    }
    if host.memory > 0 {
        if host.memory < 6 << 20 {
            return Err(Error::invalid(format!(
                "HostConfig.Memory {}: the minimum memory limit allowed is 6MB",
                host.memory
            )));
        }
        memory.insert("limit".into(), json!(host.memory));
        let swap = match host.memory_swap {
            0 => host.memory * 2,
            -1 => -1,
            s if s < host.memory => {
                return Err(Error::invalid(format!(
                    "HostConfig.MemorySwap {s} is smaller than Memory {}; the swap limit counts memory plus swap, so it must be at least the memory limit (or -1 for unlimited)",
                    host.memory
                )))
            }
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    } else if host.memory_swap > 0 {
        return Err(Error::invalid(
            "HostConfig.MemorySwap is set without Memory; set the Memory limit too when using a MemorySwap limit",
        ));
    }
    if host.memory_reservation < 0 {
        return Err(Error::invalid(format!(
            "HostConfig.MemoryReservation {} is negative",
            host.memory_reservation
        )));
    }
    if host.memory_reservation > 0 {
        if host.memory > 0 && host.memory_reservation > host.memory {
            return Err(Error::invalid(
                "HostConfig.MemoryReservation is larger than Memory; the minimum should be smaller than the limit",
            ));
        }
        memory.insert("reservation".into(), json!(host.memory_reservation));
    }
    match host.memory_swappiness {
        None | Some(-1) => {}
        Some(s) if (0..=100).contains(&s) => {
            memory.insert("swappiness".into(), json!(s));
        }
        Some(s) => {
            return Err(Error::invalid(format!(
            "HostConfig.MemorySwappiness {s} is out of range; use 0 to 100 (or -1 for the default)"
        )))
        }
    }
    if host.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        r["memory"] = Value::Object(memory);
    }

    let mut cpu = serde_json::Map::new();
    if host.nano_cpus < 0 {
        return Err(Error::invalid(format!(
            "HostConfig.NanoCpus {} is negative",
            host.nano_cpus
        )));
    }
    if host.nano_cpus > 0 {
        if host.cpu_quota > 0 || host.cpu_period > 0 {
            return Err(Error::invalid(
                "conflicting options: NanoCpus (--cpus) cannot be combined with CpuQuota or CpuPeriod; use one or the other",
            ));
        }
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert(
            "quota".into(),
            json!(host.nano_cpus * 100_000 / 1_000_000_000),
        );
    } else {
        if host.cpu_period > 0 {
            if !(1000..=1_000_000).contains(&host.cpu_period) {
                return Err(Error::invalid(format!(
                    "HostConfig.CpuPeriod {} is out of range; use 1000 to 1000000 microseconds",
                    host.cpu_period
                )));
            }
            cpu.insert("period".into(), json!(host.cpu_period));
        }
        if host.cpu_quota > 0 {
            if host.cpu_quota < 1000 {
                return Err(Error::invalid(format!(
                    "HostConfig.CpuQuota {} is too small; the minimum is 1000 microseconds",
                    host.cpu_quota
                )));
            }
            cpu.insert("quota".into(), json!(host.cpu_quota));
        }
    }
    if host.cpu_shares < 0 {
        return Err(Error::invalid(format!(
            "HostConfig.CpuShares {} is negative",
            host.cpu_shares
        )));
    }
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(host.cpu_shares));
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(host.cpuset_cpus));
    }
    if !host.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(host.cpuset_mems));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }

    if let Some(p) = host.pids_limit {
        if p > 0 {
            r["pids"] = json!({"limit": p});
        }
    }
    if host.blkio_weight > 0 {
        if !(10..=1000).contains(&host.blkio_weight) {
            return Err(Error::invalid(format!(
                "HostConfig.BlkioWeight {} is out of range; use 10 to 1000 (or 0 for the default)",
                host.blkio_weight
            )));
        }
        r["blockIO"] = json!({"weight": host.blkio_weight});
    }
    Ok(r)
}
