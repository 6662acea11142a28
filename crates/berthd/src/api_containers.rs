//! `/containers/...`: lifecycle, list, inspect, logs, attach; file operations go to
//! [`crate::api_fs`], exec/stats/top to [`crate::api_exec`].

use crate::api::{
    channel_body, empty, hijack, json_body, json_response, mux_frame, ok_json, ApiError, ApiResult,
    Query, State,
};
use berth_engine::containers::config::CreateBody;
use berth_engine::containers::{LogOptions, WaitCondition};
use berth_engine::monitor::LogStream;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

pub async fn route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let rest = rest.trim_start_matches('/');
    let method = req.method().clone();
    let q = Query::of(&req);
    let svc = &state.containers;
    match (&method, rest) {
        (&Method::GET, "json") => {
            let filters = q.filters()?;
            let limit = q.one("limit").and_then(|l| l.parse::<i64>().ok());
            let all = q.bool("all") || limit.is_some_and(|l| l > 0);
            let list = svc
                .list(all, limit.map(|l| l.max(0) as usize), &filters)
                .await?;
            return ok_json(&list);
        }
        (&Method::POST, "create") => {
            let body: CreateBody = json_body(req, false).await?;
            if let Some(p) = q.one("platform").filter(|p| !p.is_empty()) {
                let host = berth_store::meta::Platform::host();
                let want: berth_store::meta::Platform = p
                    .parse()
                    .map_err(|e| ApiError::bad(format!("invalid platform {p}: {e}")))?;
                if want.os != host.os || want.architecture != host.architecture {
                    return Err(ApiError::bad(format!(
                        "platform {p} does not match this engine's {host}"
                    )));
                }
            }
            let (id, warnings) = svc.create(body, q.one("name")).await?;
            return Ok(json_response(
                StatusCode::CREATED,
                &json!({"Id": id, "Warnings": warnings}),
            ));
        }
        (&Method::POST, "prune") => {
            let f = q.filters()?;
            crate::api::check_filters(&f, &["until", "label", "label!"])?;
            if f.contains_key("label!") {
                return Err(ApiError::not_implemented("the label! prune filter"));
            }
            let until = match f.get("until").and_then(|v| v.first()) {
                Some(u) => Some(parse_ts(u)? as i64),
                None => None,
            };
            let labels = f.get("label").cloned().unwrap_or_default();
            let (gone, space) = svc.prune(&labels, until).await?;
            return ok_json(&json!({"ContainersDeleted": gone, "SpaceReclaimed": space}));
        }
        _ => {}
    }
    if method == Method::DELETE && !rest.contains('/') {
        if rest.is_empty() {
            return Err(ApiError::not_found());
        }
        svc.remove(rest, q.bool("force"), q.bool("v")).await?;
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    let Some((id, action)) = rest.split_once('/') else {
        return Err(ApiError::not_found());
    };
    match (&method, action) {
        (&Method::GET | &Method::PUT | &Method::HEAD, "archive")
        | (&Method::GET, "export")
        | (&Method::GET, "changes") => {
            return crate::api_fs::container_route(state, req, id, action).await
        }
        (&Method::GET, "stats") | (&Method::GET, "top") | (&Method::POST, "exec") => {
            return crate::api_exec::container_route(state, req, id, action).await
        }
        _ => {}
    }
    match (&method, action) {
        (&Method::GET, "json") => ok_json(&svc.inspect(id).await?),
        (&Method::POST, "start") => {
            if svc.start(id).await? {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Ok(empty(StatusCode::NOT_MODIFIED))
            }
        }
        (&Method::POST, "stop") => {
            let t = timeout(&q)?;
            if svc.stop(id, q.one("signal"), t).await? {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Ok(empty(StatusCode::NOT_MODIFIED))
            }
        }
        (&Method::POST, "restart") => {
            svc.restart(id, q.one("signal"), timeout(&q)?).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, "kill") => {
            svc.kill(id, q.one("signal")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, "pause") => {
            svc.pause(id, true).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, "unpause") => {
            svc.pause(id, false).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, "rename") => {
            let name = q
                .one("name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::bad("rename needs a name: ?name=NEW"))?;
            svc.rename(id, name).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, "wait") => {
            let cond: WaitCondition = q.str("condition").parse()?;
            let fut = svc.wait(id, cond)?;
            // Headers go out now; the body when the condition is met.
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                let code = fut.await;
                let mut line = json!({"StatusCode": code, "Error": null}).to_string();
                line.push('\n');
                let _ = tx.send(Ok(Bytes::from(line))).await;
            });
            Ok(channel_body(rx, "application/json"))
        }
        (&Method::POST, "resize") => {
            let h = q.one("h").and_then(|v| v.parse::<u16>().ok());
            let w = q.one("w").and_then(|v| v.parse::<u16>().ok());
            let (Some(h), Some(w)) = (h, w) else {
                return Err(ApiError::bad("resize needs h and w as numbers"));
            };
            let t = svc.exec_target(id).await?;
            if !t.running {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("Container {} is not running", t.id),
                ));
            }
            resize_container(state, id, h, w)?;
            Ok(empty(StatusCode::OK))
        }
        (&Method::GET, "logs") => logs(state, id, &q).await,
        (&Method::POST, "attach") => attach(state, req, id, &q).await,
        (&Method::POST, "update") => Err(ApiError::not_implemented("container update")),
        _ => Err(ApiError::not_found()),
    }
}

