//! `berth compose`: docker compose's commands over the berth-compose crate (the loader and the
//! planner); this file is flags, printing and exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use berth_compose::ops::{
    self, BuildOptions, Compose, DownOptions, Event, LogOptions, PsOptions, Reporter, Rmi,
    UpOptions,
};
use berth_compose::{LoadOptions, Project};
use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt;

use super::{Ctx, Failure, Res};
use crate::format;

/// The flags that pick a compose project: `berth compose`'s, and `berth kube`'s too.
#[derive(Args, Clone)]
pub struct ProjectFlags {
    /// Compose configuration files (several are merged in order)
    #[arg(short = 'f', long = "file")]
    pub file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the first compose file's directory)
    #[arg(long)]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (default: .env in the project directory)
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Enable services of this profile
    #[arg(long)]
    pub profile: Vec<String>,
}

impl ProjectFlags {
    /// The project the flags name, loaded from its files.
    pub fn load(&self) -> Res<Project> {
        let cwd = std::env::current_dir().map_err(|e| fail(format!("current directory: {e}")))?;
        let opts = LoadOptions {
            files: self.file.clone(),
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            env_files: self.env_file.clone(),
            profiles: self.profile.clone(),
            environment: std::env::vars().collect(),
            cwd,
        };
        berth_compose::load(&opts).map_err(fail)
    }

    /// The project, or with `-p` and no compose file, a project of that name alone (docker
    /// compose's `-p NAME ps|logs|down` work from anywhere).
    pub fn project_or_name(&self) -> Res<Project> {
        let Some(name) = self.project_name.clone() else {
            return self.load();
        };
        if !self.file.is_empty() {
            return self.load();
        }
        let cwd = std::env::current_dir().map_err(|e| fail(format!("current directory: {e}")))?;
        if berth_compose::load::find_files(&cwd).is_ok() {
            return self.load();
        }
        Ok(Project {
            name,
            working_dir: cwd,
            files: vec![],
            services: BTreeMap::new(),
            disabled: BTreeMap::new(),
            networks: BTreeMap::new(),
            volumes: BTreeMap::new(),
            configs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            warnings: vec![],
        })
    }
}

#[derive(Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub project: ProjectFlags,
    /// Colour output: never, always, auto
    #[arg(long, value_enum, default_value = "auto")]
    pub ansi: Ansi,
    #[command(subcommand)]
    pub command: ComposeCmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Ansi {
    Never,
    Always,
    Auto,
}

#[derive(Subcommand)]
pub enum ComposeCmd {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers, networks
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Build or rebuild services
    Build(BuildArgs),
    /// Pull service images
    Pull(ServicesArg),
    /// Push service images
    Push(ServicesArg),
    /// Start services
    Start(ServicesArg),
    /// Stop services
    Stop(TimeoutArgs),
    /// Restart service containers
    Restart(TimeoutArgs),
    /// Removes stopped service containers
    Rm(RmArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Parse, resolve and render the compose file in canonical format
    Config(ConfigArgs),
    /// Like config; `--format kubernetes` prints the project as Kubernetes objects
    Convert(ConvertArgs),
    /// List running compose projects
    Ls(LsArgs),
}

#[derive(Args)]
pub struct ServicesArg {
    pub services: Vec<String>,
}

#[derive(Args)]
pub struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM)
    #[arg(long)]
    pub scale: Vec<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Wait for services to be running|healthy (implies detached mode)
    #[arg(long)]
    pub wait: bool,
    /// Don't start the services after creating them
    #[arg(long)]
    pub no_start: bool,
    /// Shutdown timeout in seconds when containers are stopped or recreated
    #[arg(short, long)]
    pub timeout: Option<i64>,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Stops all containers if any container was stopped (attached mode)
    #[arg(long, conflicts_with = "detach")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container (implies
    /// --abort-on-container-exit)
    #[arg(long, conflicts_with = "detach")]
    pub exit_code_from: Option<String>,
    pub services: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RmiArg {
    All,
    Local,
}

