//! Seccomp filters loaded into the real kernel, each in a forked child that reports through its
//! exit code (0 = every check passed, otherwise the number of the failed check).
//!
//! The children only make raw syscalls between fork and `_exit` (no allocation), because the
//! test harness is multi-threaded.

use berth_runtime::seccomp::{self, Program};
use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
}

fn in_child(f: impl FnOnce() -> i32) -> Exit {
    // SAFETY: the child runs `f`, which only makes syscalls, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = f();
        // SAFETY: leave the child without running the parent's atexit/test machinery.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// In the child: set no_new_privs and load the filter. 0 on success.
fn load(p: &Program) -> i32 {
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return 100;
    }
    match seccomp::install(p, &[]) {
        Ok(None) => 0,
        Ok(Some(_)) => 101,
        Err(_) => 102,
    }
}

/// errno of a raw syscall, 0 if it succeeded.
fn errno_of(r: libc::c_long) -> i32 {
    if r == -1 {
        // SAFETY: reading this thread's errno.
        unsafe { *libc::__errno_location() }
    } else {
        0
    }
}

fn sys(nr: libc::c_long, a: &[u64]) -> i32 {
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    // SAFETY: the syscalls used by these tests take integer arguments or null pointers.
    errno_of(unsafe { libc::syscall(nr, g(0), g(1), g(2), g(3), g(4), g(5)) })
}

fn profile(json: serde_json::Value) -> LinuxSeccomp {
    match serde_json::from_value(json) {
        Ok(p) => p,
        Err(e) => panic!("test profile does not parse: {e}"),
    }
}

fn compile(json: serde_json::Value) -> Program {
    match seccomp::compile(&profile(json)) {
        Ok(p) => p,
        Err(e) => panic!("compile: {e}"),
    }
}

