//! From the OCI `linux.seccomp` section to BPF: resolve names per ABI into per-number rule
//! chains, turn each ABI's number space into intervals of equal outcome, and emit a binary
//! search over those intervals.

use std::collections::BTreeMap;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::bpf::{Asm, JmpOp, Target};
use super::tables::Abi;
use crate::Result;

// struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_USER_NOTIF: u32 = 0x7FC0_0000;
pub(crate) const RET_TRACE: u32 = 0x7FF0_0000;
pub(crate) const RET_LOG: u32 = 0x7FFC_0000;
pub(crate) const RET_ALLOW: u32 = 0x7FFF_0000;

/// The kernel's return value for an action (errno/trace data defaults to EPERM like runc).
pub(crate) fn action_value(a: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(libc::EPERM as u32) & 0xFFFF;
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    }
}

/// One argument comparison (already validated: index <= 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub(crate) index: u32,
    pub(crate) op: LinuxSeccompOperator,
    pub(crate) value: u64,
    pub(crate) value_two: u64,
}

/// Conditions ANDed; if all hold, return `action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CondRule {
    pub(crate) conds: Vec<Cond>,
    pub(crate) action: u32,
}

/// What happens to one syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ret(u32),
    /// Try `rules` in order, first match wins; otherwise `fallthrough`.
    Chain {
        rules: Vec<CondRule>,
        fallthrough: u32,
    },
}

/// Rules gathered for one number before simplification.
#[derive(Default)]
pub(crate) struct Entry {
    pub(crate) cond: Vec<CondRule>,
    pub(crate) uncond: Option<u32>,
}

/// One `arch` branch of the program.
pub(crate) struct Section {
    pub(crate) audit_arch: u32,
    pub(crate) default: u32,
    pub(crate) entries: BTreeMap<u32, Entry>,
    /// Numbers from `.0` upward all get action `.1` (the x32 range on x86_64).
    pub(crate) high: Option<(u32, u32)>,
}

impl Section {
    /// Gather the profile's rules for `abi`. Names the table does not know are skipped.
    pub(crate) fn from_profile(s: &LinuxSeccomp, abi: Abi, default: u32) -> Section {
        let mut entries: BTreeMap<u32, Entry> = BTreeMap::new();
        for sc in s.syscalls().iter().flatten() {
            let action = action_value(sc.action(), sc.errno_ret());
            let args = sc.args().as_deref().unwrap_or(&[]);
            let conds: Vec<Cond> = args
                .iter()
                .map(|a| Cond {
                    // validate() ensured index <= 5.
                    index: u32::try_from(a.index()).unwrap_or(u32::MAX),
                    op: a.op(),
                    value: a.value(),
                    value_two: a.value_two().unwrap_or(0),
                })
                .collect();
            // Like runc: if one index appears twice, every comparison becomes its own rule
            // (ORed); otherwise they are ANDed in one rule.
            let repeated = conds
                .iter()
                .enumerate()
                .any(|(i, c)| conds[..i].iter().any(|d| d.index == c.index));
            let rules: Vec<CondRule> = if conds.is_empty() {
                Vec::new()
            } else if repeated {
                conds
                    .iter()
                    .map(|c| CondRule {
                        conds: vec![*c],
                        action,
                    })
                    .collect()
            } else {
                vec![CondRule {
                    conds: conds.clone(),
                    action,
                }]
            };
            for name in sc.names() {
                let Some(nr) = abi.resolve(name) else {
                    tracing::debug!(
                        syscall = %name,
                        abi = abi.name(),
                        "seccomp: syscall not in this ABI's table, skipping its rule"
                    );
                    continue;
                };
                let e = entries.entry(nr).or_default();
                if conds.is_empty() {
                    match e.uncond {
                        None => e.uncond = Some(action),
                        Some(prev) if prev != action => tracing::debug!(
                            syscall = %name,
                            "seccomp: syscall listed twice without arguments; the first action wins"
                        ),
                        Some(_) => {}
                    }
                } else {
                    e.cond.extend(rules.iter().cloned());
                }
            }
        }
        Section {
            audit_arch: abi.audit_arch(),
            default,
            entries,
            high: None,
        }
    }

    /// The number space `[0, 2^32)` cut into intervals of equal outcome, ascending by start.
    pub(crate) fn intervals(&self) -> Vec<(u32, Outcome)> {
        fn push(v: &mut Vec<(u32, Outcome)>, start: u32, o: Outcome) {
            if v.last().is_some_and(|l| l.0 == start) {
                v.pop();
            }
            if v.last().is_some_and(|l| l.1 == o) {
                return;
            }
            v.push((start, o));
        }
        let mut v = vec![(0u32, Outcome::Ret(self.default))];
        let limit = self.high.map(|h| h.0);
        for (&nr, e) in &self.entries {
            if limit.is_some_and(|l| nr >= l) {
                break;
            }
            push(&mut v, nr, simplify(e, self.default));
            if let Some(next) = nr.checked_add(1) {
                push(&mut v, next, Outcome::Ret(self.default));
            }
        }
        if let Some((start, action)) = self.high {
            push(&mut v, start, Outcome::Ret(action));
        }
        v
    }
}

/// Drop what cannot change the result: trailing argument rules whose action is what happens
/// anyway when they do not match. An entry reduced to the default disappears into the
/// surrounding default interval.
fn simplify(e: &Entry, default: u32) -> Outcome {
    let fallthrough = e.uncond.unwrap_or(default);
    let mut rules = e.cond.clone();
    while rules.last().is_some_and(|r| r.action == fallthrough) {
        rules.pop();
    }
    if rules.is_empty() {
        Outcome::Ret(fallthrough)
    } else {
        Outcome::Chain { rules, fallthrough }
    }
}

