//! `ps`: the container list as docker 28 prints it: `-a`, `-q`, `-n`, `-l`, `-s`,
//! `--no-trunc`, `--filter`, `--format` (table, `table TEMPLATE`, `json`, `raw`, a Go
//! template). Each container becomes docker's row object (`ID`, `Image`, `Command`,
//! `CreatedAt`, `RunningFor`, `Ports`, `State`, `Status`, `Size`, `Names`, `Labels`,
//! `Mounts`, `Networks`, `LocalVolumes`) with docker's value shapes.

use bollard::models::{ContainerSummary, PortSummary};
use bollard::query_parameters::ListContainersOptions;
use clap::Args;
use serde_json::{json, Value};

use super::{parse_filters, Ctx, Failure, Res};
use crate::format::{ago, ellipsis, go_quote, go_time, human_size, now_unix, short_id};
use crate::template::{self, Format};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", allow_negative_numbers = true)]
    pub last: Option<i32>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    /// Placeholders: .ID .Image .Command .CreatedAt .RunningFor .Ports .State .Status .Size
    /// .Names .Labels .Label "key" .Mounts .Networks .LocalVolumes .Platform
    #[arg(long, verbatim_doc_comment)]
    pub format: Option<String>,
}

/// docker's default `ps` columns (placeholder, title).
const DEFAULT: [(&str, &str); 7] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
];

/// Every placeholder's column title, for `table TEMPLATE`.
const TITLES: [(&str, &str); 15] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
];

const RAW: &str = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\n\
created_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\n\
names: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n";

/// What `ps` prints, from its flags (docker's `NewContainerFormat`).
fn choose_format(a: &PsArgs) -> Format {
    let raw = a.format.as_deref().map(str::trim);
    match raw {
        None | Some("") if a.quiet => Format::Template("{{.ID}}".into()),
        Some(f) if a.quiet => {
            eprintln!(
                "WARNING: Ignoring custom format, because both --format and --quiet are set."
            );
            Format::Template(if f == "raw" {
                "container_id: {{.ID}}".into()
            } else {
                "{{.ID}}".into()
            })
        }
        Some("raw") => {
            let mut t = RAW.to_string();
            if a.size {
                t.push_str("size: {{.Size}}\n");
            }
            Format::Template(t)
        }
        _ => Format::parse(raw),
    }
}

