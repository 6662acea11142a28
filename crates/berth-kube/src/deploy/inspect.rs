//! The project's objects on a cluster: status, logs, delete (by the part-of label).

use std::pin::Pin;

use futures_util::io::AsyncBufReadExt;
use futures_util::stream::{self, Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, LogParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::apply::rollout;
use super::{selector, Cluster, Error};
use crate::{labels, FIELD_MANAGER};

/// The project's objects and how they are doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectStatus {
    pub project: String,
    pub namespace: String,
    pub deployments: Vec<DeploymentStatus>,
    pub services: Vec<ServiceStatus>,
    pub volumes: Vec<PvcStatus>,
    pub pods: Vec<PodStatus>,
}

impl ProjectStatus {
    /// Whether the cluster has nothing of the project.
    pub fn is_empty(&self) -> bool {
        self.deployments.is_empty()
            && self.services.is_empty()
            && self.volumes.is_empty()
            && self.pods.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    pub name: String,
    /// The compose service (its `app.kubernetes.io/name` label).
    pub service: Option<String>,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// The images of its containers.
    pub images: Vec<String>,
    /// Every replica updated and available.
    pub rolled_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub type_: String,
    pub cluster_ip: Option<String>,
    /// Load balancer ingress addresses.
    pub external: Vec<String>,
    pub ports: Vec<PortStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub name: Option<String>,
    pub port: i32,
    pub target_port: Option<String>,
    pub protocol: String,
    pub node_port: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvcStatus {
    pub name: String,
    pub phase: String,
    /// The requested size (or the bound capacity).
    pub size: Option<String>,
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodStatus {
    pub name: String,
    pub service: Option<String>,
    pub phase: String,
    /// Ready containers.
    pub ready: usize,
    pub containers: usize,
    pub restarts: i32,
    /// Why a container is waiting (`CrashLoopBackOff`, `ImagePullBackOff`...).
    pub reason: Option<String>,
}

/// An object found (and deleted, or kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// What [`delete`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeleteReport {
    pub deleted: Vec<ObjectRef>,
    /// PersistentVolumeClaims left in place (`volumes: false`).
    pub kept: Vec<ObjectRef>,
}

/// One log line of a project's pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub pod: String,
    pub service: Option<String>,
    /// Set when the pod has more than one container.
    pub container: Option<String>,
    pub line: String,
}

/// Options for [`logs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Only this compose service's pods.
    pub service: Option<String>,
    /// The last N lines of each container.
    pub tail: Option<i64>,
    /// Keep streaming until the containers stop (or the caller drops the future).
    pub follow: bool,
}

fn part_of(project: &str) -> String {
    selector(&[(labels::PART_OF, project)])
}

async fn list<K>(cluster: &Cluster, sel: &str) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client().clone(), &cluster.namespace);
    let mut items = api
        .list(&ListParams::default().labels(sel))
        .await
        .map_err(|e| {
            cluster.err(
                &format!(
                    "listing {}s in namespace {}",
                    K::kind(&()),
                    cluster.namespace
                ),
                e,
            )
        })?
        .items;
    items.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    Ok(items)
}

