//! python-tuf's `ngclient.Updater` against a repository served on 127.0.0.1 by python's own
//! http.server (the approach of tufa-tuf's conformance tests).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python of the shared test venv, with python-tuf (created on first use; see
/// `tufa-testkit`). The reference client's verdict is the point of these tests: no skip.
pub fn require() -> PathBuf {
    tufa_testkit::python_with_tuf()
}

const UPDATER_SCRIPT: &str = r#"
import functools, http.server, os, sys, threading
from tuf.ngclient import Updater

repo_dir, client_dir, bootstrap_path = sys.argv[1], sys.argv[2], sys.argv[3]
paths = sys.argv[4:]

class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=repo_dir))
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"
metadata_dir = os.path.join(client_dir, "metadata")
target_dir = os.path.join(client_dir, "targets")
os.makedirs(metadata_dir, exist_ok=True)
os.makedirs(target_dir, exist_ok=True)
bootstrap = None
if bootstrap_path != "-":
    with open(bootstrap_path, "rb") as f:
        bootstrap = f.read()
failures = 0
try:
    updater = Updater(metadata_dir=metadata_dir, metadata_base_url=f"{base}/tuf/",
                      target_dir=target_dir, target_base_url=f"{base}/targets/",
                      bootstrap=bootstrap)
    updater.refresh()
    print("REFRESHED root", updater._trusted_set.root.version, flush=True)
    for path in paths:
        try:
            info = updater.get_targetinfo(path)
            if info is None:
                print("NOTFOUND", path, flush=True)
                failures += 1
                continue
            local = updater.download_target(info)
            with open(local, "rb") as f:
                print("OK", path, len(f.read()), flush=True)
            os.remove(local)
        except Exception as e:
            print("ERROR", path, type(e).__name__, str(e).replace("\n", " "), flush=True)
            failures += 1
except Exception as e:
    print("REFRESH-ERROR", type(e).__name__, str(e).replace("\n", " "), flush=True)
    failures += 1
finally:
    server.shutdown()
sys.exit(1 if failures else 0)
"#;

/// What one updater run printed.
#[derive(Debug)]
pub struct UpdaterRun {
    pub success: bool,
    pub stdout: String,
}

/// Runs an updater over `repo_dir` (serving `tuf/` and `targets/`) with client state in
/// `client_dir`. `bootstrap`: the trust anchor to start from; `None` reuses the root the client
/// already trusts (an existing installation). Downloads `paths`.
pub fn run_updater(
    python: &Path,
    repo_dir: &Path,
    client_dir: &Path,
    bootstrap: Option<&Path>,
    paths: &[String],
) -> UpdaterRun {
    let bootstrap = bootstrap.map_or_else(|| "-".to_owned(), |p| p.to_str().unwrap().to_owned());
    let out = Command::new(python)
        .arg("-c")
        .arg(UPDATER_SCRIPT)
        .arg(repo_dir)
        .arg(client_dir)
        .arg(bootstrap)
        .args(paths)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "--- ngclient stdout:\n{stdout}--- ngclient stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    UpdaterRun {
        success: out.status.success(),
        stdout,
    }
}

/// Asserts a successful refresh to root `version` and a verified download of every path.
pub fn assert_verified(run: &UpdaterRun, version: u64, paths: &[String]) {
    assert!(run.success, "ngclient failed:\n{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("REFRESHED root {version}\n")),
        "expected root v{version}:\n{}",
        run.stdout
    );
    for p in paths {
        assert!(
            run.stdout.contains(&format!("OK {p} ")),
            "{p} not verified:\n{}",
            run.stdout
        );
    }
}
