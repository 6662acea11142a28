//! Service images pinned by digest: the local engine's RepoDigests, or a push first.

use std::collections::BTreeMap;

use berth_compose::ops::image_name;
use berth_compose::Project;
use bollard::query_parameters::PushImageOptions;
use futures_util::StreamExt;

use super::apply::{DeployEvent, DeployOptions};
use super::{innermost, Error};

/// Whether `image` already names a digest (`repo@sha256:...`).
pub fn is_digest_reference(image: &str) -> bool {
    image
        .split_once('@')
        .is_some_and(|(_, d)| d.starts_with("sha256:") && d.len() == 71)
}

/// The repository of an image reference, as written: without its digest and tag
/// (`127.0.0.1:5000/app:1` → `127.0.0.1:5000/app`).
pub fn repository_of(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match no_digest[last_slash..].rfind(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    }
}

/// The repository fully qualified as docker does (`busybox` → `docker.io/library/busybox`).
fn normalized(repo: &str) -> String {
    let (first, rest) = match repo.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (repo, None),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    match rest {
        Some(_) if is_host => repo.to_string(),
        Some(_) => format!("docker.io/{repo}"),
        None => format!("docker.io/library/{repo}"),
    }
}

/// Whether two references name the same repository (`busybox` and
/// `docker.io/library/busybox:1` do).
pub fn same_repository(a: &str, b: &str) -> bool {
    normalized(repository_of(a)) == normalized(repository_of(b))
}

/// The digest in a push status line (`1: digest: sha256:... size: 527`).
fn pushed_digest(status: &str) -> Option<String> {
    let (_, after) = status.split_once("digest: ")?;
    let d = after.split_whitespace().next()?;
    is_digest_reference(&format!("x@{d}")).then(|| d.to_string())
}

/// `repo` and tag of a reference without digest (`latest` when it has none).
fn split_tag(image: &str) -> (String, String) {
    let repo = repository_of(image);
    let tag = image[repo.len()..].trim_start_matches(':');
    let tag = if tag.is_empty() { "latest" } else { tag };
    (repo.to_string(), tag.to_string())
}

/// The reference each service's containers run, pinned by digest, by service name.
pub(crate) async fn pin_images<F: FnMut(DeployEvent)>(
    project: &Project,
    opts: &DeployOptions,
    on_event: &mut F,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, svc) in &project.services {
        let image = opts
            .generate
            .images
            .get(name)
            .cloned()
            .unwrap_or_else(|| image_name(project, svc));
        if is_digest_reference(&image) {
            out.insert(name.clone(), image);
            continue;
        }
        if svc.image.is_none() && !opts.generate.images.contains_key(name) {
            return Err(Error::Image(format!(
                "services.{name} has no image: its build is tagged {image} locally, which a \
                 cluster cannot pull; set `image:` to a registry reference (like \
                 registry.example.com/{}/{name}:1) and deploy with --push",
                project.name
            )));
        }
        let Some(docker) = &opts.engine else {
            return Err(Error::Image(format!(
                "services.{name}: image {image} is not pinned by digest and no engine is \
                 connected to look its digest up; reference it as {}@sha256:...",
                repository_of(&image)
            )));
        };
        let local = match docker.inspect_image(&image).await {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(Error::Image(format!(
                    "services.{name}: image {image} is not in the local engine, so its digest \
                     is unknown: pull it (berth pull {image}) or build and push it (berth \
                     compose build, then berth kube deploy --push)"
                )))
            }
            Err(e) => {
                return Err(Error::Unreachable(format!(
                    "services.{name}: cannot inspect image {image} in the engine: {}",
                    innermost(&e)
                )))
            }
        };
        let digest = local
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| same_repository(d, &image));
        let wants_push = opts.push && (svc.build.is_some() || digest.is_none());
        let pinned = if wants_push {
            push(docker, name, &image, opts, on_event).await?
        } else if let Some(d) = digest {
            let digest = d.split_once('@').map(|(_, d)| d).unwrap_or_default();
            format!("{}@{digest}", repository_of(&image))
        } else {
            return Err(Error::Image(format!(
                "services.{name}: image {image} has no registry digest (it was built or tagged \
                 here and never pushed to {}), so the cluster cannot pull it: push it with \
                 --push (or berth push {image})",
                repository_of(&image)
            )));
        };
        on_event(DeployEvent::Pinned {
            service: name.clone(),
            image: image.clone(),
            reference: pinned.clone(),
        });
        out.insert(name.clone(), pinned);
    }
    Ok(out)
}

