//! Container commands: ps, run/create, start/stop/restart/kill/rm, attach, exec, logs.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::*;
use bollard::query_parameters::*;
use clap::{ArgAction, Args, Subcommand};
use futures_util::StreamExt;

use super::exec::{exec, ExecArgs};
use super::images::pull;
use super::ps::{ps, PsArgs};
use super::{describe, each, usage, write_log, Ctx, Failure, Res};
use crate::format::short_id;
use crate::tty::{Outcome, Session, Target};

/// Container commands docker has at the top level (and under `container`).
#[derive(Subcommand)]
pub enum ContainerCmd {
    /// List containers
    Ps(PsArgs),
    /// Create and run a container from an image
    Run(Box<RunArgs>),
    /// Create a new container
    Create(Box<CreateArgs>),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(Box<ExecArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    #[command(flatten)]
    Ops(super::ops::OpsCmd),
}

/// `berth container ...`: the same commands plus the management-only ones.
#[derive(Subcommand)]
pub enum ContainerMgmt {
    #[command(flatten)]
    Common(ContainerCmd),
    /// List containers
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Display detailed information on one or more containers
    Inspect(super::ops::InspectArgs),
    /// Remove all stopped containers
    Prune(super::ops::PruneArgs),
}

pub async fn dispatch_mgmt(c: &Ctx, cmd: ContainerMgmt) -> Res<()> {
    match cmd {
        ContainerMgmt::Common(cmd) => dispatch(c, cmd).await,
        ContainerMgmt::Ls(a) => ps(c, a).await,
        ContainerMgmt::Inspect(a) => super::ops::inspect_containers(c, a).await,
        ContainerMgmt::Prune(a) => super::ops::prune_containers(c, a).await,
    }
}

pub async fn dispatch(c: &Ctx, cmd: ContainerCmd) -> Res<()> {
    match cmd {
        ContainerCmd::Ps(a) => ps(c, a).await,
        ContainerCmd::Run(a) => run_container(c, *a).await,
        ContainerCmd::Start(a) => start(c, a).await,
        ContainerCmd::Create(a) => create(c, *a).await,
        ContainerCmd::Attach(a) => attach(c, a).await,
        ContainerCmd::Exec(a) => exec(c, *a).await,
        ContainerCmd::Stop(a) => {
            let t = a.time;
            each(&a.containers, |id| async move {
                let o = StopContainerOptions { t, signal: None };
                c.docker
                    .stop_container(&id, Some(o))
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
        }
        ContainerCmd::Restart(a) => {
            let t = a.time;
            each(&a.containers, |id| async move {
                let o = RestartContainerOptions { t, signal: None };
                c.docker
                    .restart_container(&id, Some(o))
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
        }
        ContainerCmd::Kill(a) => {
            let signal = a.signal.clone();
            each(&a.containers, |id| {
                let signal = signal.clone();
                async move {
                    let o = KillContainerOptions { signal };
                    c.docker
                        .kill_container(&id, Some(o))
                        .await
                        .map_err(|e| c.err(e))
                }
            })
            .await
        }
        ContainerCmd::Rm(a) => {
            let (force, v) = (a.force, a.volumes);
            each(&a.containers, |id| async move {
                let o = RemoveContainerOptions {
                    force,
                    v,
                    link: false,
                };
                c.docker
                    .remove_container(&id, Some(o))
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
        }
        ContainerCmd::Logs(a) => logs(c, a).await,
        ContainerCmd::Ops(cmd) => super::ops::dispatch(c, cmd).await,
    }
}

/// The flags `run` and `create` share (docker's container config flags).
#[derive(Args)]
pub struct ContainerOpts {
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Publish a container's port(s) to the host ([ip:]hostPort:containerPort[/proto])
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Bind mount a volume (src:dst[:opts])
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=..,target=..)
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (path[:options])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this environment)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long, alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long)]
    pub restart: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container (key=value)
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long)]
    pub label_file: Vec<String>,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Security Options
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Command to run to check health
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to run
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// `berth run`.
#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `berth create`.
#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `-p` values → (exposed ports, bindings).
fn parse_publish(specs: &[String]) -> Res<HashMap<String, Option<Vec<PortBinding>>>> {
    let mut map: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for spec in specs {
        let bad = || {
            usage(format!(
                "invalid -p {spec:?}: expected [ip:]hostPort:containerPort[/tcp|udp|sctp], \
                 e.g. -p 8080:80"
            ))
        };
        let (addr, proto) = match spec.rsplit_once('/') {
            Some((a, p)) if matches!(p, "tcp" | "udp" | "sctp") => (a, p),
            Some(_) => return Err(bad()),
            None => (spec.as_str(), "tcp"),
        };
        let parts: Vec<&str> = addr.rsplitn(3, ':').collect();
        let (ip, host_port, ctr) = match parts.as_slice() {
            [c] => ("", "", *c),
            [c, h] => ("", *h, *c),
            [c, h, ip] => (ip.trim_start_matches('[').trim_end_matches(']'), *h, *c),
            _ => return Err(bad()),
        };
        let valid = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
        if !valid(ctr) || !(host_port.is_empty() || valid(host_port)) {
            return Err(bad());
        }
        let binding = PortBinding {
            host_ip: (!ip.is_empty()).then(|| ip.to_string()),
            host_port: Some(host_port.to_string()),
        };
        map.entry(format!("{ctr}/{proto}"))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    Ok(map)
}

/// `--expose 80`, `--expose 8000-8002/udp` → "port/proto" keys.
fn parse_expose(specs: &[String]) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for spec in specs {
        let bad = || {
            usage(format!(
                "invalid --expose {spec:?}: expected port[-port][/tcp|udp|sctp], e.g. --expose 8080"
            ))
        };
        let (range, proto) = match spec.split_once('/') {
            Some((r, p)) if matches!(p, "tcp" | "udp" | "sctp") => (r, p),
            Some(_) => return Err(bad()),
            None => (spec.as_str(), "tcp"),
        };
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
            return Err(bad());
        };
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        out.extend((lo..=hi).map(|p| format!("{p}/{proto}")));
    }
    Ok(out)
}

fn parse_restart(s: &str) -> Res<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let bad = || {
        usage(format!(
            "invalid --restart {s:?}: expected no, always, unless-stopped or on-failure[:max-retries]"
        ))
    };
    let name = match name {
        "no" | "" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => return Err(bad()),
    };
    let maximum_retry_count = match count {
        None => None,
        Some(c) if name == RestartPolicyNameEnum::ON_FAILURE => {
            Some(c.parse::<i64>().map_err(|_| bad())?)
        }
        Some(_) => return Err(bad()),
    };
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count,
    })
}

