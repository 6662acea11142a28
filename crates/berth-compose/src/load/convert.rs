//! The merged, interpolated YAML → the typed [`Project`], checking every key. Errors name the
//! key path and what was expected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::{clean_path, key_str, unknown_key, LoadError};
use crate::model::{
    Build, Condition, Dependency, EnvFile, FileObject, FileRef, FileSource, Healthcheck, Limits,
    Mount, MountKind, Network, Port, Project, Service, ServiceNetwork, Subnet, Volume,
};

type R<T> = Result<T, LoadError>;

/// What conversion needs besides the YAML.
pub(crate) struct Context<'a> {
    pub dir: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub project: &'a str,
    pub profiles: &'a BTreeSet<String>,
}

/// How a value is described in "expected X, got Y".
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn expected(path: &str, what: &str, v: &Value) -> LoadError {
    LoadError::at(path, format!("expected {what}, got {}", kind(v)))
}

fn string(v: &Value, path: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(expected(path, "a string", other)),
    }
}

/// A string, or a number/boolean written as text (`user: 1000`, label values).
fn text(v: &Value, path: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(expected(path, "a string", other)),
    }
}

fn boolean(v: &Value, path: &str) -> R<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::String(s) => Err(LoadError::at(
            path,
            format!("expected true or false, got {s:?}"),
        )),
        other => Err(expected(path, "true or false", other)),
    }
}

fn integer(v: &Value, path: &str) -> R<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| LoadError::at(path, format!("expected a whole number, got {n}"))),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| LoadError::at(path, format!("expected a whole number, got {s:?}"))),
        other => Err(expected(path, "a whole number", other)),
    }
}

fn mapping<'v>(v: &'v Value, path: &str) -> R<&'v Mapping> {
    v.as_mapping().ok_or_else(|| expected(path, "a mapping", v))
}

/// A list of strings, or one string when `one_ok`.
fn string_list(v: &Value, path: &str, one_ok: bool) -> R<Vec<String>> {
    match v {
        Value::String(s) if one_ok => Ok(vec![s.clone()]),
        Value::Sequence(seq) => seq
            .iter()
            .enumerate()
            .map(|(i, item)| text(item, &format!("{path}[{i}]")))
            .collect(),
        other => Err(expected(
            path,
            if one_ok {
                "a string or a list of strings"
            } else {
                "a list of strings"
            },
            other,
        )),
    }
}

/// Iterate a mapping's entries with string keys and their paths.
fn entries<'v>(m: &'v Mapping, path: &str) -> R<Vec<(String, String, &'v Value)>> {
    m.iter()
        .map(|(k, v)| {
            let key = match k {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => key_str(k),
                other => {
                    return Err(LoadError::at(
                        path,
                        format!("keys must be strings, got {}", kind(other)),
                    ))
                }
            };
            let p = format!("{path}.{key}");
            Ok((key, p, v))
        })
        .collect()
}

/// `environment`-style: a mapping, or a list of `KEY=VALUE` (`KEY` alone: no value).
fn map_or_list(v: &Value, path: &str, what: &str) -> R<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    match v {
        Value::Mapping(m) => {
            for (k, p, val) in entries(m, path)? {
                let val = match val {
                    Value::Null => None,
                    other => Some(text(other, &p).map_err(|_| {
                        LoadError::at(
                            &p,
                            format!("expected a string, number or boolean, got {}", kind(other)),
                        )
                    })?),
                };
                out.push((k, val));
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let s = match item {
                    Value::String(s) => s.clone(),
                    other => return Err(expected(&p, "a KEY=VALUE string", other)),
                };
                let (k, val) = match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s.clone(), None),
                };
                if k.is_empty() {
                    return Err(LoadError::at(
                        &p,
                        format!("invalid entry {s:?}: expected KEY=VALUE"),
                    ));
                }
                out.push((k, val));
            }
        }
        Value::Null => {}
        other => {
            return Err(expected(
                path,
                &format!("a mapping or a list of KEY=VALUE strings ({what})"),
                other,
            ))
        }
    }
    Ok(out)
}

fn labels(v: &Value, path: &str) -> R<BTreeMap<String, String>> {
    Ok(map_or_list(v, path, "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn string_map(v: &Value, path: &str) -> R<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if v.is_null() {
        return Ok(out);
    }
    for (k, p, val) in entries(mapping(v, path)?, path)? {
        out.insert(k, text(val, &p)?);
    }
    Ok(out)
}

/// A Go-style duration (`1m30s`, `10s`, `500ms`, `1.5h`) in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(total.round() as i64)
}

fn duration(v: &Value, path: &str) -> R<i64> {
    let bad = |shown: String| {
        LoadError::at(
            path,
            format!("invalid duration {shown}: expected a duration like \"10s\", \"1m30s\" or \"500ms\""),
        )
    };
    match v {
        Value::String(s) => parse_duration(s).ok_or_else(|| bad(format!("{s:?}"))),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(0),
        Value::Number(n) => Err(bad(n.to_string())),
        other => Err(expected(path, "a duration string like \"10s\"", other)),
    }
}

/// A byte size: a number, or `512m`, `1g`, `100k`, `2gb`, `64M` (1024-based).
pub(crate) fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if num_len == 0 {
        return None;
    }
    let n: f64 = s[..num_len].parse().ok()?;
    let mult: f64 = match s[num_len..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let total = n * mult;
    if total > i64::MAX as f64 {
        return None;
    }
    Some(total as i64)
}

fn bytes(v: &Value, path: &str) -> R<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| LoadError::at(path, format!("invalid size {n}: expected a byte count"))),
        Value::String(s) => parse_bytes(s).ok_or_else(|| {
            LoadError::at(
                path,
                format!("invalid size {s:?}: expected bytes or a size like \"512m\" or \"1g\""),
            )
        }),
        other => Err(expected(path, "a size like \"512m\"", other)),
    }
}

/// Split a command string as a POSIX shell would (quotes and backslashes), without
/// expanding anything.
pub(crate) fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(ch) => cur.push(ch),
                    None => cur.push('\\'),
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn command(v: &Value, path: &str) -> R<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => shell_split(s)
            .map(Some)
            .map_err(|e| LoadError::at(path, format!("cannot split {s:?}: {e}"))),
        Value::Sequence(_) => string_list(v, path, false).map(Some),
        other => Err(expected(path, "a string or a list of strings", other)),
    }
}

// ---------------------------------------------------------------------------------------
// Ports

const PORT_HINT: &str =
    "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], like \"8080:80\"";

/// `80` or `8000-8010` → (start, end).
fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().ok()?;
    let b: u16 = b.parse().ok()?;
    if a == 0 && b != 0 || a > b {
        return None;
    }
    Some((a, b))
}

fn protocol(p: &str) -> Option<String> {
    let p = p.to_ascii_lowercase();
    matches!(p.as_str(), "tcp" | "udp" | "sctp").then_some(p)
}

/// Expand container and host ranges into one [`Port`] each.
fn expand_ports(
    target: (u16, u16),
    published: Option<(u16, u16)>,
    host_ip: &str,
    proto: &str,
    err: &dyn Fn(&str) -> LoadError,
) -> R<Vec<Port>> {
    let count = u32::from(target.1 - target.0) + 1;
    if let Some((a, b)) = published {
        if u32::from(b - a) + 1 != count {
            return Err(err(&format!(
                "the host port range {a}-{b} and the container port range {}-{} must be the same length",
                target.0, target.1
            )));
        }
    }
    Ok((0..count)
        .map(|i| {
            let off = i as u16;
            Port {
                target: target.0 + off,
                published: published.map(|(a, _)| a + off),
                host_ip: host_ip.to_string(),
                protocol: proto.to_string(),
            }
        })
        .collect())
}

