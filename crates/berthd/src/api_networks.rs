//! `/networks/...`: list, inspect, create, remove, connect, disconnect and prune, as a thin
//! translation onto [`berth_engine::network::Networks`] (whose calls block: they run `ip`, so
//! they go through `spawn_blocking`). Docker always lists `bridge`, `host` and `none`; the
//! service only has bridge networks, so `host` and `none` are shown from their stable IDs.

use crate::api::{
    check_filters, empty, json_body, json_response, ok_json, ApiError, ApiResult, Query, State,
};
use berth_engine::network::{
    self, CreateOptions, Endpoint, NetworkConfig, NetworkError, Networks, Predefined,
    BRIDGE_NAME_OPTION, DEFAULT_NETWORK,
};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub async fn route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let rest = rest.trim_start_matches('/');
    let method = req.method().clone();
    match (&method, rest) {
        (&Method::GET, "") => return list(state, &Query::of(&req)).await,
        (&Method::POST, "create") => return create(state, req).await,
        (&Method::POST, "prune") => return prune(state, &Query::of(&req)).await,
        _ => {}
    }
    if rest.is_empty() {
        return Err(ApiError::not_found());
    }
    match rest.split_once('/') {
        None => match method {
            Method::GET => inspect(state, rest).await,
            Method::DELETE => remove(state, rest).await,
            _ => Err(ApiError::not_found()),
        },
        Some((id, "connect")) if method == Method::POST => connect(state, req, id).await,
        Some((id, "disconnect")) if method == Method::POST => disconnect(state, req, id).await,
        Some(_) => Err(ApiError::not_found()),
    }
}

fn net_err(e: NetworkError) -> ApiError {
    let status = match e.kind() {
        network::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        network::ErrorKind::Conflict => StatusCode::CONFLICT,
        network::ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        network::ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        network::ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

/// Run `f` on the network service off the async threads.
async fn with_nets<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&mut Networks) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let nets = Arc::clone(&state.networks);
    tokio::task::spawn_blocking(move || {
        let mut g = match nets.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("network worker failed: {e}"),
        )
    })?
}

/// A network as the API shows it.
#[derive(Debug, Clone)]
enum Net {
    Bridge(NetworkConfig, Vec<Endpoint>),
    Builtin(Predefined),
}

impl Net {
    fn name(&self) -> &str {
        match self {
            Net::Bridge(c, _) => &c.name,
            Net::Builtin(p) => &p.name,
        }
    }
    fn id(&self) -> &str {
        match self {
            Net::Bridge(c, _) => &c.id,
            Net::Builtin(p) => &p.id,
        }
    }
    fn driver(&self) -> &str {
        match self {
            Net::Bridge(..) => "bridge",
            Net::Builtin(p) => &p.driver,
        }
    }
    fn builtin(&self) -> bool {
        match self {
            Net::Bridge(c, _) => c.name == DEFAULT_NETWORK,
            Net::Builtin(_) => true,
        }
    }
    fn labels(&self) -> BTreeMap<String, String> {
        match self {
            Net::Bridge(c, _) => c.labels.clone(),
            Net::Builtin(_) => BTreeMap::new(),
        }
    }
    fn in_use(&self) -> bool {
        matches!(self, Net::Bridge(_, eps) if !eps.is_empty())
    }
}

fn all_nets(nets: &Networks) -> Result<Vec<Net>, ApiError> {
    let mut out = Vec::new();
    for cfg in nets.list() {
        let eps = nets.users(&cfg.id).map_err(net_err)?;
        out.push(Net::Bridge(cfg, eps));
    }
    out.extend(nets.predefined().into_iter().map(Net::Builtin));
    Ok(out)
}

/// Docker's lookup: exact name, exact ID, then a unique ID prefix.
fn find(nets: &Networks, key: &str) -> Result<Net, ApiError> {
    let all = all_nets(nets)?;
    if let Some(n) = all.iter().find(|n| n.name() == key || n.id() == key) {
        return Ok(n.clone());
    }
    let matches: Vec<&Net> = all
        .iter()
        .filter(|n| !key.is_empty() && n.id().starts_with(key))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("network {key} not found"),
        )),
        many => Err(ApiError::bad(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix); give more of the ID",
            many.len()
        ))),
    }
}

