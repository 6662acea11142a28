//! `build`, `pull`, `push`.

use std::collections::HashMap;

use bollard::query_parameters as q;
use futures_util::StreamExt;

use super::create::build_args;
use super::{engine, image_name, res, service, BuildOptions, Compose, Error, Event, Reporter};
use crate::model::Project;

/// `registry/repo:tag` → (`registry/repo`, `tag`), the tag defaulting to `latest`; a digest
/// reference keeps its digest as the "tag".
pub(crate) fn split_tag(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

impl Compose {
    /// Build the services that have `build:` (all of them when `services` is empty), tagging
    /// each image with its `image:` name or `<project>-<service>`.
    pub async fn build(
        &self,
        p: &Project,
        services: &[String],
        o: &BuildOptions,
        r: &Reporter,
    ) -> Result<(), Error> {
        let names: Vec<String> = if services.is_empty() {
            p.services
                .values()
                .filter(|s| s.build.is_some())
                .map(|s| s.name.clone())
                .collect()
        } else {
            services.to_vec()
        };
        for n in names {
            let s = service(p, &n)?;
            let Some(b) = &s.build else {
                continue;
            };
            let image = image_name(p, s);
            res(r, "Image", &image, "Building", false);
            let ignore_path = b.context.join(".dockerignore");
            let ignore = match std::fs::read_to_string(&ignore_path) {
                Ok(text) => berth_build::DockerIgnore::parse(&text).map_err(|e| {
                    Error::new(format!("service {n}: {}: {e}", ignore_path.display()))
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    berth_build::DockerIgnore::default()
                }
                Err(e) => {
                    return Err(Error::new(format!(
                        "service {n}: cannot read {}: {e}",
                        ignore_path.display()
                    )))
                }
            };
            let dir = b.context.clone();
            if !dir.is_dir() {
                return Err(Error::new(format!(
                    "service {n}: build context {} is not a directory",
                    dir.display()
                )));
            }
            let dockerfile = b.dockerfile.clone();
            let packed = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                let mut out = Vec::new();
                berth_build::context::pack(&dir, &ignore, &dockerfile, &mut out)?;
                Ok(out)
            })
            .await
            .map_err(|e| Error::new(format!("service {n}: packing the build context: {e}")))?
            .map_err(|e| {
                Error::new(format!(
                    "service {n}: cannot pack the build context {}: {e}",
                    b.context.display()
                ))
            })?;
            let env = |k: &str| std::env::var(k).ok();
            let args = build_args(&b.args, &env);
            let mut tags = vec![image.clone()];
            tags.extend(b.tags.iter().cloned());
            let opts = q::BuildImageOptions {
                dockerfile: b.dockerfile.clone(),
                t: Some(image.clone()),
                nocache: o.no_cache,
                pull: o.pull.then(|| "1".to_string()),
                rm: true,
                forcerm: true,
                buildargs: (!args.is_empty()).then_some(args),
                labels: (!b.labels.is_empty()).then(|| {
                    b.labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }),
                networkmode: b.network.clone(),
                target: b.target.clone().unwrap_or_default(),
                ..Default::default()
            };
            let mut stream =
                self.docker
                    .build_image(opts, None, Some(bollard::body_full(packed.into())));
            let mut partial = String::new();
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| engine(&format!("building service {n}"), e))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(Error::new(format!("service {n} failed to build: {err}")));
                }
                if let Some(text) = info.stream {
                    partial.push_str(&text);
                    while let Some(i) = partial.find('\n') {
                        let line: String = partial.drain(..=i).collect();
                        r(Event::Build {
                            service: n.clone(),
                            line: line.trim_end_matches(['\n', '\r']).to_string(),
                        });
                    }
                }
            }
            if !partial.is_empty() {
                r(Event::Build {
                    service: n.clone(),
                    line: partial,
                });
            }
            for extra in &b.tags {
                let (repo, tag) = split_tag(extra);
                self.docker
                    .tag_image(
                        &image,
                        Some(q::TagImageOptions {
                            repo: Some(repo),
                            tag: Some(tag),
                        }),
                    )
                    .await
                    .map_err(|e| engine(&format!("tagging {image} as {extra}"), e))?;
            }
            res(r, "Image", &image, "Built", true);
        }
        Ok(())
    }

    /// Pull the images of the named services (all when empty); services with only `build:`
    /// are skipped.
    pub async fn pull(&self, p: &Project, services: &[String], r: &Reporter) -> Result<(), Error> {
        let names: Vec<String> = if services.is_empty() {
            p.services.keys().cloned().collect()
        } else {
            services.to_vec()
        };
        let mut images: HashMap<String, String> = HashMap::new();
        for n in &names {
            let s = service(p, n)?;
            if let Some(i) = &s.image {
                images.entry(i.clone()).or_insert_with(|| n.clone());
            } else {
                res(r, "Image", &image_name(p, s), "Skipped", true);
            }
        }
        let mut jobs: Vec<(String, String)> = images.into_iter().collect();
        jobs.sort();
        super::all(jobs, |(image, svc)| async move {
            res(r, "Image", &image, "Pulling", false);
            let (repo, tag) = split_tag(&image);
            let creds = self.auth.as_ref().and_then(|a| a(&image));
            let mut stream = self.docker.create_image(
                Some(q::CreateImageOptions {
                    from_image: Some(repo),
                    tag: Some(tag),
                    ..Default::default()
                }),
                None,
                creds,
            );
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| engine(&format!("pulling {image}"), e))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(Error::new(format!("pulling {image}: {err}")));
                }
                if let Some(status) = info.status {
                    let line = match info.id {
                        Some(id) => format!("{id}: {status}"),
                        None => status,
                    };
                    r(Event::Pull {
                        service: svc.clone(),
                        status: line,
                    });
                }
            }
            res(r, "Image", &image, "Pulled", true);
            Ok(())
        })
        .await
    }

    /// Push the images of services that have both `build:` and `image:`.
    pub async fn push(&self, p: &Project, services: &[String], r: &Reporter) -> Result<(), Error> {
        let names: Vec<String> = if services.is_empty() {
            p.services.keys().cloned().collect()
        } else {
            services.to_vec()
        };
        for n in names {
            let s = service(p, &n)?;
            let Some(image) = &s.image else {
                continue;
            };
            if s.build.is_none() && !services.contains(&n) {
                continue;
            }
            res(r, "Image", image, "Pushing", false);
            let (repo, tag) = split_tag(image);
            let creds = self.auth.as_ref().and_then(|a| a(image));
            let mut stream = self.docker.push_image(
                &repo,
                Some(q::PushImageOptions {
                    tag: Some(tag),
                    platform: None,
                }),
                creds,
            );
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| engine(&format!("pushing {image}"), e))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(Error::new(format!("pushing {image}: {err}")));
                }
                if let Some(status) = info.status {
                    r(Event::Pull {
                        service: n.clone(),
                        status,
                    });
                }
            }
            res(r, "Image", image, "Pushed", true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(split_tag("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_tag("127.0.0.1:5000/app:v1"),
            ("127.0.0.1:5000/app".into(), "v1".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), "latest".into())
        );
    }
}
