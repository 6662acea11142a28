//! `login` and `logout`, and the Docker-compatible credentials file they keep:
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, with
//! `auths: {server: {auth: base64(user:password)}}`. Pull and push read it for
//! `X-Registry-Auth`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::raw::{request, Body};
use super::{Ctx, Failure, Res};

/// Docker Hub's key in `auths`.
pub const HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Subcommand)]
pub enum AuthCmd {
    /// Authenticate to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
}

#[derive(Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}

pub async fn dispatch(c: &Ctx, cmd: AuthCmd) -> Res<()> {
    match cmd {
        AuthCmd::Login(a) => login(c, a).await,
        AuthCmd::Logout(a) => logout(a),
    }
}

/// Where the credentials live.
pub fn config_path() -> Res<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".docker").join("config.json")),
        None => Err(Failure::Usage(
            "cannot find the credentials file: set HOME or DOCKER_CONFIG".into(),
        )),
    }
}

/// The `auths` key for a server as given: Docker Hub's names map to [`HUB_KEY`]; others lose
/// their scheme and path (`https://r.example.com/v2/` → `r.example.com`).
pub fn server_key(server: &str) -> String {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => HUB_KEY.to_string(),
        h => h.to_string(),
    }
}

/// Whether the first `/`-separated part of an image reference names a registry (a domain, a
/// port or `localhost`) rather than a Docker Hub namespace.
pub fn is_registry_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// The registry host of an image reference (`docker.io` when it names none).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if is_registry_host(first) => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

