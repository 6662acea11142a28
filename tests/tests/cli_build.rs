//! `berth build` (the classic-builder client) against a real engine: tags, build args,
//! labels, targets, `.dockerignore`, a Dockerfile outside the context, `-q`, stdin contexts,
//! a failing RUN and the usage errors.
//!
//! The engine under test is one parameter, `$BERTH_BUILD_ENGINE`: `berthd` (the default: a
//! test berthd) or `dockerd` (a private Debian dockerd on a temp data root, the reference
//! implementation of `POST /build`, to check the client against Docker itself). Images are inspected and run with the docker
//! CLI, which talks to either. Root is needed for both; without dockerd installed the engine
//! tests print `skipped: <why>` and pass. `DOCKER_BUILDKIT=1` is set on every `berth build` to
//! show it does not matter: berth always asks for the classic builder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::berth_bin;
use berth_tests::image::{busybox_layer_tar, host_oci_arch};
use berth_tests::services::Dockerd;
use berth_tests::{find_in_path, is_root, sha256_hex};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};

/// The engine under test: its socket and a docker CLI pointed at it.
struct Engine {
    name: &'static str,
    /// The daemon (a [`Dockerd`] or a [`Berthd`]): stopped when dropped.
    _daemon: Box<dyn std::any::Any + Send + Sync>,
    sock: PathBuf,
    /// A private DOCKER_CONFIG for the docker CLI (and berth's registry config).
    config: tempfile::TempDir,
}

