//! `berth kube` against a fake Kubernetes API server (tests/src/fakekube.rs): generate,
//! deploy (server-side apply with the exact requests checked, rollout waiting, a failed
//! rollout's events and last logs, a timeout), status, logs, delete (volumes only with -v),
//! kubeconfig and context errors. The real `berth` binary runs each command. The root test
//! starts berthd and a loopback registry to pin images by the engine's digests and to push
//! with --push. The library is also driven directly with hand-built objects.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_tests::berthd::Berthd;
use berth_tests::cli::berth_bin;
use berth_tests::fakekube::{FakeKube, Recorded, Script, TOKEN};
use berth_tests::services::{free_port, Registry};
use serde_json::Value;

const DIGEST_WEB: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const DIGEST_API: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const DIGEST_BAD: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// `berth -H <engine> kube ARGS` in `dir`, with HOME = `dir` (no user kubeconfig or docker
/// config leaks in) and no KUBECONFIG.
fn kube_cmd(dir: &Path, engine: Option<&Berthd>, args: &[&str]) -> Command {
    let host = match engine {
        Some(d) => format!("unix://{}", d.sock.display()),
        None => "unix:///nonexistent/berth.sock".to_string(),
    };
    let mut c = Command::new(berth_bin());
    c.current_dir(dir)
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env_remove("KUBECONFIG")
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .arg("-H")
        .arg(host)
        .arg("kube")
        .args(args)
        .stdin(Stdio::null());
    c
}

