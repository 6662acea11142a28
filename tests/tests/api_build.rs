//! `docker build` (classic builder protocol) against berthd: real builds from busybox, run
//! afterwards; cache hits and misses; .dockerignore; multi-stage; errors with their line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use std::path::Path;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// `docker build` with the classic builder; returns (success, stdout, stderr).
fn build(d: &Berthd, args: &[&str]) -> (bool, String, String) {
    let mut c = d.docker_cmd(&["build"]);
    c.args(args).env("DOCKER_BUILDKIT", "0");
    let o = c.output().expect("docker build");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn build_run_cache_and_dockerignore() {
    let Some(d) = Berthd::with_busybox("build_run_cache_and_dockerignore") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            (
                "Dockerfile",
                "FROM busybox\n\
                 ARG GREETING=hello\n\
                 ENV APP_HOME=/app\n\
                 WORKDIR $APP_HOME\n\
                 COPY . .\n\
                 RUN echo \"$GREETING from run\" > /app/run.txt && ls /app > /app/listing.txt\n\
                 LABEL tier=web\n\
                 EXPOSE 5000\n\
                 USER nobody\n\
                 CMD [\"cat\", \"/app/run.txt\", \"/app/listing.txt\", \"/app/app.txt\"]\n",
            ),
            ("app.txt", "app v1\n"),
            ("secret/key.pem", "do not ship\n"),
            ("notes.tmp", "scratch\n"),
            (".dockerignore", "secret\n*.tmp\n"),
        ],
    );
    let ctxs = c.to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "web:1", "--build-arg", "GREETING=hi", ctxs]);
    assert!(ok, "build failed:\n{out}\n{err}");
    assert!(out.contains("Step 1/10 : FROM busybox"), "{out}");
    assert!(out.contains("Successfully tagged web:1"), "{out}");
    let run = d.ok(&["run", "--rm", "web:1"]);
    assert!(run.contains("hi from run"), "{run}");
    assert!(run.contains("app v1"), "{run}");
    // The listing made by RUN shows what COPY brought in: no ignored files.
    assert!(
        run.contains("app.txt") && run.contains("Dockerfile"),
        "{run}"
    );
    assert!(
        !run.contains("secret") && !run.contains("notes.tmp"),
        "{run}"
    );
    let cfg = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.ExposedPorts}}|{{.Config.Labels.tier}}|{{json .Config.Cmd}}",
        "web:1",
    ]);
    assert_eq!(
        cfg.trim(),
        r#"/app|nobody|{"5000/tcp":{}}|web|["cat","/app/run.txt","/app/listing.txt","/app/app.txt"]"#
    );
    let id1 = d.ok(&["image", "inspect", "-f", "{{.Id}}", "web:1"]);

    // Unchanged: every step from the cache, the same image.
    let (ok, out, err) = build(&d, &["-t", "web:2", "--build-arg", "GREETING=hi", ctxs]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("Using cache").count(), 8, "{out}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", "web:2"]), id1);

    // A plain `docker build` (no DOCKER_BUILDKIT=0): berthd's ping says it speaks the classic
    // builder, so the docker CLI uses it by default.
    let o = d
        .docker_cmd(&[
            "build",
            "-t",
            "web:plain",
            "--build-arg",
            "GREETING=hi",
            ctxs,
        ])
        .env_remove("DOCKER_BUILDKIT")
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{plain}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(plain.matches("Using cache").count(), 8, "{plain}");

    // A changed ignored file changes nothing; a changed copied file reruns from COPY on.
    std::fs::write(c.join("notes.tmp"), "other\n").unwrap();
    let (ok, out, _) = build(&d, &["-t", "web:3", "--build-arg", "GREETING=hi", ctxs]);
    assert!(ok);
    assert_eq!(out.matches("Using cache").count(), 8, "{out}");
    std::fs::write(c.join("app.txt"), "app v2\n").unwrap();
    let (ok, out, err) = build(&d, &["-t", "web:4", "--build-arg", "GREETING=hi", ctxs]);
    assert!(ok, "{out}\n{err}");
    // FROM has no cache line; ENV and WORKDIR hit; COPY and everything after rerun.
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    assert!(d.ok(&["run", "--rm", "web:4"]).contains("app v2"));

    // --no-cache reruns everything.
    let (ok, out, _) = build(&d, &["--no-cache", "-t", "web:5", ctxs]);
    assert!(ok);
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    assert!(d.ok(&["run", "--rm", "web:5"]).contains("hello from run"));

    // Step containers are gone; intermediate images are not listed.
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!images.contains("<none>"), "{images}");
}

