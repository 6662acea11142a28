//! `berth build`: docker's classic-builder client. The context (a directory walked without
//! following symlinks, filtered by `.dockerignore`, or a tar/Dockerfile on stdin) is streamed
//! as a tar straight into `POST /build` as it is made, and the engine's JSON messages are
//! printed as they arrive: step text as is, pull progress like `pull`, the error on stderr.
//!
//! The request goes over its own HTTP/1.1 exchange on the engine socket: the API takes one
//! `t=` per tag (bollard's options hold one), and the API version is agreed with the engine
//! through `/_ping` so that engines older than berth's own API (Debian's dockerd speaks 1.41)
//! build too.

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Args;
use serde_json::{json, Map, Value};

use super::raw::enc;
use super::{auth, connect_message, Ctx, Failure, Res};
use crate::format::{human_size4, short_id};
use crate::progress::{Layers, Out};
use berth_build::dockerignore::DockerIgnore;

/// The newest API version berth speaks; older engines get theirs.
const MAX_API: (u32, u32) = (1, 45);

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile'; '-' reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Set build-time variables: KEY=VALUE, or KEY to take the value from the environment
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image: KEY=VALUE (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build (--rm=false keeps them)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    pub force_rm: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Images to consider as cache sources (repeatable)
    #[arg(long = "cache-from", value_name = "IMAGE")]
    pub cache_from: Vec<String>,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// The build context: a directory, or '-' for a tar (or a lone Dockerfile) on stdin
    #[arg(value_name = "PATH | -")]
    pub path: String,
}

/// Where the context comes from.
enum Source {
    /// A directory on this machine.
    Dir {
        root: PathBuf,
        /// The Dockerfile's text and generated name, when it is outside the context (or read
        /// from stdin with `-f -`).
        outside: Option<(String, Vec<u8>)>,
        ignore: Ignore,
        /// `.dockerignore` as read (None: there is none).
        ignore_text: Option<Vec<u8>>,
    },
    /// `-`: an archive (tar, or compressed) on stdin; `head` is what was read to tell.
    StdinArchive { head: Vec<u8> },
    /// `-`: a lone Dockerfile on stdin.
    StdinDockerfile { text: Vec<u8> },
}

/// `berth builder ...`.
#[derive(clap::Subcommand)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(clap::Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache (Berth keeps no other kind: the same as without -a)
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `berth builder prune`: docker's prompt, report and total.
pub fn builder(c: &Ctx, cmd: BuilderCmd) -> Res<()> {
    let BuilderCmd::Prune(a) = cmd;
    let what = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force && !super::confirm(what) {
        return Ok(());
    }
    let q = if a.all { "?all=1" } else { "" };
    let (out, space) = super::ops::prune_request(c, &super::ops::PRUNE_BUILD_CACHE, q)?;
    if !out.is_empty() {
        println!("{out}");
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size4(space)
    );
    Ok(())
}

pub async fn build(c: &Ctx, a: BuildArgs) -> Res<()> {
    for t in &a.tag {
        validate_tag(t).map_err(|why| {
            Failure::Usage(format!(
                "invalid argument {t:?} for \"-t, --tag\" flag: {why}"
            ))
        })?;
    }
    let build_args = build_arg_map(&a.build_arg, |k| std::env::var(k).ok())?;
    let labels = label_map(&a.label)?;
    if let Some(f) = &a.iidfile {
        // A failed build leaves no stale ID behind (docker does the same).
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::Usage(format!(
                    "cannot remove the old --iidfile {}: {e}",
                    f.display()
                )))
            }
        }
    }
    let (source, dockerfile) = prepare(&a)?;
    // Blocking socket and file I/O from here on.
    tokio::task::block_in_place(|| {
        let version = api_version(c)?;
        let query = query(&a, &version, &dockerfile, &build_args, &labels);
        run_build(c, &a, &version, &query, source)
    })
}

// ---- arguments ----

/// `--build-arg` values: `K=V`, or `K` taken from the environment (JSON null when unset, so
/// the Dockerfile's default applies, as docker does).
fn build_arg_map(
    raw: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Res<BTreeMap<String, Value>> {
    let mut m = BTreeMap::new();
    for a in raw {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k, Value::String(v.to_string())),
            None => (a.as_str(), env(a).map_or(Value::Null, Value::String)),
        };
        if k.is_empty() {
            return Err(Failure::Usage(format!(
                "invalid --build-arg {a:?}: expected KEY=VALUE or KEY, e.g. --build-arg VERSION=1.2"
            )));
        }
        m.insert(k.to_string(), v);
    }
    Ok(m)
}

