//! Tag listing for `pull --all-tags`: a real `docker-registry` on loopback, a paginating fake,
//! and the tag policy (a mirror that may not resolve tags is never asked).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_registry::{Client, Error, Progress, Reference, RegistryConfig};
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn client(v: serde_json::Value) -> Client {
    let mut cfg = RegistryConfig::from_daemon_json(&v).unwrap();
    cfg.request_timeout = Duration::from_secs(5);
    Client::new(cfg).unwrap()
}

async fn tags(c: &Client, r: &str) -> (berth_registry::Result<Vec<String>>, Vec<Progress>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let res = c
        .list_tags(&Reference::parse_normalized(r).unwrap(), &tx)
        .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (res, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_every_tag_of_a_real_registry_and_names_an_unknown_repository() {
    let (_f, layout) = fixture();
    let reg = Registry::start(None, None).await;
    for t in ["b", "a", "1.0"] {
        seed(&layout.dir, &reg.host(), &format!("test/multi:{t}"), None);
    }
    seed(&layout.dir, &reg.host(), "test/other:x", None);
    let c = client(json!({}));
    // The reference's own tag does not matter.
    let (res, events) = tags(&c, &format!("{}/test/multi:zzz", reg.host())).await;
    let mut got = res.unwrap();
    got.sort();
    assert_eq!(got, ["1.0", "a", "b"]);
    assert!(events.is_empty(), "{events:?}");

    let (res, _) = tags(&c, &format!("{}/test/none", reg.host())).await;
    let err = res.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{}/test/none", reg.host())) && msg.contains("404"),
        "{msg}"
    );
}

/// A fake registry splitting the list over three pages linked with `Link: <..>; rel="next"`;
/// a repeated tag is listed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_link_pagination() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let port = serve(move |req| {
        if req.path() == "/v2/" {
            return Resp::new(200);
        }
        s2.lock().unwrap().push(req.target.clone());
        let (tags, next): (&[&str], Option<&str>) = match req.target.as_str() {
            "/v2/p/q/tags/list" => (
                &["a", "b"],
                Some("</v2/p/q/tags/list?last=b&n=2>; rel=\"next\""),
            ),
            "/v2/p/q/tags/list?last=b&n=2" => (
                &["b", "c"],
                Some("</v2/p/q/tags/list?last=c&n=2>; rel=\"next\""),
            ),
            "/v2/p/q/tags/list?last=c&n=2" => (&["d"], None),
            _ => return Resp::new(404),
        };
        let body = serde_json::to_vec(&json!({"name": "p/q", "tags": tags})).unwrap();
        let mut r = Resp::new(200)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(l) = next {
            r = r.header("Link", l);
        }
        r
    })
    .await;
    let c = client(json!({}));
    let (res, _) = tags(&c, &format!("127.0.0.1:{port}/p/q")).await;
    assert_eq!(res.unwrap(), ["a", "b", "c", "d"]);
    assert_eq!(seen.lock().unwrap().len(), 3, "{:?}", seen.lock().unwrap());
}

/// A next link to another host is refused (credentials would follow it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_next_link_to_another_host() {
    let port = serve(move |req| {
        if req.path() == "/v2/" {
            return Resp::new(200);
        }
        Resp::new(200)
            .header(
                "Link",
                "<http://127.0.0.2:1/v2/p/q/tags/list?last=a>; rel=\"next\"",
            )
            .body(br#"{"name":"p/q","tags":["a"]}"#.to_vec())
    })
    .await;
    let c = client(json!({}));
    let (res, events) = tags(&c, &format!("127.0.0.1:{port}/p/q")).await;
    let msg = res.unwrap_err().to_string();
    assert!(msg.contains("links to another host"), "{msg}");
    assert!(
        events.iter().any(|e| matches!(e, Progress::Skipped { .. })),
        "{events:?}"
    );
}

/// Tags come from mirrors allowed to resolve them and the registry, never from a mirror
/// with `resolve-tags: false`; a tag-resolving mirror is asked first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tag_resolving_endpoints_list_tags() {
    let (_f, layout) = fixture();
    let up = Registry::start(None, None).await;
    seed(&layout.dir, &up.host(), "test/m:up", None);
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let fake = serve(move |req| {
        if req.path() == "/v2/" {
            return Resp::new(200);
        }
        h2.fetch_add(1, Ordering::SeqCst);
        Resp::new(200).body(br#"{"name":"test/m","tags":["from-mirror"]}"#.to_vec())
    })
    .await;
    let mirror = format!("http://127.0.0.1:{fake}");
    let no_tags = client(
        json!({"registry-mirrors-by-host": {up.host(): [{"url": mirror, "resolve-tags": false}]}}),
    );
    let (res, _) = tags(&no_tags, &format!("{}/test/m", up.host())).await;
    assert_eq!(res.unwrap(), ["up"]);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the mirror was asked for tags"
    );

    let resolving = client(json!({"registry-mirrors-by-host": {up.host(): [mirror]}}));
    let (res, _) = tags(&resolving, &format!("{}/test/m", up.host())).await;
    assert_eq!(res.unwrap(), ["from-mirror"]);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
