//! Berth Desktop benchmark, against a berthd holding BENCH_DESKTOP_CONTAINERS (default 1000)
//! created (not started) containers:
//!
//! a. cold start: the app binary launched directly under Xvfb (no WebDriver) with
//!    BERTH_DESKTOP_REPORT=1; the app prints `berth-desktop: first-list <ms>` (ms since its
//!    process started) once the UI rendered the first container list. Median of
//!    BENCH_DESKTOP_RUNS (default 5), plus the wall time from spawn to reading that line.
//! b. rendering 1000 rows, through WebDriver: `document.body.dataset.firstList` (ms since
//!    the page's navigation start, set by the UI), a re-render of the Containers page
//!    (Images → Containers, timed to the frame after the rows are in the DOM) and a scroll
//!    through the list (requestAnimationFrame intervals).
//! c. idle PSS: the sum of `Pss` (smaps_rollup) over the app and every descendant
//!    (WebKitWebProcess, WebKitNetworkProcess) after BENCH_DESKTOP_IDLE_SECS (default 10) s
//!    idle with the engine running; again over a second engine holding 3 containers; next to
//!    a bare WebKitGTK webview (MiniBrowser on about:blank) measured the same way.
//! d. idle CPU: utime+stime of the same processes over the next BENCH_DESKTOP_IDLE_SECS s,
//!    as % of one core.
//!
//! The figures are printed next to the issue's targets and the published idle footprints
//! of Docker Desktop (~1.1 GB) and OrbStack (~1 GB). Nothing here asserts a time.
//! Run as root: `bash .ci/bench-desktop` (builds release binaries first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bench::{env_or, median};
use berth_tests::berthd::Berthd;
use berth_tests::desktop::{
    self, app_bin, clock_ticks, kill_group, minibrowser, proc_stat, process_tree, pss_kib,
    read_first_list, AppEnv, Desktop, DesktopLock, Display,
};
use berth_tests::webdriver::tid;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DOCKER_DESKTOP_IDLE_MB: f64 = 1100.0;
const ORBSTACK_IDLE_MB: f64 = 1000.0;
/// The second idle measurement: an engine with a handful of containers.
const FEW_CONTAINERS: usize = 3;

/// Create `n` containers with 4 docker CLIs at a time.
fn create_containers(b: &Berthd, n: usize) {
    let next = Arc::new(Mutex::new(0usize));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let next = next.clone();
            s.spawn(move || loop {
                let i = {
                    let mut g = next.lock().unwrap();
                    if *g >= n {
                        return;
                    }
                    *g += 1;
                    *g - 1
                };
                b.ok(&["create", "--name", &format!("c{i:04}"), "busybox", "true"]);
            });
        }
    });
}

/// Sum of Pss (KiB) over `pid`'s tree, and the per-process figures.
fn tree_pss(pid: u32) -> (u64, Vec<(u32, String, u64)>) {
    let mut rows = Vec::new();
    let mut total = 0;
    for p in process_tree(pid) {
        let kib = pss_kib(p).unwrap_or(0);
        let comm = proc_stat(p).map(|s| s.comm).unwrap_or_default();
        total += kib;
        rows.push((p, comm, kib));
    }
    (total, rows)
}

/// CPU of `pid`'s tree over `secs` seconds, in % of one core.
fn tree_cpu_percent(pid: u32, secs: u64) -> f64 {
    let before: BTreeMap<u32, u64> = process_tree(pid)
        .into_iter()
        .filter_map(|p| proc_stat(p).map(|s| (p, s.cpu_ticks)))
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let elapsed = t.elapsed().as_secs_f64();
    let mut ticks = 0u64;
    for p in process_tree(pid) {
        if let Some(s) = proc_stat(p) {
            // A process born during the window counts from zero.
            ticks += s.cpu_ticks - before.get(&p).copied().unwrap_or(0).min(s.cpu_ticks);
        }
    }
    ticks as f64 / clock_ticks() / elapsed * 100.0
}

fn stop(child: &mut Child) {
    kill_group(child.id(), Duration::from_secs(5));
    let _ = child.wait();
}

struct ColdStart {
    reported_ms: Vec<f64>,
    wall_ms: Vec<f64>,
    page_ms: Vec<f64>,
}

