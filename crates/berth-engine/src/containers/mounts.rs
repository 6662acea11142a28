//! A container's mounts from `HostConfig.Binds`, `HostConfig.Mounts`, `HostConfig.Tmpfs` and
//! the image's `Volumes`, parsed and validated as Docker does, at container create.
//!
//! * `Binds` (`-v`): `src:dst[:opts]`. An absolute `src` is a bind mount (a missing host
//!   directory is created at start: `create_missing`), anything else a volume name. Options,
//!   comma-separated: `ro`/`rw`, `z`/`Z` (SELinux relabel: accepted and ignored),
//!   `shared`/`slave`/`private`/`rshared`/`rslave`/`rprivate` (binds only), `nocopy`
//!   (volumes only).
//! * `Mounts` (`--mount`): `bind` (the source must exist: checked here, at create, with
//!   Docker's message), `volume` (an empty source is an anonymous volume; `NoCopy`, `Labels`),
//!   `tmpfs` (`SizeBytes` → `size=N`, `Mode` → `mode=0NNN`, `ReadOnly` → `ro`).
//! * `Tmpfs` (`--tmpfs /run:size=64m`): the options split on commas.
//! * The image's `Volumes`: each destination no other mount covers becomes an anonymous
//!   volume.
//!
//! Destinations are absolute, not `/`, compared after cleaning (`/data/` is `/data`); two
//! mounts on one destination are refused with Docker's `Duplicate mount point: /x`. The result
//! is ordered parents first (by number of path components, then as given), the order in which
//! they must be mounted.

use super::config::{HostConfig, Mount};
use crate::images::{Error, Result};
use std::collections::BTreeMap;

/// One requested mount, before host-side resolution.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MountRequest {
    Bind {
        source: String,
        destination: String,
        read_only: bool,
        propagation: String,
        /// `-v` creates a missing host directory; `--mount` refuses it.
        create_missing: bool,
    },
    Volume {
        /// `None`: anonymous (a fresh random name is chosen at create time).
        name: Option<String>,
        destination: String,
        read_only: bool,
        /// Do not copy the image's content at `destination` into a new volume.
        no_copy: bool,
        labels: BTreeMap<String, String>,
    },
    Tmpfs {
        destination: String,
        options: Vec<String>,
    },
}

impl MountRequest {
    pub fn destination(&self) -> &str {
        match self {
            MountRequest::Bind { destination, .. }
            | MountRequest::Volume { destination, .. }
            | MountRequest::Tmpfs { destination, .. } => destination,
        }
    }
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "slave", "private", "rshared", "rslave", "rprivate",
];

/// `path` cleaned like Go's `filepath.Clean` for an absolute path: no empty or `.`
/// components, `..` applied lexically (never above `/`), no trailing slash.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A destination: absolute and not `/`; returned cleaned.
fn destination(dst: &str, what: &dyn Fn() -> String) -> Result<String> {
    if dst.is_empty() {
        return Err(Error::invalid(format!(
            "{}: the destination (path in the container) must not be empty",
            what()
        )));
    }
    if !dst.starts_with('/') {
        return Err(Error::invalid(format!(
            "{}: invalid mount path: '{dst}' mount path must be absolute",
            what()
        )));
    }
    let c = clean(dst);
    if c == "/" {
        return Err(Error::invalid(format!(
            "{}: invalid specification: destination can't be '/'",
            what()
        )));
    }
    Ok(c)
}

fn volume_name(name: &str, what: &dyn Fn() -> String) -> Result<()> {
    if crate::volumes::valid_name(name) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}: \"{name}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path",
        what()
    )))
}

/// One `HostConfig.Binds` entry.
fn parse_bind(spec: &str) -> Result<MountRequest> {
    let what = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        // `-v /data` sent as a bind: an anonymous volume.
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => {
            return Err(Error::invalid(format!(
                "{}: expected source:destination[:options]",
                what()
            )))
        }
    };
    let dst = destination(dst, &what)?;
    let mut read_only = None;
    let mut propagation = String::new();
    let mut no_copy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if read_only.is_none() => read_only = Some(o == "ro"),
            "z" | "Z" => {}
            p if PROPAGATIONS.contains(&p) && propagation.is_empty() => propagation = p.to_string(),
            "nocopy" if !no_copy => no_copy = true,
            _ => {
                return Err(Error::invalid(format!(
                    "{}: invalid mode: {o} (use ro or rw, z or Z, a propagation \
                     (shared, slave, private, rshared, rslave, rprivate) or nocopy, each once)",
                    what()
                )))
            }
        }
    }
    let read_only = read_only.unwrap_or(false);
    if src.starts_with('/') {
        if no_copy {
            return Err(Error::invalid(format!(
                "{}: nocopy applies only to volumes, not to bind mounts",
                what()
            )));
        }
        return Ok(MountRequest::Bind {
            source: clean(src),
            destination: dst,
            read_only,
            propagation,
            create_missing: true,
        });
    }
    if !propagation.is_empty() {
        return Err(Error::invalid(format!(
            "{}: propagation ({propagation}) applies only to bind mounts, not to volumes",
            what()
        )));
    }
    let name = if src.is_empty() {
        None
    } else {
        volume_name(src, &what)?;
        Some(src.to_string())
    };
    Ok(MountRequest::Volume {
        name,
        destination: dst,
        read_only,
        no_copy,
        labels: BTreeMap::new(),
    })
}

