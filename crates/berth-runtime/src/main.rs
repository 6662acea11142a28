//! `berth-runtime`: the OCI runtime's command line, compatible with runc's.

use berth_runtime::container::{self, CreateOpts, ExecOpts};
use berth_runtime::state::{self, Container, Status};
use berth_runtime::{log, spec, Error, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "Berth's OCI runtime (runc-compatible command line)"
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (errors and, with --debug, debug events).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility; cgroups are managed through cgroupfs.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "rootless", id = "global_rootless", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct CreateArgs {
    id: String,
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is made).
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Create and start a container; without --detach wait for it and remove it.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init, or with --all to all its processes.
    Kill {
        id: String,
        signal: Option<String>,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything it holds.
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Run a new process inside a running container.
    Exec {
        id: String,
        /// Command and arguments (unless --process is given).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long)]
        env: Vec<String>,
        /// UID[:GID]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short = 'g', long = "additional-gids")]
        additional_gids: Vec<u32>,
        #[arg(short, long)]
        cap: Vec<String>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        #[arg(long = "ignore-paused")]
        ignore_paused: bool,
        #[arg(long)]
        apparmor: Option<String>,
        #[arg(long = "process-label")]
        process_label: Option<String>,
        #[arg(long)]
        cgroup: Option<String>,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the processes running in a container.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Arguments for ps(1).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process in a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Write a default config.json into the bundle directory.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Print resource statistics (--stats once, or every --interval).
    Events {
        id: String,
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Print the features this runtime supports, as JSON.
    Features,
}

fn main() {
    // Stage 1 re-exec'd from a sealed copy of this binary: no argument parsing.
    if std::env::args_os().nth(1).is_some_and(|a| a == "stage1")
        && std::env::var_os(container::STAGE1_FD_ENV).is_some()
    {
        container::stage1_entry();
    }
    let cli = Cli::parse();
    if let Err(e) = log::init(cli.log.as_deref(), cli.log_format == "json", cli.debug) {
        eprintln!("berth-runtime: cannot open log file: {e}");
        std::process::exit(1);
    }
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("berth-runtime: {e}");
            std::process::exit(1);
        }
    }
}

fn parse_signal(s: Option<&str>) -> Result<nix::sys::signal::Signal> {
    use std::str::FromStr;
    let s = s.unwrap_or("SIGTERM");
    let bad = || {
        Error::InvalidArgument(format!(
            "unknown signal \"{s}\": use a name like TERM, KILL, SIGHUP or a number"
        ))
    };
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| bad())
}

fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let bad = || Error::InvalidArgument(format!("--interval \"{s}\": use e.g. 5s, 500ms or 1m"));
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if v <= 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(v * mul))
}

