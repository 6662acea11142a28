//! One compose service → its Deployment, its Service (for `ports:`/`expose:`) and its
//! `<service>-env` ConfigMap.

use super::files::{self, Kind, Plan};
use super::names::{self, Unique};
use super::{bytes_quantity, err, Gen, GenerateError, Object, ServiceType};
use berth_compose::model::{Healthcheck, MountKind, Service};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, ExecAction, HostAlias,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SecurityContext, Service as KService, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// compose's healthcheck defaults.
const HC_INTERVAL_S: i32 = 30;
const HC_TIMEOUT_S: i32 = 30;
const HC_RETRIES: i32 = 3;
const HC_START_INTERVAL_S: i32 = 5;

/// The NodePort range of a default cluster.
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// The objects of one service.
pub fn service(
    g: &mut Gen,
    sname: &str,
    svc: &Service,
    configs: &Plan,
    secrets: &Plan,
) -> Result<Vec<Object>, GenerateError> {
    let k8s = g.service_name(sname);
    let key = format!("services.{sname}");
    let mut objects = Vec::new();

    let image = image(g, sname, svc)?;
    let env = files::environment(g, sname, svc);
    if let Some(cm) = env.config_map {
        objects.push(cm);
    }

    // Ports: the container's, and the Service's.
    let (container_ports, service) = ports(g, sname, svc)?;
    if let Some(s) = service {
        objects.push(Object::Service(s));
    }

    // Volumes.
    let mut volume_names = Unique::default();
    let mut volumes: Vec<Volume> = Vec::new();
    let mut mounts: Vec<VolumeMount> = Vec::new();
    let mut uses_claim = false;
    // A named volume mounted twice shares one pod volume.
    let mut claim_volumes: BTreeMap<String, String> = BTreeMap::new();
    for (i, m) in svc.volumes.iter().enumerate() {
        let mkey = format!("{key}.volumes[{i}]");
        let vname = match m.kind {
            MountKind::Volume => match &m.source {
                Some(vkey) => {
                    let Some(claim) = g.claims.get(vkey) else {
                        return err(format!(
                            "{mkey}: volume {vkey:?} is not declared under the top-level volumes"
                        ));
                    };
                    uses_claim = true;
                    if let Some(v) = claim_volumes.get(vkey) {
                        v.clone()
                    } else {
                        let v = volume_names.take(vkey);
                        claim_volumes.insert(vkey.clone(), v.clone());
                        volumes.push(Volume {
                            name: v.clone(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: claim.name.clone(),
                                read_only: None,
                            }),
                            ..Default::default()
                        });
                        v
                    }
                }
                None => {
                    let v = volume_names.take(&format!("anon-{i}"));
                    volumes.push(Volume {
                        name: v.clone(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    });
                    v
                }
            },
            MountKind::Tmpfs => {
                let v = volume_names.take(&format!("tmpfs-{i}"));
                volumes.push(memory_volume(&v, m.tmpfs_size));
                v
            }
            MountKind::Bind => {
                g.warn(
                    Some(sname),
                    mkey,
                    format!(
                        "bind mount of {} at {} is not mounted: cluster nodes do not have your \
                         files; use a named volume for data, or `configs:` for a file",
                        m.source.as_deref().unwrap_or("(host path)"),
                        m.target
                    ),
                );
                continue;
            }
        };
        mounts.push(VolumeMount {
            name: vname,
            mount_path: m.target.clone(),
            read_only: m.read_only.then_some(true),
            ..Default::default()
        });
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let tkey = format!("{key}.tmpfs[{i}]");
        let (path, size, ignored) = parse_tmpfs(t);
        if !path.starts_with('/') {
            return err(format!(
                "{tkey}: {t:?} is not an absolute path: use a path like /run or /run:size=64m"
            ));
        }
        if let Some(opts) = ignored {
            g.warn(
                Some(sname),
                &tkey,
                format!("options {opts:?} are not applied (only size is): an emptyDir has no mode or owner options"),
            );
        }
        let v = volume_names.take(&format!("tmpfs-{}", svc.volumes.len() + i));
        volumes.push(memory_volume(&v, size));
        mounts.push(VolumeMount {
            name: v,
            mount_path: path.to_string(),
            ..Default::default()
        });
    }
    for (kind, plan) in [(Kind::Config, configs), (Kind::Secret, secrets)] {
        let (v, m) = files::mounts(g, sname, svc, kind, plan, &mut volume_names)?;
        volumes.extend(v);
        mounts.extend(m);
    }

    let (readiness, liveness, startup) = match &svc.healthcheck {
        Some(hc) => probes(g, sname, hc),
        None => (None, None, None),
    };

    let security_context = security(g, sname, svc);
    let resources = resources(g, sname, svc);
    let image_pull_policy = pull_policy(g, sname, svc);

    let container = Container {
        name: k8s.clone(),
        image: Some(image),
        image_pull_policy,
        command: svc.entrypoint.clone(),
        args: svc.command.clone(),
        env: env.env,
        env_from: env.env_from,
        working_dir: svc.working_dir.clone(),
        ports: (!container_ports.is_empty()).then_some(container_ports),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        readiness_probe: readiness,
        liveness_probe: liveness,
        startup_probe: startup,
        security_context,
        resources,
        tty: svc.tty.then_some(true),
        stdin: svc.stdin_open.then_some(true),
        ..Default::default()
    };

    let mut pod = PodSpec {
        containers: vec![container],
        volumes: (!volumes.is_empty()).then_some(volumes),
        host_aliases: host_aliases(g, sname, svc),
        termination_grace_period_seconds: svc.stop_grace_period.map(|s| s as i64),
        // compose injects no `<SERVICE>_PORT`-style variables; they can clash with an app's own.
        enable_service_links: Some(false),
        ..Default::default()
    };
    if let Some(h) = &svc.hostname {
        if names::is_dns1123_label(h) {
            pod.hostname = Some(h.clone());
        } else {
            g.warn(
                Some(sname),
                format!("{key}.hostname"),
                format!(
                    "{h:?} is not a valid pod hostname (one DNS label: lower-case letters, \
                     digits and '-'): not applied, the pod's name is its hostname"
                ),
            );
        }
    }
    network(g, sname, svc, &mut pod);
    other_keys(g, sname, svc);

    let labels = g.service_labels(sname);
    let annotations = g.annotations(Some(sname), &format!("{key}.labels"), &svc.labels);
    let deployment = Deployment {
        metadata: g.meta(&k8s, labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(svc.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(g.selector(sname)),
                ..Default::default()
            },
            // Old and new pods cannot share a ReadWriteOnce claim across nodes.
            strategy: uses_claim.then(|| DeploymentStrategy {
                type_: Some("Recreate".to_string()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations,
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    objects.push(Object::Deployment(deployment));
    Ok(objects)
}

fn memory_volume(name: &str, size: Option<i64>) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: size.filter(|s| *s > 0).map(bytes_quantity),
        }),
        ..Default::default()
    }
}

/// The image: `--image` override, else `image:`, else compose's `<project>-<service>` for a
/// build-only service.
fn image(g: &mut Gen, sname: &str, svc: &Service) -> Result<String, GenerateError> {
    if let Some(i) = g.opts.images.get(sname) {
        return Ok(i.clone());
    }
    match (&svc.image, &svc.build) {
        (Some(image), Some(_)) => {
            g.warn(
                Some(sname),
                format!("services.{sname}.build"),
                format!(
                    "the cluster does not build images: it must be able to pull {image:?}; push \
                     it to a registry the cluster can reach (berth kube deploy --push)"
                ),
            );
            Ok(image.clone())
        }
        (Some(image), None) => Ok(image.clone()),
        (None, Some(_)) => {
            let image = format!("{}-{sname}", g.project.name);
            g.warn(
                Some(sname),
                format!("services.{sname}.build"),
                format!(
                    "no `image:`, so the image is {image:?} (compose's name for the built \
                     image): the cluster must be able to pull it; push it to a registry the \
                     cluster can reach (berth kube deploy --push), or set `image:`"
                ),
            );
            Ok(image)
        }
        (None, None) => err(format!(
            "services.{sname}: has neither `image:` nor `build:`: add the image to run"
        )),
    }
}

/// One Service port.
struct SPort {
    port: u16,
    target: u16,
    protocol: String,
    node_port: Option<u16>,
}

/// `expose:` entry: `80`, `8000-8010`, `53/udp`.
fn parse_expose(s: &str) -> Option<(u16, u16, String)> {
    let (ports, proto) = match s.split_once('/') {
        Some((p, pr)) => (p, pr.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let p = ports.trim().parse().ok()?;
            (p, p)
        }
    };
    (a > 0 && a <= b).then_some((a, b, proto))
}

fn protocol(p: &str) -> String {
    p.to_ascii_uppercase()
}

/// The container's ports, and the Service for `ports:` and `expose:`.
fn ports(
    g: &mut Gen,
    sname: &str,
    svc: &Service,
) -> Result<(Vec<ContainerPort>, Option<KService>), GenerateError> {
    let key = format!("services.{sname}");
    let mut container: Vec<ContainerPort> = Vec::new();
    let mut add_container = |port: u16, proto: &str| {
        let proto = protocol(proto);
        if !container
            .iter()
            .any(|c| c.container_port == port as i32 && c.protocol.as_deref() == Some(&proto))
        {
            container.push(ContainerPort {
                container_port: port as i32,
                protocol: Some(proto),
                ..Default::default()
            });
        }
    };
    let published = !svc.ports.is_empty();
    let stype = if published {
        g.opts.service_type
    } else {
        ServiceType::ClusterIp
    };
    let mut sports: Vec<SPort> = Vec::new();
    let mut add_service = |g: &mut Gen, pkey: &str, sp: SPort| {
        if let Some(old) = sports
            .iter()
            .find(|o| o.port == sp.port && o.protocol == sp.protocol)
        {
            if old.target != sp.target {
                g.warn(
                    Some(sname),
                    pkey,
                    format!(
                        "port {}/{} already goes to container port {}: this entry (to {}) is left \
                         out of the Service",
                        sp.port, sp.protocol, old.target, sp.target
                    ),
                );
            }
            return;
        }
        sports.push(sp);
    };

    for (i, p) in svc.ports.iter().enumerate() {
        let pkey = format!("{key}.ports[{i}]");
        add_container(p.target, &p.protocol);
        if !p.host_ip.is_empty() {
            g.warn(
                Some(sname),
                &pkey,
                format!(
                    "host_ip {} is not applied: a Service listens on cluster addresses (reach it \
                     from your machine with kubectl port-forward, or a NodePort/LoadBalancer \
                     Service)",
                    p.host_ip
                ),
            );
        }
        let port = p.published.unwrap_or(p.target);
        let mut node_port = None;
        if stype != ServiceType::ClusterIp {
            if let Some(pubd) = p.published {
                if NODE_PORTS.contains(&pubd) {
                    node_port = Some(pubd);
                } else if stype == ServiceType::NodePort {
                    g.warn(
                        Some(sname),
                        &pkey,
                        format!(
                            "published port {pubd} is outside the NodePort range 30000-32767: \
                             the cluster picks the node port (see kubectl get service {})",
                            g.service_name(sname)
                        ),
                    );
                }
            }
        }
        add_service(
            g,
            &pkey,
            SPort {
                port,
                target: p.target,
                protocol: p.protocol.to_ascii_lowercase(),
                node_port,
            },
        );
    }
    for (i, e) in svc.expose.iter().enumerate() {
        let ekey = format!("{key}.expose[{i}]");
        let Some((a, b, proto)) = parse_expose(e) else {
            return err(format!(
                "{ekey}: invalid port {e:?}: expected PORT[/PROTOCOL] or a range, like \"80\", \
                 \"8000-8010\" or \"53/udp\""
            ));
        };
        for port in a..=b {
            add_container(port, &proto);
            add_service(
                g,
                &ekey,
                SPort {
                    port,
                    target: port,
                    protocol: proto.clone(),
                    node_port: None,
                },
            );
        }
    }

    if sports.is_empty() {
        g.warn(
            Some(sname),
            key,
            "has no `ports:` or `expose:`, so no Service is made: other services cannot reach \
             it by name (add `expose:` with the port it listens on)",
        );
        return Ok((container, None));
    }
    let k8s = g.service_name(sname);
    if !names::is_dns1035_label(&k8s) {
        return err(format!(
            "services.{sname}: a Kubernetes Service name must start with a letter, and {k8s:?} \
             does not: rename the service"
        ));
    }
    let service_ports = sports
        .iter()
        .map(|p| ServicePort {
            name: Some(format!("{}-{}", p.protocol, p.port)),
            port: p.port as i32,
            target_port: Some(IntOrString::Int(p.target as i32)),
            protocol: Some(protocol(&p.protocol)),
            node_port: p.node_port.map(|n| n as i32),
            ..Default::default()
        })
        .collect();
    let service = KService {
        metadata: g.meta(&k8s, g.service_labels(sname)),
        spec: Some(ServiceSpec {
            type_: Some(stype.as_str().to_string()),
            selector: Some(g.selector(sname)),
            ports: Some(service_ports),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok((container, Some(service)))
}

/// Nanoseconds → whole seconds, rounded up, at least 1.
fn secs(ns: i64) -> i32 {
    let s = ns.saturating_add(999_999_999) / 1_000_000_000;
    i32::try_from(s.max(1)).unwrap_or(i32::MAX)
}

/// `healthcheck:` → (readiness, liveness, startup) probes.
fn probes(
    g: &mut Gen,
    sname: &str,
    hc: &Healthcheck,
) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let hkey = format!("services.{sname}.healthcheck");
    let command: Vec<String> = match hc.test.first().map(String::as_str) {
        Some("NONE") => return (None, None, None),
        Some("CMD") if hc.test.len() > 1 => hc.test[1..].to_vec(),
        Some("CMD-SHELL") if hc.test.len() > 1 => {
            vec!["/bin/sh".into(), "-c".into(), hc.test[1..].join(" ")]
        }
        _ => {
            g.warn(
                Some(sname),
                format!("{hkey}.test"),
                "no test command: Kubernetes does not run an image's HEALTHCHECK, so the pod gets \
                 no probes (give `test:` explicitly)",
            );
            return (None, None, None);
        }
    };
    let period = hc.interval_ns.map(secs).unwrap_or(HC_INTERVAL_S);
    let timeout = hc.timeout_ns.map(secs).unwrap_or(HC_TIMEOUT_S);
    let retries = hc
        .retries
        .map(|r| i32::try_from(r.max(1)).unwrap_or(i32::MAX))
        .unwrap_or(HC_RETRIES);
    let probe = Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(retries),
        ..Default::default()
    };
    let startup = hc.start_period_ns.filter(|ns| *ns > 0).map(|sp| {
        let every = hc
            .start_interval_ns
            .map(secs)
            .unwrap_or(HC_START_INTERVAL_S);
        let tries = (secs(sp) + every - 1) / every;
        Probe {
            period_seconds: Some(every),
            failure_threshold: Some(tries.saturating_add(retries)),
            ..probe.clone()
        }
    });
    (Some(probe.clone()), Some(probe), startup)
}

/// `user`, `privileged`, `read_only`, `cap_add`/`cap_drop`.
fn security(g: &mut Gen, sname: &str, svc: &Service) -> Option<SecurityContext> {
    let mut sc = SecurityContext::default();
    if svc.privileged {
        sc.privileged = Some(true);
    }
    if svc.read_only {
        sc.read_only_root_filesystem = Some(true);
    }
    let cap = |c: &String| {
        let c = c.to_ascii_uppercase();
        c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
    };
    if !svc.cap_add.is_empty() || !svc.cap_drop.is_empty() {
        sc.capabilities = Some(Capabilities {
            add: (!svc.cap_add.is_empty()).then(|| svc.cap_add.iter().map(cap).collect()),
            drop: (!svc.cap_drop.is_empty()).then(|| svc.cap_drop.iter().map(cap).collect()),
        });
    }
    if let Some(user) = &svc.user {
        let ukey = format!("services.{sname}.user");
        let (u, grp) = match user.split_once(':') {
            Some((u, gr)) => (u, Some(gr)),
            None => (user.as_str(), None),
        };
        match u.parse::<i64>() {
            Ok(uid) if uid >= 0 => sc.run_as_user = Some(uid),
            _ => g.warn(
                Some(sname),
                &ukey,
                format!(
                    "user {u:?} is a name: Kubernetes only takes numeric ids, so the container \
                     runs as the image's user (use the numeric uid, like user: \"1000\")"
                ),
            ),
        }
        if let Some(grp) = grp {
            match grp.parse::<i64>() {
                Ok(gid) if gid >= 0 => sc.run_as_group = Some(gid),
                _ => g.warn(
                    Some(sname),
                    &ukey,
                    format!(
                        "group {grp:?} is a name: Kubernetes only takes numeric ids, so it is not \
                         applied (use the numeric gid, like user: \"1000:1000\")"
                    ),
                ),
            }
        }
    }
    (sc != SecurityContext::default()).then_some(sc)
}

/// `deploy.resources.limits`.
fn resources(g: &mut Gen, sname: &str, svc: &Service) -> Option<ResourceRequirements> {
    let l = &svc.limits;
    let mut limits = BTreeMap::new();
    if let Some(cpus) = l.cpus.filter(|c| *c > 0.0) {
        let milli = (cpus * 1000.0).round().max(1.0) as i64;
        let q = if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
        limits.insert("cpu".to_string(), Quantity(q));
    }
    if let Some(mem) = l.memory.filter(|m| *m > 0) {
        limits.insert("memory".to_string(), bytes_quantity(mem));
    }
    if l.pids.is_some() {
        g.warn(
            Some(sname),
            format!("services.{sname}.deploy.resources.limits.pids"),
            "Kubernetes has no per-container process limit (the kubelet's podPidsLimit applies \
             to every pod): not applied",
        );
    }
    (!limits.is_empty()).then(|| ResourceRequirements {
        limits: Some(limits),
        ..Default::default()
    })
}

fn pull_policy(g: &mut Gen, sname: &str, svc: &Service) -> Option<String> {
    let p = svc.pull_policy.as_deref()?;
    match p {
        "always" => Some("Always".into()),
        "never" => Some("Never".into()),
        "missing" | "if_not_present" => Some("IfNotPresent".into()),
        "build" => {
            g.warn(
                Some(sname),
                format!("services.{sname}.pull_policy"),
                "the cluster does not build images: the image is pulled if missing (push it \
                 with berth kube deploy --push)",
            );
            Some("IfNotPresent".into())
        }
        other => {
            g.warn(
                Some(sname),
                format!("services.{sname}.pull_policy"),
                format!(
                    "{other:?} has no Kubernetes equivalent: the image is pulled if missing \
                     (imagePullPolicy IfNotPresent)"
                ),
            );
            Some("IfNotPresent".into())
        }
    }
}

/// `extra_hosts` (`host:ip`) → hostAliases, one per IP.
fn host_aliases(g: &mut Gen, sname: &str, svc: &Service) -> Option<Vec<HostAlias>> {
    let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, e) in svc.extra_hosts.iter().enumerate() {
        let ekey = format!("services.{sname}.extra_hosts[{i}]");
        let Some((host, ip)) = e.split_once(':').or_else(|| e.split_once('=')) else {
            g.warn(
                Some(sname),
                ekey,
                format!("{e:?} is not HOST:IP: not applied"),
            );
            continue;
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if ip.parse::<std::net::IpAddr>().is_err() {
            g.warn(
                Some(sname),
                ekey,
                format!(
                    "{ip:?} is not an IP address (host-gateway has no cluster equivalent): \
                     {host} is not added to /etc/hosts"
                ),
            );
            continue;
        }
        let hosts = by_ip.entry(ip.to_string()).or_default();
        if !hosts.iter().any(|h| h == host) {
            hosts.push(host.to_string());
        }
    }
    (!by_ip.is_empty()).then(|| {
        by_ip
            .into_iter()
            .map(|(ip, hosts)| HostAlias {
                ip,
                hostnames: Some(hosts),
            })
            .collect()
    })
}

/// `network_mode`, network aliases and static addresses.
fn network(g: &mut Gen, sname: &str, svc: &Service, pod: &mut PodSpec) {
    let key = format!("services.{sname}");
    match svc.network_mode.as_deref() {
        None | Some("bridge") | Some("default") => {}
        Some("host") => {
            pod.host_network = Some(true);
            pod.dns_policy = Some("ClusterFirstWithHostNet".into());
            g.warn(
                Some(sname),
                format!("{key}.network_mode"),
                "host: the pod uses its node's network (hostNetwork), so its ports must be free \
                 on whichever node it runs",
            );
        }
        Some("none") => g.warn(
            Some(sname),
            format!("{key}.network_mode"),
            "none: not applied, the pod joins the cluster network (a NetworkPolicy can isolate it)",
        ),
        Some(other) => g.warn(
            Some(sname),
            format!("{key}.network_mode"),
            format!(
                "{other}: containers sharing a network namespace must be in one pod; not \
                 applied (move them into one pod by hand, as a sidecar)"
            ),
        ),
    }
    for (net, sn) in &svc.networks {
        if !sn.aliases.is_empty() {
            g.warn(
                Some(sname),
                format!("{key}.networks.{net}.aliases"),
                format!(
                    "only the Service name {:?} resolves in the cluster: the aliases {} are not \
                     reachable (use the service name, or add a Service per alias)",
                    g.service_name(sname),
                    sn.aliases.join(", ")
                ),
            );
        }
        if let Some(ip) = &sn.ipv4_address {
            g.warn(
                Some(sname),
                format!("{key}.networks.{net}.ipv4_address"),
                format!("{ip} is not applied: pods get addresses from the cluster (use the Service name)"),
            );
        }
    }
}

/// Keys with no Kubernetes equivalent, each with its own warning.
fn other_keys(g: &mut Gen, sname: &str, svc: &Service) {
    let key = format!("services.{sname}");
    match svc.restart.as_deref() {
        None | Some("always") | Some("unless-stopped") => {}
        Some("no") => g.warn(
            Some(sname),
            format!("{key}.restart"),
            "\"no\": a Deployment always restarts its containers (for a run-once task, write a \
             Job instead)",
        ),
        Some(other) => g.warn(
            Some(sname),
            format!("{key}.restart"),
            format!(
                "{other:?}: a Deployment always restarts its containers, whatever their exit \
                 code (for a run-to-completion task, write a Job instead)"
            ),
        ),
    }
    if !svc.depends_on.is_empty() {
        let deps: Vec<&str> = svc.depends_on.keys().map(String::as_str).collect();
        g.warn(
            Some(sname),
            format!("{key}.depends_on"),
            format!(
                "the cluster starts every service at once, not after {}: readiness probes \
                 (from healthchecks) keep traffic away until a service is ready, so make {sname} \
                 retry its connections",
                deps.join(", ")
            ),
        );
    }
    if svc.init == Some(true) {
        g.warn(
            Some(sname),
            format!("{key}.init"),
            "Kubernetes runs no init process in the container: not applied (use an image with \
             an init such as tini as its entrypoint)",
        );
    }
    if let Some(sig) = &svc.stop_signal {
        g.warn(
            Some(sname),
            format!("{key}.stop_signal"),
            format!(
                "{sig} is not applied: the kubelet stops containers with the image's STOPSIGNAL \
                 (else SIGTERM); set STOPSIGNAL in the Dockerfile"
            ),
        );
    }
    if let Some(cn) = &svc.container_name {
        g.warn(
            Some(sname),
            format!("{key}.container_name"),
            format!(
                "{cn:?} is not applied: pods get generated names; reach the service by its \
                 Service name {:?}",
                g.service_name(sname)
            ),
        );
    }
}

/// `/run`, `/run:size=64m,mode=1777` → (path, size in bytes, options not applied).
fn parse_tmpfs(s: &str) -> (&str, Option<i64>, Option<String>) {
    let Some((path, opts)) = s.split_once(':') else {
        return (s, None, None);
    };
    let mut size = None;
    let mut ignored = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", v)) => match parse_bytes(v) {
                Some(b) => size = Some(b),
                None => ignored.push(o),
            },
            // Read-write is the only way an emptyDir mounts.
            _ if o == "rw" => {}
            _ => ignored.push(o),
        }
    }
    let ignored = (!ignored.is_empty()).then(|| ignored.join(","));
    (path, size, ignored)
}

