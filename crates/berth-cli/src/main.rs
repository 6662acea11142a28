//! `berth`: docker's everyday commands, talking to berthd through the Docker Engine API.

mod commands;
mod format;
#[allow(dead_code)] // wired into the commands next
mod template;
mod tty;

use clap::{Parser, Subcommand};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Run and manage containers on the Berth engine"
)]
pub struct Cli {
    /// Engine socket (unix:///path); else $BERTH_HOST, $DOCKER_HOST, unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", global = true)]
    pub host: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Containers(commands::containers::ContainerCmd),
    /// Manage containers
    #[command(subcommand)]
    Container(commands::containers::ContainerMgmt),
    #[command(flatten)]
    Images(commands::images::ImageCmd),
    /// Manage images
    #[command(subcommand)]
    Image(commands::images::ImageMgmt),
    /// Manage volumes
    #[command(subcommand)]
    Volume(commands::resources::VolumeCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(commands::resources::NetworkCmd),
    /// Manage the engine
    #[command(subcommand)]
    System(commands::system::SystemCmd),
    #[command(flatten)]
    Top(commands::system::TopCmd),
}

/// The engine address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default socket.
pub fn pick_host(flag: Option<String>, berth: Option<String>, docker: Option<String>) -> String {
    [flag, berth, docker]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

fn main() {
    let cli = Cli::parse();
    let host = pick_host(
        cli.host,
        std::env::var("BERTH_HOST").ok(),
        std::env::var("DOCKER_HOST").ok(),
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            std::process::exit(125);
        }
    };
    let code = rt.block_on(commands::run(&host, cli.command));
    // Don't wait for stream tasks still parked on the socket (e.g. logs -f).
    rt.shutdown_background();
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_order() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            pick_host(s("unix:///a"), s("unix:///b"), s("unix:///c")),
            "unix:///a"
        );
        assert_eq!(pick_host(None, s("unix:///b"), s("unix:///c")), "unix:///b");
        assert_eq!(pick_host(None, None, s("unix:///c")), "unix:///c");
        assert_eq!(pick_host(None, s(""), None), DEFAULT_HOST);
        assert_eq!(pick_host(None, None, None), DEFAULT_HOST);
    }

    #[test]
    fn cli_parses_docker_shapes() {
        let cli = Cli::try_parse_from([
            "berth",
            "-H",
            "unix:///s",
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            "-e",
            "A=1",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
        ])
        .unwrap();
        let Command::Containers(commands::containers::ContainerCmd::Run(r)) = cli.command else {
            panic!("not run")
        };
        assert!(r.detach);
        assert_eq!(r.opts.name.as_deref(), Some("web"));
        assert_eq!(r.opts.publish, ["8080:80"]);
        assert_eq!(r.opts.image, "busybox");
        // Flags after the image belong to the command.
        assert_eq!(r.opts.cmd, ["httpd", "-f", "-p", "80"]);
        assert!(Cli::try_parse_from(["berth", "pss"]).is_err());
    }
}
