//! Syncing one project: fetch and check its page, download what is missing, record it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use futures::StreamExt as _;
use tufa_index::{FileRecord, ProjectRecord};
use tufa_pypi::simple::{self, ProjectPage};
use tufa_pypi::{DistFilename, ProjectName, Sha256Digest};
use tufa_store::{PutOutcome, StoreError};
use url::Url;

use crate::client::{ACCEPT_SIMPLE, FetchError, Transient};
use crate::hosts::redact;
use crate::rate::{BodyError, MinRate};
use crate::{Ctx, SyncEvent, SyncFailure};

pub(crate) enum PageFormat {
    Json,
    Html,
}

/// The page format of a response, from its `Content-Type`.
pub(crate) fn page_format(content_type: &str) -> Option<PageFormat> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/vnd.pypi.simple.v1+json" => Some(PageFormat::Json),
        "application/vnd.pypi.simple.v1+html" | "text/html" => Some(PageFormat::Html),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub(crate) struct ProjectOutcome {
    pub changed: bool,
    pub removed: bool,
    pub files_removed: u64,
    pub failures: Vec<SyncFailure>,
    /// When a policy is set and the project was judged: what it kept out (maybe nothing).
    pub judged: Option<(ProjectName, Vec<tufa_policy::Blocked>)>,
}

impl ProjectOutcome {
    fn failed(project: &ProjectName, error: impl std::fmt::Display) -> Self {
        tracing::error!(project = %project, error = %error, "project rejected");
        Self {
            failures: vec![SyncFailure {
                project: project.to_string(),
                file: None,
                error: error.to_string(),
            }],
            ..Self::default()
        }
    }
}

/// A file entry that passed validation, ready to be downloaded.
struct Candidate {
    record: FileRecord,
    url: Url,
}

