//! The Dockerfile parser: directives, continuations, heredocs, flags and the
//! per-instruction argument syntax.

use std::time::Duration;

use crate::ast::*;
use crate::error::{suggest, ParseError};

/// Every instruction keyword Docker knows.
pub const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

const FROM_FLAGS: &[&str] = &["platform"];
const RUN_FLAGS: &[&str] = &["mount", "network", "security"];
const COPY_FLAGS: &[&str] = &["from", "chown", "chmod", "link", "parents", "exclude"];
const ADD_FLAGS: &[&str] = &[
    "chown",
    "chmod",
    "link",
    "checksum",
    "keep-git-dir",
    "exclude",
];
const HEALTHCHECK_FLAGS: &[&str] = &[
    "interval",
    "timeout",
    "start-period",
    "start-interval",
    "retries",
];

struct Src<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
}

impl Src<'_> {
    fn err(&self, line: usize, column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
            suggestion: None,
            source_line: self
                .lines
                .get(line.wrapping_sub(1))
                .copied()
                .unwrap_or("")
                .to_string(),
        }
    }
}

/// Where an instruction starts, for errors.
struct Ctx<'a> {
    src: &'a Src<'a>,
    line: usize,
    col: usize,
    /// Length in bytes of the instruction's text that sits on its first line.
    first_len: usize,
    escape: char,
    keyword: &'static str,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        self.src.err(self.line, self.col, message)
    }

    /// An error pointing at byte `offset` of the joined instruction text, when
    /// that offset is on the first line.
    fn err_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let col = if offset < self.first_len {
            let line = self.src.lines.get(self.line - 1).copied().unwrap_or("");
            let start: usize = line
                .char_indices()
                .nth(self.col - 1)
                .map(|(b, _)| b)
                .unwrap_or(0);
            let end = (start + offset).min(line.len());
            match line.get(start..end) {
                Some(s) => self.col + s.chars().count(),
                None => self.col,
            }
        } else {
            self.col
        };
        self.src.err(self.line, col, message)
    }
}

/// A raw flag `--name[=value]`; `offset` is its byte offset in the instruction.
struct Flag {
    name: String,
    value: Option<String>,
    offset: usize,
}