/// `--label` values: `K=V` (`K` alone is an empty value, as docker).
fn label_map(raw: &[String]) -> Res<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for l in raw {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            return Err(Failure::Usage(format!(
                "invalid --label {l:?}: expected KEY=VALUE, e.g. --label version=1.2"
            )));
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// A build tag: a reference in docker's grammar (`[domain[:port]/]path[:tag]`, lowercase path
/// components), without a digest. The grammar is the store's, the one the engine applies.
fn validate_tag(t: &str) -> Result<(), String> {
    const BAD: &str = "invalid reference format";
    if t.is_empty() {
        return Err(format!("{BAD}: the name is empty (e.g. -t myapp:1.0)"));
    }
    if t.contains('@') {
        return Err(format!(
            "{BAD}: a build tag cannot hold a digest; use name:tag"
        ));
    }
    berth_store::reference::Reference::parse_normalized(t)
        .map(|_| ())
        .map_err(|e| {
            let e = e.to_string();
            if e.contains(BAD) {
                e
            } else {
                format!("{BAD}: {e}")
            }
        })
}

fn full_tag(t: &str) -> String {
    let last = t.rsplit('/').next().unwrap_or(t);
    if last.contains(':') {
        t.to_string()
    } else {
        format!("{t}:latest")
    }
}

// ---- the context ----

/// Work out the context and the Dockerfile's name in it (`dockerfile=` for the engine).
fn prepare(a: &BuildArgs) -> Res<(Source, String)> {
    let usage = |m: String| Failure::Usage(m);
    if a.path == "-" {
        if a.file.as_deref() == Some("-") {
            return Err(usage(
                "invalid argument: can't use stdin for both the build context and the Dockerfile"
                    .into(),
            ));
        }
        if std::io::stdin().is_terminal() {
            return Err(usage(
                "berth build -: the context is read from stdin, but stdin is a terminal: \
                 pipe a tar or a Dockerfile in (berth build - < Dockerfile)"
                    .into(),
            ));
        }
        let mut head = Vec::with_capacity(512);
        std::io::stdin()
            .lock()
            .take(512)
            .read_to_end(&mut head)
            .map_err(|e| usage(format!("cannot read the build context from stdin: {e}")))?;
        if looks_like_archive(&head) {
            let name = a.file.clone().unwrap_or_default();
            return Ok((Source::StdinArchive { head }, name));
        }
        if a.file.is_some() {
            return Err(usage(
                "ambiguous Dockerfile source: stdin holds a Dockerfile and -f names another; \
                 drop -f or pipe a tar context"
                    .into(),
            ));
        }
        let mut text = head;
        std::io::stdin()
            .lock()
            .read_to_end(&mut text)
            .map_err(|e| usage(format!("cannot read the Dockerfile from stdin: {e}")))?;
        return Ok((Source::StdinDockerfile { text }, "Dockerfile".into()));
    }

    let root = Path::new(&a.path);
    let meta = std::fs::metadata(root).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            usage(format!(
                "unable to prepare context: path {:?} not found: give an existing directory as the build context",
                a.path
            ))
        } else {
            usage(format!("unable to prepare context: cannot read {:?}: {e}", a.path))
        }
    })?;
    if !meta.is_dir() {
        return Err(usage(format!(
            "unable to prepare context: {:?} is not a directory: the build context must be a \
             directory (or '-' to read a tar from stdin)",
            a.path
        )));
    }
    let root = std::fs::canonicalize(root)
        .map_err(|e| usage(format!("unable to prepare context: {:?}: {e}", a.path)))?;

    // The Dockerfile: -f is relative to the current directory (as docker), else
    // PATH/Dockerfile, else PATH/dockerfile.
    let (dockerfile_path, stdin_text) = match a.file.as_deref() {
        Some("-") => {
            let mut t = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut t)
                .map_err(|e| usage(format!("cannot read the Dockerfile from stdin: {e}")))?;
            (None, Some(t))
        }
        Some(f) => (Some(PathBuf::from(f)), None),
        None => {
            let upper = root.join("Dockerfile");
            let lower = root.join("dockerfile");
            let p = if upper.symlink_metadata().is_err() && lower.symlink_metadata().is_ok() {
                lower
            } else {
                upper
            };
            (Some(p), None)
        }
    };
    let (inside, outside) = match (dockerfile_path, stdin_text) {
        (_, Some(text)) => (None, Some((generated_name(), text))),
        (Some(p), None) => {
            let shown = p.display().to_string();
            let real = match std::fs::canonicalize(&p) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let hint = if a.file.is_some() {
                        "check the -f path (it is relative to the current directory)"
                    } else {
                        "add a Dockerfile to the context or name one with -f"
                    };
                    return Err(usage(format!(
                        "unable to prepare context: Dockerfile {shown} not found: {hint}"
                    )));
                }
                Err(e) => {
                    return Err(usage(format!(
                        "unable to prepare context: cannot read the Dockerfile {shown}: {e}"
                    )))
                }
            };
            if !real.is_file() {
                return Err(usage(format!(
                    "unable to prepare context: the Dockerfile {shown} is not a regular file"
                )));
            }
            match real.strip_prefix(&root) {
                Ok(rel) if !rel.as_os_str().is_empty() => {
                    let rel = rel.to_string_lossy().into_owned();
                    (Some(rel), None)
                }
                _ => {
                    let text = std::fs::read(&real)
                        .map_err(|e| usage(format!("cannot read the Dockerfile {shown}: {e}")))?;
                    (None, Some((generated_name(), text)))
                }
            }
        }
        (None, None) => (None, None),
    };

    let ignore_path = root.join(".dockerignore");
    let ignore_text = match std::fs::read(&ignore_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(usage(format!(
                "cannot read {}: {e}: fix its permissions",
                ignore_path.display()
            )))
        }
    };
    let rules = match &ignore_text {
        Some(t) => DockerIgnore::parse(&String::from_utf8_lossy(t)).map_err(|e| {
            usage(format!(
                "{}: line {}: {}",
                ignore_path.display(),
                e.line,
                e.message
            ))
        })?,
        None => DockerIgnore::default(),
    };
    // docker sends the Dockerfile and .dockerignore even when they are ignored.
    let mut keep = vec![".dockerignore".to_string()];
    keep.extend(inside.clone());
    let ignore = Ignore { rules, keep };
    let name = match (&inside, &outside) {
        (Some(rel), _) => rel.clone(),
        (None, Some((gen, _))) => gen.clone(),
        (None, None) => "Dockerfile".into(),
    };
    Ok((
        Source::Dir {
            root,
            outside,
            ignore,
            ignore_text,
        },
        name,
    ))
}

