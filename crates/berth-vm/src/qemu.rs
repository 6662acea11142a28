//! The qemu command line (built in one place for every accelerator), accelerator choice,
//! host directory shares (virtiofs through `virtiofsd` where available, 9p otherwise),
//! `qemu-img` and the QMP forced stop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{Accel, Share};
use crate::{io_err, Error, Result};

/// The name of the control channel's virtio-serial port (the guest finds it by this name).
pub const CONTROL_PORT_NAME: &str = berth_vm_init::CONTROL_PORT_NAME;

/// How one share reaches the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareVia {
    /// qemu's own 9p server (`-virtfs`).
    NineP,
    /// vhost-user-fs: a `virtiofsd` listening on this unix socket (started before qemu).
    Virtiofs { socket: PathBuf },
}

/// A share with the transport chosen for this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedShare {
    pub share: Share,
    pub via: ShareVia,
}

impl PlannedShare {
    pub fn nine_p(share: Share) -> PlannedShare {
        PlannedShare {
            share,
            via: ShareVia::NineP,
        }
    }
}

/// `BERTH_VM_SHARE`: which share transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharePreference {
    /// Unset or `auto`: virtiofs where a usable `virtiofsd` is found, 9p otherwise.
    Auto,
    /// `9p`: always 9p.
    NineP,
    /// `virtiofs`: virtiofs or a clear error.
    Virtiofs,
}

impl SharePreference {
    pub fn from_env() -> Result<SharePreference> {
        match std::env::var("BERTH_VM_SHARE") {
            Err(_) => Ok(SharePreference::Auto),
            Ok(v) => SharePreference::parse(&v),
        }
    }

    pub fn parse(v: &str) -> Result<SharePreference> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(SharePreference::Auto),
            "9p" => Ok(SharePreference::NineP),
            "virtiofs" => Ok(SharePreference::Virtiofs),
            other => Err(Error::Other(format!(
                "BERTH_VM_SHARE={other}: use auto (virtiofs where available), 9p or virtiofs"
            ))),
        }
    }
}

/// Which virtiofsd: the C one from qemu (≤ 7.2, `-o` options) or the Rust one (long options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtiofsdKind {
    Qemu,
    Rust,
}

/// `virtiofsd`: `BERTH_VM_VIRTIOFSD`, next to this program, on PATH, then where distributions
/// install it outside PATH (`/usr/libexec/virtiofsd`: the Rust one on Debian 13/Fedora;
/// `/usr/lib/qemu/virtiofsd`: qemu 7.2's C one on Debian 12).
pub fn find_virtiofsd() -> Option<PathBuf> {
    if let Ok(p) = crate::config::find_program("virtiofsd", "BERTH_VM_VIRTIOFSD") {
        return p.is_file().then_some(p);
    }
    ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Tells the two virtiofsd implementations apart from `--version` (qemu's says
/// `virtiofsd version 7.2...`).
pub fn virtiofsd_kind(bin: &Path) -> Result<VirtiofsdKind> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(io_err(format!("running {} --version", bin.display())))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !text.contains("virtiofsd") {
        return Err(Error::Other(format!(
            "{} --version did not answer like virtiofsd: {}",
            bin.display(),
            text.trim()
        )));
    }
    Ok(if text.contains("virtiofsd version") {
        VirtiofsdKind::Qemu
    } else {
        VirtiofsdKind::Rust
    })
}

/// The longest unix socket path (`sun_path` holds 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// One virtiofsd serving one share.
#[derive(Debug, Clone)]
pub struct VirtiofsdPlan {
    pub bin: PathBuf,
    pub kind: VirtiofsdKind,
    pub socket: PathBuf,
    pub source: PathBuf,
}

impl VirtiofsdPlan {
    /// Why this share cannot go through virtiofsd (then it goes through 9p), if it cannot.
    pub fn unusable(&self) -> Option<String> {
        let sock = self.socket.as_os_str().len();
        if sock > MAX_SOCKET_PATH {
            return Some(format!(
                "the socket path {} is {sock} bytes, longer than a unix socket allows                  ({MAX_SOCKET_PATH}); use a shorter state directory",
                self.socket.display()
            ));
        }
        // qemu's virtiofsd splits `-o` on commas.
        if self.kind == VirtiofsdKind::Qemu && self.source.to_string_lossy().contains(',') {
            return Some(format!(
                "{} has a comma, which qemu's virtiofsd cannot take in -o source=",
                self.source.display()
            ));
        }
        None
    }

    /// Its arguments: the share's directory, metadata cached with the usual timeouts
    /// (`cache=auto`), no extended attributes, the default sandbox (a mount namespace
    /// pivoted into the shared directory; needs root), in the foreground.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut sock = OsString::from("--socket-path=");
        sock.push(&self.socket);
        a.push(sock);
        match self.kind {
            VirtiofsdKind::Qemu => {
                let mut src = OsString::from("source=");
                src.push(&self.source);
                for o in [src, "cache=auto".into(), "no_xattr".into()] {
                    a.push("-o".into());
                    a.push(o);
                }
            }
            VirtiofsdKind::Rust => {
                let mut dir = OsString::from("--shared-dir=");
                dir.push(&self.source);
                a.push(dir);
                a.push("--cache=auto".into());
            }
        }
        a
    }
}

