//! Mutable server state (always behind the `Shared` mutex).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::dist::{build_sdist, build_wheel};
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
    pub requests: Vec<String>,
    pub file_downloads: usize,
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

#[derive(Debug)]
pub(crate) struct StoredFile {
    pub bytes: Bytes,
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
            file_downloads: 0,
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
        // Replace an existing release with the same version.
        let old = self.projects.get_mut(&norm).and_then(|p| {
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
            .get(&norm)
            .map(|p| p.display.clone())
            .unwrap_or_else(|| project.to_string());
        let upload_time = upload_time_for_serial(serial);
        let mut built = Vec::new();
        if spec.wheel {
            built.push(("py3", build_wheel(&display, &spec)));
        }
        if spec.sdist {
            built.push(("source", build_sdist(&display, &spec)));
        }
        let mut filenames = Vec::new();
        let mut actions = vec!["new release".to_string()];
        for (kind, b) in built {
            actions.push(format!("add {kind} file {}", b.filename));
            filenames.push(b.filename.clone());
            let metadata_sha256 = b.metadata.as_deref().map(sha256_hex);
            self.files.insert(
                b.filename,
                StoredFile {
                    sha256: sha256_hex(&b.bytes),
                    bytes: Bytes::from(b.bytes),
                    metadata: b.metadata.map(Bytes::from),
                    metadata_sha256,
                    upload_time: upload_time.clone(),
                },
            );
        }
        for a in actions {
            self.log(&display, &spec.version, a, serial);
        }
        if let Some(p) = self.projects.get_mut(&norm) {
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
    pub fn lookup(&self, filename: &str) -> Option<(&StoredFile, Bytes)> {
        if let Some(f) = self.files.get(filename) {
            return Some((f, f.bytes.clone()));
        }
        let base = filename.strip_suffix(".metadata")?;
        let f = self.files.get(base)?;
        let m = f.metadata.clone()?;
        Some((f, m))
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
