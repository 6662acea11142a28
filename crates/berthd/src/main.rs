//! berthd: Berth's engine daemon. It owns the engine state (through berth-engine) and serves
//! the Docker Engine API on a unix socket (and, if asked, on a loopback TCP address).
//!
//! Flags follow dockerd's names: `--data-root`, `-H/--host`, `--exec-root`, `--config-file`,
//! `--log-level`. The config file is a Docker `daemon.json`; berthd reads `registry-mirrors`,
//! `insecure-registries`, `registry-mirrors-by-host`, `max-concurrent-downloads` and
//! `log-level`, and ignores other keys.

#![recursion_limit = "256"]

mod api;
mod api_auth;
mod api_build;
mod api_containers;
mod api_exec;
mod api_fs;
mod api_networks;
mod api_system;
mod api_volumes;
mod listen;
mod sysinfo;

use anyhow::{bail, Context, Result};
use berth_engine::images::ImageService;
use berth_engine::network::{NetworkOptions, Networks, Subnet};
use berth_registry::RegistryConfig;
use berth_store::store::Store;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{error, info};

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "Berth's engine daemon (Docker Engine API)"
)]
struct Cli {
    /// Root of persisted state (images, containers, volumes) [default: daemon.json's
    /// "data-root", else /var/lib/berth].
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, pid files) [default: daemon.json's "exec-root", else
    /// /run/berth].
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Where to listen: unix:///path, or tcp://127.0.0.1:port (loopback only). Repeatable.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Daemon configuration (Docker's daemon.json format); a missing file is fine.
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Where to write berthd's pid [default: <exec-root>/berthd.pid]. A pid file naming a
    /// live berthd stops a second one from starting on the same roots.
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// debug, info, warn, error or fatal (default: the config file's, else info).
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
}

/// The settings in force, after flags and daemon.json.
struct Resolved {
    data_root: PathBuf,
    exec_root: PathBuf,
    hosts: Vec<String>,
    config_file: PathBuf,
}

/// What berthd reads from daemon.json.
struct DaemonConfig {
    registry: RegistryConfig,
    log_level: Option<String>,
    network: NetworkOptions,
    live_restore: bool,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
}

/// `bip` (the default bridge's gateway and prefix, `10.200.0.1/24`), `bridge` (its name) and
/// `default-address-pools` (`[{"base":"10.201.0.0/16","size":24}]`).
fn network_options(v: &serde_json::Value, path: &Path) -> Result<NetworkOptions> {
    let mut o = NetworkOptions::default();
    if let Some(b) = v.get("bridge").filter(|b| !b.is_null()) {
        let b = b
            .as_str()
            .with_context(|| format!("{}: \"bridge\" must be a string", path.display()))?;
        if b.is_empty()
            || b.len() > 15
            || !b
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            bail!(
                "{}: \"bridge\" {b:?} is not a valid interface name (1-15 letters, digits, - or _)",
                path.display()
            );
        }
        o.default_bridge = b.to_string();
    }
    if let Some(b) = v.get("bip").filter(|b| !b.is_null()) {
        let s = b.as_str().with_context(|| {
            format!(
                "{}: \"bip\" must be a string like \"10.200.0.1/24\"",
                path.display()
            )
        })?;
        let (ip, prefix) = s
            .split_once('/')
            .and_then(|(ip, p)| Some((ip.parse::<std::net::Ipv4Addr>().ok()?, p.parse::<u8>().ok()?)))
            .filter(|(_, p)| (8..=30).contains(p))
            .with_context(|| format!("{}: \"bip\" {s:?} is not an IPv4 address with a prefix length (8-30), like \"10.200.0.1/24\"", path.display()))?;
        let mask = u32::MAX << (32 - prefix);
        let net = std::net::Ipv4Addr::from(u32::from(ip) & mask);
        o.default_subnet =
            Subnet::new(net, prefix).with_context(|| format!("{}: \"bip\"", path.display()))?;
    }
    if let Some(p) = v.get("default-address-pools").filter(|b| !b.is_null()) {
        let arr = p.as_array().with_context(|| {
            format!("{}: \"default-address-pools\" must be a list of {{\"base\": \"10.201.0.0/16\", \"size\": 24}}", path.display())
        })?;
        let mut pools = Vec::new();
        for (i, e) in arr.iter().enumerate() {
            let base = e
                .get("base")
                .and_then(|b| b.as_str())
                .and_then(|b| b.parse::<Subnet>().ok());
            let size = e
                .get("size")
                .and_then(|b| b.as_u64())
                .filter(|s| (8..=30).contains(s));
            match (base, size) {
                (Some(b), Some(sz)) if sz as u8 >= b.prefix => pools.push((b, sz as u8)),
                _ => bail!("{}: default-address-pools[{i}] must be {{\"base\": \"<network>/<prefix>\", \"size\": <prefix length, 8-30, not shorter than the base's>}}", path.display()),
            }
        }
        if !pools.is_empty() {
            o.pools = pools;
        }
    }
    Ok(o)
}

