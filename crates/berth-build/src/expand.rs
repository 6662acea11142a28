//! Variable substitution the way Docker's shell-word lexer does it.
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?msg}`, `${VAR?msg}`; the escape
//! character makes the next character literal; single quotes are literal;
//! double quotes expand variables and let the escape character escape `"`, `$`
//! and itself. Quotes are removed. An unset variable expands to nothing.
//! `$` followed by anything that cannot start a name is a literal `$`.
//!
//! [`Instruction::expand`] applies substitution in exactly the instructions
//! Docker applies it to: ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR, ARG defaults, the `--from`/`--chown`/`--chmod`/`--checksum`/
//! `--exclude` flags of COPY/ADD and the `RUN --mount` values. RUN, CMD,
//! ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left alone (the
//! shell, or a later build, does that). COPY/ADD heredoc bodies are expanded
//! when their delimiter was unquoted, with quotes kept literally (as a shell
//! heredoc does); RUN heredocs never are. FROM's base is expanded by
//! [`Stage::expand_base`] using the meta ARGs.

use std::fmt;

use crate::ast::{Instruction, Kind, Loc, Stage};
use crate::error::ParseError;

/// A substitution failure (`${VAR:?msg}`, unterminated quote, bad `${...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub message: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExpandError {}

fn err<T>(message: impl Into<String>) -> Result<T, ExpandError> {
    Err(ExpandError {
        message: message.into(),
    })
}

/// Nesting limit for `${A:-${B:-...}}`.
const MAX_DEPTH: usize = 64;

struct Out {
    split: bool,
    words: Vec<String>,
    cur: String,
    started: bool,
}

impl Out {
    fn lit(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }
    fn lit_str(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }
    fn boundary(&mut self) {
        if self.started {
            self.words.push(std::mem::take(&mut self.cur));
            self.started = false;
        }
    }
    /// An unquoted expansion: split on whitespace in word-splitting mode.
    fn var(&mut self, s: &str) {
        if !self.split {
            self.lit_str(s);
            return;
        }
        for c in s.chars() {
            if c.is_whitespace() {
                self.boundary();
            } else {
                self.lit(c);
            }
        }
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Heredoc mode: quotes are ordinary characters and the escape character
    /// only escapes `$` and itself.
    heredoc: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (consumed) or end of input.
    fn run(&mut self, stop: Option<char>, out: &mut Out, depth: usize) -> Result<(), ExpandError> {
        if depth > MAX_DEPTH {
            return err("variable substitution is nested too deeply");
        }
        loop {
            let Some(c) = self.peek() else {
                return match stop {
                    Some(s) => err(format!("missing '{s}' in variable substitution")),
                    None => Ok(()),
                };
            };
            if Some(c) == stop {
                self.pos += 1;
                return Ok(());
            }
            if c == self.escape {
                self.pos += 1;
                match self.next() {
                    None => {}
                    Some(n) if self.heredoc && n != '$' && n != self.escape => {
                        out.lit(c);
                        out.lit(n);
                    }
                    Some(n) => out.lit(n),
                }
            } else if c == '\'' && !self.heredoc {
                self.pos += 1;
                out.started = true;
                loop {
                    match self.next() {
                        None => return err("unterminated single quote: add a closing '"),
                        Some('\'') => break,
                        Some(x) => out.lit(x),
                    }
                }
            } else if c == '"' && !self.heredoc {
                self.pos += 1;
                out.started = true;
                loop {
                    match self.peek() {
                        None => return err("unterminated double quote: add a closing \""),
                        Some('"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(e) if e == self.escape => {
                            self.pos += 1;
                            match self.peek() {
                                Some(n) if n == '"' || n == '$' || n == self.escape => {
                                    self.pos += 1;
                                    out.lit(n);
                                }
                                _ => out.lit(e),
                            }
                        }
                        Some('$') => {
                            let v = self.dollar(depth)?;
                            out.lit_str(&v);
                        }
                        Some(x) => {
                            self.pos += 1;
                            out.lit(x);
                        }
                    }
                }
            } else if c == '$' {
                // An empty unquoted expansion makes no word by itself.
                let v = self.dollar(depth)?;
                out.var(&v);
            } else if out.split && c.is_whitespace() {
                self.pos += 1;
                out.boundary();
            } else {
                self.pos += 1;
                out.lit(c);
            }
        }
    }

    fn is_name_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }

    /// At a `$`: returns the substituted text.
    fn dollar(&mut self, depth: usize) -> Result<String, ExpandError> {
        self.pos += 1; // '$'
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_some_and(Self::is_name_char) {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                if name.is_empty() {
                    return err("bad substitution: expected a variable name after ${");
                }
                let value = (self.lookup)(&name);
                let mut colon = false;
                let op = match self.next() {
                    None => return err(format!("missing '}}' in ${{{name}")),
                    Some('}') => return Ok(value.unwrap_or_default()),
                    Some(':') => {
                        colon = true;
                        self.next()
                    }
                    Some(o) => Some(o),
                };
                let op = match op {
                    Some(o @ ('-' | '+' | '?')) => o,
                    Some(o) => {
                        let m = if colon {
                            format!(":{o}")
                        } else {
                            o.to_string()
                        };
                        return err(format!(
                            "unsupported modifier {m:?} in ${{{name}...}}: supported are :- - :+ + :? ?"
                        ));
                    }
                    None => return err(format!("missing '}}' in ${{{name}")),
                };
                let mut inner = Out {
                    split: false,
                    words: Vec::new(),
                    cur: String::new(),
                    started: false,
                };
                self.run(Some('}'), &mut inner, depth + 1)?;
                let word = inner.cur;
                // "set" for the colon forms means set and non-empty.
                let set = match &value {
                    None => false,
                    Some(v) => !colon || !v.is_empty(),
                };
                match op {
                    '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    _ => {
                        if set {
                            Ok(value.unwrap_or_default())
                        } else if word.is_empty() {
                            err(format!(
                                "{name}: is not allowed to be {}",
                                if colon { "unset or empty" } else { "unset" }
                            ))
                        } else {
                            err(format!("{name}: {word}"))
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                while self.peek().is_some_and(Self::is_name_char) {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            Some(c) if c.is_ascii_digit() => {
                self.pos += 1;
                Ok((self.lookup)(&c.to_string()).unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }
}

fn lex<'a>(
    word: &str,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    heredoc: bool,
) -> Lexer<'a> {
    Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        lookup,
        heredoc,
    }
}

/// Substitutes variables in `word` and removes quotes, without splitting.
pub fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = Out {
        split: false,
        words: Vec::new(),
        cur: String::new(),
        started: false,
    };
    lex(word, escape, lookup, false).run(None, &mut out, 0)?;
    Ok(out.cur)
}

/// Substitutes variables and splits into words on unquoted whitespace
/// (including whitespace produced by an unquoted variable). `""` yields an
/// empty word.
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    let mut out = Out {
        split: true,
        words: Vec::new(),
        cur: String::new(),
        started: false,
    };
    lex(text, escape, lookup, false).run(None, &mut out, 0)?;
    out.boundary();
    Ok(out.words)
}

/// Expands a heredoc body as a shell does for an unquoted delimiter: `$`
/// substitutions only, quotes are literal, the escape character escapes only
/// `$` and itself.
pub fn expand_heredoc(
    body: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = Out {
        split: false,
        words: Vec::new(),
        cur: String::new(),
        started: false,
    };
    lex(body, escape, lookup, true).run(None, &mut out, 0)?;
    Ok(out.cur)
}

fn to_parse_error(file: &str, loc: Loc, source: &str, e: ExpandError) -> ParseError {
    ParseError {
        file: file.to_string(),
        line: loc.line,
        column: loc.column,
        message: e.message,
        suggestion: None,
        source_line: source.lines().next().unwrap_or("").to_string(),
    }
}

impl Stage {
    /// The base image reference with variables substituted (Docker uses only
    /// the meta ARGs, the ones before the first FROM, for this).
    pub fn expand_base(
        &self,
        escape: char,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, ParseError> {
        let base = expand_word(&self.base, escape, lookup)
            .map_err(|e| to_parse_error(&self.file, self.loc, &self.source, e))?;
        if base.trim().is_empty() {
            return Err(to_parse_error(
                &self.file,
                self.loc,
                &self.source,
                ExpandError {
                    message: format!(
                        "base name ({}) should not be blank: set the build argument it uses",
                        self.base
                    ),
                },
            ));
        }
        Ok(base)
    }

    /// The `--platform` value with variables substituted.
    pub fn expand_platform(
        &self,
        escape: char,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ParseError> {
        self.platform
            .as_deref()
            .map(|p| expand_word(p, escape, lookup))
            .transpose()
            .map_err(|e| to_parse_error(&self.file, self.loc, &self.source, e))
    }
}

impl Instruction {
    /// Returns a copy with variables substituted and quotes removed in the
    /// parts Docker substitutes in (see the module docs). Values that are
    /// validated at parse time (mount targets, EXPOSE ports) are validated
    /// again after substitution.
    pub fn expand(
        &self,
        escape: char,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Instruction, ParseError> {
        let perr = |e: ExpandError| to_parse_error(&self.file, self.loc, &self.source, e);
        let w = |s: &str| expand_word(s, escape, lookup).map_err(perr);
        let ow = |s: &Option<String>| s.as_deref().map(w).transpose();
        let kind = match &self.kind {
            Kind::Add(c) | Kind::Copy(c) => {
                let mut c = c.clone();
                c.sources = c.sources.iter().map(|s| w(s)).collect::<Result<_, _>>()?;
                c.dest = w(&c.dest)?;
                c.from = ow(&c.from)?;
                c.chown = ow(&c.chown)?;
                c.chmod = ow(&c.chmod)?;
                c.checksum = ow(&c.checksum)?;
                c.exclude = c.exclude.iter().map(|s| w(s)).collect::<Result<_, _>>()?;
                for h in &mut c.heredocs {
                    if h.expand {
                        h.content = expand_heredoc(&h.content, escape, lookup).map_err(perr)?;
                    }
                }
                if matches!(self.kind, Kind::Add(_)) {
                    Kind::Add(c)
                } else {
                    Kind::Copy(c)
                }
            }
            Kind::Env(pairs) => Kind::Env(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((w(k)?, w(v)?)))
                    .collect::<Result<_, ParseError>>()?,
            ),
            Kind::Label(pairs) => Kind::Label(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((w(k)?, w(v)?)))
                    .collect::<Result<_, ParseError>>()?,
            ),
            Kind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    for port in expand_words(p, escape, lookup).map_err(perr)? {
                        crate::parser::check_port(&port)
                            .map_err(|m| perr(ExpandError { message: m }))?;
                        out.push(port);
                    }
                }
                Kind::Expose(out)
            }
            Kind::StopSignal(s) => Kind::StopSignal(w(s)?),
            Kind::User(s) => Kind::User(w(s)?),
            Kind::Workdir(s) => Kind::Workdir(w(s)?),
            Kind::Volume(v) => Kind::Volume(v.iter().map(|s| w(s)).collect::<Result<_, _>>()?),
            Kind::Arg(decls) => Kind::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(crate::ast::ArgDecl {
                            name: d.name.clone(),
                            default: ow(&d.default)?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            Kind::Run(r) => {
                let mut r = r.clone();
                for m in &mut r.mounts {
                    m.target = w(&m.target)?;
                    m.source = ow(&m.source)?;
                    m.from = ow(&m.from)?;
                    m.id = ow(&m.id)?;
                    m.env = ow(&m.env)?;
                    crate::parser::check_mount(m).map_err(|m| perr(ExpandError { message: m }))?;
                }
                Kind::Run(r)
            }
            other => other.clone(),
        };
        Ok(Instruction {
            kind,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("x  y".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> Result<String, ExpandError> {
        expand_word(s, '\\', &env)
    }

    #[test]
    fn simple_and_braced() {
        assert_eq!(x("$A").unwrap(), "alpha");
        assert_eq!(x("${A}").unwrap(), "alpha");
        assert_eq!(x("pre-${A}-post").unwrap(), "pre-alpha-post");
        assert_eq!(x("$A.txt").unwrap(), "alpha.txt");
        assert_eq!(x("$UNSET").unwrap(), "");
        assert_eq!(x("cost $ 5").unwrap(), "cost $ 5");
        assert_eq!(x("end$").unwrap(), "end$");
    }

    #[test]
    fn defaults_and_alternatives() {
        assert_eq!(x("${UNSET:-dflt}").unwrap(), "dflt");
        assert_eq!(x("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(x("${EMPTY-dflt}").unwrap(), "");
        assert_eq!(x("${UNSET-dflt}").unwrap(), "dflt");
        assert_eq!(x("${A:-dflt}").unwrap(), "alpha");
        assert_eq!(x("${A:+alt}").unwrap(), "alt");
        assert_eq!(x("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(x("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(x("${UNSET+alt}").unwrap(), "");
        assert_eq!(x("${UNSET:-${A}}").unwrap(), "alpha");
        assert_eq!(x("${UNSET:-'a b'}").unwrap(), "a b");
    }

    #[test]
    fn required_errors() {
        assert_eq!(
            x("${UNSET:?must set it}").unwrap_err().message,
            "UNSET: must set it"
        );
        assert_eq!(
            x("${EMPTY:?}").unwrap_err().message,
            "EMPTY: is not allowed to be unset or empty"
        );
        assert_eq!(x("${EMPTY?oops}").unwrap(), "");
        assert_eq!(x("${UNSET?oops}").unwrap_err().message, "UNSET: oops");
        assert_eq!(x("${A:?x}").unwrap(), "alpha");
    }

    #[test]
    fn bad_substitutions() {
        assert!(x("${A").unwrap_err().message.contains("missing '}'"));
        assert!(x("${}").unwrap_err().message.contains("bad substitution"));
        assert!(x("${A%x}")
            .unwrap_err()
            .message
            .contains("unsupported modifier"));
        assert!(x("${A:-x").unwrap_err().message.contains("missing '}'"));
        let deep = "${A:-".repeat(200);
        assert!(x(&deep).is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'").unwrap(), "$A");
        assert_eq!(x("\"$A b\"").unwrap(), "alpha b");
        assert_eq!(x("\\$A").unwrap(), "$A");
        assert_eq!(x("a\\ b").unwrap(), "a b");
        assert_eq!(x("\"a\\\"b\"").unwrap(), "a\"b");
        assert_eq!(x("\"a\\nb\"").unwrap(), "a\\nb");
        assert_eq!(x("it'\"'s").unwrap(), "it\"s");
        assert!(x("'open")
            .unwrap_err()
            .message
            .contains("unterminated single quote"));
        assert!(x("\"open")
            .unwrap_err()
            .message
            .contains("unterminated double quote"));
        // backtick escape
        assert_eq!(expand_word("`$A", '`', &env).unwrap(), "$A");
        assert_eq!(expand_word("C:\\dir", '`', &env).unwrap(), "C:\\dir");
    }

    #[test]
    fn word_splitting() {
        let ws = |s: &str| expand_words(s, '\\', &env).unwrap();
        assert_eq!(ws("80 443/tcp"), vec!["80", "443/tcp"]);
        assert_eq!(ws("$SP z"), vec!["x", "y", "z"]);
        assert_eq!(ws("\"$SP\" z"), vec!["x  y", "z"]);
        assert_eq!(ws("'' a"), vec!["", "a"]);
        assert_eq!(ws("  "), Vec::<String>::new());
        assert_eq!(ws("$UNSET a"), vec!["a"]);
    }

    #[test]
    fn heredoc_expansion_keeps_quotes() {
        let h = |s: &str| expand_heredoc(s, '\\', &env).unwrap();
        assert_eq!(h("say \"$A\" 'now'\n"), "say \"alpha\" 'now'\n");
        assert_eq!(h("\\$A \\n\n"), "$A \\n\n");
    }
}