/// docker's name for a Dockerfile added to the context: `.dockerfile.` and 20 random hex.
fn generated_name() -> String {
    let mut b = [0u8; 10];
    let got = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if got.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mix = t ^ (u128::from(std::process::id()) << 64);
        b.copy_from_slice(&mix.to_le_bytes()[..10]);
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(".dockerfile.{hex}")
}

/// A tar (ustar magic at 257) or a compressed stream (gzip, bzip2, xz, zstd).
fn looks_like_archive(head: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        &[0x1f, 0x8b],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGIC.iter().any(|m| head.starts_with(m)) {
        return true;
    }
    head.len() >= 262 && &head[257..262] == b"ustar"
}

// ---- .dockerignore ----

/// `.dockerignore` (berth-build's matcher, docker's semantics) plus the paths docker always
/// sends: the Dockerfile and `.dockerignore` itself.
struct Ignore {
    rules: DockerIgnore,
    keep: Vec<String>,
}

impl Ignore {
    fn excluded(&self, rel: &str) -> bool {
        !self.keep.iter().any(|k| k == rel) && self.rules.excluded(rel)
    }

    /// Whether an excluded directory must still be walked.
    fn walk_excluded_dir(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.rules.may_contain_exceptions(dir) || self.keep.iter().any(|k| k.starts_with(&prefix))
    }
}

// ---- the tar ----

/// HTTP/1.1 chunked framing over the socket, counting the payload.
struct Chunked<'a> {
    sock: &'a UnixStream,
    sent: u64,
    shown: Option<Instant>,
    terminal: bool,
}

impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.sock;
        s.write_all(format!("{:x}\r\n", buf.len()).as_bytes())?;
        s.write_all(buf)?;
        s.write_all(b"\r\n")?;
        self.sent += buf.len() as u64;
        if self.terminal
            && self
                .shown
                .is_none_or(|t| t.elapsed() > Duration::from_millis(100))
        {
            self.shown = Some(Instant::now());
            sending_line(self.sent, false);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// docker's "Sending build context to Docker daemon  N" (redrawn in place on a terminal).
fn sending_line(n: u64, done: bool) {
    let mut o = std::io::stdout().lock();
    let text = format!(
        "Sending build context to Docker daemon  {}",
        human_size4(n as f64)
    );
    let _ = if std::io::stdout().is_terminal() {
        write!(o, "\r\x1b[2K{text}{}", if done { "\n" } else { "" })
    } else if done {
        writeln!(o, "{text}")
    } else {
        Ok(())
    };
    let _ = o.flush();
}

/// Why the context could not be sent.
enum SendError {
    /// Reading the context (named in the message).
    Context(String),
    /// Writing to the engine.
    Engine(std::io::Error),
}

type Tar<'a> = tar::Builder<std::io::BufWriter<Chunked<'a>>>;

fn eng(e: std::io::Error) -> SendError {
    SendError::Engine(e)
}

/// Write the context of `src` into `b`.
fn write_context(b: &mut Tar, src: Source) -> Result<(), SendError> {
    match src {
        Source::StdinArchive { head } => {
            let w = b.get_mut();
            w.write_all(&head).map_err(eng)?;
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(SendError::Context(format!(
                            "cannot read the build context from stdin: {e}"
                        )))
                    }
                };
                w.write_all(&buf[..n]).map_err(eng)?;
            }
            Ok(())
        }
        Source::StdinDockerfile { text } => {
            append_bytes(b, "Dockerfile", &text, 0o644)?;
            b.finish().map_err(eng)
        }
        Source::Dir {
            root,
            outside,
            ignore,
            ignore_text,
        } => {
            // With a Dockerfile from outside, .dockerignore also names it, so that the engine
            // drops it from the context after reading it; a .dockerignore made for that
            // names itself too (docker's way).
            let patched_ignore = outside.as_ref().map(|(name, _)| {
                let mut t = ignore_text
                    .clone()
                    .unwrap_or_else(|| b".dockerignore".to_vec());
                t.extend_from_slice(format!("\n{name}\n").as_bytes());
                t
            });
            let mut w = Walk {
                ignore: &ignore,
                patched_ignore: patched_ignore.as_deref(),
                links: HashMap::new(),
            };
            w.dir(b, &root, "")?;
            if let Some((name, text)) = &outside {
                if ignore_text.is_none() {
                    if let Some(t) = &patched_ignore {
                        append_bytes(b, ".dockerignore", t, 0o644)?;
                    }
                }
                append_bytes(b, name, text, 0o600)?;
            }
            b.finish().map_err(eng)
        }
    }
}

