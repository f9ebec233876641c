//! The inverse of publishing: reading the published tree back into a new index, for a writer
//! host that lost its own (`tufa rebuild-index`).
//!
//! Everything the next sync and publish need is in the object store:
//! - each project's manifest names its pages; the JSON page (re-hashed against its address)
//!   lists every file with its sha256, size, yank state, `requires-python`, upload time and
//!   provenance, so the project's files are restored as the sync recorded them. What a page
//!   does not carry stays unknown: the project's upstream serial and each file's upstream URL
//!   (the next sync fills them in; the pages it then renders are the published ones byte for
//!   byte, so nothing is published again);
//! - the manifest's METADATA blobs restore the extracted-metadata cache, so no wheel is read
//!   again;
//! - the TUF targets of each project are recomputed from the manifest and the files exactly as
//!   publishing computes them ([`crate::tuf::project_targets`]);
//! - the TUF metadata files give every role's newest version (the highest `N` of `N.<role>.json`
//!   present, and `timestamp.json`'s version) and its expiry. The next publish signs each role
//!   it touches with a higher version, so no version is reused and no client sees a rollback.
//!   A bin whose newest file does not sign exactly the targets recomputed from the manifests,
//!   or that the current snapshot lists at another version, is marked to be re-signed.
//!
//! Every blob the restored index references is checked to exist with the right length (one
//! metadata request each, never a full listing, so memory stays flat however large the
//! store). A manifest or page that does not verify is named and its project skipped (the next
//! sync fetches it again); a missing blob is named and its project kept.
//!
//! Signatures are not checked here: the TUF files only contribute version numbers and
//! expiries, and the targets come from content-addressed pages. `tufa verify` walks the chain.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use tufa_index::{FileRecord, Index, ProjectRecord, RestoredProject};
use tufa_pypi::simple::{self, Yanked};
use tufa_pypi::{DistFilename, DistKind, ProjectName, Sha256Digest, render};
use tufa_store::{BlobStore, StoreError};
use tufa_tree::{BlobRef, ProjectManifest};
use tufa_tuf::{BinLayout, RoleName, Signed, TargetFile};

use crate::PublishError;
use crate::tuf::{ROLE_BINS, ROLE_ROOT, ROLE_SNAPSHOT, ROLE_TARGETS, ROLE_TIMESTAMP};

/// Projects written to the index per transaction.
const BATCH: usize = 256;
/// Blob existence checks at once within one project.
const BLOB_CHECKS: usize = 16;
/// TUF bin files read at once.
const BIN_READS: usize = 32;

/// How to rebuild.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The hashed-bin layout (`[tuf] bins_bit_length`); must be the published one.
    pub layout: BinLayout,
    /// Projects read at once.
    pub concurrency: usize,
}

/// Progress notifications.
#[derive(Debug, Clone)]
pub enum RebuildEvent {
    /// The work is listed: projects to read plus TUF bins to check.
    Planned { total: u64 },
    /// One project or one bin is done.
    Done,
}

/// What a rebuild restored.
#[derive(Debug, Clone, Default)]
pub struct RebuildReport {
    pub projects: usize,
    pub files: usize,
    /// Wheels whose extracted METADATA is published.
    pub metadata_files: usize,
    pub targets: usize,
    /// Every TUF role found in the published tree → (newest version, expiry as Unix seconds).
    pub roles: BTreeMap<String, (u64, i64)>,
    /// Bins the next publish re-signs (their newest file does not sign the targets the
    /// manifests give, or the current snapshot lists another version).
    pub bins_to_sign: usize,
    /// Projects marked to be published again because a page variant or METADATA blob is
    /// missing (the next publish stores it again).
    pub projects_to_publish: usize,
    /// Projects whose published pages this tufa would render to other bytes from the restored
    /// records (a page rendered by another tufa version); harmless, they are republished with
    /// the next change upstream.
    pub rendered_differently: usize,
    /// What did not check out, each naming the object; the rest was restored.
    pub problems: Vec<String>,
}

