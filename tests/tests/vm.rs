//! The Berth VM end to end, under qemu with TCG (this machine's nested KVM hangs at early boot):
//! create and boot the VM with `berth-vm`, `_ping` berthd through the host-side engine socket,
//! load an image, pull from a loopback registry on the host (the guest reaches it as
//! 10.0.2.2), answer a `-p` port (TCP and UDP) on the host's 127.0.0.1, write into a bind-mounted host
//! directory under the shared home, stop/start and kill -9/start with images, volumes and the
//! data disk intact, docker-compose 1.29 and `berth compose` against the VM; and a VM run by an ordinary user (nobody): bind-mount writes land as that user on
//! the host, and another user reaches none of its sockets.
//!
//! Needs root, `qemu-system-x86_64` and the VM image (`bash packaging/vm/build.sh`, found in
//! `$BERTH_VM_IMAGE_DIR`, else `packaging/vm/out`); skips with a printed reason otherwise.
//! `berth-vm` is found as `$BERTH_VM_BIN`, else in the target dir (`cargo build -p berth-vm`).
//! `BERTH_VM_BOOT_TIMEOUT` (seconds, default 900) bounds each boot.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_tests::berthd::workspace_bin;
use berth_tests::services::{free_port, Registry};
use berth_tests::{oci_image_layout, require_root};

fn image_dir() -> PathBuf {
    match std::env::var_os("BERTH_VM_IMAGE_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("packaging/vm/out"),
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Why this machine cannot run the VM suite, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !on_path("qemu-system-x86_64") && std::env::var_os("BERTH_VM_QEMU").is_none() {
        return Some("qemu-system-x86_64 is not installed (apt install qemu-system-x86)".into());
    }
    if !on_path("qemu-img") {
        return Some("qemu-img is not installed (apt install qemu-utils)".into());
    }
    let dir = image_dir();
    for f in ["vmlinuz-x86_64", "initramfs-x86_64.img"] {
        if !dir.join(f).is_file() {
            return Some(format!(
                "the VM image is not built ({} missing): run `bash packaging/vm/build.sh` or set BERTH_VM_IMAGE_DIR",
                dir.join(f).display()
            ));
        }
    }
    for p in ["docker", "skopeo", "docker-registry"] {
        if !on_path(p) {
            return Some(format!("{p} is not installed (bash .ci/setup)"));
        }
    }
    None
}

fn boot_timeout() -> u64 {
    std::env::var("BERTH_VM_BOOT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(900)
}

/// A VM in a temp state directory, driven through the `berth-vm` program; deleted on drop.
struct TestVm {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl TestVm {
    fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--state-dir")
            .arg(self.dir.path())
            .args(args)
            .env("BERTH_VM_ACCEL", "tcg")
            .env("BERTH_VM_IMAGE_DIR", image_dir());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "berth-vm {args:?}: {}{}\nconsole:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.console()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status"])).unwrap()
    }

    fn start(&self) -> Duration {
        let t = Instant::now();
        self.ok(&["start", "--wait", &boot_timeout().to_string()]);
        t.elapsed()
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .unwrap()
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for TestVm {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete"]).output();
    }
}

/// `GET /_ping` over the host's engine socket.
fn ping(sock: &Path) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The body of `GET /` on the host's 127.0.0.1:<port>, if it answers.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (_, body) = out.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// A UDP echo server for the container (busybox's `nc` has no UDP): answers every datagram to
/// UDP port 53 with `echo:` and the datagram, from the same socket.
const UDP_ECHO_RS: &str = r#"
use std::net::{SocketAddr, UdpSocket};
fn main() {
    let Ok(s) = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 53))) else {
        eprintln!("udp-echo: cannot bind 0.0.0.0:53");
        std::process::exit(1);
    };
    let mut buf = vec![0u8; 65536];
    loop {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, from);
        }
    }
}
"#;