fn kube(dir: &Path, engine: Option<&Berthd>, args: &[&str]) -> Output {
    kube_cmd(dir, engine, args).output().expect("run berth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

fn ok(dir: &Path, engine: Option<&Berthd>, args: &[&str]) -> Output {
    let o = kube(dir, engine, args);
    assert!(o.status.success(), "berth kube {args:?}: {}", show(&o));
    o
}

/// A project dir with a kubeconfig for `fake` and `compose`.
fn project(fake: &FakeKube, compose: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("berth-kube-")
        .tempdir()
        .unwrap();
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let kc = fake.write_kubeconfig(dir.path());
    (dir, kc)
}

fn patches(reqs: &[Recorded]) -> Vec<String> {
    reqs.iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect()
}

fn two_services() -> String {
    format!(
        "name: shop
services:
  web:
    image: 127.0.0.1:5000/kube/web@{DIGEST_WEB}
    ports: [\"8080:80\"]
    volumes:
      - data:/data
  api:
    image: 127.0.0.1:5000/kube/api@{DIGEST_API}
    expose: [\"9000\"]
volumes:
  data:
"
    )
}

#[test]
fn deploy_status_logs_delete_round_trip() {
    let fake = FakeKube::start();
    fake.script(
        "web",
        Script::ready(2).logs(&["web listening on :80", "GET / 200"]),
    );
    let (dir, kc) = project(&fake, &two_services());
    let dir = dir.path();
    let kc = kc.to_str().unwrap();

    let o = ok(
        dir,
        None,
        &["deploy", "--kubeconfig", kc, "--timeout", "30s"],
    );
    let err = text(&o.stderr);
    let reqs = fake.requests();
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/version");
    // Every object applied server-side, in apply order, before any rollout read.
    assert_eq!(
        patches(&reqs),
        [
            "/api/v1/namespaces/default/persistentvolumeclaims/shop-data",
            "/api/v1/namespaces/default/services/api",
            "/api/v1/namespaces/default/services/web",
            "/apis/apps/v1/namespaces/default/deployments/api",
            "/apis/apps/v1/namespaces/default/deployments/web",
        ]
    );
    let last_patch = reqs.iter().rposition(|r| r.method == "PATCH").unwrap();
    let first_get = reqs
        .iter()
        .position(|r| r.method == "GET" && r.path.contains("/deployments/"))
        .unwrap();
    assert!(last_patch < first_get, "applied after waiting began");
    for r in reqs.iter().filter(|r| r.method == "PATCH") {
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            r.path
        );
        assert_eq!(r.param("fieldManager"), Some("berth"), "{}", r.path);
        assert_eq!(r.param("force"), Some("true"), "{}", r.path);
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    // The Deployment as applied runs the image by digest.
    let body = &reqs
        .iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/deployments/web"))
        .unwrap()
        .body;
    let applied: Value = serde_yaml::from_str(body).unwrap();
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("127.0.0.1:5000/kube/web@{DIGEST_WEB}")
    );
    assert_eq!(
        applied["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "berth"
    );
    // web became available on its third GET (the first showed a stale generation).
    let web_gets = reqs
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path == "/apis/apps/v1/namespaces/default/deployments/web"
        })
        .count();
    assert_eq!(web_gets, 3, "{err}");
    assert!(
        err.contains(" Rollout web  waiting for the controller\n"),
        "{err}"
    );
    assert!(
        err.contains(" Rollout web  0/1 ready, 1 updated, 0 available\n"),
        "{err}"
    );
    assert!(err.contains(" Deployment web  Available\n"), "{err}");
    assert!(err.contains(" Deployment api  Available\n"), "{err}");
    assert!(
        err.contains(" Deployed shop: 5 objects in namespace default (context fake)"),
        "{err}"
    );
    let stored = fake.object("deployments", "default", "web").unwrap();
    assert_eq!(stored["metadata"]["generation"], 1);

    // A second deploy of the same project changes nothing: same generation.
    ok(dir, None, &["deploy", "--kubeconfig", kc]);
    let stored = fake.object("deployments", "default", "web").unwrap();
    assert_eq!(stored["metadata"]["generation"], 1);

    // status: tables, and JSON.
    let o = ok(dir, None, &["status", "--kubeconfig", kc]);
    let out = text(&o.stdout);
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("DEPLOYMENT"),
        ["DEPLOYMENT", "READY", "UP-TO-DATE", "AVAILABLE", "IMAGE"]
    );
    assert_eq!(
        line("web  "),
        [
            "web",
            "1/1",
            "1",
            "1",
            &format!("127.0.0.1:5000/kube/web@{DIGEST_WEB}")
        ]
    );
    let svc = line("SERVICE");
    assert_eq!(svc[0], "SERVICE");
    let web_svc: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("web "))
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(web_svc[1], "ClusterIP", "{out}");
    assert!(web_svc[2].starts_with("10.96.0."), "{out}");
    assert_eq!(web_svc[4], "8080/TCP", "{out}");
    assert_eq!(
        line("shop-data"),
        ["shop-data", "Bound", "1Gi", "<default>"]
    );
    assert_eq!(
        line("web-7d9f8b6c5-x4k2p"),
        ["web-7d9f8b6c5-x4k2p", "Running", "1/1", "0"]
    );
    let o = ok(
        dir,
        None,
        &["status", "--kubeconfig", kc, "--format", "json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["project"], "shop");
    assert_eq!(v["namespace"], "default");
    let names: Vec<&str> = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(v["deployments"][1]["rolled_out"], true);
    assert_eq!(v["volumes"][0]["phase"], "Bound");
    assert_eq!(v["pods"].as_array().unwrap().len(), 2);
    let sel = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/api/v1/namespaces/default/pods")
        .unwrap();
    assert_eq!(
        sel.param("labelSelector"),
        Some("app.kubernetes.io/part-of=shop")
    );

    // logs: every pod's lines, prefixed; one service; --tail; -f asks to follow.
    let o = ok(dir, None, &["logs", "--kubeconfig", kc]);
    let mut lines: Vec<String> = text(&o.stdout).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "api-7d9f8b6c5-x4k2p | api started",
            "web-7d9f8b6c5-x4k2p | GET / 200",
            "web-7d9f8b6c5-x4k2p | web listening on :80",
        ]
    );
    fake.clear_requests();
    let o = ok(
        dir,
        None,
        &["logs", "--kubeconfig", kc, "--tail", "1", "web"],
    );
    assert_eq!(text(&o.stdout), "web-7d9f8b6c5-x4k2p | GET / 200\n");
    let log_req = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/log"))
        .unwrap();
    assert_eq!(
        log_req.path,
        "/api/v1/namespaces/default/pods/web-7d9f8b6c5-x4k2p/log"
    );
    assert_eq!(log_req.param("tailLines"), Some("1"));
    assert_eq!(log_req.param("follow"), None);
    fake.clear_requests();
    let o = ok(dir, None, &["logs", "--kubeconfig", kc, "-f", "api"]);
    assert_eq!(text(&o.stdout), "api-7d9f8b6c5-x4k2p | api started\n");
    let log_req = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/log"))
        .unwrap();
    assert_eq!(log_req.param("follow"), Some("true"));
    let o = kube(dir, None, &["logs", "--kubeconfig", kc, "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("no pods of service nope of project shop"),
        "{}",
        show(&o)
    );

    // delete: what deploy made, not the volume (nor an object berth does not manage).
    fake.insert(
        "configmaps",
        "default",
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "theirs", "namespace": "default",
                         "labels": {"app.kubernetes.io/part-of": "shop"}}}),
    );
    fake.clear_requests();
    let o = ok(dir, None, &["delete", "--kubeconfig", kc]);
    let err = text(&o.stderr);
    let deletes: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        deletes,
        [
            "/apis/apps/v1/namespaces/default/deployments/api",
            "/apis/apps/v1/namespaces/default/deployments/web",
            "/api/v1/namespaces/default/services/api",
            "/api/v1/namespaces/default/services/web",
        ]
    );
    let list = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/namespaces/default/configmaps")
        .unwrap();
    assert_eq!(
        list.param("labelSelector"),
        Some("app.kubernetes.io/part-of=shop,app.kubernetes.io/managed-by=berth")
    );
    assert!(fake.names("deployments", "default").is_empty());
    assert!(fake.names("services", "default").is_empty());
    assert_eq!(fake.names("configmaps", "default"), ["theirs"]);
    assert_eq!(
        fake.names("persistentvolumeclaims", "default"),
        ["shop-data"]
    );
    assert!(err.contains(" Deployment default/web  Deleted"), "{err}");
    assert!(
        err.contains(" PersistentVolumeClaim default/shop-data  Kept"),
        "{err}"
    );
    // -v takes the volume too; -p works without the compose file.
    let elsewhere = tempfile::tempdir().unwrap();
    let o = ok(
        elsewhere.path(),
        None,
        &["-p", "shop", "delete", "-v", "--kubeconfig", kc],
    );
    assert!(
        text(&o.stderr).contains(" PersistentVolumeClaim default/shop-data  Deleted"),
        "{}",
        show(&o)
    );
    assert!(fake.names("persistentvolumeclaims", "default").is_empty());
    let o = ok(dir, None, &["status", "--kubeconfig", kc]);
    assert_eq!(text(&o.stdout), "");
    assert!(
        text(&o.stderr).contains("no objects of project shop in namespace default"),
        "{}",
        show(&o)
    );
}

