//! Published-port bookkeeping, pure: the engine's events and container JSON in, the host
//! listeners to open and close out. `serve` does the I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

/// The transport of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `tcp`/`udp` (what the engine writes, `80/tcp`); anything else (`sctp`) is not forwarded.
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One host listener: `host_ip:port` on the host (a TCP listener or a UDP socket), forwarded
/// to the guest's `port` of the same protocol (berthd's proxy listens on the same port in the
/// guest). `53/tcp` and `53/udp` are two listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Published {
    pub host_ip: IpAddr,
    pub port: u16,
    pub proto: Proto,
}

impl std::fmt::Display for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}/{}", self.port, self.proto),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}/{}", self.port, self.proto),
        }
    }
}

/// What an engine event means for the forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    /// The container started: inspect it and forward its published ports.
    Started(String),
    /// The container stopped or is gone: close its forwards.
    Stopped(String),
}

/// The query `serve` subscribes with.
pub const EVENTS_PATH: &str = "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22start%22%2C%22unpause%22%2C%22die%22%2C%22stop%22%2C%22destroy%22%5D%7D";

/// Reads one `/events` entry.
pub fn event_action(ev: &Value) -> Option<EventAction> {
    let ty = ev["Type"].as_str().unwrap_or("container");
    if ty != "container" {
        return None;
    }
    let action = ev["Action"].as_str().or(ev["status"].as_str())?;
    let id = ev["Actor"]["ID"]
        .as_str()
        .or(ev["id"].as_str())
        .filter(|s| !s.is_empty())?
        .to_string();
    match action {
        "start" | "unpause" => Some(EventAction::Started(id)),
        "die" | "stop" | "destroy" => Some(EventAction::Stopped(id)),
        _ => None,
    }
}

/// A binding's host address: empty means all IPv4 addresses, as the engine does.
fn host_ip(s: &str) -> Option<IpAddr> {
    if s.is_empty() {
        return Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    s.parse().ok()
}

/// Drops an IPv6 wildcard when the IPv4 wildcard holds the same port and protocol (one
/// dual-stack socket would clash with the other).
fn dedup(mut v: Vec<Published>) -> Vec<Published> {
    let v4_any: BTreeSet<(u16, Proto)> = v
        .iter()
        .filter(|p| p.host_ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        .map(|p| (p.port, p.proto))
        .collect();
    v.retain(|p| {
        !(p.host_ip.is_ipv6() && p.host_ip.is_unspecified() && v4_any.contains(&(p.port, p.proto)))
    });
    v.sort();
    v.dedup();
    v
}

/// The TCP and UDP ports a container publishes, from `GET /containers/<id>/json`
/// (`NetworkSettings.Ports`: `{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
/// "53/udp": [...]}`; a key without `/` is TCP, other protocols are skipped).
/// A stopped container publishes nothing.
pub fn published_from_inspect(c: &Value) -> Vec<Published> {
    if c["State"]["Running"].as_bool() == Some(false) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(ports) = c["NetworkSettings"]["Ports"].as_object() {
        for (key, bindings) in ports {
            let proto = match key.split_once('/') {
                None => Proto::Tcp,
                Some((_, proto)) => match Proto::parse(proto) {
                    Some(p) => p,
                    None => continue,
                },
            };
            for b in bindings.as_array().into_iter().flatten() {
                let port = b["HostPort"]
                    .as_str()
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0);
                let ip = host_ip(b["HostIp"].as_str().unwrap_or(""));
                if let (Some(port), Some(host_ip)) = (port, ip) {
                    out.push(Published {
                        host_ip,
                        port,
                        proto,
                    });
                }
            }
        }
    }
    dedup(out)
}

/// Every running container's published TCP and UDP ports, from `GET /containers/json`
/// (`Ports: [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]`; no
/// `Type` is TCP, other protocols are skipped).
pub fn published_from_list(list: &Value) -> BTreeMap<String, Vec<Published>> {
    let mut out = BTreeMap::new();
    for c in list.as_array().into_iter().flatten() {
        let Some(id) = c["Id"].as_str() else { continue };
        if c["State"].as_str().is_some_and(|s| s != "running") {
            continue;
        }
        let mut ports = Vec::new();
        for p in c["Ports"].as_array().into_iter().flatten() {
            let Some(proto) = Proto::parse(p["Type"].as_str().unwrap_or("tcp")) else {
                continue;
            };
            let port = p["PublicPort"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0);
            let ip = host_ip(p["IP"].as_str().unwrap_or(""));
            if let (Some(port), Some(host_ip)) = (port, ip) {
                ports.push(Published {
                    host_ip,
                    port,
                    proto,
                });
            }
        }
        out.insert(id.to_string(), dedup(ports));
    }
    out
}

/// Listeners to open and close after a change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub open: Vec<Published>,
    pub close: Vec<Published>,
}

