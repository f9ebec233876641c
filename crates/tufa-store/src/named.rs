//! Named objects: the few small, mutable documents that point into the blob store (for
//! example the published manifest of each project). Unlike blobs they are replaced in place;
//! each put is atomic (object_store writes a temporary and renames on local disk, and object
//! puts are atomic on S3, GCS and Azure), so a reader sees the old or the new document, never
//! a mix. Their keys never live under [`BLOB_PREFIX`](crate::BLOB_PREFIX) or
//! [`TEMP_PREFIX`](crate::TEMP_PREFIX).

use bytes::Bytes;
use futures::StreamExt as _;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt as _, PutPayload};

use crate::{BLOB_PREFIX, BlobStore, StoreError, TEMP_PREFIX};

/// Checks a named key: `/`-separated segments of `[A-Za-z0-9._-]`, no empty, `.` or `..`
/// segment, not under the blob or temp prefixes.
fn named_key(key: &str) -> Result<Key, StoreError> {
    let ok_segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let first = key.split('/').next().unwrap_or("");
    if !key.split('/').all(ok_segment)
        || first == TEMP_PREFIX
        || key.starts_with(BLOB_PREFIX)
        || first == "blobs"
    {
        return Err(StoreError::BadKey(key.escape_debug().collect()));
    }
    Ok(Key::from(key))
}

impl BlobStore {
    /// With a lease fence, `Err(LeaseLost)` once the writer's lease is lost.
    pub(crate) fn check_fence(&self, key: &Key) -> Result<(), StoreError> {
        match &self.fence {
            Some(fence) => fence.ensure_held().map_err(|source| StoreError::LeaseLost {
                key: key.to_string(),
                source: Box::new(source),
            }),
            None => Ok(()),
        }
    }

    /// Writes (or replaces) the named object `key` atomically. On local disk, durable when this
    /// returns (the store fsyncs).
    pub async fn put_named(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let key = named_key(key)?;
        self.check_fence(&key)?;
        self.object_store()
            .put(&key, PutPayload::from(data))
            .await
            .map_err(StoreError::backend(&key))?;
        Ok(())
    }

    /// On the local backend, the file that holds (or would hold) the named object `key`;
    /// `None` on other backends or for a key [`put_named`](Self::put_named) would refuse.
    pub fn local_named_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let key = named_key(key).ok()?;
        match &self.backend {
            crate::Backend::Local { root } => Some(crate::group::key_path(root, &key)),
            crate::Backend::Memory | crate::Backend::Other => None,
        }
    }

    /// In group-commit mode ([`with_group_commit`](Self::with_group_commit)) on the local
    /// disk: writes the named object `key` to `tmp/` without fsync; it replaces `key` at the
    /// next [`commit_group`](Self::commit_group), after that commit's blobs and only while
    /// the writer's lease is held. Until then readers see the old object. Elsewhere, the same
    /// as [`put_named`](Self::put_named).
    pub async fn put_named_staged(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.put_named_staged_many(vec![(key.to_owned(), data)]).await
    }

    /// [`put_named_staged`](Self::put_named_staged) for many objects at once: on the local
    /// disk in group-commit mode all of them are written in one blocking call (a first TUF
    /// publish stages 16,384 bins).
    pub async fn put_named_staged_many(&self, objects: Vec<(String, Bytes)>) -> Result<(), StoreError> {
        let Some(group) = &self.group else {
            for (key, data) in objects {
                self.put_named(&key, data).await?;
            }
            return Ok(());
        };
        let mut files = Vec::with_capacity(objects.len());
        for (key, data) in objects {
            let key = named_key(&key)?;
            self.check_fence(&key)?;
            let temp = crate::TempObject::new(std::sync::Arc::clone(self.object_store()));
            files.push((temp, key, data));
        }
        let paths: Vec<_> = files
            .iter()
            .map(|(temp, _, data)| (group.path(&temp.key), data.clone()))
            .collect();
        let dir = paths.first().map(|(p, _)| p.clone()).unwrap_or_default();
        crate::run_blocking(dir, move || {
            for (path, data) in &paths {
                crate::group::write_staged(None, path, std::slice::from_ref(data))?;
            }
            Ok(())
        })
        .await?;
        for (temp, key, _) in files {
            group.stage_named(temp.key.clone(), key);
            temp.disarm();
        }
        Ok(())
    }

    /// Reads the named object `key`, or `None` when it does not exist.
    pub async fn get_named(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let key = named_key(key)?;
        match self.object_store().get(&key).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(StoreError::backend(&key))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::backend(&key)(e)),
        }
    }

    /// Deletes the named object `key`; a missing one is fine.
    pub async fn delete_named(&self, key: &str) -> Result<(), StoreError> {
        let key = named_key(key)?;
        self.check_fence(&key)?;
        match self.object_store().delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::backend(&key)(e)),
        }
    }

    /// Streams the names of the objects directly under `prefix` (recursively),
    /// as their last path segment, in the backend's order, without
    /// holding the listing in memory.
    pub fn list_named(
        &self,
        prefix: &str,
    ) -> futures::stream::BoxStream<'static, Result<String, StoreError>> {
        let key = match named_key(prefix) {
            Ok(k) => k,
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        self.object_store()
            .list(Some(&key))
            .map(move |r| match r {
                Ok(meta) => Ok(meta.location.filename().unwrap_or_default().to_owned()),
                Err(e) => Err(StoreError::backend(&key)(e)),
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rejects_bad_keys() {
        for bad in [
            "",
            "a//b",
            "../x",
            "a/../b",
            "tmp/x",
            "blobs/sha256/aa",
            "blobs",
            "a/b c",
            "a/\0",
            "./a",
        ] {
            assert!(named_key(bad).is_err(), "{bad:?}");
        }
        assert!(named_key("published/projects/foo-bar.json").is_ok());
    }

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        for store in [BlobStore::memory(), BlobStore::local(dir.path()).unwrap()] {
            assert_eq!(store.get_named("p/a.json").await.unwrap(), None);
            store
                .put_named("p/a.json", Bytes::from_static(b"1"))
                .await
                .unwrap();
            store
                .put_named("p/a.json", Bytes::from_static(b"2"))
                .await
                .unwrap();
            store
                .put_named("p/b.json", Bytes::from_static(b"3"))
                .await
                .unwrap();
            assert_eq!(
                store.get_named("p/a.json").await.unwrap().unwrap(),
                Bytes::from_static(b"2")
            );
            let mut names: Vec<String> = store.list_named("p").map(|r| r.unwrap()).collect().await;
            names.sort();
            assert_eq!(names, ["a.json", "b.json"]);
            store.delete_named("p/a.json").await.unwrap();
            store.delete_named("p/a.json").await.unwrap();
            assert_eq!(store.get_named("p/a.json").await.unwrap(), None);
        }
    }
}
