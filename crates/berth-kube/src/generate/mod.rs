//! Compose model → Kubernetes objects.
//!
//! One Deployment per service (plus a Service when it has `ports:` or `expose:`, and a
//! `<service>-env` ConfigMap for the variables its `env_file`s set), a PersistentVolumeClaim
//! per named volume in use, a ConfigMap per `configs:` entry and a Secret per `secrets:`
//! entry. Everything that does not cross to a cluster as written is reported as a
//! [`Warning`] naming the compose key; nothing is dropped silently.

mod files;
mod names;
mod workload;

#[cfg(test)]
mod tests;

use berth_compose::model::MountKind;
use berth_compose::Project;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, Secret, Service,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Resource;
use std::collections::BTreeMap;

pub use names::{is_dns1123_label, is_dns1123_subdomain};

/// How Services are exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceType {
    #[default]
    ClusterIp,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    /// The `spec.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIp => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Options for [`generate`].
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Put every object in this namespace (and emit the Namespace object).
    pub namespace: Option<String>,
    /// The type of the Services made for published ports.
    pub service_type: ServiceType,
    /// PVC storage class (cluster default when `None`).
    pub storage_class: Option<String>,
    /// PVC size request, a Kubernetes quantity (default `1Gi`).
    pub volume_size: Option<String>,
    /// Image references to use instead of the compose file's, by service name (deploy pins
    /// images by digest through this).
    pub images: BTreeMap<String, String>,
}

/// The PVC size when [`GenerateOptions::volume_size`] is `None`.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";

/// One generated object.
// Unboxed on purpose: callers match and build these directly, and a project has few objects.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    Secret(Secret),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Deployment(Deployment),
    Service(Service),
}