pub(crate) async fn sync_project(
    ctx: &Ctx,
    name: &ProjectName,
    pending_serial: Option<u64>,
    full_mode: bool,
) -> Synced {
    // A project the policy keeps out as a whole is not asked of upstream at all, and whatever
    // an earlier sync took of it leaves the index (an internal name upstream also serves).
    if let Some(verdict) = ctx.policy.project(name)
        && ctx.policy.mode() == tufa_policy::Mode::Enforce
    {
        tracing::info!(project = %name, %verdict, "policy: project not taken from upstream");
        let blocked = match verdict {
            tufa_policy::Verdict::Block { rule, reason } => vec![tufa_policy::Blocked {
                file: "(every file)".to_owned(),
                rule,
                reason,
            }],
            tufa_policy::Verdict::Admit { .. } => Vec::new(),
        };
        return commit_blocked_project(ctx, name, pending_serial, blocked).await;
    }
    let page_url = match ctx.base.join(&format!("{name}/")) {
        Ok(u) => u,
        Err(e) => return ProjectOutcome::failed(name, format!("cannot build page URL: {e}")).into(),
    };
    let doc = match ctx.upstream.get_document(&page_url, ACCEPT_SIMPLE).await {
        Ok(doc) => doc,
        Err(e) => return ProjectOutcome::failed(name, e).into(),
    };
    if doc.status == reqwest::StatusCode::NOT_FOUND {
        return gone_upstream(ctx, name, pending_serial, full_mode).await.into();
    }
    let max_files = ctx.upstream.limits().max_files_per_project;
    let page = match parse_page(name, &doc.content_type, &doc.body, max_files) {
        Ok(page) => page,
        Err(e) => return ProjectOutcome::failed(name, e).into(),
    };

    let mut outcome = ProjectOutcome::default();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut seen: BTreeMap<String, Sha256Digest> = BTreeMap::new();
    let mut ambiguous = BTreeSet::new();
    for file in &page.files {
        match validate_file(ctx, name, &doc.final_url, file) {
            Ok(c) => match seen.get(c.record.filename.as_str()) {
                Some(first) if *first == c.record.sha256 => outcome.failures.push(file_failure(
                    name,
                    c.record.filename.as_str(),
                    "listed twice on the page".to_owned(),
                )),
                Some(first) => {
                    // Which one is the file? Neither is trusted.
                    if ambiguous.insert(c.record.filename.as_str().to_owned()) {
                        outcome.failures.push(file_failure(
                            name,
                            c.record.filename.as_str(),
                            format!(
                                "listed twice on the page with different sha256 ({first} and {}); refused",
                                c.record.sha256
                            ),
                        ));
                    }
                }
                None => {
                    seen.insert(c.record.filename.as_str().to_owned(), c.record.sha256);
                    candidates.push(c);
                }
            },
            Err(e) => outcome.failures.push(file_failure(name, &file.filename, e)),
        }
    }
    candidates.retain(|c| !ambiguous.contains(c.record.filename.as_str()));

    if let Some(n) = ctx.latest_releases {
        keep_latest_releases(&mut candidates, n);
    }
    apply_pins(ctx, name, &mut candidates, &mut outcome);
    let judged = apply_policy(ctx, name, &mut candidates);
    let blocked = if ctx.policy.mode() == tufa_policy::Mode::Enforce {
        judged.len()
    } else {
        0
    };

    let index = ctx.index.clone();
    let project = name.clone();
    let known = tokio::task::spawn_blocking(move || -> Result<_, tufa_index::IndexError> {
        Ok((index.files(&project)?, index.approved_changes(&project)?))
    })
    .await;
    let (previous, approved) = match known {
        Ok(Ok(known)) => known,
        Ok(Err(e)) => return ProjectOutcome::failed(name, format!("index: {e}")).into(),
        Err(e) => return ProjectOutcome::failed(name, format!("index task: {e}")).into(),
    };
    let previous: BTreeMap<String, FileRecord> = previous
        .into_iter()
        .map(|f| (f.filename.as_str().to_owned(), f))
        .collect();

    // PyPI filenames are immutable: new bytes under a known name are the mark of a
    // compromised or broken upstream. Refused (the old record stays) unless the operator
    // approved exactly this digest with `tufa accept-change`.
    candidates.retain(|c| {
        let filename = c.record.filename.as_str();
        let Some(old) = previous.get(filename) else {
            return true;
        };
        let new = c.record.sha256;
        if old.sha256 == new {
            return true;
        }
        if approved.get(filename) == Some(&new) {
            tracing::warn!(project = %name, file = %filename, old = %old.sha256, new = %new, "accepting a changed file the operator approved");
            return true;
        }
        outcome.failures.push(file_failure(
            name,
            filename,
            format!(
                "upstream changed the content of a published file: sha256 was {}, upstream now says {new}; PyPI filenames are immutable, so the change is refused and the old file kept (accept it with `tufa accept-change {name} {filename} --sha256 {new}`)",
                old.sha256
            ),
        ));
        false
    });

    // Which blobs are stored already: one look for the whole project (on the local disk one
    // blocking call). When the look fails, every file is fetched (and found present when
    // stored, which costs a download, not correctness).
    let digests = candidates.iter().map(|c| c.record.sha256).collect();
    let stored = match ctx.store.sizes(digests).await {
        Ok(sizes) => sizes,
        Err(e) => {
            tracing::warn!(project = %name, error = %e, "cannot check which files are stored");
            vec![None; candidates.len()]
        }
    };
    let results: Vec<(Candidate, Result<u64, String>)> =
        futures::stream::iter(candidates.into_iter().zip(stored))
            .map(|(c, stored)| async move {
                let r = match stored {
                    Some(len) => {
                        ctx.files_present.fetch_add(1, Ordering::Relaxed);
                        check_size(&c, len)
                    }
                    None => download(ctx, &c).await,
                };
                (c, r)
            })
            // The semaphore bounds downloads; this bounds the futures waiting for it.
            .buffer_unordered(64)
            .collect()
            .await;

    let mut files = Vec::new();
    for (c, result) in results {
        match result {
            Ok(len) => {
                let mut record = c.record;
                // HTML pages give no size: record the verified blob's.
                record.size = len;
                files.push(record);
            }
            Err(e) => {
                let filename = c.record.filename.to_string();
                // What the index already had for this file stays (loses nothing).
                if let Some(old) = previous.get(&filename) {
                    files.push(old.clone());
                }
                outcome.failures.push(file_failure(name, &filename, e));
            }
        }
    }
    // Files that failed validation but were known before are kept as they were.
    let kept: BTreeSet<String> = files.iter().map(|f| f.filename.as_str().to_owned()).collect();
    for failure in &outcome.failures {
        if let Some(file) = failure.file.as_ref().filter(|f| !kept.contains(*f))
            && let Some(old) = previous.get(file)
        {
            files.push(old.clone());
        }
    }

    let record = ProjectRecord {
        name: name.clone(),
        last_serial: page.meta.last_serial.or(doc.last_serial),
        // With a release filter or files the policy blocked, only the kept files' versions
        // are this mirror's versions.
        versions: if ctx.latest_releases.is_some() || blocked > 0 {
            Vec::new()
        } else {
            page.versions.clone().unwrap_or_default()
        },
        status: page.project_status.clone(),
    };
    if !ctx.policy.is_empty() {
        outcome.judged = Some((name.clone(), judged));
    }
    let ok = outcome.failures.is_empty();
    let submitted = ctx
        .committer
        .submit(tufa_index::ProjectCommit {
            record,
            files,
            finish_pending: pending_serial.filter(|_| ok),
        })
        .await;
    match submitted {
        Ok(answer) => Synced::Committing {
            name: name.clone(),
            outcome,
            answer,
        },
        Err(error) => {
            outcome.failures.push(SyncFailure {
                project: name.to_string(),
                file: None,
                error,
            });
            Synced::Done(outcome)
        }
    }
}

