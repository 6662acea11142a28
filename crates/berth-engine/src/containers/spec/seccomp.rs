//! `--security-opt seccomp=<profile>`: the docker CLI sends the profile file's content. It is
//! Docker's profile format (moby's `profiles/seccomp`): OCI's fields plus `archMap`, the
//! deprecated single `name`, and `includes`/`excludes` filters on capabilities, architecture
//! and kernel version. The filters are resolved here, for this host and the container's
//! bounding set, as dockerd does, and the result is the OCI `linux.seccomp` object.

use crate::images::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Go's name for this machine's architecture (what `includes.arches` lists).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// libseccomp's name for this machine's architecture (what `archMap` keys on).
fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

fn parse_kernel(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The running kernel's `major.minor`.
fn host_kernel() -> Option<(u32, u32)> {
    let u = nix::sys::utsname::uname().ok()?;
    parse_kernel(&u.release().to_string_lossy())
}

fn with_cap_prefix(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The OCI `linux.seccomp` object for Docker profile `text`, resolved for this host and a
/// container whose bounding set is `bounding` (`CAP_*` names).
pub fn from_docker_profile(text: &str, bounding: &[String]) -> Result<Value> {
    let bad = |problem: String| {
        Error::invalid(format!(
            "the seccomp profile in --security-opt seccomp=... is invalid: {problem}; give a Docker seccomp profile (JSON with defaultAction and syscalls), or seccomp=unconfined"
        ))
    };
    let p: Profile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if p.architectures.as_ref().is_some_and(|a| !a.is_empty())
        && p.arch_map.as_ref().is_some_and(|a| !a.is_empty())
    {
        return Err(bad(
            "both 'architectures' and 'archMap' are given; use one of them".into(),
        ));
    }
    let mut arches: Vec<String> = p.architectures.clone().unwrap_or_default();
    for m in p.arch_map.iter().flatten() {
        if m.architecture == native_scmp_arch() {
            arches.push(m.architecture.clone());
            arches.extend(m.sub_architectures.iter().flatten().cloned());
        }
    }
    let kernel = host_kernel();
    let arch = go_arch();
    let bounding: Vec<String> = bounding.iter().map(|c| with_cap_prefix(c)).collect();
    let mut syscalls = Vec::new();
    for (i, sc) in p.syscalls.iter().flatten().enumerate() {
        let mut names = sc.names.clone().unwrap_or_default();
        if let Some(n) = &sc.name {
            if !names.is_empty() {
                return Err(bad(format!(
                    "syscalls[{i}] has both 'name' and 'names'; use one of them"
                )));
            }
            names.push(n.clone());
        }
        if names.is_empty() {
            return Err(bad(format!(
                "syscalls[{i}] names no syscall; give 'names' such as [\"getpid\"]"
            )));
        }
        let ex = sc.excludes.as_ref();
        let inc = sc.includes.as_ref();
        let min_kernel = |f: Option<&Filter>| -> Result<Option<(u32, u32)>> {
            match f.and_then(|f| f.min_kernel.as_deref()) {
                None => Ok(None),
                Some(v) => parse_kernel(v).map(Some).ok_or_else(|| {
                    bad(format!(
                        "syscalls[{i}] minKernel {v:?} is not a kernel version such as \"4.8\""
                    ))
                }),
            }
        };
        let ex_kernel = min_kernel(ex)?;
        let inc_kernel = min_kernel(inc)?;
        if ex
            .and_then(|f| f.arches.as_ref())
            .is_some_and(|a| a.iter().any(|x| x == arch))
        {
            continue;
        }
        if ex
            .and_then(|f| f.caps.as_ref())
            .is_some_and(|c| c.iter().any(|c| bounding.contains(&with_cap_prefix(c))))
        {
            continue;
        }
        if let (Some(min), Some(k)) = (ex_kernel, kernel) {
            if k >= min {
                continue;
            }
        }
        if inc
            .and_then(|f| f.arches.as_ref())
            .is_some_and(|a| !a.is_empty() && !a.iter().any(|x| x == arch))
        {
            continue;
        }
        if inc
            .and_then(|f| f.caps.as_ref())
            .is_some_and(|c| c.iter().any(|c| !bounding.contains(&with_cap_prefix(c))))
        {
            continue;
        }
        if let Some(min) = inc_kernel {
            match kernel {
                Some(k) if k >= min => {}
                _ => continue,
            }
        }
        let mut rule = json!({"names": names, "action": sc.action});
        if let Some(e) = sc.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if let Some(a) = &sc.args {
            rule["args"] = json!(a);
        }
        syscalls.push(rule);
    }
    let mut out = json!({"defaultAction": p.default_action});
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    if let Some(f) = &p.flags {
        out["flags"] = json!(f);
    }
    if let Some(l) = &p.listener_path {
        out["listenerPath"] = json!(l);
    }
    if let Some(m) = &p.listener_metadata {
        out["listenerMetadata"] = json!(m);
    }
    if !syscalls.is_empty() {
        out["syscalls"] = json!(syscalls);
    }
    // Check it the way the runtime will read it: the OCI types (actions, operators,
    // architecture names) and the runtime's own checks.
    let oci: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_value(out.clone()).map_err(|e| bad(e.to_string()))?;
    berth_runtime::seccomp::validate(&oci)
        .map_err(|e| bad(e.to_string().replace("config.json: linux.seccomp.", "")))?;
    Ok(out)
}
