//! `ps`: the container table, `-q`, `-a`, `-n`, `-l`, `--no-trunc`, `--filter`.

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;
use clap::Args;

use super::{parse_filters, Ctx, Res};
use crate::format::{ago, ellipsis, go_quote, now_unix, short_id, table};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<i32>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
}

pub async fn ps(c: &Ctx, a: PsArgs) -> Res<()> {
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let o = ListContainersOptions {
        all: a.all || limit.is_some(),
        limit,
        size: false,
        filters: parse_filters(&a.filter)?,
    };
    let list = c
        .docker
        .list_containers(Some(o))
        .await
        .map_err(|e| c.err(e))?;
    if a.quiet {
        for s in &list {
            let id = s.id.clone().unwrap_or_default();
            println!("{}", if a.no_trunc { id } else { short_id(&id) });
        }
        return Ok(());
    }
    let now = now_unix();
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for s in &list {
        rows.push(ps_row(s, !a.no_trunc, now));
    }
    print!("{}", table(&rows));
    Ok(())
}

fn ps_row(s: &ContainerSummary, trunc: bool, now: i64) -> Vec<String> {
    let id = s.id.clone().unwrap_or_default();
    let mut image = s.image.clone().unwrap_or_default();
    if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    }
    let command = s.command.clone().unwrap_or_default();
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let names: Vec<String> = s
        .names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/').to_string())
        // Link aliases ("/other/alias") are shown only with --no-trunc, as docker does.
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    vec![
        if trunc { short_id(&id) } else { id },
        image,
        command,
        ago(s.created.unwrap_or(0), now),
        s.status.clone().unwrap_or_default(),
        ports(s),
        names.join(","),
    ]
}

/// "0.0.0.0:8080->80/tcp, 443/tcp" (published first by host address, then exposed-only).
fn ports(s: &ContainerSummary) -> String {
    let mut items: Vec<(u8, String, u16, u16, String)> = s
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
            let ip = p.ip.clone().unwrap_or_default();
            match p.public_port {
                Some(public) if public != 0 => (0, ip, public, p.private_port, proto),
                _ => (1, String::new(), 0, p.private_port, proto),
            }
        })
        .collect();
    items.sort();
    items.dedup();
    items
        .into_iter()
        .map(|(published, ip, public, private, proto)| {
            if published == 0 {
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip
                };
                format!("{host}:{public}->{private}/{proto}")
            } else {
                format!("{private}/{proto}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_column() {
        use bollard::models::{PortSummary, PortSummaryTypeEnum};
        let s = ContainerSummary {
            ports: Some(vec![
                PortSummary {
                    ip: None,
                    private_port: 443,
                    public_port: None,
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
                PortSummary {
                    ip: Some("0.0.0.0".into()),
                    private_port: 80,
                    public_port: Some(8080),
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
            ]),
            ..Default::default()
        };
        assert_eq!(ports(&s), "0.0.0.0:8080->80/tcp, 443/tcp");
    }
}
