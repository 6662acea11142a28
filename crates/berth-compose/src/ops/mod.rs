//! Compose operations against an engine, over the Docker Engine API (bollard): the planner
//! that converges a project (`up`), and the project-wide commands (`down`, `ps`, `ls`, `logs`,
//! `start`, `stop`, `restart`, `rm`, `build`, `pull`, `push`).
//!
//! Everything a project owns is found again by docker compose's labels, never by a state file
//! of our own: containers by `com.docker.compose.project` + `.service` (+ `.oneoff`),
//! networks and volumes by the engine names the model gives them. So projects started by
//! docker compose are seen here, and the other way round.

mod create;
mod images;
mod lifecycle;
mod query;
mod up;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerSummary;
use bollard::query_parameters as q;
use bollard::Docker;
use serde::Serialize;

use crate::labels;
use crate::model::{Project, Service};

pub use lifecycle::RunOptions;
pub use query::{LogLine, LogOptions, ProjectSummary, PsOptions, PublishedPort, ServiceContainer};

/// A failed operation: one line, the engine's words kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }
}

/// An engine error with what we were doing.
pub(crate) fn engine(what: &str, e: BollardError) -> Error {
    let why = match e {
        BollardError::DockerResponseServerError { message, .. } => message,
        BollardError::DockerStreamError { error } => error,
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(&other);
            while let Some(inner) = src {
                s = inner.to_string();
                src = inner.source();
            }
            s
        }
    };
    Error::new(format!("{what}: {why}"))
}

/// The engine said "no such ...".
pub(crate) fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// What happened, for the CLI's progress lines and the desktop's event panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A resource changed state (docker compose's `✔ Container shop-web-1  Started`).
    Resource {
        /// `Network`, `Volume`, `Container` or `Image`.
        resource: String,
        name: String,
        /// `Creating`, `Created`, `Starting`, `Started`, `Waiting`, `Healthy`, `Exited`,
        /// `Stopping`, `Stopped`, `Removing`, `Removed`, `Recreate`, `Recreated`, `Running`,
        /// `Pulling`, `Pulled`, `Building`, `Built`, `Skipped`.
        status: String,
        /// The last state of this step (the CLI ticks it).
        done: bool,
    },
    /// A line of a service's build output.
    Build { service: String, line: String },
    /// A line of a service's pull progress.
    Pull { service: String, status: String },
    /// Not fatal; shown once.
    Warning { message: String },
}

pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

pub(crate) fn res(r: &Reporter, resource: &str, name: &str, status: &str, done: bool) {
    r(Event::Resource {
        resource: resource.into(),
        name: name.into(),
        status: status.into(),
        done,
    });
}

pub(crate) fn warn(r: &Reporter, message: impl Into<String>) {
    r(Event::Warning {
        message: message.into(),
    });
}

/// Registry credentials for pulling or pushing an image reference, from the caller's
/// credential store.
pub type Auth = Arc<dyn Fn(&str) -> Option<DockerCredentials> + Send + Sync>;

/// `up`'s flags.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Only these services (and what they depend on, unless `no_deps`).
    pub services: Vec<String>,
    /// Build images before starting (`--build`).
    pub build: bool,
    /// Never build; a missing image is an error (`--no-build`).
    pub no_build: bool,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub no_deps: bool,
    /// `--scale svc=N`.
    pub scale: BTreeMap<String, u32>,
    pub remove_orphans: bool,
    /// Wait for every service to be running / healthy before returning (`--wait`).
    pub wait: bool,
    /// Create but do not start (`--no-start`).
    pub no_start: bool,
    /// Seconds to wait for a stop when recreating or scaling down.
    pub timeout: Option<i64>,
}

/// `down`'s `--rmi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rmi {
    /// Every image a service uses.
    All,
    /// Only images without a custom tag (built ones named `<project>-<service>`).
    Local,
}

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub rmi: Option<Rmi>,
    pub remove_orphans: bool,
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub no_cache: bool,
    pub pull: bool,
}

/// A handle on one engine.
#[derive(Clone)]
pub struct Compose {
    pub(crate) docker: Docker,
    pub(crate) auth: Option<Auth>,
}

impl Compose {
    pub fn new(docker: Docker) -> Self {
        Compose { docker, auth: None }
    }

    /// Credentials for pulls and pushes.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The project's containers (one-off `run` containers too when `oneoff`), stopped ones
    /// included.
    pub(crate) async fn containers(
        &self,
        project: &str,
        oneoff: Option<bool>,
    ) -> Result<Vec<ContainerSummary>, Error> {
        let mut filters = project_filter(project);
        let oneoff = oneoff.map(|o| if o { "True" } else { "False" });
        if let (Some(o), Some(l)) = (oneoff, filters.get_mut("label")) {
            l.push(format!("{}={o}", labels::ONEOFF));
        }
        let mut list = self
            .docker
            .list_containers(Some(q::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine("listing the project's containers", e))?;
        list.sort_by_key(|c| (service_of(c), number_of(c)));
        Ok(list)
    }
}

/// The engine's list filter for what carries `project`'s label.
pub(crate) fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!("{}={project}", labels::PROJECT)],
    );
    filters
}

