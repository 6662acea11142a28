//! Parsing of a spec mount's `options` into mount(2) flags, propagation changes, recursive
//! attributes (mount_setattr) and filesystem data.

use nix::mount::MsFlags;

use crate::{Error, Result};

/// Mount-attribute bits for `mount_setattr(2)` (`MOUNT_ATTR_*` in `<linux/mount.h>`).
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// The parsed form of a spec mount's `options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount(2) call itself (and, for bind mounts, for the remount pass).
    /// Never contains propagation flags.
    pub flags: MsFlags,
    /// Propagation changes, each applied in its own mount(2) call after the mount, in order
    /// (e.g. `MS_PRIVATE | MS_REC` for `rprivate`).
    pub propagation: Vec<MsFlags>,
    /// `MOUNT_ATTR_*` bits to set recursively with mount_setattr(2) (`rro`, `rnosuid`, ...).
    pub recursive_set: u64,
    /// `MOUNT_ATTR_*` bits to clear recursively (`rrw`, `rsuid`, ...).
    pub recursive_clear: u64,
    /// Filesystem-specific options (`mode=755`, `size=65536k`, `newinstance`), in order.
    pub data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            recursive_set: 0,
            recursive_clear: 0,
            data: Vec::new(),
        }
    }
}

impl MountOptions {
    /// True if `bind` or `rbind` was given.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// The data string for mount(2): the data options joined with ",".
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }

    /// Flags that need a `MS_REMOUNT | MS_BIND` pass after a bind mount (the kernel ignores
    /// them on the initial `MS_BIND` call).
    pub fn bind_remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

enum Opt {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    RecSet(u64),
    RecClear(u64),
    Ignore,
}

fn lookup(word: &str) -> Option<Opt> {
    use MsFlags as F;
    let o = match word {
        "defaults" => Opt::Ignore,
        "ro" => Opt::Set(F::MS_RDONLY),
        "rw" => Opt::Clear(F::MS_RDONLY),
        "nosuid" => Opt::Set(F::MS_NOSUID),
        "suid" => Opt::Clear(F::MS_NOSUID),
        "nodev" => Opt::Set(F::MS_NODEV),
        "dev" => Opt::Clear(F::MS_NODEV),
        "noexec" => Opt::Set(F::MS_NOEXEC),
        "exec" => Opt::Clear(F::MS_NOEXEC),
        "sync" => Opt::Set(F::MS_SYNCHRONOUS),
        "async" => Opt::Clear(F::MS_SYNCHRONOUS),
        "dirsync" => Opt::Set(F::MS_DIRSYNC),
        "remount" => Opt::Set(F::MS_REMOUNT),
        "mand" => Opt::Set(F::MS_MANDLOCK),
        "nomand" => Opt::Clear(F::MS_MANDLOCK),
        "atime" => Opt::Clear(F::MS_NOATIME),
        "noatime" => Opt::Set(F::MS_NOATIME),
        "diratime" => Opt::Clear(F::MS_NODIRATIME),
        "nodiratime" => Opt::Set(F::MS_NODIRATIME),
        "relatime" => Opt::Set(F::MS_RELATIME),
        "norelatime" => Opt::Clear(F::MS_RELATIME),
        "strictatime" => Opt::Set(F::MS_STRICTATIME),
        "nostrictatime" => Opt::Clear(F::MS_STRICTATIME),
        "lazytime" => Opt::Set(F::MS_LAZYTIME),
        "nolazytime" => Opt::Clear(F::MS_LAZYTIME),
        "iversion" => Opt::Set(F::MS_I_VERSION),
        "noiversion" => Opt::Clear(F::MS_I_VERSION),
        "silent" => Opt::Set(F::MS_SILENT),
        "loud" => Opt::Clear(F::MS_SILENT),
        "nosymfollow" => Opt::Set(F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "symfollow" => Opt::Clear(F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "bind" => Opt::Set(F::MS_BIND),
        "rbind" => Opt::Set(F::MS_BIND | F::MS_REC),
        "private" => Opt::Propagation(F::MS_PRIVATE),
        "rprivate" => Opt::Propagation(F::MS_PRIVATE | F::MS_REC),
        "shared" => Opt::Propagation(F::MS_SHARED),
        "rshared" => Opt::Propagation(F::MS_SHARED | F::MS_REC),
        "slave" => Opt::Propagation(F::MS_SLAVE),
        "rslave" => Opt::Propagation(F::MS_SLAVE | F::MS_REC),
        "unbindable" => Opt::Propagation(F::MS_UNBINDABLE),
        "runbindable" => Opt::Propagation(F::MS_UNBINDABLE | F::MS_REC),
        "rro" => Opt::RecSet(MOUNT_ATTR_RDONLY),
        "rrw" => Opt::RecClear(MOUNT_ATTR_RDONLY),
        "rnosuid" => Opt::RecSet(MOUNT_ATTR_NOSUID),
        "rsuid" => Opt::RecClear(MOUNT_ATTR_NOSUID),
        "rnodev" => Opt::RecSet(MOUNT_ATTR_NODEV),
        "rdev" => Opt::RecClear(MOUNT_ATTR_NODEV),
        "rnoexec" => Opt::RecSet(MOUNT_ATTR_NOEXEC),
        "rexec" => Opt::RecClear(MOUNT_ATTR_NOEXEC),
        "rnosymfollow" => Opt::RecSet(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => Opt::RecClear(MOUNT_ATTR_NOSYMFOLLOW),
        "tmpcopyup" => Opt::Ignore,
        _ => return None,
    };
    Some(o)
}

fn invalid(j: usize, problem: String) -> Error {
    Error::InvalidConfig {
        file: "config.json".into(),
        field: format!("options[{j}]"),
        problem,
    }
}

/// A filesystem data word or key: letters, digits and `_ - . + @ :`.
fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'@' | b':')
        })
}

