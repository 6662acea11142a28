//! `up`: converge the engine to the project. Networks and volumes first, then images (build
//! or pull what is missing), then services level by level in `depends_on` order, the
//! services of one level at once. A service's containers are kept when their config-hash
//! label and image still match, recreated when not, started when stopped; replicas beyond the
//! wanted count are removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerSummary, Mount, MountType, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::models::{Ipam, IpamConfig};
use bollard::query_parameters as q;
use futures_util::StreamExt;

use super::create::{body, config_hash, files_tar, placed, Replica};
use super::{
    all, engine, id_of, image_name, is_not_found, is_running, label, levels, name_of, number_of,
    res, service, service_of, warn, with_deps, Compose, Error, Reporter, UpOptions,
};
use crate::labels;
use crate::model::{Condition, Project, Service};

impl Compose {
    pub async fn up(&self, p: &Project, o: &UpOptions, r: &Reporter) -> Result<(), Error> {
        for w in &p.warnings {
            warn(r, w.clone());
        }
        let wanted = self.up_resources(p, o, r).await?;
        let order = levels(p, &wanted)?;

        let existing = self.containers(&p.name, Some(false)).await?;
        self.orphans(p, &existing, o.remove_orphans, r).await?;
        let mut by_service: HashMap<String, Vec<ContainerSummary>> = HashMap::new();
        for c in existing {
            by_service.entry(service_of(&c)).or_default().push(c);
        }
        let mut recreated: BTreeSet<String> = BTreeSet::new();
        for level in order {
            let results = futures_util::future::join_all(level.iter().map(|name| {
                let have = by_service.get(name).cloned().unwrap_or_default();
                let recreated = &recreated;
                let wanted = &wanted;
                async move {
                    let s = service(p, name)?;
                    if !o.no_start {
                        self.wait_dependencies(p, s, wanted, r).await?;
                    }
                    let changed = self.converge(p, s, have, o, recreated, r).await?;
                    Ok::<_, Error>((name.clone(), changed))
                }
            }))
            .await;
            for x in results {
                let (name, changed) = x?;
                if changed {
                    recreated.insert(name);
                }
            }
        }
        if o.wait {
            for name in &wanted {
                let s = service(p, name)?;
                for c in self.service_containers(p, s).await? {
                    self.wait_ready(&name_of(&c), false, r).await?;
                }
            }
        }
        Ok(())
    }

    /// The services `up` acts on, after making their networks, volumes and images.
    pub(crate) async fn up_resources(
        &self,
        p: &Project,
        o: &UpOptions,
        r: &Reporter,
    ) -> Result<BTreeSet<String>, Error> {
        for svc in o.scale.keys() {
            service(p, svc)?;
        }
        let wanted = with_deps(p, &o.services, o.no_deps)?;
        levels(p, &wanted)?;
        // Configs and secrets a single engine cannot provide fail before anything is made.
        for n in &wanted {
            placed(p, service(p, n)?)?;
        }
        self.ensure_networks(p, &wanted, r).await?;
        self.ensure_volumes(p, &wanted, r).await?;
        self.ensure_images(p, &wanted, o, r).await?;
        Ok(wanted)
    }

    async fn service_containers(
        &self,
        p: &Project,
        s: &Service,
    ) -> Result<Vec<ContainerSummary>, Error> {
        Ok(self
            .containers(&p.name, Some(false))
            .await?
            .into_iter()
            .filter(|c| service_of(c) == s.name)
            .collect())
    }

