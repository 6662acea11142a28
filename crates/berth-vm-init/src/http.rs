//! The readiness probe: `GET /_ping` on berthd's socket answers `HTTP/1.x 200` with body `OK`.

/// The request the init sends.
pub const PING_REQUEST: &[u8] = b"GET /_ping HTTP/1.0\r\nHost: berth\r\n\r\n";

/// Whether `resp` (what berthd answered, possibly partial) is a 200 response.
pub fn is_ok_response(resp: &[u8]) -> bool {
    let line_end = resp.iter().position(|&b| b == b'\n').unwrap_or(resp.len());
    let line = String::from_utf8_lossy(&resp[..line_end]);
    let mut parts = line.split_whitespace();
    matches!(
        (parts.next(), parts.next()),
        (Some("HTTP/1.0" | "HTTP/1.1"), Some("200"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert!(is_ok_response(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\n\r\nOK"
        ));
        assert!(is_ok_response(b"HTTP/1.0 200 OK\r\n"));
        assert!(!is_ok_response(b"HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(!is_ok_response(b"HTTP/1.1 2000 x\r\n"));
        assert!(!is_ok_response(b""));
        assert!(!is_ok_response(b"SSH-2.0-x\r\n"));
    }
}