#[derive(Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove images used by services: "local" only those without a custom tag, "all" every one
    #[arg(long, value_enum)]
    pub rmi: Option<RmiArg>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Shutdown timeout in seconds
    #[arg(short, long)]
    pub timeout: Option<i64>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all stopped containers
    #[arg(short, long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Format the output: table or json
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    pub services: Vec<String>,
}

#[derive(Args)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    pub services: Vec<String>,
}

#[derive(Args)]
pub struct TimeoutArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short, long)]
    pub timeout: Option<i64>,
    pub services: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    pub service: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Run command with the service's ports enabled and mapped to the host
    #[arg(long)]
    pub service_ports: bool,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ConfigFormat {
    Yaml,
    Json,
}

#[derive(Args)]
pub struct ConfigArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Format the output: yaml or json
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: ConfigFormat,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: yaml, json, or kubernetes (the objects `berth kube generate` makes)
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: ConvertFormat,
    /// kubernetes: write one file per object into this directory
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// kubernetes: put every object in this namespace (and emit the Namespace)
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub gen: super::kube::GenFlags,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ConvertFormat {
    Yaml,
    Json,
    Kubernetes,
}

#[derive(Args)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    pub all: bool,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: table or json
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

/// Print `message` on stderr and fail with docker compose's exit code 1.
fn fail(message: impl std::fmt::Display) -> Failure {
    eprintln!("{message}");
    Failure::Exit(1)
}

fn load(a: &ComposeArgs) -> Res<Project> {
    a.project.load()
}

/// The project, or with `-p` and no compose file, a project of that name alone.
fn project_name(a: &ComposeArgs) -> Res<Project> {
    a.project.project_or_name()
}

/// The progress printer: docker compose's plain lines on stderr (` Container x  Started`);
/// on a terminal only the finished step of each resource, ticked.
fn reporter(color: bool) -> Reporter {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    Arc::new(move |e: Event| {
        let mut err = std::io::stderr().lock();
        let _ = match e {
            Event::Resource {
                resource,
                name,
                status,
                done,
            } => {
                if tty && !done {
                    Ok(())
                } else if tty && color {
                    writeln!(
                        err,
                        " \x1b[32m✔\x1b[0m {resource} {name}  \x1b[32m{status}\x1b[0m"
                    )
                } else if tty {
                    writeln!(err, " ✔ {resource} {name}  {status}")
                } else {
                    writeln!(err, " {resource} {name}  {status}")
                }
            }
            Event::Build { service, line } => writeln!(err, "[{service}] {line}"),
            Event::Pull { service, status } => {
                if tty {
                    Ok(())
                } else {
                    writeln!(err, " {service} {status}")
                }
            }
            Event::Warning { message } => {
                if color {
                    writeln!(err, "\x1b[33mWARN\x1b[0m[0000] {message}")
                } else {
                    writeln!(err, "WARN[0000] {message}")
                }
            }
        };
    })
}

fn use_color(a: &ComposeArgs, no_color: bool) -> bool {
    if no_color || std::env::var_os("NO_COLOR").is_some() {
        return false;
    }
    match a.ansi {
        Ansi::Never => false,
        Ansi::Always => true,
        Ansi::Auto => std::io::IsTerminal::is_terminal(&std::io::stdout()),
    }
}

fn op(e: ops::Error) -> Failure {
    fail(e.message)
}

