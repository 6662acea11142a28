//! `/volumes/...`.

use crate::api::{ApiError, ApiResult, State};
use hyper::body::Incoming;
use hyper::Request;
use std::sync::Arc;

pub async fn route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let _ = (state, req, rest);
    Err(ApiError::not_implemented("volumes"))
}
