//! Image import/export: `docker load` / `docker save` tarballs and OCI image layouts on disk.
//!
//! Load reads the tar (plain or gzip) once, front to back:
//! - every regular file under `blobs/sha256/` goes straight into the content store through
//!   verified ingest, its name being the digest it must hash to;
//! - small JSON documents (`manifest.json`, `index.json`, `oci-layout`, `repositories`,
//!   top-level `<id>.json` configs of the legacy format) are kept in memory, each at most
//!   [`MAX_DOCUMENT`] bytes and [`MAX_DOCUMENTS_TOTAL`] together;
//! - other files in sub-directories (the legacy `<id>/layer.tar`) are staged in a temp dir
//!   under the store root, hashed on the way, and ingested by their computed digest only if
//!   `manifest.json` names them;
//! - `..` components and absolute names are refused outright; nothing is ever written to a
//!   path taken from the archive.
//!
//! Then the OCI `index.json` (docker 25+ and OCI tools) and/or the Docker `manifest.json`
//! (legacy docker save, also written by docker 25+) are turned into image records; a legacy
//! image gets a synthesised Docker schema 2 manifest with uncompressed layers
//! (`application/vnd.docker.image.rootfs.diff.tar`). Tags are set only after every image of the
//! archive has been verified and recorded; a failure removes the records this load created
//! and sets no tag. A lease protects the blobs while loading; blobs of a failed load are left
//! unreferenced for GC.
//!
//! Image names are normalised locally ([`normalize_name`]): `busybox:latest` becomes
//! `docker.io/library/busybox:latest`. (To be replaced by `reference::Reference` once it
//! lands.)
//!
//! Save writes the docker 25+ layout: `oci-layout`, `index.json` (one entry per tag, annotated
//! with `io.containerd.image.name` and `org.opencontainers.image.ref.name`), `blobs/sha256/*`,
//! and a docker-compatible `manifest.json` whose `Config`/`Layers` are `blobs/sha256/<hex>`.

use crate::digest::Hasher;
use crate::image::{
    self, is_index_type, is_manifest_type, parse_manifest, select_platform, store_image,
    with_context, Descriptor, DescriptorPlatform, ImageConfig, ImageIndex, ImageManifest, Manifest,
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, DOCKER_CONFIG, DOCKER_LAYER_TAR,
    DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, MAX_DOCUMENT, OCI_INDEX, OCI_LAYER_TAR_ZSTD,
    OCI_LAYOUT_VERSION,
};
use crate::store::{Lease, Store};
use crate::{Digest, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tracing::{debug, warn};

/// The most JSON the loader keeps in memory for one archive.
pub const MAX_DOCUMENTS_TOTAL: u64 = 64 << 20;
const LEASE_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_LINK_DEPTH: usize = 16;

/// One image a load brought in: its manifest, and the name it was tagged with (one `Loaded`
/// per name; `None` for an untagged image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub name: Option<String>,
    pub manifest: Digest,
}

// ---------------------------------------------------------------------------------------------
// names

/// Normalise an image name the way Docker does (`busybox` → `docker.io/library/busybox:latest`):
/// the tag name an archive's name is recorded under. Errors name the input.
pub fn normalize_name(s: &str) -> Result<String> {
    let r = crate::reference::Reference::parse_normalized(s)?;
    Ok(if r.digest.is_some() && r.tag.is_none() {
        r.to_string()
    } else {
        r.name_with_tag()
    })
}

/// `docker.io/library/busybox:latest` → `busybox:latest`; `docker.io/me/x:1` → `me/x:1`.
fn familiar(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("docker.io/") {
        if let Some(r) = rest.strip_prefix("library/") {
            if !r.contains('/') {
                return r.to_string();
            }
        }
        return rest.to_string();
    }
    name.to_string()
}