/// Everything one qemu invocation needs.
#[derive(Debug, Clone)]
pub struct QemuPlan {
    pub qemu: PathBuf,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    pub accel: Accel,
    pub cpus: u32,
    pub memory_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub disk: PathBuf,
    pub shares: Vec<PlannedShare>,
    /// The control channel's socket (qemu listens; `berth-vm serve` connects).
    pub control_socket: PathBuf,
    /// A virtio-balloon device with free page reporting (off: `BERTH_VM_FREE_PAGE_REPORTING=0`).
    pub free_page_reporting: bool,
    pub console_log: PathBuf,
    pub pidfile: PathBuf,
    pub qmp_socket: PathBuf,
    pub kernel_args: Vec<String>,
    /// `-daemonize` (not on Windows: there the caller detaches the process).
    pub daemonize: bool,
}

/// Escapes a value for qemu's `key=value,...` option syntax (a comma is doubled).
fn opt(v: &Path) -> String {
    v.to_string_lossy().replace(',', ",,")
}

impl QemuPlan {
    /// The guest's serial console device name.
    pub fn console_device(&self) -> &'static str {
        if self.arch == "aarch64" {
            "ttyAMA0"
        } else {
            "ttyS0"
        }
    }

    /// The guest kernel's command line (the contract in docs/vm.md).
    pub fn kernel_cmdline(&self) -> String {
        let mut words = vec![
            format!("console={}", self.console_device()),
            "quiet".to_string(),
            "panic=-1".to_string(),
            "berth.data=/dev/vda".to_string(),
        ];
        for p in &self.shares {
            // 9p is the guest's default, so a 9p share reads as it did before virtiofs.
            let suffix = match p.via {
                ShareVia::NineP => "",
                ShareVia::Virtiofs { .. } => ":virtiofs",
            };
            words.push(format!(
                "berth.share={}:{}{suffix}",
                p.share.tag,
                p.share.guest_path().to_string_lossy()
            ));
        }
        words.extend(self.kernel_args.iter().cloned());
        words.join(" ")
    }

    /// The full argument vector (without the program).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        push(&["-name", "berth", "-nodefaults", "-no-user-config"]);
        let machine = if self.arch == "aarch64" {
            "virt,highmem=on"
        } else {
            "q35"
        };
        push(&["-machine", machine, "-accel", self.accel.as_str()]);
        let cpu = match self.accel {
            Accel::Kvm | Accel::Hvf => "host",
            Accel::Whpx | Accel::Tcg => "max",
        };
        push(&["-cpu", cpu]);
        let smp = self.cpus.to_string();
        let mem = format!("{}M", self.memory_mib);
        push(&["-smp", &smp, "-m", &mem]);
        // vhost-user devices need the guest's RAM in shared memory virtiofsd can map.
        if self
            .shares
            .iter()
            .any(|p| matches!(p.via, ShareVia::Virtiofs { .. }))
        {
            let obj = format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                self.memory_mib
            );
            push(&["-object", &obj, "-numa", "node,memdev=mem"]);
        }
        push(&["-display", "none", "-monitor", "none", "-no-reboot"]);
        let kernel = self.kernel.to_string_lossy().into_owned();
        let initrd = self.initrd.to_string_lossy().into_owned();
        let cmdline = self.kernel_cmdline();
        push(&["-kernel", &kernel, "-initrd", &initrd, "-append", &cmdline]);
        // Serial console to a file: the init's log and the kernel's.
        let chardev = format!("file,id=console,path={}", opt(&self.console_log));
        push(&["-chardev", &chardev, "-serial", "chardev:console"]);
        // The data disk: virtio-blk, the guest's /dev/vda; discards free host space.
        let drive = format!(
            "file={},if=none,id=data,format=qcow2,discard=unmap,detect-zeroes=unmap,cache=writeback",
            opt(&self.disk)
        );
        push(&["-drive", &drive, "-device", "virtio-blk-pci,drive=data"]);
        // User networking: outbound only, nothing forwarded in.
        push(&[
            "-netdev",
            "user,id=net0",
            "-device",
            "virtio-net-pci,netdev=net0",
        ]);
        push(&["-device", "virtio-rng-pci"]);
        // Memory the guest frees goes back to the host (free page reporting, guest module
        // virtio_balloon): a build that used a gigabyte does not leave qemu holding it.
        if self.free_page_reporting {
            push(&["-device", "virtio-balloon-pci,free-page-reporting=on"]);
        }
        // The control channel: a virtio-serial port the guest's agent opens, served by qemu
        // on a unix socket in the (0700) state directory.
        let control = format!(
            "socket,id=control,path={},server=on,wait=off",
            opt(&self.control_socket)
        );
        push(&[
            "-device",
            "virtio-serial-pci,id=vser0",
            "-chardev",
            &control,
        ]);
        push(&[
            "-device",
            &format!("virtserialport,bus=vser0.0,chardev=control,name={CONTROL_PORT_NAME}"),
        ]);
        for (i, p) in self.shares.iter().enumerate() {
            let s = &p.share;
            match &p.via {
                ShareVia::NineP => {
                    let fs = format!(
                        "local,path={},mount_tag={},security_model=none,multidevs=remap,id=fs{i}",
                        opt(&s.host_path),
                        s.tag
                    );
                    push(&["-virtfs", &fs]);
                }
                ShareVia::Virtiofs { socket } => {
                    let chardev = format!("socket,id=vfs{i},path={}", opt(socket));
                    let dev = format!(
                        "vhost-user-fs-pci,chardev=vfs{i},tag={},queue-size=1024",
                        s.tag
                    );
                    push(&["-chardev", &chardev, "-device", &dev]);
                }
            }
        }
        let qmp = format!("unix:{},server=on,wait=off", opt(&self.qmp_socket));
        push(&["-qmp", &qmp]);
        let pidfile = self.pidfile.to_string_lossy().into_owned();
        push(&["-pidfile", &pidfile]);
        if self.daemonize {
            push(&["-daemonize"]);
        }
        a.into_iter().map(OsString::from).collect()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.qemu);
        c.args(self.args());
        c
    }
}