/// Parses a Dockerfile. `file_name` is used in error messages only.
pub fn parse(text: &str, file_name: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let src = Src {
        file: file_name,
        lines,
    };
    let n = src.lines.len();

    // Parser directives.
    let mut syntax: Option<String> = None;
    let mut escape_seen = false;
    let mut check_seen = false;
    let mut escape = '\\';
    let mut i = 0;
    while i < n {
        let Some((key, value, vcol)) = directive(src.lines[i]) else {
            break;
        };
        let k = key.to_ascii_lowercase();
        let seen = match k.as_str() {
            "syntax" => syntax.is_some(),
            "escape" => escape_seen,
            "check" => check_seen,
            _ => {
                // An unknown directive is a comment, and ends the directives.
                i += 1;
                break;
            }
        };
        if seen {
            return Err(src.err(
                i + 1,
                1,
                format!("only one {k} parser directive can be used: remove this line"),
            ));
        }
        match k.as_str() {
            "syntax" => syntax = Some(value),
            "escape" => {
                escape_seen = true;
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(src.err(
                            i + 1,
                            vcol,
                            format!(
                                "invalid escape directive {value:?}: the escape character must be \\ or `"
                            ),
                        ))
                    }
                };
            }
            _ => check_seen = true,
        }
        i += 1;
    }

    let mut meta_args: Vec<ArgDecl> = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut last_content_line = 0;

    while i < n {
        let line = src.lines[i];
        let t = line.trim_start();
        if t.trim_end().is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let start_line = i + 1;
        let col = line[..line.len() - t.len()].chars().count() + 1;
        let (first, mut cont) = trim_continuation(t, escape);
        let first_len = first.len();
        let mut joined = first.to_string();
        i += 1;
        while cont && i < n {
            let l = src.lines[i];
            i += 1;
            if l.trim_start().starts_with('#') || l.trim().is_empty() {
                continue;
            }
            let (part, c) = trim_continuation(l, escape);
            joined.push_str(part);
            cont = c;
        }
        let joined = joined.trim_end().to_string();
        let word_end = joined
            .find(|c: char| c.is_whitespace())
            .unwrap_or(joined.len());
        let word = &joined[..word_end];
        let rest_off = joined[word_end..]
            .find(|c: char| !c.is_whitespace())
            .map_or(joined.len(), |o| word_end + o);
        let rest = &joined[rest_off..];
        let Some(keyword) = keyword_of(word) else {
            let mut e = src.err(start_line, col, format!("unknown instruction {word:?}"));
            e.suggestion = suggest(word, INSTRUCTIONS);
            return Err(e);
        };
        let ctx = Ctx {
            src: &src,
            line: start_line,
            col,
            first_len,
            escape,
            keyword,
        };
        let mut source = joined.clone();

        // Heredoc bodies follow the instruction line.
        let mut heredocs = Vec::new();
        if matches!(keyword, "RUN" | "COPY" | "ADD") && !rest.starts_with('[') {
            for word in lenient_words(rest, escape) {
                let Some((name, expand, strip_tabs)) = heredoc_marker(word) else {
                    continue;
                };
                let mut content = String::new();
                let mut found = false;
                while i < n {
                    let l = src.lines[i];
                    i += 1;
                    source.push('\n');
                    source.push_str(l);
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == name {
                        found = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !found {
                    return Err(ctx.err(format!(
                        "unterminated heredoc {name:?}: end it with a line containing only {name}"
                    )));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                    strip_tabs,
                });
            }
        }
        let end_line = i.max(start_line);
        last_content_line = end_line;

        if keyword == "FROM" {
            let (flags, args_off) = extract_flags(&ctx, &joined, rest_off)?;
            check_flags(&ctx, &flags, FROM_FLAGS)?;
            let platform = single(&ctx, &flags, "platform")?;
            let args = &joined[args_off..];
            let words: Vec<&str> = args.split_whitespace().collect();
            let (base, name) = match words.as_slice() {
                [b] => (b.to_string(), None),
                [b, as_kw, nm] if as_kw.eq_ignore_ascii_case("as") => {
                    (b.to_string(), Some(nm.to_ascii_lowercase()))
                }
                _ => {
                    return Err(ctx.err(
                        "FROM requires either one argument, or three: FROM <image> [AS <name>]",
                    ))
                }
            };
            if let Some(nm) = &name {
                if !valid_stage_name(nm) {
                    return Err(ctx.err(format!(
                        "invalid stage name {nm:?}: a stage name must start with a letter and contain only letters, digits, '-', '_' and '.'"
                    )));
                }
                if let Some(prev) = stages.iter().find(|s| s.name.as_deref() == Some(nm)) {
                    return Err(ctx.err(format!(
                        "duplicate stage name {nm:?}: it is already used by the stage on line {}",
                        prev.loc.line
                    )));
                }
            }
            stages.push(Stage {
                index: stages.len(),
                name,
                base,
                platform,
                loc: Loc {
                    line: start_line,
                    column: col,
                },
                file: file_name.to_string(),
                source,
                instructions: Vec::new(),
            });
            continue;
        }

        let kind = parse_kind(&ctx, &joined, rest_off, heredocs)?;
        let instruction = Instruction {
            loc: Loc {
                line: start_line,
                column: col,
            },
            end_line,
            file: file_name.to_string(),
            source,
            kind,
        };
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(instruction),
            None => match instruction.kind {
                Kind::Arg(decls) => meta_args.extend(decls),
                _ => {
                    return Err(ctx.err(format!(
                        "{keyword} before the first FROM: a Dockerfile must start with FROM (only ARG and parser directives may come before it)"
                    )))
                }
            },
        }
    }

    if stages.is_empty() {
        return Err(src.err(
            last_content_line.max(1),
            1,
            "no FROM instruction: a Dockerfile needs at least one FROM <image>",
        ));
    }
    check_stage_refs(&src, &stages)?;

    Ok(Dockerfile {
        syntax,
        escape,
        meta_args,
        stages,
    })
}

/// `# key=value` → (key, value, 1-based column of value).
fn directive(line: &str) -> Option<(String, String, usize)> {
    let t = line.trim_start();
    let r = t.strip_prefix('#')?.trim_start();
    let key_len = r
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(r.len());
    let key = &r[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let r = r[key_len..].trim_start().strip_prefix('=')?;
    let value = r.trim();
    if value.is_empty() {
        return None;
    }
    let vstart = line.len() - r.trim_start().len();
    let vcol = line[..vstart].chars().count() + 1;
    Some((key.to_string(), value.to_string(), vcol))
}

fn keyword_of(word: &str) -> Option<&'static str> {
    INSTRUCTIONS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(word))
        .copied()
}

/// Strips a trailing escape character (and whitespace after it).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) => (s, true),
        None => (line, false),
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
/// Returns byte ranges, or the quote character and offset of an unterminated
/// quote.
fn split_words(s: &str, escape: char) -> Result<Vec<(usize, usize)>, (char, usize)> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<(char, usize)> = None;
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        if let Some((q, _)) = quote {
            if c == q {
                quote = None;
            } else if c == escape && q == '"' {
                it.next();
            }
            continue;
        }
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                words.push((st, i));
            }
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        if c == escape {
            it.next();
        } else if c == '"' || c == '\'' {
            quote = Some((c, i));
        }
    }
    if let Some((q, at)) = quote {
        return Err((q, at));
    }
    if let Some(st) = start {
        words.push((st, s.len()));
    }
    Ok(words)
}

/// Words for heredoc detection: an unterminated quote just ends the scan.
fn lenient_words(s: &str, escape: char) -> Vec<&str> {
    match split_words(s, escape) {
        Ok(w) => w.into_iter().map(|(a, b)| &s[a..b]).collect(),
        Err((_, at)) => match split_words(&s[..at], escape) {
            Ok(w) => w.into_iter().map(|(a, b)| &s[a..b]).collect(),
            Err(_) => Vec::new(),
        },
    }
}