/// Which container holds which host listeners.
#[derive(Debug, Default)]
pub struct PortTable {
    by_container: BTreeMap<String, BTreeSet<Published>>,
}

impl PortTable {
    pub fn listeners(&self) -> BTreeSet<Published> {
        self.by_container.values().flatten().copied().collect()
    }

    fn diff(before: BTreeSet<Published>, after: BTreeSet<Published>) -> Changes {
        Changes {
            open: after.difference(&before).copied().collect(),
            close: before.difference(&after).copied().collect(),
        }
    }

    /// A container's ports are now these (after its start event and an inspect).
    pub fn set(&mut self, id: &str, ports: Vec<Published>) -> Changes {
        let before = self.listeners();
        if ports.is_empty() {
            self.by_container.remove(id);
        } else {
            self.by_container
                .insert(id.to_string(), ports.into_iter().collect());
        }
        Self::diff(before, self.listeners())
    }

    /// The container stopped or went away.
    pub fn remove(&mut self, id: &str) -> Changes {
        let before = self.listeners();
        self.by_container.remove(id);
        Self::diff(before, self.listeners())
    }

    /// The whole truth (after (re)subscribing): containers not in `all` lose their forwards.
    pub fn reconcile(&mut self, all: BTreeMap<String, Vec<Published>>) -> Changes {
        let before = self.listeners();
        self.by_container = all
            .into_iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(id, p)| (id, p.into_iter().collect()))
            .collect();
        Self::diff(before, self.listeners())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(ip: &str, port: u16) -> Published {
        Published {
            host_ip: ip.parse().unwrap(),
            port,
            proto: Proto::Tcp,
        }
    }

    fn u(ip: &str, port: u16) -> Published {
        Published {
            proto: Proto::Udp,
            ..p(ip, port)
        }
    }

