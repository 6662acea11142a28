//! The Tauri commands, by resource. Each is a thin translation: arguments → a bollard call →
//! a DTO, errors as `AppError`.

pub mod build;
pub mod compose;
pub mod containers;
pub mod exec;
pub mod images;
pub mod kube;
pub mod resources;
pub mod settings;
pub mod system;
pub mod vm;

use crate::error::{self, Res};
use crate::App;

/// The bollard error of a call as an `AppError`.
pub(crate) fn engine_err(
    app: &App,
) -> impl Fn(bollard::errors::Error) -> berth_desktop_dto::AppError + '_ {
    move |e| error::engine(app.engine.host(), e)
}

pub(crate) fn nonempty(s: &str, what: &str) -> Res<()> {
    if s.trim().is_empty() {
        return Err(error::invalid(format!("{what} is empty")));
    }
    Ok(())
}
