//! Device access rules: v1 `devices.allow`/`devices.deny` lines and, for v2, an eBPF program
//! of type `BPF_PROG_TYPE_CGROUP_DEVICE` generated from the rule list, loaded and attached
//! with the `bpf(2)` system call.
//!
//! Semantics (both layouts): a rule list given in the spec starts from "deny everything";
//! rules apply in order, a later rule overriding an earlier one. The eBPF program therefore
//! checks the rules last to first and returns the verdict of the first that matches
//! (1 = allow, 0 = deny), falling back to deny.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{Error, Result};

pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

// bpf_cgroup_dev_ctx.access_type low 16 bits.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Device kind a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    All,
    Char,
    Block,
}

/// A validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DevKind,
    /// `None` = any.
    pub major: Option<u32>,
    /// `None` = any.
    pub minor: Option<u32>,
    /// Bits: 1 mknod, 2 read, 4 write.
    pub access: u8,
}

impl DeviceRule {
    /// The line written to v1 `devices.allow` / `devices.deny`, e.g. `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let t = match self.kind {
            DevKind::All => "a",
            DevKind::Char => "c",
            DevKind::Block => "b",
        };
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        if self.access & ACC_READ != 0 {
            acc.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            acc.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            acc.push('m');
        }
        format!("{t} {}:{} {acc}", n(self.major), n(self.minor))
    }

    fn matches_everything(&self) -> bool {
        self.kind == DevKind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }
}

/// Validate the spec's `linux.resources.devices` list. FIFO rules (`p`) are not controlled by
/// cgroups and are skipped with a warning; `u` is treated as `c`.
pub fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
            LinuxDeviceType::B => DevKind::Block,
            LinuxDeviceType::P => {
                tracing::warn!("{field}: FIFO device rules are not enforced by cgroups; ignored");
                continue;
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                    Error::InvalidArgument(format!("{field}.{what}: {n} is out of range"))
                }),
            }
        };
        let major = num(r.major(), "major")?;
        let minor = num(r.minor(), "minor")?;
        let acc_str = r.access().as_deref().unwrap_or("");
        let mut access = 0u8;
        for ch in acc_str.chars() {
            access |= match ch {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "{field}.access: {acc_str:?} may only contain the letters r, w and m"
                    )))
                }
            };
        }
        if access == 0 {
            access = ACC_ALL;
        }
        out.push(DeviceRule {
            allow: r.allow(),
            kind,
            major,
            minor,
            access,
        });
    }
    Ok(out)
}

/// The v1 controller keeps a default (allow or deny, set by `a` rules) and a list of
/// exceptions; a rule agreeing with the default only removes an exception with exactly the same
/// type and numbers. So a rule that is narrower than an earlier wildcard exception (e.g. `deny c
/// 1:5` after `allow c 1:*` in deny-by-default mode) would silently do nothing: refuse it.
pub fn check_v1_expressible(rules: &[DeviceRule]) -> Result<()> {
    let mut default_allow = false;
    let mut exceptions: Vec<&DeviceRule> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if r.kind == DevKind::All {
            default_allow = r.allow;
            exceptions.clear();
            continue;
        }
        if r.allow != default_allow {
            exceptions.push(r);
            continue;
        }
        let covers = |e: &&&DeviceRule| {
            e.kind == r.kind
                && (e.major.is_none() || e.major == r.major)
                && (e.minor.is_none() || e.minor == r.minor)
                && !(e.major == r.major && e.minor == r.minor)
        };
        if let Some(e) = exceptions.iter().find(covers) {
            return Err(Error::InvalidArgument(format!(
                "linux.resources.devices[{i}] ({} {}) narrows the earlier wildcard rule ({} {}), which cgroup v1 cannot express; list the devices individually",
                if r.allow { "allow" } else { "deny" },
                r.v1_line(),
                if e.allow { "allow" } else { "deny" },
                e.v1_line()
            )));
        }
    }
    Ok(())
}

/// Apply the rules on a v1 `devices` cgroup directory: `devices.deny a`, then each rule in order.
pub(crate) fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    check_v1_expressible(rules)?;
    super::fs::write(dir, "devices.deny", "a")?;
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        super::fs::write(dir, file, &r.v1_line())?;
    }
    Ok(())
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | op | source).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// A jump to the end of the current rule's block, patched once the block is complete.
const SKIP: i16 = i16::MIN;