/// One `HostConfig.Mounts` entry.
fn parse_mount(m: &Mount) -> Result<MountRequest> {
    let kind = m.kind.as_str();
    let what = || format!("invalid mount config for type \"{kind}\"");
    let no_field = |present: bool, field: &str| -> Result<()> {
        if present {
            return Err(Error::invalid(format!(
                "{}: field {field} must not be specified",
                what()
            )));
        }
        Ok(())
    };
    if m.target.is_empty() {
        return Err(Error::invalid(format!(
            "{}: field Target must not be empty",
            what()
        )));
    }
    let dst = destination(&m.target, &what)?;
    match kind {
        "bind" => {
            no_field(m.volume_options.is_some(), "VolumeOptions")?;
            no_field(m.tmpfs_options.is_some(), "TmpfsOptions")?;
            if m.source.is_empty() {
                return Err(Error::invalid(format!(
                    "{}: field Source must not be empty",
                    what()
                )));
            }
            if !m.source.starts_with('/') {
                return Err(Error::invalid(format!(
                    "{}: invalid mount path: '{}' mount path must be absolute",
                    what(),
                    m.source
                )));
            }
            let source = clean(&m.source);
            // Checked at create, as Docker does (the start re-checks when it mounts).
            if std::fs::metadata(&source).is_err() {
                return Err(Error::invalid(format!(
                    "{}: bind source path does not exist: {source}",
                    what()
                )));
            }
            let bo = m.bind_options.clone().unwrap_or_default();
            if !bo.propagation.is_empty() && !PROPAGATIONS.contains(&bo.propagation.as_str()) {
                return Err(Error::invalid(format!(
                    "{}: invalid propagation mode: {} (use shared, slave, private, rshared, \
                     rslave or rprivate)",
                    what(),
                    bo.propagation
                )));
            }
            Ok(MountRequest::Bind {
                source,
                destination: dst,
                read_only: m.read_only,
                propagation: bo.propagation,
                create_missing: false,
            })
        }
        "volume" => {
            no_field(m.bind_options.is_some(), "BindOptions")?;
            no_field(m.tmpfs_options.is_some(), "TmpfsOptions")?;
            let vo = m.volume_options.clone().unwrap_or_default();
            if !vo.subpath.is_empty() {
                return Err(Error::invalid(format!(
                    "{}: VolumeOptions.Subpath is not supported by Berth yet; mount the whole \
                     volume",
                    what()
                )));
            }
            if let Some(dc) = vo.driver_config.as_ref().filter(|d| !d.is_null()) {
                let name = dc.get("Name").and_then(|n| n.as_str()).unwrap_or("");
                if !name.is_empty() && name != "local" {
                    return Err(Error::invalid(format!(
                        "{}: volume driver \"{name}\" is not supported: Berth has only the \
                         \"local\" driver",
                        what()
                    )));
                }
            }
            let name = if m.source.is_empty() {
                None
            } else {
                volume_name(&m.source, &what)?;
                Some(m.source.clone())
            };
            Ok(MountRequest::Volume {
                name,
                destination: dst,
                read_only: m.read_only,
                no_copy: vo.no_copy,
                labels: vo.labels,
            })
        }
        "tmpfs" => {
            no_field(!m.source.is_empty(), "Source")?;
            no_field(m.bind_options.is_some(), "BindOptions")?;
            no_field(m.volume_options.is_some(), "VolumeOptions")?;
            let mut options = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes < 0 {
                    return Err(Error::invalid(format!(
                        "{}: TmpfsOptions.SizeBytes must not be negative",
                        what()
                    )));
                }
                if t.size_bytes > 0 {
                    options.push(format!("size={}", t.size_bytes));
                }
                if let Some(mode) = t.mode {
                    if mode > 0o7777 {
                        return Err(Error::invalid(format!(
                            "{}: TmpfsOptions.Mode {mode:o} is not a permission mode (0-07777)",
                            what()
                        )));
                    }
                    options.push(format!("mode={mode:04o}"));
                }
            }
            if m.read_only {
                options.push("ro".into());
            }
            Ok(MountRequest::Tmpfs {
                destination: dst,
                options,
            })
        }
        "" => Err(Error::invalid(
            "invalid mount config: mount type must be given (bind, volume or tmpfs)",
        )),
        other => Err(Error::invalid(format!(
            "invalid mount config: mount type \"{other}\" is not supported: use bind, volume \
             or tmpfs"
        ))),
    }
}

