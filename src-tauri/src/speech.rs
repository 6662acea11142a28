//! WebKitGTK links flite, a speech synthesiser, for the Web Speech API: thirteen libraries
//! whose voices are large tables of pointers, relocated (so copied) in every process that
//! loads them: ~5.5 MB PSS in each of the app's three processes (the app, WebKit's web and
//! network processes) before a word is spoken. Berth's page never speaks.
//!
//! So the app puts a stand-in for flite first on its processes' library path
//! (`speech-stub/flite.c`, built into the binary): the functions WebKit imports, with four
//! voices that say nothing. `speechSynthesis` still lists voices and an utterance ends at once,
//! silently. `BERTH_DESKTOP_SPEECH=1` keeps the real flite.
//!
//! Measured (release app, idle, 1,000 / 3 containers): 184.2-185.5 / 178.3-179.4 MB with the
//! stand-in in all three processes, against 201.0-201.1 / 195.1-195.4 MB without it in the
//! same sessions.
//!
//! It is used only when it is safe to:
//! - every flite function libwebkit2gtk imports is one the stand-in defines (WebKit binds
//!   every symbol at load: one missing and its processes would not start). Checked by reading
//!   WebKit's dynamic symbols once per build of WebKit (~100 ms; a marker file records it);
//! - the stand-in loads here, checked at every start (a `noexec` directory would stop the
//!   processes too);
//! - its directory belongs to this user and no one else may write to it (a library found on
//!   the path runs as the app).
//!
//! The app process's loader read the library path before `main`, so the app executes itself
//! again, once, with the path set (same pid and arguments). That costs a second dynamic
//! link: ~90 ms of cold start (`perf trace`: ~80 ms in the loader before `main`; 8
//! interleaved pairs of starts to the first list, 478 against 392 ms median). Keeping the
//! real flite in the app process instead (the stand-in in WebKit's processes only, no
//! re-execution) measured 196.1 / 189.1 MB, and once 207.5 MB with 1,000 containers (a web
//! process 12 MB heavier than usual): too close to the 200 MB target. WebKit's processes
//! inherit the path; what the app starts for the user (the browser, the engine) gets the
//! environment as it was ([`restore_for_child`]).

#[cfg(target_os = "linux")]
pub use imp::*;

/// What the stand-in defines: the flite functions WebKitGTK 2.4x calls.
pub const STUB_SYMBOLS: [&str; 12] = [
    "cmulex_init",
    "cst_wave_resample",
    "delete_voice",
    "delete_wave",
    "flite_add_lang",
    "flite_init",
    "flite_text_to_wave",
    "register_cmu_us_awb",
    "register_cmu_us_kal",
    "register_cmu_us_rms",
    "register_cmu_us_slt",
    "usenglish_init",
];

/// The sonames libwebkit2gtk asks for; each is a link to the one stand-in file.
pub const FLITE_SONAMES: [&str; 13] = [
    "libflite.so.1",
    "libflite_usenglish.so.1",
    "libflite_cmu_grapheme_lang.so.1",
    "libflite_cmu_grapheme_lex.so.1",
    "libflite_cmu_indic_lang.so.1",
    "libflite_cmu_indic_lex.so.1",
    "libflite_cmulex.so.1",
    "libflite_cmu_time_awb.so.1",
    "libflite_cmu_us_awb.so.1",
    "libflite_cmu_us_kal16.so.1",
    "libflite_cmu_us_kal.so.1",
    "libflite_cmu_us_rms.so.1",
    "libflite_cmu_us_slt.so.1",
];

/// Set to `1` (or anything but `0`) to keep the real flite and its voices.
pub const ENV_KEEP: &str = "BERTH_DESKTOP_SPEECH";
/// Set by the app on itself (and so WebKit's processes) along with the path: `unset`, or
/// `set:` and the library path the user had. Its presence also stops a second re-execution.
pub const ENV_ACTIVE: &str = "BERTH_DESKTOP_SPEECH_STUB";
const LD_PATH: &str = "LD_LIBRARY_PATH";
/// GStreamer's registry for the app's processes while the stand-in is on the path: a plugin
/// that links flite fails to load there, and must not be marked broken in the user's own.
const GST_REGISTRY: &str = "GST_REGISTRY_1_0";
/// Set when the app chose [`GST_REGISTRY`] (the user had none).
const ENV_GST_SET: &str = "BERTH_DESKTOP_SPEECH_GST";
/// The first run's start (CLOCK_MONOTONIC ns), for the start-up report after re-executing.
const ENV_STARTED: &str = "BERTH_DESKTOP_STARTED_NS";

