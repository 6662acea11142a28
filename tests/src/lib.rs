//! Fixtures shared by Berth's end-to-end suites.
//!
//! This crate owns the test helpers every suite reuses: a busybox OCI runtime
//! bundle ([`busybox_bundle`]), an OCI image layout holding the same busybox
//! rootfs ([`oci_image_layout`]), a handle on the OCI runtime under test
//! ([`Runtime`], [`runtime_bin`]) and small host-inspection helpers (root
//! check, cgroup and mount leftovers). The suites themselves live in
//! `tests/tests/`, the benchmark in `tests/benches/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

pub mod bench;
pub mod berthd;
pub mod bigimage;
pub mod bundle;
pub mod cli;
pub mod desktop;
pub mod fakekube;
pub mod host;
pub mod image;
pub mod pyimage;
pub mod runtime;
pub mod services;
pub mod suite;
pub mod webdriver;

pub use bundle::{busybox_bundle, Bundle, SpecGuard, DEFAULT_CAPS, DEFAULT_CAP_MASK};
pub use host::{
    cgroup_leftovers, fix_hybrid_hugetlb, host_mounts_mentioning, is_root, require_root,
    sha256_file, sha256_hex, unique_id,
};
pub use image::{loaded_image_id, oci_image_layout, tar_layout, ImageLayout};
pub use runtime::{exit_code, find_in_path, runtime_bin, try_runtime_bin, Runtime};