pub async fn compose(c: &Ctx, a: ComposeArgs) -> Res<()> {
    let engine = Compose::new(c.docker.clone()).with_auth(Arc::new(|image: &str| {
        super::auth::credentials_for_image(image)
    }));
    let color = use_color(&a, false);
    let r = reporter(color);
    match &a.command {
        ComposeCmd::Up(u) => {
            let p = load(&a)?;
            let mut scale = BTreeMap::new();
            for s in &u.scale {
                let Some((svc, n)) = s.split_once('=') else {
                    return Err(fail(format!(
                        "invalid --scale {s:?}: expected SERVICE=NUM, like web=3"
                    )));
                };
                let n: u32 = n.parse().map_err(|_| {
                    fail(format!(
                        "invalid --scale {s:?}: {n:?} is not a number of replicas"
                    ))
                })?;
                scale.insert(svc.to_string(), n);
            }
            let o = UpOptions {
                services: u.services.clone(),
                build: u.build,
                no_build: u.no_build,
                force_recreate: u.force_recreate,
                no_recreate: u.no_recreate,
                no_deps: u.no_deps,
                scale,
                remove_orphans: u.remove_orphans,
                wait: u.wait,
                no_start: u.no_start,
                timeout: u.timeout,
            };
            if let Some(svc) = &u.exit_code_from {
                if !p.services.contains_key(svc) {
                    return Err(fail(format!(
                        "--exit-code-from {svc}: no such service in the project"
                    )));
                }
            }
            let since = format::now_unix();
            engine.up(&p, &o, &r).await.map_err(op)?;
            if u.detach || u.wait || u.no_start {
                return Ok(());
            }
            let att = Attached {
                services: u.services.clone(),
                color: use_color(&a, u.no_color),
                timeout: u.timeout,
                since,
                abort: u.abort_on_container_exit || u.exit_code_from.is_some(),
                exit_code_from: u.exit_code_from.clone(),
            };
            attached(c, &engine, &p, &att, &r).await
        }
        ComposeCmd::Down(d) => {
            let p = project_name(&a)?;
            let o = DownOptions {
                volumes: d.volumes,
                rmi: d.rmi.map(|x| match x {
                    RmiArg::All => Rmi::All,
                    RmiArg::Local => Rmi::Local,
                }),
                remove_orphans: d.remove_orphans,
                timeout: d.timeout,
            };
            engine.down(&p, &o, &r).await.map_err(op)
        }
        ComposeCmd::Ps(x) => {
            let p = project_name(&a)?;
            if x.services {
                for s in p.services.keys() {
                    println!("{s}");
                }
                return Ok(());
            }
            let list = engine
                .ps(
                    &p.name,
                    &PsOptions {
                        services: x.names.clone(),
                        all: x.all,
                    },
                )
                .await
                .map_err(op)?;
            if x.quiet {
                for c in &list {
                    println!("{}", c.id);
                }
                return Ok(());
            }
            if x.format == ListFormat::Json {
                // docker compose v2's shape: one JSON object per line.
                let now = format::now_unix();
                for c in &list {
                    println!("{}", ps_json(&p.name, c, now));
                }
                return Ok(());
            }
            let now = format::now_unix();
            let mut rows = vec![vec![
                "NAME".to_string(),
                "IMAGE".into(),
                "COMMAND".into(),
                "SERVICE".into(),
                "CREATED".into(),
                "STATUS".into(),
                "PORTS".into(),
            ]];
            for c in &list {
                rows.push(vec![
                    c.name.clone(),
                    c.image.clone(),
                    format!("\"{}\"", format::ellipsis(&c.command, 20)),
                    c.service.clone(),
                    format::ago(c.created, now),
                    c.status.clone(),
                    ports_text(&c.ports),
                ]);
            }
            print!("{}", format::table(&rows));
            Ok(())
        }
        ComposeCmd::Logs(l) => {
            let p = project_name(&a)?;
            let o = LogOptions {
                services: l.services.clone(),
                follow: l.follow,
                tail: Some(l.tail.clone()),
                timestamps: l.timestamps,
                since: None,
                watch: false,
            };
            let color = use_color(&a, l.no_color);
            print_logs(&engine, &p.name, &o, color, !l.no_log_prefix, None).await
        }
        ComposeCmd::Build(b) => {
            let p = load(&a)?;
            let o = BuildOptions {
                no_cache: b.no_cache,
                pull: b.pull,
            };
            engine.build(&p, &b.services, &o, &r).await.map_err(op)
        }
        ComposeCmd::Pull(s) => {
            let p = load(&a)?;
            engine.pull(&p, &s.services, &r).await.map_err(op)
        }
        ComposeCmd::Push(s) => {
            let p = load(&a)?;
            engine.push(&p, &s.services, &r).await.map_err(op)
        }
        ComposeCmd::Start(s) => {
            let p = load(&a)?;
            engine.start(&p, &s.services, &r).await.map_err(op)
        }
        ComposeCmd::Stop(t) => {
            let p = load(&a)?;
            engine
                .stop(&p, &t.services, t.timeout, &r)
                .await
                .map_err(op)
        }
        ComposeCmd::Restart(t) => {
            let p = load(&a)?;
            engine
                .restart(&p, &t.services, t.timeout, &r)
                .await
                .map_err(op)
        }
        ComposeCmd::Rm(x) => {
            let p = load(&a)?;
            let list = engine
                .ps(
                    &p.name,
                    &PsOptions {
                        services: x.services.clone(),
                        all: true,
                    },
                )
                .await
                .map_err(op)?;
            let going: Vec<&str> = list
                .iter()
                .filter(|c| x.stop || c.state != "running")
                .map(|c| c.name.as_str())
                .collect();
            if going.is_empty() {
                eprintln!("No stopped containers");
                return Ok(());
            }
            if !x.force && !super::confirm(&format!("Going to remove {}", going.join(", "))) {
                return Ok(());
            }
            engine
                .rm(&p, &x.services, x.stop, x.volumes, &r)
                .await
                .map_err(op)?;
            Ok(())
        }
        ComposeCmd::Exec(x) => {
            let p = load(&a)?;
            let list = engine
                .ps(
                    &p.name,
                    &PsOptions {
                        services: vec![x.service.clone()],
                        all: false,
                    },
                )
                .await
                .map_err(op)?;
            let Some(target) = list.iter().find(|c| c.number == x.index) else {
                return Err(fail(format!(
                    "service {:?} is not running{}",
                    x.service,
                    if x.index > 1 {
                        format!(" container #{}", x.index)
                    } else {
                        String::new()
                    }
                )));
            };
            let tty = !x.no_tty && crate::tty::stdin_is_tty();
            let args = super::exec::ExecArgs {
                detach: x.detach,
                detach_keys: None,
                env: x.env.clone(),
                env_file: vec![],
                interactive: !x.detach,
                privileged: x.privileged,
                tty,
                user: x.user.clone(),
                workdir: x.workdir.clone(),
                container: target.name.clone(),
                cmd: x.cmd.clone(),
            };
            super::exec::exec(c, args).await
        }
        ComposeCmd::Run(x) => {
            let p = load(&a)?;
            let tty = !x.no_tty && !x.detach && crate::tty::stdin_is_tty();
            let o = ops::RunOptions {
                command: x.cmd.clone(),
                name: x.name.clone(),
                env: x.env.clone(),
                service_ports: x.service_ports,
                no_deps: x.no_deps,
                tty,
                interactive: !x.detach,
                rm: x.rm,
                detach: x.detach,
            };
            let name = engine
                .run_create(&p, &x.service, &o, &r)
                .await
                .map_err(op)?;
            if x.detach {
                c.docker
                    .start_container(
                        &name,
                        None::<bollard::query_parameters::StartContainerOptions>,
                    )
                    .await
                    .map_err(|e| c.err(e))?;
                println!("{name}");
                return Ok(());
            }
            let result = super::containers::start_attached(c, &name, true).await;
            if x.rm {
                let _ = c
                    .docker
                    .remove_container(
                        &name,
                        Some(bollard::query_parameters::RemoveContainerOptions {
                            force: true,
                            v: true,
                            link: false,
                        }),
                    )
                    .await;
            }
            result
        }
        ComposeCmd::Config(_) | ComposeCmd::Convert(_) => config(&a),
        ComposeCmd::Ls(l) => {
            let list = engine.ls(l.all).await.map_err(op)?;
            if l.quiet {
                for p in &list {
                    println!("{}", p.name);
                }
                return Ok(());
            }
            if l.format == ListFormat::Json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "Name": p.name,
                            "Status": p.status,
                            "ConfigFiles": p.config_files,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
                return Ok(());
            }
            let mut rows = vec![vec![
                "NAME".to_string(),
                "STATUS".into(),
                "CONFIG FILES".into(),
            ]];
            for p in &list {
                rows.push(vec![
                    p.name.clone(),
                    p.status.clone(),
                    p.config_files.clone(),
                ]);
            }
            print!("{}", format::tabwriter(&rows, 20, 3));
            Ok(())
        }
    }
}

