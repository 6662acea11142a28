//! The networks API (`/networks/...`) driven by the real docker CLI (and raw HTTP for error
//! shapes) against berthd. Every daemon has its own slot (bridge name, subnets); a subnet given
//! with `--subnet` here is the last /26 of the slot's own pool, which no other daemon uses.
//!
//! berthd is found as `$BERTHD`, else `$CARGO_TARGET_DIR/{debug,release}/berthd`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::{message, Berthd};
use berth_tests::require_root;
use berth_tests::suite::wait_until;
use std::process::Command;

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .unwrap()
        .status
        .success()
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(|l| l.trim().to_string()).collect()
}

#[test]
fn ls_shows_predefined_networks_with_stable_ids() {
    if !require_root("ls_shows_predefined_networks_with_stable_ids") {
        return;
    }
    let mut d = Berthd::start();
    let ls = d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    let mut got = lines(&ls);
    got.sort();
    assert_eq!(
        got,
        ["bridge bridge local", "host host local", "none null local"],
        "{ls}"
    );
    let ids = d.ok(&["network", "ls", "-q", "--no-trunc"]);
    let ids = lines(&ids);
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter()
            .all(|i| i.len() == 64 && i.bytes().all(|b| b.is_ascii_hexdigit())),
        "{ids:?}"
    );
    // The default network shows its bridge device and Docker's options.
    let opt = d.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{index .Options \"com.docker.network.bridge.name\"}} {{index .Options \"com.docker.network.bridge.default_bridge\"}}",
    ]);
    assert_eq!(opt.trim(), format!("{} true", d.slot.bridge()));
    let none = d.ok(&[
        "network",
        "inspect",
        "none",
        "--format",
        "{{.Driver}} {{len .IPAM.Config}} {{.Scope}}",
    ]);
    assert_eq!(none.trim(), "null 0 local");

    // IDs survive a daemon restart.
    d.kill9();
    d.spawn();
    let again = d.ok(&["network", "ls", "-q", "--no-trunc"]);
    let mut a = lines(&again);
    let mut b = ids.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn create_inspect_filter_rm() {
    if !require_root("create_inspect_filter_rm") {
        return;
    }
    let d = Berthd::start();
    let n = d.slot.n;

    // Plain: a subnet from the slot's pool, a br-<id12> bridge.
    let id1 = d.ok(&["network", "create", "n1"]).trim().to_string();
    assert_eq!(id1.len(), 64, "{id1}");
    let br1 = format!("br-{}", &id1[..12]);
    assert!(link_exists(&br1), "bridge {br1} missing");
    let got = d.ok(&[
        "network",
        "inspect",
        "n1",
        "--format",
        "{{.Driver}} {{.Scope}} {{.Internal}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
    ]);
    let pool_prefix = format!("10.{}.", 220 + n / 64);
    assert!(got.starts_with("bridge local false "), "{got}");
    assert!(got.contains(&pool_prefix), "{got}");
    // The gateway is the subnet's first host address.
    let f: Vec<&str> = got.split_whitespace().collect();
    let (net, _) = f[3].split_once('/').unwrap();
    let net: std::net::Ipv4Addr = net.parse().unwrap();
    let gw = std::net::Ipv4Addr::from(u32::from(net) + 1);
    assert_eq!(f[4], gw.to_string(), "{got}");

    // Everything the user can choose, in the last /26 of the slot's pool.
    let base = format!("10.{}.{}", 220 + n / 64, (n % 64) * 4 + 3);
    let subnet = format!("{base}.192/26");
    let gateway = format!("{base}.254");
    let ip_range = format!("{base}.224/27");
    let bridge2 = format!("btn{n}");
    let id2 = d
        .ok(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--gateway",
            &gateway,
            "--ip-range",
            &ip_range,
            "--internal",
            "--attachable",
            "--label",
            "tier=db",
            "--label",
            "team",
            "-o",
            &format!("com.docker.network.bridge.name={bridge2}"),
            "n2",
        ])
        .trim()
        .to_string();
    assert!(link_exists(&bridge2), "bridge {bridge2} missing");
    let raw = d.ok(&["network", "inspect", "n2"]);
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "n2");
    assert_eq!(v["Id"], id2.as_str());
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["EnableIPv6"], false);
    assert_eq!(v["Internal"], true);
    assert_eq!(v["Attachable"], true);
    assert_eq!(v["Ingress"], false);
    assert_eq!(v["ConfigOnly"], false);
    assert_eq!(v["IPAM"]["Driver"], "default");
    assert_eq!(v["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], gateway.as_str());
    assert_eq!(v["IPAM"]["Config"][0]["IPRange"], ip_range.as_str());
    assert_eq!(v["Labels"]["tier"], "db");
    assert_eq!(v["Labels"]["team"], "");
    assert_eq!(
        v["Options"]["com.docker.network.bridge.name"],
        bridge2.as_str()
    );
    assert_eq!(v["Containers"], serde_json::json!({}));
    let created = v["Created"].as_str().unwrap();
    assert!(
        created.len() >= 20 && created.ends_with('Z') && created.starts_with("20"),
        "{created}"
    );
    // By ID prefix too.
    let by_id = d.ok(&["network", "inspect", &id2[..12], "--format", "{{.Name}}"]);
    assert_eq!(by_id.trim(), "n2");

    // ls filters.
    let names = |filters: &[&str]| {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        let mut v = lines(&d.ok(&args));
        v.sort();
        v
    };
    assert_eq!(names(&["type=custom"]), ["n1", "n2"]);
    assert_eq!(names(&["type=builtin"]), ["bridge", "host", "none"]);
    assert_eq!(names(&["label=tier=db"]), ["n2"]);
    assert_eq!(names(&["label=team"]), ["n2"]);
    assert!(names(&["label=tier=web"]).is_empty());
    assert_eq!(names(&["name=n1"]), ["n1"]);
    assert_eq!(names(&["driver=null"]), ["none"]);
    assert_eq!(names(&["driver=host"]), ["host"]);
    assert_eq!(names(&["dangling=true"]), ["n1", "n2"]);
    assert_eq!(names(&[&format!("id={}", &id1[..10])]), ["n1"]);
    assert_eq!(names(&["scope=local", "name=n"]), ["n1", "n2", "none"]);
    let err = d.fails(&["network", "ls", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter 'colour'"), "{err}");

    // Errors, in Docker's words.
    let err = d.fails(&["network", "create", "n1"]);
    assert!(err.contains("network with name n1 already exists"), "{err}");
    let err = d.fails(&["network", "create", "host"]);
    assert!(
        err.contains("network with name host already exists"),
        "{err}"
    );
    let err = d.fails(&[
        "network",
        "create",
        "--subnet",
        &format!("{base}.192/27"),
        "n3",
    ]);
    assert!(err.contains("overlaps network n2"), "{err}");
    let err = d.fails(&["network", "create", "-d", "overlay", "n3"]);
    assert!(
        err.contains("\"overlay\"") && err.contains("only the bridge driver"),
        "{err}"
    );
    let err = d.fails(&["network", "create", "--subnet", "10.0.0.0/33", "n3"]);
    assert!(err.contains("invalid subnet"), "{err}");
    for pre in ["bridge", "host", "none"] {
        let err = d.fails(&["network", "rm", pre]);
        assert!(
            err.contains(&format!(
                "{pre} is a pre-defined network and cannot be removed"
            )),
            "{err}"
        );
    }
    let err = d.fails(&["network", "rm", "nope"]);
    assert!(err.contains("network nope not found"), "{err}");
    let err = d.fails(&["network", "inspect", "nope"]);
    assert!(err.contains("nope"), "{err}");

    // rm by name and by ID prefix: the bridges go.
    d.ok(&["network", "rm", "n1"]);
    d.ok(&["network", "rm", &id2[..12]]);
    assert!(!link_exists(&br1), "bridge {br1} left behind");
    assert!(!link_exists(&bridge2), "bridge {bridge2} left behind");
    assert_eq!(names(&["type=custom"]), Vec::<String>::new());
}

#[test]
fn raw_statuses() {
    if !require_root("raw_statuses") {
        return;
    }
    let d = Berthd::start();
    let (s, b) = d.raw("GET", "/v1.45/networks/nope", b"");
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "network nope not found");
    let (s, b) = d.raw(
        "POST",
        "/v1.45/networks/create",
        br#"{"Name":"x1","Driver":"macvlan"}"#,
    );
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("\"macvlan\""), "{b}");
    let (s, b) = d.raw("POST", "/v1.45/networks/create", br#"{"Name":"x1"}"#);
    assert_eq!(s, 201, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["Id"].as_str().unwrap().len(), 64);
    assert_eq!(v["Warning"], "");
    let (s, b) = d.raw("POST", "/v1.45/networks/create", br#"{"Name":"x1"}"#);
    assert_eq!(s, 409, "{b}");
    assert_eq!(message(&b), "network with name x1 already exists");
    let (s, b) = d.raw("DELETE", "/v1.45/networks/bridge", b"");
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        "bridge is a pre-defined network and cannot be removed"
    );
    let (s, b) = d.raw(
        "POST",
        "/v1.45/networks/host/connect",
        br#"{"Container":"c1"}"#,
    );
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).contains("host network"), "{b}");
    let (s, b) = d.raw("POST", "/v1.45/networks/x1/connect", br#"{}"#);
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("\"Container\""), "{b}");
    let (s, b) = d.raw(
        "GET",
        "/v1.45/networks?filters=%7B%22type%22%3A%5B%22odd%22%5D%7D",
        b"",
    );
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).contains("type=odd"), "{b}");
    let (s, b) = d.raw("DELETE", "/v1.45/networks/x1", b"");
    assert_eq!(s, 204, "{b}");
}

