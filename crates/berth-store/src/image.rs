//! The image model shared by pull, load and the engine: media types, manifests, indexes
//! (manifest lists), image configs, platform selection, and recording an image whose blobs are
//! all in the content store.
//!
//! The types read both OCI image-spec 1.x and Docker image manifest v2 schema 2 JSON (the field
//! names are the same; only the media types differ). Unknown fields are ignored; manifests
//! and configs are always kept as the original bytes in the content store, so nothing is lost
//! by parsing them into these types.

use crate::meta::{ImageRecord, LayerRef, Platform};
use crate::store::{Lease, Store};
use crate::{Digest, Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layers (deprecated in image-spec 1.1, still seen).
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// OCI layout marker file content version.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker container config (image config).
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (what `docker save` wrote before 25 and what `docker load` of a
/// legacy archive yields).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign (not distributable) layer.
pub const DOCKER_LAYER_FOREIGN_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 manifests (refused).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The annotation naming a manifest in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd (and docker 25+) put the full image name in.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The largest manifest, index or config read into memory.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// Whether `mt` is a single-image manifest media type.
pub fn is_manifest_type(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// Whether `mt` is an index / manifest list media type.
pub fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// Whether `mt` is a layer media type Berth can unpack (tar, tar+gzip, tar+zstd, incl. the
/// Docker and non-distributable variants).
pub fn is_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        OCI_LAYER_TAR
            | OCI_LAYER_TAR_GZIP
            | OCI_LAYER_TAR_ZSTD
            | OCI_LAYER_NONDIST_TAR
            | OCI_LAYER_NONDIST_TAR_GZIP
            | OCI_LAYER_NONDIST_TAR_ZSTD
            | DOCKER_LAYER_TAR
            | DOCKER_LAYER_TAR_GZIP
            | DOCKER_LAYER_FOREIGN_TAR_GZIP
    )
}

fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The platform field of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DescriptorPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A content descriptor (OCI) / manifest entry (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A plain descriptor with no urls, annotations or platform.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// A single-platform image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "null_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest document turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
// Short-lived parse results; boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// The runtime defaults in an image config (`config` in OCI, `config` in Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub user: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An image config (OCI `application/vnd.oci.image.config.v1+json` or Docker
/// `application/vnd.docker.container.image.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, deserialize_with = "null_default")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// Parse an image config document (at most [`MAX_DOCUMENT`] bytes). `what` names it in
    /// errors (e.g. the config digest or archive path).
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
        check_doc_size(bytes, what)?;
        let cfg: ImageConfig = serde_json::from_slice(bytes).map_err(|e| {
            Error::Invalid(format!("image config {what} is not valid JSON config: {e}"))
        })?;
        if cfg.rootfs.kind != "layers" {
            return Err(Error::Invalid(format!(
                "image config {what}: rootfs.type is \"{}\", expected \"layers\"",
                cfg.rootfs.kind.escape_debug()
            )));
        }
        Ok(cfg)
    }

    /// The platform this config says it is for.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: normalize_arch(&self.architecture),
            variant: self.variant.clone(),
        }
    }
}