fn append_bytes(b: &mut Tar, name: &str, data: &[u8], mode: u32) -> Result<(), SendError> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    b.append_data(&mut h, name, data).map_err(eng)
}

struct Walk<'a> {
    ignore: &'a Ignore,
    patched_ignore: Option<&'a [u8]>,
    /// Files with several links already sent, by (device, inode): their first name.
    links: HashMap<(u64, u64), String>,
}

impl Walk<'_> {
    fn dir(&mut self, b: &mut Tar, abs: &Path, rel: &str) -> Result<(), SendError> {
        let unreadable = |p: &Path, e: std::io::Error| {
            SendError::Context(format!(
                "cannot read {} in the build context: {e}: fix its permissions or list it in .dockerignore",
                p.display()
            ))
        };
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(abs)
            .map_err(|e| unreadable(abs, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| unreadable(abs, e))?;
        names.sort();
        for name in names {
            let path = abs.join(&name);
            let name = name.to_string_lossy();
            let rel = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(&path).map_err(|e| unreadable(&path, e))?;
            let excluded = self.ignore.excluded(&rel);
            if meta.is_dir() {
                if !excluded {
                    self.entry(b, &path, &rel, &meta)?;
                }
                if !excluded || self.ignore.walk_excluded_dir(&rel) {
                    self.dir(b, &path, &rel)?;
                }
                continue;
            }
            if excluded || meta.file_type().is_socket() {
                continue;
            }
            self.entry(b, &path, &rel, &meta)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        b: &mut Tar,
        path: &Path,
        rel: &str,
        meta: &Metadata,
    ) -> Result<(), SendError> {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        // docker sends the context owned by root.
        h.set_uid(0);
        h.set_gid(0);
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| {
                SendError::Context(format!("cannot read the symlink {}: {e}", path.display()))
            })?;
            h.set_size(0);
            return b.append_link(&mut h, rel, target).map_err(eng);
        }
        if ft.is_dir() {
            h.set_size(0);
            return b
                .append_data(&mut h, format!("{rel}/"), std::io::empty())
                .map_err(eng);
        }
        if !ft.is_file() {
            // FIFOs and devices: the header alone.
            h.set_size(0);
            return b.append_data(&mut h, rel, std::io::empty()).map_err(eng);
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                return b.append_link(&mut h, rel, first).map_err(eng);
            }
            self.links.insert(key, rel.to_string());
        }
        if rel == ".dockerignore" {
            if let Some(t) = self.patched_ignore {
                h.set_size(t.len() as u64);
                return b.append_data(&mut h, rel, t).map_err(eng);
            }
        }
        let f = std::fs::File::open(path).map_err(|e| {
            SendError::Context(format!(
                "cannot read {} in the build context: {e}: fix its permissions or list it in .dockerignore",
                path.display()
            ))
        })?;
        // Exactly the size the header promises, even if the file changes meanwhile.
        let size = meta.len();
        let mut r = f.take(size).chain(std::io::repeat(0).take(size));
        let mut limited = (&mut r).take(size);
        b.append_data(&mut h, rel, &mut limited)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted => SendError::Engine(e),
                _ => SendError::Context(format!(
                    "cannot read {} in the build context: {e}",
                    path.display()
                )),
            })
    }
}

// ---- the exchange ----

fn socket_path(c: &Ctx) -> &str {
    c.host.strip_prefix("unix://").unwrap_or(&c.host)
}

