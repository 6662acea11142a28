//! generate(): the mapping, field by field, on projects built directly.

use super::*;
use crate::yaml;
use berth_compose::model::{
    Build, Condition, Dependency, EnvFile, FileObject, FileRef, FileSource, Healthcheck, Limits,
    Mount, Port, Service as CService, ServiceNetwork, Volume as CVolume,
};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::path::PathBuf;

fn svc(image: &str) -> CService {
    CService {
        image: Some(image.to_string()),
        replicas: 1,
        networks: BTreeMap::from([("default".to_string(), ServiceNetwork::default())]),
        ..Default::default()
    }
}

fn project(name: &str, services: Vec<(&str, CService)>) -> Project {
    Project {
        name: name.to_string(),
        working_dir: PathBuf::from("/nonexistent"),
        files: vec![],
        services: services
            .into_iter()
            .map(|(n, mut s)| {
                s.name = n.to_string();
                (n.to_string(), s)
            })
            .collect(),
        disabled: BTreeMap::new(),
        networks: BTreeMap::from([(
            "default".to_string(),
            berth_compose::model::Network {
                name: format!("{name}_default"),
                ..Default::default()
            },
        )]),
        volumes: BTreeMap::new(),
        configs: BTreeMap::new(),
        secrets: BTreeMap::new(),
        warnings: vec![],
    }
}

fn gen(p: &Project) -> Manifests {
    generate(p, &GenerateOptions::default()).expect("generate")
}

fn deployment<'a>(m: &'a Manifests, name: &str) -> &'a Deployment {
    match m.get("Deployment", name) {
        Some(Object::Deployment(d)) => d,
        _ => panic!("no Deployment {name}: {:?}", names_of(m)),
    }
}

fn pod<'a>(m: &'a Manifests, name: &str) -> &'a PodSpec {
    let d = deployment(m, name);
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
}

fn container<'a>(m: &'a Manifests, name: &str) -> &'a Container {
    &pod(m, name).containers[0]
}

fn kservice<'a>(m: &'a Manifests, name: &str) -> &'a Service {
    match m.get("Service", name) {
        Some(Object::Service(s)) => s,
        _ => panic!("no Service {name}: {:?}", names_of(m)),
    }
}

fn config_map<'a>(m: &'a Manifests, name: &str) -> &'a ConfigMap {
    match m.get("ConfigMap", name) {
        Some(Object::ConfigMap(c)) => c,
        _ => panic!("no ConfigMap {name}: {:?}", names_of(m)),
    }
}

fn names_of(m: &Manifests) -> Vec<String> {
    m.objects
        .iter()
        .map(|o| format!("{}/{}", o.kind(), o.name()))
        .collect()
}

/// The warning at `key`, whose message contains `text`.
fn warning<'a>(m: &'a Manifests, key: &str, text: &str) -> &'a Warning {
    m.warnings
        .iter()
        .find(|w| w.key == key && w.message.contains(text))
        .unwrap_or_else(|| panic!("no warning at {key} containing {text:?}: {:#?}", m.warnings))
}

