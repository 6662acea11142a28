//! Healthchecks: a probe run inside the container (through `berth-runtime exec`) every
//! interval, with Docker's rules for timeout, retries and the start period. The result is the
//! container's `State.Health` (and `(healthy)` in `docker ps`), with `health_status` events.

use super::config::HealthConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps the last five probe results and 4 KiB of each one's output.
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<Probe>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// The probe's command line, or None when the check is disabled (`NONE`, or no test).
pub fn command(h: &HealthConfig) -> Option<Vec<String>> {
    match h.test.first().map(String::as_str) {
        Some("CMD") if h.test.len() > 1 => Some(h.test[1..].to_vec()),
        Some("CMD-SHELL") if h.test.len() > 1 => {
            Some(vec!["/bin/sh".into(), "-c".into(), h.test[1..].join(" ")])
        }
        _ => None,
    }
}

/// Validate a create body's healthcheck (Docker's minimums: 1 ms for durations).
pub fn validate(h: &HealthConfig) -> Result<(), String> {
    match h.test.first().map(String::as_str) {
        None | Some("NONE") => {}
        Some("CMD" | "CMD-SHELL") if h.test.len() > 1 => {}
        Some(other) => {
            return Err(format!(
                "invalid healthcheck test {:?}: use [\"CMD\", args...], [\"CMD-SHELL\", \
                 command] or [\"NONE\"] (got {other:?} first)",
                h.test
            ))
        }
    }
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if v != 0 && v < 1_000_000 {
            return Err(format!(
                "healthcheck {name} must be at least 1ms (or 0 for the default), got {v}ns"
            ));
        }
    }
    if h.retries < 0 {
        return Err("healthcheck Retries must not be negative".into());
    }
    Ok(())
}

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

pub fn timing(h: &HealthConfig) -> Timing {
    Timing {
        interval: dur(h.interval, DEFAULT_INTERVAL),
        timeout: dur(h.timeout, DEFAULT_TIMEOUT),
        start_period: dur(h.start_period, Duration::ZERO),
        start_interval: dur(h.start_interval, DEFAULT_START_INTERVAL),
        retries: if h.retries > 0 {
            h.retries
        } else {
            DEFAULT_RETRIES
        },
    }
}

/// Run one probe: `berth-runtime exec` of `cmd` in container `id`, killed after `timeout`.
pub async fn probe(
    runtime: &Path,
    root: &Path,
    id: &str,
    cmd: &[String],
    timeout: Duration,
) -> Probe {
    let start = berth_time::now();
    let child = tokio::process::Command::new(runtime)
        .arg("--root")
        .arg(root)
        .arg("exec")
        .arg(id)
        .args(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return Probe {
                start,
                end: berth_time::now(),
                exit_code: -1,
                output: format!("cannot run the healthcheck: {e}"),
            }
        }
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            if text.len() > MAX_OUTPUT {
                let mut cut = MAX_OUTPUT;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            Probe {
                start,
                end: berth_time::now(),
                exit_code: out.status.code().map(i64::from).unwrap_or(-1),
                output: text,
            }
        }
        Ok(Err(e)) => Probe {
            start,
            end: berth_time::now(),
            exit_code: -1,
            output: format!("healthcheck failed: {e}"),
        },
        Err(_) => Probe {
            start,
            end: berth_time::now(),
            exit_code: -1,
            output: format!("Health check exceeded timeout ({:?})", timeout),
        },
    }
}

/// Fold a probe into the state. `in_start_period`: failures then do not count. Returns
/// whether the status changed.
pub fn record(h: &mut Health, p: Probe, retries: i64, in_start_period: bool) -> bool {
    let before = h.status.clone();
    if p.exit_code == 0 {
        h.status = "healthy".into();
        h.failing_streak = 0;
    } else if !in_start_period {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = "unhealthy".into();
        }
    }
    h.log.push(p);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
    h.status != before
}

/// Whether `since` is still inside the start period.
pub fn in_start_period(started: Instant, t: &Timing) -> bool {
    started.elapsed() < t.start_period
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(code: i64) -> Probe {
        Probe {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn commands_and_validation() {
        let h = HealthConfig {
            test: vec!["CMD-SHELL".into(), "curl -f localhost".into()],
            ..Default::default()
        };
        assert_eq!(
            command(&h).unwrap(),
            vec!["/bin/sh", "-c", "curl -f localhost"]
        );
        let h = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        };
        assert_eq!(command(&h).unwrap(), vec!["true"]);
        assert!(command(&HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        })
        .is_none());
        assert!(validate(&HealthConfig {
            test: vec!["RUN".into(), "x".into()],
            ..Default::default()
        })
        .is_err());
        assert!(validate(&HealthConfig {
            test: vec!["CMD".into(), "x".into()],
            interval: 5,
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn retries_and_start_period() {
        let mut h = Health {
            status: "starting".into(),
            ..Default::default()
        };
        assert!(!record(&mut h, p(1), 2, true));
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        assert!(!record(&mut h, p(1), 2, false));
        assert_eq!(h.failing_streak, 1);
        assert!(record(&mut h, p(1), 2, false));
        assert_eq!(h.status, "unhealthy");
        assert!(record(&mut h, p(0), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        for _ in 0..10 {
            record(&mut h, p(0), 2, false);
        }
        assert_eq!(h.log.len(), 5);
    }
}