fn connect_fail(c: &Ctx, e: std::io::Error) -> Failure {
    Failure::Connect(connect_message(&c.host, &e))
}

/// The API version to speak: the engine's (from `/_ping`), at most berth's own.
fn api_version(c: &Ctx) -> Res<String> {
    let mut s = UnixStream::connect(socket_path(c)).map_err(|e| connect_fail(c, e))?;
    s.write_all(
        b"GET /_ping HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli\r\nConnection: close\r\n\r\n",
    )
    .map_err(|e| connect_fail(c, e))?;
    let mut r = BufReader::new(s);
    let (_, headers) = read_head(&mut r).map_err(|e| connect_fail(c, e))?;
    let theirs = header(&headers, "api-version").and_then(|v| {
        let (a, b) = v.split_once('.')?;
        Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
    });
    let (maj, min) = match theirs {
        Some(v) if v < MAX_API => v,
        _ => MAX_API,
    };
    Ok(format!("{maj}.{min}"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

use super::raw::read_head;

/// An answer body, chunked or to the end of the connection.
struct BodyReader<R: BufRead> {
    r: R,
    chunked: bool,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.chunked {
            return self.r.read(buf);
        }
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            loop {
                line.clear();
                if self.r.read_line(&mut line)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                if !line.trim().is_empty() {
                    break;
                }
            }
            let size = super::raw::chunk_size(&line)?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = self.left.min(buf.len() as u64) as usize;
        let got = self.r.read(&mut buf[..want])?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= got as u64;
        Ok(got)
    }
}

/// The query string of `POST /build`.
fn query(
    a: &BuildArgs,
    version: &str,
    dockerfile: &str,
    build_args: &BTreeMap<String, Value>,
    labels: &BTreeMap<String, String>,
) -> String {
    let mut q: Vec<String> = Vec::new();
    if !dockerfile.is_empty() {
        q.push(format!("dockerfile={}", enc(dockerfile)));
    }
    for t in &a.tag {
        q.push(format!("t={}", enc(t)));
    }
    if a.quiet {
        q.push("q=1".into());
    }
    if a.no_cache {
        q.push("nocache=1".into());
    }
    if a.pull {
        q.push("pull=1".into());
    }
    q.push(format!("rm={}", u8::from(a.rm)));
    if a.force_rm {
        q.push("forcerm=1".into());
    }
    if !build_args.is_empty() {
        q.push(format!("buildargs={}", enc(&json!(build_args).to_string())));
    }
    if !labels.is_empty() {
        q.push(format!("labels={}", enc(&json!(labels).to_string())));
    }
    if let Some(t) = a.target.as_deref().filter(|t| !t.is_empty()) {
        q.push(format!("target={}", enc(t)));
    }
    if let Some(n) = a.network.as_deref().filter(|n| !n.is_empty()) {
        q.push(format!("networkmode={}", enc(n)));
    }
    if let Some(p) = a.platform.as_deref().filter(|p| !p.is_empty()) {
        q.push(format!("platform={}", enc(p)));
    }
    if !a.cache_from.is_empty() {
        q.push(format!(
            "cachefrom={}",
            enc(&json!(a.cache_from).to_string())
        ));
    }
    // The classic builder, whatever DOCKER_BUILDKIT says (API 1.38 and later know `version`).
    let knows_version = version
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .is_some_and(|v| v >= (1, 38));
    if knows_version {
        q.push("version=1".into());
    }
    q.join("&")
}

/// `X-Registry-Config`: every stored login, so FROM can pull from private registries.
fn registry_config() -> Option<String> {
    let path = auth::config_path().ok()?;
    let cfg: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let mut out = Map::new();
    for (server, entry) in cfg.get("auths")?.as_object()? {
        let (user, pass) = match entry.get("auth").and_then(Value::as_str) {
            Some(a) if !a.is_empty() => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .ok()?;
                let text = String::from_utf8(raw).ok()?;
                let (u, p) = text.split_once(':')?;
                (u.to_string(), p.to_string())
            }
            _ => (
                entry.get("username")?.as_str()?.to_string(),
                entry.get("password")?.as_str()?.to_string(),
            ),
        };
        out.insert(
            server.clone(),
            json!({"username": user, "password": pass, "serveraddress": server}),
        );
    }
    if out.is_empty() {
        return None;
    }
    Some(base64::engine::general_purpose::URL_SAFE.encode(Value::Object(out).to_string()))
}

fn run_build(c: &Ctx, a: &BuildArgs, version: &str, query: &str, src: Source) -> Res<()> {
    let sock = UnixStream::connect(socket_path(c)).map_err(|e| connect_fail(c, e))?;
    let mut head = format!(
        "POST /v{version}/build?{query} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli\r\n\
         Connection: close\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n"
    );
    if let Some(rc) = registry_config() {
        head.push_str(&format!("X-Registry-Config: {rc}\r\n"));
    }
    head.push_str("\r\n");
    let show_sending = !a.quiet;
    let sent = (|| -> Result<u64, SendError> {
        (&sock).write_all(head.as_bytes()).map_err(eng)?;
        let chunked = Chunked {
            sock: &sock,
            sent: 0,
            shown: None,
            terminal: show_sending && std::io::stdout().is_terminal(),
        };
        let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(256 << 10, chunked));
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        write_context(&mut b, src)?;
        let w = b.into_inner().map_err(eng)?;
        let chunked = w.into_inner().map_err(|e| eng(e.into_error()))?;
        (&sock).write_all(b"0\r\n\r\n").map_err(eng)?;
        Ok(chunked.sent)
    })();
    let sent = match sent {
        Ok(n) => n,
        Err(SendError::Context(m)) => {
            // Leave the body unfinished: the engine sees a broken upload and builds nothing.
            let _ = sock.shutdown(std::net::Shutdown::Both);
            if show_sending && std::io::stdout().is_terminal() {
                println!();
            }
            return Err(Failure::Usage(m));
        }
        Err(SendError::Engine(e)) => {
            // The engine may have answered early (a refusal): show that if so.
            let _ = sock.shutdown(std::net::Shutdown::Write);
            let mut r = BufReader::new(&sock);
            return match read_head(&mut r) {
                Ok((status, headers)) if status >= 400 => {
                    Err(Failure::Daemon(error_body(&mut r, &headers, status)))
                }
                _ => Err(connect_fail(c, e)),
            };
        }
    };
    if show_sending {
        sending_line(sent, true);
    }
    let mut r = BufReader::new(&sock);
    let (status, headers) = read_head(&mut r).map_err(|e| connect_fail(c, e))?;
    if status >= 400 {
        return Err(Failure::Daemon(error_body(&mut r, &headers, status)));
    }
    let body = BodyReader {
        r,
        chunked: header(&headers, "transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked")),
        left: 0,
        done: false,
    };
    show_messages(c, a, body)
}

