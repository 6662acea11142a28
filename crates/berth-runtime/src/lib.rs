//! berth-runtime owns Berth's lowest layer: an OCI runtime (runtime-spec 1.2) for Linux.
//!
//! It turns a bundle (`config.json` + rootfs) into a confined process: namespaces, the root
//! filesystem and its mounts, devices, capabilities, seccomp, rlimits, hooks and cgroups
//! (v1 and v2). The library is synchronous and single-threaded by design; the `berth-runtime`
//! binary exposes it with a runc-compatible command line, and the engine drives that binary.

pub mod caps;
pub mod cgroups;
pub mod container;
pub mod error;
pub mod execstub;
pub mod hooks;
pub mod init;
pub mod ipc;
pub mod log;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;

pub use error::{Error, ErrorKind, Result};
