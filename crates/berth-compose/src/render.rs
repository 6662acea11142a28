//! The resolved model back in the Compose Specification's own shape, for `config`: what it
//! prints is a compose file that loads to the same project (durations as `1m30s`, limits
//! under `deploy.resources`, mount options under `bind`/`volume`/`tmpfs`).

use serde_json::{json, Map, Value};

use crate::model::{FileObject, FileRef, FileSource, Mount, MountKind, Project, Service};

/// `ns` nanoseconds as a compose duration (`1m30s`, `500ms`).
pub fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ns;
    for (unit, size) in [
        ("h", 3_600_000_000_000i64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    let empty = match &v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        m.insert(k.into(), v);
    }
}

fn mount(m: &Mount) -> Value {
    let mut o = Map::new();
    let kind = match m.kind {
        MountKind::Volume => "volume",
        MountKind::Bind => "bind",
        MountKind::Tmpfs => "tmpfs",
    };
    o.insert("type".into(), json!(kind));
    if let Some(s) = &m.source {
        o.insert("source".into(), json!(s));
    }
    o.insert("target".into(), json!(m.target));
    if m.read_only {
        o.insert("read_only".into(), json!(true));
    }
    match m.kind {
        MountKind::Bind => {
            o.insert(
                "bind".into(),
                json!({ "create_host_path": m.create_host_path }),
            );
        }
        MountKind::Volume if m.nocopy => {
            o.insert("volume".into(), json!({ "nocopy": true }));
        }
        MountKind::Tmpfs => {
            if let Some(n) = m.tmpfs_size {
                o.insert("tmpfs".into(), json!({ "size": n }));
            }
        }
        MountKind::Volume => {}
    }
    Value::Object(o)
}

/// A service's `configs:`/`secrets:` entry in long form (the mode as an octal string).
fn file_ref(r: &FileRef) -> Value {
    let mut o = Map::new();
    o.insert("source".into(), json!(r.source));
    o.insert("target".into(), json!(r.target));
    put(&mut o, "uid", json!(r.uid));
    put(&mut o, "gid", json!(r.gid));
    if let Some(m) = r.mode {
        o.insert("mode".into(), json!(format!("0{m:o}")));
    }
    Value::Object(o)
}

/// A top-level config or secret: its name and source (an `environment:` one by its variable,
/// never its value).
fn file_object(f: &FileObject) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(f.name));
    match &f.source {
        FileSource::File(path) => o.insert("file".into(), json!(path)),
        FileSource::Environment { var, .. } => o.insert("environment".into(), json!(var)),
        FileSource::Content(c) => o.insert("content".into(), json!(c)),
        FileSource::External(e) => o.insert("external".into(), json!(e)),
    };
    put(&mut o, "labels", json!(f.labels));
    Value::Object(o)
}