fn rfc3339(nanos: i64) -> String {
    berth_time::format(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

/// Docker's network inspect shape. `names`: container ID → name.
fn to_json(n: &Net, names: &BTreeMap<String, String>, with_containers: bool) -> Value {
    match n {
        Net::Bridge(c, eps) => {
            let mut ipam =
                json!({"Subnet": c.subnet.to_string(), "Gateway": c.gateway.to_string()});
            if let Some(r) = c.ip_range {
                ipam["IPRange"] = json!(r.to_string());
            }
            let containers: serde_json::Map<String, Value> = if with_containers {
                eps.iter()
                    .map(|e| {
                        (
                            e.container.clone(),
                            json!({
                                "Name": names.get(&e.container).cloned().unwrap_or_default(),
                                "EndpointID": network::endpoint_id(&c.id, &e.container),
                                "MacAddress": e.mac,
                                "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                                "IPv6Address": "",
                            }),
                        )
                    })
                    .collect()
            } else {
                serde_json::Map::new()
            };
            let options = if c.name == DEFAULT_NETWORK {
                json!({
                    "com.docker.network.bridge.default_bridge": "true",
                    "com.docker.network.bridge.enable_icc": "true",
                    // Berth never NATs (see docs/network.md).
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                    "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
                    (BRIDGE_NAME_OPTION): c.bridge,
                    "com.docker.network.driver.mtu": "1500",
                })
            } else {
                json!(c.options)
            };
            json!({
                "Name": c.name,
                "Id": c.id,
                "Created": rfc3339(c.created),
                "Scope": "local",
                "Driver": "bridge",
                "EnableIPv6": false,
                "IPAM": {"Driver": "default", "Options": null, "Config": [ipam]},
                "Internal": c.internal,
                "Attachable": c.attachable,
                "Ingress": false,
                "ConfigFrom": {"Network": ""},
                "ConfigOnly": false,
                "Containers": containers,
                "Options": options,
                "Labels": c.labels,
            })
        }
        Net::Builtin(p) => json!({
            "Name": p.name,
            "Id": p.id,
            "Created": rfc3339(p.created),
            "Scope": "local",
            "Driver": p.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null, "Config": []},
            "Internal": false,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": {},
            "Options": {},
            "Labels": {},
        }),
    }
}

/// `label=key` or `label=key=value` against a network's labels.
fn label_matches(labels: &BTreeMap<String, String>, spec: &str) -> bool {
    match spec.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
        None => labels.contains_key(spec),
    }
}

fn bool_filter(f: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<bool>, ApiError> {
    match f.get(key).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([v]) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::bad(format!(
                "invalid filter '{key}={v}': use true or false"
            ))),
        },
        Some(_) => Err(ApiError::bad(format!(
            "invalid filter '{key}': give one value"
        ))),
    }
}

/// The `GET /networks` filters, Docker's semantics: values of one key are alternatives,
/// keys combine; `name` and `id` match any part.
fn list_filter(
    f: &BTreeMap<String, Vec<String>>,
) -> Result<impl Fn(&Net) -> bool + Send + 'static, ApiError> {
    check_filters(
        f,
        &["dangling", "driver", "id", "label", "name", "scope", "type"],
    )?;
    for t in f.get("type").into_iter().flatten() {
        if t != "custom" && t != "builtin" {
            return Err(ApiError::bad(format!(
                "invalid filter 'type={t}': use custom or builtin"
            )));
        }
    }
    let dangling = bool_filter(f, "dangling")?;
    let f = f.clone();
    Ok(move |n: &Net| {
        let any =
            |key: &str, pred: &dyn Fn(&str) -> bool| match f.get(key).filter(|v| !v.is_empty()) {
                None => true,
                Some(vs) => vs.iter().any(|v| pred(v)),
            };
        let labels = n.labels();
        any("driver", &|v| v == n.driver())
            && any("id", &|v| n.id().contains(v))
            && any("name", &|v| n.name().contains(v))
            && any("scope", &|v| v == "local")
            && any("type", &|v| (v == "builtin") == n.builtin())
            && f.get("label")
                .into_iter()
                .flatten()
                .all(|l| label_matches(&labels, l))
            && dangling != Some(n.builtin() || n.in_use())
    })
}

