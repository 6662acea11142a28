//! A python3 base image built from Debian packages, and the "tutorial app" build context
//! that `berth build` tests use (a Dockerfile `FROM` that image, serving HTTP on port 5000).
//!
//! No container registry is reachable from the test machines, so the base image is made
//! here: `apt-get download` fetches [`PACKAGES`] (python3.11-minimal, its stdlib and the
//! shared libraries they link), `dpkg-deb -x` unpacks each into a rootfs, the host's
//! busybox-static goes in as `/bin/busybox` with an applet symlink per name that no package
//! already provides (so `RUN` steps have `/bin/sh`), plus `/etc/passwd`, `/etc/group` (root
//! and nobody) and a 1777 `/tmp`. As root, the stdlib is byte-compiled inside the rootfs
//! (`python3 -m compileall`, so containers start without compiling) and
//! `python3 -c 'import http.server, json, urllib.request'` is run in a chroot to check it.
//!
//! The result is cached under `$BERTH_TEST_PYTHON_CACHE`, else `/var/tmp/berth-test-python`,
//! in a directory named after a hash of the exact `.deb` files apt would fetch (`apt-get
//! download --print-uris`; file names carry the versions), the busybox binary and
//! [`FIXTURE_VERSION`]. `by-apt-state/<fingerprint>` remembers which entry the current apt
//! state (package lists, sources, preferences: names, sizes, mtimes) led to, so reruns skip
//! apt. An flock serialises concurrent builders (several test binaries at once); the
//! result is also kept per process. Old cache entries are not pruned.
//!
//! Measured on the 2-core Debian 12 test machine (debug test profile): a cold build took
//! 6.1 s in all: 4.8 s for the rootfs (apt-get download of 32 packages, 13 MB, through
//! deb.debian.org, under 1 s; dpkg-deb -x, under 1 s; compileall and the chroot check) and
//! 1.2 s for the image tar (63 MB layer, `gzip -1` to 26 MB). A rerun in a new process with
//! the same apt state took 0.06 s (the apt state fingerprint maps straight to the cache
//! entry; only when it changed is apt asked, ~0.8 s). `debootstrap --variant=minbase` was
//! not measured: it is not installed here, and it downloads, unpacks and configures Debian's
//! whole required set (dpkg, apt, perl-base, coreutils, ...) before python, which cannot be
//! faster than unpacking the 32 packages python needs.
//!
//! [`python_image_tar`] writes the image as a docker 25+ `docker save` tar (OCI layout:
//! `oci-layout`, `index.json`, `blobs/sha256/*`, plus a docker `manifest.json`), so the
//! same file loads into berthd and into dockerd. One gzip layer; config `Env`
//! `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, `Cmd ["python3"]`.
//! The archive names no tag: [`load_python`] tags what it loaded, like
//! [`Berthd::load_busybox`].
//!
//! Everything returns `None` and prints a `skipped: <why>` line when the packages cannot be
//! fetched (no apt, no package lists, mirror unreachable); a rootfs whose python does not
//! run is a broken fixture and panics.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::json;

use crate::berthd::Berthd;
use crate::bundle::HOST_BUSYBOX;
use crate::host::{is_root, sha256_file, sha256_hex};
use crate::image::{host_oci_arch, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST};

/// The Debian 12 packages unpacked into the rootfs: python3.11 (minimal interpreter and the
/// full stdlib), the `python3` symlink, and the shared libraries the interpreter and its
/// extension modules link (libc, ssl, sqlite, readline/ncurses, dbm, lzma/bz2/zlib, ffi,
/// expat, uuid, crypt, nis/tirpc with its kerberos libs), and media-types for `mimetypes`.
pub const PACKAGES: [&str; 32] = [
    "libc6",
    "libgcc-s1",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libssl3",
    "libbz2-1.0",
    "liblzma5",
    "libsqlite3-0",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "readline-common",
    "libuuid1",
    "libdb5.3",
    "libgdbm6",
    "libgdbm-compat4",
    "libcrypt1",
    "libnsl2",
    "libtirpc3",
    "libtirpc-common",
    "libgssapi-krb5-2",
    "libk5crypto3",
    "libkeyutils1",
    "libkrb5-3",
    "libkrb5support0",
    "libcom-err2",
    "media-types",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "python3.11-minimal",
    "python3-minimal",
];

/// Bumped whenever what this module puts in the rootfs or the image changes, so an old cache
/// entry is not reused.
pub const FIXTURE_VERSION: &str = "berth-pyimage-2";

