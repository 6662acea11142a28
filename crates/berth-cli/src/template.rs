//! `--format`: docker's output choices. `table` (the default), `table TEMPLATE`, `json`
//! (one JSON object per line) or a Go template (`{{.ID}}\t{{.Names}}`, `{{json .}}`).
//!
//! Each command describes a row as a JSON object whose keys are docker's placeholder names
//! (`ID`, `Names`, `Image`, ...) and lets [`print`] lay the rows out.
//!
//! The template language is a subset of Go's text/template, evaluated against JSON values:
//! fields (`.A.B`, `.`, `$`, `$x.A`), variables (`{{$x := .A}}`, `{{$x = .B}}`), pipelines
//! (`{{.X | lower}}`), `if`/`else if`/`else`/`end`, `range` (with `$i, $v :=`), `with`,
//! trim markers (`{{-`, `-}}`), comments, string/number/bool literals, parentheses, Go's
//! functions (`index`, `len`, `print`, `printf`, `println`, `eq`/`ne`/`lt`/`le`/`gt`/`ge`,
//! `and`/`or`/`not`) and docker's (`json`, `join`, `lower`, `upper`, `title`, `split`,
//! `truncate`, `pad`), and docker's `.Label "key"` on rows that carry `Labels`.
//!
//! Errors read like docker's: `template parsing error: template: :1: function "foo" not
//! defined`.

use serde_json::{Map, Number, Value};

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

const PREFIX: &str = "template parsing error: template: ";

/// Render `tmpl` against `v`.
#[allow(dead_code)] // for the other commands' formats and the tests
pub fn render(tmpl: &str, v: &Value) -> Result<String, String> {
    Template::parse(tmpl)?.execute(v)
}

/// Check that `tmpl` parses (without running it): docker refuses a bad format before it
/// prints anything.
pub fn check(tmpl: &str) -> Result<(), String> {
    Template::parse(tmpl).map(|_| ())
}

