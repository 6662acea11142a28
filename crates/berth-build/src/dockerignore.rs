//! `.dockerignore` matching with Docker's semantics.
//!
//! Each line is a pattern; a line whose first character is `#` is a comment
//! and blank lines are skipped. Patterns are trimmed, cleaned like Go's
//! `filepath.Clean`, and a leading `/` is dropped, so `/foo`, `./foo` and
//! `foo/` all mean `foo`. `!` at the start makes an exception. Glob syntax:
//! `*` matches any run of characters except `/`, `?` one character except
//! `/`, `[...]` a character class (`^` negates, `a-z` ranges), `\` escapes the
//! next character, `**` matches any number of directories (`**/x` matches `x`
//! at any depth, a trailing `**` everything below). A pattern that matches a
//! directory excludes everything under it (a path is tested, and so is each of
//! its parent directories). The last pattern that matches decides.

use std::fmt;

use crate::parser::clean_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerIgnoreError {
    /// 1-based line of `.dockerignore`.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DockerIgnoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".dockerignore:{}: {}", self.line, self.message)
    }
}

impl std::error::Error for DockerIgnoreError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    /// `**` at the end: anything, including `/`.
    StarStarEnd,
    /// `**` elsewhere (a following `/` is absorbed): empty, or anything ending in `/`.
    StarStarDir,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    exclusion: bool,
    toks: Vec<Tok>,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

fn compile(p: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    toks.push(if i >= chars.len() {
                        Tok::StarStarEnd
                    } else {
                        Tok::StarStarDir
                    });
                } else {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::Any),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                }
                None => return Err(format!("pattern {p:?} ends with an escape character \\")),
            },
            '[' => {
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while i < chars.len() {
                    let mut lo = chars[i];
                    i += 1;
                    if lo == ']' {
                        closed = true;
                        break;
                    }
                    if lo == '\\' {
                        lo = *chars
                            .get(i)
                            .ok_or_else(|| format!("unterminated [ in pattern {p:?}"))?;
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        i += 1;
                        hi = chars[i];
                        i += 1;
                        if hi == '\\' {
                            hi = *chars
                                .get(i)
                                .ok_or_else(|| format!("unterminated [ in pattern {p:?}"))?;
                            i += 1;
                        }
                        if hi < lo {
                            return Err(format!(
                                "character range {lo}-{hi} runs backwards in pattern {p:?}"
                            ));
                        }
                    }
                    ranges.push((lo, hi));
                }
                if !closed {
                    return Err(format!("unterminated [ in pattern {p:?}: add a closing ]"));
                }
                if ranges.is_empty() {
                    return Err(format!("empty character class [] in pattern {p:?}"));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            other => toks.push(Tok::Lit(other)),
        }
    }
    Ok(toks)
}

/// Whether `toks` matches all of `s`. Dynamic programming, so no pattern can
/// make it exponential.
fn matches(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    // next[j] = toks[i+1..] matches s[j..]
    let mut next = vec![false; n + 1];
    next[n] = true;
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        match tok {
            Tok::Star => {
                for j in (0..=n).rev() {
                    cur[j] = next[j] || (j < n && s[j] != '/' && cur[j + 1]);
                }
            }
            Tok::StarStarEnd => {
                for j in (0..=n).rev() {
                    cur[j] = next[j] || (j < n && cur[j + 1]);
                }
            }
            Tok::StarStarDir => {
                // any k >= j with s[k] == '/' and next[k+1]
                let mut any = false;
                for j in (0..=n).rev() {
                    if j < n && s[j] == '/' && next[j + 1] {
                        any = true;
                    }
                    cur[j] = next[j] || any;
                }
            }
            Tok::Any => {
                for j in 0..n {
                    cur[j] = s[j] != '/' && next[j + 1];
                }
            }
            Tok::Lit(c) => {
                for j in 0..n {
                    cur[j] = s[j] == *c && next[j + 1];
                }
            }
            Tok::Class { negated, ranges } => {
                for j in 0..n {
                    let inside = ranges.iter().any(|(lo, hi)| *lo <= s[j] && s[j] <= *hi);
                    cur[j] = inside != *negated && next[j + 1];
                }
            }
        }
        next = cur;
    }
    next[0]
}

fn normalize(path: &str) -> String {
    let c = clean_path(path);
    let c = c.trim_start_matches('/');
    if c.is_empty() {
        ".".to_string()
    } else {
        c.to_string()
    }
}

impl Pattern {
    fn matches_path(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        if matches(&self.toks, &chars) {
            return true;
        }
        // Parent directories.
        chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .any(|(i, _)| matches(&self.toks, &chars[..i]))
    }
}