fn has_warning(m: &Manifests, key: &str) -> bool {
    m.warnings.iter().any(|w| w.key == key)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn deployment_basics_labels_and_selector() {
    let mut web = svc("nginx:1.27");
    web.entrypoint = Some(s(&["/docker-entrypoint.sh"]));
    web.command = Some(s(&["nginx", "-g", "daemon off;"]));
    web.working_dir = Some("/srv".into());
    web.replicas = 2;
    web.expose = vec!["80".into()];
    web.tty = true;
    web.stdin_open = true;
    web.stop_grace_period = Some(45);
    web.hostname = Some("frontend".into());
    web.labels = BTreeMap::from([("com.example.tier".to_string(), "front".to_string())]);
    let m = gen(&project("shop", vec![("web", web)]));

    let d = deployment(&m, "web");
    let labels = d.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels[crate::labels::PART_OF], "shop");
    assert_eq!(labels[crate::labels::NAME], "web");
    assert_eq!(labels[crate::labels::MANAGED_BY], "berth");
    assert_eq!(labels[crate::labels::COMPOSE_PROJECT], "shop");
    assert_eq!(labels[crate::labels::COMPOSE_SERVICE], "web");
    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let sel = spec.selector.match_labels.as_ref().expect("selector");
    assert_eq!(sel.len(), 2);
    assert_eq!(sel[crate::labels::PART_OF], "shop");
    assert_eq!(sel[crate::labels::NAME], "web");
    let tmeta = spec.template.metadata.as_ref().expect("template metadata");
    assert_eq!(
        tmeta.labels.as_ref(),
        Some(labels),
        "pods carry the same labels"
    );
    assert_eq!(
        tmeta
            .annotations
            .as_ref()
            .map(|a| a["com.example.tier"].as_str()),
        Some("front")
    );
    assert!(spec.strategy.is_none(), "no claim, default rolling update");

    let c = container(&m, "web");
    assert_eq!(c.name, "web");
    assert_eq!(c.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(c.command, Some(s(&["/docker-entrypoint.sh"])));
    assert_eq!(c.args, Some(s(&["nginx", "-g", "daemon off;"])));
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    assert_eq!((c.tty, c.stdin), (Some(true), Some(true)));
    let p = pod(&m, "web");
    assert_eq!(p.termination_grace_period_seconds, Some(45));
    assert_eq!(p.hostname.as_deref(), Some("frontend"));
    assert_eq!(p.enable_service_links, Some(false));
    assert!(m.warnings.is_empty(), "{:#?}", m.warnings);
}

#[test]
fn env_file_variables_go_through_a_config_map() {
    let mut app = svc("app:1");
    app.expose = vec!["8000".into()];
    app.env_files = vec![
        EnvFile {
            path: PathBuf::from("/p/base.env"),
            vars: vec![
                ("MODE".into(), Some("dev".into())),
                ("TTL".into(), Some("300".into())),
                ("EMPTY_IN_FILE".into(), None),
            ],
        },
        EnvFile {
            path: PathBuf::from("/p/prod.env"),
            vars: vec![("MODE".into(), Some("prod".into()))],
        },
    ];
    // As the loader merges: files in order, then `environment:` over them.
    app.environment = BTreeMap::from([
        ("MODE".to_string(), Some("prod".to_string())),
        ("TTL".to_string(), Some("600".to_string())),
        ("EMPTY_IN_FILE".to_string(), None),
        ("DEBUG".to_string(), Some("1".to_string())),
        ("UNSET".to_string(), None),
    ]);
    let m = gen(&project("p", vec![("app", app)]));

    let cm = config_map(&m, "app-env");
    assert_eq!(
        cm.data,
        Some(BTreeMap::from([("MODE".to_string(), "prod".to_string())])),
        "only the values the files set and environment: left alone"
    );
    assert_eq!(
        cm.metadata
            .labels
            .as_ref()
            .map(|l| l[crate::labels::NAME].as_str()),
        Some("app")
    );
    let c = container(&m, "app");
    let from = c.env_from.as_ref().expect("envFrom");
    assert_eq!(from.len(), 1);
    assert_eq!(
        from[0].config_map_ref.as_ref().map(|r| r.name.as_str()),
        Some("app-env")
    );
    let env: Vec<(&str, Option<&str>)> = c
        .env
        .as_ref()
        .expect("env")
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(env, vec![("DEBUG", Some("1")), ("TTL", Some("600"))]);
    warning(
        &m,
        "services.app.env_file",
        "EMPTY_IN_FILE is named in /p/base.env",
    );
    warning(&m, "services.app.environment.UNSET", "has no value");
}

#[test]
fn no_env_file_means_no_config_map() {
    let mut app = svc("app:1");
    app.expose = vec!["80".into()];
    app.environment = BTreeMap::from([("A".to_string(), Some("1".to_string()))]);
    let m = gen(&project("p", vec![("app", app)]));
    assert!(m.get("ConfigMap", "app-env").is_none());
    assert!(container(&m, "app").env_from.is_none());
}

#[test]
fn healthchecks_become_probes() {
    let mut a = svc("a:1");
    a.expose = vec!["80".into()];
    a.healthcheck = Some(Healthcheck {
        test: s(&["CMD", "curl", "-f", "http://localhost/"]),
        interval_ns: Some(10_000_000_000),
        timeout_ns: Some(2_500_000_000),
        retries: Some(4),
        start_period_ns: Some(30_000_000_000),
        start_interval_ns: Some(2_000_000_000),
    });
    let mut b = svc("b:1");
    b.expose = vec!["80".into()];
    b.healthcheck = Some(Healthcheck {
        test: s(&["CMD-SHELL", "pg_isready -U app"]),
        ..Default::default()
    });
    let mut c = svc("c:1");
    c.expose = vec!["80".into()];
    c.healthcheck = Some(Healthcheck {
        test: s(&["NONE"]),
        ..Default::default()
    });
    let mut d = svc("d:1");
    d.expose = vec!["80".into()];
    d.healthcheck = Some(Healthcheck {
        interval_ns: Some(5_000_000_000),
        ..Default::default()
    });
    let m = gen(&project("p", vec![("a", a), ("b", b), ("c", c), ("d", d)]));

    let ca = container(&m, "a");
    let r = ca.readiness_probe.as_ref().expect("readiness");
    assert_eq!(ca.liveness_probe.as_ref(), Some(r));
    assert_eq!(
        r.exec.as_ref().and_then(|e| e.command.clone()),
        Some(s(&["curl", "-f", "http://localhost/"]))
    );
    assert_eq!(r.period_seconds, Some(10));
    assert_eq!(r.timeout_seconds, Some(3), "2.5s rounds up");
    assert_eq!(r.failure_threshold, Some(4));
    let st = ca
        .startup_probe
        .as_ref()
        .expect("startup probe for start_period");
    assert_eq!(st.period_seconds, Some(2));
    assert_eq!(
        st.failure_threshold,
        Some(15 + 4),
        "30s / 2s, then the retries"
    );
    assert_eq!(st.exec, r.exec);

    let cb = container(&m, "b");
    let r = cb.readiness_probe.as_ref().expect("readiness");
    assert_eq!(
        r.exec.as_ref().and_then(|e| e.command.clone()),
        Some(s(&["/bin/sh", "-c", "pg_isready -U app"]))
    );
    // compose's defaults.
    assert_eq!(
        (r.period_seconds, r.timeout_seconds, r.failure_threshold),
        (Some(30), Some(30), Some(3))
    );
    assert!(cb.startup_probe.is_none());

    let cc = container(&m, "c");
    assert!(cc.readiness_probe.is_none() && cc.liveness_probe.is_none());
    assert!(!has_warning(&m, "services.c.healthcheck.test"));

    assert!(container(&m, "d").readiness_probe.is_none());
    warning(&m, "services.d.healthcheck.test", "HEALTHCHECK");
}

#[test]
fn named_volumes_become_claims() {
    let mut db = svc("postgres:16");
    db.expose = vec!["5432".into()];
    db.volumes = vec![
        Mount {
            kind: MountKind::Volume,
            source: Some("data".into()),
            target: "/var/lib/postgresql/data".into(),
            read_only: false,
            create_host_path: false,
            tmpfs_size: None,
            nocopy: false,
        },
        Mount {
            kind: MountKind::Volume,
            source: Some("shared".into()),
            target: "/shared".into(),
            read_only: true,
            create_host_path: false,
            tmpfs_size: None,
            nocopy: false,
        },
    ];
    let mut app = svc("app:1");
    app.replicas = 2;
    app.expose = vec!["80".into()];
    app.volumes = vec![Mount {
        kind: MountKind::Volume,
        source: Some("shared".into()),
        target: "/shared".into(),
        read_only: false,
        create_host_path: false,
        tmpfs_size: None,
        nocopy: false,
    }];
    let mut p = project("shop", vec![("db", db), ("app", app)]);
    p.volumes = BTreeMap::from([
        (
            "data".to_string(),
            CVolume {
                name: "shop_data".into(),
                ..Default::default()
            },
        ),
        (
            "shared".to_string(),
            CVolume {
                name: "shop_shared".into(),
                ..Default::default()
            },
        ),
        (
            "unused".to_string(),
            CVolume {
                name: "shop_unused".into(),
                ..Default::default()
            },
        ),
    ]);
    let opts = GenerateOptions {
        storage_class: Some("fast".into()),
        volume_size: Some("5Gi".into()),
        ..Default::default()
    };
    let m = generate(&p, &opts).expect("generate");

    let pvc = match m.get("PersistentVolumeClaim", "shop-data") {
        Some(Object::PersistentVolumeClaim(c)) => c,
        _ => panic!("no claim shop-data: {:?}", names_of(&m)),
    };
    let spec = pvc.spec.as_ref().expect("spec");
    assert_eq!(spec.access_modes, Some(s(&["ReadWriteOnce"])));
    assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        spec.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .map(|r| r["storage"].0.as_str()),
        Some("5Gi")
    );
    assert!(m.get("PersistentVolumeClaim", "shop-shared").is_some());
    assert!(m.get("PersistentVolumeClaim", "shop-unused").is_none());
    warning(&m, "volumes.unused", "not mounted");
    warning(&m, "volumes.shared", "ReadWriteOnce");
    assert!(!has_warning(&m, "volumes.data"));

    let dp = pod(&m, "db");
    let vols = dp.volumes.as_ref().expect("volumes");
    let claims: Vec<(&str, &str)> = vols
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.as_str())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        claims,
        vec![("data", "shop-data"), ("shared", "shop-shared")]
    );
    let mounts = dp.containers[0].volume_mounts.as_ref().expect("mounts");
    assert_eq!(mounts[0].mount_path, "/var/lib/postgresql/data");
    assert_eq!(mounts[0].name, "data");
    assert_eq!(mounts[1].read_only, Some(true));
    assert_eq!(
        deployment(&m, "db")
            .spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.type_.as_deref()),
        Some("Recreate")
    );
}