/// Builds [`UDP_ECHO_RS`] as a static binary (it runs in the busybox image, which has no
/// libc) into `dir`, with the rustc that built this test.
fn build_udp_echo(dir: &Path) -> PathBuf {
    let src = dir.join("udp-echo.rs");
    let bin = dir.join("udp-echo");
    std::fs::write(&src, UDP_ECHO_RS).unwrap();
    let rustc = std::env::var_os("RUSTC")
        .map(PathBuf::from)
        .or_else(|| {
            let cargo = PathBuf::from(std::env::var_os("CARGO")?);
            let r = cargo.with_file_name("rustc");
            r.is_file().then_some(r)
        })
        .unwrap_or_else(|| PathBuf::from("rustc"));
    let out = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", rustc.display()));
    assert!(
        out.status.success(),
        "building the UDP echo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// What the host's 127.0.0.1:<port> answers `msg` over UDP from `client`, if anything within
/// two seconds.
fn udp_ask(client: &UdpSocket, port: u16, msg: &[u8]) -> Option<Vec<u8>> {
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client.send_to(msg, ("127.0.0.1", port)).ok()?;
    let mut buf = vec![0u8; 65536];
    let (n, from) = client.recv_from(&mut buf).ok()?;
    assert_eq!(from.port(), port, "the reply comes from the published port");
    Some(buf[..n].to_vec())
}

/// A port nothing holds for UDP on the host's 127.0.0.1.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out ({timeout:?}) waiting for {what}");
}

/// One TCG VM at a time: two at once on a small machine only make both slower.
static ONE_VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn vm_end_to_end_under_tcg() {
    if !require_root("vm_end_to_end_under_tcg") {
        return;
    }
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipped: vm_end_to_end_under_tcg: {why}");
        return;
    }
    let _one = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    let bin = workspace_bin("berth-vm", "BERTH_VM_BIN", "berth-vm");
    let vm = TestVm {
        dir: tempfile::Builder::new()
            .prefix("berth-vm-")
            .tempdir()
            .unwrap(),
        bin,
    };
    // The image loaded and the registry pushed to, from the same busybox layout.
    let reg = Registry::start();
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    reg.push_layout(&layout.dir, "test/busybox:vm");
    let tarball = layout_dir.path().join("busybox.tar");
    berth_tests::tar_layout(&layout.dir, &tarball);

    // Create: a sparse qcow2 disk and config.json; the home is shared by default.
    let sock = vm.socket();
    vm.ok(&[
        "create",
        "--cpus",
        "2",
        "--memory",
        "2048",
        "--disk",
        "8",
        "--socket",
        sock.to_str().unwrap(),
    ]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vm.state_dir().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["shares"][0]["host_path"], "/root", "{cfg}");
    assert_eq!(vm.status()["state"], "stopped");

    // Boot 1 (first boot: the guest formats the disk).
    let boot1 = vm.start();
    eprintln!("boot 1 (TCG, with mkfs): {:.1} s", boot1.as_secs_f64());
    let st = vm.status();
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["accel"], "tcg", "{st}");
    let console = vm.console();
    assert!(console.contains("berth-init: ready"), "{console}");
    let pong = ping(&sock);
    assert!(
        pong.starts_with("HTTP/1.1 200") && pong.ends_with("OK"),
        "{pong}"
    );
    // The agent is reachable only through the control channel: qemu forwards no port from the
    // host, the channel's socket and serve's agent socket live in the owner-only state
    // directory, and the agent socket itself is 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(vm.state_dir()), 0o700);
    assert_eq!(mode(&vm.state_dir().join("agent.sock")), 0o600);
    assert!(vm.state_dir().join("control.sock").exists());
    let qemu_cmdline = std::fs::read(format!(
        "/proc/{}/cmdline",
        st["qemu_pid"].as_i64().unwrap()
    ))
    .unwrap();
    let qemu_cmdline = String::from_utf8_lossy(&qemu_cmdline).replace('\0', " ");
    assert!(
        !qemu_cmdline.contains("hostfwd") && qemu_cmdline.contains("name=berth.control"),
        "{qemu_cmdline}"
    );
    assert!(!st.as_object().unwrap().contains_key("agent_port"), "{st}");

    // Load the busybox image through the host socket.
    let out = vm.docker_ok(&["load", "-i", tarball.to_str().unwrap()]);
    let id = berth_tests::loaded_image_id(&out);
    vm.docker_ok(&["tag", &id, "busybox:latest"]);
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "busybox", "echo", "hello from the vm"])
            .trim(),
        "hello from the vm"
    );
    // Nor can a container in the VM reach an agent: it listens on no network (the old
    // agent's TCP port on the guest's address refuses).
    assert_eq!(
        vm.docker_ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "if nc -w 3 10.0.2.15 1024 </dev/null; then echo reachable; else echo refused; fi",
        ])
        .trim(),
        "refused"
    );

    // A bind mount of a host directory under the shared home: the container's write lands on
    // the host, owned by the host user running qemu.
    let home_dir = tempfile::Builder::new()
        .prefix("berth-vm-bind-")
        .tempdir_in("/root")
        .unwrap();
    let bind = format!("{}:/out", home_dir.path().display());
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo written-in-vm > /out/f && mkdir /out/d",
    ]);
    let f = home_dir.path().join("f");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "written-in-vm\n");
    use std::os::unix::fs::MetadataExt;
    let uid = unsafe { libc::geteuid() };
    assert_eq!(std::fs::metadata(&f).unwrap().uid(), uid);
    assert_eq!(
        std::fs::metadata(home_dir.path().join("d")).unwrap().uid(),
        uid
    );
    // And the other way: a host file read in the container.
    std::fs::write(home_dir.path().join("from-host"), "host-data").unwrap();
    let bind_ro = format!("{}:/in:ro", home_dir.path().display());
    assert_eq!(
        vm.docker_ok(&[
            "run",
            "--rm",
            "-v",
            &bind_ro,
            "busybox",
            "cat",
            "/in/from-host"
        ]),
        "host-data"
    );

    // A published port answers on the host's 127.0.0.1, and closes when the container stops.
    let hp = free_port();
    let publish = format!("127.0.0.1:{hp}:8080");
    let cid = vm
        .docker_ok(&[
            "run",
            "-d",
            "-p",
            &publish,
            "busybox",
            "sh",
            "-c",
            "mkdir /w && echo port-from-vm > /w/index.html && exec httpd -f -p 8080 -h /w",
        ])
        .trim()
        .to_string();
    wait_until(
        "the published port on the host",
        Duration::from_secs(120),
        || http_get(hp).as_deref() == Some("port-from-vm\n"),
    );
    vm.docker_ok(&["stop", "-t", "1", &cid]);
    wait_until("the host port to close", Duration::from_secs(60), || {
        TcpStream::connect(("127.0.0.1", hp)).is_err()
    });
    vm.docker_ok(&["rm", &cid]);

    // docker-compose 1.29 and the `berth` CLI work unchanged against the VM's socket: a
    // project comes up, its published port answers on the host, `berth compose ps` sees it,
    // down takes everything away (and the host port closes).
    let proj = tempfile::tempdir().unwrap();
    let hc = free_port();
    std::fs::write(
        proj.path().join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: busybox:latest\n    ports: [\"127.0.0.1:{hc}:8080\"]\n    \
             command: [\"sh\", \"-c\", \"mkdir -p /www && echo compose-in-vm > /www/index.html && \
             exec httpd -f -p 8080 -h /www\"]\n"
        ),
    )
    .unwrap();
    let host = format!("unix://{}", sock.display());
    let compose = |args: &[&str]| {
        let o = Command::new("docker-compose")
            .current_dir(proj.path())
            .env("DOCKER_HOST", &host)
            .args(["-p", "vmproj"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    compose(&["up", "-d"]);
    wait_until(
        "the compose service's port on the host",
        Duration::from_secs(120),
        || http_get(hc).as_deref() == Some("compose-in-vm\n"),
    );
    let berth = workspace_bin("berth", "BERTH", "berth-cli");
    let o = Command::new(&berth)
        .args([
            "-H", &host, "compose", "-p", "vmproj", "ps", "--format", "json",
        ])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && ps.contains("\"Service\":\"web\"") && ps.contains("running"),
        "berth compose ps: {ps}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    compose(&["down"]);
    wait_until("the compose port to close", Duration::from_secs(60), || {
        TcpStream::connect(("127.0.0.1", hc)).is_err()
    });
    let o = Command::new(&berth)
        .args([
            "-H",
            &host,
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=vmproj",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(o.status.success() && o.stdout.is_empty(), "{o:?}");

    // A published UDP port: each datagram from a host client reaches the container's port,
    // the reply comes back to that client; two clients are two peers; the host socket closes
    // when the container stops. The echo program comes through the shared home.
    let echo_dir = tempfile::Builder::new()
        .prefix("berth-vm-udp-")
        .tempdir_in("/root")
        .unwrap();
    build_udp_echo(echo_dir.path());
    let hu = free_udp_port();
    let publish_udp = format!("127.0.0.1:{hu}:53/udp");
    let bin_mount = format!("{}:/x:ro", echo_dir.path().display());
    let ucid = vm
        .docker_ok(&[
            "run",
            "-d",
            "-p",
            &publish_udp,
            "-v",
            &bin_mount,
            "busybox",
            "/x/udp-echo",
        ])
        .trim()
        .to_string();
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    wait_until(
        "the published UDP port on the host",
        Duration::from_secs(120),
        || udp_ask(&a, hu, b"udp-from-host").as_deref() == Some(b"echo:udp-from-host".as_slice()),
    );
    assert_eq!(
        udp_ask(&b, hu, b"second peer").as_deref(),
        Some(b"echo:second peer".as_slice())
    );
    let big = vec![b'u'; 8000];
    let mut want = b"echo:".to_vec();
    want.extend_from_slice(&big);
    assert_eq!(udp_ask(&a, hu, &big), Some(want));
    let serve_log = std::fs::read_to_string(vm.state_dir().join("serve.log")).unwrap_or_default();
    assert!(
        serve_log.contains(&format!("forwarding 127.0.0.1:{hu}/udp")),
        "{serve_log}"
    );
    vm.docker_ok(&["stop", "-t", "1", &ucid]);
    wait_until(
        "the host UDP port to close",
        Duration::from_secs(60),
        || UdpSocket::bind(("127.0.0.1", hu)).is_ok(),
    );
    vm.docker_ok(&["rm", &ucid]);

    // A volume with data, and the registry made insecure for the next boot (daemon.json on the
    // data disk, written through a container that mounts the guest's data root).
    vm.docker_ok(&["volume", "create", "vmvol"]);
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "vmvol:/v",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /v/f",
    ]);
    let daemon_json = format!(
        "{{\"registry-mirrors\": [], \"insecure-registries\": [\"10.0.2.2:{}\"]}}",
        reg.port
    );
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "/var/lib/berth:/d",
        "busybox",
        "sh",
        "-c",
        &format!("printf '%s\\n' '{daemon_json}' > /d/daemon.json"),
    ]);

    // Stop (graceful, through the agent) and boot 2: images and volumes are still there.
    let stopped = vm.ok(&["stop", "--timeout", "120"]);
    assert_eq!(stopped.trim(), "Graceful", "{stopped}");
    assert_eq!(vm.status()["state"], "stopped");
    assert!(!sock.exists(), "the engine socket goes away with the VM");
    let boot2 = vm.start();
    eprintln!("boot 2 (TCG): {:.1} s", boot2.as_secs_f64());
    assert!(
        vm.console().contains("checked /dev/vda: clean"),
        "{}",
        vm.console()
    );
    let images = vm.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == "busybox:latest"), "{images}");
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "-v", "vmvol:/v", "busybox", "cat", "/v/f"]),
        "persisted\n"
    );

    // The host-side server dies while the guest runs: `start` brings a new one, which takes
    // the control channel over (a new session; the guest drops the old one's streams).
    let serve_pid = vm.status()["serve_pid"].as_i64().unwrap();
    unsafe { libc::kill(serve_pid as i32, libc::SIGKILL) };
    wait_until("serve to die", Duration::from_secs(10), || unsafe {
        libc::kill(serve_pid as i32, 0) != 0
    });
    assert_eq!(vm.status()["state"], "starting", "no agent without serve");
    vm.start();
    assert_ne!(vm.status()["serve_pid"].as_i64().unwrap(), serve_pid);
    assert_eq!(vm.status()["state"], "running");
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "-v", "vmvol:/v", "busybox", "cat", "/v/f"]),
        "persisted\n"
    );

    // Pull from the host's loopback registry through the user-network gateway.
    let remote = format!("10.0.2.2:{}/test/busybox:vm", reg.port);
    vm.docker_ok(&["pull", &remote]);
    assert_eq!(
        vm.docker_ok(&["run", "--rm", &remote, "echo", "pulled"])
            .trim(),
        "pulled"
    );

    // kill -9 qemu, then boot 3: the data disk comes back (fsck clean or journal replayed)
    // with everything on it.
    let pid = vm.status()["qemu_pid"].as_i64().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_until("qemu to die", Duration::from_secs(30), || unsafe {
        libc::kill(pid as i32, 0) != 0
    });
    assert_eq!(vm.status()["state"], "stopped");
    let boot3 = vm.start();
    eprintln!("boot 3 (TCG, after kill -9): {:.1} s", boot3.as_secs_f64());
    let console = vm.console();
    let fsck = console
        .lines()
        .find(|l| l.contains("checked /dev/vda") || l.contains("repaired /dev/vda"))
        .unwrap_or_else(|| panic!("no fsck line in the console:\n{console}"))
        .to_string();
    eprintln!("after kill -9: {fsck}");
    assert!(
        fsck.contains("clean") || fsck.contains("errors corrected"),
        "the data disk needed more than a journal replay: {fsck}"
    );
    let images = vm.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == "busybox:latest"), "{images}");
    assert!(
        images.lines().any(|l| l.starts_with("10.0.2.2:")),
        "{images}"
    );
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "-v", "vmvol:/v", "busybox", "cat", "/v/f"]),
        "persisted\n"
    );

    let stopped = vm.ok(&["stop", "--timeout", "120"]);
    assert_eq!(stopped.trim(), "Graceful", "{stopped}");
    vm.ok(&["delete"]);
    assert!(!vm.state_dir().exists());
}

