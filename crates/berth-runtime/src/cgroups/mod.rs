//! Cgroups (placeholder until the module lands).
use serde::{Deserialize, Serialize};
use std::path::Path;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    V1,
    V2,
}
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Cgroup {
    path: String,
}
#[derive(Serialize, Debug, Default)]
pub struct Stats {}
impl Cgroup {
    pub fn resolve(p: Option<&str>, id: &str) -> crate::Result<Cgroup> {
        Ok(Cgroup {
            path: p.map(String::from).unwrap_or(format!("/berth/{id}")),
        })
    }
    pub fn resolve_at(_r: &Path, _l: Layout, p: Option<&str>, id: &str) -> crate::Result<Cgroup> {
        Self::resolve(p, id)
    }
    pub fn layout(&self) -> Layout {
        Layout::V1
    }
    pub fn create(&self) -> crate::Result<()> {
        Ok(())
    }
    pub fn apply(&self, _r: &oci_spec::runtime::LinuxResources) -> crate::Result<()> {
        Ok(())
    }
    pub fn add_pid(&self, _pid: i32) -> crate::Result<()> {
        Ok(())
    }
    pub fn pids(&self) -> crate::Result<Vec<i32>> {
        Ok(vec![])
    }
    pub fn freeze(&self) -> crate::Result<()> {
        Ok(())
    }
    pub fn thaw(&self) -> crate::Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> crate::Result<bool> {
        Ok(false)
    }
    pub fn stats(&self) -> crate::Result<Stats> {
        Ok(Stats::default())
    }
    pub fn kill_all(&self, _s: nix::sys::signal::Signal) -> crate::Result<()> {
        Ok(())
    }
    pub fn destroy(&self) -> crate::Result<()> {
        Ok(())
    }
}
