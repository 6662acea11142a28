//! The typed model of a parsed Dockerfile.
//!
//! Values are stored *unexpanded*: variable references (`$VAR`) and shell
//! quotes are kept exactly as written. Call [`Instruction::expand`] (and
//! [`Stage::expand_base`]) with the build's variables to get the values Docker
//! would use; that step substitutes variables and removes quotes in exactly the
//! instructions Docker substitutes in.

use std::time::Duration;

/// A position in the Dockerfile, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub column: usize,
}

/// A whole parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The `# syntax=` parser directive, if present.
    pub syntax: Option<String>,
    /// The escape character (`\` unless `# escape=` chose `` ` ``).
    pub escape: char,
    /// `ARG` declarations that come before the first `FROM`.
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// One build stage: a `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// 0-based position of the stage in the file.
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// The base image reference as written (unexpanded).
    pub base: String,
    /// The `--platform` flag value as written (unexpanded).
    pub platform: Option<String>,
    pub loc: Loc,
    /// The file name given to [`crate::parse`], for error messages.
    pub file: String,
    /// The `FROM` line with continuations joined.
    pub source: String,
    pub instructions: Vec<Instruction>,
}

/// One instruction after `FROM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Where the instruction keyword starts.
    pub loc: Loc,
    /// The last line the instruction occupies (continuations and heredocs included).
    pub end_line: usize,
    /// The file name given to [`crate::parse`], for error messages.
    pub file: String,
    /// The instruction text with line continuations joined (escape character
    /// and newline removed; comment and empty lines inside it dropped). When
    /// the instruction has heredocs, their body and terminator lines follow,
    /// each preceded by `\n`, exactly as written.
    pub source: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Run(Run),
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    /// Always exec (JSON) form.
    Shell(Vec<String>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Env(Vec<(String, String)>),
    Add(CopySpec),
    Copy(CopySpec),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    Onbuild(Box<Instruction>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Maintainer(String),
}

impl Kind {
    /// The instruction keyword in upper case (`"RUN"`, `"COPY"`, ...).
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Shell(_) => "SHELL",
            Kind::Label(_) => "LABEL",
            Kind::Expose(_) => "EXPOSE",
            Kind::Env(_) => "ENV",
            Kind::Add(_) => "ADD",
            Kind::Copy(_) => "COPY",
            Kind::Volume(_) => "VOLUME",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Arg(_) => "ARG",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Exec form (`["prog", "arg"]`, run directly) or shell form (run by the
/// stage's `SHELL`, default `/bin/sh -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// For a heredoc-only RUN (`RUN <<EOF`) this is `Shell("<<EOF")`; the
    /// executor decides how to feed [`Run::heredocs`] to the shell.
    pub cmd: CommandForm,
    pub mounts: Vec<RunMount>,
    pub network: Option<RunNetwork>,
    /// `--security=insecure|sandbox`, as written.
    pub security: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunNetwork {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// One `RUN --mount=...` option. Values are unexpanded until
/// [`Instruction::expand`]; they are validated at parse time when they
/// contain no `$`, and always after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// Cleaned absolute path inside the container (never `/`). For secrets
    /// without `target` it is `/run/secrets/<id>`; for ssh
    /// `/run/buildkit/ssh_agent.0`.
    pub target: String,
    /// For bind/cache: a path relative to the source (context or `from`),
    /// cleaned, never escaping it with `..`. A leading `/` is accepted and means
    /// the root of the source (as in BuildKit); it is removed.
    pub source: Option<String>,
    pub from: Option<String>,
    /// Cache/secret/ssh id. For cache mounts without `id` this is the target;
    /// for secrets without `id` the target's base name.
    pub id: Option<String>,
    pub readonly: bool,
    /// Cache sharing mode: `shared`, `private` or `locked`.
    pub sharing: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// Secret exposed as this environment variable.
    pub env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Source paths (heredoc sources are in `heredocs`, not here).
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub heredocs: Vec<Heredoc>,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only.
    pub keep_git_dir: bool,
    pub exclude: Vec<String>,
    /// COPY only.
    pub parents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args..]` or `["CMD-SHELL", command]`.
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body; every line ends with `\n` (empty body = empty string).
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"` / `<<'EOF'`).
    pub expand: bool,
    /// `<<-EOF`: leading tabs were stripped from body lines and terminator.
    pub strip_tabs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}
