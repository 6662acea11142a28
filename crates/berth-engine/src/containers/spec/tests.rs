use super::super::config::{ContainerConfig, DeviceMapping, HealthConfig, HostConfig, Ulimit};
use super::*;
use crate::images::Error;
use berth_store::ErrorKind;
use std::collections::BTreeMap;

const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- merge_image_config ----

fn image() -> berth_store::image::ContainerConfig {
    berth_store::image::ContainerConfig {
        env: strings(&["PATH=/img/bin", "A=image", "B=image"]),
        entrypoint: Some(strings(&["/entry"])),
        cmd: Some(strings(&["img-cmd"])),
        working_dir: "/srv".into(),
        user: "app".into(),
        stop_signal: Some("SIGQUIT".into()),
        exposed_ports: [("80/tcp".to_string(), json!({}))].into_iter().collect(),
        volumes: [("/data".to_string(), json!({}))].into_iter().collect(),
        labels: [
            ("from".to_string(), "image".to_string()),
            ("both".to_string(), "image".to_string()),
        ]
        .into_iter()
        .collect(),
        healthcheck: Some(json!({"Test": ["CMD", "true"], "Interval": 5, "Retries": 3})),
        shell: Some(strings(&["/bin/bash", "-c"])),
        on_build: Some(strings(&["RUN x"])),
        ..Default::default()
    }
}

