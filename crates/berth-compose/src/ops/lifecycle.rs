//! `down`, `start`, `stop`, `restart`, `rm`, and `run`'s one-off container.

use std::collections::{BTreeSet, HashMap};

use bollard::models::ContainerSummary;
use bollard::query_parameters as q;

use super::create::Replica;
use super::{
    all, engine, id_of, image_name, is_not_found, is_running, levels, name_of, res, service,
    service_of, with_deps, Compose, DownOptions, Error, Reporter, Rmi,
};
use crate::labels;
use crate::model::Project;

/// `run`'s flags.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the service's command when not empty.
    pub command: Vec<String>,
    pub name: Option<String>,
    pub env: Vec<String>,
    pub service_ports: bool,
    pub no_deps: bool,
    pub tty: bool,
    pub interactive: bool,
    pub rm: bool,
    pub detach: bool,
}

impl Compose {
    /// Stop and remove the project's containers (dependents first), then its networks, and
    /// with `volumes` its named volumes; `rmi` removes images.
    pub async fn down(&self, p: &Project, o: &DownOptions, r: &Reporter) -> Result<(), Error> {
        let existing = self.containers(&p.name, None).await?;
        // `-p NAME down` without a file: every container labelled for the project is its own.
        let no_model = p.services.is_empty() && p.disabled.is_empty();
        let known = |c: &ContainerSummary| {
            let s = service_of(c);
            no_model || p.services.contains_key(&s) || p.disabled.contains_key(&s)
        };
        let oneoff = |c: &ContainerSummary| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(labels::ONEOFF))
                .map(String::as_str)
                == Some("True")
        };
        let orphans: Vec<ContainerSummary> = existing
            .iter()
            .filter(|c| !known(c) && !oneoff(c))
            .cloned()
            .collect();
        // Reverse start order: the last level first.
        let names: BTreeSet<String> = existing
            .iter()
            .map(service_of)
            .filter(|s| p.services.contains_key(s) || p.disabled.contains_key(s))
            .collect();
        let mut order = levels(p, &names)?;
        let mut by_service: HashMap<String, Vec<ContainerSummary>> = HashMap::new();
        // One-off containers of any service go with the first wave.
        let mut first: Vec<ContainerSummary> = existing
            .iter()
            .filter(|c| oneoff(c) && (no_model || !names.contains(&service_of(c))))
            .cloned()
            .collect();
        if no_model {
            let services: BTreeSet<String> = existing.iter().map(service_of).collect();
            order = vec![services.into_iter().collect()];
        }
        for c in existing
            .iter()
            .filter(|c| (known(c) || oneoff(c)) && !(no_model && oneoff(c)))
        {
            by_service.entry(service_of(c)).or_default().push(c.clone());
        }
        if o.remove_orphans {
            first.extend(orphans.iter().cloned());
        } else if !orphans.is_empty() {
            super::warn(
                r,
                format!(
                    "Found orphan containers ({}) for this project. If you removed or renamed \
                     this service in your compose file, you can run this command with the \
                     --remove-orphans flag to clean it up.",
                    orphans.iter().map(name_of).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        all(first, |c| async move {
            self.remove(&c, o.timeout, o.volumes, r).await
        })
        .await?;
        for level in order.iter().rev() {
            let batch: Vec<ContainerSummary> = level
                .iter()
                .flat_map(|s| by_service.get(s).cloned().unwrap_or_default())
                .collect();
            all(batch, |c| async move {
                self.remove(&c, o.timeout, o.volumes, r).await
            })
            .await?;
        }
        // Anonymous volumes the containers had (also those carried over by name when a
        // container was recreated, which the engine no longer counts as the container's own).
        if o.volumes {
            let mut anon: BTreeSet<String> = BTreeSet::new();
            for c in &existing {
                for m in c.mounts.iter().flatten() {
                    if m.typ.as_deref() == Some("volume") {
                        if let Some(n) = &m.name {
                            anon.insert(n.clone());
                        }
                    }
                }
            }
            for name in anon {
                let Ok(v) = self.docker.inspect_volume(&name).await else {
                    continue;
                };
                if v.labels.contains_key("com.docker.volume.anonymous")
                    && self
                        .docker
                        .remove_volume(&name, None::<q::RemoveVolumeOptions>)
                        .await
                        .is_ok()
                {
                    res(r, "Volume", &name, "Removed", true);
                }
            }
        }
        // Networks the project made: the model's and any labelled with the project.
        let mut nets: BTreeSet<String> = p
            .networks
            .values()
            .filter(|n| !n.external)
            .map(|n| n.name.clone())
            .collect();
        nets.extend(self.labelled_networks(&p.name).await?);
        for name in nets {
            let net = crate::model::Network {
                name,
                ..Default::default()
            };
            match self
                .docker
                .inspect_network(&net.name, None::<q::InspectNetworkOptions>)
                .await
            {
                Ok(n) => {
                    let owner = n.labels.as_ref().and_then(|l| l.get(labels::PROJECT));
                    if owner.map(String::as_str) != Some(p.name.as_str()) {
                        continue;
                    }
                }
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(engine(&format!("inspecting network {}", net.name), e)),
            }
            res(r, "Network", &net.name, "Removing", false);
            match self.docker.remove_network(&net.name).await {
                Ok(()) => res(r, "Network", &net.name, "Removed", true),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(engine(&format!("removing network {}", net.name), e)),
            }
        }
        if o.volumes {
            let mut vols: BTreeSet<String> = p
                .volumes
                .values()
                .filter(|v| !v.external)
                .map(|v| v.name.clone())
                .collect();
            vols.extend(self.labelled_volumes(&p.name).await?);
            for name in vols {
                let vol = crate::model::Volume {
                    name,
                    ..Default::default()
                };
                match self.docker.inspect_volume(&vol.name).await {
                    Ok(v) => {
                        let owner = v.labels.get(labels::PROJECT);
                        if owner.map(String::as_str) != Some(p.name.as_str()) {
                            continue;
                        }
                    }
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => return Err(engine(&format!("inspecting volume {}", vol.name), e)),
                }
                res(r, "Volume", &vol.name, "Removing", false);
                self.docker
                    .remove_volume(&vol.name, None::<q::RemoveVolumeOptions>)
                    .await
                    .map_err(|e| engine(&format!("removing volume {}", vol.name), e))?;
                res(r, "Volume", &vol.name, "Removed", true);
            }
        }
        if let Some(rmi) = o.rmi {
            let mut images = BTreeSet::new();
            for s in p.services.values().chain(p.disabled.values()) {
                if rmi == Rmi::Local && s.image.is_some() {
                    continue;
                }
                images.insert(image_name(p, s));
            }
            for image in images {
                match self
                    .docker
                    .remove_image(&image, None::<q::RemoveImageOptions>, None)
                    .await
                {
                    Ok(_) => res(r, "Image", &image, "Removed", true),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(engine(&format!("removing image {image}"), e)),
                }
            }
        }
        Ok(())
    }

    async fn labelled_networks(&self, project: &str) -> Result<Vec<String>, Error> {
        let list = self
            .docker
            .list_networks(Some(q::ListNetworksOptions {
                filters: Some(super::project_filter(project)),
            }))
            .await
            .map_err(|e| engine("listing networks", e))?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }

    async fn labelled_volumes(&self, project: &str) -> Result<Vec<String>, Error> {
        let list = self
            .docker
            .list_volumes(Some(q::ListVolumesOptions {
                filters: Some(super::project_filter(project)),
            }))
            .await
            .map_err(|e| engine("listing volumes", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// The named services' containers (all when `services` is empty).
    async fn picked(
        &self,
        p: &Project,
        services: &[String],
    ) -> Result<Vec<ContainerSummary>, Error> {
        for s in services {
            service(p, s)?;
        }
        Ok(self
            .containers(&p.name, Some(false))
            .await?
            .into_iter()
            .filter(|c| services.is_empty() || services.contains(&service_of(c)))
            .collect())
    }

    /// Run `f` on the containers of `list` that `keep` picks, level by level in `depends_on`
    /// order (reversed for stopping), the containers of one level at once.
    async fn in_order<F, Fut>(
        &self,
        p: &Project,
        list: &[ContainerSummary],
        reverse: bool,
        keep: impl Fn(&ContainerSummary) -> bool,
        f: F,
    ) -> Result<(), Error>
    where
        F: Fn(ContainerSummary) -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let names: BTreeSet<String> = list.iter().map(service_of).collect();
        let mut order = levels(p, &names)?;
        if reverse {
            order.reverse();
        }
        for level in order {
            let batch: Vec<ContainerSummary> = list
                .iter()
                .filter(|c| level.contains(&service_of(c)) && keep(c))
                .cloned()
                .collect();
            all(batch, &f).await?;
        }
        Ok(())
    }

    /// Start stopped containers, dependencies first.
    pub async fn start(&self, p: &Project, services: &[String], r: &Reporter) -> Result<(), Error> {
        let list = self.picked(p, services).await?;
        if list.is_empty() {
            return Err(Error::new(format!(
                "no containers to start for project {}; create them with: berth compose up",
                p.name
            )));
        }
        self.in_order(
            p,
            &list,
            false,
            |c| !is_running(c),
            |c| async move { self.start_one(&name_of(&c), r).await },
        )
        .await
    }

    /// Stop running containers, dependents first.
    pub async fn stop(
        &self,
        p: &Project,
        services: &[String],
        timeout: Option<i64>,
        r: &Reporter,
    ) -> Result<(), Error> {
        let list = self.picked(p, services).await?;
        self.in_order(p, &list, true, is_running, |c| async move {
            self.stop_quietly(&id_of(&c), &name_of(&c), timeout, r)
                .await
        })
        .await
    }

    pub async fn restart(
        &self,
        p: &Project,
        services: &[String],
        timeout: Option<i64>,
        r: &Reporter,
    ) -> Result<(), Error> {
        let list = self.picked(p, services).await?;
        self.in_order(
            p,
            &list,
            false,
            |_| true,
            |c| async move {
                let name = name_of(&c);
                res(r, "Container", &name, "Restarting", false);
                self.docker
                    .restart_container(
                        &id_of(&c),
                        Some(q::RestartContainerOptions {
                            t: timeout.and_then(|t| i32::try_from(t).ok()),
                            signal: None,
                        }),
                    )
                    .await
                    .map_err(|e| engine(&format!("restarting container {name}"), e))?;
                res(r, "Container", &name, "Started", true);
                Ok(())
            },
        )
        .await
    }

    /// Remove stopped containers (running ones too with `stop_first`); with `volumes` their
    /// anonymous volumes. Returns the names of running containers left alone.
    pub async fn rm(
        &self,
        p: &Project,
        services: &[String],
        stop_first: bool,
        volumes: bool,
        r: &Reporter,
    ) -> Result<Vec<String>, Error> {
        let list = self.picked(p, services).await?;
        let (running, stopped): (Vec<_>, Vec<_>) = list.into_iter().partition(is_running);
        let mut left = Vec::new();
        let mut gone = stopped;
        if stop_first {
            gone.extend(running);
        } else {
            left = running.iter().map(name_of).collect();
        }
        all(gone, |c| async move {
            if is_running(&c) {
                return self.remove(&c, None, volumes, r).await;
            }
            let name = name_of(&c);
            res(r, "Container", &name, "Removing", false);
            match self
                .docker
                .remove_container(
                    &id_of(&c),
                    Some(q::RemoveContainerOptions {
                        force: false,
                        v: volumes,
                        link: false,
                    }),
                )
                .await
            {
                Ok(()) => {
                    res(r, "Container", &name, "Removed", true);
                    Ok(())
                }
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(engine(&format!("removing container {name}"), e)),
            }
        })
        .await?;
        Ok(left)
    }

    /// `run`: bring up the dependencies (unless `no_deps`), then create the one-off container
    /// `<project>-<service>-run-<id>`; the caller starts and attaches to it. Returns its name.
    pub async fn run_create(
        &self,
        p: &Project,
        svc: &str,
        o: &RunOptions,
        r: &Reporter,
    ) -> Result<String, Error> {
        let s = service(p, svc)?;
        if !o.no_deps {
            let deps: Vec<String> = with_deps(p, &[svc.to_string()], false)?
                .into_iter()
                .filter(|d| d != svc)
                .collect();
            if !deps.is_empty() {
                let up = super::UpOptions {
                    services: deps,
                    ..Default::default()
                };
                self.up(p, &up, r).await?;
            }
        }
        let image = image_name(p, s);
        // Networks, volumes and the image, without starting the service itself.
        let up = super::UpOptions {
            services: vec![svc.to_string()],
            no_deps: true,
            no_start: true,
            ..Default::default()
        };
        self.up_resources(p, &up, r).await?;
        let suffix = super::random_hex(6);
        let name = o
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{svc}-run-{suffix}", p.name));
        let replica = Replica {
            number: 1,
            oneoff: true,
            name: Some(name.clone()),
            command: (!o.command.is_empty()).then(|| o.command.clone()),
            env: &o.env,
            publish: o.service_ports,
            mode_container: None,
            image_id: self.image_id(&image).await?,
            tty: Some(o.tty),
            stdin: Some(o.interactive),
            carried: Vec::new(),
        };
        let mut body = super::create::body(p, s, &replica)?;
        if let Some(h) = body.host_config.as_mut() {
            // Attached runs are removed by the caller once the exit code is read; detached
            // ones by the engine.
            h.auto_remove = Some(o.rm && o.detach);
        }
        self.docker
            .create_container(
                Some(q::CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| engine(&format!("creating container {name}"), e))?;
        // Environment- and content-backed configs and secrets, as `up` writes them.
        if let Err(e) = self.write_files(p, s, &name, &name).await {
            let _ = self
                .docker
                .remove_container(
                    &name,
                    Some(q::RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(e);
        }
        Ok(name)
    }
}