    #[test]
    fn events_map_to_actions() {
        let ev = |action: &str| json!({"Type": "container", "Action": action, "Actor": {"ID": "abc", "Attributes": {"name": "web"}}, "id": "abc", "status": action});
        assert_eq!(
            event_action(&ev("start")),
            Some(EventAction::Started("abc".into()))
        );
        for a in ["die", "stop", "destroy"] {
            assert_eq!(
                event_action(&ev(a)),
                Some(EventAction::Stopped("abc".into())),
                "{a}"
            );
        }
        assert_eq!(event_action(&ev("exec_start: sh")), None);
        assert_eq!(event_action(&ev("create")), None);
        assert_eq!(
            event_action(&json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n"}})),
            None
        );
        // Old-style events (no Type/Action) still carry status and id.
        assert_eq!(
            event_action(&json!({"status": "die", "id": "old"})),
            Some(EventAction::Stopped("old".into()))
        );
        assert_eq!(
            event_action(&json!({"Type": "container", "Action": "start"})),
            None
        );
    }

    #[test]
    fn inspect_ports_become_listeners() {
        let c = json!({
            "State": {"Running": true},
            "NetworkSettings": {"Ports": {
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                "443/tcp": [{"HostIp": "", "HostPort": "8443"}, {"HostIp": "::", "HostPort": "8443"}],
                "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}, {"HostIp": "::", "HostPort": "5353"}],
                "123/udp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}],
                "7/sctp": [{"HostIp": "0.0.0.0", "HostPort": "7"}],
                "81": [{"HostIp": "127.0.0.1", "HostPort": "8081"}],
                "9000/tcp": null,
                "9001/tcp": [{"HostIp": "0.0.0.0", "HostPort": "bogus"}],
                "9002/udp": [{"HostIp": "0.0.0.0", "HostPort": "0"}]
            }}
        });
        // UDP ports are listeners of their own; the IPv6 wildcard goes where the IPv4 one
        // holds the same port and protocol; SCTP is not forwarded.
        assert_eq!(
            published_from_inspect(&c),
            [
                u("0.0.0.0", 5353),
                p("0.0.0.0", 8443),
                p("127.0.0.1", 8080),
                p("127.0.0.1", 8081),
                u("127.0.0.1", 8443)
            ]
        );
        let stopped = json!({"State": {"Running": false}, "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "", "HostPort": "1"}], "53/udp": [{"HostIp": "", "HostPort": "2"}]}}});
        assert!(published_from_inspect(&stopped).is_empty());
    }

    #[test]
    fn an_ipv6_wildcard_stays_when_only_the_other_protocol_has_the_ipv4_one() {
        let c = json!({
            "State": {"Running": true},
            "NetworkSettings": {"Ports": {
                "53/tcp": [{"HostIp": "0.0.0.0", "HostPort": "53"}],
                "53/udp": [{"HostIp": "::", "HostPort": "53"}]
            }}
        });
        assert_eq!(published_from_inspect(&c), [p("0.0.0.0", 53), u("::", 53)]);
    }

    #[test]
    fn list_ports_become_listeners() {
        let l = json!([
            {"Id": "a", "State": "running", "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 81, "Type": "tcp"},
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"},
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"},
                {"PrivatePort": 54, "Type": "udp"},
                {"IP": "0.0.0.0", "PrivatePort": 7, "PublicPort": 7, "Type": "sctp"}
            ]},
            {"Id": "b", "State": "exited", "Ports": []},
            {"Id": "c", "State": "running", "Ports": [{"IP": "127.0.0.1", "PrivatePort": 5000, "PublicPort": 5000, "Type": "tcp"}]},
            {"Id": "d", "State": "running", "Ports": [{"IP": "127.0.0.1", "PrivatePort": 9, "PublicPort": 9009}]}
        ]);
        let m = published_from_list(&l);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m["a"],
            [p("0.0.0.0", 53), u("0.0.0.0", 53), p("0.0.0.0", 8080)]
        );
        assert_eq!(m["c"], [p("127.0.0.1", 5000)]);
        // No Type: TCP, as the engine means it.
        assert_eq!(m["d"], [p("127.0.0.1", 9009)]);
    }

    #[test]
    fn table_opens_and_closes_what_changed() {
        let mut t = PortTable::default();
        let ch = t.set("a", vec![p("127.0.0.1", 8080), p("0.0.0.0", 9090)]);
        assert_eq!(ch.open, [p("0.0.0.0", 9090), p("127.0.0.1", 8080)]);
        assert!(ch.close.is_empty());
        // A repeated start changes nothing.
        assert_eq!(
            t.set("a", vec![p("127.0.0.1", 8080), p("0.0.0.0", 9090)]),
            Changes::default()
        );
        let ch = t.set("b", vec![p("127.0.0.1", 7000)]);
        assert_eq!(ch.open, [p("127.0.0.1", 7000)]);
        let ch = t.remove("a");
        assert_eq!(ch.close, [p("0.0.0.0", 9090), p("127.0.0.1", 8080)]);
        assert!(ch.open.is_empty());
        assert_eq!(t.remove("a"), Changes::default());
        // After a reconnect: b is gone, c appeared.
        let mut all = BTreeMap::new();
        all.insert("c".to_string(), vec![p("0.0.0.0", 6000)]);
        let ch = t.reconcile(all);
        assert_eq!(ch.open, [p("0.0.0.0", 6000)]);
        assert_eq!(ch.close, [p("127.0.0.1", 7000)]);
        assert_eq!(t.listeners().len(), 1);
        assert_eq!(p("::1", 80).to_string(), "[::1]:80/tcp");
        assert_eq!(u("127.0.0.1", 53).to_string(), "127.0.0.1:53/udp");
    }

    #[test]
    fn tcp_and_udp_of_one_port_open_and_close_apart() {
        let mut t = PortTable::default();
        let ch = t.set("dns", vec![u("127.0.0.1", 5353), p("127.0.0.1", 5353)]);
        assert_eq!(ch.open, [p("127.0.0.1", 5353), u("127.0.0.1", 5353)]);
        // The container restarts publishing only UDP: the TCP listener closes, UDP stays.
        let ch = t.set("dns", vec![u("127.0.0.1", 5353)]);
        assert_eq!(ch.close, [p("127.0.0.1", 5353)]);
        assert!(ch.open.is_empty());
        // Another container takes 5353/tcp while the UDP one holds 5353/udp.
        let ch = t.set("web", vec![p("127.0.0.1", 5353)]);
        assert_eq!(ch.open, [p("127.0.0.1", 5353)]);
        let ch = t.remove("dns");
        assert_eq!(ch.close, [u("127.0.0.1", 5353)]);
        assert_eq!(
            t.listeners().into_iter().collect::<Vec<_>>(),
            [p("127.0.0.1", 5353)]
        );
    }
}
