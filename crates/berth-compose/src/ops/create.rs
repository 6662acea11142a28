//! A service (one replica) → the Engine API's container create body, with docker compose's
//! labels.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, Mount,
    MountTmpfsOptions, MountType, MountVolumeOptions, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};

use super::{container_name, image_name, Error};
use crate::labels;
use crate::model::{MountKind, Project, Service};

/// What `up` and `run` vary between containers of one service.
pub(crate) struct Replica<'a> {
    pub number: u32,
    /// `run`: a one-off container (no published ports unless asked, oneoff label, own name).
    pub oneoff: bool,
    /// `run`'s name for a one-off container.
    pub name: Option<String>,
    /// `run`'s command, replacing the service's.
    pub command: Option<Vec<String>>,
    /// `run -e` additions.
    pub env: &'a [String],
    /// `run --service-ports`; otherwise a one-off container publishes nothing.
    pub publish: bool,
    /// Resolved `network_mode: service:x` / `container:x` target (a container ID or name).
    pub mode_container: Option<String>,
    pub image_id: Option<String>,
    pub tty: Option<bool>,
    pub stdin: Option<bool>,
    /// Anonymous volumes of the container this one replaces, kept at the same targets (as
    /// docker compose does on recreate, so a database's data survives a config change).
    pub carried: Vec<Mount>,
}

impl Replica<'_> {
    pub fn name(&self, p: &Project, s: &Service) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => container_name(p, s, self.number),
        }
    }
}

