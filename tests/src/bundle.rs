//! The busybox OCI bundle: a rootfs built from the host's busybox-static and
//! a runc-style default `config.json` with Docker's security defaults.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::host::unique_id;

/// Where Debian's busybox-static installs its binary.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// Docker's default capability set, in the order Docker lists it.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// [`DEFAULT_CAPS`] as the hex mask /proc/<pid>/status prints.
pub const DEFAULT_CAP_MASK: &str = "00000000a80425fb";

pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub const GROUP: &str = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n";

/// One entry of the busybox rootfs, shared by the bundle and the image layer.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

fn applets() -> &'static Vec<String> {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(HOST_BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| {
                panic!("{HOST_BUSYBOX} --list failed ({e}); install busybox-static (.ci/setup)")
            });
        assert!(out.status.success(), "{HOST_BUSYBOX} --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(str::to_owned)
            .collect()
    })
}

/// The rootfs content, relative paths, parents before children.
pub(crate) fn rootfs_entries() -> Vec<Entry> {
    let busybox = std::fs::read(HOST_BUSYBOX).unwrap_or_else(|e| {
        panic!("read {HOST_BUSYBOX}: {e}; install busybox-static (apt-get install busybox-static)")
    });
    let mut v = Vec::new();
    for (d, mode) in [
        ("bin", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("etc", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("home/app", 0o755),
    ] {
        v.push(Entry::Dir {
            path: d.into(),
            mode,
        });
    }
    v.push(Entry::File {
        path: "bin/busybox".into(),
        mode: 0o755,
        data: busybox,
    });
    for a in applets() {
        v.push(Entry::Symlink {
            path: format!("bin/{a}"),
            target: "busybox".into(),
        });
    }
    v.push(Entry::File {
        path: "etc/passwd".into(),
        mode: 0o644,
        data: PASSWD.into(),
    });
    v.push(Entry::File {
        path: "etc/group".into(),
        mode: 0o644,
        data: GROUP.into(),
    });
    v
}

/// Writes the busybox rootfs under `root` (which must exist).
pub(crate) fn write_rootfs(root: &Path) {
    for e in rootfs_entries() {
        match e {
            Entry::Dir { path, mode } => {
                let p = root.join(path);
                std::fs::create_dir_all(&p).expect("create rootfs dir");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                    .expect("chmod rootfs dir");
            }
            Entry::File { path, mode, data } => {
                let p = root.join(path);
                std::fs::write(&p, data).expect("write rootfs file");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                    .expect("chmod rootfs file");
            }
            Entry::Symlink { path, target } => {
                symlink(target, root.join(path)).expect("symlink applet");
            }
        }
    }
}

/// The `ociVersion` written in bundles: "1.2.0", or `$BERTH_TEST_OCI_VERSION`
/// (crun 1.8 only knows 1.0/1.1 and refuses "1.2.0").
pub fn oci_version() -> String {
    std::env::var("BERTH_TEST_OCI_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "1.2.0".into())
}

/// A runc-style default spec with Docker's defaults, for `args`.
pub fn default_spec(args: &[&str], cgroups_path: &str, hostname: &str) -> Value {
    let caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    let dev = |major: i64, minor: Option<i64>| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    json!({
        "ociVersion": oci_version(),
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [
                    {"allow": false, "access": "rwm"},
                    dev(1, Some(3)),   // null
                    dev(1, Some(5)),   // zero
                    dev(1, Some(7)),   // full
                    dev(1, Some(8)),   // random
                    dev(1, Some(9)),   // urandom
                    dev(5, Some(0)),   // tty
                    dev(5, Some(1)),   // console
                    dev(5, Some(2)),   // ptmx
                    dev(136, None)     // pts/*
                ]
            },
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"}
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS
        }
    })
}

/// A bundle directory (`config.json` + `rootfs/`) in its own temp dir,
/// removed on drop.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory (absolute).
    pub dir: PathBuf,
    /// `linux.cgroupsPath` written in the default spec (unique per bundle).
    pub cgroups_path: String,
    _tmp: TempDir,
}

/// Creates a fresh busybox bundle running `args`.
pub fn busybox_bundle(args: &[&str]) -> Bundle {
    let tmp = tempfile::Builder::new()
        .prefix("berth-bundle-")
        .tempdir()
        .expect("create bundle temp dir");
    let dir = tmp.path().to_path_buf();
    let rootfs = dir.join("rootfs");
    std::fs::create_dir(&rootfs).expect("mkdir rootfs");
    write_rootfs(&rootfs);
    let cgroups_path = format!("/berth-test/{}", unique_id("cg"));
    let spec = default_spec(args, &cgroups_path, "berth-test");
    let b = Bundle {
        dir,
        cgroups_path,
        _tmp: tmp,
    };
    b.write_spec(&spec);
    b
}

