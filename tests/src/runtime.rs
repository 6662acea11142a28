//! A handle on the OCI runtime under test (berth-runtime, or runc/crun via
//! `BERTH_RUNTIME`), driven through its runc-compatible command line with a
//! private `--root` state directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::bundle::Bundle;

/// The first file called `name` in $PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The runtime binary under test:
/// 1. `$BERTH_RUNTIME` (a path, or a bare name such as `runc` looked up in PATH);
/// 2. `<target>/release/berth-runtime`, then `<target>/debug/berth-runtime`,
///    where `<target>` is `$CARGO_TARGET_DIR` (at run or build time) or
///    `<workspace>/target`.
///
/// Panics with instructions when nothing is found (see [`try_runtime_bin`]).
pub fn runtime_bin() -> PathBuf {
    try_runtime_bin().unwrap_or_else(|e| panic!("{e}"))
}

/// [`runtime_bin`] without the panic.
pub fn try_runtime_bin() -> Result<PathBuf, String> {
    if let Some(v) = std::env::var_os("BERTH_RUNTIME").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        if p.components().count() == 1 {
            return find_in_path(&p.to_string_lossy())
                .ok_or_else(|| format!("BERTH_RUNTIME={} not found in PATH", p.display()));
        }
        if !p.is_file() {
            return Err(format!("BERTH_RUNTIME={} does not exist", p.display()));
        }
        return Ok(std::fs::canonicalize(&p).unwrap_or(p));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace")
        .to_path_buf();
    let mut targets: Vec<PathBuf> = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(t.into());
    }
    if let Some(t) = option_env!("CARGO_TARGET_DIR") {
        targets.push(t.into());
    }
    targets.push(workspace.join("target"));
    for profile in ["release", "debug"] {
        for t in &targets {
            let p = t.join(profile).join("berth-runtime");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "berth-runtime binary not found (looked in {targets:?}/{{release,debug}}): \
         run `cargo build -p berth-runtime`, or set BERTH_RUNTIME=runc to test a reference runtime"
    ))
}