fn words_or_quote_error<'s>(
    ctx: &Ctx<'_>,
    s: &'s str,
    base_off: usize,
) -> Result<Vec<&'s str>, ParseError> {
    match split_words(s, ctx.escape) {
        Ok(w) => Ok(w.into_iter().map(|(a, b)| &s[a..b]).collect()),
        Err((q, at)) => Err(ctx.err_at(
            base_off + at,
            format!(
                "unterminated {q} quote in {}: add a closing {q}",
                ctx.keyword
            ),
        )),
    }
}

/// `[fd]<<[-]NAME` (NAME may be quoted) → (name, expand, strip_tabs).
pub(crate) fn heredoc_marker(word: &str) -> Option<(String, bool, bool)> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let w = w.strip_prefix("<<")?;
    let (w, strip) = match w.strip_prefix('-') {
        Some(r) => (r, true),
        None => (w, false),
    };
    if w.is_empty() || w.starts_with('<') {
        return None;
    }
    let quoted = w.contains(['"', '\'']);
    let name: String = w.chars().filter(|c| *c != '"' && *c != '\'').collect();
    if name.is_empty() {
        return None;
    }
    Some((name, !quoted, strip))
}

/// Reads leading `--flag[=value]` words from `joined[from..]`. Returns the
/// flags and the offset of the first argument.
fn extract_flags(
    ctx: &Ctx<'_>,
    joined: &str,
    from: usize,
) -> Result<(Vec<Flag>, usize), ParseError> {
    let mut flags = Vec::new();
    let mut pos = from;
    loop {
        let s = &joined[pos..];
        let skip = s.len() - s.trim_start().len();
        pos += skip;
        let s = &joined[pos..];
        if !s.starts_with("--") {
            break;
        }
        let start = pos;
        let mut token = String::new();
        let mut quote: Option<char> = None;
        let mut it = s.char_indices().peekable();
        let mut end = s.len();
        while let Some((i, c)) = it.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => token.push(c),
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == ctx.escape => {
                    if let Some((_, n)) = it.next() {
                        token.push(n);
                    }
                }
                None => token.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(ctx.err_at(
                start,
                format!(
                    "unterminated {q} quote in {} flag: add a closing {q}",
                    ctx.keyword
                ),
            ));
        }
        pos += end;
        if token == "--" {
            break;
        }
        let body = &token[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        flags.push(Flag {
            name,
            value,
            offset: start,
        });
    }
    Ok((flags, pos))
}

fn check_flags(ctx: &Ctx<'_>, flags: &[Flag], allowed: &[&str]) -> Result<(), ParseError> {
    for f in flags {
        if !allowed.contains(&f.name.as_str()) {
            let valid = if allowed.is_empty() {
                format!("{} takes no flags", ctx.keyword)
            } else {
                let list: Vec<String> = allowed.iter().map(|a| format!("--{a}")).collect();
                format!("valid flags: {}", list.join(", "))
            };
            let mut e = ctx.err_at(
                f.offset,
                format!("unknown flag --{} for {} ({valid})", f.name, ctx.keyword),
            );
            if f.name.chars().count() <= 40 {
                let lower: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                let refs: Vec<&str> = lower.iter().map(String::as_str).collect();
                e.suggestion = suggest(&f.name, &refs).map(|s| format!("--{s}"));
            }
            return Err(e);
        }
    }
    Ok(())
}

fn single(ctx: &Ctx<'_>, flags: &[Flag], name: &str) -> Result<Option<String>, ParseError> {
    let mut found: Option<&Flag> = None;
    for f in flags.iter().filter(|f| f.name == name) {
        if found.is_some() {
            return Err(ctx.err_at(f.offset, format!("flag --{name} is given more than once")));
        }
        found = Some(f);
    }
    match found {
        None => Ok(None),
        Some(f) => match &f.value {
            Some(v) => Ok(Some(v.clone())),
            None => Err(ctx.err_at(
                f.offset,
                format!("flag --{name} needs a value: --{name}=<value>"),
            )),
        },
    }
}

fn multi(ctx: &Ctx<'_>, flags: &[Flag], name: &str) -> Result<Vec<String>, ParseError> {
    flags
        .iter()
        .filter(|f| f.name == name)
        .map(|f| match &f.value {
            Some(v) => Ok(v.clone()),
            None => Err(ctx.err_at(
                f.offset,
                format!("flag --{name} needs a value: --{name}=<value>"),
            )),
        })
        .collect()
}

fn boolean(ctx: &Ctx<'_>, flags: &[Flag], name: &str) -> Result<bool, ParseError> {
    let mut result = false;
    for f in flags.iter().filter(|f| f.name == name) {
        result = match f.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(ctx.err_at(
                    f.offset,
                    format!("flag --{name} takes true or false (or no value, meaning true)"),
                ))
            }
        };
    }
    Ok(result)
}