    /// Make one service's containers match: returns whether any was (re)created.
    async fn converge(
        &self,
        p: &Project,
        s: &Service,
        have: Vec<ContainerSummary>,
        o: &UpOptions,
        recreated_deps: &BTreeSet<String>,
        r: &Reporter,
    ) -> Result<bool, Error> {
        let want = o.scale.get(&s.name).copied().unwrap_or(s.replicas);
        if want > 1 && s.container_name.is_some() {
            return Err(Error::new(format!(
                "service {} has container_name {:?} and cannot be scaled to {want}: \
                 container names must be unique; remove container_name to scale",
                s.name,
                s.container_name.as_deref().unwrap_or_default()
            )));
        }
        let hash = config_hash(p, s);
        let image = image_name(p, s);
        let image_id = self.image_id(&image).await?;
        let dep_restart = s
            .depends_on
            .iter()
            .any(|(d, dep)| dep.restart && recreated_deps.contains(d))
            || super::mode_service(s).is_some_and(|t| recreated_deps.contains(t));
        let mode_container = self.mode_container(p, s).await?;

        let mut changed = false;
        let mut taken: BTreeMap<u32, ContainerSummary> = BTreeMap::new();
        let mut extra = Vec::new();
        for c in have {
            let n = number_of(&c);
            if n >= 1 && n <= want && !taken.contains_key(&n) {
                taken.insert(n, c);
            } else {
                extra.push(c);
            }
        }
        // Scale down first (highest numbers first, as docker compose).
        extra.sort_by_key(|c| std::cmp::Reverse(number_of(c)));
        all(extra, |c| async move {
            self.remove(&c, o.timeout, false, r).await
        })
        .await?;

        let jobs: Vec<u32> = (1..=want).collect();
        let results = futures_util::future::join_all(jobs.into_iter().map(|n| {
            let current = taken.get(&n).cloned();
            let hash = &hash;
            let image_id = &image_id;
            let mode_container = &mode_container;
            async move {
                let replica = Replica {
                    number: n,
                    oneoff: false,
                    name: None,
                    command: None,
                    env: &[],
                    publish: true,
                    mode_container: mode_container.clone(),
                    image_id: image_id.clone(),
                    tty: None,
                    stdin: None,
                    carried: Vec::new(),
                };
                let name = replica.name(p, s);
                match current {
                    Some(c) => {
                        let stale = label(&c, labels::CONFIG_HASH) != Some(hash.as_str())
                            || (image_id.is_some() && c.image_id.as_ref() != image_id.as_ref());
                        if !o.no_recreate && (o.force_recreate || stale || dep_restart) {
                            self.recreate(p, s, &c, replica, o, r).await?;
                            Ok(true)
                        } else if is_running(&c) {
                            res(r, "Container", &name, "Running", true);
                            Ok(false)
                        } else {
                            if !o.no_start {
                                self.start_one(&name, r).await?;
                            }
                            Ok(false)
                        }
                    }
                    None => {
                        self.create(p, s, &replica, r).await?;
                        if !o.no_start {
                            self.start_one(&name, r).await?;
                        }
                        Ok(true)
                    }
                }
            }
        }))
        .await;
        for x in results {
            changed |= x?;
        }
        Ok(changed)
    }

