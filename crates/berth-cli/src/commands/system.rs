//! version and info.

use clap::Subcommand;

use super::{Ctx, Res};
use crate::format::human_size;

/// Engine-wide commands at the top level.
#[derive(Subcommand)]
pub enum TopCmd {
    /// Show the berth and engine versions
    Version,
    /// Show a summary of the engine
    Info,
}

/// `berth system ...`.
#[derive(Subcommand)]
pub enum SystemCmd {
    /// Show a summary of the engine
    Info,
}

pub async fn dispatch_top(c: &Ctx, cmd: TopCmd) -> Res<()> {
    match cmd {
        TopCmd::Version => version(c).await,
        TopCmd::Info => info(c).await,
    }
}

pub async fn dispatch(c: &Ctx, cmd: SystemCmd) -> Res<()> {
    match cmd {
        SystemCmd::Info => info(c).await,
    }
}

async fn version(c: &Ctx) -> Res<()> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       1.45");
    println!(
        " OS/Arch:           {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let v = c.docker.version().await.map_err(|e| c.err(e))?;
    let s = |o: Option<String>| o.unwrap_or_default();
    println!();
    println!("Server: {}", s(v.platform.map(|p| p.name)));
    println!(" Engine:");
    println!("  Version:          {}", s(v.version));
    println!(
        "  API version:      {} (minimum version {})",
        s(v.api_version),
        s(v.min_api_version)
    );
    println!("  OS/Arch:          {}/{}", s(v.os), s(v.arch));
    println!("  Kernel version:   {}", s(v.kernel_version));
    Ok(())
}

async fn info(c: &Ctx) -> Res<()> {
    let i = c.docker.info().await.map_err(|e| c.err(e))?;
    let n = |o: Option<i64>| o.unwrap_or(0);
    let s = |o: Option<String>| o.unwrap_or_default();
    println!("Server:");
    println!(" Containers: {}", n(i.containers));
    println!("  Running: {}", n(i.containers_running));
    println!("  Paused: {}", n(i.containers_paused));
    println!("  Stopped: {}", n(i.containers_stopped));
    println!(" Images: {}", n(i.images));
    println!(" Server Version: {}", s(i.server_version));
    println!(" Storage Driver: {}", s(i.driver));
    println!(
        " Cgroup Driver: {}",
        s(i.cgroup_driver.map(|d| d.to_string()))
    );
    println!(" Default Runtime: {}", s(i.default_runtime));
    println!(" Kernel Version: {}", s(i.kernel_version));
    println!(" Operating System: {}", s(i.operating_system));
    println!(" OSType: {}", s(i.os_type));
    println!(" Architecture: {}", s(i.architecture));
    println!(" CPUs: {}", n(i.ncpu));
    println!(" Total Memory: {}", human_size(n(i.mem_total)));
    println!(" Name: {}", s(i.name));
    println!(" Docker Root Dir: {}", s(i.docker_root_dir));
    Ok(())
}
