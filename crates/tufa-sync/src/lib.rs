//! `tufa-sync`: pulls projects from an upstream index into the blob store and the index.
//!
//! Two modes: **allowlist** (exactly the configured projects, every run re-reads each page)
//! and **full** (every project upstream, incremental through PyPI's change serials: the
//! `_last-serial` of PEP 691 pages and the XML-RPC `changelog_since_serial` feed bandersnatch
//! uses). Every file is streamed into the store and verified against the upstream sha256
//! before it becomes visible; a project's index entry is replaced in one durable transaction
//! only after its files are stored and durable (many projects' blobs made durable together,
//! then recorded in one transaction: the `commit` module). A bad file (hash mismatch, truncated body, hostile name,
//! oversized) is rejected alone; a bad page (malformed or oversized JSON, wrong content type)
//! rejects its project and keeps what the index already had. The run carries on and reports
//! every failure at the end.
//!
//! Killed at any moment, a re-run converges: blobs already stored are not downloaded again,
//! and in full mode the planned-but-unfinished projects are kept in the index.
//!
//! Must not know about: the HTTP server, signing.

pub mod client;
mod commit;
pub mod hosts;
pub mod limits;
mod project;
pub mod rate;
pub mod xmlrpc;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;
use tokio::sync::Semaphore;
use tufa_index::Index;
use tufa_pypi::ProjectName;
use tufa_store::BlobStore;
use url::Url;

pub use client::{FetchError, Upstream};
pub use hosts::{DEFAULT_FILE_HOSTS, HostPolicy, redact};
pub use limits::{Concurrency, Limits};
pub use project::{ListedFile, list_upstream_files};

/// What to sync and how.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The upstream Simple API root, e.g. `https://pypi.org/simple/` (trailing slash added
    /// when missing).
    pub upstream: Url,
    /// XML-RPC endpoint for the changelog (full mode). Defaults to `/pypi` on the upstream host.
    pub xmlrpc: Option<Url>,
    /// `Some`: allowlist mode with exactly these projects. `None`: full mirror.
    pub projects: Option<Vec<ProjectName>>,
    pub limits: Limits,
    pub concurrency: Concurrency,
    /// Mirror only the files of the newest N releases of each project (bandersnatch's
    /// `latest_release` filter). `None`: every release.
    pub latest_releases: Option<usize>,
    pub user_agent: String,
    /// Hosts files may be downloaded from besides the upstream's own (`host` or `host:port`);
    /// see [`hosts`]. Default: [`DEFAULT_FILE_HOSTS`].
    pub file_hosts: Vec<String>,
    /// Let host names resolve to private, loopback and link-local addresses.
    pub allow_private_addresses: bool,
    /// What may enter the mirror (`[policy]`): blocked files are not downloaded, and files a
    /// rule newly blocks leave the index (and so the next publish's pages and TUF targets).
    pub policy: Arc<tufa_policy::Policy>,
    /// The time `min_release_age` is judged against (tests inject it). `None`: now.
    pub now: Option<jiff::Timestamp>,
    /// Full mode: projects to read again although upstream did not change them (those with
    /// files `min_release_age` held back, so they are admitted once old enough).
    pub recheck: Vec<ProjectName>,
    /// Versions and hashes requirements files pin, per project (allowlist mode).
    pub pins: BTreeMap<ProjectName, Pins>,
    /// Allowlist mode: read only these of `projects` this run; the others stay in the index
    /// as they are (following dependencies syncs only the projects a round added).
    pub only: Option<BTreeSet<ProjectName>>,
}

/// What requirements say about one project: version ranges (a file is mirrored when its
/// version satisfies any of them; `None`: every version) and, when pinned by hash, the
/// sha256s its files must have (a file with another is refused, both hashes named).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pins {
    pub specifiers: Vec<Option<pep440_rs::VersionSpecifiers>>,
    pub sha256: BTreeSet<tufa_pypi::Sha256Digest>,
}