/// Why a `[`-prefixed argument that failed to parse as JSON should be an
/// error rather than shell form: it starts with `["` or `['`, or ends with
/// `"]` or `']`. Other `[` text (like `[ -f x ] && ...`) is shell form, as in
/// Docker.
fn json_looking(s: &str) -> bool {
    s.starts_with("[\"") || s.starts_with("['") || s.ends_with("\"]") || s.ends_with("']")
}

fn json_list(ctx: &Ctx<'_>, s: &str) -> Result<Option<Vec<String>>, ParseError> {
    if !s.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<String>>(s) {
        Ok(v) => Ok(Some(v)),
        Err(e) if json_looking(s) => {
            let why = if !s.ends_with(']') {
                "missing closing ]".to_string()
            } else if s.contains('\'') && !s.contains('"') {
                "JSON strings need double quotes, not single quotes".to_string()
            } else {
                e.to_string()
            };
            Err(ctx.err(format!(
                "{} exec form is not a valid JSON array of strings ({why}): write [\"executable\", \"arg\"] with double quotes, or drop the brackets for shell form",
                ctx.keyword
            )))
        }
        Err(_) => Ok(None),
    }
}

fn command_form(ctx: &Ctx<'_>, rest: &str) -> Result<CommandForm, ParseError> {
    let r = rest.trim();
    if let Some(v) = json_list(ctx, r)? {
        return Ok(CommandForm::Exec(v));
    }
    Ok(CommandForm::Shell(r.to_string()))
}

fn non_empty(ctx: &Ctx<'_>, rest: &str, what: &str) -> Result<String, ParseError> {
    let r = rest.trim();
    if r.is_empty() {
        return Err(ctx.err(format!("{} requires {what}", ctx.keyword)));
    }
    Ok(r.to_string())
}