#[test]
fn multi_stage_target_and_copy_from() {
    let Some(d) = Berthd::with_busybox("multi_stage_target_and_copy_from") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox AS builder\n\
             RUN mkdir -p /out && echo built > /out/artifact && echo junk > /junk\n\
             \n\
             FROM busybox AS test\n\
             RUN echo testing\n\
             \n\
             FROM scratch\n\
             COPY --from=builder /out/artifact /artifact\n\
             COPY --from=builder /bin/busybox /bin/sh\n\
             CMD [\"/bin/sh\", \"-c\", \"cat /artifact\"]\n",
        )],
    );
    let p = ctx.path().to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "final", p]);
    assert!(ok, "{out}\n{err}");
    // The `test` stage is not needed by the target, so it is not built.
    assert!(!out.contains("testing"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "final"]).trim(), "built");
    let layers = d.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "final"]);
    assert_eq!(layers.trim(), "2");
    let (ok, out, err) = build(&d, &["--target", "test", "-t", "t", p]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("testing"), "{out}");
    let (ok, _, err) = build(&d, &["--target", "nope", p]);
    assert!(!ok);
    assert!(
        err.contains("target stage \"nope\" could not be found"),
        "{err}"
    );
}

#[test]
fn dockerfile_errors_name_the_line_and_failed_runs_the_command() {
    let Some(d) = Berthd::with_busybox("dockerfile_errors_name_the_line") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let p = ctx.path().to_str().unwrap();
    write(ctx.path(), &[("Dockerfile", "FORM busybox\nRUN true\n")]);
    let (ok, _, err) = build(&d, &[p]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:1: unknown instruction \"FORM\" — did you mean FROM?"),
        "{err}"
    );
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nWORKDIR /app\nWORK /app\n")],
    );
    let (ok, _, err) = build(&d, &[p]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:3: unknown instruction \"WORK\" — did you mean WORKDIR?"),
        "{err}"
    );
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nRUN echo before && exit 3\n")],
    );
    let (ok, out, err) = build(&d, &[p]);
    assert!(!ok);
    assert!(out.contains("before"), "{out}");
    assert!(
        err.contains("The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")],
    );
    let (ok, _, err) = build(&d, &[p]);
    assert!(!ok);
    assert!(err.contains("missing.txt"), "{err}");
}

#[test]
fn copy_cannot_follow_a_symlink_out_of_the_context() {
    let Some(d) = Berthd::with_busybox("copy_cannot_follow_a_symlink_out_of_the_context") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("host-secret"), "HOST SECRET\n").unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY link /copied\nCMD [\"cat\", \"/copied\"]\n",
        )],
    );
    std::os::unix::fs::symlink(outside.path().join("host-secret"), ctx.path().join("link"))
        .unwrap();
    let p = ctx.path().to_str().unwrap();
    // The docker CLI sends the symlink itself; berthd resolves it inside the context, where
    // its target does not exist.
    let (ok, out, err) = build(&d, &["-t", "esc", p]);
    if ok {
        let got = d.ok(&["run", "--rm", "esc"]);
        assert!(!got.contains("HOST SECRET"), "{got}");
    } else {
        assert!(!out.contains("HOST SECRET") && !err.contains("HOST SECRET"));
        assert!(err.contains("link"), "{err}");
    }
}