fn read_config(path: &Path) -> Result<DaemonConfig> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DaemonConfig {
                registry: RegistryConfig::default(),
                log_level: None,
                network: NetworkOptions::default(),
                live_restore: false,
                data_root: None,
                exec_root: None,
            })
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if !v.is_object() {
        bail!(
            "{}: the configuration must be a JSON object",
            path.display()
        );
    }
    let registry =
        RegistryConfig::from_daemon_json(&v).with_context(|| format!("in {}", path.display()))?;
    let log_level = match v.get("log-level") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => bail!(
            "{}: \"log-level\" must be a string, found {other}",
            path.display()
        ),
    };
    let network = network_options(&v, path)?;
    let live_restore = match v.get("live-restore") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => bail!(
            "{}: \"live-restore\" must be true or false, found {other}",
            path.display()
        ),
    };
    let path_key = |key: &str| -> Result<Option<PathBuf>> {
        match v.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.starts_with('/') => Ok(Some(PathBuf::from(s))),
            Some(other) => bail!(
                "{}: \"{key}\" must be an absolute path, found {other}",
                path.display()
            ),
        }
    };
    Ok(DaemonConfig {
        registry,
        log_level,
        network,
        live_restore,
        data_root: path_key("data-root")?,
        exec_root: path_key("exec-root")?,
    })
}

fn level(s: &str) -> Result<tracing::Level> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        "error" | "fatal" | "panic" => tracing::Level::ERROR,
        other => bail!("unknown log level \"{other}\": use debug, info, warn, error or fatal"),
    })
}

