//! `docker stats` and `docker top`: a container's resource usage from its cgroups (v1, as
//! on hybrid hosts, and v2), found through `/proc/<pid>/cgroup`, in Docker's stats JSON.
//!
//! Every reader takes the cgroup mount root as a parameter, so tests feed fake trees.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where a container's cgroups are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// Controller name (`memory`, `cpuacct`, `cpu`, `pids`, `blkio`, ...) → its directory.
    V1(BTreeMap<String, PathBuf>),
    /// The unified directory.
    V2(PathBuf),
}

impl Cgroups {
    /// From the text of `/proc/<pid>/cgroup`, under the cgroup mount `root`
    /// (`/sys/fs/cgroup`). A v1 controller lives at `<root>/<controller><path>` (the
    /// kernel's combined mounts such as `cpu,cpuacct` have per-controller symlinks); with no
    /// v1 controller line the `0::<path>` line names `<root><path>` (v2).
    pub fn parse(proc_cgroup: &str, root: &Path) -> Option<Cgroups> {
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if ctrls.is_empty() {
                unified = Some(root.join(rel));
                continue;
            }
            for c in ctrls.split(',') {
                if c.starts_with("name=") {
                    continue;
                }
                let mut dir = root.join(c).join(rel);
                if !dir.exists() {
                    // A combined mount without the per-controller symlink.
                    dir = root.join(ctrls).join(rel);
                }
                v1.insert(c.to_string(), dir);
            }
        }
        if !v1.is_empty() {
            return Some(Cgroups::V1(v1));
        }
        unified.map(Cgroups::V2)
    }

    /// The cgroups of process `pid` on this host.
    pub fn of_pid(pid: i32) -> Option<Cgroups> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Cgroups::parse(&text, Path::new("/sys/fs/cgroup"))
    }

    /// Pids in the cgroup (v1: the `pids`, else `memory`, else any controller's
    /// `cgroup.procs`).
    pub fn pids(&self) -> Vec<i32> {
        let dir = match self {
            Cgroups::V2(d) => Some(d.clone()),
            Cgroups::V1(m) => ["pids", "memory", "cpu", "cpuacct", "devices"]
                .iter()
                .find_map(|c| m.get(*c).cloned())
                .or_else(|| m.values().next().cloned()),
        };
        let Some(dir) = dir else { return Vec::new() };
        read(&dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn num(p: &Path) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn kv(p: &Path) -> BTreeMap<String, u64> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Interface counters from `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev`, without `lo`.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetDev> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetDev {
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            },
        );
    }
    out
}

/// One `(major, minor, op, value)` blkio entry.
pub type BlkioEntry = (u64, u64, String, u64);

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// RFC 3339 time of the reading.
    pub read: String,
    pub pids_current: u64,
    /// 0: unlimited.
    pub pids_limit: u64,
    /// Nanoseconds.
    pub cpu_total: u64,
    pub cpu_kernel: u64,
    pub cpu_user: u64,
    /// v1 only.
    pub percpu: Vec<u64>,
    /// The host's CPU time in nanoseconds (`/proc/stat`).
    pub system_cpu: u64,
    pub online_cpus: u64,
    pub throttle_periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
    pub mem_usage: u64,
    pub mem_max_usage: u64,
    pub mem_limit: u64,
    pub mem_failcnt: u64,
    pub mem_stats: BTreeMap<String, u64>,
    pub io_bytes: Vec<BlkioEntry>,
    pub io_ops: Vec<BlkioEntry>,
    pub networks: BTreeMap<String, NetDev>,
}

/// USER_HZ: cpuacct.stat and /proc/stat count in these ticks.
fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Host CPU time (ns) and the online CPU count from `/proc/stat`'s text.
pub fn parse_proc_stat(text: &str, tck: u64) -> (u64, u64) {
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal (guest is inside user).
            let ticks: u64 = rest
                .split_whitespace()
                .take(8)
                .filter_map(|x| x.parse::<u64>().ok())
                .sum();
            total = ticks.saturating_mul(1_000_000_000 / tck.max(1));
        } else if l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit) {
            cpus += 1;
        }
    }
    (total, cpus)
}

