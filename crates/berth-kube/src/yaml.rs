//! Stable YAML output.
//!
//! Each object goes through `serde_json::Value` (k8s-openapi writes `apiVersion` and `kind`)
//! and is written by the small block-style writer here rather than serde_yaml, because kubectl
//! reads YAML 1.1: an unquoted `yes`, `on`, `n` or `1_000` would reach the API server as a
//! bool or a number, so every string that is not plainly a string is quoted. Keys are written
//! in one fixed order, whatever serde_json's map features:
//! `apiVersion`, `kind`, `metadata`, `name`, `namespace`, `labels`, `annotations`
//! first, then the rest alphabetically.
//! The same objects always give byte-identical YAML.

use crate::Object;
use std::path::{Path, PathBuf};

/// Keys written before all others, in this order; the rest follow alphabetically.
const FIRST_KEYS: [&str; 7] = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
];

fn key_rank(k: &str) -> (usize, &str) {
    (
        FIRST_KEYS
            .iter()
            .position(|f| *f == k)
            .unwrap_or(FIRST_KEYS.len()),
        k,
    )
}

/// Block-style YAML for one JSON value, line by line, in kubectl's layout (a sequence under a
/// key is not indented further).
fn lines(v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value as J;
    match v {
        J::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| key_rank(a).cmp(&key_rank(b)));
            for k in keys {
                let Some(val) = m.get(k) else { continue };
                let key = scalar_string(k);
                match val {
                    J::Object(c) if !c.is_empty() => {
                        out.push(format!("{key}:"));
                        let mut inner = Vec::new();
                        lines(val, &mut inner);
                        out.extend(inner.into_iter().map(|l| indent(&l, "  ")));
                    }
                    J::Array(a) if !a.is_empty() => {
                        out.push(format!("{key}:"));
                        lines(val, out);
                    }
                    J::String(s) if literal_block(s).is_some() => {
                        let (header, body) = literal_block(s).unwrap_or_default();
                        out.push(format!("{key}: {header}"));
                        out.extend(body.into_iter().map(|l| indent(&l, "  ")));
                    }
                    _ => out.push(format!("{key}: {}", scalar(val))),
                }
            }
        }
        J::Array(a) if !a.is_empty() => {
            for item in a {
                let mut inner = Vec::new();
                match item {
                    J::Object(c) if !c.is_empty() => lines(item, &mut inner),
                    J::Array(c) if !c.is_empty() => lines(item, &mut inner),
                    J::String(s) if literal_block(s).is_some() => {
                        let (header, body) = literal_block(s).unwrap_or_default();
                        inner.push(header);
                        inner.extend(body.into_iter().map(|l| indent(&l, "  ")));
                    }
                    _ => inner.push(scalar(item)),
                }
                for (i, l) in inner.into_iter().enumerate() {
                    out.push(if i == 0 {
                        format!("- {l}")
                    } else {
                        indent(&l, "  ")
                    });
                }
            }
        }
        _ => out.push(scalar(v)),
    }
}

/// `line` indented by `by` (empty lines stay empty: no trailing spaces).
fn indent(line: &str, by: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!("{by}{line}")
    }
}

/// A scalar, or an empty collection, on one line.
fn scalar(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".to_string(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => scalar_string(s),
        J::Array(_) => "[]".to_string(),
        J::Object(_) => "{}".to_string(),
    }
}

/// Words YAML 1.1 (which kubectl's parser follows) or 1.2 reads as a bool or null when
/// unquoted (compared case-insensitively, which covers more than either spec).
const RESERVED: [&str; 10] = [
    "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
];

/// Letters that can appear in a YAML 1.1/1.2 number or timestamp (hex digits, `0x`, `0o`,
/// `0b`, exponents, `T`, `Z`): a string starting with a digit is only safe unquoted when it
/// holds some other letter (`1Gi`, `500m`).
const NUMERIC_LETTERS: &str = "abcdefobtxzABCDEFOBTXZ";