fn check_doc_size(bytes: &[u8], what: &str) -> Result<()> {
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(Error::Limit(format!(
            "{what} is {} bytes, over the {MAX_DOCUMENT}-byte limit for manifests and configs; \
             refusing to parse it",
            bytes.len()
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

/// Parse a manifest or index. Which one is decided by the document's `mediaType`, else by
/// `media_type_hint` (a registry's Content-Type or a descriptor's mediaType), else by its shape
/// (`manifests` vs `config`). Documents over [`MAX_DOCUMENT`] bytes, schema 1 manifests and
/// contradictory media types are refused.
pub fn parse_manifest(bytes: &[u8], media_type_hint: Option<&str>) -> Result<Manifest> {
    check_doc_size(bytes, "manifest")?;
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Error::Invalid(format!("manifest is not valid JSON: {e}")))?;
    let hint = media_type_hint.filter(|h| is_manifest_type(h) || is_index_type(h));
    for mt in [probe.media_type.as_deref(), media_type_hint]
        .into_iter()
        .flatten()
    {
        if mt == DOCKER_MANIFEST_V1 || mt == DOCKER_MANIFEST_V1_SIGNED {
            return Err(Error::Invalid(format!(
                "manifest has media type {mt} (Docker schema 1), which Berth does not support; \
                 rebuild or re-push the image with a current tool"
            )));
        }
    }
    if probe.schema_version != Some(2) {
        return Err(Error::Invalid(format!(
            "manifest has schemaVersion {}, expected 2",
            probe
                .schema_version
                .map_or_else(|| "(missing)".to_string(), |v| v.to_string())
        )));
    }
    let declared = probe
        .media_type
        .as_deref()
        .filter(|m| is_manifest_type(m) || is_index_type(m));
    if let (Some(d), Some(h)) = (declared, hint) {
        if is_index_type(d) != is_index_type(h) {
            return Err(Error::Invalid(format!(
                "manifest declares media type {d} but was served as {h}; refusing the \
                 contradictory document"
            )));
        }
    }
    let is_index = match declared.or(hint) {
        Some(mt) => is_index_type(mt),
        None => match (&probe.manifests, &probe.config) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => {
                return Err(Error::Invalid(format!(
                    "cannot tell whether the document (mediaType {:?}) is a manifest or an \
                     index: it has {}",
                    probe.media_type,
                    if probe.config.is_some() {
                        "both `config` and `manifests`"
                    } else {
                        "neither `config` nor `manifests`"
                    }
                )))
            }
        },
    };
    if is_index {
        let ix: ImageIndex = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("image index is malformed: {e}")))?;
        Ok(Manifest::Index(ix))
    } else {
        let m: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("image manifest is malformed: {e}")))?;
        Ok(Manifest::Image(m))
    }
}

/// Go/OCI architecture name for Rust/uname spellings.
pub fn normalize_arch(arch: &str) -> String {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
    .to_string()
}

/// The variant a platform effectively has: arm64 without one means v8.
fn effective_variant(arch: &str, variant: Option<&str>) -> Option<String> {
    match (arch, variant) {
        (_, Some(v)) if !v.is_empty() => Some(v.to_string()),
        ("arm64", _) => Some("v8".to_string()),
        _ => None,
    }
}

fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

/// The entry of `index` for `want`: same os and architecture, and the same variant when `want`
/// has one (arm64 without a variant counts as v8). Attestation entries (`unknown/unknown`) are
/// skipped. The error lists the platforms the index has.
pub fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    let want_arch = normalize_arch(&want.architecture);
    let want_variant = effective_variant(&want_arch, want.variant.as_deref());
    let mut available = Vec::new();
    for d in &index.manifests {
        let Some(p) = &d.platform else { continue };
        if p.os == "unknown" || p.architecture == "unknown" {
            continue;
        }
        available.push(platform_string(
            &p.os,
            &p.architecture,
            p.variant.as_deref(),
        ));
        let arch = normalize_arch(&p.architecture);
        if p.os != want.os || arch != want_arch {
            continue;
        }
        if want_variant.is_some() && effective_variant(&arch, p.variant.as_deref()) != want_variant
        {
            continue;
        }
        return Ok(d);
    }
    Err(Error::NotFound(format!(
        "no image for platform {} in the index; it has: {}",
        platform_string(&want.os, &want_arch, want_variant.as_deref()),
        if available.is_empty() {
            "no platform-specific images".to_string()
        } else {
            available.join(", ")
        }
    )))
}

/// The platform of the machine Berth runs on.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86" => "386".to_string(),
        "powerpc64" => {
            if cfg!(target_endian = "little") {
                "ppc64le".to_string()
            } else {
                "ppc64".to_string()
            }
        }
        other => normalize_arch(other),
    };
    let variant = match architecture.as_str() {
        "arm64" => Some("v8".to_string()),
        "arm" => Some("v7".to_string()),
        _ => None,
    };
    Platform {
        os: std::env::consts::OS.to_string(),
        architecture,
        variant,
    }
}

