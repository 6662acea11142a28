//! The engine's event bus: what `GET /events` streams.
//!
//! Services call [`Events::emit`]; every event goes to the live subscribers (a
//! `tokio::sync::broadcast` channel) and into a ring of the last [`RING`] events, which
//! `since` replays. [`EventFilter`] is Docker's `/events` filter set; [`parse_timestamp`]
//! reads the `since`/`until` values the docker CLI sends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// How many past events are kept for `since`.
pub const RING: usize = 1024;

/// One event in Docker's shape (`Type`, `Action`, `Actor{ID, Attributes}`, `time`,
/// `timeNano`, `scope`), plus the legacy `status`/`id`/`from` fields Docker still fills for
/// container and image events.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
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

impl Event {
    /// An event stamped `time_nano` (nanoseconds since the epoch).
    pub fn new(
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) -> Event {
        let (status, legacy_id, from) = match kind {
            "container" => (
                Some(action.to_string()),
                Some(id.to_string()),
                attributes.get("image").cloned(),
            ),
            "image" => (Some(action.to_string()), Some(id.to_string()), None),
            _ => (None, None, None),
        };
        Event {
            status,
            id: legacy_id,
            from,
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }
}

struct Inner {
    tx: broadcast::Sender<Event>,
    ring: Mutex<VecDeque<Event>>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(RING);
        Events {
            inner: Arc::new(Inner {
                tx,
                ring: Mutex::new(VecDeque::with_capacity(RING)),
            }),
        }
    }

    /// Publish an event: `kind` is `container`, `image`, `volume`, `network`; `action` is
    /// Docker's (`create`, `start`, `die`, `destroy`, `pull`, `tag`, `connect`, ...).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        self.publish(Event::new(kind, action, id, attributes, now_nanos()));
    }

    /// Publish a ready-made event (its time is kept; the ring stays in publish order).
    pub fn publish(&self, ev: Event) {
        let mut ring = match self.inner.ring.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(ev.clone());
        // Sent under the ring's lock so a subscriber sees each event exactly once: either in
        // its snapshot of the ring or on its receiver.
        let _ = self.inner.tx.send(ev);
    }

    /// The past events at or after `since_nano` (oldest first) and a receiver for the ones
    /// published from now on.
    pub fn subscribe(&self, since_nano: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let ring = match self.inner.ring.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let past = match since_nano {
            Some(s) => ring.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, self.inner.tx.subscribe())
    }

    /// Live subscribers (`NEventsListener` in `/info`).
    pub fn listeners(&self) -> usize {
        self.inner.tx.receiver_count()
    }
}

/// Nanoseconds since the epoch of a `since`/`until` value: unix seconds with an optional
/// fraction (`1700000000`, `1700000000.5`, `1700000000.000000001`) — what the docker CLI
/// sends after converting durations and dates — or an RFC 3339 date.
pub fn parse_timestamp(value: &str) -> Result<i64, String> {
    let v = value.trim();
    let bad = || {
        format!(
            "invalid timestamp {value:?}: use unix seconds (1700000000 or 1700000000.5) or an \
             RFC 3339 date (2024-05-01T12:00:00Z)"
        )
    };
    if v.contains('-') && v.len() >= 19 {
        let secs = berth_time::parse_unix(v).ok_or_else(bad)?;
        return secs.checked_mul(1_000_000_000).ok_or_else(bad);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return Err(bad());
    }
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(bad)
}