#[test]
fn merge_env_by_key_container_wins_image_order_kept() {
    let mut c = ContainerConfig {
        env: strings(&["NEW=1", "B=container"]),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    assert_eq!(
        c.env,
        strings(&["PATH=/img/bin", "A=image", "B=container", "NEW=1"])
    );
    let mut empty = ContainerConfig::default();
    merge_image_config(&mut empty, &image());
    assert_eq!(empty.env, image().env);
}

#[test]
fn merge_cmd_and_entrypoint_rules() {
    // Nothing given: both from the image.
    let mut c = ContainerConfig::default();
    merge_image_config(&mut c, &image());
    assert_eq!(c.entrypoint, Some(strings(&["/entry"])));
    assert_eq!(c.cmd, Some(strings(&["img-cmd"])));

    // Cmd given: image entrypoint kept, container cmd.
    let mut c = ContainerConfig {
        cmd: Some(strings(&["mine"])),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    assert_eq!(c.entrypoint, Some(strings(&["/entry"])));
    assert_eq!(c.cmd, Some(strings(&["mine"])));

    // Entrypoint given without Cmd: the image's Cmd is NOT used.
    let mut c = ContainerConfig {
        entrypoint: Some(strings(&["/mine"])),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    assert_eq!(c.entrypoint, Some(strings(&["/mine"])));
    assert_eq!(c.cmd, None);

    // `--entrypoint ""`: entrypoint cleared, the image's Cmd used.
    let mut c = ContainerConfig {
        entrypoint: Some(strings(&[""])),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    assert_eq!(c.entrypoint, Some(vec![]));
    assert_eq!(c.cmd, Some(strings(&["img-cmd"])));
}

#[test]
fn merge_scalars_container_wins_else_image() {
    let mut c = ContainerConfig::default();
    merge_image_config(&mut c, &image());
    assert_eq!(c.working_dir, "/srv");
    assert_eq!(c.user, "app");
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(c.shell, Some(strings(&["/bin/bash", "-c"])));
    assert_eq!(c.on_build, Some(strings(&["RUN x"])));

    let mut c = ContainerConfig {
        working_dir: "/w".into(),
        user: "1000".into(),
        stop_signal: Some("SIGTERM".into()),
        shell: Some(strings(&["/bin/sh", "-c"])),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    assert_eq!(c.working_dir, "/w");
    assert_eq!(c.user, "1000");
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(c.shell, Some(strings(&["/bin/sh", "-c"])));
}

#[test]
fn merge_healthcheck_inherits_unset_fields() {
    let mut c = ContainerConfig::default();
    merge_image_config(&mut c, &image());
    let h = c.healthcheck.unwrap();
    assert_eq!(h.test, strings(&["CMD", "true"]));
    assert_eq!((h.interval, h.retries), (5, 3));

    // Test [] inherits the image's test; the container's interval wins.
    let mut c = ContainerConfig {
        healthcheck: Some(HealthConfig {
            test: vec![],
            interval: 9,
            ..Default::default()
        }),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    let h = c.healthcheck.unwrap();
    assert_eq!(h.test, strings(&["CMD", "true"]));
    assert_eq!((h.interval, h.retries), (9, 3));

    // ["NONE"] is the container's own choice and stays.
    let mut c = ContainerConfig {
        healthcheck: Some(HealthConfig {
            test: strings(&["NONE"]),
            ..Default::default()
        }),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    assert_eq!(c.healthcheck.unwrap().test, strings(&["NONE"]));
}

#[test]
fn merge_ports_volumes_union_labels_container_wins() {
    let mut c = ContainerConfig {
        exposed_ports: Some([("443/tcp".to_string(), json!({}))].into_iter().collect()),
        volumes: Some([("/logs".to_string(), json!({}))].into_iter().collect()),
        labels: [
            ("both".to_string(), "container".to_string()),
            ("mine".to_string(), "c".to_string()),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    merge_image_config(&mut c, &image());
    let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["443/tcp", "80/tcp"]);
    let vols: Vec<&String> = c.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(vols, ["/data", "/logs"]);
    assert_eq!(c.labels["both"], "container");
    assert_eq!(c.labels["from"], "image");
    assert_eq!(c.labels["mine"], "c");
}

// ---- build ----

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nnogroup:x:1001:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nwheel:x:10:root\napp:x:1000:\naudio:x:29:app,other\nvideo:x:44:app\nstaff:x:50:\n",
        )
        .unwrap();
        for f in ["hosts", "resolv.conf", "hostname"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        Fixture { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn build(&self, c: &ContainerConfig, h: &HostConfig, mounts: &[MountSpec]) -> Result<Value> {
        self.build_full(c, h, mounts, NetNs::Path("/proc/self/ns/net".into()), None)
    }

    fn build_full(
        &self,
        c: &ContainerConfig,
        h: &HostConfig,
        mounts: &[MountSpec],
        netns: NetNs,
        init: Option<&Path>,
    ) -> Result<Value> {
        let rootfs = self.rootfs();
        let hosts = self.dir.path().join("hosts");
        let resolv = self.dir.path().join("resolv.conf");
        let hostname = self.dir.path().join("hostname");
        build(&SpecInput {
            id: "0123456789abcdef0123456789abcdef",
            config: c,
            host: h,
            rootfs: &rootfs,
            mounts,
            netns,
            hosts_file: &hosts,
            resolv_conf: &resolv,
            hostname_file: &hostname,
            cgroups_path: "/berth/0123456789ab".into(),
            init_path: init,
        })
    }
}

fn cmd(args: &[&str]) -> ContainerConfig {
    ContainerConfig {
        cmd: Some(strings(args)),
        ..Default::default()
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn invalid_msg(r: Result<Value>) -> String {
    match r {
        Err(Error { kind, message }) => {
            assert_eq!(kind, ErrorKind::InvalidArgument, "{message}");
            message
        }
        Ok(v) => panic!("expected an InvalidArgument error, got a spec: {v}"),
    }
}

/// The spec loads and validates in berth-runtime's own config reader.
fn runtime_accepts(spec: &Value) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), spec.to_string()).unwrap();
    if let Err(e) = berth_runtime::spec::load(d.path()) {
        panic!("berth-runtime refuses the spec: {e}\n{spec:#}");
    }
}

#[test]
fn default_spec_has_dockers_confinement() {
    let f = Fixture::new();
    let s = f
        .build(&cmd(&["sh", "-c", "true"]), &HostConfig::default(), &[])
        .unwrap();
    runtime_accepts(&s);
    let p = &s["process"];
    assert_eq!(names(&p["args"]), strings(&["sh", "-c", "true"]));
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["terminal"], false);
    assert_eq!(p["noNewPrivileges"], false);
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(
            names(&p["capabilities"][set]),
            strings(&DOCKER_CAPS),
            "{set}"
        );
    }
    assert_eq!(p["capabilities"]["inheritable"], json!([]));
    assert_eq!(p["capabilities"]["ambient"], json!([]));
    let nofile = default_nofile();
    assert_eq!(
        p["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "soft": nofile, "hard": nofile}])
    );
    if has_cap_sys_resource()
        && std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            == "1048576"
    {
        assert_eq!(nofile, 1_048_576);
    }
    let env = names(&p["env"]);
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
    assert_eq!(env[1], "HOSTNAME=0123456789ab");
    assert!(env.contains(&"HOME=/root".to_string()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("TERM=")), "{env:?}");
    assert_eq!(s["hostname"], "0123456789ab");
    assert_eq!(s["root"]["readonly"], false);
    assert_eq!(s["linux"]["cgroupsPath"], "/berth/0123456789ab");
    let ns: Vec<&str> = s["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for t in ["pid", "ipc", "uts", "mount", "network"] {
        assert!(ns.contains(&t), "{ns:?}");
    }
    let net = s["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .unwrap();
    assert_eq!(net["path"], "/proc/self/ns/net");
    assert_eq!(ns.contains(&"cgroup"), host_is_cgroup2());
    assert_eq!(s["linux"]["maskedPaths"], json!(MASKED_PATHS));
    assert_eq!(s["linux"]["readonlyPaths"], json!(READONLY_PATHS));
    assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    let devs = s["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(devs[0], json!({"allow": false, "access": "rwm"}));
    let allowed: Vec<(i64, Option<i64>)> = devs[1..]
        .iter()
        .filter(|d| d["type"] == "c" && d["access"] == "rwm")
        .map(|d| (d["major"].as_i64().unwrap(), d["minor"].as_i64()))
        .collect();
    for dev in [(1, Some(3)), (1, Some(9)), (5, Some(2)), (136, None)] {
        assert!(allowed.contains(&dev), "{dev:?} not in {allowed:?}");
    }
    assert!(
        !allowed.contains(&(10, Some(200))),
        "tun is not a default device"
    );
}

#[test]
fn tty_sets_term_and_terminal() {
    let f = Fixture::new();
    let mut c = cmd(&["sh"]);
    c.tty = true;
    c.env = strings(&["TERM=vt100", "FOO=bar", "PATH=/custom"]);
    let s = f.build(&c, &HostConfig::default(), &[]).unwrap();
    assert_eq!(s["process"]["terminal"], true);
    let env = names(&s["process"]["env"]);
    assert_eq!(
        env,
        strings(&[
            "PATH=/custom",
            "HOSTNAME=0123456789ab",
            "TERM=vt100",
            "FOO=bar",
            "HOME=/root"
        ])
    );
}

#[test]
fn missing_command_is_invalid() {
    let f = Fixture::new();
    let m = invalid_msg(f.build(&ContainerConfig::default(), &HostConfig::default(), &[]));
    assert!(m.contains("no command specified"), "{m}");
}

#[test]
fn entrypoint_then_cmd_and_relative_workdir() {
    let f = Fixture::new();
    let mut c = cmd(&["a", "b"]);
    c.entrypoint = Some(strings(&["/bin/ep"]));
    c.working_dir = "/srv//app/".into();
    let s = f.build(&c, &HostConfig::default(), &[]).unwrap();
    assert_eq!(
        names(&s["process"]["args"]),
        strings(&["/bin/ep", "a", "b"])
    );
    assert_eq!(s["process"]["cwd"], "/srv/app");
    c.working_dir = "srv".into();
    let m = invalid_msg(f.build(&c, &HostConfig::default(), &[]));
    assert!(m.contains("\"srv\"") && m.contains("absolute"), "{m}");
}

#[test]
fn cap_add_and_drop() {
    let f = Fixture::new();
    let c = cmd(&["true"]);
    let caps = |h: &HostConfig| {
        names(&f.build(&c, h, &[]).unwrap()["process"]["capabilities"]["bounding"])
    };

    let h = HostConfig {
        cap_add: Some(strings(&["net_admin", "CAP_SYS_PTRACE", "Sys_Time"])),
        cap_drop: Some(strings(&["chown", "CAP_NET_RAW"])),
        ..Default::default()
    };
    let got = caps(&h);
    assert!(got.contains(&"CAP_NET_ADMIN".to_string()), "{got:?}");
    assert!(got.contains(&"CAP_SYS_PTRACE".to_string()), "{got:?}");
    assert!(got.contains(&"CAP_SYS_TIME".to_string()), "{got:?}");
    assert!(!got.contains(&"CAP_CHOWN".to_string()), "{got:?}");
    assert!(!got.contains(&"CAP_NET_RAW".to_string()), "{got:?}");
    assert_eq!(got.len(), 14 - 2 + 3);

    // Drop ALL, add one back.
    let h = HostConfig {
        cap_add: Some(strings(&["kill"])),
        cap_drop: Some(strings(&["all"])),
        ..Default::default()
    };
    assert_eq!(caps(&h), strings(&["CAP_KILL"]));

    // Add ALL, drop one.
    let h = HostConfig {
        cap_add: Some(strings(&["ALL"])),
        cap_drop: Some(strings(&["SYS_ADMIN"])),
        ..Default::default()
    };
    let got = caps(&h);
    assert!(!got.contains(&"CAP_SYS_ADMIN".to_string()));
    assert!(got.contains(&"CAP_SYS_MODULE".to_string()));
    assert_eq!(got.len(), all_caps().len() - 1);

    // Inheritable and ambient stay empty whatever is added.
    let s = f.build(&c, &h, &[]).unwrap();
    assert_eq!(s["process"]["capabilities"]["inheritable"], json!([]));
    assert_eq!(s["process"]["capabilities"]["ambient"], json!([]));
}

#[test]
fn unknown_capability_is_named() {
    let f = Fixture::new();
    let h = HostConfig {
        cap_add: Some(strings(&["NET_ADMIN", "CAP_FLY"])),
        ..Default::default()
    };
    let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
    assert!(m.contains("CAP_FLY") && m.contains("CapAdd"), "{m}");
    let h = HostConfig {
        cap_drop: Some(strings(&["nope"])),
        ..Default::default()
    };
    let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
    assert!(m.contains("\"nope\"") && m.contains("CapDrop"), "{m}");
}

fn user_of(f: &Fixture, user: &str, group_add: &[&str]) -> Result<Value> {
    let mut c = cmd(&["id"]);
    c.user = user.into();
    let h = HostConfig {
        group_add: if group_add.is_empty() {
            None
        } else {
            Some(strings(group_add))
        },
        ..Default::default()
    };
    f.build(&c, &h, &[]).map(|s| s["process"]["user"].clone())
}

#[test]
fn user_resolution_against_the_rootfs() {
    let f = Fixture::new();
    assert_eq!(
        user_of(&f, "", &[]).unwrap(),
        json!({"uid": 0, "gid": 0, "additionalGids": [10]})
    );
    assert_eq!(
        user_of(&f, "app", &[]).unwrap(),
        json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 44]})
    );
    assert_eq!(
        user_of(&f, "1000", &[]).unwrap(),
        json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 44]})
    );
    // An explicit group: that gid, and no supplementary groups from /etc/group.
    assert_eq!(
        user_of(&f, "app:staff", &[]).unwrap(),
        json!({"uid": 1000, "gid": 50})
    );
    assert_eq!(
        user_of(&f, "1000:7", &[]).unwrap(),
        json!({"uid": 1000, "gid": 7})
    );
    assert_eq!(
        user_of(&f, "4242:staff", &[]).unwrap(),
        json!({"uid": 4242, "gid": 50})
    );
    // A numeric uid missing from passwd is fine.
    assert_eq!(
        user_of(&f, "4242", &[]).unwrap(),
        json!({"uid": 4242, "gid": 0})
    );
    // GroupAdd, names and numbers, after the /etc/group ones.
    assert_eq!(
        user_of(&f, "app", &["staff", "99", "audio"]).unwrap(),
        json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 44, 50, 99]})
    );
    // HOME from passwd.
    let mut c = cmd(&["id"]);
    c.user = "app".into();
    let s = f.build(&c, &HostConfig::default(), &[]).unwrap();
    assert!(names(&s["process"]["env"]).contains(&"HOME=/home/app".to_string()));
}

