//! Mapping `linux.cgroupsPath` (and the container id) to a cgroup path relative to a
//! hierarchy root. Pure string work: no file system access, no systemd.

use crate::{Error, Result};

/// The parent used when the spec gives no `cgroupsPath`.
pub const DEFAULT_PARENT: &str = "berth";

fn invalid(raw: &str, problem: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("linux.cgroupsPath {raw:?}: {problem}"))
}

/// Map a spec `cgroupsPath` to a normalised path that starts with `/` and has no `.`, `..`
/// or empty components.
///
/// - `None` or `""` => `/berth/<id>`
/// - `/a/b` and `a/b` => `/a/b` (both relative to the hierarchy root, like runc)
/// - `slice:prefix:name` (no `/`, exactly two `:`) => systemd style, mapped without systemd to
///   `/<expanded slice>/<prefix>-<name>.scope`; an empty slice means `system.slice`, a name
///   ending in `.slice` is used as is.
pub fn map_cgroups_path(cgroups_path: Option<&str>, id: &str) -> Result<String> {
    let raw = cgroups_path.unwrap_or("");
    if raw.is_empty() {
        validate_id(id)?;
        return Ok(format!("/{DEFAULT_PARENT}/{id}"));
    }
    if raw.contains('\0') {
        return Err(invalid(raw, "contains a NUL byte"));
    }
    if !raw.contains('/') && raw.matches(':').count() == 2 {
        return systemd_path(raw);
    }
    let mut parts = Vec::new();
    for comp in raw.split('/') {
        match comp {
            "" | "." => continue,
            ".." => {
                return Err(invalid(
                    raw,
                    "\"..\" components are not allowed: the path must stay under the cgroup root",
                ))
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(invalid(
            raw,
            "names the root of the cgroup hierarchy; give the container its own cgroup (e.g. \"/berth/<id>\")",
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "container id {id:?} cannot name a cgroup: it must be non-empty, not \".\" or \"..\", and contain no '/'"
        )));
    }
    Ok(())
}

fn systemd_path(raw: &str) -> Result<String> {
    let mut it = raw.splitn(3, ':');
    let slice = it.next().unwrap_or("");
    let prefix = it.next().unwrap_or("");
    let name = it.next().unwrap_or("");
    if name.is_empty() {
        return Err(invalid(
            raw,
            "systemd style \"slice:prefix:name\" needs a non-empty name",
        ));
    }
    let parent = expand_slice(
        raw,
        if slice.is_empty() {
            "system.slice"
        } else {
            slice
        },
    )?;
    let unit = if let Some(base) = name.strip_suffix(".slice") {
        if base.is_empty() {
            return Err(invalid(raw, "\".slice\" is not a valid unit name"));
        }
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{parent}/{unit}"))
}

/// `a-b-c.slice` => `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` (the root slice) => ``.
fn expand_slice(raw: &str, slice: &str) -> Result<String> {
    if slice == "-.slice" {
        return Ok(String::new());
    }
    let base = slice
        .strip_suffix(".slice")
        .ok_or_else(|| invalid(raw, format!("slice {slice:?} must end in \".slice\"")))?;
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return Err(invalid(
            raw,
            format!("slice {slice:?} is not a valid systemd slice name"),
        ));
    }
    let mut out = String::new();
    let mut acc = String::new();
    for part in base.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push('/');
        out.push_str(&acc);
        out.push_str(".slice");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_plain_paths() {
        assert_eq!(
            map_cgroups_path(None, "c1").ok().as_deref(),
            Some("/berth/c1")
        );
        assert_eq!(
            map_cgroups_path(Some(""), "c1").ok().as_deref(),
            Some("/berth/c1")
        );
        assert_eq!(
            map_cgroups_path(Some("/a/b"), "x").ok().as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            map_cgroups_path(Some("a/b/"), "x").ok().as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            map_cgroups_path(Some("a//./b"), "x").ok().as_deref(),
            Some("/a/b")
        );
    }

    #[test]
    fn escapes_rejected() {
        for bad in ["../x", "/a/../../x", "a/..", "/", "//", "."] {
            let err = map_cgroups_path(Some(bad), "x");
            assert!(err.is_err(), "{bad:?} should be rejected");
        }
        assert!(map_cgroups_path(None, "..").is_err());
        assert!(map_cgroups_path(None, "a/b").is_err());
        assert!(map_cgroups_path(None, "").is_err());
    }

    #[test]
    fn systemd_style() {
        assert_eq!(
            map_cgroups_path(Some("system.slice:docker:abc"), "x")
                .ok()
                .as_deref(),
            Some("/system.slice/docker-abc.scope")
        );
        assert_eq!(
            map_cgroups_path(Some("user-1000.slice:berth:abc"), "x")
                .ok()
                .as_deref(),
            Some("/user.slice/user-1000.slice/berth-abc.scope")
        );
        assert_eq!(
            map_cgroups_path(Some("a-b-c.slice::n"), "x")
                .ok()
                .as_deref(),
            Some("/a.slice/a-b.slice/a-b-c.slice/n.scope")
        );
        assert_eq!(
            map_cgroups_path(Some(":p:n"), "x").ok().as_deref(),
            Some("/system.slice/p-n.scope")
        );
        assert_eq!(
            map_cgroups_path(Some("-.slice:p:n"), "x").ok().as_deref(),
            Some("/p-n.scope")
        );
        assert_eq!(
            map_cgroups_path(Some("machine.slice:p:inner.slice"), "x")
                .ok()
                .as_deref(),
            Some("/machine.slice/inner.slice")
        );
        for bad in [
            "nosuffix:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "x.slice:p:",
        ] {
            assert!(map_cgroups_path(Some(bad), "x").is_err(), "{bad:?}");
        }
    }
}
