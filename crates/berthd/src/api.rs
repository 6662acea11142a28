//! The Docker Engine API over HTTP/1.1: routing, version negotiation, Docker's error shape
//! (`{"message": ...}` with 400/404/409/500), and the image endpoints as a thin translation
//! onto [`berth_engine::images::ImageService`].

use crate::sysinfo;
use base64::Engine as _;
use berth_engine::images::{self, ImageService};
use berth_registry::{Credentials, Digest, Progress, Reference};
use berth_store::ErrorKind;
use bytes::Bytes;
use futures_util::{stream, TryStreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

/// The newest API version served; the docker CLI negotiates down to it.
pub const API_VERSION: &str = "1.45";
/// The oldest API version accepted.
pub const MIN_API_VERSION: &str = "1.24";
const API: (u32, u32) = (1, 45);
const MIN_API: (u32, u32) = (1, 24);

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub struct State {
    pub images: ImageService,
    pub containers: berth_engine::containers::ContainerService,
    #[allow(dead_code)] // read by the volume routes
    pub volumes: Arc<berth_engine::volumes::Volumes>,
    #[allow(dead_code)] // read by the network routes
    pub networks: Arc<std::sync::Mutex<berth_engine::network::Networks>>,
    #[allow(dead_code)] // read by the event routes
    pub events: berth_engine::events::Events,
    pub execs: berth_engine::exec::ExecService,
    pub builds: berth_engine::build::BuildService,
    pub data_root: PathBuf,
    pub id: String,
    pub debug: bool,
}

/// An API error: an HTTP status and Docker's `{"message": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }
    pub(crate) fn not_implemented(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{what} is not supported by Berth yet"),
        )
    }
    pub(crate) fn response(&self) -> Response<Body> {
        json_response(self.status, &json!({ "message": self.message }))
    }
}

pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<images::Error> for ApiError {
    fn from(e: images::Error) -> ApiError {
        ApiError::new(status_of(e.kind()), e.message)
    }
}

pub(crate) type ApiResult = Result<Response<Body>, ApiError>;

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn json_response(status: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn ok_json(v: &impl serde::Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A streamed body fed through a channel; an `Err` item aborts the connection.
pub(crate) fn channel_body(
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    content_type: &'static str,
) -> Response<Body> {
    let s = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let mut r = Response::new(StreamBody::new(s).boxed_unsync());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Sends JSON messages into a streamed response (Docker's JSON message stream).
#[derive(Clone)]
pub(crate) struct JsonStream(pub(crate) mpsc::Sender<Result<Bytes, std::io::Error>>);

impl JsonStream {
    pub(crate) async fn send(&self, v: Value) {
        let mut line = v.to_string().into_bytes();
        line.extend_from_slice(b"\r\n");
        // A client that went away is not an error for the operation.
        let _ = self.0.send(Ok(Bytes::from(line))).await;
    }
    pub(crate) async fn error(&self, message: &str) {
        self.send(json!({"errorDetail": {"message": message}, "error": message}))
            .await;
    }
}

/// The largest JSON request body accepted (create bodies, network and volume specs).
pub(crate) const MAX_JSON_BODY: usize = 4 << 20;

/// Read a JSON request body of at most [`MAX_JSON_BODY`] bytes. An empty body gives
/// `T::default()` when `allow_empty`, else a 400.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
    allow_empty: bool,
) -> Result<T, ApiError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            if e.is::<http_body_util::LengthLimitError>() {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than {} bytes", MAX_JSON_BODY),
                ));
            }
            return Err(ApiError::bad(format!("reading the request body: {e}")));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if allow_empty {
            return Ok(T::default());
        }
        return Err(ApiError::bad("invalid JSON: the request body is empty"));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("invalid JSON: {e}")))
}

/// Answer `101 Switching Protocols` and hand back the connection for raw streaming
/// (attach, exec start). `multiplexed`: Docker's stdout/stderr framing is used on it.
pub(crate) fn hijack(
    req: &mut Request<Incoming>,
    multiplexed: bool,
) -> (Response<Body>, hyper::upgrade::OnUpgrade) {
    let on = hyper::upgrade::on(req);
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(hyper::header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if multiplexed {
            "application/vnd.docker.multiplexed-stream"
        } else {
            "application/vnd.docker.raw-stream"
        }),
    );
    (r, on)
}