/// How Go prints a value with `{{.X}}`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", text(&m[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
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
    match format {
        Format::Json => {
            let mut out = String::new();
            for r in rows {
                out.push_str(&json(r));
                out.push('\n');
            }
            Ok(out)
        }
        Format::Template(t) => {
            let t = Template::parse(t)?;
            let mut out = String::new();
            for r in rows {
                out.push_str(&t.execute(r)?);
                out.push('\n');
            }
            Ok(out)
        }
        Format::Table | Format::TableTemplate(_) => {
            let src = match format {
                Format::TableTemplate(t) => t.clone(),
                _ => default
                    .iter()
                    .map(|(k, _)| format!("{{{{.{k}}}}}"))
                    .collect::<Vec<_>>()
                    .join("\t"),
            };
            let t = Template::parse(&src)?;
            let mut titled: Vec<(&str, &str)> = titles.to_vec();
            for d in default {
                if !titled.iter().any(|(k, _)| *k == d.0) {
                    titled.push(*d);
                }
            }
            let header: Map<String, Value> = titled
                .iter()
                .map(|(k, title)| (k.to_string(), Value::String(title.to_string())))
                .collect();
            // docker ignores a failure while writing the header and keeps what it wrote.
            let mut lines = vec![t.header(&Value::Object(header))];
            for r in rows {
                lines.push(t.execute(r)?);
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

/// docker's `json` function: Go's encoder without HTML escaping, except that a row (an
/// object: docker's formatting contexts marshal themselves with `json.Marshal`) has `<`,
/// `>` and `&` escaped as Go does.
fn json(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if v.is_object() {
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------
// Parsing

/// Where an operand sits: line (1-based) and byte column (0-based), as Go reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Pos {
    line: usize,
    col: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root)
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(Number),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Nil,
    Sub(Box<Pipe>),
}

#[derive(Debug, Clone)]
struct Operand {
    arg: Arg,
    pos: Pos,
    /// The operand as written, for error messages (`<.Nope>`).
    src: String,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
struct Pipe {
    /// Variables declared (`:=`) or assigned (`=`) by this pipeline.
    vars: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

/// A parsed template.
pub struct Template {
    nodes: Vec<Node>,
}

/// One `{{ }}` or the text between them.
enum Item {
    Text(String),
    Action(Vec<(Tok, Pos, String)>, Pos),
}

fn perr(line: usize, msg: impl std::fmt::Display) -> String {
    format!("{PREFIX}:{line}: {msg}")
}

fn line_col(src: &str, at: usize) -> Pos {
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| at - i - 1).unwrap_or(at);
    Pos { line, col }
}

/// Split the source into text and actions, applying trim markers and dropping comments.
fn items(src: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = src.as_bytes();
    let mut trim_next = false;
    while i <= src.len() {
        let Some(off) = src[i..].find("{{") else {
            let mut t = &src[i..];
            if trim_next {
                t = t.trim_start_matches(is_space);
            }
            if !t.is_empty() {
                out.push(Item::Text(t.to_string()));
            }
            break;
        };
        let open = i + off;
        let mut body = open + 2;
        let trim_left = bytes.get(body) == Some(&b'-')
            && bytes.get(body + 1).is_some_and(|b| is_space(*b as char));
        let mut t = &src[i..open];
        if trim_next {
            t = t.trim_start_matches(is_space);
        }
        if trim_left {
            t = t.trim_end_matches(is_space);
            body += 2;
        }
        if !t.is_empty() {
            out.push(Item::Text(t.to_string()));
        }
        let start_pos = line_col(src, open);
        // Comments: {{/* ... */}}
        let rest = src[body..].trim_start_matches(is_space);
        if rest.starts_with("/*") {
            let cstart = src.len() - rest.len();
            let Some(cend) = src[cstart..].find("*/") else {
                return Err(perr(start_pos.line, "unclosed comment"));
            };
            let after = cstart + cend + 2;
            let tail = &src[after..];
            let (trim_right, close) = if let Some(t) = tail.strip_prefix(" -}}") {
                (true, src.len() - t.len())
            } else if let Some(t) = tail.strip_prefix("}}") {
                (false, src.len() - t.len())
            } else {
                return Err(perr(
                    start_pos.line,
                    "comment ends before closing delimiter",
                ));
            };
            trim_next = trim_right;
            i = close;
            continue;
        }
        let (toks, end, trim_right) = lex_action(src, body, start_pos.line)?;
        out.push(Item::Action(toks, start_pos));
        trim_next = trim_right;
        i = end;
    }
    Ok(out)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Lex one action starting at byte `at` (just after `{{` and any `- `); the tokens, the
/// byte after `}}`, and whether it ended with `-}}`.
#[allow(clippy::type_complexity)]
fn lex_action(
    src: &str,
    mut at: usize,
    line: usize,
) -> Result<(Vec<(Tok, Pos, String)>, usize, bool), String> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    loop {
        let Some(&c) = b.get(at) else {
            return Err(perr(line, "unclosed action"));
        };
        let c = c as char;
        if is_space(c) {
            if src[at..].trim_start_matches(is_space).starts_with("-}}") {
                let end = src.len() - src[at..].trim_start_matches(is_space).len() + 3;
                return Ok((toks, end, true));
            }
            at += 1;
            continue;
        }
        if src[at..].starts_with("}}") {
            return Ok((toks, at + 2, false));
        }
        let start = at;
        let pos = line_col(src, start);
        let tok = match c {
            '|' => {
                at += 1;
                Tok::Pipe
            }
            '(' => {
                at += 1;
                Tok::LParen
            }
            ')' => {
                at += 1;
                Tok::RParen
            }
            ',' => {
                at += 1;
                Tok::Comma
            }
            '=' => {
                at += 1;
                Tok::Assign
            }
            ':' => {
                if b.get(at + 1) == Some(&b'=') {
                    at += 2;
                    Tok::Declare
                } else {
                    return Err(perr(pos.line, "expected :="));
                }
            }
            '"' => {
                let (s, end) = lex_string(src, at, pos.line)?;
                at = end;
                Tok::Str(s)
            }
            '`' => {
                let Some(close) = src[at + 1..].find('`') else {
                    return Err(perr(pos.line, "unterminated raw quoted string"));
                };
                let s = src[at + 1..at + 1 + close].to_string();
                at += close + 2;
                Tok::Str(s)
            }
            '\'' => {
                let rest = &src[at + 1..];
                let mut chars = rest.chars();
                let ch = match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(o) => o,
                        None => return Err(perr(pos.line, "unterminated character constant")),
                    },
                    Some(ch) => ch,
                    None => return Err(perr(pos.line, "unterminated character constant")),
                };
                if chars.next() != Some('\'') {
                    return Err(perr(pos.line, "unterminated character constant"));
                }
                at = src.len() - chars.as_str().len();
                Tok::Num(Number::from(ch as u32))
            }
            '.' => {
                let (fields, end) = lex_fields(src, at);
                at = end;
                if fields.is_empty() {
                    if b.get(at).is_some_and(|c| c.is_ascii_digit()) {
                        let (n, end) = lex_number(src, start, pos.line)?;
                        at = end;
                        Tok::Num(n)
                    } else {
                        at += 1;
                        Tok::Dot
                    }
                } else {
                    Tok::Field(fields)
                }
            }
            '$' => {
                at += 1;
                let name_end = src[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|o| at + o)
                    .unwrap_or(src.len());
                let name = format!("${}", &src[at..name_end]);
                at = name_end;
                let (fields, end) = lex_fields(src, at);
                at = end;
                Tok::Var(name, fields)
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let (n, end) = lex_number(src, at, pos.line)?;
                at = end;
                Tok::Num(n)
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = src[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|o| at + o)
                    .unwrap_or(src.len());
                let word = &src[at..end];
                at = end;
                match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    w => Tok::Ident(w.to_string()),
                }
            }
            other => {
                return Err(perr(
                    pos.line,
                    format!("unexpected {:?} in command", other.to_string()),
                ))
            }
        };
        toks.push((tok, pos, src[start..at].to_string()));
    }
}

/// `.A.B` from byte `at` (a '.'); the names and the byte after them.
fn lex_fields(src: &str, mut at: usize) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    while src[at..].starts_with('.') {
        let s = at + 1;
        let e = src[s..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(|o| s + o)
            .unwrap_or(src.len());
        if e == s {
            break;
        }
        fields.push(src[s..e].to_string());
        at = e;
    }
    (fields, at)
}

fn lex_number(src: &str, at: usize, line: usize) -> Result<(Number, usize), String> {
    let end = src[at..]
        .char_indices()
        .skip(1)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_'))
        .map(|(o, _)| at + o)
        .unwrap_or(src.len());
    let word = &src[at..end];
    let clean = word.replace('_', "");
    let n = if let Ok(i) = clean.parse::<i64>() {
        Some(Number::from(i))
    } else if let Some(hex) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok().map(Number::from)
    } else {
        clean.parse::<f64>().ok().and_then(Number::from_f64)
    };
    match n {
        Some(n) => Ok((n, end)),
        None => Err(perr(line, format!("bad number syntax: {word:?}"))),
    }
}

fn lex_string(src: &str, at: usize, line: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = src[at + 1..].char_indices();
    while let Some((o, c)) = chars.next() {
        match c {
            '"' => return Ok((out, at + 1 + o + 1)),
            '\n' => break,
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, 'x')) => {
                    let hex: String = (0..2).filter_map(|_| chars.next().map(|c| c.1)).collect();
                    match u8::from_str_radix(&hex, 16) {
                        Ok(b) => out.push(b as char),
                        Err(_) => return Err(perr(line, "invalid syntax in quoted string")),
                    }
                }
                Some((_, 'u')) => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|c| c.1)).collect();
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(c) => out.push(c),
                        None => return Err(perr(line, "invalid syntax in quoted string")),
                    }
                }
                _ => return Err(perr(line, "invalid syntax in quoted string")),
            },
            c => out.push(c),
        }
    }
    Err(perr(line, "unterminated quoted string"))
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print", "printf",
    "println", "json", "join", "lower", "upper", "title", "split", "truncate", "pad", "slice",
];

struct Parser {
    items: std::vec::IntoIter<Item>,
}

