//! A fake Kubernetes API server on loopback, for `berth kube` tests (and the desktop e2e).
//!
//! It implements only what `berth kube` calls, over plain HTTP/1.1 with bearer-token auth:
//!
//! - `GET /version`;
//! - server-side apply (`PATCH .../<plural>/<name>`, checked: `Content-Type:
//!   application/apply-patch+yaml`, `fieldManager` required, the body's kind, name and
//!   namespace must match the path) of Namespaces, ConfigMaps, Secrets,
//!   PersistentVolumeClaims, Services and Deployments: the object is stored, given a uid,
//!   resourceVersion and generation (bumped when the spec changes), Services a clusterIP (and
//!   nodePorts for NodePort/LoadBalancer), PVCs a `Bound` status;
//! - `GET` of single objects and label-selected lists (`labelSelector` with `k=v`, `k!=v`,
//!   `k`), `DELETE`;
//! - Pods, synthesised for each stored Deployment (`<deployment>-7d9f8b6c5-<suffix>`, the
//!   template's labels and containers), with events
//!   (`fieldSelector=involvedObject.name=<pod>`) and logs (`tailLines`, `previous`,
//!   `follow`: the scripted lines, then the stream ends).
//!
//! Deployment rollouts follow a [`Script`] per deployment name: [`Script::ready`] becomes
//! available after N `GET`s of the deployment (the first of them showing a stale
//! `observedGeneration` with every replica available, a trap for a client that ignores
//! generations); [`Script::crash_loop`] never does, its pods in `CrashLoopBackOff`, with
//! `ProgressDeadlineExceeded` after N `GET`s if asked. Every request is recorded
//! ([`FakeKube::requests`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// The bearer token the kubeconfig of [`FakeKube::write_kubeconfig`] carries.
pub const TOKEN: &str = "berth-fake-token";
/// The ReplicaSet hash in synthesised pod names.
pub const POD_HASH: &str = "7d9f8b6c5";
const SUFFIXES: [&str; 6] = ["x4k2p", "m8q1z", "t7v3c", "b2n6w", "h5r9d", "q3j8f"];
const TIME: &str = "2025-01-01T00:00:00Z";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

impl Recorded {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// How a deployment's rollout goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Available after this many GETs of the deployment (0: at once).
    Ready { after_gets: u32 },
    /// Never available; `ProgressDeadlineExceeded` after this many GETs (`None`: never, the
    /// client has to time out).
    CrashLoop { deadline_after_gets: Option<u32> },
}

