//! `tufa-store`: a content-addressed store of immutable blobs on an [`object_store`].
//!
//! Owns [`BlobStore`]: every blob (a distribution file, a rendered page) is stored once under
//! its sha256, at the key `blobs/sha256/<h0h1>/<h2h3>/<64 hex>` (see [`BlobStore::key_for`]).
//! Backends: the local disk ([`BlobStore::local`]), memory for tests ([`BlobStore::memory`]),
//! S3, GCS and Azure by URL ([`BlobStore::open`]), and any other [`ObjectStore`]
//! ([`BlobStore::from_object_store`]).
//!
//! # Invariant: nothing unverified is ever visible
//!
//! [`BlobStore::put_stream`] hashes the incoming bytes while writing them, enforces a size
//! limit, and makes them visible under their address only when the stream has ended and both
//! digest and length match. On any failure (mismatch, limit, input error, cancellation)
//! nothing appears under the address. An existing blob is never replaced by different bytes.
//!
//! - **Local disk**: the bytes go to a temporary key `tmp/<random hex>` (a multipart upload,
//!   so memory stays bounded: at most a few 5 MiB parts in flight), which is moved to its
//!   address with an atomic create-if-absent (`rename_if_not_exists`), or removed.
//! - **Object stores** (S3, GCS, Azure; memory in tests): the bytes go straight to the
//!   address, which shows nothing until the upload completes: a blob of one part (5 MiB) is
//!   held in memory and written with one create-if-absent put after the check; a larger one is
//!   a multipart upload whose parts are invisible until it is completed — after the check — and
//!   which is aborted on failure or cancellation. No copy, so no 5 GB copy limit and no second
//!   pass over the bytes. Every multipart upload is recorded first as
//!   `tmp/multipart-<random>.json` (its key and upload id) and the record removed when the
//!   upload is completed or aborted; a writer killed mid-upload leaves an incomplete upload no
//!   reader can see, and its record, and [`BlobStore::remove_stale_temps`] (run by every sync)
//!   aborts it. A bucket lifecycle rule `AbortIncompleteMultipartUpload` is the backstop for
//!   records that were never written (docs/DEPLOYMENT.md).
//!
//! [`BlobStore::put_bytes`] hashes the bytes it is given and writes them with one atomic
//! create-if-absent `put`, so it is verified by construction.
//!
//! Where the store lives is a URL ([`StoreLocation`], `file://`, `s3://`, `gs://`, `az://`,
//! `memory://`), opened with [`BlobStore::open`] through object_store's builders.
//!
//! # Durability on local disk
//!
//! The local backend is object_store's [`LocalFileSystem`] with
//! [`with_fsync(true)`](LocalFileSystem::with_fsync) (off by default in object_store). With it,
//! completing the upload `sync_all`s the file before renaming it into `tmp/` and fsyncs `tmp/`;
//! publishing hard-links the file to its address and fsyncs the address's directory (and every
//! directory it had to create, up to the first existing one) before the temporary name is
//! removed. So when `put_stream`/`put_bytes` return, the blob's bytes and its directory entry
//! are on stable storage: write, fsync, rename, fsync the directory (DESIGN.md, "Durability
//! rules"). A crash can leave garbage under `tmp/` (including object_store's `tmp/<x>#<n>`
//! staging files), never a partial blob under `blobs/`; [`BlobStore::remove_stale_temps`]
//! sweeps it.
//!
//! A writer that stores many blobs at once (the sync) uses
//! [`BlobStore::with_group_commit`]: blobs are written to `tmp/` without fsync, and
//! [`BlobStore::commit_group`] makes all of them durable with one `syncfs`, links each to its
//! address and makes the links durable with a second `syncfs`. The rule above still holds
//! (what is under `blobs/` is complete and durable); the writer records a blob in its index
//! only after the commit that published it.
//!
//! # One writer
//!
//! [`lease`] holds the single-writer lease (`lease/writer.json`): conditional puts to take,
//! renew and take over a lease, and the [`LeaseFence`] that makes a [`BlobStore`]'s named
//! writes ([`BlobStore::with_lease_fence`]) refuse to run once the writer has lost it.
//!
//! Reads go through object_store too, except [`BlobStore::verify`] on the local backend, which
//! hashes the file on a blocking thread with a large buffer.
//!
//! Must not know about: HTTP, TUF, the index, project or file names.

mod error;
mod group;
pub mod lease;
mod location;
mod named;
mod upload;

use std::convert::Infallible;
use std::io::Read as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, WriteMultipart};
use tufa_pypi::{Sha256Digest, Sha256Hasher};

