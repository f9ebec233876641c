//! `/files/…`: headers, HEAD, 304, ranges, PEP 658 metadata.

use axum::http::StatusCode;

use crate::fixture::{Fixture, WHEEL_LEN};
use crate::{get, head};

#[tokio::test]
async fn file_headers_and_body() {
    for f in [Fixture::memory().await, Fixture::local().await] {
        let a = get(&f.app, &f.wheel_url(), &[("accept-encoding", "gzip")]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, f.wheel);
        assert_eq!(a.header("content-type"), Some("application/zip"));
        assert_eq!(a.header("content-length"), Some(WHEEL_LEN.to_string().as_str()));
        assert_eq!(a.header("etag"), Some(format!("\"{}\"", f.wheel_digest).as_str()));
        assert_eq!(
            a.header("cache-control"),
            Some("max-age=31536000, public, immutable")
        );
        assert_eq!(a.header("accept-ranges"), Some("bytes"));
        assert_eq!(a.header("content-encoding"), None);
        let date = a.header("last-modified").unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");

        let a = get(&f.app, &f.sdist_url(), &[("accept-encoding", "gzip")]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, f.sdist);
        assert_eq!(a.header("content-type"), Some("application/x-tar"));
        assert_eq!(
            a.header("content-encoding"),
            None,
            "never a Content-Encoding on files"
        );
    }
}

#[tokio::test]
async fn head_of_a_file() {
    let f = Fixture::local().await;
    let g = get(&f.app, &f.wheel_url(), &[]).await;
    let h = head(&f.app, &f.wheel_url(), &[]).await;
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.body.is_empty());
    for name in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "cache-control",
        "accept-ranges",
    ] {
        assert_eq!(h.header(name), g.header(name), "{name}");
    }
}

#[tokio::test]
async fn file_304_on_if_none_match() {
    let f = Fixture::memory().await;
    let etag = format!("\"{}\"", f.wheel_digest);
    let a = get(&f.app, &f.wheel_url(), &[("if-none-match", &etag)]).await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert!(a.body.is_empty());
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    assert_eq!(
        a.header("cache-control"),
        Some("max-age=31536000, public, immutable")
    );
    let a = get(&f.app, &f.wheel_url(), &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn ranges() {
    for f in [Fixture::memory().await, Fixture::local().await] {
        let url = f.wheel_url();
        let len = WHEEL_LEN;

        let a = get(&f.app, &url, &[("range", "bytes=0-9")]).await;
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&a.body[..], &f.wheel[..10]);
        assert_eq!(
            a.header("content-range"),
            Some(format!("bytes 0-9/{len}").as_str())
        );
        assert_eq!(a.header("content-length"), Some("10"));
        assert_eq!(a.header("content-type"), Some("application/zip"));

        let a = get(&f.app, &url, &[("range", "bytes=-5")]).await;
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&a.body[..], &f.wheel[len - 5..]);
        assert_eq!(
            a.header("content-range"),
            Some(format!("bytes {}-{}/{len}", len - 5, len - 1).as_str())
        );

        let a = get(&f.app, &url, &[("range", &format!("bytes={}-", len - 3))]).await;
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&a.body[..], &f.wheel[len - 3..]);

        // Crossing read-chunk boundaries.
        let a = get(&f.app, &url, &[("range", "bytes=262000-600000")]).await;
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&a.body[..], &f.wheel[262000..=600000]);

        // End past the end is clamped.
        let a = get(
            &f.app,
            &url,
            &[("range", &format!("bytes={}-{}", len - 2, len + 100))],
        )
        .await;
        assert_eq!(&a.body[..], &f.wheel[len - 2..]);

        for unsatisfiable in [
            format!("bytes={len}-"),
            format!("bytes={}-{}", len + 1, len + 5),
            "bytes=-0".to_owned(),
        ] {
            let a = get(&f.app, &url, &[("range", &unsatisfiable)]).await;
            assert_eq!(a.status, StatusCode::RANGE_NOT_SATISFIABLE, "{unsatisfiable}");
            assert_eq!(a.header("content-range"), Some(format!("bytes */{len}").as_str()));
        }

        // Several ranges, or nonsense: the whole file.
        for whole in ["bytes=0-1,5-6", "bytes=9-1", "lines=1-2"] {
            let a = get(&f.app, &url, &[("range", whole)]).await;
            assert_eq!(a.status, StatusCode::OK, "{whole}");
            assert_eq!(a.body, f.wheel);
        }

        // If-Range naming another version: the whole file.
        let a = get(&f.app, &url, &[("range", "bytes=0-9"), ("if-range", "\"other\"")]).await;
        assert_eq!(a.status, StatusCode::OK);
        let etag = format!("\"{}\"", f.wheel_digest);
        let a = get(&f.app, &url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    }
}

#[tokio::test]
async fn missing_file_is_404() {
    let f = Fixture::memory().await;
    let hex = tufa_pypi::Sha256Digest::of(b"not stored").to_hex();
    let url = format!(
        "/files/{}/{}/{}/demo-1.0-py3-none-any.whl",
        &hex[..2],
        &hex[2..4],
        &hex[4..]
    );
    for (range, method_head) in [(None, false), (None, true), (Some("bytes=0-1"), false)] {
        let headers: Vec<(&str, &str)> = range.iter().map(|r| ("range", *r)).collect();
        let a = if method_head {
            head(&f.app, &url, &headers).await
        } else {
            get(&f.app, &url, &headers).await
        };
        assert_eq!(a.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn pep_658_metadata() {
    for f in [Fixture::memory().await, Fixture::local().await] {
        let url = format!("{}.metadata", f.wheel_url());
        let a = get(&f.app, &url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, f.metadata);
        assert_eq!(a.header("content-type"), Some("application/octet-stream"));
        assert_eq!(a.header("content-encoding"), None);
        assert_eq!(
            a.header("content-length"),
            Some(f.metadata.len().to_string().as_str())
        );
        let etag = format!("\"{}\"", f.metadata_digest);
        assert_eq!(a.header("etag"), Some(etag.as_str()));

        let a = get(&f.app, &url, &[("if-none-match", &etag)]).await;
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        let a = head(&f.app, &url, &[]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.is_empty());
        assert_eq!(
            a.header("content-length"),
            Some(f.metadata.len().to_string().as_str())
        );

        // No metadata listed for the sdist.
        let a = get(&f.app, &format!("{}.metadata", f.sdist_url()), &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        // A wheel of an unpublished project, and a wheel not in the manifest.
        let hex = f.wheel_digest.to_hex();
        let prefix = format!("/files/{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..]);
        for name in ["other-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl"] {
            let a = get(&f.app, &format!("{prefix}/{name}.metadata"), &[]).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{name}");
        }
        // The right filename under a digest that is not stored.
        let other = tufa_pypi::Sha256Digest::of(b"x").to_hex();
        let a = get(
            &f.app,
            &format!(
                "/files/{}/{}/{}/{}.metadata",
                &other[..2],
                &other[2..4],
                &other[4..],
                crate::fixture::WHEEL
            ),
            &[],
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
    }
}
