//! How a reader reads the local disk: files hashed per download (or once per file identity,
//! opt-in), a changed file never served under its old digest, `timestamp.json` reread when it
//! is replaced, and publishes that a concurrent reader sees whole.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use tufa_pypi::Sha256Digest;
use tufa_server::{AppState, FileVerification, ReaderOptions, ServerLimits, router};
use tufa_store::BlobStore;
use tufa_tree::{PublishPointer, write_pointer};

use crate::findings::metric;
use crate::fixture::{Fixture, WHEEL_LEN, publish};
use crate::{get, send};

fn downloads(text: &str, how: &str) -> u64 {
    metric(
        text,
        &format!("tufa_file_downloads_total{{verification=\"{how}\"}}"),
    )
}

fn once_per_file(f: &Fixture) -> axum::Router {
    router(AppState::with_options(
        f.store.clone(),
        ServerLimits::default(),
        ReaderOptions {
            poll_interval: Duration::ZERO,
            file_verification: FileVerification::OncePerFile,
        },
    ))
}

/// A body that completed without an error, or `None`.
async fn complete_body(app: &axum::Router, url: &str) -> Option<Bytes> {
    let response = tower::ServiceExt::oneshot(app.clone(), crate::request(Method::GET, url, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    axum::body::to_bytes(response.into_body(), usize::MAX).await.ok()
}

/// Rewrites a blob in place (same inode), as a faulty disk tool or an attacker with write access
/// would, after a pause so that its mtime and ctime move on (see tufa-server's `local` module).
fn rewrite_in_place(f: &Fixture, digest: &Sha256Digest, data: &[u8]) {
    std::thread::sleep(Duration::from_millis(20));
    f.corrupt(digest, data);
}

#[tokio::test]
async fn a_file_changed_on_disk_after_it_was_served_is_refused() {
    for mode in [FileVerification::EveryRequest, FileVerification::OncePerFile] {
        let f = Fixture::local().await;
        let app = match mode {
            FileVerification::EveryRequest => f.app.clone(),
            FileVerification::OncePerFile => once_per_file(&f),
        };
        let url = f.wheel_url();
        assert_eq!(complete_body(&app, &url).await.unwrap(), f.wheel, "{mode:?}");
        let mut bad = f.wheel.to_vec();
        bad[WHEEL_LEN / 2] ^= 0xff;
        rewrite_in_place(&f, &f.wheel_digest, &bad);
        assert!(
            complete_body(&app, &url).await.is_none(),
            "{mode:?}: served complete"
        );
        let m = get(&app, "/metrics", &[]).await.text();
        assert_eq!(metric(&m, "tufa_blob_verification_failures_total"), 1, "{mode:?}");
        assert_eq!(downloads(&m, "trusted"), 0, "{mode:?}");
    }
}

#[tokio::test]
async fn once_per_file_trusts_only_an_unchanged_file() {
    let f = Fixture::local().await;
    let app = once_per_file(&f);
    let url = f.wheel_url();
    for _ in 0..3 {
        assert_eq!(complete_body(&app, &url).await.unwrap(), f.wheel);
    }
    let m = get(&app, "/metrics", &[]).await.text();
    assert_eq!((downloads(&m, "hashed"), downloads(&m, "trusted")), (1, 2));

    // The same bytes written again in place: a new identity, hashed again, then trusted.
    rewrite_in_place(&f, &f.wheel_digest, &f.wheel);
    for _ in 0..2 {
        assert_eq!(complete_body(&app, &url).await.unwrap(), f.wheel);
    }
    let m = get(&app, "/metrics", &[]).await.text();
    assert_eq!((downloads(&m, "hashed"), downloads(&m, "trusted")), (2, 3));

    // The default mode hashes every download.
    for _ in 0..2 {
        assert_eq!(complete_body(&f.app, &url).await.unwrap(), f.wheel);
    }
    let m = get(&f.app, "/metrics", &[]).await.text();
    assert_eq!((downloads(&m, "hashed"), downloads(&m, "trusted")), (2, 0));
}

#[tokio::test]
async fn a_complete_download_spares_ranges_the_whole_blob_hash() {
    let f = Fixture::local().await;
    let url = f.wheel_url();
    assert_eq!(complete_body(&f.app, &url).await.unwrap(), f.wheel);
    let a = send(
        &f.app,
        crate::request(Method::GET, &url, &[("range", "bytes=0-9")]),
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.body, f.wheel.slice(0..10));
    let m = get(&f.app, "/metrics", &[]).await.text();
    // The download verified the version the range request sees (same length and mtime).
    assert_eq!(metric(&m, "tufa_blob_verifications_total"), 0);

    // Changed in place: the range request hashes the new version and refuses it.
    let mut bad = f.wheel.to_vec();
    bad[WHEEL_LEN - 1] ^= 0xff;
    rewrite_in_place(&f, &f.wheel_digest, &bad);
    let a = send(
        &f.app,
        crate::request(Method::GET, &url, &[("range", "bytes=0-9")]),
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let m = get(&f.app, "/metrics", &[]).await.text();
    assert_eq!(metric(&m, "tufa_blob_verifications_total"), 1);
}

#[tokio::test]
async fn a_local_timestamp_is_reread_when_replaced() {
    let f = Fixture::local().await;
    let app = router(AppState::with_poll_interval(
        f.store.clone(),
        ServerLimits::default(),
        Duration::from_secs(3600),
    ));
    let key = "published/tuf/timestamp.json";
    assert_eq!(get(&app, "/tuf/timestamp.json", &[]).await.status, 404);
    f.store
        .put_named(key, Bytes::from_static(b"{\"v\":1}"))
        .await
        .unwrap();
    let one = get(&app, "/tuf/timestamp.json", &[]).await;
    assert_eq!(one.text(), "{\"v\":1}");
    f.store
        .put_named(key, Bytes::from_static(b"{\"v\":2}"))
        .await
        .unwrap();
    let two = get(&app, "/tuf/timestamp.json", &[]).await;
    assert_eq!(two.text(), "{\"v\":2}");
    assert_ne!(one.header("etag"), two.header("etag"));
    assert_eq!(
        two.header("etag").unwrap(),
        format!("\"{}\"", Sha256Digest::of(b"{\"v\":2}"))
    );
    f.store.delete_named(key).await.unwrap();
    assert_eq!(get(&app, "/tuf/timestamp.json", &[]).await.status, 404);
}

/// While a writer publishes release after release of a project, readers (one reading the store
/// per request, one polling) only ever get whole pages, and every file a page lists is served
/// with exactly the sha256 the page gives for it.
#[tokio::test]
async fn requests_during_publishes_get_whole_pages() {
    const PUBLISHES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap();
    // Publish n lists a release for each of 0..=n, as releases accumulate upstream (a file a
    // later publish removes is a 404 from then on, by design: only published files are served).
    let files = |n: usize| -> Vec<(String, Bytes)> {
        (0..=n)
            .map(|i| {
                (
                    format!("demo-{i}.0-py3-none-any.whl"),
                    Bytes::from(format!("release {i} ").repeat(50 + i)),
                )
            })
            .collect()
    };
    let publish_n = move |store: BlobStore, n: usize| async move {
        let owned = files(n);
        let refs: Vec<(&str, &Bytes)> = owned.iter().map(|(n, d)| (n.as_str(), d)).collect();
        publish(&store, "demo", &refs, BTreeMap::new(), false).await;
        let pointer = PublishPointer {
            version: 1,
            publish_id: n.to_string(),
            published_at: "2026-12-03T00:00:00Z".into(),
            timestamp_version: None,
        };
        write_pointer(&store, &pointer).await.unwrap();
    };
    publish_n(store.clone(), 0).await;
    let done = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let store = store.clone();
        async move {
            for n in 1..=PUBLISHES {
                publish_n(store.clone(), n).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let readers = [Duration::ZERO, Duration::from_millis(10)].map(|poll| {
        let app = router(AppState::with_poll_interval(
            store.clone(),
            ServerLimits::default(),
            poll,
        ));
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen = 0usize;
            let mut checked = 0usize;
            loop {
                let last_round = done.load(Ordering::SeqCst);
                if last_round {
                    // Past the poll interval: the last publish is visible now.
                    tokio::time::sleep(poll * 3).await;
                }
                let page = get(
                    &app,
                    "/simple/demo/",
                    &[("accept", "application/vnd.pypi.simple.v1+json")],
                )
                .await;
                assert_eq!(page.status, StatusCode::OK);
                let v: serde_json::Value = serde_json::from_slice(&page.body).expect("a whole JSON page");
                let listed = v["files"].as_array().unwrap();
                seen = seen.max(listed.len());
                for file in listed {
                    let name = file["filename"].as_str().unwrap();
                    let url = file["url"].as_str().unwrap().trim_start_matches("../..");
                    let body = get(&app, url, &[]).await;
                    assert_eq!(body.status, StatusCode::OK, "{url}");
                    assert_eq!(
                        Sha256Digest::of(&body.body).to_hex(),
                        file["hashes"]["sha256"].as_str().unwrap(),
                        "{name}"
                    );
                    checked += 1;
                }
                if last_round {
                    return (seen, checked);
                }
            }
        })
    });
    writer.await.unwrap();
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        let (most_listed, files_checked) = reader.await.unwrap();
        assert_eq!(most_listed, PUBLISHES + 1, "the last round sees the last publish");
        assert!(files_checked > PUBLISHES, "only {files_checked} files checked");
    }
}
