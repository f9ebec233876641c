//! End-to-end tests of `tufa_sync::sync` against the in-process fake PyPI, with a real blob
//! store on disk and a real index, both in a temporary directory.

// Test code: panicking on unexpected values is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod allowlist;
mod faults;
mod full;
mod hostile;
mod policy;
mod resume;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tufa_fake_upstream::{FakeUpstream, ReleaseSpec};
use tufa_index::{FileRecord, Index};
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_store::BlobStore;
use tufa_sync::{SyncFailure, SyncOptions, SyncReport};
use url::Url;

/// The display names of `demo_projects()`.
pub const DEMO: [&str; 4] = ["demo-util", "demo-lib", "demo-app", "Foo.Bar_baz"];

/// A mirror on disk: a local blob store and an index in a temporary directory.
#[derive(Debug)]
pub struct Mirror {
    _dir: TempDir,
    pub store_root: PathBuf,
    pub store: BlobStore,
    pub index: Index,
}

impl Mirror {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store_root = dir.path().join("store");
        let store = BlobStore::local(&store_root).unwrap();
        let store_root = std::fs::canonicalize(&store_root).unwrap();
        let index = Index::open(dir.path().join("index.redb")).unwrap();
        Self {
            _dir: dir,
            store_root,
            store,
            index,
        }
    }

    pub async fn sync(&self, options: &SyncOptions) -> SyncReport {
        tufa_sync::sync(options, &self.store, &self.index, Arc::new(|_| {}))
            .await
            .unwrap()
    }

    /// Hex digests of every file under `blobs/`, checking each sits at its address.
    pub fn blobs(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        walk(&self.store_root.join("blobs"), &mut |path| {
            let hex = path.file_name().unwrap().to_str().unwrap().to_owned();
            let digest: Sha256Digest = hex.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                self.store.local_path(&digest).unwrap(),
                path,
                "blob at the wrong place"
            );
            out.insert(hex);
        });
        out
    }

    pub fn has_blob(&self, hex: &str) -> bool {
        self.store.local_path(&hex.parse().unwrap()).unwrap().exists()
    }

    /// The index's files of a project, by filename.
    pub fn files(&self, project: &str) -> BTreeMap<String, FileRecord> {
        self.index
            .files(&name(project))
            .unwrap()
            .into_iter()
            .map(|f| (f.filename.to_string(), f))
            .collect()
    }

    /// Every file of the index as (project, filename) → record.
    pub fn all_files(&self) -> BTreeMap<(String, String), FileRecord> {
        let mut out = BTreeMap::new();
        self.index
            .for_each_file(|p, f| {
                out.insert((p.to_string(), f.filename.to_string()), f);
            })
            .unwrap();
        out
    }

    pub fn project_names(&self) -> Vec<String> {
        self.index
            .project_names()
            .unwrap()
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    /// Waits (bounded) until no temporary object is left: the drop guard of a cancelled put
    /// removes its temporary file in the background.
    pub async fn assert_no_temps(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let temps = self.store.temp_objects().await.unwrap();
            if temps.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "temporary objects left behind: {temps:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The project's index entries are exactly the upstream's files, each with the right
    /// attributes, and each blob holds exactly the upstream bytes.
    pub fn assert_synced(&self, up: &FakeUpstream, project: &str) {
        let files = self.files(project);
        let upstream: BTreeSet<String> = up.filenames(project).into_iter().collect();
        let indexed: BTreeSet<String> = files.keys().cloned().collect();
        assert_eq!(indexed, upstream, "{project}: index differs from upstream");
        for (filename, record) in &files {
            self.assert_record(up, filename, record);
        }
    }

    fn assert_record(&self, up: &FakeUpstream, filename: &str, record: &FileRecord) {
        let bytes = up.file_bytes(filename).unwrap();
        let sha = up.file_sha256(filename).unwrap();
        assert_eq!(record.sha256.to_hex(), sha, "{filename}: sha256");
        assert_eq!(record.size, bytes.len() as u64, "{filename}: size");
        let (requires_python, yanked) = demo_attributes(filename);
        assert_eq!(
            record.requires_python.as_deref(),
            requires_python,
            "{filename}: requires-python"
        );
        assert_eq!(record.yanked.as_deref(), yanked, "{filename}: yanked");
        let metadata = filename
            .ends_with(".whl")
            .then(|| up.file_sha256(&format!("{filename}.metadata")).unwrap());
        assert_eq!(
            record.core_metadata_sha256.map(|d| d.to_hex()),
            metadata,
            "{filename}: core-metadata sha256"
        );
        assert_eq!(
            record.upstream_url,
            up.file_url(filename).unwrap(),
            "{filename}: upstream url"
        );
        let path = self.store.local_path(&record.sha256).unwrap();
        let stored =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{filename}: blob {}: {e}", path.display()));
        assert!(stored == bytes, "{filename}: stored bytes differ from upstream's");
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(PathBuf)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(path);
        }
    }
}

/// (requires-python, yank reason) of the demo files; `None`s for every other file.
pub fn demo_attributes(filename: &str) -> (Option<&'static str>, Option<&'static str>) {
    if filename.starts_with("demo_lib-0.9-") || filename == "demo_lib-0.9.tar.gz" {
        (None, Some("broken"))
    } else if filename.starts_with("demo_lib-1.1-") || filename == "demo_lib-1.1.tar.gz" {
        (Some(">=3.8"), None)
    } else {
        (None, None)
    }
}

pub fn name(project: &str) -> ProjectName {
    ProjectName::new(project).unwrap()
}

/// Options for the fake upstream with fast retries. `projects`: `Some` = allowlist mode.
pub fn options(up: &FakeUpstream, projects: Option<&[&str]>) -> SyncOptions {
    let mut o = SyncOptions::new(Url::parse(&up.simple_url()).unwrap());
    o.projects = projects.map(|ps| ps.iter().map(|p| name(p)).collect());
    o.limits.retries = 2;
    o.limits.retry_base_delay_ms = 5;
    o.limits.connect_timeout_secs = 5;
    o.limits.read_timeout_secs = 5;
    o.limits.page_timeout_secs = 10;
    o
}

/// Every filename of these upstream projects, with its sha256.
pub fn upstream_files(up: &FakeUpstream, projects: &[&str]) -> BTreeMap<String, String> {
    projects
        .iter()
        .flat_map(|p| up.filenames(p))
        .map(|f| {
            let sha = up.file_sha256(&f).unwrap();
            (f, sha)
        })
        .collect()
}

/// The one failure about `project` (and `file`, if given).
pub fn failure<'a>(report: &'a SyncReport, project: &str, file: Option<&str>) -> &'a SyncFailure {
    let project = name(project).to_string();
    report
        .failures
        .iter()
        .find(|f| f.project == project && f.file.as_deref() == file)
        .unwrap_or_else(|| panic!("no failure for {project} {file:?} in {:#?}", report.failures))
}

/// A release whose files are several KiB (hundreds of hard-to-compress requirements), so a
/// `SlowBody` fault dribbles them out in several chunks.
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

/// Requests the fake upstream logged, as `"METHOD /path"`.
pub fn requests_mentioning(up: &FakeUpstream, needle: &str) -> Vec<String> {
    up.requests().into_iter().filter(|r| r.contains(needle)).collect()
}
