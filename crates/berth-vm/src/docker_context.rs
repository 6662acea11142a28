//! The `berth-vm` docker context: `berth vm start` points it at the VM's engine socket so that
//! `docker context use berth-vm` (or `berth context use berth-vm`) selects the VM's engine, and
//! `berth vm delete` removes it again. The current context is never switched to it: that
//! stays the user's choice. The store is docker's (see the berth-context crate).

use std::path::{Path, PathBuf};

use berth_context::{Error, Store};

/// The context's name.
pub const CONTEXT_NAME: &str = "berth-vm";

/// Its description in `docker context ls`.
pub const DESCRIPTION: &str = "Berth VM";

/// `unix://<socket>`, the socket made absolute (a context outlives the current directory).
pub fn host_of(socket: &Path) -> String {
    let abs: PathBuf = if socket.is_absolute() {
        socket.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(socket))
            .unwrap_or_else(|_| socket.to_path_buf())
    };
    format!("unix://{}", abs.display())
}

/// Creates the context, or points it at `socket` again; `Ok(false)` when it already did.
pub fn register(store: &Store, socket: &Path) -> Result<bool, Error> {
    store.upsert_docker_host(CONTEXT_NAME, &host_of(socket), DESCRIPTION)
}

/// What [`unregister`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Unregistered {
    /// Removed; `was_current`: it was the current context, which is `default` again.
    Removed { was_current: bool },
    /// Left alone: it points at another engine (this host).
    Elsewhere(String),
    /// There was no such context.
    Absent,
}

/// Removes the context if it points at `socket` (the VM being deleted); one pointing
/// elsewhere (another VM, or a context the user re-pointed) is left alone.
pub fn unregister(store: &Store, socket: &Path) -> Result<Unregistered, Error> {
    let ctx = match store.get(CONTEXT_NAME) {
        Ok(c) => c,
        Err(Error::NotFound(_)) => return Ok(Unregistered::Absent),
        Err(e) => return Err(e),
    };
    let host = ctx.host.unwrap_or_default();
    if host != host_of(socket) {
        return Ok(Unregistered::Elsewhere(host));
    }
    store.remove(CONTEXT_NAME)?;
    // docker fails every command while the current context is missing: go back to default.
    let was_current = store.current().ok().flatten().as_deref() == Some(CONTEXT_NAME);
    if was_current {
        store.set_current(None)?;
    }
    Ok(Unregistered::Removed { was_current })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;

    #[test]
    fn start_creates_and_repoints_without_switching() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store.set_current(Some("mine")).unwrap();
        assert!(register(&store, Path::new("/home/u/.berth/berth.sock")).unwrap());
        let c = store.get(CONTEXT_NAME).unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///home/u/.berth/berth.sock"));
        assert_eq!(c.description, DESCRIPTION);
        // Started again on the same socket: nothing to write.
        assert!(!register(&store, Path::new("/home/u/.berth/berth.sock")).unwrap());
        // Another socket: the context follows.
        assert!(register(&store, Path::new("/other/b.sock")).unwrap());
        assert_eq!(
            store.get(CONTEXT_NAME).unwrap().host.as_deref(),
            Some("unix:///other/b.sock")
        );
        assert_eq!(store.current().unwrap().as_deref(), Some("mine"));
        // The file is the one docker reads: contexts/meta/<sha256("berth-vm")>/meta.json.
        assert!(d
            .path()
            .join("contexts/meta")
            .join(berth_context::context_id("berth-vm"))
            .join("meta.json")
            .is_file());
    }

    #[test]
    fn delete_removes_only_this_vms_context() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let mine = Path::new("/vm/a.sock");
        assert_eq!(unregister(&store, mine).unwrap(), Unregistered::Absent);
        register(&store, Path::new("/vm/other.sock")).unwrap();
        assert_eq!(
            unregister(&store, mine).unwrap(),
            Unregistered::Elsewhere("unix:///vm/other.sock".into())
        );
        assert!(store.exists(CONTEXT_NAME));
        register(&store, mine).unwrap();
        assert_eq!(
            unregister(&store, mine).unwrap(),
            Unregistered::Removed { was_current: false }
        );
        assert!(!store.exists(CONTEXT_NAME));
        // The current context: removed, and the current context is default again.
        register(&store, mine).unwrap();
        store.set_current(Some(CONTEXT_NAME)).unwrap();
        assert_eq!(
            unregister(&store, mine).unwrap(),
            Unregistered::Removed { was_current: true }
        );
        assert_eq!(store.current().unwrap(), None);
    }

    #[test]
    fn relative_sockets_are_made_absolute() {
        let h = host_of(Path::new("rel/b.sock"));
        assert!(h.starts_with("unix:///"), "{h}");
        assert!(h.ends_with("/rel/b.sock"), "{h}");
    }
}