/// The tag of a normalised `name:tag` (None for digest references).
fn tag_of(name: &str) -> Option<&str> {
    if name.contains('@') {
        return None;
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    name[last_slash..]
        .rfind(':')
        .map(|i| &name[last_slash + i + 1..])
}

/// The name an `index.json` entry gives its manifest: `io.containerd.image.name`, else an
/// `org.opencontainers.image.ref.name` that is a full reference (a bare tag like `latest`
/// names no repository, so the image loads untagged).
fn name_from_annotations(a: &BTreeMap<String, String>) -> Result<Option<String>> {
    if let Some(n) = a.get(ANNOTATION_CONTAINERD_NAME) {
        return normalize_name(n).map(Some);
    }
    match a.get(ANNOTATION_REF_NAME) {
        Some(r) if r.contains('/') || r.contains(':') => normalize_name(r).map(Some),
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// archive paths

/// An archive entry name as a clean relative path (`a/b/c`), or an error for absolute names and
/// `..` components. `None` for the root itself (`./`).
fn clean_entry_path(p: &Path) -> Result<Option<String>> {
    let shown = p.display().to_string();
    let mut parts: Vec<&str> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| {
                Error::Invalid(format!(
                    "archive entry \"{}\" has a name that is not UTF-8; this is not a docker or \
                     OCI archive",
                    shown.escape_debug()
                ))
            })?),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Invalid(format!(
                    "refusing archive entry \"{}\": absolute names and `..` are not allowed in \
                     image archives; the archive is malformed or hostile",
                    shown.escape_debug()
                )))
            }
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

/// Resolve a symlink target (relative to the link's directory) to an archive path; refuses
/// targets leaving the archive.
fn resolve_link(link: &str, target: &Path) -> Result<String> {
    let mut parts: Vec<String> = link.split('/').map(str::to_string).collect();
    parts.pop();
    for c in target.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(escape_err(link, target));
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escape_err(link, target)),
        }
    }
    Ok(parts.join("/"))
}

fn escape_err(link: &str, target: &Path) -> Error {
    Error::Invalid(format!(
        "refusing archive entry {link}: its link target {} leaves the archive",
        target.display()
    ))
}

// ---------------------------------------------------------------------------------------------
// what a load collects

#[derive(Default)]
struct Staged {
    /// Small documents by archive path.
    docs: HashMap<String, Vec<u8>>,
    docs_total: u64,
    /// Staged non-blob files: archive path → (temp file, digest, size).
    files: HashMap<String, (PathBuf, Digest, u64)>,
    /// Links: archive path → archive path (already resolved one step).
    links: HashMap<String, String>,
}

impl Staged {
    fn follow<'a>(&'a self, mut p: &'a str) -> Result<&'a str> {
        for _ in 0..MAX_LINK_DEPTH {
            match self.links.get(p) {
                Some(t) => p = t,
                None => return Ok(p),
            }
        }
        Err(Error::Invalid(format!(
            "archive path {p}: more than {MAX_LINK_DEPTH} levels of links"
        )))
    }
}

fn read_err(name: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| {
        Error::Invalid(format!(
            "reading archive entry {name}: {e}; the archive is truncated or corrupt"
        ))
    }
}

/// Copy `r` into `w`; read errors are the archive's fault, write errors the store's.
fn copy_checked(r: &mut dyn Read, w: &mut dyn Write, name: &str, dest: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(name)(e)),
        };
        w.write_all(&buf[..k]).map_err(|e| Error::io(dest, e))?;
        n += k as u64;
    }
}

/// Ingest `r` as blob `d` (verified; `Ok` without reading if it is already stored).
fn ingest_reader(
    store: &Store,
    lease: &Lease<'_>,
    d: &Digest,
    size: Option<u64>,
    r: &mut dyn Read,
    name: &str,
) -> Result<()> {
    lease.add(d)?;
    match store.content.ingest(d, size)? {
        None => Ok(()),
        Some(mut ing) => {
            copy_checked(r, &mut ing, name, store.content.root())?;
            ing.commit().map_err(|e| with_context(e, name))?;
            Ok(())
        }
    }
}

fn read_doc(r: &mut dyn Read, size: u64, name: &str, total: &mut u64) -> Result<Vec<u8>> {
    if size > MAX_DOCUMENT {
        return Err(Error::Limit(format!(
            "archive entry {name} is {size} bytes, over the {MAX_DOCUMENT}-byte limit for \
             manifests and other JSON documents"
        )));
    }
    *total += size;
    if *total > MAX_DOCUMENTS_TOTAL {
        return Err(Error::Limit(format!(
            "the archive's JSON documents exceed {MAX_DOCUMENTS_TOTAL} bytes together (at \
             {name}); refusing it"
        )));
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    r.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut buf)
        .map_err(read_err(name))?;
    Ok(buf)
}

fn is_doc_name(name: &str) -> bool {
    matches!(
        name,
        "manifest.json" | "index.json" | "oci-layout" | "repositories"
    ) || (!name.contains('/') && name.ends_with(".json"))
}