/// The engine's `{"message": ...}` of a refusal (or its text).
fn error_body(r: &mut impl BufRead, headers: &[(String, String)], status: u16) -> String {
    let mut body = BodyReader {
        r,
        chunked: header(headers, "transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked")),
        left: 0,
        done: false,
    };
    let mut b = Vec::new();
    let _ = body.read_to_end(&mut b);
    serde_json::from_slice::<Value>(&b)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(&b).trim().to_string();
            if t.is_empty() {
                format!("the engine answered {status}")
            } else {
                t
            }
        })
}

/// What the engine's messages said.
#[derive(Default, Debug, PartialEq)]
struct Outcome {
    id: Option<String>,
    saw_built: bool,
    tagged: Vec<String>,
    /// `stream` text held back (`-q`).
    held: String,
    /// The build's error and exit code.
    error: Option<(String, i32)>,
}

impl Outcome {
    fn note_stream(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("Successfully built ") {
                self.saw_built = true;
            } else if let Some(t) = line.strip_prefix("Successfully tagged ") {
                self.tagged.push(t.trim().to_string());
            }
        }
    }

    /// The lines docker's classic client would have shown that the engine did not send.
    fn missing_lines(&self, tags: &[String]) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(id) = &self.id {
            if !self.saw_built {
                lines.push(format!("Successfully built {}", short_id(id)));
            }
            for t in tags {
                let full = full_tag(t);
                if !self.tagged.iter().any(|x| *x == full || x == t) {
                    lines.push(format!("Successfully tagged {full}"));
                }
            }
        }
        lines
    }
}

/// Step timing: how long each step took (shown under it on a terminal) and a summary line at
/// the end of a build.
struct StepClock {
    started: std::time::Instant,
    step: Option<std::time::Instant>,
    cached: bool,
    steps: usize,
    hits: usize,
    /// Per-step lines (on a terminal; piped output keeps docker's text plus the summary).
    per_step: bool,
}

impl StepClock {
    fn new(per_step: bool) -> StepClock {
        StepClock {
            started: std::time::Instant::now(),
            step: None,
            cached: false,
            steps: 0,
            hits: 0,
            per_step,
        }
    }

    /// Notes a chunk of `stream` text; returns a timing line to print before it, if any.
    fn note(&mut self, text: &str) -> Option<String> {
        let mut before = None;
        for line in text.lines() {
            if line.starts_with("Step ") && line.contains(" : ") {
                before = self.end_step();
                self.step = Some(std::time::Instant::now());
                self.steps += 1;
                self.cached = false;
            } else if line.trim() == "---> Using cache" {
                self.cached = true;
                self.hits += 1;
            }
        }
        before
    }