/// A scripted event on a deployment's pods.
#[derive(Debug, Clone)]
pub struct FakeEvent {
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

/// What a deployment's rollout, pods, events and logs look like.
#[derive(Debug, Clone)]
pub struct Script {
    pub rollout: Rollout,
    /// The current container's log lines.
    pub logs: Vec<String>,
    /// The previous (crashed) container's log lines.
    pub previous_logs: Vec<String>,
    /// Events of each of its pods (`{pod}` in a message is replaced by the pod's name).
    pub events: Vec<FakeEvent>,
}

impl Script {
    pub fn ready(after_gets: u32) -> Script {
        Script {
            rollout: Rollout::Ready { after_gets },
            logs: Vec::new(),
            previous_logs: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn crash_loop(deadline_after_gets: Option<u32>) -> Script {
        Script {
            rollout: Rollout::CrashLoop {
                deadline_after_gets,
            },
            ..Script::ready(0)
        }
    }

    pub fn logs(mut self, lines: &[&str]) -> Script {
        self.logs = lines.iter().map(|l| l.to_string()).collect();
        self
    }

    pub fn previous_logs(mut self, lines: &[&str]) -> Script {
        self.previous_logs = lines.iter().map(|l| l.to_string()).collect();
        self
    }

    pub fn event(mut self, type_: &str, reason: &str, message: &str, count: i32) -> Script {
        self.events.push(FakeEvent {
            type_: type_.into(),
            reason: reason.into(),
            message: message.into(),
            count,
        });
        self
    }
}

type Key = (String, String, String); // (plural, namespace or "", name)

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    requests: Vec<Recorded>,
    scripts: BTreeMap<String, Script>,
    /// GETs of each deployment since its generation last changed, by (namespace, name).
    gets: BTreeMap<(String, String), u32>,
    resource_version: u64,
    next_ip: u32,
}

/// The fake API server; stops on drop.
pub struct FakeKube {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKube {
    pub fn start() -> FakeKube {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((conn, _)) = accepted else { continue };
                            let st = Arc::clone(&st);
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    let st = Arc::clone(&st);
                                    async move { Ok::<_, std::convert::Infallible>(serve(&st, req).await) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        FakeKube {
            port,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig for this server: context `fake` (current, namespace `default`, token
    /// auth) and context `fake-apps` (namespace `apps`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake-cluster\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake-cluster\n    user: fake-user\n    namespace: default\n- name: fake-apps\n  context:\n    cluster: fake-cluster\n    user: fake-user\n    namespace: apps\nusers:\n- name: fake-user\n  user:\n    token: {TOKEN}\n",
            url = self.url()
        )
    }

    /// Write [`FakeKube::kubeconfig`] to `dir/kubeconfig`; its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let p = dir.join("kubeconfig");
        std::fs::write(&p, self.kubeconfig()).unwrap();
        p
    }

    /// Script the rollout (pods, events, logs) of deployment `name` (any namespace).
    /// Unscripted deployments are ready after 1 GET and log `<name> started`.
    pub fn script(&self, name: &str, s: Script) {
        self.lock().scripts.insert(name.to_string(), s);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// A stored object (`plural` like `deployments`; `namespace` "" for Namespaces).
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(plural.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// The names of the stored objects of a kind in a namespace, sorted.
    pub fn names(&self, plural: &str, namespace: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|(p, ns, _)| p == plural && ns == namespace)
            .map(|(_, _, n)| n.clone())
            .collect()
    }

    /// Store an object as if someone else had made it (`namespace` "" for Namespaces).
    pub fn insert(&self, plural: &str, namespace: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        self.lock()
            .objects
            .insert((plural.into(), namespace.into(), name), object);
    }

    /// The names of the pods synthesised for a deployment (`replicas` of them).
    pub fn pod_names(deployment: &str, replicas: usize) -> Vec<String> {
        (0..replicas)
            .map(|i| format!("{deployment}-{POD_HASH}-{}", SUFFIXES[i % SUFFIXES.len()]))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

fn reply(code: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("Content-Type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn json_reply(code: u16, v: &Value) -> Response<Full<Bytes>> {
    reply(code, "application/json", v.to_string())
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    json_reply(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

/// (kind, apiVersion, whether it is served under /apis/apps/v1) of a resource.
fn kind_of(plural: &str) -> Option<(&'static str, &'static str, bool)> {
    Some(match plural {
        "namespaces" => ("Namespace", "v1", false),
        "configmaps" => ("ConfigMap", "v1", false),
        "secrets" => ("Secret", "v1", false),
        "persistentvolumeclaims" => ("PersistentVolumeClaim", "v1", false),
        "services" => ("Service", "v1", false),
        "pods" => ("Pod", "v1", false),
        "events" => ("Event", "v1", false),
        "deployments" => ("Deployment", "apps/v1", true),
        _ => return None,
    })
}

/// Whether `labels` match a selector like `a=b,c!=d,e`.
fn matches(labels: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[k.trim()].as_str() == Some(v.trim())
        } else {
            !labels[term.trim()].is_null()
        }
    })
}

async fn serve(st: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let authorization = header("authorization");
    let body = match req.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let rec = Recorded {
        method,
        path,
        query,
        content_type,
        authorization,
        body,
    };
    let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
    s.requests.push(rec.clone());
    if rec.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    s.handle(&rec)
}

impl State {
    fn handle(&mut self, r: &Recorded) -> Response<Full<Bytes>> {
        let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        let m = r.method.as_str();
        match segs.as_slice() {
            ["version"] => json_reply(
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                        "gitCommit": "0000000", "gitTreeState": "clean", "buildDate": TIME,
                        "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
            ),
            ["api", "v1", "namespaces", name] => self.object(m, r, "namespaces", "", name),
            ["api", "v1", "namespaces", ns, "pods", pod, "log"] if m == "GET" => {
                self.logs(r, ns, pod)
            }
            ["api", "v1", "namespaces", ns, plural] if kind_of(plural).is_some_and(|k| !k.2) => {
                self.list(m, r, plural, ns)
            }
            ["api", "v1", "namespaces", ns, plural, name]
                if kind_of(plural).is_some_and(|k| !k.2) =>
            {
                self.object(m, r, plural, ns, name)
            }
            ["apis", "apps", "v1", "namespaces", ns, "deployments"] => {
                self.list(m, r, "deployments", ns)
            }
            ["apis", "apps", "v1", "namespaces", ns, "deployments", name] => {
                self.object(m, r, "deployments", ns, name)
            }
            _ => status(
                404,
                "NotFound",
                &format!(
                    "the server could not find the requested resource ({})",
                    r.path
                ),
            ),
        }
    }

    fn script(&self, deployment: &str) -> Script {
        self.scripts
            .get(deployment)
            .cloned()
            .unwrap_or_else(|| Script::ready(1).logs(&[&format!("{deployment} started")]))
    }

    fn list(&mut self, m: &str, r: &Recorded, plural: &str, ns: &str) -> Response<Full<Bytes>> {
        if m != "GET" {
            return status(405, "MethodNotAllowed", &format!("{m} on a list"));
        }
        let Some((kind, api_version, _)) = kind_of(plural) else {
            return status(404, "NotFound", plural);
        };
        let sel = r.param("labelSelector").unwrap_or("").to_string();
        let items: Vec<Value> = match plural {
            "pods" => self.pods(ns),
            "events" => {
                let want = r
                    .param("fieldSelector")
                    .and_then(|f| f.strip_prefix("involvedObject.name="))
                    .map(str::to_string);
                self.events(ns, want.as_deref())
            }
            "deployments" => {
                let names: Vec<String> = self
                    .objects
                    .keys()
                    .filter(|(p, n, _)| p == "deployments" && n == ns)
                    .map(|(_, _, name)| name.clone())
                    .collect();
                names
                    .iter()
                    .filter_map(|n| self.deployment(ns, n, false))
                    .collect()
            }
            _ => self
                .objects
                .iter()
                .filter(|((p, n, _), _)| p == plural && n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        };
        let items: Vec<Value> = items
            .into_iter()
            .filter(|o| matches(&o["metadata"]["labels"], &sel))
            .collect();
        json_reply(
            200,
            &json!({"kind": format!("{kind}List"), "apiVersion": api_version,
                    "metadata": {"resourceVersion": self.resource_version.to_string()},
                    "items": items}),
        )
    }

    fn object(
        &mut self,
        m: &str,
        r: &Recorded,
        plural: &str,
        ns: &str,
        name: &str,
    ) -> Response<Full<Bytes>> {
        let key = (plural.to_string(), ns.to_string(), name.to_string());
        match m {
            "GET" => {
                let found = match plural {
                    "deployments" => self.deployment(ns, name, true),
                    "pods" => self
                        .pods(ns)
                        .into_iter()
                        .find(|p| p["metadata"]["name"] == name),
                    _ => self.objects.get(&key).cloned(),
                };
                match found {
                    Some(v) => json_reply(200, &v),
                    None => not_found(plural, name),
                }
            }
            "DELETE" => match self.objects.remove(&key) {
                Some(v) => {
                    self.gets.remove(&(ns.to_string(), name.to_string()));
                    json_reply(200, &v)
                }
                None => not_found(plural, name),
            },
            "PATCH" => self.apply(r, plural, ns, name),
            _ => status(405, "MethodNotAllowed", m),
        }
    }

    fn apply(&mut self, r: &Recorded, plural: &str, ns: &str, name: &str) -> Response<Full<Bytes>> {
        if r.content_type.as_deref() != Some("application/apply-patch+yaml") {
            return status(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format: {:?}",
                    r.content_type
                ),
            );
        }
        if r.param("fieldManager").is_none_or(str::is_empty) {
            return status(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            );
        }
        let mut body: Value = match serde_yaml::from_str(&r.body) {
            Ok(v) => v,
            Err(e) => return status(400, "BadRequest", &format!("error decoding YAML: {e}")),
        };
        let (kind, api_version, _) = kind_of(plural).unwrap();
        if body["kind"] != kind || body["apiVersion"] != api_version {
            return status(
                400,
                "BadRequest",
                &format!(
                    "the body is a {} {}, the path a {kind}",
                    body["apiVersion"], body["kind"]
                ),
            );
        }
        if body["metadata"]["name"] != name {
            return status(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
            );
        }
        if plural != "namespaces" {
            match body["metadata"]["namespace"].as_str() {
                Some(n) if n != ns => {
                    return status(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match the namespace sent on the request",
                    )
                }
                _ => body["metadata"]["namespace"] = json!(ns),
            }
            if !self
                .objects
                .contains_key(&("namespaces".into(), String::new(), ns.to_string()))
                && ns != "default"
            {
                return not_found("namespaces", ns);
            }
        }
        let key = (plural.to_string(), ns.to_string(), name.to_string());
        let old = self.objects.get(&key).cloned();
        self.resource_version += 1;
        let meta = &mut body["metadata"];
        meta["resourceVersion"] = json!(self.resource_version.to_string());
        meta["creationTimestamp"] = json!(TIME);
        let generation = match &old {
            None => 1,
            Some(o) => {
                let g = o["metadata"]["generation"].as_i64().unwrap_or(1);
                if o["spec"] == body["spec"] && o["data"] == body["data"] {
                    g
                } else {
                    g + 1
                }
            }
        };
        body["metadata"]["generation"] = json!(generation);
        body["metadata"]["uid"] = old
            .as_ref()
            .map(|o| o["metadata"]["uid"].clone())
            .unwrap_or_else(|| json!(format!("uid-{}-{}", plural, self.resource_version)));
        if old.as_ref().map(|o| o["metadata"]["generation"].as_i64()) != Some(Some(generation)) {
            self.gets.remove(&(ns.to_string(), name.to_string()));
        }
        match plural {
            "services" => {
                let ip = match old.as_ref().and_then(|o| o["spec"]["clusterIP"].as_str()) {
                    Some(ip) => ip.to_string(),
                    None => {
                        self.next_ip += 1;
                        format!("10.96.0.{}", 10 + self.next_ip)
                    }
                };
                body["spec"]["clusterIP"] = json!(ip);
                body["spec"]["clusterIPs"] = json!([ip]);
                let t = body["spec"]["type"]
                    .as_str()
                    .unwrap_or("ClusterIP")
                    .to_string();
                if t == "NodePort" || t == "LoadBalancer" {
                    if let Some(ports) = body["spec"]["ports"].as_array_mut() {
                        for (i, p) in ports.iter_mut().enumerate() {
                            if p["nodePort"].is_null() {
                                p["nodePort"] = json!(30080 + i as i64);
                            }
                        }
                    }
                }
            }
            "persistentvolumeclaims" => {
                let size = body["spec"]["resources"]["requests"]["storage"].clone();
                body["status"] = json!({"phase": "Bound", "accessModes": body["spec"]["accessModes"],
                                        "capacity": {"storage": size}});
            }
            "namespaces" => body["status"] = json!({"phase": "Active"}),
            _ => {}
        }
        self.objects.insert(key, body);
        let out = if plural == "deployments" {
            self.deployment(ns, name, false).unwrap_or(Value::Null)
        } else {
            self.objects
                .get(&(plural.to_string(), ns.to_string(), name.to_string()))
                .cloned()
                .unwrap_or(Value::Null)
        };
        json_reply(if old.is_none() { 201 } else { 200 }, &out)
    }

    /// A deployment with its scripted status; `count` counts this as a rollout GET.
    fn deployment(&mut self, ns: &str, name: &str, count: bool) -> Option<Value> {
        let mut d = self
            .objects
            .get(&("deployments".into(), ns.into(), name.into()))
            .cloned()?;
        let gets = self.gets.entry((ns.into(), name.into())).or_insert(0);
        if count {
            *gets += 1;
        }
        let gets = *gets;
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let script = self.script(name);
        let rs = format!("{name}-{POD_HASH}");
        d["status"] = match script.rollout {
            Rollout::Ready { after_gets } if gets > after_gets => json!({
                "observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                                "message": format!("ReplicaSet \"{rs}\" has successfully progressed.")}]
            }),
            Rollout::Ready { .. } if gets <= 1 => json!({
                // Stale: the controller has not seen this generation yet.
                "observedGeneration": generation - 1, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas
            }),
            Rollout::Ready { .. } => json!({
                "observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": 0, "availableReplicas": 0,
                "unavailableReplicas": replicas,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                "message": format!("ReplicaSet \"{rs}\" is progressing.")}]
            }),
            Rollout::CrashLoop {
                deadline_after_gets,
            } => {
                let expired = deadline_after_gets.is_some_and(|d| gets > d);
                let progressing = if expired {
                    json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                           "message": format!("ReplicaSet \"{rs}\" has timed out progressing.")})
                } else {
                    json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                           "message": format!("ReplicaSet \"{rs}\" is progressing.")})
                };
                json!({
                    "observedGeneration": generation, "replicas": replicas,
                    "updatedReplicas": replicas, "readyReplicas": 0, "availableReplicas": 0,
                    "unavailableReplicas": replicas,
                    "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                                   progressing]
                })
            }
        };
        Some(d)
    }

    /// The pods of every deployment in `ns`, in the state of its rollout.
    fn pods(&mut self, ns: &str) -> Vec<Value> {
        let names: Vec<String> = self
            .objects
            .keys()
            .filter(|(p, n, _)| p == "deployments" && n == ns)
            .map(|(_, _, name)| name.clone())
            .collect();
        let mut out = Vec::new();
        for name in names {
            let Some(d) = self.deployment(ns, &name, false) else {
                continue;
            };
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1) as usize;
            let available = d["status"]["availableReplicas"].as_i64().unwrap_or(0) > 0
                && d["status"]["observedGeneration"] == d["metadata"]["generation"];
            let crash = matches!(self.script(&name).rollout, Rollout::CrashLoop { .. });
            let template = &d["spec"]["template"];
            let containers: Vec<Value> = template["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for pod in FakeKube::pod_names(&name, replicas) {
                let statuses: Vec<Value> = containers
                    .iter()
                    .map(|c| {
                        let cname = c["name"].clone();
                        let base = json!({"name": cname, "image": c["image"], "imageID": ""});
                        let extra = if crash {
                            json!({"ready": false, "restartCount": 4, "started": false,
                                   "state": {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": format!("back-off 1m20s restarting failed container={} pod={pod}", cname.as_str().unwrap_or(""))}},
                                   "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                       "startedAt": TIME, "finishedAt": TIME}}})
                        } else if available {
                            json!({"ready": true, "restartCount": 0, "started": true,
                                   "state": {"running": {"startedAt": TIME}}})
                        } else {
                            json!({"ready": false, "restartCount": 0, "started": false,
                                   "state": {"waiting": {"reason": "ContainerCreating"}}})
                        };
                        let mut v = base;
                        for (k, x) in extra.as_object().unwrap() {
                            v[k] = x.clone();
                        }
                        v
                    })
                    .collect();
                let phase = if crash || available {
                    "Running"
                } else {
                    "Pending"
                };
                out.push(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod, "namespace": ns, "uid": format!("uid-pod-{pod}"),
                                 "labels": template["metadata"]["labels"],
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": format!("{name}-{POD_HASH}"), "uid": "uid-rs", "controller": true}]},
                    "spec": template["spec"],
                    "status": {"phase": phase, "containerStatuses": statuses}
                }));
            }
        }
        out
    }

    fn deployment_of_pod(&self, ns: &str, pod: &str) -> Option<String> {
        let (prefix, _) = pod.rsplit_once(&format!("-{POD_HASH}-"))?;
        self.objects
            .contains_key(&("deployments".into(), ns.into(), prefix.into()))
            .then(|| prefix.to_string())
    }

    fn events(&mut self, ns: &str, object: Option<&str>) -> Vec<Value> {
        let pods: Vec<String> = self
            .pods(ns)
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .filter(|p| object.is_none_or(|o| o == p))
            .collect();
        let mut out = Vec::new();
        for pod in pods {
            let Some(dep) = self.deployment_of_pod(ns, &pod) else {
                continue;
            };
            for (i, e) in self.script(&dep).events.iter().enumerate() {
                out.push(json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": format!("{pod}.{i:x}"), "namespace": ns},
                    "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns, "apiVersion": "v1"},
                    "type": e.type_, "reason": e.reason, "message": e.message.replace("{pod}", &pod),
                    "count": e.count, "firstTimestamp": TIME, "lastTimestamp": TIME,
                    "source": {"component": "kubelet"}
                }));
            }
        }
        out
    }

    fn logs(&mut self, r: &Recorded, ns: &str, pod: &str) -> Response<Full<Bytes>> {
        if !self.pods(ns).iter().any(|p| p["metadata"]["name"] == pod) {
            return not_found("pods", pod);
        }
        let Some(dep) = self.deployment_of_pod(ns, pod) else {
            return not_found("pods", pod);
        };
        let s = self.script(&dep);
        let lines = if r.param("previous") == Some("true") {
            if !matches!(s.rollout, Rollout::CrashLoop { .. }) {
                return status(
                    400,
                    "BadRequest",
                    &format!("previous terminated container in pod \"{pod}\" not found"),
                );
            }
            s.previous_logs
        } else {
            s.logs
        };
        let tail = r
            .param("tailLines")
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let skip = lines.len().saturating_sub(tail);
        let text: String = lines.iter().skip(skip).map(|l| format!("{l}\n")).collect();
        reply(200, "text/plain", text)
    }
}

fn not_found(plural: &str, name: &str) -> Response<Full<Bytes>> {
    status(404, "NotFound", &format!("{plural} \"{name}\" not found"))
}
