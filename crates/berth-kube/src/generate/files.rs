//! `configs:` → ConfigMaps, `secrets:` → Secrets (and their mounts), and the variables a
//! service's `env_file`s set → a `<service>-env` ConfigMap read through `envFrom`.

use super::names::{self, Unique};
use super::{err, Gen, GenerateError, Object};
use berth_compose::model::{FileRef, FileSource, Service};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, ConfigMapVolumeSource, EnvFromSource, EnvVar, KeyToPath, Secret,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::ByteString;
use std::collections::BTreeMap;

/// The most a ConfigMap or Secret can hold.
const MAX_DATA: usize = 1024 * 1024;

/// compose's default file mode for configs and secrets.
const DEFAULT_MODE: u32 = 0o444;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Config,
    Secret,
}

impl Kind {
    /// The top-level key.
    fn key(self) -> &'static str {
        match self {
            Kind::Config => "configs",
            Kind::Secret => "secrets",
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Secret => "secret",
        }
    }
    fn object(self) -> &'static str {
        match self {
            Kind::Config => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }
    fn refs(self, svc: &Service) -> &[FileRef] {
        match self {
            Kind::Config => &svc.configs,
            Kind::Secret => &svc.secrets,
        }
    }
}

/// One top-level config or secret as it exists in the cluster.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The ConfigMap/Secret name.
    pub name: String,
    /// The data key holding the file.
    pub key: String,
}

/// The objects for one of `configs:`/`secrets:`, and how to reach each entry.
#[derive(Debug, Default)]
pub struct Plan {
    pub objects: Vec<Object>,
    /// By top-level key.
    pub entries: BTreeMap<String, Planned>,
}

/// The file name a target path ends in.
fn file_name(target: &str) -> &str {
    target
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// Plans the ConfigMaps (or Secrets) for the project's top-level `configs:` (`secrets:`).
pub fn plan(g: &mut Gen, kind: Kind) -> Result<Plan, GenerateError> {
    let project = g.project;
    let top = match kind {
        Kind::Config => &project.configs,
        Kind::Secret => &project.secrets,
    };
    // The first file name each entry is mounted as (services in name order): its data key.
    let mut first_target: BTreeMap<&str, &str> = BTreeMap::new();
    for (sname, svc) in &project.services {
        for (i, r) in kind.refs(svc).iter().enumerate() {
            if !top.contains_key(&r.source) {
                return err(format!(
                    "services.{sname}.{}[{i}]: {} {:?} is not declared under the top-level {}: \
                     add it there",
                    kind.key(),
                    kind.singular(),
                    r.source,
                    kind.key()
                ));
            }
            first_target
                .entry(&r.source)
                .or_insert(file_name(&r.target));
        }
    }

    let mut plan = Plan::default();
    for (key, obj) in top {
        let tkey = format!("{}.{key}", kind.key());
        let Some(target) = first_target.get(key.as_str()) else {
            g.warn(
                None,
                tkey,
                format!(
                    "not used by any service: no {} is made for it",
                    kind.object()
                ),
            );
            continue;
        };
        let data_key = if names::is_data_key(target) {
            target.to_string()
        } else if names::is_data_key(key) {
            key.clone()
        } else {
            names::sanitize_label(key)
        };
        let name = names::subdomain_name(&tkey, &obj.name)?;
        plan.entries.insert(
            key.clone(),
            Planned {
                name: name.clone(),
                key: data_key.clone(),
            },
        );

        let content: Vec<u8> = match &obj.source {
            FileSource::External(_) => {
                g.warn(
                    None,
                    &tkey,
                    format!(
                        "external: no {kind} is made; a {kind} named {name:?} with the key \
                         {data_key:?} must already exist in the cluster{ns}",
                        kind = kind.object(),
                        ns = g
                            .namespace
                            .as_ref()
                            .map(|n| format!(" (namespace {n})"))
                            .unwrap_or_default()
                    ),
                );
                continue;
            }
            FileSource::File(path) => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => return err(format!("{tkey}.file: cannot read {}: {e}", path.display())),
            },
            FileSource::Environment { var, value } => match value {
                Some(v) => v.clone().into_bytes(),
                None => {
                    g.warn(
                        None,
                        format!("{tkey}.environment"),
                        format!(
                            "the variable {var} is not set: the {} holds an empty value (set \
                             {var} before generating)",
                            kind.object()
                        ),
                    );
                    Vec::new()
                }
            },
            FileSource::Content(s) => s.clone().into_bytes(),
        };
        if content.len() > MAX_DATA {
            return err(format!(
                "{tkey}: the content is {} bytes, more than the 1 MiB a Kubernetes {} can hold: \
                 mount it from a volume instead",
                content.len(),
                kind.object()
            ));
        }

        let annotations = g.annotations(None, &format!("{tkey}.labels"), &obj.labels);
        let mut metadata = g.meta(&name, g.project_labels());
        metadata.annotations = annotations;
        let object = match kind {
            Kind::Config => {
                let (data, binary_data) = match String::from_utf8(content) {
                    Ok(s) => (Some(BTreeMap::from([(data_key, s)])), None),
                    Err(e) => (
                        None,
                        Some(BTreeMap::from([(data_key, ByteString(e.into_bytes()))])),
                    ),
                };
                Object::ConfigMap(ConfigMap {
                    metadata,
                    data,
                    binary_data,
                    ..Default::default()
                })
            }
            Kind::Secret => Object::Secret(Secret {
                metadata,
                type_: Some("Opaque".to_string()),
                data: Some(BTreeMap::from([(data_key, ByteString(content))])),
                ..Default::default()
            }),
        };
        plan.objects.push(object);
    }
    Ok(plan)
}

