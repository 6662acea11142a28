//! The runtime's error type: one variant per failure class, each able to say what kind of
//! failure it is so callers (the CLI, later the engine) can map it once.

use std::path::PathBuf;

/// What a caller should make of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unauthorized,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json (or a --process file) is malformed or invalid.
    /// `field` is the JSON path (`linux.namespaces[2].type`).
    #[error("{file}: {field}: {problem}")]
    InvalidConfig {
        file: String,
        field: String,
        problem: String,
    },
    /// A command-line value is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("container \"{0}\" does not exist")]
    ContainerNotFound(String),
    #[error("container \"{0}\" already exists")]
    ContainerExists(String),
    /// The container is in the wrong state for the operation.
    #[error("container \"{id}\" is {status}: {what}")]
    BadState {
        id: String,
        status: String,
        what: String,
    },
    /// A system call failed; `what` says what we were doing, with names and paths.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// The container's init or a hook reported a failure.
    #[error("{0}")]
    Container(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig { .. } | Error::InvalidArgument(_) | Error::Seccomp(_) => {
                ErrorKind::InvalidArgument
            }
            Error::ContainerNotFound(_) => ErrorKind::NotFound,
            Error::ContainerExists(_) | Error::BadState { .. } => ErrorKind::Conflict,
            Error::Sys { source, .. } | Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::Unauthorized,
                _ => ErrorKind::Internal,
            },
            Error::Cgroup(_) | Error::Container(_) => ErrorKind::Internal,
        }
    }

    /// Wrap the current `errno` with a description of what failed.
    pub fn last_os(what: impl Into<String>) -> Self {
        Error::Sys {
            what: what.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    pub fn sys(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Sys {
            what: what.into(),
            source: source.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::Sys {
            what: "system call".into(),
            source: e.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
