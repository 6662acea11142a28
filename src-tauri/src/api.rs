//! One raw HTTP/1.0 client over the engine's socket, for what bollard reshapes or drops:
//! inspect JSON byte for byte, `/system/df` in the engine's own format, push progress with
//! its layer ids, Berth's own `/berth/…` paths and `/auth`.

use crate::error::{self, Res};
use crate::App;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// `GET` a path of the engine's API, returning the body as the engine sent it.
pub async fn get(app: &App, path: &str) -> Res<String> {
    request(app, "GET", path, None).await
}

/// One HTTP/1.0 request over the engine's socket, for the answers bollard reshapes (inspect
/// JSON byte for byte, Berth's own `/berth/…` paths, `/auth`). The body of a 2xx answer;
/// else the engine's message as an `AppError`.
pub async fn request(app: &App, method: &str, path: &str, json: Option<&str>) -> Res<String> {
    use tokio::io::AsyncReadExt;
    let down = |e: std::io::Error| error::unreachable(app.engine.host(), &e.to_string());
    let mut s = tokio::net::UnixStream::connect(app.engine.socket())
        .await
        .map_err(down)?;
    let mut req =
        format!("{method} {path} HTTP/1.0\r\nHost: berth\r\nAccept: application/json\r\n");
    if let Some(b) = json {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    s.write_all(req.as_bytes()).await.map_err(down)?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .map_err(|_| error::system(format!("the engine did not answer {method} {path} in 30 s")))?
        .map_err(down)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    if !(200..300).contains(&status) {
        return Err(status_error(app.engine.host(), status, &body));
    }
    Ok(body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        // `get`, not indexing: a size that is off (or splits a character once the body went
        // through from_utf8_lossy) ends the body instead of panicking.
        let (Some(chunk), Some(tail)) = (rest.get(..n), rest.get(n..)) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        s = tail.trim_start_matches("\r\n");
    }
    out
}

/// A streaming `POST` (push progress): calls `on_line` for each JSON line of the answer as it
/// arrives. `headers` are extra request headers (`X-Registry-Auth`).
pub async fn stream_lines(
    app: &App,
    path: &str,
    headers: &[(&str, String)],
    on_line: impl FnMut(serde_json::Value),
) -> Res<()> {
    post_stream(&app.engine, path, headers, None, on_line).await
}

/// A request body sent from a file (a build context), `content_type` and all.
pub struct FileBody {
    pub file: tokio::fs::File,
    pub len: u64,
    pub content_type: &'static str,
}

/// A streaming `POST` with an optional body read from a file: calls `on_line` for each JSON
/// line of the answer as it arrives. Takes the engine (not the `App`) so that a spawned task
/// can run it.
pub async fn post_stream(
    engine: &crate::engine::Engine,
    path: &str,
    headers: &[(&str, String)],
    body: Option<FileBody>,
    mut on_line: impl FnMut(serde_json::Value),
) -> Res<()> {
    let host = engine.host();
    let down = |e: std::io::Error| error::unreachable(host, &e.to_string());
    let mut s = tokio::net::UnixStream::connect(engine.socket())
        .await
        .map_err(down)?;
    let len = body.as_ref().map_or(0, |b| b.len);
    let mut req = format!("POST {path} HTTP/1.0\r\nHost: berth\r\nContent-Length: {len}\r\n");
    if let Some(b) = &body {
        req.push_str(&format!("Content-Type: {}\r\n", b.content_type));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.map_err(down)?;
    let mut sent: Result<(), std::io::Error> = Ok(());
    if let Some(b) = body {
        // Streamed from the file, never whole in memory. A failed write is kept: the engine
        // may have answered early (a bad parameter) and closed; its answer says why.
        let mut f = b.file;
        sent = tokio::io::copy(&mut f, &mut s).await.map(|_| ());
        if sent.is_ok() {
            sent = s.flush().await;
        }
    }
    let mut r = tokio::io::BufReader::new(s);
    let mut line = String::new();
    let first = r.read_line(&mut line).await;
    if first.as_ref().map_or(true, |n| *n == 0) {
        return Err(down(match (sent, first) {
            (Err(e), _) | (_, Err(e)) => e,
            _ => std::io::Error::other("the engine closed the connection without answering"),
        }));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line).await.map_err(down)? == 0 || line == "\r\n" {
            break;
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
    }
    if !(200..300).contains(&status) {
        let mut body = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut r, &mut body)
            .await
            .map_err(down)?;
        let body = if chunked { dechunk(&body) } else { body };
        return Err(status_error(host, status, &body));
    }
    loop {
        line.clear();
        if r.read_line(&mut line).await.map_err(down)? == 0 {
            break;
        }
        // With chunked framing, size lines are hex numbers, not JSON: skipped.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) {
            if v.is_object() {
                on_line(v);
            }
        }
    }
    Ok(())
}

