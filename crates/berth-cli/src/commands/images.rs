//! Image commands: images, pull, push, tag, rmi, history, save, load, and `image inspect`,
//! `image prune`. Pull, push, save and load show progress bars on a terminal and docker's
//! plain lines elsewhere.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use bollard::query_parameters::*;
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::ops::inspect_each;
use super::raw::{enc_ref, request, request_with, Body};
use super::{auth, confirm, parse_filters, Ctx, Failure, Res};
use crate::format::{ago, ellipsis, go_time, human_size, human_size4, now_unix, rfc3339, short_id};
use crate::progress::{self, Layers, Out};
use crate::template::{self, Format};

/// Image commands docker has at the top level.
#[derive(Subcommand)]
pub enum ImageCmd {
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    #[command(flatten)]
    Shared(ImageShared),
}

/// Commands spelled the same at the top level and under `image`.
#[derive(Subcommand)]
pub enum ImageShared {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
}

/// `berth image ...`.
#[derive(Subcommand)]
pub enum ImageMgmt {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(alias = "remove", alias = "rmi")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(PruneArgs),
    #[command(flatten)]
    Shared(ImageShared),
}

pub async fn dispatch(c: &Ctx, cmd: ImageCmd) -> Res<()> {
    match cmd {
        ImageCmd::Images(a) => images(c, a).await,
        ImageCmd::Rmi(a) => rmi(c, a).await,
        ImageCmd::Shared(s) => shared(c, s).await,
    }
}

pub async fn dispatch_mgmt(c: &Ctx, cmd: ImageMgmt) -> Res<()> {
    match cmd {
        ImageMgmt::Ls(a) => images(c, a).await,
        ImageMgmt::Rm(a) => rmi(c, a).await,
        ImageMgmt::Inspect(a) => inspect(c, a),
        ImageMgmt::Prune(a) => prune(c, a).await,
        ImageMgmt::Shared(s) => shared(c, s).await,
    }
}

async fn shared(c: &Ctx, cmd: ImageShared) -> Res<()> {
    match cmd {
        ImageShared::Pull(a) => pull_cmd(c, a).await,
        ImageShared::Push(a) => push(c, a).await,
        ImageShared::Tag { source, target } => {
            let (repo, tag) = split_ref(&target);
            let o = TagImageOptions {
                repo: Some(repo),
                tag: Some(tag),
            };
            c.docker
                .tag_image(&source, Some(o))
                .await
                .map_err(|e| c.err(e))
        }
        ImageShared::History(a) => history(c, a).await,
        ImageShared::Save(a) => save(c, a).await,
        ImageShared::Load(a) => load(c, a).await,
    }
}

// ---- images ----

#[derive(Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided (dangling, reference, label, before, since)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository[:tag]
    pub reference: Option<String>,
}