/// The names and values a child the app starts for the user gets back: the library path
/// (and GStreamer registry, if the app chose it) as they were before the app set them, from
/// the markers' values. `None` removes the name.
pub fn env_for_child(active: Option<&str>, gst_set: bool) -> Vec<(&'static str, Option<String>)> {
    let Some(active) = active else {
        return Vec::new();
    };
    let ld = active.strip_prefix("set:").map(str::to_string);
    let mut out = vec![(LD_PATH, ld), (ENV_ACTIVE, None)];
    if gst_set {
        out.extend([(GST_REGISTRY, None), (ENV_GST_SET, None)]);
    }
    out
}

fn child_env() -> Vec<(&'static str, Option<String>)> {
    let active = std::env::var(ENV_ACTIVE).ok();
    env_for_child(active.as_deref(), std::env::var_os(ENV_GST_SET).is_some())
}

/// Puts a child's environment back to what the user had (see [`env_for_child`]).
pub fn restore_for_child(cmd: &mut std::process::Command) {
    for (k, v) in child_env() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
}

/// [`restore_for_child`] for tokio's `Command`.
pub fn restore_for_tokio_child(cmd: &mut tokio::process::Command) {
    for (k, v) in child_env() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
}

/// The library path with `dir` first, ahead of what the user had.
pub fn prepend_path(dir: &str, before: Option<&str>) -> String {
    match before {
        Some(b) if !b.is_empty() => format!("{dir}:{b}"),
        _ => dir.to_string(),
    }
}

/// Whether the user asked for the real voices.
pub fn keep_requested(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.trim().is_empty() && v.trim() != "0")
}

