//! The published state a reader answers from, refreshed when the writer's pointer changes.
//!
//! Every publish ends by rewriting one small object, [`tufa_tree::POINTER_KEY`]
//! (`published/current.json`), after everything it points to is in place. A reader checks it at
//! most once per poll interval (inline, by the first request after the interval: one small GET,
//! single-flight), and between changes answers from a [`Generation`] kept in memory: project
//! manifests (a 404 too) and the project list, each read from the store once, when first asked
//! for. When the pointer changes, a new empty generation replaces the old one; requests already
//! running finish with the generation they started with. Versioned TUF metadata
//! (`N.<role>.json`) never changes once published and is kept across generations.
//!
//! What TUF clients see: `timestamp.json` is read from the store on every request, and a
//! missing metadata file is never remembered. So every reader hands out the newest timestamp
//! (a client behind a load balancer never sees it go back when its next request lands on
//! another reader, which it would refuse as a rollback), and a new `<N+1>.root.json` is found
//! as soon as it is published. The writer writes versioned files and blobs before the timestamp
//! that leads to them, and never changes them, so whatever timestamp a client gets, the
//! snapshot, bins and (hash-prefixed, content-addressed) targets it leads to are there.
//!
//! A generation is filled lazily, so it is not a frozen copy of one publish: an item first
//! asked for while the next publish is being written (before its pointer) may already show
//! that publish's new state, exactly as a reader without a cache would. What a generation
//! guarantees is that an answer, once given, does not change until the pointer does.
//!
//! Failures are not cached: a store error is answered as an error and asked again next time.
//! A pointer that cannot be read keeps the current generation (logged) until it can.
//!
//! With a poll interval of zero there is no generation: every request reads the store, as a
//! reader on the writer's own disk may prefer (and as tests that publish between requests do).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tufa_pypi::{ProjectName, Sha256Digest};
use tufa_store::BlobStore;
use tufa_tree::ProjectManifest;

use crate::error::ApiError;
use crate::local::SmallFile;

/// Manifests one generation keeps (a manifest is a few hundred bytes to a few KiB).
const MAX_MANIFESTS: usize = 200_000;
/// The one TUF metadata file whose name carries no version.
const TIMESTAMP: &str = "timestamp.json";
/// Bytes of versioned TUF metadata a reader keeps.
const MAX_TUF_BYTES: u64 = 64 * 1024 * 1024;
/// Largest `timestamp.json` read from the local disk (it is about 500 bytes).
const MAX_TIMESTAMP_BYTES: u64 = 1024 * 1024;
/// Versioned TUF metadata at least this long gets compressed variants.
pub(crate) const COMPRESS_MIN: usize = 1024;
/// zstd level of TUF metadata variants: JSON of role names, versions and hex digests, where
/// level 1 compresses about as well as the middle levels (see tufa-publish's page variants).
const ZSTD_LEVEL: i32 = 1;
/// Bookkeeping bytes counted per cached entry.
const ENTRY_OVERHEAD: u64 = 64;

/// A map that forgets its oldest entries beyond a budget (entries and bytes).
struct Bounded<K, V> {
    max_entries: usize,
    max_bytes: u64,
    inner: Mutex<BoundedInner<K, V>>,
}

struct BoundedInner<K, V> {
    map: HashMap<K, (V, u64)>,
    order: VecDeque<K>,
    bytes: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(max_entries: usize, max_bytes: u64) -> Self {
        Self {
            max_entries,
            max_bytes,
            inner: Mutex::new(BoundedInner {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.map.get(key).map(|(v, _)| v.clone())
    }

    /// Adds `key` unless it is held already; whether it was added.
    fn insert(&self, key: K, value: V, cost: u64) -> bool {
        let cost = cost + ENTRY_OVERHEAD;
        if cost > self.max_bytes {
            return false;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.map.contains_key(&key) {
            return false;
        }
        inner.map.insert(key.clone(), (value, cost));
        inner.order.push_back(key);
        inner.bytes += cost;
        while inner.bytes > self.max_bytes || inner.map.len() > self.max_entries {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, freed)) = inner.map.remove(&oldest) {
                inner.bytes -= freed;
            }
        }
        true
    }

    /// Replaces the value of `key` if it is still held (its cost updated); a key forgotten
    /// meanwhile stays forgotten.
    fn replace(&self, key: &K, value: V, cost: u64) {
        let cost = cost + ENTRY_OVERHEAD;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = inner.map.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(entry, (value, cost)).1;
        inner.bytes = inner.bytes - old + cost;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, freed)) = inner.map.remove(&oldest) {
                inner.bytes -= freed;
            }
        }
    }

    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }
}

