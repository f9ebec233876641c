//! `tufa-replica`: a verifying replica of another PEP 458 mirror (a tufa primary, or any
//! repository with tufa's layout: metadata under `/tuf/`, targets under the server root).
//!
//! A replica holds no keys and adds no trust. It copies the primary's *signed* tree:
//!
//! 1. the TUF client workflow against the primary ([`tufa_client::Updater`], starting from the
//!    primary's root the operator gave `tufa init --upstream-root`), so a rolled-back, frozen
//!    or badly signed primary is refused exactly as a client would refuse it;
//! 2. every targets role the snapshot lists (the `bins` and all `bin-n`), each verified
//!    against the snapshot and its delegator's keys (only roles whose version changed are
//!    fetched again);
//! 3. a walk of the whole repository with [`tufa_tuf::verify_repository`] over those verified
//!    bytes, which also checks that each target sits in the role delegated its path;
//! 4. every target (pages, files, PEP 658 metadata) not stored yet, fetched by its
//!    hash-prefixed name and kept only when its length and hashes match the signed target;
//! 5. only when all of that succeeded, the publish, in the order readers rely on: project
//!    manifests (each naming the page and METADATA blobs just verified, plus the pages' gzip
//!    and zstd variants, [`tufa_tree::store_pages`]), then the primary's
//!    metadata files byte for byte (roots, `targets`, `bins`, bins, snapshot), `timestamp.json`
//!    last, then the publish pointer.
//!
//! A failure anywhere publishes nothing new: readers keep serving the previous verified copy.
//! Blobs fetched before the failure stay in the store (they verified; content-addressed).
//! Since the metadata is the primary's, a client of the replica verifies against the same
//! `1.root.json` as clients of the primary, and `tufa verify` on the replica walks the same
//! chain.
//!
//! Must not know about: the upstream Simple API of PyPI, signing keys, HTTP serving.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt as _;
use tufa_client::{ClientError, Http, HttpOptions, Updater, UpdaterConfig};
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_store::{BlobStore, StoreError};
use tufa_tree::{BlobRef, Page, ProjectManifest, TreeError};
use tufa_tuf::{RoleName, Root, Signed, TargetFile, TargetPath, TufError, metadata_file_name};
use url::Url;

/// How the replica reaches its primary.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// The primary's server root: metadata under `<primary>/tuf/`, targets under it.
    pub primary: Url,
    /// The replica's TUF client state: `root.json` (the trusted root) and the verified
    /// metadata; `anchor.json` is the root `tufa init --upstream-root` was given.
    pub metadata_dir: PathBuf,
    pub http: HttpOptions,
    /// Targets downloaded at once.
    pub downloads: usize,
}

/// What one replica sync did.
#[derive(Debug, Clone, Default)]
pub struct ReplicaReport {
    pub root_version: u64,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    /// Targets the primary signs.
    pub targets: usize,
    /// Targets fetched (the rest were stored already).
    pub downloaded: usize,
    pub bytes_downloaded: u64,
    /// Projects whose manifest was written, and removed.
    pub projects_published: usize,
    pub projects_removed: usize,
    /// Metadata files written to the published tree.
    pub metadata_files_written: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The primary's metadata or a target did not verify, or could not be fetched.
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("TUF verification of the primary found {} problem(s): {}", .0.len(), .0.join("; "))]
    Repository(Vec<String>),
    /// Targets that failed; nothing new was published.
    #[error("{} target(s) failed, nothing new published: {}", .0.len(), .0.join("; "))]
    Targets(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("{0}")]
    Setup(String),
}

impl From<TufError> for ReplicaError {
    fn from(e: TufError) -> Self {
        Self::Client(e.into())
    }
}

/// The name of the anchor file in the metadata directory.
pub const ANCHOR_FILE: &str = "anchor.json";

