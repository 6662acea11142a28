//! Container networking, Docker's bridge driver semantics, as a synchronous library the engine
//! calls (from `spawn_blocking`).
//!
//! What it owns:
//! - **Networks**: the default `bridge` network (bridge `berth0`, 172.17.0.0/16 unless
//!   configured) and user-defined bridge networks whose subnets come from the configured
//!   address pools. Each network is a Linux bridge holding the gateway IP.
//! - **Endpoints**: each container gets its own network namespace, bind-mounted at
//!   `<state>/netns/<container>` (the path the runtime joins), with one veth pair per network
//!   (`eth0`, `eth1`, ...), an IP from the network's IPAM, loopback up and a default route via
//!   the first network's gateway (none on `internal` networks).
//! - **DNS**: one small responder per network on the gateway IP, UDP port 53, A records only.
//!   It identifies the asking container by its source IP and answers names and aliases of
//!   containers on the networks that container shares (so containers added later resolve
//!   too). Unknown names get NXDOMAIN; nothing is ever forwarded to outside resolvers. As in
//!   Docker, the default `bridge` network has no name resolution (it answers NXDOMAIN).
//! - **Port publishing**: a userspace TCP/UDP proxy (like docker-proxy) listening on the host
//!   address (127.0.0.1 by default) and relaying to the container's IP. No iptables.
//!
//! Isolation and the network rule: every bridge gets `net.ipv4.conf.<bridge>.forwarding=0`,
//! so the kernel never routes a packet that arrives from a container — not to another network
//! (isolation between networks) and not to the host's external interfaces (no NAT, no egress).
//! Containers reach their own network (switched at layer 2), and the host's own addresses
//! (gateway DNS); the host reaches containers directly (proxy).
//!
//! `host` mode needs nothing from here (the runtime simply does not create a network
//! namespace); `none` mode is [`Networks::attach_none`]: a namespace with loopback only.
//!
//! Kernel objects are managed by running `ip` (iproute2) — in the container's namespace through
//! `nsenter --net=<path>`; the namespace itself is created in-process (unshare in a dedicated
//! thread + bind mount), like `ip netns add` does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::{
    IpAddr, Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Broad error classes, mapped once to HTTP statuses by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::Conflict(_) => ErrorKind::Conflict,
            NetworkError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            NetworkError::Unavailable(_) => ErrorKind::Unavailable,
            NetworkError::Command { .. } | NetworkError::Io { .. } | NetworkError::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> NetworkError {
    let context = context.into();
    move |source| NetworkError::Io { context, source }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// An IPv4 subnet such as `10.89.0.0/24` (host bits are cleared on parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if prefix > 30 {
            return Err(NetworkError::InvalidArgument(format!(
                "subnet {addr}/{prefix} is too small: use a prefix of /30 or shorter"
            )));
        }
        let mask = Self::mask_of(prefix);
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    fn mask(&self) -> u32 {
        Self::mask_of(self.prefix)
    }

    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        let m = Self::mask_of(p);
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The n-th address of the subnet (0 is the network address).
    fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        if n >= self.size() {
            return None;
        }
        let v = u64::from(u32::from(self.addr)) + n;
        u32::try_from(v).ok().map(Ipv4Addr::from)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || {
            NetworkError::InvalidArgument(format!(
                "invalid subnet {s:?}: expected IPv4 CIDR like 10.89.0.0/24"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A network as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// 64 hex characters, like Docker's network IDs.
    pub id: String,
    pub name: String,
    /// Linux bridge device name.
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// No default route for containers (Docker's `--internal`).
    pub internal: bool,
    /// Docker's `--attachable` (recorded; every Berth network accepts containers).
    #[serde(default)]
    pub attachable: bool,
    /// Addresses handed to containers come from this range (`--ip-range`), else the subnet.
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as given (`-o`); `com.docker.network.bridge.name` names the bridge.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Creation time, nanoseconds since the epoch (0 when unknown).
    #[serde(default)]
    pub created: i64,
}

/// What `docker network create` can ask for beyond the name.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--subnet`, IPv4 CIDR; allocated from the address pools when `None`.
    pub subnet: Option<String>,
    /// `--gateway`: an address inside the subnet (default: its first host address).
    pub gateway: Option<String>,
    /// `--ip-range`: a CIDR inside the subnet that container addresses come from.
    pub ip_range: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// Docker's option naming the bridge device of a network.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// Networks Docker always lists besides `bridge`: `host` (driver `host`) and `none` (driver
/// `null`). They have no kernel objects here; only their IDs are kept.
pub const PREDEFINED: &[(&str, &str)] = &[("host", "host"), ("none", "null")];

/// A predefined network without a bridge (`host`, `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predefined {
    pub name: String,
    pub id: String,
    /// `host` or `null`.
    pub driver: String,
    pub created: i64,
}

/// A container's interface on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub container: String,
    /// Network namespace to pass to the runtime: `{"type":"network","path":...}`.
    pub netns_path: PathBuf,
    /// Interface name inside the container (`eth0`, ...).
    pub ifname: String,
    /// Host side of the veth pair (a port of the bridge).
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: String,
    pub gateway: Ipv4Addr,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Protocol,
}

/// Parse Docker's `-p [ip:]host:container[/tcp|/udp]` (host may be empty or 0: any free port).
pub fn parse_publish(spec: &str) -> Result<PortMapping> {
    let bad = |why: &str| {
        NetworkError::InvalidArgument(format!(
            "invalid port publication {spec:?}: {why} (expected [ip:]hostPort:containerPort[/tcp|/udp])"
        ))
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Protocol::Tcp),
        Some((r, "udp")) => (r, Protocol::Udp),
        Some(_) => return Err(bad("protocol must be tcp or udp")),
        None => (spec, Protocol::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, cont) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => return Err(bad("too many ':'")),
    };
    let host_ip = if ip.is_empty() {
        Ipv4Addr::LOCALHOST
    } else {
        ip.parse()
            .map_err(|_| bad("host IP is not an IPv4 address"))?
    };
    let host_port = if host.is_empty() {
        0
    } else {
        host.parse().map_err(|_| bad("host port is not a number"))?
    };
    let container_port: u16 = cont
        .parse()
        .map_err(|_| bad("container port is not a number"))?;
    if container_port == 0 {
        return Err(bad("container port must not be 0"));
    }
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port,
        proto,
    })
}

