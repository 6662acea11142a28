//! Deploy, status, logs and delete against a cluster, with the user's kubeconfig (kube-rs).
//!
//! UI-agnostic: progress goes to a callback as [`DeployEvent`]s, results and errors are
//! serde-serialisable structs, so the CLI prints them and the desktop app forwards them.
//!
//! - [`contexts`] lists the kubeconfig's contexts; [`connect`] opens a [`Cluster`] for a
//!   [`Target`] (kubeconfig, context, namespace), checking that the API server answers.
//! - [`deploy`] pins every service image by digest (asking the local engine, pushing first
//!   with `push`), generates the objects, applies them server-side in order and waits for
//!   each Deployment's rollout; a failed rollout comes back with the failing pods' events
//!   and last log lines ([`RolloutFailure`]).
//! - [`status`], [`logs`], [`delete`] find the project's objects by the
//!   `app.kubernetes.io/part-of` label.

mod apply;
mod images;
mod inspect;

pub use apply::{
    deploy, deploy_manifests, AppliedObject, DeployEvent, DeployOptions, DeployReport, EventInfo,
    FailedDeployment, PodDiagnosis, RegistryAuth, RolloutFailure,
};
pub use images::{is_digest_reference, repository_of, same_repository};
pub use inspect::{
    delete, logs, status, DeleteReport, DeploymentStatus, LogLine, LogOptions, ObjectRef,
    PodStatus, PortStatus, ProjectStatus, PvcStatus, ServiceStatus,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};

/// Where to deploy: the kubeconfig (`None`: `$KUBECONFIG`, else `~/.kube/config`), the
/// context (`None`: its current context) and the namespace (`None`: the context's, else
/// `default`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// The contexts of a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contexts {
    /// Where it was read from (a path, or the `KUBECONFIG` list).
    pub kubeconfig: String,
    /// Its `current-context`.
    pub current: Option<String>,
    pub contexts: Vec<ContextInfo>,
}

/// One context of a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextInfo {
    pub name: String,
    pub cluster: String,
    pub namespace: Option<String>,
    /// The cluster's API server URL, when the kubeconfig defines the cluster.
    pub server: Option<String>,
}

/// A connected cluster: a kube-rs client for one context, and the namespace to work in.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    /// The namespace objects without one of their own go to.
    pub namespace: String,
    /// The context used.
    pub context: String,
    /// The API server URL.
    pub server: String,
    /// Where the kubeconfig was read from.
    pub kubeconfig: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .field("context", &self.context)
            .field("server", &self.server)
            .field("kubeconfig", &self.kubeconfig)
            .finish()
    }
}

impl Cluster {
    /// The kube-rs client, for calls this module does not make.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// A cluster for an existing client (tests, or a caller that built its own client).
    pub fn from_client(client: kube::Client, namespace: &str, server: &str) -> Cluster {
        Cluster {
            client,
            namespace: namespace.to_string(),
            context: String::new(),
            server: server.to_string(),
            kubeconfig: String::new(),
        }
    }
}

/// Why an operation failed. Serialises as `{"kind": "...", "detail": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Error {
    /// No kubeconfig, an unknown context, a kubeconfig that cannot be used.
    Config(String),
    /// The API server (or the engine) could not be reached.
    Unreachable(String),
    /// The API server refused a request.
    Api(String),
    /// The project cannot be turned into objects.
    Generate(String),
    /// An image cannot be pinned by digest (not pushed, not local, push failed).
    Image(String),
    /// A Deployment did not become available: what the failing pods say.
    Rollout(Box<RolloutFailure>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(m)
            | Error::Unreachable(m)
            | Error::Api(m)
            | Error::Generate(m)
            | Error::Image(m) => f.write_str(m),
            Error::Rollout(r) => f.write_str(&r.summary()),
        }
    }
}

impl std::error::Error for Error {}

