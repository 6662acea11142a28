//! Server-side apply of the generated objects, rollout waiting, failure diagnosis.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_compose::Project;
use bollard::auth::DockerCredentials;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::images::pin_images;
use super::{selector, Cluster, Error};
use crate::{generate, GenerateOptions, Object, FIELD_MANAGER};

/// Credentials for the registry of an image reference (the CLI reads the user's docker
/// config), used by `push`.
pub type RegistryAuth = Arc<dyn Fn(&str) -> Option<DockerCredentials> + Send + Sync>;

/// Options for [`deploy`].
#[derive(Clone)]
pub struct DeployOptions {
    /// How to generate the objects. `images` there overrides a service's image before it is
    /// pinned.
    pub generate: GenerateOptions,
    /// Push images built by the project (`build:` with `image:`) or with no registry digest
    /// before pinning them.
    pub push: bool,
    /// How long to wait for all rollouts.
    pub timeout: Duration,
    /// The local engine, asked for image digests (and used to push).
    pub engine: Option<bollard::Docker>,
    /// Registry credentials for `push`.
    pub registry_auth: Option<RegistryAuth>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            generate: GenerateOptions::default(),
            push: false,
            timeout: Duration::from_secs(300),
            engine: None,
            registry_auth: None,
        }
    }
}

/// An object applied (or deleted): its kind, name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedObject {
    pub kind: String,
    pub name: String,
    /// `None` for cluster-scoped objects (the Namespace).
    pub namespace: Option<String>,
}

/// Progress of [`deploy`], in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeployEvent {
    /// Something in the project that does not cross to a cluster as written.
    Warning {
        service: Option<String>,
        key: String,
        message: String,
    },
    /// A push step (`Pushing`, `Pushed`, `<tag>: digest: ...`).
    Push {
        service: String,
        image: String,
        status: String,
    },
    /// A service's image, pinned by digest.
    Pinned {
        service: String,
        image: String,
        reference: String,
    },
    /// An object was applied.
    Applied {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
    /// A Deployment's rollout moved (sent when the numbers change). Until `observed`, the
    /// controller has not seen the applied spec and the numbers are the previous one's.
    Progress {
        deployment: String,
        namespace: String,
        observed: bool,
        desired: i32,
        updated: i32,
        ready: i32,
        available: i32,
    },
    /// A Deployment rolled out: every replica updated and available.
    Available {
        deployment: String,
        namespace: String,
    },
    /// The rollout failed (also the error [`deploy`] returns).
    RolloutFailed(RolloutFailure),
}

/// What [`deploy`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployReport {
    /// The cluster namespace objects without one of their own went to.
    pub namespace: String,
    /// The image each service runs, by digest.
    pub images: BTreeMap<String, String>,
    /// The objects applied, in order.
    pub applied: Vec<AppliedObject>,
}

/// A rollout that failed or timed out, with what the failing pods say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutFailure {
    /// Why, in one line.
    pub reason: String,
    /// The Deployments that did not become available.
    pub deployments: Vec<FailedDeployment>,
}

/// A Deployment that did not become available.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedDeployment {
    pub name: String,
    pub namespace: String,
    /// Its Progressing condition's reason and message, or what was still missing.
    pub reason: String,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// Its pods that are not ready.
    pub pods: Vec<PodDiagnosis>,
}

/// A pod that is not ready: its state, events and the failing container's last log lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodDiagnosis {
    pub pod: String,
    pub phase: String,
    /// The container looked at (the first that is not ready).
    pub container: Option<String>,
    /// Why it is not running: the waiting or terminated reason (`CrashLoopBackOff`...).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub restarts: i32,
    /// The exit code of its last termination, when it has one.
    pub last_exit_code: Option<i32>,
    pub events: Vec<EventInfo>,
    /// The last log lines of the container (of its previous instance when it restarted).
    pub logs: Vec<String>,
    /// Whether `logs` are the previous (crashed) container's.
    pub previous_logs: bool,
    /// Why the logs could not be read, when they could not.
    pub logs_error: Option<String>,
}

/// One Kubernetes event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// `Normal` or `Warning`.
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

impl RolloutFailure {
    /// One line: the reason and which deployments.
    pub fn summary(&self) -> String {
        self.reason.clone()
    }