pub(crate) fn parse_port_short(spec: &str, path: &str) -> R<Vec<Port>> {
    let bad = |why: &str| -> LoadError {
        if why.is_empty() {
            LoadError::at(path, format!("invalid port {spec:?}: {PORT_HINT}"))
        } else {
            LoadError::at(path, format!("invalid port {spec:?}: {why}"))
        }
    };
    let (main, proto) = match spec.rsplit_once('/') {
        Some((m, p)) => (
            m,
            protocol(p).ok_or_else(|| bad("the protocol must be tcp, udp or sctp"))?,
        ),
        None => (spec, "tcp".to_string()),
    };
    // An IPv6 host IP is written in brackets: [::1]:8080:80.
    let (host_ip, rest) = if let Some(after) = main.strip_prefix('[') {
        let (ip, rest) = after.split_once("]:").ok_or_else(|| bad(""))?;
        (ip.to_string(), rest)
    } else {
        (String::new(), main)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (host_ip.is_empty(), parts.as_slice()) {
        (true, [c]) => (String::new(), "", *c),
        (true, [h, c]) => (String::new(), *h, *c),
        (true, [ip, h, c]) => (ip.to_string(), *h, *c),
        (false, [h, c]) => (host_ip.clone(), *h, *c),
        (false, [c]) => (host_ip.clone(), "", *c),
        _ => return Err(bad("")),
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(&format!("{ip:?} is not an IP address")));
    }
    let target = port_range(container).ok_or_else(|| bad(""))?;
    let published = if host.is_empty() {
        None
    } else {
        Some(port_range(host).ok_or_else(|| bad(""))?)
    };
    expand_ports(target, published, &ip, &proto, &|m| bad(m))
}

fn port_number(v: &Value, path: &str) -> R<(u16, u16)> {
    let s = text(v, path)?;
    port_range(&s).ok_or_else(|| {
        LoadError::at(path, format!("invalid port {s:?}: expected a port number (1-65535) or a range like \"8000-8010\""))
    })
}

fn parse_port_long(m: &Mapping, path: &str, warnings: &mut Vec<String>) -> R<Vec<Port>> {
    let mut target = None;
    let mut published = None;
    let mut host_ip = String::new();
    let mut proto = "tcp".to_string();
    for (k, p, v) in entries(m, path)? {
        match k.as_str() {
            "target" => target = Some(port_number(v, &p)?),
            "published" => {
                if !v.is_null() && v.as_str() != Some("") {
                    published = Some(port_number(v, &p)?);
                }
            }
            "host_ip" => {
                let ip = string(v, &p)?;
                if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(LoadError::at(&p, format!("{ip:?} is not an IP address")));
                }
                host_ip = ip;
            }
            "protocol" => {
                let s = string(v, &p)?;
                proto = protocol(&s).ok_or_else(|| {
                    LoadError::at(
                        &p,
                        format!("invalid protocol {s:?}: expected tcp, udp or sctp"),
                    )
                })?;
            }
            "mode" => {
                let s = string(v, &p)?;
                if s != "host" && s != "ingress" {
                    return Err(LoadError::at(
                        &p,
                        format!("invalid mode {s:?}: expected host or ingress"),
                    ));
                }
            }
            "name" | "app_protocol" => {
                string(v, &p)?;
            }
            other => {
                return Err(unknown_key(
                    &p,
                    other,
                    &[
                        "target",
                        "published",
                        "host_ip",
                        "protocol",
                        "mode",
                        "name",
                        "app_protocol",
                    ],
                ))
            }
        }
    }
    let _ = warnings;
    let target = target.ok_or_else(|| {
        LoadError::at(path, "missing \"target\" (the container port)".to_string())
    })?;
    expand_ports(target, published, &host_ip, &proto, &|m| {
        LoadError::at(path, m.to_string())
    })
}

fn ports(v: &Value, path: &str, warnings: &mut Vec<String>) -> R<Vec<Port>> {
    let Value::Sequence(seq) = v else {
        return Err(expected(path, "a list of ports", v));
    };
    let mut out: Vec<Port> = Vec::new();
    for (i, item) in seq.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let list = match item {
            Value::String(s) => parse_port_short(s, &p)?,
            Value::Number(n) => parse_port_short(&n.to_string(), &p)?,
            Value::Mapping(m) => parse_port_long(m, &p, warnings)?,
            other => {
                return Err(expected(
                    &p,
                    "a port string like \"8080:80\" or a mapping with target/published",
                    other,
                ))
            }
        };
        for port in list {
            if !out.contains(&port) {
                out.push(port);
            }
        }
    }
    Ok(out)
}

fn expose(v: &Value, path: &str) -> R<Vec<String>> {
    let Value::Sequence(seq) = v else {
        return Err(expected(path, "a list of ports", v));
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in seq.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let s = text(item, &p)?;
        let (port, proto) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s.as_str(), None),
        };
        let ok = port_range(port).is_some_and(|(a, _)| a > 0)
            && proto.is_none_or(|pr| protocol(pr).is_some());
        if !ok {
            return Err(LoadError::at(
                &p,
                format!("invalid port {s:?}: expected PORT[/PROTOCOL] or a range, like \"80\", \"8000-8010\" or \"53/udp\""),
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Volumes

struct VolCx<'a> {
    dir: &'a Path,
    env: &'a BTreeMap<String, String>,
    declared: &'a BTreeSet<String>,
}

impl VolCx<'_> {
    fn host_path(&self, src: &str, path: &str) -> R<String> {
        let p = if src == "~" || src.starts_with("~/") {
            let home = self
                .env
                .get("HOME")
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    LoadError::at(
                        path,
                        format!("cannot resolve {src:?}: HOME is not set in the environment"),
                    )
                })?;
            Path::new(home).join(src.trim_start_matches('~').trim_start_matches('/'))
        } else {
            self.dir.join(src)
        };
        Ok(clean_path(&p).to_string_lossy().into_owned())
    }

    fn check_declared(&self, name: &str, path: &str) -> R<()> {
        if self.declared.contains(name) {
            Ok(())
        } else {
            Err(LoadError::at(
                path,
                format!("volume {name:?} is not declared in the top-level volumes section; add it there (volumes: {{{name}: {{}}}})"),
            ))
        }
    }
}

fn is_host_path(src: &str) -> bool {
    src.starts_with('/') || src.starts_with('.') || src.starts_with('~')
}

fn check_target(t: &str, path: &str) -> R<()> {
    if t.starts_with('/') {
        Ok(())
    } else {
        Err(LoadError::at(
            path,
            format!("invalid mount target {t:?}: the container path must be absolute"),
        ))
    }
}

fn volume_short(spec: &str, path: &str, cx: &VolCx) -> R<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => {
            return Err(LoadError::at(
                path,
                format!("invalid volume {spec:?}: expected [SOURCE:]TARGET[:MODE], like \"data:/var/lib/data\" or \"./src:/app:ro\""),
            ))
        }
    };
    if target.is_empty() {
        return Err(LoadError::at(
            path,
            format!("invalid volume {spec:?}: the container path is empty"),
        ));
    }
    check_target(target, path)?;
    let mut read_only = false;
    let mut nocopy = false;
    if let Some(mode) = mode {
        for opt in mode.split(',') {
            match opt {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "nocopy" => nocopy = true,
                "z" | "Z" | "cached" | "delegated" | "consistent" | "shared" | "rshared"
                | "slave" | "rslave" | "private" | "rprivate" => {}
                other => {
                    return Err(LoadError::at(
                        path,
                        format!("invalid volume mode {other:?} in {spec:?}: expected ro or rw"),
                    ))
                }
            }
        }
    }
    let m = match src {
        None | Some("") => Mount {
            kind: MountKind::Volume,
            source: None,
            target: target.to_string(),
            read_only,
            create_host_path: false,
            tmpfs_size: None,
            nocopy,
        },
        Some(s) if is_host_path(s) => Mount {
            kind: MountKind::Bind,
            source: Some(cx.host_path(s, path)?),
            target: target.to_string(),
            read_only,
            create_host_path: true,
            tmpfs_size: None,
            nocopy: false,
        },
        Some(name) => {
            cx.check_declared(name, path)?;
            Mount {
                kind: MountKind::Volume,
                source: Some(name.to_string()),
                target: target.to_string(),
                read_only,
                create_host_path: false,
                tmpfs_size: None,
                nocopy,
            }
        }
    };
    Ok(m)
}

