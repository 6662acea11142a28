//! Image metadata in SQLite: images and their layers, tags, repository digests (what a
//! registry knows an image as), unpacked layers (snapshots by chain id), leases that protect
//! in-flight work from GC, and the containers that pin images.
//!
//! The database runs in WAL mode with `synchronous=FULL`, `foreign_keys=ON` and a busy
//! timeout. The schema is versioned with `PRAGMA user_version`; each migration runs in one
//! transaction together with its version bump, so a crash leaves either the old or the new
//! schema. Every public mutation is one transaction. Digests are stored as their
//! `sha256:<hex>` strings and parsed strictly when read back.

use crate::{Digest, Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{debug, info};

/// Schema migrations; migration `i` brings `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    r#"
    CREATE TABLE images (
        manifest     TEXT PRIMARY KEY,
        media_type   TEXT NOT NULL,
        config       TEXT NOT NULL,
        os           TEXT NOT NULL,
        architecture TEXT NOT NULL,
        variant      TEXT,
        index_digest TEXT,
        created      TEXT,
        size         INTEGER NOT NULL
    );
    CREATE TABLE image_layers (
        image      TEXT NOT NULL REFERENCES images(manifest) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        digest     TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        diff_id    TEXT NOT NULL,
        PRIMARY KEY (image, position)
    );
    CREATE INDEX image_layers_digest ON image_layers(digest);
    CREATE TABLE tags (
        name     TEXT PRIMARY KEY,
        manifest TEXT NOT NULL REFERENCES images(manifest)
    );
    CREATE INDEX tags_manifest ON tags(manifest);
    CREATE TABLE layers (
        chain_id TEXT PRIMARY KEY,
        diff_id  TEXT NOT NULL,
        parent   TEXT REFERENCES layers(chain_id),
        size     INTEGER NOT NULL
    );
    CREATE INDEX layers_parent ON layers(parent);
    CREATE TABLE leases (
        id         TEXT PRIMARY KEY,
        expires_ms INTEGER NOT NULL
    );
    CREATE TABLE lease_resources (
        lease    TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        resource TEXT NOT NULL,
        PRIMARY KEY (lease, resource)
    );
    CREATE TABLE containers (
        id    TEXT PRIMARY KEY,
        image TEXT NOT NULL REFERENCES images(manifest)
    );
    CREATE INDEX containers_image ON containers(image);
    "#,
    // 2: the build cache: a step's key (parent image, instruction, inputs) → the images it
    // made (a `--no-cache` rebuild adds one; the newest is used).
    r#"
    CREATE TABLE build_cache (
        key        TEXT NOT NULL,
        image      TEXT NOT NULL REFERENCES images(manifest) ON DELETE CASCADE,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (key, image)
    );
    CREATE INDEX build_cache_image ON build_cache(image);
    "#,
    // 3: repository digests: `repo@digest` for what a registry knows of an image (the digest
    // it served for a pull, or accepted for a push). Built, loaded and merely tagged images
    // have none; a store upgraded to this version has none for images pulled before it.
    r#"
    CREATE TABLE repo_digests (
        repo   TEXT NOT NULL,
        digest TEXT NOT NULL,
        image  TEXT NOT NULL REFERENCES images(manifest) ON DELETE CASCADE,
        PRIMARY KEY (repo, digest)
    );
    CREATE INDEX repo_digests_image ON repo_digests(image);
    "#,
];

/// The platform an image manifest is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The host's platform in OCI terms (`linux/amd64`, `linux/arm64/v8`, ...).
    pub fn host() -> Platform {
        crate::image::host_platform()
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = crate::Error;
    /// `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    fn from_str(s: &str) -> crate::Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: crate::image::normalize_arch(arch),
                variant: parts.get(2).filter(|v| !v.is_empty()).map(|v| v.to_string()),
            }),
            _ => Err(crate::Error::Invalid(format!(
                "invalid platform \"{s}\": use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
            ))),
        }
    }
}

/// One layer of an image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The (usually compressed) blob's digest.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The digest of the uncompressed tar (from the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
}

/// A stored image: one platform manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub manifest: Digest,
    pub media_type: String,
    pub config: Digest,
    pub layers: Vec<LayerRef>,
    pub platform: Platform,
    /// The index (manifest list) this manifest was selected from, if any.
    pub index: Option<Digest>,
    pub created: Option<String>,
    pub size: u64,
}

