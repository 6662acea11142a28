//! The commands: each talks to the engine through bollard and prints docker's output shapes.
//! One module per family; each owns its clap enum and its dispatch.

pub mod auth;
pub mod build;
pub mod compose;
pub mod containers;
pub mod context;
pub mod exec;
pub mod images;
pub mod kube;
pub mod ops;
pub mod ps;
pub mod raw;
pub mod resources;
pub mod system;
pub mod vm;

use std::collections::HashMap;
use std::io::Write;

use bollard::errors::Error as BollardError;
use bollard::{ClientVersion, Docker};

use crate::Command;

/// Why a command failed, printed as one line on stderr.
#[derive(Debug)]
pub enum Failure {
    /// The engine answered with an error.
    Daemon(String),
    /// The engine could not be reached.
    Connect(String),
    /// Bad input or another client-side error (exit 125 unless `code` says otherwise).
    Usage(String),
    /// A quiet exit with this code (the container's, or docker's 126/127).
    Exit(i32),
}

pub type Res<T> = Result<T, Failure>;

pub struct Ctx {
    pub docker: Docker,
    pub host: String,
}

impl Ctx {
    /// Map a bollard error: engine answers keep their message, the rest means the engine
    /// was not reachable (the innermost cause says why).
    pub fn err(&self, e: BollardError) -> Failure {
        match e {
            BollardError::DockerResponseServerError { message, .. } => Failure::Daemon(message),
            BollardError::DockerStreamError { error } => Failure::Daemon(error),
            BollardError::JsonDataError { message, .. } => {
                Failure::Usage(format!("unexpected answer from the engine: {message}"))
            }
            other => Failure::Connect(connect_message(&self.host, &other)),
        }
    }
}

/// docker's words when the engine cannot be reached; the innermost cause of `e` says why.
pub(crate) fn connect_message(host: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut why: &dyn std::error::Error = e;
    while let Some(src) = why.source() {
        why = src;
    }
    let why = match e.downcast_ref::<BollardError>() {
        Some(BollardError::SocketNotFoundError(p)) => format!("no socket at {p}"),
        _ => why.to_string(),
    };
    format!(
        "Cannot connect to the Berth engine at {host}: {why}. Is berthd running? \
         Start it with: sudo bash .ci/berth"
    )
}

/// Run one command against `host`; the process exit code.
pub async fn run(host: &str, cmd: Command) -> i32 {
    let failed = engine_failure_code(&cmd);
    // `compose config`/`convert` read files only: they work without an engine.
    let cmd = match cmd {
        Command::Compose(a)
            if matches!(
                a.command,
                compose::ComposeCmd::Config(_) | compose::ComposeCmd::Convert(_)
            ) =>
        {
            return match compose::config(&a) {
                Ok(()) => 0,
                Err(Failure::Exit(code)) => code,
                Err(_) => 1,
            };
        }
        // `kube` talks to the cluster; deploy connects to the engine only if it needs it.
        Command::Kube(a) => return kube::standalone(host, *a).await,
        other => other,
    };
    let result = match connect(host) {
        Ok(ctx) => dispatch(&ctx, cmd).await,
        Err(f) => Err(f),
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => 0,
        Err(Failure::Exit(code)) => code,
        Err(Failure::Daemon(m)) => {
            eprintln!("Error response from daemon: {m}");
            failed
        }
        Err(Failure::Connect(m)) => {
            eprintln!("{m}");
            failed
        }
        Err(Failure::Usage(m)) => {
            eprintln!("{m}");
            125
        }
    }
}

/// docker's exit code when the engine refuses or cannot be reached: 125 for `run` and
/// `create` (so it cannot be mistaken for the container's own code), 1 for the rest.
fn engine_failure_code(cmd: &Command) -> i32 {
    use containers::{ContainerCmd as C, ContainerMgmt as M};
    let c = match cmd {
        Command::Containers(c) | Command::Container(M::Common(c)) => c,
        _ => return 1,
    };
    match c {
        C::Run(_) | C::Create(_) => 125,
        _ => 1,
    }
}