#[test]
fn external_anonymous_tmpfs_and_bind_mounts() {
    let mount = |kind, source: Option<&str>, target: &str, size: Option<i64>| Mount {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: false,
        create_host_path: true,
        tmpfs_size: size,
        nocopy: false,
    };
    let mut app = svc("app:1");
    app.expose = vec!["80".into()];
    app.volumes = vec![
        mount(MountKind::Volume, Some("ext"), "/ext", None),
        mount(MountKind::Volume, None, "/cache", None),
        mount(MountKind::Tmpfs, None, "/scratch", Some(32 << 20)),
        mount(MountKind::Bind, Some("/home/me/src"), "/src", None),
    ];
    app.tmpfs = vec!["/run:size=8m".into(), "/tmp".into()];
    let mut p = project("p", vec![("app", app)]);
    p.volumes = BTreeMap::from([(
        "ext".to_string(),
        CVolume {
            name: "team-data".into(),
            external: true,
            ..Default::default()
        },
    )]);
    let m = gen(&p);

    assert!(
        !m.objects
            .iter()
            .any(|o| o.kind() == "PersistentVolumeClaim"),
        "an external volume is referenced, not made"
    );
    warning(&m, "volumes.ext", "\"team-data\" must already exist");
    warning(
        &m,
        "services.app.volumes[3]",
        "/home/me/src at /src is not mounted",
    );

    let pd = pod(&m, "app");
    let vols = pd.volumes.as_ref().expect("volumes");
    assert_eq!(vols.len(), 5, "{vols:#?}");
    assert_eq!(
        vols[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("team-data")
    );
    assert_eq!(
        vols[1].empty_dir.as_ref().and_then(|e| e.medium.clone()),
        None
    );
    let mem = |i: usize| {
        let e = vols[i].empty_dir.as_ref().expect("emptyDir");
        (
            e.medium.as_deref(),
            e.size_limit.as_ref().map(|q| q.0.as_str()),
        )
    };
    assert_eq!(mem(2), (Some("Memory"), Some("32Mi")));
    assert_eq!(mem(3), (Some("Memory"), Some("8Mi")));
    assert_eq!(mem(4), (Some("Memory"), None));
    let paths: Vec<&str> = pd.containers[0]
        .volume_mounts
        .as_ref()
        .expect("mounts")
        .iter()
        .map(|v| v.mount_path.as_str())
        .collect();
    assert_eq!(paths, vec!["/ext", "/cache", "/scratch", "/run", "/tmp"]);
    let names: std::collections::BTreeSet<&str> = vols.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names.len(), vols.len(), "pod volume names are unique");
}

