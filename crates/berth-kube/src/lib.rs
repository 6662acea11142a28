//! `berth kube`: take a compose project to a Kubernetes cluster.
//!
//! - [`generate`]: the resolved compose model ([`berth_compose::Project`]) to typed Kubernetes
//!   objects (k8s-openapi structs, so a malformed object cannot be built), with a warning for
//!   everything that cannot cross to a cluster (bind mounts, host networking...).
//! - [`yaml`]: stable, diff-friendly YAML (one stream, or one file per object).
//! - [`deploy`]: server-side apply of those objects with the user's kubeconfig (kube-rs),
//!   rollout waiting with progress, failure diagnosis, status, logs and delete.

pub mod deploy;
pub mod generate;
pub mod yaml;

pub use generate::{generate, GenerateError, GenerateOptions, Manifests, Object, Warning};

/// The field manager Berth applies with (server-side apply), and the value of the
/// `app.kubernetes.io/managed-by` label on everything it generates.
pub const FIELD_MANAGER: &str = "berth";

/// Labels tying the generated objects together (Kubernetes' recommended labels).
pub mod labels {
    /// The compose project name.
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// The compose service name.
    pub const NAME: &str = "app.kubernetes.io/name";
    /// Always [`super::FIELD_MANAGER`].
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The compose project name, under docker compose's key, so a cluster's objects can be
    /// matched to the project on disk.
    pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
    /// The compose service name, under docker compose's key.
    pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
}