/// A service's `configs:` or `secrets:` as volumes, each mounted as one file (`subPath`).
pub fn mounts(
    g: &mut Gen,
    sname: &str,
    svc: &Service,
    kind: Kind,
    plan: &Plan,
    volume_names: &mut Unique,
) -> Result<(Vec<Volume>, Vec<VolumeMount>), GenerateError> {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, r) in kind.refs(svc).iter().enumerate() {
        let rkey = format!("services.{sname}.{}[{i}]", kind.key());
        let Some(p) = plan.entries.get(&r.source) else {
            // Unused entries are not planned; a used one always is.
            return err(format!(
                "{rkey}: {} {:?} is not declared under the top-level {}",
                kind.singular(),
                r.source,
                kind.key()
            ));
        };
        let target = if r.target.starts_with('/') {
            r.target.clone()
        } else {
            format!("/{}", r.target)
        };
        let file = file_name(&target);
        if file.is_empty() || file == "." || file == ".." {
            return err(format!(
                "{rkey}.target: {:?} does not name a file: give the full path of the file, like \
                 /etc/app/{}",
                r.target, r.source
            ));
        }
        let mode = r.mode.unwrap_or(DEFAULT_MODE);
        if mode > 0o777 {
            return err(format!(
                "{rkey}.mode: {mode:#o} is not a file mode: use 0 to 0777, like 0440"
            ));
        }
        if r.uid.is_some() || r.gid.is_some() {
            g.warn(
                Some(sname),
                format!("{rkey}.uid"),
                format!(
                    "uid/gid are not applied: files from a {} are owned by root (the pod's \
                     securityContext.fsGroup can set their group)",
                    kind.object()
                ),
            );
        }
        let vname = volume_names.take(&format!("{}-{}", kind.singular(), r.source));
        let items = Some(vec![KeyToPath {
            key: p.key.clone(),
            path: file.to_string(),
            mode: None,
        }]);
        let default_mode = Some(mode as i32);
        volumes.push(match kind {
            Kind::Config => Volume {
                name: vname.clone(),
                config_map: Some(ConfigMapVolumeSource {
                    name: p.name.clone(),
                    items,
                    default_mode,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Kind::Secret => Volume {
                name: vname.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(p.name.clone()),
                    items,
                    default_mode,
                    ..Default::default()
                }),
                ..Default::default()
            },
        });
        mounts.push(VolumeMount {
            name: vname,
            mount_path: target.clone(),
            sub_path: Some(file.to_string()),
            read_only: Some(true),
            ..Default::default()
        });
    }
    Ok((volumes, mounts))
}

/// A service's environment: variables its `env_file`s set (and `environment:` leaves as
/// they are) go to the `<service>-env` ConfigMap; the rest are `env` entries.
pub struct Env {
    pub config_map: Option<Object>,
    pub env_from: Option<Vec<EnvFromSource>>,
    pub env: Option<Vec<EnvVar>>,
}

pub fn environment(g: &mut Gen, sname: &str, svc: &Service) -> Env {
    // The env_files' values, later files over earlier ones, and which file set each.
    let mut from_files: BTreeMap<&str, (&Option<String>, &std::path::Path)> = BTreeMap::new();
    for f in &svc.env_files {
        for (k, v) in &f.vars {
            from_files.insert(k, (v, &f.path));
        }
    }

    let mut data = BTreeMap::new();
    let mut env = Vec::new();
    for (k, v) in &svc.environment {
        let file = from_files.get(k.as_str());
        match (v, file) {
            (Some(v), Some((Some(fv), _))) if fv == v && names::is_data_key(k) => {
                data.insert(k.clone(), v.clone());
            }
            (Some(v), _) => env.push(EnvVar {
                name: k.clone(),
                value: Some(v.clone()),
                ..Default::default()
            }),
            (None, Some((None, path))) => g.warn(
                Some(sname),
                format!("services.{sname}.env_file"),
                format!(
                    "{k} is named in {} without a value and is not set where berth ran: left \
                     out (give it a value in the file)",
                    path.display()
                ),
            ),
            (None, _) => g.warn(
                Some(sname),
                format!("services.{sname}.environment.{k}"),
                "has no value and is not set where berth ran: left out (give it a value, or \
                 set it before generating)",
            ),
        }
    }

    let k8s = g.service_name(sname);
    let (config_map, env_from) = if data.is_empty() {
        (None, None)
    } else {
        let name = format!("{k8s}-env");
        let cm = Object::ConfigMap(ConfigMap {
            metadata: g.meta(&name, g.service_labels(sname)),
            data: Some(data),
            ..Default::default()
        });
        let from = EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name,
                optional: None,
            }),
            ..Default::default()
        };
        (Some(cm), Some(vec![from]))
    };
    Env {
        config_map,
        env_from,
        env: (!env.is_empty()).then_some(env),
    }
}
