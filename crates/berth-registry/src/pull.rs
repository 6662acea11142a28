//! Pull: resolve the manifest, select the platform, fetch and verify config and layers.

use crate::client::{all_failed, status_fail, Conn, Endpoint, Fail};
use crate::sink::{BlobSink, BlobWriter};
use crate::{
    Client, Error, Platform, Progress, PullResult, Reference, Result, MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use berth_store::digest::Hasher;
use berth_store::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct ManifestJson {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct IndexJson {
    pub manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct MediaTypeOnly {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
}

/// The endpoint that served a blob (None: it was already present) and the endpoints skipped.
type BlobOutcome = (Option<String>, Vec<(String, String)>);

pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

fn is_index(mt: &str) -> bool {
    mt == MEDIA_OCI_INDEX || mt == MEDIA_DOCKER_LIST
}
fn is_manifest(mt: &str) -> bool {
    mt == MEDIA_OCI_MANIFEST || mt == MEDIA_DOCKER_MANIFEST
}

/// Pick the manifest for `want` from an index: same os and architecture; an exact variant
/// match wins, then an entry without a variant, then (if no variant was asked) any.
pub(crate) fn select_platform<'a>(
    manifests: &'a [Descriptor],
    want: &Platform,
) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| is_manifest(&d.media_type) || d.media_type.is_empty())
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
        })
        .collect();
    let variant = |d: &&Descriptor| d.platform.as_ref().and_then(|p| p.variant.clone());
    candidates
        .iter()
        .find(|d| variant(d) == want.variant)
        .or_else(|| candidates.iter().find(|d| variant(d).is_none()))
        .or_else(|| {
            if want.variant.is_none() {
                candidates.first()
            } else {
                None
            }
        })
        .copied()
}

struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
}

fn send(p: &UnboundedSender<Progress>, ev: Progress) {
    let _ = p.send(ev);
}

/// Run a short blocking sink call without requiring `'static` borrows.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub(crate) fn pull_scopes(r: &Reference) -> Vec<String> {
    vec![format!("repository:{}:pull", r.path)]
}

