//! Merging compose files in order, with compose's rules: mappings merged recursively, scalars
//! replaced, sequences appended (duplicates dropped); per service, `command`, `entrypoint` and
//! `healthcheck.test` are replaced, `volumes`, `configs` and `secrets` merged by target path,
//! and the list forms of `environment`, `labels`, `build.args`, `depends_on` and `networks`
//! are first turned into mappings so they merge by key. The `!reset` and `!override` tags are honoured.

use serde_yaml::{Mapping, Value};

use super::convert::FileKind;

fn s(key: &str) -> Value {
    Value::String(key.to_string())
}

fn tag_is(v: &Value, name: &str) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == name)
}

fn untag(v: Value) -> Value {
    match v {
        Value::Tagged(t) => t.value,
        other => other,
    }
}

/// Turn the list forms of a service's keyed sections into mappings, so files merge by key.
/// Shapes that are not recognised are left alone for the converter to report.
pub(crate) fn normalize_file(root: &mut Value) {
    let Some(services) = root.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        if let Some(m) = svc.as_mapping_mut() {
            normalize_service(m);
        }
    }
}

fn all_strings(seq: &[Value]) -> bool {
    seq.iter().all(Value::is_string)
}

/// `["K=V", "K"]` → `{K: V, K: <missing>}`.
fn list_to_map(seq: &[Value], missing: &Value) -> Mapping {
    let mut m = Mapping::new();
    for item in seq {
        if let Some(text) = item.as_str() {
            match text.split_once('=') {
                Some((k, v)) => m.insert(s(k), s(v)),
                None => m.insert(s(text), missing.clone()),
            };
        }
    }
    m
}

fn normalize_keyed_list(m: &mut Mapping, key: &str, missing: &Value) {
    if let Some(Value::Sequence(seq)) = m.get(key) {
        if all_strings(seq) {
            let map = list_to_map(seq, missing);
            m.insert(s(key), Value::Mapping(map));
        }
    }
}