/// `config`: the resolved model (no engine needed).
pub fn config(a: &ComposeArgs) -> Res<()> {
    if let ComposeCmd::Convert(c) = &a.command {
        return convert(a, c);
    }
    let ComposeCmd::Config(x) = &a.command else {
        return Ok(());
    };
    let p = load(a)?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    if x.quiet {
        return Ok(());
    }
    if x.services {
        for s in p.services.keys() {
            println!("{s}");
        }
        return Ok(());
    }
    if x.volumes {
        for v in p.volumes.keys() {
            println!("{v}");
        }
        return Ok(());
    }
    let text = match x.format {
        ConfigFormat::Yaml => serde_yaml::to_string(&berth_compose::render::render(&p))
            .map_err(|e| fail(e.to_string()))?,
        ConfigFormat::Json => {
            serde_json::to_string_pretty(&berth_compose::render::render(&p))
                .map_err(|e| fail(e.to_string()))?
                + "\n"
        }
    };
    print!("{text}");
    Ok(())
}

/// `convert`: docker compose's alias of `config`, plus `--format kubernetes`.
fn convert(a: &ComposeArgs, c: &ConvertArgs) -> Res<()> {
    let p = load(a)?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    let kube_only = c.output.is_some() || c.namespace.is_some();
    if kube_only && c.format != ConvertFormat::Kubernetes {
        return Err(fail(
            "-o and -n apply to --format kubernetes only: add --format kubernetes",
        ));
    }
    if c.quiet {
        return Ok(());
    }
    let text = match c.format {
        ConvertFormat::Kubernetes => {
            let opts = super::kube::generate_options(c.namespace.clone(), &c.gen);
            return super::kube::print_objects(&p, &opts, c.output.as_deref());
        }
        ConvertFormat::Yaml => serde_yaml::to_string(&berth_compose::render::render(&p))
            .map_err(|e| fail(e.to_string()))?,
        ConvertFormat::Json => {
            serde_json::to_string_pretty(&berth_compose::render::render(&p))
                .map_err(|e| fail(e.to_string()))?
                + "\n"
        }
    };
    print!("{text}");
    Ok(())
}

