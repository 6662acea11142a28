//! `--format`: docker's output choices. `table` (the default), `table TEMPLATE`, `json`
//! (one JSON object per line) or a Go template (`{{.ID}}\t{{.Names}}`, `{{json .}}`).
//!
//! Each command describes a row as a JSON object whose keys are docker's placeholder names
//! (`ID`, `Names`, `Image`, ...) and lets [`print`] lay the rows out.
//!
//! The template language is a subset of Go's text/template, evaluated against JSON values.

use serde_json::Value;

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// The command's default table.
    Table,
    /// `table TEMPLATE`: a header line from the placeholders, then one line per row.
    TableTemplate(String),
    /// `json`: each row as one line of JSON.
    Json,
    /// Any other template: one rendered line per row, no header.
    Template(String),
}

impl Format {
    pub fn parse(flag: Option<&str>) -> Format {
        match flag.map(str::trim) {
            None | Some("") | Some("table") => Format::Table,
            Some("json") => Format::Json,
            Some(t) => match t.strip_prefix("table ") {
                Some(rest) => Format::TableTemplate(unescape(rest)),
                None => Format::Template(unescape(t)),
            },
        }
    }
}

/// docker turns the two-character sequences `\t` and `\n` in a format into the characters.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// Render `tmpl` against `v`.
pub fn render(tmpl: &str, v: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = tmpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template {tmpl:?}: unclosed action"))?;
        let action = after[..end].trim();
        out.push_str(&eval(action, v)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(action: &str, v: &Value) -> Result<String, String> {
    if let Some(arg) = action.strip_prefix("json ") {
        let val = lookup(arg.trim(), v)?;
        return serde_json::to_string(&val).map_err(|e| e.to_string());
    }
    Ok(text(&lookup(action, v)?))
}

fn lookup(path: &str, v: &Value) -> Result<Value, String> {
    if path == "." {
        return Ok(v.clone());
    }
    let Some(path) = path.strip_prefix('.') else {
        return Err(format!("template: unknown action {path:?}"));
    };
    let mut cur = v;
    for key in path.split('.') {
        cur = cur.get(key).ok_or_else(|| {
            format!("template: can't evaluate field {key}: no such field; see --help for the placeholders")
        })?;
    }
    Ok(cur.clone())
}

/// How Go prints a value with `{{.X}}`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Print `rows` as `format` asks. `default` is the command's table as (placeholder, title)
/// columns; `titles` maps every placeholder to its column title for `table TEMPLATE`.
pub fn print(
    format: &Format,
    rows: &[Value],
    default: &[(&str, &str)],
    titles: &[(&str, &str)],
) -> Result<String, String> {
    let tmpl_of = |cols: &[(&str, &str)]| {
        cols.iter()
            .map(|(k, _)| format!("{{{{.{k}}}}}"))
            .collect::<Vec<_>>()
            .join("\t")
    };
    match format {
        Format::Json => {
            let mut out = String::new();
            for r in rows {
                out.push_str(&serde_json::to_string(r).map_err(|e| e.to_string())?);
                out.push('\n');
            }
            Ok(out)
        }
        Format::Template(t) => {
            let mut out = String::new();
            for r in rows {
                out.push_str(&render(t, r)?);
                out.push('\n');
            }
            Ok(out)
        }
        Format::Table | Format::TableTemplate(_) => {
            let t = match format {
                Format::TableTemplate(t) => t.clone(),
                _ => tmpl_of(default),
            };
            let header_obj: serde_json::Map<String, Value> = titles
                .iter()
                .map(|(k, title)| (k.to_string(), Value::String(title.to_string())))
                .collect();
            let mut lines = vec![render(&t, &Value::Object(header_obj))?];
            for r in rows {
                lines.push(render(&t, r)?);
            }
            let cells: Vec<Vec<String>> = lines
                .iter()
                .flat_map(|l| l.split('\n'))
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect();
            Ok(crate::format::table(&cells))
        }
    }
}