/// GET `path` from 127.0.0.1:`port`, retrying while the server starts; the body.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = String::new();
                if s.read_to_string(&mut buf).is_ok() && buf.starts_with("HTTP/1.") {
                    return buf
                        .split_once("\r\n\r\n")
                        .map(|(_, b)| b.to_string())
                        .unwrap_or_default();
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing answered on 127.0.0.1:{port}{path}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn tutorial_python_app_builds_runs_and_answers_on_the_published_port() {
    let Some(d) = Berthd::with_busybox("tutorial_python_app") else {
        return;
    };
    let Some(_) = berth_tests::pyimage::load_python(&d, berth_tests::pyimage::PYTHON_TAG) else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    berth_tests::pyimage::tutorial_app(ctx.path());
    let p = ctx.path().to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "my-image", p]);
    assert!(ok, "{out}\n{err}");
    // `run -p 8080:5000 -d my-image`, answered on the host's loopback.
    let id = d.ok(&["run", "-p", "8080:5000", "-d", "my-image"]);
    let body = http_get(8080, "/");
    assert_eq!(body, berth_tests::pyimage::TUTORIAL_HELLO);
    assert_eq!(
        http_get(8080, "/pkg"),
        berth_tests::pyimage::TUTORIAL_INSTALLED
    );
    let files = http_get(8080, "/files");
    for ignored in berth_tests::pyimage::TUTORIAL_IGNORED {
        let top = ignored.split('/').next().unwrap();
        assert!(!files.contains(top), "{ignored} reached the image: {files}");
    }
    d.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn every_instruction_lands_in_the_image() {
    let Some(d) = Berthd::with_busybox("every_instruction_lands_in_the_image") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            (
                "Dockerfile",
                r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS base
LABEL team="core" version=1.0
MAINTAINER Berth Team <team@example.com>
ENV A=1 B="two words"
ENV C $A-x
SHELL ["/bin/sh", "-e", "-c"]
WORKDIR /work
WORKDIR sub
RUN echo "$C" > c.txt && pwd > pwd.txt && echo "$B" > b.txt
RUN <<EOF
echo heredoc-ran > /work/sub/heredoc.txt
EOF
COPY <<EOF /etc/greeting
hello $A
EOF
COPY --chown=1000:1000 --chmod=640 files/ /data/
ADD archive.tar.gz /unpacked/
ADD plain.txt /added.txt
COPY --exclude=*.log logs/ /logs/
COPY --parents files/nested/two.txt /kept/
VOLUME ["/data", "/cache"]
EXPOSE 80 443/tcp 53/udp
USER nobody
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD ["true"]
STOPSIGNAL SIGINT
ONBUILD RUN echo child-built > /tmp/onbuild.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /work/sub/c.txt"]
"#,
            ),
            ("files/one.txt", "one\n"),
            ("files/nested/two.txt", "two\n"),
            ("plain.txt", "plain\n"),
            ("logs/keep.txt", "keep\n"),
            ("logs/drop.log", "drop\n"),
            ("archive-src/inside/packed.txt", "packed\n"),
        ],
    );
    let st = std::process::Command::new("tar")
        .args(["czf", "archive.tar.gz", "-C", "archive-src", "inside"])
        .current_dir(c)
        .status()
        .unwrap();
    assert!(st.success());
    let p = c.to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "every", p]);
    assert!(ok, "{out}\n{err}");
    let f = |fmt: &str| {
        d.ok(&["image", "inspect", "-f", fmt, "every"])
            .trim()
            .to_string()
    };
    assert_eq!(
        f("{{json .Config.Labels}}"),
        r#"{"team":"core","version":"1.0"}"#
    );
    assert_eq!(f("{{.Author}}"), "Berth Team <team@example.com>");
    let env = f("{{json .Config.Env}}");
    assert!(
        env.contains(r#""A=1""#) && env.contains(r#""B=two words""#) && env.contains(r#""C=1-x""#),
        "{env}"
    );
    assert_eq!(f("{{json .Config.Shell}}"), r#"["/bin/sh","-e","-c"]"#);
    assert_eq!(f("{{.Config.WorkingDir}}"), "/work/sub");
    assert_eq!(f("{{json .Config.Volumes}}"), r#"{"/cache":{},"/data":{}}"#);
    assert_eq!(
        f("{{json .Config.ExposedPorts}}"),
        r#"{"443/tcp":{},"53/udp":{},"80/tcp":{}}"#
    );
    assert_eq!(f("{{.Config.User}}"), "nobody");
    assert_eq!(
        f("{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD","true"],"Interval":5000000000,"Timeout":2000000000,"Retries":4}"#
    );
    assert_eq!(f("{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(
        f("{{json .Config.OnBuild}}"),
        r#"["RUN echo child-built > /tmp/onbuild.txt"]"#
    );
    assert_eq!(f("{{json .Config.Entrypoint}}"), r#"["/bin/sh","-c"]"#);
    assert_eq!(f("{{json .Config.Cmd}}"), r#"["cat /work/sub/c.txt"]"#);
    // The image runs: ENTRYPOINT + CMD.
    assert_eq!(d.ok(&["run", "--rm", "every"]).trim(), "1-x");
    let sh = |cmd: &str| {
        d.ok(&["run", "--rm", "--user", "0", "every", cmd])
            .trim()
            .to_string()
    };
    assert_eq!(
        sh("cat /work/sub/pwd.txt /work/sub/b.txt"),
        "/work/sub\ntwo words"
    );
    assert_eq!(sh("cat /work/sub/heredoc.txt"), "heredoc-ran");
    assert_eq!(sh("cat /etc/greeting"), "hello 1");
    assert_eq!(
        sh("stat -c '%u:%g %a' /data/one.txt /data/nested/two.txt"),
        "1000:1000 640\n1000:1000 640"
    );
    assert_eq!(
        sh("cat /unpacked/inside/packed.txt /added.txt"),
        "packed\nplain"
    );
    assert_eq!(sh("ls /logs"), "keep.txt");
    assert_eq!(sh("cat /kept/files/nested/two.txt"), "two");
    // History: one entry per instruction after FROM (ARG adds none), empty layers marked.
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "every",
    ]);
    assert!(hist.contains("#(nop)  STOPSIGNAL SIGINT"), "{hist}");
    assert!(hist.contains("/bin/sh -e -c echo \"$C\" > c.txt"), "{hist}");
    // ONBUILD triggers run in a child build.
    let child = tempfile::tempdir().unwrap();
    write(child.path(), &[("Dockerfile", "FROM every\nUSER 0\n")]);
    let (ok, out, err) = build(&d, &["-t", "child", child.path().to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Executing 1 build trigger"), "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", "child", "cat /tmp/onbuild.txt"])
            .trim(),
        "child-built"
    );
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.OnBuild}}",
            "child"
        ])
        .trim(),
        "null"
    );
}