/// The tag tests give the python base image.
pub const PYTHON_TAG: &str = "python:3.11-berth";

/// The image's PATH (also what the docker official images use).
pub const IMAGE_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// The cache directory: `$BERTH_TEST_PYTHON_CACHE`, else `/var/tmp/berth-test-python`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BERTH_TEST_PYTHON_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/berth-test-python"))
}

/// The python3 rootfs (a directory; `usr/bin/python3`, `bin/sh`, ...), built and cached on
/// first use. None (after a `skipped:` line) when the packages cannot be fetched.
pub fn python_rootfs() -> Option<PathBuf> {
    prepared().map(|dir| dir.join("rootfs"))
}

/// A `docker load`-able tar of the python image (docker 25+ save format: OCI layout plus
/// `manifest.json`, no tag), built and cached on first use. None (after a `skipped:` line)
/// when the packages cannot be fetched.
pub fn python_image_tar() -> Option<PathBuf> {
    let dir = prepared()?;
    let tar = dir.join("python-image.tar");
    if tar.is_file() {
        return Some(tar);
    }
    let _lock = CacheLock::take(&cache_dir());
    if !tar.is_file() {
        remove_leftovers(&dir);
        let tmp = dir.join(format!("python-image.tar.tmp-{}", std::process::id()));
        write_image_tar(&dir.join("rootfs"), &tmp);
        std::fs::rename(&tmp, &tar)
            .unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), tar.display()));
    }
    Some(tar)
}

/// Load the python image into `d` and tag it `tag` (e.g. [`PYTHON_TAG`]); the image ID.
/// None (after a `skipped:` line) when the packages cannot be fetched.
pub fn load_python(d: &Berthd, tag: &str) -> Option<String> {
    let tar = python_image_tar()?;
    let path = tar.to_str().expect("cache path is UTF-8");
    let out = d.ok(&["load", "-i", path]);
    let id = crate::loaded_image_id(&out);
    d.ok(&["tag", &id, tag]);
    Some(
        d.ok(&["image", "inspect", "-f", "{{.Id}}", tag])
            .trim()
            .to_string(),
    )
}

impl Berthd {
    /// [`load_python`] on this daemon.
    pub fn load_python(&self, tag: &str) -> Option<String> {
        load_python(self, tag)
    }
}

