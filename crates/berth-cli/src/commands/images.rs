//! Image commands: images, pull, tag, rmi.

use std::io::Write;

use bollard::query_parameters::*;
use clap::{Args, Subcommand};
use futures_util::StreamExt;

use super::{Ctx, Failure, Res};
use crate::format::{ago, human_size, now_unix, short_id, table};

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
    Pull { image: String },
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
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
        ImageMgmt::Shared(s) => shared(c, s).await,
    }
}

async fn shared(c: &Ctx, cmd: ImageShared) -> Res<()> {
    match cmd {
        ImageShared::Pull { image } => pull(c, &image, false).await,
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
}

async fn images(c: &Ctx, a: ImagesArgs) -> Res<()> {
    let o = ListImagesOptions {
        all: a.all,
        ..Default::default()
    };
    let list = c.docker.list_images(Some(o)).await.map_err(|e| c.err(e))?;
    let now = now_unix();
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
    for img in &list {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            short_id(&img.id)
        };
        let mut refs: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| split_ref(t))
            .collect();
        if refs.is_empty() {
            // Untagged: the repository from a digest if there is one, as docker shows it.
            let repo = img
                .repo_digests
                .iter()
                .find_map(|d| d.split_once('@').map(|(r, _)| r.to_string()))
                .filter(|r| r != "<none>")
                .unwrap_or_else(|| "<none>".into());
            refs.push((repo, "<none>".into()));
        }
        for (repo, tag) in refs {
            if a.quiet {
                println!("{id}");
                continue;
            }
            rows.push(vec![
                repo,
                tag,
                id.clone(),
                ago(img.created, now),
                human_size(img.size),
            ]);
        }
    }
    if !a.quiet {
        print!("{}", table(&rows));
    }
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

/// Pull `image` printing docker's plain progress: one line per status change, per-byte
/// progress left out (a terminal progress display is a later step).
pub async fn pull(c: &Ctx, image: &str, quiet_tag_default: bool) -> Res<()> {
    let (repo, tag) = split_ref(image);
    let (from, tag) = match image.split_once('@') {
        Some(_) => (image.to_string(), String::new()),
        None => (repo.clone(), tag),
    };
    let last = image.rsplit('/').next().unwrap_or(image);
    if !quiet_tag_default && !last.contains(':') && !last.contains('@') {
        println!("Using default tag: latest");
    }
    let o = CreateImageOptions {
        from_image: Some(from),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut s = c.docker.create_image(Some(o), None, None);
    let mut out = std::io::stdout();
    while let Some(item) = s.next().await {
        let info = item.map_err(|e| c.err(e))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Failure::Daemon(err));
        }
        let Some(status) = info.status else { continue };
        let moving = info
            .progress_detail
            .as_ref()
            .is_some_and(|p| p.current.is_some() || p.total.is_some());
        if moving {
            continue;
        }
        let line = match info.id.filter(|i| !i.is_empty()) {
            Some(id) => format!("{id}: {status}"),
            None => status,
        };
        // In `run`, pull progress goes to stderr so stdout carries only the container's output.
        if quiet_tag_default {
            eprintln!("{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    if !quiet_tag_default {
        println!("{}", canonical_ref(image));
    }
    Ok(())
}

/// docker's full name for a reference: registry (docker.io by default), `library/` for
/// official images, and `:latest` when neither tag nor digest is given.
fn canonical_ref(image: &str) -> String {
    let (first, rest) = image.split_once('/').unwrap_or(("", image));
    let has_domain =
        !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        image.to_string()
    } else if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else {
        format!("docker.io/{image}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && !last.contains('@') {
        full.push_str(":latest");
    }
    full
}

#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

async fn rmi(c: &Ctx, a: RmiArgs) -> Res<()> {
    let mut failed = false;
    for img in &a.images {
        let o = RemoveImageOptions {
            force: a.force,
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
    }
}