/// Reads the published tree in `store` into `index` (a new, empty index): every project's
/// manifest and pages, then the TUF metadata. Returns an error only when the tree cannot be
/// read at all or does not match `options.layout`; anything wrong with one object is a
/// [`RebuildReport::problems`] entry.
pub async fn rebuild(
    store: &BlobStore,
    index: &Index,
    options: &RebuildOptions,
    progress: &(dyn Fn(RebuildEvent) + Send + Sync),
) -> Result<RebuildReport, PublishError> {
    let mut report = RebuildReport::default();
    let tuf = read_tuf_listing(store, &options.layout, &mut report).await?;

    let mut names: Vec<String> = Vec::new();
    let mut listing = store.list_named(tufa_tree::MANIFEST_DIR);
    while let Some(name) = listing.next().await {
        names.push(name?);
    }
    names.sort_unstable();
    let bins = if tuf.is_some() {
        u64::from(options.layout.bin_count())
    } else {
        0
    };
    progress(RebuildEvent::Planned {
        total: names.len() as u64 + bins,
    });
    tracing::info!(manifests = names.len(), "restoring projects");

    let layout = &options.layout;
    let mut batches = futures::stream::iter(names)
        .map(|listed| async move {
            let read = read_project(store, layout, &listed).await;
            progress(RebuildEvent::Done);
            read
        })
        .buffer_unordered(options.concurrency.max(1))
        .chunks(BATCH);
    while let Some(batch) = batches.next().await {
        let mut restored = Vec::with_capacity(batch.len());
        for read in batch {
            report.problems.extend(read.problems);
            let Some(project) = read.project else { continue };
            report.projects += 1;
            report.files += project.files.len();
            report.metadata_files += project.metadata.iter().filter(|(_, m)| m.is_some()).count();
            report.targets += project.targets.len();
            report.projects_to_publish += usize::from(project.dirty);
            report.rendered_differently += usize::from(read.rendered_differently);
            restored.push(project);
        }
        let idx = index.clone();
        tokio::task::spawn_blocking(move || idx.restore_projects(&restored)).await??;
    }

    let mut dirty_bins = Vec::new();
    if let Some(tuf) = tuf {
        dirty_bins = restore_bins(store, index, layout, &tuf, &mut report, progress).await?;
    }
    report.bins_to_sign = dirty_bins.len();
    let rows: Vec<(String, u64, i64)> = report
        .roles
        .iter()
        .map(|(role, (version, expires))| (role.clone(), *version, *expires))
        .collect();
    let idx = index.clone();
    tokio::task::spawn_blocking(move || idx.finish_restore(&rows, &dirty_bins)).await??;
    report.problems.sort();
    tracing::info!(
        projects = report.projects,
        files = report.files,
        targets = report.targets,
        roles = report.roles.len(),
        bins_to_sign = report.bins_to_sign,
        problems = report.problems.len(),
        "index rebuilt"
    );
    Ok(report)
}

/// One project read back, or why not.
struct ProjectRead {
    project: Option<RestoredProject>,
    rendered_differently: bool,
    problems: Vec<String>,
}

impl ProjectRead {
    fn skipped(problem: String) -> Self {
        tracing::error!(%problem, "project skipped");
        Self {
            project: None,
            rendered_differently: false,
            problems: vec![problem],
        }
    }
}

/// The text of an error and its causes.
fn chain(e: &dyn std::error::Error) -> String {
    crate::error_chain(e)
}

/// Reads a page blob and checks it against its address and length.
async fn verified_page(store: &BlobStore, page: &BlobRef) -> Result<bytes::Bytes, String> {
    let bytes = store.get_verified(&page.sha256).await.map_err(|e| match e {
        StoreError::NotFound(_) => format!("blob {} is missing", page.sha256),
        StoreError::Corrupt { digest, actual } => {
            format!("blob {digest} is corrupt (its content hashes to {actual})")
        }
        e => chain(&e),
    })?;
    if bytes.len() as u64 != page.len {
        return Err(format!(
            "blob {} has {} bytes, the manifest says {}",
            page.sha256,
            bytes.len(),
            page.len
        ));
    }
    Ok(bytes)
}