fn parse_kind(
    ctx: &Ctx<'_>,
    joined: &str,
    rest_off: usize,
    heredocs: Vec<Heredoc>,
) -> Result<Kind, ParseError> {
    let kw = ctx.keyword;
    let takes_flags = matches!(kw, "RUN" | "COPY" | "ADD" | "HEALTHCHECK");
    let (flags, args_off) = if takes_flags {
        extract_flags(ctx, joined, rest_off)?
    } else {
        (Vec::new(), rest_off)
    };
    let args = &joined[args_off..];
    Ok(match kw {
        "RUN" => {
            check_flags(ctx, &flags, RUN_FLAGS)?;
            let mut mounts = Vec::new();
            for m in multi(ctx, &flags, "mount")? {
                mounts.push(parse_mount(&m).map_err(|msg| ctx.err(msg))?);
            }
            let network = match single(ctx, &flags, "network")?.as_deref() {
                None => None,
                Some("default") => Some(RunNetwork::Default),
                Some("none") => Some(RunNetwork::None),
                Some("host") => Some(RunNetwork::Host),
                Some(other) => {
                    return Err(ctx.err(format!(
                        "invalid --network={other:?} for RUN: use default, none or host"
                    )))
                }
            };
            let security = single(ctx, &flags, "security")?;
            if let Some(s) = &security {
                if s != "insecure" && s != "sandbox" {
                    return Err(ctx.err(format!(
                        "invalid --security={s:?} for RUN: use sandbox or insecure"
                    )));
                }
            }
            let cmd = command_form(ctx, args)?;
            let empty = match &cmd {
                CommandForm::Exec(v) => v.is_empty(),
                CommandForm::Shell(s) => s.is_empty(),
            };
            if empty {
                return Err(ctx.err("RUN requires a command to run"));
            }
            Kind::Run(Run {
                cmd,
                mounts,
                network,
                security,
                heredocs,
            })
        }
        "CMD" | "ENTRYPOINT" => {
            let cmd = command_form(ctx, args)?;
            if cmd == CommandForm::Shell(String::new()) {
                return Err(ctx.err(format!(
                    "{kw} requires a command, e.g. {kw} [\"executable\", \"arg\"]"
                )));
            }
            if kw == "CMD" {
                Kind::Cmd(cmd)
            } else {
                Kind::Entrypoint(cmd)
            }
        }
        "SHELL" => {
            match json_list(ctx, args.trim())? {
                Some(v) if !v.is_empty() => Kind::Shell(v),
                _ => return Err(ctx.err(
                    "SHELL requires the arguments in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]",
                )),
            }
        }
        "LABEL" => Kind::Label(name_vals(ctx, joined, args_off)?),
        "ENV" => Kind::Env(name_vals(ctx, joined, args_off)?),
        "EXPOSE" => {
            let words = words_or_quote_error(ctx, args, args_off)?;
            if words.is_empty() {
                return Err(ctx.err("EXPOSE requires at least one port, e.g. EXPOSE 80/tcp"));
            }
            for w in &words {
                if !w.contains(['$', '"', '\'']) {
                    check_port(w).map_err(|m| ctx.err(m))?;
                }
            }
            Kind::Expose(words.into_iter().map(str::to_string).collect())
        }
        "ADD" | "COPY" => {
            let spec = parse_copy(ctx, &flags, args, args_off, heredocs)?;
            if kw == "ADD" {
                Kind::Add(spec)
            } else {
                Kind::Copy(spec)
            }
        }
        "VOLUME" => {
            let a = args.trim();
            let vols: Vec<String> = match json_list(ctx, a)? {
                Some(v) => v,
                None => words_or_quote_error(ctx, args, args_off)?
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            };
            if vols.is_empty() {
                return Err(ctx.err("VOLUME requires at least one path, e.g. VOLUME /data"));
            }
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err(ctx.err("VOLUME paths can not be empty strings"));
            }
            Kind::Volume(vols)
        }
        "USER" => Kind::User(non_empty(ctx, args, "a user name or UID, e.g. USER app")?),
        "WORKDIR" => Kind::Workdir(non_empty(ctx, args, "a path, e.g. WORKDIR /app")?),
        "MAINTAINER" => Kind::Maintainer(non_empty(ctx, args, "a name")?),
        "STOPSIGNAL" => {
            Kind::StopSignal(non_empty(ctx, args, "a signal, e.g. STOPSIGNAL SIGTERM")?)
        }
        "ARG" => {
            let words = words_or_quote_error(ctx, args, args_off)?;
            if words.is_empty() {
                return Err(ctx.err("ARG requires a name, e.g. ARG VERSION or ARG VERSION=1.0"));
            }
            let mut decls = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n, Some(d.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return Err(ctx.err(format!("ARG names can not be blank: {w:?} starts with =")));
                }
                decls.push(ArgDecl {
                    name: name.to_string(),
                    default,
                });
            }
            Kind::Arg(decls)
        }
        "ONBUILD" => {
            let inner = args.trim_end();
            let word_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
            let word = &inner[..word_end];
            if word.is_empty() {
                return Err(ctx.err("ONBUILD requires an instruction, e.g. ONBUILD RUN make"));
            }
            let inner_col = ctx.err_at(args_off, "").column;
            let Some(inner_kw) = keyword_of(word) else {
                let mut e =
                    ctx.src
                        .err(ctx.line, inner_col, format!("unknown instruction {word:?}"));
                e.suggestion = suggest(word, INSTRUCTIONS);
                return Err(e);
            };
            match inner_kw {
                "ONBUILD" => {
                    return Err(ctx.err("chaining ONBUILD via ONBUILD ONBUILD isn't allowed"))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(ctx.err(format!("{inner_kw} isn't allowed as an ONBUILD trigger")))
                }
                _ => {}
            }
            let inner_ctx = Ctx {
                src: ctx.src,
                line: ctx.line,
                col: inner_col,
                first_len: ctx.first_len.saturating_sub(args_off),
                escape: ctx.escape,
                keyword: inner_kw,
            };
            let inner_rest_off = inner[word_end..]
                .find(|c: char| !c.is_whitespace())
                .map_or(inner.len(), |o| word_end + o);
            let kind = parse_kind(&inner_ctx, inner, inner_rest_off, Vec::new())?;
            Kind::Onbuild(Box::new(Instruction {
                loc: Loc {
                    line: ctx.line,
                    column: inner_col,
                },
                end_line: ctx.line,
                file: ctx.src.file.to_string(),
                source: inner.to_string(),
                kind,
            }))
        }
        "HEALTHCHECK" => Kind::Healthcheck(parse_healthcheck(ctx, &flags, args)?),
        // FROM is handled by the caller; keyword_of only returns known names.
        _ => return Err(ctx.err(format!("{kw} is not allowed here"))),
    })
}

fn name_vals(
    ctx: &Ctx<'_>,
    joined: &str,
    args_off: usize,
) -> Result<Vec<(String, String)>, ParseError> {
    let kw = ctx.keyword;
    let args = &joined[args_off..];
    let ranges = split_words(args, ctx.escape).map_err(|(q, at)| {
        ctx.err_at(
            args_off + at,
            format!("unterminated {q} quote in {kw}: add a closing {q}"),
        )
    })?;
    let Some(&(s0, e0)) = ranges.first() else {
        return Err(ctx.err(format!("{kw} requires at least one <key>=<value> pair")));
    };
    let first = &args[s0..e0];
    if !first.contains('=') {
        // Legacy form: KEY value (the rest of the line is the value).
        let value = args[e0..].trim();
        if value.is_empty() {
            return Err(ctx.err(format!(
                "{kw} {first} has no value: write {kw} {first}=<value> (or the legacy form {kw} {first} <value>)"
            )));
        }
        return Ok(vec![(first.to_string(), value.to_string())]);
    }
    let mut pairs = Vec::new();
    for (s, e) in ranges {
        let w = &args[s..e];
        match w.find('=') {
            None => {
                return Err(ctx.err_at(
                    args_off + s,
                    format!("{kw} syntax error: can't find = in {w:?}; it must be of the form <key>=<value>"),
                ))
            }
            Some(0) => {
                return Err(ctx.err_at(
                    args_off + s,
                    format!("{kw} names can not be blank: {w:?} starts with ="),
                ))
            }
            Some(p) => pairs.push((w[..p].to_string(), w[p + 1..].to_string())),
        }
    }
    Ok(pairs)
}