/// How [`Networks::open`] sets up the default network and allocates subnets.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Bridge of the default network (`berth0`).
    pub default_bridge: String,
    /// Subnet of the default network (`172.17.0.0/16`).
    pub default_subnet: Subnet,
    /// `default-address-pools`: (base, size) — networks get `/size` subnets carved from `base`.
    pub pools: Vec<(Subnet, u8)>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            default_bridge: "berth0".into(),
            default_subnet: Subnet {
                addr: Ipv4Addr::new(172, 17, 0, 0),
                prefix: 16,
            },
            pools: vec![
                (
                    Subnet {
                        addr: Ipv4Addr::new(172, 18, 0, 0),
                        prefix: 15,
                    },
                    16,
                ),
                (
                    Subnet {
                        addr: Ipv4Addr::new(10, 89, 0, 0),
                        prefix: 16,
                    },
                    24,
                ),
            ],
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    networks: BTreeMap<String, NetworkRecord>,
    /// Containers with a namespace of ours (including `none` mode).
    containers: BTreeSet<String>,
    ports: BTreeMap<String, Vec<PortMapping>>,
    /// IDs of the predefined `host` and `none` networks (name → (id, created)), stable
    /// across restarts.
    #[serde(default)]
    predefined: BTreeMap<String, (String, i64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NetworkRecord {
    config: NetworkConfig,
    endpoints: BTreeMap<String, Endpoint>,
}

/// Name → IP table the DNS responders read.
#[derive(Debug, Default)]
struct DnsTable {
    /// (network, container, names, ip)
    entries: Vec<(String, String, Vec<String>, Ipv4Addr)>,
}

impl DnsTable {
    fn lookup(&self, source: Ipv4Addr, name: &str) -> Option<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let asker = self
            .entries
            .iter()
            .find(|(_, _, _, ip)| *ip == source)
            .map(|(_, c, _, _)| c.clone())?;
        let nets: BTreeSet<&str> = self
            .entries
            .iter()
            .filter(|(_, c, _, _)| *c == asker)
            .map(|(n, _, _, _)| n.as_str())
            .collect();
        self.entries
            .iter()
            .filter(|(n, _, _, _)| n != DEFAULT_NETWORK && nets.contains(n.as_str()))
            .find(|(_, _, names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(&name)))
            .map(|(_, _, _, ip)| *ip)
    }
}

/// The network service. Dropping it stops DNS responders and proxies but leaves bridges,
/// veths and namespaces in place (containers keep running across a daemon restart);
/// [`Networks::teardown`] removes everything.
pub struct Networks {
    state_dir: PathBuf,
    db: rusqlite::Connection,
    opts: NetworkOptions,
    state: State,
    dns: Arc<RwLock<DnsTable>>,
    dns_servers: HashMap<String, Worker>,
    proxies: HashMap<String, Vec<Worker>>,
}

/// A background thread with a stop flag.
struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Connections to shut down when stopping (TCP proxies).
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
}

impl Worker {
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(conns) = self.conns.lock() {
            for c in conns.values() {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

const POLL: Duration = Duration::from_millis(100);

fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidArgument(format!(
            "invalid {kind} name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters"
        )))
    }
}

/// FNV-1a, for stable short device names.
fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Docker's `EndpointID` for a container on a network: 64 hex characters, stable for the pair.
pub fn endpoint_id(network_id: &str, container: &str) -> String {
    (0..4u8)
        .map(|i| {
            let mut data = format!("{network_id}/{container}").into_bytes();
            data.push(i);
            format!("{:016x}", fnv(&data))
        })
        .collect()
}

fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// Run `f` on a thread that has joined the network namespace at `path` (netlink sockets it
/// opens belong to that namespace).
fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let ns = fs::File::open(path)?;
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
        f()
    })
    .join()
    .map_err(|_| std::io::Error::other("network namespace worker panicked"))?
}

/// Run `ip` (optionally inside a namespace) with a batch of commands.
fn ip_batch(netns: Option<&Path>, commands: &[String]) -> Result<()> {
    match netns {
        // Inside a namespace: a thread joins it and runs `ip` from there (the child inherits
        // the thread's namespace) — one exec instead of nsenter's two.
        Some(p) => {
            let p = p.to_path_buf();
            let commands = commands.to_vec();
            std::thread::spawn(move || -> Result<()> {
                let f = fs::File::open(&p)
                    .map_err(io_err(format!("opening network namespace {}", p.display())))?;
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetworkError::Internal(format!(
                        "joining network namespace {}: {e}",
                        p.display()
                    ))
                })?;
                ip_batch_here(Some(&p), &commands)
            })
            .join()
            .map_err(|_| NetworkError::Internal("network namespace worker panicked".into()))?
        }
        None => ip_batch_here(None, commands),
    }
}

/// Run `ip -batch` in the calling thread's network namespace (`netns` only names it).
fn ip_batch_here(netns: Option<&Path>, commands: &[String]) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let shown = || {
        let ns = netns
            .map(|p| format!("nsenter --net={} ", p.display()))
            .unwrap_or_default();
        format!("{ns}ip -batch: {}", commands.join("; "))
    };
    let mut child = cmd.spawn().map_err(io_err(format!(
        "cannot run `{}` (is iproute2 installed?)",
        shown()
    )))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(commands.join("\n").as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .map_err(io_err(format!("writing to `{}`", shown())))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io_err(format!("waiting for `{}`", shown())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Command {
            command: shown(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn ip(args: &[&str]) -> Result<()> {
    ip_batch(None, &[args.join(" ")])
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    fs::write(path, value).map_err(io_err(format!("writing {value} to {path}")))
}

fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == p))
}

/// Create a network namespace and bind-mount it at `path` (like `ip netns add`).
fn create_netns(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(format!(
            "creating network namespace file {}",
            path.display()
        )))?;
    let target = path.to_path_buf();
    let joined = std::thread::spawn(move || -> std::result::Result<(), String> {
        use nix::mount::{mount, MsFlags};
        use nix::sched::{unshare, CloneFlags};
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting the namespace at {}: {e}", target.display()))
    })
    .join();
    let res = match joined {
        Ok(r) => r,
        Err(_) => Err("namespace thread panicked".to_string()),
    };
    res.map_err(|e| {
        let _ = fs::remove_file(path);
        NetworkError::Internal(format!(
            "cannot create network namespace {}: {e} (berth needs root / CAP_SYS_ADMIN)",
            path.display()
        ))
    })
}

fn remove_netns(path: &Path) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    if is_mountpoint(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| {
            NetworkError::Internal(format!(
                "cannot unmount network namespace {}: {e}",
                path.display()
            ))
        })?;
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
    }
}

