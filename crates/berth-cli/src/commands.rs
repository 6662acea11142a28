//! The commands: each talks to the engine through bollard and prints docker's output shapes.

use std::collections::HashMap;
use std::io::Write;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, HostConfig, NetworkCreateRequest, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, KillContainerOptions,
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions, LogsOptions,
    RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions, RestartContainerOptions,
    StopContainerOptions, TagImageOptions, WaitContainerOptions,
};
use bollard::{ClientVersion, Docker};
use clap::{Args, Subcommand};
use futures_util::StreamExt;

use crate::format::{ago, ellipsis, go_quote, human_size, now_unix, short_id, table};
use crate::Command;

/// Why a command failed, printed as one line on stderr.
#[derive(Debug)]
pub enum Failure {
    /// The engine answered with an error.
    Daemon(String),
    /// The engine could not be reached.
    Connect(String),
    /// Bad input or another client-side error (exit 125 unless `code` says otherwise).
    Usage(String),
    /// A quiet exit with this code (the container's, or docker's 126/127).
    Exit(i32),
}

type Res<T> = Result<T, Failure>;

struct Ctx {
    docker: Docker,
    host: String,
}

impl Ctx {
    /// Map a bollard error: engine answers keep their message, the rest means the engine
    /// was not reachable (the innermost cause says why).
    fn err(&self, e: BollardError) -> Failure {
        match e {
            BollardError::DockerResponseServerError { message, .. } => Failure::Daemon(message),
            BollardError::DockerStreamError { error } => Failure::Daemon(error),
            BollardError::JsonDataError { message, .. } => {
                Failure::Usage(format!("unexpected answer from the engine: {message}"))
            }
            other => Failure::Connect(connect_message(&self.host, &other)),
        }
    }
}

fn connect_message(host: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut why: &dyn std::error::Error = e;
    while let Some(src) = why.source() {
        why = src;
    }
    let why = match e.downcast_ref::<BollardError>() {
        Some(BollardError::SocketNotFoundError(p)) => format!("no socket at {p}"),
        _ => why.to_string(),
    };
    format!(
        "Cannot connect to the Berth engine at {host}: {why}. Is berthd running? \
         Start it with: sudo bash .ci/berth"
    )
}

/// Run one command against `host`; the process exit code.
pub async fn run(host: &str, cmd: Command) -> i32 {
    let result = match connect(host) {
        Ok(ctx) => dispatch(&ctx, cmd).await,
        Err(f) => Err(f),
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => 0,
        Err(Failure::Exit(code)) => code,
        Err(Failure::Daemon(m)) => {
            eprintln!("Error response from daemon: {m}");
            125
        }
        Err(Failure::Connect(m)) | Err(Failure::Usage(m)) => {
            eprintln!("{m}");
            125
        }
    }
}

fn connect(host: &str) -> Res<Ctx> {
    let Some(path) = host.strip_prefix("unix://") else {
        return Err(Failure::Usage(format!(
            "unsupported engine host {host:?}: berth talks to berthd on a unix socket; \
             pass -H unix:///path/to/berth.sock"
        )));
    };
    let version = ClientVersion {
        major_version: 1,
        minor_version: 45,
    };
    match Docker::connect_with_unix(path, 120, &version) {
        Ok(docker) => Ok(Ctx {
            docker,
            host: host.to_string(),
        }),
        Err(e) => Err(Failure::Connect(connect_message(host, &e))),
    }
}

