//! The `berth` CLI against a test [`Berthd`].
//!
//! `berth` is found as `$BERTH`, else `$CARGO_TARGET_DIR/{debug,release}/berth`, else
//! `<workspace>/target/{debug,release}/berth` (run `cargo build -p berth-cli` first).

use crate::berthd::{workspace_bin, Berthd};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn berth_bin() -> PathBuf {
    workspace_bin("berth", "BERTH", "berth-cli")
}

/// `berth -H unix://<sock> args` with no BERTH_HOST/DOCKER_HOST of the caller's leaking in.
pub fn berth_cmd(d: &Berthd, args: &[&str]) -> Command {
    let mut c = Command::new(berth_bin());
    c.env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .arg("-H")
        .arg(format!("unix://{}", d.sock.display()))
        .args(args)
        .stdin(Stdio::null());
    c
}

pub fn berth(d: &Berthd, args: &[&str]) -> Output {
    berth_cmd(d, args).output().expect("run the berth CLI")
}

/// `berth args`, asserting success; stdout.
pub fn berth_ok(d: &Berthd, args: &[&str]) -> String {
    let o = berth(d, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The column titles of a table's first line (columns are separated by 3+ blanks; titles
/// such as "CONTAINER ID" hold one).
pub fn titles(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("   ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}