pub async fn ps(c: &Ctx, a: PsArgs) -> Res<()> {
    let format = choose_format(&a);
    let mut columns = DEFAULT.to_vec();
    if a.size {
        columns.push(("Size", "SIZE"));
    }
    // A bad template fails before the engine is asked anything.
    let tmpl = match &format {
        Format::Template(t) | Format::TableTemplate(t) => Some(t.as_str()),
        _ => None,
    };
    if let Some(t) = tmpl {
        template::check(t).map_err(|e| Failure::Usage(reword(&e, "failed to parse template")))?;
    }
    // docker asks for sizes when the template shows them (unless -q).
    let size = a.size || (!a.quiet && tmpl.is_some_and(|t| t.contains(".Size")));
    let limit = if a.latest && a.last.is_none() {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let o = ListContainersOptions {
        all: a.all || limit.is_some(),
        limit,
        size,
        filters: parse_filters(&a.filter)?,
    };
    let list = c
        .docker
        .list_containers(Some(o))
        .await
        .map_err(|e| c.err(e))?;
    let now = now_unix();
    let rows: Vec<Value> = list.iter().map(|s| row(s, !a.no_trunc, now)).collect();
    let out = template::print(&format, &rows, &columns, &TITLES)
        .map_err(|e| Failure::Usage(reword(&e, "failed to execute template")))?;
    print!("{out}");
    Ok(())
}

/// docker's `ps` says "failed to parse template: template: ..." where the other list
/// commands say "template parsing error: template: ...".
fn reword(e: &str, what: &str) -> String {
    match e.strip_prefix("template parsing error: ") {
        Some(rest) => format!("{what}: {rest}"),
        None => e.to_string(),
    }
}

/// docker's `ContainerContext` as a JSON object, keyed by placeholder.
pub fn row(s: &ContainerSummary, trunc: bool, now: i64) -> Value {
    let id = s.id.clone().unwrap_or_default();
    let command = s.command.clone().unwrap_or_default();
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let mut labels: Vec<String> = s
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    let mounts: Vec<String> = s
        .mounts
        .iter()
        .flatten()
        .map(|m| {
            let name = match m.name.as_deref() {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => m.source.clone().unwrap_or_default(),
            };
            if trunc {
                ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect();
    let local = s
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let mut networks: Vec<String> = s
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let created = s.created.unwrap_or(0);
    let (rw, root) = (s.size_rw.unwrap_or(0), s.size_root_fs.unwrap_or(0));
    let size = if root > 0 {
        format!("{} (virtual {})", human_size(rw), human_size(root))
    } else {
        human_size(rw)
    };
    json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Image": image(s, trunc),
        "Command": command,
        "CreatedAt": go_time(created),
        "RunningFor": ago(created, now),
        "Ports": ports(s.ports.as_deref().unwrap_or_default()),
        "State": s.state.map(|st| st.to_string()).unwrap_or_default(),
        "Status": s.status.clone().unwrap_or_default(),
        "Size": size,
        "Names": names(s, trunc),
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": local.to_string(),
        "Platform": s
            .image_manifest_descriptor
            .as_ref()
            .and_then(|d| d.platform.as_ref())
            .and_then(|p| serde_json::to_value(p).ok())
            .unwrap_or(Value::Null),
    })
}

/// Names without their leading "/"; truncated output shows only the first that is not a
/// link alias ("/other/alias"), as docker does.
fn names(s: &ContainerSummary, trunc: bool) -> String {
    let all: Vec<String> = s
        .names
        .iter()
        .flatten()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    if trunc {
        if let Some(n) = all.iter().find(|n| !n.contains('/')) {
            return n.clone();
        }
    }
    all.join(",")
}

/// docker's IMAGE column: an image ID is cut to 12 characters, and a reference loses its
/// digest and its docker.io/library/ prefix.
fn image(s: &ContainerSummary, trunc: bool) -> String {
    let image = s.image.clone().unwrap_or_default();
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image;
    }
    let cut = |id: &str| -> String {
        let id = id.split_once(':').map(|(_, r)| r).unwrap_or(id);
        id.chars().take(12).collect()
    };
    if cut(s.image_id.as_deref().unwrap_or_default()) == cut(&image) {
        return cut(&image);
    }
    let is_hex_id = |r: &str| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex_id(&image) || image.starts_with("sha256:") {
        return image;
    }
    let named = image.split_once('@').map(|(n, _)| n).unwrap_or(&image);
    let familiar = named
        .strip_prefix("docker.io/library/")
        .or_else(|| named.strip_prefix("docker.io/"))
        .or_else(|| named.strip_prefix("index.docker.io/library/"))
        .unwrap_or(named);
    familiar.to_string()
}

/// docker's `DisplayablePorts`: ports sorted by (private port, ip, public port, type);
/// runs of unpublished (or published-to-the-same-number) ports grouped as "80-81/tcp" in
/// the order the groups appear, then the host mappings "0.0.0.0:8080->80/tcp".
fn ports(list: &[PortSummary]) -> String {
    struct Group {
        key: String,
        first: u16,
        last: u16,
    }
    let mut sorted: Vec<(u16, String, u16, String)> = list
        .iter()
        .map(|p| {
            (
                p.private_port,
                p.ip.clone().unwrap_or_default(),
                p.public_port.unwrap_or(0),
                p.typ.map(|t| t.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    sorted.sort();
    let form = |key: &str, first: u16, last: u16| -> String {
        let (ip, proto) = match key.split_once('/') {
            Some((ip, proto)) => (ip, proto),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{ip}:{group}->{group}");
        }
        format!("{group}/{proto}")
    };
    let mut groups: Vec<Group> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for (private, ip, public, proto) in sorted {
        let mut key = proto.clone();
        if !ip.is_empty() {
            if public != private {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                mappings.push(format!("{host}->{private}/{proto}"));
                continue;
            }
            key = format!("{ip}/{proto}");
        }
        match groups.iter_mut().find(|g| g.key == key) {
            None => groups.push(Group {
                key,
                first: private,
                last: private,
            }),
            Some(g) if g.last.checked_add(1) == Some(private) => g.last = private,
            Some(g) => {
                result.push(form(&g.key, g.first, g.last));
                g.first = private;
                g.last = private;
            }
        }
    }
    for g in &groups {
        result.push(form(&g.key, g.first, g.last));
    }
    result.extend(mappings);
    result.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::PortSummaryTypeEnum;

    fn port(ip: Option<&str>, private: u16, public: Option<u16>) -> PortSummary {
        PortSummary {
            ip: ip.map(String::from),
            private_port: private,
            public_port: public,
            typ: Some(PortSummaryTypeEnum::TCP),
        }
    }

    #[test]
    fn ports_column_like_docker() {
        assert_eq!(
            ports(&[port(None, 443, None), port(Some("0.0.0.0"), 80, Some(8080))]),
            "443/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            ports(&[
                port(None, 81, None),
                port(None, 80, None),
                port(None, 90, None)
            ]),
            "80-81/tcp, 90/tcp"
        );
        assert_eq!(
            ports(&[
                port(Some("0.0.0.0"), 80, Some(80)),
                port(Some("::"), 80, Some(8080))
            ]),
            "0.0.0.0:80->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(ports(&[]), "");
    }

    #[test]
    fn rows_like_docker() {
        let s = ContainerSummary {
            id: Some("0123456789abcdef".repeat(4)),
            names: Some(vec!["/web".into(), "/other/alias".into()]),
            image: Some("docker.io/library/busybox:latest@sha256:abcd".into()),
            image_id: Some(format!("sha256:{}", "f".repeat(64))),
            command: Some("sh -c 'sleep 1000; echo done'".into()),
            created: Some(100),
            size_rw: Some(0),
            size_root_fs: Some(4_270_000),
            labels: Some([("b".into(), "2".into()), ("a".into(), "1".into())].into()),
            ..Default::default()
        };
        let r = row(&s, true, 160);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Image"], "busybox:latest");
        assert_eq!(r["Command"], "\"sh -c 'sleep 1000; …\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["RunningFor"], "About a minute ago");
        assert_eq!(r["Size"], "0B (virtual 4.27MB)");
        assert_eq!(r["LocalVolumes"], "0");
        let r = row(&s, false, 160);
        assert_eq!(r["ID"].as_str().map(str::len), Some(64));
        assert_eq!(r["Names"], "web,other/alias");
        assert_eq!(r["Image"], "docker.io/library/busybox:latest@sha256:abcd");
        let keys: Vec<&String> = r
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 15);
        assert_eq!(r["Platform"], Value::Null);
    }
}