/// Prepares the replica's client state from the primary's root (`tufa init --upstream-root`):
/// checks that it is a root signed by its own threshold, and stores it as the anchor and the
/// first trusted root.
pub fn init_metadata_dir(dir: &std::path::Path, root: &[u8]) -> Result<u64, ReplicaError> {
    let parsed = tufa_tuf::verify_trusted_root("the upstream root", root)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| ReplicaError::Setup(format!("cannot create `{}`: {e}", dir.display())))?;
    tufa_client::write_atomic(&dir.join(ANCHOR_FILE), root)?;
    tufa_client::write_atomic(&dir.join("root.json"), root)?;
    Ok(parsed.metadata.signed.version)
}

/// One replica sync: see the crate docs.
pub async fn sync(store: &BlobStore, options: &ReplicaOptions) -> Result<ReplicaReport, ReplicaError> {
    let primary = tufa_client::base_url(&options.primary);
    let metadata_url = primary
        .join("tuf/")
        .map_err(|e| ReplicaError::Setup(format!("bad primary URL `{primary}`: {e}")))?;
    let http = Http::new(&options.http)?;
    let anchor_path = options.metadata_dir.join(ANCHOR_FILE);
    let anchor = std::fs::read(&anchor_path).map_err(|e| {
        ReplicaError::Setup(format!(
            "no upstream root at `{}` ({e}): set the replica up with `tufa init DIR --upstream URL --upstream-root FILE`",
            anchor_path.display()
        ))
    })?;

    // 1-2. The client workflow, then every targets role.
    let mut updater = Updater::new(
        &options.metadata_dir,
        &metadata_url,
        http.clone(),
        UpdaterConfig::default(),
    )?;
    updater.refresh().await?;
    let roles = load_every_role(&mut updater, options.downloads.max(1)).await?;
    let trusted = updater.trusted();
    let root = trusted.root().clone();
    let timestamp = trusted
        .timestamp()
        .ok_or(TufError::Workflow("no trusted timestamp"))?
        .clone();
    let snapshot = trusted
        .snapshot()
        .ok_or(TufError::Workflow("no trusted snapshot"))?
        .clone();

    // The published file names and bytes of everything verified, versioned as the primary
    // publishes them.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (file, bytes) in root_chain(store, &http, &metadata_url, &anchor, root.version).await? {
        files.insert(file, bytes);
    }
    let stored = |role: &RoleName| -> Result<Vec<u8>, ReplicaError> {
        updater.stored_bytes(role)?.ok_or_else(|| {
            ReplicaError::Setup(format!(
                "verified `{role}` is missing from the client's metadata directory"
            ))
        })
    };
    files.insert("timestamp.json".into(), stored(&RoleName::timestamp())?);
    files.insert(
        metadata_file_name(&RoleName::snapshot(), snapshot.version, root.consistent_snapshot),
        stored(&RoleName::snapshot())?,
    );
    for role in &roles {
        let version = trusted.snapshot_meta(role)?.version;
        files.insert(
            metadata_file_name(role, version, root.consistent_snapshot),
            stored(role)?,
        );
    }

    // 3. The whole-repository walk over exactly those bytes.
    let walked = {
        let files = &files;
        let source = |name: &str| files.get(name).cloned();
        tufa_tuf::verify_repository(&anchor, &source, &tufa_tuf::VerifyOptions::new(trusted.now()))
            .map_err(|f| ReplicaError::Repository(f.problems.iter().map(ToString::to_string).collect()))?
    };
    let targets: BTreeMap<TargetPath, TargetFile> =
        walked.targets.into_iter().map(|(p, t)| (p, t.file)).collect();

    // 4. Targets not stored yet.
    let mut report = ReplicaReport {
        root_version: root.version,
        snapshot_version: snapshot.version,
        timestamp_version: timestamp.version,
        targets: targets.len(),
        ..ReplicaReport::default()
    };
    fetch_targets(
        store,
        &updater,
        &http,
        &primary,
        &targets,
        options.downloads.max(1),
        &mut report,
    )
    .await?;

    // 5. Publish: manifests, metadata (timestamp last), pointer.
    publish_manifests(store, &targets, &mut report).await?;
    for (file, bytes) in &files {
        if file == "timestamp.json" {
            continue;
        }
        let key = tufa_tree::tuf_key(file);
        // Versioned files never change content; write what is missing.
        if store.get_named(&key).await?.is_none() {
            store.put_named(&key, Bytes::from(bytes.clone())).await?;
            report.metadata_files_written += 1;
        }
    }
    let ts_bytes = files.get("timestamp.json").cloned().unwrap_or_default();
    let ts_key = tufa_tree::tuf_key("timestamp.json");
    if store.get_named(&ts_key).await?.as_deref() != Some(ts_bytes.as_slice()) {
        store.put_named(&ts_key, Bytes::from(ts_bytes)).await?;
        report.metadata_files_written += 1;
        tufa_tree::write_pointer(
            store,
            &tufa_tree::PublishPointer {
                version: 1,
                publish_id: format!("replica-{}-{}", timestamp.version, std::process::id()),
                published_at: now_rfc3339(),
                timestamp_version: Some(timestamp.version),
            },
        )
        .await?;
    }
    Ok(report)
}

