//! Compose files → [`Project`](crate::model::Project).
//!
//! Stages: find the files; parse each as YAML (syntax errors carry file, line and column);
//! apply YAML merge keys; interpolate `${VAR}` forms from the environment and `.env`; merge the
//! files in order (compose's merge rules); check every key against the Compose Specification
//! subset Berth reads and convert into the typed model (errors name the key path,
//! `services.web.ports[0]`, and what was expected); resolve `env_file`s, relative paths and
//! profiles; check `depends_on` (unknown services, cycles named).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

use crate::model::Project;

mod convert;
mod envfile;
mod interp;
mod locate;
mod merge;
#[cfg(test)]
mod tests;

/// The names looked for in each directory, in order of preference.
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What the caller knows: flags and the process environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order; empty: look for compose.yaml, compose.yml, docker-compose.yaml,
    /// docker-compose.yml in `cwd` and its parents (plus the matching `*.override.*` file).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` files; empty: `<project dir>/.env` when it exists.
    pub env_files: Vec<PathBuf>,
    /// `--profile` values (COMPOSE_PROFILES from `environment` is added by the loader).
    pub profiles: Vec<String>,
    /// The process environment (wins over `.env`).
    pub environment: BTreeMap<String, String>,
    /// The directory the command runs in.
    pub cwd: PathBuf,
}

/// One clear error: where (file, line, column, key path) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: Option<PathBuf>,
    /// 1-based line and column, when the YAML parser knows them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Key path, `services.web.ports[0]`.
    pub path: Option<String>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(l) = self.line {
                write!(f, ":{l}")?;
                if let Some(c) = self.column {
                    write!(f, ":{c}")?;
                }
            }
            write!(f, ": ")?;
        }
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// An error about the value at a key path (`services.web.ports[0]`).
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> LoadError {
        LoadError {
            file: None,
            line: None,
            column: None,
            path: Some(path.into()),
            message: message.into(),
        }
    }

    /// An error with no location.
    pub(crate) fn plain(message: impl Into<String>) -> LoadError {
        LoadError {
            file: None,
            line: None,
            column: None,
            path: None,
            message: message.into(),
        }
    }

    /// An error about a whole file.
    pub(crate) fn in_file(file: &Path, message: impl Into<String>) -> LoadError {
        LoadError {
            file: Some(file.to_path_buf()),
            line: None,
            column: None,
            path: None,
            message: message.into(),
        }
    }
}