const IMAGE_TITLES: &[(&str, &str)] = &[
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

/// docker's rows for one image: one per repository:tag (per digest with `--digests`), then
/// repositories known only by digest; `<none>` for a dangling image.
fn image_rows(img: &bollard::models::ImageSummary, digests: bool) -> Vec<(String, String, String)> {
    let tags: Vec<&String> = img
        .repo_tags
        .iter()
        .filter(|t| t.as_str() != "<none>:<none>")
        .collect();
    let dg: Vec<&String> = img
        .repo_digests
        .iter()
        .filter(|d| d.as_str() != "<none>@<none>")
        .collect();
    if tags.is_empty() && dg.is_empty() {
        return vec![("<none>".into(), "<none>".into(), "<none>".into())];
    }
    let mut by_repo: Vec<(String, Vec<String>)> = Vec::new();
    for d in &dg {
        if let Some((repo, digest)) = d.split_once('@') {
            match by_repo.iter_mut().find(|(r, _)| r == repo) {
                Some((_, v)) => v.push(digest.to_string()),
                None => by_repo.push((repo.to_string(), vec![digest.to_string()])),
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for t in &tags {
        let (repo, tag) = split_ref(t);
        let ds = by_repo
            .iter()
            .find(|(r, _)| *r == repo)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        seen.push(repo.clone());
        if !digests || ds.is_empty() {
            out.push((repo, tag, "<none>".into()));
        } else {
            for d in ds {
                out.push((repo.clone(), tag.clone(), d));
            }
        }
    }
    for (repo, ds) in by_repo {
        if seen.contains(&repo) {
            continue;
        }
        if digests {
            for d in ds {
                out.push((repo.clone(), "<none>".into(), d));
            }
        } else {
            out.push((repo, "<none>".into(), String::new()));
        }
    }
    out
}

async fn images(c: &Ctx, a: ImagesArgs) -> Res<()> {
    let mut filters = parse_filters(&a.filter)?.unwrap_or_default();
    if let Some(r) = &a.reference {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let o = ListImagesOptions {
        all: a.all,
        filters: (!filters.is_empty()).then_some(filters),
        digests: a.digests,
        ..Default::default()
    };
    let list = c.docker.list_images(Some(o)).await.map_err(|e| c.err(e))?;
    let now = now_unix();
    let mut rows = Vec::new();
    for img in &list {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            short_id(&img.id)
        };
        // docker resolves digests for --digests or a format naming {{.Digest}}.
        let digests = a.digests
            || a.format
                .as_deref()
                .is_some_and(|f| f.contains("{{.Digest}}"));
        for (repo, tag, digest) in image_rows(img, digests) {
            rows.push(json!({
                "Containers": if img.containers < 0 { "N/A".to_string() } else { img.containers.to_string() },
                "CreatedAt": go_time(img.created),
                "CreatedSince": ago(img.created, now),
                "Digest": digest,
                "ID": id,
                "Repository": repo,
                "SharedSize": if img.shared_size < 0 { "N/A".to_string() } else { human_size4(img.shared_size as f64) },
                "Size": human_size(img.size),
                "Tag": tag,
                "UniqueSize": if img.shared_size < 0 { "N/A".to_string() } else { human_size4((img.size - img.shared_size) as f64) },
                "VirtualSize": human_size4(img.size as f64),
            }));
        }
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let default: &[(&str, &str)] = if a.digests {
        &[
            ("Repository", ""),
            ("Tag", ""),
            ("Digest", ""),
            ("ID", ""),
            ("CreatedSince", ""),
            ("Size", ""),
        ]
    } else {
        &[
            ("Repository", ""),
            ("Tag", ""),
            ("ID", ""),
            ("CreatedSince", ""),
            ("Size", ""),
        ]
    };
    let format = Format::parse(a.format.as_deref());
    let out = template::print(&format, &rows, default, IMAGE_TITLES).map_err(Failure::Usage)?;
    print!("{out}");
    Ok(())
}

/// "repo:tag" → (repo, tag); the tag defaults to "latest"; a registry port is not a tag.
fn split_ref(r: &str) -> (String, String) {
    let r = r.split('@').next().unwrap_or(r);
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

/// Whether a reference names a tag or digest (a registry port is neither).
fn has_tag_or_digest(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.contains(':') || last.contains('@')
}

// ---- pull ----

#[derive(Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Skip image verification (accepted for compatibility)
    #[arg(long, hide = true)]
    pub disable_content_trust: bool,
    pub image: String,
}

async fn pull_cmd(c: &Ctx, a: PullArgs) -> Res<()> {
    if a.all_tags && has_tag_or_digest(&a.image) {
        return Err(Failure::Usage(
            "tag can't be used with --all-tags/-a: give the repository alone".into(),
        ));
    }
    pull_with(
        c,
        &a.image,
        a.platform.as_deref(),
        a.quiet,
        Out::Stdout,
        if a.all_tags {
            Mode::AllTags
        } else {
            Mode::Pull
        },
    )
    .await
}

/// What `pull_with` is pulling for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `berth pull IMAGE`.
    Pull,
    /// `berth pull --all-tags REPO`: an empty tag asks the engine for every tag.
    AllTags,
    /// `berth run`'s implicit pull: no "Using default tag", no final reference.
    Run,
}

/// Pull `image` as `run` does: progress on stderr so stdout carries only the container's
/// output. `quiet_tag_default`: the `run` shape (no "Using default tag", no final reference).
pub async fn pull(c: &Ctx, image: &str, quiet_tag_default: bool) -> Res<()> {
    let out = if quiet_tag_default {
        Out::Stderr
    } else {
        Out::Stdout
    };
    let mode = if quiet_tag_default {
        Mode::Run
    } else {
        Mode::Pull
    };
    pull_with(c, image, None, false, out, mode).await
}

async fn pull_with(
    c: &Ctx,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    out: Out,
    mode: Mode,
) -> Res<()> {
    let (repo, tag) = split_ref(image);
    let (from, tag) = match image.split_once('@') {
        Some(_) => (image.to_string(), String::new()),
        None if mode == Mode::AllTags => (repo, String::new()),
        None => (repo, tag),
    };
    if mode == Mode::Pull && !quiet && !has_tag_or_digest(image) {
        out.line("Using default tag: latest");
    }
    let o = CreateImageOptions {
        from_image: Some(from),
        tag: (!tag.is_empty()).then_some(tag),
        platform: platform.unwrap_or_default().to_string(),
        ..Default::default()
    };
    let creds = auth::credentials_for_image(image);
    let mut s = c.docker.create_image(Some(o), None, creds);
    let mut show = Layers::new(out, quiet);
    let mut tags_seen = 0;
    while let Some(item) = s.next().await {
        let info = match item {
            Ok(i) => i,
            Err(e) => {
                show.finish();
                return Err(c.err(e));
            }
        };
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            show.finish();
            return Err(Failure::Daemon(err));
        }
        let Some(status) = info.status else { continue };
        let (cur, total) = info
            .progress_detail
            .as_ref()
            .map_or((None, None), |p| (p.current, p.total));
        // Each tag of an all-tags pull gets its own block of layers (they may repeat).
        if status.starts_with("Pulling from") {
            tags_seen += 1;
            if tags_seen > 1 {
                std::mem::replace(&mut show, Layers::new(out, quiet)).finish();
            }
        }
        show.message(info.id.as_deref(), &status, cur, total);
    }
    show.finish();
    match mode {
        Mode::Pull => println!("{}", canonical_ref(image)),
        Mode::AllTags => println!("{}", canonical_repo(image)),
        Mode::Run => {}
    }
    Ok(())
}

/// docker's full name for a reference: registry (docker.io by default), `library/` for
/// official images, and `:latest` when neither tag nor digest is given.
fn canonical_ref(image: &str) -> String {
    let (first, rest) = image.split_once('/').unwrap_or(("", image));
    let has_domain = !first.is_empty() && auth::is_registry_host(first);
    let mut full = if has_domain {
        image.to_string()
    } else if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else {
        format!("docker.io/{image}")
    };
    if !has_tag_or_digest(&full) {
        full.push_str(":latest");
    }
    full
}

/// docker's full name for a repository (`pull --all-tags` prints it without a tag).
fn canonical_repo(image: &str) -> String {
    let full = canonical_ref(image);
    full.strip_suffix(":latest").unwrap_or(&full).to_string()
}

// ---- push ----

#[derive(Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long, hide = true)]
    pub disable_content_trust: bool,
    pub image: String,
}

async fn push(c: &Ctx, a: PushArgs) -> Res<()> {
    let (repo, tag) = split_ref(&a.image);
    if a.image.contains('@') {
        return Err(Failure::Usage(format!(
            "cannot push a digest reference {:?}: push a repository:tag",
            a.image
        )));
    }
    let tagged = has_tag_or_digest(&a.image);
    if a.all_tags && tagged {
        return Err(Failure::Usage(
            "tag can't be used with --all-tags/-a: give the repository alone".into(),
        ));
    }
    if !a.all_tags && !tagged && !a.quiet {
        println!("Using default tag: latest");
    }
    let tags = if a.all_tags {
        let o = ListImagesOptions {
            filters: Some(HashMap::from([(
                "reference".to_string(),
                vec![repo.clone()],
            )])),
            ..Default::default()
        };
        let list = c.docker.list_images(Some(o)).await.map_err(|e| c.err(e))?;
        let mut tags: Vec<String> = list
            .iter()
            .flat_map(|i| i.repo_tags.iter())
            .map(|t| split_ref(t))
            .filter(|(r, _)| *r == repo)
            .map(|(_, t)| t)
            .collect();
        tags.sort();
        tags.dedup();
        if tags.is_empty() {
            return Err(Failure::Daemon(format!(
                "An image does not exist locally with the tag: {repo}"
            )));
        }
        tags
    } else {
        vec![tag]
    };
    let mut headers = Vec::new();
    if let Some(h) = auth::registry_auth_header(&a.image) {
        headers.push(("X-Registry-Auth", h));
    }
    for tag in &tags {
        push_one(c, &repo, tag, &headers, a.quiet)?;
    }
    if a.quiet {
        println!("{}", canonical_ref(&a.image));
    }
    Ok(())
}

fn push_one(c: &Ctx, repo: &str, tag: &str, headers: &[(&str, String)], quiet: bool) -> Res<()> {
    let resp = request_with(
        c,
        "POST",
        &format!("/images/{}/push?tag={}", enc_ref(repo), enc_ref(tag)),
        headers,
        Body::Empty,
    )?;
    let mut show = Layers::new(Out::Stdout, quiet);
    for m in resp.messages() {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                show.finish();
                return Err(Failure::Usage(e));
            }
        };
        if let Some(err) = m
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .or_else(|| m.get("error"))
            .and_then(Value::as_str)
        {
            show.finish();
            return Err(Failure::Daemon(err.to_string()));
        }
        let Some(status) = m.get("status").and_then(Value::as_str) else {
            continue;
        };
        let detail = m.get("progressDetail");
        let num = |k: &str| detail.and_then(|d| d.get(k)).and_then(Value::as_i64);
        show.message(
            m.get("id").and_then(Value::as_str),
            status,
            num("current"),
            num("total"),
        );
    }
    show.finish();
    Ok(())
}

