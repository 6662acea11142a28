//! Push: blobs (existence check, cross-repository mount, monolithic or chunked upload), then
//! the manifest by tag and by digest. Only ever to the registry itself, never to a mirror.

use crate::client::{status_fail, Conn, Fail};
use crate::pull::ManifestJson;
use crate::{
    Client, Error, Progress, Reference, Result, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use berth_store::digest::Hasher;
use berth_store::Digest;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use std::io::Read;
use tokio::sync::mpsc::UnboundedSender;

/// Where pushed blobs come from.
pub trait BlobSource: Send + Sync {
    fn size(&self, d: &Digest) -> berth_store::Result<u64>;
    fn open(&self, d: &Digest) -> berth_store::Result<Box<dyn std::io::Read + Send>>;
    /// A repository path in the same registry that already holds `d` (for a cross-repository
    /// mount), e.g. `library/busybox`.
    fn source_repository(&self, _d: &Digest) -> Option<String> {
        None
    }
}

/// Blobs in `<root>/blobs/sha256/<hex>` (an OCI layout or a [`crate::DirSink`] root).
#[derive(Debug, Clone)]
pub struct DirSource {
    pub root: std::path::PathBuf,
    /// Offered for cross-repository mounts of every blob.
    pub mount_from: Option<String>,
}

impl DirSource {
    pub fn new(root: impl Into<std::path::PathBuf>) -> DirSource {
        DirSource {
            root: root.into(),
            mount_from: None,
        }
    }
}

impl BlobSource for DirSource {
    fn size(&self, d: &Digest) -> berth_store::Result<u64> {
        let p = self.root.join("blobs/sha256").join(d.hex());
        Ok(std::fs::metadata(&p)
            .map_err(|e| berth_store::Error::io(&p, e))?
            .len())
    }
    fn open(&self, d: &Digest) -> berth_store::Result<Box<dyn std::io::Read + Send>> {
        let p = self.root.join("blobs/sha256").join(d.hex());
        Ok(Box::new(
            std::fs::File::open(&p).map_err(|e| berth_store::Error::io(&p, e))?,
        ))
    }
    fn source_repository(&self, _d: &Digest) -> Option<String> {
        self.mount_from.clone()
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn fail_err(r: &Reference, ep: &str, what: &str, f: Fail) -> Error {
    let msg = format!("push {r}: {what} at {ep}: {}", f.msg());
    match f {
        Fail::Auth(_) => Error::Unauthorized(format!(
            "{msg}; check that you are logged in to {} with push rights",
            r.domain
        )),
        Fail::NotFound(_) => Error::NotFound(msg),
        Fail::Unreachable(_) => Error::Unavailable(msg),
        Fail::Corrupt(_) => Error::Verification(msg),
        Fail::Unsupported(_) => Error::Unsupported(msg),
        Fail::Other(_) => Error::Unavailable(msg),
    }
}

fn read_chunk(reader: &mut (dyn Read + Send), n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = reader.read(&mut buf[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    Ok(buf)
}

impl Client {
    /// Push an index (or manifest list): every image manifest it names (read from `source`
    /// by digest, with its blobs), then the index itself by tag and digest.
    async fn push_index(
        &self,
        r: &Reference,
        source: &dyn BlobSource,
        index: &[u8],
        media_type: &str,
        progress: UnboundedSender<Progress>,
    ) -> Result<Digest> {
        let ix: crate::pull::IndexJson = serde_json::from_slice(index)
            .map_err(|e| Error::Invalid(format!("push {r}: the index is not valid JSON: {e}")))?;
        for child in &ix.manifests {
            let mut bytes = Vec::new();
            source
                .open(&child.digest)?
                .read_to_end(&mut bytes)
                .map_err(|e| {
                    Error::Invalid(format!("push {r}: reading manifest {}: {e}", child.digest))
                })?;
            let child_ref = Reference {
                tag: None,
                digest: Some(child.digest),
                ..r.clone()
            };
            self.push(
                &child_ref,
                source,
                &bytes,
                &child.media_type,
                progress.clone(),
            )
            .await?;
        }
        self.put_manifest(r, index, media_type).await
    }

    /// PUT a manifest (image or index) by tag (if any) and by digest.
    async fn put_manifest(
        &self,
        r: &Reference,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let ep = self
            .endpoints(&r.domain)
            .pop()
            .ok_or_else(|| Error::Internal(format!("push {r}: no endpoint")))?;
        let conn = self
            .connect(&ep)
            .await
            .map_err(|f| fail_err(r, &ep.url, "connecting", f))?;
        let scopes = vec![format!("repository:{}:pull,push", r.path)];
        self.put_manifest_with(&conn, &scopes, r, manifest, media_type)
            .await
    }

    async fn put_manifest_with(
        &self,
        conn: &Conn,
        scopes: &[String],
        r: &Reference,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let digest = Digest::of(manifest);
        let mut h = HeaderMap::new();
        let ct = HeaderValue::from_str(media_type)
            .map_err(|_| Error::Invalid(format!("push {r}: bad media type \"{media_type}\"")))?;
        h.insert(CONTENT_TYPE, ct);
        let mut targets: Vec<String> = r.tag.iter().cloned().collect();
        targets.push(digest.to_string());
        for t in targets {
            let url = format!("{}/v2/{}/manifests/{t}", conn.base, r.path);
            let resp = self
                .request(
                    conn,
                    scopes,
                    Method::PUT,
                    &url,
                    h.clone(),
                    Some(Bytes::copy_from_slice(manifest)),
                )
                .await
                .map_err(|f| fail_err(r, &conn.base, &format!("putting manifest {t}"), f))?;
            if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
                let f = status_fail(conn, resp).await;
                return Err(fail_err(r, &conn.base, &format!("putting manifest {t}"), f));
            }
            if let Some(got) = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
            {
                if got != digest.to_string() {
                    return Err(Error::Verification(format!(
                        "push {r}: {} stored manifest {t} as {got}, expected {digest}",
                        conn.base
                    )));
                }
            }
        }
        Ok(digest)
    }

    /// Push an image manifest and its blobs to `r`'s registry; returns the manifest digest.
    /// The manifest is put by tag (if `r` has one) and by digest.
    pub async fn push(
        &self,
        r: &Reference,
        source: &dyn BlobSource,
        manifest: &[u8],
        media_type: &str,
        progress: UnboundedSender<Progress>,
    ) -> Result<Digest> {
        let is_index = media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST;
        if !is_index && media_type != MEDIA_OCI_MANIFEST && media_type != MEDIA_DOCKER_MANIFEST {
            return Err(Error::Unsupported(format!(
                "push {r}: media type \"{media_type}\" is not supported (push an OCI or Docker schema 2 image manifest or index)"
            )));
        }
        if is_index {
            return Box::pin(self.push_index(r, source, manifest, media_type, progress)).await;
        }
        let limit = self.inner.cfg.max_manifest_size;
        if manifest.len() as u64 > limit {
            return Err(Error::Limit(format!(
                "push {r}: the manifest is {} bytes, over the {limit} byte limit",
                manifest.len()
            )));
        }
        let digest = Digest::of(manifest);
        if let Some(want) = r.digest {
            if want != digest {
                return Err(Error::Verification(format!(
                    "push {r}: the manifest's digest is {digest}, not the {want} in the reference"
                )));
            }
        }
        let m: ManifestJson = serde_json::from_slice(manifest).map_err(|e| {
            Error::Invalid(format!(
                "push {r}: manifest {digest} is not a valid image manifest: {e}"
            ))
        })?;
        let ep = self
            .endpoints(&r.domain)
            .pop()
            .ok_or_else(|| Error::Internal(format!("push {r}: no endpoint")))?;
        let conn = self
            .connect(&ep)
            .await
            .map_err(|f| fail_err(r, &ep.url, "connecting", f))?;
        let mut scopes = vec![format!("repository:{}:pull,push", r.path)];
        let mut mounts: Vec<String> = std::iter::once(&m.config)
            .chain(&m.layers)
            .filter_map(|d| source.source_repository(&d.digest))
            .filter(|s| *s != r.path)
            .collect();
        mounts.sort();
        mounts.dedup();
        scopes.extend(mounts.iter().map(|s| format!("repository:{s}:pull")));

        for desc in std::iter::once(&m.config).chain(&m.layers) {
            self.push_blob(&conn, r, &scopes, source, desc.digest, desc.size, &progress)
                .await?;
        }

        self.put_manifest_with(&conn, &scopes, r, manifest, media_type)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_blob(
        &self,
        conn: &Conn,
        r: &Reference,
        scopes: &[String],
        source: &dyn BlobSource,
        d: Digest,
        size: u64,
        progress: &UnboundedSender<Progress>,
    ) -> Result<()> {
        let ep = conn.base.as_str();
        let what = format!("blob {d}");
        let err = |f: Fail| fail_err(r, ep, &what, f);
        // Already there?
        let url = format!("{ep}/v2/{}/blobs/{d}", r.path);
        let resp = self
            .request(conn, scopes, Method::HEAD, &url, HeaderMap::new(), None)
            .await
            .map_err(err)?;
        if resp.status().is_success() {
            let _ = progress.send(Progress::Exists { digest: d });
            return Ok(());
        }
        if resp.status() != StatusCode::NOT_FOUND {
            return Err(err(status_fail(conn, resp).await));
        }
        // Mount, or start an upload session.
        let mut start = format!("{ep}/v2/{}/blobs/uploads/", r.path);
        let from = source.source_repository(&d).filter(|s| *s != r.path);
        if let Some(from) = &from {
            let mut u = reqwest::Url::parse(&start).map_err(|e| Error::Internal(e.to_string()))?;
            u.query_pairs_mut()
                .append_pair("mount", &d.to_string())
                .append_pair("from", from);
            start = u.to_string();
        }
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let resp = self
            .request(conn, scopes, Method::POST, &start, h, Some(Bytes::new()))
            .await
            .map_err(err)?;
        if resp.status() == StatusCode::CREATED && from.is_some() {
            let _ = progress.send(Progress::Mounted {
                digest: d,
                from: from.unwrap_or_default(),
            });
            return Ok(());
        }
        if resp.status() != StatusCode::ACCEPTED {
            return Err(err(status_fail(conn, resp).await));
        }
        let mut location = upload_location(ep, &resp).map_err(err)?;

        let size_check = blocking(|| source.size(&d))?;
        if size_check != size {
            return Err(Error::Verification(format!(
                "push {r}: local blob {d} is {size_check} bytes but the manifest says {size}"
            )));
        }
        let mut reader = blocking(|| source.open(&d))?;
        let chunk = self.inner.cfg.push_chunk_size.max(1);
        let mut hasher = Hasher::new();
        let octet = HeaderValue::from_static("application/octet-stream");
        if size <= chunk {
            let n =
                usize::try_from(size).map_err(|_| Error::Limit(format!("blob {d} too large")))?;
            let data = blocking(|| read_chunk(reader.as_mut(), n))
                .map_err(|e| Error::Internal(format!("push {r}: reading local blob {d}: {e}")))?;
            hasher.update(&data);
            verify_local(r, d, size, hasher)?;
            let url = with_digest(&location, d).map_err(err)?;
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, octet);
            let resp = self
                .request(conn, scopes, Method::PUT, &url, h, Some(Bytes::from(data)))
                .await
                .map_err(err)?;
            if resp.status() != StatusCode::CREATED {
                return Err(err(status_fail(conn, resp).await));
            }
        } else {
            let n =
                usize::try_from(chunk).map_err(|_| Error::Limit("chunk size too large".into()))?;
            let mut offset = 0u64;
            while offset < size {
                let data = blocking(|| read_chunk(reader.as_mut(), n)).map_err(|e| {
                    Error::Internal(format!("push {r}: reading local blob {d}: {e}"))
                })?;
                if data.is_empty() {
                    break;
                }
                hasher.update(&data);
                let end = offset + data.len() as u64 - 1;
                let mut h = HeaderMap::new();
                h.insert(CONTENT_TYPE, octet.clone());
                h.insert(
                    "content-range",
                    HeaderValue::from_str(&format!("{offset}-{end}"))
                        .map_err(|e| Error::Internal(e.to_string()))?,
                );
                let len = data.len() as u64;
                let resp = self
                    .request(
                        conn,
                        scopes,
                        Method::PATCH,
                        &location,
                        h,
                        Some(Bytes::from(data)),
                    )
                    .await
                    .map_err(err)?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(err(status_fail(conn, resp).await));
                }
                location = upload_location(ep, &resp).map_err(err)?;
                offset += len;
                let _ = progress.send(Progress::Uploading {
                    digest: d,
                    current: offset,
                    total: size,
                });
            }
            verify_local(r, d, size, hasher)?;
            let url = with_digest(&location, d).map_err(err)?;
            let mut h = HeaderMap::new();
            h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            let resp = self
                .request(conn, scopes, Method::PUT, &url, h, Some(Bytes::new()))
                .await
                .map_err(err)?;
            if resp.status() != StatusCode::CREATED {
                return Err(err(status_fail(conn, resp).await));
            }
        }
        let _ = progress.send(Progress::Done {
            digest: d,
            endpoint: ep.to_string(),
        });
        Ok(())
    }
}

fn verify_local(r: &Reference, d: Digest, size: u64, hasher: Hasher) -> Result<()> {
    let n = hasher.len();
    let got = hasher.finish();
    if got != d || n != size {
        return Err(Error::Verification(format!(
            "push {r}: local blob {d} is corrupt ({n} bytes hashing to {got}, expected {size} bytes); not pushed"
        )));
    }
    Ok(())
}

fn upload_location(base: &str, resp: &Response) -> std::result::Result<String, Fail> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| Fail::Other("upload answer without a Location".into()))?;
    let base = reqwest::Url::parse(&format!("{base}/"))
        .map_err(|e| Fail::Other(format!("bad base URL: {e}")))?;
    let url = base
        .join(loc)
        .map_err(|e| Fail::Other(format!("bad upload Location \"{loc}\": {e}")))?;
    if base.scheme() == "https" && url.scheme() != "https" {
        return Err(Fail::Other(format!(
            "refusing upload Location {url}: https to http"
        )));
    }
    Ok(url.to_string())
}

fn with_digest(location: &str, d: Digest) -> std::result::Result<String, Fail> {
    let mut u = reqwest::Url::parse(location)
        .map_err(|e| Fail::Other(format!("bad upload URL \"{location}\": {e}")))?;
    u.query_pairs_mut().append_pair("digest", &d.to_string());
    Ok(u.to_string())
}
