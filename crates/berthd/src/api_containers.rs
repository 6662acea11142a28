//! `/containers/...`: lifecycle, list, inspect, logs, attach; file operations go to
//! [`crate::api_fs`], exec/stats/top to [`crate::api_exec`].

use crate::api::{ApiError, ApiResult, State};
use hyper::body::Incoming;
use hyper::{Method, Request};
use std::sync::Arc;

pub async fn route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let rest = rest.trim_start_matches('/');
    let method = req.method().clone();
    if let Some((id, action)) = rest.split_once('/') {
        match (&method, action) {
            (&Method::GET | &Method::PUT | &Method::HEAD, "archive")
            | (&Method::GET, "export")
            | (&Method::GET, "changes") => {
                return crate::api_fs::container_route(state, req, id, action).await
            }
            (&Method::GET, "stats") | (&Method::GET, "top") | (&Method::POST, "exec") => {
                return crate::api_exec::container_route(state, req, id, action).await
            }
            _ => {}
        }
    }
    Err(ApiError::not_found())
}
