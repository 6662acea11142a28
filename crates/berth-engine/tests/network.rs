//! Root integration tests for container networking. Containers are simulated by the network
//! namespaces the library creates; test code enters them with setns in a dedicated thread
//! (sockets keep the namespace they were created in).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_engine::network::{ErrorKind, NetworkOptions, Networks, Protocol, Subnet};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping: network tests need root (namespaces, bridges, veths)");
        false
    }
}

fn state_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-nettest-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(bridge: &str, default: &str, pool: &str) -> NetworkOptions {
    NetworkOptions {
        default_bridge: bridge.into(),
        default_subnet: default.parse().unwrap(),
        pools: vec![(pool.parse::<Subnet>().unwrap(), 24)],
    }
}

/// Run `f` in a thread that has joined the network namespace at `path`.
fn in_ns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(path).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn tcp_echo_server(ns: &Path, addr: SocketAddrV4) {
    let l = in_ns(ns, move || TcpListener::bind(addr).unwrap());
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn echo_roundtrip(target: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"hello")?;
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Resolve `name` from inside `ns` through `server`: Ok(Some(ip)), Ok(None) for NXDOMAIN.
fn resolve(ns: &Path, server: Ipv4Addr, name: &str) -> Option<Ipv4Addr> {
    let name = name.to_string();
    in_ns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(&dns_query(&name), (server, 53)).unwrap();
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap();
        assert_eq!(&buf[..2], &[0xab, 0xcd]);
        match buf[3] & 0x0f {
            0 => {
                assert_eq!(buf[7], 1, "one answer");
                Some(Ipv4Addr::new(
                    buf[n - 4],
                    buf[n - 3],
                    buf[n - 2],
                    buf[n - 1],
                ))
            }
            3 => None,
            rc => panic!("unexpected rcode {rc}"),
        }
    })
}