// ---- history ----

#[derive(Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (--human=false for raw values)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

const HISTORY_TITLES: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

async fn history(c: &Ctx, a: HistoryArgs) -> Res<()> {
    let items = c
        .docker
        .image_history(&a.image)
        .await
        .map_err(|e| c.err(e))?;
    let now = now_unix();
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = if a.no_trunc || h.id == "<missing>" {
                h.id.clone()
            } else {
                short_id(&h.id)
            };
            let by = h.created_by.replace('\t', " ");
            json!({
                "ID": id,
                "CreatedSince": match (a.human, h.created > 0) {
                    (false, _) => rfc3339(h.created),
                    (true, true) => ago(h.created, now),
                    (true, false) => "N/A".to_string(),
                },
                "CreatedAt": rfc3339(h.created),
                "CreatedBy": if a.no_trunc { by } else { ellipsis(&by, 45) },
                "Size": if a.human { human_size(h.size) } else { h.size.to_string() },
                "Comment": h.comment,
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let default = [
        ("ID", ""),
        ("CreatedSince", ""),
        ("CreatedBy", ""),
        ("Size", ""),
        ("Comment", ""),
    ];
    let format = Format::parse(a.format.as_deref());
    let titles: Vec<(&str, &str)> = HISTORY_TITLES
        .iter()
        .map(|&(k, t)| match (k, a.human) {
            ("CreatedSince", false) => (k, "CREATED AT"),
            _ => (k, t),
        })
        .collect();
    let out = template::print(&format, &rows, &default, &titles).map_err(Failure::Usage)?;
    print!("{out}");
    Ok(())
}

// ---- inspect ----

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json' or a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

fn inspect(c: &Ctx, a: InspectArgs) -> Res<()> {
    inspect_each(&a.images, a.format.as_deref(), |name| {
        request(
            c,
            "GET",
            &format!("/images/{}/json", enc_ref(name)),
            Body::Empty,
        )?
        .bytes()
    })
}

// ---- prune ----

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

/// docker's report of an image prune: "Deleted Images:" and an "untagged: "/"deleted: " line
/// per (untagged, deleted) entry; empty when nothing went.
pub fn deleted_images(items: impl IntoIterator<Item = (Option<String>, Option<String>)>) -> String {
    let mut lines = String::new();
    for (untagged, deleted) in items {
        if let Some(u) = untagged.filter(|u| !u.is_empty()) {
            lines.push_str(&format!("untagged: {u}\n"));
        }
        if let Some(x) = deleted.filter(|x| !x.is_empty()) {
            lines.push_str(&format!("deleted: {x}\n"));
        }
    }
    if lines.is_empty() {
        return lines;
    }
    format!("Deleted Images:\n{lines}")
}

async fn prune(c: &Ctx, a: PruneArgs) -> Res<()> {
    let mut filters: HashMap<String, Vec<String>> = parse_filters(&a.filter)?.unwrap_or_default();
    filters.insert("dangling".into(), vec![(!a.all).to_string()]);
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !confirm(warning) {
            return Ok(());
        }
    }
    let o = PruneImagesOptions {
        filters: Some(filters),
    };
    let r = c.docker.prune_images(Some(o)).await.map_err(|e| c.err(e))?;
    let deleted = r.images_deleted.unwrap_or_default();
    let out = deleted_images(deleted.into_iter().map(|d| (d.untagged, d.deleted)));
    if !out.is_empty() {
        println!("{out}");
    }
    println!(
        "Total reclaimed space: {}",
        human_size4(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(())
}

// ---- save / load ----

#[derive(Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

async fn save(c: &Ctx, a: SaveArgs) -> Res<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let mut s = c.docker.export_images(&names);
    let io = |what: &str, e: std::io::Error| Failure::Usage(format!("{what}: {e}"));
    match &a.output {
        Some(path) => {
            // Written next to the target and renamed, so a failed save leaves no half file.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.{}.tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("save"),
                std::process::id()
            ));
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| io(&format!("cannot create {}", tmp.display()), e))?;
            let bar = progress::bytes(Out::Stdout, false, "Saving", None);
            let res: Res<()> = async {
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(|e| c.err(e))?;
                    f.write_all(&chunk)
                        .map_err(|e| io(&format!("writing {}", path.display()), e))?;
                    if let Some(b) = &bar {
                        b.inc(chunk.len() as u64);
                    }
                }
                f.sync_all()
                    .map_err(|e| io(&format!("writing {}", path.display()), e))?;
                std::fs::rename(&tmp, path)
                    .map_err(|e| io(&format!("cannot write {}", path.display()), e))
            }
            .await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|e| c.err(e))?;
                out.write_all(&chunk)
                    .map_err(|e| io("writing to stdout", e))?;
            }
            out.flush().map_err(|e| io("writing to stdout", e))
        }
    }
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