impl Engine {
    /// The docker CLI against this engine.
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.config.path())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the docker CLI")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} on {} failed: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `berth build ARGS`, the engine picked through $BERTH_HOST (as a user would).
    fn build_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.env("BERTH_HOST", format!("unix://{}", self.sock.display()))
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_BUILDKIT", "1")
            .arg("build")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn build(&self, args: &[&str]) -> Output {
        self.build_cmd(args).output().expect("run berth build")
    }

    fn build_ok(&self, args: &[&str]) -> String {
        let o = self.build(args);
        assert!(
            o.status.success(),
            "berth build {args:?} on {} failed ({}):\nstdout: {}\nstderr: {}",
            self.name,
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `docker run --rm --network none IMAGE CMD...`'s stdout.
    fn run(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--network", "none", image];
        args.extend_from_slice(cmd);
        self.docker_ok(&args)
    }

    fn image_id(&self, image: &str) -> String {
        self.docker_ok(&["image", "inspect", "-f", "{{.Id}}", image])
            .trim()
            .to_string()
    }
}

/// busybox as a `docker save` archive (docker.io 20.10 loads only that format).
fn busybox_save_tar(path: &Path) {
    let layer = busybox_layer_tar();
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let config = serde_json::json!({
        "architecture": host_oci_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"]
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "berth-tests busybox fixture"}]
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["busybox:latest"],
        "Layers": ["layer/layer.tar"]
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [
        (config_name.as_str(), &config),
        ("layer/layer.tar", &layer),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

fn start_engine() -> Option<Engine> {
    let which = std::env::var("BERTH_BUILD_ENGINE").unwrap_or_else(|_| "berthd".into());
    let config = tempfile::tempdir().unwrap();
    match which.as_str() {
        "berthd" => {
            let d = Berthd::with_busybox("cli_build")?;
            let sock = d.sock.clone();
            Some(Engine {
                name: "berthd",
                _daemon: Box::new(d),
                sock,
                config,
            })
        }
        "dockerd" => {
            if find_in_path("dockerd").is_none() || find_in_path("docker").is_none() {
                println!("skipped: dockerd/docker are not installed (apt install docker.io)");
                return None;
            }
            let d = Dockerd::start();
            let sock = d.socket.clone();
            let e = Engine {
                name: "dockerd",
                _daemon: Box::new(d),
                sock,
                config,
            };
            let tar = e.config.path().join("busybox-save.tar");
            busybox_save_tar(&tar);
            e.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
            Some(e)
        }
        other => panic!("BERTH_BUILD_ENGINE={other:?}: use dockerd or berthd"),
    }
}

/// The engine, shared by the tests that run at the same time (it stops when the last of
/// them is done); None, after a `skipped:` line, when it cannot run here.
fn engine(test: &str) -> Option<Arc<Engine>> {
    static SHARED: Mutex<Option<Weak<Engine>>> = Mutex::new(None);
    if !is_root() {
        println!("skipped: {test} needs root (dockerd/berthd run containers)");
        return None;
    }
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = slot.as_ref().and_then(Weak::upgrade) {
        return Some(e);
    }
    let e = Arc::new(start_engine()?);
    *slot = Some(Arc::downgrade(&e));
    Some(e)
}

/// A context directory with these files (paths with `/` make their directories).
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-build-ctx-")
        .tempdir()
        .unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn tag(prefix: &str) -> String {
    berth_tests::unique_id(prefix).to_lowercase()
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn build_with_tags_args_labels_and_run_it() {
    let Some(e) = engine("build_with_tags_args_labels_and_run_it") else {
        return;
    };
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\n\
             ARG GREETING=hello\n\
             ARG FROM_ENV=unset\n\
             ARG LEFT_DEFAULT=kept\n\
             COPY msg.txt /msg.txt\n\
             RUN echo \"greeting=$GREETING env=$FROM_ENV default=$LEFT_DEFAULT\" > /built.txt && echo run-step-output\n\
             CMD [\"cat\", \"/msg.txt\", \"/built.txt\"]\n",
        ),
        ("msg.txt", "the message\n"),
    ]);
    let t1 = tag("bt-one");
    let t2 = format!("{}:v2", tag("bt-two"));
    let o = e
        .build_cmd(&[
            "-t",
            &t1,
            "--tag",
            &t2,
            "--build-arg",
            "GREETING=hi there",
            "--build-arg",
            "FROM_ENV",
            "--build-arg",
            "LEFT_DEFAULT",
            "--label",
            "team=qa",
            "--no-cache",
            ctx.path().to_str().unwrap(),
        ])
        .env("FROM_ENV", "from-the-environment")
        .env_remove("LEFT_DEFAULT")
        .output()
        .unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "build failed: {stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Sending build context to Docker daemon  "),
        "{stdout}"
    );
    assert!(stdout.contains("Step 1/8 : FROM busybox\n"), "{stdout}");
    assert!(
        stdout.contains("Step 5/8 : COPY msg.txt /msg.txt\n"),
        "{stdout}"
    );
    assert!(stdout.contains(" ---> Running in "), "{stdout}");
    assert!(stdout.contains("\nrun-step-output\n"), "{stdout}");
    // berth's own last line: the build's time and cache use (--no-cache: nothing cached; --label adds a step).
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("Build took ") && last.ends_with(": 8 steps, 0 from the cache"),
        "{stdout}"
    );
    // The final lines once each, whoever wrote them (the engine or berth).
    let built: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Successfully built "))
        .collect();
    assert_eq!(built.len(), 1, "{stdout}");
    let id = e.image_id(&t1);
    assert!(
        id.trim_start_matches("sha256:").starts_with(built[0]) && built[0].len() == 12,
        "{id} vs {built:?}"
    );
    for t in [format!("{t1}:latest"), t2.clone()] {
        let n = stdout
            .lines()
            .filter(|l| *l == format!("Successfully tagged {t}"))
            .count();
        assert_eq!(n, 1, "tag line for {t} in {stdout}");
    }
    assert_eq!(e.image_id(&t2), id);
    let label = e.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"team\"}}",
        &t1,
    ]);
    assert_eq!(label.trim(), "qa");
    assert_eq!(
        e.run(&t1, &[]),
        "the message\ngreeting=hi there env=from-the-environment default=kept\n"
    );

    // The same build again is served from the cache; --no-cache above was honoured (it ran).
    let again = e.build_ok(&[
        "-t",
        &t1,
        "--build-arg",
        "GREETING=hi there",
        "--build-arg",
        "FROM_ENV=from-the-environment",
        "--label",
        "team=qa",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(again.contains(" ---> Using cache"), "{again}");
    assert!(!again.lines().any(|l| l == "run-step-output"), "{again}");
    e.docker(&["rmi", "-f", &t1, &t2]);
}

#[test]
fn dockerignore_is_honoured_client_side() {
    let Some(e) = engine("dockerignore_is_honoured_client_side") else {
        return;
    };
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /ctx/\nRUN echo listing && find /ctx | sort && readlink /ctx/link\n",
        ),
        (
            ".dockerignore",
            "# build files are sent even when listed\nDockerfile\n.dockerignore\n\
             *.log\n**/*.tmp\nsecret\nvendor\n!vendor/keep.txt\nbig.bin\n",
        ),
        ("keep.txt", "k"),
        ("drop.log", "d"),
        ("sub/deep.log", "not a top-level .log: kept"),
        ("sub/a/b/c.tmp", "t"),
        ("sub/keep.txt", "k"),
        ("secret/key", "s"),
        ("vendor/keep.txt", "k"),
        ("vendor/drop.txt", "d"),
    ]);
    std::os::unix::fs::symlink("keep.txt", ctx.path().join("link")).unwrap();
    // An ignored 32 MB file is never sent: the context stays in kilobytes.
    std::fs::File::create(ctx.path().join("big.bin"))
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let stdout = e.build_ok(&["--no-cache", ctx.path().to_str().unwrap()]);
    let sending = stdout.lines().next().unwrap();
    assert!(
        sending.starts_with("Sending build context to Docker daemon  ") && sending.ends_with("kB"),
        "{sending}"
    );
    let listing: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "listing")
        .skip(1)
        .take_while(|l| l.starts_with("/ctx") || *l == "keep.txt")
        .collect();
    // The engine drops the Dockerfile and .dockerignore after reading them, as .dockerignore
    // lists them; the symlink arrives as a symlink.
    assert_eq!(
        listing,
        [
            "/ctx",
            "/ctx/keep.txt",
            "/ctx/link",
            "/ctx/sub",
            // Directories are sent unless excluded themselves (docker's walk too).
            "/ctx/sub/a",
            "/ctx/sub/a/b",
            "/ctx/sub/deep.log",
            "/ctx/sub/keep.txt",
            "/ctx/vendor",
            "/ctx/vendor/keep.txt",
            "keep.txt",
        ],
        "{stdout}"
    );

    // Without the ignore file, the big file is sent (megabytes) — the walk streams it.
    std::fs::remove_file(ctx.path().join(".dockerignore")).unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
    let stdout = e.build_ok(&["-q", ctx.path().to_str().unwrap()]);
    assert!(stdout.trim().starts_with("sha256:"), "{stdout}");
    let stdout = e.build_ok(&[ctx.path().to_str().unwrap()]);
    assert!(
        stdout.lines().next().is_some_and(|l| l
            .starts_with("Sending build context to Docker daemon  33.")
            && l.ends_with("MB")),
        "{stdout}"
    );
}

