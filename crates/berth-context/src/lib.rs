//! Docker's context store, read and written the way the docker CLI does, so that `berth` and
//! `docker` see the same contexts and the same current context.
//!
//! - The store lives in the docker CLI's config directory: `$DOCKER_CONFIG`, else
//!   `~/.docker` ([`Store::from_env`]).
//! - A context named `NAME` is `contexts/meta/<sha256 hex of NAME>/meta.json`:
//!   `{"Name": NAME, "Metadata": {"Description": …}, "Endpoints": {"docker": {"Host":
//!   "unix:///…", "SkipTLSVerify": false}}}`; its TLS files (which berth never writes) would be
//!   under `contexts/tls/<same hex>/`.
//! - The current context is `currentContext` in `config.json`; absent or `"default"` means
//!   the default context (the one built from `-H`/`DOCKER_HOST`). Writing it keeps every other
//!   key of the file (credentials, formats, plugins…) and replaces the file atomically.
//! - `default` is reserved; other names match `^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`.
//!
//! Which context a command uses (`-H`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `currentContext`) is
//! the caller's business: this crate only stores.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The context every client has without a store entry: the `-H`/`DOCKER_HOST` engine.
pub const DEFAULT_CONTEXT: &str = "default";

/// docker's rule for context names, as docker prints it.
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$";

/// What went wrong with the store; each message says what and how to fix it.
#[derive(Debug)]
pub enum Error {
    /// A name that does not match [`NAME_PATTERN`].
    InvalidName(String),
    /// `default`, which only the built-in context may be called.
    Reserved,
    /// `create` of a name that is already taken.
    Exists(String),
    /// No context of that name in the store.
    NotFound(String),
    /// Neither `DOCKER_CONFIG` nor `HOME` is set.
    NoConfigDir,
    /// A file of the store that is not what docker writes.
    Malformed { path: PathBuf, why: String },
    /// An I/O error, with what was being done.
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidName(n) => write!(
                f,
                "context name {n:?} is invalid, names are validated against regexp \
                 \"{NAME_PATTERN}\": use at least two characters, letters, digits and _.+- \
                 only, starting with a letter or digit"
            ),
            Error::Reserved => write!(
                f,
                "\"{DEFAULT_CONTEXT}\" is a reserved context name: pick another name"
            ),
            Error::Exists(n) => write!(
                f,
                "context {n:?} already exists: pick another name, or remove it first \
                 (berth context rm {n})"
            ),
            Error::NotFound(n) => write!(
                f,
                "context {n:?} does not exist: list the contexts with `berth context ls`"
            ),
            Error::NoConfigDir => {
                f.write_str("cannot find the docker config directory: set DOCKER_CONFIG or HOME")
            }
            Error::Malformed { path, why } => {
                write!(f, "{}: {why}: fix or remove the file", path.display())
            }
            Error::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Checks `name` against docker's rule; `default` is refused as reserved.
pub fn validate_name(name: &str) -> Result<()> {
    if name == DEFAULT_CONTEXT {
        return Err(Error::Reserved);
    }
    let ok_first = |c: char| c.is_ascii_alphanumeric();
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-');
    let mut chars = name.chars();
    let valid =
        chars.next().is_some_and(ok_first) && name.chars().count() >= 2 && chars.all(ok_rest);
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// The directory name of a context: the SHA-256 of its name, in lowercase hex.
pub fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a docker endpoint host the way `docker context create --docker host=…` does: a
/// `scheme://address` with a scheme docker knows; a unix socket needs an absolute path.
pub fn validate_host(host: &str) -> std::result::Result<(), String> {
    let Some((scheme, rest)) = host.split_once("://") else {
        return Err(format!(
            "unable to parse docker host {host:?}: give scheme://address, \
             e.g. unix:///run/berth/berth.sock"
        ));
    };
    match scheme {
        "unix" if rest.starts_with('/') => Ok(()),
        "unix" => Err(format!(
            "docker host {host:?}: a unix socket needs an absolute path, \
             e.g. unix:///run/berth/berth.sock"
        )),
        "tcp" | "ssh" | "npipe" | "fd" | "http" | "https" if !rest.is_empty() => Ok(()),
        _ => Err(format!(
            "docker host {host:?}: unsupported address; give unix:///path (or tcp://, ssh://, \
             npipe://, fd:// for other docker clients)"
        )),
    }
}

/// One context of the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    pub name: String,
    /// `Metadata.Description` ("" when there is none).
    pub description: String,
    /// `Endpoints.docker.Host`; `None` when the context has no docker endpoint.
    pub host: Option<String>,
    /// `Endpoints.docker.SkipTLSVerify`.
    pub skip_tls_verify: bool,
    /// `meta.json` as stored, with the keys other tools keep (other endpoints, metadata).
    pub meta: Value,
}

impl Context {
    /// A context with a docker endpoint at `host`, as `docker context create` writes it.
    pub fn new(name: &str, host: &str, description: Option<&str>) -> Context {
        let mut metadata = Map::new();
        if let Some(d) = description.filter(|d| !d.is_empty()) {
            metadata.insert("Description".into(), Value::String(d.into()));
        }
        let meta = serde_json::json!({
            "Name": name,
            "Metadata": metadata,
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
        });
        Context {
            name: name.to_string(),
            description: description.unwrap_or_default().to_string(),
            host: Some(host.to_string()),
            skip_tls_verify: false,
            meta,
        }
    }

