//! `berth exec`: run a command in a running container, attached or detached, with docker's
//! exit codes (the command's own, 126 when it cannot be run, 127 when it is not found).

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use clap::Args;

use super::containers::read_kv_file;
use super::{usage, Ctx, Failure, Res};
use crate::tty::{self, Outcome, Session, Target};

#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

fn env_list(a: &ExecArgs) -> Res<Vec<String>> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(read_kv_file("--env-file", f, true)?);
    }
    for e in &a.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    Ok(env)
}

pub async fn exec(c: &Ctx, a: ExecArgs) -> Res<()> {
    let keys_spec = a.detach_keys.clone().unwrap_or_default();
    let keys = tty::parse_detach_keys(&keys_spec).map_err(usage)?;
    let env = env_list(&a)?;
    let attached = !a.detach;
    let config = ExecConfig {
        attach_stdin: Some(a.interactive && attached),
        attach_stdout: Some(attached),
        attach_stderr: Some(attached),
        tty: Some(a.tty),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(a.cmd.clone()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        detach_keys: (!keys_spec.is_empty()).then_some(keys_spec),
        console_size: if a.tty {
            tty::size().map(|(h, w)| vec![usize::from(h), usize::from(w)])
        } else {
            None
        },
    };
    let id = c
        .docker
        .create_exec(&a.container, config)
        .await
        .map_err(|e| c.err(e))?
        .id;
    let start = StartExecOptions {
        detach: a.detach,
        tty: a.tty,
        output_capacity: None,
    };
    let started = c
        .docker
        .start_exec(&id, Some(start))
        .await
        .map_err(|e| c.err(e))?;
    let StartExecResults::Attached { output, input } = started else {
        return Ok(());
    };
    let session = Session {
        tty: a.tty,
        stdin: a.interactive,
        detach_keys: keys,
        proxy_to: None,
        resize: Some(Target::Exec(id.clone())),
    };
    if tty::pump(c, session, output, input).await? == Outcome::Detached {
        return Ok(());
    }
    let info = c.docker.inspect_exec(&id).await.map_err(|e| c.err(e))?;
    if info.running == Some(true) {
        // The engine ended the stream while the command runs on (a detach).
        return Ok(());
    }
    match info.exit_code.unwrap_or(0) {
        0 => Ok(()),
        n => Err(Failure::Exit(n as i32)),
    }
}
