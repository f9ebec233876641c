use std::time::{Duration, Instant};

use serde_json::Value;
use tufa_fake_upstream::{
    FakeUpstream, Fault, NUL_FILENAME, ProjectSpec, ReleaseSpec, TRAVERSAL_FILENAME, demo_projects,
};

use crate::*;

const WHL: &str = "demo_lib-1.1-py3-none-any.whl";

async fn file_url(up: &FakeUpstream) -> String {
    up.file_url(WHL).unwrap()
}

#[tokio::test]
async fn hash_mismatch_file() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_file_fault(WHL, Fault::HashMismatch);
    let page = project_json(&up, "demo-lib").await;
    let advertised = file_entry(&page, WHL)["hashes"]["sha256"].clone();
    let body = get(&file_url(&up).await).await.bytes().await.unwrap();
    let truth = up.file_bytes(WHL).unwrap();
    assert_eq!(body.len(), truth.len());
    assert_ne!(body.to_vec(), truth);
    assert_ne!(advertised, sha256_hex(&body).as_str());
    assert_eq!(advertised, sha256_hex(&truth).as_str());
    up.clear_faults();
    let body = get(&file_url(&up).await).await.bytes().await.unwrap();
    assert_eq!(advertised, sha256_hex(&body).as_str());
}

#[tokio::test]
async fn hash_mismatch_project() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_project_fault("demo-lib", Fault::HashMismatch);
    let page = project_json(&up, "demo-lib").await;
    let advertised = file_entry(&page, WHL)["hashes"]["sha256"].as_str().unwrap();
    assert_eq!(advertised.len(), 64);
    assert_ne!(advertised, up.file_sha256(WHL).unwrap());
}

#[tokio::test]
async fn truncated() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_file_fault(WHL, Fault::Truncated);
    let full = up.file_bytes(WHL).unwrap().len();
    let mut r = get(&file_url(&up).await).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"].to_str().unwrap(), full.to_string());
    let mut got = 0;
    let err = loop {
        match r.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => panic!("body completed normally after {got} bytes"),
            Err(e) => break e,
        }
    };
    assert!(got < full, "{got} of {full}: {err}");
    assert_eq!(got, full / 2);

    // Also on a project page.
    up.set_project_fault("demo-lib", Fault::Truncated);
    let r = get_json_page(&up, "demo-lib").await;
    assert!(r.bytes().await.is_err());
}

#[tokio::test]
async fn slow_body() {
    let up = FakeUpstream::start(vec![]).await;
    for i in 0..20 {
        up.add_release("big", ReleaseSpec::new(&format!("1.{i}")));
    }
    let unfaulted = get_json_page(&up, "big").await.bytes().await.unwrap();
    let chunks = unfaulted.len().div_ceil(1024);
    assert!(chunks >= 5, "{chunks}");
    up.set_project_fault("big", Fault::SlowBody { delay_ms: 20 });
    let start = Instant::now();
    let mut r = get_json_page(&up, "big").await;
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        unfaulted.len().to_string()
    );
    let mut body = Vec::new();
    let mut n = 0;
    while let Some(c) = r.chunk().await.unwrap() {
        assert!(c.len() <= 1024);
        body.extend_from_slice(&c);
        n += 1;
    }
    let elapsed = start.elapsed();
    assert_eq!(body, unfaulted.to_vec());
    assert!(n >= chunks);
    assert!(
        elapsed >= Duration::from_millis(20 * (chunks as u64 - 1)),
        "{elapsed:?}"
    );

    // File target too.
    up.set_file_fault("big-1.0-py3-none-any.whl", Fault::SlowBody { delay_ms: 1 });
    let url = up.file_url("big-1.0-py3-none-any.whl").unwrap();
    let body = get(&url).await.bytes().await.unwrap();
    assert_eq!(body.to_vec(), up.file_bytes("big-1.0-py3-none-any.whl").unwrap());
}

