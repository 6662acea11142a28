//! `/events` and `/system/df`.

use crate::api::{channel_body, ok_json, status_of, ApiError, ApiResult, Query, State};
use berth_engine::events::{parse_timestamp, Event, EventFilter};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc};

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn time_param(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match q.one(key).map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => parse_timestamp(v)
            .map(Some)
            .map_err(|e| ApiError::bad(format!("invalid {key}: {e}"))),
    }
}

fn line(ev: &Event) -> Bytes {
    let mut v = serde_json::to_vec(ev).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// `GET /events`: newline-delimited JSON. `since` replays the kept events from then on;
/// `until` ends the stream at that time (at once if it has passed); filters as Docker's.
pub async fn events(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let q = Query::of(&req);
    let filter = EventFilter::new(q.filters()?).map_err(ApiError::bad)?;
    let since = time_param(&q, "since")?;
    let until = time_param(&q, "until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::bad(format!(
                "until ({}) is before since ({}): give an until after since",
                q.str("until"),
                q.str("since")
            )));
        }
    }
    let (past, mut live) = state.events.subscribe(since);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let after_until = |ev: &Event| until.is_some_and(|u| ev.time_nano > u);
        for ev in &past {
            if after_until(ev) {
                return;
            }
            if filter.matches(ev) && tx.send(Ok(line(ev))).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let left = u.saturating_sub(now_nanos()).max(0);
            tokio::time::Instant::now() + Duration::from_nanos(u64::try_from(left).unwrap_or(0))
        });
        loop {
            let next = tokio::select! {
                r = live.recv() => r,
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => return,
                // The client went away.
                _ = tx.closed() => return,
            };
            match next {
                Ok(ev) => {
                    if after_until(&ev) {
                        return;
                    }
                    if filter.matches(&ev) && tx.send(Ok(line(&ev))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "an /events client fell behind; events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(channel_body(rx, "application/json"))
}

/// Per image (by config digest): the size of its layers that other images share, and the
/// size of all distinct layers.
fn shared_sizes(state: &State) -> Result<(BTreeMap<String, u64>, u64), ApiError> {
    let store_err = |e: berth_store::Error| ApiError::new(status_of(e.kind()), e.to_string());
    let db = state.images.store().db().map_err(store_err)?;
    let images = db.images().map_err(store_err)?;
    drop(db);
    let mut users: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for rec in &images {
        for l in &rec.layers {
            let e = users
                .entry(l.diff_id.to_string())
                .or_insert((l.size, BTreeSet::new()));
            e.1.insert(rec.config.to_string());
        }
    }
    let layers_size = users.values().map(|(s, _)| *s).sum();
    let mut shared = BTreeMap::new();
    for rec in &images {
        let mut seen = BTreeSet::new();
        let s: u64 = rec
            .layers
            .iter()
            .filter(|l| seen.insert(l.diff_id.to_string()))
            .filter_map(|l| users.get(&l.diff_id.to_string()))
            .filter(|(_, u)| u.len() > 1)
            .map(|(s, _)| *s)
            .sum();
        shared.insert(rec.config.to_string(), s);
    }
    Ok((shared, layers_size))
}

/// `GET /system/df`: images (with shared sizes and how many containers use them), containers
/// and volumes, build cache.
pub async fn df(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let q = Query::of(&req);
    let types = q.all("type");
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad(format!(
                "invalid type {t:?}: use container, image, volume or build-cache"
            )));
        }
    }
    let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let mut out = serde_json::Map::new();
    let containers = if want("image") || want("container") {
        state.containers.list(true, None, &BTreeMap::new()).await?
    } else {
        Vec::new()
    };
    if want("image") {
        let mut users: BTreeMap<String, i64> = BTreeMap::new();
        for c in &containers {
            if let Some(id) = c["ImageID"].as_str() {
                *users.entry(id.to_string()).or_default() += 1;
            }
        }
        let images = state
            .images
            .list(None, Vec::new(), Vec::new(), true)
            .await?;
        let st = Arc::clone(state);
        let (shared, layers_size) = tokio::task::spawn_blocking(move || shared_sizes(&st))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("image worker failed: {e}"),
                )
            })??;
        let images: Vec<Value> = images
            .into_iter()
            .map(|mut i| {
                i.shared_size = shared
                    .get(&i.id)
                    .and_then(|s| i64::try_from(*s).ok())
                    .unwrap_or(0);
                i.containers = users.get(&i.id).copied().unwrap_or(0);
                serde_json::to_value(&i).unwrap_or(Value::Null)
            })
            .collect();
        out.insert("LayersSize".into(), json!(layers_size));
        out.insert("Images".into(), json!(images));
    }
    if want("container") {
        out.insert("Containers".into(), json!(containers));
    }
    if want("volume") {
        out.insert("Volumes".into(), json!([]));
    }
    if want("build-cache") {
        out.insert("BuildCache".into(), json!([]));
    }
    ok_json(&Value::Object(out))
}
