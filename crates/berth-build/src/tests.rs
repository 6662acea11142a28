//! Parser tests: the AST for real Dockerfiles, every instruction, and the
//! exact headline of every error.

use std::time::Duration;

use crate::*;

fn p(text: &str) -> Dockerfile {
    match parse(text, "Dockerfile") {
        Ok(d) => d,
        Err(e) => panic!("unexpected error:\n{e}"),
    }
}

fn headline(text: &str) -> String {
    match parse(text, "Dockerfile") {
        Ok(d) => panic!("expected an error, got {d:?}"),
        Err(e) => e.headline(),
    }
}

/// The kinds of the first stage's instructions after a `FROM scratch` line.
fn kinds(body: &str) -> Vec<Kind> {
    let d = p(&format!("FROM scratch\n{body}"));
    d.stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect()
}

fn one(body: &str) -> Kind {
    let mut k = kinds(body);
    assert_eq!(k.len(), 1, "{k:?}");
    k.remove(0)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const MULTI_STAGE: &str = r#"# syntax=docker/dockerfile:1
ARG RUST_VERSION=1.80
ARG APP

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim AS Builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release && \
    cp target/release/app /app

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="app" version=1
ENV APP_HOME=/srv PATH=/srv/bin:$PATH
COPY --from=builder --chown=app:app --chmod=0755 /app /srv/bin/app
EXPOSE 8080/tcp 9090
USER app
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -f http://localhost:8080/ || exit 1
ENTRYPOINT ["/srv/bin/app"]
CMD ["--port", "8080"]
"#;

#[test]
fn realistic_multi_stage_dockerfile() {
    let d = p(MULTI_STAGE);
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.escape, '\\');
    assert_eq!(
        d.meta_args,
        vec![
            ArgDecl {
                name: "RUST_VERSION".into(),
                default: Some("1.80".into())
            },
            ArgDecl {
                name: "APP".into(),
                default: None
            }
        ]
    );
    assert_eq!(d.stages.len(), 2);
    let b = &d.stages[0];
    assert_eq!(b.index, 0);
    assert_eq!(b.name.as_deref(), Some("builder"));
    assert_eq!(b.base, "rust:${RUST_VERSION}-slim");
    assert_eq!(b.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(b.loc, Loc { line: 5, column: 1 });
    assert_eq!(b.instructions.len(), 3);
    assert_eq!(b.instructions[0].kind, Kind::Workdir("/src".into()));
    assert_eq!(
        b.instructions[1].kind,
        Kind::Copy(CopySpec {
            sources: s(&["Cargo.toml", "Cargo.lock"]),
            dest: "./".into(),
            ..Default::default()
        })
    );
    let run = &b.instructions[2];
    assert_eq!(run.loc, Loc { line: 8, column: 1 });
    assert_eq!(run.end_line, 11);
    assert_eq!(
        run.source,
        "RUN --mount=type=cache,target=/usr/local/cargo/registry     --mount=type=cache,target=/src/target,sharing=locked     cargo build --release &&     cp target/release/app /app"
    );
    let Kind::Run(r) = &run.kind else {
        panic!("{:?}", run.kind)
    };
    assert_eq!(
        r.cmd,
        CommandForm::Shell("cargo build --release &&     cp target/release/app /app".into())
    );
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].kind, MountKind::Cache);
    assert_eq!(r.mounts[0].target, "/usr/local/cargo/registry");
    assert_eq!(r.mounts[0].id.as_deref(), Some("/usr/local/cargo/registry"));
    assert!(!r.mounts[0].readonly);
    assert_eq!(r.mounts[1].sharing.as_deref(), Some("locked"));

    let rt = &d.stages[1];
    assert_eq!(rt.index, 1);
    assert_eq!(rt.name, None);
    assert_eq!(rt.base, "debian:bookworm-slim");
    let k: Vec<&Kind> = rt.instructions.iter().map(|i| &i.kind).collect();
    assert_eq!(
        k[0],
        &Kind::Label(pairs(&[
            ("org.opencontainers.image.title", "\"app\""),
            ("version", "1")
        ]))
    );
    assert_eq!(
        k[1],
        &Kind::Env(pairs(&[("APP_HOME", "/srv"), ("PATH", "/srv/bin:$PATH")]))
    );
    assert_eq!(
        k[2],
        &Kind::Copy(CopySpec {
            sources: s(&["/app"]),
            dest: "/srv/bin/app".into(),
            from: Some("builder".into()),
            chown: Some("app:app".into()),
            chmod: Some("0755".into()),
            ..Default::default()
        })
    );
    assert_eq!(k[3], &Kind::Expose(s(&["8080/tcp", "9090"])));
    assert_eq!(k[4], &Kind::User("app".into()));
    assert_eq!(
        k[5],
        &Kind::Healthcheck(Healthcheck {
            test: Some(s(&[
                "CMD-SHELL",
                "curl -f http://localhost:8080/ || exit 1"
            ])),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(5)),
            start_period: None,
            start_interval: None,
            retries: Some(3),
        })
    );
    assert_eq!(
        k[6],
        &Kind::Entrypoint(CommandForm::Exec(s(&["/srv/bin/app"])))
    );
    assert_eq!(k[7], &Kind::Cmd(CommandForm::Exec(s(&["--port", "8080"]))));
}

