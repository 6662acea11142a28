//! Container inspection and maintenance: pause/unpause, inspect, cp, stats, top, port, wait,
//! rename, diff, export and `container prune`; plus the inspect and prune output the volume,
//! network and system commands share.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::Value;

use super::raw::{enc, filters_query, io_fail, request, Body, Response};
use super::{confirm, each, usage, Ctx, Failure, Res};
use crate::format::{bytes_size, decimal_size, go_indent, human_size4, short_id, tabwriter};
use crate::template::{self, Format};

// ---------------------------------------------------------------------------------------------
// Output helpers.

/// docker's inspect output: the raw objects as one indented JSON array.
pub fn print_raw_array(raws: &[Vec<u8>]) {
    if raws.is_empty() {
        println!("[]");
        return;
    }
    let mut all = b"[".to_vec();
    for (i, r) in raws.iter().enumerate() {
        if i > 0 {
            all.push(b',');
        }
        all.extend_from_slice(r);
    }
    all.push(b']');
    println!("{}", go_indent(&all, "    "));
}

/// One object through a `-f`/`--format` template (`json` is `{{json .}}`).
pub fn render_line(tmpl: &str, v: &Value) -> Res<String> {
    let t = match Format::parse(Some(tmpl)) {
        Format::Template(t) | Format::TableTemplate(t) => t,
        Format::Json => "{{json .}}".to_string(),
        Format::Table => tmpl.to_string(),
    };
    template::render(&t, v).map_err(usage)
}

/// `-f` for inspect commands: the template per object, else the indented JSON array.
pub fn print_inspected(format: Option<&str>, raws: &[Vec<u8>]) -> Res<()> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => {
            for r in raws {
                let v: Value = serde_json::from_slice(r)
                    .map_err(|e| usage(format!("unexpected answer from the engine: {e}")))?;
                println!("{}", render_line(f, &v)?);
            }
            Ok(())
        }
        _ => {
            print_raw_array(raws);
            Ok(())
        }
    }
}

/// Inspect each target with `get`; print what was found (docker's array or template), then
/// one "Error: ..." line per target that failed, and exit 1 if any did.
pub fn inspect_each<F>(targets: &[String], format: Option<&str>, get: F) -> Res<()>
where
    F: Fn(&str) -> Res<Vec<u8>>,
{
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for t in targets {
        match get(t) {
            Ok(raw) => found.push(raw),
            Err(Failure::Connect(m)) => return Err(Failure::Connect(m)),
            Err(Failure::Daemon(m)) => errors.push(format!("Error response from daemon: {m}")),
            Err(Failure::Usage(m)) => errors.push(format!("Error: {m}")),
            Err(Failure::Exit(n)) => errors.push(format!("Error: exit {n}")),
        }
    }
    print_inspected(format, &found)?;
    if errors.is_empty() {
        return Ok(());
    }
    let _ = std::io::stdout().flush();
    for e in &errors {
        eprintln!("{e}");
    }
    Err(Failure::Exit(1))
}

// ---------------------------------------------------------------------------------------------
// Commands.