/// How a list of nodes ended.
enum Stop {
    Eof,
    End,
    Else(Vec<(Tok, Pos, String)>, Pos),
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut p = Parser {
            items: items(src)?.into_iter(),
        };
        let (nodes, end) = p.list()?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => Err(perr(last_line(src), "unexpected {{end}}")),
            Stop::Else(_, pos) => Err(perr(pos.line, "unexpected {{else}}")),
        }
    }

    pub fn execute(&self, dot: &Value) -> Result<String, String> {
        let mut ex = Exec::new(dot, false);
        let mut out = String::new();
        ex.walk(&self.nodes, dot, &mut out)?;
        Ok(out)
    }

    /// docker's table header: the template run on the titles with the formatting functions
    /// passing text through; it stops quietly at the first failure.
    fn header(&self, titles: &Value) -> String {
        let mut ex = Exec::new(titles, true);
        let mut out = String::new();
        let _ = ex.walk(&self.nodes, titles, &mut out);
        out
    }
}

fn last_line(src: &str) -> usize {
    src.matches('\n').count() + 1
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, pos) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(toks, pos) => (toks, pos),
            };
            let Some((first, _, _)) = toks.first() else {
                return Err(perr(pos.line, "missing value for command"));
            };
            let kw = match first {
                Tok::Ident(w) => w.as_str(),
                _ => "",
            };
            match kw {
                "end" => {
                    if toks.len() > 1 {
                        return Err(perr(pos.line, "unexpected tokens in end"));
                    }
                    return Ok((nodes, Stop::End));
                }
                "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec(), pos))),
                "if" | "with" | "range" => {
                    nodes.push(self.control(kw, &toks[1..], pos)?);
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(perr(
                        pos.line,
                        format!("{{{{{kw}}}}} is not supported in berth's templates"),
                    ))
                }
                _ => nodes.push(Node::Action(pipeline(&toks, pos, "command")?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn control(&mut self, kw: &str, toks: &[(Tok, Pos, String)], pos: Pos) -> Result<Node, String> {
        let pipe = pipeline(toks, pos, kw)?;
        if kw == "range" && pipe.vars.len() > 2 {
            return Err(perr(pos.line, "too many declarations in range"));
        }
        if kw != "range" && pipe.vars.len() > 1 {
            return Err(perr(pos.line, "too many declarations in command"));
        }
        let (body, end) = self.list()?;
        let els = match end {
            Stop::Eof => return Err(perr(pos.line, "unexpected EOF")),
            Stop::End => Vec::new(),
            Stop::Else(rest, epos) => {
                if rest.is_empty() {
                    let (els, end) = self.list()?;
                    match end {
                        Stop::End => els,
                        Stop::Eof => return Err(perr(epos.line, "unexpected EOF")),
                        Stop::Else(_, p) => {
                            return Err(perr(p.line, "expected end; found {{else}}"))
                        }
                    }
                } else {
                    // {{else if ...}} / {{else with ...}}: a nested block sharing our {{end}}.
                    let (inner_kw, inner) = match rest.first() {
                        Some((Tok::Ident(w), _, _)) if (w == "if" || w == "with") => {
                            (w.clone(), rest[1..].to_vec())
                        }
                        _ => return Err(perr(epos.line, "unexpected tokens in else")),
                    };
                    vec![self.control(&inner_kw, &inner, epos)?]
                }
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "with" => Node::With(pipe, body, els),
            _ => Node::Range(pipe, body, els),
        })
    }
}

/// Parse a pipeline: optional `$x :=` / `$i, $v :=`, then commands separated by `|`.
fn pipeline(toks: &[(Tok, Pos, String)], pos: Pos, ctx: &str) -> Result<Pipe, String> {
    let mut vars = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    // Declarations.
    let decl_at = toks
        .iter()
        .position(|(t, _, _)| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(d) = decl_at {
        let head = &toks[..d];
        let ok = head.iter().enumerate().all(|(i, (t, _, _))| {
            if i % 2 == 0 {
                matches!(t, Tok::Var(_, f) if f.is_empty())
            } else {
                *t == Tok::Comma
            }
        }) && head.len() % 2 == 1;
        if ok {
            for (t, _, _) in head.iter().step_by(2) {
                if let Tok::Var(n, _) = t {
                    vars.push(n.clone());
                }
            }
            assign = toks[d].0 == Tok::Assign;
            rest = &toks[d + 1..];
        }
    }
    let mut cmds = Vec::new();
    let mut i = 0;
    let mut cur: Vec<Operand> = Vec::new();
    while i < rest.len() {
        let (tok, p, src) = &rest[i];
        match tok {
            Tok::Pipe => {
                if cur.is_empty() {
                    return Err(perr(p.line, "missing command"));
                }
                cmds.push(Cmd {
                    args: std::mem::take(&mut cur),
                });
                i += 1;
                continue;
            }
            Tok::LParen => {
                // Find the matching parenthesis.
                let mut depth = 0;
                let mut j = i;
                while j < rest.len() {
                    match rest[j].0 {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j == rest.len() {
                    return Err(perr(p.line, "unclosed left paren"));
                }
                let inner = pipeline(&rest[i + 1..j], *p, "parenthesized pipeline")?;
                let text: Vec<&str> = rest[i..=j].iter().map(|t| t.2.as_str()).collect();
                cur.push(Operand {
                    arg: Arg::Sub(Box::new(inner)),
                    pos: *p,
                    src: text.join(" "),
                });
                i = j + 1;
                continue;
            }
            Tok::RParen => return Err(perr(p.line, "unexpected right paren")),
            Tok::Comma | Tok::Declare | Tok::Assign => {
                return Err(perr(p.line, format!("unexpected {src:?} in {ctx}")))
            }
            _ => {}
        }
        let arg = match tok {
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => Arg::Field(f.clone()),
            Tok::Var(n, f) => Arg::Var(n.clone(), f.clone()),
            Tok::Str(s) => Arg::Lit(Value::String(s.clone())),
            Tok::Num(n) => Arg::Lit(Value::Number(n.clone())),
            Tok::Bool(b) => Arg::Lit(Value::Bool(*b)),
            Tok::Nil => Arg::Nil,
            Tok::Ident(name) => {
                if !FUNCS.contains(&name.as_str()) {
                    return Err(perr(p.line, format!("function {name:?} not defined")));
                }
                Arg::Func(name.clone())
            }
            _ => unreachable!("handled above"),
        };
        cur.push(Operand {
            arg,
            pos: *p,
            src: src.clone(),
        });
        i += 1;
    }
    if cur.is_empty() {
        return Err(perr(pos.line, format!("missing value for {ctx}")));
    }
    cmds.push(Cmd { args: cur });
    Ok(Pipe { vars, assign, cmds })
}

// ---------------------------------------------------------------------------------------
// Execution

struct Exec {
    vars: Vec<(String, Value)>,
    /// Whether dot is the row itself (not something `with`/`range` moved to).
    dot_root: bool,
    /// Running for a table header: formatting functions pass their text through.
    header: bool,
}

impl Exec {
    fn new(root: &Value, header: bool) -> Exec {
        Exec {
            vars: vec![("$".into(), root.clone())],
            dot_root: true,
            header,
        }
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        out.push_str(&print_value(&v));
                    }
                }
                Node::If(p, then, els) | Node::With(p, then, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let with = matches!(n, Node::With(..));
                    if truth(&v) && with {
                        let was = std::mem::replace(&mut self.dot_root, false);
                        let r = self.walk(then, &v, out);
                        self.dot_root = was;
                        r?;
                    } else if truth(&v) {
                        self.walk(then, dot, out)?;
                    } else {
                        self.walk(els, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    // The declared variables take the index/key and element, not the value.
                    let plain = Pipe {
                        vars: Vec::new(),
                        assign: false,
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipe(&plain, dot)?;
                    let pairs: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e.clone()))
                            .collect(),
                        Value::Object(m) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::String(k.clone()), m[k.as_str()].clone()))
                                .collect()
                        }
                        Value::Null => Vec::new(),
                        Value::Number(n) if n.as_i64().is_some() => (0..n.as_i64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        other => {
                            let at = p.cmds[0].args.first().map(|o| o.pos).unwrap_or_default();
                            return Err(xerr(
                                at,
                                &p.cmds[0].args[0].src,
                                format!("range can't iterate over {}", text(other)),
                            ));
                        }
                    };
                    if pairs.is_empty() {
                        self.walk(els, dot, out)?;
                    }
                    for (k, e) in pairs {
                        let inner = self.vars.len();
                        match p.vars.as_slice() {
                            [v] => self.vars.push((v.clone(), e.clone())),
                            [kv, vv] => {
                                self.vars.push((kv.clone(), k));
                                self.vars.push((vv.clone(), e.clone()));
                            }
                            _ => {}
                        }
                        let was = std::mem::replace(&mut self.dot_root, false);
                        let r = self.walk(body, &e, out);
                        self.dot_root = was;
                        r?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut prev: Option<Value> = None;
        for c in &p.cmds {
            prev = Some(self.cmd(c, dot, prev)?);
        }
        let v = prev.unwrap_or(Value::Null);
        for name in &p.vars {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => {
                        let pos = p.cmds[0].args[0].pos;
                        return Err(xerr(pos, name, format!("undefined variable: {name}")));
                    }
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, prev: Option<Value>) -> Result<Value, String> {
        let first = &c.args[0];
        let has_args = c.args.len() > 1 || prev.is_some();
        match &first.arg {
            Arg::Func(name) => {
                let mut args = Vec::with_capacity(c.args.len());
                for a in &c.args[1..] {
                    args.push(self.operand(a, dot)?);
                }
                args.extend(prev);
                self.call(name, args)
                    .map_err(|m| xerr(first.pos, &first.src, m))
            }
            Arg::Field(f) if has_args => {
                let mut args = Vec::new();
                for a in &c.args[1..] {
                    args.push(self.operand(a, dot)?);
                }
                args.extend(prev);
                let (last, path) = f.split_last().unwrap_or((&f[0], &[]));
                let recv = self.fields(dot, path, first, self.dot_root)?;
                self.method(&recv, last, args)
                    .map_err(|m| xerr(first.pos, &first.src, m))
            }
            _ if has_args => Err(xerr(
                first.pos,
                &first.src,
                format!("can't give argument to non-function {}", first.src),
            )),
            _ => self.operand(first, dot),
        }
    }

    fn operand(&mut self, o: &Operand, dot: &Value) -> Result<Value, String> {
        match &o.arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Nil => Err(xerr(o.pos, &o.src, "nil is not a command")),
            Arg::Field(f) => self.fields(dot, f, o, self.dot_root),
            Arg::Var(name, f) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(xerr(o.pos, &o.src, format!("undefined variable: {name}")));
                };
                let v = v.clone();
                let root = name == "$";
                self.fields(&v, f, o, root)
            }
            Arg::Func(name) => self
                .call(name, Vec::new())
                .map_err(|m| xerr(o.pos, &o.src, m)),
            Arg::Sub(p) => self.pipe(p, dot),
        }
    }

    /// Follow `.A.B` from `v`. On the row itself (`root`) an unknown name is an error, as a
    /// missing field of docker's Go struct is; inside a map it is "<no value>".
    fn fields(&self, v: &Value, path: &[String], o: &Operand, root: bool) -> Result<Value, String> {
        let mut cur = v.clone();
        for (i, name) in path.iter().enumerate() {
            cur = match cur {
                Value::Object(mut m) => match m.remove(name) {
                    Some(x) => x,
                    None if i == 0 && root && !self.header => {
                        let mut known: Vec<&String> = m.keys().collect();
                        known.sort();
                        let known: Vec<String> = known.iter().map(|k| format!(".{k}")).collect();
                        return Err(xerr(
                            o.pos,
                            &o.src,
                            format!(
                                "can't evaluate field {name}: the placeholders are {}",
                                known.join(", ")
                            ),
                        ));
                    }
                    None if self.header => Value::String("<no value>".into()),
                    None => Value::Null,
                },
                Value::Null => {
                    return Err(xerr(
                        o.pos,
                        &o.src,
                        format!("nil pointer evaluating interface {{}}.{name}"),
                    ))
                }
                other => {
                    return Err(xerr(
                        o.pos,
                        &o.src,
                        format!("can't evaluate field {name} in type {}", go_type(&other)),
                    ))
                }
            };
        }
        Ok(cur)
    }

    /// docker's methods on rows: `.Label "key"`.
    fn method(&self, recv: &Value, name: &str, args: Vec<Value>) -> Result<Value, String> {
        if name != "Label" || !recv.is_object() {
            return Err(format!("{name} is not a method but has arguments"));
        }
        let [key] = args.as_slice() else {
            return Err(format!(
                "wrong number of args for Label: want 1 got {}",
                args.len()
            ));
        };
        let Value::String(key) = key else {
            return Err(format!(
                "wrong type for value; expected string; got {}",
                go_type(key)
            ));
        };
        if self.header {
            // docker titles the column with the key's last dot-separated part.
            let last = key.rsplit('.').next().unwrap_or(key);
            return Ok(Value::String(last.replace(['-', '_'], " ")));
        }
        Ok(Value::String(
            label_map(recv.get("Labels"))
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_default(),
        ))
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let argc = |want: usize| -> Result<(), String> {
            if args.len() == want {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want {want} got {}",
                    args.len()
                ))
            }
        };
        if self.header
            && matches!(
                name,
                "json" | "join" | "lower" | "upper" | "title" | "split" | "truncate" | "pad"
            )
        {
            return Ok(args.into_iter().next().unwrap_or(Value::Null));
        }
        match name {
            "json" => {
                argc(1)?;
                Ok(Value::String(json(&args[0])))
            }
            "join" => {
                argc(2)?;
                let sep = want_str(&args[1])?;
                match &args[0] {
                    Value::Array(a) => Ok(Value::String(
                        a.iter().map(text).collect::<Vec<_>>().join(&sep),
                    )),
                    other => Err(format!(
                        "wrong type for value; expected []string; got {}",
                        go_type(other)
                    )),
                }
            }
            "lower" | "upper" | "title" => {
                argc(1)?;
                let s = want_str(&args[0])?;
                Ok(Value::String(match name {
                    "lower" => s.to_lowercase(),
                    "upper" => s.to_uppercase(),
                    _ => title(&s),
                }))
            }
            "split" => {
                argc(2)?;
                let s = want_str(&args[0])?;
                let sep = want_str(&args[1])?;
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(sep.as_str())
                        .map(|p| Value::String(p.to_string()))
                        .collect()
                };
                Ok(Value::Array(parts))
            }
            "truncate" => {
                argc(2)?;
                let s = want_str(&args[0])?;
                let n = want_int(&args[1])?.max(0) as usize;
                Ok(Value::String(s.chars().take(n).collect()))
            }
            "pad" => {
                argc(3)?;
                let s = want_str(&args[0])?;
                if s.is_empty() {
                    return Ok(Value::String(s));
                }
                let pre = want_int(&args[1])?.max(0) as usize;
                let post = want_int(&args[2])?.max(0) as usize;
                Ok(Value::String(format!(
                    "{}{s}{}",
                    " ".repeat(pre),
                    " ".repeat(post)
                )))
            }
            "print" => Ok(Value::String(sprint(&args))),
            "println" => Ok(Value::String(
                args.iter().map(text).collect::<Vec<_>>().join(" ") + "\n",
            )),
            "printf" => {
                let Some((f, rest)) = args.split_first() else {
                    return Err("wrong number of args for printf: want at least 1 got 0".into());
                };
                Ok(Value::String(sprintf(&want_str(f)?, rest)))
            }
            "len" => {
                argc(1)?;
                match &args[0] {
                    Value::String(s) => Ok(Value::from(s.len())),
                    Value::Array(a) => Ok(Value::from(a.len())),
                    Value::Object(m) => Ok(Value::from(m.len())),
                    other => Err(format!("len of type {}", go_type(other))),
                }
            }
            "index" => {
                let Some((first, keys)) = args.split_first() else {
                    return Err("wrong number of args for index: want at least 1 got 0".into());
                };
                let mut cur = first.clone();
                for k in keys {
                    cur = match (&cur, k) {
                        (Value::Array(a), Value::Number(_)) => {
                            let i = want_int(k)?;
                            match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                Some(v) => v.clone(),
                                None => return Err(format!("index out of range: {i}")),
                            }
                        }
                        (Value::String(s), Value::Number(_)) => {
                            let i = want_int(k)?;
                            match usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i)) {
                                Some(b) => Value::from(*b),
                                None => return Err(format!("index out of range: {i}")),
                            }
                        }
                        (Value::Object(m), Value::String(key)) => {
                            m.get(key).cloned().unwrap_or(Value::Null)
                        }
                        (Value::Null, _) => return Err("index of untyped nil".into()),
                        (c, k) => {
                            return Err(format!("cannot index {} with {}", go_type(c), go_type(k)))
                        }
                    };
                }
                Ok(cur)
            }
            "slice" => {
                let Some((first, idx)) = args.split_first() else {
                    return Err("wrong number of args for slice: want at least 1 got 0".into());
                };
                let idx: Vec<i64> = idx.iter().map(want_int).collect::<Result<_, _>>()?;
                let len = match first {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    other => return Err(format!("can't slice item of type {}", go_type(other))),
                } as i64;
                let lo = idx.first().copied().unwrap_or(0);
                let hi = idx.get(1).copied().unwrap_or(len);
                if lo < 0 || hi < lo || hi > len {
                    return Err(format!("index out of range: {hi}"));
                }
                Ok(match first {
                    Value::String(s) => Value::String(
                        String::from_utf8_lossy(&s.as_bytes()[lo as usize..hi as usize])
                            .into_owned(),
                    ),
                    Value::Array(a) => Value::Array(a[lo as usize..hi as usize].to_vec()),
                    _ => Value::Null,
                })
            }
            "not" => {
                argc(1)?;
                Ok(Value::Bool(!truth(&args[0])))
            }
            "and" => {
                if args.is_empty() {
                    return Err("wrong number of args for and: want at least 1 got 0".into());
                }
                let pick = args.iter().find(|a| !truth(a)).or(args.last());
                Ok(pick.cloned().unwrap_or(Value::Null))
            }
            "or" => {
                if args.is_empty() {
                    return Err("wrong number of args for or: want at least 1 got 0".into());
                }
                let pick = args.iter().find(|a| truth(a)).or(args.last());
                Ok(pick.cloned().unwrap_or(Value::Null))
            }
            "eq" => {
                let Some((a, rest)) = args.split_first() else {
                    return Err("missing argument for comparison".into());
                };
                if rest.is_empty() {
                    return Err("missing argument for comparison".into());
                }
                for b in rest {
                    if compare(a, b)? == std::cmp::Ordering::Equal {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                argc(2)?;
                use std::cmp::Ordering::*;
                let o = compare(&args[0], &args[1])?;
                if name != "ne" && !args[0].is_number() && !args[0].is_string() {
                    return Err("invalid type for comparison".into());
                }
                Ok(Value::Bool(match name {
                    "ne" => o != Equal,
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                }))
            }
            other => Err(format!("function {other:?} not defined")),
        }
    }
}

