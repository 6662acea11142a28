//! Berth Desktop: the Tauri app over berthd. Thin: each command in [`commands`] turns its
//! arguments into one bollard call and returns a DTO from `berth-desktop-dto`; streams go
//! over `tauri::ipc::Channel`; the tray ([`tray`]) and the pages share one [`engine::Engine`].

pub mod api;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod memory;
pub mod prefetch;
pub mod render;
pub mod speech;
pub mod streams;
pub mod tray;

use std::sync::Arc;
use tauri::Manager;

/// What every command reaches through `tauri::State`.
pub struct App {
    pub engine: engine::EngineRef,
    pub streams: Arc<streams::Streams>,
    /// For the benchmark's first-render report.
    pub started: std::time::Instant,
    /// The JSON of the start-up list the page was given (see [`prefetch`]), until the page's
    /// event stream opens and it is checked against the engine's list of then.
    pub first_list: std::sync::Mutex<Option<String>>,
}

pub fn run() {
    let started = std::time::Instant::now();
    // Before GTK, WebKit or any thread starts. First: this may execute the app again.
    #[cfg(target_os = "linux")]
    speech::apply();
    #[cfg(target_os = "linux")]
    let started = speech::started(started);
    render::apply();
    memory::limit_arenas();
    memory::tune_web_process();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_DESKTOP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    #[cfg(target_os = "linux")]
    speech::report();
    let config = engine::EngineConfig::from_env();
    let engine = match engine::Engine::new(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("berth-desktop: {}", e.message);
            std::process::exit(1);
        }
    };
    // The first screen's list, fetched while GTK and WebKit start (see prefetch).
    let first_list = prefetch::start(&engine);
    let app = App {
        engine: Arc::clone(&engine),
        streams: Arc::default(),
        started,
        first_list: std::sync::Mutex::new(None),
    };
    let result = tauri::Builder::default()
        .manage(app)
        .setup(move |app| {
            tauri::async_runtime::block_on(engine.probe());
            // The main window (tauri.conf.json, `create: false`) is made here so that it can
            // carry the prefetched list.
            let rows = prefetch::take(first_list, std::time::Duration::from_millis(300));
            if let Some(cfg) = app.config().app.windows.iter().find(|w| !w.create).cloned() {
                let mut window = tauri::WebviewWindowBuilder::from_config(app.handle(), &cfg)?;
                if let Some(rows) = rows {
                    window = window.initialization_script(prefetch::script(&rows));
                    if let Some(state) = app.try_state::<App>() {
                        *state.first_list.lock().unwrap_or_else(|p| p.into_inner()) = Some(rows);
                    }
                }
                window.build()?;
            }
            tauri::async_runtime::spawn(Arc::clone(&engine).run());
            match tray::build(app.handle()) {
                Ok(()) => {}
                Err(e) => tracing::warn!("no tray icon: {e}"),
            }
            Ok(())
        })
        .on_page_load(|webview, payload| {
            // A (re)loaded page starts with no subscriptions: the old page's streams would
            // otherwise run for the life of the app, since sending on a channel whose page is
            // gone does not fail while the webview lives.
            if payload.event() == tauri::webview::PageLoadEvent::Started {
                if let Some(app) = webview.try_state::<App>() {
                    let n = app.streams.count();
                    if n > 0 {
                        tracing::info!(streams = n, "page (re)loading: closing its streams");
                    }
                    app.streams.close_all();
                }
            }
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the app (and its tray) running; Quit is in the tray.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if tray::active(window.app_handle()) {
                    let _ = window.hide();
                    api.prevent_close();
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::system::engine_status,
            commands::system::engine_start,
            commands::system::engine_stop,
            commands::system::tray_action,
            commands::system::watch_engine,
            commands::system::watch_events,
            commands::system::stream_close,
            commands::system::disk_usage,
            commands::system::open_url,
            commands::system::report_first_list,
            commands::containers::containers_list,
            commands::containers::container_action,
            commands::containers::container_remove,
            commands::containers::container_inspect,
            commands::containers::container_run,
            commands::containers::container_logs,
            commands::containers::container_stats,
            commands::exec::exec_start,
            commands::exec::exec_input,
            commands::exec::exec_resize,
            commands::images::images_list,
            commands::images::image_pull,
            commands::images::image_push,
            commands::images::image_tag,
            commands::images::image_remove,
            commands::images::images_prune,
            commands::images::image_history,
            commands::images::image_inspect,
            commands::images::registry_login,
            commands::build::image_build,
            commands::build::dir_list,
            commands::compose::compose_projects,
            commands::compose::compose_open,
            commands::compose::compose_ps,
            commands::compose::compose_up,
            commands::compose::compose_down,
            commands::compose::compose_restart,
            commands::compose::compose_stop,
            commands::compose::compose_logs,
            commands::compose::compose_env_save,
            commands::kube::kube_contexts,
            commands::kube::kube_deploy,
            commands::kube::kube_status,
            commands::kube::kube_delete,
            commands::resources::volumes_list,
            commands::resources::volume_create,
            commands::resources::volume_remove,
            commands::resources::volumes_prune,
            commands::resources::networks_list,
            commands::resources::network_create,
            commands::resources::network_remove,
            commands::resources::network_connect,
            commands::resources::network_disconnect,
            commands::resources::networks_prune,
            commands::settings::registry_settings,
            commands::settings::save_registry_settings,
            commands::settings::probe_endpoint,
            commands::settings::pull_records,
            commands::vm::vm_settings,
            commands::vm::engine_mode_set,
            commands::vm::vm_apply,
            commands::vm::vm_logs,
            commands::vm::vm_delete,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("berth-desktop: {e}");
        std::process::exit(1);
    }
}