/// The kubeconfig to read: the path given, else `$KUBECONFIG` (a `:`-list, merged, missing
/// files skipped as kubectl does), else `~/.kube/config`. Returns it and where it came from.
fn read_kubeconfig(path: Option<&Path>) -> Result<(Kubeconfig, String), Error> {
    if let Some(p) = path {
        if !p.is_file() {
            return Err(Error::Config(format!(
                "kubeconfig {}: no such file (pass an existing file to --kubeconfig)",
                p.display()
            )));
        }
        let kc = Kubeconfig::read_from(p)
            .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", p.display())))?;
        return Ok((kc, p.display().to_string()));
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let shown = format!("KUBECONFIG={}", list.to_string_lossy());
        let files: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && p.is_file())
            .collect();
        if files.is_empty() {
            return Err(Error::Config(format!(
                "{shown}: none of these files exists (fix KUBECONFIG or pass --kubeconfig FILE)"
            )));
        }
        let mut merged = Kubeconfig::default();
        for f in &files {
            let kc = Kubeconfig::read_from(f)
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", f.display())))?;
            merged = merged
                .merge(kc)
                .map_err(|e| Error::Config(format!("{shown}: {e}")))?;
        }
        let shown = if files.len() == 1 {
            files[0].display().to_string()
        } else {
            shown
        };
        return Ok((merged, shown));
    }
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return Err(Error::Config(
            "no kubeconfig: HOME and KUBECONFIG are not set; pass --kubeconfig FILE".into(),
        ));
    };
    let p = PathBuf::from(home).join(".kube/config");
    if !p.is_file() {
        return Err(Error::Config(format!(
            "no kubeconfig: {} does not exist and KUBECONFIG is not set; pass --kubeconfig FILE, \
             set KUBECONFIG, or create one (e.g. with your cluster's `kubectl config` or \
             `kind`/`minikube`)",
            p.display()
        )));
    }
    let kc = Kubeconfig::read_from(&p)
        .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", p.display())))?;
    Ok((kc, p.display().to_string()))
}

fn context_infos(kc: &Kubeconfig) -> Vec<ContextInfo> {
    kc.contexts
        .iter()
        .map(|c| {
            let cluster = c
                .context
                .as_ref()
                .map(|x| x.cluster.clone())
                .unwrap_or_default();
            let server = kc
                .clusters
                .iter()
                .find(|n| n.name == cluster)
                .and_then(|n| n.cluster.as_ref())
                .and_then(|c| c.server.clone());
            ContextInfo {
                name: c.name.clone(),
                namespace: c.context.as_ref().and_then(|x| x.namespace.clone()),
                cluster,
                server,
            }
        })
        .collect()
}

/// The contexts of the kubeconfig (`None`: `$KUBECONFIG`, else `~/.kube/config`).
pub fn contexts(kubeconfig: Option<&Path>) -> Result<Contexts, Error> {
    let (kc, source) = read_kubeconfig(kubeconfig)?;
    Ok(Contexts {
        kubeconfig: source,
        current: kc.current_context.clone().filter(|c| !c.is_empty()),
        contexts: context_infos(&kc),
    })
}

fn names(infos: &[ContextInfo]) -> String {
    if infos.is_empty() {
        return "it has none".into();
    }
    let n: Vec<&str> = infos.iter().map(|c| c.name.as_str()).collect();
    format!("its contexts: {}", n.join(", "))
}

