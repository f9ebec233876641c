//! Group commit on the local disk: many blobs made durable with two `syncfs` calls instead of
//! three fsyncs each (see [`BlobStore::with_group_commit`](crate::BlobStore::with_group_commit)).
//!
//! Staged files are written with `std::fs` on the blocking pool, one hand-off per batch of
//! chunks (a small file: one in all), and a commit links or renames all of its files in one
//! blocking call: object_store's local backend would take several blocking hand-offs per file
//! (create, each part, complete, link, remove), and on a cold sync of small files those thread
//! switches, not the bytes, were most of the CPU time.

use std::io::Write as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Mutex, PoisonError};

use object_store::path::Path as Key;
use tufa_pypi::Sha256Digest;

use crate::{BlobStore, StoreError};

/// Blobs written to `tmp/` without fsync, waiting for [`Group::commit`].
#[derive(Debug)]
pub(crate) struct Group {
    root: PathBuf,
    staged: Mutex<Vec<(Key, Sha256Digest)>>,
    /// Named objects written to `tmp/` (temporary key, final key), replaced at the commit.
    named: Mutex<Vec<(Key, Key)>>,
    /// One commit at a time.
    committing: tokio::sync::Mutex<()>,
}

impl Group {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            staged: Mutex::new(Vec::new()),
            named: Mutex::new(Vec::new()),
            committing: tokio::sync::Mutex::new(()),
        }
    }

    /// The file a staged key is written to.
    pub(crate) fn path(&self, key: &Key) -> PathBuf {
        key_path(&self.root, key)
    }

    pub(crate) fn stage(&self, temp: Key, digest: Sha256Digest) {
        self.lock().push((temp, digest));
    }

    pub(crate) fn stage_named(&self, temp: Key, key: Key) {
        self.named
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((temp, key));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Sha256Digest)>> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `syncfs` (the staged files' bytes are durable), link each blob to its address (a blob
    /// already there: the temporary is dropped), `syncfs` when named objects follow, rename
    /// each named object over its key, `syncfs` again (the links and renames are durable).
    /// `check_fence` runs before anything named is replaced (a writer that lost its lease
    /// replaces nothing).
    pub(crate) async fn commit(
        &self,
        check_fence: impl Fn(&Key) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let _one = self.committing.lock().await;
        let staged = std::mem::take(&mut *self.lock());
        let named = std::mem::take(&mut *self.named.lock().unwrap_or_else(PoisonError::into_inner));
        if staged.is_empty() && named.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.syncfs().await {
            // Nothing was linked: everything stays staged for the next commit.
            self.lock().extend(staged);
            self.named
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(named);
            return Err(e);
        }
        let count = staged.len() + named.len();
        let mut first_error = None;
        // Blobs first: a named object (a manifest, TUF metadata) may point at them. When both
        // are in the group, the links are made durable before any named object is replaced,
        // so no crash leaves a named object pointing at a blob that is not there.
        if !staged.is_empty() {
            let root = self.root.clone();
            let failures =
                crate::run_blocking(self.root.clone(), move || Ok(link_blobs(&root, staged))).await?;
            if let Some((key, source)) = failures.into_iter().next() {
                first_error = Some(StoreError::io(key_path(&self.root, &key))(source));
            }
            if !named.is_empty() && first_error.is_none() {
                self.syncfs().await?;
            }
        }
        if first_error.is_some() && !named.is_empty() {
            // A named object may point at the blob that is missing: none is replaced (the
            // temporaries stay for the sweep; the writer publishes again).
            tracing::error!(
                objects = named.len(),
                "named objects not replaced: a blob of their group is missing"
            );
        } else if !named.is_empty() {
            match named.iter().try_for_each(|(_, key)| check_fence(key)) {
                // A writer that lost its lease replaces nothing.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(()) => {
                    let root = self.root.clone();
                    let failures =
                        crate::run_blocking(self.root.clone(), move || Ok(rename_named(&root, named)))
                            .await?;
                    if let Some((key, source)) = failures.into_iter().next() {
                        first_error.get_or_insert(StoreError::io(key_path(&self.root, &key))(source));
                    }
                }
            }
        }
        self.syncfs().await?;
        tracing::debug!(objects = count, "group committed");
        match first_error {
            Some(error) => Err(error),
            None => Ok(count),
        }
    }

    async fn syncfs(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        crate::run_blocking(self.root.clone(), move || {
            let dir = std::fs::File::open(&root)?;
            rustix::fs::syncfs(&dir).map_err(std::io::Error::from)
        })
        .await
    }
}

/// The file of `key` under `root`.
pub(crate) fn key_path(root: &FsPath, key: &Key) -> PathBuf {
    key.parts()
        .fold(root.to_path_buf(), |path, part| path.join(part.as_ref()))
}

/// Writes `chunks` to the staged file at `path`: appended to `file` when it is already open,
/// else to a new file (which must not exist; `tmp/` is created when missing). No fsync: the
/// group commit's `syncfs` makes it durable. Blocking.
pub(crate) fn write_staged(
    file: Option<std::fs::File>,
    path: &FsPath,
    chunks: &[bytes::Bytes],
) -> std::io::Result<std::fs::File> {
    let mut file = match file {
        Some(file) => file,
        None => with_parent(path, || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
        })?,
    };
    for chunk in chunks {
        file.write_all(chunk)?;
    }
    Ok(file)
}

/// Runs `op`, creating the parent directory of `to` first when `op` says it is missing.
fn with_parent<T>(to: &FsPath, op: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match op() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            op()
        }
        other => other,
    }
}

/// Links each staged blob to its address (create-if-absent: a hard link), then removes the
/// temporary name; a blob already at the address keeps its file and the temporary is removed.
/// Returns the failures (the temporary stays, for the sweep). Blocking.
fn link_blobs(root: &FsPath, staged: Vec<(Key, Sha256Digest)>) -> Vec<(Key, std::io::Error)> {
    let mut failures = Vec::new();
    for (temp, digest) in staged {
        let from = key_path(root, &temp);
        let key = BlobStore::key_for(&digest);
        let to = key_path(root, &key);
        match with_parent(&to, || move_if_absent(&from, &to)) {
            Ok(true) => continue,
            // Already stored: the temporary is dropped below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Ok(false) => {}
            Err(source) => {
                tracing::error!(digest = %digest, error = %source, "could not link a staged blob");
                failures.push((key, source));
                continue;
            }
        }
        if let Err(e) = std::fs::remove_file(&from) {
            tracing::warn!(key = %temp, error = %e, "could not remove a temporary blob");
        }
    }
    failures
}

/// Moves `from` to `to` unless `to` exists (then `AlreadyExists`). `Ok(true)`: `from` is gone;
/// `Ok(false)`: `to` was linked and `from` is still there. On Linux one `renameat2` with
/// `RENAME_NOREPLACE`; where the file system refuses it, and elsewhere, a hard link.
fn move_if_absent(from: &FsPath, to: &FsPath) -> std::io::Result<bool> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(true),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::hard_link(from, to).map(|()| false)
}

/// Renames each staged named object over its key. Returns the failures. Blocking.
fn rename_named(root: &FsPath, named: Vec<(Key, Key)>) -> Vec<(Key, std::io::Error)> {
    let mut failures = Vec::new();
    for (temp, key) in named {
        let (from, to) = (key_path(root, &temp), key_path(root, &key));
        if let Err(source) = with_parent(&to, || std::fs::rename(&from, &to)) {
            tracing::error!(key = %key, error = %source, "could not replace a staged named object");
            failures.push((key, source));
        }
    }
    failures
}