    pub(crate) async fn create(
        &self,
        p: &Project,
        s: &Service,
        replica: &Replica<'_>,
        r: &Reporter,
    ) -> Result<String, Error> {
        let name = replica.name(p, s);
        res(r, "Container", &name, "Creating", false);
        let b = body(p, s, replica)?;
        let made = self
            .docker
            .create_container(
                Some(q::CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                b,
            )
            .await
            .map_err(|e| engine(&format!("creating container {name}"), e))?;
        if let Err(e) = self.write_files(p, s, &made.id, &name).await {
            // Not left half made: the next `up` creates it again. Its volumes stay: on a
            // recreate they are the old container's, carried over.
            let _ = self
                .docker
                .remove_container(
                    &made.id,
                    Some(q::RemoveContainerOptions {
                        force: true,
                        v: false,
                        link: false,
                    }),
                )
                .await;
            return Err(e);
        }
        res(r, "Container", &name, "Created", true);
        Ok(made.id)
    }

    /// Write the service's environment- and content-backed configs and secrets into the
    /// created (not yet started) container `id`, through `PUT /containers/{id}/archive`.
    pub(crate) async fn write_files(
        &self,
        p: &Project,
        s: &Service,
        id: &str,
        name: &str,
    ) -> Result<(), Error> {
        let Some(tar) = files_tar(p, s)? else {
            return Ok(());
        };
        self.docker
            .upload_to_container(
                id,
                Some(q::UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_full(tar.into()),
            )
            .await
            .map_err(|e| {
                engine(
                    &format!("writing configs and secrets into container {name}"),
                    e,
                )
            })
    }

    pub(crate) async fn start_one(&self, name: &str, r: &Reporter) -> Result<(), Error> {
        res(r, "Container", name, "Starting", false);
        self.docker
            .start_container(name, None::<q::StartContainerOptions>)
            .await
            .map_err(|e| engine(&format!("starting container {name}"), e))?;
        res(r, "Container", name, "Started", true);
        Ok(())
    }

    /// Replace container `c` of `s`: the old one is stopped and renamed out of the way, the
    /// new one created under the name (with the old one's anonymous volumes); if that fails
    /// the old one gets its name back (and is started again if it was running), so a bad
    /// change never leaves the service without a container. Then the old one is removed,
    /// keeping its volumes, and the new one started.
    async fn recreate(
        &self,
        p: &Project,
        s: &Service,
        c: &ContainerSummary,
        mut replica: Replica<'_>,
        o: &UpOptions,
        r: &Reporter,
    ) -> Result<(), Error> {
        let name = replica.name(p, s);
        let id = id_of(c);
        res(r, "Container", &name, "Recreate", false);
        let info = self
            .docker
            .inspect_container(&id, None::<q::InspectContainerOptions>)
            .await
            .map_err(|e| engine(&format!("inspecting container {name}"), e))?;
        let anonymous: Vec<&str> = s
            .volumes
            .iter()
            .filter(|m| m.kind == crate::model::MountKind::Volume && m.source.is_none())
            .map(|m| m.target.as_str())
            .collect();
        replica.carried = info
            .mounts
            .iter()
            .flatten()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| {
                let target = m.destination.clone()?;
                anonymous.contains(&target.as_str()).then(|| Mount {
                    target: Some(target),
                    source: m.name.clone(),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                })
            })
            .collect();
        let was_running = is_running(c);
        if was_running {
            self.stop_quietly(&id, &name, o.timeout, r).await?;
        }
        let short: String = id.chars().take(12).collect();
        let aside = format!("{short}_{name}");
        self.docker
            .rename_container(
                &id,
                q::RenameContainerOptions {
                    name: aside.clone(),
                },
            )
            .await
            .map_err(|e| engine(&format!("renaming container {name} out of the way"), e))?;
        if let Err(e) = self.create(p, s, &replica, r).await {
            let _ = self
                .docker
                .rename_container(&id, q::RenameContainerOptions { name: name.clone() })
                .await;
            if was_running {
                let _ = self
                    .docker
                    .start_container(&id, None::<q::StartContainerOptions>)
                    .await;
            }
            return Err(e);
        }
        match self
            .docker
            .remove_container(
                &id,
                Some(q::RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine(&format!("removing the old container {aside}"), e)),
        }
        if !o.no_start {
            self.start_one(&name, r).await?;
        }
        res(r, "Container", &name, "Recreated", true);
        Ok(())
    }

    pub(crate) async fn stop_quietly(
        &self,
        id: &str,
        name: &str,
        timeout: Option<i64>,
        r: &Reporter,
    ) -> Result<(), Error> {
        res(r, "Container", name, "Stopping", false);
        match self
            .docker
            .stop_container(
                id,
                Some(q::StopContainerOptions {
                    t: timeout.and_then(|t| i32::try_from(t).ok()),
                    signal: None,
                }),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine(&format!("stopping container {name}"), e)),
        }
        res(r, "Container", name, "Stopped", true);
        Ok(())
    }

