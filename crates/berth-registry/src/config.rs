//! Registry configuration: mirrors, insecure registries, limits and credentials, read from
//! Docker's `daemon.json` and `config.json` formats.

use crate::{Error, Result};
use base64::Engine as _;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Docker Hub's registry host as it appears in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually lives.
pub const DOCKER_HUB_UPSTREAM: &str = "https://registry-1.docker.io";

/// One mirror of a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// Base URL, e.g. `https://mirror.example.com` or `http://127.0.0.1:5001`.
    pub url: String,
    /// Plain HTTP or unverified TLS allowed.
    pub insecure: bool,
    /// May answer tag → digest lookups (see the crate doc for the policy).
    pub resolve_tags: bool,
}

/// A username and password (or token) for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Mirrors per registry host (`docker.io`, `localhost:5000`), tried in order before it.
    pub mirrors: HashMap<String, Vec<Mirror>>,
    /// Registries reachable over plain HTTP / unverified TLS: `host[:port]` or a CIDR.
    /// Loopback (`127.0.0.0/8`, `::1`, `localhost`) is always insecure, as in Docker.
    pub insecure_registries: Vec<String>,
    pub max_concurrent_downloads: usize,
    /// Connect timeout and the longest silence while reading a response.
    pub request_timeout: Duration,
    /// Extra attempts after a connection error or 5xx (exponential backoff from 100 ms).
    pub max_retries: u32,
    /// Credentials keyed by registry host (`docker.io`, `localhost:5000`).
    pub credentials: HashMap<String, Credentials>,
    /// Largest manifest or index accepted.
    pub max_manifest_size: u64,
    /// Blobs larger than this are pushed in chunks of this size.
    pub push_chunk_size: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            mirrors: HashMap::new(),
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            credentials: HashMap::new(),
            max_manifest_size: 4 << 20,
            push_chunk_size: 16 << 20,
        }
    }
}

fn str_list(v: &serde_json::Value, key: &str) -> Result<Vec<String>> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    Error::Invalid(format!(
                        "daemon.json: \"{key}\" must be a list of strings, found {x}"
                    ))
                })
            })
            .collect(),
        Some(other) => Err(Error::Invalid(format!(
            "daemon.json: \"{key}\" must be a list of strings, found {other}"
        ))),
    }
}