#[test]
fn every_simple_instruction() {
    assert_eq!(
        one("run echo hi"),
        Kind::Run(Run {
            cmd: CommandForm::Shell("echo hi".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
    assert_eq!(
        one("CMD echo hi"),
        Kind::Cmd(CommandForm::Shell("echo hi".into()))
    );
    assert_eq!(one("CMD []"), Kind::Cmd(CommandForm::Exec(vec![])));
    assert_eq!(
        one("ENTRYPOINT exec app"),
        Kind::Entrypoint(CommandForm::Shell("exec app".into()))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]"),
        Kind::Shell(s(&["/bin/bash", "-c"]))
    );
    assert_eq!(
        one("VOLUME /data /logs"),
        Kind::Volume(s(&["/data", "/logs"]))
    );
    assert_eq!(one("VOLUME [\"/my data\"]"), Kind::Volume(s(&["/my data"])));
    assert_eq!(one("USER 1000:1000"), Kind::User("1000:1000".into()));
    assert_eq!(one("WORKDIR /a b"), Kind::Workdir("/a b".into()));
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Kind::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        one("MAINTAINER Jane <j@x.org>"),
        Kind::Maintainer("Jane <j@x.org>".into())
    );
    assert_eq!(
        one("EXPOSE 80 443/udp 8000-8010/tcp $PORT"),
        Kind::Expose(s(&["80", "443/udp", "8000-8010/tcp", "$PORT"]))
    );
    assert_eq!(
        one("ARG A B=2 C="),
        Kind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "C".into(),
                default: Some(String::new())
            },
        ])
    );
    assert_eq!(
        one("ENV A=1 B=\"two words\" C=a\\ b"),
        Kind::Env(pairs(&[("A", "1"), ("B", "\"two words\""), ("C", "a\\ b")]))
    );
    assert_eq!(
        one("ENV LEGACY some value here"),
        Kind::Env(pairs(&[("LEGACY", "some value here")]))
    );
    assert_eq!(
        one("LABEL \"com.example\"=\"x y\""),
        Kind::Label(pairs(&[("\"com.example\"", "\"x y\"")]))
    );
    assert_eq!(
        one("LABEL legacy value"),
        Kind::Label(pairs(&[("legacy", "value")]))
    );
}

#[test]
fn run_flags() {
    let Kind::Run(r) =
        one("RUN --network=none --security=insecure --mount=type=secret,id=npmrc,required make")
    else {
        panic!()
    };
    assert_eq!(r.network, Some(RunNetwork::None));
    assert_eq!(r.security.as_deref(), Some("insecure"));
    assert_eq!(r.mounts[0].kind, MountKind::Secret);
    assert_eq!(r.mounts[0].id.as_deref(), Some("npmrc"));
    assert_eq!(r.mounts[0].target, "/run/secrets/npmrc");
    assert!(r.mounts[0].required);
    assert_eq!(r.cmd, CommandForm::Shell("make".into()));

    let Kind::Run(r) =
        one("RUN --mount=type=bind,from=node,source=/app/dist/../out,dst=/mnt/./out/ ls")
    else {
        panic!()
    };
    let m = &r.mounts[0];
    assert_eq!(m.kind, MountKind::Bind);
    assert!(m.readonly, "bind mounts are read-only by default");
    assert_eq!(m.source.as_deref(), Some("app/out"));
    assert_eq!(m.target, "/mnt/out");
    assert_eq!(m.from.as_deref(), Some("node"));

    let Kind::Run(r) = one("RUN --mount=type=tmpfs,target=/tmp,size=64m --mount=target=/x,rw true")
    else {
        panic!()
    };
    assert_eq!(r.mounts[0].size, Some(64 << 20));
    assert_eq!(r.mounts[1].kind, MountKind::Bind);
    assert!(!r.mounts[1].readonly);

    let Kind::Run(r) =
        one("RUN --mount=type=cache,target=/c,id=go-build,mode=0700,uid=1000,gid=1000 go build")
    else {
        panic!()
    };
    assert_eq!(r.mounts[0].mode, Some(0o700));
    assert_eq!(r.mounts[0].uid, Some(1000));
    assert_eq!(r.mounts[0].id.as_deref(), Some("go-build"));

    let Kind::Run(r) = one("RUN --mount=type=secret,env=TOKEN ./deploy") else {
        panic!()
    };
    assert_eq!(r.mounts[0].id.as_deref(), Some("TOKEN"));
    assert_eq!(r.mounts[0].target, "");
    let Kind::Run(r) = one("RUN --mount=type=secret,target=/etc/pass.txt cat /etc/pass.txt") else {
        panic!()
    };
    assert_eq!(r.mounts[0].id.as_deref(), Some("pass.txt"));
    let Kind::Run(r) = one("RUN --mount=type=ssh git clone x") else {
        panic!()
    };
    assert_eq!(r.mounts[0].target, "/run/buildkit/ssh_agent.0");
}