#[test]
fn undeclared_volume_is_an_error() {
    let mut app = svc("app:1");
    app.volumes = vec![Mount {
        kind: MountKind::Volume,
        source: Some("nope".into()),
        target: "/x".into(),
        read_only: false,
        create_host_path: false,
        tmpfs_size: None,
        nocopy: false,
    }];
    let e = generate(
        &project("p", vec![("app", app)]),
        &GenerateOptions::default(),
    )
    .expect_err("undeclared volume");
    assert!(
        e.0.contains("services.app.volumes[0]") && e.0.contains("\"nope\""),
        "{e}"
    );
}

fn port(target: u16, published: Option<u16>, proto: &str) -> Port {
    Port {
        target,
        published,
        host_ip: String::new(),
        protocol: proto.to_string(),
    }
}

#[test]
fn ports_and_expose_make_a_cluster_ip_service() {
    let mut web = svc("nginx");
    web.ports = vec![
        port(80, Some(8080), "tcp"),
        port(53, Some(5353), "udp"),
        port(9000, None, "tcp"),
    ];
    web.expose = vec!["9100-9101".into(), "80".into()];
    let m = gen(&project("p", vec![("web", web)]));

    let spec = kservice(&m, "web").spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.selector.as_ref().map(|s| s.len()), Some(2));
    type Row = (String, i32, Option<IntOrString>, String, Option<i32>);
    let ports: Vec<Row> = spec
        .ports
        .as_ref()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                p.target_port.clone(),
                p.protocol.clone().unwrap_or_default(),
                p.node_port,
            )
        })
        .collect();
    let t = IntOrString::Int;
    assert_eq!(
        ports,
        vec![
            ("tcp-8080".into(), 8080, Some(t(80)), "TCP".into(), None),
            ("udp-5353".into(), 5353, Some(t(53)), "UDP".into(), None),
            ("tcp-9000".into(), 9000, Some(t(9000)), "TCP".into(), None),
            ("tcp-9100".into(), 9100, Some(t(9100)), "TCP".into(), None),
            ("tcp-9101".into(), 9101, Some(t(9101)), "TCP".into(), None),
            ("tcp-80".into(), 80, Some(t(80)), "TCP".into(), None),
        ]
    );
    let cports: Vec<(i32, &str)> = container(&m, "web")
        .ports
        .as_ref()
        .expect("container ports")
        .iter()
        .map(|p| (p.container_port, p.protocol.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        cports,
        vec![
            (80, "TCP"),
            (53, "UDP"),
            (9000, "TCP"),
            (9100, "TCP"),
            (9101, "TCP")
        ]
    );
}

#[test]
fn node_port_and_load_balancer_apply_to_published_ports() {
    let mut web = svc("nginx");
    web.ports = vec![port(80, Some(30080), "tcp"), port(443, Some(8443), "tcp")];
    let mut db = svc("postgres");
    db.expose = vec!["5432".into()];
    let p = project("p", vec![("web", web), ("db", db)]);

    let m = generate(
        &p,
        &GenerateOptions {
            service_type: ServiceType::NodePort,
            ..Default::default()
        },
    )
    .expect("generate");
    let spec = kservice(&m, "web").spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    let ports = spec.ports.as_ref().expect("ports");
    assert_eq!(ports[0].node_port, Some(30080));
    assert_eq!(ports[1].node_port, None);
    warning(&m, "services.web.ports[1]", "outside the NodePort range");
    let db_spec = kservice(&m, "db").spec.as_ref().expect("spec");
    assert_eq!(db_spec.type_.as_deref(), Some("ClusterIP"), "expose only");

    let m = generate(
        &p,
        &GenerateOptions {
            service_type: ServiceType::LoadBalancer,
            ..Default::default()
        },
    )
    .expect("generate");
    let spec = kservice(&m, "web").spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.ports.as_ref().map(|p| p[1].port), Some(8443));
    assert!(!has_warning(&m, "services.web.ports[1]"));
}

#[test]
fn a_service_without_ports_gets_no_service_and_a_warning() {
    let m = gen(&project("p", vec![("worker", svc("w:1"))]));
    assert!(m.get("Service", "worker").is_none());
    assert!(m.get("Deployment", "worker").is_some());
    warning(&m, "services.worker", "add `expose:`");
}

