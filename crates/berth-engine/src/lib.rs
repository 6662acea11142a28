//! berth-engine owns the engine's services — images, containers, volumes, networks, events —
//! and wires the runtime, the store and the registry client together. berthd serves it over
//! the Docker Engine API.

pub mod build;
pub mod buildctx;
pub mod containerfs;
pub mod containers;
pub mod events;
pub mod exec;
pub mod fsops;
pub mod ids;
pub mod images;
pub mod layer;
pub mod monitor;
mod netlink;
pub mod network;
pub mod stats;
pub mod volumes;