/// Whether `s` reads back as the same string unquoted, under YAML 1.1 and 1.2 alike. Narrow
/// on purpose; everything else is quoted.
fn plain_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if RESERVED.contains(&s.to_ascii_lowercase().as_str()) || last == b' ' || last == b':' {
        return false;
    }
    // `-x`/`--flag` are plain scalars; `-1`, `- x` and `-` are not.
    let rest = if first == b'-' { &b[1..] } else { b };
    match rest.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'/' || *c == b'-' => {}
        Some(c) if c.is_ascii_digit() => {
            let unambiguous = s
                .chars()
                .any(|c| c.is_ascii_alphabetic() && !NUMERIC_LETTERS.contains(c));
            if !unambiguous {
                return false;
            }
        }
        _ => return false,
    }
    b.iter().enumerate().all(|(i, &c)| match c {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
        b'.' | b'_' | b'/' | b'-' | b'@' | b'=' | b'+' | b',' | b'(' | b')' | b';' | b'%' => true,
        // Not `: ` (a mapping) nor ` #` (a comment) nor two spaces in a row.
        b':' | b' ' => b.get(i + 1).is_some_and(|n| *n != b' ' && *n != b'#'),
        _ => false,
    })
}

/// A string as a plain, single-quoted or (with control characters) double-quoted scalar.
fn scalar_string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else if s.chars().any(|c| c.is_control()) {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::Value::String(s.to_string()).to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// A multi-line string as a literal block: (header like `|` or `|-`, content lines), when it
/// can be written as one exactly.
fn literal_block(s: &str) -> Option<(String, Vec<String>)> {
    if !s.contains('\n')
        || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
        || s.starts_with([' ', '\t', '\n'])
    {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let header = match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    let mut content: Vec<String> = body.split('\n').map(str::to_string).collect();
    // `|+` keeps the final line breaks: they are written as empty lines.
    if trailing > 1 {
        content.extend(std::iter::repeat_n(String::new(), trailing - 1));
    }
    Some((header.to_string(), content))
}

/// An object that could not be written as YAML.
#[derive(Debug)]
pub struct YamlError(pub String);

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for YamlError {}

/// One object as a YAML document (no `---`, no comment).
pub fn to_document(object: &Object) -> Result<String, YamlError> {
    let what = || format!("{} {:?}", object.kind(), object.name());
    let json = object
        .to_value()
        .map_err(|e| YamlError(format!("cannot serialise {}: {e}", what())))?;
    let mut out = Vec::new();
    lines(&json, &mut out);
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// The first line of every file: which project the objects come from.
fn header(objects: &[Object]) -> String {
    let project = objects.iter().find_map(|o| {
        o.metadata()
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::labels::PART_OF))
    });
    match project {
        Some(p) => format!("# Generated by berth kube generate — project {p}\n"),
        None => "# Generated by berth kube generate\n".to_string(),
    }
}

/// All objects as one YAML stream (`---` between documents), in the given order.
///
/// An object that cannot be serialised (not expected for generated objects) is written as a
/// comment saying so; [`try_to_stream`] returns the error instead.
pub fn to_stream(objects: &[Object]) -> String {
    let mut out = header(objects);
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match to_document(o) {
            Ok(doc) => out.push_str(&doc),
            Err(e) => {
                out.push_str("# error: ");
                out.push_str(&e.0.replace('\n', " "));
                out.push('\n');
            }
        }
    }
    out
}

/// [`to_stream`], failing on the first object that cannot be serialised.
pub fn try_to_stream(objects: &[Object]) -> Result<String, YamlError> {
    let mut out = header(objects);
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_document(o)?);
    }
    Ok(out)
}

/// The file [`write_dir`] writes an object to, like `3-deployment-web.yaml`.
pub fn file_name(object: &Object) -> String {
    // `kubectl apply -f DIR` applies files in name order: the prefix keeps the namespace
    // before what lives in it and the claims/configs before the pods that mount them.
    let rank = match object {
        Object::Namespace(_) => 0,
        Object::ConfigMap(_) | Object::Secret(_) | Object::PersistentVolumeClaim(_) => 1,
        Object::Service(_) => 2,
        Object::Deployment(_) => 3,
    };
    format!(
        "{rank}-{}-{}.yaml",
        object.kind().to_ascii_lowercase(),
        object.name()
    )
}

