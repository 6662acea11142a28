//! Just enough rtnetlink for a container's interfaces, so a start does not exec `ip` twice
//! (each exec of iproute2 costs ~4 ms): create a veth pair with its peer in the container's
//! namespace, attach the host end to a bridge, bring links up, add an IPv4 address and a
//! default route, delete a link.
//!
//! Every request asks for an acknowledgement; a kernel error comes back as the errno text
//! (`File exists`, `No such device`, ...), which the caller wraps with what it was doing.
//! The socket belongs to the network namespace of the thread that opens it, so work inside a
//! container's namespace opens its socket after `setns`.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// A route netlink socket in the calling thread's network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// One request being built: header, fixed part, attributes (nests patched on close).
struct Msg {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set on send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        Msg {
            buf,
            open: Vec::new(),
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.raw(&[libc::AF_UNSPEC as u8, 0, 0, 0]); // family, pad, type (u16)
        self.raw(&index.to_ne_bytes());
        self.raw(&flags.to_ne_bytes());
        self.raw(&change.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.raw(&(len as u16).to_ne_bytes());
        self.raw(&kind.to_ne_bytes());
        self.raw(data);
        self.pad();
    }

    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data);
    }

    fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    fn begin(&mut self, kind: u16) {
        self.open.push(self.buf.len());
        self.raw(&0u16.to_ne_bytes());
        self.raw(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    fn end(&mut self) {
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn pad(&mut self) {
        while self.buf.len() & 3 != 0 {
            self.buf.push(0);
        }
    }
}

fn mac_bytes(mac: &str) -> io::Result<[u8; 6]> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad MAC address {mac:?}"),
        ));
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad MAC address {mac:?}"),
            )
        })?;
    }
    Ok(out)
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let ix = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if ix == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        ));
    }
    Ok(ix as i32)
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Netlink { fd, seq: 0 })
    }

    /// Send `m` and wait for the kernel's acknowledgement.
    fn request(&mut self, mut m: Msg) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let len = m.buf.len() as u32;
        m.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        m.buf[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: a zeroed sockaddr_nl with the family set addresses the kernel.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: buf and addr are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                m.buf.as_ptr().cast(),
                m.buf.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: buf is valid for writes of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let word = |at: usize| {
                    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
                };
                let mlen = word(off) as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = word(off + 8);
                if mlen < 16 || off + mlen > n {
                    break;
                }
                if kind == NLMSG_ERROR && seq == self.seq && mlen >= 20 {
                    let code = i32::from_ne_bytes([
                        buf[off + 16],
                        buf[off + 17],
                        buf[off + 18],
                        buf[off + 19],
                    ]);
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                off += (mlen + 3) & !3;
            }
        }
    }

    /// `ip link add HOST type veth peer name PEER netns NS address MAC`, then the host end
    /// on `bridge` and up.
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: &impl AsRawFd,
        peer_mac: &str,
        bridge: &str,
    ) -> io::Result<()> {
        let mac = mac_bytes(peer_mac)?;
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, host);
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA);
        m.begin(VETH_INFO_PEER);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer);
        m.attr_u32(IFLA_NET_NS_FD, peer_netns.as_raw_fd() as u32);
        m.attr(IFLA_ADDRESS, &mac);
        m.end();
        m.end();
        m.end();
        self.request(m)?;
        let ix = ifindex(host)?;
        let master = ifindex(bridge)?;
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(ix, IFF_UP, IFF_UP);
        m.attr_u32(IFLA_MASTER, master as u32);
        self.request(m)
    }

    /// `ip link set NAME up`.
    pub fn link_up(&mut self, name: &str) -> io::Result<()> {
        let ix = ifindex(name)?;
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(ix, IFF_UP, IFF_UP);
        self.request(m)
    }

    /// `ip link del NAME`.
    pub fn link_del(&mut self, name: &str) -> io::Result<()> {
        let ix = ifindex(name)?;
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(ix, 0, 0);
        self.request(m)
    }

    /// `ip addr add IP/PREFIX dev NAME`.
    pub fn addr_add(&mut self, name: &str, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let ix = ifindex(name)?;
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        m.raw(&[libc::AF_INET as u8, prefix, 0, RT_SCOPE_UNIVERSE]);
        m.raw(&(ix as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &ip.octets());
        m.attr(IFA_ADDRESS, &ip.octets());
        self.request(m)
    }

    /// `ip route add default via GATEWAY dev NAME`.
    pub fn default_route(&mut self, gateway: Ipv4Addr, name: &str) -> io::Result<()> {
        let ix = ifindex(name)?;
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        m.raw(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.raw(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr_u32(RTA_OIF, ix as u32);
        self.request(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_have_their_lengths() {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        let start = m.buf.len();
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.end();
        // nest header (4) + attr header (4) + "veth\0" (5) padded to 8.
        let len = u16::from_ne_bytes([m.buf[start], m.buf[start + 1]]);
        assert_eq!(len, 16);
        assert_eq!(m.buf.len() & 3, 0);
        assert!(mac_bytes("02:42:0a:00:00:02").is_ok());
        assert!(mac_bytes("02:42:0a").is_err());
        assert!(mac_bytes("zz:42:0a:00:00:02").is_err());
    }
}
