//! A container's changes as an image layer: the overlay upper dir written as an OCI layer tar
//! (what a build step or `docker commit` stores).
//!
//! The upper dir is walked by fd, one `*at` call at a time, never following a symlink.
//! Overlay's markers become the OCI spec's: a whiteout (a 0:0 character device) is written as
//! an empty `.wh.<name>` file, an opaque directory (`trusted.overlay.opaque=y`) as the
//! directory followed by `<dir>/.wh..wh..opq`. Extended attributes other than overlay's own
//! travel as PAX `SCHILY.xattr.*` records (file capabilities survive a build). Entries are
//! written in name order; hard links inside the upper dir stay hard links.

use crate::fsops;
use rustix::fs::{self as rfs, FileType, OFlags, Stat};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Write the layer for `upper` to `w`. `skip`: absolute paths left out (the mount points the
/// engine makes in every container: `/etc/hosts`, `/etc/resolv.conf`, ...).
pub fn write_layer(upper: &Path, skip: &[String], w: &mut dyn Write) -> io::Result<()> {
    let dir = fsops::open_dir(upper)?;
    let mut t = tar::Builder::new(w);
    t.mode(tar::HeaderMode::Complete);
    let mut links = HashMap::new();
    let skip: Vec<String> = skip
        .iter()
        .map(|p| p.trim_matches('/').to_string())
        .collect();
    walk(&mut t, dir.as_fd(), "", &skip, &mut links)?;
    t.into_inner()?.flush()
}

/// Whether the layer would be empty: nothing in `upper` but the skipped mount points and the
/// directories holding them (which the engine makes for its mount points). A step that made
/// only those produces no layer.
pub fn is_empty(upper: &Path, skip: &[String]) -> io::Result<bool> {
    let dir = fsops::open_dir(upper)?;
    let skip: Vec<String> = skip
        .iter()
        .map(|p| p.trim_matches('/').to_string())
        .collect();
    only_dirs(dir.as_fd(), "", &skip)
}

fn only_dirs(dir: BorrowedFd, prefix: &str, skip: &[String]) -> io::Result<bool> {
    for name in fsops::list(dir)? {
        let name_os = OsStr::from_bytes(&name);
        let name_s = String::from_utf8_lossy(&name);
        let path = if prefix.is_empty() {
            name_s.into_owned()
        } else {
            format!("{prefix}/{name_s}")
        };
        if skip.contains(&path) {
            continue;
        }
        let st = fsops::lstat_at(dir, name_os)?;
        let holds_skipped = skip.iter().any(|s| s.starts_with(&format!("{path}/")));
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory || !holds_skipped {
            return Ok(false);
        }
        let sub = fsops::open_subdir(dir, name_os)?;
        if !only_dirs(sub.as_fd(), &path, skip)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn walk(
    t: &mut tar::Builder<&mut dyn Write>,
    dir: BorrowedFd,
    prefix: &str,
    skip: &[String],
    links: &mut HashMap<(u64, u64), String>,
) -> io::Result<()> {
    for name in fsops::list(dir)? {
        let name_os = OsStr::from_bytes(&name);
        let name_s = String::from_utf8_lossy(&name).into_owned();
        let path = if prefix.is_empty() {
            name_s.clone()
        } else {
            format!("{prefix}/{name_s}")
        };
        if skip.contains(&path) {
            continue;
        }
        let st = match fsops::lstat_at(dir, name_os) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            let wh = if prefix.is_empty() {
                format!(".wh.{name_s}")
            } else {
                format!("{prefix}/.wh.{name_s}")
            };
            empty_file(t, &wh, &st)?;
            continue;
        }
        match ft {
            FileType::Directory => {
                let sub = fsops::open_subdir(dir, name_os)?;
                let xattrs = xattrs_of(sub.as_fd())?;
                let opaque = xattrs
                    .iter()
                    .any(|(k, v)| OPAQUE_XATTRS.contains(&k.as_str()) && v == b"y");
                let kept: Vec<(String, Vec<u8>)> = xattrs
                    .into_iter()
                    .filter(|(k, _)| !is_overlay_xattr(k))
                    .collect();
                pax(t, &kept)?;
                let mut h = header(&st, tar::EntryType::Directory, 0);
                t.append_data(&mut h, format!("{path}/"), io::empty())?;
                if opaque {
                    empty_file(t, &format!("{path}/.wh..wh..opq"), &st)?;
                }
                walk(t, sub.as_fd(), &path, skip, links)?;
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = links.get(&key) {
                        let mut h = header(&st, tar::EntryType::Link, 0);
                        t.append_link(&mut h, &path, first)?;
                        continue;
                    }
                    links.insert(key, path.clone());
                }
                let fd = match rfs::openat(
                    dir,
                    name_os,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    rfs::Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let kept: Vec<(String, Vec<u8>)> = xattrs_of(fd.as_fd())?
                    .into_iter()
                    .filter(|(k, _)| !is_overlay_xattr(k))
                    .collect();
                pax(t, &kept)?;
                let f = File::from(fd);
                let st = rfs::fstat(&f)?;
                let size = st.st_size.max(0) as u64;
                let mut h = header(&st, tar::EntryType::Regular, size);
                // Exactly `size` bytes even if the file changes while it is read.
                let r = f.take(size).chain(io::repeat(0)).take(size);
                t.append_data(&mut h, &path, r)?;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(dir, name_os, Vec::new())?;
                let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
                let mut h = header(&st, tar::EntryType::Symlink, 0);
                t.append_link(&mut h, &path, &target)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let typ = if ft == FileType::CharacterDevice {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(&st, typ, 0);
                h.set_device_major(rfs::major(st.st_rdev))?;
                h.set_device_minor(rfs::minor(st.st_rdev))?;
                t.append_data(&mut h, &path, io::empty())?;
            }
            FileType::Fifo => {
                let mut h = header(&st, tar::EntryType::Fifo, 0);
                t.append_data(&mut h, &path, io::empty())?;
            }
            // Sockets are not archived, as in Docker.
            _ => {}
        }
    }
    Ok(())
}

fn is_overlay_xattr(k: &str) -> bool {
    k.starts_with("trusted.overlay.") || k.starts_with("user.overlay.")
}

fn header(st: &Stat, typ: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(typ);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(size);
    h
}

fn empty_file(t: &mut tar::Builder<&mut dyn Write>, path: &str, st: &Stat) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    t.append_data(&mut h, path, io::empty())
}

fn pax(t: &mut tar::Builder<&mut dyn Write>, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let recs: Vec<(String, &[u8])> = xattrs
        .iter()
        .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
        .collect();
    t.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
}

/// The extended attributes of an open file or directory.
fn xattrs_of(fd: BorrowedFd) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rfs::flistxattr(fd, &mut names) {
            Ok(n) => break n,
            Err(Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        if names.len() > 1 << 20 {
            return Err(io::Error::other("extended attribute list too long"));
        }
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let key = String::from_utf8_lossy(raw).into_owned();
        let mut val = vec![0u8; 256];
        let len = loop {
            match rfs::fgetxattr(fd, raw, &mut val) {
                Ok(len) => break len,
                Err(Errno::RANGE) if val.len() < 1 << 20 => val.resize(val.len() * 4, 0),
                Err(Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(e.into()),
            }
        };
        if len == usize::MAX {
            continue;
        }
        val.truncate(len);
        out.push((key, val));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn entries(data: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut a = tar::Archive::new(data);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = e.path().unwrap().to_string_lossy().into_owned();
                let typ = e.header().entry_type();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (p, typ, body)
            })
            .collect()
    }

    #[test]
    fn files_dirs_links_and_skipped_mount_points() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path();
        std::fs::create_dir_all(up.join("app/sub")).unwrap();
        std::fs::write(up.join("app/main.py"), b"print(1)\n").unwrap();
        std::fs::set_permissions(
            up.join("app/main.py"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        std::fs::hard_link(up.join("app/main.py"), up.join("app/sub/again.py")).unwrap();
        symlink("main.py", up.join("app/link")).unwrap();
        std::fs::create_dir(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/hosts"), b"").unwrap();
        let mut out = Vec::new();
        write_layer(up, &["/etc/hosts".to_string()], &mut out).unwrap();
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/",
                "app/link",
                "app/main.py",
                "app/sub/",
                "app/sub/again.py",
                "etc/"
            ]
        );
        assert_eq!(got[2].2, b"print(1)\n");
        assert_eq!(got[1].1, tar::EntryType::Symlink);
        assert_eq!(got[4].1, tar::EntryType::Link);
        let mut a = tar::Archive::new(&out[..]);
        let mode = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy() == "app/main.py")
            .unwrap()
            .header()
            .mode()
            .unwrap();
        assert_eq!(mode, 0o750);
        assert!(is_empty(tmp.path().join("etc").as_path(), &["/hosts".into()]).unwrap());
        assert!(!is_empty(up, &["/etc/hosts".into()]).unwrap());
        // A new empty directory (WORKDIR, mkdir) is a change.
        let only = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(only.path().join("etc")).unwrap();
        std::fs::write(only.path().join("etc/hosts"), b"").unwrap();
        assert!(is_empty(only.path(), &["/etc/hosts".into()]).unwrap());
        std::fs::create_dir(only.path().join("work")).unwrap();
        assert!(!is_empty(only.path(), &["/etc/hosts".into()]).unwrap());
    }

    #[test]
    fn whiteouts_and_opaque_dirs_become_oci_markers() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: making 0:0 device whiteouts needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path();
        std::fs::create_dir(up.join("gone-dir-parent")).unwrap();
        rfs::mknodat(
            rfs::CWD,
            up.join("gone-dir-parent/old.txt").as_path(),
            FileType::CharacterDevice,
            rfs::Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::create_dir(up.join("opaque")).unwrap();
        std::fs::write(up.join("opaque/new"), b"n").unwrap();
        let c = std::ffi::CString::new(up.join("opaque").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path and value buffers.
        let r = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        let mut out = Vec::new();
        write_layer(up, &[], &mut out).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|(p, _, _)| p).collect();
        assert_eq!(
            names,
            [
                "gone-dir-parent/",
                "gone-dir-parent/.wh.old.txt",
                "opaque/",
                "opaque/.wh..wh..opq",
                "opaque/new"
            ]
        );
        // No overlay xattr leaks into the layer.
        assert!(!out
            .windows(b"trusted.overlay".len())
            .any(|w| w == b"trusted.overlay"));
    }
}
