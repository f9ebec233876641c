//! Group commit (`with_group_commit`, `commit_group`): on the local disk a blob reaches its
//! address only with the commit that made it durable; elsewhere puts are durable at once.

use std::time::Duration;

use bytes::Bytes;

use tufa_pypi::Sha256Digest;
use tufa_store::{BlobStore, PutOutcome};

use crate::{backends, body, content};

#[tokio::test]
async fn a_staged_blob_reaches_its_address_only_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap().with_group_commit().unwrap();
    let blobs: Vec<_> = (0..3u8).map(|i| content(100_000 + usize::from(i), i)).collect();
    for data in &blobs {
        let digest = Sha256Digest::of(data);
        let outcome = store
            .put_stream(&digest, Some(data.len() as u64), 1 << 20, body(data, 4096))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            PutOutcome::Stored {
                len: data.len() as u64
            }
        );
        assert!(!store.exists(&digest).await.unwrap(), "visible before the commit");
    }
    // The same content twice in one group: one blob, no temporary left.
    let again = &blobs[0];
    store
        .put_stream(&Sha256Digest::of(again), None, 1 << 20, body(again, 1000))
        .await
        .unwrap();
    assert_eq!(store.temp_objects().await.unwrap().len(), 4);

    assert_eq!(store.commit_group().await.unwrap(), 4);
    for data in &blobs {
        let digest = Sha256Digest::of(data);
        assert_eq!(store.get_verified(&digest).await.unwrap(), *data);
        assert_eq!(std::fs::read(store.local_path(&digest).unwrap()).unwrap(), *data);
    }
    assert!(store.temp_objects().await.unwrap().is_empty());
    assert_eq!(store.commit_group().await.unwrap(), 0, "nothing left to commit");

    // A plain store over the same directory sees the committed blobs.
    let plain = BlobStore::local(dir.path()).unwrap();
    assert!(plain.exists(&Sha256Digest::of(&blobs[2])).await.unwrap());
}

#[tokio::test]
async fn uncommitted_blobs_are_temporaries_that_the_sweep_removes() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(50_000, 9);
    let digest = Sha256Digest::of(&data);
    {
        let store = BlobStore::local(dir.path()).unwrap().with_group_commit().unwrap();
        store
            .put_stream(&digest, None, 1 << 20, body(&data, 4096))
            .await
            .unwrap();
        // Dropped without a commit, as a killed writer would leave it.
    }
    let store = BlobStore::local(dir.path()).unwrap();
    assert!(!store.exists(&digest).await.unwrap());
    assert_eq!(store.temp_objects().await.unwrap().len(), 1);
    assert_eq!(store.remove_stale_temps(Duration::ZERO).await.unwrap(), 1);
    assert!(store.temp_objects().await.unwrap().is_empty());
}

#[tokio::test]
async fn other_backends_are_durable_at_once() {
    for fx in backends() {
        if fx.store.local_path(&Sha256Digest::of(b"")).is_some() {
            continue;
        }
        let store = fx.store.with_group_commit().unwrap();
        let data = content(20_000, 3);
        let digest = Sha256Digest::of(&data);
        store
            .put_stream(&digest, None, 1 << 20, body(&data, 4096))
            .await
            .unwrap();
        assert!(store.exists(&digest).await.unwrap(), "{}", store.describe());
        assert_eq!(store.commit_group().await.unwrap(), 0, "{}", store.describe());
    }
}

