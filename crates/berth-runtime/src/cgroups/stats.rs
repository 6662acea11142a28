//! Resource statistics shaped like the `data` object of runc's `events --stats`.
//! Times are nanoseconds, sizes bytes; "unlimited" limits are `u64::MAX`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::fs::{parse_u64, read_flat_keyed, read_opt, read_u64};
use crate::Result;

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct CpuUsage {
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Throttling {
    pub periods: u64,
    #[serde(rename = "throttledPeriods")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime")]
    pub throttled_time: u64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryStats {
    /// Page cache (v1 `cache`, v2 `file` in memory.stat).
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory + swap, as v1's memsw counters (v2 values are summed to match).
    pub swap: MemoryEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<MemoryEntry>,
    #[serde(rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<MemoryEntry>,
    /// memory.stat verbatim.
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    /// 0 when unlimited (as runc reports it).
    pub limit: u64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct BlkioStats {
    #[serde(rename = "ioServiceBytesRecursive")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

fn parse_list(path: &Path, s: &str) -> Result<Vec<u64>> {
    s.split_whitespace().map(|v| parse_u64(path, v)).collect()
}

fn split_dev(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn pids_stats(dir: &Path) -> Result<PidsStats> {
    let limit = read_u64(dir, "pids.max")?;
    Ok(PidsStats {
        current: read_u64(dir, "pids.current")?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// CPU from the v1 `cpuacct` (usage) and `cpu` (throttling) directories.
pub(crate) fn v1_cpu(cpuacct: Option<&Path>, cpu: Option<&Path>) -> Result<CpuStats> {
    let mut out = CpuStats::default();
    if let Some(d) = cpuacct {
        let u = &mut out.usage;
        u.total = read_u64(d, "cpuacct.usage")?;
        for (file, dest) in [
            ("cpuacct.usage_percpu", &mut u.percpu),
            ("cpuacct.usage_percpu_sys", &mut u.percpu_kernel),
            ("cpuacct.usage_percpu_user", &mut u.percpu_user),
        ] {
            if let Some(s) = read_opt(d, file)? {
                *dest = parse_list(&d.join(file), &s)?;
            }
        }
        if read_opt(d, "cpuacct.usage_user")?.is_some() {
            u.user = read_u64(d, "cpuacct.usage_user")?;
            u.kernel = read_u64(d, "cpuacct.usage_sys")?;
        } else {
            let st = read_flat_keyed(d, "cpuacct.stat")?;
            let ns_per_tick = 1_000_000_000 / clock_ticks();
            u.user = st.get("user").copied().unwrap_or(0) * ns_per_tick;
            u.kernel = st.get("system").copied().unwrap_or(0) * ns_per_tick;
        }
    }
    if let Some(d) = cpu {
        let st = read_flat_keyed(d, "cpu.stat")?;
        out.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    Ok(out)
}

fn v1_mem_entry(d: &Path, prefix: &str) -> Result<Option<MemoryEntry>> {
    let usage_file = format!("{prefix}usage_in_bytes");
    if read_opt(d, &usage_file)?.is_none() {
        return Ok(None);
    }
    Ok(Some(MemoryEntry {
        usage: read_u64(d, &usage_file)?,
        max: read_u64(d, &format!("{prefix}max_usage_in_bytes"))?,
        limit: read_u64(d, &format!("{prefix}limit_in_bytes"))?,
        failcnt: read_u64(d, &format!("{prefix}failcnt"))?,
    }))
}

pub(crate) fn v1_memory(d: &Path) -> Result<MemoryStats> {
    let raw = read_flat_keyed(d, "memory.stat")?;
    Ok(MemoryStats {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: v1_mem_entry(d, "memory.")?.unwrap_or_default(),
        swap: v1_mem_entry(d, "memory.memsw.")?.unwrap_or_default(),
        kernel: v1_mem_entry(d, "memory.kmem.")?,
        kernel_tcp: v1_mem_entry(d, "memory.kmem.tcp.")?,
        raw,
    })
}

pub(crate) fn v1_pids(d: &Path) -> Result<PidsStats> {
    pids_stats(d)
}

pub(crate) fn v1_blkio(d: &Path) -> Result<BlkioStats> {
    let parse = |file: &str| -> Result<Vec<BlkioEntry>> {
        let Some(s) = read_opt(d, file)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for line in s.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [dev, op, value] = f[..] {
                if let (Some((major, minor)), Ok(value)) = (split_dev(dev), value.parse()) {
                    out.push(BlkioEntry {
                        major,
                        minor,
                        op: op.to_string(),
                        value,
                    });
                }
            }
        }
        Ok(out)
    };
    Ok(BlkioStats {
        io_service_bytes_recursive: parse("blkio.throttle.io_service_bytes_recursive")?,
        io_serviced_recursive: parse("blkio.throttle.io_serviced_recursive")?,
    })
}

fn hugetlb_sizes(d: &Path, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|r| r.strip_suffix(suffix))
            {
                if !size.contains('.') {
                    out.push(size.to_string());
                }
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn v1_hugetlb(d: &Path) -> Result<BTreeMap<String, HugetlbStats>> {
    let mut out = BTreeMap::new();
    for size in hugetlb_sizes(d, ".usage_in_bytes") {
        out.insert(
            size.clone(),
            HugetlbStats {
                usage: read_u64(d, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: read_u64(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: read_u64(d, &format!("hugetlb.{size}.failcnt"))?,
            },
        );
    }
    Ok(out)
}

/// All statistics from a v2 cgroup directory.
pub(crate) fn v2_all(d: &Path) -> Result<Stats> {
    let cpu = read_flat_keyed(d, "cpu.stat")?;
    let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    let cpu = CpuStats {
        usage: CpuUsage {
            total: g(&cpu, "usage_usec") * 1000,
            user: g(&cpu, "user_usec") * 1000,
            kernel: g(&cpu, "system_usec") * 1000,
            ..Default::default()
        },
        throttling: Throttling {
            periods: g(&cpu, "nr_periods"),
            throttled_periods: g(&cpu, "nr_throttled"),
            throttled_time: g(&cpu, "throttled_usec") * 1000,
        },
    };
    let raw = read_flat_keyed(d, "memory.stat")?;
    let events = read_flat_keyed(d, "memory.events")?;
    let usage = MemoryEntry {
        usage: read_u64(d, "memory.current")?,
        limit: read_u64(d, "memory.max")?,
        max: read_u64(d, "memory.peak")?,
        failcnt: g(&events, "max"),
    };
    let swap = if read_opt(d, "memory.swap.current")?.is_some() {
        MemoryEntry {
            usage: read_u64(d, "memory.swap.current")?.saturating_add(usage.usage),
            limit: read_u64(d, "memory.swap.max")?.saturating_add(usage.limit),
            max: 0,
            failcnt: g(&read_flat_keyed(d, "memory.swap.events")?, "max"),
        }
    } else {
        MemoryEntry::default()
    };
    let memory = MemoryStats {
        cache: g(&raw, "file"),
        usage,
        swap,
        kernel: None,
        kernel_tcp: None,
        raw,
    };
    let mut blkio = BlkioStats::default();
    if let Some(s) = read_opt(d, "io.stat")? {
        for line in s.lines() {
            let mut it = line.split_whitespace();
            let Some((major, minor)) = it.next().and_then(split_dev) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse::<u64>() else {
                    continue;
                };
                let (list, op) = match k {
                    "rbytes" => (&mut blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }
    let mut hugetlb = BTreeMap::new();
    for size in hugetlb_sizes(d, ".current") {
        let ev = read_flat_keyed(d, &format!("hugetlb.{size}.events"))?;
        hugetlb.insert(
            size.clone(),
            HugetlbStats {
                usage: read_u64(d, &format!("hugetlb.{size}.current"))?,
                max: read_u64(d, &format!("hugetlb.{size}.max"))?,
                failcnt: g(&ev, "max"),
            },
        );
    }
    Ok(Stats {
        cpu,
        memory,
        pids: pids_stats(d)?,
        blkio,
        hugetlb,
    })
}
