//! The public tuf-conformance suite (../shared/tuf-conformance, the suite python-tuf and go-tuf
//! are measured by) against `tufa tuf-client`: every test must pass, with no expected-failure
//! list. Skipped, saying so, when the suite's source is not beside the repository (set
//! TUF_CONFORMANCE_DIR to point at a checkout elsewhere).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::harness::{run_bounded, tufa_bin};

fn suite_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("TUF_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tuf-conformance"),
    };
    dir.join("tuf_conformance").is_dir().then_some(dir)
}

#[test]
fn tuf_conformance_suite_passes_in_full() {
    let Some(suite) = suite_dir() else {
        eprintln!(
            "SKIPPED: tuf-conformance not found beside the repository (../shared/tuf-conformance; set TUF_CONFORMANCE_DIR)"
        );
        return;
    };
    let report = tempfile::NamedTempFile::new().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/run.sh");
    let out = run_bounded(
        Command::new("bash")
            .arg(&script)
            .arg(tufa_bin())
            .arg(&suite)
            .arg(report.path()),
        Duration::from_secs(1200),
        "tuf-conformance",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap())
        .unwrap_or_else(|e| panic!("no pytest report ({e}):\n{stdout}\n{stderr}"));
    let summary = &json["summary"];
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    let (passed, total) = (count("passed"), count("total"));
    eprintln!("tuf-conformance: {passed} of {total} passed ({summary})");
    assert!(
        out.status.success() && passed == total && total >= 113,
        "tuf-conformance: {passed} of {total} passed\n{stdout}\n{stderr}"
    );
}
