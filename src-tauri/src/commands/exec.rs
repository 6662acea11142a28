//! Exec terminals: a shell in a running container, its output over a channel, keystrokes and
//! resizes through commands.

use super::{engine_err, nonempty};
use crate::error::{self, Res};
use crate::streams::ExecHandle;
use crate::App;
use base64::Engine as _;
use berth_desktop_dto::{AppError, ErrorCode, ExecEvent, ExecRequest};
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures_util::StreamExt;
use tauri::ipc::Channel;
use tauri::State;
use tokio::io::AsyncWriteExt;

/// With no command: bash when the image has it, else sh.
const DEFAULT_SHELL: &str = "if [ -x /bin/bash ]; then exec /bin/bash; else exec /bin/sh; fi";

#[tauri::command]
pub async fn exec_start(
    app: State<'_, App>,
    req: ExecRequest,
    channel: Channel<ExecEvent>,
) -> Res<u32> {
    nonempty(&req.container, "The container")?;
    let cmd = if req.command.is_empty() {
        vec!["/bin/sh".into(), "-c".into(), DEFAULT_SHELL.into()]
    } else {
        req.command.clone()
    };
    let d = app.engine.docker()?;
    let created = d
        .create_exec(
            &req.container,
            ExecConfig {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                env: Some(vec!["TERM=xterm-256color".into()]),
                cmd: Some(cmd),
                console_size: Some(vec![
                    usize::from(req.rows.max(1)),
                    usize::from(req.cols.max(1)),
                ]),
                ..Default::default()
            },
        )
        .await
        .map_err(engine_err(&app))?;
    let exec_id = created.id;
    let started = d
        .start_exec(
            &exec_id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                output_capacity: None,
            }),
        )
        .await
        .map_err(engine_err(&app))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err(error::system("the engine started the exec detached"));
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let sid = app.streams.id();
    app.streams.add_exec(
        sid,
        ExecHandle {
            exec_id: exec_id.clone(),
            input: tx,
        },
    );
    tauri::async_runtime::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
                break;
            }
        }
        let _ = input.shutdown().await;
    });
    let b64 = base64::engine::general_purpose::STANDARD;
    let host = app.engine.host().to_string();
    // Closing the page's terminal hangs up its shell, as closing a terminal window does: the
    // engine keeps a tty exec running when its attach connection goes away, so every closed
    // tab would leave a shell behind in the container.
    let hangup = HangUp {
        docker: d.clone(),
        exec_id: exec_id.clone(),
    };
    app.streams.spawn(sid, async move {
        // Dropped with this task however it ends (the process exited, an error, or
        // stream_close aborting it).
        let _hangup = hangup;
        while let Some(item) = output.next().await {
            match item {
                Ok(out) => {
                    let data = b64.encode(out.into_bytes());
                    if channel.send(ExecEvent::Data { data }).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = channel.send(ExecEvent::Error {
                        message: error::engine(&host, e).message,
                    });
                    return;
                }
            }
        }
        let code = d
            .inspect_exec(&exec_id)
            .await
            .ok()
            .and_then(|i| i.exit_code);
        let _ = channel.send(ExecEvent::Exit { code });
    });
    Ok(sid)
}

#[tauri::command]
pub async fn exec_input(app: State<'_, App>, id: u32, data: String) -> Res<()> {
    let (_, tx) = app.streams.exec(id)?;
    tx.send(data.into_bytes()).await.map_err(|_| {
        AppError::new(
            ErrorCode::NoSuchSession,
            format!("terminal session {id} has ended"),
        )
    })
}

#[tauri::command]
pub async fn exec_resize(app: State<'_, App>, id: u32, cols: u16, rows: u16) -> Res<()> {
    let (exec_id, _) = app.streams.exec(id)?;
    app.engine
        .docker()?
        .resize_exec(
            &exec_id,
            bollard::query_parameters::ResizeExecOptions {
                h: i32::from(rows.max(1)),
                w: i32::from(cols.max(1)),
            },
        )
        .await
        .map_err(engine_err(&app))
}

/// Sends SIGHUP to an exec's process when its session ends, if the engine says it still
/// runs. Best effort: the engine reports the host pid; an app that may not signal it (another
/// user's engine) leaves the shell as the engine does.
struct HangUp {
    docker: bollard::Docker,
    exec_id: String,
}

impl Drop for HangUp {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let exec_id = std::mem::take(&mut self.exec_id);
        tauri::async_runtime::spawn(async move {
            let Ok(i) = docker.inspect_exec(&exec_id).await else {
                return;
            };
            let pid = i.pid.unwrap_or(0);
            if i.running != Some(true) || pid <= 1 {
                return;
            }
            let Ok(pid) = i32::try_from(pid) else { return };
            if let Err(e) = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            ) {
                tracing::debug!(exec = %exec_id, pid, "hanging up the terminal's shell: {e}");
            }
        });
    }
}
