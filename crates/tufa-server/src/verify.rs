//! Whole-blob verification before a range is served: hashed once per process and remembered,
//! bounded in concurrency, one run per digest however many requests wait for it, and stopped
//! when every request waiting for it has gone.
//!
//! Blobs are immutable (a content address never names other bytes), so a digest this process
//! has verified stays verified. What is remembered is the digest together with the length and
//! modification time the store reported when it was hashed: a blob replaced on disk afterwards
//! (another length or mtime) is hashed again before a range of it is served. The set is
//! bounded ([`REMEMBERED`] entries, oldest forgotten first); a forgotten digest is simply
//! hashed again. A full download hashes while streaming anyway and, when it completes with a
//! match, marks the digest verified too.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::body::Bytes;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::{BoxFuture, WeakShared};
use object_store::{ObjectMeta, ObjectStoreExt as _};
use tokio::sync::Semaphore;
use tufa_pypi::{Sha256Digest, Sha256Hasher};
use tufa_store::BlobStore;

use crate::files::payload_stream;
use crate::local::{self, FileIdentity, Piece, Streams};

/// Digests remembered as verified (about 80 bytes each).
pub(crate) const REMEMBERED: usize = 65_536;
/// Chunks up to this size are hashed on the calling task, larger ones on a blocking thread.
const INLINE_HASH_LIMIT: usize = 256 * 1024;
/// Dead entries of cancelled runs are swept once the in-flight map holds this many.
const INFLIGHT_SWEEP: usize = 256;

/// What identifies one stored version of a blob: its length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobVersion {
    pub(crate) len: u64,
    pub(crate) modified: SystemTime,
}

impl BlobVersion {
    pub(crate) fn of(meta: &ObjectMeta) -> Self {
        Self {
            len: meta.size,
            modified: SystemTime::from(meta.last_modified),
        }
    }

    /// The version of an open local file, as the store's `head` reports it too (its length
    /// and modification time).
    pub(crate) fn of_file(file: &local::OpenFile) -> Self {
        Self {
            len: file.identity.len,
            modified: file.modified,
        }
    }
}

/// The result of one whole-blob hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The blob hashed to its digest; this is the version that was read.
    Verified(BlobVersion),
    Missing,
    /// The blob does not hash to its digest (or is not as long as announced).
    Corrupt {
        actual: Sha256Digest,
    },
    /// The store failed; the detail is for the log.
    Failed(String),
}

type Run = BoxFuture<'static, Outcome>;

/// Remembered verifications, the runs in flight and the bound on concurrent runs.
pub(crate) struct Verifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    remembered: Mutex<Remembered<BlobVersion>>,
    /// Local files that hashed correctly, by the identity of the file that was read (for the
    /// `once-per-file` verification mode).
    files: Mutex<Remembered<FileIdentity>>,
    inflight: Mutex<HashMap<Sha256Digest, WeakShared<Run>>>,
    permits: Arc<Semaphore>,
    /// Whole-blob hashes started (`tufa_blob_verifications_total`).
    runs: AtomicU64,
    /// Local files being read, which sets their chunk size (shared with downloads).
    streams: Arc<Streams>,
}

/// Digests with the version of the blob that hashed correctly, oldest forgotten first.
struct Remembered<V> {
    entries: HashMap<Sha256Digest, V>,
    order: VecDeque<Sha256Digest>,
}

impl<V: PartialEq> Remembered<V> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, digest: Sha256Digest, version: V) {
        if self.entries.insert(digest, version).is_none() {
            self.order.push_back(digest);
        }
        while self.entries.len() > REMEMBERED {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    fn holds(&self, digest: &Sha256Digest, version: &V) -> bool {
        self.entries.get(digest) == Some(version)
    }
}

impl Verifier {
    pub(crate) fn new(max_concurrent: usize) -> Self {
        Self {
            inner: Arc::new(VerifierInner {
                remembered: Mutex::new(Remembered::new()),
                files: Mutex::new(Remembered::new()),
                inflight: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
                runs: AtomicU64::new(0),
                streams: Arc::new(Streams::default()),
            }),
        }
    }