impl Bundle {
    /// `<bundle>/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `<bundle>/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The current config.json as JSON.
    pub fn spec(&self) -> Value {
        let text = std::fs::read_to_string(self.config_path()).expect("read config.json");
        serde_json::from_str(&text).expect("parse config.json")
    }

    /// Overwrites config.json with `spec`.
    pub fn write_spec(&self, spec: &Value) {
        let text = serde_json::to_string_pretty(spec).expect("serialize spec");
        std::fs::write(self.config_path(), text).expect("write config.json");
    }

    /// A mutable view of config.json, written back when the guard drops.
    pub fn spec_mut(&mut self) -> SpecGuard<'_> {
        let spec = self.spec();
        SpecGuard { bundle: self, spec }
    }

    /// Applies `f` to config.json and writes it back.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut spec = self.spec();
        f(&mut spec);
        self.write_spec(&spec);
    }

    /// Keeps the bundle on disk after drop (for debugging); returns its dir.
    pub fn keep(self) -> PathBuf {
        let dir = self.dir.clone();
        let _ = self._tmp.keep();
        dir
    }

    /// Replaces `process.args`.
    pub fn set_args(&self, args: &[&str]) {
        self.edit(|s| s["process"]["args"] = json!(args));
    }
}

/// See [`Bundle::spec_mut`].
pub struct SpecGuard<'a> {
    bundle: &'a Bundle,
    spec: Value,
}

impl std::ops::Deref for SpecGuard<'_> {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.spec
    }
}

impl std::ops::DerefMut for SpecGuard<'_> {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.spec
    }
}

impl Drop for SpecGuard<'_> {
    fn drop(&mut self) {
        self.bundle.write_spec(&self.spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_has_rootfs_and_spec() {
        let mut b = busybox_bundle(&["sh", "-c", "echo hi"]);
        let root = b.rootfs();
        let meta = std::fs::metadata(root.join("bin/busybox")).unwrap();
        assert!(meta.len() > 100_000, "busybox copied");
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::metadata(root.join("tmp"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o1777
        );
        for d in ["proc", "sys", "dev", "etc", "root", "home"] {
            assert!(root.join(d).is_dir(), "{d} missing");
        }
        let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
        assert!(group.contains("extra:x:2000:app"));
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.contains("nobody:x:65534:65534"));
        assert!(passwd.contains("app:x:1000:1000"));

        let spec = b.spec();
        assert_eq!(spec["ociVersion"], json!(oci_version()));
        assert_eq!(spec["process"]["args"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(spec["linux"]["cgroupsPath"], json!(b.cgroups_path));
        assert_eq!(
            spec["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(spec["linux"]["maskedPaths"].as_array().unwrap().len(), 12);

        b.spec_mut()["hostname"] = json!("changed");
        assert_eq!(b.spec()["hostname"], "changed");
        b.set_args(&["true"]);
        assert_eq!(b.spec()["process"]["args"], json!(["true"]));
    }

    #[test]
    fn cap_mask_matches_cap_numbers() {
        // Kernel capability numbers (linux/capability.h).
        let num = |c: &str| match c {
            "CAP_CHOWN" => 0,
            "CAP_DAC_OVERRIDE" => 1,
            "CAP_FOWNER" => 3,
            "CAP_FSETID" => 4,
            "CAP_KILL" => 5,
            "CAP_SETGID" => 6,
            "CAP_SETUID" => 7,
            "CAP_SETPCAP" => 8,
            "CAP_NET_BIND_SERVICE" => 10,
            "CAP_NET_RAW" => 13,
            "CAP_SYS_CHROOT" => 18,
            "CAP_MKNOD" => 27,
            "CAP_AUDIT_WRITE" => 29,
            "CAP_SETFCAP" => 31,
            other => panic!("unexpected {other}"),
        };
        let mask: u64 = DEFAULT_CAPS.iter().map(|c| 1u64 << num(c)).sum();
        assert_eq!(format!("{mask:016x}"), DEFAULT_CAP_MASK);
    }

    #[test]
    fn bundles_are_unique() {
        let a = busybox_bundle(&["true"]);
        let b = busybox_bundle(&["true"]);
        assert_ne!(a.dir, b.dir);
        assert_ne!(a.cgroups_path, b.cgroups_path);
    }
}
