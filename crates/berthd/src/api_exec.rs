//! `/containers/{id}/exec|stats|top` and `/exec/{id}/start|resize|json`.

use crate::api::{ApiError, ApiResult, State};
use hyper::body::Incoming;
use hyper::Request;
use std::sync::Arc;

pub async fn container_route(
    state: &Arc<State>,
    req: Request<Incoming>,
    id: &str,
    action: &str,
) -> ApiResult {
    let _ = (state, req, id, action);
    Err(ApiError::not_implemented("exec, stats and top"))
}

pub async fn exec_route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let _ = (state, req, rest);
    Err(ApiError::not_implemented("exec"))
}
