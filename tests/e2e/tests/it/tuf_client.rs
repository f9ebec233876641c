//! Running python-tuf's `ngclient` (`tests/e2e/tuf_client.py`) from the venv, with a timeout.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::venv;

/// How long one client run may take before it is killed and the test fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// A TUF client with its own metadata directory: runs share what it trusts, as a real client
/// keeps its metadata between updates.
#[derive(Debug, Clone)]
pub struct TufClient {
    /// The trust anchor (the bytes of `1.root.json`, obtained out of band).
    pub root: PathBuf,
    pub metadata_dir: PathBuf,
    pub download_dir: PathBuf,
}

/// One target's outcome.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub path: String,
    pub ok: bool,
    pub sha256: Option<String>,
    /// The verified download.
    pub file: Option<PathBuf>,
    /// `<ExceptionClassName>: message`.
    pub error: Option<String>,
}

impl TargetResult {
    /// The exception class name, when the target failed.
    pub fn error_class(&self) -> Option<&str> {
        self.error.as_deref().map(error_class)
    }

    /// The verified bytes.
    pub fn bytes(&self) -> Vec<u8> {
        assert!(self.ok, "{} was not verified: {:?}", self.path, self.error);
        std::fs::read(self.file.as_ref().unwrap()).unwrap()
    }
}

/// One run of the client.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub success: bool,
    pub refresh_ok: bool,
    pub refresh_error: Option<String>,
    pub root_version: Option<u64>,
    pub timestamp_version: Option<u64>,
    pub snapshot_version: Option<u64>,
    pub targets: Vec<TargetResult>,
    pub stdout: String,
    pub stderr: String,
}

fn error_class(e: &str) -> &str {
    e.split_once(':').map_or(e, |(class, _)| class)
}

impl ClientRun {
    /// The exception class that failed the refresh.
    pub fn refresh_error_class(&self) -> Option<&str> {
        self.refresh_error.as_deref().map(error_class)
    }

    pub fn target(&self, path: &str) -> &TargetResult {
        self.targets
            .iter()
            .find(|t| t.path == path)
            .unwrap_or_else(|| panic!("no result for {path}:\n{}", self.describe()))
    }

    /// Panics unless the refresh and every target verified.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.success && self.refresh_ok && self.targets.iter().all(|t| t.ok),
            "ngclient did not verify everything:\n{}",
            self.describe()
        );
        self
    }

    /// Panics unless the refresh failed with exception `class`.
    pub fn assert_refresh_refused(&self, class: &str) -> &Self {
        assert!(
            !self.success,
            "ngclient accepted the attack:\n{}",
            self.describe()
        );
        assert_eq!(
            self.refresh_error_class(),
            Some(class),
            "refresh should fail with {class}:\n{}",
            self.describe()
        );
        self
    }

    /// Panics unless the refresh succeeded and target `path` failed with exception `class`.
    pub fn assert_target_refused(&self, path: &str, class: &str) -> &Self {
        assert!(
            !self.success,
            "ngclient accepted the attack:\n{}",
            self.describe()
        );
        assert!(
            self.refresh_ok,
            "refresh should succeed (the attack is on {path}):\n{}",
            self.describe()
        );
        assert_eq!(
            self.target(path).error_class(),
            Some(class),
            "{path} should fail with {class}:\n{}",
            self.describe()
        );
        self
    }

    pub fn describe(&self) -> String {
        format!(
            "--- tuf_client.py stdout:\n{}--- stderr:\n{}",
            self.stdout, self.stderr
        )
    }
}

impl TufClient {
    /// A client under `dir` that trusts `root` (copied, as a client ships its trust anchor).
    pub fn new(dir: &Path, root: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let anchor = dir.join("trusted-root.json");
        std::fs::copy(root, &anchor).unwrap();
        Self {
            root: anchor,
            metadata_dir: dir.join("metadata"),
            download_dir: dir.join("downloads"),
        }
    }

    /// A client with the same trust anchor and a copy of this client's metadata directory
    /// (what it trusts so far), under `dir`.
    pub fn fork(&self, dir: &Path) -> Self {
        let forked = Self::new(dir, &self.root);
        copy_tree(&self.metadata_dir, &forked.metadata_dir);
        forked
    }

    /// Refreshes from `metadata_url` and downloads and verifies `targets` from `targets_url`.
    pub fn run(&self, metadata_url: &str, targets_url: &str, targets: &[&str]) -> ClientRun {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tuf_client.py");
        let mut child = Command::new(venv().join("bin/python"))
            .arg(&script)
            .arg("--metadata-url")
            .arg(metadata_url)
            .arg("--targets-url")
            .arg(targets_url)
            .arg("--root")
            .arg(&self.root)
            .arg("--metadata-dir")
            .arg(&self.metadata_dir)
            .arg("--download-dir")
            .arg(&self.download_dir)
            .args(targets)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out_pipe = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out_pipe.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > CLIENT_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tuf_client.py did not finish within {CLIENT_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                    out_reader.join().unwrap(),
                    err_reader.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out_reader.join().unwrap();
        let stderr = err_reader.join().unwrap();
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "tuf_client.py crashed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        parse_run(status.success(), stdout, stderr)
    }
}

fn parse_run(success: bool, stdout: String, stderr: String) -> ClientRun {
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("tuf_client.py printed {l:?} ({e}):\n{stdout}\n{stderr}"))
        })
        .collect();
    let (refresh, targets) = lines
        .split_last()
        .unwrap_or_else(|| panic!("tuf_client.py printed nothing:\n{stderr}"));
    assert_eq!(refresh["refresh"], Value::Bool(true), "{stdout}");
    let string = |v: &Value| v.as_str().map(str::to_owned);
    ClientRun {
        success,
        refresh_ok: refresh["ok"] == Value::Bool(true),
        refresh_error: string(&refresh["error"]),
        root_version: refresh["root_version"].as_u64(),
        timestamp_version: refresh["timestamp_version"].as_u64(),
        snapshot_version: refresh["snapshot_version"].as_u64(),
        targets: targets
            .iter()
            .map(|t| TargetResult {
                path: string(&t["path"]).unwrap(),
                ok: t["ok"] == Value::Bool(true),
                sha256: string(&t["sha256"]),
                file: string(&t["file"]).map(PathBuf::from),
                error: string(&t["error"]),
            })
            .collect(),
        stdout,
        stderr,
    }
}

/// Copies the directory tree `from` to `to` (symlinks are recreated: ngclient's `root.json`
/// is one).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ty.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}
