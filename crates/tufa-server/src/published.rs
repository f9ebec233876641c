//! Which (digest, filename) pairs are published: the only files `/files/…` answers.
//!
//! A stored blob is not by itself servable: it may belong to a file that a later publish
//! removed, to a quarantined project (PEP 792: published without files), or be asked for under
//! a name it was never published under. The server learns the published pairs from the tree
//! itself, without any extra object: the filename names its project
//! ([`DistFilename::project`]), the project's manifest names its current JSON page, and that
//! page (verified against its digest like every page) lists each file with its sha256. The
//! parsed list is cached by the page's digest, so a new publish (a new page, a new digest) is
//! seen at once and an unchanged one costs one manifest read per request.
//!
//! Legacy filenames whose project cannot be parsed are looked up under each name that a
//! `-`-separated prefix of the filename spells (at most [`MAX_LEGACY_CANDIDATES`]); a file is
//! served only when one of those projects lists exactly that pair, so a name that fits no
//! pattern is a 404, never "serve anything".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest};
use tufa_tree::{FilePath, ProjectManifest};

use crate::AppState;
use crate::error::ApiError;
use crate::pages::verified_small;

/// Most projects tried for a legacy filename whose project cannot be parsed.
pub(crate) const MAX_LEGACY_CANDIDATES: usize = 8;
/// Bytes counted per cached file entry on top of its filename (map and digest overhead).
const ENTRY_OVERHEAD: u64 = 96;

/// filename → sha256 of one published page.
type FileList = Arc<HashMap<String, Sha256Digest>>;

/// The file lists of recently used pages, keyed by the page's digest, within a byte budget.
pub(crate) struct PublishedFiles {
    capacity: u64,
    inner: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    entries: HashMap<Sha256Digest, (FileList, u64)>,
    order: VecDeque<Sha256Digest>,
    bytes: u64,
}

/// The fields of a PEP 691 page this needs; everything else is ignored.
#[derive(Deserialize)]
struct PageFiles {
    files: Vec<PageFile>,
}

#[derive(Deserialize)]
struct PageFile {
    filename: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

impl PublishedFiles {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lists::default()),
        }
    }

    fn get(&self, page: &Sha256Digest) -> Option<FileList> {
        let lists = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        lists.entries.get(page).map(|(list, _)| Arc::clone(list))
    }

    fn insert(&self, page: Sha256Digest, list: FileList) {
        let cost: u64 = list
            .keys()
            .map(|name| name.len() as u64 + ENTRY_OVERHEAD)
            .sum::<u64>()
            + ENTRY_OVERHEAD;
        if cost > self.capacity {
            return;
        }
        let mut lists = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if lists.entries.insert(page, (list, cost)).is_some() {
            return;
        }
        lists.order.push_back(page);
        lists.bytes += cost;
        while lists.bytes > self.capacity {
            let Some(oldest) = lists.order.pop_front() else {
                break;
            };
            if let Some((_, freed)) = lists.entries.remove(&oldest) {
                lists.bytes -= freed;
            }
        }
    }
}

impl fmt::Debug for PublishedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lists = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("PublishedFiles")
            .field("capacity", &self.capacity)
            .field("pages", &lists.entries.len())
            .field("bytes", &lists.bytes)
            .finish()
    }
}

/// The projects a filename may belong to: the one it names, or for a legacy name that names
/// none, the projects its `-`-separated prefixes spell.
fn candidate_projects(filename: &DistFilename) -> Vec<ProjectName> {
    if let Some(project) = filename.project() {
        return vec![project.clone()];
    }
    let name = filename.as_str();
    let mut out: Vec<ProjectName> = Vec::new();
    for (at, _) in name.match_indices('-') {
        let Some(prefix) = name.get(..at) else {
            continue;
        };
        if let Ok(project) = ProjectName::new(prefix)
            && !out.contains(&project)
        {
            out.push(project);
        }
        if out.len() >= MAX_LEGACY_CANDIDATES {
            break;
        }
    }
    out
}

/// The manifest of the published project whose current page lists exactly `file`'s
/// (digest, filename) pair; `None` when no published page does.
pub(crate) async fn publishing_manifest(
    state: &AppState,
    file: &FilePath,
) -> Result<Option<Arc<ProjectManifest>>, ApiError> {
    for project in candidate_projects(&file.filename) {
        let Some(manifest) = state.manifest(&project).await? else {
            continue;
        };
        let list = file_list(state, &manifest).await?;
        if list.get(file.filename.as_str()) == Some(&file.sha256) {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}

/// The files the manifest's current JSON page lists, from the cache or the verified page.
async fn file_list(state: &AppState, manifest: &ProjectManifest) -> Result<FileList, ApiError> {
    let page = manifest.json.raw;
    if let Some(list) = state.published().get(&page.sha256) {
        return Ok(list);
    }
    let data = verified_small(state, &page).await?;
    let parsed: PageFiles = serde_json::from_slice(&data).map_err(|e| {
        ApiError::Internal(format!(
            "published JSON page sha256:{} of `{}` is unreadable: {e}",
            page.sha256, manifest.name
        ))
    })?;
    let list: HashMap<String, Sha256Digest> = parsed
        .files
        .into_iter()
        .filter_map(|f| {
            let digest = f.hashes.get("sha256")?.parse().ok()?;
            Some((f.filename, digest))
        })
        .collect();
    let list = Arc::new(list);
    state.published().insert(page.sha256, Arc::clone(&list));
    Ok(list)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn candidates_of_modern_and_legacy_names() {
        let wheel = DistFilename::parse("foo_bar-1.0-py3-none-any.whl").unwrap();
        let names: Vec<String> = candidate_projects(&wheel)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["foo-bar"]);
        let sdist = DistFilename::parse("foo-bar-1.0.tar.gz").unwrap();
        let names: Vec<String> = candidate_projects(&sdist)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["foo-bar"]);
    }

    #[test]
    fn cache_stays_within_its_budget() {
        let cache = PublishedFiles::new(1000);
        for i in 0..20u8 {
            let list = HashMap::from([(format!("p{i}-1.0.tar.gz"), Sha256Digest::of(&[i]))]);
            cache.insert(Sha256Digest::of(&[i, i]), Arc::new(list));
        }
        let lists = cache.inner.lock().unwrap();
        assert!(lists.bytes <= 1000);
        assert!(!lists.entries.is_empty());
        drop(lists);
        assert!(cache.get(&Sha256Digest::of(&[19, 19])).is_some());
        assert!(cache.get(&Sha256Digest::of(&[0, 0])).is_none());
    }
}
