//! Pull + unpack benchmark: a generated multi-layer image (≥ 200 MB uncompressed) served by a
//! loopback `docker-registry`, pulled by `berth-image pull` (into a fresh store each run) and
//! by `docker pull` against a private dockerd (image removed between runs), interleaved in one
//! run. Also measures the gzip decompressor alone on the same layers, for the unpack
//! throughput target. Reports wall time, MB/s (uncompressed bytes / wall) and peak RSS.
//!
//! Run as root: `bash .ci/bench-images` (BENCH_RUNS=N, default 3; BENCH_IMAGE_LAYERS=4,
//! BENCH_IMAGE_MIB=64 per layer).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::services::{Dockerd, Registry};
use berth_tests::{find_in_path, require_root};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Spawn, wait with wait4; (wall seconds, peak RSS KiB of the process tree it reaped, ok).
fn timed(cmd: &mut Command) -> (f64, i64, bool, String) {
    let err = tempfile::NamedTempFile::new().unwrap();
    cmd.stdout(Stdio::null()).stderr(err.reopen().unwrap());
    let t = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our unwaited child.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (
        secs,
        ru.ru_maxrss,
        ok,
        std::fs::read_to_string(err.path()).unwrap_or_default(),
    )
}

/// Largest VmRSS (KiB) of `pid` seen while `f` runs.
fn sample_rss<T>(pid: u32, f: impl FnOnce() -> T) -> (T, i64) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        let mut max = 0i64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(v) = st
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<i64>().ok())
                {
                    max = max.max(v);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        max
    });
    let r = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (r, h.join().unwrap())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

fn main() {
    if !require_root("image_pull bench") {
        return;
    }
    for tool in ["docker-registry", "skopeo", "dockerd", "docker"] {
        if find_in_path(tool).is_none() {
            println!("{tool} not found: apt-get install docker-registry skopeo docker.io; skipped");
            return;
        }
    }
    let berth = std::env::var_os("BERTH_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/berth-image")
        });
    assert!(
        berth.exists(),
        "{} missing: cargo build --release -p berth-registry",
        berth.display()
    );
    let runs = env_or("BENCH_RUNS", 3).max(1) as usize;
    let layers = env_or("BENCH_IMAGE_LAYERS", 4) as usize;
    let mib = env_or("BENCH_IMAGE_MIB", 64);

    let work = tempfile::Builder::new()
        .prefix("berth-imgbench-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let t = Instant::now();
    let img = berth_tests::bigimage::big_image_layout(&work.path().join("layout"), layers, mib);
    let mb = img.uncompressed as f64 / 1e6;
    println!(
        "image: {} layers, {} files, {:.1} MB uncompressed, {:.1} MB gzip (generated in {:.1}s)",
        img.layers,
        img.files,
        mb,
        img.compressed as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // The decompressor alone, on the same blobs.
    let mut dec = 0.0;
    for e in std::fs::read_dir(img.dir.join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let f = std::fs::File::open(e.path()).unwrap();
        let mut head = [0u8; 2];
        if (&f).read_exact(&mut head).is_err() || head != [0x1f, 0x8b] {
            continue;
        }
        let f = std::fs::File::open(e.path()).unwrap();
        let t = Instant::now();
        let mut d = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, f));
        let mut buf = vec![0u8; 1 << 20];
        while d.read(&mut buf).unwrap() > 0 {}
        dec += t.elapsed().as_secs_f64();
    }
    println!("gzip decompress alone: {:.0} MB/s", mb / dec);

    let reg = Registry::start();
    let name = format!("{}/bench/big:latest", reg.host());
    reg.push_layout(&img.dir, "bench/big:latest");
    let dockerd = Dockerd::start();
    let docker_ver = dockerd
        .docker(&["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    println!(
        "dockerd {}",
        String::from_utf8_lossy(&docker_ver.stdout).trim()
    );

    let (mut bt, mut dt, mut brss, mut drss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let root = tempfile::Builder::new()
            .prefix("berth-store-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let (s, rss, ok, err) = timed(
            Command::new(&berth)
                .arg("--root")
                .arg(root.path())
                .args(["pull", "-q", &name]),
        );
        assert!(ok, "berth-image pull failed: {err}");
        bt.push(s);
        brss.push(rss);
        drop(root);

        let ((s, _, ok, err), peak) = sample_rss(dockerd.pid(), || {
            timed(&mut dockerd.docker(&["pull", "-q", &name]))
        });
        assert!(ok, "docker pull failed: {err}");
        dt.push(s);
        drss.push(peak);
        let _ = dockerd.docker(&["rmi", "-f", &name]).output();
        let _ = dockerd.docker(&["image", "prune", "-af"]).output();
        println!("run {}: berth {:.2}s, docker {:.2}s", i + 1, bt[i], dt[i]);
    }
    let (b, d) = (median(&bt), median(&dt));
    println!();
    println!(
        "{:<8} {:>10} {:>10} {:>16}",
        "", "median s", "MB/s", "peak RSS KiB"
    );
    println!(
        "{:<8} {:>10.2} {:>10.0} {:>16}",
        "berth",
        b,
        mb / b,
        brss.iter().max().unwrap()
    );
    println!(
        "{:<8} {:>10.2} {:>10.0} {:>16}",
        "docker",
        d,
        mb / d,
        drss.iter().max().unwrap()
    );
    println!("berth/docker wall: {:.2}x (target <= 0.25x)", b / d);
    println!(
        "berth pull+unpack {:.0} MB/s vs gzip alone {:.0} MB/s ({:.0}%)",
        mb / b,
        mb / dec,
        100.0 * (mb / b) / (mb / dec)
    );
    println!("(docker's RSS is dockerd's largest VmRSS sampled during its pulls)");
}