fn create_opts(c: &CreateArgs) -> CreateOpts {
    CreateOpts {
        bundle: c.bundle.clone(),
        detach: false,
        pid_file: c.pid_file.clone(),
        console_socket: c.console_socket.clone(),
        preserve_fds: c.preserve_fds,
        no_pivot: c.no_pivot,
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let root = cli.root.as_path();
    match cli.cmd {
        Cmd::Create(c) => {
            container::create(root, &c.id, &create_opts(&c), true)?;
            Ok(0)
        }
        Cmd::Start { id } => container::start(root, &id).map(|_| 0),
        Cmd::Run { c, detach, keep } => {
            if keep && !detach {
                let created = container::create(root, &c.id, &create_opts(&c), true)?;
                drop(created);
                container::start(root, &c.id)?;
                let cont = Container::load(root, &c.id)?;
                return container::supervise(cont.pid, None);
            }
            let opts = CreateOpts {
                detach,
                ..create_opts(&c)
            };
            container::run(root, &c.id, &opts, detach)
        }
        Cmd::State { id } => {
            let c = Container::load(root, &id)?;
            let st = c.oci_state(c.status());
            println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            let sig = parse_signal(signal.as_deref())?;
            container::kill(root, &id, sig, all).map(|_| 0)
        }
        Cmd::Delete { id, force } => container::delete(root, &id, force).map(|_| 0),
        Cmd::Exec {
            id,
            command,
            process,
            tty,
            console_socket,
            cwd,
            env,
            user,
            additional_gids,
            cap,
            no_new_privs,
            detach,
            pid_file,
            preserve_fds,
            ..
        } => {
            let c = Container::load(root, &id)?;
            let base = c.spec()?;
            let mut p = container::exec_process(&base, process.as_deref(), &command)?;
            if process.is_none() {
                if tty {
                    p.set_terminal(Some(true));
                }
                if let Some(cwd) = cwd {
                    p.set_cwd(cwd);
                }
                if !env.is_empty() {
                    let mut e = p.env().clone().unwrap_or_default();
                    for kv in env {
                        if !kv.contains('=') {
                            return Err(Error::InvalidArgument(format!(
                                "--env \"{kv}\": use NAME=value"
                            )));
                        }
                        let key = kv.split('=').next().unwrap_or_default().to_string();
                        e.retain(|x| x.split('=').next() != Some(key.as_str()));
                        e.push(kv);
                    }
                    p.set_env(Some(e));
                }
                if let Some(u) = user {
                    let (uid, gid) = match u.split_once(':') {
                        Some((a, b)) => (a.to_string(), Some(b.to_string())),
                        None => (u.clone(), None),
                    };
                    let bad =
                        || Error::InvalidArgument(format!("--user \"{u}\": use numeric UID[:GID]"));
                    let mut usr = p.user().clone();
                    usr.set_uid(uid.parse().map_err(|_| bad())?);
                    if let Some(g) = gid {
                        usr.set_gid(g.parse().map_err(|_| bad())?);
                    }
                    p.set_user(usr);
                }
                if !additional_gids.is_empty() {
                    let mut usr = p.user().clone();
                    usr.set_additional_gids(Some(additional_gids));
                    p.set_user(usr);
                }
                if !cap.is_empty() {
                    let mut caps = p.capabilities().clone().unwrap_or_default();
                    for name in &cap {
                        let c: oci_spec::runtime::Capability =
                            serde_json::from_value(serde_json::Value::String(name.clone()))
                                .map_err(|_| {
                                    Error::InvalidArgument(format!(
                                        "--cap \"{name}\": unknown capability"
                                    ))
                                })?;
                        for set in [
                            caps.bounding().clone(),
                            caps.effective().clone(),
                            caps.permitted().clone(),
                        ] {
                            let _ = set;
                        }
                        let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                            let mut s = s.clone().unwrap_or_default();
                            s.insert(c);
                            Some(s)
                        };
                        caps.set_bounding(add(caps.bounding()));
                        caps.set_effective(add(caps.effective()));
                        caps.set_permitted(add(caps.permitted()));
                    }
                    p.set_capabilities(Some(caps));
                }
                if no_new_privs {
                    p.set_no_new_privileges(Some(true));
                }
                spec::validate_process(&p, "process")?;
            }
            let opts = ExecOpts {
                pid_file,
                console_socket,
                preserve_fds,
                detach,
            };
            container::exec(root, &id, p, &opts)
        }
        Cmd::List { format, quiet } => {
            let all = state::list(root)?;
            if quiet {
                for c in &all {
                    println!("{}", c.id);
                }
            } else if format == "json" {
                let v: Vec<serde_json::Value> =
                    all.iter().map(|c| c.oci_state(c.status())).collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                );
                for c in &all {
                    let st = c.status();
                    let pid = if matches!(st, Status::Stopped) {
                        0
                    } else {
                        c.pid
                    };
                    println!(
                        "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                        c.id,
                        pid,
                        st,
                        c.bundle.display(),
                        c.created,
                        c.owner
                    );
                }
            }
            Ok(0)
        }
        Cmd::Ps {
            id,
            format,
            ps_args,
        } => ps(root, &id, &format, &ps_args),
        Cmd::Pause { id } => container::pause(root, &id).map(|_| 0),
        Cmd::Resume { id } => container::resume(root, &id).map(|_| 0),
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(Error::InvalidArgument(format!(
                    "{} already exists: remove it first",
                    path.display()
                )));
            }
            let v = spec::default_spec_json(rootless);
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))?;
            Ok(0)
        }
        Cmd::Events {
            id,
            stats,
            interval,
        } => {
            let every = parse_interval(&interval)?;
            loop {
                let c = Container::load(root, &id)?;
                if c.status() == Status::Stopped {
                    return Err(Error::BadState {
                        id,
                        status: "stopped".into(),
                        what: "no statistics for a stopped container".into(),
                    });
                }
                let data = c.cgroup.stats()?;
                println!(
                    "{}",
                    serde_json::json!({"type": "stats", "id": id, "data": data})
                );
                if stats {
                    return Ok(0);
                }
                std::thread::sleep(every);
            }
        }
        Cmd::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&features()).unwrap_or_default()
            );
            Ok(0)
        }
    }
}

fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind",
            "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
            "noatime", "atime", "relatime", "norelatime", "strictatime", "nodiratime", "diratime", "sync", "async"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": berth_runtime::caps::ALL.iter().map(|c| format!("CAP_{c}")).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false},
            "seccomp": {"enabled": true, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
                "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]}
        }
    })
}

fn ps(root: &Path, id: &str, format: &str, args: &[String]) -> Result<i32> {
    let pids = container::pids(root, id)?;
    if format == "json" {
        println!("{}", serde_json::json!(pids));
        return Ok(0);
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::sys("running ps", e))?;
    if !out.status.success() {
        return Err(Error::Container(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Container("ps output has no PID column".into()))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}
