//! berth-store owns Berth's images on disk: content-addressed blobs written through a
//! verifying ingest area, metadata in SQLite, layers unpacked safely into overlay snapshots,
//! garbage collection from roots, and image import/export (docker save/load, OCI layouts).
//! It is synchronous; async callers (the registry client, the engine) reach it through
//! `spawn_blocking`.

pub mod archive;
pub mod content;
pub mod digest;
pub mod error;
pub mod gc;
pub mod image;
pub mod meta;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