/// The accelerator: `BERTH_VM_ACCEL` wins, then the config's, then the platform's hypervisor
/// when usable (`/dev/kvm` opens read-write on Linux), else tcg.
pub fn choose_accel(configured: Option<Accel>) -> Result<Accel> {
    if let Some(v) = std::env::var_os("BERTH_VM_ACCEL").filter(|v| !v.is_empty()) {
        return v.to_string_lossy().parse();
    }
    if let Some(a) = configured {
        return Ok(a);
    }
    Ok(platform_accel())
}

fn platform_accel() -> Accel {
    if cfg!(target_os = "linux") {
        let kvm = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm");
        if kvm.is_ok() {
            return Accel::Kvm;
        }
        Accel::Tcg
    } else if cfg!(target_os = "macos") {
        Accel::Hvf
    } else if cfg!(windows) {
        Accel::Whpx
    } else {
        Accel::Tcg
    }
}

/// `qemu-system-<arch>`.
pub fn find_qemu(configured: Option<&Path>, arch: &str) -> Result<PathBuf> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    crate::config::find_program(&format!("qemu-system-{arch}"), "BERTH_VM_QEMU")
}

pub fn find_qemu_img() -> Result<PathBuf> {
    crate::config::find_program("qemu-img", "BERTH_VM_QEMU_IMG")
}

