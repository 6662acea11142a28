//! OCI hooks: run each with the container's state on stdin, its own args and env, and an
//! optional timeout; a failing hook fails the operation with its name and output.

use crate::{Error, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run(kind, i, h, state)?;
    }
    Ok(())
}

fn run(kind: &str, i: usize, h: &Hook, state: &serde_json::Value) -> Result<()> {
    let path = h.path();
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Output goes to an in-memory file, never a pipe: a chatty hook must not block on a full
    // pipe while we wait for it. Its tail goes into the error if it fails.
    let out = output_file()?;
    let clone = |f: &std::fs::File| {
        f.try_clone()
            .map_err(|e| Error::Container(format!("hook output file: {e}")))
    };
    let out2 = clone(&out)?;
    let reader = clone(&out)?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(out2));
    let name = format!("{kind} hook {i} ({})", path.display());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Container(format!("{name}: cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not an error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(Error::Container(format!("{name}: wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Container(format!(
                "{name}: timed out after {}s and was killed",
                h.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    if !status.success() {
        let mut msg = format!("{name} failed: {status}");
        let text = tail(reader);
        if !text.is_empty() {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        return Err(Error::Container(msg));
    }
    Ok(())
}

fn output_file() -> Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a static name.
    let fd = unsafe { libc::memfd_create(c"berth-hook-output".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os("memfd_create for hook output"));
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// The last line(s) of what a hook wrote, at most 1 KiB, on one line.
fn tail(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
