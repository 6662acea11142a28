//! Startup benchmark: `<rt> --root <tmp> run --bundle <busybox "true"> <id>`
//! for berth-runtime, crun and runc, interleaved, measuring wall time and
//! peak RSS (wait4 rusage: the runtime plus its reaped descendants).
//!
//! Run as root: `cargo bench -p berth-tests --bench runtime_startup`
//! (BENCH_RUNS=N, default 30, at least 20; BERTH_RUNTIME picks the berth binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use berth_tests::{
    busybox_bundle, find_in_path, fix_hybrid_hugetlb, require_root, try_runtime_bin, unique_id,
    Bundle,
};
use serde_json::json;

struct Rt {
    label: &'static str,
    bin: PathBuf,
    root: tempfile::TempDir,
    times_ms: Vec<f64>,
    rss_kib: Vec<i64>,
}

/// One `run` of `true`; returns (wall ms, peak RSS KiB, success, stderr).
fn run_once(rt: &Rt, bundle: &Bundle, id: &str, capture_err: bool) -> (f64, i64, bool, String) {
    let errfile = tempfile::NamedTempFile::new().expect("stderr temp file");
    let mut cmd = Command::new(&rt.bin);
    cmd.arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle"])
        .arg(&bundle.dir)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if capture_err {
        cmd.stderr(errfile.reopen().expect("reopen stderr file"));
    } else {
        cmd.stderr(Stdio::null());
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn runtime");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our unwaited child; pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    drop(child); // already reaped by wait4; Child's drop does not wait
    let ok = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let err = if capture_err {
        std::fs::read_to_string(errfile.path()).unwrap_or_default()
    } else {
        String::new()
    };
    (elapsed, usage.ru_maxrss, ok, err)
}

fn set_cgroup(bundle: &Bundle, label: &str, i: usize) {
    bundle.edit(|s| {
        s["linux"]["cgroupsPath"] =
            json!(format!("/berth-bench/{label}-{i}-{}", std::process::id()))
    });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn median_i(v: &[i64]) -> i64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    if s.is_empty() {
        0
    } else {
        s[s.len() / 2]
    }
}

fn main() {
    if !require_root("runtime_startup bench") {
        return;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .max(20);

    let mut rts: Vec<Rt> = Vec::new();
    let mut add = |label: &'static str, bin: Option<PathBuf>, why: String| match bin {
        Some(bin) => rts.push(Rt {
            label,
            bin,
            root: tempfile::Builder::new()
                .prefix("berth-bench-")
                .tempdir()
                .unwrap(),
            times_ms: Vec::new(),
            rss_kib: Vec::new(),
        }),
        None => println!("{label}: missing ({why}), skipped"),
    };
    match try_runtime_bin() {
        Ok(b) => add("berth", Some(b), String::new()),
        Err(e) => add("berth", None, e),
    }
    add(
        "crun",
        find_in_path("crun"),
        "not in PATH; apt-get install crun".into(),
    );
    add(
        "runc",
        find_in_path("runc"),
        "not in PATH; apt-get install runc".into(),
    );
    for rt in &rts {
        println!("{}: {}", rt.label, rt.bin.display());
    }

    let bundle = busybox_bundle(&["true"]);

    // Probe each runtime once; fix what is known to be fixable, drop the rest.
    let mut usable = Vec::new();
    for rt in rts {
        let mut tries = 0;
        loop {
            set_cgroup(&bundle, rt.label, 1_000_000 + tries);
            let (_, _, ok, err) = run_once(&rt, &bundle, &unique_id("probe"), true);
            if ok {
                usable.push(rt);
                break;
            }
            tries += 1;
            let err = err.trim().to_string();
            if tries > 2 {
                println!("{}: fails, skipped: {err}", rt.label);
                break;
            }
            if err.contains("hybrid") && fix_hybrid_hugetlb() {
                println!(
                    "{}: refused hybrid cgroups ({err}); mounted hugetlb as a cgroup v1 \
                     hierarchy (mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb), retrying",
                    rt.label
                );
            } else if err.contains("unknown version") {
                println!(
                    "{}: refuses ociVersion {} ({err}); every runtime now gets ociVersion 1.1.0",
                    rt.label,
                    bundle.spec()["ociVersion"]
                );
                bundle.edit(|s| s["ociVersion"] = json!("1.1.0"));
            } else {
                println!("{}: fails, skipped: {err}", rt.label);
                break;
            }
        }
    }
    let mut rts = usable;
    if rts.is_empty() {
        println!("no runtime could run the bundle; nothing to measure");
        std::process::exit(1);
    }

    println!("measuring {runs} interleaved runs each of `run` busybox `true`...");
    for i in 0..runs {
        for rt in rts.iter_mut() {
            set_cgroup(&bundle, rt.label, i);
            let (ms, rss, ok, _) = run_once(rt, &bundle, &unique_id(rt.label), false);
            if ok {
                rt.times_ms.push(ms);
                rt.rss_kib.push(rss);
            }
        }
    }

    println!();
    println!(
        "{:<8} {:>5} {:>10} {:>10} {:>16}",
        "runtime", "ok", "median ms", "p90 ms", "peak RSS KiB"
    );
    let mut summary: Vec<(&str, f64, i64)> = Vec::new();
    for rt in &rts {
        let mut t = rt.times_ms.clone();
        t.sort_by(|a, b| a.total_cmp(b));
        let (med, p90, rss) = (
            percentile(&t, 0.5),
            percentile(&t, 0.9),
            median_i(&rt.rss_kib),
        );
        println!(
            "{:<8} {:>5} {:>10.2} {:>10.2} {:>16}",
            rt.label,
            t.len(),
            med,
            p90,
            rss
        );
        summary.push((rt.label, med, rss));
    }
    if let Some(&(_, bt, br)) = summary.iter().find(|s| s.0 == "berth") {
        for &(label, t, r) in summary.iter().filter(|s| s.0 != "berth") {
            println!(
                "berth/{label}: time {:.2}x, peak RSS {:.2}x",
                bt / t,
                br as f64 / r.max(1) as f64
            );
        }
    }
    for rt in &rts {
        if rt.times_ms.len() < runs {
            println!(
                "warning: {} failed {} of {runs} runs",
                rt.label,
                runs - rt.times_ms.len()
            );
        }
    }
    // Best effort: remove the (empty) parent cgroups the runtimes left.
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir(e.path().join("berth-bench"));
        }
    }
}