fn service(s: &Service) -> Value {
    let mut o = Map::new();
    put(&mut o, "image", json!(s.image));
    if let Some(b) = &s.build {
        let mut bo = Map::new();
        bo.insert("context".into(), json!(b.context));
        bo.insert("dockerfile".into(), json!(b.dockerfile));
        put(&mut bo, "args", json!(b.args));
        put(&mut bo, "target", json!(b.target));
        put(&mut bo, "labels", json!(b.labels));
        put(&mut bo, "network", json!(b.network));
        put(&mut bo, "tags", json!(b.tags));
        o.insert("build".into(), Value::Object(bo));
    }
    // `command: []` (clear the image's) means something: keep it even when empty.
    if let Some(c) = &s.command {
        o.insert("command".into(), json!(c));
    }
    if let Some(e) = &s.entrypoint {
        o.insert("entrypoint".into(), json!(e));
    }
    put(&mut o, "environment", json!(s.environment));
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| {
            let mut po = Map::new();
            po.insert("target".into(), json!(p.target));
            if let Some(n) = p.published {
                po.insert("published".into(), json!(n.to_string()));
            }
            if !p.host_ip.is_empty() {
                po.insert("host_ip".into(), json!(p.host_ip));
            }
            po.insert("protocol".into(), json!(p.protocol));
            Value::Object(po)
        })
        .collect();
    put(&mut o, "ports", Value::Array(ports));
    put(&mut o, "expose", json!(s.expose));
    put(
        &mut o,
        "volumes",
        Value::Array(s.volumes.iter().map(mount).collect()),
    );
    put(&mut o, "tmpfs", json!(s.tmpfs));
    put(
        &mut o,
        "configs",
        Value::Array(s.configs.iter().map(file_ref).collect()),
    );
    put(
        &mut o,
        "secrets",
        Value::Array(s.secrets.iter().map(file_ref).collect()),
    );
    let nets: Map<String, Value> = s
        .networks
        .iter()
        .map(|(k, n)| {
            let mut no = Map::new();
            put(&mut no, "aliases", json!(n.aliases));
            put(&mut no, "ipv4_address", json!(n.ipv4_address));
            (
                k.clone(),
                if no.is_empty() {
                    Value::Null
                } else {
                    Value::Object(no)
                },
            )
        })
        .collect();
    if !nets.is_empty() {
        o.insert("networks".into(), Value::Object(nets));
    }
    put(&mut o, "network_mode", json!(s.network_mode));
    put(&mut o, "depends_on", json!(s.depends_on));
    if let Some(h) = &s.healthcheck {
        let mut ho = Map::new();
        if h.test.first().map(String::as_str) == Some("NONE") {
            ho.insert("disable".into(), json!(true));
        } else {
            ho.insert("test".into(), json!(h.test));
        }
        for (k, v) in [
            ("interval", h.interval_ns),
            ("timeout", h.timeout_ns),
            ("start_period", h.start_period_ns),
            ("start_interval", h.start_interval_ns),
        ] {
            if let Some(ns) = v {
                ho.insert(k.into(), json!(duration(ns)));
            }
        }
        put(&mut ho, "retries", json!(h.retries));
        o.insert("healthcheck".into(), Value::Object(ho));
    }
    put(&mut o, "restart", json!(s.restart));
    put(&mut o, "labels", json!(s.labels));
    put(&mut o, "container_name", json!(s.container_name));
    put(&mut o, "hostname", json!(s.hostname));
    put(&mut o, "working_dir", json!(s.working_dir));
    put(&mut o, "user", json!(s.user));
    put(&mut o, "profiles", json!(s.profiles));
    let mut deploy = Map::new();
    deploy.insert("replicas".into(), json!(s.replicas));
    if !s.limits.is_empty() {
        let mut l = Map::new();
        put(&mut l, "cpus", json!(s.limits.cpus.map(|c| c.to_string())));
        put(
            &mut l,
            "memory",
            json!(s.limits.memory.map(|m| m.to_string())),
        );
        put(&mut l, "pids", json!(s.limits.pids));
        deploy.insert("resources".into(), json!({ "limits": l }));
    }
    if s.replicas != 1 || !s.limits.is_empty() {
        o.insert("deploy".into(), Value::Object(deploy));
    }
    for (k, v) in [
        ("tty", s.tty),
        ("stdin_open", s.stdin_open),
        ("privileged", s.privileged),
        ("read_only", s.read_only),
    ] {
        if v {
            o.insert(k.into(), json!(true));
        }
    }
    put(&mut o, "init", json!(s.init));
    put(&mut o, "cap_add", json!(s.cap_add));
    put(&mut o, "cap_drop", json!(s.cap_drop));
    put(&mut o, "extra_hosts", json!(s.extra_hosts));
    put(&mut o, "stop_signal", json!(s.stop_signal));
    put(
        &mut o,
        "stop_grace_period",
        json!(s.stop_grace_period.map(|n| format!("{n}s"))),
    );
    put(&mut o, "pull_policy", json!(s.pull_policy));
    Value::Object(o)
}