fn now_rfc3339() -> String {
    tufa_tuf::format_expires(jiff::Timestamp::now())
}

/// Every delegated targets role below `targets` (listed roles and succinct bins), loaded and
/// verified by the updater level by level (a level's roles fetched `concurrency` at once).
async fn load_every_role(updater: &mut Updater, concurrency: usize) -> Result<Vec<RoleName>, ReplicaError> {
    let mut roles = vec![RoleName::targets()];
    let mut seen: BTreeSet<RoleName> = BTreeSet::from([RoleName::targets()]);
    let mut level = vec![RoleName::targets()];
    while !level.is_empty() {
        let mut next: Vec<(RoleName, RoleName)> = Vec::new();
        for parent in &level {
            let targets = updater
                .trusted()
                .targets(parent)
                .ok_or(TufError::Workflow("a delegator is not trusted"))?;
            let children: Vec<RoleName> = match &targets.delegations {
                None => Vec::new(),
                Some(d) => match (&d.roles, &d.succinct_roles) {
                    (Some(list), _) => list.iter().map(|r| r.name.clone()).collect(),
                    (None, Some(succinct)) => succinct.layout()?.all_roles().collect(),
                    (None, None) => Vec::new(),
                },
            };
            for child in children {
                if seen.insert(child.clone()) {
                    next.push((child, parent.clone()));
                }
            }
        }
        if seen.len() > (1 << 16) + 1024 {
            return Err(ReplicaError::Setup(
                "more than 66,560 delegated roles: refusing to walk on".into(),
            ));
        }
        updater.load_roles(&next, concurrency).await?;
        level = next.into_iter().map(|(role, _)| role).collect();
        roles.extend(level.iter().cloned());
    }
    Ok(roles)
}

/// Every root version from the anchor up to `current`, each verified against the one before
/// (the store's copy when it has one, else the primary's), as `(file name, bytes)`.
async fn root_chain(
    store: &BlobStore,
    http: &Http,
    metadata_url: &Url,
    anchor: &[u8],
    current: u64,
) -> Result<Vec<(String, Vec<u8>)>, ReplicaError> {
    let first = tufa_tuf::verify_trusted_root("the upstream root", anchor)?
        .metadata
        .signed;
    let mut chain = vec![(format!("{}.root.json", first.version), anchor.to_vec())];
    let mut previous: Root = first;
    for version in previous.version + 1..=current {
        let file = format!("{version}.root.json");
        let bytes = match store.get_named(&tufa_tree::tuf_key(&file)).await? {
            Some(b) => b.to_vec(),
            None => {
                let url = metadata_url
                    .join(&file)
                    .map_err(|e| ReplicaError::Setup(format!("bad metadata URL: {e}")))?;
                http.get_bounded(&url, &file, UpdaterConfig::default().root_max_length)
                    .await?
                    .to_vec()
            }
        };
        previous = tufa_tuf::verify_next_root(&previous, &file, &bytes)?
            .metadata
            .signed;
        chain.push((file, bytes));
    }
    // The file itself must be a root, as in every published tree.
    for (file, bytes) in &chain {
        Signed::<Root>::from_file(file, bytes)?;
    }
    Ok(chain)
}