/// `nobody`: the VM run by an ordinary user, as on a laptop.
const USER_UID: u32 = 65534;
const USER_GID: u32 = 65534;
/// Another ordinary user, who must not reach the first one's VM.
const OTHER_UID: u32 = 65533;

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

#[test]
fn vm_of_an_ordinary_user_writes_as_that_user_and_is_private_to_them() {
    if !require_root("vm_of_an_ordinary_user_writes_as_that_user_and_is_private_to_them") {
        return;
    }
    if let Some(why) = missing_prerequisite() {
        eprintln!(
            "skipped: vm_of_an_ordinary_user_writes_as_that_user_and_is_private_to_them: {why}"
        );
        return;
    }
    let _one = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    // Everything the user's VM needs, in a directory of theirs: the program and the image
    // (copied, so nothing depends on the checkout's permissions), their home, the state dir.
    let top = tempfile::Builder::new()
        .prefix("berth-vm-user-")
        .tempdir()
        .unwrap();
    let t = top.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (bin, img, home) = (t.join("berth-vm"), t.join("image"), t.join("home"));
    std::fs::copy(workspace_bin("berth-vm", "BERTH_VM_BIN", "berth-vm"), &bin).unwrap();
    std::fs::create_dir(&img).unwrap();
    for f in ["vmlinuz-x86_64", "initramfs-x86_64.img"] {
        std::fs::copy(image_dir().join(f), img.join(f)).unwrap();
    }
    std::fs::create_dir_all(home.join("code")).unwrap();
    for p in [t, &home, &home.join("code")] {
        chown(p, USER_UID, USER_GID);
    }
    let state = t.join("state");
    let sock = t.join("berth.sock");
    let as_user = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        let o = Command::new(&bin)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .uid(USER_UID)
            .gid(USER_GID)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("BERTH_VM_ACCEL", "tcg")
            .env("BERTH_VM_IMAGE_DIR", &img)
            .output()
            .unwrap();
        let console = std::fs::read_to_string(state.join("console.log")).unwrap_or_default();
        assert!(
            o.status.success(),
            "berth-vm {args:?} as uid {USER_UID}: {}{}\nconsole:\n{console}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let docker = |args: &[&str]| {
        let o = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    as_user(&[
        "create",
        "--cpus",
        "2",
        "--memory",
        "1024",
        "--disk",
        "2",
        "--socket",
        sock.to_str().unwrap(),
    ]);
    let t0 = Instant::now();
    as_user(&["start", "--wait", &boot_timeout().to_string()]);
    eprintln!(
        "boot as uid {USER_UID} (TCG, with mkfs): {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    let tarball = layout_dir.path().join("busybox.tar");
    berth_tests::tar_layout(&layout.dir, &tarball);
    let out = docker(&["load", "-i", tarball.to_str().unwrap()]);
    let id = berth_tests::loaded_image_id(&out);

    // The container runs as root in the VM; what it writes into the user's bind-mounted
    // directory belongs to the user on the host, never to root.
    let code = home.join("code");
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/app", code.display()),
        &id,
        "sh",
        "-c",
        "echo built > /app/out.txt && mkdir -p /app/dist/sub && echo x > /app/dist/sub/y",
    ]);
    use std::os::unix::fs::MetadataExt;
    for p in ["out.txt", "dist", "dist/sub", "dist/sub/y"] {
        let m = std::fs::metadata(code.join(p)).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (USER_UID, USER_GID),
            "{p} on the host is owned by {}:{}, not the user who runs the VM",
            m.uid(),
            m.gid()
        );
    }
    assert_eq!(
        std::fs::read_to_string(code.join("out.txt")).unwrap(),
        "built\n"
    );

    // Memory a container used goes back to the host once it is freed (free page reporting
    // through virtio-balloon): qemu's resident set falls again after a 512 MiB `dd` buffer.
    let qemu_pid: u32 = std::fs::read_to_string(state.join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let rss_mib = || {
        std::fs::read_to_string(format!("/proc/{qemu_pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            / 1024
    };
    let before = rss_mib();
    docker(&[
        "run",
        "--rm",
        &id,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=512M",
        "count=1",
    ]);
    let peak = rss_mib();
    assert!(
        peak >= before + 400,
        "the container's 512 MiB never reached qemu ({before} -> {peak} MiB)"
    );
    wait_until(
        "qemu to give the freed memory back",
        Duration::from_secs(120),
        || rss_mib() + 300 <= peak,
    );
    eprintln!(
        "qemu RSS: {before} MiB idle, {peak} MiB after a 512 MiB container, {} MiB once returned",
        rss_mib()
    );

    // Private to that user: another ordinary user reaches neither the engine socket nor the
    // agent socket (nor anything else in the 0700 state directory).
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("agent.sock")), 0o600);
    for target in [
        sock.clone(),
        state.join("agent.sock"),
        state.join("control.sock"),
    ] {
        use std::os::unix::process::CommandExt;
        let o = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", target.display()))
            .arg("version")
            .uid(OTHER_UID)
            .gid(OTHER_UID)
            .env("HOME", "/nonexistent")
            .env("DOCKER_CONFIG", t.join("other-docker-config"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("permission denied"),
            "uid {OTHER_UID} on {}: {err}",
            target.display()
        );
    }
    // The user's own docker CLI reaches it.
    {
        use std::os::unix::process::CommandExt;
        let o = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["version", "--format", "{{.Server.Os}}"])
            .uid(USER_UID)
            .gid(USER_GID)
            .env("HOME", &home)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "linux",
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let stopped = as_user(&["stop", "--timeout", "120"]);
    assert_eq!(stopped.trim(), "Graceful", "{stopped}");
    as_user(&["delete"]);
    assert!(!state.exists());
}