fn main() {
    let cli = Cli::parse();
    let cfg = match read_config(&cli.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: configuration error: {e:#}");
            std::process::exit(1);
        }
    };
    let lvl = match level(
        cli.log_level
            .as_deref()
            .or(cfg.log_level.as_deref())
            .unwrap_or("info"),
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            std::process::exit(1);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(lvl)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli, cfg, lvl)) {
        error!("{e:#}");
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli, cfg: DaemonConfig, lvl: tracing::Level) -> Result<()> {
    let pidfile_flag = cli.pidfile.clone();
    // Flags win over daemon.json, which wins over the defaults.
    let cli = Resolved {
        data_root: cli
            .data_root
            .clone()
            .or(cfg.data_root.clone())
            .unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
        exec_root: cli
            .exec_root
            .clone()
            .or(cfg.exec_root.clone())
            .unwrap_or_else(|| PathBuf::from("/run/berth")),
        hosts: cli.hosts.clone(),
        config_file: cli.config_file.clone(),
    };
    let hosts = if cli.hosts.is_empty() {
        vec!["unix:///run/berth/berth.sock".to_string()]
    } else {
        cli.hosts.clone()
    };
    // Parse every address before touching anything.
    let addrs = hosts
        .iter()
        .map(|h| listen::parse_host(h))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&cli.data_root)
        .with_context(|| format!("creating the data root {}", cli.data_root.display()))?;
    std::fs::create_dir_all(&cli.exec_root)
        .with_context(|| format!("creating the exec root {}", cli.exec_root.display()))?;
    let pidfile = pidfile_flag.unwrap_or_else(|| cli.exec_root.join("berthd.pid"));
    write_pidfile(&pidfile)?;
    let _pidfile_guard = PidFile(pidfile);
    let store = Arc::new(
        Store::open(&cli.data_root)
            .with_context(|| format!("opening the store at {}", cli.data_root.display()))?,
    );
    let images = ImageService::new(Arc::clone(&store), cfg.registry.clone())
        .context("setting up the registry client")?;
    let events = berth_engine::events::Events::new();
    let volumes = Arc::new(
        berth_engine::volumes::Volumes::open(&cli.data_root.join("volumes"))
            .context("opening the volume store")?,
    );
    let net_dir = cli.data_root.join("network");
    let net_opts = cfg.network.clone();
    let networks = tokio::task::spawn_blocking(move || Networks::open(&net_dir, net_opts))
        .await
        .context("network setup")?
        .context("setting up networks")?;
    let networks = Arc::new(std::sync::Mutex::new(networks));
    let containers = berth_engine::containers::ContainerService::open(
        berth_engine::containers::ContainerOptions {
            data_root: cli.data_root.clone(),
            exec_root: cli.exec_root.clone(),
            bin_dir: bin_dir()?,
            live_restore: cfg.live_restore,
        },
        images.clone(),
        Arc::clone(&volumes),
        Arc::clone(&networks),
        events.clone(),
    )
    .await
    .context("restoring containers")?;
    let images_for_build = images.clone();
    let state = Arc::new(api::State {
        images,
        containers: containers.clone(),
        volumes,
        networks,
        events,
        execs: berth_engine::exec::ExecService::new(cli.exec_root.join("execs")),
        builds: berth_engine::build::BuildService::new(
            images_for_build,
            containers.clone(),
            &cli.data_root,
        ),
        data_root: cli.data_root.clone(),
        id: sysinfo::engine_id(&cli.data_root)?,
        debug: lvl >= tracing::Level::DEBUG,
    });
    let mut listeners = Vec::new();
    for a in &addrs {
        listeners.push(listen::bind(a).await?);
    }
    for l in listeners {
        info!(address = %l.describe(), "API listening");
        tokio::spawn(listen::serve(l, Arc::clone(&state)));
    }
    info!(
        data_root = %cli.data_root.display(),
        api = api::API_VERSION,
        "berthd {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    // SIGHUP: re-read the config file's registry settings (mirrors, insecure registries).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let reload_state = Arc::clone(&state);
    let config_file = cli.config_file.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match read_config(&config_file) {
                Ok(c) => match reload_state.images.reload_registry(c.registry) {
                    Ok(()) => {
                        info!(config = %config_file.display(), "SIGHUP: registry settings reloaded")
                    }
                    Err(e) => error!("SIGHUP: keeping the old registry settings: {e}"),
                },
                Err(e) => error!("SIGHUP: keeping the old registry settings: {e:#}"),
            }
        }
    });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        _ = term.recv() => info!("SIGTERM: shutting down"),
    }
    for a in &addrs {
        listen::cleanup(a);
    }
    containers.shutdown().await;
    Ok(())
}

/// Writes our pid to `path`, refusing when it names another live berthd (two engines on one
/// exec root would fight over containers and sockets).
fn write_pidfile(path: &Path) -> Result<()> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if pid != std::process::id() && comm.trim() == "berthd" {
                anyhow::bail!(
                    "pid file {} names a running berthd (pid {pid}); stop it first, or give this \
                     one its own --exec-root/--pidfile",
                    path.display()
                );
            }
        }
    }
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing the pid file {}", path.display()))
}

/// Removes the pid file when berthd exits (if it still names us).
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Where berth-runtime and berth-monitor are: `$BERTH_BIN_DIR`, else next to berthd.
fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("BERTH_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("locating berthd's own binary")?;
    Ok(exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin")))
}