/// The manifest `published/projects/<listed>`, its pages verified, turned back into index
/// records.
async fn read_project(store: &BlobStore, layout: &BinLayout, listed: &str) -> ProjectRead {
    let object = format!("{}/{listed}", tufa_tree::MANIFEST_DIR);
    let name = match listed.strip_suffix(".json").map(ProjectName::new) {
        Some(Ok(name)) if Some(name.as_str()) == listed.strip_suffix(".json") => name,
        _ => {
            return ProjectRead::skipped(format!(
                "manifest `{object}`: not a normalised project name; skipped"
            ));
        }
    };
    let manifest = match tufa_tree::read_manifest(store, &name).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return ProjectRead::skipped(format!("manifest `{object}` disappeared while reading; skipped"));
        }
        Err(e) => return ProjectRead::skipped(format!("manifest `{object}`: {}; skipped", chain(&e))),
    };
    if manifest.name != name {
        return ProjectRead::skipped(format!(
            "manifest `{object}` names project `{}`; skipped",
            manifest.name
        ));
    }
    let json = match verified_page(store, &manifest.json.raw).await {
        Ok(bytes) => bytes,
        Err(e) => return ProjectRead::skipped(format!("{name}: JSON page: {e}; skipped")),
    };
    if let Err(e) = verified_page(store, &manifest.html.raw).await {
        return ProjectRead::skipped(format!("{name}: HTML page: {e}; skipped"));
    }
    let (record, files) = match records_from_page(&name, &json) {
        Ok(parsed) => parsed,
        Err(e) => {
            return ProjectRead::skipped(format!(
                "{name}: JSON page {}: {e}; skipped",
                manifest.json.raw.sha256
            ));
        }
    };
    let targets = match project_target_rows(layout, &manifest, &files) {
        Ok(t) => t,
        Err(e) => return ProjectRead::skipped(format!("{name}: {}; skipped", chain(&e))),
    };

    let (problems, dirty) = check_blobs(store, &name, &manifest, &files).await;
    let page = crate::project_page(&record, &files, &manifest.metadata);
    let rendered_differently = Sha256Digest::of(render::render_json(&page).as_bytes())
        != manifest.json.raw.sha256
        || Sha256Digest::of(render::render_html(&page).as_bytes()) != manifest.html.raw.sha256;
    if rendered_differently {
        tracing::info!(project = %name, "this tufa renders the restored project to other page bytes than published");
    }
    let metadata = files
        .iter()
        .filter(|f| f.kind() == DistKind::Wheel)
        .map(|f| {
            (
                f.sha256,
                manifest.metadata.get(f.filename.as_str()).map(|m| m.sha256),
            )
        })
        .collect();
    ProjectRead {
        project: Some(RestoredProject {
            record,
            files,
            metadata,
            targets,
            dirty,
        }),
        rendered_differently,
        problems,
    }
}

/// The project record and files a published JSON page describes.
fn records_from_page(name: &ProjectName, json: &[u8]) -> Result<(ProjectRecord, Vec<FileRecord>), String> {
    let page =
        simple::parse_project_page_json(json, usize::MAX).map_err(|e| format!("not a project page: {e}"))?;
    page.meta.check_api_version().map_err(|e| e.to_string())?;
    match ProjectName::new(&page.name) {
        Ok(n) if &n == name => {}
        _ => return Err(format!("names project `{}`", page.name.escape_debug())),
    }
    let mut files = Vec::with_capacity(page.files.len());
    for f in &page.files {
        let shown: String = f.filename.escape_debug().collect();
        let filename = DistFilename::parse(&f.filename).map_err(|e| format!("file `{shown}`: {e}"))?;
        if filename.project().is_some_and(|owner| owner != name) {
            return Err(format!("file `{shown}` belongs to another project"));
        }
        let sha256: Sha256Digest = f
            .sha256()
            .ok_or_else(|| format!("file `{shown}` has no sha256"))?
            .parse()
            .map_err(|e| format!("file `{shown}`: {e}"))?;
        let size = f.size.ok_or_else(|| format!("file `{shown}` has no size"))?;
        files.push(FileRecord {
            filename,
            sha256,
            size,
            requires_python: f.requires_python.clone(),
            yanked: match &f.yanked {
                Yanked::No => None,
                Yanked::Yes { reason } => Some(reason.clone().unwrap_or_default()),
            },
            upload_time: f.upload_time.clone(),
            // Upstream's own METADATA hash and URL are not published; the next sync of the
            // project records them again.
            core_metadata_sha256: None,
            upstream_url: String::new(),
            provenance: f.provenance.clone(),
        });
    }
    files.sort_by(|a, b| a.filename.as_str().cmp(b.filename.as_str()));
    let record = ProjectRecord {
        name: name.clone(),
        // Not published: unknown until the next sync (see the module doc).
        last_serial: None,
        versions: page.versions.unwrap_or_default(),
        status: page.project_status,
    };
    Ok((record, files))
}

