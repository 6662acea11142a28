//! A build context directory → the tar the Engine API's `/build` takes, honouring
//! `.dockerignore`. Shared by the desktop app and compose (the CLI streams its own as it walks).

use std::io::Write;
use std::path::Path;

use crate::DockerIgnore;

/// Packs `dir` as a tar into `out`, leaving out what `.dockerignore` excludes (the Dockerfile
/// and `.dockerignore` itself always go in, as Docker's CLI does). Owner 0:0, modes and times
/// kept, symlinks as symlinks; sockets and devices are skipped. Returns the number of files.
pub fn pack<W: Write>(
    dir: &Path,
    ignore: &DockerIgnore,
    dockerfile: &str,
    out: W,
) -> std::io::Result<u32> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut files = 0u32;
    let keep = |rel: &str| rel == dockerfile || rel == ".dockerignore";
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(rel_dir) = stack.pop() {
        let abs = if rel_dir.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(&rel_dir)
        };
        let mut entries: Vec<_> = std::fs::read_dir(&abs)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", abs.display())))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let meta = std::fs::symlink_metadata(e.path())?;
            let ft = meta.file_type();
            let excluded = !keep(&rel) && ignore.excluded(&rel);
            if ft.is_dir() {
                if excluded && !ignore.may_contain_exceptions(&rel) {
                    continue;
                }
                if !excluded {
                    let mut h = header(&meta);
                    b.append_data(&mut h, format!("{rel}/"), std::io::empty())?;
                }
                subdirs.push(rel);
                continue;
            }
            if excluded {
                continue;
            }
            let mut h = header(&meta);
            if ft.is_symlink() {
                let target = std::fs::read_link(e.path())?;
                b.append_link(&mut h, &rel, target)?;
            } else if ft.is_file() {
                let f = std::fs::File::open(e.path())
                    .map_err(|err| std::io::Error::new(err.kind(), format!("{rel}: {err}")))?;
                b.append_data(&mut h, &rel, f)?;
                files += 1;
            }
        }
        // Depth first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    b.finish()?;
    Ok(files)
}

fn header(meta: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}
