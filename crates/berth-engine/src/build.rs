//! `POST /build`: the engine side of Dockerfile builds. [`berth_build::executor`] walks the
//! Dockerfile; this module is its [`Backend`]: base images come from the image service
//! (pulled when missing), every step that changes files runs in a real container of the
//! parent image (created, for `RUN` also started, through the container service, so a build
//! step is confined and networked like any container), the container's overlay upper dir
//! becomes the step's layer ([`crate::layer`]), and each step is stored as an image whose
//! cache key is recorded in the store's `build_cache` table (so the cache survives an engine
//! restart, and only locally built steps are ever cache hits).
//!
//! File access is always through fds: `COPY` sources are resolved inside the build context
//! (`openat2(RESOLVE_IN_ROOT)`: a symlink cannot lead out of it), destinations inside the
//! step container's root ([`ContainerFs::extract`]).

use crate::buildctx::{ContextTar, FdTree, Kind as NodeKind, Node, Tree};
use crate::containerfs::ContainerFs;
use crate::containers::config::{CreateBody, HealthConfig, Mount as ApiMount, TmpfsOptions};
use crate::containers::{ContainerService, WaitCondition};
use crate::fsops;
use crate::images::{Error, ImageService, Result};
use berth_build::executor::{
    Backend, BuildError, BuildOptions, Change, CopyFrom, CopyStep, Image, Log, RunStep,
};
use berth_build::{DockerIgnore, MountKind};
use berth_store::image::ImageConfig;
use berth_store::meta::LayerRef;
use berth_store::store::{Lease, Store};
use berth_store::Digest;
use rustix::fs::{FileType, OFlags};
use serde_json::{json, Value};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The media type of the layers builds make (uncompressed, as the classic builder stores
/// them; `push` sends them as they are).
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// What the client asked for.
pub struct BuildRequest {
    /// The build context, as the client sent it (spooled and indexed, not extracted).
    pub context: ContextTar,
    /// A private directory for this build's own files (context extraction for bind mounts,
    /// downloads); the caller removes it afterwards.
    pub workdir: PathBuf,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub options: BuildOptions,
    /// Remove intermediate containers after a successful step (default true).
    pub rm: bool,
    /// Remove them even after a failed step.
    pub force_rm: bool,
}

/// Progress for the client: Docker's `stream` text or a pull's status objects.
#[derive(Debug, Clone)]
pub enum BuildMsg {
    Stream(String),
    /// A base image's pull, as `docker pull` shows it.
    Pull(berth_registry::Progress),
    /// A status line of that pull (`Pulling from`, `Digest:`, `Status: ...`).
    Status(Value),
}

/// Runs builds. Cheap to clone.
#[derive(Clone)]
pub struct BuildService {
    images: ImageService,
    containers: ContainerService,
    /// Where cache mounts (`RUN --mount=type=cache`) keep their data.
    cache_mounts: PathBuf,
}

impl BuildService {
    pub fn new(images: ImageService, containers: ContainerService, data_root: &Path) -> Self {
        BuildService {
            images,
            containers,
            cache_mounts: data_root.join("build-cache-mounts"),
        }
    }

    /// Build; returns the image ID. Progress goes to `tx` as it happens.
    pub async fn build(
        &self,
        req: BuildRequest,
        tx: mpsc::UnboundedSender<BuildMsg>,
    ) -> Result<String> {
        let svc = self.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || svc.build_blocking(req, tx, rt))
            .await
            .map_err(|e| Error::internal(format!("build worker: {e}")))?
    }

    fn build_blocking(
        &self,
        req: BuildRequest,
        tx: mpsc::UnboundedSender<BuildMsg>,
        rt: tokio::runtime::Handle,
    ) -> Result<String> {
        let ctx = req.context;
        let text = read_in(&ctx, &req.dockerfile, 4 << 20).map_err(|e| {
            Error::invalid(format!(
                "Cannot locate specified Dockerfile: {}: {e}; pass -f with its path in the \
                 build context",
                req.dockerfile
            ))
        })?;
        let text = String::from_utf8(text).map_err(|_| {
            Error::invalid(format!(
                "{}: the Dockerfile is not UTF-8 text; save it as UTF-8",
                req.dockerfile
            ))
        })?;
        let shown = Path::new(&req.dockerfile).file_name().map_or_else(
            || req.dockerfile.clone(),
            |n| n.to_string_lossy().into_owned(),
        );
        let df = berth_build::parse(&text, &shown).map_err(|e| Error::invalid(e.to_string()))?;
        let ignore = match read_in(&ctx, ".dockerignore", 1 << 20) {
            Ok(b) => DockerIgnore::parse(&String::from_utf8_lossy(&b))
                .map_err(|e| Error::invalid(format!(".dockerignore: {e}")))?,
            Err(_) => DockerIgnore::parse("").map_err(|e| Error::invalid(e.to_string()))?,
        };
        // Every tag is checked before anything runs.
        let mut tags = Vec::new();
        for t in &req.tags {
            let r = berth_store::reference::Reference::parse_normalized(t)
                .map_err(|e| Error::invalid(format!("invalid tag {t:?}: {e}")))?;
            if r.digest.is_some() {
                return Err(Error::invalid(format!(
                    "invalid tag {t:?}: a tag cannot contain a digest"
                )));
            }
            tags.push(r);
        }
        let lease = self
            .images
            .store()
            .lease_owned(std::time::Duration::from_secs(24 * 3600))
            .map_err(Error::from)?;
        let mut backend = EngineBackend {
            svc: self,
            rt: rt.clone(),
            store: Arc::clone(self.images.store()),
            ctx,
            workdir: req.workdir.clone(),
            ctx_dir: std::cell::OnceCell::new(),
            ignore,
            tx: tx.clone(),
            rm: req.rm,
            force_rm: req.force_rm,
            lease,
            downloads: Default::default(),
        };
        let mut log = |s: &str| {
            let _ = tx.send(BuildMsg::Stream(s.to_string()));
        };
        let img = berth_build::executor::build(&df, &req.options, &mut backend, &mut log)
            .map_err(|e| Error::invalid(e.message))?;
        let manifest = backend.manifest_of(&img.id)?;
        drop(backend);
        let _ = tx.send(BuildMsg::Stream(format!(
            "Successfully built {}\n",
            img.short_id()
        )));
        for r in &tags {
            let name = r.name_with_tag();
            let store = Arc::clone(self.images.store());
            let mut db = store.db().map_err(Error::from)?;
            db.set_tag(&name, &manifest).map_err(Error::from)?;
            let _ = tx.send(BuildMsg::Stream(format!(
                "Successfully tagged {}\n",
                r.familiar()
            )));
        }
        Ok(img.id)
    }
}