/// The project's TUF targets as publishing records them.
fn project_target_rows(
    layout: &BinLayout,
    manifest: &ProjectManifest,
    files: &[FileRecord],
) -> Result<Vec<(u32, String, Vec<u8>)>, PublishError> {
    crate::tuf::target_rows(layout, crate::tuf::project_targets(Some(manifest), files)?)
}

/// Checks that every other blob the project references is stored with its length. Returns the
/// problems and whether the project must be published again (a page variant or METADATA blob,
/// which publishing stores again, is missing).
async fn check_blobs(
    store: &BlobStore,
    name: &ProjectName,
    manifest: &ProjectManifest,
    files: &[FileRecord],
) -> (Vec<String>, bool) {
    #[derive(Clone, Copy)]
    enum Kind {
        File,
        Published,
    }
    let mut wanted: Vec<(String, Sha256Digest, u64, Kind)> = Vec::new();
    for (what, page) in [("HTML page", &manifest.html), ("JSON page", &manifest.json)] {
        for (coding, variant) in page.variants() {
            wanted.push((
                format!("{what} ({coding})"),
                variant.sha256,
                variant.len,
                Kind::Published,
            ));
        }
    }
    for (filename, m) in &manifest.metadata {
        wanted.push((
            format!("METADATA of `{filename}`"),
            m.sha256,
            m.len,
            Kind::Published,
        ));
    }
    for f in files {
        wanted.push((format!("file `{}`", f.filename), f.sha256, f.size, Kind::File));
    }
    let results: Vec<_> = futures::stream::iter(wanted)
        .map(|(what, digest, len, kind)| async move {
            let found = store.size(&digest).await;
            (what, digest, len, kind, found)
        })
        .buffer_unordered(BLOB_CHECKS)
        .collect()
        .await;
    let mut problems = Vec::new();
    let mut dirty = false;
    for (what, digest, len, kind, found) in results {
        let problem = match (found, kind) {
            (Ok(Some(n)), _) if n == len => continue,
            (Ok(Some(n)), _) => {
                format!(
                    "{name}: {what}: blob {digest} has {n} bytes, {len} expected (`tufa verify` re-hashes it)"
                )
            }
            (Ok(None), Kind::File) => {
                format!("{name}: {what}: blob {digest} is missing (the next sync downloads it again)")
            }
            (Ok(None), Kind::Published) => {
                dirty = true;
                format!("{name}: {what}: blob {digest} is missing (the next publish stores it again)")
            }
            (Err(e), _) => format!("{name}: {what}: blob {digest} cannot be checked: {}", chain(&e)),
        };
        tracing::error!(%problem, "blob check failed");
        problems.push(problem);
    }
    (problems, dirty)
}

/// The TUF metadata files present: each role's newest version.
struct TufListing {
    /// Role → highest `N` of the `N.<role>.json` files present.
    newest: BTreeMap<String, u64>,
    /// The versions the current snapshot (the one `timestamp.json` names) lists, by role;
    /// `None` when it cannot be read.
    current_snapshot: Option<BTreeMap<String, u64>>,
}

fn role_of(layout: &BinLayout, role: &str) -> bool {
    [ROLE_ROOT, ROLE_TARGETS, ROLE_BINS, ROLE_SNAPSHOT].contains(&role)
        || RoleName::new(role).is_ok_and(|r| layout.bin_index(&r).is_some())
}

async fn read_named(store: &BlobStore, file: &str) -> Result<Option<bytes::Bytes>, String> {
    store
        .get_named(&tufa_tree::tuf_key(file))
        .await
        .map_err(|e| chain(&e))
}