async fn fetch_targets(
    store: &BlobStore,
    updater: &Updater,
    http: &Http,
    primary: &Url,
    targets: &BTreeMap<TargetPath, TargetFile>,
    downloads: usize,
    report: &mut ReplicaReport,
) -> Result<(), ReplicaError> {
    // Distinct blobs: one file can be several targets (a page unchanged across versions).
    let mut wanted: HashMap<Sha256Digest, (&TargetPath, &TargetFile)> = HashMap::new();
    for (path, file) in targets {
        let Some(digest) = file.sha256() else {
            return Err(ReplicaError::Targets(vec![format!(
                "target `{path}` lists no sha256"
            )]));
        };
        wanted.entry(digest).or_insert((path, file));
    }
    let digests: Vec<Sha256Digest> = wanted.keys().copied().collect();
    let sizes = store.sizes(digests.clone()).await?;
    let missing: Vec<(Sha256Digest, &TargetPath, &TargetFile)> = digests
        .into_iter()
        .zip(sizes)
        .filter(|(d, size)| *size != Some(wanted[d].1.length))
        .map(|(d, _)| (d, wanted[&d].0, wanted[&d].1))
        .collect();
    tracing::info!(
        targets = targets.len(),
        missing = missing.len(),
        "fetching targets from the primary"
    );
    let results: Vec<Result<u64, String>> = futures::stream::iter(missing)
        .map(|(digest, path, file)| async move {
            let url = updater
                .target_url(primary, path.as_str(), file)
                .map_err(|e| format!("{path}: {e}"))?;
            // Streamed into the store, which reads at most the signed length and makes the
            // blob visible only once its sha256 and length match the signed target.
            let stream = http
                .get_stream(&url)
                .await
                .map_err(|e| format!("`{path}`: {e}"))?;
            store
                .put_stream(&digest, Some(file.length), file.length, stream)
                .await
                .map_err(|e| format!("`{path}` ({}): {e}", refusal_class(&e)))?;
            Ok(file.length)
        })
        .buffer_unordered(downloads)
        .collect()
        .await;
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(len) => {
                report.downloaded += 1;
                report.bytes_downloaded += len;
            }
            Err(e) => {
                tracing::error!(error = %e, "target refused");
                failures.push(e);
            }
        }
    }
    if !failures.is_empty() {
        failures.sort();
        return Err(ReplicaError::Targets(failures));
    }
    Ok(())
}

/// The attack class a store refusal stands for, named like [`tufa_tuf::AttackClass`].
fn refusal_class(e: &StoreError) -> &'static str {
    match e {
        StoreError::Mismatch { .. } | StoreError::LengthMismatch { .. } | StoreError::TooLarge { .. } => {
            tufa_tuf::AttackClass::HashMismatch.as_str()
        }
        _ => "not stored",
    }
}

fn blob_ref(file: &TargetFile) -> Option<BlobRef> {
    Some(BlobRef {
        sha256: file.sha256()?,
        len: file.length,
    })
}