/// A bare KEY takes this environment's value, or is dropped (docker).
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn parse_env(raw: &[String]) -> Vec<String> {
    raw.iter().filter_map(|e| env_entry(e)).collect()
}

/// docker's env/label file format: one KEY=VALUE a line (the value verbatim), blank lines
/// and `#` comments skipped; a bare KEY takes this environment's value when `lookup`.
pub fn read_kv_file(flag: &str, path: &str, lookup: bool) -> Res<Vec<String>> {
    let text = std::fs::read(path).map_err(|e| usage(format!("cannot read {flag} {path}: {e}")))?;
    let text =
        String::from_utf8(text).map_err(|_| usage(format!("{flag} {path} is not UTF-8 text")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if key.is_empty() {
            return Err(usage(format!(
                "invalid {flag} {path} line {}: {line:?} has no name before '='",
                n + 1
            )));
        }
        if key.contains(char::is_whitespace) {
            return Err(usage(format!(
                "invalid {flag} {path} line {}: variable {key:?} contains whitespaces",
                n + 1
            )));
        }
        if lookup {
            out.extend(env_entry(line));
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

fn parse_labels(raw: &[String]) -> HashMap<String, String> {
    raw.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// docker's RAMInBytes: a number with an optional b/k/m/g/t unit (binary multiples).
pub fn parse_bytes(flag: &str, s: &str) -> Res<i64> {
    let bad = || {
        usage(format!(
            "invalid {flag} {s:?}: expected a size such as 512m or 1g (units b, k, m, g)"
        ))
    };
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        _ => return Err(bad()),
    };
    Ok((num * mult) as i64)
}

/// A Go duration (`1h2m3s`, `500ms`, `1.5s`) in nanoseconds.
pub fn parse_duration(flag: &str, s: &str) -> Res<i64> {
    let bad = || {
        usage(format!(
            "invalid {flag} {s:?}: expected a duration such as 30s, 1m30s or 500ms"
        ))
    };
    if s == "0" {
        return Ok(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let uend = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..uend] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[uend..];
    }
    if neg {
        return Err(usage(format!("{flag} cannot be negative")));
    }
    Ok(total as i64)
}

fn parse_int(flag: &str, s: &str) -> Res<i64> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| usage(format!("invalid {flag} {s:?}: expected a whole number")))
}

fn parse_bool(flag: &str, key: &str, v: &str) -> Res<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(usage(format!(
            "invalid {flag} value for {key}: {v:?} is not true or false"
        ))),
    }
}