fn volume_long(m: &Mapping, path: &str, cx: &VolCx, warnings: &mut Vec<String>) -> R<Mount> {
    let ty = match m.get("type") {
        Some(v) => string(v, &format!("{path}.type"))?,
        None => {
            return Err(LoadError::at(
                path,
                "missing \"type\": expected volume, bind or tmpfs",
            ))
        }
    };
    let kind = match ty.as_str() {
        "volume" => MountKind::Volume,
        "bind" => MountKind::Bind,
        "tmpfs" => MountKind::Tmpfs,
        other => {
            return Err(LoadError::at(
                format!("{path}.type"),
                format!("unsupported mount type {other:?}: expected volume, bind or tmpfs"),
            ))
        }
    };
    let mut mount = Mount {
        kind,
        source: None,
        target: String::new(),
        read_only: false,
        create_host_path: false,
        tmpfs_size: None,
        nocopy: false,
    };
    let mut source: Option<String> = None;
    for (k, p, v) in entries(m, path)? {
        match k.as_str() {
            "type" => {}
            "source" => source = Some(string(v, &p)?).filter(|s| !s.is_empty()),
            "target" => mount.target = string(v, &p)?,
            "read_only" => mount.read_only = boolean(v, &p)?,
            "consistency" => {
                string(v, &p)?;
            }
            "bind" => {
                if kind != MountKind::Bind {
                    return Err(LoadError::at(
                        &p,
                        format!("only valid with type: bind (this mount is type: {ty})"),
                    ));
                }
                for (bk, bp, bv) in entries(mapping(v, &p)?, &p)? {
                    match bk.as_str() {
                        "create_host_path" => mount.create_host_path = boolean(bv, &bp)?,
                        "propagation" | "selinux" => {
                            warnings.push(format!(
                                "{bp} is not supported by berth compose and is ignored"
                            ));
                        }
                        other => {
                            return Err(unknown_key(
                                &bp,
                                other,
                                &["create_host_path", "propagation", "selinux"],
                            ))
                        }
                    }
                }
            }
            "volume" => {
                if kind != MountKind::Volume {
                    return Err(LoadError::at(
                        &p,
                        format!("only valid with type: volume (this mount is type: {ty})"),
                    ));
                }
                for (vk, vp, vv) in entries(mapping(v, &p)?, &p)? {
                    match vk.as_str() {
                        "nocopy" => mount.nocopy = boolean(vv, &vp)?,
                        "subpath" => warnings.push(format!(
                            "{vp} is not supported by berth compose and is ignored"
                        )),
                        other => return Err(unknown_key(&vp, other, &["nocopy", "subpath"])),
                    }
                }
            }
            "tmpfs" => {
                if kind != MountKind::Tmpfs {
                    return Err(LoadError::at(
                        &p,
                        format!("only valid with type: tmpfs (this mount is type: {ty})"),
                    ));
                }
                for (tk, tp, tv) in entries(mapping(v, &p)?, &p)? {
                    match tk.as_str() {
                        "size" => mount.tmpfs_size = Some(bytes(tv, &tp)?),
                        "mode" => warnings.push(format!(
                            "{tp} is not supported by berth compose and is ignored"
                        )),
                        other => return Err(unknown_key(&tp, other, &["size", "mode"])),
                    }
                }
            }
            other => {
                return Err(unknown_key(
                    &p,
                    other,
                    &[
                        "type",
                        "source",
                        "target",
                        "read_only",
                        "bind",
                        "volume",
                        "tmpfs",
                        "consistency",
                    ],
                ))
            }
        }
    }
    if mount.target.is_empty() {
        return Err(LoadError::at(
            path,
            "missing \"target\" (the path inside the container)",
        ));
    }
    check_target(&mount.target, &format!("{path}.target"))?;
    match kind {
        MountKind::Bind => {
            let src = source.ok_or_else(|| {
                LoadError::at(path, "a bind mount needs \"source\" (the host path)")
            })?;
            mount.source = Some(cx.host_path(&src, &format!("{path}.source"))?);
        }
        MountKind::Volume => {
            if let Some(name) = source {
                cx.check_declared(&name, &format!("{path}.source"))?;
                mount.source = Some(name);
            }
        }
        MountKind::Tmpfs => {
            if source.is_some() {
                return Err(LoadError::at(
                    format!("{path}.source"),
                    "a tmpfs mount takes no source",
                ));
            }
        }
    }
    Ok(mount)
}

fn volumes(v: &Value, path: &str, cx: &VolCx, warnings: &mut Vec<String>) -> R<Vec<Mount>> {
    let Value::Sequence(seq) = v else {
        return Err(expected(path, "a list of volumes", v));
    };
    let mut out: Vec<Mount> = Vec::new();
    for (i, item) in seq.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let m = match item {
            Value::String(s) => volume_short(s, &p, cx)?,
            Value::Mapping(m) => volume_long(m, &p, cx, warnings)?,
            other => return Err(expected(
                &p,
                "a volume string like \"data:/var/lib/data\" or a mapping with type/source/target",
                other,
            )),
        };
        if let Some(prev) = out.iter().position(|o| o.target == m.target) {
            return Err(LoadError::at(
                &p,
                format!(
                    "duplicate mount target {:?} (also at {path}[{prev}])",
                    m.target
                ),
            ));
        }
        out.push(m);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Services

const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "container_name",
    "hostname",
    "working_dir",
    "user",
    "profiles",
    "deploy",
    "tty",
    "stdin_open",
    "privileged",
    "read_only",
    "init",
    "cap_add",
    "cap_drop",
    "extra_hosts",
    "stop_signal",
    "stop_grace_period",
    "pull_policy",
    "mem_limit",
    "cpus",
    "pids_limit",
    "scale",
    "configs",
    "secrets",
];

/// Compose keys Berth reads but does not act on: one warning each.
const IGNORED_SERVICE_KEYS: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "driver_opts",
    "external_links",
    "gpus",
    "group_add",
    "ipc",
    "isolation",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "platform",
    "post_start",
    "pre_stop",
    "runtime",
    "security_opt",
    "shm_size",
    "storage_opt",
    "sysctls",
    "ulimits",
    "use_api_socket",
    "userns_mode",
    "uts",
    "volumes_from",
    "models",
    "provider",
];

fn ignored(path: &str) -> String {
    format!("{path} is not supported by berth compose and is ignored")
}

fn service_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

struct ServiceCx<'a> {
    cx: &'a Context<'a>,
    declared_networks: &'a BTreeSet<String>,
    declared_volumes: &'a BTreeSet<String>,
    declared_configs: &'a BTreeSet<String>,
    declared_secrets: &'a BTreeSet<String>,
}

fn lookup_env(cx: &Context, key: &str) -> Option<String> {
    cx.env.get(key).cloned()
}

fn build(v: &Value, path: &str, cx: &Context, warnings: &mut Vec<String>) -> R<Build> {
    let mut b = Build {
        dockerfile: "Dockerfile".to_string(),
        ..Build::default()
    };
    let mut context = ".".to_string();
    let mut context_path = format!("{path}.context");
    match v {
        Value::String(s) => {
            context = s.clone();
            context_path = path.to_string();
        }
        Value::Mapping(m) => {
            for (k, p, val) in entries(m, path)? {
                match k.as_str() {
                    "context" => context = string(val, &p)?,
                    "dockerfile" => b.dockerfile = string(val, &p)?,
                    "args" => {
                        for (ak, av) in map_or_list(val, &p, "build args")? {
                            let av = av.or_else(|| lookup_env(cx, &ak));
                            b.args.insert(ak, av);
                        }
                    }
                    "target" => b.target = Some(string(val, &p)?),
                    "labels" => b.labels = labels(val, &p)?,
                    "network" => b.network = Some(string(val, &p)?),
                    "tags" => b.tags = string_list(val, &p, false)?,
                    "cache_from"
                    | "cache_to"
                    | "extra_hosts"
                    | "platforms"
                    | "secrets"
                    | "ssh"
                    | "shm_size"
                    | "no_cache"
                    | "pull"
                    | "ulimits"
                    | "isolation"
                    | "privileged"
                    | "additional_contexts"
                    | "dockerfile_inline"
                    | "entitlements"
                    | "provenance"
                    | "sbom" => warnings.push(ignored(&p)),
                    other => {
                        return Err(unknown_key(
                            &p,
                            other,
                            &[
                                "context",
                                "dockerfile",
                                "args",
                                "target",
                                "labels",
                                "network",
                                "tags",
                                "cache_from",
                                "cache_to",
                                "extra_hosts",
                                "platforms",
                                "secrets",
                                "ssh",
                                "shm_size",
                                "no_cache",
                                "pull",
                            ],
                        ))
                    }
                }
            }
        }
        other => {
            return Err(expected(
                path,
                "a context path or a mapping with context/dockerfile",
                other,
            ))
        }
    }
    if context.contains("://") || context.starts_with("git@") {
        return Err(LoadError::at(
            context_path,
            format!("remote build context {context:?} is not supported by berth compose; clone it and use a local path"),
        ));
    }
    let abs = if context == "~" || context.starts_with("~/") {
        match cx.env.get("HOME") {
            Some(h) => Path::new(h).join(context.trim_start_matches('~').trim_start_matches('/')),
            None => cx.dir.join(&context),
        }
    } else {
        cx.dir.join(&context)
    };
    let abs = clean_path(&abs);
    if !abs.is_dir() {
        return Err(LoadError::at(
            context_path,
            format!(
                "build context {} does not exist or is not a directory",
                abs.display()
            ),
        ));
    }
    b.context = abs;
    Ok(b)
}

