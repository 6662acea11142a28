//! Small helpers for reading and writing cgroup control files with errors that name the file
//! and the value.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::{Error, Result};

fn hint(file: &str, err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENOENT) => {
            " (no such control file: is the controller mounted/enabled for this cgroup and supported by the kernel?)"
        }
        Some(libc::EBUSY) if file.starts_with("memory.") => {
            " (the kernel could not bring the cgroup's usage under the new limit: is it below current usage?)"
        }
        Some(libc::EBUSY) => " (the cgroup is busy: does it still have processes or children?)",
        Some(libc::EINVAL) => " (the kernel rejected the value)",
        Some(libc::EACCES) | Some(libc::EPERM) => " (permission denied: cgroups need root)",
        Some(libc::ENOSPC) if file == "cpuset.cpus" || file == "cpuset.mems" => {
            " (cpuset must be a subset of the parent's)"
        }
        _ => "",
    }
}

/// Write `value` to `dir/file` (O_WRONLY|O_TRUNC, never creating it).
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    tracing::debug!(path = %path.display(), value, "cgroup write");
    let res = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| {
        Error::sys(
            format!(
                "cgroup: write {value:?} to {}{}",
                path.display(),
                hint(file, &e)
            ),
            e,
        )
    })
}

/// Read `dir/file` as a string.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|e| Error::io(path, e))
}

/// Read `dir/file`, or `None` if it does not exist.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).symlink_metadata().is_ok()
}

/// Parse a single number; `max` (v2 "unlimited") is `u64::MAX`, and v1's `-1` likewise.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" || s == "-1" {
        return Ok(u64::MAX);
    }
    s.parse::<u64>().map_err(|e| {
        Error::Cgroup(format!(
            "{}: expected a number, found {s:?}: {e}",
            path.display()
        ))
    })
}

/// Read a single number from `dir/file`; 0 if the file does not exist.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(&dir.join(file), &s),
        None => Ok(0),
    }
}

/// Parse a flat keyed file (`key value` per line). Lines that do not have that shape are
/// skipped (kernels add fields over time).
pub(crate) fn parse_flat_keyed(s: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in s.lines() {
        let mut it = line.split_whitespace();
        if let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) {
            let v = if v == "max" {
                Some(u64::MAX)
            } else {
                v.parse().ok()
            };
            match v {
                Some(v) => {
                    out.insert(k.to_string(), v);
                }
                None => tracing::debug!(line, "skipping unparsable cgroup stat line"),
            }
        }
    }
    out
}

/// Read a flat keyed file; empty map if it does not exist.
pub(crate) fn read_flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    Ok(read_opt(dir, file)?
        .map(|s| parse_flat_keyed(&s))
        .unwrap_or_default())
}