async fn dispatch(c: &Ctx, cmd: Command) -> Res<()> {
    match cmd {
        Command::Ps(a) => ps(c, a).await,
        Command::Images(a) => images(c, a).await,
        Command::Run(a) => run_container(c, *a).await,
        Command::Start { containers } => {
            each(&containers, |id| async move {
                c.docker
                    .start_container(&id, None)
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
        }
        Command::Stop(a) => {
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
        Command::Restart(a) => {
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
        Command::Kill(a) => {
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
        Command::Rm(a) => {
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
        Command::Rmi(a) => rmi(c, a).await,
        Command::Logs(a) => logs(c, a).await,
        Command::Pull { image } => pull(c, &image, false).await,
        Command::Tag { source, target } => {
            let (repo, tag) = split_ref(&target);
            let o = TagImageOptions {
                repo: Some(repo),
                tag: Some(tag),
            };
            c.docker
                .tag_image(&source, Some(o))
                .await
                .map_err(|e| c.err(e))
        }
        Command::Volume(v) => volume(c, v).await,
        Command::Network(n) => network(c, n).await,
        Command::Version => version(c).await,
        Command::Info => info(c).await,
    }
}

/// docker's multi-target commands: act on each, print each name that worked, report each
/// failure on stderr and fail at the end if any did.
async fn each<F, Fut>(targets: &[String], f: F) -> Res<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Res<()>>,
{
    let mut failed = None;
    for t in targets {
        match f(t.clone()).await {
            Ok(()) => println!("{t}"),
            Err(Failure::Connect(m)) => return Err(Failure::Connect(m)),
            Err(Failure::Daemon(m)) => {
                eprintln!("Error response from daemon: {m}");
                failed = Some(1);
            }
            Err(Failure::Usage(m)) => {
                eprintln!("{m}");
                failed = Some(1);
            }
            Err(Failure::Exit(code)) => failed = Some(code),
        }
    }
    match failed {
        Some(_) => Err(Failure::Exit(1)),
        None => Ok(()),
    }
}

// ---- ps ----

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<i32>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
}

fn parse_filters(raw: &[String]) -> Res<Option<HashMap<String, Vec<String>>>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for f in raw {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Failure::Usage(format!(
                "bad filter {f:?}: expected key=value, e.g. --filter status=running"
            )));
        };
        m.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(Some(m))
}

async fn ps(c: &Ctx, a: PsArgs) -> Res<()> {
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let o = ListContainersOptions {
        all: a.all || limit.is_some(),
        limit,
        size: false,
        filters: parse_filters(&a.filter)?,
    };
    let list = c
        .docker
        .list_containers(Some(o))
        .await
        .map_err(|e| c.err(e))?;
    if a.quiet {
        for s in &list {
            let id = s.id.clone().unwrap_or_default();
            println!("{}", if a.no_trunc { id } else { short_id(&id) });
        }
        return Ok(());
    }
    let now = now_unix();
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for s in &list {
        rows.push(ps_row(s, !a.no_trunc, now));
    }
    print!("{}", table(&rows));
    Ok(())
}

fn ps_row(s: &ContainerSummary, trunc: bool, now: i64) -> Vec<String> {
    let id = s.id.clone().unwrap_or_default();
    let mut image = s.image.clone().unwrap_or_default();
    if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    }
    let command = s.command.clone().unwrap_or_default();
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let names: Vec<String> = s
        .names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/').to_string())
        // Link aliases ("/other/alias") are shown only with --no-trunc, as docker does.
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    vec![
        if trunc { short_id(&id) } else { id },
        image,
        command,
        ago(s.created.unwrap_or(0), now),
        s.status.clone().unwrap_or_default(),
        ports(s),
        names.join(","),
    ]
}

/// "0.0.0.0:8080->80/tcp, 443/tcp" (published first by host address, then exposed-only).
fn ports(s: &ContainerSummary) -> String {
    let mut items: Vec<(u8, String, u16, u16, String)> = s
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
            let ip = p.ip.clone().unwrap_or_default();
            match p.public_port {
                Some(public) if public != 0 => (0, ip, public, p.private_port, proto),
                _ => (1, String::new(), 0, p.private_port, proto),
            }
        })
        .collect();
    items.sort();
    items.dedup();
    items
        .into_iter()
        .map(|(published, ip, public, private, proto)| {
            if published == 0 {
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip
                };
                format!("{host}:{public}->{private}/{proto}")
            } else {
                format!("{private}/{proto}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- images ----

#[derive(Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

async fn images(c: &Ctx, a: ImagesArgs) -> Res<()> {
    let o = ListImagesOptions {
        all: a.all,
        ..Default::default()
    };
    let list = c.docker.list_images(Some(o)).await.map_err(|e| c.err(e))?;
    let now = now_unix();
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
    for img in &list {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            short_id(&img.id)
        };
        let mut refs: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| split_ref(t))
            .collect();
        if refs.is_empty() {
            // Untagged: the repository from a digest if there is one, as docker shows it.
            let repo = img
                .repo_digests
                .iter()
                .find_map(|d| d.split_once('@').map(|(r, _)| r.to_string()))
                .filter(|r| r != "<none>")
                .unwrap_or_else(|| "<none>".into());
            refs.push((repo, "<none>".into()));
        }
        for (repo, tag) in refs {
            if a.quiet {
                println!("{id}");
                continue;
            }
            rows.push(vec![
                repo,
                tag,
                id.clone(),
                ago(img.created, now),
                human_size(img.size),
            ]);
        }
    }
    if !a.quiet {
        print!("{}", table(&rows));
    }
    Ok(())
}

/// "repo:tag" → (repo, tag); the tag defaults to "latest"; a registry port is not a tag.
fn split_ref(r: &str) -> (String, String) {
    let r = r.split('@').next().unwrap_or(r);
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

// ---- run ----

#[derive(Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Publish a container's port(s) to the host ([ip:]hostPort:containerPort[/proto])
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this environment)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Bind mount a volume (src:dst[:opts])
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Connect a container to a network
    #[arg(long)]
    pub network: Option<String>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long)]
    pub restart: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container (key=value)
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// The image to run
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

