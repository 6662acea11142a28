//! Named and anonymous volumes with the `local` driver. (Filled in by the volumes work.)

use crate::images::Result;
use std::path::{Path, PathBuf};

pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    pub fn open(root: &Path) -> Result<Volumes> {
        Ok(Volumes {
            root: root.to_path_buf(),
        })
    }

    /// The directory a container bind-mounts for volume `name`, creating the volume when it
    /// does not exist (`anonymous` marks it with `com.docker.volume.anonymous`). Returns the
    /// path and whether the volume was created now.
    pub fn prepare(&self, name: &str, anonymous: bool) -> Result<(PathBuf, bool)> {
        let _ = anonymous;
        let p = self.root.join(name).join("_data");
        std::fs::create_dir_all(&p)
            .map_err(|e| crate::images::Error::internal(format!("volume {name}: {e}")))?;
        Ok((p, true))
    }

    /// Copy what the image has at `path_in_rootfs` (inside the mounted `rootfs`) into volume
    /// `name` when the volume is empty, like Docker does on first use.
    pub fn populate(&self, _name: &str, _rootfs: &Path, _path_in_rootfs: &str) -> Result<()> {
        Ok(())
    }

    /// Remove a volume (callers check it is unused).
    pub fn remove(&self, name: &str) -> Result<()> {
        let _ = std::fs::remove_dir_all(self.root.join(name));
        Ok(())
    }
}