/// One frame of Docker's multiplexed stream: `[stream, 0, 0, 0, len as u32 BE]` + payload
/// (stream 0 stdin, 1 stdout, 2 stderr).
pub(crate) fn mux_frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Every request: one span, version check, routing, Docker's error shape.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", %method, path = %path);
    async move {
        let mut resp = match route(&state, req).await {
            Ok(r) => r,
            Err(e) => {
                if e.status.is_server_error() {
                    warn!(status = e.status.as_u16(), "{}", e.message);
                } else {
                    debug!(status = e.status.as_u16(), "{}", e.message);
                }
                e.response()
            }
        };
        let h = resp.headers_mut();
        h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
        h.insert("Docker-Experimental", HeaderValue::from_static("false"));
        h.insert("Ostype", HeaderValue::from_static("linux"));
        if let Ok(v) =
            HeaderValue::from_str(&format!("Berth/{} (linux)", env!("CARGO_PKG_VERSION")))
        {
            h.insert("Server", v);
        }
        debug!(status = resp.status().as_u16(), "done");
        Ok(resp)
    }
    .instrument(span)
    .await
}

/// `/v1.45/images/json` → (Some((1,45)), "/images/json").
/// An API version, `(major, minor)`.
type ApiVersion = (u32, u32);

fn split_version(path: &str) -> Result<(Option<ApiVersion>, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some((maj, min)) = ver.split_once('.') else {
        return Ok((None, path));
    };
    let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else {
        return Ok((None, path));
    };
    let v = (maj, min);
    if v < MIN_API {
        return Err(ApiError::bad(format!(
            "client version {maj}.{min} is too old. Minimum supported API version is \
             {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if v > API {
        return Err(ApiError::bad(format!(
            "client version {maj}.{min} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok((Some(v), tail))
}

pub(crate) fn percent_decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::bad(format!("bad escape in path {s}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad("the path is not UTF-8"))
}

/// Query parameters (last value wins for `one`, all for `all`).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn of<B>(req: &Request<B>) -> Query {
        Query(
            req.uri()
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        )
    }
    pub(crate) fn one(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn str(&self, k: &str) -> &str {
        self.one(k).unwrap_or("")
    }
    pub(crate) fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// Docker's boolean: absent, "", "0", "no", "false", "none" are false.
    pub(crate) fn bool(&self, k: &str) -> bool {
        !matches!(
            self.one(k)
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            None | Some("" | "0" | "no" | "false" | "none")
        )
    }
    /// `filters`: `{"key":{"value":true}}` or the legacy `{"key":["value"]}`.
    pub(crate) fn filters(&self) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.one("filters").filter(|s| !s.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: Value =
            serde_json::from_str(raw).map_err(|e| ApiError::bad(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad("invalid filter: expected a JSON object"))?;
        let mut out = BTreeMap::new();
        for (k, val) in obj {
            let vals: Vec<String> = match val {
                Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(false))
                    .map(|(s, _)| s.clone())
                    .collect(),
                Value::Array(a) => a
                    .iter()
                    .map(|s| {
                        s.as_str().map(str::to_string).ok_or_else(|| {
                            ApiError::bad(format!(
                                "invalid filter: values of \"{k}\" must be strings"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ApiError::bad(format!(
                        "invalid filter: \"{k}\" must be an object or a list"
                    )))
                }
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

pub(crate) fn check_filters(
    f: &BTreeMap<String, Vec<String>>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match f.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad(format!("invalid filter '{k}'"))),
        None => Ok(()),
    }
}

fn dangling_filter(f: &BTreeMap<String, Vec<String>>) -> Result<Option<bool>, ApiError> {
    match f.get("dangling").map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([v]) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::bad(format!(
                "invalid filter 'dangling={v}': use true or false"
            ))),
        },
        Some(_) => Err(ApiError::bad("invalid filter 'dangling': give one value")),
    }
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let raw_path = req.uri().path().to_string();
    let (_version, path) = split_version(&raw_path)?;
    let path = percent_decode(path)?;
    let method = req.method().clone();
    let path = path.as_str();
    match (&method, path) {
        (&Method::GET | &Method::HEAD, "/_ping") => {
            let mut r = Response::new(full(if method == Method::HEAD { "" } else { "OK" }));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                "Cache-Control",
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            h.insert("Pragma", HeaderValue::from_static("no-cache"));
            // The classic builder protocol: the docker CLI then builds with it by default
            // (no DOCKER_BUILDKIT=0 needed, no buildx required).
            h.insert("Builder-Version", HeaderValue::from_static("1"));
            return Ok(r);
        }
        (&Method::GET, "/version") => return version(),
        (&Method::GET, "/info") => return info(state).await,
        (&Method::GET, "/events") => return crate::api_system::events(state, req).await,
        (&Method::GET, "/system/df") => return crate::api_system::df(state, req).await,
        (&Method::POST, "/auth") => return crate::api_auth::login(state, req).await,
        // Berth's own: the last pulls and the endpoint (mirror or registry) that served each
        // blob, for the desktop's registry-mirror panel.
        (&Method::GET, "/berth/pulls") => return ok_json(&state.images.recent_pulls()),
        (&Method::POST, "/build/prune") => return crate::api_build::prune(state).await,
        (&Method::POST, "/build") => return crate::api_build::build(state, req).await,
        _ => {}
    }
    if path == "/containers" || path.starts_with("/containers/") {
        return crate::api_containers::route(state, req, &path["/containers".len()..]).await;
    }
    if let Some(rest) = path.strip_prefix("/exec/") {
        return crate::api_exec::exec_route(state, req, rest).await;
    }
    if path == "/volumes" || path.starts_with("/volumes/") {
        return crate::api_volumes::route(state, req, &path["/volumes".len()..]).await;
    }
    if path == "/networks" || path.starts_with("/networks/") {
        return crate::api_networks::route(state, req, &path["/networks".len()..]).await;
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        return images_route(state, req, method, rest).await;
    }
    Err(ApiError::not_found())
}

async fn images_route(
    state: &Arc<State>,
    req: Request<Incoming>,
    method: Method,
    rest: &str,
) -> ApiResult {
    let q = Query::of(&req);
    let svc = &state.images;
    let events = &state.events;
    match (&method, rest) {
        (&Method::GET, "json") => return list_images(svc, &q).await,
        (&Method::POST, "create") => return pull(svc, events, &req, &q).await,
        (&Method::POST, "load") => return load(svc, events, req, &q).await,
        (&Method::POST, "prune") => {
            let f = q.filters()?;
            check_filters(&f, &["dangling", "label", "label!", "until"])?;
            if f.contains_key("until") || f.contains_key("label") || f.contains_key("label!") {
                return Err(ApiError::not_implemented(
                    "image prune filters other than dangling",
                ));
            }
            let all = dangling_filter(&f)? == Some(false);
            let report = svc.prune(all).await?;
            for item in &report.images_deleted {
                if let images::DeleteItem::Deleted(id) = item {
                    image_event(events, "delete", id, id);
                }
            }
            return ok_json(&report);
        }
        (&Method::GET, "get") => return save(svc, events, q.all("names")).await,
        (&Method::GET, "search") => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "image search is not supported by Berth",
            ))
        }
        _ => {}
    }
    if method == Method::DELETE {
        if rest.is_empty() {
            return Err(ApiError::not_found());
        }
        let id = svc.inspect(rest).await.map(|i| i.id).ok();
        let items = svc.remove(rest, q.bool("force")).await?;
        for item in &items {
            match item {
                images::DeleteItem::Untagged(_) => {
                    if let Some(id) = &id {
                        image_event(events, "untag", id, id);
                    }
                }
                images::DeleteItem::Deleted(d) => image_event(events, "delete", d, d),
            }
        }
        return ok_json(&items);
    }
    let Some((name, action)) = rest.rsplit_once('/') else {
        return Err(ApiError::not_found());
    };
    if name.is_empty() {
        return Err(ApiError::not_found());
    }
    match (&method, action) {
        (&Method::GET, "json") => ok_json(&svc.inspect(name).await?),
        (&Method::GET, "history") => ok_json(&svc.history(name).await?),
        (&Method::GET, "get") => save(svc, events, vec![name.to_string()]).await,
        (&Method::POST, "tag") => {
            svc.tag(name, q.str("repo"), q.str("tag")).await?;
            if let Ok(i) = svc.inspect(name).await {
                let tag = if q.str("tag").is_empty() {
                    "latest"
                } else {
                    q.str("tag")
                };
                let new = format!("{}:{tag}", q.str("repo"));
                let shown = Reference::parse_normalized(&new)
                    .map(|r| r.familiar())
                    .unwrap_or(new);
                image_event(events, "tag", &i.id, &shown);
            }
            Ok(empty(StatusCode::CREATED))
        }
        (&Method::POST, "push") => push(svc, events, &req, name, q.str("tag")).await,
        _ => Err(ApiError::not_found()),
    }
}

/// An image event: `id` is the image ID or the reference, `name` Docker's `name` attribute.
pub(crate) fn image_event(
    events: &berth_engine::events::Events,
    action: &str,
    id: &str,
    name: &str,
) {
    events.emit(
        "image",
        action,
        id,
        BTreeMap::from([("name".to_string(), name.to_string())]),
    );
}

fn version() -> ApiResult {
    let u = sysinfo::uname();
    let v = env!("CARGO_PKG_VERSION");
    ok_json(&json!({
        "Platform": {"Name": "Berth Engine"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": sysinfo::go_arch(),
                "KernelVersion": u.kernel,
                "GitCommit": "",
                "GoVersion": "",
                "BuildTime": "",
                "Experimental": "false",
            }
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": sysinfo::go_arch(),
        "KernelVersion": u.kernel,
        "BuildTime": "",
    }))
}

async fn info(state: &Arc<State>) -> ApiResult {
    let u = sysinfo::uname();
    let (os, os_version) = sysinfo::os_release();
    let counts = state.images.counts().await?;
    let (containers, running, paused, stopped) = state.containers.counts().await;
    let cfg = state.images.registry_config();
    let mirrors: Vec<String> = cfg
        .mirrors
        .get("docker.io")
        .map(|m| m.iter().map(|m| format!("{}/", m.url)).collect())
        .unwrap_or_default();
    let mut insecure: Vec<String> = vec!["::1/128".into(), "127.0.0.0/8".into()];
    insecure.extend(cfg.insecure_registries.iter().cloned());
    ok_json(&json!({
        "ID": state.id,
        "Containers": containers,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": counts.images,
        "Driver": "overlay2",
        "DriverStatus": [],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": ["json-file"],
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": state.debug,
        "NFd": 0,
        "OomKillDisable": false,
        "NGoroutines": 0,
        "SystemTime": sysinfo::now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": sysinfo::cgroup_version(),
        "NEventsListener": state.events.listeners(),
        "KernelVersion": u.kernel,
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": u.machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": insecure,
            "IndexConfigs": {
                "docker.io": {
                    "Name": "docker.io",
                    "Mirrors": mirrors,
                    "Secure": true,
                    "Official": true,
                }
            },
            "Mirrors": mirrors,
        },
        "NCPU": sysinfo::ncpu(),
        "MemTotal": sysinfo::mem_total(),
        "GenericResources": null,
        "DockerRootDir": state.data_root.display().to_string(),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": u.hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"runc": {"path": "berth-runtime"}},
        "DefaultRuntime": "runc",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Warnings": null,
    }))
}

async fn list_images(svc: &ImageService, q: &Query) -> ApiResult {
    let f = q.filters()?;
    check_filters(
        &f,
        &["dangling", "reference", "label", "before", "since", "until"],
    )?;
    // before/since: created before/after the named image; until: created before a time.
    let image_created = |key: &'static str| {
        let names = f.get(key).cloned().unwrap_or_default();
        async move {
            let mut out = Vec::new();
            for n in names {
                let Some(id) = svc.resolve_id(&n).await else {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("No such image: {n} (in the {key} filter)"),
                    ));
                };
                out.push(id);
            }
            Ok::<_, ApiError>(out)
        }
    };
    let before = image_created("before").await?;
    let since = image_created("since").await?;
    let until = match f.get("until").and_then(|v| v.first()) {
        Some(u) => Some(crate::api_containers::parse_ts(u)? as i64),
        None => None,
    };
    let mut reference = f.get("reference").cloned().unwrap_or_default();
    if let Some(legacy) = q.one("filter").filter(|s| !s.is_empty()) {
        reference.push(legacy.to_string());
    }
    // `docker images` (without -a) hides build steps' untagged images, as Docker hides
    // intermediate images.
    let labels = f.get("label").cloned().unwrap_or_default();
    let mut list = svc
        .list(dangling_filter(&f)?, reference, labels, q.bool("all"))
        .await?;
    if !before.is_empty() || !since.is_empty() || until.is_some() {
        // The reference images' creation times come from the full list.
        let all = svc.list(None, Vec::new(), Vec::new(), true).await?;
        let created = |id: &String| all.iter().find(|i| &i.id == id).map(|i| i.created);
        let before: Vec<i64> = before.iter().filter_map(created).collect();
        let since: Vec<i64> = since.iter().filter_map(created).collect();
        list.retain(|i| {
            before.iter().all(|t| i.created < *t)
                && since.iter().all(|t| i.created > *t)
                && until.is_none_or(|t| i.created < t)
        });
    }
    ok_json(&list)
}

/// `X-Registry-Auth`: base64url JSON `{username, password, auth, serveraddress, ...}`.
/// Never logged. A header without credentials (the CLI sends `{}`) means none.
fn registry_auth<B>(req: &Request<B>) -> Option<Credentials> {
    let raw = req.headers().get("X-Registry-Auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(raw).ok())?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (mut username, mut password) = (s("username"), s("password"));
    if username.is_empty() {
        let auth = s("auth");
        if !auth.is_empty() {
            let dec = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()?;
            let text = String::from_utf8(dec).ok()?;
            let (u, p) = text.split_once(':')?;
            username = u.to_string();
            password = p.to_string();
        }
    }
    if username.is_empty() {
        return None;
    }
    Some(Credentials { username, password })
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

fn progress_bar(current: u64, total: u64) -> String {
    let human = |n: u64| {
        let units = ["B", "kB", "MB", "GB", "TB"];
        let mut v = n as f64;
        let mut u = 0;
        while v >= 1000.0 && u < units.len() - 1 {
            v /= 1000.0;
            u += 1;
        }
        format!("{v:.3}{}", units[u])
    };
    let width = 50u64;
    let filled = (current.min(total) * width)
        .checked_div(total)
        .map_or(0, |f| f as usize);
    let mut bar = "=".repeat(filled);
    if filled < width as usize {
        bar.push('>');
    }
    format!("[{bar:<50}] {}/{}", human(current), human(total))
}

/// The blob a progress event is about.
fn progress_digest(p: &Progress) -> Option<Digest> {
    match p {
        Progress::Waiting { digest }
        | Progress::Downloading { digest, .. }
        | Progress::Verifying { digest }
        | Progress::Done { digest, .. }
        | Progress::Exists { digest }
        | Progress::Uploading { digest, .. }
        | Progress::Mounted { digest, .. }
        | Progress::Extracting { digest }
        | Progress::Extracted { digest } => Some(*digest),
        _ => None,
    }
}

/// A pull progress event as Docker's JSON message (None: not shown).
fn pull_message(p: &Progress) -> Option<Value> {
    Some(match p {
        Progress::Waiting { digest } => {
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": short(digest)})
        }
        Progress::Downloading {
            digest,
            current,
            total,
        } => json!({
            "status": "Downloading",
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(*current, *total),
            "id": short(digest),
        }),
        Progress::Verifying { digest } => {
            json!({"status": "Verifying Checksum", "progressDetail": {}, "id": short(digest)})
        }
        Progress::Done { digest, .. } => {
            json!({"status": "Download complete", "progressDetail": {}, "id": short(digest)})
        }
        Progress::Exists { digest } => {
            json!({"status": "Already exists", "progressDetail": {}, "id": short(digest)})
        }
        Progress::Extracting { digest } => {
            json!({"status": "Extracting", "progressDetail": {}, "id": short(digest)})
        }
        Progress::Extracted { digest } => {
            json!({"status": "Pull complete", "progressDetail": {}, "id": short(digest)})
        }
        _ => return None,
    })
}

/// Which pull progress events Docker shows, per image pulled: layers only (the config blob
/// comes before the layers' `Waiting`), and a layer that already existed shows "Already
/// exists" and nothing after it.
#[derive(Default)]
pub(crate) struct PullView {
    layers: std::collections::HashSet<Digest>,
    existing: std::collections::HashSet<Digest>,
}

impl PullView {
    pub(crate) fn show(&mut self, p: &Progress) -> Option<Value> {
        match p {
            Progress::Waiting { digest } => {
                self.layers.insert(*digest);
            }
            Progress::Exists { digest } if !self.existing.insert(*digest) => return None,
            Progress::Extracting { digest } | Progress::Extracted { digest }
                if self.existing.contains(digest) =>
            {
                return None;
            }
            Progress::Skipped { endpoint, reason } => {
                warn!(endpoint = %endpoint, "skipped: {reason}");
                return None;
            }
            _ => {}
        }
        let d = progress_digest(p)?;
        if !self.layers.contains(&d) {
            return None;
        }
        pull_message(p)
    }
}

/// Whether `from` (the `fromImage` parameter) names a tag or a digest (a registry port is
/// neither).
fn names_tag_or_digest(from: &str) -> bool {
    let last = from.rsplit('/').next().unwrap_or(from);
    last.contains(':') || from.contains('@')
}

/// `POST /images/create?fromImage=&tag=&platform=`: pull, streaming Docker's progress. As in
/// Docker, a `fromImage` without tag or digest and an empty `tag` pulls every tag of the
/// repository (`docker pull --all-tags`; the docker CLI sends `tag=latest` for a plain pull).
async fn pull<B>(
    svc: &ImageService,
    events: &berth_engine::events::Events,
    req: &Request<B>,
    q: &Query,
) -> ApiResult {
    if q.one("fromSrc").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::not_implemented("image import (fromSrc)"));
    }
    let from = q.str("fromImage");
    if from.is_empty() {
        return Err(ApiError::bad("fromImage must be given: the image to pull"));
    }
    let tag = q.str("tag");
    let all_tags = tag.is_empty() && !names_tag_or_digest(from);
    let full_ref = if tag.is_empty() {
        from.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let r = Reference::parse_normalized(&full_ref)
        .map_err(|e| ApiError::bad(format!("invalid reference format: {e}")))?;
    let platform = match q.one("platform").filter(|s| !s.is_empty()) {
        Some(p) => Some(
            p.parse::<berth_registry::Platform>()
                .map_err(|e| ApiError::bad(e.to_string()))?,
        ),
        None => None,
    };
    let auth = registry_auth(req);
    let (btx, brx) = mpsc::channel(64);
    let out = JsonStream(btx);
    let svc = svc.clone();
    let events = events.clone();
    if all_tags {
        info!(repository = %r.repository(), "pull all tags");
        tokio::spawn(
            async move { pull_all_tags(svc, events, r, platform, auth, out).await }
                .in_current_span(),
        );
        return Ok(channel_body(brx, "application/json"));
    }
    info!(reference = %r, "pull");
    tokio::spawn(
        async move {
            let id = r
                .tag
                .clone()
                .or_else(|| r.digest.map(|d| d.to_string()))
                .unwrap_or_default();
            out.send(json!({"status": format!("Pulling from {}", r.path), "id": id}))
                .await;
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let job = {
                let r = r.clone();
                tokio::spawn(async move { svc.pull(&r, platform, auth, ptx).await })
            };
            tokio::pin!(job);
            let mut view = PullView::default();
            let res = loop {
                tokio::select! {
                    biased;
                    Some(p) = prx.recv() => {
                        if let Some(m) = view.show(&p) { out.send(m).await; }
                    }
                    res = &mut job => break res,
                }
            };
            while let Ok(p) = prx.try_recv() {
                if let Some(m) = view.show(&p) {
                    out.send(m).await;
                }
            }
            match res {
                Ok(Ok(o)) => {
                    info!(digest = %o.digest, "pulled");
                    out.send(json!({"status": format!("Digest: {}", o.digest)}))
                        .await;
                    pulled(&events, &out, &o.familiar, o.up_to_date).await;
                }
                Ok(Err(e)) => {
                    warn!("pull failed: {e}");
                    out.error(&e.message).await;
                }
                Err(e) => out.error(&format!("pull worker failed: {e}")).await,
            }
        }
        .in_current_span(),
    );
    Ok(channel_body(brx, "application/json"))
}

/// The all-tags pull's stream, as Docker writes it: per tag "<tag>: Pulling from <path>", its
/// layers and "Digest: …"; then one "Status: … for <repository>".
async fn pull_all_tags(
    svc: ImageService,
    events: berth_engine::events::Events,
    r: Reference,
    platform: Option<berth_registry::Platform>,
    auth: Option<Credentials>,
    out: JsonStream,
) {
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let job = {
        let r = r.clone();
        tokio::spawn(async move { svc.pull_all_tags(&r, platform, auth, ptx).await })
    };
    tokio::pin!(job);
    let mut view = PullView::default();
    let path = r.path.clone();
    let mut step = |t: images::TagPull| -> Option<Value> {
        match t {
            images::TagPull::Started { tag } => {
                view = PullView::default();
                Some(json!({"status": format!("Pulling from {path}"), "id": tag}))
            }
            images::TagPull::Progress(p) => view.show(&p),
            images::TagPull::Finished(o) => {
                info!(digest = %o.digest, reference = %o.familiar, "pulled");
                Some(json!({"status": format!("Digest: {}", o.digest)}))
            }
        }
    };
    let res = loop {
        tokio::select! {
            biased;
            Some(t) = prx.recv() => {
                if let Some(m) = step(t) { out.send(m).await; }
            }
            res = &mut job => break res,
        }
    };
    while let Ok(t) = prx.try_recv() {
        if let Some(m) = step(t) {
            out.send(m).await;
        }
    }
    match res {
        Ok(Ok(o)) => pulled(&events, &out, &o.familiar, o.up_to_date).await,
        Ok(Err(e)) => {
            warn!("pull of all tags failed: {e}");
            out.error(&e.message).await;
        }
        Err(e) => out.error(&format!("pull worker failed: {e}")).await,
    }
}

/// The end of a successful pull: the pull event and Docker's final status line.
async fn pulled(
    events: &berth_engine::events::Events,
    out: &JsonStream,
    familiar: &str,
    up_to_date: bool,
) {
    image_event(events, "pull", familiar, familiar);
    let status = if up_to_date {
        format!("Status: Image is up to date for {familiar}")
    } else {
        format!("Status: Downloaded newer image for {familiar}")
    };
    out.send(json!({ "status": status })).await;
}

/// `POST /images/{name}/push?tag=`.
async fn push<B>(
    svc: &ImageService,
    events: &berth_engine::events::Events,
    req: &Request<B>,
    name: &str,
    tag: &str,
) -> ApiResult {
    let repo = Reference::parse_normalized(name)
        .map_err(|e| ApiError::bad(format!("invalid reference format: {e}")))?;
    // `name` may carry the tag itself (older clients); the query's tag wins.
    let tag = if tag.is_empty() {
        repo.tag.clone().unwrap_or_else(|| "latest".into())
    } else {
        tag.to_string()
    };
    let repo_name = repo.repository();
    let familiar_repo = repo.familiar_name();
    let auth = registry_auth(req);
    let (btx, brx) = mpsc::channel(64);
    let out = JsonStream(btx);
    let svc = svc.clone();
    let events = events.clone();
    tokio::spawn(
        async move {
            out.send(json!({"status": format!("The push refers to repository [{}]", repo.repository())}))
                .await;
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let job = {
                let tag = tag.clone();
                tokio::spawn(async move { svc.push(&repo_name, &tag, auth, ptx).await })
            };
            tokio::pin!(job);
            let msg = |p: &Progress| -> Option<Value> {
                Some(match p {
                    Progress::Uploading { digest, current, total } => json!({
                        "status": "Pushing",
                        "progressDetail": {"current": current, "total": total},
                        "progress": progress_bar(*current, *total),
                        "id": short(digest),
                    }),
                    Progress::Exists { digest } => json!({"status": "Layer already exists", "progressDetail": {}, "id": short(digest)}),
                    Progress::Mounted { digest, from } => json!({"status": format!("Mounted from {from}"), "progressDetail": {}, "id": short(digest)}),
                    Progress::Done { digest, .. } => json!({"status": "Pushed", "progressDetail": {}, "id": short(digest)}),
                    _ => return None,
                })
            };
            let res = loop {
                tokio::select! {
                    biased;
                    Some(p) = prx.recv() => { if let Some(m) = msg(&p) { out.send(m).await; } }
                    res = &mut job => break res,
                }
            };
            while let Ok(p) = prx.try_recv() {
                if let Some(m) = msg(&p) {
                    out.send(m).await;
                }
            }
            match res {
                Ok(Ok(o)) => {
                    info!(repository = %familiar_repo, digest = %o.digest, "pushed");
                    let pushed = format!("{familiar_repo}:{}", o.tag);
                    image_event(&events, "push", &pushed, &pushed);
                    out.send(json!({"status": format!("{}: digest: {} size: {}", o.tag, o.digest, o.size)}))
                        .await;
                    out.send(json!({"progressDetail": {}, "aux": {"Tag": o.tag, "Digest": o.digest.to_string(), "Size": o.size}}))
                        .await;
                }
                Ok(Err(e)) => {
                    warn!("push failed: {e}");
                    out.error(&e.message).await;
                }
                Err(e) => out.error(&format!("push worker failed: {e}")).await,
            }
        }
        .in_current_span(),
    );
    Ok(channel_body(brx, "application/json"))
}

/// Writes into a streamed response from the blocking pool, in 64 KiB chunks.
pub(crate) struct ChanWriter {
    pub(crate) tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub(crate) buf: Vec<u8>,
}

impl ChanWriter {
    fn ship(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 << 10 {
            self.ship()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.ship()
    }
}

/// `GET /images/get?names=..` and `GET /images/{name}/get`: a `docker save` tarball.
async fn save(
    svc: &ImageService,
    events: &berth_engine::events::Events,
    names: Vec<String>,
) -> ApiResult {
    let plan = svc.plan_save(names.clone()).await?;
    let mut saved = Vec::new();
    for n in &names {
        if let Ok(i) = svc.inspect(n).await {
            saved.push((i.id, n.clone()));
        }
    }
    let events = events.clone();
    let (tx, rx) = mpsc::channel(8);
    let svc = svc.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _g = span.enter();
        let mut w = ChanWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let res = svc.write_save(&plan, &mut w).and_then(|()| {
            w.flush()
                .map_err(|e| images::Error::internal(format!("writing the archive: {e}")))
        });
        match res {
            Ok(()) => {
                for (id, name) in &saved {
                    image_event(&events, "save", id, name);
                }
            }
            Err(e) => {
                warn!("save failed: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
            }
        }
    });
    Ok(channel_body(rx, "application/x-tar"))
}

/// `POST /images/load?quiet=`: a `docker save` (or OCI) tarball in the body.
async fn load(
    svc: &ImageService,
    events: &berth_engine::events::Events,
    req: Request<Incoming>,
    q: &Query,
) -> ApiResult {
    let quiet = q.bool("quiet");
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(|e| std::io::Error::other(format!("reading the request body: {e}")));
    let reader = tokio_util::io::StreamReader::new(Box::pin(body));
    let sync = tokio_util::io::SyncIoBridge::new(reader);
    let worker = svc.clone();
    let span = tracing::Span::current();
    let lines = tokio::task::spawn_blocking(move || {
        let _g = span.enter();
        worker.load_blocking(std::io::BufReader::with_capacity(256 << 10, sync))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("load worker: {e}"),
        )
    })??;
    for l in &lines {
        info!("{l}");
        // "Loaded image: busybox:latest" or "Loaded image ID: sha256:..."
        if let Some((_, name)) = l.split_once(": ") {
            if let Ok(i) = svc.inspect(name.trim()).await {
                image_event(events, "load", &i.id, name.trim());
            }
        }
    }
    // `quiet` only silences progress, which a load does not stream: the lines stay.
    let _ = quiet;
    let mut out = Vec::new();
    for l in &lines {
        out.extend_from_slice(json!({ "stream": format!("{l}\n") }).to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut r = Response::new(full(out));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(split_version("/_ping").unwrap(), (None, "/_ping"));
        assert_eq!(
            split_version("/v1.45/images/json").unwrap(),
            (Some((1, 45)), "/images/json")
        );
        assert_eq!(split_version("/v1.24/info").unwrap().0, Some((1, 24)));
        assert_eq!(split_version("/v1.12/info").unwrap_err().status, 400);
        assert_eq!(split_version("/v1.99/info").unwrap_err().status, 400);
        assert_eq!(split_version("/version").unwrap(), (None, "/version"));
    }

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%2Fb%3A1").unwrap(), "a/b:1");
        assert!(percent_decode("a%zz").is_err());
    }

    #[test]
    fn auth_header() {
        let enc = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p+/?","serveraddress":"x"}"#);
        let req = Request::builder()
            .header("X-Registry-Auth", enc)
            .body(())
            .unwrap();
        let c = registry_auth(&req).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p+/?"));
        let req = Request::builder()
            .header("X-Registry-Auth", "e30=")
            .body(())
            .unwrap();
        assert!(registry_auth(&req).is_none());
        let req = Request::builder()
            .header("X-Registry-Auth", "!!!")
            .body(())
            .unwrap();
        assert!(registry_auth(&req).is_none());
    }

    #[test]
    pub(crate) fn filters() {
        let req = Request::builder()
            .uri("/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D")
            .body(())
            .unwrap();
        let f = Query::of(&req).filters().unwrap();
        assert_eq!(dangling_filter(&f).unwrap(), Some(true));
        let req = Request::builder()
            .uri("/images/json?filters=%7Bbad")
            .body(())
            .unwrap();
        assert_eq!(Query::of(&req).filters().unwrap_err().status, 400);
    }
}