/// Generate the device-filter program. Registers: r1 = ctx, r2 = device type,
/// r3 = requested access, r4 = major, r5 = minor, r6 = scratch, r0 = verdict.
pub fn bpf_program(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let mut prog = vec![
        ins(LDX_MEM_W, 2, 1, 0, 0),
        ins(ALU32_AND_K, 2, 0, 0, 0xffff),
        ins(LDX_MEM_W, 3, 1, 0, 0),
        ins(ALU32_RSH_K, 3, 0, 0, 16),
        ins(LDX_MEM_W, 4, 1, 4, 0),
        ins(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut block = Vec::new();
        match rule.kind {
            DevKind::All => {}
            DevKind::Char => block.push(ins(JMP_JNE_K, 2, 0, SKIP, DEV_CHAR)),
            DevKind::Block => block.push(ins(JMP_JNE_K, 2, 0, SKIP, DEV_BLOCK)),
        }
        if rule.access != ACC_ALL {
            block.push(ins(ALU64_MOV_X, 6, 3, 0, 0));
            if rule.allow {
                // Allow only if every requested bit is in the rule's access.
                block.push(ins(ALU32_AND_K, 6, 0, 0, i32::from(!rule.access & ACC_ALL)));
                block.push(ins(JMP_JNE_K, 6, 0, SKIP, 0));
            } else {
                // Deny if any requested bit is in the rule's access.
                block.push(ins(ALU32_AND_K, 6, 0, 0, i32::from(rule.access)));
                block.push(ins(JMP_JEQ_K, 6, 0, SKIP, 0));
            }
        }
        // Majors/minors are u32 in the context and zero-extended on load; the immediate is
        // sign-extended, so values above i32::MAX could never match: clamp to a value that
        // cannot match either (such device numbers do not exist: minors are 20 bits, majors 12).
        if let Some(m) = rule.major {
            block.push(ins(JMP_JNE_K, 4, 0, SKIP, i32::try_from(m).unwrap_or(-1)));
        }
        if let Some(m) = rule.minor {
            block.push(ins(JMP_JNE_K, 5, 0, SKIP, i32::try_from(m).unwrap_or(-1)));
        }
        block.push(ins(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(ins(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.off == SKIP {
                // Blocks are a handful of instructions: the offset always fits.
                insn.off = i16::try_from(len - i - 1).unwrap_or(0);
            }
        }
        prog.extend(block);
        if rule.matches_everything() {
            // Unconditional verdict: earlier rules are unreachable, and the verifier
            // rejects unreachable instructions.
            return prog;
        }
    }
    prog.push(ins(ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(ins(JMP_EXIT, 0, 0, 0, 0));
    prog
}

// bpf(2) commands and constants (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr points to a live, initialised #[repr(C)] bpf_attr prefix of the given size;
    // the kernel reads (and for queries writes) at most that many bytes, and any pointers
    // inside it reference buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this new file descriptor to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

/// Load the program into the kernel (`BPF_PROG_LOAD`); on failure the verifier log is
/// included in the error.
pub fn load_program(insns: &[BpfInsn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_devcg\0");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| Error::Cgroup("device program too long".into()))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(first) => {
            // Retry with a verifier log to explain the failure.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(Error::sys(
                format!(
                    "cgroup: loading the device-filter eBPF program ({} instructions; needs root and a kernel with CONFIG_CGROUP_BPF){}{}",
                    insns.len(),
                    if text.is_empty() { "" } else { "; verifier log:\n" },
                    text.trim_end()
                ),
                first,
            ))
        }
    }
}

/// Program ids attached to the cgroup for BPF_CGROUP_DEVICE (directly, not inherited).
fn query_attached(dir_fd: RawFd) -> std::io::Result<Vec<u32>> {
    let mut attr = QueryAttr {
        target_fd: dir_fd as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    if attr.prog_cnt == 0 {
        return Ok(Vec::new());
    }
    let mut ids = vec![0u32; attr.prog_cnt as usize + 8];
    let mut attr = QueryAttr {
        target_fd: dir_fd as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Build, load and attach the device filter to the v2 cgroup `dir`, then detach any device
/// programs attached there before (so `update` replaces rather than stacks rules).
pub(crate) fn apply_v2(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let insns = bpf_program(rules);
    let prog = load_program(&insns)?;
    let cpath = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Cgroup(format!("{}: path contains a NUL byte", dir.display())))?;
    // SAFETY: cpath is a valid NUL-terminated string.
    let raw = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(Error::io(dir, std::io::Error::last_os_error()));
    }
    let dir_fd = fd_from(raw as libc::c_long);
    let old = match query_attached(dir_fd.as_raw_fd()) {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list attached device programs; old ones stay attached");
            Vec::new()
        }
    };
    let mut attr = AttachAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| {
        Error::sys(
            format!(
                "cgroup: attaching the device-filter eBPF program to {} (BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)",
                dir.display()
            ),
            e,
        )
    })?;
    tracing::debug!(dir = %dir.display(), insns = insns.len(), "attached device filter");
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let res = bpf(BPF_PROG_GET_FD_BY_ID, &mut get).and_then(|fd| {
            let old_fd = fd_from(fd);
            let mut det = AttachAttr {
                target_fd: dir_fd.as_raw_fd() as u32,
                attach_bpf_fd: old_fd.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                ..Default::default()
            };
            bpf(BPF_PROG_DETACH, &mut det)
        });
        if let Err(e) = res {
            tracing::warn!(dir = %dir.display(), prog_id = id, error = %e, "cannot detach previous device program");
        }
    }
    Ok(())
}

/// Docker's default device rules, as a runtime passes them in the spec (handy for tests).
pub fn docker_default_rules() -> Vec<DeviceRule> {
    let c = |major, minor: Option<u32>| DeviceRule {
        allow: true,
        kind: DevKind::Char,
        major: Some(major),
        minor,
        access: ACC_ALL,
    };
    vec![
        DeviceRule {
            allow: false,
            kind: DevKind::All,
            major: None,
            minor: None,
            access: ACC_ALL,
        },
        c(1, Some(3)),
        c(1, Some(5)),
        c(1, Some(7)),
        c(1, Some(8)),
        c(1, Some(9)),
        c(5, Some(0)),
        c(5, Some(1)),
        c(5, Some(2)),
        c(136, None),
        c(10, Some(200)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the subset of eBPF we generate, to check the verdicts.
    fn run(prog: &[BpfInsn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let dst = (i.regs & 0xf) as usize;
            let src = (i.regs >> 4) as usize;
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                JMP_JEQ_K => {
                    if r[dst] == i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const RW: u32 = (ACC_READ | ACC_WRITE) as u32;

    #[test]
    fn docker_defaults_verdicts() {
        let prog = bpf_program(&docker_default_rules());
        // The leading deny-all is unconditional: the program ends in "r0 = 0; exit".
        assert_eq!(prog[prog.len() - 2], ins(ALU64_MOV_K, 0, 0, 0, 0));
        assert_eq!(run(&prog, 2, RW, 1, 3), 1, "/dev/null allowed");
        assert_eq!(run(&prog, 2, RW, 136, 42), 1, "pts allowed");
        assert_eq!(run(&prog, 2, RW, 1, 1), 0, "/dev/mem denied");
        assert_eq!(run(&prog, 1, RW, 8, 0), 0, "block sda denied");
        assert_eq!(run(&prog, 1, RW, 1, 3), 0, "block 1:3 is not char 1:3");
    }

    #[test]
    fn later_rules_override_and_partial_access() {
        let rules = vec![
            DeviceRule {
                allow: true,
                kind: DevKind::Char,
                major: Some(1),
                minor: None,
                access: ACC_ALL,
            },
            DeviceRule {
                allow: false,
                kind: DevKind::Char,
                major: Some(1),
                minor: Some(5),
                access: ACC_WRITE,
            },
            DeviceRule {
                allow: true,
                kind: DevKind::Block,
                major: Some(8),
                minor: Some(0),
                access: ACC_READ,
            },
        ];
        let prog = bpf_program(&rules);
        assert_eq!(run(&prog, 2, RW, 1, 3), 1);
        assert_eq!(
            run(&prog, 2, ACC_READ as u32, 1, 5),
            1,
            "read of 1:5 allowed"
        );
        assert_eq!(run(&prog, 2, RW, 1, 5), 0, "write of 1:5 denied");
        assert_eq!(run(&prog, 1, ACC_READ as u32, 8, 0), 1);
        assert_eq!(run(&prog, 1, RW, 8, 0), 0, "block write not allowed");
        assert_eq!(run(&prog, 2, RW, 4, 0), 0, "default deny");
    }

    #[test]
    fn v1_lines() {
        let r = docker_default_rules();
        assert_eq!(r[0].v1_line(), "a *:* rwm");
        assert_eq!(r[1].v1_line(), "c 1:3 rwm");
        assert_eq!(r[9].v1_line(), "c 136:* rwm");
        assert!(check_v1_expressible(&r).is_ok());
    }

    #[test]
    fn v1_refuses_narrowing_a_wildcard() {
        let rule = |allow, major, minor| DeviceRule {
            allow,
            kind: DevKind::Char,
            major: Some(major),
            minor,
            access: ACC_ALL,
        };
        let all = |allow| DeviceRule {
            allow,
            kind: DevKind::All,
            major: None,
            minor: None,
            access: ACC_ALL,
        };
        // deny a; allow c 1:*; deny c 1:5 => not expressible.
        let bad = [all(false), rule(true, 1, None), rule(false, 1, Some(5))];
        let err = check_v1_expressible(&bad).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("devices[2]")));
        // Exact matches and a reset by an "a" rule are fine.
        let ok = [all(false), rule(true, 1, Some(5)), rule(false, 1, Some(5))];
        assert!(check_v1_expressible(&ok).is_ok());
        let ok = [rule(true, 1, None), all(false), rule(false, 1, Some(5))];
        assert!(check_v1_expressible(&ok).is_ok());
        // Allow-by-default: deny c 1:* then allow c 1:3 is not expressible.
        let bad = [all(true), rule(false, 1, None), rule(true, 1, Some(3))];
        assert!(check_v1_expressible(&bad).is_err());
    }
}
