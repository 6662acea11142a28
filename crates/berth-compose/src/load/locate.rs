//! Where in the files a key path is. Typing errors are found after the files are merged, when
//! positions are gone; this finds the key again in the text (the last file that has it, as
//! later files override earlier ones) so the error can say `compose.yaml:3:5:`. Block-style
//! YAML is followed key by key; a key inside a flow mapping (`{…}`) or holding a dot gets
//! its nearest enclosing key's place.

use std::path::{Path, PathBuf};

use super::LoadError;

/// `e` with file, line and column filled in when its key path can be found.
pub(crate) fn locate(mut e: LoadError, files: &[PathBuf]) -> LoadError {
    if e.file.is_some() {
        return e;
    }
    let Some(path) = e.path.clone() else {
        return e;
    };
    let steps = parse_path(&path);
    for f in files.iter().rev() {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        if let Some((line, col)) = find(&text, &steps) {
            e.file = Some(Path::to_path_buf(f));
            e.line = Some(line);
            e.column = Some(col);
            return e;
        }
    }
    e
}

#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(n) = r[..end].parse() {
                out.push(Step::Index(n));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

/// 1-based (line, column) of the deepest step of `steps` that can be followed.
fn find(text: &str, steps: &[Step<'_>]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut parent_indent: isize = -1;
    let mut found: Option<(usize, usize)> = None;
    for step in steps {
        let mut hit = None;
        let mut seen_items = 0usize;
        for (i, raw) in lines.iter().enumerate().skip(start) {
            let body = raw.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = (raw.len() - body.len()) as isize;
            if indent <= parent_indent {
                break;
            }
            match step {
                Step::Key(k) => {
                    let (item, t) = match body.strip_prefix("- ") {
                        Some(t) => (2, t),
                        None => (0, body),
                    };
                    let is_key = [format!("{k}:"), format!("\"{k}\":"), format!("'{k}':")]
                        .iter()
                        .any(|p| t.starts_with(p.as_str()));
                    if is_key {
                        hit = Some((i, indent + item));
                        break;
                    }
                }
                Step::Index(n) => {
                    if body.starts_with("- ") || body == "-" {
                        if seen_items == *n {
                            hit = Some((i, indent));
                            break;
                        }
                        seen_items += 1;
                    }
                }
            }
        }
        match hit {
            Some((i, col)) => {
                found = Some((i + 1, col as usize + 1));
                start = i + 1;
                parent_indent = col;
                if let Step::Index(_) = step {
                    // The item's own keys sit deeper than its dash.
                    parent_indent = col;
                }
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "services:\n  web:\n    image: busybox\n    ports:\n      - \"80:80\"\n      - \"80:eighty\"\n  db:\n    imgae: busybox\n    environment: {A: 1}\n";

    #[test]
    fn keys_and_items_are_found() {
        let at = |p: &str| find(FILE, &parse_path(p));
        assert_eq!(at("services.db.imgae"), Some((8, 5)));
        assert_eq!(at("services.web.ports[1]"), Some((6, 7)));
        assert_eq!(at("services.web.ports[0]"), Some((5, 7)));
        // Inside a flow mapping: the enclosing key.
        assert_eq!(at("services.db.environment.A"), Some((9, 5)));
        // `web` has no `imgae`: the search stops at web's block.
        assert_eq!(at("services.web.imgae"), Some((2, 3)));
    }

    #[test]
    fn the_last_file_holding_the_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("compose.yaml");
        let b = dir.path().join("compose.override.yaml");
        std::fs::write(&a, FILE).unwrap();
        std::fs::write(&b, "services:\n  db:\n    imgae: other\n").unwrap();
        let e = LoadError {
            file: None,
            line: None,
            column: None,
            path: Some("services.db.imgae".into()),
            message: "unknown key".into(),
        };
        let e = locate(e, &[a, b.clone()]);
        assert_eq!(e.file.as_deref(), Some(b.as_path()));
        assert_eq!((e.line, e.column), (Some(3), Some(5)));
    }
}