    /// The failing deployments, their pods, events and last logs, indented, one per line.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for d in &self.deployments {
            let _ = writeln!(
                out,
                "deployment {} ({}/{} ready, {} updated): {}",
                d.name, d.ready, d.desired, d.updated, d.reason
            );
            if d.pods.is_empty() {
                let _ = writeln!(out, "  no pod is failing (or none was created)");
            }
            for p in &d.pods {
                let mut state = p.phase.clone();
                if let Some(r) = &p.reason {
                    let _ = write!(state, ", {r}");
                }
                if let Some(c) = p.last_exit_code {
                    let _ = write!(state, ", last exit code {c}");
                }
                let _ = write!(state, ", {} restarts", p.restarts);
                let _ = writeln!(out, "  pod {}: {state}", p.pod);
                if let Some(m) = &p.message {
                    let _ = writeln!(out, "    {m}");
                }
                if !p.events.is_empty() {
                    let _ = writeln!(out, "    events:");
                    for e in &p.events {
                        let times = if e.count > 1 {
                            format!(" (x{})", e.count)
                        } else {
                            String::new()
                        };
                        let _ =
                            writeln!(out, "      {}  {}  {}{times}", e.type_, e.reason, e.message);
                    }
                }
                let which = match (&p.container, p.previous_logs) {
                    (Some(c), true) => format!("{c} (previous container)"),
                    (Some(c), false) => c.clone(),
                    (None, _) => "the container".into(),
                };
                if let Some(err) = &p.logs_error {
                    let _ = writeln!(out, "    no logs of {which}: {err}");
                } else if p.logs.is_empty() {
                    let _ = writeln!(out, "    no log lines from {which}");
                } else {
                    let _ = writeln!(out, "    last logs of {which}:");
                    for l in &p.logs {
                        let _ = writeln!(out, "      {l}");
                    }
                }
            }
        }
        out
    }
}

/// Generate `project`'s objects with every image pinned by digest, apply them and wait for
/// the rollouts. `on_event` sees warnings, pushes, pins, applies and rollout progress.
pub async fn deploy<F: FnMut(DeployEvent)>(
    cluster: &Cluster,
    project: &Project,
    opts: DeployOptions,
    mut on_event: F,
) -> Result<DeployReport, Error> {
    let images = pin_images(project, &opts, &mut on_event).await?;
    let mut gen_opts = opts.generate.clone();
    gen_opts.images.extend(images.clone());
    let manifests = generate(project, &gen_opts).map_err(|e| Error::Generate(e.to_string()))?;
    for w in &manifests.warnings {
        on_event(DeployEvent::Warning {
            service: w.service.clone(),
            key: w.key.clone(),
            message: w.message.clone(),
        });
    }
    let applied =
        deploy_manifests(cluster, &manifests.objects, opts.timeout, &mut on_event).await?;
    Ok(DeployReport {
        namespace: cluster.namespace.clone(),
        images,
        applied,
    })
}

/// Apply `objects` in order (server-side apply, field manager `berth`, forced) and wait up
/// to `timeout` for each Deployment's rollout.
pub async fn deploy_manifests<F: FnMut(DeployEvent)>(
    cluster: &Cluster,
    objects: &[Object],
    timeout: Duration,
    on_event: &mut F,
) -> Result<Vec<AppliedObject>, Error> {
    let mut applied = Vec::new();
    let mut deployments = Vec::new();
    for o in objects {
        let a = apply_object(cluster, o).await?;
        on_event(DeployEvent::Applied {
            kind: a.kind.clone(),
            name: a.name.clone(),
            namespace: a.namespace.clone(),
        });
        if matches!(o, Object::Deployment(_)) {
            deployments.push((a.namespace.clone().unwrap_or_default(), a.name.clone()));
        }
        applied.push(a);
    }
    wait_rollouts(cluster, &deployments, timeout, on_event).await?;
    Ok(applied)
}

