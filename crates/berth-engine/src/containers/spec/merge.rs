//! Filling a container's config from its image's, with Docker's rules (moby's `merge` in
//! daemon/commit.go, applied at create time).

use super::super::config::{ContainerConfig, HealthConfig};

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Env merged by key: the image's variables in the image's order, each replaced by the
/// container's value when the container sets the same key; then the container's other
/// variables in its order.
fn merge_env(container: &[String], image: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(container.len() + image.len());
    for ie in image {
        let key = env_key(ie);
        match container.iter().find(|ce| env_key(ce) == key) {
            Some(ce) => out.push(ce.clone()),
            None => out.push(ie.clone()),
        }
    }
    for ce in container {
        let key = env_key(ce);
        if !out.iter().any(|e| env_key(e) == key) {
            out.push(ce.clone());
        }
    }
    out
}

fn merge_health(container: &mut Option<HealthConfig>, image: Option<&serde_json::Value>) {
    // The image's healthcheck is Docker's `Healthcheck` object; one we cannot read is ignored
    // (the container runs without a healthcheck rather than failing to create).
    let image: Option<HealthConfig> = image.and_then(|v| serde_json::from_value(v.clone()).ok());
    let Some(image) = image else { return };
    match container {
        None => *container = Some(image),
        Some(c) => {
            if c.test.is_empty() {
                c.test = image.test;
            }
            if c.interval == 0 {
                c.interval = image.interval;
            }
            if c.timeout == 0 {
                c.timeout = image.timeout;
            }
            if c.start_period == 0 {
                c.start_period = image.start_period;
            }
            if c.start_interval == 0 {
                c.start_interval = image.start_interval;
            }
            if c.retries == 0 {
                c.retries = image.retries;
            }
        }
    }
}

/// See [`super::merge_image_config`].
pub(super) fn merge(config: &mut ContainerConfig, image: &berth_store::image::ContainerConfig) {
    if config.env.is_empty() {
        config.env = image.env.clone();
    } else {
        config.env = merge_env(&config.env, &image.env);
    }

    // `--entrypoint ""` arrives as `[""]`: an explicit reset to no entrypoint.
    if config.entrypoint.as_deref() == Some(&[String::new()][..]) {
        config.entrypoint = Some(Vec::new());
    }
    let entrypoint_given = config.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if !entrypoint_given {
        let cmd_given = config.cmd.as_ref().is_some_and(|c| !c.is_empty());
        if !cmd_given {
            config.cmd = image.cmd.clone();
            if config.args_escaped.is_none() {
                config.args_escaped = image.args_escaped;
            }
        }
        if config.entrypoint.is_none() {
            config.entrypoint = image.entrypoint.clone();
        }
    }

    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone();
    }
    if config.user.is_empty() {
        config.user = image.user.clone();
    }
    if config.stop_signal.as_deref().unwrap_or("").is_empty() {
        if let Some(s) = image.stop_signal.as_ref().filter(|s| !s.is_empty()) {
            config.stop_signal = Some(s.clone());
        }
    }
    merge_health(&mut config.healthcheck, image.healthcheck.as_ref());

    if !image.exposed_ports.is_empty() {
        let ports = config.exposed_ports.get_or_insert_with(Default::default);
        for (k, v) in &image.exposed_ports {
            ports.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if !image.volumes.is_empty() {
        let vols = config.volumes.get_or_insert_with(Default::default);
        for (k, v) in &image.volumes {
            vols.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for (k, v) in &image.labels {
        config.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if !matches!(&config.shell, Some(s) if !s.is_empty()) && image.shell.is_some() {
        config.shell = image.shell.clone();
    }
    if !matches!(&config.on_build, Some(s) if !s.is_empty()) && image.on_build.is_some() {
        config.on_build = image.on_build.clone();
    }
}