/// A TUF metadata file as served: its bytes, their sha256 (the `ETag`), and its gzip and zstd
/// variants once made (versioned files in memory only).
#[derive(Debug)]
pub(crate) struct TufFile {
    pub(crate) data: Bytes,
    pub(crate) digest: Sha256Digest,
    pub(crate) gzip: Option<Bytes>,
    pub(crate) zstd: Option<Bytes>,
}

impl TufFile {
    fn plain(data: Bytes, digest: Sha256Digest) -> Self {
        Self {
            data,
            digest,
            gzip: None,
            zstd: None,
        }
    }

    /// The same file with both variants (gzip at the best level: made once per file).
    fn compressed(plain: &Self) -> std::io::Result<Self> {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&plain.data)?;
        let gzip = gz.finish()?;
        let zstd = zstd::bulk::compress(&plain.data, ZSTD_LEVEL)?;
        Ok(Self {
            data: plain.data.clone(),
            digest: plain.digest,
            gzip: Some(Bytes::from(gzip)),
            zstd: Some(Bytes::from(zstd)),
        })
    }

    fn cost(&self) -> u64 {
        [Some(&self.data), self.gzip.as_ref(), self.zstd.as_ref()]
            .into_iter()
            .flatten()
            .map(|b| b.len() as u64)
            .sum()
    }
}

/// What one publish looks like to this reader, filled in as requests ask.
pub(crate) struct Generation {
    /// The pointer's bytes this generation belongs to (`None`: no pointer published).
    pointer: Option<Bytes>,
    manifests: Bounded<ProjectName, Option<Arc<ProjectManifest>>>,
    projects: tokio::sync::OnceCell<Arc<[ProjectName]>>,
}

impl Generation {
    fn new(pointer: Option<Bytes>) -> Self {
        Self {
            pointer,
            manifests: Bounded::new(MAX_MANIFESTS, u64::MAX),
            projects: tokio::sync::OnceCell::new(),
        }
    }
}

/// The reader's view of the published tree: a [`Generation`] per publish, or the store
/// itself when polling is off.
pub(crate) struct Current {
    poll: Duration,
    generation: RwLock<Arc<Generation>>,
    /// Versioned TUF metadata (`N.<role>.json`), immutable once published, with its sha256
    /// (the ETag), hashed once, and its compressed variants once they are made.
    versioned: Arc<Bounded<String, Arc<TufFile>>>,
    /// Time origin of `checked_ms`.
    started: Instant,
    /// When the pointer was last checked, in ms since `started` plus one (0: never).
    checked_ms: AtomicU64,
    /// Makes the check single-flight.
    checking: tokio::sync::Mutex<()>,
    /// `timestamp.json` on the local disk, reread when its file changes.
    timestamp: SmallFile,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let generation = self.snapshot();
        f.debug_struct("Current")
            .field("poll", &self.poll)
            .field("manifests", &generation.manifests.len())
            .field("tuf_files", &self.versioned.len())
            .finish()
    }
}

