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
        // Registered before the task can run to its end (and forget itself): a stream that
        // ends at once leaves no entry behind.
        let mut tasks = self.lock_tasks();
        let task = tauri::async_runtime::spawn(async move {
            fut.await;
            me.forget(id);
        });
        tasks.insert(id, task.inner().abort_handle());
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

    /// Stops every stream: the page that opened them is gone (reloaded or navigated), and
    /// its channels would otherwise be fed forever (a channel's send does not fail while the
    /// webview itself lives).
    pub fn close_all(&self) {
        for (_, h) in self.lock_tasks().drain() {
            h.abort();
        }
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn count(&self) -> usize {
        self.lock_tasks().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    async fn settle(s: &Streams, want: usize) -> usize {
        for _ in 0..100 {
            if s.count() == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s.count()
    }

    #[tokio::test]
    async fn streams_are_forgotten_when_they_end_or_are_closed() {
        let s = Arc::new(Streams::default());
        // Ends at once: no entry is left behind.
        for _ in 0..50 {
            let id = s.id();
            s.spawn(id, async {});
        }
        assert_eq!(settle(&s, 0).await, 0);
        // Runs until closed.
        let a = s.id();
        s.spawn(a, std::future::pending());
        let (tx, _rx) = mpsc::channel(1);
        s.add_exec(
            a,
            ExecHandle {
                exec_id: "e".into(),
                input: tx,
            },
        );
        let b = s.id();
        s.spawn(b, std::future::pending());
        assert_ne!(a, b);
        assert_eq!(s.count(), 2);
        assert!(s.exec(a).is_ok());
        s.close(a);
        assert_eq!(s.count(), 1);
        assert_eq!(s.exec(a).unwrap_err().code, ErrorCode::NoSuchSession);
        s.close(a); // twice: a no-op
        s.close_all();
        assert_eq!(s.count(), 0);
    }
}