/// Push `image` and return `repo@digest` of what the registry stored.
async fn push<F: FnMut(DeployEvent)>(
    docker: &bollard::Docker,
    service: &str,
    image: &str,
    opts: &DeployOptions,
    on_event: &mut F,
) -> Result<String, Error> {
    let (repo, tag) = split_tag(image);
    if !repo.contains('/') {
        return Err(Error::Image(format!(
            "services.{service}: image {image} names no registry or user (it would go to \
             docker.io/library); set `image:` to a registry reference before --push"
        )));
    }
    on_event(DeployEvent::Push {
        service: service.to_string(),
        image: image.to_string(),
        status: "Pushing".into(),
    });
    let creds = opts.registry_auth.as_ref().and_then(|a| a(image));
    let mut stream = docker.push_image(
        &repo,
        Some(PushImageOptions {
            tag: Some(tag),
            platform: None,
        }),
        creds,
    );
    let mut digest = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| match e {
            bollard::errors::Error::DockerStreamError { error } => {
                Error::Image(format!("pushing {image}: {error}"))
            }
            bollard::errors::Error::DockerResponseServerError { message, .. } => {
                Error::Image(format!("pushing {image}: {message}"))
            }
            other => Error::Unreachable(format!("pushing {image}: {}", innermost(&other))),
        })?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::Image(format!("pushing {image}: {err}")));
        }
        let Some(status) = info.status else { continue };
        if let Some(d) = pushed_digest(&status) {
            digest = Some(d);
        }
        if !matches!(status.as_str(), "Pushing" | "Preparing" | "Waiting") {
            on_event(DeployEvent::Push {
                service: service.to_string(),
                image: image.to_string(),
                status,
            });
        }
    }
    if digest.is_none() {
        // An engine that does not say the digest: it records it as a RepoDigest.
        if let Ok(i) = docker.inspect_image(image).await {
            digest = i
                .repo_digests
                .unwrap_or_default()
                .into_iter()
                .find(|d| same_repository(d, image))
                .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()));
        }
    }
    let Some(digest) = digest else {
        return Err(Error::Image(format!(
            "pushing {image}: the engine did not report the pushed digest"
        )));
    };
    Ok(format!("{repo}@{digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn repositories() {
        assert_eq!(repository_of("busybox"), "busybox");
        assert_eq!(repository_of("busybox:1.36"), "busybox");
        assert_eq!(repository_of("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
        assert_eq!(repository_of("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000/a/b");
        assert_eq!(repository_of(&format!("reg:5000/a@{D}")), "reg:5000/a");
        assert!(same_repository("busybox", "docker.io/library/busybox:1"));
        assert!(same_repository("me/app", "docker.io/me/app@sha256:x"));
        assert!(!same_repository("127.0.0.1:5000/app", "app"));
        assert!(same_repository("localhost/app:1", "localhost/app"));
    }

    #[test]
    fn digests() {
        assert!(is_digest_reference(&format!("reg/app@{D}")));
        assert!(!is_digest_reference("reg/app:1"));
        assert!(!is_digest_reference("reg/app@sha256:short"));
        assert_eq!(
            pushed_digest(&format!("1: digest: {D} size: 527")).as_deref(),
            Some(D)
        );
        assert_eq!(pushed_digest("Pushed"), None);
        assert_eq!(
            split_tag("127.0.0.1:5000/a"),
            ("127.0.0.1:5000/a".into(), "latest".into())
        );
        assert_eq!(split_tag("a/b:v2"), ("a/b".into(), "v2".into()));
    }
}
