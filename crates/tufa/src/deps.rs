//! Following dependencies: the projects the mirrored wheels need (`Requires-Dist` in their
//! METADATA, read from the published tree) that the allowlist lacks. Used by `[sync]
//! follow_dependencies` and by `tufa quickstart`.

use std::collections::{BTreeMap, BTreeSet};

use tufa_pypi::ProjectName;
use tufa_store::BlobStore;

/// Projects that published wheels of `listed` depend on (not only through an extra) and that
/// `listed` lacks, each with the first listed project found needing it.
pub async fn missing_dependencies(
    store: &BlobStore,
    listed: &BTreeSet<ProjectName>,
) -> anyhow::Result<BTreeMap<ProjectName, ProjectName>> {
    let mut missing = BTreeMap::new();
    for name in listed {
        let Some(manifest) = tufa_tree::read_manifest(store, name).await? else {
            continue;
        };
        for blob in manifest.metadata.values() {
            let bytes = store.get_verified(&blob.sha256).await?;
            let text = String::from_utf8_lossy(&bytes);
            for dep in tufa_pypi::metadata::requires_dist(&text) {
                if !dep.extra_only && !listed.contains(&dep.name) {
                    missing.entry(dep.name).or_insert_with(|| name.clone());
                }
            }
        }
    }
    Ok(missing)
}

/// `roots` and, from what is already published, every project they need transitively (at most
/// `max` projects in all), with why each dependency is in (the project that needs it).
pub async fn closure(
    store: &BlobStore,
    roots: &[ProjectName],
    max: usize,
) -> anyhow::Result<(BTreeSet<ProjectName>, BTreeMap<ProjectName, ProjectName>)> {
    let mut set: BTreeSet<ProjectName> = roots.iter().cloned().collect();
    let mut why = BTreeMap::new();
    while set.len() < max {
        let missing = missing_dependencies(store, &set).await?;
        if missing.is_empty() {
            break;
        }
        for (dep, needed_by) in missing.into_iter().take(max.saturating_sub(set.len())) {
            set.insert(dep.clone());
            why.insert(dep, needed_by);
        }
    }
    Ok((set, why))
}
