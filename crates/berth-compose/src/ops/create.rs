//! A service (one replica) → the Engine API's container create body, with docker compose's
//! labels; and the service's `configs:`/`secrets:` (a file-backed one is a read-only bind
//! mount in the body, the others a tar written into the container before it starts).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, Mount,
    MountTmpfsOptions, MountType, MountVolumeOptions, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};

use super::{container_name, image_name, Error};
use crate::labels;
use crate::model::{FileObject, FileRef, FileSource, MountKind, Project, Service};

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
    labels.insert(labels::CONFIG_HASH.into(), config_hash(p, s));
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
    // Configs and secrets from files: the file itself, read-only (as docker compose does).
    for f in placed(p, s)? {
        if let FileSource::File(path) = &f.obj.source {
            mounts.push(Mount {
                target: Some(f.r.target.clone()),
                source: Some(path.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            });
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

/// One of a service's `configs:`/`secrets:` references with the top-level entry it names.
pub(crate) struct Placed<'a> {
    /// `configs` or `secrets`.
    pub section: &'static str,
    pub r: &'a FileRef,
    pub obj: &'a FileObject,
}

/// The service's configs and secrets, configs first. An external one is an error: it lives in
/// a swarm's store, which a single engine does not have (docker compose refuses it too).
pub(crate) fn placed<'a>(p: &'a Project, s: &'a Service) -> Result<Vec<Placed<'a>>, Error> {
    let mut out = Vec::new();
    for (section, refs, objs) in [
        ("configs", &s.configs, &p.configs),
        ("secrets", &s.secrets, &p.secrets),
    ] {
        for r in refs {
            let Some(obj) = objs.get(&r.source) else {
                return Err(Error::new(format!(
                    "service {}: {section}.{} is used but not defined in the top-level {section}",
                    s.name, r.source
                )));
            };
            if matches!(obj.source, FileSource::External(_)) {
                return Err(Error::new(format!(
                    "service {}: external {section} need a swarm; berth compose cannot mount {section}.{}",
                    s.name, r.source
                )));
            }
            out.push(Placed { section, r, obj });
        }
    }
    Ok(out)
}

/// What an environment- or content-backed entry holds (`None` for the others).
fn inline_content(source: &FileSource) -> Option<&[u8]> {
    match source {
        FileSource::Environment { value, .. } => Some(value.as_deref().unwrap_or("").as_bytes()),
        FileSource::Content(c) => Some(c.as_bytes()),
        FileSource::File(_) | FileSource::External(_) => None,
    }
}

/// The `config-hash` label: [`Service::config_hash`], and for a service with configs or
/// secrets also what each one is (name, source) and a digest of its content, so changing a
/// secret's value or a config file recreates the container as docker compose does. Only the
/// digest is hashed, never the value itself into a label.
pub(crate) fn config_hash(p: &Project, s: &Service) -> String {
    use sha2::{Digest, Sha256};
    let base = s.config_hash();
    if s.configs.is_empty() && s.secrets.is_empty() {
        return base;
    }
    let mut h = Sha256::new();
    h.update(base.as_bytes());
    for (section, refs, objs) in [
        ("configs", &s.configs, &p.configs),
        ("secrets", &s.secrets, &p.secrets),
    ] {
        for r in refs {
            h.update(format!("\n{section}.{}\n", r.source).as_bytes());
            let Some(obj) = objs.get(&r.source) else {
                continue;
            };
            h.update(serde_json::to_vec(obj).unwrap_or_default());
            let content = match &obj.source {
                FileSource::File(path) => std::fs::read(path).ok(),
                other => inline_content(other).map(<[u8]>::to_vec),
            };
            if let Some(c) = content {
                h.update(Sha256::digest(&c));
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The tar `up` writes into a new container at `/` before starting it: each environment- or
/// content-backed config and secret at its target (mode default 0444, owner default 0:0).
/// Missing parent directories are made by the engine. `None` when there is nothing to write.
pub(crate) fn files_tar(p: &Project, s: &Service) -> Result<Option<Vec<u8>>, Error> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut any = false;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for f in placed(p, s)? {
        let Some(data) = inline_content(&f.obj.source) else {
            continue;
        };
        let what = format!("service {}: {}.{}", s.name, f.section, f.r.source);
        let id = |v: &Option<String>, which: &str| -> Result<u64, Error> {
            match v {
                None => Ok(0),
                Some(t) => t.parse().map_err(|_| {
                    Error::new(format!("{what}: invalid {which} {t:?}: expected a number"))
                }),
            }
        };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(f.r.mode.unwrap_or(0o444));
        h.set_uid(id(&f.r.uid, "uid")?);
        h.set_gid(id(&f.r.gid, "gid")?);
        h.set_mtime(now);
        let path = f.r.target.trim_start_matches('/');
        tar.append_data(&mut h, path, data)
            .map_err(|e| Error::new(format!("{what}: cannot pack it for {}: {e}", f.r.target)))?;
        any = true;
    }
    if !any {
        return Ok(None);
    }
    tar.into_inner().map(Some).map_err(|e| {
        Error::new(format!(
            "service {}: packing configs and secrets: {e}",
            s.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, LoadOptions};
    use std::collections::BTreeSet;
    use std::io::Read;
    use std::path::Path;

    const YAML: &str = r#"services:
  web:
    image: busybox
    configs:
      - source: app
        target: /etc/app/app.conf
        mode: 0440
        uid: "1000"
        gid: "1001"
      - from_file
    secrets:
      - pw
      - token
configs:
  app:
    content: "level=${LEVEL}"
  from_file:
    file: ./c.txt
secrets:
  pw:
    environment: PW
  token:
    file: ./token.txt
"#;

    fn load_in(dir: &Path, yaml: &str, env: &[(&str, &str)]) -> Project {
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        load(&LoadOptions {
            cwd: dir.to_path_buf(),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .unwrap()
    }

    fn replica() -> Replica<'static> {
        Replica {
            number: 1,
            oneoff: false,
            name: None,
            command: None,
            env: &[],
            publish: true,
            mode_container: None,
            image_id: None,
            tty: None,
            stdin: None,
            carried: Vec::new(),
        }
    }

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.txt"), "c\n").unwrap();
        std::fs::write(dir.path().join("token.txt"), "t0\n").unwrap();
        dir
    }

    #[test]
    fn file_backed_ones_are_read_only_binds() {
        let dir = fixture();
        let p = load_in(dir.path(), YAML, &[("PW", "pw1"), ("LEVEL", "1")]);
        let b = body(&p, &p.services["web"], &replica()).unwrap();
        let mounts = b.host_config.unwrap().mounts.unwrap();
        let binds: Vec<(String, String, bool)> = mounts
            .iter()
            .map(|m| {
                assert_eq!(m.typ, Some(MountType::BIND));
                (
                    m.source.clone().unwrap(),
                    m.target.clone().unwrap(),
                    m.read_only.unwrap(),
                )
            })
            .collect();
        let src = |f: &str| dir.path().join(f).display().to_string();
        assert_eq!(
            binds,
            vec![
                (src("c.txt"), "/from_file".to_string(), true),
                (src("token.txt"), "/run/secrets/token".to_string(), true),
            ]
        );
    }

    #[test]
    fn inline_ones_are_packed_at_their_targets() {
        let dir = fixture();
        let p = load_in(dir.path(), YAML, &[("PW", "pw1"), ("LEVEL", "1")]);
        let tar = files_tar(&p, &p.services["web"]).unwrap().unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let mut got = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            got.push((
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                body,
            ));
        }
        assert_eq!(
            got,
            vec![
                (
                    "etc/app/app.conf".to_string(),
                    0o440,
                    1000,
                    1001,
                    "level=1".to_string()
                ),
                ("run/secrets/pw".to_string(), 0o444, 0, 0, "pw1".to_string()),
            ]
        );
        // Nothing to write: no tar.
        let plain = load_in(dir.path(), "services:\n  web:\n    image: busybox\n", &[]);
        assert!(files_tar(&plain, &plain.services["web"]).unwrap().is_none());
    }

    #[test]
    fn external_ones_are_refused_by_name() {
        let dir = fixture();
        let p = load_in(
            dir.path(),
            "services:\n  web:\n    image: busybox\n    secrets: [x]\nsecrets:\n  x:\n    external: true\n",
            &[],
        );
        let web = &p.services["web"];
        let e = body(&p, web, &replica()).unwrap_err();
        assert_eq!(
            e.message,
            "service web: external secrets need a swarm; berth compose cannot mount secrets.x"
        );
        assert_eq!(placed(&p, web).err(), Some(e));
    }

    #[test]
    fn hash_follows_content_and_hides_values() {
        let dir = fixture();
        let env = [("PW", "pw1"), ("LEVEL", "1")];
        let p = load_in(dir.path(), YAML, &env);
        let h0 = config_hash(&p, &p.services["web"]);
        assert_eq!(h0.len(), 64);
        assert_ne!(h0, p.services["web"].config_hash());
        // Same content, same hash.
        let again = load_in(dir.path(), YAML, &env);
        assert_eq!(config_hash(&again, &again.services["web"]), h0);
        // A secret's value, a config's content, a secret file's content: each changes it.
        let p = load_in(dir.path(), YAML, &[("PW", "pw2"), ("LEVEL", "1")]);
        let h_pw = config_hash(&p, &p.services["web"]);
        let p = load_in(dir.path(), YAML, &[("PW", "pw1"), ("LEVEL", "2")]);
        let h_level = config_hash(&p, &p.services["web"]);
        std::fs::write(dir.path().join("token.txt"), "t1\n").unwrap();
        let p = load_in(dir.path(), YAML, &env);
        let h_file = config_hash(&p, &p.services["web"]);
        let all = BTreeSet::from([&h0, &h_pw, &h_level, &h_file]);
        assert_eq!(all.len(), 4, "{all:?}");
        // The label is the hash, never the value.
        let b = body(&p, &p.services["web"], &replica()).unwrap();
        let l = b.labels.unwrap();
        assert_eq!(l[labels::CONFIG_HASH], h_file);
        assert!(!l.values().any(|v| v.contains("pw1")), "{l:?}");
        // A service without configs or secrets keeps the plain service hash.
        let plain = load_in(dir.path(), "services:\n  web:\n    image: busybox\n", &[]);
        let web = &plain.services["web"];
        assert_eq!(config_hash(&plain, web), web.config_hash());
    }
}
