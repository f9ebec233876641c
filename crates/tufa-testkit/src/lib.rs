//! `tufa-testkit`: test support shared by several crates' test suites. Not for production
//! code (it panics with instructions instead of returning errors).
//!
//! Owns finding — and on first use creating — the Python venv the tests drive: real pip, uv
//! and python-tuf, as pinned in `tests/e2e/requirements.txt` and installed by
//! `tests/e2e/setup-venv.sh`. `$TUFA_E2E_VENV` names it (CI sets it); otherwise it lives next
//! to the build output, `<target>/e2e-venv`, so every test binary of a build shares one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The venv with pip, uv and python-tuf, created with `tests/e2e/setup-venv.sh` when it is
/// missing or out of date (the script is quick when it is up to date).
pub fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    VENV.get_or_init(|| {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = match std::env::var_os("TUFA_E2E_VENV") {
            Some(p) => PathBuf::from(p),
            None => {
                // <target>/<profile>/deps/<test binary>
                let exe = std::env::current_exe().expect("the test binary has a path");
                let target = exe
                    .ancestors()
                    .nth(3)
                    .expect("test binaries live in <target>/<profile>/deps");
                target.join("e2e-venv")
            }
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/setup-venv.sh");
        let status = Command::new("bash").arg(&script).arg(&path).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{} {} failed: the tests need pip, uv and python-tuf from the package registry",
            script.display(),
            path.display()
        );
        path
    })
    .clone()
}

/// The venv's Python, checked to import python-tuf's `ngclient`.
pub fn python_with_tuf() -> PathBuf {
    let python = venv().join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import tuf.ngclient, securesystemslib.formats"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import python-tuf: is `tuf` in tests/e2e/requirements.txt?",
        python.display()
    );
    python
}
