use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::*;

/// Kills the child on drop so a failing assertion does not leak it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` (stdout and stderr piped); the child and the URL it prints
/// on its first line.
fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_owned())
}

#[tokio::test]
async fn binary_prints_url_and_serves() {
    let (_child, url) = spawn(&["--port", "0"]);
    let url = url.as_str();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with('/'));
    let r = client()
        .get(format!("{url}/simple/demo-app/"))
        .header(reqwest::header::ACCEPT, PIP_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["name"], "demo-app");
}

#[test]
fn binary_rejects_bad_args() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .args(["--port", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn binary_generates_and_mutates() {
    let (mut child, url) = spawn(&["--generate", "projects=12,seed=4", "--port=0"]);
    let mut summary = String::new();
    BufReader::new(child.0.stderr.take().unwrap())
        .read_line(&mut summary)
        .unwrap();
    assert!(
        summary.starts_with("fake-upstream: generated epoch 1: 12 projects, "),
        "{summary}"
    );
    let stats: serde_json::Value = get(&format!("{url}/_fake/stats")).await.json().await.unwrap();
    assert_eq!(stats["projects"], 12);
    let manifest = get(&format!("{url}/_fake/manifest")).await.text().await.unwrap();
    assert_eq!(manifest.lines().count() as u64, stats["files"].as_u64().unwrap());
    let r = client().post(format!("{url}/_fake/mutate")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(report["epoch"], 2);
    assert_eq!(
        report["projects"].as_array().unwrap().len(),
        1,
        "1 % of 12, at least one"
    );
}

#[test]
fn binary_rejects_a_bad_generate_spec_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .args(["--generate", "projects=many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid projects `many`"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .arg("--generate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--generate SPEC"));
}
