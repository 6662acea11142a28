//! Named and anonymous volumes with the `local` driver, laid out like Docker's:
//!
//! ```text
//! <root>/                  (<data-root>/volumes, mode 0701)
//!   metadata.db            SQLite (WAL): name, driver, labels, options, created_at, populated
//!   <name>/_data           the volume's content, bind-mounted into containers
//! ```
//!
//! All state is in SQLite; the directories only hold content. A volume with `type`/`device`/`o`
//! options (`type=tmpfs,device=tmpfs,o=size=100m`, `type=none,o=bind,device=/host/path`) has
//! them validated at create and mounted onto `_data` when a container first uses it
//! ([`Volumes::prepare`]); it stays mounted until the volume is removed.
//!
//! Whether a volume is *in use* is the container service's knowledge: callers pass the set of
//! volume names containers use where it matters (list's `dangling` filter, prune).

use crate::fsops;
use crate::images::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use rustix::fs::{FileType, OFlags};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `GET /volumes/{name}` and one item of `GET /volumes`, with Docker's field names.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: String,
    pub name: String,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// `UsageData` (system df): bytes used and how many containers reference the volume.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// `POST /volumes/prune`'s answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// The filters of `GET /volumes`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `dangling=true`: only volumes no container uses; `false`: only used ones.
    pub dangling: Option<bool>,
    /// Any of these drivers.
    pub drivers: Vec<String>,
    /// Every one of these: `key` (present) or `key=value`.
    pub labels: Vec<String>,
    /// Any of these substrings of the name.
    pub names: Vec<String>,
}

/// The filters of `POST /volumes/prune`.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// Named volumes too (API ≥ 1.42 prunes only anonymous ones unless `all=true`).
    pub all: bool,
    /// Every one of these must match (`key` or `key=value`).
    pub labels: Vec<String>,
    /// None of these may match (`label!=`).
    pub not_labels: Vec<String>,
}

pub struct Volumes {
    root: PathBuf,
    db: Mutex<Connection>,
    /// Serialises populates (a copy can be long: the database lock is not held for it).
    populating: Mutex<()>,
}

/// Whether a name is one the local driver accepts: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed (at least 2 characters). If you intended to \
         pass a host directory, use absolute path"
    )))
}

/// A fresh name for an anonymous volume: 64 random hex digits.
pub fn new_anonymous_name() -> Result<String> {
    let mut b = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| Error::internal(format!("opening /dev/urandom: {e}")))?;
    std::io::Read::read_exact(&mut f, &mut b)
        .map_err(|e| Error::internal(format!("reading /dev/urandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let full = berth_time::format(std::time::Duration::from_secs(secs));
    // Docker shows whole seconds: 2024-05-01T12:34:56Z.
    match full.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => full,
    }
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("volume metadata: {e}"))
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> Error {
    Error::internal(format!("{what}: {e}"))
}

fn no_such(name: &str) -> Error {
    Error::not_found(format!("get {name}: no such volume"))
}

/// Whether `labels` satisfies a `key` or `key=value` filter.
pub fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

/// The local driver's mount options, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
struct MountOpts {
    fstype: String,
    device: String,
    flags: nix::mount::MsFlags,
    data: String,
    bind: bool,
}

fn mount_opts(name: &str, opts: &BTreeMap<String, String>) -> Result<Option<MountOpts>> {
    use nix::mount::MsFlags;
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(Error::invalid(format!(
                "create {name}: invalid option: \"{k}\" (the local driver takes type, device and o)"
            )));
        }
    }
    let get = |k: &str| opts.get(k).map(String::as_str).unwrap_or("");
    let (fstype, device, o) = (get("type"), get("device"), get("o"));
    if fstype.is_empty() && device.is_empty() && o.is_empty() {
        return Ok(None);
    }
    if device.is_empty() {
        return Err(Error::invalid(format!(
            "create {name}: missing required option \"device\" (e.g. device=tmpfs with \
             type=tmpfs, or device=/host/path with o=bind)"
        )));
    }
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = false;
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "bind" => {
                bind = true;
                flags |= MsFlags::MS_BIND;
            }
            "rbind" => {
                bind = true;
                flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            }
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags.remove(MsFlags::MS_RDONLY),
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "suid" => flags.remove(MsFlags::MS_NOSUID),
            "nodev" => flags |= MsFlags::MS_NODEV,
            "dev" => flags.remove(MsFlags::MS_NODEV),
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags.remove(MsFlags::MS_NOEXEC),
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "async" => flags.remove(MsFlags::MS_SYNCHRONOUS),
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "defaults" => {}
            other => data.push(other.to_string()),
        }
    }
    if bind {
        let p = Path::new(device);
        if !p.is_absolute() {
            return Err(Error::invalid(format!(
                "create {name}: device \"{device}\" must be an absolute host path with o=bind"
            )));
        }
        if !p.is_dir() {
            return Err(Error::invalid(format!(
                "create {name}: device \"{device}\" for o=bind is not an existing directory \
                 on the host"
            )));
        }
    } else if fstype.is_empty() || fstype == "none" {
        return Err(Error::invalid(format!(
            "create {name}: option \"type\" is required with device \"{device}\" (e.g. \
             type=tmpfs), or give o=bind to bind-mount a host directory"
        )));
    }
    Ok(Some(MountOpts {
        fstype: fstype.to_string(),
        device: device.to_string(),
        flags,
        data: data.join(","),
        bind,
    }))
}