fn healthcheck(v: &Value, path: &str) -> R<Healthcheck> {
    let m = mapping(v, path)?;
    let mut h = Healthcheck::default();
    let mut disable = false;
    for (k, p, val) in entries(m, path)? {
        match k.as_str() {
            "test" => {
                h.test = match val {
                    Value::String(s) if !s.trim().is_empty() => {
                        vec!["CMD-SHELL".to_string(), s.clone()]
                    }
                    Value::Sequence(_) => {
                        let list = string_list(val, &p, false)?;
                        match list.first().map(String::as_str) {
                            Some("CMD") | Some("CMD-SHELL") | Some("NONE") => list,
                            _ => {
                                return Err(LoadError::at(
                                    &p,
                                    "expected a list starting with \"CMD\", \"CMD-SHELL\" or \"NONE\", or a shell command string",
                                ))
                            }
                        }
                    }
                    other => {
                        return Err(expected(&p, "a command string or a list", other));
                    }
                }
            }
            "interval" => h.interval_ns = Some(duration(val, &p)?),
            "timeout" => h.timeout_ns = Some(duration(val, &p)?),
            "start_period" => h.start_period_ns = Some(duration(val, &p)?),
            "start_interval" => h.start_interval_ns = Some(duration(val, &p)?),
            "retries" => {
                let r = integer(val, &p)?;
                if r < 0 {
                    return Err(LoadError::at(
                        &p,
                        format!("expected 0 or more retries, got {r}"),
                    ));
                }
                h.retries = Some(r);
            }
            "disable" => disable = boolean(val, &p)?,
            other => {
                return Err(unknown_key(
                    &p,
                    other,
                    &[
                        "test",
                        "interval",
                        "timeout",
                        "start_period",
                        "start_interval",
                        "retries",
                        "disable",
                    ],
                ))
            }
        }
    }
    if disable {
        h.test = vec!["NONE".to_string()];
    }
    Ok(h)
}

fn deploy(v: &Value, path: &str, svc: &mut Service, warnings: &mut Vec<String>) -> R<()> {
    if v.is_null() {
        return Ok(());
    }
    for (k, p, val) in entries(mapping(v, path)?, path)? {
        match k.as_str() {
            "replicas" => svc.replicas = replicas(val, &p)?,
            "resources" => {
                for (rk, rp, rv) in entries(mapping(rv_or_empty(val), &p)?, &p)? {
                    match rk.as_str() {
                        "limits" => limits(rv, &rp, &mut svc.limits, warnings)?,
                        "reservations" => warnings.push(ignored(&rp)),
                        other => return Err(unknown_key(&rp, other, &["limits", "reservations"])),
                    }
                }
            }
            "mode" => {
                let m = string(val, &p)?;
                if m != "replicated" {
                    warnings.push(format!(
                        "{p}: only \"replicated\" is supported by berth compose; {m:?} is ignored"
                    ));
                }
            }
            "labels" | "placement" | "update_config" | "rollback_config" | "restart_policy"
            | "endpoint_mode" => warnings.push(ignored(&p)),
            other => {
                return Err(unknown_key(
                    &p,
                    other,
                    &[
                        "replicas",
                        "resources",
                        "mode",
                        "labels",
                        "placement",
                        "update_config",
                        "rollback_config",
                        "restart_policy",
                        "endpoint_mode",
                    ],
                ))
            }
        }
    }
    Ok(())
}

fn rv_or_empty(v: &Value) -> &Value {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    if v.is_null() {
        EMPTY.get_or_init(|| Value::Mapping(Mapping::new()))
    } else {
        v
    }
}

fn replicas(v: &Value, path: &str) -> R<u32> {
    let n = integer(v, path)?;
    u32::try_from(n)
        .map_err(|_| LoadError::at(path, format!("expected 0 or more replicas, got {n}")))
}

fn cpus(v: &Value, path: &str) -> R<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => return Err(expected(path, "a number of CPUs like 0.5", other)),
    };
    match n {
        Some(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(LoadError::at(
            path,
            format!(
                "invalid cpus {}: expected a positive number like 0.5 or \"1.5\"",
                text(v, path).unwrap_or_default()
            ),
        )),
    }
}

fn limits(v: &Value, path: &str, l: &mut Limits, warnings: &mut Vec<String>) -> R<()> {
    for (k, p, val) in entries(mapping(rv_or_empty(v), path)?, path)? {
        match k.as_str() {
            "cpus" => l.cpus = Some(cpus(val, &p)?),
            "memory" => l.memory = Some(bytes(val, &p)?),
            "pids" => l.pids = Some(integer(val, &p)?),
            "devices" | "generic_resources" => warnings.push(ignored(&p)),
            other => return Err(unknown_key(&p, other, &["cpus", "memory", "pids"])),
        }
    }
    Ok(())
}

fn depends_on(v: &Value, path: &str) -> R<BTreeMap<String, Dependency>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Sequence(_) => {
            for name in string_list(v, path, false)? {
                out.insert(
                    name,
                    Dependency {
                        condition: Condition::ServiceStarted,
                        required: true,
                        restart: false,
                    },
                );
            }
        }
        Value::Mapping(m) => {
            for (name, p, val) in entries(m, path)? {
                let mut d = Dependency {
                    condition: Condition::ServiceStarted,
                    required: true,
                    restart: false,
                };
                if !val.is_null() {
                    for (k, kp, kv) in entries(mapping(val, &p)?, &p)? {
                        match k.as_str() {
                            "condition" => {
                                let c = string(kv, &kp)?;
                                d.condition = match c.as_str() {
                                    "service_started" => Condition::ServiceStarted,
                                    "service_healthy" => Condition::ServiceHealthy,
                                    "service_completed_successfully" => {
                                        Condition::ServiceCompletedSuccessfully
                                    }
                                    other => {
                                        return Err(LoadError::at(
                                            &kp,
                                            format!("invalid condition {other:?}: expected service_started, service_healthy or service_completed_successfully"),
                                        ))
                                    }
                                };
                            }
                            "required" => d.required = boolean(kv, &kp)?,
                            "restart" => d.restart = boolean(kv, &kp)?,
                            other => {
                                return Err(unknown_key(
                                    &kp,
                                    other,
                                    &["condition", "required", "restart"],
                                ))
                            }
                        }
                    }
                }
                out.insert(name, d);
            }
        }
        other => {
            return Err(expected(
                path,
                "a list of service names or a mapping",
                other,
            ));
        }
    }
    Ok(out)
}