fn skip(why: &str) -> Option<PathBuf> {
    let line = format!("skipped: python test image unavailable: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// An exclusive flock on `<cache>/.lock`, released on drop.
struct CacheLock {
    _file: File,
}

impl CacheLock {
    fn take(cache: &Path) -> CacheLock {
        std::fs::create_dir_all(cache)
            .unwrap_or_else(|e| panic!("create {}: {e}", cache.display()));
        let path = cache.join(".lock");
        let file = File::create(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        // SAFETY: flock on a descriptor this function owns; blocking is the intent.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        CacheLock { _file: file }
    }
}

/// Removes `*.tmp-*` entries in `dir`: leftovers of builders that died. Call with the
/// [`CacheLock`] held, so that nobody is building now.
fn remove_leftovers(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().contains(".tmp-") {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// What `apt-get download --print-uris` says it would fetch: sorted `<file> <checksum>` lines.
fn apt_uris() -> Result<Vec<String>, String> {
    let out = Command::new("apt-get")
        .args(["download", "--print-uris"])
        .args(PACKAGES)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run apt-get ({e}); this fixture needs Debian's apt"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-get download --print-uris failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_uri, file, _size, sum) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some(format!("{file} {sum}"))
        })
        .collect();
    lines.sort();
    if lines.len() != PACKAGES.len() {
        return Err(format!(
            "apt-get download --print-uris listed {} files for {} packages: {lines:?}",
            lines.len(),
            PACKAGES.len()
        ));
    }
    Ok(lines)
}

/// The package files, refreshing the package lists once (as root) when apt knows none.
fn apt_uris_refreshing() -> Result<Vec<String>, String> {
    match apt_uris() {
        Ok(v) => Ok(v),
        Err(first) if is_root() => {
            let st = Command::new("apt-get")
                .args(["update", "-qq"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("{first}; apt-get update: {e}"))?;
            if !st.success() {
                return Err(format!("{first}; apt-get update failed ({st})"));
            }
            apt_uris()
        }
        Err(first) => Err(format!(
            "{first} (not root, so the package lists were not refreshed)"
        )),
    }
}

/// The cache entry directory (`<cache>/<key>/rootfs` complete), building it if needed;
/// worked out once per process.
fn prepared() -> Option<PathBuf> {
    static PREPARED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PREPARED.get_or_init(prepare) {
        Ok(dir) => Some(dir.clone()),
        Err(why) => skip(why),
    }
}

/// A fingerprint of everything that decides which rootfs [`prepare`] would build without
/// asking apt (which takes ~0.8 s to load its cache): this module's version, the busybox
/// binary, and the names, sizes and mtimes of apt's package lists, sources and preferences.
/// None when there are no package lists.
fn apt_fingerprint(busybox_sha: &str) -> Option<String> {
    let mut lines = Vec::new();
    let mut stat = |p: &Path| {
        if let Ok(m) = std::fs::metadata(p) {
            if m.is_file() {
                lines.push(format!(
                    "{} {} {}.{}",
                    p.display(),
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec()
                ));
            }
        }
    };
    let mut lists = 0;
    for dir in [
        "/var/lib/apt/lists",
        "/etc/apt/sources.list.d",
        "/etc/apt/preferences.d",
    ] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            lists += usize::from(dir == "/var/lib/apt/lists");
            stat(&e.path());
        }
    }
    stat(Path::new("/etc/apt/sources.list"));
    stat(Path::new("/etc/apt/preferences"));
    if lists == 0 {
        return None;
    }
    lines.sort();
    let text = format!(
        "{FIXTURE_VERSION}\n{}\n{busybox_sha}\n{}",
        host_oci_arch(),
        lines.join("\n")
    );
    Some(sha256_hex(text.as_bytes())[..16].to_string())
}

fn prepare() -> Result<PathBuf, String> {
    if !Path::new(HOST_BUSYBOX).is_file() {
        return Err(format!(
            "{HOST_BUSYBOX} is missing; install busybox-static (apt-get install busybox-static)"
        ));
    }
    let cache = cache_dir();
    let busybox_sha = sha256_file(Path::new(HOST_BUSYBOX));
    // Fast path: the same apt state and busybox as a run that already built the rootfs.
    let memo = |fp: &str| cache.join("by-apt-state").join(fp);
    if let Some(fp) = apt_fingerprint(&busybox_sha) {
        if let Ok(key) = std::fs::read_to_string(memo(&fp)) {
            let dir = cache.join(key.trim());
            if !key.trim().is_empty() && dir.join("rootfs").is_dir() {
                return Ok(dir);
            }
        }
    }
    let debs = apt_uris_refreshing()?;
    let mut key_src = format!("{FIXTURE_VERSION}\n{}\n", host_oci_arch());
    for l in &debs {
        key_src.push_str(l);
        key_src.push('\n');
    }
    key_src.push_str(&busybox_sha);
    let key = sha256_hex(key_src.as_bytes())[..16].to_string();
    let dir = build(&cache, &key, &key_src)?;
    // Remember the apt state that led here (after any `apt-get update` above).
    if let Some(fp) = apt_fingerprint(&busybox_sha) {
        let m = memo(&fp);
        let tmp = m.with_extension(format!("tmp-{}", std::process::id()));
        let saved = m
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::write(&tmp, &key))
            .and_then(|()| std::fs::rename(&tmp, &m));
        if let Err(e) = saved {
            eprintln!("note: could not record {}: {e}", m.display());
        }
    }
    Ok(dir)
}

/// `<cache>/<key>` with a complete `rootfs/`, downloading and unpacking it if missing.
fn build(cache: &Path, key: &str, key_src: &str) -> Result<PathBuf, String> {
    let dir = cache.join(key);
    if dir.join("rootfs").is_dir() {
        return Ok(dir);
    }
    let _lock = CacheLock::take(cache);
    if dir.join("rootfs").is_dir() {
        return Ok(dir);
    }
    remove_leftovers(cache);
    let tmp = cache.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let rootfs = tmp.join("rootfs");
    let debdir = tmp.join("debs");
    for d in [&rootfs, &debdir] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    }
    if let Err(why) = download(&debdir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(why);
    }
    build_rootfs(&debdir, &rootfs);
    std::fs::remove_dir_all(&debdir).unwrap_or_else(|e| panic!("remove {}: {e}", debdir.display()));
    std::fs::write(tmp.join("packages.txt"), key_src)
        .unwrap_or_else(|e| panic!("write packages.txt in {}: {e}", tmp.display()));
    std::fs::rename(&tmp, &dir)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), dir.display()));
    Ok(dir)
}

