//! `tufa-index`: the writer's only local state, a [redb] database.
//!
//! Holds what tufa knows about each mirrored project (its upstream serial, PEP 700 versions,
//! PEP 792 status), each of its files (filename, sha256, size, requires-python, yanked, upload
//! time, core-metadata hash, upstream URL), the upstream serial a full sync has reached, and the
//! set of projects changed since the last publish. Releases are derived from the files'
//! versions, not stored twice.
//!
//! Every write is one durable redb transaction (`Durability::Immediate`, redb's default):
//! when a method returns, the change survives a crash, and a crash before that leaves the
//! previous state. A project's files are replaced as a whole in one transaction, so a reader
//! never sees half a project; [`Index::commit_projects`] records many projects in one
//! transaction (the sync's group commit), all or none.
//!
//! All methods block; async callers run them on `spawn_blocking`.
//!
//! Must not know about: the network, the blob store's backend, signing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tufa_pypi::simple::ProjectStatus;
use tufa_pypi::{DistFilename, DistKind, ProjectName, Sha256Digest};

/// `project name` → JSON [`ProjectRecord`].
const PROJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("projects");
/// `"<project>/<filename>"` → JSON [`FileRecord`]. Both parts are validated path-safe
/// components, so `/` separates them unambiguously and a prefix scan lists one project.
const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// Projects changed since the last publish → ().
const DIRTY: TableDefinition<&str, ()> = TableDefinition::new("dirty_projects");
/// Projects a full sync has planned but not yet finished → the upstream serial to reach.
/// Written before any of them is fetched, removed one by one as each completes, so a killed
/// or partly failed sync resumes exactly where it stopped.
const PENDING: TableDefinition<&str, u64> = TableDefinition::new("pending_projects");
/// Distribution file sha256 → sha256 of the core metadata (PEP 658) tufa extracted from it,
/// or `""` when the file has none that can be extracted. Keyed by content, so it is computed
/// once per file, ever.
const METADATA: TableDefinition<&str, &str> = TableDefinition::new("extracted_metadata");
/// TUF targets by hashed bin: `(bin, target path)` → the target's TUF `TargetFile` JSON. Kept
/// here so re-signing one bin reads only that bin's targets.
const TUF_TARGETS: TableDefinition<(u32, &str), &[u8]> = TableDefinition::new("tuf_targets");
/// Project → JSON list of `(bin, target path)` it published, to replace them on change.
const PROJECT_TARGETS: TableDefinition<&str, &[u8]> = TableDefinition::new("tuf_project_targets");
/// Bins whose targets changed since they were last signed.
const DIRTY_BINS: TableDefinition<u32, ()> = TableDefinition::new("tuf_dirty_bins");
/// TUF role → (current version, expiry as Unix seconds).
const TUF_ROLES: TableDefinition<&str, (u64, i64)> = TableDefinition::new("tuf_roles");
/// `"<project>/<filename>"` → hex sha256 an operator accepted as the new content of a file
/// already mirrored under another digest (`tufa accept-change`). PyPI filenames are immutable,
/// so the sync refuses a changed file unless this table holds exactly its new digest; the
/// approval is removed when the project is replaced with that digest.
const APPROVED_CHANGES: TableDefinition<&str, &str> = TableDefinition::new("approved_changes");
/// Small named values: schema version, upstream serial.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SCHEMA_VERSION: u64 = 1;
const KEY_SCHEMA: &str = "schema_version";
const KEY_UPSTREAM_SERIAL: &str = "upstream_serial";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index `{path}`: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    /// Another process has the index open: tufa has one writer at a time per index.
    #[error(
        "index `{path}` is in use by another tufa process (a sync, refresh or import-metadata is running); one writer at a time: try again when it has finished"
    )]
    InUse { path: PathBuf },
    #[error("index `{path}` has schema version {found}, this tufa understands {SCHEMA_VERSION}")]
    Schema { path: PathBuf, found: u64 },
    #[error("index database error: {0}")]
    Db(#[from] redb::Error),
    #[error("index record `{key}` is corrupt: {source}")]
    Record { key: String, source: serde_json::Error },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for IndexError {
            fn from(e: $t) -> Self { IndexError::Db(e.into()) }
        }
    )*};
}
db_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// What tufa knows about one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub name: ProjectName,
    /// Upstream's `_last-serial` for this project when it was last synced.
    pub last_serial: Option<u64>,
    /// PEP 700 `versions` as upstream listed them (may include versions without files).
    #[serde(default)]
    pub versions: Vec<String>,
    /// PEP 792 status, when upstream gives one.
    #[serde(default)]
    pub status: Option<ProjectStatus>,
}

