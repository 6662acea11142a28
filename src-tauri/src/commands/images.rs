//! Images: list, pull and push with per-layer progress, tag, remove, prune, history,
//! inspect, and registry login (Docker's config.json, as `berth login` and `docker login`).

use super::{engine_err, nonempty};
use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{HistoryRow, ImageRow, LoginRequest, ProgressEvent, PruneReport};
use bollard::auth::DockerCredentials;
use bollard::query_parameters as q;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use tauri::ipc::Channel;
use tauri::State;

const HUB_KEY: &str = "https://index.docker.io/v1/";

#[tauri::command]
pub async fn images_list(app: State<'_, App>) -> Res<Vec<ImageRow>> {
    let d = app.engine.docker()?;
    let images = d
        .list_images(Some(q::ListImagesOptions {
            digests: true,
            ..Default::default()
        }))
        .await
        .map_err(engine_err(&app))?;
    let containers = d
        .list_containers(Some(q::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .map_err(engine_err(&app))?;
    let mut uses: HashMap<String, u32> = HashMap::new();
    for c in containers {
        if let Some(id) = c.image_id {
            *uses.entry(id).or_default() += 1;
        }
    }
    let mut rows = Vec::new();
    for i in images {
        let used = uses.get(&i.id).copied().unwrap_or(0);
        let digests: Vec<String> = i.repo_digests.clone();
        let tags: Vec<String> = i
            .repo_tags
            .iter()
            .filter(|t| *t != "<none>:<none>")
            .cloned()
            .collect();
        let mk = |repository: String, tag: String| ImageRow {
            id: i.id.clone(),
            repository,
            tag,
            digests: digests.clone(),
            size: i.size,
            created: i.created,
            containers: used,
        };
        if tags.is_empty() {
            let repo = digests
                .first()
                .and_then(|d| d.split_once('@').map(|(r, _)| r.to_string()))
                .unwrap_or_else(|| "<none>".into());
            rows.push(mk(repo, "<none>".into()));
        }
        for t in tags {
            let (r, tag) = t.rsplit_once(':').map_or((t.as_str(), ""), |(a, b)| (a, b));
            rows.push(mk(r.to_string(), tag.to_string()));
        }
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.repository.cmp(&b.repository))
            .then(a.tag.cmp(&b.tag))
    });
    Ok(rows)
}

/// `repo[:tag|@digest]` → (`repo`, `tag` or digest), `latest` when neither is given.
pub fn split_reference(reference: &str) -> (String, String) {
    let r = reference.trim();
    if let Some((repo, digest)) = r.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    match last.rsplit_once(':') {
        Some((_, tag)) => (r[..r.len() - tag.len() - 1].to_string(), tag.to_string()),
        None => (r.to_string(), "latest".into()),
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The registry host an image reference names (`docker.io` for Docker Hub).
fn registry_of(reference: &str) -> Option<String> {
    berth_registry::Reference::parse_normalized(reference.trim())
        .ok()
        .map(|r| r.domain)
}

/// The engine's pull of `reference` (with the stored credentials for its registry), as
/// bollard's progress stream.
pub fn pull_stream(
    d: &bollard::Docker,
    reference: &str,
) -> impl futures_util::Stream<Item = Result<bollard::models::CreateImageInfo, bollard::errors::Error>>
{
    let (repo, tag) = split_reference(reference);
    d.create_image(
        Some(q::CreateImageOptions {
            from_image: Some(repo),
            tag: Some(tag),
            ..Default::default()
        }),
        None,
        credentials_for(reference),
    )
}

/// Stored credentials for the image's registry, if `login` saved some.
pub fn credentials_for(reference: &str) -> Option<DockerCredentials> {
    let host = registry_of(reference)?;
    let path = docker_config_path()?;
    if !path.exists() {
        return None;
    }
    let mut cfg = berth_registry::RegistryConfig::default();
    cfg.load_credentials(&path).ok()?;
    let c = cfg.credentials.get(&host)?;
    Some(DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        serveraddress: Some(host),
        ..Default::default()
    })
}

fn layer_event(
    id: Option<String>,
    status: Option<String>,
    detail: Option<bollard::models::ProgressDetail>,
) -> ProgressEvent {
    let status = status.unwrap_or_default();
    match id.filter(|i| !i.is_empty() && detail.is_some()) {
        Some(id)
            if !status.starts_with("Pulling from") && !status.starts_with("The push refers") =>
        {
            let d = detail.unwrap_or_default();
            ProgressEvent::Layer {
                id,
                status,
                current: d.current.map(|c| c.max(0) as u64),
                total: d.total.map(|t| t.max(0) as u64),
            }
        }
        _ => ProgressEvent::Status { message: status },
    }
}

/// A reference the engine can pull or push, or one error naming it and the form to use.
fn check_reference(reference: &str) -> Res<()> {
    nonempty(reference, "The image reference")?;
    if registry_of(reference).is_none() {
        return Err(error::invalid(format!(
            "\"{reference}\" is not an image reference: write it like busybox, busybox:1.36 or registry.example.com:5000/team/app:tag"
        )));
    }
    Ok(())
}

#[tauri::command]
pub async fn image_pull(
    app: State<'_, App>,
    reference: String,
    channel: Channel<ProgressEvent>,
) -> Res<()> {
    check_reference(&reference)?;
    let d = app.engine.docker()?;
    let mut s = pull_stream(&d, &reference);
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(err) = info.error_detail.and_then(|e| e.message) {
                    let _ = channel.send(ProgressEvent::Error {
                        message: err.clone(),
                    });
                    return Err(error::engine(
                        app.engine.host(),
                        bollard::errors::Error::DockerStreamError { error: err },
                    ));
                }
                let _ = channel.send(layer_event(info.id, info.status, info.progress_detail));
            }
            Err(e) => {
                let e = engine_err(&app)(e);
                let _ = channel.send(ProgressEvent::Error {
                    message: e.message.clone(),
                });
                return Err(e);
            }
        }
    }
    let _ = channel.send(ProgressEvent::Done {
        message: format!("Pulled {reference}"),
    });
    Ok(())
}

