//! Integration tests for the fake PyPI upstream.

// Test code: panicking on unexpected values is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod faults;
mod files;
mod generate;
mod mutation;
mod pages;

use reqwest::header::ACCEPT;
use serde_json::Value;
use tufa_fake_upstream::FakeUpstream;

pub const JSON_CT: &str = "application/vnd.pypi.simple.v1+json";
/// What pip sends.
pub const PIP_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that does not follow redirects and does not pool connections.
pub fn client() -> reqwest::Client {
    install_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A client that follows redirects.
pub fn follow_client() -> reqwest::Client {
    install_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub async fn get_json_page(up: &FakeUpstream, project: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}/", up.simple_url(), project))
        .header(ACCEPT, PIP_ACCEPT)
        .send()
        .await
        .unwrap()
}

pub async fn project_json(up: &FakeUpstream, project: &str) -> Value {
    let r = get_json_page(up, project).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn get_html_page(up: &FakeUpstream, project: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}/", up.simple_url(), project))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
}

pub fn file_entry<'a>(page: &'a Value, filename: &str) -> &'a Value {
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap_or_else(|| panic!("{filename} not on page"))
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

pub async fn xmlrpc(up: &FakeUpstream, body: String) -> String {
    let r = client()
        .post(format!("{}/pypi", up.url()))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    r.text().await.unwrap()
}

pub fn call(method: &str, int_param: Option<i64>) -> String {
    let params = match int_param {
        Some(i) => format!("<params><param><value><int>{i}</int></value></param></params>"),
        None => "<params></params>".to_string(),
    };
    format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>{method}</methodName>\n{params}\n</methodCall>\n"
    )
}