#[test]
fn deploy_into_a_namespace_applies_it_first() {
    let fake = FakeKube::start();
    let (dir, kc) = project(&fake, &two_services());
    let dir = dir.path();
    let kc = kc.to_str().unwrap();
    ok(
        dir,
        None,
        &["deploy", "--kubeconfig", kc, "-n", "shop-prod"],
    );
    let p = patches(&fake.requests());
    assert_eq!(p[0], "/api/v1/namespaces/shop-prod");
    assert!(
        p[1..].iter().all(|x| x.contains("/namespaces/shop-prod/")),
        "{p:?}"
    );
    assert_eq!(p.len(), 6, "{p:?}");
    let ns = fake.object("namespaces", "", "shop-prod").unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "shop"
    );
    // The context's namespace is the default for status; -n picks another.
    let o = ok(
        dir,
        None,
        &["status", "--kubeconfig", kc, "--context", "fake-apps"],
    );
    assert!(
        text(&o.stderr).contains("in namespace apps (context fake-apps)"),
        "{}",
        show(&o)
    );
    let o = ok(
        dir,
        None,
        &["status", "--kubeconfig", kc, "-n", "shop-prod"],
    );
    assert!(
        text(&o.stdout).contains("web-7d9f8b6c5-x4k2p"),
        "{}",
        show(&o)
    );
    // delete leaves the namespace alone.
    ok(
        dir,
        None,
        &["delete", "--kubeconfig", kc, "-n", "shop-prod", "-v"],
    );
    assert!(fake.names("deployments", "shop-prod").is_empty());
    assert!(fake.object("namespaces", "", "shop-prod").is_some());
}

