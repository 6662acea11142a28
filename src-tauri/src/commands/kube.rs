//! Deploy to Kubernetes from the Compose page, over the berth-kube crate: the kubeconfig's
//! contexts, deploy (images pinned by the engine's digests, pushed first on request with the
//! app's saved registry logins) with its progress on a channel, the project's status in a
//! namespace, and delete. The flags map as `berth kube deploy`'s do: the namespace picks the
//! cluster namespace, and one other than the context's own is also generated (and applied)
//! as a Namespace object.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_compose::Project;
use berth_desktop_dto::{
    AppError, ErrorCode, KubeContext, KubeContexts, KubeDeleteRequest, KubeDeleteResult,
    KubeDeployRequest, KubeDeployResult, KubeDeploymentStatus, KubeEvent, KubeObject,
    KubePodStatus, KubePort, KubeProjectRequest, KubeServiceStatus, KubeServiceType, KubeStatus,
    KubeVolumeStatus,
};
use berth_kube::deploy::{self as kd, Cluster, DeployEvent, DeployOptions, Target};
use berth_kube::generate::{is_dns1123_label, ServiceType};
use berth_kube::GenerateOptions;
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{self, Res};
use crate::App;

/// The longest rollout wait accepted (a day).
const MAX_TIMEOUT_SECS: u32 = 86_400;

/// A berth-kube error as the page sees it: the library's message (a failed rollout's with
/// its report of the failing pods' events and last logs).
/// The library's image errors name the CLI's flag; here the same switch is a checkbox.
fn in_app_words(m: &str) -> String {
    m.replace(
        "berth compose build, then berth kube deploy --push",
        "Up with Rebuild, then Deploy with \"Push images first\"",
    )
    .replace("--push", "\"Push images first\"")
}

