//! Volume and network commands.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::*;
use clap::Subcommand;
use serde_json::{json, Value};

use super::ops::{inspect_each, prune_cmd, PRUNE_NETWORKS, PRUNE_VOLUMES};
use super::raw::{enc, filters_query, request, Body};
use super::{each, usage, Ctx, Res};
use crate::format::{go_time_of, human_size, short_id};
use crate::template::{self, Format};

#[derive(Subcommand)]
pub enum VolumeCmd {
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
        /// Provide filter values (e.g. "dangling=true")
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format output using a custom template ('table', 'table TEMPLATE', 'json', TEMPLATE)
        #[arg(long)]
        format: Option<String>,
    },
    /// Create a volume
    Create {
        /// Volume driver name
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set driver specific options
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Set metadata for a volume
        #[arg(long)]
        label: Vec<String>,
        name: Option<String>,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format output using a custom template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused local volumes
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "label=<label>")
        #[arg(long)]
        filter: Vec<String>,
    },
}

/// `key=value` flags → map (a bare key has an empty value).
fn kv(raw: &[String]) -> HashMap<String, String> {
    raw.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// docker's `Labels` column: `k=v` joined by commas (sorted here, so it is stable).
fn labels_text(v: &Value) -> String {
    let mut l: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    l.sort();
    l.join(",")
}

/// Natural order of names, close enough to docker's `sortorder.NaturalLess` for the names
/// people use: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for ch in s.chars() {
            let d = ch.is_ascii_digit();
            match out.last_mut() {
                Some((ld, run)) if *ld == d => run.push(ch),
                _ => out.push((d, ch.to_string())),
            }
        }
        out
    };
    let (x, y) = (split(a), split(b));
    for (p, q) in x.iter().zip(y.iter()) {
        let o = if p.0 && q.0 {
            let (pn, qn) = (p.1.trim_start_matches('0'), q.1.trim_start_matches('0'));
            pn.len().cmp(&qn.len()).then_with(|| pn.cmp(qn))
        } else {
            p.1.cmp(&q.1)
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

const VOLUME_TITLES: [(&str, &str); 8] = [
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Labels", "LABELS"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Scope", "SCOPE"),
    ("Size", "SIZE"),
    ("Links", "LINKS"),
    ("Availability", "AVAILABILITY"),
];

fn volume_row(v: &Value) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let usage = &v["UsageData"];
    let (size, links) = match (usage["Size"].as_i64(), usage["RefCount"].as_i64()) {
        (Some(sz), Some(rc)) if sz >= 0 => (human_size(sz), rc.to_string()),
        (_, Some(rc)) if rc >= 0 => ("N/A".to_string(), rc.to_string()),
        _ => ("N/A".to_string(), "N/A".to_string()),
    };
    json!({
        "Driver": s("Driver"),
        "Name": s("Name"),
        "Labels": labels_text(&v["Labels"]),
        "Mountpoint": s("Mountpoint"),
        "Scope": s("Scope"),
        "Size": size,
        "Links": links,
        "Availability": "N/A",
        "Group": "",
        "Status": "",
    })
}

pub async fn volume(c: &Ctx, v: VolumeCmd) -> Res<()> {
    match v {
        VolumeCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let q = filters_query(&filter)?;
            let r = request(c, "GET", &format!("/volumes?{q}"), Body::Empty)?.json()?;
            let mut vols: Vec<Value> = r["Volumes"].as_array().cloned().unwrap_or_default();
            vols.sort_by(|a, b| {
                natural_cmp(
                    a["Name"].as_str().unwrap_or_default(),
                    b["Name"].as_str().unwrap_or_default(),
                )
            });
            if quiet {
                for v in &vols {
                    println!("{}", v["Name"].as_str().unwrap_or_default());
                }
                return Ok(());
            }
            let rows: Vec<Value> = vols.iter().map(volume_row).collect();
            let out = template::print(
                &Format::parse(format.as_deref()),
                &rows,
                &[("Driver", "DRIVER"), ("Name", "VOLUME NAME")],
                &VOLUME_TITLES,
            )
            .map_err(usage)?;
            print!("{out}");
            Ok(())
        }
        VolumeCmd::Create {
            driver,
            opt,
            label,
            name,
        } => {
            let req = VolumeCreateRequest {
                name,
                driver: Some(driver),
                driver_opts: (!opt.is_empty()).then(|| kv(&opt)),
                labels: (!label.is_empty()).then(|| kv(&label)),
                ..Default::default()
            };
            let v = c.docker.create_volume(req).await.map_err(|e| c.err(e))?;
            println!("{}", v.name);
            Ok(())
        }
        VolumeCmd::Inspect { format, volumes } => {
            inspect_each(&volumes, format.as_deref(), |name| {
                request(c, "GET", &format!("/volumes/{}", enc(name)), Body::Empty)?.bytes()
            })
        }
        VolumeCmd::Rm { force, volumes } => {
            each(&volumes, |name| async move {
                let q = if force { "?force=1" } else { "" };
                request(
                    c,
                    "DELETE",
                    &format!("/volumes/{}{q}", enc(&name)),
                    Body::Empty,
                )
                .map(|_| ())
            })
            .await
        }
        VolumeCmd::Prune { all, force, filter } => {
            let mut filter = filter;
            if all {
                filter.push("all=true".into());
            }
            let warning = if all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            prune_cmd(c, &PRUNE_VOLUMES, &filter, force, warning, true)
        }
    }
}