/// Build the store record for an image manifest. Fails when the manifest's layer count does not
/// match the config's `rootfs.diff_ids` (the image could never be unpacked correctly).
pub fn record_from(
    manifest_digest: Digest,
    media_type: &str,
    manifest: &ImageManifest,
    config_digest: Digest,
    config: &ImageConfig,
    index: Option<Digest>,
) -> Result<ImageRecord> {
    if manifest.config.digest != config_digest {
        return Err(Error::Invalid(format!(
            "image {manifest_digest}: manifest names config {} but config {config_digest} was \
             given",
            manifest.config.digest
        )));
    }
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(Error::Invalid(format!(
            "image {manifest_digest}: the manifest has {} layers but its config {config_digest} \
             lists {} diff_ids; the image is corrupt",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let layers: Vec<LayerRef> = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(l, diff)| LayerRef {
            digest: l.digest,
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id: *diff,
        })
        .collect();
    let size = layers
        .iter()
        .fold(manifest.config.size, |acc, l| acc.saturating_add(l.size));
    Ok(ImageRecord {
        manifest: manifest_digest,
        media_type: media_type.to_string(),
        config: config_digest,
        layers,
        platform: config.platform(),
        index,
        created: config.created.clone(),
        size,
    })
}

/// Check that blob `d` is in the content store with `size` bytes.
fn check_blob(store: &Store, d: &Digest, size: u64, what: &str) -> Result<()> {
    match store.content.size(d) {
        Ok(n) if n == size => Ok(()),
        Ok(n) => Err(Error::Verification(format!(
            "{what} {d} is {n} bytes in the content store but the manifest says {size}; the \
             image is corrupt"
        ))),
        Err(Error::NotFound(_)) => Err(Error::NotFound(format!(
            "{what} {d} is missing from the content store; pull or load the image again"
        ))),
        Err(e) => Err(e),
    }
}

/// Record an image whose config and layer blobs are all in the content store (each is checked,
/// with its size; a missing one is an error naming it). The manifest bytes are stored through
/// verified ingest and the record written in one transaction. The caller's `lease` must
/// already protect the config and layers; the manifest (and `index`) are added here. Tags are
/// the caller's business, after this returns.
pub fn store_image(
    store: &Store,
    lease: &Lease<'_>,
    manifest_bytes: &[u8],
    media_type_hint: Option<&str>,
    index: Option<Digest>,
) -> Result<ImageRecord> {
    let digest = Digest::of(manifest_bytes);
    let manifest = match parse_manifest(manifest_bytes, media_type_hint)
        .map_err(|e| with_context(e, &format!("manifest {digest}")))?
    {
        Manifest::Image(m) => m,
        Manifest::Index(_) => {
            return Err(Error::Invalid(format!(
                "manifest {digest} is an index, not an image manifest; select a platform first"
            )))
        }
    };
    let media_type = manifest
        .media_type
        .clone()
        .or_else(|| media_type_hint.map(str::to_string))
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    check_blob(
        store,
        &manifest.config.digest,
        manifest.config.size,
        "config",
    )?;
    for l in &manifest.layers {
        if !is_layer_type(&l.media_type) {
            return Err(Error::Invalid(format!(
                "manifest {digest}: layer {} has media type {}, which is not an image layer",
                l.digest, l.media_type
            )));
        }
        check_blob(store, &l.digest, l.size, "layer")?;
    }
    let config_bytes = store
        .content
        .read_limited(&manifest.config.digest, MAX_DOCUMENT)?;
    let config = ImageConfig::parse(&config_bytes, &manifest.config.digest.to_string())?;
    let record = record_from(
        digest,
        &media_type,
        &manifest,
        manifest.config.digest,
        &config,
        index,
    )?;
    lease.add(&digest)?;
    store.content.put(manifest_bytes, Some(&digest))?;
    if let Some(ix) = index {
        lease.add(&ix)?;
        if !store.content.exists(&ix) {
            return Err(Error::NotFound(format!(
                "index {ix} that image {digest} was selected from is not in the content store"
            )));
        }
    }
    store.db()?.put_image(&record)?;
    Ok(record)
}

/// Prefix an error message with where it happened, keeping its kind.
pub(crate) fn with_context(e: Error, ctx: &str) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("{ctx}: {m}")),
        Error::NotFound(m) => Error::NotFound(format!("{ctx}: {m}")),
        Error::Conflict(m) => Error::Conflict(format!("{ctx}: {m}")),
        Error::Verification(m) => Error::Verification(format!("{ctx}: {m}")),
        Error::Limit(m) => Error::Limit(format!("{ctx}: {m}")),
        Error::Internal(m) => Error::Internal(format!("{ctx}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::from_bytes([n; 32])
    }

    #[test]
    fn manifest_vs_index() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":3}},"layers":[{{"mediaType":"{DOCKER_LAYER_TAR_GZIP}","digest":"{}","size":9}}]}}"#,
            d(1),
            d(2)
        );
        match parse_manifest(m.as_bytes(), None).unwrap() {
            Manifest::Image(im) => {
                assert_eq!(im.config.digest, d(1));
                assert_eq!(im.layers[0].size, 9);
            }
            other => panic!("{other:?}"),
        }
        // A contradicting hint is refused.
        let err = parse_manifest(m.as_bytes(), Some(OCI_INDEX)).unwrap_err();
        assert!(err.to_string().contains("contradictory"), "{err}");
        // No mediaType: shape decides.
        let ix = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            d(3)
        );
        assert!(matches!(
            parse_manifest(ix.as_bytes(), None).unwrap(),
            Manifest::Index(_)
        ));
        let big = vec![b' '; (MAX_DOCUMENT + 1) as usize];
        assert!(matches!(parse_manifest(&big, None), Err(Error::Limit(_))));
        let v1 = br#"{"schemaVersion":1,"name":"x"}"#;
        assert!(parse_manifest(v1, Some(DOCKER_MANIFEST_V1_SIGNED))
            .unwrap_err()
            .to_string()
            .contains("schema 1"));
    }

    #[test]
    fn platform_selection() {
        let entry = |os: &str, arch: &str, variant: Option<&str>, n: u8| Descriptor {
            platform: Some(DescriptorPlatform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
                ..Default::default()
            }),
            ..Descriptor::new(OCI_MANIFEST, d(n), 1)
        };
        let ix = ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                entry("unknown", "unknown", None, 9),
                entry("linux", "arm", Some("v7"), 1),
                entry("linux", "arm64", None, 2),
                entry("linux", "amd64", None, 3),
            ],
            annotations: BTreeMap::new(),
        };
        let p = |arch: &str, v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: v.map(Into::into),
        };
        assert_eq!(
            select_platform(&ix, &p("arm64", Some("v8")))
                .unwrap()
                .digest,
            d(2)
        );
        assert_eq!(
            select_platform(&ix, &p("aarch64", None)).unwrap().digest,
            d(2)
        );
        assert_eq!(
            select_platform(&ix, &p("amd64", None)).unwrap().digest,
            d(3)
        );
        assert_eq!(
            select_platform(&ix, &p("arm", Some("v7"))).unwrap().digest,
            d(1)
        );
        let err = select_platform(&ix, &p("arm", Some("v6"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux/arm/v6"), "{msg}");
        assert!(
            msg.contains("linux/arm/v7, linux/arm64, linux/amd64"),
            "{msg}"
        );
        assert!(!msg.contains("unknown"), "{msg}");
        let hp = host_platform();
        assert_eq!(hp.os, "linux");
        assert!(!hp.architecture.is_empty());
    }

    #[test]
    fn config_nulls_and_layer_count() {
        let cfg = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"Env":null,"Cmd":["sh"],"Labels":null,"ExposedPorts":{{"80/tcp":{{}}}},"WorkingDir":"/w","StopSignal":"SIGTERM"}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":null}}"#,
            d(7)
        );
        let c = ImageConfig::parse(cfg.as_bytes(), "test").unwrap();
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(c.config.env.is_empty());
        assert!(c.config.exposed_ports.contains_key("80/tcp"));
        assert_eq!(c.config.working_dir, "/w");
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(OCI_CONFIG, d(1), 10),
            layers: vec![
                Descriptor::new(OCI_LAYER_TAR_GZIP, d(2), 5),
                Descriptor::new(OCI_LAYER_TAR_GZIP, d(3), 5),
            ],
            subject: None,
            annotations: BTreeMap::new(),
        };
        let err = record_from(d(0), OCI_MANIFEST, &m, d(1), &c, None).unwrap_err();
        assert!(err.to_string().contains("2 layers"), "{err}");
        let mut m1 = m.clone();
        m1.layers.truncate(1);
        let r = record_from(d(0), OCI_MANIFEST, &m1, d(1), &c, None).unwrap();
        assert_eq!(r.size, 15);
        assert_eq!(r.layers[0].diff_id, d(7));
        assert_eq!(r.platform.architecture, "amd64");
        assert_eq!(r.created.as_deref(), Some("2024-01-01T00:00:00Z"));
    }
}
