//! Tag listing (`GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"` pages), for
//! `pull --all-tags`. Tags say which digests a repository's names mean, so they come only
//! from the endpoints allowed to resolve tags: mirrors with `resolve-tags`, then the registry.

use crate::client::{all_failed, status_fail, Conn, Endpoint, Fail};
use crate::pull::pull_scopes;
use crate::{Client, Progress, Reference, Result};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, LINK};
use reqwest::Method;
use serde::Deserialize;
use std::collections::HashSet;
use tokio::sync::mpsc::UnboundedSender;

/// At most this many pages are followed (a registry linking pages in a loop is cut off).
pub(crate) const MAX_TAG_PAGES: usize = 1000;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The `rel="next"` target of a `Link` header (`<url>; rel="next"`), if any.
pub(crate) fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim().trim_matches('"').split(' ').any(|r| r == "next")
            })
        });
        is_next.then(|| url.to_string())
    })
}

impl Client {
    /// Every tag of `r`'s repository (its own tag or digest is ignored), in the order the
    /// registry lists them, from the first endpoint allowed to resolve tags that answers.
    /// Endpoints that fail are skipped with a `Progress::Skipped` event, as for a pull.
    pub async fn list_tags(
        &self,
        r: &Reference,
        progress: &UnboundedSender<Progress>,
    ) -> Result<Vec<String>> {
        let eps: Vec<Endpoint> = self
            .endpoints(&r.domain)
            .into_iter()
            .filter(|e| e.resolve_tags)
            .collect();
        let scopes = pull_scopes(r);
        let mut tried: Vec<(String, Fail)> = Vec::new();
        for ep in &eps {
            let res = match self.connect(ep).await {
                Ok(conn) => self.tags_from(&conn, r, &scopes).await,
                Err(f) => Err(f),
            };
            match res {
                Ok(tags) => return Ok(tags),
                Err(f) => {
                    tracing::warn!(endpoint = %ep.url, reason = f.msg(), "registry endpoint skipped");
                    let _ = progress.send(Progress::Skipped {
                        endpoint: ep.url.clone(),
                        reason: format!("tags of {}: {}", r.path, f.msg()),
                    });
                    tried.push((ep.url.clone(), f));
                }
            }
        }
        let name = format!("{}/{}", r.domain, r.path);
        Err(all_failed(
            &format!("cannot list the tags of {name}"),
            &tried,
        ))
    }

    async fn tags_from(
        &self,
        conn: &Conn,
        r: &Reference,
        scopes: &[String],
    ) -> std::result::Result<Vec<String>, Fail> {
        let first = format!("{}/v2/{}/tags/list", conn.base, r.path);
        let base = reqwest::Url::parse(&first)
            .map_err(|e| Fail::Other(format!("bad tag list URL {first}: {e}")))?;
        let mut url = base.clone();
        let limit = self.inner.cfg.max_manifest_size;
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..MAX_TAG_PAGES {
            let resp = self
                .request(
                    conn,
                    scopes,
                    Method::GET,
                    url.as_str(),
                    HeaderMap::new(),
                    None,
                )
                .await?;
            if !resp.status().is_success() {
                return Err(status_fail(conn, resp).await);
            }
            let next = resp
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| Fail::Unreachable(format!("reading the tag list: {e}")))?;
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(Fail::Corrupt(format!(
                        "a tag list page is over the {limit} byte limit; refused"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| Fail::Corrupt(format!("the tag list is not valid JSON: {e}")))?;
            for t in page.tags.unwrap_or_default() {
                if seen.insert(t.clone()) {
                    tags.push(t);
                }
            }
            let Some(next) = next else {
                return Ok(tags);
            };
            let n = url
                .join(&next)
                .map_err(|e| Fail::Other(format!("bad tag list Link \"{next}\": {e}")))?;
            if n.scheme() != base.scheme()
                || n.host_str() != base.host_str()
                || n.port_or_known_default() != base.port_or_known_default()
            {
                return Err(Fail::Other(format!(
                    "the tag list links to another host ({n}); refused"
                )));
            }
            url = n;
        }
        Err(Fail::Other(format!(
            "the tag list has more than {MAX_TAG_PAGES} pages; refused"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/b/tags/list?last=t2&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?last=t2&n=2")
        );
        assert_eq!(
            next_link(
                r#"<https://x/prev>; rel="prev", <https://x/v2/n/tags/list?last=z>; rel=next"#
            )
            .as_deref(),
            Some("https://x/v2/n/tags/list?last=z")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