/// The dynamic symbols of an ELF64 little-endian shared object: (name, defined here).
/// `read_at` reads exactly `buf.len()` bytes at an offset. Sizes are bounded, so a corrupt
/// file gives an error, not a huge allocation.
pub fn dynamic_symbols(
    read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<Vec<(String, bool)>> {
    use std::io::{Error, ErrorKind};
    const MAX_TABLE: u64 = 64 << 20;
    let bad = |what: &str| {
        Error::new(
            ErrorKind::InvalidData,
            format!("not a usable ELF64 object: {what}"),
        )
    };
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at =
        |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u64_at =
        |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());

    let mut eh = [0u8; 64];
    read_at(0, &mut eh)?;
    if eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return Err(bad("not 64-bit little-endian ELF"));
    }
    let shoff = u64_at(&eh, 0x28);
    let shentsize = u64::from(u16_at(&eh, 0x3a));
    let shnum = u64::from(u16_at(&eh, 0x3c));
    if shentsize < 64 || shnum == 0 || shnum > 4096 {
        return Err(bad("section header table"));
    }
    let mut sh = vec![0u8; (shentsize * shnum) as usize];
    read_at(shoff, &mut sh)?;
    let section = |i: u64| {
        let o = (i * shentsize) as usize;
        // (type, offset, size, link, entsize)
        (
            u32_at(&sh, o + 4),
            u64_at(&sh, o + 24),
            u64_at(&sh, o + 32),
            u32_at(&sh, o + 40),
            u64_at(&sh, o + 56),
        )
    };
    const SHT_DYNSYM: u32 = 11;
    let Some((_, sym_off, sym_size, link, entsize)) =
        (0..shnum).map(section).find(|s| s.0 == SHT_DYNSYM)
    else {
        return Err(bad("no .dynsym"));
    };
    if u64::from(link) >= shnum || entsize < 24 || sym_size > MAX_TABLE {
        return Err(bad(".dynsym header"));
    }
    let (_, str_off, str_size, _, _) = section(u64::from(link));
    if str_size > MAX_TABLE {
        return Err(bad(".dynstr header"));
    }
    let mut syms = vec![0u8; sym_size as usize];
    read_at(sym_off, &mut syms)?;
    let mut strs = vec![0u8; str_size as usize];
    read_at(str_off, &mut strs)?;
    let mut out = Vec::new();
    for s in syms.chunks_exact(entsize as usize).skip(1) {
        let name_at = u32_at(s, 0) as usize;
        let shndx = u16_at(s, 6);
        let Some(tail) = strs.get(name_at..) else {
            return Err(bad("symbol name outside .dynstr"));
        };
        let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
        let name = String::from_utf8_lossy(&tail[..end]).into_owned();
        if !name.is_empty() {
            out.push((name, shndx != 0));
        }
    }
    Ok(out)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    use std::path::{Path, PathBuf};

    /// The stand-in, compiled by build.rs from `speech-stub/flite.c`.
    pub const STUB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libberth-speech-stub.so"));

    /// Why the stand-in is not used (logged once the logger is up).
    static SKIPPED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

    /// Puts the stand-in first on the library path and executes the app again with it (the
    /// same process; WebKit's processes inherit the path), when it applies; else changes
    /// nothing and returns. Call first in `main`, while the process has one thread.
    pub fn apply() {
        if std::env::var_os(ENV_ACTIVE).is_some()
            || keep_requested(std::env::var(ENV_KEEP).ok().as_deref())
        {
            return;
        }
        if let Err(why) = prepare() {
            *SKIPPED.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        }
    }

    /// Logs what [`apply`] did; call once tracing is set up.
    pub fn report() {
        if let Some(why) = SKIPPED.lock().unwrap_or_else(|p| p.into_inner()).take() {
            tracing::debug!("flite stand-in not used: {why}");
        } else if let Ok(v) = std::env::var(ENV_ACTIVE) {
            tracing::debug!(before = %v, "flite stand-in on the library path");
        }
    }

    /// CLOCK_MONOTONIC now, in ns.
    fn monotonic_ns() -> u128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        u128::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000
            + u128::try_from(ts.tv_nsec).unwrap_or(0)
    }

    /// When the app started, counting the run before it re-executed itself: `now` (taken at
    /// the start of `run`) moved back by the time since the first run's start. Call once,
    /// after [`apply`], while the process has one thread.
    pub fn started(now: std::time::Instant) -> std::time::Instant {
        let Some(first) = std::env::var(ENV_STARTED)
            .ok()
            .and_then(|v| v.parse::<u128>().ok())
        else {
            return now;
        };
        std::env::remove_var(ENV_STARTED);
        let back = monotonic_ns().saturating_sub(first);
        let back = std::time::Duration::from_nanos(u64::try_from(back).unwrap_or(0));
        now.checked_sub(back).unwrap_or(now)
    }

    fn prepare() -> Result<(), String> {
        let started_ns = monotonic_ns();
        let maps = std::fs::read_to_string("/proc/self/maps")
            .map_err(|e| format!("/proc/self/maps: {e}"))?;
        let paths: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .collect();
        if !paths.iter().any(|p| p.contains("/libflite")) {
            return Err("flite is not loaded".into());
        }
        let webkit = Path::new(
            paths
                .iter()
                .find(|p| {
                    Path::new(p)
                        .file_name()
                        .and_then(OsStr::to_str)
                        .is_some_and(|n| {
                            n.starts_with("libwebkit2gtk-") || n.starts_with("libwebkitgtk-")
                        })
                })
                .ok_or("libwebkit2gtk is not loaded")?,
        );
        let dir = materialize(&base_dir()?)?;
        // What WebKit imports from flite changes only with WebKit: checked once per build of it.
        let meta = std::fs::metadata(webkit).map_err(|e| format!("{}: {e}", webkit.display()))?;
        let key = format!(
            "{}\0{}\0{}\0{}\0{}",
            webkit.display(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        let checked = dir.join(format!("webkit-{:016x}.checked", fnv1a(key.as_bytes())));
        if !checked.exists() {
            let needed = flite_imports(webkit)?;
            if let Some(missing) = needed.iter().find(|s| !STUB_SYMBOLS.contains(&s.as_str())) {
                return Err(format!(
                    "{} calls flite's {missing}, which the stand-in lacks",
                    webkit.display()
                ));
            }
            let _ = std::fs::write(&checked, format!("{}\n", needed.join("\n")));
        }
        // every start: the directory may have become unloadable (`noexec`) since
        loads(&dir.join(FLITE_SONAMES[0]))?;
        let dir_s = dir.to_str().ok_or("stand-in directory is not UTF-8")?;
        let before = std::env::var(LD_PATH).ok();
        let marker = match &before {
            Some(b) => format!("set:{b}"),
            None => "unset".into(),
        };
        let mut env = vec![
            (
                LD_PATH,
                std::ffi::OsString::from(prepend_path(dir_s, before.as_deref())),
            ),
            (ENV_ACTIVE, marker.into()),
            (ENV_STARTED, started_ns.to_string().into()),
        ];
        if std::env::var_os(GST_REGISTRY).is_none() {
            env.push((GST_REGISTRY, dir.join("gst-registry.bin").into_os_string()));
            env.push((ENV_GST_SET, "1".into()));
        }
        // The loader read the library path before `main`: the app process takes the stand-in
        // by executing itself again (its own path, not /proc/self/exe, which would name the
        // process "exe"; same pid and arguments).
        let exec_err = match std::env::current_exe() {
            Ok(exe) => {
                let mut cmd = std::process::Command::new(&exe);
                let mut args = std::env::args_os();
                if let Some(arg0) = args.next() {
                    std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
                }
                cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
                let e = std::os::unix::process::CommandExt::exec(&mut cmd);
                format!("re-executing {}: {e}", exe.display())
            }
            Err(e) => format!("the app's own path: {e}"),
        };
        // Could not: WebKit's processes, started later, still take it.
        for (k, v) in &env {
            std::env::set_var(k, v);
        }
        Err(format!(
            "{exec_err}; WebKit's processes get the stand-in, this one keeps flite"
        ))
    }

    /// The symbols `lib` imports that this process resolved from a flite library.
    pub fn flite_imports(lib: &Path) -> Result<Vec<String>, String> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(lib).map_err(|e| format!("{}: {e}", lib.display()))?;
        let syms = dynamic_symbols(&|off, buf| f.read_exact_at(buf, off))
            .map_err(|e| format!("{}: {e}", lib.display()))?;
        let mut out = Vec::new();
        for (name, defined) in syms {
            if defined {
                continue;
            }
            let Ok(c) = CString::new(name.as_str()) else {
                continue;
            };
            if defined_in(&c).is_some_and(|file| file.contains("/libflite")) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The file of the object that defines `sym` for this process, if any.
    fn defined_in(sym: &CStr) -> Option<String> {
        // SAFETY: dlsym and dladdr read the loader's tables; the name is a valid C string and
        // `info` is written by dladdr before it is read.
        unsafe {
            let addr = libc::dlsym(libc::RTLD_DEFAULT, sym.as_ptr());
            if addr.is_null() {
                return None;
            }
            let mut info: libc::Dl_info = std::mem::zeroed();
            if libc::dladdr(addr, &mut info) == 0 || info.dli_fname.is_null() {
                return None;
            }
            Some(
                CStr::from_ptr(info.dli_fname)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    /// The user's private runtime directory, else `/tmp/berth-desktop-<uid>`.
    fn base_dir() -> Result<PathBuf, String> {
        let uid = nix::unistd::geteuid().as_raw();
        if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            if run.is_absolute() && private_dir(&run, uid).is_ok() {
                return Ok(run.join("berth-desktop"));
            }
        }
        Ok(PathBuf::from(format!("/tmp/berth-desktop-{uid}")))
    }

    /// `dir` is a directory (not a link) owned by `uid` that no one else may write to.
    pub fn private_dir(dir: &Path, uid: u32) -> Result<(), String> {
        let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !m.file_type().is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        if m.uid() != uid {
            return Err(format!(
                "{} belongs to uid {}, not {uid}",
                dir.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!(
                "{} may be written by others (mode {:o})",
                dir.display(),
                m.mode() & 0o7777
            ));
        }
        Ok(())
    }

    /// Writes the stand-in and its links under `base` (made 0700 if missing, checked
    /// private either way) in a directory named by its content; returns that directory.
    pub fn materialize(base: &Path) -> Result<PathBuf, String> {
        let uid = nix::unistd::geteuid().as_raw();
        mkdir_private(base)?;
        private_dir(base, uid)?;
        let dir = base.join(format!("speech-{:016x}", fnv1a(STUB)));
        mkdir_private(&dir)?;
        private_dir(&dir, uid)?;
        let file = dir.join(FLITE_SONAMES[0]);
        if std::fs::read(&file).ok().as_deref() != Some(STUB) {
            let tmp = dir.join(format!(".{}.{}", FLITE_SONAMES[0], std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::io::Write::write_all(&mut f, STUB)
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            drop(f);
            std::fs::rename(&tmp, &file).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        for name in &FLITE_SONAMES[1..] {
            let link = dir.join(name);
            if std::fs::read_link(&link).ok().as_deref() == Some(Path::new(FLITE_SONAMES[0])) {
                continue;
            }
            // made aside and renamed over: another start reading the directory never finds
            // the name missing (and would load that one library from the system)
            let tmp = dir.join(format!(".{name}.{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(FLITE_SONAMES[0], &tmp)
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &link).map_err(|e| format!("{}: {e}", link.display()))?;
        }
        Ok(dir)
    }

    fn mkdir_private(dir: &Path) -> Result<(), String> {
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        }
    }

    /// Loads and unloads `lib` (as WebKit's processes will), to learn that it can be.
    pub fn loads(lib: &Path) -> Result<(), String> {
        let c = CString::new(lib.as_os_str().as_bytes())
            .map_err(|_| "path holds a NUL byte".to_string())?;
        // SAFETY: dlopen of a library without constructors (the stand-in is built with
        // -nostdlib and defines none); RTLD_LOCAL keeps its symbols out of this process's
        // lookups; the handle is closed right after.
        unsafe {
            let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if h.is_null() {
                let e = libc::dlerror();
                let why = if e.is_null() {
                    "unknown error".to_string()
                } else {
                    CStr::from_ptr(e).to_string_lossy().into_owned()
                };
                return Err(format!(
                    "the stand-in does not load from {}: {why}",
                    lib.display()
                ));
            }
            libc::dlclose(h);
        }
        Ok(())
    }

    /// 64-bit FNV-1a: names the stand-in's directory by its content.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::os::unix::fs::PermissionsExt;

        /// `dynamic_symbols` over bytes in memory.
        fn symbols_of(bytes: &[u8]) -> std::io::Result<Vec<(String, bool)>> {
            dynamic_symbols(&|off, buf| {
                let o = usize::try_from(off).unwrap();
                let src = bytes
                    .get(o..o + buf.len())
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            })
        }

        fn stub_symbols() -> Vec<(String, bool)> {
            symbols_of(STUB).unwrap()
        }

        #[test]
        fn the_stand_in_defines_exactly_the_listed_symbols_and_needs_nothing() {
            let mut defined: Vec<String> = stub_symbols()
                .into_iter()
                .filter(|(_, d)| *d)
                .map(|(n, _)| n)
                .collect();
            defined.sort();
            let mut want: Vec<String> = STUB_SYMBOLS.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(defined, want);
            let undefined: Vec<String> = stub_symbols()
                .into_iter()
                .filter(|(_, d)| !*d)
                .map(|(n, _)| n)
                .collect();
            assert!(undefined.is_empty(), "the stand-in imports {undefined:?}");
        }

        #[test]
        fn webkit_calls_only_flite_functions_the_stand_in_defines() {
            // WebKit as the app loads it (the test binary may not link it: then loaded here,
            // into the global scope, as the app's dynamic loader would).
            let find = || {
                std::fs::read_to_string("/proc/self/maps")
                    .unwrap()
                    .lines()
                    .filter_map(|l| l.split_whitespace().nth(5))
                    .find(|p| p.contains("libwebkit2gtk-"))
                    .map(str::to_string)
            };
            let webkit = find().unwrap_or_else(|| {
                // SAFETY: loads a system library by name; its constructors are WebKit's own.
                let h = unsafe {
                    libc::dlopen(
                        c"libwebkit2gtk-4.1.so.0".as_ptr(),
                        libc::RTLD_NOW | libc::RTLD_GLOBAL,
                    )
                };
                assert!(!h.is_null(), "libwebkit2gtk-4.1.so.0 does not load");
                find().expect("libwebkit2gtk mapped after dlopen")
            });
            let needed = flite_imports(Path::new(&webkit)).unwrap();
            assert!(
                needed.iter().any(|s| s == "flite_text_to_wave"),
                "{needed:?}"
            );
            for s in &needed {
                assert!(
                    STUB_SYMBOLS.contains(&s.as_str()),
                    "{webkit} calls flite's {s}"
                );
            }
        }

        #[test]
        fn a_garbled_object_is_an_error() {
            assert!(symbols_of(b"\x7fELF\x02\x01junk").is_err());
            let mut hdr = [0u8; 64];
            hdr[..6].copy_from_slice(b"\x7fELF\x01\x01");
            let r = symbols_of(&hdr);
            assert!(r.unwrap_err().to_string().contains("64-bit"));
        }

        #[test]
        fn materialize_writes_a_private_loadable_directory_and_is_idempotent() {
            let t = tempfile::tempdir().unwrap();
            let base = t.path().join("berth-desktop");
            let dir = materialize(&base).unwrap();
            assert_eq!(
                std::fs::metadata(&base).unwrap().permissions().mode() & 0o777,
                0o700
            );
            assert_eq!(std::fs::read(dir.join("libflite.so.1")).unwrap(), STUB);
            for n in &FLITE_SONAMES[1..] {
                assert_eq!(
                    std::fs::read_link(dir.join(n)).unwrap(),
                    Path::new("libflite.so.1")
                );
            }
            loads(&dir.join("libflite_cmu_us_kal.so.1")).unwrap();
            // a damaged copy and a wrong link are repaired on the next start
            std::fs::write(dir.join("libflite.so.1"), b"garbage").unwrap();
            std::fs::remove_file(dir.join("libflite_cmulex.so.1")).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", dir.join("libflite_cmulex.so.1")).unwrap();
            assert_eq!(materialize(&base).unwrap(), dir);
            assert_eq!(std::fs::read(dir.join("libflite.so.1")).unwrap(), STUB);
            assert_eq!(
                std::fs::read_link(dir.join("libflite_cmulex.so.1")).unwrap(),
                Path::new("libflite.so.1")
            );
        }

        #[test]
        fn a_directory_others_may_write_or_a_link_is_refused() {
            let t = tempfile::tempdir().unwrap();
            let open = t.path().join("open");
            std::fs::create_dir(&open).unwrap();
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
            let e = materialize(&open).unwrap_err();
            assert!(e.contains("written by others"), "{e}");
            let link = t.path().join("link");
            std::os::unix::fs::symlink(t.path(), &link).unwrap();
            let e = materialize(&link).unwrap_err();
            assert!(e.contains("not a directory"), "{e}");
            let uid = nix::unistd::geteuid().as_raw();
            let e = private_dir(t.path(), uid + 1).unwrap_err();
            assert!(e.contains("belongs to uid"), "{e}");
        }

        #[test]
        fn a_library_that_cannot_load_is_reported() {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().join("libflite.so.1");
            std::fs::write(&p, b"not a library").unwrap();
            let e = loads(&p).unwrap_err();
            assert!(e.contains("does not load"), "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_get_the_users_library_path_back() {
        assert!(env_for_child(None, false).is_empty());
        assert_eq!(
            env_for_child(Some("set:/opt/lib"), true),
            vec![
                ("LD_LIBRARY_PATH", Some("/opt/lib".to_string())),
                (ENV_ACTIVE, None),
                ("GST_REGISTRY_1_0", None),
                (ENV_GST_SET, None)
            ]
        );
        // the user's own registry setting is left alone
        assert_eq!(
            env_for_child(Some("unset"), false),
            vec![("LD_LIBRARY_PATH", None), (ENV_ACTIVE, None)]
        );
    }

    #[test]
    fn the_path_goes_first_and_keeps_the_users() {
        assert_eq!(prepend_path("/run/x", None), "/run/x");
        assert_eq!(prepend_path("/run/x", Some("")), "/run/x");
        assert_eq!(prepend_path("/run/x", Some("/opt/lib")), "/run/x:/opt/lib");
    }

    #[test]
    fn keep_is_any_value_but_zero() {
        assert!(!keep_requested(None));
        assert!(!keep_requested(Some("0")));
        assert!(!keep_requested(Some(" ")));
        assert!(keep_requested(Some("1")));
        assert!(keep_requested(Some("yes")));
    }
}
