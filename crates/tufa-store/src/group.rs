//! Group commit on the local disk: many blobs made durable with two `syncfs` calls instead of
//! three fsyncs each (see [`BlobStore::with_group_commit`](crate::BlobStore::with_group_commit)).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _};
use tufa_pypi::Sha256Digest;

use crate::{BlobStore, StoreError};

/// Blobs written to `tmp/` without fsync, waiting for [`Group::commit`].
#[derive(Debug)]
pub(crate) struct Group {
    root: PathBuf,
    /// The same directory as the store, without fsync.
    unsynced: Arc<dyn ObjectStore>,
    staged: Mutex<Vec<(Key, Sha256Digest)>>,
    /// Named objects written to `tmp/` (temporary key, final key), replaced at the commit.
    named: Mutex<Vec<(Key, Key)>>,
    /// One commit at a time.
    committing: tokio::sync::Mutex<()>,
}

impl Group {
    pub(crate) fn new(root: PathBuf, unsynced: Arc<dyn ObjectStore>) -> Self {
        Self {
            root,
            unsynced,
            staged: Mutex::new(Vec::new()),
            named: Mutex::new(Vec::new()),
            committing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn unsynced(&self) -> &Arc<dyn ObjectStore> {
        &self.unsynced
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
    /// already there: the temporary is dropped), rename each named object over its key,
    /// `syncfs` again (the links and renames are durable). `check_fence` runs before anything
    /// named is replaced (a writer that lost its lease replaces nothing).
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
        let count = staged.len();
        let mut first_error = None;
        for (temp, digest) in staged {
            let key = BlobStore::key_for(&digest);
            match self.unsynced.rename_if_not_exists(&temp, &key).await {
                Ok(()) => {}
                Err(object_store::Error::AlreadyExists { .. }) => {
                    if let Err(e) = self.unsynced.delete(&temp).await {
                        tracing::warn!(key = %temp, error = %e, "could not remove a temporary blob");
                    }
                }
                Err(source) => {
                    tracing::error!(digest = %digest, error = %source, "could not link a staged blob");
                    first_error.get_or_insert(StoreError::Backend { key, source });
                }
            }
        }
        let count = count + named.len();
        for (temp, key) in named {
            // Blobs first: a named object (a manifest, TUF metadata) may point at them.
            if let Err(e) = check_fence(&key) {
                first_error.get_or_insert(e);
                break;
            }
            if let Err(source) = self.unsynced.rename(&temp, &key).await {
                tracing::error!(key = %key, error = %source, "could not replace a staged named object");
                first_error.get_or_insert(StoreError::Backend { key, source });
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
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let dir = std::fs::File::open(&root)?;
            rustix::fs::syncfs(&dir).map_err(std::io::Error::from)
        })
        .await
        .map_err(|e| StoreError::io(&self.root)(std::io::Error::other(e)))?
        .map_err(StoreError::io(&self.root))
    }
}
