//! Applying `linux.resources` to a cgroup v2 (unified) directory.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::devices;
use super::fs::{exists, read_opt, write};
use crate::{Error, Result};

/// cgroup v1 `cpu.shares` (2..=262144, default 1024) to v2 `cpu.weight` (1..=10000, default 100).
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio weight (10..=1000) to v2 `io.weight` (1..=10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    let w = u64::from(weight).clamp(10, 1000);
    1 + ((w - 10) * 9999) / 990
}

/// OCI `memory.swap` is memory+swap; v2 `memory.swap.max` is swap alone.
pub fn swap_max(limit: Option<i64>, swap: i64) -> Result<String> {
    if swap < 0 {
        return Ok("max".into());
    }
    match limit {
        Some(l) if l > 0 => {
            if swap < l {
                Err(Error::InvalidArgument(format!(
                    "linux.resources.memory.swap ({swap}) is memory+swap and must be >= memory.limit ({l})"
                )))
            } else {
                Ok((swap - l).to_string())
            }
        }
        _ => Err(Error::InvalidArgument(format!(
            "linux.resources.memory.swap ({swap}) needs a positive linux.resources.memory.limit on cgroup v2"
        ))),
    }
}

pub(crate) fn apply(d: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(d, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(d, c)?;
    }
    if let Some(p) = r.pids() {
        write(d, "pids.max", &super::pids_value(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        io(d, b)?;
    }
    for l in r.hugepage_limits().iter().flatten() {
        super::validate_page_size(l.page_size())?;
        let v = l.limit().to_string();
        write(d, &format!("hugetlb.{}.max", l.page_size()), &v)?;
        let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
        if exists(d, &rsvd) {
            write(d, &rsvd, &v)?;
        }
    }
    if r.network().is_some() {
        tracing::warn!("linux.resources.network has no cgroup v2 equivalent; ignored");
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        tracing::warn!("linux.resources.rdma is not supported; ignored");
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            if k.is_empty() || k.contains('/') || k == "." || k == ".." || k.contains('\0') {
                return Err(Error::InvalidArgument(format!(
                    "linux.resources.unified: key {k:?} must be a plain cgroup file name (no '/')"
                )));
            }
            if !exists(d, k) {
                return Err(Error::InvalidArgument(format!(
                    "linux.resources.unified: {} does not exist: is the \"{}\" controller enabled for this cgroup?",
                    d.join(k).display(),
                    k.split('.').next().unwrap_or(k)
                )));
            }
            if let Some(v) = u.get(k) {
                write(d, k, v)?;
            }
        }
    }
    if let Some(devs) = r.devices() {
        let rules = devices::parse_rules(devs)?;
        devices::apply_v2(d, &rules)?;
    }
    Ok(())
}

fn memory(d: &Path, m: &LinuxMemory) -> Result<()> {
    let lim = |v: i64| {
        if v < 0 {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    if let Some(l) = m.limit() {
        write(d, "memory.max", &lim(l))?;
    }
    if let Some(r) = m.reservation() {
        write(d, "memory.low", &lim(r))?;
    }
    if let Some(s) = m.swap() {
        let v = swap_max(m.limit(), s)?;
        if exists(d, "memory.swap.max") {
            write(d, "memory.swap.max", &v)?;
        } else {
            tracing::warn!(dir = %d.display(), "linux.resources.memory.swap ignored: memory.swap.max is missing (no swap accounting)");
        }
    }
    if m.swappiness().is_some() {
        tracing::warn!("linux.resources.memory.swappiness has no cgroup v2 equivalent; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!(
            "linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent; ignored"
        );
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!(
            "linux.resources.memory.kernel/kernelTCP are not supported on cgroup v2; ignored"
        );
    }
    Ok(())
}

fn cpu(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s > 0) {
        write(d, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    let period = c.period().filter(|p| *p > 0);
    if c.quota().is_some() || period.is_some() {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            // Only the period changes: keep the current quota.
            None => read_opt(d, "cpu.max")?
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "max".to_string()),
        };
        let v = match period {
            Some(p) => format!("{quota} {p}"),
            None => quota,
        };
        write(d, "cpu.max", &v)?;
    }
    if let Some(b) = c.burst() {
        write(d, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(d, "cpu.idle", &i.to_string())?;
    }
    if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        tracing::warn!("linux.resources.cpu.realtime* are not supported on cgroup v2; ignored");
    }
    if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(d, "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(d, "cpuset.mems", v)?;
    }
    Ok(())
}

fn io(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = !exists(d, "io.weight") && exists(d, "io.bfq.weight");
    if let Some(w) = b.weight() {
        if bfq {
            write(d, "io.bfq.weight", &w.to_string())?;
        } else {
            write(
                d,
                "io.weight",
                &format!("default {}", blkio_weight_to_io(w)),
            )?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io(w))
            };
            write(d, file, &format!("{}:{} {v}", wd.major(), wd.minor()))?;
        }
    }
    for (list, key) in [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ] {
        for t in list.iter().flatten() {
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            write(
                d,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(swap_max(Some(100), 300).ok().as_deref(), Some("200"));
        assert_eq!(swap_max(Some(100), -1).ok().as_deref(), Some("max"));
        assert!(swap_max(Some(100), 50).is_err());
        assert!(swap_max(None, 50).is_err());
    }
}
