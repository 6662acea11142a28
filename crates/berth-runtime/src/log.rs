//! The runtime's log: `--log FILE` with `--log-format text|json`. JSON lines use the
//! `{"level","msg","time"}` shape that containerd and other runc drivers read.

use std::io::Write;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

pub struct FileLayer {
    file: Mutex<std::fs::File>,
    json: bool,
    max: Level,
}

struct Msg(String);

impl Visit for Msg {
    fn record_str(&mut self, f: &Field, v: &str) {
        if f.name() == "message" {
            self.0.push_str(v);
        } else {
            self.0.push_str(&format!(" {}={v}", f.name()));
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        if f.name() == "message" {
            self.0.push_str(&format!("{v:?}"));
        } else {
            self.0.push_str(&format!(" {}={v:?}", f.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for FileLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let mut m = Msg(String::new());
        event.record(&mut m);
        let lvl = match level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let time = crate::state::now_rfc3339();
        let line = if self.json {
            format!(
                "{}\n",
                serde_json::json!({"level": lvl, "msg": m.0, "time": time})
            )
        } else {
            format!(
                "time=\"{time}\" level={lvl} msg=\"{}\"\n",
                m.0.replace('"', "\\\"")
            )
        };
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Install the file logger. Without a file, nothing is installed (events cost nothing).
pub fn init(path: Option<&std::path::Path>, json: bool, debug: bool) -> std::io::Result<()> {
    use tracing_subscriber::prelude::*;
    let path = match path {
        Some(p) => p,
        None => return Ok(()),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let layer = FileLayer {
        file: Mutex::new(file),
        json,
        max: if debug { Level::DEBUG } else { Level::INFO },
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}
