//! A small W3C WebDriver client over plain HTTP/1.1 + JSON (std `TcpStream`, serde_json).
//!
//! Enough for the desktop suites: sessions, finding elements by CSS selector, clicking,
//! typing, reading text and attributes, running scripts (sync and async), screenshots, and
//! `wait_*` helpers that poll until a condition holds and, when it never does, fail with the
//! page's visible text and the path of a screenshot taken at that moment.
//!
//! Every request opens its own connection (`Connection: close`): the drivers this talks to
//! (tauri-driver in front of WebKitWebDriver) are local, so the handshake costs nothing
//! worth a connection pool.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The W3C key that marks a JSON object as an element reference.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Special keys for [`WebDriver::send_keys`] (W3C "keys" code points).
pub mod keys {
    pub const ENTER: &str = "\u{E007}";
    pub const TAB: &str = "\u{E004}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const BACKSPACE: &str = "\u{E003}";
}

/// An error from the remote end (`{"value": {"error", "message"}}`) or from the transport.
#[derive(Debug, Clone)]
pub struct WdError {
    /// The W3C error code (`no such element`, `stale element reference`, …), or `transport`
    /// / `protocol` for failures on this side.
    pub error: String,
    pub message: String,
    pub status: u16,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.error, self.status, self.message)
    }
}

impl std::error::Error for WdError {}

impl WdError {
    fn transport(msg: String) -> WdError {
        WdError {
            error: "transport".into(),
            message: msg,
            status: 0,
        }
    }

    /// The element went away (or was replaced by a re-render) between find and use.
    pub fn is_stale(&self) -> bool {
        self.error == "stale element reference" || self.error == "no such element"
    }
}

pub type WdResult<T> = Result<T, WdError>;

/// One HTTP/1.1 request to `host:port`; (status, parsed JSON body or Null).
pub fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> WdResult<(u16, Value)> {
    let mut s =
        TcpStream::connect(addr).map_err(|e| WdError::transport(format!("connect {addr}: {e}")))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if body.is_some() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    s.write_all(req.as_bytes())
        .map_err(|e| WdError::transport(format!("{method} {path}: write: {e}")))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| WdError::transport(format!("{method} {path}: read: {e}")))?;
    let (status, body) =
        parse_response(&raw).map_err(|e| WdError::transport(format!("{method} {path}: {e}")))?;
    let v = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| WdError {
            error: "protocol".into(),
            message: format!(
                "{method} {path}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            ),
            status,
        })?
    };
    Ok((status, v))
}

/// Split a full HTTP/1.1 response into its status and (de-chunked) body.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = &raw[split + 4..];
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse().ok();
            }
        }
    }
    if chunked {
        return Ok((status, dechunk(body)?));
    }
    let body = match length {
        Some(n) if n <= body.len() => body[..n].to_vec(),
        Some(n) => return Err(format!("body cut short: {} of {n} bytes", body.len())),
        None => body.to_vec(),
    };
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line without CRLF")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err(format!("chunk cut short: {} of {size} bytes", b.len()));
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