#[test]
fn build_cache_survives_an_engine_restart() {
    let Some(mut d) = Berthd::with_busybox("build_cache_survives_an_engine_restart") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY a.txt /\nRUN cat /a.txt > /b.txt\n",
            ),
            ("a.txt", "a\n"),
        ],
    );
    let p = ctx.path().to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "keep", p]);
    assert!(ok, "{out}\n{err}");
    d.kill9();
    d.spawn();
    let (ok, out, err) = build(&d, &["-t", "keep2", p]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    // `docker builder prune` forgets it; the tagged images stay.
    let pruned = d.ok(&["builder", "prune", "-af"]);
    assert!(pruned.contains("Total"), "{pruned}");
    let (ok, out, _) = build(&d, &["-t", "keep3", p]);
    assert!(ok);
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    d.ok(&["image", "inspect", "keep"]);
}

/// A one-file HTTP server on loopback: every GET gets `body`. Returns its port.
fn serve(body: &'static str) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn add_downloads_urls_and_checks_their_checksum() {
    let Some(d) = Berthd::with_busybox("add_downloads_urls") else {
        return;
    };
    let port = serve("downloaded content\n");
    let ctx = tempfile::tempdir().unwrap();
    let sum = berth_tests::sha256_hex(b"downloaded content\n");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 ADD http://127.0.0.1:{port}/files/notes.txt /srv/\n\
                 ADD --checksum=sha256:{sum} http://127.0.0.1:{port}/x /named.txt\n\
                 COPY . /ctx/\n\
                 CMD [\"sh\", \"-c\", \"cat /srv/notes.txt /named.txt; stat -c %a /srv/notes.txt; ls -A /ctx\"]\n"
            ),
        )],
    );
    let p = ctx.path().to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "fetched", p]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        d.ok(&["run", "--rm", "fetched"]),
        "downloaded content\ndownloaded content\n600\nDockerfile\n"
    );
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD --checksum=sha256:{} http://127.0.0.1:{port}/x /x\n",
                "0".repeat(64)
            ),
        )],
    );
    let (ok, _, err) = build(&d, &[p]);
    assert!(!ok);
    assert!(err.contains("checksum mismatch"), "{err}");
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM busybox\nCOPY http://127.0.0.1:{port}/x /x\n"),
        )],
    );
    let (ok, _, err) = build(&d, &[p]);
    assert!(!ok);
    assert!(err.contains("use ADD"), "{err}");
}