#[tokio::test]
async fn a_staged_named_object_replaces_its_key_only_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap();
    let key = "published/tuf/1.bin-0.json";
    store.put_named(key, Bytes::from_static(b"old")).await.unwrap();
    let group = store.with_group_commit().unwrap();
    group
        .put_named_staged(key, Bytes::from_static(b"new"))
        .await
        .unwrap();
    group
        .put_named_staged("published/tuf/1.bin-1.json", Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(
        store.get_named(key).await.unwrap().unwrap(),
        "old",
        "replaced early"
    );
    assert!(
        store
            .get_named("published/tuf/1.bin-1.json")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        group.put_named_staged("blobs/x", Bytes::new()).await.is_err(),
        "not a named key"
    );

    assert_eq!(group.commit_group().await.unwrap(), 2);
    assert_eq!(store.get_named(key).await.unwrap().unwrap(), "new");
    assert_eq!(
        store
            .get_named("published/tuf/1.bin-1.json")
            .await
            .unwrap()
            .unwrap(),
        "one"
    );
    assert!(store.temp_objects().await.unwrap().is_empty());

    // Other backends: written at once.
    let memory = BlobStore::memory().with_group_commit().unwrap();
    memory
        .put_named_staged(key, Bytes::from_static(b"now"))
        .await
        .unwrap();
    assert_eq!(memory.get_named(key).await.unwrap().unwrap(), "now");
}

/// A staged blob larger than one write batch (1 MiB) is written in several hand-offs to one
/// file; one that fails its check partway leaves nothing behind, staged or visible.
#[tokio::test]
async fn a_staged_blob_of_several_write_batches_is_whole_and_a_bad_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap().with_group_commit().unwrap();
    let big = content(3 * 1024 * 1024 + 17, 3);
    let digest = Sha256Digest::of(&big);
    store
        .put_stream(&digest, Some(big.len() as u64), 1 << 30, body(&big, 65_536))
        .await
        .unwrap();

    // Announced with the wrong digest: refused at the end, after three batches were written.
    let other = content(3 * 1024 * 1024, 4);
    let err = store
        .put_stream(&digest, None, 1 << 30, body(&other, 65_536))
        .await
        .unwrap_err();
    assert!(matches!(err, tufa_store::StoreError::Mismatch { .. }), "{err}");
    // Longer than announced: refused as soon as the excess arrives.
    let err = store
        .put_stream(
            &Sha256Digest::of(&other),
            Some(1 << 20),
            1 << 30,
            body(&other, 65_536),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, tufa_store::StoreError::LengthMismatch { .. }),
        "{err}"
    );

    // The refused files' temporaries are removed in the background.
    for _ in 0..100 {
        if store.temp_objects().await.unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.temp_objects().await.unwrap().len(),
        1,
        "only the good blob is staged"
    );
    assert_eq!(store.commit_group().await.unwrap(), 1);
    assert_eq!(store.get_verified(&digest).await.unwrap(), big);
    assert!(!store.exists(&Sha256Digest::of(&other)).await.unwrap());
    assert!(store.temp_objects().await.unwrap().is_empty());
}

/// `put_many` stages several blobs at once on the local disk (an already stored one is not
/// written again) and stores them at once elsewhere; `sizes` reads their lengths back.
#[tokio::test]
async fn put_many_stages_what_is_missing_and_sizes_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let local = BlobStore::local(dir.path()).unwrap();
    let stored = content(1000, 1);
    local.put_bytes(stored.clone()).await.unwrap();
    let group = local.with_group_commit().unwrap();
    let fresh = content(2000, 2);
    let digests = group.put_many(vec![stored.clone(), fresh.clone()]).await.unwrap();
    assert_eq!(digests, vec![Sha256Digest::of(&stored), Sha256Digest::of(&fresh)]);
    assert_eq!(
        group.temp_objects().await.unwrap().len(),
        1,
        "only the missing blob is staged"
    );
    assert_eq!(
        group.sizes(digests.clone()).await.unwrap(),
        vec![Some(1000), None]
    );
    assert_eq!(group.commit_group().await.unwrap(), 1);
    assert_eq!(
        group.sizes(digests.clone()).await.unwrap(),
        vec![Some(1000), Some(2000)]
    );
    assert_eq!(group.get_verified(&digests[1]).await.unwrap(), fresh);

    let memory = BlobStore::memory().with_group_commit().unwrap();
    let digests = memory.put_many(vec![fresh.clone()]).await.unwrap();
    assert_eq!(memory.sizes(digests).await.unwrap(), vec![Some(2000)]);
}