/// Keeps the candidates the requirements pin (versions; hashes, refusing a file whose sha256
/// is not among them).
fn apply_pins(ctx: &Ctx, name: &ProjectName, candidates: &mut Vec<Candidate>, outcome: &mut ProjectOutcome) {
    let Some(pins) = ctx.pins.get(name) else {
        return;
    };
    candidates.retain(|c| {
        let version = c.record.filename.version();
        pins.specifiers.iter().any(|spec| match (spec, version) {
            (None, _) => true,
            (Some(spec), Some(v)) => spec.contains(v),
            (Some(_), None) => false,
        })
    });
    if pins.sha256.is_empty() {
        return;
    }
    candidates.retain(|c| {
        if pins.sha256.contains(&c.record.sha256) {
            return true;
        }
        let listed: Vec<String> = pins.sha256.iter().map(ToString::to_string).collect();
        outcome.failures.push(file_failure(
            name,
            c.record.filename.as_str(),
            format!(
                "upstream's sha256 is {}, which the requirements' hash pins do not list ({}); refused",
                c.record.sha256,
                listed.join(", ")
            ),
        ));
        false
    });
}

/// Drops the candidates the policy blocks (in report mode only logs them); returns what it
/// blocks (in report mode: would block).
fn apply_policy(ctx: &Ctx, name: &ProjectName, candidates: &mut Vec<Candidate>) -> Vec<tufa_policy::Blocked> {
    if ctx.policy.is_empty() {
        return Vec::new();
    }
    let enforce = ctx.policy.mode() == tufa_policy::Mode::Enforce;
    let mut blocked = Vec::new();
    candidates.retain(|c| {
        let facts = tufa_policy::FileFacts {
            project: name,
            filename: &c.record.filename,
            upload_time: c.record.upload_time.as_deref(),
            yanked: c.record.yanked.is_some(),
            // HTML pages give no size (recorded as 0 until the download).
            size: (c.record.size > 0).then_some(c.record.size),
            requires_python: c.record.requires_python.as_deref(),
        };
        let verdict = ctx.policy.file(&facts, ctx.now);
        let tufa_policy::Verdict::Block { rule, reason } = &verdict else {
            return true;
        };
        ctx.files_blocked.fetch_add(1, Ordering::Relaxed);
        blocked.push(tufa_policy::Blocked {
            file: c.record.filename.to_string(),
            rule: *rule,
            reason: reason.clone(),
        });
        if enforce {
            tracing::info!(project = %name, file = %c.record.filename, %verdict, "policy: file kept out");
            false
        } else {
            tracing::info!(project = %name, file = %c.record.filename, %verdict, "policy (report mode): file would be kept out");
            true
        }
    });
    blocked
}

/// Commits a project the policy keeps out as a whole with no files.
async fn commit_blocked_project(
    ctx: &Ctx,
    name: &ProjectName,
    pending_serial: Option<u64>,
    blocked: Vec<tufa_policy::Blocked>,
) -> Synced {
    let record = ProjectRecord {
        name: name.clone(),
        last_serial: None,
        versions: Vec::new(),
        status: None,
    };
    let submitted = ctx
        .committer
        .submit(tufa_index::ProjectCommit {
            record,
            files: Vec::new(),
            finish_pending: pending_serial,
        })
        .await;
    match submitted {
        Ok(answer) => Synced::Committing {
            name: name.clone(),
            outcome: ProjectOutcome {
                judged: Some((name.clone(), blocked)),
                ..ProjectOutcome::default()
            },
            answer,
        },
        Err(error) => ProjectOutcome::failed(name, error).into(),
    }
}