/// `apt-get download` of [`PACKAGES`] into `debdir`.
fn download(debdir: &Path) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(["download", "-qq"])
        .args(PACKAGES)
        .current_dir(debdir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-get download failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn run_checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build_rootfs(debdir: &Path, rootfs: &Path) {
    let mut debs: Vec<PathBuf> = std::fs::read_dir(debdir)
        .unwrap_or_else(|e| panic!("read {}: {e}", debdir.display()))
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    assert_eq!(
        debs.len(),
        PACKAGES.len(),
        "apt-get download left {debs:?} in {}",
        debdir.display()
    );
    for deb in &debs {
        run_checked(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(rootfs),
            &format!("dpkg-deb -x {}", deb.display()),
        );
    }

    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
    };
    for (d, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("usr/local/bin", 0o755),
    ] {
        let p = rootfs.join(d);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        chmod(&p, mode);
    }
    let bb = rootfs.join("bin/busybox");
    std::fs::copy(HOST_BUSYBOX, &bb)
        .unwrap_or_else(|e| panic!("copy {HOST_BUSYBOX} to {}: {e}", bb.display()));
    chmod(&bb, 0o755);
    let list = run_checked(Command::new(HOST_BUSYBOX).arg("--list"), "busybox --list");
    for applet in list.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        // Packages win: busybox only fills in names that no package provides.
        let taken = ["bin", "sbin", "usr/bin", "usr/sbin"]
            .iter()
            .any(|d| rootfs.join(d).join(applet).symlink_metadata().is_ok());
        if !taken {
            let link = rootfs.join("bin").join(applet);
            symlink("busybox", &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
    for (name, text) in [("passwd", PASSWD), ("group", GROUP)] {
        let p = rootfs.join("etc").join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        chmod(&p, 0o644);
    }

    assert!(
        rootfs.join("usr/bin/python3").symlink_metadata().is_ok(),
        "no usr/bin/python3 in {} after unpacking {debs:?}",
        rootfs.display()
    );
    if is_root() {
        // Byte-compile the stdlib with the image's own interpreter, single process
        // (multiprocessing needs /dev/shm, which a bare chroot lacks).
        run_checked(
            Command::new("chroot").arg(rootfs).args([
                "/usr/bin/python3",
                "-m",
                "compileall",
                "-q",
                "/usr/lib/python3.11",
            ]),
            &format!("compileall in {}", rootfs.display()),
        );
        let out = run_checked(
            Command::new("chroot").arg(rootfs).args([
                "/usr/bin/python3",
                "-c",
                "import http.server, json, urllib.request, ssl, sqlite3; print('ok')",
            ]),
            &format!("python3 in a chroot of {}", rootfs.display()),
        );
        assert_eq!(out.trim(), "ok", "python3 in {}", rootfs.display());
        let out = run_checked(
            Command::new("chroot")
                .arg(rootfs)
                .args(["/bin/sh", "-c", "echo sh-ok"]),
            &format!("/bin/sh in a chroot of {}", rootfs.display()),
        );
        assert_eq!(out.trim(), "sh-ok", "/bin/sh in {}", rootfs.display());
    }
}

/// Appends `dir`'s children (sorted, recursively) to `b` as root-owned entries named
/// relative to `root`. Modification times are kept: `.pyc` files record their source's.
fn append_tree<W: Write>(b: &mut tar::Builder<W>, root: &Path, dir: &Path) {
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("read_dir entry").path())
        .collect();
    children.sort();
    for p in children {
        let meta = p
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
        let rel = p.strip_prefix(root).expect("child of root");
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(meta.mtime().max(0) as u64);
        h.set_mode(meta.mode() & 0o7777);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, rel, std::io::empty())
                .unwrap_or_else(|e| panic!("tar {}: {e}", p.display()));
            append_tree(b, root, &p);
        } else if ft.is_symlink() {
            let target =
                std::fs::read_link(&p).unwrap_or_else(|e| panic!("readlink {}: {e}", p.display()));
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, rel, target)
                .unwrap_or_else(|e| panic!("tar {}: {e}", p.display()));
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
            b.append_data(&mut h, rel, f)
                .unwrap_or_else(|e| panic!("tar {}: {e}", p.display()));
        } else {
            panic!(
                "{}: not a file, directory or symlink; the python rootfs should hold none",
                p.display()
            );
        }
    }
}

