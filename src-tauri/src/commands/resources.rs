//! Volumes and networks. "Used by" and "connected containers" come from the container list,
//! so both pages show who uses what without a call per row.

use super::{engine_err, nonempty};
use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{NetworkCreate, NetworkMember, NetworkRow, PruneReport, VolumeRow};
use bollard::models::{
    ContainerSummary, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters as q;
use std::collections::{BTreeMap, HashMap};
use tauri::State;

async fn all_containers(app: &App) -> Res<Vec<ContainerSummary>> {
    app.engine
        .docker()?
        .list_containers(Some(q::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .map_err(engine_err(app))
}

fn name_of(c: &ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

fn volume_row(
    v: bollard::models::Volume,
    sizes: &HashMap<String, i64>,
    users: &HashMap<String, Vec<String>>,
) -> VolumeRow {
    VolumeRow {
        size: sizes.get(&v.name).copied().filter(|s| *s >= 0),
        used_by: users.get(&v.name).cloned().unwrap_or_default(),
        created: v.created_at.map(|d| d.to_string()).unwrap_or_default(),
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint,
        labels: v.labels.into_iter().collect(),
    }
}

#[tauri::command]
pub async fn volumes_list(app: State<'_, App>) -> Res<Vec<VolumeRow>> {
    let d = app.engine.docker()?;
    let vols = d
        .list_volumes(None::<q::ListVolumesOptions>)
        .await
        .map_err(engine_err(&app))?;
    let df = super::system::df(&app).await?;
    let sizes: HashMap<String, i64> = df["Volumes"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| {
            Some((
                v["Name"].as_str()?.to_string(),
                v["UsageData"]["Size"].as_i64()?,
            ))
        })
        .collect();
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for c in all_containers(&app).await? {
        let n = name_of(&c);
        for m in c.mounts.unwrap_or_default() {
            if let Some(v) = m.name.filter(|v| !v.is_empty()) {
                users.entry(v).or_default().push(n.clone());
            }
        }
    }
    let mut rows: Vec<VolumeRow> = vols
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| volume_row(v, &sizes, &users))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

#[tauri::command]
pub async fn volume_create(app: State<'_, App>, name: String) -> Res<VolumeRow> {
    let name = name.trim().to_string();
    if !name.is_empty() && !valid_name(&name) {
        return Err(error::invalid(format!(
            "\"{name}\" is not a valid volume name: use letters, digits and _ . - (starting with a letter or digit)"
        )));
    }
    let v = app
        .engine
        .docker()?
        .create_volume(VolumeCreateRequest {
            name: Some(name).filter(|n| !n.is_empty()),
            ..Default::default()
        })
        .await
        .map_err(engine_err(&app))?;
    Ok(volume_row(v, &HashMap::new(), &HashMap::new()))
}

/// Docker's rule for volume and container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphanumeric())
        && s.len() >= 2
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

#[tauri::command]
pub async fn volume_remove(app: State<'_, App>, name: String, force: bool) -> Res<()> {
    nonempty(&name, "The volume")?;
    app.engine
        .docker()?
        .remove_volume(&name, Some(q::RemoveVolumeOptions { force }))
        .await
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn volumes_prune(app: State<'_, App>) -> Res<PruneReport> {
    let r = app
        .engine
        .docker()?
        .prune_volumes(None::<q::PruneVolumesOptions>)
        .await
        .map_err(engine_err(&app))?;
    Ok(PruneReport {
        deleted: r.volumes_deleted.unwrap_or_default(),
        space_reclaimed: r.space_reclaimed.unwrap_or(0).max(0) as u64,
    })
}

const BUILTIN: [&str; 3] = ["bridge", "host", "none"];

#[tauri::command]
pub async fn networks_list(app: State<'_, App>) -> Res<Vec<NetworkRow>> {
    let nets = app
        .engine
        .docker()?
        .list_networks(None::<q::ListNetworksOptions>)
        .await
        .map_err(engine_err(&app))?;
    let containers = all_containers(&app).await?;
    let mut rows: Vec<NetworkRow> = nets
        .into_iter()
        .map(|n| {
            let name = n.name.unwrap_or_default();
            let id = n.id.unwrap_or_default();
            let cfg = n
                .ipam
                .and_then(|i| i.config)
                .and_then(|c| c.into_iter().next())
                .unwrap_or_default();
            let mut members: Vec<NetworkMember> = containers
                .iter()
                .filter_map(|c| {
                    let nets = c.network_settings.as_ref()?.networks.as_ref()?;
                    let e = nets.get(&name).or_else(|| {
                        nets.values()
                            .find(|e| e.network_id.as_deref() == Some(id.as_str()))
                    })?;
                    Some(NetworkMember {
                        id: c.id.clone().unwrap_or_default(),
                        name: name_of(c),
                        ipv4: e.ip_address.clone().unwrap_or_default(),
                        mac_address: e.mac_address.clone().unwrap_or_default(),
                    })
                })
                .collect();
            members.sort_by(|a, b| a.name.cmp(&b.name));
            NetworkRow {
                builtin: BUILTIN.contains(&name.as_str()),
                id,
                driver: n.driver.unwrap_or_default(),
                scope: n.scope.unwrap_or_default(),
                subnet: cfg.subnet.unwrap_or_default(),
                gateway: cfg.gateway.unwrap_or_default(),
                internal: n.internal.unwrap_or(false),
                created: n.created.map(|d| d.to_string()).unwrap_or_default(),
                containers: members,
                labels: n
                    .labels
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<BTreeMap<_, _>>(),
                name,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.builtin.cmp(&a.builtin).then(a.name.cmp(&b.name)));
    Ok(rows)
}

/// `a.b.c.d/n` with n in 8..=30 (what a bridge network can use).
pub fn valid_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    ip.parse::<std::net::Ipv4Addr>().is_ok()
        && len.parse::<u8>().is_ok_and(|n| (8..=30).contains(&n))
}

#[tauri::command]
pub async fn network_create(app: State<'_, App>, req: NetworkCreate) -> Res<NetworkRow> {
    let name = req.name.trim().to_string();
    if !valid_name(&name) {
        return Err(error::invalid(format!(
            "\"{name}\" is not a valid network name: use letters, digits and _ . - (starting with a letter or digit)"
        )));
    }
    let subnet = req.subnet.trim().to_string();
    if !subnet.is_empty() && !valid_cidr(&subnet) {
        return Err(error::invalid(format!(
            "Subnet \"{subnet}\" is not an IPv4 CIDR: write it like 10.10.0.0/24"
        )));
    }
    let gateway = req.gateway.trim().to_string();
    if !gateway.is_empty() && gateway.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(error::invalid(format!(
            "Gateway \"{gateway}\" is not an IPv4 address"
        )));
    }
    if !gateway.is_empty() && subnet.is_empty() {
        return Err(error::invalid(
            "A gateway needs a subnet: give the subnet too",
        ));
    }
    let ipam = (!subnet.is_empty()).then(|| Ipam {
        driver: Some("default".into()),
        config: Some(vec![IpamConfig {
            subnet: Some(subnet.clone()),
            gateway: Some(gateway.clone()).filter(|g| !g.is_empty()),
            ..Default::default()
        }]),
        options: None,
    });
    app.engine
        .docker()?
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            internal: Some(req.internal),
            ipam,
            ..Default::default()
        })
        .await
        .map_err(engine_err(&app))?;
    networks_list(app)
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .ok_or_else(|| error::system(format!("network {name} was created but is not listed")))
}

#[tauri::command]
pub async fn network_remove(app: State<'_, App>, id: String) -> Res<()> {
    nonempty(&id, "The network")?;
    app.engine
        .docker()?
        .remove_network(&id)
        .await
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn network_connect(app: State<'_, App>, network: String, container: String) -> Res<()> {
    nonempty(&network, "The network")?;
    nonempty(&container, "The container")?;
    app.engine
        .docker()?
        .connect_network(
            &network,
            NetworkConnectRequest {
                container,
                endpoint_config: None,
            },
        )
        .await
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn network_disconnect(
    app: State<'_, App>,
    network: String,
    container: String,
) -> Res<()> {
    nonempty(&network, "The network")?;
    nonempty(&container, "The container")?;
    app.engine
        .docker()?
        .disconnect_network(
            &network,
            NetworkDisconnectRequest {
                container,
                force: Some(false),
            },
        )
        .await
        .map_err(engine_err(&app))
}

#[tauri::command]
pub async fn networks_prune(app: State<'_, App>) -> Res<PruneReport> {
    let r = app
        .engine
        .docker()?
        .prune_networks(None::<q::PruneNetworksOptions>)
        .await
        .map_err(engine_err(&app))?;
    Ok(PruneReport {
        deleted: r.networks_deleted.unwrap_or_default(),
        space_reclaimed: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subnets_are_checked_like_the_engine() {
        assert!(valid_name("data"));
        assert!(valid_name("my_vol.1-x"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a"));
        assert!(!valid_name("has space"));
        assert!(valid_cidr("10.10.0.0/24"));
        assert!(!valid_cidr("10.10.0.0"));
        assert!(!valid_cidr("10.10.0.0/33"));
        assert!(!valid_cidr("fd00::/64"));
    }
}
