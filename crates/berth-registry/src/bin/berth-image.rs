//! `berth-image`: Berth's image store and registry client from the command line — pull
//! (through the configured mirrors), push, images, tag, rmi, prune, load, save. The engine
//! (berthd) serves the same operations over the Docker API; this tool works on a store
//! directly, for scripts, debugging and benchmarks.

use anyhow::{bail, Context, Result};
use berth_registry::image_pull::pull_image;
use berth_registry::store_sink::StoreSource;
use berth_registry::{Client, Platform, Progress, Reference, RegistryConfig};
use berth_store::store::Store;
use berth_store::unpack::Limits;
use berth_store::{archive, gc, Digest};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "berth-image",
    version,
    about = "Berth's image store and registry client"
)]
struct Cli {
    /// Store directory.
    #[arg(long, global = true, default_value = "/var/lib/berth")]
    root: PathBuf,
    /// A Docker daemon.json with registry-mirrors / registry-mirrors-by-host / insecure-registries.
    #[arg(long = "daemon-config", global = true)]
    daemon_config: Option<PathBuf>,
    /// A Docker config.json with registry credentials (auths).
    #[arg(long = "auth-config", global = true)]
    auth_config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pull an image (verified, through the mirrors), unpack it and tag it.
    Pull {
        reference: String,
        /// os/arch[/variant]; default: this host.
        #[arg(long)]
        platform: Option<String>,
        /// Print only the final digest.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Push an image from the store.
    Push { reference: String },
    /// List images.
    Images,
    /// Add a name to an image.
    Tag { source: String, target: String },
    /// Remove a name; the image goes when no name or container uses it.
    Rmi { reference: String },
    /// Remove untagged images and everything nothing references.
    Prune,
    /// Load a `docker save` tarball (or an OCI archive) from a file.
    Load {
        #[arg(short, long)]
        input: PathBuf,
    },
    /// Save images as a tarball `docker load` and OCI tools both read.
    Save {
        #[arg(short, long)]
        output: PathBuf,
        references: Vec<String>,
    },
}

fn config(cli: &Cli) -> Result<RegistryConfig> {
    let mut cfg = match &cli.daemon_config {
        Some(p) => {
            let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not valid JSON", p.display()))?;
            RegistryConfig::from_daemon_json(&v)?
        }
        None => RegistryConfig::default(),
    };
    if let Some(p) = &cli.auth_config {
        cfg.load_credentials(p)?;
    }
    Ok(cfg)
}

/// Resolve a name or digest to a manifest digest in the store.
fn resolve(store: &Store, s: &str) -> Result<(Digest, Option<String>)> {
    if let Ok(d) = Digest::parse(s) {
        return Ok((d, None));
    }
    let r = Reference::parse_normalized(s)?;
    if let Some(d) = r.digest {
        return Ok((d, None));
    }
    let name = r.name_with_tag();
    match store.db()?.resolve_tag(&name)? {
        Some(d) => Ok((d, Some(name))),
        None => bail!("no such image: {name} (see `berth-image images`)"),
    }
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1}{}", units[u])
}