/// Reads a small file of `tree` (never following a symlink out of it).
fn read_in(tree: &dyn Tree, path: &str, max: u64) -> io::Result<Vec<u8>> {
    let (canon, _) = tree.resolve(path)?;
    let mut buf = Vec::new();
    tree.open(&canon)?.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

struct EngineBackend<'a> {
    svc: &'a BuildService,
    rt: tokio::runtime::Handle,
    store: Arc<Store>,
    ctx: ContextTar,
    /// The build's private directory.
    workdir: PathBuf,
    /// The context extracted there, once a bind mount needs it as a directory.
    ctx_dir: std::cell::OnceCell<PathBuf>,
    ignore: DockerIgnore,
    tx: mpsc::UnboundedSender<BuildMsg>,
    rm: bool,
    force_rm: bool,
    /// Protects what this build stores until its images are recorded.
    lease: Lease<'static>,
    /// `ADD <url>`: each URL fetched once per build, into the context (url → path in it).
    downloads: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

fn be(e: impl std::fmt::Display) -> BuildError {
    BuildError::from(e.to_string())
}

impl EngineBackend<'_> {
    fn image_by_id(&self, id: &str) -> Result<Image> {
        let rec = self.record(id)?;
        let bytes = self
            .store
            .content
            .read_limited(&rec.config, 4 << 20)
            .map_err(Error::from)?;
        let config: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("image config {}: {e}", rec.config)))?;
        Ok(Image {
            id: rec.config.to_string(),
            config,
        })
    }

    fn record(&self, id: &str) -> Result<berth_store::meta::ImageRecord> {
        let d = Digest::parse(id).map_err(|e| Error::invalid(e.to_string()))?;
        let db = self.store.db().map_err(Error::from)?;
        db.images()
            .map_err(Error::from)?
            .into_iter()
            .find(|r| r.config == d)
            .ok_or_else(|| Error::not_found(format!("No such image: {id}")))
    }

    fn manifest_of(&self, id: &str) -> Result<Digest> {
        Ok(self.record(id)?.manifest)
    }

    /// Store an image: `config` with `history` appended (and the layer's diff ID, if any),
    /// the parent's layers plus `layer`.
    fn store(
        &self,
        parent: Option<&Image>,
        layer: Option<(Digest, u64)>,
        mut config: Value,
        mut history: Value,
        key: &str,
    ) -> Result<Image> {
        let now = berth_time::now();
        let mut layers: Vec<LayerRef> = match parent {
            Some(p) => self.record(&p.id)?.layers,
            None => Vec::new(),
        };
        if let Some((d, size)) = layer {
            self.lease.add(&d).map_err(Error::from)?;
            layers.push(LayerRef {
                digest: d,
                media_type: LAYER_MEDIA_TYPE.into(),
                size,
                diff_id: d,
            });
        } else {
            history["empty_layer"] = json!(true);
        }
        history["created"] = json!(now);
        if !config.is_object() {
            config = json!({});
        }
        config["created"] = json!(now);
        config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        });
        let mut hist = config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        hist.push(history);
        config["history"] = json!(hist);
        if config.get("os").is_none() {
            config["os"] = json!("linux");
        }
        let config_bytes = serde_json::to_vec(&config)
            .map_err(|e| Error::internal(format!("image config: {e}")))?;
        // The engine's own parser must accept what it stores.
        ImageConfig::parse(&config_bytes, "built image config").map_err(Error::from)?;
        // Leased before it is stored, so a concurrent GC never sees it unprotected.
        let config_digest = Digest::of(&config_bytes);
        self.lease.add(&config_digest).map_err(Error::from)?;
        self.store
            .content
            .put(&config_bytes, Some(&config_digest))
            .map_err(Error::from)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config_bytes.len(),
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type,
                "digest": l.digest.to_string(),
                "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::internal(format!("image manifest: {e}")))?;
        let rec = berth_store::image::store_image(
            &self.store,
            &self.lease,
            &manifest_bytes,
            Some("application/vnd.oci.image.manifest.v1+json"),
            None,
        )
        .map_err(Error::from)?;
        self.store
            .db()
            .and_then(|mut db| db.put_build_cache(key, &rec.manifest))
            .map_err(Error::from)?;
        Ok(Image {
            id: rec.config.to_string(),
            config,
        })
    }

    /// An image to run a step container from: the parent, or for `FROM scratch` an empty
    /// image stored for the purpose.
    fn base_for(&self, parent: Option<&Image>, config: &Value) -> Result<Image> {
        match parent {
            Some(p) => Ok(p.clone()),
            None => {
                let mut c = config.clone();
                c["history"] = json!([]);
                self.store(
                    None,
                    None,
                    c,
                    json!({"created_by": "scratch"}),
                    "scratch-base",
                )
            }
        }
    }

    /// Create (not start) a container of `image` for a step.
    fn create(&self, image: &Image, body: CreateBody) -> Result<String> {
        let mut body = body;
        body.config.image = image.id.clone();
        // Step containers never run the image's healthcheck.
        body.config.healthcheck = Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
        let (id, _) = self.rt.block_on(self.svc.containers.create(body, None))?;
        Ok(id)
    }

    fn remove(&self, id: &str) {
        if let Err(e) = self.rt.block_on(self.svc.containers.remove(id, true, true)) {
            tracing::warn!(container = %id, error = %e, "removing a build container");
        }
    }

    /// The container's changes as a layer blob (`None` when it changed nothing).
    fn layer_of(&self, id: &str) -> Result<Option<(Digest, u64)>> {
        let guard = self.rt.block_on(self.svc.containers.rootfs_guard(id))?;
        let mut skip: Vec<String> = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        skip.extend(guard.mounts.iter().map(|(d, _)| d.clone()));
        let upper = guard.upper.clone();
        if crate::layer::is_empty(&upper, &skip)
            .map_err(|e| Error::internal(format!("reading the step's changes: {e}")))?
        {
            return Ok(None);
        }
        let (d, size) = self
            .store
            .content
            .put_stream_protected(
                |w| crate::layer::write_layer(&upper, &skip, w),
                |d| self.lease.add(d),
            )
            .map_err(Error::from)?;
        drop(guard);
        Ok(Some((d, size)))
    }

    fn send(&self, s: String) {
        let _ = self.tx.send(BuildMsg::Stream(s));
    }

    fn run(&self, parent: &Image, step: &RunStep) -> std::result::Result<String, BuildError> {
        let mut body = CreateBody::default();
        body.config.cmd = Some(step.argv.clone());
        body.config.entrypoint = Some(vec![String::new()]);
        body.config.env = step.env.clone();
        body.config.user = step.user.clone();
        body.config.working_dir = step.workdir.clone();
        body.config.attach_stdout = true;
        body.config.attach_stderr = true;
        body.host_config.network_mode = step.network.clone();
        let mut mounts = Vec::new();
        // `--mount=type=bind,from=...`: the image's root, mounted through a helper container
        // that lives as long as the step.
        let mut helpers: Vec<(String, crate::containers::RootfsGuard)> = Vec::new();
        let mut result = Ok(());
        for m in &step.mounts {
            match self.run_mount(m, step, &mut helpers) {
                Ok(x) => mounts.push(x),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if !mounts.is_empty() {
            body.host_config.mounts = Some(mounts);
        }
        let created = result.and_then(|()| self.create(parent, body).map_err(be));
        let release = |helpers: Vec<(String, crate::containers::RootfsGuard)>| {
            for (cid, guard) in helpers {
                drop(guard);
                self.remove(&cid);
            }
        };
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                release(helpers);
                return Err(e);
            }
        };
        self.send(format!(" ---> Running in {}\n", &id[..12]));
        let ran = self.run_started(&id, step);
        release(helpers);
        match ran {
            Ok(()) => Ok(id),
            Err(e) => {
                // A failed step's container stays for inspection, unless --force-rm.
                if self.force_rm {
                    self.remove(&id);
                }
                Err(e)
            }
        }
    }

    fn run_started(&self, id: &str, step: &RunStep) -> std::result::Result<(), BuildError> {
        let containers = &self.svc.containers;
        let code = self.rt.block_on(async {
            let wait = containers.wait(id, WaitCondition::NextExit)?;
            containers.start(id).await?;
            let (ltx, mut lrx) = mpsc::channel(256);
            let o = crate::containers::LogOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            containers.logs(id, o, ltx)?;
            let tx = self.tx.clone();
            let pump = async move {
                while let Some((_, _, line)) = lrx.recv().await {
                    let mut l = line;
                    if !l.ends_with('\n') {
                        l.push('\n');
                    }
                    let _ = tx.send(BuildMsg::Stream(l));
                }
            };
            let (code, ()) = tokio::join!(wait, pump);
            Ok::<i64, Error>(code)
        });
        let code = code.map_err(be)?;
        if code != 0 {
            return Err(BuildError::from(format!(
                "The command '{}' returned a non-zero code: {code}",
                step.argv.join(" ")
            )));
        }
        Ok(())
    }

    /// A `RUN --mount` as a container mount.
    fn run_mount(
        &self,
        m: &berth_build::RunMount,
        step: &RunStep,
        helpers: &mut Vec<(String, crate::containers::RootfsGuard)>,
    ) -> std::result::Result<ApiMount, BuildError> {
        let mut out = ApiMount {
            target: m.target.clone(),
            read_only: m.readonly,
            ..Default::default()
        };
        match m.kind {
            MountKind::Cache => {
                let id = m.id.clone().unwrap_or_else(|| m.target.clone());
                // The id names a directory of our own: hashed, so no id can reach outside.
                let dir = self.svc.cache_mounts.join(Digest::of(id.as_bytes()).hex());
                std::fs::create_dir_all(&dir).map_err(be)?;
                out.kind = "bind".into();
                out.source = dir.to_string_lossy().into_owned();
            }
            MountKind::Tmpfs => {
                out.kind = "tmpfs".into();
                out.tmpfs_options = Some(TmpfsOptions {
                    size_bytes: m.size.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX)),
                    ..Default::default()
                });
            }
            MountKind::Bind => {
                let src = m.source.clone().unwrap_or_default();
                // The source root: the context, or the `from` image's root file system.
                let (root, root_path): (OwnedFd, PathBuf) = match &m.from {
                    None => {
                        let dir = self.context_dir().map_err(be)?;
                        (fsops::open_dir(&dir).map_err(be)?, dir)
                    }
                    Some(f) => {
                        let im = step.mount_images.get(f).ok_or_else(|| {
                            BuildError::from(format!(
                                "RUN --mount from={f}: unknown image or stage"
                            ))
                        })?;
                        let cid = self.create(im, CreateBody::default()).map_err(be)?;
                        let g = match self.rt.block_on(self.svc.containers.rootfs_guard(&cid)) {
                            Ok(g) => g,
                            Err(e) => {
                                self.remove(&cid);
                                return Err(be(e));
                            }
                        };
                        let path = g.path.clone();
                        helpers.push((cid, g));
                        (fsops::open_dir(&path).map_err(be)?, path)
                    }
                };
                // Resolved inside that root through its fd, then bound by its real path.
                let fd = fsops::open_in_root(root.as_fd(), &src, OFlags::PATH)
                    .map_err(|e| be(format!("RUN --mount source {src}: {e}")))?;
                let real = std::fs::read_link(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&fd)
                ))
                .map_err(be)?;
                if !real.starts_with(&root_path) {
                    return Err(BuildError::from(format!(
                        "RUN --mount source {src} is outside its source"
                    )));
                }
                out.kind = "bind".into();
                out.source = real.to_string_lossy().into_owned();
                out.read_only = m.readonly;
            }
            MountKind::Secret | MountKind::Ssh => {
                if m.required {
                    return Err(BuildError::from(format!(
                        "RUN --mount=type={} needs a secret the classic build API cannot pass; \
                         remove the mount or make it optional (required=false)",
                        if m.kind == MountKind::Secret {
                            "secret"
                        } else {
                            "ssh"
                        }
                    )));
                }
                out.kind = "tmpfs".into();
            }
        }
        Ok(out)
    }
}

