//! `tufa gc [--apply]`: deletes the blobs nothing can ask for any more.
//!
//! A blob is kept when any of these references it:
//! - the index (every file record, and the METADATA extracted from each wheel): what the next
//!   publish may list;
//! - a published project manifest (its pages with their compressed variants, its METADATA),
//!   and every file its JSON page lists;
//! - a target of any unexpired snapshot still published: every targets role version such a
//!   snapshot lists is read and its targets kept, so a client that fetched an older snapshot,
//!   and a reader serving an older page by its hash, still find what it signs.
//!
//! Everything else older than `--min-age-secs` is garbage: files a rule or upstream removed
//! once the last snapshot listing them expired, old page variants, blobs of interrupted runs.
//! Readers serve only what a manifest or an unexpired snapshot references, so deleting the
//! rest is safe while they run. gc holds the writer lease, so no sync or publish runs at the
//! same time. Without `--apply` it only reports what it would delete.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use tufa_pypi::Sha256Digest;
use tufa_store::BlobStore;
use tufa_tuf::{Signed, Snapshot, Targets};

use crate::config::Loaded;

pub async fn run(loaded: &Loaded, apply: bool, min_age: Duration) -> anyhow::Result<ExitCode> {
    let store = loaded.open_store_reachable().await?;
    tufa::lease_cmd::as_writer(loaded, &store, |store| gc(loaded, store, apply, min_age)).await
}

async fn gc(loaded: &Loaded, store: BlobStore, apply: bool, min_age: Duration) -> anyhow::Result<ExitCode> {
    let mut keep: BTreeSet<Sha256Digest> = BTreeSet::new();
    let from_index = index_references(loaded, &mut keep).await?;
    let from_pages = page_references(&store, &mut keep).await?;
    let (snapshots, from_tuf) = tuf_references(&store, &mut keep).await?;
    tracing::info!(
        index = from_index,
        pages = from_pages,
        unexpired_snapshots = snapshots,
        tuf_targets = from_tuf,
        kept = keep.len(),
        "references collected"
    );

    let cutoff = SystemTime::now()
        .checked_sub(min_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut listing = store.list_blobs();
    let (mut total, mut young) = (0usize, 0usize);
    let mut garbage: Vec<(Sha256Digest, u64)> = Vec::new();
    while let Some(item) = listing.next().await {
        let (digest, size, modified) = item?;
        total += 1;
        if keep.contains(&digest) {
            continue;
        }
        if modified > cutoff {
            young += 1;
            continue;
        }
        garbage.push((digest, size));
    }
    let bytes: u64 = garbage.iter().map(|(_, s)| s).sum();
    println!(
        "{total} blobs stored; {} referenced (index, published pages, {snapshots} unexpired snapshot(s)); {young} unreferenced but younger than {} s, kept",
        total - garbage.len() - young,
        min_age.as_secs()
    );
    if !apply {
        println!(
            "would delete {} unreferenced blob(s), {bytes} bytes (dry run: `{}` deletes them)",
            garbage.len(),
            loaded.command("gc --apply")
        );
        for (digest, size) in garbage.iter().take(20) {
            println!("  {digest}  {size} bytes");
        }
        if garbage.len() > 20 {
            println!("  … and {} more", garbage.len() - 20);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut deleted = 0usize;
    for (digest, _) in &garbage {
        store.delete(digest).await?;
        deleted += 1;
    }
    println!("deleted {deleted} unreferenced blob(s), {bytes} bytes");
    Ok(ExitCode::SUCCESS)
}

/// Every file in the index and every METADATA extracted from one.
async fn index_references(loaded: &Loaded, keep: &mut BTreeSet<Sha256Digest>) -> anyhow::Result<usize> {
    if !loaded.index_path.exists() {
        return Ok(0);
    }
    let index = loaded.open_index().await?;
    let files = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Sha256Digest>> {
        let mut files = Vec::new();
        index.for_each_file(|_, f| files.push(f.sha256))?;
        let extracted = index.extracted_metadata_many(&files)?;
        files.extend(extracted.into_iter().flatten().flatten());
        Ok(files)
    })
    .await??;
    let n = files.len();
    keep.extend(files);
    Ok(n)
}

/// Every published manifest's blobs, and the files each JSON page lists.
async fn page_references(store: &BlobStore, keep: &mut BTreeSet<Sha256Digest>) -> anyhow::Result<usize> {
    let before = keep.len();
    let projects: Vec<_> = tufa_tree::published_projects(store).collect().await;
    for project in projects {
        let project = project?;
        let Some(manifest) = tufa_tree::read_manifest(store, &project).await? else {
            continue;
        };
        for page in [&manifest.html, &manifest.json] {
            keep.insert(page.raw.sha256);
            keep.extend(page.variants().map(|(_, b)| b.sha256));
        }
        keep.extend(manifest.metadata.values().map(|b| b.sha256));
        let json = store.get_verified(&manifest.json.raw.sha256).await?;
        let page: serde_json::Value = serde_json::from_slice(&json)?;
        for file in page["files"].as_array().into_iter().flatten() {
            if let Some(d) = file["hashes"]["sha256"].as_str().and_then(|h| h.parse().ok()) {
                keep.insert(d);
            }
        }
    }
    Ok(keep.len() - before)
}

/// Every target of every unexpired published snapshot. Returns (snapshots, targets).
async fn tuf_references(
    store: &BlobStore,
    keep: &mut BTreeSet<Sha256Digest>,
) -> anyhow::Result<(usize, usize)> {
    let names: Vec<String> = store
        .list_named(tufa_tree::TUF_DIR)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let now = jiff::Timestamp::now();
    let consistent: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut roles: BTreeSet<String> = BTreeSet::new();
    let mut snapshots = 0;
    for name in names.iter().filter(|n| n.ends_with(".snapshot.json")) {
        let Some(bytes) = store.get_named(&tufa_tree::tuf_key(name)).await? else {
            continue;
        };
        // Deleting is not undone: anything unreadable stops the collection.
        let snapshot = Signed::<Snapshot>::from_bytes(name, &bytes)
            .map_err(|e| {
                anyhow::anyhow!("refusing to collect garbage: published `{name}` cannot be read: {e}")
            })?
            .metadata
            .signed;
        if snapshot.expires <= now {
            continue;
        }
        snapshots += 1;
        for (meta_name, meta) in &snapshot.meta {
            let file = format!("{}.{meta_name}", meta.version);
            if consistent.contains(file.as_str()) {
                roles.insert(file);
            }
        }
    }
    let before = keep.len();
    for file in &roles {
        let Some(bytes) = store.get_named(&tufa_tree::tuf_key(file)).await? else {
            continue;
        };
        let targets = Signed::<Targets>::from_bytes(file, &bytes).map_err(|e| {
            anyhow::anyhow!("refusing to collect garbage: published `{file}` cannot be read: {e}")
        })?;
        keep.extend(
            targets
                .metadata
                .signed
                .targets
                .values()
                .filter_map(tufa_tuf::TargetFile::sha256),
        );
    }
    Ok((snapshots, keep.len() - before))
}