fn service_networks(
    v: &Value,
    path: &str,
    scx: &ServiceCx,
    warnings: &mut Vec<String>,
) -> R<BTreeMap<String, ServiceNetwork>> {
    let mut out = BTreeMap::new();
    let check = |name: &str, p: &str| -> R<()> {
        if name == "default" || scx.declared_networks.contains(name) {
            Ok(())
        } else {
            Err(LoadError::at(
                p,
                format!("network {name:?} is not declared in the top-level networks section; add it there (networks: {{{name}: {{}}}})"),
            ))
        }
    };
    match v {
        Value::Sequence(_) => {
            for (i, name) in string_list(v, path, false)?.into_iter().enumerate() {
                check(&name, &format!("{path}[{i}]"))?;
                out.insert(name, ServiceNetwork::default());
            }
        }
        Value::Mapping(m) => {
            for (name, p, val) in entries(m, path)? {
                check(&name, &p)?;
                let mut n = ServiceNetwork::default();
                if !val.is_null() {
                    for (k, kp, kv) in entries(mapping(val, &p)?, &p)? {
                        match k.as_str() {
                            "aliases" => n.aliases = string_list(kv, &kp, false)?,
                            "ipv4_address" => {
                                let ip = string(kv, &kp)?;
                                if ip.parse::<std::net::Ipv4Addr>().is_err() {
                                    return Err(LoadError::at(
                                        &kp,
                                        format!("{ip:?} is not an IPv4 address"),
                                    ));
                                }
                                n.ipv4_address = Some(ip);
                            }
                            "ipv6_address" | "link_local_ips" | "mac_address" | "priority"
                            | "gw_priority" | "driver_opts" | "interface_name" => {
                                warnings.push(ignored(&kp))
                            }
                            other => {
                                return Err(unknown_key(
                                    &kp,
                                    other,
                                    &[
                                        "aliases",
                                        "ipv4_address",
                                        "ipv6_address",
                                        "link_local_ips",
                                        "mac_address",
                                        "priority",
                                        "gw_priority",
                                        "driver_opts",
                                        "interface_name",
                                    ],
                                ))
                            }
                        }
                    }
                }
                out.insert(name, n);
            }
        }
        other => {
            return Err(expected(
                path,
                "a list of network names or a mapping",
                other,
            ))
        }
    }
    Ok(out)
}

fn env_files(
    v: &Value,
    path: &str,
    cx: &Context,
    out: &mut BTreeMap<String, Option<String>>,
    read: &mut Vec<EnvFile>,
) -> R<()> {
    let mut list: Vec<(String, bool, String)> = Vec::new();
    match v {
        Value::String(s) => list.push((s.clone(), true, path.to_string())),
        Value::Sequence(seq) => {
            for (i, item) in seq.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match item {
                    Value::String(s) => list.push((s.clone(), true, p)),
                    Value::Mapping(m) => {
                        let mut file = None;
                        let mut required = true;
                        for (k, kp, kv) in entries(m, &p)? {
                            match k.as_str() {
                                "path" => file = Some(string(kv, &kp)?),
                                "required" => required = boolean(kv, &kp)?,
                                "format" => {
                                    let f = string(kv, &kp)?;
                                    if f != "raw" && !f.is_empty() {
                                        return Err(LoadError::at(
                                            &kp,
                                            format!("unsupported format {f:?}"),
                                        ));
                                    }
                                }
                                other => {
                                    return Err(unknown_key(
                                        &kp,
                                        other,
                                        &["path", "required", "format"],
                                    ))
                                }
                            }
                        }
                        let file = file.ok_or_else(|| LoadError::at(&p, "missing \"path\""))?;
                        list.push((file, required, p));
                    }
                    other => {
                        return Err(expected(
                            &p,
                            "a file path or a mapping with path/required",
                            other,
                        ))
                    }
                }
            }
        }
        Value::Null => {}
        other => return Err(expected(path, "a file path or a list of them", other)),
    }
    for (file, required, p) in list {
        let abs = clean_path(&cx.dir.join(&file));
        if !abs.is_file() {
            if required {
                return Err(LoadError::at(
                    p,
                    format!(
                        "env file {} not found; create it or mark it optional with required: false",
                        abs.display()
                    ),
                ));
            }
            continue;
        }
        let lookup = |name: &str| lookup_env(cx, name);
        let mut vars = Vec::new();
        for (k, v) in super::envfile::read(&abs, Some(&lookup))? {
            // `KEY` alone takes the environment's value; unset, it stays out of the container.
            let v = v.or_else(|| lookup_env(cx, &k));
            if let Some(v) = &v {
                out.insert(k.clone(), Some(v.clone()));
            }
            vars.push((k, v));
        }
        read.push(EnvFile { path: abs, vars });
    }
    Ok(())
}

fn restart(s: &str, path: &str) -> R<String> {
    let ok = match s {
        "no" | "always" | "on-failure" | "unless-stopped" => true,
        _ => s
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(LoadError::at(
            path,
            format!("invalid restart policy {s:?}: expected no, always, on-failure, on-failure:N or unless-stopped"),
        ))
    }
}

fn extra_hosts(v: &Value, path: &str) -> R<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |host: &str, ip: &str, p: &str| -> R<()> {
        if host.is_empty() || ip.is_empty() {
            return Err(LoadError::at(
                p,
                format!("invalid extra host \"{host}:{ip}\": expected HOST:IP, like \"db.local:10.0.0.5\""),
            ));
        }
        let entry = format!("{host}:{ip}");
        if !out.contains(&entry) {
            out.push(entry);
        }
        Ok(())
    };
    match v {
        Value::Sequence(seq) => {
            for (i, item) in seq.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let s = string(item, &p)?;
                let split = s.split_once('=').or_else(|| s.split_once(':'));
                match split {
                    Some((h, ip)) => push(h, ip.trim_start_matches('[').trim_end_matches(']'), &p)?,
                    None => {
                        return Err(LoadError::at(
                            &p,
                            format!("invalid extra host {s:?}: expected HOST:IP, like \"db.local:10.0.0.5\""),
                        ))
                    }
                }
            }
        }
        Value::Mapping(m) => {
            for (host, p, val) in entries(m, path)? {
                match val {
                    Value::Sequence(_) => {
                        for ip in string_list(val, &p, false)? {
                            push(&host, &ip, &p)?;
                        }
                    }
                    other => push(&host, &text(other, &p)?, &p)?,
                }
            }
        }
        other => {
            return Err(expected(
                path,
                "a list of HOST:IP strings or a mapping",
                other,
            ))
        }
    }
    Ok(out)
}

