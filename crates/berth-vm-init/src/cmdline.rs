//! The kernel command line as the host sets it:
//! `console=ttyS0 quiet berth.data=/dev/vda berth.share=home:/root`.
//!
//! Keys the init reads (everything else is the kernel's and ignored):
//! - `berth.data=<block device>`: the persistent data disk (formatted on first boot). Without
//!   it berthd's data root is a tmpfs (nothing survives a reboot).
//! - `berth.share=<mount tag>:<guest mount point>[:9p|:virtiofs]`: repeatable, and a value may
//!   hold a comma-separated list (`berth.share=home:/root:virtiofs,src:/src`). The transport
//!   defaults to 9p (what hosts that predate virtiofs give).
//! - `berth.loglevel=<debug|info|warn|error>`: passed to berthd as `--log-level`.
//!
//! A malformed value is never fatal: it is skipped and reported in [`BootConfig::warnings`]
//! (which the init prints to the console).

use std::path::{Component, Path, PathBuf};

/// How a share reaches the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// qemu `-virtfs`: `mount -t 9p -o trans=virtio <tag> <mount_point>`.
    #[default]
    NineP,
    /// vhost-user-fs (virtiofsd on the host): `mount -t virtiofs <tag> <mount_point>`.
    Virtiofs,
}

impl Transport {
    /// The filesystem type given to mount(2).
    pub fn fstype(self) -> &'static str {
        match self {
            Transport::NineP => "9p",
            Transport::Virtiofs => "virtiofs",
        }
    }
}

/// A host directory to mount: `mount -t <transport> <tag> <mount_point>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tag: String,
    pub mount_point: PathBuf,
    pub transport: Transport,
}

/// What the init takes from the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootConfig {
    /// `berth.data=`: the data disk's device node.
    pub data: Option<PathBuf>,
    /// `berth.share=`: host directory shares, in order.
    pub shares: Vec<Share>,
    /// `berth.loglevel=`: berthd's log level.
    pub log_level: Option<String>,
    /// `berth.mirror=`: registry mirrors (comma-separated URLs) for berthd's daemon.json;
    /// `Some` (even empty) means the host manages the key.
    pub mirrors: Option<Vec<String>>,
    /// `berth.insecure=`: insecure registries (comma-separated `host:port`).
    pub insecure: Option<Vec<String>>,
    /// Values that were skipped, each naming the parameter and how to fix it.
    pub warnings: Vec<String>,
}

/// Split a command line into words the way the kernel does: on whitespace, with double quotes
/// grouping (`key="a b"` is one word, quotes removed).
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut have = false;
    for c in s.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                have = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

/// Parse the command line (the contents of /proc/cmdline).
pub fn parse(cmdline: &str) -> BootConfig {
    let mut cfg = BootConfig::default();
    for word in split_words(cmdline) {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "berth.data" => match check_device(value) {
                Ok(p) => cfg.data = Some(p),
                Err(e) => cfg.warnings.push(e),
            },
            "berth.share" => {
                for item in value.split(',').filter(|s| !s.is_empty()) {
                    match parse_share(item) {
                        Ok(s) => {
                            if let Some(prev) =
                                cfg.shares.iter().find(|p| p.mount_point == s.mount_point)
                            {
                                cfg.warnings.push(format!(
                                    "berth.share={item}: {} is already the mount point of share \
                                     \"{}\"; give each share its own mount point",
                                    s.mount_point.display(),
                                    prev.tag
                                ));
                            } else {
                                cfg.shares.push(s);
                            }
                        }
                        Err(e) => cfg.warnings.push(e),
                    }
                }
            }
            "berth.loglevel" => match value.to_ascii_lowercase().as_str() {
                v @ ("debug" | "info" | "warn" | "error" | "trace") => {
                    cfg.log_level = Some(v.to_string())
                }
                _ => cfg.warnings.push(format!(
                    "berth.loglevel={value}: unknown level; use debug, info, warn or error"
                )),
            },
            "berth.mirror" => {
                let list = split_list(value);
                match list.iter().find(|m| !(m.starts_with("http://") || m.starts_with("https://"))) {
                    Some(bad) => cfg.warnings.push(format!(
                        "berth.mirror={value}: {bad:?} is not a URL; give http:// or https:// URLs, comma-separated"
                    )),
                    None => cfg.mirrors = Some(list),
                }
            }
            "berth.insecure" => {
                let list = split_list(value);
                match list.iter().find(|h| h.contains('/') || h.contains(char::is_whitespace)) {
                    Some(bad) => cfg.warnings.push(format!(
                        "berth.insecure={value}: {bad:?} is not a registry host; give host[:port] names, comma-separated"
                    )),
                    None => cfg.insecure = Some(list),
                }
            }
            k if k.starts_with("berth.") => cfg.warnings.push(format!(
                "{word}: unknown parameter {k} (known: berth.data, berth.share, berth.loglevel, \
                 berth.mirror, berth.insecure)"
            )),
            _ => {}
        }
    }
    cfg
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// daemon.json `text` with the registry keys the command line manages set (the other keys
/// kept); `None` when the text is not a JSON object (the caller keeps the file as it is).
pub fn apply_registry_settings(text: &str, cfg: &BootConfig) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object_mut()?;
    if let Some(m) = &cfg.mirrors {
        obj.insert("registry-mirrors".into(), serde_json::json!(m));
    }
    if let Some(i) = &cfg.insecure {
        obj.insert("insecure-registries".into(), serde_json::json!(i));
    }
    serde_json::to_string_pretty(&v).ok().map(|s| s + "\n")
}

