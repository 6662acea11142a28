//! Engine-wide commands: version, info, inspect (any object), events, and `system df/prune`.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::images::deleted_images;
use super::ops::{
    container_raw, inspect_each, prune_request, render_line, PRUNE_BUILD_CACHE, PRUNE_CONTAINERS,
    PRUNE_NETWORKS, PRUNE_VOLUMES,
};
use super::raw::{enc, filters_query, request, Body};
use super::{confirm, usage, Ctx, Failure, Res};
use crate::format::{ago, bytes_size, human_size4, now_unix, short_id};
use crate::template::{self, Format};

/// Engine-wide commands at the top level.
#[derive(Subcommand)]
pub enum TopCmd {
    /// Show the berth and engine versions
    Version(FormatArg),
    /// Display system-wide information
    Info(FormatArg),
    /// Return low-level information on containers, images, volumes or networks
    Inspect(InspectArgs),
    /// Get real time events from the server
    Events(EventsArgs),
}

/// `berth system ...`.
#[derive(Subcommand)]
pub enum SystemCmd {
    /// Display system-wide information
    Info(FormatArg),
    /// Show docker disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Get real time events from the server
    Events(EventsArgs),
}

#[derive(Args)]
pub struct FormatArg {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    /// Only inspect objects of the given type (container, image, volume, network)
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub async fn dispatch_top(c: &Ctx, cmd: TopCmd) -> Res<()> {
    match cmd {
        TopCmd::Version(f) => version(c, f.format.as_deref()),
        TopCmd::Info(f) => info(c, f.format.as_deref()),
        TopCmd::Inspect(a) => inspect(c, a),
        TopCmd::Events(a) => events(c, a),
    }
}

pub async fn dispatch(c: &Ctx, cmd: SystemCmd) -> Res<()> {
    match cmd {
        SystemCmd::Info(f) => info(c, f.format.as_deref()),
        SystemCmd::Df(a) => df(c, a),
        SystemCmd::Prune(a) => prune(c, a),
        SystemCmd::Events(a) => events(c, a),
    }
}

fn client_info() -> Value {
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "1.45",
        "APIVersion": "1.45",
        "DefaultAPIVersion": "1.45",
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
        "Context": "default",
    })
}

