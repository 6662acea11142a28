//! Berth VM benchmarks (not timed tests): boot to API-ready (TCG here unless BERTH_VM_ACCEL
//! says otherwise), qemu's resident memory when idle, bind-mount read/write throughput
//! through the 9p home share against the same I/O natively on the host, and how much of the
//! memory a container used qemu gives back after it exits.
//!
//! Needs root, qemu and the VM image (`bash packaging/vm/build.sh`); prints a skip line
//! otherwise. `BERTH_VM_BENCH_BOOTS` (default 2) boots are timed; `BERTH_VM_BENCH_MIB`
//! (default 128) sizes the throughput file.
//!   cargo bench -p berth-tests --bench vm

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::bench::{env_or, median};
use berth_tests::berthd::workspace_bin;
use berth_tests::oci_image_layout;

fn image_dir() -> PathBuf {
    std::env::var_os("BERTH_VM_IMAGE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join("packaging/vm/out")
        })
}

struct Bvm {
    dir: tempfile::TempDir,
    bin: PathBuf,
    accel: String,
}

impl Bvm {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--state-dir")
            .arg(self.dir.path())
            .args(args)
            .env("BERTH_VM_ACCEL", &self.accel)
            .env("BERTH_VM_IMAGE_DIR", image_dir());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "berth-vm {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn docker(&self, args: &[&str]) -> String {
        let o = Command::new("docker")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("berth.sock").display()
            ))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Bvm {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete"]).output();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// MiB/s of `dd` writing then reading `mib` MiB, natively.
fn native_dd(dir: &Path, mib: usize) -> (f64, f64) {
    let f = dir.join("native.bin");
    let t = Instant::now();
    let st = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", f.display()))
        .args([
            "bs=1M",
            &format!("count={mib}"),
            "conv=fsync",
            "status=none",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let w = mib as f64 / t.elapsed().as_secs_f64();
    let _ = Command::new("sh")
        .args(["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"])
        .status();
    let t = Instant::now();
    let st = Command::new("dd")
        .arg(format!("if={}", f.display()))
        .args(["of=/dev/null", "bs=1M", "status=none"])
        .status()
        .unwrap();
    assert!(st.success());
    let r = mib as f64 / t.elapsed().as_secs_f64();
    std::fs::remove_file(&f).unwrap();
    (w, r)
}

fn main() {
    if !berth_tests::is_root() {
        println!("skipped: the vm bench needs root");
        return;
    }
    if !image_dir().join("vmlinuz-x86_64").is_file() {
        println!(
            "skipped: no VM image in {} (bash packaging/vm/build.sh)",
            image_dir().display()
        );
        return;
    }
    let accel = std::env::var("BERTH_VM_ACCEL").unwrap_or_else(|_| "tcg".into());
    let vm = Bvm {
        dir: tempfile::Builder::new()
            .prefix("berth-vmb-")
            .tempdir()
            .unwrap(),
        bin: workspace_bin("berth-vm", "BERTH_VM_BIN", "berth-vm"),
        accel: accel.clone(),
    };
    let sock = vm.dir.path().join("berth.sock");
    vm.ok(&["create", "--disk", "8", "--socket", sock.to_str().unwrap()]);
    // The first boot formats the disk: timed apart.
    let t = Instant::now();
    vm.ok(&["start", "--wait", "900"]);
    println!(
        "vm boot to API-ready, first boot with mkfs ({accel}): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let mut boots = Vec::new();
    for _ in 0..env_or("BERTH_VM_BENCH_BOOTS", 2) {
        vm.ok(&["stop", "--timeout", "120"]);
        let t = Instant::now();
        vm.ok(&["start", "--wait", "900"]);
        boots.push(t.elapsed().as_secs_f64());
    }
    println!(
        "vm boot to API-ready ({accel}): median {:.2} s over {} boots",
        median(&boots),
        boots.len()
    );
    std::thread::sleep(Duration::from_secs(10));
    let st: serde_json::Value = serde_json::from_str(&vm.ok(&["status"])).unwrap();
    let pid = st["qemu_pid"].as_u64().unwrap() as u32;
    println!("vm idle memory: qemu RSS {} MiB", rss_kib(pid) / 1024);

    // Bind-mount throughput: dd in a container against the shared home vs natively.
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = oci_image_layout(&layout_dir.path().join("layout"));
    let tarball = layout_dir.path().join("busybox.tar");
    berth_tests::tar_layout(&layout.dir, &tarball);
    let out = vm.docker(&["load", "-i", tarball.to_str().unwrap()]);
    let id = berth_tests::loaded_image_id(&out);
    vm.docker(&["tag", &id, "busybox:latest"]);
    let mib = env_or("BERTH_VM_BENCH_MIB", 128);
    let home = tempfile::Builder::new()
        .prefix("berth-vmb-bind-")
        .tempdir_in("/root")
        .unwrap();
    let bind = format!("{}:/b", home.path().display());
    // Timed with the guest's /proc/uptime (10 ms steps; busybox has no date +%N). The guest's
    // page cache cannot be dropped from a container, so the read may be partly cached.
    let script = format!(
        "u() {{ cut -d' ' -f1 /proc/uptime; }}; a=$(u); \
         dd if=/dev/zero of=/b/f bs=1M count={mib} conv=fsync 2>/dev/null; b=$(u); \
         dd if=/b/f of=/dev/null bs=1M 2>/dev/null; c=$(u); echo $a $b $c"
    );
    let out = vm.docker(&["run", "--rm", "-v", &bind, "busybox", "sh", "-c", &script]);
    let t: Vec<f64> = out
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(t.len(), 3, "uptimes: {out}");
    let secs = [(t[1] - t[0]).max(0.01), (t[2] - t[1]).max(0.01)];
    let (vw, vr) = (mib as f64 / secs[0], mib as f64 / secs[1]);
    let (nw, nr) = native_dd(home.path(), mib);
    println!(
        "vm bind mount write: {vw:.0} MiB/s vs native {nw:.0} MiB/s ({:.0}%)",
        100.0 * vw / nw
    );
    println!(
        "vm bind mount read: {vr:.0} MiB/s vs native {nr:.0} MiB/s ({:.0}%)",
        100.0 * vr / nr
    );

    // Memory returned: a container touches BERTH_VM_BENCH_ALLOC_MIB (default 600) and exits;
    // qemu's RSS before, right after, and 15 s later (free page reporting hands freed guest
    // memory back; BERTH_VM_FREE_PAGE_REPORTING=0 turns it off for comparison).
    let alloc = env_or("BERTH_VM_BENCH_ALLOC_MIB", 600);
    let before = rss_kib(pid) / 1024;
    vm.docker(&[
        "run",
        "--rm",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        &format!("bs={alloc}M"),
        "count=1",
    ]);
    let peak = rss_kib(pid) / 1024;
    std::thread::sleep(Duration::from_secs(15));
    let after = rss_kib(pid) / 1024;
    println!(
        "vm memory returned after a {alloc} MiB container: qemu RSS {before} -> {peak} -> {after} MiB \
         15 s later ({:.0}% of the growth returned)",
        100.0 * (peak.saturating_sub(after)) as f64 / (peak.saturating_sub(before)).max(1) as f64
    );
    vm.ok(&["stop", "--timeout", "120"]);
}
