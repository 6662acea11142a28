//! The `berth` image commands against berthd: `images` (filters, digests, formats), pull and
//! push through a loopback registry (plain lines when piped, bars under a pty), `history`,
//! `image inspect`, `image prune`, `save`/`load`, and `login`/`logout` against a registry
//! with htpasswd auth. Tables and JSON are compared with the docker CLI's on the same engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::cli::{berth_bin, berth_cmd, titles};
use berth_tests::services::Registry;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `berth args` with a private DOCKER_CONFIG (credentials never touch ~/.docker).
fn b(d: &Berthd, cfg: &Path, args: &[&str]) -> Output {
    berth_cmd(d, args)
        .env("DOCKER_CONFIG", cfg)
        .output()
        .expect("run berth")
}

fn b_ok(d: &Berthd, cfg: &Path, args: &[&str]) -> String {
    let o = b(d, cfg, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `berth args` with `input` on stdin.
fn b_stdin(d: &Berthd, cfg: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = berth_cmd(d, args)
        .env("DOCKER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

/// Standard base64 with padding (what config.json's `auth` holds).
fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A table's first line, then its other lines sorted: docker orders the rows of one image
/// (its repositories) by Go map iteration, which is random.
/// A table's header and its rows sorted (docker orders one image's tags at random).
fn same_rows(out: &str) -> (String, Vec<String>) {
    let mut lines = out.lines().map(str::to_string);
    let first = lines.next().unwrap_or_default();
    let mut rest: Vec<String> = lines.collect();
    rest.sort();
    (first, rest)
}

/// Output in a form that does not depend on docker's row order: a table's header and its
/// sorted rows; with `-q` or a non-table `--format` (no header), every line sorted.
fn comparable(args: &[&str], out: &str) -> (String, Vec<String>) {
    let template = args
        .iter()
        .position(|a| *a == "--format")
        .and_then(|i| args.get(i + 1));
    let headerless = args.contains(&"-q") || template.is_some_and(|t| !t.starts_with("table"));
    if headerless {
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        (String::new(), v)
    } else {
        same_rows(out)
    }
}

/// `berth ARGS` (a shell word list) on a terminal: a pty from util-linux's `script`.
fn on_pty(d: &Berthd, cfg: &Path, args: &str) -> Output {
    let cmd = format!(
        "DOCKER_CONFIG={} {} -H unix://{} {args}",
        cfg.display(),
        berth_bin().display(),
        d.sock.display()
    );
    Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn setup(test: &str) -> Option<(Berthd, tempfile::TempDir)> {
    let d = Berthd::with_busybox(test)?;
    let cfg = tempfile::tempdir().unwrap();
    Some((d, cfg))
}

#[test]
fn images_table_quiet_filters_and_formats_match_docker() {
    let Some((d, cfg)) = setup("images_table_quiet_filters_and_formats_match_docker") else {
        return;
    };
    let cfg = cfg.path();
    d.ok(&["tag", "busybox", "extra:1"]);
    // A repository argument lists that repository's tags only, though the image has others.
    let ours = b_ok(
        &d,
        cfg,
        &["images", "--format", "{{.Repository}}:{{.Tag}}", "extra"],
    );
    assert_eq!(ours, "extra:1\n");
    assert_eq!(
        ours,
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "extra"])
    );
    d.ok(&["tag", "busybox", "extra:2"]);
    for args in [
        vec!["images"],
        vec!["images", "-q"],
        vec!["images", "--no-trunc"],
        vec!["images", "--digests"],
        vec!["images", "-a"],
        vec!["images", "extra"],
        vec!["images", "--filter", "reference=extra"],
        vec!["images", "--filter", "reference=extra:2"],
        vec!["images", "--filter", "dangling=true"],
        vec!["images", "--filter", "dangling=false", "-q"],
        vec!["images", "--filter", "label=nope=1"],
        vec![
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
        vec![
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}",
        ],
        vec![
            "image",
            "ls",
            "--format",
            "table {{.ID}}\t{{.CreatedAt}}\t{{.VirtualSize}}",
        ],
    ] {
        let ours = b_ok(&d, cfg, &args);
        let docker = d.ok(&args);
        assert_eq!(
            comparable(&args, &ours),
            comparable(&args, &docker),
            "berth {args:?}\n{ours}\n{docker}"
        );
    }
    // `--format json`: the same objects docker prints.
    let ours = b_ok(&d, cfg, &["images", "--format", "json"]);
    let docker = d.ok(&["images", "--format", "json"]);
    let parse = |s: &str| -> Vec<serde_json::Value> {
        let mut v: Vec<serde_json::Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    assert_eq!(parse(&ours), parse(&docker));
    assert_eq!(parse(&ours).len(), 3);

    // before/since (applied by the CLI): every image here has one creation time.
    let out = b_ok(&d, cfg, &["images", "--filter", "before=busybox", "-q"]);
    assert_eq!(out, "");
    let out = b_ok(&d, cfg, &["images", "--filter", "since=busybox", "-q"]);
    assert_eq!(out, "");
    // The engine answers these filters, so the docker CLI gets the same rows.
    for filter in [
        "before=busybox",
        "since=busybox",
        "until=2000-01-01T00:00:00Z",
    ] {
        let args = ["images", "--filter", filter];
        assert_eq!(
            comparable(&args, &b_ok(&d, cfg, &args)),
            comparable(&args, &d.ok(&args)),
            "berth {args:?}"
        );
    }
    // A missing reference image and a malformed filter: one line, exit 1 like docker.
    let o = b(&d, cfg, &["images", "--filter", "before=nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = b(&d, cfg, &["images", "--filter", "dangling"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("key=value"), "{}", stderr(&o));
}

#[test]
fn push_pull_round_trip_plain_and_on_a_pty() {
    let Some((d, cfg)) = setup("push_pull_round_trip_plain_and_on_a_pty") else {
        return;
    };
    let cfg = cfg.path();
    let reg = Registry::start();
    let repo = format!("{}/test/bb", reg.host());
    let tag1 = format!("{repo}:1");
    b_ok(&d, cfg, &["tag", "busybox", &tag1]);
    b_ok(&d, cfg, &["image", "tag", "busybox", &format!("{repo}:2")]);

    let out = b_ok(&d, cfg, &["push", &tag1]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("The push refers to repository [{repo}]").as_str()),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{out}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("1: digest: sha256:") && l.contains(" size: ")),
        "{out}"
    );
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out}");

    // -a pushes every local tag of the repository; -q prints only the reference.
    let out = b_ok(&d, cfg, &["image", "push", "-a", &repo]);
    assert!(out.lines().any(|l| l.starts_with("1: digest: ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("2: digest: ")), "{out}");
    let out = b_ok(&d, cfg, &["push", "-q", &tag1]);
    assert_eq!(out, format!("{tag1}\n"));
    let o = b(&d, cfg, &["push", "-a", &tag1]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));

    // Pull back after removing the tags: plain lines, the final status and the reference.
    b_ok(&d, cfg, &["rmi", &tag1, &format!("{repo}:2")]);
    let out = b_ok(&d, cfg, &["pull", &tag1]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("1: Pulling from test/bb"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Digest: sha256:")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("Status: Downloaded newer image for {tag1}")),
        "{out}"
    );
    assert_eq!(lines.last().copied(), Some(tag1.as_str()), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out}");
    let out = b_ok(&d, cfg, &["image", "pull", "-q", &tag1]);
    assert_eq!(out, format!("{tag1}\n"));
    let out = b_ok(&d, cfg, &["pull", "--platform", "linux/amd64", &tag1]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {tag1}")),
        "{out}"
    );

    // The pulled image has a digest: --digests and {{.Digest}} as docker shows them.
    for args in [
        vec!["images", "--digests"],
        vec!["images", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"],
    ] {
        let (ours, theirs) = (b_ok(&d, cfg, &args), d.ok(&args));
        assert_eq!(
            comparable(&args, &ours),
            comparable(&args, &theirs),
            "berth {args:?}"
        );
    }
    let out = b_ok(&d, cfg, &["images", "--digests", &repo]);
    assert_eq!(
        titles(&out),
        ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    );
    assert!(out.contains("sha256:"), "{out}");

    // A missing image: the engine's reason, exit 125.
    let o = b(&d, cfg, &["pull", &format!("{repo}:nope")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );

    // On a terminal (a pty from `script`): indicatif draws the layers.
    b_ok(&d, cfg, &["rmi", &tag1]);
    let o = on_pty(&d, cfg, &format!("pull {tag1}"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert!(out.contains('\u{1b}'), "expected terminal drawing: {out:?}");
}

/// The tags of `repo` present in the engine, sorted.
fn local_tags(d: &Berthd, cfg: &Path, repo: &str) -> Vec<String> {
    let out = b_ok(d, cfg, &["images", "--format", "{{.Repository}} {{.Tag}}"]);
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix(repo)?.strip_prefix(' '))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn pull_all_tags_brings_every_tag_back_like_docker() {
    let Some((d, cfg)) = setup("pull_all_tags_brings_every_tag_back_like_docker") else {
        return;
    };
    let cfg = cfg.path();
    let reg = Registry::start();
    let repo = format!("{}/test/all", reg.host());
    let (t1, t2) = (format!("{repo}:1"), format!("{repo}:2"));
    b_ok(&d, cfg, &["tag", "busybox", &t1]);
    b_ok(&d, cfg, &["tag", "busybox", &t2]);
    b_ok(&d, cfg, &["push", "-a", &repo]);
    b_ok(&d, cfg, &["rmi", &t1, &t2]);
    assert!(local_tags(&d, cfg, &repo).is_empty());

    // berth pull -a: every tag listed by the registry (in its order), one block per tag, one
    // final status.
    let out = b_ok(&d, cfg, &["pull", "-a", &repo]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.ends_with(": Pulling from test/all")),
        "{out}"
    );
    assert!(lines.contains(&"1: Pulling from test/all"), "{out}");
    assert!(lines.contains(&"2: Pulling from test/all"), "{out}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("Digest: sha256:"))
            .count(),
        2,
        "{out}"
    );
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {repo}").as_str()),
        "{out}"
    );
    assert_eq!(lines.last().copied(), Some(repo.as_str()), "{out}");
    assert!(!out.contains("Using default tag"), "{out}");
    assert_eq!(local_tags(&d, cfg, &repo), ["1", "2"]);
    let ours_again = b_ok(&d, cfg, &["pull", "--all-tags", &repo]);
    assert!(
        ours_again.contains(&format!("Status: Image is up to date for {repo}")),
        "{ours_again}"
    );
    let out = b_ok(&d, cfg, &["pull", "-a", "-q", &repo]);
    assert_eq!(out, format!("{repo}\n"));

    // docker pull -a against the same engine: the same tags back, the same lines.
    b_ok(&d, cfg, &["rmi", &t1, &t2]);
    let theirs = d.ok(&["pull", "-a", &repo]);
    assert_eq!(local_tags(&d, cfg, &repo), ["1", "2"]);
    assert_eq!(
        theirs,
        out_of_first_pull(&d, cfg, &repo, &t1, &t2),
        "docker vs berth"
    );
    let theirs_again = d.ok(&["pull", "-a", &repo]);
    assert_eq!(theirs_again, ours_again);

    // On a terminal: one block of bars per tag, the same final lines.
    b_ok(&d, cfg, &["rmi", &t1, &t2]);
    let o = on_pty(&d, cfg, &format!("pull -a {repo}"));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    for want in [
        "1: Pulling from test/all".to_string(),
        "2: Pulling from test/all".to_string(),
        format!("Status: Downloaded newer image for {repo}"),
    ] {
        assert!(tty.contains(&want), "{want} missing: {tty:?}");
    }
    assert!(tty.contains('\u{1b}'), "expected terminal drawing: {tty:?}");
    assert_eq!(local_tags(&d, cfg, &repo), ["1", "2"]);

    // A tag with -a is refused before the engine is asked; an unknown repository fails
    // naming it.
    let o = b(&d, cfg, &["pull", "-a", &t1]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tag can't be used with --all-tags/-a"),
        "{}",
        stderr(&o)
    );
    let missing = format!("{}/test/none", reg.host());
    let o = b(&d, cfg, &["pull", "-a", &missing]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error response from daemon: ") && stderr(&o).contains("test/none"),
        "{}",
        stderr(&o)
    );
    let theirs = d.docker(&["pull", "-a", &missing]);
    assert!(!theirs.status.success());
}

/// Remove both tags and pull them again with berth (the output to compare with docker's).
fn out_of_first_pull(d: &Berthd, cfg: &Path, repo: &str, t1: &str, t2: &str) -> String {
    b_ok(d, cfg, &["rmi", t1, t2]);
    let out = b_ok(d, cfg, &["pull", "-a", repo]);
    assert_eq!(local_tags(d, cfg, repo), ["1", "2"]);
    out
}

#[test]
fn history_matches_docker() {
    let Some((d, cfg)) = setup("history_matches_docker") else {
        return;
    };
    let cfg = cfg.path();
    let ours = b_ok(&d, cfg, &["history", "busybox"]);
    let docker = d.ok(&["history", "busybox"]);
    assert_eq!(
        titles(&ours),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    // format::table drops the padding docker leaves before an empty last cell (COMMENT).
    let trim = |s: &str| s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    assert_eq!(trim(&ours), trim(&docker));
    for args in [
        vec!["history", "-q", "busybox"],
        vec!["history", "--no-trunc", "busybox"],
        vec!["image", "history", "--human=false", "busybox"],
        vec![
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
            "busybox",
        ],
        vec![
            "history",
            "--format",
            "table {{.ID}}\t{{.CreatedAt}}",
            "busybox",
        ],
    ] {
        assert_eq!(
            trim(&b_ok(&d, cfg, &args)),
            trim(&d.ok(&args)),
            "berth {args:?}"
        );
    }
    let o = b(&d, cfg, &["history", "nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}

#[test]
fn image_inspect_matches_docker() {
    let Some((d, cfg)) = setup("image_inspect_matches_docker") else {
        return;
    };
    let cfg = cfg.path();
    d.ok(&["tag", "busybox", "other:1"]);
    let json = |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap() };
    let ours = b_ok(&d, cfg, &["image", "inspect", "busybox"]);
    let docker = d.ok(&["image", "inspect", "busybox"]);
    assert_eq!(json(&ours), json(&docker));
    assert!(ours.starts_with("[\n    {\n        \""), "{ours}");
    let ours = b_ok(&d, cfg, &["image", "inspect", "busybox", "other:1"]);
    let docker = d.ok(&["image", "inspect", "busybox", "other:1"]);
    assert_eq!(json(&ours), json(&docker));
    assert_eq!(json(&ours).as_array().unwrap().len(), 2);
    for args in [
        vec![
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{.Os}}",
            "busybox",
            "other:1",
        ],
        vec![
            "image",
            "inspect",
            "--format",
            "{{json .RepoTags}}",
            "busybox",
        ],
    ] {
        assert_eq!(b_ok(&d, cfg, &args), d.ok(&args), "berth {args:?}");
    }
    // A missing image: what was found, then the error; exit 1 as docker.
    let o = b(&d, cfg, &["image", "inspect", "nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "[]\n");
    let docker = d.docker(&["image", "inspect", "nope:1"]);
    assert_eq!(stderr(&o), stderr(&docker));
    assert_eq!(o.stdout, docker.stdout);
    let o = b(&d, cfg, &["image", "inspect", "busybox", "nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        json(&String::from_utf8_lossy(&o.stdout))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn prune_asks_then_removes() {
    let Some((d, cfg)) = setup("prune_asks_then_removes") else {
        return;
    };
    let cfg = cfg.path();
    // Nothing dangling: docker's summary line, exactly.
    assert_eq!(
        b_ok(&d, cfg, &["image", "prune", "-f"]),
        d.ok(&["image", "prune", "-f"])
    );
    // Without -f: docker's question; anything but y keeps everything.
    let o = b_stdin(&d, cfg, &["image", "prune", "-a"], b"n\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
    );
    let o = b_stdin(&d, cfg, &["image", "prune"], b"");
    assert!(String::from_utf8_lossy(&o.stdout)
        .starts_with("WARNING! This will remove all dangling images.\nAre you sure"));
    assert_eq!(b_ok(&d, cfg, &["images", "-q"]).lines().count(), 1);
    // -a with y: the untagged/deleted lines and the space reclaimed; no images left.
    let o = b_stdin(&d, cfg, &["image", "prune", "-a"], b"y\n");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("Deleted Images:\nuntagged: busybox:latest\n"),
        "{out}"
    );
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("Total reclaimed space: "),
        "{out}"
    );
    assert_eq!(b_ok(&d, cfg, &["images", "-q"]), "");
}

#[test]
fn save_rmi_load_round_trip() {
    let Some((d, cfg)) = setup("save_rmi_load_round_trip") else {
        return;
    };
    let cfgp = cfg.path();
    let id = d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    let tar = cfg.path().join("bb.tar");
    let out = b_ok(&d, cfgp, &["save", "-o", tar.to_str().unwrap(), "busybox"]);
    assert_eq!(out, "");
    assert!(std::fs::metadata(&tar).unwrap().len() > 1024);
    b_ok(&d, cfgp, &["rmi", "busybox"]);
    assert_eq!(b_ok(&d, cfgp, &["images", "-q"]), "");
    let out = b_ok(&d, cfgp, &["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:latest\n");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]), id);

    // To stdout when piped, and back in through stdin (-q keeps the result line, as docker).
    let o = b(&d, cfgp, &["image", "save", "busybox"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&o.stdout[257..262], b"ustar", "not a tar archive");
    b_ok(&d, cfgp, &["rmi", "busybox"]);
    let o2 = b_stdin(&d, cfgp, &["image", "load", "-q"], &o.stdout);
    assert!(o2.status.success(), "{}", stderr(&o2));
    assert_eq!(
        String::from_utf8_lossy(&o2.stdout),
        "Loaded image: busybox:latest\n"
    );
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]), id);

    // Errors: a missing image, garbage input, a terminal as the target.
    let o = b(&d, cfgp, &["save", "-o", tar.to_str().unwrap(), "nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = b_stdin(&d, cfgp, &["load"], b"not a tarball");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let cmd = format!(
        "{} -H unix://{} save busybox",
        berth_bin().display(),
        d.sock.display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("cowardly refusing to save to a terminal"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn login_logout_with_an_htpasswd_registry() {
    let Some((d, cfg)) = setup("login_logout_with_an_htpasswd_registry") else {
        return;
    };
    let cfgp = cfg.path();
    let reg = Registry::start_with_htpasswd();
    let host = reg.host();
    let image = format!("{host}/private/bb:1");
    b_ok(&d, cfgp, &["tag", "busybox", &image]);

    // Not logged in: the registry refuses the push.
    let o = b(&d, cfgp, &["push", &image]);
    assert_ne!(o.status.code(), Some(0));

    // Another setting in the file survives login and logout.
    let file = cfgp.join("config.json");
    std::fs::write(&file, r#"{"psFormat": "table {{.ID}}"}"#).unwrap();

    // Bad credentials: one line from the engine's /auth, nothing stored.
    let o = b_stdin(
        &d,
        cfgp,
        &["login", "-u", "tester", "--password-stdin", &host],
        b"wrong\n",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    assert!(err.contains("tester"), "{err}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("auths"));

    let o = b_stdin(
        &d,
        cfgp,
        &["login", "-u", "tester", "--password-stdin", &host],
        b"s3cret-pw\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Login Succeeded\n");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let want = base64(b"tester:s3cret-pw");
    assert_eq!(v["auths"][&host]["auth"], want.as_str());
    assert_eq!(v["psFormat"], "table {{.ID}}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The stored credentials reach the registry through X-Registry-Auth.
    let out = b_ok(&d, cfgp, &["push", &image]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    b_ok(&d, cfgp, &["rmi", &image]);
    let out = b_ok(&d, cfgp, &["pull", &image]);
    assert!(out.contains("Status: "), "{out}");

    // -p works and warns; both password flags at once are refused.
    let o = b(
        &d,
        cfgp,
        &["login", "-u", "tester", "-p", "s3cret-pw", &host],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("WARNING! Using --password via the CLI is insecure"));
    let o = b(
        &d,
        cfgp,
        &[
            "login",
            "-u",
            "tester",
            "-p",
            "x",
            "--password-stdin",
            &host,
        ],
    );
    assert_eq!(o.status.code(), Some(125));

    let out = b_ok(&d, cfgp, &["logout", &host]);
    assert_eq!(out, format!("Removing login credentials for {host}\n"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(v["auths"].get(&host).is_none(), "{v}");
    assert_eq!(v["psFormat"], "table {{.ID}}");
    let out = b_ok(&d, cfgp, &["logout", &host]);
    assert_eq!(out, format!("Not logged in to {host}\n"));

    // Logged out again: the pull is refused.
    b_ok(&d, cfgp, &["rmi", &image]);
    let o = b(&d, cfgp, &["pull", &image]);
    assert_eq!(o.status.code(), Some(1));
}
