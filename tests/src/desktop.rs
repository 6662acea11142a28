//! The Berth Desktop app under a virtual display, for the end-to-end suite and the benchmark.
//!
//! [`Desktop::launch`] starts, each on its own: an `Xvfb` on a free display (`-displayfd`),
//! a private session bus (`dbus-daemon --session`), and `tauri-driver` on a free port in
//! front of `/usr/bin/WebKitWebDriver` (also on a free port); then it opens a WebDriver
//! session whose `tauri:options.application` is the app binary, so WebKitWebDriver starts the
//! app. The app inherits tauri-driver's environment: that is how a test points it at its own
//! berthd ([`AppEnv`]). Everything is in one process group and is killed on drop.
//!
//! Desktop sessions on one machine take turns (an flock on /tmp/berth-desktop.lock): two
//! WebKit instances on two cores only make both slow.
//!
//! The app is `$BERTH_DESKTOP`, else `<target>/{debug,release}/berth-desktop` (build it with
//! `cargo build -p berth-desktop`).

use crate::berthd::Berthd;
use crate::webdriver::{tid, WebDriver};
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WEBKIT_WEBDRIVER: &str = "/usr/bin/WebKitWebDriver";

/// `<workspace>/target`, or `$CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(t);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
}

/// WebKitGTK's MiniBrowser (a bare webview: the memory anchor, and a page to test the
/// WebDriver client on without the app).
pub fn minibrowser() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
        "/usr/libexec/webkit2gtk-4.1/MiniBrowser",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// The app binary, if built: `$BERTH_DESKTOP`, else `<target>/debug/berth-desktop`, else
/// `<target>/release/berth-desktop`.
pub fn app_bin() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("BERTH_DESKTOP").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v)).filter(|p| p.is_file());
    }
    ["debug", "release"]
        .iter()
        .map(|p| target_dir().join(p).join("berth-desktop"))
        .find(|p| p.is_file())
}

/// `tauri-driver`: `$TAURI_DRIVER`, else PATH, else `~/.cargo/bin/tauri-driver`.
pub fn tauri_driver_bin() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("TAURI_DRIVER").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v)).filter(|p| p.is_file());
    }
    crate::find_in_path("tauri-driver").or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join(".cargo/bin/tauri-driver")).filter(|p| p.is_file())
    })
}

/// Why the desktop suite cannot run here, if it cannot. `webdriver`: whether tauri-driver
/// and WebKitWebDriver are needed too (the benchmark's cold start runs the app directly).
pub fn missing_prerequisite(webdriver: bool) -> Option<String> {
    if !crate::is_root() {
        return Some("needs root (berthd runs containers)".into());
    }
    if crate::find_in_path("Xvfb").is_none() {
        return Some("Xvfb not installed (apt install xvfb)".into());
    }
    if crate::find_in_path("dbus-daemon").is_none() {
        return Some("dbus-daemon not installed (apt install dbus)".into());
    }
    if webdriver {
        if !Path::new(WEBKIT_WEBDRIVER).is_file() {
            return Some(format!(
                "{WEBKIT_WEBDRIVER} missing (apt install webkit2gtk-driver)"
            ));
        }
        if tauri_driver_bin().is_none() {
            return Some("tauri-driver missing (cargo install tauri-driver --locked)".into());
        }
    }
    if let Some(v) = std::env::var_os("BERTH_DESKTOP").filter(|v| !v.is_empty()) {
        if !Path::new(&v).is_file() {
            return Some(format!(
                "berth-desktop not found: $BERTH_DESKTOP={} is not a file",
                Path::new(&v).display()
            ));
        }
    }
    if app_bin().is_none() {
        return Some(format!(
            "berth-desktop not built (cargo build -p berth-desktop; looked in {}/{{debug,release}})",
            target_dir().display()
        ));
    }
    None
}