fn service(name: &str, v: &Value, scx: &ServiceCx, warnings: &mut Vec<String>) -> R<Service> {
    let path = format!("services.{name}");
    let cx = scx.cx;
    let empty = Mapping::new();
    let m = match v {
        Value::Mapping(m) => m,
        Value::Null => &empty,
        other => return Err(expected(&path, "a mapping", other)),
    };
    let mut svc = Service {
        name: name.to_string(),
        replicas: 1,
        ..Service::default()
    };
    let mut env_file_vars: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut environment: Vec<(String, Option<String>)> = Vec::new();
    let mut deploy_replicas = false;
    let mut scale: Option<u32> = None;
    let mut legacy = Limits::default();
    let mut networks_given = false;
    let vcx = VolCx {
        dir: cx.dir,
        env: cx.env,
        declared: scx.declared_volumes,
    };
    for (k, p, val) in entries(m, &path)? {
        match k.as_str() {
            "image" => {
                let s = string(val, &p)?;
                if s.trim().is_empty() {
                    return Err(LoadError::at(&p, "the image name is empty"));
                }
                svc.image = Some(s);
            }
            "build" => svc.build = Some(build(val, &p, cx, warnings)?),
            "command" => svc.command = command(val, &p)?,
            "entrypoint" => svc.entrypoint = command(val, &p)?,
            "environment" => {
                environment = match val {
                    Value::Mapping(_) | Value::Sequence(_) | Value::Null => {
                        map_or_list(val, &p, "environment")?
                    }
                    other => {
                        return Err(expected(
                            &p,
                            "a mapping or a list of KEY=VALUE strings",
                            other,
                        ))
                    }
                }
            }
            "env_file" => env_files(val, &p, cx, &mut env_file_vars, &mut svc.env_files)?,
            "configs" => svc.configs = file_refs(FileKind::Config, val, &p, scx)?,
            "secrets" => svc.secrets = file_refs(FileKind::Secret, val, &p, scx)?,
            "ports" => svc.ports = ports(val, &p, warnings)?,
            "expose" => svc.expose = expose(val, &p)?,
            "volumes" => svc.volumes = volumes(val, &p, &vcx, warnings)?,
            "tmpfs" => svc.tmpfs = string_list(val, &p, true)?,
            "networks" => {
                networks_given = true;
                svc.networks = service_networks(val, &p, scx, warnings)?;
            }
            "network_mode" => {
                let s = string(val, &p)?;
                if s.is_empty() {
                    return Err(LoadError::at(&p, "network_mode is empty"));
                }
                svc.network_mode = Some(s);
            }
            "depends_on" => svc.depends_on = depends_on(val, &p)?,
            "healthcheck" => svc.healthcheck = Some(healthcheck(val, &p)?),
            "restart" => {
                let s = match val {
                    Value::Bool(false) => "no".to_string(),
                    other => string(other, &p)?,
                };
                svc.restart = Some(restart(&s, &p)?);
            }
            "labels" => svc.labels = labels(val, &p)?,
            "container_name" => svc.container_name = Some(string(val, &p)?),
            "hostname" => svc.hostname = Some(string(val, &p)?),
            "working_dir" => svc.working_dir = Some(string(val, &p)?),
            "user" => svc.user = Some(text(val, &p)?),
            "profiles" => svc.profiles = string_list(val, &p, false)?,
            "deploy" => {
                deploy_replicas = val.get("replicas").is_some();
                deploy(val, &p, &mut svc, warnings)?;
            }
            "scale" => scale = Some(replicas(val, &p)?),
            "mem_limit" => legacy.memory = Some(bytes(val, &p)?),
            "cpus" => legacy.cpus = Some(cpus(val, &p)?),
            "pids_limit" => legacy.pids = Some(integer(val, &p)?),
            "tty" => svc.tty = boolean(val, &p)?,
            "stdin_open" => svc.stdin_open = boolean(val, &p)?,
            "privileged" => svc.privileged = boolean(val, &p)?,
            "read_only" => svc.read_only = boolean(val, &p)?,
            "init" => svc.init = Some(boolean(val, &p)?),
            "cap_add" => svc.cap_add = string_list(val, &p, false)?,
            "cap_drop" => svc.cap_drop = string_list(val, &p, false)?,
            "extra_hosts" => svc.extra_hosts = extra_hosts(val, &p)?,
            "stop_signal" => svc.stop_signal = Some(string(val, &p)?),
            "stop_grace_period" => {
                let ns = duration(val, &p)?;
                svc.stop_grace_period = Some((ns / 1_000_000_000) as u64);
            }
            "pull_policy" => {
                let s = string(val, &p)?;
                let s = match s.as_str() {
                    "always" | "never" | "missing" | "build" => s,
                    "if_not_present" => "missing".to_string(),
                    other => {
                        return Err(LoadError::at(
                            &p,
                            format!("invalid pull_policy {other:?}: expected always, never, missing or build"),
                        ))
                    }
                };
                svc.pull_policy = Some(s);
            }
            "extends" => {
                return Err(LoadError::at(
                    &p,
                    "not supported by berth compose; copy the settings into this service",
                ))
            }
            other if IGNORED_SERVICE_KEYS.contains(&other) => warnings.push(ignored(&p)),
            other if other.starts_with("x-") => {}
            other => {
                let all: Vec<&str> = SERVICE_KEYS
                    .iter()
                    .chain(IGNORED_SERVICE_KEYS.iter())
                    .copied()
                    .collect();
                return Err(unknown_key(&p, other, &all));
            }
        }
    }
    if svc.image.is_none() && svc.build.is_none() {
        return Err(LoadError::at(
            &path,
            "the service has neither an image nor a build context; add \"image:\" or \"build:\"",
        ));
    }
    if svc.network_mode.is_some() && networks_given {
        return Err(LoadError::at(
            format!("{path}.network_mode"),
            "network_mode cannot be combined with networks; use one or the other",
        ));
    }
    if !deploy_replicas {
        if let Some(s) = scale {
            svc.replicas = s;
        }
    }
    if svc.limits.cpus.is_none() {
        svc.limits.cpus = legacy.cpus;
    }
    if svc.limits.memory.is_none() {
        svc.limits.memory = legacy.memory;
    }
    if svc.limits.pids.is_none() {
        svc.limits.pids = legacy.pids;
    }
    let mut env = env_file_vars;
    for (k, v) in environment {
        let v = v.or_else(|| lookup_env(cx, &k));
        env.insert(k, v);
    }
    svc.environment = env;
    if svc.network_mode.is_none() && svc.networks.is_empty() {
        svc.networks
            .insert("default".to_string(), ServiceNetwork::default());
    }
    Ok(svc)
}

// ---------------------------------------------------------------------------------------
// Top-level networks and volumes

fn external(v: &Value, path: &str, name: &mut Option<String>) -> R<bool> {
    match v {
        Value::Mapping(m) => {
            // Legacy `external: {name: x}`.
            for (k, p, val) in entries(m, path)? {
                match k.as_str() {
                    "name" => *name = Some(string(val, &p)?),
                    other => return Err(unknown_key(&p, other, &["name"])),
                }
            }
            Ok(true)
        }
        other => boolean(other, path),
    }
}

fn network(key: &str, v: &Value, project: &str, warnings: &mut Vec<String>) -> R<Network> {
    let path = format!("networks.{key}");
    let mut n = Network::default();
    let mut name: Option<String> = None;
    if !v.is_null() {
        for (k, p, val) in entries(mapping(v, &path)?, &path)? {
            match k.as_str() {
                "name" => name = Some(string(val, &p)?),
                "external" => n.external = external(val, &p, &mut name)?,
                "driver" => n.driver = Some(string(val, &p)?),
                "driver_opts" => n.driver_opts = string_map(val, &p)?,
                "labels" => n.labels = labels(val, &p)?,
                "internal" => n.internal = boolean(val, &p)?,
                "ipam" => {
                    for (ik, ip, iv) in entries(mapping(rv_or_empty(val), &p)?, &p)? {
                        match ik.as_str() {
                            "config" => {
                                let Value::Sequence(seq) = iv else {
                                    return Err(expected(&ip, "a list of subnets", iv));
                                };
                                for (i, item) in seq.iter().enumerate() {
                                    let cp = format!("{ip}[{i}]");
                                    let mut subnet = None;
                                    let mut gateway = None;
                                    for (ck, ckp, cv) in entries(mapping(item, &cp)?, &cp)? {
                                        match ck.as_str() {
                                            "subnet" => subnet = Some(string(cv, &ckp)?),
                                            "gateway" => gateway = Some(string(cv, &ckp)?),
                                            "ip_range" | "aux_addresses" => {
                                                warnings.push(ignored(&ckp))
                                            }
                                            other => {
                                                return Err(unknown_key(
                                                    &ckp,
                                                    other,
                                                    &[
                                                        "subnet",
                                                        "gateway",
                                                        "ip_range",
                                                        "aux_addresses",
                                                    ],
                                                ))
                                            }
                                        }
                                    }
                                    let subnet = subnet.ok_or_else(|| {
                                        LoadError::at(
                                            &cp,
                                            "missing \"subnet\" (like 172.28.0.0/16)",
                                        )
                                    })?;
                                    n.subnets.push(Subnet { subnet, gateway });
                                }
                            }
                            "driver" | "options" => warnings.push(ignored(&ip)),
                            other => {
                                return Err(unknown_key(
                                    &ip,
                                    other,
                                    &["config", "driver", "options"],
                                ))
                            }
                        }
                    }
                }
                "attachable" | "enable_ipv6" | "enable_ipv4" => warnings.push(ignored(&p)),
                other if other.starts_with("x-") => {}
                other => {
                    return Err(unknown_key(
                        &p,
                        other,
                        &[
                            "name",
                            "external",
                            "driver",
                            "driver_opts",
                            "labels",
                            "internal",
                            "ipam",
                            "attachable",
                            "enable_ipv6",
                            "enable_ipv4",
                        ],
                    ))
                }
            }
        }
    }
    n.name = match (name, n.external) {
        (Some(nm), _) => nm,
        (None, true) => key.to_string(),
        (None, false) => format!("{project}_{key}"),
    };
    Ok(n)
}

