//! The first container list, fetched while GTK and WebKit start, and handed to the page in an
//! initialization script: the first screen renders its rows in its first frame, without an
//! IPC round trip (on WebKitGTK a CORS preflight plus the call, each waiting on the page's
//! main thread while it lays out its first frame). Once the page's event stream is open the
//! list is read again here ([`revalidate`]); if it changed meanwhile the page is sent a
//! `container` `resync` event and reloads it, so nothing between the two is missed.

use crate::engine::EngineRef;
use std::time::Duration;
use tauri::async_runtime::JoinHandle;

/// How long the list may take before the page is left to fetch it itself.
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// The global the page reads (and deletes) on its first load.
pub const GLOBAL: &str = "__BERTH_FIRST_LIST__";

/// Starts listing the containers; the task yields the rows as JSON, or None when the engine
/// does not answer (the page then shows its own error or empty state as before).
pub fn start(engine: &EngineRef) -> JoinHandle<Option<String>> {
    let engine = EngineRef::clone(engine);
    tauri::async_runtime::spawn(async move {
        let docker = engine.docker().ok()?;
        let rows = tokio::time::timeout(
            LIST_TIMEOUT,
            crate::commands::containers::list_rows(&docker),
        )
        .await
        .ok()?
        .ok()?;
        serde_json::to_string(&rows).ok()
    })
}

/// Waits at most `budget` for the list.
pub fn take(task: JoinHandle<Option<String>>, budget: Duration) -> Option<String> {
    tauri::async_runtime::block_on(async move {
        tokio::time::timeout(budget, task)
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
    })
}

/// The initialization script carrying `rows_json` (a JSON array). The JSON goes in as a
/// string for `JSON.parse`: a 1,000-row object literal would be compiled to bytecode (and
/// kept in JavaScriptCore's code cache) where a string constant is parsed once.
pub fn script(rows_json: &str) -> String {
    let literal = serde_json::Value::String(rows_json.to_string()).to_string();
    format!(
        "Object.defineProperty(window, \"{GLOBAL}\", {{ value: JSON.parse({literal}), configurable: true, writable: true }});"
    )
}

/// Lists the containers again and sends a `container` `resync` event when the list is not
/// the one the page was given (`handed`, its JSON). Call once the page's event stream is
/// open. A failed list says nothing: the engine's own events cover a stopped engine.
pub async fn revalidate(engine: EngineRef, handed: String) {
    let Ok(docker) = engine.docker() else { return };
    let Ok(Ok(rows)) = tokio::time::timeout(
        LIST_TIMEOUT,
        crate::commands::containers::list_rows(&docker),
    )
    .await
    else {
        return;
    };
    if changed(&handed, &rows) {
        tracing::debug!("containers changed since the start-up list: page told to reload");
        engine.resync("container");
    }
}

/// Whether `rows` differ from the list handed to the page as `handed` (its JSON).
pub fn changed(handed: &str, rows: &[berth_desktop_dto::ContainerRow]) -> bool {
    serde_json::to_string(rows).map_or(true, |now| now != handed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_parses_the_rows_from_a_string() {
        let s = script(r#"[{"id":"a","name":"we\"b </script>"}]"#);
        assert_eq!(
            s,
            r#"Object.defineProperty(window, "__BERTH_FIRST_LIST__", { value: JSON.parse("[{\"id\":\"a\",\"name\":\"we\\\"b </script>\"}]"), configurable: true, writable: true });"#
        );
    }

    #[test]
    fn a_list_is_changed_unless_identical() {
        let row = |name: &str, status: &str| berth_desktop_dto::ContainerRow {
            id: format!("{name}-id"),
            name: name.into(),
            image: "busybox".into(),
            image_id: "sha256:aa".into(),
            command: "true".into(),
            created: 1,
            state: "exited".into(),
            status: status.into(),
            ports: Vec::new(),
            project: None,
            service: None,
            labels: Default::default(),
            networks: Vec::new(),
        };
        let handed = serde_json::to_string(&vec![row("a", "Exited (0) 1 second ago")]).unwrap();
        assert!(!changed(&handed, &[row("a", "Exited (0) 1 second ago")]));
        assert!(changed(&handed, &[row("a", "Exited (0) 2 seconds ago")]));
        assert!(changed(&handed, &[]));
        assert!(changed(
            &handed,
            &[row("a", "Exited (0) 1 second ago"), row("b", "Created")]
        ));
    }
}