fn bad_project(fake: &FakeKube) -> (tempfile::TempDir, PathBuf) {
    project(
        fake,
        &format!(
            "name: shop\nservices:\n  bad:\n    image: 127.0.0.1:5000/kube/bad@{DIGEST_BAD}\n"
        ),
    )
}

#[test]
fn failed_rollout_exits_1_with_the_pod_events_and_last_logs() {
    let fake = FakeKube::start();
    fake.script(
        "bad",
        Script::crash_loop(Some(2))
            .event(
                "Normal",
                "Pulled",
                "Container image already present on machine",
                5,
            )
            .event(
                "Warning",
                "BackOff",
                "Back-off restarting failed container bad in pod {pod}",
                7,
            )
            .logs(&["starting"])
            .previous_logs(&["connecting to db:5432", "panic: cannot reach db:5432"]),
    );
    let (dir, kc) = bad_project(&fake);
    let o = kube(
        dir.path(),
        None,
        &["deploy", "--kubeconfig", kc.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    let pod = "bad-7d9f8b6c5-x4k2p";
    for want in [
        "rollout of deployment bad failed: ProgressDeadlineExceeded: ReplicaSet \"bad-7d9f8b6c5\" has timed out progressing.\n",
        "deployment bad (0/1 ready, 1 updated): ProgressDeadlineExceeded",
        &format!("  pod {pod}: Running, CrashLoopBackOff, last exit code 1, 4 restarts\n"),
        &format!("    back-off 1m20s restarting failed container=bad pod={pod}\n"),
        "      Normal  Pulled  Container image already present on machine (x5)\n",
        &format!("      Warning  BackOff  Back-off restarting failed container bad in pod {pod} (x7)\n"),
        "    last logs of bad (previous container):\n      connecting to db:5432\n      panic: cannot reach db:5432\n",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let reqs = fake.requests();
    let ev = reqs
        .iter()
        .find(|r| r.path == "/api/v1/namespaces/default/events")
        .unwrap();
    assert_eq!(
        ev.param("fieldSelector"),
        Some(format!("involvedObject.name={pod}").as_str())
    );
    let log = reqs
        .iter()
        .find(|r| r.path == format!("/api/v1/namespaces/default/pods/{pod}/log"))
        .unwrap();
    assert_eq!(log.param("previous"), Some("true"));
    assert_eq!(log.param("container"), Some("bad"));
    assert_eq!(log.param("tailLines"), Some("20"));

    // status shows the crash loop.
    let o = ok(
        dir.path(),
        None,
        &["status", "--kubeconfig", kc.to_str().unwrap()],
    );
    let out = text(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [pod, "CrashLoopBackOff", "0/1", "4"]),
        "{out}"
    );
}

#[test]
fn rollout_that_never_finishes_times_out() {
    let fake = FakeKube::start();
    fake.script(
        "bad",
        Script::crash_loop(None).previous_logs(&["exit status 3"]),
    );
    let (dir, kc) = bad_project(&fake);
    let t0 = std::time::Instant::now();
    let o = kube(
        dir.path(),
        None,
        &[
            "deploy",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--timeout",
            "3s",
        ],
    );
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains("rollout timed out after 3s: deployment bad (0/1 ready) not available"),
        "{err}"
    );
    assert!(err.contains("      exit status 3\n"), "{err}");
    assert!(
        took >= std::time::Duration::from_secs(3) && took < std::time::Duration::from_secs(20),
        "{took:?}"
    );
    let o = kube(
        dir.path(),
        None,
        &[
            "deploy",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--timeout",
            "soon",
        ],
    );
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("invalid --timeout \"soon\""),
        "{}",
        show(&o)
    );
}

