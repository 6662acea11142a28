//! `/events` and `/system/df`.

use crate::api::{ApiError, ApiResult, State};
use hyper::body::Incoming;
use hyper::Request;
use std::sync::Arc;

pub async fn events(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let _ = (state, req);
    Err(ApiError::not_implemented("/events"))
}

pub async fn df(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let _ = (state, req);
    Err(ApiError::not_implemented("/system/df"))
}
