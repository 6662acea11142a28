//! The container root filesystem (placeholder until the module lands).
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
pub struct MountOptions;
pub fn parse_mount_options(_o: &[String]) -> crate::Result<MountOptions> {
    Ok(MountOptions)
}
pub fn prepare(
    _spec: &oci_spec::runtime::Spec,
    _rootfs: &Path,
    _in_userns: bool,
) -> crate::Result<()> {
    Ok(())
}
pub fn enter(_rootfs: &Path, _no_pivot: bool) -> crate::Result<()> {
    Ok(())
}
pub fn finish(_spec: &oci_spec::runtime::Spec, _n: bool, _i: bool) -> crate::Result<()> {
    Ok(())
}
pub fn open_in_root(root: BorrowedFd, p: &Path, f: libc::c_int) -> crate::Result<OwnedFd> {
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
        .unwrap_or_default();
    let how: [u64; 3] = [(f | libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0x10 | 0x02];
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how,
            24usize,
        )
    };
    if r < 0 {
        return Err(crate::Error::last_os("openat2"));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}
pub fn mkdir_all_in_root(_root: BorrowedFd, _p: &Path, _m: u32) -> crate::Result<OwnedFd> {
    Err(crate::Error::Container("stub".into()))
}