    /// The fields of a parsed `meta.json`.
    fn from_meta(meta: Value) -> std::result::Result<Context, String> {
        let Some(name) = meta.get("Name").and_then(Value::as_str) else {
            return Err("no \"Name\" string".into());
        };
        let docker = meta.pointer("/Endpoints/docker");
        Ok(Context {
            name: name.to_string(),
            description: meta
                .pointer("/Metadata/Description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            host: docker
                .and_then(|d| d.get("Host"))
                .and_then(Value::as_str)
                .map(str::to_string),
            skip_tls_verify: docker
                .and_then(|d| d.get("SkipTLSVerify"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            meta,
        })
    }
}

/// A `meta.json` the store could not read (`list` goes on without it).
#[derive(Clone, Debug, PartialEq)]
pub struct Broken {
    pub path: PathBuf,
    pub why: String,
}

/// The context store in one docker config directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (a docker config directory, the one holding `config.json`).
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// `$DOCKER_CONFIG`, else `$HOME/.docker` (`%USERPROFILE%` on Windows).
    pub fn from_env() -> Result<Store> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Ok(Store::new(d));
        }
        let home = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
        std::env::var_os(home)
            .filter(|h| !h.is_empty())
            .map(|h| Store::new(PathBuf::from(h).join(".docker")))
            .ok_or(Error::NoConfigDir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `config.json`, where `currentContext` is.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `contexts/meta/<id>`: the directory of the context's `meta.json`.
    pub fn meta_dir(&self, name: &str) -> PathBuf {
        self.dir
            .join("contexts")
            .join("meta")
            .join(context_id(name))
    }

    /// `contexts/tls/<id>`: where docker keeps the context's TLS files.
    pub fn tls_dir(&self, name: &str) -> PathBuf {
        self.dir.join("contexts").join("tls").join(context_id(name))
    }

    fn meta_file(&self, name: &str) -> PathBuf {
        self.meta_dir(name).join("meta.json")
    }

    fn read_meta(path: &Path) -> Result<Option<Context>> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let malformed = |why: String| Error::Malformed {
            path: path.to_path_buf(),
            why,
        };
        let meta: Value =
            serde_json::from_slice(&data).map_err(|e| malformed(format!("not JSON ({e})")))?;
        Context::from_meta(meta).map(Some).map_err(malformed)
    }

    /// Whether a context called `name` is stored.
    pub fn exists(&self, name: &str) -> bool {
        self.meta_file(name).is_file()
    }

    /// The context called `name`.
    pub fn get(&self, name: &str) -> Result<Context> {
        let path = self.meta_file(name);
        match Store::read_meta(&path)? {
            Some(c) if c.name == name => Ok(c),
            Some(c) => Err(Error::Malformed {
                path,
                why: format!("it names the context {:?}, not {name:?}", c.name),
            }),
            None => Err(Error::NotFound(name.to_string())),
        }
    }

    /// Every stored context, sorted by name, and the `meta.json` files that could not be read.
    pub fn list(&self) -> Result<(Vec<Context>, Vec<Broken>)> {
        let root = self.dir.join("contexts").join("meta");
        let entries = match std::fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()))
            }
            Err(e) => return Err(io_err(format!("listing {}", root.display()))(e)),
        };
        let mut found = Vec::new();
        let mut broken = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(format!("listing {}", root.display())))?;
            let path = entry.path().join("meta.json");
            match Store::read_meta(&path) {
                Ok(Some(c)) => found.push(c),
                Ok(None) => {}
                Err(e) => broken.push(Broken {
                    why: match e {
                        Error::Malformed { why, .. } => why,
                        other => other.to_string(),
                    },
                    path,
                }),
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((found, broken))
    }

    /// Adds `ctx`; refuses an invalid or reserved name and one already taken.
    pub fn create(&self, ctx: &Context) -> Result<()> {
        validate_name(&ctx.name)?;
        let dir = self.meta_dir(&ctx.name);
        let parent = self.dir.join("contexts").join("meta");
        std::fs::create_dir_all(&parent)
            .map_err(io_err(format!("creating {}", parent.display())))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if self.exists(&ctx.name) {
                    return Err(Error::Exists(ctx.name.clone()));
                }
            }
            Err(e) => return Err(io_err(format!("creating {}", dir.display()))(e)),
        }
        write_atomic(
            &dir.join("meta.json"),
            meta_text(&ctx.meta).as_bytes(),
            0o644,
        )
    }

    /// Creates the context `name` pointing its docker endpoint at `host`, or points the
    /// existing one there (keeping its other endpoints and metadata). `Ok(false)` when it
    /// already pointed there with that description.
    pub fn upsert_docker_host(&self, name: &str, host: &str, description: &str) -> Result<bool> {
        validate_name(name)?;
        let existing = match self.get(name) {
            Ok(c) => Some(c),
            Err(Error::NotFound(_)) | Err(Error::Malformed { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut meta = match existing {
            Some(c) if c.host.as_deref() == Some(host) && c.description == description => {
                return Ok(false)
            }
            Some(c) => c.meta,
            None => Context::new(name, host, None).meta,
        };
        let Some(obj) = meta.as_object_mut() else {
            return Ok(false);
        };
        let metadata = obj
            .entry("Metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !metadata.is_object() {
            *metadata = Value::Object(Map::new());
        }
        if let Some(m) = metadata.as_object_mut() {
            m.insert("Description".into(), Value::String(description.into()));
        }
        let endpoints = obj
            .entry("Endpoints")
            .or_insert_with(|| Value::Object(Map::new()));
        if !endpoints.is_object() {
            *endpoints = Value::Object(Map::new());
        }
        if let Some(e) = endpoints.as_object_mut() {
            let docker = e
                .entry("docker")
                .or_insert_with(|| serde_json::json!({"SkipTLSVerify": false}));
            if !docker.is_object() {
                *docker = serde_json::json!({"SkipTLSVerify": false});
            }
            if let Some(d) = docker.as_object_mut() {
                d.insert("Host".into(), Value::String(host.into()));
            }
        }
        let dir = self.meta_dir(name);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        write_atomic(&dir.join("meta.json"), meta_text(&meta).as_bytes(), 0o644)?;
        Ok(true)
    }

    /// Removes the context `name` (its metadata and any TLS files).
    pub fn remove(&self, name: &str) -> Result<()> {
        if name == DEFAULT_CONTEXT {
            return Err(Error::Reserved);
        }
        let dir = self.meta_dir(name);
        if !dir.join("meta.json").is_file() {
            return Err(Error::NotFound(name.to_string()));
        }
        std::fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))?;
        let tls = self.tls_dir(name);
        match std::fs::remove_dir_all(&tls) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_err(format!("removing {}", tls.display()))(e))
            }
            _ => Ok(()),
        }
    }

    /// `config.json` as a JSON object (empty when the file is missing or blank).
    fn read_config(&self) -> Result<Map<String, Value>> {
        let path = self.config_file();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&data) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::Malformed {
                path,
                why: "not a JSON object".into(),
            }),
            Err(e) => Err(Error::Malformed {
                path,
                why: format!("not JSON ({e})"),
            }),
        }
    }

    /// `currentContext` of `config.json`; `None` when absent, empty or `default`.
    pub fn current(&self) -> Result<Option<String>> {
        let cfg = self.read_config()?;
        Ok(cfg
            .get("currentContext")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && *n != DEFAULT_CONTEXT)
            .map(str::to_string))
    }

    /// Sets `currentContext` (`None` or `default`: removes the key), keeping every other key
    /// of `config.json`. The file is replaced atomically and keeps its mode (0600 when new).
    /// A `config.json` that is not a JSON object is left alone: an error.
    pub fn set_current(&self, name: Option<&str>) -> Result<()> {
        let mut cfg = self.read_config()?;
        let before = cfg.get("currentContext").cloned();
        match name.filter(|n| *n != DEFAULT_CONTEXT) {
            Some(n) => {
                cfg.insert("currentContext".into(), Value::String(n.into()));
            }
            None => {
                cfg.remove("currentContext");
            }
        }
        if cfg.get("currentContext") == before.as_ref() && self.config_file().exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(io_err(format!("creating {}", self.dir.display())))?;
        // Through a symlinked config.json to the file it points at, as docker does.
        let path = std::fs::canonicalize(self.config_file()).unwrap_or(self.config_file());
        let mode = existing_mode(&path).unwrap_or(0o600);
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        serde::Serialize::serialize(&Value::Object(cfg), &mut ser).map_err(|e| Error::Io {
            what: format!("encoding {}", path.display()),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &text, mode)
    }
}

