//! Applying `linux.resources` to cgroup v1 controller hierarchies.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::fs::{exists, parse_u64, read, write};
use super::{devices, Cgroup};
use crate::{Error, Result};

fn need(cg: &Cgroup, controller: &str, what: &str) -> Result<PathBuf> {
    cg.dir(controller).ok_or_else(|| {
        Error::Cgroup(format!(
            "{what} is set but the cgroup v1 \"{controller}\" controller is not mounted; mount it under {} or drop the setting",
            cg.root_hint()
        ))
    })
}

pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(&need(cg, "memory", "linux.resources.memory")?, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(p) = r.pids() {
        let d = need(cg, "pids", "linux.resources.pids")?;
        write(&d, "pids.max", &super::pids_value(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        blkio(&need(cg, "blkio", "linux.resources.blockIO")?, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        if !h.is_empty() {
            let d = need(cg, "hugetlb", "linux.resources.hugepageLimits")?;
            for l in h {
                super::validate_page_size(l.page_size())?;
                write(
                    &d,
                    &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
                    &l.limit().to_string(),
                )?;
            }
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            let d = need(cg, "net_cls", "linux.resources.network.classID")?;
            write(&d, "net_cls.classid", &id.to_string())?;
        }
        if let Some(prios) = n.priorities() {
            if !prios.is_empty() {
                let d = need(cg, "net_prio", "linux.resources.network.priorities")?;
                for p in prios {
                    write(
                        &d,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                    )?;
                }
            }
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        tracing::warn!("linux.resources.rdma is not supported; ignored");
    }
    if r.unified().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::Cgroup(
            "linux.resources.unified needs cgroup v2, but this host uses cgroup v1; remove it from the spec"
                .into(),
        ));
    }
    // Devices last: a failure above must not leave the container without device access rules
    // half-written, and devices are the security-relevant part.
    if let Some(devs) = r.devices() {
        let rules = devices::parse_rules(devs)?;
        let d = need(cg, "devices", "linux.resources.devices")?;
        devices::apply_v1(&d, &rules)?;
    }
    Ok(())
}

fn memory(d: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit();
    let swap = m.swap();
    let have_memsw = exists(d, "memory.memsw.limit_in_bytes");
    if swap.is_some() && !have_memsw {
        tracing::warn!(
            dir = %d.display(),
            "linux.resources.memory.swap ignored: memory.memsw.limit_in_bytes is missing (swap accounting disabled: boot with swapaccount=1)"
        );
    }
    let swap = swap.filter(|_| have_memsw);
    let as_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    let lim_s = |v: i64| {
        if v < 0 {
            "-1".to_string()
        } else {
            v.to_string()
        }
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // memsw must stay >= limit at every step: raise memsw first when growing.
            let cur = parse_u64(
                &d.join("memory.limit_in_bytes"),
                &read(d, "memory.limit_in_bytes")?,
            )?;
            if as_u64(l) > cur {
                write(d, "memory.memsw.limit_in_bytes", &lim_s(s))?;
                write(d, "memory.limit_in_bytes", &lim_s(l))?;
            } else {
                write(d, "memory.limit_in_bytes", &lim_s(l))?;
                write(d, "memory.memsw.limit_in_bytes", &lim_s(s))?;
            }
        }
        (Some(l), None) => write(d, "memory.limit_in_bytes", &lim_s(l))?,
        (None, Some(s)) => write(d, "memory.memsw.limit_in_bytes", &lim_s(s))?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        write(d, "memory.soft_limit_in_bytes", &lim_s(r))?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!("linux.resources.memory.kernel/kernelTCP are deprecated and not applied");
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidArgument(format!(
                "linux.resources.memory.swappiness: {s} is out of range 0-100"
            )));
        }
        write(d, "memory.swappiness", &s.to_string())?;
    }
    if let Some(off) = m.disable_oom_killer() {
        write(d, "memory.oom_control", if off { "1" } else { "0" })?;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    let wants_cpu = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some();
    if wants_cpu {
        let d = need(cg, "cpu", "linux.resources.cpu")?;
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            write(&d, "cpu.shares", &s.to_string())?;
        }
        if let Some(p) = c.period().filter(|p| *p > 0) {
            write(&d, "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(q) = c.quota() {
            let v = if q <= 0 {
                "-1".to_string()
            } else {
                q.to_string()
            };
            write(&d, "cpu.cfs_quota_us", &v)?;
        }
        if let Some(b) = c.burst() {
            write(&d, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(p) = c.realtime_period().filter(|p| *p > 0) {
            write(&d, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(r) = c.realtime_runtime() {
            write(&d, "cpu.rt_runtime_us", &r.to_string())?;
        }
        if let Some(i) = c.idle() {
            write(&d, "cpu.idle", &i.to_string())?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let d = need(cg, "cpuset", "linux.resources.cpu.cpus/mems")?;
        if let Some(v) = cpus {
            write(&d, "cpuset.cpus", v)?;
        }
        if let Some(v) = mems {
            write(&d, "cpuset.mems", v)?;
        }
    }
    Ok(())
}

fn blkio(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = !exists(d, "blkio.weight") && exists(d, "blkio.bfq.weight");
    let prefix = if bfq { "blkio.bfq." } else { "blkio." };
    if let Some(w) = b.weight() {
        write(d, &format!("{prefix}weight"), &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        write(d, "blkio.leaf_weight", &w.to_string())?;
    }
    if let Some(list) = b.weight_device() {
        for wd in list {
            if let Some(w) = wd.weight() {
                write(
                    d,
                    &format!("{prefix}weight_device"),
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
            if let Some(w) = wd.leaf_weight() {
                write(
                    d,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
        }
    }
    for (list, file) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ] {
        for t in list.iter().flatten() {
            write(
                d,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}