pub use error::StoreError;
pub use lease::{Lease, LeaseError, LeaseFence, LeaseHolder, LeaseRecord, LeaseTiming};
pub use location::{CloudOptions, StoreLocation};

/// Key prefix of all blobs.
pub const BLOB_PREFIX: &str = "blobs/sha256";
/// Key prefix of temporary objects (uploads in flight, or left over by a crash).
pub const TEMP_PREFIX: &str = "tmp";

/// Size of one multipart upload part. 5 MiB is S3's minimum part size.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploading at once; with the part being filled this bounds a put's buffers to
/// `(MAX_PARTS_IN_FLIGHT + 1) * PART_SIZE`.
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// Buffers up to this size are hashed on the calling task; larger ones on a blocking thread.
const INLINE_HASH_LIMIT: usize = 256 * 1024;
/// Bytes a staged local write hands to the blocking pool at once (see `put_staged`).
const STAGED_WRITE_BATCH: usize = 1024 * 1024;
/// Read buffer for hashing local files.
const LOCAL_READ_BUF: usize = 1024 * 1024;

/// Installs rustls' ring provider as the process-wide default, which object_store's cloud
/// clients (reqwest on rustls) need; call it before building an object store by hand.
/// [`BlobStore::open`] does. Installing it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The result of a successful [`BlobStore::put_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The verified bytes were stored under their address.
    Stored { len: u64 },
    /// The bytes were verified, but a blob was already stored under the address; it was left
    /// alone.
    AlreadyPresent { len: u64 },
}

impl PutOutcome {
    /// The length of the verified bytes.
    pub fn len(&self) -> u64 {
        match *self {
            Self::Stored { len } | Self::AlreadyPresent { len } => len,
        }
    }

    /// Whether the verified blob was empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The result of [`BlobStore::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The blob is present and hashes to its address.
    Ok { len: u64 },
    /// No blob is stored under the address.
    Missing,
    /// The stored bytes hash to `actual` instead.
    Corrupt { actual: Sha256Digest },
}

#[derive(Debug, Clone)]
enum Backend {
    Memory,
    Local { root: PathBuf },
    Other,
}

/// Immutable blobs addressed by their sha256, on an object store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    description: String,
    /// The same store's low-level multipart API, when it has one (S3, GCS, Azure, memory):
    /// uploads are then recorded under `tmp/` so a killed writer's are aborted later.
    multipart: Option<upload::Multipart>,
    /// When set, every named write checks that the writer still holds its lease
    /// ([`with_lease_fence`](Self::with_lease_fence)).
    fence: Option<LeaseFence>,
    /// Local disk in group-commit mode ([`with_group_commit`](Self::with_group_commit)).
    group: Option<Arc<group::Group>>,
}