async fn apply_object(cluster: &Cluster, o: &Object) -> Result<AppliedObject, Error> {
    match o {
        Object::Namespace(n) => {
            let name = n.metadata.name.clone().unwrap_or_default();
            let api: Api<k8s_openapi::api::core::v1::Namespace> =
                Api::all(cluster.client().clone());
            api.patch(&name, &apply_params(), &Patch::Apply(n))
                .await
                .map_err(|e| cluster.err(&format!("applying Namespace {name}"), e))?;
            Ok(AppliedObject {
                kind: "Namespace".into(),
                name,
                namespace: None,
            })
        }
        Object::ConfigMap(x) => apply_namespaced(cluster, x).await,
        Object::Secret(x) => apply_namespaced(cluster, x).await,
        Object::PersistentVolumeClaim(x) => apply_namespaced(cluster, x).await,
        Object::Deployment(x) => apply_namespaced(cluster, x).await,
        Object::Service(x) => apply_namespaced(cluster, x).await,
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply_namespaced<K>(cluster: &Cluster, obj: &K) -> Result<AppliedObject, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    let name = obj.meta().name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(Error::Generate(format!("a {kind} without a name")));
    }
    let ns = obj
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.namespace.clone());
    let api: Api<K> = Api::namespaced(cluster.client().clone(), &ns);
    api.patch(&name, &apply_params(), &Patch::Apply(obj))
        .await
        .map_err(|e| cluster.err(&format!("applying {kind} {name} in namespace {ns}"), e))?;
    Ok(AppliedObject {
        kind,
        name,
        namespace: Some(ns),
    })
}

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollout {
    /// The controller has seen the latest generation.
    pub observed: bool,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The controller has seen the latest spec and every replica is updated and available
    /// (and no old one is left).
    pub done: bool,
    /// `ProgressDeadlineExceeded`: the message of the Progressing condition.
    pub failed: Option<String>,
}

pub(crate) fn rollout(d: &Deployment) -> Rollout {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = st.observed_generation.unwrap_or(0) >= generation;
    let updated = st.updated_replicas.unwrap_or(0);
    let ready = st.ready_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let failed = st
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| {
            let m = c.message.unwrap_or_default();
            if m.is_empty() {
                "ProgressDeadlineExceeded".to_string()
            } else {
                format!("ProgressDeadlineExceeded: {m}")
            }
        });
    Rollout {
        observed,
        desired,
        updated,
        ready,
        available,
        done: observed && updated == desired && available == desired && total <= desired,
        failed: if observed { failed } else { None },
    }
}

/// How often rollouts are polled.
const POLL: Duration = Duration::from_millis(700);
/// How many log lines a diagnosis keeps.
const LOG_LINES: i64 = 20;
/// How many events per pod a diagnosis keeps (the latest).
const EVENTS: usize = 10;
/// How many failing pods per Deployment are diagnosed.
const PODS: usize = 3;