/// The host's memory in bytes (`/proc/meminfo`).
fn host_memory() -> u64 {
    read(Path::new("/proc/meminfo"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0)
}

fn blkio_v1(p: &Path) -> Vec<BlkioEntry> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, v) = (f.next()?, f.next()?, f.next()?);
            let (maj, min) = dev.split_once(':')?;
            Some((
                maj.parse().ok()?,
                min.parse().ok()?,
                op.to_string(),
                v.parse().ok()?,
            ))
        })
        .collect()
}

/// v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) → (bytes, ops) in v1's shape.
fn io_stat_v2(p: &Path) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ops = Vec::new();
    for l in read(p).unwrap_or_default().lines() {
        let mut f = l.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => bytes.push((maj, min, "read".to_string(), v)),
                "wbytes" => bytes.push((maj, min, "write".to_string(), v)),
                "rios" => ops.push((maj, min, "read".to_string(), v)),
                "wios" => ops.push((maj, min, "write".to_string(), v)),
                _ => {}
            }
        }
    }
    (bytes, ops)
}

/// Reads the container's counters. `proc_root` is `/proc` (the pid's net/dev and the host's
/// stat are read under it).
pub fn sample(cg: &Cgroups, pid: i32, proc_root: &Path) -> Sample {
    let mut s = Sample {
        read: now(),
        ..Sample::default()
    };
    let tck = clk_tck();
    let (sys, cpus) = parse_proc_stat(&read(&proc_root.join("stat")).unwrap_or_default(), tck);
    s.system_cpu = sys;
    s.online_cpus = cpus;
    let host_mem = host_memory();
    match cg {
        Cgroups::V1(m) => {
            if let Some(d) = m.get("cpuacct") {
                s.cpu_total = num(&d.join("cpuacct.usage")).unwrap_or(0);
                let st = kv(&d.join("cpuacct.stat"));
                let ns = 1_000_000_000 / tck.max(1);
                s.cpu_user = st.get("user").copied().unwrap_or(0) * ns;
                s.cpu_kernel = st.get("system").copied().unwrap_or(0) * ns;
                s.percpu = read(&d.join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
            }
            if let Some(d) = m.get("cpu") {
                let st = kv(&d.join("cpu.stat"));
                s.throttle_periods = st.get("nr_periods").copied().unwrap_or(0);
                s.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
                s.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
            }
            if let Some(d) = m.get("memory") {
                s.mem_usage = num(&d.join("memory.usage_in_bytes")).unwrap_or(0);
                s.mem_max_usage = num(&d.join("memory.max_usage_in_bytes")).unwrap_or(0);
                s.mem_failcnt = num(&d.join("memory.failcnt")).unwrap_or(0);
                let lim = num(&d.join("memory.limit_in_bytes")).unwrap_or(u64::MAX);
                s.mem_limit = if host_mem > 0 && lim > host_mem {
                    host_mem
                } else {
                    lim
                };
                s.mem_stats = kv(&d.join("memory.stat"));
            }
            if let Some(d) = m.get("pids") {
                s.pids_current = num(&d.join("pids.current")).unwrap_or(0);
                s.pids_limit = num(&d.join("pids.max")).unwrap_or(0);
            }
            if let Some(d) = m.get("blkio") {
                s.io_bytes = blkio_v1(&d.join("blkio.throttle.io_service_bytes"));
                s.io_ops = blkio_v1(&d.join("blkio.throttle.io_serviced"));
            }
        }
        Cgroups::V2(d) => {
            let st = kv(&d.join("cpu.stat"));
            let g = |k: &str| st.get(k).copied().unwrap_or(0);
            s.cpu_total = g("usage_usec") * 1000;
            s.cpu_user = g("user_usec") * 1000;
            s.cpu_kernel = g("system_usec") * 1000;
            s.throttle_periods = g("nr_periods");
            s.throttled_periods = g("nr_throttled");
            s.throttled_time = g("throttled_usec") * 1000;
            s.mem_usage = num(&d.join("memory.current")).unwrap_or(0);
            s.mem_max_usage = num(&d.join("memory.peak")).unwrap_or(0);
            let lim = num(&d.join("memory.max")).unwrap_or(u64::MAX);
            s.mem_limit = if host_mem > 0 && lim > host_mem {
                host_mem
            } else {
                lim
            };
            s.mem_stats = kv(&d.join("memory.stat"));
            s.pids_current = num(&d.join("pids.current")).unwrap_or(0);
            s.pids_limit = num(&d.join("pids.max")).unwrap_or(0);
            (s.io_bytes, s.io_ops) = io_stat_v2(&d.join("io.stat"));
        }
    }
    if pid > 0 {
        s.networks =
            parse_net_dev(&read(&proc_root.join(format!("{pid}/net/dev"))).unwrap_or_default());
    }
    s
}

fn now() -> String {
    berth_time::format(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}

/// The zero time Docker sends for a missing reading.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn cpu_json(s: Option<&Sample>) -> Value {
    let d = Sample::default();
    let s = s.unwrap_or(&d);
    let mut usage = json!({
        "total_usage": s.cpu_total,
        "usage_in_kernelmode": s.cpu_kernel,
        "usage_in_usermode": s.cpu_user,
    });
    if !s.percpu.is_empty() {
        usage["percpu_usage"] = json!(s.percpu);
    }
    let mut v = json!({
        "cpu_usage": usage,
        "throttling_data": {
            "periods": s.throttle_periods,
            "throttled_periods": s.throttled_periods,
            "throttled_time": s.throttled_time,
        },
    });
    if s.system_cpu > 0 {
        v["system_cpu_usage"] = json!(s.system_cpu);
        v["online_cpus"] = json!(s.online_cpus);
    }
    v
}

fn blkio_json(e: &[BlkioEntry]) -> Value {
    if e.is_empty() {
        return Value::Null;
    }
    Value::Array(
        e.iter()
            .map(|(maj, min, op, v)| json!({"major": maj, "minor": min, "op": op, "value": v}))
            .collect(),
    )
}

/// Docker's stats JSON. `cur` None: the container is not running (zeros like Docker).
pub fn stats_json(name: &str, id: &str, cur: Option<&Sample>, prev: Option<&Sample>) -> Value {
    let d = Sample::default();
    let c = cur.unwrap_or(&d);
    let mut networks = Map::new();
    for (n, v) in &c.networks {
        networks.insert(
            n.clone(),
            json!({
                "rx_bytes": v.rx_bytes, "rx_packets": v.rx_packets,
                "rx_errors": v.rx_errors, "rx_dropped": v.rx_dropped,
                "tx_bytes": v.tx_bytes, "tx_packets": v.tx_packets,
                "tx_errors": v.tx_errors, "tx_dropped": v.tx_dropped,
            }),
        );
    }
    let memory = if cur.is_some() {
        let mut m = json!({
            "usage": c.mem_usage,
            "stats": c.mem_stats,
            "limit": c.mem_limit,
        });
        if c.mem_max_usage > 0 {
            m["max_usage"] = json!(c.mem_max_usage);
        }
        if c.mem_failcnt > 0 {
            m["failcnt"] = json!(c.mem_failcnt);
        }
        m
    } else {
        json!({})
    };
    let mut v = json!({
        "name": format!("/{}", name.trim_start_matches('/')),
        "id": id,
        "read": cur.map(|s| s.read.as_str()).unwrap_or(ZERO_TIME),
        "preread": prev.map(|s| s.read.as_str()).unwrap_or(ZERO_TIME),
        "pids_stats": if cur.is_some() {
            let mut p = json!({"current": c.pids_current});
            if c.pids_limit > 0 { p["limit"] = json!(c.pids_limit); }
            p
        } else { json!({}) },
        "blkio_stats": {
            "io_service_bytes_recursive": blkio_json(&c.io_bytes),
            "io_serviced_recursive": blkio_json(&c.io_ops),
            "io_queue_recursive": Value::Null,
            "io_service_time_recursive": Value::Null,
            "io_wait_time_recursive": Value::Null,
            "io_merged_recursive": Value::Null,
            "io_time_recursive": Value::Null,
            "sectors_recursive": Value::Null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur),
        "precpu_stats": cpu_json(prev),
        "memory_stats": memory,
    });
    if !networks.is_empty() {
        v["networks"] = Value::Object(networks);
    }
    v
}

/// `docker top`: runs `ps <ps_args>` on the host and keeps the rows whose PID is in `pids`.
/// Returns Docker's `{Titles, Processes}`.
pub fn top(ps_args: &str, pids: &[i32]) -> Result<Value, String> {
    let args: Vec<&str> = ps_args.split_whitespace().collect();
    let out = std::process::Command::new("ps")
        .args(if args.is_empty() { vec!["-ef"] } else { args })
        .output()
        .map_err(|e| format!("running ps: {e} (is procps installed?)"))?;
    if !out.status.success() {
        return Err(format!(
            "ps {ps_args}: {}: check ps_args",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_ps(&String::from_utf8_lossy(&out.stdout), pids)
}

/// Filters `ps` output to `pids`, like Docker: the PID column is found in the header and the
/// last column keeps its spaces (the command line).
pub fn parse_ps(text: &str, pids: &[i32]) -> Result<Value, String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| "Couldn't find PID field in ps output: include a PID column in ps_args (e.g. -ef or aux)".to_string())?;
    let n = titles.len();
    let mut procs = Vec::new();
    for l in lines {
        if l.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<String> = Vec::with_capacity(n);
        let mut rest = l.trim_start();
        for _ in 0..n.saturating_sub(1) {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            procs.push(fields);
        }
    }
    Ok(json!({ "Titles": titles, "Processes": procs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn v1_hybrid_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let cg = "12:pids:/berth/c1\n11:memory:/berth/c1\n4:cpu,cpuacct:/berth/c1\n\
                  3:blkio:/berth/c1\n1:name=systemd:/x\n0::/unified-path\n";
        write(r, "memory/berth/c1/memory.usage_in_bytes", "4096000\n");
        write(
            r,
            "memory/berth/c1/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(r, "memory/berth/c1/memory.max_usage_in_bytes", "5000000\n");
        write(
            r,
            "memory/berth/c1/memory.stat",
            "cache 1000\nrss 2000\ntotal_inactive_file 300\n",
        );
        write(r, "memory/berth/c1/cgroup.procs", "10\n11\n");
        write(r, "pids/berth/c1/pids.current", "2\n");
        write(r, "pids/berth/c1/pids.max", "max\n");
        write(r, "pids/berth/c1/cgroup.procs", "10\n11\n");
        // The combined mount, without per-controller symlinks.
        write(r, "cpu,cpuacct/berth/c1/cpuacct.usage", "123456789\n");
        write(
            r,
            "cpu,cpuacct/berth/c1/cpuacct.stat",
            "user 10\nsystem 5\n",
        );
        write(
            r,
            "cpu,cpuacct/berth/c1/cpuacct.usage_percpu",
            "100000000 23456789 \n",
        );
        write(
            r,
            "cpu,cpuacct/berth/c1/cpu.stat",
            "nr_periods 7\nnr_throttled 2\nthrottled_time 99\n",
        );
        write(
            r,
            "blkio/berth/c1/blkio.throttle.io_service_bytes",
            "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
        );
        let c = Cgroups::parse(cg, r).unwrap();
        let Cgroups::V1(m) = &c else { panic!("{c:?}") };
        assert_eq!(m["memory"], r.join("memory/berth/c1"));
        assert_eq!(m["cpuacct"], r.join("cpu,cpuacct/berth/c1"));
        assert!(!m.contains_key("name=systemd"));
        assert_eq!(c.pids(), vec![10, 11]);
        let proc_root = r.join("proc");
        write(&proc_root, "stat", "cpu  100 0 50 800 10 0 0 0 0 0\ncpu0 50 0 25 400 5 0 0 0 0 0\ncpu1 50 0 25 400 5 0 0 0 0 0\n");
        write(
            &proc_root,
            "42/net/dev",
            "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: 1500 12 1 2 0 0 0 0 900 9 3 4 0 0 0 0\n",
        );
        let s = sample(&c, 42, &proc_root);
        let tck = clk_tck();
        assert_eq!(s.cpu_total, 123456789);
        assert_eq!(s.cpu_user, 10 * (1_000_000_000 / tck));
        assert_eq!(s.percpu, vec![100000000, 23456789]);
        assert_eq!(s.throttled_periods, 2);
        assert_eq!(s.mem_usage, 4096000);
        // Unlimited: the host's memory.
        assert!(s.mem_limit > 0 && s.mem_limit < 9223372036854771712);
        assert_eq!(s.mem_stats["rss"], 2000);
        assert_eq!(s.pids_current, 2);
        assert_eq!(s.pids_limit, 0);
        assert_eq!(s.io_bytes.len(), 2);
        assert_eq!(s.system_cpu, 960 * (1_000_000_000 / tck));
        assert_eq!(s.online_cpus, 2);
        assert_eq!(s.networks.len(), 1);
        assert_eq!(s.networks["eth0"].rx_bytes, 1500);
        assert_eq!(s.networks["eth0"].tx_dropped, 4);
        let j = stats_json("c1", "abc", Some(&s), None);
        assert_eq!(j["name"], "/c1");
        assert_eq!(j["memory_stats"]["usage"], 4096000);
        assert_eq!(j["cpu_stats"]["cpu_usage"]["percpu_usage"][1], 23456789);
        assert_eq!(j["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(j["preread"], ZERO_TIME);
        assert_eq!(j["networks"]["eth0"]["tx_packets"], 9);
        assert_eq!(
            j["blkio_stats"]["io_service_bytes_recursive"][1]["op"],
            "Write"
        );
    }

    #[test]
    fn v2_unified_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let cg = "0::/system.slice/berth-c2.scope\n";
        let dir = "system.slice/berth-c2.scope";
        write(
            r,
            &format!("{dir}/cpu.stat"),
            "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 40\n",
        );
        write(r, &format!("{dir}/memory.current"), "8192\n");
        write(r, &format!("{dir}/memory.max"), "1048576\n");
        write(
            r,
            &format!("{dir}/memory.stat"),
            "anon 4096\nfile 2048\ninactive_file 1024\n",
        );
        write(r, &format!("{dir}/pids.current"), "3\n");
        write(r, &format!("{dir}/pids.max"), "100\n");
        write(
            r,
            &format!("{dir}/io.stat"),
            "8:16 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        write(r, &format!("{dir}/cgroup.procs"), "77\n");
        let c = Cgroups::parse(cg, r).unwrap();
        assert_eq!(c, Cgroups::V2(r.join(dir)));
        assert_eq!(c.pids(), vec![77]);
        let s = sample(&c, 0, &r.join("noproc"));
        assert_eq!(s.cpu_total, 2_000_000);
        assert_eq!(s.cpu_user, 1_500_000);
        assert_eq!(s.cpu_kernel, 500_000);
        assert_eq!(s.throttled_time, 40_000);
        assert_eq!(s.mem_usage, 8192);
        assert_eq!(s.mem_limit, 1048576);
        assert_eq!(s.mem_stats["inactive_file"], 1024);
        assert_eq!(s.pids_limit, 100);
        assert!(s.percpu.is_empty());
        assert_eq!(
            s.io_bytes,
            vec![(8, 16, "read".into(), 512), (8, 16, "write".into(), 1024)]
        );
        assert_eq!(s.io_ops[1].3, 2);
        let j = stats_json("/c2", "id2", Some(&s), Some(&s));
        assert_eq!(j["name"], "/c2");
        assert!(j["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert_eq!(j["pids_stats"]["limit"], 100);
        assert_eq!(j["precpu_stats"]["cpu_usage"]["total_usage"], 2_000_000);
    }

    #[test]
    fn stopped_container_is_zeros() {
        let j = stats_json("c", "id", None, None);
        assert_eq!(j["read"], ZERO_TIME);
        assert_eq!(j["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(j["memory_stats"], json!({}));
        assert!(j.get("networks").is_none());
    }

    #[test]
    fn ps_rows_are_filtered_by_pid() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                    root         500       1  0 10:01 ?        00:00:00 sleep 1000 --long arg\n";
        let v = parse_ps(text, &[500]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sleep 1000 --long arg");
        let e = parse_ps("USER COMMAND\nroot x\n", &[1]).unwrap_err();
        assert!(e.contains("PID"), "{e}");
    }
}
