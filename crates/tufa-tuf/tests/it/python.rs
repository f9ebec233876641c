//! Finding a Python with python-tuf, and running scripts in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FALLBACK_VENV: &str = "/tmp/tufvenv";

/// A Python interpreter that can `import tuf.ngclient`: `$TUFA_E2E_VENV/bin/python` if that
/// venv has python-tuf, else `/tmp/tufvenv/bin/python`.
pub fn find() -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(v) = std::env::var_os("TUFA_E2E_VENV") {
        candidates.push(PathBuf::from(v).join("bin/python"));
    } else {
        tried.push("$TUFA_E2E_VENV (unset)".to_owned());
    }
    candidates.push(Path::new(FALLBACK_VENV).join("bin/python"));
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import tuf.ngclient, securesystemslib.formats"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python);
        }
        tried.push(format!("{} (missing or without python-tuf)", python.display()));
    }
    Err(format!(
        "no Python with python-tuf found; tried: {}.\n\
         Create one with:\n    python3 -m venv {FALLBACK_VENV} && {FALLBACK_VENV}/bin/pip install tuf==7.0.1\n\
         (CI: add `tuf==7.0.1` to tests/e2e/requirements.txt so $TUFA_E2E_VENV has it)",
        tried.join(", ")
    ))
}

/// The python-tuf interpreter; panics with instructions when there is none. Conformance tests
/// must not pass silently without the reference implementation.
pub fn require() -> PathBuf {
    match find() {
        Ok(p) => p,
        Err(msg) => panic!("{msg}"),
    }
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
