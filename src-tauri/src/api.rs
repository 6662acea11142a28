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
    let mut s = tokio::net::UnixStream::connect(&app.engine.config.socket)
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
        return Err(status_error(app, status, &body));
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
    mut on_line: impl FnMut(serde_json::Value),
) -> Res<()> {
    let down = |e: std::io::Error| error::unreachable(app.engine.host(), &e.to_string());
    let mut s = tokio::net::UnixStream::connect(&app.engine.config.socket)
        .await
        .map_err(down)?;
    let mut req = format!("POST {path} HTTP/1.0\r\nHost: berth\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.map_err(down)?;
    let mut r = tokio::io::BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.map_err(down)?;
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
        return Err(status_error(app, status, &body));
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
fn status_error(app: &App, status: u16, body: &str) -> berth_desktop_dto::AppError {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    error::engine(
        app.engine.host(),
        bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: msg,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn chunked_bodies_are_joined_and_bad_sizes_do_not_panic() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
        // A size that lands inside a multi-byte character, and one past the end.
        assert_eq!(dechunk("1\r\né\r\n0\r\n\r\n"), "");
        assert_eq!(dechunk("ff\r\nabc"), "");
    }
}