/// Parses the published `file` (its signed version checked against its name); the problem
/// when it is missing or does not parse.
async fn parse_published<T: tufa_tuf::Role>(store: &BlobStore, file: &str) -> Result<T, String> {
    let bytes = read_named(store, file)
        .await?
        .ok_or_else(|| format!("`{file}` disappeared while reading"))?;
    Signed::<T>::from_file(file, &bytes)
        .map(|p| p.metadata.signed)
        .map_err(|e| e.to_string())
}

/// Lists the TUF metadata, records the top-level roles' newest versions and expiries in
/// `report.roles`, and checks the published bin layout against `layout`. `None` when no TUF
/// metadata is published.
async fn read_tuf_listing(
    store: &BlobStore,
    layout: &BinLayout,
    report: &mut RebuildReport,
) -> Result<Option<TufListing>, PublishError> {
    let mut newest: BTreeMap<String, u64> = BTreeMap::new();
    let mut has_timestamp = false;
    let mut listing = store.list_named(tufa_tree::TUF_DIR);
    while let Some(file) = listing.next().await {
        let file = file?;
        if file == "timestamp.json" {
            has_timestamp = true;
            continue;
        }
        let parsed = tufa_tuf::file_name_version(&file).and_then(|v| {
            let role = file.split_once('.')?.1.strip_suffix(".json")?;
            role_of(layout, role).then(|| (role.to_owned(), v))
        });
        match parsed {
            Some((role, v)) => {
                let n = newest.entry(role).or_default();
                *n = (*n).max(v);
            }
            None => {
                tracing::warn!(file = %file.escape_debug(), "ignoring an unknown file in the published TUF metadata")
            }
        }
    }
    if !newest.contains_key(ROLE_ROOT) {
        if has_timestamp || !newest.is_empty() {
            report.problems.push(format!(
                "`{}` holds TUF metadata but no root: nothing of it is restored",
                tufa_tree::TUF_DIR
            ));
        }
        return Ok(None);
    }

    // The offline roles and the snapshot: newest version and its expiry. A file that does not
    // parse still counts with its version (never reuse it) and no expiry (re-sign soon).
    for role in [ROLE_ROOT, ROLE_TARGETS, ROLE_BINS, ROLE_SNAPSHOT] {
        let Some(version) = newest.get(role).copied() else {
            continue;
        };
        let file = format!("{version}.{role}.json");
        let expires = match role {
            ROLE_ROOT => parse_published::<tufa_tuf::Root>(store, &file)
                .await
                .map(|r| r.expires),
            ROLE_SNAPSHOT => parse_published::<tufa_tuf::Snapshot>(store, &file)
                .await
                .map(|s| s.expires),
            _ => {
                let targets = parse_published::<tufa_tuf::Targets>(store, &file).await;
                if role == ROLE_BINS
                    && let Ok(bins) = &targets
                {
                    check_layout(bins, layout, &file)?;
                }
                targets.map(|t| t.expires)
            }
        };
        let expires = match expires {
            Ok(t) => t.as_second(),
            Err(problem) => {
                report.problems.push(format!("TUF: {problem}"));
                0
            }
        };
        report.roles.insert(role.to_owned(), (version, expires));
    }

    let mut current_snapshot = None;
    if has_timestamp {
        match parse_published::<tufa_tuf::Timestamp>(store, "timestamp.json").await {
            Ok(ts) => {
                report
                    .roles
                    .insert(ROLE_TIMESTAMP.to_owned(), (ts.version, ts.expires.as_second()));
                match ts.snapshot_meta() {
                    Ok(meta) => {
                        let file = format!("{}.snapshot.json", meta.version);
                        match parse_published::<tufa_tuf::Snapshot>(store, &file).await {
                            Ok(s) => {
                                current_snapshot = Some(
                                    s.meta
                                        .iter()
                                        .filter_map(|(f, m)| {
                                            Some((f.strip_suffix(".json")?.to_owned(), m.version))
                                        })
                                        .collect(),
                                );
                            }
                            Err(problem) => report.problems.push(format!(
                                "TUF: the current snapshot: {problem} (every bin is re-signed)"
                            )),
                        }
                    }
                    Err(e) => report
                        .problems
                        .push(format!("TUF: timestamp.json: {e} (every bin is re-signed)")),
                }
            }
            // Its version is unknown, so the next timestamp could reuse one: refuse rather
            // than guess.
            Err(problem) => {
                return Err(PublishError::Tuf(format!(
                    "the published timestamp.json cannot be read ({problem}): its version is unknown, so the next timestamp could reuse it; restore timestamp.json from a backup or the bucket's object versions"
                )));
            }
        }
    }
    Ok(Some(TufListing {
        newest,
        current_snapshot,
    }))
}