pub fn kube_err(e: kd::Error) -> AppError {
    match e {
        kd::Error::Image(m) => AppError::new(ErrorCode::InvalidInput, in_app_words(&m)),
        kd::Error::Config(m) | kd::Error::Generate(m) => AppError::new(ErrorCode::InvalidInput, m),
        kd::Error::Unreachable(m) | kd::Error::Api(m) => AppError::new(ErrorCode::Kubernetes, m),
        kd::Error::Rollout(r) => AppError::new(
            ErrorCode::Kubernetes,
            format!("{}\n{}", r.summary(), r.report().trim_end()),
        ),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// A kubeconfig path from the page: `~` expanded, absolute; blank is None (the default).
fn kubeconfig_path(p: Option<&str>) -> Res<Option<PathBuf>> {
    let Some(p) = p.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = if p == "~" {
        home().unwrap_or_else(|| PathBuf::from("/"))
    } else if let Some(rest) = p.strip_prefix("~/") {
        home().unwrap_or_else(|| PathBuf::from("/")).join(rest)
    } else {
        PathBuf::from(p)
    };
    if !path.is_absolute() {
        return Err(error::invalid(format!(
            "The kubeconfig \"{p}\" is not an absolute path: write it from / (e.g. /home/me/.kube/config)"
        )));
    }
    Ok(Some(path))
}

/// The files the default kubeconfig lookup reads: each of `$KUBECONFIG`'s, else
/// `~/.kube/config`.
fn default_kubeconfig_files() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    match home() {
        Some(h) => vec![h.join(".kube/config")],
        None => Vec::new(),
    }
}

/// The contexts of `kubeconfig` (None: the default lookup). No file at all is not an
/// error: the result says where the app looked, for the page's empty state.
pub fn read_contexts(kubeconfig: Option<PathBuf>) -> Res<KubeContexts> {
    let searched = match &kubeconfig {
        Some(p) => vec![p.clone()],
        None => default_kubeconfig_files(),
    };
    let shown: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    if !searched.iter().any(|p| p.is_file()) {
        return Ok(KubeContexts {
            kubeconfig: None,
            searched: shown,
            current: None,
            contexts: Vec::new(),
        });
    }
    let c = kd::contexts(kubeconfig.as_deref()).map_err(kube_err)?;
    Ok(KubeContexts {
        kubeconfig: Some(c.kubeconfig),
        searched: shown,
        current: c.current,
        contexts: c
            .contexts
            .into_iter()
            .map(|x| KubeContext {
                name: x.name,
                cluster: x.cluster,
                namespace: x.namespace,
                server: x.server,
            })
            .collect(),
    })
}

/// A namespace from the page: blank is None (the context's), else a DNS-1123 label.
pub fn namespace_of(ns: Option<&str>) -> Res<Option<String>> {
    let Some(ns) = ns.filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    if !is_dns1123_label(ns) {
        return Err(error::invalid(format!(
            "\"{ns}\" is not a valid namespace: use at most 63 lowercase letters, digits and \
             '-', starting and ending with a letter or digit (like my-app)"
        )));
    }
    Ok(Some(ns.to_string()))
}

fn target_of(
    kubeconfig: Option<&str>,
    context: Option<&str>,
    namespace: Option<&str>,
) -> Res<Target> {
    Ok(Target {
        kubeconfig: kubeconfig_path(kubeconfig)?,
        context: context
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        namespace: namespace_of(namespace)?,
    })
}

async fn connect(target: &Target) -> Res<Cluster> {
    kd::connect(target).await.map_err(kube_err)
}

/// The namespace a context works in when none is asked for: its own, else `default`.
fn context_namespace(target: &Target, cluster: &Cluster) -> String {
    kd::contexts(target.kubeconfig.as_deref())
        .ok()
        .and_then(|c| c.contexts.into_iter().find(|x| x.name == cluster.context))
        .and_then(|x| x.namespace)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// What generate is told, as `berth kube deploy` does with `-n`: a namespace other than the
/// context's own is put on every object and applied first as a Namespace object.
pub fn generate_options(
    service_type: KubeServiceType,
    namespace: Option<&str>,
    context_ns: &str,
) -> GenerateOptions {
    GenerateOptions {
        namespace: namespace.filter(|n| *n != context_ns).map(str::to_string),
        service_type: match service_type {
            KubeServiceType::ClusterIp => ServiceType::ClusterIp,
            KubeServiceType::NodePort => ServiceType::NodePort,
            KubeServiceType::LoadBalancer => ServiceType::LoadBalancer,
        },
        ..Default::default()
    }
}

/// A deploy event as the page's DTO.
pub fn event_dto(e: DeployEvent) -> KubeEvent {
    match e {
        DeployEvent::Warning {
            service,
            key,
            message,
        } => KubeEvent::Warning {
            service,
            key,
            message,
        },
        DeployEvent::Push {
            service,
            image,
            status,
        } => KubeEvent::Push {
            service,
            image,
            status,
        },
        DeployEvent::Pinned {
            service,
            image,
            reference,
        } => KubeEvent::Pinned {
            service,
            image,
            reference,
        },
        DeployEvent::Applied {
            kind,
            name,
            namespace,
        } => KubeEvent::Applied {
            kind,
            name,
            namespace,
        },
        DeployEvent::Progress {
            deployment,
            namespace,
            observed,
            desired,
            updated,
            ready,
            available,
        } => KubeEvent::Progress {
            deployment,
            namespace,
            observed,
            desired,
            updated,
            ready,
            available,
        },
        DeployEvent::Available {
            deployment,
            namespace,
        } => KubeEvent::Available {
            deployment,
            namespace,
        },
        DeployEvent::RolloutFailed(f) => KubeEvent::RolloutFailed {
            reason: f.summary(),
            deployments: f.deployments.iter().map(|d| d.name.clone()).collect(),
            report: f.report(),
        },
    }
}

async fn load_project(target: berth_desktop_dto::ComposeTarget) -> Res<Project> {
    tokio::task::spawn_blocking(move || {
        let opts = crate::commands::compose::load_options(&target)?;
        berth_compose::load(&opts).map_err(|e| error::invalid(e.to_string()))
    })
    .await
    .map_err(|e| error::system(e.to_string()))?
}

/// The kubeconfig's contexts: `kubeconfig` when the page chose a file, else `$KUBECONFIG`,
/// else `~/.kube/config`.
#[tauri::command]
pub async fn kube_contexts(kubeconfig: Option<String>) -> Res<KubeContexts> {
    let path = kubeconfig_path(kubeconfig.as_deref())?;
    tokio::task::spawn_blocking(move || read_contexts(path))
        .await
        .map_err(|e| error::system(e.to_string()))?
}

/// Deploys the project: pins every image by digest (the engine's; pushing first with
/// `push`), applies the objects server-side and waits for the rollouts, progress on
/// `channel`. A failed rollout fails with the failing pods' events and last logs.
#[tauri::command]
pub async fn kube_deploy(
    app: State<'_, App>,
    req: KubeDeployRequest,
    channel: Channel<KubeEvent>,
) -> Res<KubeDeployResult> {
    if req.timeout_secs == 0 || req.timeout_secs > MAX_TIMEOUT_SECS {
        return Err(error::invalid(format!(
            "The rollout timeout must be 1 to {MAX_TIMEOUT_SECS} seconds, not {}",
            req.timeout_secs
        )));
    }
    let target = target_of(
        req.kubeconfig.as_deref(),
        req.context.as_deref(),
        req.namespace.as_deref(),
    )?;
    let project = load_project(req.target).await?;
    // The engine is asked for digests (and pushes): needed unless every image is pinned.
    let pinned = !req.push
        && project
            .services
            .values()
            .all(|s| kd::is_digest_reference(&berth_compose::ops::image_name(&project, s)));
    let engine = match app.engine.docker() {
        Ok(d) => Some(d),
        Err(_) if pinned => None,
        Err(e) => {
            return Err(AppError::new(
                e.code,
                format!(
                    "{} (the deploy asks the engine for image digests)",
                    e.message
                ),
            ))
        }
    };
    let cluster = connect(&target).await?;
    let context_ns = context_namespace(&target, &cluster);
    let opts = DeployOptions {
        generate: generate_options(req.service_type, target.namespace.as_deref(), &context_ns),
        push: req.push,
        timeout: Duration::from_secs(u64::from(req.timeout_secs)),
        engine,
        registry_auth: Some(Arc::new(crate::commands::images::credentials_for)),
    };
    for w in &project.warnings {
        let _ = channel.send(KubeEvent::Warning {
            service: None,
            key: String::new(),
            message: w.clone(),
        });
    }
    let report = kd::deploy(&cluster, &project, opts, |e| {
        // The page may have gone: the deploy still runs to its end.
        let _ = channel.send(event_dto(e));
    })
    .await
    .map_err(kube_err)?;
    Ok(KubeDeployResult {
        context: cluster.context.clone(),
        server: cluster.server.clone(),
        namespace: report.namespace,
        images: report.images,
        applied: report
            .applied
            .into_iter()
            .map(|a| KubeObject {
                kind: a.kind,
                name: a.name,
                namespace: a.namespace,
            })
            .collect(),
    })
}

fn project_name(project: &str) -> Res<&str> {
    let p = project.trim();
    if p.is_empty() {
        return Err(error::invalid("The project name is empty"));
    }
    Ok(p)
}

/// The project's Deployments, Services, PersistentVolumeClaims and Pods in the namespace.
#[tauri::command]
pub async fn kube_status(req: KubeProjectRequest) -> Res<KubeStatus> {
    let project = project_name(&req.project)?;
    let target = target_of(
        req.kubeconfig.as_deref(),
        req.context.as_deref(),
        req.namespace.as_deref(),
    )?;
    let cluster = connect(&target).await?;
    let st = kd::status(&cluster, project).await.map_err(kube_err)?;
    Ok(status_dto(st, &cluster))
}

pub fn status_dto(st: kd::ProjectStatus, cluster: &Cluster) -> KubeStatus {
    KubeStatus {
        project: st.project,
        context: cluster.context.clone(),
        server: cluster.server.clone(),
        namespace: st.namespace,
        deployments: st
            .deployments
            .into_iter()
            .map(|d| KubeDeploymentStatus {
                name: d.name,
                service: d.service,
                desired: d.desired,
                ready: d.ready,
                updated: d.updated,
                available: d.available,
                images: d.images,
                rolled_out: d.rolled_out,
            })
            .collect(),
        services: st
            .services
            .into_iter()
            .map(|s| KubeServiceStatus {
                name: s.name,
                service_type: s.type_,
                cluster_ip: s.cluster_ip,
                external: s.external,
                ports: s
                    .ports
                    .into_iter()
                    .map(|p| KubePort {
                        name: p.name,
                        port: p.port,
                        target_port: p.target_port,
                        protocol: p.protocol,
                        node_port: p.node_port,
                    })
                    .collect(),
            })
            .collect(),
        volumes: st
            .volumes
            .into_iter()
            .map(|v| KubeVolumeStatus {
                name: v.name,
                phase: v.phase,
                size: v.size,
                storage_class: v.storage_class,
            })
            .collect(),
        pods: st
            .pods
            .into_iter()
            .map(|p| KubePodStatus {
                name: p.name,
                service: p.service,
                phase: p.phase,
                ready: u32::try_from(p.ready).unwrap_or(u32::MAX),
                containers: u32::try_from(p.containers).unwrap_or(u32::MAX),
                restarts: p.restarts,
                reason: p.reason,
            })
            .collect(),
    }
}

/// Deletes the project's objects (PersistentVolumeClaims only with `volumes`); the
/// namespace stays.
#[tauri::command]
pub async fn kube_delete(req: KubeDeleteRequest) -> Res<KubeDeleteResult> {
    let project = project_name(&req.project)?;
    let target = target_of(
        req.kubeconfig.as_deref(),
        req.context.as_deref(),
        req.namespace.as_deref(),
    )?;
    let cluster = connect(&target).await?;
    let r = kd::delete(&cluster, project, req.volumes)
        .await
        .map_err(kube_err)?;
    let obj = |o: kd::ObjectRef| KubeObject {
        kind: o.kind,
        name: o.name,
        namespace: Some(o.namespace),
    };
    Ok(KubeDeleteResult {
        deleted: r.deleted.into_iter().map(obj).collect(),
        kept: r.kept.into_iter().map(obj).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:6443\ncontexts:\n- name: a\n  context:\n    cluster: c1\n    user: u\n- name: b\n  context:\n    cluster: c1\n    user: u\n    namespace: apps\nusers:\n- name: u\n  user:\n    token: t\n";

    #[test]
    fn contexts_of_a_chosen_file_and_where_a_missing_one_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        let c = read_contexts(Some(p.clone())).unwrap();
        assert_eq!(c.kubeconfig, None);
        assert_eq!(c.searched, [p.display().to_string()]);
        assert!(c.contexts.is_empty());
        std::fs::write(&p, KUBECONFIG).unwrap();
        let c = read_contexts(Some(p.clone())).unwrap();
        assert_eq!(
            c.kubeconfig.as_deref(),
            Some(p.display().to_string().as_str())
        );
        assert_eq!(c.current.as_deref(), Some("b"));
        let names: Vec<&str> = c.contexts.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c.contexts[1].namespace.as_deref(), Some("apps"));
        assert_eq!(
            c.contexts[0].server.as_deref(),
            Some("https://127.0.0.1:6443")
        );
        // A file that is not a kubeconfig: the library's message, naming it.
        std::fs::write(&p, "clusters: [oops\n").unwrap();
        let e = read_contexts(Some(p.clone())).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message.contains(&p.display().to_string()),
            "{}",
            e.message
        );
    }

    #[test]
    fn kubeconfig_paths_and_namespaces_are_checked() {
        assert_eq!(kubeconfig_path(None).unwrap(), None);
        assert_eq!(kubeconfig_path(Some("  ")).unwrap(), None);
        let e = kubeconfig_path(Some("kube/config")).unwrap_err();
        assert!(e.message.contains("not an absolute path"), "{}", e.message);
        assert_eq!(
            kubeconfig_path(Some("/etc/kube.yaml")).unwrap(),
            Some(PathBuf::from("/etc/kube.yaml"))
        );
        assert_eq!(namespace_of(None).unwrap(), None);
        assert_eq!(namespace_of(Some("")).unwrap(), None);
        assert_eq!(
            namespace_of(Some("my-app")).unwrap().as_deref(),
            Some("my-app")
        );
        for bad in ["My-App", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            let e = namespace_of(Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput);
            assert!(
                e.message.contains("not a valid namespace"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn only_a_namespace_other_than_the_contexts_is_generated() {
        let g = generate_options(KubeServiceType::NodePort, Some("apps"), "apps");
        assert_eq!(g.namespace, None);
        assert_eq!(g.service_type, ServiceType::NodePort);
        let g = generate_options(KubeServiceType::ClusterIp, Some("shop"), "default");
        assert_eq!(g.namespace.as_deref(), Some("shop"));
        assert_eq!(g.service_type, ServiceType::ClusterIp);
        let g = generate_options(KubeServiceType::LoadBalancer, None, "default");
        assert_eq!(g.namespace, None);
        assert_eq!(g.service_type, ServiceType::LoadBalancer);
    }

    #[test]
    fn errors_keep_the_librarys_message_and_a_rollout_its_report() {
        let e = kube_err(kd::Error::Unreachable(
            "cannot reach http://127.0.0.1:1".into(),
        ));
        assert_eq!(e.code, ErrorCode::Kubernetes);
        assert_eq!(e.message, "cannot reach http://127.0.0.1:1");
        let e = kube_err(kd::Error::Image("services.web: no digest".into()));
        assert_eq!(e.code, ErrorCode::InvalidInput);
        let f = kd::RolloutFailure {
            reason: "rollout of deployment web failed: ProgressDeadlineExceeded".into(),
            deployments: vec![kd::FailedDeployment {
                name: "web".into(),
                namespace: "default".into(),
                reason: "ProgressDeadlineExceeded".into(),
                desired: 1,
                updated: 1,
                ready: 0,
                available: 0,
                pods: vec![kd::PodDiagnosis {
                    pod: "web-1".into(),
                    phase: "Running".into(),
                    container: Some("web".into()),
                    reason: Some("CrashLoopBackOff".into()),
                    message: None,
                    restarts: 3,
                    last_exit_code: Some(1),
                    events: vec![kd::EventInfo {
                        type_: "Warning".into(),
                        reason: "BackOff".into(),
                        message: "Back-off restarting failed container".into(),
                        count: 4,
                    }],
                    logs: vec!["panic: no config".into()],
                    previous_logs: true,
                    logs_error: None,
                }],
            }],
        };
        let ev = event_dto(DeployEvent::RolloutFailed(f.clone()));
        match &ev {
            KubeEvent::RolloutFailed {
                deployments,
                report,
                ..
            } => {
                assert_eq!(deployments, &["web"]);
                assert!(report.contains("panic: no config"), "{report}");
            }
            other => panic!("{other:?}"),
        }
        let e = kube_err(kd::Error::Rollout(Box::new(f)));
        assert_eq!(e.code, ErrorCode::Kubernetes);
        let mut lines = e.message.lines();
        assert_eq!(
            lines.next(),
            Some("rollout of deployment web failed: ProgressDeadlineExceeded")
        );
        assert!(
            e.message
                .contains("BackOff  Back-off restarting failed container (x4)"),
            "{}",
            e.message
        );
        assert!(
            e.message.ends_with("      panic: no config"),
            "{}",
            e.message
        );
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["event"], "rollout_failed");
    }

    #[test]
    fn image_errors_name_the_dialogs_checkbox_not_the_cli_flag() {
        let e = kube_err(kd::Error::Image(
            "services.api: image r/api:1 has no registry digest: push it with --push (or berth push r/api:1)".into(),
        ));
        assert_eq!(
            e.message,
            "services.api: image r/api:1 has no registry digest: push it with \"Push images first\" (or berth push r/api:1)"
        );
    }
}