/// `64m`, `1g`, `512k`, `1024`, `1.5GiB` (binary units, as docker's) → bytes.
fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let b = n * mult;
    (b.is_finite() && b >= 0.0 && b < i64::MAX as f64).then_some(b as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_options() {
        assert_eq!(parse_tmpfs("/run"), ("/run", None, None));
        assert_eq!(
            parse_tmpfs("/run:size=64m"),
            ("/run", Some(64 * 1024 * 1024), None)
        );
        assert_eq!(
            parse_tmpfs("/tmp:rw,size=1g,mode=1777"),
            ("/tmp", Some(1 << 30), Some("mode=1777".to_string()))
        );
        assert_eq!(parse_bytes("512k"), Some(512 * 1024));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("2MiB"), Some(2 << 20));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn expose_entries() {
        assert_eq!(parse_expose("80"), Some((80, 80, "tcp".into())));
        assert_eq!(parse_expose("8000-8002"), Some((8000, 8002, "tcp".into())));
        assert_eq!(parse_expose("53/udp"), Some((53, 53, "udp".into())));
        assert_eq!(parse_expose("0"), None);
        assert_eq!(parse_expose("x"), None);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(secs(0), 1);
        assert_eq!(secs(1_000_000_000), 1);
        assert_eq!(secs(1_500_000_000), 2);
        assert_eq!(secs(90_000_000_000), 90);
    }
}
