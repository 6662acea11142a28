//! berth-registry: Berth's OCI distribution client — auth, ordered mirrors, verified pull into
//! the store, and push.
//!
//! # Endpoints
//! For a reference, the endpoints are the registry's configured mirrors in order, then the
//! registry itself (Docker Hub's is `https://registry-1.docker.io`). Loopback registries and
//! those listed in `insecure-registries` may be reached over plain HTTP. An endpoint that is
//! dead (connection refused), slow (read timeout), refuses us, or serves corrupt data (digest
//! or size mismatch) is skipped with a `tracing::warn!` **and** recorded in
//! [`PullResult::skipped`] and as a [`Progress::Skipped`] event — never silently — and the next
//! endpoint is tried.
//!
//! # Tag → digest policy
//! * A tag is resolved to a manifest digest by the first endpoint that answers it, among the
//!   mirrors whose [`Mirror::resolve_tags`] is true and then the upstream registry. Docker's
//!   `registry-mirrors` (mirrors of docker.io) resolve tags by default, as in Docker; a
//!   `registry-mirrors-by-host` entry can opt out with `"resolve-tags": false`, in which case
//!   that mirror only ever serves content by digest. Which endpoint resolved the tag is
//!   reported in [`PullResult::served_by`] (against the manifest digest).
//! * Everything else — manifests by digest (the platform manifest selected from an index) and
//!   blobs — is fetched **by digest** from the first endpoint (mirrors included) that has it,
//!   and every byte is hashed and size-checked while streaming. Nothing unverified is
//!   committed to the sink; a mismatch names the blob and the endpoint, the data is discarded
//!   and the next endpoint is tried.
//! * A reference pinned by digest (`name@sha256:..`) is never resolved by tag at all.
//!
//! # Auth
//! `GET /v2/` is pinged once per endpoint; a 401 challenge (`WWW-Authenticate: Bearer realm,
//! service, scope` or `Basic`) decides how requests are authorised. Bearer tokens are fetched
//! from the realm (with basic credentials from `config.json` when configured for that host) and
//! cached per (endpoint, scope); a 401 on a request refreshes the token and retries once.
//! Credentials are looked up per endpoint host (a mirror gets the mirror's credentials, never
//! the upstream's) and are never logged. Redirects are followed by hand: at most 10, never
//! from https to http, and `Authorization` is dropped when the host changes.
//! Connection errors and 5xx answers to idempotent requests are retried with bounded
//! exponential backoff; an endpoint that cannot be reached is not retried for 10 s (still
//! recorded as skipped each time).
//!
//! # Tags
//! [`Client::list_tags`] lists a repository's tags (`GET /v2/<name>/tags/list`, following
//! `Link` pages on the same host) from the first endpoint allowed to resolve tags, for
//! `pull --all-tags`.
//!
//! # Push
//! Only to the registry itself, never a mirror: each blob is checked with `HEAD`, mounted from
//! [`BlobSource::source_repository`] when offered, else uploaded monolithically (`POST` then
//! `PUT ?digest=`) or, above [`RegistryConfig::push_chunk_size`], in `PATCH` chunks with
//! `Content-Range`. Local bytes are hashed before the final `PUT`; a corrupt local blob is
//! never committed. The manifest is then put by tag and by digest.

mod client;
pub mod config;
mod error;
pub mod image_pull;
mod pull;
mod push;
pub mod sink;
pub mod store_sink;
mod tags;

pub use berth_store::reference::Reference;
pub use berth_store::Digest;
pub use client::{Client, Endpoint};
pub use config::{Credentials, Mirror, RegistryConfig};
pub use error::{Error, Result};
pub use push::{BlobSource, DirSource};
pub use sink::{BlobSink, BlobWriter, DirSink};

use serde::Serialize;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub use berth_store::meta::Platform;

/// Pull and push progress, per image and per blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    Resolving {
        reference: String,
    },
    Resolved {
        reference: String,
        digest: Digest,
        endpoint: String,
    },
    Waiting {
        digest: Digest,
    },
    Downloading {
        digest: Digest,
        current: u64,
        total: u64,
    },
    Verifying {
        digest: Digest,
    },
    Done {
        digest: Digest,
        endpoint: String,
    },
    Exists {
        digest: Digest,
    },
    Uploading {
        digest: Digest,
        current: u64,
        total: u64,
    },
    Mounted {
        digest: Digest,
        from: String,
    },
    /// A layer is being unpacked into a snapshot.
    Extracting {
        digest: Digest,
    },
    /// A layer's snapshot is ready (unpacked now, or already there).
    Extracted {
        digest: Digest,
    },
    Skipped {
        endpoint: String,
        reason: String,
    },
    Error {
        digest: Option<Digest>,
        message: String,
    },
}

/// What a pull fetched and from where.
#[derive(Clone, Debug)]
pub struct PullResult {
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest_bytes: Vec<u8>,
    /// The index (or manifest list) the manifest was selected from, if any.
    pub index: Option<(Digest, Vec<u8>)>,
    pub config_digest: Digest,
    /// (digest, media type, size) in manifest order.
    pub layers: Vec<(Digest, String, u64)>,
    /// Which endpoint served each piece (tag resolution is recorded against the manifest
    /// digest or index digest). Blobs that already existed locally are not listed.
    pub served_by: Vec<(Digest, String)>,
    /// Endpoints skipped, with why.
    pub skipped: Vec<(String, String)>,
}