/// Which sections the profile's `architectures` ask for on a machine whose native ABI is `native`.
pub(crate) fn wanted_abis(s: &LinuxSeccomp, native: Abi) -> Vec<Abi> {
    let mut abis = vec![native];
    for a in s.architectures().iter().flatten() {
        let abi = match a {
            Arch::ScmpArchNative => Some(native),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            Arch::ScmpArchArm => Some(Abi::Arm),
            Arch::ScmpArchX32 if native == Abi::X86_64 => {
                tracing::debug!(
                    "seccomp: SCMP_ARCH_X32 listed; x32 syscalls get the default action (ENOSYS if the default allows)"
                );
                None
            }
            other => {
                tracing::debug!(arch = %other, "seccomp: architecture not supported on this machine, its syscalls are killed");
                None
            }
        };
        match abi {
            Some(abi)
                if (abi == native || Some(abi) == native.compat()) && !abis.contains(&abi) =>
            {
                abis.push(abi);
            }
            Some(abi) if abi == native || Some(abi) == native.compat() => {}
            Some(abi) => tracing::debug!(
                abi = abi.name(),
                "seccomp: architecture cannot run on this machine, ignoring it"
            ),
            None => {}
        }
    }
    abis
}

/// Emit the whole program: `arch` dispatch, then per section `nr` binary search, then leaves.
pub(crate) fn codegen(sections: &[Section], bad_arch: u32) -> Result<Vec<libc::sock_filter>> {
    let mut asm = Asm::default();
    asm.ld(OFF_ARCH);
    for sec in sections {
        let next = asm.new_label();
        asm.jmp(JmpOp::Eq, sec.audit_arch, Target::Next, Target::Label(next));
        let iv = sec.intervals();
        asm.ld(OFF_NR);
        emit_tree(&mut asm, &iv);
        asm.place(next);
    }
    asm.ret(bad_arch);
    asm.assemble()
}

/// Binary search on `nr` (held in A) over `iv`; each leaf ends in `ret`.
fn emit_tree(asm: &mut Asm, iv: &[(u32, Outcome)]) {
    match iv {
        [] => {}
        [(_, o)] => emit_outcome(asm, o),
        _ => {
            let mid = iv.len() / 2;
            let right = asm.new_label();
            asm.jmp(JmpOp::Ge, iv[mid].0, Target::Label(right), Target::Next);
            emit_tree(asm, &iv[..mid]);
            asm.place(right);
            emit_tree(asm, &iv[mid..]);
        }
    }
}

fn emit_outcome(asm: &mut Asm, o: &Outcome) {
    match o {
        Outcome::Ret(a) => asm.ret(*a),
        Outcome::Chain { rules, fallthrough } => {
            for r in rules {
                let fail = asm.new_label();
                for c in &r.conds {
                    emit_cond(asm, c, fail);
                }
                asm.ret(r.action);
                asm.place(fail);
            }
            asm.ret(*fallthrough);
        }
    }
}

/// Offsets of the low and high 32-bit halves of argument `index`.
fn arg_words(index: u32) -> (u32, u32) {
    let base = OFF_ARGS + 8 * index;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// Fall through if the 64-bit comparison holds, jump to `fail` if not.
fn emit_cond(asm: &mut Asm, c: &Cond, fail: usize) {
    let (lo_off, hi_off) = arg_words(c.index);
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let f = Target::Label(fail);
    let n = Target::Next;
    let ok = asm.new_label();
    let ok_t = Target::Label(ok);
    match c.op {
        LinuxSeccompOperator::ScmpCmpEq => {
            asm.ld(hi_off);
            asm.jmp(JmpOp::Eq, vh, n, f);
            asm.ld(lo_off);
            asm.jmp(JmpOp::Eq, vl, n, f);
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            asm.ld(hi_off);
            asm.jmp(JmpOp::Eq, vh, n, ok_t);
            asm.ld(lo_off);
            asm.jmp(JmpOp::Eq, vl, f, n);
        }
        LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe => {
            // hi > vh: holds; hi < vh: fails; hi == vh: decided by lo.
            asm.ld(hi_off);
            asm.jmp(JmpOp::Gt, vh, ok_t, n);
            asm.jmp(JmpOp::Eq, vh, n, f);
            asm.ld(lo_off);
            let op = if c.op == LinuxSeccompOperator::ScmpCmpGt {
                JmpOp::Gt
            } else {
                JmpOp::Ge
            };
            asm.jmp(op, vl, n, f);
        }
        LinuxSeccompOperator::ScmpCmpLt | LinuxSeccompOperator::ScmpCmpLe => {
            // hi > vh: fails; hi < vh: holds; hi == vh: decided by lo.
            asm.ld(hi_off);
            asm.jmp(JmpOp::Gt, vh, f, n);
            asm.jmp(JmpOp::Eq, vh, n, ok_t);
            asm.ld(lo_off);
            // a < vl  <=>  !(a >= vl);  a <= vl  <=>  !(a > vl)
            let op = if c.op == LinuxSeccompOperator::ScmpCmpLt {
                JmpOp::Ge
            } else {
                JmpOp::Gt
            };
            asm.jmp(op, vl, f, n);
        }
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let (mh, ml) = ((c.value >> 32) as u32, c.value as u32);
            let (eh, el) = ((c.value_two >> 32) as u32, c.value_two as u32);
            // validate() guarantees expected ⊆ mask, so a zero mask word always matches.
            if mh != 0 {
                asm.ld(hi_off);
                asm.and(mh);
                asm.jmp(JmpOp::Eq, eh, n, f);
            }
            if ml != 0 {
                asm.ld(lo_off);
                asm.and(ml);
                asm.jmp(JmpOp::Eq, el, n, f);
            }
        }
    }
    asm.place(ok);
}
