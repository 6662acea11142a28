//! Unit tests: semantics checked with a BPF interpreter (for every ABI and input), plus one
//! forked child that runs a long program in the kernel.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall,
};

use super::bpf::run;
use super::compile::{
    codegen, Cond, CondRule, Entry, Section, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS,
};
use super::tables::*;
use super::*;

fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u32; 16] {
    let mut d = [0u32; 16];
    d[0] = nr;
    d[1] = arch;
    for (i, a) in args.iter().enumerate() {
        d[4 + 2 * i] = *a as u32;
        d[5 + 2 * i] = (*a >> 32) as u32;
    }
    d
}

fn eval(p: &Program, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run(p.instructions(), &data(arch, nr, args)).unwrap_or(0xFFFF_FFFF)
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.resolve(name).unwrap_or(u32::MAX)
}

fn syscall(names: &[&str], action: LinuxSeccompAction, errno: Option<u32>) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(action);
    s.set_errno_ret(errno);
    s
}

use super::profile::arg;

fn profile(default: LinuxSeccompAction, syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut s = LinuxSeccomp::default();
    s.set_default_action(default);
    s.set_syscalls(Some(syscalls));
    s
}

const EPERM: u32 = RET_ERRNO | 1;
const ENOSYS: u32 = RET_ERRNO | 38;

