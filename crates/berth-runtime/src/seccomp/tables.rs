//! Syscall ABIs we compile for, and name → number resolution (from the `syscalls` crate's
//! tables, plus a few aliases where profile names differ from the table's).

use std::str::FromStr;

/// A syscall ABI a filter section can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abi {
    X86_64,
    /// i386 (also reached from x86_64 via `int 0x80`).
    X86,
    Aarch64,
    /// 32-bit ARM EABI (compat tasks on aarch64).
    Arm,
}

// AUDIT_ARCH_* (linux/audit.h): EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000).
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// x32 syscalls arrive with `arch == AUDIT_ARCH_X86_64` and this bit set in `nr`.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Base of the ARM-private syscalls (arch/arm/include/uapi/asm/unistd.h: __ARM_NR_BASE).
const ARM_NR_BASE: u32 = 0x000F_0000;

impl Abi {
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::X86 => "x86",
            Abi::Aarch64 => "aarch64",
            Abi::Arm => "arm",
        }
    }

    /// The ABI of the machine we run on, if we can compile filters for it.
    pub(crate) fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else {
            None
        }
    }

    /// The 32-bit ABI a process of this native ABI can also use.
    pub(crate) fn compat(self) -> Option<Abi> {
        match self {
            Abi::X86_64 => Some(Abi::X86),
            Abi::Aarch64 => Some(Abi::Arm),
            Abi::X86 | Abi::Arm => None,
        }
    }

    /// The syscall number of `name` for this ABI, or `None` if the table does not know it.
    pub(crate) fn resolve(self, name: &str) -> Option<u32> {
        let id = match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok().map(|s| s.id()),
            Abi::X86 => syscalls::x86::Sysno::from_str(name).ok().map(|s| s.id()),
            Abi::Aarch64 => syscalls::aarch64::Sysno::from_str(match name {
                // The generic table calls __NR3264_fstatat "fstatat"; libseccomp and
                // every profile call it "newfstatat" on 64-bit ABIs.
                "newfstatat" => "fstatat",
                n => n,
            })
            .ok()
            .map(|s| s.id()),
            Abi::Arm => match name {
                "breakpoint" => return Some(ARM_NR_BASE + 1),
                "cacheflush" => return Some(ARM_NR_BASE + 2),
                "usr26" => return Some(ARM_NR_BASE + 3),
                "usr32" => return Some(ARM_NR_BASE + 4),
                "set_tls" => return Some(ARM_NR_BASE + 5),
                "get_tls" => return Some(ARM_NR_BASE + 6),
                _ => syscalls::arm::Sysno::from_str(name).ok().map(|s| s.id()),
            },
        };
        id.and_then(|i| u32::try_from(i).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert_eq!(Abi::X86_64.resolve("getpid"), Some(39));
        assert_eq!(Abi::X86_64.resolve("clone3"), Some(435));
        assert_eq!(Abi::X86.resolve("getpid"), Some(20));
        assert_eq!(Abi::X86.resolve("socketcall"), Some(102));
        assert_eq!(Abi::Aarch64.resolve("getpid"), Some(172));
        assert_eq!(Abi::Aarch64.resolve("newfstatat"), Some(79));
        assert_eq!(Abi::Arm.resolve("set_tls"), Some(0xF0005));
        assert_eq!(Abi::Arm.resolve("getpid"), Some(20));
        assert_eq!(Abi::X86_64.resolve("no_such_syscall"), None);
        assert_eq!(Abi::Aarch64.resolve("open"), None);
    }
}
