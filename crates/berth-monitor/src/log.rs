//! Docker's json-file log format, with size-based rotation.
//!
//! One record per line of output (`{"log":"...\n","stream":"stdout","time":"RFC3339Nano"}`);
//! a line longer than 16 KiB is split into records without the trailing newline, like
//! Docker. Rotation follows Docker's `max-size`/`max-file`: `max_files` counts every file,
//! the live one included, so 3 keeps `container-json.log`, `.1` and `.2` (`.1` the newest).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<Self, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("log file {}: {e}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Appends a chunk of output: complete lines are written now, the rest is buffered.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<(), String> {
        let idx = stream as usize;
        let mut pending = std::mem::take(&mut self.partial[idx]);
        pending.extend_from_slice(data);
        let mut start = 0;
        let mut res = Ok(());
        while start < pending.len() {
            let rest = &pending[start..];
            let end = match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_LINE => i + 1,
                _ if rest.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            if let Err(e) = self.record(stream, &rest[..end]) {
                res = Err(e);
            }
            start += end;
        }
        pending.drain(..start);
        self.partial[idx] = pending;
        res
    }

    /// Writes out whatever partial lines remain (at exit).
    pub fn flush_partial(&mut self) {
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            let p = std::mem::take(&mut self.partial[i]);
            if !p.is_empty() {
                if let Err(e) = self.record(stream, &p) {
                    eprintln!("berth-monitor: {e}");
                }
            }
        }
    }

    fn record(&mut self, stream: Stream, line: &[u8]) -> Result<(), String> {
        let rec = format!(
            "{{\"log\":{},\"stream\":\"{}\",\"time\":\"{}\"}}\n",
            json_str(&String::from_utf8_lossy(line)),
            stream.name(),
            now_rfc3339()
        );
        if self.max_size > 0 && self.size > 0 && self.size + rec.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(rec.as_bytes())
            .map_err(|e| format!("log file {}: {e}", self.path.display()))?;
        self.size += rec.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), String> {
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let keep = self.max_files - 1;
        if keep == 0 {
            self.file
                .set_len(0)
                .map_err(|e| format!("log file {}: truncate: {e}", self.path.display()))?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(name(keep));
        for n in (1..keep).rev() {
            let _ = fs::rename(name(n), name(n + 1));
        }
        fs::rename(&self.path, name(1))
            .map_err(|e| format!("log file {}: rotate: {e}", self.path.display()))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("log file {}: {e}", self.path.display()))?;
        self.size = 0;
        Ok(())
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Now as RFC 3339 UTC with nanoseconds (`2024-05-01T12:34:56.123456789Z`).
pub fn now_rfc3339() -> String {
    berth_time::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn time_format() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }

    #[test]
    fn splits_lines_and_rotates() {
        let dir = std::env::temp_dir().join(format!("berth-mon-log-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.log");
        let mut l = JsonLog::open(&p, 200, 3).unwrap();
        for i in 0..10 {
            l.write(Stream::Stdout, format!("line {i}\npart").as_bytes())
                .unwrap();
            l.write(Stream::Stdout, b"ial\n").unwrap();
        }
        l.write(Stream::Stderr, b"tail").unwrap();
        l.flush_partial();
        assert!(dir.join("c.log.1").exists() && dir.join("c.log.2").exists());
        assert!(!dir.join("c.log.3").exists());
        let cur = fs::read_to_string(&p).unwrap();
        assert!(
            cur.contains("{\"log\":\"tail\",\"stream\":\"stderr\""),
            "{cur}"
        );
        assert!(fs::metadata(&p).unwrap().len() <= 200);
        fs::remove_dir_all(&dir).unwrap();
    }
}
