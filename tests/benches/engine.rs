//! Engine benchmark, berthd against dockerd (Debian's docker.io, temp data root,
//! `--iptables=false`, its own bridge), same docker CLI, same busybox image, in one run:
//!
//! 1. `docker run --rm busybox true`, interleaved, BENCH_RUNS times (default 20): median wall
//!    time of each and the ratio; a bare `crun run` of the same rootfs as the floor.
//! 2. Idle RSS: berthd alone vs dockerd + containerd, after the runs.
//! 3. Per running container: berth-monitor's RSS vs containerd-shim's.
//! 4. `docker ps -a` with BENCH_PS_CONTAINERS (default 1000) created containers on each.
//! 5. 50 concurrent `docker run --rm busybox true` against berthd: all must succeed, and
//!    afterwards no container mounts, cgroups, veths or monitors may be left.
//!
//! Run as root: `bash .ci/bench-engine` (builds release binaries first). berthd is taken from
//! `$BERTHD` or the target dir (release preferred when BERTHD is unset and it exists).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bench::{check, env_or, median, timed, CrunFloor};
use berth_tests::berthd::Berthd;
use berth_tests::require_root;
use berth_tests::services::Dockerd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Live (not zombie) processes whose command name is `comm` (exact). A daemonised monitor
/// that has exited is a zombie until PID 1 reaps it; it holds no memory and is not counted.
fn pids_named(comm: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A daemonised monitor that has exited is a zombie until PID 1 reaps it: it holds no
        // memory and is not counted.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X");
        if !zombie
            && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        {
            out.push(pid);
        }
    }
    out
}

/// Direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        if let Some(close) = stat.rfind(')') {
            let ppid = stat[close + 2..].split_whitespace().nth(1);
            if ppid.and_then(|x| x.parse::<u32>().ok()) == Some(pid) {
                out.push(p);
            }
        }
    }
    out
}

fn veth_count() -> usize {
    let o = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("veth") || l.contains(": vb"))
        .count()
}