/// Pushes with per-layer progress. bollard drops the layer ids of push progress, so this one
/// reads the engine's stream itself.
#[tauri::command]
pub async fn image_push(
    app: State<'_, App>,
    reference: String,
    channel: Channel<ProgressEvent>,
) -> Res<()> {
    use base64::Engine as _;
    check_reference(&reference)?;
    let (repo, tag) = split_reference(&reference);
    let auth = match credentials_for(&reference) {
        Some(c) => serde_json::json!({
            "username": c.username, "password": c.password, "serveraddress": c.serveraddress,
        }),
        None => serde_json::json!({}),
    };
    let header = base64::engine::general_purpose::URL_SAFE.encode(auth.to_string());
    let path = format!(
        "/v1.45/images/{}/push?tag={}",
        crate::commands::containers::urlencode(&repo),
        crate::commands::containers::urlencode(&tag)
    );
    let mut failed: Option<String> = None;
    crate::api::stream_lines(&app, &path, &[("X-Registry-Auth", header)], |v| {
        if let Some(msg) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            failed = Some(msg.to_string());
            let _ = channel.send(ProgressEvent::Error {
                message: msg.to_string(),
            });
            return;
        }
        let detail: Option<bollard::models::ProgressDetail> =
            serde_json::from_value(v["progressDetail"].clone()).ok();
        let _ = channel.send(layer_event(
            v["id"].as_str().map(str::to_string),
            v["status"].as_str().map(str::to_string),
            detail,
        ));
    })
    .await
    .inspect_err(|e| {
        let _ = channel.send(ProgressEvent::Error {
            message: e.message.clone(),
        });
    })?;
    if let Some(msg) = failed {
        return Err(error::engine(
            app.engine.host(),
            bollard::errors::Error::DockerStreamError { error: msg },
        ));
    }
    let _ = channel.send(ProgressEvent::Done {
        message: format!("Pushed {reference}"),
    });
    Ok(())
}