/// True when the suite can run; otherwise prints `skipped: <test>: <why>` and returns false.
pub fn require_desktop(test: &str, webdriver: bool) -> bool {
    match missing_prerequisite(webdriver) {
        None => true,
        Some(why) => {
            let line = format!("skipped: {test}: {why}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            false
        }
    }
}

/// The machine-wide turn for a desktop session (flock, released on drop).
pub struct DesktopLock {
    _file: File,
}

impl DesktopLock {
    pub fn take() -> DesktopLock {
        let f = File::create("/tmp/berth-desktop.lock").expect("create /tmp/berth-desktop.lock");
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock /tmp/berth-desktop.lock");
        DesktopLock { _file: f }
    }
}

/// SIGTERM a process group, then SIGKILL whatever is left after `grace`.
pub fn kill_group(pgid: u32, grace: Duration) {
    let pgid = pgid as i32;
    if pgid <= 1 {
        return;
    }
    // SAFETY: signalling a process group this module created.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        // SAFETY: signal 0 only checks for existence.
        if unsafe { libc::kill(-pgid, 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

fn reap(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An `Xvfb` on the first free display (it picks it and tells us through `-displayfd`).
pub struct Xvfb {
    pub display: u32,
    child: Child,
}

impl Xvfb {
    pub fn start(log: &Path) -> Xvfb {
        let mut fds = [0i32; 2];
        // SAFETY: pipe() fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        let (rd, wr) = (fds[0], fds[1]);
        // The write end must survive exec in Xvfb (pipe() leaves FD_CLOEXEC clear); the read
        // end must not leak into it.
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(rd, libc::F_SETFD, libc::FD_CLOEXEC) };
        let logf = File::create(log).expect("Xvfb log");
        let child = Command::new("Xvfb")
            .arg("-displayfd")
            .arg(wr.to_string())
            .args([
                "-screen",
                "0",
                "1400x900x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf)
            .process_group(0)
            .spawn()
            .expect("start Xvfb");
        // SAFETY: closing our copy of the write end; Xvfb has its own.
        unsafe { libc::close(wr) };
        // SAFETY: rd is an open descriptor we own from here on.
        let mut r = unsafe { File::from_raw_fd(rd) };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let mut b = [0u8; 1];
            while let Ok(1) = r.read(&mut b) {
                if b[0] == b'\n' {
                    break;
                }
                s.push(b[0] as char);
            }
            let _ = tx.send(s);
        });
        let mut x = Xvfb { display: 0, child };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(s) if s.trim().parse::<u32>().is_ok() => {
                x.display = s.trim().parse().unwrap();
                x
            }
            other => panic!(
                "Xvfb did not report a display ({other:?}); log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }

    pub fn display_env(&self) -> String {
        format!(":{}", self.display)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        kill_group(self.child.id(), Duration::from_secs(3));
        reap(&mut self.child, Duration::from_secs(3));
    }
}

/// A private session bus (`dbus-daemon --session --nofork`), so the app's GTK and WebKit
/// find one without touching the machine's.
pub struct SessionBus {
    pub address: String,
    child: Child,
}

impl SessionBus {
    pub fn start() -> SessionBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start dbus-daemon");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_default()
            .trim()
            .to_string();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        SessionBus { address, child }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        kill_group(self.child.id(), Duration::from_secs(2));
        reap(&mut self.child, Duration::from_secs(2));
    }
}

/// The environment the app gets (on top of the display's).
#[derive(Debug, Clone, Default)]
pub struct AppEnv {
    pub vars: Vec<(String, String)>,
    /// Removed from the display's defaults.
    pub unset: Vec<String>,
}

impl AppEnv {
    /// Point the app at `d`: its socket, daemon.json, data root and exec root, and the
    /// berthd binary to start when the engine is stopped.
    pub fn for_berthd(d: &Berthd) -> AppEnv {
        let root = d.dir.path();
        let mut e = AppEnv::default();
        e.set("BERTH_HOST", &format!("unix://{}", d.sock.display()));
        e.set(
            "BERTH_DAEMON_CONFIG",
            &root.join("daemon.json").display().to_string(),
        );
        e.set(
            "BERTH_BERTHD",
            &crate::berthd::berthd_bin().display().to_string(),
        );
        e.set("BERTH_DATA_ROOT", &root.join("data").display().to_string());
        e.set("BERTH_EXEC_ROOT", &root.join("run").display().to_string());
        e
    }

    pub fn set(&mut self, k: &str, v: &str) -> &mut AppEnv {
        self.vars.retain(|(key, _)| key != k);
        self.unset.retain(|key| key != k);
        self.vars.push((k.to_string(), v.to_string()));
        self
    }

    pub fn unset(&mut self, k: &str) -> &mut AppEnv {
        self.vars.retain(|(key, _)| key != k);
        self.unset.push(k.to_string());
        self
    }

    /// Whether the app runs with WebKit's compositing mode disabled (the default here).
    pub fn compositing_disabled(&self) -> bool {
        !self
            .unset
            .iter()
            .any(|k| k == "WEBKIT_DISABLE_COMPOSITING_MODE")
    }
}

/// Per-session scratch: XDG dirs, HOME-like config, logs.
fn gui_env(cmd: &mut Command, display: &str, bus: &str, scratch: &Path) {
    for d in ["runtime", "config", "data", "cache", "docker"] {
        std::fs::create_dir_all(scratch.join(d)).unwrap();
    }
    let _ = std::fs::set_permissions(
        scratch.join("runtime"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    );
    cmd.env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("GDK_BACKEND", "x11")
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("NO_AT_BRIDGE", "1")
        .env("GTK_A11Y", "none")
        .env("XDG_RUNTIME_DIR", scratch.join("runtime"))
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_DATA_HOME", scratch.join("data"))
        .env("XDG_CACHE_HOME", scratch.join("cache"))
        .env("DOCKER_CONFIG", scratch.join("docker"))
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST");
}

/// A display and a bus for launching GUI processes directly (the benchmark).
pub struct Display {
    pub scratch: tempfile::TempDir,
    pub bus: SessionBus,
    pub xvfb: Xvfb,
}

impl Display {
    pub fn start() -> Display {
        let scratch = tempfile::Builder::new()
            .prefix("berth-desktop-")
            .tempdir()
            .unwrap();
        let xvfb = Xvfb::start(&scratch.path().join("xvfb.log"));
        let bus = SessionBus::start();
        Display { scratch, bus, xvfb }
    }

    /// `program` with the display's environment and `env`, in its own process group, stdin
    /// closed.
    pub fn command(&self, program: &Path, env: &AppEnv) -> Command {
        let mut c = Command::new(program);
        gui_env(
            &mut c,
            &self.xvfb.display_env(),
            &self.bus.address,
            self.scratch.path(),
        );
        for k in &env.unset {
            c.env_remove(k);
        }
        for (k, v) in &env.vars {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).process_group(0);
        c
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    crate::services::free_port()
}

/// The app under WebDriver.
pub struct Desktop {
    pub wd: WebDriver,
    pub scenario: String,
    driver: Child,
    log: PathBuf,
    display: Display,
    _lock: DesktopLock,
}

impl Desktop {
    /// Start the app with `env` and wait until its shell rendered (`engine-status`).
    pub fn launch(scenario: &str, env: &AppEnv) -> Desktop {
        let app = app_bin().expect("berth-desktop binary");
        let d = Desktop::launch_program(scenario, &app, &[], env);
        d.wd.wait_for_within(&tid("engine-status"), Duration::from_secs(60));
        d
    }

    /// Start `program` (with `args`) through tauri-driver and WebKitWebDriver; no waiting
    /// for any page content.
    pub fn launch_program(scenario: &str, program: &Path, args: &[&str], env: &AppEnv) -> Desktop {
        let lock = DesktopLock::take();
        let display = Display::start();
        let log = display.scratch.path().join("driver.log");
        let port = free_port();
        let mut native = free_port();
        while native == port {
            native = free_port();
        }
        let logf = File::create(&log).unwrap();
        let mut cmd = display.command(&tauri_driver_bin().expect("tauri-driver"), env);
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native.to_string())
            .arg("--native-driver")
            .arg(WEBKIT_WEBDRIVER)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        let driver = cmd.spawn().expect("start tauri-driver");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not listen on {addr}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // tauri-driver answers before WebKitWebDriver listens: wait for the native port too.
        while std::net::TcpStream::connect(("127.0.0.1", native)).is_err() {
            assert!(
                Instant::now() < deadline,
                "WebKitWebDriver did not listen on {native}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).unwrap();
        // Old screenshots of this scenario would be confused with this run's.
        if let Ok(rd) = std::fs::read_dir(&shots) {
            for e in rd.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{scenario}-"))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let options = json!({"application": program, "args": args});
        // Tauri's documented capabilities name the browser "wry"; WebKitWebDriver compares
        // browserName with the name the launched program reports and refuses a mismatch
        // (after closing the probe it launched), so a refusal is retried without it.
        let with_name = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": options,
        }}});
        let without_name = json!({"capabilities": {"alwaysMatch": {"tauri:options": options}}});
        let timeout = Duration::from_secs(90);
        let mut caps = &with_name;
        let mut attempts = 0;
        let session = loop {
            attempts += 1;
            match WebDriver::new_session(&addr, caps, timeout, &shots, scenario) {
                Err(e) if e.message.contains("match capabilities") && caps == &with_name => {
                    caps = &without_name;
                }
                // tauri-driver may reuse a connection WebKitWebDriver already closed (after
                // the refused attempt): that shows as an empty answer; try again.
                Err(e) if e.error == "transport" && attempts < 4 => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => break other,
            }
        };
        let wd = match session {
            Ok(wd) => wd,
            Err(e) => {
                kill_group(driver.id(), Duration::from_secs(3));
                panic!(
                    "WebDriver session for {} failed: {e}\n--- driver/app log:\n{}",
                    program.display(),
                    tail(&std::fs::read_to_string(&log).unwrap_or_default(), 60)
                );
            }
        };
        let _ = wd.set_timeouts(60_000, 60_000, 0);
        let mut wd = wd;
        // tauri-driver is needed for the new session only (it turns tauri:options into
        // WebKitWebDriver's options); its proxy can reuse connections WebKitWebDriver has
        // closed, so the session's commands go to WebKitWebDriver directly.
        wd.addr = format!("127.0.0.1:{native}");
        wd.extra_log = Some(log.clone());
        if env.compositing_disabled() {
            wd.x11_display = Some(display.xvfb.display_env());
        }
        Desktop {
            wd,
            scenario: scenario.to_string(),
            driver,
            log,
            display,
            _lock: lock,
        }
    }

    /// The X display the app is on (`:N`).
    pub fn display(&self) -> String {
        self.display.xvfb.display_env()
    }

    /// The driver's and the app's stderr so far (the last `n` lines).
    pub fn log_tail(&self, n: usize) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), n)
    }

    /// Click `nav-<page>` and wait for the page's title to name it; screenshot it.
    pub fn nav(&self, page: &str) {
        self.wd.click(&tid(&format!("nav-{page}")));
        self.wd.wait_until(
            &format!("page-title to name {page}"),
            Duration::from_secs(20),
            |d| {
                let Some(el) = d.find_all(&tid("page-title"))?.into_iter().next() else {
                    return Ok(None);
                };
                let t = d.text_el(&el)?.to_lowercase();
                Ok(t.contains(page).then_some(()))
            },
        );
        self.wd.shot(page);
    }

    /// Call a Tauri command the way the UI does; `Err` carries the command's error.
    pub fn invoke(&self, cmd: &str, args: Value) -> Result<Value, String> {
        self.wd
            .execute_promise(
                "return await window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]);",
                vec![json!(cmd), args],
            )
            .unwrap_or_else(|e| panic!("{}", self.wd.failure(&format!("invoke {cmd}: {e}"))))
    }

    /// The element whose `data-testid` is `id` and whose `attr` is `value`.
    pub fn row_selector(id: &str, attr: &str, value: &str) -> String {
        format!("[data-testid=\"{id}\"][{attr}=\"{value}\"]")
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.wd.delete();
        kill_group(self.driver.id(), Duration::from_secs(5));
        reap(&mut self.driver, Duration::from_secs(3));
        // Keep the driver/app log next to the screenshots.
        let _ = std::fs::copy(
            &self.log,
            screenshot_dir().join(format!("{}-driver.log", self.scenario)),
        );
        let _ = &self.display;
    }
}

/// `<target>/desktop-screenshots`
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("desktop-screenshots")
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---- process accounting (the benchmark) ---------------------------------------------

/// (pid, ppid) of every process.
fn process_table() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Some(st) = proc_stat(pid) {
                out.push((pid, st.ppid));
            }
        }
    }
    out
}