/// One distribution file of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub filename: DistFilename,
    pub sha256: Sha256Digest,
    pub size: u64,
    #[serde(default)]
    pub requires_python: Option<String>,
    /// `None`: not yanked. `Some(reason)`: yanked, reason possibly empty.
    #[serde(default)]
    pub yanked: Option<String>,
    /// ISO 8601 upload time as upstream gave it.
    #[serde(default)]
    pub upload_time: Option<String>,
    /// sha256 of the file's core metadata (PEP 658) when known.
    #[serde(default)]
    pub core_metadata_sha256: Option<Sha256Digest>,
    /// Where upstream served the file.
    pub upstream_url: String,
    /// PEP 740 provenance URL passed through from upstream.
    #[serde(default)]
    pub provenance: Option<String>,
}

impl FileRecord {
    pub fn kind(&self) -> DistKind {
        self.filename.kind()
    }
}

/// What replacing a project's files changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectChange {
    pub added: usize,
    pub removed: usize,
    pub updated: usize,
    /// Whether the project record itself (serial, versions, status) changed.
    pub record_changed: bool,
}

impl ProjectChange {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0 && self.updated == 0 && !self.record_changed
    }
}

/// One project of a group commit ([`Index::commit_projects`]).
#[derive(Debug, Clone)]
pub struct ProjectCommit {
    pub record: ProjectRecord,
    /// The project's whole file set.
    pub files: Vec<FileRecord>,
    /// Finish the project's pending entry at this serial (full mode, when it synced cleanly).
    pub finish_pending: Option<u64>,
}

/// The redb-backed index. Cheap to clone.
#[derive(Clone)]
pub struct Index {
    db: Arc<Database>,
    path: PathBuf,
    /// Writes commit without fsync ([`with_deferred_durability`](Index::with_deferred_durability)).
    deferred: bool,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

fn file_key(project: &ProjectName, filename: &DistFilename) -> String {
    format!("{}/{}", project.as_str(), filename.as_str())
}

/// `[prefix, prefix_end)` covers exactly the keys of `project` (`'0'` follows `'/'` in ASCII).
fn file_range(project: &ProjectName) -> (String, String) {
    (format!("{}/", project.as_str()), format!("{}0", project.as_str()))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| IndexError::Record {
        key: key.to_owned(),
        source,
    })
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| IndexError::Record {
        key: key.to_owned(),
        source,
    })
}

/// redb's page cache. Its default (1 GiB) let a sync's memory grow with the index: 325 MiB peak
/// RSS for a 50,000-project allowlist (bench/sync-scale.sh). The working set of a sync or a
/// publish is the pages of the projects in flight plus the tables' upper levels.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

