//! The registry part of berthd's daemon.json: read it for the Settings panel, write it back
//! (other keys untouched, atomically, only after berthd's own parser accepts the result) and
//! tell a running berthd to reload it with SIGHUP. Also the Test button's endpoint probe.

use crate::error::{self, Res};
use berth_desktop_dto::{Mirror, ProbeResult, RegistryMirrors, RegistrySettings, SaveReport};
use nix::sys::signal::Signal;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const HUB: &str = "docker.io";

fn read_json(path: &Path) -> Res<Map<String, Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Map::new()),
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(error::invalid(format!(
                "{} is not a JSON object; fix or remove it, then try again",
                path.display()
            ))),
            Err(e) => Err(error::invalid(format!(
                "{} is not valid JSON ({e}); fix or remove it, then try again",
                path.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(error::system(format!(
            "Cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The settings as daemon.json has them; docker.io always first.
pub fn read(path: &Path) -> Res<RegistrySettings> {
    let m = read_json(path)?;
    let mut registries = vec![RegistryMirrors {
        registry: HUB.into(),
        mirrors: strings(m.get("registry-mirrors"))
            .into_iter()
            .map(|url| Mirror {
                url,
                resolve_tags: true,
            })
            .collect(),
    }];
    if let Some(Value::Object(by_host)) = m.get("registry-mirrors-by-host") {
        for (host, list) in by_host {
            let mirrors: Vec<Mirror> = list
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|item| match item {
                    Value::String(url) => Some(Mirror {
                        url: url.clone(),
                        resolve_tags: true,
                    }),
                    Value::Object(o) => Some(Mirror {
                        url: o.get("url")?.as_str()?.to_string(),
                        resolve_tags: o
                            .get("resolve-tags")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                    }),
                    _ => None,
                })
                .collect();
            let host = if host == "index.docker.io" || host == "registry-1.docker.io" {
                HUB.to_string()
            } else {
                host.clone()
            };
            match registries.iter_mut().find(|r| r.registry == host) {
                Some(r) => r.mirrors.extend(mirrors),
                None => registries.push(RegistryMirrors {
                    registry: host,
                    mirrors,
                }),
            }
        }
    }
    Ok(RegistrySettings {
        config_path: path.display().to_string(),
        registries,
        insecure_registries: strings(m.get("insecure-registries")),
    })
}

/// `settings` merged into the daemon.json object `m` (its other keys kept).
pub fn merge(mut m: Map<String, Value>, settings: &RegistrySettings) -> Res<Map<String, Value>> {
    let mut hub_simple = Vec::new();
    let mut by_host = Map::new();
    for r in &settings.registries {
        let host = r.registry.trim().to_string();
        if host.is_empty() {
            return Err(error::invalid(
                "A registry has no name: give its host[:port]",
            ));
        }
        if host.contains('/') || host.contains(char::is_whitespace) {
            return Err(error::invalid(format!(
                "\"{host}\" is not a registry host: write it as host[:port], e.g. registry.example.com:5000"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for mir in &r.mirrors {
            if !seen.insert(mir.url.trim_end_matches('/')) {
                return Err(error::invalid(format!(
                    "{} is listed twice for {host}",
                    mir.url
                )));
            }
        }
        let is_hub = host == HUB;
        if is_hub && r.mirrors.iter().all(|x| x.resolve_tags) {
            hub_simple = r.mirrors.iter().map(|x| x.url.clone()).collect();
        } else if !r.mirrors.is_empty() {
            let list: Vec<Value> = r
                .mirrors
                .iter()
                .map(|x| json!({"url": x.url, "resolve-tags": x.resolve_tags}))
                .collect();
            by_host.insert(host, Value::Array(list));
        }
    }
    if hub_simple.is_empty() {
        m.remove("registry-mirrors");
    } else {
        m.insert("registry-mirrors".into(), json!(hub_simple));
    }
    if by_host.is_empty() {
        m.remove("registry-mirrors-by-host");
    } else {
        m.insert("registry-mirrors-by-host".into(), Value::Object(by_host));
    }
    let insecure: Vec<String> = settings
        .insecure_registries
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if insecure.is_empty() {
        m.remove("insecure-registries");
    } else {
        m.insert("insecure-registries".into(), json!(insecure));
    }
    // The engine's own parser decides: what it would refuse is never written.
    berth_registry::RegistryConfig::from_daemon_json(&Value::Object(m.clone()))
        .map_err(|e| error::invalid(e.to_string()))?;
    Ok(m)
}

/// Writes the settings and, when berthd runs with this exec root, sends it SIGHUP.
pub fn save(path: &Path, pidfile: &Path, settings: &RegistrySettings) -> Res<SaveReport> {
    let merged = merge(read_json(path)?, settings)?;
    let mut text = serde_json::to_string_pretty(&Value::Object(merged))
        .map_err(|e| error::system(e.to_string()))?;
    text.push('\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| error::system(format!("Cannot create {}: {e}", dir.display())))?;
    }
    let tmp = path.with_extension("json.berth-tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            error::system(format!("Cannot write {}: {e}", path.display()))
        })?;
    let pid = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    let (reloaded, message) = match pid {
        Some(pid) => match signal_berthd(pid, Signal::SIGHUP) {
            Ok(()) => (
                true,
                format!(
                    "Saved to {}; the engine reloaded its registry settings (no restart).",
                    path.display()
                ),
            ),
            Err(e) => (false, format!("Saved to {}, but {}", path.display(), e.message)),
        },
        None => (
            false,
            format!(
                "Saved to {}. The engine is not running; it will use these settings when it starts.",
                path.display()
            ),
        ),
    };
    Ok(SaveReport {
        config_path: path.display().to_string(),
        reloaded,
        message,
    })
}

/// Signals `pid` if it is a berthd (a stale pid file may name another process by now).
pub fn signal_berthd(pid: i32, sig: Signal) -> Res<()> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "berthd" {
        return Err(error::system(format!(
            "the pid file names process {pid}, which is not a running berthd"
        )));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| {
        error::system(format!(
            "could not signal berthd (pid {pid}): {e}{}",
            if e == nix::errno::Errno::EPERM {
                "; it runs as another user: start the app as that user or restart the engine"
            } else {
                ""
            }
        ))
    })
}

/// The Test button: `GET <url>/v2/`, timed; says whether it is a registry, how it wants to
/// be authenticated, and whether TLS checked out.
pub async fn probe(url: &str) -> ProbeResult {
    let base = url.trim().trim_end_matches('/').to_string();
    let mut r = ProbeResult {
        url: base.clone(),
        ok: false,
        status: None,
        latency_ms: 0.0,
        scheme: base.split("://").next().unwrap_or("").to_string(),
        tls: None,
        auth: "none".into(),
        api_version: None,
        message: String::new(),
    };
    if r.scheme != "http" && r.scheme != "https" {
        r.message = "The URL must start with http:// or https://".into();
        return r;
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            r.message = e.to_string();
            return r;
        }
    };
    let t0 = Instant::now();
    let res = client.get(format!("{base}/v2/")).send().await;
    r.latency_ms = (t0.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    match res {
        Ok(resp) => {
            let status = resp.status().as_u16();
            r.status = Some(status);
            if r.scheme == "https" {
                r.tls = Some("verified".into());
            }
            let h = resp.headers();
            r.api_version = h
                .get("docker-distribution-api-version")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if let Some(c) = h.get("www-authenticate").and_then(|v| v.to_str().ok()) {
                let lower = c.to_ascii_lowercase();
                r.auth = if lower.starts_with("bearer") {
                    let realm = c
                        .split("realm=\"")
                        .nth(1)
                        .and_then(|s| s.split('"').next())
                        .unwrap_or("");
                    format!("bearer (token from {realm})")
                } else if lower.starts_with("basic") {
                    "basic".into()
                } else {
                    c.to_string()
                };
            }
            r.ok = status == 200 || status == 401;
            r.message = match status {
                200 => "Registry API v2 answers".to_string(),
                401 => format!(
                    "Registry API v2 answers; it asks for credentials ({})",
                    r.auth
                ),
                404 => "Not a registry: /v2/ is not found here (check the URL's path)".to_string(),
                s => format!("Unexpected answer: HTTP {s}"),
            };
        }
        Err(e) => {
            let mut why: &dyn std::error::Error = &e;
            while let Some(s) = why.source() {
                why = s;
            }
            let text = why.to_string();
            let tls_problem = r.scheme == "https"
                && (text.contains("certificate")
                    || text.contains("InvalidCertificate")
                    || text.to_ascii_lowercase().contains("tls")
                    || text.contains("handshake"));
            if tls_problem {
                r.tls = Some(format!("refused: {text}"));
            }
            r.message = if e.is_timeout() {
                "No answer within 5 s".to_string()
            } else if e.is_connect() && !tls_problem {
                format!("Cannot connect: {text}")
            } else {
                text
            };
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(regs: Vec<(&str, Vec<(&str, bool)>)>, insecure: &[&str]) -> RegistrySettings {
        RegistrySettings {
            config_path: String::new(),
            registries: regs
                .into_iter()
                .map(|(r, m)| RegistryMirrors {
                    registry: r.into(),
                    mirrors: m
                        .into_iter()
                        .map(|(u, t)| Mirror {
                            url: u.into(),
                            resolve_tags: t,
                        })
                        .collect(),
                })
                .collect(),
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn save_keeps_other_keys_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(
            &path,
            r#"{"bridge":"br9","registry-mirrors":["http://old:1"]}"#,
        )
        .unwrap();
        let s = settings(
            vec![
                (
                    "docker.io",
                    vec![("http://127.0.0.1:5001", true), ("https://m.example", true)],
                ),
                ("127.0.0.1:5000", vec![("http://127.0.0.1:5002", false)]),
            ],
            &["reg.lan:5000"],
        );
        let rep = save(&path, &dir.path().join("none.pid"), &s).unwrap();
        assert!(!rep.reloaded);
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["bridge"], "br9");
        assert_eq!(
            v["registry-mirrors"],
            json!(["http://127.0.0.1:5001", "https://m.example"])
        );
        assert_eq!(
            v["registry-mirrors-by-host"]["127.0.0.1:5000"],
            json!([{"url": "http://127.0.0.1:5002", "resolve-tags": false}])
        );
        assert_eq!(v["insecure-registries"], json!(["reg.lan:5000"]));
        let back = read(&path).unwrap();
        assert_eq!(back.registries, s.registries);
        assert_eq!(back.insecure_registries, s.insecure_registries);
    }

    #[test]
    fn bad_settings_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, r#"{"bridge":"br9"}"#).unwrap();
        let bad = settings(vec![("docker.io", vec![("ftp://x", true)])], &[]);
        let e = save(&path, &dir.path().join("none.pid"), &bad).unwrap_err();
        assert!(e.message.contains("ftp://x"), "{}", e.message);
        let dup = settings(
            vec![(
                "docker.io",
                vec![("http://a:1", true), ("http://a:1/", true)],
            )],
            &[],
        );
        assert!(save(&path, &dir.path().join("none.pid"), &dup).is_err());
        let host = settings(vec![("http://reg", vec![])], &[]);
        assert!(save(&path, &dir.path().join("none.pid"), &host).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"bridge":"br9"}"#
        );
    }

    #[test]
    fn malformed_daemon_json_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, "{nope").unwrap();
        let e = read(&path).unwrap_err();
        assert!(
            e.message.contains("daemon.json") && e.message.contains("not valid JSON"),
            "{}",
            e.message
        );
        // A missing file is an empty config.
        let s = read(&dir.path().join("missing.json")).unwrap();
        assert_eq!(s.registries.len(), 1);
        assert!(s.registries[0].mirrors.is_empty());
    }

    #[tokio::test]
    async fn probe_reports_a_dead_endpoint_and_a_bad_scheme() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = probe(&format!("http://127.0.0.1:{port}")).await;
        assert!(!r.ok);
        assert!(r.message.starts_with("Cannot connect"), "{}", r.message);
        let r = probe("ftp://127.0.0.1").await;
        assert!(!r.ok);
        assert!(r.message.contains("http://"), "{}", r.message);
    }
}
