//! Linux capabilities: the spec's five sets mapped to kernel numbers and applied to the calling
//! thread (bounding via prctl, effective/permitted/inheritable via capset, ambient via prctl).

use crate::{Error, Result};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// The kernel's number for a capability (include/uapi/linux/capability.h).
pub fn number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// Every capability the spec names.
pub const ALL: [Capability; 41] = [
    Capability::AuditControl,
    Capability::AuditRead,
    Capability::AuditWrite,
    Capability::BlockSuspend,
    Capability::Bpf,
    Capability::CheckpointRestore,
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::Kill,
    Capability::Lease,
    Capability::LinuxImmutable,
    Capability::MacAdmin,
    Capability::MacOverride,
    Capability::Mknod,
    Capability::NetAdmin,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetRaw,
    Capability::Perfmon,
    Capability::Setgid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysChroot,
    Capability::SysModule,
    Capability::SysNice,
    Capability::SysPacct,
    Capability::SysPtrace,
    Capability::SysRawio,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Syslog,
    Capability::WakeAlarm,
];

/// Docker's default capability set.
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Highest capability number the running kernel knows, asked of the kernel itself
/// (`PR_CAPBSET_READ` fails with EINVAL past the last one). Never read from
/// /proc/sys/kernel/cap_last_cap: inside a container that file can belong to the image.
pub fn last_cap() -> u32 {
    // SAFETY: prctl with integer arguments.
    let known =
        |n: u32| unsafe { libc::prctl(libc::PR_CAPBSET_READ, n as libc::c_ulong, 0, 0, 0) } >= 0;
    let mut n = 40;
    if known(n) {
        while n < 63 && known(n + 1) {
            n += 1;
        }
    } else {
        while n > 0 && !known(n) {
            n -= 1;
        }
    }
    n
}

/// A set as a 64-bit mask, leaving out capabilities the kernel does not know.
pub fn mask(set: Option<&Capabilities>, last: u32) -> u64 {
    set.map(|s| {
        s.iter()
            .map(|c| number(*c))
            .filter(|n| *n <= last)
            .fold(0u64, |m, n| m | (1u64 << n))
    })
    .unwrap_or(0)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// The five masks to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl Masks {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Masks {
        let last = last_cap();
        match c {
            None => Masks::default(),
            Some(c) => Masks {
                bounding: mask(c.bounding().as_ref(), last),
                effective: mask(c.effective().as_ref(), last),
                permitted: mask(c.permitted().as_ref(), last),
                inheritable: mask(c.inheritable().as_ref(), last),
                ambient: mask(c.ambient().as_ref(), last),
            },
        }
    }
}

/// Drop every capability not in `bounding` from the bounding set. Needs CAP_SETPCAP, so call it
/// before switching to the container user.
pub fn drop_bounding(bounding: u64) -> Result<()> {
    // Every possible number: ones the kernel does not know fail with EINVAL, which is fine.
    for n in 0..64u32 {
        if bounding & (1u64 << n) == 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(Error::sys(
                        format!("dropping capability {n} from the bounding set"),
                        e,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Set effective, permitted and inheritable sets, then raise the ambient ones.
pub fn apply(m: &Masks) -> Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: m.effective as u32,
            permitted: m.permitted as u32,
            inheritable: m.inheritable as u32,
        },
        CapData {
            effective: (m.effective >> 32) as u32,
            permitted: (m.permitted >> 32) as u32,
            inheritable: (m.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as the v3 ABI expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(Error::last_os(
            "capset (setting effective/permitted/inheritable capabilities)",
        ));
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    for n in 0..64u32 {
        if m.ambient & (1u64 << n) != 0 {
            // SAFETY: as above.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    n as libc::c_ulong,
                    0,
                    0,
                )
            };
            if r != 0 {
                return Err(Error::last_os(format!(
                    "raising ambient capability {n} (it must also be permitted and inheritable)"
                )));
            }
        }
    }
    Ok(())
}

/// Keep permitted capabilities across the setuid() that switches to the container user.
pub fn keep_caps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(Error::last_os("prctl(PR_SET_KEEPCAPS)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask_matches_docker() {
        let set: Capabilities = DOCKER_DEFAULT.iter().copied().collect();
        // CapEff of a default `docker run` container.
        assert_eq!(mask(Some(&set), 40), 0x00000000a80425fb);
    }

    #[test]
    fn last_cap_comes_from_the_kernel() {
        let file: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(last_cap(), file);
    }

    #[test]
    fn unknown_to_kernel_is_left_out() {
        let set: Capabilities = [Capability::CheckpointRestore, Capability::Chown]
            .into_iter()
            .collect();
        assert_eq!(mask(Some(&set), 39), 1);
    }
}
