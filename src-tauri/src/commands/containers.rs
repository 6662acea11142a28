//! Containers: list, actions, inspect, run, logs and stats.

use super::{engine_err, nonempty};
use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{
    ContainerAction, ContainerDetails, ContainerRow, LogChunk, LogOptions, MountInfo,
    NetworkAttachment, PortBinding, RunRequest, StatsSample,
};
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerStatsResponse, ContainerSummary, HostConfig, PortSummary,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters as q;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tauri::ipc::Channel;
use tauri::State;

pub(crate) fn row(c: ContainerSummary) -> ContainerRow {
    let labels: BTreeMap<String, String> = c.labels.unwrap_or_default().into_iter().collect();
    let mut ports: Vec<PortBinding> = c.ports.unwrap_or_default().into_iter().map(port).collect();
    ports.sort_by_key(|p| (p.container_port, p.host_port));
    ports.dedup_by(|a, b| {
        a.container_port == b.container_port
            && a.host_port == b.host_port
            && a.protocol == b.protocol
    });
    let mut networks: Vec<String> = c
        .network_settings
        .and_then(|n| n.networks)
        .map(|m| m.into_keys().collect())
        .unwrap_or_default();
    networks.sort();
    ContainerRow {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: c.image.unwrap_or_default(),
        image_id: c.image_id.unwrap_or_default(),
        command: c.command.unwrap_or_default(),
        created: c.created.unwrap_or(0),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        status: c.status.unwrap_or_default(),
        ports,
        project: labels.get("com.docker.compose.project").cloned(),
        service: labels.get("com.docker.compose.service").cloned(),
        labels,
        networks,
    }
}

fn port(p: PortSummary) -> PortBinding {
    PortBinding {
        host_ip: p.ip.unwrap_or_default(),
        host_port: p.public_port,
        container_port: p.private_port,
        protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
    }
}

/// Every container (`all=true`), as the list shows them.
pub(crate) async fn list_rows(
    docker: &bollard::Docker,
) -> Result<Vec<ContainerRow>, bollard::errors::Error> {
    let opts = q::ListContainersOptions {
        all: true,
        ..Default::default()
    };
    let list = docker.list_containers(Some(opts)).await?;
    Ok(list.into_iter().map(row).collect())
}

#[tauri::command]
pub async fn containers_list(app: State<'_, App>) -> Res<Vec<ContainerRow>> {
    let t0 = std::time::Instant::now();
    let rows = list_rows(&app.engine.docker()?)
        .await
        .map_err(engine_err(&app))?;
    tracing::debug!(
        containers = rows.len(),
        ms = t0.elapsed().as_secs_f64() * 1000.0,
        "containers_list"
    );
    Ok(rows)
}

#[tauri::command]
pub async fn container_action(app: State<'_, App>, id: String, action: ContainerAction) -> Res<()> {
    nonempty(&id, "The container")?;
    let d = app.engine.docker()?;
    let r = match action {
        ContainerAction::Start => {
            d.start_container(&id, None::<q::StartContainerOptions>)
                .await
        }
        ContainerAction::Stop => d.stop_container(&id, None::<q::StopContainerOptions>).await,
        ContainerAction::Restart => {
            d.restart_container(&id, None::<q::RestartContainerOptions>)
                .await
        }
        ContainerAction::Pause => d.pause_container(&id).await,
        ContainerAction::Unpause => d.unpause_container(&id).await,
        ContainerAction::Kill => d.kill_container(&id, None::<q::KillContainerOptions>).await,
    };
    r.map_err(engine_err(&app))
}

