//! The exec trampoline: a tiny static ELF, built in memory and sealed in a memfd, that the
//! container's init execs as its very last step; it in turn execs the user's program.
//!
//! Why: the init is a fork of the runtime, so until it execs, `/proc/<init>/exe` is the host's
//! runtime binary. If the init exec'd the user's program directly and that program were
//! `/proc/self/exe` (or a script whose interpreter is), the container would be running the host
//! binary and could reopen it for writing once the runtime exits (CVE-2019-5736). Exec'ing
//! through a sealed memfd first means the only executable a container can ever reach through
//! the init is this read-only, write-sealed stub. Copying a few hundred bytes costs nothing,
//! unlike re-executing a sealed copy of the whole multi-megabyte runtime.
//!
//! The stub's argv is `[path, argv0, argv1, ...]`: it calls `execve(argv[0], &argv[1], envp)`
//! and, if that fails, writes a line to stderr and exits 127.

use crate::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const MSG: &[u8] = b"berth-runtime: exec of the container process failed\n";
const BASE: u64 = 0x40_0000;

/// Machine code and ELF machine number for an architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this runtime was built for.
    pub const NATIVE: Arch = if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    };
}

fn code(arch: Arch) -> (u16, Vec<u8>) {
    match arch {
        Arch::X86_64 => code_x86_64(),
        Arch::Aarch64 => code_aarch64(),
    }
}

fn code_x86_64() -> (u16, Vec<u8>) {
    let mut c: Vec<u8> = vec![
        0x48,
        0x8b,
        0x7c,
        0x24,
        0x08, // mov rdi, [rsp+8]        ; argv[0] = path
        0x48,
        0x8d,
        0x74,
        0x24,
        0x10, // lea rsi, [rsp+16]       ; &argv[1]
        0x48,
        0x8b,
        0x04,
        0x24, // mov rax, [rsp]                ; argc
        0x48,
        0x8d,
        0x54,
        0xc4,
        0x10, // lea rdx, [rsp+rax*8+16] ; envp
        0xb8,
        0x3b,
        0x00,
        0x00,
        0x00, // mov eax, 59 (execve)
        0x0f,
        0x05, // syscall
        0xbf,
        0x02,
        0x00,
        0x00,
        0x00, // mov edi, 2
        0x48,
        0x8d,
        0x35,
        0x18,
        0x00,
        0x00,
        0x00, // lea rsi, [rip+0x18] ; MSG
        0xba,
        MSG.len() as u8,
        0x00,
        0x00,
        0x00, // mov edx, len
        0xb8,
        0x01,
        0x00,
        0x00,
        0x00, // mov eax, 1 (write)
        0x0f,
        0x05, // syscall
        0xbf,
        0x7f,
        0x00,
        0x00,
        0x00, // mov edi, 127
        0xb8,
        0xe7,
        0x00,
        0x00,
        0x00, // mov eax, 231 (exit_group)
        0x0f,
        0x05, // syscall
    ];
    debug_assert_eq!(c.len(), 0x3e);
    c.extend_from_slice(MSG);
    (0x3e, c)
}

fn code_aarch64() -> (u16, Vec<u8>) {
    let words: [u32; 15] = [
        0xF940_07E0,                             // ldr x0, [sp, #8]
        0x9100_43E1,                             // add x1, sp, #16
        0xF940_03E2,                             // ldr x2, [sp]
        0x8B22_6FE2,                             // add x2, sp, x2, uxtx #3
        0x9100_4042,                             // add x2, x2, #16
        0xD280_1BA8,                             // mov x8, #221 (execve)
        0xD400_0001,                             // svc #0
        0xD280_0040,                             // mov x0, #2
        0x1000_00E1,                             // adr x1, MSG (+0x1c)
        0xD280_0002 | ((MSG.len() as u32) << 5), // mov x2, #len
        0xD280_0808,                             // mov x8, #64 (write)
        0xD400_0001,                             // svc #0
        0xD280_0FE0,                             // mov x0, #127
        0xD280_0BC8,                             // mov x8, #94 (exit_group)
        0xD400_0001,                             // svc #0
    ];
    let mut c = Vec::new();
    for w in words {
        c.extend_from_slice(&w.to_le_bytes());
    }
    c.extend_from_slice(MSG);
    (0xb7, c)
}

/// The stub as a complete ELF64 executable for `arch`.
pub fn elf(arch: Arch) -> Vec<u8> {
    let (machine, code) = code(arch);
    let hdr_len = 64u64 + 56;
    let total = hdr_len + code.len() as u64;
    let mut e = Vec::with_capacity(total as usize);
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&machine.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&(BASE + hdr_len).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    e.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    e.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    e.extend_from_slice(&1u16.to_le_bytes()); // phnum
    e.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    e.extend_from_slice(&0u64.to_le_bytes()); // offset
    e.extend_from_slice(&BASE.to_le_bytes()); // vaddr
    e.extend_from_slice(&BASE.to_le_bytes()); // paddr
    e.extend_from_slice(&total.to_le_bytes()); // filesz
    e.extend_from_slice(&total.to_le_bytes()); // memsz
    e.extend_from_slice(&0x1000u64.to_le_bytes()); // align
    e.extend_from_slice(&code);
    e
}