impl Client {
    /// Pull `r` for `platform` into `sink`; see the crate doc for the endpoint and tag policy.
    pub async fn pull(
        &self,
        r: &Reference,
        platform: &Platform,
        sink: &dyn BlobSink,
        progress: UnboundedSender<Progress>,
    ) -> Result<PullResult> {
        let eps = self.endpoints(&r.domain);
        let scopes = pull_scopes(r);
        let mut skipped: Vec<(String, String)> = Vec::new();
        let mut served_by: Vec<(Digest, String)> = Vec::new();
        send(
            &progress,
            Progress::Resolving {
                reference: r.to_string(),
            },
        );

        // 1. The top-level manifest: by digest from any endpoint, or by tag from the endpoints
        //    allowed to resolve tags.
        let (top, top_ep) = match r.digest {
            Some(d) => {
                self.manifest_any(
                    r,
                    &eps,
                    &scopes,
                    &d.to_string(),
                    Some(d),
                    &mut skipped,
                    &progress,
                )
                .await?
            }
            None => {
                let tag_eps: Vec<Endpoint> =
                    eps.iter().filter(|e| e.resolve_tags).cloned().collect();
                self.manifest_any(
                    r,
                    &tag_eps,
                    &scopes,
                    &r.manifest_reference(),
                    None,
                    &mut skipped,
                    &progress,
                )
                .await?
            }
        };
        send(
            &progress,
            Progress::Resolved {
                reference: r.to_string(),
                digest: top.digest,
                endpoint: top_ep.clone(),
            },
        );
        served_by.push((top.digest, top_ep));

        // 2. An index selects a platform manifest, fetched by digest.
        let (manifest, index) = if is_index(&top.media_type) {
            let idx: IndexJson = serde_json::from_slice(&top.bytes).map_err(|e| {
                Error::Invalid(format!(
                    "{r}: index {} is not a valid image index: {e}",
                    top.digest
                ))
            })?;
            let desc = select_platform(&idx.manifests, platform).ok_or_else(|| {
                let avail: Vec<String> = idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                Error::NotFound(format!(
                    "{r}: no manifest for platform {platform} in index {} (available: {}); pull with another --platform",
                    top.digest,
                    if avail.is_empty() { "none".to_string() } else { avail.join(", ") }
                ))
            })?;
            if desc.size > self.inner.cfg.max_manifest_size {
                return Err(Error::Limit(format!(
                    "{r}: manifest {} is {} bytes, over the {} byte limit",
                    desc.digest, desc.size, self.inner.cfg.max_manifest_size
                )));
            }
            let d = desc.digest;
            let (m, ep) = self
                .manifest_any(
                    r,
                    &eps,
                    &scopes,
                    &d.to_string(),
                    Some(d),
                    &mut skipped,
                    &progress,
                )
                .await?;
            if m.bytes.len() as u64 != desc.size {
                return Err(Error::Verification(format!(
                    "{r}: manifest {d} from {ep} is {} bytes but the index says {}",
                    m.bytes.len(),
                    desc.size
                )));
            }
            served_by.push((m.digest, ep));
            (m, Some((top.digest, top.bytes)))
        } else {
            (top, None)
        };
        if !is_manifest(&manifest.media_type) {
            return Err(Error::Unsupported(format!(
                "{r}: manifest {} has unsupported media type \"{}\" (Berth pulls OCI and Docker schema 2 images)",
                manifest.digest, manifest.media_type
            )));
        }
        let m: ManifestJson = serde_json::from_slice(&manifest.bytes).map_err(|e| {
            Error::Invalid(format!(
                "{r}: manifest {} is not a valid image manifest: {e}",
                manifest.digest
            ))
        })?;

        // 3. Config, then layers in parallel.
        let cfg_out = self
            .blob_dedup(r, &eps, &scopes, &m.config, sink, &progress)
            .await?;
        skipped.extend(cfg_out.1);
        if let Some(ep) = cfg_out.0 {
            served_by.push((m.config.digest, ep));
        }
        sink.manifest_ready(&manifest.bytes, &manifest.media_type);
        for l in &m.layers {
            send(&progress, Progress::Waiting { digest: l.digest });
        }
        let limit = self.inner.cfg.max_concurrent_downloads.max(1);
        let mut futs = Vec::with_capacity(m.layers.len());
        for l in &m.layers {
            let (eps, scopes, progress) = (&eps, &scopes, &progress);
            futs.push(async move {
                let res = self.blob_dedup(r, eps, scopes, l, sink, progress).await;
                if res.is_ok() {
                    sink.blob_ready(&l.digest);
                }
                res
            });
        }
        let results: Vec<Result<BlobOutcome>> = futures_util::stream::iter(futs)
            .buffered(limit)
            .collect()
            .await;
        let mut first_err = None;
        for (l, res) in m.layers.iter().zip(results) {
            match res {
                Ok((ep, sk)) => {
                    skipped.extend(sk);
                    if let Some(ep) = ep {
                        served_by.push((l.digest, ep));
                    }
                }
                Err(e) => {
                    send(
                        &progress,
                        Progress::Error {
                            digest: Some(l.digest),
                            message: e.to_string(),
                        },
                    );
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(PullResult {
            manifest_digest: manifest.digest,
            manifest_media_type: manifest.media_type,
            manifest_bytes: manifest.bytes,
            index,
            config_digest: m.config.digest,
            layers: m
                .layers
                .iter()
                .map(|l| (l.digest, l.media_type.clone(), l.size))
                .collect(),
            served_by,
            skipped,
        })
    }

    fn record_skip(
        &self,
        skipped: &mut Vec<(String, String)>,
        progress: &UnboundedSender<Progress>,
        ep: &str,
        why: &str,
    ) {
        tracing::warn!(endpoint = ep, reason = why, "registry endpoint skipped");
        skipped.push((ep.to_string(), why.to_string()));
        send(
            progress,
            Progress::Skipped {
                endpoint: ep.to_string(),
                reason: why.to_string(),
            },
        );
    }

    /// Fetch a manifest from the first endpoint that has it.
    #[allow(clippy::too_many_arguments)]
    async fn manifest_any(
        &self,
        r: &Reference,
        eps: &[Endpoint],
        scopes: &[String],
        reference: &str,
        expect: Option<Digest>,
        skipped: &mut Vec<(String, String)>,
        progress: &UnboundedSender<Progress>,
    ) -> Result<(Fetched, String)> {
        let mut tried: Vec<(String, Fail)> = Vec::new();
        for ep in eps {
            let res = match self.connect(ep).await {
                Ok(conn) => self
                    .fetch_manifest(&conn, r, scopes, reference, expect)
                    .await
                    .map(|f| (f, conn.base)),
                Err(f) => Err(f),
            };
            match res {
                Ok(ok) => return Ok(ok),
                Err(f) => {
                    self.record_skip(
                        skipped,
                        progress,
                        &ep.url,
                        &format!("manifest {reference}: {}", f.msg()),
                    );
                    tried.push((ep.url.clone(), f));
                }
            }
        }
        let what = if expect.is_some() && r.digest.is_none() {
            format!("manifest unknown: {r} (manifest {reference})")
        } else {
            format!("manifest unknown: {r}")
        };
        let err = all_failed(&what, &tried);
        Err(match err {
            Error::NotFound(m) => Error::NotFound(m),
            Error::Unauthorized(m) => {
                Error::Unauthorized(m.replacen("manifest unknown: ", "cannot pull ", 1))
            }
            Error::Unavailable(m) => {
                Error::Unavailable(m.replacen("manifest unknown: ", "cannot pull ", 1))
            }
            Error::Verification(m) => {
                Error::Verification(m.replacen("manifest unknown: ", "cannot pull ", 1))
            }
            Error::Unsupported(m) => {
                Error::Unsupported(m.replacen("manifest unknown: ", "cannot pull ", 1))
            }
            other => other,
        })
    }

    async fn fetch_manifest(
        &self,
        conn: &Conn,
        r: &Reference,
        scopes: &[String],
        reference: &str,
        expect: Option<Digest>,
    ) -> std::result::Result<Fetched, Fail> {
        let url = format!("{}/v2/{}/manifests/{reference}", conn.base, r.path);
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_MANIFESTS));
        let resp = self
            .request(conn, scopes, Method::GET, &url, h, None)
            .await?;
        if !resp.status().is_success() {
            return Err(status_fail(conn, resp).await);
        }
        let limit = self.inner.cfg.max_manifest_size;
        if let Some(len) = resp.content_length() {
            if len > limit {
                return Err(Fail::Corrupt(format!(
                    "manifest {reference} is {len} bytes, over the {limit} byte limit; refused"
                )));
            }
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| Fail::Unreachable(format!("reading manifest {reference}: {e}")))?;
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(Fail::Corrupt(format!(
                    "manifest {reference} is over the {limit} byte limit; refused"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let digest = Digest::of(&bytes);
        if let Some(want) = expect {
            if digest != want {
                return Err(Fail::Corrupt(format!(
                    "manifest {want} failed verification: the {} bytes served hash to {digest}; discarded",
                    bytes.len()
                )));
            }
        }
        if let Some(h) = header_digest {
            if h.starts_with("sha256:") && h != digest.to_string() {
                return Err(Fail::Corrupt(format!(
                    "manifest {reference}: Docker-Content-Digest {h} does not match the content ({digest}); discarded"
                )));
            }
        }
        let body_mt = serde_json::from_slice::<MediaTypeOnly>(&bytes)
            .map_err(|e| Fail::Corrupt(format!("manifest {reference} is not JSON: {e}")))?
            .media_type;
        let media_type = match body_mt {
            Some(mt) if !mt.is_empty() => mt,
            _ => ctype,
        };
        if !is_index(&media_type) && !is_manifest(&media_type) {
            return Err(Fail::Unsupported(format!(
                "manifest {reference} has unsupported media type \"{media_type}\" (Berth pulls OCI and Docker schema 2 images)"
            )));
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetch a blob unless the sink has it, sharing one download among concurrent pulls in
    /// this process. Returns the serving endpoint (None if it already existed) and skips.
    async fn blob_dedup(
        &self,
        r: &Reference,
        eps: &[Endpoint],
        scopes: &[String],
        desc: &Descriptor,
        sink: &dyn BlobSink,
        progress: &UnboundedSender<Progress>,
    ) -> Result<BlobOutcome> {
        let d = desc.digest;
        if blocking(|| sink.exists(&d)) {
            send(progress, Progress::Exists { digest: d });
            return Ok((None, Vec::new()));
        }
        let cell = {
            let mut m = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            m.entry(d).or_default().clone()
        };
        let mut mine: Option<Result<BlobOutcome>> = None;
        let shared = cell
            .get_or_init(|| async {
                let res = self.fetch_blob(r, eps, scopes, desc, sink, progress).await;
                let shared = match &res {
                    Ok((ep, _)) => Ok(ep.clone().unwrap_or_default()),
                    Err(e) => Err(e.to_string()),
                };
                mine = Some(res);
                shared
            })
            .await
            .clone();
        {
            let mut m = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if m.get(&d).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                m.remove(&d);
            }
        }
        if let Some(res) = mine {
            return res;
        }
        // Another pull downloaded it.
        match shared {
            Ok(ep) if blocking(|| sink.exists(&d)) => {
                send(
                    progress,
                    Progress::Done {
                        digest: d,
                        endpoint: ep.clone(),
                    },
                );
                Ok((Some(ep), Vec::new()))
            }
            _ => self.fetch_blob(r, eps, scopes, desc, sink, progress).await,
        }
    }

    async fn fetch_blob(
        &self,
        r: &Reference,
        eps: &[Endpoint],
        scopes: &[String],
        desc: &Descriptor,
        sink: &dyn BlobSink,
        progress: &UnboundedSender<Progress>,
    ) -> Result<BlobOutcome> {
        let d = desc.digest;
        let mut skipped = Vec::new();
        let mut tried: Vec<(String, Fail)> = Vec::new();
        for ep in eps {
            let conn = match self.connect(ep).await {
                Ok(c) => c,
                Err(f) => {
                    self.record_skip(
                        &mut skipped,
                        progress,
                        &ep.url,
                        &format!("blob {d}: {}", f.msg()),
                    );
                    tried.push((ep.url.clone(), f));
                    continue;
                }
            };
            match self
                .fetch_blob_from(&conn, r, scopes, desc, sink, progress)
                .await
            {
                Ok(Some(())) => {
                    send(
                        progress,
                        Progress::Done {
                            digest: d,
                            endpoint: conn.base.clone(),
                        },
                    );
                    return Ok((Some(conn.base), skipped));
                }
                Ok(None) => {
                    send(progress, Progress::Exists { digest: d });
                    return Ok((None, skipped));
                }
                Err(FetchErr::Store(e)) => return Err(Error::Store(e)),
                Err(FetchErr::Fail(f)) => {
                    self.record_skip(
                        &mut skipped,
                        progress,
                        &conn.base,
                        &format!("blob {d}: {}", f.msg()),
                    );
                    tried.push((conn.base.clone(), f));
                }
            }
        }
        Err(all_failed(&format!("blob {d} of {r}"), &tried))
    }

    /// Stream one blob from one endpoint into the sink, hashing and size-checking every byte.
    /// `Ok(None)`: the sink already had it.
    async fn fetch_blob_from(
        &self,
        conn: &Conn,
        r: &Reference,
        scopes: &[String],
        desc: &Descriptor,
        sink: &dyn BlobSink,
        progress: &UnboundedSender<Progress>,
    ) -> std::result::Result<Option<()>, FetchErr> {
        let d = desc.digest;
        let size = desc.size;
        let url = format!("{}/v2/{}/blobs/{d}", conn.base, r.path);
        let resp = self
            .request(conn, scopes, Method::GET, &url, HeaderMap::new(), None)
            .await?;
        if !resp.status().is_success() {
            return Err(FetchErr::Fail(status_fail(conn, resp).await));
        }
        if let Some(len) = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len != size {
                return Err(FetchErr::Fail(Fail::Corrupt(format!(
                    "announced {len} bytes but the manifest says {size}; not downloaded"
                ))));
            }
        }
        let writer = blocking(|| sink.begin(&d, size)).map_err(FetchErr::Store)?;
        let Some(writer) = writer else {
            return Ok(None);
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let write_task =
            tokio::task::spawn_blocking(move || -> std::io::Result<Box<dyn BlobWriter>> {
                let mut w = writer;
                while let Some(b) = rx.blocking_recv() {
                    w.write_all(&b)?;
                }
                Ok(w)
            });
        // When the sink verifies on commit, count bytes here instead of hashing them twice.
        let sink_verifies = sink.verifies();
        let mut hasher = Hasher::new();
        let mut counted = 0u64;
        let mut stream = resp.bytes_stream();
        let mut last_report = 0u64;
        let mut fail: Option<Fail> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    fail = Some(Fail::Unreachable(format!(
                        "download interrupted after {counted} bytes: {e}"
                    )));
                    break;
                }
            };
            if sink_verifies {
                counted += chunk.len() as u64;
            } else {
                hasher.update(&chunk);
                counted = hasher.len();
            }
            if counted > size {
                fail = Some(Fail::Corrupt(format!(
                    "served more than the {size} bytes the manifest says; discarded"
                )));
                break;
            }
            if tx.send(chunk).await.is_err() {
                break; // the writer failed; its error is collected below
            }
            if counted - last_report >= 256 * 1024 || counted == size {
                last_report = counted;
                send(
                    progress,
                    Progress::Downloading {
                        digest: d,
                        current: counted,
                        total: size,
                    },
                );
            }
        }
        drop(tx);
        let writer = match write_task.await {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                return Err(FetchErr::Store(berth_store::Error::Internal(format!(
                    "writing blob {d} to the store: {e}"
                ))))
            }
            Err(e) => {
                return Err(FetchErr::Store(berth_store::Error::Internal(format!(
                    "blob writer task for {d}: {e}"
                ))))
            }
        };
        if let Some(f) = fail {
            drop(writer);
            return Err(FetchErr::Fail(f));
        }
        send(progress, Progress::Verifying { digest: d });
        if sink_verifies {
            if counted != size {
                drop(writer);
                return Err(FetchErr::Fail(Fail::Corrupt(format!(
                    "digest mismatch: served {counted} bytes, expected {size}; data discarded"
                ))));
            }
        } else {
            let n = hasher.len();
            let got = hasher.finish();
            if got != d || n != size {
                drop(writer);
                return Err(FetchErr::Fail(Fail::Corrupt(format!(
                    "digest mismatch: served {n} bytes hashing to {got}, expected {size} bytes; data discarded"
                ))));
            }
        }
        let committed = tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| {
                FetchErr::Store(berth_store::Error::Internal(format!(
                    "committing blob {d}: {e}"
                )))
            })?;
        match committed {
            Ok(()) => Ok(Some(())),
            // The sink's own check failed: the endpoint served wrong bytes; try the next.
            Err(berth_store::Error::Verification(m)) if sink_verifies => Err(FetchErr::Fail(
                Fail::Corrupt(format!("digest mismatch: {m}; data discarded")),
            )),
            Err(e) => Err(FetchErr::Store(e)),
        }
    }
}

