//! Berth Desktop end to end: the real app (target/{debug,release}/berth-desktop) under Xvfb,
//! driven through tauri-driver + WebKitWebDriver with the `data-testid`s of docs/desktop.md,
//! against a test berthd on a temp data root. Images come from loopback `docker-registry`s;
//! nothing leaves the machine.
//!
//! Every scenario saves a screenshot of each page it visits under
//! `target/desktop-screenshots/<scenario>-<nn>-<step>.png` (and the driver's and the app's
//! stderr as `<scenario>-driver.log`); a failed wait adds a `FAIL-` screenshot and puts the
//! page's text in the panic message.
//!
//! Needs root, Xvfb, dbus-daemon, WebKitWebDriver (webkit2gtk-driver), tauri-driver and a
//! built app (`cargo build -p berth-desktop`); without them each test prints `skipped: ...`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::desktop::{self, AppEnv, Desktop};
use berth_tests::fakekube::{FakeKube, Script};
use berth_tests::oci_image_layout;
use berth_tests::services::{free_port, Registry};
use berth_tests::webdriver::{keys, tid, WebDriver};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn row(id: &str, attr: &str, value: &str) -> String {
    Desktop::row_selector(id, attr, value)
}

/// Click `confirm-ok` if a confirmation appears within 3 s (some actions ask, some do not).
fn confirm_if_asked(wd: &WebDriver) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(els) = wd.find_all(&tid("confirm-ok")) {
            for el in els {
                if wd.displayed_el(&el).unwrap_or(false) && wd.click_el(&el).is_ok() {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Click the `testid` button inside the first element matching `row_css`.
fn click_in(wd: &WebDriver, row_css: &str, testid: &str) {
    wd.wait_until(&format!("{testid} in {row_css}"), wd.default_timeout, |d| {
        let Some(r) = d.find_all(row_css)?.into_iter().next() else {
            return Ok(None);
        };
        let Some(b) = d.find_all_in(&r, &tid(testid))?.into_iter().next() else {
            return Ok(None);
        };
        match d.click_el(&b) {
            Ok(()) => Ok(Some(())),
            Err(e) if e.is_stale() || e.error.contains("interactable") => Ok(None),
            Err(e) => Err(e),
        }
    });
}

/// Type into the `testid` input inside the first element matching `scope_css`.
fn type_in(wd: &WebDriver, scope_css: &str, testid: &str, text: &str) {
    wd.wait_until(
        &format!("{testid} in {scope_css}"),
        wd.default_timeout,
        |d| {
            let Some(r) = d.find_all(scope_css)?.into_iter().next() else {
                return Ok(None);
            };
            let Some(i) = d.find_all_in(&r, &tid(testid))?.into_iter().next() else {
                return Ok(None);
            };
            let _ = d.clear_el(&i);
            d.send_keys_el(&i, text)?;
            Ok(Some(()))
        },
    );
}

/// Records every `layer-progress` element the page shows from now on (they may come and go
/// faster than a poll): `window.__layers` is a list of `{id, status}` seen.
fn watch_layer_progress(wd: &WebDriver) {
    wd.execute(
        r#"
        window.__layers = [];
        const note = (el) => {
          if (!(el instanceof Element)) return;
          const all = el.matches('[data-testid="layer-progress"]') ? [el] : [];
          for (const e of el.querySelectorAll('[data-testid="layer-progress"]')) all.push(e);
          for (const e of all) window.__layers.push({id: e.getAttribute('data-id'), status: e.getAttribute('data-status')});
        };
        if (window.__layerObserver) window.__layerObserver.disconnect();
        window.__layerObserver = new MutationObserver((ms) => {
          for (const m of ms) {
            if (m.type === 'attributes') note(m.target);
            for (const n of m.addedNodes) note(n);
          }
        });
        window.__layerObserver.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status', 'data-id']});
        "#,
        vec![],
    )
    .unwrap();
}

fn seen_layers(wd: &WebDriver) -> Vec<(String, String)> {
    let v = wd.execute("return window.__layers || [];", vec![]).unwrap();
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap_or("").to_string(),
                l["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// One HTTP GET to 127.0.0.1:port; the status line (or the error).
fn http_status_line(port: u16) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let line = text.lines().next().unwrap_or("").to_string();
    if line.starts_with("HTTP/1.") {
        Ok(line)
    } else {
        Err(format!("not HTTP: {text:?}"))
    }
}

/// Type into the xterm in `[data-testid=terminal]`: element send-keys on xterm's helper
/// textarea, or (if WebKit refuses the hidden textarea) focus it and send key actions.
fn type_in_terminal(wd: &WebDriver, text: &str) {
    let css = format!("{} .xterm-helper-textarea", tid("terminal"));
    let ta = wd.wait_until("the terminal's textarea", wd.default_timeout, |d| {
        Ok(d.find_all(&css)?.into_iter().next())
    });
    if wd.send_keys_el(&ta, text).is_ok() {
        return;
    }
    wd.click(&tid("terminal"));
    wd.execute("arguments[0].focus();", vec![ta.json()])
        .unwrap();
    wd.type_focused(text)
        .unwrap_or_else(|e| panic!("{}", wd.failure(&format!("typing into the terminal: {e}"))));
}

/// Leaves no berthd the app started behind: its pid is in `<exec-root>/berthd.pid`.
struct AppBerthdGuard {
    pidfile: PathBuf,
    fixture_pid: u32,
}

impl AppBerthdGuard {
    fn stop(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if pid == self.fixture_pid || pid <= 1 {
            return None;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "berthd" {
            return None;
        }
        // SAFETY: signalling the berthd the app under test started.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
            let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if st.contains(") Z ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if Path::new(&format!("/proc/{pid}/comm")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "berthd")
        {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        Some(pid)
    }
}

impl Drop for AppBerthdGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `skipped:` line on the real stderr (libtest's capture would hide an eprintln).
fn skip(test: &str, why: &str) {
    let line = format!("skipped: {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn setup(test: &str) -> bool {
    desktop::require_desktop(test, true)
}

// ---- the WebDriver client itself, on a bare webview ----------------------------------

/// The client's commands against WebKitGTK's MiniBrowser on a data: page, so a broken client
/// is told apart from a broken app.
#[test]
fn webdriver_client_on_a_bare_webview() {
    let test = "webdriver_client_on_a_bare_webview";
    let Some(mb) = desktop::minibrowser() else {
        skip(
            test,
            "WebKitGTK's MiniBrowser not installed (libwebkit2gtk-4.1-0)",
        );
        return;
    };
    // This one does not need the app.
    if let Some(why) = desktop::missing_prerequisite(true).filter(|w| !w.contains("berth-desktop"))
    {
        skip(test, &why);
        return;
    }
    // WebKitGTK answers the screenshot command only in compositing mode.
    let mut env = AppEnv::default();
    env.unset("WEBKIT_DISABLE_COMPOSITING_MODE");
    let app = Desktop::launch_program("client", &mb, &["--automation"], &env);
    let wd = &app.wd;
    let page = r#"<html><body><h1 data-testid="page-title">Client page</h1>
<input data-testid="name" value="">
<button data-testid="go" onclick="document.getElementById('out').textContent = 'hello ' + document.querySelector('[data-testid=name]').value; document.getElementById('out').setAttribute('data-state', 'done')">Go</button>
<p id="out" data-testid="out" data-state="idle"></p>
<ul><li class="i">a</li><li class="i">b</li><li class="i">c</li></ul>
<script>setTimeout(() => { const d = document.createElement('div'); d.setAttribute('data-testid', 'late'); d.textContent = 'late one'; document.body.appendChild(d); }, 700);</script>
</body></html>"#;
    let url = format!("data:text/html;charset=utf-8,{}", percent_encode(page));
    wd.navigate(&url).unwrap();
    assert_eq!(wd.text(&tid("page-title")), "Client page");
    assert_eq!(wd.count(".i"), 3);
    assert_eq!(wd.count(".nope"), 0);
    let name = wd.find(&tid("name")).unwrap();
    wd.send_keys_el(&name, "berth").unwrap();
    assert_eq!(wd.prop_el(&name, "value").unwrap(), json!("berth"));
    wd.click(&tid("go"));
    wd.wait_attr(&tid("out"), "data-state", "done");
    assert_eq!(wd.text(&tid("out")), "hello berth");
    assert_eq!(wd.attr(&tid("out"), "data-missing"), None);
    // The late element shows up within the wait.
    assert_eq!(wd.text(&tid("late")), "late one");
    let v = wd
        .execute(
            "return arguments[0] + arguments[1].length;",
            vec![json!(40), json!([1, 2])],
        )
        .unwrap();
    assert_eq!(v, json!(42));
    let v = wd
        .execute_async(
            "const done = arguments[arguments.length - 1]; setTimeout(() => done('later'), 50);",
            vec![],
        )
        .unwrap();
    assert_eq!(v, json!("later"));
    let r = wd
        .execute_promise(
            "await new Promise(r => setTimeout(r, 20)); return 7 * 6;",
            vec![],
        )
        .unwrap();
    assert_eq!(r, Ok(json!(42)));
    let r = wd
        .execute_promise("throw new Error('boom');", vec![])
        .unwrap();
    assert_eq!(r, Err("boom".to_string()));
    let e = wd.find("#does-not-exist").unwrap_err();
    assert_eq!(e.error, "no such element", "{e}");
    // Screenshots are PNG files.
    let shot = wd.shot("page");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", shot.display());
    let x11 = desktop::screenshot_dir().join("client-x11.png");
    berth_tests::webdriver::x11_screenshot(&app.display(), &x11).unwrap();
    assert!(
        std::fs::read(&x11).unwrap().starts_with(b"\x89PNG"),
        "{}",
        x11.display()
    );
    // A failed wait names what it waited for, the page's text and a screenshot (the panic
    // message printed below is this one, expected).
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wd.wait_for_within("#never", Duration::from_millis(300));
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("element #never"), "{msg}");
    assert!(msg.contains("hello berth"), "{msg}");
    let shot_line = msg
        .lines()
        .find_map(|l| l.strip_prefix("--- screenshot: "))
        .unwrap();
    assert!(Path::new(shot_line).is_file(), "{msg}");
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~=:/;,'()!*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- (1) pull, run, logs, terminal, stop, remove -------------------------------------

#[test]
fn desktop_full_flow() {
    if !setup("desktop_full_flow") {
        return;
    }
    let d = Berthd::start();
    let reg = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    reg.push_layout(&layout.dir, "demo:latest");
    let image = format!("{}/demo:latest", reg.host());

    let app = Desktop::launch("full-flow", &AppEnv::for_berthd(&d));
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    wd.shot("start");

    // Images: pull through pull-input/pull-button; the layers' progress shows up.
    app.nav("images");
    watch_layer_progress(wd);
    wd.type_into(&tid("pull-input"), &image);
    wd.click(&tid("pull-button"));
    let image_row = format!(
        "{}[data-repo$=\"/demo\"][data-tag=\"latest\"]",
        tid("image-row")
    );
    wd.wait_for_within(&image_row, Duration::from_secs(90));
    wd.shot("pulled");
    let layers = seen_layers(wd);
    assert!(
        !layers.is_empty(),
        "{}",
        wd.failure("no layer-progress element appeared during the pull")
    );
    let layer_hex = layout
        .layer_digest
        .trim_start_matches("sha256:")
        .to_string();
    assert!(
        layers.iter().any(|(id, _)| {
            let id = id.trim_start_matches("sha256:");
            id.len() >= 12 && layer_hex.starts_with(id)
        }),
        "no layer-progress named the layer {layer_hex}: {layers:?}"
    );
    let engine_image = d.ok(&["image", "inspect", "-f", "{{.Id}}", &image]);
    let row_id = wd.attr(&image_row, "data-id").unwrap_or_default();
    let short = row_id.trim_start_matches("sha256:");
    assert!(
        !short.is_empty()
            && engine_image
                .trim()
                .trim_start_matches("sha256:")
                .starts_with(short),
        "image-row data-id {row_id:?} vs engine {engine_image}"
    );

    // Run dialog: a name, a published port, a command that logs and serves.
    click_in(wd, &image_row, "image-run");
    wd.wait_for(&tid("run-dialog"));
    let prefilled = wd
        .prop_el(&wd.find(&tid("run-image")).unwrap(), "value")
        .unwrap();
    assert!(
        prefilled.as_str().is_some_and(|v| v.contains("demo")),
        "run-image prefilled with {prefilled}"
    );
    let name = "e2e-web";
    let host_port = free_port();
    wd.type_into(&tid("run-name"), name);
    wd.click(&tid("run-add-port"));
    wd.type_into(&tid("run-port-host"), &host_port.to_string());
    wd.type_into(&tid("run-port-container"), "80");
    wd.type_into(
        &tid("run-command"),
        "sh -c 'echo hello-from-berth; exec httpd -f -p 80 -h /'",
    );
    wd.shot("run-dialog");
    wd.click(&tid("run-submit"));
    wd.wait_gone(&tid("run-dialog"));

    // The row arrives through the events stream.
    app.nav("containers");
    let crow = row("container-row", "data-name", name);
    wd.wait_for_within(&crow, Duration::from_secs(60));
    wd.wait_attr(&crow, "data-state", "running");
    wd.shot("running");
    let inspect = d.ok(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", name]);
    assert!(inspect.contains(&host_port.to_string()), "{inspect}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let served = loop {
        match http_status_line(host_port) {
            Ok(l) => break l,
            Err(e) if Instant::now() > deadline => panic!("port {host_port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    eprintln!("published port {host_port} answered: {served}");
    let port_text = wd
        .find_in(&wd.find(&crow).unwrap(), &tid("port-link"))
        .and_then(|p| wd.text_el(&p))
        .unwrap_or_else(|e| panic!("{}", wd.failure(&format!("port-link: {e}"))));
    assert!(
        port_text.contains(&host_port.to_string()),
        "port-link {port_text:?}"
    );

    // Details: logs, then a terminal.
    click_in(wd, &crow, "container-open");
    wd.wait_for(&tid("tab-logs"));
    wd.click(&tid("tab-logs"));
    wd.wait_text(&tid("logs"), "hello-from-berth");
    wd.shot("logs");
    // Inspect: readable (the published port) and the engine's raw JSON (the container's id).
    wd.click(&tid("tab-inspect"));
    wd.wait_text(&tid("inspect-readable"), &host_port.to_string());
    let id = d.ok(&["inspect", "-f", "{{.Id}}", name]);
    wd.wait_text(&tid("inspect-raw"), id.trim());
    wd.shot("inspect");
    // Stats: the three live graphs, drawn from samples.
    wd.click(&tid("tab-stats"));
    for g in ["stats-cpu", "stats-memory", "stats-network"] {
        wd.wait_for(&tid(g));
    }
    // a sample arrived: the legend shows the memory in use (KiB/MiB), not "—"
    wd.wait_text_within(&tid("stats-memory"), "iB", Duration::from_secs(15));
    wd.shot("stats");
    wd.click(&tid("tab-terminal"));
    wd.wait_for(&tid("terminal"));
    // The shell is up when xterm shows anything (its prompt).
    let rows_css = format!("{} .xterm-rows", tid("terminal"));
    wd.wait_until("the terminal's prompt", Duration::from_secs(30), |d| {
        let v = d.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : '';",
            vec![json!(rows_css)],
        )?;
        Ok(v.as_str().filter(|t| !t.is_empty()).map(|_| ()))
    });
    type_in_terminal(wd, &format!("echo term-$((6*7)){}", keys::ENTER));
    wd.wait_text(&rows_css, "term-42");
    wd.shot("terminal");
    wd.click(&tid("details-close"));
    wd.wait_gone(&tid("tab-terminal"));

    // Stop (busybox httpd as PID 1 ignores SIGTERM: the engine kills it after its timeout).
    click_in(wd, &crow, "action-stop");
    confirm_if_asked(wd);
    wd.wait_until("the container to stop", Duration::from_secs(60), |d| {
        let Some(el) = d.find_all(&crow)?.into_iter().next() else {
            return Ok(None);
        };
        Ok((d.attr_el(&el, "data-state")?.as_deref() == Some("exited")).then_some(()))
    });
    wd.shot("stopped");
    click_in(wd, &crow, "action-remove");
    wd.wait_for(&tid("confirm-ok"));
    wd.shot("confirm-remove");
    wd.click(&tid("confirm-ok"));
    wd.wait_gone(&crow);
    wd.shot("removed");
    let left = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!left.lines().any(|l| l == name), "still there: {left}");
}

// ---- (2) volumes and networks ---------------------------------------------------------

#[test]
fn desktop_volumes_and_networks() {
    if !setup("desktop_volumes_and_networks") {
        return;
    }
    let d = Berthd::start();
    let app = Desktop::launch("volumes-networks", &AppEnv::for_berthd(&d));
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");

    // Speech synthesis runs on the app's silent stand-in for flite (src/speech.rs): voices
    // are listed, an utterance ends, and the page lives on.
    let spoken = wd
        .execute_promise(
            "const voices = speechSynthesis.getVoices().length;\n\
             await new Promise((ok, fail) => {\n\
               const u = new SpeechSynthesisUtterance('berth');\n\
               u.onend = ok;\n\
               u.onerror = (e) => fail(new Error('utterance: ' + e.error));\n\
               speechSynthesis.speak(u);\n\
               setTimeout(() => fail(new Error('no end in 10 s')), 10000);\n\
             });\n\
             return voices;",
            vec![],
        )
        .unwrap_or_else(|e| panic!("{}", wd.failure(&format!("speech: {e}"))));
    assert!(
        matches!(spoken, Ok(Value::Number(ref n)) if n.as_u64().is_some_and(|n| n >= 1)),
        "speech synthesis: {spoken:?}"
    );
    wd.wait_attr(&tid("engine-status"), "data-state", "running");

    app.nav("volumes");
    let vol = "e2e-vol";
    wd.type_into(&tid("volume-name-input"), vol);
    wd.click(&tid("volume-create"));
    let vrow = row("volume-row", "data-name", vol);
    wd.wait_for(&vrow);
    wd.shot("volume-created");
    let vols = d.ok(&["volume", "ls", "-q"]);
    assert!(vols.lines().any(|l| l == vol), "{vols}");
    click_in(wd, &vrow, "volume-remove");
    confirm_if_asked(wd);
    wd.wait_gone(&vrow);
    wd.shot("volume-removed");
    let vols = d.ok(&["volume", "ls", "-q"]);
    assert!(!vols.lines().any(|l| l == vol), "{vols}");

    app.nav("networks");
    let net = "e2e-net";
    // Outside every test slot's bridge and pool (10.210.n/24, 10.22x.*), unique per slot.
    let subnet = format!("10.250.{}.0/24", d.slot.n);
    wd.type_into(&tid("network-name-input"), net);
    wd.type_into(&tid("network-subnet-input"), &subnet);
    wd.click(&tid("network-create"));
    let nrow = row("network-row", "data-name", net);
    wd.wait_for(&nrow);
    wd.wait_text(&nrow, &subnet);
    wd.shot("network-created");
    let got = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        net,
    ]);
    assert_eq!(got.trim(), subnet);
    click_in(wd, &nrow, "network-remove");
    confirm_if_asked(wd);
    wd.wait_gone(&nrow);
    wd.shot("network-removed");
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|l| l == net), "{nets}");
}

// ---- (2b) tag and push to a registry that wants a login ---------------------------------

#[test]
fn desktop_tag_push_with_login() {
    if !setup("desktop_tag_push_with_login") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let reg = Registry::start_with_htpasswd();
    let target = format!("{}/pushed/app:v1", reg.host());
    // Credentials go to a private Docker config, never ~/.docker.
    let docker_config = tempfile::tempdir().unwrap();
    let mut env = AppEnv::for_berthd(&d);
    env.set("DOCKER_CONFIG", &docker_config.path().display().to_string());
    let app = Desktop::launch("push", &env);
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");

    app.nav("images");
    let src = format!("{}[data-repo=\"busybox\"]", tid("image-row"));
    wd.wait_for(&src);
    click_in(wd, &src, "image-tag");
    wd.type_into(&tid("tag-input"), &target);
    wd.click(&tid("tag-submit"));
    let tagged = format!(
        "{}[data-repo=\"{}/pushed/app\"][data-tag=\"v1\"]",
        tid("image-row"),
        reg.host()
    );
    wd.wait_for(&tagged);
    wd.shot("tagged");

    // Not logged in: the registry refuses, and the dialog asks for credentials.
    click_in(wd, &tagged, "image-push");
    wd.click(&tid("push-submit"));
    wd.wait_for_within(&tid("login-username"), Duration::from_secs(60));
    wd.shot("login-asked");
    wd.type_into(&tid("login-username"), berth_tests::services::TEST_USER);
    wd.type_into(&tid("login-password"), berth_tests::services::TEST_PASSWORD);
    // Toasts last 4 s, less than a poll can take on a loaded machine: the page records every
    // toast it shows from here on.
    wd.execute(
        "window.__toastsSeen = [];\n\
         const note = () => document.querySelectorAll('[data-testid=\"toast\"]').forEach((t) => {\n\
           const s = t.dataset.kind + ': ' + t.textContent.trim();\n\
           if (!window.__toastsSeen.includes(s)) window.__toastsSeen.push(s);\n\
         });\n\
         new MutationObserver(note).observe(document.body, { childList: true, subtree: true, characterData: true });",
        vec![],
    )
    .unwrap_or_else(|e| panic!("{}", wd.failure(&format!("watching toasts: {e}"))));
    wd.click(&tid("login-submit"));
    // After the login the push runs again, with per-layer progress, and succeeds.
    let done = format!("{}[data-phase=\"done\"]", tid("push-progress"));
    wd.wait_for_within(&done, Duration::from_secs(60));
    wd.wait_until("the success toast", Duration::from_secs(10), |d| {
        let v = d.execute("return window.__toastsSeen || [];", vec![])?;
        let seen: Vec<String> = serde_json::from_value(v).unwrap_or_default();
        Ok(seen
            .iter()
            .any(|t| t.starts_with("success:") && t.contains("Pushed"))
            .then_some(()))
    });
    wd.shot("pushed");
    let layers = wd.find_all(&tid("layer-progress")).unwrap_or_default();
    assert!(
        !layers.is_empty(),
        "{}",
        wd.failure("no per-layer push progress")
    );

    // The credentials were saved as docker login saves them, and the registry has the tag.
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(docker_config.path().join("config.json")).unwrap(),
    )
    .unwrap();
    assert!(cfg["auths"][&reg.host()]["auth"].is_string(), "{cfg}");
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", "--creds"])
        .arg(format!(
            "{}:{}",
            berth_tests::services::TEST_USER,
            berth_tests::services::TEST_PASSWORD
        ))
        .arg(format!("docker://{target}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the registry does not have {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- (2c) Build… a folder: live steps, cache hits, a Dockerfile error ------------------

/// Sets the page's theme the way the Settings select does (localStorage + `<html data-theme>`).
fn set_theme(wd: &WebDriver, theme: &str) {
    wd.execute(
        "localStorage.setItem('berth.theme', arguments[0]); document.documentElement.dataset.theme = arguments[0];",
        vec![json!(theme)],
    )
    .unwrap();
}

/// The `textContent` of the first `css` element (WebKitWebDriver's element text leaves out
/// text clipped by `text-overflow: ellipsis`, as the log's step rows are when long).
fn text_content(wd: &WebDriver, css: &str) -> String {
    wd.wait_for(css);
    wd.execute(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
        vec![json!(css)],
    )
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[test]
fn desktop_build_image() {
    if !setup("desktop_build_image") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\nCMD [\"cat\",\"/hello.txt\"]\n",
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("hello.txt"),
        "hello from the desktop build\n",
    )
    .unwrap();
    // Left out of the context by .dockerignore: COPY . would fail the test if it were sent.
    std::fs::write(ctx.path().join(".dockerignore"), "*.secret\n").unwrap();
    std::fs::write(ctx.path().join("key.secret"), "do not send").unwrap();
    let env = AppEnv::for_berthd(&d);
    let app = Desktop::launch("build", &env);
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    app.nav("images");

    wd.click(&tid("build-open"));
    wd.wait_for(&tid("build-dialog"));
    wd.type_into(&tid("build-folder"), &ctx.path().display().to_string());
    wd.type_into(&tid("build-tag"), "built/hello:1");
    wd.shot("build-form");
    wd.click(&tid("build-submit"));
    wd.wait_for_within(&tid("build-done"), Duration::from_secs(180));
    wd.shot("built");
    let steps = wd.find_all(&tid("build-step")).unwrap();
    assert_eq!(steps.len(), 4, "{}", wd.failure("four steps in the log"));
    let log = text_content(wd, &tid("build-log"));
    for needle in [
        "FROM busybox",
        "COPY hello.txt /",
        "RUN cat /hello.txt",
        "hello from the desktop build",
    ] {
        assert!(log.contains(needle), "the log lacks {needle:?}: {log}");
    }
    // Every step shows its time; the first build had nothing cached.
    assert_eq!(wd.count(&tid("build-step-time")), 4, "{log}");
    assert_eq!(wd.count(&tid("build-step-cached")), 0, "{log}");
    let id = wd.attr(&tid("build-done"), "data-id").unwrap_or_default();
    assert!(id.starts_with("sha256:"), "{id}");
    // The context had the Dockerfile, .dockerignore and hello.txt, not key.secret.
    let dialog = wd.text(&tid("build-dialog"));
    assert!(dialog.contains("context: 3 files"), "{dialog}");

    // Again: the steps after FROM come from the cache and say so.
    wd.click(&tid("build-submit"));
    wd.wait_until(
        "a second build with cache hits",
        Duration::from_secs(120),
        |d| {
            let done = !d.find_all(&tid("build-done"))?.is_empty();
            let cached = d.find_all(&format!("{}[data-cached=\"true\"]", tid("build-step")))?;
            Ok((done && cached.len() >= 2).then_some(()))
        },
    );
    let cached_run = format!("{}[data-n=\"3\"][data-cached=\"true\"]", tid("build-step"));
    assert_eq!(wd.count(&cached_run), 1, "{}", wd.failure("RUN cached"));
    assert!(wd.count(&tid("build-step-cached")) >= 2);
    assert_eq!(
        wd.attr(&tid("build-done"), "data-id").unwrap_or_default(),
        id,
        "a fully cached build makes the same image"
    );
    wd.shot("rebuilt-cached");
    set_theme(wd, "dark");
    wd.shot("rebuilt-cached-dark");
    set_theme(wd, "light");

    // Show image: the dialog closes, and the list has the image selected under its tag.
    wd.click(&tid("build-show-image"));
    wd.wait_gone(&tid("build-dialog"));
    let landed = format!(
        "{}[data-repo=\"built/hello\"][data-tag=\"1\"][data-selected=\"true\"]",
        tid("image-row")
    );
    wd.wait_for(&landed);
    assert_eq!(wd.attr(&landed, "data-id").unwrap_or_default(), id);
    wd.shot("landed");
    let out = d.ok(&["image", "inspect", "--format", "{{.Id}}", "built/hello:1"]);
    assert_eq!(out.trim(), id);
    let out = d.ok(&["run", "--rm", "built/hello:1"]);
    assert_eq!(out.trim(), "hello from the desktop build");

    // A Dockerfile error: the panel names line 2, marks the instruction and suggests.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("Dockerfile"), "FROM busybox\nWORK /app\n").unwrap();
    wd.click(&tid("build-open"));
    wd.type_into(&tid("build-folder"), &bad.path().display().to_string());
    wd.click(&tid("build-submit"));
    wd.wait_for_within(&tid("build-error"), Duration::from_secs(60));
    assert_eq!(
        wd.attr(&tid("build-error"), "data-line").as_deref(),
        Some("2")
    );
    assert!(wd
        .text(&tid("build-error-location"))
        .contains("Dockerfile, line 2"));
    assert_eq!(wd.text(&tid("build-error-mark")), "WORK");
    assert!(wd.text(&tid("build-error-source")).contains("WORK /app"));
    let suggestion = wd.text(&tid("build-error-suggestion"));
    assert!(
        suggestion.to_lowercase().contains("did you mean workdir"),
        "{suggestion}"
    );
    wd.shot("dockerfile-error");
    set_theme(wd, "dark");
    wd.shot("dockerfile-error-dark");
    set_theme(wd, "light");

    // A folder that does not exist is refused before anything starts, naming the path.
    wd.type_into(&tid("build-folder"), "/nonexistent/berth-build-ctx");
    wd.click(&tid("build-submit"));
    let e = wd.wait_text(&tid("build-form-error"), "/nonexistent/berth-build-ctx");
    assert!(e.contains("cannot be opened"), "{e}");
}

// ---- (3) a registry mirror set in Settings serves a pull -----------------------------

#[test]
fn desktop_registry_mirror() {
    if !setup("desktop_registry_mirror") {
        return;
    }
    let d = Berthd::start();
    let mirror = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    // Only the mirror holds the image; the registry it mirrors is not even listening. A
    // mirror added in Settings resolves tags by default (as berthd's own default), so the
    // whole pull — tag, manifest, config, layer — must come from the mirror.
    mirror.push_layout(&layout.dir, "mirrored/app:latest");
    let mirror_url = format!("http://127.0.0.1:{}", mirror.port);
    let up_host = format!("127.0.0.1:{}", berth_tests::services::free_port());

    let app = Desktop::launch("mirror", &AppEnv::for_berthd(&d));
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");

    app.nav("settings");
    wd.type_into(&tid("registry-input"), &up_host);
    wd.click(&tid("registry-add"));
    let section = row("registry-section", "data-registry", &up_host);
    wd.wait_for(&section);
    type_in(wd, &section, "mirror-url-input", &mirror_url);
    click_in(wd, &section, "mirror-add");
    let mrow = format!(
        "{section} [data-testid=\"mirror-row\"][data-url*=\"127.0.0.1:{}\"]",
        mirror.port
    );
    wd.wait_for(&mrow);
    // Test: in the mirror's row if it has its own button, else the section's.
    let in_row = wd
        .find_all(&format!("{mrow} {}", tid("mirror-test")))
        .unwrap_or_default();
    if in_row.is_empty() {
        click_in(wd, &section, "mirror-test");
    } else {
        wd.click_el(&in_row[0]).unwrap();
    }
    wd.wait_attr(&tid("probe-result"), "data-ok", "true");
    wd.shot("probe-ok");
    wd.click(&tid("settings-save"));

    // daemon.json on disk now maps the upstream to the mirror, and kept the other keys.
    let cfg = d.dir.path().join("daemon.json");
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let v: Value = loop {
        last = std::fs::read_to_string(&cfg).unwrap_or(last);
        if let Ok(v) = serde_json::from_str::<Value>(&last) {
            let listed = v["registry-mirrors-by-host"][&up_host]
                .as_array()
                .is_some_and(|a| {
                    a.iter().any(|m| {
                        m.as_str()
                            .or_else(|| m["url"].as_str())
                            .is_some_and(|u| u.contains(&format!("127.0.0.1:{}", mirror.port)))
                    })
                });
            if listed {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            wd.failure(&format!("daemon.json never listed the mirror: {last}"))
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        v["bridge"],
        json!(d.slot.bridge()),
        "network keys kept: {v}"
    );
    eprintln!(
        "daemon.json registry-mirrors-by-host: {}",
        v["registry-mirrors-by-host"]
    );
    wd.shot("saved");

    // A pull of the upstream's image is served by the mirror.
    app.nav("images");
    let image = format!("{up_host}/mirrored/app:latest");
    wd.type_into(&tid("pull-input"), &image);
    wd.click(&tid("pull-button"));
    let image_row = format!("{}[data-repo$=\"/mirrored/app\"]", tid("image-row"));
    wd.wait_for_within(&image_row, Duration::from_secs(90));
    wd.shot("pulled");

    app.nav("settings");
    let served = format!(
        "{}[data-endpoint*=\"127.0.0.1:{}\"]",
        tid("served-row"),
        mirror.port
    );
    wd.wait_for_within(&served, Duration::from_secs(30));
    wd.shot("served-by-mirror");
    // Every piece came from the mirror: the layer, the config, and the manifest.
    let rows = wd.find_all(&tid("served-row")).unwrap_or_default();
    assert!(
        rows.len() >= 3,
        "{}",
        wd.failure("fewer than 3 served rows")
    );
    for r in &rows {
        let endpoint = wd
            .attr_el(r, "data-endpoint")
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(
            endpoint.contains(&format!("127.0.0.1:{}", mirror.port)),
            "{}",
            wd.failure(&format!(
                "a piece was served by {endpoint:?}, not the mirror"
            ))
        );
    }
    for (what, digest) in [
        ("layer", &layout.layer_digest),
        ("config", &layout.config_digest),
    ] {
        let css = format!("{}[data-digest=\"{digest}\"]", tid("served-row"));
        let endpoint = wd.attr(&css, "data-endpoint").unwrap_or_default();
        assert!(
            endpoint.contains(&format!("127.0.0.1:{}", mirror.port)),
            "{what} {digest} served by {endpoint:?}, not the mirror {mirror_url}"
        );
    }
}

// ---- (4) the engine stopped and started from the tray and the buttons ----------------

#[test]
fn desktop_engine_stop_start() {
    if !setup("desktop_engine_stop_start") {
        return;
    }
    let mut d = Berthd::start();
    let guard = AppBerthdGuard {
        pidfile: d.dir.path().join("run/berthd.pid"),
        fixture_pid: d.pid(),
    };
    let app = Desktop::launch("engine", &AppEnv::for_berthd(&d));
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    wd.shot("running");

    // The tray's Stop (no tray host under Xvfb: the same handler, through tray_action).
    if let Err(e) = app.invoke("tray_action", json!({"action": "stop"})) {
        panic!("{}", wd.failure(&format!("tray_action stop: {e}")));
    }
    wd.wait_attr(&tid("engine-status"), "data-state", "stopped");
    let banner = wd.wait_for(&tid("engine-down"));
    let text = wd.text_el(&banner).unwrap();
    let sock = d.sock.display().to_string();
    assert!(text.contains(&sock), "engine-down names {sock}: {text:?}");
    wd.shot("stopped-by-tray");
    // The fixture's berthd really exited.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(Ok(Some(_))) = d.child.as_mut().map(|c| c.try_wait()) {
            break;
        }
        assert!(Instant::now() < deadline, "berthd still running after stop");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The tray's Start: the app starts berthd itself, with the flags it was given.
    if let Err(e) = app.invoke("tray_action", json!({"action": "start"})) {
        panic!("{}", wd.failure(&format!("tray_action start: {e}")));
    }
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    wd.wait_gone(&tid("engine-down"));
    wd.shot("started-by-tray");
    let (st, body) = d.raw("GET", "/_ping", b"");
    assert_eq!((st, body.trim()), (200, "OK"));
    let pid: u32 = std::fs::read_to_string(&guard.pidfile)
        .expect("berthd.pid in the exec root")
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("--data-root") && cmdline.contains(&d.data_root().display().to_string()),
        "app-started berthd: {cmdline}"
    );

    // The UI's buttons do the same.
    wd.click(&tid("engine-stop"));
    confirm_if_asked(wd);
    wd.wait_attr(&tid("engine-status"), "data-state", "stopped");
    wd.wait_for(&tid("engine-down"));
    wd.shot("stopped-by-button");
    let start_in_banner = format!("{} {}", tid("engine-down"), tid("engine-start"));
    if wd.count(&start_in_banner) > 0 {
        wd.click(&start_in_banner);
    } else {
        wd.click(&tid("engine-start"));
    }
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    wd.shot("started-by-button");
    let (st, _) = d.raw("GET", "/_ping", b"");
    assert_eq!(st, 200);

    drop(app);
    assert!(guard.stop().is_some(), "no app-started berthd to stop");
    // The fixture's own process is gone: its drop must not wait for it.
    if let Some(mut c) = d.child.take() {
        let _ = c.wait();
    }
}

// ---- (5) Compose: open a project, edit .env, Up, published port, logs, Down ----------

/// The engine's containers and networks of compose project `project` (by its label), as
/// `(containers, networks)` names.
fn compose_leftovers(d: &Berthd, project: &str) -> (Vec<String>, Vec<String>) {
    let (st, body) = d.raw("GET", "/containers/json?all=1", b"");
    assert_eq!(st, 200, "{body}");
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    let containers = list
        .iter()
        .filter(|c| c["Labels"]["com.docker.compose.project"].as_str() == Some(project))
        .map(|c| c["Names"][0].as_str().unwrap_or("").to_string())
        .collect();
    let (st, body) = d.raw("GET", "/networks", b"");
    assert_eq!(st, 200, "{body}");
    let nets: Vec<Value> = serde_json::from_str(&body).unwrap();
    let networks = nets
        .iter()
        .filter(|n| {
            n["Labels"]["com.docker.compose.project"].as_str() == Some(project)
                || n["Name"].as_str() == Some(&format!("{project}_default"))
        })
        .map(|n| n["Name"].as_str().unwrap_or("").to_string())
        .collect();
    (containers, networks)
}

#[test]
fn desktop_compose_up_down() {
    if !setup("desktop_compose_up_down") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("e2estack");
    std::fs::create_dir(&dir).unwrap();
    // The published port comes from .env; the page's .env editor changes it before Up.
    let (file_port, port) = (free_port(), free_port());
    std::fs::write(
        dir.join("compose.yaml"),
        r#"services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-compose > /www/index.html && echo web-ready && exec httpd -f -p 8080 -h /www"]
    ports:
      - "${WEB_PORT}:8080"
    depends_on:
      - db
  db:
    image: busybox:latest
    command: ["sh", "-c", "echo db-ready && exec sleep 3600"]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join(".env"),
        format!("# the web port on this machine\nWEB_PORT={file_port}\n"),
    )
    .unwrap();
    let project = "e2estack";

    let app = Desktop::launch("compose", &AppEnv::for_berthd(&d));
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    // Projects opened by earlier runs of the app are remembered in its web storage.
    wd.execute("localStorage.removeItem('berth.compose.projects');", vec![])
        .unwrap();
    app.nav("compose");
    wd.wait_text(&tid("empty-state"), "No compose projects yet");
    wd.shot("empty");

    // Open the folder.
    wd.click(&tid("compose-open"));
    wd.wait_for(&tid("compose-open-dialog"));
    wd.type_into(&tid("compose-open-path"), &dir.display().to_string());
    wd.shot("open-dialog");
    wd.click(&tid("compose-open-submit"));
    wd.wait_gone(&tid("compose-open-dialog"));
    wd.wait_text(&tid("compose-project-name"), project);
    let svc = |s: &str| row("compose-service-row", "data-service", s);
    wd.wait_attr(&svc("web"), "data-state", "missing");
    wd.wait_attr(&svc("db"), "data-state", "missing");

    // The .env editor: WEB_PORT from the file, changed for this Up.
    wd.click(&tid("compose-tab-env"));
    let env_row = row("compose-env-row", "data-key", "WEB_PORT");
    wd.wait_for(&env_row);
    let value = wd
        .find_in(&wd.find(&env_row).unwrap(), &tid("compose-env-value"))
        .unwrap();
    assert_eq!(
        wd.prop_el(&value, "value").unwrap(),
        json!(file_port.to_string())
    );
    type_in(wd, &env_row, "compose-env-value", &port.to_string());
    wd.wait_text(&tid("compose-up-overrides"), "+1");
    wd.shot("env-edited");

    // Up: the progress panel, then both services running (the table follows the events).
    wd.click(&tid("compose-up"));
    wd.wait_for(&tid("compose-activity"));
    wd.wait_until("Up to finish", Duration::from_secs(120), |d| {
        let Some(el) = d.find_all(&tid("compose-activity"))?.into_iter().next() else {
            return Ok(None);
        };
        Ok(match d.attr_el(&el, "data-phase")?.as_deref() {
            Some("done") => Some(()),
            Some("error") => panic!("{}", d.failure("Up failed")),
            _ => None,
        })
    });
    wd.wait_attr(&svc("web"), "data-state", "running");
    wd.wait_attr(&svc("db"), "data-state", "running");
    let progress = text_content(wd, &tid("compose-activity"));
    for needle in [
        format!("{project}_default"),
        format!("{project}-web-1"),
        format!("{project}-db-1"),
        "Started".to_string(),
    ] {
        assert!(
            progress.contains(&needle),
            "activity lacks {needle}: {progress}"
        );
    }
    wd.shot("up");
    // The edited port is the one published, and it answers.
    let link = wd
        .find_in(&wd.find(&svc("web")).unwrap(), &tid("compose-port-link"))
        .and_then(|l| wd.text_el(&l))
        .unwrap_or_else(|e| panic!("{}", wd.failure(&format!("compose-port-link: {e}"))));
    assert!(
        link.starts_with(&port.to_string()),
        "port link {link:?}, wanted {port}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        match http_status_line(port) {
            Ok(l) => break l,
            Err(e) if Instant::now() > deadline => panic!("port {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert!(served.contains("200"), "{served}");
    assert!(
        http_status_line(file_port).is_err(),
        "the file's port {file_port} answers too"
    );

    // Merged logs, one prefix per service.
    wd.click(&tid("compose-tab-logs"));
    wd.wait_text_within(&tid("compose-logs"), "web-ready", Duration::from_secs(30));
    wd.wait_text(&tid("compose-logs"), "db-ready");
    wd.shot("logs");
    set_theme(wd, "dark");
    wd.shot("logs-dark");
    set_theme(wd, "light");

    // Save writes the edited value to .env, keeping its comment.
    wd.click(&tid("compose-tab-env"));
    wd.click(&tid("compose-env-save"));
    wd.wait_gone(&tid("compose-up-overrides"));
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert_eq!(
        env,
        format!("# the web port on this machine\nWEB_PORT={port}\n")
    );

    // The Containers page groups the stack under its project.
    app.nav("containers");
    wd.wait_for(&row("group-row", "data-project", project));
    wd.shot("containers-grouped");
    app.nav("compose");
    wd.wait_attr(&svc("web"), "data-state", "running");

    // Down, confirmed: containers and network gone.
    wd.click(&tid("compose-down"));
    wd.wait_for(&tid("compose-down-dialog"));
    wd.shot("down-confirm");
    set_theme(wd, "dark");
    wd.shot("down-confirm-dark");
    set_theme(wd, "light");
    wd.click(&tid("compose-down-confirm"));
    wd.wait_gone(&tid("compose-down-dialog"));
    wd.wait_until("Down to finish", Duration::from_secs(120), |d| {
        let Some(el) = d.find_all(&tid("compose-activity"))?.into_iter().next() else {
            return Ok(None);
        };
        let label = d.text_el(&el)?;
        Ok(match d.attr_el(&el, "data-phase")?.as_deref() {
            Some("done") if label.contains("Down") => Some(()),
            Some("error") => panic!("{}", d.failure("Down failed")),
            _ => None,
        })
    });
    wd.wait_attr(&svc("web"), "data-state", "missing");
    wd.wait_attr(&svc("db"), "data-state", "missing");
    wd.shot("down");
    let (containers, networks) = compose_leftovers(&d, project);
    assert!(containers.is_empty(), "containers left: {containers:?}");
    assert!(networks.is_empty(), "networks left: {networks:?}");
    assert!(http_status_line(port).is_err(), "port {port} still answers");
}

// ---- (6) the engine in Berth's VM: Settings → Engine, Start/Stop from the tray -------

/// Stops the test's VM however the test ends (`berth-vm stop`, then its state is removed
/// with the temp dir).
struct VmGuard {
    bin: PathBuf,
    state: PathBuf,
}

impl Drop for VmGuard {
    fn drop(&mut self) {
        if self.state.join("qemu.pid").exists() {
            let _ = std::process::Command::new(&self.bin)
                .args(["stop", "--state-dir"])
                .arg(&self.state)
                .output();
        }
    }
}

#[test]
fn desktop_vm_engine() {
    let test = "desktop_vm_engine";
    // Once in three CI runs qemu exited ~2 s into the app's boot with an empty console (not
    // yet understood; tests/tests/vm.rs boots the same image reliably): opt-in until fixed.
    if std::env::var_os("BERTH_TEST_DESKTOP_VM").is_none() {
        println!("skipped: {test}: set BERTH_TEST_DESKTOP_VM=1 (flaky VM start from the app, see docs/desktop.md)");
        return;
    }
    if !setup(test) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let image = std::env::var_os("BERTH_VM_IMAGE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("packaging/vm/out"));
    if !image.join("vmlinuz-x86_64").is_file() || !image.join("initramfs-x86_64.img").is_file() {
        skip(
            test,
            &format!(
                "the VM image is not built in {} (bash packaging/vm/build.sh)",
                image.display()
            ),
        );
        return;
    }
    if berth_tests::find_in_path("qemu-system-x86_64").is_none()
        || berth_tests::find_in_path("qemu-img").is_none()
    {
        skip(
            test,
            "qemu not installed (apt install qemu-system-x86 qemu-utils)",
        );
        return;
    }
    let vm_bin = std::env::var_os("BERTH_VM_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            ["debug", "release"]
                .iter()
                .map(|p| desktop::target_dir().join(p).join("berth-vm"))
                .find(|p| p.is_file())
        });
    let Some(vm_bin) = vm_bin else {
        skip(test, "berth-vm not built (cargo build -p berth-vm)");
        return;
    };

    // The native engine the app starts with (the default on Linux).
    let d = Berthd::start();
    let tmp = tempfile::Builder::new().prefix("bvm-").tempdir().unwrap();
    let state = tmp.path().join("vm");
    let sock = tmp.path().join("berth.sock");
    let _guard = VmGuard {
        bin: vm_bin.clone(),
        state: state.clone(),
    };
    let mut env = AppEnv::for_berthd(&d);
    env.set("BERTH_VM_STATE_DIR", &state.display().to_string())
        .set("BERTH_VM_SOCKET", &sock.display().to_string())
        // Nested KVM hangs at early boot on this machine: emulate.
        .set("BERTH_VM_ACCEL", "tcg")
        .set("BERTH_VM_IMAGE_DIR", &image.display().to_string())
        .set("BERTH_VM_BIN", &vm_bin.display().to_string())
        .set("BERTH_VM_BOOT_TIMEOUT", "300");
    let app = Desktop::launch("vm", &env);
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    wd.wait_attr(&tid("engine-status"), "data-mode", "native");

    // Settings → Engine: native by default; switch to the VM.
    app.nav("settings");
    wd.wait_attr(&tid("engine-mode"), "data-mode", "native");
    wd.click(&tid("engine-mode-vm"));
    wd.wait_attr(&tid("engine-mode"), "data-mode", "vm");
    wd.wait_attr(&tid("engine-status"), "data-mode", "vm");
    wd.wait_attr(&tid("engine-status"), "data-state", "stopped");
    wd.wait_attr(&tid("vm-state"), "data-state", "not_created");
    wd.wait_attr(&tid("vm-accel"), "data-accel", "tcg");
    wd.wait_attr(
        &tid("vm-socket"),
        "data-socket",
        &sock.display().to_string(),
    );

    // 2 CPUs, 1 GiB: Apply saves them for the VM Start creates.
    wd.set_value(&tid("vm-cpus"), "2");
    wd.set_value(&tid("vm-memory-unit"), "MiB");
    wd.set_value(&tid("vm-memory"), "1024");
    wd.set_value(&tid("vm-disk"), "4");
    wd.click(&tid("vm-apply"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = app.invoke("vm_settings", json!({})).unwrap();
        if s["memory_mib"] == 1024 && s["disk_gib"] == 4 {
            assert_eq!(s["cpus"], 2);
            assert_eq!(s["mode"], "vm");
            break;
        }
        assert!(Instant::now() < deadline, "Apply did not save: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    wd.shot("vm-settings");

    // Start through the tray's handler (not awaited here: the boot is watched on screen).
    wd.execute(
        "window.__vmStart = 'pending';\
         window.__TAURI_INTERNALS__.invoke('tray_action', {action: 'start'})\
           .then(() => { window.__vmStart = 'ok'; })\
           .catch((e) => { window.__vmStart = 'error: ' + JSON.stringify(e); });",
        vec![],
    )
    .unwrap();
    let label = wd.wait_text_within(
        &tid("engine-status"),
        "VM starting",
        Duration::from_secs(60),
    );
    eprintln!("status line while booting: {label:?}");
    // The boot's progress: seconds, then the guest init's steps.
    // textContent (the label is ellipsised on screen).
    let status_text = |d: &WebDriver| -> Result<String, berth_tests::webdriver::WdError> {
        let v = d.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            vec![json!(tid("engine-status"))],
        )?;
        Ok(v.as_str().unwrap_or("").to_string())
    };
    let progress = wd.wait_until(
        "boot progress in the status line",
        Duration::from_secs(300),
        |d| {
            let t = status_text(d)?;
            if t.contains("Engine running") {
                return Ok(Some(String::new()));
            }
            Ok((t.contains("booting,") && t.contains(" s)")).then_some(t))
        },
    );
    if !progress.is_empty() {
        eprintln!("boot progress: {progress:?}");
        wd.shot("vm-booting");
    }
    let boot_started = Instant::now();
    wd.wait_until("the VM's engine running", Duration::from_secs(400), |d| {
        let s = d.execute("return window.__vmStart;", vec![])?;
        if let Some(e) = s.as_str().filter(|s| s.starts_with("error")) {
            panic!("{}", d.failure(&format!("tray_action start: {e}")));
        }
        let Some(el) = d.find_all(&tid("engine-status"))?.into_iter().next() else {
            return Ok(None);
        };
        Ok((d.attr_el(&el, "data-state")?.as_deref() == Some("running")).then_some(()))
    });
    eprintln!(
        "VM running {:?} after the progress was seen",
        boot_started.elapsed()
    );
    let text = status_text(wd).unwrap();
    assert!(
        text.contains("Engine running · VM"),
        "status line: {text:?}"
    );
    wd.wait_attr(&tid("vm-state"), "data-state", "running");
    wd.shot("vm-running");
    // The VM was created with the settings' resources and serves the socket.
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (cfg["cpus"].clone(), cfg["memory_mib"].clone()),
        (json!(2), json!(1024))
    );
    let status = app.invoke("engine_status", json!({})).unwrap();
    assert_eq!(status["host"], format!("unix://{}", sock.display()));
    assert_eq!(status["vm"]["state"], "running");
    assert_eq!(status["vm"]["accel"], "tcg");
    // The console log viewer shows the guest's boot.
    wd.click(&tid("vm-logs-toggle"));
    wd.wait_text_within(
        &tid("vm-console"),
        "berth-init: ready",
        Duration::from_secs(20),
    );
    wd.shot("vm-console");
    // Apply is refused while it runs, with why.
    let e = app
        .invoke(
            "vm_apply",
            json!({"resources": {"cpus": 1, "memory_mib": 1024, "disk_gib": 4, "disk_path": ""}}),
        )
        .unwrap_err();
    assert!(e.contains("stop the engine first"), "{e}");

    // The Containers page loads from the VM's engine: a container created there shows.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("the VM's socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(
        out.starts_with("HTTP/1.") && out.contains(" 200 "),
        "_ping through {}: {out:?}",
        sock.display()
    );
    app.nav("containers");
    let rows = app.invoke("containers_list", json!({})).unwrap();
    assert!(rows.is_array(), "containers_list from the VM: {rows}");
    // The native engine's containers are not the VM's: the VM's berthd is a fresh one.
    let info = app.invoke("disk_usage", json!({})).unwrap();
    assert!(info["images"].is_number(), "disk usage from the VM: {info}");
    wd.shot("vm-containers");

    // Stop through the tray's handler: the VM shuts down.
    if let Err(e) = app.invoke("tray_action", json!({"action": "stop"})) {
        panic!("{}", wd.failure(&format!("tray_action stop: {e}")));
    }
    wd.wait_attr(&tid("engine-status"), "data-state", "stopped");
    app.nav("settings");
    wd.wait_attr(&tid("vm-state"), "data-state", "stopped");
    assert!(!state.join("qemu.pid").exists(), "qemu.pid left after stop");
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_err(),
        "the VM's socket still answers after stop"
    );
    let st = app.invoke("vm_settings", json!({})).unwrap();
    assert_eq!(st["state"], "stopped", "{st}");
    wd.shot("vm-stopped");
    // The native engine was left alone all along.
    let (code, _) = d.raw("GET", "/_ping", b"");
    assert_eq!(code, 200);
}

// ---- (7) Compose → Deploy to Kubernetes, against the fake API server ------------------

/// The Compose page's Deploy to Kubernetes dialog, end to end: the app reads the
/// kubeconfig of a fake Kubernetes API server (tests/src/fakekube.rs) from `KUBECONFIG`,
/// pins the project's image by the engine's registry digest (pushed to and pulled back from
/// a loopback registry), applies the objects server-side and follows the scripted rollout;
/// the status view lists what the server holds, and Delete from cluster removes it (the
/// volume claim stays unless asked).
#[test]
fn desktop_kube_deploy() {
    if !setup("desktop_kube_deploy") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    // An image whose RepoDigest the engine knows: pushed to a loopback registry, pulled back.
    let reg = Registry::start();
    let image = format!("{}/e2e/web:1", reg.host());
    d.ok(&["tag", "busybox:latest", &image]);
    d.ok(&["push", &image]);
    d.ok(&["rmi", &image]);
    d.ok(&["pull", &image]);
    let (st, body) = d.raw("GET", &format!("/images/{image}/json"), b"");
    assert_eq!(st, 200, "{body}");
    let inspect: Value = serde_json::from_str(&body).unwrap();
    let pinned = inspect["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|r| r.starts_with(&format!("{}/e2e/web@sha256:", reg.host())))
        .unwrap_or_else(|| panic!("no registry digest for {image}: {inspect}"))
        .to_string();

    let fake = FakeKube::start();
    // Slow enough to see the bars move (the app polls every 0.7 s).
    fake.script("web", Script::ready(8).logs(&["web listening on :80"]));
    fake.script("worker", Script::ready(4));
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(tmp.path());
    let dir = tmp.path().join("kubeapp");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {image}\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n    ports:\n      - \"8080:80\"\n  worker:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    volumes:\n      - data:/data\nvolumes:\n  data:\n"
        ),
    )
    .unwrap();
    let project = "kubeapp";

    let mut env = AppEnv::for_berthd(&d);
    env.set("KUBECONFIG", &kubeconfig.display().to_string());
    let app = Desktop::launch("kube", &env);
    let wd = &app.wd;
    wd.wait_attr(&tid("engine-status"), "data-state", "running");
    wd.execute(
        "localStorage.removeItem('berth.compose.projects'); localStorage.removeItem('berth.kube.targets');",
        vec![],
    )
    .unwrap();
    app.nav("compose");
    wd.click(&tid("compose-open"));
    wd.type_into(&tid("compose-open-path"), &dir.display().to_string());
    wd.click(&tid("compose-open-submit"));
    wd.wait_gone(&tid("compose-open-dialog"));
    wd.wait_text(&tid("compose-project-name"), project);
    wd.wait_for(&row("compose-service-row", "data-service", "worker"));
    wd.shot("project");

    // The dialog: the kubeconfig's current context and its namespace; another context
    // brings its own; a namespace typed here is created (applied) first.
    wd.click(&tid("compose-kube-deploy"));
    wd.wait_for(&tid("kube-form"));
    let value = |css: &str| {
        let el = wd.find(css).unwrap();
        wd.prop_el(&el, "value").unwrap()
    };
    assert_eq!(value(&tid("kube-context")), json!("fake"));
    assert_eq!(value(&tid("kube-namespace")), json!("default"));
    wd.wait_text(&tid("kube-context-server"), &fake.url());
    wd.set_value(&tid("kube-context"), "fake-apps");
    wd.wait_until(
        "the namespace to follow the context",
        wd.default_timeout,
        |d| {
            let el = d.find(&tid("kube-namespace"))?;
            Ok((d.prop_el(&el, "value")? == json!("apps")).then_some(()))
        },
    );
    wd.type_into(&tid("kube-namespace"), "Kube_App");
    wd.wait_text(
        &tid("kube-namespace-error"),
        "use lowercase letters: namespaces are lowercase",
    );
    let submit = wd.find(&tid("kube-deploy-submit")).unwrap();
    assert_eq!(wd.prop_el(&submit, "disabled").unwrap(), json!(true));
    wd.type_into(&tid("kube-namespace"), "kubeapp");
    wd.wait_gone(&tid("kube-namespace-error"));
    wd.shot("form");

    fake.clear_requests();
    wd.click(&tid("kube-deploy-submit"));
    // In progress: web's bar is there and not done yet.
    let web = row("kube-rollout", "data-deployment", "web");
    wd.wait_for_within(&web, Duration::from_secs(60));
    // The controller has seen it and no replica is ready yet (the fake takes 8 polls).
    wd.wait_attr(&web, "data-state", "progressing");
    wd.shot("progress");
    wd.wait_until("the deploy to finish", Duration::from_secs(120), |d| {
        let Some(el) = d.find_all(&tid("kube-progress"))?.into_iter().next() else {
            return Ok(None);
        };
        Ok(match d.attr_el(&el, "data-phase")?.as_deref() {
            Some("done") => Some(()),
            Some("error") => panic!("{}", d.failure("the deploy failed")),
            _ => None,
        })
    });
    wd.wait_attr(&web, "data-state", "available");
    wd.wait_attr(
        &row("kube-rollout", "data-deployment", "worker"),
        "data-state",
        "available",
    );
    wd.wait_text(&tid("kube-deploy-done"), "namespace kubeapp of fake-apps");
    let images = text_content(wd, &tid("kube-progress"));
    assert!(images.contains(&pinned), "{pinned} not shown: {images}");
    wd.shot("done");
    set_theme(wd, "dark");
    wd.shot("done-dark");
    set_theme(wd, "light");

    // What the server got: server-side apply by field manager berth, the new Namespace
    // first, images by digest.
    let reqs = fake.requests();
    let patches: Vec<&berth_tests::fakekube::Recorded> =
        reqs.iter().filter(|r| r.method == "PATCH").collect();
    let paths: Vec<&str> = patches.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/kubeapp",
            "/api/v1/namespaces/kubeapp/persistentvolumeclaims/kubeapp-data",
            "/api/v1/namespaces/kubeapp/services/web",
            "/apis/apps/v1/namespaces/kubeapp/deployments/web",
            "/apis/apps/v1/namespaces/kubeapp/deployments/worker",
        ]
    );
    for r in &patches {
        assert_eq!(r.param("fieldManager"), Some("berth"), "{}", r.path);
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            r.path
        );
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {}", berth_tests::fakekube::TOKEN).as_str())
        );
    }
    let applied: Value = serde_yaml::from_str(
        &patches
            .iter()
            .find(|r| r.path.ends_with("/deployments/web"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0]["image"],
        json!(pinned)
    );

    // The status view: what the server holds.
    wd.click(&tid("kube-show-status"));
    wd.wait_for(&row("kube-status-deployment", "data-name", "web"));
    wd.wait_for(&row("kube-status-deployment", "data-name", "worker"));
    wd.wait_for(&row("kube-status-service", "data-name", "web"));
    wd.wait_for(&row("kube-status-volume", "data-name", "kubeapp-data"));
    assert_eq!(wd.count(&tid("kube-status-pod")), 2, "{}", wd.page_text());
    let deployments = text_content(wd, &row("kube-status-deployment", "data-name", "web"));
    assert!(deployments.contains("1/1"), "{deployments}");
    wd.shot("status");

    // Delete from cluster, confirmed, volumes kept.
    fake.clear_requests();
    wd.click(&tid("kube-delete"));
    wd.wait_for(&tid("kube-delete-box"));
    wd.shot("delete-confirm");
    wd.click(&tid("kube-delete-confirm"));
    wd.wait_text(&tid("kube-delete-kept"), "kubeapp-data");
    wd.wait_until("the status to empty", wd.default_timeout, |d| {
        Ok(d.find_all(&tid("kube-status-deployment"))?
            .is_empty()
            .then_some(()))
    });
    wd.shot("deleted");
    let deletes: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        deletes,
        [
            "/apis/apps/v1/namespaces/kubeapp/deployments/web",
            "/apis/apps/v1/namespaces/kubeapp/deployments/worker",
            "/api/v1/namespaces/kubeapp/services/web",
        ]
    );
    assert!(fake.names("deployments", "kubeapp").is_empty());
    assert_eq!(
        fake.names("persistentvolumeclaims", "kubeapp"),
        ["kubeapp-data"]
    );
    // The namespace stays.
    assert!(fake.object("namespaces", "", "kubeapp").is_some());
}

// ---- how the app's processes are set up (no WebDriver) ----------------------------------

/// The libraries of a GL driver (Mesa's DRI driver and the LLVM it links) mapped in `pid`.
fn gl_driver_maps(pid: u32) -> Vec<String> {
    let mut libs: Vec<String> = mapped_files(pid, |p| {
        p.contains("_dri.so") || p.contains("libLLVM") || p.contains("libEGL_mesa")
    })
    .into_iter()
    .map(|p| p.rsplit('/').next().unwrap_or(&p).to_string())
    .collect();
    libs.sort();
    libs.dedup();
    libs
}

/// The files a process maps whose path passes `keep`, sorted, once each.
fn mapped_files(pid: u32, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut v: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| keep(p))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A berthd holding one created container, with the desktop lock taken, a display, and the
/// app's environment for that engine (with the start-up report on).
fn one_container_app_env() -> (Berthd, desktop::DesktopLock, desktop::Display, AppEnv) {
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    d.ok(&["create", "--name", "listed", "busybox", "true"]);
    let lock = desktop::DesktopLock::take();
    let display = desktop::Display::start();
    let mut env = AppEnv::for_berthd(&d);
    env.set("BERTH_DESKTOP_REPORT", "1");
    (d, lock, display, env)
}

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Starts the app, waits for its first list on screen, and returns it with its web process.
fn start_app_until_listed(display: &desktop::Display, env: &AppEnv) -> (std::process::Child, u32) {
    use std::process::Stdio;
    let app = desktop::app_bin().unwrap();
    let mut c = display.command(&app, env);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let t = Instant::now();
    let mut child = c.spawn().expect("start berth-desktop");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let listed = desktop::read_first_list(out, t, Duration::from_secs(90), seen.clone());
    if listed.is_none() {
        desktop::kill_group(child.id(), Duration::from_secs(5));
        let _ = child.wait();
        panic!(
            "the app reported no first list in 90 s; stdout: {:?}",
            seen.lock().unwrap()
        );
    }
    let web = desktop::process_tree(child.id())
        .into_iter()
        .find(|p| desktop::proc_stat(*p).is_some_and(|s| s.comm.starts_with("WebKitWebProces")))
        .expect("a WebKitWebProcess under the app");
    (child, web)
}

/// Without a GPU, the app's own process never loads a GL driver (it draws nothing with GL
/// once compositing is off; Mesa's llvmpipe and LLVM cost it ~24 MB), while its web process
/// has EGL and draws the list; the web process runs without JavaScriptCore's optimising
/// tiers. What the user set wins: their own EGL vendor list brings the driver back.
#[test]
fn desktop_app_process_keeps_the_gl_driver_out() {
    let test = "desktop_app_process_keeps_the_gl_driver_out";
    if !desktop::require_desktop(test, false) {
        return;
    }
    if render_node_present() {
        skip(
            test,
            "this machine has a GPU render node: the app leaves GL alone there",
        );
        return;
    }
    let (_d, _lock, display, mut env) = one_container_app_env();

    let (mut app, web) = start_app_until_listed(&display, &env);
    let app_gl = gl_driver_maps(app.id());
    let web_gl = gl_driver_maps(web);
    let web_env = environ(web);
    desktop::kill_group(app.id(), Duration::from_secs(5));
    let _ = app.wait();
    assert!(
        app_gl.is_empty(),
        "the app process maps a GL driver: {app_gl:?}"
    );
    assert!(
        web_gl.iter().any(|l| l.contains("_dri.so")),
        "the web process has no GL driver (its EGL display is needed): {web_gl:?}"
    );
    assert!(
        !web_env
            .iter()
            .any(|v| v.starts_with("__EGL_VENDOR_LIBRARY_FILENAMES=")),
        "the EGL vendor override leaked into the web process"
    );
    assert!(
        web_env.iter().any(|v| v == "JSC_useDFGJIT=0"),
        "the web process runs with the optimising JIT"
    );
    assert!(
        web_env
            .iter()
            .any(|v| v == "JSC_thresholdForJITAfterWarmUp=50000"),
        "the web process compiles after JavaScriptCore's default warm-up: {web_env:?}"
    );

    // The user's own vendor list: left alone, and the app process gets its driver.
    let vendors = ["/usr/share/glvnd/egl_vendor.d/50_mesa.json"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    if let Some(vendors) = vendors {
        env.set("__EGL_VENDOR_LIBRARY_FILENAMES", vendors);
        env.set("JSC_useDFGJIT", "1");
        let (mut app, web) = start_app_until_listed(&display, &env);
        let app_gl = gl_driver_maps(app.id());
        let web_env = environ(web);
        desktop::kill_group(app.id(), Duration::from_secs(5));
        let _ = app.wait();
        assert!(
            app_gl.iter().any(|l| l.contains("_dri.so")),
            "with the user's EGL vendor list the app process should have its driver: {app_gl:?}"
        );
        assert!(
            web_env.iter().any(|v| v == "JSC_useDFGJIT=1"),
            "the user's JSC_useDFGJIT was overridden"
        );
    }
}

/// The files a process maps whose path contains `part`.
fn maps_with(pid: u32, part: &str) -> Vec<String> {
    mapped_files(pid, |p| p.contains(part))
}

#[test]
fn desktop_processes_load_the_speech_stand_in() {
    let test = "desktop_processes_load_the_speech_stand_in";
    if !desktop::require_desktop(test, false) {
        return;
    }
    let (_d, _lock, display, mut env) = one_container_app_env();

    let (mut app, web) = start_app_until_listed(&display, &env);
    let tree = desktop::process_tree(app.id());
    let procs: Vec<(u32, String)> = tree
        .iter()
        .filter_map(|p| desktop::proc_stat(*p).map(|s| (*p, s.comm)))
        .filter(|(_, c)| c.starts_with("berth-desktop") || c.starts_with("WebKit"))
        .collect();
    let seen: Vec<(String, Vec<String>, Vec<String>)> = procs
        .iter()
        .map(|(p, c)| {
            (
                c.clone(),
                maps_with(*p, "libflite"),
                maps_with(*p, "/speech-"),
            )
        })
        .collect();
    let web_env = environ(web);
    desktop::kill_group(app.id(), Duration::from_secs(5));
    let _ = app.wait();
    for name in ["berth-desktop", "WebKitWebProces", "WebKitNetworkP"] {
        assert!(
            seen.iter().any(|(c, _, _)| c.starts_with(name)),
            "no {name} process under the app: {seen:?}"
        );
    }
    for (comm, flite, stand_in) in &seen {
        let real: Vec<&String> = flite.iter().filter(|p| !p.contains("/speech-")).collect();
        assert!(real.is_empty(), "{comm} maps the real flite: {real:?}");
        assert!(
            stand_in.iter().any(|p| p.ends_with("/libflite.so.1")),
            "{comm} does not map the stand-in: {flite:?}"
        );
    }
    let ld = web_env
        .iter()
        .find_map(|v| v.strip_prefix("LD_LIBRARY_PATH="))
        .unwrap_or_else(|| panic!("the web process has no LD_LIBRARY_PATH: {web_env:?}"));
    assert!(ld.contains("/speech-"), "LD_LIBRARY_PATH={ld}");

    // BERTH_DESKTOP_SPEECH=1 keeps WebKit's own voices.
    env.set("BERTH_DESKTOP_SPEECH", "1");
    let (mut app, web) = start_app_until_listed(&display, &env);
    let app_flite = maps_with(app.id(), "libflite_cmu_us_kal");
    let web_flite = maps_with(web, "libflite_cmu_us_kal");
    desktop::kill_group(app.id(), Duration::from_secs(5));
    let _ = app.wait();
    assert!(
        !app_flite.is_empty() && !web_flite.is_empty(),
        "with BERTH_DESKTOP_SPEECH=1 the real voices should load: app {app_flite:?}, web {web_flite:?}"
    );
}

/// Whether the machine has a GPU render node (the app's own test of it).
fn render_node_present() -> bool {
    std::fs::read_dir("/dev/dri")
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false)
}
