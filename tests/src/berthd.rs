//! berthd on a temp data root and socket, driven with the real docker CLI or raw HTTP.
//!
//! Each daemon takes a numbered slot (an flock'ed file under /tmp/berth-test-slots) so that
//! daemons running at the same time — in one test binary or several — never share a bridge
//! name or a subnet: slot `n` uses bridge `btst<n>`, default network `10.210.<n>.0/24` and
//! user networks carved as /26s from `10.<220 + n/64>.<(n%64)*4>.0/22`.
//!
//! berthd is found as `$BERTHD`, else `$CARGO_TARGET_DIR/{debug,release}/berthd`, else
//! `<workspace>/target/{debug,release}/berthd` (run `cargo build -p berthd` first). Its
//! helpers (berth-runtime, berth-monitor) are taken from the same directory.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn berthd_bin() -> PathBuf {
    workspace_bin("berthd", "BERTHD", "berthd")
}

/// A binary of this workspace: `$<env>`, else `$CARGO_TARGET_DIR/{debug,release}/<name>`,
/// else `<workspace>/target/{debug,release}/<name>`; `package` names what to build.
pub fn workspace_bin(name: &str, env: &str, package: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut targets: Vec<PathBuf> = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(t.into());
    }
    if let Some(t) = option_env!("CARGO_TARGET_DIR") {
        targets.push(t.into());
    }
    targets.push(workspace.join("target"));
    for t in &targets {
        for profile in ["debug", "release"] {
            let p = t.join(profile).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{name} not found in {targets:?}/{{debug,release}}: run `cargo build -p {package}` or set {env}"
    );
}

/// An flock'ed slot number: unique among live holders on this machine.
pub struct Slot {
    pub n: u32,
    _file: File,
}

impl Slot {
    pub fn take() -> Slot {
        let dir = Path::new("/tmp/berth-test-slots");
        std::fs::create_dir_all(dir).unwrap();
        loop {
            for n in 0..128u32 {
                let f = File::create(dir.join(format!("{n}.lock"))).unwrap();
                if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                    return Slot { n, _file: f };
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn bridge(&self) -> String {
        format!("btst{}", self.n)
    }

    /// The daemon.json network keys for this slot.
    pub fn network_config(&self) -> serde_json::Value {
        let n = self.n;
        serde_json::json!({
            "bridge": self.bridge(),
            "bip": format!("10.210.{n}.1/24"),
            "default-address-pools": [
                {"base": format!("10.{}.{}.0/22", 220 + n / 64, (n % 64) * 4), "size": 26}
            ],
        })
    }
}

/// berthd on a temp data root and socket; killed (with its containers) on drop.
pub struct Berthd {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub slot: Slot,
    config: PathBuf,
}

impl Berthd {
    pub fn start() -> Berthd {
        Berthd::start_with_config(None)
    }

    /// `config`: a daemon.json object whose keys are added to (or replace) the slot's
    /// network keys; a string that is not a JSON object is written as it is (to test
    /// malformed configs).
    pub fn start_with_config(config: Option<&str>) -> Berthd {
        let dir = tempfile::Builder::new()
            .prefix("berthd-api-")
            .tempdir()
            .unwrap();
        let slot = Slot::take();
        let sock = dir.path().join("run/berth.sock");
        let cfg = dir.path().join("daemon.json");
        let mut merged = slot.network_config();
        let text = match config.map(serde_json::from_str::<serde_json::Value>) {
            None => merged.to_string(),
            Some(Ok(serde_json::Value::Object(extra))) => {
                for (k, v) in extra {
                    merged[k] = v;
                }
                merged.to_string()
            }
            Some(_) => config.unwrap_or_default().to_string(),
        };
        std::fs::write(&cfg, text).unwrap();
        let mut d = Berthd {
            child: None,
            dir,
            sock,
            slot,
            config: cfg,
        };
        d.spawn();
        d
    }

    /// Start (again) on the same data root, exec root and socket.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(berthd_bin())
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--config-file")
            .arg(&self.config)
            .arg("--log-level")
            .arg("debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&self.sock).is_err() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("berthd exited with {st}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` the daemon (containers and their monitors keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.sock);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// A docker CLI command against this daemon (own DOCKER_CONFIG).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let cfg = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &cfg)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args);
        c
    }

    /// Run the docker CLI; a command that hangs for 3 minutes is killed and fails the test
    /// (a hung engine must not hang CI).
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut child = self
            .docker_cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the docker CLI (/usr/local/bin/docker)");
        // Drain both pipes on threads so a chatty command cannot block on a full pipe.
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let o = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let e = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "docker {args:?} hung for 180 s; berthd log (tail):\n{}",
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            status,
            stdout: o.join().unwrap_or_default(),
            stderr: e.join().unwrap_or_default(),
        }
    }

    /// `docker args`, asserting success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\nberthd log (tail):\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 60)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `docker args`, asserting failure; stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// A raw HTTP/1.1 request on the socket: (status, body).
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        // The daemon may answer (e.g. 400 for a bad query) and close before reading a body it
        // has no use for; a real client still reads that answer.
        if let Err(e) = s.write_all(body) {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ),
                "writing the request body: {e}"
            );
        }
        let mut out = Vec::new();
        if let Err(e) = s.read_to_end(&mut out) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset,
                "reading: {e}"
            );
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Berthd {
    fn drop(&mut self) {
        // Remove every container first so no monitor, mount or veth outlives the test.
        if self.child.is_some() {
            if let Ok(o) = self.docker_cmd(&["ps", "-aq"]).output() {
                let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids.iter().map(String::as_str));
                    let _ = self.docker_cmd(&args).output();
                }
            }
            // User networks a test left behind have bridges on the host: remove them too.
            let _ = self.docker_cmd(&["network", "prune", "-f"]).output();
        }
        if let Some(mut c) = self.child.take() {
            // SIGTERM lets the daemon stop what is left and remove its bridges' state.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Mounts the daemon keeps while it runs (its netns directory) go with the temp dir.
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut mine: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect();
        mine.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mine {
            if let Ok(c) = std::ffi::CString::new(m) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        // The slot's bridge goes too, so the next holder starts clean.
        let _ = Command::new("ip")
            .args(["link", "del", &self.slot.bridge()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Berthd {
    /// For a root test: a daemon with `busybox:latest` loaded, or None (and a `skipped:` line)
    /// when not root.
    pub fn with_busybox(test: &str) -> Option<Berthd> {
        if !crate::require_root(test) {
            return None;
        }
        let d = Berthd::start();
        d.load_busybox("busybox:latest");
        Some(d)
    }

    /// Load the busybox test image (an OCI layout, see [`crate::oci_image_layout`]) and tag
    /// it `tag` (e.g. `busybox:latest`). Returns the image ID.
    pub fn load_busybox(&self, tag: &str) -> String {
        let layout = self.dir.path().join("busybox-layout");
        if !layout.exists() {
            crate::oci_image_layout(&layout);
        }
        let tarball = self.dir.path().join("busybox-oci.tar");
        if !tarball.exists() {
            crate::tar_layout(&layout, &tarball);
        }
        let out = self.ok(&["load", "-i", tarball.to_str().unwrap()]);
        let id = crate::loaded_image_id(&out);
        self.ok(&["tag", &id, tag]);
        self.ok(&["image", "inspect", "-f", "{{.Id}}", tag])
            .trim()
            .to_string()
    }
}

/// The `{"message": ...}` of a non-chunked JSON error body.
pub fn message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("error body {body:?} is not JSON: {e}"));
    v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"))
        .to_string()
}