fn check_device(value: &str) -> Result<PathBuf, String> {
    let p = Path::new(value);
    if value.is_empty() || !p.is_absolute() || !value.starts_with("/dev/") || has_dotdot(p) {
        return Err(format!(
            "berth.data={value}: not a device path; use a block device such as berth.data=/dev/vda"
        ));
    }
    Ok(p.to_path_buf())
}

/// One `<tag>:<mount point>[:9p|:virtiofs]` item of `berth.share=`.
pub fn parse_share(item: &str) -> Result<Share, String> {
    let Some((tag, rest)) = item.split_once(':') else {
        return Err(format!(
            "berth.share={item}: expected <mount tag>:<guest mount point>[:9p|:virtiofs], \
             e.g. home:/root"
        ));
    };
    // A trailing `:9p` / `:virtiofs` names the transport; anything else is part of the path.
    let (mp, transport) = match rest.rsplit_once(':') {
        Some((mp, "9p")) => (mp, Transport::NineP),
        Some((mp, "virtiofs")) => (mp, Transport::Virtiofs),
        _ => (rest, Transport::NineP),
    };
    if tag.is_empty() || tag.len() > 31 || !tag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "berth.share={item}: the mount tag must be 1-31 printable characters \
             (qemu's -virtfs mount_tag= or vhost-user-fs tag=)"
        ));
    }
    let p = Path::new(mp);
    if !p.is_absolute() || has_dotdot(p) {
        return Err(format!(
            "berth.share={item}: the mount point must be an absolute path without \"..\""
        ));
    }
    if p == Path::new("/") || is_reserved(p) {
        return Err(format!(
            "berth.share={item}: {mp} is used by the VM itself; mount the share elsewhere \
             (e.g. /root or /Users)"
        ));
    }
    Ok(Share {
        tag: tag.to_string(),
        mount_point: p.to_path_buf(),
        transport,
    })
}

fn has_dotdot(p: &Path) -> bool {
    p.components().any(|c| matches!(c, Component::ParentDir))
}