/// A mapping key as text (numbers and booleans written as YAML would).
pub(crate) fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        _ => "?".to_string(),
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
pub(crate) fn clean_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Levenshtein distance, for "did you mean".
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word`, when close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// An "unknown key" error with a suggestion when one is close.
pub(crate) fn unknown_key(path: &str, key: &str, candidates: &[&str]) -> LoadError {
    match did_you_mean(key, candidates) {
        Some(s) => LoadError::at(path, format!("unknown key; did you mean {s:?}?")),
        None => LoadError::at(
            path,
            format!("unknown key; expected one of: {}", candidates.join(", ")),
        ),
    }
}

/// The compose files for `cwd`: the first of [`FILE_NAMES`] found in `cwd` or the nearest
/// parent holding one, then its override file (`compose.override.yaml`...) when present.
pub fn find_files(cwd: &Path) -> Result<Vec<PathBuf>, LoadError> {
    find_files_warn(cwd).map(|(files, _)| files)
}

fn find_files_warn(cwd: &Path) -> Result<(Vec<PathBuf>, Vec<String>), LoadError> {
    let mut warnings = Vec::new();
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        let found: Vec<PathBuf> = FILE_NAMES
            .iter()
            .map(|n| d.join(n))
            .filter(|p| p.is_file())
            .collect();
        if let Some(first) = found.first() {
            if found.len() > 1 {
                let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
                warnings.push(format!(
                    "Found multiple config files with supported names: {}; using {}",
                    names.join(", "),
                    first.display()
                ));
            }
            let name = first
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), "yaml"));
            let other = if ext == "yaml" { "yml" } else { "yaml" };
            let mut files = vec![first.clone()];
            if let Some(o) = [ext, other]
                .iter()
                .map(|e| d.join(format!("{stem}.override.{e}")))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok((files, warnings));
        }
        dir = d.parent();
    }
    Err(LoadError::plain(format!(
        "no configuration file provided: not found (looked for {} in {} and its parent directories; name one with -f FILE)",
        FILE_NAMES.join(", "),
        cwd.display()
    )))
}

/// Read a `.env`-style file as written: `KEY=VALUE` pairs in file order, with quotes and
/// `export ` removed and double-quote escapes applied, but no `${VAR}` interpolation (the
/// desktop app shows and edits these values). Lines naming a variable without `=` are
/// skipped.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let entries = envfile::read(path, None)?;
    Ok(entries
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// The environment interpolation sees: the `.env` file(s) (each interpolated line by line),
/// overlaid by the process environment.
fn load_environment(
    opts: &LoadOptions,
    cwd: &Path,
    project_dir: &Path,
) -> Result<BTreeMap<String, String>, LoadError> {
    let files: Vec<(PathBuf, bool)> = if opts.env_files.is_empty() {
        vec![(project_dir.join(".env"), false)]
    } else {
        opts.env_files
            .iter()
            .map(|f| (clean_path(&cwd.join(f)), true))
            .collect()
    };
    let mut from_files: BTreeMap<String, String> = BTreeMap::new();
    for (file, required) in files {
        if !file.is_file() {
            if required {
                return Err(LoadError::in_file(
                    &file,
                    "env file not found (given with --env-file)",
                ));
            }
            continue;
        }
        let so_far = from_files.clone();
        let lookup = |name: &str| -> Option<String> {
            so_far
                .get(name)
                .or_else(|| opts.environment.get(name))
                .cloned()
        };
        for (k, v) in envfile::read(&file, Some(&lookup))? {
            match v {
                Some(v) => {
                    from_files.insert(k, v);
                }
                None => {
                    if let Some(v) = opts.environment.get(&k) {
                        from_files.insert(k, v.clone());
                    }
                }
            }
        }
    }
    let mut env = from_files;
    for (k, v) in &opts.environment {
        env.insert(k.clone(), v.clone());
    }
    Ok(env)
}

/// Parse one file's text into a YAML value with merge keys applied.
fn parse_yaml(text: &str, file: &Path) -> Result<Value, LoadError> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        LoadError {
            file: Some(file.to_path_buf()),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            path: None,
            message: strip_positions(&e.to_string()),
        }
    })?;
    value.apply_merge().map_err(|e| {
        let loc = e.location();
        LoadError {
            file: Some(file.to_path_buf()),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            path: None,
            message: format!(
                "invalid YAML merge key (<<): {}",
                strip_positions(&e.to_string())
            ),
        }
    })?;
    Ok(value)
}

/// Drop the parser's own ` at line N column M` (the error carries them as fields).
fn strip_positions(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(pos) = rest.find(" at line ") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + " at line ".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        let after = &after[digits..];
        if digits > 0 {
            if let Some(col) = after.strip_prefix(" column ") {
                let d2 = col.chars().take_while(char::is_ascii_digit).count();
                rest = &col[d2..];
                continue;
            }
        }
        out.push_str(" at line ");
        out.push_str(&rest[pos + " at line ".len()..pos + " at line ".len() + digits]);
        rest = after;
    }
    out.push_str(rest);
    out
}

const TOP_LEVEL_KEYS: [&str; 8] = [
    "version", "name", "services", "networks", "volumes", "configs", "secrets", "x-",
];

/// Check one file's top level: a mapping with only the keys Berth reads.
fn check_top_level(
    value: &Value,
    file: &Path,
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    let map = match value {
        Value::Mapping(m) => m,
        Value::Null => {
            return Err(LoadError::in_file(
                file,
                "the file is empty; a compose file needs at least a \"services:\" section",
            ))
        }
        other => {
            return Err(LoadError::in_file(
                file,
                format!(
                    "the top level must be a mapping (services:, networks:, volumes:...), got {}",
                    convert::kind(other)
                ),
            ))
        }
    };
    for (k, _) in map {
        let Some(key) = k.as_str() else {
            let mut e = LoadError::in_file(file, "top-level keys must be strings");
            e.path = Some(key_str(k));
            return Err(e);
        };
        let located = |e: LoadError| -> LoadError {
            LoadError {
                file: Some(file.to_path_buf()),
                ..e
            }
        };
        match key {
            "version" => warnings.push(format!(
                "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
                file.display()
            )),
            "name" | "services" | "networks" | "volumes" | "configs" | "secrets" => {}
            k if k.starts_with("x-") => {}
            "include" | "models" => {
                return Err(located(LoadError::at(
                    key,
                    format!("not supported by berth compose (remove the top-level \"{key}\" section)"),
                )))
            }
            other => {
                return Err(located(unknown_key(
                    other,
                    other,
                    &TOP_LEVEL_KEYS[..7],
                )))
            }
        }
    }
    Ok(())
}

/// docker compose's project-name normalisation: lower case, only `[a-z0-9_-]`, starting with
/// a letter or digit.
pub fn normalize_project_name(name: &str) -> String {
    let lower: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

/// Load and resolve a project.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    let mut warnings: Vec<String> = Vec::new();
    let cwd = if opts.cwd.as_os_str().is_empty() {
        std::env::current_dir()
            .map_err(|e| LoadError::plain(format!("cannot read the current directory: {e}")))?
    } else {
        opts.cwd.clone()
    };

    // 1. The files.
    let mut files: Vec<PathBuf> = Vec::new();
    let named: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.clone()
    } else if let Some(list) = opts
        .environment
        .get("COMPOSE_FILE")
        .filter(|s| !s.is_empty())
    {
        let sep = opts
            .environment
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".to_string());
        list.split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect()
    } else {
        Vec::new()
    };
    if named.is_empty() {
        // docker compose looks in --project-directory first when no file is named.
        let start = match &opts.project_directory {
            Some(d) => clean_path(&cwd.join(d)),
            None => cwd.clone(),
        };
        let (found, w) = find_files_warn(&start)?;
        warnings.extend(w);
        files = found;
    } else {
        for f in named {
            let abs = clean_path(&cwd.join(&f));
            if !abs.is_file() {
                let why = if abs.exists() {
                    "is not a file"
                } else {
                    "no such file"
                };
                return Err(LoadError::in_file(
                    &abs,
                    format!("{why} (named with -f {})", f.display()),
                ));
            }
            files.push(abs);
        }
    }
    let project_dir = match &opts.project_directory {
        Some(d) => clean_path(&cwd.join(d)),
        None => files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone()),
    };

    // 2. The environment.
    let env = load_environment(opts, &cwd, &project_dir)?;
    let lookup = |name: &str| -> Option<String> { env.get(name).cloned() };

    // 3. Parse, check, interpolate each file; then merge.
    let mut unset: Vec<String> = Vec::new();
    let mut merged: Option<Value> = None;
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| LoadError::in_file(file, format!("cannot read: {e}")))?;
        let mut value = parse_yaml(&text, file)?;
        check_top_level(&value, file, &mut warnings)?;
        if let Value::Mapping(m) = &mut value {
            for (k, v) in m.iter_mut() {
                let key = key_str(k);
                if key.starts_with("x-") || key == "version" {
                    continue;
                }
                interp::interpolate_value(v, &key, &lookup, &mut unset).map_err(|(path, e)| {
                    LoadError {
                        file: Some(file.clone()),
                        line: None,
                        column: None,
                        path: Some(path),
                        message: e.describe(),
                    }
                })?;
            }
        }
        merge::normalize_file(&mut value);
        match &mut merged {
            None => merged = Some(value),
            Some(base) => merge::merge_root(base, value),
        }
    }
    let mut seen = BTreeSet::new();
    for name in unset {
        if seen.insert(name.clone()) {
            warnings.push(format!(
                "The \"{name}\" variable is not set. Defaulting to a blank string."
            ));
        }
    }
    let mut root = merged.unwrap_or(Value::Null);
    merge::strip_tags(&mut root);

    // 4. The project name.
    let (raw_name, source) = if let Some(p) = opts.project_name.as_ref().filter(|p| !p.is_empty()) {
        (p.clone(), "-p")
    } else if let Some(p) = env.get("COMPOSE_PROJECT_NAME").filter(|p| !p.is_empty()) {
        (p.clone(), "COMPOSE_PROJECT_NAME")
    } else if let Some(n) = root.get("name").filter(|n| !n.is_null()) {
        match n {
            Value::String(s) if !s.is_empty() => (s.clone(), "the top-level name"),
            Value::String(_) => (dir_name(&project_dir), "the project directory"),
            other => {
                return Err(LoadError::at(
                    "name",
                    format!("expected a string, got {}", convert::kind(other)),
                ))
            }
        }
    } else {
        (dir_name(&project_dir), "the project directory")
    };
    let name = normalize_project_name(&raw_name);
    if name.is_empty() {
        return Err(LoadError::plain(format!(
            "project name {raw_name:?} (from {source}) has no usable characters: a project name uses lower-case letters, digits, '-' and '_' and starts with a letter or digit; set one with -p NAME"
        )));
    }

    // 5. Profiles.
    let mut profiles: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(p) = env.get("COMPOSE_PROFILES") {
        profiles.extend(
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }

    // 6. Convert.
    let mut project = convert::convert(
        &root,
        &convert::Context {
            dir: &project_dir,
            env: &env,
            project: &name,
            profiles: &profiles,
        },
        &mut warnings,
    )
    .map_err(|e| locate::locate(e, &files))?;
    project.working_dir = project_dir;
    project.files = files;
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    project.warnings = warnings;
    Ok(project)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