/// A repository digest: the registry knows image `image` in `repo` as `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoDigest {
    /// The normalised repository name, e.g. `docker.io/library/busybox`.
    pub repo: String,
    /// The manifest or index digest the registry served (pull) or accepted (push).
    pub digest: Digest,
    /// The stored image (platform manifest digest).
    pub image: Digest,
}

/// An unpacked layer (snapshot), keyed by chain id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    pub size: u64,
}

/// The metadata database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

fn db_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Db(format!("{what}: {e}"))
}

fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Invalid(format!("{what} {n} is too large to store")))
}

fn to_u64(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n)
        .map_err(|_| Error::Db(format!("{what} is negative ({n}); the database is corrupt")))
}

fn parse_digest(s: &str, column: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| {
        Error::Db(format!(
            "column {column} holds an invalid digest ({e}); the database is corrupt"
        ))
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Db {
    /// Open (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let ctx = format!("opening {}", path.display());
        let conn = Connection::open(path).map_err(db_err(&ctx))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(db_err(&ctx))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db_err(&ctx))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Db(format!(
                "{}: could not enable WAL journaling (got {mode}); is the file system read-only?",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err(&ctx))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err(&ctx))?;
        let mut db = Db { conn };
        db.migrate(path)?;
        Ok(db)
    }

    fn migrate(&mut self, path: &Path) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_err("reading schema version"))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Db(format!(
                "{} has schema version {version}, newer than this Berth understands ({known}); \
                 upgrade Berth or use another data root",
                path.display()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let to = i as i64 + 1;
            let ctx = format!("migrating {} to schema version {to}", path.display());
            let tx = self.conn.transaction().map_err(db_err(&ctx))?;
            tx.execute_batch(sql).map_err(db_err(&ctx))?;
            tx.pragma_update(None, "user_version", to)
                .map_err(db_err(&ctx))?;
            tx.commit().map_err(db_err(&ctx))?;
            info!(path = %path.display(), version = to, "metadata schema migrated");
        }
        Ok(())
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_err("reading schema version"))
    }

    fn tx(&mut self, what: &str) -> Result<Transaction<'_>> {
        self.conn.transaction().map_err(db_err(what))
    }

    // ---- images ----

    /// Record an image and its layers in one transaction. Storing the same manifest again
    /// replaces its record (tags, repository digests and containers pointing at it are kept).
    pub fn put_image(&mut self, img: &ImageRecord) -> Result<()> {
        let ctx = format!("storing image {}", img.manifest);
        let size = to_i64(img.size, "image size")?;
        let tx = self.tx(&ctx)?;
        tx.execute(
            "INSERT INTO images (manifest, media_type, config, os, architecture, variant,
                                 index_digest, created, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(manifest) DO UPDATE SET
                media_type = excluded.media_type, config = excluded.config, os = excluded.os,
                architecture = excluded.architecture, variant = excluded.variant,
                index_digest = excluded.index_digest, created = excluded.created,
                size = excluded.size",
            params![
                img.manifest.to_string(),
                img.media_type,
                img.config.to_string(),
                img.platform.os,
                img.platform.architecture,
                img.platform.variant,
                img.index.map(|d| d.to_string()),
                img.created,
                size,
            ],
        )
        .map_err(db_err(&ctx))?;
        tx.execute(
            "DELETE FROM image_layers WHERE image = ?1",
            params![img.manifest.to_string()],
        )
        .map_err(db_err(&ctx))?;
        for (pos, l) in img.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image, position, digest, media_type, size, diff_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    img.manifest.to_string(),
                    pos as i64,
                    l.digest.to_string(),
                    l.media_type,
                    to_i64(l.size, "layer size")?,
                    l.diff_id.to_string(),
                ],
            )
            .map_err(db_err(&ctx))?;
        }
        tx.commit().map_err(db_err(&ctx))?;
        debug!(manifest = %img.manifest, "image recorded");
        Ok(())
    }

    /// The image with this manifest digest, if stored.
    pub fn image(&self, manifest: &Digest) -> Result<Option<ImageRecord>> {
        let ctx = format!("reading image {manifest}");
        let row = self
            .conn
            .query_row(
                "SELECT media_type, config, os, architecture, variant, index_digest, created, size
                 FROM images WHERE manifest = ?1",
                params![manifest.to_string()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )
            .optional()
            .map_err(db_err(&ctx))?;
        let Some((media_type, config, os, architecture, variant, index, created, size)) = row
        else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT digest, media_type, size, diff_id FROM image_layers
                 WHERE image = ?1 ORDER BY position",
            )
            .map_err(db_err(&ctx))?;
        let raw = stmt
            .query_map(params![manifest.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(db_err(&ctx))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(&ctx))?;
        let mut layers = Vec::with_capacity(raw.len());
        for (digest, media_type, size, diff_id) in raw {
            layers.push(LayerRef {
                digest: parse_digest(&digest, "image_layers.digest")?,
                media_type,
                size: to_u64(size, "image_layers.size")?,
                diff_id: parse_digest(&diff_id, "image_layers.diff_id")?,
            });
        }
        Ok(Some(ImageRecord {
            manifest: *manifest,
            media_type,
            config: parse_digest(&config, "images.config")?,
            layers,
            platform: Platform {
                os,
                architecture,
                variant,
            },
            index: index
                .as_deref()
                .map(|s| parse_digest(s, "images.index_digest"))
                .transpose()?,
            created,
            size: to_u64(size, "images.size")?,
        }))
    }

    /// Every stored image, ordered by manifest digest.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for m in self.digest_column(
            "SELECT manifest FROM images ORDER BY manifest",
            "images.manifest",
        )? {
            if let Some(img) = self.image(&m)? {
                out.push(img);
            }
        }
        Ok(out)
    }

    /// Remove an image record. Refused with [`Error::Conflict`] while a tag or a container
    /// refers to it; [`Error::NotFound`] if it is not stored. Its repository digests go with it.
    pub fn delete_image(&mut self, manifest: &Digest) -> Result<()> {
        let ctx = format!("deleting image {manifest}");
        let m = manifest.to_string();
        let tx = self.tx(&ctx)?;
        let tags = string_column(
            &tx,
            "SELECT name FROM tags WHERE manifest = ?1 ORDER BY name",
            &m,
        )
        .map_err(db_err(&ctx))?;
        if !tags.is_empty() {
            return Err(Error::Conflict(format!(
                "image {manifest} is tagged as {}; remove the tags first",
                tags.join(", ")
            )));
        }
        let containers = string_column(
            &tx,
            "SELECT id FROM containers WHERE image = ?1 ORDER BY id",
            &m,
        )
        .map_err(db_err(&ctx))?;
        if !containers.is_empty() {
            return Err(Error::Conflict(format!(
                "image {manifest} is used by container(s) {}; remove them first",
                containers.join(", ")
            )));
        }
        let n = tx
            .execute("DELETE FROM images WHERE manifest = ?1", params![m])
            .map_err(db_err(&ctx))?;
        if n == 0 {
            return Err(Error::NotFound(format!(
                "image {manifest} is not in the store"
            )));
        }
        tx.commit().map_err(db_err(&ctx))?;
        debug!(manifest = %manifest, "image deleted");
        Ok(())
    }

    // ---- tags ----

    /// Point the tag `name` (a normalised reference string) at `manifest`, replacing any
    /// previous target. The image must be stored.
    pub fn set_tag(&mut self, name: &str, manifest: &Digest) -> Result<()> {
        let ctx = format!("tagging {manifest} as {name}");
        let tx = self.tx(&ctx)?;
        if !image_stored(&tx, manifest, &ctx)? {
            return Err(Error::NotFound(format!(
                "cannot tag {name}: image {manifest} is not in the store; pull or load it first"
            )));
        }
        tx.execute(
            "INSERT INTO tags (name, manifest) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest",
            params![name, manifest.to_string()],
        )
        .map_err(db_err(&ctx))?;
        tx.commit().map_err(db_err(&ctx))?;
        Ok(())
    }

    /// Remove a tag; `false` if it did not exist.
    pub fn remove_tag(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM tags WHERE name = ?1", params![name])
            .map_err(db_err(&format!("removing tag {name}")))?;
        Ok(n > 0)
    }

    pub fn resolve_tag(&self, name: &str) -> Result<Option<Digest>> {
        let ctx = format!("resolving tag {name}");
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT manifest FROM tags WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(&ctx))?;
        s.as_deref()
            .map(|s| parse_digest(s, "tags.manifest"))
            .transpose()
    }

    /// Every tag with its manifest, ordered by name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
        let ctx = "listing tags";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, manifest FROM tags ORDER BY name")
            .map_err(db_err(ctx))?;
        let raw = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db_err(ctx))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(ctx))?;
        raw.into_iter()
            .map(|(n, m)| Ok((n, parse_digest(&m, "tags.manifest")?)))
            .collect()
    }

    // ---- repository digests ----

    /// Record that the registry knows image `manifest` in repository `repo` (normalised, e.g.
    /// `docker.io/library/busybox`) as `digest`: the digest it served for a pull (the index's
    /// for a multi-platform image) or accepted for a push. A `repo@digest` recorded before is
    /// pointed at `manifest` (a pull of the same index for another platform). The image must
    /// be stored; its removal removes the record.
    pub fn put_repo_digest(
        &mut self,
        repo: &str,
        digest: &Digest,
        manifest: &Digest,
    ) -> Result<()> {
        if repo.is_empty() || repo.contains('@') || repo.contains(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "invalid repository name \"{repo}\" for a repository digest: give a \
                 normalised repository such as docker.io/library/busybox"
            )));
        }
        let ctx = format!("recording {repo}@{digest} for image {manifest}");
        let tx = self.tx(&ctx)?;
        if !image_stored(&tx, manifest, &ctx)? {
            return Err(Error::NotFound(format!(
                "cannot record {repo}@{digest}: image {manifest} is not in the store; pull it \
                 first"
            )));
        }
        tx.execute(
            "INSERT INTO repo_digests (repo, digest, image) VALUES (?1, ?2, ?3)
             ON CONFLICT(repo, digest) DO UPDATE SET image = excluded.image",
            params![repo, digest.to_string(), manifest.to_string()],
        )
        .map_err(db_err(&ctx))?;
        tx.commit().map_err(db_err(&ctx))?;
        debug!(repo, digest = %digest, manifest = %manifest, "repository digest recorded");
        Ok(())
    }

    /// The image recorded for `repo@digest`, if any.
    pub fn resolve_repo_digest(&self, repo: &str, digest: &Digest) -> Result<Option<Digest>> {
        let ctx = format!("resolving {repo}@{digest}");
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT image FROM repo_digests WHERE repo = ?1 AND digest = ?2",
                params![repo, digest.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(&ctx))?;
        s.as_deref()
            .map(|s| parse_digest(s, "repo_digests.image"))
            .transpose()
    }

    /// Every recorded repository digest, ordered by repository and digest.
    pub fn repo_digests(&self) -> Result<Vec<RepoDigest>> {
        self.repo_digest_rows(
            "SELECT repo, digest, image FROM repo_digests ORDER BY repo, digest",
            None,
        )
    }

    /// The repository digests recorded for image `manifest`, ordered by repository and digest.
    pub fn repo_digests_of(&self, manifest: &Digest) -> Result<Vec<RepoDigest>> {
        self.repo_digest_rows(
            "SELECT repo, digest, image FROM repo_digests WHERE image = ?1
             ORDER BY repo, digest",
            Some(&manifest.to_string()),
        )
    }

    /// Forget `repo@digest`; `false` if it was not recorded.
    pub fn remove_repo_digest(&mut self, repo: &str, digest: &Digest) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "DELETE FROM repo_digests WHERE repo = ?1 AND digest = ?2",
                params![repo, digest.to_string()],
            )
            .map_err(db_err(&format!("removing {repo}@{digest}")))?;
        Ok(n > 0)
    }

    fn repo_digest_rows(&self, sql: &str, arg: Option<&str>) -> Result<Vec<RepoDigest>> {
        let ctx = "reading repository digests";
        let mut stmt = self.conn.prepare_cached(sql).map_err(db_err(ctx))?;
        let row = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        };
        let raw = match arg {
            Some(a) => stmt.query_map(params![a], row),
            None => stmt.query_map([], row),
        }
        .map_err(db_err(ctx))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err(ctx))?;
        raw.into_iter()
            .map(|(repo, digest, image)| {
                Ok(RepoDigest {
                    repo,
                    digest: parse_digest(&digest, "repo_digests.digest")?,
                    image: parse_digest(&image, "repo_digests.image")?,
                })
            })
            .collect()
    }

    // ---- layers (snapshots) ----

    /// Record an unpacked layer. The parent must be recorded first. Recording the same
    /// chain id again is a no-op if it matches, [`Error::Conflict`] if it does not.
    pub fn put_layer(
        &mut self,
        chain_id: &Digest,
        diff_id: &Digest,
        parent: Option<&Digest>,
        size: u64,
    ) -> Result<()> {
        let ctx = format!("recording layer {chain_id}");
        let size_i = to_i64(size, "layer size")?;
        let tx = self.tx(&ctx)?;
        let existing: Option<(String, Option<String>)> = tx
            .query_row(
                "SELECT diff_id, parent FROM layers WHERE chain_id = ?1",
                params![chain_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err(&ctx))?;
        if let Some((d, p)) = existing {
            if d != diff_id.to_string() || p != parent.map(|p| p.to_string()) {
                return Err(Error::Conflict(format!(
                    "layer {chain_id} is already recorded with diff_id {d} and parent {}; \
                     refusing to record diff_id {diff_id} and parent {}",
                    p.as_deref().unwrap_or("none"),
                    parent.map_or("none".to_string(), |p| p.to_string())
                )));
            }
            return Ok(());
        }
        if let Some(p) = parent {
            let ok: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM layers WHERE chain_id = ?1)",
                    params![p.to_string()],
                    |r| r.get(0),
                )
                .map_err(db_err(&ctx))?;
            if !ok {
                return Err(Error::NotFound(format!(
                    "cannot record layer {chain_id}: its parent layer {p} is not recorded; \
                     record the parent first"
                )));
            }
        }
        tx.execute(
            "INSERT INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
            params![
                chain_id.to_string(),
                diff_id.to_string(),
                parent.map(|p| p.to_string()),
                size_i
            ],
        )
        .map_err(db_err(&ctx))?;
        tx.commit().map_err(db_err(&ctx))?;
        Ok(())
    }

    pub fn layer_exists(&self, chain_id: &Digest) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM layers WHERE chain_id = ?1)",
                params![chain_id.to_string()],
                |r| r.get(0),
            )
            .map_err(db_err(&format!("looking up layer {chain_id}")))
    }

    /// The layer record for `chain_id`, if any.
    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerRecord>> {
        let ctx = format!("reading layer {chain_id}");
        let row: Option<(String, Option<String>, i64)> = self
            .conn
            .query_row(
                "SELECT diff_id, parent, size FROM layers WHERE chain_id = ?1",
                params![chain_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db_err(&ctx))?;
        row.map(|(d, p, s)| {
            Ok(LayerRecord {
                chain_id: *chain_id,
                diff_id: parse_digest(&d, "layers.diff_id")?,
                parent: p
                    .as_deref()
                    .map(|p| parse_digest(p, "layers.parent"))
                    .transpose()?,
                size: to_u64(s, "layers.size")?,
            })
        })
        .transpose()
    }

    /// Every recorded layer.
    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        let ctx = "listing layers";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT chain_id, diff_id, parent, size FROM layers ORDER BY chain_id")
            .map_err(db_err(ctx))?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db_err(ctx))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(ctx))?;
        raw.into_iter()
            .map(|(c, d, p, s)| {
                Ok(LayerRecord {
                    chain_id: parse_digest(&c, "layers.chain_id")?,
                    diff_id: parse_digest(&d, "layers.diff_id")?,
                    parent: p
                        .as_deref()
                        .map(|p| parse_digest(p, "layers.parent"))
                        .transpose()?,
                    size: to_u64(s, "layers.size")?,
                })
            })
            .collect()
    }

    /// Remove a layer record. Refused with [`Error::Conflict`] while another layer has it as
    /// parent. Removing a layer that is not recorded is not an error.
    pub fn delete_layer(&mut self, chain_id: &Digest) -> Result<()> {
        let ctx = format!("deleting layer {chain_id}");
        let c = chain_id.to_string();
        let tx = self.tx(&ctx)?;
        let children = string_column(
            &tx,
            "SELECT chain_id FROM layers WHERE parent = ?1 ORDER BY chain_id",
            &c,
        )
        .map_err(db_err(&ctx))?;
        if !children.is_empty() {
            return Err(Error::Conflict(format!(
                "layer {chain_id} is the parent of layer(s) {}; delete those first",
                children.join(", ")
            )));
        }
        tx.execute("DELETE FROM layers WHERE chain_id = ?1", params![c])
            .map_err(db_err(&ctx))?;
        tx.commit().map_err(db_err(&ctx))?;
        Ok(())
    }

    // ---- leases ----

    /// Create a lease that expires after `ttl` (a crashed holder's lease stops protecting
    /// anything once it expires). An existing id is [`Error::Conflict`].
    pub fn lease_create(&mut self, id: &str, ttl: Duration) -> Result<()> {
        let ctx = format!("creating lease {id}");
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let expires = now_ms().saturating_add(ttl_ms);
        let tx = self.tx(&ctx)?;
        let n = tx
            .execute(
                "INSERT INTO leases (id, expires_ms) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING",
                params![id, expires],
            )
            .map_err(db_err(&ctx))?;
        if n == 0 {
            return Err(Error::Conflict(format!("lease {id} already exists")));
        }
        tx.commit().map_err(db_err(&ctx))?;
        Ok(())
    }

    /// Protect `resource` (a blob digest or a layer chain id) with lease `id`.
    pub fn lease_add(&mut self, id: &str, resource: &Digest) -> Result<()> {
        let ctx = format!("adding {resource} to lease {id}");
        let tx = self.tx(&ctx)?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM leases WHERE id = ?1)",
                params![id],
                |r| r.get(0),
            )
            .map_err(db_err(&ctx))?;
        if !exists {
            return Err(Error::NotFound(format!(
                "lease {id} does not exist (expired or deleted); start the operation again"
            )));
        }
        tx.execute(
            "INSERT OR IGNORE INTO lease_resources (lease, resource) VALUES (?1, ?2)",
            params![id, resource.to_string()],
        )
        .map_err(db_err(&ctx))?;
        tx.commit().map_err(db_err(&ctx))?;
        Ok(())
    }

    /// Delete a lease and its resources. Deleting a missing lease is not an error.
    pub fn lease_delete(&mut self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM leases WHERE id = ?1", params![id])
            .map_err(db_err(&format!("deleting lease {id}")))?;
        Ok(())
    }

    /// Delete every expired lease; returns how many.
    pub fn expire_leases(&mut self) -> Result<usize> {
        let n = self
            .conn
            .execute(
                "DELETE FROM leases WHERE expires_ms <= ?1",
                params![now_ms()],
            )
            .map_err(db_err("expiring leases"))?;
        if n > 0 {
            info!(count = n, "expired leases removed");
        }
        Ok(n)
    }

    /// Everything held by a lease that has not expired.
    pub fn leased_resources(&self) -> Result<Vec<Digest>> {
        let ctx = "listing leased resources";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT r.resource FROM lease_resources r JOIN leases l ON l.id = r.lease
                 WHERE l.expires_ms > ?1 ORDER BY r.resource",
            )
            .map_err(db_err(ctx))?;
        let raw = stmt
            .query_map(params![now_ms()], |r| r.get::<_, String>(0))
            .map_err(db_err(ctx))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(ctx))?;
        raw.iter()
            .map(|s| parse_digest(s, "lease_resources.resource"))
            .collect()
    }

    // ---- containers ----

    /// Record that container `id` uses image `manifest` (pins the image against deletion).
    pub fn put_container(&mut self, id: &str, manifest: &Digest) -> Result<()> {
        let ctx = format!("recording container {id}");
        let tx = self.tx(&ctx)?;
        if !image_stored(&tx, manifest, &ctx)? {
            return Err(Error::NotFound(format!(
                "container {id}: image {manifest} is not in the store; pull it first"
            )));
        }
        tx.execute(
            "INSERT INTO containers (id, image) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET image = excluded.image",
            params![id, manifest.to_string()],
        )
        .map_err(db_err(&ctx))?;
        tx.commit().map_err(db_err(&ctx))?;
        Ok(())
    }

    /// Forget container `id`; `false` if it was not recorded.
    pub fn remove_container(&mut self, id: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM containers WHERE id = ?1", params![id])
            .map_err(db_err(&format!("removing container {id}")))?;
        Ok(n > 0)
    }

    /// `(container id, image manifest)` for every recorded container.
    pub fn containers(&self) -> Result<Vec<(String, Digest)>> {
        let ctx = "listing containers";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, image FROM containers ORDER BY id")
            .map_err(db_err(ctx))?;
        let raw = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db_err(ctx))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(ctx))?;
        raw.into_iter()
            .map(|(i, m)| Ok((i, parse_digest(&m, "containers.image")?)))
            .collect()
    }

    /// Manifests of images that no tag and no container refers to.
    pub fn dangling_images(&self) -> Result<Vec<Digest>> {
        self.digest_column(
            "SELECT manifest FROM images i
             WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest = i.manifest)
               AND NOT EXISTS (SELECT 1 FROM containers c WHERE c.image = i.manifest)
               AND NOT EXISTS (SELECT 1 FROM build_cache b WHERE b.image = i.manifest)
             ORDER BY manifest",
            "images.manifest",
        )
    }

    // ---- build cache ----

    /// Remember that the build step `key` made image `manifest` (older images of the same key
    /// stay cached steps; the newest is the one [`Db::build_cache`] returns).
    pub fn put_build_cache(&mut self, key: &str, manifest: &Digest) -> Result<()> {
        let ctx = format!("recording build cache entry {key}");
        self.conn
            .execute(
                "INSERT INTO build_cache (key, image, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key, image) DO UPDATE SET created_ms = excluded.created_ms",
                params![key, manifest.to_string(), now_ms()],
            )
            .map_err(db_err(&ctx))?;
        Ok(())
    }

    /// The image a build step with this key made, if it is still stored.
    pub fn build_cache(&self, key: &str) -> Result<Option<Digest>> {
        let ctx = format!("reading build cache entry {key}");
        let got: Option<String> = self
            .conn
            .query_row(
                "SELECT image FROM build_cache WHERE key = ?1
                 ORDER BY created_ms DESC, rowid DESC LIMIT 1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(&ctx))?;
        got.map(|m| parse_digest(&m, "build_cache.image"))
            .transpose()
    }

    /// Images the build cache holds (intermediate steps; `docker images` hides the untagged
    /// ones, as Docker hides intermediate images).
    pub fn build_cache_images(&self) -> Result<Vec<Digest>> {
        self.digest_column(
            "SELECT DISTINCT image FROM build_cache ORDER BY image",
            "build_cache.image",
        )
    }

    /// Forget every build cache entry; returns how many there were.
    pub fn clear_build_cache(&mut self) -> Result<usize> {
        self.conn
            .execute("DELETE FROM build_cache", [])
            .map_err(db_err("clearing the build cache"))
    }

    fn digest_column(&self, sql: &str, column: &str) -> Result<Vec<Digest>> {
        let ctx = format!("reading {column}");
        let mut stmt = self.conn.prepare_cached(sql).map_err(db_err(&ctx))?;
        let raw = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err(&ctx))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(&ctx))?;
        raw.iter().map(|s| parse_digest(s, column)).collect()
    }
}

