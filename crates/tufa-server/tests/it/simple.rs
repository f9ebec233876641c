//! `/simple/` and `/simple/<project>/`: negotiation, redirects, variants, caching headers.

use axum::http::StatusCode;

use crate::fixture::{Fixture, PUBLISHED_HTTP_DATE, gunzip};
use crate::{get, head};

const JSON: &str = "application/vnd.pypi.simple.v1+json";
const HTML: &str = "application/vnd.pypi.simple.v1+html";
const TEXT_HTML: &str = "text/html; charset=utf-8";

#[tokio::test]
async fn negotiation_matrix_for_a_project_page() {
    let f = Fixture::memory().await;
    let cases: &[(Option<&str>, &str)] = &[
        (None, TEXT_HTML),
        (Some(JSON), JSON),
        (Some("application/vnd.pypi.simple.latest+json"), JSON),
        (Some(HTML), HTML),
        (Some("application/vnd.pypi.simple.latest+html"), HTML),
        (Some("text/html"), TEXT_HTML),
        (Some("*/*"), TEXT_HTML),
        (Some("application/*"), JSON),
        (Some("text/*"), TEXT_HTML),
        (
            Some(
                "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
            ),
            JSON,
        ),
        (
            Some("application/vnd.pypi.simple.v1+json;q=0.5, text/html;q=0.9"),
            TEXT_HTML,
        ),
        (Some("application/vnd.pypi.simple.v1+json, text/html"), JSON),
        (
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            TEXT_HTML,
        ),
    ];
    for (accept, expected) in cases {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let a = get(&f.app, "/simple/demo/", &headers).await;
        assert_eq!(a.status, StatusCode::OK, "Accept: {accept:?}");
        assert_eq!(a.header("content-type"), Some(*expected), "Accept: {accept:?}");
        assert_eq!(a.header("vary"), Some("Accept, Accept-Encoding"));
        assert_eq!(a.header("content-encoding"), None);
        let page = if *expected == JSON { &f.json } else { &f.html };
        assert_eq!(&a.body, page, "Accept: {accept:?}");
        assert_eq!(a.header("content-length"), Some(page.len().to_string().as_str()));
    }
}

#[tokio::test]
async fn unsupported_types_are_406() {
    let f = Fixture::memory().await;
    for accept in ["application/json", "image/png, text/plain", "text/html;q=0"] {
        let a = get(&f.app, "/simple/demo/", &[("accept", accept)]).await;
        assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        let a = get(&f.app, "/simple/", &[("accept", accept)]).await;
        assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE, "{accept}");
    }
}

#[tokio::test]
async fn format_query_parameter_overrides_accept() {
    let f = Fixture::memory().await;
    let a = get(
        &f.app,
        "/simple/demo/?format=application/vnd.pypi.simple.v1%2Bjson",
        &[("accept", "text/html")],
    )
    .await;
    assert_eq!(a.header("content-type"), Some(JSON));
    assert_eq!(a.body, f.json);
    let a = get(
        &f.app,
        "/simple/demo/?format=application/vnd.pypi.simple.v1+json",
        &[],
    )
    .await;
    assert_eq!(a.header("content-type"), Some(JSON));
    let a = get(&f.app, "/simple/demo/?format=text/html", &[("accept", JSON)]).await;
    assert_eq!(a.header("content-type"), Some(TEXT_HTML));
    let a = get(
        &f.app,
        "/simple/demo/?format=application/vnd.pypi.simple.latest%2Bhtml",
        &[("accept", JSON)],
    )
    .await;
    assert_eq!(a.header("content-type"), Some(HTML));
    let a = get(
        &f.app,
        "/simple/demo/?format=application/json",
        &[("accept", JSON)],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE);
    let a = get(
        &f.app,
        "/simple/?format=application/vnd.pypi.simple.v1%2Bjson",
        &[],
    )
    .await;
    assert_eq!(a.header("content-type"), Some(JSON));
}

