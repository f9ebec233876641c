//! Blobs corrupted on disk after they were stored: never served as a complete success.

use axum::http::StatusCode;

use crate::fixture::{Fixture, WHEEL_LEN};
use crate::server::{Running, client};
use crate::{get, send};

fn failures(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tufa_blob_verification_failures_total "))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn corrupt_page_is_a_500_without_its_bytes() {
    let f = Fixture::local().await;
    let bad = vec![b'Z'; f.html.len()];
    f.corrupt(&f.html_digest, &bad);
    let a = get(&f.app, "/simple/demo/", &[]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.text(), "internal error\n");
    assert!(!a.text().contains("ZZZZ"));

    // A truncated gzip variant, likewise.
    let gzip_digest = tufa_pypi::Sha256Digest::of(&f.html_gzip);
    f.corrupt(&gzip_digest, &f.html_gzip[..f.html_gzip.len() / 2]);
    let a = get(&f.app, "/simple/demo/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.text(), "internal error\n");

    // And a zstd variant with one byte changed.
    let zstd_digest = tufa_pypi::Sha256Digest::of(&f.html_zstd);
    let mut flipped = f.html_zstd.to_vec();
    *flipped.last_mut().unwrap() ^= 1;
    f.corrupt(&zstd_digest, &flipped);
    let a = get(&f.app, "/simple/demo/", &[("accept-encoding", "zstd")]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.text(), "internal error\n");

    // The intact JSON page is still served.
    let a = get(
        &f.app,
        "/simple/demo/",
        &[("accept", "application/vnd.pypi.simple.v1+json")],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);

    let m = get(&f.app, "/metrics", &[]).await.text();
    assert_eq!(failures(&m), 3);
}

#[tokio::test]
async fn cached_pages_stay_served_from_verified_bytes() {
    let f = Fixture::local().await;
    assert_eq!(get(&f.app, "/simple/demo/", &[]).await.body, f.html);
    // Corrupted after it was verified and cached: the cache holds the verified bytes.
    f.corrupt(&f.html_digest, &vec![b'Z'; f.html.len()]);
    assert_eq!(get(&f.app, "/simple/demo/", &[]).await.body, f.html);
    // A replica without the cached copy refuses.
    let (_, fresh) = f.fresh_app();
    assert_eq!(
        get(&fresh, "/simple/demo/", &[]).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn corrupt_metadata_is_a_500() {
    let f = Fixture::local().await;
    f.corrupt(&f.metadata_digest, &vec![b'Z'; f.metadata.len()]);
    let a = get(&f.app, &format!("{}.metadata", f.wheel_url()), &[]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!a.text().contains("ZZZZ"));
    assert_eq!(failures(&get(&f.app, "/metrics", &[]).await.text()), 1);
}

#[tokio::test]
async fn corrupt_file_body_fails_in_process() {
    let f = Fixture::local().await;
    let mut bad = f.wheel.to_vec();
    bad[WHEEL_LEN - 1] ^= 0xff;
    f.corrupt(&f.wheel_digest, &bad);
    let response = tower::ServiceExt::oneshot(
        f.app.clone(),
        crate::request(axum::http::Method::GET, &f.wheel_url(), &[]),
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "headers go out before the end is known"
    );
    assert!(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .is_err()
    );
    assert_eq!(failures(&get(&f.app, "/metrics", &[]).await.text()), 1);
}

/// Reads a response chunk by chunk, the way a client would: the announced length, the bytes
/// received, and whether the body completed without an error.
async fn download(url: &str) -> (u64, Vec<u8>, bool) {
    let mut response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let len = response.content_length().unwrap();
    let mut received = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            Ok(None) => return (len, received, true),
            Err(_) => return (len, received, false),
        }
    }
}

#[tokio::test]
async fn corrupt_file_is_never_received_complete() {
    let f = Fixture::local().await;
    let mut bad = f.wheel.to_vec();
    bad[10] ^= 0xff; // early: most of the body goes out before the end is reached
    f.corrupt(&f.wheel_digest, &bad);
    let server = Running::start(f.state.clone(), None).await;

    let (len, received, completed) = download(&server.url(&f.wheel_url())).await;
    assert_eq!(len, WHEEL_LEN as u64);
    assert!(!completed, "the body must end in an error");
    assert!((received.len() as u64) < len, "a complete body was received");
    assert_ne!(received, bad);
    let m = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(failures(&m), 1);
    server.stop().await;
}

#[tokio::test]
async fn truncated_file_is_never_received_complete() {
    let f = Fixture::local().await;
    // Longer than one chunk: the first goes out, the last is checked and replaced by an error.
    let truncated = f.wheel[..WHEEL_LEN - 60].to_vec();
    f.corrupt(&f.wheel_digest, &truncated);
    let server = Running::start(f.state.clone(), None).await;

    let (len, received, completed) = download(&server.url(&f.wheel_url())).await;
    assert_eq!(len, truncated.len() as u64, "Content-Length is the stored length");
    assert!(!completed, "the body must end in an error");
    assert!((received.len() as u64) < len, "a complete body was received");

    // Within one chunk: checked before the response starts, a clean 500.
    f.corrupt(&f.wheel_digest, &f.wheel[..WHEEL_LEN / 2]);
    let response = client().get(server.url(&f.wheel_url())).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "internal error\n");

    let m = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(failures(&m), 2);
    server.stop().await;
}

#[tokio::test]
async fn range_of_a_corrupt_file_is_a_500() {
    let f = Fixture::local().await;
    let mut bad = f.wheel.to_vec();
    bad[WHEEL_LEN - 1] ^= 0xff;
    f.corrupt(&f.wheel_digest, &bad);
    for range in ["bytes=0-9", "bytes=-5"] {
        let a = send(
            &f.app,
            crate::request(axum::http::Method::GET, &f.wheel_url(), &[("range", range)]),
        )
        .await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{range}");
        assert_eq!(a.text(), "internal error\n");
    }
    assert_eq!(failures(&get(&f.app, "/metrics", &[]).await.text()), 2);
}