impl Backend for EngineBackend<'_> {
    fn base_image(
        &mut self,
        name: &str,
        pull: bool,
        platform: Option<&str>,
        _log: &mut dyn Log,
    ) -> std::result::Result<Image, BuildError> {
        let have = self.rt.block_on(self.svc.images.resolve_id(name));
        let id = match have {
            Some(id) if !pull => id,
            _ => {
                let r = berth_store::reference::Reference::parse_normalized(name)
                    .map_err(|e| be(format!("invalid base image {name:?}: {e}")))?;
                let plat = platform
                    .map(|p| p.parse::<berth_store::meta::Platform>())
                    .transpose()
                    .map_err(be)?;
                let (ptx, mut prx) = mpsc::unbounded_channel();
                let tx = self.tx.clone();
                let fwd = std::thread::spawn(move || {
                    while let Some(p) = prx.blocking_recv() {
                        let _ = tx.send(BuildMsg::Pull(p));
                    }
                });
                let id = r
                    .tag
                    .clone()
                    .or_else(|| r.digest.map(|d| d.to_string()))
                    .unwrap_or_default();
                let _ = self.tx.send(BuildMsg::Status(
                    json!({"status": format!("Pulling from {}", r.path), "id": id}),
                ));
                let out = self
                    .rt
                    .block_on(self.svc.images.pull(&r, plat, None, ptx))
                    .map_err(|e| be(format!("pulling base image {name}: {e}")))?;
                let _ = fwd.join();
                let status = if out.up_to_date {
                    format!("Status: Image is up to date for {}", out.familiar)
                } else {
                    format!("Status: Downloaded newer image for {}", out.familiar)
                };
                for line in [format!("Digest: {}", out.digest), status] {
                    let _ = self.tx.send(BuildMsg::Status(json!({ "status": line })));
                }
                self.rt
                    .block_on(self.svc.images.resolve_id(&out.familiar))
                    .ok_or_else(|| be(format!("base image {name} vanished after its pull")))?
            }
        };
        self.image_by_id(&id).map_err(be)
    }

    fn cached(&mut self, key: &str) -> Option<Image> {
        let m = self.store.db().ok()?.build_cache(key).ok()??;
        // Leased first, then read: a concurrent prune either ran before (the record is gone:
        // a miss) or keeps its hands off.
        self.lease.add(&m).ok()?;
        let rec = self.store.db().ok()?.image(&m).ok()??;
        let cfg = self.store.content.read_limited(&rec.config, 4 << 20).ok()?;
        let config: Value = serde_json::from_slice(&cfg).ok()?;
        // Every layer must still be there (a cache entry is only as good as its blobs).
        if !rec
            .layers
            .iter()
            .all(|l| self.store.content.exists(&l.digest))
        {
            return None;
        }
        Some(Image {
            id: rec.config.to_string(),
            config,
        })
    }

    fn copy_inputs(&mut self, step: &CopyStep) -> std::result::Result<String, BuildError> {
        let mut h = berth_store::digest::Hasher::new();
        match &step.from {
            CopyFrom::Image(im) => {
                h.update(im.id.as_bytes());
                for s in &step.sources {
                    h.update(s.as_bytes());
                    h.update(b"\0");
                }
            }
            CopyFrom::Context => {
                for (src, rel) in self.context_sources(step).map_err(be)? {
                    h.update(src.as_bytes());
                    h.update(b"\0");
                    hash_tree(&self.ctx, &rel, &self.ignore, &mut h)
                        .map_err(|e| be(format!("COPY {src}: {e}")))?;
                }
            }
        }
        for (n, c) in &step.inline {
            h.update(n.as_bytes());
            h.update(b"\0");
            h.update(c.as_bytes());
        }
        h.update(
            format!(
                "{:?}|{:?}|{}|{:?}",
                step.chown, step.chmod, step.dest, step.exclude
            )
            .as_bytes(),
        );
        Ok(h.finish().to_string())
    }

    fn commit(
        &mut self,
        parent: Option<&Image>,
        change: Change,
        config: Value,
        history: Value,
        cache_key: &str,
        _log: &mut dyn Log,
    ) -> std::result::Result<Image, BuildError> {
        match change {
            Change::None => self
                .store(parent, None, config, history, cache_key)
                .map_err(be),
            Change::Run(step) => {
                let base = self.base_for(parent, &config).map_err(be)?;
                let id = self.run(&base, &step)?;
                let layer = self.layer_of(&id);
                if self.rm || self.force_rm {
                    self.send(format!("Removing intermediate container {}\n", &id[..12]));
                    self.remove(&id);
                }
                let layer = layer.map_err(be)?;
                self.store(
                    Some(&base).filter(|_| parent.is_some()),
                    layer,
                    config,
                    history,
                    cache_key,
                )
                .map_err(be)
            }
            Change::Copy(step) => {
                let base = self.base_for(parent, &config).map_err(be)?;
                let id = self.create(&base, CreateBody::default()).map_err(be)?;
                let layer = self.copy_into(&id, &step);
                self.remove(&id);
                let layer = layer.map_err(be)?;
                self.store(parent, layer, config, history, cache_key)
                    .map_err(be)
            }
            Change::Mkdir { path, user } => {
                let base = self.base_for(parent, &config).map_err(be)?;
                let id = self.create(&base, CreateBody::default()).map_err(be)?;
                let done = self.mkdir_in(&id, &path, &user);
                let layer = done.and_then(|()| self.layer_of(&id));
                self.remove(&id);
                let layer = layer.map_err(be)?;
                self.store(parent, layer, config, history, cache_key)
                    .map_err(be)
            }
        }
    }
}

