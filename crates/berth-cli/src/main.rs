//! `berth`: docker's everyday commands, talking to berthd through the Docker Engine API.

mod commands;
mod format;
mod progress;
mod template;
mod tty;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::io::Write;

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Run and manage containers on the Berth engine",
    arg_required_else_help = true
)]
pub struct Cli {
    /// Engine socket (unix:///path); else $BERTH_HOST, $DOCKER_HOST, the context
    /// ($DOCKER_CONTEXT, `berth context use`), unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", global = true)]
    pub host: Option<String>,
    #[command(subcommand)]
    pub command: Top,
}

/// The commands: the engine's, and those berth answers itself.
#[derive(Subcommand)]
pub enum Top {
    #[command(flatten)]
    Engine(Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(long_about = "Print a shell completion script.\n\n\
        bash:  source <(berth completion bash)\n\
        zsh:   berth completion zsh > \"${fpath[1]}/_berth\"\n\
        fish:  berth completion fish > ~/.config/fish/completions/berth.fish")]
    Completion(CompletionArgs),
    /// Manage the Berth VM (the engine in a small Linux VM): create, start, stop, status,
    /// logs, resize, compact, delete
    Vm(commands::vm::VmArgs),
    /// Manage contexts (docker's: `berth context use X` also switches the docker CLI)
    #[command(subcommand)]
    Context(commands::context::ContextCmd),
}

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to write the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Build an image from a Dockerfile (docker's classic builder)
    Build(Box<commands::build::BuildArgs>),
    /// Manage builds
    #[command(subcommand)]
    Builder(commands::build::BuilderCmd),
    /// Define and run multi-container applications (docker compose)
    Compose(Box<commands::compose::ComposeArgs>),
    /// Deploy a compose project to Kubernetes: generate, deploy, status, logs, delete
    Kube(Box<commands::kube::KubeArgs>),
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
    #[command(flatten)]
    Auth(commands::auth::AuthCmd),
}

/// With nothing chosen and no native engine socket, the Berth VM's socket
/// (`~/.berth/berth.sock`) when it exists: the engine running in the VM.
pub(crate) fn vm_fallback(host: String, chosen: bool) -> String {
    if chosen || host != DEFAULT_HOST {
        return host;
    }
    let native = std::path::Path::new(DEFAULT_HOST.trim_start_matches("unix://"));
    if native.exists() {
        return host;
    }
    match std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".berth/berth.sock")) {
        Some(vm) if vm.exists() => format!("unix://{}", vm.display()),
        _ => host,
    }
}

/// What berth prints for a command line clap refused, docker's way: one line saying what
/// is wrong, clap's tip when it has one ("a similar subcommand exists"), where to read
/// more; exit 125 for a bad flag or argument, 1 for an unknown command (docker's codes). Help
/// and version go to stdout and exit 0.
pub fn parse_failure(e: &clap::Error) -> (String, bool, i32) {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return (e.render().to_string(), true, 0)
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let path = command_path(&rendered);
    let strs = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let mut lines = Vec::new();
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let bad = strs(ContextKind::InvalidSubcommand).join(" ");
            let what = if path == "berth" {
                format!("berth: '{bad}' is not a berth command.")
            } else {
                format!("{path}: '{bad}' is not a {path} command.")
            };
            lines.push(what);
        }
        ErrorKind::UnknownArgument => {
            let bad = strs(ContextKind::InvalidArg).join(" ");
            if bad.starts_with('-') {
                let flag = bad.split('=').next().unwrap_or(&bad);
                lines.push(format!("unknown flag: {flag}"));
            } else {
                lines.push(format!("\"{path}\" got an unexpected argument: '{bad}'"));
            }
        }
        _ => {
            // clap's first paragraph, on one line.
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            lines.push(first.strip_prefix("error: ").unwrap_or(&first).to_string());
        }
    }
    for l in rendered.lines() {
        let l = l.trim();
        if l.starts_with("tip:") {
            lines.push(l.to_string());
        }
    }
    lines.push(format!("See '{path} --help'."));
    let code = if e.kind() == ErrorKind::InvalidSubcommand {
        1
    } else {
        125
    };
    (lines.join("\n") + "\n", false, code)
}

/// "berth volume ls" from clap's "Usage: berth volume ls [OPTIONS] <NAME>" line.
fn command_path(rendered: &str) -> String {
    let usage = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("berth");
    let words: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| {
            !w.starts_with(['[', '<', '-']) && !w.chars().all(|c| c.is_uppercase() || c == '_')
        })
        .collect();
    if words.is_empty() {
        "berth".into()
    } else {
        words.join(" ")
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let (text, stdout, code) = parse_failure(&e);
            if stdout {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            std::process::exit(code);
        }
    };
    let command = match cli.command {
        Top::Completion(a) => {
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "berth", &mut script);
            // A closed pipe (`| head`) is not an error worth a message.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&script).and_then(|()| out.flush());
            return;
        }
        Top::Vm(a) => std::process::exit(commands::vm::run(a)),
        other => other,
    };
    // docker's order: -H, BERTH_HOST, DOCKER_HOST, DOCKER_CONTEXT, currentContext, default.
    let store = berth_context::Store::from_env();
    let sel = commands::context::select(
        cli.host,
        std::env::var("BERTH_HOST").ok(),
        std::env::var("DOCKER_HOST").ok(),
        std::env::var("DOCKER_CONTEXT").ok(),
        store.as_ref().ok(),
    );
    if let Some(w) = &sel.warning {
        eprintln!("{w}");
    }
    let command = match command {
        Top::Context(c) => std::process::exit(commands::context::run(c, &sel, store)),
        Top::Engine(command) => command,
        Top::Completion(_) | Top::Vm(_) => return,
    };
    let host = match commands::context::engine(&sel, store.as_ref().ok()) {
        Ok((host, chosen)) => vm_fallback(host, chosen),
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    };
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
    let code = rt.block_on(commands::run(&host, command));
    // Don't wait for stream tasks still parked on the socket (e.g. logs -f).
    rt.shutdown_background();
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default
    /// socket (contexts: see commands::context's tests).
    fn pick_host(flag: Option<String>, berth: Option<String>, docker: Option<String>) -> String {
        let sel = commands::context::select(flag, berth, docker, None, None);
        commands::context::engine(&sel, None).unwrap().0
    }

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
        let Top::Engine(Command::Containers(commands::containers::ContainerCmd::Run(r))) =
            cli.command
        else {
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