/// `host[:port]` of a URL, or of a bare `host[:port]`.
pub(crate) fn url_authority(s: &str) -> String {
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// The host part of `host[:port]` (brackets removed for IPv6).
pub(crate) fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Loopback hosts are insecure by default (plain HTTP allowed), like Docker.
pub fn is_loopback(authority: &str) -> bool {
    let host = host_of(authority);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl RegistryConfig {
    /// Read Docker's `daemon.json` keys: `registry-mirrors` (mirrors of docker.io, which may
    /// resolve tags), `insecure-registries`, `max-concurrent-downloads`, and Berth's
    /// `registry-mirrors-by-host`: `{"host": ["url", {"url": .., "resolve-tags": false}, ..]}`.
    pub fn from_daemon_json(v: &serde_json::Value) -> Result<RegistryConfig> {
        let mut cfg = RegistryConfig {
            insecure_registries: str_list(v, "insecure-registries")?,
            ..RegistryConfig::default()
        };
        if let Some(n) = v.get("max-concurrent-downloads") {
            cfg.max_concurrent_downloads = n
                .as_u64()
                .filter(|n| *n >= 1)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "daemon.json: \"max-concurrent-downloads\" must be a positive integer, found {n}"
                    ))
                })?;
        }
        let hub: Vec<Mirror> = str_list(v, "registry-mirrors")?
            .into_iter()
            .map(|url| cfg.mirror(&url, true, None))
            .collect::<Result<_>>()?;
        if !hub.is_empty() {
            cfg.mirrors.insert(DOCKER_HUB.to_string(), hub);
        }
        match v.get("registry-mirrors-by-host") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(m)) => {
                for (host, list) in m {
                    let host = normalize_host(host);
                    let arr = list.as_array().ok_or_else(|| {
                        Error::Invalid(format!(
                            "daemon.json: \"registry-mirrors-by-host\".\"{host}\" must be a list"
                        ))
                    })?;
                    let mut mirrors = Vec::new();
                    for item in arr {
                        let m = match item {
                            serde_json::Value::String(url) => cfg.mirror(url, true, None)?,
                            serde_json::Value::Object(o) => {
                                let url = o.get("url").and_then(|u| u.as_str()).ok_or_else(|| {
                                    Error::Invalid(format!(
                                        "daemon.json: a mirror of \"{host}\" needs a \"url\" string"
                                    ))
                                })?;
                                let rt = o.get("resolve-tags").and_then(|b| b.as_bool()).unwrap_or(true);
                                let ins = o.get("insecure").and_then(|b| b.as_bool());
                                cfg.mirror(url, rt, ins)?
                            }
                            other => {
                                return Err(Error::Invalid(format!(
                                    "daemon.json: mirror of \"{host}\" must be a URL string or an object, found {other}"
                                )))
                            }
                        };
                        mirrors.push(m);
                    }
                    cfg.mirrors.entry(host).or_default().extend(mirrors);
                }
            }
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "daemon.json: \"registry-mirrors-by-host\" must be an object, found {other}"
                )))
            }
        }
        Ok(cfg)
    }

    fn mirror(&self, url: &str, resolve_tags: bool, insecure: Option<bool>) -> Result<Mirror> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::Invalid(format!(
                "mirror URL \"{url}\" is not a URL ({e}); write it like https://mirror.example.com"
            ))
        })?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(Error::Invalid(format!(
                "mirror URL \"{url}\" must start with http:// or https://"
            )));
        }
        let url = url.trim_end_matches('/').to_string();
        let insecure = insecure.unwrap_or_else(|| self.is_insecure(&url_authority(&url)));
        Ok(Mirror {
            url,
            insecure,
            resolve_tags,
        })
    }

    /// Whether `authority` (`host[:port]`) may be reached over plain HTTP / unverified TLS.
    pub fn is_insecure(&self, authority: &str) -> bool {
        if is_loopback(authority) {
            return true;
        }
        let host = host_of(authority);
        let ip = host.parse::<IpAddr>().ok();
        self.insecure_registries.iter().any(|entry| {
            if entry.contains('/') && !entry.contains("://") {
                return ip.is_some_and(|ip| cidr_contains(entry, ip));
            }
            let entry = url_authority(entry);
            entry == authority || entry == host
        })
    }

    /// Load credentials from a Docker-compatible `config.json` (`auths` entries with a base64
    /// `auth` or `username`/`password`). Keys like `https://index.docker.io/v1/` map to
    /// `docker.io`. Secrets are never logged.
    pub fn load_credentials(&mut self, path: &Path) -> Result<()> {
        let data = std::fs::read(path).map_err(|e| {
            Error::Invalid(format!(
                "cannot read credentials file {}: {e}",
                path.display()
            ))
        })?;
        let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
            Error::Invalid(format!(
                "credentials file {} is not JSON: {e}",
                path.display()
            ))
        })?;
        let auths = match v.get("auths") {
            Some(serde_json::Value::Object(a)) => a,
            _ => return Ok(()),
        };
        for (key, entry) in auths {
            let host = normalize_host(key);
            let creds = if let Some(auth) = entry
                .get("auth")
                .and_then(|a| a.as_str())
                .filter(|a| !a.is_empty())
            {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| {
                        Error::Invalid(format!(
                            "credentials file {}: the \"auth\" of \"{key}\" is not base64; run `berth login {host}` again",
                            path.display()
                        ))
                    })?;
                let text = String::from_utf8(raw).map_err(|_| {
                    Error::Invalid(format!(
                        "credentials file {}: the \"auth\" of \"{key}\" is not UTF-8",
                        path.display()
                    ))
                })?;
                let (u, p) = text.split_once(':').ok_or_else(|| {
                    Error::Invalid(format!(
                        "credentials file {}: the \"auth\" of \"{key}\" is not user:password",
                        path.display()
                    ))
                })?;
                Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }
            } else {
                match (
                    entry.get("username").and_then(|u| u.as_str()),
                    entry.get("password").and_then(|p| p.as_str()),
                ) {
                    (Some(u), Some(p)) => Credentials {
                        username: u.to_string(),
                        password: p.to_string(),
                    },
                    _ => continue,
                }
            };
            self.credentials.insert(host, creds);
        }
        Ok(())
    }

    /// Credentials for a registry host or a mirror URL.
    pub fn credentials_for(&self, host_or_url: &str) -> Option<&Credentials> {
        self.credentials.get(&normalize_host(host_or_url))
    }
}