/// A runtime binary plus a private state root (`--root`). Containers created
/// through it are force-deleted on drop.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: TempDir,
    io: TempDir,
    ids: Mutex<Vec<String>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// The runtime from [`runtime_bin`].
    pub fn new() -> Self {
        Self::with_bin(runtime_bin())
    }

    /// A specific runtime binary.
    pub fn with_bin(bin: impl Into<PathBuf>) -> Self {
        let root = tempfile::Builder::new()
            .prefix("berth-rt-root-")
            .tempdir()
            .expect("temp --root");
        let io = tempfile::Builder::new()
            .prefix("berth-rt-io-")
            .tempdir()
            .expect("temp io dir");
        Runtime {
            bin: bin.into(),
            root,
            io,
            ids: Mutex::new(Vec::new()),
        }
    }

    /// True when the binary under test is Berth's (not runc/crun): gates
    /// assertions on Berth-specific behaviour such as error wording.
    pub fn is_berth(&self) -> bool {
        self.bin
            .file_name()
            .map(|n| n.to_string_lossy().starts_with("berth"))
            .unwrap_or(false)
    }

    /// Short name of the binary (for messages).
    pub fn name(&self) -> String {
        self.bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `<bin> --root <root> <args...>`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Remembers `id` so Drop force-deletes it.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }

    fn output(mut c: Command) -> Output {
        c.stdin(Stdio::null()).output().expect("spawn runtime")
    }

    /// `run --bundle <dir> <id>` in the foreground; captures the container's output.
    pub fn run(&self, id: &str, bundle: &Bundle) -> Output {
        self.track(id);
        let dir = bundle.dir.to_string_lossy().to_string();
        Self::output(self.cmd(&["run", "--bundle", &dir, id]))
    }

    /// Where the container's stdout/stderr go for [`Runtime::create`].
    pub fn io_paths(&self, id: &str) -> (PathBuf, PathBuf) {
        (
            self.io.path().join(format!("{id}.out")),
            self.io.path().join(format!("{id}.err")),
        )
    }

    /// `create [extra...] --bundle <dir> <id>`. The runtime's and the
    /// container's stdout/stderr go to files (see [`Runtime::container_output`]);
    /// a pipe would be held open by the container. Returns the runtime's
    /// status and what the files held when it returned.
    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        self.track(id);
        let (out, err) = self.io_paths(id);
        let dir = bundle.dir.to_string_lossy().to_string();
        let mut args = vec!["create"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", &dir, id]);
        let mut c = self.cmd(&args);
        c.stdin(Stdio::null())
            .stdout(File::create(&out).expect("create stdout file"))
            .stderr(File::create(&err).expect("create stderr file"));
        let status = c.status().expect("spawn runtime create");
        Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        }
    }

    /// `create --bundle <dir> <id>`.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// Current content of the container's stdout and stderr files (after create).
    pub fn container_output(&self, id: &str) -> (String, String) {
        let (out, err) = self.io_paths(id);
        (
            std::fs::read_to_string(out).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default(),
        )
    }

    /// `start <id>`.
    pub fn start(&self, id: &str) -> Output {
        Self::output(self.cmd(&["start", id]))
    }

    /// `create` then `start`, panicking with the runtime's stderr on failure.
    pub fn create_and_start(&self, id: &str, bundle: &Bundle) {
        let c = self.create(id, bundle);
        assert!(
            c.status.success(),
            "create {id} failed: {}",
            String::from_utf8_lossy(&c.stderr)
        );
        let s = self.start(id);
        assert!(
            s.status.success(),
            "start {id} failed: {}",
            String::from_utf8_lossy(&s.stderr)
        );
    }

    /// `state <id>` parsed, or the runtime's stderr.
    pub fn try_state(&self, id: &str) -> Result<Value, String> {
        let o = Self::output(self.cmd(&["state", id]));
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        serde_json::from_slice(&o.stdout).map_err(|e| {
            format!(
                "state output is not JSON ({e}): {}",
                String::from_utf8_lossy(&o.stdout)
            )
        })
    }

    /// `state <id>` parsed; panics if the runtime fails.
    pub fn state(&self, id: &str) -> Value {
        self.try_state(id)
            .unwrap_or_else(|e| panic!("state {id} failed: {e}"))
    }

    /// `state.status` of `id`, or None if `state` fails.
    pub fn status(&self, id: &str) -> Option<String> {
        self.try_state(id)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
    }

    /// Polls `state` until status == `want` or `timeout` passes.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.status(id).as_deref() == Some(want) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill <id> <signal>`.
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        Self::output(self.cmd(&["kill", id, signal]))
    }

    /// `delete [--force] <id>`.
    pub fn delete(&self, id: &str, force: bool) -> Output {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        Self::output(self.cmd(&args))
    }

    /// `exec <id> <args...>` in the foreground, output captured.
    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        let mut a = vec!["exec", id];
        a.extend_from_slice(args);
        Self::output(self.cmd(&a))
    }

    /// `pause <id>`.
    pub fn pause(&self, id: &str) -> Output {
        Self::output(self.cmd(&["pause", id]))
    }

    /// `resume <id>`.
    pub fn resume(&self, id: &str) -> Output {
        Self::output(self.cmd(&["resume", id]))
    }

    /// `ps <id>` (table format).
    pub fn ps(&self, id: &str) -> Output {
        Self::output(self.cmd(&["ps", id]))
    }

    /// `list`.
    pub fn list(&self) -> Output {
        Self::output(self.cmd(&["list"]))
    }

    /// Entries under `--root` whose name contains `id` (a runtime keeps one
    /// state dir per container; empty means it is gone).
    pub fn state_leftovers(&self, id: &str) -> Vec<PathBuf> {
        std::fs::read_dir(self.root.path())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().contains(id))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            let _ = self
                .cmd(&["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Exit code of a status, mapping death-by-signal N to 128+N like a shell.
pub fn exit_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_name_resolves_in_path() {
        let sh = find_in_path("sh").expect("sh in PATH");
        assert!(sh.is_absolute());
        assert!(find_in_path("definitely-not-a-binary-berth").is_none());
    }

    #[test]
    fn cmd_puts_root_first() {
        let rt = Runtime::with_bin("/bin/true");
        let c = rt.cmd(&["state", "x"]);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], "--root");
        assert_eq!(args[1], rt.root.path().to_string_lossy());
        assert_eq!(&args[2..], ["state", "x"]);
        assert!(!rt.is_berth());
        assert!(Runtime::with_bin("/x/berth-runtime").is_berth());
    }
}