/// Runs `qemu-img` with these arguments; its stderr goes into the error.
pub fn qemu_img(args: &[&std::ffi::OsStr]) -> Result<()> {
    let bin = find_qemu_img()?;
    let out = Command::new(&bin)
        .args(args)
        .output()
        .map_err(io_err(format!("running {}", bin.display())))?;
    if !out.status.success() {
        let shown: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        return Err(Error::Other(format!(
            "qemu-img {} failed: {}",
            shown.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The disk's virtual size in bytes (`qemu-img info`).
pub fn disk_virtual_size(disk: &Path) -> Result<u64> {
    let bin = find_qemu_img()?;
    let out = Command::new(&bin)
        .args(["info", "--output=json", "-U"])
        .arg(disk)
        .output()
        .map_err(io_err(format!("running {}", bin.display())))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "qemu-img info {}: {}",
            disk.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Other(format!("qemu-img info {}: {e}", disk.display())))?;
    v["virtual-size"].as_u64().ok_or_else(|| {
        Error::Other(format!(
            "qemu-img info {} gave no virtual-size",
            disk.display()
        ))
    })
}

/// Asks qemu to quit through its QMP socket (the forced stop: no guest shutdown).
#[cfg(unix)]
pub fn qmp_quit(socket: &Path, timeout: std::time::Duration) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(io_err(format!("connecting to QMP at {}", socket.display())))?;
    s.set_read_timeout(Some(timeout))
        .map_err(io_err("QMP timeout"))?;
    let mut w = s.try_clone().map_err(io_err("QMP socket"))?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // The greeting, then capabilities negotiation, then quit.
    r.read_line(&mut line)
        .map_err(io_err("reading the QMP greeting"))?;
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(io_err("QMP"))?;
    line.clear();
    r.read_line(&mut line).map_err(io_err("QMP capabilities"))?;
    if !line.contains("\"return\"") {
        return Err(Error::Other(format!(
            "QMP refused capabilities: {}",
            line.trim()
        )));
    }
    w.write_all(b"{\"execute\":\"quit\"}\n")
        .map_err(io_err("QMP quit"))?;
    // Wait for the answer (or the hang-up): qemu drops the commands of a client that closed
    // before it read them.
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) if line.contains("\"return\"") => return Ok(()),
            Ok(_) => continue,
            Err(e) => return Err(Error::Other(format!("QMP quit: no answer: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(accel: Accel) -> QemuPlan {
        QemuPlan {
            qemu: "/usr/bin/qemu-system-x86_64".into(),
            arch: "x86_64".into(),
            accel,
            cpus: 2,
            memory_mib: 1536,
            kernel: "/img/vmlinuz-x86_64".into(),
            initrd: "/img/initramfs-x86_64.img".into(),
            disk: "/st/da,ta.qcow2".into(),
            shares: vec![PlannedShare::nine_p(Share::new("/root", "home"))],
            control_socket: "/st/control.sock".into(),
            free_page_reporting: true,
            console_log: "/st/console.log".into(),
            pidfile: "/st/qemu.pid".into(),
            qmp_socket: "/st/qmp.sock".into(),
            kernel_args: vec!["berth.insecure=10.0.2.2:5000".into()],
            daemonize: true,
        }
    }

    fn args(p: &QemuPlan) -> Vec<String> {
        p.args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    fn after<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn one_command_line_per_accelerator() {
        for (accel, cpu) in [
            (Accel::Kvm, "host"),
            (Accel::Hvf, "host"),
            (Accel::Whpx, "max"),
            (Accel::Tcg, "max"),
        ] {
            let a = args(&plan(accel));
            assert_eq!(after(&a, "-accel"), [accel.as_str()]);
            assert_eq!(after(&a, "-cpu"), [cpu]);
            assert_eq!(after(&a, "-smp"), ["2"]);
            assert_eq!(after(&a, "-m"), ["1536M"]);
            assert_eq!(after(&a, "-machine"), ["q35"]);
        }
    }

    #[test]
    fn devices_console_and_control_paths() {
        let p = plan(Accel::Tcg);
        let a = args(&p);
        assert!(after(&a, "-device").contains(&"virtio-balloon-pci,free-page-reporting=on"));
        // Nothing is forwarded into the guest from the host's network.
        assert_eq!(after(&a, "-netdev"), ["user,id=net0"]);
        assert!(!a
            .iter()
            .any(|x| x.contains("hostfwd") || x.contains("fw_cfg")));
        // The control channel: a named virtio-serial port on a unix socket qemu serves.
        assert!(after(&a, "-device").contains(&"virtio-serial-pci,id=vser0"));
        assert!(after(&a, "-device")
            .contains(&"virtserialport,bus=vser0.0,chardev=control,name=berth.control"));
        assert_eq!(
            after(&a, "-virtfs"),
            ["local,path=/root,mount_tag=home,security_model=none,multidevs=remap,id=fs0"]
        );
        // A comma in a path is doubled for qemu's option parser.
        assert!(after(&a, "-drive")[0]
            .starts_with("file=/st/da,,ta.qcow2,if=none,id=data,format=qcow2"));
        assert_eq!(
            after(&a, "-chardev"),
            [
                "file,id=console,path=/st/console.log",
                "socket,id=control,path=/st/control.sock,server=on,wait=off"
            ]
        );
        assert_eq!(after(&a, "-serial"), ["chardev:console"]);
        assert_eq!(after(&a, "-qmp"), ["unix:/st/qmp.sock,server=on,wait=off"]);
        assert_eq!(after(&a, "-pidfile"), ["/st/qemu.pid"]);
        assert!(a.contains(&"-daemonize".to_string()));
        assert_eq!(
            after(&a, "-append"),
            ["console=ttyS0 quiet panic=-1 berth.data=/dev/vda berth.share=home:/root berth.insecure=10.0.2.2:5000"]
        );
        let mut p2 = p.clone();
        p2.daemonize = false;
        p2.arch = "aarch64".into();
        let a2 = args(&p2);
        assert!(!a2.contains(&"-daemonize".to_string()));
        assert_eq!(after(&a2, "-machine"), ["virt,highmem=on"]);
        assert!(after(&a2, "-append")[0].starts_with("console=ttyAMA0 "));
    }

    #[test]
    fn virtiofs_shares_get_vhost_user_devices_and_shared_memory() {
        let mut p = plan(Accel::Tcg);
        p.shares = vec![
            PlannedShare {
                share: Share::new("/root", "home"),
                via: ShareVia::Virtiofs {
                    socket: "/st/vfs-home.sock".into(),
                },
            },
            PlannedShare::nine_p(Share::new("/srv/code", "code")),
        ];
        let a = args(&p);
        assert_eq!(
            after(&a, "-object"),
            ["memory-backend-memfd,id=mem,size=1536M,share=on"]
        );
        assert_eq!(after(&a, "-numa"), ["node,memdev=mem"]);
        assert_eq!(
            after(&a, "-chardev"),
            [
                "file,id=console,path=/st/console.log",
                "socket,id=control,path=/st/control.sock,server=on,wait=off",
                "socket,id=vfs0,path=/st/vfs-home.sock"
            ]
        );
        assert!(after(&a, "-device")
            .contains(&"vhost-user-fs-pci,chardev=vfs0,tag=home,queue-size=1024"));
        // The 9p share beside it keeps its -virtfs.
        assert_eq!(
            after(&a, "-virtfs"),
            ["local,path=/srv/code,mount_tag=code,security_model=none,multidevs=remap,id=fs1"]
        );
        let cmdline = after(&a, "-append")[0];
        assert!(
            cmdline.contains(" berth.share=home:/root:virtiofs berth.share=code:/srv/code "),
            "{cmdline}"
        );
        // Without a virtiofs share there is no shared-memory backend (9p does not need it).
        let a9 = args(&plan(Accel::Tcg));
        assert!(after(&a9, "-object").is_empty());
        assert!(after(&a9, "-numa").is_empty());
    }

    #[test]
    fn virtiofsd_arguments_per_implementation() {
        let strs = |v: Vec<OsString>| -> Vec<String> {
            v.into_iter().map(|a| a.into_string().unwrap()).collect()
        };
        let mut v = VirtiofsdPlan {
            bin: "/usr/lib/qemu/virtiofsd".into(),
            kind: VirtiofsdKind::Qemu,
            socket: "/st/vfs-home.sock".into(),
            source: "/home/me".into(),
        };
        assert_eq!(
            strs(v.args()),
            [
                "--socket-path=/st/vfs-home.sock",
                "-o",
                "source=/home/me",
                "-o",
                "cache=auto",
                "-o",
                "no_xattr"
            ]
        );
        assert_eq!(v.unusable(), None);
        v.kind = VirtiofsdKind::Rust;
        assert_eq!(
            strs(v.args()),
            [
                "--socket-path=/st/vfs-home.sock",
                "--shared-dir=/home/me",
                "--cache=auto"
            ]
        );
        // A comma only matters to qemu's -o parser.
        v.source = "/home/a,b".into();
        assert_eq!(v.unusable(), None);
        v.kind = VirtiofsdKind::Qemu;
        assert!(v.unusable().unwrap().contains("comma"));
        v.source = "/home/me".into();
        v.socket = PathBuf::from(format!("/{}/vfs-home.sock", "d".repeat(100)));
        assert!(v
            .unusable()
            .unwrap()
            .contains("longer than a unix socket allows"));
    }

    #[test]
    fn share_preference_values() {
        assert_eq!(SharePreference::parse("").unwrap(), SharePreference::Auto);
        assert_eq!(
            SharePreference::parse("auto").unwrap(),
            SharePreference::Auto
        );
        assert_eq!(
            SharePreference::parse("9P").unwrap(),
            SharePreference::NineP
        );
        assert_eq!(
            SharePreference::parse("virtiofs").unwrap(),
            SharePreference::Virtiofs
        );
        let e = SharePreference::parse("nfs").unwrap_err().to_string();
        assert!(e.contains("BERTH_VM_SHARE=nfs") && e.contains("9p"), "{e}");
    }

    #[test]
    fn qemu_virtiofsd_is_recognised() {
        let bin = Path::new("/usr/lib/qemu/virtiofsd");
        if !bin.is_file() {
            eprintln!("skipped: no /usr/lib/qemu/virtiofsd");
            return;
        }
        assert_eq!(virtiofsd_kind(bin).unwrap(), VirtiofsdKind::Qemu);
        assert!(virtiofsd_kind(Path::new("/bin/true")).is_err());
    }

    #[test]
    fn qmp_quit_speaks_the_handshake() {
        use std::io::{BufRead, BufReader, Write};
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("qmp.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(b"{\"QMP\": {}}\n").unwrap();
            let mut got = Vec::new();
            for _ in 0..2 {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                got.push(line.trim().to_string());
                // qmp_quit may hang up before the answer to quit.
                let _ = w.write_all(b"{\"return\": {}}\n");
            }
            got
        });
        qmp_quit(&sock, std::time::Duration::from_secs(5)).unwrap();
        let got = t.join().unwrap();
        assert_eq!(
            got,
            [r#"{"execute":"qmp_capabilities"}"#, r#"{"execute":"quit"}"#]
        );
    }
}
