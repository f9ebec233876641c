//! TUF: `/tuf/<file>`, the hash-prefixed targets (pages, files, metadata), and the timestamp
//! checks of `/readyz` and `/metrics`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use bytes::Bytes;
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_server::ServerLimits;
use tufa_store::BlobStore;
use tufa_tree::{BlobRef, MANIFEST_VERSION, Page, ProjectManifest, write_manifest};

use crate::fixture::{Fixture, PUBLISHED_AT, WHEEL_LEN};
use crate::{Answer, get, head};

const IMMUTABLE: &str = "max-age=31536000, public, immutable";

fn metadata_bytes(role: &str, version: u64) -> Bytes {
    Bytes::from(format!(
        "{{\"signatures\":[],\"signed\":{{\"_type\":\"{role}\",\"version\":{version},\"note\":\"test\"}}}}"
    ))
}

/// `timestamp.json` that expires `secs` seconds from now (negative: in the past).
fn timestamp_bytes(secs: i64) -> Bytes {
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap();
    Bytes::from(format!(
        "{{\"signatures\":[{{\"keyid\":\"{}\",\"sig\":\"00\"}}],\"signed\":{{\"_type\":\"timestamp\",\
         \"spec_version\":\"1.0.31\",\"version\":7,\"expires\":\"{}\",\
         \"meta\":{{\"snapshot.json\":{{\"version\":3}}}}}}}}",
        "a".repeat(64),
        tufa_tuf::format_expires(expires)
    ))
}

async fn put_tuf(store: &BlobStore, name: &str, data: &Bytes) {
    store
        .put_named(&tufa_tree::tuf_key(name), data.clone())
        .await
        .unwrap();
}

fn etag(data: &[u8]) -> String {
    format!("\"{}\"", Sha256Digest::of(data))
}

fn gauge(metrics: &str) -> Option<i64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tufa_tuf_timestamp_expires_in_seconds "))
        .map(|v| v.parse().unwrap())
}