#[test]
fn denied_by_name_returns_the_errno_others_work() {
    let p = compile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    }));
    let r = in_child(|| {
        if load(&p) != 0 {
            return 1;
        }
        // SAFETY: plain syscalls.
        if unsafe { libc::getpid() } <= 0 || unsafe { libc::getppid() } <= 0 {
            return 2;
        }
        if sys(libc::SYS_getpgid, &[0]) != libc::EPERM {
            return 3;
        }
        let path = c"/nonexistent-berth-dir/x";
        if sys(
            libc::SYS_mkdirat,
            &[libc::AT_FDCWD as u64, path.as_ptr() as u64, 0o755],
        ) != 38
        {
            return 4;
        }
        // getpgrp is not listed: still works.
        if sys(libc::SYS_getpgrp, &[]) != 0 {
            return 5;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
}

#[test]
fn argument_conditions() {
    let p = compile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // personality allowed only for the query value; everything else EPERM.
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            // 64-bit equality: the high word matters.
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
             "args": [{"index": 0, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12,
             "args": [{"index": 0, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GT"}]},
            {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 0x2_0000_0000u64, "op": "SCMP_CMP_LT"}]},
            // Two args: ANDed.
            {"names": ["geteuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 14,
             "args": [{"index": 2, "value": 0x1_0000_0002u64, "op": "SCMP_CMP_GE"},
                      {"index": 3, "value": 7, "op": "SCMP_CMP_LE"}]},
            {"names": ["getegid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 15,
             "args": [{"index": 0, "value": 0x5_0000_0000u64, "op": "SCMP_CMP_NE"}]},
            {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 16,
             "args": [{"index": 0, "value": 0xF0_0000_00F0u64, "valueTwo": 0x10_0000_0020u64,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            // Same index twice: ORed.
            {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 17,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let r = in_child(|| {
        if load(&p) != 0 {
            return 1;
        }
        let checks: &[(libc::c_long, &[u64], i32)] = &[
            (libc::SYS_personality, &[0xffff_ffff], 0),
            (libc::SYS_personality, &[0x0008], libc::EPERM),
            (libc::SYS_personality, &[0], libc::EPERM),
            (libc::SYS_getppid, &[0x1_0000_0005], 11),
            (libc::SYS_getppid, &[5], 0),
            (libc::SYS_getppid, &[0x2_0000_0005], 0),
            (libc::SYS_getuid, &[0x1_0000_0001], 12),
            (libc::SYS_getuid, &[0xffff_ffff], 0),
            (libc::SYS_getuid, &[0x1_0000_0000], 0),
            (libc::SYS_getgid, &[0, 0x1_ffff_ffff], 13),
            (libc::SYS_getgid, &[0, 0x2_0000_0000], 0),
            (libc::SYS_getgid, &[0, 0x3_0000_0000], 0),
            (libc::SYS_geteuid, &[0, 0, 0x1_0000_0002, 7], 14),
            (libc::SYS_geteuid, &[0, 0, 0x1_0000_0002, 8], 0),
            (libc::SYS_geteuid, &[0, 0, 0x1_0000_0001, 7], 0),
            (libc::SYS_getegid, &[0x5_0000_0000], 0),
            (libc::SYS_getegid, &[5], 15),
            (libc::SYS_getegid, &[0x5_0000_0001], 15),
            (libc::SYS_gettid, &[0x10_0000_0020], 16),
            (libc::SYS_gettid, &[0x1F_0000_002F], 16),
            (libc::SYS_gettid, &[0x20_0000_0020], 0),
            (libc::SYS_gettid, &[0x10_0000_0010], 0),
            (libc::SYS_getpgrp, &[1], 17),
            (libc::SYS_getpgrp, &[2], 17),
            (libc::SYS_getpgrp, &[3], 0),
        ];
        for (i, (nr, args, want)) in checks.iter().enumerate() {
            if sys(*nr, args) != *want {
                return 10 + i as i32;
            }
        }
        0
    });
    assert_eq!(r, Exit::Code(0), "exit code 10+i means check i failed");
}

fn docker_checks() -> i32 {
    // SAFETY (whole function): raw syscalls and libc calls on static C strings.
    unsafe {
        if libc::getpid() <= 0 {
            return 10;
        }
        let fd = libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return 11;
        }
        let mut buf = [0u8; 64];
        if libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) <= 0 {
            return 12;
        }
        libc::close(fd);
        // fork + exec /bin/true + wait.
        let pid = libc::fork();
        if pid < 0 {
            return 13;
        }
        if pid == 0 {
            let argv = [c"true".as_ptr(), std::ptr::null()];
            libc::execv(c"/bin/true".as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) != pid
            || !libc::WIFEXITED(status)
            || libc::WEXITSTATUS(status) != 0
        {
            return 14;
        }
        if sys(libc::SYS_clone3, &[0, 0]) != libc::ENOSYS {
            return 15;
        }
        if sys(libc::SYS_unshare, &[libc::CLONE_NEWUSER as u64]) != libc::EPERM {
            return 16;
        }
        if sys(libc::SYS_mount, &[0, 0, 0, 0, 0]) != libc::EPERM {
            return 17;
        }
        // clone with a namespace flag is refused (if it were not, the new child exits at once).
        let r = libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWNS | libc::SIGCHLD) as u64,
            0u64,
            0u64,
            0u64,
            0u64,
        );
        if r == 0 {
            libc::_exit(0);
        }
        if r != -1 || *libc::__errno_location() != libc::EPERM {
            return 18;
        }
        if sys(libc::SYS_socket, &[40, libc::SOCK_STREAM as u64, 0]) != libc::EPERM {
            return 19;
        }
        let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return 20;
        }
        libc::close(s);
        if sys(libc::SYS_personality, &[0x0040_0000]) != libc::EPERM {
            return 21;
        }
        if sys(libc::SYS_personality, &[0xffff_ffff]) != 0 {
            return 22;
        }
        0
    }
}

#[test]
fn docker_default_runs_ordinary_programs_and_denies_the_rest() {
    let p = match seccomp::compile(&seccomp::docker_default()) {
        Ok(p) => p,
        Err(e) => panic!("docker_default does not compile: {e}"),
    };
    assert!(p.len() <= seccomp::MAX_INSTRUCTIONS);
    eprintln!("docker_default: {} BPF instructions", p.len());
    let r = in_child(|| {
        if load(&p) != 0 {
            return 1;
        }
        docker_checks()
    });
    assert_eq!(r, Exit::Code(0));
}

#[test]
fn install_without_no_new_privs_as_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (CAP_SYS_ADMIN) to load a filter without no_new_privs");
        return;
    }
    let p = match seccomp::compile(&seccomp::docker_default()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let r = in_child(|| {
        if seccomp::install(&p, &[]).is_err() {
            return 1;
        }
        // no_new_privs must still be off (we did not set it behind the caller's back).
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } != 0 {
            return 2;
        }
        docker_checks()
    });
    assert_eq!(r, Exit::Code(0));
}

#[test]
fn install_without_privilege_says_what_to_do() {
    let p = compile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let r = in_child(|| {
        // Drop CAP_SYS_ADMIN from the effective set (root) so the kernel demands no_new_privs.
        let mut hdr = libc_cap_header();
        let mut data = [[0u32; 3]; 2];
        // SAFETY: capget/capset with correctly sized v3 structures.
        unsafe {
            if libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) != 0 {
                return 1;
            }
            data[0][0] &= !(1 << 21); // CAP_SYS_ADMIN, effective
            if libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) != 0 {
                return 2;
            }
        }
        match seccomp::install(&p, &[]) {
            Err(e) if e.to_string().contains("no_new_privs") => 0,
            Err(_) => 3,
            Ok(_) => 4,
        }
    });
    assert_eq!(r, Exit::Code(0));
}

fn libc_cap_header() -> [u32; 2] {
    [0x2008_0522, 0] // _LINUX_CAPABILITY_VERSION_3, pid 0 (self)
}

#[test]
fn default_kill_process_kills_with_sigsys() {
    let p = compile(serde_json::json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "syscalls": [{"names": ["getppid", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let no_core = || {
        let rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain setrlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &rl) };
    };
    // Allowed calls work and the process can still exit normally.
    let r = in_child(|| {
        no_core();
        if load(&p) != 0 {
            return 1;
        }
        // SAFETY: plain syscall.
        if unsafe { libc::getppid() } <= 0 {
            return 2;
        }
        7
    });
    assert_eq!(r, Exit::Code(7));
    // Anything else kills the whole process with SIGSYS.
    let r = in_child(|| {
        no_core();
        if load(&p) != 0 {
            return 1;
        }
        // SAFETY: plain syscall (it will not return).
        unsafe { libc::getpid() };
        3
    });
    assert_eq!(r, Exit::Signal(libc::SIGSYS));
}

#[test]
fn notify_returns_a_working_listener() {
    let p = compile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/berth-test-agent.sock",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert!(p.uses_notify());
    let r = in_child(|| {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return 1;
        }
        let fd = match seccomp::install(&p, &[]) {
            Ok(Some(fd)) => fd,
            _ => return 2,
        };
        use std::os::fd::AsRawFd;
        // SAFETY (block): fork, ioctls on the listener with correctly sized structs, _exit.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                // Blocks until the supervisor answers.
                let r = libc::syscall(libc::SYS_getppid);
                libc::_exit(if r == 4242 { 0 } else { 1 });
            }
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            if libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) != 0 {
                return 3;
            }
            if req.data.nr != libc::SYS_getppid as i32 {
                return 4;
            }
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            resp.val = 4242;
            if libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) != 0 {
                return 5;
            }
            let mut status = 0;
            if libc::waitpid(pid, &mut status, 0) != pid
                || !libc::WIFEXITED(status)
                || libc::WEXITSTATUS(status) != 0
            {
                return 6;
            }
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
}

/// i386 syscalls through `int 0x80` reach the i386 section if SCMP_ARCH_X86 is listed, and
/// kill the process if it is not.
#[cfg(target_arch = "x86_64")]
#[test]
fn i386_entry_point() {
    fn int80(nr: u32) -> i32 {
        let ret: i32;
        // SAFETY: a syscall with no arguments through the i386 entry point.
        unsafe { std::arch::asm!("int 0x80", inlateout("eax") nr as i32 => ret, options(nostack)) };
        ret
    }
    const I386_GETPID: u32 = 20;
    const I386_GETPPID: u32 = 64;
    // Is the i386 ABI available at all (CONFIG_IA32_EMULATION, ia32_emulation=)?
    if in_child(|| if int80(I386_GETPID) > 0 { 0 } else { 1 }) != Exit::Code(0) {
        eprintln!("skipped: this kernel has no i386 syscall entry");
        return;
    }
    let listed = compile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33}]
    }));
    let r = in_child(|| {
        if load(&listed) != 0 {
            return 1;
        }
        if int80(I386_GETPPID) != -33 {
            return 2;
        }
        if int80(I386_GETPID) <= 0 {
            return 3;
        }
        // Native numbering still applies to native calls.
        if sys(libc::SYS_getppid, &[]) != 33 {
            return 4;
        }
        0
    });
    assert_eq!(r, Exit::Code(0));
    let unlisted = compile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let r = in_child(|| {
        let rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain setrlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &rl) };
        if load(&unlisted) != 0 {
            return 1;
        }
        int80(I386_GETPID);
        2
    });
    assert_eq!(r, Exit::Signal(libc::SIGSYS));
}