/// One `ps --format json` row, with docker compose's keys.
fn ps_json(project: &str, c: &ops::ServiceContainer, now: i64) -> serde_json::Value {
    let publishers: Vec<serde_json::Value> = c
        .ports
        .iter()
        .map(|p| {
            serde_json::json!({
                "URL": if p.host_port == 0 { "" } else if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() },
                "TargetPort": p.target,
                "PublishedPort": p.host_port,
                "Protocol": p.protocol,
            })
        })
        .collect();
    serde_json::json!({
        "ID": c.id,
        "Name": c.name,
        "Names": c.name,
        "Image": c.image,
        "Command": format!("\"{}\"", c.command),
        "Project": project,
        "Service": c.service,
        "Created": c.created,
        "CreatedAt": format::go_time(c.created),
        "RunningFor": format::ago(c.created, now),
        "State": c.state,
        "Status": c.status,
        "Health": c.health.clone().unwrap_or_default(),
        "ExitCode": c.exit_code,
        "Ports": ports_text(&c.ports),
        "Publishers": publishers,
    })
}

/// docker compose's PORTS column: `0.0.0.0:8080->80/tcp, 443/tcp`.
fn ports_text(ports: &[ops::PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| {
            if p.host_port == 0 {
                format!("{}/{}", p.target, p.protocol)
            } else {
                let ip = if p.host_ip.is_empty() {
                    "0.0.0.0"
                } else {
                    &p.host_ip
                };
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{ip}:{}->{}/{}", p.host_port, p.target, p.protocol)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Called when a container's log ends; `Some(code)` ends the printing with that exit code.
type OnEnd<'a> = Box<
    dyn FnMut(
            &ops::LogLine,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<i32>> + 'a>>
        + 'a,
>;

async fn print_logs(
    engine: &Compose,
    project: &str,
    o: &LogOptions,
    color: bool,
    prefix: bool,
    mut on_end: Option<OnEnd<'_>>,
) -> Res<()> {
    let list = engine
        .ps(
            project,
            &PsOptions {
                services: o.services.clone(),
                all: true,
            },
        )
        .await
        .map_err(op)?;
    let width = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut services: Vec<String> = list.iter().map(|c| c.service.clone()).collect();
    services.sort();
    services.dedup();
    let mut stream = engine.logs(project, o).await.map_err(op)?;
    while let Some(line) = stream.next().await {
        let line = line.map_err(op)?;
        if line.ended {
            if let Some(f) = on_end.as_mut() {
                if let Some(code) = f(&line).await {
                    return Err(Failure::Exit(code));
                }
            }
            continue;
        }
        let mut out = std::io::stdout().lock();
        let written = if prefix {
            let i = services
                .iter()
                .position(|s| *s == line.service)
                .unwrap_or(0);
            if color {
                writeln!(
                    out,
                    "\x1b[{}m{:<width$}  |\x1b[0m {}",
                    COLORS[i % COLORS.len()],
                    line.container,
                    line.text
                )
            } else {
                writeln!(out, "{:<width$}  | {}", line.container, line.text)
            }
        } else {
            writeln!(out, "{}", line.text)
        };
        if written.is_err() {
            // stdout closed (`| head`): stop quietly.
            return Ok(());
        }
    }
    Ok(())
}

struct Attached {
    services: Vec<String>,
    color: bool,
    timeout: Option<i64>,
    /// When `up` began: earlier log lines are history, not shown.
    since: i64,
    abort: bool,
    exit_code_from: Option<String>,
}

/// `up` without `-d`: follow the logs (printing `NAME exited with code N` as each container
/// stops) until every container has exited or Ctrl-C, which stops the project's containers
/// (a second Ctrl-C kills them). With --abort-on-container-exit the first exit stops the
/// rest; --exit-code-from SERVICE makes that service's code the command's.
async fn attached(c: &Ctx, engine: &Compose, p: &Project, att: &Attached, r: &Reporter) -> Res<()> {
    let services = &att.services;
    let list = engine
        .ps(
            &p.name,
            &PsOptions {
                services: services.clone(),
                all: true,
            },
        )
        .await
        .map_err(op)?;
    eprintln!(
        "Attaching to {}",
        list.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let o = LogOptions {
        services: services.clone(),
        follow: true,
        tail: None,
        timestamps: false,
        since: Some(att.since),
        watch: false,
    };
    let exit_from = att.exit_code_from.clone();
    let abort = att.abort;
    let on_end: OnEnd<'_> = Box::new(move |line: &ops::LogLine| {
        let name = line.container.clone();
        let service = line.service.clone();
        let exit_from = exit_from.clone();
        Box::pin(async move {
            let code = c
                .docker
                .inspect_container(
                    &name,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.exit_code)
                .unwrap_or(0);
            eprintln!("{name} exited with code {code}");
            if !abort {
                return None;
            }
            match &exit_from {
                Some(svc) if *svc == service => Some(i32::try_from(code).unwrap_or(1)),
                Some(_) => None,
                None => Some(i32::try_from(code).unwrap_or(1)),
            }
        })
    });
    let logs = print_logs(engine, &p.name, &o, att.color, true, Some(on_end));
    tokio::select! {
        res = logs => {
            if let Err(Failure::Exit(code)) = res {
                // --abort-on-container-exit: stop the rest, exit with that code.
                eprintln!("Aborting on container exit...");
                engine.stop(p, services, att.timeout, r).await.map_err(op)?;
                return if code == 0 { Ok(()) } else { Err(Failure::Exit(code)) };
            }
            if let Some(svc) = &att.exit_code_from {
                let list = engine.ps(&p.name, &PsOptions { services: vec![svc.clone()], all: true }).await.map_err(op)?;
                let code = list.first().map(|c| c.exit_code).unwrap_or(0);
                return if code == 0 { Ok(()) } else { Err(Failure::Exit(i32::try_from(code).unwrap_or(1))) };
            }
            res
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            tokio::select! {
                res = engine.stop(p, services, att.timeout, r) => res.map_err(op),
                _ = tokio::signal::ctrl_c() => {
                    let list = engine.ps(&p.name, &PsOptions { services: services.clone(), all: false }).await.map_err(op)?;
                    for c in list {
                        let _ = engine.docker().kill_container(&c.id, None::<bollard::query_parameters::KillContainerOptions>).await;
                    }
                    Err(Failure::Exit(130))
                }
            }
        }
    }
}
