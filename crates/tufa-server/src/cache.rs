//! An in-memory cache of verified small blobs (pages, METADATA), keyed by digest.
//!
//! Blobs are content-addressed, so an entry never goes stale: eviction (least recently used
//! first) is only about the memory bound. Only bytes that were re-hashed against their digest
//! are inserted. A blob larger than an eighth of the budget is not cached, so one huge page
//! cannot flush everything else.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use tufa_pypi::Sha256Digest;

pub(crate) struct PageCache {
    capacity: u64,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Sha256Digest, (Bytes, u64)>,
    /// Last use → digest; the first entry is the least recently used.
    order: BTreeMap<u64, Sha256Digest>,
    tick: u64,
    bytes: u64,
}

impl PageCache {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lru::default()),
        }
    }

    pub(crate) fn get(&self, digest: &Sha256Digest) -> Option<Bytes> {
        let mut lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        lru.tick += 1;
        let tick = lru.tick;
        let (data, last) = lru.entries.get_mut(digest)?;
        let data = data.clone();
        let previous = std::mem::replace(last, tick);
        lru.order.remove(&previous);
        lru.order.insert(tick, *digest);
        Some(data)
    }

    /// The largest blob the cache keeps: an eighth of its budget.
    pub(crate) fn max_entry_bytes(&self) -> u64 {
        self.capacity / 8
    }

    /// Caches `data`, which the caller has verified to hash to `digest`.
    pub(crate) fn insert_verified(&self, digest: Sha256Digest, data: Bytes) {
        let len = data.len() as u64;
        if len > self.max_entry_bytes() {
            return;
        }
        let mut lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if lru.entries.contains_key(&digest) {
            return;
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.entries.insert(digest, (data, tick));
        lru.order.insert(tick, digest);
        lru.bytes += len;
        while lru.bytes > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some((evicted, _)) = lru.entries.remove(&oldest) {
                lru.bytes -= evicted.len() as u64;
            }
        }
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> u64 {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }
}

impl fmt::Debug for PageCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("PageCache")
            .field("capacity", &self.capacity)
            .field("entries", &lru.entries.len())
            .field("bytes", &lru.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8, len: usize) -> (Sha256Digest, Bytes) {
        let data = Bytes::from(vec![n; len]);
        (Sha256Digest::of(&data), data)
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let cache = PageCache::new(800);
        let (a, da) = blob(1, 100);
        let (b, db) = blob(2, 100);
        cache.insert_verified(a, da.clone());
        cache.insert_verified(b, db);
        assert_eq!(cache.get(&a), Some(da));
        for n in 3..10 {
            let (d, data) = blob(n, 100);
            cache.insert_verified(d, data);
            // Keep `a` warm.
            assert!(cache.get(&a).is_some());
        }
        assert!(cache.cached_bytes() <= 800);
        assert!(cache.get(&a).is_some(), "recently used entry survives");
        assert!(cache.get(&b).is_none(), "least recently used entry was evicted");
    }

    #[test]
    fn skips_blobs_too_large_for_the_budget() {
        let cache = PageCache::new(800);
        let (d, data) = blob(1, 101);
        cache.insert_verified(d, data);
        assert!(cache.get(&d).is_none());
        assert_eq!(cache.cached_bytes(), 0);
        let zero = PageCache::new(0);
        let (d, data) = blob(1, 1);
        zero.insert_verified(d, data);
        assert!(zero.get(&d).is_none());
    }
}
