//! Build benchmark, in one run, interleaved, same Dockerfiles and contexts: `berth build`
//! against berthd (the product), `docker build` (classic builder) against berthd (the engine
//! alone, same client as the peer) and `docker build` against a private dockerd (Debian's
//! docker.io, temp data root, `--iptables=false`, its own bridge):
//!
//! 1. The tutorial app (`pyimage::tutorial_app_from`, `FROM` the python image) cold: before
//!    each run the result is removed (`docker rmi -f`) and the build cache pruned
//!    (`docker builder prune -af`) on both, so every step runs. The base image stays loaded.
//! 2. The same build fully cached (asserted: every step after FROM says `Using cache`).
//! 3. A context of 10,000 small files (100 dirs x 100 files of 100 bytes) with
//!    `FROM busybox` + `COPY . /data` + `RUN ls -R /data | wc -l`, cold and cached.
//!
//! BENCH_RUNS (default 5) runs of each case on each engine; the median wall time of each and
//! the ratio berthd/dockerd (target <= 0.5x). Each build's output lines are timestamped as
//! they arrive, so a per-step breakdown (median ms from one `Step` line to the next) is
//! printed too: it shows where the time goes. Figures also go to `target/bench-build.txt`.
//!
//! Run as root: `bash .ci/bench-build` (builds release binaries first). berthd is taken from
//! `$BERTHD` or the target dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bench::{check, env_or, median, Bridge};
use berth_tests::berthd::Berthd;
use berth_tests::pyimage::{self, PYTHON_TAG};
use berth_tests::require_root;
use berth_tests::services::Dockerd;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A build that hangs this long fails the benchmark.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
const TARGET: f64 = 0.5;
const FILES_DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;
const FILE_BYTES: usize = 100;

/// One finished `docker build`: wall time, success, and its output lines (stdout and stderr
/// merged) with the milliseconds since start at which each arrived.
struct Build {
    ms: f64,
    ok: bool,
    lines: Vec<(f64, String)>,
}

impl Build {
    fn text(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    fn cache_hits(&self) -> usize {
        self.lines
            .iter()
            .filter(|(_, l)| l.contains("Using cache"))
            .count()
    }

    /// The `M` of the `Step k/M` lines.
    fn steps(&self) -> usize {
        self.lines
            .iter()
            .find_map(|(_, l)| {
                let rest = l.strip_prefix("Step ")?;
                let (_, total) = rest.split_once(" :")?.0.split_once('/')?;
                total.parse().ok()
            })
            .unwrap_or(0)
    }

    /// Phases by wall time: `start -> Step 1` (CLI start, context upload), each step (from
    /// its `Step` line to the next), the last step to `Successfully built`, then to exit.
    fn phases(&self) -> Vec<(String, f64)> {
        let mut marks: Vec<(String, f64)> = Vec::new();
        for (t, l) in &self.lines {
            if let Some(rest) = l.strip_prefix("Step ") {
                let label = match rest.split_once(" : ") {
                    Some((n, instr)) => {
                        let word = instr.split_whitespace().next().unwrap_or("");
                        format!("step {n} {word}")
                    }
                    None => format!("step {rest}"),
                };
                marks.push((label, *t));
            } else if l.starts_with("Successfully built") {
                marks.push(("tag + exit".to_string(), *t));
            }
        }
        let mut out = Vec::new();
        let mut prev = ("context + start".to_string(), 0.0);
        for (label, t) in marks {
            out.push((prev.0, t - prev.1));
            prev = (label, t);
        }
        out.push((prev.0, self.ms - prev.1));
        out
    }

    /// The line a `RUN ... | wc -l` printed: the first all-digits line.
    fn number_line(&self) -> Option<u64> {
        self.lines
            .iter()
            .find_map(|(_, l)| l.trim().parse::<u64>().ok())
    }
}

/// Read `r` to its end, splitting on `\n` and `\r`, stamping each line with its arrival.
fn stamped_lines(mut r: impl Read, t0: Instant) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let t = t0.elapsed().as_secs_f64() * 1000.0;
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                if !pending.is_empty() {
                    out.push((t, String::from_utf8_lossy(&pending).into_owned()));
                    pending.clear();
                }
            } else {
                pending.push(b);
            }
        }
    }
    if !pending.is_empty() {
        let t = t0.elapsed().as_secs_f64() * 1000.0;
        out.push((t, String::from_utf8_lossy(&pending).into_owned()));
    }
    out
}