pub(crate) fn label<'a>(c: &'a ContainerSummary, key: &str) -> Option<&'a str> {
    c.labels.as_ref()?.get(key).map(String::as_str)
}

pub(crate) fn service_of(c: &ContainerSummary) -> String {
    label(c, labels::SERVICE).unwrap_or_default().to_string()
}

pub(crate) fn number_of(c: &ContainerSummary) -> u32 {
    label(c, labels::NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn name_of(c: &ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| c.id.clone().unwrap_or_default())
}

pub(crate) fn id_of(c: &ContainerSummary) -> String {
    c.id.clone().unwrap_or_default()
}

pub(crate) fn is_running(c: &ContainerSummary) -> bool {
    matches!(
        c.state,
        Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
            | Some(bollard::models::ContainerSummaryStateEnum::RESTARTING)
            | Some(bollard::models::ContainerSummaryStateEnum::PAUSED)
    )
}

/// A service by name, enabled or not.
pub(crate) fn service<'a>(p: &'a Project, name: &str) -> Result<&'a Service, Error> {
    p.services
        .get(name)
        .or_else(|| p.disabled.get(name))
        .ok_or_else(|| {
            Error::new(format!(
                "no such service: {name} (the project's services: {})",
                p.services.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
}

/// The image a service runs: `image:`, else the name its build is tagged with
/// (`<project>-<service>`, as docker compose v2).
pub fn image_name(p: &Project, s: &Service) -> String {
    match &s.image {
        Some(i) => i.clone(),
        None => format!("{}-{}", p.name, s.name),
    }
}

/// `name` and, unless `no_deps`, everything it depends on, transitively.
pub(crate) fn with_deps(
    p: &Project,
    names: &[String],
    no_deps: bool,
) -> Result<BTreeSet<String>, Error> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = if names.is_empty() {
        p.services.keys().cloned().collect()
    } else {
        names.to_vec()
    };
    if no_deps && !names.is_empty() {
        for n in names {
            service(p, n)?;
        }
        return Ok(names.iter().cloned().collect());
    }
    while let Some(n) = todo.pop() {
        let s = service(p, &n)?;
        if !out.insert(n.clone()) {
            continue;
        }
        for (d, dep) in &s.depends_on {
            if p.services.contains_key(d) || p.disabled.contains_key(d) {
                todo.push(d.clone());
            } else if dep.required {
                return Err(Error::new(format!(
                    "service {n} depends on undefined service {d}"
                )));
            }
        }
        if let Some(t) = mode_service(s) {
            todo.push(t.to_string());
        }
    }
    Ok(out)
}

/// `names` grouped in start order: each group's services depend only on earlier groups.
pub(crate) fn levels(p: &Project, names: &BTreeSet<String>) -> Result<Vec<Vec<String>>, Error> {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    fn visit(
        p: &Project,
        n: &str,
        names: &BTreeSet<String>,
        depth: &mut BTreeMap<String, usize>,
        stack: &mut Vec<String>,
    ) -> Result<usize, Error> {
        if let Some(d) = depth.get(n) {
            return Ok(*d);
        }
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Err(Error::new(format!(
                "dependency cycle: {}",
                cycle.join(" -> ")
            )));
        }
        stack.push(n.to_string());
        let s = service(p, n)?;
        let mut d = 0;
        let deps = s
            .depends_on
            .keys()
            .map(String::as_str)
            .chain(mode_service(s));
        for dep in deps {
            if names.contains(dep) {
                d = d.max(visit(p, dep, names, depth, stack)? + 1);
            }
        }
        stack.pop();
        depth.insert(n.to_string(), d);
        Ok(d)
    }
    for n in names {
        visit(p, n, names, &mut depth, &mut Vec::new())?;
    }
    let max = depth.values().copied().max().unwrap_or(0);
    let mut out = vec![Vec::new(); if names.is_empty() { 0 } else { max + 1 }];
    for (n, d) in depth {
        out[d].push(n);
    }
    Ok(out)
}

/// `network_mode: service:X` → X: an implicit dependency (X's container must exist first,
/// and recreating it means recreating this service, whose namespace it was).
pub(crate) fn mode_service(s: &Service) -> Option<&str> {
    s.network_mode.as_deref()?.strip_prefix("service:")
}

/// The container name for replica `n`: `container_name:` or `<project>-<service>-<n>`.
pub(crate) fn container_name(p: &Project, s: &Service, n: u32) -> String {
    match &s.container_name {
        Some(c) => c.clone(),
        None => format!("{}-{}-{n}", p.name, s.name),
    }
}

/// Run `f` on every item at once, gathering the first error after all finish.
pub(crate) async fn all<T, F, Fut>(items: Vec<T>, f: F) -> Result<(), Error>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let results = futures_util::future::join_all(items.into_iter().map(f)).await;
    results.into_iter().collect::<Result<Vec<()>, Error>>()?;
    Ok(())
}

/// `n` random bytes as hex (one-off container names).
pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if got.is_err() {
        // Fall back on the clock and the pid: unique enough for a container name.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