async fn load(c: &Ctx, a: LoadArgs) -> Res<()> {
    let (reader, total): (Box<dyn Read + Send>, Option<u64>) = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| Failure::Usage(format!("cannot open {}: {e}", p.display())))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::Usage(
                    "requested load from stdin, but stdin is empty: use -i FILE or pipe an archive in"
                        .into(),
                ));
            }
            (Box::new(std::io::stdin()), None)
        }
    };
    let bar = progress::bytes(Out::Stdout, a.quiet, "Loading", total);
    let bar2 = bar.clone();
    // Read on the blocking pool, a chunk at a time.
    let body = futures_util::stream::unfold(Some(reader), move |r| {
        let bar = bar2.clone();
        async move {
            let mut r = r?;
            let res = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; 256 << 10];
                let n = r.read(&mut buf);
                (r, buf, n)
            })
            .await;
            match res {
                Ok((_, _, Ok(0))) => None,
                Ok((r, mut buf, Ok(n))) => {
                    buf.truncate(n);
                    if let Some(b) = &bar {
                        b.inc(n as u64);
                    }
                    Some((Ok(bytes::Bytes::from(buf)), Some(r)))
                }
                Ok((_, _, Err(e))) => Some((Err(e), None)),
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let o = ImportImageOptions {
        quiet: a.quiet,
        ..Default::default()
    };
    let mut s = c.docker.import_image_stream(o, body, None);
    let mut lines = Vec::new();
    let mut failed = None;
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    failed = Some(Failure::Daemon(e));
                    break;
                }
                if let Some(text) = info.stream {
                    lines.push(text.trim_end().to_string());
                }
            }
            Err(e) => {
                failed = Some(c.err(e));
                break;
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(f) = failed {
        return Err(f);
    }
    for l in lines.iter().filter(|l| !l.is_empty()) {
        println!("{l}");
    }
    Ok(())
}