/// Launch the app `runs` times; return the timings and the last (still running) app.
fn cold_starts(display: &Display, env: &AppEnv, runs: usize) -> (ColdStart, Child) {
    let app = app_bin().unwrap();
    let mut cs = ColdStart {
        reported_ms: Vec::new(),
        wall_ms: Vec::new(),
        page_ms: Vec::new(),
    };
    let mut last = None;
    for i in 0..runs {
        let log = display.scratch.path().join(format!("app-{i}.log"));
        let mut c = display.command(&app, env);
        c.stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let t = Instant::now();
        let mut child = c.spawn().expect("start berth-desktop");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        match read_first_list(out, t, Duration::from_secs(90), seen.clone()) {
            Some(fl) => {
                cs.reported_ms.push(fl.process_ms);
                cs.wall_ms.push(fl.wall_ms);
                if let Some(p) = fl.page_ms {
                    cs.page_ms.push(p);
                }
                println!(
                    "  run {}: first list at {:.0} ms since process start ({:.0} ms wall since \
                     spawn; {} ms in the page's clock)",
                    i + 1,
                    fl.process_ms,
                    fl.wall_ms,
                    fl.page_ms
                        .map(|p| format!("{p:.0}"))
                        .unwrap_or_else(|| "?".into())
                );
            }
            None => {
                stop(&mut child);
                panic!(
                    "berth-desktop printed no `berth-desktop: first-list <ms>` line in 90 s \
                     (BERTH_DESKTOP_REPORT=1).\nstdout: {:?}\nstderr (tail):\n{}",
                    seen.lock().unwrap(),
                    desktop::tail(&std::fs::read_to_string(&log).unwrap_or_default(), 30)
                );
            }
        }
        if i + 1 == runs {
            last = Some(child);
        } else {
            stop(&mut child);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    (cs, last.unwrap())
}

struct Render {
    first_list_ms: f64,
    rows_in_dom: u64,
    rerender_ms: Vec<f64>,
    scroll_frames: Vec<f64>,
    jump_ms: f64,
    nav: Value,
}

/// (b): through WebDriver, on a fresh app.
fn render(env: &AppEnv) -> Render {
    let mut app = Desktop::launch("bench", env);
    app.wd.default_timeout = Duration::from_secs(60);
    let wd = &app.wd;
    let first = wd.wait_until(
        "document.body.dataset.firstList",
        Duration::from_secs(90),
        |d| {
            let v = d.execute("return document.body.dataset.firstList || null;", vec![])?;
            Ok(v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
        },
    );
    wd.wait_for(&tid("container-row"));
    wd.shot("first-list");
    let nav = wd
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];\n\
             return n ? {responseEnd: n.responseEnd, domInteractive: n.domInteractive,\n\
               domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd} : null;",
            vec![],
        )
        .unwrap_or(Value::Null);
    let rows_in_dom = wd
        .execute(
            "return document.querySelectorAll('[data-testid=\"container-row\"]').length;",
            vec![],
        )
        .unwrap()
        .as_u64()
        .unwrap_or(0);

    // Images → Containers, timed from the click to the frame after the rows are back.
    let mut rerender_ms = Vec::new();
    for _ in 0..5 {
        let r = wd
            .execute_promise(
                r#"
                const frame = () => new Promise(r => requestAnimationFrame(() => r(performance.now())));
                const q = (s) => document.querySelector(s);
                const rows = () => document.querySelectorAll('[data-testid="container-row"]').length;
                q('[data-testid="nav-images"]').click();
                for (let i = 0; rows() > 0; i++) { if (i > 600) throw new Error('rows stayed after leaving'); await frame(); }
                await frame();
                const t0 = performance.now();
                q('[data-testid="nav-containers"]').click();
                for (let i = 0; rows() === 0; i++) { if (i > 1200) throw new Error('no rows after 1200 frames'); await frame(); }
                const t1 = await frame();
                return t1 - t0;
                "#,
                vec![],
            )
            .unwrap();
        match r {
            Ok(v) => rerender_ms.push(v.as_f64().unwrap_or(f64::NAN)),
            Err(e) => panic!("{}", wd.failure(&format!("re-render: {e}"))),
        }
    }
    wd.shot("rerendered");

    // Scroll the list top to bottom in 60 steps (one per frame), then jump back to the top.
    let r = wd
        .execute_promise(
            r#"
            const frame = () => new Promise(r => requestAnimationFrame(() => r(performance.now())));
            let el = document.querySelector('[data-testid="container-row"]');
            while (el && el !== document.body) {
              const s = getComputedStyle(el);
              if (el.scrollHeight > el.clientHeight + 4 && /(auto|scroll)/.test(s.overflowY)) break;
              el = el.parentElement;
            }
            if (!el || el === document.body) el = document.scrollingElement;
            const max = el.scrollHeight - el.clientHeight;
            const frames = [];
            let last = await frame();
            for (let i = 1; i <= 60; i++) {
              el.scrollTop = max * i / 60;
              const t = await frame();
              frames.push(t - last);
              last = t;
            }
            const t0 = performance.now();
            el.scrollTop = 0;
            await frame();
            const t1 = await frame();
            return {frames, jump: t1 - t0, max};
            "#,
            vec![],
        )
        .unwrap()
        .unwrap_or_else(|e| panic!("{}", wd.failure(&format!("scroll: {e}"))));
    wd.shot("scrolled");
    let scroll_frames = r["frames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    Render {
        first_list_ms: first,
        rows_in_dom,
        rerender_ms,
        scroll_frames,
        jump_ms: r["jump"].as_f64().unwrap_or(f64::NAN),
        nav,
    }
}

fn ratio(ours: f64, anchor: f64) -> String {
    format!("{:.2}x", ours / anchor)
}

fn main() {
    if !desktop::require_desktop("bench desktop", false) {
        return;
    }
    let n = env_or("BENCH_DESKTOP_CONTAINERS", 1000);
    let runs = env_or("BENCH_DESKTOP_RUNS", 5).max(1);
    let idle = env_or("BENCH_DESKTOP_IDLE_SECS", 10) as u64;
    let app = app_bin().unwrap();
    println!("berth-desktop: {}", app.display());

    let b = Berthd::start_with_config(Some(r#"{"log-level":"warn"}"#));
    b.load_busybox("busybox:latest");
    let t = Instant::now();
    create_containers(&b, n);
    println!(
        "created {n} containers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let listed = b.ok(&["ps", "-aq"]).lines().count();
    assert_eq!(listed, n, "containers in the engine");

    let mut env = AppEnv::for_berthd(&b);
    env.set("BERTH_DESKTOP_REPORT", "1");

    // (a), (c), (d) and the bare-webview anchor, with the desktop lock held.
    let (cs, pss_kib_total, pss_rows, cpu, anchor, few_kib) = {
        let _lock = DesktopLock::take();
        let display = Display::start();
        println!("cold start ({runs} runs, {n} containers):");
        let (cs, mut app_child) = cold_starts(&display, &env, runs);
        std::thread::sleep(Duration::from_secs(idle));
        let (pss, rows) = tree_pss(app_child.id());
        let cpu = tree_cpu_percent(app_child.id(), idle);
        stop(&mut app_child);

        let anchor = minibrowser().map(|mb| {
            let mut c = display.command(&mb, &AppEnv::default());
            c.arg("about:blank")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = c.spawn().expect("start MiniBrowser");
            std::thread::sleep(Duration::from_secs(idle));
            let (pss, _) = tree_pss(child.id());
            let cpu = tree_cpu_percent(child.id(), idle);
            stop(&mut child);
            (pss, cpu)
        });
        // The same app over an engine with a few containers, as most people's is.
        let few = {
            let small = Berthd::start_with_config(Some(r#"{"log-level":"warn"}"#));
            small.load_busybox("busybox:latest");
            create_containers(&small, FEW_CONTAINERS);
            let mut env = AppEnv::for_berthd(&small);
            env.set("BERTH_DESKTOP_REPORT", "1");
            let (_, mut child) = cold_starts(&display, &env, 1);
            std::thread::sleep(Duration::from_secs(idle));
            let (pss, _) = tree_pss(child.id());
            stop(&mut child);
            pss
        };
        (cs, pss, rows, cpu, anchor, few)
    };

    // (b) needs WebDriver; without it the rest still stands.
    let render = if desktop::missing_prerequisite(true).is_none() {
        Some(render(&env))
    } else {
        println!(
            "render: skipped ({})",
            desktop::missing_prerequisite(true).unwrap()
        );
        None
    };

    let cold = median(&cs.reported_ms);
    let cold_wall = median(&cs.wall_ms);
    let pss_mb = pss_kib_total as f64 / 1024.0;
    println!();
    println!("idle processes (app tree, Pss):");
    for (pid, comm, kib) in &pss_rows {
        println!("  {pid:>8} {comm:<24} {:>8.1} MB", *kib as f64 / 1024.0);
    }
    println!();
    println!(
        "Berth Desktop, {n} containers ({} build)",
        if app.to_string_lossy().contains("/release/") {
            "release"
        } else {
            "debug"
        }
    );
    println!(
        "{:<44} {:>12}   {:<12} anchors",
        "metric", "berth", "target"
    );
    println!(
        "{:<44} {:>9.0} ms   {:<12} first run {:.0} ms",
        format!("(a) cold start to first list (median of {runs})"),
        cold,
        "<= 1000 ms",
        cs.reported_ms[0]
    );
    println!(
        "{:<44} {:>9.0} ms",
        "    wall, spawn to the report line", cold_wall
    );
    if !cs.page_ms.is_empty() {
        println!(
            "{:<44} {:>9.0} ms   {:<12} (page clock, median)",
            format!("(b) {n} rows on screen since navigation"),
            median(&cs.page_ms),
            "<= 200 ms"
        );
    }
    if let Some(r) = &render {
        println!(
            "{:<44} {:>9.0} ms   {:<12} {} rows in the DOM",
            "(b) first list rendered (since navigation)",
            r.first_list_ms,
            "<= 200 ms",
            r.rows_in_dom
        );
        println!(
            "{:<44} {:>9.1} ms   {:<12} median of {}",
            "    re-render of the list (click to frame)",
            median(&r.rerender_ms),
            "<= 200 ms",
            r.rerender_ms.len()
        );
        let worst = r.scroll_frames.iter().cloned().fold(0.0, f64::max);
        let mean = r.scroll_frames.iter().sum::<f64>() / r.scroll_frames.len().max(1) as f64;
        println!(
            "{:<44} {:>9.1} ms   {:<12} worst {worst:.1} ms",
            "    scroll, mean frame interval (60 steps)", mean, "~16.7 ms"
        );
        println!(
            "{:<44} {:>9.1} ms",
            "    jump to the top (two frames)", r.jump_ms
        );
        println!("    navigation timing: {}", r.nav);
    }
    let anchor_txt = |mb: f64| {
        format!(
            "Docker Desktop ~{DOCKER_DESKTOP_IDLE_MB:.0} MB: {}, OrbStack ~{ORBSTACK_IDLE_MB:.0} MB: {}",
            ratio(mb, DOCKER_DESKTOP_IDLE_MB),
            ratio(mb, ORBSTACK_IDLE_MB)
        )
    };
    println!(
        "{:<44} {:>9.1} MB   {:<12} {}",
        format!("(c) idle PSS, app + webkit ({idle} s idle)"),
        pss_mb,
        "<= 200 MB",
        anchor_txt(pss_mb)
    );
    let few_mb = few_kib as f64 / 1024.0;
    println!(
        "{:<44} {:>9.1} MB   {:<12}",
        format!("    the same with {FEW_CONTAINERS} containers"),
        few_mb,
        "<= 200 MB"
    );
    if let Some((apss, _)) = anchor {
        let amb = apss as f64 / 1024.0;
        println!(
            "{:<44} {:>9.1} MB   {:<12} berth / bare = {}",
            "    bare WebKitGTK webview (MiniBrowser)",
            amb,
            "",
            ratio(pss_mb, amb)
        );
    }
    println!(
        "{:<44} {:>9.2} %    {:<12}",
        format!("(d) idle CPU over {idle} s (% of one core)"),
        cpu,
        "~0"
    );
    if let Some((_, acpu)) = anchor {
        println!("{:<44} {:>9.2} %", "    bare WebKitGTK webview", acpu);
    }
    println!(
        "{}",
        json!({
            "containers": n,
            "cold_start_ms": cold,
            "cold_start_wall_ms": cold_wall,
            "first_list_ms": render.as_ref().map(|r| r.first_list_ms),
            "rerender_ms": render.as_ref().map(|r| median(&r.rerender_ms)),
            "idle_pss_mb": pss_mb,
            "idle_pss_few_containers_mb": few_mb,
            "idle_cpu_percent": cpu,
            "bare_webview_pss_mb": anchor.map(|(p, _)| p as f64 / 1024.0),
        })
    );
}
