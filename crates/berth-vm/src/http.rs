//! Just enough HTTP/1.1 to ask the guest's engine for its containers and follow its `/events`
//! over an agent `API` pipe: a GET, the response head, chunked or sized bodies, and a splitter
//! for the stream of JSON values.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, Result};

/// A response's status and the headers that matter for framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub content_length: Option<usize>,
}

/// Parses the response head (the bytes before the blank line).
pub fn parse_head(head: &[u8]) -> Result<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| Error::Other(format!("the engine answered {status_line:?}, not HTTP")))?;
    let mut h = Head {
        status,
        chunked: false,
        content_length: None,
    };
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                h.chunked = true;
            } else if k == "content-length" {
                h.content_length = v.parse().ok();
            }
        }
    }
    Ok(h)
}

/// Decodes `Transfer-Encoding: chunked` incrementally.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    buf: Vec<u8>,
    /// Bytes left in the current chunk's data (then its CRLF).
    left: usize,
    in_data: bool,
    done: bool,
}

impl ChunkedDecoder {
    /// Feeds raw bytes; returns the body bytes they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.done {
                self.buf.clear();
                return Ok(out);
            }
            if self.in_data {
                if self.buf.len() < self.left + 2 {
                    // Hand out what there is, but keep the CRLF's place.
                    let take = self.buf.len().min(self.left);
                    out.extend(self.buf.drain(..take));
                    self.left -= take;
                    return Ok(out);
                }
                out.extend(self.buf.drain(..self.left));
                if &self.buf[..2] != b"\r\n" {
                    return Err(Error::Other("bad chunked encoding from the engine".into()));
                }
                self.buf.drain(..2);
                self.left = 0;
                self.in_data = false;
                continue;
            }
            let Some(nl) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                return Ok(out);
            };
            let line = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
            self.buf.drain(..nl + 2);
            let size_hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| Error::Other(format!("bad chunk size {line:?} from the engine")))?;
            if size == 0 {
                self.done = true;
            } else {
                self.left = size;
                self.in_data = true;
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Splits a byte stream into whole JSON values (newline-delimited or simply concatenated).
#[derive(Debug, Default)]
pub struct JsonSplitter {
    buf: Vec<u8>,
}

impl JsonSplitter {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<serde_json::Value>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut it =
            serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
        let mut consumed = 0;
        loop {
            match it.next() {
                Some(Ok(v)) => {
                    consumed = it.byte_offset();
                    out.push(v);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    return Err(Error::Other(format!(
                        "bad JSON in the engine's stream: {e}"
                    )))
                }
                None => {
                    consumed = it.byte_offset();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        Ok(out)
    }
}

/// Sends `GET <path>` and reads the response head; the stream is left at the body.
pub async fn send_get<S>(s: &mut S, path: &str) -> Result<(Head, Vec<u8>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let req = format!("GET {path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-vm\r\n\r\n");
    let io = |e: std::io::Error| Error::Other(format!("GET {path} from the engine: {e}"));
    s.write_all(req.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = parse_head(&buf[..end])?;
            let rest = buf.split_off(end + 4);
            return Ok((head, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(Error::Other(format!("GET {path}: response head too long")));
        }
        let n = s.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(Error::Other(format!(
                "GET {path}: the engine closed the connection before answering"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `GET <path>` and its whole body as JSON (one request per connection).
pub async fn get_json<S>(mut s: S, path: &str) -> Result<serde_json::Value>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, mut rest) = send_get(&mut s, path).await?;
    let io = |e: std::io::Error| Error::Other(format!("GET {path} from the engine: {e}"));
    let mut body = Vec::new();
    let mut dec = ChunkedDecoder::default();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if head.chunked {
            body.extend(dec.feed(&rest)?);
            if dec.is_done() {
                break;
            }
        } else {
            body.extend_from_slice(&rest);
            if head.content_length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
        let n = s.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            break;
        }
        rest = chunk[..n].to_vec();
    }
    if head.status >= 300 {
        return Err(Error::Other(format!(
            "GET {path}: the engine answered {}: {}",
            head.status,
            String::from_utf8_lossy(&body).trim()
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Error::Other(format!("GET {path}: the engine's answer is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_framing() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
        )
        .unwrap();
        assert_eq!((h.status, h.chunked, h.content_length), (200, true, None));
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12").unwrap();
        assert_eq!(
            (h.status, h.chunked, h.content_length),
            (404, false, Some(12))
        );
        assert!(parse_head(b"SSH-2.0-x").is_err());
    }

    #[test]
    fn chunked_decoding_across_arbitrary_splits() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = ChunkedDecoder::default();
            let mut out = d.feed(&wire[..split]).unwrap();
            out.extend(d.feed(&wire[split..]).unwrap());
            assert_eq!(out, b"hello, world", "split at {split}");
            assert!(d.is_done());
        }
        // Byte by byte.
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        for b in wire {
            out.extend(d.feed(&[*b]).unwrap());
        }
        assert_eq!(out, b"hello, world");
        assert!(ChunkedDecoder::default().feed(b"zz\r\n").is_err());
    }

    #[test]
    fn json_values_split_out_of_a_stream() {
        let mut s = JsonSplitter::default();
        assert!(s.feed(b"{\"a\":1}\n{\"b\":").unwrap().len() == 1);
        let v = s.feed(b"[2]}\n").unwrap();
        assert_eq!(v, [serde_json::json!({"b": [2]})]);
        assert!(s.feed(b"\n").unwrap().is_empty());
        assert!(s.feed(b"}oops").is_err());
    }

    #[test]
    fn get_json_over_a_duplex_pipe() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, mut server) = tokio::io::duplex(1024);
            let srv = tokio::spawn(async move {
                let mut req = vec![0u8; 512];
                let n = server.read(&mut req).await.unwrap();
                let req = String::from_utf8_lossy(&req[..n]).into_owned();
                server
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[{\"I\r\n",
                    )
                    .await
                    .unwrap();
                server
                    .write_all(b"8\r\nd\":\"x\"}]\r\n0\r\n\r\n")
                    .await
                    .unwrap();
                req
            });
            let v = get_json(client, "/containers/json").await.unwrap();
            assert_eq!(v, serde_json::json!([{"Id": "x"}]));
            let req = srv.await.unwrap();
            assert!(
                req.starts_with("GET /containers/json HTTP/1.1\r\n"),
                "{req}"
            );
        });
    }
}