// ---- rmi ----

#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

async fn rmi(c: &Ctx, a: RmiArgs) -> Res<()> {
    let mut failed = false;
    for img in &a.images {
        let o = RemoveImageOptions {
            force: a.force,
            noprune: a.no_prune,
            ..Default::default()
        };
        match c.docker.remove_image(img, Some(o), None).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => match c.err(e) {
                Failure::Daemon(m) => {
                    eprintln!("Error response from daemon: {m}");
                    failed = true;
                }
                other => return Err(other),
            },
        }
    }
    if failed {
        Err(Failure::Exit(1))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_filters() {
        assert_eq!(split_ref("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(split_ref("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(
            split_ref("localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert!(!has_tag_or_digest("127.0.0.1:5000/a"));
        assert!(has_tag_or_digest("127.0.0.1:5000/a:1"));
    }

    #[test]
    fn canonical_refs() {
        assert_eq!(canonical_ref("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(canonical_ref("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            canonical_ref("127.0.0.1:5000/t/b"),
            "127.0.0.1:5000/t/b:latest"
        );
        assert_eq!(
            canonical_ref("localhost/b@sha256:ab"),
            "localhost/b@sha256:ab"
        );
        assert_eq!(canonical_repo("busybox"), "docker.io/library/busybox");
        assert_eq!(canonical_repo("127.0.0.1:5000/t/b"), "127.0.0.1:5000/t/b");
    }

    #[test]
    fn rows_like_docker() {
        let img = bollard::models::ImageSummary {
            repo_tags: vec!["a:1".into(), "a:2".into(), "b:1".into()],
            repo_digests: vec!["a@sha256:aa".into(), "c@sha256:cc".into()],
            ..Default::default()
        };
        let r = |v: &[(&str, &str, &str)]| {
            v.iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            image_rows(&img, false),
            r(&[
                ("a", "1", "<none>"),
                ("a", "2", "<none>"),
                ("b", "1", "<none>"),
                ("c", "<none>", "")
            ])
        );
        assert_eq!(
            image_rows(&img, true),
            r(&[
                ("a", "1", "sha256:aa"),
                ("a", "2", "sha256:aa"),
                ("b", "1", "<none>"),
                ("c", "<none>", "sha256:cc")
            ])
        );
        let dangling = bollard::models::ImageSummary::default();
        assert_eq!(
            image_rows(&dangling, false),
            r(&[("<none>", "<none>", "<none>")])
        );
    }
}
