//! Compose for Berth: read compose files into a resolved [`model::Project`] ([`load`]), and
//! bring projects up and down against an engine over the Docker Engine API ([`ops`], through
//! bollard, as docker compose does). The CLI (`berth compose`) and the desktop app's Compose
//! page both sit on this crate; neither knows the file format or the planner.

pub mod load;
pub mod model;
pub mod ops;
pub mod render;

pub use load::{load, LoadError, LoadOptions};
pub use model::Project;

/// docker compose's labels, so docker compose, `berth compose` and the desktop app see the
/// same projects.
pub mod labels {
    pub const PROJECT: &str = "com.docker.compose.project";
    pub const SERVICE: &str = "com.docker.compose.service";
    pub const NUMBER: &str = "com.docker.compose.container-number";
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    pub const NETWORK: &str = "com.docker.compose.network";
    pub const VOLUME: &str = "com.docker.compose.volume";
    pub const VERSION: &str = "com.docker.compose.version";
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    pub const IMAGE: &str = "com.docker.compose.image";
}
