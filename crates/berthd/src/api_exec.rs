//! `/containers/{id}/exec|stats|top` and `/exec/{id}/start|resize|json`.

use crate::api::{
    channel_body, empty, hijack, json_body, json_response, mux_frame, ok_json, ApiError,
};
use crate::api::{ApiResult, Query, State};
use berth_engine::exec::{ExecConfig, ExecIo, StartConfig, Started};
use berth_engine::stats::{self, Cgroups};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub async fn container_route(
    state: &Arc<State>,
    req: Request<Incoming>,
    id: &str,
    action: &str,
) -> ApiResult {
    match (req.method().clone(), action) {
        (Method::POST, "exec") => {
            let cfg: ExecConfig = json_body(req, false).await?;
            let target = state.containers.exec_target(id).await?;
            let exec_id = state.execs.create(target, cfg)?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "Id": exec_id }),
            ))
        }
        (Method::GET, "stats") => stats(state, req, id).await,
        (Method::GET, "top") => top(state, req, id).await,
        _ => Err(ApiError::not_found()),
    }
}

pub async fn exec_route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let rest = rest.trim_matches('/');
    let Some((id, action)) = rest.split_once('/') else {
        return Err(ApiError::not_found());
    };
    match (req.method().clone(), action) {
        (Method::POST, "start") => start(state, req, id).await,
        (Method::POST, "resize") => {
            let q = Query::of(&req);
            let dim = |k: &str| -> Result<u16, ApiError> {
                let v = q.str(k);
                v.parse::<u16>().map_err(|_| {
                    ApiError::bad(format!(
                        "invalid resize {k}={v:?}: h and w must be numbers from 0 to 65535"
                    ))
                })
            };
            let (h, w) = (dim("h")?, dim("w")?);
            state.execs.resize(id, h, w)?;
            Ok(empty(StatusCode::OK))
        }
        (Method::GET, "json") => ok_json(&state.execs.inspect(id)?),
        _ => Err(ApiError::not_found()),
    }
}

async fn start(state: &Arc<State>, mut req: Request<Incoming>, id: &str) -> ApiResult {
    let tty = state.execs.startable(id)?;
    // Take the upgrade handle before the body is consumed; unused when detached.
    let (switching, on_upgrade) = hijack(&mut req, !tty);
    let sc: StartConfig = json_body(req, true).await?;
    let svc = state.execs.clone();
    let exec_id = id.to_string();
    let detach = sc.detach;
    let run = tokio::task::spawn_blocking(move || svc.start(&exec_id, &sc));
    if detach {
        run.await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
        return Ok(empty(StatusCode::OK));
    }
    // Like Docker, an attached start answers 101 at once; a failure to start is written
    // into the stream and the exec's ExitCode (126/127) tells the client.
    let id = id.to_string();
    tokio::spawn(async move {
        let started = run.await;
        let up = match on_upgrade.await {
            Ok(up) => TokioIo::new(up),
            Err(e) => {
                tracing::warn!(exec = %id, "exec start: connection upgrade failed: {e}");
                return;
            }
        };
        match started {
            Ok(Ok(started)) => pump(up, started).await,
            Ok(Err(e)) => fail_stream(up, tty, &e.message).await,
            Err(e) => fail_stream(up, tty, &e.to_string()).await,
        }
    });
    Ok(switching)
}

/// Writes a start error into the hijacked stream (stdout frame without a tty) and closes.
async fn fail_stream<S: tokio::io::AsyncWrite + Unpin>(mut conn: S, tty: bool, msg: &str) {
    let text = format!("{msg}\r\n");
    let bytes = if tty {
        text.into_bytes()
    } else {
        mux_frame(1, text.as_bytes())
    };
    let _ = conn.write_all(&bytes).await;
    let _ = conn.shutdown().await;
}

