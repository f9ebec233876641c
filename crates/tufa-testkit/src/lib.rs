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

// ---------------------------------------------------------------------------------------------
// SoftHSM2, the software PKCS#11 token the signing tests use. Each test makes its own config
// and tokens in a temporary directory (`SOFTHSM2_CONF`), never touching /etc or /var/lib.
// ---------------------------------------------------------------------------------------------

/// Overrides where the SoftHSM2 module is (tests also pass the one they found to children).
pub const MODULE_ENV: &str = "TUFA_PKCS11_MODULE";

pub const SOFTHSM_SETUP_HINT: &str = "run `.ci/setup-softhsm.sh` as root (it installs the Debian package \
     softhsm2), or set TUFA_PKCS11_MODULE to the path of libsofthsm2.so";

/// `TUFA_PKCS11_MODULE`, or where distributions put libsofthsm2.so.
pub fn softhsm_module() -> PathBuf {
    if let Some(path) = std::env::var_os(MODULE_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "SoftHSM2 module not found: {MODULE_ENV}={} is not a file; {SOFTHSM_SETUP_HINT}",
            path.display()
        );
        return path;
    }
    const CANDIDATES: &[&str] = &[
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
        "/usr/lib64/pkcs11/libsofthsm2.so",
        "/usr/lib/pkcs11/libsofthsm2.so",
        "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    ];
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("SoftHSM2 is not installed: {SOFTHSM_SETUP_HINT} (looked for libsofthsm2.so in {CANDIDATES:?})")
        })
}

/// Writes a SoftHSM2 config whose token directory is `dir/tokens`; returns its path (for
/// `SOFTHSM2_CONF`).
pub fn softhsm_config(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}

/// Initialises a token `label` in the config `conf` with `softhsm2-util`.
pub fn softhsm_init_token(conf: &Path, label: &str, so_pin: &str, pin: &str) {
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            so_pin,
            "--pin",
            pin,
        ])
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap_or_else(|e| {
            panic!("SoftHSM2 is not installed (cannot run softhsm2-util: {e}): {SOFTHSM_SETUP_HINT}")
        });
    assert!(
        out.status.success(),
        "softhsm2-util --init-token --label {label} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