impl BlobStore {
    /// A store on the local disk under `root`, which is created if missing. Writes are fsynced
    /// (see the crate docs).
    pub fn local(root: impl AsRef<FsPath>) -> Result<Self, StoreError> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(StoreError::io(root))?;
        let root = std::fs::canonicalize(root).map_err(StoreError::io(root))?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|source| StoreError::Open {
                root: root.clone(),
                source,
            })?
            .with_fsync(true);
        Ok(Self {
            store: Arc::new(fs),
            description: format!("local:{}", root.display()),
            backend: Backend::Local { root },
            multipart: None,
            fence: None,
            group: None,
        })
    }

    /// A store in memory, for tests.
    pub fn memory() -> Self {
        let memory = Arc::new(InMemory::new());
        Self {
            store: Arc::clone(&memory) as Arc<dyn ObjectStore>,
            backend: Backend::Memory,
            description: "memory".to_owned(),
            multipart: Some(upload::Multipart::new(memory, "")),
            fence: None,
            group: None,
        }
    }

    /// A store on a cloud object store (S3, GCS, Azure) under `prefix` (empty: the bucket's
    /// root). Its multipart API records every upload in flight, so uploads a killed writer left
    /// behind are aborted by [`remove_stale_temps`](Self::remove_stale_temps).
    pub fn from_cloud_store<T: ObjectStore + MultipartStore>(
        store: Arc<T>,
        prefix: &str,
        description: String,
    ) -> Self {
        let objects: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::clone(&store) as Arc<dyn ObjectStore>
        } else {
            Arc::new(PrefixStore::new(Arc::clone(&store), prefix))
        };
        Self {
            store: objects,
            backend: Backend::Other,
            description,
            multipart: Some(upload::Multipart::new(store, prefix)),
            fence: None,
            group: None,
        }
    }

    /// A store on any object store (S3 and the like). `description` is what
    /// [`describe`](Self::describe) returns.
    pub fn from_object_store(store: Arc<dyn ObjectStore>, description: String) -> Self {
        Self {
            store,
            backend: Backend::Other,
            description,
            multipart: None,
            fence: None,
            group: None,
        }
    }

    /// The same store, with every named write (manifests, TUF metadata, the publish pointer:
    /// [`put_named`](Self::put_named), [`delete_named`](Self::delete_named)) first checking
    /// that the writer's lease is still held; a lost lease fails the write with
    /// [`StoreError::LeaseLost`] before anything is written. Blobs are not fenced: they are
    /// immutable and verified, so a stale writer's blob is the same bytes anyone would store.
    pub fn with_lease_fence(&self, fence: LeaseFence) -> Self {
        Self {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// The same store in group-commit mode, for a writer that stores many blobs and records
    /// them in its index in batches (the sync, the publish's pages). On the local disk,
    /// [`put_stream`] and [`put_bytes`](Self::put_bytes) then write
    /// a blob to `tmp/` without any fsync and returns; the blob is not yet at its address
    /// (not [`exists`]) until [`commit_group`] makes every blob staged so far durable with one
    /// `syncfs`, links each to its address, and makes the links durable with a second
    /// `syncfs`. So the rule holds as before: a blob under `blobs/` is complete and durable,
    /// and a caller that records a blob only after the `commit_group` that published it never
    /// records one that a crash can lose. A crash before the commit leaves only temporaries
    /// (swept by [`remove_stale_temps`]). Other backends are durable when a put returns; there
    /// this returns the store unchanged and [`commit_group`] does nothing.
    ///
    /// [`put_stream`]: Self::put_stream
    /// [`exists`]: Self::exists
    /// [`commit_group`]: Self::commit_group
    /// [`remove_stale_temps`]: Self::remove_stale_temps
    pub fn with_group_commit(&self) -> Result<Self, StoreError> {
        let Backend::Local { root } = &self.backend else {
            return Ok(self.clone());
        };
        Ok(Self {
            group: Some(Arc::new(group::Group::new(root.clone()))),
            ..self.clone()
        })
    }

    /// Publishes every blob staged in group-commit mode (see
    /// [`with_group_commit`](Self::with_group_commit)); returns how many were staged. Blobs
    /// that could not be linked stay temporaries (the error names the first); nothing is
    /// lost that a re-run would not fetch again.
    pub async fn commit_group(&self) -> Result<usize, StoreError> {
        match &self.group {
            Some(group) => group.commit(|key| self.check_fence(key)).await,
            None => Ok(0),
        }
    }

    /// The key of the blob with this digest: `blobs/sha256/ab/cd/abcd…` (64 hex characters).
    pub fn key_for(digest: &Sha256Digest) -> Key {
        let hex = digest.to_hex();
        Key::from_iter([
            "blobs",
            "sha256",
            hex.get(0..2).unwrap_or_default(),
            hex.get(2..4).unwrap_or_default(),
            hex.as_str(),
        ])
    }

    /// What this store is, for logs: `local:/path`, `memory`, or the given description.
    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    /// On the local backend, the file that holds (or would hold) the blob with this digest.
    pub fn local_path(&self, digest: &Sha256Digest) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local { root } => Some(group::key_path(root, &Self::key_for(digest))),
            Backend::Memory | Backend::Other => None,
        }
    }

    /// Streams `stream` into a temporary key, hashing while writing, and makes it visible under
    /// the address `expected` only once the stream has ended and its digest (and its length,
    /// when `expected_len` is given) matched.
    ///
    /// Reading stops with [`StoreError::TooLarge`] as soon as more than `max_len` bytes arrive
    /// (or at once when `expected_len > max_len`), and with [`StoreError::LengthMismatch`] as
    /// soon as more than `expected_len` arrive. A failing stream gives [`StoreError::Source`], a
    /// wrong digest [`StoreError::Mismatch`]. On every error the temporary object is removed
    /// and nothing is visible under the address; the same holds when the future is dropped.
    ///
    /// If a blob is already stored under the address, the new bytes are still verified, the
    /// stored blob is left alone, and the outcome is [`PutOutcome::AlreadyPresent`]. (Callers
    /// that can skip the download check [`exists`](Self::exists) first.)
    pub async fn put_stream<S, E>(
        &self,
        expected: &Sha256Digest,
        expected_len: Option<u64>,
        max_len: u64,
        stream: S,
    ) -> Result<PutOutcome, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let digest = *expected;
        if expected_len.is_some_and(|len| len > max_len) {
            return Err(StoreError::TooLarge { digest, max: max_len });
        }
        match self.backend {
            Backend::Local { .. } => self.put_via_temp(digest, expected_len, max_len, stream).await,
            Backend::Memory | Backend::Other => self.put_direct(digest, expected_len, max_len, stream).await,
        }
    }

    /// Local disk: stream into `tmp/<random>`, then link it to its address only if absent.
    async fn put_via_temp<S, E>(
        &self,
        digest: Sha256Digest,
        expected_len: Option<u64>,
        max_len: u64,
        mut stream: S,
    ) -> Result<PutOutcome, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(group) = &self.group {
            return self
                .put_staged(group, digest, expected_len, max_len, stream)
                .await;
        }
        let writer = &self.store;
        let temp = TempObject::new(Arc::clone(&self.store));
        let upload = writer
            .put_multipart(&temp.key)
            .await
            .map_err(StoreError::backend(&temp.key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut incoming = upload::Incoming::new(digest, expected_len, max_len);

        let failure = loop {
            let chunk = match stream.next().await {
                None => break None,
                Some(Ok(chunk)) => chunk,
                Some(Err(source)) => break Some(incoming.source_error(source)),
            };
            if let Err(error) = incoming.accept(&chunk) {
                break Some(error);
            }
            if let Err(source) = writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                break Some(StoreError::Backend {
                    key: temp.key.clone(),
                    source,
                });
            }
            writer.put(chunk);
        };

        let len = match failure.map_or_else(|| incoming.finish(), Err) {
            Ok(len) => len,
            Err(error) => {
                // The upload was never completed, so nothing exists under the temporary key;
                // aborting removes the parts (on local disk: the staging file).
                if let Err(abort_error) = writer.abort().await {
                    tracing::warn!(key = %temp.key, error = %abort_error, "could not abort upload");
                }
                temp.disarm();
                return Err(error);
            }
        };

        if let Err(source) = writer.finish().await {
            let key = temp.key.clone();
            temp.remove().await;
            return Err(StoreError::Backend { key, source });
        }

        let key = Self::key_for(&digest);
        let stored = match self.store.rename_if_not_exists(&temp.key, &key).await {
            Ok(()) => {
                temp.disarm();
                true
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                temp.remove().await;
                false
            }
            Err(source) => {
                temp.remove().await;
                return Err(StoreError::Backend { key, source });
            }
        };
        Ok(self.outcome_logged(digest, len, stored))
    }

    /// Local disk in group-commit mode: the bytes go to a new file `tmp/<random>` without
    /// fsync, written with `std::fs` on the blocking pool in batches of [`STAGED_WRITE_BATCH`]
    /// (a small file in one hand-off), and the file is staged for the next
    /// [`commit_group`](Self::commit_group) once digest and length matched. At most one batch
    /// is buffered, so memory stays flat in the file's size.
    async fn put_staged<S, E>(
        &self,
        group: &group::Group,
        digest: Sha256Digest,
        expected_len: Option<u64>,
        max_len: u64,
        mut stream: S,
    ) -> Result<PutOutcome, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let temp = TempObject::new(Arc::clone(&self.store));
        let path = group.path(&temp.key);
        let mut incoming = upload::Incoming::new(digest, expected_len, max_len);
        let mut file: Option<std::fs::File> = None;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batched = 0;
        loop {
            let chunk = match stream.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(source)) => return Err(incoming.source_error(source)),
            };
            incoming.accept(&chunk)?;
            batched += chunk.len();
            batch.push(chunk);
            if batched >= STAGED_WRITE_BATCH {
                let chunks = std::mem::take(&mut batch);
                batched = 0;
                let path = path.clone();
                file = Some(
                    run_blocking(path.clone(), move || group::write_staged(file, &path, &chunks)).await?,
                );
            }
        }
        let len = incoming.finish()?;
        if file.is_none() || !batch.is_empty() {
            let path = path.clone();
            run_blocking(path.clone(), move || {
                group::write_staged(file, &path, &batch).map(drop)
            })
            .await?;
        }
        group.stage(temp.key.clone(), digest);
        temp.disarm();
        tracing::debug!(digest = %digest, len, "blob staged for the next group commit");
        Ok(PutOutcome::Stored { len })
    }

    /// Object stores (and memory): the bytes go straight to the blob's address, and become
    /// visible only when the upload is completed — after the digest matched. A blob that fits
    /// in one part is held in memory and written with one create-if-absent put; a larger one
    /// is a multipart upload whose parts stay invisible until completion, and which is aborted
    /// on any failure (or in the background when the future is dropped). When the blob is
    /// already stored, the bytes are only hashed.
    async fn put_direct<S, E>(
        &self,
        digest: Sha256Digest,
        expected_len: Option<u64>,
        max_len: u64,
        mut stream: S,
    ) -> Result<PutOutcome, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let key = Self::key_for(&digest);
        let present = self.size_of(&key, &digest).await?.is_some();
        let mut incoming = upload::Incoming::new(digest, expected_len, max_len);
        let mut parts = upload::Parts::new(
            Arc::clone(&self.store),
            self.multipart.clone(),
            key.clone(),
            PART_SIZE,
            MAX_PARTS_IN_FLIGHT,
        );

        let failure = loop {
            let chunk = match stream.next().await {
                None => break None,
                Some(Ok(chunk)) => chunk,
                Some(Err(source)) => break Some(incoming.source_error(source)),
            };
            if let Err(error) = incoming.accept(&chunk) {
                break Some(error);
            }
            if present {
                continue;
            }
            if let Err(error) = parts.push(chunk).await {
                break Some(error);
            }
        };
        let len = match failure.map_or_else(|| incoming.finish(), Err) {
            Ok(len) => len,
            Err(error) => {
                parts.abort().await;
                return Err(error);
            }
        };
        if present {
            parts.abort().await;
            return Ok(self.outcome_logged(digest, len, false));
        }
        let stored = parts.finish().await?;
        Ok(self.outcome_logged(digest, len, stored))
    }

    fn outcome_logged(&self, digest: Sha256Digest, len: u64, stored: bool) -> PutOutcome {
        if stored {
            tracing::debug!(digest = %digest, len, store = %self.description, "blob stored");
            PutOutcome::Stored { len }
        } else {
            tracing::debug!(digest = %digest, len, store = %self.description, "blob already present");
            PutOutcome::AlreadyPresent { len }
        }
    }

    /// Stores `data` under its own digest, which is returned. Idempotent: an existing blob is
    /// left alone. Meant for small blobs built in memory (rendered pages); one atomic write.
    pub async fn put_bytes(&self, data: Bytes) -> Result<Sha256Digest, StoreError> {
        let digest = hash_bytes(data.clone()).await;
        let key = Self::key_for(&digest);
        if self.size_of(&key, &digest).await?.is_some() {
            return Ok(digest);
        }
        if self.group.is_some() {
            // Group-commit mode: staged like a streamed blob, durable at the commit.
            let len = data.len() as u64;
            self.put_stream(&digest, Some(len), len, stream::iter([Ok::<_, Infallible>(data)]))
                .await?;
            return Ok(digest);
        }
        let create = PutOptions::from(PutMode::Create);
        match self.store.put_opts(&key, data.clone().into(), create).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(digest),
            Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }) => {
                // Verified by construction, so overwriting identical bytes is harmless.
                self.put_stream(
                    &digest,
                    Some(data.len() as u64),
                    data.len() as u64,
                    stream::iter([Ok::<_, Infallible>(data)]),
                )
                .await?;
                Ok(digest)
            }
            Err(source) => Err(StoreError::Backend { key, source }),
        }
    }

    /// [`put_bytes`](Self::put_bytes) for several blobs (a project's pages): on the local disk
    /// in group-commit mode all of them are hashed, checked and staged in one blocking call.
    pub async fn put_many(&self, blobs: Vec<Bytes>) -> Result<Vec<Sha256Digest>, StoreError> {
        let (Some(group), Backend::Local { root }) = (&self.group, &self.backend) else {
            let mut digests = Vec::with_capacity(blobs.len());
            for data in blobs {
                digests.push(self.put_bytes(data).await?);
            }
            return Ok(digests);
        };
        let temps: Vec<TempObject> = blobs
            .iter()
            .map(|_| TempObject::new(Arc::clone(&self.store)))
            .collect();
        let paths: Vec<PathBuf> = temps.iter().map(|t| group.path(&t.key)).collect();
        let root = root.clone();
        let written = run_blocking(root.clone(), move || {
            let mut written = Vec::with_capacity(blobs.len());
            for (data, temp) in blobs.iter().zip(&paths) {
                let digest = Sha256Digest::of(data);
                let at = group::key_path(&root, &Self::key_for(&digest));
                let present = at.symlink_metadata().is_ok();
                if !present {
                    group::write_staged(None, temp, std::slice::from_ref(data))?;
                }
                written.push((digest, !present));
            }
            Ok(written)
        })
        .await?;
        let mut digests = Vec::with_capacity(written.len());
        for ((digest, staged), temp) in written.into_iter().zip(temps) {
            if staged {
                group.stage(temp.key.clone(), digest);
            }
            // Staged, or never written (already stored).
            temp.disarm();
            digests.push(digest);
        }
        Ok(digests)
    }

    /// [`size`](Self::size) of several blobs; on the local disk in one blocking call.
    pub async fn sizes(&self, digests: Vec<Sha256Digest>) -> Result<Vec<Option<u64>>, StoreError> {
        let Backend::Local { root } = &self.backend else {
            let mut sizes = Vec::with_capacity(digests.len());
            for digest in &digests {
                sizes.push(self.size(digest).await?);
            }
            return Ok(sizes);
        };
        let root = root.clone();
        run_blocking(root.clone(), move || {
            digests
                .iter()
                .map(|d| match group::key_path(&root, &Self::key_for(d)).metadata() {
                    Ok(m) => Ok(Some(m.len())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                })
                .collect()
        })
        .await
    }

    /// Whether a blob is stored under `digest` (its content is not checked).
    pub async fn exists(&self, digest: &Sha256Digest) -> Result<bool, StoreError> {
        Ok(self.size(digest).await?.is_some())
    }

    /// The stored length of the blob, or `None` when there is none.
    pub async fn size(&self, digest: &Sha256Digest) -> Result<Option<u64>, StoreError> {
        self.size_of(&Self::key_for(digest), digest).await
    }

    /// The whole blob, in memory and **not** re-hashed: the caller decides whether to trust
    /// it. See [`get_verified`](Self::get_verified).
    pub async fn get(&self, digest: &Sha256Digest) -> Result<Bytes, StoreError> {
        let key = Self::key_for(digest);
        let result = self
            .store
            .get(&key)
            .await
            .map_err(|e| read_error(digest, &key, e))?;
        result.bytes().await.map_err(|e| read_error(digest, &key, e))
    }

    /// The whole blob, re-hashed: [`StoreError::Corrupt`] when it no longer matches its address.
    pub async fn get_verified(&self, digest: &Sha256Digest) -> Result<Bytes, StoreError> {
        let data = self.get(digest).await?;
        let actual = hash_bytes(data.clone()).await;
        if actual == *digest {
            Ok(data)
        } else {
            Err(StoreError::Corrupt {
                digest: *digest,
                actual,
            })
        }
    }

    /// The blob's stored length and a stream of its bytes, **not** re-hashed.
    pub async fn stream(
        &self,
        digest: &Sha256Digest,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, StoreError>>), StoreError> {
        let key = Self::key_for(digest);
        let result = self
            .store
            .get(&key)
            .await
            .map_err(|e| read_error(digest, &key, e))?;
        let len = result.meta.size;
        let digest = *digest;
        let bytes = result
            .into_stream()
            .map_err(move |e| read_error(&digest, &key, e))
            .boxed();
        Ok((len, bytes))
    }

    /// Re-hashes the stored blob without holding it in memory.
    pub async fn verify(&self, digest: &Sha256Digest) -> Result<VerifyOutcome, StoreError> {
        if let Some(path) = self.local_path(digest) {
            let digest = *digest;
            let task_path = path.clone();
            return tokio::task::spawn_blocking(move || verify_file(&task_path, &digest))
                .await
                .map_err(|join| StoreError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(join),
                })?
                .map_err(StoreError::io(path));
        }

        let mut bytes = match self.stream(digest).await {
            Ok((_, bytes)) => bytes,
            Err(StoreError::NotFound(_)) => return Ok(VerifyOutcome::Missing),
            Err(e) => return Err(e),
        };
        let mut hasher = Sha256Hasher::new();
        let mut len: u64 = 0;
        while let Some(chunk) = bytes.try_next().await? {
            hasher.update(&chunk);
            len = len.saturating_add(chunk.len() as u64);
        }
        Ok(outcome(digest, hasher.finish(), len))
    }

    /// Removes the blob. Removing a missing blob is not an error.
    /// Every stored blob: digest, size and last modification, in the backend's order, without
    /// holding the listing in memory. Objects under the blob prefix whose name is not a digest
    /// at its address are skipped (logged).
    pub fn list_blobs(
        &self,
    ) -> futures::stream::BoxStream<'static, Result<(Sha256Digest, u64, SystemTime), StoreError>> {
        let prefix = Key::from(BLOB_PREFIX);
        self.store
            .list(Some(&prefix))
            .filter_map(move |r| {
                let prefix = prefix.clone();
                async move {
                    match r {
                        Ok(meta) => {
                            let name = meta.location.filename().unwrap_or_default();
                            match name.parse::<Sha256Digest>() {
                                Ok(d) if Self::key_for(&d) == meta.location => {
                                    Some(Ok((d, meta.size, SystemTime::from(meta.last_modified))))
                                }
                                _ => {
                                    tracing::warn!(key = %meta.location, "not a blob at its address; skipped");
                                    None
                                }
                            }
                        }
                        Err(e) => Some(Err(StoreError::backend(&prefix)(e))),
                    }
                }
            })
            .boxed()
    }

    pub async fn delete(&self, digest: &Sha256Digest) -> Result<(), StoreError> {
        let key = Self::key_for(digest);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(StoreError::Backend { key, source }),
        }
    }

    /// Names (relative to `tmp/`) of the temporary objects present: uploads in flight, or
    /// leftovers of a crash. On local disk this includes object_store's staging files.
    pub async fn temp_objects(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.temps().await?.into_iter().map(|(name, _)| name).collect();
        names.sort();
        Ok(names)
    }

    /// Removes temporary objects last modified more than `older_than` ago; returns how many.
    ///
    /// An upload in flight whose temporary object is removed fails cleanly (nothing becomes
    /// visible), so pick `older_than` well above the longest upload, or call this when no
    /// upload is running (e.g. at start-up, with `Duration::ZERO`).
    pub async fn remove_stale_temps(&self, older_than: Duration) -> Result<usize, StoreError> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let stale: Vec<String> = self
            .temps()
            .await?
            .into_iter()
            .filter(|(_, modified)| *modified <= cutoff)
            .map(|(name, _)| name)
            .collect();
        let count = stale.len();
        match &self.backend {
            Backend::Local { root } => {
                let dir = root.join(TEMP_PREFIX);
                run_blocking(dir.clone(), move || {
                    for name in stale {
                        match std::fs::remove_file(dir.join(name)) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                            _ => {}
                        }
                    }
                    Ok(())
                })
                .await?;
            }
            Backend::Memory | Backend::Other => {
                for name in stale {
                    let key = Key::from_iter([TEMP_PREFIX, name.as_str()]);
                    if let Some(multipart) = &self.multipart
                        && upload::Multipart::is_record(&name)
                    {
                        multipart.abort_recorded(&self.store, &key).await?;
                    }
                    match self.store.delete(&key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(source) => return Err(StoreError::Backend { key, source }),
                    }
                }
            }
        }
        if count > 0 {
            tracing::info!(count, store = %self.description, "removed stale temporary objects");
        }
        Ok(count)
    }

    /// Temporary objects with their modification times.
    async fn temps(&self) -> Result<Vec<(String, SystemTime)>, StoreError> {
        match &self.backend {
            // object_store's listing hides its `name#<n>` staging files; read the directory.
            Backend::Local { root } => {
                let dir = root.join(TEMP_PREFIX);
                run_blocking(dir.clone(), move || list_dir(&dir)).await
            }
            Backend::Memory | Backend::Other => {
                let prefix = Key::from(TEMP_PREFIX);
                self.store
                    .list(Some(&prefix))
                    .map_ok(|meta| {
                        let name = meta.location.filename().unwrap_or_default().to_owned();
                        (name, SystemTime::from(meta.last_modified))
                    })
                    .try_collect()
                    .await
                    .map_err(StoreError::backend(&prefix))
            }
        }
    }

    async fn size_of(&self, key: &Key, digest: &Sha256Digest) -> Result<Option<u64>, StoreError> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) => match read_error(digest, key, e) {
                StoreError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }
}

