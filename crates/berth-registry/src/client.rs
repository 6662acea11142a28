//! HTTP plumbing: endpoints, ping, auth challenges and tokens, manual redirects, retries.

use crate::config::{
    is_loopback, normalize_host, url_authority, RegistryConfig, DOCKER_HUB, DOCKER_HUB_UPSTREAM,
};
use crate::{Error, Result};
use base64::Engine as _;
use berth_store::Digest;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// One place content can come from: a mirror or the registry itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL (`https://registry-1.docker.io`, `http://127.0.0.1:5001`).
    pub url: String,
    /// Tried when `url` cannot be reached (insecure registries: the other scheme).
    pub fallback_url: Option<String>,
    pub mirror: bool,
    /// May resolve tags (always true for the registry itself).
    pub resolve_tags: bool,
    pub insecure: bool,
    /// Whose credentials apply (`docker.io`, `localhost:5000`, a mirror's host).
    pub cred_host: String,
}

/// How an endpoint wants requests authorised (from its `/v2/` ping or a 401).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// A pinged endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub base: String,
    pub ep: Endpoint,
    pub challenge: Challenge,
    /// The configured username for this endpoint, if any (for error messages).
    pub user: Option<String>,
}

/// Why one endpoint could not serve a request.
#[derive(Clone, Debug)]
pub(crate) enum Fail {
    NotFound(String),
    Auth(String),
    Unreachable(String),
    Corrupt(String),
    Unsupported(String),
    Other(String),
}

impl Fail {
    pub fn msg(&self) -> &str {
        match self {
            Fail::NotFound(m)
            | Fail::Auth(m)
            | Fail::Unreachable(m)
            | Fail::Corrupt(m)
            | Fail::Unsupported(m)
            | Fail::Other(m) => m,
        }
    }
}

/// Build the error for a request every endpoint failed: the last endpoint (the registry
/// itself) decides the kind; the message lists every endpoint's answer.
pub(crate) fn all_failed(what: &str, tried: &[(String, Fail)]) -> Error {
    let list = tried
        .iter()
        .map(|(ep, f)| format!("{ep}: {}", f.msg()))
        .collect::<Vec<_>>()
        .join("; ");
    let list = if list.is_empty() {
        "no endpoint may serve this".to_string()
    } else {
        list
    };
    match tried.last().map(|(_, f)| f) {
        Some(Fail::NotFound(_)) | None => Error::NotFound(format!("{what} (tried: {list})")),
        Some(Fail::Auth(_)) => Error::Unauthorized(format!("{what}: access denied (tried: {list})")),
        Some(Fail::Unreachable(_)) => Error::Unavailable(format!(
            "{what}: no endpoint reachable (tried: {list}); check the network and the registry address"
        )),
        Some(Fail::Corrupt(_)) => Error::Verification(format!(
            "{what}: every endpoint served data that failed verification (tried: {list})"
        )),
        Some(Fail::Unsupported(_)) => Error::Unsupported(format!("{what} (tried: {list})")),
        Some(Fail::Other(_)) => Error::Unavailable(format!("{what} (tried: {list})")),
    }
}

#[derive(Clone, Debug)]
struct Token {
    value: String,
    expires: Instant,
}

pub(crate) type BlobCell = Arc<OnceCell<std::result::Result<String, String>>>;

pub(crate) struct Inner {
    pub cfg: RegistryConfig,
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    conns: Mutex<HashMap<String, Conn>>,
    /// Endpoints that could not be reached recently: url → (until, why).
    down: Mutex<HashMap<String, (Instant, String)>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    pub inflight: Mutex<HashMap<Digest, BlobCell>>,
}