/// Stream the tar once, ingesting blobs and staging the rest.
fn read_tar(
    store: &Store,
    lease: &Lease<'_>,
    input: impl Read,
    tmp: &Path,
    st: &mut Staged,
) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| Error::Invalid(format!("not a tar archive: {e}")))?;
    let mut staged_count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            Error::Invalid(format!(
                "reading the archive: {e}; it is not a tar archive or it is truncated"
            ))
        })?;
        let raw = entry
            .path()
            .map_err(|e| Error::Invalid(format!("archive entry with an unusable name: {e}")))?
            .into_owned();
        let Some(name) = clean_entry_path(&raw)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory | tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::Invalid(format!("archive entry {name}: bad link: {e}")))?
                    .ok_or_else(|| {
                        Error::Invalid(format!("archive entry {name}: link without a target"))
                    })?
                    .into_owned();
                let resolved = if kind == tar::EntryType::Link {
                    clean_entry_path(&target)?.ok_or_else(|| escape_err(&name, &target))?
                } else {
                    resolve_link(&name, &target)?
                };
                st.links.insert(name, resolved);
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => {
                return Err(Error::Invalid(format!(
                    "archive entry {name} is a {other:?} entry; image archives only hold \
                     files, directories and links"
                )))
            }
        }
        let size = entry.size();
        if let Some(rest) = name.strip_prefix("blobs/") {
            let Some(hex) = rest.strip_prefix("sha256/") else {
                return Err(Error::Invalid(format!(
                    "archive entry {name}: only sha256 blobs are supported"
                )));
            };
            let d = Digest::parse(&format!("sha256:{hex}"))
                .map_err(|e| with_context(e, &format!("archive entry {name}")))?;
            ingest_reader(store, lease, &d, Some(size), &mut entry, &name)?;
            debug!(entry = %name, "blob ingested");
        } else if is_doc_name(&name) {
            let data = read_doc(&mut entry, size, &name, &mut st.docs_total)?;
            st.docs.insert(name, data);
        } else if name.contains('/') {
            let base = name.rsplit('/').next().unwrap_or("");
            if base == "json" || base == "VERSION" {
                continue; // legacy v1 layer metadata: not needed
            }
            staged_count += 1;
            let path = tmp.join(staged_count.to_string());
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let mut hw = HashingWriter {
                inner: &mut f,
                hasher: Hasher::new(),
            };
            let n = copy_checked(&mut entry, &mut hw, &name, &path)?;
            let d = hw.hasher.finish();
            st.files.insert(name, (path, d, n));
        } else {
            debug!(entry = %name, "ignoring unknown top-level archive entry");
        }
    }
    Ok(())
}

struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: Hasher,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// turning documents into images

/// Where blobs come from while images are assembled.
trait BlobSource {
    /// Make sure blob `d` is in the content store (and leased). `what` names it for errors.
    fn ensure(&mut self, d: &Digest, size: Option<u64>, what: &str) -> Result<()>;
}

/// Blobs of a streamed tar are already ingested; a missing one was not in the archive.
struct Ingested<'a, 'l> {
    store: &'a Store,
    lease: &'a Lease<'l>,
}

impl BlobSource for Ingested<'_, '_> {
    fn ensure(&mut self, d: &Digest, _size: Option<u64>, what: &str) -> Result<()> {
        self.lease.add(d)?;
        if self.store.content.exists(d) {
            return Ok(());
        }
        Err(Error::NotFound(format!(
            "{what} {d} is not in the archive (no blobs/sha256/{}); the archive is incomplete",
            d.hex()
        )))
    }
}

/// Blobs of an OCI layout directory, ingested on demand.
struct LayoutDir<'a, 'l> {
    store: &'a Store,
    lease: &'a Lease<'l>,
    dir: &'a Path,
}

impl BlobSource for LayoutDir<'_, '_> {
    fn ensure(&mut self, d: &Digest, size: Option<u64>, what: &str) -> Result<()> {
        self.lease.add(d)?;
        if self.store.content.exists(d) {
            return Ok(());
        }
        let path = self.dir.join("blobs").join("sha256").join(d.hex());
        let mut f = open_nofollow(&path).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Error::NotFound(format!(
                    "{what} {d} is missing from the layout: {} does not exist",
                    path.display()
                ))
            }
            other => other,
        })?;
        let shown = path.display().to_string();
        ingest_reader(self.store, self.lease, d, size, &mut f, &shown)
    }
}

