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
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        speech_stub();
    }
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        // A build script reports by failing: cargo shows this message.
        panic!("tauri build step: {e:#}");
    }
}

/// Compiles `speech-stub/flite.c` into `$OUT_DIR/libberth-speech-stub.so`, which the app
/// carries inside its binary (src/speech.rs).
fn speech_stub() {
    const SRC: &str = "speech-stub/flite.c";
    println!("cargo:rerun-if-changed={SRC}");
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    let out = std::path::PathBuf::from(out_dir).join("libberth-speech-stub.so");
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args([
            "-shared",
            "-fPIC",
            "-O2",
            "-nostdlib",
            "-Wall",
            "-Werror",
            "-Wl,-soname,libberth-speech-stub.so",
            "-Wl,-z,now",
            "-Wl,-z,relro",
            "-Wl,-z,noexecstack",
            "-o",
        ])
        .arg(&out)
        .arg(SRC)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the C compiler ({:?}) for {SRC}: {e}",
                compiler.path()
            )
        });
    assert!(status.success(), "compiling {SRC} failed ({status})");
}