fn string_column(tx: &Transaction<'_>, sql: &str, arg: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map(params![arg], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Whether an image record for `manifest` exists (inside the caller's transaction).
fn image_stored(tx: &rusqlite::Transaction<'_>, manifest: &Digest, ctx: &str) -> Result<bool> {
    tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM images WHERE manifest = ?1)",
        params![manifest.to_string()],
        |r| r.get(0),
    )
    .map_err(db_err(ctx))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

    use super::*;

    /// A store from before repository digests (schema 2) is migrated in place: its images
    /// stay, and they have no repository digests (nothing recorded what a registry served).
    #[test]
    fn schema_2_store_upgrades_without_repo_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("metadata.db");
        let manifest = Digest::of(b"old manifest");
        {
            let conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..2].iter().enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", i as i64 + 1)
                    .unwrap();
            }
            conn.execute(
                "INSERT INTO images (manifest, media_type, config, os, architecture, size)
                 VALUES (?1, 'application/vnd.oci.image.manifest.v1+json', ?2, 'linux',
                         'amd64', 1)",
                params![manifest.to_string(), Digest::of(b"cfg").to_string()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO tags (name, manifest) VALUES ('docker.io/library/old:1', ?1)",
                params![manifest.to_string()],
            )
            .unwrap();
        }
        let mut db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert!(db.image(&manifest).unwrap().is_some());
        assert_eq!(
            db.resolve_tag("docker.io/library/old:1").unwrap(),
            Some(manifest)
        );
        assert!(db.repo_digests().unwrap().is_empty());
        // The new table works on the upgraded store.
        db.put_repo_digest("docker.io/library/old", &manifest, &manifest)
            .unwrap();
        assert_eq!(db.repo_digests_of(&manifest).unwrap().len(), 1);
    }
}