impl SyncOptions {
    pub fn new(upstream: Url) -> Self {
        Self {
            upstream,
            xmlrpc: None,
            projects: None,
            limits: Limits::default(),
            concurrency: Concurrency::default(),
            latest_releases: None,
            user_agent: default_user_agent(),
            file_hosts: DEFAULT_FILE_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            allow_private_addresses: false,
            policy: Arc::new(tufa_policy::Policy::default()),
            now: None,
            recheck: Vec::new(),
            pins: BTreeMap::new(),
            only: None,
        }
    }
}

pub fn default_user_agent() -> String {
    format!("tufa/{} (+secure PyPI mirror)", env!("CARGO_PKG_VERSION"))
}

/// Progress notifications, for a progress bar or periodic log lines.
#[derive(Debug, Clone)]
pub enum SyncEvent {
    /// The number of projects this run will process.
    Planned { projects: usize },
    /// A file finished downloading and verifying.
    Downloaded { bytes: u64 },
    /// A project is done (`ok` false when anything of it failed).
    ProjectDone { project: ProjectName, ok: bool },
}

/// Receives [`SyncEvent`]s. Must be cheap; called from many tasks.
pub type Progress = Arc<dyn Fn(SyncEvent) + Send + Sync>;

/// One thing that went wrong, named precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    pub project: String,
    /// The file, when the failure concerns one file only.
    pub file: Option<String>,
    pub error: String,
}

impl std::fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: file `{}`: {}", self.project, file, self.error),
            None => write!(f, "{}: {}", self.project, self.error),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub projects_processed: usize,
    pub projects_changed: usize,
    pub projects_removed: usize,
    pub files_downloaded: u64,
    pub bytes_downloaded: u64,
    pub files_already_present: u64,
    pub files_removed: u64,
    /// Files the policy kept out (in report mode: files it would have kept out).
    pub files_blocked: u64,
    /// Every project the policy judged, with what it kept out (maybe nothing): for the
    /// policy report (`tufa_policy::Report`). Empty without a policy.
    pub judged: std::collections::BTreeMap<ProjectName, Vec<tufa_policy::Blocked>>,
    pub failures: Vec<SyncFailure>,
}