/// The published bins role must delegate to `layout`'s bins.
fn check_layout(bins: &tufa_tuf::Targets, layout: &BinLayout, file: &str) -> Result<(), PublishError> {
    let published = bins
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.as_ref())
        .and_then(|s| s.layout().ok());
    match published {
        Some(p) if &p == layout => Ok(()),
        Some(p) => Err(PublishError::Tuf(format!(
            "the published `{file}` delegates to {} hashed bins named `{}-…` (bins_bit_length = {}), but the config says bins_bit_length = {} ({} bins): set `[tuf] bins_bit_length = {}`",
            p.bin_count(),
            p.name_prefix(),
            p.bit_length(),
            layout.bit_length(),
            layout.bin_count(),
            p.bit_length()
        ))),
        None => Err(PublishError::Tuf(format!(
            "the published `{file}` delegates to no hashed bins tufa can read"
        ))),
    }
}

/// Restores every bin-n role: its newest version and expiry into `report.roles`, and returns
/// the bins the next publish must re-sign.
async fn restore_bins(
    store: &BlobStore,
    index: &Index,
    layout: &BinLayout,
    tuf: &TufListing,
    report: &mut RebuildReport,
    progress: &(dyn Fn(RebuildEvent) + Send + Sync),
) -> Result<Vec<u32>, PublishError> {
    struct BinState {
        n: u32,
        role: String,
        /// (version, expiry) of the newest file, when there is one.
        row: Option<(u64, i64)>,
        dirty: bool,
        problem: Option<String>,
    }
    let results: Vec<Result<BinState, PublishError>> = futures::stream::iter(0..layout.bin_count())
        .map(|n| async move {
            let role = layout.role_name(n).to_string();
            let newest = tuf.newest.get(&role).copied();
            let idx = index.clone();
            let restored = tokio::task::spawn_blocking(move || idx.bin_targets(n)).await??;
            let mut state = BinState {
                n,
                role,
                row: None,
                dirty: false,
                problem: None,
            };
            let listed = tuf.current_snapshot.as_ref().and_then(|s| s.get(&state.role));
            let Some(version) = newest else {
                // Never signed: the next publish signs it (a bin without targets included).
                state.dirty = true;
                progress(RebuildEvent::Done);
                return Ok(state);
            };
            let file = format!("{version}.{}.json", state.role);
            match parse_published::<tufa_tuf::Targets>(store, &file).await {
                Ok(bin) => {
                    state.row = Some((version, bin.expires.as_second()));
                    let mut expected: BTreeMap<String, TargetFile> = BTreeMap::new();
                    for (path, json) in restored {
                        let file: TargetFile =
                            serde_json::from_slice(&json).map_err(|e| PublishError::Tuf(e.to_string()))?;
                        expected.insert(path, file);
                    }
                    let signed: BTreeMap<String, TargetFile> =
                        bin.targets.into_iter().map(|(p, f)| (p.to_string(), f)).collect();
                    state.dirty = signed != expected || listed != Some(&version);
                }
                Err(problem) => {
                    state.row = Some((version, 0));
                    state.dirty = true;
                    state.problem = Some(format!("TUF: {problem} (the bin is re-signed)"));
                }
            }
            progress(RebuildEvent::Done);
            Ok(state)
        })
        .buffer_unordered(BIN_READS)
        .collect()
        .await;
    let mut dirty = Vec::new();
    for state in results {
        let state = state?;
        if let Some(row) = state.row {
            report.roles.insert(state.role, row);
        }
        report.problems.extend(state.problem);
        if state.dirty {
            dirty.push(state.n);
        }
    }
    dirty.sort_unstable();
    Ok(dirty)
}
