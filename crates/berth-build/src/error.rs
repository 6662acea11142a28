//! Parse errors with position, source excerpt and "did you mean" suggestions.

use std::fmt;

/// A Dockerfile error.
///
/// `Display` renders three lines:
///
/// ```text
/// Dockerfile:1: unknown instruction "FORM" — did you mean FROM?
///   | FORM python:3.8-slim-buster
///   | ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    pub suggestion: Option<String>,
    /// The text of line `line`, without its newline.
    pub source_line: String,
}

impl ParseError {
    /// The first line of the rendering: `file:line: message[ — did you mean X?]`.
    pub fn headline(&self) -> String {
        match &self.suggestion {
            Some(s) => format!(
                "{}:{}: {} — did you mean {}?",
                self.file, self.line, self.message, s
            ),
            None => format!("{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        writeln!(f, "  | {}", self.source_line)?;
        // Keep tabs so the caret lines up under tab-indented text.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "  | {pad}^")
    }
}

impl std::error::Error for ParseError {}

/// Restricted Damerau–Levenshtein (optimal string alignment) distance.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// The closest candidate to `word` (compared case-insensitively): a candidate
/// that `word` is a prefix of (at least 2 characters), else the one with the
/// smallest edit distance if that distance is at most 2 and less than the
/// word's length.
pub(crate) fn suggest(word: &str, candidates: &[&str]) -> Option<String> {
    let w = word.to_ascii_uppercase();
    if w.chars().count() > 40 {
        return None;
    }
    if w.len() >= 2 {
        if let Some(c) = candidates
            .iter()
            .find(|c| c.to_ascii_uppercase().starts_with(&w))
        {
            return Some((*c).to_string());
        }
    }
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&w, &c.to_ascii_uppercase());
        let better = match best {
            None => true,
            Some((bd, _)) => d < bd,
        };
        if better {
            best = Some((d, c));
        }
    }
    match best {
        Some((d, c)) if d <= 2 && d < w.chars().count() => Some(c.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_transposition_as_one() {
        assert_eq!(edit_distance("FORM", "FROM"), 1);
        assert_eq!(edit_distance("RUN", "RUN"), 0);
        assert_eq!(edit_distance("", "ABC"), 3);
    }

    #[test]
    fn suggestions() {
        let c = ["FROM", "WORKDIR", "RUN", "COPY"];
        assert_eq!(suggest("FORM", &c).as_deref(), Some("FROM"));
        assert_eq!(suggest("work", &c).as_deref(), Some("WORKDIR"));
        assert_eq!(suggest("RNU", &c).as_deref(), Some("RUN"));
        assert_eq!(suggest("XYZZY", &c), None);
    }

    #[test]
    fn display_has_caret_under_column() {
        let e = ParseError {
            file: "Dockerfile".into(),
            line: 2,
            column: 5,
            message: "boom".into(),
            suggestion: None,
            source_line: "RUN --x".into(),
        };
        assert_eq!(e.to_string(), "Dockerfile:2: boom\n  | RUN --x\n  |     ^");
    }
}