fn usage(m: String) -> Failure {
    Failure::Usage(m)
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

fn parse_env(raw: &[String]) -> Vec<String> {
    raw.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                // docker: a bare KEY takes this environment's value, or is dropped.
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn parse_labels(raw: &[String]) -> HashMap<String, String> {
    raw.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
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

async fn run_container(c: &Ctx, a: RunArgs) -> Res<()> {
    let port_bindings = parse_publish(&a.publish)?;
    let restart_policy = a.restart.as_deref().map(parse_restart).transpose()?;
    if a.rm
        && restart_policy
            .as_ref()
            .is_some_and(|p| p.name != Some(RestartPolicyNameEnum::NO))
    {
        return Err(usage(
            "conflicting options: --restart and --rm: drop one of them".into(),
        ));
    }
    let exposed: Vec<String> = port_bindings.keys().cloned().collect();
    // `-v /path` is an anonymous volume; `-v src:dst[:opts]` a bind or named volume.
    let (binds, anonymous): (Vec<String>, Vec<String>) =
        a.volume.iter().cloned().partition(|v| v.contains(':'));
    let body = ContainerCreateBody {
        image: Some(a.image.clone()),
        cmd: (!a.cmd.is_empty()).then(|| a.cmd.clone()),
        entrypoint: a.entrypoint.as_ref().map(|e| vec![e.clone()]),
        env: (!a.env.is_empty()).then(|| parse_env(&a.env)),
        working_dir: a.workdir.clone(),
        volumes: (!anonymous.is_empty()).then_some(anonymous),
        user: a.user.clone(),
        labels: (!a.label.is_empty()).then(|| parse_labels(&a.label)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        host_config: Some(HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            network_mode: a.network.clone(),
            restart_policy,
            // Attached runs remove the container themselves once its exit code is read.
            auto_remove: Some(a.rm && a.detach),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = || CreateContainerOptions {
        name: a.name.clone(),
        platform: String::new(),
    };
    let id = match c.docker.create_container(Some(opts()), body.clone()).await {
        Ok(r) => r.id,
        Err(BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        }) if message.to_lowercase().contains("no such image") => {
            eprintln!("Unable to find image '{}' locally", a.image);
            pull(c, &a.image, true).await?;
            c.docker
                .create_container(Some(opts()), body)
                .await
                .map_err(|e| c.err(e))?
                .id
        }
        Err(e) => return Err(c.err(e)),
    };

    if a.detach {
        if let Err(e) = c.docker.start_container(&id, None).await {
            return Err(start_failure(c, e));
        }
        println!("{id}");
        return Ok(());
    }

    let attach = AttachContainerOptions {
        stream: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let output = c
        .docker
        .attach_container(&id, Some(attach))
        .await
        .map_err(|e| c.err(e))?
        .output;
    if let Err(e) = c.docker.start_container(&id, None).await {
        let f = start_failure(c, e);
        if a.rm {
            remove_quietly(c, &id).await;
        }
        return Err(f);
    }
    forward_signals(c, &id, output).await?;
    let code = wait_exit(c, &id).await;
    if a.rm {
        remove_quietly(c, &id).await;
    }
    match code? {
        0 => Ok(()),
        n => Err(Failure::Exit(n)),
    }
}

/// Copy the container's output until it ends, passing SIGINT and SIGTERM sent to berth on
/// to the container (docker's sig-proxy), so Ctrl-C stops what it runs and `--rm` still
/// cleans up.
async fn forward_signals<S>(c: &Ctx, id: &str, mut output: S) -> Res<()>
where
    S: futures_util::Stream<Item = Result<bollard::container::LogOutput, BollardError>> + Unpin,
{
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Failure::Usage(format!("cannot watch SIGINT: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Failure::Usage(format!("cannot watch SIGTERM: {e}")))?;
    loop {
        let sig = tokio::select! {
            item = output.next() => match item {
                Some(Ok(out)) => {
                    write_log(out);
                    continue;
                }
                Some(Err(e)) => return Err(c.err(e)),
                None => return Ok(()),
            },
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let o = KillContainerOptions {
            signal: sig.to_string(),
        };
        if let Err(e) = c.docker.kill_container(id, Some(o)).await {
            eprintln!(
                "berth: could not pass {sig} to {}: {}",
                short_id(id),
                describe(c, e)
            );
        }
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

fn describe(c: &Ctx, e: BollardError) -> String {
    match c.err(e) {
        Failure::Daemon(m) | Failure::Connect(m) | Failure::Usage(m) => m,
        Failure::Exit(n) => format!("exit {n}"),
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

fn write_log(out: bollard::container::LogOutput) {
    use bollard::container::LogOutput;
    match out {
        LogOutput::StdErr { message } => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&message);
            let _ = e.flush();
        }
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&message);
            let _ = o.flush();
        }
        LogOutput::StdIn { .. } => {}
    }
}

// ---- pull ----

/// Pull `image` printing docker's plain progress: one line per status change, per-byte
/// progress left out (a terminal progress display is a later step).
async fn pull(c: &Ctx, image: &str, quiet_tag_default: bool) -> Res<()> {
    let (repo, tag) = split_ref(image);
    let (from, tag) = match image.split_once('@') {
        Some(_) => (image.to_string(), String::new()),
        None => (repo.clone(), tag),
    };
    let last = image.rsplit('/').next().unwrap_or(image);
    if !quiet_tag_default && !last.contains(':') && !last.contains('@') {
        println!("Using default tag: latest");
    }
    let o = CreateImageOptions {
        from_image: Some(from),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut s = c.docker.create_image(Some(o), None, None);
    let mut out = std::io::stdout();
    while let Some(item) = s.next().await {
        let info = item.map_err(|e| c.err(e))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Failure::Daemon(err));
        }
        let Some(status) = info.status else { continue };
        let moving = info
            .progress_detail
            .as_ref()
            .is_some_and(|p| p.current.is_some() || p.total.is_some());
        if moving {
            continue;
        }
        let line = match info.id.filter(|i| !i.is_empty()) {
            Some(id) => format!("{id}: {status}"),
            None => status,
        };
        // In `run`, pull progress goes to stderr so stdout carries only the container's output.
        if quiet_tag_default {
            eprintln!("{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    if !quiet_tag_default {
        println!("{}", canonical_ref(image));
    }
    Ok(())
}

/// docker's full name for a reference: registry (docker.io by default), `library/` for
/// official images, and `:latest` when neither tag nor digest is given.
fn canonical_ref(image: &str) -> String {
    let (first, rest) = image.split_once('/').unwrap_or(("", image));
    let has_domain =
        !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        image.to_string()
    } else if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else {
        format!("docker.io/{image}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && !last.contains('@') {
        full.push_str(":latest");
    }
    full
}

// ---- stop / kill / rm / rmi / logs ----

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
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

async fn rmi(c: &Ctx, a: RmiArgs) -> Res<()> {
    let mut failed = false;
    for img in &a.images {
        let o = RemoveImageOptions {
            force: a.force,
            ..Default::default()
        };
        match c.docker.remove_image(img, Some(o), None).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => match c.err(e) {
                Failure::Daemon(m) => {
                    eprintln!("Error response from daemon: {m}");
                    failed = true;
                }
                other => return Err(other),
            },
        }
    }
    if failed {
        Err(Failure::Exit(1))
    } else {
        Ok(())
    }
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
    pub container: String,
}

async fn logs(c: &Ctx, a: LogsArgs) -> Res<()> {
    if a.tail != "all" && a.tail.parse::<u64>().is_err() {
        return Err(usage(format!(
            "invalid --tail {:?}: expected a number of lines or \"all\"",
            a.tail
        )));
    }
    let o = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        timestamps: a.timestamps,
        tail: a.tail,
        ..Default::default()
    };
    let mut s = c.docker.logs(&a.container, Some(o));
    while let Some(item) = s.next().await {
        write_log(item.map_err(|e| c.err(e))?);
    }
    Ok(())
}

// ---- volume / network ----

#[derive(Subcommand)]
pub enum VolumeCmd {
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a volume
    Create {
        /// Volume driver name
        #[arg(short, long, default_value = "local")]
        driver: String,
        name: Option<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
}

async fn volume(c: &Ctx, v: VolumeCmd) -> Res<()> {
    match v {
        VolumeCmd::Ls { quiet } => {
            let r = c
                .docker
                .list_volumes(None::<ListVolumesOptions>)
                .await
                .map_err(|e| c.err(e))?;
            let mut vols = r.volumes.unwrap_or_default();
            vols.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                vols.iter().for_each(|v| println!("{}", v.name));
                return Ok(());
            }
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            rows.extend(vols.into_iter().map(|v| vec![v.driver, v.name]));
            print!("{}", table(&rows));
            Ok(())
        }
        VolumeCmd::Create { driver, name } => {
            let req = VolumeCreateRequest {
                name,
                driver: Some(driver),
                ..Default::default()
            };
            let v = c.docker.create_volume(req).await.map_err(|e| c.err(e))?;
            println!("{}", v.name);
            Ok(())
        }
        VolumeCmd::Rm { force, volumes } => {
            each(&volumes, |name| async move {
                let o = RemoveVolumeOptions { force };
                c.docker
                    .remove_volume(&name, Some(o))
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
        }
    }
}

#[derive(Subcommand)]
pub enum NetworkCmd {
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Don't truncate output
        #[arg(long)]
        no_trunc: bool,
    },
    /// Create a network
    Create {
        /// Driver to manage the network
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        name: String,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

async fn network(c: &Ctx, n: NetworkCmd) -> Res<()> {
    match n {
        NetworkCmd::Ls { quiet, no_trunc } => {
            let mut nets = c
                .docker
                .list_networks(None::<ListNetworksOptions>)
                .await
                .map_err(|e| c.err(e))?;
            nets.sort_by(|a, b| a.name.cmp(&b.name));
            let id = |i: &Option<String>| {
                let i = i.clone().unwrap_or_default();
                if no_trunc {
                    i
                } else {
                    short_id(&i)
                }
            };
            if quiet {
                nets.iter().for_each(|n| println!("{}", id(&n.id)));
                return Ok(());
            }
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                .map(String::from)
                .to_vec()];
            for n in &nets {
                rows.push(vec![
                    id(&n.id),
                    n.name.clone().unwrap_or_default(),
                    n.driver.clone().unwrap_or_default(),
                    n.scope.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", table(&rows));
            Ok(())
        }
        NetworkCmd::Create {
            driver,
            internal,
            name,
        } => {
            let req = NetworkCreateRequest {
                name,
                driver: Some(driver),
                internal: Some(internal),
                ..Default::default()
            };
            let r = c.docker.create_network(req).await.map_err(|e| c.err(e))?;
            println!("{}", r.id);
            Ok(())
        }
        NetworkCmd::Rm { networks } => {
            each(&networks, |name| async move {
                c.docker.remove_network(&name).await.map_err(|e| c.err(e))
            })
            .await
        }
    }
}

// ---- version / info ----

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
    fn refs_and_filters() {
        assert_eq!(split_ref("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(split_ref("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(
            split_ref("localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
        let f = parse_filters(&["status=exited".into(), "status=created".into()])
            .unwrap()
            .unwrap();
        assert_eq!(f["status"], ["exited", "created"]);
        assert!(parse_filters(&["status".into()]).is_err());
    }

    #[test]
    fn canonical_refs() {
        assert_eq!(canonical_ref("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(canonical_ref("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            canonical_ref("127.0.0.1:5000/t/b"),
            "127.0.0.1:5000/t/b:latest"
        );
        assert_eq!(
            canonical_ref("localhost/b@sha256:ab"),
            "localhost/b@sha256:ab"
        );
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
    fn ports_column() {
        use bollard::models::{PortSummary, PortSummaryTypeEnum};
        let s = ContainerSummary {
            ports: Some(vec![
                PortSummary {
                    ip: None,
                    private_port: 443,
                    public_port: None,
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
                PortSummary {
                    ip: Some("0.0.0.0".into()),
                    private_port: 80,
                    public_port: Some(8080),
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
            ]),
            ..Default::default()
        };
        assert_eq!(ports(&s), "0.0.0.0:8080->80/tcp, 443/tcp");
    }
}