#[test]
fn mount_errors() {
    let h = |m: &str| headline(&format!("FROM a\nRUN --mount={m} true"));
    assert_eq!(h("type=nfs,target=/x"), "Dockerfile:2: unknown --mount type \"nfs\": valid types are bind, cache, tmpfs, secret, ssh");
    assert_eq!(h("type=cache,target=/x,colour=red"), format!("Dockerfile:2: unknown --mount option \"colour\": valid options are {}", "type, target (dst, destination), source (src), from, id, readonly (ro), rw, sharing, mode, uid, gid, required, size, env"));
    assert_eq!(h("type=cache,target=rel"), "Dockerfile:2: --mount target \"rel\" must be an absolute path in the container, e.g. target=/root/.cache");
    assert_eq!(
        h("type=cache,target=/a/.."),
        "Dockerfile:2: --mount target can not be / (the root of the container)"
    );
    assert_eq!(h("type=cache,target=/c,id=../../etc"), "Dockerfile:2: invalid --mount id \"../../etc\": an id must be non-empty and contain no '..' component, backslash or NUL");
    assert_eq!(h("type=bind,source=../secret,target=/s"), "Dockerfile:2: --mount source \"../secret\" escapes its source with '..': use a path inside the build context or stage");
    assert_eq!(h("type=bind,source=a/../../b,target=/s"), "Dockerfile:2: --mount source \"a/../../b\" escapes its source with '..': use a path inside the build context or stage");
    assert_eq!(
        h("type=cache"),
        "Dockerfile:2: --mount needs target=<absolute path in the container>"
    );
    assert_eq!(
        h("type=cache,target=/c,sharing=maybe"),
        "Dockerfile:2: invalid --mount sharing=\"maybe\": use shared, private or locked"
    );
    assert_eq!(
        h("type=cache,target=/c,mode=999"),
        "Dockerfile:2: invalid --mount mode=\"999\": must be an octal number like 0755"
    );
    assert_eq!(
        h("type=secret"),
        "Dockerfile:2: secret --mount needs id=<secret id> or target=<path>"
    );
}

#[test]
fn copy_and_add_flags() {
    assert_eq!(
        one("COPY --link --parents --exclude=*.tmp --exclude=.git a b /dst/"),
        Kind::Copy(CopySpec {
            sources: s(&["a", "b"]),
            dest: "/dst/".into(),
            link: true,
            parents: true,
            exclude: s(&["*.tmp", ".git"]),
            ..Default::default()
        })
    );
    assert_eq!(
        one("ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y.tgz /y"),
        Kind::Add(CopySpec {
            sources: s(&["https://x/y.tgz"]),
            dest: "/y".into(),
            checksum: Some("sha256:abc".into()),
            keep_git_dir: true,
            ..Default::default()
        })
    );
    assert_eq!(
        one("COPY [\"my file\", \"/dst dir/\"]"),
        Kind::Copy(CopySpec {
            sources: s(&["my file"]),
            dest: "/dst dir/".into(),
            ..Default::default()
        })
    );
    assert_eq!(
        headline("FROM a\nADD --from=b x y"),
        "Dockerfile:2: unknown flag --from for ADD (valid flags: --chown, --chmod, --link, --checksum, --keep-git-dir, --exclude)"
    );
    assert_eq!(
        headline("FROM a\nCOPY --chmown=1 x y"),
        "Dockerfile:2: unknown flag --chmown for COPY (valid flags: --from, --chown, --chmod, --link, --parents, --exclude) — did you mean --chown?"
    );
    assert_eq!(
        headline("FROM a\nCOPY --link=maybe x y"),
        "Dockerfile:2: flag --link takes true or false (or no value, meaning true)"
    );
    assert_eq!(
        headline("FROM a\nCOPY --from x y"),
        "Dockerfile:2: flag --from needs a value: --from=<value>"
    );
    assert_eq!(
        headline("FROM a\nCOPY --from=a --from=b x y"),
        "Dockerfile:2: flag --from is given more than once"
    );
}

#[test]
fn unknown_flag_on_run_points_at_flag() {
    let e = parse("FROM a\nRUN --mout=type=cache,target=/x true", "Dockerfile").unwrap_err();
    assert_eq!(
        e.headline(),
        "Dockerfile:2: unknown flag --mout for RUN (valid flags: --mount, --network, --security) — did you mean --mount?"
    );
    assert_eq!(e.column, 5);
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: unknown flag --mout for RUN (valid flags: --mount, --network, --security) — did you mean --mount?\n  | RUN --mout=type=cache,target=/x true\n  |     ^"
    );
}

