//! The pieces of a verified put: [`Incoming`] checks and hashes the bytes as they arrive;
//! [`Parts`] writes them to their final key without making them visible before
//! [`Parts::finish`].
//!
//! On stores with a low-level multipart API ([`Multipart`]: S3, GCS, Azure, memory) every
//! upload is recorded first, as `tmp/multipart-<random>.json` holding its key and upload id, and
//! the record is removed when the upload is completed or aborted. A writer killed mid-upload
//! leaves its record behind; [`crate::BlobStore::remove_stale_temps`] (run by every sync)
//! aborts the upload it names, so its parts stop costing storage.

use std::sync::Arc;

use bytes::Bytes;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    MultipartId, MultipartUpload, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tufa_pypi::{Sha256Digest, Sha256Hasher};

use crate::StoreError;

/// Length and digest checks of an incoming stream.
pub(crate) struct Incoming {
    digest: Sha256Digest,
    expected_len: Option<u64>,
    max_len: u64,
    hasher: Sha256Hasher,
    len: u64,
}

impl Incoming {
    pub(crate) fn new(digest: Sha256Digest, expected_len: Option<u64>, max_len: u64) -> Self {
        Self {
            digest,
            expected_len,
            max_len,
            hasher: Sha256Hasher::new(),
            len: 0,
        }
    }

