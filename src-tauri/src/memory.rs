//! The app's idle footprint: glibc's allocator in the app process, and JavaScriptCore's
//! tiers in WebKit's web process.
//!
//! glibc gives every thread that allocates its own arena (up to 8 per core) and keeps what a
//! burst freed — the first list's JSON, the engine's response — inside them. Two arenas are
//! plenty for an app whose threads mostly wait, and once the first screen is up the freed
//! pages go back to the system.

/// JavaScriptCore runs the page's script through up to four tiers: the interpreter, the
/// baseline JIT, and the optimising DFG and FTL compilers. The page is a list that reacts to
/// clicks and events, not a long computation, and the optimising tiers cost the web process
/// ~4-5 MB PSS at idle (their compiler code and output; measured with 1,000 containers listed)
/// for work it does not have. The baseline JIT stays, but compiles a function or loop only
/// once it has run ~50,000 times (JavaScriptCore's default: 500): start-up code that runs a
/// few hundred times stays in the interpreter (−2.5 MB at idle in a bare WebKitGTK view of
/// the page), while a hot loop, like the terminal parsing a burst of output, is compiled
/// within its first milliseconds. Measured in a WebKitGTK view writing 4.5 MB of coloured
/// lines into xterm.js: 891 ms, against 904 ms at the default threshold, 1,237 ms at
/// 500,000, 3,458 ms without any JIT and 197 ms with every tier. Without any JIT, scrolling
/// 1,000 rows also took 41 ms a frame instead of 16 (before the list recycled its rows).
pub const WEB_PROCESS_ENV: [(&str, &str); 3] = [
    ("JSC_useDFGJIT", "0"),
    ("JSC_thresholdForJITAfterWarmUp", "50000"),
    ("JSC_thresholdForJITSoon", "10000"),
];

/// Sets [`WEB_PROCESS_ENV`] (inherited by WebKit's processes), leaving any the user set.
/// Call while the process has one thread.
pub fn tune_web_process() {
    for (k, v) in WEB_PROCESS_ENV {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

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