/// One file per object in `dir` (created if missing); returns the paths written. Files an
/// earlier run wrote there (they start with this writer's header) that name objects the
/// project no longer has are removed, so `kubectl apply -f DIR` sees only the current set;
/// any other file is left alone.
pub fn write_dir(objects: &[Object], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut docs = Vec::with_capacity(objects.len());
    for o in objects {
        let doc = to_document(o).map_err(std::io::Error::other)?;
        docs.push((
            dir.join(file_name(o)),
            format!("{}{doc}", header(std::slice::from_ref(o))),
        ));
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ours = path.extension().is_some_and(|e| e == "yaml")
            && std::fs::read_to_string(&path)
                .is_ok_and(|t| t.starts_with("# Generated by berth kube generate"));
        if ours && !docs.iter().any(|(p, _)| *p == path) {
            std::fs::remove_file(&path)?;
        }
    }
    let mut paths = Vec::with_capacity(docs.len());
    for (path, text) in docs {
        std::fs::write(&path, text)?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn write_dir_orders_files_and_drops_stale_ones_it_wrote() {
        use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let meta = |n: &str| ObjectMeta {
            name: Some(n.into()),
            ..Default::default()
        };
        let ns = Object::Namespace(Namespace {
            metadata: meta("shop"),
            ..Default::default()
        });
        let cm = |n: &str| {
            Object::ConfigMap(ConfigMap {
                metadata: meta(n),
                ..Default::default()
            })
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.yaml"), "mine: 1\n").unwrap();
        write_dir(&[ns.clone(), cm("old"), cm("web-env")], dir.path()).unwrap();
        let paths = write_dir(&[ns, cm("web-env")], dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "0-namespace-shop.yaml",
                "1-configmap-web-env.yaml",
                "notes.yaml"
            ]
        );
        assert_eq!(paths.len(), 2);
    }

    /// What a YAML 1.2 parser reads back from the writer's output.
    fn round_trip(v: &serde_json::Value) -> serde_json::Value {
        let mut out = Vec::new();
        lines(v, &mut out);
        let text = out.join("\n") + "\n";
        let back: serde_json::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        back
    }

    const TRICKY: [&str; 44] = [
        "yes",
        "No",
        "ON",
        "off",
        "y",
        "N",
        "true",
        "False",
        "null",
        "~",
        "",
        " ",
        " lead",
        "trail ",
        "a: b",
        "a:b",
        "a #b",
        "a#b",
        "#c",
        "-",
        "- x",
        "-1",
        "-c",
        "--port",
        "0x1F",
        "1e3",
        "010",
        "0o17",
        "1_000",
        "12:30",
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
        ".inf",
        ".nan",
        "+1",
        "8000",
        "1.5",
        "1Gi",
        "500m",
        "=",
        "<<",
        "it's",
        "tab\there",
        "C:\\path",
    ];

    #[test]
    fn strings_read_back_as_the_same_strings() {
        for s in TRICKY {
            let v = json!({ "k": s, "list": [s, { "name": s }], "nested": { s: s } });
            assert_eq!(round_trip(&v), v, "{s:?}");
        }
    }

    #[test]
    fn yaml_1_1_words_and_numbers_are_quoted() {
        for s in [
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "1_000",
            "12:30",
            "2024-01-01",
            "0x1F",
        ] {
            assert!(!plain_ok(s), "{s:?} must be quoted");
            assert!(scalar_string(s).starts_with('\''), "{s:?}");
        }
        for s in [
            "1Gi",
            "500m",
            "-c",
            "--port",
            "nginx:1.27",
            "http://localhost:8000/x",
        ] {
            assert!(plain_ok(s), "{s:?} can stay plain");
        }
        assert_eq!(scalar_string("it's"), "'it''s'");
        assert_eq!(scalar_string("bell\u{7}"), "\"bell\\u0007\"");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        for (s, header) in [
            ("a\nb\n", "|"),
            ("a\nb", "|-"),
            ("a\n\n", "|+"),
            ("a\n  indented\n\nlast\n", "|"),
        ] {
            let (h, _) = literal_block(s).expect("a literal block");
            assert_eq!(h, header, "{s:?}");
            let v = json!({ "data": { "f": s }, "l": [s] });
            assert_eq!(round_trip(&v), v, "{s:?}");
        }
        for s in [" lead\nx", "\nx", "cr\r\nx", "one line"] {
            assert!(literal_block(s).is_none(), "{s:?}");
            let v = json!({ "f": s });
            assert_eq!(round_trip(&v), v, "{s:?}");
        }
    }

    #[test]
    fn layout_and_empty_collections() {
        // (`n` as a key is quoted too: YAML 1.1 reads it as false.)
        let v = json!({
            "kind": "X", "apiVersion": "v1", "b": [], "a": {}, "z": null, "n": 3, "t": true,
            "list": [[1, 2], { "name": "x", "a": 1 }],
        });
        let mut out = Vec::new();
        lines(&v, &mut out);
        assert_eq!(
            out.join("\n"),
            "apiVersion: v1\nkind: X\na: {}\nb: []\nlist:\n- - 1\n  - 2\n- name: x\n  a: 1\n'n': 3\nt: true\nz: null"
        );
        assert_eq!(round_trip(&v), v);
    }
}
