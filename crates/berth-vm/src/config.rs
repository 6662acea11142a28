//! The VM's configuration (`config.json` in the state directory) and where things live.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{io_err, Error, Result};

/// How qemu runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Linux KVM (`/dev/kvm`).
    Kvm,
    /// macOS Hypervisor.framework.
    Hvf,
    /// Windows Hypervisor Platform.
    Whpx,
    /// qemu's emulator: works everywhere, slowly.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Whpx => "whpx",
            Accel::Tcg => "tcg",
        }
    }
}

impl std::str::FromStr for Accel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Accel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Ok(Accel::Kvm),
            "hvf" => Ok(Accel::Hvf),
            "whpx" => Ok(Accel::Whpx),
            "tcg" => Ok(Accel::Tcg),
            other => Err(Error::Other(format!(
                "unknown accelerator {other:?}: use kvm, hvf, whpx or tcg (or leave BERTH_VM_ACCEL unset to pick one)"
            ))),
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host directory shared into the guest over 9p, mounted at the same absolute path there so
/// that `-v /home/me/code:/app` means the same directory on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub host_path: PathBuf,
    /// The 9p mount tag (letters, digits, `_`, `-`; at most 31 bytes).
    pub tag: String,
}

impl Share {
    pub fn new(host_path: impl Into<PathBuf>, tag: impl Into<String>) -> Share {
        Share {
            host_path: host_path.into(),
            tag: tag.into(),
        }
    }

    /// Where the guest mounts it: the host path itself.
    pub fn guest_path(&self) -> &Path {
        &self.host_path
    }
}

/// Everything `create` needs, saved as `config.json` in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmConfig {
    pub cpus: u32,
    pub memory_mib: u32,
    /// The data disk's virtual size (it is sparse: it takes what the guest writes).
    pub disk_gib: u32,
    /// The data disk (qcow2); `None`: `data.qcow2` in the state directory.
    pub disk_path: Option<PathBuf>,
    pub shares: Vec<Share>,
    /// `None`: `BERTH_VM_ACCEL`, else the platform's hypervisor when usable, else tcg.
    pub accel: Option<Accel>,
    /// Where `vmlinuz-<arch>` and `initramfs-<arch>.img` are; `None`: `BERTH_VM_IMAGE_DIR`,
    /// else `<exe dir>/../share/berth/vm`.
    pub image_dir: Option<PathBuf>,
    /// The qemu system emulator; `None`: `BERTH_VM_QEMU`, else next to the executable, else
    /// `qemu-system-<arch>` on PATH.
    pub qemu: Option<PathBuf>,
    /// The engine socket served on the host; `None`: `~/.berth/berth.sock`.
    pub socket: Option<PathBuf>,
    /// Extra kernel command-line words for the guest init (e.g. `berth.insecure=10.0.2.2:5000`).
    pub kernel_args: Vec<String>,
}

impl Default for VmConfig {
    fn default() -> VmConfig {
        let shares = home_dir()
            .map(|h| vec![Share::new(h, "home")])
            .unwrap_or_default();
        VmConfig {
            cpus: 2,
            memory_mib: 2048,
            disk_gib: 64,
            disk_path: None,
            shares,
            accel: None,
            image_dir: None,
            qemu: None,
            socket: None,
            kernel_args: Vec::new(),
        }
    }
}

impl VmConfig {
    /// Checks the values qemu and the guest's kernel command line would choke on.
    pub fn validate(&self) -> Result<()> {
        if self.cpus == 0 || self.cpus > 255 {
            return Err(Error::Other(format!(
                "cpus = {}: give 1 to 255 virtual CPUs",
                self.cpus
            )));
        }
        if self.memory_mib < 256 {
            return Err(Error::Other(format!(
                "memory = {} MiB: the VM needs at least 256 MiB",
                self.memory_mib
            )));
        }
        if self.disk_gib == 0 {
            return Err(Error::Other(
                "disk = 0 GiB: give the data disk at least 1 GiB".into(),
            ));
        }
        let mut tags = std::collections::BTreeSet::new();
        for s in &self.shares {
            let t = &s.tag;
            if t.is_empty()
                || t.len() > 31
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(Error::Other(format!(
                    "share tag {t:?}: use 1 to 31 letters, digits, '_' or '-'"
                )));
            }
            if !tags.insert(t.clone()) {
                return Err(Error::Other(format!(
                    "share tag {t:?} is used twice: give each share its own tag"
                )));
            }
            let p = s.host_path.to_string_lossy();
            if !s.host_path.is_absolute() {
                return Err(Error::Other(format!(
                    "share {p:?}: give an absolute host path"
                )));
            }
            if p.chars().any(|c| c.is_whitespace() || c == ',' || c == '"') {
                return Err(Error::Other(format!(
                    "share {p:?}: the path holds a space, comma or quote, which the guest's kernel command line cannot carry; share a parent directory without one"
                )));
            }
        }
        for a in &self.kernel_args {
            if a.is_empty() || a.chars().any(char::is_whitespace) {
                return Err(Error::Other(format!(
                    "kernel argument {a:?}: give one word without spaces per entry"
                )));
            }
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<VmConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(io_err(format!("reading the VM config {}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Other(format!(
                "the VM config {} is not valid: {e} (fix or delete it and create the VM again)",
                path.display()
            ))
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Other(format!("encoding the VM config: {e}")))?;
        write_atomic(path, &text)
    }
}