/// Maps a read failure, turning "not found" into [`StoreError::NotFound`].
fn read_error(digest: &Sha256Digest, key: &Key, error: object_store::Error) -> StoreError {
    match error {
        object_store::Error::NotFound { .. } => StoreError::NotFound(*digest),
        source => StoreError::Backend {
            key: key.clone(),
            source,
        },
    }
}

fn outcome(expected: &Sha256Digest, actual: Sha256Digest, len: u64) -> VerifyOutcome {
    if actual == *expected {
        VerifyOutcome::Ok { len }
    } else {
        VerifyOutcome::Corrupt { actual }
    }
}

/// Hashes `data`, on a blocking thread unless it is small.
async fn hash_bytes(data: Bytes) -> Sha256Digest {
    if data.len() <= INLINE_HASH_LIMIT {
        return Sha256Digest::of(&data);
    }
    let task_data = data.clone();
    match tokio::task::spawn_blocking(move || Sha256Digest::of(&task_data)).await {
        Ok(digest) => digest,
        Err(join) => match join.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled because the runtime is shutting down: finish the work here.
            Err(_) => Sha256Digest::of(&data),
        },
    }
}

/// Runs blocking file-system work on a blocking thread; errors name `path`.
async fn run_blocking<T: Send + 'static>(
    path: PathBuf,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(StoreError::io(path)),
        Err(join) => Err(StoreError::Io {
            path,
            source: std::io::Error::other(join),
        }),
    }
}

