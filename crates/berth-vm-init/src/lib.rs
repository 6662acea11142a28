//! The pure parts of the Berth VM's init (`/init`, PID 1 of the guest), kept apart from the
//! system calls so they can be tested on any host:
//!
//! - [`cmdline`]: the kernel command line (`berth.data=/dev/vda berth.share=home:/root`).
//! - [`mux`]: many streams over the one control channel (host and guest both run it).
//! - [`request`]: the agent's one-line requests (`PING`, `API`, `CONNECT <port>`, `UDP <port>`,
//!   `SHUTDOWN`), and the framing of a `UDP` tunnel.
//! - [`modules`]: the module load-order list the image build writes.
//! - [`disk`]: recognising an ext2/3/4 superblock on the data disk.
//! - [`http`]: recognising berthd's answer to `GET /_ping`.
//!
//! The contract with the host (crates/berth-vm) is described in docs/vm.md.

pub mod cmdline;
pub mod disk;
pub mod http;
pub mod modules;
pub mod mux;
pub mod request;

/// The name of the control channel's virtio-serial port (qemu `-device virtserialport,name=…`;
/// the guest finds it under /sys/class/virtio-ports/*/name).
pub const CONTROL_PORT_NAME: &str = "berth.control";
/// berthd's API socket inside the guest.
pub const BERTHD_SOCKET: &str = "/run/berth/berth.sock";
/// Where the data disk is mounted (berthd's data root).
pub const DATA_ROOT: &str = "/var/lib/berth";
/// berthd's exec root.
pub const EXEC_ROOT: &str = "/run/berth";
/// The daemon.json berthd reads; written with defaults on first boot.
pub const DAEMON_JSON: &str = "/var/lib/berth/daemon.json";
/// The default daemon.json written on first boot.
pub const DEFAULT_DAEMON_JSON: &str = "{\n  \"registry-mirrors\": []\n}\n";
/// The load-order list written by packaging/vm/build.sh, relative to /lib/modules/<release>.
pub const MODULE_ORDER_FILE: &str = "berth-modules.order";