/// An execution error in Go's shape: `template: :1:2: executing "" at <.Nope>: ...`.
fn xerr(pos: Pos, src: &str, msg: impl std::fmt::Display) -> String {
    format!(
        "{PREFIX}:{}:{}: executing \"\" at <{}>: {msg}",
        pos.line, pos.col, src
    )
}

/// What Go prints for `{{x}}`. A null prints as docker's nil fields do ("<nil>"); so does
/// a key missing from a map (Go would print "<no value>" there).
fn print_value(v: &Value) -> String {
    text(v)
}

/// Go's notion of truth: false, 0, nil and empty strings, lists and maps are false.
fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn want_str(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            go_type(other)
        )),
    }
}

fn want_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            go_type(other)
        )),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Go's `strings.Title`: upper-case each word's first letter.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&text(a));
    }
    out
}

/// `labels` as (key, value) pairs: a map, or docker's "k=v,k2=v2" text.
fn label_map(labels: Option<&Value>) -> Vec<(String, String)> {
    match labels {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Some(Value::String(s)) if !s.is_empty() => {
            let mut out: Vec<(String, String)> = Vec::new();
            for part in s.split(',') {
                match part.split_once('=') {
                    Some((k, v)) => out.push((k.to_string(), v.to_string())),
                    // A comma inside a value: it belongs to the previous label.
                    None => match out.last_mut() {
                        Some(last) => {
                            last.1.push(',');
                            last.1.push_str(part);
                        }
                        None => out.push((part.to_string(), String::new())),
                    },
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: %s %v %d %q %t %f %x %X %c %%, with
/// flags `-`, `0`, `+`, width and precision.
fn sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&fl) = chars.peek() {
            match fl {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let bad = || format!("%!{verb}({}={})", go_type(arg), text(arg));
        let s = match (verb, arg) {
            ('s', Value::Number(_) | Value::Bool(_)) => bad(),
            ('v' | 's', a) => {
                let s = text(a);
                match prec {
                    Some(p) if a.is_string() => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('q', Value::String(s)) => crate::format::go_quote(s),
            ('t', Value::Bool(b)) => b.to_string(),
            ('d', Value::Number(n)) if n.as_i64().is_some() => {
                let i = n.as_i64().unwrap_or(0);
                if plus && i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            ('x', Value::Number(n)) if n.as_i64().is_some() => {
                format!("{:x}", n.as_i64().unwrap_or(0))
            }
            ('X', Value::Number(n)) if n.as_i64().is_some() => {
                format!("{:X}", n.as_i64().unwrap_or(0))
            }
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('c', Value::Number(n)) => n
                .as_u64()
                .and_then(|u| char::from_u32(u as u32))
                .map(String::from)
                .unwrap_or_default(),
            ('f' | 'F' | 'e' | 'g', Value::Number(n)) => {
                let x = n.as_f64().unwrap_or(0.0);
                match verb {
                    'e' => format!("{:.*e}", prec.unwrap_or(6), x),
                    'g' => text(arg),
                    _ => format!("{:.*}", prec.unwrap_or(6), x),
                }
            }
            _ => bad(),
        };
        let w: usize = width.parse().unwrap_or(0);
        let n = s.chars().count();
        if n >= w {
            out.push_str(&s);
        } else if left {
            out.push_str(&s);
            out.push_str(&" ".repeat(w - n));
        } else if zero && arg.is_number() {
            let (sign, digits) = match s.strip_prefix('-') {
                Some(d) => ("-", d.to_string()),
                None => ("", s.clone()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(w - n));
            out.push_str(&digits);
        } else {
            out.push_str(&" ".repeat(w - n));
            out.push_str(&s);
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", go_type(a), text(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Value {
        json!({
            "ID": "0123456789ab",
            "Names": "web",
            "Image": "busybox:latest",
            "Status": "Up 2 seconds",
            "State": "running",
            "Labels": "com.example.team=blue,com.example.list=a,b,tier=web",
            "Count": 3,
            "Zero": 0,
            "Tags": ["a", "b", "c"],
            "Empty": [],
            "Map": {"k1": "v1", "k2": {"deep": "x"}, "n": null},
        })
    }

    fn r(t: &str) -> String {
        render(t, &row()).unwrap_or_else(|e| panic!("{t:?}: {e}"))
    }

    fn e(t: &str) -> String {
        render(t, &row()).expect_err(t)
    }

    #[test]
    fn fields_dot_and_root() {
        assert_eq!(r("{{.ID}}\t{{.Names}}"), "0123456789ab\tweb");
        assert_eq!(r("{{ .Map.k2.deep }}"), "x");
        assert_eq!(r("{{.Tags}}"), "[a b c]");
        assert_eq!(r("{{.Map.k2}}"), "map[deep:x]");
        assert_eq!(r("{{.Map.missing}}"), "<nil>");
        assert_eq!(r("{{.Map.n}}"), "<nil>");
        assert_eq!(r("{{if .Map.missing}}t{{else}}f{{end}}"), "f");
        assert_eq!(r("{{with .Map}}{{$.Names}}/{{.k1}}{{end}}"), "web/v1");
        assert!(r("{{$}}").starts_with("map[Count:3"));
        assert_eq!(r("plain text"), "plain text");
        assert_eq!(r(""), "");
    }

    #[test]
    fn json_function() {
        assert_eq!(r("{{json .Tags}}"), r#"["a","b","c"]"#);
        assert_eq!(r("{{json .Names}}"), r#""web""#);
        assert_eq!(
            r("{{.Map | json}}"),
            r#"{"k1":"v1","k2":{"deep":"x"},"n":null}"#
        );
        // A row is marshalled with HTML escaping, other values without, as docker does.
        assert_eq!(
            render("{{json .}}", &json!({"a": "1->2 & <b>"})).unwrap(),
            r#"{"a":"1-\u003e2 \u0026 \u003cb\u003e"}"#
        );
        assert_eq!(
            render("{{json .a}}", &json!({"a": "1->2"})).unwrap(),
            r#""1->2""#
        );
        let whole: Value = serde_json::from_str(&r("{{json .}}")).unwrap();
        assert!(r("{{json .}}").starts_with(r#"{"Count":3,"Empty":[],"ID":"#));
        assert_eq!(whole, row());
    }

    #[test]
    fn pipelines_and_string_functions() {
        assert_eq!(r("{{.Image | upper}}"), "BUSYBOX:LATEST");
        assert_eq!(r("{{upper .Names | lower}}"), "web");
        assert_eq!(r("{{title \"hello big world\"}}"), "Hello Big World");
        assert_eq!(r("{{join .Tags \", \"}}"), "a, b, c");
        assert_eq!(r("{{split .Image \":\"}}"), "[busybox latest]");
        assert_eq!(r("{{index (split .Image \":\") 1}}"), "latest");
        assert_eq!(r("{{join (split \"a-b-c\" \"-\") \"+\"}}"), "a+b+c");
        assert_eq!(r("{{truncate .ID 4}}"), "0123");
        assert_eq!(r("{{truncate .Names 10}}"), "web");
        assert_eq!(r("[{{pad .Names 2 1}}]"), "[  web ]");
        assert_eq!(r("[{{pad \"\" 2 1}}]"), "[]");
        assert_eq!(r("{{println .Names .Count}}"), "web 3\n");
        assert_eq!(r("{{print .Count 4}}"), "3 4");
        assert_eq!(r("{{print \"a\" \"b\"}}"), "ab");
        assert_eq!(r("{{len .Tags}} {{len .Names}} {{len .Map}}"), "3 3 3");
        assert_eq!(
            r("{{index .Tags 2}} {{index .Map \"k1\"}} {{index .Map \"k2\" \"deep\"}}"),
            "c v1 x"
        );
        assert_eq!(r("{{slice .Names 1}}"), "eb");
        assert_eq!(r("{{`raw \\n`}}"), "raw \\n");
        assert_eq!(r("{{\"quoted\\tstr\"}}"), "quoted\tstr");
        assert_eq!(r("{{1.5}} {{-2}} {{true}} {{'a'}}"), "1.5 -2 true 97");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(r("{{printf \"%s is %d\" .Names .Count}}"), "web is 3");
        assert_eq!(r("{{printf \"%q\" .Names}}"), "\"web\"");
        assert_eq!(r("{{printf \"%v|%v\" .Tags .Count}}"), "[a b c]|3");
        assert_eq!(
            r("{{printf \"%-6s|%5s|%03d\" .Names .Names .Count}}"),
            "web   |  web|003"
        );
        assert_eq!(r("{{printf \"%.2s %%\" .Names}}"), "we %");
        assert_eq!(r("{{printf \"%d\" .Names}}"), "%!d(string=web)");
        assert_eq!(r("{{printf \"%s %s\" .Names}}"), "web %!s(MISSING)");
        assert_eq!(
            r("{{printf \"%s\" .Names .ID}}"),
            "web%!(EXTRA string=0123456789ab)"
        );
        assert_eq!(r("{{.Names | printf \"<%s>\"}}"), "<web>");
        assert_eq!(r("{{printf \"%.1f\" 2.25}}"), "2.2");
    }

    #[test]
    fn conditions() {
        assert_eq!(r("{{if eq .State \"running\"}}up{{else}}down{{end}}"), "up");
        assert_eq!(
            r("{{if eq .State \"exited\"}}x{{else if eq .State \"running\"}}y{{else}}z{{end}}"),
            "y"
        );
        assert_eq!(
            r("{{if eq .State \"a\"}}x{{else if eq .State \"b\"}}y{{else}}z{{end}}"),
            "z"
        );
        assert_eq!(r("{{if eq .State \"a\" \"running\"}}any{{end}}"), "any");
        assert_eq!(r("{{if ne .Count 3}}a{{else}}b{{end}}"), "b");
        assert_eq!(r("{{if lt .Count 4}}lt{{end}}{{if gt .Count 4}}gt{{end}}{{if le 3 .Count}}le{{end}}{{if ge .Count 5}}ge{{end}}"), "ltle");
        assert_eq!(
            r("{{if .Zero}}t{{else}}f{{end}}{{if .Empty}}t{{else}}f{{end}}{{if .Tags}}t{{end}}"),
            "fft"
        );
        assert_eq!(
            r("{{if and .Names .Zero}}t{{else}}f{{end}} {{or .Zero .Names}} {{and 1 2}}"),
            "f web 2"
        );
        assert_eq!(r("{{if not .Zero}}yes{{end}}"), "yes");
        assert_eq!(r("{{with .Map.k2}}{{.deep}}{{end}}"), "x");
        assert_eq!(r("{{with .Empty}}t{{else}}none{{end}}"), "none");
        assert_eq!(r("{{with $x := .Names}}{{$x}}!{{end}}"), "web!");
        assert_eq!(r("{{lt \"a\" \"b\"}}"), "true");
        assert!(e("{{if eq .Count \"3\"}}{{end}}").contains("incompatible types for comparison"));
    }

    #[test]
    fn range_and_variables() {
        assert_eq!(r("{{range .Tags}}<{{.}}>{{end}}"), "<a><b><c>");
        assert_eq!(
            r("{{range $i, $t := .Tags}}{{$i}}={{$t}} {{end}}"),
            "0=a 1=b 2=c "
        );
        assert_eq!(r("{{range $k, $v := .Map}}{{$k}};{{end}}"), "k1;k2;n;");
        assert_eq!(
            r("{{range $t := .Tags}}{{$t}}{{$.Names}}{{end}}"),
            "awebbwebcweb"
        );
        assert_eq!(r("{{range .Empty}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(
            r("{{range .Tags}}{{if eq . \"b\"}}B{{else}}{{.}}{{end}}{{end}}"),
            "aBc"
        );
        assert_eq!(r("{{$n := .Names}}{{$n}}-{{$n = \"db\"}}{{$n}}"), "web-db");
        assert_eq!(r("{{range 3}}{{.}}{{end}}"), "012");
        assert!(e("{{range .Names}}{{end}}").contains("range can't iterate over web"));
        // A variable declared in a block is gone after it.
        assert!(Template::parse("{{if 1}}{{$x := 1}}{{end}}{{$x}}").is_ok());
        assert!(e("{{if 1}}{{$x := 1}}{{end}}{{$x}}").contains("undefined variable: $x"));
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(r("a  {{- .Names -}}  \n b"), "awebb");
        assert_eq!(r("{{range .Tags -}}\n  {{.}}\n{{- end}}"), "abc");
        assert_eq!(r("x{{/* a comment */}}y"), "xy");
        assert_eq!(r("x {{- /* a comment */ -}} y"), "xy");
        assert_eq!(r("{{- .Names}}"), "web");
        assert_eq!(r("{{-3}}"), "-3");
    }

    #[test]
    fn labels_method() {
        assert_eq!(r("{{.Label \"com.example.team\"}}"), "blue");
        assert_eq!(r("{{.Label \"com.example.list\"}}"), "a,b");
        assert_eq!(r("[{{.Label \"nope\"}}]"), "[]");
        assert_eq!(
            render("{{.Label \"a\"}}", &json!({"Labels": {"a": "1"}})).unwrap(),
            "1"
        );
    }

    #[test]
    fn errors_name_the_template_and_the_problem() {
        assert_eq!(
            e("{{.Nope}}"),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate \
             field Nope: the placeholders are .Count, .Empty, .ID, .Image, .Labels, .Map, \
             .Names, .State, .Status, .Tags, .Zero"
        );
        assert_eq!(
            e("{{.ID}} {{nope .ID}}"),
            "template parsing error: template: :1: function \"nope\" not defined"
        );
        assert_eq!(
            e("{{.ID"),
            "template parsing error: template: :1: unclosed action"
        );
        assert_eq!(
            e("{{if .ID}}x"),
            "template parsing error: template: :1: unexpected EOF"
        );
        assert_eq!(
            e("x{{end}}"),
            "template parsing error: template: :1: unexpected {{end}}"
        );
        assert!(e("{{.ID}}\n{{else}}").starts_with("template parsing error: template: :2: "));
        assert!(e("{{\"abc}}").contains("unterminated quoted string"));
        assert!(e("{{.Names.X}}").contains("can't evaluate field X in type string"));
        assert!(e("{{.Names 1}}").contains("Names is not a method but has arguments"));
        assert!(e("{{join .Names \",\"}}")
            .contains("wrong type for value; expected []string; got string"));
        assert!(e("{{upper}}").contains("wrong number of args for upper: want 1 got 0"));
        assert!(e("{{index .Tags 5}}").contains("index out of range: 5"));
        assert!(e("{{)}}").contains("unexpected right paren"));
        for bad in ["{{.Nope}}", "{{nope}}", "{{.ID", "{{if 1}}"] {
            assert_eq!(e(bad).lines().count(), 1, "{bad}");
            assert!(check(bad).is_err() || bad == "{{.Nope}}");
        }
    }

    #[test]
    fn formats_and_tables() {
        assert_eq!(Format::parse(None), Format::Table);
        assert_eq!(Format::parse(Some("table")), Format::Table);
        assert_eq!(Format::parse(Some(" json ")), Format::Json);
        assert_eq!(
            Format::parse(Some("table {{.ID}}\\t{{.Names}}")),
            Format::TableTemplate("{{.ID}}\t{{.Names}}".into())
        );
        assert_eq!(
            Format::parse(Some("{{.ID}}\\n")),
            Format::Template("{{.ID}}\n".into())
        );
        let rows = vec![
            row(),
            json!({"ID": "ffff", "Names": "db", "Labels": "", "Status": "Exited (0) 2 minutes ago"}),
        ];
        let default = [("ID", "CONTAINER ID"), ("Names", "NAMES")];
        let titles = [
            ("ID", "CONTAINER ID"),
            ("Names", "NAMES"),
            ("Status", "STATUS"),
        ];
        assert_eq!(
            print(&Format::Table, &rows, &default, &titles).unwrap(),
            "CONTAINER ID   NAMES\n0123456789ab   web\nffff           db\n"
        );
        assert_eq!(
            print(
                &Format::parse(Some("table {{.Names}}\\t{{.Status}}")),
                &rows,
                &default,
                &titles
            )
            .unwrap(),
            "NAMES     STATUS\nweb       Up 2 seconds\ndb        Exited (0) 2 minutes ago\n"
        );
        // Header: functions pass the title through; an unknown placeholder is "<no value>";
        // `.Label` titles the column with the key's last part.
        assert_eq!(
            print(
                &Format::parse(Some(
                    "table {{lower .Names}}\\t{{.Label \"com.example.team\"}}"
                )),
                &rows,
                &default,
                &titles
            )
            .unwrap(),
            "NAMES     team\nweb       blue\ndb        \n"
        );
        assert_eq!(
            print(
                &Format::Template("{{.Names}}".into()),
                &rows,
                &default,
                &titles
            )
            .unwrap(),
            "web\ndb\n"
        );
        let j = print(&Format::Json, &rows[1..], &default, &titles).unwrap();
        assert_eq!(j, "{\"ID\":\"ffff\",\"Labels\":\"\",\"Names\":\"db\",\"Status\":\"Exited (0) 2 minutes ago\"}\n");
        assert!(print(
            &Format::Template("{{.Nope}}".into()),
            &rows,
            &default,
            &titles
        )
        .is_err());
        // No rows: a table still has its header; a template prints nothing.
        assert_eq!(
            print(&Format::Table, &[], &default, &titles).unwrap(),
            "CONTAINER ID   NAMES\n"
        );
        assert_eq!(
            print(
                &Format::Template("{{.Nope}}".into()),
                &[],
                &default,
                &titles
            )
            .unwrap(),
            ""
        );
    }
}