fn cgroup_children(controller: &str, rel: &str) -> usize {
    std::fs::read_dir(format!("/sys/fs/cgroup/{controller}/{rel}"))
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

fn main() {
    if !require_root("bench engine") {
        return;
    }
    let runs = env_or("BENCH_RUNS", 20);
    let ps_n = env_or("BENCH_PS_CONTAINERS", 1000);
    let concurrent = env_or("BENCH_CONCURRENT", 50);

    let b = Berthd::start_with_config(Some(r#"{"log-level":"warn"}"#));
    b.load_busybox("busybox:latest");
    let d = Dockerd::start_with(&["--bip=10.251.0.1/24"]);
    // The same image into dockerd: saved by berthd (docker format), loaded by dockerd.
    let tar = b.dir.path().join("busybox-docker.tar");
    b.ok(&["save", "-o", tar.to_str().unwrap(), "busybox:latest"]);
    check(
        "docker load (dockerd)",
        &d.docker(&["load", "-i", tar.to_str().unwrap()])
            .output()
            .unwrap(),
    );

    // 1. run --rm true.
    let run_b = || {
        let mut c = b.docker_cmd(&["run", "--rm", "busybox", "true"]);
        c.stdout(Stdio::null());
        c
    };
    let run_d = || {
        let mut c = d.docker(&["run", "--rm", "busybox", "true"]);
        c.stdout(Stdio::null());
        c
    };
    for _ in 0..2 {
        check("warm-up berthd", &timed(run_b()).1);
        check("warm-up dockerd", &timed(run_d()).1);
    }
    let (mut tb, mut td) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, o) = timed(run_b());
        check("berthd run", &o);
        tb.push(t);
        let (t, o) = timed(run_d());
        check("dockerd run", &o);
        td.push(t);
    }
    // The floor: a bare OCI runtime run of the same busybox `true`.
    let mut crun_ms = None;
    if let Some(crun) = CrunFloor::new() {
        let mut ts = Vec::new();
        for _ in 0..runs {
            let (t, o) = timed(crun.cmd());
            if o.status.success() {
                ts.push(t);
            } else if ts.is_empty() {
                eprintln!(
                    "crun run failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
            }
        }
        if !ts.is_empty() {
            crun_ms = Some(median(&ts));
        }
    }
    let (mb, md) = (median(&tb), median(&td));
    println!("docker run --rm busybox true ({runs} interleaved runs, median wall):");
    println!("  berthd  {mb:8.1} ms");
    println!("  dockerd {md:8.1} ms");
    println!("  ratio   {:8.2}x (target <= 0.25x)", mb / md);
    if let Some(c) = crun_ms {
        println!("  bare crun run {c:.1} ms: berthd is {:.2}x of it", mb / c);
    }

    // 2. Idle RSS.
    std::thread::sleep(Duration::from_secs(2));
    let berthd_rss = rss_kib(b.pid());
    let mut docker_rss = rss_kib(d.pid());
    let mut containerd = Vec::new();
    for c in children(d.pid()) {
        docker_rss += rss_kib(c);
        containerd.push(c);
    }
    println!("idle RSS:");
    println!(
        "  berthd                {:8.1} MB (target <= 15 MB)",
        berthd_rss as f64 / 1024.0
    );
    println!(
        "  dockerd + containerd  {:8.1} MB",
        docker_rss as f64 / 1024.0
    );

    // 3. Per-container overhead.
    let monitors_before = pids_named("berth-monitor");
    b.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "600"]);
    let shims_before = pids_named("containerd-shim");
    check(
        "dockerd run -d",
        &d.docker(&["run", "-d", "--name", "idle", "busybox", "sleep", "600"])
            .output()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let mon: Vec<u32> = pids_named("berth-monitor")
        .into_iter()
        .filter(|p| !monitors_before.contains(p))
        .collect();
    let shim: Vec<u32> = pids_named("containerd-shim")
        .into_iter()
        .chain(pids_named("containerd-shim-runc-v2"))
        .filter(|p| !shims_before.contains(p))
        .collect();
    println!("per running container:");
    for m in &mon {
        println!(
            "  berth-monitor    {:6} kB RSS (target <= 1024 kB)",
            rss_kib(*m)
        );
    }
    for s in &shim {
        println!("  containerd-shim  {:6} kB RSS", rss_kib(*s));
    }
    b.ok(&["rm", "-f", "idle"]);
    let _ = d.docker(&["rm", "-f", "idle"]).output();

    // 4. ps -a with many containers.
    if ps_n > 0 {
        let t = Instant::now();
        for i in 0..ps_n {
            let name = format!("c{i}");
            check(
                "berthd create",
                &b.docker(&["create", "--name", &name, "busybox", "true"]),
            );
            check(
                "dockerd create",
                &d.docker(&["create", "--name", &name, "busybox", "true"])
                    .output()
                    .unwrap(),
            );
        }
        eprintln!(
            "created {ps_n} containers on each in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        let (mut pb, mut pd) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let mut c = b.docker_cmd(&["ps", "-a"]);
            c.stdout(Stdio::null());
            let (t, o) = timed(c);
            check("berthd ps", &o);
            pb.push(t);
            let mut c = d.docker(&["ps", "-a"]);
            c.stdout(Stdio::null());
            let (t, o) = timed(c);
            check("dockerd ps", &o);
            pd.push(t);
        }
        // The API call alone (no CLI start-up): GET /containers/json?all=1.
        let mut api = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let (st, body) = b.raw("GET", "/v1.45/containers/json?all=1", b"");
            api.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(st, 200);
            assert!(body.len() > ps_n * 100);
        }
        println!("docker ps -a with {ps_n} containers (median of 10):");
        println!("  berthd  {:8.1} ms (target <= 50 ms)", median(&pb));
        println!("  dockerd {:8.1} ms", median(&pd));
        println!("  ratio   {:8.2}x", median(&pb) / median(&pd));
        println!(
            "  berthd API alone (GET /containers/json?all=1): {:.1} ms",
            median(&api)
        );
        let ids = b.ok(&["ps", "-aq"]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        for chunk in ids.chunks(100) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().copied());
            b.ok(&args);
        }
    }
    drop(d);

    // 5. Concurrent runs against berthd, then look for leftovers.
    let veths_before = veth_count();
    let monitors_before = pids_named("berth-monitor").len();
    let cg_before = cgroup_children("memory", "berth");
    let t = Instant::now();
    let handles: Vec<_> = (0..concurrent)
        .map(|_| {
            b.docker_cmd(&["run", "--rm", "busybox", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failed = Vec::new();
    for h in handles {
        let o = h.wait_with_output().unwrap();
        if !o.status.success() {
            failed.push(String::from_utf8_lossy(&o.stderr).into_owned());
        }
    }
    let wall = t.elapsed().as_secs_f64();
    // --rm removal is asynchronous to the CLI's exit only by the wait; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !b.ok(&["ps", "-aq"]).trim().is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Veth pairs go with their namespaces, which the kernel destroys asynchronously.
    std::thread::sleep(Duration::from_secs(1));
    let left_containers = b.ok(&["ps", "-aq"]).split_whitespace().count();
    let data = b.data_root().join("containers");
    let left_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(data.to_str().unwrap()))
        .count();
    let left_veths = veth_count().saturating_sub(veths_before);
    let left_monitors = pids_named("berth-monitor")
        .len()
        .saturating_sub(monitors_before);
    let left_cg = cgroup_children("memory", "berth").saturating_sub(cg_before);
    println!(
        "{concurrent} concurrent docker run --rm against berthd: {} ok, {} failed, {wall:.1} s",
        concurrent - failed.len(),
        failed.len()
    );
    println!(
        "  left afterwards: containers {left_containers}, mounts {left_mounts}, veths {left_veths}, monitors {left_monitors}, cgroups {left_cg}"
    );
    for f in failed.iter().take(3) {
        println!("  failure: {}", f.trim());
    }
    assert!(failed.is_empty(), "concurrent runs failed");
    assert_eq!(
        (
            left_containers,
            left_mounts,
            left_veths,
            left_monitors,
            left_cg
        ),
        (0, 0, 0, 0, 0),
        "leaks after concurrent runs"
    );
}