/// Whether a source path has glob characters (Go's `filepath.Match` syntax).
fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go `filepath.Match` for one path component: `*`, `?`, `[...]` (with `^`/`!` negation and
/// ranges), `\` escapes.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let (mut star_p, mut star_n) = (usize::MAX, 0usize);
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = p;
                    star_n = n;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, len)) = class_match(&pat[p..], name[n]) {
                        if ok {
                            p += len;
                            n += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pat.len() && pat[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        if star_p != usize::MAX {
            p = star_p + 1;
            star_n += 1;
            n = star_n;
            continue;
        }
        return false;
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

fn class_match(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'^') | Some(b'!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = pat[i];
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            if lo <= c && c <= pat[i + 2] {
                hit = true;
            }
            i += 3;
        } else {
            if lo == c {
                hit = true;
            }
            i += 1;
        }
    }
    None
}

/// Cleans a context-relative source path: no leading `/`, `.`/`..` resolved lexically
/// (never above the context root).
fn clean_rel(s: &str) -> String {
    berth_build::executor::join_path("/", s)
        .trim_start_matches('/')
        .to_string()
}

impl EngineBackend<'_> {
    /// `(as written, path in the context)` for every source, globs expanded (sorted), files
    /// the `.dockerignore` excludes left out. A source that matches nothing is an error.
    fn context_sources(&self, step: &CopyStep) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for src in &step.sources {
            if src.starts_with("http://") || src.starts_with("https://") {
                if !step.add {
                    return Err(Error::invalid(format!(
                        "COPY {src}: source can't be a URL; use ADD to download it"
                    )));
                }
                out.push((src.clone(), self.fetch(src, step.checksum.as_deref())?));
                continue;
            }
            let rel = clean_rel(src);
            if !has_glob(&rel) {
                if rel.is_empty() || !self.ignore.excluded(&rel) {
                    self.ctx.resolve(&rel).map_err(|e| {
                        Error::not_found(format!(
                            "COPY failed: file not found in build context or excluded by \
                             .dockerignore: stat {src}: {e}"
                        ))
                    })?;
                    out.push((src.clone(), rel));
                    continue;
                }
                return Err(Error::not_found(format!(
                    "COPY failed: file not found in build context or excluded by \
                     .dockerignore: stat {src}: file does not exist"
                )));
            }
            let mut matches = vec![String::new()];
            for comp in rel.split('/') {
                let mut next = Vec::new();
                for base in &matches {
                    if !has_glob(comp) {
                        next.push(join_rel(base, comp));
                        continue;
                    }
                    let Ok((dir, node)) = self.ctx.resolve(base) else {
                        continue;
                    };
                    if node.kind != NodeKind::Dir {
                        continue;
                    }
                    for (name, _) in self.ctx.children(&dir).unwrap_or_default() {
                        if glob_match(comp.as_bytes(), name.as_bytes()) {
                            next.push(join_rel(base, &name));
                        }
                    }
                }
                matches = next;
            }
            let mut found: Vec<String> = matches
                .into_iter()
                .filter(|m| !self.ignore.excluded(m) && !is_download(m) && m != DOWNLOADS)
                .filter(|m| self.ctx.resolve(m).is_ok())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::not_found(format!(
                    "COPY failed: no source files were specified: {src} matches nothing in the \
                     build context"
                )));
            }
            out.extend(found.into_iter().map(|m| (src.clone(), m)));
        }
        Ok(out)
    }

    /// Download `url` (once per build) into the context's `.berth-add/` and return its path
    /// there. Mode 0600, like Docker's; `checksum` (`sha256:<hex>`) is verified.
    fn fetch(&self, url: &str, checksum: Option<&str>) -> Result<String> {
        if let Some(rel) = self.downloads.borrow().get(url) {
            return Ok(rel.clone());
        }
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .rsplit('/')
            .find(|s| !s.is_empty() && !s.contains(':'))
            .filter(|s| *s != "." && *s != "..")
            .unwrap_or("download")
            .to_string();
        let dir = format!("{DOWNLOADS}/{}", &Digest::of(url.as_bytes()).hex()[..16]);
        let full = self.workdir.join(&dir);
        std::fs::create_dir_all(&full)
            .map_err(|e| Error::internal(format!("{}: {e}", full.display())))?;
        let path = full.join(&name);
        let _ = self
            .tx
            .send(BuildMsg::Stream(format!("Downloading {url}\n")));
        let bytes = self.rt.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(600))
                .build()
                .map_err(|e| Error::internal(format!("http client: {e}")))?;
            let resp = client
                .get(url)
                .send()
                .await
                .map_err(|e| Error::invalid(format!("ADD {url}: {e}")))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(Error::invalid(format!(
                    "ADD {url}: the server answered {status}; check the URL"
                )));
            }
            resp.bytes()
                .await
                .map_err(|e| Error::invalid(format!("ADD {url}: {e}")))
        })?;
        if let Some(want) = checksum {
            let got = Digest::of(&bytes).to_string();
            if !want.eq_ignore_ascii_case(&got) {
                return Err(Error::invalid(format!(
                    "ADD {url}: checksum mismatch: --checksum says {want} but the download is \
                     {got}"
                )));
            }
        }
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
            f.write_all(&bytes)
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        }
        let rel = format!("{dir}/{name}");
        self.ctx
            .add_host_file(&rel, path.clone())
            .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        self.downloads
            .borrow_mut()
            .insert(url.to_string(), rel.clone());
        Ok(rel)
    }

    /// The context as a directory (extracted on first use, for `RUN --mount=type=bind`).
    fn context_dir(&self) -> Result<PathBuf> {
        if let Some(d) = self.ctx_dir.get() {
            return Ok(d.clone());
        }
        let dir = self.workdir.join("context");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("{}: {e}", dir.display())))?;
        self.ctx
            .extract_to(&dir)
            .map_err(|e| Error::invalid(format!("build context: {e}")))?;
        let _ = self.ctx_dir.set(dir.clone());
        Ok(dir)
    }

    /// Copy the step's sources into the container's root.
    /// Copy the step's sources into the image: returns the step's layer.
    ///
    /// Usually the layer is written directly: the copied files are the layer, streamed into
    /// the content store as they are read (with the destination's missing directories), so
    /// nothing is extracted and diffed. `ADD` of a local archive instead extracts into the
    /// step container (through the fd-resolving extractor) and takes its upper dir.
    fn copy_into(&self, id: &str, step: &CopyStep) -> Result<Option<(Digest, u64)>> {
        let guard = self.rt.block_on(self.svc.containers.rootfs_guard(id))?;
        let fs = ContainerFs::open(&guard.path, &[])?;
        let (uid, gid) = match &step.chown {
            Some(spec) => resolve_owner(&fs, spec)?,
            None => (0, 0),
        };
        // The source guard (for --from) must outlive the copy.
        let mut src_guard = None;
        let mut src_ctr = None;
        let sources: Vec<(String, String)> = match &step.from {
            CopyFrom::Context => self.context_sources(step)?,
            CopyFrom::Image(_) => step
                .sources
                .iter()
                .map(|s| (s.clone(), clean_rel(s)))
                .collect(),
        };
        let extract_archives = step.add
            && sources
                .iter()
                .any(|(_, rel)| rel.ends_with_archive() && !is_download(rel));
        let image_tree: Option<FdTree> = match &step.from {
            CopyFrom::Context => None,
            CopyFrom::Image(im) => {
                let cid = self.create(im, CreateBody::default())?;
                src_ctr = Some(cid.clone());
                let g = self.rt.block_on(self.svc.containers.rootfs_guard(&cid))?;
                let t = FdTree::open(&g.path)
                    .map_err(|e| Error::internal(format!("source image root: {e}")))?;
                src_guard = Some(g);
                Some(t)
            }
        };
        let src: &dyn Tree = match &image_tree {
            Some(t) => t,
            None => &self.ctx,
        };
        let result = (|| {
            let many = sources.len() + step.inline.len() > 1;
            let dest_is_dir = step.dest.ends_with('/')
                || many
                || fs
                    .stat_path(&step.dest)
                    .ok()
                    .flatten()
                    .is_some_and(|(st, _)| st.mode & (1 << 31) != 0);
            let dest = step.dest.trim_end_matches('/').to_string();
            let dest = if dest.is_empty() {
                "/".to_string()
            } else {
                dest
            };
            // The destination directory, resolved inside the image root (symlinks in it are
            // followed there, never out) and made (0755, owned like the files) where missing.
            let mut made = Vec::new();
            let dest = if dest_is_dir {
                ensure_dir(&fs, &dest, uid, gid, &mut made, 0)?
            } else {
                join_abs(
                    &ensure_dir(&fs, &parent_of(&dest), uid, gid, &mut made, 0)?,
                    base_name(&dest),
                )
            };
            let exclude = if step.exclude.is_empty() {
                None
            } else {
                Some(
                    DockerIgnore::parse(&step.exclude.join("\n"))
                        .map_err(|e| Error::invalid(format!("COPY --exclude: {e}")))?,
                )
            };
            let opts = TreeOpts {
                uid,
                gid,
                chmod: step.chmod,
                ignore: matches!(step.from, CopyFrom::Context).then_some(&self.ignore),
                exclude: exclude.as_ref(),
            };
            // The copied entries, named by their path in the image.
            let emit = |t: &mut tar::Builder<&mut dyn Write>| -> io::Result<()> {
                for (shown, rel) in &sources {
                    let (canon, node) = src
                        .resolve(rel)
                        .map_err(|e| io::Error::new(e.kind(), format!("COPY {shown}: {e}")))?;
                    let is_dir = node.kind == NodeKind::Dir;
                    if step.add && !is_dir && rel.ends_with_archive() && !is_download(rel) {
                        continue; // extracted below
                    }
                    if !is_dir && opts.exclude.is_some_and(|x| x.excluded(base_name(rel))) {
                        continue;
                    }
                    let name = if step.parents {
                        // `COPY --parents`: the source's path below the context is kept.
                        if rel.is_empty() {
                            dest.clone()
                        } else {
                            join_abs(&dest, rel)
                        }
                    } else if is_dir || !dest_is_dir {
                        dest.clone()
                    } else {
                        join_abs(&dest, base_name(rel))
                    };
                    write_tree(src, &canon, rel, &name, &node, t, &opts)
                        .map_err(|e| io::Error::new(e.kind(), format!("COPY {shown}: {e}")))?;
                }
                for (n, content) in &step.inline {
                    let name = if dest_is_dir {
                        join_abs(&dest, n)
                    } else {
                        dest.clone()
                    };
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(step.chmod.unwrap_or(0o644));
                    h.set_uid(u64::from(uid));
                    h.set_gid(u64::from(gid));
                    h.set_size(content.len() as u64);
                    h.set_mtime(0);
                    t.append_data(&mut h, name.trim_start_matches('/'), content.as_bytes())?;
                }
                Ok(())
            };
            if !extract_archives {
                let (d, size) = self
                    .store
                    .content
                    .put_stream_protected(
                        |w| {
                            let mut t = tar::Builder::new(w);
                            t.mode(tar::HeaderMode::Complete);
                            // The directories the destination needed come first.
                            for dir in &made {
                                let mut h = new_dir_header(uid, gid);
                                t.append_data(
                                    &mut h,
                                    format!("{}/", dir.trim_start_matches('/')),
                                    io::empty(),
                                )?;
                            }
                            emit(&mut t)?;
                            t.into_inner()?.flush()
                        },
                        |d| self.lease.add(d),
                    )
                    .map_err(|e| Error::internal(e.to_string()))?;
                return Ok(Some((d, size)));
            }
            let mut tmp = tempfile::tempfile()
                .map_err(|e| Error::internal(format!("temporary file: {e}")))?;
            {
                let w: &mut dyn Write = &mut tmp;
                let mut t = tar::Builder::new(w);
                t.mode(tar::HeaderMode::Complete);
                emit(&mut t).map_err(|e| Error::internal(e.to_string()))?;
                t.finish()
                    .map_err(|e| Error::internal(format!("COPY: {e}")))?;
            }
            tmp.rewind()
                .map_err(|e| Error::internal(format!("COPY: {e}")))?;
            fs.extract("/", io::BufReader::new(tmp), false)?;
            // ADD: local archives are unpacked into the destination directory.
            for (shown, rel) in &sources {
                // Remote archives are not extracted (as in Docker).
                if !rel.ends_with_archive() || is_download(rel) {
                    continue;
                }
                let open = || -> io::Result<Box<dyn Read + '_>> {
                    let (canon, _) = src.resolve(rel)?;
                    src.open(&canon)
                };
                let mut f = open().map_err(|e| Error::not_found(format!("ADD {shown}: {e}")))?;
                let mut head = [0u8; 4];
                let n = read_up_to(&mut f, &mut head)
                    .map_err(|e| Error::internal(format!("ADD {shown}: {e}")))?;
                let f = io::Cursor::new(head[..n].to_vec()).chain(f);
                let r: Box<dyn Read> = match berth_store::unpack::Compression::sniff(&head[..n]) {
                    berth_store::unpack::Compression::Gzip => {
                        Box::new(flate2::read::MultiGzDecoder::new(f))
                    }
                    berth_store::unpack::Compression::Zstd => {
                        return Err(Error::invalid(format!(
                            "ADD {shown}: zstd archives are not extracted; use a .tar or .tar.gz"
                        )))
                    }
                    berth_store::unpack::Compression::None => Box::new(f),
                };
                fs.extract(&dest, r, false)
                    .map_err(|e| Error::invalid(format!("ADD {shown}: {e}")))?;
            }
            Ok(None)
        })();
        drop(image_tree);
        drop(src_guard);
        if let Some(c) = src_ctr {
            self.remove(&c);
        }
        drop(guard);
        match result? {
            Some(layer) => Ok(Some(layer)),
            // Extracted into the container: its upper dir is the layer.
            None => self.layer_of(id),
        }
    }

    fn mkdir_in(&self, id: &str, path: &str, user: &str) -> Result<()> {
        let guard = self.rt.block_on(self.svc.containers.rootfs_guard(id))?;
        let fs = ContainerFs::open(&guard.path, &[])?;
        let (uid, gid) = if user.is_empty() {
            (0, 0)
        } else {
            resolve_owner(&fs, user).unwrap_or((0, 0))
        };
        ensure_dir(&fs, path, uid, gid, &mut Vec::new(), 0)?;
        drop(guard);
        Ok(())
    }
}

