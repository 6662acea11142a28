//! Small helpers the benchmarks share: medians, timed commands, environment knobs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// `$name` as a number, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

/// Run `c` to completion with stdin closed; (wall milliseconds, output).
pub fn timed(mut c: Command) -> (f64, Output) {
    let t = Instant::now();
    let o = c.stdin(Stdio::null()).output().unwrap();
    (t.elapsed().as_secs_f64() * 1000.0, o)
}

/// Fail the benchmark when a step it measures failed.
pub fn check(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