/// Parse and validate every mount of a container; image volumes not covered by another mount
/// become anonymous volumes. Errors are `InvalidArgument` naming the offending entry.
pub fn parse(
    host: &HostConfig,
    image_volumes: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<MountRequest>> {
    let mut out: Vec<MountRequest> = Vec::new();
    let push = |m: MountRequest, out: &mut Vec<MountRequest>| -> Result<()> {
        if out.iter().any(|o| o.destination() == m.destination()) {
            return Err(Error::invalid(format!(
                "Duplicate mount point: {}",
                m.destination()
            )));
        }
        out.push(m);
        Ok(())
    };
    for b in host.binds.iter().flatten() {
        push(parse_bind(b)?, &mut out)?;
    }
    for m in host.mounts.iter().flatten() {
        push(parse_mount(m)?, &mut out)?;
    }
    for (dst, opts) in host.tmpfs.iter().flatten() {
        let what = || format!("invalid tmpfs mount '{dst}'");
        let destination = destination(dst, &what)?;
        let options = opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        push(
            MountRequest::Tmpfs {
                destination,
                options,
            },
            &mut out,
        )?;
    }
    for dst in image_volumes.keys() {
        let what = || format!("image volume '{dst}'");
        let destination = destination(dst, &what)?;
        if out.iter().any(|o| o.destination() == destination) {
            continue;
        }
        out.push(MountRequest::Volume {
            name: None,
            destination,
            read_only: false,
            no_copy: false,
            labels: BTreeMap::new(),
        });
    }
    // Parents before children (a stable sort keeps the given order otherwise).
    out.sort_by_key(|m| m.destination().matches('/').count());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::config::{BindOptions, TmpfsOptions, VolumeOptions};
    use super::*;

    fn host(binds: &[&str]) -> HostConfig {
        HostConfig {
            binds: Some(binds.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn none() -> BTreeMap<String, serde_json::Value> {
        BTreeMap::new()
    }

    fn err(h: &HostConfig) -> String {
        let e = parse(h, &none()).unwrap_err();
        assert_eq!(e.kind(), berth_store::ErrorKind::InvalidArgument);
        e.message
    }

    #[test]
    fn binds() {
        let m = parse(
            &host(&[
                "/srv/a:/a",
                "/srv/b/:/b/:ro,rshared,z",
                "data:/data:nocopy,rw",
            ]),
            &none(),
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                MountRequest::Bind {
                    source: "/srv/a".into(),
                    destination: "/a".into(),
                    read_only: false,
                    propagation: "".into(),
                    create_missing: true,
                },
                MountRequest::Bind {
                    source: "/srv/b".into(),
                    destination: "/b".into(),
                    read_only: true,
                    propagation: "rshared".into(),
                    create_missing: true,
                },
                MountRequest::Volume {
                    name: Some("data".into()),
                    destination: "/data".into(),
                    read_only: false,
                    no_copy: true,
                    labels: BTreeMap::new(),
                },
            ]
        );
        assert!(matches!(
            &parse(&host(&["/anon"]), &none()).unwrap()[0],
            MountRequest::Volume { name: None, .. }
        ));
        assert!(err(&host(&["/a:rel"])).contains("must be absolute"));
        assert!(err(&host(&["/a:/"])).contains("destination can't be '/'"));
        assert!(err(&host(&["/a:/b:ro,rw"])).contains("invalid mode: rw"));
        assert!(err(&host(&["/a:/b:bogus"])).contains("invalid mode: bogus"));
        assert!(err(&host(&["/a:/b:nocopy"])).contains("nocopy applies only to volumes"));
        assert!(err(&host(&["v1:/b:rshared"])).contains("only to bind mounts"));
        assert!(err(&host(&["./rel:/b"]))
            .contains("includes invalid characters for a local volume name"));
        assert!(err(&host(&["a:b:c:d"])).contains("invalid volume specification: 'a:b:c:d'"));
        assert_eq!(
            err(&host(&["/a:/x", "v1:/x/"])),
            "Duplicate mount point: /x"
        );
    }

    #[test]
    fn mounts() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().to_str().unwrap().to_string();
        let mk = |kind: &str, source: &str, target: &str| Mount {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        };
        let mut bind = mk("bind", &src, "/b");
        bind.read_only = true;
        bind.bind_options = Some(BindOptions {
            propagation: "rslave".into(),
            ..Default::default()
        });
        let mut vol = mk("volume", "", "/v");
        vol.volume_options = Some(VolumeOptions {
            no_copy: true,
            labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
            ..Default::default()
        });
        let mut tmp = mk("tmpfs", "", "/t");
        tmp.tmpfs_options = Some(TmpfsOptions {
            size_bytes: 1 << 20,
            mode: Some(0o1777),
        });
        let h = HostConfig {
            mounts: Some(vec![bind, vol, tmp]),
            ..Default::default()
        };
        let m = parse(&h, &none()).unwrap();
        assert_eq!(
            m[0],
            MountRequest::Bind {
                source: src.clone(),
                destination: "/b".into(),
                read_only: true,
                propagation: "rslave".into(),
                create_missing: false,
            }
        );
        assert_eq!(
            m[1],
            MountRequest::Volume {
                name: None,
                destination: "/v".into(),
                read_only: false,
                no_copy: true,
                labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
            }
        );
        assert_eq!(
            m[2],
            MountRequest::Tmpfs {
                destination: "/t".into(),
                options: vec!["size=1048576".into(), "mode=1777".into()],
            }
        );
        let one = |m: Mount| {
            err(&HostConfig {
                mounts: Some(vec![m]),
                ..Default::default()
            })
        };
        assert_eq!(
            one(mk("bind", "/no/such/dir/x", "/b")),
            "invalid mount config for type \"bind\": bind source path does not exist: \
             /no/such/dir/x"
        );
        assert!(one(mk("tmpfs", "/x", "/t")).contains("field Source must not be specified"));
        assert!(one(mk("volume", "x", "")).contains("field Target must not be empty"));
        assert!(one(mk("npipe", "x", "/t")).contains("\"npipe\" is not supported"));
        let mut v = mk("volume", "ok1", "/t");
        v.bind_options = Some(BindOptions::default());
        assert!(one(v).contains("field BindOptions must not be specified"));
        // The same destination from -v and --mount.
        let h = HostConfig {
            binds: Some(vec!["/srv:/same".into()]),
            mounts: Some(vec![mk("tmpfs", "", "/same")]),
            ..Default::default()
        };
        assert_eq!(err(&h), "Duplicate mount point: /same");
    }

    #[test]
    fn tmpfs_and_image_volumes() {
        let h = HostConfig {
            binds: Some(vec!["data:/var/lib/data".into()]),
            tmpfs: Some(BTreeMap::from([
                ("/run".to_string(), "size=64m,mode=1777".to_string()),
                ("/tmp".to_string(), String::new()),
            ])),
            ..Default::default()
        };
        let img = BTreeMap::from([
            ("/var/lib/data/".to_string(), serde_json::json!({})),
            ("/cache".to_string(), serde_json::json!({})),
        ]);
        let m = parse(&h, &img).unwrap();
        let dsts: Vec<&str> = m.iter().map(|m| m.destination()).collect();
        // Parents first; the image's /var/lib/data is covered by the -v.
        assert_eq!(dsts, ["/run", "/tmp", "/cache", "/var/lib/data"]);
        assert_eq!(
            m[0],
            MountRequest::Tmpfs {
                destination: "/run".into(),
                options: vec!["size=64m".into(), "mode=1777".into()],
            }
        );
        assert_eq!(
            m[1],
            MountRequest::Tmpfs {
                destination: "/tmp".into(),
                options: vec![],
            }
        );
        assert!(matches!(&m[2], MountRequest::Volume { name: None, .. }));
        assert!(matches!(&m[3], MountRequest::Volume { name: Some(n), .. } if n == "data"));
        let h = HostConfig {
            binds: Some(vec!["/srv:/run".into()]),
            tmpfs: Some(BTreeMap::from([("/run".to_string(), String::new())])),
            ..Default::default()
        };
        assert_eq!(err(&h), "Duplicate mount point: /run");
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/../.."), "/");
    }
}
