//! Mutable server state (always behind the `Shared` mutex).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::body::Body;
use crate::dist::{build_sdist, build_wheel};
use crate::generate::Generator;
use crate::util::{normalize_name, sha256_hex, timestamp_for_serial, upload_time_for_serial};
use crate::{Canned, ChangelogEntry, Fault, PageTransform, ReleaseSpec};

/// A page transform; closures have no `Debug`.
#[derive(Clone)]
pub(crate) struct Transform(pub PageTransform);

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transform(..)")
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub base_url: String,
    /// Global last serial (0 = nothing happened yet; first event is 1).
    pub serial: u64,
    /// Keyed by normalised name.
    pub projects: BTreeMap<String, Project>,
    /// Keyed by filename.
    pub files: HashMap<String, StoredFile>,
    pub changelog: Vec<ChangelogEntry>,
    /// Keyed by normalised project name.
    pub project_faults: HashMap<String, Fault>,
    /// Keyed by requested filename (may end in `.metadata`).
    pub file_faults: HashMap<String, Fault>,
    pub html_only: bool,
    /// Every request as `"METHOD /path?query"`, unless `record_requests` is off (a generated
    /// upstream serves tens of thousands of requests per run).
    pub requests: Vec<String>,
    pub record_requests: bool,
    pub file_downloads: usize,
    pub counters: Counters,
    /// File URLs in PyPI's layout, `/packages/<2 hex>/<2 hex>/<60 hex>/<filename>`, on the
    /// Simple pages too (the legacy JSON API always uses it: bandersnatch requires it).
    pub pypi_layout: bool,
    /// Present when the upstream was generated (`--generate`): makes the next epoch.
    pub generator: Option<Generator>,
    /// Keyed by exact path.
    pub routes: HashMap<String, Canned>,
    /// Keyed by normalised project name.
    pub page_transforms: HashMap<String, Transform>,
}

#[derive(Debug)]
pub(crate) struct Project {
    pub display: String,
    pub last_serial: u64,
    pub releases: Vec<Release>,
}

#[derive(Debug)]
pub(crate) struct Release {
    pub spec: ReleaseSpec,
    /// Filenames, keys into `State::files`.
    pub files: Vec<String>,
}

/// Request counters since start (`GET /_fake/stats`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub requests: u64,
    pub simple_pages: u64,
    pub legacy_json: u64,
    pub xmlrpc: u64,
    pub metadata_downloads: u64,
    /// Bytes of distribution files answered with 200 (`Content-Length`), not counting faults.
    pub file_bytes: u64,
}

/// A file about to join a release.
#[derive(Debug)]
pub(crate) struct NewFile {
    /// The `<kind>` of PyPI's `add <kind> file <name>` changelog action (`py3`, `cp312`,
    /// `source`).
    pub kind: String,
    pub filename: String,
    pub body: Body,
    pub sha256: String,
    pub metadata: Option<Bytes>,
}

#[derive(Debug)]
pub(crate) struct StoredFile {
    pub body: Body,
    pub sha256: String,
    pub metadata: Option<Bytes>,
    pub metadata_sha256: Option<String>,
    pub upload_time: String,
}

impl StoredFile {
    /// `"ab/cd/"`: the hash-derived directory under `/files/`.
    pub fn dir(&self) -> String {
        format!("{}/{}/", &self.sha256[0..2], &self.sha256[2..4])
    }

    /// `"ab/cd/<60 hex>/"`: the directory under `/packages/` (PyPI's layout).
    pub fn pypi_dir(&self) -> String {
        format!(
            "{}/{}/{}/",
            &self.sha256[0..2],
            &self.sha256[2..4],
            &self.sha256[4..]
        )
    }
}

/// Outcome of consulting a fault table for one request.
pub(crate) enum FaultCheck {
    None,
    /// Answer 503 (a `ServerErrors` fault consumed one unit).
    ServerError,
    Active(Fault),
}

impl State {
    pub fn new(base_url: String) -> Self {
        Self {
            base_url,
            serial: 0,
            projects: BTreeMap::new(),
            files: HashMap::new(),
            changelog: Vec::new(),
            project_faults: HashMap::new(),
            file_faults: HashMap::new(),
            html_only: false,
            requests: Vec::new(),
            record_requests: true,
            file_downloads: 0,
            counters: Counters::default(),
            pypi_layout: false,
            generator: None,
            routes: HashMap::new(),
            page_transforms: HashMap::new(),
        }
    }