pub(crate) fn body(
    p: &Project,
    s: &Service,
    r: &Replica<'_>,
) -> Result<ContainerCreateBody, Error> {
    let mut labels: HashMap<String, String> = s
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(labels::PROJECT.into(), p.name.clone());
    labels.insert(labels::SERVICE.into(), s.name.clone());
    labels.insert(labels::NUMBER.into(), r.number.to_string());
    labels.insert(labels::CONFIG_HASH.into(), s.config_hash());
    labels.insert(
        labels::ONEOFF.into(),
        if r.oneoff { "True" } else { "False" }.into(),
    );
    labels.insert(
        labels::WORKING_DIR.into(),
        p.working_dir.display().to_string(),
    );
    labels.insert(
        labels::CONFIG_FILES.into(),
        p.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(id) = &r.image_id {
        labels.insert(labels::IMAGE.into(), id.clone());
    }
    let deps: Vec<String> = s
        .depends_on
        .iter()
        .map(|(n, d)| {
            let c = serde_json::to_value(d.condition)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{n}:{c}:{}", d.restart)
        })
        .collect();
    if !deps.is_empty() {
        labels.insert(labels::DEPENDS_ON.into(), deps.join(","));
    }

    // The service's environment, then `run -e` over it (KEY=VALUE, or KEY alone: the
    // caller's value, as docker compose does).
    let mut vars: BTreeMap<String, Option<String>> = s.environment.clone();
    for e in r.env {
        match e.split_once('=') {
            Some((k, v)) => {
                vars.insert(k.to_string(), Some(v.to_string()));
            }
            None => {
                vars.insert(e.clone(), std::env::var(e).ok());
            }
        }
    }
    let env: Vec<String> = vars
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();

    // Ports: `expose` and published targets are exposed; published ones bound.
    let mut exposed: HashMap<String, HashMap<(), ()>> = HashMap::new();
    for e in &s.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        match port.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_port(a, e)?, parse_port(b, e)?);
                for n in a..=b {
                    exposed.insert(format!("{n}/{proto}"), HashMap::new());
                }
            }
            None => {
                exposed.insert(format!("{}/{proto}", parse_port(port, e)?), HashMap::new());
            }
        }
    }
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &s.ports {
        let key = format!("{}/{}", port.target, port.protocol);
        exposed.insert(key.clone(), HashMap::new());
        if r.oneoff && !r.publish {
            continue;
        }
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: (!port.host_ip.is_empty()).then(|| port.host_ip.clone()),
                host_port: Some(port.published.map(|n| n.to_string()).unwrap_or_default()),
            });
    }

    // Mounts: named volumes by engine name, binds by absolute path, tmpfs; anonymous volumes
    // as `Volumes` (the engine makes them).
    let mut mounts = Vec::new();
    let mut anonymous: HashMap<String, HashMap<(), ()>> = HashMap::new();
    for m in &s.volumes {
        match m.kind {
            MountKind::Volume => match &m.source {
                None => match r
                    .carried
                    .iter()
                    .find(|c| c.target.as_deref() == Some(m.target.as_str()))
                {
                    Some(c) => mounts.push(c.clone()),
                    None => {
                        anonymous.insert(m.target.clone(), HashMap::new());
                    }
                },
                Some(key) => {
                    let name = p
                        .volumes
                        .get(key)
                        .map(|v| v.name.clone())
                        .unwrap_or_else(|| key.clone());
                    mounts.push(Mount {
                        target: Some(m.target.clone()),
                        source: Some(name),
                        typ: Some(MountType::VOLUME),
                        read_only: Some(m.read_only),
                        volume_options: m.nocopy.then(|| MountVolumeOptions {
                            no_copy: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            },
            MountKind::Bind => {
                let src = m.source.clone().unwrap_or_default();
                if m.create_host_path && !std::path::Path::new(&src).exists() {
                    std::fs::create_dir_all(&src).map_err(|e| {
                        Error::new(format!(
                            "service {}: cannot create the bind mount's host path {src}: {e}",
                            s.name
                        ))
                    })?;
                }
                mounts.push(Mount {
                    target: Some(m.target.clone()),
                    source: Some(src),
                    typ: Some(MountType::BIND),
                    read_only: Some(m.read_only),
                    ..Default::default()
                });
            }
            MountKind::Tmpfs => mounts.push(Mount {
                target: Some(m.target.clone()),
                typ: Some(MountType::TMPFS),
                read_only: Some(m.read_only),
                tmpfs_options: m.tmpfs_size.map(|n| MountTmpfsOptions {
                    size_bytes: Some(n),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }
    let tmpfs: HashMap<String, String> = s
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), opts.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();

    // Networks: the first (by priority: `default` last only if others are named) is the mode;
    // every network an endpoint with the service name and its aliases.
    let (network_mode, networking_config) = match &s.network_mode {
        Some(mode) => {
            let mode = match (mode.strip_prefix("service:"), &r.mode_container) {
                (Some(_), Some(c)) => format!("container:{c}"),
                (Some(svc), None) => {
                    return Err(Error::new(format!(
                        "service {}: network_mode service:{svc} has no running container to join",
                        s.name
                    )))
                }
                _ => mode.clone(),
            };
            (Some(mode), None)
        }
        None => {
            let mut endpoints = HashMap::new();
            let mut first = None;
            for (key, sn) in &s.networks {
                let name = p
                    .networks
                    .get(key)
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| key.clone());
                if first.is_none() {
                    first = Some(name.clone());
                }
                // A one-off `run` container must not answer for the service.
                let mut aliases = Vec::new();
                if !r.oneoff {
                    aliases.push(s.name.clone());
                    aliases.push(r.name(p, s));
                }
                aliases.extend(sn.aliases.iter().cloned());
                endpoints.insert(
                    name,
                    EndpointSettings {
                        aliases: Some(aliases),
                        ipam_config: sn.ipv4_address.as_ref().map(|ip| EndpointIpamConfig {
                            ipv4_address: Some(ip.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                );
            }
            (
                first,
                Some(NetworkingConfig {
                    endpoints_config: Some(endpoints),
                }),
            )
        }
    };

    let restart_policy = match s.restart.as_deref() {
        None | Some("no") => None,
        Some(r) => {
            let (name, count) = r.split_once(':').unwrap_or((r, ""));
            let name = match name {
                "always" => RestartPolicyNameEnum::ALWAYS,
                "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                other => {
                    return Err(Error::new(format!(
                        "service {}: unknown restart policy {other:?}",
                        s.name
                    )))
                }
            };
            Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: count.parse().ok(),
            })
        }
    };
    let restart_policy = if r.oneoff { None } else { restart_policy };

    let healthcheck = s.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: h.interval_ns,
        timeout: h.timeout_ns,
        retries: h.retries,
        start_period: h.start_period_ns,
        start_interval: h.start_interval_ns,
    });

    let some_vec = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    let tty = r.tty.unwrap_or(s.tty);
    let stdin = r.stdin.unwrap_or(s.stdin_open);
    let hostname = s.hostname.clone();
    Ok(ContainerCreateBody {
        image: Some(image_name(p, s)),
        cmd: r.command.clone().or_else(|| s.command.clone()),
        entrypoint: s.entrypoint.clone(),
        env: (!env.is_empty()).then_some(env),
        working_dir: s.working_dir.clone(),
        user: s.user.clone(),
        hostname,
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then(|| exposed.into_keys().collect()),
        volumes: (!anonymous.is_empty()).then(|| anonymous.into_keys().collect()),
        tty: Some(tty),
        open_stdin: Some(stdin),
        stdin_once: Some(r.oneoff && stdin),
        attach_stdin: Some(r.oneoff && stdin),
        attach_stdout: Some(r.oneoff),
        attach_stderr: Some(r.oneoff),
        healthcheck,
        stop_signal: s.stop_signal.clone(),
        stop_timeout: s.stop_grace_period.and_then(|n| i64::try_from(n).ok()),
        networking_config,
        host_config: Some(HostConfig {
            mounts: (!mounts.is_empty()).then_some(mounts),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            network_mode,
            restart_policy,
            memory: s.limits.memory,
            nano_cpus: s.limits.cpus.map(|c| (c * 1e9) as i64),
            pids_limit: s.limits.pids,
            cap_add: some_vec(&s.cap_add),
            cap_drop: some_vec(&s.cap_drop),
            privileged: Some(s.privileged),
            readonly_rootfs: Some(s.read_only),
            init: s.init,
            extra_hosts: some_vec(&s.extra_hosts),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn parse_port(s: &str, whole: &str) -> Result<u16, Error> {
    s.trim()
        .parse()
        .map_err(|_| Error::new(format!("invalid exposed port {whole:?}")))
}

/// Build args as the API takes them: named-only args take the environment's value.
pub(crate) fn build_args(
    args: &BTreeMap<String, Option<String>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> HashMap<String, String> {
    args.iter()
        .filter_map(|(k, v)| v.clone().or_else(|| env(k)).map(|v| (k.clone(), v)))
        .collect()
}