/// The project as a compose file (`name`, `services`, `networks`, `volumes`, `configs`,
/// `secrets`).
pub fn render(p: &Project) -> Value {
    let mut top = Map::new();
    top.insert("name".into(), json!(p.name));
    let services: Map<String, Value> = p
        .services
        .iter()
        .map(|(k, s)| (k.clone(), service(s)))
        .collect();
    top.insert("services".into(), Value::Object(services));
    let nets: Map<String, Value> = p
        .networks
        .iter()
        .map(|(k, n)| {
            let mut o = Map::new();
            o.insert("name".into(), json!(n.name));
            if n.external {
                o.insert("external".into(), json!(true));
            }
            put(&mut o, "driver", json!(n.driver));
            put(&mut o, "driver_opts", json!(n.driver_opts));
            if !n.subnets.is_empty() {
                o.insert("ipam".into(), json!({ "config": n.subnets }));
            }
            if n.internal {
                o.insert("internal".into(), json!(true));
            }
            put(&mut o, "labels", json!(n.labels));
            (k.clone(), Value::Object(o))
        })
        .collect();
    put(&mut top, "networks", Value::Object(nets));
    let vols: Map<String, Value> = p
        .volumes
        .iter()
        .map(|(k, v)| {
            let mut o = Map::new();
            o.insert("name".into(), json!(v.name));
            if v.external {
                o.insert("external".into(), json!(true));
            }
            put(&mut o, "driver", json!(v.driver));
            put(&mut o, "driver_opts", json!(v.driver_opts));
            put(&mut o, "labels", json!(v.labels));
            (k.clone(), Value::Object(o))
        })
        .collect();
    put(&mut top, "volumes", Value::Object(vols));
    for (key, objs) in [("configs", &p.configs), ("secrets", &p.secrets)] {
        let m: Map<String, Value> = objs
            .iter()
            .map(|(k, f)| (k.clone(), file_object(f)))
            .collect();
        put(&mut top, key, Value::Object(m));
    }
    Value::Object(top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, LoadOptions};
    use std::collections::BTreeMap;

    #[test]
    fn durations() {
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(500_000_000), "500ms");
        assert_eq!(duration(3_600_000_000_000 + 1_000_000_000), "1h1s");
        assert_eq!(duration(0), "0s");
    }

    /// What `config` prints loads back to the same project.
    #[test]
    fn rendered_config_loads_to_the_same_project() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ctx")).unwrap();
        std::fs::write(dir.path().join("ctx/Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            r#"
name: shop
services:
  web:
    build: {context: ./ctx, args: {V: "1"}, target: run}
    image: shop/web:1
    command: httpd -f -p "8080"
    ports: ["127.0.0.1:8080:80", "53:53/udp"]
    expose: ["9000"]
    environment: {A: "1", B: ""}
    volumes: ["./site:/www:ro", "data:/data", {type: tmpfs, target: /tmp, tmpfs: {size: 1048576}}]
    networks: {back: {aliases: [www]}}
    depends_on: {db: {condition: service_healthy, restart: true}}
    deploy: {replicas: 2, resources: {limits: {cpus: "0.5", memory: 64M, pids: 100}}}
    healthcheck: {test: wget -qO- localhost, interval: 1m30s, timeout: 500ms, retries: 3}
    restart: on-failure:3
    labels: {tier: front}
    user: "1000:1000"
    working_dir: /www
    init: true
    cap_drop: [NET_RAW]
    extra_hosts: ["h:127.0.0.1"]
    stop_grace_period: 20s
    configs: [app_conf, {source: banner, target: /etc/banner, mode: 0440}]
    secrets: [db_pass, {source: api_key, target: api.key, uid: "1000", gid: 1000, mode: 0o400}]
  db:
    image: busybox
    networks: [back]
    healthcheck: {disable: true}
networks:
  back: {ipam: {config: [{subnet: 10.99.0.0/24}]}}
volumes:
  data: {}
configs:
  app_conf: {file: ./app.conf, labels: {k: v}}
  banner: {content: "hello ${WHO}"}
  shared: {external: true, name: shared-conf}
secrets:
  db_pass: {environment: DB_PASS}
  api_key: {file: ./api.key, name: custom-api}
  ext: {external: true}
"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("app.conf"), "a=1\n").unwrap();
        std::fs::write(dir.path().join("api.key"), "k\n").unwrap();
        let environment: BTreeMap<String, String> = [("DB_PASS", "s3cr3t-value"), ("WHO", "world")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = LoadOptions {
            cwd: dir.path().to_path_buf(),
            environment: environment.clone(),
            ..Default::default()
        };
        let first = load(&opts).unwrap();
        // What the file says is all there, so the comparison below covers it.
        assert_eq!(first.configs.len(), 3);
        assert_eq!(first.secrets.len(), 3);
        assert_eq!(first.services["web"].configs[1].mode, Some(0o440));
        assert_eq!(
            first.services["web"].secrets[1].target,
            "/run/secrets/api.key"
        );
        let text = serde_yaml::to_string(&render(&first)).unwrap();
        let again_dir = tempfile::tempdir().unwrap();
        std::fs::write(again_dir.path().join("compose.yaml"), &text).unwrap();
        // The secret's value is not in the output: it is read from the variable again.
        assert!(!text.contains("s3cr3t-value"), "{text}");
        let mut again = load(&LoadOptions {
            cwd: again_dir.path().to_path_buf(),
            environment,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        again.working_dir = first.working_dir.clone();
        again.files = first.files.clone();
        again.warnings = first.warnings.clone();
        assert_eq!(again, first, "{text}");
    }
}
