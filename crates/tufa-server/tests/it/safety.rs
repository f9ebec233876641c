//! Hostile paths and oversized requests.

use axum::http::{Method, StatusCode};

use crate::fixture::Fixture;
use crate::{get, send};

#[tokio::test]
async fn traversal_attempts_never_succeed_or_leak() {
    let f = Fixture::local().await;
    let root = f.dir.as_ref().unwrap().path().to_string_lossy().into_owned();
    let hex = f.wheel_digest.to_hex();
    let prefix = format!("/files/{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..]);
    let attempts = [
        "/files/../../etc/passwd".to_owned(),
        "/files/%2e%2e/x".to_owned(),
        "/files/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/files/..%2f..%2fetc%2fpasswd".to_owned(),
        format!("{prefix}/..%2f..%2f..%2fpublished%2fprojects%2fdemo.json"),
        format!("{prefix}/../demo-1.0-py3-none-any.whl"),
        format!("{prefix}/demo-1.0-py3-none-any.whl%00"),
        format!("{prefix}/%00demo-1.0-py3-none-any.whl"),
        format!("{prefix}/demo-1.0-py3-none-any.whl/.."),
        format!("{prefix}/.demo-1.0-py3-none-any.whl"),
        "/files/blobs/sha256/aa/bb/x".to_owned(),
        "/simple/..%2f..%2fetc/".to_owned(),
        "/simple/%2e%2e/".to_owned(),
        "/simple/../".to_owned(),
        "/simple/../../etc/passwd".to_owned(),
        "/simple/demo%00/".to_owned(),
        "/simple/%00/".to_owned(),
        "/simple/%ff/".to_owned(),
        "/simple/demo%2f..%2f/".to_owned(),
        "/simple/..%5c..%5c/".to_owned(),
        "/../etc/passwd".to_owned(),
        "/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/published/projects/demo.json".to_owned(),
        "/blobs/sha256/".to_owned(),
    ];
    for uri in &attempts {
        let a = get(&f.app, uri, &[]).await;
        assert!(
            a.status == StatusCode::NOT_FOUND || a.status == StatusCode::BAD_REQUEST,
            "{uri}: {}",
            a.status
        );
        let body = a.text();
        assert!(!body.contains(&root), "{uri} leaked the store path: {body}");
        assert!(
            !body.contains("passwd") && !body.contains("blobs") && !body.contains("published"),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn overlong_paths_are_414() {
    let f = Fixture::memory().await;
    let long = format!("/simple/{}/", "a".repeat(2000));
    let a = get(&f.app, &long, &[]).await;
    assert_eq!(a.status, StatusCode::URI_TOO_LONG);
    let long_query = format!("/simple/demo/?format={}", "x".repeat(2000));
    let a = get(&f.app, &long_query, &[]).await;
    assert_eq!(a.status, StatusCode::URI_TOO_LONG);
    let long_other = format!("/{}", "b".repeat(1100));
    let a = get(&f.app, &long_other, &[]).await;
    assert_eq!(a.status, StatusCode::URI_TOO_LONG);
    // Just under the limit is served normally (a 404 for an unknown, valid name is fine).
    let a = get(&f.app, &format!("/simple/{}/", "a".repeat(150)), &[]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let f = Fixture::memory().await;
    let big = "x".repeat(20 * 1024);
    let a = get(&f.app, "/simple/demo/", &[("x-padding", &big)]).await;
    assert_eq!(a.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let f = Fixture::memory().await;
    for uri in [
        "/",
        "/index.html",
        "/tuf/1.root.json",
        "/files/",
        "/simple/demo/extra/",
    ] {
        let a = get(&f.app, uri, &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(a.text(), "not found\n");
    }
    let a = send(&f.app, crate::request(Method::POST, "/simple/demo/", &[])).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let a = send(&f.app, crate::request(Method::DELETE, &f.wheel_url(), &[])).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}