#[test]
fn host_ip_is_reported() {
    let mut web = svc("nginx");
    web.ports = vec![Port {
        host_ip: "127.0.0.1".into(),
        ..port(80, Some(8080), "tcp")
    }];
    let m = gen(&project("p", vec![("web", web)]));
    warning(&m, "services.web.ports[0]", "host_ip 127.0.0.1");
}

fn file_ref(source: &str, target: &str, mode: Option<u32>) -> FileRef {
    FileRef {
        source: source.into(),
        target: target.into(),
        uid: None,
        gid: None,
        mode,
    }
}

#[test]
fn configs_and_secrets_become_objects_and_mounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, "server {}\n").expect("write");
    let blob = dir.path().join("logo.png");
    std::fs::write(&blob, [0x89u8, b'P', b'N', b'G', 0xff]).expect("write");

    let mut web = svc("nginx");
    web.expose = vec!["80".into()];
    web.configs = vec![
        file_ref("nginx_conf", "/etc/nginx/nginx.conf", Some(0o440)),
        file_ref("logo", "/srv/logo.png", None),
        file_ref("ext_conf", "/etc/ext.conf", None),
    ];
    web.secrets = vec![
        FileRef {
            uid: Some("101".into()),
            ..file_ref("db_pass", "/run/secrets/db_pass", Some(0o400))
        },
        file_ref("token", "/run/secrets/token", None),
    ];
    let mut p = project("shop", vec![("web", web)]);
    let fo = |name: &str, source| FileObject {
        name: name.into(),
        source,
        labels: BTreeMap::new(),
    };
    p.configs = BTreeMap::from([
        (
            "nginx_conf".into(),
            fo("shop_nginx_conf", FileSource::File(conf)),
        ),
        ("logo".into(), fo("shop_logo", FileSource::File(blob))),
        (
            "ext_conf".into(),
            fo("ext-conf", FileSource::External(true)),
        ),
        (
            "unused".into(),
            fo("shop_unused", FileSource::Content("x".into())),
        ),
    ]);
    p.secrets = BTreeMap::from([
        (
            "db_pass".into(),
            fo(
                "shop_db_pass",
                FileSource::Environment {
                    var: "DB_PASS".into(),
                    value: Some("s3cret".into()),
                },
            ),
        ),
        (
            "token".into(),
            fo("shop_token", FileSource::Content("tok".into())),
        ),
    ]);
    let m = gen(&p);

    let cm = config_map(&m, "shop-nginx-conf");
    assert_eq!(
        cm.data,
        Some(BTreeMap::from([(
            "nginx.conf".to_string(),
            "server {}\n".to_string()
        )]))
    );
    let logo = config_map(&m, "shop-logo");
    assert!(logo.data.is_none());
    assert_eq!(
        logo.binary_data.as_ref().map(|b| b["logo.png"].0.clone()),
        Some(vec![0x89u8, b'P', b'N', b'G', 0xff])
    );
    assert!(m.get("ConfigMap", "ext-conf").is_none());
    assert!(m.get("ConfigMap", "shop-unused").is_none());
    warning(&m, "configs.ext_conf", "must already exist");
    warning(&m, "configs.unused", "not used by any service");
    let secret = match m.get("Secret", "shop-db-pass") {
        Some(Object::Secret(s)) => s,
        _ => panic!("no secret: {:?}", names_of(&m)),
    };
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        secret.data.as_ref().map(|d| d["db_pass"].0.clone()),
        Some(b"s3cret".to_vec())
    );
    warning(&m, "services.web.secrets[0].uid", "owned by root");

    let pd = pod(&m, "web");
    let vols = pd.volumes.as_ref().expect("volumes");
    let v0 = vols[0].config_map.as_ref().expect("configMap volume");
    assert_eq!(v0.name, "shop-nginx-conf");
    assert_eq!(v0.default_mode, Some(0o440));
    assert_eq!(
        v0.items
            .as_ref()
            .map(|i| (i[0].key.as_str(), i[0].path.as_str())),
        Some(("nginx.conf", "nginx.conf"))
    );
    assert_eq!(
        vols[1].config_map.as_ref().and_then(|c| c.default_mode),
        Some(0o444),
        "compose's default mode"
    );
    assert_eq!(
        vols[2].config_map.as_ref().map(|c| c.name.as_str()),
        Some("ext-conf")
    );
    let sv = vols[3].secret.as_ref().expect("secret volume");
    assert_eq!(sv.secret_name.as_deref(), Some("shop-db-pass"));
    assert_eq!(sv.default_mode, Some(0o400));
    let mounts = pd.containers[0].volume_mounts.as_ref().expect("mounts");
    let m0 = &mounts[0];
    assert_eq!(m0.mount_path, "/etc/nginx/nginx.conf");
    assert_eq!(m0.sub_path.as_deref(), Some("nginx.conf"));
    assert_eq!(m0.read_only, Some(true));
    assert_eq!(m0.name, vols[0].name);
    assert_eq!(mounts[4].mount_path, "/run/secrets/token");
    assert_eq!(mounts[4].sub_path.as_deref(), Some("token"));
}

