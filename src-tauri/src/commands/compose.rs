//! The Compose page: projects the engine knows (`ls -a`, so stacks started from a terminal
//! show up) and projects opened from their files; Up / Down / Restart with progress over a
//! channel; the containers of a project; merged logs; the project's `.env` file.
//!
//! Everything compose-specific (the file format, the planner) is `berth-compose`'s: these
//! commands only find the files, turn a load error into one message with its
//! `file:line:col`, and translate events and rows into DTOs.

use crate::error::{self, Res};
use crate::App;
use berth_compose::ops::{self, Compose};
use berth_compose::{LoadError, LoadOptions, Project};
use berth_desktop_dto::{
    AppError, ComposeContainer, ComposeDownRequest, ComposeEvent, ComposeLogLine,
    ComposeProjectInfo, ComposeProjectSummary, ComposeServiceInfo, ComposeTarget, ComposeUpRequest,
    EnvEntry, EnvFile, ErrorCode, PortBinding,
};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tauri::ipc::Channel;
use tauri::State;

/// The file names compose looks for in a folder, in its order.
const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

fn compose(app: &App) -> Res<Compose> {
    Ok(Compose::new(app.engine.docker()?))
}

/// An engine-side failure of a compose operation.
fn op_err(e: ops::Error) -> AppError {
    AppError::new(ErrorCode::Engine, e.to_string())
}