/// `meta.json` text with docker's key order (Name, Metadata, Endpoints, then any others).
fn meta_text(meta: &Value) -> String {
    let Some(obj) = meta.as_object() else {
        return meta.to_string();
    };
    let mut parts = Vec::new();
    let known = ["Name", "Metadata", "Endpoints"];
    let keys = known
        .iter()
        .map(|k| k.to_string())
        .chain(obj.keys().filter(|k| !known.contains(&k.as_str())).cloned());
    for k in keys {
        if let Some(v) = obj.get(&k) {
            parts.push(format!("{}:{v}", Value::String(k.clone())));
        }
    }
    format!("{{{}}}", parts.join(","))
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Option<u32> {
    None
}

/// Writes `data` to a temp file next to `path` with `mode`, syncs it, and renames it over
/// `path`: readers see the old file or the new one, never half of one.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{base}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        let mut f = opts.open(&tmp)?;
        // The umask may have narrowed the mode: set it as asked.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(format!("writing {}", path.display()))(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

    use super::*;

    #[test]
    fn context_id_is_the_sha256_of_the_name() {
        // `printf xx | sha256sum`; docker keeps the context "xx" in this directory.
        assert_eq!(
            context_id("xx"),
            "5dde896887f6754c9b15bfe3a441ae4806df2fde94001311e08bf110622e0bbe"
        );
        let s = Store::new("/cfg");
        assert_eq!(
            s.meta_dir("xx"),
            Path::new(
                "/cfg/contexts/meta/5dde896887f6754c9b15bfe3a441ae4806df2fde94001311e08bf110622e0bbe"
            )
        );
        assert_eq!(
            s.tls_dir("x").parent().unwrap(),
            Path::new("/cfg/contexts/tls")
        );
    }

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["ab", "berth-vm", "a.b_c+d-e", "9x", "Prod2"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "a", "-ab", ".ab", "a/b", "a b", "ä1", "_x"] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(validate_name("default"), Err(Error::Reserved)));
        let msg = validate_name("a/b").unwrap_err().to_string();
        assert!(msg.contains(NAME_PATTERN), "{msg}");
    }

    #[test]
    fn hosts() {
        validate_host("unix:///run/berth/berth.sock").unwrap();
        validate_host("tcp://10.0.0.1:2375").unwrap();
        assert!(validate_host("/tmp/s").is_err());
        assert!(validate_host("unix://relative").is_err());
        assert!(validate_host("gopher://x").is_err());
    }

    #[test]
    fn create_get_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert_eq!(s.list().unwrap(), (vec![], vec![]));
        s.create(&Context::new("zz", "unix:///z", Some("last")))
            .unwrap();
        s.create(&Context::new("aa", "unix:///a", None)).unwrap();
        let text = std::fs::read_to_string(s.meta_dir("zz").join("meta.json")).unwrap();
        assert_eq!(
            text,
            r#"{"Name":"zz","Metadata":{"Description":"last"},"Endpoints":{"docker":{"Host":"unix:///z","SkipTLSVerify":false}}}"#
        );
        let (all, broken) = s.list().unwrap();
        assert!(broken.is_empty());
        assert_eq!(
            all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["aa", "zz"]
        );
        let zz = s.get("zz").unwrap();
        assert_eq!(zz.host.as_deref(), Some("unix:///z"));
        assert_eq!(zz.description, "last");
        assert!(matches!(
            s.create(&Context::new("zz", "unix:///y", None)),
            Err(Error::Exists(_))
        ));
        assert!(matches!(
            s.create(&Context::new("default", "unix:///y", None)),
            Err(Error::Reserved)
        ));
        assert!(matches!(s.get("nope"), Err(Error::NotFound(_))));
        // A broken meta.json is reported, the rest still listed.
        let bad = d.path().join("contexts/meta/abc");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("meta.json"), "{bad").unwrap();
        let (all, broken) = s.list().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].path, bad.join("meta.json"));
        s.remove("zz").unwrap();
        assert!(!s.meta_dir("zz").exists());
        assert!(matches!(s.remove("zz"), Err(Error::NotFound(_))));
        assert!(matches!(s.remove("default"), Err(Error::Reserved)));
    }

    #[test]
    fn upsert_keeps_other_fields() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert!(s
            .upsert_docker_host("vm", "unix:///one", "Berth VM")
            .unwrap());
        assert!(!s
            .upsert_docker_host("vm", "unix:///one", "Berth VM")
            .unwrap());
        // Another tool added an endpoint and metadata: they survive a new host.
        let dir = s.meta_dir("vm");
        std::fs::write(
            dir.join("meta.json"),
            r#"{"Name":"vm","Metadata":{"Description":"Berth VM","X":1},"Endpoints":{"docker":{"Host":"unix:///one","SkipTLSVerify":true},"kubernetes":{"Host":"https://k"}}}"#,
        )
        .unwrap();
        assert!(s
            .upsert_docker_host("vm", "unix:///two", "Berth VM")
            .unwrap());
        let c = s.get("vm").unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///two"));
        assert!(c.skip_tls_verify);
        assert_eq!(c.meta["Metadata"]["X"], 1);
        assert_eq!(c.meta["Endpoints"]["kubernetes"]["Host"], "https://k");
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn current_context_keeps_every_other_key() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert_eq!(s.current().unwrap(), None);
        // A new config.json is private.
        s.set_current(Some("aa")).unwrap();
        assert_eq!(s.current().unwrap().as_deref(), Some("aa"));
        #[cfg(unix)]
        assert_eq!(mode(&s.config_file()), 0o600);

        let original = serde_json::json!({
            "auths": {"r.example.com": {"auth": "dTpw"}},
            "psFormat": "table {{.ID}}",
            "plugins": {"x": {"k": [1, 2, {"n": null}]}},
            "currentContext": "aa",
        });
        std::fs::write(s.config_file(), original.to_string()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(s.config_file(), std::fs::Permissions::from_mode(0o640))
                .unwrap();
        }
        s.set_current(Some("bb")).unwrap();
        let after: Value =
            serde_json::from_str(&std::fs::read_to_string(s.config_file()).unwrap()).unwrap();
        let mut want = original.clone();
        want["currentContext"] = "bb".into();
        assert_eq!(after, want);
        #[cfg(unix)]
        assert_eq!(mode(&s.config_file()), 0o640, "the file keeps its mode");

        // default: the key goes, the rest stays.
        s.set_current(Some("default")).unwrap();
        let after: Value =
            serde_json::from_str(&std::fs::read_to_string(s.config_file()).unwrap()).unwrap();
        let mut want = original.clone();
        want.as_object_mut().unwrap().remove("currentContext");
        assert_eq!(after, want);
        assert_eq!(s.current().unwrap(), None);
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"]);

        // "default" spelled out counts as the default context.
        std::fs::write(s.config_file(), r#"{"currentContext":"default"}"#).unwrap();
        assert_eq!(s.current().unwrap(), None);
    }

    #[test]
    fn malformed_config_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        std::fs::write(s.config_file(), "{\"currentContext\":").unwrap();
        assert!(matches!(s.current(), Err(Error::Malformed { .. })));
        let e = s.set_current(Some("aa")).unwrap_err();
        assert!(e.to_string().contains("fix or remove"), "{e}");
        assert_eq!(
            std::fs::read_to_string(s.config_file()).unwrap(),
            "{\"currentContext\":"
        );
        std::fs::write(s.config_file(), "[1]").unwrap();
        assert!(matches!(s.current(), Err(Error::Malformed { .. })));
        std::fs::write(s.config_file(), "  \n").unwrap();
        assert_eq!(s.current().unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_config_is_written_through() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.json");
        std::fs::write(&real, r#"{"auths":{}}"#).unwrap();
        let cfg = d.path().join("cfg");
        std::fs::create_dir(&cfg).unwrap();
        std::os::unix::fs::symlink(&real, cfg.join("config.json")).unwrap();
        let s = Store::new(&cfg);
        s.set_current(Some("aa")).unwrap();
        assert!(std::fs::symlink_metadata(cfg.join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink());
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"auths": {}, "currentContext": "aa"}));
    }
}
