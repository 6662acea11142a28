//! Reading and checking a bundle's `config.json`, and the default spec `berth-runtime spec`
//! writes. Every problem is reported as one line naming the JSON field and what to do, before
//! anything is created on the host.

use crate::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Parse JSON into a spec type, naming the field on error (`linux.namespaces[1].type: ...`).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut problem = inner.to_string();
        // serde_json appends " at line L column C"; keep it, it helps find the spot.
        if inner.is_syntax() || inner.is_eof() {
            problem = format!("not valid JSON: {problem}");
        }
        Error::InvalidConfig {
            file: file.to_string(),
            field: if path == "." {
                "(document)".into()
            } else {
                path
            },
            problem,
        }
    })
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::InvalidConfig {
        file: "config.json".into(),
        field: field.into(),
        problem: problem.into(),
    }
}

/// Load and validate `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::InvalidArgument(format!(
            "cannot read {}: {e} (is --bundle pointing at an OCI bundle directory?)",
            path.display()
        ))
    })?;
    let spec: Spec = parse_json(&bytes, "config.json")?;
    validate(&spec, bundle)?;
    Ok(spec)
}

/// The root filesystem's absolute host path (relative `root.path` is relative to the bundle).
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| {
        invalid(
            "root",
            "missing; set root.path to the bundle's rootfs directory",
        )
    })?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(invalid(
            "root.path",
            "empty; set it to the rootfs directory, e.g. \"rootfs\"",
        ));
    }
    Ok(if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    })
}

/// Everything that can be checked without touching the host.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    let v = spec.version();
    if v.is_empty() {
        return Err(invalid(
            "ociVersion",
            "missing; set it to the runtime-spec version the bundle follows, e.g. \"1.2.0\"",
        ));
    }
    if !v.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("\"{v}\" is not supported; this runtime implements runtime-spec 1.x"),
        ));
    }
    let rootfs = rootfs_path(spec, bundle)?;
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ))
        }
        Err(e) => {
            return Err(invalid(
                "root.path",
                format!(
                    "{}: {e}; create the rootfs or fix the path",
                    rootfs.display()
                ),
            ))
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing; the container needs a process to run"))?;
    validate_process(process, "process")?;

    if let Some(hostname) = spec.hostname() {
        if hostname.len() > 64 {
            return Err(invalid("hostname", "longer than 64 bytes"));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!(
                    "\"{}\" must be an absolute path inside the container",
                    dest.display()
                ),
            ));
        }
        let opts = m.options().clone().unwrap_or_default();
        crate::rootfs::parse_mount_options(&opts).map_err(|e| match e {
            Error::InvalidConfig { problem, .. } => {
                invalid(format!("mounts[{i}].options"), problem)
            }
            other => invalid(format!("mounts[{i}].options"), other.to_string()),
        })?;
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in all {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{name}[{i}].path"),
                        format!("\"{}\" must be an absolute path", h.path().display()),
                    ));
                }
                if let Some(t) = h.timeout() {
                    if t <= 0 {
                        return Err(invalid(
                            format!("hooks.{name}[{i}].timeout"),
                            "must be a positive number of seconds",
                        ));
                    }
                }
            }
        }
    }
    let linux = match spec.linux() {
        Some(l) => l,
        None => return Ok(()),
    };
    let mut seen = HashSet::new();
    let mut new_user = false;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("\"{}\" is listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    "must be an absolute path such as /proc/<pid>/ns/net",
                ));
            }
            if !p.exists() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} does not exist", p.display()),
                ));
            }
        } else if ns.typ() == LinuxNamespaceType::User {
            new_user = true;
        }
    }
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_user && !has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    if !new_user
        && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()))
    {
        return Err(invalid(
            "linux.uidMappings",
            "mappings are given but no new \"user\" namespace is in linux.namespaces",
        ));
    }
    if !seen.contains(&LinuxNamespaceType::Mount) {
        return Err(invalid(
            "linux.namespaces",
            "a \"mount\" namespace is required (the container's mounts must not reach the host)",
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for k in sysctl.keys() {
            if k.is_empty() || k.contains("..") || k.starts_with('/') || k.starts_with('.') {
                return Err(invalid(
                    format!("linux.sysctl.{k}"),
                    "not a valid sysctl name",
                ));
            }
        }
    }
    if let Some(s) = linux.seccomp() {
        crate::seccomp::validate(s)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(
            p.as_str(),
            "" | "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" | "unbindable"
        ) {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("\"{p}\" is not one of shared, slave, private, unbindable"),
            ));
        }
    }
    Ok(())
}