pub(crate) enum FetchErr {
    Fail(Fail),
    Store(berth_store::Error),
}

impl From<Fail> for FetchErr {
    fn from(f: Fail) -> Self {
        FetchErr::Fail(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: Digest::of(&[n]),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn platform_selection() {
        let list = vec![
            desc("linux", "arm", Some("v6"), 1),
            desc("linux", "arm", Some("v7"), 2),
            desc("linux", "amd64", None, 3),
            desc("windows", "amd64", None, 4),
            desc("linux", "arm64", None, 5),
        ];
        let p = |os: &str, a: &str, v: Option<&str>| Platform {
            os: os.into(),
            architecture: a.into(),
            variant: v.map(Into::into),
        };
        let pick = |w: Platform| select_platform(&list, &w).map(|d| d.digest);
        assert_eq!(pick(p("linux", "amd64", None)), Some(Digest::of(&[3])));
        assert_eq!(pick(p("windows", "amd64", None)), Some(Digest::of(&[4])));
        assert_eq!(pick(p("linux", "arm", Some("v7"))), Some(Digest::of(&[2])));
        assert_eq!(pick(p("linux", "arm", Some("v5"))), None);
        assert_eq!(
            pick(p("linux", "arm64", Some("v8"))),
            Some(Digest::of(&[5])),
            "no variant in the index matches any"
        );
        assert_eq!(pick(p("linux", "s390x", None)), None);
    }
}
