use reqwest::header::ACCEPT;
use serde_json::Value;
use tufa_fake_upstream::{FakeUpstream, demo_projects, normalize_name};

use crate::*;

#[tokio::test]
async fn index_json_and_html() {
    let up = FakeUpstream::start(demo_projects()).await;
    let r = client()
        .get(up.simple_url())
        .header(ACCEPT, PIP_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], JSON_CT);
    let serial = up.last_serial();
    assert!(serial > 0);
    assert_eq!(r.headers()["x-pypi-last-serial"], serial.to_string().as_str());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["api-version"], "1.1");
    assert_eq!(v["meta"]["_last-serial"], serial);
    let names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for n in ["demo-app", "demo-lib", "demo-util", "Foo.Bar_baz"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }

    let r = client().get(up.simple_url()).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(r.headers()["x-pypi-last-serial"], serial.to_string().as_str());
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<a href="/simple/foo-bar-baz/">Foo.Bar_baz</a>"#));
}

#[tokio::test]
async fn project_json_page() {
    let up = FakeUpstream::start(demo_projects()).await;
    let r = get_json_page(&up, "demo-lib").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], JSON_CT);
    let proj_serial = up.project_serial("demo-lib").unwrap();
    assert_eq!(
        r.headers()["x-pypi-last-serial"],
        proj_serial.to_string().as_str()
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["api-version"], "1.1");
    assert_eq!(
        v["meta"]["_last-serial"],
        proj_serial.to_string(),
        "a string, as PyPI sends it"
    );
    assert_eq!(v["name"], "demo-lib");
    assert_eq!(v["versions"], serde_json::json!(["0.9", "1.0", "1.1"]));
    assert_eq!(v["files"].as_array().unwrap().len(), 6);

    let yanked = file_entry(&v, "demo_lib-0.9-py3-none-any.whl");
    assert_eq!(yanked["yanked"], "broken");
    assert!(yanked.get("requires-python").is_none());

    let whl = file_entry(&v, "demo_lib-1.1-py3-none-any.whl");
    assert_eq!(whl["yanked"], false);
    assert_eq!(whl["requires-python"], ">=3.8");
    let sha = up.file_sha256("demo_lib-1.1-py3-none-any.whl").unwrap();
    assert_eq!(whl["hashes"]["sha256"], sha.as_str());
    assert_eq!(
        whl["url"],
        format!(
            "{}/files/{}/{}/demo_lib-1.1-py3-none-any.whl",
            up.url(),
            &sha[0..2],
            &sha[2..4]
        )
        .as_str()
    );
    let meta_sha = up.file_sha256("demo_lib-1.1-py3-none-any.whl.metadata").unwrap();
    assert_eq!(whl["core-metadata"]["sha256"], meta_sha.as_str());
    assert_eq!(whl["data-dist-info-metadata"], whl["core-metadata"]);
    let upload = whl["upload-time"].as_str().unwrap();
    assert_eq!(upload.len(), "2024-01-02T03:04:05.123456Z".len());
    assert!(upload.starts_with("2024-01-02T") && upload.ends_with(".123456Z"));

    let sdist = file_entry(&v, "demo_lib-1.1.tar.gz");
    assert_eq!(sdist["core-metadata"], false);
    assert_eq!(sdist["data-dist-info-metadata"], false);
    assert_eq!(sdist["size"], up.file_bytes("demo_lib-1.1.tar.gz").unwrap().len());
}

#[tokio::test]
async fn empty_yank_reason_is_true() {
    let up = FakeUpstream::start(vec![]).await;
    up.add_release("p", tufa_fake_upstream::ReleaseSpec::new("1").yanked(""));
    let v = project_json(&up, "p").await;
    for f in v["files"].as_array().unwrap() {
        assert_eq!(f["yanked"], true);
    }
}

#[tokio::test]
async fn project_html_page() {
    let up = FakeUpstream::start(demo_projects()).await;
    let r = get_html_page(&up, "demo-lib").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.headers().contains_key("x-pypi-last-serial"));
    let html = r.text().await.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(r#"<meta name="pypi:repository-version" content="1.1">"#));
    assert!(html.contains("<title>Links for demo-lib</title>"));
    let sha = up.file_sha256("demo_lib-1.1-py3-none-any.whl").unwrap();
    let meta = up.file_sha256("demo_lib-1.1-py3-none-any.whl.metadata").unwrap();
    let expected = format!(
        r#"<a href="../../files/{}/{}/demo_lib-1.1-py3-none-any.whl#sha256={sha}" data-requires-python="&gt;=3.8" data-core-metadata="sha256={meta}" data-dist-info-metadata="sha256={meta}">demo_lib-1.1-py3-none-any.whl</a><br/>"#,
        &sha[0..2],
        &sha[2..4]
    );
    assert!(html.contains(&expected), "{html}");
    assert!(html.contains(r#"data-yanked="broken""#));
    // sdists have no metadata attribute
    let sdist_line = html
        .lines()
        .find(|l| l.contains(">demo_lib-1.0.tar.gz<"))
        .unwrap();
    assert!(!sdist_line.contains("data-core-metadata"));
}

#[tokio::test]
async fn html_only_mode() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_html_only(true);
    let r = get_json_page(&up, "demo-app").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("demo_app-1.0-py3-none-any.whl"));
    let r = client()
        .get(up.simple_url())
        .header(ACCEPT, JSON_CT)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    up.set_html_only(false);
    assert_eq!(
        get_json_page(&up, "demo-app").await.headers()["content-type"],
        JSON_CT
    );
}

#[tokio::test]
async fn redirects_and_not_found() {
    let up = FakeUpstream::start(demo_projects()).await;
    let cases = [
        ("/simple/Foo.Bar_baz/", "/simple/foo-bar-baz/"),
        ("/simple/Foo.Bar_baz", "/simple/foo-bar-baz/"),
        ("/simple/foo-bar-baz", "/simple/foo-bar-baz/"),
        ("/simple/DEMO_app/", "/simple/demo-app/"),
        ("/simple", "/simple/"),
    ];
    for (from, to) in cases {
        let r = get(&format!("{}{from}", up.url())).await;
        assert_eq!(r.status(), 301, "{from}");
        assert_eq!(r.headers()["location"], to, "{from}");
        assert!(r.headers().contains_key("x-pypi-last-serial"));
    }
    // Following the redirect lands on the page.
    let r = follow_client()
        .get(format!("{}/simple/Foo.Bar_baz/", up.url()))
        .header(ACCEPT, JSON_CT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], normalize_name("Foo.Bar_baz"));
    assert_eq!(v["files"][0]["filename"], "foo_bar_baz-2.0-py3-none-any.whl");

    let r = get(&format!("{}/simple/nope/", up.url())).await;
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-pypi-last-serial"));
    assert_eq!(get(&format!("{}/elsewhere", up.url())).await.status(), 404);
}