#[derive(Subcommand)]
pub enum NetworkCmd {
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Don't truncate output
        #[arg(long)]
        no_trunc: bool,
        /// Provide filter values (e.g. "driver=bridge")
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format output using a custom template ('table', 'table TEMPLATE', 'json', TEMPLATE)
        #[arg(long)]
        format: Option<String>,
    },
    /// Create a network
    Create {
        /// Driver to manage the network
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Enable manual container attachment
        #[arg(long)]
        attachable: bool,
        /// Subnet in CIDR format that represents a network segment
        #[arg(long)]
        subnet: Vec<String>,
        /// IPv4 or IPv6 Gateway for the master subnet
        #[arg(long)]
        gateway: Vec<String>,
        /// Allocate container ip from a sub-range
        #[arg(long)]
        ip_range: Vec<String>,
        /// Set metadata on a network
        #[arg(long)]
        label: Vec<String>,
        /// Set driver specific options
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Enable or disable IPv6 networking
        #[arg(long)]
        ipv6: bool,
        name: String,
    },
    /// Display detailed information on one or more networks
    Inspect {
        /// Format output using a custom template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network
    Connect {
        /// Add network-scoped alias for the container
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address (e.g., "172.30.100.104")
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "until=<timestamp>")
        #[arg(long)]
        filter: Vec<String>,
    },
}

const NETWORK_TITLES: [(&str, &str); 8] = [
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

fn network_row(n: &Value, no_trunc: bool) -> Value {
    let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
    let id = s("Id");
    json!({
        "ID": if no_trunc { id } else { short_id(&id) },
        "Name": s("Name"),
        "Driver": s("Driver"),
        "Scope": s("Scope"),
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels_text(&n["Labels"]),
        "CreatedAt": go_time_of(&s("Created")),
    })
}

fn ipv4_net(cidr: &str) -> Option<(u32, u32)> {
    let (ip, bits) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX.checked_shl(32 - bits)?
    };
    Some((u32::from(ip) & mask, mask))
}

fn in_subnet(subnet: &str, addr: &str) -> bool {
    let Some((net, mask)) = ipv4_net(subnet) else {
        return false;
    };
    let ip = addr.split('/').next().unwrap_or(addr);
    ip.parse::<Ipv4Addr>()
        .is_ok_and(|ip| u32::from(ip) & mask == net)
}

