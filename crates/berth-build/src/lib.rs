//! `berth-build` owns the pure, engine-free part of `berth build`: parsing a
//! Dockerfile (parser directives, line continuations, heredocs, exec/shell
//! forms, flags) into a typed AST ([`ast`]), Docker-compatible variable
//! substitution ([`expand`]), and `.dockerignore` matching ([`dockerignore`]).
//! It does no I/O and has no async or engine dependencies; executing the AST
//! is someone else's job.

pub mod ast;
pub mod context;
pub mod dockerignore;
pub mod error;
pub mod executor;
pub mod expand;
pub mod parser;

pub use ast::*;
pub use dockerignore::{DockerIgnore, DockerIgnoreError};
pub use error::ParseError;
pub use expand::{expand_heredoc, expand_word, expand_words, ExpandError};
pub use parser::{parse, parse_duration};

#[cfg(test)]
mod tests;