/// A project's manifest from its signed pages: the pages' blobs and, for each file its JSON
/// page links, the `<file>.metadata` target when the primary signs one.
fn manifest_for(
    project: &ProjectName,
    json_bytes: &[u8],
    targets: &BTreeMap<TargetPath, TargetFile>,
) -> Option<ProjectManifest> {
    let page = |name: &str| {
        TargetPath::new(&format!("simple/{project}/{name}"))
            .ok()
            .and_then(|p| targets.get(&p))
            .and_then(blob_ref)
    };
    let (html, json) = (page("index.html")?, page("index.json")?);
    let mut metadata = BTreeMap::new();
    let base = Url::parse(&format!("http://replica.invalid/simple/{project}/")).ok()?;
    let parsed: serde_json::Value = serde_json::from_slice(json_bytes).ok()?;
    for file in parsed["files"].as_array().into_iter().flatten() {
        let (Some(filename), Some(url)) = (file["filename"].as_str(), file["url"].as_str()) else {
            continue;
        };
        let Ok(resolved) = base.join(url) else { continue };
        let path = resolved.path().trim_start_matches('/');
        let Ok(decoded) = percent_decode(path) else {
            continue;
        };
        if let Some(meta) = TargetPath::new(&format!("{decoded}.metadata"))
            .ok()
            .and_then(|p| targets.get(&p))
            .and_then(blob_ref)
        {
            metadata.insert(filename.to_owned(), meta);
        }
    }
    Some(ProjectManifest {
        version: tufa_tree::MANIFEST_VERSION,
        name: project.clone(),
        published_at: now_rfc3339(),
        html: Page {
            raw: html,
            gzip: None,
            zstd: None,
        },
        json: Page {
            raw: json,
            gzip: None,
            zstd: None,
        },
        metadata,
    })
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|e| e.utf8_error())
}

/// Writes the manifest of every project the primary signs pages for (when it changed) and
/// removes those of projects it no longer signs.
async fn publish_manifests(
    store: &BlobStore,
    targets: &BTreeMap<TargetPath, TargetFile>,
    report: &mut ReplicaReport,
) -> Result<(), ReplicaError> {
    let mut projects: BTreeSet<ProjectName> = BTreeSet::new();
    for path in targets.keys() {
        if let Some(rest) = path.as_str().strip_prefix("simple/")
            && let Some(name) = rest.strip_suffix("/index.json")
            && let Ok(project) = ProjectName::new(name)
            && project.as_str() == name
        {
            projects.insert(project);
        }
    }
    for project in &projects {
        let Some(json) = TargetPath::new(&format!("simple/{project}/index.json"))
            .ok()
            .and_then(|p| targets.get(&p))
            .and_then(TargetFile::sha256)
        else {
            continue;
        };
        let json_bytes = store.get_verified(&json).await?;
        let Some(mut manifest) = manifest_for(project, &json_bytes, targets) else {
            tracing::warn!(project = %project, "the primary signs a JSON page but no HTML page: not published");
            continue;
        };
        let same = match tufa_tree::read_manifest(store, project).await? {
            Some(old) => {
                old.html.raw == manifest.html.raw
                    && old.json.raw == manifest.json.raw
                    && old.metadata == manifest.metadata
            }
            None => false,
        };
        if !same {
            // The signed pages' gzip and zstd variants, as the primary serves them (only the
            // raw bytes are signed; a variant is the same bytes compressed).
            let html = store.get_verified(&manifest.html.raw.sha256).await?.to_vec();
            let [html_page, json_page] = tufa_tree::store_pages(store, [html, json_bytes.to_vec()]).await?;
            if html_page.raw != manifest.html.raw || json_page.raw != manifest.json.raw {
                return Err(ReplicaError::Setup(format!(
                    "{project}: stored page bytes changed while publishing"
                )));
            }
            manifest.html = html_page;
            manifest.json = json_page;
            tufa_tree::write_manifest(store, &manifest).await?;
            report.projects_published += 1;
        }
    }
    let existing: Vec<ProjectName> = tufa_tree::published_projects(store)
        .filter_map(|r| async move { r.ok() })
        .collect()
        .await;
    for project in existing {
        if !projects.contains(&project) {
            tufa_tree::delete_manifest(store, &project).await?;
            report.projects_removed += 1;
        }
    }
    Ok(())
}