fn service_label(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<String> {
    let l = meta.labels.as_ref()?;
    l.get(labels::COMPOSE_SERVICE)
        .or_else(|| l.get(labels::NAME))
        .cloned()
}

/// The project's Deployments, Services, PersistentVolumeClaims and Pods in the cluster's
/// namespace.
pub async fn status(cluster: &Cluster, project: &str) -> Result<ProjectStatus, Error> {
    let sel = part_of(project);
    let deployments = list::<Deployment>(cluster, &sel)
        .await?
        .into_iter()
        .map(|d| {
            let r = rollout(&d);
            DeploymentStatus {
                name: d.metadata.name.clone().unwrap_or_default(),
                service: service_label(&d.metadata),
                desired: r.desired,
                ready: r.ready,
                updated: r.updated,
                available: r.available,
                images: d
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .map(|s| {
                        s.containers
                            .iter()
                            .filter_map(|c| c.image.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
                rolled_out: r.done,
            }
        })
        .collect();
    let services = list::<Service>(cluster, &sel)
        .await?
        .into_iter()
        .map(|s| {
            let spec = s.spec.clone().unwrap_or_default();
            ServiceStatus {
                name: s.metadata.name.clone().unwrap_or_default(),
                type_: spec.type_.clone().unwrap_or_else(|| "ClusterIP".into()),
                cluster_ip: spec.cluster_ip.clone(),
                external: s
                    .status
                    .and_then(|st| st.load_balancer)
                    .and_then(|lb| lb.ingress)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|i| i.ip.or(i.hostname))
                    .collect(),
                ports: spec
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| PortStatus {
                        name: p.name,
                        port: p.port,
                        target_port: p.target_port.map(|t| match t {
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => {
                                i.to_string()
                            }
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                                s,
                            ) => s,
                        }),
                        protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
                        node_port: p.node_port,
                    })
                    .collect(),
            }
        })
        .collect();
    let volumes = list::<PersistentVolumeClaim>(cluster, &sel)
        .await?
        .into_iter()
        .map(|p| {
            let spec = p.spec.clone().unwrap_or_default();
            let st = p.status.clone().unwrap_or_default();
            let size = st
                .capacity
                .and_then(|c| c.get("storage").map(|q| q.0.clone()))
                .or_else(|| {
                    spec.resources
                        .and_then(|r| r.requests)
                        .and_then(|r| r.get("storage").map(|q| q.0.clone()))
                });
            PvcStatus {
                name: p.metadata.name.clone().unwrap_or_default(),
                phase: st.phase.unwrap_or_else(|| "Pending".into()),
                size,
                storage_class: spec.storage_class_name,
            }
        })
        .collect();
    let pods = list::<Pod>(cluster, &sel)
        .await?
        .into_iter()
        .map(|p| {
            let st = p.status.clone().unwrap_or_default();
            let cs = st.container_statuses.unwrap_or_default();
            let containers = p
                .spec
                .as_ref()
                .map(|s| s.containers.len())
                .unwrap_or(cs.len())
                .max(cs.len());
            PodStatus {
                name: p.metadata.name.clone().unwrap_or_default(),
                service: service_label(&p.metadata),
                phase: st.phase.unwrap_or_else(|| "Unknown".into()),
                ready: cs.iter().filter(|c| c.ready).count(),
                containers,
                restarts: cs.iter().map(|c| c.restart_count).sum(),
                reason: cs.iter().filter_map(|c| c.state.as_ref()).find_map(|s| {
                    s.waiting
                        .as_ref()
                        .and_then(|w| w.reason.clone())
                        .or_else(|| s.terminated.as_ref().and_then(|t| t.reason.clone()))
                }),
            }
        })
        .collect();
    Ok(ProjectStatus {
        project: project.to_string(),
        namespace: cluster.namespace.clone(),
        deployments,
        services,
        volumes,
        pods,
    })
}

type Lines = Pin<Box<dyn Stream<Item = LogLine> + Send>>;

/// The logs of the project's pods (one service's with `opts.service`), line by line to
/// `on_line`, interleaved as they come. Returns when every stream ends.
pub async fn logs<F: FnMut(LogLine)>(
    cluster: &Cluster,
    project: &str,
    opts: &LogOptions,
    mut on_line: F,
) -> Result<(), Error> {
    let mut pairs = vec![(labels::PART_OF, project)];
    if let Some(s) = &opts.service {
        pairs.push((labels::NAME, s.as_str()));
    }
    let pods = list::<Pod>(cluster, &selector(&pairs)).await?;
    if pods.is_empty() {
        let what = match &opts.service {
            Some(s) => format!("service {s} of project {project}"),
            None => format!("project {project}"),
        };
        return Err(Error::Api(format!(
            "no pods of {what} in namespace {} (context {:?}): deploy it first, or pick the \
             namespace with -n",
            cluster.namespace, cluster.context
        )));
    }
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), &cluster.namespace);
    let mut streams: Vec<Lines> = Vec::new();
    for p in &pods {
        let pod = p.metadata.name.clone().unwrap_or_default();
        let service = service_label(&p.metadata);
        let containers: Vec<String> = p
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let many = containers.len() > 1;
        let targets: Vec<Option<String>> = if containers.is_empty() {
            vec![None]
        } else {
            containers.into_iter().map(Some).collect()
        };
        for c in targets {
            let lp = LogParams {
                container: c.clone(),
                follow: opts.follow,
                tail_lines: opts.tail,
                ..Default::default()
            };
            let reader = api
                .log_stream(&pod, &lp)
                .await
                .map_err(|e| cluster.err(&format!("reading the logs of pod {pod}"), e))?;
            let (pod, service) = (pod.clone(), service.clone());
            let container = if many { c } else { None };
            let lines = Box::pin(reader).lines().map(move |l| LogLine {
                pod: pod.clone(),
                service: service.clone(),
                container: container.clone(),
                line: match l {
                    Ok(l) => l,
                    Err(e) => format!("(log stream ended: {e})"),
                },
            });
            streams.push(Box::pin(lines));
        }
    }
    let mut all = stream::select_all(streams);
    while let Some(l) = all.next().await {
        on_line(l);
    }
    Ok(())
}

async fn delete_kind<K>(
    cluster: &Cluster,
    sel: &str,
    report: &mut DeleteReport,
    keep: bool,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    let api: Api<K> = Api::namespaced(cluster.client().clone(), &cluster.namespace);
    for o in list::<K>(cluster, sel).await? {
        let name = o.meta().name.clone().unwrap_or_default();
        let r = ObjectRef {
            kind: kind.clone(),
            name: name.clone(),
            namespace: cluster.namespace.clone(),
        };
        if keep {
            report.kept.push(r);
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => report.deleted.push(r),
            // Gone meanwhile: what we wanted.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(cluster.err(
                    &format!("deleting {kind} {name} in namespace {}", cluster.namespace),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Delete everything of the project that Berth manages (labels part-of=`project` and
/// managed-by=berth) in the cluster's namespace: Deployments, Services, ConfigMaps, Secrets,
/// and PersistentVolumeClaims only with `volumes` (like `compose down -v`). The namespace
/// itself stays.
pub async fn delete(
    cluster: &Cluster,
    project: &str,
    volumes: bool,
) -> Result<DeleteReport, Error> {
    let sel = selector(&[
        (labels::PART_OF, project),
        (labels::MANAGED_BY, FIELD_MANAGER),
    ]);
    let mut report = DeleteReport::default();
    delete_kind::<Deployment>(cluster, &sel, &mut report, false).await?;
    delete_kind::<Service>(cluster, &sel, &mut report, false).await?;
    delete_kind::<ConfigMap>(cluster, &sel, &mut report, false).await?;
    delete_kind::<Secret>(cluster, &sel, &mut report, false).await?;
    delete_kind::<PersistentVolumeClaim>(cluster, &sel, &mut report, !volumes).await?;
    Ok(report)
}
