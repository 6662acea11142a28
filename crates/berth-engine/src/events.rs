//! The engine's event bus: what `GET /events` streams. (Filled in by the events work.)

use std::collections::BTreeMap;

/// One event in Docker's shape (`Type`, `Action`, `Actor{ID, Attributes}`, `time`,
/// `timeNano`, `scope`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Events {}

impl Events {
    pub fn new() -> Events {
        Events {}
    }

    /// Publish an event: `kind` is `container`, `image`, `volume`, `network`; `action` is
    /// Docker's (`create`, `start`, `die`, `destroy`, `pull`, `tag`, `connect`, ...).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let _ = (kind, action, id, attributes);
    }
}