#[test]
fn dockerfile_outside_the_context_target_and_quiet() {
    let Some(e) = engine("dockerfile_outside_the_context_target_and_quiet") else {
        return;
    };
    let ctx = context(&[
        ("data.txt", "data\n"),
        ("Dockerfile", "FROM scratch-never-used\n"),
    ]);
    let elsewhere = context(&[(
        "build/Multi.dockerfile",
        "FROM busybox AS first\n\
         COPY . /ctx/\n\
         RUN echo stage-first > /stage\n\
         FROM busybox AS second\n\
         RUN echo stage-second > /stage\n",
    )]);
    let df = elsewhere.path().join("build/Multi.dockerfile");
    let iid = elsewhere.path().join("iid.txt");
    std::fs::write(&iid, "stale").unwrap();
    let o = e.build(&[
        "--iidfile",
        iid.to_str().unwrap(),
        "-q",
        "-f",
        df.to_str().unwrap(),
        "--target",
        "first",
        ctx.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    // -q: the image ID alone.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let id = lines[0];
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(e.image_id(id), id);
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    assert_eq!(e.run(id, &["cat", "/stage"]), "stage-first\n");
    // The generated Dockerfile name does not end up in the image; the context does.
    let listing = e.run(id, &["ls", "-A", "/ctx"]);
    let mut names: Vec<&str> = listing.lines().collect();
    names.sort();
    assert!(
        !names.iter().any(|n| n.starts_with(".dockerfile.")),
        "{listing}"
    );
    assert!(names.contains(&"data.txt"), "{listing}");

    // -f is relative to the current directory, not to the context.
    let o = e
        .build_cmd(&[
            "-q",
            "-f",
            "build/Multi.dockerfile",
            ctx.path().to_str().unwrap(),
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let last = stdout.trim();
    assert_eq!(e.run(last, &["cat", "/stage"]), "stage-second\n");
}

#[test]
fn stdin_contexts() {
    let Some(e) = engine("stdin_contexts") else {
        return;
    };
    // A lone Dockerfile on stdin.
    let mut child = e
        .build_cmd(&["-t", &tag("bt-stdin"), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nRUN echo from-a-piped-dockerfile\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("from-a-piped-dockerfile"), "{stdout}");

    // A tar on stdin, with -f naming the Dockerfile inside it.
    let ctx = context(&[
        (
            "docker/Custom",
            "FROM busybox\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n",
        ),
        ("hello.txt", "hello from a tar\n"),
    ]);
    let tarball = Command::new("tar")
        .arg("-C")
        .arg(ctx.path())
        .args(["-c", "."])
        .output()
        .unwrap();
    assert!(tarball.status.success());
    let t = tag("bt-tar");
    let mut child = e
        .build_cmd(&["-q", "-t", &t, "-f", "docker/Custom", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = tarball.stdout.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), e.image_id(&t));
    assert_eq!(e.run(&t, &[]), "hello from a tar\n");
    e.docker(&["rmi", "-f", &t]);
}

#[test]
fn failing_builds_report_the_engine_error() {
    let Some(e) = engine("failing_builds_report_the_engine_error") else {
        return;
    };
    // A RUN that fails: its output streams, the engine's message goes to stderr, and the
    // exit code is the command's (docker's classic client does the same).
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo output-before-failing && exit 3\nRUN echo never-reached\n",
    )]);
    let o = e.build(&[ctx.path().to_str().unwrap()]);
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("output-before-failing"), "{stdout}");
    assert!(!stdout.contains("never-reached"), "{stdout}");
    assert!(!stdout.contains("Successfully built"), "{stdout}");
    assert!(stderr.contains("returned a non-zero code: 3"), "{stderr}");

    // -q keeps the output back, and shows it with the error.
    let o = e.build(&["-q", ctx.path().to_str().unwrap()]);
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(3), "{stdout}\n{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("output-before-failing"), "{stderr}");
    assert!(stderr.contains("returned a non-zero code: 3"), "{stderr}");

    // A Dockerfile the engine cannot parse: exit 1, the engine's words.
    std::fs::write(ctx.path().join("Dockerfile"), "FROMM busybox\n").unwrap();
    let o = e.build(&[ctx.path().to_str().unwrap()]);
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.to_lowercase().contains("unknown instruction"),
        "{stderr}"
    );

    // An image the engine does not have (and may not pull: no network here).
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM 127.0.0.1:9/berth-no-such-image:1\n",
    )
    .unwrap();
    let o = e.build(&[ctx.path().to_str().unwrap()]);
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}