impl DockerIgnore {
    /// Parses `.dockerignore` text. Errors name the line: a bare `!`, an
    /// unterminated `[`, a backwards range or a trailing `\`.
    pub fn parse(text: &str) -> Result<DockerIgnore, DockerIgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(DockerIgnoreError {
                        line,
                        message: "illegal exclusion pattern \"!\": write the path to re-include after the !".into(),
                    });
                }
            }
            let text = normalize(p);
            let toks = compile(&text).map_err(|message| DockerIgnoreError { line, message })?;
            patterns.push(Pattern {
                text,
                exclusion,
                toks,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// The cleaned patterns in order, with whether each is an `!` exception.
    pub fn patterns(&self) -> impl Iterator<Item = (&str, bool)> {
        self.patterns.iter().map(|p| (p.text.as_str(), p.exclusion))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// excluded from the build context.
    pub fn excluded(&self, rel_path: &str) -> bool {
        let path = normalize(rel_path);
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could flip the current answer matters.
            if p.exclusion != excluded {
                continue;
            }
            if p.matches_path(&path) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether a walker must look inside the excluded directory `dir` for `!` exceptions.
    /// Docker's rule (what the docker CLI sends): only when an exception pattern's text
    /// starts with `dir/` — so `!vendor/keep.txt` re-includes `vendor/keep.txt` from an
    /// excluded `vendor`, but `!*/keep.txt` does not (the directory is skipped whole).
    pub fn may_contain_exceptions(&self, dir: &str) -> bool {
        let dir = normalize(dir);
        if dir == "." {
            return self.patterns.iter().any(|p| p.exclusion);
        }
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.text).starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn di(s: &str) -> DockerIgnore {
        DockerIgnore::parse(s).unwrap()
    }

    #[test]
    fn docs_example_temp_patterns() {
        let d = di("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(d.excluded("somedir/temporary.txt"));
        assert!(d.excluded("somedir/temp"));
        assert!(d.excluded("somedir/temp/inner.txt"));
        assert!(d.excluded("somedir/subdir/temporary.txt"));
        assert!(d.excluded("tempa"));
        assert!(d.excluded("tempb"));
        assert!(!d.excluded("temp"));
        assert!(!d.excluded("temporary.txt"));
        assert!(!d.excluded("a/b/c/temp.txt"));
        assert!(!d.excluded("# comment"));
    }

    #[test]
    fn double_star() {
        let d = di("**/*.go");
        assert!(d.excluded("main.go"));
        assert!(d.excluded("a/b/c.go"));
        assert!(!d.excluded("a/b/c.rs"));
        let d = di("foo/**");
        assert!(d.excluded("foo/x"));
        assert!(d.excluded("foo/x/y"));
        let d = di("a/**/b");
        assert!(d.excluded("a/b"));
        assert!(d.excluded("a/x/y/b"));
        assert!(!d.excluded("a/xb"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        let d = di("*.md\n!README.md");
        assert!(d.excluded("CHANGES.md"));
        assert!(!d.excluded("README.md"));

        let d = di("*.md\n!README*.md\nREADME-secret.md");
        assert!(d.excluded("README-secret.md"));
        assert!(!d.excluded("README-public.md"));
        assert!(d.excluded("other.md"));

        let d = di("*.md\nREADME-secret.md\n!README*.md");
        assert!(!d.excluded("README-secret.md"));
        assert!(d.excluded("other.md"));
    }

    #[test]
    fn include_only_with_star_then_exceptions() {
        let d = di("*\n!src\n!Cargo.toml");
        assert!(d.excluded("target"));
        assert!(d.excluded("target/debug/x"));
        assert!(!d.excluded("src"));
        assert!(!d.excluded("src/main.rs"));
        assert!(!d.excluded("Cargo.toml"));
        assert!(d.may_contain_exceptions("."));
        assert!(d.may_contain_exceptions("src"));
        assert!(!d.may_contain_exceptions("target"));
    }

    #[test]
    fn directory_pattern_excludes_contents_and_cleaning() {
        let d = di("/node_modules/\n./build\nlogs//\n");
        assert!(d.excluded("node_modules"));
        assert!(d.excluded("node_modules/a/b.js"));
        assert!(d.excluded("build/out.o"));
        assert!(d.excluded("logs/today.log"));
        assert!(d.excluded("./logs/today.log"));
        assert!(!d.excluded("src/node_modules"));
        assert_eq!(
            d.patterns().map(|(p, _)| p).collect::<Vec<_>>(),
            ["node_modules", "build", "logs"]
        );
    }

    #[test]
    fn exception_inside_excluded_dir() {
        let d = di("vendor\n!vendor/keep");
        assert!(d.excluded("vendor/drop/x"));
        assert!(!d.excluded("vendor/keep"));
        assert!(!d.excluded("vendor/keep/y"));
        assert!(d.may_contain_exceptions("vendor"));
        assert!(!d.may_contain_exceptions("other"));
        assert!(!d.may_contain_exceptions("vendor/drop"));
        // Docker's rule: only an exception written under the directory makes a walker look
        // inside it; `!**/keep` and `!*/keep` do not (docker skips `vendor` whole).
        let d = di("vendor\n!**/keep");
        assert!(!d.may_contain_exceptions("vendor/drop"));
        assert!(!di("vendor\n!*/keep").may_contain_exceptions("vendor"));
        assert!(!di("vendor").may_contain_exceptions("vendor"));
    }

    #[test]
    fn classes_and_escapes() {
        let d = di("file[0-9].txt\n[^a]x\nlit\\*star");
        assert!(d.excluded("file7.txt"));
        assert!(!d.excluded("filex.txt"));
        assert!(d.excluded("bx"));
        assert!(!d.excluded("ax"));
        assert!(d.excluded("lit*star"));
        assert!(!d.excluded("litXstar"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = DockerIgnore::parse("ok\n!\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e
            .to_string()
            .starts_with(".dockerignore:2: illegal exclusion pattern"));
        let e = DockerIgnore::parse("a[bc").unwrap_err();
        assert_eq!(
            e.to_string(),
            ".dockerignore:1: unterminated [ in pattern \"a[bc\": add a closing ]"
        );
        assert!(DockerIgnore::parse("[z-a]").is_err());
        assert!(DockerIgnore::parse("x\\").is_err());
    }

    #[test]
    fn comment_only_in_first_column() {
        let d = di("  #notacomment\n");
        assert!(d.excluded("#notacomment"));
    }
}