/// Whether `path` is a mount point in this mount namespace (from /proc/self/mountinfo).
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == want)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

struct Row {
    name: String,
    driver: String,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
    created_at: String,
    populated: bool,
}

impl Volumes {
    /// Open (creating) the volume store at `root` (`<data-root>/volumes`).
    pub fn open(root: &Path) -> Result<Volumes> {
        std::fs::create_dir_all(root).map_err(|e| io_err(root.display(), e))?;
        let _ = std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o701));
        let db_path = root.join("metadata.db");
        let conn = Connection::open(&db_path).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_err)?;
        match version {
            0 => {
                conn.execute_batch(
                    "BEGIN;
                     CREATE TABLE volumes (
                         name TEXT PRIMARY KEY,
                         driver TEXT NOT NULL,
                         labels TEXT NOT NULL,
                         options TEXT NOT NULL,
                         created_at TEXT NOT NULL,
                         populated INTEGER NOT NULL DEFAULT 0
                     );
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(db_err)?;
            }
            1 => {}
            v => {
                return Err(Error::internal(format!(
                    "{}: schema version {v} is newer than this berthd understands (1); \
                     use a newer berthd",
                    db_path.display()
                )))
            }
        }
        Ok(Volumes {
            root: root.to_path_buf(),
            db: Mutex::new(conn),
            populating: Mutex::new(()),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    fn row(conn: &Connection, name: &str) -> Result<Option<Row>> {
        conn.query_row(
            "SELECT name, driver, labels, options, created_at, populated FROM volumes
             WHERE name = ?1",
            params![name],
            Self::from_sql,
        )
        .optional()
        .map_err(db_err)
    }

    fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let labels: String = r.get(2)?;
        let options: String = r.get(3)?;
        Ok(Row {
            name: r.get(0)?,
            driver: r.get(1)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            options: serde_json::from_str(&options).unwrap_or_default(),
            created_at: r.get(4)?,
            populated: r.get::<_, i64>(5)? != 0,
        })
    }

    fn rows(conn: &Connection) -> Result<Vec<Row>> {
        let mut st = conn
            .prepare(
                "SELECT name, driver, labels, options, created_at, populated FROM volumes
                 ORDER BY name",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([], Self::from_sql)
            .map_err(db_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err)?;
        Ok(rows)
    }

    fn volume(&self, r: Row) -> Volume {
        Volume {
            created_at: r.created_at,
            driver: r.driver,
            labels: r.labels,
            mountpoint: self.data_dir(&r.name).to_string_lossy().into_owned(),
            name: r.name,
            options: r.options,
            scope: "local".into(),
            usage_data: None,
        }
    }

    /// `POST /volumes/create`. `name` None or empty: an anonymous-style random name (Docker
    /// names unnamed volumes the same way but without the anonymous label). An existing
    /// volume of the same name is returned as it is (`false`: not created now).
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => new_anonymous_name()?,
        };
        check_name(&name)?;
        let driver = if driver.is_empty() { "local" } else { driver };
        let conn = self.db();
        if let Some(r) = Self::row(&conn, &name)? {
            if r.driver != driver {
                return Err(Error::conflict(format!(
                    "create {name}: a volume with the name {name} already exists with driver \
                     \"{}\"",
                    r.driver
                )));
            }
            return Ok((self.volume(r), false));
        }
        if driver != "local" {
            return Err(Error::invalid(format!(
                "create {name}: volume driver \"{driver}\" is not supported: Berth has only the \
                 \"local\" driver (leave --driver out)"
            )));
        }
        mount_opts(&name, &options)?;
        let dir = self.data_dir(&name);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(format!("create {name}"), e))?;
        let created_at = now_rfc3339();
        let res = conn.execute(
            "INSERT INTO volumes (name, driver, labels, options, created_at, populated)
             VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            params![
                name,
                driver,
                serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into()),
                serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()),
                created_at,
            ],
        );
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(self.root.join(&name));
            return Err(db_err(e));
        }
        tracing::info!(volume = %name, "volume created");
        Ok((
            self.volume(Row {
                name,
                driver: driver.into(),
                labels,
                options,
                created_at,
                populated: false,
            }),
            true,
        ))
    }

    /// `GET /volumes/{name}`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        let conn = self.db();
        let r = Self::row(&conn, name)?.ok_or_else(|| no_such(name))?;
        Ok(self.volume(r))
    }

    /// Every volume name.
    pub fn names(&self) -> Result<Vec<String>> {
        let conn = self.db();
        Ok(Self::rows(&conn)?.into_iter().map(|r| r.name).collect())
    }

    /// `GET /volumes` with its filters; `in_use`: names of volumes containers use.
    pub fn list(&self, f: &ListFilter, in_use: &HashSet<String>) -> Result<Vec<Volume>> {
        let rows = Self::rows(&self.db())?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                f.dangling != Some(in_use.contains(&r.name))
                    && (f.drivers.is_empty() || f.drivers.contains(&r.driver))
                    && f.labels.iter().all(|l| label_matches(&r.labels, l))
                    && (f.names.is_empty() || f.names.iter().any(|n| r.name.contains(n.as_str())))
            })
            .map(|r| self.volume(r))
            .collect())
    }

    /// The directory a container bind-mounts for volume `name`, creating the volume when it
    /// does not exist (`anonymous` marks it with `com.docker.volume.anonymous`), and mounting
    /// its `type`/`device`/`o` options onto `_data` if they are not mounted yet. Returns the
    /// path and whether the volume was created now.
    pub fn prepare(&self, name: &str, anonymous: bool) -> Result<(PathBuf, bool)> {
        let mut labels = BTreeMap::new();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        let (v, created) = self.create(Some(name), "local", BTreeMap::new(), labels)?;
        let dir = self.data_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(format!("volume {name}"), e))?;
        if let Some(m) = mount_opts(name, &v.options)? {
            if !is_mount_point(&dir) {
                self.mount(name, &m, &dir)?;
            }
        }
        Ok((dir, created))
    }

    fn mount(&self, name: &str, m: &MountOpts, dir: &Path) -> Result<()> {
        use nix::mount::{mount, MsFlags};
        let fail = |e: nix::Error| {
            Error::internal(format!(
                "mounting volume {name} ({} {} o={}) on {}: {e}",
                if m.bind { "bind" } else { &m.fstype },
                m.device,
                m.data,
                dir.display()
            ))
        };
        let data = (!m.data.is_empty()).then_some(m.data.as_str());
        if m.bind {
            mount(
                Some(m.device.as_str()),
                dir,
                None::<&str>,
                m.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
                None::<&str>,
            )
            .map_err(fail)?;
            let extra = m.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
            if !extra.is_empty() {
                if let Err(e) = mount(
                    None::<&str>,
                    dir,
                    None::<&str>,
                    extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None::<&str>,
                ) {
                    let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
                    return Err(fail(e));
                }
            }
        } else {
            mount(
                Some(m.device.as_str()),
                dir,
                Some(m.fstype.as_str()),
                m.flags,
                data,
            )
            .map_err(fail)?;
        }
        tracing::info!(volume = %name, "volume options mounted");
        Ok(())
    }

    /// Copy what the image has at `path_in_rootfs` (inside the mounted `rootfs`) into volume
    /// `name` when the volume is empty and was never populated, like Docker does on first
    /// use. The source is resolved inside `rootfs` (symlinks in the image cannot lead out of
    /// it) and copied without following any symlink. On failure the volume is left empty.
    pub fn populate(&self, name: &str, rootfs: &Path, path_in_rootfs: &str) -> Result<()> {
        let _one = self.populating.lock().unwrap_or_else(|e| e.into_inner());
        let r = Self::row(&self.db(), name)?.ok_or_else(|| no_such(name))?;
        if r.populated {
            return Ok(());
        }
        let dir = self.data_dir(name);
        let dst = fsops::open_dir(&dir).map_err(|e| io_err(format!("volume {name}"), e))?;
        let empty = fsops::list(dst.as_fd())
            .map_err(|e| io_err(format!("volume {name}"), e))?
            .is_empty();
        if empty {
            let root = fsops::open_dir(rootfs)
                .map_err(|e| io_err(format!("container root {}", rootfs.display()), e))?;
            match fsops::open_in_root(
                root.as_fd(),
                path_in_rootfs,
                OFlags::RDONLY | OFlags::DIRECTORY,
            ) {
                Ok(src) => {
                    if let Err(e) = fsops::copy_tree(src.as_fd(), dst.as_fd()) {
                        let _ = fsops::clear_dir(dst.as_fd());
                        return Err(io_err(
                            format!("copying {path_in_rootfs} from the image into volume {name}"),
                            e,
                        ));
                    }
                }
                // Nothing there (or not a directory): nothing to copy.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {}
                Err(e) => {
                    return Err(io_err(
                        format!("opening {path_in_rootfs} in the container root"),
                        e,
                    ))
                }
            }
        }
        self.db()
            .execute(
                "UPDATE volumes SET populated = 1 WHERE name = ?1",
                params![name],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Remove a volume: its mount (if its options are mounted), its directory and its record
    /// (callers check it is unused). NotFound when there is no such volume.
    pub fn remove(&self, name: &str) -> Result<()> {
        let conn = self.db();
        Self::row(&conn, name)?.ok_or_else(|| no_such(name))?;
        self.remove_locked(&conn, name)
    }

    fn remove_locked(&self, conn: &Connection, name: &str) -> Result<()> {
        let dir = self.data_dir(name);
        if is_mount_point(&dir) {
            nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
                Error::internal(format!("remove {name}: unmounting {}: {e}", dir.display()))
            })?;
            if is_mount_point(&dir) {
                return Err(Error::internal(format!(
                    "remove {name}: {} is still mounted; not removing its content",
                    dir.display()
                )));
            }
        }
        // Belt and braces for `o=bind` volumes: never delete through a mount still showing
        // the host directory (same inode as the device).
        if let Some(r) = Self::row(conn, name)? {
            if let Ok(Some(m)) = mount_opts(name, &r.options) {
                if m.bind && same_inode(&dir, Path::new(&m.device)) {
                    return Err(Error::internal(format!(
                        "remove {name}: {} still shows {}; not removing its content",
                        dir.display(),
                        m.device
                    )));
                }
            }
        }
        let vdir = self.root.join(name);
        match std::fs::remove_dir_all(&vdir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("remove {name}"), e)),
        }
        conn.execute("DELETE FROM volumes WHERE name = ?1", params![name])
            .map_err(db_err)?;
        tracing::info!(volume = %name, "volume removed");
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes (every unused one with `all`) that
    /// match the label filters.
    pub fn prune(&self, f: &PruneFilter, in_use: &HashSet<String>) -> Result<PruneReport> {
        let conn = self.db();
        let mut report = PruneReport::default();
        for r in Self::rows(&conn)? {
            if in_use.contains(&r.name)
                || (!f.all && !r.labels.contains_key(ANONYMOUS_LABEL))
                || !f.labels.iter().all(|l| label_matches(&r.labels, l))
                || f.not_labels.iter().any(|l| label_matches(&r.labels, l))
            {
                continue;
            }
            let size = self.size(&r.name).unwrap_or(0);
            self.remove_locked(&conn, &r.name)?;
            report.volumes_deleted.push(r.name);
            report.space_reclaimed += size;
        }
        Ok(report)
    }

    /// Bytes used by the volume's content (system df, UsageData).
    pub fn size(&self, name: &str) -> Result<u64> {
        let dir = self.data_dir(name);
        let fd = fsops::open_dir(&dir).map_err(|e| io_err(format!("volume {name}"), e))?;
        fsops::disk_usage(fd.as_fd()).map_err(|e| io_err(format!("volume {name}"), e))
    }

    /// Whether `path` names a directory (used to check bind sources).
    pub fn is_dir(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| {
            FileType::from_raw_mode(std::os::unix::fs::MetadataExt::mode(&m)) == FileType::Directory
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn vols() -> (tempfile::TempDir, Volumes) {
        let t = tempfile::tempdir().unwrap();
        let v = Volumes::open(&t.path().join("volumes")).unwrap();
        (t, v)
    }

    #[test]
    fn names() {
        assert!(valid_name("ab"));
        assert!(valid_name("a.b-c_d9"));
        assert!(!valid_name("a"));
        assert!(!valid_name("_ab"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
        let (_t, v) = vols();
        let e = v
            .create(Some("bad/name"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.kind(), berth_store::ErrorKind::InvalidArgument);
        assert!(e.message.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"), "{e}");
        let n = new_anonymous_name().unwrap();
        assert_eq!(n.len(), 64);
        assert!(valid_name(&n));
    }

    #[test]
    fn create_is_idempotent_and_persists() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("volumes");
        {
            let v = Volumes::open(&root).unwrap();
            let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
            let (vol, created) = v
                .create(Some("data"), "local", BTreeMap::new(), labels)
                .unwrap();
            assert!(created);
            assert_eq!(vol.scope, "local");
            assert!(vol.created_at.ends_with('Z') && !vol.created_at.contains('.'));
            assert_eq!(Path::new(&vol.mountpoint), root.join("data/_data"));
            assert!(root.join("data/_data").is_dir());
            let (again, created) = v
                .create(Some("data"), "", BTreeMap::new(), BTreeMap::new())
                .unwrap();
            assert!(!created);
            assert_eq!(again.labels["a"], "1");
            let e = v
                .create(Some("x1"), "nfs", BTreeMap::new(), BTreeMap::new())
                .unwrap_err();
            assert!(e.message.contains("\"nfs\""), "{e}");
        }
        let v = Volumes::open(&root).unwrap();
        assert_eq!(v.get("data").unwrap().labels["a"], "1");
        assert_eq!(
            v.get("nope").unwrap_err().message,
            "get nope: no such volume"
        );
        v.remove("data").unwrap();
        assert!(!root.join("data").exists());
        assert_eq!(
            v.remove("data").unwrap_err().kind(),
            berth_store::ErrorKind::NotFound
        );
    }

    #[test]
    fn list_filters_and_prune() {
        let (_t, v) = vols();
        let l = |k: &str, val: &str| BTreeMap::from([(k.to_string(), val.to_string())]);
        v.create(Some("web-data"), "", BTreeMap::new(), l("app", "web"))
            .unwrap();
        v.create(Some("db-data"), "", BTreeMap::new(), l("app", "db"))
            .unwrap();
        let anon = new_anonymous_name().unwrap();
        v.prepare(&anon, true).unwrap();
        let used = HashSet::from(["db-data".to_string()]);
        let names = |f: ListFilter| -> Vec<String> {
            v.list(&f, &used)
                .unwrap()
                .into_iter()
                .map(|v| v.name)
                .collect()
        };
        assert_eq!(names(ListFilter::default()).len(), 3);
        assert_eq!(
            names(ListFilter {
                labels: vec!["app=web".into()],
                ..Default::default()
            }),
            ["web-data"]
        );
        assert_eq!(
            names(ListFilter {
                labels: vec!["app".into()],
                ..Default::default()
            }),
            ["db-data", "web-data"]
        );
        assert_eq!(
            // (A substring no 64-hex anonymous name can contain.)
            names(ListFilter {
                names: vec!["db-".into()],
                ..Default::default()
            }),
            ["db-data"]
        );
        assert_eq!(
            names(ListFilter {
                dangling: Some(false),
                ..Default::default()
            }),
            ["db-data"]
        );
        assert_eq!(
            names(ListFilter {
                drivers: vec!["other".into()],
                ..Default::default()
            }),
            Vec::<String>::new()
        );
        // Default prune: anonymous unused volumes only.
        let r = v.prune(&PruneFilter::default(), &used).unwrap();
        assert_eq!(r.volumes_deleted, std::slice::from_ref(&anon));
        // all=true with a label filter; the used one stays.
        let r = v
            .prune(
                &PruneFilter {
                    all: true,
                    labels: vec!["app".into()],
                    not_labels: vec!["app=web".into()],
                },
                &used,
            )
            .unwrap();
        assert!(r.volumes_deleted.is_empty(), "{r:?}");
        std::fs::write(
            Path::new(&v.get("web-data").unwrap().mountpoint).join("f"),
            b"12345",
        )
        .unwrap();
        let r = v
            .prune(
                &PruneFilter {
                    all: true,
                    ..Default::default()
                },
                &used,
            )
            .unwrap();
        assert_eq!(r.volumes_deleted, ["web-data"]);
        assert_eq!(r.space_reclaimed, 5);
        assert_eq!(v.names().unwrap(), ["db-data"]);
    }

    #[test]
    fn options_are_validated() {
        let (_t, v) = vols();
        let o = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e = v
            .create(Some("v1"), "", o(&[("size", "1g")]), BTreeMap::new())
            .unwrap_err();
        assert!(e.message.contains("invalid option: \"size\""), "{e}");
        let e = v
            .create(Some("v1"), "", o(&[("type", "tmpfs")]), BTreeMap::new())
            .unwrap_err();
        assert!(e.message.contains("\"device\""), "{e}");
        let e = v
            .create(
                Some("v1"),
                "",
                o(&[("o", "bind"), ("device", "/no/such/dir/x")]),
                BTreeMap::new(),
            )
            .unwrap_err();
        assert!(e.message.contains("/no/such/dir/x"), "{e}");
        assert!(v.names().unwrap().is_empty(), "nothing half-created");
        let m = mount_opts(
            "v",
            &o(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=100m,ro,uid=5"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.data, "size=100m,uid=5");
        assert!(m.flags.contains(nix::mount::MsFlags::MS_RDONLY));
        assert!(!m.bind);
    }

    #[test]
    fn tmpfs_option_mounts_on_prepare() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to mount");
            return;
        }
        let (_t, v) = vols();
        let opts = BTreeMap::from([
            ("type".to_string(), "tmpfs".to_string()),
            ("device".to_string(), "tmpfs".to_string()),
            ("o".to_string(), "size=1m".to_string()),
        ]);
        v.create(Some("tv"), "", opts, BTreeMap::new()).unwrap();
        let (dir, created) = v.prepare("tv", false).unwrap();
        assert!(!created);
        assert!(is_mount_point(&dir));
        v.prepare("tv", false).unwrap();
        v.remove("tv").unwrap();
        assert!(!is_mount_point(&dir));
        assert!(!dir.exists());
    }

    fn rootfs_with_data(t: &Path) -> PathBuf {
        let rootfs = t.join("rootfs");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::write(rootfs.join("data/sub/file"), b"image content").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.join("data/link")).unwrap();
        std::fs::set_permissions(
            rootfs.join("data/sub"),
            std::os::unix::fs::PermissionsExt::from_mode(0o750),
        )
        .unwrap();
        rootfs
    }

    #[test]
    fn populate_copies_once_and_keeps_symlinks() {
        let (t, v) = vols();
        let rootfs = rootfs_with_data(t.path());
        let (dir, _) = v.prepare("pv", false).unwrap();
        v.populate("pv", &rootfs, "/data").unwrap();
        assert_eq!(
            std::fs::read(dir.join("sub/file")).unwrap(),
            b"image content"
        );
        assert_eq!(
            std::fs::metadata(dir.join("sub")).unwrap().mode() & 0o7777,
            0o750
        );
        assert_eq!(
            std::fs::read_link(dir.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        // Populated once: emptying it and populating again copies nothing.
        std::fs::remove_dir_all(dir.join("sub")).unwrap();
        std::fs::remove_file(dir.join("link")).unwrap();
        v.populate("pv", &rootfs, "/data").unwrap();
        assert!(fsops::list(fsops::open_dir(&dir).unwrap().as_fd())
            .unwrap()
            .is_empty());
        // A volume that already has content is not populated.
        let (dir2, _) = v.prepare("pv2", false).unwrap();
        std::fs::write(dir2.join("mine"), b"x").unwrap();
        v.populate("pv2", &rootfs, "/data").unwrap();
        assert!(!dir2.join("sub").exists());
        // A path the image doesn't have: nothing copied, no error.
        let (dir3, _) = v.prepare("pv3", false).unwrap();
        v.populate("pv3", &rootfs, "/nonexistent").unwrap();
        assert!(fsops::list(fsops::open_dir(&dir3).unwrap().as_fd())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn populate_cannot_escape_the_rootfs() {
        let (t, v) = vols();
        // A secret on the host, outside the container root.
        let host = t.path().join("host-secret");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("secret"), b"host only").unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/container-file"), b"inside").unwrap();
        // /data -> the host path (absolute), /rel -> ../../host-secret, /etc2 -> /etc.
        std::os::unix::fs::symlink(&host, rootfs.join("data")).unwrap();
        std::os::unix::fs::symlink("../../../../../../host-secret", rootfs.join("rel")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("etc2")).unwrap();
        for (vol, path) in [("e1", "/data"), ("e2", "/rel"), ("e3", "/../host-secret")] {
            let (dir, _) = v.prepare(vol, false).unwrap();
            v.populate(vol, &rootfs, path).unwrap();
            assert!(
                !dir.join("secret").exists(),
                "{path}: a host file was copied into the volume"
            );
            assert!(fsops::list(fsops::open_dir(&dir).unwrap().as_fd())
                .unwrap()
                .is_empty());
        }
        // A symlink to /etc resolves to the container's /etc, not the host's.
        let (dir, _) = v.prepare("e4", false).unwrap();
        v.populate("e4", &rootfs, "/etc2").unwrap();
        assert_eq!(
            fsops::list(fsops::open_dir(&dir).unwrap().as_fd()).unwrap(),
            [b"container-file".to_vec()]
        );
        assert!(!dir.join("passwd").exists());
    }
}
