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

#[tokio::test]
async fn binary_prints_url_and_serves() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim();
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