/// A project whose files are stored: done, or waiting for its group commit.
pub(crate) enum Synced {
    Done(ProjectOutcome),
    Committing {
        name: ProjectName,
        outcome: ProjectOutcome,
        answer: crate::commit::Answer,
    },
}

impl From<ProjectOutcome> for Synced {
    fn from(outcome: ProjectOutcome) -> Self {
        Self::Done(outcome)
    }
}

impl Synced {
    /// The outcome, once the project's commit (if any) is durable.
    pub(crate) async fn finish(self) -> ProjectOutcome {
        let (name, mut outcome, answer) = match self {
            Self::Done(outcome) => return outcome,
            Self::Committing {
                name,
                outcome,
                answer,
            } => (name, outcome, answer),
        };
        match answer.wait().await {
            Ok(change) => {
                outcome.changed = !change.is_empty();
                outcome.files_removed = change.removed as u64;
                tracing::info!(
                    project = %name,
                    added = change.added,
                    removed = change.removed,
                    updated = change.updated,
                    failures = outcome.failures.len(),
                    "project synced"
                );
            }
            Err(error) => outcome.failures.push(SyncFailure {
                project: name.to_string(),
                file: None,
                error,
            }),
        }
        outcome
    }
}

/// Keeps only the files of the `n` newest final releases (PEP 440 order; pre-, dev- and
/// post-release-only versions newer than them are dropped too, since installers would pick
/// them only when asked). A project with no final release keeps its `n` newest versions.
/// Legacy files without a parseable version are dropped when a filter is set.
fn keep_latest_releases(candidates: &mut Vec<Candidate>, n: usize) {
    let versions: BTreeSet<tufa_pypi::Version> = candidates
        .iter()
        .filter_map(|c| c.record.filename.version().cloned())
        .collect();
    let finals: Vec<&tufa_pypi::Version> = versions
        .iter()
        .rev()
        .filter(|v| !v.any_prerelease())
        .take(n)
        .collect();
    let keep: BTreeSet<&tufa_pypi::Version> = if finals.is_empty() {
        versions.iter().rev().take(n).collect()
    } else {
        finals.into_iter().collect()
    };
    candidates.retain(|c| c.record.filename.version().is_some_and(|v| keep.contains(v)));
}

fn file_failure(project: &ProjectName, file: &str, error: String) -> SyncFailure {
    let file: String = file.escape_debug().collect();
    tracing::error!(project = %project, file = %file, error = %error, "file rejected");
    SyncFailure {
        project: project.to_string(),
        file: Some(file),
        error,
    }
}

/// The upstream answered 404 for the project's page.
async fn gone_upstream(
    ctx: &Ctx,
    name: &ProjectName,
    pending_serial: Option<u64>,
    full_mode: bool,
) -> ProjectOutcome {
    if !full_mode {
        // Someone listed it explicitly: a typo or a deleted project deserves an error.
        return ProjectOutcome::failed(name, "not found upstream (HTTP 404)");
    }
    let index = ctx.index.clone();
    let project = name.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<bool, tufa_index::IndexError> {
        let existed = index.remove_project(&project)?;
        if let Some(serial) = pending_serial {
            index.finish_pending(&project, serial)?;
        }
        Ok(existed)
    })
    .await;
    match result {
        Ok(Ok(existed)) => {
            if existed {
                tracing::info!(project = %name, "removed upstream, removed from the index");
            }
            ProjectOutcome {
                removed: existed,
                changed: existed,
                ..ProjectOutcome::default()
            }
        }
        Ok(Err(e)) => ProjectOutcome::failed(name, format!("index: {e}")),
        Err(e) => ProjectOutcome::failed(name, format!("index task: {e}")),
    }
}