/// `--mount type=bind,source=/a,target=/b,readonly` → a Mount.
pub fn parse_mount(spec: &str) -> Res<Mount> {
    let flag = "--mount";
    let mut m = Mount::default();
    let mut volume_opts: HashMap<String, String> = HashMap::new();
    let mut tmpfs = MountTmpfsOptions::default();
    let mut tmpfs_set = false;
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Res<String> {
            v.map(str::to_string).ok_or_else(|| {
                usage(format!(
                    "invalid {flag} {spec:?}: field {key:?} needs a value ({key}=...)"
                ))
            })
        };
        match key.as_str() {
            "type" => {
                m.typ = Some(match need(val)?.as_str() {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    other => {
                        return Err(usage(format!(
                    "invalid {flag} {spec:?}: unknown type {other:?}; use bind, volume or tmpfs"
                )))
                    }
                })
            }
            "source" | "src" => m.source = Some(need(val)?),
            "target" | "dst" | "destination" => m.target = Some(need(val)?),
            "readonly" | "ro" => m.read_only = Some(parse_bool(flag, &key, val.unwrap_or(""))?),
            "volume-opt" => {
                let v = need(val)?;
                let Some((k, v)) = v.split_once('=') else {
                    return Err(usage(format!(
                        "invalid {flag} {spec:?}: volume-opt {v:?} must be key=value"
                    )));
                };
                volume_opts.insert(k.to_string(), v.to_string());
            }
            "tmpfs-size" => {
                tmpfs.size_bytes = Some(parse_bytes("--mount tmpfs-size", &need(val)?)?);
                tmpfs_set = true;
            }
            "tmpfs-mode" => {
                let v = need(val)?;
                let mode = i64::from_str_radix(&v, 8).map_err(|_| {
                    usage(format!(
                        "invalid {flag} {spec:?}: tmpfs-mode {v:?} is not an octal mode"
                    ))
                })?;
                tmpfs.mode = Some(mode);
                tmpfs_set = true;
            }
            _ => {
                return Err(usage(format!(
                    "invalid {flag} {spec:?}: unexpected key {key:?}; known keys are type, \
                     source/src, target/dst/destination, readonly/ro, volume-opt, tmpfs-size, \
                     tmpfs-mode"
                )))
            }
        }
    }
    let typ = m.typ.unwrap_or(MountType::VOLUME);
    m.typ = Some(typ);
    if m.target.as_deref().is_none_or(str::is_empty) {
        return Err(usage(format!(
            "invalid {flag} {spec:?}: target is required (target=/path/in/container)"
        )));
    }
    match typ {
        MountType::BIND if m.source.as_deref().is_none_or(str::is_empty) => {
            return Err(usage(format!(
                "invalid {flag} {spec:?}: a bind mount needs source=/host/path"
            )))
        }
        MountType::TMPFS if m.source.is_some() => {
            return Err(usage(format!(
                "invalid {flag} {spec:?}: a tmpfs mount takes no source"
            )))
        }
        _ => {}
    }
    if !volume_opts.is_empty() {
        if typ != MountType::VOLUME {
            return Err(usage(format!(
                "invalid {flag} {spec:?}: volume-opt is only for type=volume"
            )));
        }
        m.volume_options = Some(MountVolumeOptions {
            driver_config: Some(MountVolumeOptionsDriverConfig {
                name: None,
                options: Some(volume_opts),
            }),
            ..Default::default()
        });
    }
    if tmpfs_set {
        if typ != MountType::TMPFS {
            return Err(usage(format!(
                "invalid {flag} {spec:?}: tmpfs-size and tmpfs-mode are only for type=tmpfs"
            )));
        }
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

fn parse_ulimit(spec: &str) -> Res<ResourcesUlimits> {
    let bad = || {
        usage(format!(
            "invalid --ulimit {spec:?}: expected name=soft[:hard], e.g. --ulimit nofile=1024:2048"
        ))
    };
    // The limit's name is checked by the engine at create (one list, in berth-engine).
    let (name, limits) = spec.split_once('=').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft = soft.parse::<i64>().map_err(|_| bad())?;
    let hard = hard.parse::<i64>().map_err(|_| bad())?;
    if soft > hard && hard != -1 {
        return Err(usage(format!(
            "invalid --ulimit {spec:?}: the soft limit must not exceed the hard limit"
        )));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

fn parse_add_host(spec: &str) -> Res<String> {
    let (host, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(|| {
            usage(format!(
                "invalid --add-host {spec:?}: expected host:ip, e.g. --add-host db:10.0.0.5"
            ))
        })?;
    let ip_ok = ip == "host-gateway"
        || ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
    if host.is_empty() || !ip_ok {
        return Err(usage(format!(
            "invalid --add-host {spec:?}: expected host:ip with a valid IP address"
        )));
    }
    Ok(format!(
        "{host}:{}",
        ip.trim_start_matches('[').trim_end_matches(']')
    ))
}

fn parse_security_opt(spec: &str) -> Res<String> {
    let ok = spec == "no-new-privileges"
        || spec
            .split_once(['=', ':'])
            .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty());
    if !ok {
        return Err(usage(format!(
            "invalid --security-opt {spec:?}: expected key=value (e.g. seccomp=unconfined, \
             label=disable) or no-new-privileges"
        )));
    }
    Ok(spec.to_string())
}

fn parse_attach(raw: &[String]) -> Res<(bool, bool, bool)> {
    let (mut i, mut o, mut e) = (false, false, false);
    for s in raw {
        match s.to_ascii_lowercase().as_str() {
            "stdin" => i = true,
            "stdout" => o = true,
            "stderr" => e = true,
            _ => {
                return Err(usage(format!(
                    "invalid -a {s:?}: valid streams are STDIN, STDOUT and STDERR"
                )))
            }
        }
    }
    Ok((i, o, e))
}

/// A container ready to create: the body, its name, platform and pull policy.
pub struct Spec {
    pub body: ContainerCreateBody,
    pub name: Option<String>,
    pub platform: String,
    pub pull: String,
    pub image: String,
    /// Streams to attach (stdin, stdout, stderr).
    pub streams: (bool, bool, bool),
}

/// Validate the flags and build the create request (`detach`: `run -d`).
pub fn build_spec(o: &ContainerOpts, detach: bool) -> Res<Spec> {
    let port_bindings = parse_publish(&o.publish)?;
    let mut exposed: Vec<String> = port_bindings.keys().cloned().collect();
    for p in parse_expose(&o.expose)? {
        if !exposed.contains(&p) {
            exposed.push(p);
        }
    }
    exposed.sort();
    let restart_policy = o.restart.as_deref().map(parse_restart).transpose()?;
    if o.rm
        && restart_policy
            .as_ref()
            .is_some_and(|p| p.name != Some(RestartPolicyNameEnum::NO))
    {
        return Err(usage(
            "conflicting options: --restart and --rm: drop one of them".into(),
        ));
    }
    let streams = if o.attach.is_empty() {
        if detach {
            (false, false, false)
        } else {
            (o.interactive, true, true)
        }
    } else {
        if detach {
            return Err(usage(
                "conflicting options: -a and -d: a detached container has nothing attached".into(),
            ));
        }
        parse_attach(&o.attach)?
    };
    if !matches!(o.pull.as_str(), "missing" | "always" | "never") {
        return Err(usage(format!(
            "invalid --pull {:?}: expected missing, always or never",
            o.pull
        )));
    }
    // env files first, then -e (later entries win in the engine).
    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(read_kv_file("--env-file", f, true)?);
    }
    env.extend(parse_env(&o.env));
    let mut labels_raw = Vec::new();
    for f in &o.label_file {
        labels_raw.extend(read_kv_file("--label-file", f, false)?);
    }
    labels_raw.extend(o.label.iter().cloned());
    // `-v /path` is an anonymous volume; `-v src:dst[:opts]` a bind or named volume.
    let (binds, anonymous): (Vec<String>, Vec<String>) =
        o.volume.iter().cloned().partition(|v| v.contains(':'));
    for v in binds.iter().chain(anonymous.iter()) {
        let parts: Vec<&str> = v.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(usage(format!(
                "invalid -v {v:?}: expected [source:]/container/path[:ro|rw]"
            )));
        }
    }
    let mounts = o
        .mount
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Res<Vec<_>>>()?;
    let mut tmpfs = HashMap::new();
    for t in &o.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !path.starts_with('/') {
            return Err(usage(format!(
                "invalid --tmpfs {t:?}: expected an absolute container path[:options], e.g. /run:size=64m"
            )));
        }
        tmpfs.insert(path.to_string(), opts.to_string());
    }
    let memory = o
        .memory
        .as_deref()
        .map(|m| parse_bytes("--memory", m))
        .transpose()?;
    let memory_swap = match o.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(s) => Some(parse_bytes("--memory-swap", s)?),
    };
    if let (Some(m), Some(s)) = (memory, memory_swap) {
        if s != -1 && s < m {
            return Err(usage(
                "invalid --memory-swap: it must be at least --memory (it counts memory plus swap), or -1 for unlimited".into(),
            ));
        }
    }
    if memory_swap.is_some() && memory.is_none() {
        return Err(usage(
            "--memory-swap needs --memory too: set the memory limit as well".into(),
        ));
    }
    let nano_cpus = match o.cpus.as_deref() {
        None => None,
        Some(s) => {
            let n: f64 = s
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| {
                    usage(format!(
                        "invalid --cpus {s:?}: expected a number of CPUs such as 1.5"
                    ))
                })?;
            Some((n * 1e9).round() as i64)
        }
    };
    let cpu_shares = o
        .cpu_shares
        .as_deref()
        .map(|s| parse_int("--cpu-shares", s))
        .transpose()?;
    let pids_limit = o
        .pids_limit
        .as_deref()
        .map(|s| parse_int("--pids-limit", s))
        .transpose()?;
    let stop_timeout = o
        .stop_timeout
        .as_deref()
        .map(|s| parse_int("--stop-timeout", s))
        .transpose()?;
    let ulimits = o
        .ulimit
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<Res<Vec<_>>>()?;
    let extra_hosts = o
        .add_host
        .iter()
        .map(|h| parse_add_host(h))
        .collect::<Res<Vec<_>>>()?;
    for d in &o.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(usage(format!(
                "invalid --dns {d:?}: expected an IP address, e.g. --dns 1.1.1.1"
            )));
        }
    }
    let security_opt = o
        .security_opt
        .iter()
        .map(|s| parse_security_opt(s))
        .collect::<Res<Vec<_>>>()?;
    let healthcheck = health_config(o)?;
    if let Some(h) = &o.hostname {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            return Err(usage(format!(
                "invalid --hostname {h:?}: use letters, digits, '-' and '.' (RFC 1123)"
            )));
        }
    }
    if let Some(sig) = &o.stop_signal {
        if !valid_signal(sig) {
            return Err(usage(format!(
                "invalid --stop-signal {sig:?}: expected a signal name (SIGTERM, TERM) or number"
            )));
        }
    }
    let networking_config = if o.network_alias.is_empty() {
        None
    } else {
        let net = o.network.clone().unwrap_or_default();
        if matches!(net.as_str(), "" | "default" | "bridge" | "host" | "none")
            || net.starts_with("container:")
        {
            return Err(usage(
                "--network-alias needs a user-defined network: create one with `berth network \
                 create NAME` and pass --network NAME"
                    .into(),
            ));
        }
        let mut endpoints = HashMap::new();
        endpoints.insert(
            net,
            EndpointSettings {
                aliases: Some(o.network_alias.clone()),
                ..Default::default()
            },
        );
        Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        })
    };
    let some_vec = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    let (stdin, stdout, stderr) = streams;
    let body = ContainerCreateBody {
        image: Some(o.image.clone()),
        cmd: (!o.cmd.is_empty()).then(|| o.cmd.clone()),
        entrypoint: o.entrypoint.as_ref().map(|e| vec![e.clone()]),
        env: (!env.is_empty()).then_some(env),
        working_dir: o.workdir.clone(),
        volumes: (!anonymous.is_empty()).then_some(anonymous),
        user: o.user.clone(),
        hostname: o.hostname.clone(),
        labels: (!labels_raw.is_empty()).then(|| parse_labels(&labels_raw)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        attach_stdin: Some(stdin),
        attach_stdout: Some(stdout),
        attach_stderr: Some(stderr),
        tty: Some(o.tty),
        open_stdin: Some(o.interactive),
        stdin_once: Some(o.interactive && stdin && !detach),
        healthcheck,
        stop_signal: o.stop_signal.clone(),
        stop_timeout,
        networking_config,
        host_config: Some(HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            publish_all_ports: Some(o.publish_all),
            network_mode: o.network.clone(),
            restart_policy,
            // Attached runs remove the container themselves once its exit code is read.
            auto_remove: Some(o.rm && detach),
            memory,
            memory_swap,
            nano_cpus,
            cpu_shares,
            pids_limit,
            cap_add: some_vec(&o.cap_add),
            cap_drop: some_vec(&o.cap_drop),
            privileged: Some(o.privileged),
            readonly_rootfs: Some(o.read_only),
            init: o.init.then_some(true),
            extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
            dns: some_vec(&o.dns),
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            security_opt: (!security_opt.is_empty()).then_some(security_opt),
            console_size: if o.tty {
                crate::tty::size().map(|(h, w)| vec![usize::from(h), usize::from(w)])
            } else {
                None
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(Spec {
        body,
        name: o.name.clone(),
        platform: o.platform.clone().unwrap_or_default(),
        pull: o.pull.clone(),
        image: o.image.clone(),
        streams,
    })
}

fn valid_signal(s: &str) -> bool {
    if s.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n)) {
        return true;
    }
    let name = s.strip_prefix("SIG").unwrap_or(s).to_ascii_uppercase();
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
    ];
    NAMES.contains(&name.as_str()) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
}

