//! `/simple/` and `/simple/<project>/`: negotiation, redirects, variants, caching headers.

use axum::http::{Method, StatusCode};
use tufa_pypi::{ProjectName, Sha256Digest};

use crate::fixture::{Fixture, PUBLISHED_HTTP_DATE, decoded, gunzip, unzstd};
use crate::{get, head, request, send};

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

/// `Accept-Encoding` as pip 26.3 and uv 0.13.9 send it (captured from their requests), and
/// as reqwest sends it with every decoder on.
const PIP_ENCODINGS: &str = "gzip, deflate";
const UV_ENCODINGS: &str = "gzip, deflate, zstd";
const REQWEST_ALL_ENCODINGS: &str = "gzip, br, zstd, deflate";
/// uv's `Accept`.
const UV_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

#[tokio::test]
async fn pip_and_uv_get_a_variant_that_decodes_to_the_page_the_manifest_names() {
    let f = Fixture::memory().await;
    let manifest = tufa_tree::read_manifest(&f.store, &ProjectName::new("demo").unwrap())
        .await
        .unwrap()
        .unwrap();
    for (client, encodings, expected) in [
        ("pip", PIP_ENCODINGS, "gzip"),
        ("uv", UV_ENCODINGS, "zstd"),
        ("reqwest", REQWEST_ALL_ENCODINGS, "zstd"),
    ] {
        for (accept, content_type, page) in [
            (TEXT_HTML, TEXT_HTML, &manifest.html),
            (UV_ACCEPT, JSON, &manifest.json),
        ] {
            let a = get(
                &f.app,
                "/simple/demo/",
                &[("accept", accept), ("accept-encoding", encodings)],
            )
            .await;
            let what = format!("{client}, {content_type}");
            assert_eq!(a.status, StatusCode::OK, "{what}");
            assert_eq!(a.header("content-type"), Some(content_type), "{what}");
            assert_eq!(a.header("content-encoding"), Some(expected), "{what}");
            assert_eq!(a.header("vary"), Some("Accept, Accept-Encoding"), "{what}");
            assert_eq!(
                a.header("content-length"),
                Some(a.body.len().to_string().as_str()),
                "{what}"
            );
            assert_eq!(
                a.header("etag"),
                Some(format!("\"{}-{expected}\"", page.raw.sha256).as_str()),
                "{what}"
            );
            let body = decoded(a.header("content-encoding"), &a.body);
            assert_ne!(body, a.body.to_vec(), "{what}: the body is compressed");
            assert_eq!(Sha256Digest::of(&body), page.raw.sha256, "{what}");
            assert_eq!(body.len() as u64, page.raw.len, "{what}");
        }
    }
    // The exact bytes of the fixture's variants.
    let a = get(&f.app, "/simple/demo/", &[("accept-encoding", UV_ENCODINGS)]).await;
    assert_eq!(a.body, f.html_zstd);
    assert_eq!(unzstd(&a.body), f.html);
    let a = get(
        &f.app,
        "/simple/demo/",
        &[("accept", JSON), ("accept-encoding", "zstd")],
    )
    .await;
    assert_eq!(a.body, f.json_zstd);
    assert_eq!(unzstd(&a.body), f.json);
}

#[tokio::test]
async fn q_values_choose_between_zstd_gzip_and_identity() {
    let f = Fixture::memory().await;
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["gzip;q=1, zstd;q=0.5"], Some("gzip")),
        (&["gzip;q=0.4, zstd;q=0.5"], Some("zstd")),
        (&["zstd;q=0.5, gzip;q=0.5"], Some("zstd")),
        (&["*"], Some("zstd")),
        (&["*;q=0, gzip"], Some("gzip")),
        (&["zstd;q=0, *"], Some("gzip")),
        (&["*;q=0"], None),
        (&["identity"], None),
        (&["gzip;q=0.5, identity"], None),
        (&["ZSTD"], Some("zstd")),
        (&["X-GZIP"], Some("gzip")),
        (&[""], None),
        (&[], None),
        // The header repeated: every instance counts.
        (&["gzip", "zstd"], Some("zstd")),
        (&["zstd;q=0.1", "gzip;q=0.2"], Some("gzip")),
    ];
    for (values, expected) in cases {
        let headers: Vec<(&str, &str)> = values.iter().map(|v| ("accept-encoding", *v)).collect();
        let a = get(&f.app, "/simple/demo/", &headers).await;
        assert_eq!(a.status, StatusCode::OK, "{values:?}");
        assert_eq!(a.header("content-encoding"), *expected, "{values:?}");
        let etag = match expected {
            Some(coding) => format!("\"{}-{coding}\"", f.html_digest),
            None => format!("\"{}\"", f.html_digest),
        };
        assert_eq!(a.header("etag"), Some(etag.as_str()), "{values:?}");
        assert_eq!(decoded(*expected, &a.body), f.html, "{values:?}");
    }
}