fn open_nofollow(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntryOut<'a> {
    config: String,
    repo_tags: Vec<&'a str>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayoutFile {
    image_layout_version: String,
}

/// Images found so far, in order, with their names; and which configs they carry.
#[derive(Default)]
struct Found {
    images: Vec<(Digest, Vec<String>)>,
    by_config: HashMap<Digest, Digest>,
    created: Vec<Digest>,
}

impl Found {
    fn add(&mut self, manifest: Digest, config: Digest, name: Option<String>) {
        self.by_config.entry(config).or_insert(manifest);
        let pos = match self.images.iter().position(|(m, _)| *m == manifest) {
            Some(p) => p,
            None => {
                self.images.push((manifest, Vec::new()));
                self.images.len() - 1
            }
        };
        if let Some(n) = name {
            if !self.images[pos].1.contains(&n) {
                self.images[pos].1.push(n);
            }
        }
    }
}

struct Assembler<'a, 'l> {
    store: &'a Store,
    lease: &'a Lease<'l>,
    src: &'a mut dyn BlobSource,
    found: Found,
}

impl Assembler<'_, '_> {
    fn record(
        &mut self,
        bytes: &[u8],
        hint: Option<&str>,
        index: Option<Digest>,
    ) -> Result<crate::meta::ImageRecord> {
        let d = Digest::of(bytes);
        let existed = self.store.db()?.image(&d)?.is_some();
        let rec = store_image(self.store, self.lease, bytes, hint, index)?;
        if !existed {
            self.found.created.push(d);
        }
        Ok(rec)
    }

    fn read_blob(&mut self, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
        self.src.ensure(&desc.digest, Some(desc.size), what)?;
        let data = self
            .store
            .content
            .read_limited(&desc.digest, MAX_DOCUMENT)?;
        if data.len() as u64 != desc.size {
            return Err(Error::Verification(format!(
                "{what} {} is {} bytes but its descriptor says {}",
                desc.digest,
                data.len(),
                desc.size
            )));
        }
        Ok(data)
    }

    /// Import one image manifest (all its blobs via the source), return (manifest, config).
    fn import_manifest(
        &mut self,
        desc: &Descriptor,
        index: Option<Digest>,
    ) -> Result<(Digest, Digest)> {
        let bytes = self.read_blob(desc, "manifest")?;
        let ctx = format!("manifest {}", desc.digest);
        let m = match parse_manifest(&bytes, Some(&desc.media_type))
            .map_err(|e| with_context(e, &ctx))?
        {
            Manifest::Image(m) => m,
            Manifest::Index(_) => {
                return Err(Error::Invalid(format!(
                    "{ctx} is an index nested where an image manifest was expected"
                )))
            }
        };
        self.src
            .ensure(&m.config.digest, Some(m.config.size), "config")
            .map_err(|e| with_context(e, &ctx))?;
        for (i, l) in m.layers.iter().enumerate() {
            self.src
                .ensure(&l.digest, Some(l.size), &format!("layer {}", i + 1))
                .map_err(|e| with_context(e, &ctx))?;
        }
        let rec = self.record(&bytes, Some(&desc.media_type), index)?;
        Ok((rec.manifest, rec.config))
    }

    fn import_index(&mut self, index_bytes: &[u8]) -> Result<()> {
        let ix: ImageIndex = serde_json::from_slice(index_bytes)
            .map_err(|e| Error::Invalid(format!("index.json is malformed: {e}")))?;
        for desc in &ix.manifests {
            let name = name_from_annotations(&desc.annotations)
                .map_err(|e| with_context(e, &format!("index.json entry {}", desc.digest)))?;
            if is_manifest_type(&desc.media_type) {
                let (m, c) = self.import_manifest(desc, None)?;
                self.found.add(m, c, name);
            } else if is_index_type(&desc.media_type) {
                let bytes = self.read_blob(desc, "index")?;
                let ctx = format!("index {}", desc.digest);
                let Manifest::Index(inner) = parse_manifest(&bytes, Some(&desc.media_type))
                    .map_err(|e| with_context(e, &ctx))?
                else {
                    return Err(Error::Invalid(format!("{ctx} is not an index")));
                };
                let child = select_platform(&inner, &image::host_platform())
                    .map_err(|e| with_context(e, &ctx))?
                    .clone();
                let (m, c) = self.import_manifest(&child, Some(desc.digest))?;
                self.found.add(m, c, name);
            } else {
                debug!(digest = %desc.digest, media_type = %desc.media_type,
                       "index.json: skipping an entry that is not an image");
            }
        }
        Ok(())
    }

