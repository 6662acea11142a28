//! Seccomp: compile the spec's `linux.seccomp` section to a classic-BPF filter and install it.
//!
//! We do not use libseccomp: the compiler is ours, small, and produces a filter whose cost per
//! syscall is logarithmic in the size of the profile.
//!
//! # Program layout
//!
//! ```text
//!   ld  arch                          ; seccomp_data.arch
//!   jeq AUDIT_ARCH_<native>, 0, L1    ; one section per supported ABI the profile asks for
//!     ld  nr
//!     <binary search on nr>           ; jge splits; every leaf is a `ret` or an argument chain
//! L1: jeq AUDIT_ARCH_<compat>, 0, L2  ; i386 on x86_64, arm on aarch64, only if listed
//!     ld  nr
//!     <binary search on nr>
//! L2: ret KILL_PROCESS                ; any other arch
//! ```
//!
//! For each ABI the profile is resolved to "number → outcome", where an outcome is either a
//! plain return value or a chain of argument rules. The whole 32-bit number space is then cut
//! into intervals of equal outcome (numbers without a rule carry the default action), adjacent
//! equal intervals are merged, and a balanced binary search over the interval starts is emitted.
//! Docker's ~350-syscall allowlist collapses to a few dozen intervals, so a syscall is decided
//! after about 7 comparisons, and the program stays far below the kernel's 4096-instruction
//! limit (exceeding it is a clear error).
//!
//! An argument chain for one number tries its argument rules in profile order (first match
//! wins), then returns the number's unconditional action, or the default if it has none: rules
//! with arguments are checked before an unconditional rule, whatever their order in the file.
//! The conditions of one rule are ANDed; if one index appears twice in a rule, each condition
//! becomes its own rule (ORed), like runc. Comparisons are on full 64-bit values: the high word
//! decides unless equal, then the low word does. `SCMP_CMP_MASKED_EQ` is
//! `(arg & value) == valueTwo` (`valueTwo` absent means 0, as in runc).
//!
//! # Choices
//!
//! - **Elision.** Trailing argument rules whose action equals what happens when they do not
//!   match are dropped, and numbers whose outcome is the default vanish into the default
//!   interval. Nothing else is reordered, so semantics never change.
//! - **Long jumps.** Conditional jumps have 8-bit offsets. The assembler lays the program out
//!   with short jumps, then turns any jump whose target is more than 255 instructions away into
//!   a jump to a `BPF_JA` trampoline (32-bit offset) right behind it, and repeats until the
//!   layout is stable.
//! - **Foreign architectures.** A syscall made with an `arch` that has no section (not listed,
//!   or not supported by us: only x86_64, i386, aarch64 and arm are) kills the process
//!   (`SECCOMP_RET_KILL_PROCESS`): a process switching ABI to dodge the filter is hostile, and
//!   libseccomp's default bad-arch action is a kill too.
//! - **x32.** x32 syscalls arrive as `AUDIT_ARCH_X86_64` with bit 30 set in `nr`. They never
//!   match a rule (our tables are the x86_64 ones): numbers `>= 0x40000000` get the default
//!   action, unless the default lets syscalls through (`ALLOW` or `LOG`), in which case they get
//!   `ERRNO(ENOSYS)`, so that a denylist profile cannot be bypassed through the x32 entry points
//!   (and x32 programs see what they would on a kernel without x32 support).
//! - **Unknown names** (newer than the `syscalls` tables, or from another ABI) are skipped with a
//!   `tracing::debug` event, as libseccomp-based runtimes do; an empty name is a config error.
//! - **Actions.** `SCMP_ACT_KILL` is `KILL_THREAD`. `ERRNO`/`TRACE` without `errnoRet` use EPERM
//!   (`defaultErrnoRet` for a default `ERRNO`). `errnoRet` on other actions is ignored.
//!   `SCMP_ACT_NOTIFY` needs `listenerPath` and cannot be the default action; a profile using
//!   it is installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and [`install`] returns the fd.