    /// The count of local files being read, shared by every reader of local blobs.
    pub(crate) fn streams(&self) -> &Arc<Streams> {
        &self.inner.streams
    }

    /// Whole-blob hashes started since this server started.
    pub(crate) fn runs(&self) -> u64 {
        self.inner.runs.load(Ordering::Relaxed)
    }

    /// Whether `digest` was verified in exactly this `version`.
    pub(crate) fn is_verified(&self, digest: &Sha256Digest, version: BlobVersion) -> bool {
        self.inner.remember_lock().holds(digest, &version)
    }

    /// Records that the local file with `identity` hashed to `digest`.
    pub(crate) fn remember_file(&self, digest: Sha256Digest, identity: FileIdentity) {
        self.inner.files_lock().insert(digest, identity);
    }

    /// Whether the local file with exactly this `identity` hashed to `digest` before.
    pub(crate) fn is_verified_file(&self, digest: &Sha256Digest, identity: &FileIdentity) -> bool {
        self.inner.files_lock().holds(digest, identity)
    }

    /// Records that `digest` hashed correctly in `version` (a complete verified stream).
    pub(crate) fn remember(&self, digest: Sha256Digest, version: BlobVersion) {
        self.inner.remember(digest, version);
    }

    /// Verifies `digest` in `version` unless already remembered: joins a run in flight for the
    /// digest or starts one (waiting for one of the bounded slots). Dropping the returned
    /// future leaves the run; a run nobody waits for any more stops before its next chunk.
    pub(crate) async fn verify(
        &self,
        store: &BlobStore,
        digest: Sha256Digest,
        version: BlobVersion,
    ) -> Outcome {
        if self.is_verified(&digest, version) {
            return Outcome::Verified(version);
        }
        let run = {
            let mut inflight = self.inner.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match inflight.get(&digest).and_then(WeakShared::upgrade) {
                Some(run) => run,
                None => {
                    if inflight.len() >= INFLIGHT_SWEEP {
                        inflight.retain(|_, weak| weak.upgrade().is_some());
                    }
                    let run = Arc::clone(&self.inner)
                        .run(store.clone(), digest)
                        .boxed()
                        .shared();
                    if let Some(weak) = run.downgrade() {
                        inflight.insert(digest, weak);
                    }
                    run
                }
            }
        };
        run.await
    }
}

impl VerifierInner {
    fn remember_lock(&self) -> std::sync::MutexGuard<'_, Remembered<BlobVersion>> {
        self.remembered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn files_lock(&self) -> std::sync::MutexGuard<'_, Remembered<FileIdentity>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, digest: Sha256Digest, version: BlobVersion) {
        self.remember_lock().insert(digest, version);
    }

    /// One whole-blob hash. Runs inside the shared future, so it is polled only while some
    /// request waits for it and dropped (between chunks) when none does.
    async fn run(self: Arc<Self>, store: BlobStore, digest: Sha256Digest) -> Outcome {
        let outcome = self.hash_blob(&store, digest).await;
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&digest);
        if let Outcome::Verified(version) = &outcome {
            self.remember(digest, *version);
        }
        outcome
    }

    async fn hash_blob(&self, store: &BlobStore, digest: Sha256Digest) -> Outcome {
        let Ok(_permit) = Arc::clone(&self.permits).acquire_owned().await else {
            return Outcome::Failed("verification slots closed".to_owned());
        };
        self.runs.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = store.local_path(&digest) {
            return self.hash_local_file(path, digest).await;
        }
        let result = match store.object_store().get(&BlobStore::key_for(&digest)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Outcome::Missing,
            Err(e) => return Outcome::Failed(format!("reading blob sha256:{digest}: {e}")),
        };
        let version = BlobVersion::of(&result.meta);
        tracing::debug!(digest = %digest, len = version.len, "verifying whole blob");
        let mut chunks = payload_stream(result);
        let mut hasher = Sha256Hasher::new();
        let mut seen = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => return Outcome::Failed(format!("reading blob sha256:{digest}: {e}")),
            };
            seen += chunk.len() as u64;
            hasher = match hash_chunk(hasher, chunk).await {
                Ok(hasher) => hasher,
                Err(e) => return Outcome::Failed(format!("hashing blob sha256:{digest}: {e}")),
            };
        }
        let actual = hasher.finish();
        if actual == digest && seen == version.len {
            Outcome::Verified(version)
        } else {
            Outcome::Corrupt { actual }
        }
    }
}