    /// Stop (gracefully, up to `timeout` s) and remove one container; with `volumes` its
    /// anonymous volumes too.
    pub(crate) async fn remove(
        &self,
        c: &ContainerSummary,
        timeout: Option<i64>,
        volumes: bool,
        r: &Reporter,
    ) -> Result<(), Error> {
        let name = name_of(c);
        let id = id_of(c);
        if is_running(c) {
            res(r, "Container", &name, "Stopping", false);
            match self
                .docker
                .stop_container(
                    &id,
                    Some(q::StopContainerOptions {
                        t: timeout.and_then(|t| i32::try_from(t).ok()),
                        signal: None,
                    }),
                )
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(engine(&format!("stopping container {name}"), e)),
            }
            res(r, "Container", &name, "Stopped", false);
        }
        res(r, "Container", &name, "Removing", false);
        match self
            .docker
            .remove_container(
                &id,
                Some(q::RemoveContainerOptions {
                    force: true,
                    v: volumes,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine(&format!("removing container {name}"), e)),
        }
        res(r, "Container", &name, "Removed", true);
        Ok(())
    }

    /// `network_mode: service:x`: the first container of `x`.
    async fn mode_container(&self, p: &Project, s: &Service) -> Result<Option<String>, Error> {
        let Some(target) = s
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        else {
            return Ok(None);
        };
        let t = service(p, target)?;
        let list = self.service_containers(p, t).await?;
        Ok(list.iter().find(|c| is_running(c)).map(id_of))
    }