fn failures(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tufa_blob_verification_failures_total "))
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_not_found(a: &Answer, what: &str) {
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{what}: {}", a.text());
    assert_eq!(a.text(), "not found\n", "{what}");
}

#[tokio::test]
async fn metadata_files_are_served_with_their_headers() {
    for f in [Fixture::memory().await, Fixture::local().await] {
        let mut files = Vec::new();
        for (name, role, version) in [
            ("1.root.json", "root", 1),
            ("2.root.json", "root", 2),
            ("3.snapshot.json", "snapshot", 3),
            ("1.targets.json", "targets", 1),
            ("1.bins.json", "targets", 1),
            ("4.bin-3fff.json", "targets", 4),
            ("4.bin-0.json", "targets", 4),
        ] {
            let data = metadata_bytes(role, version);
            put_tuf(&f.store, name, &data).await;
            files.push((name, data, IMMUTABLE));
        }
        let ts = timestamp_bytes(86_400);
        put_tuf(&f.store, "timestamp.json", &ts).await;
        files.push(("timestamp.json", ts, "no-cache"));

        for (name, data, cache_control) in &files {
            let url = format!("/tuf/{name}");
            let a = get(&f.app, &url, &[("accept-encoding", "gzip")]).await;
            assert_eq!(a.status, StatusCode::OK, "{name}");
            assert_eq!(&a.body, data, "{name}");
            assert_eq!(a.header("content-type"), Some("application/json"), "{name}");
            assert_eq!(a.header("content-length"), Some(data.len().to_string().as_str()));
            assert_eq!(a.header("cache-control"), Some(*cache_control), "{name}");
            assert_eq!(a.header("etag"), Some(etag(data).as_str()), "{name}");
            assert_eq!(a.header("content-encoding"), None, "{name}");

            let h = head(&f.app, &url, &[]).await;
            assert_eq!(h.status, StatusCode::OK);
            assert!(h.body.is_empty());
            for header in ["content-type", "content-length", "cache-control", "etag"] {
                assert_eq!(h.header(header), a.header(header), "{name} {header}");
            }

            let n = get(&f.app, &url, &[("if-none-match", &etag(data))]).await;
            assert_eq!(n.status, StatusCode::NOT_MODIFIED, "{name}");
            assert!(n.body.is_empty());
            assert_eq!(n.header("cache-control"), Some(*cache_control));
            assert_eq!(n.header("etag"), Some(etag(data).as_str()));
        }

        // A new timestamp is served at once, with a new ETag.
        let newer = timestamp_bytes(2 * 86_400);
        put_tuf(&f.store, "timestamp.json", &newer).await;
        let a = get(&f.app, "/tuf/timestamp.json", &[]).await;
        assert_eq!(a.body, newer);
        let stale = get(
            &f.app,
            "/tuf/timestamp.json",
            &[("if-none-match", &etag(&files.last().unwrap().1))],
        )
        .await;
        assert_eq!(stale.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn next_root_probe_is_a_404_until_published() {
    let f = Fixture::local().await;
    put_tuf(&f.store, "1.root.json", &metadata_bytes("root", 1)).await;
    put_tuf(&f.store, "2.root.json", &metadata_bytes("root", 2)).await;
    let a = get(&f.app, "/tuf/3.root.json", &[]).await;
    assert_not_found(&a, "3.root.json");
    assert_eq!(
        a.header("cache-control"),
        Some("no-cache"),
        "a 404 must not be cached"
    );
    assert_eq!(
        head(&f.app, "/tuf/3.root.json", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    // Missing timestamp (an unsigned mirror) likewise.
    assert_not_found(&get(&f.app, "/tuf/timestamp.json", &[]).await, "timestamp");

    put_tuf(&f.store, "3.root.json", &metadata_bytes("root", 3)).await;
    assert_eq!(get(&f.app, "/tuf/3.root.json", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_metadata_names_are_404_even_when_stored() {
    let f = Fixture::local().await;
    // Objects that exist under names the server must never answer.
    for name in [
        "1.root.json.bak",
        "0.root.json",
        "01.root.json",
        "x.root.json",
        "1.bin-zzzz.json",
        "root.json",
        "1.timestamp.json",
    ] {
        put_tuf(&f.store, name, &metadata_bytes("root", 1)).await;
    }
    put_tuf(&f.store, "1.root.json", &metadata_bytes("root", 1)).await;
    for url in [
        "/tuf/1.root.json.bak",
        "/tuf/0.root.json",
        "/tuf/01.root.json",
        "/tuf/x.root.json",
        "/tuf/1.bin-zzzz.json",
        "/tuf/1.bin-00000.json",
        "/tuf/1.BIN-0000.json",
        "/tuf/root.json",
        "/tuf/1.timestamp.json",
        "/tuf/../x",
        "/tuf/..",
        "/tuf/%2e%2e",
        "/tuf/%2e%2e%2fprojects%2fdemo.json",
        "/tuf/..%2Fprojects%2Fdemo.json",
        "/tuf/..%2F..%2Fpublished%2Fprojects%2Fdemo.json",
        "/tuf/1.root.json%00",
        "/tuf/1.root.json/",
        "/tuf/x/1.root.json",
        "/tuf/",
        "/tuf",
        "/tuf/%31.root.json%2ebak",
    ] {
        assert_not_found(&get(&f.app, url, &[]).await, url);
    }
    // Percent-encoding of allowed characters is fine: the decoded name is checked.
    assert_eq!(
        get(&f.app, "/tuf/%31.root.json", &[]).await.status,
        StatusCode::OK
    );
    let metrics = get(&f.app, "/metrics", &[]).await.text();
    assert!(
        metrics.contains("tufa_http_requests_total{route=\"tuf\",status=\"404\"} 20\n"),
        "{metrics}"
    );
    assert!(metrics.contains("tufa_http_requests_total{route=\"tuf\",status=\"200\"} 1\n"));
}

#[tokio::test]
async fn hash_prefixed_pages_are_exact_bytes() {
    for f in [Fixture::memory().await, Fixture::local().await] {
        for (digest, body, content_type) in [
            (f.html_digest, &f.html, "text/html; charset=utf-8"),
            (f.json_digest, &f.json, "application/vnd.pypi.simple.v1+json"),
        ] {
            let ext = if content_type.starts_with("text/html") {
                "html"
            } else {
                "json"
            };
            let url = format!("/simple/demo/{digest}.index.{ext}");
            // Twice: from the store, then from the cache.
            for _ in 0..2 {
                let a = get(
                    &f.app,
                    &url,
                    &[
                        ("accept-encoding", "gzip, br, zstd"),
                        ("accept", "application/vnd.pypi.simple.v1+json"),
                    ],
                )
                .await;
                assert_eq!(a.status, StatusCode::OK, "{url}");
                assert_eq!(&a.body, body, "{url}");
                assert_eq!(a.header("content-type"), Some(content_type));
                assert_eq!(a.header("content-encoding"), None, "never compressed");
                assert_eq!(a.header("content-length"), Some(body.len().to_string().as_str()));
                assert_eq!(a.header("cache-control"), Some(IMMUTABLE));
                assert_eq!(a.header("etag"), Some(format!("\"{digest}\"").as_str()));
                assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
                assert!(a.header("content-security-policy").unwrap().contains("sandbox"));
            }
            let h = head(&f.app, &url, &[]).await;
            assert_eq!(h.status, StatusCode::OK);
            assert!(h.body.is_empty());
            assert_eq!(h.header("content-length"), Some(body.len().to_string().as_str()));
            let n = get(&f.app, &url, &[("if-none-match", &format!("\"{digest}\""))]).await;
            assert_eq!(n.status, StatusCode::NOT_MODIFIED);
            assert!(n.body.is_empty());
        }
        // A fresh replica answers HEAD without the cache.
        let (_, fresh) = f.fresh_app();
        let h = head(&fresh, &format!("/simple/demo/{}.index.html", f.html_digest), &[]).await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(
            h.header("content-length"),
            Some(f.html.len().to_string().as_str())
        );
        // The page the negotiated URL serves is the same target.
        assert_eq!(get(&f.app, "/simple/demo/", &[]).await.body, f.html);
    }
}

#[tokio::test]
async fn old_page_versions_stay_answerable() {
    let f = Fixture::local().await;
    let new_html = Bytes::from_static(b"<!DOCTYPE html><html><body>demo, version 2</body></html>\n");
    let new_json = Bytes::from_static(b"{\"meta\":{\"api-version\":\"1.1\"},\"name\":\"demo\",\"files\":[]}");
    let raw = |data: &Bytes| BlobRef {
        sha256: Sha256Digest::of(data),
        len: data.len() as u64,
    };
    f.store.put_bytes(new_html.clone()).await.unwrap();
    f.store.put_bytes(new_json.clone()).await.unwrap();
    let manifest = ProjectManifest {
        version: MANIFEST_VERSION,
        name: ProjectName::new("demo").unwrap(),
        published_at: PUBLISHED_AT.into(),
        html: Page {
            raw: raw(&new_html),
            gzip: None,
            zstd: None,
        },
        json: Page {
            raw: raw(&new_json),
            gzip: None,
            zstd: None,
        },
        metadata: BTreeMap::new(),
    };
    write_manifest(&f.store, &manifest).await.unwrap();
    let (_, fresh) = f.fresh_app();
    assert_eq!(get(&fresh, "/simple/demo/", &[]).await.body, new_html);
    for (url, body) in [
        (format!("/simple/demo/{}.index.html", f.html_digest), &f.html),
        (
            format!("/simple/demo/{}.index.html", Sha256Digest::of(&new_html)),
            &new_html,
        ),
        (format!("/simple/demo/{}.index.json", f.json_digest), &f.json),
    ] {
        let a = get(&fresh, &url, &[]).await;
        assert_eq!((a.status, &a.body), (StatusCode::OK, body), "{url}");
    }
}

#[tokio::test]
async fn bad_hash_prefixed_pages_are_404() {
    let f = Fixture::memory().await;
    let unknown = Sha256Digest::of(b"no such page");
    let html = f.html_digest.to_hex();
    for url in [
        format!("/simple/demo/{unknown}.index.html"),
        format!("/simple/demo/{unknown}.index.json"),
        format!("/simple/demo/{}.index.html", html.to_uppercase()),
        format!("/simple/demo/{}.index.html", &html[1..]),
        format!("/simple/demo/{html}0.index.html"),
        format!("/simple/demo/{html}.index.htm"),
        format!("/simple/demo/{html}.index.html.bak"),
        format!("/simple/demo/{html}.index.html.gz"),
        format!("/simple/demo/{html}.other.html"),
        format!("/simple/demo/{html}.index.html/"),
        format!("/simple/demo/{html}"),
        "/simple/demo/index.html".to_owned(),
        // Not normalised: a 404, not a redirect.
        format!("/simple/Demo/{html}.index.html"),
        format!("/simple/demo_/{html}.index.html"),
        format!("/simple/..%2Fdemo/{html}.index.html"),
        format!("/simple/%2e%2e/{html}.index.html"),
    ] {
        assert_not_found(&get(&f.app, &url, &[]).await, &url);
        assert_eq!(
            head(&f.app, &url, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
}

#[tokio::test]
async fn large_pages_behind_a_hashed_name_are_streamed_verified() {
    // A cache of 64 KiB keeps blobs of up to 8 KiB: a 1 MiB current page is streamed, not
    // buffered.
    let limits = ServerLimits {
        page_cache_bytes: 64 * 1024,
        ..ServerLimits::default()
    };
    let f = Fixture::local_with(limits).await;
    let mut big = b"<!DOCTYPE html><html><head><title>Links for demo</title></head><body>\n".to_vec();
    big.resize(WHEEL_LEN, b' ');
    let big = Bytes::from(big);
    let big_ref = BlobRef {
        sha256: f.store.put_bytes(big.clone()).await.unwrap(),
        len: big.len() as u64,
    };
    let mut manifest = tufa_tree::read_manifest(&f.store, &ProjectName::new("demo").unwrap())
        .await
        .unwrap()
        .unwrap();
    manifest.html = Page {
        raw: big_ref,
        gzip: None,
        zstd: None,
    };
    write_manifest(&f.store, &manifest).await.unwrap();
    let url = format!("/simple/demo/{}.index.html", big_ref.sha256);
    let a = get(&f.app, &url, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, big);
    assert_eq!(a.header("content-length"), Some(WHEEL_LEN.to_string().as_str()));
    assert!(a.header("content-security-policy").unwrap().contains("sandbox"));

    // Corrupt: the body is cut short with an error instead of completing.
    let mut bad = big.to_vec();
    bad[WHEEL_LEN - 1] ^= 0xff;
    f.corrupt(&big_ref.sha256, &bad);
    let response =
        tower::ServiceExt::oneshot(f.app.clone(), crate::request(axum::http::Method::GET, &url, &[]))
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "headers were already sent");
    assert!(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .is_err()
    );
    assert_eq!(failures(&get(&f.app, "/metrics", &[]).await.text()), 1);
}

#[tokio::test]
async fn corrupt_hash_prefixed_page_is_a_500() {
    let f = Fixture::local().await;
    f.corrupt(&f.html_digest, &vec![b'Z'; f.html.len()]);
    let a = get(&f.app, &format!("/simple/demo/{}.index.html", f.html_digest), &[]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.text(), "internal error\n");
    assert!(!a.text().contains("ZZZZ"));
    assert_eq!(failures(&get(&f.app, "/metrics", &[]).await.text()), 1);
}

/// `/files/aa/bb/rest/<prefix>.<filename>` of a plain file URL.
fn prefixed(url: &str, prefix: &Sha256Digest) -> String {
    let (dir, name) = url.rsplit_once('/').unwrap();
    format!("{dir}/{prefix}.{name}")
}

#[tokio::test]
async fn hash_prefixed_files_are_the_plain_files() {
    for f in [Fixture::memory().await, Fixture::local().await] {
        for (url, digest, body) in [
            (f.wheel_url(), f.wheel_digest, &f.wheel),
            (f.sdist_url(), f.sdist_digest, &f.sdist),
        ] {
            let plain = get(&f.app, &url, &[]).await;
            let hashed = get(&f.app, &prefixed(&url, &digest), &[("accept-encoding", "gzip")]).await;
            assert_eq!(hashed.status, StatusCode::OK);
            assert_eq!(&hashed.body, body);
            for name in [
                "content-type",
                "content-length",
                "etag",
                "cache-control",
                "accept-ranges",
                "last-modified",
                "content-encoding",
            ] {
                assert_eq!(hashed.header(name), plain.header(name), "{url} {name}");
            }
            let h = head(&f.app, &prefixed(&url, &digest), &[]).await;
            assert_eq!(h.status, StatusCode::OK);
            assert_eq!(h.header("content-length"), plain.header("content-length"));
            let r = get(&f.app, &prefixed(&url, &digest), &[("range", "bytes=2-5")]).await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
            assert_eq!(r.body, body.slice(2..6));
        }

        // The prefix must be the digest the path names.
        let other = Sha256Digest::of(b"other");
        for url in [
            prefixed(&f.wheel_url(), &f.sdist_digest),
            prefixed(&f.wheel_url(), &other),
            prefixed(&f.sdist_url(), &f.wheel_digest),
            prefixed(&prefixed(&f.wheel_url(), &f.wheel_digest), &other),
        ] {
            assert_not_found(&get(&f.app, &url, &[]).await, &url);
        }
    }
}

#[tokio::test]
async fn hash_prefixed_metadata() {
    let f = Fixture::local().await;
    let plain_url = format!("{}.metadata", f.wheel_url());
    let url = format!("{}.metadata", prefixed(&f.wheel_url(), &f.metadata_digest));
    let plain = get(&f.app, &plain_url, &[]).await;
    let a = get(&f.app, &url, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, f.metadata);
    for name in ["content-type", "content-length", "etag", "cache-control"] {
        assert_eq!(a.header(name), plain.header(name), "{name}");
    }
    assert_eq!(head(&f.app, &url, &[]).await.status, StatusCode::OK);

    let other = Sha256Digest::of(b"other");
    for url in [
        // The wheel's digest is not its METADATA's.
        format!("{}.metadata", prefixed(&f.wheel_url(), &f.wheel_digest)),
        format!("{}.metadata", prefixed(&f.wheel_url(), &other)),
        // No METADATA for the sdist.
        format!("{}.metadata", prefixed(&f.sdist_url(), &f.metadata_digest)),
    ] {
        assert_not_found(&get(&f.app, &url, &[]).await, &url);
    }
    let metrics = get(&f.app, "/metrics", &[]).await.text();
    assert!(
        metrics.contains("tufa_http_requests_total{route=\"metadata\",status=\"200\"} 3\n"),
        "{metrics}"
    );

    // Corrupt METADATA behind the prefixed URL: a 500, as without the prefix.
    f.corrupt(&f.metadata_digest, &vec![b'Z'; f.metadata.len()]);
    assert_eq!(
        get(&f.fresh_app().1, &url, &[]).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn readiness_follows_the_timestamp() {
    let f = Fixture::memory().await;
    // No TUF metadata: an unsigned mirror, ready.
    assert_eq!(get(&f.app, "/readyz", &[]).await.status, StatusCode::OK);

    for (secs, status, body) in [
        (86_400, StatusCode::OK, "ready\n"),
        (3_700, StatusCode::OK, "ready\n"),
        (600, StatusCode::SERVICE_UNAVAILABLE, "timestamp expires soon\n"),
        (-60, StatusCode::SERVICE_UNAVAILABLE, "timestamp expired\n"),
        (
            -86_400 * 400,
            StatusCode::SERVICE_UNAVAILABLE,
            "timestamp expired\n",
        ),
    ] {
        put_tuf(&f.store, "timestamp.json", &timestamp_bytes(secs)).await;
        let a = get(&f.app, "/readyz", &[]).await;
        assert_eq!(
            (a.status, a.text().as_str()),
            (status, body),
            "expires in {secs} s"
        );
    }

    // A timestamp the clients could not read either.
    put_tuf(
        &f.store,
        "timestamp.json",
        &Bytes::from_static(b"{\"signed\":{}}"),
    )
    .await;
    let a = get(&f.app, "/readyz", &[]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "timestamp unreadable\n")
    );

    // The margin is configurable.
    let limits = ServerLimits {
        readiness_min_timestamp_validity_secs: 0,
        ..ServerLimits::default()
    };
    let lenient = tufa_server::router(tufa_server::AppState::new(f.store.clone(), limits));
    put_tuf(&f.store, "timestamp.json", &timestamp_bytes(600)).await;
    assert_eq!(get(&lenient, "/readyz", &[]).await.status, StatusCode::OK);
    assert_eq!(
        get(&f.app, "/readyz", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    put_tuf(&f.store, "timestamp.json", &timestamp_bytes(-1)).await;
    assert_eq!(
        get(&lenient, "/readyz", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metrics_report_the_timestamp_expiry() {
    let f = Fixture::memory().await;
    let text = get(&f.app, "/metrics", &[]).await.text();
    assert_eq!(gauge(&text), None, "no gauge without a timestamp:\n{text}");

    put_tuf(&f.store, "timestamp.json", &timestamp_bytes(86_400)).await;
    let text = get(&f.app, "/metrics", &[]).await.text();
    let left = gauge(&text).unwrap();
    assert!((86_300..=86_400).contains(&left), "{left}");
    assert!(text.contains("# TYPE tufa_tuf_timestamp_expires_in_seconds gauge\n"));

    put_tuf(&f.store, "timestamp.json", &timestamp_bytes(-120)).await;
    let left = gauge(&get(&f.app, "/metrics", &[]).await.text()).unwrap();
    assert!((-221..=-120).contains(&left), "{left}");

    // Unreadable: omitted (and logged), the rest of the metrics still answer.
    put_tuf(&f.store, "timestamp.json", &Bytes::from_static(b"not json")).await;
    let a = get(&f.app, "/metrics", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(gauge(&a.text()), None);
    assert_eq!(failures(&a.text()), 0);
}

#[test]
fn limits_default_and_parse_the_readiness_margin() {
    assert_eq!(
        ServerLimits::default().readiness_min_timestamp_validity_secs,
        3600
    );
    let l: ServerLimits = toml::from_str("readiness_min_timestamp_validity_secs = 60\n").unwrap();
    assert_eq!(l.readiness_min_timestamp_validity_secs, 60);
    assert_eq!(l.page_cache_bytes, ServerLimits::default().page_cache_bytes);
}

/// A reader that keeps versioned metadata in memory serves gzip and zstd variants of it, made
/// once after the file entered memory, that decode to the stored bytes; never of a small file
/// or of `timestamp.json`.
#[tokio::test]
async fn versioned_metadata_in_memory_gets_compressed_variants() {
    let f = Fixture::local().await;
    let app = tufa_server::router(tufa_server::AppState::with_poll_interval(
        f.store.clone(),
        ServerLimits::default(),
        std::time::Duration::from_secs(3600),
    ));
    let meta: String = (0..2000)
        .map(|i| format!("\"bin-{i:04x}.json\":{{\"version\":{}}},", i % 7 + 1))
        .collect();
    let snapshot = Bytes::from(format!(
        "{{\"signed\":{{\"_type\":\"snapshot\",\"meta\":{{{meta}\"end\":{{}}}}}}}}"
    ));
    put_tuf(&f.store, "3.snapshot.json", &snapshot).await;
    let small = metadata_bytes("root", 1);
    put_tuf(&f.store, "1.root.json", &small).await;
    put_tuf(&f.store, "timestamp.json", &timestamp_bytes(3600)).await;
    let uv = [("accept-encoding", "gzip, deflate, zstd")];

    // The first answer comes before the variants are made: the stored bytes.
    let first = get(&app, "/tuf/3.snapshot.json", &uv).await;
    assert_eq!(first.status, StatusCode::OK);
    let encoding = first.header("content-encoding").map(str::to_owned);
    assert_eq!(
        crate::fixture::decoded(encoding.as_deref(), &first.body),
        snapshot
    );
    let mut zstd = first;
    for _ in 0..200 {
        if zstd.header("content-encoding").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        zstd = get(&app, "/tuf/3.snapshot.json", &uv).await;
    }
    assert_eq!(zstd.header("content-encoding"), Some("zstd"), "uv gets zstd");
    assert_eq!(crate::fixture::unzstd(&zstd.body), snapshot);
    assert!(zstd.body.len() < snapshot.len() / 4, "{} B", zstd.body.len());
    let zstd_etag = format!("\"{}-zstd\"", Sha256Digest::of(&snapshot));
    assert_eq!(zstd.header("etag"), Some(zstd_etag.as_str()));
    assert_eq!(zstd.header("vary"), Some("Accept-Encoding"));
    assert_eq!(zstd.header("cache-control"), Some(IMMUTABLE));

    let pip = [("accept-encoding", "gzip, deflate")];
    let gzip = get(&app, "/tuf/3.snapshot.json", &pip).await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"), "pip gets gzip");
    assert_eq!(crate::fixture::gunzip(&gzip.body), snapshot);
    let head_gzip = head(&app, "/tuf/3.snapshot.json", &pip).await;
    assert_eq!(
        head_gzip.header("content-length"),
        Some(gzip.body.len().to_string().as_str())
    );
    assert!(head_gzip.body.is_empty());

    // Without Accept-Encoding, or refusing both: the stored bytes and their plain ETag.
    for headers in [
        &[][..],
        &[("accept-encoding", "identity")][..],
        &[("accept-encoding", "gzip;q=0, zstd;q=0")][..],
    ] {
        let plain = get(&app, "/tuf/3.snapshot.json", headers).await;
        assert_eq!(plain.header("content-encoding"), None, "{headers:?}");
        assert_eq!(plain.body, snapshot);
        assert_eq!(plain.header("etag"), Some(etag(&snapshot).as_str()));
    }

    // Revalidation is per variant.
    let revalidate = |tag: &str, enc: &'static str| {
        let app = app.clone();
        let tag = tag.to_owned();
        async move {
            get(
                &app,
                "/tuf/3.snapshot.json",
                &[("accept-encoding", enc), ("if-none-match", &tag)],
            )
            .await
            .status
        }
    };
    assert_eq!(revalidate(&zstd_etag, "zstd").await, StatusCode::NOT_MODIFIED);
    assert_eq!(revalidate(&zstd_etag, "gzip").await, StatusCode::OK);
    assert_eq!(revalidate(&etag(&snapshot), "zstd").await, StatusCode::OK);

    // Below 1 KiB, and the timestamp: never compressed.
    for (name, data) in [("1.root.json", small)] {
        let a = get(&app, &format!("/tuf/{name}"), &uv).await;
        assert_eq!(a.header("content-encoding"), None, "{name}");
        assert_eq!(a.body, data);
    }
    let ts = get(&app, "/tuf/timestamp.json", &uv).await;
    assert_eq!(ts.status, StatusCode::OK);
    assert_eq!(ts.header("content-encoding"), None);
}
