//! Volume and network commands.

use bollard::models::*;
use bollard::query_parameters::*;
use clap::Subcommand;

use super::{each, Ctx, Res};
use crate::format::{short_id, table};

#[derive(Subcommand)]
pub enum VolumeCmd {
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a volume
    Create {
        /// Volume driver name
        #[arg(short, long, default_value = "local")]
        driver: String,
        name: Option<String>,
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
}

pub async fn volume(c: &Ctx, v: VolumeCmd) -> Res<()> {
    match v {
        VolumeCmd::Ls { quiet } => {
            let r = c
                .docker
                .list_volumes(None::<ListVolumesOptions>)
                .await
                .map_err(|e| c.err(e))?;
            let mut vols = r.volumes.unwrap_or_default();
            vols.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                vols.iter().for_each(|v| println!("{}", v.name));
                return Ok(());
            }
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            rows.extend(vols.into_iter().map(|v| vec![v.driver, v.name]));
            print!("{}", table(&rows));
            Ok(())
        }
        VolumeCmd::Create { driver, name } => {
            let req = VolumeCreateRequest {
                name,
                driver: Some(driver),
                ..Default::default()
            };
            let v = c.docker.create_volume(req).await.map_err(|e| c.err(e))?;
            println!("{}", v.name);
            Ok(())
        }
        VolumeCmd::Rm { force, volumes } => {
            each(&volumes, |name| async move {
                let o = RemoveVolumeOptions { force };
                c.docker
                    .remove_volume(&name, Some(o))
                    .await
                    .map_err(|e| c.err(e))
            })
            .await
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
    },
    /// Create a network
    Create {
        /// Driver to manage the network
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        name: String,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

pub async fn network(c: &Ctx, n: NetworkCmd) -> Res<()> {
    match n {
        NetworkCmd::Ls { quiet, no_trunc } => {
            let mut nets = c
                .docker
                .list_networks(None::<ListNetworksOptions>)
                .await
                .map_err(|e| c.err(e))?;
            nets.sort_by(|a, b| a.name.cmp(&b.name));
            let id = |i: &Option<String>| {
                let i = i.clone().unwrap_or_default();
                if no_trunc {
                    i
                } else {
                    short_id(&i)
                }
            };
            if quiet {
                nets.iter().for_each(|n| println!("{}", id(&n.id)));
                return Ok(());
            }
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                .map(String::from)
                .to_vec()];
            for n in &nets {
                rows.push(vec![
                    id(&n.id),
                    n.name.clone().unwrap_or_default(),
                    n.driver.clone().unwrap_or_default(),
                    n.scope.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", table(&rows));
            Ok(())
        }
        NetworkCmd::Create {
            driver,
            internal,
            name,
        } => {
            let req = NetworkCreateRequest {
                name,
                driver: Some(driver),
                internal: Some(internal),
                ..Default::default()
            };
            let r = c.docker.create_network(req).await.map_err(|e| c.err(e))?;
            println!("{}", r.id);
            Ok(())
        }
        NetworkCmd::Rm { networks } => {
            each(&networks, |name| async move {
                c.docker.remove_network(&name).await.map_err(|e| c.err(e))
            })
            .await
        }
    }
}
