//! The registry client's error type. Messages name the reference, digest and endpoint involved
//! and say what to do; they never contain credentials.

use berth_store::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image, tag or blob does not exist at any endpoint.
    #[error("{0}")]
    NotFound(String),
    /// Missing or rejected credentials (401), or access denied (403).
    #[error("{0}")]
    Unauthorized(String),
    /// No endpoint could be reached, or every one failed.
    #[error("{0}")]
    Unavailable(String),
    /// Bad input: a reference, a manifest, a configuration value.
    #[error("{0}")]
    Invalid(String),
    /// A manifest or layer media type Berth does not handle.
    #[error("{0}")]
    Unsupported(String),
    /// Content did not match its digest or size.
    #[error("{0}")]
    Verification(String),
    /// A limit was exceeded (manifest size).
    #[error("{0}")]
    Limit(String),
    /// The local store failed.
    #[error("store: {0}")]
    Store(#[from] berth_store::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Invalid(_)
            | Error::Unsupported(_)
            | Error::Verification(_)
            | Error::Limit(_) => ErrorKind::InvalidArgument,
            Error::Store(e) => e.kind(),
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