/// An error answer as an `AppError`: the engine's `{"message": …}` when it sent one.
fn status_error(host: &str, status: u16, body: &str) -> berth_desktop_dto::AppError {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    error::engine(
        host,
        bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: msg,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A one-connection engine on a temp socket: reads the request (head and
    /// `Content-Length` body), hands them back, and answers `reply`.
    async fn fake_engine(
        reply: &'static str,
        read_body: bool,
    ) -> (
        tempfile::TempDir,
        crate::engine::EngineRef,
        tokio::task::JoinHandle<(String, Vec<u8>)>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("e.sock");
        let l = tokio::net::UnixListener::bind(&sock).unwrap();
        let task = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut r = tokio::io::BufReader::new(s);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                head.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; if read_body { len } else { 0 }];
            r.read_exact(&mut body).await.unwrap();
            r.get_mut().write_all(reply.as_bytes()).await.unwrap();
            r.get_mut().shutdown().await.unwrap();
            (head, body)
        });
        let mut cfg = crate::engine::EngineConfig::from_env();
        cfg.host = format!("unix://{}", sock.display());
        cfg.socket = sock;
        (dir, crate::engine::Engine::new(cfg).unwrap(), task)
    }

    async fn file_body(bytes: &[u8]) -> FileBody {
        use std::io::{Seek, Write};
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        FileBody {
            file: tokio::fs::File::from_std(f),
            len: bytes.len() as u64,
            content_type: "application/x-tar",
        }
    }

    #[tokio::test]
    async fn a_file_body_is_streamed_and_json_lines_come_back() {
        let (_d, engine, task) = fake_engine(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"stream\":\"a\\n\"}\nnot json\n{\"aux\":{\"ID\":\"sha256:1\"}}\n",
            true,
        )
        .await;
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut got = Vec::new();
        post_stream(
            &engine,
            "/v1.45/build?t=x",
            &[],
            Some(file_body(&payload).await),
            |v| got.push(v),
        )
        .await
        .unwrap();
        let (head, body) = task.await.unwrap();
        assert!(
            head.starts_with("POST /v1.45/build?t=x HTTP/1.0\r\n"),
            "{head}"
        );
        assert!(head.contains("Content-Length: 200000\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/x-tar\r\n"),
            "{head}"
        );
        assert!(body == payload, "the body arrived changed");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1]["aux"]["ID"], "sha256:1");
    }

    #[tokio::test]
    async fn an_early_refusal_is_reported_with_the_engines_message() {
        // The engine answers without reading the body (a bad parameter).
        let (_d, engine, task) = fake_engine(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"message\":\"invalid buildargs parameter\"}",
            false,
        )
        .await;
        let e = post_stream(
            &engine,
            "/build",
            &[],
            Some(file_body(b"small").await),
            |_| {},
        )
        .await
        .unwrap_err();
        task.await.unwrap();
        assert_eq!(e.code, berth_desktop_dto::ErrorCode::InvalidInput);
        assert_eq!(e.message, "invalid buildargs parameter");
    }

    #[test]
    fn chunked_bodies_are_joined_and_bad_sizes_do_not_panic() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
        // A size that lands inside a multi-byte character, and one past the end.
        assert_eq!(dechunk("1\r\né\r\n0\r\n\r\n"), "");
        assert_eq!(dechunk("ff\r\nabc"), "");
    }
}
