//! `POST /build` (Docker's classic builder protocol: a tar context in, JSON messages out) and
//! `POST /build/prune`.

use crate::api::{channel_body, ok_json, ApiError, ApiResult, JsonStream, PullView, Query, State};
use berth_build::executor::BuildOptions;
use berth_engine::build::{read_up_to, BuildMsg, BuildRequest};
use berth_engine::buildctx::ContextTar;
use berth_engine::images::DeleteItem;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

/// A JSON-object query parameter (`buildargs`, `labels`).
fn json_map<T: serde::de::DeserializeOwned>(
    q: &Query,
    key: &str,
    example: &str,
) -> Result<BTreeMap<String, T>, ApiError> {
    match q.one(key).filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s).map_err(|e| {
            ApiError::bad(format!(
                "invalid {key} parameter: {e}; send a JSON object such as {example}"
            ))
        }),
    }
}

pub(crate) async fn build(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let q = Query::of(&req);
    if q.str("remote").starts_with("http") || q.str("remote").starts_with("git") {
        return Err(ApiError::not_implemented(
            "remote build contexts (remote=): send the context as a tar body",
        ));
    }
    let version = q.str("version");
    if version == "2" {
        return Err(ApiError::bad(
            "BuildKit (version=2) is not supported by berthd: build with DOCKER_BUILDKIT=0 \
             (the classic builder protocol)",
        ));
    }
    let options = BuildOptions {
        build_args: json_map::<Option<String>>(&q, "buildargs", r#"{"VERSION":"1.2"}"#)?,
        target: q
            .one("target")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels: json_map::<String>(&q, "labels", r#"{"maintainer":"me"}"#)?,
        network: q
            .one("networkmode")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        platform: q
            .one("platform")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    };
    let dockerfile = q
        .one("dockerfile")
        .filter(|s| !s.is_empty())
        .unwrap_or("Dockerfile")
        .to_string();
    let quiet = q.bool("q");
    let rm = q.one("rm").is_none_or(|v| v != "0" && v != "false");
    let force_rm = q.bool("forcerm");
    let tags = q.all("t");
    // The context: extracted (gzip or plain tar) into a private directory, through the
    // store's hardened extractor.
    let dir = state
        .data_root
        .join("tmp")
        .join(format!("build-{}", berth_engine::ids::random_hex(8)));
    std::fs::create_dir_all(&dir).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: {e}", dir.display()),
        )
    })?;
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(|e| std::io::Error::other(format!("reading the build context: {e}")));
    let reader = tokio_util::io::StreamReader::new(Box::pin(body));
    let sync = tokio_util::io::SyncIoBridge::new(reader);
    // Spooled to one file and indexed (never extracted: a context of many small files
    // costs one write, not a file creation each); gzip is detected.
    let spool = dir.join("context.tar");
    let spooled = tokio::task::spawn_blocking(move || {
        let mut r = std::io::BufReader::with_capacity(256 << 10, sync);
        let mut head = [0u8; 4];
        let n = read_up_to(&mut r, &mut head)?;
        let comp = berth_store::unpack::Compression::sniff(&head[..n]);
        let chained = std::io::Cursor::new(head[..n].to_vec()).chain(r);
        match comp {
            berth_store::unpack::Compression::Gzip => {
                ContextTar::spool(flate2::read::MultiGzDecoder::new(chained), &spool)
            }
            berth_store::unpack::Compression::Zstd => Err(std::io::Error::other(
                "zstd is not accepted here; send a plain or gzipped tar",
            )),
            berth_store::unpack::Compression::None => ContextTar::spool(chained, &spool),
        }
    })
    .await;
    let cleanup = |d: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&d);
        })
    };
    let context = match spooled {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            cleanup(dir);
            return Err(ApiError::bad(format!(
                "the build context is not a valid tar archive: {e}; send the context as a \
                 (optionally gzipped) tar"
            )));
        }
        Err(e) => {
            cleanup(dir);
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("context worker: {e}"),
            ));
        }
    };
    let (btx, brx) = mpsc::channel(64);
    let out = JsonStream(btx);
    let builds = state.builds.clone();
    let events = state.events.clone();
    let request = BuildRequest {
        context,
        workdir: dir.clone(),
        dockerfile,
        tags: tags.clone(),
        options,
        rm,
        force_rm,
    };
    info!(tags = ?tags, "build");
    tokio::spawn(
        async move {
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let job = tokio::spawn(async move { builds.build(request, ptx).await });
            tokio::pin!(job);
            let mut view = PullView::default();
            let send = |m: BuildMsg, view: &mut PullView| -> Option<serde_json::Value> {
                match m {
                    BuildMsg::Stream(s) if !quiet => Some(json!({ "stream": s })),
                    BuildMsg::Stream(_) => None,
                    BuildMsg::Pull(p) if !quiet => view.show(&p),
                    BuildMsg::Pull(_) => None,
                    BuildMsg::Status(v) if !quiet => Some(v),
                    BuildMsg::Status(_) => None,
                }
            };
            let res = loop {
                tokio::select! {
                    biased;
                    Some(m) = prx.recv() => {
                        if let Some(v) = send(m, &mut view) { out.send(v).await; }
                    }
                    res = &mut job => break res,
                }
            };
            while let Ok(m) = prx.try_recv() {
                if let Some(v) = send(m, &mut view) {
                    out.send(v).await;
                }
            }
            match res {
                Ok(Ok(id)) => {
                    info!(id = %id, "built");
                    out.send(json!({"aux": {"ID": id}})).await;
                    if quiet {
                        out.send(json!({ "stream": format!("{id}\n") })).await;
                    }
                    for t in &tags {
                        crate::api::image_event(&events, "tag", &id, t);
                    }
                }
                Ok(Err(e)) => {
                    warn!("build failed: {}", e.message);
                    // A failed RUN carries its exit code, which the docker CLI exits with.
                    let code = e
                        .message
                        .rsplit_once("returned a non-zero code: ")
                        .and_then(|(_, c)| c.trim().parse::<i64>().ok());
                    match code {
                        Some(code) => {
                            out.send(json!({
                                "errorDetail": {"code": code, "message": e.message},
                                "error": e.message,
                            }))
                            .await
                        }
                        None => out.error(&e.message).await,
                    }
                }
                Err(e) => out.error(&format!("build worker failed: {e}")).await,
            }
            cleanup(dir);
        }
        .in_current_span(),
    );
    Ok(channel_body(brx, "application/json"))
}

/// `POST /build/prune`: forget the build cache and remove the step images only it kept.
pub(crate) async fn prune(state: &Arc<State>) -> ApiResult {
    let store = Arc::clone(state.images.store());
    tokio::task::spawn_blocking(move || store.db().and_then(|mut db| db.clear_build_cache()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::from(berth_engine::images::Error::from(e)))?;
    let rep = state.images.prune(false).await?;
    let deleted: Vec<String> = rep
        .images_deleted
        .iter()
        .filter_map(|d| match d {
            DeleteItem::Deleted(id) => Some(id.clone()),
            DeleteItem::Untagged(_) => None,
        })
        .collect();
    ok_json(&json!({"CachesDeleted": deleted, "SpaceReclaimed": rep.space_reclaimed}))
}