/// Copies the process's output to the connection and the connection to its stdin until the
/// process has exited and its output is drained (or 2 s after the exit), then closes.
async fn pump<S>(conn: S, started: Started)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let mut done = started.done;
    // Where the client's bytes go (None: stdin not attached; they are read and dropped).
    let stdin: Option<Box<dyn Write + Send>> = match started.io {
        ExecIo::Detached => None,
        ExecIo::Tty(master) => {
            let input = master.try_clone().ok();
            spawn_reader(master, None, out_tx);
            input.map(|f| Box::new(f) as Box<dyn Write + Send>)
        }
        ExecIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            spawn_reader(stdout, Some(1), out_tx.clone());
            spawn_reader(stderr, Some(2), out_tx);
            stdin.map(|s| Box::new(s) as Box<dyn Write + Send>)
        }
    };
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    if let Some(mut w) = stdin {
        // Ends (closing the process's stdin) when the client half-closes.
        std::thread::spawn(move || {
            for chunk in in_rx {
                if w.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
    } else {
        drop(in_rx);
    }
    let (detach_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let keys = started.detach_keys;
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut scan = DetachScan::new(keys);
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (pass, detach) = scan.feed(&buf[..n]);
                    if !pass.is_empty() {
                        let _ = in_tx.send(pass);
                    }
                    if detach {
                        let _ = detach_tx.send(());
                        break;
                    }
                }
            }
        }
    });
    let mut exited = done.borrow().is_some();
    let mut grace = None;
    let mut client_gone = false;
    let mut detach_open = true;
    loop {
        if exited && grace.is_none() {
            grace = Some(Box::pin(tokio::time::sleep(Duration::from_secs(2))));
        }
        tokio::select! {
            m = out_rx.recv() => match m {
                Some(b) => {
                    if !client_gone && wr.write_all(&b).await.is_err() {
                        client_gone = true;
                    }
                }
                None => break,
            },
            r = done.changed(), if !exited => {
                if r.is_err() || done.borrow().is_some() {
                    exited = true;
                }
            }
            _ = async { if let Some(g) = grace.as_mut() { g.await } }, if grace.is_some() => break,
            r = &mut detached, if detach_open => {
                detach_open = false;
                if r.is_ok() {
                    // The detach keys: the client leaves, the process runs on.
                    let _ = wr.shutdown().await;
                    return;
                }
            }
        }
    }
    // The output is over; the exit code must be recorded before the client sees EOF (the
    // docker CLI inspects the exec right after).
    let _ = done.wait_for(|c| c.is_some()).await;
    input.abort();
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Finds the detach key sequence in the client's input; bytes of a partial match are held
/// back until the match fails.
pub(crate) struct DetachScan {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScan {
    pub(crate) fn new(keys: Vec<u8>) -> DetachScan {
        DetachScan { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the whole sequence was typed.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// A thread reading `r` into `tx`: multiplexed frames of `stream`, or raw bytes (tty).
fn spawn_reader<R: Read + Send + 'static>(mut r: R, stream: Option<u8>, tx: mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                // EIO on a pty master: every slave fd is closed.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = match stream {
                        Some(s) => mux_frame(s, &buf[..n]),
                        None => buf[..n].to_vec(),
                    };
                    if tx.blocking_send(msg).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

async fn sample(cg: &Cgroups, pid: i32) -> Option<stats::Sample> {
    let cg = cg.clone();
    tokio::task::spawn_blocking(move || stats::sample(&cg, pid, std::path::Path::new("/proc")))
        .await
        .ok()
}

fn flag(q: &Query, k: &str, default: bool) -> Result<bool, ApiError> {
    match q.one(k) {
        None | Some("") => Ok(default),
        Some("1") | Some("true") | Some("True") => Ok(true),
        Some("0") | Some("false") | Some("False") => Ok(false),
        Some(v) => Err(ApiError::bad(format!(
            "invalid value for {k}: {v:?}: use true or false"
        ))),
    }
}

/// `GET /containers/{id}/stats?stream=&one-shot=`.
async fn stats(state: &Arc<State>, req: Request<Incoming>, id: &str) -> ApiResult {
    let q = Query::of(&req);
    let stream = flag(&q, "stream", true)?;
    let one_shot = flag(&q, "one-shot", false)?;
    if one_shot && stream {
        return Err(ApiError::bad(
            "cannot have stream=true and one-shot=true: set stream=false with one-shot",
        ));
    }
    let t = state.containers.exec_target(id).await?;
    let cg = if t.running && t.pid > 0 {
        Cgroups::of_pid(t.pid)
    } else {
        None
    };
    let Some(cg) = cg else {
        // Not running: one reading of zeros, like Docker.
        return ok_json(&stats::stats_json(&t.name, &t.id, None, None));
    };
    if !stream {
        let first = sample(&cg, t.pid).await;
        if one_shot {
            return ok_json(&stats::stats_json(&t.name, &t.id, first.as_ref(), None));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let second = sample(&cg, t.pid).await;
        return ok_json(&stats::stats_json(
            &t.name,
            &t.id,
            second.as_ref(),
            first.as_ref(),
        ));
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut prev: Option<stats::Sample> = None;
        loop {
            if cg.pids().is_empty() {
                break;
            }
            let cur = sample(&cg, t.pid).await;
            let mut line = stats::stats_json(&t.name, &t.id, cur.as_ref(), prev.as_ref())
                .to_string()
                .into_bytes();
            line.push(b'\n');
            if tx.send(Ok(bytes::Bytes::from(line))).await.is_err() {
                break; // the client went away
            }
            prev = cur;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(channel_body(rx, "application/json"))
}

/// `GET /containers/{id}/top?ps_args=`.
async fn top(state: &Arc<State>, req: Request<Incoming>, id: &str) -> ApiResult {
    let ps_args = Query::of(&req).str("ps_args").to_string();
    let t = state.containers.exec_target(id).await?;
    if !t.running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", t.id),
        ));
    }
    let pids = Cgroups::of_pid(t.pid)
        .map(|c| c.pids())
        .unwrap_or_else(|| vec![t.pid]);
    let v = tokio::task::spawn_blocking(move || stats::top(&ps_args, &pids))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    ok_json(&v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::process::{Command, Stdio};

    /// Splits Docker's multiplexed stream into (stdout, stderr).
    fn demux(mut b: &[u8]) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while b.len() >= 8 {
            let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
            let payload = &b[8..8 + n];
            match b[0] {
                1 => out.extend_from_slice(payload),
                2 => err.extend_from_slice(payload),
                s => panic!("unexpected stream {s}"),
            }
            b = &b[8 + n..];
        }
        assert!(b.is_empty(), "trailing partial frame");
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pump_frames_output_closes_stdin_on_half_close_and_ends_after_the_exit() {
        let mut child = Command::new("sh")
            .args(["-c", "cat; echo to-stderr >&2; exit 5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let io = ExecIo::Pipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().unwrap(),
            stderr: child.stderr.take().unwrap(),
        };
        let (tx, rx) = tokio::sync::watch::channel(None);
        let (exit_tx, exit_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let code = child.wait().unwrap().code().unwrap();
            exit_tx.send(code).unwrap();
            tx.send(Some(code)).unwrap();
        });
        let (client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(pump(
            server,
            Started {
                io,
                done: rx,
                detach_keys: vec![16, 17],
            },
        ));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"hello through stdin\n").await.unwrap();
        // Half-close: the process's stdin gets EOF, cat ends.
        cwr.shutdown().await.unwrap();
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.unwrap();
        // The stream ends only once the exit is known.
        assert_eq!(exit_rx.try_recv().unwrap(), 5);
        let (out, err) = demux(&got);
        assert_eq!(out, "hello through stdin\n");
        assert_eq!(err, "to-stderr\n");
        task.await.unwrap();
    }

    #[test]
    fn detach_keys_are_found_across_reads_and_partial_matches_pass_through() {
        let mut d = DetachScan::new(vec![16, 17]);
        assert_eq!(d.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(d.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(d.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(d.feed(b"\x11rest"), (Vec::new(), true));
        let mut none = DetachScan::new(Vec::new());
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }

    #[tokio::test]
    async fn a_start_error_goes_into_the_stream() {
        let (client, server) = tokio::io::duplex(4096);
        fail_stream(server, false, "unable to find user ghost").await;
        let mut got = Vec::new();
        let (mut crd, _w) = tokio::io::split(client);
        crd.read_to_end(&mut got).await.unwrap();
        assert_eq!(demux(&got).0, "unable to find user ghost\r\n");
    }
}
