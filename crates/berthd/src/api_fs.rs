//! `/containers/{id}/archive|export|changes` (docker cp, export, diff), over
//! [`berth_engine::containerfs`]. The container's root stays mounted and locked (its
//! [`RootfsGuard`](berth_engine::containers::RootfsGuard)) until the response is complete.

use crate::api::ChanWriter;
use crate::api::{channel_body, empty, ok_json, ApiError, ApiResult, Query, State};
use base64::Engine as _;
use berth_engine::containerfs::{self, ContainerFs};
use berth_engine::containers::RootfsGuard;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::warn;

fn worker_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("file operation worker: {e}"),
    )
}

fn not_found(path: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Could not find the file {path} in container {id}"),
    )
}

fn open_fs(g: &RootfsGuard) -> Result<ContainerFs, ApiError> {
    ContainerFs::open(&g.path, &g.mounts).map_err(ApiError::from)
}

/// Stream what `f` writes as an `application/x-tar` body; the guard lives until it is done.
fn stream_tar(
    guard: RootfsGuard,
    fs: ContainerFs,
    f: impl FnOnce(&ContainerFs, &mut ChanWriter) -> berth_engine::images::Result<()> + Send + 'static,
) -> hyper::Response<crate::api::Body> {
    let (tx, rx) = mpsc::channel(8);
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _g = span.enter();
        let mut w = ChanWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let res = f(&fs, &mut w).and_then(|()| {
            w.flush().map_err(|e| {
                berth_engine::images::Error::internal(format!("sending the archive: {e}"))
            })
        });
        drop(guard);
        if let Err(e) = res {
            warn!("archive failed: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
        }
    });
    channel_body(rx, "application/x-tar")
}

pub async fn container_route(
    state: &Arc<State>,
    req: Request<Incoming>,
    id: &str,
    action: &str,
) -> ApiResult {
    let q = Query::of(&req);
    let method = req.method().clone();
    match (&method, action) {
        (&Method::GET | &Method::HEAD, "archive") => {
            let path = q.str("path").to_string();
            if path.is_empty() {
                return Err(ApiError::bad("bad parameter: path cannot be empty"));
            }
            let guard = state.containers.rootfs_guard(id).await?;
            let fs = open_fs(&guard)?;
            let (fs, stat) = {
                let p = path.clone();
                tokio::task::spawn_blocking(move || {
                    let s = fs.stat_path(&p);
                    (fs, s)
                })
                .await
                .map_err(worker_err)?
            };
            let stat = stat
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("stat {path}: {e}"),
                    )
                })?
                .ok_or_else(|| not_found(&path, id))?
                .0;
            let header = base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&stat).unwrap_or_default());
            let mut resp = if method == Method::HEAD {
                drop(guard);
                empty(StatusCode::OK)
            } else {
                let p = path.clone();
                stream_tar(guard, fs, move |fs, w| {
                    match fs.archive(&p, w)? {
                        Some(_) => Ok(()),
                        // Removed between the stat and the archive.
                        None => Err(berth_engine::images::Error::not_found(format!(
                            "{p} disappeared while it was archived"
                        ))),
                    }
                })
            };
            if let Ok(v) = HeaderValue::from_str(&header) {
                resp.headers_mut().insert("X-Docker-Container-Path-Stat", v);
            }
            Ok(resp)
        }
        (&Method::PUT, "archive") => {
            let path = q.str("path").to_string();
            if path.is_empty() {
                return Err(ApiError::bad("bad parameter: path cannot be empty"));
            }
            let no_overwrite = q.bool("noOverwriteDirNonDir");
            // Read-only root and mounts, from the container's own description.
            let info = state.containers.inspect(id).await?;
            let root_ro = info["HostConfig"]["ReadonlyRootfs"]
                .as_bool()
                .unwrap_or(false);
            let ro_mounts: Vec<String> = info["Mounts"]
                .as_array()
                .map(|ms| {
                    ms.iter()
                        .filter(|m| m["RW"] == serde_json::Value::Bool(false))
                        .filter_map(|m| m["Destination"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let guard = state.containers.rootfs_guard(id).await?;
            let mut fs = open_fs(&guard)?;
            fs.set_read_only(root_ro, ro_mounts);
            let body = req
                .into_body()
                .into_data_stream()
                .map_err(|e| std::io::Error::other(format!("reading the request body: {e}")));
            let reader = tokio_util::io::StreamReader::new(Box::pin(body));
            let sync = tokio_util::io::SyncIoBridge::new(reader);
            let p = path.clone();
            // `None`: the destination does not exist in the container.
            let res = tokio::task::spawn_blocking(move || {
                let r = match fs.resolve(&p, true) {
                    Ok(r) if r.exists => fs
                        .extract(
                            &p,
                            std::io::BufReader::with_capacity(256 << 10, sync),
                            no_overwrite,
                        )
                        .map_err(Some),
                    _ => Err(None),
                };
                drop(guard);
                r
            })
            .await
            .map_err(worker_err)?;
            match res {
                Ok(()) => Ok(empty(StatusCode::OK)),
                Err(None) => Err(not_found(&path, id)),
                Err(Some(e)) => Err(e.into()),
            }
        }
        (&Method::GET, "export") => {
            let guard = state.containers.rootfs_guard(id).await?;
            let fs = open_fs(&guard)?;
            Ok(stream_tar(guard, fs, |fs, w| fs.export(w)))
        }
        (&Method::GET, "changes") => {
            let guard = state.containers.rootfs_guard(id).await?;
            let changes = tokio::task::spawn_blocking(move || {
                // The layers from the container's record, not from the mount table: a
                // container that just exited may be unmounted under us, and an empty list
                // would report every path as added.
                let lowers = guard.lowers.clone();
                // Mount points the engine makes in every container are not the
                // container's changes (Docker keeps them in its init layer).
                let mut ignore: Vec<String> = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                ignore.extend(guard.mounts.iter().map(|(d, _)| d.clone()));
                let r = containerfs::changes(&guard.upper, &lowers, &ignore);
                drop(guard);
                r
            })
            .await
            .map_err(worker_err)??;
            ok_json(&changes)
        }
        _ => {
            // Drain nothing: an unknown action is a 404 like Docker's router.
            let _ = req.into_body().collect().await;
            Err(ApiError::not_found())
        }
    }
}