/// stderr, asserting exit 1 and a single line.
fn one_line_error(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}", show(o));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{}", show(o));
    err
}

#[test]
fn kubeconfig_and_context_errors_are_one_clear_line() {
    let fake = FakeKube::start();
    let (dir, kc) = project(&fake, &two_services());
    let dir = dir.path();
    let kcs = kc.to_str().unwrap();

    let err = one_line_error(&kube(
        dir,
        None,
        &["status", "--kubeconfig", "/nonexistent/kc.yaml"],
    ));
    assert!(
        err.contains("kubeconfig /nonexistent/kc.yaml: no such file"),
        "{err}"
    );

    // No --kubeconfig, no KUBECONFIG, no ~/.kube/config (HOME is the project dir).
    let err = one_line_error(&kube(dir, None, &["status"]));
    assert!(
        err.contains(&format!("{}/.kube/config does not exist", dir.display()))
            && err.contains("--kubeconfig"),
        "{err}"
    );

    let err = one_line_error(&kube(
        dir,
        None,
        &["status", "--kubeconfig", kcs, "--context", "nope"],
    ));
    assert!(
        err.contains(&format!(
            "context \"nope\" is not in kubeconfig {kcs} (its contexts: fake, fake-apps)"
        )),
        "{err}"
    );

    // KUBECONFIG is honoured (contexts lists what it holds, the current one starred).
    let o = kube_cmd(dir, None, &["contexts"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let out = text(&o.stdout);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["CURRENT", "NAME", "CLUSTER", "SERVER", "NAMESPACE"]
    );
    assert_eq!(
        rows[1],
        ["*", "fake", "fake-cluster", &fake.url(), "default"]
    );
    assert_eq!(rows[2], ["fake-apps", "fake-cluster", &fake.url(), "apps"]);
    let o = kube_cmd(dir, None, &["-p", "shop", "status"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));

    // A server that does not answer: the URL is named.
    let port = free_port();
    let dead = dir.join("dead.yaml");
    std::fs::write(
        &dead,
        fake.kubeconfig()
            .replace(&fake.url(), &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let err = one_line_error(&kube(
        dir,
        None,
        &["status", "--kubeconfig", dead.to_str().unwrap()],
    ));
    assert!(
        err.contains(&format!(
            "cannot reach the Kubernetes API server at http://127.0.0.1:{port} (context \"fake\""
        )),
        "{err}"
    );

    // A token the server refuses.
    let wrong = dir.join("wrong.yaml");
    std::fs::write(&wrong, fake.kubeconfig().replace(TOKEN, "not-the-token")).unwrap();
    let err = one_line_error(&kube(
        dir,
        None,
        &["status", "--kubeconfig", wrong.to_str().unwrap()],
    ));
    assert!(
        err.contains("refused the credentials of context \"fake\""),
        "{err}"
    );
}

#[test]
fn generate_prints_yaml_or_writes_one_file_per_object() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "name: shop\nservices:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    volumes:\n      - ./site:/usr/share/nginx/html\n",
    )
    .unwrap();
    let o = ok(dir.path(), None, &["generate"]);
    let out = text(&o.stdout);
    let docs: Vec<Value> = out
        .split("\n---\n")
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("Service", "web"), ("Deployment", "web")]);
    assert_eq!(
        docs[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let err = text(&o.stderr);
    assert!(
        err.starts_with("warning: services.web.volumes[0]: "),
        "{err}"
    );

    let o = ok(
        dir.path(),
        None,
        &[
            "-n",
            "shop-prod",
            "generate",
            "--service-type",
            "nodeport",
            "-o",
            "out",
        ],
    );
    let files: Vec<String> = text(&o.stdout).lines().map(str::to_string).collect();
    assert_eq!(files.len(), 3, "{}", show(&o));
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    let all: Vec<Value> = names
        .iter()
        .map(|n| {
            serde_yaml::from_str(&std::fs::read_to_string(dir.path().join("out").join(n)).unwrap())
                .unwrap()
        })
        .collect();
    let svc = all.iter().find(|v| v["kind"] == "Service").unwrap();
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(svc["metadata"]["namespace"], "shop-prod");
    assert!(all
        .iter()
        .any(|v| v["kind"] == "Namespace" && v["metadata"]["name"] == "shop-prod"));

    let o = kube(dir.path(), None, &["generate", "--service-type", "bogus"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));

    // `berth compose convert --format kubernetes` is the same generator, no engine needed.
    let compose = |args: &[&str]| {
        Command::new(berth_bin())
            .current_dir(dir.path())
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .arg("-H")
            .arg("unix:///nonexistent/berth.sock")
            .arg("compose")
            .args(args)
            .output()
            .unwrap()
    };
    let generated = ok(dir.path(), None, &["generate"]);
    let converted = compose(&["convert", "--format", "kubernetes"]);
    assert!(converted.status.success(), "{}", show(&converted));
    assert_eq!(text(&converted.stdout), text(&generated.stdout));
    assert!(
        text(&converted.stderr).contains("warning: services.web.volumes[0]: "),
        "{}",
        show(&converted)
    );
    // Plain `convert` is compose's alias of `config`; the Kubernetes flags need the format.
    let plain = compose(&["convert"]);
    assert!(plain.status.success(), "{}", show(&plain));
    assert!(
        text(&plain.stdout).starts_with("name: shop\n"),
        "{}",
        show(&plain)
    );
    let mixed = compose(&["convert", "-n", "x"]);
    assert_eq!(mixed.status.code(), Some(1), "{}", show(&mixed));
    assert_eq!(
        text(&mixed.stderr).trim(),
        "-o and -n apply to --format kubernetes only: add --format kubernetes"
    );
}

/// The library on its own, with objects built by hand: apply order, namespaced paths, and
/// the events the desktop app gets.
#[test]
fn library_deploy_manifests_reports_events() {
    use berth_kube::deploy::{self as kd, DeployEvent, Target};
    use berth_kube::Object;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use std::collections::BTreeMap;

    let fake = FakeKube::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = fake.write_kubeconfig(dir.path());
    let labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/part-of".to_string(), "lib".to_string()),
        ("app.kubernetes.io/name".to_string(), "one".to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "berth".to_string(),
        ),
    ]
    .into();
    let meta = |name: &str| ObjectMeta {
        name: Some(name.into()),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let objects = vec![
        Object::ConfigMap(ConfigMap {
            metadata: meta("one-env"),
            data: Some([("A".to_string(), "1".to_string())].into()),
            ..Default::default()
        }),
        Object::Deployment(Deployment {
            metadata: meta("one"),
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(meta("one")),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "one".into(),
                            image: Some(format!("127.0.0.1:5000/one@{DIGEST_WEB}")),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(async {
        let cluster = kd::connect(&Target {
            kubeconfig: Some(kc.clone()),
            context: Some("fake-apps".into()),
            namespace: Some("default".into()),
        })
        .await
        .unwrap();
        assert_eq!(cluster.namespace, "default");
        assert_eq!(cluster.context, "fake-apps");
        let mut events = Vec::new();
        let applied = kd::deploy_manifests(
            &cluster,
            &objects,
            std::time::Duration::from_secs(20),
            &mut |e| events.push(e),
        )
        .await
        .unwrap();
        assert_eq!(applied.len(), 2);
        let st = kd::status(&cluster, "lib").await.unwrap();
        assert_eq!(st.deployments[0].desired, 2);
        assert_eq!(st.pods.len(), 2);
        events
    });
    let json: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(json[0]["event"], "applied");
    assert_eq!(json[0]["kind"], "ConfigMap");
    assert_eq!(json[0]["namespace"], "default");
    assert_eq!(json[1]["kind"], "Deployment");
    assert!(matches!(
        events.last(),
        Some(DeployEvent::Available { deployment, .. }) if deployment == "one"
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        DeployEvent::Progress {
            ready: 2,
            desired: 2,
            observed: true,
            ..
        }
    )));
    let p = patches(&fake.requests());
    assert_eq!(
        p,
        [
            "/api/v1/namespaces/default/configmaps/one-env",
            "/apis/apps/v1/namespaces/default/deployments/one",
        ]
    );
}

/// The engine's digests: an image pushed to (and pulled back from) a loopback registry is
/// pinned by its registry digest; a built image is pushed with --push and pinned by the
/// pushed digest; an image the engine does not have is an error naming it.
#[test]
fn deploy_pins_engine_digests_and_pushes_with_push() {
    let Some(d) = Berthd::with_busybox("deploy_pins_engine_digests_and_pushes_with_push") else {
        return;
    };
    let reg = Registry::start();
    let host = reg.host();
    let web = format!("{host}/kube/web:1");
    let api = format!("{host}/kube/api:1");
    let fake = FakeKube::start();
    let compose = format!(
        "name: shop\nservices:\n  web:\n    image: {web}\n  api:\n    build: ./api\n    image: {api}\n"
    );
    let (dir, kc) = project(&fake, &compose);
    let dirp = dir.path();
    let kcs = kc.to_str().unwrap();
    std::fs::create_dir_all(dirp.join("api")).unwrap();
    std::fs::write(
        dirp.join("api/Dockerfile"),
        "FROM busybox:latest\nRUN echo api > /api.txt\nCMD [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    let berth = |args: &[&str]| {
        let o = Command::new(berth_bin())
            .current_dir(dirp)
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", dirp.join(".docker"))
            .arg("-H")
            .arg(format!("unix://{}", d.sock.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "berth {args:?}: {}", show(&o));
        text(&o.stdout)
    };
    let registry_digest = |image: &str| {
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{image}"))
            .output()
            .expect("run skopeo");
        assert!(
            o.status.success(),
            "skopeo inspect {image}: {}",
            text(&o.stderr)
        );
        text(&o.stdout).trim().to_string()
    };

    // Not in the engine yet: an error that says what to do.
    let o = kube(dirp, Some(&d), &["deploy", "--kubeconfig", kcs]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("image {api} is not in the local engine"))
            || err.contains(&format!("image {web} is not in the local engine")),
        "{err}"
    );
    assert!(
        patches(&fake.requests()).is_empty(),
        "applied without digests"
    );

    // web: pushed and pulled back, so the engine knows its registry digest.
    berth(&["tag", "busybox:latest", &web]);
    berth(&["push", &web]);
    berth(&["rmi", &web]);
    berth(&["pull", &web]);
    let web_digest = registry_digest(&web);
    assert!(web_digest.starts_with("sha256:"), "{web_digest}");
    // api: built here, never pushed; --push pushes it and pins what the registry stored.
    berth(&["compose", "build", "api"]);
    // Built but never pushed: the engine has no registry digest for it, and deploy says so.
    let o = kube(dirp, Some(&d), &["deploy", "--kubeconfig", kcs]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("image {api}")) && err.contains("--push"),
        "{err}"
    );
    assert!(
        patches(&fake.requests()).is_empty(),
        "applied an unpinned image"
    );
    let o = ok(dirp, Some(&d), &["deploy", "--kubeconfig", kcs, "--push"]);
    let err = text(&o.stderr);
    let api_digest = registry_digest(&api);
    assert!(
        err.contains(&format!(" Image web  {host}/kube/web@{web_digest}\n")),
        "{err}"
    );
    assert!(
        err.contains(&format!(" Image api  {host}/kube/api@{api_digest}\n")),
        "{err}"
    );
    assert!(err.contains(" Push api  "), "{err}");
    let reqs = fake.requests();
    let image_of = |name: &str| {
        let r = reqs
            .iter()
            .find(|r| r.method == "PATCH" && r.path.ends_with(&format!("/deployments/{name}")))
            .unwrap();
        let v: Value = serde_yaml::from_str(&r.body).unwrap();
        v["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(image_of("web"), format!("{host}/kube/web@{web_digest}"));
    assert_eq!(image_of("api"), format!("{host}/kube/api@{api_digest}"));
}