#[test]
fn unknown_user_or_group_is_invalid() {
    let f = Fixture::new();
    let m = invalid_msg(user_of(&f, "ghost", &[]));
    assert!(
        m.contains("unable to find user ghost: no matching entries in passwd file"),
        "{m}"
    );
    let m = invalid_msg(user_of(&f, "app:ghosts", &[]));
    assert!(m.contains("unable to find group ghosts"), "{m}");
    let m = invalid_msg(user_of(&f, "app", &["phantoms"]));
    assert!(m.contains("phantoms") && m.contains("GroupAdd"), "{m}");
}

#[test]
fn passwd_symlink_does_not_leave_the_rootfs() {
    // /etc/passwd -> /etc/../../../host-passwd: resolved inside the rootfs, it is
    // <rootfs>/host-passwd; the host file next to the rootfs must not be read.
    let f = Fixture::new();
    let root = f.rootfs();
    std::fs::write(f.dir.path().join("host-passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
    std::fs::remove_file(root.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink("/etc/../../../host-passwd", root.join("etc/passwd")).unwrap();
    let m = invalid_msg(user_of(&f, "evil", &[]));
    assert!(m.contains("unable to find user evil"), "{m}");

    // The same link target, present inside the rootfs, is what gets read.
    std::fs::write(root.join("host-passwd"), "inside:x:777:777::/in:/bin/sh\n").unwrap();
    assert_eq!(
        user_of(&f, "inside", &[]).unwrap(),
        json!({"uid": 777, "gid": 777})
    );
    assert!(user_of(&f, "evil", &[]).is_err());

    // An absolute link to a host file resolves inside the rootfs too.
    std::fs::remove_file(root.join("etc/passwd")).unwrap();
    let host_file = f.dir.path().join("host-passwd");
    std::os::unix::fs::symlink(&host_file, root.join("etc/passwd")).unwrap();
    let m = invalid_msg(user_of(&f, "evil", &[]));
    assert!(m.contains("unable to find user evil"), "{m}");
}

#[test]
fn passwd_that_is_not_a_file_is_refused() {
    let f = Fixture::new();
    let root = f.rootfs();
    std::fs::remove_file(root.join("etc/passwd")).unwrap();
    nix::unistd::mkfifo(
        &root.join("etc/passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let m = invalid_msg(user_of(&f, "app", &[]));
    assert!(
        m.contains("/etc/passwd") && m.contains("not a regular file"),
        "{m}"
    );
}

fn mount_of<'a>(s: &'a Value, dest: &str) -> &'a Value {
    s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dest)
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

#[test]
fn readonly_rootfs() {
    let f = Fixture::new();
    let h = HostConfig {
        readonly_rootfs: true,
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    assert_eq!(s["root"]["readonly"], true);
    for d in ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"] {
        assert_eq!(
            mount_of(&s, d)["options"],
            json!(["rbind", "rprivate", "ro"]),
            "{d}"
        );
    }
    let s = f
        .build(&cmd(&["true"]), &HostConfig::default(), &[])
        .unwrap();
    assert_eq!(
        mount_of(&s, "/etc/hosts")["options"],
        json!(["rbind", "rprivate"])
    );
    assert_eq!(
        mount_of(&s, "/etc/hosts")["source"],
        json!(f.dir.path().join("hosts"))
    );
}

#[test]
fn privileged_lifts_confinement() {
    let f = Fixture::new();
    let h = HostConfig {
        privileged: true,
        security_opt: Some(strings(&["no-new-privileges"])),
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    runtime_accepts(&s);
    let caps = names(&s["process"]["capabilities"]["bounding"]);
    assert_eq!(caps, all_caps());
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
    assert_eq!(s["process"]["capabilities"]["inheritable"], json!([]));
    assert!(s["linux"].get("seccomp").is_none());
    assert!(s["linux"].get("maskedPaths").is_none());
    assert!(s["linux"].get("readonlyPaths").is_none());
    assert_eq!(
        s["linux"]["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    assert!(names(&mount_of(&s, "/sys")["options"]).contains(&"rw".to_string()));
    let devices = s["linux"]["devices"].as_array().unwrap();
    let paths: Vec<&str> = devices
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/dev/null"), "{paths:?}");
    assert!(!paths.contains(&"/dev/console"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("/dev/pts/")),
        "{paths:?}"
    );
    let null = devices.iter().find(|d| d["path"] == "/dev/null").unwrap();
    assert_eq!(
        (&null["type"], &null["major"], &null["minor"]),
        (&json!("c"), &json!(1), &json!(3))
    );
    assert_eq!(s["process"]["noNewPrivileges"], true);
}

#[test]
fn user_device_is_added_and_allowed() {
    let f = Fixture::new();
    let h = HostConfig {
        devices: Some(vec![DeviceMapping {
            path_on_host: "/dev/null".into(),
            path_in_container: "/dev/mynull".into(),
            cgroup_permissions: "rw".into(),
        }]),
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    runtime_accepts(&s);
    assert_eq!(s["linux"]["devices"][0]["path"], "/dev/mynull");
    assert_eq!(s["linux"]["devices"][0]["major"], 1);
    let last = s["linux"]["resources"]["devices"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last,
        json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
    );
    let h = HostConfig {
        devices: Some(vec![DeviceMapping {
            path_on_host: "/etc/hostname".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
    assert!(
        m.contains("/etc/hostname") && m.contains("not a device"),
        "{m}"
    );
}

#[test]
fn tmpfs_options_default_and_override() {
    let f = Fixture::new();
    let mounts = [
        MountSpec {
            destination: "/run".into(),
            kind: MountKind::Tmpfs {
                options: strings(&["size=64m", "mode=1777"]),
            },
            read_only: false,
        },
        MountSpec {
            destination: "/scratch".into(),
            kind: MountKind::Tmpfs {
                options: strings(&["exec,size=1g", "size=2g"]),
            },
            read_only: true,
        },
    ];
    let s = f
        .build(&cmd(&["true"]), &HostConfig::default(), &mounts)
        .unwrap();
    let run = mount_of(&s, "/run");
    assert_eq!(run["type"], "tmpfs");
    assert_eq!(run["source"], "tmpfs");
    assert_eq!(
        run["options"],
        json!(["noexec", "nosuid", "nodev", "size=64m", "mode=1777"])
    );
    assert_eq!(
        mount_of(&s, "/scratch")["options"],
        json!(["nosuid", "nodev", "exec", "size=2g", "ro"])
    );
}

#[test]
fn mount_order_and_bind_options() {
    let f = Fixture::new();
    let bind = |dest: &str, ro: bool, prop: &str, rec: bool| MountSpec {
        destination: dest.into(),
        kind: MountKind::Bind {
            source: PathBuf::from("/srv").join(dest.trim_start_matches('/')),
            propagation: prop.into(),
            recursive: rec,
        },
        read_only: ro,
    };
    let mounts = [
        bind("/a/b/c", false, "", true),
        bind("/a", true, "rshared", true),
        bind("/x/y", false, "", false),
        bind("/etc/hosts", true, "", true),
        MountSpec {
            destination: "/dev/shm".into(),
            kind: MountKind::Tmpfs { options: vec![] },
            read_only: false,
        },
    ];
    let s = f
        .build(&cmd(&["true"]), &HostConfig::default(), &mounts)
        .unwrap();
    runtime_accepts(&s);
    let dests: Vec<&str> = s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/a",
            "/x/y",
            "/etc/hosts",
            "/dev/shm",
            "/a/b/c",
            "/etc/resolv.conf",
            "/etc/hostname",
        ]
    );
    assert_eq!(
        mount_of(&s, "/a")["options"],
        json!(["rbind", "ro", "rshared"])
    );
    assert_eq!(mount_of(&s, "/a")["source"], "/srv/a");
    assert_eq!(
        mount_of(&s, "/a/b/c")["options"],
        json!(["rbind", "rprivate"])
    );
    assert_eq!(mount_of(&s, "/x/y")["options"], json!(["bind", "rprivate"]));
    // The user's /etc/hosts replaces the engine's.
    assert_eq!(mount_of(&s, "/etc/hosts")["source"], "/srv/etc/hosts");

    let bad = [bind("relative", false, "", true)];
    let m = invalid_msg(f.build(&cmd(&["true"]), &HostConfig::default(), &bad));
    assert!(m.contains("\"relative\"") && m.contains("absolute"), "{m}");
    let bad = [bind("/a", false, "sideways", true)];
    let m = invalid_msg(f.build(&cmd(&["true"]), &HostConfig::default(), &bad));
    assert!(m.contains("sideways"), "{m}");
}

#[test]
fn default_mount_options() {
    let f = Fixture::new();
    let s = f
        .build(&cmd(&["true"]), &HostConfig::default(), &[])
        .unwrap();
    assert_eq!(
        mount_of(&s, "/dev/shm")["options"],
        json!(["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"])
    );
    assert_eq!(
        mount_of(&s, "/dev/pts")["options"],
        json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ])
    );
    assert_eq!(
        mount_of(&s, "/sys")["options"],
        json!(["nosuid", "noexec", "nodev", "ro"])
    );
    let h = HostConfig {
        shm_size: 1 << 30,
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    assert!(names(&mount_of(&s, "/dev/shm")["options"]).contains(&"size=1073741824".to_string()));
}

#[test]
fn init_wraps_args_and_needs_a_binary() {
    let f = Fixture::new();
    let h = HostConfig {
        init: Some(true),
        ..Default::default()
    };
    let m = invalid_msg(f.build(&cmd(&["sleep", "1"]), &h, &[]));
    assert!(m.contains("no init binary") && m.contains("tini"), "{m}");
    let s = f
        .build_full(
            &cmd(&["sleep", "1"]),
            &h,
            &[],
            NetNs::Path("/proc/self/ns/net".into()),
            Some(Path::new("/usr/bin/tini-static")),
        )
        .unwrap();
    assert_eq!(
        names(&s["process"]["args"]),
        strings(&["/sbin/docker-init", "--", "sleep", "1"])
    );
    let m = mount_of(&s, "/sbin/docker-init");
    assert_eq!(m["source"], "/usr/bin/tini-static");
    assert!(names(&m["options"]).contains(&"ro".to_string()));
}

#[test]
fn host_network_has_no_net_or_uts_namespace() {
    let f = Fixture::new();
    let s = f
        .build_full(
            &cmd(&["true"]),
            &HostConfig::default(),
            &[],
            NetNs::Host,
            None,
        )
        .unwrap();
    runtime_accepts(&s);
    let ns: Vec<&str> = s["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(!ns.contains(&"network") && !ns.contains(&"uts"), "{ns:?}");
    assert!(s.get("hostname").is_none());
    let env = names(&s["process"]["env"]);
    assert!(
        env.contains(&format!("HOSTNAME={}", host_hostname())),
        "{env:?}"
    );
}

#[test]
fn nano_cpus_and_other_resources() {
    let f = Fixture::new();
    let h = HostConfig {
        nano_cpus: 1_500_000_000,
        cpu_shares: 512,
        memory: 256 << 20,
        pids_limit: Some(100),
        blkio_weight: 300,
        cpuset_cpus: "0-1".into(),
        ulimits: Some(vec![
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048,
            },
            Ulimit {
                name: "core".into(),
                soft: -1,
                hard: -1,
            },
        ]),
        oom_score_adj: 500,
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    runtime_accepts(&s);
    let r = &s["linux"]["resources"];
    assert_eq!(r["cpu"]["quota"], 150_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["cpu"]["shares"], 512);
    assert_eq!(r["cpu"]["cpus"], "0-1");
    assert_eq!(r["memory"]["limit"], 256 << 20);
    assert_eq!(r["memory"]["swap"], 512 << 20);
    assert_eq!(r["pids"]["limit"], 100);
    assert_eq!(r["blockIO"]["weight"], 300);
    assert_eq!(s["process"]["oomScoreAdj"], 500);
    assert_eq!(
        s["process"]["rlimits"],
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX}
        ])
    );

    let h = HostConfig {
        nano_cpus: 500_000_000,
        cpu_quota: 20000,
        ..Default::default()
    };
    let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
    assert!(m.contains("NanoCpus"), "{m}");
    let h = HostConfig {
        memory: 64 << 20,
        memory_swap: -1,
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    assert_eq!(s["linux"]["resources"]["memory"]["swap"], -1);
    let h = HostConfig {
        ulimits: Some(vec![Ulimit {
            name: "bogus".into(),
            soft: 1,
            hard: 1,
        }]),
        ..Default::default()
    };
    let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
    assert!(m.contains("\"bogus\""), "{m}");
}

#[test]
fn seccomp_unconfined_and_custom_profiles() {
    let f = Fixture::new();
    let h = HostConfig {
        security_opt: Some(strings(&[
            "seccomp=unconfined",
            "apparmor=unconfined",
            "label=disable",
        ])),
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    assert!(s["linux"].get("seccomp").is_none());
    assert!(s["linux"].get("maskedPaths").is_some());

    let profile = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }"#;
    let h = HostConfig {
        security_opt: Some(vec![format!("seccomp={profile}")]),
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    runtime_accepts(&s);
    let sc = &s["linux"]["seccomp"];
    assert_eq!(sc["defaultErrnoRet"], 1);
    let all: Vec<String> = sc["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| names(&r["names"]))
        .collect();
    assert!(all.contains(&"getpid".to_string()), "{all:?}");
    assert!(all.contains(&"chroot".to_string()), "{all:?}");
    assert!(all.contains(&"clone".to_string()), "{all:?}");
    assert!(!all.contains(&"mount".to_string()), "{all:?}");
    let arches = names(&sc["architectures"]);
    assert_eq!(
        arches.len(),
        if cfg!(target_arch = "x86_64") { 3 } else { 2 }
    );

    for (bad, needle) in [
        ("{not json", "seccomp"),
        (
            r#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#,
            "SCMP_ACT_EXPLODE",
        ),
        (r#"{"syscalls": []}"#, "defaultAction"),
    ] {
        let h = HostConfig {
            security_opt: Some(vec![format!("seccomp={bad}")]),
            ..Default::default()
        };
        let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
        assert!(m.contains(needle) && m.contains("seccomp profile"), "{m}");
    }
}

#[test]
fn bad_security_opt_is_named() {
    let f = Fixture::new();
    for (opt, needle) in [
        ("no-such-thing=1", "no-such-thing"),
        ("no-new-privileges=maybe", "maybe"),
        ("systempaths=open", "systempaths"),
    ] {
        let h = HostConfig {
            security_opt: Some(strings(&[opt])),
            ..Default::default()
        };
        let m = invalid_msg(f.build(&cmd(&["true"]), &h, &[]));
        assert!(m.contains(needle), "{opt}: {m}");
    }
    for ok in [
        "no-new-privileges:true",
        "no-new-privileges=true",
        "no-new-privileges",
    ] {
        let h = HostConfig {
            security_opt: Some(strings(&[ok])),
            ..Default::default()
        };
        let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
        assert_eq!(s["process"]["noNewPrivileges"], true, "{ok}");
    }
}

#[test]
fn masked_and_readonly_paths_can_be_replaced() {
    let f = Fixture::new();
    let h = HostConfig {
        masked_paths: Some(strings(&["/proc/x"])),
        readonly_paths: Some(vec![]),
        sysctls: Some(BTreeMap::from([(
            "net.ipv4.ip_forward".to_string(),
            "1".to_string(),
        )])),
        ..Default::default()
    };
    let s = f.build(&cmd(&["true"]), &h, &[]).unwrap();
    assert_eq!(s["linux"]["maskedPaths"], json!(["/proc/x"]));
    assert_eq!(s["linux"]["readonlyPaths"], json!([]));
    assert_eq!(s["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
}

#[test]
fn default_seccomp_serializes_as_oci_json() {
    let v = serde_json::to_value(berth_runtime::seccomp::docker_default()).unwrap();
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    let first = &v["syscalls"][0];
    assert!(first["names"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "read"));
    assert_eq!(first["action"], "SCMP_ACT_ALLOW");
    let back: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
    assert_eq!(back, berth_runtime::seccomp::docker_default());
}

#[test]
fn validate_refuses_at_create_what_build_would_refuse() {
    let c = cmd(&["true"]);
    assert!(validate(&c, &HostConfig::default()).is_ok());
    let cases: Vec<(HostConfig, &str)> = vec![
        (
            HostConfig {
                cap_add: Some(strings(&["NOT_A_CAP"])),
                ..Default::default()
            },
            "NOT_A_CAP",
        ),
        (
            HostConfig {
                security_opt: Some(strings(&["bogus=1"])),
                ..Default::default()
            },
            "bogus",
        ),
        (
            HostConfig {
                security_opt: Some(strings(&["seccomp={\"defaultAction\": \"SCMP_ACT_NOPE\"}"])),
                ..Default::default()
            },
            "SCMP_ACT_NOPE",
        ),
        (
            HostConfig {
                ulimits: Some(vec![Ulimit {
                    name: "nofile".into(),
                    soft: 10,
                    hard: 5,
                }]),
                ..Default::default()
            },
            "soft limit 10",
        ),
        (
            HostConfig {
                oom_score_adj: 5000,
                ..Default::default()
            },
            "OomScoreAdj",
        ),
        (
            HostConfig {
                pid_mode: "container:abc".into(),
                ..Default::default()
            },
            "PidMode",
        ),
        (
            HostConfig {
                memory: 1024,
                ..Default::default()
            },
            "6MB",
        ),
        (
            HostConfig {
                devices: Some(vec![DeviceMapping {
                    path_on_host: "/no/such/device".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            "/no/such/device",
        ),
    ];
    for (h, needle) in cases {
        match validate(&c, &h) {
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::InvalidArgument, "{}", e.message);
                assert!(e.message.contains(needle), "{needle}: {}", e.message);
            }
            Ok(()) => panic!("validate accepted a body with {needle}"),
        }
    }
    let mut rel = cmd(&["true"]);
    rel.working_dir = "app".into();
    assert!(validate(&rel, &HostConfig::default()).is_err());
}
