//! The image service: list, inspect, history, pull, push, tag, remove, prune, load and save,
//! over the store and the registry client. berthd translates HTTP to these calls and these
//! results to Docker's JSON; the field names of the result types are Docker's.
//!
//! An image's ID is its config digest (`sha256:<config hex>`), as in Docker's classic image
//! store. A name resolves like Docker: a tag reference (`busybox`, `127.0.0.1:5000/x:1`), a
//! digest reference (`name@sha256:..`, one of the image's recorded repository digests), a
//! full ID (`sha256:<hex>` or 64 hex) or a unique prefix of the ID's hex.
//!
//! `RepoDigests` are what a registry knows: a pull records `repo@<digest it served>` (the
//! index's for a multi-platform image), a push `repo@<manifest digest it accepted>`. A build,
//! a load or a tag records none. Removing a repository's last tag of an image removes that
//! repository's digests too (Docker's rule); removing the image removes them all.
//!
//! SQLite, tar and GC work is synchronous: every async method runs it on the blocking pool.

use berth_registry::image_pull::{pull_image, Pulled};
use berth_registry::store_sink::StoreSource;
use berth_registry::{Client, Credentials, Platform, Progress, RegistryConfig};
use berth_store::image::ImageConfig;
use berth_store::meta::{Db, ImageRecord, RepoDigest};
use berth_store::reference::Reference;
use berth_store::store::Store;
use berth_store::unpack::Limits;
use berth_store::{archive, gc, Digest, ErrorKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tracing::instrument;

/// The most config JSON read for one image.
const MAX_CONFIG: u64 = 16 << 20;
/// The most manifest JSON read for one image.
const MAX_MANIFEST: u64 = 4 << 20;

/// An image-service failure: what kind (for the HTTP status) and a message for the user.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<berth_store::Error> for Error {
    fn from(e: berth_store::Error) -> Error {
        Error::new(e.kind(), e.to_string())
    }
}