/// Writes the image tar for `rootfs` to `out`.
fn write_image_tar(rootfs: &Path, out: &Path) {
    // The layer tar, then `gzip -1` and `sha256sum` (the crates' gzip and sha256 are several
    // times slower in the unoptimised test profile: ~10 s instead of ~2 s here).
    let layer_tar = PathBuf::from(format!("{}.layer", out.display()));
    let layer_gz = PathBuf::from(format!("{}.layer.gz", out.display()));
    let f =
        File::create(&layer_tar).unwrap_or_else(|e| panic!("create {}: {e}", layer_tar.display()));
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
    append_tree(&mut b, rootfs, rootfs);
    let mut w = b.into_inner().expect("finish layer tar");
    w.flush().expect("flush layer tar");
    drop(w);
    let gz =
        File::create(&layer_gz).unwrap_or_else(|e| panic!("create {}: {e}", layer_gz.display()));
    let st = Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .arg(&layer_tar)
        .stdout(gz)
        .status()
        .unwrap_or_else(|e| panic!("run gzip: {e}"));
    assert!(
        st.success(),
        "gzip -1 {} failed ({st})",
        layer_tar.display()
    );
    let sums = run_checked(
        Command::new("sha256sum").arg(&layer_tar).arg(&layer_gz),
        "sha256sum of the layer",
    );
    let sums: Vec<String> = sums
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|h| format!("sha256:{h}"))
        .collect();
    assert_eq!(sums.len(), 2, "sha256sum printed {sums:?}");
    let (diff_id, layer_digest) = (sums[0].clone(), sums[1].clone());
    let layer_size = std::fs::metadata(&layer_gz)
        .unwrap_or_else(|e| panic!("stat {}: {e}", layer_gz.display()))
        .len();
    std::fs::remove_file(&layer_tar)
        .unwrap_or_else(|e| panic!("remove {}: {e}", layer_tar.display()));

    let config = serde_json::to_vec(&json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": host_oci_arch(),
        "os": "linux",
        "config": {"Env": [IMAGE_PATH], "Cmd": ["python3"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": format!("berth-tests {FIXTURE_VERSION}: Debian python3.11")}]
    }))
    .expect("config json");
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer_digest, "size": layer_size}]
    }))
    .expect("manifest json");
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": host_oci_arch(), "os": "linux"}
        }]
    }))
    .expect("index json");
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let docker_manifest = serde_json::to_vec(&json!([{
        "Config": blob(&config_digest),
        "RepoTags": null,
        "Layers": [blob(&layer_digest)]
    }]))
    .expect("manifest.json");

    let f = File::create(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    let mut t = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
    let mut put = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        t.append_data(&mut h, name, data)
            .unwrap_or_else(|e| panic!("tar {name}: {e}"));
    };
    put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    put("index.json", &index);
    put("manifest.json", &docker_manifest);
    put(&blob(&config_digest), &config);
    put(&blob(&manifest_digest), &manifest);
    let mut layer =
        File::open(&layer_gz).unwrap_or_else(|e| panic!("open {}: {e}", layer_gz.display()));
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(layer_size);
    t.append_data(&mut h, blob(&layer_digest), &mut layer)
        .expect("tar layer blob");
    let mut w = t.into_inner().expect("finish image tar");
    w.flush().expect("flush image tar");
    drop(layer);
    std::fs::remove_file(&layer_gz)
        .unwrap_or_else(|e| panic!("remove {}: {e}", layer_gz.display()));
}

/// The body `GET /` of the tutorial app answers.
pub const TUTORIAL_HELLO: &str = "hello from berth build\n";

/// The tutorial's `requirements.txt` (never installed: there is no PyPI in containers).
pub const TUTORIAL_REQUIREMENTS: &str = "flask==3.0.3\nredis==5.0.8\n";

/// What the tutorial Dockerfile's `RUN` step writes to `/app/installed.txt`, which
/// `GET /pkg` answers: proof the RUN step ran after `COPY . .`.
pub const TUTORIAL_INSTALLED: &str = "installed: flask==3.0.3, redis==5.0.8\n";

/// The tutorial Dockerfile's `RUN` command (shell form, run in WORKDIR /app): reads
/// requirements.txt and writes [`TUTORIAL_INSTALLED`] to /app/installed.txt.
pub const TUTORIAL_RUN: &str = "python3 -c \"print('installed: ' + ', '.join(l.strip() for l in open('requirements.txt') if l.strip()))\" > /app/installed.txt";