impl Index {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| IndexError::Open {
                path: path.clone(),
                source: redb::DatabaseError::Storage(redb::StorageError::Io(e)),
            })?;
        }
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|source| match source {
                redb::DatabaseError::DatabaseAlreadyOpen => IndexError::InUse { path: path.clone() },
                source => IndexError::Open {
                    path: path.clone(),
                    source,
                },
            })?;
        let index = Self {
            db: Arc::new(db),
            path,
            deferred: false,
        };
        index.init_schema()?;
        Ok(index)
    }

    /// The same database, whose writes through this handle commit without waiting for the
    /// disk (redb's `Durability::None`): a batch of many small writes (a publish's METADATA
    /// and TUF-target records) costs no fsync each. They become durable with the next durable
    /// commit of the database through any handle (redb persists every earlier commit with it),
    /// and a crash before that loses all of them together, never some. Callers end with a
    /// durable write whose loss would make them redo the deferred ones (the publish: clearing
    /// the dirty projects).
    pub fn with_deferred_durability(&self) -> Self {
        Self {
            deferred: true,
            ..self.clone()
        }
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        let mut tx = self.db.begin_write()?;
        if self.deferred {
            tx.set_durability(redb::Durability::None)
                .map_err(redb::Error::from)?;
        }
        Ok(tx)
    }

    fn init_schema(&self) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get(KEY_SCHEMA)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION)?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(IndexError::Schema {
                        path: self.path.clone(),
                        found,
                    });
                }
            }
            tx.open_table(PROJECTS)?;
            tx.open_table(FILES)?;
            tx.open_table(DIRTY)?;
            tx.open_table(PENDING)?;
            tx.open_table(METADATA)?;
            tx.open_table(TUF_TARGETS)?;
            tx.open_table(PROJECT_TARGETS)?;
            tx.open_table(DIRTY_BINS)?;
            tx.open_table(TUF_ROLES)?;
            tx.open_table(APPROVED_CHANGES)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn project(&self, name: &ProjectName) -> Result<Option<ProjectRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PROJECTS)?;
        table
            .get(name.as_str())?
            .map(|v| decode(name.as_str(), v.value()))
            .transpose()
    }

    /// Files of `project`, ordered by filename.
    pub fn files(&self, project: &ProjectName) -> Result<Vec<FileRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FILES)?;
        let (start, end) = file_range(project);
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str())? {
            let (k, v) = entry?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Files of `project` grouped by release (PEP 440 order); legacy files without a
    /// parseable version are grouped under `None`.
    pub fn releases(
        &self,
        project: &ProjectName,
    ) -> Result<BTreeMap<Option<tufa_pypi::Version>, Vec<FileRecord>>> {
        let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for f in self.files(project)? {
            out.entry(f.filename.version().cloned()).or_default().push(f);
        }
        Ok(out)
    }

    /// All project names, sorted.
    pub fn project_names(&self) -> Result<Vec<ProjectName>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PROJECTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let rec: ProjectRecord = decode(k.value(), v.value())?;
            out.push(rec.name);
        }
        Ok(out)
    }

    /// Calls `f` for every file of every project, inside one read transaction (a consistent
    /// view), without loading them all at once.
    pub fn for_each_file(&self, mut f: impl FnMut(&ProjectName, FileRecord)) -> Result<()> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FILES)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let key = k.value();
            let record: FileRecord = decode(key, v.value())?;
            let project = key.split('/').next().and_then(|p| ProjectName::new(p).ok());
            match project {
                Some(project) => f(&project, record),
                None => {
                    return Err(IndexError::Record {
                        key: key.to_owned(),
                        source: serde::de::Error::custom("key does not start with a project name"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Replaces everything known about one project in one durable transaction: the record, and
    /// exactly `files` as its file set (files absent from `files` are removed from the index;
    /// their blobs stay in the store for a later gc). Marks the project dirty when anything
    /// changed.
    pub fn replace_project(&self, record: &ProjectRecord, files: &[FileRecord]) -> Result<ProjectChange> {
        let tx = self.begin_write()?;
        let change = replace_project_in(&tx, record, files)?;
        tx.commit()?;
        Ok(change)
    }

    /// Group commit: every project of `batch` replaced as [`replace_project`] does, and its
    /// pending entry finished as [`finish_pending`] does when it asks to, all in ONE durable
    /// transaction (one fsync for the whole batch). Either all of them are recorded or none.
    ///
    /// [`replace_project`]: Self::replace_project
    /// [`finish_pending`]: Self::finish_pending
    pub fn commit_projects(&self, batch: &[ProjectCommit]) -> Result<Vec<ProjectChange>> {
        let tx = self.begin_write()?;
        let mut changes = Vec::with_capacity(batch.len());
        for item in batch {
            changes.push(replace_project_in(&tx, &item.record, &item.files)?);
            if let Some(serial) = item.finish_pending {
                finish_pending_in(&tx, &item.record.name, serial)?;
            }
        }
        tx.commit()?;
        Ok(changes)
    }

    /// Records that the operator accepts `digest` as the new content of `filename`, a file
    /// of `project` upstream changed (`tufa accept-change`). Replaces an earlier approval of
    /// the same file.
    pub fn approve_change(
        &self,
        project: &ProjectName,
        filename: &DistFilename,
        digest: &Sha256Digest,
    ) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let key = file_key(project, filename);
            let hex = digest.to_hex();
            tx.open_table(APPROVED_CHANGES)?
                .insert(key.as_str(), hex.as_str())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The approved new digests of `project`'s files, by filename.
    pub fn approved_changes(&self, project: &ProjectName) -> Result<BTreeMap<String, Sha256Digest>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(APPROVED_CHANGES)?;
        let (start, end) = file_range(project);
        let mut out = BTreeMap::new();
        for entry in table.range(start.as_str()..end.as_str())? {
            let (k, v) = entry?;
            let digest: Sha256Digest = v.value().parse().map_err(|e| IndexError::Record {
                key: k.value().to_owned(),
                source: serde::de::Error::custom(e),
            })?;
            if let Some(filename) = k.value().strip_prefix(start.as_str()) {
                out.insert(filename.to_owned(), digest);
            }
        }
        Ok(out)
    }

    /// Removes a project and its files from the index (blobs stay for gc). Returns whether it
    /// was known.
    pub fn remove_project(&self, name: &ProjectName) -> Result<bool> {
        let tx = self.begin_write()?;
        let existed;
        {
            existed = tx.open_table(PROJECTS)?.remove(name.as_str())?.is_some();
            let mut table = tx.open_table(FILES)?;
            let (start, end) = file_range(name);
            table.retain_in(start.as_str()..end.as_str(), |_, _| false)?;
            if existed {
                tx.open_table(DIRTY)?.insert(name.as_str(), ())?;
            }
        }
        tx.commit()?;
        Ok(existed)
    }

    /// The upstream serial a full sync has completely processed.
    pub fn upstream_serial(&self) -> Result<Option<u64>> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(META)?.get(KEY_UPSTREAM_SERIAL)?.map(|v| v.value()))
    }

    pub fn set_upstream_serial(&self, serial: u64) -> Result<()> {
        let tx = self.begin_write()?;
        tx.open_table(META)?.insert(KEY_UPSTREAM_SERIAL, serial)?;
        tx.commit()?;
        Ok(())
    }

    /// Records, in one transaction, the projects a full sync must fetch and the upstream serial
    /// it has thereby planned up to. A pending project keeps the highest serial asked for.
    pub fn plan_pending(&self, projects: &[(ProjectName, u64)], upstream_serial: u64) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(PENDING)?;
            for (name, serial) in projects {
                let current = table.get(name.as_str())?.map(|v| v.value());
                if current.is_none_or(|c| c < *serial) {
                    table.insert(name.as_str(), *serial)?;
                }
            }
            tx.open_table(META)?
                .insert(KEY_UPSTREAM_SERIAL, upstream_serial)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Projects planned by [`Index::plan_pending`] and not yet finished, with their serials.
    pub fn pending(&self) -> Result<Vec<(ProjectName, u64)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PENDING)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            if let Ok(name) = ProjectName::new(k.value()) {
                out.push((name, v.value()));
            }
        }
        Ok(out)
    }

    /// Marks a pending project done, unless a newer serial was planned for it meanwhile.
    pub fn finish_pending(&self, name: &ProjectName, serial: u64) -> Result<()> {
        let tx = self.begin_write()?;
        finish_pending_in(&tx, name, serial)?;
        tx.commit()?;
        Ok(())
    }

    /// What is known of the metadata extracted from the file `file`: `None` when it was never
    /// tried, `Some(None)` when the file has no extractable metadata.
    pub fn extracted_metadata(&self, file: &Sha256Digest) -> Result<Option<Option<Sha256Digest>>> {
        Ok(self
            .extracted_metadata_many(std::slice::from_ref(file))?
            .into_iter()
            .next()
            .flatten())
    }

    /// [`extracted_metadata`](Self::extracted_metadata) of each file, in one read transaction.
    pub fn extracted_metadata_many(
        &self,
        files: &[Sha256Digest],
    ) -> Result<Vec<Option<Option<Sha256Digest>>>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(METADATA)?;
        let mut out = Vec::with_capacity(files.len());
        for file in files {
            let key = file.to_hex();
            let Some(v) = table.get(key.as_str())? else {
                out.push(None);
                continue;
            };
            let v = v.value();
            if v.is_empty() {
                out.push(Some(None));
                continue;
            }
            let digest = v
                .parse()
                .map_err(|e: tufa_pypi::InvalidDigest| IndexError::Record {
                    key,
                    source: serde::de::Error::custom(e),
                })?;
            out.push(Some(Some(digest)));
        }
        Ok(out)
    }

    pub fn set_extracted_metadata(&self, file: &Sha256Digest, metadata: Option<&Sha256Digest>) -> Result<()> {
        self.set_extracted_metadata_many(&[(*file, metadata.copied())])
    }

    /// [`set_extracted_metadata`](Self::set_extracted_metadata) for many files, in one
    /// transaction.
    pub fn set_extracted_metadata_many(&self, files: &[(Sha256Digest, Option<Sha256Digest>)]) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(METADATA)?;
            for (file, metadata) in files {
                let value = metadata.as_ref().map(Sha256Digest::to_hex).unwrap_or_default();
                table.insert(file.to_hex().as_str(), value.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces the TUF targets `project` publishes with `targets` (`(bin, path, TargetFile
    /// JSON)`), marking every bin whose content changed dirty. Returns how many bins changed.
    pub fn set_project_targets(
        &self,
        project: &ProjectName,
        targets: &[(u32, String, Vec<u8>)],
    ) -> Result<usize> {
        let tx = self.begin_write()?;
        let mut dirty = BTreeSet::new();
        {
            let mut by_project = tx.open_table(PROJECT_TARGETS)?;
            let mut table = tx.open_table(TUF_TARGETS)?;
            let old: Vec<(u32, String)> = match by_project.get(project.as_str())? {
                Some(v) => decode(project.as_str(), v.value())?,
                None => Vec::new(),
            };
            let new_keys: BTreeSet<(u32, &str)> = targets.iter().map(|(b, p, _)| (*b, p.as_str())).collect();
            for (bin, path) in &old {
                if !new_keys.contains(&(*bin, path.as_str()))
                    && table.remove((*bin, path.as_str()))?.is_some()
                {
                    dirty.insert(*bin);
                }
            }
            for (bin, path, file) in targets {
                let same = table
                    .get((*bin, path.as_str()))?
                    .is_some_and(|v| v.value() == file.as_slice());
                if !same {
                    table.insert((*bin, path.as_str()), file.as_slice())?;
                    dirty.insert(*bin);
                }
            }
            if targets.is_empty() {
                by_project.remove(project.as_str())?;
            } else {
                let list: Vec<(u32, &str)> = targets.iter().map(|(b, p, _)| (*b, p.as_str())).collect();
                by_project.insert(project.as_str(), encode(project.as_str(), &list)?.as_slice())?;
            }
            let mut dirty_table = tx.open_table(DIRTY_BINS)?;
            for bin in &dirty {
                dirty_table.insert(*bin, ())?;
            }
        }
        tx.commit()?;
        Ok(dirty.len())
    }

    /// The targets of one bin: `(path, TargetFile JSON)`, ordered by path.
    pub fn bin_targets(&self, bin: u32) -> Result<Vec<(String, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TUF_TARGETS)?;
        let mut out = Vec::new();
        for entry in table.range((bin, "")..)? {
            let (k, v) = entry?;
            let (b, path) = k.value();
            if b != bin {
                break;
            }
            out.push((path.to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Calls `f` for every TUF target: `(bin, path, TargetFile JSON)`.
    pub fn for_each_target(&self, mut f: impl FnMut(u32, &str, &[u8])) -> Result<()> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TUF_TARGETS)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (bin, path) = k.value();
            f(bin, path, v.value());
        }
        Ok(())
    }

    /// Marks bins dirty (to be re-signed), e.g. when they near expiry.
    pub fn mark_bins_dirty(&self, bins: impl IntoIterator<Item = u32>) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(DIRTY_BINS)?;
            for bin in bins {
                table.insert(bin, ())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn dirty_bins(&self) -> Result<Vec<u32>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DIRTY_BINS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(entry?.0.value());
        }
        Ok(out)
    }

    /// Current version and expiry (Unix seconds) of every TUF role tufa signs or imported.
    pub fn tuf_roles(&self) -> Result<BTreeMap<String, (u64, i64)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TUF_ROLES)?;
        let mut out = BTreeMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.insert(k.value().to_owned(), v.value());
        }
        Ok(out)
    }

    /// Records new role versions and expiries, and clears the given dirty bins, in one
    /// transaction. Called *before* the metadata files are written, so a crash never reuses a
    /// version number for different content.
    pub fn record_tuf_roles(&self, roles: &[(String, u64, i64)], signed_bins: &[u32]) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(TUF_ROLES)?;
            for (role, version, expires) in roles {
                table.insert(role.as_str(), (*version, *expires))?;
            }
            let mut dirty = tx.open_table(DIRTY_BINS)?;
            for bin in signed_bins {
                dirty.remove(*bin)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Projects changed since the last [`Index::clear_dirty`].
    pub fn dirty_projects(&self) -> Result<Vec<ProjectName>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DIRTY)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, _) = entry?;
            if let Ok(name) = ProjectName::new(k.value()) {
                out.push(name);
            }
        }
        Ok(out)
    }

    pub fn clear_dirty(&self, names: &[ProjectName]) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(DIRTY)?;
            for n in names {
                table.remove(n.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether the index knows no project (a new index, or one `tufa rebuild-index` may
    /// replace without `--force`).
    pub fn has_no_projects(&self) -> Result<bool> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(PROJECTS)?.first()?.is_none())
    }

    /// Writes projects read back from the published tree (`tufa rebuild-index`): each record,
    /// its files, the extracted-metadata cache of its wheels and its TUF targets, in one
    /// transaction, **without** marking any bin dirty, nor any project unless
    /// [`RestoredProject::dirty`] asks (they are published as they are), and without an fsync: the index being rebuilt is a new file that nobody uses until
    /// [`Index::finish_restore`] has made everything durable. A project written twice keeps
    /// the last write.
    pub fn restore_projects(&self, projects: &[RestoredProject]) -> Result<()> {
        let mut tx = self.begin_write()?;
        tx.set_durability(redb::Durability::None)
            .map_err(redb::Error::from)?;
        {
            let mut records = tx.open_table(PROJECTS)?;
            let mut files = tx.open_table(FILES)?;
            let mut metadata = tx.open_table(METADATA)?;
            let mut targets = tx.open_table(TUF_TARGETS)?;
            let mut by_project = tx.open_table(PROJECT_TARGETS)?;
            let mut dirty = tx.open_table(DIRTY)?;
            for p in projects {
                let name = &p.record.name;
                records.insert(name.as_str(), encode(name.as_str(), &p.record)?.as_slice())?;
                if p.dirty {
                    dirty.insert(name.as_str(), ())?;
                } else {
                    dirty.remove(name.as_str())?;
                }
                let (start, end) = file_range(name);
                files.retain_in(start.as_str()..end.as_str(), |_, _| false)?;
                for f in &p.files {
                    let key = file_key(name, &f.filename);
                    files.insert(key.as_str(), encode(&key, f)?.as_slice())?;
                }
                for (file, extracted) in &p.metadata {
                    let value = extracted.map(|d| d.to_hex()).unwrap_or_default();
                    metadata.insert(file.to_hex().as_str(), value.as_str())?;
                }
                if let Some(old) = by_project.get(name.as_str())? {
                    let old: Vec<(u32, String)> = decode(name.as_str(), old.value())?;
                    for (bin, path) in &old {
                        targets.remove((*bin, path.as_str()))?;
                    }
                }
                for (bin, path, file) in &p.targets {
                    targets.insert((*bin, path.as_str()), file.as_slice())?;
                }
                if p.targets.is_empty() {
                    by_project.remove(name.as_str())?;
                } else {
                    let list: Vec<(u32, &str)> = p.targets.iter().map(|(b, t, _)| (*b, t.as_str())).collect();
                    by_project.insert(name.as_str(), encode(name.as_str(), &list)?.as_slice())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Ends a rebuild: records the TUF role versions found in the published tree and the bins
    /// the next publish must re-sign, in one durable transaction, which also makes every
    /// [`Index::restore_projects`] before it durable.
    pub fn finish_restore(&self, roles: &[(String, u64, i64)], dirty_bins: &[u32]) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(TUF_ROLES)?;
            for (role, version, expires) in roles {
                table.insert(role.as_str(), (*version, *expires))?;
            }
            let mut dirty = tx.open_table(DIRTY_BINS)?;
            for bin in dirty_bins {
                dirty.insert(*bin, ())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// One project as `tufa rebuild-index` read it back from the published tree
/// ([`Index::restore_projects`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredProject {
    pub record: ProjectRecord,
    pub files: Vec<FileRecord>,
    /// Wheel sha256 → sha256 of the METADATA extracted from it, `None` when it has none.
    pub metadata: Vec<(Sha256Digest, Option<Sha256Digest>)>,
    /// The project's TUF targets: `(bin, target path, TargetFile JSON)`.
    pub targets: Vec<(u32, String, Vec<u8>)>,
    /// Publish the project again at the next publish (something it published is missing).
    pub dirty: bool,
}

/// [`Index::replace_project`] inside the transaction `tx`.
fn replace_project_in(
    tx: &redb::WriteTransaction,
    record: &ProjectRecord,
    files: &[FileRecord],
) -> Result<ProjectChange> {
    let name = &record.name;
    let mut change = ProjectChange::default();
    {
        let mut projects = tx.open_table(PROJECTS)?;
        let old: Option<ProjectRecord> = projects
            .get(name.as_str())?
            .map(|v| decode(name.as_str(), v.value()))
            .transpose()?;
        if old.as_ref() != Some(record) {
            change.record_changed = true;
            projects.insert(name.as_str(), encode(name.as_str(), record)?.as_slice())?;
        }

        let mut table = tx.open_table(FILES)?;
        let (start, end) = file_range(name);
        let mut existing: BTreeMap<String, FileRecord> = BTreeMap::new();
        for entry in table.range(start.as_str()..end.as_str())? {
            let (k, v) = entry?;
            existing.insert(k.value().to_owned(), decode(k.value(), v.value())?);
        }
        let mut keep = BTreeSet::new();
        for file in files {
            let key = file_key(name, &file.filename);
            match existing.get(&key) {
                Some(old) if old == file => {}
                Some(_) => change.updated += 1,
                None => change.added += 1,
            }
            if existing.get(&key) != Some(file) {
                table.insert(key.as_str(), encode(&key, file)?.as_slice())?;
            }
            keep.insert(key);
        }
        for key in existing.keys().filter(|k| !keep.contains(*k)) {
            table.remove(key.as_str())?;
            change.removed += 1;
        }
        // An approved change, once recorded, is used up.
        let mut approved = tx.open_table(APPROVED_CHANGES)?;
        for file in files {
            let key = file_key(name, &file.filename);
            let used = approved
                .get(key.as_str())?
                .is_some_and(|v| v.value() == file.sha256.to_hex());
            if used {
                approved.remove(key.as_str())?;
            }
        }
        if !change.is_empty() {
            tx.open_table(DIRTY)?.insert(name.as_str(), ())?;
        }
    }
    Ok(change)
}

/// [`Index::finish_pending`] inside the transaction `tx`.
fn finish_pending_in(tx: &redb::WriteTransaction, name: &ProjectName, serial: u64) -> Result<()> {
    let mut table = tx.open_table(PENDING)?;
    let current = table.get(name.as_str())?.map(|v| v.value());
    if current.is_some_and(|c| c <= serial) {
        table.remove(name.as_str())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_writer_is_told_the_index_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let first = Index::open(&path).unwrap();
        let err = Index::open(&path).err().unwrap();
        assert!(matches!(err, IndexError::InUse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("index.redb") && msg.contains("in use by another tufa process"),
            "{msg}"
        );
        drop(first);
        Index::open(&path).unwrap();
    }

    fn file(name: &str, byte: u8) -> FileRecord {
        FileRecord {
            filename: DistFilename::parse(name).unwrap(),
            sha256: Sha256Digest::from_bytes([byte; 32]),
            size: 10,
            requires_python: Some(">=3.8".into()),
            yanked: None,
            upload_time: None,
            core_metadata_sha256: None,
            upstream_url: format!("http://up/{name}"),
            provenance: None,
        }
    }

    fn record(name: &str, serial: u64) -> ProjectRecord {
        ProjectRecord {
            name: ProjectName::new(name).unwrap(),
            last_serial: Some(serial),
            versions: vec![],
            status: None,
        }
    }

    #[test]
    fn replace_adds_updates_removes_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let demo = ProjectName::new("demo").unwrap();
        {
            let index = Index::open(&path).unwrap();
            let change = index
                .replace_project(
                    &record("demo", 1),
                    &[file("demo-1.0.tar.gz", 1), file("demo-1.1.tar.gz", 2)],
                )
                .unwrap();
            assert_eq!((change.added, change.removed, change.updated), (2, 0, 0));
            // A project whose name is a prefix of another must not see its files.
            index
                .replace_project(&record("demo-x", 1), &[file("demo_x-1.0.tar.gz", 9)])
                .unwrap();
            let mut changed = file("demo-1.1.tar.gz", 2);
            changed.yanked = Some("bad".into());
            let change = index
                .replace_project(&record("demo", 2), &[changed, file("demo-2.0.tar.gz", 3)])
                .unwrap();
            assert_eq!((change.added, change.removed, change.updated), (1, 1, 1));
            let again = index
                .replace_project(&record("demo", 2), &index.files(&demo).unwrap())
                .unwrap();
            assert!(again.is_empty());
        }
        let index = Index::open(&path).unwrap();
        let names: Vec<_> = index
            .files(&demo)
            .unwrap()
            .into_iter()
            .map(|f| f.filename.to_string())
            .collect();
        assert_eq!(names, ["demo-1.1.tar.gz", "demo-2.0.tar.gz"]);
        assert_eq!(index.project(&demo).unwrap().unwrap().last_serial, Some(2));
        assert_eq!(index.project_names().unwrap().len(), 2);
        let releases = index.releases(&demo).unwrap();
        assert_eq!(releases.len(), 2);
        let mut n = 0;
        index.for_each_file(|_, _| n += 1).unwrap();
        assert_eq!(n, 3);
        let mut dirty = index.dirty_projects().unwrap();
        dirty.sort();
        assert_eq!(dirty.len(), 2);
        index.clear_dirty(&dirty).unwrap();
        assert!(index.dirty_projects().unwrap().is_empty());
        assert!(index.remove_project(&demo).unwrap());
        assert!(index.files(&demo).unwrap().is_empty());
        assert_eq!(
            index.files(&ProjectName::new("demo-x").unwrap()).unwrap().len(),
            1
        );
        assert_eq!(index.dirty_projects().unwrap(), [demo]);
    }

    #[test]
    fn upstream_serial_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path().join("i.redb")).unwrap();
        assert_eq!(index.upstream_serial().unwrap(), None);
        index.set_upstream_serial(42).unwrap();
        assert_eq!(index.upstream_serial().unwrap(), Some(42));
    }

    #[test]
    fn pending_keeps_highest_serial_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.redb");
        let a = ProjectName::new("a").unwrap();
        let b = ProjectName::new("b").unwrap();
        {
            let index = Index::open(&path).unwrap();
            index.plan_pending(&[(a.clone(), 5), (b.clone(), 3)], 10).unwrap();
            index.plan_pending(&[(a.clone(), 4)], 11).unwrap();
            index.finish_pending(&b, 3).unwrap();
            // Finishing an older serial than planned leaves the project pending.
            index.finish_pending(&a, 4).unwrap();
        }
        let index = Index::open(&path).unwrap();
        assert_eq!(index.pending().unwrap(), [(a.clone(), 5)]);
        assert_eq!(index.upstream_serial().unwrap(), Some(11));
        index.finish_pending(&a, 5).unwrap();
        assert!(index.pending().unwrap().is_empty());
    }

    #[test]
    fn extracted_metadata_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path().join("i.redb")).unwrap();
        let (a, b, m) = (
            Sha256Digest::of(b"a"),
            Sha256Digest::of(b"b"),
            Sha256Digest::of(b"m"),
        );
        assert_eq!(index.extracted_metadata(&a).unwrap(), None);
        index.set_extracted_metadata(&a, Some(&m)).unwrap();
        index.set_extracted_metadata(&b, None).unwrap();
        assert_eq!(index.extracted_metadata(&a).unwrap(), Some(Some(m)));
        assert_eq!(index.extracted_metadata(&b).unwrap(), Some(None));
    }

    #[test]
    fn deferred_writes_are_visible_at_once_and_kept_by_the_next_durable_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let file = Sha256Digest::of(b"wheel");
        let meta = Sha256Digest::of(b"METADATA");
        {
            let index = Index::open(&path).unwrap();
            let deferred = index.with_deferred_durability();
            deferred.set_extracted_metadata(&file, Some(&meta)).unwrap();
            let rows = vec![(7u32, "p/x.whl".to_owned(), b"{}".to_vec())];
            deferred
                .set_project_targets(&ProjectName::new("p").unwrap(), &rows)
                .unwrap();
            // Visible through either handle before anything is durable.
            assert_eq!(index.extracted_metadata(&file).unwrap(), Some(Some(meta)));
            assert_eq!(index.bin_targets(7).unwrap().len(), 1);
            // The durable write that ends a publish.
            index.clear_dirty(&[]).unwrap();
        }
        let index = Index::open(&path).unwrap();
        assert_eq!(index.extracted_metadata(&file).unwrap(), Some(Some(meta)));
        assert_eq!(index.bin_targets(7).unwrap().len(), 1);
    }

    #[test]
    fn tuf_targets_replace_per_project_and_mark_bins() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path().join("i.redb")).unwrap();
        let a = ProjectName::new("a").unwrap();
        let t = |bin: u32, path: &str, body: &str| (bin, path.to_owned(), body.as_bytes().to_vec());
        assert_eq!(
            index
                .set_project_targets(&a, &[t(1, "simple/a/index.html", "x"), t(2, "files/a.whl", "y")])
                .unwrap(),
            2
        );
        assert_eq!(index.dirty_bins().unwrap(), [1, 2]);
        index
            .record_tuf_roles(&[("bin-1".into(), 1, 10), ("bin-2".into(), 1, 10)], &[1, 2])
            .unwrap();
        assert!(index.dirty_bins().unwrap().is_empty());
        // Same targets: nothing dirty. A changed page and a removed file: both bins dirty.
        assert_eq!(
            index
                .set_project_targets(&a, &[t(1, "simple/a/index.html", "x"), t(2, "files/a.whl", "y")])
                .unwrap(),
            0
        );
        assert_eq!(
            index
                .set_project_targets(&a, &[t(1, "simple/a/index.html", "x2")])
                .unwrap(),
            2
        );
        assert_eq!(
            index.bin_targets(1).unwrap(),
            [("simple/a/index.html".to_owned(), b"x2".to_vec())]
        );
        assert!(index.bin_targets(2).unwrap().is_empty());
        assert_eq!(index.tuf_roles().unwrap()["bin-1"], (1, 10));
        index.set_project_targets(&a, &[]).unwrap();
        let mut n = 0;
        index.for_each_target(|_, _, _| n += 1).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn restore_writes_without_dirty_marks_and_finish_makes_it_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.redb");
        let demo = ProjectName::new("demo").unwrap();
        let wheel = file("demo-1.0-py3-none-any.whl", 1);
        let meta = Sha256Digest::of(b"METADATA");
        let restored = RestoredProject {
            record: record("demo", 3),
            files: vec![wheel.clone(), file("demo-1.0.tar.gz", 2)],
            metadata: vec![
                (wheel.sha256, Some(meta)),
                (Sha256Digest::from_bytes([2; 32]), None),
            ],
            targets: vec![
                (1, "simple/demo/index.html".into(), b"h".to_vec()),
                (3, "files/demo-1.0.tar.gz".into(), b"f".to_vec()),
            ],
            dirty: true,
        };
        {
            let index = Index::open(&path).unwrap();
            assert!(index.has_no_projects().unwrap());
            // Written twice (a retried batch): the second write replaces the first.
            index.restore_projects(std::slice::from_ref(&restored)).unwrap();
            assert_eq!(index.dirty_projects().unwrap(), vec![demo.clone()]);
            let mut again = restored.clone();
            again.files.truncate(1);
            again.targets.truncate(1);
            again.dirty = false;
            index.restore_projects(&[again]).unwrap();
            index
                .finish_restore(&[("snapshot".into(), 7, 100), ("bin-3".into(), 2, 50)], &[3])
                .unwrap();
        }
        let index = Index::open(&path).unwrap();
        assert!(!index.has_no_projects().unwrap());
        assert_eq!(index.project(&demo).unwrap(), Some(record("demo", 3)));
        assert_eq!(index.files(&demo).unwrap(), vec![wheel.clone()]);
        assert!(index.dirty_projects().unwrap().is_empty());
        assert_eq!(index.extracted_metadata(&wheel.sha256).unwrap(), Some(Some(meta)));
        assert_eq!(
            index
                .extracted_metadata(&Sha256Digest::from_bytes([2; 32]))
                .unwrap(),
            Some(None)
        );
        let mut targets = Vec::new();
        index
            .for_each_target(|b, p, _| targets.push((b, p.to_owned())))
            .unwrap();
        assert_eq!(targets, [(1, "simple/demo/index.html".to_owned())]);
        assert_eq!(index.dirty_bins().unwrap(), [3]);
        assert_eq!(index.tuf_roles().unwrap()["snapshot"], (7, 100));
        // The restored targets are the project's: replacing them with the same list marks
        // nothing, as after a publish.
        assert_eq!(
            index
                .set_project_targets(&demo, &[(1, "simple/demo/index.html".into(), b"h".to_vec())])
                .unwrap(),
            0
        );
    }

    #[test]
    fn refuses_unknown_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.redb");
        {
            let index = Index::open(&path).unwrap();
            let tx = index.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert(KEY_SCHEMA, 99).unwrap();
            tx.commit().unwrap();
        }
        let err = Index::open(&path).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