impl From<berth_registry::Error> for Error {
    fn from(e: berth_registry::Error) -> Error {
        Error::new(e.kind(), e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One row of `GET /images/json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: u64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: InspectConfig,
    /// Dropped from Docker's API in 1.45, but docker-compose 1.29 (docker-py) reads it when
    /// it recreates a container; a copy of `Config` keeps that working.
    pub container_config: InspectConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: u64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub healthcheck: Option<serde_json::Value>,
    pub args_escaped: Option<bool>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub shell: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

/// One entry of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Option<Vec<String>>,
    pub size: u64,
    pub comment: String,
}

/// One entry of the `DELETE /images/{name}` and prune answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The reference as Docker prints it (`127.0.0.1:5000/x:latest`, `busybox:latest`).
    pub familiar: String,
    /// The digest the reference resolved to (the index's, if the image came from one).
    pub digest: Digest,
    /// The tag already pointed at this image before the pull.
    pub up_to_date: bool,
    pub pulled: Pulled,
}

/// One step of `pull --all-tags`, in order: for each tag `Started`, its `Progress`, then
/// `Finished`.
#[derive(Debug, Clone)]
pub enum TagPull {
    /// The pull of one tag begins.
    Started {
        tag: String,
    },
    Progress(Progress),
    /// The tag is pulled, unpacked and tagged.
    Finished(Box<PullOutcome>),
}

/// What `pull --all-tags` did.
#[derive(Debug, Clone)]
pub struct AllTagsOutcome {
    /// The repository as Docker prints it (`busybox`, `127.0.0.1:5000/x`).
    pub familiar: String,
    /// One outcome per tag, in the registry's order.
    pub tags: Vec<PullOutcome>,
    /// Every tag already pointed at the image it names now.
    pub up_to_date: bool,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
}

/// What `save` will write: manifests with the names to record for each.
#[derive(Debug, Clone)]
pub struct SavePlan {
    entries: Vec<(Digest, Vec<String>)>,
}

/// A name resolved to a stored image.
#[derive(Debug, Clone)]
struct Resolved {
    record: ImageRecord,
    /// The normalised tag the name matched, if it was a tag reference.
    tag: Option<String>,
    /// The recorded `(repository, digest)` the name matched, if it was a digest reference.
    repo_digest: Option<(String, Digest)>,
}

/// What a container needs from its image.
#[derive(Debug, Clone)]
pub struct RunImage {
    /// The image ID (config digest).
    pub id: String,
    pub manifest: String,
    pub config: berth_store::image::ContainerConfig,
    /// Overlay lowerdirs, top layer first (empty for an image without layers).
    pub lowerdirs: Vec<std::path::PathBuf>,
}

/// Counts `GET /info` reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageCounts {
    pub images: usize,
}

/// The image service. Cheap to clone.
#[derive(Clone)]
pub struct ImageService {
    store: Arc<Store>,
    /// The registry settings and the client built from them; replaced as a whole on reload.
    registry: Arc<std::sync::RwLock<(RegistryConfig, Client)>>,
    /// The last pulls, newest last, at most [`PULL_HISTORY`].
    pulls: Arc<std::sync::Mutex<std::collections::VecDeque<PullRecord>>>,
}

/// How many pulls [`ImageService::recent_pulls`] remembers.
pub const PULL_HISTORY: usize = 32;

/// One finished pull and where its pieces came from (the desktop's mirror panel shows it;
/// berthd serves it at `GET /berth/pulls`).
#[derive(Debug, Clone, Serialize)]
pub struct PullRecord {
    pub reference: String,
    pub digest: String,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// (digest, endpoint) for every manifest and blob downloaded; blobs that already existed
    /// locally are not listed.
    pub blobs: Vec<(String, String)>,
    /// (endpoint, why) for every endpoint skipped.
    pub skipped: Vec<(String, String)>,
}

impl ImageService {
    pub fn new(store: Arc<Store>, config: RegistryConfig) -> Result<ImageService> {
        let client = Client::new(config.clone())?;
        Ok(ImageService {
            store,
            registry: Arc::new(std::sync::RwLock::new((config, client))),
            pulls: Arc::default(),
        })
    }

    /// The last pulls, newest first.
    pub fn recent_pulls(&self) -> Vec<PullRecord> {
        let q = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().rev().cloned().collect()
    }

    fn record_pull(&self, reference: String, digest: Digest, pulled: &Pulled) {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let rec = PullRecord {
            reference,
            digest: digest.to_string(),
            time_ms,
            blobs: pulled
                .result
                .served_by
                .iter()
                .map(|(d, e)| (d.to_string(), e.clone()))
                .collect(),
            skipped: pulled.result.skipped.clone(),
        };
        let mut q = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= PULL_HISTORY {
            q.pop_front();
        }
        q.push_back(rec);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The registry settings in force.
    pub fn registry_config(&self) -> RegistryConfig {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Replace the registry settings (mirrors, insecure registries) without a restart
    /// (berthd does this on SIGHUP). Pulls already running keep the settings they began with.
    pub fn reload_registry(&self, config: RegistryConfig) -> Result<()> {
        let client = Client::new(config.clone())?;
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = (config, client);
        Ok(())
    }

    /// Run `f` on the blocking pool with the store.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::internal(format!("image worker failed: {e}")))?
    }

    pub async fn counts(&self) -> Result<ImageCounts> {
        self.blocking(|s| {
            Ok(ImageCounts {
                images: s.db()?.images()?.len(),
            })
        })
        .await
    }

    /// Resolve `name` for a new container and pin the image (it cannot be removed while the
    /// container exists). Gives the image's config and its overlay lowerdirs, top first.
    pub async fn pin_for_container(&self, name: &str, container: &str) -> Result<RunImage> {
        let name = name.to_string();
        let container = container.to_string();
        self.blocking(move |s| {
            let rec = {
                let db = s.db()?;
                resolve(&db, &name)?.record
            };
            let cfg = read_config(s, &rec)?;
            let chain = berth_store::snapshot::chain_ids(&cfg.rootfs.diff_ids);
            let snaps = berth_store::snapshot::Snapshots::open(&s.snapshots_dir())?;
            static UNPACK: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one_at_a_time = UNPACK.lock().unwrap_or_else(|p| p.into_inner());
            if !chain.iter().all(|c| snaps.exists(c)) {
                // Loaded images keep only blobs: unpack them now, under a lease.
                let lease = s.lease(std::time::Duration::from_secs(3600))?;
                for c in &chain {
                    lease.add(c)?;
                }
                let layers = rec
                    .layers
                    .iter()
                    .map(|l| {
                        Ok((
                            berth_store::unpack::Compression::from_media_type(&l.media_type)?,
                            l.diff_id,
                        ))
                    })
                    .collect::<berth_store::Result<Vec<_>>>()?;
                let unpacked = berth_store::snapshot::unpack_layers(
                    &snaps,
                    &layers,
                    |i| {
                        Ok(Box::new(std::io::BufReader::with_capacity(
                            1 << 20,
                            s.content.open_blob(&rec.layers[i].digest)?,
                        )))
                    },
                    &Limits::default(),
                )?;
                let mut db = s.db()?;
                for (i, c) in unpacked.iter().enumerate() {
                    let parent = i.checked_sub(1).map(|p| &unpacked[p]);
                    db.put_layer(c, &rec.layers[i].diff_id, parent, rec.layers[i].size)?;
                }
            }
            let lowerdirs = snaps.lowerdirs(&chain).map_err(|e| {
                Error::internal(format!(
                    "image {name} is not completely unpacked ({e}); pull it again"
                ))
            })?;
            s.db()?.put_container(&container, &rec.manifest)?;
            Ok(RunImage {
                id: rec.config.to_string(),
                manifest: rec.manifest.to_string(),
                config: cfg.config,
                lowerdirs,
            })
        })
        .await
    }

    /// Release a container's pin on its image.
    pub async fn unpin_container(&self, container: &str) -> Result<()> {
        let container = container.to_string();
        self.blocking(move |s| {
            s.db()?.remove_container(&container)?;
            Ok(())
        })
        .await
    }

    /// The image ID a name resolves to (for `ancestor` filters), if any.
    pub async fn resolve_id(&self, name: &str) -> Option<String> {
        let name = name.to_string();
        self.blocking(move |s| {
            let db = s.db()?;
            Ok(resolve(&db, &name)?.record.config.to_string())
        })
        .await
        .ok()
    }

    /// `GET /images/json`. `dangling`: Some(true) only untagged, Some(false) only tagged.
    /// `reference`: only images with a tag matching one of these familiar names (`repo` or
    /// `repo:tag`).
    #[instrument(skip(self))]
    pub async fn list(
        &self,
        dangling: Option<bool>,
        reference: Vec<String>,
        labels: Vec<String>,
        all: bool,
    ) -> Result<Vec<ImageSummary>> {
        self.blocking(move |s| {
            let db = s.db()?;
            let tags = db.tags()?;
            let recorded = db.repo_digests()?;
            // Build steps' images are intermediate: listed only with `all` unless tagged.
            let steps: BTreeSet<Digest> = if all {
                BTreeSet::new()
            } else {
                db.build_cache_images()?.into_iter().collect()
            };
            let mut out = Vec::new();
            for rec in db.images()? {
                let names = names_of(&tags, &rec.manifest);
                let digests = repo_digests(&recorded, &rec.manifest);
                if names.is_empty() && digests.is_empty() && steps.contains(&rec.manifest) {
                    continue;
                }
                // Docker: dangling=true lists the untagged images (a repository digest does
                // not make a name); dangling=false hides only images with no name at all.
                match dangling {
                    Some(true) if !names.is_empty() => continue,
                    Some(false) if names.is_empty() && digests.is_empty() => continue,
                    _ => {}
                }
                // With a reference filter, only the matching names are listed (Docker's rule:
                // `docker images repo` shows that repository's tags and digests, not every
                // name the image also has).
                let (names, digests): (Vec<_>, Vec<_>) = if reference.is_empty() {
                    (names, digests)
                } else {
                    let names: Vec<_> = names
                        .into_iter()
                        .filter(|r| {
                            reference
                                .iter()
                                .any(|want| want == &r.familiar() || want == &r.familiar_name())
                        })
                        .collect();
                    let digests: Vec<_> = digests
                        .into_iter()
                        .filter(|rd| {
                            let repo = rd.split_once('@').map_or(rd.as_str(), |(r, _)| r);
                            reference.iter().any(|want| want == rd || want == repo)
                        })
                        .collect();
                    if names.is_empty() && digests.is_empty() {
                        continue;
                    }
                    (names, digests)
                };
                let repo_tags: Vec<String> = names.iter().map(|r| r.familiar()).collect();
                let cfg = read_config(s, &rec)?;
                if !labels.iter().all(|l| label_matches(&cfg.config.labels, l)) {
                    continue;
                }
                out.push(ImageSummary {
                    id: rec.config.to_string(),
                    parent_id: String::new(),
                    repo_tags,
                    repo_digests: digests,
                    created: cfg
                        .created
                        .as_deref()
                        .and_then(rfc3339_to_unix)
                        .unwrap_or(0),
                    size: rec.size,
                    shared_size: -1,
                    labels: cfg.config.labels.clone(),
                    containers: -1,
                });
            }
            out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
            Ok(out)
        })
        .await
    }

    /// `GET /images/{name}/json`.
    #[instrument(skip(self))]
    pub async fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let name = name.to_string();
        self.blocking(move |s| {
            let db = s.db()?;
            let r = resolve(&db, &name)?;
            let rec = r.record;
            let names = names_of(&db.tags()?, &rec.manifest);
            let digests = repo_digests(&db.repo_digests_of(&rec.manifest)?, &rec.manifest);
            drop(db);
            let cfg = read_config(s, &rec)?;
            let c = cfg.config;
            let mut metadata = BTreeMap::new();
            metadata.insert("LastTagTime".to_string(), serde_json::Value::Null);
            let config = InspectConfig {
                hostname: String::new(),
                domainname: String::new(),
                user: c.user,
                attach_stdin: false,
                attach_stdout: false,
                attach_stderr: false,
                exposed_ports: non_empty(c.exposed_ports),
                tty: false,
                open_stdin: false,
                stdin_once: false,
                env: (!c.env.is_empty()).then_some(c.env),
                cmd: c.cmd,
                healthcheck: c.healthcheck,
                args_escaped: c.args_escaped,
                image: String::new(),
                volumes: non_empty(c.volumes),
                working_dir: c.working_dir,
                entrypoint: c.entrypoint,
                on_build: c.on_build,
                labels: non_empty(c.labels),
                stop_signal: c.stop_signal,
                shell: c.shell,
            };
            Ok(ImageInspect {
                id: rec.config.to_string(),
                repo_tags: names.iter().map(|r| r.familiar()).collect(),
                repo_digests: digests,
                parent: String::new(),
                comment: cfg
                    .history
                    .last()
                    .and_then(|h| h.comment.clone())
                    .unwrap_or_default(),
                created: cfg.created.clone().unwrap_or_default(),
                docker_version: String::new(),
                author: cfg.author.clone().unwrap_or_default(),
                config: config.clone(),
                container_config: config,
                architecture: cfg.architecture,
                variant: cfg.variant,
                os: cfg.os,
                os_version: cfg.os_version,
                size: rec.size,
                graph_driver: GraphDriver {
                    name: "overlay2".into(),
                    data: BTreeMap::new(),
                },
                root_fs: InspectRootFs {
                    kind: "layers".into(),
                    layers: cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
                },
                metadata,
            })
        })
        .await
    }

    /// `GET /images/{name}/history`, newest first.
    #[instrument(skip(self))]
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let name = name.to_string();
        self.blocking(move |s| {
            let db = s.db()?;
            let rec = resolve(&db, &name)?.record;
            let tags: Vec<String> = names_of(&db.tags()?, &rec.manifest)
                .iter()
                .map(|r| r.familiar())
                .collect();
            drop(db);
            let cfg = read_config(s, &rec)?;
            let mut layers = rec.layers.iter();
            let mut items: Vec<HistoryItem> = Vec::new();
            if cfg.history.is_empty() {
                for l in &rec.layers {
                    items.push(HistoryItem {
                        id: "<missing>".into(),
                        created: 0,
                        created_by: String::new(),
                        tags: None,
                        size: l.size,
                        comment: String::new(),
                    });
                }
            }
            for h in &cfg.history {
                let size = if h.empty_layer {
                    0
                } else {
                    layers.next().map_or(0, |l| l.size)
                };
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created: h.created.as_deref().and_then(rfc3339_to_unix).unwrap_or(0),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: None,
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                });
            }
            items.reverse();
            if let Some(top) = items.first_mut() {
                top.id = rec.config.to_string();
                top.tags = Some(tags);
            }
            Ok(items)
        })
        .await
    }

    /// Pull `r` (through the configured mirrors) and tag it. Progress goes to `progress`.
    /// `auth`: credentials for the reference's registry, from `X-Registry-Auth`.
    #[instrument(skip(self, auth, progress), fields(reference = %r))]
    pub async fn pull(
        &self,
        r: &Reference,
        platform: Option<Platform>,
        auth: Option<Credentials>,
        progress: UnboundedSender<Progress>,
    ) -> Result<PullOutcome> {
        // What the reference named before the pull (to say "Image is up to date").
        let before = {
            let name = r.name_with_tag();
            let repo = r.repository();
            let digest = r.digest;
            self.blocking(move |s| {
                let db = s.db()?;
                Ok(match digest {
                    Some(d) => db.resolve_repo_digest(&repo, &d)?,
                    None => db.resolve_tag(&name)?,
                })
            })
            .await?
        };
        let client = self.client_with(&r.domain, auth)?;
        let platform = platform.unwrap_or_else(Platform::host);
        let pulled = pull_image(
            &client,
            &self.store,
            r,
            &platform,
            Limits::default(),
            progress,
        )
        .await
        .map_err(|e| pull_error(r, e))?;
        let digest = pulled
            .result
            .index
            .as_ref()
            .map_or(pulled.record.manifest, |(d, _)| *d);
        self.record_pull(r.familiar(), digest, &pulled);
        Ok(PullOutcome {
            familiar: r.familiar(),
            digest,
            up_to_date: before == Some(pulled.record.manifest),
            pulled,
        })
    }

    /// Pull every tag of `repo`'s repository (its tag or digest is ignored), one after the
    /// other, each pulled and tagged as [`ImageService::pull`] does. Tags are listed by the
    /// registry or a mirror allowed to resolve tags. The first tag that fails stops the pull,
    /// with the tag named in the error; tags pulled before it stay.
    #[instrument(skip(self, auth, progress), fields(repository = %repo.repository()))]
    pub async fn pull_all_tags(
        &self,
        repo: &Reference,
        platform: Option<Platform>,
        auth: Option<Credentials>,
        progress: UnboundedSender<TagPull>,
    ) -> Result<AllTagsOutcome> {
        let name_only = Reference {
            tag: None,
            digest: None,
            ..repo.clone()
        };
        let familiar = name_only.familiar();
        let client = self.client_with(&repo.domain, auth.clone())?;
        let (stx, mut srx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
        let tags = client.list_tags(&name_only, &stx).await;
        drop(stx);
        while let Ok(p) = srx.try_recv() {
            let _ = progress.send(TagPull::Progress(p));
        }
        let tags = tags.map_err(|e| {
            let msg = e.to_string();
            Error::new(e.kind(), format!("pulling all tags of {familiar}: {msg}"))
        })?;
        if tags.is_empty() {
            return Err(Error::not_found(format!(
                "{familiar}: the registry lists no tags for this repository; nothing to pull"
            )));
        }
        let mut out = Vec::with_capacity(tags.len());
        for tag in tags {
            let r = Reference::parse_normalized(&format!("{}:{tag}", name_only.repository()))
                .map_err(|e| {
                    Error::invalid(format!(
                        "{familiar}: the registry lists an invalid tag \"{tag}\": {e}"
                    ))
                })?;
            let _ = progress.send(TagPull::Started { tag: tag.clone() });
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
            let fwd = {
                let progress = progress.clone();
                tokio::spawn(async move {
                    while let Some(p) = prx.recv().await {
                        if progress.send(TagPull::Progress(p)).is_err() {
                            break;
                        }
                    }
                })
            };
            let res = self.pull(&r, platform.clone(), auth.clone(), ptx).await;
            let _ = fwd.await;
            let o = res.map_err(|e| {
                let tagged = r.familiar();
                if e.message.contains(&tagged) || e.message.contains(&r.to_string()) {
                    e
                } else {
                    Error::new(e.kind, format!("pulling {tagged}: {}", e.message))
                }
            })?;
            let _ = progress.send(TagPull::Finished(Box::new(o.clone())));
            out.push(o);
        }
        Ok(AllTagsOutcome {
            familiar,
            up_to_date: out.iter().all(|o| o.up_to_date),
            tags: out,
        })
    }

    /// Push `repo:tag` (its platform manifest) to its registry.
    #[instrument(skip(self, auth, progress))]
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        auth: Option<Credentials>,
        progress: UnboundedSender<Progress>,
    ) -> Result<PushOutcome> {
        let tag = if tag.is_empty() { "latest" } else { tag };
        let r = Reference::parse_normalized(&format!("{repo}:{tag}"))
            .map_err(|e| Error::invalid(e.to_string()))?;
        let name = r.name_with_tag();
        let familiar = r.familiar();
        let (rec, bytes) = self
            .blocking(move |s| {
                let manifest = s
                    .db()?
                    .resolve_tag(&name)?
                    .ok_or_else(|| Error::not_found(format!("No such image: {familiar}")))?;
                let rec = s
                    .db()?
                    .image(&manifest)?
                    .ok_or_else(|| Error::not_found(format!("No such image: {familiar}")))?;
                let bytes = s.content.read_limited(&manifest, MAX_MANIFEST)?;
                Ok((rec, bytes))
            })
            .await?;
        let client = self.client_with(&r.domain, auth)?;
        let source = StoreSource {
            store: Arc::clone(&self.store),
        };
        // Docker reports layers only: drop the config blob's events.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
        let config = rec.config;
        let forward = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let about_config = matches!(&p,
                    Progress::Exists { digest }
                    | Progress::Uploading { digest, .. }
                    | Progress::Mounted { digest, .. }
                    | Progress::Done { digest, .. } if *digest == config);
                if !about_config && progress.send(p).is_err() {
                    break;
                }
            }
        });
        let res = client.push(&r, &source, &bytes, &rec.media_type, tx).await;
        let _ = forward.await;
        let digest = res?;
        // The registry has the image now: `repo@digest` is its RepoDigest.
        let repo = r.repository();
        let manifest = rec.manifest;
        self.blocking(move |s| {
            s.db()?.put_repo_digest(&repo, &digest, &manifest)?;
            Ok(())
        })
        .await
        .map_err(|e| {
            Error::new(
                e.kind,
                format!(
                    "pushed {}@{digest}, but recording it as the image's repository digest \
                     failed: {}",
                    r.familiar_name(),
                    e.message
                ),
            )
        })?;
        Ok(PushOutcome {
            tag: tag.to_string(),
            digest,
            size: bytes.len() as u64,
        })
    }

    /// The shared client, or one carrying `auth` for `domain`.
    fn client_with(&self, domain: &str, auth: Option<Credentials>) -> Result<Client> {
        match auth {
            None => Ok(self
                .registry
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .clone()),
            Some(c) => {
                let mut cfg = self.registry_config();
                cfg.credentials.insert(domain.to_string(), c);
                Ok(Client::new(cfg)?)
            }
        }
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    #[instrument(skip(self))]
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        if repo.is_empty() {
            return Err(Error::invalid("repository name (repo) must not be empty"));
        }
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let t = Reference::parse_normalized(&target).map_err(|e| Error::invalid(e.to_string()))?;
        if t.digest.is_some() {
            return Err(Error::invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let source = source.to_string();
        self.blocking(move |s| {
            let mut db = s.db()?;
            let r = resolve(&db, &source)?;
            db.set_tag(&t.name_with_tag(), &r.record.manifest)?;
            Ok(())
        })
        .await
    }

    /// `DELETE /images/{name}?force=`: untag, and delete the image when nothing names it.
    #[instrument(skip(self))]
    pub async fn remove(&self, name: &str, force: bool) -> Result<Vec<DeleteItem>> {
        let name = name.to_string();
        self.blocking(move |s| {
            let mut out = Vec::new();
            {
                let mut db = s.db()?;
                let r = resolve(&db, &name)?;
                let rec = r.record;
                let short = &rec.config.hex()[..12];
                let all_tags: Vec<String> = db
                    .tags()?
                    .into_iter()
                    .filter(|(_, d)| *d == rec.manifest)
                    .map(|(n, _)| n)
                    .collect();
                let digests: Vec<(String, Digest)> = db
                    .repo_digests_of(&rec.manifest)?
                    .into_iter()
                    .map(|rd| (rd.repo, rd.digest))
                    .collect();
                let users: Vec<String> = db
                    .containers()?
                    .into_iter()
                    .filter(|(_, d)| *d == rec.manifest)
                    .map(|(c, _)| c)
                    .collect();
                let in_use_conflict = |shown: &str| {
                    Error::conflict(format!(
                        "conflict: unable to remove repository reference \"{shown}\" (must \
                         force) - container {} is using its referenced image {short}",
                        &users[0][..12.min(users[0].len())]
                    ))
                };
                let (untag, undigest): (Vec<String>, Vec<(String, Digest)>) =
                    match (&r.tag, &r.repo_digest) {
                        // Docker: the last name of an image a container uses is kept unless
                        // forced.
                        (Some(t), _) if all_tags.len() == 1 && !force && !users.is_empty() => {
                            return Err(in_use_conflict(&familiar_tag(t)));
                        }
                        (Some(t), _) => {
                            // The repository's last tag takes that repository's digests along.
                            let repo = repository_of(t);
                            let kept = all_tags.iter().any(|o| o != t && repository_of(o) == repo);
                            let gone = if kept {
                                Vec::new()
                            } else {
                                digests
                                    .iter()
                                    .filter(|(r, _)| Some(r) == repo.as_ref())
                                    .cloned()
                                    .collect()
                            };
                            (vec![t.clone()], gone)
                        }
                        (None, Some(rd)) => {
                            if all_tags.is_empty()
                                && digests.len() == 1
                                && !force
                                && !users.is_empty()
                            {
                                return Err(in_use_conflict(&familiar_digest(&rd.0, &rd.1)));
                            }
                            (Vec::new(), vec![rd.clone()])
                        }
                        (None, None) => {
                            let repos: BTreeSet<String> = all_tags
                                .iter()
                                .filter_map(|t| repository_of(t))
                                .chain(digests.iter().map(|(r, _)| r.clone()))
                                .collect();
                            if repos.len() > 1 && !force {
                                return Err(Error::conflict(format!(
                                    "conflict: unable to delete {short} (must be forced) - \
                                     image is referenced in multiple repositories"
                                )));
                            }
                            if let Some(c) = users.first() {
                                return Err(Error::conflict(format!(
                                    "conflict: unable to delete {short} (cannot be forced) - \
                                     image is being used by container {c}"
                                )));
                            }
                            (all_tags.clone(), digests.clone())
                        }
                    };
                let mut removed = 0;
                for t in &untag {
                    if db.remove_tag(t)? {
                        removed += 1;
                        out.push(DeleteItem::Untagged(familiar_tag(t)));
                    }
                }
                for (repo, d) in &undigest {
                    if db.remove_repo_digest(repo, d)? {
                        removed += 1;
                        out.push(DeleteItem::Untagged(familiar_digest(repo, d)));
                    }
                }
                let names = all_tags.len() + digests.len();
                if removed >= names && users.is_empty() {
                    db.delete_image(&rec.manifest)?;
                    out.push(DeleteItem::Deleted(rec.config.to_string()));
                }
            }
            if out.iter().any(|i| matches!(i, DeleteItem::Deleted(_))) {
                gc::collect(s)?;
            }
            Ok(out)
        })
        .await
    }

    /// `POST /images/prune`: untagged images (or, with `all`, every image no container uses),
    /// then everything nothing references.
    #[instrument(skip(self))]
    pub async fn prune(&self, all: bool) -> Result<PruneReport> {
        self.blocking(move |s| {
            let config_of: BTreeMap<Digest, Digest> = s
                .db()?
                .images()?
                .into_iter()
                .map(|r| (r.manifest, r.config))
                .collect();
            let mut deleted = Vec::new();
            if all {
                let mut db = s.db()?;
                let used: BTreeSet<Digest> = db.containers()?.into_iter().map(|(_, d)| d).collect();
                let tags = db.tags()?;
                for (manifest, config) in &config_of {
                    if used.contains(manifest) {
                        continue;
                    }
                    for (name, _) in tags.iter().filter(|(_, d)| d == manifest) {
                        db.remove_tag(name)?;
                        deleted.push(DeleteItem::Untagged(familiar_tag(name)));
                    }
                    for rd in db.repo_digests_of(manifest)? {
                        deleted.push(DeleteItem::Untagged(familiar_digest(&rd.repo, &rd.digest)));
                    }
                    db.delete_image(manifest)?;
                    deleted.push(DeleteItem::Deleted(config.to_string()));
                }
            } else {
                for m in gc::prune_dangling(s)? {
                    let id = config_of
                        .get(&m)
                        .map_or_else(|| m.to_string(), |c| c.to_string());
                    deleted.push(DeleteItem::Deleted(id));
                }
            }
            let rep = gc::collect(s)?;
            Ok(PruneReport {
                images_deleted: deleted,
                space_reclaimed: rep.bytes_freed,
            })
        })
        .await
    }

    /// Resolve the names `save` was given (errors before any byte is written).
    #[instrument(skip(self))]
    pub async fn plan_save(&self, names: Vec<String>) -> Result<SavePlan> {
        if names.is_empty() {
            return Err(Error::invalid("save needs at least one image name"));
        }
        self.blocking(move |s| {
            let db = s.db()?;
            let mut entries: Vec<(Digest, Vec<String>)> = Vec::new();
            for n in &names {
                let r = resolve(&db, n)?;
                let tags: Vec<String> = r.tag.into_iter().collect();
                match entries.iter_mut().find(|(d, _)| *d == r.record.manifest) {
                    Some((_, t)) => t.extend(tags),
                    None => entries.push((r.record.manifest, tags)),
                }
            }
            Ok(SavePlan { entries })
        })
        .await
    }

    /// Write a planned `docker save` archive to `w`. Blocking: call it on the blocking pool.
    pub fn write_save(&self, plan: &SavePlan, w: impl Write) -> Result<()> {
        archive::save(&self.store, &plan.entries, w)?;
        Ok(())
    }

    /// Load a `docker save` (or OCI) archive from `r`; returns Docker's "Loaded image: .."
    /// lines. Blocking: call it on the blocking pool.
    pub fn load_blocking(&self, r: impl Read) -> Result<Vec<String>> {
        let loaded = archive::load(&self.store, r)?;
        let db = self.store.db()?;
        let mut out = Vec::new();
        for l in loaded {
            match l.name {
                Some(n) => {
                    let shown = Reference::parse_normalized(&n)
                        .map(|r| r.familiar())
                        .unwrap_or(n);
                    out.push(format!("Loaded image: {shown}"));
                }
                None => {
                    let id = db
                        .image(&l.manifest)?
                        .map_or_else(|| l.manifest.to_string(), |r| r.config.to_string());
                    out.push(format!("Loaded image ID: {id}"));
                }
            }
        }
        Ok(out)
    }
}

/// A pull failure, worded like Docker's where it matters (the reference is always named).
fn pull_error(r: &Reference, e: berth_registry::Error) -> Error {
    let msg = e.to_string();
    let familiar = r.familiar();
    let message = if msg.contains(&familiar) || msg.contains(&r.to_string()) {
        msg
    } else {
        format!("pulling {familiar}: {msg}")
    };
    Error::new(e.kind(), message)
}

/// Resolve a name the way Docker does (see the module doc).
fn resolve(db: &Db, name: &str) -> Result<Resolved> {
    let no_such = || Error::not_found(format!("No such image: {name}"));
    if let Some(hex) = name.strip_prefix("sha256:") {
        if hex.len() == 64 {
            let d = Digest::parse(name).map_err(|e| Error::invalid(e.to_string()))?;
            return by_digest(db, &d).ok_or_else(no_such);
        }
        return by_id_prefix(db, hex)?.ok_or_else(no_such);
    }
    match Reference::parse_normalized(name) {
        Ok(r) => {
            if let Some(d) = &r.digest {
                // Docker: `repo@digest` names an image only as a recorded repository digest
                // (what a pull or a push of that repository got), never a local digest.
                let repo = r.repository();
                if let Some(m) = db.resolve_repo_digest(&repo, d)? {
                    if let Some(record) = db.image(&m)? {
                        return Ok(Resolved {
                            record,
                            tag: None,
                            repo_digest: Some((repo, *d)),
                        });
                    }
                }
                return Err(Error::not_found(format!("No such image: {}", r.familiar())));
            }
            let tag = r.name_with_tag();
            if let Some(m) = db.resolve_tag(&tag)? {
                if let Some(record) = db.image(&m)? {
                    return Ok(Resolved {
                        record,
                        tag: Some(tag),
                        repo_digest: None,
                    });
                }
            }
            if is_hex(name) {
                if let Some(found) = by_id_prefix(db, name)? {
                    return Ok(found);
                }
                return Err(no_such());
            }
            Err(Error::not_found(format!("No such image: {}", r.familiar())))
        }
        Err(e) => {
            if is_hex(name) {
                return by_id_prefix(db, name)?.ok_or_else(no_such);
            }
            Err(Error::invalid(e.to_string()))
        }
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn by_digest(db: &Db, d: &Digest) -> Option<Resolved> {
    let images = db.images().ok()?;
    let record = images
        .iter()
        .find(|r| r.config == *d)
        .or_else(|| {
            images
                .iter()
                .find(|r| r.manifest == *d || r.index == Some(*d))
        })?
        .clone();
    Some(Resolved {
        record,
        tag: None,
        repo_digest: None,
    })
}

fn by_id_prefix(db: &Db, prefix: &str) -> Result<Option<Resolved>> {
    let images = db.images()?;
    let mut hits: Vec<&ImageRecord> = images
        .iter()
        .filter(|r| r.config.hex().starts_with(prefix))
        .collect();
    hits.dedup_by(|a, b| a.config == b.config);
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(Resolved {
            record: (*one).clone(),
            tag: None,
            repo_digest: None,
        })),
        _ => Err(Error::invalid(format!(
            "the short ID {prefix} is ambiguous: it matches {} images; give more characters",
            hits.len()
        ))),
    }
}

fn names_of(tags: &[(String, Digest)], manifest: &Digest) -> Vec<Reference> {
    let names: Vec<String> = tags
        .iter()
        .filter(|(_, d)| d == manifest)
        .map(|(n, _)| n.clone())
        .collect();
    parse_names(&names)
}

fn parse_names(names: &[String]) -> Vec<Reference> {
    names
        .iter()
        .filter_map(|n| Reference::parse_normalized(n).ok())
        .collect()
}

/// The image's recorded repository digests as Docker shows them (`repo@sha256:..`, the
/// repository in its familiar form), sorted.
fn repo_digests(recorded: &[RepoDigest], manifest: &Digest) -> Vec<String> {
    let shown: BTreeSet<String> = recorded
        .iter()
        .filter(|rd| rd.image == *manifest)
        .map(|rd| familiar_digest(&rd.repo, &rd.digest))
        .collect();
    shown.into_iter().collect()
}

/// `repo@digest` with the repository as Docker prints it (`busybox@sha256:..`).
fn familiar_digest(repo: &str, digest: &Digest) -> String {
    let name = Reference::parse_normalized(repo)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| repo.to_string());
    format!("{name}@{digest}")
}

/// A normalised tag as Docker prints it (`busybox:latest`).
fn familiar_tag(t: &str) -> String {
    Reference::parse_normalized(t)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| t.to_string())
}

/// The normalised repository of a normalised tag (`docker.io/library/busybox`).
fn repository_of(t: &str) -> Option<String> {
    Reference::parse_normalized(t).ok().map(|r| r.repository())
}

fn read_config(s: &Store, rec: &ImageRecord) -> Result<ImageConfig> {
    let bytes = s.content.read_limited(&rec.config, MAX_CONFIG)?;
    Ok(ImageConfig::parse(
        &bytes,
        &format!("image config {}", rec.config),
    )?)
}

fn non_empty<K, V>(m: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

/// `key` or `key=value` against an image's labels.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

/// Seconds since the epoch for an RFC 3339 timestamp; `None` if it is not one.
pub fn rfc3339_to_unix(s: &str) -> Option<i64> {
    berth_time::parse_unix(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_to_unix("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096)
        );
        assert_eq!(
            rfc3339_to_unix("2024-02-29T14:34:56+02:00"),
            Some(1_709_210_096)
        );
        assert_eq!(rfc3339_to_unix("yesterday"), None);
    }

    #[test]
    fn labels() {
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(label_matches(&l, "a"));
        assert!(label_matches(&l, "a=1"));
        assert!(!label_matches(&l, "a=2"));
        assert!(!label_matches(&l, "b"));
    }
}