/// The tutorial app: `GET /` -> [`TUTORIAL_HELLO`], `GET /pkg` -> /app/installed.txt,
/// `GET /files` -> the sorted names in /app (one a line, directories with a `/`), so tests
/// can check what `COPY . .` and `.dockerignore` let through; anything else 404. It prints
/// `listening on 5000` (flushed) once it accepts connections.
pub const TUTORIAL_APP_PY: &str = r#"import http.server
import os

HELLO = b"hello from berth build\n"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            body = HELLO
        elif self.path == "/pkg":
            with open("/app/installed.txt", "rb") as f:
                body = f.read()
        elif self.path == "/files":
            names = []
            for n in sorted(os.listdir("/app")):
                names.append(n + "/" if os.path.isdir(os.path.join("/app", n)) else n)
            body = "".join(n + "\n" for n in names).encode()
        else:
            self.send_error(404, "no such page")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 5000), Handler)
    print("listening on 5000", flush=True)
    server.serve_forever()
"#;

/// The tutorial's `.dockerignore`.
pub const TUTORIAL_DOCKERIGNORE: &str = "# build leftovers and secrets stay out of the image\n\
*.pyc\n\
__pycache__\n\
secrets/\n";

/// Files [`tutorial_app`] writes that `.dockerignore` must keep out of the image.
pub const TUTORIAL_IGNORED: [&str; 2] = ["stale.pyc", "secrets/api-token.txt"];

/// The tutorial Dockerfile, `FROM base`.
pub fn tutorial_dockerfile(base: &str) -> String {
    format!(
        "# The getting-started tutorial: a small python web app.\n\
         FROM {base}\n\
         WORKDIR /app\n\
         COPY . .\n\
         RUN {TUTORIAL_RUN}\n\
         EXPOSE 5000\n\
         CMD [\"python3\", \"app.py\"]\n"
    )
}

/// Writes the tutorial build context into `dir` (created if missing), `FROM` [`PYTHON_TAG`].
pub fn tutorial_app(dir: &Path) {
    tutorial_app_from(dir, PYTHON_TAG);
}

/// Writes the tutorial build context into `dir` (created if missing), `FROM base`:
/// `Dockerfile`, `app.py`, `requirements.txt`, `.dockerignore`, and the files
/// [`TUTORIAL_IGNORED`] names (which the build must leave out).
pub fn tutorial_app_from(dir: &Path, base: &str) {
    std::fs::create_dir_all(dir.join("secrets"))
        .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let dockerfile = tutorial_dockerfile(base);
    for (name, data) in [
        ("Dockerfile", dockerfile.as_bytes()),
        ("app.py", TUTORIAL_APP_PY.as_bytes()),
        ("requirements.txt", TUTORIAL_REQUIREMENTS.as_bytes()),
        (".dockerignore", TUTORIAL_DOCKERIGNORE.as_bytes()),
        ("stale.pyc", b"\x00not a real pyc\n".as_slice()),
        ("secrets/api-token.txt", b"do-not-ship-me\n".as_slice()),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_context_is_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        tutorial_app_from(&ctx, "example/python:1");
        let dockerfile = std::fs::read_to_string(ctx.join("Dockerfile")).unwrap();
        let lines: Vec<&str> = dockerfile.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "FROM example/python:1",
                "WORKDIR /app",
                "COPY . .",
                &format!("RUN {TUTORIAL_RUN}"),
                "EXPOSE 5000",
                r#"CMD ["python3", "app.py"]"#,
            ]
        );
        assert_eq!(
            std::fs::read_to_string(ctx.join("requirements.txt")).unwrap(),
            TUTORIAL_REQUIREMENTS
        );
        let app = std::fs::read_to_string(ctx.join("app.py")).unwrap();
        assert!(app.contains(&format!("HELLO = b{:?}", TUTORIAL_HELLO)));
        assert!(app.contains(r#"("0.0.0.0", 5000)"#));
        let ignore = std::fs::read_to_string(ctx.join(".dockerignore")).unwrap();
        assert!(ignore.lines().any(|l| l == "*.pyc") && ignore.lines().any(|l| l == "secrets/"));
        for f in TUTORIAL_IGNORED {
            assert!(ctx.join(f).is_file(), "{f} written");
        }
        tutorial_app(&ctx);
        let dockerfile = std::fs::read_to_string(ctx.join("Dockerfile")).unwrap();
        assert!(dockerfile.contains(&format!("\nFROM {PYTHON_TAG}\n")));
    }
}