/// Container commands docker has at the top level and under `container`.
#[derive(Subcommand)]
pub enum OpsCmd {
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Display the running processes of a container
    Top {
        container: String,
        /// ps options
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List port mappings or a specific mapping for the container
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        port: Option<String>,
    },
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container
    Rename { container: String, new_name: String },
    /// Inspect changes to files or directories on a container's filesystem
    Diff { container: String },
    /// Export a container's filesystem as a tar archive
    Export {
        /// Write to a file, instead of STDOUT
        #[arg(short, long)]
        output: Option<String>,
        container: String,
    },
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    pub src: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    pub dst: String,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

pub async fn dispatch(c: &Ctx, cmd: OpsCmd) -> Res<()> {
    match cmd {
        OpsCmd::Pause { containers } => {
            each(&containers, |id| async move {
                c.docker.pause_container(&id).await.map_err(|e| c.err(e))
            })
            .await
        }
        OpsCmd::Unpause { containers } => {
            each(&containers, |id| async move {
                c.docker.unpause_container(&id).await.map_err(|e| c.err(e))
            })
            .await
        }
        OpsCmd::Cp(a) => cp(c, a),
        OpsCmd::Stats(a) => stats(c, a),
        OpsCmd::Top { container, ps_args } => top(c, &container, &ps_args),
        OpsCmd::Port { container, port } => port_cmd(c, &container, port.as_deref()),
        OpsCmd::Wait { containers } => wait(c, &containers),
        OpsCmd::Rename {
            container,
            new_name,
        } => {
            request(
                c,
                "POST",
                &format!(
                    "/containers/{}/rename?name={}",
                    enc(&container),
                    enc(&new_name)
                ),
                Body::Empty,
            )?;
            Ok(())
        }
        OpsCmd::Diff { container } => diff(c, &container),
        OpsCmd::Export { output, container } => export(c, &container, output.as_deref()),
    }
}

/// `container inspect`.
pub async fn inspect_containers(c: &Ctx, a: InspectArgs) -> Res<()> {
    let size = a.size;
    inspect_each(&a.containers, a.format.as_deref(), |t| {
        container_raw(c, t, size)
    })
}

pub fn container_raw(c: &Ctx, name: &str, size: bool) -> Res<Vec<u8>> {
    let q = if size { "?size=1" } else { "" };
    request(
        c,
        "GET",
        &format!("/containers/{}/json{q}", enc(name)),
        Body::Empty,
    )?
    .bytes()
}

/// `container prune`.
pub async fn prune_containers(c: &Ctx, a: PruneArgs) -> Res<()> {
    let warning = "WARNING! This will remove all stopped containers.";
    prune_cmd(c, &PRUNE_CONTAINERS, &a.filter, a.force, warning, true)
}

/// One engine prune endpoint and where its answer lists what went.
pub struct Pruner {
    path: &'static str,
    heading: &'static str,
    key: &'static str,
}

const fn pruner(path: &'static str, heading: &'static str, key: &'static str) -> Pruner {
    Pruner { path, heading, key }
}

pub const PRUNE_CONTAINERS: Pruner = pruner(
    "/containers/prune",
    "Deleted Containers:",
    "ContainersDeleted",
);
pub const PRUNE_VOLUMES: Pruner = pruner("/volumes/prune", "Deleted Volumes:", "VolumesDeleted");
pub const PRUNE_NETWORKS: Pruner =
    pruner("/networks/prune", "Deleted Networks:", "NetworksDeleted");
pub const PRUNE_BUILD_CACHE: Pruner = pruner(
    "/build/prune",
    "Deleted build cache objects:",
    "CachesDeleted",
);

/// Prune with `query` (empty, or starting with `?`): docker's report of what went (empty
/// when nothing did) and the space reclaimed.
pub fn prune_request(c: &Ctx, p: &Pruner, query: &str) -> Res<(String, f64)> {
    let r = request(c, "POST", &format!("{}{query}", p.path), Body::Empty)?.json()?;
    Ok(prune_output(p.heading, &r[p.key], &r))
}

/// `container/volume/network prune`: docker's prompt with `warning` unless `force`, the
/// report, and the space reclaimed when `total`.
pub fn prune_cmd(
    c: &Ctx,
    p: &Pruner,
    filter: &[String],
    force: bool,
    warning: &str,
    total: bool,
) -> Res<()> {
    let q = filters_query(filter)?;
    if !force && !confirm(warning) {
        return Ok(());
    }
    let (out, space) = prune_request(c, p, &format!("?{q}"))?;
    if !out.is_empty() {
        println!("{out}");
    }
    if total {
        println!("Total reclaimed space: {}", human_size4(space));
    }
    Ok(())
}

/// docker's prune report: the heading and one line per deleted thing (empty when nothing
/// went), and the space reclaimed.
fn prune_output(heading: &str, deleted: &Value, report: &Value) -> (String, f64) {
    let items: Vec<&str> = deleted
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        return (String::new(), 0.0);
    }
    let mut out = format!("{heading}\n");
    for i in items {
        out.push_str(i);
        out.push('\n');
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    (out, space)
}

fn wait(c: &Ctx, containers: &[String]) -> Res<()> {
    let mut failed = false;
    for ct in containers {
        let r = request(
            c,
            "POST",
            &format!("/containers/{}/wait?condition=not-running", enc(ct)),
            Body::Empty,
        )
        .and_then(|r| r.json());
        match r {
            Ok(v) => println!("{}", v["StatusCode"].as_i64().unwrap_or(-1)),
            Err(Failure::Daemon(m)) => {
                eprintln!("Error response from daemon: {m}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if failed {
        Err(Failure::Exit(1))
    } else {
        Ok(())
    }
}

fn diff(c: &Ctx, container: &str) -> Res<()> {
    let v = request(
        c,
        "GET",
        &format!("/containers/{}/changes", enc(container)),
        Body::Empty,
    )?
    .json()?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or_default());
    }
    Ok(())
}

fn export(c: &Ctx, container: &str, output: Option<&str>) -> Res<()> {
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let mut r = request(
        c,
        "GET",
        &format!("/containers/{}/export", enc(container)),
        Body::Empty,
    )?;
    match output {
        Some(path) => {
            let mut f = std::fs::File::create(path)
                .map_err(|e| usage(format!("failed to export container: {path}: {e}")))?;
            std::io::copy(&mut r, &mut f).map_err(|e| io_fail(c, e))?;
        }
        None => {
            let mut o = std::io::stdout().lock();
            std::io::copy(&mut r, &mut o).map_err(|e| io_fail(c, e))?;
            o.flush().map_err(|e| io_fail(c, e))?;
        }
    }
    Ok(())
}

fn top(c: &Ctx, container: &str, ps_args: &[String]) -> Res<()> {
    let q = if ps_args.is_empty() {
        String::new()
    } else {
        format!("?ps_args={}", enc(&ps_args.join(" ")))
    };
    let v = request(
        c,
        "GET",
        &format!("/containers/{}/top{q}", enc(container)),
        Body::Empty,
    )?
    .json()?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let mut rows = vec![strs(&v["Titles"])];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(strs(p));
    }
    print!("{}", tabwriter(&rows, 20, 3));
    Ok(())
}

fn port_cmd(c: &Ctx, container: &str, port: Option<&str>) -> Res<()> {
    let raw = container_raw(c, container, false)?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|e| usage(format!("unexpected answer from the engine: {e}")))?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let join = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or_default();
        let port = b["HostPort"].as_str().unwrap_or_default();
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    if let Some(p) = port {
        let (num, proto) = match p.split_once('/') {
            Some((n, pr)) => (n, pr),
            None => (p, "tcp"),
        };
        if num.parse::<u16>().is_err() {
            return Err(usage(format!(
                "Error: invalid port ({num}): expected PRIVATE_PORT[/PROTO], e.g. 80/tcp"
            )));
        }
        let key = format!("{num}/{proto}");
        if let Some(bindings) = ports.get(&key).and_then(Value::as_array) {
            for b in bindings {
                println!("{}", join(b));
            }
            return Ok(());
        }
        eprintln!("Error: No public port '{p}' published for {container}");
        return Err(Failure::Exit(1));
    }
    let mut out = Vec::new();
    for (from, bindings) in &ports {
        for b in bindings.as_array().into_iter().flatten() {
            out.push((port_key(from), format!("{from} -> {}", join(b))));
        }
    }
    out.sort();
    for (_, l) in out {
        println!("{l}");
    }
    Ok(())
}

