//! How WebKitGTK should draw, decided once at start-up, before any GTK or WebKit code runs.
//!
//! Without a GPU (no DRM render node: VMs, remote desktops, Xvfb), every GL context WebKitGTK
//! and GTK create is Mesa's llvmpipe — the CPU rasterizing — and accelerated compositing then
//! costs memory and CPU for nothing (measured here: a bare WebKitGTK window ~265 MB PSS with
//! compositing, ~190 MB without). On such machines the app turns compositing, the DMA-BUF
//! renderer and GTK's own GL off. With a GPU it changes nothing. Variables the user set are
//! never overridden.
//!
//! Even then WebKit opens an EGL display in the app's own process, which draws nothing with
//! GL once compositing is off, and Mesa's driver brings LLVM with it: ~24 MB PSS of
//! relocated and touched library pages (measured with a bare WebKitGTK window: its UI
//! process 76 MB with EGL, 52 MB without, and still drawing). So, without a GPU, the app
//! makes its process's first EGL call itself with libglvnd's vendor list pointed at nothing
//! (on X11; a Wayland session is left alone). libglvnd reads that list once per process, so
//! this process never gets a driver; the variable is removed again at once, and the web
//! process, which does need EGL, finds Mesa as usual.

use std::path::Path;

/// The variables set when there is no GPU.
pub const NO_GPU_ENV: [(&str, &str); 3] = [
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    ("GDK_GL", "disable"),
];

/// Whether the machine has a GPU render node (`/dev/dri/renderD*`).
pub fn has_render_node(dri: &Path) -> bool {
    std::fs::read_dir(dri)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false)
}

/// The variables to set: none with a GPU; without one, those of [`NO_GPU_ENV`] the user has
/// not set (`is_set(name)`).
pub fn env_to_set(gpu: bool, is_set: &dyn Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    if gpu {
        return Vec::new();
    }
    NO_GPU_ENV
        .iter()
        .copied()
        .filter(|(k, _)| !is_set(k))
        .collect()
}

/// Applies the policy to this process's environment (inherited by WebKit's processes). Call
/// first thing in `main`, while the process has one thread.
pub fn apply() {
    let gpu = has_render_node(Path::new("/dev/dri"));
    for (k, v) in env_to_set(gpu, &|k| std::env::var_os(k).is_some()) {
        std::env::set_var(k, v);
    }
    let x11 = on_x11(
        std::env::var("GDK_BACKEND").ok().as_deref(),
        std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty()),
    );
    if !gpu {
        let egl = if std::env::var_os(EGL_VENDORS).is_none() && x11 {
            keep_egl_out_of_this_process()
        } else {
            false
        };
        tracing::debug!(
            egl_kept_out = egl,
            "no GPU render node: WebKit compositing and GL off"
        );
    }
}

/// Whether GTK will open an X11 display: asked for (`GDK_BACKEND=x11`), or no Wayland
/// display to prefer. Only there is the app process known to run without EGL (measured
/// under Xvfb); on Wayland it is left alone.
pub fn on_x11(gdk_backend: Option<&str>, wayland_display: bool) -> bool {
    match gdk_backend {
        Some(b) if !b.trim().is_empty() => b.trim().starts_with("x11"),
        _ => !wayland_display,
    }
}

/// libglvnd's list of EGL vendor files, read once per process at its first EGL call.
const EGL_VENDORS: &str = "__EGL_VENDOR_LIBRARY_FILENAMES";

/// Makes this process's first EGL call with no vendor, so it never loads a GL driver.
/// Returns whether it did (false when libEGL is not there: then nothing will load it).
/// Call while the process has one thread: it sets and removes an environment variable.
fn keep_egl_out_of_this_process() -> bool {
    // SAFETY: dlopen/dlsym with NUL-terminated names; the symbol is libEGL's
    // `EGLDisplay eglGetDisplay(EGLNativeDisplayType)`, both pointer-sized, called with
    // EGL_DEFAULT_DISPLAY (null). The library stays loaded (never dlclosed), as WebKit links
    // it anyway.
    unsafe {
        let lib = libc::dlopen(c"libEGL.so.1".as_ptr(), libc::RTLD_NOW);
        if lib.is_null() {
            return false;
        }
        let sym = libc::dlsym(lib, c"eglGetDisplay".as_ptr());
        if sym.is_null() {
            return false;
        }
        let get_display: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void =
            std::mem::transmute(sym);
        std::env::set_var(EGL_VENDORS, "/dev/null");
        let display = get_display(std::ptr::null_mut());
        std::env::remove_var(EGL_VENDORS);
        display.is_null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_without_a_gpu_and_never_over_the_user() {
        assert!(env_to_set(true, &|_| false).is_empty());
        assert_eq!(env_to_set(false, &|_| false), NO_GPU_ENV.to_vec());
        let kept = env_to_set(false, &|k| k == "GDK_GL");
        assert_eq!(
            kept,
            vec![
                ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
                ("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            ]
        );
    }

    #[test]
    fn egl_is_kept_out_only_on_x11() {
        assert!(on_x11(None, false));
        assert!(!on_x11(None, true));
        assert!(on_x11(Some("x11"), true));
        assert!(on_x11(Some("x11,wayland"), true));
        assert!(!on_x11(Some("wayland"), false));
        assert!(!on_x11(Some("wayland,x11"), false));
        assert!(on_x11(Some(""), false));
    }

    #[test]
    fn render_nodes_are_found() {
        let d = tempfile::tempdir().unwrap();
        assert!(!has_render_node(d.path()));
        std::fs::write(d.path().join("card0"), b"").unwrap();
        assert!(!has_render_node(d.path()));
        std::fs::write(d.path().join("renderD128"), b"").unwrap();
        assert!(has_render_node(d.path()));
        assert!(!has_render_node(&d.path().join("missing")));
    }
}