/// Parses and checks a project page in whichever format the upstream chose; more than
/// `max_files` file entries end the parse as soon as the one too many is read.
fn parse_page(
    name: &ProjectName,
    content_type: &str,
    body: &[u8],
    max_files: usize,
) -> Result<ProjectPage, String> {
    let page = match page_format(content_type) {
        Some(PageFormat::Json) => {
            let page = simple::parse_project_page_json(body, max_files)
                .map_err(|e| format!("malformed project page JSON: {e}"))?;
            page.meta.check_api_version().map_err(|e| e.to_string())?;
            let page_name = ProjectName::new(&page.name)
                .map_err(|e| format!("project page names an invalid project: {e}"))?;
            if &page_name != name {
                return Err(format!(
                    "asked for project `{name}`, upstream answered with project `{page_name}`"
                ));
            }
            page
        }
        Some(PageFormat::Html) => {
            let text =
                std::str::from_utf8(body).map_err(|e| format!("project page HTML is not UTF-8: {e}"))?;
            let page = simple::parse_project_html_limited(text, name.as_str(), max_files)
                .map_err(|e| e.to_string())?;
            page.meta.check_api_version().map_err(|e| e.to_string())?;
            page
        }
        None => {
            let shown: String = content_type.chars().take(100).collect();
            return Err(format!(
                "unexpected content type `{}` for a project page",
                shown.escape_debug()
            ));
        }
    };
    // Page-level text that is stored and rendered.
    for v in page.versions.iter().flatten() {
        tufa_pypi::check_text("version", v).map_err(|e| format!("project page `versions`: {e}"))?;
    }
    if let Some(status) = &page.project_status {
        tufa_pypi::check_text("project-status", &status.status).map_err(|e| e.to_string())?;
        if let Some(reason) = &status.reason {
            tufa_pypi::check_text("project-status reason", reason).map_err(|e| e.to_string())?;
        }
    }
    Ok(page)
}

/// Turns one untrusted file entry into a typed record, or says exactly why not.
fn validate_file(
    ctx: &Ctx,
    project: &ProjectName,
    page_url: &Url,
    file: &simple::File,
) -> Result<Candidate, String> {
    let filename = DistFilename::parse(&file.filename).map_err(|e| e.to_string())?;
    if let Some(owner) = filename.project()
        && owner != project
    {
        return Err(format!("file belongs to project `{owner}`, not `{project}`"));
    }
    let sha256: Sha256Digest = match file.sha256() {
        Some(h) => h.parse().map_err(|e| format!("bad sha256 hash: {e}"))?,
        None => return Err("upstream gives no sha256 hash; tufa mirrors only verifiable files".to_owned()),
    };
    // The URL parser silently drops tabs and newlines: refuse them before it sees them.
    tufa_pypi::check_text("file URL", &file.url).map_err(|e| e.to_string())?;
    let url = file.resolved_url(page_url).map_err(|_| {
        format!(
            "file URL `{}` cannot be resolved against the page URL",
            file.url.escape_debug()
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("file URL `{}` is not http(s)", redact(&url)));
    }
    if (url.username(), url.password()) != (page_url.username(), page_url.password()) {
        return Err(format!(
            "file URL `{}` carries credentials (userinfo) of its own; refused",
            redact(&url)
        ));
    }
    ctx.upstream.check_url(&url).map_err(|e| e.to_string())?;
    let max = ctx.upstream.limits().max_file_bytes;
    if let Some(size) = file.size
        && size > max
    {
        return Err(format!(
            "advertised size {size} bytes exceeds the limit of {max} bytes"
        ));
    }
    if let Some(rp) = &file.requires_python {
        tufa_pypi::check_requires_python(rp).map_err(|e| e.to_string())?;
    }
    if let Some(reason) = file.yanked.reason() {
        tufa_pypi::check_text("yank reason", reason).map_err(|e| e.to_string())?;
    }
    if let Some(provenance) = &file.provenance {
        tufa_pypi::check_text("provenance URL", provenance).map_err(|e| e.to_string())?;
    }
    let upload_time = file.upload_time.as_ref().filter(|t| {
        let ok = t.parse::<jiff::Timestamp>().is_ok();
        if !ok {
            tracing::warn!(project = %project, file = %filename, upload_time = %t.escape_debug(), "ignoring unparseable upload-time");
        }
        ok
    });
    let core_metadata_sha256 = file
        .metadata()
        .and_then(|m| m.sha256())
        .and_then(|h| h.parse().ok());
    Ok(Candidate {
        record: FileRecord {
            filename,
            sha256,
            size: file.size.unwrap_or(0),
            requires_python: file.requires_python.clone(),
            yanked: file
                .yanked
                .is_yanked()
                .then(|| file.yanked.reason().unwrap_or("").to_owned()),
            upload_time: upload_time.cloned(),
            core_metadata_sha256,
            upstream_url: redact(&url),
            provenance: file.provenance.clone(),
        },
        url,
    })
}

/// Errors of one download attempt.
#[derive(Debug, thiserror::Error)]
enum DownloadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Content-Length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: u64 },
}