/// Files in `dir` with their modification times; a missing `dir` has none.
fn list_dir(dir: &FsPath) -> std::io::Result<Vec<(String, SystemTime)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() {
            let modified = metadata.modified()?;
            out.push((entry.file_name().to_string_lossy().into_owned(), modified));
        }
    }
    Ok(out)
}

/// Hashes the file at `path` with a large buffer. Blocking.
fn verify_file(path: &FsPath, digest: &Sha256Digest) -> std::io::Result<VerifyOutcome> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VerifyOutcome::Missing),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; LOCAL_READ_BUF];
    let mut hasher = Sha256Hasher::new();
    let mut len: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        len = len.saturating_add(n as u64);
    }
    Ok(outcome(digest, hasher.finish(), len))
}

/// A temporary key that is deleted unless it was moved to its address. Dropping an armed
/// guard (a cancelled put) deletes it in the background.
struct TempObject {
    store: Arc<dyn ObjectStore>,
    key: Key,
    armed: bool,
}

impl TempObject {
    fn new(store: Arc<dyn ObjectStore>) -> Self {
        let name = hex::encode(rand::random::<[u8; 16]>());
        Self {
            store,
            key: Key::from_iter([TEMP_PREFIX, name.as_str()]),
            armed: true,
        }
    }

    /// Nothing (left) to delete.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Deletes the temporary object now; failures are logged, the sweep catches them.
    async fn remove(mut self) {
        self.armed = false;
        match self.store.delete(&self.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(key = %self.key, error = %error, "could not remove temporary object");
            }
        }
    }
}