#[test]
fn docker_default_semantics_x86_64() -> crate::Result<()> {
    let p = compile_for(&docker_default(), Abi::X86_64)?;
    let a = AUDIT_ARCH_X86_64;
    let x = |name: &str, args: [u64; 6]| eval(&p, a, nr(Abi::X86_64, name), args);
    assert_eq!(x("getpid", [0; 6]), RET_ALLOW);
    assert_eq!(x("read", [0; 6]), RET_ALLOW);
    assert_eq!(x("mount", [0; 6]), EPERM);
    assert_eq!(x("kexec_load", [0; 6]), EPERM);
    assert_eq!(x("clone3", [0; 6]), ENOSYS);
    assert_eq!(x("clone", [17, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(x("clone", [0x1000_0011, 0, 0, 0, 0, 0]), EPERM); // CLONE_NEWUSER
    assert_eq!(x("clone", [0x0002_0011, 0, 0, 0, 0, 0]), EPERM); // CLONE_NEWNS
    assert_eq!(x("personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(x("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(x("personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(x("socket", [40, 1, 0, 0, 0, 0]), EPERM);
    assert_eq!(x("socket", [1, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(x("arch_prctl", [0; 6]), RET_ALLOW);
    assert_eq!(x("chroot", [0; 6]), RET_ALLOW);
    assert_eq!(x("open_by_handle_at", [0; 6]), EPERM);
    // x32 entry points never reach the allowlist.
    assert_eq!(
        eval(&p, a, nr(Abi::X86_64, "getpid") | X32_SYSCALL_BIT, [0; 6]),
        EPERM
    );
    // i386 section (SCMP_ARCH_X86 is listed).
    assert_eq!(
        eval(&p, AUDIT_ARCH_I386, nr(Abi::X86, "getpid"), [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        eval(&p, AUDIT_ARCH_I386, nr(Abi::X86, "socketcall"), [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        eval(&p, AUDIT_ARCH_I386, nr(Abi::X86, "mount"), [0; 6]),
        EPERM
    );
    // Foreign arch.
    assert_eq!(eval(&p, AUDIT_ARCH_AARCH64, 172, [0; 6]), RET_KILL_PROCESS);
    assert!(p.len() <= MAX_INSTRUCTIONS);
    Ok(())
}

#[test]
fn docker_default_semantics_aarch64() -> crate::Result<()> {
    let mut s = docker_default();
    s.set_architectures(Some(vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]));
    let p = compile_for(&s, Abi::Aarch64)?;
    let a = AUDIT_ARCH_AARCH64;
    assert_eq!(eval(&p, a, nr(Abi::Aarch64, "getpid"), [0; 6]), RET_ALLOW);
    assert_eq!(eval(&p, a, 79, [0; 6]), RET_ALLOW); // newfstatat
    assert_eq!(eval(&p, a, nr(Abi::Aarch64, "mount"), [0; 6]), EPERM);
    assert_eq!(eval(&p, a, nr(Abi::Aarch64, "clone3"), [0; 6]), ENOSYS);
    assert_eq!(
        eval(&p, AUDIT_ARCH_ARM, nr(Abi::Arm, "getpid"), [0; 6]),
        RET_ALLOW
    );
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 39, [0; 6]), RET_KILL_PROCESS);
    Ok(())
}

#[test]
fn x32_cannot_bypass_a_denylist() -> crate::Result<()> {
    let s = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![syscall(
            &["getpid"],
            LinuxSeccompAction::ScmpActErrno,
            Some(13),
        )],
    );
    let p = compile_for(&s, Abi::X86_64)?;
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 39, [0; 6]), RET_ERRNO | 13);
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 40, [0; 6]), RET_ALLOW);
    assert_eq!(
        eval(&p, AUDIT_ARCH_X86_64, 39 | X32_SYSCALL_BIT, [0; 6]),
        ENOSYS
    );
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 0xFFFF_FFFF, [0; 6]), ENOSYS);
    // i386 not listed: killed.
    assert_eq!(eval(&p, AUDIT_ARCH_I386, 20, [0; 6]), RET_KILL_PROCESS);
    Ok(())
}

/// Every operator against a reference computed in Rust, on values around the word boundaries.
#[test]
fn argument_comparisons_match_64_bit_semantics() -> crate::Result<()> {
    use LinuxSeccompOperator::*;
    let probes: Vec<u64> = {
        let base = [
            0u64,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0x2_0000_0005,
            u64::MAX,
        ];
        let mut v: Vec<u64> = base.to_vec();
        for b in base {
            v.push(b.wrapping_add(1));
            v.push(b.wrapping_sub(1));
            v.push(b ^ 0x1_0000_0000);
        }
        v
    };
    for op in [
        ScmpCmpNe,
        ScmpCmpLt,
        ScmpCmpLe,
        ScmpCmpEq,
        ScmpCmpGe,
        ScmpCmpGt,
        ScmpCmpMaskedEq,
    ] {
        for &value in &probes {
            let (value, two) = if op == ScmpCmpMaskedEq {
                (value, value & 0xF000_000F_0000_00F0)
            } else {
                (value, 0)
            };
            let mut r = syscall(&["getpid"], LinuxSeccompAction::ScmpActErrno, Some(77));
            r.set_args(Some(vec![arg(3, op, value, Some(two))]));
            let p = compile_for(
                &profile(LinuxSeccompAction::ScmpActAllow, vec![r]),
                Abi::X86_64,
            )?;
            for &a in &probes {
                let expect = match op {
                    ScmpCmpNe => a != value,
                    ScmpCmpLt => a < value,
                    ScmpCmpLe => a <= value,
                    ScmpCmpEq => a == value,
                    ScmpCmpGe => a >= value,
                    ScmpCmpGt => a > value,
                    ScmpCmpMaskedEq => a & value == two,
                };
                let got = eval(&p, AUDIT_ARCH_X86_64, 39, [0, 0, 0, a, 0, 0]);
                let want = if expect { RET_ERRNO | 77 } else { RET_ALLOW };
                assert_eq!(got, want, "{op:?} value={value:#x} two={two:#x} arg={a:#x}");
            }
        }
    }
    Ok(())
}

#[test]
fn rule_order_and_splitting() -> crate::Result<()> {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    // Unconditional rule listed first still loses to argument rules.
    let uncond = syscall(&["getpid"], ScmpActErrno, Some(5));
    let mut a1 = syscall(&["getpid"], ScmpActAllow, None);
    a1.set_args(Some(vec![
        arg(0, ScmpCmpEq, 1, None),
        arg(1, ScmpCmpEq, 2, None),
    ]));
    // Same index twice: ORed.
    let mut a2 = syscall(&["getpid"], ScmpActErrno, Some(9));
    a2.set_args(Some(vec![
        arg(2, ScmpCmpEq, 7, None),
        arg(2, ScmpCmpEq, 8, None),
    ]));
    let p = compile_for(
        &profile(ScmpActKillProcess, vec![uncond, a1, a2]),
        Abi::X86_64,
    )?;
    let e = |args| eval(&p, AUDIT_ARCH_X86_64, 39, args);
    assert_eq!(e([1, 2, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e([1, 3, 0, 0, 0, 0]), RET_ERRNO | 5); // AND fails
    assert_eq!(e([1, 3, 7, 0, 0, 0]), RET_ERRNO | 9);
    assert_eq!(e([1, 3, 8, 0, 0, 0]), RET_ERRNO | 9);
    assert_eq!(e([1, 2, 8, 0, 0, 0]), RET_ALLOW); // first match wins
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 40, [0; 6]), RET_KILL_PROCESS);
    Ok(())
}

#[test]
fn rules_equal_to_default_cost_nothing() -> crate::Result<()> {
    use LinuxSeccompAction::*;
    let empty = compile_for(&profile(ScmpActErrno, vec![]), Abi::X86_64)?;
    let mut cond = syscall(&["getppid"], ScmpActErrno, None);
    cond.set_args(Some(vec![arg(0, LinuxSeccompOperator::ScmpCmpEq, 3, None)]));
    let redundant = compile_for(
        &profile(
            ScmpActErrno,
            vec![syscall(&["getpid", "gettid"], ScmpActErrno, Some(1)), cond],
        ),
        Abi::X86_64,
    )?;
    assert_eq!(redundant.len(), empty.len());
    // But an argument rule equal to the default before a different unconditional action stays.
    let mut keep = syscall(&["getpid"], ScmpActErrno, None);
    keep.set_args(Some(vec![arg(0, LinuxSeccompOperator::ScmpCmpEq, 3, None)]));
    let p = compile_for(
        &profile(
            ScmpActErrno,
            vec![keep, syscall(&["getpid"], ScmpActAllow, None)],
        ),
        Abi::X86_64,
    )?;
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 39, [3, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        eval(&p, AUDIT_ARCH_X86_64, 39, [4, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    Ok(())
}

#[test]
fn unknown_names_are_skipped_empty_names_rejected() -> crate::Result<()> {
    use LinuxSeccompAction::*;
    let p = compile_for(
        &profile(
            ScmpActErrno,
            vec![syscall(
                &["getpid", "not_a_syscall_9000"],
                ScmpActAllow,
                None,
            )],
        ),
        Abi::X86_64,
    )?;
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 39, [0; 6]), RET_ALLOW);
    let err = compile_for(
        &profile(
            ScmpActErrno,
            vec![syscall(&["getpid", ""], ScmpActAllow, None)],
        ),
        Abi::X86_64,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert_eq!(
        err,
        "config.json: linux.seccomp.syscalls[0].names[1]: is an empty string; give a syscall name such as \"getpid\""
    );
    Ok(())
}

/// 1000 distinct syscall numbers (1000..2000, unused by x86_64 and aarch64 kernels), each
/// with its own errno so no intervals merge, plus argument chains: the program is far longer
/// than 255 instructions, so the search tree needs trampolines.
fn thousand_syscalls(native: Abi) -> crate::Result<Vec<libc::sock_filter>> {
    let mut entries = BTreeMap::new();
    for i in 0u32..1000 {
        let n = 1000 + i;
        let mut e = Entry {
            uncond: Some(RET_ERRNO | (1 + i % 2000)),
            ..Default::default()
        };
        if i % 50 == 7 {
            e.cond.push(CondRule {
                conds: vec![Cond {
                    index: 0,
                    op: LinuxSeccompOperator::ScmpCmpEq,
                    value: 0x1_0000_0000 + u64::from(i),
                    value_two: 0,
                }],
                action: RET_ERRNO | 3000,
            });
        }
        entries.insert(n, e);
    }
    let sec = Section {
        audit_arch: native.audit_arch(),
        default: RET_ALLOW,
        entries,
        high: None,
    };
    codegen(&[sec], RET_KILL_PROCESS)
}

#[test]
fn thousand_syscalls_interpreted() -> crate::Result<()> {
    let prog = thousand_syscalls(Abi::X86_64)?;
    assert!(
        prog.len() > 2000,
        "program unexpectedly short: {}",
        prog.len()
    );
    assert!(
        prog.iter().any(|i| i.code == super::bpf::JMP_JA),
        "no trampolines emitted"
    );
    let ev = |n: u32, a0: u64| run(&prog, &data(AUDIT_ARCH_X86_64, n, [a0, 0, 0, 0, 0, 0]));
    for i in 0u32..1000 {
        assert_eq!(
            ev(1000 + i, 0),
            Some(RET_ERRNO | (1 + i)),
            "nr {}",
            1000 + i
        );
        if i % 50 == 7 {
            assert_eq!(
                ev(1000 + i, 0x1_0000_0000 + u64::from(i)),
                Some(RET_ERRNO | 3000)
            );
        }
    }
    assert_eq!(ev(999, 0), Some(RET_ALLOW));
    assert_eq!(ev(2000, 0), Some(RET_ALLOW));
    assert_eq!(ev(39, 0), Some(RET_ALLOW));
    Ok(())
}

/// The same program, loaded into the kernel in a forked child: numbers near the end of the
/// table must still be matched.
#[test]
fn thousand_syscalls_in_kernel() -> crate::Result<()> {
    let Some(native) = Abi::native() else {
        eprintln!("skipped: no native ABI");
        return Ok(());
    };
    let prog = Program {
        filter: thousand_syscalls(native)?,
        notify: false,
    };
    // SAFETY: fork in a test; the child only makes raw syscalls and calls _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = (|| unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return 2;
            }
            if install(&prog, &[]).is_err() {
                return 3;
            }
            let errno_of = |n: i64, a0: u64| -> i32 {
                if libc::syscall(n, a0) == -1 {
                    *libc::__errno_location()
                } else {
                    0
                }
            };
            for i in [0i64, 1, 499, 500, 900, 997, 998, 999] {
                if errno_of(1000 + i, 0) != (1 + i) as i32 {
                    return 10;
                }
            }
            if errno_of(1957, 0x1_0000_0000 + 957) != 3000 {
                return 11;
            }
            // Not in the profile: allowed, so the kernel itself says ENOSYS.
            if errno_of(2000, 0) != libc::ENOSYS {
                return 12;
            }
            if libc::getpid() <= 0 {
                return 13;
            }
            0
        })();
        unsafe { libc::_exit(code) };
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child check failed");
    Ok(())
}

#[test]
fn too_many_instructions_is_a_clear_error() {
    let rules = (0..1000u64)
        .map(|v| {
            let mut r = syscall(&["getpid"], LinuxSeccompAction::ScmpActErrno, Some(5));
            r.set_args(Some(vec![arg(0, LinuxSeccompOperator::ScmpCmpEq, v, None)]));
            r
        })
        .collect();
    let err = compile_for(
        &profile(LinuxSeccompAction::ScmpActAllow, rules),
        Abi::X86_64,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("more than the kernel's limit of 4096"),
        "{err}"
    );
}