/// An engine socket that hangs up on every connection: a command line berth refuses never
/// reaches it (if it did, berth would fail to connect and exit 1, not 125).
struct HangUp {
    dir: tempfile::TempDir,
}

impl HangUp {
    fn start() -> HangUp {
        let dir = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("hangup.sock")).unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
        HangUp { dir }
    }

    fn build(&self, args: &[&str]) -> Output {
        let sock = self.dir.path().join("hangup.sock");
        Command::new(berth_bin())
            .env("BERTH_HOST", format!("unix://{}", sock.display()))
            .env_remove("DOCKER_HOST")
            .arg("build")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn usage_errors_are_clear() {
    let ctx = context(&[("Dockerfile", "FROM busybox\n"), ("file.txt", "x")]);
    let ctx_path = ctx.path().to_str().unwrap();
    let engine = HangUp::start();
    let berth_no_engine = |args: &[&str]| engine.build(args);

    let missing = ctx.path().join("no-such-dir");
    let o = berth_no_engine(&[missing.to_str().unwrap()]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("no-such-dir") && stderr.contains("not found"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let file = ctx.path().join("file.txt");
    let o = berth_no_engine(&[file.to_str().unwrap()]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");

    let o = berth_no_engine(&["-f", "Nope.dockerfile", ctx_path]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("Nope.dockerfile") && stderr.contains("not found"),
        "{stderr}"
    );

    let empty = context(&[("file.txt", "x")]);
    let o = berth_no_engine(&[empty.path().to_str().unwrap()]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    let expect = empty.path().join("Dockerfile");
    assert!(stderr.contains(expect.to_str().unwrap()), "{stderr}");

    let o = berth_no_engine(&["-t", "Upper/Case", ctx_path]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("\"Upper/Case\"") && stderr.contains("must be lowercase"),
        "{stderr}"
    );
    let o = berth_no_engine(&["-t", "ok", "-t", "bad:tag:twice", ctx_path]);
    assert_eq!(o.status.code(), Some(125));
    assert!(out(&o).1.contains("bad:tag:twice"));

    let o = berth_no_engine(&["--build-arg", "=x", ctx_path]);
    assert_eq!(o.status.code(), Some(125));
    assert!(out(&o).1.contains("--build-arg"));

    // Unknown flags get the closest one.
    let o = berth_no_engine(&["--tga", "x", ctx_path]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("unknown flag: --tga") && stderr.contains("--target"),
        "{stderr}"
    );

    // A good command line reaches the engine: here it hangs up, so the connection message
    // and exit 1.
    let o = berth_no_engine(&[ctx_path]);
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Cannot connect"), "{stderr}");
}

#[test]
fn base_image_pulls_show_progress_and_pull_flag_is_honoured() {
    let Some(e) = engine("base_image_pulls_show_progress_and_pull_flag_is_honoured") else {
        return;
    };
    if find_in_path("docker-registry").is_none() || find_in_path("skopeo").is_none() {
        println!("skipped: docker-registry/skopeo are not installed");
        return;
    }
    let reg = berth_tests::services::Registry::start();
    let layout = tempfile::tempdir().unwrap();
    berth_tests::oci_image_layout(&layout.path().join("img"));
    let repo = format!("lib/{}", tag("bt-base"));
    reg.push_layout(&layout.path().join("img"), &format!("{repo}:1"));
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}/{repo}:1\nRUN echo built-on-pulled-base\n",
            reg.host()
        ),
    )]);
    let ctx_path = ctx.path().to_str().unwrap();

    // Not on the engine yet: the build pulls it, shown as plain lines when piped.
    let stdout = e.build_ok(&[ctx_path]);
    assert!(stdout.contains(&format!("Pulling from {repo}")), "{stdout}");
    // The pull's lines as `docker pull` prints them piped (no layer differs from the loaded
    // busybox, so there are no per-layer lines).
    assert!(stdout.contains("\nDigest: sha256:"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "\nStatus: Downloaded newer image for {}/{repo}:1\n",
            reg.host()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\nbuilt-on-pulled-base\n"), "{stdout}");
    assert!(!stdout.contains("progressDetail"), "{stdout}");

    // Present now: no pull, unless --pull asks for one.
    let stdout = e.build_ok(&[ctx_path]);
    assert!(!stdout.contains("Pulling from"), "{stdout}");
    let stdout = e.build_ok(&["--pull", ctx_path]);
    assert!(stdout.contains(&format!("Pulling from {repo}")), "{stdout}");
    assert!(
        stdout.contains("Status: Image is up to date for"),
        "{stdout}"
    );
}

/// A stand-in engine that answers `/_ping` (API 1.41) and swallows a build upload, reporting
/// whether the upload ended properly (chunked terminator) through `uploads`.
fn fake_engine(dir: &Path) -> (PathBuf, std::sync::mpsc::Receiver<(String, bool)>) {
    use std::io::{BufRead, BufReader, Read};
    let sock = dir.join("fake-engine.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut request = String::new();
            let _ = r.read_line(&mut request);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                line.clear();
            }
            if request.contains("/_ping") {
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK",
                );
                continue;
            }
            let mut body = Vec::new();
            let _ = r.read_to_end(&mut body);
            let _ = tx.send((request, body.ends_with(b"0\r\n\r\n")));
        }
    });
    (sock, rx)
}