impl VerifierInner {
    /// [`hash_blob`](Self::hash_blob) on the local disk: read and hashed in large chunks on the
    /// blocking pool; a correct file is remembered by its identity too.
    async fn hash_local_file(&self, path: std::path::PathBuf, digest: Sha256Digest) -> Outcome {
        let failed = |e: io::Error| Outcome::Failed(format!("reading blob sha256:{digest}: {e}"));
        let file = match local::open(path).await {
            Ok(Some(file)) => file,
            Ok(None) => return Outcome::Missing,
            Err(e) => return failed(e),
        };
        let (identity, version) = (file.identity, BlobVersion::of_file(&file));
        let mut pieces = std::pin::pin!(local::read_chunks(file, true, &self.streams));
        while let Some(piece) = pieces.next().await {
            match piece {
                Ok(Piece::Chunk(_)) => {}
                Ok(Piece::Last(_, Some(actual))) if actual == digest => {
                    self.files_lock().insert(digest, identity);
                    return Outcome::Verified(version);
                }
                Ok(Piece::Last(_, Some(actual))) => return Outcome::Corrupt { actual },
                Ok(Piece::Last(_, None)) => return failed(io::Error::other("the read was not hashed")),
                Err(e) => return failed(e),
            }
        }
        failed(io::Error::other("the read ended without its last chunk"))
    }
}

/// Hashes one chunk: small ones on the calling task, large ones on a blocking thread.
pub(crate) async fn hash_chunk(mut hasher: Sha256Hasher, chunk: Bytes) -> io::Result<Sha256Hasher> {
    if chunk.len() <= INLINE_HASH_LIMIT {
        hasher.update(&chunk);
        return Ok(hasher);
    }
    tokio::task::spawn_blocking(move || {
        hasher.update(&chunk);
        hasher
    })
    .await
    .map_err(io::Error::other)
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("remembered", &self.inner.remember_lock().entries.len())
            .field("runs", &self.runs())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn version(len: u64) -> BlobVersion {
        BlobVersion {
            len,
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn verifies_once_and_remembers() {
        let store = BlobStore::memory();
        let data = Bytes::from(vec![7u8; 1000]);
        let digest = store.put_bytes(data).await.unwrap();
        let meta = store
            .object_store()
            .head(&BlobStore::key_for(&digest))
            .await
            .unwrap();
        let v = BlobVersion::of(&meta);
        let verifier = Verifier::new(1);
        let runs = (0..8).map(|_| verifier.verify(&store, digest, v));
        for outcome in futures::future::join_all(runs).await {
            assert_eq!(outcome, Outcome::Verified(v));
        }
        assert_eq!(verifier.runs(), 1, "one run for concurrent callers");
        assert_eq!(verifier.verify(&store, digest, v).await, Outcome::Verified(v));
        assert_eq!(verifier.runs(), 1, "remembered afterwards");
        // Another version of the same digest (a replaced file) is hashed again.
        let other = BlobVersion {
            len: v.len,
            modified: v.modified + std::time::Duration::from_secs(1),
        };
        assert!(!verifier.is_verified(&digest, other));
        let missing = Sha256Digest::of(b"nothing");
        assert_eq!(verifier.verify(&store, missing, v).await, Outcome::Missing);
    }

    #[test]
    fn remembered_set_is_bounded() {
        let verifier = Verifier::new(1);
        for i in 0..(REMEMBERED + 10) {
            verifier.remember(Sha256Digest::of(&i.to_le_bytes()), version(1));
        }
        assert_eq!(verifier.inner.remember_lock().entries.len(), REMEMBERED);
        assert!(!verifier.is_verified(&Sha256Digest::of(&0usize.to_le_bytes()), version(1)));
        assert!(verifier.is_verified(&Sha256Digest::of(&(REMEMBERED + 9).to_le_bytes()), version(1)));
    }
}
