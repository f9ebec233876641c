//! A reader with a poll interval answers from memory between publishes and switches when the
//! writer's publish pointer (`published/current.json`) changes — never before.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tufa_server::{AppState, router};
use tufa_store::BlobStore;
use tufa_tree::{POINTER_KEY, PublishPointer, write_pointer};

use crate::fixture::publish;
use crate::get;

const JSON: &str = "application/vnd.pypi.simple.v1+json";
const POLL: Duration = Duration::from_millis(50);

async fn point(store: &BlobStore, id: &str) {
    let pointer = PublishPointer {
        version: 1,
        publish_id: id.into(),
        published_at: "2026-12-03T00:00:00Z".into(),
        timestamp_version: None,
    };
    write_pointer(store, &pointer).await.unwrap();
}

fn filenames(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_publish_is_seen_only_when_the_pointer_changes() {
    let store = BlobStore::memory();
    let one = Bytes::from_static(b"first wheel");
    let two = Bytes::from_static(b"second wheel");
    publish(
        &store,
        "demo",
        &[("demo-1.0-py3-none-any.whl", &one)],
        BTreeMap::new(),
        false,
    )
    .await;
    store
        .put_named("published/tuf/timestamp.json", Bytes::from_static(b"{\"v\":1}"))
        .await
        .unwrap();
    point(&store, "1").await;

    let app = router(AppState::with_poll_interval(
        store.clone(),
        Default::default(),
        POLL,
    ));
    let page = get(&app, "/simple/demo/", &[("accept", JSON)]).await;
    assert_eq!(filenames(&page.body), ["demo-1.0-py3-none-any.whl"]);
    assert_eq!(get(&app, "/tuf/timestamp.json", &[]).await.text(), "{\"v\":1}");
    assert_eq!(get(&app, "/simple/other/", &[]).await.status, 404);
    let root = get(&app, "/simple/", &[("accept", JSON)]).await.text();
    assert!(!root.contains("other"), "{root}");

    // The writer publishes a new release and a new project, but has not written the pointer
    // yet: the reader keeps answering the previous publish, even after the poll interval.
    publish(
        &store,
        "demo",
        &[
            ("demo-1.0-py3-none-any.whl", &one),
            ("demo-2.0-py3-none-any.whl", &two),
        ],
        BTreeMap::new(),
        false,
    )
    .await;
    publish(&store, "other", &[], BTreeMap::new(), false).await;
    store
        .put_named("published/tuf/timestamp.json", Bytes::from_static(b"{\"v\":2}"))
        .await
        .unwrap();
    tokio::time::sleep(POLL * 3).await;
    let page = get(&app, "/simple/demo/", &[("accept", JSON)]).await;
    assert_eq!(filenames(&page.body), ["demo-1.0-py3-none-any.whl"]);
    // TUF's timestamp is always the store's newest (see the `current` module): every reader
    // behind a load balancer agrees on it, so a client never sees it go back.
    assert_eq!(get(&app, "/tuf/timestamp.json", &[]).await.text(), "{\"v\":2}");
    assert_eq!(
        get(&app, "/simple/other/", &[]).await.status,
        404,
        "a 404 holds too"
    );
    let root = get(&app, "/simple/", &[("accept", JSON)]).await.text();
    assert!(!root.contains("other"), "the listing holds too: {root}");

    // The pointer moves: within one poll interval everything switches together.
    point(&store, "2").await;
    tokio::time::sleep(POLL * 2).await;
    let page = get(&app, "/simple/demo/", &[("accept", JSON)]).await;
    assert_eq!(
        filenames(&page.body),
        ["demo-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl"]
    );
    assert_eq!(get(&app, "/simple/other/", &[]).await.status, 200);
    let root = get(&app, "/simple/", &[("accept", JSON)]).await.text();
    assert!(root.contains("\"other\""), "{root}");
    // The new file is served (its page lists it), the old one still is.
    let url = page_url(&page.body, "demo-2.0-py3-none-any.whl");
    assert_eq!(get(&app, &url, &[]).await.body, two);
}

#[tokio::test]
async fn between_checks_the_store_is_not_read() {
    let store = BlobStore::memory();
    let one = Bytes::from_static(b"wheel");
    publish(
        &store,
        "demo",
        &[("demo-1.0-py3-none-any.whl", &one)],
        BTreeMap::new(),
        false,
    )
    .await;
    point(&store, "1").await;
    let app = router(AppState::with_poll_interval(
        store.clone(),
        Default::default(),
        Duration::from_secs(3600),
    ));
    assert_eq!(get(&app, "/simple/demo/", &[]).await.status, 200);
    // Take the manifest and the pointer away: a reader that went to the store per request
    // would answer 404 now.
    store.delete_named("published/projects/demo.json").await.unwrap();
    store.delete_named(POINTER_KEY).await.unwrap();
    assert_eq!(get(&app, "/simple/demo/", &[]).await.status, 200);
    // Without a poll interval the store is read every time.
    let direct = router(AppState::new(store.clone(), Default::default()));
    assert_eq!(get(&direct, "/simple/demo/", &[]).await.status, 404);
}

/// The absolute URL path of `filename` in a JSON page served at `/simple/demo/`.
fn page_url(body: &[u8], filename: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let file = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap();
    let rel = file["url"].as_str().unwrap();
    format!("/{}", rel.strip_prefix("../../").unwrap())
}