    fn bump(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn log(&mut self, name: &str, version: &str, action: String, serial: u64) {
        self.changelog.push(ChangelogEntry {
            name: name.to_string(),
            version: version.to_string(),
            timestamp: timestamp_for_serial(serial),
            action,
            serial,
        });
    }

    /// Creates the project if missing (bumping the serial, `"create"` entry).
    /// Returns the normalised name.
    pub fn ensure_project(&mut self, display: &str) -> String {
        let norm = normalize_name(display);
        if !self.projects.contains_key(&norm) {
            let serial = self.bump();
            self.projects.insert(
                norm.clone(),
                Project {
                    display: display.to_string(),
                    last_serial: serial,
                    releases: Vec::new(),
                },
            );
            self.log(display, "", "create".to_string(), serial);
        }
        norm
    }

    pub fn add_release(&mut self, project: &str, spec: ReleaseSpec) {
        let norm = self.ensure_project(project);
        let display = self
            .projects
            .get(&norm)
            .map(|p| p.display.clone())
            .unwrap_or_else(|| project.to_string());
        let mut built = Vec::new();
        if spec.wheel {
            built.push(("py3", build_wheel(&display, &spec)));
        }
        if spec.sdist {
            built.push(("source", build_sdist(&display, &spec)));
        }
        let files = built
            .into_iter()
            .map(|(kind, b)| NewFile {
                kind: kind.to_string(),
                sha256: sha256_hex(&b.bytes),
                filename: b.filename,
                body: Body::Memory(Bytes::from(b.bytes)),
                metadata: b.metadata.map(Bytes::from),
            })
            .collect();
        self.push_release(&norm, spec, files);
    }

    /// Adds a release of the existing project `norm` made of `files` (replacing one with the
    /// same version): bumps the serial and logs `new release` and one `add … file` per file.
    pub fn push_release(&mut self, norm: &str, spec: ReleaseSpec, files: Vec<NewFile>) {
        let old = self.projects.get_mut(norm).and_then(|p| {
            let idx = p.releases.iter().position(|r| r.spec.version == spec.version)?;
            Some(p.releases.remove(idx))
        });
        if let Some(old) = old {
            for f in old.files {
                self.files.remove(&f);
            }
        }
        let serial = self.bump();
        let display = self
            .projects
            .get(norm)
            .map(|p| p.display.clone())
            .unwrap_or_else(|| norm.to_string());
        let upload_time = upload_time_for_serial(serial);
        let mut filenames = Vec::new();
        let mut actions = vec!["new release".to_string()];
        for f in files {
            actions.push(format!("add {} file {}", f.kind, f.filename));
            filenames.push(f.filename.clone());
            let metadata_sha256 = f.metadata.as_deref().map(sha256_hex);
            self.files.insert(
                f.filename,
                StoredFile {
                    sha256: f.sha256,
                    body: f.body,
                    metadata: f.metadata,
                    metadata_sha256,
                    upload_time: upload_time.clone(),
                },
            );
        }
        for a in actions {
            self.log(&display, &spec.version, a, serial);
        }
        if let Some(p) = self.projects.get_mut(norm) {
            p.last_serial = serial;
            p.releases.push(Release {
                spec,
                files: filenames,
            });
        }
    }

    pub fn remove_release(&mut self, project: &str, version: &str) {
        let norm = normalize_name(project);
        let Some(p) = self.projects.get_mut(&norm) else {
            return;
        };
        let Some(idx) = p.releases.iter().position(|r| r.spec.version == version) else {
            return;
        };
        let rel = p.releases.remove(idx);
        let display = p.display.clone();
        for f in rel.files {
            self.files.remove(&f);
        }
        let serial = self.bump();
        if let Some(p) = self.projects.get_mut(&norm) {
            p.last_serial = serial;
        }
        self.log(&display, version, "remove release".to_string(), serial);
    }

    /// Looks up a file by name; `<wheel>.metadata` resolves to the wheel's
    /// metadata bytes.
    pub fn lookup(&self, filename: &str) -> Option<(&StoredFile, Body)> {
        if let Some(f) = self.files.get(filename) {
            return Some((f, f.body.clone()));
        }
        let base = filename.strip_suffix(".metadata")?;
        let f = self.files.get(base)?;
        let m = f.metadata.clone()?;
        Some((f, Body::Memory(m)))
    }

    /// The path of a file below the server root, as its project page links it:
    /// `files/ab/cd/<name>`, or `packages/ab/cd/<60 hex>/<name>` in PyPI's layout.
    pub fn file_path(&self, filename: &str, f: &StoredFile) -> String {
        if self.pypi_layout {
            Self::pypi_path(filename, f)
        } else {
            format!("files/{}{}", f.dir(), filename)
        }
    }

    /// `packages/ab/cd/<60 hex>/<name>` (PyPI's layout, always served).
    pub fn pypi_path(filename: &str, f: &StoredFile) -> String {
        format!("packages/{}{}", f.pypi_dir(), filename)
    }

    /// Every distribution file (not `.metadata`) as `(path, sha256, size)`, sorted by path; the
    /// path is the one the Simple pages link (see [`State::file_path`]).
    pub fn manifest(&self) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = self
            .files
            .iter()
            .map(|(name, f)| (self.file_path(name, f), f.sha256.clone(), f.body.len()))
            .collect();
        out.sort();
        out
    }

    /// Consults (and, for `ServerErrors`, consumes) a fault.
    pub fn check_fault(table: &mut HashMap<String, Fault>, key: &str) -> FaultCheck {
        match table.get_mut(key) {
            None => FaultCheck::None,
            Some(Fault::ServerErrors { remaining }) => {
                if *remaining == 0 {
                    table.remove(key);
                    FaultCheck::None
                } else {
                    *remaining -= 1;
                    if *remaining == 0 {
                        table.remove(key);
                    }
                    FaultCheck::ServerError
                }
            }
            Some(f) => FaultCheck::Active(f.clone()),
        }
    }
}
