//! `Config.User` resolved against the container's own /etc/passwd and /etc/group, as runc's
//! `GetExecUser` does for Docker. The files are opened inside the rootfs by fd
//! (`openat2` with `RESOLVE_IN_ROOT`), so a symlink in the image (`/etc/passwd ->
//! ../../../etc/shadow`) resolves inside the rootfs, never to a host file.

use crate::images::{Error, Result};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// The most bytes read from a passwd or group file (a larger one is refused).
const MAX_DB: u64 = 16 << 20;

/// The process identity from `User` and `GroupAdd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups listing the user in /etc/group, then `GroupAdd`.
    pub additional_gids: Vec<u32>,
    /// The user's home from /etc/passwd (`/` when there is no entry).
    pub home: String,
}

#[derive(Debug, Clone)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Open `rel` (e.g. `etc/passwd`) inside `rootfs` without ever leaving it, and read it.
/// `Ok(None)` when it does not exist (or a path component is not a directory).
pub fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::internal(format!(
            "cannot open the container's root filesystem {}: {e}",
            rootfs.display()
        ))
    })?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let path_fd: OwnedFd = match openat2(&root, rel, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot open /{rel} in the container's root filesystem {}: {e}",
                rootfs.display()
            )))
        }
    };
    let st = fstat(&path_fd).map_err(|e| {
        Error::internal(format!(
            "cannot stat /{rel} in the container's root filesystem: {e}"
        ))
    })?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Error::invalid(format!(
            "/{rel} in the container's root filesystem is not a regular file; the image must provide a plain /{rel} to resolve Config.User"
        )));
    }
    // Reopen the O_PATH fd for reading: the object itself, no second path walk.
    let proc_path = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    let file = std::fs::File::open(&proc_path).map_err(|e| {
        Error::internal(format!(
            "cannot read /{rel} in the container's root filesystem: {e}"
        ))
    })?;
    let mut text = String::new();
    let mut limited = file.take(MAX_DB + 1);
    let mut bytes = Vec::new();
    limited.read_to_end(&mut bytes).map_err(|e| {
        Error::internal(format!(
            "cannot read /{rel} in the container's root filesystem: {e}"
        ))
    })?;
    if bytes.len() as u64 > MAX_DB {
        return Err(Error::invalid(format!(
            "/{rel} in the container's root filesystem is larger than {} MiB; refusing to parse it",
            MAX_DB >> 20
        )));
    }
    text.push_str(&String::from_utf8_lossy(&bytes));
    Ok(Some(text))
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.trim().parse().ok()?,
                gid: f.get(3)?.trim().parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn numeric(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolve `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, `uid:groupname`) and
/// `group_add` (names or numbers) against the rootfs's /etc/passwd and /etc/group.
pub fn resolve(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ExecUser> {
    let passwd = read_in_root(rootfs, "etc/passwd")?;
    let group = read_in_root(rootfs, "etc/group")?;
    resolve_from(
        passwd.as_deref().map(parse_passwd),
        group.as_deref().map(parse_group),
        user,
        group_add,
    )
}

fn resolve_from(
    passwd: Option<Vec<PasswdEntry>>,
    groups: Option<Vec<GroupEntry>>,
    user: &str,
    group_add: &[String],
) -> Result<ExecUser> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let uid_num = numeric(user_arg);
    if uid_num.is_none() && !user_arg.is_empty() && user_arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!(
            "user {user_arg:?} in Config.User is out of range; uids go up to {}",
            u32::MAX
        )));
    }
    let passwd = passwd.unwrap_or_default();
    let groups = groups.unwrap_or_default();

    let matched = passwd.iter().find(|p| {
        if user_arg.is_empty() {
            p.uid == 0
        } else if let Some(n) = uid_num {
            p.uid == n
        } else {
            p.name == user_arg
        }
    });
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let mut matched_name = None;
    match matched {
        Some(p) => {
            out.uid = p.uid;
            out.gid = p.gid;
            if !p.home.is_empty() {
                out.home = p.home.clone();
            }
            matched_name = Some(p.name.as_str());
        }
        None if user_arg.is_empty() => {}
        None => match uid_num {
            Some(n) => out.uid = n,
            None => {
                return Err(Error::invalid(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file (Config.User names a user the image's /etc/passwd does not have; use a numeric uid or add the user to the image)"
                )))
            }
        },
    }

    if !group_arg.is_empty() {
        let gid_num = numeric(group_arg);
        let g = groups.iter().find(|g| match gid_num {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        });
        out.gid = match (g, gid_num) {
            (Some(g), _) => g.gid,
            (None, Some(n)) => n,
            (None, None) => {
                return Err(Error::invalid(format!(
                    "unable to find group {group_arg}: no matching entries in group file (Config.User names a group the image's /etc/group does not have; use a numeric gid or add the group to the image)"
                )))
            }
        };
    } else if let Some(name) = matched_name {
        for g in &groups {
            if g.members.iter().any(|m| m == name) && !out.additional_gids.contains(&g.gid) {
                out.additional_gids.push(g.gid);
            }
        }
    }

    for add in group_add {
        let gid = match numeric(add) {
            Some(n) => n,
            None => groups
                .iter()
                .find(|g| &g.name == add)
                .map(|g| g.gid)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "unable to find group {add} (HostConfig.GroupAdd): no matching entries in the image's /etc/group; use a numeric gid or a group the image defines"
                    ))
                })?,
        };
        if !out.additional_gids.contains(&gid) {
            out.additional_gids.push(gid);
        }
    }
    Ok(out)
}