fn timeout(q: &Query) -> Result<Option<i64>, ApiError> {
    match q.one("t").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("invalid timeout t={t}: use whole seconds"))),
    }
}

/// A unix timestamp as the docker CLI sends it (`1700000000`, `1700000000.123456789`).
pub(crate) fn parse_ts(s: &str) -> Result<f64, ApiError> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    berth_time::parse_unix(s)
        .map(|v| v as f64)
        .ok_or_else(|| ApiError::bad(format!("invalid time {s}: use unix seconds or RFC 3339")))
}

fn resize_container(state: &Arc<State>, id: &str, h: u16, w: u16) -> Result<(), ApiError> {
    let dir = state.containers.monitor_dir(id)?;
    resize_monitor(&dir, h, w);
    Ok(())
}

/// Ask the monitor to resize the container's pty.
fn resize_monitor(dir: &std::path::Path, h: u16, w: u16) {
    if let Err(e) = berth_engine::monitor::resize(dir, h, w) {
        debug!("resize: {e}");
    }
}

fn frame(tty: bool, timestamps: bool, stream: LogStream, time: &str, line: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(line.len() + 32);
    if timestamps {
        payload.extend_from_slice(time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(line.as_bytes());
    if tty {
        payload
    } else {
        mux_frame(
            match stream {
                LogStream::Stdout => 1,
                LogStream::Stderr => 2,
            },
            &payload,
        )
    }
}

async fn logs(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let svc = &state.containers;
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad(
            "you must choose at least one stream: stdout=1 and/or stderr=1",
        ));
    }
    let tail = match q.one("tail").filter(|t| !t.is_empty() && *t != "all") {
        None => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| {
            ApiError::bad(format!("invalid tail={t}: use a number of lines or all"))
        })?),
    };
    let since = match q.one("since").filter(|s| !s.is_empty() && *s != "0") {
        Some(s) => Some(parse_ts(s)?),
        None => None,
    };
    let until = match q.one("until").filter(|s| !s.is_empty() && *s != "0") {
        Some(s) => Some(parse_ts(s)?),
        None => None,
    };
    let o = LogOptions {
        follow: q.bool("follow"),
        stdout,
        stderr,
        timestamps: q.bool("timestamps"),
        tail,
        since,
        until,
    };
    let tty = svc.tty(id)?;
    let timestamps = o.timestamps;
    let (ltx, mut lrx) = mpsc::channel(256);
    svc.logs(id, o, ltx)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some((stream, time, line)) = lrx.recv().await {
            let b = frame(tty, timestamps, stream, &time, &line);
            if tx.send(Ok(Bytes::from(b))).await.is_err() {
                return;
            }
        }
    });
    Ok(channel_body(
        rx,
        if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        },
    ))
}