impl Drop for TempObject {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            let key = self.key.clone();
            runtime.spawn(async move {
                match store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => {
                        tracing::warn!(key = %key, error = %error, "could not remove temporary object");
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn key_layout() {
        let digest = Sha256Digest::of(b"abc");
        assert_eq!(
            BlobStore::key_for(&digest).as_ref(),
            "blobs/sha256/ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(BlobStore::key_for(&digest).as_ref().starts_with(BLOB_PREFIX));
    }

    #[test]
    fn temp_keys_are_random_and_under_tmp() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = TempObject::new(Arc::clone(&store));
        let b = TempObject::new(store);
        assert_ne!(a.key, b.key);
        assert!(a.key.as_ref().starts_with("tmp/"));
        assert_eq!(a.key.as_ref().len(), "tmp/".len() + 32);
        a.disarm();
        b.disarm();
    }

    #[test]
    fn local_path_follows_key_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let digest = Sha256Digest::of(b"abc");
        let path = store.local_path(&digest).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(path, root.join("blobs/sha256/ba/78").join(digest.to_hex()));
        assert_eq!(store.describe(), format!("local:{}", root.display()));
        assert_eq!(BlobStore::memory().local_path(&digest), None);
        assert_eq!(BlobStore::memory().describe(), "memory");
    }

    #[test]
    fn errors_name_the_digest() {
        let digest = Sha256Digest::of(b"abc");
        let actual = Sha256Digest::of(b"abd");
        let msg = StoreError::Mismatch {
            expected: digest,
            actual,
            len: 3,
        }
        .to_string();
        assert!(
            msg.contains(&digest.to_hex()) && msg.contains(&actual.to_hex()),
            "{msg}"
        );
        let msg = StoreError::TooLarge { digest, max: 10 }.to_string();
        assert!(msg.contains(&digest.to_hex()) && msg.contains("10"), "{msg}");
        let msg = StoreError::NotFound(digest).to_string();
        assert!(msg.contains(&digest.to_hex()), "{msg}");
    }

    #[tokio::test]
    async fn announced_length_over_limit_is_refused_before_reading() {
        let store = BlobStore::memory();
        let digest = Sha256Digest::of(b"abc");
        let body = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let err = store.put_stream(&digest, Some(3), 2, body).await.unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { max: 2, .. }), "{err}");
        assert!(store.temp_objects().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn put_bytes_is_idempotent() {
        let store = BlobStore::memory();
        let data = Bytes::from_static(b"<html></html>");
        let first = store.put_bytes(data.clone()).await.unwrap();
        let second = store.put_bytes(data.clone()).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(first, Sha256Digest::of(&data));
        assert_eq!(store.get_verified(&first).await.unwrap(), data);
    }

    /// Callers spawn these futures (axum handlers, sync workers), so they must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(store: &BlobStore, digest: &Sha256Digest) {
        fn assert_send<T: Send>(_: T) {}
        let body = stream::iter([Ok::<_, std::io::Error>(Bytes::new())]);
        assert_send(store.put_stream(digest, None, 0, body));
        assert_send(store.put_bytes(Bytes::new()));
        assert_send(store.get(digest));
        assert_send(store.get_verified(digest));
        assert_send(store.stream(digest));
        assert_send(store.verify(digest));
        assert_send(store.delete(digest));
        assert_send(store.size(digest));
        assert_send(store.remove_stale_temps(Duration::ZERO));
    }
}