/// The registry client. Cheap to clone; clones share connections, tokens and in-flight
/// downloads.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) const MAX_REDIRECTS: usize = 10;
/// How long an unreachable endpoint is skipped without another connection attempt.
pub(crate) const DOWN_FOR: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parse `WWW-Authenticate`: `Bearer realm="..",service="..",scope=".."` or `Basic realm=".."`.
pub(crate) fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params.get("realm")?.clone();
        return Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        });
    }
    None
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                // Push whole UTF-8 characters.
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                val.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// A short description of a registry's error answer: `404 Not Found (MANIFEST_UNKNOWN: ..)`.
pub(crate) async fn describe(resp: Response) -> String {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        });
    match detail {
        Some(d) => format!("HTTP {status} ({d})"),
        None => format!("HTTP {status}"),
    }
}

/// Map a non-success status to a `Fail`.
pub(crate) async fn status_fail(conn: &Conn, resp: Response) -> Fail {
    let status = resp.status();
    let text = describe(resp).await;
    match status {
        StatusCode::NOT_FOUND => Fail::NotFound(text),
        StatusCode::UNAUTHORIZED => {
            let who = &conn.ep.cred_host;
            Fail::Auth(match &conn.user {
                Some(u) => format!(
                    "{text}: {who} rejected the credentials of user \"{u}\"; check them with `berth login {who}`"
                ),
                None => format!(
                    "{text}: {who} requires authentication and no credentials are configured for it; log in with `berth login {who}`"
                ),
            })
        }
        StatusCode::FORBIDDEN => {
            Fail::Auth(format!("{text}: access denied by {}", conn.ep.cred_host))
        }
        s if s.is_server_error() => Fail::Unreachable(text),
        _ => Fail::Other(text),
    }
}