/// The stub in a sealed memfd (close-on-exec; exec it with execveat(AT_EMPTY_PATH)).
pub fn sealed() -> Result<OwnedFd> {
    sealed_memfd(c"berth-exec", |fd| {
        let bytes = elf(Arch::NATIVE);
        // SAFETY: writing a live buffer to our fd.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n != bytes.len() as isize {
            return Err(Error::last_os("writing the exec stub"));
        }
        Ok(())
    })
}

/// A sealed copy of the runtime binary itself, for the init to run from when it enters a
/// pid namespace that already has processes (`exec`, or a shared pid namespace): there the
/// init is visible while it still runs the runtime's code, and a process with CAP_SYS_PTRACE
/// could otherwise open `/proc/<init>/exe` — the host binary — and write to it later.
pub fn sealed_runtime() -> Result<OwnedFd> {
    sealed_memfd(c"berth-runtime", |fd| {
        let exe = std::fs::File::open("/proc/self/exe")
            .map_err(|e| Error::sys("opening /proc/self/exe", e))?;
        let mut left = exe
            .metadata()
            .map_err(|e| Error::sys("stat /proc/self/exe", e))?
            .len() as usize;
        while left > 0 {
            // SAFETY: sendfile between two fds we own.
            let n = unsafe { libc::sendfile(fd, exe.as_raw_fd(), std::ptr::null_mut(), left) };
            if n < 0 {
                return Err(Error::last_os("copying the runtime binary into a memfd"));
            }
            if n == 0 {
                break;
            }
            left -= n as usize;
        }
        Ok(())
    })
}

/// An executable memfd, filled by `fill`, then sealed against any change.
fn sealed_memfd(name: &std::ffi::CStr, fill: impl FnOnce(i32) -> Result<()>) -> Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x0010;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a NUL-terminated name.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // Kernels before 6.3 do not know MFD_EXEC.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(Error::last_os(format!("memfd_create {name:?}")));
    }
    // SAFETY: fresh fd we own.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    fill(memfd.as_raw_fd())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // F_SEAL_WRITE fails with EBUSY while the kernel still holds references to the memfd's
    // pages (sendfile's splice pipe can release them a little after the copy returns): retry
    // for up to ~0.5 s before giving up.
    let mut attempt = 0;
    loop {
        // SAFETY: fcntl on our memfd.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } == 0 {
            return Ok(memfd);
        }
        let busy = std::io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY);
        if !busy || attempt >= 50 {
            return Err(Error::last_os(format!("sealing memfd {name:?}")));
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sealed stub, run through /proc/self/fd (no writable file, so no ETXTBSY races
    /// with other tests forking while a file is open for writing).
    fn stub_file(_tag: &str) -> (OwnedFd, std::path::PathBuf) {
        let fd = sealed().unwrap();
        let p = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        (fd, p)
    }

    #[test]
    fn stub_execs_path_with_argv_and_env() {
        let (_fd, p) = stub_file("argv");
        let out = std::process::Command::new(&p)
            .arg0("/bin/sh")
            .args(["sh-as-argv0", "-c", "echo \"$0 $FOO\""])
            .env_clear()
            .env("FOO", "bar")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sh-as-argv0 bar\n");
        assert!(out.status.success());
    }

    #[test]
    fn stub_reports_a_failed_exec() {
        let (_fd, p) = stub_file("fail");
        let out = std::process::Command::new(&p)
            .arg0("/nonexistent/program")
            .arg("x")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exec of the container process failed")
        );
    }

    #[test]
    fn sealed_stub_refuses_writes() {
        let fd = sealed().unwrap();
        let r = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(r, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EPERM)
        );
    }

    use std::os::unix::process::CommandExt;

    /// The aarch64 stub, run under qemu-aarch64 (user-mode emulation; the stub's execve of a
    /// native program is passed to the host kernel). Proves the hand-encoded instructions.
    #[test]
    fn aarch64_stub_runs_under_qemu() {
        let qemu = ["qemu-aarch64", "qemu-aarch64-static"]
            .into_iter()
            .find(|q| {
                std::process::Command::new(q)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        let Some(qemu) = qemu else {
            eprintln!(
                "skipped: aarch64_stub_runs_under_qemu needs qemu-aarch64 (apt install qemu-user)"
            );
            return;
        };
        let dir = std::env::temp_dir().join(format!("berth-a64-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stub = dir.join("stub");
        std::fs::write(&stub, elf(Arch::Aarch64)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        // `-0` sets the guest's argv[0], which the stub execs.
        let ok = std::process::Command::new(qemu)
            .args(["-0", "/bin/sh"])
            .arg(&stub)
            .args(["sh-as-argv0", "-c", "echo \"$0 $FOO\""])
            .env_clear()
            .env("FOO", "bar")
            .output()
            .unwrap();
        let bad = std::process::Command::new(qemu)
            .args(["-0", "/nonexistent/program"])
            .arg(&stub)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            String::from_utf8_lossy(&ok.stdout),
            "sh-as-argv0 bar\n",
            "stderr: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert_eq!(bad.status.code(), Some(127));
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("exec of the container process failed")
        );
    }
}