#[test]
fn prune_unused_networks() {
    if !require_root("prune_unused_networks") {
        return;
    }
    let d = Berthd::start();
    let keep = d.ok(&["network", "create", "--label", "keep=1", "p1"]);
    let gone = d.ok(&["network", "create", "p2"]);
    let br_keep = format!("br-{}", &keep.trim()[..12]);
    let br_gone = format!("br-{}", &gone.trim()[..12]);
    // Created just now: nothing is older than an hour.
    let out = d.ok(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("p1") && !out.contains("p2"), "{out}");
    let out = d.ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert!(
        out.contains("Deleted Networks:") && out.contains("p2"),
        "{out}"
    );
    assert!(!out.contains("p1"), "{out}");
    assert!(!link_exists(&br_gone), "{br_gone} left behind");
    assert!(link_exists(&br_keep));
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(out.contains("p1"), "{out}");
    assert!(!link_exists(&br_keep), "{br_keep} left behind");
    // The predefined networks stay.
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut got = lines(&ls);
    got.sort();
    assert_eq!(got, ["bridge", "host", "none"]);
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    if !require_root("containers_on_a_user_network_reach_each_other_by_name") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let net_id = d.ok(&["network", "create", "app"]).trim().to_string();
    let a = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "app",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    // A second container finds the first by name through the network's DNS, and reaches it.
    let out = d.ok(&[
        "run",
        "--rm",
        "--name",
        "web2",
        "--network",
        "app",
        "busybox",
        "ping",
        "-c1",
        "-W5",
        "web",
    ]);
    assert!(out.contains("1 packets received"), "{out}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "nslookup",
        "web",
    ]);
    assert!(out.contains("Address"), "{out}");

    // inspect lists the running container with its address.
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["network", "inspect", "app"])).unwrap();
    let ep = &v[0]["Containers"][a.as_str()];
    assert_eq!(ep["Name"], "web", "{v}");
    let ip = ep["IPv4Address"].as_str().unwrap();
    assert!(ip.ends_with("/26"), "{ip}");
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    assert!(ep["MacAddress"].as_str().unwrap().starts_with("02:42:"));

    // In use: Docker's refusal, with both name and ID.
    let err = d.fails(&["network", "rm", "app"]);
    assert!(
        err.contains(&format!(
            "error while removing network: network app id {net_id} has active endpoints"
        )),
        "{err}"
    );
    let (s, b) = d.raw("DELETE", "/v1.45/networks/app", b"");
    assert_eq!(s, 403, "{b}");
    // The prune skips it; dangling=false lists it.
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(!out.contains("app"), "{out}");
    let ls = d.ok(&[
        "network",
        "ls",
        "--filter",
        "dangling=false",
        "--format",
        "{{.Name}}",
    ]);
    assert!(ls.lines().any(|l| l == "app"), "{ls}");

    // A container on a network with --ip-range gets an address from that range, and its
    // default route goes to the chosen gateway.
    let n = d.slot.n;
    let base = format!("10.{}.{}", 220 + n / 64, (n % 64) * 4 + 3);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{base}.192/26"),
        "--gateway",
        &format!("{base}.193"),
        "--ip-range",
        &format!("{base}.240/28"),
        "ranged",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route",
    ]);
    assert!(out.contains(&format!("inet {base}.240/26")), "{out}");
    assert!(out.contains(&format!("default via {base}.193")), "{out}");
    d.ok(&["network", "rm", "ranged"]);

    d.ok(&["rm", "-f", "web"]);
    let bridge = format!("br-{}", &net_id[..12]);
    d.ok(&["network", "rm", "app"]);
    assert!(!link_exists(&bridge), "{bridge} left behind");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    if !require_root("connect_and_disconnect_a_running_container") {
        return;
    }
    let d = Berthd::start();
    d.load_busybox("busybox:latest");
    let net_id = d.ok(&["network", "create", "side"]).trim().to_string();
    // On the default bridge first.
    let c = d
        .ok(&["run", "-d", "--name", "cat", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let since = d.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!since.trim().is_empty());
    d.ok(&["network", "connect", "--alias", "kitty", "side", "cat"]);
    let names = d.ok(&[
        "network",
        "inspect",
        "side",
        "--format",
        "{{range .Containers}}{{.Name}} {{end}}",
    ]);
    assert_eq!(names.trim(), "cat");
    // Reachable by its name and its alias from the new network.
    for target in ["cat", "kitty"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            "side",
            "busybox",
            "ping",
            "-c1",
            "-W5",
            target,
        ]);
        assert!(out.contains("1 packets received"), "{target}: {out}");
    }
    // Connecting twice is an error naming the network.
    let err = d.fails(&["network", "connect", "side", "cat"]);
    assert!(err.contains("side"), "{err}");
    let err = d.fails(&["network", "connect", "side", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");

    d.ok(&["network", "disconnect", "side", "cat"]);
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        d.ok(&[
            "network",
            "inspect",
            "side",
            "--format",
            "{{len .Containers}}",
        ])
        .trim()
            == "0"
    }));
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "side",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "cat",
    ]);
    assert!(
        !out.status.success(),
        "cat still resolves on side after disconnect"
    );

    // The explicit connect and disconnect are network events naming the container.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "network=side",
        "--filter",
        "event=connect",
        "--filter",
        "event=disconnect",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.container}}",
    ]);
    assert_eq!(
        ev.lines().collect::<Vec<_>>(),
        [
            format!("connect {net_id} {c}"),
            format!("disconnect {net_id} {c}")
        ],
        "{ev}"
    );
    d.ok(&["rm", "-f", "cat"]);
    d.ok(&["network", "rm", "side"]);
}
