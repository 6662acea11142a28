//! `ps`, `ls`, `logs`: what the engine holds for a project, found by labels.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::task::{Context, Poll};

use bollard::container::LogOutput;
use bollard::models::ContainerSummary;
use bollard::query_parameters as q;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{engine, id_of, label, name_of, number_of, service_of, Compose, Error};
use crate::labels;

#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    pub services: Vec<String>,
    /// Stopped containers too (`-a`); one-off `run` containers are always left out.
    pub all: bool,
}

/// A published port of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub target: u16,
    pub protocol: String,
}

/// One container of a project, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub image: String,
    pub command: String,
    /// `running`, `exited`, `created`, `paused`, `restarting`...
    pub state: String,
    /// The engine's words: `Up 3 seconds (healthy)`, `Exited (0) 2 minutes ago`.
    pub status: String,
    /// `healthy`, `unhealthy`, `starting`, when the container has a healthcheck.
    pub health: Option<String>,
    pub exit_code: i64,
    /// Exposed-but-unpublished ports have `host_port` 0.
    pub ports: Vec<PublishedPort>,
    pub created: i64,
    pub oneoff: bool,
}

/// A project the engine knows of (`ls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectSummary {
    pub name: String,
    /// docker compose's form: `running(2)`, `running(1), exited(1)`.
    pub status: String,
    pub config_files: String,
    pub working_dir: String,
    pub running: u32,
    pub total: u32,
}

fn health_of(status: &str) -> Option<String> {
    for h in ["(healthy)", "(unhealthy)", "(health: starting)"] {
        if status.contains(h) {
            return Some(
                h.trim_matches(['(', ')'])
                    .trim_start_matches("health: ")
                    .to_string(),
            );
        }
    }
    None
}