#[tokio::test]
async fn a_manifest_written_before_zstd_variants_still_serves_gzip() {
    let f = Fixture::memory().await;
    // The demo manifest as tufa wrote it before zstd variants: no `zstd` key at all.
    let key = tufa_tree::manifest_key(&ProjectName::new("demo").unwrap());
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&f.store.get_named(&key).await.unwrap().unwrap()).unwrap();
    for page in ["html", "json"] {
        assert!(manifest[page]["zstd"].is_object());
        manifest[page].as_object_mut().unwrap().remove("zstd");
    }
    f.store
        .put_named(&key, serde_json::to_vec(&manifest).unwrap().into())
        .await
        .unwrap();
    let (_, app) = f.fresh_app();
    for (encodings, expected) in [
        (UV_ENCODINGS, Some("gzip")),
        (REQWEST_ALL_ENCODINGS, Some("gzip")),
        (PIP_ENCODINGS, Some("gzip")),
        ("zstd", None),
        ("*", Some("gzip")),
    ] {
        let a = get(&app, "/simple/demo/", &[("accept-encoding", encodings)]).await;
        assert_eq!(a.status, StatusCode::OK, "{encodings}");
        assert_eq!(a.header("content-encoding"), expected, "{encodings}");
        assert_eq!(decoded(expected, &a.body), f.html, "{encodings}");
    }
    let a = get(
        &app,
        "/simple/demo/",
        &[("accept", UV_ACCEPT), ("accept-encoding", UV_ENCODINGS)],
    )
    .await;
    assert_eq!(a.body, f.json_gzip);
    assert_eq!(
        a.header("etag"),
        Some(format!("\"{}-gzip\"", f.json_digest).as_str())
    );
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
    for (encodings, coding) in [
        ("gzip", Some("gzip")),
        (UV_ENCODINGS, Some("zstd")),
        ("identity", None),
    ] {
        for accept in [TEXT_HTML, JSON] {
            let headers = [("accept", accept), ("accept-encoding", encodings)];
            let g = get(&f.app, "/simple/demo/", &headers).await;
            let h = head(&f.app, "/simple/demo/", &headers).await;
            assert_eq!(h.status, StatusCode::OK);
            assert!(h.body.is_empty());
            assert_eq!(g.header("content-encoding"), coding, "{encodings}");
            assert_eq!(
                g.header("content-length"),
                Some(g.body.len().to_string().as_str())
            );
            for name in [
                "content-type",
                "content-length",
                "content-encoding",
                "etag",
                "last-modified",
                "cache-control",
                "vary",
            ] {
                assert_eq!(h.header(name), g.header(name), "{encodings}, {accept}: {name}");
            }
        }
    }
}

#[tokio::test]
async fn a_variants_etag_revalidates_only_that_variant() {
    let f = Fixture::memory().await;
    let zstd_tag = format!("\"{}-zstd\"", f.html_digest);
    let a = get(&f.app, "/simple/demo/", &[("accept-encoding", UV_ENCODINGS)]).await;
    assert_eq!(a.header("etag"), Some(zstd_tag.as_str()));
    for method in [Method::GET, Method::HEAD] {
        let a = send(
            &f.app,
            request(
                method,
                "/simple/demo/",
                &[("if-none-match", &zstd_tag), ("accept-encoding", UV_ENCODINGS)],
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        assert!(a.body.is_empty());
        assert_eq!(a.header("etag"), Some(zstd_tag.as_str()));
        assert_eq!(a.header("vary"), Some("Accept, Accept-Encoding"));
    }
    // The zstd tag does not revalidate the gzip or identity answer, nor the JSON page's.
    for (encodings, accept, page) in [
        (PIP_ENCODINGS, TEXT_HTML, &f.html),
        ("identity", TEXT_HTML, &f.html),
        (UV_ENCODINGS, JSON, &f.json),
    ] {
        let a = get(
            &f.app,
            "/simple/demo/",
            &[
                ("if-none-match", &zstd_tag),
                ("accept-encoding", encodings),
                ("accept", accept),
            ],
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{encodings}, {accept}");
        assert_eq!(
            decoded(a.header("content-encoding"), &a.body),
            page.to_vec(),
            "{encodings}, {accept}"
        );
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
                zstd: None,
            },
            json: Page {
                raw: page,
                gzip: None,
                zstd: None,
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
