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
    /// One commit at a time.
    committing: tokio::sync::Mutex<()>,
}

impl Group {
    pub(crate) fn new(root: PathBuf, unsynced: Arc<dyn ObjectStore>) -> Self {
        Self {
            root,
            unsynced,
            staged: Mutex::new(Vec::new()),
            committing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn unsynced(&self) -> &Arc<dyn ObjectStore> {
        &self.unsynced
    }

    pub(crate) fn stage(&self, temp: Key, digest: Sha256Digest) {
        self.lock().push((temp, digest));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Sha256Digest)>> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `syncfs` (the staged files' bytes are durable), link each to its address (a blob
    /// already there: the temporary is dropped), `syncfs` again (the links are durable).
    pub(crate) async fn commit(&self) -> Result<usize, StoreError> {
        let _one = self.committing.lock().await;
        let staged = std::mem::take(&mut *self.lock());
        if staged.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.syncfs().await {
            // Nothing was linked: the blobs stay staged for the next commit.
            self.lock().extend(staged);
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
        self.syncfs().await?;
        tracing::debug!(blobs = count, "group committed");
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
