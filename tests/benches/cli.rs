//! berth CLI benchmark, in one run:
//!
//! 1. `berth run --rm busybox true` end to end (CLI start, create, attach, start, wait,
//!    remove), interleaved with a bare `crun run` of an equivalent busybox bundle and with
//!    the docker CLI doing the same against the same berthd; also `--network none`, which
//!    leaves out the veth pair and bridge port that crun's bundle does not have.
//! 2. `berth ps -a` with BENCH_PS_CONTAINERS (default 1000) containers, next to `docker ps -a`
//!    on the same engine.
//!
//! Medians of BENCH_RUNS (default 20) runs, reported as ratios; nothing here asserts a time.
//! Run as root: `bash .ci/bench-cli` (builds release binaries first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bench::{check, env_or, median, timed, CrunFloor};
use berth_tests::berthd::Berthd;
use berth_tests::cli::berth_cmd;
use berth_tests::require_root;
use std::process::{Command, Stdio};

fn quiet(mut c: Command) -> Command {
    c.stdout(Stdio::null());
    c
}

fn main() {
    if !require_root("bench cli") {
        return;
    }
    let runs = env_or("BENCH_RUNS", 20);
    let ps_n = env_or("BENCH_PS_CONTAINERS", 1000);
    let b = Berthd::start_with_config(Some(r#"{"log-level":"warn"}"#));
    b.load_busybox("busybox:latest");

    let crun = CrunFloor::new();

    let berth_run = || quiet(berth_cmd(&b, &["run", "--rm", "busybox", "true"]));
    let berth_run_none = || {
        quiet(berth_cmd(
            &b,
            &["run", "--rm", "--network", "none", "busybox", "true"],
        ))
    };
    let docker_run = || quiet(b.docker_cmd(&["run", "--rm", "busybox", "true"]));
    for _ in 0..2 {
        check("warm-up berth", &timed(berth_run()).1);
        check("warm-up berth --network none", &timed(berth_run_none()).1);
        check("warm-up docker", &timed(docker_run()).1);
    }
    let (mut tb, mut tn, mut td, mut tc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, o) = timed(berth_run());
        check("berth run", &o);
        tb.push(t);
        let (t, o) = timed(berth_run_none());
        check("berth run --network none", &o);
        tn.push(t);
        let (t, o) = timed(docker_run());
        check("docker run", &o);
        td.push(t);
        if let Some(crun) = &crun {
            let (t, o) = timed(crun.cmd());
            check("crun run", &o);
            tc.push(t);
        }
    }
    let (mb, mn, md) = (median(&tb), median(&tn), median(&td));
    println!("run --rm busybox true ({runs} interleaved runs, median wall):");
    println!("  berth run --rm                    {mb:8.1} ms");
    println!("  berth run --rm --network none     {mn:8.1} ms");
    println!("  docker CLI, same berthd           {md:8.1} ms");
    if tc.is_empty() {
        println!("  crun not found: no floor to compare with");
    } else {
        let mc = median(&tc);
        println!("  crun run (bare bundle)            {mc:8.1} ms");
        println!(
            "  berth / crun                      {:8.2}x (target <= 2x)",
            mb / mc
        );
        println!("  berth --network none / crun       {:8.2}x", mn / mc);
    }
    println!("  berth CLI / docker CLI            {:8.2}x", mb / md);

    if ps_n > 0 {
        for i in 0..ps_n {
            check(
                "create",
                &b.docker(&["create", "--name", &format!("c{i}"), "busybox", "true"]),
            );
        }
        let (mut pb, mut pd) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let (t, o) = timed(quiet(berth_cmd(&b, &["ps", "-a"])));
            check("berth ps -a", &o);
            pb.push(t);
            let (t, o) = timed(quiet(b.docker_cmd(&["ps", "-a"])));
            check("docker ps -a", &o);
            pd.push(t);
        }
        let o = berth_cmd(&b, &["ps", "-a"]).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).lines().count(),
            ps_n + 1,
            "berth ps -a rows"
        );
        println!("ps -a with {ps_n} containers (median of 10):");
        println!("  berth ps -a   {:8.1} ms", median(&pb));
        println!("  docker ps -a  {:8.1} ms", median(&pd));
        println!("  ratio         {:8.2}x", median(&pb) / median(&pd));
        let ids = b.ok(&["ps", "-aq"]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        for chunk in ids.chunks(100) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().copied());
            b.ok(&args);
        }
    }
}