fn same_authority(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Client {
    pub fn new(cfg: RegistryConfig) -> Result<Client> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(cfg.request_timeout)
                .read_timeout(cfg.request_timeout)
                .danger_accept_invalid_certs(insecure)
                .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http: build(false)?,
                http_insecure: build(true)?,
                cfg,
                conns: Mutex::new(HashMap::new()),
                down: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.cfg
    }

    /// The endpoints for a registry host, in the order they are tried: mirrors, then itself.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let cfg = &self.inner.cfg;
        let mut out: Vec<Endpoint> = cfg
            .mirrors
            .get(domain)
            .into_iter()
            .flatten()
            .map(|m| Endpoint {
                url: m.url.clone(),
                fallback_url: None,
                mirror: true,
                resolve_tags: m.resolve_tags,
                insecure: m.insecure,
                cred_host: normalize_host(&m.url),
            })
            .collect();
        let (url, fallback_url, insecure) = if domain == DOCKER_HUB {
            (DOCKER_HUB_UPSTREAM.to_string(), None, false)
        } else if is_loopback(domain) {
            (
                format!("http://{domain}"),
                Some(format!("https://{domain}")),
                true,
            )
        } else if cfg.is_insecure(domain) {
            (
                format!("https://{domain}"),
                Some(format!("http://{domain}")),
                true,
            )
        } else {
            (format!("https://{domain}"), None, false)
        };
        out.push(Endpoint {
            url,
            fallback_url,
            mirror: false,
            resolve_tags: true,
            insecure,
            cred_host: domain.to_string(),
        });
        out
    }

    fn http(&self, insecure: bool) -> &reqwest::Client {
        if insecure {
            &self.inner.http_insecure
        } else {
            &self.inner.http
        }
    }

    /// Ping `/v2/` (once per endpoint) to learn its base URL and auth challenge.
    pub(crate) async fn connect(&self, ep: &Endpoint) -> std::result::Result<Conn, Fail> {
        if let Some(c) = lock(&self.inner.conns).get(&ep.url) {
            return Ok(c.clone());
        }
        if let Some((until, why)) = lock(&self.inner.down).get(&ep.url) {
            if *until > Instant::now() {
                return Err(Fail::Unreachable(format!(
                    "{why} (not retried for {DOWN_FOR:?})"
                )));
            }
        }
        let r = self.connect_uncached(ep).await;
        if let Err(Fail::Unreachable(why)) = &r {
            lock(&self.inner.down).insert(ep.url.clone(), (Instant::now() + DOWN_FOR, why.clone()));
        }
        r
    }

    async fn connect_uncached(&self, ep: &Endpoint) -> std::result::Result<Conn, Fail> {
        let mut last = None;
        for base in std::iter::once(&ep.url).chain(ep.fallback_url.as_ref()) {
            if base.starts_with("http://") && !ep.insecure {
                return Err(Fail::Other(format!(
                    "refusing plain HTTP to {base}: add it to insecure-registries if that is intended"
                )));
            }
            let url = format!("{base}/v2/");
            match self
                .send_with_retries(
                    ep.insecure,
                    Method::GET,
                    &url,
                    &HeaderMap::new(),
                    None,
                    None,
                )
                .await
            {
                Ok(resp) => {
                    let status = resp.status();
                    let challenge = if status.is_success() {
                        Challenge::None
                    } else if status == StatusCode::UNAUTHORIZED {
                        let h = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        parse_challenge(h).ok_or_else(|| {
                            Fail::Other(format!(
                                "{url} answered 401 with an unsupported WWW-Authenticate challenge \"{h}\""
                            ))
                        })?
                    } else {
                        let text = describe(resp).await;
                        return Err(if status.is_server_error() {
                            Fail::Unreachable(format!("{url}: {text}"))
                        } else {
                            Fail::Other(format!("{url} is not a registry API endpoint: {text}"))
                        });
                    };
                    let conn = Conn {
                        base: base.clone(),
                        ep: ep.clone(),
                        challenge,
                        user: self
                            .inner
                            .cfg
                            .credentials_for(&ep.cred_host)
                            .map(|c| c.username.clone()),
                    };
                    lock(&self.inner.conns).insert(ep.url.clone(), conn.clone());
                    return Ok(conn);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Fail::Other("no URL to try".into())))
    }

    /// `docker login`: check the configured credentials for `domain` against the registry
    /// itself (not its mirrors). Basic registries get `/v2/` with the credentials; token
    /// registries must issue a token for them. A registry without auth accepts anyone.
    pub async fn login(&self, domain: &str) -> Result<()> {
        let ep = self
            .endpoints(domain)
            .pop()
            .ok_or_else(|| Error::Invalid(format!("no endpoint for {domain}")))?;
        let fail = |f: Fail| match f {
            Fail::Auth(m) => Error::Unauthorized(m),
            Fail::NotFound(m) => Error::NotFound(m),
            Fail::Unsupported(m) => Error::Unsupported(m),
            Fail::Corrupt(m) | Fail::Unreachable(m) | Fail::Other(m) => {
                Error::Unavailable(format!("{domain}: {m}"))
            }
        };
        let conn = self.connect(&ep).await.map_err(fail)?;
        if conn.challenge != Challenge::None
            && self.inner.cfg.credentials_for(&ep.cred_host).is_none()
        {
            return Err(Error::Unauthorized(format!(
                "{domain} requires a username and password"
            )));
        }
        match &conn.challenge {
            Challenge::None => Ok(()),
            Challenge::Bearer { .. } => self
                .auth_header(&conn, &[], true)
                .await
                .map(|_| ())
                .map_err(fail),
            Challenge::Basic => {
                let url = format!("{}/v2/", conn.base);
                let auth = self.basic_header(&conn);
                let resp = self
                    .send_with_retries(
                        ep.insecure,
                        Method::GET,
                        &url,
                        &HeaderMap::new(),
                        None,
                        auth,
                    )
                    .await
                    .map_err(fail)?;
                if resp.status().is_success() {
                    return Ok(());
                }
                Err(fail(status_fail(&conn, resp).await))
            }
        }
    }

    fn basic_header(&self, conn: &Conn) -> Option<HeaderValue> {
        let c = self.inner.cfg.credentials_for(&conn.ep.cred_host)?;
        let enc = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password));
        let mut v = HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// The `Authorization` header for `scopes` at `conn`, fetching a token if needed.
    pub(crate) async fn auth_header(
        &self,
        conn: &Conn,
        scopes: &[String],
        refresh: bool,
    ) -> std::result::Result<Option<HeaderValue>, Fail> {
        let (realm, service) = match &conn.challenge {
            Challenge::None => return Ok(None),
            Challenge::Basic => return Ok(self.basic_header(conn)),
            Challenge::Bearer { realm, service, .. } => (realm, service),
        };
        let key = (conn.base.clone(), scopes.join(" "));
        if !refresh {
            if let Some(t) = lock(&self.inner.tokens).get(&key) {
                if t.expires > Instant::now() {
                    return bearer(&t.value).map(Some);
                }
            }
        }
        let mut realm_url = reqwest::Url::parse(realm)
            .map_err(|e| Fail::Other(format!("{}: bad token realm \"{realm}\": {e}", conn.base)))?;
        if realm_url.scheme() != "https"
            && !(conn.ep.insecure || is_loopback(&url_authority(realm)))
        {
            return Err(Fail::Auth(format!(
                "{}: refusing to send credentials to the non-HTTPS token realm {realm}",
                conn.base
            )));
        }
        {
            let mut q = realm_url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut headers = HeaderMap::new();
        let creds = self.inner.cfg.credentials_for(&conn.ep.cred_host);
        if let Some(h) = self.basic_header(conn) {
            headers.insert(AUTHORIZATION, h);
        }
        let resp = self
            .send_with_retries(
                conn.ep.insecure,
                Method::GET,
                realm_url.as_str(),
                &headers,
                None,
                None,
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let text = describe(resp).await;
            return Err(Fail::Auth(match creds {
                Some(c) => format!(
                    "the token service {realm} rejected the credentials of user \"{}\" for {} ({text}); check them with `berth login {}`",
                    c.username, conn.ep.cred_host, conn.ep.cred_host
                ),
                None => format!(
                    "the token service {realm} refused anonymous access to {} ({text}); log in with `berth login {}`",
                    conn.ep.cred_host, conn.ep.cred_host
                ),
            }));
        }
        if !status.is_success() {
            let text = describe(resp).await;
            return Err(Fail::Unreachable(format!("token service {realm}: {text}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| Fail::Unreachable(format!("token service {realm}: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Fail::Other(format!("token service {realm} answered non-JSON: {e}")))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Fail::Other(format!("token service {realm} answered without a token")))?
            .to_string();
        let ttl = v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .unwrap_or(60)
            .max(10);
        lock(&self.inner.tokens).insert(
            key,
            Token {
                value: token.clone(),
                expires: Instant::now() + Duration::from_secs(ttl.saturating_sub(5)),
            },
        );
        bearer(&token).map(Some)
    }

    /// An authorised request to `conn`: fetches a token, follows redirects, retries
    /// transient failures, and on a 401 re-authenticates once with the new challenge.
    pub(crate) async fn request(
        &self,
        conn: &Conn,
        scopes: &[String],
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> std::result::Result<Response, Fail> {
        let mut conn = conn.clone();
        let mut auth = self.auth_header(&conn, scopes, false).await?;
        let mut reauthed = false;
        loop {
            let resp = self
                .send_with_retries(
                    conn.ep.insecure,
                    method.clone(),
                    url,
                    &headers,
                    body.clone(),
                    auth.clone(),
                )
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED && !reauthed {
                reauthed = true;
                let ch = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(ch) = ch {
                    if conn.challenge == Challenge::Basic && ch == Challenge::Basic {
                        return Ok(resp);
                    }
                    conn.challenge = ch;
                    lock(&self.inner.conns).insert(conn.ep.url.clone(), conn.clone());
                    auth = self.auth_header(&conn, scopes, true).await?;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Send with bounded retries (connection errors and 5xx) and manual redirects.
    pub(crate) async fn send_with_retries(
        &self,
        insecure: bool,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Option<Bytes>,
        auth: Option<HeaderValue>,
    ) -> std::result::Result<Response, Fail> {
        // Only idempotent requests are retried (a repeated PATCH would append twice).
        let max = if method == Method::POST || method == Method::PATCH {
            0
        } else {
            self.inner.cfg.max_retries
        };
        let mut attempt = 0u32;
        loop {
            let r = self
                .send_following(
                    insecure,
                    method.clone(),
                    url,
                    headers,
                    body.clone(),
                    auth.clone(),
                )
                .await;
            let retry = match &r {
                Ok(resp) => resp.status().is_server_error(),
                Err(Fail::Unreachable(_)) => true,
                Err(_) => false,
            };
            if !retry || attempt >= max {
                return r;
            }
            let delay = Duration::from_millis(100u64 << attempt.min(6));
            tracing::debug!(url, attempt, ?delay, "retrying registry request");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_following(
        &self,
        insecure: bool,
        mut method: Method,
        url: &str,
        headers: &HeaderMap,
        mut body: Option<Bytes>,
        mut auth: Option<HeaderValue>,
    ) -> std::result::Result<Response, Fail> {
        let mut cur =
            reqwest::Url::parse(url).map_err(|e| Fail::Other(format!("bad URL \"{url}\": {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .http(insecure)
                .request(method.clone(), cur.clone())
                .headers(headers.clone());
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a.clone());
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let resp = req.send().await.map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                Fail::Unreachable(format!("{what} to {}: {}", cur.as_str(), root_cause(&e)))
            })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let loc = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| Fail::Other(format!("{cur}: redirect without a Location")))?;
            let next = cur
                .join(loc)
                .map_err(|e| Fail::Other(format!("{cur}: bad redirect Location \"{loc}\": {e}")))?;
            if cur.scheme() == "https" && next.scheme() != "https" {
                return Err(Fail::Other(format!(
                    "{cur}: refusing redirect from https to {}",
                    next.scheme()
                )));
            }
            if !same_authority(&cur, &next) && auth.take().is_some() {
                tracing::debug!(from = %cur.host_str().unwrap_or(""), to = %next.host_str().unwrap_or(""), "redirect to another host: Authorization dropped");
            }
            if resp.status() == StatusCode::SEE_OTHER {
                method = Method::GET;
                body = None;
            }
            cur = next;
        }
        Err(Fail::Other(format!(
            "{url}: more than {MAX_REDIRECTS} redirects"
        )))
    }
}

fn bearer(token: &str) -> std::result::Result<HeaderValue, Fail> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Fail::Other("token service answered a token with invalid characters".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The innermost cause ("Connection refused (os error 111)"), which is what a user can act on.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        last = c.to_string();
        src = c.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="http://127.0.0.1:1/t", error="invalid_token""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a realm is required"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn endpoints_order_and_schemes() {
        let cfg = RegistryConfig::from_daemon_json(&serde_json::json!({
            "registry-mirrors": ["https://m1.example", "http://127.0.0.1:5001"],
            "insecure-registries": ["reg.lan:5000"],
        }))
        .unwrap();
        let c = Client::new(cfg).unwrap();
        let eps = c.endpoints("docker.io");
        let urls: Vec<_> = eps.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://m1.example",
                "http://127.0.0.1:5001",
                "https://registry-1.docker.io"
            ]
        );
        assert!(eps[0].mirror && eps[0].resolve_tags && !eps[0].insecure);
        assert!(!eps[2].mirror);
        assert_eq!(eps[2].cred_host, "docker.io");
        assert_eq!(
            eps[0].cred_host, "m1.example",
            "mirrors use their own credentials"
        );
        let l = c.endpoints("localhost:5000");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].url, "http://localhost:5000");
        let i = c.endpoints("reg.lan:5000");
        assert_eq!(i[0].url, "https://reg.lan:5000");
        assert_eq!(i[0].fallback_url.as_deref(), Some("http://reg.lan:5000"));
        let s = c.endpoints("quay.io");
        assert_eq!(s[0].url, "https://quay.io");
        assert_eq!(s[0].fallback_url, None);
    }
}