async fn attach(state: &Arc<State>, mut req: Request<Incoming>, id: &str, q: &Query) -> ApiResult {
    let svc = state.containers.clone();
    let full = svc.resolve(id)?;
    let tty = svc.tty(&full)?;
    let want_stdin = q.bool("stdin");
    let want_out = q.bool("stdout");
    let want_err = q.bool("stderr");
    let logs = q.bool("logs");
    let stream = q.bool("stream");
    // Docker's detach keys (default ctrl-p ctrl-q) end the attachment, not the container.
    let keys = berth_engine::exec::parse_detach_keys(q.str("detachKeys"))?;
    // When the client's stdin ends: with StdinOnce (and no tty) the container's stdin is
    // closed and the output goes on; otherwise the attachment ends, as Docker does (the docker
    // CLI handles ctrl-p ctrl-q itself and then closes its side).
    let stdin_once = svc.exec_target(&full).await?.config.stdin_once;
    let (resp, on) = hijack(&mut req, !tty);
    let (ltx, mut lrx) = mpsc::channel(256);
    svc.attach_output(&full, logs, stream, ltx)?;
    let mon_dir = svc.monitor_dir(&full)?;
    tokio::spawn(async move {
        let upgraded = match on.await {
            Ok(u) => u,
            Err(e) => {
                debug!("attach upgrade: {e}");
                return;
            }
        };
        let io = TokioIo::new(upgraded);
        let (mut rd, mut wr) = tokio::io::split(io);
        // Client → container stdin, through the monitor's attach socket.
        let (detach_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
        let stdin_task = if want_stdin {
            Some(tokio::spawn(async move {
                // The socket appears once the monitor runs (attach comes before start).
                let mut conn = None;
                for _ in 0..500 {
                    let dir = mon_dir.clone();
                    let c = tokio::task::spawn_blocking(move || {
                        berth_engine::monitor::attach_stdin(&dir)
                    })
                    .await;
                    if let Ok(Ok(c)) = c {
                        if c.set_nonblocking(true).is_ok() {
                            conn = tokio::net::UnixStream::from_std(c).ok();
                        }
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                let Some(mut conn) = conn else {
                    debug!("attach: the container takes no stdin");
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let mut scan = crate::api_exec::DetachScan::new(keys);
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            if tty || !stdin_once {
                                let _ = detach_tx.send(());
                                return;
                            }
                            break;
                        }
                        Ok(n) => {
                            let (pass, detach) = scan.feed(&buf[..n]);
                            if !pass.is_empty() && conn.write_all(&pass).await.is_err() {
                                break;
                            }
                            if detach {
                                let _ = detach_tx.send(());
                                return;
                            }
                        }
                    }
                }
                let _ = conn.shutdown().await;
            }))
        } else {
            drop(detach_tx);
            None
        };
        let mut detach_open = true;
        loop {
            let item = tokio::select! {
                item = lrx.recv() => item,
                r = &mut detached, if detach_open => {
                    detach_open = false;
                    if r.is_ok() {
                        // Detached: the client leaves, the container runs on.
                        break;
                    }
                    continue;
                }
            };
            let Some((stream, time, line)) = item else {
                break;
            };
            let want = match stream {
                LogStream::Stdout => want_out,
                LogStream::Stderr => want_err,
            };
            if !want {
                continue;
            }
            let b = frame(tty, false, stream, &time, &line);
            if wr.write_all(&b).await.is_err() {
                break;
            }
            let _ = wr.flush().await;
        }
        let _ = wr.shutdown().await;
        if let Some(t) = stdin_task {
            t.abort();
        }
    });
    Ok(resp)
}