/// Run `docker build` (the command carries the daemon's address and the build arguments).
fn run_build(mut c: Command) -> Build {
    c.env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = c.spawn().expect("run the docker CLI");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let ho = std::thread::spawn(move || stamped_lines(out, t0));
    let he = std::thread::spawn(move || stamped_lines(err, t0));
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > BUILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docker build hung for {} s", BUILD_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut lines = ho.join().unwrap_or_default();
    lines.extend(he.join().unwrap_or_default());
    lines.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    Build {
        ms,
        ok: status.success(),
        lines,
    }
}

/// The daemon an [`Engine`] talks to.
enum Daemon<'a> {
    Berth(&'a Berthd),
    Docker(&'a Dockerd),
}

/// One engine under test: its name and the daemon the docker CLI is pointed at.
struct Engine<'a> {
    name: &'static str,
    daemon: Daemon<'a>,
    /// Build with `berth build` (the berth CLI) instead of `docker build`.
    berth_cli: bool,
}

impl Engine<'_> {
    fn docker(&self, args: &[&str]) -> Command {
        match self.daemon {
            Daemon::Berth(b) => b.docker_cmd(args),
            Daemon::Docker(d) => d.docker(args),
        }
    }

    fn ok(&self, what: &str, args: &[&str]) -> String {
        let o = self.docker(args).stdin(Stdio::null()).output().unwrap();
        check(&format!("{what} ({})", self.name), &o);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `docker load -i tar` and tag what it loaded `tag`.
    fn load(&self, tar: &Path, tag: &str) {
        let out = self.ok("docker load", &["load", "-i", tar.to_str().unwrap()]);
        let id = berth_tests::loaded_image_id(&out);
        self.ok("docker tag", &["tag", &id, tag]);
    }

    /// Make the next build of `tag` cold: remove the image and prune the build cache.
    fn make_cold(&self, tag: &str) {
        // The image is missing before the first run: rmi may fail, prune may not.
        let _ = self
            .docker(&["rmi", "-f", tag])
            .stdin(Stdio::null())
            .output();
        self.ok("docker builder prune", &["builder", "prune", "-af"]);
        // The prune's deletions are written back before the next build is timed, so no
        // engine's build pays for the other's (or its own) clean-up: a fair, quieter disk.
        let _ = Command::new("sync").status();
    }

    fn build(&self, tag: &str, ctx: &Path) -> Build {
        let args = ["build", "-t", tag, ctx.to_str().unwrap()];
        let cmd = match (&self.daemon, self.berth_cli) {
            (Daemon::Berth(b), true) => berth_tests::cli::berth_cmd(b, &args),
            _ => self.docker(&args),
        };
        let b = run_build(cmd);
        assert!(b.ok, "docker build on {} failed:\n{}", self.name, b.text());
        b
    }
}

/// The 10,000-file context: `d00/f00 ... d99/f99`, 100 bytes each, and the Dockerfile.
fn files_context(dir: &Path) {
    for d in 0..FILES_DIRS {
        let sub = dir.join(format!("d{d:02}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..FILES_PER_DIR {
            let mut body = format!("file d{d:02}/f{f:02} ");
            while body.len() < FILE_BYTES - 1 {
                body.push('x');
            }
            body.push('\n');
            std::fs::write(sub.join(format!("f{f:02}")), body).unwrap();
        }
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY . /data\nRUN ls -R /data | wc -l\n",
    )
    .unwrap();
}

/// The runs of one case on one engine.
#[derive(Default)]
struct Series {
    ms: Vec<f64>,
    phases: Vec<Vec<(String, f64)>>,
}

impl Series {
    fn push(&mut self, b: &Build) {
        self.ms.push(b.ms);
        self.phases.push(b.phases());
    }

    /// Median per phase, over the runs that have the same phases as the first.
    fn phase_medians(&self) -> Vec<(String, f64)> {
        let Some(first) = self.phases.first() else {
            return Vec::new();
        };
        let names: Vec<&String> = first.iter().map(|(n, _)| n).collect();
        let same: Vec<&Vec<(String, f64)>> = self
            .phases
            .iter()
            .filter(|p| p.iter().map(|(n, _)| n).collect::<Vec<_>>() == names)
            .collect();
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v: Vec<f64> = same.iter().map(|p| p[i].1).collect();
                ((*n).clone(), median(&v))
            })
            .collect()
    }
}

struct Case {
    name: &'static str,
    target: bool,
    /// One per engine, in the engines' order (dockerd last).
    series: Vec<Series>,
}

