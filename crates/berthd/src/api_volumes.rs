//! `/volumes/...`: list, create, inspect, remove and prune, over
//! [`berth_engine::volumes::Volumes`]. Whether a volume is in use comes from the container
//! service.

use crate::api::{
    check_filters, json_body, json_response, ok_json, ApiError, ApiResult, Query, State,
};
use berth_engine::volumes::{ListFilter, PruneFilter, Volumes};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize as _;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The body of `POST /volumes/create`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    #[serde(deserialize_with = "null_map")]
    driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_map")]
    labels: BTreeMap<String, String>,
}

fn null_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// Run volume-store work (SQLite, directory walks, mounts) on the blocking pool.
async fn blocking<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&Volumes) -> berth_engine::images::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let v = Arc::clone(&state.volumes);
    tokio::task::spawn_blocking(move || f(&v))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("volume worker: {e}"),
            )
        })?
        .map_err(ApiError::from)
}

/// Names of volumes some container uses.
async fn in_use(state: &Arc<State>, names: &[String]) -> HashSet<String> {
    let mut used = HashSet::new();
    for n in names {
        if !state.containers.volume_users(n).await.is_empty() {
            used.insert(n.clone());
        }
    }
    used
}

fn bool_filter(f: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<bool>, ApiError> {
    match f.get(key).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([v]) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::bad(format!(
                "invalid filter '{key}={v}': use true or false"
            ))),
        },
        Some(_) => Err(ApiError::bad(format!(
            "invalid filter '{key}': give one value"
        ))),
    }
}

pub async fn route(state: &Arc<State>, req: Request<Incoming>, rest: &str) -> ApiResult {
    let q = Query::of(&req);
    let method = req.method().clone();
    match (&method, rest) {
        (&Method::GET, "" | "/") => list(state, &q).await,
        (&Method::POST, "/create") => create(state, req).await,
        (&Method::POST, "/prune") => prune(state, &q).await,
        (_, rest) => {
            let name = rest.trim_start_matches('/');
            if name.is_empty() || name.contains('/') {
                return Err(ApiError::not_found());
            }
            let name = name.to_string();
            match method {
                Method::GET => {
                    let n = name.clone();
                    ok_json(&blocking(state, move |v| v.get(&n)).await?)
                }
                Method::DELETE => remove(state, &name, q.bool("force")).await,
                _ => Err(ApiError::not_found()),
            }
        }
    }
}

async fn list(state: &Arc<State>, q: &Query) -> ApiResult {
    let f = q.filters()?;
    check_filters(&f, &["dangling", "driver", "label", "name"])?;
    let filter = ListFilter {
        dangling: bool_filter(&f, "dangling")?,
        drivers: f.get("driver").cloned().unwrap_or_default(),
        labels: f.get("label").cloned().unwrap_or_default(),
        names: f.get("name").cloned().unwrap_or_default(),
    };
    let used = if filter.dangling.is_some() {
        let names = blocking(state, |v| v.names()).await?;
        in_use(state, &names).await
    } else {
        HashSet::new()
    };
    let vols = blocking(state, move |v| v.list(&filter, &used)).await?;
    ok_json(&json!({ "Volumes": vols, "Warnings": [] }))
}

async fn create(state: &Arc<State>, req: Request<Incoming>) -> ApiResult {
    let body: CreateBody = json_body(req, true).await?;
    let CreateBody {
        name,
        driver,
        driver_opts,
        labels,
    } = body;
    let (vol, created) = blocking(state, move |v| {
        v.create(Some(&name), &driver, driver_opts, labels)
    })
    .await?;
    if created {
        state.events.emit(
            "volume",
            "create",
            &vol.name,
            BTreeMap::from([("driver".to_string(), vol.driver.clone())]),
        );
    }
    Ok(json_response(StatusCode::CREATED, &vol))
}

async fn remove(state: &Arc<State>, name: &str, force: bool) -> ApiResult {
    let n = name.to_string();
    let vol = match blocking(state, move |v| v.get(&n)).await {
        Ok(v) => v,
        // `force` ignores a missing volume, as Docker does.
        Err(_) if force => return Ok(crate::api::empty(StatusCode::NO_CONTENT)),
        Err(e) => return Err(e),
    };
    let users = state.containers.volume_users(name).await;
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("remove {name}: volume is in use - [{}]", users.join(", ")),
        ));
    }
    let n = name.to_string();
    blocking(state, move |v| v.remove(&n)).await?;
    state.events.emit(
        "volume",
        "destroy",
        name,
        BTreeMap::from([("driver".to_string(), vol.driver)]),
    );
    Ok(crate::api::empty(StatusCode::NO_CONTENT))
}

async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let f = q.filters()?;
    check_filters(&f, &["label", "label!", "all"])?;
    let filter = PruneFilter {
        all: bool_filter(&f, "all")?.unwrap_or(false),
        labels: f.get("label").cloned().unwrap_or_default(),
        not_labels: f.get("label!").cloned().unwrap_or_default(),
    };
    let names = blocking(state, |v| v.names()).await?;
    let used = in_use(state, &names).await;
    let report = blocking(state, move |v| v.prune(&filter, &used)).await?;
    for n in &report.volumes_deleted {
        state.events.emit(
            "volume",
            "destroy",
            n,
            BTreeMap::from([("driver".to_string(), "local".to_string())]),
        );
    }
    ok_json(&report)
}