impl Current {
    pub(crate) fn new(poll: Duration) -> Self {
        Self {
            poll,
            generation: RwLock::new(Arc::new(Generation::new(None))),
            versioned: Arc::new(Bounded::new(usize::MAX, MAX_TUF_BYTES)),
            started: Instant::now(),
            checked_ms: AtomicU64::new(0),
            checking: tokio::sync::Mutex::new(()),
            timestamp: SmallFile::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Whether the pointer was checked less than one poll interval ago.
    fn fresh(&self) -> bool {
        let at = self.checked_ms.load(Ordering::Acquire);
        let poll = u64::try_from(self.poll.as_millis()).unwrap_or(u64::MAX);
        at != 0 && self.now_ms().saturating_sub(at) < poll
    }

    fn snapshot(&self) -> Arc<Generation> {
        Arc::clone(&self.generation.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The generation to answer from, after checking the pointer if the interval has passed;
    /// `None` when polling is off (read the store).
    pub(crate) async fn generation(&self, store: &BlobStore) -> Option<Arc<Generation>> {
        if self.poll.is_zero() {
            return None;
        }
        if self.fresh() {
            return Some(self.snapshot());
        }
        let _checking = self.checking.lock().await;
        if self.fresh() {
            return Some(self.snapshot());
        }
        match store.get_named(tufa_tree::POINTER_KEY).await {
            Ok(pointer) => {
                if self.snapshot().pointer != pointer {
                    tracing::info!(
                        pointer = %pointer.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
                        "new publish: answering from a new generation"
                    );
                    *self.generation.write().unwrap_or_else(PoisonError::into_inner) =
                        Arc::new(Generation::new(pointer));
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                key = tufa_tree::POINTER_KEY,
                "cannot read the publish pointer; answering from the last generation"
            ),
        }
        self.checked_ms.store(self.now_ms(), Ordering::Release);
        Some(self.snapshot())
    }

    /// The published manifest of `name`, if any.
    pub(crate) async fn manifest(
        &self,
        store: &BlobStore,
        name: &ProjectName,
    ) -> Result<Option<Arc<ProjectManifest>>, ApiError> {
        let Some(generation) = self.generation(store).await else {
            return read_manifest(store, name).await;
        };
        if let Some(cached) = generation.manifests.get(name) {
            return Ok(cached);
        }
        let manifest = read_manifest(store, name).await?;
        let cost = manifest
            .as_ref()
            .map_or(0, |m| 256 * (1 + m.metadata.len() as u64));
        generation.manifests.insert(name.clone(), manifest.clone(), cost);
        Ok(manifest)
    }

    /// The published TUF metadata file `name` (already checked to be a metadata file name).
    /// Versioned files never change once published, so they are kept across generations, and
    /// those of at least [`COMPRESS_MIN`] bytes get gzip and zstd variants, made once on a
    /// blocking thread after the file entered memory (until then it is served uncompressed).
    pub(crate) async fn tuf_file(
        &self,
        store: &BlobStore,
        name: &str,
    ) -> Result<Option<Arc<TufFile>>, ApiError> {
        let key = tufa_tree::tuf_key(name);
        // `timestamp.json` always comes from the store: every reader then hands out the newest
        // one, so a client behind a load balancer never sees it go back from one reader to
        // the next (a rollback it would refuse). On the local disk that costs one `stat` while
        // the file is unchanged. A 404 is never kept either: a client probes
        // `<N+1>.root.json` and must find a new root as soon as it is published.
        if name == TIMESTAMP
            && let Some(path) = store.local_named_path(&key)
        {
            return self
                .timestamp
                .get(&path, MAX_TIMESTAMP_BYTES)
                .map(|found| found.map(|(data, digest)| Arc::new(TufFile::plain(data, digest))))
                .map_err(|e| ApiError::Unavailable(format!("cannot read {}: {e}", path.display())));
        }
        let read = || async {
            let data = store.get_named(&key).await.map_err(ApiError::from_store)?;
            Ok::<_, ApiError>(data.map(|data| {
                let digest = Sha256Digest::of(&data);
                Arc::new(TufFile::plain(data, digest))
            }))
        };
        if self.poll.is_zero() || name == TIMESTAMP {
            return read().await;
        }
        if let Some(cached) = self.versioned.get(&key) {
            return Ok(Some(cached));
        }
        let Some(file) = read().await? else {
            return Ok(None);
        };
        if self.versioned.insert(key.clone(), Arc::clone(&file), file.cost())
            && file.data.len() >= COMPRESS_MIN
        {
            let versioned = Arc::clone(&self.versioned);
            let plain = Arc::clone(&file);
            tokio::task::spawn_blocking(move || match TufFile::compressed(&plain) {
                Ok(compressed) => {
                    let cost = compressed.cost();
                    versioned.replace(&key, Arc::new(compressed), cost);
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "cannot compress TUF metadata; serving it uncompressed")
                }
            });
        }
        Ok(Some(file))
    }

    /// The names of all published projects, in the backend's listing order; `None` when
    /// polling is off (the caller streams the listing itself).
    pub(crate) async fn projects(&self, store: &BlobStore) -> Result<Option<Arc<[ProjectName]>>, ApiError> {
        let Some(generation) = self.generation(store).await else {
            return Ok(None);
        };
        let names = generation
            .projects
            .get_or_try_init(|| async {
                use futures::TryStreamExt as _;
                let names: Vec<ProjectName> = tufa_tree::published_projects(store)
                    .try_collect()
                    .await
                    .map_err(ApiError::from_tree)?;
                Ok::<_, ApiError>(Arc::from(names))
            })
            .await?;
        Ok(Some(Arc::clone(names)))
    }
}

async fn read_manifest(
    store: &BlobStore,
    name: &ProjectName,
) -> Result<Option<Arc<ProjectManifest>>, ApiError> {
    Ok(tufa_tree::read_manifest(store, name)
        .await
        .map_err(ApiError::from_tree)?
        .map(Arc::new))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bounded_map_forgets_the_oldest() {
        let map: Bounded<u32, u32> = Bounded::new(3, u64::MAX);
        for i in 0..5 {
            map.insert(i, i * 10, 1);
        }
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(&0), None);
        assert_eq!(map.get(&4), Some(40));
        let map: Bounded<u32, u32> = Bounded::new(usize::MAX, 3 * (ENTRY_OVERHEAD + 10));
        for i in 0..5 {
            map.insert(i, i, 10);
        }
        assert_eq!(map.len(), 3);
        map.insert(9, 9, 10 * ENTRY_OVERHEAD);
        assert_eq!(map.get(&9), None, "larger than the whole budget");
    }

    #[tokio::test]
    async fn tuf_metadata_the_newest_timestamp_and_no_remembered_404() {
        let store = BlobStore::memory();
        let current = Current::new(Duration::from_secs(3600));
        let put = |name: &'static str, data: &'static [u8]| {
            let store = store.clone();
            async move {
                store
                    .put_named(&tufa_tree::tuf_key(name), Bytes::from_static(data))
                    .await
                    .unwrap();
            }
        };
        let get = |name: &'static str| {
            let current = &current;
            let store = store.clone();
            async move {
                current
                    .tuf_file(&store, name)
                    .await
                    .map(|f| f.map(|f| f.data.clone()))
            }
        };
        put("timestamp.json", b"one").await;
        put("1.root.json", b"root one").await;
        assert_eq!(get("timestamp.json").await.unwrap().unwrap(), "one");
        assert_eq!(get("1.root.json").await.unwrap().unwrap(), "root one");
        assert_eq!(get("2.root.json").await.unwrap(), None);
        // Without a new pointer, and within the poll interval: the timestamp is the store's,
        // a new root is found at once, and a versioned file is served as first read.
        put("timestamp.json", b"two").await;
        put("2.root.json", b"root two").await;
        put("1.root.json", b"rewritten").await;
        assert_eq!(get("timestamp.json").await.unwrap().unwrap(), "two");
        assert_eq!(get("2.root.json").await.unwrap().unwrap(), "root two");
        assert_eq!(get("1.root.json").await.unwrap().unwrap(), "root one");
        // Polling off: every read goes to the store.
        let direct = Current::new(Duration::ZERO);
        let file = direct.tuf_file(&store, "1.root.json").await.unwrap().unwrap();
        assert_eq!(file.data, "rewritten");
        assert_eq!(file.digest, Sha256Digest::of(b"rewritten"));
    }
}