fn parse_copy(
    ctx: &Ctx<'_>,
    flags: &[Flag],
    args: &str,
    args_off: usize,
    mut heredocs: Vec<Heredoc>,
) -> Result<CopySpec, ParseError> {
    let kw = ctx.keyword;
    let is_add = kw == "ADD";
    check_flags(ctx, flags, if is_add { ADD_FLAGS } else { COPY_FLAGS })?;
    let a = args.trim();
    let words: Vec<String> = match json_list(ctx, a)? {
        Some(v) => v,
        None => words_or_quote_error(ctx, args, args_off)?
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    let total = words.len();
    if total < 2 {
        let got = if total == 0 {
            "none were"
        } else {
            "only one was"
        };
        return Err(ctx.err(format!(
            "{kw} requires at least two arguments (a source and a destination), but {got} provided: {kw} <src>... <dest>"
        )));
    }
    let mut sources = Vec::new();
    let mut used = Vec::new();
    let (dest, srcs) = match words.split_last() {
        Some((d, s)) => (d.clone(), s),
        None => return Err(ctx.err(format!("{kw} requires a destination"))),
    };
    if heredoc_marker(&dest).is_some() && !heredocs.is_empty() {
        return Err(ctx.err(format!("{kw} destination {dest:?} can not be a heredoc")));
    }
    for w in srcs {
        match heredoc_marker(w) {
            Some((name, _, _)) if !heredocs.is_empty() => {
                if let Some(pos) = heredocs.iter().position(|h| h.name == name) {
                    used.push(heredocs.remove(pos));
                } else {
                    sources.push(w.clone());
                }
            }
            _ => sources.push(w.clone()),
        }
    }
    Ok(CopySpec {
        sources,
        dest,
        from: if is_add {
            None
        } else {
            single(ctx, flags, "from")?
        },
        chown: single(ctx, flags, "chown")?,
        chmod: single(ctx, flags, "chmod")?,
        link: boolean(ctx, flags, "link")?,
        heredocs: used,
        checksum: if is_add {
            single(ctx, flags, "checksum")?
        } else {
            None
        },
        keep_git_dir: if is_add {
            boolean(ctx, flags, "keep-git-dir")?
        } else {
            false
        },
        exclude: multi(ctx, flags, "exclude")?,
        parents: if is_add {
            false
        } else {
            boolean(ctx, flags, "parents")?
        },
    })
}

fn parse_healthcheck(ctx: &Ctx<'_>, flags: &[Flag], args: &str) -> Result<Healthcheck, ParseError> {
    check_flags(ctx, flags, HEALTHCHECK_FLAGS)?;
    let a = args.trim();
    let word_end = a.find(char::is_whitespace).unwrap_or(a.len());
    let (word, rest) = (&a[..word_end], a[word_end..].trim());
    let mut hc = Healthcheck::default();
    if word.eq_ignore_ascii_case("NONE") {
        if !rest.is_empty() {
            return Err(ctx.err("HEALTHCHECK NONE takes no arguments"));
        }
        if !flags.is_empty() {
            return Err(ctx.err("HEALTHCHECK NONE takes no options"));
        }
        hc.test = Some(vec!["NONE".to_string()]);
        return Ok(hc);
    }
    if !word.eq_ignore_ascii_case("CMD") {
        return Err(ctx.err("HEALTHCHECK must be followed by NONE or CMD <command>"));
    }
    hc.test = Some(match command_form(ctx, rest)? {
        CommandForm::Exec(v) if !v.is_empty() => {
            std::iter::once("CMD".to_string()).chain(v).collect()
        }
        CommandForm::Shell(s) if !s.is_empty() => vec!["CMD-SHELL".to_string(), s],
        _ => return Err(ctx.err("HEALTHCHECK CMD requires a command")),
    });
    let dur = |name: &str| -> Result<Option<Duration>, ParseError> {
        let Some(v) = single(ctx, flags, name)? else {
            return Ok(None);
        };
        let d = parse_duration(&v)
            .map_err(|m| ctx.err(format!("invalid HEALTHCHECK --{name}={v:?}: {m}")))?;
        if d != Duration::ZERO && d < Duration::from_millis(1) {
            return Err(ctx.err(format!(
                "invalid HEALTHCHECK --{name}={v:?}: must be 0 or at least 1ms"
            )));
        }
        Ok(Some(d))
    };
    hc.interval = dur("interval")?;
    hc.timeout = dur("timeout")?;
    hc.start_period = dur("start-period")?;
    hc.start_interval = dur("start-interval")?;
    hc.retries = match single(ctx, flags, "retries")? {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            ctx.err(format!(
                "invalid HEALTHCHECK --retries={v:?}: must be a whole number of at least 0"
            ))
        })?),
    };
    Ok(hc)
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `0`). Negative durations
/// are rejected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration: use a number with a unit, e.g. 30s".into());
    }
    if s.starts_with('-') {
        return Err("durations can not be negative".into());
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    let mut total: f64 = 0.0;
    let mut rest = body;
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!(
                "invalid duration {s:?}: expected a number, e.g. 30s or 1m30s"
            ));
        }
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number {num:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "missing unit in duration {s:?}: use ns, us, ms, s, m or h"
                ))
            }
            _ => {
                return Err(format!(
                    "unknown unit {unit:?} in duration {s:?}: use ns, us, ms, s, m or h"
                ))
            }
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 9.2e18 {
        return Err(format!("duration {s:?} is too long"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// Validates an EXPOSE port spec: `port[/proto]` or `start-end[/proto]`.
pub(crate) fn check_port(spec: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid EXPOSE port {spec:?}: expected <port>[/<protocol>] or <start>-<end>[/<protocol>] with ports 0-65535 and protocol tcp, udp or sctp"
        )
    };
    let (ports, proto) = match spec.split_once('/') {
        Some((p, pr)) => (p, Some(pr)),
        None => (spec, None),
    };
    if let Some(pr) = proto {
        if !matches!(pr.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
            return Err(bad());
        }
    }
    let num = |s: &str| -> Result<u16, String> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u16>().map_err(|_| bad())
    };
    match ports.split_once('-') {
        Some((a, b)) => {
            if num(a)? > num(b)? {
                return Err(bad());
            }
        }
        None => {
            num(ports)?;
        }
    }
    Ok(())
}