    /// Counts and hashes one chunk; refuses it when the stream has become too long.
    pub(crate) fn accept(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let digest = self.digest;
        self.len = self.len.saturating_add(chunk.len() as u64);
        if self.len > self.max_len {
            return Err(StoreError::TooLarge {
                digest,
                max: self.max_len,
            });
        }
        if let Some(expected) = self.expected_len
            && self.len > expected
        {
            return Err(StoreError::LengthMismatch {
                digest,
                expected,
                actual: self.len,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub(crate) fn source_error(&self, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Source {
            digest: self.digest,
            source: Box::new(source),
        }
    }

    /// The stream ended: its length when length and digest match.
    pub(crate) fn finish(self) -> Result<u64, StoreError> {
        let Self {
            digest,
            expected_len,
            hasher,
            len,
            ..
        } = self;
        if let Some(expected) = expected_len
            && len != expected
        {
            return Err(StoreError::LengthMismatch {
                digest,
                expected,
                actual: len,
            });
        }
        let actual = hasher.finish();
        if actual != digest {
            return Err(StoreError::Mismatch {
                expected: digest,
                actual,
                len,
            });
        }
        Ok(len)
    }
}

/// A store's low-level multipart API, with the prefix the blob store lives under.
#[derive(Clone)]
pub(crate) struct Multipart {
    store: Arc<dyn MultipartStore>,
    prefix: String,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multipart").field("prefix", &self.prefix).finish()
    }
}

/// What `tmp/multipart-<random>.json` holds.
#[derive(Serialize, Deserialize)]
struct Record {
    /// The blob key, relative to the blob store (no prefix).
    key: String,
    id: MultipartId,
}

const RECORD_PREFIX: &str = "multipart-";

impl Multipart {
    pub(crate) fn new(store: Arc<dyn MultipartStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// `key` as the underlying store names it.
    fn full(&self, key: &Key) -> Key {
        if self.prefix.is_empty() {
            key.clone()
        } else {
            Key::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Whether a name under `tmp/` is an upload record.
    pub(crate) fn is_record(name: &str) -> bool {
        name.starts_with(RECORD_PREFIX)
    }

    /// Aborts the upload the record at `record` (a `tmp/` key of `objects`) names. A record that
    /// is gone or unreadable, or an upload that no longer exists, is fine: there is nothing
    /// left to abort.
    pub(crate) async fn abort_recorded(
        &self,
        objects: &Arc<dyn ObjectStore>,
        record: &Key,
    ) -> Result<(), StoreError> {
        let data = match objects.get(record).await {
            Ok(r) => r.bytes().await.map_err(StoreError::backend(record))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(source) => return Err(StoreError::backend(record)(source)),
        };
        let Ok(entry) = serde_json::from_slice::<Record>(&data) else {
            tracing::warn!(record = %record, "unreadable multipart upload record; removing it");
            return Ok(());
        };
        let key = self.full(&Key::from(entry.key.as_str()));
        match self.store.abort_multipart(&key, &entry.id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                tracing::info!(key = %key, "aborted a multipart upload left by an interrupted run");
                Ok(())
            }
            Err(source) => Err(StoreError::Backend { key, source }),
        }
    }
}

/// The multipart upload behind [`Parts`].
enum Upload {
    /// Through `ObjectStore::put_multipart` (stores without the low-level API). In a mutex
    /// only so that `Parts` is `Sync` (it is always reached through `&mut`, `get_mut`).
    Simple(std::sync::Mutex<Box<dyn MultipartUpload>>),
    /// Through the low-level API, recorded under `tmp/`.
    Tracked {
        multipart: Multipart,
        id: MultipartId,
        record: Key,
        parts: Vec<Option<PartId>>,
    },
}

type PartResult = object_store::Result<Option<(usize, PartId)>>;

/// Bytes on their way to `key`: buffered until a part is full, then uploaded as parts of a
/// multipart upload (at most `in_flight` at once). Nothing is visible under `key` before
/// [`finish`](Self::finish). Dropped unfinished, the upload is aborted in the background.
pub(crate) struct Parts {
    store: Arc<dyn ObjectStore>,
    multipart: Option<Multipart>,
    key: Key,
    part_size: usize,
    in_flight: usize,
    buffer: Vec<Bytes>,
    buffered: usize,
    upload: Option<Upload>,
    next_part: usize,
    tasks: JoinSet<PartResult>,
}

impl Parts {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        multipart: Option<Multipart>,
        key: Key,
        part_size: usize,
        in_flight: usize,
    ) -> Self {
        Self {
            store,
            multipart,
            key,
            part_size,
            in_flight: in_flight.max(1),
            buffer: Vec::new(),
            buffered: 0,
            upload: None,
            next_part: 0,
            tasks: JoinSet::new(),
        }
    }

    fn backend(&self, source: object_store::Error) -> StoreError {
        StoreError::Backend {
            key: self.key.clone(),
            source,
        }
    }

    pub(crate) async fn push(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.buffered += chunk.len();
        self.buffer.push(chunk);
        if self.buffered >= self.part_size {
            self.upload_buffer().await?;
        }
        Ok(())
    }

    /// Starts the upload: recorded first when the store has the low-level API.
    async fn start(&self) -> Result<Upload, StoreError> {
        let Some(multipart) = &self.multipart else {
            let upload = self
                .store
                .put_multipart(&self.key)
                .await
                .map_err(|e| self.backend(e))?;
            return Ok(Upload::Simple(std::sync::Mutex::new(upload)));
        };
        let full = multipart.full(&self.key);
        let id = multipart
            .store
            .create_multipart(&full)
            .await
            .map_err(|e| self.backend(e))?;
        let name = format!("{RECORD_PREFIX}{}.json", hex::encode(rand::random::<[u8; 16]>()));
        let record = Key::from_iter([crate::TEMP_PREFIX, name.as_str()]);
        let entry = Record {
            key: self.key.to_string(),
            id: id.clone(),
        };
        let data = serde_json::to_vec(&entry).unwrap_or_default();
        if let Err(source) = self.store.put(&record, data.into()).await {
            // Unrecorded, the upload could be orphaned: give it up now.
            let _ = multipart.store.abort_multipart(&full, &id).await;
            return Err(StoreError::Backend { key: record, source });
        }
        Ok(Upload::Tracked {
            multipart: multipart.clone(),
            id,
            record,
            parts: Vec::new(),
        })
    }

    /// Sends the buffer as one part, starting the upload first if needed.
    async fn upload_buffer(&mut self) -> Result<(), StoreError> {
        if self.upload.is_none() {
            self.upload = Some(self.start().await?);
        }
        while self.tasks.len() >= self.in_flight {
            self.join_one().await?;
        }
        let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
        self.buffered = 0;
        let index = self.next_part;
        self.next_part += 1;
        match self.upload.as_mut() {
            Some(Upload::Simple(upload)) => {
                let upload = upload
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let part = upload.put_part(payload);
                self.tasks.spawn(async move { part.await.map(|()| None) });
            }
            Some(Upload::Tracked { multipart, id, .. }) => {
                let (store, key, id) = (
                    Arc::clone(&multipart.store),
                    multipart.full(&self.key),
                    id.clone(),
                );
                self.tasks.spawn(async move {
                    let part = store.put_part(&key, &id, index, payload).await?;
                    Ok(Some((index, part)))
                });
            }
            None => {}
        }
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), StoreError> {
        match self.tasks.join_next().await {
            None | Some(Ok(Ok(None))) => Ok(()),
            Some(Ok(Ok(Some((index, part))))) => {
                if let Some(Upload::Tracked { parts, .. }) = self.upload.as_mut() {
                    if parts.len() <= index {
                        parts.resize(index + 1, None);
                    }
                    if let Some(slot) = parts.get_mut(index) {
                        *slot = Some(part);
                    }
                }
                Ok(())
            }
            Some(Ok(Err(source))) => Err(self.backend(source)),
            Some(Err(join)) => Err(self.backend(object_store::Error::Generic {
                store: "tufa-store",
                source: Box::new(join),
            })),
        }
    }

    /// Makes the bytes visible: one create-if-absent put when they fit one part, else the last
    /// part and the completion of the upload. Returns whether they were stored (`false`: a
    /// blob appeared under the key meanwhile, and was left alone).
    pub(crate) async fn finish(mut self) -> Result<bool, StoreError> {
        if self.upload.is_none() {
            let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
            let create = PutOptions::from(PutMode::Create);
            return match self.store.put_opts(&self.key, payload.clone(), create).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                // No conditional put on this store: the bytes are verified, and overwriting a
                // blob with the same bytes is harmless.
                Err(
                    object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
                ) => {
                    self.store
                        .put(&self.key, payload)
                        .await
                        .map_err(|e| self.backend(e))?;
                    Ok(true)
                }
                Err(source) => Err(self.backend(source)),
            };
        }
        let result = self.complete().await;
        if result.is_err() {
            self.abort().await;
        }
        result.map(|()| true)
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        if !self.buffer.is_empty() {
            self.upload_buffer().await?;
        }
        while !self.tasks.is_empty() {
            self.join_one().await?;
        }
        let completed = match self.upload.as_mut() {
            None => return Ok(()),
            Some(Upload::Simple(upload)) => {
                let upload = upload
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                upload.complete().await.map(drop)
            }
            Some(Upload::Tracked {
                multipart, id, parts, ..
            }) => {
                let Some(parts) = parts.iter().cloned().collect::<Option<Vec<PartId>>>() else {
                    return Err(self.backend(object_store::Error::Generic {
                        store: "tufa-store",
                        source: "a part of the upload is missing".into(),
                    }));
                };
                multipart
                    .store
                    .complete_multipart(&multipart.full(&self.key), id, parts)
                    .await
                    .map(drop)
            }
        };
        completed.map_err(|e| self.backend(e))?;
        if let Some(Upload::Tracked { record, .. }) = self.upload.take() {
            remove_record(&self.store, &record).await;
        }
        Ok(())
    }

    /// Abandons the upload: its parts are removed, nothing becomes visible.
    pub(crate) async fn abort(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Some(upload) = self.upload.take() {
            abort_upload(Arc::clone(&self.store), self.key.clone(), upload).await;
        }
    }
}

async fn abort_upload(store: Arc<dyn ObjectStore>, key: Key, upload: Upload) {
    let result = match upload {
        Upload::Simple(upload) => {
            let mut upload = upload
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            upload.abort().await
        }
        Upload::Tracked {
            multipart,
            id,
            record,
            ..
        } => {
            let result = multipart.store.abort_multipart(&multipart.full(&key), &id).await;
            if result.is_ok() {
                remove_record(&store, &record).await;
            }
            result
        }
    };
    if let Err(error) = result {
        tracing::warn!(key = %key, error = %error, "could not abort a multipart upload");
    }
}

/// Removes an upload record; a failure only leaves work for the next sweep.
async fn remove_record(store: &Arc<dyn ObjectStore>, record: &Key) {
    match store.delete(record).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(error) => tracing::warn!(record = %record, error = %error, "could not remove an upload record"),
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        self.tasks.abort_all();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(abort_upload(Arc::clone(&self.store), self.key.clone(), upload));
        }
    }
}