#[test]
fn config_errors_name_the_key() {
    let mut web = svc("nginx");
    web.configs = vec![file_ref("missing", "/x", None)];
    let e = generate(
        &project("p", vec![("web", web)]),
        &GenerateOptions::default(),
    )
    .expect_err("undeclared config");
    assert!(
        e.0.contains("services.web.configs[0]") && e.0.contains("\"missing\""),
        "{e}"
    );

    let mut web = svc("nginx");
    web.configs = vec![file_ref("conf", "/etc/app.conf", None)];
    let mut p = project("p", vec![("web", web)]);
    p.configs = BTreeMap::from([(
        "conf".to_string(),
        FileObject {
            name: "p_conf".into(),
            source: FileSource::File(PathBuf::from("/nonexistent/app.conf")),
            labels: BTreeMap::new(),
        },
    )]);
    let e = generate(&p, &GenerateOptions::default()).expect_err("unreadable file");
    assert!(
        e.0.contains("configs.conf.file") && e.0.contains("/nonexistent/app.conf"),
        "{e}"
    );
}

#[test]
fn images_override_then_image_then_build_default() {
    let mut a = svc("example/a:1");
    a.expose = vec!["80".into()];
    let mut b = CService {
        build: Some(Build {
            context: PathBuf::from("/src/b"),
            dockerfile: "Dockerfile".into(),
            ..Default::default()
        }),
        image: None,
        ..svc("unused")
    };
    b.expose = vec!["80".into()];
    let mut c = b.clone();
    c.image = Some("registry.local/c:dev".into());
    let p = project("shop", vec![("a", a), ("b", b), ("c", c)]);

    let m = gen(&p);
    assert_eq!(container(&m, "a").image.as_deref(), Some("example/a:1"));
    assert_eq!(container(&m, "b").image.as_deref(), Some("shop-b"));
    warning(&m, "services.b.build", "deploy --push");
    assert_eq!(
        container(&m, "c").image.as_deref(),
        Some("registry.local/c:dev")
    );
    warning(
        &m,
        "services.c.build",
        "must be able to pull \"registry.local/c:dev\"",
    );

    let opts = GenerateOptions {
        images: BTreeMap::from([
            ("a".to_string(), "example/a@sha256:abc".to_string()),
            ("b".to_string(), "registry.local/shop-b:1".to_string()),
        ]),
        ..Default::default()
    };
    let m = generate(&p, &opts).expect("generate");
    assert_eq!(
        container(&m, "a").image.as_deref(),
        Some("example/a@sha256:abc")
    );
    assert_eq!(
        container(&m, "b").image.as_deref(),
        Some("registry.local/shop-b:1")
    );
    assert!(!has_warning(&m, "services.b.build"));
}

#[test]
fn security_resources_and_pull_policy() {
    let mut a = svc("a");
    a.expose = vec!["80".into()];
    a.user = Some("1000:2000".into());
    a.privileged = true;
    a.read_only = true;
    a.cap_add = s(&["NET_ADMIN", "CAP_SYS_TIME"]);
    a.cap_drop = s(&["ALL"]);
    a.limits = Limits {
        cpus: Some(0.5),
        memory: Some(256 << 20),
        pids: Some(100),
    };
    a.pull_policy = Some("always".into());
    let mut b = svc("b");
    b.expose = vec!["80".into()];
    b.user = Some("postgres".into());
    b.limits = Limits {
        cpus: Some(2.0),
        memory: Some(1_000_000),
        pids: None,
    };
    b.pull_policy = Some("never".into());
    let m = gen(&project("p", vec![("a", a), ("b", b)]));

    let ca = container(&m, "a");
    let sc = ca.security_context.as_ref().expect("securityContext");
    assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(2000)));
    assert_eq!(sc.privileged, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.add, Some(s(&["NET_ADMIN", "SYS_TIME"])));
    assert_eq!(caps.drop, Some(s(&["ALL"])));
    let limits = ca
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(limits["cpu"].0, "500m");
    assert_eq!(limits["memory"].0, "256Mi");
    warning(&m, "services.a.deploy.resources.limits.pids", "not applied");
    assert_eq!(ca.image_pull_policy.as_deref(), Some("Always"));

    let cb = container(&m, "b");
    assert!(cb.security_context.is_none(), "a user name is not applied");
    warning(&m, "services.b.user", "\"postgres\" is a name");
    let limits = cb
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(limits["cpu"].0, "2");
    assert_eq!(limits["memory"].0, "1000000");
    assert_eq!(cb.image_pull_policy.as_deref(), Some("Never"));
}