/// `https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io` → `docker.io`;
/// otherwise the `host[:port]` of the key.
pub(crate) fn normalize_host(key: &str) -> String {
    let a = url_authority(key);
    match a.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn daemon_json_mirrors_and_insecure() {
        let cfg = RegistryConfig::from_daemon_json(&json!({
            "registry-mirrors": ["https://mirror.example.com/", "http://127.0.0.1:5001"],
            "insecure-registries": ["myreg.lan:5000", "10.1.0.0/16"],
            "max-concurrent-downloads": 5,
            "registry-mirrors-by-host": {
                "localhost:5000": ["http://127.0.0.1:6000",
                                   {"url": "https://m.lan", "resolve-tags": false}]
            }
        }))
        .unwrap();
        assert_eq!(cfg.max_concurrent_downloads, 5);
        let hub = &cfg.mirrors["docker.io"];
        assert_eq!(hub.len(), 2);
        assert_eq!(hub[0].url, "https://mirror.example.com");
        assert!(!hub[0].insecure);
        assert!(
            hub[0].resolve_tags,
            "docker.io registry-mirrors resolve tags, as in Docker"
        );
        assert!(hub[1].insecure, "loopback mirror is insecure by default");
        let l = &cfg.mirrors["localhost:5000"];
        assert_eq!(l[0].url, "http://127.0.0.1:6000");
        assert!(l[0].resolve_tags);
        assert!(!l[1].resolve_tags);
        assert!(cfg.is_insecure("myreg.lan:5000"));
        assert!(!cfg.is_insecure("myreg.lan:5001"));
        assert!(cfg.is_insecure("10.1.2.3:5000"));
        assert!(!cfg.is_insecure("10.2.0.1"));
        assert!(cfg.is_insecure("127.0.0.5:80"));
        assert!(cfg.is_insecure("[::1]:5000"));
        assert!(cfg.is_insecure("localhost"));
        assert!(!cfg.is_insecure("registry-1.docker.io"));
    }

    #[test]
    fn daemon_json_errors_name_the_key() {
        for (v, frag) in [
            (json!({"registry-mirrors": "https://x"}), "registry-mirrors"),
            (json!({"registry-mirrors": ["not a url"]}), "not a url"),
            (
                json!({"registry-mirrors": ["ftp://x"]}),
                "http:// or https://",
            ),
            (
                json!({"max-concurrent-downloads": 0}),
                "max-concurrent-downloads",
            ),
            (json!({"registry-mirrors-by-host": {"h": "x"}}), "\"h\""),
        ] {
            let e = RegistryConfig::from_daemon_json(&v)
                .unwrap_err()
                .to_string();
            assert!(e.contains(frag), "{frag}: {e}");
        }
    }

    #[test]
    fn credentials_from_config_json_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        std::fs::write(
            &p,
            json!({"auths": {
                "https://index.docker.io/v1/": {"auth": auth},
                "localhost:5000": {"username": "bob", "password": "hunter2"},
                "empty.example": {}
            }})
            .to_string(),
        )
        .unwrap();
        let mut cfg = RegistryConfig::default();
        cfg.load_credentials(&p).unwrap();
        let hub = cfg.credentials_for("docker.io").unwrap();
        assert_eq!(hub.username, "alice");
        assert_eq!(hub.password, "s3cret:x");
        assert_eq!(
            cfg.credentials_for("https://registry-1.docker.io").unwrap(),
            hub
        );
        assert_eq!(
            cfg.credentials_for("localhost:5000").unwrap().username,
            "bob"
        );
        assert!(cfg.credentials_for("empty.example").is_none());
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("s3cret"), "{dbg}");
    }
}