#[test]
fn continuations_skip_comments_and_blank_lines() {
    let d = p("FROM a\nRUN apt-get update \\\n# a comment inside\n\n    && apt-get install -y \\\n      curl\nRUN next");
    let ins = &d.stages[0].instructions;
    assert_eq!(ins.len(), 2);
    assert_eq!(
        ins[0].kind,
        Kind::Run(Run {
            cmd: CommandForm::Shell("apt-get update     && apt-get install -y       curl".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
    assert_eq!(ins[0].end_line, 6);
    assert_eq!(ins[1].loc.line, 7);
}

#[test]
fn continuation_with_trailing_whitespace_and_at_eof() {
    let k = kinds("RUN a \\   \n  b\nRUN c \\");
    assert_eq!(k.len(), 2);
    let Kind::Run(r) = &k[0] else { panic!() };
    assert_eq!(r.cmd, CommandForm::Shell("a   b".into()));
    let Kind::Run(r) = &k[1] else { panic!() };
    assert_eq!(r.cmd, CommandForm::Shell("c".into()));
}

#[test]
fn crlf_and_bom_and_indentation() {
    let d = p("\u{feff}FROM a\r\n  RUN x \\\r\n  y\r\n");
    let ins = &d.stages[0].instructions[0];
    assert_eq!(ins.loc, Loc { line: 2, column: 3 });
    assert_eq!(ins.kind, one("RUN x   y"));
}

#[test]
fn directives() {
    let d = p("# syntax=docker/dockerfile:1.7\n# ESCAPE = `\nFROM windows\nRUN dir c:\\ `\n  /s");
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(d.escape, '`');
    let Kind::Run(r) = &d.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(r.cmd, CommandForm::Shell("dir c:\\   /s".into()));

    // After a blank line, a directive is just a comment.
    let d = p("\n# escape=`\nFROM a\nRUN x \\\n y");
    assert_eq!(d.escape, '\\');
    // An unknown directive is a comment and ends the directives.
    let d = p("# unknown=1\n# escape=`\nFROM a");
    assert_eq!(d.escape, '\\');
    // A comment line ends directives too.
    let d = p("# hello\n# syntax=x\nFROM a");
    assert_eq!(d.syntax, None);
    // After an instruction, too.
    let d = p("FROM a\n# escape=`\nRUN x \\\n y");
    assert_eq!(d.escape, '\\');
}

#[test]
fn directive_errors() {
    assert_eq!(
        headline("# escape=x\nFROM a"),
        "Dockerfile:1: invalid escape directive \"x\": the escape character must be \\ or `"
    );
    assert_eq!(
        headline("# syntax=a\n# syntax=b\nFROM a"),
        "Dockerfile:2: only one syntax parser directive can be used: remove this line"
    );
}

#[test]
fn heredocs() {
    let d = p("FROM a\nRUN <<EOF\napt-get update\necho \"$HOME\"\nEOF\nRUN next");
    let ins = &d.stages[0].instructions;
    let Kind::Run(r) = &ins[0].kind else { panic!() };
    assert_eq!(r.cmd, CommandForm::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "apt-get update\necho \"$HOME\"\n".into(),
            expand: true,
            strip_tabs: false
        }]
    );
    assert_eq!(ins[0].end_line, 5);
    assert_eq!(
        ins[0].source,
        "RUN <<EOF\napt-get update\necho \"$HOME\"\nEOF"
    );
    assert_eq!(ins[1].loc.line, 6);

    // <<- strips leading tabs from body and terminator; quoted delimiter = no expansion.
    let Kind::Run(r) = one("RUN python3 <<-'PY' > /out\n\tprint(1)\n\t\tx\n\tPY") else {
        panic!()
    };
    assert_eq!(r.cmd, CommandForm::Shell("python3 <<-'PY' > /out".into()));
    assert_eq!(r.heredocs[0].name, "PY");
    assert_eq!(r.heredocs[0].content, "print(1)\nx\n");
    assert!(!r.heredocs[0].expand);
    assert!(r.heredocs[0].strip_tabs);

    // Several heredocs on one line, read in order; empty body.
    let Kind::Copy(c) = one("COPY <<one <<\"two\" /etc/\nfirst\none\nsecond\ntwo") else {
        panic!()
    };
    assert_eq!(c.sources, Vec::<String>::new());
    assert_eq!(c.dest, "/etc/");
    assert_eq!(c.heredocs.len(), 2);
    assert_eq!(
        (
            c.heredocs[0].name.as_str(),
            c.heredocs[0].content.as_str(),
            c.heredocs[0].expand
        ),
        ("one", "first\n", true)
    );
    assert_eq!(
        (
            c.heredocs[1].name.as_str(),
            c.heredocs[1].content.as_str(),
            c.heredocs[1].expand
        ),
        ("two", "second\n", false)
    );

    let Kind::Copy(c) = one("COPY <<EOF /file\nEOF") else {
        panic!()
    };
    assert_eq!(c.heredocs[0].content, "");
    let Kind::Add(c) = one("ADD <<EOF foo.txt /bar\ninline\nEOF") else {
        panic!()
    };
    assert_eq!(c.sources, s(&["foo.txt"]));
    assert_eq!(c.heredocs[0].content, "inline\n");

    // Not heredocs: quoted, exec form, other instructions.
    let Kind::Run(r) = one("RUN echo \"<<NOT\"") else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    assert_eq!(
        one("RUN [\"<<EOF\"]"),
        Kind::Run(Run {
            cmd: CommandForm::Exec(s(&["<<EOF"])),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
    assert_eq!(
        one("RUN cat <<<word"),
        Kind::Run(Run {
            cmd: CommandForm::Shell("cat <<<word".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        })
    );
    // A heredoc after a continuation.
    let Kind::Run(r) = one("RUN cat \\\n  <<EOF\nbody\nEOF") else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "body\n");
}

#[test]
fn heredoc_expansion_only_for_copy_with_unquoted_delimiter() {
    let d =
        p("FROM a\nCOPY <<EOF <<'RAW' /x/\nv=$V \"q\"\nEOF\nv=$V\nRAW\nRUN <<EOF\necho $V\nEOF");
    let look = |n: &str| (n == "V").then(|| "1".to_string());
    let ins = &d.stages[0].instructions;
    let Kind::Copy(c) = ins[0].expand('\\', &look).unwrap().kind else {
        panic!()
    };
    assert_eq!(c.heredocs[0].content, "v=1 \"q\"\n");
    assert_eq!(c.heredocs[1].content, "v=$V\n");
    let Kind::Run(r) = ins[1].expand('\\', &look).unwrap().kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo $V\n");
}

#[test]
fn exec_vs_shell_form() {
    assert_eq!(
        one("CMD [\"a\", \"b c\"]"),
        Kind::Cmd(CommandForm::Exec(s(&["a", "b c"])))
    );
    assert_eq!(
        one("CMD  [ \"a\" ] "),
        Kind::Cmd(CommandForm::Exec(s(&["a"])))
    );
    // Not JSON-looking: shell form, as Docker does.
    assert_eq!(
        one("RUN [ -f /x ] && echo yes"),
        one("RUN [ -f /x ] && echo yes")
    );
    let Kind::Run(r) = one("RUN [ -f /x ] && echo yes") else {
        panic!()
    };
    assert_eq!(r.cmd, CommandForm::Shell("[ -f /x ] && echo yes".into()));
    let Kind::Run(r) = one("RUN [ \"$A\" = \"b\" ] && true") else {
        panic!()
    };
    assert_eq!(
        r.cmd,
        CommandForm::Shell("[ \"$A\" = \"b\" ] && true".into())
    );
    // Numbers are not strings: shell form.
    assert_eq!(
        one("CMD [1, 2]"),
        Kind::Cmd(CommandForm::Shell("[1, 2]".into()))
    );
}

#[test]
fn bad_exec_form_is_an_error() {
    assert_eq!(
        headline("FROM a\nCMD [\"python3\", \"app.py\""),
        "Dockerfile:2: CMD exec form is not a valid JSON array of strings (missing closing ]): write [\"executable\", \"arg\"] with double quotes, or drop the brackets for shell form"
    );
    assert_eq!(
        headline("FROM a\nENTRYPOINT ['app']"),
        "Dockerfile:2: ENTRYPOINT exec form is not a valid JSON array of strings (JSON strings need double quotes, not single quotes): write [\"executable\", \"arg\"] with double quotes, or drop the brackets for shell form"
    );
    assert!(headline("FROM a\nRUN [\"a\" \"b\"]")
        .starts_with("Dockerfile:2: RUN exec form is not a valid JSON array of strings ("));
}

#[test]
fn onbuild() {
    let Kind::Onbuild(inner) = one("ONBUILD COPY --chown=1 . /app") else {
        panic!()
    };
    assert_eq!(inner.loc, Loc { line: 2, column: 9 });
    assert_eq!(inner.source, "COPY --chown=1 . /app");
    assert_eq!(
        inner.kind,
        Kind::Copy(CopySpec {
            sources: s(&["."]),
            dest: "/app".into(),
            chown: Some("1".into()),
            ..Default::default()
        })
    );
    assert_eq!(
        headline("FROM a\nONBUILD ONBUILD RUN x"),
        "Dockerfile:2: chaining ONBUILD via ONBUILD ONBUILD isn't allowed"
    );
    assert_eq!(
        headline("FROM a\nONBUILD FROM b"),
        "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        headline("FROM a\nONBUILD MAINTAINER me"),
        "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        headline("FROM a\nONBUILD RUNN x"),
        "Dockerfile:2: unknown instruction \"RUNN\" — did you mean RUN?"
    );
    // ONBUILD content is not expanded.
    let d = p("FROM a\nONBUILD WORKDIR $X");
    let e = d.stages[0].instructions[0]
        .expand('\\', &|_| Some("v".into()))
        .unwrap();
    let Kind::Onbuild(i) = e.kind else { panic!() };
    assert_eq!(i.kind, Kind::Workdir("$X".into()));
}

#[test]
fn healthcheck_forms_and_errors() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Kind::Healthcheck(Healthcheck {
            test: Some(s(&["NONE"])),
            ..Default::default()
        })
    );
    assert_eq!(
        one("HEALTHCHECK --start-period=1m30s --start-interval=500ms CMD [\"/bin/check\", \"-q\"]"),
        Kind::Healthcheck(Healthcheck {
            test: Some(s(&["CMD", "/bin/check", "-q"])),
            start_period: Some(Duration::from_secs(90)),
            start_interval: Some(Duration::from_millis(500)),
            ..Default::default()
        })
    );
    assert_eq!(headline("FROM a\nHEALTHCHECK --interval=5 CMD true"), "Dockerfile:2: invalid HEALTHCHECK --interval=\"5\": missing unit in duration \"5\": use ns, us, ms, s, m or h");
    assert_eq!(headline("FROM a\nHEALTHCHECK --timeout=3x CMD true"), "Dockerfile:2: invalid HEALTHCHECK --timeout=\"3x\": unknown unit \"x\" in duration \"3x\": use ns, us, ms, s, m or h");
    assert_eq!(
        headline("FROM a\nHEALTHCHECK --interval=-1s CMD true"),
        "Dockerfile:2: invalid HEALTHCHECK --interval=\"-1s\": durations can not be negative"
    );
    assert_eq!(
        headline("FROM a\nHEALTHCHECK --interval=10ns CMD true"),
        "Dockerfile:2: invalid HEALTHCHECK --interval=\"10ns\": must be 0 or at least 1ms"
    );
    assert_eq!(
        headline("FROM a\nHEALTHCHECK --retries=-1 CMD true"),
        "Dockerfile:2: invalid HEALTHCHECK --retries=\"-1\": must be a whole number of at least 0"
    );
    assert_eq!(headline("FROM a\nHEALTHCHECK --intervall=1s CMD true"), "Dockerfile:2: unknown flag --intervall for HEALTHCHECK (valid flags: --interval, --timeout, --start-period, --start-interval, --retries) — did you mean --interval?");
    assert_eq!(
        headline("FROM a\nHEALTHCHECK curl x"),
        "Dockerfile:2: HEALTHCHECK must be followed by NONE or CMD <command>"
    );
    assert_eq!(
        headline("FROM a\nHEALTHCHECK NONE x"),
        "Dockerfile:2: HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        headline("FROM a\nHEALTHCHECK CMD"),
        "Dockerfile:2: HEALTHCHECK CMD requires a command"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("1..2s").is_err());
    assert!(parse_duration("99999999999999h").is_err());
}

#[test]
fn tutorial_typos() {
    let e = parse("FORM python:3.8-slim-buster\nWORKDIR /app\n", "Dockerfile").unwrap_err();
    assert_eq!(
        e.headline(),
        "Dockerfile:1: unknown instruction \"FORM\" — did you mean FROM?"
    );
    assert_eq!(e.suggestion.as_deref(), Some("FROM"));
    assert_eq!(
        e.to_string(),
        "Dockerfile:1: unknown instruction \"FORM\" — did you mean FROM?\n  | FORM python:3.8-slim-buster\n  | ^"
    );
    assert_eq!(
        headline("FROM python:3.8-slim-buster\n\nWORK /app\n"),
        "Dockerfile:3: unknown instruction \"WORK\" — did you mean WORKDIR?"
    );
    assert_eq!(
        headline("FROM a\nFOOBAR x"),
        "Dockerfile:2: unknown instruction \"FOOBAR\""
    );
}

#[test]
fn missing_from() {
    assert_eq!(
        headline(""),
        "Dockerfile:1: no FROM instruction: a Dockerfile needs at least one FROM <image>"
    );
    assert_eq!(
        headline("# just a comment\n\n"),
        "Dockerfile:1: no FROM instruction: a Dockerfile needs at least one FROM <image>"
    );
    assert_eq!(
        headline("ARG A\nARG B"),
        "Dockerfile:2: no FROM instruction: a Dockerfile needs at least one FROM <image>"
    );
    assert_eq!(
        headline("ARG A\nRUN echo\nFROM x"),
        "Dockerfile:2: RUN before the first FROM: a Dockerfile must start with FROM (only ARG and parser directives may come before it)"
    );
}

#[test]
fn from_errors() {
    assert_eq!(
        headline("FROM a AS b c"),
        "Dockerfile:1: FROM requires either one argument, or three: FROM <image> [AS <name>]"
    );
    assert_eq!(
        headline("FROM"),
        "Dockerfile:1: FROM requires either one argument, or three: FROM <image> [AS <name>]"
    );
    assert_eq!(
        headline("FROM a AS 1st"),
        "Dockerfile:1: invalid stage name \"1st\": a stage name must start with a letter and contain only letters, digits, '-', '_' and '.'"
    );
    assert_eq!(
        headline("FROM a AS build\nFROM b as BUILD"),
        "Dockerfile:2: duplicate stage name \"build\": it is already used by the stage on line 1"
    );
    assert_eq!(headline("FROM --plat=x a"), "Dockerfile:1: unknown flag --plat for FROM (valid flags: --platform) — did you mean --platform?");
}

#[test]
fn copy_from_stage_references() {
    // Earlier stages by name or index, and image references, are fine.
    let d = p("FROM a AS one\nFROM b\nCOPY --from=one /x /x\nCOPY --from=0 /y /y\nCOPY --from=nginx:latest /z /z\nRUN --mount=from=ONE,target=/m true");
    assert_eq!(d.stages[1].instructions.len(), 4);
    assert_eq!(
        headline("FROM a\nCOPY --from=1 /x /x\nFROM b"),
        "Dockerfile:2: COPY --from=1 refers to stage 1, but only stages before this one (none) can be used"
    );
    assert_eq!(
        headline("FROM a\nFROM b\nCOPY --from=5 /x /x"),
        "Dockerfile:3: COPY --from=5 refers to stage 5, but only stages before this one (0-0) can be used"
    );
    assert_eq!(
        headline("FROM a\nCOPY --from=later /x /x\nFROM b AS later"),
        "Dockerfile:2: COPY --from=later refers to stage \"later\", which is defined later (line 3): move that stage above this one"
    );
    assert_eq!(
        headline("FROM a AS self\nCOPY --from=self /x /x"),
        "Dockerfile:2: COPY --from=self refers to the current stage: a stage can not copy from itself"
    );
    assert_eq!(
        headline("FROM a\nRUN --mount=from=later,target=/m true\nFROM b AS later"),
        "Dockerfile:2: RUN --mount from=later refers to stage \"later\", which is defined later (line 3): move that stage above this one"
    );
}

#[test]
fn argument_errors() {
    assert_eq!(headline("FROM a\nCOPY onlyone"), "Dockerfile:2: COPY requires at least two arguments (a source and a destination), but only one was provided: COPY <src>... <dest>");
    assert_eq!(headline("FROM a\nADD"), "Dockerfile:2: ADD requires at least two arguments (a source and a destination), but none were provided: ADD <src>... <dest>");
    assert_eq!(
        headline("FROM a\nENV A"),
        "Dockerfile:2: ENV A has no value: write ENV A=<value> (or the legacy form ENV A <value>)"
    );
    assert_eq!(
        headline("FROM a\nENV =x"),
        "Dockerfile:2: ENV names can not be blank: \"=x\" starts with ="
    );
    assert_eq!(headline("FROM a\nENV A=1 B"), "Dockerfile:2: ENV syntax error: can't find = in \"B\"; it must be of the form <key>=<value>");
    assert_eq!(
        headline("FROM a\nLABEL"),
        "Dockerfile:2: LABEL requires at least one <key>=<value> pair"
    );
    assert_eq!(
        headline("FROM a\nLABEL a=1 =2"),
        "Dockerfile:2: LABEL names can not be blank: \"=2\" starts with ="
    );
    assert_eq!(
        headline("FROM a\nENV A=\"unterminated"),
        "Dockerfile:2: unterminated \" quote in ENV: add a closing \""
    );
    assert_eq!(
        headline("FROM a\nLABEL a='x"),
        "Dockerfile:2: unterminated ' quote in LABEL: add a closing '"
    );
    assert_eq!(headline("FROM a\nEXPOSE 80/tcpp"), "Dockerfile:2: invalid EXPOSE port \"80/tcpp\": expected <port>[/<protocol>] or <start>-<end>[/<protocol>] with ports 0-65535 and protocol tcp, udp or sctp");
    assert!(
        headline("FROM a\nEXPOSE 70000").starts_with("Dockerfile:2: invalid EXPOSE port \"70000\"")
    );
    assert!(
        headline("FROM a\nEXPOSE 90-80").starts_with("Dockerfile:2: invalid EXPOSE port \"90-80\"")
    );
    assert!(
        headline("FROM a\nEXPOSE http").starts_with("Dockerfile:2: invalid EXPOSE port \"http\"")
    );
    assert_eq!(
        headline("FROM a\nEXPOSE"),
        "Dockerfile:2: EXPOSE requires at least one port, e.g. EXPOSE 80/tcp"
    );
    assert_eq!(
        headline("FROM a\nSTOPSIGNAL"),
        "Dockerfile:2: STOPSIGNAL requires a signal, e.g. STOPSIGNAL SIGTERM"
    );
    assert_eq!(
        headline("FROM a\nSTOPSIGNAL   "),
        "Dockerfile:2: STOPSIGNAL requires a signal, e.g. STOPSIGNAL SIGTERM"
    );
    assert_eq!(
        headline("FROM a\nSHELL /bin/bash -c"),
        "Dockerfile:2: SHELL requires the arguments in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]"
    );
    assert_eq!(
        headline("FROM a\nVOLUME [\"\"]"),
        "Dockerfile:2: VOLUME paths can not be empty strings"
    );
    assert_eq!(
        headline("FROM a\nRUN"),
        "Dockerfile:2: RUN requires a command to run"
    );
    assert_eq!(
        headline("FROM a\nRUN --network=bridge x"),
        "Dockerfile:2: invalid --network=\"bridge\" for RUN: use default, none or host"
    );
    assert_eq!(
        headline("FROM a\nARG =1"),
        "Dockerfile:2: ARG names can not be blank: \"=1\" starts with ="
    );
    assert_eq!(
        headline("FROM a\nUSER"),
        "Dockerfile:2: USER requires a user name or UID, e.g. USER app"
    );
}

#[test]
fn unterminated_heredoc() {
    let e = parse("FROM a\nRUN <<EOF\necho hi\n", "Dockerfile").unwrap_err();
    assert_eq!(
        e.headline(),
        "Dockerfile:2: unterminated heredoc \"EOF\": end it with a line containing only EOF"
    );
    assert_eq!(
        headline("FROM a\nCOPY <<A <<B /x\na\nA\nb\n"),
        "Dockerfile:2: unterminated heredoc \"B\": end it with a line containing only B"
    );
}

#[test]
fn expansion_applies_to_the_right_instructions() {
    let d = p(r#"ARG BASE=alpine
FROM ${BASE}:3.19 AS b
ENV A=$V B="${V}-x" C='$V'
LABEL "k.$V"=v
EXPOSE $PORTS
USER $V
WORKDIR /w/$V
VOLUME $V /y
STOPSIGNAL SIG$V
ARG X=${V:-d}
COPY --from=$V --chown=$V:$V src-$V /dst/$V
ADD --chmod=$MODE x y
RUN --mount=type=cache,target=/c/$V echo $V
CMD echo $V
ENTRYPOINT ["$V"]
SHELL ["$V"]
HEALTHCHECK CMD $V
MAINTAINER $V
"#);
    let vars = |n: &str| match n {
        "V" => Some("v".to_string()),
        "PORTS" => Some("80 443/udp".to_string()),
        "MODE" => Some("0644".to_string()),
        _ => None,
    };
    let meta = |n: &str| (n == "BASE").then(|| "debian".to_string());
    assert_eq!(d.stages[0].expand_base('\\', &meta).unwrap(), "debian:3.19");
    let got: Vec<Kind> = d.stages[0]
        .instructions
        .iter()
        .map(|i| i.expand('\\', &vars).unwrap().kind)
        .collect();
    assert_eq!(
        got[0],
        Kind::Env(pairs(&[("A", "v"), ("B", "v-x"), ("C", "$V")]))
    );
    assert_eq!(got[1], Kind::Label(pairs(&[("k.v", "v")])));
    assert_eq!(got[2], Kind::Expose(s(&["80", "443/udp"])));
    assert_eq!(got[3], Kind::User("v".into()));
    assert_eq!(got[4], Kind::Workdir("/w/v".into()));
    assert_eq!(got[5], Kind::Volume(s(&["v", "/y"])));
    assert_eq!(got[6], Kind::StopSignal("SIGv".into()));
    assert_eq!(
        got[7],
        Kind::Arg(vec![ArgDecl {
            name: "X".into(),
            default: Some("v".into())
        }])
    );
    assert_eq!(
        got[8],
        Kind::Copy(CopySpec {
            sources: s(&["src-v"]),
            dest: "/dst/v".into(),
            from: Some("v".into()),
            chown: Some("v:v".into()),
            ..Default::default()
        })
    );
    let Kind::Add(a) = &got[9] else { panic!() };
    assert_eq!(a.chmod.as_deref(), Some("0644"));
    let Kind::Run(r) = &got[10] else { panic!() };
    assert_eq!(r.mounts[0].target, "/c/v");
    assert_eq!(r.cmd, CommandForm::Shell("echo $V".into()));
    // Untouched: CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER.
    for (i, ins) in d.stages[0].instructions.iter().enumerate().skip(11) {
        assert_eq!(got[i], ins.kind);
    }
}

#[test]
fn expansion_errors_are_parse_errors() {
    let d = p("FROM a\nWORKDIR ${DIR:?set DIR}\nEXPOSE $P\nRUN --mount=type=cache,target=$T true");
    let ins = &d.stages[0].instructions;
    let e = ins[0].expand('\\', &|_| None).unwrap_err();
    assert_eq!(e.headline(), "Dockerfile:2: DIR: set DIR");
    assert_eq!(e.source_line, "WORKDIR ${DIR:?set DIR}");
    let e = ins[1].expand('\\', &|_| Some("nope".into())).unwrap_err();
    assert!(e
        .headline()
        .starts_with("Dockerfile:3: invalid EXPOSE port \"nope\""));
    let e = ins[2]
        .expand('\\', &|_| Some("relative".into()))
        .unwrap_err();
    assert!(e
        .headline()
        .starts_with("Dockerfile:4: --mount target \"relative\" must be an absolute path"));
    let e = d.stages[0].expand_base('\\', &|_| None);
    assert!(e.is_ok());
    let d = p("ARG B\nFROM $B");
    assert_eq!(
        d.stages[0]
            .expand_base('\\', &|_| None)
            .unwrap_err()
            .headline(),
        "Dockerfile:2: base name ($B) should not be blank: set the build argument it uses"
    );
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const CORPUS: &[&str] = &[
    MULTI_STAGE,
    "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\nCOPY [\"a b\", \"c\"]\n",
    "FROM a\nRUN <<EOF\nx\nEOF\nCOPY <<-\"A\" <<B /d\n\ta\n\tA\nb\nB\nONBUILD RUN x\n",
    "FROM a AS b\nFROM b\nCOPY --from=b --link /x /y\nHEALTHCHECK --interval=1m30s CMD [\"x\"]\nENV A=\"${B:-c}\" D='e'\n",
];

const TOKENS: &[&str] = &[
    "\n",
    "\\\n",
    "\\",
    "`",
    "<<",
    "<<-",
    "EOF",
    "\"",
    "'",
    "[",
    "]",
    "${",
    "}",
    ":-",
    "$",
    "--",
    "=",
    "--mount=",
    "type=cache,target=/",
    "FROM ",
    "RUN ",
    "COPY ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "#",
    " ",
    "\t",
    ",",
    "..",
    "/",
    "AS ",
    "--from=",
    "\r",
    "é",
    "\u{0}",
    "# escape=`\n",
];

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut chars: Vec<char> = input.chars().collect();
    for _ in 0..=rng.below(8) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if !chars.is_empty() => {
                let end = (at + rng.below(10)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                for (k, c) in t.chars().enumerate() {
                    chars.insert(at + k, c);
                }
            }
            2 if !chars.is_empty() => {
                let a = rng.below(chars.len());
                let b = (a + rng.below(40)).min(chars.len());
                let piece: Vec<char> = chars[a..b].to_vec();
                for (k, c) in piece.into_iter().enumerate() {
                    chars.insert(at.min(chars.len()) + k, c);
                }
            }
            _ => {
                if at < chars.len() {
                    chars[at] = char::from(b' ' + (rng.below(95)) as u8);
                }
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let lookup = |n: &str| (n.len() & 1 == 0).then(|| format!("v{n}"));
    let mut parsed = 0;
    for round in 0..4000 {
        let base = CORPUS[round % CORPUS.len()];
        let input = mutate(&mut rng, base);
        if let Ok(d) = parse(&input, "Dockerfile") {
            parsed += 1;
            for st in &d.stages {
                let _ = st.expand_base(d.escape, &lookup);
                for ins in &st.instructions {
                    let _ = ins.expand(d.escape, &lookup);
                }
            }
        }
        let _ = expand_word(&input, '\\', &lookup);
        let _ = expand_words(&input, '`', &lookup);
        let _ = DockerIgnore::parse(&input)
            .map(|di| di.excluded("a/b/c") || di.may_contain_exceptions("a"));
    }
    // The mutations should leave a good share of inputs parseable, so the
    // test exercises more than the error paths.
    assert!(parsed > 200, "only {parsed} mutated inputs parsed");
}

#[test]
fn large_input_parses_in_linear_time() {
    // 20k instructions with continuations and heredocs: a quadratic parser
    // would take minutes here.
    let mut text = String::from("FROM a\n");
    for i in 0..5000 {
        text.push_str(&format!("RUN echo {i} \\\n  && true\nENV K{i}=v{i}\nCOPY <<EOF /f{i}\nline {i}\nEOF\nLABEL l{i}=x\n"));
    }
    let started = std::time::Instant::now();
    let d = p(&text);
    assert_eq!(d.stages[0].instructions.len(), 20000);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn misc_forms() {
    // fd-prefixed heredoc, lowercase keywords, escaped JSON.
    let Kind::Run(r) = one("run cat 3<<EOF\nx\nEOF") else {
        panic!()
    };
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(
        one("cmd [\"a\\\"b\", \"c\\\\d\"]"),
        Kind::Cmd(CommandForm::Exec(s(&["a\"b", "c\\d"])))
    );
    assert_eq!(
        headline("FROM a\nform b"),
        "Dockerfile:2: unknown instruction \"form\" — did you mean FROM?"
    );
    // A LABEL continued over lines yields all pairs.
    assert_eq!(
        one("LABEL a=1 \\\n      b=\"2 3\""),
        Kind::Label(pairs(&[("a", "1"), ("b", "\"2 3\"")]))
    );
    // Indented instruction: the error column points at the keyword.
    let e = parse("FROM a\n   BOGUS x", "Dockerfile").unwrap_err();
    assert_eq!(e.column, 4);
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: unknown instruction \"BOGUS\"\n  |    BOGUS x\n  |    ^"
    );
}