/// Parse a spec mount's `options` (later options override earlier ones: `ro,rw` is rw).
///
/// Known flag words become mount flags, propagation words become separate propagation
/// changes, `r`-prefixed attributes (`rro`, `rnosuid`, ...) become recursive mount_setattr(2)
/// attributes, `tmpcopyup` is ignored, and anything else that is a plain word or `key=value`
/// is passed to the filesystem as data (`mode=755`, `size=65536k`, `newinstance`). An option
/// containing commas is split first.
///
/// Errors: an empty option, a flag word given a value (`rw=1`), a value without a key (`=x`),
/// control characters or spaces, and the unsupported `idmap`/`ridmap` → `Error::InvalidConfig`
/// with field `options[j]` (callers that know the mount's index prefix it, see
/// [`parse_spec_mount_options`]).
pub fn parse_mount_options(opts: &[String]) -> Result<MountOptions> {
    let mut out = MountOptions::default();
    for (j, opt) in opts.iter().enumerate() {
        if opt.is_empty() {
            return Err(invalid(j, "empty mount option; remove it".into()));
        }
        for piece in opt.split(',') {
            parse_one(j, opt, piece, &mut out)?;
        }
    }
    Ok(out)
}

fn parse_one(j: usize, whole: &str, piece: &str, out: &mut MountOptions) -> Result<()> {
    if piece.is_empty() {
        return Err(invalid(
            j,
            format!(
                "mount option {whole:?} has an empty element; write one option per array element"
            ),
        ));
    }
    if piece.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(invalid(
            j,
            format!("mount option {piece:?} contains spaces or control characters"),
        ));
    }
    if let Some((key, _value)) = piece.split_once('=') {
        if lookup(key).is_some() || matches!(key, "idmap" | "ridmap") {
            return Err(invalid(
                j,
                format!("mount option {key:?} is a flag and takes no value (got {piece:?})"),
            ));
        }
        if !is_word(key) {
            return Err(invalid(
                j,
                format!(
                    "mount option {piece:?} is malformed: expected a flag, a word or key=value"
                ),
            ));
        }
        out.data.push(piece.to_string());
        return Ok(());
    }
    if matches!(piece, "idmap" | "ridmap") {
        return Err(invalid(
            j,
            format!("mount option {piece:?}: idmapped mounts are not supported by berth-runtime; remove it"),
        ));
    }
    match lookup(piece) {
        Some(Opt::Set(f)) => out.flags |= f,
        Some(Opt::Clear(f)) => out.flags -= f,
        Some(Opt::Propagation(f)) => out.propagation.push(f),
        Some(Opt::RecSet(a)) => {
            out.recursive_set |= a;
            out.recursive_clear &= !a;
        }
        Some(Opt::RecClear(a)) => {
            out.recursive_clear |= a;
            out.recursive_set &= !a;
        }
        Some(Opt::Ignore) => {
            tracing::debug!(option = piece, "mount option ignored");
        }
        None => {
            if !is_word(piece) {
                return Err(invalid(
                    j,
                    format!(
                        "mount option {piece:?} is malformed: expected a flag, a word or key=value"
                    ),
                ));
            }
            out.data.push(piece.to_string());
        }
    }
    Ok(())
}

