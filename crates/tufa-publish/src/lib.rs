//! `tufa-publish`: turns the index into the published tree.
//!
//! For each project changed since the last publish (the index's dirty set) it extracts PEP 658
//! metadata from new wheels, renders the project page as PEP 691 JSON and PEP 503 HTML from one
//! model, stores both (plus gzip and zstd variants) as content-addressed blobs, and only then replaces
//! the project's manifest (`tufa-tree`). Cost grows with the number of changed projects, never
//! with the size of the mirror; the root `/simple/` list is not rendered at all (the server
//! streams it from the manifest listing).
//!
//! Order, for readers: blobs first, then the manifest that names them; the dirty mark is
//! cleared last, so a crash at any point means the project is published again next time.
//!
//! Must not know about: the network, HTTP serving.

pub mod metadata;
pub mod rebuild;
pub mod tuf;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::StreamExt as _;
use tufa_index::{FileRecord, Index, IndexError, ProjectRecord};
use tufa_pypi::simple::{CoreMetadata, File, ProjectPage, Yanked};
use tufa_pypi::{DistKind, ProjectName, Sha256Digest, Version, render};
use tufa_store::{BlobStore, StoreError};
use tufa_tree::{BlobRef, ProjectManifest, TreeError};

/// Projects published at once unless [`PublishOptions::concurrency`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Projects whose blobs and manifests are made durable in one group commit, after which their
/// dirty marks are cleared (a crash re-publishes at most one batch).
const BATCH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("index: {0}")]
    Index(#[from] IndexError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("published tree: {0}")]
    Tree(#[from] TreeError),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("TUF: {0}")]
    Tuf(String),
    /// A broken promise between tufa's own parts (a bug).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// How to publish. The default: PEP 458's 16,384 bins, unsigned, [`DEFAULT_CONCURRENCY`]
/// projects at once.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The hashed-bin layout TUF targets are kept in (fixed once TUF metadata exists).
    pub layout: tufa_tuf::BinLayout,
    /// Signing keys; `None` publishes unsigned pages (targets are still tracked, so signing
    /// can start later).
    pub tuf: Option<tuf::TufSigning>,
    /// Sign a new timestamp even when nothing changed (`tufa refresh`).
    pub force_timestamp: bool,
    /// Projects published at once (at least 1).
    pub concurrency: usize,
    /// `[policy]`: its licence rules are judged here, where each wheel's METADATA is known;
    /// a blocked file is left off the pages and the TUF targets.
    pub policy: Option<std::sync::Arc<tufa_policy::Policy>>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            layout: tufa_tuf::BinLayout::default(),
            tuf: None,
            force_timestamp: false,
            concurrency: DEFAULT_CONCURRENCY,
            policy: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    pub projects_published: usize,
    pub projects_unpublished: usize,
    /// Dirty projects whose pages came out identical to the published ones: their manifest is
    /// left as it is (e.g. after `tufa rebuild-index`, or an upstream change tufa does not
    /// publish, such as a file's upstream URL).
    pub projects_unchanged: usize,
    pub metadata_extracted: usize,
    /// Project → error, for projects that could not be published (they stay dirty).
    pub failures: Vec<(ProjectName, String)>,
    /// What TUF signing did; `None` when no keys are configured or none can bootstrap.
    pub tuf: Option<tuf::TufReport>,
    /// With licence rules: every project published, with the files they left off its pages.
    pub license_judged: BTreeMap<ProjectName, Vec<tufa_policy::Blocked>>,
}

/// Publishes every dirty project, then signs what changed (when keys are configured).
pub async fn publish(
    store: &BlobStore,
    index: &Index,
    options: &PublishOptions,
) -> Result<PublishReport, PublishError> {
    let idx = index.clone();
    let dirty = tokio::task::spawn_blocking(move || idx.dirty_projects()).await??;
    // Page and METADATA blobs and manifests are written without an fsync each and made
    // durable a batch at a time (blobs first, then the manifests that name them), and the
    // index records of this publish (extracted METADATA, TUF targets) commit without an fsync
    // each: they become durable with the batch's durable `clear_dirty`, and a crash before it
    // leaves the batch's projects dirty, to be published again.
    let staged = store.with_group_commit()?;
    let deferred = index.with_deferred_durability();
    let (staged, deferred) = (&staged, &deferred);
    let mut report = PublishReport::default();
    for batch in dirty.chunks(BATCH) {
        let results: Vec<(ProjectName, Result<Outcome, PublishError>)> =
            futures::stream::iter(batch.iter().cloned())
                .map(|name| async move {
                    let r = publish_project(staged, deferred, &name, options).await;
                    (name, r)
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        let mut done = Vec::new();
        for (name, r) in results {
            match r {
                Ok(Outcome::Published { extracted, judged }) => {
                    report.projects_published += 1;
                    report.metadata_extracted += extracted;
                    if let Some(judged) = judged {
                        report.license_judged.insert(name.clone(), judged);
                    }
                    done.push(name);
                }
                Ok(Outcome::Unpublished) => {
                    report.projects_unpublished += 1;
                    done.push(name);
                }
                Ok(Outcome::Unchanged { extracted, judged }) => {
                    report.projects_unchanged += 1;
                    report.metadata_extracted += extracted;
                    if let Some(judged) = judged {
                        report.license_judged.insert(name.clone(), judged);
                    }
                    done.push(name);
                }
                Err(e) => {
                    // With its causes: "store: object store operation on `…` failed" alone
                    // hides why (e.g. "No space left on device").
                    let error = error_chain(&e);
                    tracing::error!(project = %name, %error, "publishing failed; will retry next run");
                    report.failures.push((name, error));
                }
            }
        }
        // The batch's page and METADATA blobs, then its manifests that name them: durable
        // in one group commit (on the local disk), before the dirty marks are cleared.
        staged.commit_group().await?;
        let idx = index.clone();
        tokio::task::spawn_blocking(move || idx.clear_dirty(&done)).await??;
    }
    if let Some(signing) = &options.tuf {
        report.tuf =
            tuf::publish_tuf(store, index, &options.layout, signing, options.force_timestamp).await?;
    }
    tracing::info!(
        published = report.projects_published,
        unpublished = report.projects_unpublished,
        unchanged = report.projects_unchanged,
        metadata_extracted = report.metadata_extracted,
        failures = report.failures.len(),
        "publish finished"
    );
    Ok(report)
}

/// The error and its causes on one line, skipping a cause whose text is already shown.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let msg = cause.to_string();
        if !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        source = cause.source();
    }
    text
}

enum Outcome {
    Published {
        extracted: usize,
        judged: Option<Vec<tufa_policy::Blocked>>,
    },
    /// The pages and METADATA are the published ones: the manifest was not rewritten.
    Unchanged {
        extracted: usize,
        judged: Option<Vec<tufa_policy::Blocked>>,
    },
    Unpublished,
}

async fn publish_project(
    store: &BlobStore,
    index: &Index,
    name: &ProjectName,
    options: &PublishOptions,
) -> Result<Outcome, PublishError> {
    let layout = &options.layout;
    let idx = index.clone();
    let n = name.clone();
    let (record, files) = tokio::task::spawn_blocking(move || -> Result<_, IndexError> {
        Ok((idx.project(&n)?, idx.files(&n)?))
    })
    .await??;
    let Some(record) = record else {
        tufa_tree::delete_manifest(store, name).await?;
        tuf::record_project_targets(index, layout, name, Vec::new()).await?;
        tracing::info!(project = %name, "unpublished");
        return Ok(Outcome::Unpublished);
    };

    // PEP 792: a quarantined project's files must not be offered.
    let quarantined = record.status.as_ref().is_some_and(|s| s.status == "quarantined");
    let files: Vec<FileRecord> = if quarantined { Vec::new() } else { files };

    let wheels: Vec<&FileRecord> = files.iter().filter(|f| f.kind() == DistKind::Wheel).collect();
    let WheelsMetadata {
        mut metadata,
        extracted,
        fresh,
    } = wheels_metadata(store, index, &wheels).await?;
    let (files, judged) = match options.policy.as_deref().filter(|p| p.has_license_rules()) {
        Some(policy) => {
            let (kept, blocked) = license_rules(store, policy, name, files, &mut metadata, &fresh).await?;
            (kept, Some(blocked))
        }
        None => (files, None),
    };

    let page = project_page(&record, &files, &metadata);
    let [html, json] = tufa_tree::store_pages(
        store,
        [
            render::render_html(&page).into_bytes(),
            render::render_json(&page).into_bytes(),
        ],
    )
    .await?;
    let manifest = ProjectManifest {
        version: tufa_tree::MANIFEST_VERSION,
        name: name.clone(),
        published_at: now_rfc3339(),
        html,
        json,
        metadata,
    };
    // The same pages as published (nothing tufa shows changed): keep the manifest, and with it
    // its `published_at` (the pages' Last-Modified). An unreadable old manifest is replaced.
    let unchanged = match tufa_tree::read_manifest(store, name).await {
        Ok(Some(old)) => {
            old.html == manifest.html && old.json == manifest.json && old.metadata == manifest.metadata
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(project = %name, error = %e, "replacing an unreadable manifest");
            false
        }
    };
    if !unchanged {
        // Replaces the published manifest at the batch's group commit, after the page and
        // METADATA blobs it names are durable at their addresses.
        tufa_tree::stage_manifest(store, &manifest).await?;
    }
    let targets = tuf::project_targets(Some(&manifest), &files)?;
    tuf::record_project_targets(index, layout, name, targets).await?;
    if unchanged {
        tracing::info!(project = %name, files = files.len(), "pages unchanged, manifest kept");
        return Ok(Outcome::Unchanged { extracted, judged });
    }
    tracing::info!(project = %name, files = files.len(), "published");
    Ok(Outcome::Published { extracted, judged })
}

fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// The METADATA blobs of a project's wheels (by filename), extracting and storing those not
/// extracted before; and how many were extracted now. One index read, one store check, one
/// batch of stores and one index write for the whole project.
/// The METADATA of a project's wheels: blob per wheel filename, how many were extracted now,
/// and the bytes of those (their blobs are staged, not yet readable from the store).
struct WheelsMetadata {
    metadata: BTreeMap<String, BlobRef>,
    extracted: usize,
    fresh: BTreeMap<String, Bytes>,
}

async fn wheels_metadata(
    store: &BlobStore,
    index: &Index,
    wheels: &[&FileRecord],
) -> Result<WheelsMetadata, PublishError> {
    let idx = index.clone();
    let digests: Vec<Sha256Digest> = wheels.iter().map(|f| f.sha256).collect();
    let known = tokio::task::spawn_blocking(move || idx.extracted_metadata_many(&digests)).await??;
    let recorded: Vec<Sha256Digest> = known.iter().filter_map(|k| k.flatten()).collect();
    let mut sizes = store.sizes(recorded).await?.into_iter();

    let mut metadata = BTreeMap::new();
    let mut to_extract = Vec::new();
    for (f, known) in wheels.iter().zip(known) {
        match known {
            // Known to have none.
            Some(None) => {}
            Some(Some(m)) => match sizes.next().flatten() {
                Some(len) => {
                    metadata.insert(f.filename.as_str().to_owned(), BlobRef { sha256: m, len });
                }
                // The blob was garbage-collected or lost: extract again.
                None => to_extract.push(*f),
            },
            None => to_extract.push(*f),
        }
    }
    if to_extract.is_empty() {
        return Ok(WheelsMetadata {
            metadata,
            extracted: 0,
            fresh: BTreeMap::new(),
        });
    }

    let mut found = Vec::new();
    let mut none = Vec::new();
    for (f, extracted) in to_extract.iter().zip(extract_all(store, &to_extract).await) {
        match extracted {
            Ok(Some(bytes)) => found.push((*f, Bytes::from(bytes))),
            Ok(None) => none.push(f.sha256),
            Err(e) => {
                // A wheel we cannot read still gets published, just without PEP 658 metadata.
                tracing::warn!(file = %f.filename, error = %e, "cannot extract METADATA");
                none.push(f.sha256);
            }
        }
    }
    let digests = store
        .put_many(found.iter().map(|(_, b)| b.clone()).collect())
        .await?;
    let mut rows: Vec<(Sha256Digest, Option<Sha256Digest>)> = none.into_iter().map(|d| (d, None)).collect();
    for ((f, bytes), sha256) in found.iter().zip(&digests) {
        rows.push((f.sha256, Some(*sha256)));
        metadata.insert(
            f.filename.as_str().to_owned(),
            BlobRef {
                sha256: *sha256,
                len: bytes.len() as u64,
            },
        );
    }
    let idx = index.clone();
    tokio::task::spawn_blocking(move || idx.set_extracted_metadata_many(&rows)).await??;
    // Counted as extracted only when there was a METADATA to extract (a wheel that is not a
    // readable zip was warned about above and is not a success).
    Ok(WheelsMetadata {
        metadata,
        extracted: found.len(),
        fresh: found
            .into_iter()
            .map(|(f, bytes)| (f.filename.as_str().to_owned(), bytes))
            .collect(),
    })
}

/// The METADATA of each wheel: on the local disk read in place (the zip's central directory,
/// never the whole wheel), all in one blocking call; elsewhere fetched one by one.
async fn extract_all(store: &BlobStore, wheels: &[&FileRecord]) -> Vec<Result<Option<Vec<u8>>, String>> {
    let local: Option<Vec<_>> = wheels
        .iter()
        .map(|f| {
            let path = store.local_path(&f.sha256)?;
            Some((path, f.filename.as_wheel().cloned(), f.filename.to_string()))
        })
        .collect();
    let Some(local) = local else {
        let mut out = Vec::with_capacity(wheels.len());
        for f in wheels {
            out.push(extract_from_store(store, f).await);
        }
        return out;
    };
    let count = local.len();
    tokio::task::spawn_blocking(move || {
        local
            .into_iter()
            .map(|(path, wheel, filename)| {
                let Some(wheel) = wheel else { return Ok(None) };
                let file =
                    std::fs::File::open(&path).map_err(|e| format!("cannot open the stored wheel: {e}"))?;
                metadata::extract(std::io::BufReader::new(file), &wheel, &filename).map_err(|e| e.to_string())
            })
            .collect()
    })
    .await
    .unwrap_or_else(|e| (0..count).map(|_| Err(e.to_string())).collect())
}

async fn extract_from_store(store: &BlobStore, f: &FileRecord) -> Result<Option<Vec<u8>>, String> {
    let Some(wheel) = f.filename.as_wheel().cloned() else {
        return Ok(None);
    };
    let filename = f.filename.to_string();
    let data = store.get(&f.sha256).await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        metadata::extract(std::io::Cursor::new(data), &wheel, &filename).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Judges every file by the licence rules (wheels by their METADATA, sdists as unknown) and,
/// in enforce mode, leaves out the blocked ones (and their METADATA).
async fn license_rules(
    store: &BlobStore,
    policy: &tufa_policy::Policy,
    name: &ProjectName,
    files: Vec<FileRecord>,
    metadata: &mut BTreeMap<String, BlobRef>,
    fresh: &BTreeMap<String, Bytes>,
) -> Result<(Vec<FileRecord>, Vec<tufa_policy::Blocked>), PublishError> {
    let enforce = policy.mode() == tufa_policy::Mode::Enforce;
    let mut kept = Vec::with_capacity(files.len());
    let mut blocked = Vec::new();
    for f in files {
        let text = match (fresh.get(f.filename.as_str()), metadata.get(f.filename.as_str())) {
            (Some(bytes), _) => Some(String::from_utf8_lossy(bytes).into_owned()),
            (None, Some(blob)) => {
                Some(String::from_utf8_lossy(&store.get_verified(&blob.sha256).await?).into_owned())
            }
            (None, None) => None,
        };
        if let Some(verdict @ tufa_policy::Verdict::Block { .. }) =
            policy.license(&f.filename, text.as_deref())
        {
            if let tufa_policy::Verdict::Block { rule, reason } = &verdict {
                blocked.push(tufa_policy::Blocked {
                    file: f.filename.to_string(),
                    rule: *rule,
                    reason: reason.clone(),
                });
            }
            if enforce {
                tracing::info!(project = %name, file = %f.filename, %verdict, "policy: file left off the page");
                metadata.remove(f.filename.as_str());
                continue;
            }
            tracing::info!(project = %name, file = %f.filename, %verdict, "policy (report mode): file would be left off the page");
        }
        kept.push(f);
    }
    Ok((kept, blocked))
}

/// The page model both formats are rendered from. Files are ordered by version, then name;
/// links are relative (`../../files/…`) so the tree works under any host and path prefix.
pub fn project_page(
    record: &ProjectRecord,
    files: &[FileRecord],
    metadata: &BTreeMap<String, BlobRef>,
) -> ProjectPage {
    let mut files: Vec<&FileRecord> = files.iter().collect();
    files.sort_by(|a, b| {
        (a.filename.version(), a.filename.as_str()).cmp(&(b.filename.version(), b.filename.as_str()))
    });
    let mut versions: BTreeSet<Version> = record.versions.iter().filter_map(|v| v.parse().ok()).collect();
    versions.extend(files.iter().filter_map(|f| f.filename.version().cloned()));
    ProjectPage {
        meta: render::meta(),
        name: record.name.to_string(),
        versions: Some(versions.iter().map(ToString::to_string).collect()),
        project_status: record.status.clone(),
        files: files
            .into_iter()
            .map(|f| {
                let core = metadata.get(f.filename.as_str()).map(|m| CoreMetadata::Present {
                    hashes: BTreeMap::from([("sha256".to_owned(), m.sha256.to_hex())]),
                });
                File {
                    filename: f.filename.to_string(),
                    url: format!("../../{}", tufa_tree::file_path(&f.sha256, &f.filename)),
                    hashes: BTreeMap::from([("sha256".to_owned(), f.sha256.to_hex())]),
                    requires_python: f.requires_python.clone(),
                    yanked: match &f.yanked {
                        None => Yanked::No,
                        Some(r) if r.is_empty() => Yanked::Yes { reason: None },
                        Some(r) => Yanked::Yes {
                            reason: Some(r.clone()),
                        },
                    },
                    size: Some(f.size),
                    upload_time: f.upload_time.clone(),
                    core_metadata: Some(core.clone().unwrap_or(CoreMetadata::Absent)),
                    dist_info_metadata: Some(core.unwrap_or(CoreMetadata::Absent)),
                    gpg_sig: None,
                    provenance: f.provenance.clone(),
                }
            })
            .collect(),
    }
}

/// The digest a stored page must have; used by `tufa verify`.
pub fn page_digests(m: &ProjectManifest) -> Vec<Sha256Digest> {
    let mut out = vec![m.html.raw.sha256, m.json.raw.sha256];
    out.extend(m.html.variants().chain(m.json.variants()).map(|(_, v)| v.sha256));
    out.extend(m.metadata.values().map(|b| b.sha256));
    out
}