fn links() -> String {
    let out = Command::new("ip").args(["-br", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_clean(dir: &Path, devices: &[String]) {
    // A container's veth pairs go with its namespace; the kernel deletes them asynchronously
    // (a few ms), so give it a moment before calling anything a leftover.
    let gone = |links: &str| {
        !devices
            .iter()
            .any(|d| links.lines().any(|l| l.split(['@', ' ']).next() == Some(d)))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline && !gone(&links()) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let links = links();
    for d in devices {
        assert!(
            !links.lines().any(|l| l.split(['@', ' ']).next() == Some(d)),
            "{d} left behind:\n{links}"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    assert!(!mounts.contains(&dir), "mounts left under {dir}");
}

#[test]
fn same_network_talks_and_resolves_other_network_isolated() {
    if !is_root() {
        return;
    }
    let dir = state_dir("iso");
    let mut nets = Networks::open(&dir, opts("btiso0", "10.231.0.0/24", "10.231.16.0/20")).unwrap();
    let a_net = nets.create("neta", None, false).unwrap();
    let b_net = nets.create("netb", None, false).unwrap();
    assert_eq!(a_net.subnet.to_string(), "10.231.16.0/24");
    assert_eq!(b_net.subnet.to_string(), "10.231.17.0/24");
    assert_eq!(
        nets.create("neta", None, false).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        nets.create("other", Some("10.231.16.128/25"), false)
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );

    let a = nets.attach("neta", "ca", &[], None).unwrap();
    let b = nets
        .attach("neta", "cb", &["db".to_string()], None)
        .unwrap();
    let c = nets.attach("netb", "cc", &[], None).unwrap();
    assert_eq!(a.gateway, a_net.gateway);
    assert!(a_net.subnet.contains(a.ip) && a_net.subnet.contains(b.ip) && a.ip != b.ip);
    assert_eq!(a.ifname, "eth0");
    assert_eq!(
        nets.attach("neta", "ca", &[], None).unwrap_err().kind(),
        ErrorKind::Conflict
    );

    // Inside the namespace: eth0 with the IP, default route via the gateway.
    let out = Command::new("nsenter")
        .arg(format!("--net={}", a.netns_path.display()))
        .args(["ip", "-4", "route"])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&out.stdout);
    assert!(
        routes.contains(&format!("default via {} dev eth0", a.gateway)),
        "{routes}"
    );

    // Same network: TCP by IP.
    tcp_echo_server(&a.netns_path, SocketAddrV4::new(a.ip, 7000));
    let target = SocketAddr::from((a.ip, 7000));
    let got = in_ns(&b.netns_path, move || echo_roundtrip(target).unwrap());
    assert_eq!(got, "hello");

    // DNS by name and alias; unknown and other-network names are NXDOMAIN.
    assert_eq!(resolve(&b.netns_path, b.gateway, "ca"), Some(a.ip));
    assert_eq!(resolve(&a.netns_path, a.gateway, "db"), Some(b.ip));
    assert_eq!(resolve(&a.netns_path, a.gateway, "cc"), None);
    assert_eq!(resolve(&a.netns_path, a.gateway, "example.com"), None);
    assert!(nets
        .resolv_conf("ca")
        .contains(&format!("nameserver {}", a.gateway)));
    assert!(nets.hosts("ca").contains(&format!("{}\tca", a.ip)));

    // Other network: unreachable.
    let got = in_ns(&c.netns_path, move || echo_roundtrip(target).is_err());
    assert!(got, "container on netb reached a container on neta");

    // A container added later resolves, a second interface via connect.
    let d = nets.attach("neta", "cd", &[], None).unwrap();
    assert_eq!(resolve(&a.netns_path, a.gateway, "cd"), Some(d.ip));
    // An address asked for (`--ip`): given, visible inside, then refused to a second taker;
    // one outside the subnet is refused.
    let o = a.ip.octets();
    let want = std::net::Ipv4Addr::new(o[0], o[1], o[2], 200);
    let e = nets.attach("neta", "ce", &[], Some(want)).unwrap();
    assert_eq!(e.ip, want);
    let out = Command::new("nsenter")
        .arg(format!("--net={}", e.netns_path.display()))
        .args(["ip", "-4", "addr", "show", "eth0"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout);
    assert!(addrs.contains(&format!("inet {want}/")), "{addrs}");
    assert_eq!(
        nets.attach("neta", "cf", &[], Some(want))
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    let outside = std::net::Ipv4Addr::new(o[0], o[1].wrapping_add(1), o[2], 7);
    assert_eq!(
        nets.attach("neta", "cf", &[], Some(outside))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    nets.detach_all("ce").unwrap();
    let c2 = nets.connect("neta", "cc", &[], None).unwrap();
    assert_eq!(c2.ifname, "eth1");
    let got = in_ns(&c.netns_path, move || echo_roundtrip(target).unwrap());
    assert_eq!(got, "hello");
    assert_eq!(resolve(&c.netns_path, c.gateway, "ca"), Some(a.ip));
    nets.disconnect("neta", "cc").unwrap();
    assert_eq!(resolve(&c.netns_path, c.gateway, "ca"), None);

    assert_eq!(nets.remove("neta").unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(
        nets.remove("bridge").unwrap_err().kind(),
        ErrorKind::Conflict
    );

    // State survives a restart (DNS restarted too).
    drop(nets);
    let mut nets = Networks::open(&dir, opts("btiso0", "10.231.0.0/24", "10.231.16.0/20")).unwrap();
    assert_eq!(nets.list().len(), 3);
    assert_eq!(resolve(&b.netns_path, b.gateway, "ca"), Some(a.ip));

    let mut devices = vec!["btiso0".to_string(), a_net.bridge.clone(), b_net.bridge];
    for ep in [&a, &b, &c, &c2, &d] {
        devices.push(ep.host_veth.clone());
    }
    for ctr in ["ca", "cb", "cc", "cd"] {
        nets.detach_all(ctr).unwrap();
        assert!(!ep_path(&dir, ctr).exists());
    }
    nets.remove("neta").unwrap();
    assert!(!links().contains(&a_net.bridge));
    nets.teardown().unwrap();
    assert_clean(&dir, &devices);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn ep_path(dir: &Path, container: &str) -> PathBuf {
    dir.join("netns").join(container)
}

#[test]
fn published_ports_and_none_mode() {
    if !is_root() {
        return;
    }
    let dir = state_dir("pub");
    let mut nets = Networks::open(&dir, opts("btpub0", "10.232.0.0/24", "10.232.16.0/20")).unwrap();
    let e = nets.attach("bridge", "web", &[], None).unwrap();
    tcp_echo_server(
        &e.netns_path,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000),
    );
    let udp = in_ns(&e.netns_path, || UdpSocket::bind("0.0.0.0:5001").unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], from);
        }
    });

    let port = nets
        .publish("web", Ipv4Addr::LOCALHOST, 0, 5000, Protocol::Tcp)
        .unwrap();
    assert_ne!(port, 0);
    let host = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(echo_roundtrip(host).unwrap(), "hello");
    assert_eq!(echo_roundtrip(host).unwrap(), "hello");
    assert_eq!(
        nets.publish("web", Ipv4Addr::LOCALHOST, port, 5000, Protocol::Tcp)
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );

    let uport = nets
        .publish("web", Ipv4Addr::LOCALHOST, 0, 5001, Protocol::Udp)
        .unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(b"ping", ("127.0.0.1", uport)).unwrap();
    let mut buf = [0u8; 16];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(nets.ports("web").len(), 2);

    // none mode: loopback only.
    let none = nets.attach_none("lonely").unwrap();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", none.display()))
        .args(["ip", "-br", "link"])
        .output()
        .unwrap();
    let l = String::from_utf8_lossy(&out.stdout);
    assert_eq!(l.lines().count(), 1, "{l}");
    assert!(l.starts_with("lo ") && l.contains("UP"), "{l}");
    assert_eq!(nets.resolv_conf("lonely"), "");

    nets.detach_all("web").unwrap();
    assert!(TcpStream::connect(host).is_err(), "proxy still listening");
    nets.detach_all("lonely").unwrap();
    let veth = e.host_veth.clone();
    nets.teardown().unwrap();
    assert_clean(&dir, &["btpub0".to_string(), veth]);
    std::fs::remove_dir_all(&dir).unwrap();
}