fn normalize_service(m: &mut Mapping) {
    normalize_keyed_list(m, "environment", &Value::Null);
    normalize_keyed_list(m, "labels", &s(""));
    if let Some(Value::String(ctx)) = m.get("build") {
        let mut b = Mapping::new();
        b.insert(s("context"), s(ctx));
        m.insert(s("build"), Value::Mapping(b));
    }
    if let Some(b) = m.get_mut("build").and_then(Value::as_mapping_mut) {
        normalize_keyed_list(b, "args", &Value::Null);
        normalize_keyed_list(b, "labels", &s(""));
    }
    if let Some(Value::Sequence(seq)) = m.get("depends_on") {
        if all_strings(seq) {
            let mut map = Mapping::new();
            for item in seq {
                let mut d = Mapping::new();
                d.insert(s("condition"), s("service_started"));
                d.insert(s("required"), Value::Bool(true));
                map.insert(item.clone(), Value::Mapping(d));
            }
            m.insert(s("depends_on"), Value::Mapping(map));
        }
    }
    if let Some(Value::Sequence(seq)) = m.get("networks") {
        if all_strings(seq) {
            let map: Mapping = seq.iter().map(|n| (n.clone(), Value::Null)).collect();
            m.insert(s("networks"), Value::Mapping(map));
        }
    }
    if let Some(Value::Mapping(hosts)) = m.get("extra_hosts") {
        let list: Option<Vec<Value>> = hosts
            .iter()
            .map(|(k, v)| match (k.as_str(), scalar_text(v)) {
                (Some(host), Some(ip)) => Some(s(&format!("{host}:{ip}"))),
                _ => None,
            })
            .collect();
        if let Some(list) = list {
            m.insert(s("extra_hosts"), Value::Sequence(list));
        }
    }
    for key in ["tmpfs", "env_file", "dns", "dns_search"] {
        if let Some(Value::String(one)) = m.get(key) {
            let one = one.clone();
            m.insert(s(key), Value::Sequence(vec![s(&one)]));
        }
    }
    if let Some(Value::Sequence(seq)) = m.get_mut("expose") {
        for item in seq.iter_mut() {
            if let Value::Number(n) = item {
                *item = s(&n.to_string());
            }
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(t) => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Merge the file `over` into `base` (both whole documents).
pub(crate) fn merge_root(base: &mut Value, over: Value) {
    let (Value::Mapping(b), Value::Mapping(o)) = (&mut *base, over) else {
        return;
    };
    for (k, v) in o {
        if k.as_str() == Some("services") {
            match (b.get_mut(&k), v) {
                (Some(Value::Mapping(bs)), Value::Mapping(os)) => merge_services(bs, os),
                (_, v) => {
                    b.insert(k, v);
                }
            }
        } else {
            merge_entry(b, k, v, SeqMode::Append);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SeqMode {
    Append,
    Replace,
}

fn merge_services(base: &mut Mapping, over: Mapping) {
    for (name, svc) in over {
        if tag_is(&svc, "reset") {
            base.remove(&name);
            continue;
        }
        match (base.get_mut(&name), svc) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => merge_service(b, o),
            (_, svc) => {
                base.insert(name, untag(svc));
            }
        }
    }
}

fn merge_service(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        let key = k.as_str().unwrap_or_default().to_string();
        if tag_is(&v, "reset") {
            base.remove(&k);
            continue;
        }
        if tag_is(&v, "override") {
            base.insert(k, untag(v));
            continue;
        }
        match key.as_str() {
            "command" | "entrypoint" => {
                base.insert(k, v);
            }
            "healthcheck" => merge_entry(base, k, v, SeqMode::Replace),
            "volumes" => match (base.get_mut(&k), v) {
                (Some(Value::Sequence(b)), Value::Sequence(o)) => {
                    merge_by_target(b, o, volume_target)
                }
                (_, v) => {
                    base.insert(k, v);
                }
            },
            "configs" | "secrets" => {
                let kind = if key == "configs" {
                    FileKind::Config
                } else {
                    FileKind::Secret
                };
                match (base.get_mut(&k), v) {
                    (Some(Value::Sequence(b)), Value::Sequence(o)) => {
                        merge_by_target(b, o, |item| file_ref_target(kind, item))
                    }
                    (_, v) => {
                        base.insert(k, v);
                    }
                }
            }
            "networks" => match (base.get_mut(&k), v) {
                (Some(Value::Mapping(b)), Value::Mapping(o)) => {
                    for (nk, nv) in o {
                        if nv.is_null() && b.contains_key(&nk) {
                            continue;
                        }
                        merge_entry(b, nk, nv, SeqMode::Append);
                    }
                }
                (_, v) => {
                    base.insert(k, v);
                }
            },
            _ => merge_entry(base, k, v, SeqMode::Append),
        }
    }
}

fn merge_entry(base: &mut Mapping, k: Value, v: Value, mode: SeqMode) {
    if tag_is(&v, "reset") {
        base.remove(&k);
        return;
    }
    if tag_is(&v, "override") {
        base.insert(k, untag(v));
        return;
    }
    match base.get_mut(&k) {
        Some(existing) => merge_value(existing, v, mode),
        None => {
            base.insert(k, v);
        }
    }
}

fn merge_value(base: &mut Value, over: Value, mode: SeqMode) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                merge_entry(b, k, v, mode);
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if mode == SeqMode::Append => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// The container path a `volumes:` entry mounts at, in either syntax.
pub(crate) fn volume_target(v: &Value) -> Option<String> {
    match v {
        Value::String(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            match parts.len() {
                1 => Some(parts[0].to_string()),
                _ => Some(parts[1].to_string()),
            }
        }
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The container path a service's `configs:`/`secrets:` entry lands at, in either syntax.
fn file_ref_target(kind: FileKind, v: &Value) -> Option<String> {
    match v {
        Value::String(source) => Some(kind.target(source, None)),
        Value::Mapping(m) => {
            let source = m.get("source").and_then(Value::as_str)?;
            let target = m.get("target").and_then(Value::as_str);
            Some(kind.target(source, target))
        }
        _ => None,
    }
}

/// Entries of `over` replace those of `base` with the same target; others are appended.
fn merge_by_target(
    base: &mut Vec<Value>,
    over: Vec<Value>,
    target_of: impl Fn(&Value) -> Option<String>,
) {
    for item in over {
        let target = target_of(&item);
        let pos = target
            .as_ref()
            .and_then(|t| base.iter().position(|b| target_of(b).as_ref() == Some(t)));
        match pos {
            Some(i) => base[i] = item,
            None => base.push(item),
        }
    }
}

/// After merging: drop `!reset` entries and unwrap `!override` ones that no merge met.
pub(crate) fn strip_tags(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            let reset: Vec<Value> = m
                .iter()
                .filter(|(_, v)| tag_is(v, "reset"))
                .map(|(k, _)| k.clone())
                .collect();
            for k in reset {
                m.remove(&k);
            }
            for (_, val) in m.iter_mut() {
                if tag_is(val, "override") {
                    let inner = untag(std::mem::take(val));
                    *val = inner;
                }
                strip_tags(val);
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(strip_tags),
        _ => {}
    }
}
