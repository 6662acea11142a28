//! Container commands: ps, run, start/stop/restart/kill/rm, logs.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::*;
use bollard::query_parameters::*;
use clap::{Args, Subcommand};
use futures_util::StreamExt;

use super::images::pull;
use super::ps::{ps, PsArgs};
use super::{describe, each, usage, write_log, Ctx, Failure, Res};
use crate::format::short_id;

/// Container commands docker has at the top level (and under `container`).
#[derive(Subcommand)]
pub enum ContainerCmd {
    /// List containers
    Ps(PsArgs),
    /// Create and run a container from an image
    Run(Box<RunArgs>),
    /// Start one or more stopped containers
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
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
        ContainerCmd::Start { containers } => {
            each(&containers, |id| async move {
                c.docker
                    .start_container(&id, None)
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
        }
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

/// Pull `image` printing docker's plain progress: one line per status change, per-byte

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
}
