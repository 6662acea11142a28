//! A raw HTTP/1.1 client on the engine socket, for answers bollard's types would reshape or
//! drop: inspect prints the engine's JSON byte for byte (key order included), cp/export/events
//! and push stream bodies, login posts its own JSON. Request bodies go out as they are (with a
//! length) or chunked from a reader; answers are read as they arrive (chunked, by length or to
//! the end of the connection).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use serde_json::Value;

use super::{connect_message, parse_filters, usage, Ctx, Failure, Res};

/// What a request carries.
pub enum Body<'a> {
    /// Nothing.
    Empty,
    /// These bytes, of this content type.
    Bytes {
        content_type: &'a str,
        data: &'a [u8],
    },
    /// Whatever the reader gives, sent chunked, of this content type.
    Stream {
        content_type: &'a str,
        reader: &'a mut dyn Read,
    },
}

/// An engine answer whose body is read as it arrives.
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    body: Reader,
    /// The engine address, for the message when the connection breaks mid-answer.
    host: String,
}

enum Mode {
    Length(u64),
    Chunked { left: u64, crlf: bool, done: bool },
    Eof,
}

struct Reader {
    r: BufReader<UnixStream>,
    mode: Mode,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.mode {
            Mode::Length(0) => Ok(0),
            Mode::Length(n) => {
                let want = (*n).min(buf.len() as u64) as usize;
                let got = self.r.read(&mut buf[..want])?;
                if got == 0 && want > 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                *n -= got as u64;
                Ok(got)
            }
            Mode::Eof => self.r.read(buf),
            Mode::Chunked { left, crlf, done } => {
                if *done || buf.is_empty() {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    if *crlf {
                        self.r.read_line(&mut line)?;
                        line.clear();
                        *crlf = false;
                    }
                    if self.r.read_line(&mut line)? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    let size = chunk_size(&line)?;
                    if size == 0 {
                        // Trailers end with an empty line.
                        loop {
                            line.clear();
                            if self.r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = (*left).min(buf.len() as u64) as usize;
                let got = self.r.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                *left -= got as u64;
                if *left == 0 {
                    *crlf = true;
                }
                Ok(got)
            }
        }
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf)
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The whole body.
    pub fn bytes(mut self) -> Res<Vec<u8>> {
        let mut v = Vec::new();
        match self.read_to_end(&mut v) {
            Ok(_) => Ok(v),
            Err(e) => Err(Failure::Connect(connect_message(&self.host, &e))),
        }
    }

    /// The body as JSON.
    pub fn json(self) -> Res<Value> {
        let b = self.bytes()?;
        serde_json::from_slice(&b)
            .map_err(|e| usage(format!("unexpected answer from the engine: {e}")))
    }

    /// The body as a stream of JSON messages (pull/push progress), each as it arrives.
    pub fn messages(self) -> impl Iterator<Item = Result<Value, String>> {
        serde_json::Deserializer::from_reader(self)
            .into_iter::<Value>()
            .map(|r| r.map_err(|e| format!("reading the engine's progress: {e}")))
    }
}

/// An I/O failure on the engine connection, worded as when the engine cannot be reached.
pub fn io_fail(c: &Ctx, e: std::io::Error) -> Failure {
    Failure::Connect(connect_message(&c.host, &e))
}

/// Send one request without extra headers. See [`request_with`].
pub fn request(c: &Ctx, method: &str, path: &str, body: Body) -> Res<Response> {
    request_with(c, method, path, &[], body)
}

/// Send one request to `/v1.45{path}` with `headers` (e.g. `X-Registry-Auth`) and `body`.
/// Answers of 400 and above become the engine's message.
pub fn request_with(
    c: &Ctx,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Body,
) -> Res<Response> {
    let r = send(c, method, path, headers, body).map_err(|e| io_fail(c, e))?;
    if r.status >= 400 {
        let status = r.status;
        let b = r.bytes().unwrap_or_default();
        let msg = serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| {
                let t = String::from_utf8_lossy(&b).trim().to_string();
                if t.is_empty() {
                    format!("the engine answered {status}")
                } else {
                    t
                }
            });
        return Err(Failure::Daemon(msg));
    }
    Ok(r)
}

fn send(
    c: &Ctx,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Body,
) -> std::io::Result<Response> {
    let sock = c.host.strip_prefix("unix://").unwrap_or(&c.host);
    let mut s = UnixStream::connect(sock)?;
    let mut head = format!(
        "{method} /v1.45{path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &body {
        Body::Empty if method == "POST" || method == "PUT" => {
            head.push_str("Content-Length: 0\r\n");
        }
        Body::Empty => {}
        Body::Bytes { content_type, data } => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                data.len()
            ));
        }
        Body::Stream { content_type, .. } => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
            ));
        }
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    match body {
        Body::Empty => {}
        Body::Bytes { data, .. } => s.write_all(data)?,
        Body::Stream { reader, .. } => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                s.write_all(format!("{n:x}\r\n").as_bytes())?;
                s.write_all(&buf[..n])?;
                s.write_all(b"\r\n")?;
            }
            s.write_all(b"0\r\n\r\n")?;
        }
    }
    s.flush()?;
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mode = if method == "HEAD" || status == 204 || status == 304 {
        Mode::Length(0)
    } else if get("transfer-encoding").is_some_and(|t| t.to_lowercase().contains("chunked")) {
        Mode::Chunked {
            left: 0,
            crlf: false,
            done: false,
        }
    } else if let Some(n) = get("content-length").and_then(|n| n.parse().ok()) {
        Mode::Length(n)
    } else {
        Mode::Eof
    };
    Ok(Response {
        status,
        headers,
        body: Reader { r, mode },
        host: c.host.clone(),
    })
}

/// Percent-encode `s` for a path segment or query value: everything but RFC 3986's
/// unreserved characters, and `also_keep`.
fn percent(s: &str, also_keep: &[u8]) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || also_keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path segment or query value, percent-encoded (all but unreserved characters).
pub fn enc(s: &str) -> String {
    percent(s, b"")
}

/// An image reference in a path or query: as [`enc`], but `/`, `:` and `@` stay readable.
pub fn enc_ref(s: &str) -> String {
    percent(s, b"/:@")
}

/// `&filters=...` for the raw `--filter key=value` flags (empty when there are none).
pub fn filters_query(raw: &[String]) -> Res<String> {
    match parse_filters(raw)? {
        None => Ok(String::new()),
        Some(m) => {
            let v = serde_json::to_string(&m).unwrap_or_default();
            Ok(format!("&filters={}", enc(&v)))
        }
    }
}

/// The status line and headers of an HTTP answer.
pub(crate) fn read_head(r: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP answer: {:?}", line.trim()),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// The size on a chunked-encoding size line (extensions after `;` ignored).
pub(crate) fn chunk_size(line: &str) -> std::io::Result<u64> {
    let hex = line.trim().split(';').next().unwrap_or("");
    u64::from_str_radix(hex, 16).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad chunk size {hex:?} from the engine"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(enc_ref("a b/c:1"), "a%20b/c:1");
        assert_eq!(enc_ref("r@sha256:ab"), "r@sha256:ab");
        assert_eq!(enc("a b/c:1"), "a%20b%2Fc%3A1");
        assert_eq!(enc("x-y_z.~"), "x-y_z.~");
    }
}