/// Splits a `--mount` value on commas outside double quotes, removing the quotes.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    for c in s.chars() {
        match c {
            '"' => in_q = !in_q,
            ',' if !in_q => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if in_q {
        return Err(format!(
            "unterminated \" quote in --mount={s}: add a closing \""
        ));
    }
    out.push(cur);
    Ok(out)
}

const MOUNT_KEYS: &str = "type, target (dst, destination), source (src), from, id, readonly (ro), rw, sharing, mode, uid, gid, required, size, env";

/// Parses `RUN --mount=` CSV.
fn parse_mount(value: &str) -> Result<RunMount, String> {
    let mut kind = MountKind::Bind;
    let mut target: Option<String> = None;
    let mut m = RunMount {
        kind,
        target: String::new(),
        source: None,
        from: None,
        id: None,
        readonly: false,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
    };
    let mut readonly: Option<bool> = None;
    let parse_bool = |k: &str, v: Option<&str>| -> Result<bool, String> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(o) => Err(format!("invalid --mount {k}={o:?}: use true or false")),
        }
    };
    let parse_u32 = |k: &str, v: &str, radix: u32| -> Result<u32, String> {
        u32::from_str_radix(v, radix).map_err(|_| {
            let what = if radix == 8 {
                "an octal number like 0755"
            } else {
                "a number"
            };
            format!("invalid --mount {k}={v:?}: must be {what}")
        })
    };
    for field in csv_fields(value)? {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            v.map(str::to_string)
                .ok_or_else(|| format!("--mount option {k} needs a value: {k}=<value>"))
        };
        match k.as_str() {
            "type" => {
                kind = match need(v)?.as_str() {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    other => {
                        return Err(format!(
                            "unknown --mount type {other:?}: valid types are bind, cache, tmpfs, secret, ssh"
                        ))
                    }
                }
            }
            "target" | "dst" | "destination" => target = Some(need(v)?),
            "source" | "src" => m.source = Some(need(v)?),
            "from" => m.from = Some(need(v)?),
            "id" => m.id = Some(need(v)?),
            "readonly" | "ro" => readonly = Some(parse_bool(&k, v)?),
            "rw" | "readwrite" => readonly = Some(!parse_bool(&k, v)?),
            "required" => m.required = parse_bool(&k, v)?,
            "sharing" => {
                let s = need(v)?;
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(format!(
                        "invalid --mount sharing={s:?}: use shared, private or locked"
                    ));
                }
                m.sharing = Some(s);
            }
            "mode" => m.mode = Some(parse_u32(&k, &need(v)?, 8)?),
            "uid" => m.uid = Some(parse_u32(&k, &need(v)?, 10)?),
            "gid" => m.gid = Some(parse_u32(&k, &need(v)?, 10)?),
            "size" => m.size = Some(parse_size(&need(v)?)?),
            "env" => m.env = Some(need(v)?),
            other => {
                return Err(format!(
                    "unknown --mount option {other:?}: valid options are {MOUNT_KEYS}"
                ))
            }
        }
    }
    m.kind = kind;
    m.readonly = readonly.unwrap_or(kind == MountKind::Bind);
    match kind {
        MountKind::Secret => {
            if m.id.is_none() {
                match &target {
                    Some(t) => {
                        let base = t.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                        m.id = Some(base.to_string());
                    }
                    None => match &m.env {
                        // Exposed only as an environment variable: the id defaults to its name.
                        Some(env) => m.id = Some(env.clone()),
                        None => {
                            return Err(
                                "secret --mount needs id=<secret id> or target=<path>".into()
                            )
                        }
                    },
                }
            }
            if target.is_none() && m.env.is_none() {
                target = m.id.as_ref().map(|id| format!("/run/secrets/{id}"));
            }
            m.target = target.unwrap_or_default();
        }
        MountKind::Ssh => {
            if m.id.is_none() {
                m.id = Some("default".to_string());
            }
            m.target = target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".to_string());
        }
        _ => {
            let Some(t) = target else {
                return Err("--mount needs target=<absolute path in the container>".into());
            };
            if kind == MountKind::Cache && m.id.is_none() {
                m.id = Some(t.clone());
            }
            m.target = t;
        }
    }
    if kind != MountKind::Tmpfs && m.size.is_some() {
        return Err("--mount option size is only valid for type=tmpfs".into());
    }
    if kind != MountKind::Cache && m.sharing.is_some() {
        return Err("--mount option sharing is only valid for type=cache".into());
    }
    let has_var = [&Some(m.target.clone()), &m.source, &m.from, &m.id, &m.env]
        .iter()
        .any(|f| f.as_deref().is_some_and(|s| s.contains('$')));
    if !has_var {
        check_mount(&mut m)?;
    }
    Ok(m)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits);
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid --mount size={s:?}: use bytes with an optional k, m or g suffix"
            ))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!("invalid --mount size={s:?}: use bytes with an optional k, m or g suffix")
        })
}