/// Where `ADD <url>` downloads go, inside the extracted context (left out of every walk of it).
const DOWNLOADS: &str = ".berth-add";

/// Whether a source path is an `ADD <url>` download.
fn is_download(rel: &str) -> bool {
    rel.starts_with(".berth-add/")
}

trait ArchiveName {
    fn ends_with_archive(&self) -> bool;
}

impl ArchiveName for String {
    fn ends_with_archive(&self) -> bool {
        let l = self.to_ascii_lowercase();
        [".tar", ".tar.gz", ".tgz"].iter().any(|s| l.ends_with(s))
    }
}

struct TreeOpts<'a> {
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
    ignore: Option<&'a DockerIgnore>,
    /// `COPY --exclude` patterns, matched against paths inside the source being copied.
    exclude: Option<&'a DockerIgnore>,
}

impl TreeOpts<'_> {
    /// Whether `crel` (context-relative; `srel` inside the copied source) is left out.
    fn skipped(&self, crel: &str, srel: &str) -> bool {
        self.ignore.is_some_and(|i| i.excluded(crel))
            || self.exclude.is_some_and(|x| x.excluded(srel))
    }

    fn may_descend(&self, crel: &str, srel: &str) -> bool {
        (!self.ignore.is_some_and(|i| i.excluded(crel))
            || self.ignore.is_some_and(|i| i.may_contain_exceptions(crel)))
            && (!self.exclude.is_some_and(|x| x.excluded(srel))
                || self.exclude.is_some_and(|x| x.may_contain_exceptions(srel)))
    }
}

fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

fn join_abs(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((d, _)) => d.into(),
    }
}

/// The tar header of a directory the build makes (the destination's missing parents,
/// `WORKDIR`): 0755, owned `uid:gid`.
fn new_dir_header(uid: u32, gid: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(0);
    h.set_size(0);
    h
}

/// `mkdir -p` inside the container root: `dir` resolved as the container would (symlinks
/// followed inside the root, `..` stopping at `/`), each missing directory made 0755 and
/// owned `uid:gid` through the fd-resolving extractor. Returns the resolved path.
fn ensure_dir(
    fs: &ContainerFs,
    dir: &str,
    uid: u32,
    gid: u32,
    made: &mut Vec<String>,
    depth: usize,
) -> Result<String> {
    if depth > 64 {
        return Err(Error::invalid(format!(
            "{dir}: too many levels of symbolic links or directories to create"
        )));
    }
    match fs.resolve(dir, true) {
        Ok(r) if r.exists => {
            let st = fs
                .lstat(&r.canonical)
                .map_err(|e| Error::internal(format!("{dir}: {e}")))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Error::invalid(format!(
                    "{dir} is not a directory in the image ({} is a file); change the \
                     destination",
                    r.canonical
                )));
            }
            Ok(r.canonical)
        }
        Ok(r) => {
            let parent = ensure_dir(fs, &parent_of(&r.canonical), uid, gid, made, depth + 1)?;
            let name = base_name(&r.canonical).to_string();
            let mut data = Vec::new();
            {
                let mut t = tar::Builder::new(&mut data);
                let mut h = new_dir_header(uid, gid);
                t.append_data(&mut h, format!("{name}/"), io::empty())
                    .and_then(|()| t.finish())
                    .map_err(|e| Error::internal(format!("making {dir}: {e}")))?;
            }
            fs.extract(&parent, &data[..], false)?;
            let path = join_abs(&parent, &name);
            made.push(path.clone());
            Ok(path)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // A missing directory in the middle: make the parent first, then this one.
            ensure_dir(fs, &parent_of(dir), uid, gid, made, depth + 1)?;
            ensure_dir(fs, dir, uid, gid, made, depth + 1)
        }
        Err(e) => Err(Error::invalid(format!("{dir}: {e}"))),
    }
}