/// Writes through a temp file and a rename, so readers never see half a file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io_err(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("renaming to {}", path.display())))
}

/// `$HOME` (`%USERPROFILE%` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    let var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `~/.berth/vm`.
pub fn default_state_dir() -> Result<PathBuf> {
    home_dir()
        .map(|h| h.join(".berth").join("vm"))
        .ok_or_else(|| {
            Error::Other("HOME is not set: set it, or give the VM a state directory".into())
        })
}

/// `~/.berth/berth.sock`.
pub fn default_socket() -> Result<PathBuf> {
    home_dir()
        .map(|h| h.join(".berth").join("berth.sock"))
        .ok_or_else(|| {
            Error::Other("HOME is not set: set it, or give the VM an engine socket path".into())
        })
}

/// The guest architecture name used by the image artefacts (`vmlinuz-<arch>`).
pub fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    }
}

/// The image directory: the config's, else `BERTH_VM_IMAGE_DIR`, else
/// `<exe dir>/../share/berth/vm`; the one that holds the kernel wins.
pub fn find_image_dir(configured: Option<&Path>, arch: &str) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = configured {
        candidates.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("BERTH_VM_IMAGE_DIR").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    if let Some(dir) = exe_dir() {
        candidates.push(dir.join("..").join("share").join("berth").join("vm"));
    }
    first_image_dir(candidates, arch)
}

/// The first of `candidates` holding both artefacts.
fn first_image_dir(candidates: Vec<PathBuf>, arch: &str) -> Result<PathBuf> {
    let mut tried = Vec::new();
    for c in candidates {
        let kernel = c.join(format!("vmlinuz-{arch}"));
        let initrd = c.join(format!("initramfs-{arch}.img"));
        if kernel.is_file() && initrd.is_file() {
            return Ok(c);
        }
        tried.push(c.display().to_string());
    }
    Err(Error::Other(format!(
        "the VM image (vmlinuz-{arch}, initramfs-{arch}.img) is not in {}: build it with `bash packaging/vm/build.sh` and set BERTH_VM_IMAGE_DIR=packaging/vm/out (or the config's image_dir)",
        if tried.is_empty() { "any known place".to_string() } else { tried.join(", ") }
    )))
}

pub(crate) fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
}

/// A program: `env` if set, else next to the executable, else `name` on PATH.
pub fn find_program(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe_name = if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_string()
    };
    if let Some(dir) = exe_dir() {
        let p = dir.join(&exe_name);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(&exe_name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::Other(format!(
        "{name} not found (not in ${env}, next to this program, or on PATH): install qemu (Debian: apt install qemu-system-x86 qemu-utils) or set {env}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_unknown_keys() {
        let c = VmConfig {
            cpus: 3,
            shares: vec![Share::new("/home/me", "home")],
            accel: Some(Accel::Tcg),
            ..VmConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        c.save(&p).unwrap();
        assert_eq!(VmConfig::load(&p).unwrap(), c);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"accel\": \"tcg\""), "{text}");
        std::fs::write(&p, r#"{"cpus": 2, "cpu": 4}"#).unwrap();
        let e = VmConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("cpu") && e.contains("not valid"), "{e}");
        // Missing keys take the defaults.
        std::fs::write(&p, r#"{"cpus": 1}"#).unwrap();
        let c = VmConfig::load(&p).unwrap();
        assert_eq!((c.cpus, c.memory_mib, c.disk_gib), (1, 2048, 64));
    }

    #[test]
    fn validate_names_the_bad_value() {
        let ok = VmConfig {
            shares: vec![Share::new("/root", "home")],
            ..VmConfig::default()
        };
        ok.validate().unwrap();
        let bad = |c: VmConfig| c.validate().unwrap_err().to_string();
        assert!(bad(VmConfig {
            cpus: 0,
            ..ok.clone()
        })
        .contains("cpus = 0"));
        assert!(bad(VmConfig {
            memory_mib: 100,
            ..ok.clone()
        })
        .contains("100 MiB"));
        assert!(bad(VmConfig {
            shares: vec![Share::new("/a b", "x")],
            ..ok.clone()
        })
        .contains("space"));
        assert!(bad(VmConfig {
            shares: vec![Share::new("rel", "x")],
            ..ok.clone()
        })
        .contains("absolute"));
        assert!(bad(VmConfig {
            shares: vec![Share::new("/a", "bad tag")],
            ..ok.clone()
        })
        .contains("share tag"));
        assert!(bad(VmConfig {
            shares: vec![Share::new("/a", "t"), Share::new("/b", "t")],
            ..ok.clone()
        })
        .contains("used twice"));
    }

    #[test]
    fn accel_parses() {
        assert_eq!("TCG".parse::<Accel>().unwrap(), Accel::Tcg);
        assert!("xen"
            .parse::<Accel>()
            .unwrap_err()
            .to_string()
            .contains("kvm, hvf, whpx or tcg"));
    }

    #[test]
    fn image_dir_needs_both_artefacts() {
        let d = tempfile::tempdir().unwrap();
        let e = first_image_dir(vec![d.path().to_path_buf()], "x86_64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("packaging/vm/build.sh"), "{e}");
        std::fs::write(d.path().join("vmlinuz-x86_64"), b"k").unwrap();
        std::fs::write(d.path().join("initramfs-x86_64.img"), b"i").unwrap();
        assert_eq!(find_image_dir(Some(d.path()), "x86_64").unwrap(), d.path());
    }
}
