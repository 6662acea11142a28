//! The engine's state and lifecycle, the event stream, and small app services.

use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{DiskUsage, EngineEvent, EngineStatus};
use tauri::ipc::Channel;
use tauri::State;

#[tauri::command]
pub fn engine_status(app: State<'_, App>) -> EngineStatus {
    app.engine.status()
}

#[tauri::command]
pub async fn engine_start(app: State<'_, App>) -> Res<EngineStatus> {
    app.engine.start().await
}

#[tauri::command]
pub async fn engine_stop(app: State<'_, App>) -> Res<EngineStatus> {
    app.engine.stop().await
}

/// Runs a tray menu action (`start`, `stop`, `open`, `stop:<container id>`) through the
/// same handler the tray menu calls: how the tests reach the tray where no tray host exists.
#[tauri::command]
pub async fn tray_action(handle: tauri::AppHandle, action: String) -> Res<()> {
    crate::tray::handle(&handle, &action).await
}

/// The engine's status now and on every change.
#[tauri::command]
pub fn watch_engine(app: State<'_, App>, channel: Channel<EngineStatus>) -> u32 {
    let mut rx = app.engine.subscribe_status();
    let id = app.streams.id();
    app.streams.spawn(id, async move {
        loop {
            let s = rx.borrow_and_update().clone();
            if channel.send(s).is_err() || rx.changed().await.is_err() {
                break;
            }
        }
    });
    id
}

/// The engine's `/events` (and "engine" connected/disconnected notices).
#[tauri::command]
pub fn watch_events(app: State<'_, App>, channel: Channel<EngineEvent>) -> u32 {
    let mut rx = app.engine.subscribe_events();
    // Subscribed: the start-up list the page was given can be checked now (a change found
    // reaches the page through `rx`).
    let handed = app
        .first_list
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(handed) = handed {
        tauri::async_runtime::spawn(crate::prefetch::revalidate(
            std::sync::Arc::clone(&app.engine),
            handed,
        ));
    }
    let id = app.streams.id();
    app.streams.spawn(id, async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if channel.send(e).is_err() {
                        break;
                    }
                }
                // Fell behind: tell the page to reload everything.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let e = EngineEvent {
                        kind: "engine".into(),
                        action: "resync".into(),
                        id: String::new(),
                        attributes: Default::default(),
                        time_ms: crate::engine::now_ms(),
                    };
                    if channel.send(e).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    id
}

#[tauri::command]
pub fn stream_close(app: State<'_, App>, id: u32) {
    app.streams.close(id);
}

/// The engine's `/system/df` (its Docker 1.45 shape, which bollard 0.21 no longer parses).
pub(crate) async fn df(app: &App) -> Res<serde_json::Value> {
    let body = crate::api::get(app, "/v1.45/system/df").await?;
    serde_json::from_str(&body)
        .map_err(|e| error::system(format!("the engine's disk usage did not parse: {e}")))
}

#[tauri::command]
pub async fn disk_usage(app: State<'_, App>) -> Res<DiskUsage> {
    let v = df(&app).await?;
    let sum = |key: &str, f: &dyn Fn(&serde_json::Value) -> i64| -> i64 {
        v[key].as_array().map_or(0, |a| a.iter().map(f).sum())
    };
    Ok(DiskUsage {
        images: v["LayersSize"].as_i64().unwrap_or(0),
        containers: sum("Containers", &|c| c["SizeRw"].as_i64().unwrap_or(0)),
        volumes: sum("Volumes", &|x| {
            x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0)
        }),
    })
}

/// Opens a published port in the browser. Only http(s) URLs; nothing else is handed to the
/// desktop's opener.
#[tauri::command]
pub fn open_url(url: String) -> Res<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(char::is_whitespace)
        && url.len() < 2048;
    if !ok {
        return Err(error::invalid(format!("not a web address: {url}")));
    }
    let mut cmd = std::process::Command::new("xdg-open");
    // the browser gets the user's library path, not the app's speech stand-in
    #[cfg(target_os = "linux")]
    crate::speech::restore_for_child(&mut cmd);
    cmd.arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| error::system(format!("Cannot open {url}: {e} (is xdg-open installed?)")))
}

/// The page's first container list is on screen: the start-up burst is over, so its freed
/// memory goes back to the system a little later ([`crate::memory`]). With
/// `BERTH_DESKTOP_REPORT=1` the app prints when that happened, for the start-up benchmark.
#[tauri::command]
pub fn report_first_list(app: State<'_, App>, page_ms: f64) {
    crate::memory::trim_after_startup();
    if std::env::var_os("BERTH_DESKTOP_REPORT").is_some() {
        println!(
            "berth-desktop: first-list {:.1} page {page_ms:.1}",
            app.started.elapsed().as_secs_f64() * 1000.0
        );
    }
}