fn health_config(o: &ContainerOpts) -> Res<Option<HealthConfig>> {
    let dur = |flag: &str, v: &Option<String>| -> Res<Option<i64>> {
        v.as_deref().map(|s| parse_duration(flag, s)).transpose()
    };
    let interval = dur("--health-interval", &o.health_interval)?;
    let timeout = dur("--health-timeout", &o.health_timeout)?;
    let start_period = dur("--health-start-period", &o.health_start_period)?;
    let retries = match o.health_retries.as_deref() {
        None => None,
        Some(s) => {
            let n = parse_int("--health-retries", s)?;
            if n < 0 {
                return Err(usage("--health-retries cannot be negative".into()));
            }
            Some(n)
        }
    };
    let any = o.health_cmd.is_some()
        || interval.is_some()
        || timeout.is_some()
        || start_period.is_some()
        || retries.is_some();
    if o.no_healthcheck {
        if any {
            return Err(usage(
                "--no-healthcheck conflicts with --health-* options: drop one of them".into(),
            ));
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(HealthConfig {
        test: o
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
        interval,
        timeout,
        retries,
        start_period,
        ..Default::default()
    }))
}

/// docker's exit code for a start error: 127 when the command is not found, 126 when it
/// cannot be invoked, else 125.
pub fn start_error_code(message: &str) -> i32 {
    let m = message.to_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("not found in $path")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Create the container, pulling the image first per `--pull`; its ID.
async fn create_from(c: &Ctx, spec: &Spec) -> Res<String> {
    let opts = || CreateContainerOptions {
        name: spec.name.clone(),
        platform: spec.platform.clone(),
    };
    if spec.pull == "always" {
        pull(c, &spec.image, true).await?;
    }
    match c
        .docker
        .create_container(Some(opts()), spec.body.clone())
        .await
    {
        Ok(r) => Ok(r.id),
        Err(BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        }) if spec.pull == "missing" && message.to_lowercase().contains("no such image") => {
            eprintln!("Unable to find image '{}' locally", spec.image);
            pull(c, &spec.image, true).await?;
            Ok(c.docker
                .create_container(Some(opts()), spec.body.clone())
                .await
                .map_err(|e| c.err(e))?
                .id)
        }
        Err(e) => Err(c.err(e)),
    }
}

async fn create(c: &Ctx, a: CreateArgs) -> Res<()> {
    let spec = build_spec(&a.opts, false)?;
    let id = create_from(c, &spec).await?;
    println!("{id}");
    Ok(())
}

fn detach_keys(spec: Option<&str>) -> Res<(String, Vec<u8>)> {
    let s = spec.unwrap_or("").to_string();
    let keys = crate::tty::parse_detach_keys(&s).map_err(usage)?;
    Ok((s, keys))
}

async fn run_container(c: &Ctx, a: RunArgs) -> Res<()> {
    let spec = build_spec(&a.opts, a.detach)?;
    let (keys_spec, keys) = detach_keys(a.detach_keys.as_deref())?;
    let id = create_from(c, &spec).await?;
    let rm = a.opts.rm;

    if a.detach {
        if let Err(e) = c.docker.start_container(&id, None).await {
            return Err(start_failure(c, e));
        }
        println!("{id}");
        return Ok(());
    }

    let (stdin, stdout, stderr) = spec.streams;
    let attach = AttachContainerOptions {
        stream: true,
        stdin,
        stdout,
        stderr,
        detach_keys: (!keys_spec.is_empty()).then(|| keys_spec.clone()),
        ..Default::default()
    };
    let conn = match c.docker.attach_container(&id, Some(attach)).await {
        Ok(conn) => conn,
        Err(e) => {
            let f = c.err(e);
            if rm {
                remove_quietly(c, &id).await;
            }
            return Err(f);
        }
    };
    if let Err(e) = c.docker.start_container(&id, None).await {
        let f = start_failure(c, e);
        if rm {
            remove_quietly(c, &id).await;
        }
        return Err(f);
    }
    let tty = a.opts.tty;
    let session = Session {
        tty,
        stdin,
        detach_keys: keys,
        proxy_to: (a.sig_proxy && !tty).then(|| id.clone()),
        resize: Some(Target::Container(id.clone())),
    };
    let outcome = crate::tty::pump(c, session, conn.output, conn.input).await;
    if outcome.as_ref().is_ok_and(|o| *o == Outcome::Detached) {
        return Ok(());
    }
    let code = match outcome {
        Ok(_) => wait_exit(c, &id).await,
        Err(f) => Err(f),
    };
    if rm {
        remove_quietly(c, &id).await;
    }
    match code? {
        0 => Ok(()),
        n => Err(Failure::Exit(n)),
    }
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
}

/// `start -a [-i] name`: start one container attached; its exit code is the result.
pub async fn start_attached(c: &Ctx, name: &str, interactive: bool) -> Res<()> {
    start(
        c,
        StartArgs {
            attach: true,
            interactive,
            detach_keys: None,
            containers: vec![name.to_string()],
        },
    )
    .await
}

async fn start(c: &Ctx, a: StartArgs) -> Res<()> {
    if !a.attach && !a.interactive {
        return each(&a.containers, |id| async move {
            c.docker
                .start_container(&id, None)
                .await
                .map_err(|e| c.err(e))
        })
        .await;
    }
    if a.containers.len() > 1 {
        return Err(usage(
            "you cannot start and attach multiple containers at once: start them one by one".into(),
        ));
    }
    let (keys_spec, keys) = detach_keys(a.detach_keys.as_deref())?;
    let name = &a.containers[0];
    let info = c
        .docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .map_err(|e| c.err(e))?;
    let id = info.id.clone().unwrap_or_else(|| name.clone());
    let cfg = info.config.unwrap_or_default();
    let tty = cfg.tty.unwrap_or(false);
    let stdin = a.interactive && cfg.open_stdin.unwrap_or(false);
    let attach = AttachContainerOptions {
        stream: true,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: (!keys_spec.is_empty()).then(|| keys_spec.clone()),
        ..Default::default()
    };
    let conn = c
        .docker
        .attach_container(&id, Some(attach))
        .await
        .map_err(|e| c.err(e))?;
    let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if !running {
        if let Err(e) = c.docker.start_container(&id, None).await {
            return Err(start_failure(c, e));
        }
    }
    let session = Session {
        tty,
        stdin,
        detach_keys: keys,
        proxy_to: (!tty).then(|| id.clone()),
        resize: Some(Target::Container(id.clone())),
    };
    if crate::tty::pump(c, session, conn.output, conn.input).await? == Outcome::Detached {
        return Ok(());
    }
    match wait_exit(c, &id).await? {
        0 => Ok(()),
        n => Err(Failure::Exit(n)),
    }
}

async fn attach(c: &Ctx, a: AttachArgs) -> Res<()> {
    let (keys_spec, keys) = detach_keys(a.detach_keys.as_deref())?;
    let info = c
        .docker
        .inspect_container(&a.container, None::<InspectContainerOptions>)
        .await
        .map_err(|e| c.err(e))?;
    let id = info.id.clone().unwrap_or_else(|| a.container.clone());
    let state = info.state.unwrap_or_default();
    if !state.running.unwrap_or(false) {
        return Err(usage(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if state.paused.unwrap_or(false) {
        return Err(usage(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let cfg = info.config.unwrap_or_default();
    let tty = cfg.tty.unwrap_or(false);
    let stdin = !a.no_stdin && cfg.open_stdin.unwrap_or(false);
    let opts = AttachContainerOptions {
        stream: true,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: (!keys_spec.is_empty()).then(|| keys_spec.clone()),
        ..Default::default()
    };
    let conn = c
        .docker
        .attach_container(&id, Some(opts))
        .await
        .map_err(|e| c.err(e))?;
    let session = Session {
        tty,
        stdin,
        detach_keys: keys,
        proxy_to: (a.sig_proxy && !tty).then(|| id.clone()),
        resize: Some(Target::Container(id.clone())),
    };
    if crate::tty::pump(c, session, conn.output, conn.input).await? == Outcome::Detached {
        return Ok(());
    }
    match wait_exit(c, &id).await? {
        0 => Ok(()),
        n => Err(Failure::Exit(n)),
    }
}

fn start_failure(c: &Ctx, e: BollardError) -> Failure {
    match c.err(e) {
        Failure::Daemon(m) => {
            let code = start_error_code(&m);
            eprintln!("Error response from daemon: {m}");
            Failure::Exit(code)
        }
        other => other,
    }
}

async fn remove_quietly(c: &Ctx, id: &str) {
    let o = RemoveContainerOptions {
        force: true,
        v: true,
        link: false,
    };
    if let Err(e) = c.docker.remove_container(id, Some(o)).await {
        eprintln!(
            "berth: could not remove container {}: {}",
            short_id(id),
            describe(c, e)
        );
    }
}

/// The container's exit code once it is not running.
async fn wait_exit(c: &Ctx, id: &str) -> Res<i32> {
    let o = WaitContainerOptions {
        condition: "not-running".into(),
    };
    let mut s = c.docker.wait_container(id, Some(o));
    match s.next().await {
        Some(Ok(r)) => Ok(r.status_code as i32),
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code as i32),
        Some(Err(e)) => Err(c.err(e)),
        None => Err(Failure::Usage(format!(
            "the engine ended the wait for container {} without an exit code",
            short_id(id)
        ))),
    }
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time")]
    pub time: Option<i32>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// A `--since`/`--until` value as the whole unix seconds the logs API takes.
fn log_time(flag: &str, v: Option<&str>) -> Res<i32> {
    let Some(v) = v else { return Ok(0) };
    let t = super::system::timestamp(flag, v, std::time::SystemTime::now())?;
    let secs = t.split('.').next().unwrap_or("0");
    secs.parse::<i32>()
        .map_err(|_| usage(format!("invalid value for {flag}: {v:?}: out of range")))
}

async fn logs(c: &Ctx, a: LogsArgs) -> Res<()> {
    if a.tail != "all" && a.tail.parse::<u64>().is_err() {
        return Err(usage(format!(
            "invalid --tail {:?}: expected a number of lines or \"all\"",
            a.tail
        )));
    }
    let since = log_time("--since", a.since.as_deref())?;
    let until = log_time("--until", a.until.as_deref())?;
    let o = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        timestamps: a.timestamps,
        tail: a.tail,
        since,
        until,
    };
    let mut s = c.docker.logs(&a.container, Some(o));
    while let Some(item) = s.next().await {
        write_log(item.map_err(|e| c.err(e))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let m = parse_publish(&[
            "8080:80".into(),
            "127.0.0.1:53:53/udp".into(),
            "9000".into(),
        ])
        .unwrap();
        let b = m["80/tcp"].as_ref().unwrap();
        assert_eq!(b[0].host_port.as_deref(), Some("8080"));
        assert_eq!(b[0].host_ip, None);
        let u = m["53/udp"].as_ref().unwrap();
        assert_eq!(u[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            m["9000/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        let Err(Failure::Usage(msg)) = parse_publish(&["80:http".into()]) else {
            panic!("bad port accepted")
        };
        assert!(msg.contains("\"80:http\""), "{msg}");
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            parse_restart("always").unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, Some(3));
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("always:2").is_err());
    }

    #[test]
    fn start_error_codes() {
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_error_code("exec /nope: no such file or directory"),
            127
        );
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(start_error_code("cgroup setup failed"), 125);
    }
    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("-m", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("-m", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-m", "512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("-m", "100").unwrap(), 100);
        assert_eq!(parse_bytes("-m", "2MB").unwrap(), 2 << 20);
        assert!(parse_bytes("-m", "12x").is_err());
        assert!(parse_bytes("-m", "").is_err());
        assert_eq!(parse_duration("--x", "1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("--x", "500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("--x", "1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("--x", "0").unwrap(), 0);
        assert!(parse_duration("--x", "5").is_err());
        assert!(parse_duration("--x", "5 s").is_err());
        assert!(parse_duration("--x", "-1s").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,src=/a,dst=/b,readonly").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/a"));
        assert_eq!(m.target.as_deref(), Some("/b"));
        assert_eq!(m.read_only, Some(true));
        let m = parse_mount("type=tmpfs,destination=/t,tmpfs-size=1m").unwrap();
        assert_eq!(m.tmpfs_options.unwrap().size_bytes, Some(1 << 20));
        let m = parse_mount("source=v,target=/d,volume-opt=type=nfs,ro=false").unwrap();
        assert_eq!(m.typ, Some(MountType::VOLUME));
        assert_eq!(m.read_only, Some(false));
        let opts = m
            .volume_options
            .unwrap()
            .driver_config
            .unwrap()
            .options
            .unwrap();
        assert_eq!(opts["type"], "nfs");
        let Err(Failure::Usage(e)) = parse_mount("type=bind,src=/a,target=/b,colour=red") else {
            panic!("unknown key accepted")
        };
        assert!(e.contains("\"colour\""), "{e}");
        assert!(parse_mount("type=bind,target=/b").is_err());
        assert!(parse_mount("type=volume,src=v").is_err());
        assert!(parse_mount("type=bind,src=/a,target=/b,tmpfs-size=1m").is_err());
    }

    #[test]
    fn kv_files() {
        let dir = std::env::temp_dir().join(format!("berth-kv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("env");
        std::fs::write(&f, "# c\n\nA=1 2\n  B=\nPATH\nBERTH_SURELY_UNSET_VAR\n").unwrap();
        let v = read_kv_file("--env-file", f.to_str().unwrap(), true).unwrap();
        assert_eq!(v[0], "A=1 2");
        assert_eq!(v[1], "B=");
        assert!(v[2].starts_with("PATH="));
        assert_eq!(v.len(), 3);
        std::fs::write(&f, "BAD KEY=1\n").unwrap();
        assert!(read_kv_file("--env-file", f.to_str().unwrap(), true).is_err());
        assert!(read_kv_file("--env-file", "/no/such/file", true).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ulimits_hosts_and_signals() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        assert!(parse_ulimit("nofile=10:5").is_err());
        assert!(parse_ulimit("=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert_eq!(parse_add_host("db:10.0.0.5").unwrap(), "db:10.0.0.5");
        assert_eq!(parse_add_host("db=::1").unwrap(), "db:::1");
        assert!(parse_add_host("db:nope").is_err());
        assert!(valid_signal("SIGTERM") && valid_signal("usr1") && valid_signal("9"));
        assert!(!valid_signal("SIGNOPE"));
        assert_eq!(
            parse_expose(&["7000-7001/udp".into()]).unwrap(),
            ["7000/udp", "7001/udp"]
        );
        assert!(parse_expose(&["9-1".into()]).is_err());
    }
}
