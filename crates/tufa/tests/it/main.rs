//! End-to-end tests of the `tufa` binary against the in-process fake PyPI.
//!
//! Each test owns a multi-thread tokio runtime that serves the fake upstream on 127.0.0.1
//! while the test thread runs the real binary as a child process.

// Test code: panicking on unexpected values is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ceremony_mirror;
mod config;
mod deploy;
mod deploy_compose;
mod deploy_config;
mod deploy_kubernetes;
mod deploy_nginx;
mod deploy_yaml;
mod deps;
mod gc;
mod hardening;
mod kill;
mod lease;
mod policy;
mod rebuild;
mod storage_azure;
mod sync;
mod tuf;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use tempfile::TempDir;
use tufa_fake_upstream::{FakeUpstream, ProjectSpec, ReleaseSpec};

/// Upper bound for one `tufa` invocation; a hang fails the test instead of blocking it.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// The fake upstream and the runtime serving it (dropped together, runtime last).
#[derive(Debug)]
pub struct Upstream {
    pub up: FakeUpstream,
    rt: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    pub fn start(projects: Vec<ProjectSpec>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let up = rt.block_on(FakeUpstream::start(projects));
        Self { up, rt: Some(rt) }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Do not wait for stalled (fault-injected) responses.
            rt.shutdown_background();
        }
    }
}

impl std::ops::Deref for Upstream {
    type Target = FakeUpstream;
    fn deref(&self) -> &FakeUpstream {
        &self.up
    }
}

/// The caller's environment variables that would change what `tufa` does.
const CALLER_ENV: [&str; 5] = [
    "TUFA_CONFIG",
    "TUFA_UPSTREAM",
    "TUFA_PROJECTS",
    "TUFA_LOG_FORMAT",
    "RUST_LOG",
];

/// `tufa` with a clean environment (no `TUFA_*` or `RUST_LOG` from the caller).
pub fn tufa() -> Command {
    let mut cmd = Command::cargo_bin("tufa").unwrap();
    for var in CALLER_ENV {
        cmd.env_remove(var);
    }
    cmd.timeout(CMD_TIMEOUT);
    cmd
}

/// [`tufa`] as a `std::process::Command`, for a process the test runs in the background
/// (and kills, or waits for).
pub fn tufa_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tufa"));
    for var in CALLER_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A mirror directory made by `tufa init`.
#[derive(Debug)]
pub struct MirrorDir {
    pub dir: TempDir,
}

impl MirrorDir {
    /// `tufa init DIR --upstream URL [--project P]...`, then fast retries in the config and no
    /// online key: these mirrors publish unsigned on purpose (the TUF tests add keys; the
    /// default `online_key` of a fresh `tufa init` is tested in `ceremony_mirror`).
    pub fn init(up: &FakeUpstream, projects: &[&str]) -> Self {
        let m = Self::init_with_online_key(up, projects);
        let text = std::fs::read_to_string(m.config()).unwrap();
        let line = "\nonline_key = \"keys/online.json\"\n";
        assert!(text.contains(line), "{text}");
        std::fs::write(
            m.config(),
            text.replace(line, "\n# online_key = \"keys/online.json\"\n"),
        )
        .unwrap();
        m
    }

    /// `tufa init DIR --upstream URL [--project P]...` as an operator runs it (the online key
    /// configured at `keys/online.json`, not created), then fast retries in the config.
    pub fn init_with_online_key(up: &FakeUpstream, projects: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = tufa();
        cmd.arg("init")
            .arg(dir.path())
            .arg("--upstream")
            .arg(up.simple_url());
        for p in projects {
            cmd.arg("--project").arg(p);
        }
        cmd.assert().success();
        let m = Self { dir };
        let text = std::fs::read_to_string(m.config()).unwrap();
        let text = text
            .replace("# retries = 4", "retries = 2")
            .replace("# retry_base_delay_ms = 500", "retry_base_delay_ms = 5");
        assert!(text.contains("\nretries = 2") && text.contains("\nretry_base_delay_ms = 5"));
        std::fs::write(m.config(), text).unwrap();
        m
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("tufa.toml")
    }

    /// Rewrites `tufa.toml` through `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        std::fs::write(self.config(), edit(text)).unwrap();
    }

    /// `tufa --config DIR/tufa.toml <args>`.
    pub fn tufa(&self, args: &[&str]) -> Command {
        let mut cmd = tufa();
        cmd.arg("--config").arg(self.config()).args(args);
        cmd
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("data/store")
    }

    /// Where the blob with this hex digest lives.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.store()
            .join("blobs/sha256")
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(hex)
    }

    /// Number of files under `blobs/` (distribution files, and published pages once a sync
    /// has completed).
    pub fn blob_count(&self) -> usize {
        count_files(&self.store().join("blobs"))
    }

    /// How many of these files' blobs are stored.
    pub fn stored(&self, files: &[(String, String)]) -> usize {
        files
            .iter()
            .filter(|(_, sha)| self.blob_path(sha).exists())
            .count()
    }

    /// Number of files under `tmp/`.
    pub fn temp_count(&self) -> usize {
        count_files(&self.store().join("tmp"))
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

/// Every file of these upstream projects, as (filename, sha256 hex).
pub fn upstream_files(up: &FakeUpstream, projects: &[&str]) -> Vec<(String, String)> {
    projects
        .iter()
        .flat_map(|p| up.filenames(p))
        .map(|f| {
            let sha = up.file_sha256(&f).unwrap();
            (f, sha)
        })
        .collect()
}

/// `N` of the `verified N files` line.
pub fn verified_count(output: &std::process::Output) -> usize {
    stdout(output)
        .lines()
        .find_map(|l| l.strip_prefix("verified ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `verified N files` line: {output:?}"))
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A release whose files are several KiB (hundreds of hard-to-compress requirements), so a
/// `SlowBody` fault dribbles them out in several 1 KiB chunks.
pub fn big_release(version: &str, requirements: usize) -> ReleaseSpec {
    let mut r = ReleaseSpec::new(version);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ version.len() as u64;
    for i in 0..requirements {
        let mut dep = String::new();
        for _ in 0..12 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            dep.push(char::from(b'a' + ((x >> 33) % 26) as u8));
        }
        r = r.requires(&format!("{dep}>={}.{}", i % 17, (x >> 40) % 100));
    }
    r
}