#[test]
fn run_mounts_cache_tmpfs_bind_and_network() {
    let Some(d) = Berthd::with_busybox("run_mounts_cache_tmpfs_bind") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox AS tools\n\
                 RUN mkdir -p /opt/tool && echo from-stage > /opt/tool/version\n\
                 FROM busybox\n\
                 RUN --mount=type=cache,target=/cache echo run >> /cache/count && wc -l < /cache/count > /cache-count\n\
                 RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/t && cat /scratch/t > /tmpfs-seen\n\
                 RUN --mount=type=bind,source=src,target=/src cat /src/input.txt > /bound && (touch /src/new 2>/dev/null && echo writable || echo read-only) >> /bound\n\
                 RUN --mount=type=bind,from=tools,source=/opt/tool,target=/tool cat /tool/version > /from-stage\n\
                 RUN --network=none sh -c 'ip link 2>/dev/null | grep -c \"^[0-9]\"' > /links\n\
                 CMD [\"sh\", \"-c\", \"cat /cache-count /tmpfs-seen /bound /from-stage /links; ls /scratch /cache /src /tool 2>&1 | wc -l\"]\n",
            ),
            ("src/input.txt", "bound input\n"),
        ],
    );
    let p = ctx.path().to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "mounts", p]);
    assert!(ok, "{out}\n{err}");
    let got = d.ok(&["run", "--rm", "mounts"]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "1", "{got}");
    assert_eq!(lines[1], "temp", "{got}");
    assert_eq!(lines[2], "bound input", "{got}");
    assert_eq!(lines[3], "read-only", "{got}");
    assert_eq!(lines[4], "from-stage", "{got}");
    // --network=none: only the loopback interface.
    assert_eq!(lines[5], "1", "{got}");
    // Nothing from the mounts stays in the image (the mount points may remain, empty).
    let left = d.ok(&[
        "run",
        "--rm",
        "mounts",
        "sh",
        "-c",
        "find /scratch /cache /src /tool -type f 2>/dev/null | wc -l",
    ]);
    assert_eq!(
        left.trim(),
        "0",
        "files from RUN mounts stayed in the image"
    );
    // The cache mount keeps its content across builds, even with --no-cache.
    let (ok, out, err) = build(&d, &["--no-cache", "-t", "mounts2", p]);
    assert!(ok, "{out}\n{err}");
    let again = d.ok(&["run", "--rm", "mounts2", "cat", "/cache-count"]);
    assert_eq!(again.trim(), "2");
}

#[test]
fn copy_destination_symlinks_stay_inside_the_image_root() {
    let Some(d) = Berthd::with_busybox("copy_destination_symlinks_stay_inside") else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let host_dir = host.path().to_str().unwrap().to_string();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM busybox\n\
                     RUN ln -s ../../../../../../..{host_dir} /escape && ln -s {host_dir} /abs\n\
                     COPY payload.txt /escape/\n\
                     COPY payload.txt /abs/via-absolute.txt\n\
                     CMD [\"sh\", \"-c\", \"cat {host_dir}/payload.txt {host_dir}/via-absolute.txt\"]\n"
                ),
            ),
            ("payload.txt", "inside the image\n"),
        ],
    );
    let (ok, out, err) = build(&d, &["-t", "dest", ctx.path().to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    // Nothing reached the host directory the links name...
    let leaked: Vec<_> = std::fs::read_dir(host.path()).unwrap().collect();
    assert!(
        leaked.is_empty(),
        "COPY wrote through a symlink onto the host: {leaked:?}"
    );
    // ...the files are in the image, where the links resolve inside its root.
    assert_eq!(
        d.ok(&["run", "--rm", "dest"]),
        "inside the image\ninside the image\n"
    );
}

#[test]
fn loaded_images_never_serve_as_build_cache() {
    let Some(d) = Berthd::with_busybox("loaded_images_never_serve_as_build_cache") else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nENV STAGE=one\nRUN echo built > /f\n",
        )],
    );
    let p = ctx.path().to_str().unwrap();
    let (ok, out, err) = build(&d, &["-t", "poison", p]);
    assert!(ok, "{out}\n{err}");
    // The same image (same config, same history) comes back through `docker load`, as it
    // would from a registry: its history must not make the next build's steps cache hits.
    let saved = ctx.path().join("poison.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "poison"]);
    d.ok(&["rmi", "poison"]);
    d.ok(&["builder", "prune", "-af"]);
    d.ok(&["load", "-i", saved.to_str().unwrap()]);
    std::fs::remove_file(&saved).unwrap();
    let (ok, out, err) = build(&d, &["-t", "poison2", p]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
}