#[tauri::command]
pub async fn image_tag(app: State<'_, App>, source: String, target: String) -> Res<()> {
    nonempty(&source, "The image")?;
    if registry_of(&target).is_none() || target.contains('@') {
        return Err(error::invalid(format!(
            "\"{target}\" is not a valid name for an image: write it like app:1.0 or 127.0.0.1:5000/team/app:1.0"
        )));
    }
    let (repo, tag) = split_reference(&target);
    app.engine
        .docker()?
        .tag_image(
            &source,
            Some(q::TagImageOptions {
                repo: Some(repo),
                tag: Some(tag),
            }),
        )
        .await
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn image_remove(app: State<'_, App>, id: String, force: bool) -> Res<()> {
    nonempty(&id, "The image")?;
    app.engine
        .docker()?
        .remove_image(
            &id,
            Some(q::RemoveImageOptions {
                force,
                ..Default::default()
            }),
            None,
        )
        .await
        .map(|_| ())
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn images_prune(app: State<'_, App>, all: bool) -> Res<PruneReport> {
    let mut filters = HashMap::new();
    filters.insert("dangling".to_string(), vec![(!all).to_string()]);
    let r = app
        .engine
        .docker()?
        .prune_images(Some(q::PruneImagesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(engine_err(&app))?;
    Ok(PruneReport {
        deleted: r
            .images_deleted
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| d.deleted.or(d.untagged))
            .collect(),
        space_reclaimed: r.space_reclaimed.unwrap_or(0).max(0) as u64,
    })
}

#[tauri::command]
pub async fn image_history(app: State<'_, App>, id: String) -> Res<Vec<HistoryRow>> {
    nonempty(&id, "The image")?;
    let h = app
        .engine
        .docker()?
        .image_history(&id)
        .await
        .map_err(engine_err(&app))?;
    Ok(h.into_iter()
        .map(|r| HistoryRow {
            id: r.id,
            created: r.created,
            created_by: r.created_by,
            size: r.size,
            comment: r.comment,
            tags: r.tags,
        })
        .collect())
}

#[tauri::command]
pub async fn image_inspect(app: State<'_, App>, id: String) -> Res<String> {
    nonempty(&id, "The image")?;
    let raw = crate::api::get(
        &app,
        &format!("/v1.45/images/{}/json", super::containers::urlencode(&id)),
    )
    .await?;
    // Pretty for reading; the engine's field order is kept.
    Ok(serde_json::from_str::<Value>(&raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(raw))
}

/// Checks the credentials with the engine (`POST /auth`), then saves them to Docker's
/// config.json (0600, atomically, other keys kept) for pulls and pushes.
#[tauri::command]
pub async fn registry_login(app: State<'_, App>, req: LoginRequest) -> Res<String> {
    nonempty(&req.username, "The username")?;
    if req.password.is_empty() {
        return Err(error::invalid("The password is empty"));
    }
    let server = req.server.trim().trim_end_matches('/').to_string();
    let server = server
        .split_once("://")
        .map_or(server.as_str(), |(_, r)| r)
        .to_string();
    let key = match server.as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => HUB_KEY.to_string(),
        s => s.split('/').next().unwrap_or(s).to_string(),
    };
    let body = serde_json::json!({
        "username": req.username,
        "password": req.password,
        "serveraddress": key,
    });
    let resp = crate::api::request(&app, "POST", "/v1.45/auth", Some(&body.to_string())).await?;
    let status = serde_json::from_str::<Value>(&resp)
        .ok()
        .and_then(|v| v["Status"].as_str().map(str::to_string))
        .unwrap_or_else(|| "Login Succeeded".into());
    let path = docker_config_path().ok_or_else(|| {
        error::system("Cannot find Docker's config.json: set HOME or DOCKER_CONFIG")
    })?;
    save_auth(&path, &key, &req.username, &req.password)?;
    Ok(status)
}

fn save_auth(path: &std::path::Path, key: &str, user: &str, password: &str) -> Res<()> {
    use base64::Engine as _;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut cfg: Map<String, Value> = match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => match serde_json::from_str(&t) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(error::invalid(format!(
                    "{} is not a JSON object; fix or remove it, then log in again",
                    path.display()
                )))
            }
        },
        _ => Map::new(),
    };
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    if let Some(a) = auths.as_object_mut() {
        a.insert(key.to_string(), serde_json::json!({ "auth": auth }));
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| error::system(format!("Cannot create {}: {e}", dir.display())))?;
    let tmp = path.with_extension("json.berth-tmp");
    let text = serde_json::to_string_pretty(&Value::Object(cfg))
        .map_err(|e| error::system(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        error::system(format!("Cannot write {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_docker() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), "latest".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app:v2"),
            ("127.0.0.1:5000/app".into(), "v2".into())
        );
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(split_reference(&format!("app@{d}")), ("app".into(), d));
        assert_eq!(registry_of("busybox").as_deref(), Some("docker.io"));
        assert_eq!(
            registry_of("127.0.0.1:5000/x:1").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert!(registry_of("Bad Name").is_none());
        let e = check_reference("Bad Name").unwrap_err();
        assert!(
            e.message.contains("\"Bad Name\"") && e.message.contains("write it like"),
            "{}",
            e.message
        );
        assert!(check_reference(" ").is_err());
        assert!(check_reference("127.0.0.1:5000/app:v1").is_ok());
    }

    #[test]
    fn login_keeps_other_keys_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"credsStore":"","psFormat":"x","auths":{"a:1":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        save_auth(&p, "127.0.0.1:5000", "me", "secret").unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert_eq!(v["auths"]["a:1"]["auth"], "eDp5");
        assert_eq!(v["auths"]["127.0.0.1:5000"]["auth"], "bWU6c2VjcmV0");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut cfg = berth_registry::RegistryConfig::default();
        cfg.load_credentials(&p).unwrap();
        assert_eq!(cfg.credentials["127.0.0.1:5000"].username, "me");
    }
}