/// Sort ports by number, then protocol.
fn port_key(p: &str) -> (u32, String) {
    let (n, proto) = p.split_once('/').unwrap_or((p, ""));
    (n.parse().unwrap_or(0), proto.to_string())
}

// ---------------------------------------------------------------------------------------------
// stats

const STATS_TITLES: [(&str, &str); 9] = [
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// The default columns: all but `Container`.
const STATS_DEFAULT: &[(&str, &str)] = STATS_TITLES.split_at(1).1;

/// One `stats` row from the engine's stats JSON (docker's arithmetic).
pub fn stats_row(s: &Value, container: &str, no_trunc: bool) -> Value {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let id = s["id"].as_str().unwrap_or_default();
    let name = s["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let running = f(&s["pids_stats"]["current"]) > 0.0 || f(&s["memory_stats"]["usage"]) > 0.0;
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = f(&cpu["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = f(&cpu["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let mut online = f(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let mut usage = f(&mem["usage"]);
    let st = &mem["stats"];
    let v1 = f(&st["total_inactive_file"]);
    let v2 = f(&st["inactive_file"]);
    if st.get("total_inactive_file").is_some() && v1 < usage {
        usage -= v1;
    } else if v2 < usage {
        usage -= v2;
    }
    let limit = f(&mem["limit"]);
    let mem_pct = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += f(&n["rx_bytes"]);
            tx += f(&n["tx_bytes"]);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_lowercase).as_deref() {
            Some("read") => rd += f(&e["value"]),
            Some("write") => wr += f(&e["value"]),
            _ => {}
        }
    }
    let pids = s["pids_stats"]["current"].as_u64().unwrap_or(0);
    let shown_id = if no_trunc {
        id.to_string()
    } else {
        short_id(id)
    };
    if !running && cpu_delta == 0.0 && usage == 0.0 {
        // A stopped container: docker's row of zeros and dashes.
        return serde_json::json!({
            "Container": container, "ID": shown_id, "Name": name,
            "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%",
            "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0",
        });
    }
    serde_json::json!({
        "Container": container,
        "ID": shown_id,
        "Name": name,
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(usage), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", decimal_size(rx, 3), decimal_size(tx, 3)),
        "BlockIO": format!("{} / {}", decimal_size(rd, 3), decimal_size(wr, 3)),
        "PIDs": pids.to_string(),
    })
}

fn stats(c: &Ctx, a: StatsArgs) -> Res<()> {
    let format = Format::parse(a.format.as_deref());
    // Which containers: the named ones, else the running (or all) ones.
    let targets: Vec<String> = if a.containers.is_empty() {
        let q = if a.all { "?all=1" } else { "" };
        let list = request(c, "GET", &format!("/containers/json{q}"), Body::Empty)?.json()?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["Id"].as_str().map(String::from))
            .collect()
    } else {
        for ct in &a.containers {
            container_raw(c, ct, false)?;
        }
        a.containers.clone()
    };
    let tty = std::io::stdout().is_terminal();
    loop {
        let results: Vec<Res<Value>> = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|t| {
                    s.spawn(move || {
                        request(
                            c,
                            "GET",
                            &format!("/containers/{}/stats?stream=false", enc(t)),
                            Body::Empty,
                        )?
                        .json()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(usage("stats reader failed".into())))
                })
                .collect()
        });
        let mut rows = Vec::new();
        for (t, r) in targets.iter().zip(results) {
            match r {
                Ok(v) => rows.push(stats_row(&v, t, a.no_trunc)),
                // A container that went away since the list: drop it, unless it was named.
                Err(Failure::Daemon(m)) if !a.containers.is_empty() => {
                    return Err(Failure::Daemon(m))
                }
                Err(Failure::Daemon(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let out = template::print(&format, &rows, STATS_DEFAULT, &STATS_TITLES).map_err(usage)?;
        if tty && !a.no_stream {
            // Redraw in place: home, clear, table.
            print!("\x1b[2J\x1b[H{out}");
        } else {
            print!("{out}");
        }
        let _ = std::io::stdout().flush();
        if a.no_stream {
            return Ok(());
        }
        // The engine already spent a second sampling each container.
    }
}

// ---------------------------------------------------------------------------------------------
// cp

/// Go's `os.FileMode` directory bit, as the path-stat header carries it.
const MODE_DIR: u64 = 1 << 31;

/// The engine's stat of an archive path: mode and link target.
#[derive(Debug)]
struct PathStat {
    mode: u64,
    link: String,
}

fn path_stat(r: &Response) -> Option<PathStat> {
    let h = r.header("X-Docker-Container-Path-Stat")?;
    let raw = base64_decode(h)?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some(PathStat {
        mode: v["mode"].as_u64().unwrap_or(0),
        link: v["linkTarget"].as_str().unwrap_or_default().to_string(),
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.trim().as_bytes() {
        if c == b'=' {
            break;
        }
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `CONTAINER:PATH` → (container, path); a local path → None.
fn split_cp(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (ct, p) = arg.split_once(':')?;
    if ct.is_empty() || ct.contains('/') {
        return None;
    }
    Some((ct, p))
}

/// Counts what goes through.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn cp(c: &Ctx, a: CpArgs) -> Res<()> {
    match (split_cp(&a.src), split_cp(&a.dst)) {
        (Some(_), Some(_)) => Err(usage(
            "copying between containers is not supported: copy to the host first".into(),
        )),
        (None, None) => Err(usage(
            "must specify at least one container source: berth cp CONTAINER:SRC_PATH DEST_PATH \
             or berth cp SRC_PATH CONTAINER:DEST_PATH"
                .into(),
        )),
        (Some((ct, path)), None) => cp_from(c, &a, ct, path, &a.dst),
        (None, Some((ct, path))) => cp_to(c, &a, &a.src, ct, path),
    }
}

fn cp_from(c: &Ctx, a: &CpArgs, ct: &str, src: &str, dst: &str) -> Res<()> {
    if src.is_empty() {
        return Err(usage(format!(
            "no path given after {ct:?}: use CONTAINER:SRC_PATH"
        )));
    }
    let mut src = src.to_string();
    if a.follow_link {
        // Copy what a symlink points at, not the link.
        let st = request(
            c,
            "HEAD",
            &format!("/containers/{}/archive?path={}", enc(ct), enc(&src)),
            Body::Empty,
        )?;
        if let Some(link) = path_stat(&st).map(|s| s.link).filter(|l| !l.is_empty()) {
            src = if link.starts_with('/') {
                link
            } else {
                format!("{}/{link}", parent_of(&src))
            };
        }
    }
    let r = request(
        c,
        "GET",
        &format!("/containers/{}/archive?path={}", enc(ct), enc(&src)),
        Body::Empty,
    )?;
    if dst == "-" {
        let mut r = r;
        let mut o = std::io::stdout().lock();
        std::io::copy(&mut r, &mut o).map_err(|e| io_fail(c, e))?;
        o.flush().map_err(|e| io_fail(c, e))?;
        return Ok(());
    }
    let stat = path_stat(&r);
    let src_is_dir = stat.as_ref().is_some_and(|s| s.mode & MODE_DIR != 0);
    let dst_path = Path::new(dst);
    let meta = std::fs::metadata(dst_path).ok();
    // Where the archive's top entry lands: into an existing directory under its own name, or
    // at DEST_PATH itself.
    let (dir, rename): (PathBuf, Option<String>) = match meta {
        Some(m) if m.is_dir() => {
            if src.ends_with("/.") {
                // Copy the contents: the top entry is DEST itself.
                let parent = dst_path.parent().map(Path::to_path_buf).unwrap_or_default();
                let base = dst_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (parent, Some(base))
            } else {
                (dst_path.to_path_buf(), None)
            }
        }
        Some(_) if src_is_dir => {
            return Err(usage(format!(
                "cannot copy a directory to a file: {dst} is a file"
            )))
        }
        Some(_) | None => {
            if meta.is_none() && dst.ends_with('/') {
                return Err(usage(format!(
                    "destination directory {dst:?} must exist: create it first"
                )));
            }
            let parent = match dst_path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !parent.is_dir() {
                return Err(usage(format!(
                    "cannot copy to {dst}: {} is not a directory",
                    parent.display()
                )));
            }
            let base = dst_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (parent, Some(base))
        }
    };
    let mut counted = Counting { inner: r, n: 0 };
    {
        let mut ar = tar::Archive::new(&mut counted);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(a.archive);
        ar.set_preserve_mtime(true);
        ar.set_overwrite(true);
        for entry in ar.entries().map_err(|e| io_fail(c, e))? {
            let mut entry = entry.map_err(|e| io_fail(c, e))?;
            let path = entry.path().map_err(|e| io_fail(c, e))?.into_owned();
            let mut parts: Vec<String> = Vec::new();
            for comp in path.components() {
                match comp {
                    Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                    Component::CurDir => {}
                    _ => {
                        return Err(usage(format!(
                            "refusing archive entry {} that leaves the destination",
                            path.display()
                        )))
                    }
                }
            }
            if parts.is_empty() {
                continue;
            }
            if let Some(new) = &rename {
                parts[0] = new.clone();
            }
            let target = parts.iter().fold(dir.clone(), |p, s| p.join(s));
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_fail(c, e))?;
            }
            entry
                .unpack(&target)
                .map_err(|e| usage(format!("copying {}: {e}", target.display())))?;
        }
    }
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dst}",
            decimal_size(counted.n as f64, 3)
        );
    }
    Ok(())
}

fn cp_to(c: &Ctx, a: &CpArgs, src: &str, ct: &str, dst: &str) -> Res<()> {
    if dst.is_empty() {
        return Err(usage(format!(
            "no path given after {ct:?}: use CONTAINER:DEST_PATH"
        )));
    }
    let head = |p: &str| {
        request(
            c,
            "HEAD",
            &format!("/containers/{}/archive?path={}", enc(ct), enc(p)),
            Body::Empty,
        )
    };
    if src == "-" {
        // A tar stream on stdin goes into the directory DEST_PATH.
        let st = head(dst)?;
        if path_stat(&st).is_some_and(|s| s.mode & MODE_DIR == 0) {
            return Err(usage(format!(
                "destination \"{ct}:{dst}\" must be a directory"
            )));
        }
        let mut stdin = std::io::stdin().lock();
        request(
            c,
            "PUT",
            &format!("/containers/{}/archive?path={}", enc(ct), enc(dst)),
            Body::Stream {
                content_type: "application/x-tar",
                reader: &mut stdin,
            },
        )?;
        return Ok(());
    }
    let src_path = Path::new(src);
    let meta = if a.follow_link {
        std::fs::metadata(src_path)
    } else {
        std::fs::symlink_metadata(src_path)
    }
    .map_err(|e| usage(format!("could not read {src}: {e}")))?;
    let dst_stat = match head(dst) {
        Ok(r) => path_stat(&r),
        Err(Failure::Daemon(_)) => None,
        Err(e) => return Err(e),
    };
    let base = |p: &str| {
        Path::new(p.trim_end_matches('/'))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (dir, name) = match dst_stat {
        Some(s) if s.mode & MODE_DIR != 0 => {
            if src.ends_with("/.") {
                (parent_of(dst), base(dst))
            } else {
                (dst.to_string(), base(src))
            }
        }
        Some(_) if meta.is_dir() => {
            return Err(usage(format!(
                "cannot copy a directory to a file: {ct}:{dst} is a file"
            )))
        }
        _ => {
            if dst_stat.is_none() && dst.ends_with('/') && !meta.is_dir() {
                return Err(usage(format!(
                    "destination directory \"{ct}:{dst}\" must exist: create it first"
                )));
            }
            (parent_of(dst), base(dst))
        }
    };
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let built = if meta.is_dir() {
        builder.append_dir_all(&name, src_path)
    } else if a.follow_link {
        let mut f = std::fs::File::open(src_path)
            .map_err(|e| usage(format!("could not read {src}: {e}")))?;
        builder.append_file(&name, &mut f)
    } else {
        builder.append_path_with_name(src_path, &name)
    };
    built.map_err(|e| usage(format!("could not archive {src}: {e}")))?;
    let data = builder
        .into_inner()
        .map_err(|e| usage(format!("could not archive {src}: {e}")))?;
    let size = data.len();
    let mut body = std::io::Cursor::new(data);
    request(
        c,
        "PUT",
        &format!("/containers/{}/archive?path={}", enc(ct), enc(&dir)),
        Body::Stream {
            content_type: "application/x-tar",
            reader: &mut body,
        },
    )?;
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {ct}:{dst}",
            decimal_size(size as f64, 3)
        );
    }
    Ok(())
}

fn parent_of(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(split_cp("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_cp("/tmp/a:b"), None);
        assert_eq!(split_cp("./x:y"), None);
        assert_eq!(split_cp("file"), None);
        assert_eq!(parent_of("/tmp/x"), "/tmp");
        assert_eq!(parent_of("/x"), "/");
        assert_eq!(parent_of("/tmp/d/"), "/tmp");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("eyJhIjoxfQ==").unwrap(), br#"{"a":1}"#);
    }

    #[test]
    fn stats_arithmetic() {
        let s = serde_json::json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2_097_152, "limit": 4_194_304, "stats": {"inactive_file": 1_048_576}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "write", "value": 0}]},
            "pids_stats": {"current": 3}
        });
        let r = stats_row(&s, "web", false);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "1MiB / 4MiB");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["NetIO"], "1kB / 2kB");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
    }
}
