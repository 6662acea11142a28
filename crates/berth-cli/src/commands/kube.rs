//! `berth kube`: a compose project on a Kubernetes cluster, over the berth-kube crate
//! (generate, deploy, status, logs, delete, contexts); this file is flags, printing and exit
//! codes. Errors print one line on stderr (a failed rollout adds the failing pods' events
//! and last logs) and exit 1.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_compose::Project;
use berth_kube::deploy::{self as kd, Cluster, DeployEvent, DeployOptions, Target};
use berth_kube::generate::ServiceType;
use berth_kube::{yaml, GenerateOptions};
use clap::{Args, Subcommand, ValueEnum};

use super::{Ctx, Failure, Res};
use crate::format;

#[derive(Args)]
pub struct KubeArgs {
    #[command(flatten)]
    pub project: super::compose::ProjectFlags,
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context)
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's, else "default"); generate and deploy also
    /// emit the Namespace object
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: KubeCmd,
}

#[derive(Subcommand)]
pub enum KubeCmd {
    /// Print the project as Kubernetes objects (YAML), or write one file per object
    Generate(GenerateArgs),
    /// Apply the project to the cluster with images pinned by digest, and wait for the rollout
    Deploy(DeployArgs),
    /// Show the project's deployments, services, volumes and pods on the cluster
    Status(StatusArgs),
    /// Show the logs of the project's pods
    Logs(LogsArgs),
    /// Delete the project's objects from the cluster (volumes only with -v)
    Delete(DeleteArgs),
    /// List the kubeconfig's contexts
    Contexts(ContextsArgs),
}

