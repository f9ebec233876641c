//! Following dependencies (`[sync] follow_dependencies`, and `tufa quickstart`): the projects
//! the mirrored distributions need, transitively, with why each one is in.
//!
//! What a project needs is read from what is mirrored of it: the `Requires-Dist` of every
//! published wheel's METADATA and, for a release with no wheel, its sdist's `PKG-INFO` when
//! that is reliable (metadata 2.2 or later without `Dynamic: Requires-Dist`, PEP 643). Each
//! requirement is parsed with `pep508_rs`; one that applies only with an extra is followed
//! when something asks for that extra (a requirements line `requests[socks]`, or a dependency
//! `foo[bar]`); markers are kept conservative (every conditional dependency is followed) unless
//! `[sync] environments` names where the organisation installs.
//!
//! The resolution is computed again at every sync, from what that sync mirrored, and stored
//! (`policy/allowlist.json`) for `tufa policy explain`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use pep508_rs::MarkerTree;
use serde::{Deserialize, Serialize};
use tufa_index::Index;
use tufa_pypi::metadata::Dependency;
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest, Version};
use tufa_store::BlobStore;

/// The largest sdist read for its `PKG-INFO` when the store is not a local disk (on a local
/// disk the file is read in place, only as far as `PKG-INFO`).
const MAX_REMOTE_SDIST_BYTES: u64 = 64 * 1024 * 1024;

/// A project the allowlist names, and where.
#[derive(Debug, Clone, Default)]
pub struct Root {
    /// Where it is listed: `projects in tufa.toml`, `requirements.txt:3: requests[socks]>=2`.
    pub sources: Vec<String>,
    /// Extras the listing asks for.
    pub extras: BTreeSet<String>,
}

/// Why one project is in the allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where the configuration lists it (empty: only a dependency).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listed: Vec<String>,
    /// The project whose metadata first asked for it, and the `Requires-Dist` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed_by: Option<(ProjectName, String)>,
    /// The extras asked of it.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub extras: BTreeSet<String>,
    /// Why nothing of it is mirrored, when nothing is (a policy rule, an upstream failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_mirrored: Option<String>,
}

/// The allowlist a sync resolved, with why each project is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub version: u32,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// Whether `[sync] follow_dependencies` was on.
    pub follow_dependencies: bool,
    pub projects: BTreeMap<ProjectName, Entry>,
    /// Dependencies left out because the allowlist reached `sync.max_projects`: the
    /// dependency and the project that needs it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_followed: BTreeMap<ProjectName, ProjectName>,
    /// Releases with no wheel whose sdist does not declare its dependencies reliably: they are
    /// not followed (list them in a requirements file). Project → sdist filenames.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown: BTreeMap<ProjectName, Vec<String>>,
}

impl Resolution {
    pub const KEY: &'static str = "policy/allowlist.json";

    /// The projects, in order.
    pub fn names(&self) -> Vec<ProjectName> {
        self.projects.keys().cloned().collect()
    }

    /// The projects followed as dependencies (not listed).
    pub fn followed(&self) -> impl Iterator<Item = (&ProjectName, &Entry)> {
        self.projects.iter().filter(|(_, e)| e.listed.is_empty())
    }

    /// Why `name` is mirrored, one line per step: how it is listed, or the chain of
    /// dependencies from a listed project down to it. `None` if it is not in the allowlist.
    pub fn why(&self, name: &ProjectName) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        let mut at = name;
        // A chain is at most as long as the allowlist; the bound guards a hand-edited file.
        for _ in 0..=self.projects.len() {
            let entry = self.projects.get(at)?;
            if !entry.listed.is_empty() {
                lines.push(format!("{at} is listed: {}", entry.listed.join("; ")));
                break;
            }
            let (by, requirement) = entry.needed_by.as_ref()?;
            lines.push(format!("{at} is needed by {by} (Requires-Dist: {requirement})"));
            at = by;
        }
        lines.reverse();
        Some(lines)
    }

    /// Loads the resolution the last sync stored, if any (an unreadable one counts as none).
    pub async fn load(store: &BlobStore) -> Option<Self> {
        let bytes = store.get_named(Self::KEY).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    pub async fn save(&self, store: &BlobStore) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        store.put_named(Self::KEY, bytes.into()).await?;
        Ok(())
    }
}

/// What one project's mirrored distributions need.
#[derive(Default)]
struct Needs {
    dependencies: Vec<Arc<Dependency>>,
    /// sdists (of releases with no wheel) whose dependencies cannot be read.
    unknown: Vec<String>,
}