/// Checks on a process (the container's, or an `exec --process` file's).
pub fn validate_process(p: &Process, at: &str) -> Result<()> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid(
            format!("{at}.args"),
            "empty; give the command to run, e.g. [\"sh\"]",
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(invalid(
            format!("{at}.cwd"),
            format!("\"{}\" must be an absolute path", p.cwd().display()),
        ));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') || e.starts_with('=') {
            return Err(invalid(
                format!("{at}.env[{i}]"),
                format!("\"{e}\" is not NAME=value"),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err(invalid(format!("{at}.rlimits[{i}].type"), "listed twice"));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("{at}.rlimits[{i}]"),
                "soft limit is above the hard limit",
            ));
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                format!("{at}.oomScoreAdj"),
                "must be between -1000 and 1000",
            ));
        }
    }
    Ok(())
}

/// The spec `berth-runtime spec` writes: Docker's confinement defaults, an interactive `sh`.
pub fn default_spec_json(rootless: bool) -> serde_json::Value {
    use serde_json::json;
    let caps: Vec<String> = crate::caps::DOCKER_DEFAULT
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": namespaces.clone(),
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
                "/sys/devices/virtual/powercap", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        namespaces.push(json!({"type": "user"}));
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        spec["linux"]["namespaces"] = json!(namespaces);
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        spec["linux"]["resources"] = json!({});
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(json: &str) -> (tempdir::Dir, Result<Spec>) {
        let d = tempdir::Dir::new();
        std::fs::create_dir(d.0.join("rootfs")).unwrap();
        std::fs::write(d.0.join("config.json"), json).unwrap();
        let r = load(&d.0);
        (d, r)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "berth-spec-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn err_of(json: &str) -> String {
        bundle_with(json).1.unwrap_err().to_string()
    }

    #[test]
    fn default_spec_loads() {
        let s = default_spec_json(false).to_string();
        let (_d, r) = bundle_with(&s);
        let spec = r.unwrap();
        assert_eq!(spec.version(), "1.2.0");
    }

    #[test]
    fn missing_oci_version_is_named() {
        let mut v = default_spec_json(false);
        v.as_object_mut().unwrap().remove("ociVersion");
        let e = err_of(&v.to_string());
        assert!(e.contains("ociVersion") && e.contains("missing"), "{e}");
    }

    #[test]
    fn unknown_namespace_is_named() {
        let mut v = default_spec_json(false);
        v["linux"]["namespaces"][1]["type"] = "foo".into();
        let e = err_of(&v.to_string());
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        assert!(e.contains("foo"), "{e}");
    }

    #[test]
    fn relative_cwd_and_mount_destination_are_named() {
        let mut v = default_spec_json(false);
        v["process"]["cwd"] = "tmp".into();
        assert!(err_of(&v.to_string()).contains("process.cwd"));
        let mut v = default_spec_json(false);
        v["mounts"][0]["destination"] = "proc".into();
        assert!(err_of(&v.to_string()).contains("mounts[0].destination"));
    }

    #[test]
    fn bad_seccomp_action_is_named() {
        let mut v = default_spec_json(false);
        v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_BOGUS"});
        let e = err_of(&v.to_string());
        assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
    }

    #[test]
    fn syntax_error_says_json() {
        let e = err_of("{\"ociVersion\": ");
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn missing_rootfs_is_named() {
        let mut v = default_spec_json(false);
        v["root"]["path"] = "nope".into();
        assert!(err_of(&v.to_string()).contains("root.path"));
    }
}