/// Lexically cleans a `/`-separated path like Go's `path.Clean`.
pub(crate) fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Mount sanity rules (run at parse time when no value has `$`, and after
/// expansion):
/// - `target` is cleaned and must be absolute and not `/` (secrets exposed
///   only as `env` may have no target);
/// - `id` must be non-empty, contain no NUL or backslash, and have no `..`
///   path component (default cache ids are the target path, so `/` is fine);
/// - bind/cache `source` is made relative (a leading `/` means the root of the
///   source) and cleaned; it must not climb out with `..`.
pub(crate) fn check_mount(m: &mut RunMount) -> Result<(), String> {
    if !(m.kind == MountKind::Secret && m.target.is_empty() && m.env.is_some()) {
        let t = clean_path(&m.target);
        if !t.starts_with('/') {
            return Err(format!(
                "--mount target {:?} must be an absolute path in the container, e.g. target=/root/.cache",
                m.target
            ));
        }
        if t == "/" {
            return Err("--mount target can not be / (the root of the container)".into());
        }
        m.target = t;
    }
    if let Some(id) = &m.id {
        if id.is_empty() || id.contains(['\0', '\\']) || id.split('/').any(|c| c == "..") {
            return Err(format!(
                "invalid --mount id {id:?}: an id must be non-empty and contain no '..' component, backslash or NUL"
            ));
        }
    }
    if matches!(m.kind, MountKind::Bind | MountKind::Cache) {
        if let Some(s) = &m.source {
            let c = clean_path(s.trim_start_matches('/'));
            if c == ".." || c.starts_with("../") {
                return Err(format!(
                    "--mount source {s:?} escapes its source with '..': use a path inside the build context or stage"
                ));
            }
            m.source = Some(c);
        }
    }
    Ok(())
}

/// `COPY --from` / `RUN --mount from=` may only name earlier stages.
fn check_stage_refs(src: &Src<'_>, stages: &[Stage]) -> Result<(), ParseError> {
    for stage in stages {
        for ins in &stage.instructions {
            let mut refs: Vec<(&str, &str)> = Vec::new();
            match &ins.kind {
                Kind::Copy(c) => {
                    if let Some(f) = &c.from {
                        refs.push(("COPY --from", f));
                    }
                }
                Kind::Run(r) => {
                    for m in &r.mounts {
                        if let Some(f) = &m.from {
                            refs.push(("RUN --mount from", f));
                        }
                    }
                }
                _ => {}
            }
            for (what, f) in refs {
                if f.contains('$') {
                    continue;
                }
                let e = |msg: String| src.err(ins.loc.line, ins.loc.column, msg);
                if let Ok(n) = f.parse::<usize>() {
                    if n >= stage.index {
                        return Err(e(format!(
                            "{what}={f} refers to stage {n}, but only stages before this one ({}) can be used",
                            match stage.index {
                                0 => "none".to_string(),
                                i => format!("0-{}", i - 1),
                            }
                        )));
                    }
                    continue;
                }
                let lower = f.to_ascii_lowercase();
                if let Some(target) = stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(lower.as_str()))
                {
                    if target.index == stage.index {
                        return Err(e(format!(
                            "{what}={f} refers to the current stage: a stage can not copy from itself"
                        )));
                    }
                    if target.index > stage.index {
                        return Err(e(format!(
                            "{what}={f} refers to stage {lower:?}, which is defined later (line {}): move that stage above this one",
                            target.loc.line
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}