#[test]
fn extra_hosts_group_by_ip() {
    let mut a = svc("a");
    a.expose = vec!["80".into()];
    a.extra_hosts = s(&[
        "db.local:10.0.0.5",
        "cache.local:10.0.0.5",
        "v6.local:::1",
        "gw:host-gateway",
    ]);
    let m = gen(&project("p", vec![("a", a)]));
    let aliases: Vec<(String, Vec<String>)> = pod(&m, "a")
        .host_aliases
        .as_ref()
        .expect("hostAliases")
        .iter()
        .map(|h| (h.ip.clone(), h.hostnames.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        aliases,
        vec![
            ("10.0.0.5".to_string(), s(&["db.local", "cache.local"])),
            ("::1".to_string(), s(&["v6.local"])),
        ]
    );
    warning(&m, "services.a.extra_hosts[3]", "host-gateway");
}

#[test]
fn keys_without_an_equivalent_are_reported() {
    let mut a = svc("a");
    a.restart = Some("no".into());
    a.init = Some(true);
    a.stop_signal = Some("SIGINT".into());
    a.container_name = Some("my-a".into());
    a.network_mode = Some("service:b".into());
    a.networks = BTreeMap::new();
    a.depends_on = BTreeMap::from([(
        "b".to_string(),
        Dependency {
            condition: Condition::ServiceHealthy,
            required: true,
            restart: false,
        },
    )]);
    let mut b = svc("b");
    b.restart = Some("on-failure:3".into());
    b.networks = BTreeMap::from([(
        "back".to_string(),
        ServiceNetwork {
            aliases: s(&["bee"]),
            ipv4_address: Some("172.20.0.5".into()),
        },
    )]);
    let mut c = svc("c");
    c.restart = Some("unless-stopped".into());
    c.network_mode = Some("host".into());
    c.networks = BTreeMap::new();
    let mut p = project("p", vec![("a", a), ("b", b), ("c", c)]);
    p.networks.insert(
        "back".into(),
        berth_compose::model::Network {
            name: "p_back".into(),
            ..Default::default()
        },
    );
    let m = gen(&p);

    warning(&m, "services.a.restart", "Job");
    warning(&m, "services.b.restart", "on-failure:3");
    assert!(!has_warning(&m, "services.c.restart"));
    warning(&m, "services.a.init", "init");
    warning(&m, "services.a.stop_signal", "SIGINT");
    warning(&m, "services.a.container_name", "\"my-a\"");
    warning(&m, "services.a.network_mode", "one pod");
    warning(&m, "services.a.depends_on", "not after b");
    warning(&m, "services.b.networks.back.aliases", "bee");
    warning(&m, "services.b.networks.back.ipv4_address", "172.20.0.5");
    warning(&m, "networks.back", "NetworkPolicies");
    assert!(pod(&m, "c").host_network == Some(true));
    warning(&m, "services.c.network_mode", "hostNetwork");
    let w = warning(&m, "services.a.init", "init");
    assert_eq!(w.service.as_deref(), Some("a"));
}

#[test]
fn names_are_sanitised_and_collisions_rejected() {
    let mut a = svc("a");
    a.expose = vec!["80".into()];
    let m = gen(&project("p", vec![("Web_App", a)]));
    let d = deployment(&m, "web-app");
    assert_eq!(
        d.metadata
            .labels
            .as_ref()
            .map(|l| l[crate::labels::COMPOSE_SERVICE].as_str()),
        Some("Web_App")
    );
    assert_eq!(container(&m, "web-app").name, "web-app");
    assert!(m.get("Service", "web-app").is_some());

    let e = generate(
        &project("p", vec![("web_app", svc("a")), ("web-app", svc("b"))]),
        &GenerateOptions::default(),
    )
    .expect_err("collision");
    assert!(
        e.0.contains("services.web-app")
            && e.0.contains("services.web_app")
            && e.0.contains("rename one"),
        "{e}"
    );

    let e = generate(
        &project("p", vec![(&*"x".repeat(70), svc("a"))]),
        &GenerateOptions::default(),
    )
    .expect_err("too long");
    assert!(
        e.0.contains("cannot be made a valid Kubernetes name"),
        "{e}"
    );

    // A Service name must start with a letter.
    let mut n = svc("a");
    n.expose = vec!["80".into()];
    let e = generate(&project("p", vec![("1st", n)]), &GenerateOptions::default())
        .expect_err("digit first");
    assert!(
        e.0.contains("services.1st") && e.0.contains("start with a letter"),
        "{e}"
    );

    // The env ConfigMap of `a` and a config named `a-env` collide.
    let mut a = svc("a");
    a.env_files = vec![EnvFile {
        path: "/p/.env".into(),
        vars: vec![("X".into(), Some("1".into()))],
    }];
    a.environment = BTreeMap::from([("X".to_string(), Some("1".to_string()))]);
    a.configs = vec![file_ref("c", "/c", None)];
    let mut p = project("p", vec![("a", a)]);
    p.configs = BTreeMap::from([(
        "c".to_string(),
        FileObject {
            name: "a-env".into(),
            source: FileSource::Content("x".into()),
            labels: BTreeMap::new(),
        },
    )]);
    let e = generate(&p, &GenerateOptions::default()).expect_err("object collision");
    assert!(
        e.0.contains("ConfigMap") && e.0.contains("\"a-env\""),
        "{e}"
    );
}

#[test]
fn bad_options_are_rejected() {
    let p = project("p", vec![("a", svc("a"))]);
    for (opts, needle) in [
        (
            GenerateOptions {
                namespace: Some("My_NS".into()),
                ..Default::default()
            },
            "namespace \"My_NS\"",
        ),
        (
            GenerateOptions {
                volume_size: Some("lots".into()),
                ..Default::default()
            },
            "volume size \"lots\"",
        ),
        (
            GenerateOptions {
                storage_class: Some("Fast SSD".into()),
                ..Default::default()
            },
            "storage class",
        ),
    ] {
        let e = generate(&p, &opts).expect_err("bad option");
        assert!(e.0.contains(needle), "{e}");
    }
    assert!(is_quantity("1Gi") && is_quantity("1.5G") && is_quantity("500"));
    assert!(!is_quantity("Gi") && !is_quantity("1GB") && !is_quantity("1..5"));
}

#[test]
fn namespace_first_and_on_every_object_in_apply_order() {
    let mut db = svc("postgres");
    db.expose = vec!["5432".into()];
    db.volumes = vec![Mount {
        kind: MountKind::Volume,
        source: Some("data".into()),
        target: "/data".into(),
        read_only: false,
        create_host_path: false,
        tmpfs_size: None,
        nocopy: false,
    }];
    db.secrets = vec![file_ref("pw", "/run/secrets/pw", None)];
    let mut web = svc("nginx");
    web.ports = vec![port(80, Some(8080), "tcp")];
    web.configs = vec![file_ref("conf", "/etc/conf", None)];
    web.env_files = vec![EnvFile {
        path: "/p/web.env".into(),
        vars: vec![("A".into(), Some("1".into()))],
    }];
    web.environment = BTreeMap::from([("A".to_string(), Some("1".to_string()))]);
    let mut p = project("shop", vec![("web", web), ("db", db)]);
    p.volumes = BTreeMap::from([(
        "data".to_string(),
        CVolume {
            name: "shop_data".into(),
            ..Default::default()
        },
    )]);
    let fo = |name: &str| FileObject {
        name: name.into(),
        source: FileSource::Content("x".into()),
        labels: BTreeMap::new(),
    };
    p.configs = BTreeMap::from([("conf".to_string(), fo("shop_conf"))]);
    p.secrets = BTreeMap::from([("pw".to_string(), fo("shop_pw"))]);
    let opts = GenerateOptions {
        namespace: Some("staging".into()),
        ..Default::default()
    };
    let m = generate(&p, &opts).expect("generate");

    assert_eq!(
        names_of(&m),
        vec![
            "Namespace/staging",
            "ConfigMap/shop-conf",
            "ConfigMap/web-env",
            "Secret/shop-pw",
            "PersistentVolumeClaim/shop-data",
            "Service/db",
            "Service/web",
            "Deployment/db",
            "Deployment/web",
        ]
    );
    assert_eq!(m.objects[0].namespace(), None);
    for o in &m.objects[1..] {
        assert_eq!(o.namespace(), Some("staging"), "{} {}", o.kind(), o.name());
    }
    for o in &m.objects {
        let l = o.metadata().labels.as_ref().expect("labels");
        assert_eq!(l[crate::labels::PART_OF], "shop", "{}", o.name());
        assert_eq!(l[crate::labels::MANAGED_BY], "berth", "{}", o.name());
    }
}

#[test]
fn yaml_is_stable_and_ordered() {
    let mut web = svc("nginx:1.27");
    web.ports = vec![port(80, Some(8080), "tcp")];
    web.environment = BTreeMap::from([
        ("Z".to_string(), Some("last".to_string())),
        ("A".to_string(), Some("first".to_string())),
    ]);
    let p = project("shop", vec![("web", web)]);
    let a = yaml::to_stream(&gen(&p).objects);
    let b = yaml::to_stream(&gen(&p).objects);
    assert_eq!(a, b);
    assert!(a.starts_with("# Generated by berth kube generate — project shop\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n"), "{a}");
    assert_eq!(a.matches("\n---\n").count(), 1, "two documents: {a}");
    assert!(a.contains("apiVersion: apps/v1\nkind: Deployment\n"), "{a}");
    // A container's name comes first.
    assert!(a.contains("      containers:\n      - name: web\n"), "{a}");
    let (za, aa) = (a.find("name: Z").expect("Z"), a.find("name: A").expect("A"));
    assert!(aa < za, "env sorted by name");

    let m = gen(&p);
    assert_eq!(yaml::file_name(&m.objects[0]), "2-service-web.yaml");
    assert_eq!(yaml::file_name(&m.objects[1]), "3-deployment-web.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("manifests");
    let paths = yaml::write_dir(&m.objects, &out).expect("write_dir");
    assert_eq!(
        paths,
        vec![
            out.join("2-service-web.yaml"),
            out.join("3-deployment-web.yaml")
        ]
    );
    let one = std::fs::read_to_string(&paths[1]).expect("read");
    assert!(
        one.starts_with("# Generated by berth kube generate — project shop\napiVersion: apps/v1\n")
    );
    assert!(!one.contains("---"));
}

#[test]
fn multi_line_config_content_is_a_literal_block() {
    let mut web = svc("nginx");
    web.expose = vec!["80".into()];
    web.configs = vec![file_ref("conf", "/etc/app.conf", None)];
    let mut p = project("p", vec![("web", web)]);
    p.configs = BTreeMap::from([(
        "conf".to_string(),
        FileObject {
            name: "p_conf".into(),
            source: FileSource::Content("a = 1\nb = 2\n".into()),
            labels: BTreeMap::new(),
        },
    )]);
    let text = yaml::to_stream(&gen(&p).objects);
    assert!(
        text.contains("  app.conf: |\n    a = 1\n    b = 2\n"),
        "{text}"
    );
}