    fn end_step(&mut self) -> Option<String> {
        let t = self.step.take()?;
        self.per_step.then(|| {
            format!(
                "     ({:.2}s{})\n",
                t.elapsed().as_secs_f64(),
                if self.cached { ", cached" } else { "" }
            )
        })
    }

    fn summary(&self) -> String {
        format!(
            "Build took {:.2}s: {} step{}, {} from the cache",
            self.started.elapsed().as_secs_f64(),
            self.steps,
            if self.steps == 1 { "" } else { "s" },
            self.hits
        )
    }
}

fn show_messages(c: &Ctx, a: &BuildArgs, body: impl Read) -> Res<()> {
    let mut out = Outcome::default();
    let mut clock = StepClock::new(std::io::stdout().is_terminal());
    let mut layers: Option<Layers> = None;
    let mut stdout = std::io::stdout();
    for m in serde_json::Deserializer::from_reader(body).into_iter::<Value>() {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                if let Some(l) = layers.take() {
                    l.finish();
                }
                if e.is_io() {
                    return Err(Failure::Connect(format!(
                        "the connection to the engine at {} broke during the build: {e}",
                        c.host
                    )));
                }
                return Err(Failure::Usage(format!(
                    "unexpected answer from the engine: {e}"
                )));
            }
        };
        if let Some(msg) = m
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .or_else(|| m.get("error"))
            .and_then(Value::as_str)
        {
            let code = m
                .get("errorDetail")
                .and_then(|d| d.get("code"))
                .and_then(Value::as_i64)
                .filter(|c| *c > 0 && *c < 256)
                .map_or(1, |c| c as i32);
            out.error = Some((msg.to_string(), code));
            break;
        }
        if let Some(id) = m
            .get("aux")
            .and_then(|x| x.get("ID"))
            .and_then(Value::as_str)
        {
            out.id = Some(id.to_string());
        }
        if let Some(text) = m.get("stream").and_then(Value::as_str) {
            out.note_stream(text);
            if a.quiet {
                out.held.push_str(text);
            } else {
                if let Some(l) = layers.take() {
                    l.finish();
                }
                if let Some(t) = clock.note(text) {
                    let _ = stdout.write_all(t.as_bytes());
                }
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        }
        if let Some(status) = m.get("status").and_then(Value::as_str) {
            if !a.quiet {
                let detail = m.get("progressDetail");
                let num = |k: &str| detail.and_then(|d| d.get(k)).and_then(Value::as_i64);
                layers
                    .get_or_insert_with(|| Layers::new(Out::Stdout, false))
                    .message(
                        m.get("id").and_then(Value::as_str),
                        status,
                        num("current"),
                        num("total"),
                    );
            }
        }
    }
    if let Some(l) = layers.take() {
        l.finish();
    }
    if let Some((msg, code)) = out.error {
        if a.quiet && !out.held.is_empty() {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(out.held.as_bytes());
            if !out.held.ends_with('\n') {
                let _ = e.write_all(b"\n");
            }
        }
        eprintln!("{msg}");
        return Err(Failure::Exit(code));
    }
    if a.quiet {
        // Engines answer `q=1` with the ID as stream text, or with aux.ID.
        let id = out
            .id
            .clone()
            .or_else(|| Some(out.held.trim().to_string()).filter(|s| !s.is_empty()));
        return match id {
            Some(id) => {
                write_iidfile(a, Some(&id))?;
                println!("{id}");
                Ok(())
            }
            None => Err(Failure::Daemon(
                "the build ended without an image ID from the engine".into(),
            )),
        };
    }
    if out.id.is_none() && !out.saw_built {
        return Err(Failure::Daemon(
            "the build ended without an image ID from the engine".into(),
        ));
    }
    for l in out.missing_lines(&a.tag) {
        println!("{l}");
    }
    if let Some(t) = clock.end_step() {
        print!("{t}");
    }
    println!("{}", clock.summary());
    write_iidfile(a, out.id.as_deref())
}