#[tauri::command]
pub async fn container_remove(
    app: State<'_, App>,
    id: String,
    force: bool,
    volumes: bool,
) -> Res<()> {
    nonempty(&id, "The container")?;
    let opts = q::RemoveContainerOptions {
        force,
        v: volumes,
        link: false,
    };
    app.engine
        .docker()?
        .remove_container(&id, Some(opts))
        .await
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn container_inspect(app: State<'_, App>, id: String) -> Res<ContainerDetails> {
    nonempty(&id, "The container")?;
    let raw = crate::api::get(&app, &format!("/v1.45/containers/{}/json", urlencode(&id))).await?;
    let c: bollard::models::ContainerInspectResponse = serde_json::from_str(&raw)
        .map_err(|e| error::system(format!("the engine's inspect JSON did not parse: {e}")))?;
    let state = c.state.clone().unwrap_or_default();
    let cfg = c.config.clone().unwrap_or_default();
    let host = c.host_config.clone().unwrap_or_default();
    let net = c.network_settings.clone().unwrap_or_default();
    let mut ports = Vec::new();
    for (k, v) in net.ports.clone().unwrap_or_default() {
        let (p, proto) = k.split_once('/').unwrap_or((&k, "tcp"));
        let container_port = p.parse().unwrap_or(0);
        match v {
            Some(bs) if !bs.is_empty() => {
                for b in bs {
                    ports.push(PortBinding {
                        host_ip: b.host_ip.unwrap_or_default(),
                        host_port: b.host_port.and_then(|h| h.parse().ok()),
                        container_port,
                        protocol: proto.into(),
                    })
                }
            }
            _ => ports.push(PortBinding {
                host_ip: String::new(),
                host_port: None,
                container_port,
                protocol: proto.into(),
            }),
        }
    }
    ports.sort_by_key(|p| (p.container_port, p.host_port));
    let restart = host
        .restart_policy
        .and_then(|r| r.name)
        .map(|n| n.to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "no".into());
    Ok(ContainerDetails {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: cfg.image.clone().unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        state: state.status.map(|s| s.to_string()).unwrap_or_default(),
        status: String::new(),
        exit_code: state.exit_code.unwrap_or(0) as i32,
        created: c.created.map(|d| d.to_string()).unwrap_or_default(),
        started_at: state.started_at.unwrap_or_default(),
        finished_at: state.finished_at.unwrap_or_default(),
        path: c.path.unwrap_or_default(),
        args: c.args.unwrap_or_default(),
        entrypoint: cfg.entrypoint.unwrap_or_default(),
        cmd: cfg.cmd.unwrap_or_default(),
        env: cfg.env.unwrap_or_default(),
        working_dir: cfg.working_dir.unwrap_or_default(),
        user: cfg.user.unwrap_or_default(),
        hostname: cfg.hostname.unwrap_or_default(),
        tty: cfg.tty.unwrap_or(false),
        restart_policy: restart,
        ports,
        mounts: c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| MountInfo {
                kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
                source: m
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or(m.source)
                    .unwrap_or_default(),
                destination: m.destination.unwrap_or_default(),
                read_only: !m.rw.unwrap_or(true),
            })
            .collect(),
        networks: net
            .networks
            .unwrap_or_default()
            .into_iter()
            .map(|(name, e)| NetworkAttachment {
                network: name,
                ip_address: e.ip_address.unwrap_or_default(),
                gateway: e.gateway.unwrap_or_default(),
                mac_address: e.mac_address.unwrap_or_default(),
                aliases: e.aliases.unwrap_or_default(),
            })
            .collect(),
        labels: cfg.labels.unwrap_or_default().into_iter().collect(),
        raw,
    })
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Splits a command line like a POSIX shell does for words: quotes and backslashes, no
/// expansion.
pub fn split_command(s: &str) -> Res<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => {
                            return Err(error::invalid("The command has an unterminated ' quote"))
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x)
                            }
                            None => {
                                return Err(error::invalid(
                                    "The command has an unterminated \" quote",
                                ))
                            }
                        },
                        Some(x) => cur.push(x),
                        None => {
                            return Err(error::invalid("The command has an unterminated \" quote"))
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The create body for a Run request (validated: names a bad field and how to fix it).
pub fn create_body(req: &RunRequest) -> Res<ContainerCreateBody> {
    nonempty(&req.image, "The image")?;
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<bollard::models::PortBinding>>> = HashMap::new();
    for p in &req.ports {
        if p.container_port == 0 {
            return Err(error::invalid(
                "A port row has no container port: give the port the app listens on (e.g. 80)",
            ));
        }
        let proto = match p.protocol.as_str() {
            "" | "tcp" => "tcp",
            "udp" => "udp",
            other => {
                return Err(error::invalid(format!(
                    "Port protocol \"{other}\": use tcp or udp"
                )))
            }
        };
        let key = format!("{}/{proto}", p.container_port);
        exposed.push(key.clone());
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(bollard::models::PortBinding {
                host_ip: Some(p.host_ip.clone()).filter(|s| !s.is_empty()),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }
    let mut binds = Vec::new();
    let mut anon = Vec::new();
    for v in &req.volumes {
        if !v.target.starts_with('/') {
            return Err(error::invalid(format!(
                "Volume target \"{}\" must be an absolute path in the container (e.g. /data)",
                v.target
            )));
        }
        if v.source.is_empty() {
            anon.push(v.target.clone());
        } else {
            if v.source.contains(':') {
                return Err(error::invalid(format!(
                    "Volume source \"{}\" cannot contain ':'",
                    v.source
                )));
            }
            binds.push(format!(
                "{}:{}{}",
                v.source,
                v.target,
                if v.read_only { ":ro" } else { "" }
            ));
        }
    }
    for e in &req.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(error::invalid(format!(
                "Environment entry \"{e}\": write it as KEY=value"
            )));
        }
    }
    let restart = match req.restart.as_str() {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => {
            return Err(error::invalid(format!(
                "Restart policy \"{other}\": use no, always, unless-stopped or on-failure"
            )))
        }
    };
    if req.auto_remove && restart != RestartPolicyNameEnum::NO {
        return Err(error::invalid(
            "Auto-remove and a restart policy cannot be combined: pick one",
        ));
    }
    let cmd = split_command(&req.command)?;
    Ok(ContainerCreateBody {
        image: Some(req.image.trim().to_string()),
        cmd: (!cmd.is_empty()).then_some(cmd),
        env: (!req.env.is_empty()).then(|| req.env.clone()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        volumes: (!anon.is_empty()).then_some(anon),
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            binds: (!binds.is_empty()).then_some(binds),
            network_mode: Some(req.network.clone()).filter(|n| !n.is_empty()),
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            auto_remove: Some(req.auto_remove),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[tauri::command]
pub async fn container_run(app: State<'_, App>, req: RunRequest) -> Res<String> {
    let body = create_body(&req)?;
    let d = app.engine.docker()?;
    let opts = || q::CreateContainerOptions {
        name: Some(req.name.trim().to_string()).filter(|n| !n.is_empty()),
        platform: String::new(),
    };
    let created = match d.create_container(Some(opts()), body.clone()).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        }) if message.to_ascii_lowercase().contains("no such image") => {
            // As `docker run`: pull a missing image, then create.
            let mut s = super::images::pull_stream(&d, &req.image);
            while let Some(item) = s.next().await {
                item.map_err(engine_err(&app))?;
            }
            d.create_container(Some(opts()), body).await
        }
        other => other,
    }
    .map_err(engine_err(&app))?;
    if let Err(e) = d
        .start_container(&created.id, None::<q::StartContainerOptions>)
        .await
    {
        // Nothing half-done: a container that cannot start is removed again.
        let _ = d
            .remove_container(
                &created.id,
                Some(q::RemoveContainerOptions {
                    force: true,
                    v: true,
                    link: false,
                }),
            )
            .await;
        return Err(engine_err(&app)(e));
    }
    Ok(created.id)
}

/// Splits log output into lines, keeping a partial last line for the next chunk.
#[derive(Default)]
struct LineSplitter {
    partial: HashMap<&'static str, String>,
}

impl LineSplitter {
    fn push(
        &mut self,
        stream: &'static str,
        bytes: &[u8],
        timestamps: bool,
        out: &mut Vec<LogChunk>,
    ) {
        let buf = self.partial.entry(stream).or_default();
        buf.push_str(&String::from_utf8_lossy(bytes));
        while let Some(i) = buf.find('\n') {
            let mut line: String = buf.drain(..=i).collect();
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
            out.push(chunk(stream, line, timestamps));
        }
    }

    fn flush(&mut self, timestamps: bool, out: &mut Vec<LogChunk>) {
        for (stream, buf) in self.partial.iter_mut() {
            if !buf.is_empty() {
                out.push(chunk(stream, std::mem::take(buf), timestamps));
            }
        }
    }
}

fn chunk(stream: &str, line: String, timestamps: bool) -> LogChunk {
    if timestamps {
        if let Some((ts, rest)) = line.split_once(' ') {
            if ts.len() >= 20 && ts.as_bytes()[4] == b'-' {
                return LogChunk {
                    stream: stream.into(),
                    line: rest.to_string(),
                    timestamp: Some(ts.to_string()),
                };
            }
        }
    }
    LogChunk {
        stream: stream.into(),
        line,
        timestamp: None,
    }
}

/// Streams a container's log in batches (every 50 ms at most, or 500 lines).
#[tauri::command]
pub fn container_logs(
    app: State<'_, App>,
    id: String,
    opts: LogOptions,
    channel: Channel<Vec<LogChunk>>,
) -> Res<u32> {
    nonempty(&id, "The container")?;
    let d = app.engine.docker()?;
    let host = app.engine.host().to_string();
    let sid = app.streams.id();
    app.streams.spawn(sid, async move {
        let mut stream = d.logs(
            &id,
            Some(q::LogsOptions {
                follow: opts.follow,
                stdout: true,
                stderr: true,
                timestamps: opts.timestamps,
                tail: opts
                    .tail
                    .map_or_else(|| "all".to_string(), |n| n.to_string()),
                ..Default::default()
            }),
        );
        let mut split = LineSplitter::default();
        let mut batch: Vec<LogChunk> = Vec::new();
        // When the oldest line of `batch` is due on the page: a steady trickle of lines still
        // reaches it every 50 ms, not only after a pause or 500 lines.
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let next = match due {
                Some(t) => tokio::time::timeout_at(t, stream.next()).await.ok(),
                None => Some(stream.next().await),
            };
            match next {
                Some(Some(Ok(out))) => {
                    let (name, bytes) = match out {
                        LogOutput::StdOut { message } => ("stdout", message),
                        LogOutput::StdErr { message } => ("stderr", message),
                        LogOutput::Console { message } => ("tty", message),
                        LogOutput::StdIn { message } => ("stdin", message),
                    };
                    split.push(name, &bytes, opts.timestamps, &mut batch);
                    if batch.len() < 500 {
                        if !batch.is_empty() && due.is_none() {
                            due = Some(tokio::time::Instant::now() + Duration::from_millis(50));
                        }
                        continue;
                    }
                }
                Some(Some(Err(e))) => {
                    split.flush(opts.timestamps, &mut batch);
                    batch.push(LogChunk {
                        stream: "error".into(),
                        line: error::engine(&host, e).message,
                        timestamp: None,
                    });
                    let _ = channel.send(std::mem::take(&mut batch));
                    break;
                }
                Some(None) => {
                    split.flush(opts.timestamps, &mut batch);
                    if !batch.is_empty() {
                        let _ = channel.send(std::mem::take(&mut batch));
                    }
                    break;
                }
                // The batch is due.
                None => {}
            }
            due = None;
            if !batch.is_empty() && channel.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
        }
    });
    Ok(sid)
}

/// A sample computed as `docker stats` does (CPU from the delta between two reads; memory
/// without the page cache).
pub fn sample(id: &str, s: &ContainerStatsResponse) -> StatsSample {
    let cpu = s.cpu_stats.clone().unwrap_or_default();
    let pre = s.precpu_stats.clone().unwrap_or_default();
    let total = |c: &bollard::models::ContainerCpuStats| {
        c.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(&cpu).saturating_sub(total(&pre)) as f64;
    let sys_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
    let ncpu = cpu.online_cpus.filter(|n| *n > 0).map_or_else(
        || {
            cpu.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref().map(|v| v.len() as f64))
                .unwrap_or(1.0)
        },
        f64::from,
    );
    let cpu_percent = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let mem = s.memory_stats.clone().unwrap_or_default();
    let st = mem.stats.clone().unwrap_or_default();
    let cache = st
        .get("total_inactive_file")
        .or_else(|| st.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let usage = mem.usage.unwrap_or(0).saturating_sub(cache);
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in s.networks.clone().unwrap_or_default().values() {
        rx += n.rx_bytes.unwrap_or(0);
        tx += n.tx_bytes.unwrap_or(0);
    }
    let (mut br, mut bw) = (0u64, 0u64);
    for e in s
        .blkio_stats
        .clone()
        .and_then(|b| b.io_service_bytes_recursive)
        .unwrap_or_default()
    {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br += e.value.unwrap_or(0),
            Some("write") => bw += e.value.unwrap_or(0),
            _ => {}
        }
    }
    StatsSample {
        id: id.to_string(),
        time_ms: crate::engine::now_ms(),
        cpu_percent: (cpu_percent * 100.0).round() / 100.0,
        memory_usage: usage,
        memory_limit: mem.limit.unwrap_or(0),
        net_rx: rx,
        net_tx: tx,
        block_read: br,
        block_write: bw,
        pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
    }
}

/// One stats stream per container, merged onto one channel; ends when all ended or the
/// page closes it.
#[tauri::command]
pub fn container_stats(
    app: State<'_, App>,
    ids: Vec<String>,
    channel: Channel<StatsSample>,
) -> Res<u32> {
    let d = app.engine.docker()?;
    let sid = app.streams.id();
    app.streams.spawn(sid, async move {
        let streams = ids.into_iter().map(|id| {
            let s = d.stats(
                &id,
                Some(q::StatsOptions {
                    stream: true,
                    one_shot: false,
                }),
            );
            s.map(move |r| r.map(|st| sample(&id, &st)))
        });
        let mut all = futures_util::stream::select_all(streams.map(Box::pin));
        while let Some(item) = all.next().await {
            if let Ok(s) = item {
                if channel.send(s).is_err() {
                    break;
                }
            }
        }
    });
    Ok(sid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_desktop_dto::{PortSpec, VolumeSpec};

    fn req() -> RunRequest {
        RunRequest {
            image: "my-image".into(),
            name: "web".into(),
            ports: vec![PortSpec {
                host_ip: String::new(),
                host_port: Some(80),
                container_port: 5000,
                protocol: "tcp".into(),
            }],
            volumes: vec![
                VolumeSpec {
                    source: "data".into(),
                    target: "/data".into(),
                    read_only: false,
                },
                VolumeSpec {
                    source: "/srv/site".into(),
                    target: "/site".into(),
                    read_only: true,
                },
                VolumeSpec {
                    source: String::new(),
                    target: "/cache".into(),
                    read_only: false,
                },
            ],
            env: vec!["MODE=prod".into()],
            network: "appnet".into(),
            restart: "unless-stopped".into(),
            command: "sh -c 'echo \"hi there\"; sleep 1'".into(),
            auto_remove: false,
        }
    }

    #[test]
    fn run_request_becomes_dockers_create_body() {
        let b = create_body(&req()).unwrap();
        assert_eq!(b.image.as_deref(), Some("my-image"));
        assert_eq!(b.exposed_ports, Some(vec!["5000/tcp".to_string()]));
        let h = b.host_config.unwrap();
        let pb = h.port_bindings.unwrap();
        assert_eq!(
            pb["5000/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("80")
        );
        assert_eq!(h.binds.unwrap(), vec!["data:/data", "/srv/site:/site:ro"]);
        assert_eq!(b.volumes, Some(vec!["/cache".to_string()]));
        assert_eq!(h.network_mode.as_deref(), Some("appnet"));
        assert_eq!(
            h.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(
            b.cmd.unwrap(),
            vec!["sh", "-c", "echo \"hi there\"; sleep 1"]
        );
    }

    #[test]
    fn bad_run_fields_are_named() {
        let mut r = req();
        r.restart = "sometimes".into();
        assert!(create_body(&r).unwrap_err().message.contains("sometimes"));
        let mut r = req();
        r.volumes[0].target = "data".into();
        assert!(create_body(&r)
            .unwrap_err()
            .message
            .contains("absolute path"));
        let mut r = req();
        r.command = "echo 'oops".into();
        assert!(create_body(&r)
            .unwrap_err()
            .message
            .contains("unterminated"));
        let mut r = req();
        r.image = " ".into();
        assert!(create_body(&r).unwrap_err().message.contains("image"));
        let mut r = req();
        r.auto_remove = true;
        assert!(create_body(&r).is_err());
    }

    #[test]
    fn log_lines_split_across_chunks_and_timestamps() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push("stdout", b"hel", false, &mut out);
        assert!(out.is_empty());
        s.push("stdout", b"lo\r\nworld\n", false, &mut out);
        assert_eq!(
            out.iter().map(|c| c.line.as_str()).collect::<Vec<_>>(),
            ["hello", "world"]
        );
        let mut out = Vec::new();
        s.push(
            "stderr",
            b"2026-11-28T15:00:00.123456789Z boom\n",
            true,
            &mut out,
        );
        assert_eq!(
            out[0].timestamp.as_deref(),
            Some("2026-11-28T15:00:00.123456789Z")
        );
        assert_eq!(out[0].line, "boom");
        assert_eq!(out[0].stream, "stderr");
    }

    #[test]
    fn stats_are_computed_like_docker_stats() {
        let s: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000u64}, "system_cpu_usage": 2_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 300_000_000u64}, "system_cpu_usage": 1_000_000_000u64},
            "memory_stats": {"usage": 10_000_000u64, "limit": 100_000_000u64, "stats": {"total_inactive_file": 2_000_000u64}},
            "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 50}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
            "pids_stats": {"current": 3}
        }))
        .unwrap();
        let x = sample("abc", &s);
        assert_eq!(x.cpu_percent, 20.0);
        assert_eq!(x.memory_usage, 8_000_000);
        assert_eq!((x.net_rx, x.net_tx, x.pids), (101, 52, 3));
    }
}