/// `pid` and every process below it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let table = process_table();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        for &(c, pp) in &table {
            if pp == p && !tree.contains(&c) {
                tree.push(c);
            }
        }
        i += 1;
    }
    tree
}

pub struct ProcStat {
    pub comm: String,
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(ProcStat {
        comm,
        ppid,
        cpu_ticks: utime + stime,
    })
}

/// Pss of one process in KiB (`/proc/<pid>/smaps_rollup`).
pub fn pss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Clock ticks per second.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// What the app reported with `BERTH_DESKTOP_REPORT=1`.
#[derive(Debug, Clone, Copy)]
pub struct FirstList {
    /// ms from the app's process start to the first rendered container list.
    pub process_ms: f64,
    /// The same moment in the page's clock (ms since its navigation start), when printed.
    pub page_ms: Option<f64>,
    /// ms from our spawn to reading the line.
    pub wall_ms: f64,
}

/// Parse `berth-desktop: first-list <ms> [page <ms>]`.
pub fn parse_first_list(line: &str) -> Option<(f64, Option<f64>)> {
    let rest = line.trim().strip_prefix("berth-desktop: first-list ")?;
    let mut words = rest.split_whitespace();
    let process_ms = words.next()?.trim_end_matches("ms").parse().ok()?;
    let mut page_ms = None;
    while let Some(w) = words.next() {
        if w == "page" {
            page_ms = words
                .next()
                .and_then(|v| v.trim_end_matches("ms").parse().ok());
        }
    }
    Some((process_ms, page_ms))
}