impl Object {
    /// `kind`, like `Deployment`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => Namespace::KIND,
            Object::ConfigMap(_) => ConfigMap::KIND,
            Object::Secret(_) => Secret::KIND,
            Object::PersistentVolumeClaim(_) => PersistentVolumeClaim::KIND,
            Object::Deployment(_) => Deployment::KIND,
            Object::Service(_) => Service::KIND,
        }
    }

    /// `apiVersion`, like `apps/v1`.
    pub fn api_version(&self) -> &'static str {
        match self {
            Object::Namespace(_) => Namespace::API_VERSION,
            Object::ConfigMap(_) => ConfigMap::API_VERSION,
            Object::Secret(_) => Secret::API_VERSION,
            Object::PersistentVolumeClaim(_) => PersistentVolumeClaim::API_VERSION,
            Object::Deployment(_) => Deployment::API_VERSION,
            Object::Service(_) => Service::API_VERSION,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Namespace(o) => &mut o.metadata,
            Object::ConfigMap(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
            Object::PersistentVolumeClaim(o) => &mut o.metadata,
            Object::Deployment(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
        }
    }

    /// `metadata.name` (always set on generated objects).
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace`, when [`GenerateOptions::namespace`] was given (never for the
    /// Namespace object itself).
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Object::Namespace(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::PersistentVolumeClaim(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
        }
    }

    /// Position of the kind in apply order.
    fn apply_rank(&self) -> u8 {
        match self {
            Object::Namespace(_) => 0,
            Object::ConfigMap(_) => 1,
            Object::Secret(_) => 2,
            Object::PersistentVolumeClaim(_) => 3,
            Object::Service(_) => 4,
            Object::Deployment(_) => 5,
        }
    }
}

/// Something in the project that does not cross to a cluster as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The service, when the key is a service's.
    pub service: Option<String>,
    /// The key path, like `services.web.volumes[0]`.
    pub key: String,
    /// What happened to it and what to do.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The output of [`generate`]: objects in apply order, and the warnings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifests {
    pub objects: Vec<Object>,
    pub warnings: Vec<Warning>,
}

impl Manifests {
    /// The object of this kind and name, if generated.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind() == kind && o.name() == name)
    }
}

/// A project that cannot be turned into objects at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateError(pub String);

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenerateError {}

fn err<T>(msg: impl Into<String>) -> Result<T, GenerateError> {
    Err(GenerateError(msg.into()))
}

/// The project's objects, in apply order (Namespace, ConfigMaps, Secrets,
/// PersistentVolumeClaims, Services, Deployments; by name within a kind), and the warnings.
pub fn generate(project: &Project, opts: &GenerateOptions) -> Result<Manifests, GenerateError> {
    let mut g = Gen::new(project, opts)?;
    let mut objects = Vec::new();

    if let Some(ns) = &g.namespace {
        objects.push(Object::Namespace(Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some(g.project_labels()),
                ..Default::default()
            },
            ..Default::default()
        }));
    }

    objects.extend(g.claims()?);
    let configs = files::plan(&mut g, files::Kind::Config)?;
    let secrets = files::plan(&mut g, files::Kind::Secret)?;
    objects.extend(configs.objects.iter().cloned());
    objects.extend(secrets.objects.iter().cloned());
    g.networks();

    for (name, svc) in &project.services {
        objects.extend(workload::service(&mut g, name, svc, &configs, &secrets)?);
    }

    objects.sort_by(|a, b| (a.apply_rank(), a.name()).cmp(&(b.apply_rank(), b.name())));
    for pair in objects.windows(2) {
        if pair[0].kind() == pair[1].kind() && pair[0].name() == pair[1].name() {
            return err(format!(
                "two {} objects would both be named {:?}: rename one of the compose entries \
                 they come from (names are lower-cased and '_' becomes '-')",
                pair[0].kind(),
                pair[0].name()
            ));
        }
    }
    Ok(Manifests {
        objects,
        warnings: g.warnings,
    })
}

/// A named volume's claim.
#[derive(Debug, Clone)]
struct Claim {
    /// The PVC name (`claimName`).
    name: String,
}

/// State shared by the parts of one [`generate`] run.
struct Gen<'a> {
    project: &'a Project,
    opts: &'a GenerateOptions,
    namespace: Option<String>,
    /// Compose service name → Kubernetes name.
    service_names: BTreeMap<String, String>,
    /// Top-level volume key → its claim.
    claims: BTreeMap<String, Claim>,
    warnings: Vec<Warning>,
}

impl<'a> Gen<'a> {
    fn new(project: &'a Project, opts: &'a GenerateOptions) -> Result<Self, GenerateError> {
        if let Some(ns) = &opts.namespace {
            if !names::is_dns1123_label(ns) {
                return err(format!(
                    "namespace {ns:?} is not a valid Kubernetes namespace name: use at most 63 \
                     lower-case letters, digits and '-', starting and ending with a letter or digit"
                ));
            }
        }
        if let Some(sc) = &opts.storage_class {
            if !names::is_dns1123_subdomain(sc) {
                return err(format!(
                    "storage class {sc:?} is not a valid Kubernetes name (see `kubectl get \
                     storageclass` for the cluster's classes)"
                ));
            }
        }
        if let Some(size) = &opts.volume_size {
            if !is_quantity(size) {
                return err(format!(
                    "volume size {size:?} is not a Kubernetes quantity: use a number with an \
                     optional unit, like 1Gi, 500Mi or 10G"
                ));
            }
        }
        for (svc, image) in &opts.images {
            if image.trim().is_empty() {
                return err(format!("the image given for service {svc:?} is empty"));
            }
        }
        if !names::is_label_value(&project.name) {
            return err(format!(
                "project name {:?} is not a valid Kubernetes label value (at most 63 letters, \
                 digits, '-', '_' or '.', starting and ending with a letter or digit): choose \
                 another with -p",
                project.name
            ));
        }

        let mut service_names = BTreeMap::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for name in project.services.keys() {
            let key = format!("services.{name}");
            let k8s = names::label_name(&key, name)?;
            if !names::is_label_value(name) {
                return err(format!(
                    "{key}: the service name is not a valid Kubernetes label value (at most 63 \
                     characters, starting and ending with a letter or digit): rename it"
                ));
            }
            if let Some(other) = seen.insert(k8s.clone(), name.clone()) {
                return err(format!(
                    "services.{other} and services.{name} would both be named {k8s:?} in \
                     Kubernetes (names are lower-cased and '_' and '.' become '-'): rename one"
                ));
            }
            service_names.insert(name.clone(), k8s);
        }

        Ok(Gen {
            project,
            opts,
            namespace: opts.namespace.clone(),
            service_names,
            claims: BTreeMap::new(),
            warnings: Vec::new(),
        })
    }

    fn warn(&mut self, service: Option<&str>, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            service: service.map(str::to_string),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Labels on every object.
    fn project_labels(&self) -> BTreeMap<String, String> {
        let p = &self.project.name;
        BTreeMap::from([
            (crate::labels::PART_OF.to_string(), p.clone()),
            (
                crate::labels::MANAGED_BY.to_string(),
                crate::FIELD_MANAGER.to_string(),
            ),
            (crate::labels::COMPOSE_PROJECT.to_string(), p.clone()),
        ])
    }

    /// The Kubernetes name of a compose service.
    fn service_name(&self, svc: &str) -> String {
        self.service_names
            .get(svc)
            .cloned()
            .unwrap_or_else(|| names::sanitize_label(svc))
    }

    /// Labels selecting a service's pods.
    fn selector(&self, svc: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                crate::labels::PART_OF.to_string(),
                self.project.name.clone(),
            ),
            (crate::labels::NAME.to_string(), self.service_name(svc)),
        ])
    }

    /// Labels on a service's objects (and its pods).
    fn service_labels(&self, svc: &str) -> BTreeMap<String, String> {
        let mut l = self.project_labels();
        l.insert(crate::labels::NAME.to_string(), self.service_name(svc));
        l.insert(crate::labels::COMPOSE_SERVICE.to_string(), svc.to_string());
        l
    }

    fn meta(&self, name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.namespace.clone(),
            labels: Some(labels),
            ..Default::default()
        }
    }

    /// Compose labels as annotations: invalid keys are reported and left out.
    fn annotations(
        &mut self,
        service: Option<&str>,
        key: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (k, v) in labels {
            if names::is_qualified_key(k) {
                out.insert(k.clone(), v.clone());
            } else {
                self.warn(
                    service,
                    format!("{key}.{k}"),
                    format!(
                        "{k:?} is not a valid Kubernetes annotation key ([prefix/]name, the name \
                         at most 63 letters, digits, '-', '_' or '.'); left out"
                    ),
                );
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// A PVC per top-level volume that a service mounts; external ones are referenced only.
    fn claims(&mut self) -> Result<Vec<Object>, GenerateError> {
        let project = self.project;
        // volume key → [(service, replicas)]
        let mut users: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
        for (sname, svc) in &project.services {
            for (i, m) in svc.volumes.iter().enumerate() {
                if m.kind != MountKind::Volume {
                    continue;
                }
                let Some(key) = m.source.as_deref() else {
                    continue;
                };
                if !project.volumes.contains_key(key) {
                    return err(format!(
                        "services.{sname}.volumes[{i}]: volume {key:?} is not declared under the \
                         top-level volumes: add it there"
                    ));
                }
                let list = users.entry(key).or_default();
                if !list.iter().any(|(s, _)| *s == sname.as_str()) {
                    list.push((sname, svc.replicas));
                }
            }
        }

        let mut objects = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (key, vol) in &project.volumes {
            let vkey = format!("volumes.{key}");
            let Some(list) = users.get(key.as_str()) else {
                self.warn(
                    None,
                    vkey,
                    "not mounted by any service: no PersistentVolumeClaim is made for it",
                );
                continue;
            };
            if vol.external {
                let name = names::subdomain_name(&vkey, &vol.name)?;
                self.warn(
                    None,
                    &vkey,
                    format!(
                        "external: no PersistentVolumeClaim is made; a claim named {name:?} must \
                         already exist in the cluster{}",
                        self.namespace
                            .as_ref()
                            .map(|n| format!(" (namespace {n})"))
                            .unwrap_or_default()
                    ),
                );
                self.claims.insert(key.clone(), Claim { name });
            } else {
                let name = names::subdomain_name(&vkey, &vol.name)?;
                if let Some(other) = seen.insert(name.clone(), key.clone()) {
                    return err(format!(
                        "volumes.{other} and volumes.{key} would both be claim {name:?}: give \
                         one another `name:`"
                    ));
                }
                if vol.driver.as_deref().is_some_and(|d| d != "local")
                    || !vol.driver_opts.is_empty()
                {
                    self.warn(
                        None,
                        format!("{vkey}.driver"),
                        "volume drivers and driver_opts do not apply in a cluster; the claim uses \
                         the storage class (set one with --storage-class)",
                    );
                }
                let annotations = self.annotations(None, &format!("{vkey}.labels"), &vol.labels);
                let mut meta = self.meta(&name, self.project_labels());
                meta.annotations = annotations;
                let size = self
                    .opts
                    .volume_size
                    .clone()
                    .unwrap_or_else(|| DEFAULT_VOLUME_SIZE.to_string());
                objects.push(Object::PersistentVolumeClaim(PersistentVolumeClaim {
                    metadata: meta,
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_string(),
                                Quantity(size),
                            )])),
                            ..Default::default()
                        }),
                        storage_class_name: self.opts.storage_class.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }));
                self.claims
                    .insert(key.clone(), Claim { name: name.clone() });
            }
            let name = self
                .claims
                .get(key)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let pods: u32 = list.iter().map(|(_, r)| *r).sum();
            if pods > 1 {
                let who = list
                    .iter()
                    .map(|(s, r)| format!("{s} ({r} replica{})", if *r == 1 { "" } else { "s" }))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.warn(
                    None,
                    vkey,
                    format!(
                        "mounted by {pods} pods ({who}) but claim {name:?} is ReadWriteOnce: \
                         pods on other nodes cannot mount it; use one replica, or a storage \
                         class with ReadWriteMany"
                    ),
                );
            }
        }
        Ok(objects)
    }

    /// Compose networks: a cluster has one flat pod network.
    fn networks(&mut self) {
        let project = self.project;
        for key in project.networks.keys() {
            if key == "default" {
                continue;
            }
            let used = project
                .services
                .values()
                .any(|s| s.networks.contains_key(key));
            if used {
                self.warn(
                    None,
                    format!("networks.{key}"),
                    "a cluster has one pod network: services on different compose networks can \
                     all reach each other (add NetworkPolicies to isolate them)",
                );
            }
        }
    }
}

/// A Kubernetes quantity, loosely: digits, an optional fraction, an optional suffix.
fn is_quantity(s: &str) -> bool {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let num_ok = !num.is_empty()
        && num.split('.').count() <= 2
        && num
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    num_ok
        && matches!(
            suffix,
            "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "k" | "M" | "G" | "T" | "P" | "E"
        )
}

/// Bytes as a quantity: `512Mi`, `1Gi`, or plain bytes.
fn bytes_quantity(b: i64) -> Quantity {
    const UNITS: [(&str, i64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if b >= size && b % size == 0 {
            return Quantity(format!("{}{unit}", b / size));
        }
    }
    Quantity(b.to_string())
}