/// `--subnet/--gateway/--ip-range` → IPAM pools: each gateway and range goes with the subnet
/// that holds it.
fn ipam_pools(subnets: &[String], gateways: &[String], ranges: &[String]) -> Res<Vec<IpamConfig>> {
    if subnets.is_empty() && !(gateways.is_empty() && ranges.is_empty()) {
        return Err(usage(
            "--gateway and --ip-range need a --subnet: give the subnet they belong to".into(),
        ));
    }
    let mut pools: Vec<IpamConfig> = subnets
        .iter()
        .map(|s| IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    for (what, vals) in [("gateway", gateways), ("ip-range", ranges)] {
        for v in vals {
            let idx = pools
                .iter()
                .position(|p| in_subnet(p.subnet.as_deref().unwrap_or_default(), v))
                .or_else(|| (pools.len() == 1).then_some(0));
            let Some(i) = idx else {
                return Err(usage(format!(
                    "no matching subnet for {what} {v}: give a --subnet that contains it"
                )));
            };
            let slot = if what == "gateway" {
                &mut pools[i].gateway
            } else {
                &mut pools[i].ip_range
            };
            if slot.is_some() {
                return Err(usage(format!(
                    "cannot have multiple {what}s in subnet {}",
                    pools[i].subnet.as_deref().unwrap_or_default()
                )));
            }
            *slot = Some(v.clone());
        }
    }
    Ok(pools)
}

pub async fn network(c: &Ctx, n: NetworkCmd) -> Res<()> {
    match n {
        NetworkCmd::Ls {
            quiet,
            no_trunc,
            filter,
            format,
        } => {
            let q = filters_query(&filter)?;
            let r = request(c, "GET", &format!("/networks?{q}"), Body::Empty)?.json()?;
            let mut nets: Vec<Value> = r.as_array().cloned().unwrap_or_default();
            nets.sort_by(|a, b| {
                natural_cmp(
                    a["Name"].as_str().unwrap_or_default(),
                    b["Name"].as_str().unwrap_or_default(),
                )
            });
            let rows: Vec<Value> = nets.iter().map(|n| network_row(n, no_trunc)).collect();
            if quiet {
                for r in &rows {
                    println!("{}", r["ID"].as_str().unwrap_or_default());
                }
                return Ok(());
            }
            let out = template::print(
                &Format::parse(format.as_deref()),
                &rows,
                &NETWORK_TITLES[..4],
                &NETWORK_TITLES,
            )
            .map_err(usage)?;
            print!("{out}");
            Ok(())
        }
        NetworkCmd::Create {
            driver,
            internal,
            attachable,
            subnet,
            gateway,
            ip_range,
            label,
            opt,
            ipv6,
            name,
        } => {
            let pools = ipam_pools(&subnet, &gateway, &ip_range)?;
            let req = NetworkCreateRequest {
                name,
                driver: Some(driver),
                internal: Some(internal),
                attachable: Some(attachable),
                enable_ipv6: ipv6.then_some(true),
                ipam: Some(Ipam {
                    driver: Some("default".into()),
                    config: Some(pools),
                    options: None,
                }),
                options: (!opt.is_empty()).then(|| kv(&opt)),
                labels: (!label.is_empty()).then(|| kv(&label)),
                ..Default::default()
            };
            let r = c.docker.create_network(req).await.map_err(|e| c.err(e))?;
            println!("{}", r.id);
            Ok(())
        }
        NetworkCmd::Inspect { format, networks } => {
            inspect_each(&networks, format.as_deref(), |name| {
                request(c, "GET", &format!("/networks/{}", enc(name)), Body::Empty)?.bytes()
            })
        }
        NetworkCmd::Rm { networks } => {
            each(&networks, |name| async move {
                c.docker.remove_network(&name).await.map_err(|e| c.err(e))
            })
            .await
        }
        NetworkCmd::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let req = NetworkConnectRequest {
                container,
                endpoint_config: Some(EndpointSettings {
                    aliases: (!alias.is_empty()).then_some(alias),
                    ipam_config: ip.map(|ip| EndpointIpamConfig {
                        ipv4_address: Some(ip),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            };
            c.docker
                .connect_network(&network, req)
                .await
                .map_err(|e| c.err(e))
        }
        NetworkCmd::Disconnect {
            force,
            network,
            container,
        } => {
            let req = NetworkDisconnectRequest {
                container,
                force: Some(force),
            };
            c.docker
                .disconnect_network(&network, req)
                .await
                .map_err(|e| c.err(e))
        }
        NetworkCmd::Prune { force, filter } => {
            let warning =
                "WARNING! This will remove all custom networks not used by at least one container.";
            prune_cmd(c, &PRUNE_NETWORKS, &filter, force, warning, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["v10", "v2", "a", "v1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "v1", "v2", "v10"]);
    }

    #[test]
    fn pools() {
        let p = ipam_pools(
            &["10.5.0.0/16".into(), "10.6.0.0/24".into()],
            &["10.6.0.1".into(), "10.5.0.1".into()],
            &["10.5.1.0/24".into()],
        )
        .unwrap();
        assert_eq!(p[0].gateway.as_deref(), Some("10.5.0.1"));
        assert_eq!(p[0].ip_range.as_deref(), Some("10.5.1.0/24"));
        assert_eq!(p[1].gateway.as_deref(), Some("10.6.0.1"));
        assert!(ipam_pools(&[], &["10.0.0.1".into()], &[]).is_err());
        assert!(ipam_pools(
            &["10.5.0.0/16".into(), "10.6.0.0/16".into()],
            &["10.7.0.1".into()],
            &[]
        )
        .is_err());
    }
}
