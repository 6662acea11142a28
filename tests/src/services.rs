//! Services the image suites and benchmarks start on loopback: Debian's `docker-registry`
//! (distribution 2.8) and a throwaway `dockerd` (the peer for side-by-side benchmarks). Each
//! handle owns a temp dir and stops its process (and cleans its mounts) on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A `docker-registry serve` on 127.0.0.1 with temp storage.
pub struct Registry {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
    /// The htpasswd file of [`Registry::start_with_htpasswd`].
    auth_dir: Option<tempfile::TempDir>,
}

/// The user and password of [`Registry::start_with_htpasswd`].
pub const TEST_USER: &str = "tester";
pub const TEST_PASSWORD: &str = "s3cret-pw";
/// bcrypt("s3cret-pw"), cost 5, for the registry's htpasswd file.
const TEST_HTPASSWD: &str = "tester:$2b$05$Z4.b0WyrAfgp7p0RVsuYde3VMlzuTQRRaPKAaWkFBeFldNtayMISe\n";

impl Registry {
    /// Start a plain registry. `extra_yaml` is appended to the config (e.g. a `proxy:` section
    /// to make it a pull-through mirror of another registry, or `auth:`).
    pub fn start_with(extra_yaml: &str) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra_yaml}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry (apt install docker-registry)");
        assert!(
            wait_tcp(port, Duration::from_secs(20)),
            "docker-registry did not listen on 127.0.0.1:{port}"
        );
        Registry {
            port,
            child,
            dir,
            auth_dir: None,
        }
    }

    pub fn start() -> Registry {
        Registry::start_with("")
    }

    /// A registry that wants basic auth: user [`TEST_USER`], password [`TEST_PASSWORD`].
    pub fn start_with_htpasswd() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-htpasswd-")
            .tempdir()
            .expect("tempdir");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, TEST_HTPASSWD).expect("write htpasswd");
        let mut r = Registry::start_with(&format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            htpasswd.display()
        ));
        r.auth_dir = Some(dir);
        r
    }

    /// `127.0.0.1:<port>`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Push an OCI image layout (its `latest` ref) to `<host>/<repo_tag>` with skopeo.
    pub fn push_layout(&self, layout: &Path, repo_tag: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .expect("run skopeo (apt install skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy to {}: {}",
            self.host(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private `dockerd` (Debian's docker.io) with its own data root, exec root, pidfile and
/// socket, for side-by-side benchmarks. Loopback registries are insecure by default for it.
pub struct Dockerd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        Dockerd::start_with(&["--bridge=none"])
    }

    /// With these network arguments instead of `--bridge=none` (iptables stays off).
    pub fn start_with(net_args: &[&str]) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("docker.sock");
        let data = dir.path().join("data");
        let exec = dir.path().join("exec");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("dockerd log");
        let child = Command::new("dockerd")
            .arg(format!("--data-root={}", data.display()))
            .arg(format!("--exec-root={}", exec.display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("dockerd.pid").display()
            ))
            .arg(format!("--host=unix://{}", socket.display()))
            .args(net_args)
            .args(["--iptables=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd (apt install docker.io)");
        let d = Dockerd { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if d.docker(&["version"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "dockerd did not come up; log: {}",
            std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    /// The docker CLI pointed at this daemon.
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd leaves overlay and other mounts under its data root: lazily unmount them
        // so the temp dir can go.
        let root = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = mi
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}