/// Wait until the app's stdout prints `berth-desktop: first-list <ms> page <ms>`. None after
/// `timeout` (or when stdout closes first); `seen` collects the lines read. The pipe keeps
/// being drained afterwards so the app never blocks on it.
pub fn read_first_list(
    stdout: std::process::ChildStdout,
    spawned: Instant,
    timeout: Duration,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> Option<FirstList> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let mut sent = false;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let wall_ms = spawned.elapsed().as_secs_f64() * 1000.0;
            seen.lock().unwrap().push(line.trim_end().to_string());
            if !sent {
                if let Some((process_ms, page_ms)) = parse_first_list(&line) {
                    let _ = tx.send(FirstList {
                        process_ms,
                        page_ms,
                        wall_ms,
                    });
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_first_list_report() {
        assert_eq!(
            parse_first_list("berth-desktop: first-list 812.5 page 401.0\n"),
            Some((812.5, Some(401.0)))
        );
        assert_eq!(
            parse_first_list("berth-desktop: first-list 90"),
            Some((90.0, None))
        );
        assert_eq!(parse_first_list("berth-desktop: ready"), None);
        assert_eq!(parse_first_list("berth-desktop: first-list soon"), None);
    }

    #[test]
    fn process_accounting_sees_this_process() {
        let me = std::process::id();
        assert!(process_tree(me).contains(&me));
        let st = proc_stat(me).unwrap();
        assert!(!st.comm.is_empty());
        assert!(pss_kib(me).unwrap() > 0);
    }
}
