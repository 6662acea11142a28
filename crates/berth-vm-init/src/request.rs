//! The agent's requests: one line from the host, one line back. Every line starts with the
//! host's token (`<token> PING`): the agent's port is reachable by any local user on the
//! host, and the engine behind it is root in the VM and writes into the user's shared home,
//! so only the process that started the VM (and can read the token file it handed qemu
//! through fw_cfg) may use it.
//!
//! ```text
//! PING\n          -> OK <ms since the kernel started> <berthd-ready: yes|no>\n
//! API\n           -> OK\n, then a byte pipe to unix:///run/berth/berth.sock
//! CONNECT <port>\n -> OK\n, then a byte pipe to 127.0.0.1:<port>  (or ERR <why>\n)
//! SHUTDOWN\n      -> OK\n, then berthd is stopped, the data disk unmounted, power off
//! anything else   -> ERR unknown request\n
//! ```

/// Longest request line accepted (bytes, without the newline).
pub const MAX_LINE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Ping,
    Api,
    Connect(u16),
    Shutdown,
}

/// Check the line's token against `expected` (in constant time) and parse the rest. No
/// token configured in the guest refuses everything.
pub fn parse_authorized(line: &str, expected: Option<&str>) -> Result<Request, String> {
    let Some(expected) = expected else {
        return Err("the agent has no token (the host passes one with \
                    -fw_cfg name=opt/berth/token,file=PATH); refusing every request"
            .to_string());
    };
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (token, rest) = line.split_once(' ').unwrap_or((line, ""));
    if !same(token.as_bytes(), expected.as_bytes()) {
        return Err("unauthorized: wrong or missing token".to_string());
    }
    parse(rest)
}

/// Constant-time equality (no early exit on the first differing byte).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parse one request line without its token (a trailing `\n` or `\r\n` is allowed). The
/// error is the text that follows `ERR ` in the answer.
pub fn parse(line: &str) -> Result<Request, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut words = line.split(' ');
    let verb = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    match (verb, rest.as_slice()) {
        ("PING", []) => Ok(Request::Ping),
        ("API", []) => Ok(Request::Api),
        ("SHUTDOWN", []) => Ok(Request::Shutdown),
        ("CONNECT", [port]) => match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(Request::Connect(p)),
            _ => Err(format!(
                "bad port \"{port}\": CONNECT takes a TCP port number 1-65535"
            )),
        },
        ("CONNECT", _) => Err("CONNECT takes exactly one argument, the port".to_string()),
        _ => Err("unknown request".to_string()),
    }
}

/// The answer to `PING`.
pub fn ping_answer(ms_since_boot: u64, berthd_ready: bool) -> String {
    format!(
        "OK {ms_since_boot} {}\n",
        if berthd_ready { "yes" } else { "no" }
    )
}

/// An `ERR` answer: one line, whatever `why` holds.
pub fn err_answer(why: &str) -> String {
    let one_line: String = why
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("ERR {one_line}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse("PING\n"), Ok(Request::Ping));
        assert_eq!(parse("PING\r\n"), Ok(Request::Ping));
        assert_eq!(parse("API"), Ok(Request::Api));
        assert_eq!(parse("SHUTDOWN\n"), Ok(Request::Shutdown));
        assert_eq!(parse("CONNECT 8080\n"), Ok(Request::Connect(8080)));
        assert_eq!(parse("CONNECT 65535"), Ok(Request::Connect(65535)));
    }

    #[test]
    fn token_required() {
        let t = Some("s3cret");
        assert_eq!(parse_authorized("s3cret PING\n", t), Ok(Request::Ping));
        assert_eq!(
            parse_authorized("s3cret CONNECT 80\n", t),
            Ok(Request::Connect(80))
        );
        let unauthorized = Err("unauthorized: wrong or missing token".to_string());
        assert_eq!(parse_authorized("PING\n", t), unauthorized);
        assert_eq!(parse_authorized("s3cres PING\n", t), unauthorized);
        assert_eq!(parse_authorized("s3cret2 API\n", t), unauthorized);
        assert!(parse_authorized("s3cret PING", None)
            .unwrap_err()
            .starts_with("the agent has no token"));
        assert_eq!(
            parse_authorized("s3cret BOGUS", t),
            Err("unknown request".into())
        );
    }

    #[test]
    fn bad_requests() {
        assert_eq!(parse("ping\n"), Err("unknown request".into()));
        assert_eq!(parse("\n"), Err("unknown request".into()));
        assert_eq!(parse("PING extra\n"), Err("unknown request".into()));
        assert_eq!(parse("GET / HTTP/1.1\r\n"), Err("unknown request".into()));
        assert!(parse("CONNECT 0").unwrap_err().contains("bad port \"0\""));
        assert!(parse("CONNECT 70000").unwrap_err().contains("1-65535"));
        assert!(parse("CONNECT http").unwrap_err().contains("bad port"));
        assert!(parse("CONNECT").unwrap_err().contains("exactly one"));
        assert!(parse("CONNECT 1 2").unwrap_err().contains("exactly one"));
        assert!(parse("CONNECT  80").is_err());
    }

    #[test]
    fn answers() {
        assert_eq!(ping_answer(1234, true), "OK 1234 yes\n");
        assert_eq!(ping_answer(0, false), "OK 0 no\n");
        assert_eq!(err_answer("a\nb"), "ERR a b\n");
    }
}
