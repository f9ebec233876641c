//! Integration tests of `tufa-store`, each run against every backend: memory, the local disk,
//! S3 (moto's server) and Azure Blob Storage (Azurite).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod group;
mod lease;
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

/// A store in a fresh bucket of the shared moto S3 server (tufa-testkit), under the prefix
/// `mirror`; returns the bucket name too.
fn s3_store_in() -> (BlobStore, String) {
    let server = tufa_testkit::shared_s3();
    let bucket = tufa_testkit::unique_bucket();
    tufa_store::install_crypto_provider();
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_region(tufa_testkit::S3Server::REGION)
        .with_access_key_id(tufa_testkit::S3Server::ACCESS_KEY)
        .with_secret_access_key(tufa_testkit::S3Server::SECRET_KEY)
        .with_bucket_name(&bucket)
        .build()
        .unwrap();
    let store =
        BlobStore::from_cloud_store(std::sync::Arc::new(s3), "mirror", format!("s3://{bucket}/mirror"));
    (store, bucket)
}

fn s3_store() -> BlobStore {
    s3_store_in().0
}

/// A store in a fresh container of the shared Azurite (tufa-testkit), under the prefix `mirror`.
fn azure_store() -> BlobStore {
    let server = tufa_testkit::shared_azurite();
    let container = tufa_testkit::unique_container();
    tufa_store::install_crypto_provider();
    let azure = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account(tufa_testkit::Azurite::ACCOUNT)
        .with_access_key(tufa_testkit::Azurite::KEY)
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_container_name(&container)
        .build()
        .unwrap();
    BlobStore::from_cloud_store(
        std::sync::Arc::new(azure),
        "mirror",
        format!("az://{container}/mirror"),
    )
}

/// One store per backend: memory, the local disk, and S3 (moto).
fn backends() -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        Fixture {
            store: s3_store(),
            _dir: None,
        },
        Fixture {
            store: azure_store(),
            _dir: None,
        },
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
