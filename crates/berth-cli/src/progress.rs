//! Progress of pulls, pushes, saves and loads. On a terminal: one indicatif bar per layer
//! (status, bytes, a bar while bytes move), lines without a layer printed above them. Not on a
//! terminal: docker's plain output, one line per status change, byte counts left out.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

impl Out {
    pub fn is_terminal(self) -> bool {
        match self {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn target(self) -> ProgressDrawTarget {
        match self {
            Out::Stdout => ProgressDrawTarget::stdout(),
            Out::Stderr => ProgressDrawTarget::stderr(),
        }
    }

    /// Print one plain line.
    pub fn line(self, s: &str) {
        match self {
            Out::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{s}");
                let _ = o.flush();
            }
            Out::Stderr => eprintln!("{s}"),
        }
    }
}

/// Statuses after which a layer has nothing more to show.
const FINAL: &[&str] = &[
    "Pull complete",
    "Already exists",
    "Pushed",
    "Layer already exists",
];

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:40.cyan/blue}] {bytes}/{total_bytes}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A JSON message stream's display (pull, push).
pub struct Layers {
    out: Out,
    quiet: bool,
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl Layers {
    /// `quiet`: show nothing. A terminal gets bars unless `plain`.
    pub fn new(out: Out, quiet: bool) -> Layers {
        let multi =
            (!quiet && out.is_terminal()).then(|| MultiProgress::with_draw_target(out.target()));
        Layers {
            out,
            quiet,
            multi,
            bars: HashMap::new(),
        }
    }

    /// A line that belongs to no layer (`Digest: ...`, `Status: ...`).
    pub fn line(&mut self, s: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                if m.println(s).is_err() {
                    self.out.line(s);
                }
            }
            None => self.out.line(s),
        }
    }

    /// One message: `id` (a layer, or a tag for "Pulling from"), a status and the bytes moved.
    pub fn message(
        &mut self,
        id: Option<&str>,
        status: &str,
        current: Option<i64>,
        total: Option<i64>,
    ) {
        if self.quiet {
            return;
        }
        let id = id.filter(|i| !i.is_empty());
        let moving = current.is_some() || total.is_some();
        let Some(m) = self.multi.clone() else {
            if !moving {
                match id {
                    Some(id) => self.out.line(&format!("{id}: {status}")),
                    None => self.out.line(status),
                }
            }
            return;
        };
        let Some(id) = id else {
            self.line(status);
            return;
        };
        // "latest: Pulling from library/busybox" names a tag, not a layer.
        if status.starts_with("Pulling from") {
            self.line(&format!("{id}: {status}"));
            return;
        }
        let bar = self.bars.entry(id.to_string()).or_insert_with(|| {
            let b = m.add(ProgressBar::new(0));
            b.set_style(text_style());
            b.set_prefix(id.to_string());
            b
        });
        let total = total.filter(|t| *t > 0);
        match (current, total) {
            (Some(cur), Some(total)) => {
                if bar.length() != Some(total as u64) {
                    bar.set_style(bytes_style());
                    bar.set_length(total as u64);
                }
                bar.set_position(cur.max(0) as u64);
                bar.set_message(status.to_string());
            }
            _ => {
                bar.set_style(text_style());
                bar.set_message(status.to_string());
                if FINAL.contains(&status) || status.starts_with("Mounted from") {
                    bar.finish();
                } else {
                    bar.tick();
                }
            }
        }
    }

    /// Leave the bars drawn as they are.
    pub fn finish(self) {
        for b in self.bars.values() {
            if !b.is_finished() {
                b.finish();
            }
        }
    }
}

/// A byte counter for save and load on a terminal (None elsewhere).
pub fn bytes(out: Out, quiet: bool, what: &str, total: Option<u64>) -> Option<ProgressBar> {
    if quiet || !out.is_terminal() {
        return None;
    }
    let b = ProgressBar::with_draw_target(total, out.target());
    let style = match total {
        Some(_) => {
            ProgressStyle::with_template("{prefix} [{bar:40.cyan/blue}] {bytes}/{total_bytes}")
        }
        None => ProgressStyle::with_template("{prefix} {spinner} {bytes}"),
    };
    b.set_style(
        style
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_prefix(what.to_string());
    b.enable_steady_tick(Duration::from_millis(200));
    Some(b)
}