async fn wait_rollouts<F: FnMut(DeployEvent)>(
    cluster: &Cluster,
    deployments: &[(String, String)],
    timeout: Duration,
    on_event: &mut F,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let mut last: BTreeMap<(String, String), Rollout> = BTreeMap::new();
    let mut pending: Vec<(String, String)> = deployments.to_vec();
    loop {
        let mut still = Vec::new();
        let mut failed = Vec::new();
        for (ns, name) in &pending {
            let api: Api<Deployment> = Api::namespaced(cluster.client().clone(), ns);
            let d = api
                .get(name)
                .await
                .map_err(|e| cluster.err(&format!("reading deployment {name} in {ns}"), e))?;
            let r = rollout(&d);
            let key = (ns.clone(), name.clone());
            let moved = last.get(&key).is_none_or(|p| {
                (p.observed, p.desired, p.updated, p.ready, p.available)
                    != (r.observed, r.desired, r.updated, r.ready, r.available)
            });
            if moved {
                on_event(DeployEvent::Progress {
                    deployment: name.clone(),
                    namespace: ns.clone(),
                    observed: r.observed,
                    desired: r.desired,
                    updated: r.updated,
                    ready: r.ready,
                    available: r.available,
                });
            }
            if r.done {
                on_event(DeployEvent::Available {
                    deployment: name.clone(),
                    namespace: ns.clone(),
                });
            } else if let Some(why) = &r.failed {
                failed.push((ns.clone(), d, why.clone()));
            } else {
                still.push(key.clone());
            }
            last.insert(key, r);
        }
        if !failed.is_empty() {
            let mut out = Vec::new();
            for (ns, d, why) in &failed {
                out.push(diagnose(cluster, ns, d, why).await);
            }
            let names: Vec<&str> = out.iter().map(|d| d.name.as_str()).collect();
            let reason = format!(
                "rollout of deployment {} failed: {}",
                names.join(", "),
                failed
                    .first()
                    .map(|(_, _, w)| w.as_str())
                    .unwrap_or_default()
            );
            return Err(fail(on_event, reason, out));
        }
        if still.is_empty() {
            return Ok(());
        }
        pending = still;
        let now = Instant::now();
        if now >= deadline {
            let mut out = Vec::new();
            for (ns, name) in &pending {
                let api: Api<Deployment> = Api::namespaced(cluster.client().clone(), ns);
                let d = api
                    .get(name)
                    .await
                    .map_err(|e| cluster.err(&format!("reading deployment {name} in {ns}"), e))?;
                let r = rollout(&d);
                let why = format!(
                    "{}/{} ready, {}/{} updated, {}/{} available",
                    r.ready, r.desired, r.updated, r.desired, r.available, r.desired
                );
                out.push(diagnose(cluster, ns, &d, &why).await);
            }
            let shown: Vec<String> = out
                .iter()
                .map(|d| format!("{} ({}/{} ready)", d.name, d.ready, d.desired))
                .collect();
            let reason = format!(
                "rollout timed out after {}: deployment {} not available",
                human(timeout),
                shown.join(", ")
            );
            return Err(fail(on_event, reason, out));
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

fn fail<F: FnMut(DeployEvent)>(
    on_event: &mut F,
    reason: String,
    deployments: Vec<FailedDeployment>,
) -> Error {
    let f = RolloutFailure {
        reason,
        deployments,
    };
    on_event(DeployEvent::RolloutFailed(f.clone()));
    Error::Rollout(Box::new(f))
}

/// `90s`, `5m`, `1m30s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// The failing pods of `d`: their state, events and last logs. Errors reading them end up
/// in the diagnosis, not in the result: the rollout failure is the error worth reporting.
async fn diagnose(cluster: &Cluster, ns: &str, d: &Deployment, why: &str) -> FailedDeployment {
    let r = rollout(d);
    let name = d.metadata.name.clone().unwrap_or_default();
    let labels: Vec<(String, String)> = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let pods_api: Api<Pod> = Api::namespaced(cluster.client().clone(), ns);
    let pods = if pairs.is_empty() {
        Vec::new()
    } else {
        pods_api
            .list(&ListParams::default().labels(&selector(&pairs)))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for p in pods.iter().filter(|p| !pod_ready(p)).take(PODS) {
        out.push(diagnose_pod(cluster, ns, p).await);
    }
    FailedDeployment {
        name,
        namespace: ns.to_string(),
        reason: why.to_string(),
        desired: r.desired,
        updated: r.updated,
        ready: r.ready,
        available: r.available,
        pods: out,
    }
}

fn pod_ready(p: &Pod) -> bool {
    let st = p.status.clone().unwrap_or_default();
    st.phase.as_deref() == Some("Running")
        && st
            .container_statuses
            .unwrap_or_default()
            .iter()
            .all(|c| c.ready)
}

async fn diagnose_pod(cluster: &Cluster, ns: &str, p: &Pod) -> PodDiagnosis {
    let pod = p.metadata.name.clone().unwrap_or_default();
    let st = p.status.clone().unwrap_or_default();
    let statuses = st.container_statuses.clone().unwrap_or_default();
    let failing = statuses.iter().find(|c| !c.ready);
    let container = failing.map(|c| c.name.clone()).or_else(|| {
        p.spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
    });
    let waiting = failing
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.clone());
    let terminated = failing
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.clone());
    let last_terminated = failing
        .and_then(|c| c.last_state.as_ref())
        .and_then(|s| s.terminated.clone());
    let restarts = failing.map(|c| c.restart_count).unwrap_or(0);
    let reason = waiting
        .as_ref()
        .and_then(|w| w.reason.clone())
        .or_else(|| terminated.as_ref().and_then(|t| t.reason.clone()))
        .or_else(|| st.reason.clone());
    let message = waiting
        .as_ref()
        .and_then(|w| w.message.clone())
        .or_else(|| terminated.as_ref().and_then(|t| t.message.clone()))
        .or_else(|| st.message.clone())
        .filter(|m| !m.is_empty());
    let last_exit_code = terminated
        .as_ref()
        .or(last_terminated.as_ref())
        .map(|t| t.exit_code);

    let events_api: Api<Event> = Api::namespaced(cluster.client().clone(), ns);
    let events = match events_api
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
    {
        Ok(l) => {
            let all: Vec<EventInfo> = l
                .items
                .into_iter()
                .map(|e| EventInfo {
                    type_: e.type_.unwrap_or_default(),
                    reason: e.reason.unwrap_or_default(),
                    message: e.message.unwrap_or_default().trim_end().to_string(),
                    count: e.count.unwrap_or(1),
                })
                .collect();
            let skip = all.len().saturating_sub(EVENTS);
            all.into_iter().skip(skip).collect()
        }
        Err(e) => vec![EventInfo {
            type_: "Error".into(),
            reason: "EventsUnreadable".into(),
            message: cluster.err("reading events", e).to_string(),
            count: 1,
        }],
    };

    let pods_api: Api<Pod> = Api::namespaced(cluster.client().clone(), ns);
    let previous = restarts > 0 || last_terminated.is_some();
    let params = |previous: bool| LogParams {
        container: container.clone(),
        previous,
        tail_lines: Some(LOG_LINES),
        ..Default::default()
    };
    let mut got = pods_api.logs(&pod, &params(previous)).await;
    let mut previous_logs = previous;
    if previous && got.is_err() {
        got = pods_api.logs(&pod, &params(false)).await;
        previous_logs = false;
    }
    let (logs, logs_error) = match got {
        Ok(text) => (text.lines().map(str::to_string).collect(), None),
        Err(e) => (Vec::new(), Some(cluster.err("reading logs", e).to_string())),
    };
    PodDiagnosis {
        pod,
        phase: st.phase.unwrap_or_else(|| "Unknown".into()),
        container,
        reason,
        message,
        restarts,
        last_exit_code,
        events,
        logs,
        previous_logs,
        logs_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn dep(gen: i64, replicas: i32, st: DeploymentStatus) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.generation = Some(gen);
        d.spec = Some(DeploymentSpec {
            replicas: Some(replicas),
            ..Default::default()
        });
        d.status = Some(st);
        d
    }

    #[test]
    fn rollout_needs_the_latest_generation_and_every_replica() {
        let ready = DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(2),
            updated_replicas: Some(2),
            ready_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        };
        assert!(rollout(&dep(2, 2, ready.clone())).done);
        // The controller has not seen generation 3 yet: the old status says nothing.
        assert!(!rollout(&dep(3, 2, ready.clone())).done);
        let half = DeploymentStatus {
            available_replicas: Some(1),
            ..ready.clone()
        };
        let r = rollout(&dep(2, 2, half));
        assert!(!r.done && r.failed.is_none());
        assert_eq!((r.desired, r.updated, r.available), (2, 2, 1));
        // An old replica still running.
        let old = DeploymentStatus {
            replicas: Some(3),
            ..ready.clone()
        };
        assert!(!rollout(&dep(2, 2, old)).done);
        let stuck = DeploymentStatus {
            available_replicas: Some(0),
            conditions: Some(vec![DeploymentCondition {
                type_: "Progressing".into(),
                status: "False".into(),
                reason: Some("ProgressDeadlineExceeded".into()),
                message: Some("ReplicaSet \"bad-1\" has timed out progressing.".into()),
                ..Default::default()
            }]),
            ..ready
        };
        let r = rollout(&dep(2, 2, stuck));
        assert!(!r.done);
        assert_eq!(
            r.failed.as_deref(),
            Some("ProgressDeadlineExceeded: ReplicaSet \"bad-1\" has timed out progressing.")
        );
    }

    #[test]
    fn report_lists_pods_events_and_logs() {
        let f = RolloutFailure {
            reason: "rollout of deployment bad failed: ProgressDeadlineExceeded".into(),
            deployments: vec![FailedDeployment {
                name: "bad".into(),
                namespace: "default".into(),
                reason: "ProgressDeadlineExceeded".into(),
                desired: 1,
                updated: 1,
                ready: 0,
                available: 0,
                pods: vec![PodDiagnosis {
                    pod: "bad-1-abc".into(),
                    phase: "Running".into(),
                    container: Some("bad".into()),
                    reason: Some("CrashLoopBackOff".into()),
                    message: None,
                    restarts: 4,
                    last_exit_code: Some(1),
                    events: vec![EventInfo {
                        type_: "Warning".into(),
                        reason: "BackOff".into(),
                        message: "Back-off restarting failed container".into(),
                        count: 5,
                    }],
                    logs: vec!["panic: boom".into()],
                    previous_logs: true,
                    logs_error: None,
                }],
            }],
        };
        let r = f.report();
        assert!(
            r.contains("pod bad-1-abc: Running, CrashLoopBackOff, last exit code 1, 4 restarts"),
            "{r}"
        );
        assert!(
            r.contains("Warning  BackOff  Back-off restarting failed container (x5)"),
            "{r}"
        );
        assert!(
            r.contains("last logs of bad (previous container):\n      panic: boom"),
            "{r}"
        );
        let json = serde_json::to_value(DeployEvent::RolloutFailed(f)).unwrap();
        assert_eq!(json["event"], "rollout_failed");
        assert_eq!(json["deployments"][0]["pods"][0]["logs"][0], "panic: boom");
    }

    #[test]
    fn durations() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