/// What one case builds.
struct Spec<'a> {
    name: &'static str,
    /// Whether the 0.5x target applies (else the figure is only reported).
    target: bool,
    tag: &'a str,
    ctx: &'a Path,
    /// Remove the image and prune the build cache before each run.
    cold: bool,
}

/// `runs` builds of the spec's context on each engine, interleaved (the engine that goes first
/// alternates). Every build is checked by `verify(engine, build)`.
fn measure(spec: Spec, engines: &[&Engine], runs: usize, verify: &dyn Fn(&Engine, &Build)) -> Case {
    let Spec {
        name,
        target,
        tag,
        ctx,
        cold,
    } = spec;
    let mut series: Vec<Series> = engines.iter().map(|_| Series::default()).collect();
    for i in 0..runs {
        // The engine that goes first rotates.
        for k in 0..engines.len() {
            let e = (i + k) % engines.len();
            if cold {
                engines[e].make_cold(tag);
            }
            let b = engines[e].build(tag, ctx);
            verify(engines[e], &b);
            series[e].push(&b);
        }
        let line: Vec<String> = engines
            .iter()
            .zip(&series)
            .map(|(e, s)| format!("{} {:.0} ms", e.name, s.ms[i]))
            .collect();
        eprintln!("{name}: run {}/{runs}: {}", i + 1, line.join(", "));
    }
    Case {
        name,
        target,
        series,
    }
}

fn report(cases: &[Case], engines: &[&Engine], runs: usize, header: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}");
    let _ = writeln!(
        s,
        "classic builder, {runs} interleaved runs per case, median wall ms (ratio to dockerd):"
    );
    let mut head = format!("  {:<22}", "case");
    for e in engines {
        let _ = write!(head, " {:>24}", e.name);
    }
    let _ = writeln!(s, "{head}  target (first column)");
    for c in cases {
        let base = median(&c.series[c.series.len() - 1].ms);
        let mut row = format!("  {:<22}", c.name);
        for (i, ser) in c.series.iter().enumerate() {
            let m = median(&ser.ms);
            if i + 1 == c.series.len() {
                let _ = write!(row, " {:>24}", format!("{m:.1}"));
            } else {
                let _ = write!(row, " {:>24}", format!("{m:.1} ({:.2}x)", m / base));
            }
        }
        let first = median(&c.series[0].ms) / base;
        let target = if c.target {
            let verdict = if first <= TARGET { "met" } else { "MISSED" };
            format!("<= {TARGET}x {verdict}")
        } else {
            "(reported)".to_string()
        };
        let _ = writeln!(s, "{row}  {target}");
    }
    let _ = writeln!(s, "per-step breakdown (median ms, output line to line):");
    for c in cases {
        let _ = writeln!(s, "  {}:", c.name);
        let all: Vec<Vec<(String, f64)>> = c.series.iter().map(Series::phase_medians).collect();
        let longest = all.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            let name = all
                .iter()
                .find_map(|p| p.get(i).map(|(n, _)| n.clone()))
                .unwrap_or_default();
            let mut row = format!("    {name:<24}");
            for (e, p) in engines.iter().zip(&all) {
                let v = p
                    .get(i)
                    .filter(|(n, _)| *n == name)
                    .map(|(_, t)| format!("{t:>9.1}"))
                    .unwrap_or_else(|| format!("{:>9}", "-"));
                let _ = write!(row, " {}: {v}", e.name);
            }
            let _ = writeln!(s, "{row}");
        }
    }
    s
}

fn out_file() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-build.txt")
}