impl Transient for DownloadError {
    fn is_transient(&self) -> bool {
        match self {
            DownloadError::Fetch(e) => e.is_transient(),
            // Too slow: another attempt would hold the slot just as long.
            DownloadError::Store(StoreError::Source { source, .. })
                if matches!(
                    source.downcast_ref::<BodyError>(),
                    Some(BodyError::TooSlow { .. })
                ) =>
            {
                false
            }
            // The body stream broke (truncated, reset, timed out): try again.
            DownloadError::Store(StoreError::Source { .. }) => true,
            DownloadError::Store(_) | DownloadError::TooLarge { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            DownloadError::Fetch(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Downloads, verifies and stores the file's blob. Returns the verified blob's size, for the
/// record (HTML pages give none).
async fn download(ctx: &Ctx, c: &Candidate) -> Result<u64, String> {
    let digest = c.record.sha256;
    let _permit = ctx.downloads.acquire().await.map_err(|e| e.to_string())?;
    let max = ctx.upstream.limits().max_file_bytes;
    let expected_len = (c.record.size > 0).then_some(c.record.size);
    let outcome = ctx
        .upstream
        .retrying(&c.url, || async {
            let response = ctx.upstream.get_file_once(&c.url).await?;
            if let Some(len) = response.content_length()
                && len > max
            {
                return Err(DownloadError::TooLarge { len, max });
            }
            let limits = ctx.upstream.limits();
            let body = MinRate::new(
                response.bytes_stream(),
                limits.file_min_rate_bytes_per_sec,
                std::time::Duration::from_secs(limits.file_rate_window_secs),
            );
            Ok(ctx.store.put_stream(&digest, expected_len, max, body).await?)
        })
        .await
        .map_err(|e| error_chain(&e))?;
    let len = match outcome {
        PutOutcome::Stored { len } => {
            ctx.files_downloaded.fetch_add(1, Ordering::Relaxed);
            ctx.bytes_downloaded.fetch_add(len, Ordering::Relaxed);
            (ctx.progress)(SyncEvent::Downloaded { bytes: len });
            tracing::debug!(file = %c.record.filename, bytes = len, sha256 = %digest, "stored");
            len
        }
        PutOutcome::AlreadyPresent { len } => len,
    };
    check_size(c, len)
}

/// The error and its causes (a broken body's reason is only in the source chain), skipping
/// causes whose text is already shown.
fn error_chain(e: &dyn std::error::Error) -> String {
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

fn check_size(c: &Candidate, len: u64) -> Result<u64, String> {
    if c.record.size != 0 && c.record.size != len {
        return Err(format!(
            "upstream says {} bytes, the verified blob has {len}",
            c.record.size
        ));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn candidate(filename: &str) -> Candidate {
        Candidate {
            record: FileRecord {
                filename: DistFilename::parse(filename).unwrap(),
                sha256: Sha256Digest::of(filename.as_bytes()),
                size: 1,
                requires_python: None,
                yanked: None,
                upload_time: None,
                core_metadata_sha256: None,
                upstream_url: String::new(),
                provenance: None,
            },
            url: Url::parse("http://127.0.0.1/x").unwrap(),
        }
    }

    #[test]
    fn keeps_only_the_newest_releases() {
        let mut c: Vec<Candidate> = [
            "demo-1.0.tar.gz",
            "demo-1.10-py3-none-any.whl",
            "demo-1.10.tar.gz",
            "demo-1.9.tar.gz",
            "demo-2.0rc1.tar.gz",
            "demo-0.1-py2.7.egg",
        ]
        .into_iter()
        .map(candidate)
        .collect();
        let mut only_pre: Vec<Candidate> = ["demo-2.0rc1.tar.gz", "demo-2.0rc2.tar.gz", "demo-2.0rc3.tar.gz"]
            .into_iter()
            .map(candidate)
            .collect();
        keep_latest_releases(&mut c, 2);
        let mut names: Vec<&str> = c.iter().map(|c| c.record.filename.as_str()).collect();
        names.sort();
        // 2.0rc1 is newer but a pre-release: the two newest *final* releases are kept.
        assert_eq!(
            names,
            [
                "demo-1.10-py3-none-any.whl",
                "demo-1.10.tar.gz",
                "demo-1.9.tar.gz"
            ]
        );
        // Only pre-releases: the newest ones are kept rather than nothing.
        keep_latest_releases(&mut only_pre, 2);
        let names: Vec<&str> = only_pre.iter().map(|c| c.record.filename.as_str()).collect();
        assert_eq!(names, ["demo-2.0rc2.tar.gz", "demo-2.0rc3.tar.gz"]);
    }

    #[test]
    fn page_formats() {
        assert!(matches!(
            page_format("application/vnd.pypi.simple.v1+json"),
            Some(PageFormat::Json)
        ));
        assert!(matches!(
            page_format("Text/HTML; charset=utf-8"),
            Some(PageFormat::Html)
        ));
        assert!(page_format("text/plain").is_none());
        assert!(page_format("application/json").is_none());
    }
}

/// The PEP 658 metadata of `file` (at its URL plus `.metadata`), when it can be fetched and
/// is text; the host rules of the sync apply.
async fn core_metadata_of(upstream: &crate::Upstream, page_url: &Url, file: &simple::File) -> Option<String> {
    let url = file.resolved_url(page_url).ok()?;
    let mut url = url;
    url.set_fragment(None);
    let url = Url::parse(&format!("{url}.metadata")).ok()?;
    upstream.check_url(&url).ok()?;
    let doc = upstream.get_document(&url, "*/*").await.ok()?;
    if !doc.status.is_success() {
        return None;
    }
    String::from_utf8(doc.body.to_vec()).ok()
}

/// One file upstream lists, as `tufa policy explain` judges it.
#[derive(Debug, Clone)]
pub struct ListedFile {
    pub filename: DistFilename,
    pub upload_time: Option<String>,
    pub yanked: bool,
    pub size: Option<u64>,
    pub requires_python: Option<String>,
    /// The file's core metadata (PEP 658), when asked for and upstream offers it.
    pub core_metadata: Option<String>,
}

/// The files upstream lists for `name` (its page fetched and parsed as a sync would, nothing
/// downloaded), and the filenames that could not be parsed. `Ok(None)`: upstream has no
/// such project.
pub async fn list_upstream_files(
    options: &crate::SyncOptions,
    name: &ProjectName,
    with_core_metadata: bool,
) -> Result<Option<(Vec<ListedFile>, Vec<String>)>, String> {
    let mut base = options.upstream.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let policy = crate::HostPolicy::new(
        &base,
        options.xmlrpc.as_ref(),
        &options.file_hosts,
        options.allow_private_addresses,
    )
    .map_err(|e| e.to_string())?;
    let upstream = crate::Upstream::new(options.limits.clone(), &options.user_agent, policy)
        .map_err(|e| e.to_string())?;
    let page_url = base
        .join(&format!("{name}/"))
        .map_err(|e| format!("cannot build page URL: {e}"))?;
    let doc = upstream
        .get_document(&page_url, ACCEPT_SIMPLE)
        .await
        .map_err(|e| e.to_string())?;
    if doc.status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let page = parse_page(
        name,
        &doc.content_type,
        &doc.body,
        options.limits.max_files_per_project,
    )?;
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for f in page.files {
        let filename = match DistFilename::parse(&f.filename) {
            Ok(filename) => filename,
            Err(e) => {
                unreadable.push(format!("{}: {e}", f.filename));
                continue;
            }
        };
        let core_metadata = match f
            .core_metadata
            .as_ref()
            .filter(|m| with_core_metadata && m.is_present())
        {
            Some(_) => core_metadata_of(&upstream, &doc.final_url, &f).await,
            None => None,
        };
        files.push(ListedFile {
            filename,
            upload_time: f.upload_time,
            yanked: !matches!(f.yanked, tufa_pypi::simple::Yanked::No),
            size: f.size,
            requires_python: f.requires_python,
            core_metadata,
        });
    }
    Ok(Some((files, unreadable)))
}
