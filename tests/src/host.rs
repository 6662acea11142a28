//! Host-side helpers: root check, unique ids, hashing, and leftover detection
//! (cgroup directories, mounts) used to prove a runtime cleaned up.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns true when running as root. Otherwise prints a "skipped" line naming
/// the test (never skip silently) and returns false. The line goes straight to
/// the process's stderr, so libtest's output capture does not hide it.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    let line = format!("skipped: {test} needs root (run the suite as root, e.g. sudo -E)\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A short id unique across parallel tests and concurrent test processes:
/// `<prefix>-<pid>-<counter>-<nanos>`. Valid as a container id and a cgroup name.
pub fn unique_id(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Lower-case hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex sha256 of a file's content.
pub fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("open {} for hashing: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).expect("read for hashing");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Directories named by `cgroups_path` (e.g. "/berth-test/abc") that still
/// exist under any mounted cgroup hierarchy (v1 controllers and the v2
/// unified mount). Empty means the runtime removed them all.
pub fn cgroup_leftovers(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    let mut found = Vec::new();
    if rel.is_empty() {
        return found;
    }
    let mut roots: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            roots.push(e.path());
        }
    }
    for root in roots {
        let p = root.join(rel);
        if p.is_dir() {
            found.push(p);
        }
    }
    found
}

/// Lines of the host's /proc/self/mountinfo that mention `needle` (e.g. a
/// bundle directory). Empty means no mount of that bundle leaked to the host.
pub fn host_mounts_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// crun 1.8 refuses hybrid cgroup hosts whose v2 hierarchy holds a
/// controller (here: hugetlb). Mounting hugetlb as a v1 hierarchy moves it
/// out of the unified mount. Returns true when it performed the mount.
/// Idempotent and serialized: does nothing if the unified hierarchy holds no
/// hugetlb. The kernel only moves the controller when the unified root does
/// not delegate it (`-hugetlb` in cgroup.subtree_control) and no child
/// cgroup still uses it.
pub fn fix_hybrid_hugetlb() -> bool {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let unified = Path::new("/sys/fs/cgroup/unified");
    let holds_hugetlb = || {
        std::fs::read_to_string(unified.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "hugetlb")
    };
    if !holds_hugetlb() {
        return false;
    }
    let _ = std::fs::create_dir_all("/sys/fs/cgroup/hugetlb");
    let mount = || {
        Command::new("mount")
            .args([
                "-t",
                "cgroup",
                "-o",
                "hugetlb",
                "cgroup",
                "/sys/fs/cgroup/hugetlb",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if mount() {
        return true;
    }
    let subtree = unified.join("cgroup.subtree_control");
    if std::fs::read_to_string(&subtree)
        .unwrap_or_default()
        .contains("hugetlb")
    {
        let _ = std::fs::write(&subtree, "-hugetlb");
    }
    if mount() {
        return true;
    }
    eprintln!(
        "warning: could not move hugetlb out of the cgroup v2 hierarchy (a child cgroup of \
         /sys/fs/cgroup/unified may still use it); crun will refuse this host"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_differ() {
        let a = unique_id("t");
        let b = unique_id("t");
        assert_ne!(a, b);
        assert!(a.starts_with("t-"));
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