/// `--iidfile`: the image ID, written once the build worked (docker's message when the
/// engine named none).
fn write_iidfile(a: &BuildArgs, id: Option<&str>) -> Res<()> {
    let Some(path) = &a.iidfile else {
        return Ok(());
    };
    let Some(id) = id else {
        return Err(Failure::Usage(format!(
            "the engine did not provide an image ID: cannot write {}",
            path.display()
        )));
    };
    std::fs::write(path, id).map_err(|e| {
        Failure::Usage(format!(
            "cannot write the image ID to {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str, keep: &[&str]) -> Ignore {
        Ignore {
            rules: DockerIgnore::parse(text).unwrap(),
            keep: keep.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn ignore_keeps_build_files() {
        let i = ignore("*\n", &[".dockerignore", "Dockerfile"]);
        assert!(!i.excluded("Dockerfile"));
        assert!(!i.excluded(".dockerignore"));
        assert!(i.excluded("other"));
        assert!(i.excluded("sub/Dockerfile"));
        let j = ignore("sub\n", &["sub/Dockerfile"]);
        assert!(j.walk_excluded_dir("sub"));
        assert!(!j.walk_excluded_dir("other"));
        assert!(!j.excluded("sub/Dockerfile"));
        assert!(j.excluded("sub/x"));
        let k = ignore("vendor\n!vendor/keep\n", &[]);
        assert!(k.walk_excluded_dir("vendor"));
        assert!(!k.excluded("vendor/keep"));
        assert!(k.excluded("vendor/drop"));
    }

    #[test]
    fn tags() {
        for ok in [
            "app",
            "app:1.0",
            "me/app:v_1-x",
            "localhost:5000/a/b:latest",
            "registry.example.com/a__b/c-d",
            "127.0.0.1:5000/x",
        ] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        assert!(validate_tag("App").unwrap_err().contains("lowercase"));
        for bad in [
            "",
            "app:",
            "app:-x",
            "a@sha256:00",
            "a//b",
            "-a",
            "a:b:c",
            "a b",
        ] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(full_tag("a"), "a:latest");
        assert_eq!(full_tag("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(full_tag("a:1"), "a:1");
    }

    #[test]
    fn args_and_labels() {
        let env = |k: &str| (k == "FROM_ENV").then(|| "e".to_string());
        let m = build_arg_map(
            &["A=1".into(), "B=".into(), "FROM_ENV".into(), "UNSET".into()],
            env,
        )
        .unwrap();
        assert_eq!(m["A"], json!("1"));
        assert_eq!(m["B"], json!(""));
        assert_eq!(m["FROM_ENV"], json!("e"));
        assert_eq!(m["UNSET"], Value::Null);
        assert!(build_arg_map(&["=x".into()], env).is_err());
        let l = label_map(&["a=b=c".into(), "k".into()]).unwrap();
        assert_eq!(l["a"], "b=c");
        assert_eq!(l["k"], "");
        assert!(label_map(&["=v".into()]).is_err());
    }

    #[test]
    fn archive_sniffing() {
        assert!(looks_like_archive(&[0x1f, 0x8b, 8, 0]));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(looks_like_archive(&tar));
        assert!(!looks_like_archive(b"FROM busybox\nRUN true\n"));
    }

    #[test]
    fn step_clock_counts_steps_and_cache_hits() {
        let mut c = StepClock::new(true);
        assert_eq!(c.note("Step 1/3 : FROM busybox\n ---> 0123\n"), None);
        let t = c.note("Step 2/3 : COPY . .\n").unwrap();
        assert!(t.trim().starts_with('(') && t.trim().ends_with("s)"), "{t}");
        c.note(" ---> Using cache\n ---> 4567\n");
        let t = c.note("Step 3/3 : RUN true\n").unwrap();
        assert!(t.contains(", cached"), "{t}");
        assert!(c.end_step().is_some_and(|t| !t.contains("cached")));
        let s = c.summary();
        assert!(
            s.starts_with("Build took ") && s.ends_with(": 3 steps, 1 from the cache"),
            "{s}"
        );
        let mut quiet = StepClock::new(false);
        quiet.note("Step 1/2 : FROM busybox\n");
        assert_eq!(quiet.note("Step 2/2 : RUN true\n"), None);
    }

    #[test]
    fn final_lines_not_duplicated() {
        let mut o = Outcome {
            id: Some("sha256:0123456789abcdef".into()),
            ..Default::default()
        };
        let tags = vec!["a".to_string(), "b:2".to_string()];
        assert_eq!(
            o.missing_lines(&tags),
            [
                "Successfully built 0123456789ab",
                "Successfully tagged a:latest",
                "Successfully tagged b:2"
            ]
        );
        o.note_stream("Successfully built 0123456789ab\nSuccessfully tagged a:latest\n");
        assert_eq!(o.missing_lines(&tags), ["Successfully tagged b:2"]);
    }

    #[test]
    fn query_shape() {
        let a = BuildArgs {
            tag: vec!["a:1".into(), "b".into()],
            file: None,
            build_arg: vec![],
            target: Some("t".into()),
            no_cache: true,
            pull: false,
            label: vec![],
            quiet: false,
            rm: false,
            force_rm: false,
            network: None,
            platform: None,
            cache_from: vec!["c:1".into()],
            iidfile: None,
            path: ".".into(),
        };
        let q = query(
            &a,
            "1.41",
            "sub/Dockerfile",
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert_eq!(
            q,
            "dockerfile=sub%2FDockerfile&t=a%3A1&t=b&nocache=1&rm=0&target=t\
             &cachefrom=%5B%22c%3A1%22%5D&version=1"
        );
        assert!(!query(&a, "1.37", "D", &BTreeMap::new(), &BTreeMap::new()).contains("version="));
    }
}
