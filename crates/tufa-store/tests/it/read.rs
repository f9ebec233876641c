//! Reading and checking blobs.

use futures::TryStreamExt as _;
use tufa_pypi::Sha256Digest;
use tufa_store::{BlobStore, StoreError, VerifyOutcome};

use crate::{backends, body, content};

async fn put(store: &BlobStore, data: &bytes::Bytes) -> Sha256Digest {
    let digest = Sha256Digest::of(data);
    store
        .put_stream(&digest, Some(data.len() as u64), 1 << 30, body(data, 4096))
        .await
        .unwrap();
    digest
}

/// Replaces the middle byte of the local blob file.
fn corrupt(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn stream_returns_the_bytes() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(100_000, 20);
        let digest = put(store, &data).await;
        let (len, bytes) = store.stream(&digest).await.unwrap();
        assert_eq!(len, 100_000);
        let chunks: Vec<_> = bytes.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), data.to_vec(), "{}", store.describe());
    }
}

#[tokio::test]
async fn missing_blobs() {
    for fx in backends() {
        let store = &fx.store;
        let digest = Sha256Digest::of(b"never stored");
        assert!(!store.exists(&digest).await.unwrap());
        assert_eq!(store.size(&digest).await.unwrap(), None);
        assert_eq!(store.verify(&digest).await.unwrap(), VerifyOutcome::Missing);
        for err in [
            store.get(&digest).await.unwrap_err(),
            store.get_verified(&digest).await.unwrap_err(),
            store.stream(&digest).await.err().unwrap(),
        ] {
            assert!(
                matches!(err, StoreError::NotFound(d) if d == digest),
                "{}: {err:?}",
                store.describe()
            );
            assert!(err.to_string().contains(&digest.to_hex()));
        }
        store.delete(&digest).await.unwrap();
    }
}

#[tokio::test]
async fn verify_and_delete() {
    for fx in backends() {
        let store = &fx.store;
        let data = content(3 * 1024 * 1024 + 17, 21);
        let digest = put(store, &data).await;
        assert_eq!(
            store.verify(&digest).await.unwrap(),
            VerifyOutcome::Ok {
                len: data.len() as u64
            }
        );
        store.delete(&digest).await.unwrap();
        assert_eq!(store.verify(&digest).await.unwrap(), VerifyOutcome::Missing);
        assert!(!store.exists(&digest).await.unwrap());
        store.delete(&digest).await.unwrap();
    }
}

#[tokio::test]
async fn corrupted_local_blob_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap();
    let data = content(200_000, 22);
    let digest = put(&store, &data).await;
    let path = store.local_path(&digest).unwrap();
    corrupt(&path);
    let mut expected = std::fs::read(&path).unwrap();
    let actual = Sha256Digest::of(&expected);

    assert_eq!(
        store.verify(&digest).await.unwrap(),
        VerifyOutcome::Corrupt { actual }
    );
    let err = store.get_verified(&digest).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { digest: d, actual: a } if d == digest && a == actual),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&digest.to_hex()) && msg.contains(&actual.to_hex()),
        "{msg}"
    );
    // Plain `get` does not check.
    assert_eq!(store.get(&digest).await.unwrap().to_vec(), expected);

    // A put of the right bytes does not repair in place; delete and put again does.
    let again = store
        .put_stream(&digest, None, 1 << 30, body(&data, 4096))
        .await
        .unwrap();
    assert!(matches!(again, tufa_store::PutOutcome::AlreadyPresent { .. }));
    store.delete(&digest).await.unwrap();
    put(&store, &data).await;
    assert!(matches!(
        store.verify(&digest).await.unwrap(),
        VerifyOutcome::Ok { .. }
    ));

    // Truncation is corruption too.
    expected.truncate(10);
    std::fs::write(&path, &expected).unwrap();
    assert_eq!(
        store.verify(&digest).await.unwrap(),
        VerifyOutcome::Corrupt {
            actual: Sha256Digest::of(&expected)
        }
    );

    // A deleted file is missing.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(store.verify(&digest).await.unwrap(), VerifyOutcome::Missing);
    assert!(!store.exists(&digest).await.unwrap());
}

#[tokio::test]
async fn local_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1000, 23);
    let digest = put(&BlobStore::local(dir.path()).unwrap(), &data).await;
    let reopened = BlobStore::local(dir.path()).unwrap();
    assert_eq!(reopened.get_verified(&digest).await.unwrap(), data);
}
