//! Running streams (logs, stats, events, engine status, exec sessions), each a task with an
//! id the page closes through `stream_close`. A stream also ends by itself when its channel
//! is gone (the page reloaded) or its source ends.

use berth_desktop_dto::{AppError, ErrorCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// An exec session's handles: its input and the engine's exec id (for resize).
pub struct ExecHandle {
    pub exec_id: String,
    pub input: mpsc::Sender<Vec<u8>>,
}

#[derive(Default)]
pub struct Streams {
    next: AtomicU32,
    tasks: Mutex<HashMap<u32, AbortHandle>>,
    execs: Mutex<HashMap<u32, ExecHandle>>,
}

impl Streams {
    pub fn id(&self) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Runs `fut` as stream `id`; it is forgotten when it ends.
    pub fn spawn<F>(self: &std::sync::Arc<Self>, id: u32, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let me = std::sync::Arc::clone(self);
        let task = tauri::async_runtime::spawn(async move {
            fut.await;
            me.forget(id);
        });
        self.lock_tasks().insert(id, task.inner().abort_handle());
    }

    pub fn add_exec(&self, id: u32, h: ExecHandle) {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, h);
    }

    pub fn exec(&self, id: u32) -> Result<(String, mpsc::Sender<Vec<u8>>), AppError> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|h| (h.exec_id.clone(), h.input.clone()))
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::NoSuchSession,
                    format!("terminal session {id} has ended"),
                )
            })
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, HashMap<u32, AbortHandle>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, id: u32) {
        self.lock_tasks().remove(&id);
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Stops stream `id` (a no-op if it already ended).
    pub fn close(&self, id: u32) {
        if let Some(h) = self.lock_tasks().remove(&id) {
            h.abort();
        }
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    pub fn count(&self) -> usize {
        self.lock_tasks().len()
    }
}