async fn list(state: &Arc<State>, q: &Query) -> ApiResult {
    let keep = list_filter(&q.filters()?)?;
    let names = state.containers.names().await;
    let nets = with_nets(state, |nets| all_nets(nets)).await?;
    let out: Vec<Value> = nets
        .iter()
        .filter(|n| keep(n))
        .map(|n| to_json(n, &names, false))
        .collect();
    ok_json(&out)
}

async fn inspect(state: &Arc<State>, key: &str) -> ApiResult {
    let key = key.to_string();
    let n = with_nets(state, move |nets| find(nets, &key)).await?;
    let names = state.containers.names().await;
    ok_json(&to_json(&n, &names, true))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    ingress: bool,
    config_only: bool,
    config_from: Option<ConfigFrom>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    labels: Option<BTreeMap<String, String>>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConfigFrom {
    network: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    driver: String,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpamConfig {
    #[serde(rename = "Subnet")]
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    #[serde(rename = "Gateway")]
    gateway: String,
    #[serde(rename = "AuxiliaryAddresses")]
    aux: Option<BTreeMap<String, String>>,
}

/// Check a create body and turn it into the service's options.
fn create_options(b: &CreateBody) -> Result<CreateOptions, ApiError> {
    if b.name.is_empty() {
        return Err(ApiError::bad(
            "network name is required: give \"Name\" in the request body",
        ));
    }
    if !b.driver.is_empty() && b.driver != "bridge" {
        return Err(ApiError::bad(format!(
            "network driver \"{}\" is not supported: Berth supports only the bridge driver \
             (omit --driver or use --driver bridge)",
            b.driver
        )));
    }
    if b.enable_ipv6 == Some(true) {
        return Err(ApiError::bad(
            "IPv6 networks are not supported by Berth: drop --ipv6",
        ));
    }
    if b.ingress {
        return Err(ApiError::bad(
            "ingress networks need swarm mode, which Berth does not support: drop --ingress",
        ));
    }
    if b.config_only
        || b.config_from
            .as_ref()
            .is_some_and(|c| !c.network.is_empty())
    {
        return Err(ApiError::bad(
            "config-only networks (--config-only, --config-from) are not supported by Berth",
        ));
    }
    let mut o = CreateOptions {
        internal: b.internal,
        attachable: b.attachable,
        labels: b.labels.clone().unwrap_or_default(),
        options: b.options.clone().unwrap_or_default(),
        ..CreateOptions::default()
    };
    if let Some(ipam) = &b.ipam {
        if !ipam.driver.is_empty() && ipam.driver != "default" {
            return Err(ApiError::bad(format!(
                "IPAM driver \"{}\" is not supported: Berth supports only the default IPAM \
                 driver (omit --ipam-driver)",
                ipam.driver
            )));
        }
        let configs = ipam.config.as_deref().unwrap_or_default();
        if configs.len() > 1 {
            return Err(ApiError::bad(format!(
                "{} IPAM configs given: Berth networks take one IPv4 --subnet",
                configs.len()
            )));
        }
        if let Some(c) = configs.first() {
            if c.aux.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(ApiError::bad(
                    "auxiliary addresses (--aux-address) are not supported by Berth",
                ));
            }
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            o.subnet = opt(&c.subnet);
            o.gateway = opt(&c.gateway);
            o.ip_range = opt(&c.ip_range);
        }
    }
    Ok(o)
}

fn net_attrs(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("type".to_string(), "bridge".to_string()),
    ])
}

