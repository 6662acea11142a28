//! The tray icon: the engine's state as the icon (running / starting / stopped), and a menu —
//! status line, Start engine, Stop engine, Open dashboard, the running containers (click to
//! stop one), Quit. The menu's actions run [`handle`], which the `tray_action` command also
//! calls, so the tests exercise exactly what a click does.

use crate::error::{self, Res};
use crate::App;
use berth_desktop_dto::{EngineState, EngineStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};

const TRAY_ID: &str = "berth";
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether the session bus has a StatusNotifier watcher (what shows AppIndicator icons).
fn tray_host_present() -> bool {
    std::process::Command::new("dbus-send")
        .args([
            "--session",
            "--dest=org.freedesktop.DBus",
            "--type=method_call",
            "--print-reply",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.kde.StatusNotifierWatcher",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("boolean true")
        })
}

/// Whether a tray icon exists (then closing the window only hides it).
pub fn active(_app: &AppHandle) -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn icon(state: EngineState) -> Res<Image<'static>> {
    let bytes: &'static [u8] = match state {
        EngineState::Running => include_bytes!("../../icons/tray/running@2x.png"),
        EngineState::Starting | EngineState::Stopping => {
            include_bytes!("../../icons/tray/starting@2x.png")
        }
        EngineState::Stopped => include_bytes!("../../icons/tray/stopped@2x.png"),
    };
    Image::from_bytes(bytes).map_err(|e| error::system(format!("tray icon: {e}")))
}

fn status_line(s: &EngineStatus) -> String {
    let vm = s.vm.is_some();
    match s.state {
        EngineState::Running => format!(
            "Engine running{} · {} container{} up",
            if vm { " · VM" } else { "" },
            s.containers_running,
            if s.containers_running == 1 { "" } else { "s" }
        ),
        // The VM's boot progress ("booting, 6 s") is the start's message.
        EngineState::Starting if vm => match &s.message {
            Some(m) => format!("VM starting… ({m})"),
            None => "VM starting…".into(),
        },
        EngineState::Starting => "Engine starting…".into(),
        EngineState::Stopping if vm => "VM stopping…".into(),
        EngineState::Stopping => "Engine stopping…".into(),
        EngineState::Stopped if vm => "Engine stopped · VM off".into(),
        EngineState::Stopped => "Engine stopped".into(),
    }
}

fn menu(
    app: &AppHandle,
    s: &EngineStatus,
    running: &[(String, String)],
) -> tauri::Result<Menu<tauri::Wry>> {
    let m = Menu::new(app)?;
    m.append(&MenuItem::with_id(
        app,
        "status",
        status_line(s),
        false,
        None::<&str>,
    )?)?;
    m.append(&PredefinedMenuItem::separator(app)?)?;
    let stopped = s.state == EngineState::Stopped;
    let up = s.state == EngineState::Running;
    m.append(&MenuItem::with_id(
        app,
        "start",
        if s.vm.is_some() {
            "Start engine (VM)"
        } else {
            "Start engine"
        },
        stopped && s.can_start,
        None::<&str>,
    )?)?;
    m.append(&MenuItem::with_id(
        app,
        "stop",
        "Stop engine",
        up,
        None::<&str>,
    )?)?;
    m.append(&MenuItem::with_id(
        app,
        "open",
        "Open dashboard",
        true,
        None::<&str>,
    )?)?;
    if up {
        let sub = Submenu::with_id(app, "containers", "Running containers", !running.is_empty())?;
        for (id, name) in running {
            sub.append(&MenuItem::with_id(
                app,
                format!("stop:{id}"),
                format!("Stop {name}"),
                true,
                None::<&str>,
            )?)?;
        }
        m.append(&sub)?;
    }
    m.append(&PredefinedMenuItem::separator(app)?)?;
    m.append(&MenuItem::with_id(
        app,
        "quit",
        "Quit Berth",
        true,
        None::<&str>,
    )?)?;
    Ok(m)
}

async fn running(app: &AppHandle) -> Vec<(String, String)> {
    let Some(st) = app.try_state::<App>() else {
        return Vec::new();
    };
    let Ok(docker) = st.engine.docker() else {
        return Vec::new();
    };
    docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            (c.id.unwrap_or_default(), name)
        })
        .collect()
}

/// Creates the tray icon and keeps it in step with the engine.
pub fn build(app: &AppHandle) -> Res<()> {
    let engine = app.state::<App>().engine.clone();
    let s = engine.status();
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(s.state)?)
        .tooltip("Berth")
        .menu(&menu(app, &s, &[]).map_err(|e| error::system(e.to_string()))?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let app = app.clone();
            let action = event.id().as_ref().to_string();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = handle(&app, &action).await {
                    tracing::warn!(action, "tray: {}", e.message);
                }
            });
        })
        .build(app)
        .map_err(|e| error::system(format!("cannot create the tray icon: {e}")))?;
    // Closing the window may only hide it when the desktop shows tray icons: without a
    // StatusNotifier host (GNOME without the AppIndicator extension, Xvfb) a hidden window
    // could never be brought back, so there closing quits.
    let host = tray_host_present();
    if !host {
        tracing::info!("no StatusNotifier host on the session bus: closing the window quits");
    }
    ACTIVE.store(host, Ordering::Relaxed);
    let app = app.clone();
    let mut rx = engine.subscribe_status();
    tauri::async_runtime::spawn(async move {
        loop {
            let s = rx.borrow_and_update().clone();
            let list = if s.state == EngineState::Running {
                running(&app).await
            } else {
                Vec::new()
            };
            if let Ok(i) = icon(s.state) {
                let _ = tray.set_icon(Some(i));
            }
            let _ = tray.set_tooltip(Some(format!("Berth — {}", status_line(&s))));
            if let Ok(m) = menu(&app, &s, &list) {
                let _ = tray.set_menu(Some(m));
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// What a tray menu item does.
pub async fn handle(app: &AppHandle, action: &str) -> Res<()> {
    let st = app.state::<App>();
    match action {
        "start" => st.engine.start().await.map(|_| ()),
        "stop" => st.engine.stop().await.map(|_| ()),
        "open" => {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.show();
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
            Ok(())
        }
        "quit" => {
            app.exit(0);
            Ok(())
        }
        a if a.starts_with("stop:") => {
            let id = &a["stop:".len()..];
            st.engine
                .docker()?
                .stop_container(id, None::<bollard::query_parameters::StopContainerOptions>)
                .await
                .map_err(|e| error::engine(st.engine.host(), e))
        }
        other => Err(error::invalid(format!("unknown tray action \"{other}\""))),
    }
}