    /// The blob an archive path of `manifest.json` names, ingesting staged files as needed.
    fn archive_blob(&mut self, st: &Staged, path: &str, what: &str) -> Result<Digest> {
        let clean = clean_entry_path(Path::new(path))?
            .ok_or_else(|| Error::Invalid(format!("manifest.json: empty path for {what}")))?;
        let p = st.follow(&clean)?;
        if let Some(hex) = p.strip_prefix("blobs/sha256/") {
            let d = Digest::parse(&format!("sha256:{hex}"))
                .map_err(|e| with_context(e, &format!("manifest.json: {what} {path}")))?;
            self.src
                .ensure(&d, None, what)
                .map_err(|e| with_context(e, &format!("manifest.json: {what} {path}")))?;
            return Ok(d);
        }
        if let Some(data) = st.docs.get(p) {
            let d = Digest::of(data);
            self.lease.add(&d)?;
            self.store.content.put(data, Some(&d))?;
            return Ok(d);
        }
        if let Some((file, d, size)) = st.files.get(p) {
            let mut f = open_nofollow(file)?;
            ingest_reader(self.store, self.lease, d, Some(*size), &mut f, p)?;
            return Ok(*d);
        }
        Err(Error::NotFound(format!(
            "manifest.json names {what} \"{}\" but the archive has no such file; the archive \
             is incomplete",
            path.escape_debug()
        )))
    }