fn volume(key: &str, v: &Value, project: &str) -> R<Volume> {
    let path = format!("volumes.{key}");
    let mut vol = Volume::default();
    let mut name: Option<String> = None;
    if !v.is_null() {
        for (k, p, val) in entries(mapping(v, &path)?, &path)? {
            match k.as_str() {
                "name" => name = Some(string(val, &p)?),
                "external" => vol.external = external(val, &p, &mut name)?,
                "driver" => vol.driver = Some(string(val, &p)?),
                "driver_opts" => vol.driver_opts = string_map(val, &p)?,
                "labels" => vol.labels = labels(val, &p)?,
                other if other.starts_with("x-") => {}
                other => {
                    return Err(unknown_key(
                        &p,
                        other,
                        &["name", "external", "driver", "driver_opts", "labels"],
                    ))
                }
            }
        }
    }
    vol.name = match (name, vol.external) {
        (Some(nm), _) => nm,
        (None, true) => key.to_string(),
        (None, false) => format!("{project}_{key}"),
    };
    Ok(vol)
}

// ---------------------------------------------------------------------------------------
// Configs and secrets

/// Which of the two file-object sections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Config,
    Secret,
}

impl FileKind {
    /// The top-level section: `configs` or `secrets`.
    fn section(self) -> &'static str {
        match self {
            FileKind::Config => "configs",
            FileKind::Secret => "secrets",
        }
    }

    /// One of them: `config` or `secret`.
    fn one(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Secret => "secret",
        }
    }

    /// Where a reference lands in the container: an absolute `target` as given, a relative
    /// one under `/run/secrets/` (secrets) or `/` (configs), none at `<dir>/<source>`.
    pub(crate) fn target(self, source: &str, target: Option<&str>) -> String {
        let name = target.filter(|t| !t.is_empty()).unwrap_or(source);
        if name.starts_with('/') {
            return name.to_string();
        }
        match self {
            FileKind::Config => format!("/{name}"),
            FileKind::Secret => format!("/run/secrets/{name}"),
        }
    }
}

/// One top-level `configs:`/`secrets:` entry.
fn file_object(
    kind: FileKind,
    key: &str,
    v: &Value,
    cx: &Context,
    warnings: &mut Vec<String>,
) -> R<FileObject> {
    let path = format!("{}.{key}", kind.section());
    let sources = match kind {
        FileKind::Config => "file, environment, content or external: true",
        FileKind::Secret => "file, environment or external: true",
    };
    let Value::Mapping(m) = v else {
        return Err(match v {
            Value::Null => LoadError::at(
                &path,
                format!("missing the {}'s source: set one of {sources}", kind.one()),
            ),
            other => expected(&path, "a mapping", other),
        });
    };
    let mut name: Option<String> = None;
    let mut obj_labels: BTreeMap<String, String> = BTreeMap::new();
    // (key, source) in file order, to name the ones given when there are several.
    let mut found: Vec<(&'static str, FileSource)> = Vec::new();
    for (k, p, val) in entries(m, &path)? {
        match k.as_str() {
            "name" => name = Some(string(val, &p)?),
            "labels" => obj_labels = labels(val, &p)?,
            "file" => {
                let f = string(val, &p)?;
                if f.is_empty() {
                    return Err(LoadError::at(&p, "the file path is empty"));
                }
                let abs = clean_path(&cx.dir.join(&f));
                if !abs.exists() {
                    return Err(LoadError::at(
                        &p,
                        format!("{}: no such file", abs.display()),
                    ));
                }
                if !abs.is_file() {
                    return Err(LoadError::at(
                        &p,
                        format!("{}: is not a file", abs.display()),
                    ));
                }
                found.push(("file", FileSource::File(abs)));
            }
            "environment" => {
                let var = string(val, &p)?;
                if var.is_empty() {
                    return Err(LoadError::at(&p, "the variable name is empty"));
                }
                let Some(value) = lookup_env(cx, &var) else {
                    return Err(LoadError::at(
                        &p,
                        format!("variable {var} is not set; set it in the environment or in .env"),
                    ));
                };
                found.push((
                    "environment",
                    FileSource::Environment {
                        var,
                        value: Some(value),
                    },
                ));
            }
            "content" if kind == FileKind::Config => {
                found.push(("content", FileSource::Content(text(val, &p)?)));
            }
            "external" => {
                if external(val, &p, &mut name)? {
                    found.push(("external", FileSource::External(true)));
                }
            }
            "driver" | "driver_opts" | "template_driver" => warnings.push(ignored(&p)),
            other if other.starts_with("x-") => {}
            other => {
                let candidates: &[&str] = match kind {
                    FileKind::Config => &[
                        "file",
                        "environment",
                        "content",
                        "external",
                        "name",
                        "labels",
                        "template_driver",
                    ],
                    FileKind::Secret => &[
                        "file",
                        "environment",
                        "external",
                        "name",
                        "labels",
                        "driver",
                        "driver_opts",
                        "template_driver",
                    ],
                };
                let mut e = unknown_key(&p, other, candidates);
                if other == "content" {
                    e.message = "content is only for configs; put a secret's value in a file \
                                 (file:) or a variable (environment:)"
                        .to_string();
                }
                return Err(e);
            }
        }
    }
    let source = match found.len() {
        1 => found.remove(0).1,
        0 => {
            return Err(LoadError::at(
                &path,
                format!("missing the {}'s source: set one of {sources}", kind.one()),
            ))
        }
        _ => {
            let given: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
            return Err(LoadError::at(
                &path,
                format!(
                    "{} are given; set only one of {sources}",
                    given.join(" and ")
                ),
            ));
        }
    };
    let name = match (name, &source) {
        (Some(n), _) if !n.is_empty() => n,
        (_, FileSource::External(_)) => key.to_string(),
        _ => format!("{}_{key}", cx.project),
    };
    Ok(FileObject {
        name,
        source,
        labels: obj_labels,
    })
}

/// A file mode: a number (`0o440` or `288` in YAML), or octal digits in a string (`"0440"`,
/// `"440"`, `"0o440"`; a YAML `0440` is that string).
fn file_mode(v: &Value, path: &str) -> R<u32> {
    let bad = |shown: String| {
        LoadError::at(
            path,
            format!("invalid mode {shown}: expected octal permissions like \"0440\""),
        )
    };
    let mode = match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(n.to_string()))?,
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix("0o").unwrap_or(t);
            if digits.is_empty() {
                return Err(bad(format!("{s:?}")));
            }
            u32::from_str_radix(digits, 8).map_err(|_| bad(format!("{s:?}")))?
        }
        other => return Err(expected(path, "octal permissions like \"0440\"", other)),
    };
    if mode > 0o7777 {
        return Err(bad(format!("{mode:#o}")));
    }
    Ok(mode)
}

/// A numeric user or group ID, as text.
fn numeric_id(v: &Value, path: &str) -> R<String> {
    let s = text(v, path)?;
    if s.parse::<u32>().is_err() {
        return Err(LoadError::at(
            path,
            format!("invalid ID {s:?}: expected a number like \"1000\""),
        ));
    }
    Ok(s)
}

