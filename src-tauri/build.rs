//! Tauri's build step, with the app's commands declared so that `allow-<command>`
//! permissions are generated for them: only the commands a capability grants can be called
//! from the page (capabilities/default.json grants the `app-commands` set, permissions/).

const COMMANDS: &[&str] = &[
    "engine_status",
    "engine_start",
    "engine_stop",
    "tray_action",
    "watch_engine",
    "watch_events",
    "stream_close",
    "disk_usage",
    "open_url",
    "report_first_list",
    "containers_list",
    "container_action",
    "container_remove",
    "container_inspect",
    "container_run",
    "container_logs",
    "container_stats",
    "exec_start",
    "exec_input",
    "exec_resize",
    "images_list",
    "image_pull",
    "image_push",
    "image_tag",
    "image_remove",
    "images_prune",
    "image_history",
    "image_inspect",
    "registry_login",
    "image_build",
    "dir_list",
    "compose_projects",
    "compose_open",
    "compose_ps",
    "compose_up",
    "compose_down",
    "compose_restart",
    "compose_stop",
    "compose_logs",
    "compose_env_save",
    "kube_contexts",
    "kube_deploy",
    "kube_status",
    "kube_delete",
    "volumes_list",
    "volume_create",
    "volume_remove",
    "volumes_prune",
    "networks_list",
    "network_create",
    "network_remove",
    "network_connect",
    "network_disconnect",
    "networks_prune",
    "registry_settings",
    "save_registry_settings",
    "probe_endpoint",
    "pull_records",
    "vm_settings",
    "engine_mode_set",
    "vm_apply",
    "vm_logs",
    "vm_delete",
];

fn main() {
    println!("cargo:rerun-if-changed=permissions");
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        // A build script reports by failing: cargo shows this message.
        panic!("tauri build step: {e:#}");
    }
}