    fn sniff_layer_type(&self, d: &Digest) -> Result<&'static str> {
        let mut f = self.store.content.open_blob(d)?;
        let mut head = [0u8; 4];
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(self.store.content.path(d), e)),
            }
        }
        Ok(match &head[..n] {
            [0x1f, 0x8b, ..] => DOCKER_LAYER_TAR_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_TAR_ZSTD,
            _ => DOCKER_LAYER_TAR,
        })
    }

    fn import_docker_manifest(&mut self, st: &Staged, bytes: &[u8]) -> Result<()> {
        let entries: Vec<SaveEntry> = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("manifest.json is malformed: {e}")))?;
        for (i, e) in entries.iter().enumerate() {
            let img_ctx = format!("manifest.json image {} (config {})", i + 1, e.config);
            let names = e
                .repo_tags
                .iter()
                .flatten()
                .map(|t| normalize_name(t))
                .collect::<Result<Vec<_>>>()
                .map_err(|err| with_context(err, &img_ctx))?;
            let config = self.archive_blob(st, &e.config, "config")?;
            let manifest = match self.found.by_config.get(&config) {
                // docker 25+: the same image is in index.json; just add the names.
                Some(m) => *m,
                None => self.synthesise(st, e, config, &img_ctx)?,
            };
            if names.is_empty() {
                self.found.add(manifest, config, None);
            }
            for n in names {
                self.found.add(manifest, config, Some(n));
            }
        }
        Ok(())
    }

    /// A Docker schema 2 manifest for a legacy `manifest.json` entry.
    fn synthesise(
        &mut self,
        st: &Staged,
        e: &SaveEntry,
        config: Digest,
        ctx: &str,
    ) -> Result<Digest> {
        let cfg_bytes = self.store.content.read_limited(&config, MAX_DOCUMENT)?;
        let cfg = ImageConfig::parse(&cfg_bytes, &format!("{} ({config})", e.config))?;
        let paths = e.layers.as_deref().unwrap_or(&[]);
        if paths.len() != cfg.rootfs.diff_ids.len() {
            return Err(Error::Invalid(format!(
                "{ctx}: lists {} layers but its config has {} diff_ids; the archive is corrupt",
                paths.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(paths.len());
        for (i, (p, diff_id)) in paths.iter().zip(&cfg.rootfs.diff_ids).enumerate() {
            let d = self.archive_blob(st, p, &format!("layer {}", i + 1))?;
            let mt = self.sniff_layer_type(&d)?;
            if mt == DOCKER_LAYER_TAR && d != *diff_id {
                return Err(Error::Verification(format!(
                    "{ctx}: layer {} ({p}) hashes to {d} but the config says its diff_id is \
                     {diff_id}; the archive is corrupt",
                    i + 1
                )));
            }
            layers.push(Descriptor::new(mt, d, self.store.content.size(&d)?));
        }
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor::new(DOCKER_CONFIG, config, cfg_bytes.len() as u64),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&m)
            .map_err(|e| Error::Internal(format!("serialising a manifest: {e}")))?;
        let rec = self.record(&bytes, Some(DOCKER_MANIFEST), None)?;
        Ok(rec.manifest)
    }
}

fn check_oci_layout(docs: &HashMap<String, Vec<u8>>) -> Result<()> {
    if let Some(b) = docs.get("oci-layout") {
        let l: OciLayoutFile = serde_json::from_slice(b)
            .map_err(|e| Error::Invalid(format!("oci-layout is malformed: {e}")))?;
        if !l.image_layout_version.starts_with("1.") {
            return Err(Error::Invalid(format!(
                "oci-layout has imageLayoutVersion {}, only 1.x is supported",
                l.image_layout_version
            )));
        }
    }
    Ok(())
}

/// Assemble images from the documents, then tag them all (or, on error, undo the records).
fn assemble(
    store: &Store,
    lease: &Lease<'_>,
    st: &Staged,
    src: &mut dyn BlobSource,
) -> Result<Vec<Loaded>> {
    let mut a = Assembler {
        store,
        lease,
        src,
        found: Found::default(),
    };
    let res = (|| {
        check_oci_layout(&st.docs)?;
        let index = st.docs.get("index.json");
        let manifest = st.docs.get("manifest.json");
        if index.is_none() && manifest.is_none() {
            return Err(Error::Invalid(
                "the archive has neither manifest.json (docker save) nor index.json (OCI \
                 layout); it is not an image archive"
                    .into(),
            ));
        }
        if let Some(ix) = index {
            a.import_index(ix)?;
        }
        if let Some(mj) = manifest {
            a.import_docker_manifest(st, mj)?;
        }
        Ok(())
    })();
    let found = a.found;
    let undo = |created: &[Digest]| {
        if let Ok(mut db) = store.db() {
            for d in created {
                if let Err(e) = db.delete_image(d) {
                    warn!(manifest = %d, error = %e, "could not remove the record of a failed load");
                }
            }
        }
    };
    if let Err(e) = res {
        undo(&found.created);
        return Err(e);
    }
    let mut out = Vec::new();
    {
        let mut db = store.db()?;
        for (m, names) in &found.images {
            for n in names {
                db.set_tag(n, m)?;
                out.push(Loaded {
                    name: Some(n.clone()),
                    manifest: *m,
                });
            }
            if names.is_empty() {
                out.push(Loaded {
                    name: None,
                    manifest: *m,
                });
            }
        }
    }
    Ok(out)
}

/// Load a `docker save` tarball (legacy or docker 25+) or an OCI image layout tarball, plain or
/// gzip-compressed. Returns one [`Loaded`] per name (and one per untagged image).
pub fn load(store: &Store, r: impl Read) -> Result<Vec<Loaded>> {
    let mut r = r;
    let mut head = Vec::with_capacity(6);
    (&mut r)
        .take(6)
        .read_to_end(&mut head)
        .map_err(|e| Error::Invalid(format!("reading the archive: {e}")))?;
    let chained = io::Cursor::new(head.clone()).chain(r);
    let input: Box<dyn Read> = match head.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(chained)),
        [0x28, 0xb5, 0x2f, 0xfd, ..]
        | [0xfd, b'7', b'z', b'X', b'Z', 0]
        | [b'B', b'Z', b'h', ..] => {
            return Err(Error::Invalid(
                "the archive is zstd/xz/bzip2-compressed; decompress it first or use a plain \
                 or gzip'd tar"
                    .into(),
            ))
        }
        [] => return Err(Error::Invalid("the archive is empty".into())),
        _ => Box::new(chained),
    };
    let lease = store.lease(LEASE_TTL)?;
    let tmp = tempfile::Builder::new()
        .prefix(".load-")
        .tempdir_in(store.root())
        .map_err(|e| Error::io(store.root(), e))?;
    let mut st = Staged::default();
    read_tar(store, &lease, input, tmp.path(), &mut st)?;
    let mut src = Ingested {
        store,
        lease: &lease,
    };
    let out = assemble(store, &lease, &st, &mut src)?;
    drop(lease);
    Ok(out)
}

