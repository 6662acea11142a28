//! berthd: Berth's engine daemon. It owns the engine state (through berth-engine) and serves
//! the Docker Engine API on a unix socket (and, if asked, on a loopback TCP address).
//!
//! Flags follow dockerd's names: `--data-root`, `-H/--host`, `--exec-root`, `--config-file`,
//! `--log-level`. The config file is a Docker `daemon.json`; berthd reads `registry-mirrors`,
//! `insecure-registries`, `registry-mirrors-by-host`, `max-concurrent-downloads` and
//! `log-level`, and ignores other keys.

#![recursion_limit = "256"]

mod api;
mod listen;
mod sysinfo;

use anyhow::{bail, Context, Result};
use berth_engine::images::ImageService;
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
    /// Root of persisted state (images, containers, volumes).
    #[arg(long = "data-root", default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state (sockets, pid files).
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Where to listen: unix:///path, or tcp://127.0.0.1:port (loopback only). Repeatable.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Daemon configuration (Docker's daemon.json format); a missing file is fine.
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// debug, info, warn, error or fatal (default: the config file's, else info).
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
}

/// What berthd reads from daemon.json.
struct DaemonConfig {
    registry: RegistryConfig,
    log_level: Option<String>,
}

fn read_config(path: &Path) -> Result<DaemonConfig> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DaemonConfig {
                registry: RegistryConfig::default(),
                log_level: None,
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
    Ok(DaemonConfig {
        registry,
        log_level,
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
    let store = Arc::new(
        Store::open(&cli.data_root)
            .with_context(|| format!("opening the store at {}", cli.data_root.display()))?,
    );
    let images = ImageService::new(Arc::clone(&store), cfg.registry.clone())
        .context("setting up the registry client")?;
    let state = Arc::new(api::State {
        images,
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
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        _ = term.recv() => info!("SIGTERM: shutting down"),
    }
    for a in &addrs {
        listen::cleanup(a);
    }
    Ok(())
}