/// Writes the source at canonical path `canon` (`rel` as written, for `.dockerignore`) as
/// `name` in the image: a directory's contents, or a file.
fn write_tree(
    tree: &dyn Tree,
    canon: &str,
    rel: &str,
    name: &str,
    node: &Node,
    t: &mut tar::Builder<impl Write>,
    o: &TreeOpts<'_>,
) -> io::Result<()> {
    if node.kind == NodeKind::Dir {
        if name != "/" {
            let mut h = header(node, tar::EntryType::Directory, 0, o);
            t.append_data(
                &mut h,
                format!("{}/", name.trim_start_matches('/')),
                io::empty(),
            )?;
        }
        walk_dir(tree, canon, rel, "", name, t, o)
    } else {
        let mut h = header(node, tar::EntryType::Regular, node.size, o);
        let r = tree
            .open(canon)?
            .take(node.size)
            .chain(io::repeat(0))
            .take(node.size);
        t.append_data(&mut h, name.trim_start_matches('/'), r)
    }
}

fn walk_dir(
    tree: &dyn Tree,
    dir: &str,
    rel: &str,
    srel: &str,
    name: &str,
    t: &mut tar::Builder<impl Write>,
    o: &TreeOpts<'_>,
) -> io::Result<()> {
    for (cs, node) in tree.children(dir)? {
        let crel = join_rel(rel, &cs);
        let csrel = join_rel(srel, &cs);
        let canon = join_rel(dir, &cs);
        let skipped = o.skipped(&crel, &csrel);
        let cname = join_abs(name, &cs);
        match &node.kind {
            NodeKind::Dir => {
                if skipped && !o.may_descend(&crel, &csrel) {
                    continue;
                }
                if !skipped {
                    let mut h = header(&node, tar::EntryType::Directory, 0, o);
                    t.append_data(
                        &mut h,
                        format!("{}/", cname.trim_start_matches('/')),
                        io::empty(),
                    )?;
                }
                walk_dir(tree, &canon, &crel, &csrel, &cname, t, o)?;
            }
            NodeKind::File if !skipped => {
                let mut h = header(&node, tar::EntryType::Regular, node.size, o);
                let r = tree
                    .open(&canon)?
                    .take(node.size)
                    .chain(io::repeat(0))
                    .take(node.size);
                t.append_data(&mut h, cname.trim_start_matches('/'), r)?;
            }
            NodeKind::Symlink(target) if !skipped => {
                let mut h = header(&node, tar::EntryType::Symlink, 0, o);
                h.set_mode(0o777);
                t.append_link(&mut h, cname.trim_start_matches('/'), target)?;
            }
            // Devices, FIFOs and sockets are not copied (as Docker), nor is anything
            // excluded.
            _ => {}
        }
    }
    Ok(())
}