#[test]
fn unreadable_context_files_are_named_and_nothing_is_built() {
    if !is_root() || find_in_path("setpriv").is_none() {
        println!("skipped: needs root and setpriv, to run berth as an unprivileged user");
        return;
    }
    let ctx = context(&[("Dockerfile", "FROM busybox\n"), ("a/locked.txt", "secret")]);
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    mode(ctx.path(), 0o755);
    mode(&ctx.path().join("a"), 0o755);
    mode(&ctx.path().join("Dockerfile"), 0o644);
    mode(&ctx.path().join("a/locked.txt"), 0o600);
    let engine_dir = tempfile::tempdir().unwrap();
    mode(engine_dir.path(), 0o755);
    let (sock, uploads) = fake_engine(engine_dir.path());
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(berth_bin())
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args(["build", "-t", "never-built"])
        .arg(ctx.path())
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stdout}\n{stderr}");
    let locked = ctx.path().join("a/locked.txt");
    assert!(
        stderr.contains(locked.to_str().unwrap()) && stderr.contains(".dockerignore"),
        "{stderr}"
    );
    // The upload was cut short: the engine sees a broken body, not a context to build.
    let (request, finished) = uploads
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    assert!(request.starts_with("POST /v1.41/build?"), "{request}");
    assert!(request.contains("t=never-built"), "{request}");
    assert!(
        !finished,
        "the upload was finished despite the unreadable file"
    );
}

#[test]
fn builder_prune_forgets_the_cache() {
    // Its own engine: a prune on the shared one would race the other tests' cache checks.
    if !is_root() {
        println!("skipped: builder_prune_forgets_the_cache needs root");
        return;
    }
    let Some(e) = start_engine() else {
        return;
    };
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM busybox\nRUN echo {} > /made\n", tag("prune-me")),
    )]);
    let p = ctx.path().to_str().unwrap();
    e.build_ok(&[p]);
    assert!(e.build_ok(&[p]).contains("Using cache"));
    let o = Command::new(berth_bin())
        .env("BERTH_HOST", format!("unix://{}", e.sock.display()))
        .env_remove("DOCKER_HOST")
        .args(["builder", "prune", "-af"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Total reclaimed space:"), "{stdout}");
    assert!(!e.build_ok(&[p]).contains("Using cache"));
}