#[test]
fn validate_names_the_field() {
    let cases: &[(serde_json::Value, &str)] = &[
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
            "config.json: linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "config.json: linux.seccomp.syscalls[0].args[1].index: 6 is out of range",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": [], "action": "SCMP_ACT_ALLOW"}]}),
            "config.json: linux.seccomp.syscalls[0].names: is empty",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "valueTwo": 0x7E020000u64, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
            "config.json: linux.seccomp.syscalls[0].args[0].valueTwo: 0x7e020000 has bits outside the mask 0x0",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
            "config.json: linux.seccomp.syscalls[0].errnoRet: 70000 does not fit",
        ),
    ];
    for (json, want) in cases {
        let s = profile(json.clone());
        let err = match seccomp::validate(&s) {
            Ok(()) => panic!("accepted: {json}"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), berth_runtime::ErrorKind::InvalidArgument);
        assert!(err.to_string().starts_with(want), "got {err}\nwant {want}");
        // compile() refuses the same profiles.
        assert!(seccomp::compile(&s).is_err());
    }
    // errnoRet on a non-ERRNO action is accepted and ignored; MASKED_EQ without valueTwo is 0.
    let ok = profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0x7E020000u64, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
    );
    assert!(seccomp::validate(&ok).is_ok());
    assert!(seccomp::validate(&seccomp::docker_default()).is_ok());
}

#[test]
fn program_sizes() {
    let p = match seccomp::compile(&seccomp::docker_default()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    // Generous bound: a linear libseccomp-style program of Docker's profile is ~800.
    assert!(p.len() < 600, "docker_default is {} instructions", p.len());
    let rules: Vec<serde_json::Value> = (0..1200u64)
        .map(|v| {
            serde_json::json!({"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let big = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let err = match seccomp::compile(&big) {
        Ok(p) => panic!("accepted a {}-instruction program", p.len()),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("seccomp: the profile compiles to"), "{err}");
    assert!(
        err.contains("more than the kernel's limit of 4096"),
        "{err}"
    );
}
