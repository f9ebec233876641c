//! The pieces of a verified put: [`Incoming`] checks and hashes the bytes as they arrive;
//! [`Parts`] writes them to their final key without making them visible before
//! [`Parts::finish`].

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
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

/// Bytes on their way to `key`: buffered until a part is full, then uploaded as parts of a
/// multipart upload (at most `in_flight` at once). Nothing is visible under `key` before
/// [`finish`](Self::finish). Dropped unfinished, the upload is aborted in the background.
pub(crate) struct Parts {
    store: Arc<dyn ObjectStore>,
    key: Key,
    part_size: usize,
    in_flight: usize,
    buffer: Vec<Bytes>,
    buffered: usize,
    upload: Option<Box<dyn MultipartUpload>>,
    tasks: JoinSet<object_store::Result<()>>,
}

impl Parts {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, key: Key, part_size: usize, in_flight: usize) -> Self {
        Self {
            store,
            key,
            part_size,
            in_flight: in_flight.max(1),
            buffer: Vec::new(),
            buffered: 0,
            upload: None,
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

    /// Sends the buffer as one part, starting the upload first if needed.
    async fn upload_buffer(&mut self) -> Result<(), StoreError> {
        if self.upload.is_none() {
            let upload = self
                .store
                .put_multipart(&self.key)
                .await
                .map_err(|e| self.backend(e))?;
            self.upload = Some(upload);
        }
        while self.tasks.len() >= self.in_flight {
            self.join_one().await?;
        }
        let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
        self.buffered = 0;
        if let Some(upload) = self.upload.as_mut() {
            self.tasks.spawn(upload.put_part(payload));
        }
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), StoreError> {
        match self.tasks.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
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
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        match upload.complete().await {
            Ok(_) => Ok(()),
            Err(source) => {
                self.upload = Some(upload);
                Err(self.backend(source))
            }
        }
    }

    /// Abandons the upload: its parts are removed, nothing becomes visible.
    pub(crate) async fn abort(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Some(mut upload) = self.upload.take()
            && let Err(error) = upload.abort().await
        {
            tracing::warn!(key = %self.key, error = %error, "could not abort a multipart upload");
        }
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        self.tasks.abort_all();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let key = self.key.clone();
            runtime.spawn(async move {
                if let Err(error) = upload.abort().await {
                    tracing::warn!(key = %key, error = %error, "could not abort a multipart upload");
                }
            });
        }
    }
}
