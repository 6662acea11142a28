//! The app process's idle footprint under glibc's allocator.
//!
//! glibc gives every thread that allocates its own arena (up to 8 per core) and keeps what a
//! burst freed — the first list's JSON, the engine's response — inside them. Two arenas are
//! plenty for an app whose threads mostly wait, and once the first screen is up the freed
//! pages go back to the system.

/// Caps glibc at two arenas. Call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called while the process has
    // one thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the free pages of every arena to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes the arenas' locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims once the start-up burst (the first list, the other pages' lists) has settled.
pub fn trim_after_startup() {
    tauri::async_runtime::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        trim();
    });
}