fn version(c: &Ctx, format: Option<&str>) -> Res<()> {
    let server = request(c, "GET", "/version", Body::Empty).and_then(|r| r.json());
    if let Some(f) = format.filter(|f| !f.is_empty()) {
        let mut s = server?;
        if let Some(api) = s.get("ApiVersion").cloned() {
            s["APIVersion"] = api;
        }
        println!(
            "{}",
            render_line(f, &json!({"Client": client_info(), "Server": s}))?
        );
        return Ok(());
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       1.45");
    println!(
        " OS/Arch:           {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(" Context:           default");
    let v = server?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    println!();
    println!(
        "Server: {}",
        v["Platform"]["Name"].as_str().unwrap_or_default()
    );
    println!(" Engine:");
    println!("  Version:          {}", s("Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s("ApiVersion"),
        s("MinAPIVersion")
    );
    if !s("GitCommit").is_empty() {
        println!("  Git commit:       {}", s("GitCommit"));
    }
    println!("  OS/Arch:          {}/{}", s("Os"), s("Arch"));
    println!("  Kernel version:   {}", s("KernelVersion"));
    println!(
        "  Experimental:     {}",
        v["Experimental"].as_bool().unwrap_or(false)
    );
    Ok(())
}

fn info(c: &Ctx, format: Option<&str>) -> Res<()> {
    let mut i = request(c, "GET", "/info", Body::Empty)?.json()?;
    if let Some(f) = format.filter(|f| !f.is_empty()) {
        i["ClientInfo"] = client_info();
        println!("{}", render_line(f, &i)?);
        return Ok(());
    }
    let n = |k: &str| i[k].as_i64().unwrap_or(0);
    let s = |k: &str| match &i[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let b = |k: &str| i[k].as_bool().unwrap_or(false);
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", n("Containers"));
    println!("  Running: {}", n("ContainersRunning"));
    println!("  Paused: {}", n("ContainersPaused"));
    println!("  Stopped: {}", n("ContainersStopped"));
    println!(" Images: {}", n("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        if let Some([k, v]) = pair.as_array().map(Vec::as_slice) {
            println!(
                "  {}: {}",
                k.as_str().unwrap_or_default(),
                v.as_str().unwrap_or_default()
            );
        }
    }
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    let plugins = &i["Plugins"];
    println!(" Plugins:");
    for (k, title) in [("Volume", "Volume"), ("Network", "Network"), ("Log", "Log")] {
        let list: Vec<&str> = plugins[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!("  {title}: {}", list.join(" "));
    }
    let runtimes: Vec<String> = i["Runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    println!(" Runtimes: {}", runtimes.join(" "));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", n("NCPU"));
    println!(" Total Memory: {}", bytes_size(n("MemTotal") as f64));
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", b("Debug"));
    println!(" Experimental: {}", b("ExperimentalBuild"));
    let insecure: Vec<&str> = i["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !insecure.is_empty() {
        println!(" Insecure Registries:");
        for r in insecure {
            println!("  {r}");
        }
    }
    println!(" Live Restore Enabled: {}", b("LiveRestoreEnabled"));
    for w in i["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or_default());
    }
    Ok(())
}

/// `inspect`: any object by name or ID, tried as container, image, network, volume (docker's
/// order), or only the `--type` given.
fn inspect(c: &Ctx, a: InspectArgs) -> Res<()> {
    let kinds: Vec<&str> = match a.kind.as_deref() {
        None | Some("") => vec!["container", "image", "network", "volume"],
        Some(k @ ("container" | "image" | "network" | "volume")) => vec![k],
        Some(k) => {
            return Err(usage(format!(
                "\"{k}\" is not a valid value for --type: use container, image, network or volume"
            )))
        }
    };
    let size = a.size;
    let single = kinds.len() == 1;
    inspect_each(&a.names, a.format.as_deref(), |name| {
        for k in &kinds {
            let path = match *k {
                // The container lookup takes `-s`; an empty path marks it.
                "container" => String::new(),
                "image" => format!("/images/{}/json", enc(name)),
                "network" => format!("/networks/{}", enc(name)),
                _ => format!("/volumes/{}", enc(name)),
            };
            let got = if path.is_empty() {
                container_raw(c, name, size)
            } else {
                request(c, "GET", &path, Body::Empty).and_then(|r| r.bytes())
            };
            match got {
                Ok(raw) => return Ok(raw),
                Err(Failure::Daemon(m)) if single => return Err(Failure::Daemon(m)),
                Err(Failure::Daemon(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(usage(format!("No such object: {name}")))
    })
}

/// docker's `GetTimestamp`: a unix time passes through; a Go duration is that long before
/// now; an RFC 3339 time or date becomes unix seconds.
pub fn timestamp(flag: &str, v: &str, now: SystemTime) -> Res<String> {
    let bad = || {
        usage(format!(
            "invalid value for {flag}: {v:?}: use a unix time, an RFC 3339 time \
             (2006-01-02T15:04:05Z) or a duration before now (10m, 1h30m)"
        ))
    };
    if v.is_empty() {
        return Err(bad());
    }
    if v.chars().all(|ch| ch.is_ascii_digit() || ch == '.') && v.matches('.').count() <= 1 {
        return Ok(v.to_string());
    }
    if let Some(d) = go_duration(v) {
        let t = now
            .checked_sub(d)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        return Ok(format!("{}.{:09}", t.as_secs(), t.subsec_nanos()));
    }
    let full = match v.len() {
        10 => format!("{v}T00:00:00Z"),
        19 => format!("{v}Z"),
        _ => v.to_string(),
    };
    berth_time::parse_unix(&full)
        .map(|s| s.to_string())
        .ok_or_else(bad)
}

/// Go's `time.ParseDuration` for positive durations ("1h30m", "10s", "250ms").
fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|ch: char| ch.is_ascii_digit() || ch == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// One event as docker prints it:
/// `2024-01-01T00:00:00.000000000Z container start <id> (image=busybox, name=x)`.
pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"].as_u64().unwrap_or(0);
    let t = if nanos != 0 {
        Duration::from_nanos(nanos)
    } else {
        Duration::from_secs(e["time"].as_u64().unwrap_or(0))
    };
    let mut line = format!(
        "{} {} {} {}",
        berth_time::format(t),
        e["Type"].as_str().unwrap_or_default(),
        e["Action"].as_str().unwrap_or_default(),
        e["Actor"]["ID"].as_str().unwrap_or_default()
    );
    if let Some(attrs) = e["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut kv: Vec<(&String, String)> = attrs
            .iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        kv.sort();
        let parts: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line
}

fn events(c: &Ctx, a: EventsArgs) -> Res<()> {
    let now = SystemTime::now();
    let mut q = String::new();
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", enc(&timestamp("--since", s, now)?)));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", enc(&timestamp("--until", u, now)?)));
    }
    q.push_str(&filters_query(&a.filter)?);
    let tmpl = a.format.filter(|f| !f.is_empty());
    let r = request(
        c,
        "GET",
        &format!("/events?{}", q.trim_start_matches('&')),
        Body::Empty,
    )?;
    let stream = serde_json::Deserializer::from_reader(r).into_iter::<Value>();
    let mut out = std::io::stdout();
    for e in stream {
        let e = match e {
            Ok(e) => e,
            Err(e) if e.is_eof() => break,
            Err(e) => return Err(usage(format!("reading events from the engine: {e}"))),
        };
        let line = match &tmpl {
            Some(t) => render_line(t, &e)?,
            None => event_line(&e),
        };
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// system df

const DF_TITLES: [(&str, &str); 5] = [
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

fn reclaim_text(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size4(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size4(reclaimable as f64)
    }
}

/// The four `system df` rows from the engine's `/system/df` answer.
pub fn df_rows(v: &Value) -> Vec<Value> {
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let i = |x: &Value| x.as_i64().unwrap_or(0);
    let images = arr("Images");
    let layers = i(&v["LayersSize"]);
    let mut used = 0;
    for im in &images {
        if i(&im["Containers"]) > 0 && i(&im["Size"]) >= 0 && i(&im["SharedSize"]) >= 0 {
            used += i(&im["Size"]) - i(&im["SharedSize"]);
        }
    }
    let active_images = images.iter().filter(|m| i(&m["Containers"]) > 0).count();

    let containers = arr("Containers");
    let is_active = |ct: &Value| {
        let s = ct["State"].as_str().unwrap_or_default();
        s.contains("running") || s.contains("paused") || s.contains("restarting")
    };
    let ct_size: i64 = containers.iter().map(|ct| i(&ct["SizeRw"])).sum();
    let ct_reclaim: i64 = containers
        .iter()
        .filter(|ct| !is_active(ct))
        .map(|ct| i(&ct["SizeRw"]))
        .sum();

    let volumes = arr("Volumes");
    let vsize = |vol: &Value| i(&vol["UsageData"]["Size"]).max(0);
    let vref = |vol: &Value| i(&vol["UsageData"]["RefCount"]);
    let vol_size: i64 = volumes.iter().map(vsize).sum();
    let vol_reclaim: i64 = volumes.iter().filter(|x| vref(x) == 0).map(vsize).sum();

    let cache = arr("BuildCache");
    let in_use = |b: &Value| b["InUse"].as_bool().unwrap_or(false);
    let shared = |b: &Value| b["Shared"].as_bool().unwrap_or(false);
    let cache_size: i64 = cache
        .iter()
        .filter(|b| !shared(b))
        .map(|b| i(&b["Size"]))
        .sum();
    let cache_reclaim: i64 = cache
        .iter()
        .filter(|b| !in_use(b) && !shared(b))
        .map(|b| i(&b["Size"]))
        .sum();

    let row = |t: &str, total: usize, active: usize, size: i64, reclaim: String| {
        json!({
            "Type": t,
            "TotalCount": total.to_string(),
            "Active": active.to_string(),
            "Size": human_size4(size as f64),
            "Reclaimable": reclaim,
        })
    };
    vec![
        row(
            "Images",
            images.len(),
            active_images,
            layers,
            reclaim_text(layers - used, layers),
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| is_active(c)).count(),
            ct_size,
            reclaim_text(ct_reclaim, ct_size),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|x| vref(x) > 0).count(),
            vol_size,
            reclaim_text(vol_reclaim, vol_size),
        ),
        row(
            "Build Cache",
            cache.len(),
            cache.iter().filter(|b| in_use(b)).count(),
            cache_size,
            human_size4(cache_reclaim as f64),
        ),
    ]
}

fn df(c: &Ctx, a: DfArgs) -> Res<()> {
    let v = request(c, "GET", "/system/df", Body::Empty)?.json()?;
    let format = Format::parse(a.format.as_deref());
    if !a.verbose {
        let out = template::print(&format, &df_rows(&v), &DF_TITLES, &DF_TITLES).map_err(usage)?;
        print!("{out}");
        return Ok(());
    }
    let now = now_unix();
    let i = |x: &Value| x.as_i64().unwrap_or(0);
    let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
    let size = |n: i64| human_size4(n as f64);

    println!("Images space usage:\n");
    let mut rows = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]
    .map(String::from)
    .to_vec()];
    for im in v["Images"].as_array().into_iter().flatten() {
        let tags: Vec<String> = im["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        let tags = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
            let shared = i(&im["SharedSize"]);
            rows.push(vec![
                repo.to_string(),
                tag.to_string(),
                short_id(&s(&im["Id"])),
                ago(i(&im["Created"]), now),
                size(i(&im["Size"])),
                size(shared.max(0)),
                size(i(&im["Size"]) - shared.max(0)),
                i(&im["Containers"]).to_string(),
            ]);
        }
    }
    print!("{}", crate::format::table(&rows));

    println!("\nContainers space usage:\n");
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for ct in v["Containers"].as_array().into_iter().flatten() {
        let vols = ct["Mounts"]
            .as_array()
            .map(|m| m.iter().filter(|x| x["Type"] == "volume").count())
            .unwrap_or(0);
        let name = ct["Names"][0].as_str().unwrap_or_default();
        rows.push(vec![
            short_id(&s(&ct["Id"])),
            s(&ct["Image"]),
            crate::format::go_quote(&crate::format::ellipsis(&s(&ct["Command"]), 20)),
            vols.to_string(),
            size(i(&ct["SizeRw"])),
            ago(i(&ct["Created"]), now),
            s(&ct["Status"]),
            name.trim_start_matches('/').to_string(),
        ]);
    }
    print!("{}", crate::format::table(&rows));

    println!("\nLocal Volumes space usage:\n");
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for vol in v["Volumes"].as_array().into_iter().flatten() {
        rows.push(vec![
            s(&vol["Name"]),
            i(&vol["UsageData"]["RefCount"]).to_string(),
            size(i(&vol["UsageData"]["Size"]).max(0)),
        ]);
    }
    print!("{}", crate::format::table(&rows));

    println!("\nBuild cache usage: {}\n", size(0));
    let rows = vec![[
        "CACHE ID",
        "CACHE TYPE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USAGE",
        "SHARED",
    ]
    .map(String::from)
    .to_vec()];
    print!("{}", crate::format::table(&rows));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// system prune

/// docker's `system prune` warning for these flags.
pub fn prune_warning(all: bool, volumes: bool, filters: &[String]) -> String {
    let mut w = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if volumes {
        w.push("all anonymous volumes not used by at least one container");
    }
    w.push(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    w.push(if all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut out = "WARNING! This will remove:\n".to_string();
    for x in w {
        out.push_str(&format!("  - {x}\n"));
    }
    if !filters.is_empty() {
        out.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in filters {
            out.push_str(&format!("  - {f}\n"));
        }
    }
    out
}

fn prune(c: &Ctx, a: SystemPruneArgs) -> Res<()> {
    let q = filters_query(&a.filter)?;
    if !a.force && !confirm(&prune_warning(a.all, a.volumes, &a.filter)) {
        return Ok(());
    }
    let mut space = 0.0;
    let mut report = |out: String, s: f64| {
        space += s;
        if !out.is_empty() {
            println!("{out}");
        }
    };
    let q = format!("?{q}");
    let (o, s) = prune_request(c, &PRUNE_CONTAINERS, &q)?;
    report(o, s);
    let (o, _) = prune_request(c, &PRUNE_NETWORKS, &q)?;
    report(o, 0.0);
    if a.volumes {
        let (o, s) = prune_request(c, &PRUNE_VOLUMES, &q)?;
        report(o, s);
    }
    let mut img_filters = a.filter.clone();
    img_filters.push(format!("dangling={}", !a.all));
    let iq = filters_query(&img_filters)?;
    let r = request(c, "POST", &format!("/images/prune?{iq}"), Body::Empty)?.json()?;
    let text = |d: &Value, k: &str| d[k].as_str().map(String::from);
    let lines = deleted_images(
        r["ImagesDeleted"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| (text(d, "Untagged"), text(d, "Deleted"))),
    );
    let s = r["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    if lines.is_empty() {
        report(String::new(), 0.0);
    } else {
        report(lines, s);
    }
    let bq = if a.all { "?all=1" } else { "" };
    if let Ok((o, s)) = prune_request(c, &PRUNE_BUILD_CACHE, bq) {
        report(o, s);
    }
    println!("Total reclaimed space: {}", human_size4(space));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(timestamp("--since", "12345", now).unwrap(), "12345");
        assert_eq!(
            timestamp("--since", "10m", now).unwrap(),
            "999400.000000000"
        );
        assert_eq!(
            timestamp("--since", "1h30m", now).unwrap(),
            "994600.000000000"
        );
        assert_eq!(
            timestamp("--until", "2024-01-01T00:00:00Z", now).unwrap(),
            "1704067200"
        );
        assert_eq!(
            timestamp("--until", "2024-01-01", now).unwrap(),
            "1704067200"
        );
        assert!(timestamp("--since", "yesterday", now).is_err());
    }

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "busybox"}},
            "time": 1_704_067_200u64, "timeNano": 1_704_067_200_000_000_001u64});
        assert_eq!(
            event_line(&e),
            "2024-01-01T00:00:00.000000001Z container start abc (image=busybox, name=x)"
        );
    }

    #[test]
    fn prune_prompt() {
        assert_eq!(
            prune_warning(false, true, &[]),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all dangling images\n  - unused build cache\n"
        );
    }

    #[test]
    fn df_arithmetic() {
        let v = json!({
            "LayersSize": 1000,
            "Images": [{"Containers": 1, "Size": 1000, "SharedSize": 0}, {"Containers": 0, "Size": 0, "SharedSize": 0}],
            "Containers": [{"State": "running", "SizeRw": 10}, {"State": "exited", "SizeRw": 30}],
            "Volumes": [{"UsageData": {"Size": 100, "RefCount": 0}}],
            "BuildCache": []
        });
        let r = df_rows(&v);
        assert_eq!(r[0]["TotalCount"], "2");
        assert_eq!(r[0]["Active"], "1");
        assert_eq!(r[0]["Reclaimable"], "0B (0%)");
        assert_eq!(r[1]["Size"], "40B");
        assert_eq!(r[1]["Reclaimable"], "30B (75%)");
        assert_eq!(r[2]["Reclaimable"], "100B (100%)");
        assert_eq!(r[3]["Size"], "0B");
    }
}
