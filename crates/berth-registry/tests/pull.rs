//! Pulls against real `docker-registry` instances (and in-test fakes) on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_registry::{
    BlobSink, Client, Digest, DirSink, Error, Platform, Progress, Reference, RegistryConfig,
};
use common::*;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn reference(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

fn client(v: serde_json::Value) -> Client {
    let mut cfg = RegistryConfig::from_daemon_json(&v).unwrap();
    cfg.request_timeout = Duration::from_secs(5);
    Client::new(cfg).unwrap()
}

async fn pull(
    c: &Client,
    r: &str,
    sink: &DirSink,
) -> (
    berth_registry::Result<berth_registry::PullResult>,
    Vec<Progress>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let res = c.pull(&reference(r), &Platform::host(), sink, tx).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (res, events)
}

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

/// Every blob of the fixture is in the sink, byte-identical, and the result describes it.
fn assert_fixture_pulled(
    res: &berth_registry::PullResult,
    layout: &berth_tests::image::ImageLayout,
    sink: &DirSink,
) {
    assert_eq!(res.manifest_digest, d(&layout.manifest_digest));
    assert_eq!(
        res.manifest_media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(Digest::of(&res.manifest_bytes), res.manifest_digest);
    assert_eq!(res.config_digest, d(&layout.config_digest));
    assert_eq!(
        res.layers,
        vec![(
            d(&layout.layer_digest),
            "application/vnd.oci.image.layer.v1.tar+gzip".to_string(),
            layout.layer_size
        )]
    );
    for digest in [&layout.config_digest, &layout.layer_digest] {
        let got = sink.read(&d(digest)).unwrap();
        assert_eq!(Some(got), layout_blob(&layout.dir, digest), "{digest}");
    }
    let ingest = std::fs::read_dir(sink.root().join("ingest"))
        .unwrap()
        .count();
    assert_eq!(ingest, 0, "nothing left in the ingest area");
}

fn served(res: &berth_registry::PullResult, digest: &str) -> String {
    res.served_by
        .iter()
        .find(|(x, _)| *x == d(digest))
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| panic!("{digest} not in served_by {:?}", res.served_by))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_pull_verifies_every_blob_then_finds_them_present() {
    let (_f, layout) = fixture();
    let reg = Registry::start(None, None).await;
    seed(&layout.dir, &reg.host(), "test/busybox:latest", None);
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let c = client(json!({}));
    let name = format!("{}/test/busybox", reg.host());
    let (res, events) = pull(&c, &name, &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    assert!(res.index.is_none());
    assert!(res.skipped.is_empty(), "{:?}", res.skipped);
    for dg in [
        &layout.manifest_digest,
        &layout.config_digest,
        &layout.layer_digest,
    ] {
        assert_eq!(served(&res, dg), reg.url());
    }
    assert!(events.contains(&Progress::Done {
        digest: d(&layout.layer_digest),
        endpoint: reg.url()
    }));
    assert!(events.contains(&Progress::Verifying {
        digest: d(&layout.layer_digest)
    }));
    assert!(events.iter().any(
        |e| matches!(e, Progress::Downloading { digest, current, total }
        if *digest == d(&layout.layer_digest) && current == total && *total == layout.layer_size)
    ));
    // Progress is serialisable for the API.
    let j = serde_json::to_value(&events[events.len() - 1]).unwrap();
    assert!(j.get("event").is_some(), "{j}");

    // Second pull: blobs exist, nothing downloaded.
    let (res2, events2) = pull(&c, &name, &sink).await;
    let res2 = res2.unwrap();
    assert!(events2.contains(&Progress::Exists {
        digest: d(&layout.layer_digest)
    }));
    assert_eq!(
        res2.served_by.len(),
        1,
        "only the manifest was fetched: {:?}",
        res2.served_by
    );

    // By digest, into a fresh sink.
    let (_s2, root2) = sink_dir();
    let sink2 = DirSink::new(&root2).unwrap();
    let (res3, _) = pull(&c, &format!("{name}@{}", layout.manifest_digest), &sink2).await;
    assert_fixture_pulled(&res3.unwrap(), &layout, &sink2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_a_proxy_mirror_is_served_by_the_mirror() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let mirror = Registry::start(Some(&up.url()), None).await;
    let c = client(json!({"registry-mirrors-by-host": {up.host(): [mirror.url()]}}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("{}/test/busybox:latest", up.host()), &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    for dg in [
        &layout.manifest_digest,
        &layout.config_digest,
        &layout.layer_digest,
    ] {
        assert_eq!(served(&res, dg), mirror.url(), "{dg}");
    }
    assert!(res.skipped.is_empty(), "{:?}", res.skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_names_use_registry_mirrors_on_loopback() {
    // `busybox` means docker.io/library/busybox; the loopback mirror serves it, so
    // registry-1.docker.io is never contacted.
    let (_f, layout) = fixture();
    let mirror = Registry::start(None, None).await;
    seed(&layout.dir, &mirror.host(), "library/busybox:latest", None);
    let c = client(json!({"registry-mirrors": [mirror.url()]}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, "busybox", &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    assert!(
        res.served_by.iter().all(|(_, e)| *e == mirror.url()),
        "{:?}",
        res.served_by
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_mirror_is_skipped_with_a_recorded_reason() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let c = client(json!({"registry-mirrors-by-host": {up.host(): [dead.clone()]}}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, events) = pull(&c, &format!("{}/test/busybox", up.host()), &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    let reasons: Vec<_> = res.skipped.iter().filter(|(e, _)| *e == dead).collect();
    assert!(
        !reasons.is_empty(),
        "dead mirror not recorded: {:?}",
        res.skipped
    );
    assert!(
        reasons
            .iter()
            .all(|(_, why)| why.contains("cannot connect")),
        "{reasons:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Progress::Skipped { endpoint, .. } if *endpoint == dead)));
    assert!(res.served_by.iter().all(|(_, e)| *e == up.url()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupting_mirror_is_detected_discarded_and_skipped() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let (pport, corrupted) = corrupting_proxy(up.host()).await;
    let bad = format!("http://127.0.0.1:{pport}");
    let c = client(json!({"registry-mirrors-by-host": {up.host(): [bad.clone()]}}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("{}/test/busybox", up.host()), &sink).await;
    let res = res.unwrap();
    assert!(
        corrupted.load(Ordering::SeqCst) >= 2,
        "the proxy corrupted config and layer"
    );
    assert_fixture_pulled(&res, &layout, &sink);
    for dg in [&layout.config_digest, &layout.layer_digest] {
        assert!(
            res.skipped.iter().any(|(e, why)| *e == bad
                && why.contains(dg.as_str())
                && why.contains("digest mismatch")),
            "mismatch of {dg} at {bad} not recorded: {:?}",
            res.skipped
        );
        assert_eq!(served(&res, dg), up.url(), "{dg} must come from upstream");
    }
    // The manifest was not corrupted, so the mirror resolved the tag.
    assert_eq!(served(&res, &layout.manifest_digest), bad);
}

/// The same with the store as the sink: the client does not hash (the store's ingest verifies
/// on commit), and a mismatch found there still sends the pull to the next endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupting_mirror_is_skipped_when_the_store_verifies() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let (pport, corrupted) = corrupting_proxy(up.host()).await;
    let bad = format!("http://127.0.0.1:{pport}");
    let c = client(json!({"registry-mirrors-by-host": {up.host(): [bad.clone()]}}));
    let data = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(berth_store::store::Store::open(data.path()).unwrap());
    let sink = berth_registry::store_sink::StoreSink::new(
        std::sync::Arc::clone(&store),
        std::time::Duration::from_secs(600),
    )
    .unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let res = c
        .pull(
            &reference(&format!("{}/test/busybox", up.host())),
            &Platform::host(),
            &sink,
            tx,
        )
        .await
        .unwrap();
    assert!(corrupted.load(Ordering::SeqCst) >= 2);
    for dg in [&layout.config_digest, &layout.layer_digest] {
        assert!(
            res.skipped.iter().any(|(e, why)| *e == bad
                && why.contains(dg.as_str())
                && why.contains("digest mismatch")),
            "mismatch of {dg} at {bad} not recorded: {:?}",
            res.skipped
        );
        assert_eq!(served(&res, dg), up.url(), "{dg} must come from upstream");
        let d = berth_store::Digest::parse(dg).unwrap();
        assert!(store.content.exists(&d), "{dg} not in the store");
    }
    let ingest: Vec<_> = std::fs::read_dir(data.path().join("content/ingest"))
        .unwrap()
        .flatten()
        .collect();
    assert!(ingest.is_empty(), "corrupt data left in ingest: {ingest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registry_right_wrong_and_missing_credentials() {
    let (_f, layout) = fixture();
    let reg = Registry::start(None, Some(("alice", "wonderland"))).await;
    seed(
        &layout.dir,
        &reg.host(),
        "test/busybox:latest",
        Some(("alice", "wonderland")),
    );
    let name = format!("{}/test/busybox", reg.host());
    let with_creds = |pass: &str| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            json!({"auths": {reg.host(): {"username": "alice", "password": pass}}}).to_string(),
        )
        .unwrap();
        let mut cfg = RegistryConfig::default();
        cfg.load_credentials(&p).unwrap();
        Client::new(cfg).unwrap()
    };

    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&with_creds("wonderland"), &name, &sink).await;
    assert_fixture_pulled(&res.unwrap(), &layout, &sink);

    for (c, what) in [
        (with_creds("wrong-pass"), "wrong"),
        (client(json!({})), "missing"),
    ] {
        let (_s, root) = sink_dir();
        let sink = DirSink::new(&root).unwrap();
        let (res, _) = pull(&c, &name, &sink).await;
        let e = res.unwrap_err();
        let msg = e.to_string();
        eprintln!("MSG: {msg}");
        assert!(matches!(e, Error::Unauthorized(_)), "{what}: {msg}");
        assert!(msg.contains("401"), "{what}: {msg}");
        assert!(
            msg.contains(&reg.host()),
            "{what}: names the registry: {msg}"
        );
        assert!(
            !msg.contains("wrong-pass"),
            "{what}: never shows the password: {msg}"
        );
        assert!(!sink.exists(&d(&layout.layer_digest)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tag_names_the_reference_and_every_endpoint() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let mirror = Registry::start(Some(&up.url()), None).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let c = client(json!({"registry-mirrors-by-host": {up.host(): [dead.clone(), mirror.url()]}}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("{}/test/busybox:nope", up.host()), &sink).await;
    let e = res.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NotFound(_)), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "manifest unknown: {}/test/busybox:nope (tried: ",
            up.host()
        )),
        "{msg}"
    );
    for ep in [&dead, &mirror.url(), &up.url()] {
        assert!(msg.contains(ep.as_str()), "{ep} missing from: {msg}");
    }
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(msg.contains("MANIFEST_UNKNOWN"), "{msg}");

    // Unknown repository at an unreachable registry: Unavailable, naming it.
    let gone = format!("127.0.0.1:{}", free_port());
    let (res, _) = pull(&client(json!({})), &format!("{gone}/x/y"), &sink).await;
    let e = res.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e}");
    assert!(e.to_string().contains(&gone), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_share_one_download_per_blob() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let (pport, blob_gets) = counting_proxy(up.host()).await;
    let host = format!("127.0.0.1:{pport}");
    let c = client(json!({}));
    let (_s, root) = sink_dir();
    let sink = Arc::new(DirSink::new(&root).unwrap());
    let name = format!("{host}/test/busybox");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (c, sink, name) = (c.clone(), sink.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            c.pull(&reference(&name), &Platform::host(), sink.as_ref(), tx)
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        blob_gets.load(Ordering::SeqCst),
        2,
        "config and layer downloaded once each"
    );
    assert_eq!(
        sink.read(&d(&layout.layer_digest)).unwrap(),
        layout_blob(&layout.dir, &layout.layer_digest).unwrap()
    );
}

/// A fake registry that requires a bearer token from its own token service, and redirects
/// blob downloads to a "CDN" on another port that must not see the Authorization header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_with_cross_host_redirect() {
    let (_f, layout) = fixture();
    let dir = layout.dir.clone();
    let token_requests: Arc<Mutex<Vec<Req>>> = Arc::default();
    let cdn_requests: Arc<Mutex<Vec<Req>>> = Arc::default();
    let cdn_log = cdn_requests.clone();
    let cdn_dir = dir.clone();
    let cdn = serve(move |req| {
        cdn_log.lock().unwrap().push(req.clone());
        let dg = req.path().trim_start_matches("/cdn/").to_string();
        match layout_blob(&cdn_dir, &dg) {
            Some(b) => Resp::new(200).body(b),
            None => Resp::new(404),
        }
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let realm = format!("http://127.0.0.1:{port}/token");
    let tlog = token_requests.clone();
    let manifest_digest = layout.manifest_digest.clone();
    let registry_auth_seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = registry_auth_seen.clone();
    serve_at(listener, move |req| {
        let challenge = format!(
            "Bearer realm=\"{realm}\",service=\"fake-registry\",scope=\"repository:test/busybox:pull\""
        );
        if req.path() == "/token" {
            tlog.lock().unwrap().push(req.clone());
            // base64("bob:builder")
            if req.header("authorization") != Some("Basic Ym9iOmJ1aWxkZXI=") {
                return Resp::new(401)
                    .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad creds"}]}"#);
            }
            return Resp::new(200)
                .header("Content-Type", "application/json")
                .body(r#"{"token":"tok-123","expires_in":300}"#);
        }
        seen.lock()
            .unwrap()
            .push(req.header("authorization").map(str::to_string));
        if req.header("authorization") != Some("Bearer tok-123") {
            return Resp::new(401)
                .header("WWW-Authenticate", &challenge)
                .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#);
        }
        let path = req.path().to_string();
        if path == "/v2/" {
            return Resp::new(200);
        }
        if path == "/v2/test/busybox/manifests/latest" {
            return Resp::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", &manifest_digest)
                .body(layout_blob(&dir, &manifest_digest).unwrap());
        }
        if let Some(dg) = path.strip_prefix("/v2/test/busybox/blobs/") {
            return Resp::new(307).header("Location", &format!("http://127.0.0.1:{cdn}/cdn/{dg}"));
        }
        Resp::new(404).body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#)
    });
    let host = format!("127.0.0.1:{port}");
    let name = format!("{host}/test/busybox");
    let with_auth = |auth: &str| {
        let cfg_dir = tempfile::tempdir().unwrap();
        let cfg_path = cfg_dir.path().join("config.json");
        std::fs::write(
            &cfg_path,
            json!({"auths": {format!("http://{host}"): {"auth": auth}}}).to_string(),
        )
        .unwrap();
        let mut cfg = RegistryConfig::default();
        cfg.load_credentials(&cfg_path).unwrap();
        Client::new(cfg).unwrap()
    };

    let c = with_auth("Ym9iOmJ1aWxkZXI=");
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &name, &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);

    let toks = token_requests.lock().unwrap().clone();
    assert_eq!(toks.len(), 1, "one token, cached for the scope: {toks:?}");
    assert!(
        toks[0].target.contains("service=fake-registry"),
        "{}",
        toks[0].target
    );
    assert!(
        toks[0]
            .target
            .contains("scope=repository%3Atest%2Fbusybox%3Apull"),
        "{}",
        toks[0].target
    );
    let cdn_reqs = cdn_requests.lock().unwrap().clone();
    assert_eq!(cdn_reqs.len(), 2, "config and layer fetched from the CDN");
    assert!(
        cdn_reqs.iter().all(|r| r.header("authorization").is_none()),
        "Authorization must be dropped on a cross-host redirect"
    );
    assert!(registry_auth_seen
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.as_deref() == Some("Bearer tok-123")));

    // Wrong credentials: a clear 401 naming the registry and the token service.
    let c = with_auth("Ym9iOm5vcGU="); // bob:nope
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &name, &sink).await;
    let e = res.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Unauthorized(_)), "{msg}");
    assert!(
        msg.contains("user \"bob\"") && msg.contains(&host) && msg.contains("/token"),
        "{msg}"
    );
    assert!(!msg.contains("nope"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_mirror_times_out_and_is_skipped() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    // Accepts connections and never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let mut cfg = RegistryConfig::from_daemon_json(
        &json!({"registry-mirrors-by-host": {up.host(): [slow.clone()]}}),
    )
    .unwrap();
    cfg.request_timeout = Duration::from_millis(500);
    cfg.max_retries = 0;
    let c = Client::new(cfg).unwrap();
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("{}/test/busybox", up.host()), &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    assert!(
        res.skipped
            .iter()
            .any(|(e, why)| *e == slow && why.contains("timed out")),
        "{:?}",
        res.skipped
    );
    assert!(res.served_by.iter().all(|(_, e)| *e == up.url()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_are_cut_at_ten() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h2 = hits.clone();
    let port = serve(move |req| {
        if req.path() == "/v2/" {
            return Resp::new(200);
        }
        h2.fetch_add(1, Ordering::SeqCst);
        Resp::new(302).header("Location", req.path())
    })
    .await;
    let c = client(json!({}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("127.0.0.1:{port}/loop/img"), &sink).await;
    let msg = res.unwrap_err().to_string();
    assert!(msg.contains("more than 10 redirects"), "{msg}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        11,
        "the first request and 10 redirects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_without_tag_resolution_serves_only_content_by_digest() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/busybox:latest", None);
    let mirror = Registry::start(Some(&up.url()), None).await;
    let c = client(
        json!({"registry-mirrors-by-host": {up.host(): [{"url": mirror.url(), "resolve-tags": false}]}}),
    );
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("{}/test/busybox:latest", up.host()), &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    assert_eq!(
        served(&res, &layout.manifest_digest),
        up.url(),
        "the tag is resolved upstream"
    );
    assert_eq!(
        served(&res, &layout.layer_digest),
        mirror.url(),
        "content comes from the mirror"
    );
    assert_eq!(served(&res, &layout.config_digest), mirror.url());
}

/// A fake registry serving an index (host platform + another) and a schema1 manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_selects_the_host_platform_and_schema1_is_unsupported() {
    let (_f, layout) = fixture();
    let dir = layout.dir.clone();
    let host_p = Platform::host();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": Digest::of(b"other").to_string(), "size": 5,
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": layout.manifest_digest, "size": layout.manifest_size,
             "platform": host_p},
        ]
    }))
    .unwrap();
    let index_digest = Digest::of(&index).to_string();
    let idx = index.clone();
    let md = layout.manifest_digest.clone();
    let port = serve(move |req| {
        let p = req.path().to_string();
        if p == "/v2/" {
            return Resp::new(200);
        }
        if p == "/v2/multi/img/manifests/latest" {
            return Resp::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .body(idx.clone());
        }
        if p == "/v2/old/img/manifests/latest" {
            return Resp::new(200)
                .header(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v1+prettyjws",
                )
                .body(r#"{"schemaVersion":1,"name":"old/img","tag":"latest","fsLayers":[]}"#);
        }
        if p == format!("/v2/multi/img/manifests/{md}") {
            return Resp::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(layout_blob(&dir, &md).unwrap());
        }
        if let Some(dg) = p.strip_prefix("/v2/multi/img/blobs/") {
            if let Some(b) = layout_blob(&dir, dg) {
                return Resp::new(200).body(b);
            }
        }
        Resp::new(404)
    })
    .await;
    let c = client(json!({}));
    let (_s, root) = sink_dir();
    let sink = DirSink::new(&root).unwrap();
    let (res, _) = pull(&c, &format!("127.0.0.1:{port}/multi/img"), &sink).await;
    let res = res.unwrap();
    assert_fixture_pulled(&res, &layout, &sink);
    let (idx_d, idx_bytes) = res.index.clone().expect("index recorded");
    assert_eq!(idx_d.to_string(), index_digest);
    assert_eq!(idx_bytes, index);

    // A platform the index lacks: the error lists what is available.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let want = Platform {
        os: "linux".into(),
        architecture: "riscv64".into(),
        variant: None,
    };
    let e = c
        .pull(
            &reference(&format!("127.0.0.1:{port}/multi/img")),
            &want,
            &sink,
            tx,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("linux/riscv64") && e.to_string().contains("linux/s390x"),
        "{e}"
    );

    let (res, _) = pull(&c, &format!("127.0.0.1:{port}/old/img"), &sink).await;
    let e = res.unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert!(
        e.to_string().contains("manifest.v1+prettyjws") && e.to_string().contains("old/img"),
        "{e}"
    );
}