impl Networks {
    /// Open (or create) the network state in `state_dir`, recreate missing bridges, start DNS
    /// responders and saved port proxies, and ensure the default `bridge` network.
    pub fn open(state_dir: &Path, opts: NetworkOptions) -> Result<Networks> {
        let netns_dir = state_dir.join("netns");
        fs::create_dir_all(&netns_dir).map_err(io_err(format!(
            "creating network state directory {}",
            netns_dir.display()
        )))?;
        Self::make_shared_mount(&netns_dir)?;
        // All engine state is in SQLite: one row holding the network state document.
        let db_path = state_dir.join("network.db");
        let db = rusqlite::Connection::open(&db_path)
            .map_err(|e| NetworkError::Internal(format!("opening {}: {e}", db_path.display())))?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);",
        )
        .map_err(|e| NetworkError::Internal(format!("setting up {}: {e}", db_path.display())))?;
        let stored: Option<String> = db
            .query_row("SELECT doc FROM state WHERE id = 1", [], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| NetworkError::Internal(format!("reading {}: {e}", db_path.display())))?;
        // An older engine kept the document in networks.json: take it over once.
        let legacy = state_dir.join("networks.json");
        let text = match stored {
            Some(t) => Some(t),
            None => match fs::read_to_string(&legacy) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err(format!("reading {}", legacy.display()))(e)),
            },
        };
        let state: State = match text {
            Some(t) => serde_json::from_str(&t).map_err(|e| {
                NetworkError::Internal(format!(
                    "network state in {} is corrupt: {e}; move it away to start fresh",
                    db_path.display()
                ))
            })?,
            None => State::default(),
        };
        let mut nets = Networks {
            state_dir: state_dir.to_path_buf(),
            db,
            opts,
            state,
            dns: Arc::new(RwLock::new(DnsTable::default())),
            dns_servers: HashMap::new(),
            proxies: HashMap::new(),
        };
        if !nets.state.networks.contains_key(DEFAULT_NETWORK) {
            let subnet = nets.opts.default_subnet;
            let bridge = nets.opts.default_bridge.clone();
            let gateway = subnet.nth(1).ok_or_else(|| {
                NetworkError::InvalidArgument(format!(
                    "default network subnet {subnet} has no room for a gateway"
                ))
            })?;
            nets.add_network(NetworkConfig {
                id: crate::ids::new_id(),
                name: DEFAULT_NETWORK.to_string(),
                bridge,
                subnet,
                gateway,
                internal: false,
                attachable: false,
                ip_range: None,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                created: now_nanos(),
            })?;
        }
        let mut changed = false;
        for (name, _) in PREDEFINED {
            if !nets.state.predefined.contains_key(*name) {
                nets.state
                    .predefined
                    .insert(name.to_string(), (crate::ids::new_id(), now_nanos()));
                changed = true;
            }
        }
        for rec in nets.state.networks.values_mut() {
            if rec.config.created == 0 {
                // Saved before creation times were kept.
                rec.config.created = now_nanos();
                changed = true;
            }
        }
        if changed {
            nets.save()?;
        }
        let configs: Vec<NetworkConfig> = nets.list();
        for cfg in configs {
            Self::ensure_bridge(&cfg)?;
            nets.start_dns(&cfg)?;
        }
        nets.rebuild_dns();
        let ports: Vec<(String, PortMapping)> = nets
            .state
            .ports
            .iter()
            .flat_map(|(c, ps)| ps.iter().map(move |p| (c.clone(), p.clone())))
            .collect();
        for (c, p) in ports {
            if let Err(e) = nets.start_proxy(&c, &p) {
                tracing::warn!(container = %c, error = %e, "cannot restore published port");
            }
        }
        Ok(nets)
    }

    /// Like `ip netns`: make the namespace directory a shared mount so unmounts propagate to
    /// mount namespaces created later (containers), which would otherwise pin the namespaces.
    fn make_shared_mount(dir: &Path) -> Result<()> {
        use nix::mount::{mount, MsFlags};
        if !is_mountpoint(dir) {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| {
                NetworkError::Internal(format!(
                    "cannot bind-mount {} onto itself: {e} (needs root)",
                    dir.display()
                ))
            })?;
        }
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            NetworkError::Internal(format!("cannot make {} a shared mount: {e}", dir.display()))
        })
    }

    /// Store the state document (one SQLite transaction; WAL with synchronous=NORMAL, so a
    /// start or stop does not wait for an fsync).
    fn save(&self) -> Result<()> {
        let data = serde_json::to_string(&self.state)
            .map_err(|e| NetworkError::Internal(format!("serialising network state: {e}")))?;
        self.db
            .execute(
                "INSERT INTO state (id, doc) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                [data],
            )
            .map_err(|e| {
                NetworkError::Internal(format!(
                    "saving network state in {}: {e}",
                    self.state_dir.join("network.db").display()
                ))
            })?;
        Ok(())
    }

    fn netns_path(&self, container: &str) -> PathBuf {
        self.state_dir.join("netns").join(container)
    }

    fn ensure_bridge(cfg: &NetworkConfig) -> Result<()> {
        if !link_exists(&cfg.bridge) {
            ip(&["link", "add", &cfg.bridge, "type", "bridge"]).map_err(|e| {
                NetworkError::Internal(format!(
                    "cannot create bridge {} for network {}: {e}",
                    cfg.bridge, cfg.name
                ))
            })?;
        }
        // No routing of container traffic by the host: isolation between networks, and
        // nothing leaves towards external interfaces.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/forwarding", cfg.bridge),
            "0",
        )?;
        let v6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", cfg.bridge);
        if Path::new(&v6).exists() {
            write_sysctl(&v6, "1")?;
        }
        ip_batch(
            None,
            &[
                format!(
                    "addr replace {}/{} dev {}",
                    cfg.gateway, cfg.subnet.prefix, cfg.bridge
                ),
                // A fixed address (02:42:<gateway ip>, as containers get 02:42:<their ip>):
                // a bridge left to choose takes its lowest port's MAC and changes it when a
                // container with a lower one joins, and packets other containers still send
                // to the old gateway MAC are then dropped until their ARP entry expires.
                format!("link set {} address {}", cfg.bridge, mac_for(cfg.gateway)),
                format!("link set {} up", cfg.bridge),
            ],
        )
        .map_err(|e| {
            NetworkError::Internal(format!(
                "cannot configure bridge {} of network {}: {e}",
                cfg.bridge, cfg.name
            ))
        })
    }

    fn add_network(&mut self, cfg: NetworkConfig) -> Result<NetworkConfig> {
        let name = cfg.name.clone();
        Self::ensure_bridge(&cfg).inspect_err(|_| {
            let _ = ip(&["link", "del", &cfg.bridge]);
        })?;
        if let Err(e) = self.start_dns(&cfg) {
            let _ = ip(&["link", "del", &cfg.bridge]);
            return Err(e);
        }
        self.state.networks.insert(
            name.to_string(),
            NetworkRecord {
                config: cfg.clone(),
                endpoints: BTreeMap::new(),
            },
        );
        self.save()?;
        Ok(cfg)
    }

    fn host_routes_overlap(subnet: &Subnet) -> Option<String> {
        // A subnet already routed on the host (e.g. the uplink) must not be taken.
        let routes = fs::read_to_string("/proc/net/route").ok()?;
        for line in routes.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let (Ok(dst), Ok(mask)) =
                (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
            else {
                continue;
            };
            if mask == 0 {
                continue; // default route
            }
            let dst = Ipv4Addr::from(u32::from_be(dst));
            let prefix = u32::from_be(mask).count_ones() as u8;
            if let Ok(r) = Subnet::new(dst, prefix.min(30)) {
                let r = Subnet { prefix, ..r };
                if r.overlaps(subnet) {
                    return Some(format!("{r} on {}", f[0]));
                }
            }
        }
        None
    }

    fn check_subnet_free(&self, subnet: &Subnet) -> Result<()> {
        for rec in self.state.networks.values() {
            if rec.config.subnet.overlaps(subnet) {
                return Err(NetworkError::Conflict(format!(
                    "subnet {subnet} overlaps network {} ({}); pick another subnet",
                    rec.config.name, rec.config.subnet
                )));
            }
        }
        if let Some(r) = Self::host_routes_overlap(subnet) {
            return Err(NetworkError::Conflict(format!(
                "subnet {subnet} overlaps the host route {r}; pick another subnet"
            )));
        }
        Ok(())
    }

    fn allocate_subnet(&self, name: &str) -> Result<Subnet> {
        for (base, size) in &self.opts.pools {
            if *size < base.prefix || *size > 30 {
                continue;
            }
            let count = 1u64 << (u32::from(*size) - u32::from(base.prefix));
            let step = 1u64 << (32 - u32::from(*size));
            for i in 0..count {
                let Some(addr) = base.nth(i * step) else {
                    break;
                };
                let Ok(candidate) = Subnet::new(addr, *size) else {
                    continue;
                };
                if self.check_subnet_free(&candidate).is_ok() {
                    return Ok(candidate);
                }
            }
        }
        Err(NetworkError::Unavailable(format!(
            "cannot create network {name}: all address pools are exhausted; remove unused \
             networks or add default-address-pools"
        )))
    }

    /// Create a user-defined bridge network. Conflict if the name exists or the subnet overlaps.
    #[tracing::instrument(skip(self))]
    pub fn create(
        &mut self,
        name: &str,
        subnet: Option<&str>,
        internal: bool,
    ) -> Result<NetworkConfig> {
        self.create_with(
            name,
            &CreateOptions {
                subnet: subnet.map(str::to_string),
                internal,
                ..CreateOptions::default()
            },
        )
    }

    /// Whether `name` is taken by a network (the predefined `host` and `none` included).
    pub fn name_in_use(&self, name: &str) -> bool {
        self.state.networks.contains_key(name) || PREDEFINED.iter().any(|(n, _)| *n == name)
    }

    /// Create a user-defined bridge network with Docker's create options. Conflict if the
    /// name exists or the subnet overlaps another network or a host route.
    #[tracing::instrument(skip(self))]
    pub fn create_with(&mut self, name: &str, o: &CreateOptions) -> Result<NetworkConfig> {
        validate_name("network", name)?;
        if self.name_in_use(name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let subnet = match &o.subnet {
            Some(s) => {
                let s: Subnet = s.parse()?;
                self.check_subnet_free(&s)?;
                s
            }
            None => {
                if o.gateway.is_some() || o.ip_range.is_some() {
                    return Err(NetworkError::InvalidArgument(format!(
                        "network {name}: --gateway and --ip-range need --subnet"
                    )));
                }
                self.allocate_subnet(name)?
            }
        };
        let gateway = match &o.gateway {
            Some(g) => {
                let g: Ipv4Addr = g.parse().map_err(|_| {
                    NetworkError::InvalidArgument(format!(
                        "invalid gateway {g:?}: expected an IPv4 address inside {subnet}"
                    ))
                })?;
                let broadcast = subnet.nth(subnet.size() - 1);
                if !subnet.contains(g) || g == subnet.addr || Some(g) == broadcast {
                    return Err(NetworkError::InvalidArgument(format!(
                        "gateway {g} is not a host address of subnet {subnet}; pick one inside it"
                    )));
                }
                g
            }
            None => subnet.nth(1).ok_or_else(|| {
                NetworkError::InvalidArgument(format!("subnet {subnet} has no room for a gateway"))
            })?,
        };
        let ip_range = match &o.ip_range {
            Some(r) => {
                let r: Subnet = r.parse()?;
                if r.prefix < subnet.prefix || !subnet.contains(r.addr) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "ip-range {r} is not inside subnet {subnet}; pick a range within it"
                    )));
                }
                Some(r)
            }
            None => None,
        };
        let bridge = match o.options.get(BRIDGE_NAME_OPTION) {
            Some(b) => {
                let valid = !b.is_empty()
                    && b.len() <= 15
                    && b.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if !valid {
                    return Err(NetworkError::InvalidArgument(format!(
                        "invalid {BRIDGE_NAME_OPTION} {b:?}: use at most 15 characters of \
                         [a-zA-Z0-9_.-]"
                    )));
                }
                if link_exists(b) {
                    return Err(NetworkError::Conflict(format!(
                        "bridge {b} already exists on the host; choose another \
                         {BRIDGE_NAME_OPTION}"
                    )));
                }
                Some(b.clone())
            }
            None => None,
        };
        let mut id = crate::ids::new_id();
        let bridge = match bridge {
            Some(b) => b,
            None => {
                let mut b = format!("br-{}", &id[..12]);
                while link_exists(&b) {
                    id = crate::ids::new_id();
                    b = format!("br-{}", &id[..12]);
                }
                b
            }
        };
        self.add_network(NetworkConfig {
            id,
            name: name.to_string(),
            bridge,
            subnet,
            gateway,
            internal: o.internal,
            attachable: o.attachable,
            ip_range,
            labels: o.labels.clone(),
            options: o.options.clone(),
            created: now_nanos(),
        })
    }

    /// The predefined networks without a bridge (`host`, `none`), with their stable IDs.
    pub fn predefined(&self) -> Vec<Predefined> {
        PREDEFINED
            .iter()
            .filter_map(|(name, driver)| {
                self.state
                    .predefined
                    .get(*name)
                    .map(|(id, created)| Predefined {
                        name: name.to_string(),
                        id: id.clone(),
                        driver: driver.to_string(),
                        created: *created,
                    })
            })
            .collect()
    }

    /// The endpoints on a network (by name, ID or unique ID prefix), in container order.
    pub fn users(&self, name_or_id: &str) -> Result<Vec<Endpoint>> {
        Ok(self
            .network(name_or_id)?
            .endpoints
            .values()
            .cloned()
            .collect())
    }

    /// Remove a network. Refused while containers are attached and for the default network.
    #[tracing::instrument(skip(self))]
    pub fn remove(&mut self, name_or_id: &str) -> Result<()> {
        let predefined = self
            .predefined()
            .into_iter()
            .find(|p| p.name == name_or_id || p.id == name_or_id)
            .map(|p| p.name);
        let name = match predefined {
            Some(n) => n,
            None => self.network(name_or_id)?.config.name.clone(),
        };
        if name == DEFAULT_NETWORK || PREDEFINED.iter().any(|(n, _)| *n == name) {
            return Err(NetworkError::Conflict(format!(
                "{name} is a pre-defined network and cannot be removed"
            )));
        }
        self.remove_network(&name)
    }

    fn remove_network(&mut self, name_or_id: &str) -> Result<()> {
        let rec = self.network(name_or_id)?;
        let name = rec.config.name.clone();
        let name = name.as_str();
        if !rec.endpoints.is_empty() {
            // Docker's words, which scripts match on.
            return Err(NetworkError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.config.name, rec.config.id
            )));
        }
        let bridge = rec.config.bridge.clone();
        if let Some(mut w) = self.dns_servers.remove(name) {
            w.stop();
        }
        if link_exists(&bridge) {
            ip(&["link", "del", &bridge]).map_err(|e| {
                NetworkError::Internal(format!(
                    "cannot delete bridge {bridge} of network {name}: {e}"
                ))
            })?;
        }
        self.state.networks.remove(name);
        self.save()
    }

    pub fn list(&self) -> Vec<NetworkConfig> {
        self.state
            .networks
            .values()
            .map(|r| r.config.clone())
            .collect()
    }

    /// Find a network by name, full ID or unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<NetworkConfig> {
        self.network(name_or_id).map(|r| r.config.clone())
    }

    fn network(&self, name_or_id: &str) -> Result<&NetworkRecord> {
        if let Some(r) = self.state.networks.get(name_or_id) {
            return Ok(r);
        }
        let matches: Vec<&NetworkRecord> = self
            .state
            .networks
            .values()
            .filter(|r| !name_or_id.is_empty() && r.config.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(NetworkError::NotFound(format!(
                "network {name_or_id} not found"
            ))),
            _ => Err(NetworkError::InvalidArgument(format!(
                "network ID prefix {name_or_id} is ambiguous; give more characters"
            ))),
        }
    }

    /// Endpoints of a container, in attach order (eth0 first).
    pub fn endpoints(&self, container: &str) -> Vec<Endpoint> {
        let mut eps: Vec<Endpoint> = self
            .state
            .networks
            .values()
            .filter_map(|r| r.endpoints.get(container).cloned())
            .collect();
        eps.sort_by_key(|e| {
            e.ifname
                .strip_prefix("eth")
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        });
        eps
    }

    /// Create the container's network namespace and its first interface on `network`.
    #[tracing::instrument(skip(self))]
    pub fn attach(
        &mut self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<Endpoint> {
        validate_name("container", container)?;
        self.network(network)?;
        if self.state.containers.contains(container) {
            return Err(NetworkError::Conflict(format!(
                "container {container} already has a network namespace; use connect to add \
                 networks, or detach it first"
            )));
        }
        let path = self.netns_path(container);
        create_netns(&path)?;
        self.state.containers.insert(container.to_string());
        match self.add_endpoint(network, container, aliases, ip) {
            Ok(ep) => Ok(ep),
            Err(e) => {
                let _ = remove_netns(&path);
                self.state.containers.remove(container);
                let _ = self.save();
                Err(e)
            }
        }
    }

    /// `--network none`: a namespace with loopback only. Returns its path.
    pub fn attach_none(&mut self, container: &str) -> Result<PathBuf> {
        validate_name("container", container)?;
        if self.state.containers.contains(container) {
            return Err(NetworkError::Conflict(format!(
                "container {container} already has a network namespace"
            )));
        }
        let path = self.netns_path(container);
        create_netns(&path)?;
        let lo = in_netns(&path, || crate::netlink::Netlink::open()?.link_up("lo"));
        if let Err(e) = lo {
            let _ = remove_netns(&path);
            return Err(NetworkError::Internal(format!(
                "cannot bring up loopback in network namespace {}: {e}",
                path.display()
            )));
        }
        self.state.containers.insert(container.to_string());
        self.save()?;
        Ok(path)
    }

    /// Add an interface on `network` to a container that already has a namespace.
    #[tracing::instrument(skip(self))]
    pub fn connect(
        &mut self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<Endpoint> {
        if !self.state.containers.contains(container) {
            return Err(NetworkError::NotFound(format!(
                "container {container} has no network namespace; attach it first"
            )));
        }
        self.add_endpoint(network, container, aliases, ip)
    }

    /// `ip`: the address asked for (`--ip`), else the first free one of the range.
    fn add_endpoint(
        &mut self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<Endpoint> {
        for a in aliases {
            validate_name("alias", a)?;
        }
        let existing = self.endpoints(container);
        let rec = self.network(network)?;
        let cfg = rec.config.clone();
        if rec.endpoints.contains_key(container) {
            return Err(NetworkError::Conflict(format!(
                "container {container} is already connected to network {}",
                cfg.name
            )));
        }
        let used: BTreeSet<Ipv4Addr> = rec.endpoints.values().map(|e| e.ip).collect();
        let range = cfg.ip_range.unwrap_or(cfg.subnet);
        let ip_addr = match ip {
            Some(want) => {
                if cfg.name == DEFAULT_NETWORK {
                    return Err(NetworkError::InvalidArgument(
                        "user specified IP address is supported on user defined networks only"
                            .into(),
                    ));
                }
                if !cfg.subnet.contains(want)
                    || want == cfg.gateway
                    || Some(want) == cfg.subnet.nth(0)
                    || Some(want) == cfg.subnet.nth(cfg.subnet.size().saturating_sub(1))
                {
                    return Err(NetworkError::InvalidArgument(format!(
                        "invalid address {want}: it must be a host address of {}'s subnet {} \
                         other than its gateway {}",
                        cfg.name, cfg.subnet, cfg.gateway
                    )));
                }
                if used.contains(&want) {
                    return Err(NetworkError::Conflict(format!(
                        "Address already in use: {want} is taken on network {}",
                        cfg.name
                    )));
                }
                want
            }
            None => (1..cfg.subnet.size().saturating_sub(1))
                .filter_map(|n| cfg.subnet.nth(n))
                .filter(|a| range.contains(*a))
                .find(|a| !used.contains(a) && *a != cfg.gateway)
                .ok_or_else(|| {
                    NetworkError::Unavailable(format!(
                        "network {} ({}) has no free addresses left",
                        cfg.name, cfg.subnet
                    ))
                })?,
        };
        let idx = (0..)
            .find(|i| !existing.iter().any(|e| e.ifname == format!("eth{i}")))
            .unwrap_or(0);
        let ifname = format!("eth{idx}");
        let host_veth = format!(
            "vb{:08x}",
            fnv(format!("{}/{container}", cfg.id).as_bytes()) as u32
        );
        let mac = mac_for(ip_addr);
        let netns = self.netns_path(container);
        if link_exists(&host_veth) {
            // Left over from a crash: the name is ours.
            let _ = crate::netlink::Netlink::open().and_then(|mut nl| nl.link_del(&host_veth));
        }
        let del_host_end = || {
            let _ = crate::netlink::Netlink::open().and_then(|mut nl| nl.link_del(&host_veth));
        };
        fs::File::open(&netns)
            .and_then(|ns| {
                crate::netlink::Netlink::open()?.add_veth(
                    &host_veth,
                    &ifname,
                    &ns,
                    &mac,
                    &cfg.bridge,
                )
            })
            .map_err(|e| {
                del_host_end();
                NetworkError::Internal(format!(
                    "cannot connect container {container} to network {} (veth {host_veth} on \
                     bridge {}): {e}",
                    cfg.name, cfg.bridge
                ))
            })?;
        let has_default = existing.iter().any(|e| {
            self.state
                .networks
                .get(&e.network)
                .is_some_and(|r| !r.config.internal)
        });
        let gateway = (!cfg.internal && !has_default).then_some(cfg.gateway);
        let prefix = cfg.subnet.prefix;
        let inside_if = ifname.clone();
        let inside = in_netns(&netns, move || {
            let mut nl = crate::netlink::Netlink::open()?;
            nl.link_up("lo")?;
            nl.addr_add(&inside_if, ip_addr, prefix)?;
            nl.link_up(&inside_if)?;
            if let Some(gw) = gateway {
                nl.default_route(gw, &inside_if)?;
            }
            Ok(())
        });
        if let Err(e) = inside {
            del_host_end();
            return Err(NetworkError::Internal(format!(
                "cannot configure {ifname} ({ip_addr}/{prefix}) of container {container} on \
                 network {}: {e}",
                cfg.name
            )));
        }
        let ep = Endpoint {
            network: cfg.name.clone(),
            container: container.to_string(),
            netns_path: netns,
            ifname,
            host_veth,
            ip: ip_addr,
            prefix: cfg.subnet.prefix,
            mac,
            gateway: cfg.gateway,
            aliases: aliases.to_vec(),
        };
        if let Some(r) = self.state.networks.get_mut(&cfg.name) {
            r.endpoints.insert(container.to_string(), ep.clone());
        }
        self.rebuild_dns();
        self.save()?;
        Ok(ep)
    }

    /// Remove a container's interface on `network`.
    #[tracing::instrument(skip(self))]
    pub fn disconnect(&mut self, network: &str, container: &str) -> Result<()> {
        let name = self.network(network)?.config.name.clone();
        let ep = self
            .state
            .networks
            .get(&name)
            .and_then(|r| r.endpoints.get(container))
            .cloned()
            .ok_or_else(|| {
                NetworkError::NotFound(format!(
                    "container {container} is not connected to network {name}"
                ))
            })?;
        if link_exists(&ep.host_veth) {
            ip(&["link", "del", &ep.host_veth]).map_err(|e| {
                NetworkError::Internal(format!(
                    "cannot remove veth {} of container {container} on network {name}: {e}",
                    ep.host_veth
                ))
            })?;
        }
        if let Some(r) = self.state.networks.get_mut(&name) {
            r.endpoints.remove(container);
        }
        self.rebuild_dns();
        self.save()
    }

    /// On container removal: stop its proxies, remove its veths, release its IPs and unmount
    /// its namespace. Idempotent.
    #[tracing::instrument(skip(self))]
    pub fn detach_all(&mut self, container: &str) -> Result<()> {
        if let Some(ws) = self.proxies.remove(container) {
            drop(ws);
        }
        self.state.ports.remove(container);
        // No synchronous `ip link del` per veth (each waits for an RCU grace period, ~13 ms):
        // the container's processes are gone, so dropping the namespace's last reference
        // destroys it and the kernel deletes each veth pair with it. Should something still
        // pin the namespace, a background sweep deletes the host ends a moment later (only
        // the same interfaces, by ifindex, never a new container's namesake).
        let mut host_ends = Vec::new();
        for rec in self.state.networks.values_mut() {
            if let Some(ep) = rec.endpoints.remove(container) {
                if let Ok(ix) =
                    fs::read_to_string(format!("/sys/class/net/{}/ifindex", ep.host_veth))
                {
                    host_ends.push((ep.host_veth.clone(), ix.trim().to_string()));
                }
            }
        }
        self.rebuild_dns();
        remove_netns(&self.netns_path(container))?;
        self.state.containers.remove(container);
        if !host_ends.is_empty() {
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(500));
                for (name, ix) in host_ends {
                    let now = fs::read_to_string(format!("/sys/class/net/{name}/ifindex"));
                    if now.is_ok_and(|n| n.trim() == ix) {
                        let _ = ip(&["link", "del", &name]);
                    }
                }
            });
        }
        self.save()
    }

    /// Content for the container's /etc/resolv.conf: the DNS responder on its first network's
    /// gateway. Empty for containers without networks (`none`); `host` mode copies the host's.
    pub fn resolv_conf(&self, container: &str) -> String {
        match self.endpoints(container).first() {
            Some(ep) => format!("nameserver {}\noptions ndots:0\n", ep.gateway),
            None => String::new(),
        }
    }

    /// Content for the container's /etc/hosts.
    pub fn hosts(&self, container: &str) -> String {
        let mut s = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n",
        );
        for ep in self.endpoints(container) {
            s.push_str(&format!("{}\t{container}\n", ep.ip));
        }
        s
    }

    /// A container was renamed: its endpoints answer to `new` instead of `old` from now on.
    pub fn rename_alias(&mut self, container: &str, old: &str, new: &str) -> Result<()> {
        let mut changed = false;
        for rec in self.state.networks.values_mut() {
            if let Some(ep) = rec.endpoints.get_mut(container) {
                for a in ep.aliases.iter_mut() {
                    if a == old {
                        *a = new.to_string();
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.rebuild_dns();
            self.save()?;
        }
        Ok(())
    }

    /// Names the DNS responders answer are container names and aliases.
    fn rebuild_dns(&self) {
        let mut t = DnsTable::default();
        for rec in self.state.networks.values() {
            for ep in rec.endpoints.values() {
                let mut names = vec![ep.container.clone()];
                names.extend(ep.aliases.iter().cloned());
                t.entries
                    .push((rec.config.name.clone(), ep.container.clone(), names, ep.ip));
            }
        }
        if let Ok(mut g) = self.dns.write() {
            *g = t;
        }
    }

    fn start_dns(&mut self, cfg: &NetworkConfig) -> Result<()> {
        if self.dns_servers.contains_key(&cfg.name) {
            return Ok(());
        }
        let addr = SocketAddrV4::new(cfg.gateway, 53);
        let sock = UdpSocket::bind(addr).map_err(io_err(format!(
            "cannot start the DNS responder of network {} on {addr} (is port 53 on that \
             address taken?)",
            cfg.name
        )))?;
        sock.set_read_timeout(Some(POLL))
            .map_err(io_err("setting DNS socket timeout"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let table = self.dns.clone();
        let flag = stop.clone();
        let net = cfg.name.clone();
        let handle = std::thread::Builder::new()
            .name(format!("dns-{}", cfg.name))
            .spawn(move || dns_loop(sock, table, flag, net))
            .map_err(io_err("spawning DNS thread"))?;
        self.dns_servers.insert(
            cfg.name.clone(),
            Worker {
                stop,
                handle: Some(handle),
                conns: Arc::default(),
            },
        );
        Ok(())
    }

    /// Publish `container_port` of the container on `host_ip:host_port` (0: any free port).
    /// Returns the host port.
    #[tracing::instrument(skip(self))]
    pub fn publish(
        &mut self,
        container: &str,
        host_ip: Ipv4Addr,
        host_port: u16,
        container_port: u16,
        proto: Protocol,
    ) -> Result<u16> {
        let mut m = PortMapping {
            host_ip,
            host_port,
            container_port,
            proto,
        };
        m.host_port = self.start_proxy(container, &m)?;
        self.state
            .ports
            .entry(container.to_string())
            .or_default()
            .push(m.clone());
        self.save()?;
        Ok(m.host_port)
    }

    /// Published ports of a container.
    pub fn ports(&self, container: &str) -> Vec<PortMapping> {
        self.state.ports.get(container).cloned().unwrap_or_default()
    }

    fn start_proxy(&mut self, container: &str, m: &PortMapping) -> Result<u16> {
        let ep = self
            .endpoints(container)
            .into_iter()
            .next()
            .ok_or_else(|| {
                NetworkError::NotFound(format!(
                    "container {container} is not on any network; cannot publish port {}/{}",
                    m.container_port, m.proto
                ))
            })?;
        let target = SocketAddrV4::new(ep.ip, m.container_port);
        let bind = SocketAddrV4::new(m.host_ip, m.host_port);
        let busy = |e: io::Error| {
            NetworkError::Conflict(format!(
                "cannot publish {}/{} of container {container} on {bind}: {e}; the port is \
                 probably in use, choose another host port",
                m.container_port, m.proto
            ))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let (port, handle) = match m.proto {
            Protocol::Tcp => {
                let l = TcpListener::bind(bind).map_err(busy)?;
                let port = l.local_addr().map_err(io_err("proxy address"))?.port();
                l.set_nonblocking(true)
                    .map_err(io_err("setting proxy non-blocking"))?;
                let (flag, cs) = (stop.clone(), conns.clone());
                let h = std::thread::Builder::new()
                    .name(format!("proxy-{port}"))
                    .spawn(move || tcp_proxy(l, target, flag, cs))
                    .map_err(io_err("spawning proxy thread"))?;
                (port, h)
            }
            Protocol::Udp => {
                let s = UdpSocket::bind(bind).map_err(busy)?;
                let port = s.local_addr().map_err(io_err("proxy address"))?.port();
                s.set_read_timeout(Some(POLL))
                    .map_err(io_err("setting proxy timeout"))?;
                let flag = stop.clone();
                let h = std::thread::Builder::new()
                    .name(format!("proxy-{port}"))
                    .spawn(move || udp_proxy(s, target, flag, UDP_IDLE))
                    .map_err(io_err("spawning proxy thread"))?;
                (port, h)
            }
        };
        self.proxies
            .entry(container.to_string())
            .or_default()
            .push(Worker {
                stop,
                handle: Some(handle),
                conns,
            });
        Ok(port)
    }

    /// Remove every network (the default one included), every container namespace, proxy and
    /// DNS responder, and the state directory's namespace mount. For tests and uninstall.
    pub fn teardown(mut self) -> Result<()> {
        let containers: Vec<String> = self.state.containers.iter().cloned().collect();
        for c in containers {
            self.detach_all(&c)?;
        }
        let names: Vec<String> = self.state.networks.keys().cloned().collect();
        for n in names {
            self.remove_network(&n)?;
        }
        self.proxies.clear();
        self.dns_servers.clear();
        let dir = self.state_dir.join("netns");
        if is_mountpoint(&dir) {
            nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
                NetworkError::Internal(format!("cannot unmount {}: {e}", dir.display()))
            })?;
        }
        Ok(())
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

fn tcp_proxy(
    l: TcpListener,
    target: SocketAddrV4,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
) {
    let next = AtomicU64::new(0);
    while !stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((client, _)) => {
                let id = next.fetch_add(1, Ordering::SeqCst);
                let conns = conns.clone();
                std::thread::spawn(move || {
                    let _ = client.set_nonblocking(false);
                    let Ok(upstream) =
                        TcpStream::connect_timeout(&SocketAddr::V4(target), Duration::from_secs(5))
                    else {
                        return;
                    };
                    let (Ok(c2), Ok(u2), Ok(track)) =
                        (client.try_clone(), upstream.try_clone(), client.try_clone())
                    else {
                        return;
                    };
                    if let Ok(mut g) = conns.lock() {
                        g.insert(id, track);
                    }
                    if let Ok(u3) = upstream.try_clone() {
                        if let Ok(mut g) = conns.lock() {
                            g.insert(id | 1 << 63, u3);
                        }
                    }
                    let t = std::thread::spawn(move || relay(c2, u2));
                    relay(upstream, client);
                    let _ = t.join();
                    if let Ok(mut g) = conns.lock() {
                        g.remove(&id);
                        g.remove(&(id | 1 << 63));
                    }
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL / 2),
            Err(e) => {
                tracing::warn!(error = %e, "port proxy accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// A UDP client's flow through the proxy is dropped after this long without a datagram in
/// either direction (its socket and thread freed; a later datagram opens a new one).
const UDP_IDLE: Duration = Duration::from_secs(60);
/// At most this many client flows per published UDP port; a new client beyond it replaces
/// the flow idle the longest.
const UDP_MAX_CLIENTS: usize = 1024;

/// One client address's flow: its own socket connected to the container, and the thread
/// carrying the container's replies back.
struct UdpFlow {
    up: UdpSocket,
    /// Milliseconds since the proxy started, at the last datagram either way.
    last: Arc<std::sync::atomic::AtomicU64>,
    /// Set to make the reply thread exit (eviction).
    gone: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

fn udp_proxy(s: UdpSocket, target: SocketAddrV4, stop: Arc<AtomicBool>, idle: Duration) {
    use std::sync::atomic::AtomicU64;
    let t0 = std::time::Instant::now();
    let now_ms = move || u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let mut clients: HashMap<SocketAddr, UdpFlow> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        // Flows whose reply thread ended (idle, or the socket failed) are forgotten.
        clients.retain(|_, f| !f.handle.is_finished());
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if clients.get(&from).is_some_and(|f| f.handle.is_finished()) {
            clients.remove(&from);
        }
        if !clients.contains_key(&from) {
            if clients.len() >= UDP_MAX_CLIENTS {
                let oldest = clients
                    .iter()
                    .min_by_key(|(_, f)| f.last.load(Ordering::Relaxed))
                    .map(|(a, _)| *a);
                if let Some(f) = oldest.and_then(|a| clients.remove(&a)) {
                    f.gone.store(true, Ordering::SeqCst);
                }
            }
            let Ok(up) = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)) else {
                continue;
            };
            if up.connect(target).is_err() || up.set_read_timeout(Some(POLL)).is_err() {
                continue;
            }
            let (Ok(reader), Ok(reply)) = (up.try_clone(), s.try_clone()) else {
                continue;
            };
            let last = Arc::new(AtomicU64::new(now_ms()));
            let gone = Arc::new(AtomicBool::new(false));
            let (flag, l, g) = (stop.clone(), last.clone(), gone.clone());
            let spawned = std::thread::Builder::new()
                .name("proxy-udp-flow".into())
                .spawn(move || {
                    let mut b = vec![0u8; 65536];
                    while !flag.load(Ordering::SeqCst) && !g.load(Ordering::SeqCst) {
                        match reader.recv(&mut b) {
                            Ok(n) => {
                                l.store(now_ms(), Ordering::Relaxed);
                                let _ = reply.send_to(&b[..n], from);
                            }
                            Err(_)
                                if now_ms().saturating_sub(l.load(Ordering::Relaxed)) > idle_ms =>
                            {
                                break;
                            }
                            Err(_) => {}
                        }
                    }
                });
            let Ok(handle) = spawned else { continue };
            clients.insert(
                from,
                UdpFlow {
                    up,
                    last,
                    gone,
                    handle,
                },
            );
        }
        if let Some(f) = clients.get(&from) {
            f.last.store(now_ms(), Ordering::Relaxed);
            let _ = f.up.send(&buf[..n]);
        }
    }
    for (_, f) in clients {
        let _ = f.handle.join();
    }
}

fn dns_loop(sock: UdpSocket, table: Arc<RwLock<DnsTable>>, stop: Arc<AtomicBool>, net: String) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let IpAddr::V4(src) = from.ip() else { continue };
        let reply = {
            let Ok(t) = table.read() else { continue };
            dns_answer(&buf[..n], |name| t.lookup(src, name))
        };
        if let Some(r) = reply {
            if let Err(e) = sock.send_to(&r, from) {
                tracing::debug!(network = %net, error = %e, "DNS reply failed");
            }
        }
    }
}

/// Build the reply to a DNS query (A records only; NXDOMAIN for unknown names; nothing is
/// forwarded). `None` for packets not worth answering.
pub fn dns_answer(q: &[u8], lookup: impl Fn(&str) -> Option<Ipv4Addr>) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 {
        return None; // too short, or a response
    }
    let opcode = (q[2] >> 3) & 0x0f;
    let qdcount = u16::from_be_bytes([q[4], q[5]]);
    let reply = |rcode: u8, question: &[u8], answer: Option<Ipv4Addr>| {
        let mut r = Vec::with_capacity(question.len() + 32);
        r.extend_from_slice(&q[..2]);
        r.push(0x80 | (opcode << 3) | 0x04 | (q[2] & 0x01)); // QR, AA, RD copied
        r.push(rcode);
        r.extend_from_slice(&[0, u8::from(!question.is_empty())]);
        r.extend_from_slice(&[0, u8::from(answer.is_some())]);
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(question);
        if let Some(ip) = answer {
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
            r.extend_from_slice(&600u32.to_be_bytes());
            r.extend_from_slice(&[0, 4]);
            r.extend_from_slice(&ip.octets());
        }
        r
    };
    if opcode != 0 {
        return Some(reply(4, &[], None)); // NOTIMP
    }
    if qdcount != 1 {
        return Some(reply(1, &[], None)); // FORMERR
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return Some(reply(1, &[], None));
        }
        let label = q.get(i + 1..i + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        i += 1 + len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*q.get(i + 2)?, *q.get(i + 3)?]);
    let question = &q[12..i + 4];
    let name = labels.join(".");
    match lookup(&name) {
        Some(ip) if qtype == 1 && (qclass == 1 || qclass == 255) => {
            Some(reply(0, question, Some(ip)))
        }
        Some(_) => Some(reply(0, question, None)), // name exists, no record of that type
        None => Some(reply(3, question, None)),    // NXDOMAIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_proxy_replies_and_drops_idle_flows() {
        // The "container": echoes each datagram with the source port it came from.
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = match echo.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        std::thread::spawn(move || {
            let mut b = [0u8; 1500];
            while let Ok((n, from)) = echo.recv_from(&mut b) {
                let reply = format!("{}:{}", String::from_utf8_lossy(&b[..n]), from.port());
                let _ = echo.send_to(reply.as_bytes(), from);
            }
        });
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        front.set_read_timeout(Some(POLL)).unwrap();
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let proxy =
            std::thread::spawn(move || udp_proxy(front, target, flag, Duration::from_millis(300)));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let ask = |msg: &str| -> (String, u16) {
            client.send_to(msg.as_bytes(), addr).unwrap();
            let mut b = [0u8; 1500];
            let n = client.recv(&mut b).unwrap();
            let text = String::from_utf8_lossy(&b[..n]).into_owned();
            let (m, port) = text.rsplit_once(':').unwrap();
            (m.to_string(), port.parse().unwrap())
        };
        let (m1, p1) = ask("one");
        let (m2, p2) = ask("two");
        assert_eq!((m1.as_str(), m2.as_str()), ("one", "two"));
        assert_eq!(p1, p2, "one flow per client while it is active");
        // Idle past the limit: the flow (its socket) is gone; the next datagram opens a new one.
        std::thread::sleep(Duration::from_millis(900));
        let (m3, p3) = ask("three");
        assert_eq!(m3, "three");
        assert_ne!(p3, p1, "the idle flow was not dropped");
        stop.store(true, Ordering::SeqCst);
        proxy.join().unwrap();
    }

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn subnet_parse_and_overlap() {
        let a: Subnet = "10.89.0.7/24".parse().unwrap();
        assert_eq!(a.to_string(), "10.89.0.0/24");
        assert!(a.contains(Ipv4Addr::new(10, 89, 0, 200)));
        let b: Subnet = "10.89.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        let c: Subnet = "10.89.1.0/24".parse().unwrap();
        assert!(!a.overlaps(&c));
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
    }

    #[test]
    fn publish_specs() {
        let m = parse_publish("8080:80").unwrap();
        assert_eq!(
            (m.host_ip, m.host_port, m.container_port, m.proto),
            (Ipv4Addr::LOCALHOST, 8080, 80, Protocol::Tcp)
        );
        let m = parse_publish("127.0.0.2:53:5353/udp").unwrap();
        assert_eq!(m.host_ip, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(m.proto, Protocol::Udp);
        assert_eq!(parse_publish("80").unwrap().host_port, 0);
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("x:80").is_err());
    }

    #[test]
    fn dns_packets() {
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        let lookup = |n: &str| (n == "web").then_some(ip);
        let r = dns_answer(&query("web", 1), lookup).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &ip.octets());
        let r = dns_answer(&query("web", 28), lookup).unwrap();
        assert_eq!((r[3] & 0x0f, r[7]), (0, 0));
        let r = dns_answer(&query("example.com", 1), lookup).unwrap();
        assert_eq!(r[3] & 0x0f, 3);
        assert!(dns_answer(&[1, 2, 3], lookup).is_none());
        let mut truncated = query("web", 1);
        truncated.truncate(15);
        assert!(dns_answer(&truncated, lookup).is_none());
    }

    #[test]
    fn endpoint_ids_are_stable_per_pair() {
        let a = endpoint_id("net1", "ctr1");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, endpoint_id("net1", "ctr1"));
        assert_ne!(a, endpoint_id("net1", "ctr2"));
        assert_ne!(a, endpoint_id("net2", "ctr1"));
    }

    #[test]
    fn config_saved_before_new_fields_still_loads() {
        let old = r#"{"id":"ab","name":"n","bridge":"br-ab","subnet":"10.1.0.0/24",
                      "gateway":"10.1.0.1","internal":false}"#;
        let cfg: NetworkConfig = serde_json::from_str(old).unwrap();
        assert_eq!(cfg.created, 0);
        assert!(cfg.labels.is_empty() && cfg.options.is_empty() && cfg.ip_range.is_none());
        let state: State =
            serde_json::from_str(r#"{"networks":{},"containers":[],"ports":{}}"#).unwrap();
        assert!(state.predefined.is_empty());
    }

    #[test]
    fn dns_scoped_to_shared_networks() {
        let t = DnsTable {
            entries: vec![
                (
                    "a".into(),
                    "one".into(),
                    vec!["one".into()],
                    [10, 0, 0, 2].into(),
                ),
                (
                    "a".into(),
                    "two".into(),
                    vec!["two".into(), "db".into()],
                    [10, 0, 0, 3].into(),
                ),
                (
                    "b".into(),
                    "three".into(),
                    vec!["three".into()],
                    [10, 0, 1, 2].into(),
                ),
            ],
        };
        assert_eq!(
            t.lookup([10, 0, 0, 2].into(), "DB."),
            Some([10, 0, 0, 3].into())
        );
        assert_eq!(t.lookup([10, 0, 0, 2].into(), "three"), None);
        assert_eq!(t.lookup([192, 0, 2, 9].into(), "one"), None);
    }
}
