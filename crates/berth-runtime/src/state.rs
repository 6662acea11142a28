//! Container state on disk: `<root>/<id>/state.json` (written atomically), the `exec.fifo`
//! that holds a created container until `start`, and the status derived from the live process.
//!
//! The status is never stored; it is derived on every read (refresh → guard → act → save):
//! no init pid yet → creating; init gone (or its pid reused: the start time differs) → stopped;
//! fifo present → created; cgroup frozen → paused; otherwise running.

use crate::cgroups::Cgroup;
use crate::{Error, Result};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Host pid of the container's init (0 while creating).
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), so a
    /// recycled pid is never mistaken for the container.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Cgroup,
    /// Namespaces the container made (not joined), for `exec` and for `delete`'s cleanup.
    #[serde(default)]
    pub new_pidns: bool,
    #[serde(skip)]
    pub dir: PathBuf,
}

/// An exclusive lock on a container's state directory: a POSIX record lock on
/// `<dir>/lock`, released when dropped or when the process dies. Unlike flock, a record
/// lock is not shared with forked children, so the container's init (a fork of `create`)
/// does not keep holding it. `create` holds it until the container is created; `start` and
/// `delete` take it, so they never run at the same time as each other or as a create that is
/// still working.
pub struct DirLock(#[allow(dead_code)] std::fs::File);

/// Lock `dir`. `wait: false` returns `Ok(None)` if someone else holds it.
pub fn lock_dir(dir: &Path, wait: bool) -> Result<Option<DirLock>> {
    use std::os::fd::AsRawFd;
    let path = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    let cmd = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    // SAFETY: fcntl record lock with a live struct.
    if unsafe { libc::fcntl(f.as_raw_fd(), cmd, &fl) } != 0 {
        let e = std::io::Error::last_os_error();
        if !wait && matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) {
            return Ok(None);
        }
        return Err(Error::sys(format!("locking {}", path.display()), e));
    }
    Ok(Some(DirLock(f)))
}

/// Container ids are single path components that every tool can print.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid container id \"{id}\": use letters, digits, '_', '-', '.', '+', starting with a letter or digit"
        )))
    }
}

pub fn dir_of(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = dir_of(root, id);
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ContainerNotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut c: Container = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Container(format!(
                "{}: corrupt state ({e}); remove the directory {} to forget the container",
                path.display(),
                dir.display()
            ))
        })?;
        c.dir = dir;
        Ok(c)
    }

    /// Atomically replace state.json.
    pub fn save(&self) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let data = serde_json::to_vec(self)
            .map_err(|e| Error::Container(format!("encoding state: {e}")))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&data).map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        let dst = self.dir.join(STATE_FILE);
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))
    }

    /// The spec as it was when the container was created.
    pub fn spec(&self) -> Result<Spec> {
        let p = self.dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        crate::spec::parse_json(&bytes, &p.display().to_string())
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    pub fn status(&self) -> Status {
        if self.pid <= 0 {
            return Status::Creating;
        }
        match proc_start_time(self.pid) {
            Some((start, state)) if start == self.pid_start && state != 'Z' && state != 'X' => {}
            _ => return Status::Stopped,
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document (`state` command, hooks' stdin).
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = match status {
            Status::Stopped => 0,
            _ => self.pid.max(0),
        };
        serde_json::json!({
            "ociVersion": "1.2.0",
            "id": self.id,
            "status": status,
            "pid": pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }
}

/// Start time (clock ticks since boot) and state letter of a process.
pub fn proc_start_time(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// Now, as RFC 3339 UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    berth_time::now()
}

/// All containers under `root`, sorted by id; unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(root, e)),
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        if let Some(id) = ent.file_name().to_str() {
            if let Ok(c) = Container::load(root, id) {
                out.push(c);
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.3").is_ok());
        assert!(check_id("../x").is_err());
        assert!(check_id("a/b").is_err());
        assert!(check_id("").is_err());
        assert!(check_id(".hidden").is_err());
    }

    #[test]
    fn own_start_time_is_read() {
        let (start, state) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(state == 'R' || state == 'S');
    }

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
