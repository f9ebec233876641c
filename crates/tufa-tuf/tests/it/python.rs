//! Finding a Python with python-tuf, and running scripts in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python of the shared test venv, with python-tuf (created on first use; see
/// `tufa-testkit`). The conformance tests must not pass silently without the reference
/// implementation, so there is no skip.
pub fn require() -> PathBuf {
    tufa_testkit::python_with_tuf()
}

/// Runs `script` with `args`.
pub fn run(python: &Path, script: &str, args: &[&str]) -> Output {
    Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python")
}

/// Runs `script`, panicking with its output unless it succeeds; returns stdout.
pub fn run_ok(python: &Path, script: &str, args: &[&str]) -> String {
    let out = run(python, script, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