#[tokio::test]
async fn server_errors_count_down() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_file_fault(WHL, Fault::ServerErrors { remaining: 2 });
    up.set_project_fault("demo-lib", Fault::ServerErrors { remaining: 1 });
    let url = file_url(&up).await;
    assert_eq!(get(&url).await.status(), 503);
    assert_eq!(get(&url).await.status(), 503);
    assert_eq!(get(&url).await.status(), 200);
    assert_eq!(get(&url).await.status(), 200);
    assert_eq!(get_json_page(&up, "demo-lib").await.status(), 503);
    assert_eq!(get_json_page(&up, "demo-lib").await.status(), 200);
    // Other targets unaffected.
    up.set_project_fault("demo-app", Fault::ServerErrors { remaining: 5 });
    assert_eq!(get_json_page(&up, "demo-lib").await.status(), 200);
}

#[tokio::test]
async fn malformed_json() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_project_fault("demo-lib", Fault::MalformedJson);
    let r = get_json_page(&up, "demo-lib").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], JSON_CT);
    let text = r.text().await.unwrap();
    assert!(text.starts_with('{'));
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn oversized_json() {
    let up = FakeUpstream::start(demo_projects()).await;
    let size = 3 * 1024 * 1024;
    up.set_project_fault("demo-lib", Fault::OversizedJson { bytes: size });
    let r = get_json_page(&up, "demo-lib").await;
    assert_eq!(r.headers()["content-length"].to_str().unwrap(), size.to_string());
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), size);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["name"], "demo-lib");
    assert_eq!(v["files"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn traversal_and_nul_filenames() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_project_fault("demo-app", Fault::TraversalFilename);
    let v = project_json(&up, "demo-app").await;
    let names: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"../../evil-1.0-py3-none-any.whl"));
    assert!(names.contains(&"demo_app-1.0-py3-none-any.whl"));
    let html = get_html_page(&up, "demo-app").await.text().await.unwrap();
    assert!(html.contains(&format!(">{TRAVERSAL_FILENAME}</a>")));

    up.set_project_fault("demo-app", Fault::NulFilename);
    let v = project_json(&up, "demo-app").await;
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["filename"] == NUL_FILENAME && NUL_FILENAME.contains('\0'))
    );
    let html = get_html_page(&up, "demo-app").await.text().await.unwrap();
    assert!(html.contains('\0'));
}

#[tokio::test]
async fn wrong_content_type() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_project_fault("demo-lib", Fault::WrongContentType);
    let r = get_json_page(&up, "demo-lib").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    // Body is still the JSON page.
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["name"], "demo-lib");

    up.set_file_fault(WHL, Fault::WrongContentType);
    let r = get(&file_url(&up).await).await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn wrong_size() {
    let up = FakeUpstream::start(demo_projects()).await;
    up.set_file_fault(WHL, Fault::WrongSize);
    let page = project_json(&up, "demo-lib").await;
    let f = file_entry(&page, WHL);
    let body = get(f["url"].as_str().unwrap()).await.bytes().await.unwrap();
    assert_ne!(f["size"], body.len());
    assert_eq!(f["hashes"]["sha256"], sha256_hex(&body).as_str());
    // Other files unaffected.
    let other = file_entry(&page, "demo_lib-1.0-py3-none-any.whl");
    assert_eq!(
        other["size"],
        up.file_bytes("demo_lib-1.0-py3-none-any.whl").unwrap().len()
    );
}

#[tokio::test]
async fn clear_faults_restores_normal_behaviour() {
    let up = FakeUpstream::start(vec![ProjectSpec::new("x").release(ReleaseSpec::new("1"))]).await;
    up.set_project_fault("x", Fault::MalformedJson);
    up.set_file_fault("x-1-py3-none-any.whl", Fault::Truncated);
    up.clear_faults();
    project_json(&up, "x").await;
    let body = get(&up.file_url("x-1-py3-none-any.whl").unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.to_vec(), up.file_bytes("x-1-py3-none-any.whl").unwrap());
}
