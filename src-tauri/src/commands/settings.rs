//! The Settings panel's registry mirrors: daemon.json in and out, SIGHUP, endpoint probes, and
//! the engine's record of which endpoint served each blob of recent pulls.

use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{
    ProbeResult, PullRecord, RegistrySettings, SaveReport, ServedBlob, SkippedEndpoint,
};
use tauri::State;

#[tauri::command]
pub fn registry_settings(app: State<'_, App>) -> Res<RegistrySettings> {
    crate::config::read(&app.engine.config.daemon_config)
}

#[tauri::command]
pub fn save_registry_settings(app: State<'_, App>, settings: RegistrySettings) -> Res<SaveReport> {
    let c = &app.engine.config;
    crate::config::save(&c.daemon_config, &c.pidfile(), &settings)
}

#[tauri::command]
pub async fn probe_endpoint(url: String) -> ProbeResult {
    crate::config::probe(&url).await
}

#[tauri::command]
pub async fn pull_records(app: State<'_, App>) -> Res<Vec<PullRecord>> {
    let body = crate::api::get(&app, "/berth/pulls").await?;
    let v: Vec<serde_json::Value> = serde_json::from_str(&body)
        .map_err(|e| error::system(format!("the engine's pull records did not parse: {e}")))?;
    let pairs = |x: &serde_json::Value| -> Vec<(String, String)> {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(v.iter()
        .map(|r| PullRecord {
            reference: r["reference"].as_str().unwrap_or_default().to_string(),
            digest: r["digest"].as_str().unwrap_or_default().to_string(),
            time_ms: r["time_ms"].as_i64().unwrap_or(0),
            blobs: pairs(&r["blobs"])
                .into_iter()
                .map(|(digest, endpoint)| ServedBlob { digest, endpoint })
                .collect(),
            skipped: pairs(&r["skipped"])
                .into_iter()
                .map(|(endpoint, reason)| SkippedEndpoint { endpoint, reason })
                .collect(),
        })
        .collect())
}