fn exit_code_of(status: &str) -> i64 {
    status
        .strip_prefix("Exited (")
        .and_then(|s| s.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn summary(c: &ContainerSummary) -> ServiceContainer {
    let status = c.status.clone().unwrap_or_default();
    let mut ports: Vec<PublishedPort> = c
        .ports
        .iter()
        .flatten()
        .map(|p| PublishedPort {
            host_ip: p.ip.clone().unwrap_or_default(),
            host_port: p.public_port.unwrap_or(0),
            target: p.private_port,
            protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
        })
        .collect();
    ports.sort_by(|a, b| {
        (a.target, a.host_port, &a.host_ip).cmp(&(b.target, b.host_port, &b.host_ip))
    });
    ports.dedup();
    ServiceContainer {
        id: id_of(c),
        name: name_of(c),
        service: service_of(c),
        number: number_of(c),
        image: c.image.clone().unwrap_or_default(),
        command: c.command.clone().unwrap_or_default(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        health: health_of(&status),
        exit_code: exit_code_of(&status),
        status,
        ports,
        created: c.created.unwrap_or(0),
        oneoff: label(c, labels::ONEOFF) == Some("True"),
    }
}

impl Compose {
    pub async fn ps(&self, project: &str, o: &PsOptions) -> Result<Vec<ServiceContainer>, Error> {
        let list = self.containers(project, Some(false)).await?;
        Ok(list
            .iter()
            .filter(|c| o.services.is_empty() || o.services.contains(&service_of(c)))
            .filter(|c| o.all || super::is_running(c))
            .map(summary)
            .collect())
    }

    /// Every project the engine holds containers for; only those with a running container
    /// unless `all`.
    pub async fn ls(&self, all: bool) -> Result<Vec<ProjectSummary>, Error> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![labels::PROJECT.to_string()]);
        let list = self
            .docker
            .list_containers(Some(q::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine("listing containers", e))?;
        let mut projects: BTreeMap<String, (BTreeMap<String, u32>, String, String)> =
            BTreeMap::new();
        for c in &list {
            let Some(p) = label(c, labels::PROJECT) else {
                continue;
            };
            let e = projects.entry(p.to_string()).or_default();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            *e.0.entry(state).or_default() += 1;
            if e.1.is_empty() {
                e.1 = label(c, labels::CONFIG_FILES)
                    .unwrap_or_default()
                    .to_string();
            }
            if e.2.is_empty() {
                e.2 = label(c, labels::WORKING_DIR)
                    .unwrap_or_default()
                    .to_string();
            }
        }
        Ok(projects
            .into_iter()
            .map(|(name, (states, config_files, working_dir))| {
                let running = states.get("running").copied().unwrap_or(0);
                let total = states.values().sum();
                let status = states
                    .iter()
                    .map(|(s, n)| format!("{s}({n})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                ProjectSummary {
                    name,
                    status,
                    config_files,
                    working_dir,
                    running,
                    total,
                }
            })
            .filter(|p| all || p.running > 0)
            .collect())
    }

    /// The merged logs of the project's containers (the named services' only when given),
    /// one line per item, each container's lines in order. With `follow` the stream stays
    /// open until every container's log ends or the stream is dropped; with `watch` too,
    /// containers started later (new ones, or stopped ones starting again) are followed as
    /// they start, and the stream ends only when dropped.
    pub async fn logs(&self, project: &str, o: &LogOptions) -> Result<LogStream, Error> {
        let (tx, rx) = mpsc::channel::<Result<LogLine, Error>>(256);
        // Subscribed before listing: a container starting in between is not missed.
        let events = (o.follow && o.watch).then(|| {
            let mut filters = super::project_filter(project);
            filters.insert("type".into(), vec!["container".into()]);
            filters.insert("event".into(), vec!["start".into()]);
            self.docker.events(Some(q::EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
        });
        let list: Vec<Followed> = self
            .containers(project, Some(false))
            .await?
            .iter()
            .filter(|c| o.services.is_empty() || o.services.contains(&service_of(c)))
            .map(|c| Followed {
                id: id_of(c),
                name: name_of(c),
                service: service_of(c),
                number: number_of(c),
            })
            .collect();
        let tasks = match events {
            Some(events) => {
                let (docker, o) = (self.docker.clone(), o.clone());
                vec![tokio::spawn(watch(docker, list, events, o, tx))]
            }
            None => list
                .into_iter()
                .map(|c| tokio::spawn(follow_one(self.docker.clone(), c, o.clone(), tx.clone())))
                .collect(),
        };
        Ok(LogStream { rx, tasks })
    }
}

/// A container whose log is read.
#[derive(Debug, Clone)]
struct Followed {
    id: String,
    name: String,
    service: String,
    number: u32,
}

/// Reads one container's log into `tx`, then sends its `ended` marker.
async fn follow_one(
    docker: bollard::Docker,
    c: Followed,
    o: LogOptions,
    tx: mpsc::Sender<Result<LogLine, Error>>,
) {
    let line = |stderr: bool, text: String, ended: bool| LogLine {
        service: c.service.clone(),
        container: c.name.clone(),
        number: c.number,
        stderr,
        text,
        ended,
    };
    let mut stream = docker.logs(
        &c.id,
        Some(q::LogsOptions {
            follow: o.follow,
            stdout: true,
            stderr: true,
            timestamps: o.timestamps,
            tail: o.tail.clone().unwrap_or_else(|| "all".into()),
            since: o.since.and_then(|t| i32::try_from(t).ok()).unwrap_or(0),
            ..Default::default()
        }),
    );
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(item) = stream.next().await {
        let (stderr, bytes) = match item {
            Ok(LogOutput::StdErr { message }) => (true, message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (false, message),
            Ok(_) => continue,
            Err(e) => {
                let what = format!("reading the logs of {}", c.name);
                let _ = tx.send(Err(engine(&what, e))).await;
                return;
            }
        };
        let buf = &mut partial[usize::from(stderr)];
        buf.extend_from_slice(&bytes);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if tx.send(Ok(line(stderr, text, false))).await.is_err() {
                return;
            }
        }
    }
    for (i, rest) in partial.iter().enumerate() {
        if !rest.is_empty() {
            let text = String::from_utf8_lossy(rest).to_string();
            let _ = tx.send(Ok(line(i == 1, text, false))).await;
        }
    }
    // The container's log is over (with `follow`: it stopped).
    let _ = tx.send(Ok(line(false, String::new(), true))).await;
}

/// `watch` mode: follows the listed containers, and every project container that starts
/// later. One reader per container at a time: a log that ends while its container runs
/// again (it was created, not started, when the reader opened, and started meanwhile) is
/// reopened from that run's start.
async fn watch(
    docker: bollard::Docker,
    list: Vec<Followed>,
    events: impl Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>>,
    o: LogOptions,
    tx: mpsc::Sender<Result<LogLine, Error>>,
) {
    let mut readers = tokio::task::JoinSet::new();
    let mut active: HashMap<String, Followed> = HashMap::new();
    let open = |readers: &mut tokio::task::JoinSet<String>, c: Followed, o: LogOptions| {
        let (docker, tx) = (docker.clone(), tx.clone());
        readers.spawn(async move {
            let id = c.id.clone();
            follow_one(docker, c, o, tx).await;
            id
        });
    };
    for c in list {
        active.insert(c.id.clone(), c.clone());
        open(&mut readers, c, o.clone());
    }
    // A run that began at `started` (unix seconds): its lines only.
    let from = |started: Option<i64>| LogOptions {
        tail: None,
        since: started.or(o.since),
        ..o.clone()
    };
    let mut events = std::pin::pin!(events);
    let mut events_open = true;
    loop {
        tokio::select! {
            Some(done) = readers.join_next(), if !readers.is_empty() => {
                let Ok(id) = done else { continue };
                let Some(c) = active.remove(&id) else { continue };
                if let Some(started) = running_since(&docker, &id).await {
                    active.insert(id, c.clone());
                    open(&mut readers, c, from(Some(started)));
                }
            }
            ev = events.next(), if events_open => {
                let Some(Ok(ev)) = ev else {
                    events_open = false;
                    continue;
                };
                let Some(id) = ev.actor.and_then(|a| a.id) else { continue };
                if active.contains_key(&id) {
                    continue;
                }
                let Some(c) = followed(&docker, &id).await else { continue };
                if !o.services.is_empty() && !o.services.contains(&c.service) {
                    continue;
                }
                active.insert(id, c.clone());
                open(&mut readers, c, from(ev.time));
            }
            else => break,
        }
        if tx.is_closed() {
            break;
        }
    }
}

/// When the container's current run began (unix seconds), if it is running.
async fn running_since(docker: &bollard::Docker, id: &str) -> Option<i64> {
    let info = docker
        .inspect_container(id, None::<q::InspectContainerOptions>)
        .await
        .ok()?;
    let state = info.state?;
    if state.running != Some(true) {
        return None;
    }
    let started = state.started_at.unwrap_or_default();
    Some(berth_time::parse_unix(&started).unwrap_or(0))
}

/// A project container, by ID, as [`watch`] follows it.
async fn followed(docker: &bollard::Docker, id: &str) -> Option<Followed> {
    let info = docker
        .inspect_container(id, None::<q::InspectContainerOptions>)
        .await
        .ok()?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    Some(Followed {
        id: id.to_string(),
        name: info
            .name
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| id.to_string()),
        service: labels.get(labels::SERVICE).cloned().unwrap_or_default(),
        number: labels
            .get(labels::NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

/// `logs`' flags.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub services: Vec<String>,
    pub follow: bool,
    /// Lines from the end per container (`all` when `None`).
    pub tail: Option<String>,
    pub timestamps: bool,
    /// Only lines from this unix time on.
    pub since: Option<i64>,
    /// With `follow`: also follow containers that start later; never ends by itself.
    pub watch: bool,
}

/// One log line of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub service: String,
    pub container: String,
    pub number: u32,
    pub stderr: bool,
    /// Without the newline; starts with the RFC 3339 timestamp when asked for.
    pub text: String,
    /// Not a line: this container's log has ended (the last item for it; `text` is empty).
    pub ended: bool,
}

/// The merged log lines; dropping it stops reading.
pub struct LogStream {
    rx: mpsc::Receiver<Result<LogLine, Error>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Stream for LogStream {
    type Item = Result<LogLine, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        assert_eq!(
            health_of("Up 3 seconds (healthy)").as_deref(),
            Some("healthy")
        );
        assert_eq!(
            health_of("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(health_of("Up 3 seconds"), None);
        assert_eq!(exit_code_of("Exited (137) 2 minutes ago"), 137);
        assert_eq!(exit_code_of("Up 2 minutes"), 0);
    }
}