/// Standard base64 (with or without padding, whitespace ignored) to bytes.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text.as_bytes() {
        if c == b'=' {
            break;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = val(c).ok_or_else(|| format!("not base64: byte {c:#x}"))?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// An element reference, valid for the session that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

impl Element {
    fn from_value(v: &Value) -> Option<Element> {
        v.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(|s| Element(s.to_string()))
    }

    /// The JSON form, to pass an element as a script argument.
    pub fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

/// A WebDriver session.
pub struct WebDriver {
    /// `127.0.0.1:<port>` of the remote end.
    pub addr: String,
    pub session: String,
    /// Where failure screenshots go (and `shot` puts its files).
    pub screenshot_dir: PathBuf,
    /// Prefix of screenshot files (the scenario's name).
    pub prefix: String,
    /// Used by the `wait_*` helpers that take no timeout.
    pub default_timeout: Duration,
    /// A log whose tail failure reports include (the driver's and the app's stderr).
    pub extra_log: Option<PathBuf>,
    /// When set (an X display such as `:5`), [`WebDriver::shot`] grabs the display's root
    /// window with ImageMagick's `import` instead of asking the driver: WebKitGTK never
    /// answers a screenshot command while its compositing mode is disabled.
    pub x11_display: Option<String>,
    shots: std::cell::Cell<u32>,
    deleted: bool,
}

impl WebDriver {
    /// `POST /session` with `capabilities` (the whole `{"capabilities": ...}` body).
    /// `timeout`: how long the remote end may take to launch the browser.
    pub fn new_session(
        addr: &str,
        capabilities: &Value,
        timeout: Duration,
        screenshot_dir: &Path,
        prefix: &str,
    ) -> WdResult<WebDriver> {
        let (status, v) = http_json(addr, "POST", "/session", Some(capabilities), timeout)?;
        let value = &v["value"];
        if status != 200 || value.get("error").is_some() {
            return Err(error_from(status, &v));
        }
        let session = value["sessionId"]
            .as_str()
            .or_else(|| v["sessionId"].as_str())
            .ok_or_else(|| WdError {
                error: "protocol".into(),
                message: format!("new session answer without sessionId: {v}"),
                status,
            })?
            .to_string();
        Ok(WebDriver {
            addr: addr.to_string(),
            session,
            screenshot_dir: screenshot_dir.to_path_buf(),
            prefix: prefix.to_string(),
            default_timeout: Duration::from_secs(30),
            extra_log: None,
            x11_display: None,
            shots: std::cell::Cell::new(0),
            deleted: false,
        })
    }

    /// A command on this session: `path` is relative to `/session/<id>` (e.g. `/element`).
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> WdResult<Value> {
        self.cmd_within(method, path, body, Duration::from_secs(120))
    }

    /// [`WebDriver::cmd`] with its own transport timeout.
    pub fn cmd_within(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> WdResult<Value> {
        let full = format!("/session/{}{path}", self.session);
        let body = match (method, body) {
            ("POST", None) => Some(json!({})),
            (_, b) => b,
        };
        // An empty answer is a connection a proxy reused after the driver closed it; a
        // command without side effects is simply sent again.
        let idempotent =
            method == "GET" || path.ends_with("/element") || path.ends_with("/elements");
        let mut attempt = 0;
        let (status, v) = loop {
            attempt += 1;
            match http_json(&self.addr, method, &full, body.as_ref(), timeout) {
                Err(e) if idempotent && attempt < 3 && e.message.contains("in 0 bytes") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => break other?,
            }
        };
        if status != 200 || v["value"].get("error").is_some_and(Value::is_string) {
            return Err(error_from(status, &v));
        }
        Ok(v.get("value").cloned().unwrap_or(Value::Null))
    }

    /// `DELETE /session/<id>`: the remote end closes the browser (the app).
    pub fn delete(&mut self) -> WdResult<()> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        self.cmd("DELETE", "", None).map(|_| ())
    }

    pub fn set_timeouts(
        &self,
        script_ms: u64,
        page_load_ms: u64,
        implicit_ms: u64,
    ) -> WdResult<()> {
        self.cmd(
            "POST",
            "/timeouts",
            Some(json!({"script": script_ms, "pageLoad": page_load_ms, "implicit": implicit_ms})),
        )
        .map(|_| ())
    }

    pub fn title(&self) -> WdResult<String> {
        Ok(self
            .cmd("GET", "/title", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// Navigate the window to `url`.
    pub fn navigate(&self, url: &str) -> WdResult<()> {
        self.cmd("POST", "/url", Some(json!({"url": url})))
            .map(|_| ())
    }

    /// Type `text` into whatever has the keyboard focus (W3C actions: one keyDown/keyUp
    /// pair per character), then release all keys.
    pub fn type_focused(&self, text: &str) -> WdResult<()> {
        let mut acts = Vec::new();
        for c in text.chars() {
            acts.push(json!({"type": "keyDown", "value": c.to_string()}));
            acts.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": acts}]})),
        )?;
        self.cmd("DELETE", "/actions", None).map(|_| ())
    }

    pub fn url(&self) -> WdResult<String> {
        Ok(self
            .cmd("GET", "/url", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    // ---- elements -------------------------------------------------------------------

    /// The first element matching `css`, or an error (`no such element`).
    pub fn find(&self, css: &str) -> WdResult<Element> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Element::from_value(&v).ok_or_else(|| WdError {
            error: "protocol".into(),
            message: format!("find {css}: not an element: {v}"),
            status: 200,
        })
    }

    /// Every element matching `css` (possibly none).
    pub fn find_all(&self, css: &str) -> WdResult<Vec<Element>> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(Element::from_value).collect())
            .unwrap_or_default())
    }

    /// The first element matching `css` inside `parent`.
    pub fn find_in(&self, parent: &Element, css: &str) -> WdResult<Element> {
        let v = self.cmd(
            "POST",
            &format!("/element/{}/element", parent.0),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Element::from_value(&v).ok_or_else(|| WdError {
            error: "protocol".into(),
            message: format!("find {css} in element: not an element: {v}"),
            status: 200,
        })
    }

    pub fn find_all_in(&self, parent: &Element, css: &str) -> WdResult<Vec<Element>> {
        let v = self.cmd(
            "POST",
            &format!("/element/{}/elements", parent.0),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(Element::from_value).collect())
            .unwrap_or_default())
    }

    pub fn click_el(&self, el: &Element) -> WdResult<()> {
        self.cmd("POST", &format!("/element/{}/click", el.0), None)
            .map(|_| ())
    }

    pub fn clear_el(&self, el: &Element) -> WdResult<()> {
        self.cmd("POST", &format!("/element/{}/clear", el.0), None)
            .map(|_| ())
    }

    /// Type `text` into `el` (W3C "element send keys"; see [`keys`] for Enter etc.).
    pub fn send_keys_el(&self, el: &Element, text: &str) -> WdResult<()> {
        self.cmd(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(json!({"text": text})),
        )
        .map(|_| ())
    }

    /// The element's rendered text.
    pub fn text_el(&self, el: &Element) -> WdResult<String> {
        Ok(self
            .cmd("GET", &format!("/element/{}/text", el.0), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// An attribute (None when absent).
    pub fn attr_el(&self, el: &Element, name: &str) -> WdResult<Option<String>> {
        let v = self.cmd("GET", &format!("/element/{}/attribute/{name}", el.0), None)?;
        Ok(match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// A DOM property (e.g. `value` of an input, `checked`).
    pub fn prop_el(&self, el: &Element, name: &str) -> WdResult<Value> {
        self.cmd("GET", &format!("/element/{}/property/{name}", el.0), None)
    }

    pub fn displayed_el(&self, el: &Element) -> WdResult<bool> {
        Ok(self
            .cmd("GET", &format!("/element/{}/displayed", el.0), None)?
            .as_bool()
            .unwrap_or(false))
    }

    // ---- scripts --------------------------------------------------------------------

    /// Run `script` (a function body: `return ...;`) with `args` (`arguments[i]`).
    pub fn execute(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Run `script` asynchronously: it ends by calling `arguments[arguments.length - 1](v)`.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Run a promise-returning expression (`body` is an async function body, e.g.
    /// `return await fetch(...)`), resolving to `{ok: value}` or `{err: message}`.
    pub fn execute_promise(&self, body: &str, args: Vec<Value>) -> WdResult<Result<Value, String>> {
        let script = format!(
            "const done = arguments[arguments.length - 1];\n\
             const args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);\n\
             (async function() {{ {body} }}).apply(null, args)\n\
               .then(v => done({{ok: v === undefined ? null : v}}),\n\
                     e => done({{err: (e && (e.message || (e.code && (e.code + ': ' + e.message)))) || JSON.stringify(e) || String(e)}}));"
        );
        let v = self.execute_async(&script, args)?;
        if let Some(e) = v.get("err") {
            return Ok(Err(match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        Ok(Ok(v.get("ok").cloned().unwrap_or(Value::Null)))
    }

    // ---- screenshots and page text --------------------------------------------------

    /// A PNG of the window (W3C "take screenshot"), written to `path`.
    pub fn screenshot_to(&self, path: &Path) -> WdResult<()> {
        let v = self.cmd_within("GET", "/screenshot", None, Duration::from_secs(20))?;
        let b64 = v.as_str().ok_or_else(|| WdError {
            error: "protocol".into(),
            message: "screenshot is not a string".into(),
            status: 200,
        })?;
        let png = base64_decode(b64).map_err(|e| WdError {
            error: "protocol".into(),
            message: e,
            status: 200,
        })?;
        if let Some(p) = path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        std::fs::write(path, png)
            .map_err(|e| WdError::transport(format!("write {}: {e}", path.display())))
    }

    /// Save `<dir>/<prefix>-<nn>-<step>.png` and return its path (a failed screenshot is
    /// reported on stderr and does not fail the caller).
    pub fn shot(&self, step: &str) -> PathBuf {
        let n = self.shots.get() + 1;
        self.shots.set(n);
        let clean: String = step
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self
            .screenshot_dir
            .join(format!("{}-{n:02}-{clean}.png", self.prefix));
        let res = match &self.x11_display {
            Some(display) => {
                // The X server shows what WebKit painted, which trails the DOM: let two
                // frames pass (and the paint reach the server) first.
                let _ = self.execute_async(
                    "const done = arguments[arguments.length - 1];\n\
                     requestAnimationFrame(() => requestAnimationFrame(() => done(null)));",
                    vec![],
                );
                std::thread::sleep(Duration::from_millis(250));
                x11_screenshot(display, &path)
            }
            None => self.screenshot_to(&path).map_err(|e| e.to_string()),
        };
        if let Err(e) = res {
            eprintln!("screenshot {} failed: {e}", path.display());
        }
        path
    }

    /// `document.body.innerText` (best effort, for failure messages).
    pub fn page_text(&self) -> String {
        match self.execute(
            "return document.body ? document.body.innerText : '';",
            vec![],
        ) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("<page text unavailable: {e}>"),
        }
    }

    /// A failure report: what was expected, the page's text and a fresh screenshot's path.
    pub fn failure(&self, what: &str) -> String {
        let shot = self.shot(&format!(
            "FAIL-{}",
            what.chars().take(40).collect::<String>()
        ));
        let mut text = self.page_text();
        if text.len() > 4000 {
            let mut cut = 4000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("\n…");
        }
        let log = self
            .extra_log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|l| {
                let lines: Vec<&str> = l.lines().collect();
                format!(
                    "\n--- app/driver log (tail):\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                )
            })
            .unwrap_or_default();
        format!(
            "{what}\n--- screenshot: {}\n--- page text:\n{text}{log}\n---",
            shot.display()
        )
    }

    // ---- waiting --------------------------------------------------------------------

    /// Poll `f` every 100 ms until it returns `Some`; panic after `timeout` with `what`, the
    /// page text and a screenshot. Errors from `f` (stale elements during a re-render) count
    /// as "not yet"; the last one is included in the panic message.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&WebDriver) -> WdResult<Option<T>>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        loop {
            match f(self) {
                Ok(Some(v)) => return v,
                Ok(None) => {}
                Err(e) => {
                    if e.error == "transport" || e.error == "invalid session id" {
                        panic!("waiting for {what}: the driver is gone: {e}");
                    }
                    last_err = Some(e)
                }
            }
            if Instant::now() >= deadline {
                let extra = last_err
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default();
                panic!(
                    "{}",
                    self.failure(&format!(
                        "timed out after {timeout:?} waiting for {what}{extra}"
                    ))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `css` matches a displayed element; return it.
    pub fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, self.default_timeout)
    }

    pub fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        self.wait_until(&format!("element {css}"), timeout, |d| {
            for el in d.find_all(css)? {
                if d.displayed_el(&el)? {
                    return Ok(Some(el));
                }
            }
            Ok(None)
        })
    }

    /// Wait until `css` matches nothing.
    pub fn wait_gone(&self, css: &str) {
        self.wait_until(&format!("no element {css}"), self.default_timeout, |d| {
            Ok(d.find_all(css)?.is_empty().then_some(()))
        })
    }

    /// Wait until the text of the first `css` element contains `needle`; return the text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait_text_within(css, needle, self.default_timeout)
    }

    pub fn wait_text_within(&self, css: &str, needle: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{css} to contain {needle:?}"), timeout, |d| {
            // textContent, not innerText: log panes and terminals may scroll text out of view.
            let v = d.execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )?;
            Ok(v.as_str()
                .filter(|t| t.contains(needle))
                .map(str::to_string))
        })
    }

    /// Wait until attribute `name` of the first `css` element equals `value`.
    pub fn wait_attr(&self, css: &str, name: &str, value: &str) {
        self.wait_until(
            &format!("{css} with {name}={value:?}"),
            self.default_timeout,
            |d| {
                let Some(el) = d.find_all(css)?.into_iter().next() else {
                    return Ok(None);
                };
                Ok((d.attr_el(&el, name)?.as_deref() == Some(value)).then_some(()))
            },
        )
    }

    // ---- conveniences on selectors --------------------------------------------------

    /// Wait for `css`, then click it (retrying while a re-render replaces the element).
    pub fn click(&self, css: &str) {
        self.wait_until(&format!("clickable {css}"), self.default_timeout, |d| {
            let el = match d.find_all(css)?.into_iter().next() {
                Some(el) => el,
                None => return Ok(None),
            };
            match d.click_el(&el) {
                Ok(()) => Ok(Some(())),
                Err(e)
                    if e.is_stale()
                        || e.error == "element not interactable"
                        || e.error == "element click intercepted" =>
                {
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Wait for `css`, clear it and type `text`.
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_for(css);
        let _ = self.clear_el(&el);
        self.send_keys_el(&el, text)
            .unwrap_or_else(|e| panic!("{}", self.failure(&format!("typing into {css}: {e}"))));
    }

    /// Set an input's or select's value the way a user's edit would (the `input` and
    /// `change` events fire, so framework bindings see it).
    pub fn set_value(&self, css: &str, value: &str) {
        let el = self.wait_for(css);
        self.execute(
            "const e = arguments[0]; const v = arguments[1];\n\
             const proto = e instanceof HTMLSelectElement ? HTMLSelectElement.prototype\n\
               : e instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;\n\
             Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, v);\n\
             e.dispatchEvent(new Event('input', {bubbles: true}));\n\
             e.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![el.json(), json!(value)],
        )
        .unwrap_or_else(|e| panic!("{}", self.failure(&format!("setting {css}: {e}"))));
    }

    /// The text of the first `css` element, or a failure.
    pub fn text(&self, css: &str) -> String {
        let el = self.wait_for(css);
        self.text_el(&el)
            .unwrap_or_else(|e| panic!("{}", self.failure(&format!("text of {css}: {e}"))))
    }

    /// Attribute `name` of the first `css` element.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let el = self.wait_for(css);
        self.attr_el(&el, name)
            .unwrap_or_else(|e| panic!("{}", self.failure(&format!("{name} of {css}: {e}"))))
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> usize {
        self.find_all(css).map(|v| v.len()).unwrap_or(0)
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.delete();
    }
}

/// The root window of X display `display` as a PNG (ImageMagick's `import`).
pub fn x11_screenshot(display: &str, path: &Path) -> Result<(), String> {
    if let Some(p) = path.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let out = std::process::Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(format!("png:{}", path.display()))
        .output()
        .map_err(|e| format!("run import (apt install imagemagick): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "import -display {display}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn error_from(status: u16, v: &Value) -> WdError {
    let value = &v["value"];
    WdError {
        error: value["error"]
            .as_str()
            .unwrap_or(if status == 404 {
                "unknown command"
            } else {
                "unknown error"
            })
            .to_string(),
        message: value["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        status,
    }
}

/// `[data-testid="<id>"]`
pub fn tid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert!(base64_decode("a*b").is_err());
    }

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{\"a\"}extra";
        assert_eq!(parse_response(r).unwrap(), (200, b"{\"a\"}".to_vec()));
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2;x=y\r\n\"}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (404, b"{\"a\"}".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
    }
}