mod bpf;
mod compile;
mod profile;
mod tables;

use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use profile::docker_default;

use crate::{Error, Result};
use compile::{action_value, Section, RET_ERRNO, RET_KILL_PROCESS};
use tables::{Abi, X32_SYSCALL_BIT};

/// The kernel's limit on a classic-BPF program (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// A compiled seccomp filter, ready for [`install`].
#[derive(Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    notify: bool,
}

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.filter.len()
    }
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }
    /// The instructions, as handed to the kernel.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.filter
    }
    /// Whether the profile uses `SCMP_ACT_NOTIFY` (so [`install`] returns a listener fd).
    pub fn uses_notify(&self) -> bool {
        self.notify
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.filter.len())
            .field("notify", &self.notify)
            .finish()
    }
}

fn invalid(field: String, problem: String) -> Error {
    Error::InvalidConfig {
        file: "config.json".into(),
        field,
        problem,
    }
}

fn check_data(field: String, v: u32) -> Result<()> {
    if v > 0xFFFF {
        return Err(invalid(
            field,
            format!("{v} does not fit in the 16 bits seccomp returns; use a value up to 65535 (an errno is at most 4095)"),
        ));
    }
    Ok(())
}

/// Check everything the compiler would reject, at config-load time, with errors naming the
/// field, e.g. `config.json: linux.seccomp.syscalls[3].action: ...`.
pub fn validate(s: &LinuxSeccomp) -> Result<()> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(invalid(
            "linux.seccomp.defaultAction".into(),
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime still has to make system calls after loading the filter); use it on specific syscalls".into(),
        ));
    }
    if let Some(e) = s.default_errno_ret() {
        check_data("linux.seccomp.defaultErrnoRet".into(), e)?;
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        if sc.names().is_empty() {
            return Err(invalid(
                format!("{at}.names"),
                "is empty; list at least one syscall name such as \"getpid\"".into(),
            ));
        }
        for (j, n) in sc.names().iter().enumerate() {
            if n.trim().is_empty() {
                return Err(invalid(
                    format!("{at}.names[{j}]"),
                    "is an empty string; give a syscall name such as \"getpid\"".into(),
                ));
            }
        }
        match sc.action() {
            LinuxSeccompAction::ScmpActNotify if s.listener_path().is_none() => {
                return Err(invalid(
                    format!("{at}.action"),
                    "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the seccomp agent's socket); set it or use another action".into(),
                ));
            }
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace => {
                if let Some(e) = sc.errno_ret() {
                    check_data(format!("{at}.errnoRet"), e)?;
                }
            }
            _ => {}
        }
        for (k, a) in sc.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                return Err(invalid(
                    format!("{at}.args[{k}].index"),
                    format!(
                        "{} is out of range; syscall arguments are numbered 0 to 5",
                        a.index()
                    ),
                ));
            }
            if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                let expected = a.value_two().unwrap_or(0);
                if expected & !a.value() != 0 {
                    return Err(invalid(
                        format!("{at}.args[{k}].valueTwo"),
                        format!(
                            "{expected:#x} has bits outside the mask {:#x} (value); SCMP_CMP_MASKED_EQ tests (arg & value) == valueTwo, so this rule could never match (are value and valueTwo swapped?)",
                            a.value()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Compile the profile for the machine we run on.
pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let native = Abi::native().ok_or_else(|| {
        Error::Seccomp(format!(
            "cannot compile filters for this machine ({}); only x86_64 and aarch64 are supported",
            std::env::consts::ARCH
        ))
    })?;
    compile_for(s, native)
}

/// Compile the profile for the given native ABI (tests compile for other machines too).
pub(crate) fn compile_for(s: &LinuxSeccomp, native: Abi) -> Result<Program> {
    validate(s)?;
    let default = action_value(s.default_action(), s.default_errno_ret());
    if s.default_errno_ret().is_some() && s.default_action() != LinuxSeccompAction::ScmpActErrno {
        tracing::debug!(
            "seccomp: defaultErrnoRet ignored, the default action is not SCMP_ACT_ERRNO"
        );
    }
    let sections: Vec<Section> = compile::wanted_abis(s, native)
        .into_iter()
        .map(|abi| {
            let mut sec = Section::from_profile(s, abi, default);
            if abi == Abi::X86_64 {
                let permissive = matches!(
                    s.default_action(),
                    LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
                );
                let x32 = if permissive {
                    RET_ERRNO | libc::ENOSYS as u32
                } else {
                    default
                };
                sec.high = Some((X32_SYSCALL_BIT, x32));
            }
            sec
        })
        .collect();
    let filter = compile::codegen(&sections, RET_KILL_PROCESS)?;
    if filter.len() > MAX_INSTRUCTIONS {
        return Err(Error::Seccomp(format!(
            "the profile compiles to {} BPF instructions, more than the kernel's limit of {MAX_INSTRUCTIONS}; merge rules that share an action or drop argument conditions",
            filter.len()
        )));
    }
    let notify = s
        .syscalls()
        .iter()
        .flatten()
        .any(|sc| sc.action() == LinuxSeccompAction::ScmpActNotify);
    tracing::debug!(
        instructions = filter.len(),
        notify,
        "seccomp: compiled filter"
    );
    Ok(Program { filter, notify })
}

fn flag_bits(flags: &[LinuxSeccompFilterFlag]) -> libc::c_ulong {
    flags.iter().fold(0, |acc, f| {
        acc | match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        }
    })
}

/// Install `p` in the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER)` and the spec's
/// flags. The kernel requires no_new_privs or CAP_SYS_ADMIN. Returns the listener fd if the
/// profile uses `SCMP_ACT_NOTIFY`. Does not allocate on success (safe after `fork`).
pub fn install(
    p: &Program,
    flags: &[LinuxSeccompFilterFlag],
) -> Result<Option<std::os::fd::OwnedFd>> {
    let len = u16::try_from(p.filter.len())
        .ok()
        .filter(|l| *l > 0 && usize::from(*l) <= MAX_INSTRUCTIONS)
        .ok_or_else(|| {
            Error::Seccomp(format!(
                "cannot install a filter of {} instructions (must be 1 to {MAX_INSTRUCTIONS})",
                p.filter.len()
            ))
        })?;
    let mut bits = flag_bits(flags);
    if p.notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // TSYNC reports failure as a thread id, which would be ambiguous with the fd.
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    let prog = libc::sock_fprog {
        len,
        filter: p.filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `len` valid instructions that outlive the call; the kernel
    // copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bits,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        let what = match err.raw_os_error() {
            Some(libc::EACCES) => "loading the seccomp filter: the kernel requires no_new_privs (process.noNewPrivileges: true) or CAP_SYS_ADMIN".to_string(),
            Some(libc::EINVAL) => format!("loading the seccomp filter: the kernel rejected the program or the flags {flags:?} (WAIT_KILLABLE_RECV needs Linux 5.19, SPEC_ALLOW 4.17, LOG 4.14)"),
            Some(libc::EBUSY) => "loading the seccomp filter: a user-notification listener is already installed for this process".to_string(),
            Some(libc::ESRCH) => "loading the seccomp filter: another thread could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)".to_string(),
            _ => "loading the seccomp filter".to_string(),
        };
        return Err(Error::Sys { what, source: err });
    }
    if p.notify {
        let fd = i32::try_from(rc)
            .map_err(|_| Error::Seccomp(format!("seccomp returned an invalid listener fd {rc}")))?;
        // SAFETY: with NEW_LISTENER the kernel returns a fresh fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if rc > 0 {
        return Err(Error::Seccomp(format!(
            "thread {rc} could not be synchronized to the filter (SECCOMP_FILTER_FLAG_TSYNC); it has diverging filters"
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