fn header(n: &Node, typ: tar::EntryType, size: u64, o: &TreeOpts<'_>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(typ);
    h.set_mode(o.chmod.unwrap_or(n.mode));
    h.set_uid(u64::from(o.uid));
    h.set_gid(u64::from(o.gid));
    h.set_mtime(n.mtime.max(0) as u64);
    h.set_size(size);
    h
}

/// Hashes what a copy of `rel` reads: names, types, modes, sizes and contents.
fn hash_tree(
    tree: &dyn Tree,
    rel: &str,
    ignore: &DockerIgnore,
    h: &mut berth_store::digest::Hasher,
) -> io::Result<()> {
    let (canon, node) = tree.resolve(rel)?;
    if node.kind == NodeKind::Dir {
        hash_dir(tree, &canon, rel, ignore, h)
    } else {
        h.update(format!("f {rel} {:o}\0", node.mode).as_bytes());
        hash_file(tree.open(&canon)?, h)
    }
}

fn hash_file(mut f: impl Read, h: &mut berth_store::digest::Hasher) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

fn hash_dir(
    tree: &dyn Tree,
    dir: &str,
    rel: &str,
    ignore: &DockerIgnore,
    h: &mut berth_store::digest::Hasher,
) -> io::Result<()> {
    for (cs, node) in tree.children(dir)? {
        let crel = join_rel(rel, &cs);
        let canon = join_rel(dir, &cs);
        let excluded = ignore.excluded(&crel);
        if excluded && !ignore.may_contain_exceptions(&crel) {
            continue;
        }
        match &node.kind {
            NodeKind::Dir => {
                h.update(format!("d {crel} {:o}\0", node.mode).as_bytes());
                hash_dir(tree, &canon, &crel, ignore, h)?;
            }
            NodeKind::File if !excluded => {
                h.update(format!("f {crel} {:o} {}\0", node.mode, node.size).as_bytes());
                hash_file(tree.open(&canon)?, h)?;
            }
            NodeKind::Symlink(target) if !excluded => {
                h.update(format!("l {crel} {target}\0").as_bytes());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; the bytes read.
pub fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `--chown` / `USER`: `uid[:gid]` or names looked up in the image's /etc/passwd and
/// /etc/group.
fn resolve_owner(fs: &ContainerFs, spec: &str) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |p: &str| -> String {
        let mut out = Vec::new();
        if let Ok(fd) = fs.open_path(p, OFlags::RDONLY) {
            let _ = std::fs::File::from(fd).take(4 << 20).read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let passwd = read("/etc/passwd");
    let lookup = |db: &str, name: &str, field: usize| -> Option<(u32, Option<u32>)> {
        db.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                (
                    f.get(field).and_then(|x| x.parse().ok()).unwrap_or(0),
                    f.get(3).and_then(|x| x.parse().ok()),
                )
            })
        })
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, lookup(&passwd, u, 2).and_then(|(_, g)| g)),
        Err(_) => lookup(&passwd, u, 2).ok_or_else(|| {
            Error::invalid(format!(
                "unable to find user {u}: no matching entries in the image's /etc/passwd; use a \
                 numeric uid"
            ))
        })?,
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read("/etc/group");
                lookup(&group, g, 2).map(|(id, _)| id).ok_or_else(|| {
                    Error::invalid(format!(
                        "unable to find group {g}: no matching entries in the image's \
                         /etc/group; use a numeric gid"
                    ))
                })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_go() {
        assert!(glob_match(b"*.py", b"app.py"));
        assert!(!glob_match(b"*.py", b"app.pyc"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[!a-c]x", b"bx"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"req*.txt", b"requirements.txt"));
    }

    #[test]
    fn sources_are_cleaned_inside_the_context() {
        assert_eq!(clean_rel("../../etc/passwd"), "etc/passwd");
        assert_eq!(clean_rel("./app/../x"), "x");
        assert_eq!(clean_rel("."), "");
        assert_eq!(parent_of("/app/x"), "/app");
        assert_eq!(parent_of("/x"), "/");
    }
}