/// Parse the options of every mount in `spec`, in order; errors name `mounts[i].options[j]`.
/// Config validation calls this before anything is created.
pub fn parse_spec_mount_options(spec: &oci_spec::runtime::Spec) -> Result<Vec<MountOptions>> {
    let Some(mounts) = spec.mounts() else {
        return Ok(Vec::new());
    };
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            parse_mount_options(m.options().as_deref().unwrap_or_default())
                .map_err(|e| prefix_field(e, &format!("mounts[{i}].")))
        })
        .collect()
}

pub(crate) fn prefix_field(e: Error, prefix: &str) -> Error {
    match e {
        Error::InvalidConfig {
            file,
            field,
            problem,
        } => Error::InvalidConfig {
            file,
            field: format!("{prefix}{field}"),
            problem,
        },
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<MountOptions> {
        parse_mount_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = p(&[
            "nosuid",
            "noexec",
            "nodev",
            "mode=755",
            "size=65536k",
            "newinstance",
        ])
        .unwrap();
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert_eq!(o.data_string(), "mode=755,size=65536k,newinstance");
        assert!(!o.is_bind());
    }

    #[test]
    fn later_overrides_earlier() {
        assert_eq!(p(&["ro", "rw"]).unwrap().flags, MsFlags::empty());
        assert_eq!(p(&["rw", "ro"]).unwrap().flags, MsFlags::MS_RDONLY);
        assert_eq!(p(&["noatime", "atime"]).unwrap().flags, MsFlags::empty());
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "ro", "rprivate", "slave"]).unwrap();
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.bind_remount_flags(), MsFlags::MS_RDONLY);
        assert_eq!(
            o.propagation,
            vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::MS_SLAVE]
        );
        assert!(!o
            .flags
            .intersects(MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_SHARED));
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rbind", "rro", "rnosuid", "tmpcopyup"]).unwrap();
        assert_eq!(o.recursive_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        let o = p(&["rro", "rrw"]).unwrap();
        assert_eq!(o.recursive_set, 0);
        assert_eq!(o.recursive_clear, MOUNT_ATTR_RDONLY);
        assert!(o.data.is_empty());
    }

    #[test]
    fn comma_joined_option_is_split() {
        let o = p(&["nosuid,mode=1777"]).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
        assert_eq!(o.data, vec!["mode=1777".to_string()]);
    }

    #[test]
    fn malformed_options_are_invalid_config() {
        for bad in [
            &["rw=1"][..],
            &[""],
            &["nosuid", "=x"],
            &["a,,b"],
            &["mode=1 2"],
            &["idmap"],
            &["ro=yes"],
        ] {
            let err = p(bad).unwrap_err();
            match &err {
                Error::InvalidConfig { field, .. } => {
                    assert!(field.starts_with("options["), "{field}")
                }
                other => panic!("{bad:?}: unexpected {other:?}"),
            }
        }
        let err = p(&["nosuid", "rw=1"]).unwrap_err();
        assert!(err.to_string().contains("options[1]"), "{err}");
    }

    #[test]
    fn spec_errors_name_the_mount() {
        let spec: oci_spec::runtime::Spec = serde_json::from_str(
            r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"mounts":[
                {"destination":"/proc","type":"proc","source":"proc"},
                {"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid","rw=1"]}]}"#,
        )
        .unwrap();
        let err = parse_spec_mount_options(&spec).unwrap_err();
        assert!(err.to_string().contains("mounts[1].options[1]"), "{err}");
    }
}