fn main() {
    if !require_root("bench build") {
        return;
    }
    let runs = env_or("BENCH_RUNS", 5).max(1);
    let b = Berthd::start_with_config(Some(r#"{"log-level":"warn"}"#));
    b.load_busybox("busybox:latest");
    let bridge = Bridge::create("bbld", "10.253.0.1/24");
    let d = Dockerd::start_with(&[&format!("--bridge={}", bridge.0)]);
    let ec = Engine {
        name: "berth build > berthd",
        daemon: Daemon::Berth(&b),
        berth_cli: true,
    };
    let eb = Engine {
        name: "docker build > berthd",
        daemon: Daemon::Berth(&b),
        berth_cli: false,
    };
    let ed = Engine {
        name: "docker build > dockerd",
        daemon: Daemon::Docker(&d),
        berth_cli: false,
    };
    let engines: &[&Engine] = &[&ec, &eb, &ed];
    // busybox into dockerd as engine.rs does: saved by berthd, loaded by dockerd.
    let bb_tar = b.dir.path().join("busybox-docker.tar");
    eb.ok(
        "docker save",
        &["save", "-o", bb_tar.to_str().unwrap(), "busybox:latest"],
    );
    ed.load(&bb_tar, "busybox:latest");

    let work = tempfile::Builder::new()
        .prefix("berth-bench-build-")
        .tempdir()
        .unwrap();
    let mut cases = Vec::new();

    // 1 + 2. The tutorial app, cold and cached.
    match pyimage::python_image_tar() {
        Some(tar) => {
            eb.load(&tar, PYTHON_TAG);
            ed.load(&tar, PYTHON_TAG);
            let ctx = work.path().join("tutorial");
            pyimage::tutorial_app_from(&ctx, PYTHON_TAG);
            let no_cache = |e: &Engine, b: &Build| {
                assert_eq!(b.cache_hits(), 0, "cold build on {} hit the cache", e.name);
            };
            let all_cached = |e: &Engine, b: &Build| {
                let steps = b.steps();
                assert!(steps > 1, "no Step lines from {}:\n{}", e.name, b.text());
                assert_eq!(
                    b.cache_hits(),
                    steps - 1,
                    "not every step after FROM was cached on {}:\n{}",
                    e.name,
                    b.text()
                );
            };
            let tag = "bench-tutorial:latest";
            cases.push(measure(
                Spec {
                    name: "tutorial app cold",
                    target: true,
                    tag,
                    ctx: &ctx,
                    cold: true,
                },
                engines,
                runs,
                &no_cache,
            ));
            cases.push(measure(
                Spec {
                    name: "tutorial app cached",
                    target: true,
                    tag,
                    ctx: &ctx,
                    cold: false,
                },
                engines,
                runs,
                &all_cached,
            ));
            // What was built works the same on both: the RUN step's file is there.
            for e in engines.iter() {
                let got = e.ok(
                    "docker run",
                    &["run", "--rm", tag, "cat", "/app/installed.txt"],
                );
                assert_eq!(got, pyimage::TUTORIAL_INSTALLED, "on {}", e.name);
            }
            for e in engines.iter() {
                e.make_cold(tag);
            }
        }
        None => eprintln!("tutorial app cases skipped: no python image (see above)"),
    }

    // 3. 10,000 small files, cold and cached.
    let ctx = work.path().join("files");
    files_context(&ctx);
    let listed = std::sync::Mutex::new(Vec::<(String, u64)>::new());
    let counted = |e: &Engine, b: &Build| {
        assert_eq!(b.cache_hits(), 0, "cold build on {} hit the cache", e.name);
        let n = b
            .number_line()
            .unwrap_or_else(|| panic!("no `wc -l` count from {}:\n{}", e.name, b.text()));
        listed.lock().unwrap().push((e.name.to_string(), n));
    };
    let all_cached = |e: &Engine, b: &Build| {
        assert_eq!(
            b.cache_hits(),
            2,
            "COPY and RUN were not both cached on {}:\n{}",
            e.name,
            b.text()
        );
    };
    let tag = "bench-files:latest";
    let files_cold = measure(
        Spec {
            name: "10k files cold",
            target: true,
            tag,
            ctx: &ctx,
            cold: true,
        },
        engines,
        runs,
        &counted,
    );
    let files_cached = measure(
        Spec {
            name: "10k files cached",
            target: false,
            tag,
            ctx: &ctx,
            cold: false,
        },
        engines,
        runs,
        &all_cached,
    );
    cases.push(files_cold);
    cases.push(files_cached);
    // Both listed the same tree: every file and directory arrived.
    let listed = listed.into_inner().unwrap();
    let first = listed.first().map(|(_, n)| *n).unwrap_or(0);
    assert!(
        first >= (FILES_DIRS * FILES_PER_DIR) as u64,
        "ls -R counted {first} lines, fewer than the files: {listed:?}"
    );
    assert!(
        listed.iter().all(|(_, n)| *n == first),
        "the engines listed different trees: {listed:?}"
    );
    for e in engines.iter() {
        e.make_cold(tag);
    }

    let cli = Command::new("docker")
        .args(["version", "--format", "{{.Client.Version}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let server = ed
        .docker(&["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let header = format!(
        "berth build benchmark: berthd {} vs dockerd {server}, docker CLI {cli}, {} cores",
        berth_tests::berthd::berthd_bin().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let text = report(&cases, engines, runs, &header);
    print!("{text}");
    let path = out_file();
    match std::fs::write(&path, &text) {
        Ok(()) => println!("written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
    drop(d);
    drop(bridge);
    drop(b);
    drop(work);
}