fn render(p: &Progress) -> Option<String> {
    let short = |d: &Digest| d.hex()[..12].to_string();
    Some(match p {
        Progress::Resolved {
            reference,
            digest,
            endpoint,
        } => {
            format!("{reference}: resolved to {digest} by {endpoint}")
        }
        Progress::Waiting { digest } => format!("{}: waiting", short(digest)),
        Progress::Verifying { digest } => format!("{}: verifying", short(digest)),
        Progress::Done { digest, endpoint } => {
            format!("{}: downloaded from {endpoint}", short(digest))
        }
        Progress::Exists { digest } => format!("{}: already exists", short(digest)),
        Progress::Extracting { digest } => format!("{}: extracting", short(digest)),
        Progress::Skipped { endpoint, reason } => format!("warning: skipped {endpoint}: {reason}"),
        Progress::Error { digest, message } => match digest {
            Some(d) => format!("{}: error: {message}", short(d)),
            None => format!("error: {message}"),
        },
        _ => return None,
    })
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("berth-image: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    let store = Arc::new(
        Store::open(&cli.root)
            .with_context(|| format!("opening the store at {}", cli.root.display()))?,
    );
    match &cli.cmd {
        Cmd::Pull {
            reference,
            platform,
            quiet,
        } => {
            let r = Reference::parse_normalized(reference)?;
            let platform = match platform {
                Some(p) => p.parse::<Platform>()?,
                None => Platform::host(),
            };
            let client = Client::new(config(&cli)?)?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let quiet = *quiet;
            let printer = tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    if let Some(line) = render(&p) {
                        if !quiet || line.starts_with("warning") {
                            eprintln!("{line}");
                        }
                    }
                }
            });
            let res = pull_image(&client, &store, &r, &platform, Limits::default(), tx).await;
            let _ = printer.await;
            let pulled = res?;
            if quiet {
                println!("{}", pulled.record.manifest);
            } else {
                println!(
                    "Pulled {} ({}, {} layers, {})",
                    pulled.tag.as_deref().unwrap_or(&r.to_string()),
                    pulled.record.manifest,
                    pulled.record.layers.len(),
                    human(pulled.record.size)
                );
            }
        }
        Cmd::Push { reference } => {
            let r = Reference::parse_normalized(reference)?;
            let (manifest, _) = resolve(&store, reference)?;
            let rec = store
                .db()?
                .image(&manifest)?
                .with_context(|| format!("image {manifest} has no record in the store"))?;
            let bytes = store.content.read_limited(&manifest, 4 << 20)?;
            let client = Client::new(config(&cli)?)?;
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let source = StoreSource {
                store: Arc::clone(&store),
            };
            let d = client
                .push(&r, &source, &bytes, &rec.media_type, tx)
                .await?;
            println!("Pushed {r} ({d})");
        }
        Cmd::Images => {
            let db = store.db()?;
            let tags = db.tags()?;
            println!("{:<50} {:<20} {:<20} SIZE", "REPOSITORY", "TAG", "IMAGE ID");
            for img in db.images()? {
                let names: Vec<&String> = tags
                    .iter()
                    .filter(|(_, d)| *d == img.manifest)
                    .map(|(n, _)| n)
                    .collect();
                let id = &img.config.hex()[..12];
                if names.is_empty() {
                    println!(
                        "{:<50} {:<20} {:<20} {}",
                        "<none>",
                        "<none>",
                        id,
                        human(img.size)
                    );
                }
                for n in names {
                    let r = Reference::parse_normalized(n)?;
                    println!(
                        "{:<50} {:<20} {:<20} {}",
                        r.familiar_name(),
                        r.tag.as_deref().unwrap_or("<none>"),
                        id,
                        human(img.size)
                    );
                }
            }
        }
        Cmd::Tag { source, target } => {
            let (d, _) = resolve(&store, source)?;
            let t = Reference::parse_normalized(target)?;
            store.db()?.set_tag(&t.name_with_tag(), &d)?;
        }
        Cmd::Rmi { reference } => {
            let (d, name) = resolve(&store, reference)?;
            let mut db = store.db()?;
            if let Some(n) = name {
                db.remove_tag(&n)?;
                println!("Untagged: {n}");
            }
            let still_named = db.tags()?.iter().any(|(_, t)| *t == d);
            if !still_named {
                db.delete_image(&d)?;
                println!("Deleted: {d}");
            }
            drop(db);
            let rep = gc::collect(&store)?;
            println!("Freed {}", human(rep.bytes_freed));
        }
        Cmd::Prune => {
            let removed = gc::prune_dangling(&store)?;
            let rep = gc::collect(&store)?;
            println!(
                "Removed {} images, {} blobs, {} layers; freed {}",
                removed.len(),
                rep.blobs_removed,
                rep.layers_removed.len(),
                human(rep.bytes_freed)
            );
        }
        Cmd::Load { input } => {
            let f = std::fs::File::open(input)
                .with_context(|| format!("opening {}", input.display()))?;
            for l in archive::load(&store, std::io::BufReader::new(f))? {
                match l.name {
                    Some(n) => println!("Loaded image: {n}"),
                    None => println!("Loaded image ID: {}", l.manifest),
                }
            }
        }
        Cmd::Save { output, references } => {
            if references.is_empty() {
                bail!("save needs at least one image name");
            }
            let mut list = Vec::new();
            for r in references {
                let (d, name) = resolve(&store, r)?;
                list.push((d, name.into_iter().collect()));
            }
            let tmp = output.with_extension("partial");
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            archive::save(&store, &list, std::io::BufWriter::new(f))?;
            std::fs::rename(&tmp, output)
                .with_context(|| format!("writing {}", output.display()))?;
        }
    }
    Ok(())
}