/// A compose file that does not load: its Display is `file:line:col: key.path: message`.
fn load_err(e: LoadError) -> AppError {
    error::invalid(e.to_string())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `~/x` and `~` expanded; anything else must be absolute.
fn absolute(p: &str) -> Res<PathBuf> {
    let p = p.trim();
    let path = if p == "~" {
        home().unwrap_or_else(|| PathBuf::from("/"))
    } else if let Some(rest) = p.strip_prefix("~/") {
        home().unwrap_or_else(|| PathBuf::from("/")).join(rest)
    } else {
        PathBuf::from(p)
    };
    if p.is_empty() {
        return Err(error::invalid(
            "No compose file given: enter the path of a compose.yaml or of the folder holding one",
        ));
    }
    if !path.is_absolute() {
        return Err(error::invalid(format!(
            "\"{p}\" is not an absolute path: write it from / (e.g. /home/me/app/compose.yaml)"
        )));
    }
    Ok(path)
}

/// The loader's options for a target: files as given (a folder: its compose file, found
/// the way compose finds it), the folder of the first as `cwd`, the app's environment
/// with the overrides on top.
pub fn load_options(target: &ComposeTarget) -> Res<LoadOptions> {
    let mut files = Vec::new();
    let mut cwd = None;
    for f in &target.files {
        let p = absolute(f)?;
        let meta = std::fs::metadata(&p).map_err(|e| {
            error::invalid(format!(
                "The compose file {} cannot be opened ({e})",
                p.display()
            ))
        })?;
        if meta.is_dir() {
            if target.files.len() > 1 {
                return Err(error::invalid(format!(
                    "{} is a folder: give either one folder or compose files",
                    p.display()
                )));
            }
            if !COMPOSE_NAMES.iter().any(|n| p.join(n).is_file()) {
                return Err(error::invalid(format!(
                    "No compose file in {}: it needs a compose.yaml (or compose.yml, docker-compose.yaml, docker-compose.yml)",
                    p.display()
                )));
            }
            // The loader picks the file (and its .override) in this folder.
            cwd = Some(p);
        } else {
            if cwd.is_none() {
                cwd = p.parent().map(Path::to_path_buf);
            }
            files.push(p);
        }
    }
    let Some(cwd) = cwd else {
        return Err(error::invalid(
            "No compose file given: enter the path of a compose.yaml or of the folder holding one",
        ));
    };
    let mut environment: BTreeMap<String, String> = std::env::vars().collect();
    environment.extend(target.environment.clone());
    Ok(LoadOptions {
        files,
        project_name: target.project_name.clone().filter(|n| !n.trim().is_empty()),
        environment,
        cwd,
        ..Default::default()
    })
}

async fn load_project(target: ComposeTarget) -> Res<Project> {
    tokio::task::spawn_blocking(move || {
        let opts = load_options(&target)?;
        berth_compose::load(&opts).map_err(load_err)
    })
    .await
    .map_err(|e| error::system(e.to_string()))?
}

fn port_text(p: &berth_compose::model::Port) -> String {
    let mut s = String::new();
    if !p.host_ip.is_empty() {
        s.push_str(&p.host_ip);
        s.push(':');
    }
    if let Some(h) = p.published {
        s.push_str(&format!("{h}:"));
    }
    s.push_str(&format!("{}/{}", p.target, p.protocol));
    s
}

fn env_file_of(working_dir: &Path) -> Res<EnvFile> {
    let path = working_dir.join(".env");
    if !path.is_file() {
        return Ok(EnvFile {
            path: path.display().to_string(),
            exists: false,
            entries: Vec::new(),
        });
    }
    let entries = berth_compose::load::read_env_file(&path)
        .map_err(load_err)?
        .into_iter()
        .map(|(key, value)| EnvEntry { key, value })
        .collect();
    Ok(EnvFile {
        path: path.display().to_string(),
        exists: true,
        entries,
    })
}

pub fn project_info(p: &Project) -> Res<ComposeProjectInfo> {
    Ok(ComposeProjectInfo {
        name: p.name.clone(),
        working_dir: p.working_dir.display().to_string(),
        files: p.files.iter().map(|f| f.display().to_string()).collect(),
        services: p
            .services
            .iter()
            .map(|(name, s)| ComposeServiceInfo {
                name: name.clone(),
                image: s.image.clone(),
                build: s.build.is_some(),
                ports: s.ports.iter().map(port_text).collect(),
                replicas: s.replicas,
                depends_on: s.depends_on.keys().cloned().collect(),
            })
            .collect(),
        networks: p.networks.keys().cloned().collect(),
        volumes: p.volumes.keys().cloned().collect(),
        env: env_file_of(&p.working_dir)?,
        warnings: p.warnings.clone(),
    })
}

fn event_dto(e: ops::Event) -> ComposeEvent {
    match e {
        ops::Event::Resource {
            resource,
            name,
            status,
            done,
        } => ComposeEvent::Resource {
            resource,
            name,
            status,
            done,
        },
        ops::Event::Build { service, line } => ComposeEvent::Build { service, line },
        ops::Event::Pull { service, status } => ComposeEvent::Pull { service, status },
        ops::Event::Warning { message } => ComposeEvent::Warning { message },
    }
}

fn reporter(channel: Channel<ComposeEvent>) -> ops::Reporter {
    Arc::new(move |e: ops::Event| {
        // The page may have gone: the operation still runs to its end.
        let _ = channel.send(event_dto(e));
    })
}

fn check_services(p: &Project, services: &[String]) -> Res<()> {
    for s in services {
        if !p.services.contains_key(s) && !p.disabled.contains_key(s) {
            let known: Vec<&str> = p.services.keys().map(String::as_str).collect();
            return Err(error::invalid(format!(
                "No service \"{s}\" in project {}: it has {}",
                p.name,
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// The projects the engine has containers of, running or not.
#[tauri::command]
pub async fn compose_projects(app: State<'_, App>) -> Res<Vec<ComposeProjectSummary>> {
    let list = compose(&app)?.ls(true).await.map_err(op_err)?;
    Ok(list
        .into_iter()
        .map(|p| ComposeProjectSummary {
            name: p.name,
            status: p.status,
            config_files: p
                .config_files
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            working_dir: p.working_dir,
            running: p.running,
            total: p.total,
        })
        .collect())
}

/// Reads a project from its files (or the folder holding them), with its `.env`.
#[tauri::command]
pub async fn compose_open(target: ComposeTarget) -> Res<ComposeProjectInfo> {
    let p = load_project(target).await?;
    project_info(&p)
}

/// The containers of a project, running or not.
#[tauri::command]
pub async fn compose_ps(app: State<'_, App>, project: String) -> Res<Vec<ComposeContainer>> {
    crate::commands::nonempty(&project, "The project name")?;
    let rows = compose(&app)?
        .ps(
            &project,
            &ops::PsOptions {
                services: Vec::new(),
                all: true,
            },
        )
        .await
        .map_err(op_err)?;
    Ok(rows
        .into_iter()
        .filter(|c| !c.oneoff)
        .map(|c| ComposeContainer {
            id: c.id,
            name: c.name,
            service: c.service,
            number: c.number,
            image: c.image,
            command: c.command,
            state: c.state,
            status: c.status,
            health: c.health,
            exit_code: c.exit_code,
            ports: c
                .ports
                .into_iter()
                .map(|p| PortBinding {
                    host_ip: p.host_ip,
                    host_port: Some(p.host_port).filter(|&h| h != 0),
                    container_port: p.target,
                    protocol: p.protocol,
                })
                .collect(),
            created: c.created,
        })
        .collect())
}

/// `up -d`: creates what is missing, recreates what changed, starts; progress on `channel`.
/// Resolves when every container is started.
#[tauri::command]
pub async fn compose_up(
    app: State<'_, App>,
    req: ComposeUpRequest,
    channel: Channel<ComposeEvent>,
) -> Res<()> {
    let p = load_project(req.target).await?;
    check_services(&p, &req.services)?;
    let opts = ops::UpOptions {
        services: req.services,
        build: req.build,
        no_deps: req.no_deps,
        force_recreate: req.force_recreate,
        ..Default::default()
    };
    for w in &p.warnings {
        let _ = channel.send(ComposeEvent::Warning { message: w.clone() });
    }
    compose(&app)?
        .up(&p, &opts, &reporter(channel))
        .await
        .map_err(op_err)
}

/// `down [-v]`: stops and removes the containers and networks (and volumes when asked).
#[tauri::command]
pub async fn compose_down(
    app: State<'_, App>,
    req: ComposeDownRequest,
    channel: Channel<ComposeEvent>,
) -> Res<()> {
    let p = load_project(req.target).await?;
    let opts = ops::DownOptions {
        volumes: req.volumes,
        remove_orphans: req.remove_orphans,
        ..Default::default()
    };
    compose(&app)?
        .down(&p, &opts, &reporter(channel))
        .await
        .map_err(op_err)
}

/// What `compose_stop` and `compose_restart` do to the services they name.
#[derive(Clone, Copy)]
enum ServiceAction {
    Stop,
    Restart,
}

/// Loads the project, checks the service names, then stops or restarts them (all of them
/// when `services` is empty); progress on `channel`.
async fn stop_or_restart(
    app: &App,
    target: ComposeTarget,
    services: Vec<String>,
    channel: Channel<ComposeEvent>,
    action: ServiceAction,
) -> Res<()> {
    let p = load_project(target).await?;
    check_services(&p, &services)?;
    let c = compose(app)?;
    let r = reporter(channel);
    match action {
        ServiceAction::Stop => c.stop(&p, &services, None, &r).await,
        ServiceAction::Restart => c.restart(&p, &services, None, &r).await,
    }
    .map_err(op_err)
}

/// `restart [services]`.
#[tauri::command]
pub async fn compose_restart(
    app: State<'_, App>,
    target: ComposeTarget,
    services: Vec<String>,
    channel: Channel<ComposeEvent>,
) -> Res<()> {
    stop_or_restart(&app, target, services, channel, ServiceAction::Restart).await
}

/// `stop [services]`: the containers stay (Up starts them again).
#[tauri::command]
pub async fn compose_stop(
    app: State<'_, App>,
    target: ComposeTarget,
    services: Vec<String>,
    channel: Channel<ComposeEvent>,
) -> Res<()> {
    stop_or_restart(&app, target, services, channel, ServiceAction::Stop).await
}

/// The merged logs of a project's services (all of them when `services` is empty), the
/// last `tail` lines then following; in batches. Closed with `stream_close`.
#[tauri::command]
pub fn compose_logs(
    app: State<'_, App>,
    project: String,
    services: Vec<String>,
    tail: Option<u32>,
    channel: Channel<Vec<ComposeLogLine>>,
) -> Res<u32> {
    crate::commands::nonempty(&project, "The project name")?;
    let c = compose(&app)?;
    let sid = app.streams.id();
    app.streams.spawn(sid, async move {
        let opts = ops::LogOptions {
            services,
            follow: true,
            tail: tail.map(|n| n.to_string()),
            timestamps: false,
            since: None,
            // Containers that start after the page opened the log (a service's container
            // created and started a moment later by Up) join the view.
            watch: true,
        };
        let system = |text: String| ComposeLogLine {
            service: String::new(),
            container: String::new(),
            number: 0,
            stderr: true,
            text,
        };
        let stream = match c.logs(&project, &opts).await {
            Ok(s) => s,
            Err(e) => {
                let _ = channel.send(vec![system(e.to_string())]);
                return;
            }
        };
        let mut stream = std::pin::pin!(stream);
        let mut batch: Vec<ComposeLogLine> = Vec::new();
        // A steady trickle still reaches the page every 50 ms.
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let next = match due {
                Some(t) => tokio::time::timeout_at(t, stream.next()).await.ok(),
                None => Some(stream.next().await),
            };
            match next {
                // A container's log ended: nothing to show.
                Some(Some(Ok(l))) if l.ended => continue,
                Some(Some(Ok(l))) => {
                    batch.push(ComposeLogLine {
                        service: l.service,
                        container: l.container,
                        number: l.number,
                        stderr: l.stderr,
                        text: l.text,
                    });
                    if batch.len() < 500 {
                        if due.is_none() {
                            due = Some(tokio::time::Instant::now() + Duration::from_millis(50));
                        }
                        continue;
                    }
                }
                Some(Some(Err(e))) => {
                    batch.push(system(e.to_string()));
                    let _ = channel.send(std::mem::take(&mut batch));
                    break;
                }
                Some(None) => {
                    if !batch.is_empty() {
                        let _ = channel.send(std::mem::take(&mut batch));
                    }
                    break;
                }
                // The batch is due.
                None => {}
            }
            due = None;
            if !batch.is_empty() && channel.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
        }
    });
    Ok(sid)
}

/// Writes a project's `.env`: `path` must be named `.env`. Lines of keys whose value did
/// not change stay as they were (quoting, comments, `export`), changed ones are rewritten,
/// removed keys' lines dropped, new keys appended.
#[tauri::command]
pub async fn compose_env_save(path: String, entries: Vec<EnvEntry>) -> Res<EnvFile> {
    tokio::task::spawn_blocking(move || save_env(&path, &entries))
        .await
        .map_err(|e| error::system(e.to_string()))?
}

fn save_env(path: &str, entries: &[EnvEntry]) -> Res<EnvFile> {
    let p = absolute(path)?;
    if p.file_name().and_then(|n| n.to_str()) != Some(".env") {
        return Err(error::invalid(format!(
            "{} is not a .env file: only a project's .env is written",
            p.display()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        let k = e.key.trim();
        if !valid_key(k) {
            return Err(error::invalid(format!(
                "\"{k}\" is not a variable name: use letters, digits and _ (not starting with a digit)"
            )));
        }
        if !seen.insert(k) {
            return Err(error::invalid(format!(
                "{k} is set twice: keep one row for it"
            )));
        }
    }
    let (old_text, old_values) = if p.is_file() {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| error::system(format!("Cannot read {} ({e})", p.display())))?;
        let values: BTreeMap<String, String> = berth_compose::load::read_env_file(&p)
            .map_err(load_err)?
            .into_iter()
            .collect();
        (text, values)
    } else {
        (String::new(), BTreeMap::new())
    };
    let text = rewrite_env(&old_text, &old_values, entries);
    std::fs::write(&p, text)
        .map_err(|e| error::system(format!("Cannot write {} ({e})", p.display())))?;
    let dir = p.parent().unwrap_or(Path::new("/"));
    env_file_of(dir)
}

fn valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// The key a `.env` line assigns (`KEY=...`, `export KEY=...`), if it is one.
fn line_key(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    if t.starts_with('#') {
        return None;
    }
    let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
    let (k, _) = t.split_once('=')?;
    let k = k.trim();
    let prefix_len = line.len() - t.len();
    valid_key(k).then(|| (k, &line[..prefix_len]))
}

/// A value as a `.env` line writes it: bare when that reads back the same, else single
/// quotes (literal), else double quotes with escapes.
fn quote_env(v: &str) -> String {
    let bare = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:@,+%^~".contains(c));
    if bare {
        v.to_string()
    } else if !v.contains('\'') && !v.contains('\n') {
        format!("'{v}'")
    } else {
        let mut s = String::from("\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                '$' => s.push_str("\\$"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    }
}

pub fn rewrite_env(
    old: &str,
    old_values: &BTreeMap<String, String>,
    entries: &[EnvEntry],
) -> String {
    let wanted: BTreeMap<&str, &str> = entries
        .iter()
        .map(|e| (e.key.trim(), e.value.as_str()))
        .collect();
    let mut written = std::collections::HashSet::new();
    let mut out = String::new();
    for line in old.lines() {
        match line_key(line) {
            Some((k, prefix)) => match wanted.get(k) {
                // Removed in the editor (or a second assignment of a key already written).
                None => {}
                Some(_) if written.contains(k) => {}
                Some(&v) => {
                    written.insert(k.to_string());
                    if old_values.get(k).map(String::as_str) == Some(v) {
                        out.push_str(line);
                    } else {
                        let export = if prefix.trim_start().starts_with("export") {
                            "export "
                        } else {
                            ""
                        };
                        let indent: String =
                            line.chars().take_while(|c| c.is_whitespace()).collect();
                        out.push_str(&format!("{indent}{export}{k}={}", quote_env(v)));
                    }
                    out.push('\n');
                }
            },
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for e in entries {
        let k = e.key.trim();
        if !written.contains(k) {
            written.insert(k.to_string());
            out.push_str(&format!("{k}={}\n", quote_env(&e.value)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(kv: &[(&str, &str)]) -> Vec<EnvEntry> {
        kv.iter()
            .map(|(k, v)| EnvEntry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    #[test]
    fn env_rewrite_keeps_comments_order_and_unchanged_lines() {
        let old =
            "# the web port\nPORT=8080\n\nexport TAG=\"1.0\"  # pinned\nNAME=${USER}-app\nGONE=x\n";
        let values: BTreeMap<String, String> = [
            ("PORT", "8080"),
            ("TAG", "1.0"),
            ("NAME", "me-app"),
            ("GONE", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let new = rewrite_env(
            old,
            &values,
            &entries(&[
                ("PORT", "9090"),
                ("TAG", "1.0"),
                ("NAME", "me-app"),
                ("EXTRA", "hello world"),
            ]),
        );
        assert_eq!(
            new,
            "# the web port\nPORT=9090\n\nexport TAG=\"1.0\"  # pinned\nNAME=${USER}-app\nEXTRA='hello world'\n"
        );
    }

    #[test]
    fn env_values_are_quoted_when_needed() {
        assert_eq!(quote_env("abc-1.2:3"), "abc-1.2:3");
        assert_eq!(quote_env(""), "");
        assert_eq!(quote_env("a b$c"), "'a b$c'");
        assert_eq!(quote_env("it's \"x\""), "\"it's \\\"x\\\"\"");
        let new = rewrite_env("export A=1\n", &BTreeMap::new(), &entries(&[("A", "2 3")]));
        assert_eq!(new, "export A='2 3'\n");
    }

    #[test]
    fn env_save_refuses_bad_keys_duplicates_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let e = save_env(&env.display().to_string(), &entries(&[("1X", "a")])).unwrap_err();
        assert!(
            e.message.contains("\"1X\" is not a variable name"),
            "{}",
            e.message
        );
        let e = save_env(
            &env.display().to_string(),
            &entries(&[("A", "1"), ("A", "2")]),
        )
        .unwrap_err();
        assert!(e.message.contains("A is set twice"), "{}", e.message);
        let other = dir.path().join("compose.yaml");
        let e = save_env(&other.display().to_string(), &entries(&[("A", "1")])).unwrap_err();
        assert!(e.message.contains("is not a .env file"), "{}", e.message);
        assert!(!env.exists() && !other.exists());
        let e = save_env("relative/.env", &entries(&[])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn targets_name_their_problem() {
        let t = |files: &[&str]| ComposeTarget {
            files: files.iter().map(|s| s.to_string()).collect(),
            project_name: None,
            environment: BTreeMap::new(),
        };
        let e = load_options(&t(&[])).unwrap_err();
        assert!(e.message.contains("No compose file given"), "{}", e.message);
        let e = load_options(&t(&["app/compose.yaml"])).unwrap_err();
        assert!(e.message.contains("not an absolute path"), "{}", e.message);
        let e = load_options(&t(&["/nonexistent/berth/compose.yaml"])).unwrap_err();
        assert!(
            e.message
                .contains("/nonexistent/berth/compose.yaml cannot be opened"),
            "{}",
            e.message
        );
        let dir = tempfile::tempdir().unwrap();
        let e = load_options(&t(&[&dir.path().display().to_string()])).unwrap_err();
        assert!(e.message.contains("No compose file in"), "{}", e.message);
        std::fs::write(dir.path().join("compose.yaml"), "services: {}\n").unwrap();
        let mut target = t(&[&dir.path().display().to_string()]);
        target
            .environment
            .insert("BERTH_TEST_OVERRIDE".into(), "yes".into());
        let o = load_options(&target).unwrap();
        assert!(o.files.is_empty());
        assert_eq!(o.cwd, dir.path());
        assert_eq!(
            o.environment.get("BERTH_TEST_OVERRIDE").map(String::as_str),
            Some("yes")
        );
        let file = dir.path().join("compose.yaml");
        let o = load_options(&t(&[&file.display().to_string()])).unwrap();
        assert_eq!(o.files, vec![file.clone()]);
        assert_eq!(o.cwd, dir.path());
    }

    #[test]
    fn a_folder_opens_with_its_services_and_env_and_saved_values_read_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web:\n    image: busybox\n    ports:\n      - \"${WEB_PORT}:8080\"\n    depends_on: [db]\n  db:\n    image: busybox\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".env"), "# port\nWEB_PORT=8081\n").unwrap();
        let mut target = ComposeTarget {
            files: vec![dir.path().display().to_string()],
            project_name: Some("demo".into()),
            environment: BTreeMap::new(),
        };
        let p = berth_compose::load(&load_options(&target).unwrap()).unwrap();
        let info = project_info(&p).unwrap();
        assert_eq!(info.name, "demo");
        let names: Vec<&str> = info.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        assert_eq!(info.services[1].ports, ["8081:8080/tcp"]);
        assert_eq!(info.services[1].depends_on, ["db"]);
        assert!(info.env.exists);
        assert_eq!(info.env.entries, entries(&[("WEB_PORT", "8081")]),);
        // An override wins over .env.
        target.environment.insert("WEB_PORT".into(), "9000".into());
        let p = berth_compose::load(&load_options(&target).unwrap()).unwrap();
        assert_eq!(
            project_info(&p).unwrap().services[1].ports,
            ["9000:8080/tcp"]
        );

        // Saved values, quoted as needed, read back the same through the loader's reader.
        let tricky = "a b $HOME \"q\" it's";
        let saved = save_env(
            &info.env.path,
            &entries(&[("WEB_PORT", "9001"), ("MSG", "hello world"), ("T", tricky)]),
        )
        .unwrap();
        assert_eq!(
            saved.entries,
            entries(&[("WEB_PORT", "9001"), ("MSG", "hello world"), ("T", tricky)])
        );
        let text = std::fs::read_to_string(dir.path().join(".env")).unwrap();
        assert!(text.starts_with("# port\nWEB_PORT=9001\n"), "{text}");
        // A file that does not load names where.
        std::fs::write(dir.path().join("compose.yaml"), "services:\n  web: [\n").unwrap();
        let e = load_project_blocking(&target).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("compose.yaml:"), "{}", e.message);
    }

    fn load_project_blocking(t: &ComposeTarget) -> Res<Project> {
        berth_compose::load(&load_options(t)?).map_err(load_err)
    }
}