impl SyncReport {
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Failures that stop the whole run (as opposed to one project or file).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("index: {0}")]
    Index(#[from] tufa_index::IndexError),
    #[error("upstream project list at {url}: {reason}")]
    ProjectList { url: String, reason: String },
    #[error(transparent)]
    FileHost(#[from] hosts::InvalidFileHost),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("store: {0}")]
    Store(#[from] tufa_store::StoreError),
}

/// Shared state of one run.
pub(crate) struct Ctx {
    pub upstream: Upstream,
    pub base: Url,
    pub store: BlobStore,
    pub index: Index,
    pub downloads: Semaphore,
    pub progress: Progress,
    pub files_downloaded: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    pub files_present: AtomicU64,
    pub latest_releases: Option<usize>,
    pub policy: Arc<tufa_policy::Policy>,
    pub now: jiff::Timestamp,
    pub files_blocked: AtomicU64,
    pub pins: BTreeMap<ProjectName, Pins>,
    /// Records synced projects in the index in batches, after their blobs are durable.
    pub committer: commit::Committer,
}

/// Runs one sync.
pub async fn sync(
    options: &SyncOptions,
    store: &BlobStore,
    index: &Index,
    progress: Progress,
) -> Result<SyncReport, SyncError> {
    let mut base = options.upstream.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let policy = HostPolicy::new(
        &base,
        options.xmlrpc.as_ref(),
        &options.file_hosts,
        options.allow_private_addresses,
    )?;
    // Blobs are made durable and recorded in the index in batches (see the `commit` module).
    let store = store.with_group_commit()?;
    let (committer, _commit_task) = commit::Committer::start(store.clone(), index.clone());
    let ctx = Arc::new(Ctx {
        upstream: Upstream::new(options.limits.clone(), &options.user_agent, policy)?,
        base,
        store,
        index: index.clone(),
        downloads: Semaphore::new(options.concurrency.downloads.max(1)),
        progress,
        files_downloaded: AtomicU64::new(0),
        bytes_downloaded: AtomicU64::new(0),
        files_present: AtomicU64::new(0),
        latest_releases: options.latest_releases,
        policy: Arc::clone(&options.policy),
        now: options.now.unwrap_or_else(jiff::Timestamp::now),
        files_blocked: AtomicU64::new(0),
        pins: options.pins.clone(),
        committer,
    });

    let mut report = SyncReport::default();
    // (project, serial to reach in full mode)
    let work: Vec<(ProjectName, Option<u64>)> = match &options.projects {
        Some(allow) => {
            drop_unlisted_projects(&ctx, allow, &mut report).await?;
            let unique: BTreeSet<_> = allow.iter().cloned().collect();
            unique
                .into_iter()
                .filter(|p| options.only.as_ref().is_none_or(|only| only.contains(p)))
                .map(|p| (p, None))
                .collect()
        }
        None => {
            let mut work: Vec<(ProjectName, Option<u64>)> = plan_full(&ctx, options)
                .await?
                .into_iter()
                .map(|(p, s)| (p, Some(s)))
                .collect();
            let planned: BTreeSet<ProjectName> = work.iter().map(|(p, _)| p.clone()).collect();
            let mut recheck: Vec<ProjectName> = options.recheck.clone();
            recheck.sort();
            recheck.dedup();
            work.extend(
                recheck
                    .into_iter()
                    .filter(|p| !planned.contains(p))
                    .map(|p| (p, None)),
            );
            work
        }
    };
    let full_mode = options.projects.is_none();
    (ctx.progress)(SyncEvent::Planned { projects: work.len() });
    tracing::info!(
        projects = work.len(),
        mode = if full_mode { "full" } else { "allowlist" },
        "sync planned"
    );

    // Two stages: `projects` projects fetch and store at once; a project whose files are
    // stored frees its slot and waits for its group commit in the second stage.
    let outcomes: Vec<_> = futures::stream::iter(work)
        .map(|(name, serial)| {
            let ctx = ctx.clone();
            async move {
                (
                    name.clone(),
                    project::sync_project(&ctx, &name, serial, full_mode).await,
                )
            }
        })
        .buffer_unordered(options.concurrency.projects.max(1))
        .map(|(name, synced)| {
            let ctx = ctx.clone();
            async move {
                let outcome = synced.finish().await;
                (ctx.progress)(SyncEvent::ProjectDone {
                    project: name,
                    ok: outcome.failures.is_empty(),
                });
                outcome
            }
        })
        .buffer_unordered(commit::MAX_BATCH * 2)
        .collect()
        .await;

    for o in outcomes {
        report.projects_processed += 1;
        report.projects_changed += usize::from(o.changed);
        report.projects_removed += usize::from(o.removed);
        report.files_removed += o.files_removed;
        report.failures.extend(o.failures);
        if let Some((project, blocked)) = o.judged {
            report.judged.insert(project, blocked);
        }
    }
    report.files_downloaded = ctx.files_downloaded.load(Ordering::Relaxed);
    report.bytes_downloaded = ctx.bytes_downloaded.load(Ordering::Relaxed);
    report.files_already_present = ctx.files_present.load(Ordering::Relaxed);
    report.files_blocked = ctx.files_blocked.load(Ordering::Relaxed);
    if !options.policy.is_empty() {
        // The projects this run did not read (a full mirror reads only what changed upstream)
        // are judged from their index records, so a new rule or advisory applies everywhere
        // at once.
        let swept = policy_sweep(&ctx, &report.judged).await?;
        report.files_blocked += swept.values().map(|b| b.len() as u64).sum::<u64>();
        report.judged.extend(swept);
    }
    report
        .failures
        .sort_by(|a, b| (&a.project, &a.file).cmp(&(&b.project, &b.file)));
    tracing::info!(
        projects = report.projects_processed,
        changed = report.projects_changed,
        downloaded = report.files_downloaded,
        bytes = report.bytes_downloaded,
        failures = report.failures.len(),
        "sync finished"
    );
    Ok(report)
}

/// Judges the files of every indexed project not in `judged` (by what the index recorded of
/// them from upstream's page) and, in enforce mode, removes the blocked ones from the index
/// (the next publish drops them from the page and the TUF targets). Returns what it blocked,
/// per project it judged.
async fn policy_sweep(
    ctx: &Arc<Ctx>,
    judged: &std::collections::BTreeMap<ProjectName, Vec<tufa_policy::Blocked>>,
) -> Result<std::collections::BTreeMap<ProjectName, Vec<tufa_policy::Blocked>>, SyncError> {
    let index = ctx.index.clone();
    let policy = Arc::clone(&ctx.policy);
    let now = ctx.now;
    let skip: BTreeSet<ProjectName> = judged.keys().cloned().collect();
    let swept = tokio::task::spawn_blocking(move || -> Result<_, tufa_index::IndexError> {
        let enforce = policy.mode() == tufa_policy::Mode::Enforce;
        let mut out = std::collections::BTreeMap::new();
        for name in index.project_names()? {
            if skip.contains(&name) {
                continue;
            }
            let Some(record) = index.project(&name)? else {
                continue;
            };
            let files = index.files(&name)?;
            let mut kept = Vec::with_capacity(files.len());
            let mut blocked = Vec::new();
            for f in files {
                let facts = tufa_policy::FileFacts {
                    project: &name,
                    filename: &f.filename,
                    upload_time: f.upload_time.as_deref(),
                    yanked: f.yanked.is_some(),
                    size: Some(f.size).filter(|s| *s > 0),
                    requires_python: f.requires_python.as_deref(),
                };
                match policy.file(&facts, now) {
                    tufa_policy::Verdict::Block { rule, reason } => {
                        tracing::info!(project = %name, file = %f.filename, %rule, %reason, "policy: file kept out (index sweep)");
                        blocked.push(tufa_policy::Blocked {
                            file: f.filename.to_string(),
                            rule,
                            reason,
                        });
                        if !enforce {
                            kept.push(f);
                        }
                    }
                    tufa_policy::Verdict::Admit { .. } => kept.push(f),
                }
            }
            if enforce && !blocked.is_empty() {
                index.replace_project(&record, &kept)?;
            }
            out.insert(name, blocked);
        }
        Ok(out)
    })
    .await??;
    Ok(swept)
}

/// Allowlist mode mirrors exactly the listed projects: ones no longer listed leave the index
/// (their blobs stay in the store for a later gc).
async fn drop_unlisted_projects(
    ctx: &Ctx,
    allow: &[ProjectName],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let index = ctx.index.clone();
    let allow: BTreeSet<ProjectName> = allow.iter().cloned().collect();
    let removed = tokio::task::spawn_blocking(move || -> Result<usize, tufa_index::IndexError> {
        let mut removed = 0;
        for name in index.project_names()? {
            if !allow.contains(&name) {
                tracing::info!(project = %name, "no longer in the allowlist, removing from the index");
                index.remove_project(&name)?;
                removed += 1;
            }
        }
        Ok(removed)
    })
    .await??;
    report.projects_removed += removed;
    Ok(())
}

/// Full mode: decides which projects changed since the last run and records them as pending
/// (durably, before any is fetched), then returns every pending project.
async fn plan_full(ctx: &Ctx, options: &SyncOptions) -> Result<Vec<(ProjectName, u64)>, SyncError> {
    let index = ctx.index.clone();
    let since = tokio::task::spawn_blocking(move || index.upstream_serial()).await??;
    let planned = match since {
        Some(since) => match changelog_since(ctx, options, since).await {
            Ok(plan) => Some(plan),
            Err(e) => {
                tracing::warn!(error = %e, "changelog unavailable, comparing the full project list instead");
                None
            }
        },
        None => None,
    };
    let (changes, serial) = match planned {
        Some(plan) => plan,
        None => list_changed_projects(ctx).await?,
    };
    tracing::info!(
        changed = changes.len(),
        upstream_serial = serial,
        "planned full sync"
    );
    let index = ctx.index.clone();
    tokio::task::spawn_blocking(move || -> Result<_, tufa_index::IndexError> {
        index.plan_pending(&changes, serial)?;
        index.pending()
    })
    .await?
    .map_err(SyncError::from)
}

type Plan = (Vec<(ProjectName, u64)>, u64);

/// Projects changed after serial `since`, from the XML-RPC changelog.
async fn changelog_since(ctx: &Ctx, options: &SyncOptions, since: u64) -> Result<Plan, String> {
    let url = match &options.xmlrpc {
        Some(u) => u.clone(),
        None => ctx.base.join("/pypi").map_err(|e| e.to_string())?,
    };
    let shown = redact(&url);
    let body = xmlrpc::method_call("changelog_since_serial", &[since as i64]);
    let doc = ctx
        .upstream
        .post_xmlrpc(&url, body)
        .await
        .map_err(|e| e.to_string())?;
    if !doc.status.is_success() {
        return Err(format!("POST {shown}: HTTP {}", doc.status.as_u16()));
    }
    let text =
        std::str::from_utf8(&doc.body).map_err(|e| format!("POST {shown}: answer is not UTF-8: {e}"))?;
    let value = xmlrpc::parse_response(text).map_err(|e| format!("POST {shown}: {e}"))?;
    let entries = xmlrpc::parse_changelog(&value).map_err(|e| format!("POST {shown}: {e}"))?;
    let mut latest: BTreeMap<ProjectName, u64> = BTreeMap::new();
    let mut serial = since;
    for e in entries {
        serial = serial.max(e.serial);
        match ProjectName::new(&e.name) {
            Ok(name) => {
                let s = latest.entry(name).or_default();
                *s = (*s).max(e.serial);
            }
            Err(err) => {
                tracing::warn!(name = %e.name.escape_debug(), error = %err, "changelog names an invalid project, skipped")
            }
        }
    }
    Ok((latest.into_iter().collect(), serial))
}

/// Projects whose upstream serial differs from the one recorded, from the root project list
/// (PEP 691 JSON with PyPI's per-project `_last-serial`, or PEP 503 HTML, where every project
/// counts as changed). Projects the index has but upstream no longer lists are included, so
/// their 404 removes them.
async fn list_changed_projects(ctx: &Ctx) -> Result<Plan, SyncError> {
    let url = ctx.base.clone();
    let doc = ctx.upstream.get_document(&url, client::ACCEPT_SIMPLE).await?;
    let list_err = |reason: String| SyncError::ProjectList {
        url: redact(&url),
        reason,
    };
    if !doc.status.is_success() {
        return Err(list_err(format!("HTTP {}", doc.status.as_u16())));
    }
    let list = match project::page_format(&doc.content_type) {
        Some(project::PageFormat::Json) => {
            let list: tufa_pypi::simple::ProjectList =
                serde_json::from_slice(&doc.body).map_err(|e| list_err(format!("malformed JSON: {e}")))?;
            list.meta
                .check_api_version()
                .map_err(|e| list_err(e.to_string()))?;
            list
        }
        Some(project::PageFormat::Html) => {
            let text = std::str::from_utf8(&doc.body).map_err(|e| list_err(format!("not UTF-8: {e}")))?;
            tufa_pypi::simple::parse_project_list_html(text)
        }
        None => {
            return Err(list_err(format!(
                "unexpected content type `{}`",
                doc.content_type
            )));
        }
    };
    let serial = list.meta.last_serial.or(doc.last_serial).unwrap_or(0);
    let index = ctx.index.clone();
    let changes = tokio::task::spawn_blocking(move || -> Result<_, tufa_index::IndexError> {
        let mut changes = Vec::new();
        let mut listed = BTreeSet::new();
        for entry in list.projects {
            let Ok(name) = ProjectName::new(&entry.name) else {
                tracing::warn!(name = %entry.name.escape_debug(), "upstream lists an invalid project name, skipped");
                continue;
            };
            let known = index.project(&name)?.and_then(|r| r.last_serial);
            let upstream = entry.last_serial;
            if upstream.is_none() || known != upstream {
                changes.push((name.clone(), upstream.unwrap_or(0)));
            }
            listed.insert(name);
        }
        for name in index.project_names()? {
            if !listed.contains(&name) {
                changes.push((name, 0));
            }
        }
        Ok(changes)
    })
    .await??;
    Ok((changes, serial))
}