fn read_small_file(path: &Path) -> Result<Vec<u8>> {
    let f = open_nofollow(path)?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > MAX_DOCUMENT {
        return Err(Error::Limit(format!(
            "{} is {len} bytes, over the {MAX_DOCUMENT}-byte limit for JSON documents",
            path.display()
        )));
    }
    let mut buf = Vec::new();
    f.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// Import the images of an OCI image layout directory (its `index.json`; a docker-style
/// `manifest.json` next to it is honoured too). Only referenced blobs are read, each verified.
pub fn import_oci_layout(store: &Store, dir: &Path) -> Result<Vec<Loaded>> {
    let mut st = Staged::default();
    let layout = dir.join("oci-layout");
    match read_small_file(&layout) {
        Ok(b) => {
            st.docs.insert("oci-layout".into(), b);
        }
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!(
                "{} is not an OCI image layout: it has no oci-layout file",
                dir.display()
            )))
        }
        Err(e) => return Err(e),
    }
    for name in ["index.json", "manifest.json"] {
        let p = dir.join(name);
        match read_small_file(&p) {
            Ok(b) => {
                st.docs.insert(name.into(), b);
            }
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let lease = store.lease(LEASE_TTL)?;
    let mut src = LayoutDir {
        store,
        lease: &lease,
        dir,
    };
    assemble(store, &lease, &st, &mut src)
}

// ---------------------------------------------------------------------------------------------
// export

struct ExportPlan {
    /// Blobs to write, in order, deduplicated, with sizes.
    blobs: Vec<(Digest, u64)>,
    index_json: Vec<u8>,
    manifest_json: Vec<u8>,
}

fn plan_export(
    store: &Store,
    lease: &Lease<'_>,
    manifests: &[(Digest, Vec<String>)],
) -> Result<ExportPlan> {
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    let mut index_entries = Vec::new();
    let mut save_entries = Vec::new();
    let mut all_names: Vec<Vec<String>> = Vec::new();
    for (_, tags) in manifests {
        all_names.push(
            tags.iter()
                .map(|t| normalize_name(t))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    for ((d, _), names) in manifests.iter().zip(&all_names) {
        let rec = store.db()?.image(d)?.ok_or_else(|| {
            Error::NotFound(format!("image {d} is not in the store; nothing to save"))
        })?;
        let mut add = |b: Digest| -> Result<u64> {
            lease.add(&b)?;
            let size = store
                .content
                .size(&b)
                .map_err(|e| with_context(e, &format!("saving image {d}")))?;
            if seen.insert(b) {
                blobs.push((b, size));
            }
            Ok(size)
        };
        let msize = add(rec.manifest)?;
        add(rec.config)?;
        for l in &rec.layers {
            add(l.digest)?;
        }
        let platform = DescriptorPlatform {
            architecture: rec.platform.architecture.clone(),
            os: rec.platform.os.clone(),
            variant: rec.platform.variant.clone(),
            ..Default::default()
        };
        let base = Descriptor {
            platform: Some(platform),
            ..Descriptor::new(&rec.media_type, rec.manifest, msize)
        };
        let tagged: Vec<&String> = names.iter().filter(|n| tag_of(n).is_some()).collect();
        if tagged.is_empty() {
            index_entries.push(base.clone());
        }
        for n in &tagged {
            let mut e = base.clone();
            e.annotations
                .insert(ANNOTATION_CONTAINERD_NAME.into(), (*n).clone());
            if let Some(t) = tag_of(n) {
                e.annotations.insert(ANNOTATION_REF_NAME.into(), t.into());
            }
            index_entries.push(e);
        }
        save_entries.push((rec, tagged.iter().map(|n| familiar(n)).collect::<Vec<_>>()));
    }
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: index_entries,
        annotations: BTreeMap::new(),
    };
    let ser = |e: serde_json::Error| Error::Internal(format!("serialising index.json: {e}"));
    let index_json = serde_json::to_vec(&index).map_err(ser)?;
    let out: Vec<SaveEntryOut<'_>> = save_entries
        .iter()
        .map(|(rec, tags)| SaveEntryOut {
            config: format!("blobs/sha256/{}", rec.config.hex()),
            repo_tags: tags.iter().map(String::as_str).collect(),
            layers: rec
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect(),
        })
        .collect();
    let manifest_json = serde_json::to_vec(&out).map_err(ser)?;
    Ok(ExportPlan {
        blobs,
        index_json,
        manifest_json,
    })
}

fn oci_layout_json() -> Vec<u8> {
    format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}").into_bytes()
}

fn tar_header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Write `manifests` (each with its tags, normalised names) as a docker 25+ style archive: an
/// OCI image layout plus a docker `manifest.json`, readable by `docker load` (any version
/// since 1.10) and OCI tools (`skopeo ... oci-archive:`).
pub fn save(store: &Store, manifests: &[(Digest, Vec<String>)], w: impl Write) -> Result<()> {
    let out_err = |e: io::Error| Error::io("(save output)", e);
    let lease = store.lease(LEASE_TTL)?;
    let plan = plan_export(store, &lease, manifests)?;
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Deterministic);
    let layout = oci_layout_json();
    let mut h = tar_header(tar::EntryType::Regular, layout.len() as u64, 0o644);
    b.append_data(&mut h, "oci-layout", layout.as_slice())
        .map_err(out_err)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar_header(tar::EntryType::Directory, 0, 0o755);
        b.append_data(&mut h, dir, io::empty()).map_err(out_err)?;
    }
    for (d, size) in &plan.blobs {
        let f = store.content.open_blob(d)?;
        let len = f
            .metadata()
            .map_err(|e| Error::io(store.content.path(d), e))?
            .len();
        if len != *size {
            return Err(Error::Conflict(format!(
                "blob {d} changed size while saving ({size} → {len}); retry"
            )));
        }
        let mut h = tar_header(tar::EntryType::Regular, len, 0o444);
        b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), f.take(len))
            .map_err(out_err)?;
    }
    for (name, data) in [
        ("index.json", &plan.index_json),
        ("manifest.json", &plan.manifest_json),
    ] {
        let mut h = tar_header(tar::EntryType::Regular, data.len() as u64, 0o644);
        b.append_data(&mut h, name, data.as_slice())
            .map_err(out_err)?;
    }
    let mut w = b.into_inner().map_err(out_err)?;
    w.flush().map_err(out_err)?;
    Ok(())
}