/// Resolves the allowlist from what is mirrored. Keep one across the rounds of a sync: parsed
/// metadata is cached by its hash.
#[derive(Debug)]
pub struct Resolver<'a> {
    store: &'a BlobStore,
    /// For sdists' `PKG-INFO` (extracted once and recorded there); without it only wheels count.
    index: Option<&'a Index>,
    environments: &'a [MarkerTree],
    max: usize,
    parsed: HashMap<Sha256Digest, Arc<Vec<Arc<Dependency>>>>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        store: &'a BlobStore,
        index: Option<&'a Index>,
        environments: &'a [MarkerTree],
        max: usize,
    ) -> Self {
        Self {
            store,
            index,
            environments,
            max,
            parsed: HashMap::new(),
        }
    }

    /// `roots` and every project they need, transitively, as far as what is mirrored shows,
    /// up to `max` projects in all.
    pub async fn resolve(&mut self, roots: &BTreeMap<ProjectName, Root>) -> anyhow::Result<Resolution> {
        let mut out = Resolution {
            version: 1,
            updated_at: tufa_tuf::format_expires(jiff::Timestamp::now()),
            follow_dependencies: true,
            ..Resolution::default()
        };
        for (name, root) in roots {
            out.projects.insert(
                name.clone(),
                Entry {
                    listed: root.sources.clone(),
                    extras: root.extras.clone(),
                    ..Entry::default()
                },
            );
        }
        // Breadth first, so each project's recorded chain is a shortest one. A project is
        // visited again when a later requirement asks it for more extras.
        let mut queue: VecDeque<ProjectName> = roots.keys().cloned().collect();
        let mut visited: HashMap<ProjectName, BTreeSet<String>> = HashMap::new();
        while let Some(name) = queue.pop_front() {
            let extras = out
                .projects
                .get(&name)
                .map(|e| e.extras.clone())
                .unwrap_or_default();
            if visited.get(&name) == Some(&extras) {
                continue;
            }
            visited.insert(name.clone(), extras.clone());
            let needs = self.needs(&name).await?;
            if !needs.unknown.is_empty() {
                out.unknown.insert(name.clone(), needs.unknown);
            }
            for dep in needs.dependencies {
                if !dep.applies(&extras, self.environments) {
                    continue;
                }
                if let Some(entry) = out.projects.get_mut(&dep.name) {
                    let before = entry.extras.len();
                    entry.extras.extend(dep.extras.iter().cloned());
                    if entry.extras.len() > before {
                        queue.push_back(dep.name.clone());
                    }
                    continue;
                }
                if out.projects.len() >= self.max {
                    out.not_followed
                        .entry(dep.name.clone())
                        .or_insert_with(|| name.clone());
                    continue;
                }
                out.projects.insert(
                    dep.name.clone(),
                    Entry {
                        needed_by: Some((name.clone(), dep.text.clone())),
                        extras: dep.extras.iter().cloned().collect(),
                        ..Entry::default()
                    },
                );
                queue.push_back(dep.name.clone());
            }
        }
        Ok(out)
    }

    /// The dependencies declared by what is mirrored of `name` (every version), each once.
    async fn needs(&mut self, name: &ProjectName) -> anyhow::Result<Needs> {
        let mut needs = Needs::default();
        let Some(manifest) = tufa_tree::read_manifest(self.store, name).await? else {
            return Ok(needs);
        };
        let mut sources: Vec<Sha256Digest> = manifest.metadata.values().map(|b| b.sha256).collect();
        if let Some(index) = self.index {
            let with_wheel: BTreeSet<Version> = manifest
                .metadata
                .keys()
                .filter_map(|f| DistFilename::parse(f).ok()?.version().cloned())
                .collect();
            let (pkg_infos, unknown) = self.sdist_pkg_infos(index, name, &with_wheel).await?;
            sources.extend(pkg_infos);
            needs.unknown = unknown;
        }
        let mut seen = BTreeSet::new();
        for sha256 in sources {
            for dep in self.parsed(&sha256).await?.iter() {
                if seen.insert(dep.text.clone()) {
                    needs.dependencies.push(dep.clone());
                }
            }
        }
        Ok(needs)
    }

    /// The `Requires-Dist` of one metadata blob, parsed once per resolver.
    async fn parsed(&mut self, sha256: &Sha256Digest) -> anyhow::Result<Arc<Vec<Arc<Dependency>>>> {
        if let Some(deps) = self.parsed.get(sha256) {
            return Ok(deps.clone());
        }
        let bytes = self.store.get_verified(sha256).await?;
        let text = String::from_utf8_lossy(&bytes);
        let deps: Arc<Vec<Arc<Dependency>>> = Arc::new(
            tufa_pypi::metadata::requires_dist(&text)
                .into_iter()
                .map(Arc::new)
                .collect(),
        );
        self.parsed.insert(*sha256, deps.clone());
        Ok(deps)
    }

    /// The reliable `PKG-INFO` blobs of `name`'s sdists whose release has no wheel mirrored,
    /// and the sdists whose dependencies cannot be known. Each sdist is read once: what it
    /// gave (a blob, or nothing usable) is recorded in the index beside wheels' METADATA.
    async fn sdist_pkg_infos(
        &self,
        index: &Index,
        name: &ProjectName,
        with_wheel: &BTreeSet<Version>,
    ) -> anyhow::Result<(Vec<Sha256Digest>, Vec<String>)> {
        // The sdists and what is recorded for each, in one blocking call.
        let idx = index.clone();
        let project = name.clone();
        let with_wheel = with_wheel.clone();
        let sdists = tokio::task::spawn_blocking(move || -> Result<_, tufa_index::IndexError> {
            let sdists: Vec<_> = idx
                .files(&project)?
                .into_iter()
                .filter(|f| f.filename.as_wheel().is_none())
                .filter(|f| f.filename.version().is_some_and(|v| !with_wheel.contains(v)))
                .collect();
            let digests: Vec<Sha256Digest> = sdists.iter().map(|f| f.sha256).collect();
            let known = idx.extracted_metadata_many(&digests)?;
            Ok(sdists.into_iter().zip(known).collect::<Vec<_>>())
        })
        .await??;
        let (mut found, mut unknown) = (Vec::new(), Vec::new());
        for (f, known) in sdists {
            let sha256 = f.sha256;
            let blob = match known {
                Some(blob) => blob,
                None => match self.extract_pkg_info(&f).await {
                    // Recorded, so the sdist is not read again.
                    Ok(blob) => {
                        let idx = index.clone();
                        tokio::task::spawn_blocking(move || {
                            idx.set_extracted_metadata(&sha256, blob.as_ref())
                        })
                        .await??;
                        blob
                    }
                    // The store failed: tried again next time.
                    Err(e) => {
                        tracing::warn!(file = %f.filename, error = %e, "cannot read the sdist from the store");
                        None
                    }
                },
            };
            match blob {
                Some(blob) => found.push(blob),
                None => unknown.push(f.filename.to_string()),
            }
        }
        Ok((found, unknown))
    }

    /// Reads an sdist's `PKG-INFO` and stores it, if it declares its dependencies reliably:
    /// `Ok(None)` for anything else (no PKG-INFO, metadata before 2.2, dynamic dependencies, an
    /// unreadable archive), logged. `Err` when the store fails (worth trying again).
    async fn extract_pkg_info(&self, f: &tufa_index::FileRecord) -> Result<Option<Sha256Digest>, String> {
        let filename = f.filename.to_string();
        let name = filename.clone();
        let extracted = match self.store.local_path(&f.sha256) {
            Some(path) => tokio::task::spawn_blocking(move || {
                // A blob that cannot be opened is the store failing, not the sdist.
                let file =
                    std::fs::File::open(&path).map_err(|e| format!("cannot open the stored sdist: {e}"))?;
                Ok::<_, String>(
                    tufa_publish::metadata::extract_sdist(std::io::BufReader::new(file), &name)
                        .map_err(|e| e.to_string()),
                )
            })
            .await
            .map_err(|e| e.to_string())??,
            None if f.size > MAX_REMOTE_SDIST_BYTES => Err(format!(
                "{} bytes is more than the {MAX_REMOTE_SDIST_BYTES} read from a remote store",
                f.size
            )),
            None => {
                let bytes = self
                    .store
                    .get_verified(&f.sha256)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::task::spawn_blocking(move || {
                    tufa_publish::metadata::extract_sdist(std::io::Cursor::new(bytes), &name)
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
        };
        let pkg_info = match extracted {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                tracing::info!(file = %filename, "sdist has no PKG-INFO: its dependencies are not followed");
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(file = %filename, error = %e, "cannot read the sdist's PKG-INFO");
                return Ok(None);
            }
        };
        if !tufa_pypi::metadata::sdist_requirements_are_static(&String::from_utf8_lossy(&pkg_info)) {
            tracing::info!(
                file = %filename,
                "sdist's dependencies are dynamic (metadata before 2.2, or Dynamic: Requires-Dist): not followed"
            );
            return Ok(None);
        }
        self.store
            .put_bytes(pkg_info.into())
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }
}