/// The filter keys `GET /events` accepts.
pub const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Docker's `/events` filters: values of one key are alternatives (OR), keys combine with
/// AND, `label` values must all match.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    f: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// From the parsed `filters` query; an unknown key is an error naming it.
    pub fn new(f: BTreeMap<String, Vec<String>>) -> Result<EventFilter, String> {
        if let Some(k) = f.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "invalid filter '{k}': /events accepts {}",
                FILTER_KEYS.join(", ")
            ));
        }
        Ok(EventFilter { f })
    }

    fn values(&self, key: &str) -> Option<&[String]> {
        self.f.get(key).map(Vec::as_slice).filter(|v| !v.is_empty())
    }

    /// True when `key` is absent or one of its values passes `pred`.
    fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        match self.values(key) {
            None => true,
            Some(vs) => vs.iter().any(|v| pred(v)),
        }
    }

    /// True when `key` is absent or one of its values equals `source`.
    fn exact(&self, key: &str, source: &str) -> bool {
        self.any(key, |v| v == source)
    }

    /// `container=`, `network=`, `volume=`, `daemon=`: the actor's ID (or an ID prefix) or
    /// its `name` attribute.
    fn by_name(&self, key: &str, ev: &Event) -> bool {
        let name = ev.actor.attributes.get("name").map_or("", String::as_str);
        self.any(key, |v| ev.actor.id.starts_with(v) || v == name)
    }

    fn event(&self, ev: &Event) -> bool {
        // `health_status`, `exec_create` and `exec_start` actions carry a suffix
        // (`health_status: healthy`, `exec_start: sh`): those match by prefix.
        const PREFIXED: &[&str] = &["health_status", "exec_create", "exec_start"];
        self.any("event", |v| {
            ev.action == v || (PREFIXED.contains(&v) && ev.action.starts_with(v))
        })
    }

    fn image(&self, ev: &Event) -> bool {
        let Some(vs) = self.values("image") else {
            return true;
        };
        let name_attr = if ev.kind == "image" { "name" } else { "image" };
        let name = ev
            .actor
            .attributes
            .get(name_attr)
            .map_or("", String::as_str);
        let strip = |s: &str| -> String {
            // `repo:tag` → `repo`, but not a registry port (`host:5000/repo`).
            match s.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
                _ => s.to_string(),
            }
        };
        let candidates = [
            ev.actor.id.clone(),
            name.to_string(),
            strip(&ev.actor.id),
            strip(name),
        ];
        vs.iter()
            .any(|v| candidates.iter().any(|c| !c.is_empty() && c == v))
    }

    fn labels(&self, ev: &Event) -> bool {
        let Some(vs) = self.values("label") else {
            return true;
        };
        vs.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => ev.actor.attributes.get(k).is_some_and(|a| a == v),
            None => ev.actor.attributes.contains_key(l.as_str()),
        })
    }

    /// Whether `ev` passes every filter.
    pub fn matches(&self, ev: &Event) -> bool {
        self.event(ev)
            && self.exact("type", &ev.kind)
            && self.exact("scope", &ev.scope)
            && self.by_name_of_kind("container", ev)
            && self.by_name_of_kind("network", ev)
            && self.by_name_of_kind("volume", ev)
            && self.by_name_of_kind("daemon", ev)
            && self.image(ev)
            && self.labels(ev)
            // Berth has no plugin or swarm events: such a filter keeps nothing.
            && ["plugin", "node", "service", "secret", "config"]
                .iter()
                .all(|k| self.values(k).is_none())
    }

    /// `network=x` keeps the events whose actor is network x (ID, ID prefix or name); events
    /// of other types drop out. Likewise `container=`, `volume=`, `daemon=`.
    fn by_name_of_kind(&self, kind: &str, ev: &Event) -> bool {
        match self.values(kind) {
            None => true,
            Some(_) => ev.kind == kind && self.by_name(kind, ev),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn filter(kv: &[(&str, &[&str])]) -> EventFilter {
        EventFilter::new(
            kv.iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect(),
        )
        .unwrap()
    }

    fn container(action: &str) -> Event {
        Event::new(
            "container",
            action,
            "abc123def456",
            attrs(&[("name", "web"), ("image", "busybox:latest"), ("app", "x")]),
            5_000_000_000,
        )
    }

    fn network(action: &str) -> Event {
        Event::new(
            "network",
            action,
            "fedcba987654",
            attrs(&[("name", "net1"), ("type", "bridge")]),
            6_000_000_000,
        )
    }

    #[test]
    fn json_shape_and_legacy_fields() {
        let v = serde_json::to_value(container("die")).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["Actor"]["ID"], "abc123def456");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["time"], 5);
        assert_eq!(v["timeNano"], 5_000_000_000i64);
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], "abc123def456");
        assert_eq!(v["from"], "busybox:latest");
        let n = serde_json::to_value(network("create")).unwrap();
        assert!(n.get("status").is_none() && n.get("id").is_none(), "{n}");
        let i = serde_json::to_value(Event::new("image", "pull", "busybox:latest", attrs(&[]), 1))
            .unwrap();
        assert_eq!(i["status"], "pull");
        assert!(i.get("from").is_none(), "{i}");
    }

    #[test]
    fn filters() {
        let c = container("start");
        let n = network("create");
        assert!(filter(&[]).matches(&c));
        assert!(filter(&[("type", &["container"])]).matches(&c));
        assert!(!filter(&[("type", &["container"])]).matches(&n));
        assert!(filter(&[("type", &["image", "network"])]).matches(&n));
        assert!(filter(&[("event", &["start", "die"])]).matches(&c));
        assert!(!filter(&[("event", &["die"])]).matches(&c));
        // Keys combine with AND.
        assert!(!filter(&[("type", &["container"]), ("event", &["die"])]).matches(&c));
        // container: ID, ID prefix or name; other event types drop out.
        assert!(filter(&[("container", &["web"])]).matches(&c));
        assert!(filter(&[("container", &["abc123"])]).matches(&c));
        assert!(!filter(&[("container", &["db"])]).matches(&c));
        assert!(!filter(&[("container", &["web"])]).matches(&n));
        assert!(filter(&[("network", &["net1"])]).matches(&n));
        assert!(filter(&[("network", &["fedcba"])]).matches(&n));
        assert!(!filter(&[("network", &["net2"])]).matches(&n));
        assert!(!filter(&[("network", &["net1"])]).matches(&c));
        // image: the image attribute with or without tag.
        assert!(filter(&[("image", &["busybox"])]).matches(&c));
        assert!(filter(&[("image", &["busybox:latest"])]).matches(&c));
        assert!(!filter(&[("image", &["alpine"])]).matches(&c));
        // label: key or key=value against the attributes, all must match.
        assert!(filter(&[("label", &["app"])]).matches(&c));
        assert!(filter(&[("label", &["app=x"])]).matches(&c));
        assert!(!filter(&[("label", &["app=y"])]).matches(&c));
        assert!(!filter(&[("label", &["app=x", "tier"])]).matches(&c));
        assert!(filter(&[("scope", &["local"])]).matches(&c));
        assert!(!filter(&[("scope", &["swarm"])]).matches(&c));
        assert!(!filter(&[("daemon", &["d1"])]).matches(&c));
    }

    #[test]
    fn health_status_matches_by_prefix() {
        let h = container("health_status: healthy");
        assert!(filter(&[("event", &["health_status"])]).matches(&h));
        assert!(filter(&[("event", &["health_status: healthy"])]).matches(&h));
        assert!(!filter(&[("event", &["health_status: unhealthy"])]).matches(&h));
        // Only those actions match by prefix.
        assert!(!filter(&[("event", &["sta"])]).matches(&container("start")));
    }

    #[test]
    fn unknown_filter_is_named() {
        let e = EventFilter::new(BTreeMap::from([("colour".to_string(), vec![])])).unwrap_err();
        assert!(e.contains("'colour'"), "{e}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("0").unwrap(), 0);
        assert_eq!(parse_timestamp("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_timestamp("12.5").unwrap(), 12_500_000_000);
        assert_eq!(parse_timestamp("12.000000001").unwrap(), 12_000_000_001);
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:10Z").unwrap(),
            10_000_000_000
        );
        for bad in ["", "x", "-1", "1.2.3", "1.0000000001", "10m"] {
            let e = parse_timestamp(bad).unwrap_err();
            assert!(e.contains("invalid timestamp"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn since_replays_ring_and_live_follows() {
        let ev = Events::new();
        ev.publish(Event::new("network", "create", "a", attrs(&[]), 1_000));
        ev.publish(Event::new("network", "destroy", "a", attrs(&[]), 2_000));
        let (past, _) = ev.subscribe(Some(1_500));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].action, "destroy");
        let (past, mut rx) = ev.subscribe(None);
        assert!(past.is_empty());
        assert_eq!(ev.listeners(), 1);
        ev.emit("volume", "create", "v", attrs(&[]));
        let live = rx.recv().await.unwrap();
        assert_eq!(
            (live.kind.as_str(), live.action.as_str()),
            ("volume", "create")
        );
        assert!(live.time_nano > 2_000);
    }

    #[test]
    fn ring_keeps_the_newest() {
        let ev = Events::new();
        for i in 0..(RING as i64 + 10) {
            ev.publish(Event::new("image", "tag", "x", attrs(&[]), i));
        }
        let (past, _) = ev.subscribe(Some(0));
        assert_eq!(past.len(), RING);
        assert_eq!(past[0].time_nano, 10);
    }
}
