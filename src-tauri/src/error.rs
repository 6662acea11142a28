//! Every failure reaches the page as an [`AppError`] `{code, message}`: the engine's own
//! message when it gave one, else what went wrong and what to do.

use berth_desktop_dto::{AppError, ErrorCode};
use bollard::errors::Error as BollardError;

pub type Res<T> = Result<T, AppError>;

/// The message for an engine that does not answer on `host`.
pub fn unreachable(host: &str, why: &str) -> AppError {
    AppError::new(
        ErrorCode::EngineUnreachable,
        format!("The Berth engine is not running: nothing answers at {host} ({why}). Start it from the app or the tray."),
    )
}

/// Maps a bollard error: HTTP statuses to codes (with the engine's message), connection
/// failures to `EngineUnreachable`.
pub fn engine(host: &str, e: BollardError) -> AppError {
    match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let code = match status_code {
                404 => ErrorCode::NotFound,
                409 => ErrorCode::Conflict,
                400 => ErrorCode::InvalidInput,
                _ => ErrorCode::Engine,
            };
            let message = if message.trim().is_empty() {
                format!("The engine answered HTTP {status_code} without saying why")
            } else {
                message
            };
            AppError::new(code, message)
        }
        BollardError::DockerStreamError { error } => AppError::new(ErrorCode::Engine, error),
        BollardError::SocketNotFoundError(p) => unreachable(host, &format!("no socket at {p}")),
        // The connection itself failed (refused, reset, the socket gone since the client
        // was made): the engine is not there.
        BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::RequestTimeoutError => {
            let mut why: &dyn std::error::Error = &e;
            while let Some(s) = why.source() {
                why = s;
            }
            unreachable(host, &why.to_string())
        }
        other => AppError::new(ErrorCode::Engine, other.to_string()),
    }
}

pub fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidInput, message)
}

pub fn system(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::System, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_codes_and_keep_the_engine_message() {
        let e = engine(
            "unix:///x.sock",
            BollardError::DockerResponseServerError {
                status_code: 409,
                message: "name \"/web\" is already in use".into(),
            },
        );
        assert_eq!(e.code, ErrorCode::Conflict);
        assert_eq!(e.message, "name \"/web\" is already in use");
        let e = engine(
            "unix:///x.sock",
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "No such container: nope".into(),
            },
        );
        assert_eq!(e.code, ErrorCode::NotFound);
        let e = engine(
            "unix:///run/x.sock",
            BollardError::SocketNotFoundError("/run/x.sock".into()),
        );
        assert_eq!(e.code, ErrorCode::EngineUnreachable);
        assert!(e.message.contains("unix:///run/x.sock"), "{}", e.message);
        let e = engine(
            "unix:///x.sock",
            BollardError::DockerResponseServerError {
                status_code: 500,
                message: String::new(),
            },
        );
        assert_eq!(e.code, ErrorCode::Engine);
        assert!(e.message.contains("500"), "{}", e.message);
    }

    /// A socket that existed when the client was made and is gone now (the engine stopped):
    /// bollard reports it as a hyper client error, which must still read "not running".
    #[tokio::test]
    async fn a_vanished_socket_is_engine_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("e.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let api = bollard::ClientVersion {
            major_version: 1,
            minor_version: 45,
        };
        let d = bollard::Docker::connect_with_unix(&sock.to_string_lossy(), 5, &api).unwrap();
        drop(listener);
        std::fs::remove_file(&sock).unwrap();
        let host = format!("unix://{}", sock.display());
        let e = engine(&host, d.ping().await.unwrap_err());
        assert_eq!(e.code, ErrorCode::EngineUnreachable, "{}", e.message);
        assert!(e.message.contains(&host), "{}", e.message);
    }
}
