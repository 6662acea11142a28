//! The container root filesystem (placeholder until the module lands).
use std::os::fd::{BorrowedFd, OwnedFd};
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
pub fn open_in_root(_root: BorrowedFd, _p: &Path, _f: libc::c_int) -> crate::Result<OwnedFd> {
    Err(crate::Error::Container("stub".into()))
}
pub fn mkdir_all_in_root(_root: BorrowedFd, _p: &Path, _m: u32) -> crate::Result<OwnedFd> {
    Err(crate::Error::Container("stub".into()))
}
