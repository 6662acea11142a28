//! `POST /auth`: check registry credentials for `docker login`. The engine keeps nothing:
//! the client stores the credentials and sends them with each pull and push.

use crate::api::{json_body, ok_json, ApiError, ApiResult, State};
use berth_registry::{Client, Credentials};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use std::sync::Arc;
use tracing::info;

/// Docker's `AuthConfig` (email and tokens are accepted and ignored).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthBody {
    username: String,
    password: String,
    serveraddress: String,
}

/// The registry host for a login address: `https://index.docker.io/v1/` and friends (and an
/// empty address) are Docker Hub; otherwise the `host[:port]` of the address.
fn registry_host(address: &str) -> String {
    let rest = address.split_once("://").map_or(address, |(_, r)| r).trim();
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            berth_registry::config::DOCKER_HUB.to_string()
        }
        h => h.to_string(),
    }
}

pub(crate) async fn login(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let body: AuthBody = json_body(req, false).await?;
    if body.username.is_empty() {
        return Err(ApiError::bad(
            "username is required: give the registry's username and password",
        ));
    }
    let host = registry_host(&body.serveraddress);
    let mut cfg = state.images.registry_config();
    cfg.credentials.insert(
        host.clone(),
        Credentials {
            username: body.username.clone(),
            password: body.password,
        },
    );
    let client = Client::new(cfg)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match client.login(&host).await {
        Ok(()) => {
            info!(registry = %host, user = %body.username, "login succeeded");
            ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""}))
        }
        Err(e @ berth_registry::Error::Unauthorized(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("login to {host} failed: {e}"),
        )),
        Err(e) => Err(ApiError::new(
            crate::api::status_of(e.kind()),
            format!("login to {host}: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(registry_host(""), "docker.io");
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_host("http://localhost:5000/v2/"), "localhost:5000");
    }
}