#[derive(Args)]
pub struct GenFlags {
    /// The type of the Services made for published ports
    #[arg(long, value_enum, default_value = "clusterip")]
    pub service_type: SvcType,
    /// The storage class of the PersistentVolumeClaims (default: the cluster's)
    #[arg(long)]
    pub storage_class: Option<String>,
    /// The size each PersistentVolumeClaim requests (a Kubernetes quantity, default 1Gi)
    #[arg(long)]
    pub volume_size: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SvcType {
    Clusterip,
    Nodeport,
    Loadbalancer,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Write one file per object into this directory instead of one stream to stdout
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub gen: GenFlags,
}

#[derive(Args)]
pub struct DeployArgs {
    /// Push the images the project builds (or that have no registry digest) first
    #[arg(long)]
    pub push: bool,
    /// How long to wait for the rollout (90s, 5m, 1m30s)
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    #[command(flatten)]
    pub gen: GenFlags,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Format the output: table or json
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of each pod's logs ("all" for everything)
    #[arg(long = "tail", default_value = "all")]
    pub tail: String,
    /// Only this service's pods
    pub service: Option<String>,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// Also delete the project's PersistentVolumeClaims (its volumes' data)
    #[arg(short = 'v', long)]
    pub volumes: bool,
}

#[derive(Args)]
pub struct ContextsArgs {
    /// Format the output: table or json
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Print `message` on stderr; exit 1.
fn fail(message: impl std::fmt::Display) -> Failure {
    eprintln!("{message}");
    Failure::Exit(1)
}

fn kube_fail(e: kd::Error) -> Failure {
    match e {
        kd::Error::Rollout(r) => {
            eprintln!("{}", r.summary());
            eprint!("{}", r.report());
            Failure::Exit(1)
        }
        other => fail(other),
    }
}

fn load(a: &KubeArgs) -> Res<Project> {
    let p = a.project.load()?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    Ok(p)
}

/// The project name: `-p` alone works from anywhere (no compose file needed), as with
/// `docker compose -p NAME ps`; else the compose file's.
fn project_name(a: &KubeArgs) -> Res<String> {
    Ok(a.project.project_or_name()?.name)
}

fn target(a: &KubeArgs) -> Target {
    Target {
        kubeconfig: a.kubeconfig.clone(),
        context: a.context.clone(),
        namespace: a.namespace.clone(),
    }
}

async fn connect(a: &KubeArgs) -> Res<Cluster> {
    kd::connect(&target(a)).await.map_err(kube_fail)
}

fn gen_options(a: &KubeArgs, g: &GenFlags) -> GenerateOptions {
    generate_options(a.namespace.clone(), g)
}

/// The generator's options from the shared flags.
pub fn generate_options(namespace: Option<String>, g: &GenFlags) -> GenerateOptions {
    GenerateOptions {
        namespace,
        service_type: match g.service_type {
            SvcType::Clusterip => ServiceType::ClusterIp,
            SvcType::Nodeport => ServiceType::NodePort,
            SvcType::Loadbalancer => ServiceType::LoadBalancer,
        },
        storage_class: g.storage_class.clone(),
        volume_size: g.volume_size.clone(),
        images: BTreeMap::new(),
    }
}

/// `90s`, `5m`, `1h`, `1m30s`, or plain seconds.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid --timeout {s:?}: use a duration like 90s, 5m or 1m30s (or seconds)");
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Run a `berth kube` command; the exit code. The engine (for deploy's digests and pushes)
/// is connected only when a command needs it.
pub async fn standalone(host: &str, a: KubeArgs) -> i32 {
    let engine = || super::connect(host).map(|c| c.docker);
    let r = run(&a, engine).await;
    let _ = std::io::stdout().flush();
    match r {
        Ok(()) => 0,
        Err(Failure::Exit(c)) => c,
        Err(Failure::Usage(m)) => {
            eprintln!("{m}");
            125
        }
        Err(Failure::Daemon(m)) | Err(Failure::Connect(m)) => {
            eprintln!("{m}");
            1
        }
    }
}

/// `berth kube` with an engine already connected.
pub async fn kube(c: &Ctx, a: KubeArgs) -> Res<()> {
    run(&a, || Ok(c.docker.clone())).await
}

async fn run(a: &KubeArgs, engine: impl FnOnce() -> Res<bollard::Docker>) -> Res<()> {
    match &a.command {
        KubeCmd::Generate(g) => generate(a, g),
        KubeCmd::Deploy(d) => deploy(engine, a, d).await,
        KubeCmd::Status(s) => status(a, s).await,
        KubeCmd::Logs(l) => logs(a, l).await,
        KubeCmd::Delete(d) => delete(a, d).await,
        KubeCmd::Contexts(c) => contexts(a, c),
    }
}

fn generate(a: &KubeArgs, g: &GenerateArgs) -> Res<()> {
    let p = load(a)?;
    print_objects(&p, &gen_options(a, &g.gen), g.output.as_deref())
}

/// The project's Kubernetes objects: one YAML stream on stdout, or one file per object in
/// `output` (the paths printed); warnings on stderr. `berth kube generate` and `berth
/// compose convert --format kubernetes`.
pub fn print_objects(
    p: &Project,
    opts: &GenerateOptions,
    output: Option<&std::path::Path>,
) -> Res<()> {
    let m = berth_kube::generate(p, opts).map_err(fail)?;
    for w in &m.warnings {
        eprintln!("warning: {}: {}", w.key, w.message);
    }
    match output {
        Some(dir) => {
            let written = yaml::write_dir(&m.objects, dir)
                .map_err(|e| fail(format!("writing the objects to {}: {e}", dir.display())))?;
            for f in written {
                println!("{}", f.display());
            }
        }
        None => {
            let text = yaml::try_to_stream(&m.objects).map_err(fail)?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}

/// One progress line on stderr, compose style.
fn print_event(e: &DeployEvent) {
    let mut err = std::io::stderr().lock();
    let _ = match e {
        DeployEvent::Warning { key, message, .. } => writeln!(err, "warning: {key}: {message}"),
        DeployEvent::Push { service, status, .. } => writeln!(err, " Push {service}  {status}"),
        DeployEvent::Pinned {
            service, reference, ..
        } => writeln!(err, " Image {service}  {reference}"),
        DeployEvent::Applied {
            kind,
            name,
            namespace,
        } => match namespace {
            Some(ns) => writeln!(err, " {kind} {ns}/{name}  Applied"),
            None => writeln!(err, " {kind} {name}  Applied"),
        },
        DeployEvent::Progress {
            deployment,
            observed: false,
            ..
        } => writeln!(err, " Rollout {deployment}  waiting for the controller"),
        DeployEvent::Progress {
            deployment,
            desired,
            updated,
            ready,
            available,
            ..
        } => writeln!(
            err,
            " Rollout {deployment}  {ready}/{desired} ready, {updated} updated, {available} available"
        ),
        DeployEvent::Available { deployment, .. } => {
            writeln!(err, " Deployment {deployment}  Available")
        }
        // Printed from the error, with the details.
        DeployEvent::RolloutFailed(_) => Ok(()),
    };
}

async fn deploy(
    engine: impl FnOnce() -> Res<bollard::Docker>,
    a: &KubeArgs,
    d: &DeployArgs,
) -> Res<()> {
    let timeout = parse_timeout(&d.timeout).map_err(Failure::Usage)?;
    let p = load(a)?;
    // The engine is asked for digests (and pushes): needed unless every image is pinned.
    let pinned = p
        .services
        .values()
        .all(|s| !d.push && kd::is_digest_reference(&berth_compose::ops::image_name(&p, s)));
    let engine = match engine() {
        Ok(docker) => Some(docker),
        Err(_) if pinned => None,
        Err(Failure::Connect(m) | Failure::Daemon(m) | Failure::Usage(m)) => {
            return Err(fail(format!(
                "{m} (berth kube deploy asks the engine for image digests)"
            )))
        }
        Err(e) => return Err(e),
    };
    let cluster = connect(a).await?;
    let opts = DeployOptions {
        generate: gen_options(a, &d.gen),
        push: d.push,
        timeout,
        engine,
        registry_auth: Some(Arc::new(super::auth::credentials_for_image)),
    };
    let report = kd::deploy(&cluster, &p, opts, |e| print_event(&e))
        .await
        .map_err(kube_fail)?;
    eprintln!(
        " Deployed {}: {} objects in namespace {} (context {})",
        p.name,
        report.applied.len(),
        report.namespace,
        cluster.context
    );
    Ok(())
}

fn or_none(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

async fn status(a: &KubeArgs, s: &StatusArgs) -> Res<()> {
    let name = project_name(a)?;
    let cluster = connect(a).await?;
    let st = kd::status(&cluster, &name).await.map_err(kube_fail)?;
    if s.format == Format::Json {
        let text = serde_json::to_string_pretty(&st).map_err(|e| fail(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    if st.is_empty() {
        eprintln!(
            "no objects of project {name} in namespace {} (context {})",
            cluster.namespace, cluster.context
        );
        return Ok(());
    }
    let mut sections = Vec::new();
    if !st.deployments.is_empty() {
        let mut rows = vec![vec![
            "DEPLOYMENT".into(),
            "READY".into(),
            "UP-TO-DATE".into(),
            "AVAILABLE".into(),
            "IMAGE".into(),
        ]];
        for d in &st.deployments {
            rows.push(vec![
                d.name.clone(),
                format!("{}/{}", d.ready, d.desired),
                d.updated.to_string(),
                d.available.to_string(),
                d.images.join(","),
            ]);
        }
        sections.push(format::table(&rows));
    }
    if !st.services.is_empty() {
        let mut rows = vec![vec![
            "SERVICE".into(),
            "TYPE".into(),
            "CLUSTER-IP".into(),
            "EXTERNAL-IP".into(),
            "PORTS".into(),
        ]];
        for s in &st.services {
            let ports: Vec<String> = s
                .ports
                .iter()
                .map(|p| match p.node_port {
                    Some(n) => format!("{}:{n}/{}", p.port, p.protocol),
                    None => format!("{}/{}", p.port, p.protocol),
                })
                .collect();
            rows.push(vec![
                s.name.clone(),
                s.type_.clone(),
                or_none(s.cluster_ip.clone()),
                or_none(Some(s.external.join(","))),
                ports.join(","),
            ]);
        }
        sections.push(format::table(&rows));
    }
    if !st.volumes.is_empty() {
        let mut rows = vec![vec![
            "VOLUME".into(),
            "STATUS".into(),
            "SIZE".into(),
            "STORAGECLASS".into(),
        ]];
        for v in &st.volumes {
            rows.push(vec![
                v.name.clone(),
                v.phase.clone(),
                or_none(v.size.clone()),
                v.storage_class
                    .clone()
                    .unwrap_or_else(|| "<default>".into()),
            ]);
        }
        sections.push(format::table(&rows));
    }
    if !st.pods.is_empty() {
        let mut rows = vec![vec![
            "POD".into(),
            "STATUS".into(),
            "READY".into(),
            "RESTARTS".into(),
        ]];
        for p in &st.pods {
            rows.push(vec![
                p.name.clone(),
                p.reason.clone().unwrap_or_else(|| p.phase.clone()),
                format!("{}/{}", p.ready, p.containers),
                p.restarts.to_string(),
            ]);
        }
        sections.push(format::table(&rows));
    }
    print!("{}", sections.join("\n"));
    Ok(())
}

async fn logs(a: &KubeArgs, l: &LogsArgs) -> Res<()> {
    let tail = if l.tail == "all" {
        None
    } else {
        Some(
            l.tail
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "invalid --tail {:?}: a number of lines or \"all\"",
                        l.tail
                    ))
                })?,
        )
    };
    let name = project_name(a)?;
    let cluster = connect(a).await?;
    let opts = kd::LogOptions {
        service: l.service.clone(),
        tail,
        follow: l.follow,
    };
    kd::logs(&cluster, &name, &opts, |line| {
        let prefix = match &line.container {
            Some(c) => format!("{}/{c}", line.pod),
            None => line.pod.clone(),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{prefix} | {}", line.line);
        let _ = out.flush();
    })
    .await
    .map_err(kube_fail)
}

async fn delete(a: &KubeArgs, d: &DeleteArgs) -> Res<()> {
    let name = project_name(a)?;
    let cluster = connect(a).await?;
    let r = kd::delete(&cluster, &name, d.volumes)
        .await
        .map_err(kube_fail)?;
    if r.deleted.is_empty() && r.kept.is_empty() {
        eprintln!(
            "nothing of project {name} in namespace {} (context {})",
            cluster.namespace, cluster.context
        );
    }
    for o in &r.deleted {
        eprintln!(" {} {}/{}  Deleted", o.kind, o.namespace, o.name);
    }
    for o in &r.kept {
        eprintln!(
            " {} {}/{}  Kept (its data stays; delete it with -v)",
            o.kind, o.namespace, o.name
        );
    }
    Ok(())
}

fn contexts(a: &KubeArgs, c: &ContextsArgs) -> Res<()> {
    let cs = kd::contexts(a.kubeconfig.as_deref()).map_err(kube_fail)?;
    if c.format == Format::Json {
        let text = serde_json::to_string_pretty(&cs).map_err(|e| fail(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let mut rows = vec![vec![
        "CURRENT".into(),
        "NAME".into(),
        "CLUSTER".into(),
        "SERVER".into(),
        "NAMESPACE".into(),
    ]];
    for x in &cs.contexts {
        let current = if cs.current.as_deref() == Some(x.name.as_str()) {
            "*"
        } else {
            ""
        };
        rows.push(vec![
            current.into(),
            x.name.clone(),
            x.cluster.clone(),
            x.server.clone().unwrap_or_default(),
            x.namespace.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", format::table(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "5x", "m", "1m5", "0s"] {
            let e = parse_timeout(bad).unwrap_err();
            assert!(e.contains("--timeout"), "{bad}: {e}");
        }
    }
}
