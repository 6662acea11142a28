//! A tiny classic-BPF assembler: forward labels, and jump relaxation so that conditional jumps
//! whose target is more than 255 instructions away go through a `BPF_JA` trampoline (32-bit
//! offset) placed right after them.

use crate::{Error, Result};

// Opcodes (linux/bpf_common.h, linux/filter.h).
pub(crate) const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
pub(crate) const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const JMP_JEQ_K: u16 = 0x05 | 0x10;
pub(crate) const JMP_JGT_K: u16 = 0x05 | 0x20;
pub(crate) const JMP_JGE_K: u16 = 0x05 | 0x30;
pub(crate) const RET_K: u16 = 0x06;

/// Where a conditional jump goes: the instruction right after it, or a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Next,
    Label(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JmpOp {
    Eq,
    Gt,
    Ge,
}

impl JmpOp {
    fn code(self) -> u16 {
        match self {
            JmpOp::Eq => JMP_JEQ_K,
            JmpOp::Gt => JMP_JGT_K,
            JmpOp::Ge => JMP_JGE_K,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Ins {
    Ld(u32),
    And(u32),
    Ret(u32),
    Jmp {
        op: JmpOp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Label(usize),
}

/// Builder of one program. Only forward jumps exist (classic BPF has no backward jumps).
#[derive(Default)]
pub(crate) struct Asm {
    ins: Vec<Ins>,
    labels: usize,
}

impl Asm {
    pub(crate) fn new_label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    pub(crate) fn place(&mut self, label: usize) {
        self.ins.push(Ins::Label(label));
    }
    /// `A = *(u32 *)(seccomp_data + offset)`
    pub(crate) fn ld(&mut self, offset: u32) {
        self.ins.push(Ins::Ld(offset));
    }
    pub(crate) fn and(&mut self, k: u32) {
        self.ins.push(Ins::And(k));
    }
    pub(crate) fn ret(&mut self, k: u32) {
        self.ins.push(Ins::Ret(k));
    }
    pub(crate) fn jmp(&mut self, op: JmpOp, k: u32, jt: Target, jf: Target) {
        self.ins.push(Ins::Jmp { op, k, jt, jf });
    }

    /// Lay the program out and resolve labels. Conditional jumps start short; any whose
    /// distance exceeds 255 is marked long (gets a trampoline) and layout is redone, until
    /// nothing changes. Lengths only grow, so this terminates.
    pub(crate) fn assemble(self) -> Result<Vec<libc::sock_filter>> {
        let n = self.ins.len();
        // (jt long, jf long) per instruction.
        let mut long = vec![(false, false); n];
        let mut pos = vec![0usize; n];
        let mut label_pos = vec![usize::MAX; self.labels];
        loop {
            let mut p = 0usize;
            for (i, ins) in self.ins.iter().enumerate() {
                pos[i] = p;
                match ins {
                    Ins::Label(l) => label_pos[*l] = p,
                    Ins::Jmp { .. } => p += 1 + usize::from(long[i].0) + usize::from(long[i].1),
                    _ => p += 1,
                }
            }
            let mut changed = false;
            for (i, ins) in self.ins.iter().enumerate() {
                if let Ins::Jmp { jt, jf, .. } = ins {
                    let (lt, lf) = &mut long[i];
                    for (t, is_long) in [(*jt, lt), (*jf, lf)] {
                        if let Target::Label(l) = t {
                            if !*is_long && distance(&label_pos, l, pos[i] + 1)? > 255 {
                                *is_long = true;
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }

        let mut out = Vec::with_capacity(n);
        for (i, ins) in self.ins.iter().enumerate() {
            let p = pos[i];
            match *ins {
                Ins::Label(_) => {}
                Ins::Ld(off) => out.push(stmt(LD_W_ABS, off)),
                Ins::And(k) => out.push(stmt(ALU_AND_K, k)),
                Ins::Ret(k) => out.push(stmt(RET_K, k)),
                Ins::Jmp { op, k, jt, jf } => {
                    let (lt, lf) = long[i];
                    let after = p + 1 + usize::from(lt) + usize::from(lf);
                    let abs = |t: Target| -> Result<usize> {
                        match t {
                            Target::Next => Ok(after),
                            Target::Label(l) => {
                                distance(&label_pos, l, p + 1)?;
                                Ok(label_pos[l])
                            }
                        }
                    };
                    let (t_abs, f_abs) = (abs(jt)?, abs(jf)?);
                    let jt_off = if lt { 0 } else { short(t_abs - (p + 1))? };
                    let jf_off = if lf {
                        u8::from(lt)
                    } else {
                        short(f_abs - (p + 1))?
                    };
                    out.push(libc::sock_filter {
                        code: op.code(),
                        jt: jt_off,
                        jf: jf_off,
                        k,
                    });
                    if lt {
                        out.push(stmt(JMP_JA, far(t_abs - (p + 2))?));
                    }
                    if lf {
                        out.push(stmt(JMP_JA, far(f_abs - (p + 2 + usize::from(lt)))?));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn internal(what: &str) -> Error {
    Error::Seccomp(format!(
        "internal error in the BPF assembler: {what} (this is a bug in berth-runtime, please report it with the seccomp profile)"
    ))
}

/// Forward distance from `from` to label `l`.
fn distance(label_pos: &[usize], l: usize, from: usize) -> Result<usize> {
    let to = *label_pos
        .get(l)
        .filter(|p| **p != usize::MAX)
        .ok_or_else(|| internal("jump to a label that was never placed"))?;
    to.checked_sub(from)
        .ok_or_else(|| internal("backward jump"))
}

fn short(d: usize) -> Result<u8> {
    u8::try_from(d).map_err(|_| internal("short jump out of range after relaxation"))
}

fn far(d: usize) -> Result<u32> {
    u32::try_from(d).map_err(|_| internal("jump longer than 2^32 instructions"))
}

/// A classic-BPF interpreter for the subset this assembler emits, used by the unit tests to
/// check program semantics for architectures and inputs the test machine cannot produce.
#[cfg(test)]
pub(crate) fn run(prog: &[libc::sock_filter], data: &[u32; 16]) -> Option<u32> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let ins = prog.get(pc)?;
        pc += 1;
        match ins.code {
            LD_W_ABS => a = *data.get(usize::try_from(ins.k / 4).ok()?)?,
            ALU_AND_K => a &= ins.k,
            RET_K => return Some(ins.k),
            JMP_JA => pc += usize::try_from(ins.k).ok()?,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                let taken = match ins.code {
                    JMP_JEQ_K => a == ins.k,
                    JMP_JGT_K => a > ins.k,
                    _ => a >= ins.k,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_targets_get_trampolines() -> Result<()> {
        let mut asm = Asm::default();
        let far_l = asm.new_label();
        asm.ld(0);
        asm.jmp(JmpOp::Eq, 7, Target::Label(far_l), Target::Next);
        for i in 0..600 {
            asm.ret(i);
        }
        asm.place(far_l);
        asm.ret(0xdead);
        let prog = asm.assemble()?;
        // ld, jeq, ja trampoline, 600 rets, target ret.
        assert_eq!(prog.len(), 604);
        assert_eq!(prog[1].code, JMP_JEQ_K);
        assert_eq!((prog[1].jt, prog[1].jf), (0, 1));
        assert_eq!(prog[2].code, JMP_JA);
        let mut data = [0u32; 16];
        data[0] = 7;
        assert_eq!(run(&prog, &data), Some(0xdead));
        data[0] = 8;
        assert_eq!(run(&prog, &data), Some(0));
        Ok(())
    }

    #[test]
    fn both_targets_far() -> Result<()> {
        let mut asm = Asm::default();
        let (a, b) = (asm.new_label(), asm.new_label());
        asm.ld(0);
        asm.jmp(JmpOp::Gt, 10, Target::Label(a), Target::Label(b));
        for i in 0..300 {
            asm.ret(i);
        }
        asm.place(a);
        asm.ret(1000);
        for i in 0..300 {
            asm.ret(i);
        }
        asm.place(b);
        asm.ret(2000);
        let prog = asm.assemble()?;
        let mut data = [0u32; 16];
        data[0] = 11;
        assert_eq!(run(&prog, &data), Some(1000));
        data[0] = 10;
        assert_eq!(run(&prog, &data), Some(2000));
        for ins in &prog {
            if ins.code == JMP_JEQ_K || ins.code == JMP_JGT_K || ins.code == JMP_JGE_K {
                assert!(ins.jt <= 2 && ins.jf <= 2);
            }
        }
        Ok(())
    }

    #[test]
    fn unplaced_label_is_an_error() {
        let mut asm = Asm::default();
        let l = asm.new_label();
        asm.jmp(JmpOp::Eq, 0, Target::Label(l), Target::Next);
        asm.ret(0);
        let err = asm
            .assemble()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("never placed"), "{err}");
    }
}
