//! `.env` and `env_file:` files: `KEY=VALUE` lines, `#` comments, `export ` prefixes, single
//! quotes (literal), double quotes (escapes, may span lines), unquoted values (trailing ` #`
//! comments cut). Values are interpolated line by line (earlier lines first, then the given
//! environment) unless single-quoted.

use std::path::Path;

use super::interp::interpolate_str;
use super::LoadError;

/// One entry: `None` when the line names a variable without `=`.
pub(crate) type Entry = (String, Option<String>);

/// Answers a variable's value for interpolation.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn err(file: &Path, line: usize, key: Option<&str>, message: String) -> LoadError {
    LoadError {
        file: Some(file.to_path_buf()),
        line: Some(line),
        column: None,
        path: key.map(str::to_string),
        message,
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// Parse `content` (read from `file`, named in errors). With `lookup`, values are
/// interpolated (earlier entries first, then `lookup`); without, they are returned as written
/// (quotes removed, escapes applied).
pub(crate) fn parse(
    content: &str,
    file: &Path,
    lookup: Option<Lookup<'_>>,
) -> Result<Vec<Entry>, LoadError> {
    let lines: Vec<&str> = content.lines().collect();
    let mut out: Vec<Entry> = Vec::new();
    let mut idx = 0;
    while idx < lines.len() {
        let line_no = idx + 1;
        let raw = lines[idx];
        idx += 1;
        let mut line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("export") {
            if rest.starts_with([' ', '\t']) {
                line = rest.trim_start();
            }
        }
        let Some(eq) = line.find('=') else {
            let key = line.trim();
            if !valid_key(key) {
                return Err(err(
                    file,
                    line_no,
                    None,
                    format!("invalid line {key:?}: expected KEY=VALUE"),
                ));
            }
            out.push((key.to_string(), None));
            continue;
        };
        let key = line[..eq].trim();
        if !valid_key(key) {
            return Err(err(
                file,
                line_no,
                None,
                format!(
                    "invalid variable name {key:?}: use letters, digits and underscores (KEY=VALUE)"
                ),
            ));
        }
        let rest = line[eq + 1..].trim_start();
        let (value, interpolate) =
            if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
                // Quoted: find the closing quote, possibly on a later line.
                let mut buf = rest[1..].to_string();
                let close = loop {
                    if let Some(pos) = find_close(&buf, q) {
                        break pos;
                    }
                    if idx >= lines.len() {
                        return Err(err(
                            file,
                            line_no,
                            Some(key),
                            format!("unterminated quoted value for {key}: add the closing {q}"),
                        ));
                    }
                    buf.push('\n');
                    buf.push_str(lines[idx]);
                    idx += 1;
                };
                let inner = &buf[..close];
                if q == '\'' {
                    (inner.to_string(), false)
                } else {
                    (unescape_double(inner, lookup.is_some()), true)
                }
            } else {
                let mut v = rest;
                if let Some(pos) = comment_start(v) {
                    v = &v[..pos];
                }
                (v.trim_end().to_string(), true)
            };
        let value = match lookup {
            Some(lookup) if interpolate && value.contains('$') => {
                let earlier = &out;
                let f = |name: &str| -> Option<String> {
                    earlier
                        .iter()
                        .rev()
                        .find(|(k, v)| k == name && v.is_some())
                        .and_then(|(_, v)| v.clone())
                        .or_else(|| lookup(name))
                };
                let mut unset = Vec::new();
                interpolate_str(&value, &f, &mut unset)
                    .map_err(|e| err(file, line_no, Some(key), e.describe()))?
            }
            _ => value,
        };
        out.push((key.to_string(), Some(value)));
    }
    Ok(out)
}

/// Byte offset of the closing quote `q` in `s` (double quotes skip backslash escapes).
fn find_close(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' && q == '"' {
            escaped = true;
            continue;
        }
        if c == q {
            return Some(i);
        }
    }
    None
}

/// Where an inline comment starts in an unquoted value: a `#` preceded by whitespace.
fn comment_start(v: &str) -> Option<usize> {
    let bytes = v.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && i > 0 && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t'))
}

/// Apply double-quote escapes. When the value will be interpolated, `\$` becomes `$$` (a
/// literal dollar after interpolation); otherwise it becomes `$`.
fn unescape_double(s: &str, for_interpolation: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str(if for_interpolation { "$$" } else { "$" }),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Read an env file from disk (see [`parse`]).
pub(crate) fn read(path: &Path, lookup: Option<Lookup<'_>>) -> Result<Vec<Entry>, LoadError> {
    let content = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: Some(path.to_path_buf()),
        line: None,
        column: None,
        path: None,
        message: format!("cannot read env file: {e}"),
    })?;
    parse(&content, path, lookup)
}