#[tokio::test]
async fn non_normalised_names_and_missing_slashes_redirect() {
    let f = Fixture::memory().await;
    for (from, to) in [
        ("/simple/Demo/", "/simple/demo/"),
        ("/simple/Foo.Bar_baz/", "/simple/foo-bar-baz/"),
        ("/simple/demo", "/simple/demo/"),
        ("/simple/Foo.Bar_baz", "/simple/foo-bar-baz/"),
        ("/simple/Demo/?format=text/html", "/simple/demo/?format=text/html"),
        (
            "/simple/demo?format=application/vnd.pypi.simple.v1%2Bjson",
            "/simple/demo/?format=application/vnd.pypi.simple.v1%2Bjson",
        ),
        ("/simple", "/simple/"),
        ("/simple?format=text/html", "/simple/?format=text/html"),
    ] {
        let a = get(&f.app, from, &[]).await;
        assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY, "{from}");
        assert_eq!(a.header("location"), Some(to), "{from}");
    }
}

#[tokio::test]
async fn unknown_and_invalid_projects_are_404() {
    let f = Fixture::memory().await;
    for uri in [
        "/simple/nope/",
        "/simple/-bad-/",
        "/simple/a..b/x/",
        "/simple/-bad-",
        "/simple/.hidden/",
    ] {
        let a = get(&f.app, uri, &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(a.text(), "not found\n");
    }
}

#[tokio::test]
async fn gzip_variant_only_when_accepted_and_present() {
    let f = Fixture::memory().await;
    let a = get(
        &f.app,
        "/simple/demo/",
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(a.header("content-encoding"), Some("gzip"));
    assert_eq!(a.body, f.html_gzip);
    assert_eq!(gunzip(&a.body), f.html);
    assert_eq!(
        a.header("etag"),
        Some(format!("\"{}-gzip\"", f.html_digest).as_str())
    );
    assert_eq!(a.header("content-type"), Some(TEXT_HTML));

    let a = get(
        &f.app,
        "/simple/demo/",
        &[("accept", JSON), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(a.body, f.json_gzip);
    assert_eq!(gunzip(&a.body), f.json);
    assert_eq!(
        a.header("etag"),
        Some(format!("\"{}-gzip\"", f.json_digest).as_str())
    );

    for refused in ["gzip;q=0", "identity", "br"] {
        let a = get(&f.app, "/simple/demo/", &[("accept-encoding", refused)]).await;
        assert_eq!(a.header("content-encoding"), None, "{refused}");
        assert_eq!(a.body, f.html, "{refused}");
        assert_eq!(a.header("etag"), Some(format!("\"{}\"", f.html_digest).as_str()));
    }

    // No gzip variant published: the raw page, whatever the client takes.
    let a = get(&f.app, "/simple/zeta-pkg/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-encoding"), None);
    assert_eq!(a.body, f.zeta_html);
}

#[tokio::test]
async fn page_caching_headers_and_304() {
    let f = Fixture::memory().await;
    let a = get(&f.app, "/simple/demo/", &[]).await;
    assert_eq!(a.header("cache-control"), Some("max-age=60, public"));
    assert_eq!(a.header("last-modified"), Some(PUBLISHED_HTTP_DATE));
    let etag = a.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", f.html_digest));

    let a = get(&f.app, "/simple/demo/", &[("if-none-match", &etag)]).await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert!(a.body.is_empty());
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    assert_eq!(a.header("vary"), Some("Accept, Accept-Encoding"));

    let a = get(
        &f.app,
        "/simple/demo/",
        &[("if-none-match", &format!("\"other\", W/{etag}"))],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);

    // The same tag does not match the JSON page or the gzip variant.
    let a = get(
        &f.app,
        "/simple/demo/",
        &[("if-none-match", &etag), ("accept", JSON)],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = get(
        &f.app,
        "/simple/demo/",
        &[("if-none-match", &etag), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn head_of_a_page_has_the_headers_and_no_body() {
    let f = Fixture::memory().await;
    let g = get(&f.app, "/simple/demo/", &[("accept-encoding", "gzip")]).await;
    let h = head(&f.app, "/simple/demo/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.body.is_empty());
    for name in [
        "content-type",
        "content-length",
        "content-encoding",
        "etag",
        "last-modified",
        "cache-control",
        "vary",
    ] {
        assert_eq!(h.header(name), g.header(name), "{name}");
    }
}

const ROOT_HTML: &str = "<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" content=\"1.4\">\
<title>Simple index</title></head><body>\n\
<a href=\"demo/\">demo</a><br/>\n\
<a href=\"zeta-pkg/\">zeta-pkg</a><br/>\n\
</body></html>\n";

#[tokio::test]
async fn root_list_in_html_is_exact() {
    let f = Fixture::memory().await;
    let a = get(&f.app, "/simple/", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some(TEXT_HTML));
    assert_eq!(a.header("vary"), Some("Accept"));
    assert_eq!(a.header("content-length"), None, "the root list is streamed");
    assert_eq!(a.text(), ROOT_HTML);
    let a = get(&f.app, "/simple/", &[("accept", HTML)]).await;
    assert_eq!(a.header("content-type"), Some(HTML));
    assert_eq!(a.text(), ROOT_HTML);
}

/// The list follows the backend's listing order, which on local disk is the directory's order
/// (object_store's local listing does not sort): the same lines, in some order.
#[tokio::test]
async fn root_list_on_local_disk_has_every_project() {
    let f = Fixture::local().await;
    let text = get(&f.app, "/simple/", &[]).await.text();
    let mut got: Vec<&str> = text.lines().collect();
    let mut want: Vec<&str> = ROOT_HTML.lines().collect();
    assert_eq!(got.first(), want.first());
    assert_eq!(got.last(), want.last());
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[tokio::test]
async fn root_list_in_json_parses_and_keeps_order() {
    let f = Fixture::memory().await;
    let a = get(&f.app, "/simple/", &[("accept", JSON)]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some(JSON));
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["meta"]["api-version"], "1.4");
    let names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "zeta-pkg"]);
    assert_eq!(
        a.text(),
        "{\"meta\":{\"api-version\":\"1.4\"},\"projects\":[{\"name\":\"demo\"},{\"name\":\"zeta-pkg\"}]}"
    );
}

#[tokio::test]
async fn root_list_of_an_empty_tree_and_of_many_projects() {
    use std::collections::BTreeMap;
    use tufa_pypi::ProjectName;
    use tufa_store::BlobStore;
    use tufa_tree::{BlobRef, MANIFEST_VERSION, Page, ProjectManifest, write_manifest};

    let dir = tempfile::tempdir().unwrap();
    for empty in [BlobStore::memory(), BlobStore::local(dir.path()).unwrap()] {
        let app = tufa_server::router(tufa_server::AppState::new(empty, Default::default()));
        let a = get(&app, "/simple/", &[("accept", JSON)]).await;
        assert_eq!(a.text(), "{\"meta\":{\"api-version\":\"1.4\"},\"projects\":[]}");
        let a = get(&app, "/simple/", &[]).await;
        assert!(a.text().ends_with("<body>\n</body></html>\n"), "{}", a.text());
    }

    let store = BlobStore::memory();
    let app = tufa_server::router(tufa_server::AppState::new(store.clone(), Default::default()));

    // More names than one streamed batch.
    let page = BlobRef {
        sha256: store.put_bytes(bytes::Bytes::from_static(b"p")).await.unwrap(),
        len: 1,
    };
    let mut expected = Vec::new();
    for i in 0..1100 {
        let name = ProjectName::new(&format!("p{i:05}")).unwrap();
        expected.push(name.to_string());
        let m = ProjectManifest {
            version: MANIFEST_VERSION,
            name,
            published_at: "2026-01-01T00:00:00Z".into(),
            html: Page {
                raw: page,
                gzip: None,
            },
            json: Page {
                raw: page,
                gzip: None,
            },
            metadata: BTreeMap::new(),
        };
        write_manifest(&store, &m).await.unwrap();
    }
    let a = get(&app, "/simple/", &[("accept", JSON)]).await;
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let names: Vec<String> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, expected);
    let a = get(&app, "/simple/", &[]).await;
    assert_eq!(a.text().matches("<br/>").count(), 1100);
}

#[tokio::test]
async fn head_of_the_root_list_has_no_body() {
    let f = Fixture::memory().await;
    let a = head(&f.app, "/simple/", &[("accept", JSON)]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some(JSON));
    assert!(a.body.is_empty());
}
