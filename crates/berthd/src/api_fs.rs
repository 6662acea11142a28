//! `/containers/{id}/archive|export|changes` (docker cp, export, diff).

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
    Err(ApiError::not_implemented("container file operations"))
}