/// A service's `configs:`/`secrets:` list, short (`- name`) or long
/// (`source, target, uid, gid, mode`).
fn file_refs(kind: FileKind, v: &Value, path: &str, scx: &ServiceCx) -> R<Vec<FileRef>> {
    let Value::Sequence(seq) = v else {
        if v.is_null() {
            return Ok(Vec::new());
        }
        return Err(expected(
            path,
            &format!(
                "a list of {} names or mappings with source/target",
                kind.one()
            ),
            v,
        ));
    };
    let declared = match kind {
        FileKind::Config => scx.declared_configs,
        FileKind::Secret => scx.declared_secrets,
    };
    let mut out: Vec<FileRef> = Vec::new();
    for (i, item) in seq.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (source, target, uid, gid, mode) = match item {
            Value::String(s) => (s.clone(), None, None, None, None),
            Value::Mapping(m) => {
                let mut source = None;
                let mut target = None;
                let (mut uid, mut gid, mut mode) = (None, None, None);
                for (k, kp, kv) in entries(m, &p)? {
                    match k.as_str() {
                        "source" => source = Some(string(kv, &kp)?),
                        "target" => target = Some(string(kv, &kp)?),
                        "uid" => uid = Some(numeric_id(kv, &kp)?),
                        "gid" => gid = Some(numeric_id(kv, &kp)?),
                        "mode" => mode = Some(file_mode(kv, &kp)?),
                        other if other.starts_with("x-") => {}
                        other => {
                            return Err(unknown_key(
                                &kp,
                                other,
                                &["source", "target", "uid", "gid", "mode"],
                            ))
                        }
                    }
                }
                let source = source.ok_or_else(|| {
                    LoadError::at(
                        &p,
                        format!(
                            "missing \"source\" (the {}'s key in the top-level {})",
                            kind.one(),
                            kind.section()
                        ),
                    )
                })?;
                (source, target, uid, gid, mode)
            }
            other => {
                return Err(expected(
                    &p,
                    &format!("a {} name or a mapping with source/target", kind.one()),
                    other,
                ))
            }
        };
        if !declared.contains(&source) {
            return Err(LoadError::at(
                &p,
                format!(
                    "{} {source:?} is not defined in the top-level {}",
                    kind.one(),
                    kind.section()
                ),
            ));
        }
        if let Some(t) = target.as_deref().filter(|t| t.ends_with('/')) {
            let like = match kind {
                FileKind::Config => "/etc/app.conf",
                FileKind::Secret => "/run/secrets/db_password",
            };
            return Err(LoadError::at(
                format!("{p}.target"),
                format!("invalid target {t:?}: expected a file path, like {like:?}"),
            ));
        }
        let target = kind.target(&source, target.as_deref());
        if let Some(prev) = out.iter().position(|o| o.target == target) {
            return Err(LoadError::at(
                &p,
                format!("duplicate target {target:?} (also at {path}[{prev}])"),
            ));
        }
        out.push(FileRef {
            source,
            target,
            uid,
            gid,
            mode,
        });
    }
    Ok(out)
}

/// `dependency cycle: a -> b -> a`, when there is one.
fn find_cycle(all: &BTreeMap<String, &Service>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        all: &BTreeMap<String, &Service>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        if let Some(svc) = all.get(n) {
            for dep in svc.depends_on.keys() {
                if !all.contains_key(dep) {
                    continue;
                }
                match state.get(dep.as_str()).copied().unwrap_or(0) {
                    1 => {
                        let start = stack.iter().position(|s| s == dep).unwrap_or(0);
                        let mut cycle: Vec<String> = stack[start..].to_vec();
                        cycle.push(dep.clone());
                        return Some(cycle);
                    }
                    0 => {
                        if let Some(c) = visit(dep, all, state, stack) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for name in all.keys() {
        if state.get(name.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(name, all, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// Convert the merged document.
pub(crate) fn convert(root: &Value, cx: &Context, warnings: &mut Vec<String>) -> R<Project> {
    let empty = Mapping::new();
    let root_map = root.as_mapping().unwrap_or(&empty);
    let section = |key: &str| -> R<&Mapping> {
        match root_map.get(key) {
            None | Some(Value::Null) => Ok(&empty),
            Some(Value::Mapping(m)) => Ok(m),
            Some(other) => Err(expected(key, "a mapping", other)),
        }
    };
    let services_map = section("services")?;
    let networks_map = section("networks")?;
    let volumes_map = section("volumes")?;

    let mut networks = BTreeMap::new();
    for (key, _, v) in entries(networks_map, "networks")? {
        networks.insert(key.clone(), network(&key, v, cx.project, warnings)?);
    }
    let mut volumes = BTreeMap::new();
    for (key, _, v) in entries(volumes_map, "volumes")? {
        volumes.insert(key.clone(), volume(&key, v, cx.project)?);
    }
    let mut configs = BTreeMap::new();
    for (key, _, v) in entries(section("configs")?, "configs")? {
        configs.insert(
            key.clone(),
            file_object(FileKind::Config, &key, v, cx, warnings)?,
        );
    }
    let mut secrets = BTreeMap::new();
    for (key, _, v) in entries(section("secrets")?, "secrets")? {
        secrets.insert(
            key.clone(),
            file_object(FileKind::Secret, &key, v, cx, warnings)?,
        );
    }
    let declared_networks: BTreeSet<String> = networks.keys().cloned().collect();
    let declared_volumes: BTreeSet<String> = volumes.keys().cloned().collect();
    let declared_configs: BTreeSet<String> = configs.keys().cloned().collect();
    let declared_secrets: BTreeSet<String> = secrets.keys().cloned().collect();
    let scx = ServiceCx {
        cx,
        declared_networks: &declared_networks,
        declared_volumes: &declared_volumes,
        declared_configs: &declared_configs,
        declared_secrets: &declared_secrets,
    };

    let mut all: BTreeMap<String, Service> = BTreeMap::new();
    for (name, p, v) in entries(services_map, "services")? {
        if !service_name_ok(&name) {
            return Err(LoadError::at(
                p,
                "invalid service name: use letters, digits, '.', '_' and '-'",
            ));
        }
        let svc = service(&name, v, &scx, warnings)?;
        // A file-backed one is bind-mounted as it is: docker compose ignores these too.
        for (kind, refs, objs) in [
            (FileKind::Config, &svc.configs, &configs),
            (FileKind::Secret, &svc.secrets, &secrets),
        ] {
            for (i, r) in refs.iter().enumerate() {
                let file_backed = objs
                    .get(&r.source)
                    .is_some_and(|o| matches!(o.source, FileSource::File(_)));
                if file_backed && (r.uid.is_some() || r.gid.is_some() || r.mode.is_some()) {
                    warnings.push(format!(
                        "{p}.{}[{i}]: uid, gid and mode are ignored for a {} from a file (it is bind-mounted read-only as it is)",
                        kind.section(),
                        kind.one()
                    ));
                }
            }
        }
        all.insert(name, svc);
    }

    // Cross-service checks.
    for (name, svc) in &all {
        for (dep, d) in &svc.depends_on {
            if !all.contains_key(dep) && d.required {
                return Err(LoadError::at(
                    format!("services.{name}.depends_on.{dep}"),
                    format!("service {dep:?} is not defined in this project (set required: false to make it optional)"),
                ));
            }
        }
        if let Some(mode) = &svc.network_mode {
            if let Some(other) = mode.strip_prefix("service:") {
                if !all.contains_key(other) {
                    return Err(LoadError::at(
                        format!("services.{name}.network_mode"),
                        format!("service {other:?} is not defined in this project"),
                    ));
                }
            }
        }
    }
    let refs: BTreeMap<String, &Service> = all.iter().map(|(k, v)| (k.clone(), v)).collect();
    if let Some(cycle) = find_cycle(&refs) {
        return Err(LoadError::plain(format!(
            "dependency cycle: {}",
            cycle.join(" -> ")
        )));
    }

    let uses_default = all.values().any(|s| s.networks.contains_key("default"));
    if uses_default && !networks.contains_key("default") {
        networks.insert(
            "default".to_string(),
            Network {
                name: format!("{}_default", cx.project),
                ..Network::default()
            },
        );
    }

    let all_active = cx.profiles.contains("*");
    let mut services = BTreeMap::new();
    let mut disabled = BTreeMap::new();
    for (name, svc) in all {
        let enabled = svc.profiles.is_empty()
            || all_active
            || svc.profiles.iter().any(|p| cx.profiles.contains(p));
        if enabled {
            services.insert(name, svc);
        } else {
            disabled.insert(name, svc);
        }
    }

    Ok(Project {
        name: cx.project.to_string(),
        working_dir: cx.dir.to_path_buf(),
        files: Vec::new(),
        services,
        disabled,
        networks,
        volumes,
        configs,
        secrets,
        warnings: Vec::new(),
    })
}