/// How long [`connect`] waits for the API server's `/version`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Open the cluster of `target`'s context and check that its API server answers
/// (`GET /version`). Errors name the kubeconfig and the context, and the server URL when it
/// cannot be reached.
pub async fn connect(target: &Target) -> Result<Cluster, Error> {
    let (kc, source) = read_kubeconfig(target.kubeconfig.as_deref())?;
    let infos = context_infos(&kc);
    let context = match target.context.clone().filter(|c| !c.is_empty()) {
        Some(c) => c,
        None => kc
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "kubeconfig {source} has no current context: pass --context NAME ({})",
                    names(&infos)
                ))
            })?,
    };
    let Some(info) = infos.iter().find(|c| c.name == context) else {
        return Err(Error::Config(format!(
            "context {context:?} is not in kubeconfig {source} ({}); pick one with --context",
            names(&infos)
        )));
    };
    let Some(server) = info.server.clone() else {
        return Err(Error::Config(format!(
            "context {context:?} of kubeconfig {source} names cluster {:?}, which has no server \
             URL there",
            info.cluster
        )));
    };
    let opts = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "context {context:?} of kubeconfig {source} cannot be used: {e}"
            ))
        })?;
    let namespace = target
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| {
        Error::Config(format!(
            "context {context:?} of kubeconfig {source}: cannot make a client: {e}"
        ))
    })?;
    let cluster = Cluster {
        client,
        namespace,
        context,
        server,
        kubeconfig: source,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, cluster.client.apiserver_version()).await {
        Err(_) => Err(Error::Unreachable(format!(
            "cannot reach the Kubernetes API server at {} (context {:?}, kubeconfig {}): no \
             answer in {}s",
            cluster.server,
            cluster.context,
            cluster.kubeconfig,
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(cluster.err("connecting", e)),
        Ok(Ok(_)) => Ok(cluster),
    }
}

impl Cluster {
    /// A kube-rs error as one of ours; `what` says what was being done.
    pub(crate) fn err(&self, what: &str, e: kube::Error) -> Error {
        match e {
            kube::Error::Api(s) => {
                let why = if s.message.is_empty() {
                    format!("{} {}", s.code, s.reason)
                } else {
                    s.message.clone()
                };
                if s.code == 401 {
                    Error::Api(format!(
                        "{what}: the API server at {} refused the credentials of context {:?} \
                         (kubeconfig {}): {why}",
                        self.server, self.context, self.kubeconfig
                    ))
                } else {
                    Error::Api(format!("{what}: {why}"))
                }
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Unreachable(format!(
                "{what}: cannot reach the Kubernetes API server at {} (context {:?}, \
                     kubeconfig {}): {}",
                self.server,
                self.context,
                self.kubeconfig,
                innermost(&e)
            )),
            other => Error::Api(format!("{what}: {other}")),
        }
    }
}

/// The innermost cause of an error chain (the useful "connection refused").
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut why: &dyn std::error::Error = e;
    while let Some(src) = why.source() {
        why = src;
    }
    why.to_string()
}

/// `a=b,c=d` for a label selector.
pub(crate) fn selector(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_of_a_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:6443\ncontexts:\n- name: a\n  context:\n    cluster: c1\n    user: u\n- name: b\n  context:\n    cluster: c1\n    user: u\n    namespace: apps\nusers:\n- name: u\n  user:\n    token: t\n",
        )
        .unwrap();
        let c = contexts(Some(&p)).unwrap();
        assert_eq!(c.current.as_deref(), Some("b"));
        assert_eq!(c.contexts.len(), 2);
        assert_eq!(c.contexts[1].namespace.as_deref(), Some("apps"));
        assert_eq!(
            c.contexts[0].server.as_deref(),
            Some("https://127.0.0.1:6443")
        );
        assert_eq!(c.kubeconfig, p.display().to_string());
    }

    #[test]
    fn missing_kubeconfig_names_the_path() {
        let e = contexts(Some(Path::new("/nonexistent/kube.yaml"))).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("/nonexistent/kube.yaml") && m.contains("--kubeconfig"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn unknown_context_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c1\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: a\n  context:\n    cluster: c1\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
        )
        .unwrap();
        let t = Target {
            kubeconfig: Some(p.clone()),
            context: Some("nope".into()),
            namespace: None,
        };
        let m = connect(&t).await.unwrap_err().to_string();
        assert!(
            m.contains("\"nope\"") && m.contains("its contexts: a"),
            "{m}"
        );
        assert!(m.contains(&p.display().to_string()), "{m}");
        // The known context: its server refuses connections; the error names the URL.
        let t = Target { context: None, ..t };
        let e = connect(&t).await.unwrap_err();
        assert!(matches!(e, Error::Unreachable(_)), "{e:?}");
        assert!(e.to_string().contains("http://127.0.0.1:1"), "{e}");
    }
}