fn connect(host: &str) -> Res<Ctx> {
    let Some(path) = host.strip_prefix("unix://") else {
        return Err(Failure::Usage(format!(
            "unsupported engine host {host:?}: berth talks to berthd on a unix socket; \
             pass -H unix:///path/to/berth.sock"
        )));
    };
    let version = ClientVersion {
        major_version: 1,
        minor_version: 45,
    };
    match Docker::connect_with_unix(path, 120, &version) {
        Ok(docker) => Ok(Ctx {
            docker,
            host: host.to_string(),
        }),
        Err(e) => Err(Failure::Connect(connect_message(host, &e))),
    }
}

async fn dispatch(c: &Ctx, cmd: Command) -> Res<()> {
    match cmd {
        Command::Containers(cmd) => containers::dispatch(c, cmd).await,
        Command::Container(cmd) => containers::dispatch_mgmt(c, cmd).await,
        Command::Images(cmd) => images::dispatch(c, cmd).await,
        Command::Image(cmd) => images::dispatch_mgmt(c, cmd).await,
        Command::Build(a) => build::build(c, *a).await,
        Command::Builder(b) => build::builder(c, b),
        Command::Compose(a) => compose::compose(c, *a).await,
        Command::Kube(a) => kube::kube(c, *a).await,
        Command::Volume(v) => resources::volume(c, v).await,
        Command::Network(n) => resources::network(c, n).await,
        Command::System(cmd) => system::dispatch(c, cmd).await,
        Command::Top(cmd) => system::dispatch_top(c, cmd).await,
        Command::Auth(cmd) => auth::dispatch(c, cmd).await,
    }
}

/// docker's multi-target commands: act on each, print each name that worked, report each
/// failure on stderr and fail at the end if any did.
pub async fn each<F, Fut>(targets: &[String], f: F) -> Res<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Res<()>>,
{
    let mut failed = None;
    for t in targets {
        match f(t.clone()).await {
            Ok(()) => println!("{t}"),
            Err(Failure::Connect(m)) => return Err(Failure::Connect(m)),
            Err(Failure::Daemon(m)) => {
                eprintln!("Error response from daemon: {m}");
                failed = Some(1);
            }
            Err(Failure::Usage(m)) => {
                eprintln!("{m}");
                failed = Some(1);
            }
            Err(Failure::Exit(code)) => failed = Some(code),
        }
    }
    match failed {
        Some(_) => Err(Failure::Exit(1)),
        None => Ok(()),
    }
}

/// docker's prune prompt: `message`, then "Are you sure you want to continue? [y/N] "; true
/// on y/Y only, as docker.
pub fn confirm(message: &str) -> bool {
    print!("{message}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    answer.trim().eq_ignore_ascii_case("y")
}

pub fn parse_filters(raw: &[String]) -> Res<Option<HashMap<String, Vec<String>>>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for f in raw {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Failure::Usage(format!(
                "bad filter {f:?}: expected key=value, e.g. --filter status=running"
            )));
        };
        m.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(Some(m))
}

pub fn usage(m: String) -> Failure {
    Failure::Usage(m)
}

pub fn describe(c: &Ctx, e: BollardError) -> String {
    match c.err(e) {
        Failure::Daemon(m) | Failure::Connect(m) | Failure::Usage(m) => m,
        Failure::Exit(n) => format!("exit {n}"),
    }
}

pub fn write_log(out: bollard::container::LogOutput) {
    use bollard::container::LogOutput;
    match out {
        LogOutput::StdErr { message } => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&message);
            let _ = e.flush();
        }
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&message);
            let _ = o.flush();
        }
        LogOutput::StdIn { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = parse_filters(&["status=exited".into(), "status=created".into()])
            .unwrap()
            .unwrap();
        assert_eq!(f["status"], ["exited", "created"]);
        assert!(parse_filters(&["status".into()]).is_err());
    }
}