async fn create(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let body: CreateBody = json_body(req, false).await?;
    let opts = create_options(&body)?;
    let name = body.name.clone();
    let cfg = with_nets(state, move |nets| {
        if nets.name_in_use(&name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("network with name {name} already exists"),
            ));
        }
        nets.create_with(&name, &opts).map_err(|e| {
            // The name was free, so a conflict is an overlapping subnet or a taken bridge
            // name: Docker answers those with 403.
            if e.kind() == network::ErrorKind::Conflict {
                ApiError::new(StatusCode::FORBIDDEN, e.to_string())
            } else {
                net_err(e)
            }
        })
    })
    .await?;
    state
        .events
        .emit("network", "create", &cfg.id, net_attrs(&cfg.name));
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": cfg.id, "Warning": ""}),
    ))
}

async fn remove(state: &Arc<State>, key: &str) -> ApiResult {
    let key = key.to_string();
    let n = with_nets(state, move |nets| {
        let n = find(nets, &key)?;
        nets.remove(n.id()).map_err(|e| {
            // Pre-defined networks and networks in use: Docker answers 403.
            if e.kind() == network::ErrorKind::Conflict {
                ApiError::new(StatusCode::FORBIDDEN, e.to_string())
            } else {
                net_err(e)
            }
        })?;
        Ok(n)
    })
    .await?;
    state
        .events
        .emit("network", "destroy", n.id(), net_attrs(n.name()));
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The full ID of a container given by ID, name (with or without `/`) or unique ID prefix;
/// as given when the container service does not know it (it then answers the error).
async fn container_id(state: &Arc<State>, key: &str) -> String {
    let names = state.containers.names().await;
    let bare = key.trim_start_matches('/');
    if names.contains_key(key) {
        return key.to_string();
    }
    if let Some((id, _)) = names.iter().find(|(_, n)| n.as_str() == bare) {
        return id.clone();
    }
    let prefixed: Vec<&String> = names.keys().filter(|id| id.starts_with(key)).collect();
    match prefixed.as_slice() {
        [one] => (*one).clone(),
        _ => key.to_string(),
    }
}

/// The bridge network an endpoint call names; host/none cannot be joined or left this way.
async fn bridge_net(state: &Arc<State>, key: &str, verb: &str) -> Result<Net, ApiError> {
    let key = key.to_string();
    let n = with_nets(state, move |nets| find(nets, &key)).await?;
    if let Net::Builtin(p) = &n {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "container cannot be {verb} the {} network: only bridge networks can be \
                 connected or disconnected (recreate the container with --network {} instead)",
                p.name, p.name
            ),
        ));
    }
    Ok(n)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointConfig {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<IpamRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpamRequest {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    container: String,
    force: bool,
}

fn endpoint_attrs(container: &str, net: &Net) -> BTreeMap<String, String> {
    let mut a = net_attrs(net.name());
    a.insert("container".to_string(), container.to_string());
    a
}

async fn connect(state: &Arc<State>, req: Request<Incoming>, key: &str) -> ApiResult {
    let body: ConnectBody = json_body(req, false).await?;
    if body.container.is_empty() {
        return Err(ApiError::bad(
            "no container given: put the container's ID or name in \"Container\"",
        ));
    }
    let net = bridge_net(state, key, "connected to").await?;
    let id = container_id(state, &body.container).await;
    let ep = body.endpoint_config.unwrap_or_default();
    let ip = match ep.ipam_config.map(|i| i.ipv4_address) {
        Some(a) if !a.is_empty() => Some(a.parse::<std::net::Ipv4Addr>().map_err(|_| {
            ApiError::bad(format!(
                "invalid IPv4 address {a:?} in EndpointConfig.IPAMConfig.IPv4Address"
            ))
        })?),
        _ => None,
    };
    let aliases = ep.aliases.unwrap_or_default();
    state
        .containers
        .connect(&id, net.name(), aliases, ip)
        .await?;
    state
        .events
        .emit("network", "connect", net.id(), endpoint_attrs(&id, &net));
    Ok(empty(StatusCode::OK))
}

async fn disconnect(state: &Arc<State>, req: Request<Incoming>, key: &str) -> ApiResult {
    let body: DisconnectBody = json_body(req, false).await?;
    if body.container.is_empty() {
        return Err(ApiError::bad(
            "no container given: put the container's ID or name in \"Container\"",
        ));
    }
    let net = bridge_net(state, key, "disconnected from").await?;
    let id = container_id(state, &body.container).await;
    state
        .containers
        .disconnect(&id, net.name(), body.force)
        .await?;
    state
        .events
        .emit("network", "disconnect", net.id(), endpoint_attrs(&id, &net));
    Ok(empty(StatusCode::OK))
}

/// A Go duration as the docker CLI passes it for `until` (`90s`, `1h30m`, `1.5h`).
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// `until` for prune: a timestamp (unix seconds, RFC 3339) or a duration back from now.
/// Nanoseconds since the epoch.
fn parse_until(v: &str, now_nanos: i64) -> Result<i64, ApiError> {
    if let Ok(t) = berth_engine::events::parse_timestamp(v) {
        return Ok(t);
    }
    match parse_duration(v) {
        Some(d) => Ok(now_nanos.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))),
        None => Err(ApiError::bad(format!(
            "invalid filter 'until={v}': use a duration (24h, 90m), unix seconds or an RFC 3339 \
             date"
        ))),
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let f = q.filters()?;
    check_filters(&f, &["until", "label", "label!"])?;
    let until = match f.get("until").map(Vec::as_slice) {
        None | Some([]) => None,
        Some([v]) => Some(parse_until(v, now_nanos())?),
        Some(_) => return Err(ApiError::bad("invalid filter 'until': give one value")),
    };
    let labels = f.get("label").cloned().unwrap_or_default();
    let not_labels = f.get("label!").cloned().unwrap_or_default();
    let removed = with_nets(state, move |nets| {
        let mut removed = Vec::new();
        for n in all_nets(nets)? {
            let Net::Bridge(cfg, eps) = &n else { continue };
            if n.builtin() || !eps.is_empty() {
                continue;
            }
            if until.is_some_and(|u| cfg.created >= u) {
                continue;
            }
            if !labels.iter().all(|l| label_matches(&cfg.labels, l))
                || not_labels.iter().any(|l| label_matches(&cfg.labels, l))
            {
                continue;
            }
            match nets.remove(&cfg.id) {
                Ok(()) => removed.push((cfg.id.clone(), cfg.name.clone())),
                // Something joined it meanwhile: not unused any more.
                Err(e) if e.kind() == network::ErrorKind::Conflict => {}
                Err(e) => return Err(net_err(e)),
            }
        }
        Ok(removed)
    })
    .await?;
    for (id, name) in &removed {
        state.events.emit("network", "destroy", id, net_attrs(name));
    }
    let names: Vec<&String> = removed.iter().map(|(_, n)| n).collect();
    ok_json(&json!({ "NetworksDeleted": names }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error's message (Debug escapes its quotes).
    fn msg(e: &ApiError) -> String {
        format!("{e:?}").replace("\\\"", "\"")
    }

    fn body(v: Value) -> CreateBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn create_bodies() {
        let o = create_options(&body(json!({
            "Name": "n1", "Driver": "bridge", "Internal": true,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.254", "IPRange": "10.5.0.128/25"}]},
            "Labels": {"a": "b"}, "Options": null, "EnableIPv6": false
        })))
        .unwrap();
        assert!(o.internal);
        assert_eq!(o.subnet.as_deref(), Some("10.5.0.0/24"));
        assert_eq!(o.gateway.as_deref(), Some("10.5.0.254"));
        assert_eq!(o.ip_range.as_deref(), Some("10.5.0.128/25"));
        assert_eq!(o.labels.get("a").map(String::as_str), Some("b"));

        let e = create_options(&body(json!({"Name": "n1", "Driver": "overlay"}))).unwrap_err();
        assert!(msg(&e).contains("\"overlay\"") && msg(&e).contains("only the bridge"));
        let e = create_options(&body(json!({"Driver": "bridge"}))).unwrap_err();
        assert!(msg(&e).contains("name is required"), "{e:?}");
        let e = create_options(&body(json!({"Name": "x", "EnableIPv6": true}))).unwrap_err();
        assert!(msg(&e).contains("IPv6"), "{e:?}");
        let e =
            create_options(&body(json!({"Name": "x", "IPAM": {"Config": [{}, {}]}}))).unwrap_err();
        assert!(msg(&e).contains("2 IPAM configs"), "{e:?}");
    }

    #[test]
    fn durations_and_until() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5d"), None);
        let now = 10_000_000_000_000;
        assert_eq!(parse_until("10s", now).unwrap(), now - 10_000_000_000);
        assert_eq!(parse_until("12", now).unwrap(), 12_000_000_000);
        let e = parse_until("soon", now).unwrap_err();
        assert!(msg(&e).contains("'until=soon'"), "{e:?}");
    }

    fn bridge(name: &str, labels: &[(&str, &str)], in_use: bool) -> Net {
        let cfg = NetworkConfig {
            id: format!("{name}0123456789"),
            name: name.to_string(),
            bridge: "br-x".into(),
            subnet: "10.9.0.0/24".parse().unwrap(),
            gateway: "10.9.0.1".parse().unwrap(),
            internal: false,
            attachable: false,
            ip_range: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            options: BTreeMap::new(),
            created: 1,
        };
        let eps = if in_use {
            vec![Endpoint {
                network: name.into(),
                container: "c".repeat(64),
                netns_path: "/x".into(),
                ifname: "eth0".into(),
                host_veth: "vb0".into(),
                ip: "10.9.0.2".parse().unwrap(),
                prefix: 24,
                mac: "02:42:0a:09:00:02".into(),
                gateway: "10.9.0.1".parse().unwrap(),
                aliases: vec![],
            }]
        } else {
            vec![]
        };
        Net::Bridge(cfg, eps)
    }

    fn keep(f: &[(&str, &[&str])], nets: &[Net]) -> Vec<String> {
        let f: BTreeMap<String, Vec<String>> = f
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        let pred = list_filter(&f).unwrap();
        nets.iter()
            .filter(|n| pred(n))
            .map(|n| n.name().to_string())
            .collect()
    }

    #[test]
    fn list_filters() {
        let nets = vec![
            bridge("bridge", &[], true),
            bridge("front", &[("tier", "web")], false),
            bridge("back", &[("tier", "db")], true),
            Net::Builtin(Predefined {
                name: "host".into(),
                id: "h".repeat(64),
                driver: "host".into(),
                created: 1,
            }),
        ];
        assert_eq!(keep(&[], &nets).len(), 4);
        assert_eq!(keep(&[("type", &["custom"])], &nets), ["front", "back"]);
        assert_eq!(keep(&[("type", &["builtin"])], &nets), ["bridge", "host"]);
        assert_eq!(keep(&[("driver", &["host"])], &nets), ["host"]);
        assert_eq!(keep(&[("name", &["ron"])], &nets), ["front"]);
        assert_eq!(
            keep(&[("name", &["front", "back"])], &nets),
            ["front", "back"]
        );
        assert_eq!(keep(&[("id", &["back01"])], &nets), ["back"]);
        assert_eq!(keep(&[("label", &["tier"])], &nets), ["front", "back"]);
        assert_eq!(keep(&[("label", &["tier=db"])], &nets), ["back"]);
        assert_eq!(keep(&[("dangling", &["true"])], &nets), ["front"]);
        assert_eq!(
            keep(&[("dangling", &["false"])], &nets),
            ["bridge", "back", "host"]
        );
        assert!(keep(&[("scope", &["swarm"])], &nets).is_empty());
        let bad: BTreeMap<String, Vec<String>> =
            BTreeMap::from([("type".to_string(), vec!["weird".to_string()])]);
        assert!(list_filter(&bad).is_err());
        let bad: BTreeMap<String, Vec<String>> =
            BTreeMap::from([("colour".to_string(), vec!["x".to_string()])]);
        assert!(list_filter(&bad).is_err());
    }
}
