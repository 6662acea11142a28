use super::*;
use crate::model::{Condition, Dependency, Port, ServiceNetwork};
use std::path::PathBuf;

fn svc(name: &str, deps: &[&str]) -> Service {
    Service {
        name: name.into(),
        image: Some("busybox".into()),
        replicas: 1,
        depends_on: deps
            .iter()
            .map(|d| {
                (
                    d.to_string(),
                    Dependency {
                        condition: Condition::ServiceStarted,
                        required: true,
                        restart: false,
                    },
                )
            })
            .collect(),
        networks: [("default".to_string(), ServiceNetwork::default())].into(),
        ..Default::default()
    }
}

fn project(services: Vec<Service>) -> Project {
    Project {
        name: "shop".into(),
        working_dir: PathBuf::from("/srv/shop"),
        files: vec![PathBuf::from("/srv/shop/compose.yaml")],
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        disabled: BTreeMap::new(),
        networks: [(
            "default".to_string(),
            crate::model::Network {
                name: "shop_default".into(),
                ..Default::default()
            },
        )]
        .into(),
        volumes: BTreeMap::new(),
        configs: BTreeMap::new(),
        secrets: BTreeMap::new(),
        warnings: vec![],
    }
}

#[test]
fn levels_follow_depends_on() {
    let p = project(vec![
        svc("web", &["api"]),
        svc("api", &["db", "cache"]),
        svc("db", &[]),
        svc("cache", &[]),
        svc("worker", &["db"]),
    ]);
    let all = with_deps(&p, &[], false).unwrap();
    let l = levels(&p, &all).unwrap();
    assert_eq!(
        l,
        vec![
            vec!["cache".to_string(), "db".into()],
            vec!["api".into(), "worker".into()],
            vec!["web".into()],
        ]
    );
}

#[test]
fn named_services_bring_their_dependencies_unless_no_deps() {
    let p = project(vec![
        svc("web", &["api"]),
        svc("api", &["db"]),
        svc("db", &[]),
    ]);
    let w = with_deps(&p, &["web".into()], false).unwrap();
    assert_eq!(w.into_iter().collect::<Vec<_>>(), vec!["api", "db", "web"]);
    let w = with_deps(&p, &["web".into()], true).unwrap();
    assert_eq!(w.into_iter().collect::<Vec<_>>(), vec!["web"]);
    let e = with_deps(&p, &["nope".into()], false).unwrap_err();
    assert_eq!(
        e.message,
        "no such service: nope (the project's services: api, db, web)"
    );
}

#[test]
fn a_cycle_is_named() {
    let p = project(vec![
        svc("web", &["api"]),
        svc("api", &["web"]),
        svc("db", &[]),
    ]);
    let all = with_deps(&p, &[], false).unwrap();
    let e = levels(&p, &all).unwrap_err();
    assert_eq!(e.message, "dependency cycle: api -> web -> api");
}

#[test]
fn body_carries_compose_labels_ports_and_aliases() {
    let mut web = svc("web", &[]);
    web.ports = vec![Port {
        target: 80,
        published: Some(8080),
        host_ip: "127.0.0.1".into(),
        protocol: "tcp".into(),
    }];
    web.environment = [
        ("A".to_string(), Some("1".to_string())),
        ("UNSET".to_string(), None),
    ]
    .into();
    web.networks.get_mut("default").unwrap().aliases = vec!["www".into()];
    let p = project(vec![web.clone()]);
    let r = create::Replica {
        number: 2,
        oneoff: false,
        name: None,
        command: None,
        env: &[],
        publish: true,
        mode_container: None,
        image_id: None,
        tty: None,
        stdin: None,
        carried: Vec::new(),
    };
    let b = create::body(&p, &web, &r).unwrap();
    let l = b.labels.unwrap();
    assert_eq!(l[labels::PROJECT], "shop");
    assert_eq!(l[labels::SERVICE], "web");
    assert_eq!(l[labels::NUMBER], "2");
    assert_eq!(l[labels::ONEOFF], "False");
    assert_eq!(l[labels::CONFIG_HASH], web.config_hash());
    assert_eq!(b.env.unwrap(), vec!["A=1".to_string()]);
    let h = b.host_config.unwrap();
    assert_eq!(h.network_mode.as_deref(), Some("shop_default"));
    let pb = h.port_bindings.unwrap();
    let bind = pb["80/tcp"].as_ref().unwrap();
    assert_eq!(bind[0].host_port.as_deref(), Some("8080"));
    assert_eq!(bind[0].host_ip.as_deref(), Some("127.0.0.1"));
    let eps = b.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(
        eps["shop_default"].aliases.as_ref().unwrap(),
        &vec!["web".to_string(), "shop-web-2".into(), "www".into()]
    );
}

#[test]
fn config_hash_changes_with_config_not_with_replicas() {
    let a = svc("web", &[]);
    let mut b = a.clone();
    b.replicas = 3;
    assert_eq!(a.config_hash(), b.config_hash());
    b.environment.insert("X".into(), Some("1".into()));
    assert_ne!(a.config_hash(), b.config_hash());
    assert_eq!(a.config_hash().len(), 64);
}