fn write_atomic(path: &Path, data: &mut dyn Read) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    io::copy(data, tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Write `manifests` as an OCI image layout into `dir` (created if missing; refused if it
/// already holds an `index.json`). `index.json` is written last, so a layout interrupted
/// midway is recognisably incomplete.
pub fn export_oci_layout(
    store: &Store,
    manifests: &[(Digest, Vec<String>)],
    dir: &Path,
) -> Result<()> {
    if dir.join("index.json").exists() {
        return Err(Error::Conflict(format!(
            "{} already holds an OCI layout (index.json); export into an empty directory",
            dir.display()
        )));
    }
    let lease = store.lease(LEASE_TTL)?;
    let plan = plan_export(store, &lease, manifests)?;
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
    write_atomic(&dir.join("oci-layout"), &mut oci_layout_json().as_slice())?;
    for (d, size) in &plan.blobs {
        let dest = blobs.join(d.hex());
        if std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == *size) {
            continue;
        }
        let f = store.content.open_blob(d)?;
        write_atomic(&dest, &mut f.take(*size))?;
    }
    write_atomic(&dir.join("index.json"), &mut plan.index_json.as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (i, o) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("me/app:v1", "docker.io/me/app:v1"),
            ("index.docker.io/me/app", "docker.io/me/app:latest"),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest",
            ),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("quay.io/a/b/c:t", "quay.io/a/b/c:t"),
        ] {
            assert_eq!(normalize_name(i).unwrap(), o, "{i}");
        }
        for bad in ["", "Busybox", "a b", "x:", "x:-y", "../x", "x//y"] {
            assert!(normalize_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/me/app:1"), "me/app:1");
        assert_eq!(
            familiar("localhost:5000/x:latest"),
            "localhost:5000/x:latest"
        );
        assert_eq!(tag_of("localhost:5000/x:latest"), Some("latest"));
        assert_eq!(tag_of("localhost:5000/x"), None);
    }

    #[test]
    fn entry_paths() {
        assert_eq!(
            clean_entry_path(Path::new("./blobs/sha256/ab")).unwrap(),
            Some("blobs/sha256/ab".into())
        );
        assert_eq!(clean_entry_path(Path::new("./")).unwrap(), None);
        assert!(clean_entry_path(Path::new("../x")).is_err());
        assert!(clean_entry_path(Path::new("/etc/passwd")).is_err());
        assert!(clean_entry_path(Path::new("a/../../x")).is_err());
        assert_eq!(
            resolve_link("b/layer.tar", Path::new("../a/layer.tar")).unwrap(),
            "a/layer.tar"
        );
        assert!(resolve_link("b/layer.tar", Path::new("../../x")).is_err());
        assert!(resolve_link("b/layer.tar", Path::new("/x")).is_err());
    }
}
