//! Integration tests of `tufa-store`, each run against the memory and the local backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod put;
mod read;

use bytes::Bytes;
use futures::stream::{self, Stream};
use tempfile::TempDir;
use tufa_pypi::Sha256Digest;
use tufa_store::BlobStore;

/// A store under test; keeps the local backend's directory alive.
struct Fixture {
    store: BlobStore,
    _dir: Option<TempDir>,
}

/// One store per backend.
fn backends() -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        Fixture {
            store: BlobStore::memory(),
            _dir: None,
        },
        Fixture {
            store: BlobStore::local(dir.path().join("store")).unwrap(),
            _dir: Some(dir),
        },
    ]
}

/// Deterministic test content.
fn content(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// `data` as a body of `chunk`-sized pieces.
fn body(
    data: &Bytes,
    chunk: usize,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
    let chunks: Vec<_> = data.chunks(chunk).map(|c| Ok(data.slice_ref(c))).collect();
    stream::iter(chunks)
}

/// Asserts that nothing is under the address and nothing is left under `tmp/`.
async fn assert_nothing_stored(store: &BlobStore, digest: &Sha256Digest) {
    let name = store.describe();
    assert!(!store.exists(digest).await.unwrap(), "{name}: blob visible");
    assert_eq!(store.size(digest).await.unwrap(), None, "{name}");
    let temps = store.temp_objects().await.unwrap();
    assert!(temps.is_empty(), "{name}: temporary leftovers {temps:?}");
    if let Some(path) = store.local_path(digest) {
        assert!(!path.exists(), "{name}: {} exists", path.display());
    }
}