    pub(crate) async fn image_id(&self, image: &str) -> Result<Option<String>, Error> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine(&format!("inspecting image {image}"), e)),
        }
    }

    async fn orphans(
        &self,
        p: &Project,
        existing: &[ContainerSummary],
        remove: bool,
        r: &Reporter,
    ) -> Result<(), Error> {
        let orphans: Vec<ContainerSummary> = existing
            .iter()
            .filter(|c| {
                let s = service_of(c);
                !p.services.contains_key(&s) && !p.disabled.contains_key(&s)
            })
            .cloned()
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        if remove {
            return all(
                orphans,
                |c| async move { self.remove(&c, None, false, r).await },
            )
            .await;
        }
        let names: Vec<String> = orphans.iter().map(name_of).collect();
        warn(
            r,
            format!(
                "Found orphan containers ({}) for this project. If you removed or renamed this \
                 service in your compose file, you can run this command with the \
                 --remove-orphans flag to clean it up.",
                names.join(", ")
            ),
        );
        Ok(())
    }

    async fn ensure_networks(
        &self,
        p: &Project,
        wanted: &BTreeSet<String>,
        r: &Reporter,
    ) -> Result<(), Error> {
        let mut used = BTreeSet::new();
        for n in wanted {
            used.extend(service(p, n)?.networks.keys().cloned());
        }
        for key in used {
            let Some(net) = p.networks.get(&key) else {
                return Err(Error::new(format!(
                    "network {key} is used by a service but not declared under the top-level networks"
                )));
            };
            match self
                .docker
                .inspect_network(&net.name, None::<q::InspectNetworkOptions>)
                .await
            {
                Ok(found) => {
                    if !net.external {
                        let owner = found
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(labels::PROJECT))
                            .cloned();
                        if owner.as_deref() != Some(&p.name) {
                            warn(
                                r,
                                format!(
                                    "a network with name {} exists but was not created for \
                                     project {:?}. Set `external: true` to use an existing network",
                                    net.name, p.name
                                ),
                            );
                        }
                    }
                    continue;
                }
                Err(e) if is_not_found(&e) => {
                    if net.external {
                        return Err(Error::new(format!(
                            "network {} declared as external, but could not be found; create it \
                             with: berth network create {}",
                            net.name, net.name
                        )));
                    }
                }
                Err(e) => return Err(engine(&format!("inspecting network {}", net.name), e)),
            }
            res(r, "Network", &net.name, "Creating", false);
            let mut l: HashMap<String, String> = net
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            l.insert(labels::PROJECT.into(), p.name.clone());
            l.insert(labels::NETWORK.into(), key.clone());
            let ipam = (!net.subnets.is_empty()).then(|| Ipam {
                driver: Some("default".into()),
                config: Some(
                    net.subnets
                        .iter()
                        .map(|s| IpamConfig {
                            subnet: Some(s.subnet.clone()),
                            gateway: s.gateway.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                options: None,
            });
            self.docker
                .create_network(NetworkCreateRequest {
                    name: net.name.clone(),
                    driver: Some(net.driver.clone().unwrap_or_else(|| "bridge".into())),
                    internal: Some(net.internal),
                    ipam,
                    options: (!net.driver_opts.is_empty()).then(|| {
                        net.driver_opts
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    }),
                    labels: Some(l),
                    ..Default::default()
                })
                .await
                .map_err(|e| engine(&format!("creating network {}", net.name), e))?;
            res(r, "Network", &net.name, "Created", true);
        }
        Ok(())
    }

    async fn ensure_volumes(
        &self,
        p: &Project,
        wanted: &BTreeSet<String>,
        r: &Reporter,
    ) -> Result<(), Error> {
        let mut used = BTreeSet::new();
        for n in wanted {
            for m in &service(p, n)?.volumes {
                if m.kind == crate::model::MountKind::Volume {
                    if let Some(src) = &m.source {
                        used.insert(src.clone());
                    }
                }
            }
        }
        for key in used {
            let Some(vol) = p.volumes.get(&key) else {
                return Err(Error::new(format!(
                    "volume {key} is used by a service but not declared under the top-level volumes"
                )));
            };
            match self.docker.inspect_volume(&vol.name).await {
                Ok(_) => continue,
                Err(e) if is_not_found(&e) => {
                    if vol.external {
                        return Err(Error::new(format!(
                            "external volume {:?} not found; create it with: berth volume create {}",
                            vol.name, vol.name
                        )));
                    }
                }
                Err(e) => return Err(engine(&format!("inspecting volume {}", vol.name), e)),
            }
            res(r, "Volume", &vol.name, "Creating", false);
            let mut l: HashMap<String, String> = vol
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            l.insert(labels::PROJECT.into(), p.name.clone());
            l.insert(labels::VOLUME.into(), key.clone());
            self.docker
                .create_volume(VolumeCreateRequest {
                    name: Some(vol.name.clone()),
                    driver: vol.driver.clone(),
                    driver_opts: (!vol.driver_opts.is_empty()).then(|| {
                        vol.driver_opts
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    }),
                    labels: Some(l),
                    ..Default::default()
                })
                .await
                .map_err(|e| engine(&format!("creating volume {}", vol.name), e))?;
            res(r, "Volume", &vol.name, "Created", true);
        }
        Ok(())
    }

    /// Build what needs building, pull what is missing (per `pull_policy`).
    async fn ensure_images(
        &self,
        p: &Project,
        wanted: &BTreeSet<String>,
        o: &UpOptions,
        r: &Reporter,
    ) -> Result<(), Error> {
        let mut to_build = Vec::new();
        let mut to_pull = Vec::new();
        for n in wanted {
            let s = service(p, n)?;
            let image = image_name(p, s);
            let policy = s.pull_policy.as_deref().unwrap_or("missing");
            let present = self.image_id(&image).await?.is_some();
            if s.build.is_some() {
                let must = o.build || policy == "build" || (!present && policy != "never");
                if must && !o.no_build {
                    to_build.push(n.clone());
                    continue;
                }
                if !present {
                    return Err(Error::new(format!(
                        "service {n}: image {image} is missing and --no-build was given; build it \
                         with: berth compose build {n}"
                    )));
                }
                continue;
            }
            match policy {
                "always" => to_pull.push(n.clone()),
                "never" if !present => {
                    return Err(Error::new(format!(
                        "service {n}: image {image} is not present and pull_policy is never; \
                         pull or build it first"
                    )))
                }
                _ if !present => to_pull.push(n.clone()),
                _ => {}
            }
        }
        if !to_pull.is_empty() {
            self.pull(p, &to_pull, r).await?;
        }
        if !to_build.is_empty() {
            self.build(p, &to_build, &super::BuildOptions::default(), r)
                .await?;
        }
        Ok(())
    }

    /// Wait until `s`'s dependencies meet their conditions.
    async fn wait_dependencies(
        &self,
        p: &Project,
        s: &Service,
        wanted: &BTreeSet<String>,
        r: &Reporter,
    ) -> Result<(), Error> {
        for (dep, d) in &s.depends_on {
            if !wanted.contains(dep) {
                continue;
            }
            let ds = service(p, dep)?;
            let list = self.service_containers(p, ds).await?;
            for c in list {
                let name = name_of(&c);
                match d.condition {
                    Condition::ServiceStarted => {}
                    Condition::ServiceHealthy => {
                        if ds.healthcheck.is_none()
                            || ds
                                .healthcheck
                                .as_ref()
                                .map(|h| h.test.first().map(String::as_str))
                                == Some(Some("NONE"))
                        {
                            return Err(Error::new(format!(
                                "service {} depends on {dep} being healthy, but {dep} has no \
                                 healthcheck; add one or use condition: service_started",
                                s.name
                            )));
                        }
                        self.wait_ready(&name, true, r).await?;
                    }
                    Condition::ServiceCompletedSuccessfully => {
                        res(r, "Container", &name, "Waiting", false);
                        let mut w = self.docker.wait_container(
                            &name,
                            Some(q::WaitContainerOptions {
                                condition: "not-running".into(),
                            }),
                        );
                        let code = match w.next().await {
                            Some(Ok(x)) => x.status_code,
                            Some(Err(bollard::errors::Error::DockerContainerWaitError {
                                code,
                                ..
                            })) => code,
                            Some(Err(e)) => return Err(engine(&format!("waiting for {name}"), e)),
                            None => 0,
                        };
                        if code != 0 {
                            return Err(Error::new(format!(
                                "service {dep} didn't complete successfully: exit {code}"
                            )));
                        }
                        res(r, "Container", &name, "Exited", true);
                    }
                }
            }
        }
        Ok(())
    }

    /// Until `name` is running, and healthy when it has a healthcheck (the file's or its
    /// image's: the engine reports `State.Health` for either). With `need_health` a container
    /// without one is an error ("has no healthcheck"); an unhealthy or exited container is an
    /// error naming it.
    async fn wait_ready(&self, name: &str, need_health: bool, r: &Reporter) -> Result<(), Error> {
        res(r, "Container", name, "Waiting", false);
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let i = self
                .docker
                .inspect_container(name, None::<q::InspectContainerOptions>)
                .await
                .map_err(|e| engine(&format!("inspecting container {name}"), e))?;
            let state = i.state.unwrap_or_default();
            let running = state.running.unwrap_or(false);
            let hs = state
                .health
                .as_ref()
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none");
            let health = hs.is_some();
            if running && !health && need_health {
                return Err(Error::new(format!("container {name} has no healthcheck")));
            }
            match (running, health, hs.as_deref()) {
                (false, _, _) if state.restarting != Some(true) => {
                    let code = state.exit_code.unwrap_or(0);
                    return Err(Error::new(format!(
                        "dependency failed to start: container {name} exited ({code})"
                    )));
                }
                (true, false, _) | (true, true, Some("healthy")) => {
                    res(
                        r,
                        "Container",
                        name,
                        if health { "Healthy" } else { "Started" },
                        true,
                    );
                    return Ok(());
                }
                (true, true, Some("unhealthy")) => {
                    return Err(Error::new(format!(
                        "dependency failed to start: container {name} is unhealthy"
                    )))
                }
                _ => {}
            }
            // Docker compose waits as long as it takes; say so now and then.
            if started.elapsed() > Duration::from_secs(600) {
                return Err(Error::new(format!(
                    "container {name} did not become healthy in 10 minutes"
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}