/// Paths a share must not cover (the system mounts and the engine's own state).
fn is_reserved(p: &Path) -> bool {
    [
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/var/lib/berth",
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/etc",
    ]
    .iter()
    .any(|r| p.starts_with(r))
        || p == Path::new("/var")
        || p == Path::new("/var/lib")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_example() {
        let c = parse("console=ttyS0 quiet berth.data=/dev/vda berth.share=home:/root");
        assert_eq!(c.data, Some(PathBuf::from("/dev/vda")));
        assert_eq!(
            c.shares,
            vec![Share {
                tag: "home".into(),
                mount_point: "/root".into(),
                transport: Transport::NineP,
            }]
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn shares_repeat_and_comma_lists() {
        let c = parse("berth.share=home:/Users,src:/src berth.share=tmp:/mnt/tmp");
        let tags: Vec<_> = c.shares.iter().map(|s| s.tag.as_str()).collect();
        assert_eq!(tags, ["home", "src", "tmp"]);
        assert_eq!(c.shares[2].mount_point, PathBuf::from("/mnt/tmp"));
    }

    #[test]
    fn share_transport_suffix() {
        let c = parse("berth.share=home:/root:virtiofs,src:/src:9p,old:/mnt/old,c:/a:b");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let got: Vec<_> = c
            .shares
            .iter()
            .map(|s| (s.tag.as_str(), s.mount_point.clone(), s.transport))
            .collect();
        assert_eq!(
            got,
            [
                ("home", PathBuf::from("/root"), Transport::Virtiofs),
                ("src", PathBuf::from("/src"), Transport::NineP),
                ("old", PathBuf::from("/mnt/old"), Transport::NineP),
                // An unknown suffix is part of the path, not a transport.
                ("c", PathBuf::from("/a:b"), Transport::NineP),
            ]
        );
        assert_eq!(Transport::Virtiofs.fstype(), "virtiofs");
        // The transport suffix does not let a reserved path through.
        assert!(parse_share("x:/proc:virtiofs").is_err());
        assert!(parse_share("x:relative:virtiofs").is_err());
    }

    #[test]
    fn quoted_words() {
        assert_eq!(
            split_words("a  \"b c\" d=\"e f\"\n"),
            vec!["a".to_string(), "b c".into(), "d=e f".into()]
        );
        let c = parse("berth.share=\"home:/Users/me\"");
        assert_eq!(c.shares[0].mount_point, PathBuf::from("/Users/me"));
    }

    #[test]
    fn bad_values_are_warnings_not_failures() {
        let c = parse(
            "berth.data=vda berth.share=home berth.share=h:relative berth.share=x:/proc/x \
             berth.share=y:/a/../etc berth.loglevel=loud berth.bogus=1",
        );
        assert_eq!(c.data, None);
        assert!(c.shares.is_empty());
        assert_eq!(c.warnings.len(), 7, "{:#?}", c.warnings);
        assert!(c.warnings[0].contains("berth.data=vda"));
        assert!(c.warnings[1].contains("<mount tag>:<guest mount point>"));
        assert!(c.warnings[6].contains("unknown parameter berth.bogus"));
    }

    #[test]
    fn duplicate_mount_point_keeps_first() {
        let c = parse("berth.share=a:/x,b:/x");
        assert_eq!(c.shares.len(), 1);
        assert_eq!(c.shares[0].tag, "a");
        assert!(c.warnings[0].contains("already the mount point of share \"a\""));
    }

    #[test]
    fn data_root_cannot_be_shadowed() {
        assert!(parse_share("x:/var/lib/berth/volumes").is_err());
        assert!(parse_share("x:/var").is_err());
        assert!(parse_share("x:/var/tmp").is_ok());
        assert!(parse_share(":/x").is_err());
    }

    #[test]
    fn log_level() {
        assert_eq!(
            parse("berth.loglevel=DEBUG").log_level.as_deref(),
            Some("debug")
        );
        assert_eq!(parse("quiet").log_level, None);
    }

    #[test]
    fn registry_settings_from_the_command_line() {
        let cfg = parse("berth.mirror=http://10.0.2.2:5000 berth.insecure=10.0.2.2:5000,reg.local");
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        let out = apply_registry_settings("{\"max-concurrent-downloads\": 3}", &cfg).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["registry-mirrors"],
            serde_json::json!(["http://10.0.2.2:5000"])
        );
        assert_eq!(
            v["insecure-registries"],
            serde_json::json!(["10.0.2.2:5000", "reg.local"])
        );
        assert_eq!(v["max-concurrent-downloads"], 3);
        let bad = parse("berth.mirror=10.0.2.2:5000 berth.insecure=http://x/y");
        assert_eq!(bad.mirrors, None);
        assert_eq!(bad.insecure, None);
        assert_eq!(bad.warnings.len(), 2, "{:?}", bad.warnings);
        // Nothing given: the file is left as it is.
        let none = parse("console=ttyS0");
        assert_eq!(apply_registry_settings("{}", &none).unwrap(), "{}\n");
        assert!(apply_registry_settings("not json", &none).is_none());
    }
}