fn read_config() -> Res<(PathBuf, Map<String, Value>)> {
    let path = config_path()?;
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((path, Map::new())),
        Err(e) => {
            return Err(Failure::Usage(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok((path, Map::new()));
    }
    match serde_json::from_slice::<Value>(&data) {
        Ok(Value::Object(m)) => Ok((path, m)),
        _ => Err(Failure::Usage(format!(
            "{} is not a JSON object: fix or remove it",
            path.display()
        ))),
    }
}

/// Write the file atomically (temp file + rename) with mode 0600.
fn write_config(path: &std::path::Path, cfg: &Map<String, Value>) -> Res<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |what: &str, e: std::io::Error| {
        Failure::Usage(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
    let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    let mut body = serde_json::to_vec_pretty(&Value::Object(cfg.clone()))
        .map_err(|e| Failure::Usage(format!("cannot encode the credentials: {e}")))?;
    body.push(b'\n');
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(())
}

/// user:password stored for `key`.
fn stored(cfg: &Map<String, Value>, key: &str) -> Option<(String, String)> {
    let auths = cfg.get("auths")?.as_object()?;
    let entry = auths.get(key).or_else(|| {
        // Docker Hub may be stored under another of its names; others with a scheme.
        auths
            .iter()
            .find(|(k, _)| server_key(k) == key)
            .map(|(_, v)| v)
    })?;
    if let Some(a) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some((u.to_string(), p.to_string()));
    }
    let u = entry.get("username")?.as_str()?;
    let p = entry.get("password")?.as_str()?;
    Some((u.to_string(), p.to_string()))
}

/// Stored credentials for the registry of `image`, for pull and push. An unreadable file
/// means none (the engine then answers for the registry).
pub fn credentials_for_image(image: &str) -> Option<DockerCredentials> {
    let key = server_key(&registry_of(image));
    let (_, cfg) = read_config().ok()?;
    let (username, password) = stored(&cfg, &key)?;
    Some(DockerCredentials {
        username: Some(username),
        password: Some(password),
        serveraddress: Some(key),
        ..Default::default()
    })
}

/// The `X-Registry-Auth` value for the registry of `image` (base64url JSON).
pub fn registry_auth_header(image: &str) -> Option<String> {
    let c = credentials_for_image(image)?;
    let v = json!({
        "username": c.username.unwrap_or_default(),
        "password": c.password.unwrap_or_default(),
        "serveraddress": c.serveraddress.unwrap_or_default(),
    });
    Some(base64::engine::general_purpose::URL_SAFE.encode(v.to_string()))
}

fn prompt(what: &str) -> Res<String> {
    let mut out = std::io::stdout();
    let _ = write!(out, "{what}: ");
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("reading the {what}: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Read a password from the terminal without echo.
fn prompt_secret(what: &str) -> Res<String> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = stty("-echo");
    let r = prompt(what);
    if hidden {
        stty("echo");
        println!();
    }
    r
}

async fn login(c: &Ctx, a: LoginArgs) -> Res<()> {
    if a.password.is_some() && a.password_stdin {
        return Err(Failure::Usage(
            "--password and --password-stdin are mutually exclusive".into(),
        ));
    }
    if a.password_stdin && a.username.is_none() {
        return Err(Failure::Usage(
            "Must provide --username with --password-stdin".into(),
        ));
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let key = server_key(a.server.as_deref().unwrap_or(""));
    let interactive = std::io::stdin().is_terminal();
    let username = match a.username.filter(|u| !u.trim().is_empty()) {
        Some(u) => u.trim().to_string(),
        None if interactive => prompt("Username")?.trim().to_string(),
        None => {
            return Err(Failure::Usage(
                "Cannot perform an interactive login from a non TTY device: give -u USER and --password-stdin"
                    .into(),
            ))
        }
    };
    if username.is_empty() {
        return Err(Failure::Usage("Error: Non-null Username Required".into()));
    }
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Failure::Usage(format!("reading the password from stdin: {e}")))?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else {
        match a.password {
            Some(p) => p,
            None if interactive => prompt_secret("Password")?,
            None => return Err(Failure::Usage(
                "Cannot perform an interactive login from a non TTY device: give --password-stdin"
                    .into(),
            )),
        }
    };
    if password.is_empty() {
        return Err(Failure::Usage("Error: Password Required".into()));
    }
    let body = json!({"username": username, "password": password, "serveraddress": key})
        .to_string()
        .into_bytes();
    let body = Body::Bytes {
        content_type: "application/json",
        data: &body,
    };
    let answer: Value = request(c, "POST", "/auth", body)?.json()?;
    let status = answer
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or("Login Succeeded")
        .to_string();
    let (path, mut cfg) = read_config()?;
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Value::Object(m) = auths {
        let enc =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        m.insert(key, json!({ "auth": enc }));
    }
    write_config(&path, &cfg)?;
    eprintln!(
        "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
         Configure a credential helper to remove this warning. See\n\
         https://docs.docker.com/go/credential-store/\n",
        path.display()
    );
    println!("{status}");
    Ok(())
}

fn logout(a: LogoutArgs) -> Res<()> {
    let key = server_key(a.server.as_deref().unwrap_or(""));
    let (path, mut cfg) = read_config()?;
    let removed: Vec<String> = match cfg.get_mut("auths").and_then(Value::as_object_mut) {
        Some(m) => {
            let keys: Vec<String> = m
                .keys()
                .filter(|k| **k == key || server_key(k) == key)
                .cloned()
                .collect();
            for k in &keys {
                m.remove(k);
            }
            keys
        }
        None => Vec::new(),
    };
    if removed.is_empty() {
        println!("Not logged in to {key}");
        return Ok(());
    }
    println!("Removing login credentials for {key}");
    write_config(&path, &cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_registries() {
        assert_eq!(server_key(""), HUB_KEY);
        assert_eq!(server_key("docker.io"), HUB_KEY);
        assert_eq!(server_key("https://index.docker.io/v1/"), HUB_KEY);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_key("http://r.example.com/v2/"), "r.example.com");
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("me/app:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/a/b"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn stored_entries() {
        let enc = base64::engine::general_purpose::STANDARD.encode("u:p:q");
        let cfg: Map<String, Value> = serde_json::from_value(json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": enc},
                "http://r.example.com": {"username": "a", "password": "b"},
            },
            "psFormat": "x",
        }))
        .unwrap();
        assert_eq!(stored(&cfg, HUB_KEY), Some(("u".into(), "p:q".into())));
        assert_eq!(
            stored(&cfg, "r.example.com"),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(stored(&cfg, "other"), None);
    }
}
